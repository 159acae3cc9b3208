package fault_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tygress/tygress/link/fault"
	"github.com/tygress/tygress/pipeline"
)

// TestStageConservesFrames runs the injector as a pipeline stage in front
// of an L2 forward stage: every frame comes out exactly once, forwarded
// or dropped with a fault reason, and the counts match the injector's.
func TestStageConservesFrames(t *testing.T) {
	cfg, err := fault.ParseConfig("loss=0.2,reorder=0.1,delay=1ms,jitter=500us,seed=7")
	if err != nil {
		t.Fatal(err)
	}
	st, err := fault.NewStage(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(st, &pipeline.L2Forward{OutPort: 1})
	var out pipeline.Output
	b := &pipeline.Batch{Frames: make([]pipeline.Frame, 0, 64)}
	seen := map[uint64]int{}
	collect := func() {
		for _, f := range out.TX {
			seen[f.Addr]++
		}
		for _, f := range out.Drop {
			seen[f.Addr]++
		}
	}
	t0 := time.Now().UnixNano()
	const batches = 20
	tx, drops := 0, 0
	for i := 0; i < batches; i++ {
		now := t0 + int64(i)*int64(100*time.Microsecond)
		p.Release(now, b, &out)
		tx, drops = tx+len(out.TX), drops+len(out.Drop)
		collect()
		out.Reset()
		b.Frames = b.Frames[:64]
		for j := range b.Frames {
			b.Frames[j] = pipeline.Frame{Data: make([]byte, 60), Addr: uint64(i*64+j) * 2048}
		}
		b.Now = now
		p.Run(b, &out)
		if len(out.TX)+len(out.Drop) != 0 {
			t.Fatalf("frames left the stage during Process")
		}
	}
	for now := t0 + int64(batches)*int64(100*time.Microsecond); st.Held() > 0; now += int64(time.Millisecond) {
		if p.Next() == 0 {
			t.Fatalf("%d frames held but no deadline", st.Held())
		}
		p.Release(now, b, &out)
		tx, drops = tx+len(out.TX), drops+len(out.Drop)
		collect()
		out.Reset()
		if now > t0+int64(time.Second) {
			t.Fatal("held frames never released")
		}
	}
	if len(seen) != batches*64 {
		t.Fatalf("%d distinct frames came out, want %d", len(seen), batches*64)
	}
	for a, n := range seen {
		if n != 1 {
			t.Fatalf("frame %#x came out %d times", a, n)
		}
	}
	s := st.Stats()
	if uint64(drops) != s.Dropped() || uint64(tx) != s.Delivered || s.Reordered == 0 || s.Delayed == 0 {
		t.Fatalf("tx %d drops %d, injector %+v", tx, drops, s)
	}
	c := p.Counters()
	if c[0].Verdicts[pipeline.Hold] != batches*64 || c[1].Verdicts[pipeline.Redirect] != uint64(tx) {
		t.Fatalf("counters: hold %d redirect %d", c[0].Verdicts[pipeline.Hold], c[1].Verdicts[pipeline.Redirect])
	}
	var lost uint64
	for r := range c[0].Drops {
		lost += c[0].Drops[r]
	}
	if lost != uint64(drops) {
		t.Fatalf("stage drop counters %d, drops %d", lost, drops)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := fault.ParseConfig("loss=0.5,burst-p=0.01,burst-r=0.2,delay=2ms,jitter=1ms,rate-pps=1000,seed=3,hold=64")
	if err != nil {
		t.Fatal(err)
	}
	if c.Loss != 0.5 || c.Burst.P != 0.01 || c.Delay != 2*time.Millisecond || c.RatePackets != 1000 || c.Seed != 3 || c.HoldLimit != 64 || c.CorruptOffset != 14 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{"loss", "loss=x", "nosuch=1", "loss=2", "delay=-1s"} {
		if _, err := fault.ParseConfig(bad); !errors.Is(err, fault.ErrBadConfig) {
			t.Errorf("%q: %v, want ErrBadConfig", bad, err)
		}
	}
}
