// Package dataplane wires the pieces of the AF_XDP data path together:
// it attaches the steering program (bpf/) to each port, creates one UMEM
// with a frame pool per worker, one AF_XDP socket per (port, queue), and
// one pinned worker (pipeline/) per queue that serves that queue on every
// port. It is what `tyfwd` runs and what a library user calls to run their
// own stages on real interfaces.
//
// Worker q owns queue q of every port, and all of its sockets share its
// frame pool, so a frame received on port 0 queue q is transmitted on port
// 1 queue q by moving its descriptor: no copy.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/tygress/tygress/bpf"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/xsk"
)

// ErrPermission is returned when the process lacks the privileges AF_XDP
// and BPF need (root, or CAP_NET_ADMIN + CAP_BPF + CAP_NET_RAW).
var ErrPermission = errors.New("needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF)")

// PortConfig names one interface.
type PortConfig struct {
	Name string
	// Steer attaches the steering program; a port used only to transmit
	// (txgen) may leave it off.
	Steer bool
	// Rules are the claim rules; empty with ClaimAll false claims nothing.
	Rules    []bpf.Rule
	ClaimAll bool
	// RxOnly / TxOnly size the socket's rings accordingly.
	NoRx, NoTx bool
}

// Config is the whole data path.
type Config struct {
	Ports []PortConfig
	// Queues is the number of queues (workers) to use, from queue 0.
	// 0 means every rx queue of the first port.
	Queues  int
	XDPMode bpf.Mode
	Socket  xsk.SocketOptions
	// FrameSize is the UMEM frame size, 2048 or 4096; 0 picks
	// AutoFrameSize of the ports' largest MTU.
	FrameSize int
	// FramesPerWorker defaults to enough for every ring of the worker's
	// sockets plus a batch per port.
	FramesPerWorker int
	HugePages       bool
	BatchSize       int
	Busy            bool
	// Coalesce is pipeline.WorkerConfig.Coalesce for every worker.
	Coalesce time.Duration
	// CPUs pins worker i to CPUs[i%len(CPUs)]; empty leaves workers
	// unpinned.
	CPUs []int
	Pin  func(cpu int) error
	// Pipeline builds the pipeline of worker (queue) q.
	Pipeline func(q int) *pipeline.Pipeline
	// Local, if set, builds the local-stack handler of worker q.
	Local func(q int) func([]pipeline.Frame)
	// HandoffRing is the size of the lock-free ring from each worker to
	// each other worker that carries frames with the Handoff verdict (0:
	// 1024). Handed-off frames keep belonging to the pool of the worker
	// that received them and go back to it through a return ring.
	HandoffRing int
	// OnOpen, if set, runs at the end of Open with everything built
	// (pools, UMEM, sockets, workers), for stages that need them; an error
	// undoes Open.
	OnOpen func(*DataPath) error
}

// Port is an opened interface.
type Port struct {
	Name    string
	Ifindex int
	MAC     net.HardwareAddr
	Steer   *bpf.Steer
	XDPMode string
	Sockets []*xsk.Socket // by queue
}

// DataPath is a running (or ready) data path.
type DataPath struct {
	cfg     Config
	Ports   []*Port
	UMEM    *xsk.UMEM
	Workers []*pipeline.Worker
	Pools   []*xsk.FramePool
	closeMu sync.Mutex
	closed  bool
}

// RxQueues returns the number of rx queues of an interface from sysfs.
func RxQueues(name string) (int, error) {
	m, err := filepath.Glob(filepath.Join("/sys/class/net", name, "queues", "rx-*"))
	if err != nil || len(m) == 0 {
		return 0, fmt.Errorf("interface %s: no rx queues in sysfs", name)
	}
	return len(m), nil
}

// frameOverhead is what a frame holds besides an MTU-sized packet: the
// kernel's XDP headroom (XDP_PACKET_HEADROOM), an Ethernet header and two
// VLAN tags.
const frameOverhead = 256 + 14 + 8

// AutoFrameSize returns the UMEM frame size for ports of the given largest
// MTU: 2048 when a packet fits (MTU up to 1770), else 4096. Smaller frames
// halve the pages the receive path touches: in copy mode the kernel copies
// each packet into the UMEM through a 4 KiB-page mapping, and with 4 KiB
// frames every frame in circulation is another TLB entry on the receiving
// CPU (on veth, 2304 frames of 4 KiB in circulation made the receive
// side about 1.08x as costly per packet as 2304 frames of 2 KiB).
func AutoFrameSize(mtu int) int {
	if mtu+frameOverhead <= 2048 {
		return 2048
	}
	return 4096
}

