// Package fault injects network faults into a stream of Ethernet frames:
// independent loss, burst loss (a Gilbert–Elliott channel), a rate limit
// (token bucket policer), bit corruption, duplication, reordering and delay
// with jitter. This kernel has no netem; the memory link (link.NewMemPair)
// applies an Injector to each direction of its wire, and the same Injector
// can sit on the real data path (see "As a pipeline stage" below).
//
// # Model
//
// An Injector is owned by one goroutine and driven by an explicit clock:
// every call takes now, and nothing reads the system time, so a test can run
// minutes of simulated traffic in milliseconds and get the same answer every
// time. Each fault draws from its own PCG stream (math/rand/v2) seeded from
// Config.Seed, so a failing run replays exactly with the same seed and
// config, and turning one fault on does not change the decisions of another.
//
// Frames flow through the faults in this order:
//
//	rate limit → loss → burst loss → duplication → corruption → reordering → delay
//
// The rate limit is a policer in front of the wire (frames over the rate are
// dropped, not queued); loss and burst loss are the wire losing frames;
// a duplicate is a second, independent frame from then on (it may be
// corrupted, reordered and delayed differently from its original).
//
// Process hands every frame it is given to exactly one of: deliver (now, or
// later from Due or Flush when it was held) or drop, with a Reason. The
// Injector holds frames for reordering and delay in preallocated queues of
// Config.HoldLimit frames in total; a frame that would exceed it is dropped
// with ReasonHoldFull. Stats always satisfy
//
//	In + Duplicated == Delivered + Dropped() + Held
//
// Frames are pipeline.Frame values whose buffers belong to the caller. The
// Injector rewrites Data in place (corruption) and never allocates per
// frame; a duplicate needs a second buffer, which it takes from the alloc
// function given to New (the memory link passes its receive buffer pool).
//
// # As a pipeline stage
//
// On the real data path the Injector would run as a pipeline.Stage on the
// worker, over UMEM frames. Dropped frames map directly onto the Drop
// verdict (register the reasons with pipeline.NewReason) and duplicates onto
// frames taken from the worker's xsk.FramePool. Reordering and delay keep
// frames: the stage gives them the pipeline.Hold verdict and implements
// pipeline.Releaser, whose Release maps onto Due (the worker asks every
// step and runs released frames through the stages after this one) and
// whose Next maps onto Next (the worker's poll timeout honours it). What
// is still missing is a drain at shutdown (Flush) so that held frames go
// back to their pools, and that adapter itself.
package fault

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/pipeline"
)

// Reason says why the Injector dropped a frame.
type Reason uint8

// Drop reasons.
const (
	ReasonLoss      Reason = 1 + iota // independent random loss
	ReasonBurstLoss                   // lost by the Gilbert–Elliott channel
	ReasonRateLimit                   // over the rate limit
	ReasonHoldFull                    // reordering or delay queue full
	numReasons
)

var reasonNames = [numReasons]string{"none", "loss", "burst-loss", "rate-limit", "hold-full"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("fault.Reason(%d)", uint8(r))
}

// ErrBadConfig: a Config field is out of range.
var ErrBadConfig = errors.New("bad fault config")

// GilbertElliott is a two-state burst-loss channel. Before each frame the
// channel moves from the good to the bad state with probability P, or from
// bad to good with probability R; then the frame is lost with the loss
// probability of the state it is in. Bursts in the bad state last 1/R frames
// on average and the channel spends P/(P+R) of the time in it.
type GilbertElliott struct {
	P, R     float64 // good → bad, bad → good, per frame
	LossBad  float64 // loss probability in the bad state; 0 is taken as 1
	LossGood float64 // loss probability in the good state, usually 0
}

// Config selects the faults. The zero value injects nothing.
type Config struct {
	// Seed seeds every random decision; the same Seed and Config replay the
	// same decisions for the same frames.
	Seed uint64

	Loss  float64        // probability that a frame is lost
	Burst GilbertElliott // burst loss; off while Burst.P is 0

	// Duplicate is the probability that a frame is delivered twice.
	Duplicate float64
	// Corrupt is the probability that one random bit of a frame is
	// flipped, in a byte at or after CorruptOffset (14 keeps the Ethernet
	// header intact). Frames no longer than CorruptOffset are not touched.
	Corrupt       float64
	CorruptOffset int

	// Reorder is the probability that a frame is held back and released
	// right after the next ReorderGap frames (default 3), or after
	// ReorderTimeout (default 10 ms) when fewer frames come.
	Reorder        float64
	ReorderGap     int
	ReorderTimeout time.Duration

	// Delay holds every frame for Delay plus a uniform jitter in
	// [-Jitter, +Jitter] (never less than zero). Frames leave in order of
	// their release time, so a jitter larger than the gap between frames
	// reorders them, as on a real path.
	Delay, Jitter time.Duration

	// RateBits (bits per second, counting the whole Ethernet frame) and
	// RatePackets (frames per second) police the traffic with token
	// buckets; 0 means no limit. The buckets hold BurstBytes and
	// BurstPackets, by default 10 ms worth of the rate but at least two
	// full-size frames (and two packets).
	RateBits     float64
	RatePackets  float64
	BurstBytes   int
	BurstPackets int

	// HoldLimit bounds the frames held for reordering and delay together
	// (default 1024). Held frames keep their buffers, so keep it below the
	// number of buffers the caller has.
	HoldLimit int
}

