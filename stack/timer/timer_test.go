package timer_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tygress/tygress/stack/timer"
)

// harness drives a Wheel and a model of it (the set of pending deadlines)
// and checks them against each other.
type firing struct {
	id int
	at int64
}

type harness struct {
	t      *testing.T
	rng    *rand.Rand
	w      *timer.Wheel
	tick   int64
	origin int64
	now    int64 // of the running or last Advance

	timers  []timer.Timer
	pending map[int]int64 // model: id -> deadline
	// re-armed by a callback for a time at or before the running
	// Advance's now: allowed to still be pending after it.
	late map[int]bool

	inAdvance bool
	fired     []firing // in firing order, of the running Advance
}

func newHarness(t *testing.T, seed uint64, tick time.Duration, origin int64, n int) *harness {
	h := &harness{
		t:       t,
		rng:     rand.New(rand.NewPCG(seed, 99)),
		w:       timer.NewWheel(tick, origin),
		tick:    int64(tick),
		origin:  origin,
		now:     origin,
		timers:  make([]timer.Timer, n),
		pending: map[int]int64{},
		late:    map[int]bool{},
	}
	for i := range h.timers {
		h.timers[i].Init(func(now int64) { h.fire(i, now) })
	}
	return h
}

// delta draws a deadline offset on every scale the wheel has: the past,
// within a tick, each level, and beyond the top level.
func (h *harness) delta() int64 {
	tk := h.tick
	switch h.rng.IntN(10) {
	case 0:
		return -h.rng.Int64N(10 * tk)
	case 1:
		return h.rng.Int64N(tk)
	case 2:
		return h.rng.Int64N(256 * tk)
	case 3:
		return h.rng.Int64N(1 << 16 * tk)
	case 4:
		return h.rng.Int64N(1 << 24 * tk)
	case 5:
		return h.rng.Int64N(1 << 33 * tk)
	case 6:
		return int64(h.rng.IntN(3)) * tk // on a tick boundary
	default:
		return h.rng.Int64N(20 * tk)
	}
}

func (h *harness) schedule(i int, at int64) {
	h.w.Schedule(&h.timers[i], at)
	h.pending[i] = at
	delete(h.late, i)
	if h.inAdvance && at <= h.now {
		h.late[i] = true
	}
}

func (h *harness) stop(i int) {
	_, want := h.pending[i]
	if got := h.w.Stop(&h.timers[i]); got != want {
		h.t.Fatalf("Stop(%d) = %v, want %v", i, got, want)
	}
	delete(h.pending, i)
	delete(h.late, i)
}

func (h *harness) fire(i int, now int64) {
	if !h.inAdvance {
		h.t.Fatalf("timer %d fired outside Advance", i)
	}
	if now != h.now {
		h.t.Fatalf("timer %d: callback got now %d, Advance has %d", i, now, h.now)
	}
	at, ok := h.pending[i]
	if !ok {
		h.t.Fatalf("timer %d fired but is not pending", i)
	}
	if at > now {
		h.t.Fatalf("timer %d fired early: deadline %d, now %d", i, at, now)
	}
	if h.late[i] {
		h.t.Fatalf("timer %d, re-armed for %d by a callback, fired in the same Advance", i, at)
	}
	if h.timers[i].Pending() {
		h.t.Fatalf("timer %d is Pending in its own callback", i)
	}
	delete(h.pending, i)
	h.fired = append(h.fired, firing{i, at})
	// Callbacks act on the wheel: re-arm themselves, stop or move others.
	switch h.rng.IntN(8) {
	case 0:
		h.schedule(i, now+h.delta())
	case 1:
		h.stop(h.rng.IntN(len(h.timers)))
	case 2:
		h.schedule(h.rng.IntN(len(h.timers)), now+h.delta())
	case 3:
		j := h.rng.IntN(len(h.timers))
		h.schedule(j, now+h.delta())
		h.stop(j)
	}
}

