package xsk

import (
	"sync/atomic"
	"testing"
)

func memRing(n uint32) ring {
	return ring{producer: new(atomic.Uint32), consumer: new(atomic.Uint32), flags: new(atomic.Uint32), mask: n - 1, size: n}
}

// fakeSocket is a Socket whose rings live in Go memory; the test plays the
// kernel. No root needed.
func fakeSocket(t *testing.T, frames int) *Socket {
	t.Helper()
	u, err := NewUMEM(UMEMOptions{FrameSize: 2048, NumFrames: frames})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	p, err := NewFramePool(u, 0, frames)
	if err != nil {
		t.Fatal(err)
	}
	s := &Socket{umem: u, pool: p, wakeup: true}
	s.Fill = FillRing{ring: memRing(8), addrs: make([]uint64, 8)}
	s.Fill.cachedCons = 8
	s.TX = TxRing{ring: memRing(8), descs: make([]Desc, 8)}
	s.TX.cachedCons = 8
	s.RX = RxRing{ring: memRing(8), descs: make([]Desc, 8)}
	s.Comp = CompRing{ring: memRing(8), addrs: make([]uint64, 8)}
	return s
}

// kernelRx moves n fill entries to the rx ring as the kernel would, with
// length l, optionally corrupting descriptors.
func kernelRx(s *Socket, n int, l uint32, corrupt func(i int, d *Desc)) {
	for i := 0; i < n; i++ {
		c := s.Fill.consumer.Load()
		addr := s.Fill.addrs[c&s.Fill.mask]
		s.Fill.consumer.Store(c + 1)
		d := Desc{Addr: addr + 256, Len: l}
		if corrupt != nil {
			d = corrupted(i, d, corrupt)
		}
		p := s.RX.producer.Load()
		s.RX.descs[p&s.RX.mask] = d
		s.RX.producer.Store(p + 1)
	}
}

func corrupted(i int, d Desc, corrupt func(int, *Desc)) Desc {
	c := new(Desc)
	*c = d
	corrupt(i, c)
	return *c
}

func TestRingWrapAndAccounting(t *testing.T) {
	s := fakeSocket(t, 16)
	descs := make([]Desc, 8)
	total := 0
	// Many rounds so the 32-bit indices wrap the 8-entry rings often.
	for round := 0; round < 1000; round++ {
		if got := s.Refill(); s.Fill.Occupancy() != 8 && s.pool.Len() > 0 {
			t.Fatalf("round %d: refill took %d, fill occupancy %d", round, got, s.Fill.Occupancy())
		}
		k := round%8 + 1
		kernelRx(s, k, 60, nil)
		n := s.Receive(descs)
		if n != k {
			t.Fatalf("round %d: received %d, want %d", round, n, k)
		}
		for _, d := range descs[:n] {
			if !s.umem.Valid(d.Addr, d.Len) || d.Len != 60 {
				t.Fatalf("bad desc %+v", d)
			}
			s.pool.Put(d.Addr)
		}
		total += n
		if s.pool.Len()+s.InKernel() != 16 {
			t.Fatalf("round %d: pool %d + kernel %d != 16", round, s.pool.Len(), s.InKernel())
		}
	}
	if st := s.Stats(); st.RxFrames != uint64(total) || st.RxInvalid != 0 {
		t.Fatalf("stats %+v, want %d frames", st, total)
	}
}

func TestReceiveRejectsBadDescriptors(t *testing.T) {
	s := fakeSocket(t, 16)
	s.Refill()
	size := uint64(s.umem.Size())
	kernelRx(s, 6, 100, func(i int, d *Desc) {
		switch i {
		case 1:
			d.Addr = size + 4096 // outside the UMEM: frame unidentifiable
		case 2:
			d.Len = 4000 // past the end of its frame: frame recycled
		case 3:
			d.Addr = size - 1
			d.Len = 2 // straddles the end of the UMEM
		case 4:
			d.Addr = ^uint64(0) // overflow bait
			d.Len = ^uint32(0)
		}
	})
	descs := make([]Desc, 8)
	n := s.Receive(descs)
	if n != 2 {
		t.Fatalf("received %d valid descriptors, want 2", n)
	}
	if st := s.Stats(); st.RxInvalid != 4 {
		t.Fatalf("RxInvalid = %d, want 4", st.RxInvalid)
	}
	// Frames of descriptors 2 and 3 are recycled; 1 and 4 cannot be.
	for _, d := range descs[:n] {
		s.pool.Put(d.Addr)
	}
	if got := s.pool.Len() + s.Fill.Occupancy(); got != 16-2 {
		t.Fatalf("pool+fill = %d, want 14 (two frames unidentifiable)", got)
	}
}

