package pipeline_test

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/xsk"
)

// udpReflect swaps Ethernet, IPv4 and UDP source and destination. The
// checksums stay valid: the ones-complement sum does not depend on order.
type udpReflect struct{}

func (udpReflect) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		d := f.Data
		if len(d) < 42 || d[12] != 8 || d[13] != 0 || d[23] != 17 || d[14] != 0x45 {
			f.SetDrop(pipeline.ReasonUnknownProto)
			continue
		}
		var t [6]byte
		copy(t[:], d[0:6])
		copy(d[0:6], d[6:12])
		copy(d[6:12], t[:])
		var a [4]byte
		copy(a[:], d[26:30])
		copy(d[26:30], d[30:34])
		copy(d[30:34], a[:])
		var p [2]byte
		copy(p[:], d[34:36])
		copy(d[34:36], d[36:38])
		copy(d[36:38], p[:])
		f.Verdict = pipeline.TX
	}
}

// reflector is a worker on a real AF_XDP socket in namespace F, reached
// from a kernel UDP client in namespace A at 10.79.0.2.
type reflector struct {
	nsA  *topo.Namespace
	s    *xsk.Socket
	pool *xsk.FramePool
	w    *pipeline.Worker
}

func newReflector(t *testing.T, cpu int, mods ...func(*pipeline.WorkerConfig)) *reflector {
	t.Helper()
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() { tp.Close() })
	nsA, err := tp.AddNamespace("tywa")
	if err != nil {
		t.Fatal(err)
	}
	nsF, err := tp.AddNamespace("tywf")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Port{NS: nsA, Name: "a0", Addrs: []string{"10.79.0.1/24"}}
	f := topo.Port{NS: nsF, Name: "f0"}
	if err := topo.NewVeth(&a, &f, topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := topo.Run(nsA, "ip", "neigh", "replace", "10.79.0.2", "lladdr", f.MAC.String(), "dev", "a0"); err != nil {
		t.Fatal(err)
	}
	prog, err := testutil.NewRedirectProgram()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	l, err := prog.Attach(nsF, f.Ifindex, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	pool, _ := xsk.NewFramePool(u, 0, 1024)
	opts := xsk.DefaultSocketOptions()
	opts.RxSize, opts.TxSize, opts.FillSize, opts.CompSize = 256, 256, 512, 512
	var s *xsk.Socket
	if err := nsF.Do(func() (err error) { s, err = xsk.NewSocket(pool, f.Ifindex, 0, opts); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Refill() // before frames can arrive: the worker starts later
	if err := prog.Register(0, s.FD()); err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.WorkerConfig{
		Ports: []*xsk.Socket{s}, Pool: pool, Pipeline: pipeline.New(udpReflect{}), CPU: cpu,
	}
	for _, o := range mods {
		o(&cfg)
	}
	w, err := pipeline.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &reflector{nsA: nsA, s: s, pool: pool, w: w}
}

// pingPong sends n datagrams one at a time from namespace A and counts
// those that came back in order. It measures allocations from the
// warm-up on (m0, m1).
func (r *reflector) pingPong(n, warm int, m0, m1 *runtime.MemStats) (got int, err error) {
	err = r.nsA.Do(func() error {
		c, err := net.Dial("udp4", "10.79.0.2:7")
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, 18)
		rb := make([]byte, 64)
		for i := 0; i < n+warm; i++ {
			if i == warm && m0 != nil {
				runtime.ReadMemStats(m0)
			}
			binary.BigEndian.PutUint32(b, uint32(i))
			if _, err := c.Write(b); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			k, err := c.Read(rb)
			if err != nil {
				return err
			}
			if k == 18 && binary.BigEndian.Uint32(rb) == uint32(i) && i >= warm {
				got++
			}
		}
		if m1 != nil {
			runtime.ReadMemStats(m1)
		}
		return nil
	})
	return got, err
}

// run starts the worker. stop cancels it and returns how long Run took
// to return and its error; a test that ends before calling stop has it
// called at cleanup, before the sockets close.
func (r *reflector) run(t *testing.T) (stop func() (time.Duration, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	var err error
	stop = func() (time.Duration, error) {
		once.Do(func() {
			t0 := time.Now()
			cancel()
			err = <-done
			took = time.Since(t0)
		})
		return took, err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestWorkerReflectsKernelTraffic runs a worker on a real AF_XDP socket:
// a kernel UDP client in another namespace gets every datagram back, the
// worker allocates nothing per packet, and every frame is accounted for.
func TestWorkerReflectsKernelTraffic(t *testing.T) {
	r := newReflector(t, -1)
	w, s, pool := r.w, r.s, r.pool
	stop := r.run(t)

	const n = 20000
	var m0, m1 runtime.MemStats
	got, err := r.pingPong(n, 200, &m0, &m1)
	if _, werr := stop(); werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		ks, _ := s.KernelStats()
		t.Fatalf("%v\nworker %+v\nsocket %+v\nkernel %+v", err, w.Stats(), s.Stats(), ks)
	}
	if got != n {
		t.Fatalf("%d of %d datagrams came back", got, n)
	}
	// The client side (net.Conn, deadlines) allocates a little per
	// datagram; the worker must add nothing on top. Allow the client's
	// share and fail when the worker allocates per packet.
	if per := float64(m1.Mallocs-m0.Mallocs) / n; per > 3 {
		t.Fatalf("%.2f allocations per round trip", per)
	}
	st := w.Stats()
	if st.RxFrames < n || st.TxFrames < n || st.DropsTotal != st.Drops[pipeline.ReasonUnknownProto] {
		t.Fatalf("worker stats %+v", st)
	}
	for i := 0; i < 100 && s.InKernel() != s.InRings(); i++ {
		s.Complete(1024)
		time.Sleep(time.Millisecond)
	}
	if pool.Len()+s.InKernel() != pool.Total() || s.InKernel() != s.InRings() {
		t.Fatalf("accounting: pool %d, kernel %d, rings %d, total %d", pool.Len(), s.InKernel(), s.InRings(), pool.Total())
	}
}

// TestPinnedWorkerSleepsWhenIdle: a pinned worker sleeps in poll()
// without giving up its P while traffic flows (Worker.pollRaw). Once the
// traffic stops it must sleep for good: a sleep that keeps the P is
// ended every 10-20 ms by the runtime's preemption, and an idle worker
// that went on sleeping that way would wake 50-100 times a second.
func TestPinnedWorkerSleepsWhenIdle(t *testing.T) {
	r := newReflector(t, runtime.NumCPU()-1)
	stop := r.run(t)
	const n = 2000
	got, err := r.pingPong(n, 0, nil, nil)
	if err != nil || got != n {
		t.Fatalf("%d of %d datagrams came back: %v", got, n, err)
	}
	time.Sleep(50 * time.Millisecond) // the first idle sleep ends
	p0 := r.w.Stats().Polls
	time.Sleep(time.Second)
	p1 := r.w.Stats().Polls
	d, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if d > 200*time.Millisecond {
		t.Errorf("Run took %v to return after cancel", d)
	}
	// Stray frames (the client namespace's IPv6 neighbour discovery)
	// may still wake it a few times, two wakeups each; a worker left in
	// the raw sleep wakes 50-100 times a second.
	if p1-p0 > 15 {
		t.Fatalf("%d wakeups in 1 s without traffic", p1-p0)
	}
}

// TestPinnedWorkerStopsWhileFlowing: Stop reaches a pinned worker that
// sleeps in its raw ppoll (Worker.pollRaw) right after traffic.
func TestPinnedWorkerStopsWhileFlowing(t *testing.T) {
	r := newReflector(t, runtime.NumCPU()-1)
	stop := r.run(t)
	const n = 500
	got, err := r.pingPong(n, 0, nil, nil)
	d, werr := stop()
	if werr != nil {
		t.Fatal(werr)
	}
	if err != nil || got != n {
		t.Fatalf("%d of %d datagrams came back: %v", got, n, err)
	}
	if d > 200*time.Millisecond {
		t.Fatalf("Run took %v to return after cancel", d)
	}
}

// TestWorkerCoalesce checks WorkerConfig.Coalesce on a real socket: a
// backlog of full batches makes the worker sleep on its timer (and the
// frames still all come back); single datagrams do not, and come back.
func TestWorkerCoalesce(t *testing.T) {
	for _, cpu := range []int{runtime.NumCPU() - 1, -1} { // raw sleep and the runtime's
		r := newReflector(t, cpu, func(c *pipeline.WorkerConfig) {
			c.BatchSize = 8
			c.Coalesce = pipeline.MaxCoalesce
		})
		const burst = 64 // the rx ring holds 256
		err := r.nsA.Do(func() error {
			c, err := net.Dial("udp4", "10.79.0.2:7")
			if err != nil {
				return err
			}
			defer c.Close()
			// The backlog: datagrams queue on the rx ring while no
			// worker runs, so its first wakeup finds full batches.
			b := make([]byte, 18)
			for i := 0; i < burst; i++ {
				binary.BigEndian.PutUint32(b, uint32(i))
				if _, err := c.Write(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the veth hands them over
		deadline := time.Now().Add(2 * time.Second)
		stop := r.run(t)
		for st := r.w.Stats(); st.Coalesced == 0 || st.TxFrames < burst; st = r.w.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("cpu %d: after a backlog of %d: %+v", cpu, burst, st)
			}
			time.Sleep(time.Millisecond)
		}
		// Single datagrams: every wakeup brings a partial batch, so the
		// worker waits for frames, not on its timer.
		time.Sleep(5 * pipeline.MaxCoalesce)
		c0 := r.w.Stats().Coalesced
		const n = 200
		got, err := r.pingPong(n, 0, nil, nil)
		c1 := r.w.Stats().Coalesced
		d, werr := stop()
		if werr != nil {
			t.Fatal(werr)
		}
		if err != nil || got != n {
			t.Fatalf("cpu %d: %d of %d datagrams came back: %v", cpu, got, n, err)
		}
		if c1 != c0 {
			t.Errorf("cpu %d: %d timed sleeps under single datagrams", cpu, c1-c0)
		}
		if d > 200*time.Millisecond {
			t.Errorf("cpu %d: Run took %v to return after cancel", cpu, d)
		}
	}
}

func TestWorkerCoalesceBounds(t *testing.T) {
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	pool, _ := xsk.NewFramePool(u, 0, 64)
	for d, ok := range map[time.Duration]bool{-1: false, 0: true, pipeline.MaxCoalesce: true, pipeline.MaxCoalesce + 1: false} {
		w, err := pipeline.NewWorker(pipeline.WorkerConfig{Pool: pool, Pipeline: pipeline.New(), Coalesce: d})
		if (err == nil) != ok {
			t.Errorf("Coalesce %v: %v", d, err)
		}
		if w != nil {
			w.Close()
		}
	}
}
