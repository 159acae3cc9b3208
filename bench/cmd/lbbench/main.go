// Command lbbench is the load-balancer benchmark of issue 5: `tyfwd lb`
// (NAT mode, Maglev + connection table) against the kernel doing the same
// job (nftables DNAT with jhash over conntrack) and against tyfwd's own
// l2fwd (the forwarding floor without the balancer's work), on one
// topology, with the same traffic, in the same run. Run as root from the
// bench module:
//
//	cd bench && go run ./cmd/lbbench                      # 3 reps x 5 s
//	cd bench && go run ./cmd/lbbench -reps 5 -json r.json
//	cd bench && go run ./cmd/lbbench -impls gen,lb -profile /tmp/lbprof
//
// Topology (unique names, removed on exit and on Ctrl-C):
//
//	[gen ns] gen0 ==veth== dutc [DUT ns] dutb ==veth== be0 [backend ns]
//
// dutc is the client side (10.89.0.2/24, the VIP 10.89.0.100:9000/udp),
// dutb the backend side (10.89.1.1/24); be0 holds the three backends
// 10.89.1.11-13 and an XDP program that passes ARP (so the backends'
// kernel answers it) and counts and drops everything else: what reaches the
// backends is counted there and costs the DUT nothing beyond the veth
// transmit. Tx checksum offload is off on every veth end.
//
// Traffic: bench/cmd/xdpgen (BPF_PROG_TEST_RUN live frames, XDP_TX out of
// gen0) on the generator CPU, 60-byte UDP/IPv4 frames (64 on a wire) to the
// VIP, rotating -flows flows (source ports x source addresses, one flow per
// frame), as fast as the CPU goes.
//
// Implementations, one after the other on the same topology, interleaved
// per repetition:
//
//	gen       the generator alone into an XDP_DROP program on dutc: the
//	          baseline subtracted from the others
//	lb        tyfwd lb --mode nat --health none --queues 1 --cores DUT
//	nft       kernel router with nftables `dnat to jhash ip saddr . udp
//	          sport mod 3 map {...}` (conntrack), GRO on dutc: the
//	          whole path runs in dutc's NAPI, on the generator's CPU
//	nft-rps   the same with RPS steering dutc's packets to the DUT CPU
//	l2fwd     tyfwd l2fwd dutc -> dutb (MAC rewrite only)
//
// What it costs: on veth the receive side of dutc (tyfwd's XDP program and
// the copy into the UMEM; the kernel's whole forwarding path without RPS)
// runs on the CPU that sends, the generator's. So the DUT's CPU time is
// measured as the busy time of both CPUs (/proc/stat) minus the generator's
// share, the generator baseline's busy time of its CPU per offered frame
// times the frames offered (sys-ns/pkt), and in a second way as the CPU time of our
// processes (generator, DUT, ksoftirqd threads) minus the baseline's per
// frame (proc-ns/pkt), which is blind to softirq work charged to other
// processes or to idle but not to other programs on the machine.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/tygress/tygress/bench/internal/harness"
	"github.com/tygress/tygress/bench/internal/xdpprog"
	"github.com/tygress/tygress/internal/topo"
)

type config struct {
	duration  time.Duration
	warmup    time.Duration
	reps      int
	flows     int
	ports     int
	conntrack int
	impls     []string
	jsonPath  string
	tyfwd     string
	genCPU    int
	dutCPU    int
	profile   string
	micro     bool
	microTime string
}

var allImpls = []string{"gen", "lb", "nft", "nft-rps", "l2fwd"}

// defaultImpls leaves out nft: on this kernel (6.18) the kernel path fed
// by live frames forwards nothing when it runs in dutc's NAPI on the
// generator's CPU (see docs/benchmarks.md); nft-rps is the kernel peer.
var defaultImpls = []string{"gen", "lb", "nft-rps", "l2fwd"}

const (
	genIf  = "gen0"
	cliIf  = "dutc"
	backIf = "dutb"
	beIf   = "be0"

	vip      = "10.89.0.100"
	vipPort  = 9000
	srcBase  = "10.89.0.10"
	dutCli   = "10.89.0.2/24"
	dutBack  = "10.89.1.1/24"
	sportLow = 10000
)

var backends = []string{"10.89.1.11", "10.89.1.12", "10.89.1.13"}

