package main

// tyfwd lb: the L4 load balancer on the data path.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tygress/tygress/bpf"
	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/lb"
	"github.com/tygress/tygress/lb/health"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/hoststage"
	"github.com/tygress/tygress/stack/neighbor"
)

type lbFlags struct {
	c          common
	client     string
	backendIf  string
	addrs      listFlag
	gateways   listFlag
	vips       listFlag
	backends   listFlag
	mode       string
	configFile string
	capacity   int
	hashSeed   uint64
	health     string
	hInterval  time.Duration
	hTimeout   time.Duration
	rise, fall int
	reloadPoll time.Duration
}

func cmdLB(ctx context.Context, args []string, out io.Writer) error {
	var f lbFlags
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	f.c.register(fs)
	fs.StringVar(&f.client, "i", "", "interface toward the clients (required)")
	fs.StringVar(&f.backendIf, "o", "", "interface toward the backends (required)")
	fs.Var(&f.addrs, "addr", "our address with prefix on the client or backend network (repeatable; NAT backends route replies to it)")
	fs.Var(&f.gateways, "gateway", "next hop for clients off the client network (repeatable: one per family)")
	fs.Var(&f.vips, "vip", "virtual service ADDR:PORT/PROTO, e.g. 10.0.0.100:80/tcp (one service with --backend; more with --config)")
	fs.Var(&f.backends, "backend", "backend ADDR[:PORT][,WEIGHT] of the --vip service (repeatable)")
	fs.StringVar(&f.mode, "mode", "nat", "forwarding mode of the --vip service: nat or dsr")
	fs.StringVar(&f.configFile, "config", "", "TOML configuration file (services, conntrack); reloaded on SIGHUP and when it changes")
	fs.IntVar(&f.capacity, "conntrack", 0, "connection table capacity per worker (0: the file's or 262144)")
	fs.Uint64Var(&f.hashSeed, "hash-seed", 0x7479677265737300, "seed of the flow hash (balancers behind one ECMP group must share it)")
	fs.StringVar(&f.health, "health", "tcp", "health check of the --vip service's backends: tcp, udp or none")
	fs.DurationVar(&f.hInterval, "health-interval", 2*time.Second, "health check interval")
	fs.DurationVar(&f.hTimeout, "health-timeout", time.Second, "health check timeout")
	fs.IntVar(&f.rise, "rise", 2, "successful checks in a row to take a backend back")
	fs.IntVar(&f.fall, "fall", 3, "failed checks in a row to take a backend out")
	fs.DurationVar(&f.reloadPoll, "reload-poll", time.Second, "how often to look for a changed --config file (0: only SIGHUP)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := f.validate()
	if err != nil {
		return err
	}
	return f.run(ctx, out, cfg)
}

// loadConfig builds the configuration from the file (if any) and the
// flags' service (if any).
func (f *lbFlags) loadConfig() (*lb.Config, error) {
	cfg := &lb.Config{}
	if f.configFile != "" {
		c, err := lb.LoadConfig(f.configFile)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	for _, v := range f.vips {
		s, err := lb.ServiceFromFlags(v, f.backends, f.mode)
		if err != nil {
			return nil, err
		}
		kind, err := lb.ParseHealthKind(f.health)
		if err != nil {
			return nil, err
		}
		s.HealthCheck = lb.HealthCheck{Kind: kind, Interval: f.hInterval, Timeout: f.hTimeout, Rise: f.rise, Fall: f.fall}
		cfg.Services = append(cfg.Services, s)
	}
	if f.capacity > 0 {
		if cfg.Conntrack.Capacity == 0 {
			cfg.Conntrack = lb.DefaultTableOptions()
		}
		cfg.Conntrack.Capacity = f.capacity
	}
	if len(cfg.Services) == 0 {
		return nil, errors.New("no service: give --vip and --backend, or --config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (f *lbFlags) validate() (*lb.Config, error) {
	if err := f.c.validate(); err != nil {
		return nil, err
	}
	if f.client == "" || f.backendIf == "" {
		return nil, usageError{"-i CLIENT_IFACE and -o BACKEND_IFACE are required"}
	}
	if f.client == f.backendIf {
		return nil, usageError{"-i and -o must differ"}
	}
	if len(f.vips) > 1 {
		return nil, usageError{"one --vip per command line; put more services in --config"}
	}
	if len(f.vips) == 1 && len(f.backends) == 0 {
		return nil, usageError{"--vip needs at least one --backend"}
	}
	if len(f.addrs) == 0 {
		return nil, usageError{"at least one --addr is required (our address on the backend network)"}
	}
	for _, a := range f.addrs {
		if _, err := netip.ParsePrefix(a); err != nil {
			return nil, usageError{fmt.Sprintf("--addr %q: want ADDRESS/PREFIXLEN", a)}
		}
	}
	for _, g := range f.gateways {
		if _, err := netip.ParseAddr(g); err != nil {
			return nil, usageError{fmt.Sprintf("--gateway %q: not an IP address", g)}
		}
	}
	cfg, err := f.loadConfig()
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return cfg, nil
}

// lbRuntime is what the workers and the control goroutine share.
type lbRuntime struct {
	log      *slog.Logger
	base     atomic.Pointer[lb.Config] // configuration as loaded
	down     sync.Map                  // backend key (svc index is not stable across reloads: "vip/proto backend:port") -> true when down
	bals     []*lb.Balancer
	prober   *health.Prober
	pending  atomic.Pointer[[]health.Target] // targets for the prober's worker to apply
	changes  chan health.Change
	backSrc  [2]netip.Addr // our backend-side source, IPv4 and IPv6
	hosts    []*hoststage.Stage
	frames   []*dataplane.PoolFrames
	reloads  atomic.Uint64
	rejected atomic.Uint64
}

func backendKey(s *lb.Service, b *lb.Backend) string {
	return s.String() + " " + netip.AddrPortFrom(b.Addr, s.BackendPort(b)).String()
}

// effective is the loaded configuration with the backends that are down
// drained (weight 0): they get no new flows, and established ones stay.
func (rt *lbRuntime) effective() *lb.Config {
	base := rt.base.Load()
	c := *base
	c.Services = make([]lb.Service, len(base.Services))
	for i, s := range base.Services {
		s.Backends = append([]lb.Backend(nil), s.Backends...)
		for j := range s.Backends {
			if _, down := rt.down.Load(backendKey(&s, &s.Backends[j])); down {
				s.Backends[j].Weight = 0
			}
		}
		c.Services[i] = s
	}
	return &c
}

func (rt *lbRuntime) targets() []health.Target {
	var ts []health.Target
	base := rt.base.Load()
	for i := range base.Services {
		s := &base.Services[i]
		for _, b := range s.Backends {
			src := rt.backSrc[0]
			if !b.Addr.Is4() {
				src = rt.backSrc[1]
			}
			if !src.IsValid() {
				continue
			}
			ts = append(ts, health.Target{Service: i, Addr: b.Addr, Port: s.BackendPort(&b), Check: s.HealthCheck, Src: src})
		}
	}
	return ts
}

// apply pushes the effective configuration to every worker's balancer.
func (rt *lbRuntime) apply() error {
	eff := rt.effective()
	for _, b := range rt.bals {
		if err := b.Update(eff); err != nil {
			return err
		}
	}
	return nil
}

// healthStage runs the prober on worker 0 and applies new targets there.
type healthStage struct{ rt *lbRuntime }

func (healthStage) Name() string            { return "health" }
func (healthStage) Process(*pipeline.Batch) {}
func (h healthStage) Release(now int64, out []pipeline.Frame) int {
	if ts := h.rt.pending.Swap(nil); ts != nil {
		h.rt.prober.SetTargets(now, *ts)
	}
	return health.Stage{P: h.rt.prober}.Release(now, out)
}
func (h healthStage) Next() int64 {
	if h.rt.pending.Load() != nil {
		return 1
	}
	return h.rt.prober.Next()
}

// unmatchedStage drops what the balancer and the host stage left: IP
// traffic to no service (lb.ReasonUnknownVIP), anything else by policy.
type unmatchedStage struct{}

func (unmatchedStage) Name() string { return "unmatched" }

func (unmatchedStage) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		if f.Verdict != pipeline.Pass {
			continue
		}
		if eth, err := proto.ParseEthernet(f.Data); err == nil && (eth.EtherType() == proto.EtherTypeIPv4 || eth.EtherType() == proto.EtherTypeIPv6) {
			f.SetDrop(lb.ReasonUnknownVIP)
		} else {
			f.SetDrop(pipeline.ReasonPolicy)
		}
	}
}

// steerStage hands a frame to the worker that owns its client endpoint, so
// that both directions of a NAT connection meet one connection table.
type steerStage struct {
	queues  uint16
	seed    uint64
	backend uint16 // port index toward the backends
	f       proto.Flow
}

func (s *steerStage) Name() string { return "steer" }

func (s *steerStage) Process(b *pipeline.Batch) {
	if b.Handoff {
		return
	}
	for i := range b.Frames {
		f := &b.Frames[i]
		if proto.ParseFlow(f.Data, &s.f, nil) != nil || s.f.Key.Family == 0 {
			continue
		}
		q := uint16(lb.ClientHashKey(&s.f.Key, f.InPort != s.backend, s.seed) % uint32(s.queues))
		if q != b.Queue {
			f.Verdict, f.Shard = pipeline.Handoff, q
		}
	}
}

func (f *lbFlags) run(ctx context.Context, out io.Writer, cfg *lb.Config) error {
	log := f.c.ops.log
	rt := &lbRuntime{log: log, changes: make(chan health.Change, 64)}
	rt.base.Store(cfg)

	ifc, err := net.InterfaceByName(f.client)
	if err != nil {
		return fmt.Errorf("interface %s: %w", f.client, err)
	}
	ifb, err := net.InterfaceByName(f.backendIf)
	if err != nil {
		return fmt.Errorf("interface %s: %w", f.backendIf, err)
	}
	var cmac, bmac [6]byte
	copy(cmac[:], ifc.HardwareAddr)
	copy(bmac[:], ifb.HardwareAddr)

	// Our addresses go to the backend port when a backend is inside their
	// prefix, else to the client port; the VIPs are on the client port.
	cport := hoststage.PortConfig{Index: 0, MAC: cmac}
	bport := hoststage.PortConfig{Index: 1, MAC: bmac}
	for _, a := range f.addrs {
		p := netip.MustParsePrefix(a)
		onBack := false
		for _, s := range cfg.Services {
			for _, b := range s.Backends {
				onBack = onBack || p.Contains(b.Addr)
			}
		}
		if onBack {
			bport.Addrs = append(bport.Addrs, p)
			if p.Addr().Is4() && !rt.backSrc[0].IsValid() {
				rt.backSrc[0] = p.Addr()
			} else if !p.Addr().Is4() && !rt.backSrc[1].IsValid() {
				rt.backSrc[1] = p.Addr()
			}
		} else {
			cport.Addrs = append(cport.Addrs, p)
		}
	}
	if !rt.backSrc[0].IsValid() && !rt.backSrc[1].IsValid() {
		return usageError{"no --addr on the backends' network: NAT replies and health checks need one"}
	}
	for _, g := range f.gateways {
		cport.Gateways = append(cport.Gateways, netip.MustParseAddr(g))
	}
	vipSeen := map[netip.Addr]bool{}
	dsrOnly := true
	for _, s := range cfg.Services {
		a := s.VIP.Addr()
		if !vipSeen[a] {
			vipSeen[a] = true
			cport.Services = append(cport.Services, a)
		}
		dsrOnly = dsrOnly && s.Mode == lb.DSR
	}
	crules := []bpf.Rule{{EtherType: bpf.EtherTypeARP}}
	claim := append([]netip.Addr(nil), cport.Services...)
	for _, p := range cport.Addrs {
		claim = append(claim, p.Addr())
	}
	for _, a := range claim {
		crules = append(crules, bpf.Rule{Prefix: netip.PrefixFrom(a, a.BitLen())})
		if !a.Is4() {
			crules = append(crules, bpf.Rule{Prefix: netip.PrefixFrom(neighbor.SolicitedNode(a), 128)})
		}
	}
	ports := []dataplane.PortConfig{{Name: f.client, Steer: true, Rules: crules}}
	if dsrOnly {
		// Backends answer clients directly: only ARP/NDP and our own
		// addresses (health checks) come back.
		brules := []bpf.Rule{{EtherType: bpf.EtherTypeARP}}
		for _, p := range bport.Addrs {
			brules = append(brules, bpf.Rule{Prefix: netip.PrefixFrom(p.Addr(), p.Addr().BitLen())})
			if !p.Addr().Is4() {
				brules = append(brules, bpf.Rule{Prefix: netip.PrefixFrom(neighbor.SolicitedNode(p.Addr()), 128)})
			}
		}
		ports = append(ports, dataplane.PortConfig{Name: f.backendIf, Steer: true, Rules: brules})
	} else {
		// NAT replies are addressed to the clients: claim everything.
		ports = append(ports, dataplane.PortConfig{Name: f.backendIf, Steer: true, ClaimAll: true})
	}

	queues := f.c.queues
	if queues == 0 {
		if queues, err = dataplane.RxQueues(f.client); err != nil {
			queues = 1
		}
	}
	var bmu sync.Mutex
	group := &hoststage.Group{}
	build := func(q int) *pipeline.Pipeline {
		pf := &dataplane.PoolFrames{}
		host, err := hoststage.New(hoststage.Config{
			Ports:     []hoststage.PortConfig{cport, bport},
			Neighbor:  neighbor.DefaultConfig(),
			Frames:    pf,
			Group:     group,
			Intercept: func(_ uint16, ip []byte) bool { return rt.prober != nil && rt.prober.Input(ip) },
		})
		if err != nil {
			panic(err) // the port configs were checked above
		}
		bal, err := lb.NewBalancer(rt.effective(), lb.Options{
			Resolver: host, ClientPort: 0, BackendPort: 1, ClientMAC: cmac, BackendMAC: bmac,
			HashSeed: f.hashSeed, PassUnmatched: true,
		})
		if err != nil {
			panic(err) // the configuration was validated
		}
		bmu.Lock()
		rt.hosts = append(rt.hosts, host)
		rt.frames = append(rt.frames, pf)
		rt.bals = append(rt.bals, bal)
		bmu.Unlock()
		var stages []pipeline.Stage
		if q == 0 {
			rt.prober = health.New(host, func(c health.Change) {
				select {
				case rt.changes <- c:
				default:
				}
			})
			ts := rt.targets()
			rt.pending.Store(&ts)
			stages = append(stages, healthStage{rt})
		}
		if queues > 1 {
			stages = append(stages, &steerStage{queues: uint16(queues), seed: f.hashSeed, backend: 1})
		}
		// The balancer first: forwarded traffic is almost all of it. What
		// it does not take (ARP/NDP, pings, probe answers to our own
		// addresses) goes on to the host stage, and what neither takes is
		// counted as traffic to no service.
		stages = append(stages, bal, host, unmatchedStage{})
		return pipeline.New(stages...)
	}
	dcfg := f.c.config(ports, build)
	dcfg.Queues = queues
	if queues > 1 {
		dcfg.HandoffRing = 1024
	}
	dcfg.OnOpen = func(dp *dataplane.DataPath) error {
		for q, pf := range rt.frames {
			pf.Pool = dp.Pools[q]
		}
		for _, h := range rt.hosts {
			h.Announce()
		}
		return nil
	}
	dp, err := dataplane.Open(dcfg)
	if err != nil {
		return err
	}
	defer dp.Close()
	defer f.c.ops.stop()
	if err := f.c.ops.start(dp, "lb"); err != nil {
		return err
	}
	if f.c.ops.srv != nil {
		if err := f.c.ops.srv.Register(lbCollector{rt}); err != nil {
			return err
		}
	}
	for _, s := range cfg.Services {
		log.Info("service", "vip", s.String(), "mode", s.Mode.String(), "backends", len(s.Backends), "health", s.HealthCheck.Kind.String())
	}

	if f.c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.c.duration)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.control(ctx, rt)
	}()
	rep := newReporter(out, f.c.interval, f.c.quiet, dp.Snapshot)
	go rep.loop(ctx)
	err = dp.Run(ctx)
	cancel()
	wg.Wait()
	rep.stop()
	rep.summary()
	var in, outb uint64
	var flows int
	for _, b := range rt.bals {
		st := b.Stats()
		in, outb, flows = in+st.Inbound, outb+st.Outbound, flows+st.Table.Len
	}
	fmt.Fprintf(out, "lb: inbound=%d outbound=%d flows=%d reloads=%d rejected_reloads=%d\n", in, outb, flows, rt.reloads.Load(), rt.rejected.Load())
	return err
}

