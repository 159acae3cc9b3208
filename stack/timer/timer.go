// Package timer is a hashed hierarchical timer wheel for the timers of one
// shard: neighbor cache, reassembly, and later TCP retransmission, delayed
// ACK and TIME_WAIT, and QUIC.
//
// # Model
//
// A Wheel holds Timers. A Timer is intrusive: the caller embeds it (or keeps
// it) in the object it times, gives it its callback once with Init, and then
// arms and disarms it with Wheel.Schedule and Wheel.Stop as often as it
// likes. Neither allocates, and both are O(1). The wheel never reads the
// clock: time is int64 nanoseconds on any monotonic scale, passed in by the
// caller, and Wheel.Advance(now) runs the callback of every timer whose
// deadline is at or before now. A timer never fires early, and it fires at
// the first Advance whose now reaches its deadline: the tick (the
// granularity given to NewWheel) bounds how many timers share a slot, not
// how late they fire. Advance fires timers of an earlier tick before those
// of a later one; within one tick the order is unspecified. Next returns the
// earliest deadline, for the owner's poll timeout.
//
// A Wheel is owned by one goroutine, like the shard it belongs to; it is
// not safe for concurrent use. Callbacks run on that goroutine, inside
// Advance, and may Schedule or Stop any timer, themselves included; a timer
// a callback schedules for a time at or before the now of the running
// Advance fires on the next Advance, not this one, so that a callback that
// re-arms itself cannot make Advance loop. A callback must not call Advance.
//
// # Data structure
//
// Time since NewWheel is counted in ticks. Four levels of 256 slots each
// cover 2^8, 2^16, 2^24 and 2^32 ticks (49.7 days at 1 ms); each slot is a
// doubly linked list threaded through the Timers, and each level has a
// 256-bit occupancy bitmap. A timer due at tick k sits on the lowest level
// whose higher digits of k agree with the wheel's current tick, in the slot
// of k's digit at that level. When the current tick reaches the start of a
// higher-level slot, the slot is cascaded: its timers move down to the
// level that now fits them. Timers beyond the top level's range stay in
// the top-level slot of their digit and are re-examined each time the top
// level comes round (every 2^32 ticks). Advance jumps from one non-empty
// slot to the next with the bitmaps, so a jump of hours costs a few
// bitmap scans and the cascades it crosses, not one step per tick. Timers
// that are already due when they are scheduled wait in a separate list that
// the next Advance fires first.
package timer

import (
	"math"
	"math/bits"
	"time"
)

const (
	levels   = 4
	slotBits = 8
	slots    = 1 << slotBits
	slotMask = slots - 1
	numSlots = levels * slots

	overdue = numSlots     // list of timers due at the next Advance
	firing  = numSlots + 1 // list of timers the running Advance fires
)

// Timer is one timer. The zero Timer is stopped and has no callback; give
// it one with Init before the first Schedule. A Timer must not be copied
// while it is pending.
type Timer struct {
	next, prev *Timer
	w          *Wheel // non-nil while pending
	at         int64
	list       int32 // index of the list in w.heads while pending
	f          func(now int64)
}

// Init sets the callback that Advance calls, with its now, when t fires.
// Set it once: the closure is allocated here, not on every Schedule.
func (t *Timer) Init(f func(now int64)) { t.f = f }

// Pending reports whether t is scheduled and has not fired or been stopped.
func (t *Timer) Pending() bool { return t.w != nil }

// Deadline returns the time t was last scheduled for.
func (t *Timer) Deadline() int64 { return t.at }

// Wheel is a hierarchical timer wheel. Make one with NewWheel. It is owned
// by one goroutine.
type Wheel struct {
	tick   uint64 // nanoseconds per tick
	origin int64  // the time of tick 0
	now    int64  // the now of the last Advance (or NewWheel); never decreases
	cur    uint64 // the current tick: slots of earlier ticks are empty
	n      int

	next    int64 // cached Next when nextOK
	nextOK  bool
	running bool // in Advance

	heads [numSlots + 2]*Timer
	occ   [levels][slots / 64]uint64
}

