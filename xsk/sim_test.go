package xsk_test

import (
	"bytes"
	"testing"

	"github.com/tygress/tygress/xsk"
)

func newSim(t testing.TB, frames int, opts xsk.SocketOptions) (*xsk.Socket, *xsk.SimKernel, *xsk.FramePool) {
	t.Helper()
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: frames})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := xsk.NewFramePool(u, 0, frames)
	if err != nil {
		t.Fatal(err)
	}
	s, k, err := xsk.NewSimSocket(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := u.Close(); err != nil {
			t.Errorf("umem close: %v", err)
		}
	})
	return s, k, pool
}

// TestSimSocketRoundTrip runs frames through every ring of a simulated
// socket and checks that each frame is in exactly one place afterwards.
func TestSimSocketRoundTrip(t *testing.T) {
	opts := xsk.SocketOptions{RxSize: 64, TxSize: 64, FillSize: 128, CompSize: 64}
	s, k, pool := newSim(t, 256, opts)
	if got := s.Refill(); got != 72 { // min(fill, rx+rx/8)
		t.Fatalf("refill: %d frames, want 72", got)
	}
	pkt := bytes.Repeat([]byte{0xab}, 60)
	if got := k.Deliver(100, pkt, 0); got != 64 {
		t.Fatalf("deliver: %d, want 64 (rx ring size)", got)
	}
	ks, _ := s.KernelStats()
	if ks.RxRingFull != 36 {
		t.Errorf("rx ring full: %d, want 36", ks.RxRingFull)
	}
	descs := make([]xsk.Desc, 128)
	n := s.Receive(descs)
	if n != 64 {
		t.Fatalf("receive: %d, want 64", n)
	}
	for _, d := range descs[:n] {
		if !bytes.Equal(s.UMEM().Bytes(d.Addr, d.Len), pkt) {
			t.Fatalf("frame at %#x holds %x", d.Addr, s.UMEM().Bytes(d.Addr, d.Len))
		}
	}
	if got := s.Transmit(descs[:n]); got != 64 {
		t.Fatalf("transmit took %d, want 64", got)
	}
	var seen int
	if got := k.Transmit(100, func(p []byte) {
		if bytes.Equal(p, pkt) {
			seen++
		}
	}); got != 64 || seen != 64 {
		t.Fatalf("kernel sent %d (%d intact), want 64", got, seen)
	}
	if got := s.Complete(128); got != 64 {
		t.Fatalf("completed %d, want 64", got)
	}
	// 8 frames still in the fill ring, the rest in the pool.
	if s.InKernel() != 8 || s.InRings() != 8 || pool.Len() != 248 {
		t.Errorf("in kernel %d, in rings %d, pool %d; want 8, 8, 248", s.InKernel(), s.InRings(), pool.Len())
	}
	st := s.Stats()
	if st.RxFrames != 64 || st.TxFrames != 64 || st.Completed != 64 {
		t.Errorf("stats %+v", st)
	}
}

// TestSimSocketBadDescriptors posts descriptors a broken driver might:
// Receive counts and drops them, and frames it can identify go back to
// the pool.
func TestSimSocketBadDescriptors(t *testing.T) {
	s, k, pool := newSim(t, 16, xsk.SocketOptions{RxSize: 16, FillSize: 16, CompSize: 16})
	size := uint64(s.UMEM().Size())
	a, _ := pool.Get()
	b, _ := pool.Get()
	for _, d := range []xsk.Desc{
		{Addr: size, Len: 60},           // outside the UMEM
		{Addr: a + 2000, Len: 100},      // past its frame
		{Addr: b + 256, Len: 60},        // good
		{Addr: ^uint64(0) - 10, Len: 1}, // wraps
	} {
		if !k.DeliverDesc(d) {
			t.Fatal("rx ring full")
		}
	}
	descs := make([]xsk.Desc, 16)
	if n := s.Receive(descs); n != 1 || descs[0].Addr != b+256 {
		t.Fatalf("receive: %d descriptors %v, want the good one", n, descs[:n])
	}
	if got := s.Stats().RxInvalid; got != 3 {
		t.Errorf("rx invalid %d, want 3", got)
	}
	// a came back to the pool; b is the caller's.
	if pool.Len() != 15 {
		t.Errorf("pool holds %d, want 15", pool.Len())
	}
	// An empty fill ring: the kernel counts the drops.
	if got := k.Deliver(5, nil, 60); got != 0 {
		t.Errorf("delivered %d with an empty fill ring", got)
	}
	if ks, _ := s.KernelStats(); ks.RxFillRingEmpty != 5 {
		t.Errorf("fill ring empty %d, want 5", ks.RxFillRingEmpty)
	}
	// A packet larger than the frame is cut to the frame's room.
	s.Refill()
	big := make([]byte, 4000)
	if got := k.Deliver(1, big, 0); got != 1 {
		t.Fatal("no delivery")
	}
	if n := s.Receive(descs); n != 1 || descs[0].Len != 2048-256 {
		t.Errorf("big packet: %d descriptors, len %d", n, descs[0].Len)
	}
}