// Open attaches, binds and builds everything; it does not start workers.
// On error everything made so far is undone.
func Open(cfg Config) (_ *DataPath, err error) {
	if len(cfg.Ports) == 0 {
		return nil, errors.New("no ports")
	}
	if cfg.Pipeline == nil {
		return nil, errors.New("no pipeline")
	}
	if cfg.Queues == 0 {
		if cfg.Queues, err = RxQueues(cfg.Ports[0].Name); err != nil {
			return nil, err
		}
	}
	dp := &DataPath{cfg: cfg}
	maxMTU := 0
	defer func() {
		if err != nil {
			dp.Close()
		}
	}()
	for _, pc := range cfg.Ports {
		ifc, err := net.InterfaceByName(pc.Name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", pc.Name, err)
		}
		dp.Ports = append(dp.Ports, &Port{Name: pc.Name, Ifindex: ifc.Index, MAC: ifc.HardwareAddr})
		maxMTU = max(maxMTU, ifc.MTU)
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = AutoFrameSize(maxMTU)
	}
	so := cfg.Socket
	per := cfg.FramesPerWorker
	if per == 0 {
		for _, pc := range cfg.Ports {
			per += so.FillSize + so.CompSize
			if !pc.NoRx {
				per += so.RxSize
			}
			if !pc.NoTx {
				per += so.TxSize
			}
		}
		per = min(per, 1<<16)
	}
	dp.UMEM, err = xsk.NewUMEM(xsk.UMEMOptions{FrameSize: cfg.FrameSize, NumFrames: per * cfg.Queues, HugePages: cfg.HugePages})
	if err != nil {
		return nil, err
	}
	for q := 0; q < cfg.Queues; q++ {
		pool, err := xsk.NewFramePool(dp.UMEM, q*per, per)
		if err != nil {
			return nil, err
		}
		dp.Pools = append(dp.Pools, pool)
	}
	for i, pc := range cfg.Ports {
		p := dp.Ports[i]
		if pc.Steer {
			p.Steer, err = bpf.Load(bpf.Options{Rules: pc.Rules, ClaimAll: pc.ClaimAll, Mode: cfg.XDPMode})
			if err != nil {
				return nil, permission(fmt.Errorf("load steering program: %w", err))
			}
		}
		for q := 0; q < cfg.Queues; q++ {
			o := so
			if pc.NoRx {
				o.RxSize = 0
			}
			if pc.NoTx {
				o.TxSize = 0
			}
			s, err := xsk.NewSocket(dp.Pools[q], p.Ifindex, q, o)
			if err != nil {
				return nil, permission(fmt.Errorf("port %s queue %d: %w", p.Name, q, err))
			}
			p.Sockets = append(p.Sockets, s)
			if !pc.NoRx {
				// Fill before the program is attached, so the first
				// frames find buffers (the worker is not running yet).
				s.Refill()
			}
			if p.Steer != nil && !pc.NoRx {
				if err := p.Steer.Register(q, s.FD()); err != nil {
					return nil, fmt.Errorf("port %s queue %d: register socket: %w", p.Name, q, err)
				}
			}
		}
		if p.Steer != nil {
			a, err := p.Steer.Attach(p.Ifindex)
			if err != nil {
				return nil, permission(fmt.Errorf("attach xdp to %s: %w", p.Name, err))
			}
			p.XDPMode = a.Mode().String()
		}
	}
	hand, err := newHandoff(dp, cfg.HandoffRing, per)
	if err != nil {
		return nil, err
	}
	for q := 0; q < cfg.Queues; q++ {
		ports := make([]*xsk.Socket, len(dp.Ports))
		for i, p := range dp.Ports {
			ports[i] = p.Sockets[q]
		}
		cpu := -1
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[q%len(cfg.CPUs)]
		}
		wc := pipeline.WorkerConfig{
			Ports: ports, Pool: dp.Pools[q], Pipeline: cfg.Pipeline(q),
			BatchSize: cfg.BatchSize, Busy: cfg.Busy, Coalesce: cfg.Coalesce, CPU: cpu, Pin: cfg.Pin,
		}
		if cfg.Local != nil {
			wc.Local = cfg.Local(q)
		}
		if hand != nil {
			hand.wire(q, &wc)
		}
		w, err := pipeline.NewWorker(wc)
		if err != nil {
			return nil, err
		}
		dp.Workers = append(dp.Workers, w)
	}
	if cfg.OnOpen != nil {
		if err := cfg.OnOpen(dp); err != nil {
			return nil, err
		}
	}
	return dp, nil
}

