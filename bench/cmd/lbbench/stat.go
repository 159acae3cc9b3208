package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
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
