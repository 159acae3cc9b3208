package link_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/link/fault"
	"github.com/tygress/tygress/pipeline"
)

// Test frames: Ethernet header (type 0x88b5, local experimental), an 8-byte
// sequence number, a pattern derived from it, and a CRC-32 of everything
// after the Ethernet header. A single flipped bit past the header is always
// detected.
const (
	hdrLen   = 14
	minFrame = 64
	maxFrame = 1514
)

func frameLen(seq uint64) int { return minFrame + int(seq*7919%(maxFrame-minFrame+1)) }

func fillFrame(f *pipeline.Frame, dst, src [6]byte, seq uint64) {
	n := frameLen(seq)
	d := f.Data[:n]
	copy(d[0:], dst[:])
	copy(d[6:], src[:])
	d[12], d[13] = 0x88, 0xb5
	binary.BigEndian.PutUint64(d[14:], seq)
	for i := 22; i < n-4; i++ {
		d[i] = byte(seq) + byte(i)
	}
	binary.BigEndian.PutUint32(d[n-4:], crc32.ChecksumIEEE(d[hdrLen:n-4]))
	f.Data = d
}

// checkFrame returns the frame's sequence number and whether it is intact.
func checkFrame(d []byte) (uint64, bool) {
	if len(d) < minFrame {
		return 0, false
	}
	n := len(d)
	ok := binary.BigEndian.Uint32(d[n-4:]) == crc32.ChecksumIEEE(d[hdrLen:n-4])
	seq := binary.BigEndian.Uint64(d[14:])
	return seq, ok && n == frameLen(seq)
}

// endpoint sends n numbered frames and receives the peer's until both
// sides are done and nothing is left on the wire or held by faults.
type endpoint struct {
	l         *link.Mem
	n         int
	sentAll   atomic.Bool
	seqs      []uint64 // intact frames received, in order
	corrupted int
}

func (e *endpoint) run(peer *endpoint, wg *sync.WaitGroup, errc chan<- error) {
	defer wg.Done()
	tx := make([]pipeline.Frame, 64)
	rx := make([]pipeline.Frame, 64)
	dst, src := peer.l.HardwareAddr(), e.l.HardwareAddr()
	sent := 0
	deadline := time.Now().Add(20 * time.Second)
	for {
		k := 0
		if sent < e.n {
			k = e.l.Alloc(tx[:min(len(tx), e.n-sent)])
			for i := range tx[:k] {
				fillFrame(&tx[i], dst, src, uint64(sent+i))
			}
			if q := e.l.Transmit(tx[:k]); q != k {
				errc <- errors.New("transmit refused frames")
				return
			}
			e.l.Flush()
			sent += k
			if sent == e.n {
				e.sentAll.Store(true)
			}
		}
		got := e.l.Receive(rx)
		for _, f := range rx[:got] {
			if f.Data[12] != 0x88 || [6]byte(f.Data[0:6]) != src {
				errc <- errors.New("frame header damaged")
				return
			}
			seq, ok := checkFrame(f.Data)
			if ok {
				e.seqs = append(e.seqs, seq)
			} else {
				e.corrupted++
			}
		}
		e.l.Release(rx[:got])
		if sent == e.n && got == 0 && peer.sentAll.Load() && e.l.Backlog() == 0 {
			return
		}
		if time.Now().After(deadline) {
			errc <- errors.New("exchange timed out")
			return
		}
		if got == 0 && (k == 0 || sent == e.n) {
			if err := e.l.Wait(time.Millisecond); err != nil {
				errc <- err
				return
			}
		}
	}
}

