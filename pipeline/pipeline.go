// Package pipeline runs user-written stages over batches of frames, in
// place, on the worker that received them.
//
// # Model
//
// A worker receives up to BatchSize frames from its AF_XDP sockets into a
// Batch. Each Frame is a view of a UMEM frame (no copy). The Pipeline
// hands the Batch to each Stage in turn; a stage inspects or rewrites the
// frames and gives some of them a Verdict. After each stage the pipeline
// moves decided frames out of the batch, so the next stage sees only the
// frames still undecided (Verdict Pass). Frames still undecided after the
// last stage get the pipeline's default verdict.
//
//	Drop      frame goes back to the free pool, counted with a Reason
//	TX        transmit on the port it arrived on
//	Redirect  transmit on Frame.OutPort (same UMEM: the descriptor moves)
//	Local     hand to the local host stack of this shard
//	Handoff   hand to the shard Frame.Shard that owns the flow
//
// A Stage is a Go type with one method, Process(*Batch). It runs on the
// worker's goroutine, must not block, and must not keep references to
// frame data after it returns (except through the Local verdict, whose
// handler takes ownership). A stage may also implement Named (its name
// in counters and capture), Releaser (it holds frames and gives them
// back later) and Clockless (it never reads Batch.Now, so a worker whose
// stages all say so need not read the clock for every batch).
//
// Counters are kept per stage (frames in, each verdict, drops by reason)
// in the worker and published once per batch as single-writer counters,
// so another goroutine can read them at any time without locks.
package pipeline

import (
	"fmt"
	"sync"

	"github.com/tygress/tygress/internal/counter"
)

// Verdict is what happens to a frame after the pipeline.
type Verdict uint8

// Verdicts.
const (
	Pass Verdict = iota // undecided: the next stage sees the frame
	Drop
	TX
	Redirect
	Local
	Handoff
	// Hold: the stage keeps the frame (reassembly, a TCP queue, a delay
	// line). The pipeline forgets it; the stage hands it back later
	// through its Releaser, or frees it with a drop verdict then.
	Hold
	numVerdicts
)

var verdictNames = [numVerdicts]string{"pass", "drop", "tx", "redirect", "local", "handoff", "hold"}

func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", v)
}

// Reason says why a frame was dropped.
type Reason uint16

// Built-in drop reasons. Stages register their own with NewReason.
const (
	ReasonNone         Reason = iota
	ReasonStage               // a stage dropped without saying why
	ReasonMalformed           // a header failed its checked constructor
	ReasonTooShort            // shorter than the protocol needs
	ReasonBadChecksum         // checksum did not verify
	ReasonNoRoute             // no port, route or neighbor for it
	ReasonTxRingFull          // the tx ring had no room
	ReasonBadPort             // OutPort names no port of this worker
	ReasonNoLocal             // Local verdict without a local handler
	ReasonHandoffFull         // the handoff ring to another shard was full
	ReasonNoHandoff           // Handoff verdict without handoff rings
	ReasonPolicy              // the configuration says drop (rxdrop, ACL)
	ReasonTooBig              // larger than the frame or MTU
	ReasonUnknownProto        // a protocol nobody here speaks
	ReasonHandoffLoop         // a handed-off frame was handed off again
	numBuiltinReasons
)

// MaxReasons bounds the reason table so counters are fixed arrays.
const MaxReasons = 64

var reasons = struct {
	sync.Mutex
	names [MaxReasons]string
	n     int
}{
	names: [MaxReasons]string{"none", "stage", "malformed", "too-short", "bad-checksum", "no-route",
		"tx-ring-full", "bad-port", "no-local", "handoff-full", "no-handoff", "policy", "too-big", "unknown-proto", "handoff-loop"},
	n: int(numBuiltinReasons),
}

