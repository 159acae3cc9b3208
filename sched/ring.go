package sched

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
)

// cacheLine is the distance kept between fields that different cores write.
// It is 128, not 64: Intel's L2 spatial prefetcher pulls 64-byte lines in
// aligned pairs, so with 64 bytes of padding two cores can still contend for
// one 128-byte pair; Apple's arm64 cores and POWER have 128-byte lines.
// crossbeam-utils' CachePadded uses 128 on x86-64, aarch64 and powerpc64
// for these reasons. The cost is a ring struct of under 1 KiB.
const cacheLine = 128

// pad separates two fields by at least a full cacheLine. Placed between two
// 8-byte fields it keeps them on different lines whatever the alignment of
// the enclosing struct, so the struct needs no special allocation.
type pad [cacheLine]byte

// ErrRingSize is returned by NewSPSC and NewMPSC when the requested size is
// not a power of two or is not positive.
var ErrRingSize = errors.New("ring size must be a positive power of two")

// maxRingSize bounds ring sizes so that index differences never come near
// the sign bit of an int64.
const maxRingSize = 1 << 32

func checkRingSize(size int) error {
	if size <= 0 || size > maxRingSize || bits.OnesCount(uint(size)) != 1 {
		return fmt.Errorf("%w: %d", ErrRingSize, size)
	}
	return nil
}

// SPSC is a bounded, lock-free (in fact wait-free) single-producer
// single-consumer ring of T.
//
// One goroutine produces (Enqueue, EnqueueBatch) and one consumes (Dequeue,
// DequeueBatch); see the package documentation for the ownership rules and
// the memory ordering. No method allocates.
//
// The indices are free-running uint64 counters: the slot of index i is
// i & (Cap()-1), the fill level is tail-head, and the counters may wrap
// around 2^64 without harm because only their difference is used.
//
// The zero value is not usable; create rings with NewSPSC.
type SPSC[T any] struct {
	_ pad
	// Written only by the consumer: the next index to read. The producer
	// loads it when its cached copy says the ring is full.
	head atomic.Uint64
	_    pad
	// Written only by the producer: the next index to write. The consumer
	// loads it when its cached copy says the ring is empty.
	tail atomic.Uint64
	_    pad
	// Producer-local copy of head. On its own line so that a consumer
	// refreshing tail does not pull a line the producer writes.
	prodHead uint64
	_        pad
	// Consumer-local copy of tail.
	consTail uint64
	_        pad
	// Read-only after NewSPSC; shared by both sides without contention.
	mask uint64
	buf  []T
	_    pad
}

// NewSPSC returns an empty SPSC ring with room for size items. size must be
// a power of two (at most 2^32).
func NewSPSC[T any](size int) (*SPSC[T], error) {
	if err := checkRingSize(size); err != nil {
		return nil, err
	}
	return &SPSC[T]{mask: uint64(size - 1), buf: make([]T, size)}, nil
}

// Cap returns the number of items the ring can hold.
func (r *SPSC[T]) Cap() int { return len(r.buf) }

// Len returns the number of items in the ring. It may be called from any
// goroutine; when the ring is in use by others the answer is a snapshot
// that may already be stale, but it is always within [0, Cap()].
func (r *SPSC[T]) Len() int {
	// head first: head(t1) <= head(t2) <= tail(t2), so the difference
	// cannot underflow; it can exceed Cap if the consumer moved in between.
	h := r.head.Load()
	t := r.tail.Load()
	return int(min(t-h, uint64(len(r.buf))))
}

// Enqueue appends v and reports whether there was room. Only the producer
// may call it.
func (r *SPSC[T]) Enqueue(v T) bool {
	t := r.tail.Load() // our own index: no other writer
	if t-r.prodHead == uint64(len(r.buf)) {
		r.prodHead = r.head.Load()
		if t-r.prodHead == uint64(len(r.buf)) {
			return false
		}
	}
	r.buf[t&r.mask] = v
	r.tail.Store(t + 1) // release: the slot write above is visible first
	return true
}

// EnqueueBatch appends a prefix of items, as long as there is room, and
// returns how many it appended. The producer index is published once, after
// all the slots are written. Only the producer may call it.
func (r *SPSC[T]) EnqueueBatch(items []T) int {
	size := uint64(len(r.buf))
	t := r.tail.Load()
	free := size - (t - r.prodHead)
	if free < uint64(len(items)) {
		// The cache cannot take the whole batch: look at the real head.
		r.prodHead = r.head.Load()
		free = size - (t - r.prodHead)
	}
	n := min(uint64(len(items)), free)
	if n == 0 {
		return 0
	}
	i := t & r.mask
	first := min(n, size-i) // up to the end of the buffer, then wrap
	copy(r.buf[i:i+first], items[:first])
	copy(r.buf[:n-first], items[first:n])
	r.tail.Store(t + n)
	return int(n)
}

