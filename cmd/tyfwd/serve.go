package main

// tyfwd serve: the host stack on an interface, with built-in services.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/internal/admin"
	"github.com/tygress/tygress/stack"
	"github.com/tygress/tygress/stack/host"
	"github.com/tygress/tygress/stack/route"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// serveCfg is what serve's flags configure.
type serveCfg struct {
	c           common
	iface       string
	addrs       listFlag
	gateways    listFlag
	routes      listFlag
	echoPort    int
	discardPort int
	statsPort   int
	rcvBuf      int
	noDAD       bool
	echoMode    string
}

func cmdServe(ctx context.Context, args []string, out io.Writer) error {
	var s serveCfg
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	s.c.register(fs)
	fs.StringVar(&s.iface, "i", "", "interface to serve on (required)")
	fs.Var(&s.addrs, "addr", "address with prefix length, e.g. 10.0.0.2/24 or fd00::2/64 (repeatable, at least one)")
	fs.Var(&s.gateways, "gateway", "default gateway, IPv4 or IPv6 (repeatable: one per family)")
	fs.Var(&s.routes, "route", "static route DST=GATEWAY, e.g. 192.0.2.0/24=10.0.0.1 (repeatable)")
	fs.IntVar(&s.echoPort, "echo-port", 7, "UDP echo service port (0: off)")
	fs.IntVar(&s.discardPort, "discard-port", 9, "UDP discard service port (0: off)")
	fs.IntVar(&s.statsPort, "stats-port", 9100, "UDP stats service port: any datagram gets the counters as key=value lines (0: off)")
	fs.IntVar(&s.rcvBuf, "rcvbuf", 1<<20, "receive buffer of each service socket, bytes per shard")
	fs.BoolVar(&s.noDAD, "no-dad", false, "use IPv6 addresses at once, without duplicate address detection")
	fs.StringVar(&s.echoMode, "echo-mode", "inline", "how the echo service runs: inline (a handler on the shards, answering in place) or socket (a goroutine on a UDP socket)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := s.validate()
	if err != nil {
		return err
	}
	log := s.c.ops.log

	// Each shard runs on a locked OS thread that blocks in poll(): give the
	// service goroutines a P of their own, or (under taskset, where Go
	// sizes GOMAXPROCS to the allowed CPUs) a shard that sleeps holds the
	// only P until sysmon takes it back, and every hand-off to a socket
	// reader waits for that.
	queues := cfg.Queues
	if queues == 0 {
		queues = 1
		if n, err := dataplane.RxQueues(s.iface); err == nil {
			queues = n
		}
	}
	if runtime.GOMAXPROCS(0) < queues+1 {
		runtime.GOMAXPROCS(queues + 1)
	}
	var h *host.Host
	h, err = host.Open(cfg)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			err = fmt.Errorf("%w: %w", dataplane.ErrPermission, err)
		}
		return err
	}
	defer h.Close()
	log.Info("serving", "interface", s.iface, "queues", len(h.Links()), "xdp_mode", h.Mode, "bind_mode", h.Bind,
		"addrs", s.addrs.String())
	for _, r := range h.Stack.Routes() {
		log.Debug("route", "route", r.String())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.c.duration > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, s.c.duration)
		defer stop()
	}
	var wg sync.WaitGroup
	var svcErr error
	var svcMu sync.Mutex
	startSvc := func(name string, port int, serve func(*stack.UDPConn) error) error {
		if port == 0 {
			return nil
		}
		c, err := h.Stack.ListenPacket("udp", fmt.Sprintf(":%d", port))
		if err != nil {
			return fmt.Errorf("%s service: %w", name, err)
		}
		log.Info("service", "name", name, "port", port)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := serve(c)
			if err != nil && ctx.Err() == nil {
				svcMu.Lock()
				svcErr = fmt.Errorf("%s service: %w", name, err)
				svcMu.Unlock()
				cancel()
			}
		}()
		context.AfterFunc(ctx, func() { c.Close() })
		return nil
	}
	if s.echoMode == "inline" && s.echoPort != 0 {
		remove, err := h.Stack.HandleUDP(uint16(s.echoPort), stack.UDPHandlerFunc(func(r *stack.UDPRequest) { r.Echo() }))
		if err != nil {
			return fmt.Errorf("echo service: %w", err)
		}
		defer remove()
		log.Info("service", "name", "echo", "port", s.echoPort, "mode", "inline")
	} else if err := startSvc("echo", s.echoPort, serveEcho); err != nil {
		return err
	}
	if err := startSvc("discard", s.discardPort, serveDiscard); err != nil {
		return err
	}
	if err := startSvc("stats", s.statsPort, func(c *stack.UDPConn) error { return serveStats(c, h.Stack) }); err != nil {
		return err
	}

	if s.c.ops.admin != "" {
		srv := admin.New(log)
		if err := srv.Register(newStackCollector(h.Stack)); err != nil {
			return err
		}
		if err := srv.Start(s.c.ops.admin); err != nil {
			return err
		}
		defer srv.Close()
	}

	rep := newServeReporter(out, s.c.interval, s.c.quiet, h.Stack)
	go rep.loop(ctx)
	runErr := h.Run(ctx)
	cancel()
	wg.Wait()
	rep.stop()
	rep.summary()
	log.Info("stopped")
	if runErr != nil {
		return runErr
	}
	return svcErr
}

