// Command udpecho is the UDP echo benchmark of issue 4: `tyfwd serve`'s
// UDP echo service (Tygress's host stack on AF_XDP) against a Go UDP echo
// server on a kernel socket (cmd/peers/udpecho), on the same topology, in
// the same run. Run as root from the bench module:
//
//	cd bench && go run ./cmd/udpecho                       # 5 s, 1 repetition
//	cd bench && go run ./cmd/udpecho -reps 3 -json r.json  # medians of 3
//	cd bench && go run ./cmd/udpecho -ipv6 -size 64
//
// Topology: [client ns] cli0 ==veth== srv0 [server ns], tx checksum offload
// off on both ends. The client (10.96.0.1/24, fd00:96::1/64) is this program
// re-executed as `udpecho client` in the client namespace, pinned to CPU 0;
// the server runs in the server namespace pinned to CPU 1: `tyfwd serve -i
// srv0 --addr 10.96.0.2/24 --addr fd00:96::2/64 --queues 1 --cores 1` (srv0
// has no kernel addresses then), or the kernel peer with the same addresses
// on srv0. Modes: throughput (-window requests in flight over -sockets
// sockets, answers counted over -duration after -warmup) and latency (one
// request in flight, -n round trips timed by the client).
//
// Per row: requests/s, the server process's CPU time (user+sys, from
// /proc/PID/stat, over the measured interval only) per request, requests/s
// per server core (responses / server CPU seconds), the server CPU's busy
// time per request (/proc/stat: softirq work on that core included),
// latency percentiles and the server's heap allocations per packet.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/harness"
	"github.com/tygress/tygress/internal/topo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		os.Exit(runClient(os.Args[2:]))
	}
	os.Exit(run())
}

type config struct {
	duration  time.Duration
	warmup    time.Duration
	reps      int
	window    int
	sockets   int
	size      int
	latN      int
	ipv6      bool
	impls     []string
	modes     []string
	jsonPath  string
	tyfwd     string
	clientCPU int
	serverCPU int
	noLock    bool
	profile   string
	env       map[string][]string // impl -> KEY=VAL for its server
}

var allImpls = []string{"tyfwd", "tyfwd-socket", "kernel"}
var allModes = []string{"throughput", "latency"}

