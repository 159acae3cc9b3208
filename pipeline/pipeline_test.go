package pipeline_test

import (
	"testing"

	"github.com/tygress/tygress/pipeline"
)

var reasonOdd = pipeline.NewReason("test-odd")

// oddDropper drops frames whose first byte is odd and lets the rest pass.
type oddDropper struct{ seen int }

func (*oddDropper) Name() string { return "odd" }
func (s *oddDropper) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		s.seen++
		if b.Frames[i].Data[0]&1 == 1 {
			b.Frames[i].SetDrop(reasonOdd)
		}
	}
}

func batchOf(n int) *pipeline.Batch {
	b := &pipeline.Batch{Frames: make([]pipeline.Frame, n)}
	for i := range b.Frames {
		b.Frames[i] = pipeline.Frame{Data: make([]byte, 60), Addr: uint64(i) * 2048}
		b.Frames[i].Data[0] = byte(i)
	}
	return b
}

func TestPipelineVerdictsAndCounters(t *testing.T) {
	odd := &oddDropper{}
	var secondSaw int
	second := pipeline.StageFunc(func(b *pipeline.Batch) {
		for i := range b.Frames {
			secondSaw++
			if b.Frames[i].Data[0]&1 == 1 {
				t.Errorf("second stage saw a frame the first dropped")
			}
			switch b.Frames[i].Data[0] % 4 {
			case 0:
				b.Frames[i].SetRedirect(1)
			}
		}
	})
	p := pipeline.New(odd, second)
	p.Default = pipeline.TX
	var out pipeline.Output
	p.Run(batchOf(64), &out)
	if odd.seen != 64 || secondSaw != 32 {
		t.Fatalf("stages saw %d and %d frames, want 64 and 32", odd.seen, secondSaw)
	}
	if len(out.Drop) != 32 || len(out.TX) != 32 {
		t.Fatalf("drop %d tx %d", len(out.Drop), len(out.TX))
	}
	redirects := 0
	for _, f := range out.TX {
		if f.Verdict == pipeline.Redirect {
			redirects++
			if f.OutPort != 1 {
				t.Fatalf("redirect to %d", f.OutPort)
			}
		}
	}
	if redirects != 16 {
		t.Fatalf("%d redirects, want 16", redirects)
	}
	c := p.Counters()
	if len(c) != 3 || c[0].Name != "odd" || c[2].Name != "default" {
		t.Fatalf("counter names %q %q", c[0].Name, c[len(c)-1].Name)
	}
	if c[0].In != 64 || c[0].Verdicts[pipeline.Drop] != 32 || c[0].Drops[reasonOdd] != 32 {
		t.Fatalf("stage 0 counters %+v", c[0])
	}
	if c[1].In != 32 || c[1].Verdicts[pipeline.Redirect] != 16 {
		t.Fatalf("stage 1 counters in=%d redirect=%d", c[1].In, c[1].Verdicts[pipeline.Redirect])
	}
	if c[2].In != 16 || c[2].Verdicts[pipeline.TX] != 16 {
		t.Fatalf("default counters in=%d tx=%d", c[2].In, c[2].Verdicts[pipeline.TX])
	}
}

func TestPipelineBadVerdictIsDrop(t *testing.T) {
	p := pipeline.New(pipeline.StageFunc(func(b *pipeline.Batch) {
		for i := range b.Frames {
			b.Frames[i].Verdict = 200
		}
	}))
	var out pipeline.Output
	p.Run(batchOf(4), &out)
	if len(out.Drop) != 4 || p.Counters()[0].Drops[pipeline.ReasonStage] != 4 {
		t.Fatalf("invalid verdicts not dropped: %d", len(out.Drop))
	}
}

func TestReasons(t *testing.T) {
	if pipeline.NewReason("test-odd") != reasonOdd {
		t.Fatal("re-registering a reason gave a new one")
	}
	if reasonOdd.String() != "test-odd" || pipeline.ReasonTxRingFull.String() != "tx-ring-full" {
		t.Fatalf("names %q %q", reasonOdd, pipeline.ReasonTxRingFull)
	}
}

