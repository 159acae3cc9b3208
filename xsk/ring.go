package xsk

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Desc is an rx or tx descriptor, laid out as the kernel's struct xdp_desc.
// Addr is an offset into the UMEM; in aligned mode the kernel adds the
// headroom, so the frame starts at Addr rounded down to the frame size.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// ring is the common part of the four rings. producer, consumer and flags
// point into memory shared with the kernel and are only accessed
// atomically. cachedProd and cachedCons are this side's private copies:
// for a producer ring cachedCons holds consumer+size (so free = cachedCons -
// cachedProd); for a consumer ring cachedProd holds the last producer value
// read.
type ring struct {
	producer   *atomic.Uint32
	consumer   *atomic.Uint32
	flags      *atomic.Uint32
	mask       uint32
	size       uint32
	cachedProd uint32
	cachedCons uint32
	mem        []byte
}

// prodFree returns how many slots can be produced, re-reading the kernel's
// consumer index only when fewer than n are known to be free.
func (r *ring) prodFree(n uint32) uint32 {
	free := r.cachedCons - r.cachedProd
	if free >= n {
		return free
	}
	// load-acquire of the consumer index pairs with the kernel's
	// smp_store_release in xskq_cons_release (net/xdp/xsk_queue.h).
	r.cachedCons = r.consumer.Load() + r.size
	return r.cachedCons - r.cachedProd
}

// consAvail returns up to n entries ready to consume, re-reading the
// kernel's producer index only when the cache is empty.
func (r *ring) consAvail(n uint32) uint32 {
	entries := r.cachedProd - r.cachedCons
	if entries == 0 {
		// load-acquire pairs with smp_store_release in
		// xskq_prod_submit (net/xdp/xsk_queue.h).
		r.cachedProd = r.producer.Load()
		entries = r.cachedProd - r.cachedCons
	}
	return min(entries, n)
}

// needWakeup reports the kernel's XDP_RING_NEED_WAKEUP flag.
func (r *ring) needWakeup() bool { return r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0 }

// Len is the number of entries the ring holds.
func (r *ring) Len() int { return int(r.size) }

// FillRing hands empty frames to the kernel. User space produces.
type FillRing struct {
	ring
	addrs []uint64
}

// Reserve reserves up to n slots and returns the index of the first and
// how many were reserved. Write them with Set, then Submit.
func (f *FillRing) Reserve(n uint32) (idx, got uint32) {
	got = min(f.prodFree(n), n)
	idx = f.cachedProd
	f.cachedProd += got
	return idx, got
}

// Set writes the frame address of slot idx.
func (f *FillRing) Set(idx uint32, addr uint64) { f.addrs[idx&f.mask] = addr }

// Submit publishes every reserved slot to the kernel.
func (f *FillRing) Submit() {
	// store-release pairs with the kernel's smp_load_acquire of the producer.
	storeRelease(f.producer, f.cachedProd)
}

// Occupancy is the number of frames in the ring not yet taken by the kernel.
func (f *FillRing) Occupancy() int { return int(f.producer.Load() - f.consumer.Load()) }

// NeedWakeup reports whether the kernel asks for a wakeup to process the
// fill ring (zero-copy drivers set it; copy mode does not).
func (f *FillRing) NeedWakeup() bool { return f.needWakeup() }

// TxRing hands frames to transmit to the kernel. User space produces.
type TxRing struct {
	ring
	descs []Desc
}

// Reserve reserves up to n slots; see FillRing.Reserve.
func (t *TxRing) Reserve(n uint32) (idx, got uint32) {
	got = min(t.prodFree(n), n)
	idx = t.cachedProd
	t.cachedProd += got
	return idx, got
}

// Set writes descriptor d at slot idx.
func (t *TxRing) Set(idx uint32, d Desc) { t.descs[idx&t.mask] = d }

// Submit publishes every reserved slot to the kernel.
func (t *TxRing) Submit() { storeRelease(t.producer, t.cachedProd) }

// Occupancy is the number of descriptors not yet taken by the kernel.
func (t *TxRing) Occupancy() int { return int(t.producer.Load() - t.consumer.Load()) }

// NeedWakeup reports whether the kernel needs a sendto() to transmit.
func (t *TxRing) NeedWakeup() bool { return t.needWakeup() }

// RxRing carries received frames from the kernel. User space consumes.
// Descriptors read with Desc are unvalidated; Socket.Receive validates.
type RxRing struct {
	ring
	descs []Desc
}

// Peek returns the index of the first available entry and how many (at
// most n) are available.
func (r *RxRing) Peek(n uint32) (idx, got uint32) {
	got = r.consAvail(n)
	idx = r.cachedCons
	r.cachedCons += got
	return idx, got
}

// Desc returns the (unvalidated) descriptor at idx.
func (r *RxRing) Desc(idx uint32) Desc { return r.descs[idx&r.mask] }

// Release gives every peeked entry back to the kernel.
func (r *RxRing) Release() { storeRelease(r.consumer, r.cachedCons) }

// CompRing returns transmitted frames from the kernel. User space consumes.
type CompRing struct {
	ring
	addrs []uint64
}

// Peek returns the index of the first available entry and how many (at
// most n) are available.
func (c *CompRing) Peek(n uint32) (idx, got uint32) {
	got = c.consAvail(n)
	idx = c.cachedCons
	c.cachedCons += got
	return idx, got
}

// Addr returns the (unvalidated) frame address at idx.
func (c *CompRing) Addr(idx uint32) uint64 { return c.addrs[idx&c.mask] }

// Release gives every peeked entry back to the kernel.
func (c *CompRing) Release() { storeRelease(c.consumer, c.cachedCons) }

// Occupancy is the number of received descriptors not yet released.
func (r *RxRing) Occupancy() int { return int(r.producer.Load() - r.consumer.Load()) }

// Occupancy is the number of completed addresses not yet released.
func (c *CompRing) Occupancy() int { return int(c.producer.Load() - c.consumer.Load()) }
