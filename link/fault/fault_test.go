package fault_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tygress/tygress/link/fault"
	"github.com/tygress/tygress/pipeline"
)

// bench is a buffer pool and a recorder around an Injector: frames carry a
// sequence number in their first 8 bytes; Addr is the buffer index.
type bench struct {
	t     testing.TB
	inj   *fault.Injector
	bufs  [][]byte
	free  []int
	now   time.Time
	start time.Time
	// Recorded deliveries and drops, when rec is set.
	rec       bool
	delivered []event
	drops     [8]int
	deliver   func(pipeline.Frame)
	drop      func(pipeline.Frame, fault.Reason)
	alloc     func() (pipeline.Frame, bool)
	noBuffers bool
}

type event struct {
	seq uint64
	at  time.Duration // since start
}

const bufSize = 2048

func newBench(t testing.TB, cfg fault.Config, nbuf int, rec bool) *bench {
	b := &bench{t: t, rec: rec, start: time.Unix(1_700_000_000, 0)}
	b.now = b.start
	b.bufs = make([][]byte, nbuf)
	for i := range b.bufs {
		b.bufs[i] = make([]byte, bufSize)
		b.free = append(b.free, nbuf-1-i)
	}
	b.deliver = func(f pipeline.Frame) {
		if b.rec {
			b.delivered = append(b.delivered, event{seq: binary.BigEndian.Uint64(f.Data), at: b.now.Sub(b.start)})
		}
		b.put(f)
	}
	b.drop = func(f pipeline.Frame, r fault.Reason) {
		b.drops[r]++
		b.put(f)
	}
	b.alloc = func() (pipeline.Frame, bool) {
		if b.noBuffers {
			return pipeline.Frame{}, false
		}
		return b.get()
	}
	var err error
	if b.inj, err = fault.New(cfg, b.alloc); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bench) get() (pipeline.Frame, bool) {
	n := len(b.free)
	if n == 0 {
		return pipeline.Frame{}, false
	}
	i := b.free[n-1]
	b.free = b.free[:n-1]
	return pipeline.Frame{Data: b.bufs[i][:0], Addr: uint64(i)}, true
}

func (b *bench) put(f pipeline.Frame) {
	if len(b.free) == len(b.bufs) {
		b.t.Fatal("buffer freed twice")
	}
	b.free = append(b.free, int(f.Addr))
}

// frames fills dst with frames of size bytes numbered from seq.
func (b *bench) frames(dst []pipeline.Frame, seq uint64, size int) []pipeline.Frame {
	for i := range dst {
		f, ok := b.get()
		if !ok {
			b.t.Fatal("test pool empty")
		}
		f.Data = f.Data[:size]
		binary.BigEndian.PutUint64(f.Data, seq+uint64(i))
		for k := 8; k < size; k++ {
			f.Data[k] = byte(k)
		}
		dst[i] = f
	}
	return dst
}

// run sends n frames of size bytes, one batch of batch frames every step of
// simulated time, then lets held frames drain for drainFor.
func (b *bench) run(n, batch, size int, step, drainFor time.Duration) {
	fs := make([]pipeline.Frame, batch)
	for seq := 0; seq < n; seq += batch {
		fs = fs[:min(batch, n-seq)]
		fs = b.frames(fs, uint64(seq), size)
		b.inj.Process(b.now, fs, b.deliver, b.drop)
		b.now = b.now.Add(step)
		b.inj.Due(b.now, b.deliver)
	}
	for end := b.now.Add(drainFor); b.now.Before(end); b.now = b.now.Add(step) {
		b.inj.Due(b.now, b.deliver)
	}
}

