package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/link/fault"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/sched"
	"github.com/tygress/tygress/xsk"
)

func (c *common) config(ports []dataplane.PortConfig, pl func(q int) *pipeline.Pipeline) dataplane.Config {
	return dataplane.Config{
		Ports: ports, Queues: c.queues, XDPMode: c.mode, Socket: c.opts, FrameSize: c.frameSize,
		HugePages: c.huge, BatchSize: c.batch, Busy: c.busy, Coalesce: c.coalesce, CPUs: c.cpus, Pin: sched.Pin, Pipeline: c.ops.wrap(pl),
	}
}

// runDataPath opens the data path, runs it with per-second statistics
// until ctx is done or the duration passes, and prints the summary.
func (c *common) runDataPath(ctx context.Context, out io.Writer, name string, cfg dataplane.Config) error {
	dp, err := dataplane.Open(cfg)
	if err != nil {
		return err
	}
	defer dp.Close()
	defer c.ops.stop()
	if err := c.ops.start(dp, name); err != nil {
		return err
	}
	for _, p := range dp.Ports {
		mode := "copy"
		if len(p.Sockets) > 0 {
			mode = p.Sockets[0].Mode()
		}
		xdp := p.XDPMode
		if xdp == "" {
			xdp = "none"
		}
		fmt.Fprintf(out, "%s: %s ifindex %d queues %d xdp %s bind %s batch %d %s\n",
			name, p.Name, p.Ifindex, len(p.Sockets), xdp, mode, c.batch, map[bool]string{true: "busy-poll", false: "poll"}[c.busy])
	}
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	rep := newReporter(out, c.interval, c.quiet, dp.Snapshot)
	go rep.loop(ctx)
	err = dp.Run(ctx)
	rep.stop()
	rep.summary()
	return err
}

func cmdRxdrop(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rxdrop", flag.ContinueOnError)
	var c common
	c.register(fs)
	iface := fs.String("i", "", "interface to receive on (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *iface == "" {
		return usageError{"-i IFACE is required"}
	}
	if err := c.validate(); err != nil {
		return err
	}
	c.opts.TxSize = 0
	ports := []dataplane.PortConfig{{Name: *iface, Steer: true, ClaimAll: true, NoTx: true}}
	return c.runDataPath(ctx, out, "rxdrop", c.config(ports, func(int) *pipeline.Pipeline {
		return pipeline.New(pipeline.DropAll{})
	}))
}

func cmdL2fwd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("l2fwd", flag.ContinueOnError)
	var c common
	c.register(fs)
	in := fs.String("i", "", "input interface (required)")
	outIf := fs.String("o", "", "output interface (required)")
	dstMAC := fs.String("dst-mac", "ff:ff:ff:ff:ff:ff", "destination MAC written into forwarded frames")
	keepSrc := fs.Bool("keep-src-mac", false, "leave the source MAC as received (default: the output port's MAC)")
	bidir := fs.Bool("bidir", false, "also forward from -o back to -i (destination: --return-mac)")
	retMAC := fs.String("return-mac", "ff:ff:ff:ff:ff:ff", "destination MAC for frames forwarded back with --bidir")
	faults := fs.String("fault", "", "inject faults before forwarding, e.g. loss=0.01,delay=5ms,jitter=1ms,reorder=0.01,dup=0.001,corrupt=0.0001,rate-pps=100000,seed=1")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *in == "" || *outIf == "" {
		return usageError{"-i IFACE_IN and -o IFACE_OUT are required"}
	}
	if *in == *outIf {
		return usageError{"-i and -o must differ (use a reflector stage for one port)"}
	}
	if err := c.validate(); err != nil {
		return err
	}
	dst, err := parseMAC(*dstMAC)
	if err != nil {
		return usageError{"--dst-mac: " + err.Error()}
	}
	ret, err := parseMAC(*retMAC)
	if err != nil {
		return usageError{"--return-mac: " + err.Error()}
	}
	ports := []dataplane.PortConfig{
		{Name: *in, Steer: true, ClaimAll: true},
		{Name: *outIf, Steer: *bidir, ClaimAll: *bidir, NoRx: !*bidir},
	}
	var fcfg fault.Config
	if *faults != "" {
		if fcfg, err = fault.ParseConfig(*faults); err != nil {
			return usageError{"--fault: " + err.Error()}
		}
	}
	srcOut, srcIn, err := portMACs(*in, *outIf)
	if err != nil {
		return err
	}
	// The pools exist only once Open has run (OnOpen hands them over);
	// duplicates take frames from the worker's own pool.
	var dp *dataplane.DataPath
	var stageErr error
	cfg := c.config(ports, func(q int) *pipeline.Pipeline {
		fwd := &pipeline.L2Forward{OutPort: 1, Src: srcOut, Dst: dst, KeepSrc: *keepSrc}
		back := &pipeline.L2Forward{OutPort: 0, Src: srcIn, Dst: ret, KeepSrc: *keepSrc}
		if *faults == "" {
			return pipeline.New(portSwitch{fwd, back})
		}
		qc := fcfg
		qc.Seed += uint64(q)
		alloc := func() (pipeline.Frame, bool) {
			a, ok := dp.Pools[q].Get()
			if !ok {
				return pipeline.Frame{}, false
			}
			return pipeline.Frame{Data: dp.UMEM.Frame(a)[:0], Addr: a}, true
		}
		fs, err := fault.NewStage(qc, alloc)
		if err != nil {
			stageErr = err
			return pipeline.New(portSwitch{fwd, back})
		}
		return pipeline.New(fs, portSwitch{fwd, back})
	})
	cfg.OnOpen = func(d *dataplane.DataPath) error { dp = d; return stageErr }
	return c.runDataPath(ctx, out, "l2fwd", cfg)
}

