package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Class says whose implementation a row is.
type Class int

// Classes.
const (
	Ours   Class = iota // tyfwd, and the xsk socket layer under it
	Peer                // other user-space implementations
	Kernel              // in-kernel XDP: the ceiling, work in softirq
)

// Scenario is one traffic pattern and job.
type Scenario struct {
	Name string // rxdrop-64B
	Kind string // rxdrop or l2fwd
	Len  int    // frame length without FCS
}

// Scenarios are the ones the harness knows.
var Scenarios = []Scenario{
	{"rxdrop-64B", "rxdrop", 60},
	{"rxdrop-1500B", "rxdrop", 1514},
	{"l2fwd-64B", "l2fwd", 60},
}

// Env is what a command line needs to know about the set-up.
type Env struct {
	In, Out  string // device-under-test interfaces
	SinkMAC  string // l2fwd: destination MAC to write (the sink's)
	Queues   int
	Cores    string // CPU list of the device under test
	XDPMode  string
	Bind     string
	Batch    int
	Duration time.Duration // safety net: every DUT stops by itself after it
}

// Impl is one implementation under test.
type Impl struct {
	Name  string
	Kind  string // rxdrop or l2fwd
	Class Class
	Mode  string // poll, busy, or "" (blocks in the kernel, or no user-space loop)
	Bin   string // binary name in the build directory
	Args  func(e *Env) []string
	NIC   bool // also run in real-NIC mode
}

func common(e *Env, mode string) []string {
	a := []string{"--queues", strconv.Itoa(e.Queues), "--batch", strconv.Itoa(e.Batch),
		"--xdp-mode", e.XDPMode, "--bind", e.Bind, "--duration", e.Duration.String()}
	if e.Cores != "" {
		a = append(a, "--cores", e.Cores)
	}
	if mode != "" {
		a = append(a, "--"+mode)
	}
	return a
}

func tyfwd(cmd, mode string) func(e *Env) []string {
	return func(e *Env) []string {
		a := []string{cmd, "-i", e.In, "--quiet"}
		if cmd == "l2fwd" {
			a = append(a, "-o", e.Out)
			if e.SinkMAC != "" {
				a = append(a, "--dst-mac", e.SinkMAC)
			}
		}
		a = append(a, common(e, mode)...)
		// TYGRESS_BENCH_TYFWD_ARGS adds flags to every tyfwd run, for
		// experiments with ring and frame sizes.
		return append(a, strings.Fields(os.Getenv("TYGRESS_BENCH_TYFWD_ARGS"))...)
	}
}

func peerArgs(mode string, extra ...string) func(e *Env) []string {
	return func(e *Env) []string {
		a := append([]string{"-i", e.In, "--quiet"}, extra...)
		return append(a, common(e, mode)...)
	}
}

// Impls are the implementations in table order.
var Impls = []Impl{
	{Name: "kernel-xdp-drop", Kind: "rxdrop", Class: Kernel, Bin: "kernxdp", NIC: true, Args: func(e *Env) []string {
		return append([]string{"drop", "-i", e.In, "--quiet"}, common(e, "")...)
	}},
	{Name: "tyfwd-poll", Kind: "rxdrop", Class: Ours, Mode: "poll", Bin: "tyfwd", NIC: true, Args: tyfwd("rxdrop", "poll")},
	{Name: "tyfwd-busy", Kind: "rxdrop", Class: Ours, Mode: "busy", Bin: "tyfwd", NIC: true, Args: tyfwd("rxdrop", "busy")},
	// Poll mode with wakeup coalescing (pipeline.WorkerConfig.Coalesce):
	// under load, frames wait up to 20 µs more. Its ratios are to
	// tyfwd-poll; the C reference has no such mode.
	{Name: "tyfwd-coalesce", Kind: "rxdrop", Class: Ours, Mode: "poll", Bin: "tyfwd", NIC: true, Args: func(e *Env) []string {
		return append(tyfwd("rxdrop", "poll")(e), "--coalesce", "20us")
	}},
	{Name: "xsk-poll", Kind: "rxdrop", Class: Ours, Mode: "poll", Bin: "xsk", NIC: true, Args: peerArgs("poll")},
	{Name: "xsys-poll", Kind: "rxdrop", Class: Peer, Mode: "poll", Bin: "xsys", NIC: true, Args: peerArgs("poll")},
	{Name: "xsys-busy", Kind: "rxdrop", Class: Peer, Mode: "busy", Bin: "xsys", NIC: true, Args: peerArgs("busy")},
	{Name: "asavie-poll", Kind: "rxdrop", Class: Peer, Mode: "poll", Bin: "asavie", NIC: true, Args: peerArgs("poll")},
	{Name: "gvisor-poll", Kind: "rxdrop", Class: Peer, Mode: "poll", Bin: "gvisor", NIC: true, Args: peerArgs("poll")},
	{Name: "c-xdpsock-poll", Kind: "rxdrop", Class: Peer, Mode: "poll", Bin: "xdpsock-c", NIC: true, Args: peerArgs("poll")},
	{Name: "c-xdpsock-busy", Kind: "rxdrop", Class: Peer, Mode: "busy", Bin: "xdpsock-c", NIC: true, Args: peerArgs("busy")},
	{Name: "udp-recvmmsg", Kind: "rxdrop", Class: Peer, Bin: "udprecv", Args: peerArgs("", "--xdp-pass")},

	{Name: "kernel-xdp-redirect", Kind: "l2fwd", Class: Kernel, Bin: "kernxdp", NIC: true, Args: func(e *Env) []string {
		a := []string{"redirect", "-i", e.In, "-o", e.Out, "--quiet"}
		if e.SinkMAC != "" {
			a = append(a, "--dst-mac", e.SinkMAC)
		}
		return append(a, common(e, "")...)
	}},
	{Name: "tyfwd-l2fwd-poll", Kind: "l2fwd", Class: Ours, Mode: "poll", Bin: "tyfwd", NIC: true, Args: tyfwd("l2fwd", "poll")},
	{Name: "tyfwd-l2fwd-busy", Kind: "l2fwd", Class: Ours, Mode: "busy", Bin: "tyfwd", NIC: true, Args: tyfwd("l2fwd", "busy")},
	{Name: "xsk-l2fwd-poll", Kind: "l2fwd", Class: Ours, Mode: "poll", Bin: "xsk", NIC: true, Args: func(e *Env) []string {
		a := []string{"-i", e.In, "-o", e.Out, "--quiet"}
		if e.SinkMAC != "" {
			a = append(a, "--dst-mac", e.SinkMAC)
		}
		return append(a, common(e, "poll")...)
	}},
	{Name: "c-xdpsock-l2fwd-poll", Kind: "l2fwd", Class: Peer, Mode: "poll", Bin: "xdpsock-c", NIC: true, Args: func(e *Env) []string {
		a := []string{"-i", e.In, "-o", e.Out, "--quiet"}
		if e.SinkMAC != "" {
			a = append(a, "--dst-mac", e.SinkMAC)
		}
		return append(a, common(e, "poll")...)
	}},
}

func (c Class) String() string {
	switch c {
	case Ours:
		return "ours"
	case Peer:
		return "peer"
	case Kernel:
		return "kernel"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}