func run() int {
	var c config
	var impls, modes string
	fs := flag.NewFlagSet("udpecho", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured interval of each throughput run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warm-up before each measured interval")
	fs.IntVar(&c.reps, "reps", 1, "repetitions (implementations interleaved); medians are reported")
	fs.IntVar(&c.window, "window", 32, "throughput: requests in flight")
	fs.IntVar(&c.sockets, "sockets", 8, "throughput: client sockets (source ports)")
	fs.IntVar(&c.size, "size", 18, "UDP payload bytes; 18 makes a 60-byte IPv4 frame, 64 bytes on the wire with FCS")
	fs.IntVar(&c.latN, "n", 20000, "latency: round trips measured per run")
	fs.BoolVar(&c.ipv6, "ipv6", false, "use IPv6 (fd00:96::2) instead of IPv4 (10.96.0.2)")
	fs.StringVar(&impls, "impls", strings.Join(allImpls, ","), "servers to run")
	fs.StringVar(&modes, "modes", strings.Join(allModes, ","), "modes to run")
	fs.StringVar(&c.jsonPath, "json", "", "also write every run's numbers to this file")
	fs.StringVar(&c.tyfwd, "tyfwd", "", "prebuilt tyfwd binary (default: build ../cmd/tyfwd)")
	fs.IntVar(&c.clientCPU, "client-cpu", 0, "CPU of the load client")
	fs.IntVar(&c.serverCPU, "server-cpu", 1, "CPU of the server")
	fs.StringVar(&c.profile, "profile", "", "write a CPU profile of tyfwd over each measured interval into this directory (pprof via --admin)")
	c.env = map[string][]string{}
	fs.Func("tyfwd-env", "KEY=VAL,... environment for tyfwd serve (e.g. GOMAXPROCS=2)", func(v string) error {
		c.env["tyfwd"], c.env["tyfwd-socket"] = split(v), split(v)
		return nil
	})
	fs.Func("kernel-env", "KEY=VAL,... environment for the kernel peer", func(v string) error { c.env["kernel"] = split(v); return nil })
	fs.BoolVar(&c.noLock, "kernel-no-lock", false, "kernel peer: do not lock/pin its serving goroutine to an OS thread (taskset only)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	c.impls, c.modes = split(impls), split(modes)
	for _, i := range c.impls {
		if !slices.Contains(allImpls, i) {
			fmt.Fprintf(os.Stderr, "udpecho: unknown implementation %q (want %v)\n", i, allImpls)
			return 2
		}
	}
	for _, m := range c.modes {
		if !slices.Contains(allModes, m) {
			fmt.Fprintf(os.Stderr, "udpecho: unknown mode %q (want %v)\n", m, allModes)
			return 2
		}
	}
	if c.reps < 1 || c.size < 10 || c.size > 1400 {
		fmt.Fprintln(os.Stderr, "udpecho: -reps must be >= 1, -size 10..1400")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "udpecho: needs root (namespaces, XDP, AF_XDP)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{cfg: c}
	res, err := b.run(ctx)
	if cerr := b.close(); cerr != nil {
		fmt.Fprintln(os.Stderr, "udpecho: cleanup:", cerr)
	}
	if len(res) > 0 {
		report(os.Stdout, &c, res)
	}
	if c.jsonPath != "" && len(res) > 0 {
		if err := writeJSON(c.jsonPath, res); err != nil {
			fmt.Fprintln(os.Stderr, "udpecho:", err)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpecho:", err)
		return 1
	}
	for _, r := range res {
		if r.Err != "" {
			return 1
		}
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

// Result is one implementation in one mode, one repetition.
type Result struct {
	Impl       string  `json:"impl"`
	Mode       string  `json:"mode"`
	Rep        int     `json:"rep"`
	Family     string  `json:"family"`
	Payload    int     `json:"udp_payload"`
	Frame      int     `json:"frame_len"` // Ethernet frame without FCS
	Window     int     `json:"window"`
	Responses  uint64  `json:"responses"`
	Seconds    float64 `json:"seconds"`
	Resent     uint64  `json:"resent"`
	ServerCPU  float64 `json:"server_cpu_seconds"`  // process, measured interval
	CoreBusy   float64 `json:"server_core_seconds"` // server CPU busy (/proc/stat)
	ClientBusy float64 `json:"client_core_seconds"`
	P50        float64 `json:"p50_ns"`
	P90        float64 `json:"p90_ns"`
	P99        float64 `json:"p99_ns"`
	P999       float64 `json:"p999_ns"`
	Allocs     float64 `json:"server_allocs_per_pkt"` // -1: unknown
	// WinAllocs is the server's heap allocations in the measured interval
	// (tyfwd: go_memstats_mallocs_total over --admin, two scrapes
	// included), -1 when unknown.
	WinAllocs float64 `json:"server_window_allocs"`
	// Switches is the server's context switches (voluntary and not, all
	// threads) in the measured interval.
	Switches uint64          `json:"server_context_switches"`
	Server   harness.Summary `json:"server_summary"`
	Client   harness.Summary `json:"client_summary"`
	Err      string          `json:"error,omitempty"`
}

func (r *Result) RPS() float64 { return float64(r.Responses) / r.Seconds }

// NsPerReq is the server process's CPU time per answered request.
func (r *Result) NsPerReq() float64 { return r.ServerCPU * 1e9 / float64(r.Responses) }

// PerCore is answered requests per second of server CPU time.
func (r *Result) PerCore() float64 { return float64(r.Responses) / r.ServerCPU }

// CoreNsPerReq is the server core's busy time per answered request.
func (r *Result) CoreNsPerReq() float64 { return r.CoreBusy * 1e9 / float64(r.Responses) }

type bench struct {
	cfg            config
	tmp            string
	bins           map[string]string
	topo           topo.Topology
	client, server *topo.Namespace
	srvAddrs       []string
}

const (
	clientIf = "cli0"
	serverIf = "srv0"
)

func (b *bench) close() error {
	err := b.topo.Close()
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
	return err
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (b *bench) prepare(ctx context.Context) error {
	dir, err := harness.BenchDir()
	if err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp("", "tygress-udpecho-"); err != nil {
		return err
	}
	b.bins = map[string]string{}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b.bins["client"] = self
	if b.cfg.profile != "" {
		if err := os.MkdirAll(b.cfg.profile, 0o755); err != nil {
			return err
		}
	}
	if slices.Contains(b.cfg.impls, "kernel") {
		b.logf("building ./cmd/peers/udpecho")
		if err := harness.BuildBench(ctx, dir, b.tmp, "./cmd/peers/udpecho"); err != nil {
			return err
		}
		b.bins["kernel"] = filepath.Join(b.tmp, "udpecho")
	}
	if slices.Contains(b.cfg.impls, "tyfwd") || slices.Contains(b.cfg.impls, "tyfwd-socket") {
		if b.cfg.tyfwd != "" {
			b.bins["tyfwd"], _ = filepath.Abs(b.cfg.tyfwd)
		} else {
			b.logf("building ../cmd/tyfwd")
			b.bins["tyfwd"] = filepath.Join(b.tmp, "tyfwd")
			if err := harness.BuildTyfwd(ctx, dir, b.bins["tyfwd"]); err != nil {
				return err
			}
		}
		b.bins["tyfwd-socket"] = b.bins["tyfwd"]
	}
	if b.client, err = b.topo.AddNamespace("tybench-echo-cli-"); err != nil {
		return err
	}
	if b.server, err = b.topo.AddNamespace("tybench-echo-srv-"); err != nil {
		return err
	}
	cli := &topo.Port{NS: b.client, Name: clientIf, Addrs: []string{"10.96.0.1/24", "fd00:96::1/64"}}
	srv := &topo.Port{NS: b.server, Name: serverIf}
	if err := topo.NewVeth(cli, srv, topo.VethOptions{}); err != nil {
		return err
	}
	b.srvAddrs = []string{"10.96.0.2/24", "fd00:96::2/64"}
	b.logf("topology: %s/%s (client, CPU %d) == %s/%s (server, CPU %d)", b.client.Name, clientIf, b.cfg.clientCPU,
		b.server.Name, serverIf, b.cfg.serverCPU)
	return nil
}

// serverAddrs adds (on) or removes the kernel addresses of srv0.
func (b *bench) serverAddrs(on bool) error {
	return b.server.Do(func() error {
		l, err := netlink.LinkByName(serverIf)
		if err != nil {
			return err
		}
		for _, a := range b.srvAddrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			if strings.Contains(a, ":") {
				addr.Flags = unix.IFA_F_NODAD
			}
			if on {
				err = netlink.AddrReplace(l, addr)
			} else if err = netlink.AddrDel(l, addr); errors.Is(err, unix.EADDRNOTAVAIL) {
				err = nil
			}
			if err != nil {
				return fmt.Errorf("%s on %s: %w", a, serverIf, err)
			}
		}
		return nil
	})
}

func (b *bench) run(ctx context.Context) ([]Result, error) {
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	var res []Result
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, impl := range b.cfg.impls {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			rs := b.runImpl(ctx, impl, rep)
			for _, r := range rs {
				if r.Err != "" {
					b.logf("  %s %s: error: %s", r.Impl, r.Mode, r.Err)
				} else {
					b.logf("  %-6s %-10s %9.0f req/s  %7.0f ns/req server CPU  %7.0f ns/req server core  p50 %6.1f us  p99 %6.1f us  allocs/pkt %s",
						r.Impl, r.Mode, r.RPS(), r.NsPerReq(), r.CoreNsPerReq(), r.P50/1e3, r.P99/1e3, allocStr(r.Allocs))
				}
			}
			res = append(res, rs...)
		}
	}
	return res, ctx.Err()
}

// runImpl starts one server and runs every mode against it.
func (b *bench) runImpl(ctx context.Context, impl string, rep int) []Result {
	c := &b.cfg
	fail := func(err error) []Result {
		var rs []Result
		for _, m := range c.modes {
			rs = append(rs, Result{Impl: impl, Mode: m, Rep: rep, Err: err.Error()})
		}
		return rs
	}
	b.logf("rep %d/%d  %s", rep, c.reps, impl)
	// Should this program die, the server stops by itself.
	life := (c.warmup+c.duration)*time.Duration(len(c.modes)) + 5*time.Minute
	cpu := strconv.Itoa(c.serverCPU)
	var srv *harness.Proc
	var adm *harness.Admin
	var err error
	switch impl {
	case "tyfwd", "tyfwd-socket":
		if err := b.serverAddrs(false); err != nil {
			return fail(err)
		}
		// tyfwd: the built-in echo, a handler on the shard that answers in
		// place; tyfwd-socket: a goroutine on a stack.UDPConn (the socket API).
		mode := "inline"
		if impl == "tyfwd-socket" {
			mode = "socket"
		}
		srv, err = b.startServer("tyfwd serve", impl, "serve", "-i", serverIf,
			"--addr", b.srvAddrs[0], "--addr", b.srvAddrs[1], "--queues", "1", "--cores", cpu, "--quiet",
			"--echo-mode", mode, "--no-dad",
			"--duration", life.String(), "--admin", "unix:"+filepath.Join(b.tmp, "admin.sock"))
		adm = harness.NewAdmin(filepath.Join(b.tmp, "admin.sock"))
		if err != nil {
			return fail(err)
		}
		defer srv.Stop(10 * time.Second)
		if err := harness.WaitXDP(ctx, b.server, serverIf, srv); err != nil {
			return fail(err)
		}
	case "kernel":
		if err := b.serverAddrs(true); err != nil {
			return fail(err)
		}
		defer b.serverAddrs(false)
		args := []string{"--port", "7", "--duration", life.String()}
		if !c.noLock {
			args = append(args, "--cpu", cpu)
		} else {
			args = append(args, "--lock=false")
		}
		srv, err = b.startServer("kernel udpecho", impl, args...)
		if err != nil {
			return fail(err)
		}
		defer srv.Stop(10 * time.Second)
		if err := waitLine(ctx, srv, "listening", 10*time.Second); err != nil {
			return fail(err)
		}
	}
	var rs []Result
	for _, m := range c.modes {
		r := Result{Impl: impl, Mode: m, Rep: rep, Family: "IPv4", Payload: c.size, Frame: 14 + 20 + 8 + c.size, Window: c.window, Allocs: -1, WinAllocs: -1}
		if c.ipv6 {
			r.Family, r.Frame = "IPv6", 14+40+8+c.size
		}
		if m == "latency" {
			r.Window = 1
		}
		if err := b.runClient(ctx, srv, adm, &r); err != nil {
			r.Err = err.Error()
		}
		rs = append(rs, r)
	}
	srv.Stop(10 * time.Second)
	s, _, err := srv.Result()
	if err != nil {
		for i := range rs {
			if rs[i].Err == "" {
				rs[i].Err = "server: " + err.Error()
			}
		}
		return rs
	}
	for i := range rs {
		rs[i].Server = s
		if s.Has("allocs_per_pkt") {
			rs[i].Allocs = s.Float("allocs_per_pkt")
		}
	}
	return rs
}

// startServer starts impl's binary in the server namespace on the server
// CPU, through env(1) when it has environment settings (env execs, so the
// PID stays the server's).
func (b *bench) startServer(name, impl string, args ...string) (*harness.Proc, error) {
	bin := b.bins[impl]
	if e := b.cfg.env[impl]; len(e) > 0 {
		args = append(append(e, bin), args...)
		bin = "env"
	}
	return harness.StartProc(name, b.server, strconv.Itoa(b.cfg.serverCPU), bin, args...)
}

// waitLine waits until p prints a line starting with prefix.
func waitLine(ctx context.Context, p *harness.Proc, prefix string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l := <-p.Lines():
			if strings.HasPrefix(l, prefix) {
				return nil
			}
		case <-p.Done():
			_, _, err := p.Result()
			return fmt.Errorf("exited: %v\n%s", err, p.Output())
		case <-t.C:
			return fmt.Errorf("no %q line after %s:\n%s", prefix, timeout, p.Output())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runClient runs the load client in one mode against the running server
// srv and samples the server's CPU time at the client's window marks.
func (b *bench) runClient(ctx context.Context, srv *harness.Proc, adm *harness.Admin, r *Result) error {
	c := &b.cfg
	server := "10.96.0.2:7"
	if c.ipv6 {
		server = "[fd00:96::2]:7"
	}
	args := []string{"client", "-mode", r.Mode, "-server", server, "-cpu", strconv.Itoa(c.clientCPU),
		"-size", strconv.Itoa(c.size), "-warmup", c.warmup.String()}
	if r.Mode == "throughput" {
		args = append(args, "-window", strconv.Itoa(c.window), "-sockets", strconv.Itoa(c.sockets), "-duration", c.duration.String())
	} else {
		args = append(args, "-n", strconv.Itoa(c.latN))
	}
	cli, err := harness.StartProc("client", b.client, strconv.Itoa(c.clientCPU), b.bins["client"], args...)
	if err != nil {
		return err
	}
	defer cli.Stop(5 * time.Second)
	srvCores, cliCores := []int{c.serverCPU}, []int{c.clientCPU}
	var cpu0, busy0, cbusy0, m0 float64
	var cs0 uint64
	var ok0, started bool
	var merr error
	profDone := make(chan error, 1)
	deadline := time.NewTimer(c.warmup + c.duration + 3*time.Minute)
	defer deadline.Stop()
wait:
	for {
		select {
		case l := <-cli.Lines():
			switch l {
			case "window-start":
				cpu0, ok0 = srv.CPU()
				cs0 = ctxSwitches(srv.Pid())
				busy0, cbusy0 = harness.CoresBusy(srvCores), harness.CoresBusy(cliCores)
				started = true
				if adm != nil {
					// Two scrapes: the second's delta is what one costs,
					// and the window's delta holds about one.
					var ma float64
					if ma, merr = adm.Mallocs(); merr == nil {
						m0, merr = adm.Mallocs()
						m0 += m0 - ma
					}
					if c.profile != "" {
						d := c.duration
						if r.Mode == "latency" {
							d = 2 * time.Second
						}
						path := filepath.Join(c.profile, fmt.Sprintf("%s-%s-rep%d.pprof", r.Impl, r.Mode, r.Rep))
						go func() { profDone <- adm.Profile(d, path) }()
					}
				}
			case "window-end":
				cpu1, ok1 := srv.CPU()
				r.Switches = ctxSwitches(srv.Pid()) - cs0
				if !started || !ok0 || !ok1 {
					return errors.New("could not sample the server's CPU time")
				}
				r.ServerCPU = cpu1 - cpu0
				r.CoreBusy = harness.CoresBusy(srvCores) - busy0
				r.ClientBusy = harness.CoresBusy(cliCores) - cbusy0
				if adm != nil && merr == nil {
					if m1, err := adm.Mallocs(); err == nil {
						r.WinAllocs = m1 - m0
					}
				}
				break wait
			}
		case <-cli.Done():
			if !started {
				return fmt.Errorf("client exited before its window:\n%s", cli.Output())
			}
			return fmt.Errorf("client exited before the end of its window:\n%s", cli.Output())
		case <-deadline.C:
			return fmt.Errorf("client did not finish:\n%s", cli.Output())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cli.Wait(ctx)
	if adm != nil && c.profile != "" {
		if err := <-profDone; err != nil {
			b.logf("  profile: %v", err)
		}
	}
	s, _, err := cli.Result()
	if err != nil {
		return err
	}
	if s["exit"] != "" {
		return fmt.Errorf("client: %s", s["exit"])
	}
	r.Client = s
	r.Responses, r.Seconds, r.Resent = s.Uint("responses"), s.Float("seconds"), s.Uint("resent")
	r.P50, r.P90, r.P99, r.P999 = s.Float("p50_ns"), s.Float("p90_ns"), s.Float("p99_ns"), s.Float("p999_ns")
	if r.Responses == 0 || r.Seconds <= 0 {
		return fmt.Errorf("no answers:\n%s", cli.Output())
	}
	if r.ServerCPU <= 0 {
		return fmt.Errorf("no server CPU time measured (window %.2f s)", r.Seconds)
	}
	return nil
}

func writeJSON(path string, res []Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ctxSwitches sums voluntary and involuntary context switches of every
// live thread of pid.
func ctxSwitches(pid int) uint64 {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n uint64
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}
