// Package harness runs Tygress's data-path benchmark: it builds the
// generator and the peers, sets up a veth topology in fresh namespaces (or
// uses two real NIC ports), runs every implementation of every scenario in
// the same run against the same traffic, and reports packet rates and the
// CPU time per packet of the process under test, from its rusage.
//
// Topology (veth mode):
//
//	[gen ns] gen0 ==veth== dut0 [dut ns] dut1 ==veth== sink0 [sink ns]
//	xdpgen on CPU 0        DUT on CPU 1               kernxdp drop (l2fwd)
//
// The generator is a BPF_PROG_TEST_RUN live-frames program that returns
// XDP_TX on gen0, so frames leave gen0 and arrive at dut0. Each run: start
// the sink (l2fwd), start the DUT, wait until an XDP program is attached to
// dut0, let it settle, run the generator for the duration, stop the DUT
// with SIGINT, and read its summary line and rusage.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/tygress/tygress/internal/topo"
)

// Config is a benchmark run.
type Config struct {
	BenchDir string // the bench module (holds cmd/peers, cmd/xdpgen)
	BinDir   string // where binaries go ("" = a temporary directory)
	Tyfwd    string // prebuilt tyfwd ("" = build ../cmd/tyfwd)
	// TyfwdAlt, if set, is a second tyfwd binary (say, of the previous
	// commit): every selected tyfwd row gets a "tyfwd-alt-" twin run from
	// it in the same run, so a change is judged against its own baseline
	// under the same load.
	TyfwdAlt  string
	Duration  time.Duration // traffic per run
	Reps      int           // repetitions; medians are reported
	Scenarios []string      // names; empty = all
	Impls     []string      // names; empty = all that apply
	GenCPU    int
	DUTCPUs   string // CPU list for the DUT (veth mode: "1")
	Repeat    uint   // generator repetitions per call
	XDPMode   string
	Bind      string
	Batch     int
	Settle    time.Duration // after the DUT attached its program, before traffic
	Ours      string        // reference row for ratios ("" = tyfwd of the same mode)
	// Sink is what receives l2fwd's output in veth mode. "xdp": an
	// in-kernel XDP_DROP program counts and drops; on veth its run, and the
	// copy veth makes of every skb AF_XDP TX builds (less headroom than
	// XDP needs), land on the forwarder's core. "nft": no XDP program; the
	// sink's kernel drops the frames at its netdev ingress hook (nftables),
	// counted from the port's rx_packets, as a next hop that is not on the
	// forwarder's core would receive them. The kernel XDP_REDIRECT row gets
	// GRO on the sink there, since redirecting into a veth needs a NAPI
	// context on the peer.
	Sink string

	// Real-NIC mode: In (and Out for l2fwd) are real ports; no topology.
	In, Out string
	Queues  int    // 0 = every queue of In
	GenIf   string // optional local generator port, cabled to In
	NICLen  int    // NIC mode without GenIf: frame length the external generator sends
	DstMAC  string // NIC mode l2fwd: next hop's MAC written into forwarded frames

	Log  io.Writer // progress; nil = stderr
	JSON string    // write results here too
}

// Run result of one implementation in one scenario, one repetition.
type Result struct {
	Scenario string  `json:"scenario"`
	Impl     string  `json:"impl"`
	Class    string  `json:"class"`
	Mode     string  `json:"mode"`
	Rep      int     `json:"rep"`
	Len      int     `json:"frame_len"`
	GenPkts  uint64  `json:"gen_pkts"`
	GenSecs  float64 `json:"gen_seconds"`
	GenCPU   float64 `json:"gen_cpu_seconds"`
	GenWall  float64 `json:"gen_wall_seconds"`
	RxPkts   uint64  `json:"rx_pkts"`
	TxPkts   uint64  `json:"tx_pkts"`
	Sunk     uint64  `json:"sink_pkts"` // l2fwd: frames that reached the sink
	DUTCPU   float64 `json:"dut_cpu_seconds"`
	DUTWall  float64 `json:"dut_wall_seconds"`
	WinCPU   float64 `json:"dut_window_cpu_seconds"`  // DUT CPU time during the traffic
	WinUser  float64 `json:"dut_window_user_seconds"` // of which in user space
	Window   float64 `json:"window_seconds"`          // traffic window used for rates
	FillEmpt uint64  `json:"fill_ring_empty"`
	Drops    uint64  `json:"drops"`
	Wakeups  uint64  `json:"wakeups"`
	Allocs   uint64  `json:"allocs"`
	CoreBusy float64 `json:"dut_cores_busy_seconds"` // all work on the DUT's cores (/proc/stat)
	Summary  Summary `json:"summary"`
	Err      string  `json:"error,omitempty"`
}

