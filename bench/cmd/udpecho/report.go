package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tygress/tygress/bench/internal/harness"
)

// column is one figure of the table: its heading, how it is computed from
// a result, how it is printed.
type column struct {
	head string
	get  func(r *Result) float64
	f    string // format of the value
}

var (
	colRPS     = column{"req/s", func(r *Result) float64 { return r.RPS() }, "%.0f"}
	colCPU     = column{"srv-CPU%", func(r *Result) float64 { return 100 * r.ServerCPU / r.Seconds }, "%.0f"}
	colNs      = column{"srv-ns/req", func(r *Result) float64 { return r.NsPerReq() }, "%.0f"}
	colPerCore = column{"req/s/srv-core", func(r *Result) float64 { return r.PerCore() }, "%.0f"}
	colCoreNs  = column{"core1-ns/req", func(r *Result) float64 { return r.CoreNsPerReq() }, "%.0f"}
	colCliNs   = column{"core0-ns/req", func(r *Result) float64 { return r.ClientBusy * 1e9 / float64(r.Responses) }, "%.0f"}
	colP50     = column{"p50-us", func(r *Result) float64 { return r.P50 / 1e3 }, "%.1f"}
	colP90     = column{"p90-us", func(r *Result) float64 { return r.P90 / 1e3 }, "%.1f"}
	colP99     = column{"p99-us", func(r *Result) float64 { return r.P99 / 1e3 }, "%.1f"}
	colP999    = column{"p99.9-us", func(r *Result) float64 { return r.P999 / 1e3 }, "%.1f"}
	colResent  = column{"resent", func(r *Result) float64 { return float64(r.Resent) }, "%.0f"}
	colAllocs  = column{"allocs/pkt", func(r *Result) float64 { return r.Allocs }, "%.4f"}
	colCS      = column{"srv-cs/req", func(r *Result) float64 { return float64(r.Switches) / float64(r.Responses) }, "%.2f"}
	colWinAl   = column{"win-allocs/req", func(r *Result) float64 {
		if r.WinAllocs < 0 {
			return -1
		}
		return max(r.WinAllocs, 0) / float64(r.Responses)
	}, "%.4f"}
)

var modeColumns = map[string][]column{
	"throughput": {colRPS, colCPU, colNs, colPerCore, colCoreNs, colCliNs, colCS, colP50, colP99, colResent, colAllocs, colWinAl},
	"latency":    {colRPS, colP50, colP90, colP99, colP999, colNs, colCoreNs, colCS, colAllocs, colWinAl},
}

func median(xs []float64) float64 {
	xs = slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// medians of every column of impl's rows in mode, and how many rows.
func medians(res []Result, impl, mode string, cols []column) ([]float64, int) {
	var rows []*Result
	for i := range res {
		if r := &res[i]; r.Impl == impl && r.Mode == mode && r.Err == "" {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, 0
	}
	out := make([]float64, len(cols))
	for j, c := range cols {
		var xs []float64
		for _, r := range rows {
			v := c.get(r)
			if (c.head == "allocs/pkt" || c.head == "win-allocs/req") && v < 0 {
				v = math.NaN()
			}
			xs = append(xs, v)
		}
		out[j] = median(xs)
	}
	return out, len(rows)
}

func allocStr(v float64) string {
	if v < 0 || math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}

func report(w io.Writer, c *config, res []Result) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\nTygress UDP echo benchmark, %s, host %s\n", time.Now().UTC().Format(time.RFC3339), host)
	fmt.Fprintf(w, "machine: %s, %d CPUs, kernel %s, %s\n", harness.CPUModel(), runtime.NumCPU(), harness.KernelRelease(), runtime.Version())
	fam, frame := "IPv4", 14+20+8+c.size
	if c.ipv6 {
		fam, frame = "IPv6", 14+40+8+c.size
	}
	fmt.Fprintf(w, "topology: veth cli0 (client ns, CPU %d) == srv0 (server ns, CPU %d), tx checksum offload off\n", c.clientCPU, c.serverCPU)
	fmt.Fprintf(w, "traffic: %s, %d-byte UDP payload = %d-byte frames (%d with FCS); throughput: window %d over %d sockets, %s measured after %s warm-up; latency: 1 in flight, %d round trips\n",
		fam, c.size, frame, frame+4, c.window, c.sockets, c.duration, c.warmup, c.latN)
	fmt.Fprintf(w, "servers: tyfwd serve --queues 1 --cores %d (AF_XDP, poll mode); kernel: Go net.UDPConn ReadFromUDPAddrPort/WriteToUDPAddrPort, one goroutine (locked thread: %v)\n",
		c.serverCPU, !c.noLock)
	for _, impl := range c.impls {
		if e := c.env[impl]; len(e) > 0 {
			fmt.Fprintf(w, "environment of %s: %s\n", impl, strings.Join(e, " "))
		}
	}
	fmt.Fprintf(w, "%d repetition(s), implementations interleaved, medians\n", c.reps)
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(w, "load average at report time: %s", l)
	}
	for _, mode := range c.modes {
		cols := modeColumns[mode]
		fmt.Fprintf(w, "\n== %s\n", mode)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := []string{"impl", "runs"}
		for _, col := range cols {
			head = append(head, col.head)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		meds := map[string][]float64{}
		for _, impl := range c.impls {
			m, n := medians(res, impl, mode, cols)
			if n == 0 {
				fmt.Fprintf(tw, "%s\t0\t(failed)\t\n", impl)
				continue
			}
			meds[impl] = m
			row := []string{impl, fmt.Sprint(n)}
			for j, col := range cols {
				if math.IsNaN(m[j]) {
					row = append(row, "n/a")
				} else {
					row = append(row, fmt.Sprintf(col.f, m[j]))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		for _, impl := range []string{"tyfwd", "tyfwd-socket"} {
			t, k := meds[impl], meds["kernel"]
			if t == nil || k == nil {
				continue
			}
			row := []string{impl + "/kernel", ""}
			for j := range cols {
				if k[j] == 0 || math.IsNaN(k[j]) || math.IsNaN(t[j]) || strings.Contains(cols[j].head, "allocs") {
					row = append(row, "-")
				} else {
					row = append(row, fmt.Sprintf("%.2f", t[j]/k[j]))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	for _, r := range res {
		if r.Err != "" {
			fmt.Fprintf(w, "error: rep %d %s %s: %s\n", r.Rep, r.Impl, r.Mode, firstLines(r.Err, 6))
		}
	}
	fmt.Fprintln(w, "\nsrv-ns/req: server process CPU (user+sys, /proc/PID/stat) in the measured interval per answer; req/s/srv-core: answers per server CPU second;")
	fmt.Fprintln(w, "core1-ns/req, core0-ns/req: busy time of the server's / client's CPU (/proc/stat, softirq and everything else on it included) per answer;")
	fmt.Fprintln(w, "srv-cs/req: the server's context switches (all threads, /proc/PID/task/*/status) per answer; allocs/pkt: the server's own summary (tyfwd: whole life; kernel peer: serving loop);")
	fmt.Fprintln(w, "win-allocs/req: tyfwd's go_memstats_mallocs_total (--admin /metrics) over the measured interval, one scrape's allocations subtracted, per answer;")
	fmt.Fprintln(w, "latency: client-measured round trip (time.Now, monotonic); tyfwd/kernel: ratio of the medians (req/s > 1 and ns, us < 1 favour tyfwd)")
}

func firstLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = append(l[:n], "...")
	}
	return strings.Join(l, "\n    ")
}