// checkInvariant: every frame is delivered, dropped or held, and every
// buffer not held is back in the pool.
func (b *bench) checkInvariant() fault.Stats {
	b.t.Helper()
	s := b.inj.Stats()
	if s.In+s.Duplicated != s.Delivered+s.Dropped()+s.Held {
		b.t.Fatalf("in %d + dup %d != delivered %d + dropped %d + held %d", s.In, s.Duplicated, s.Delivered, s.Dropped(), s.Held)
	}
	if got := len(b.bufs) - len(b.free); got != int(s.Held) {
		b.t.Fatalf("%d buffers out of the pool, %d held", got, s.Held)
	}
	if s.Held != uint64(b.inj.Held()) {
		b.t.Fatalf("stats held %d, Held() %d", s.Held, b.inj.Held())
	}
	sum := 0
	for _, d := range b.drops {
		sum += d
	}
	if uint64(sum) != s.Dropped() {
		b.t.Fatalf("drop callback saw %d, stats %d", sum, s.Dropped())
	}
	return s
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol*want {
		t.Errorf("%s = %.5g, want %.5g ± %.1f%%", what, got, want, tol*100)
	} else {
		t.Logf("%s = %.5g (want %.5g ± %.1f%%)", what, got, want, tol*100)
	}
}