// NewWheel returns an empty wheel with granularity tick (1 ms suits most
// protocol timers) whose time starts at now. It panics if tick is not
// positive.
func NewWheel(tick time.Duration, now int64) *Wheel {
	if tick <= 0 {
		panic("timer: NewWheel with a non-positive tick")
	}
	return &Wheel{tick: uint64(tick), origin: now, now: now, next: math.MaxInt64, nextOK: true}
}

// Len returns the number of pending timers.
func (w *Wheel) Len() int { return w.n }

// Now returns the now of the last Advance, or of NewWheel.
func (w *Wheel) Now() int64 { return w.now }

// Schedule arms t to fire at the first Advance with now >= at, moving it if
// it is pending (on this wheel or another). It is O(1) and does not
// allocate. It panics if t has no callback (see Timer.Init).
func (w *Wheel) Schedule(t *Timer, at int64) {
	if t.f == nil {
		panic("timer: Schedule of a Timer without Init")
	}
	if t.w != nil {
		t.w.remove(t)
	}
	t.at, t.w = at, w
	w.n++
	if at <= w.now {
		w.push(t, overdue)
	} else {
		w.place(t)
	}
	if w.nextOK && at < w.next {
		w.next = at
	}
}

// Stop disarms t and reports whether it was pending. It is O(1).
func (w *Wheel) Stop(t *Timer) bool {
	if t.w == nil {
		return false
	}
	t.w.remove(t)
	return true
}

func (w *Wheel) remove(t *Timer) {
	w.unlink(t)
	t.w = nil
	w.n--
	if w.nextOK && t.at <= w.next {
		w.nextOK = false
	}
}

// tickOf returns the tick of time at, which must not be before w.origin.
func (w *Wheel) tickOf(at int64) uint64 {
	return (uint64(at) - uint64(w.origin)) / w.tick
}

// place puts t, due after w.now, in the slot that fits its tick.
func (w *Wheel) place(t *Timer) {
	k := w.tickOf(t.at)
	l := 0
	if x := k ^ w.cur; x >= slots {
		l = min((bits.Len64(x)-1)/slotBits, levels-1)
	}
	w.push(t, l*slots+int(k>>(l*slotBits)&slotMask))
}

func (w *Wheel) push(t *Timer, i int) {
	t.list = int32(i)
	t.prev = nil
	t.next = w.heads[i]
	if t.next != nil {
		t.next.prev = t
	} else if i < numSlots {
		w.occ[i/slots][i%slots/64] |= 1 << (i % 64)
	}
	w.heads[i] = t
}

func (w *Wheel) unlink(t *Timer) {
	i := int(t.list)
	if t.next != nil {
		t.next.prev = t.prev
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.heads[i] = t.next
		if t.next == nil && i < numSlots {
			w.occ[i/slots][i%slots/64] &^= 1 << (i % 64)
		}
	}
	t.next, t.prev = nil, nil
}

// Next returns the earliest deadline of the pending timers, or
// math.MaxInt64 if there is none. It is exact: Advance(Next()) fires at
// least one timer. A deadline that has already passed (a timer scheduled
// for the past, or a callback's re-arm for the running Advance's now) is
// returned as it is, earlier than Now. The value is cached between changes
// that could raise it; recomputing it scans one slot (or, when only timers
// more than 2^24 ticks away are pending, the top level).
func (w *Wheel) Next() int64 {
	if !w.nextOK {
		w.next = w.earliest()
		w.nextOK = true
	}
	return w.next
}

func (w *Wheel) earliest() int64 {
	m := min(listMin(w.heads[overdue]), listMin(w.heads[firing]))
	for l := range levels - 1 {
		if d, ok := w.nextSet(l, 0); ok {
			return min(m, listMin(w.heads[l*slots+int(d)]))
		}
	}
	// Only the top level: its slots may hold timers of later rounds, so
	// the first occupied slot is not necessarily the earliest.
	for d := range uint64(slots) {
		if w.occ[levels-1][d/64]&(1<<(d%64)) != 0 {
			m = min(m, listMin(w.heads[(levels-1)*slots+int(d)]))
		}
	}
	return m
}