// NewReason registers a drop reason and returns it; registering a name
// twice returns the same Reason. Call it at initialisation (package var or
// constructor), not per packet. It panics when MaxReasons are in use: that
// is a programming error, not a packet-dependent one.
func NewReason(name string) Reason {
	reasons.Lock()
	defer reasons.Unlock()
	for i := 0; i < reasons.n; i++ {
		if reasons.names[i] == name {
			return Reason(i)
		}
	}
	if reasons.n == MaxReasons {
		panic("pipeline: too many drop reasons")
	}
	reasons.names[reasons.n] = name
	reasons.n++
	return Reason(reasons.n - 1)
}

func (r Reason) String() string {
	reasons.Lock()
	defer reasons.Unlock()
	if int(r) < reasons.n {
		return reasons.names[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// Frame is one packet in a Batch: Data is a view of the packet inside its
// UMEM frame, Addr the UMEM address of Data[0]. A stage may shorten Data
// (trimming the tail) or rewrite bytes in place; a stage that moves the
// start of Data must move Addr by the same amount.
type Frame struct {
	Data    []byte
	Addr    uint64
	InPort  uint16 // port it arrived on
	OutPort uint16 // port for Redirect
	Shard   uint16 // shard for Handoff
	Verdict Verdict
	Reason  Reason // for Drop
}

// SetDrop marks the frame dropped for reason r.
func (f *Frame) SetDrop(r Reason) { f.Verdict, f.Reason = Drop, r }

// SetRedirect marks the frame for transmission on port p.
func (f *Frame) SetRedirect(p uint16) { f.Verdict, f.OutPort = Redirect, p }

// Batch is the unit of work: frames received on one port and queue in one
// poll. Frames holds only frames still undecided when a stage runs.
type Batch struct {
	Frames []Frame
	Port   uint16
	Queue  uint16
	// Now is the time of the batch in Unix nanoseconds, read once per
	// batch from a monotonic clock (see the package's Now).
	Now int64
	// Handoff is true for frames another shard handed to this one; they
	// may come from several ports, so use Frame.InPort, not Port.
	Handoff bool
}

// Stage is the extension point: one method, run on every batch.
type Stage interface {
	Process(b *Batch)
}

// StageFunc adapts a function to Stage.
type StageFunc func(b *Batch)

// Process calls f.
func (f StageFunc) Process(b *Batch) { f(b) }

// Releaser is implemented by stages that Hold frames. The worker calls
// Release at every step with the batch clock: the stage moves the frames
// whose time has come into out, each with a verdict (Pass continues with
// the next stage), and returns how many. Next returns the earliest time a
// held frame is due, or 0 when the stage holds nothing time-bound, so that
// a sleeping worker wakes up for it. Held frames belong to the stage: they
// are in no ring and no pool until released.
type Releaser interface {
	Release(now int64, out []Frame) int
	Next() int64
}

// Named is an optional interface: a stage's name in counters and capture.
type Named interface{ Name() string }

// Clockless is an optional interface for stages that never read
// Batch.Now. When every stage of a pipeline is Clockless, none holds
// frames and no Tap watches, the worker does not read the clock for each
// batch: Batch.Now then holds its last reading, which may be old. A poll-
// mode worker wakes every few microseconds under load, and the first
// clock read after a wakeup costs about 100 ns (the vDSO's code and data
// pages come back into a TLB that every system call flushes on this
// kind of host), 1.5 ns per packet at 64-frame batches.
type Clockless interface{ Clockless() }

// StageCounters are a stage's counters. In counts frames the stage saw;
// Verdicts counts the verdicts it gave; Drops counts drops by reason.
type StageCounters struct {
	Name     string
	In       uint64
	Verdicts [numVerdicts]uint64
	Drops    [MaxReasons]uint64
}

// stageCounters are written by the goroutine that runs the pipeline
// (single-writer counters: no locked instruction per batch).
type stageCounters struct {
	in       counter.Counter
	verdicts [numVerdicts]counter.Counter
	drops    [MaxReasons]counter.Counter
}

// Output holds the frames the stages decided, by verdict, until the worker
// sends them on. Its slices are reused batch after batch.
type Output struct {
	Drop    []Frame
	TX      []Frame // includes Redirect: OutPort says where
	Local   []Frame
	Handoff []Frame

	// dropReason is the Reason of every frame the pipeline put in Drop
	// unless dropMixed: the worker then counts drops per batch, not per
	// frame.
	dropReason Reason
	dropMixed  bool
}

// Reset empties the output, keeping capacity.
func (o *Output) Reset() {
	o.Drop, o.TX, o.Local, o.Handoff = o.Drop[:0], o.TX[:0], o.Local[:0], o.Handoff[:0]
	o.dropMixed = false
}

// noteDrop records the reason of frames about to join Drop.
func (o *Output) noteDrop(r Reason) {
	if len(o.Drop) == 0 {
		o.dropReason = r
	} else if r != o.dropReason {
		o.dropMixed = true
	}
}

// DropReason reports the one Reason shared by every frame in Drop, if
// they share one (the pipeline tracks it as it sorts frames into Drop).
func (o *Output) DropReason() (Reason, bool) { return o.dropReason, !o.dropMixed }

// Pipeline is an ordered list of stages with a default verdict. A Pipeline
// is used by one worker; build one per worker (stages may be shared if
// they are safe for concurrent use).
type Pipeline struct {
	stages   []Stage
	names    []string
	counters []stageCounters
	// Default is given to frames no stage decided: Drop (ReasonPolicy),
	// TX, or Redirect to DefaultPort.
	Default     Verdict
	DefaultPort uint16

	local [numVerdicts]uint64
	drops [MaxReasons]uint64

	// A short pipeline keeps its stages and counters here, in its own
	// allocation: a poll-mode worker pays for every page it touches after
	// a wakeup (the TLB comes back empty from each system call on a host
	// without PCID), and separate arrays are separate pages.
	stageArr   [inlineStages]Stage
	counterArr [inlineStages + 1]stageCounters
}

// inlineStages is the longest pipeline whose stages and counters live in
// the Pipeline itself.
const inlineStages = 3

// New builds a pipeline of stages; undecided frames are dropped with
// ReasonPolicy unless Default is changed.
func New(stages ...Stage) *Pipeline {
	p := &Pipeline{Default: Drop}
	if len(stages) <= inlineStages {
		p.stages = p.stageArr[:copy(p.stageArr[:], stages)]
		p.counters = p.counterArr[:len(stages)+1]
	} else {
		p.stages = stages
		p.counters = make([]stageCounters, len(stages)+1)
	}
	for i, s := range stages {
		name := fmt.Sprintf("stage%d", i)
		if n, ok := s.(Named); ok {
			name = n.Name()
		}
		p.names = append(p.names, name)
	}
	p.names = append(p.names, "default")
	return p
}

// finish gives the frames no stage decided the default verdict.
func (p *Pipeline) finish(b *Batch, out *Output) {
	n := len(b.Frames)
	for i := range b.Frames {
		f := &b.Frames[i]
		switch p.Default {
		case Drop:
			f.SetDrop(ReasonPolicy)
		case Redirect:
			f.SetRedirect(p.DefaultPort)
		default:
			f.Verdict = p.Default
		}
	}
	p.collect(len(p.stages), n, b, out)
}

// Release asks every Releaser stage for the frames it no longer holds (at
// most cap(b.Frames) per stage), sorts those with a verdict into out and
// runs those marked Pass through the stages after the holder. It returns
// how many frames came back. b.Frames is empty afterwards.
func (p *Pipeline) Release(now int64, b *Batch, out *Output) int {
	total := 0
	for i, s := range p.stages {
		r, ok := s.(Releaser)
		if !ok {
			continue
		}
		n := r.Release(now, b.Frames[:cap(b.Frames)])
		if n == 0 {
			continue
		}
		total += n
		b.Frames = b.Frames[:n]
		b.Now = now
		p.collect(i, 0, b, out)
		for j := i + 1; j < len(p.stages) && len(b.Frames) > 0; j++ {
			m := len(b.Frames)
			p.stages[j].Process(b)
			p.collect(j, m, b, out)
		}
		if len(b.Frames) > 0 {
			p.finish(b, out)
		}
		b.Frames = b.Frames[:0]
	}
	return total
}

// Next returns the earliest deadline of the Releaser stages (0: none).
func (p *Pipeline) Next() int64 {
	var next int64
	for _, s := range p.stages {
		if r, ok := s.(Releaser); ok {
			if t := r.Next(); t != 0 && (next == 0 || t < next) {
				next = t
			}
		}
	}
	return next
}

// collect moves decided frames from the batch to out, keeps undecided ones
// in order, and publishes the stage's counters.
func (p *Pipeline) collect(stage, in int, b *Batch, out *Output) {
	if !p.collectUniform(stage, b, out) {
		p.collectEach(stage, in, b, out)
	}
}

// collectEach is collect for a batch of mixed verdicts, frame by frame.
func (p *Pipeline) collectEach(stage, in int, b *Batch, out *Output) {
	keep := 0
	for i := range b.Frames {
		f := &b.Frames[i]
		v := f.Verdict
		if v >= numVerdicts {
			v, f.Verdict, f.Reason = Drop, Drop, ReasonStage
		}
		p.local[v]++
		switch v {
		case Pass:
			b.Frames[keep] = *f
			keep++
		case Drop:
			r := f.Reason
			if int(r) >= MaxReasons || r == ReasonNone {
				r = ReasonStage
				f.Reason = r
			}
			p.drops[r]++
			out.noteDrop(r)
			out.Drop = append(out.Drop, *f)
		case TX, Redirect:
			out.TX = append(out.TX, *f)
		case Local:
			out.Local = append(out.Local, *f)
		case Handoff:
			out.Handoff = append(out.Handoff, *f)
		}
		// Hold: the stage has the frame now; only counted.
	}
	b.Frames = b.Frames[:keep]
	c := &p.counters[stage]
	c.in.Add(uint64(in))
	for v := Drop; v < numVerdicts; v++ {
		if p.local[v] != 0 {
			c.verdicts[v].Add(p.local[v])
			if v == Drop {
				for r, k := range p.drops {
					if k != 0 {
						c.drops[r].Add(k)
						p.drops[r] = 0
					}
				}
			}
		}
		p.local[v] = 0
	}
	p.local[Pass] = 0
}

// Counters returns a snapshot of every stage's counters, the last entry
// being the default verdict. Safe from any goroutine.
func (p *Pipeline) Counters() []StageCounters {
	out := make([]StageCounters, len(p.counters))
	for i := range p.counters {
		c := &p.counters[i]
		out[i].Name = p.names[i]
		out[i].In = c.in.Load()
		for v := range c.verdicts {
			out[i].Verdicts[v] = c.verdicts[v].Load()
		}
		for r := range c.drops {
			out[i].Drops[r] = c.drops[r].Load()
		}
	}
	return out
}

// Clockless reports whether no stage reads Batch.Now (every stage is
// Clockless and none holds frames).
func (p *Pipeline) Clockless() bool {
	for _, s := range p.stages {
		if _, ok := s.(Clockless); !ok {
			return false
		}
		if _, ok := s.(Releaser); ok {
			return false
		}
	}
	return true
}

// Holds reports whether any stage can hold frames (implements Releaser).
func (p *Pipeline) Holds() bool {
	for _, s := range p.stages {
		if _, ok := s.(Releaser); ok {
			return true
		}
	}
	return false
}

// Stages returns the stages in order.
func (p *Pipeline) Stages() []Stage { return p.stages }