// DefaultHoldLimit is the hold limit when Config.HoldLimit is 0.
const DefaultHoldLimit = 1024

const (
	defaultReorderGap     = 3
	defaultReorderTimeout = 10 * time.Millisecond
	maxFrameBits          = 1518 * 8
)

// Enabled reports whether the config injects any fault.
func (c Config) Enabled() bool {
	return c.Loss > 0 || c.Burst.P > 0 || c.Duplicate > 0 || c.Corrupt > 0 || c.Reorder > 0 ||
		c.Delay > 0 || c.Jitter > 0 || c.RateBits > 0 || c.RatePackets > 0
}

// Validate checks the ranges of every field.
func (c Config) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"loss", c.Loss}, {"burst p", c.Burst.P}, {"burst r", c.Burst.R}, {"burst loss-bad", c.Burst.LossBad},
		{"burst loss-good", c.Burst.LossGood}, {"duplicate", c.Duplicate}, {"corrupt", c.Corrupt}, {"reorder", c.Reorder},
	} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%s probability %v not in [0, 1]: %w", p.name, p.v, ErrBadConfig)
		}
	}
	if c.Burst.P > 0 && c.Burst.R == 0 {
		return fmt.Errorf("burst loss with r = 0 never leaves the bad state: %w", ErrBadConfig)
	}
	if c.CorruptOffset < 0 || c.ReorderGap < 0 || c.ReorderTimeout < 0 || c.Delay < 0 || c.Jitter < 0 ||
		c.BurstBytes < 0 || c.BurstPackets < 0 || c.HoldLimit < 0 || c.HoldLimit > 1<<24 {
		return fmt.Errorf("negative or huge size or duration: %w", ErrBadConfig)
	}
	if !(c.RateBits >= 0) || !(c.RatePackets >= 0) {
		return fmt.Errorf("rate %v bit/s %v pkt/s: %w", c.RateBits, c.RatePackets, ErrBadConfig)
	}
	return nil
}

// Random streams, one per fault.
const (
	sLoss = iota
	sBurst
	sDup
	sCorrupt
	sReorder
	sDelay
	numStreams
)

// Counter indices.
const (
	cIn = iota
	cDelivered
	cDuplicated
	cDupNoBuffer
	cCorrupted
	cReordered
	cDelayed
	cDrop       // + Reason
	numCounters = cDrop + int(numReasons)
)

type reorderEntry struct {
	f        pipeline.Frame
	after    uint64 // released once passed reaches this
	deadline int64  // or at this time
}

// delayEntry is a heap entry: the frame itself waits in slots[slot], so
// sifting moves 24 bytes, not a whole Frame.
type delayEntry struct {
	at   int64
	seq  uint64 // ties broken in arrival order
	slot uint32
}

// Injector applies a Config to frames. It is owned by one goroutine; only
// Stats is safe for concurrent use.
type Injector struct {
	cfg   Config
	alloc func() (pipeline.Frame, bool)
	rng   [numStreams]rand.PCG

	base    time.Time // now of the first call; times are ns since base
	started bool

	bad bool // Gilbert–Elliott state

	rateOn            bool
	bitTokens, bitCap float64
	pktTokens, pktCap float64
	lastRefill        int64
	reorderGap        uint64
	reorderTimeout    int64
	delayOn           bool
	limit             int
	rq                []reorderEntry // ring of limit entries
	rqHead, rqN       int
	passed            uint64 // frames that passed the reorder stage unheld
	heap              []delayEntry
	slots             []pipeline.Frame // frames in the delay queue
	freeSlots         []uint32
	seq               uint64
	local             [numCounters]uint64
	pub               [numCounters]atomic.Uint64
	held              atomic.Int64
}