func TestTransmitRefusesInvalidAndFull(t *testing.T) {
	s := fakeSocket(t, 16)
	var descs []Desc
	for i := 0; i < 10; i++ {
		a, _ := s.pool.Get()
		descs = append(descs, Desc{Addr: a, Len: 64})
	}
	descs[2].Len = 5000     // too long for a 2048-byte frame
	descs[5].Addr = 1 << 40 // outside
	descs[6].Len = 0        // empty
	n := s.Transmit(descs)
	// 8 slots: descriptors 0..7 are taken (three refused), 8 and 9 left.
	if n != 8 {
		t.Fatalf("took %d, want 8", n)
	}
	if occ := s.TX.Occupancy(); occ != 5 {
		t.Fatalf("tx ring holds %d, want 5", occ)
	}
	st := s.Stats()
	if st.TxInvalid != 3 || st.TxFrames != 5 || st.TxRingFull != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Kernel completes the five; they come back to the pool.
	for i := 0; i < 5; i++ {
		c := s.TX.consumer.Load()
		d := s.TX.descs[c&s.TX.mask]
		s.TX.consumer.Store(c + 1)
		p := s.Comp.producer.Load()
		s.Comp.addrs[p&s.Comp.mask] = d.Addr
		s.Comp.producer.Store(p + 1)
	}
	if got := s.Complete(64); got != 5 {
		t.Fatalf("completed %d", got)
	}
	for _, d := range descs[8:] {
		s.pool.Put(d.Addr)
	}
	// descs[5] had no identifiable frame: its real frame is lost by the
	// caller's corruption, not by xsk. Everything else is back.
	if s.pool.Len() != 15 || s.InKernel() != 0 {
		t.Fatalf("pool %d, in kernel %d", s.pool.Len(), s.InKernel())
	}
}

func TestFramePoolDoubleFreePanics(t *testing.T) {
	s := fakeSocket(t, 2)
	defer func() {
		if recover() == nil {
			t.Fatal("double free did not panic")
		}
	}()
	s.pool.Put(0)
}

func TestReceiveAllocs(t *testing.T) {
	s := fakeSocket(t, 16)
	descs := make([]Desc, 8)
	allocs := testing.AllocsPerRun(1000, func() {
		s.Refill()
		kernelRx(s, 4, 60, nil)
		n := s.Receive(descs)
		for _, d := range descs[:n] {
			s.pool.Put(d.Addr)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per batch", allocs)
	}
}

func BenchmarkRingRoundTrip(b *testing.B) {
	u, _ := NewUMEM(UMEMOptions{FrameSize: 2048, NumFrames: 64})
	defer u.Close()
	p, _ := NewFramePool(u, 0, 64)
	sk := &Socket{umem: u, pool: p}
	sk.Fill = FillRing{ring: memRing(64), addrs: make([]uint64, 64)}
	sk.Fill.cachedCons = 64
	sk.RX = RxRing{ring: memRing(64), descs: make([]Desc, 64)}
	descs := make([]Desc, 64)
	b.ReportAllocs()
	for b.Loop() {
		sk.Refill()
		kernelRx(sk, 64, 60, nil)
		n := sk.Receive(descs)
		for _, d := range descs[:n] {
			sk.pool.Put(d.Addr)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

func TestRecycle(t *testing.T) {
	s := fakeSocket(t, 16)
	// Half of the UMEM belongs to another pool, as on a shared UMEM.
	mine, err := NewFramePool(s.umem, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	s.pool = mine
	s.Refill()
	if s.Fill.Occupancy() != 8 || mine.Len() != 0 {
		t.Fatalf("fill %d pool %d after refill", s.Fill.Occupancy(), mine.Len())
	}
	// The kernel delivers 5; they are dropped: 4 go back on the fill ring
	// (offsets inside the frame are rounded down), one of another pool's
	// frames is handed back.
	kernelRx(s, 5, 60, nil)
	descs := make([]Desc, 8)
	n := s.Receive(descs)
	if n != 5 {
		t.Fatalf("received %d", n)
	}
	addrs := make([]uint64, 0, 8)
	for _, d := range descs[:4] {
		addrs = append(addrs, d.Addr)
	}
	foreign := s.umem.FrameAddr(12) + 100
	addrs = append(addrs[:2], append([]uint64{foreign}, addrs[2:]...)...)
	rest := s.Recycle(addrs)
	if len(rest) != 1 || rest[0] != foreign {
		t.Fatalf("rest %v, want [%d]", rest, foreign)
	}
	if s.Fill.Occupancy() != 7 || s.InKernel() != 7 {
		t.Fatalf("fill %d in kernel %d, want 7 and 7", s.Fill.Occupancy(), s.InKernel())
	}
	for i := uint32(3); i < 7; i++ {
		if a := s.Fill.addrs[i&s.Fill.mask]; a&(2048-1) != 0 || !mine.Owns(a) {
			t.Fatalf("fill slot %d holds %#x", i, a)
		}
	}
	// No room: a full fill ring takes nothing and keeps its producer.
	mine.Put(descs[4].Addr)
	s.Refill()
	prod := s.Fill.producer.Load()
	back := []uint64{s.umem.FrameAddr(1)}
	if rest := s.Recycle(back); len(rest) != 1 || s.Fill.producer.Load() != prod || s.Fill.cachedProd != prod {
		t.Fatalf("recycle into a full ring: rest %v producer %d->%d cached %d", rest, prod, s.Fill.producer.Load(), s.Fill.cachedProd)
	}
	if st := s.Stats(); st.FillSubmitted != 8+4+1 {
		t.Fatalf("FillSubmitted %d, want 13", st.FillSubmitted)
	}
}