func (h *harness) advance(now int64) {
	before := h.now
	h.now = max(now, h.now)
	h.inAdvance = true
	h.fired = h.fired[:0]
	overdue := map[int]bool{}
	for i, at := range h.pending {
		if at <= before {
			overdue[i] = true
		}
	}
	for i := range h.late {
		overdue[i] = true
	}
	clear(h.late)
	n := h.w.Advance(now)
	h.inAdvance = false
	if n != len(h.fired) {
		h.t.Fatalf("Advance(%d) = %d, %d callbacks ran", now, n, len(h.fired))
	}
	// Tick order: timers already due before this Advance first, then by
	// tick.
	last := int64(math.MinInt64)
	for _, f := range h.fired {
		if overdue[f.id] {
			continue
		}
		i, k := f.id, (f.at-h.origin)/h.tick
		if k < last {
			h.t.Fatalf("Advance(%d): timer %d of tick %d fired after one of tick %d", now, i, k, last)
		}
		last = k
	}
	// Nothing due is left behind (except callbacks' re-arms for now).
	for i, at := range h.pending {
		if at <= h.now && !h.late[i] {
			h.t.Fatalf("Advance(%d): timer %d with deadline %d still pending", now, i, at)
		}
	}
}

func (h *harness) check() {
	h.t.Helper()
	if h.w.Len() != len(h.pending) {
		h.t.Fatalf("Len = %d, want %d", h.w.Len(), len(h.pending))
	}
	want := int64(math.MaxInt64)
	for _, at := range h.pending {
		want = min(want, at)
	}
	if got := h.w.Next(); got != want {
		h.t.Fatalf("Next = %d, want %d (now %d)", got, want, h.now)
	}
	for i := range h.timers {
		_, p := h.pending[i]
		if h.timers[i].Pending() != p {
			h.t.Fatalf("timer %d: Pending = %v, want %v", i, !p, p)
		}
		if p && h.timers[i].Deadline() != h.pending[i] {
			h.t.Fatalf("timer %d: Deadline = %d, want %d", i, h.timers[i].Deadline(), h.pending[i])
		}
	}
}

func TestAgainstModel(t *testing.T) {
	cases := []struct {
		tick   time.Duration
		origin int64
	}{
		{time.Millisecond, 0},
		{time.Millisecond, 1234567891},
		{3 * time.Microsecond, -5e18}, // 2^32 ticks is 3.6 h: the top level wraps
		{1, 77},                       // a nanosecond tick
	}
	for ci, c := range cases {
		for seed := range uint64(4) {
			h := newHarness(t, seed+uint64(ci)*100, c.tick, c.origin, 300)
			for op := range 15000 {
				switch r := h.rng.IntN(20); {
				case r < 8:
					h.schedule(h.rng.IntN(len(h.timers)), h.now+h.delta())
				case r < 11:
					h.stop(h.rng.IntN(len(h.timers)))
				case r < 18:
					h.advance(h.now + h.rng.Int64N(4*h.tick+1))
				case r < 19:
					h.advance(h.now + h.rng.Int64N(1<<20*h.tick))
				default:
					// Hours to months, and sometimes time going back.
					jumps := []int64{int64(time.Hour), 30 * int64(time.Hour), 60 * 24 * int64(time.Hour), 0}
					// Each 2^32 ticks crossed re-examines the timers
					// beyond the top level: cap the jump for tiny ticks.
					if j := min(jumps[h.rng.IntN(len(jumps))], 1<<38*h.tick); j > 0 {
						h.advance(h.now + h.rng.Int64N(j+1))
					} else {
						h.advance(h.now - 1 - h.rng.Int64N(h.tick))
					}
				}
				if op%7 == 0 {
					h.check()
				}
			}
			h.check()
			// Drain: everything left fires by the time its deadline
			// passes.
			for h.w.Len() > 0 {
				next := h.w.Next()
				if next == math.MaxInt64 {
					t.Fatalf("Len = %d but Next = MaxInt64", h.w.Len())
				}
				before := h.w.Len()
				h.advance(max(next, h.now))
				if h.w.Len() >= before && len(h.fired) == 0 {
					t.Fatalf("Advance(Next() = %d) fired nothing", next)
				}
				h.check()
			}
		}
	}
}

