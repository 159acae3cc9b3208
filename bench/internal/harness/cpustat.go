package harness

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/tygress/tygress/bench/internal/peer"
)

// CPUTimes is one CPU's line of /proc/stat in seconds.
type CPUTimes struct {
	Busy    float64 // everything but idle and iowait (softirq included)
	Softirq float64
}

// ReadCPUTimes reads /proc/stat's per-CPU lines; an unreadable file gives
// an empty map.
func ReadCPUTimes() map[int]CPUTimes {
	st := map[int]CPUTimes{}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return st
	}
	defer f.Close()
	const hz = 100 // USER_HZ
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || !strings.HasPrefix(fs[0], "cpu") || fs[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(fs[0][3:])
		if err != nil {
			continue
		}
		var t CPUTimes
		for i, v := range fs[1:] {
			if i >= 8 { // guest times are already in user
				break
			}
			x, _ := strconv.ParseUint(v, 10, 64)
			if i == 6 {
				t.Softirq = float64(x) / hz
			}
			if i != 3 && i != 4 { // idle, iowait
				t.Busy += float64(x) / hz
			}
		}
		st[n] = t
	}
	return st
}

// cpuStat is /proc/stat's per-CPU busy time in seconds.
type cpuStat map[int]float64

func readCPUStat() cpuStat {
	st := cpuStat{}
	for n, t := range ReadCPUTimes() {
		st[n] = t.Busy
	}
	return st
}

func (s cpuStat) busy(cpus []int) float64 {
	var t float64
	for _, c := range cpus {
		t += s[c]
	}
	return t
}

func parseCPUs(list string) []int {
	if list == "" {
		return nil
	}
	c, _ := peer.ParseCPUList(list)
	return c
}

// procCPU is the CPU time (user+sys, all threads) a live process has used
// so far, from /proc/PID/stat: the same counters getrusage reads, sampled
// while it runs so the traffic window can be cut out of its life.
func procCPU(pid int) (float64, bool) {
	u, s, ok := procTimes(pid)
	return u + s, ok
}

// procTimes is procCPU split into user and system time: where a gap to a
// peer lies (the process's own code, or the kernel's work for it).
func procTimes(pid int) (user, sys float64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	// Field 2 (comm) may hold spaces; fields after the last ')' are fixed.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	fs := strings.Fields(s[i+1:])
	// fs[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fs) < 13 {
		return 0, 0, false
	}
	ut, err1 := strconv.ParseUint(fs[11], 10, 64)
	st, err2 := strconv.ParseUint(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return float64(ut) / 100, float64(st) / 100, true // USER_HZ
}