// Pkts is the packet count the row is judged on: frames that reached the
// sink for l2fwd, frames the DUT received for rxdrop.
func (r *Result) Pkts() uint64 {
	if r.Scenario != "" && strings.HasPrefix(r.Scenario, "l2fwd") {
		return r.Sunk
	}
	return r.RxPkts
}

// Mpps is the rate over the traffic window.
func (r *Result) Mpps() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Pkts()) / r.Window / 1e6
}

// NsPerPkt is the DUT's CPU time during the traffic window per packet.
func (r *Result) NsPerPkt() float64 {
	if r.Pkts() == 0 || r.WinCPU < 0 {
		return math.NaN()
	}
	return r.WinCPU * 1e9 / float64(r.Pkts())
}

// RusageNsPerPkt is the DUT's CPU time over its whole life (getrusage at
// exit: start-up, settling and shutdown included) per packet.
func (r *Result) RusageNsPerPkt() float64 {
	if r.Pkts() == 0 {
		return math.NaN()
	}
	return r.DUTCPU * 1e9 / float64(r.Pkts())
}

// Bench is a prepared benchmark: binaries built, topology up.
type Bench struct {
	cfg      Config
	bins     map[string]string
	missing  map[string]string // binary -> why it is unavailable
	topo     topo.Topology
	gen, dut *topo.Namespace
	sink     *topo.Namespace
	genIf    string
	env      Env
	inMAC    string
	speed    int // Mb/s of In (NIC mode)
	ranOnce  bool
	tmp      string
	log      io.Writer
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Reps == 0 {
		c.Reps = 1
	}
	if c.Repeat == 0 {
		c.Repeat = 4 << 20
	}
	if c.XDPMode == "" {
		c.XDPMode = "native"
	}
	if c.Bind == "" {
		c.Bind = "copy"
		if c.In != "" {
			c.Bind = "auto"
		}
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	if c.Settle == 0 {
		c.Settle = 500 * time.Millisecond
	}
	if c.Sink == "" {
		c.Sink = "xdp"
	}
	if c.DUTCPUs == "" && c.In == "" {
		c.DUTCPUs = "1"
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
}

// Prepare builds the binaries and the topology. Close undoes it.
func Prepare(ctx context.Context, cfg Config) (*Bench, error) {
	cfg.Defaults()
	if cfg.Sink != "xdp" && cfg.Sink != "nft" {
		return nil, fmt.Errorf("sink %q: want xdp or nft", cfg.Sink)
	}
	b := &Bench{cfg: cfg, bins: map[string]string{}, missing: map[string]string{}, log: cfg.Log}
	if _, _, err := b.selected(); err != nil {
		return nil, err
	}
	err := b.build(ctx)
	if err == nil && cfg.In == "" {
		err = b.vethTopology()
	} else if err == nil {
		err = b.nicSetup()
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close removes the namespaces and the temporary binaries.
func (b *Bench) Close() error {
	err := b.topo.Close()
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
	return err
}

func (b *Bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, format+"\n", args...)
}

func (b *Bench) build(ctx context.Context) error {
	dir := b.cfg.BinDir
	if dir == "" {
		t, err := os.MkdirTemp("", "tygress-bench-")
		if err != nil {
			return err
		}
		b.tmp, dir = t, t
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Build only what the selected implementations need (gVisor's packages
	// take a while to compile from a cold cache).
	need := []string{"xdpgen", "kernxdp"}
	wantTyfwd, wantC := false, false
	for _, im := range b.candidates() {
		switch {
		case im.Bin == "xdpsock-c":
			wantC = true
		case im.Bin == "tyfwd-alt":
			if b.bins["tyfwd-alt"], err = filepath.Abs(b.cfg.TyfwdAlt); err != nil {
				return err
			}
		case im.Bin == "tyfwd":
			wantTyfwd = true
		case !slices.Contains(need, im.Bin):
			need = append(need, im.Bin)
		}
	}
	var pkgs []string
	for _, n := range need {
		if n == "xdpgen" {
			pkgs = append(pkgs, "./cmd/xdpgen")
		} else {
			pkgs = append(pkgs, "./cmd/peers/"+n)
		}
	}
	b.logf("building %s", strings.Join(pkgs, " "))
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = b.cfg.BenchDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build peers: %w\n%s", err, out)
	}
	for _, n := range need {
		b.bins[n] = filepath.Join(dir, n)
	}
	if wantC {
		b.buildXDPSockC(ctx, dir)
	}
	if !wantTyfwd {
		return nil
	}
	if b.cfg.Tyfwd != "" {
		if _, err := os.Stat(b.cfg.Tyfwd); err != nil {
			b.missing["tyfwd"] = err.Error()
		} else {
			b.bins["tyfwd"], _ = filepath.Abs(b.cfg.Tyfwd)
		}
		return nil
	}
	b.logf("building ../cmd/tyfwd")
	cmd = exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "tyfwd"), "./cmd/tyfwd")
	cmd.Dir = filepath.Join(b.cfg.BenchDir, "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.missing["tyfwd"] = "go build ./cmd/tyfwd: " + firstLine(string(out))
		b.logf("tyfwd unavailable, its rows are skipped: %s", b.missing["tyfwd"])
	} else {
		b.bins["tyfwd"] = filepath.Join(dir, "tyfwd")
	}
	return nil
}

// buildXDPSockC builds the C reference peer cmd/peers/xdpsock-c: its XDP
// program with clang -target bpf, then the loader (which embeds it) with
// the system C compiler ($CC, else cc) and libbpf. When either fails its
// rows are skipped, like tyfwd's.
func (b *Bench) buildXDPSockC(ctx context.Context, dir string) {
	src := filepath.Join(b.cfg.BenchDir, "cmd", "peers", "xdpsock-c")
	obj, bin := filepath.Join(dir, "xdpsock-c.bpf.o"), filepath.Join(dir, "xdpsock-c")
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	// linux/bpf.h needs asm/types.h from the multiarch directory, which
	// clang does not search for -target bpf.
	bpfArgs := []string{"-O2", "-g", "-target", "bpf", "-Wall", "-Werror"}
	if m, err := exec.CommandContext(ctx, cc, "-dumpmachine").Output(); err == nil {
		bpfArgs = append(bpfArgs, "-I/usr/include/"+strings.TrimSpace(string(m)))
	}
	steps := [][]string{
		append(append([]string{"clang"}, bpfArgs...), "-c", filepath.Join(src, "xdpsock.bpf.c"), "-o", obj),
		{cc, "-O2", "-Wall", "-Wextra", "-Werror", `-DXDPSOCK_BPF_OBJ="` + obj + `"`,
			filepath.Join(src, "xdpsock.c"), "-o", bin, "-lbpf", "-lpthread"},
	}
	b.logf("building cmd/peers/xdpsock-c (clang -target bpf, %s, libbpf)", cc)
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			why := firstLine(string(out))
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "error") { // gcc and clang start with "In function ..."
					why = strings.TrimSpace(l)
					break
				}
			}
			if why == "" {
				why = err.Error()
			}
			b.missing["xdpsock-c"] = s[0] + ": " + why
			b.logf("xdpsock-c unavailable, its rows are skipped: %s", b.missing["xdpsock-c"])
			return
		}
	}
	b.bins["xdpsock-c"] = bin
}