func (s *serveCfg) validate() (host.Config, error) {
	var cfg host.Config
	if err := s.c.validate(); err != nil {
		return cfg, err
	}
	if len(s.c.ops.captures) > 0 {
		return cfg, usageError{"--capture: serve has no pipeline stages to capture"}
	}
	if s.iface == "" {
		return cfg, usageError{"-i IFACE is required"}
	}
	if len(s.addrs) == 0 {
		return cfg, usageError{"at least one --addr is required"}
	}
	sc := stack.Config{CPUs: s.c.cpus, Batch: s.c.batch, UDPRecvBuffer: s.rcvBuf, DAD: !s.noDAD}
	for _, a := range s.addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return cfg, usageError{fmt.Sprintf("--addr %q: want ADDRESS/PREFIXLEN", a)}
		}
		sc.Addrs = append(sc.Addrs, p)
	}
	for _, g := range s.gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return cfg, usageError{fmt.Sprintf("--gateway %q: not an IP address", g)}
		}
		sc.Gateways = append(sc.Gateways, a)
	}
	for _, r := range s.routes {
		dst, gw, ok := strings.Cut(r, "=")
		p, err1 := netip.ParsePrefix(dst)
		a, err2 := netip.ParseAddr(gw)
		if !ok || err1 != nil || err2 != nil {
			return cfg, usageError{fmt.Sprintf("--route %q: want PREFIX=GATEWAY", r)}
		}
		sc.Routes = append(sc.Routes, route.Route{Dst: p, Gateway: a})
	}
	for name, p := range map[string]int{"echo-port": s.echoPort, "discard-port": s.discardPort, "stats-port": s.statsPort} {
		if p < 0 || p > 65535 {
			return cfg, usageError{fmt.Sprintf("--%s %d: must be 0..65535", name, p)}
		}
	}
	if s.echoMode != "inline" && s.echoMode != "socket" {
		return cfg, usageError{fmt.Sprintf("--echo-mode %q: want inline or socket", s.echoMode)}
	}
	if s.rcvBuf < 4096 || s.rcvBuf > 1<<30 {
		return cfg, usageError{fmt.Sprintf("--rcvbuf %d: must be 4096..2^30", s.rcvBuf)}
	}
	// Check the addresses and routes now, so that bad ones are a usage
	// error before anything is attached.
	if err := stack.CheckConfig(sc); err != nil {
		return cfg, usageError{err.Error()}
	}
	return host.Config{Interface: s.iface, Queues: s.c.queues, XDPMode: s.c.mode, Socket: s.c.opts, Stack: sc}, nil
}