func TestStages(t *testing.T) {
	b := batchOf(3)
	b.Frames[2].Data = b.Frames[2].Data[:10]
	src := [6]byte{2, 0, 0, 0, 0, 1}
	dst := [6]byte{2, 0, 0, 0, 0, 2}
	var out pipeline.Output
	pipeline.New(&pipeline.L2Forward{OutPort: 1, Src: src, Dst: dst}).Run(b, &out)
	if len(out.TX) != 2 || len(out.Drop) != 1 || out.Drop[0].Reason != pipeline.ReasonTooShort {
		t.Fatalf("l2fwd: tx %d drop %d", len(out.TX), len(out.Drop))
	}
	if [6]byte(out.TX[0].Data[0:6]) != dst || [6]byte(out.TX[0].Data[6:12]) != src {
		t.Fatalf("macs not rewritten: % x", out.TX[0].Data[:12])
	}
	out.Reset()
	b = batchOf(1)
	copy(b.Frames[0].Data, append(dst[:], src[:]...))
	pipeline.New(pipeline.MACSwap{}).Run(b, &out)
	if out.TX[0].Verdict != pipeline.TX || [6]byte(out.TX[0].Data[0:6]) != src {
		t.Fatalf("macswap: % x", out.TX[0].Data[:12])
	}
	out.Reset()
	b = batchOf(3)
	b.Frames[0].Data = b.Frames[0].Data[:5]
	b.Frames[1].Data = make([]byte, 3000)
	p := pipeline.New(pipeline.MinLength{N: 14, Max: 1514})
	p.Default = pipeline.TX
	p.Run(b, &out)
	if len(out.Drop) != 2 || out.Drop[0].Reason != pipeline.ReasonTooShort || out.Drop[1].Reason != pipeline.ReasonTooBig {
		t.Fatalf("length: %+v", out.Drop)
	}
}

func TestRunAllocs(t *testing.T) {
	p := pipeline.New(&oddDropper{}, &pipeline.L2Forward{OutPort: 1})
	b := batchOf(64)
	frames := append([]pipeline.Frame(nil), b.Frames...)
	out := pipeline.Output{Drop: make([]pipeline.Frame, 0, 64), TX: make([]pipeline.Frame, 0, 64)}
	allocs := testing.AllocsPerRun(1000, func() {
		b.Frames = b.Frames[:64]
		copy(b.Frames, frames)
		p.Run(b, &out)
		out.Reset()
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per batch", allocs)
	}
}

func BenchmarkPipelineL2Forward(b *testing.B) {
	p := pipeline.New(&pipeline.L2Forward{OutPort: 1})
	bt := batchOf(64)
	frames := append([]pipeline.Frame(nil), bt.Frames...)
	out := pipeline.Output{TX: make([]pipeline.Frame, 0, 64)}
	b.ReportAllocs()
	for b.Loop() {
		bt.Frames = bt.Frames[:64]
		copy(bt.Frames, frames)
		p.Run(bt, &out)
		out.Reset()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// TestUniformBatchCounters covers the fast path where a stage gives every
// frame the same verdict, next to a batch where one frame differs.
func TestUniformBatchCounters(t *testing.T) {
	p := pipeline.New(pipeline.DropAll{})
	var out pipeline.Output
	p.Run(batchOf(64), &out)
	c := p.Counters()[0]
	if len(out.Drop) != 64 || c.In != 64 || c.Verdicts[pipeline.Drop] != 64 || c.Drops[pipeline.ReasonPolicy] != 64 {
		t.Fatalf("uniform: out %d, counters in=%d drop=%d policy=%d", len(out.Drop), c.In, c.Verdicts[pipeline.Drop], c.Drops[pipeline.ReasonPolicy])
	}
	out.Reset()
	mixed := pipeline.New(pipeline.StageFunc(func(b *pipeline.Batch) {
		for i := range b.Frames {
			b.Frames[i].SetDrop(pipeline.ReasonPolicy)
		}
		b.Frames[63].SetDrop(pipeline.ReasonTooShort)
	}))
	mixed.Run(batchOf(64), &out)
	c = mixed.Counters()[0]
	if len(out.Drop) != 64 || c.Drops[pipeline.ReasonPolicy] != 63 || c.Drops[pipeline.ReasonTooShort] != 1 {
		t.Fatalf("mixed: out %d, policy=%d too-short=%d", len(out.Drop), c.Drops[pipeline.ReasonPolicy], c.Drops[pipeline.ReasonTooShort])
	}
}

// TestUniformBatchMoves covers the move of a uniform batch into an empty
// output slice of the same capacity: the frames arrive whole, the batch
// keeps a usable array, and a second batch appends behind the first.
func TestUniformBatchMoves(t *testing.T) {
	p := pipeline.New(pipeline.DropAll{})
	b := batchOf(8)
	b.Frames = append(make([]pipeline.Frame, 0, 16), b.Frames...)
	out := pipeline.Output{Drop: make([]pipeline.Frame, 0, 16)}
	first := &b.Frames[0]
	p.Run(b, &out)
	if len(out.Drop) != 8 || &out.Drop[0] != first {
		t.Fatalf("first batch: %d frames in Drop, moved %v", len(out.Drop), &out.Drop[0] == first)
	}
	if len(b.Frames) != 0 || cap(b.Frames) != 16 {
		t.Fatalf("batch left with len %d cap %d", len(b.Frames), cap(b.Frames))
	}
	b.Frames = append(b.Frames, batchOf(4).Frames...)
	p.Run(b, &out)
	if len(out.Drop) != 12 {
		t.Fatalf("second batch: %d frames in Drop, want 12", len(out.Drop))
	}
	for i, f := range out.Drop {
		if f.Verdict != pipeline.Drop || f.Reason != pipeline.ReasonPolicy || f.Data == nil {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
}
