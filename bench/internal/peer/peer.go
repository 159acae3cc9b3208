// Package peer is the plumbing the benchmark's peer programs share, so that
// each of them takes the flags of `tyfwd rxdrop`/`tyfwd l2fwd`, stops the same
// way (SIGINT, SIGTERM or --duration), pins its worker the same way, and
// ends with the same `summary:` line the harness parses.
package peer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config holds the flags common to the peers (a subset of tyfwd's).
type Config struct {
	Iface    string
	Out      string
	Queues   int
	Cores    []int
	Busy     bool
	Batch    int
	Duration time.Duration
	XDPMode  string
	Bind     string
	Frames   int // UMEM frames per socket
	Ring     int // entries of each ring
	Quiet    bool
}

// RegisterFlags adds the common flags to fs and returns the Config they
// fill once fs is parsed. Go's flag package takes -x and --x alike.
func RegisterFlags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Iface, "i", "", "input interface (required)")
	fs.StringVar(&c.Out, "o", "", "output interface (forwarding peers)")
	fs.IntVar(&c.Queues, "queues", 1, "number of queues (one worker each)")
	fs.Func("cores", "CPU list for the workers, e.g. 1 or 0-3,6 (default: not pinned)", func(s string) error {
		cores, err := ParseCPUList(s)
		c.Cores = cores
		return err
	})
	fs.BoolFunc("poll", "block in poll() when the rx ring is empty (default)", func(string) error { c.Busy = false; return nil })
	fs.BoolVar(&c.Busy, "busy", false, "spin on the rx ring instead of blocking in poll()")
	fs.IntVar(&c.Batch, "batch", 64, "descriptors per batch")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	fs.StringVar(&c.XDPMode, "xdp-mode", "auto", "XDP attach mode: auto, native or generic")
	fs.StringVar(&c.Bind, "bind", "auto", "AF_XDP bind mode: auto, copy or zc")
	fs.IntVar(&c.Frames, "frames", 4096, "UMEM frames per socket")
	fs.IntVar(&c.Ring, "ring", 2048, "entries of each AF_XDP ring")
	fs.BoolVar(&c.Quiet, "quiet", false, "no per-second lines")
	return c
}

// Parse parses args into fs and checks the common flags.
func Parse(fs *flag.FlagSet, c *Config, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Iface == "" {
		return errors.New("-i IFACE is required")
	}
	if c.Queues < 1 || c.Batch < 1 || c.Frames < 1 || c.Ring < 1 || c.Ring&(c.Ring-1) != 0 {
		return errors.New("--queues, --batch and --frames must be positive and --ring a power of two")
	}
	return nil
}

// Core returns the CPU for worker i, when --cores was given.
func (c *Config) Core(i int) (int, bool) {
	if len(c.Cores) == 0 {
		return 0, false
	}
	return c.Cores[i%len(c.Cores)], true
}

// ParseCPUList parses "1", "0-3,6" and the like.
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for i := a; i <= b; i++ {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("empty CPU list %q", s)
	}
	return cpus, nil
}

// PinThread locks the calling goroutine to its OS thread and that thread to
// cpu.
func PinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// Context is cancelled at SIGINT, SIGTERM or after d (when d > 0).
func Context(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, stop
	}
	ctx2, cancel := context.WithTimeout(ctx, d)
	return ctx2, func() { cancel(); stop() }
}

// Counters are updated by workers (once per batch) and read by the monitor.
type Counters struct {
	Rx, Tx, Drops, FillEmpty, Wakeups atomic.Uint64
}

// Snapshot is a copy of Counters.
type Snapshot struct {
	Rx, Tx, Drops, FillEmpty, Wakeups uint64
}

// Load copies the counters.
func (c *Counters) Load() Snapshot {
	return Snapshot{Rx: c.Rx.Load(), Tx: c.Tx.Load(), Drops: c.Drops.Load(), FillEmpty: c.FillEmpty.Load(), Wakeups: c.Wakeups.Load()}
}

// Monitor prints one line per second (rates of the snapshot read returns)
// until ctx is done, unless quiet.
func Monitor(ctx context.Context, w io.Writer, quiet bool, read func() Snapshot) {
	if quiet {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev, pt := read(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := read()
			dt := now.Sub(pt).Seconds()
			fmt.Fprintf(w, "rx/s=%.0f tx/s=%.0f drop/s=%.0f fill_ring_empty/s=%.0f wakeups/s=%.0f\n",
				float64(cur.Rx-prev.Rx)/dt, float64(cur.Tx-prev.Tx)/dt, float64(cur.Drops-prev.Drops)/dt,
				float64(cur.FillEmpty-prev.FillEmpty)/dt, float64(cur.Wakeups-prev.Wakeups)/dt)
			prev, pt = cur, now
		}
	}
}

// Mallocs returns the process's heap allocations so far.
func Mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// Summary formats the final line; extra are further key=value pairs.
func Summary(s Snapshot, seconds float64, allocs uint64, extra ...string) string {
	line := fmt.Sprintf("summary: rx_pkts=%d tx_pkts=%d drops=%d fill_ring_empty=%d wakeups=%d seconds=%.3f allocs=%d",
		s.Rx, s.Tx, s.Drops, s.FillEmpty, s.Wakeups, seconds, allocs)
	for _, e := range extra {
		line += " " + e
	}
	return line
}

// Fatal prints one error line and exits 1.
func Fatal(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}

// Main runs a peer: it parses flags, calls run with a context that ends at
// SIGINT/SIGTERM/--duration, and exits non-zero with one line on error.
// run returns the summary line.
func Main(name string, setup func(fs *flag.FlagSet), run func(ctx context.Context, c *Config) (string, error)) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c := RegisterFlags(fs)
	if setup != nil {
		setup(fs)
	}
	if err := Parse(fs, c, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		Fatal(name, err)
	}
	ctx, cancel := Context(c.Duration)
	summary, err := run(ctx, c)
	cancel()
	if err != nil {
		Fatal(name, err)
	}
	fmt.Println(summary)
}