// control applies health changes and reloads the configuration on SIGHUP
// or when the file changes. A configuration that does not load or
// validate is logged and the old one keeps running.
func (f *lbFlags) control(ctx context.Context, rt *lbRuntime) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	var mtime time.Time
	if f.configFile != "" && f.reloadPoll > 0 {
		t := time.NewTicker(f.reloadPoll)
		defer t.Stop()
		tick = t.C
		if st, err := os.Stat(f.configFile); err == nil {
			mtime = st.ModTime()
		}
	}
	reload := func(why string) {
		cfg, err := f.loadConfig()
		if err == nil {
			old := rt.base.Load()
			rt.base.Store(cfg)
			if err = rt.apply(); err != nil {
				rt.base.Store(old)
			}
		}
		if err != nil {
			rt.rejected.Add(1)
			rt.log.Error("configuration rejected; the old one keeps running", "why", why, "err", err)
			return
		}
		rt.reloads.Add(1)
		ts := rt.targets()
		rt.pending.Store(&ts)
		rt.log.Info("configuration reloaded", "why", why, "services", len(cfg.Services))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-rt.changes:
			s := rt.base.Load().Services
			if c.Service >= len(s) {
				continue
			}
			key := s[c.Service].String() + " " + netip.AddrPortFrom(c.Addr, c.Port).String()
			if c.Up {
				rt.down.Delete(key)
			} else {
				rt.down.Store(key, true)
			}
			rt.log.Info("backend health", "backend", key, "up", c.Up)
			if err := rt.apply(); err != nil {
				rt.log.Error("apply health change", "err", err)
			}
		case <-hup:
			reload("SIGHUP")
		case <-tick:
			st, err := os.Stat(f.configFile)
			if err == nil && !st.ModTime().Equal(mtime) {
				mtime = st.ModTime()
				reload("file changed")
			}
		}
	}
}