func exchange(t *testing.T, opts link.MemOptions, n int) (a, b *endpoint) {
	t.Helper()
	la, lb, err := link.NewMemPair(opts)
	if err != nil {
		t.Fatal(err)
	}
	a, b = &endpoint{l: la, n: n}, &endpoint{l: lb, n: n}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(2)
	go a.run(b, &wg, errc)
	go b.run(a, &wg, errc)
	// Stats, FaultStats and Wake are safe from any goroutine: exercise them
	// under the race detector while the owners work.
	stop := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			for _, l := range []*link.Mem{la, lb} {
				if s := l.Stats(); s.RxDropped != s.RxNoBuffer+s.RxFault {
					errc <- errors.New("inconsistent stats")
				}
				l.FaultStats()
				l.Wake()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-watcher
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Both goroutines are done: close and count buffers from here.
	if err := la.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*link.Mem{la, lb} {
		if free, total := l.Buffers(); free != total {
			t.Errorf("%d of %d buffers free after close", free, total)
		}
	}
	return a, b
}

// TestMemExchange: two goroutines send 100k frames each way over a perfect
// wire; every frame arrives intact, once, in order.
func TestMemExchange(t *testing.T) {
	const n = 100_000
	a, b := exchange(t, link.DefaultMemOptions(), n)
	for _, e := range []*endpoint{a, b} {
		if len(e.seqs) != n || e.corrupted != 0 {
			t.Fatalf("received %d intact, %d corrupted, want %d: %+v", len(e.seqs), e.corrupted, n, e.l.Stats())
		}
		for i, s := range e.seqs {
			if s != uint64(i) {
				t.Fatalf("frame %d has sequence %d", i, s)
			}
		}
		st := e.l.Stats()
		if st.TxFrames != n || st.RxFrames != n || st.RxDropped != 0 || st.TxDropped != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// TestMemFaults exchanges frames through each fault and checks that every
// frame sent is accounted for: delivered, or dropped with a reason.
func TestMemFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		cfg  fault.Config
	}{
		{"loss", 20_000, fault.Config{Seed: 1, Loss: 0.05}},
		{"burst", 20_000, fault.Config{Seed: 2, Burst: fault.GilbertElliott{P: 0.01, R: 0.2}}},
		{"duplicate", 20_000, fault.Config{Seed: 3, Duplicate: 0.05}},
		{"corrupt", 20_000, fault.Config{Seed: 4, Corrupt: 0.05, CorruptOffset: hdrLen}},
		{"reorder", 20_000, fault.Config{Seed: 5, Reorder: 0.05, ReorderGap: 3}},
		{"delay", 20_000, fault.Config{Seed: 6, Delay: 200 * time.Microsecond, Jitter: 100 * time.Microsecond}},
		{"all", 100_000, fault.Config{Seed: 7, Loss: 0.01, Burst: fault.GilbertElliott{P: 0.005, R: 0.3},
			Duplicate: 0.02, Corrupt: 0.02, CorruptOffset: hdrLen, Reorder: 0.02,
			Delay: 100 * time.Microsecond, Jitter: 50 * time.Microsecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := link.DefaultMemOptions()
			opts.Buffers = 8192
			opts.Faults = &tc.cfg
			a, b := exchange(t, opts, tc.n)
			for _, dir := range [][2]*endpoint{{a, b}, {b, a}} {
				tx, rx := dir[0], dir[1]
				ts, rs, fs := tx.l.Stats(), rx.l.Stats(), rx.l.FaultStats()
				t.Logf("tx %d, rx %d (intact %d, corrupted %d), faults %+v, rx no-buffer %d",
					ts.TxFrames, rs.RxFrames, len(rx.seqs), rx.corrupted, fs, rs.RxNoBuffer)
				if ts.TxFrames != uint64(tx.n) || ts.TxDropped != 0 {
					t.Fatalf("sender stats %+v", ts)
				}
				// Sent = into the injector + no buffer at the receiver.
				if fs.In+rs.RxNoBuffer != ts.TxFrames {
					t.Fatalf("injector saw %d + %d without buffer, %d sent", fs.In, rs.RxNoBuffer, ts.TxFrames)
				}
				// Injector: in + duplicates = delivered + dropped by reason.
				if fs.Held != 0 || fs.In+fs.Duplicated != fs.Delivered+fs.Dropped() {
					t.Fatalf("fault stats do not add up: %+v", fs)
				}
				if rs.RxFrames != fs.Delivered || rs.RxFault != fs.Dropped() {
					t.Fatalf("link rx %d fault drops %d, injector delivered %d dropped %d", rs.RxFrames, rs.RxFault, fs.Delivered, fs.Dropped())
				}
				if uint64(len(rx.seqs)+rx.corrupted) != rs.RxFrames || uint64(rx.corrupted) != fs.Corrupted {
					t.Fatalf("receiver saw %d intact + %d corrupted, link %d, injector corrupted %d",
						len(rx.seqs), rx.corrupted, rs.RxFrames, fs.Corrupted)
				}
				// Count what the receiver saw.
				seen := make(map[uint64]int, len(rx.seqs))
				late := 0
				var high uint64
				for i, s := range rx.seqs {
					seen[s]++
					if i > 0 && s < high {
						late++
					}
					high = max(high, s)
				}
				dups := 0
				for _, c := range seen {
					dups += c - 1
				}
				if uint64(dups) > fs.Duplicated {
					t.Fatalf("%d duplicates seen, %d made", dups, fs.Duplicated)
				}
				if missing := tx.n - len(seen); uint64(missing) > fs.Dropped()+fs.Corrupted+rs.RxNoBuffer {
					t.Fatalf("%d frames missing, %d dropped, %d corrupted", missing, fs.Dropped(), fs.Corrupted)
				}
				switch tc.name {
				case "loss", "burst":
					if fs.Dropped() == 0 || len(seen) == tx.n {
						t.Fatal("nothing lost")
					}
				case "duplicate":
					if dups == 0 || uint64(dups) != fs.Duplicated {
						t.Fatalf("%d duplicates seen, %d made", dups, fs.Duplicated)
					}
				case "corrupt":
					if rx.corrupted == 0 {
						t.Fatal("nothing corrupted")
					}
				case "reorder":
					if late == 0 || uint64(late) > fs.Reordered {
						t.Fatalf("%d late, %d reordered", late, fs.Reordered)
					}
				case "delay":
					if fs.Delayed+fs.HoldFull != fs.In || len(seen) != tx.n-int(fs.HoldFull) {
						t.Fatalf("delayed %d + hold full %d of %d, %d arrived", fs.Delayed, fs.HoldFull, fs.In, len(seen))
					}
				}
			}
		})
	}
}

// TestMemReplay: with faults but no delay (which depends on real time), the
// same seed gives the same frames in the same order.
func TestMemReplay(t *testing.T) {
	cfg := fault.Config{Seed: 11, Loss: 0.02, Duplicate: 0.02, Reorder: 0.05, Corrupt: 0.01, CorruptOffset: hdrLen}
	run := func() []uint64 {
		opts := link.DefaultMemOptions()
		opts.Faults = &cfg
		a, b, err := link.NewMemPair(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		fs := make([]pipeline.Frame, 32)
		var got []uint64
		for seq := uint64(0); seq < 10_000; seq += uint64(len(fs)) {
			k := a.Alloc(fs)
			for i := range fs[:k] {
				fillFrame(&fs[i], b.HardwareAddr(), a.HardwareAddr(), seq+uint64(i))
			}
			a.Transmit(fs[:k])
			a.Flush()
			for {
				n := b.Receive(fs)
				if n == 0 {
					break
				}
				for _, f := range fs[:n] {
					s, _ := checkFrame(f.Data)
					got = append(got, s)
				}
				b.Release(fs[:n])
			}
		}
		return got
	}
	x, y := run(), run()
	if len(x) == 0 || len(x) != len(y) {
		t.Fatalf("runs received %d and %d frames", len(x), len(y))
	}
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("runs differ at frame %d: %d vs %d", i, x[i], y[i])
		}
	}
}