// New returns an Injector for cfg. alloc supplies buffers for duplicates:
// it returns a frame whose Data has room (capacity) for the largest frame
// the caller sends, or false when none is free (the duplicate is then
// skipped and counted in DupNoBuffer). alloc may be nil when
// cfg.Duplicate is 0. The buffers are the caller's: duplicates reach
// deliver or drop like any frame.
func New(cfg Config, alloc func() (pipeline.Frame, bool)) (*Injector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Duplicate > 0 && alloc == nil {
		return nil, fmt.Errorf("duplication needs an alloc function: %w", ErrBadConfig)
	}
	j := &Injector{cfg: cfg, alloc: alloc}
	for i := range j.rng {
		// Distinct, fixed streams per fault: the second word tells them
		// apart (odd constants from splitmix64).
		j.rng[i].Seed(cfg.Seed, 0x9e3779b97f4a7c15*uint64(i+1))
	}
	if j.cfg.Burst.P > 0 && j.cfg.Burst.LossBad == 0 {
		j.cfg.Burst.LossBad = 1
	}
	if cfg.RateBits > 0 || cfg.RatePackets > 0 {
		j.rateOn = true
		j.bitCap = float64(cfg.BurstBytes) * 8
		if cfg.BurstBytes == 0 {
			j.bitCap = max(cfg.RateBits/100, 2*maxFrameBits)
		}
		j.pktCap = float64(cfg.BurstPackets)
		if cfg.BurstPackets == 0 {
			j.pktCap = max(cfg.RatePackets/100, 2)
		}
		j.bitTokens, j.pktTokens = j.bitCap, j.pktCap
	}
	j.reorderGap = uint64(cfg.ReorderGap)
	if j.reorderGap == 0 {
		j.reorderGap = defaultReorderGap
	}
	j.reorderTimeout = int64(cfg.ReorderTimeout)
	if j.reorderTimeout == 0 {
		j.reorderTimeout = int64(defaultReorderTimeout)
	}
	j.delayOn = cfg.Delay > 0 || cfg.Jitter > 0
	j.limit = cfg.HoldLimit
	if j.limit == 0 {
		j.limit = DefaultHoldLimit
	}
	if cfg.Reorder > 0 {
		j.rq = make([]reorderEntry, j.limit)
	}
	if j.delayOn {
		j.heap = make([]delayEntry, 0, j.limit)
		j.slots = make([]pipeline.Frame, j.limit)
		j.freeSlots = make([]uint32, j.limit)
		for i := range j.freeSlots {
			j.freeSlots[i] = uint32(j.limit - 1 - i)
		}
	}
	return j, nil
}

// Config returns the config in use (with defaults filled in where New
// applies them).
func (j *Injector) Config() Config { return j.cfg }

// float returns a uniform float64 in [0, 1).
func float(r *rand.PCG) float64 { return float64(r.Uint64()>>11) * 0x1p-53 }

// chance reports true with probability p.
func chance(r *rand.PCG, p float64) bool { return float(r) < p }

