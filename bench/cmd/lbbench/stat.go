package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is one CPU's line of /proc/stat in seconds.
type cpuTimes struct {
	busy    float64 // everything but idle and iowait (softirq included)
	softirq float64
}

func readStat() map[int]cpuTimes {
	st := map[int]cpuTimes{}
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
		var t cpuTimes
		for i, v := range fs[1:] {
			if i >= 8 { // guest times are already in user
				break
			}
			x, _ := strconv.ParseUint(v, 10, 64)
			if i == 6 {
				t.softirq = float64(x) / hz
			}
			if i != 3 && i != 4 { // idle, iowait
				t.busy += float64(x) / hz
			}
		}
		st[n] = t
	}
	return st
}

// pidCPU is a process's user+sys time so far (/proc/PID/stat).
func pidCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(fs[11], 10, 64)
	st, err2 := strconv.ParseUint(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(ut+st) / 100, true
}

func adminClient(sock string) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}}
}

// mallocs scrapes go_memstats_mallocs_total from tyfwd's /metrics.
func mallocs(sock string) (float64, error) {
	resp, err := adminClient(sock).Get("http://tyfwd/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no go_memstats_mallocs_total in /metrics (%v)", sc.Err())
}

// profile fetches a CPU profile of d from tyfwd's admin socket into path.
func profile(sock string, d time.Duration, path string) error {
	resp, err := adminClient(sock).Get(fmt.Sprintf("http://tyfwd/debug/pprof/profile?seconds=%d", max(int(d/time.Second), 1)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