func newPair(t *testing.T, mutate func(*link.MemOptions)) (a, b *link.Mem) {
	t.Helper()
	opts := link.DefaultMemOptions()
	if mutate != nil {
		mutate(&opts)
	}
	a, b, err := link.NewMemPair(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	fn()
}

// TestMemOwnership: Transmit accepts only frames the caller owns on this
// link; Release of a frame not owned is a broken invariant.
func TestMemOwnership(t *testing.T) {
	for _, tc := range []struct {
		name    string
		frame   func(a, b *link.Mem) pipeline.Frame // a frame to give a.Transmit
		invalid bool
		freed   bool // a's buffer went back to its free list
	}{
		{"allocated", func(a, _ *link.Mem) pipeline.Frame {
			f := alloc1(t, a)
			f.Data = append(f.Data, make([]byte, 60)...)
			return f
		}, false, false},
		{"empty", func(a, _ *link.Mem) pipeline.Frame { return alloc1(t, a) }, true, true},
		{"too big", func(a, _ *link.Mem) pipeline.Frame {
			f := alloc1(t, a)
			f.Data = f.Data[:a.MTU()+link.MaxHeader+1]
			return f
		}, true, true},
		{"moved start without addr", func(a, _ *link.Mem) pipeline.Frame {
			f := alloc1(t, a)
			f.Data = f.Data[2:80]
			return f
		}, true, false},
		{"moved start with addr", func(a, _ *link.Mem) pipeline.Frame {
			f := alloc1(t, a)
			f.Data = f.Data[2:80]
			f.Addr += 2
			return f
		}, false, false},
		{"foreign", func(_, b *link.Mem) pipeline.Frame {
			f := alloc1(t, b)
			f.Data = f.Data[:64]
			return f
		}, true, false},
		{"not a link buffer", func(_, _ *link.Mem) pipeline.Frame {
			return pipeline.Frame{Data: make([]byte, 64), Addr: 1 << 40}
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t, nil)
			f := tc.frame(a, b)
			freeBefore, _ := a.Buffers()
			q := a.Transmit([]pipeline.Frame{f})
			a.Flush()
			st := a.Stats()
			if tc.invalid != (q == 0) || tc.invalid != (st.TxInvalid == 1) {
				t.Fatalf("queued %d, stats %+v", q, st)
			}
			free, _ := a.Buffers()
			if tc.freed != (free == freeBefore+1) {
				t.Fatalf("free buffers %d -> %d", freeBefore, free)
			}
			if !tc.invalid {
				rx := make([]pipeline.Frame, 1)
				if b.Receive(rx) != 1 || len(rx[0].Data) != len(f.Data) {
					t.Fatal("frame did not arrive")
				}
				b.Release(rx)
			}
		})
	}

	a, b := newPair(t, nil)
	f := alloc1(t, a)
	f.Data = f.Data[:64]
	if a.Transmit([]pipeline.Frame{f, f}) != 1 || a.Stats().TxInvalid != 1 {
		t.Fatalf("double transmit: %+v", a.Stats())
	}
	mustPanic(t, "release after transmit", func() { a.Release([]pipeline.Frame{f}) })
	g := alloc1(t, a)
	a.Release([]pipeline.Frame{g})
	mustPanic(t, "double release", func() { a.Release([]pipeline.Frame{g}) })
	h := alloc1(t, b)
	mustPanic(t, "release on the wrong link", func() { a.Release([]pipeline.Frame{{Data: h.Data, Addr: 1 << 40}}) })
	b.Release([]pipeline.Frame{h})
}