func main() { os.Exit(run()) }

func run() int {
	var c config
	var impls string
	fs := flag.NewFlagSet("lbbench", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured interval of each run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "traffic before the measured interval (connection tables fill)")
	fs.IntVar(&c.reps, "reps", 3, "repetitions (implementations interleaved); medians are reported")
	fs.IntVar(&c.flows, "flows", 100000, "UDP flows the generator rotates through")
	fs.IntVar(&c.ports, "ports", 50000, "source ports per source address (flows / ports addresses from "+srcBase+")")
	fs.IntVar(&c.conntrack, "conntrack", 262144, "tyfwd lb --conntrack (connection table capacity)")
	fs.StringVar(&impls, "impls", strings.Join(defaultImpls, ","), "implementations to run, of "+strings.Join(allImpls, ",")+" (gen is the baseline the others need)")
	fs.StringVar(&c.jsonPath, "json", "", "also write every run's numbers to this file")
	fs.StringVar(&c.tyfwd, "tyfwd", "", "prebuilt tyfwd binary (default: build ../cmd/tyfwd)")
	fs.IntVar(&c.genCPU, "gen-cpu", 0, "CPU of the generator")
	fs.IntVar(&c.dutCPU, "dut-cpu", 1, "CPU of the DUT (tyfwd's worker; nft-rps's RPS target)")
	fs.StringVar(&c.profile, "profile", "", "write a CPU profile of tyfwd over each measured interval into this directory (pprof via --admin)")
	fs.BoolVar(&c.micro, "micro", true, "also run the lb micro-benchmarks (go test -bench 'Maglev|ConnTable|Process' ./lb)")
	fs.StringVar(&c.microTime, "micro-benchtime", "1s", "-benchtime of the micro-benchmarks")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	c.impls = split(impls)
	for _, i := range c.impls {
		if !slices.Contains(allImpls, i) {
			fmt.Fprintf(os.Stderr, "lbbench: unknown implementation %q (want %v)\n", i, allImpls)
			return 2
		}
	}
	if !slices.Contains(c.impls, "gen") {
		c.impls = append([]string{"gen"}, c.impls...)
	}
	if c.reps < 1 || c.flows < 1 || c.ports < 1 || c.ports > 65536-sportLow || (c.flows-1)/c.ports > 200 {
		fmt.Fprintf(os.Stderr, "lbbench: -reps >= 1, -flows >= 1, -ports 1..%d, at most 200 source addresses\n", 65536-sportLow)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "lbbench: needs root (namespaces, XDP, AF_XDP, nftables)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{cfg: c}
	res, err := b.run(ctx)
	if cerr := b.close(); cerr != nil {
		fmt.Fprintln(os.Stderr, "lbbench: cleanup:", cerr)
	}
	var micro []microResult
	var microErr error
	if c.micro && ctx.Err() == nil && b.dir != "" {
		micro, microErr = runMicro(ctx, b.dir, c.dutCPU, c.microTime)
		if microErr != nil {
			fmt.Fprintln(os.Stderr, "lbbench: micro-benchmarks:", microErr)
		}
	}
	if len(res) > 0 {
		report(os.Stdout, &c, res, micro)
	}
	if c.jsonPath != "" && len(res) > 0 {
		out := struct {
			Runs  []Result      `json:"runs"`
			Micro []microResult `json:"micro"`
		}{res, micro}
		if bs, err := json.MarshalIndent(out, "", "  "); err == nil {
			err = os.WriteFile(c.jsonPath, append(bs, '\n'), 0o644)
			if err != nil {
				fmt.Fprintln(os.Stderr, "lbbench:", err)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbbench:", err)
		return 1
	}
	for _, r := range res {
		if r.Err != "" {
			return 1
		}
	}
	if microErr != nil {
		return 1
	}
	return 0
}

func split(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// sample is everything read at one end of the measured interval.
type sample struct {
	t          time.Time
	busy       map[int]float64 // per CPU, /proc/stat, seconds
	softirq    float64         // both CPUs
	dutSoftirq float64         // the DUT CPU
	genCPU     float64         // generator process
	dutCPU     float64         // DUT process (tyfwd), 0 for the kernel
	ksoftirqd  float64
	fwd        uint64 // frames counted at be0
	offered    uint64 // dutc rx_packets + rx_dropped: frames the generator got to dutc
	ok         bool
}

// Result is one implementation, one repetition.
type Result struct {
	Impl    string  `json:"impl"`
	Rep     int     `json:"rep"`
	Seconds float64 `json:"seconds"`
	Fwd     uint64  `json:"forwarded"` // counted at the backends
	Offered uint64  `json:"offered"`   // frames the generator delivered to dutc (incl. ring-full drops)
	// Busy is both CPUs' busy time (/proc/stat) in the interval; Procs
	// the CPU time of generator + DUT process + ksoftirqd threads; DUT the
	// DUT process alone; Softirq both CPUs' softirq time.
	Busy    float64 `json:"busy_seconds"`
	CPU0    float64 `json:"cpu0_busy_seconds"`
	CPU1    float64 `json:"cpu1_busy_seconds"`
	Procs   float64 `json:"procs_seconds"`
	Gen     float64 `json:"gen_seconds"`
	DUT     float64 `json:"dut_seconds"`
	Softirq float64 `json:"softirq_seconds"`
	// DUTSoftirq is the DUT CPU's softirq time (/proc/stat).
	DUTSoftirq float64 `json:"dut_cpu_softirq_seconds"`
	// Baseline per offered frame, from the same repetition's gen run.
	BaseBusyNs float64 `json:"base_busy_ns_per_offered"`
	BaseProcNs float64 `json:"base_procs_ns_per_offered"`
	Allocs     float64 `json:"allocs_per_pkt"` // tyfwd's summary, whole life; -1: unknown
	// WinAllocs is tyfwd's heap allocations in the measured interval
	// (go_memstats_mallocs_total over --admin, one scrape's own
	// subtracted); -1: unknown.
	WinAllocs float64         `json:"window_allocs"`
	Flows     int             `json:"lb_flows"` // tyfwd lb's table at exit, -1 unknown
	Summary   harness.Summary `json:"dut_summary,omitempty"`
	Err       string          `json:"error,omitempty"`
}

func (r *Result) Mpps() float64        { return float64(r.Fwd) / r.Seconds / 1e6 }
func (r *Result) OfferedMpps() float64 { return float64(r.Offered) / r.Seconds / 1e6 }

// SysNs is the DUT's busy time per forwarded frame: both CPUs' busy time
// less the generator's share (baseline busy per offered frame x frames
// offered).
func (r *Result) SysNs() float64 {
	return (r.Busy - r.BaseBusyNs*1e-9*float64(r.Offered)) * 1e9 / float64(r.Fwd)
}

// ProcNs is the same from our processes' CPU time.
func (r *Result) ProcNs() float64 {
	return (r.Procs - r.BaseProcNs*1e-9*float64(r.Offered)) * 1e9 / float64(r.Fwd)
}

// DUTNs is the DUT process's own CPU time per forwarded frame (tyfwd).
func (r *Result) DUTNs() float64 { return r.DUT * 1e9 / float64(r.Fwd) }

// DUTCPUNs is the forwarding work done on the DUT CPU per forwarded frame,
// the receive side on the generator's CPU left out for both kinds: tyfwd's
// process CPU time (its worker is pinned there; softirq that interrupts
// it, such as the backends' XDP_DROP run from its transmit, is charged to
// it), or for the kernel with RPS the DUT CPU's softirq time (the backlog:
// conntrack, NAT, routing, transmit). NaN for the others.
func (r *Result) DUTCPUNs() float64 {
	switch r.Impl {
	case "lb", "l2fwd":
		return r.DUTNs()
	case "nft-rps":
		return r.DUTSoftirq * 1e9 / float64(r.Fwd)
	}
	return math.NaN()
}

type bench struct {
	cfg       config
	dir       string // bench module
	tmp       string
	bins      map[string]string
	topo      topo.Topology
	gen, dut  *topo.Namespace
	be        *topo.Namespace
	cliMAC    string
	beMAC     string
	beCounter *xdpprog.Counter
	beProg    *ebpf.Program
	beLink    link.Link
	ksoft     []int
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (b *bench) close() error {
	var errs []error
	if b.beLink != nil {
		errs = append(errs, b.beLink.Close())
	}
	if b.beProg != nil {
		b.beProg.Close()
	}
	if b.beCounter != nil {
		b.beCounter.Close()
	}
	errs = append(errs, b.topo.Close())
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
	return errors.Join(errs...)
}

func (b *bench) prepare(ctx context.Context) error {
	var err error
	if b.dir, err = harness.BenchDir(); err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp("", "tygress-lbbench-"); err != nil {
		return err
	}
	if b.cfg.profile != "" {
		if err := os.MkdirAll(b.cfg.profile, 0o755); err != nil {
			return err
		}
	}
	b.bins = map[string]string{}
	b.logf("building ./cmd/xdpgen")
	if err := harness.BuildBench(ctx, b.dir, b.tmp, "./cmd/xdpgen"); err != nil {
		return err
	}
	b.bins["xdpgen"] = filepath.Join(b.tmp, "xdpgen")
	if slices.Contains(b.cfg.impls, "lb") || slices.Contains(b.cfg.impls, "l2fwd") {
		if b.cfg.tyfwd != "" {
			b.bins["tyfwd"], _ = filepath.Abs(b.cfg.tyfwd)
		} else {
			b.logf("building ../cmd/tyfwd")
			b.bins["tyfwd"] = filepath.Join(b.tmp, "tyfwd")
			if err := harness.BuildTyfwd(ctx, b.dir, b.bins["tyfwd"]); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat("/usr/sbin/nft"); err != nil && (slices.Contains(b.cfg.impls, "nft") || slices.Contains(b.cfg.impls, "nft-rps")) {
		return errors.New("nft not found (apt-get install nftables, or make deps)")
	}
	if b.gen, err = b.topo.AddNamespace("tybench-lb-gen-"); err != nil {
		return err
	}
	if b.dut, err = b.topo.AddNamespace("tybench-lb-dut-"); err != nil {
		return err
	}
	if b.be, err = b.topo.AddNamespace("tybench-lb-be-"); err != nil {
		return err
	}
	gen := &topo.Port{NS: b.gen, Name: genIf}
	cli := &topo.Port{NS: b.dut, Name: cliIf}
	if err := topo.NewVeth(gen, cli, topo.VethOptions{}); err != nil {
		return err
	}
	back := &topo.Port{NS: b.dut, Name: backIf}
	var beAddrs []string
	for _, a := range backends {
		beAddrs = append(beAddrs, a+"/24")
	}
	be := &topo.Port{NS: b.be, Name: beIf, Addrs: beAddrs}
	if err := topo.NewVeth(back, be, topo.VethOptions{}); err != nil {
		return err
	}
	b.cliMAC, b.beMAC = cli.MAC.String(), be.MAC.String()
	if err := topo.Run(b.dut, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	// The backends: count and drop (ARP passes so that tyfwd lb resolves
	// them as it would real ones).
	if b.beCounter, err = xdpprog.NewCounter(); err != nil {
		return err
	}
	if b.beProg, err = xdpprog.DropCountingPassARP(b.beCounter); err != nil {
		return err
	}
	if b.beLink, err = attach(b.be, beIf, b.beProg); err != nil {
		return err
	}
	b.ksoft = ksoftirqdPIDs([]int{b.cfg.genCPU, b.cfg.dutCPU})
	b.logf("topology: %s/%s (generator, CPU %d) -> %s/%s  %s/%s -> %s/%s (backends %s, XDP count+drop)",
		b.gen.Name, genIf, b.cfg.genCPU, b.dut.Name, cliIf, b.dut.Name, backIf, b.be.Name, beIf, strings.Join(backends, ","))
	return nil
}

// attach attaches prog to ifc in ns (native XDP) through a bpf_link this
// process holds.
func attach(ns *topo.Namespace, ifc string, prog *ebpf.Program) (link.Link, error) {
	var l link.Link
	err := ns.Do(func() error {
		nl, err := netlink.LinkByName(ifc)
		if err != nil {
			return err
		}
		l, _, err = xdpprog.Attach(prog, nl.Attrs().Index, "native")
		return err
	})
	return l, err
}

func ksoftirqdPIDs(cpus []int) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, d := range dirs {
		bs, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		for _, c := range cpus {
			if strings.TrimSpace(string(bs)) == fmt.Sprintf("ksoftirqd/%d", c) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func (b *bench) run(ctx context.Context) ([]Result, error) {
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	var res []Result
	for rep := 1; rep <= b.cfg.reps; rep++ {
		var base *Result
		for _, impl := range b.cfg.impls {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			b.logf("rep %d/%d  %s", rep, b.cfg.reps, impl)
			r := Result{Impl: impl, Rep: rep, Allocs: -1, WinAllocs: -1, Flows: -1}
			if err := b.runImpl(ctx, &r); err != nil {
				r.Err = err.Error()
				b.logf("  %s: error: %s", impl, firstLines(r.Err, 8))
			}
			if impl == "gen" && r.Err == "" {
				// The generator's share is its own CPU's busy time: the
				// other CPU has nothing of ours to do in this run.
				r.BaseBusyNs = r.CPU0 * 1e9 / float64(r.Offered)
				r.BaseProcNs = r.Procs * 1e9 / float64(r.Offered)
				base = &r
			} else if base != nil {
				r.BaseBusyNs, r.BaseProcNs = base.BaseBusyNs, base.BaseProcNs
			} else if r.Err == "" {
				r.Err = "no generator baseline in this repetition"
			}
			if r.Err == "" {
				b.logf("  %-7s fwd %6.3f Mpps  offered %6.3f Mpps  busy cpu%d %3.0f%% cpu%d %3.0f%%  dut-cpu-ns/pkt %6.1f  sys-ns/pkt %6.1f  proc-ns/pkt %6.1f  allocs/pkt %s",
					impl, r.Mpps(), r.OfferedMpps(), b.cfg.genCPU, 100*r.CPU0/r.Seconds, b.cfg.dutCPU, 100*r.CPU1/r.Seconds,
					r.DUTCPUNs(), r.SysNs(), r.ProcNs(), allocStr(r.Allocs))
			}
			res = append(res, r)
		}
	}
	return res, ctx.Err()
}

// runImpl sets the DUT up as impl, runs the generator, measures the
// interval after the warm-up, and tears the DUT down again.
func (b *bench) runImpl(ctx context.Context, r *Result) error {
	c := &b.cfg
	life := c.warmup + c.duration + 2*time.Minute // should this program die
	cpu := strconv.Itoa(c.dutCPU)
	var dut *harness.Proc
	var err error
	var adminSock string
	switch r.Impl {
	case "gen":
		cnt, err := xdpprog.NewCounter()
		if err != nil {
			return err
		}
		defer cnt.Close()
		prog, err := xdpprog.DropCounting(cnt)
		if err != nil {
			return err
		}
		defer prog.Close()
		l, err := attach(b.dut, cliIf, prog)
		if err != nil {
			return err
		}
		defer l.Close()
	case "nft", "nft-rps":
		undo, err := b.kernelSetup(r.Impl == "nft-rps")
		defer undo()
		if err != nil {
			return err
		}
		// GRO on gives veth a NAPI that takes the generator's XDP
		// frames into the stack (an XDP_PASS program drops them here:
		// rx_queue_0_xdp_drops counts every one).
		if err := topo.Ethtool(b.dut, "-K", cliIf, "gro", "on"); err != nil {
			return err
		}
		defer topo.Ethtool(b.dut, "-K", cliIf, "gro", "off")
	case "lb":
		args := []string{"lb", "-i", cliIf, "-o", backIf, "--addr", dutCli, "--addr", dutBack,
			"--vip", fmt.Sprintf("%s:%d/udp", vip, vipPort)}
		for _, a := range backends {
			args = append(args, "--backend", a)
		}
		args = append(args, "--mode", "nat", "--health", "none", "--queues", "1", "--cores", cpu, "--quiet",
			"--conntrack", strconv.Itoa(c.conntrack), "--duration", life.String())
		adminSock = filepath.Join(b.tmp, fmt.Sprintf("admin-%s-%d.sock", r.Impl, r.Rep))
		args = append(args, "--admin", "unix:"+adminSock)
		if dut, err = harness.StartProc("tyfwd lb", b.dut, cpu, b.bins["tyfwd"], args...); err != nil {
			return err
		}
	case "l2fwd":
		args := []string{"l2fwd", "-i", cliIf, "-o", backIf, "--dst-mac", b.beMAC, "--queues", "1", "--cores", cpu, "--quiet",
			"--duration", life.String()}
		adminSock = filepath.Join(b.tmp, fmt.Sprintf("admin-%s-%d.sock", r.Impl, r.Rep))
		args = append(args, "--admin", "unix:"+adminSock)
		if dut, err = harness.StartProc("tyfwd l2fwd", b.dut, cpu, b.bins["tyfwd"], args...); err != nil {
			return err
		}
	}
	if dut != nil {
		defer dut.Stop(10 * time.Second)
		if err := harness.WaitXDP(ctx, b.dut, cliIf, dut); err != nil {
			return err
		}
	}
	genArgs := []string{"-i", genIf, "--dst-mac", b.cliMAC, "--src", srcBase, "--dst", vip,
		"--sport", strconv.Itoa(sportLow), "--dport", strconv.Itoa(vipPort), "--len", "60",
		"--flows", strconv.Itoa(c.flows), "--ports", strconv.Itoa(c.ports),
		"--duration", (c.warmup + c.duration + 5*time.Second).String(), "--repeat", "262144",
		"--cpu", strconv.Itoa(c.genCPU), "--quiet"}
	gen, err := harness.StartProc("xdpgen", b.gen, strconv.Itoa(c.genCPU), b.bins["xdpgen"], genArgs...)
	if err != nil {
		return err
	}
	defer gen.Stop(5 * time.Second)
	if err := sleep(ctx, c.warmup, gen, dut); err != nil {
		return err
	}
	// Two scrapes: the second's delta is what one scrape allocates, and
	// the window holds one more.
	var m0 float64
	merr := errors.New("no admin endpoint")
	var adm *harness.Admin
	if adminSock != "" {
		adm = harness.NewAdmin(adminSock)
		var ma float64
		if ma, merr = adm.Mallocs(); merr == nil {
			m0, merr = adm.Mallocs()
			m0 += m0 - ma
		}
	}
	s0 := b.sample(gen, dut)
	profDone := make(chan error, 1)
	if adminSock != "" && c.profile != "" {
		path := filepath.Join(c.profile, fmt.Sprintf("%s-rep%d.pprof", r.Impl, r.Rep))
		go func() { profDone <- adm.Profile(c.duration, path) }()
	}
	if err := sleep(ctx, c.duration, gen, dut); err != nil {
		return err
	}
	s1 := b.sample(gen, dut)
	if adminSock != "" && merr == nil {
		if m1, err := adm.Mallocs(); err == nil {
			r.WinAllocs = max(m1-m0, 0)
		}
	}
	if adminSock != "" && c.profile != "" {
		if err := <-profDone; err != nil {
			b.logf("  profile: %v", err)
		}
	}
	if !s0.ok || !s1.ok {
		return errors.New("could not sample the counters")
	}
	r.Seconds = s1.t.Sub(s0.t).Seconds()
	r.Fwd, r.Offered = s1.fwd-s0.fwd, s1.offered-s0.offered
	r.CPU0 = s1.busy[c.genCPU] - s0.busy[c.genCPU]
	r.CPU1 = s1.busy[c.dutCPU] - s0.busy[c.dutCPU]
	r.Busy = r.CPU0 + r.CPU1
	r.Softirq = s1.softirq - s0.softirq
	r.DUTSoftirq = s1.dutSoftirq - s0.dutSoftirq
	r.Gen, r.DUT = s1.genCPU-s0.genCPU, s1.dutCPU-s0.dutCPU
	r.Procs = r.Gen + r.DUT + s1.ksoftirqd - s0.ksoftirqd
	// The generator runs on past the window; stopping it cuts its last
	// call short, and nothing of its own count is used.
	gen.Stop(10 * time.Second)
	if dut != nil {
		dut.Stop(10 * time.Second)
		s, _, err := dut.Result()
		if err != nil {
			return err
		}
		r.Summary = s
		if s.Has("allocs_per_pkt") {
			r.Allocs = s.Float("allocs_per_pkt")
		}
		if s["exit"] != "" {
			return fmt.Errorf("%s: %s", r.Impl, s["exit"])
		}
		if r.Impl == "lb" {
			r.Flows = lbFlows(dut.Output())
		}
	}
	if r.Offered == 0 {
		return errors.New("the generator delivered nothing to " + cliIf)
	}
	if r.Impl != "gen" && r.Fwd == 0 {
		return fmt.Errorf("nothing reached the backends (offered %d)", r.Offered)
	}
	if r.Impl == "gen" {
		r.Fwd = r.Offered
	}
	return nil
}

// lbFlows reads flows=N from tyfwd lb's "lb: inbound=..." line.
func lbFlows(out string) int {
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "lb: ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "flows="); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
	}
	return -1
}

// sleep waits d unless the generator or the DUT exits or ctx ends.
func sleep(ctx context.Context, d time.Duration, gen, dut *harness.Proc) error {
	t := time.NewTimer(d)
	defer t.Stop()
	var dutDone <-chan struct{}
	if dut != nil {
		dutDone = dut.Done()
	}
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-gen.Done():
		return fmt.Errorf("generator exited early:\n%s", gen.Output())
	case <-dutDone:
		return fmt.Errorf("DUT exited early:\n%s", dut.Output())
	}
}

func (b *bench) sample(gen, dut *harness.Proc) sample {
	s := sample{t: time.Now(), ok: true}
	st := harness.ReadCPUTimes()
	s.busy = map[int]float64{}
	for _, c := range []int{b.cfg.genCPU, b.cfg.dutCPU} {
		s.busy[c] = st[c].Busy
		s.softirq += st[c].Softirq
	}
	s.dutSoftirq = st[b.cfg.dutCPU].Softirq
	var ok bool
	if s.genCPU, ok = gen.CPU(); !ok {
		s.ok = false
	}
	if dut != nil {
		if s.dutCPU, ok = dut.CPU(); !ok {
			s.ok = false
		}
	}
	for _, p := range b.ksoft {
		v, _ := harness.PidCPU(p) // a kernel thread does not exit
		s.ksoftirqd += v
	}
	n, err := b.beCounter.Read()
	if err != nil {
		s.ok = false
	}
	s.fwd = n
	err = b.dut.Do(func() error {
		l, err := netlink.LinkByName(cliIf)
		if err != nil {
			return err
		}
		st := l.Attrs().Statistics
		if st == nil {
			return errors.New("no link statistics")
		}
		s.offered = st.RxPackets + st.RxDropped
		return nil
	})
	if err != nil {
		s.ok = false
	}
	return s
}

// kernelSetup makes the DUT namespace a kernel router that DNATs the VIP
// to the backends with nftables (conntrack); the returned function undoes
// it.
func (b *bench) kernelSetup(rps bool) (func(), error) {
	var undo []func()
	done := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, a := range [][2]string{{cliIf, dutCli}, {backIf, dutBack}} {
		if err := topo.Run(b.dut, "ip", "addr", "replace", a[1], "dev", a[0]); err != nil {
			return done, err
		}
		undo = append(undo, func() { topo.Run(b.dut, "ip", "addr", "del", a[1], "dev", a[0]) })
	}
	for _, a := range backends {
		if err := topo.Run(b.dut, "ip", "neigh", "replace", a, "lladdr", b.beMAC, "dev", backIf, "nud", "permanent"); err != nil {
			return done, err
		}
	}
	var m []string
	for i, a := range backends {
		m = append(m, fmt.Sprintf("%d : %s", i, a))
	}
	rules := fmt.Sprintf(`table ip tybench_lb {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s udp dport %d dnat to jhash ip saddr . udp sport mod %d map { %s }
	}
}
`, vip, vipPort, len(backends), strings.Join(m, ", "))
	f := filepath.Join(b.tmp, "lb.nft")
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		return done, err
	}
	if err := topo.Run(b.dut, "nft", "-f", f); err != nil {
		return done, err
	}
	undo = append(undo, func() {
		topo.Run(b.dut, "nft", "delete", "table", "ip", "tybench_lb")
	})
	if rps {
		mask := fmt.Sprintf("%x", 1<<b.cfg.dutCPU)
		path := "/sys/class/net/" + cliIf + "/queues/rx-0/rps_cpus"
		if err := topo.Run(b.dut, "sh", "-c", "echo "+mask+" > "+path); err != nil {
			return done, err
		}
		undo = append(undo, func() { topo.Run(b.dut, "sh", "-c", "echo 0 > "+path) })
	}
	return done, nil
}

func firstLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = append(l[:n], "...")
	}
	return strings.Join(l, "\n    ")
}