func permission(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// Run starts every worker and blocks until ctx is done or a worker fails.
//
// Each worker keeps a P (runtime.GOMAXPROCS) on its locked thread, also
// while it sleeps in poll(). Run raises GOMAXPROCS to one more than the
// workers unless the GOMAXPROCS environment variable is set: with every P
// in a worker's poll(), the runtime's sysmon takes the P away after 20 µs
// and hands it back when poll() returns, on every sleep (under
// `taskset -c 1` Go starts with GOMAXPROCS=1; measured at 3 Mpps of
// rxdrop: 560 futex calls and 5k sysmon sleeps a second, against 180 and
// 3.5k with one spare P).
func (dp *DataPath) Run(ctx context.Context) error {
	if os.Getenv("GOMAXPROCS") == "" {
		if n := len(dp.Workers) + 1; runtime.GOMAXPROCS(0) < n {
			runtime.GOMAXPROCS(n)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(dp.Workers))
	for _, w := range dp.Workers {
		go func() {
			err := w.Run(ctx)
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	var errs []error
	for range dp.Workers {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// Close detaches the programs and closes sockets and UMEM. Safe to call
// more than once and after a partial Open.
func (dp *DataPath) Close() error {
	dp.closeMu.Lock()
	defer dp.closeMu.Unlock()
	if dp.closed {
		return nil
	}
	dp.closed = true
	var errs []error
	for _, w := range dp.Workers {
		errs = append(errs, w.Close())
	}
	for _, p := range dp.Ports {
		if p.Steer != nil {
			errs = append(errs, p.Steer.Close())
		}
		for _, s := range p.Sockets {
			errs = append(errs, s.Close())
		}
	}
	if dp.UMEM != nil {
		errs = append(errs, dp.UMEM.Close())
	}
	return errors.Join(errs...)
}

// Snapshot is every counter of the data path at one instant.
type Snapshot struct {
	Time       time.Time
	RxFrames   uint64
	TxFrames   uint64
	Drops      [pipeline.MaxReasons]uint64 // every drop, by reason
	DropsTotal uint64
	Polls      uint64
	TxKicks    uint64
	Batches    uint64 // worker rounds that received frames
	EmptyRx    uint64 // rx ring reads that found nothing
	Coalesced  uint64 // timed sleeps under load (Config.Coalesce), counted in Polls too
	// From the kernel (XDP_STATISTICS), summed over sockets.
	FillRingEmpty uint64
	RxRingFull    uint64
	RxDropped     uint64
	RxInvalid     uint64 // our own descriptor checks plus the kernel's
	TxInvalid     uint64
	// From the steering programs.
	XDPSeen, XDPRedirected, XDPPassed uint64
}

// Snapshot reads every counter; safe while workers run.
func (dp *DataPath) Snapshot() Snapshot {
	s := Snapshot{Time: time.Now()}
	for _, w := range dp.Workers {
		ws := w.Stats()
		s.RxFrames += ws.RxFrames
		s.TxFrames += ws.TxFrames
		s.Polls += ws.Polls
		s.Batches += ws.Batches
		s.Coalesced += ws.Coalesced
		for r, n := range ws.Drops {
			s.Drops[r] += n
			s.DropsTotal += n
		}
	}
	for _, p := range dp.Ports {
		for _, sk := range p.Sockets {
			st := sk.Stats()
			s.TxKicks += st.TxKicks
			s.Polls += st.RxWakeups
			s.EmptyRx += st.RxEmptyPolls
			s.RxInvalid += st.RxInvalid
			s.TxInvalid += st.TxInvalid
			if ks, err := sk.KernelStats(); err == nil {
				s.FillRingEmpty += ks.RxFillRingEmpty
				s.RxRingFull += ks.RxRingFull
				s.RxDropped += ks.RxDropped
				s.RxInvalid += ks.RxInvalidDescs
				s.TxInvalid += ks.TxInvalidDescs
			}
		}
		if p.Steer != nil {
			if c, err := p.Steer.Counters(); err == nil {
				s.XDPSeen += c.Seen
				s.XDPRedirected += c.Redirected
				s.XDPPassed += c.Passed()
			}
		}
	}
	return s
}

// PoolFrames hands out empty frames from a worker's frame pool, for stages
// that build frames of their own (stack/hoststage's FrameSource). Pool may
// be set after the pipeline is built (in Config.OnOpen) but before the
// workers run; frames go back to the pool through their verdicts.
type PoolFrames struct{ Pool *xsk.FramePool }

// Alloc returns an empty frame (Data of length 0 reaching the end of the
// UMEM frame) or false when the pool is empty.
func (p *PoolFrames) Alloc() (pipeline.Frame, bool) {
	if p.Pool == nil {
		return pipeline.Frame{}, false
	}
	addr, ok := p.Pool.Get()
	if !ok {
		return pipeline.Frame{}, false
	}
	u := p.Pool.UMEM()
	off := addr - u.FrameBase(addr)
	return pipeline.Frame{Data: u.Frame(addr)[off:off], Addr: addr}, true
}