// firstLine is the first line of s that says something (not a "# pkg"
// header of go build), marked when more follows.
func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "# ") && i+1 < len(lines) {
			continue
		}
		if i+1 < len(lines) {
			return l + " ..."
		}
		return l
	}
	return ""
}

func (b *Bench) vethTopology() error {
	var err error
	if b.gen, err = b.topo.AddNamespace("tybench-gen-"); err != nil {
		return err
	}
	if b.dut, err = b.topo.AddNamespace("tybench-dut-"); err != nil {
		return err
	}
	if b.sink, err = b.topo.AddNamespace("tybench-sink-"); err != nil {
		return err
	}
	gen := &topo.Port{NS: b.gen, Name: "gen0", Addrs: []string{"10.77.0.1/24"}}
	in := &topo.Port{NS: b.dut, Name: "dut0", Addrs: []string{"10.77.0.2/24"}}
	if err := topo.NewVeth(gen, in, topo.VethOptions{}); err != nil {
		return err
	}
	out := &topo.Port{NS: b.dut, Name: "dut1", Addrs: []string{"10.78.0.1/24"}}
	sink := &topo.Port{NS: b.sink, Name: "sink0", Addrs: []string{"10.78.0.2/24"}}
	if err := topo.NewVeth(out, sink, topo.VethOptions{}); err != nil {
		return err
	}
	b.genIf, b.inMAC = "gen0", in.MAC.String()
	b.env = Env{In: "dut0", Out: "dut1", SinkMAC: sink.MAC.String(), Queues: 1, Cores: b.cfg.DUTCPUs,
		XDPMode: b.cfg.XDPMode, Bind: b.cfg.Bind, Batch: b.cfg.Batch}
	b.logf("topology: %s/gen0 -> %s/dut0, %s/dut1 -> %s/sink0", b.gen.Name, b.dut.Name, b.dut.Name, b.sink.Name)
	return nil
}