func TestLossRate(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name string
		p    float64
		seed uint64
	}{
		{"1%", 0.01, 1}, {"10%", 0.1, 2}, {"50%", 0.5, 3}, {"all", 1, 4}, {"none", 0, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, fault.Config{Seed: tc.seed, Loss: tc.p}, 128, false)
			b.run(n, 64, 64, time.Microsecond, 0)
			s := b.checkInvariant()
			// Tolerance: 5 standard deviations of a binomial proportion.
			sd := math.Sqrt(tc.p * (1 - tc.p) / n)
			got := float64(s.Lost) / n
			if math.Abs(got-tc.p) > 5*sd+1e-12 {
				t.Fatalf("loss rate %.5f, want %.5f ± %.5f", got, tc.p, 5*sd)
			}
			if s.Delivered+s.Lost != n {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestGilbertElliott checks the mean burst length (1/R) and the overall loss
// rate against the two-state chain's stationary distribution.
func TestGilbertElliott(t *testing.T) {
	const n = 200_000
	for _, tc := range []struct {
		name string
		ge   fault.GilbertElliott
	}{
		{"bursts of 4", fault.GilbertElliott{P: 0.02, R: 0.25}},
		{"bursts of 10", fault.GilbertElliott{P: 0.005, R: 0.1}},
		{"lossy good state", fault.GilbertElliott{P: 0.01, R: 0.5, LossBad: 0.8, LossGood: 0.01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, fault.Config{Seed: 42, Burst: tc.ge}, 128, true)
			b.run(n, 64, 64, time.Microsecond, 0)
			s := b.checkInvariant()
			bad := tc.ge.P / (tc.ge.P + tc.ge.R)
			lb := tc.ge.LossBad
			if lb == 0 {
				lb = 1
			}
			within(t, "loss rate", float64(s.BurstLost)/n, bad*lb+(1-bad)*tc.ge.LossGood, 0.08)
			if tc.ge.LossGood != 0 || tc.ge.LossBad != 0 {
				return // runs of losses are bursts only when the bad state always loses
			}
			// Runs of consecutive lost frames are exactly the bad periods.
			var runs, lost int
			next := uint64(0)
			for _, e := range b.delivered {
				if gap := int(e.seq - next); gap > 0 {
					runs++
					lost += gap
				}
				next = e.seq + 1
			}
			if gap := int(n - next); gap > 0 {
				runs++
				lost += gap
			}
			if uint64(lost) != s.BurstLost {
				t.Fatalf("counted %d lost, stats %d", lost, s.BurstLost)
			}
			// ~4 standard deviations of the mean of geometric run lengths.
			mean := 1 / tc.ge.R
			sd := math.Sqrt((1-tc.ge.R)/(tc.ge.R*tc.ge.R)) / math.Sqrt(float64(runs))
			within(t, "mean burst length", float64(lost)/float64(runs), mean, 4*sd/mean)
		})
	}
}

func TestReorder(t *testing.T) {
	const n = 100_000
	for _, gap := range []int{1, 3, 10} {
		t.Run(fmt.Sprint("gap", gap), func(t *testing.T) {
			b := newBench(t, fault.Config{Seed: 7, Reorder: 0.05, ReorderGap: gap}, 256, true)
			b.run(n, 32, 64, time.Microsecond, 0)
			b.inj.Flush(b.deliver)
			s := b.checkInvariant()
			within(t, "reordered fraction", float64(s.Reordered)/n, 0.05, 0.05)
			if len(b.delivered) != n {
				t.Fatalf("delivered %d of %d", len(b.delivered), n)
			}
			seen := make([]bool, n)
			late := 0
			var high uint64
			for i, e := range b.delivered {
				if seen[e.seq] {
					t.Fatalf("frame %d delivered twice", e.seq)
				}
				seen[e.seq] = true
				if i > 0 && e.seq < high {
					late++
				}
				high = max(high, e.seq)
			}
			// Every held frame arrives after a later one (except held
			// frames at the very end, released by Flush), and nothing else
			// is out of order.
			if late > int(s.Reordered) || late < int(s.Reordered)-gap-1 {
				t.Fatalf("%d frames arrived late, %d were reordered", late, s.Reordered)
			}
		})
	}
}

// TestReorderPosition: a frame held back comes right after the next gap
// frames; with no more frames it comes at its timeout.
func TestReorderPosition(t *testing.T) {
	b := newBench(t, fault.Config{Seed: 1, Reorder: 1, ReorderGap: 2, ReorderTimeout: time.Millisecond}, 16, true)
	fs := b.frames(make([]pipeline.Frame, 1), 0, 64)
	b.inj.Process(b.now, fs, b.deliver, b.drop)
	if len(b.delivered) != 0 || b.inj.Held() != 1 {
		t.Fatalf("frame not held: delivered %d held %d", len(b.delivered), b.inj.Held())
	}
	next, ok := b.inj.Next()
	if !ok || next.Sub(b.now) != time.Millisecond {
		t.Fatalf("Next = %v %v, want now+1ms", next, ok)
	}
	if b.inj.Due(b.now.Add(time.Millisecond-1), b.deliver) != 0 {
		t.Fatal("released before its timeout")
	}
	b.now = b.now.Add(time.Millisecond)
	if b.inj.Due(b.now, b.deliver) != 1 || len(b.delivered) != 1 {
		t.Fatal("not released at its timeout")
	}
	b.checkInvariant()

	const gap = 2
	b = newBench(t, fault.Config{Seed: 3, Reorder: 0.2, ReorderGap: gap, ReorderTimeout: time.Hour}, 64, true)
	b.run(1000, 1, 64, time.Microsecond, 0)
	flushed := b.inj.Held()
	b.inj.Flush(b.deliver)
	s := b.checkInvariant()
	// A frame is late (a higher one came before it) exactly when it was
	// held, and then exactly gap frames that were not held and that
	// followed it came before it.
	var unheld []uint64 // ascending: unheld frames keep their order
	late := 0
	for i, e := range b.delivered {
		if len(unheld) > 0 && e.seq < unheld[len(unheld)-1] {
			late++
			k, _ := slices.BinarySearch(unheld, e.seq)
			if after := len(unheld) - k; i < len(b.delivered)-flushed && after != gap {
				t.Fatalf("frame %d came after %d later frames, want %d", e.seq, after, gap)
			}
			continue
		}
		unheld = append(unheld, e.seq)
	}
	if late == 0 || uint64(late) > s.Reordered {
		t.Fatalf("%d late frames, %d reordered", late, s.Reordered)
	}
}

func TestDelay(t *testing.T) {
	const step = 100 * time.Microsecond
	for _, tc := range []struct {
		name          string
		delay, jitter time.Duration
	}{
		{"fixed", 10 * time.Millisecond, 0},
		{"jitter", 10 * time.Millisecond, 4 * time.Millisecond},
		{"jitter beyond delay", time.Millisecond, 3 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, fault.Config{Seed: 9, Delay: tc.delay, Jitter: tc.jitter, HoldLimit: 4096}, 4096, true)
			const n = 20_000
			b.run(n, 1, 64, step, tc.delay+tc.jitter+2*step)
			s := b.checkInvariant()
			if s.Delivered != n || s.Delayed != n || s.Held != 0 {
				t.Fatalf("stats %+v", s)
			}
			inOrder := true
			var jitterSum float64
			for i, e := range b.delivered {
				sent := time.Duration(e.seq) * step
				lat := e.at - sent
				lo, hi := max(tc.delay-tc.jitter, 0), tc.delay+tc.jitter+step
				if lat < lo || lat > hi {
					t.Fatalf("frame %d delayed %v, want in [%v, %v]", e.seq, lat, lo, hi)
				}
				jitterSum += float64(lat)
				if i > 0 && e.seq < b.delivered[i-1].seq {
					inOrder = false
				}
			}
			if tc.jitter == 0 && !inOrder {
				t.Fatal("fixed delay reordered frames")
			}
			if tc.jitter > step && inOrder {
				t.Fatal("jitter larger than the gap between frames did not reorder")
			}
			if tc.jitter < tc.delay {
				// Due runs every step: a jittered release time is rounded
				// up to the next step, half a step on average.
				want := tc.delay
				if tc.jitter > 0 {
					want += step / 2
				}
				within(t, "mean delay", jitterSum/n, float64(want), 0.002)
			}
		})
	}
}

