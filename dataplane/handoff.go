package dataplane

import (
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/sched"
)

// handoff holds the lock-free rings between workers: frames[i][j] carries
// frames worker i hands to worker j, returns[i][j] carries frames owned by
// worker j that worker i is done with. Each ring has exactly one producer
// (worker i) and one consumer (worker j): SPSC, no locks.
type handoff struct {
	dp       *DataPath
	n        int
	frames   [][]*sched.SPSC[pipeline.Frame]
	returns  [][]*sched.SPSC[uint64]
	poolSize uint64 // bytes of UMEM per worker
	scratch  [][]uint64
}

func newHandoff(dp *DataPath, ringSize, per int) (*handoff, error) {
	n := len(dp.Pools)
	if n < 2 {
		return nil, nil
	}
	if ringSize == 0 {
		ringSize = 1024
	}
	// A worker can hold every frame of another worker at most, so a
	// return ring of that size never fills.
	retSize := 1
	for retSize < per {
		retSize <<= 1
	}
	h := &handoff{dp: dp, n: n, poolSize: uint64(per) * uint64(dp.UMEM.FrameSize())}
	for i := 0; i < n; i++ {
		var fr []*sched.SPSC[pipeline.Frame]
		var rt []*sched.SPSC[uint64]
		for j := 0; j < n; j++ {
			f, err := sched.NewSPSC[pipeline.Frame](ringSize)
			if err != nil {
				return nil, err
			}
			r, err := sched.NewSPSC[uint64](retSize)
			if err != nil {
				return nil, err
			}
			fr, rt = append(fr, f), append(rt, r)
		}
		h.frames = append(h.frames, fr)
		h.returns = append(h.returns, rt)
		h.scratch = append(h.scratch, make([]uint64, 256))
	}
	for q, pool := range dp.Pools {
		pool.Foreign = func(addr uint64) {
			owner := int(addr / h.poolSize)
			if owner >= n || !h.returns[q][owner].Enqueue(addr) {
				panic("dataplane: frame return ring overflow")
			}
		}
	}
	return h, nil
}

func (h *handoff) wire(q int, wc *pipeline.WorkerConfig) {
	pool := wc.Pool
	touched := make([]bool, h.n)
	wc.Handoff = func(frames []pipeline.Frame) int {
		rej := 0
		for i := range frames {
			f := frames[i]
			s := int(f.Shard)
			if s >= h.n || s == q || !h.frames[q][s].Enqueue(f) {
				frames[rej] = f
				rej++
				continue
			}
			touched[s] = true
		}
		for s, t := range touched {
			if t {
				touched[s] = false
				h.dp.Workers[s].Wake()
			}
		}
		return rej
	}
	wc.HasIncoming = func() bool {
		for j := 0; j < h.n; j++ {
			if j != q && h.frames[j][q].Len() > 0 {
				return true
			}
		}
		return false
	}
	wc.Incoming = func(out []pipeline.Frame) int {
		k := 0
		for j := 0; j < h.n && k < len(out); j++ {
			if j != q {
				k += h.frames[j][q].DequeueBatch(out[k:])
			}
		}
		// The frames carry the Handoff verdict that sent them here: they
		// start this worker's pipeline undecided.
		for i := range out[:k] {
			out[i].Verdict, out[i].Reason = pipeline.Pass, 0
		}
		return k
	}
	scratch := h.scratch[q]
	wc.Reclaim = func() {
		for j := 0; j < h.n; j++ {
			if j == q {
				continue
			}
			for {
				m := h.returns[j][q].DequeueBatch(scratch)
				for _, a := range scratch[:m] {
					pool.Put(a)
				}
				if m < len(scratch) {
					break
				}
			}
		}
	}
}
