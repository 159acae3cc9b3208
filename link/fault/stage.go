package fault

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tygress/tygress/pipeline"
)

// Stage runs an Injector as a pipeline stage on the real data path (this
// kernel has no netem). Every frame it sees gets the pipeline.Hold
// verdict: the stage owns it from then on. Frames the injector delivers,
// and frames it drops, come back through Release at the worker's next step
// (delivered ones as Pass, so the stages after this one run on them;
// dropped ones as Drop with a fault reason), held frames when they fall
// due. Nothing is lost: a frame is in the batch, the injector's queues or
// the stage's ready list until the worker frees or sends it.
//
// Stage is owned by the worker that runs it, like every stage.
type Stage struct {
	inj     *Injector
	ready   []pipeline.Frame
	reasons [numReasons]pipeline.Reason
	deliver func(pipeline.Frame)
	drop    func(pipeline.Frame, Reason)
}

// NewStage builds the stage. alloc supplies buffers for duplicates (from
// the worker's frame pool); it may be nil when cfg.Duplicate is 0.
func NewStage(cfg Config, alloc func() (pipeline.Frame, bool)) (*Stage, error) {
	inj, err := New(cfg, alloc)
	if err != nil {
		return nil, err
	}
	limit := cfg.HoldLimit
	if limit == 0 {
		limit = DefaultHoldLimit
	}
	s := &Stage{inj: inj, ready: make([]pipeline.Frame, 0, limit+4*pipeline.MaxBatch)}
	for r := ReasonLoss; r < numReasons; r++ {
		s.reasons[r] = pipeline.NewReason("fault-" + r.String())
	}
	s.deliver = func(f pipeline.Frame) {
		f.Verdict = pipeline.Pass
		s.ready = append(s.ready, f)
	}
	s.drop = func(f pipeline.Frame, r Reason) {
		f.SetDrop(s.reasons[r])
		s.ready = append(s.ready, f)
	}
	return s, nil
}

// Name implements pipeline.Named.
func (s *Stage) Name() string { return "fault" }

// Process implements pipeline.Stage.
func (s *Stage) Process(b *pipeline.Batch) {
	s.inj.Process(time.Unix(0, b.Now), b.Frames, s.deliver, s.drop)
	for i := range b.Frames {
		b.Frames[i].Verdict = pipeline.Hold
	}
}

// Release implements pipeline.Releaser.
func (s *Stage) Release(now int64, out []pipeline.Frame) int {
	s.inj.Due(time.Unix(0, now), s.deliver)
	n := copy(out, s.ready)
	rest := copy(s.ready, s.ready[n:])
	s.ready = s.ready[:rest]
	return n
}

// Next implements pipeline.Releaser: now when frames wait in the ready
// list, else the injector's next deadline.
func (s *Stage) Next() int64 {
	if len(s.ready) > 0 {
		return 1
	}
	if t, ok := s.inj.Next(); ok {
		return t.UnixNano()
	}
	return 0
}

// Flush moves every held frame to the ready list, so that the next Release
// returns them: call it before a worker stops, or held frames stay out of
// their pool.
func (s *Stage) Flush() { s.inj.Flush(s.deliver) }

// Held is the number of frames the stage owns now.
func (s *Stage) Held() int { return s.inj.Held() + len(s.ready) }

// Stats returns the injector's counters.
func (s *Stage) Stats() Stats { return s.inj.Stats() }

// ParseConfig parses a comma-separated list of key=value settings, as
// operators write them on a command line:
//
//	loss=0.01,burst-p=0.001,burst-r=0.25,dup=0.001,corrupt=0.0001,
//	reorder=0.01,reorder-gap=3,delay=5ms,jitter=1ms,rate-bps=1e9,
//	rate-pps=100000,hold=1024,seed=42
func ParseConfig(s string) (Config, error) {
	c := Config{CorruptOffset: 14}
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, fmt.Errorf("fault setting %q: want key=value: %w", kv, ErrBadConfig)
		}
		var err error
		f := func(p *float64) { *p, err = strconv.ParseFloat(v, 64) }
		d := func(p *time.Duration) { *p, err = time.ParseDuration(v) }
		n := func(p *int) { *p, err = strconv.Atoi(v) }
		switch k {
		case "loss":
			f(&c.Loss)
		case "burst-p":
			f(&c.Burst.P)
		case "burst-r":
			f(&c.Burst.R)
		case "dup":
			f(&c.Duplicate)
		case "corrupt":
			f(&c.Corrupt)
		case "corrupt-offset":
			n(&c.CorruptOffset)
		case "reorder":
			f(&c.Reorder)
		case "reorder-gap":
			n(&c.ReorderGap)
		case "delay":
			d(&c.Delay)
		case "jitter":
			d(&c.Jitter)
		case "rate-bps":
			f(&c.RateBits)
		case "rate-pps":
			f(&c.RatePackets)
		case "hold":
			n(&c.HoldLimit)
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			return c, fmt.Errorf("unknown fault setting %q: %w", k, ErrBadConfig)
		}
		if err != nil {
			return c, fmt.Errorf("fault setting %s: %v: %w", k, err, ErrBadConfig)
		}
	}
	return c, c.Validate()
}
