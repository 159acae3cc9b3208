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
	s := newSocket(u, p)
	s.wakeup, s.fillLimit = true, 8
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

// TestFillLimit: Refill keeps at most fillLimit frames in the fill and rx
// rings together, however much room the fill ring has, and tops them up
// again as frames are received.
func TestFillLimit(t *testing.T) {
	s := fakeSocket(t, 16)
	s.fillLimit = 5
	if got := s.Refill(); got != 5 || s.Fill.Occupancy() != 5 {
		t.Fatalf("first refill took %d (occupancy %d), want 5", got, s.Fill.Occupancy())
	}
	if got := s.Refill(); got != 0 {
		t.Fatalf("refill at the limit took %d", got)
	}
	kernelRx(s, 3, 60, nil) // in the rx ring now: still the kernel's
	if got := s.Refill(); got != 0 {
		t.Fatalf("refill with 3 frames in the rx ring took %d", got)
	}
	descs := make([]Desc, 8)
	if n := s.Receive(descs); n != 3 {
		t.Fatalf("received %d, want 3", n)
	}
	if got := s.Refill(); got != 3 || s.Fill.Occupancy() != 5 {
		t.Fatalf("refill after receiving 3 took %d (occupancy %d), want 3 (5)", got, s.Fill.Occupancy())
	}
	if s.pool.Len()+s.InKernel()+3 != 16 { // 3 frames are still with the test
		t.Fatalf("pool %d + kernel %d + 3 held != 16", s.pool.Len(), s.InKernel())
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
	sk := newSocket(u, p)
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

func TestStoreRelease(t *testing.T) {
	r := memRing(8)
	for _, v := range []uint32{1, 0xffffffff, 0, 12345} {
		storeRelease(r.producer, v)
		if got := r.producer.Load(); got != v {
			t.Fatalf("stored %#x, loaded %#x", v, got)
		}
	}
	if r.consumer.Load() != 0 || r.flags.Load() != 0 {
		t.Fatal("a neighbouring word changed")
	}
}