func TestNeverEarlyExact(t *testing.T) {
	w := timer.NewWheel(time.Millisecond, 0)
	var got []int64
	var tm timer.Timer
	tm.Init(func(now int64) { got = append(got, now) })
	at := int64(5*time.Millisecond + 300*time.Microsecond)
	w.Schedule(&tm, at)
	if w.Next() != at {
		t.Fatalf("Next = %d, want %d", w.Next(), at)
	}
	for _, now := range []int64{1, int64(5 * time.Millisecond), at - 1} {
		if n := w.Advance(now); n != 0 || len(got) != 0 {
			t.Fatalf("Advance(%d) fired a timer due at %d", now, at)
		}
	}
	if n := w.Advance(at); n != 1 || len(got) != 1 || got[0] != at {
		t.Fatalf("Advance(%d) = %d, fired at %v", at, n, got)
	}
	if tm.Pending() || w.Len() != 0 || w.Next() != math.MaxInt64 {
		t.Fatalf("after firing: Pending %v, Len %d, Next %d", tm.Pending(), w.Len(), w.Next())
	}
	// Scheduling in the past fires on the next Advance, even one that
	// does not move time.
	w.Schedule(&tm, -100)
	if w.Next() != -100 {
		t.Fatalf("Next = %d, want -100", w.Next())
	}
	if n := w.Advance(at); n != 1 {
		t.Fatalf("Advance(now) of a past timer = %d, want 1", n)
	}
}

func TestCallbacks(t *testing.T) {
	w := timer.NewWheel(time.Millisecond, 0)
	var a, b, c timer.Timer
	var log []string
	a.Init(func(now int64) {
		log = append(log, "a")
		if len(log) > 1 {
			return
		}
		if !w.Stop(&b) { // due in the same tick, not yet run
			t.Error("Stop(b) from a's callback = false")
		}
		w.Schedule(&c, now+int64(time.Millisecond)) // move c later
		w.Schedule(&a, now)                         // re-arm for now: next Advance
	})
	b.Init(func(int64) { log = append(log, "b") })
	c.Init(func(int64) { log = append(log, "c") })
	ms := int64(time.Millisecond)
	w.Schedule(&a, 10*ms)
	w.Schedule(&b, 10*ms+1)
	w.Schedule(&c, 10*ms+2)
	if n := w.Advance(10*ms + 5); n != 1 || len(log) != 1 || log[0] != "a" {
		t.Fatalf("first Advance = %d, log %v", n, log)
	}
	if !a.Pending() || b.Pending() || !c.Pending() || w.Len() != 2 {
		t.Fatalf("Pending a %v b %v c %v, Len %d", a.Pending(), b.Pending(), c.Pending(), w.Len())
	}
	if w.Next() != 10*ms+5 {
		t.Fatalf("Next = %d, want %d", w.Next(), 10*ms+5)
	}
	// The re-armed a fires now, but must not keep re-arming in one call.
	if n := w.Advance(10*ms + 5); n != 1 || a.Pending() {
		t.Fatalf("second Advance = %d, a pending %v; want 1, false", n, a.Pending())
	}
	if n := w.Advance(11*ms + 5); n != 1 || log[len(log)-1] != "c" {
		t.Fatalf("third Advance = %d, log %v", n, log)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Advance from a callback did not panic")
			}
		}()
		var d timer.Timer
		d.Init(func(now int64) { w.Advance(now) })
		w.Schedule(&d, 0)
		w.Advance(12 * ms)
	}()
}

func TestLargeJumps(t *testing.T) {
	ms := int64(time.Millisecond)
	w := timer.NewWheel(time.Millisecond, 0)
	dls := []int64{1, ms, 255 * ms, 256 * ms, 257 * ms, 65535 * ms, 65536 * ms,
		int64(time.Hour), int64(4*time.Hour + 40*time.Minute), 1 << 24 * ms, 1<<24*ms + 1,
		int64(24 * 24 * time.Hour), 1 << 32 * ms, 1<<32*ms + 1, 3<<32*ms + 7, int64(200 * 24 * time.Hour),
		math.MaxInt64}
	ts := make([]timer.Timer, len(dls))
	firedAt := make([]int64, len(dls))
	for i := range ts {
		ts[i].Init(func(now int64) { firedAt[i] = now })
		w.Schedule(&ts[i], dls[i])
	}
	now := int64(0)
	for _, step := range []time.Duration{time.Minute, 3 * time.Hour, 20 * time.Hour, 30 * 24 * time.Hour, 100 * 24 * time.Hour, 300 * 24 * time.Hour} {
		now += int64(step)
		w.Advance(now)
		for i, d := range dls {
			if d <= now && firedAt[i] == 0 {
				t.Fatalf("at %v: timer due at %v has not fired", time.Duration(now), time.Duration(d))
			}
			if firedAt[i] != 0 && firedAt[i] < d {
				t.Fatalf("timer due at %v fired at %v", time.Duration(d), time.Duration(firedAt[i]))
			}
			if firedAt[i] != 0 && firedAt[i] != now && d > now-int64(step) {
				t.Fatalf("timer due at %v fired at %v, not at the Advance that passed it", time.Duration(d), time.Duration(firedAt[i]))
			}
		}
		want := int64(math.MaxInt64)
		for i, d := range dls {
			if firedAt[i] == 0 {
				want = min(want, d)
			}
		}
		if w.Next() != want {
			t.Fatalf("at %v: Next = %d, want %d", time.Duration(now), w.Next(), want)
		}
	}
	if w.Len() != 1 || !ts[len(ts)-1].Pending() {
		t.Fatalf("Len = %d, want only the MaxInt64 timer", w.Len())
	}
}