func (b *Bench) nicSetup() error {
	ifc, err := net.InterfaceByName(b.cfg.In)
	if err != nil {
		return err
	}
	b.inMAC = ifc.HardwareAddr.String()
	q := b.cfg.Queues
	if q == 0 {
		q = queueCount(b.cfg.In)
	}
	b.speed = linkSpeed(b.cfg.In)
	cores := b.cfg.DUTCPUs
	if cores == "" {
		cores = defaultCores(q, b.cfg.GenCPU, b.cfg.GenIf != "")
	}
	b.genIf = b.cfg.GenIf
	b.env = Env{In: b.cfg.In, Out: b.cfg.Out, SinkMAC: b.cfg.DstMAC, Queues: q, Cores: cores,
		XDPMode: b.cfg.XDPMode, Bind: b.cfg.Bind, Batch: b.cfg.Batch}
	if b.cfg.Out != "" {
		if _, err := net.InterfaceByName(b.cfg.Out); err != nil {
			return err
		}
	}
	b.logf("real-NIC mode: %s (%d queues, %d Mb/s), DUT cores %s", b.cfg.In, q, b.speed, cores)
	return nil
}

// queueCount is the number of combined (or rx) channels of iface, from
// ethtool -l, falling back to /sys/class/net/IF/queues.
func queueCount(iface string) int {
	if out, err := exec.Command("ethtool", "-l", iface).Output(); err == nil {
		// The second "Combined:" / "RX:" block is the current setting.
		var comb, rx []int
		for _, l := range strings.Split(string(out), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				continue
			}
			switch strings.TrimSpace(k) {
			case "Combined":
				comb = append(comb, n)
			case "RX":
				rx = append(rx, n)
			}
		}
		if len(comb) == 2 && comb[1] > 0 {
			return comb[1]
		}
		if len(rx) == 2 && rx[1] > 0 {
			return rx[1]
		}
	}
	m, _ := filepath.Glob(filepath.Join("/sys/class/net", iface, "queues", "rx-*"))
	return max(len(m), 1)
}

