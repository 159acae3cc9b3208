package capture

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tygress/tygress/pipeline"
)

// Pseudo-stages a Tap can name besides the stages of a pipeline.
const (
	PointRx = "rx" // every batch as received, before the first stage
	PointTx = "tx" // frames given TX or Redirect (including by the default verdict)
)

// Tap sends the frames at Point of a pipeline to a Capture.
type Tap struct {
	Point   string
	Capture *Capture
}

// StageNames returns the names the stages go by in counters and taps:
// pipeline.Named's name, or "stageN" for the unnamed stage at index N.
func StageNames(stages []pipeline.Stage) []string {
	names := make([]string, len(stages))
	for i, s := range stages {
		names[i] = fmt.Sprintf("stage%d", i)
		if n, ok := s.(pipeline.Named); ok {
			names[i] = n.Name()
		}
	}
	return names
}

// Points returns every point a Tap may name on p, for messages.
func Points(p *pipeline.Pipeline) []string {
	return append([]string{PointRx, PointTx}, StageNames(p.Stages())...)
}

// resolve returns the stage index a point names, -1 for rx/tx.
func resolve(point string, names []string) (int, error) {
	if point == PointRx || point == PointTx {
		if len(names) == 0 {
			return 0, fmt.Errorf("capture %s: the pipeline has no stages", point)
		}
		return -1, nil
	}
	idx := -1
	for i, n := range names {
		if n == point {
			if idx >= 0 {
				return 0, fmt.Errorf("capture %s: two stages have that name; use the index (%d or %d)", point, idx, i)
			}
			idx = i
		}
	}
	if idx >= 0 {
		return idx, nil
	}
	if i, err := strconv.Atoi(point); err == nil && i >= 0 && i < len(names) {
		return i, nil
	}
	return 0, fmt.Errorf("capture %s: no such stage (have %s)", point, strings.Join(append([]string{PointRx, PointTx}, names...), ", "))
}

// Pipeline returns a pipeline with p's stages, default verdict and names,
// whose stages record into the taps (each tap gets a new Ring: call it
// once per worker). Stage counters are unchanged: the wrappers keep the
// names and the Releaser of the stages they wrap. Frames a holding stage
// releases are recorded by the stages after it, not by the holder nor by
// rx; rx skips batches handed over from another shard (they were recorded
// where they arrived).
func Pipeline(p *pipeline.Pipeline, taps ...Tap) (*pipeline.Pipeline, error) {
	stages := p.Stages()
	names := StageNames(stages)
	w := make([]*tapped, len(stages))
	for i, s := range stages {
		w[i] = &tapped{inner: s, name: names[i], dflt: pipeline.Pass}
	}
	if len(w) > 0 {
		last := w[len(w)-1]
		if p.Default == pipeline.TX || p.Default == pipeline.Redirect {
			last.dflt, last.dfltPort = p.Default, p.DefaultPort
		}
	}
	for _, t := range taps {
		if t.Capture == nil {
			return nil, fmt.Errorf("capture %s: no capture", t.Point)
		}
		i, err := resolve(t.Point, names)
		if err != nil {
			return nil, err
		}
		switch t.Point {
		case PointRx:
			w[0].rx = append(w[0].rx, t.Capture.NewRing())
		case PointTx:
			for _, s := range w {
				// One ring per worker, shared by its stages: they run
				// one after another on the worker's goroutine.
				s.tx = append(s.tx, nil)
			}
			r := t.Capture.NewRing()
			for _, s := range w {
				s.tx[len(s.tx)-1] = r
			}
		default:
			w[i].at = append(w[i].at, t.Capture.NewRing())
		}
	}
	out := make([]pipeline.Stage, len(w))
	for i, s := range w {
		if len(s.rx)+len(s.at)+len(s.tx) == 0 {
			out[i] = s.inner
			continue
		}
		if r, ok := s.inner.(pipeline.Releaser); ok {
			out[i] = &tappedReleaser{tapped: s, Releaser: r}
		} else {
			out[i] = s
		}
	}
	np := pipeline.New(out...)
	np.Default, np.DefaultPort = p.Default, p.DefaultPort
	return np, nil
}

// tapped wraps a stage with the taps at its place.
type tapped struct {
	inner    pipeline.Stage
	name     string
	rx       []*Ring // before the stage, no verdict (stage 0 only)
	at       []*Ring // before the stage, with the verdict it gave
	tx       []*Ring // frames it sent out
	dflt     pipeline.Verdict
	dfltPort uint16
}

// Name implements pipeline.Named with the wrapped stage's name.
func (t *tapped) Name() string { return t.name }

// Process records, runs the wrapped stage, and records again.
func (t *tapped) Process(b *pipeline.Batch) {
	if !b.Handoff {
		for _, r := range t.rx {
			r.Record(b, b.Frames)
		}
	}
	for _, r := range t.at {
		r.begin(b)
	}
	t.inner.Process(b)
	for _, r := range t.at {
		r.finish(b, true)
	}
	for _, r := range t.tx {
		r.recordOut(b, t.dflt, t.dfltPort)
	}
}

// tappedReleaser keeps a holding stage's Releaser visible to the
// pipeline.
type tappedReleaser struct {
	*tapped
	pipeline.Releaser
}