// lbCollector exports the balancer's counters at scrape time.
type lbCollector struct{ rt *lbRuntime }

var (
	descLBIn      = prometheus.NewDesc("tygress_lb_inbound_packets_total", "Packets forwarded to a backend.", nil, nil)
	descLBOut     = prometheus.NewDesc("tygress_lb_outbound_packets_total", "NAT replies forwarded to a client.", nil, nil)
	descLBFlows   = prometheus.NewDesc("tygress_lb_active_flows", "Connections in the connection tables.", nil, nil)
	descLBEvict   = prometheus.NewDesc("tygress_lb_conntrack_evictions_total", "Connections evicted to make room.", nil, nil)
	descLBFull    = prometheus.NewDesc("tygress_lb_conntrack_full_total", "New connections refused: table full.", nil, nil)
	descLBUp      = prometheus.NewDesc("tygress_lb_backend_up", "1 when the backend passes its health check.", []string{"service", "backend"}, nil)
	descLBReloads = prometheus.NewDesc("tygress_lb_config_reloads_total", "Configuration reloads, by result.", []string{"result"}, nil)
	descLBPkts    = prometheus.NewDesc("tygress_lb_backend_packets_total", "Packets forwarded per service and backend (in: to the backend; out: NAT replies).", []string{"service", "backend", "direction"}, nil)
	descLBBytes   = prometheus.NewDesc("tygress_lb_backend_bytes_total", "Bytes (whole frames) forwarded per service and backend.", []string{"service", "backend", "direction"}, nil)
	descLBBFlows  = prometheus.NewDesc("tygress_lb_backend_active_flows", "Connections in the connection tables per service and backend.", []string{"service", "backend"}, nil)
)