// TestDelayNext: Next names the earliest held frame and Due releases
// exactly the frames due, in time order.
func TestDelayNext(t *testing.T) {
	b := newBench(t, fault.Config{Seed: 5, Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}, 256, true)
	fs := b.frames(make([]pipeline.Frame, 100), 0, 64)
	b.inj.Process(b.now, fs, b.deliver, b.drop)
	last := time.Duration(-1)
	for b.inj.Held() > 0 {
		next, ok := b.inj.Next()
		if !ok {
			t.Fatal("frames held but no deadline")
		}
		if b.inj.Due(next.Add(-1), b.deliver) != 0 {
			t.Fatal("a frame was released before Next")
		}
		b.now = next
		k := len(b.delivered)
		if b.inj.Due(next, b.deliver) == 0 {
			t.Fatal("nothing released at Next")
		}
		for _, e := range b.delivered[k:] {
			if e.at < last {
				t.Fatal("released out of time order")
			}
			last = e.at
		}
	}
	if len(b.delivered) != 100 {
		t.Fatalf("delivered %d", len(b.delivered))
	}
	if _, ok := b.inj.Next(); ok {
		t.Fatal("Next with nothing held")
	}
}

func TestRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        fault.Config
		size       int
		step       time.Duration // one frame per step
		wantBits   float64       // per second
		wantFrames float64
	}{
		// 1000-byte frames offered at 20 Mbit/s against 10 Mbit/s.
		{"bits", fault.Config{RateBits: 10e6}, 1000, 400 * time.Microsecond, 10e6, 0},
		// 2500 frames/s offered against 1000.
		{"packets", fault.Config{RatePackets: 1000}, 100, 400 * time.Microsecond, 0, 1000},
		// Both: 64-byte frames at 20k/s; 5000 pkt/s binds before 10 Mbit/s.
		{"both", fault.Config{RateBits: 10e6, RatePackets: 5000}, 64, 50 * time.Microsecond, 0, 5000},
		// Bursty offer: 64 frames at once every 10 ms (51 Mbit/s offered
		// in bursts) against 4 Mbit/s with a 16 kB bucket.
		{"bursty", fault.Config{RateBits: 4e6, BurstBytes: 16000}, 1000, 0, 4e6, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, tc.cfg, 128, false)
			const secs = 10
			var n int
			if tc.step > 0 {
				n = int(secs * time.Second / tc.step)
				b.run(n, 1, tc.size, tc.step, 0)
			} else {
				n = secs * 100 * 64
				b.run(n, 64, tc.size, 10*time.Millisecond, 0)
			}
			s := b.checkInvariant()
			if s.RateLimited == 0 {
				t.Fatal("nothing was rate limited")
			}
			if tc.wantBits > 0 {
				within(t, "bit rate", float64(s.Delivered)*float64(tc.size*8)/secs, tc.wantBits, 0.05)
			}
			if tc.wantFrames > 0 {
				within(t, "frame rate", float64(s.Delivered)/secs, tc.wantFrames, 0.05)
			}
		})
	}
}