// Dequeue removes and returns the oldest item; ok is false if the ring is
// empty. Only the consumer may call it.
func (r *SPSC[T]) Dequeue() (v T, ok bool) {
	h := r.head.Load() // our own index
	if h == r.consTail {
		r.consTail = r.tail.Load() // acquire: slots up to tail are written
		if h == r.consTail {
			return v, false
		}
	}
	slot := &r.buf[h&r.mask]
	v = *slot
	var zero T
	*slot = zero // drop the ring's reference so the GC can free what v points to
	r.head.Store(h + 1)
	return v, true
}

// DequeueBatch moves up to len(out) of the oldest items into out, in order,
// and returns how many it moved. The consumer index is published once per
// batch. Only the consumer may call it.
//
// The slots it empties are zeroed, so the ring never keeps pointers alive;
// for pointer-free T this costs one extra pass over lines that are already
// in the consumer's cache.
func (r *SPSC[T]) DequeueBatch(out []T) int {
	h := r.head.Load()
	avail := r.consTail - h
	if avail < uint64(len(out)) {
		// The cache cannot fill the whole batch: look at the real tail.
		r.consTail = r.tail.Load()
		avail = r.consTail - h
	}
	n := min(uint64(len(out)), avail)
	if n == 0 {
		return 0
	}
	size := uint64(len(r.buf))
	i := h & r.mask
	first := min(n, size-i)
	copy(out[:first], r.buf[i:i+first])
	copy(out[first:n], r.buf[:n-first])
	clear(r.buf[i : i+first])
	clear(r.buf[:n-first])
	r.head.Store(h + n)
	return int(n)
}

// MPSC is a bounded multi-producer single-consumer ring of T, for the
// many-shards → one-consumer paths (control plane, logging, statistics).
//
// Any number of goroutines may call Enqueue and EnqueueBatch concurrently;
// one goroutine calls Dequeue and DequeueBatch. No method allocates.
//
// The algorithm is Dmitry Vyukov's bounded MPMC queue restricted to one
// consumer: producers claim positions by a compare-and-swap on tail, and
// publish each slot by storing its per-slot sequence number (seq = pos+1)
// after writing the value; the consumer takes slot pos only once it sees
// seq == pos+1, so producers may finish in any order. A slot's seq from the
// previous lap is pos+1-Cap, never pos+1, so stale slots are never mistaken
// for fresh ones. Two changes make batches cheap:
//
//   - The consumer does not rewrite seq to free a slot: it publishes its
//     head index once per batch, and a producer checks free space against
//     head before its compare-and-swap.
//   - A batch claimed at pos is published by one atomic store, to the seq
//     of its first slot, after the values and seqs of the other slots have
//     been written with plain stores. The consumer reads slots strictly in
//     order, so it reads slot pos+i (i > 0) only after it has seen slot pos
//     published, which happens after those plain writes. The consumer
//     therefore never touches the cache lines of a batch while the
//     producer is still filling it.
//
// So a batch costs the producer one CAS and one atomic store, and the
// consumer one atomic store.
//
// Progress: producers are lock-free (a failed CAS means another producer
// succeeded). The consumer never blocks, but a producer that is descheduled
// between claiming a slot and publishing it hides that slot, and everything
// behind it, from the consumer until it resumes, as in Vyukov's queue.
//
// The zero value is not usable; create rings with NewMPSC.
type MPSC[T any] struct {
	_ pad
	// Claimed by producers with CAS: the next position to hand out.
	tail atomic.Uint64
	_    pad
	// Written only by the consumer, once per batch: the next position to
	// read. Producers load it to compute free space.
	head atomic.Uint64
	_    pad
	// Read-only after NewMPSC.
	mask  uint64
	cells []mpscCell[T]
	_     pad
}

type mpscCell[T any] struct {
	// pos+1 once the value for position pos is written. The consumer and
	// single-slot publication use atomic loads and stores; see
	// EnqueueBatch for the plain stores.
	seq uint64
	val T
}