func (c lbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLBIn, descLBOut, descLBFlows, descLBEvict, descLBFull, descLBUp, descLBReloads, descLBPkts, descLBBytes, descLBBFlows} {
		ch <- d
	}
}

func (c lbCollector) Collect(ch chan<- prometheus.Metric) {
	var in, out, evict, full uint64
	var flows int
	for _, b := range c.rt.bals {
		st := b.Stats()
		in, out, flows = in+st.Inbound, out+st.Outbound, flows+st.Table.Len
		evict, full = evict+st.Table.Evictions, full+st.Table.Full
	}
	ch <- prometheus.MustNewConstMetric(descLBIn, prometheus.CounterValue, float64(in))
	ch <- prometheus.MustNewConstMetric(descLBOut, prometheus.CounterValue, float64(out))
	ch <- prometheus.MustNewConstMetric(descLBFlows, prometheus.GaugeValue, float64(flows))
	ch <- prometheus.MustNewConstMetric(descLBEvict, prometheus.CounterValue, float64(evict))
	ch <- prometheus.MustNewConstMetric(descLBFull, prometheus.CounterValue, float64(full))
	base := c.rt.base.Load()
	for i := range base.Services {
		s := &base.Services[i]
		for j := range s.Backends {
			key := backendKey(s, &s.Backends[j])
			up := 1.0
			if _, down := c.rt.down.Load(key); down {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(descLBUp, prometheus.GaugeValue, up, s.String(),
				netip.AddrPortFrom(s.Backends[j].Addr, s.BackendPort(&s.Backends[j])).String())
		}
	}
	type pair struct{ svc, be string }
	sums := map[pair]*lb.BackendStat{}
	var order []pair
	for _, b := range c.rt.bals {
		for _, st := range b.BackendStats() {
			svc := st.VIP.String() + "/" + st.Proto.String()
			be := "other"
			if st.Backend.IsValid() {
				be = st.Backend.String()
			}
			k := pair{svc, be}
			t := sums[k]
			if t == nil {
				t = &lb.BackendStat{}
				sums[k] = t
				order = append(order, k)
			}
			t.InPackets += st.InPackets
			t.InBytes += st.InBytes
			t.OutPackets += st.OutPackets
			t.OutBytes += st.OutBytes
			t.Flows += st.Flows
		}
	}
	for _, k := range order {
		t := sums[k]
		ch <- prometheus.MustNewConstMetric(descLBPkts, prometheus.CounterValue, float64(t.InPackets), k.svc, k.be, "in")
		ch <- prometheus.MustNewConstMetric(descLBPkts, prometheus.CounterValue, float64(t.OutPackets), k.svc, k.be, "out")
		ch <- prometheus.MustNewConstMetric(descLBBytes, prometheus.CounterValue, float64(t.InBytes), k.svc, k.be, "in")
		ch <- prometheus.MustNewConstMetric(descLBBytes, prometheus.CounterValue, float64(t.OutBytes), k.svc, k.be, "out")
		ch <- prometheus.MustNewConstMetric(descLBBFlows, prometheus.GaugeValue, float64(t.Flows), k.svc, k.be)
	}
	ch <- prometheus.MustNewConstMetric(descLBReloads, prometheus.CounterValue, float64(c.rt.reloads.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(descLBReloads, prometheus.CounterValue, float64(c.rt.rejected.Load()), "rejected")
}