func linkSpeed(iface string) int {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", iface, "speed"))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// defaultCores gives one core per queue, skipping the generator's.
func defaultCores(queues, genCPU int, skipGen bool) string {
	var cpus []string
	for c := 0; len(cpus) < queues && c < 4096; c++ {
		if skipGen && c == genCPU {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/sys/devices/system/cpu/cpu%d", c)); err != nil {
			break
		}
		cpus = append(cpus, strconv.Itoa(c))
	}
	return strings.Join(cpus, ",")
}

// candidates are the implementations the configuration asks for.
func (b *Bench) candidates() []Impl {
	var ims []Impl
	for _, im := range Impls {
		if len(b.cfg.Impls) > 0 && !slices.Contains(b.cfg.Impls, im.Name) {
			continue
		}
		if len(b.cfg.Impls) == 0 && b.cfg.In != "" && !im.NIC {
			continue
		}
		ims = append(ims, im)
	}
	if b.cfg.TyfwdAlt != "" {
		for _, im := range slices.Clone(ims) {
			if im.Bin == "tyfwd" {
				im.Name = strings.Replace(im.Name, "tyfwd-", "tyfwd-alt-", 1)
				im.Bin, im.Class = "tyfwd-alt", Peer
				ims = append(ims, im)
			}
		}
	}
	return ims
}

// selected returns the scenarios and implementations to run.
func (b *Bench) selected() ([]Scenario, []Impl, error) {
	var scs []Scenario
	for _, s := range Scenarios {
		if len(b.cfg.Scenarios) == 0 || slices.Contains(b.cfg.Scenarios, s.Name) {
			scs = append(scs, s)
		}
	}
	for _, n := range b.cfg.Scenarios {
		if !slices.ContainsFunc(Scenarios, func(s Scenario) bool { return s.Name == n }) {
			return nil, nil, fmt.Errorf("unknown scenario %q", n)
		}
	}
	for _, n := range b.cfg.Impls {
		if !slices.ContainsFunc(Impls, func(i Impl) bool { return i.Name == n }) {
			return nil, nil, fmt.Errorf("unknown implementation %q", n)
		}
	}
	var ims []Impl
	for _, im := range b.candidates() {
		if _, ok := b.missing[im.Bin]; !ok {
			ims = append(ims, im)
		}
	}
	if b.cfg.In != "" {
		if b.cfg.Out == "" {
			scs = slices.DeleteFunc(scs, func(s Scenario) bool { return s.Kind == "l2fwd" })
		}
		if b.cfg.GenIf == "" {
			// The external generator sends one size: keep one scenario per kind.
			n := b.cfg.NICLen
			if n == 0 {
				n = 60
			}
			for i := range scs {
				scs[i].Len = n
				scs[i].Name = fmt.Sprintf("%s-%dB", scs[i].Kind, lenLabel(n))
			}
			scs = slices.CompactFunc(scs, func(a, c Scenario) bool { return a.Kind == c.Kind })
		}
	}
	return scs, ims, nil
}

// lenLabel is the size a frame of n bytes (no FCS) is named by: 64 for a
// 60-byte frame, the IP packet size for larger ones.
func lenLabel(n int) int {
	if n <= 60 {
		return n + 4
	}
	return n - 14
}

// RunAll runs every selected (scenario, implementation) Reps times,
// interleaving implementations within a repetition so that drift in the
// machine spreads over all of them.
func (b *Bench) RunAll(ctx context.Context) ([]Result, error) {
	scs, ims, err := b.selected()
	if err != nil {
		return nil, err
	}
	var res []Result
	for rep := 1; rep <= b.cfg.Reps; rep++ {
		for _, sc := range scs {
			for _, im := range ims {
				if im.Kind != sc.Kind {
					continue
				}
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				b.logf("rep %d/%d  %-13s %-20s", rep, b.cfg.Reps, sc.Name, im.Name)
				r := b.RunOne(ctx, sc, im, rep)
				if r.Err != "" {
					b.logf("  error: %s", r.Err)
				} else {
					b.logf("  %.3f Mpps, %.1f ns/pkt of DUT CPU in the window, %.1f over its life", r.Mpps(), r.NsPerPkt(), r.RusageNsPerPkt())
				}
				res = append(res, r)
			}
		}
	}
	return res, nil
}

// RunOne runs one implementation in one scenario.
func (b *Bench) RunOne(ctx context.Context, sc Scenario, im Impl, rep int) Result {
	r := Result{Scenario: sc.Name, Impl: im.Name, Class: im.Class.String(), Mode: im.Mode, Rep: rep, Len: sc.Len}
	if err := b.runOne(ctx, sc, im, &r); err != nil {
		r.Err = err.Error()
	}
	return r
}

func (b *Bench) runOne(ctx context.Context, sc Scenario, im Impl, r *Result) error {
	env := b.env
	// Every DUT also stops by itself, should the harness die.
	env.Duration = b.cfg.Duration + b.cfg.Settle + 30*time.Second
	if sc.Kind == "l2fwd" && env.Out == "" {
		return errors.New("l2fwd needs an output port (-o)")
	}
	for _, ifc := range []string{env.In, env.Out} {
		if ifc == "" {
			continue
		}
		if b.cfg.In != "" && !b.ranOnce && xdpAttached(nil, ifc) {
			// Not ours to remove: a real port's program belongs to its owner.
			return fmt.Errorf("an XDP program is already attached to %s; detach it first", ifc)
		}
		b.clearXDP(b.dut, ifc)
	}
	b.ranOnce = true

	var sink *proc
	var sinkRx0 uint64
	stackSink := sc.Kind == "l2fwd" && b.sink != nil && b.cfg.Sink == "nft"
	if stackSink {
		b.clearXDP(b.sink, "sink0")
		gro := "off"
		if im.Class == Kernel {
			gro = "on"
		}
		if err := topo.Ethtool(b.sink, "-K", "sink0", "gro", gro); err != nil {
			return err
		}
		if err := topo.Run(b.sink, "nft", "add table netdev tybench_sink; add chain netdev tybench_sink in { type filter hook ingress device sink0 priority 0; policy drop; }"); err != nil {
			return err
		}
		var err error
		if sinkRx0, err = b.sinkRx(); err != nil {
			return err
		}
	}
	if sc.Kind == "l2fwd" && b.sink != nil && !stackSink {
		b.clearXDP(b.sink, "sink0")
		var err error
		sink, err = startProc("sink", command(b.sink, strconv.Itoa(b.cfg.GenCPU), b.bins["kernxdp"],
			"drop", "-i", "sink0", "--quiet", "--xdp-mode", b.cfg.XDPMode, "--duration", env.Duration.String()))
		if err != nil {
			return err
		}
		defer sink.stop(5 * time.Second)
		if err := b.waitXDP(ctx, b.sink, "sink0", sink); err != nil {
			return err
		}
	}

	dut, err := startProc(im.Name, command(b.dut, env.Cores, b.bins[im.Bin], im.Args(&env)...))
	if err != nil {
		return err
	}
	defer dut.stop(10 * time.Second)
	if err := b.waitXDP(ctx, b.dut, env.In, dut); err != nil {
		return err
	}
	attached := time.Now()
	userAtAttach, sysAtAttach, okAtAttach := procTimes(dut.cmd.Process.Pid)
	select {
	case <-time.After(b.cfg.Settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	if dut.exited() {
		_, _, err := dut.result()
		return fmt.Errorf("exited before traffic: %w", err)
	}

	cpus := parseCPUs(env.Cores)
	stat0 := readCPUStat()
	user0, sys0, ok0 := procTimes(dut.cmd.Process.Pid)
	var user1, sys1 float64
	var ok1 bool
	var genStart time.Time
	if b.genIf != "" {
		genStart = time.Now()
		gen, err := startProc("xdpgen", command(b.gen, strconv.Itoa(b.cfg.GenCPU), b.bins["xdpgen"],
			"-i", b.genIf, "--dst-mac", b.inMAC, "--len", strconv.Itoa(sc.Len), "--duration", b.cfg.Duration.String(),
			"--repeat", strconv.FormatUint(uint64(b.cfg.Repeat), 10), "--quiet"))
		if err != nil {
			return err
		}
		gen.wait(ctx)
		user1, sys1, ok1 = procTimes(dut.cmd.Process.Pid)
		gs, gcpu, err := gen.result()
		if err != nil {
			return err
		}
		r.GenPkts, r.GenSecs, r.GenCPU = gs.Uint("tx_pkts"), gs.Float("seconds"), gcpu.Seconds()
		r.GenWall = gen.wall.Seconds()
		r.Window = r.GenSecs
		// Let the rings drain before stopping the DUT.
		time.Sleep(200 * time.Millisecond)
	} else {
		// External traffic: the window is from attach to stop.
		select {
		case <-time.After(b.cfg.Duration):
		case <-ctx.Done():
		}
		genStart = attached
		user0, sys0, ok0 = userAtAttach, sysAtAttach, okAtAttach
		user1, sys1, ok1 = procTimes(dut.cmd.Process.Pid)
	}
	if ok0 && ok1 {
		r.WinCPU = user1 + sys1 - user0 - sys0
		r.WinUser = user1 - user0
	} else {
		r.WinCPU = -1 // unknown
	}
	stat1 := readCPUStat()
	stopAt := time.Now()
	dut.stop(10 * time.Second)
	if b.genIf == "" {
		r.Window = stopAt.Sub(genStart).Seconds()
	}
	r.CoreBusy = stat1.busy(cpus) - stat0.busy(cpus)

	s, cpu, err := dut.result()
	if err != nil {
		return err
	}
	r.Summary = s
	r.DUTCPU, r.DUTWall = cpu.Seconds(), dut.wall.Seconds()
	r.RxPkts, r.TxPkts = s.Uint("rx_pkts"), s.Uint("tx_pkts")
	r.FillEmpt, r.Drops, r.Wakeups, r.Allocs = s.Uint("fill_ring_empty"), s.Uint("drops"), s.Uint("wakeups"), s.Uint("allocs")
	if sink != nil {
		sink.stop(5 * time.Second)
		ss, _, err := sink.result()
		if err != nil {
			return err
		}
		r.Sunk = ss.Uint("rx_pkts")
	} else if stackSink {
		n, err := b.sinkRx()
		if err != nil {
			return err
		}
		r.Sunk = n - sinkRx0
	} else if sc.Kind == "l2fwd" {
		r.Sunk = r.TxPkts // NIC mode: no sink we can see
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// waitXDP waits until an XDP program is attached to ifc in ns (the DUT's
// sign of being ready), or the process exits, or 15 s pass.
func (b *Bench) waitXDP(ctx context.Context, ns *topo.Namespace, ifc string, p *proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if xdpAttached(ns, ifc) {
			return nil
		}
		if p.exited() {
			_, _, err := p.result()
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("before attaching XDP to %s: %w", ifc, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no XDP program on %s after 15 s; output:\n%s", ifc, indent(p.output()))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func xdpAttached(ns *topo.Namespace, ifc string) bool {
	var att bool
	ns.Do(func() error {
		l, err := netlink.LinkByName(ifc)
		if err == nil && l.Attrs().Xdp != nil {
			att = l.Attrs().Xdp.Attached
		}
		return nil
	})
	return att
}

// clearXDP removes a netlink-attached XDP program a crashed peer may have
// left (asavie/xdp attaches without a bpf_link). bpf_link attachments go
// away with their process.
// sinkRx reads the sink port's rx_packets counter.
func (b *Bench) sinkRx() (uint64, error) {
	out, err := topo.Output(b.sink, "cat", "/sys/class/net/sink0/statistics/rx_packets")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(out), 10, 64)
}

func (b *Bench) clearXDP(ns *topo.Namespace, ifc string) {
	if !xdpAttached(ns, ifc) {
		return
	}
	for _, m := range []string{"xdp", "xdpgeneric", "xdpdrv"} {
		topo.Run(ns, "ip", "link", "set", "dev", ifc, m, "off")
	}
	// A bpf_link of a process that is still exiting: give it a moment.
	for i := 0; i < 50 && xdpAttached(ns, ifc); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Impls returns the implementations this benchmark can run (selected and
// built).
func (b *Bench) Impls() []Impl {
	_, ims, _ := b.selected()
	return ims
}
