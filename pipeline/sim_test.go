package pipeline_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/xsk"
)

// simWorker is a worker on simulated sockets (xsk.NewSimSocket): no
// privileges, no kernel, so the user-space cost of a step is measured
// alone and the same on every run.
type simWorker struct {
	w     *pipeline.Worker
	socks []*xsk.Socket
	kern  []*xsk.SimKernel
	pool  *xsk.FramePool
}

// simPool returns a pool of all the frames of a new UMEM, closed when
// the test ends (after the sockets on it, which close first).
func simPool(t testing.TB, frames int) *xsk.FramePool {
	t.Helper()
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: frames})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	pool, err := xsk.NewFramePool(u, 0, frames)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// simSocket is a simulated socket on pool, closed when the test ends.
func simSocket(t testing.TB, pool *xsk.FramePool, opts xsk.SocketOptions) (*xsk.Socket, *xsk.SimKernel) {
	t.Helper()
	s, k, err := xsk.NewSimSocket(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, k
}

func newSimWorker(t testing.TB, ports int, tx bool, p *pipeline.Pipeline) *simWorker {
	t.Helper()
	pool := simPool(t, 4096)
	sw := &simWorker{pool: pool}
	opts := xsk.SocketOptions{RxSize: 2048, FillSize: 2048, CompSize: 2048}
	if tx {
		opts.TxSize = 2048
	}
	for range ports {
		s, k := simSocket(t, pool, opts)
		sw.socks = append(sw.socks, s)
		sw.kern = append(sw.kern, k)
	}
	var err error
	if sw.w, err = pipeline.NewWorker(pipeline.WorkerConfig{Ports: sw.socks, Pool: pool, Pipeline: p, CPU: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.w.Close() })
	sw.w.Step() // first refill
	return sw
}

// wakeup is what one poll-mode wakeup does under load: a kernel batch of
// 64 frames arrives (NAPI's budget), one step takes it, the next finds
// the ring empty (and would go to sleep). Skipping that second look
// cost more than it saved on veth: while the worker takes it, the next
// kernel batch often lands (85.9 frames per wakeup with it, 68.3
// without, and 6% more CPU per packet).
func (sw *simWorker) wakeup(t testing.TB, pkt []byte) {
	if got := sw.kern[0].Deliver(64, pkt, 60); got != 64 {
		t.Fatalf("delivered %d of 64", got)
	}
	if n := sw.w.Step(); n != 64 {
		t.Fatalf("step took %d of 64", n)
	}
	if n := sw.w.Step(); n != 0 {
		t.Fatalf("second step took %d", n)
	}
}

// TestSimWorkerRxdrop runs tyfwd rxdrop's pipeline over a simulated
// socket: every frame is counted and goes back to the fill ring, with no
// allocation.
func TestSimWorkerRxdrop(t *testing.T) {
	sw := newSimWorker(t, 1, false, pipeline.New(pipeline.DropAll{}))
	pkt := make([]byte, 60)
	allocs := testing.AllocsPerRun(1000, func() { sw.wakeup(t, pkt) })
	if allocs != 0 {
		t.Errorf("%v allocations per wakeup", allocs)
	}
	st := sw.w.Stats()
	if st.RxFrames != 1001*64 || st.Drops[pipeline.ReasonPolicy] != st.RxFrames {
		t.Errorf("rx %d, policy drops %d; want %d", st.RxFrames, st.Drops[pipeline.ReasonPolicy], 1001*64)
	}
	if ks, _ := sw.socks[0].KernelStats(); ks.RxFillRingEmpty != 0 {
		t.Errorf("fill ring ran empty %d times", ks.RxFillRingEmpty)
	}
	if in := sw.socks[0].InKernel(); in+sw.pool.Len() != sw.pool.Total() {
		t.Errorf("frames: %d in the kernel + %d in the pool != %d", in, sw.pool.Len(), sw.pool.Total())
	}
}

// TestSimWorkerL2fwd forwards between two simulated ports and checks
// that every frame leaves on the other one rewritten, then comes back to
// the pool.
func TestSimWorkerL2fwd(t *testing.T) {
	dst := [6]byte{2, 0, 0, 0, 0, 9}
	fwd := &pipeline.L2Forward{OutPort: 1, Dst: dst, Src: [6]byte{2, 0, 0, 0, 0, 1}}
	sw := newSimWorker(t, 2, true, pipeline.New(fwd))
	pkt := make([]byte, 60)
	sent := 0
	for range 100 {
		sw.wakeup(t, pkt)
		sw.kern[1].Transmit(64, func(p []byte) {
			if [6]byte(p[:6]) == dst {
				sent++
			}
		})
	}
	if sent != 6400 {
		t.Fatalf("%d frames left port 1 rewritten, want 6400", sent)
	}
	sw.w.Step() // completions
	if st := sw.w.Stats(); st.TxFrames != 6400 || st.DropsTotal != 0 {
		t.Errorf("stats %+v", st)
	}
	in := sw.socks[0].InKernel() + sw.socks[1].InKernel()
	if in+sw.pool.Len() != sw.pool.Total() {
		t.Errorf("frames: %d in the kernel + %d in the pool != %d", in, sw.pool.Len(), sw.pool.Total())
	}
}

// BenchmarkSimRxdrop is the user-space part of tyfwd rxdrop's cost per
// frame in poll mode: everything but the system calls and the kernel.
func BenchmarkSimRxdrop(b *testing.B) {
	sw := newSimWorker(b, 1, false, pipeline.New(pipeline.DropAll{}))
	b.ReportAllocs()
	for b.Loop() {
		sw.wakeup(b, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// BenchmarkSimRingLoop is the floor under BenchmarkSimRxdrop: the least
// a consumer can do per wakeup on the same rings (peek the rx ring, put
// every address straight back on the fill ring, as the C xdpsock's
// rxdrop does), with the same simulated kernel.
func BenchmarkSimRingLoop(b *testing.B) {
	sw := newSimWorker(b, 1, false, pipeline.New(pipeline.DropAll{}))
	s, k := sw.socks[0], sw.kern[0]
	b.ReportAllocs()
	for b.Loop() {
		ringLoop(b, s, k)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// TestSimWorkerBadDescriptors feeds the worker's one-pass receive
// descriptors a broken driver might post, between good ones: the bad
// are counted and skipped, the good go through the pipeline, and every
// frame is accounted for afterwards.
func TestSimWorkerBadDescriptors(t *testing.T) {
	sw := newSimWorker(t, 1, false, pipeline.New(pipeline.DropAll{}))
	s, k := sw.socks[0], sw.kern[0]
	size := uint64(s.UMEM().Size())
	if k.Deliver(3, make([]byte, 60), 0) != 3 {
		t.Fatal("short delivery")
	}
	// A frame the pool holds is one the driver may not post: take one
	// out, as if the kernel had it, and post it past its end.
	a, ok := sw.pool.Get()
	if !ok {
		t.Fatal("empty pool")
	}
	for _, d := range []xsk.Desc{{Addr: size + 4096, Len: 60}, {Addr: a + 2000, Len: 100}} {
		if !k.DeliverDesc(d) {
			t.Fatal("rx ring full")
		}
	}
	if k.Deliver(2, make([]byte, 60), 0) != 2 {
		t.Fatal("short delivery")
	}
	if n := sw.w.Step(); n != 5 {
		t.Fatalf("step took %d frames, want the 5 good ones", n)
	}
	if got := s.Stats().RxInvalid; got != 2 {
		t.Errorf("rx invalid %d, want 2", got)
	}
	if st := sw.w.Stats(); st.RxFrames != 5 || st.Drops[pipeline.ReasonPolicy] != 5 {
		t.Errorf("worker rx %d, policy drops %d; want 5, 5", st.RxFrames, st.Drops[pipeline.ReasonPolicy])
	}
	// The simulated kernel keeps no frames of its own: each is in a ring
	// or in the pool. (InKernel counts the two bad descriptors as frames
	// that came back, which they were not.)
	if in := s.InRings(); in+sw.pool.Len() != sw.pool.Total() {
		t.Errorf("frames: %d in the rings + %d in the pool != %d", in, sw.pool.Len(), sw.pool.Total())
	}
}

// coldBuf is larger than the L2 cache: walking it between wakeups puts
// the worker's code and data out of the near caches, as the kernel's
// work and other tenants do between two wakeups of a sleeping worker.
var coldBuf = make([]byte, 4<<20)

// evictCaches walks coldBuf, then makes a system call, as a wakeup
// returns from one: on a kernel with page-table isolation and a CPU
// without PCID (this host) that empties the TLB too. Measured so, the
// worker's cold wakeup matched the user time tyfwd spends above the C
// reference on veth; with the caches evicted alone it did not.
func evictCaches() {
	for i := 0; i < len(coldBuf); i += 64 {
		coldBuf[i]++
	}
	unix.Getpid()
}

// BenchmarkSimRxdropCold is BenchmarkSimRxdrop with the caches and the
// TLB emptied before every wakeup (evictCaches), timing the wakeup
// alone: what a poll-mode worker pays when it wakes, as the size of what
// it touches (code and data) counts more than the instructions it runs.
// The timing clock's own pages come back warm; DropAll is Clockless, so
// the worker does not read the clock.
func BenchmarkSimRxdropCold(b *testing.B) {
	sw := newSimWorker(b, 1, false, pipeline.New(pipeline.DropAll{}))
	var t int64
	for b.Loop() {
		evictCaches()
		t0 := pipeline.Now()
		sw.wakeup(b, nil)
		t += pipeline.Now() - t0
	}
	b.ReportMetric(float64(t)/float64(b.N*64), "ns/frame")
}

// BenchmarkSimRingLoopCold is BenchmarkSimRingLoop with cold caches.
func BenchmarkSimRingLoopCold(b *testing.B) {
	sw := newSimWorker(b, 1, false, pipeline.New(pipeline.DropAll{}))
	s, k := sw.socks[0], sw.kern[0]
	var t int64
	for b.Loop() {
		evictCaches()
		t0 := pipeline.Now()
		ringLoop(b, s, k)
		t += pipeline.Now() - t0
	}
	b.ReportMetric(float64(t)/float64(b.N*64), "ns/frame")
}

// ringLoop is one wakeup of the least a consumer can do: peek the rx
// ring, put every address straight back on the fill ring, and look once
// more before sleeping.
func ringLoop(b *testing.B, s *xsk.Socket, k *xsk.SimKernel) {
	if k.Deliver(64, nil, 60) != 64 {
		b.Fatal("short delivery")
	}
	idx, n := s.RX.Peek(64)
	fidx, fn := s.Fill.Reserve(n)
	if fn != n {
		b.Fatal("fill ring full")
	}
	for i := range n {
		s.Fill.Set(fidx+i, s.RX.Desc(idx+i).Addr)
	}
	s.RX.Release()
	s.Fill.Submit()
	s.RX.Peek(64)
}

// BenchmarkSimL2fwd is the user-space part of tyfwd l2fwd's cost per
// frame: receive on port 0, rewrite the MACs, transmit on port 1; the
// simulated kernel sends and completes each batch.
func BenchmarkSimL2fwd(b *testing.B) {
	fwd := &pipeline.L2Forward{OutPort: 1, Dst: [6]byte{2, 0, 0, 0, 0, 9}}
	sw := newSimWorker(b, 2, true, pipeline.New(fwd))
	b.ReportAllocs()
	for b.Loop() {
		sw.wakeup(b, nil)
		if sw.kern[1].Transmit(64, nil) != 64 {
			b.Fatal("short transmit")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// TestSimWorkerTxPorts sends one batch to several ports in runs,
// including ports that do not exist: each port gets its frames in
// order, and the others are dropped as ReasonBadPort with their frames
// back in the pool.
func TestSimWorkerTxPorts(t *testing.T) {
	ports := []uint16{1, 1, 7, 1, 0, 0, 9, 9, 1}
	route := pipeline.StageFunc(func(b *pipeline.Batch) {
		for i := range b.Frames {
			b.Frames[i].SetRedirect(ports[i%len(ports)])
		}
	})
	sw := newSimWorker(t, 2, true, pipeline.New(route))
	pkt := make([]byte, 60)
	if sw.kern[0].Deliver(len(ports), pkt, 0) != len(ports) {
		t.Fatal("short delivery")
	}
	if n := sw.w.Step(); n != len(ports) {
		t.Fatalf("step took %d", n)
	}
	var lens []int
	for _, k := range sw.kern {
		lens = append(lens, k.Transmit(64, nil))
	}
	if lens[0] != 2 || lens[1] != 4 {
		t.Errorf("port 0 sent %d, port 1 %d; want 2 and 4", lens[0], lens[1])
	}
	st := sw.w.Stats()
	if st.TxFrames != 6 || st.Drops[pipeline.ReasonBadPort] != 3 || st.DropsTotal != 3 {
		t.Errorf("tx %d, bad-port drops %d, drops %d; want 6, 3, 3", st.TxFrames, st.Drops[pipeline.ReasonBadPort], st.DropsTotal)
	}
	sw.w.Step() // completions
	in := sw.socks[0].InRings() + sw.socks[1].InRings()
	if in+sw.pool.Len() != sw.pool.Total() {
		t.Errorf("frames: %d in the rings + %d in the pool != %d", in, sw.pool.Len(), sw.pool.Total())
	}
}

// TestSimWorkerTransmitLimits sends a batch to one port whose tx ring
// is too small for it, with one empty frame among them: the ring takes
// what fits, the empty frame is refused, the rest are dropped as
// ReasonTxRingFull, and every frame is accounted for.
func TestSimWorkerTransmitLimits(t *testing.T) {
	pool := simPool(t, 512)
	in, kin := simSocket(t, pool, xsk.SocketOptions{RxSize: 64, FillSize: 64, CompSize: 64})
	out, kout := simSocket(t, pool, xsk.SocketOptions{TxSize: 16, FillSize: 16, CompSize: 16})
	fwd := pipeline.StageFunc(func(b *pipeline.Batch) {
		b.Frames[0].Data = b.Frames[0].Data[:0]
		for i := range b.Frames {
			b.Frames[i].SetRedirect(1)
		}
	})
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Ports: []*xsk.Socket{in, out}, Pool: pool, Pipeline: pipeline.New(fwd), CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Step()
	if kin.Deliver(40, make([]byte, 60), 0) != 40 {
		t.Fatal("short delivery")
	}
	if n := w.Step(); n != 40 {
		t.Fatalf("step took %d", n)
	}
	if got := kout.Transmit(64, nil); got != 15 {
		t.Errorf("kernel sent %d, want 15 (16 slots, one refused)", got)
	}
	if st := out.Stats(); st.TxInvalid != 1 || st.TxRingFull != 24 || st.TxFrames != 15 {
		t.Errorf("socket: tx invalid %d, ring full %d, sent %d; want 1, 24, 15", st.TxInvalid, st.TxRingFull, st.TxFrames)
	}
	if st := w.Stats(); st.Drops[pipeline.ReasonTxRingFull] != 24 {
		t.Errorf("worker: ring-full drops %d, want 24", st.Drops[pipeline.ReasonTxRingFull])
	}
	w.Step() // completions
	if n := in.InRings() + out.InRings() + pool.Len(); n != pool.Total() {
		t.Errorf("frames: %d in the rings and the pool, want %d", n, pool.Total())
	}
}

// TestSimWorkerRandom drives a worker on two small simulated ports with
// random traffic and random verdicts (uniform batches among them, so
// that whole batches move and go to one port's tx ring), bad
// descriptors, refused empty frames and full rings, then checks that
// every frame is in a ring or in the pool and that the counters add up.
func TestSimWorkerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pool := simPool(t, 256)
	opts := xsk.SocketOptions{RxSize: 32, TxSize: 16, FillSize: 32, CompSize: 32}
	var socks []*xsk.Socket
	var kerns []*xsk.SimKernel
	for range 2 {
		s, k := simSocket(t, pool, opts)
		socks, kerns = append(socks, s), append(kerns, k)
	}
	pick := func(f *pipeline.Frame, c int) {
		switch c {
		case 0:
			f.SetDrop(pipeline.ReasonPolicy)
		case 1:
			f.SetDrop(pipeline.ReasonTooShort)
		case 2:
			f.Verdict = pipeline.TX
		case 3:
			f.SetRedirect(0)
		case 4:
			f.SetRedirect(1)
		case 5:
			f.SetRedirect(5) // no such port
		case 6:
			f.Data = f.Data[:0] // refused by the tx ring
			f.SetRedirect(1)
		}
		// 7: no verdict, the default drops it
	}
	stage := pipeline.StageFunc(func(b *pipeline.Batch) {
		if rng.IntN(2) == 0 {
			c := rng.IntN(8)
			for i := range b.Frames {
				pick(&b.Frames[i], c)
			}
			return
		}
		for i := range b.Frames {
			pick(&b.Frames[i], rng.IntN(8))
		}
	})
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Ports: socks, Pool: pool, Pipeline: pipeline.New(stage), BatchSize: 16, CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pkt := make([]byte, 60)
	var delivered, sent int
	for range 3000 {
		p := rng.IntN(2)
		delivered += kerns[p].Deliver(rng.IntN(40), pkt, 0)
		if rng.IntN(10) == 0 {
			kerns[p].DeliverDesc(xsk.Desc{Addr: uint64(pool.UMEM().Size()) + 4096, Len: 60})
		}
		w.Step()
		for _, k := range kerns {
			sent += k.Transmit(rng.IntN(24), nil)
		}
	}
	for range 10 { // drain
		for _, k := range kerns {
			sent += k.Transmit(64, nil)
		}
		w.Step()
	}
	st := w.Stats()
	if int(st.RxFrames) != delivered {
		t.Errorf("worker received %d of %d delivered", st.RxFrames, delivered)
	}
	if st.RxFrames != st.DropsTotal+st.TxFrames {
		t.Errorf("received %d != dropped %d + transmitted %d", st.RxFrames, st.DropsTotal, st.TxFrames)
	}
	var placed, refused uint64
	in := 0
	for _, s := range socks {
		ss := s.Stats()
		placed += ss.TxFrames
		refused += ss.TxInvalid
		in += s.InRings()
	}
	if placed != uint64(sent) || placed+refused != st.TxFrames {
		t.Errorf("tx: %d placed, %d refused, %d sent by the kernel, worker counted %d", placed, refused, sent, st.TxFrames)
	}
	if in+pool.Len() != pool.Total() {
		t.Errorf("frames: %d in the rings + %d in the pool != %d", in, pool.Len(), pool.Total())
	}
	for _, r := range []pipeline.Reason{pipeline.ReasonPolicy, pipeline.ReasonTooShort, pipeline.ReasonBadPort, pipeline.ReasonTxRingFull} {
		if st.Drops[r] == 0 {
			t.Errorf("no %v drops: the traffic missed a path", r)
		}
	}
}

// TestSimWorkerRecyclesDrops checks that frames dropped from an rx batch
// go straight back to that socket's fill ring: the pool does not move
// between the step that drops them and the next, and the frames come
// round again.
func TestSimWorkerRecyclesDrops(t *testing.T) {
	sw := newSimWorker(t, 1, false, pipeline.New(pipeline.DropAll{}))
	s, k := sw.socks[0], sw.kern[0]
	pool, fill := sw.pool.Len(), s.Fill.Occupancy()
	if k.Deliver(64, make([]byte, 60), 0) != 64 {
		t.Fatal("short delivery")
	}
	if n := sw.w.Step(); n != 64 {
		t.Fatalf("step took %d", n)
	}
	if sw.pool.Len() != pool || s.Fill.Occupancy() != fill {
		t.Errorf("pool %d, fill ring %d after the drops; want %d and %d", sw.pool.Len(), s.Fill.Occupancy(), pool, fill)
	}
	if st := sw.w.Stats(); st.Drops[pipeline.ReasonPolicy] != 64 {
		t.Errorf("policy drops %d, want 64", st.Drops[pipeline.ReasonPolicy])
	}
	if in := s.InKernel(); in+sw.pool.Len() != sw.pool.Total() {
		t.Errorf("frames: %d in the kernel + %d in the pool != %d", in, sw.pool.Len(), sw.pool.Total())
	}
}

// clockProbe records Batch.Now of every batch; lying says it is
// Clockless, to show which batches the worker stamps then.
type clockProbe struct{ seen []int64 }

func (c *clockProbe) Process(b *pipeline.Batch) { c.seen = append(c.seen, b.Now) }

type lyingClockProbe struct{ clockProbe }

func (*lyingClockProbe) Clockless() {}

// TestWorkerClock checks that every batch is stamped with the time when
// a stage may read it, and that a pipeline of Clockless stages only gets
// one reading every 16 batches (for the worker's own use).
func TestWorkerClock(t *testing.T) {
	plain, lying := &clockProbe{}, &lyingClockProbe{}
	for _, tc := range []struct {
		name    string
		stage   pipeline.Stage
		probe   *clockProbe
		clocked bool
	}{
		{"clocked", plain, plain, true},
		{"clockless", lying, &lying.clockProbe, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New(tc.stage)
			if p.Clockless() == tc.clocked {
				t.Fatalf("Clockless() = %v", p.Clockless())
			}
			sw := newSimWorker(t, 1, false, p)
			for range 20 {
				sw.wakeup(t, nil)
			}
			seen := tc.probe.seen
			if len(seen) != 20 {
				t.Fatalf("%d batches seen", len(seen))
			}
			for i, now := range seen {
				stamped := tc.clocked || i >= 15
				if (now != 0) != stamped {
					t.Errorf("batch %d: Now %d, stamped %v", i, now, stamped)
				}
				if i > 0 && now < seen[i-1] {
					t.Errorf("batch %d: clock went back from %d to %d", i, seen[i-1], now)
				}
			}
		})
	}
}

// TestPipelineClockless checks which pipelines need no batch clock.
func TestPipelineClockless(t *testing.T) {
	if !pipeline.New(pipeline.DropAll{}, &pipeline.L2Forward{}, pipeline.MACSwap{}, pipeline.MinLength{}).Clockless() {
		t.Error("the built-in stages need a clock")
	}
	if pipeline.New(pipeline.DropAll{}, pipeline.StageFunc(func(*pipeline.Batch) {})).Clockless() {
		t.Error("a StageFunc counts as Clockless")
	}
	if pipeline.New(&holdingClockless{}).Clockless() {
		t.Error("a stage that holds frames counts as Clockless")
	}
}

type holdingClockless struct{}

func (*holdingClockless) Process(*pipeline.Batch)             {}
func (*holdingClockless) Clockless()                          {}
func (*holdingClockless) Release(int64, []pipeline.Frame) int { return 0 }
func (*holdingClockless) Next() int64                         { return 0 }

// TestWorkerStopEndsRawSleep stops a pinned worker that sleeps in its
// raw ppoll on the rx ring alone (the last wakeup brought frames, none
// come after). Only Stop's signal can end that sleep: the test runs in a
// child process with the runtime's preemption signals off, so nothing
// else would, and a Stop without the signal hangs until the timeout.
// The simulated socket has no file descriptor, so no frame can end the
// sleep either.
func TestWorkerStopEndsRawSleep(t *testing.T) {
	if os.Getenv("TYGRESS_RAW_SLEEP_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerStopEndsRawSleep$", "-test.v", "-test.timeout=30s")
		// Without preemption signals a garbage collection's stop-the-
		// world would wait for the sleeping worker too, and hang the
		// child (one run in a few dozen): no collection then.
		// Two Ps whatever CPU mask the child inherits: the worker holds
		// one while it sleeps, the test needs the other.
		cmd.Env = append(os.Environ(), "TYGRESS_RAW_SLEEP_CHILD=1", "GODEBUG=asyncpreemptoff=1", "GOGC=off", "GOTRACEBACK=all", "GOMAXPROCS=2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	pool := simPool(t, 4096)
	s, k := simSocket(t, pool, xsk.SocketOptions{RxSize: 2048, FillSize: 2048, CompSize: 2048})
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Ports: []*xsk.Socket{s}, Pool: pool,
		Pipeline: pipeline.New(pipeline.DropAll{}), CPU: runtime.NumCPU() - 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Step() // fill the fill ring
	if k.Deliver(64, nil, 60) != 64 {
		t.Fatal("short delivery")
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	// Wait without a timer: a timer lives on the P of the goroutine that
	// set it, and one set here before the worker took this P would stay
	// there while the worker sleeps holding it (with preemption off,
	// nothing makes it let go); the test then hung in one run in ten.
	// Once the worker holds its P, this goroutine runs on the other.
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().RxFrames != 64 {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not take the frames")
		}
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond) // into the raw sleep
	w.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
}

// TestPinnedWorkerRestoresAffinity runs a worker pinned with the default
// pin on this goroutine's own locked thread: when Run returns, the thread
// has its CPU mask back. A thread left pinned would go back to the
// runtime's pool and run other goroutines on one CPU (a child process
// forked from it inherited the mask, which hung a test).
func TestPinnedWorkerRestoresAffinity(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	if before.Count() < 2 {
		t.Skip("one CPU: pinning cannot narrow the mask")
	}
	pool := simPool(t, 64)
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Pool: pool, Pipeline: pipeline.New(pipeline.DropAll{}), CPU: runtime.NumCPU() - 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("after Run the thread runs on %d CPUs, before on %d", after.Count(), before.Count())
	}
}