// TestSimSocketOptions refuses what NewSocket refuses.
func TestSimSocketOptions(t *testing.T) {
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	pool, _ := xsk.NewFramePool(u, 0, 16)
	for _, o := range []xsk.SocketOptions{
		{RxSize: 100, FillSize: 16, CompSize: 16},
		{FillSize: 16, CompSize: 16},
		{RxSize: 16, CompSize: 16},
	} {
		if _, _, err := xsk.NewSimSocket(pool, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// TestSimSocketCompletions runs completions around the end of a small
// completion ring, with an address no frame has among them: the good
// ones go back to the pool, the bad one is counted.
func TestSimSocketCompletions(t *testing.T) {
	s, k, pool := newSim(t, 16, xsk.SocketOptions{TxSize: 4, FillSize: 4, CompSize: 4})
	size := uint64(s.UMEM().Size())
	send := func(n int) {
		t.Helper()
		descs := make([]xsk.Desc, n)
		for i := range descs {
			a, ok := pool.Get()
			if !ok {
				t.Fatal("empty pool")
			}
			descs[i] = xsk.Desc{Addr: a, Len: 60}
		}
		if got := s.Transmit(descs); got != n {
			t.Fatalf("transmit took %d of %d", got, n)
		}
		if got := k.Transmit(n, nil); got != n {
			t.Fatalf("kernel sent %d of %d", got, n)
		}
	}
	send(3)
	if got := s.Complete(64); got != 3 {
		t.Fatalf("completed %d, want 3", got)
	}
	send(3) // ring slots 3, 0, 1: the entries wrap
	if !k.CompleteAddr(size + 4096) {
		t.Fatal("completion ring full")
	}
	if got := s.Complete(64); got != 4 {
		t.Fatalf("completed %d, want 4", got)
	}
	st := s.Stats()
	if st.Completed != 6 || st.CompInvalid != 1 {
		t.Errorf("completed %d, invalid %d; want 6, 1", st.Completed, st.CompInvalid)
	}
	if pool.Len() != 16 {
		t.Errorf("pool holds %d of 16", pool.Len())
	}
}

// TestSimSocketMissingRings asks a socket for the ring it lacks: nothing
// happens, nothing panics.
func TestSimSocketMissingRings(t *testing.T) {
	rxOnly, _, _ := newSim(t, 16, xsk.SocketOptions{RxSize: 4, FillSize: 4, CompSize: 4})
	if got := rxOnly.Transmit([]xsk.Desc{{Addr: 0, Len: 60}}); got != 0 {
		t.Errorf("transmit without a tx ring took %d", got)
	}
	txOnly, _, _ := newSim(t, 16, xsk.SocketOptions{TxSize: 4, FillSize: 4, CompSize: 4})
	if got := txOnly.Receive(make([]xsk.Desc, 4)); got != 0 {
		t.Errorf("receive without an rx ring gave %d", got)
	}
	if _, got := txOnly.FillReserve(4); got != 0 {
		t.Errorf("fill reserve without an rx ring gave %d slots", got)
	}
}

// TestSimSocketFillParts returns received frames straight to the fill
// ring (FillReserve, FillSet, FillSubmit): the fill limit holds, a frame
// of another pool is refused, unused slots go back, the frames come
// round again, and every frame is in exactly one place.
func TestSimSocketFillParts(t *testing.T) {
	s, k, pool := newSim(t, 256, xsk.SocketOptions{RxSize: 64, FillSize: 128, CompSize: 64})
	if got := s.Refill(); got != 72 {
		t.Fatalf("refill: %d, want 72 (the fill limit)", got)
	}
	if !s.AtFillLimit() {
		t.Error("not at the fill limit after a full refill")
	}
	if got := k.Deliver(64, make([]byte, 60), 0); got != 64 {
		t.Fatalf("deliver: %d", got)
	}
	descs := make([]xsk.Desc, 64)
	if n := s.Receive(descs); n != 64 {
		t.Fatalf("receive: %d", n)
	}
	held := append([]xsk.Desc(nil), descs[10:]...) // the 54 not recycled below
	if s.AtFillLimit() {
		t.Error("at the fill limit with 64 frames received")
	}
	idx, got := s.FillReserve(100)
	if got != 64 {
		t.Fatalf("reserved %d slots, want 64 (72 allowed, 8 still in the ring)", got)
	}
	var placed uint32
	recycled := map[uint64]bool{}
	for _, d := range descs[:10] {
		// An address inside the frame: the ring gets the frame's start.
		if !s.FillSet(idx+placed, d.Addr+100) {
			t.Fatalf("frame %#x refused", d.Addr)
		}
		placed++
		recycled[d.Addr&^2047] = true
	}
	if s.FillSet(idx+placed, 256*2048) {
		t.Error("a frame outside the pool was accepted")
	}
	s.FillSubmit(placed)
	if s.InKernel() != 18 || s.Fill.Occupancy() != 18 || pool.Len() != 256-72 {
		t.Errorf("in kernel %d, fill ring %d, pool %d; want 18, 18, %d", s.InKernel(), s.Fill.Occupancy(), pool.Len(), 256-72)
	}
	// The slots given back are reserved again, and the limit still holds.
	if idx2, got := s.FillReserve(100); idx2 != idx+placed || got != 54 {
		t.Errorf("second reserve at %d for %d, want %d for 54", idx2, got, idx+placed)
	}
	s.FillSubmit(0)
	if s.Fill.Occupancy() != 18 {
		t.Errorf("an empty submit published: fill ring %d", s.Fill.Occupancy())
	}
	if got := k.Deliver(18, make([]byte, 60), 0); got != 18 {
		t.Fatalf("second deliver: %d", got)
	}
	back := 0
	for _, d := range descs[:s.Receive(descs)] {
		if recycled[d.Addr&^2047] {
			back++
		}
	}
	if back != 10 {
		t.Errorf("%d recycled frames came back through the rx ring, want 10", back)
	}
	// The 18 frames just received go back; the pool tops the ring up.
	idx, got = s.FillReserve(18)
	placed = 0
	for _, d := range descs[:got] {
		if s.FillSet(idx+placed, d.Addr) {
			placed++
		}
	}
	s.FillSubmit(placed)
	if s.AtFillLimit() {
		t.Errorf("at the fill limit with %d of 72 frames given", placed)
	}
	if got := s.Refill(); got != 72-int(placed) || !s.AtFillLimit() {
		t.Errorf("refill gave %d, at the limit %v; want %d, true", got, s.AtFillLimit(), 72-placed)
	}
	if st := s.Stats(); st.FillSubmitted != 82+72 {
		t.Errorf("fill submitted %d, want %d", st.FillSubmitted, 82+72)
	}
	for _, d := range held {
		pool.Put(d.Addr)
	}
	if s.InKernel()+pool.Len() != pool.Total() {
		t.Errorf("frames: %d in the kernel + %d in the pool != %d", s.InKernel(), pool.Len(), pool.Total())
	}
}