// intn returns a uniform int in [0, n) (Lemire's multiply-shift; the bias
// is below 2^-32 for the n used here).
func intn(r *rand.PCG, n int) int {
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

// tick converts now to nanoseconds since the first call and refills the
// rate limiter's buckets.
func (j *Injector) tick(now time.Time) int64 {
	if !j.started {
		j.started = true
		j.base = now
		return 0
	}
	t := int64(now.Sub(j.base))
	if j.rateOn && t > j.lastRefill {
		dt := float64(t-j.lastRefill) / 1e9
		j.bitTokens = min(j.bitCap, j.bitTokens+dt*j.cfg.RateBits)
		j.pktTokens = min(j.pktCap, j.pktTokens+dt*j.cfg.RatePackets)
		j.lastRefill = t
	}
	return t
}

// Held is the number of frames held for reordering and delay.
func (j *Injector) Held() int { return j.rqN + len(j.heap) }

// Process runs each frame of in through the faults, calling deliver or drop
// for it (and for its duplicate) now, or holding it for a later Due or
// Flush. It first releases held frames that are due at now. It keeps no
// reference to in.
func (j *Injector) Process(now time.Time, in []pipeline.Frame, deliver func(pipeline.Frame), drop func(pipeline.Frame, Reason)) {
	t := j.tick(now)
	j.release(t, deliver)
	j.local[cIn] += uint64(len(in))
	for i := range in {
		f := &in[i]
		if r := j.admit(len(f.Data)); r != 0 {
			j.local[cDrop+int(r)]++
			drop(*f, r)
			continue
		}
		if j.cfg.Duplicate > 0 && chance(&j.rng[sDup], j.cfg.Duplicate) {
			if d, ok := j.alloc(); ok {
				d.Data = d.Data[:len(f.Data)]
				copy(d.Data, f.Data)
				d.InPort, d.OutPort, d.Shard = f.InPort, f.OutPort, f.Shard
				j.local[cDuplicated]++
				j.forward(t, f, deliver, drop)
				j.forward(t, &d, deliver, drop)
				continue
			}
			j.local[cDupNoBuffer]++
		}
		j.forward(t, f, deliver, drop)
	}
	j.release(t, deliver)
	j.publish()
}

// admit applies the rate limit, loss and burst loss to a frame of n bytes.
func (j *Injector) admit(n int) Reason {
	if j.rateOn {
		need := float64(n * 8)
		if (j.cfg.RateBits > 0 && j.bitTokens < need) || (j.cfg.RatePackets > 0 && j.pktTokens < 1) {
			return ReasonRateLimit
		}
		if j.cfg.RateBits > 0 {
			j.bitTokens -= need
		}
		if j.cfg.RatePackets > 0 {
			j.pktTokens--
		}
	}
	if j.cfg.Loss > 0 && chance(&j.rng[sLoss], j.cfg.Loss) {
		return ReasonLoss
	}
	if ge := &j.cfg.Burst; ge.P > 0 {
		r := &j.rng[sBurst]
		if j.bad {
			j.bad = !chance(r, ge.R)
		} else {
			j.bad = chance(r, ge.P)
		}
		p := ge.LossGood
		if j.bad {
			p = ge.LossBad
		}
		if p > 0 && chance(r, p) {
			return ReasonBurstLoss
		}
	}
	return 0
}

// forward applies corruption and reordering, then hands the frame to the
// delay stage, and releases reordered frames whose gap has passed.
func (j *Injector) forward(t int64, f *pipeline.Frame, deliver func(pipeline.Frame), drop func(pipeline.Frame, Reason)) {
	if j.cfg.Corrupt > 0 && chance(&j.rng[sCorrupt], j.cfg.Corrupt) {
		if off := j.cfg.CorruptOffset; len(f.Data) > off {
			b := intn(&j.rng[sCorrupt], (len(f.Data)-off)*8)
			f.Data[off+b/8] ^= 1 << (b % 8)
			j.local[cCorrupted]++
		}
	}
	if j.cfg.Reorder > 0 && chance(&j.rng[sReorder], j.cfg.Reorder) {
		if j.Held() >= j.limit {
			j.local[cDrop+int(ReasonHoldFull)]++
			drop(*f, ReasonHoldFull)
			return
		}
		e := &j.rq[(j.rqHead+j.rqN)%j.limit]
		*e = reorderEntry{f: *f, after: j.passed + j.reorderGap, deadline: t + j.reorderTimeout}
		j.rqN++
		j.local[cReordered]++
		return
	}
	j.delay(t, f, deliver, drop)
	j.passed++
	for j.rqN > 0 && j.rq[j.rqHead].after <= j.passed {
		r := j.popReorder()
		j.delay(t, &r, deliver, drop)
	}
}

func (j *Injector) popReorder() pipeline.Frame {
	e := &j.rq[j.rqHead]
	f := e.f
	e.f = pipeline.Frame{} // no stale reference to the buffer
	j.rqHead = (j.rqHead + 1) % j.limit
	j.rqN--
	return f
}

// delay delivers the frame, or holds it until its release time.
func (j *Injector) delay(t int64, f *pipeline.Frame, deliver func(pipeline.Frame), drop func(pipeline.Frame, Reason)) {
	if !j.delayOn {
		j.local[cDelivered]++
		deliver(*f)
		return
	}
	if j.Held() >= j.limit {
		j.local[cDrop+int(ReasonHoldFull)]++
		drop(*f, ReasonHoldFull)
		return
	}
	d := int64(j.cfg.Delay)
	if jit := int64(j.cfg.Jitter); jit > 0 {
		d += int64(intn(&j.rng[sDelay], int(2*jit+1))) - jit
	}
	n := len(j.freeSlots) - 1
	slot := j.freeSlots[n]
	j.freeSlots = j.freeSlots[:n]
	j.slots[slot] = *f
	j.push(delayEntry{at: t + max(d, 0), seq: j.seq, slot: slot})
	j.seq++
	j.local[cDelayed]++
}

// release moves reordered frames past their deadline on to the delay stage
// and delivers delayed frames that are due.
func (j *Injector) release(t int64, deliver func(pipeline.Frame)) {
	for j.rqN > 0 && j.rq[j.rqHead].deadline <= t {
		// The frame leaves the reorder queue first, so the delay stage has
		// room for it: drop is never called.
		r := j.popReorder()
		j.delay(t, &r, deliver, nil)
	}
	for len(j.heap) > 0 && j.heap[0].at <= t {
		j.local[cDelivered]++
		deliver(j.pop())
	}
}

// Due delivers the held frames whose time has come by now and returns how
// many it delivered.
func (j *Injector) Due(now time.Time, deliver func(pipeline.Frame)) int {
	if j.Held() == 0 {
		return 0
	}
	before := j.local[cDelivered]
	j.release(j.tick(now), deliver)
	n := int(j.local[cDelivered] - before)
	j.publish()
	return n
}

// Next returns the time at which the next held frame becomes due; ok is
// false when nothing is held.
func (j *Injector) Next() (at time.Time, ok bool) {
	var t int64
	if j.rqN > 0 {
		t, ok = j.rq[j.rqHead].deadline, true
	}
	if len(j.heap) > 0 && (!ok || j.heap[0].at < t) {
		t, ok = j.heap[0].at, true
	}
	if !ok {
		return time.Time{}, false
	}
	return j.base.Add(time.Duration(t)), true
}

// Flush delivers every held frame at once, delayed frames in release order
// first, then frames held for reordering, and returns how many. Use it to
// drain the Injector before its buffers are freed.
func (j *Injector) Flush(deliver func(pipeline.Frame)) int {
	n := 0
	for len(j.heap) > 0 {
		deliver(j.pop())
		n++
	}
	for j.rqN > 0 {
		deliver(j.popReorder())
		n++
	}
	j.local[cDelivered] += uint64(n)
	j.publish()
	return n
}

// push and pop keep heap a binary min-heap ordered by (at, seq). They are
// written out rather than using container/heap, whose interface would box
// every entry.
func (j *Injector) push(e delayEntry) {
	h := append(j.heap, e)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	j.heap = h
}

func (j *Injector) pop() pipeline.Frame {
	h := j.heap
	slot := h[0].slot
	f := j.slots[slot]
	j.slots[slot] = pipeline.Frame{} // no stale reference to the buffer
	j.freeSlots = append(j.freeSlots, slot)
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	j.heap = h
	return f
}

func (e *delayEntry) before(o *delayEntry) bool {
	return e.at < o.at || (e.at == o.at && e.seq < o.seq)
}

func (j *Injector) publish() {
	for i, v := range j.local {
		if v != 0 {
			j.pub[i].Add(v)
			j.local[i] = 0
		}
	}
	j.held.Store(int64(j.Held()))
}

// Stats are an Injector's counters.
type Stats struct {
	In          uint64 // frames given to Process
	Delivered   uint64 // frames passed to deliver, duplicates included
	Lost        uint64 // dropped: ReasonLoss
	BurstLost   uint64 // dropped: ReasonBurstLoss
	RateLimited uint64 // dropped: ReasonRateLimit
	HoldFull    uint64 // dropped: ReasonHoldFull
	Duplicated  uint64 // duplicates made
	DupNoBuffer uint64 // duplicates skipped: alloc had no buffer
	Corrupted   uint64 // frames with a bit flipped
	Reordered   uint64 // frames held back for reordering
	Delayed     uint64 // frames that went through the delay queue
	Held        uint64 // frames held now
}

// Dropped is the number of frames dropped for any reason.
func (s Stats) Dropped() uint64 { return s.Lost + s.BurstLost + s.RateLimited + s.HoldFull }

// Stats returns the counters; safe for concurrent use. The owner publishes
// them at the end of each call; a snapshot taken while it is between calls
// satisfies the invariant in the package documentation exactly.
func (j *Injector) Stats() Stats {
	d := func(r Reason) uint64 { return j.pub[cDrop+int(r)].Load() }
	return Stats{
		In:          j.pub[cIn].Load(),
		Delivered:   j.pub[cDelivered].Load(),
		Lost:        d(ReasonLoss),
		BurstLost:   d(ReasonBurstLoss),
		RateLimited: d(ReasonRateLimit),
		HoldFull:    d(ReasonHoldFull),
		Duplicated:  j.pub[cDuplicated].Load(),
		DupNoBuffer: j.pub[cDupNoBuffer].Load(),
		Corrupted:   j.pub[cCorrupted].Load(),
		Reordered:   j.pub[cReordered].Load(),
		Delayed:     j.pub[cDelayed].Load(),
		Held:        uint64(j.held.Load()),
	}
}