func TestInit(t *testing.T) {
	w := timer.NewWheel(time.Millisecond, 0)
	var tm timer.Timer
	if tm.Pending() || w.Stop(&tm) {
		t.Fatal("zero Timer is pending")
	}
	defer func() {
		if recover() == nil {
			t.Error("Schedule without Init did not panic")
		}
	}()
	w.Schedule(&tm, 1)
}

func TestMoveBetweenWheels(t *testing.T) {
	w1 := timer.NewWheel(time.Millisecond, 0)
	w2 := timer.NewWheel(time.Millisecond, 0)
	n := 0
	var tm timer.Timer
	tm.Init(func(int64) { n++ })
	w1.Schedule(&tm, 5)
	w2.Schedule(&tm, 5)
	if w1.Len() != 0 || w2.Len() != 1 || w1.Next() != math.MaxInt64 {
		t.Fatalf("after moving: Len %d %d, w1.Next %d", w1.Len(), w2.Len(), w1.Next())
	}
	w1.Advance(10)
	w2.Advance(10)
	if n != 1 {
		t.Fatalf("fired %d times", n)
	}
}

func TestAllocs(t *testing.T) {
	w := timer.NewWheel(time.Millisecond, 0)
	ts := make([]timer.Timer, 1000)
	fired := 0
	for i := range ts {
		ts[i].Init(func(int64) { fired++ })
	}
	now := int64(0)
	rng := rand.New(rand.NewPCG(1, 1))
	n := testing.AllocsPerRun(200, func() {
		for i := range ts {
			w.Schedule(&ts[i], now+rng.Int64N(int64(time.Hour)))
		}
		for i := 0; i < len(ts); i += 2 {
			w.Stop(&ts[i])
		}
		now += int64(10 * time.Minute)
		w.Advance(now)
		_ = w.Next()
	})
	if n != 0 {
		t.Errorf("Schedule/Stop/Advance allocate: %v allocs/run", n)
	}
	if fired == 0 {
		t.Error("nothing fired")
	}
}

func BenchmarkScheduleStop(b *testing.B) {
	w := timer.NewWheel(time.Millisecond, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	bg := make([]timer.Timer, 100000)
	for i := range bg {
		bg[i].Init(func(int64) {})
		w.Schedule(&bg[i], rng.Int64N(int64(time.Minute)))
	}
	var tm timer.Timer
	tm.Init(func(int64) {})
	var ds [1024]int64
	for i := range ds {
		ds[i] = rng.Int64N(int64(time.Minute))
	}
	for i := 0; b.Loop(); i++ {
		w.Schedule(&tm, ds[i%len(ds)])
		w.Stop(&tm)
	}
}

// BenchmarkAdvance advances 1 ms per op over 100k timers that re-arm
// themselves 1 ms to 10 s ahead when they fire (about 20 per op).
func BenchmarkAdvance(b *testing.B) {
	w := timer.NewWheel(time.Millisecond, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	ts := make([]timer.Timer, 100000)
	var ds [4096]int64
	for i := range ds {
		ds[i] = 1 + rng.Int64N(int64(10*time.Second))
	}
	k := 0
	for i := range ts {
		ts[i].Init(func(now int64) {
			k++
			w.Schedule(&ts[i], now+ds[k%len(ds)])
		})
		w.Schedule(&ts[i], ds[i%len(ds)])
	}
	now := int64(0)
	fired := 0
	for b.Loop() {
		now += int64(time.Millisecond)
		fired += w.Advance(now)
	}
	b.ReportMetric(float64(fired)/float64(b.N), "fired/op")
}
