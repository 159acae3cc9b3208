// Command benchrun is Tygress's data-path benchmark (`make bench`). Run as
// root from the bench module:
//
//	cd bench && go run ./cmd/benchrun                 # 5 s per run, 1 repetition
//	cd bench && go run ./cmd/benchrun -full           # 10 s x 3, medians
//	cd bench && go run ./cmd/benchrun -i ens1f0 -o ens1f1 [-gen ens2f0]   # real NICs
//
// It builds the generator, the peers and tyfwd, sets up namespaces and veth
// pairs (removed again on exit, Ctrl-C included), runs every implementation
// of every scenario and prints one table per scenario. See bench/README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tygress/tygress/bench/internal/harness"
)

func main() {
	os.Exit(run())
}

func envDuration(k string, d time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		if x, err := time.ParseDuration(v); err == nil {
			return x
		}
	}
	return d
}

func envInt(k string, d int) int {
	if v := os.Getenv(k); v != "" {
		if x, err := strconv.Atoi(v); err == nil {
			return x
		}
	}
	return d
}

func list(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func run() int {
	var c harness.Config
	var scen, impls string
	var full, cleanup, listOnly bool
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.DurationVar(&c.Duration, "duration", envDuration("TYGRESS_BENCH_DURATION", 5*time.Second), "traffic per run (env TYGRESS_BENCH_DURATION)")
	fs.IntVar(&c.Reps, "reps", envInt("TYGRESS_BENCH_REPS", 1), "repetitions; medians are reported (env TYGRESS_BENCH_REPS)")
	fs.BoolVar(&full, "full", false, "the published method: -duration 10s -reps 3")
	fs.StringVar(&scen, "scenarios", "", "comma-separated scenarios (default all; see -list)")
	fs.StringVar(&impls, "impls", "", "comma-separated implementations (default all; see -list)")
	fs.BoolVar(&listOnly, "list", false, "list scenarios and implementations and exit")
	fs.IntVar(&c.GenCPU, "gen-cpu", 0, "CPU of the generator")
	fs.StringVar(&c.DUTCPUs, "cores", "", "CPU list of the DUT (veth default 1; NIC default one per queue)")
	fs.UintVar(&c.Repeat, "repeat", 4<<20, "generator repetitions per BPF_PROG_TEST_RUN call (>= 2M saturates a core)")
	fs.StringVar(&c.XDPMode, "xdp-mode", "native", "XDP attach mode passed to every implementation")
	fs.StringVar(&c.Bind, "bind", "", "AF_XDP bind mode: copy (veth default), auto (NIC default) or zc")
	fs.IntVar(&c.Batch, "batch", 64, "batch size passed to the implementations that take one")
	fs.StringVar(&c.Sink, "sink", "xdp", "l2fwd sink in veth mode: xdp (an XDP_DROP program) or nft (no XDP; the kernel drops at the netdev ingress hook)")
	fs.DurationVar(&c.Settle, "settle", 500*time.Millisecond, "wait after the DUT attached its XDP program")
	fs.StringVar(&c.Ours, "ours", "", "row the ratios divide by (default tyfwd of the same mode)")
	fs.StringVar(&c.Tyfwd, "tyfwd", "", "prebuilt tyfwd binary (default: build ../cmd/tyfwd)")
	fs.StringVar(&c.TyfwdAlt, "tyfwd-alt", "", "a second tyfwd binary: each tyfwd row gets a tyfwd-alt- twin in the same run (A/B)")
	fs.StringVar(&c.BinDir, "bindir", "", "keep the built binaries here (default: a temporary directory)")
	fs.StringVar(&c.JSON, "json", "", "also write every run's numbers to this file")
	fs.StringVar(&c.In, "i", "", "real-NIC mode: input port (no topology is built)")
	fs.StringVar(&c.Out, "o", "", "real-NIC mode: output port for l2fwd")
	fs.IntVar(&c.Queues, "queues", 0, "real-NIC mode: queues to use (default every queue of -i)")
	fs.StringVar(&c.GenIf, "gen", "", "real-NIC mode: run xdpgen on this port (cabled to -i); default: traffic comes from outside")
	fs.IntVar(&c.NICLen, "len", 60, "real-NIC mode with outside traffic: frame length (no FCS) it sends, for Gbps and line rate")
	fs.StringVar(&c.DstMAC, "dst-mac", "", "real-NIC mode: destination MAC l2fwd writes (the next hop behind -o)")
	fs.BoolVar(&cleanup, "cleanup", false, "delete namespaces a killed run left behind (tybench-*) and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if full {
		c.Duration, c.Reps = 10*time.Second, 3
	}
	c.Scenarios, c.Impls = list(scen), list(impls)
	if listOnly {
		for _, s := range harness.Scenarios {
			fmt.Printf("scenario %-14s %s, %d-byte frames\n", s.Name, s.Kind, s.Len)
		}
		for _, i := range harness.Impls {
			fmt.Printf("impl     %-20s %s, %s\n", i.Name, i.Kind, i.Class)
		}
		return 0
	}
	if cleanup {
		return cleanNamespaces()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "benchrun: needs root (namespaces, XDP, AF_XDP)")
		return 1
	}
	dir, err := harness.BenchDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	c.BenchDir = dir

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := harness.Prepare(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	res, err := b.RunAll(ctx)
	b.Report(os.Stdout, res)
	if c.JSON != "" {
		if err := harness.WriteJSON(c.JSON, res); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
		}
	}
	if cerr := b.Close(); cerr != nil {
		fmt.Fprintln(os.Stderr, "benchrun: cleanup:", cerr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	for _, r := range res {
		if r.Err != "" {
			return 1
		}
	}
	return 0
}

func cleanNamespaces() int {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: ip netns list:", err)
		return 1
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	rc := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "tybench-") {
			continue
		}
		if err := exec.Command("ip", "netns", "delete", f[0]).Run(); err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: delete %s: %v\n", f[0], err)
			rc = 1
		} else {
			fmt.Println("deleted", f[0])
		}
	}
	return rc
}