// NewMPSC returns an empty MPSC ring with room for size items. size must be
// a power of two (at most 2^32).
func NewMPSC[T any](size int) (*MPSC[T], error) {
	if err := checkRingSize(size); err != nil {
		return nil, err
	}
	q := &MPSC[T]{mask: uint64(size - 1), cells: make([]mpscCell[T], size)}
	q.reset(0)
	return q, nil
}

// reset sets both indices to start and marks every slot as belonging to the
// lap before it. Tests use a start close to 2^64 to exercise wrap-around.
func (q *MPSC[T]) reset(start uint64) {
	size := uint64(len(q.cells))
	q.head.Store(start)
	q.tail.Store(start)
	for i := range size {
		pos := start + i
		atomic.StoreUint64(&q.cells[pos&q.mask].seq, pos+1-size)
	}
}

// Cap returns the number of items the ring can hold.
func (q *MPSC[T]) Cap() int { return len(q.cells) }

// Len returns the number of positions claimed by producers and not yet
// consumed, including claims whose values are still being written. It may
// be called from any goroutine and is always within [0, Cap()].
func (q *MPSC[T]) Len() int {
	h := q.head.Load()
	t := q.tail.Load()
	return int(min(t-h, uint64(len(q.cells))))
}

// claim reserves up to want consecutive positions and returns the first and
// how many it got (0 when the ring is full).
func (q *MPSC[T]) claim(want uint64) (pos, n uint64) {
	size := uint64(len(q.cells))
	for {
		pos = q.tail.Load()
		// head after tail: head(t2) <= tail(t2) and tail(t2) >= pos, so if
		// used >= size the ring really was full at t2.
		used := pos - q.head.Load()
		if int64(used) < 0 {
			continue // pos is stale: the consumer already passed it
		}
		if used >= size {
			return pos, 0
		}
		n = min(want, size-used)
		if q.tail.CompareAndSwap(pos, pos+n) {
			return pos, n
		}
	}
}

// Enqueue appends v and reports whether there was room. Any goroutine may
// call it.
func (q *MPSC[T]) Enqueue(v T) bool {
	pos, n := q.claim(1)
	if n == 0 {
		return false
	}
	c := &q.cells[pos&q.mask]
	c.val = v
	atomic.StoreUint64(&c.seq, pos+1) // release: publishes val
	return true
}

// EnqueueBatch appends a prefix of items, as long as there is room, and
// returns how many it appended. The items land in consecutive positions, so
// they are dequeued in order and not interleaved with other producers'
// items. Any goroutine may call it.
func (q *MPSC[T]) EnqueueBatch(items []T) int {
	if len(items) == 0 {
		return 0
	}
	pos, n := q.claim(uint64(len(items)))
	if n == 0 {
		return 0
	}
	// Slots after the first: plain stores. The consumer cannot read them
	// before it has seen the first slot published (it reads in order), so
	// the atomic store below orders these writes before its reads.
	cells, mask := q.cells, q.mask
	for i := uint64(1); i < n; i++ {
		c := &cells[(pos+i)&mask]
		c.val = items[i]
		c.seq = pos + i + 1
	}
	c := &q.cells[pos&q.mask]
	c.val = items[0]
	atomic.StoreUint64(&c.seq, pos+1) // release: publishes the whole batch
	return int(n)
}

// Dequeue removes and returns the oldest published item; ok is false if
// there is none. Only the consumer may call it.
func (q *MPSC[T]) Dequeue() (v T, ok bool) {
	pos := q.head.Load() // our own index
	c := &q.cells[pos&q.mask]
	if atomic.LoadUint64(&c.seq) != pos+1 { // acquire: val is written once seq says so
		return v, false
	}
	v = c.val
	var zero T
	c.val = zero
	q.head.Store(pos + 1) // release: the slot may be reused
	return v, true
}

// DequeueBatch moves up to len(out) of the oldest published items into out,
// in order, and returns how many it moved. It stops at the first position
// that is claimed but not yet published. Only the consumer may call it.
func (q *MPSC[T]) DequeueBatch(out []T) int {
	pos := q.head.Load()
	cells, mask := q.cells, q.mask
	var zero T
	n := 0
	for n < len(out) {
		p := pos + uint64(n)
		c := &cells[p&mask]
		if atomic.LoadUint64(&c.seq) != p+1 {
			break
		}
		out[n] = c.val
		c.val = zero
		n++
	}
	if n > 0 {
		q.head.Store(pos + uint64(n))
	}
	return n
}
