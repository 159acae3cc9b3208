package pipeline_test

import (
	"testing"

	"github.com/tygress/tygress/pipeline"
)

// delayLine holds every frame for d nanoseconds, then lets it continue to
// the next stage (Pass), or drops it when drop is set.
type delayLine struct {
	d    int64
	drop bool
	held []pipeline.Frame
	due  []int64
}

func (s *delayLine) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		s.held = append(s.held, b.Frames[i])
		s.due = append(s.due, b.Now+s.d)
		b.Frames[i].Verdict = pipeline.Hold
	}
}

func (s *delayLine) Release(now int64, out []pipeline.Frame) int {
	n := 0
	for n < len(s.held) && n < len(out) && s.due[n] <= now {
		out[n] = s.held[n]
		out[n].Verdict = pipeline.Pass
		if s.drop {
			out[n].SetDrop(pipeline.ReasonPolicy)
		}
		n++
	}
	s.held, s.due = s.held[n:], s.due[n:]
	return n
}

func (s *delayLine) Next() int64 {
	if len(s.due) == 0 {
		return 0
	}
	return s.due[0]
}

func TestHoldAndRelease(t *testing.T) {
	dl := &delayLine{d: 1000}
	p := pipeline.New(dl, &pipeline.L2Forward{OutPort: 1, Dst: [6]byte{2, 0, 0, 0, 0, 9}})
	if !p.Holds() {
		t.Fatal("pipeline with a Releaser does not report Holds")
	}
	var out pipeline.Output
	b := batchOf(8)
	b.Now = 5000
	p.Run(b, &out)
	if len(out.TX)+len(out.Drop) != 0 || p.Counters()[0].Verdicts[pipeline.Hold] != 8 {
		t.Fatalf("held frames left the pipeline: tx %d drop %d", len(out.TX), len(out.Drop))
	}
	if p.Next() != 6000 {
		t.Fatalf("Next = %d, want 6000", p.Next())
	}
	rb := &pipeline.Batch{Frames: make([]pipeline.Frame, 0, 64)}
	if n := p.Release(5999, rb, &out); n != 0 {
		t.Fatalf("released %d frames before they were due", n)
	}
	if n := p.Release(6000, rb, &out); n != 8 {
		t.Fatalf("released %d frames, want 8", n)
	}
	// Released with Pass: the L2 forward stage after the holder ran.
	if len(out.TX) != 8 || out.TX[0].Data[5] != 9 || out.TX[7].Addr != 7*2048 {
		t.Fatalf("released frames did not go through the next stage: %d", len(out.TX))
	}
	if c := p.Counters()[1]; c.In != 8 || c.Verdicts[pipeline.Redirect] != 8 {
		t.Fatalf("next stage counters in=%d redirect=%d", c.In, c.Verdicts[pipeline.Redirect])
	}
	if p.Next() != 0 {
		t.Fatal("Next after everything was released")
	}

	out.Reset()
	dl2 := &delayLine{d: 10, drop: true}
	p2 := pipeline.New(dl2)
	p2.Run(batchOf(3), &out)
	p2.Release(100, rb, &out)
	if len(out.Drop) != 3 || p2.Counters()[0].Drops[pipeline.ReasonPolicy] != 3 {
		t.Fatalf("released drops: %d", len(out.Drop))
	}
}
