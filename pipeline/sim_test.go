package pipeline_test

import (
	"testing"

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

func newSimWorker(t testing.TB, ports int, tx bool, p *pipeline.Pipeline) *simWorker {
	t.Helper()
	const frames = 4096
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: frames})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := xsk.NewFramePool(u, 0, frames)
	if err != nil {
		t.Fatal(err)
	}
	sw := &simWorker{pool: pool}
	opts := xsk.SocketOptions{RxSize: 2048, FillSize: 2048, CompSize: 2048}
	if tx {
		opts.TxSize = 2048
	}
	for range ports {
		s, k, err := xsk.NewSimSocket(pool, opts)
		if err != nil {
			t.Fatal(err)
		}
		sw.socks = append(sw.socks, s)
		sw.kern = append(sw.kern, k)
	}
	t.Cleanup(func() {
		for _, s := range sw.socks {
			s.Close()
		}
		u.Close()
	})
	if sw.w, err = pipeline.NewWorker(pipeline.WorkerConfig{Ports: sw.socks, Pool: pool, Pipeline: p, CPU: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.w.Close() })
	sw.w.Step() // first refill
	return sw
}

// wakeup is what one poll-mode wakeup does under load: a kernel batch of
// 64 frames arrives (NAPI's budget), one step takes it, the next finds
// the ring empty (and would go to sleep).
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
		s.RX.Peek(64) // the empty look before sleeping
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}