// serveEcho sends every datagram back to its sender, in batches.
func serveEcho(c *stack.UDPConn) error {
	ms := make([]stack.Message, 64)
	for i := range ms {
		ms[i].Buf = make([]byte, 65536)
	}
	out := make([]stack.Message, 64)
	for {
		n, err := c.ReadBatch(ms)
		if err != nil {
			return closedOK(err)
		}
		for i := range n {
			out[i] = stack.Message{Buf: ms[i].Buf[:ms[i].N], Addr: ms[i].Addr}
		}
		if _, err := c.WriteBatch(out[:n]); err != nil {
			return closedOK(err)
		}
	}
}

// serveDiscard reads and forgets.
func serveDiscard(c *stack.UDPConn) error {
	ms := make([]stack.Message, 64)
	for i := range ms {
		ms[i].Buf = make([]byte, 65536)
	}
	for {
		if _, err := c.ReadBatch(ms); err != nil {
			return closedOK(err)
		}
	}
}

// serveStats answers any datagram with the stack's counters.
func serveStats(c *stack.UDPConn, st *stack.Stack) error {
	buf := make([]byte, 2048)
	for {
		_, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return closedOK(err)
		}
		if _, err := c.WriteToUDPAddrPort([]byte(statsText(st)), from); err != nil {
			return closedOK(err)
		}
	}
}

func closedOK(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// statsText renders the stack's counters as key=value lines.
func statsText(st *stack.Stack) string {
	s := st.Stats()
	var b strings.Builder
	kv := func(k string, v uint64) { fmt.Fprintf(&b, "%s=%d\n", k, v) }
	kv("rx_frames", s.RxFrames)
	kv("tx_frames", s.Transmitted)
	kv("udp_rx", s.UDPRx)
	kv("udp_tx", s.UDPTx)
	kv("echo_v4", s.EchoV4)
	kv("echo_v6", s.EchoV6)
	kv("icmp_errors_out", s.ICMPOut)
	kv("icmp_rate_limited", s.ICMPLimited)
	kv("reassembled", s.Reassembled)
	kv("fragments_out", s.FragsOut)
	for i, v := range s.Drops {
		if v != 0 {
			kv("drop_"+strings.ToLower(stack.DropReason(i).String()), v)
		}
	}
	return b.String()
}

// serveReporter prints the per-second lines and the summary of serve.
type serveReporter struct {
	out      io.Writer
	interval time.Duration
	quiet    bool
	st       *stack.Stack
	start    time.Time
	cpu0     time.Duration
	alloc0   uint64
	first    stack.Stats
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

func newServeReporter(out io.Writer, interval time.Duration, quiet bool, st *stack.Stack) *serveReporter {
	return &serveReporter{out: out, interval: interval, quiet: quiet, st: st, start: time.Now(),
		cpu0: cpuTime(), alloc0: allocs(), first: st.Stats(), done: make(chan struct{})}
}

func (r *serveReporter) loop(ctx context.Context) {
	r.wg.Add(1)
	defer r.wg.Done()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	prev, pt := r.first, r.start
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case now := <-t.C:
			cur := r.st.Stats()
			if !r.quiet {
				d := now.Sub(pt)
				line := fmt.Sprintf("rx %s/s  tx %s/s  udp-rx %s/s  udp-tx %s/s  echo %s/s  drop %s/s",
					group(perSec(cur.RxFrames-prev.RxFrames, d)), group(perSec(cur.Transmitted-prev.Transmitted, d)),
					group(perSec(cur.UDPRx-prev.UDPRx, d)), group(perSec(cur.UDPTx-prev.UDPTx, d)),
					group(perSec(cur.EchoV4+cur.EchoV6-prev.EchoV4-prev.EchoV6, d)), group(perSec(cur.Dropped()-prev.Dropped(), d)))
				for i := range cur.Drops {
					if n := cur.Drops[i] - prev.Drops[i]; n != 0 {
						line += fmt.Sprintf("  %s %s/s", strings.ToLower(stack.DropReason(i).String()), group(perSec(n, d)))
					}
				}
				fmt.Fprintln(r.out, line)
			}
			prev, pt = cur, now
		}
	}
}