// portSwitch runs the forward stage on port 0's batches and the return
// stage on port 1's.
type portSwitch [2]*pipeline.L2Forward

func (portSwitch) Name() string { return "l2fwd" }

// Clockless: like the L2Forward stages it runs, it never reads Batch.Now,
// so the worker need not read the clock for every batch.
func (portSwitch) Clockless() {}

func (s portSwitch) Process(b *pipeline.Batch) {
	if b.Port == 0 {
		s[0].Process(b)
	} else {
		s[1].Process(b)
	}
}

func cmdTxgen(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("txgen", flag.ContinueOnError)
	var c common
	c.register(fs)
	iface := fs.String("i", "", "interface to send on (required)")
	dstMAC := fs.String("dst-mac", "", "destination MAC (required)")
	src := fs.String("src", "10.0.0.1", "source address (IPv4 or IPv6)")
	dst := fs.String("dst", "10.0.0.2", "destination address (same family as --src)")
	sport := fs.Uint("sport", 10000, "first source port; flow i uses sport+i")
	dport := fs.Uint("dport", 9, "destination port")
	size := fs.Int("size", 60, "frame size without FCS: 60 for 64-byte frames, 1514 for 1500-byte packets")
	rate := fs.Float64("rate", 0, "packets per second (0: as fast as possible)")
	flows := fs.Int("flows", 1, "number of UDP flows (distinct source ports)")
	count := fs.Uint64("count", 0, "stop after this many packets (0: no limit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *iface == "" || *dstMAC == "" {
		return usageError{"-i IFACE and --dst-mac MAC are required"}
	}
	if err := c.validate(); err != nil {
		return err
	}
	dm, err := parseMAC(*dstMAC)
	if err != nil {
		return usageError{"--dst-mac: " + err.Error()}
	}
	sa, err1 := netip.ParseAddr(*src)
	da, err2 := netip.ParseAddr(*dst)
	if err1 != nil || err2 != nil || sa.Is4() != da.Is4() {
		return usageError{"--src and --dst must be IP addresses of one family"}
	}
	if *sport > 65535 || *dport > 65535 || *flows < 1 || int(*sport)+*flows > 65536 {
		return usageError{"--sport, --dport and --flows must keep ports within 0..65535"}
	}
	if *rate < 0 {
		return usageError{"--rate must not be negative"}
	}
	if c.frameSize == 0 { // auto: the smallest frame the packets fit in
		c.frameSize = 2048
		if *size > 2048-256 {
			c.frameSize = 4096
		}
	}
	maxSize := c.frameSize - 256
	if *size < 60 || *size > maxSize {
		return usageError{fmt.Sprintf("--size %d outside 60..%d (frame size %d less headroom)", *size, maxSize, c.frameSize)}
	}
	c.opts.RxSize = 0
	if c.queues == 0 {
		c.queues = 1
	}
	cfg := c.config([]dataplane.PortConfig{{Name: *iface, NoRx: true}}, func(int) *pipeline.Pipeline { return pipeline.New() })
	dp, err := dataplane.Open(cfg)
	if err != nil {
		return err
	}
	defer dp.Close()
	defer c.ops.stop()
	if err := c.ops.start(dp, "txgen"); err != nil {
		return err
	}
	p := dp.Ports[0]
	var sm [6]byte
	copy(sm[:], p.MAC)
	spec := dataplane.FlowSpec{SrcMAC: sm, DstMAC: dm, Src: sa, Dst: da, SrcPort: uint16(*sport), DstPort: uint16(*dport), Size: *size, Flows: *flows}
	perQ := *rate / float64(len(p.Sockets))
	var gens []*dataplane.Generator
	for q, s := range p.Sockets {
		cpu := -1
		if len(c.cpus) > 0 {
			cpu = c.cpus[q%len(c.cpus)]
		}
		cnt := *count / uint64(len(p.Sockets))
		if q == 0 {
			cnt += *count % uint64(len(p.Sockets))
		}
		if *count > 0 && cnt == 0 {
			continue
		}
		g, err := dataplane.NewGenerator(s, spec, perQ, cnt, c.batch, cpu, sched.Pin)
		if err != nil {
			return usageError{err.Error()}
		}
		gens = append(gens, g)
	}
	fmt.Fprintf(out, "txgen: %s queues %d bind %s size %d flows %d rate %s\n", p.Name, len(p.Sockets), p.Sockets[0].Mode(), *size, *flows, rateString(*rate))
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	snap := func() dataplane.Snapshot {
		s := dp.Snapshot()
		for _, g := range gens {
			gs := g.Stats()
			s.TxFrames += gs.Sent
		}
		return s
	}
	rep := newReporter(out, c.interval, c.quiet, snap)
	go rep.loop(ctx)
	errc := make(chan error, len(gens))
	for _, g := range gens {
		go func() { errc <- g.Run(ctx) }()
	}
	var firstErr error
	for range gens {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	rep.stop()
	rep.summary()
	return firstErr
}

func rateString(r float64) string {
	if r == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f pps", r)
}

var _ = time.Second
var _ = xsk.BindAuto