func listMin(t *Timer) int64 {
	m := int64(math.MaxInt64)
	for ; t != nil; t = t.next {
		m = min(m, t.at)
	}
	return m
}

// nextSet returns the lowest occupied slot of level l at or after from.
func (w *Wheel) nextSet(l int, from uint64) (uint64, bool) {
	for i := from / 64; i < slots/64; i++ {
		b := w.occ[l][i]
		if i == from/64 {
			b &= ^uint64(0) << (from % 64)
		}
		if b != 0 {
			return i*64 + uint64(bits.TrailingZeros64(b)), true
		}
	}
	return 0, false
}

// Advance fires, in tick order, every pending timer whose deadline is at
// or before now, and returns how many it fired. Each callback gets now. A
// now earlier than that of the previous Advance counts as that one. It
// does not allocate (callbacks aside). It panics if called from a callback.
func (w *Wheel) Advance(now int64) int {
	if w.running {
		panic("timer: Advance called from a timer callback")
	}
	now = max(now, w.now)
	if now < w.Next() {
		w.now = now
		return 0
	}
	w.now = now
	w.nextOK = false
	w.running = true
	defer func() { w.running = false; w.nextOK = false }()

	n := 0
	for t := w.heads[overdue]; t != nil; t = w.heads[overdue] {
		w.unlink(t)
		w.push(t, firing)
	}
	n += w.fire(now)
	end := w.tickOf(now)
	for {
		// Collect what is due in the current slot. Before the last
		// tick that is everything; in the last tick, timers later in
		// the tick stay.
		s := int(w.cur & slotMask)
		for t := w.heads[s]; t != nil; {
			nx := t.next
			if t.at <= now {
				w.unlink(t)
				w.push(t, firing)
			}
			t = nx
		}
		n += w.fire(now)
		if w.cur >= end {
			break
		}
		k := w.nextEvent()
		if k > end {
			w.cur = end // nothing starts in between: no cascade is due
			break
		}
		w.cur = k
		w.cascade()
	}
	return n
}

// fire runs the timers of the firing list. A callback may stop or move
// any of them: each is unlinked before its callback runs, and the list is
// re-read after every callback.
func (w *Wheel) fire(now int64) int {
	n := 0
	for t := w.heads[firing]; t != nil; t = w.heads[firing] {
		w.unlink(t)
		t.w = nil
		w.n--
		n++
		t.f(now)
	}
	return n
}

// nextEvent returns the first tick after w.cur at which a slot has to be
// looked at: a level-0 slot comes due, or a higher-level slot must be
// cascaded. It returns math.MaxUint64 if the wheel is empty.
func (w *Wheel) nextEvent() uint64 {
	for l := range levels {
		shift := uint(l * slotBits)
		d := w.cur >> shift & slotMask
		base := w.cur >> (shift + slotBits) << (shift + slotBits)
		if nd, ok := w.nextSet(l, d+1); ok {
			// A lower level's candidate always precedes a higher
			// level's: it lies before the next lower-level wrap.
			return base | nd<<shift
		}
		if l == levels-1 {
			// Top-level timers of later rounds: the next round.
			if nd, ok := w.nextSet(l, 0); ok {
				k := (base + 1<<(shift+slotBits)) | nd<<shift
				if k > w.cur {
					return k
				}
			}
		}
	}
	return math.MaxUint64
}

// cascade moves the timers of every higher-level slot that starts at
// w.cur down to the levels that now fit them. A moved timer never lands in
// another higher-level slot that starts at w.cur (it agrees with w.cur on
// that digit, so place puts it lower), so the order of the levels does not
// matter.
func (w *Wheel) cascade() {
	for l := levels - 1; l >= 1; l-- {
		shift := uint(l * slotBits)
		if w.cur&(1<<shift-1) != 0 {
			continue
		}
		i := l*slots + int(w.cur>>shift&slotMask)
		t := w.heads[i]
		if t == nil {
			continue
		}
		// Detach the list first: top-level timers of later rounds go
		// back into this same slot.
		w.heads[i] = nil
		w.occ[l][i%slots/64] &^= 1 << (i % 64)
		for t != nil {
			nx := t.next
			w.place(t)
			t = nx
		}
	}
}
