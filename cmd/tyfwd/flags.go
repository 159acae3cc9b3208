package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/tygress/tygress/bpf"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/sched"
	"github.com/tygress/tygress/xsk"
)

var errHelp = errors.New("help shown")

// common are the flags every data-path command takes.
type common struct {
	queues    int
	xdpMode   string
	bind      string
	batch     int
	rxSize    int
	txSize    int
	fillSize  int
	compSize  int
	fillLimit int
	frameSize int
	duration  time.Duration
	interval  time.Duration
	cores     string
	busy      bool
	poll      bool
	huge      bool
	quiet     bool
	noWakeup  bool
	busyPoll  bool
	coalesce  time.Duration

	cpus []int
	mode bpf.Mode
	opts xsk.SocketOptions
	ops  ops // operations flags: ops.go
}

func (c *common) register(fs *flag.FlagSet) {
	d := xsk.DefaultSocketOptions()
	fs.IntVar(&c.queues, "queues", 0, "number of queues (one worker each) from queue 0; 0 = every rx queue")
	fs.StringVar(&c.xdpMode, "xdp-mode", "auto", "XDP attach mode: auto (driver, falling back to generic), driver (native), generic (skb)")
	fs.StringVar(&c.bind, "bind", "auto", "AF_XDP bind mode: auto (zero-copy, falling back to copy), copy, zc")
	fs.IntVar(&c.batch, "batch", 64, "descriptors per batch (1..256)")
	fs.IntVar(&c.rxSize, "rx-size", d.RxSize, "rx ring size (power of two)")
	fs.IntVar(&c.txSize, "tx-size", d.TxSize, "tx ring size (power of two)")
	fs.IntVar(&c.fillSize, "fill-size", d.FillSize, "fill ring size (power of two)")
	fs.IntVar(&c.compSize, "comp-size", d.CompSize, "completion ring size (power of two)")
	fs.IntVar(&c.fillLimit, "fill-limit", 0, "frames kept in the fill and rx rings together (0: rx-size + rx-size/8 in copy mode, fill-size in zero-copy mode)")
	fs.IntVar(&c.frameSize, "frame-size", 0, "UMEM frame size: 2048 or 4096 (0: 2048, or 4096 when an interface's MTU needs it)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: run until SIGINT/SIGTERM)")
	fs.DurationVar(&c.interval, "interval", time.Second, "statistics interval")
	fs.StringVar(&c.cores, "cores", "", "CPUs to pin workers to, e.g. 1 or 0-3,6 (default: unpinned)")
	fs.BoolVar(&c.busy, "busy", false, "busy-spin on empty rings instead of blocking in poll()")
	fs.BoolVar(&c.poll, "poll", false, "block in poll() on empty rings (the default)")
	fs.BoolVar(&c.huge, "hugepages", false, "back the UMEM with 2 MiB huge pages (falls back to normal pages)")
	fs.BoolVar(&c.quiet, "quiet", false, "print only the final summary")
	fs.BoolVar(&c.busyPoll, "busy-poll", false, "set SO_PREFER_BUSY_POLL, SO_BUSY_POLL (20 us) and SO_BUSY_POLL_BUDGET (--batch) on the sockets")
	fs.DurationVar(&c.coalesce, "coalesce", 0, "under sustained load (full batches), sleep this long on a timer instead of waking per kernel batch: fewer wakeups, up to this much more latency (0: off, at most 1ms)")
	fs.BoolVar(&c.noWakeup, "no-need-wakeup", false, "disable need_wakeup (kick the kernel on every batch)")
	c.ops.register(fs)
}

func (c *common) validate() error {
	var err error
	if c.busy && c.poll {
		return usageError{"--busy and --poll exclude each other"}
	}
	if c.coalesce < 0 || c.coalesce > pipeline.MaxCoalesce {
		return usageError{fmt.Sprintf("--coalesce %v: must be 0..%v", c.coalesce, pipeline.MaxCoalesce)}
	}
	if c.coalesce > 0 && c.busy {
		return usageError{"--coalesce needs poll mode, not --busy"}
	}
	if c.coalesce > 0 && c.busyPoll {
		// With SO_PREFER_BUSY_POLL the driver leaves the queue to the
		// application's poll(); a coalesced sleep does not poll it.
		return usageError{"--coalesce and --busy-poll exclude each other: a coalesced sleep does not busy-poll the queue"}
	}
	if c.queues < 0 {
		return usageError{fmt.Sprintf("--queues %d: must be positive", c.queues)}
	}
	if c.batch < 1 || c.batch > 256 {
		return usageError{fmt.Sprintf("--batch %d: must be 1..256", c.batch)}
	}
	if c.frameSize != 0 && c.frameSize != 2048 && c.frameSize != 4096 {
		return usageError{fmt.Sprintf("--frame-size %d: must be 2048 or 4096", c.frameSize)}
	}
	for name, v := range map[string]int{"rx-size": c.rxSize, "tx-size": c.txSize, "fill-size": c.fillSize, "comp-size": c.compSize} {
		if v <= 0 || v&(v-1) != 0 || v > 1<<16 {
			return usageError{fmt.Sprintf("--%s %d: must be a power of two up to 65536", name, v)}
		}
	}
	if c.fillLimit < 0 || c.fillLimit > c.fillSize {
		return usageError{fmt.Sprintf("--fill-limit %d: must be 0..fill-size (%d)", c.fillLimit, c.fillSize)}
	}
	if c.duration < 0 || c.interval <= 0 {
		return usageError{"--duration and --interval must be positive"}
	}
	if err = c.mode.UnmarshalText([]byte(c.xdpMode)); err != nil {
		return usageError{fmt.Sprintf("--xdp-mode: %v", err)}
	}
	bm, err := xsk.ParseBindMode(c.bind)
	if err != nil {
		return usageError{fmt.Sprintf("--bind: %v", err)}
	}
	if c.cores != "" {
		if c.cpus, err = sched.ParseCPUList(c.cores); err != nil {
			return usageError{fmt.Sprintf("--cores: %v", err)}
		}
	}
	c.opts = xsk.SocketOptions{RxSize: c.rxSize, TxSize: c.txSize, FillSize: c.fillSize, CompSize: c.compSize,
		FillLimit: c.fillLimit, Bind: bm, NoNeedWakeup: c.noWakeup, BusyPoll: c.busyPoll, BusyPollUsec: 20, BusyPollBudget: c.batch}
	return c.ops.validate()
}

// parse parses args; -h prints the flags and returns errHelp.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(flagOut)
			fmt.Fprintf(flagOut, "usage of tyfwd %s:\n", fs.Name())
			fs.PrintDefaults()
			return errHelp
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

var flagOut io.Writer = os.Stderr

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return m, fmt.Errorf("bad MAC address %q", s)
	}
	copy(m[:], hw)
	return m, nil
}