func (r *serveReporter) stop() {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
}

func (r *serveReporter) summary() {
	s := r.st.Stats()
	d := time.Since(r.start)
	pkts := s.RxFrames - r.first.RxFrames
	cpu := cpuTime() - r.cpu0
	var nsPer, allocPer float64
	if pkts > 0 {
		nsPer = float64(cpu.Nanoseconds()) / float64(pkts)
		allocPer = float64(allocs()-r.alloc0) / float64(pkts)
	}
	line := fmt.Sprintf("summary: rx_pkts=%d tx_pkts=%d udp_rx=%d udp_tx=%d echo=%d icmp_errors=%d drops=%d",
		pkts, s.Transmitted-r.first.Transmitted, s.UDPRx-r.first.UDPRx, s.UDPTx-r.first.UDPTx,
		s.EchoV4+s.EchoV6-r.first.EchoV4-r.first.EchoV6, s.ICMPOut-r.first.ICMPOut, s.Dropped()-r.first.Dropped())
	for i, v := range s.Drops {
		if n := v - r.first.Drops[i]; n != 0 {
			line += fmt.Sprintf(" drop_%s=%d", strings.ToLower(stack.DropReason(i).String()), n)
		}
	}
	line += fmt.Sprintf(" seconds=%.3f cpu_ns_per_pkt=%.1f allocs_per_pkt=%.4f", d.Seconds(), nsPer, allocPer)
	fmt.Fprintln(r.out, line)
}

// stackCollector exports the stack's counters to Prometheus at scrape time.
type stackCollector struct{ st *stack.Stack }

func newStackCollector(st *stack.Stack) prometheus.Collector { return stackCollector{st} }

var (
	descStackRx    = prometheus.NewDesc("tygress_stack_rx_frames_total", "Frames the host stack received.", nil, nil)
	descStackTx    = prometheus.NewDesc("tygress_stack_tx_frames_total", "Frames the host stack transmitted.", nil, nil)
	descStackUDPRx = prometheus.NewDesc("tygress_stack_udp_rx_datagrams_total", "UDP datagrams delivered to sockets.", nil, nil)
	descStackUDPTx = prometheus.NewDesc("tygress_stack_udp_tx_datagrams_total", "UDP datagrams sent.", nil, nil)
	descStackEcho  = prometheus.NewDesc("tygress_stack_icmp_echo_replies_total", "ICMP echo replies sent.", nil, nil)
	descStackICMP  = prometheus.NewDesc("tygress_stack_icmp_errors_sent_total", "ICMP errors sent.", nil, nil)
	descStackDrops = prometheus.NewDesc("tygress_stack_drops_total", "Frames the host stack dropped, by reason.", []string{"reason"}, nil)
)

func (c stackCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStackRx, descStackTx, descStackUDPRx, descStackUDPTx, descStackEcho, descStackICMP, descStackDrops} {
		ch <- d
	}
}

func (c stackCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descStackRx, s.RxFrames)
	counter(descStackTx, s.Transmitted)
	counter(descStackUDPRx, s.UDPRx)
	counter(descStackUDPTx, s.UDPTx)
	counter(descStackEcho, s.EchoV4+s.EchoV6)
	counter(descStackICMP, s.ICMPOut)
	for i, v := range s.Drops {
		if v != 0 {
			counter(descStackDrops, v, strings.ToLower(stack.DropReason(i).String()))
		}
	}
}