func TestDuplicate(t *testing.T) {
	const n = 50_000
	b := newBench(t, fault.Config{Seed: 11, Duplicate: 0.1}, 256, true)
	b.run(n, 64, 100, time.Microsecond, 0)
	s := b.checkInvariant()
	within(t, "duplicate fraction", float64(s.Duplicated)/n, 0.1, 0.05)
	if s.Delivered != n+s.Duplicated {
		t.Fatalf("stats %+v", s)
	}
	count := make([]int, n)
	for _, e := range b.delivered {
		count[e.seq]++
	}
	dups := 0
	for seq, c := range count {
		if c < 1 || c > 2 {
			t.Fatalf("frame %d delivered %d times", seq, c)
		}
		dups += c - 1
	}
	if uint64(dups) != s.Duplicated {
		t.Fatalf("%d duplicates seen, %d counted", dups, s.Duplicated)
	}

	// Without buffers the duplicate is skipped and counted.
	b = newBench(t, fault.Config{Seed: 11, Duplicate: 1}, 256, false)
	b.noBuffers = true
	b.run(100, 10, 100, time.Microsecond, 0)
	if s := b.checkInvariant(); s.DupNoBuffer != 100 || s.Duplicated != 0 || s.Delivered != 100 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := fault.New(fault.Config{Duplicate: 0.1}, nil); !errors.Is(err, fault.ErrBadConfig) {
		t.Fatalf("duplication without alloc: %v", err)
	}
}

// TestCorrupt: exactly one bit differs, never in the protected prefix.
func TestCorrupt(t *testing.T) {
	const off = 14
	inj, err := fault.New(fault.Config{Seed: 13, Corrupt: 1, CorruptOffset: off}, nil)
	if err != nil {
		t.Fatal(err)
	}
	orig := make([]byte, 200)
	for i := range orig {
		orig[i] = byte(i * 7)
	}
	hits := make([]int, len(orig))
	now := time.Unix(0, 0)
	for range 20_000 {
		buf := slices.Clone(orig)
		var got []byte
		inj.Process(now, []pipeline.Frame{{Data: buf}}, func(f pipeline.Frame) { got = f.Data }, nil)
		diff := 0
		for i := range got {
			if x := got[i] ^ orig[i]; x != 0 {
				if x&(x-1) != 0 || i < off {
					t.Fatalf("byte %d changed %08b", i, x)
				}
				diff++
				hits[i]++
			}
		}
		if diff != 1 {
			t.Fatalf("%d bytes changed", diff)
		}
	}
	// Uniform over the bytes past the offset: every byte is hit.
	for i := off; i < len(orig); i++ {
		if hits[i] == 0 {
			t.Fatalf("byte %d never corrupted", i)
		}
	}
	short := make([]byte, off)
	inj.Process(now, []pipeline.Frame{{Data: short}}, func(pipeline.Frame) {}, nil)
	if s := inj.Stats(); s.Corrupted != 20_000 {
		t.Fatalf("corrupted %d (a frame no longer than the offset was touched?)", s.Corrupted)
	}
}

func TestHoldFull(t *testing.T) {
	b := newBench(t, fault.Config{Seed: 1, Delay: time.Second, Reorder: 0.5, HoldLimit: 100}, 512, false)
	b.run(400, 40, 64, time.Microsecond, 0)
	s := b.checkInvariant()
	if s.HoldFull != 300 || s.Held != 100 {
		t.Fatalf("stats %+v", s)
	}
	b.inj.Flush(b.deliver)
	if s := b.checkInvariant(); s.Held != 0 || s.Delivered != 100 {
		t.Fatalf("after flush %+v", s)
	}
}

// allFaults turns every fault on.
var allFaults = fault.Config{
	Loss: 0.02, Burst: fault.GilbertElliott{P: 0.01, R: 0.3}, Duplicate: 0.03, Corrupt: 0.02, CorruptOffset: 14,
	Reorder: 0.03, ReorderGap: 4, Delay: time.Millisecond, Jitter: 200 * time.Microsecond,
	RateBits: 1e9, RatePackets: 500_000,
}