func alloc1(t *testing.T, l link.Link) pipeline.Frame {
	t.Helper()
	fs := make([]pipeline.Frame, 1)
	if l.Alloc(fs) != 1 {
		t.Fatal("alloc failed")
	}
	if len(fs[0].Data) != 0 || cap(fs[0].Data) < l.MTU()+link.MaxHeader {
		t.Fatalf("allocated frame len %d cap %d", len(fs[0].Data), cap(fs[0].Data))
	}
	return fs[0]
}

// TestMemEcho: a received frame can grow in place and go back out with
// Transmit (ownership moves, nothing is copied by the caller).
func TestMemEcho(t *testing.T) {
	a, b := newPair(t, func(o *link.MemOptions) { o.Headroom = 32 })
	f := alloc1(t, a)
	fillFrame(&f, b.HardwareAddr(), a.HardwareAddr(), 5)
	a.Transmit([]pipeline.Frame{f})
	a.Flush()
	rx := make([]pipeline.Frame, 4)
	if b.Receive(rx) != 1 {
		t.Fatal("nothing received")
	}
	r := rx[0]
	if _, ok := checkFrame(r.Data); !ok {
		t.Fatal("frame damaged")
	}
	r.Data = append(r.Data, 1, 2, 3) // in place: cap reaches the buffer's end
	if &r.Data[0] != &rx[0].Data[0] {
		t.Fatal("append moved the frame")
	}
	b.Transmit([]pipeline.Frame{r})
	b.Flush()
	if a.Receive(rx) != 1 || len(rx[0].Data) != frameLen(5)+3 {
		t.Fatal("echo not received")
	}
	a.Release(rx[:1])
	if st := b.Stats(); st.TxFrames != 1 || st.RxFrames != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMemRingFullAndStarvation(t *testing.T) {
	a, b := newPair(t, func(o *link.MemOptions) { o.Buffers, o.RxBuffers, o.RingSize = 64, 32, 16 })
	fs := make([]pipeline.Frame, 100)
	send := func(n int) int {
		k := a.Alloc(fs[:n])
		for i := range fs[:k] {
			fillFrame(&fs[i], b.HardwareAddr(), a.HardwareAddr(), uint64(i))
		}
		if q := a.Transmit(fs[:k]); q != k {
			t.Fatalf("queued %d of %d", q, k)
		}
		a.Flush()
		return k
	}
	if k := send(100); k != 32 {
		t.Fatalf("allocated %d, want the 32 transmit buffers", k)
	}
	st := a.Stats()
	if st.TxFrames != 16 || st.TxQueueFull != 16 || st.TxDropped != 16 {
		t.Fatalf("stats %+v", st)
	}
	if n := a.Alloc(fs); n != 16 {
		t.Fatalf("after drops allocated %d, want 16 (16 on the wire)", n)
	}
	a.Release(fs[:16])
	if n := b.Receive(fs); n != 16 {
		t.Fatalf("received %d", n)
	}
	b.Release(fs[:16])
	if free, total := a.Buffers(); free != total {
		t.Fatalf("%d of %d free", free, total)
	}

	// A receiver that holds all 32 receive buffers drops what comes next;
	// its transmit buffers are not used for receiving.
	held := make([]pipeline.Frame, 64)
	got := 0
	for range 2 {
		send(16)
		got += b.Receive(held[got:])
	}
	if got != 32 {
		t.Fatalf("received %d", got)
	}
	send(8)
	if n := b.Receive(fs); n != 0 || b.Stats().RxNoBuffer != 8 || b.Stats().RxDropped != 8 {
		t.Fatalf("received %d, stats %+v", n, b.Stats())
	}
	if n := b.Alloc(fs); n != 32 {
		t.Fatalf("receiver allocated %d transmit buffers, want 32", n)
	}
	b.Release(fs[:32])
	b.Release(held[:got])
}

func TestMemWaitWake(t *testing.T) {
	a, b := newPair(t, nil)
	start := time.Now()
	if err := b.Wait(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Fatalf("Wait returned after %v, want the 20ms timeout", d)
	}
	if err := b.Wait(0); err != nil {
		t.Fatal(err)
	}

	// Wake from another goroutine interrupts a long Wait.
	go func() {
		time.Sleep(10 * time.Millisecond)
		b.Wake()
	}()
	start = time.Now()
	b.Wait(10 * time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Wake did not interrupt Wait (%v)", d)
	}
	// A Wake before Wait makes it return at once.
	b.Wake()
	b.Wake()
	start = time.Now()
	b.Wait(10 * time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatal("pending Wake lost")
	}

	// A frame from the peer ends Wait.
	go func() {
		time.Sleep(10 * time.Millisecond)
		fs := make([]pipeline.Frame, 1)
		a.Alloc(fs)
		fillFrame(&fs[0], b.HardwareAddr(), a.HardwareAddr(), 1)
		a.Transmit(fs)
		a.Flush()
	}()
	start = time.Now()
	for time.Since(start) < 5*time.Second {
		b.Wait(-1)
		if b.Backlog() > 0 {
			break
		}
	}
	fs := make([]pipeline.Frame, 1)
	if b.Receive(fs) != 1 {
		t.Fatal("no frame after Wait")
	}
	b.Release(fs)

	// Close: Wait fails, Transmit counts TxDown, the peer's too.
	b.Close()
	if err := b.Wait(time.Millisecond); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	b.Wake() // harmless
	a.Alloc(fs)
	fillFrame(&fs[0], b.HardwareAddr(), a.HardwareAddr(), 2)
	a.Transmit(fs)
	a.Flush()
	if st := a.Stats(); st.TxDown != 1 {
		t.Fatalf("stats after peer closed %+v", st)
	}
	if free, total := a.Buffers(); free != total {
		t.Fatalf("%d of %d free", free, total)
	}
}

// TestMemWaitForHeldFrames: with a delay fault, Wait wakes up when the held
// frame is due, not at its timeout.
func TestMemWaitForHeldFrames(t *testing.T) {
	a, b := newPair(t, func(o *link.MemOptions) { o.Faults = &fault.Config{Delay: 20 * time.Millisecond} })
	fs := make([]pipeline.Frame, 1)
	a.Alloc(fs)
	fillFrame(&fs[0], b.HardwareAddr(), a.HardwareAddr(), 1)
	a.Transmit(fs)
	a.Flush()
	start := time.Now()
	if b.Receive(fs) != 0 {
		t.Fatal("delayed frame arrived at once")
	}
	for b.Receive(fs) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("delayed frame never arrived")
		}
		b.Wait(10 * time.Second)
	}
	if d := time.Since(start); d < 20*time.Millisecond || d > 4*time.Second {
		t.Fatalf("frame arrived after %v, want 20ms", d)
	}
	b.Release(fs)
}

func TestMemOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts link.MemOptions
	}{
		{"mtu too small", link.MemOptions{MTU: 10}},
		{"ring not a power of two", link.MemOptions{RingSize: 1000}},
		{"negative buffers", link.MemOptions{Buffers: -1}},
		{"bad fault", link.MemOptions{Faults: &fault.Config{Loss: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := link.NewMemPair(tc.opts); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	a, b := newPair(t, func(o *link.MemOptions) { *o = link.MemOptions{} })
	if a.MTU() != 1500 || a.HardwareAddr() == b.HardwareAddr() {
		t.Fatalf("defaults: mtu %d, addresses %v %v", a.MTU(), a.HardwareAddr(), b.HardwareAddr())
	}
}

// roundTrip sends a batch a→b, echoes it b→a and releases it on a.
func roundTrip(a, b *link.Mem, fs []pipeline.Frame, size int) int {
	k := a.Alloc(fs)
	for i := range fs[:k] {
		fs[i].Data = fs[i].Data[:size]
	}
	a.Transmit(fs[:k])
	a.Flush()
	n := b.Receive(fs)
	b.Transmit(fs[:n])
	b.Flush()
	n = a.Receive(fs)
	a.Release(fs[:n])
	return n
}

func TestMemZeroAllocs(t *testing.T) {
	cfg := fault.Config{Seed: 1, Loss: 0.01, Duplicate: 0.01, Reorder: 0.01, Corrupt: 0.01, Delay: time.Microsecond}
	for _, faults := range []*fault.Config{nil, &cfg} {
		a, b := newPair(t, func(o *link.MemOptions) { o.Faults = faults })
		fs := make([]pipeline.Frame, 64)
		if faults == nil {
			for range 100 { // more than every buffer: they must all come back
				if roundTrip(a, b, fs, 64) != 64 {
					t.Fatalf("round trip lost frames: a %+v b %+v", a.Stats(), b.Stats())
				}
			}
		}
		if allocs := testing.AllocsPerRun(200, func() { roundTrip(a, b, fs, 64) }); allocs != 0 {
			t.Fatalf("faults %v: %v allocations per round trip", faults != nil, allocs)
		}
	}
}

// BenchmarkMemRoundTrip: per frame, a→b and back on one goroutine, batches
// of 64 frames of 64 bytes.
func BenchmarkMemRoundTrip(bb *testing.B) {
	for _, size := range []int{64, 1514} {
		bb.Run(map[int]string{64: "64B", 1514: "1514B"}[size], func(bb *testing.B) {
			a, b, _ := link.NewMemPair(link.DefaultMemOptions())
			fs := make([]pipeline.Frame, 64)
			bb.ReportAllocs()
			bb.SetBytes(int64(size))
			bb.ResetTimer()
			for i := 0; i < bb.N; i += 64 {
				if roundTrip(a, b, fs, size) != 64 {
					bb.Fatalf("round trip lost frames: a %+v b %+v", a.Stats(), b.Stats())
				}
			}
		})
	}
}

// BenchmarkMemTwoGoroutines: per frame, a sends on one goroutine and b
// receives on another (the SPSC rings and wakeups under contention).
func BenchmarkMemTwoGoroutines(bb *testing.B) {
	a, b, _ := link.NewMemPair(link.DefaultMemOptions())
	done := make(chan struct{})
	var got atomic.Int64
	go func() {
		defer close(done)
		fs := make([]pipeline.Frame, 64)
		for got.Load() < int64(bb.N) {
			n := b.Receive(fs)
			b.Release(fs[:n])
			got.Add(int64(n))
			if n == 0 {
				b.Wait(time.Millisecond)
			}
		}
	}()
	fs := make([]pipeline.Frame, 64)
	bb.ReportAllocs()
	bb.ResetTimer()
	for sent := 0; sent < bb.N; {
		k := a.Alloc(fs[:min(64, bb.N-sent)])
		for i := range fs[:k] {
			fs[i].Data = fs[i].Data[:64]
		}
		a.Transmit(fs[:k])
		a.Flush()
		sent += k
		if k == 0 {
			a.Wait(10 * time.Microsecond)
		}
	}
	<-done
}
