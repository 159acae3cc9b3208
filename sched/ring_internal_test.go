package sched

import (
	"math"
	"testing"
	"unsafe"
)

// startAt sets every index of an empty SPSC to start, as if start items had
// already passed through it.
func (r *SPSC[T]) startAt(start uint64) {
	r.head.Store(start)
	r.tail.Store(start)
	r.prodHead = start
	r.consTail = start
}

// TestIndexWrap runs both rings across the 2^64 wrap of their free-running
// indices: only index differences matter, so nothing may change there.
func TestIndexWrap(t *testing.T) {
	const size = 8
	for _, start := range []uint64{math.MaxUint64 - 20, math.MaxUint64 - 3, math.MaxUint64} {
		s, _ := NewSPSC[uint64](size)
		s.startAt(start)
		m, _ := NewMPSC[uint64](size)
		m.reset(start)
		for name, r := range map[string]interface {
			Enqueue(uint64) bool
			EnqueueBatch([]uint64) int
			Dequeue() (uint64, bool)
			DequeueBatch([]uint64) int
			Len() int
		}{"SPSC": s, "MPSC": m} {
			next, want := uint64(0), uint64(0)
			in, out := make([]uint64, 11), make([]uint64, 11)
			for round := range 64 {
				// Fill to the brim, check full, drain in odd-sized pieces.
				for r.Enqueue(next) {
					next++
				}
				if r.Len() != size {
					t.Fatalf("%s start %d round %d: full Len = %d", name, start, round, r.Len())
				}
				if n := r.EnqueueBatch(in); n != 0 {
					t.Fatalf("%s: EnqueueBatch into full ring = %d", name, n)
				}
				n := r.DequeueBatch(out[:1+round%5])
				for _, v := range out[:n] {
					if v != want {
						t.Fatalf("%s start %d: got %d, want %d", name, start, v, want)
					}
					want++
				}
				for i := range in[:1+round%7] {
					in[i] = next + uint64(i)
				}
				next += uint64(r.EnqueueBatch(in[:1+round%7]))
				for {
					v, ok := r.Dequeue()
					if !ok {
						break
					}
					if v != want {
						t.Fatalf("%s start %d: got %d, want %d", name, start, v, want)
					}
					want++
				}
				if r.Len() != 0 || want != next {
					t.Fatalf("%s: Len %d after drain, %d sent, %d received", name, r.Len(), next, want)
				}
			}
		}
		if s.head.Load() >= start || m.head.Load() >= start {
			t.Fatalf("start %d: indices did not wrap (SPSC %d, MPSC %d)", start, s.head.Load(), m.head.Load())
		}
	}
}

// TestSlotsCleared checks that dequeued slots drop their references, so a
// ring never keeps garbage alive.
func TestSlotsCleared(t *testing.T) {
	x := new(int)
	s, _ := NewSPSC[*int](4)
	m, _ := NewMPSC[*int](4)
	out := make([]*int, 4)
	s.EnqueueBatch([]*int{x, x, x})
	s.Enqueue(x)
	s.Dequeue()
	s.DequeueBatch(out)
	for i, p := range s.buf {
		if p != nil {
			t.Errorf("SPSC slot %d still holds a pointer", i)
		}
	}
	m.EnqueueBatch([]*int{x, x, x})
	m.Enqueue(x)
	m.Dequeue()
	m.DequeueBatch(out)
	for i := range m.cells {
		if m.cells[i].val != nil {
			t.Errorf("MPSC slot %d still holds a pointer", i)
		}
	}
}

// TestSPSCLayout checks that the fields written by different sides are at
// least a cache line apart.
func TestSPSCLayout(t *testing.T) {
	var r SPSC[uint64]
	offs := []uintptr{
		unsafe.Offsetof(r.head), unsafe.Offsetof(r.tail),
		unsafe.Offsetof(r.prodHead), unsafe.Offsetof(r.consTail),
		unsafe.Offsetof(r.mask),
	}
	for i := 1; i < len(offs); i++ {
		if d := offs[i] - offs[i-1]; d < cacheLine {
			t.Errorf("fields %d and %d are %d bytes apart, want >= %d", i-1, i, d, cacheLine)
		}
	}
	var q MPSC[uint64]
	if d := unsafe.Offsetof(q.head) - unsafe.Offsetof(q.tail); d < cacheLine {
		t.Errorf("MPSC head and tail are %d bytes apart", d)
	}
	if d := unsafe.Offsetof(q.mask) - unsafe.Offsetof(q.head); d < cacheLine {
		t.Errorf("MPSC head and mask are %d bytes apart", d)
	}
}