// TestReplay: the same seed and config give the same decisions; another
// seed gives others.
func TestReplay(t *testing.T) {
	trace := func(seed uint64) ([]event, fault.Stats) {
		cfg := allFaults
		cfg.Seed = seed
		b := newBench(t, cfg, 4096, true)
		b.run(50_000, 16, 300, 10*time.Microsecond, 5*time.Millisecond)
		return b.delivered, b.checkInvariant()
	}
	a, sa := trace(99)
	b, sb := trace(99)
	c, _ := trace(100)
	if sa != sb || !slices.Equal(a, b) {
		t.Fatalf("same seed, different runs:\n%+v\n%+v", sa, sb)
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same run")
	}
	if sa.Lost == 0 || sa.BurstLost == 0 || sa.Duplicated == 0 || sa.Corrupted == 0 || sa.Reordered == 0 ||
		sa.Delayed == 0 || sa.RateLimited == 0 {
		t.Fatalf("a fault never fired: %+v", sa)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  fault.Config
		ok   bool
	}{
		{"zero", fault.Config{}, true},
		{"all", allFaults, true},
		{"loss > 1", fault.Config{Loss: 1.5}, false},
		{"loss NaN", fault.Config{Loss: math.NaN()}, false},
		{"negative delay", fault.Config{Delay: -1}, false},
		{"burst without r", fault.Config{Burst: fault.GilbertElliott{P: 0.1}}, false},
		{"negative rate", fault.Config{RateBits: -1}, false},
		{"negative offset", fault.Config{CorruptOffset: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v", err)
			}
			if err != nil && !errors.Is(err, fault.ErrBadConfig) {
				t.Fatalf("error %v is not ErrBadConfig", err)
			}
		})
	}
	if (fault.Config{}).Enabled() || !allFaults.Enabled() {
		t.Fatal("Enabled")
	}
}

func TestZeroAllocs(t *testing.T) {
	b := newBench(t, allFaults, 4096, false)
	fs := make([]pipeline.Frame, 64)
	seq := uint64(0)
	allocs := testing.AllocsPerRun(200, func() {
		fs = b.frames(fs[:64], seq, 200)
		seq += 64
		b.inj.Process(b.now, fs, b.deliver, b.drop)
		b.now = b.now.Add(200 * time.Microsecond)
		b.inj.Due(b.now, b.deliver)
		b.inj.Next()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
	b.checkInvariant()
}

// BenchmarkProcess is the injector's cost per frame (b.N frames, batches of
// 64 frames of 200 bytes, 320k frames/s of simulated time). The frames share
// fixed buffers and deliver/drop only count: the harness costs next to
// nothing, so this is the injector alone.
func BenchmarkProcess(bb *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  fault.Config
	}{
		{"none", fault.Config{}},
		{"loss", fault.Config{Loss: 0.01}},
		{"delay", fault.Config{Delay: time.Millisecond, Jitter: 100 * time.Microsecond}},
		{"all", allFaults},
	} {
		bb.Run(bc.name, func(bb *testing.B) {
			mem := make([]byte, 64*256)
			fs := make([]pipeline.Frame, 64)
			for i := range fs {
				fs[i] = pipeline.Frame{Data: mem[i*256 : i*256+200], Addr: uint64(i * 256)}
			}
			spare := pipeline.Frame{Data: make([]byte, 0, 256)}
			var delivered, dropped int
			deliver := func(pipeline.Frame) { delivered++ }
			drop := func(pipeline.Frame, fault.Reason) { dropped++ }
			inj, err := fault.New(bc.cfg, func() (pipeline.Frame, bool) { return spare, true })
			if err != nil {
				bb.Fatal(err)
			}
			now := time.Unix(0, 0)
			bb.ReportAllocs()
			bb.ResetTimer()
			for i := 0; i < bb.N; i += len(fs) {
				inj.Process(now, fs, deliver, drop)
				now = now.Add(200 * time.Microsecond)
			}
			bb.StopTimer()
			if s := inj.Stats(); s.In+s.Duplicated != s.Delivered+s.Dropped()+s.Held || int(s.Delivered) != delivered {
				bb.Fatalf("stats %+v", s)
			}
		})
	}
}
