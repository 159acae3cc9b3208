package lb

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/internal/hugemem"
	"github.com/tygress/tygress/proto"
)

// Key is a connection table key: a transport 5-tuple, or for QUIC a
// connection ID scoped to its service (Flow then holds only the VIP side:
// Dst, DstPort, Proto and Family; Src and SrcPort are zero).
type Key struct {
	Flow proto.FlowKey
	CID  proto.ConnID
}

func (k *Key) hash(seed uint64) uint32 {
	h := k.Flow.Hash(seed)
	if k.CID.Len() != 0 {
		h ^= k.CID.Hash(seed) * 0x9e3779b1
	}
	return h
}

// Value is what a connection maps to: the backend chosen when it was
// created. The backend is stored by address, not only by its index, so
// that a configuration change (indices move, the backend may be gone)
// never moves or breaks an established connection.
//
// The VIP is kept too, so that a NAT reply is rewritten to the address the
// client used even if the service has gone from the configuration since.
type Value struct {
	Addr    [16]byte // backend address, IPv4-mapped for IPv4
	VIP     [16]byte // the service's address, IPv4-mapped for IPv4
	Port    uint16   // backend port
	VIPPort uint16   // the service's port
	Backend uint16   // index in the service's backends when created (informational)
	Mode    Mode     // how to forward (fixed for the life of the connection)
	Slot    uint32   // the balancer's counter slot of (service, backend)
}

// Class selects a connection's idle timeout. Each class has its own LRU
// list, so the oldest entry of a class is always the next one to expire.
type Class uint8

// Classes.
const (
	ClassTCP        Class = iota // TCP, established (no FIN or RST seen)
	ClassTCPClosing              // TCP after a FIN or RST
	ClassUDP                     // UDP (and QUIC)
	numClasses
)

// FullPolicy says what Insert does when the table is full.
type FullPolicy uint8

// Full policies.
const (
	// EvictLRU evicts the least recently used connection (any class).
	EvictLRU FullPolicy = iota
	// RejectNew refuses the new connection; established ones stay.
	RejectNew
)

// TableOptions configure a ConnTable.
type TableOptions struct {
	Capacity          int           // connections, fixed at construction
	TCPTimeout        time.Duration // idle timeout of established TCP
	TCPClosingTimeout time.Duration // idle timeout after FIN or RST
	UDPTimeout        time.Duration // idle timeout of UDP
	Full              FullPolicy
	Seed              uint64 // hash seed; use a random one against crafted collisions
	// TouchGranularity: Touch moves a connection to the head of its LRU
	// list only when it was last moved at least this long ago, so the
	// packets of a busy flow do not each pay the cache misses of three
	// list neighbours. Eviction order and Expire are then exact to within
	// this time (Lookup's own expiry check stays exact). 0: exact LRU.
	TouchGranularity time.Duration
}

// DefaultTableOptions returns 262144 connections (216 bytes each: an entry
// and two buckets; in huge pages where the kernel gives them),
// 15 minutes for TCP (as IPVS), 10 seconds after FIN/RST, 2 minutes for
// UDP, LRU eviction, and a touch granularity of 100 ms.
func DefaultTableOptions() TableOptions {
	return TableOptions{
		Capacity:          1 << 18,
		TCPTimeout:        15 * time.Minute,
		TCPClosingTimeout: 10 * time.Second,
		UDPTimeout:        2 * time.Minute,
		Full:              EvictLRU,
		TouchGranularity:  100 * time.Millisecond,
	}
}

// MaxCapacity bounds a table (entry indices are int32 with a direction bit).
const MaxCapacity = 1 << 28

// ErrBadOptions is returned (wrapped) for unusable TableOptions.
var ErrBadOptions = errors.New("bad connection table options")

func (o *TableOptions) check() error {
	switch {
	case o.Capacity < 1 || o.Capacity > MaxCapacity:
		return fmt.Errorf("%w: capacity %d not in [1, %d]", ErrBadOptions, o.Capacity, MaxCapacity)
	case o.TCPTimeout <= 0 || o.TCPClosingTimeout <= 0 || o.UDPTimeout <= 0:
		return fmt.Errorf("%w: timeouts must be positive", ErrBadOptions)
	case o.TouchGranularity < 0:
		return fmt.Errorf("%w: negative touch granularity", ErrBadOptions)
	case o.Full > RejectNew:
		return fmt.Errorf("%w: unknown full policy %d", ErrBadOptions, o.Full)
	}
	return nil
}

// TableStats are a table's counters.
type TableStats struct {
	Len         int    // connections now
	Hits        uint64 // lookups that found a live connection
	Misses      uint64 // lookups that found none (or an expired one)
	Inserts     uint64 // connections created
	Evictions   uint64 // connections evicted to make room (EvictLRU)
	Expirations uint64 // connections removed after their idle timeout
	Full        uint64 // inserts that found the table full
}

// Ref names one direction of a connection found by Lookup or made by
// Insert. It is valid until the next call that can remove connections
// (Insert, Expire, Delete, SetReply, and Lookup, which drops expired ones).
type Ref int32

// Dir returns 0 for the key the connection was inserted with, 1 for its
// reply key.
func (r Ref) Dir() int { return int(r & 1) }

const nilIdx = -1

// entry is one connection. The fields a lookup reads first (hashes,
// chains, times) come first, so that a hit touches as few cache lines as
// possible.
type entry struct {
	hashes   [2]uint32
	chain    [2]int32 // next ref in the bucket of keys[d]
	lastSeen int64
	moved    int64 // when last put at the head of its list; lastSeen-moved < granularity
	prev     int32 // LRU list of the class (prev: more recent)
	next     int32 // LRU list (next: older), or free list
	class    Class
	has      [2]bool // which keys are in the hash table
	used     bool
	val      Value
	keys     [2]Key
}

// ConnTable is a fixed-capacity connection table for one shard: one
// goroutine, no locks, nothing allocated after NewConnTable.
//
// Entries live in one preallocated array. A connection can be found under
// two keys (Linux conntrack's two tuples): the one it was inserted with and
// an optional reply key (for NAT, the reply's 5-tuple). Each key sits in a
// chain of a power-of-two bucket array, linked through the entries by
// index. Each timeout class keeps an intrusive doubly linked LRU list by
// index: Touch moves an entry to the head; with a monotonic clock every
// list is sorted by last-seen time (to within TouchGranularity), so the
// tail of a list is the next entry of that class to expire and the oldest
// tail of all lists is the least recently used entry.
//
// Expiry is lazy and incremental: Lookup treats an expired entry as absent
// (and removes it), and Expire removes up to a budget of expired entries
// from the list tails, so no call ever scans the table.
type ConnTable struct {
	slotFlows []atomic.Int64 // live connections per Value.Slot (CountSlots)
	entries   []entry
	buckets   []int32 // head ref of each chain
	mask      uint32
	seed      uint64
	head      [numClasses]int32
	tail      [numClasses]int32
	timeout   [numClasses]int64
	gran      int64
	free      int32 // free list of removed entries
	fresh     int32 // entries from here on were never used
	full      FullPolicy
	n         int
	hits      uint64
	misses    uint64
	inserts   uint64
	evicts    uint64
	expires   uint64
	fullHits  uint64
}

// NewConnTable allocates a table for o.Capacity connections.
func NewConnTable(o TableOptions) (*ConnTable, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	nb := 1
	for nb < 2*o.Capacity {
		nb <<= 1
	}
	// Both arrays are looked up at random: in huge pages, if the kernel
	// gives them, a lookup is not also a TLB miss. Entries are faulted in
	// as they are first used (fresh), so a big, mostly empty table is
	// cheap.
	entries, freeEntries, _ := hugemem.Make[entry](o.Capacity)
	buckets, freeBuckets, _ := hugemem.Make[int32](nb)
	t := &ConnTable{
		entries: entries,
		buckets: buckets,
		mask:    uint32(nb - 1),
		seed:    o.Seed,
		full:    o.Full,
		gran:    int64(o.TouchGranularity),
		free:    nilIdx,
	}
	runtime.AddCleanup(t, func(struct{}) { freeEntries(); freeBuckets() }, struct{}{})
	t.SetTimeouts(o.TCPTimeout, o.TCPClosingTimeout, o.UDPTimeout)
	for i := range t.buckets {
		t.buckets[i] = nilIdx
	}
	for c := range t.head {
		t.head[c], t.tail[c] = nilIdx, nilIdx
	}
	return t, nil
}

// SetTimeouts changes the idle timeouts (non-positive values are ignored).
// Entries already in the table use the new values from now on.
func (t *ConnTable) SetTimeouts(tcp, tcpClosing, udp time.Duration) {
	for c, d := range [numClasses]time.Duration{tcp, tcpClosing, udp} {
		if d > 0 {
			t.timeout[c] = int64(d)
		}
	}
}

// Cap returns the capacity.
func (t *ConnTable) Cap() int { return len(t.entries) }

// Len returns the number of connections.
func (t *ConnTable) Len() int { return t.n }

// Stats returns the counters.
func (t *ConnTable) Stats() TableStats {
	return TableStats{Len: t.n, Hits: t.hits, Misses: t.misses, Inserts: t.inserts,
		Evictions: t.evicts, Expirations: t.expires, Full: t.fullHits}
}

func (t *ConnTable) expired(e *entry, now int64) bool {
	return now-e.lastSeen > t.timeout[e.class]
}

// find returns the ref of k or nilIdx, without expiry checks or counting.
func (t *ConnTable) find(k *Key, h uint32) int32 {
	for r := t.buckets[h&t.mask]; r != nilIdx; {
		e := &t.entries[r>>1]
		d := r & 1
		if e.hashes[d] == h && e.keys[d] == *k {
			return r
		}
		r = e.chain[d]
	}
	return nilIdx
}

// warm reads the cache lines that a lookup finding ref r reads (hash,
// times, value, r's key) and returns a sum of what it read, for the
// caller to keep so that the loads are not optimised away. Reading them
// for a batch of refs before looking any up overlaps their misses.
func (t *ConnTable) warm(r int32) int32 {
	e := &t.entries[r>>1]
	// An entry is 208 bytes: reads at most 64 bytes apart reach every
	// line from the hashes to the end of the key (offsets 0, 60, 120 and
	// the key's end; a reply key adds one in its middle).
	w := int32(e.hashes[0]) + int32(e.val.VIP[0]) + int32(e.keys[0].Flow.SrcPort)
	if r&1 == 0 {
		return w + int32(e.keys[0].CID.Len())
	}
	return w + int32(e.keys[1].Flow.SrcPort) + int32(e.keys[1].CID.Len())
}

// Lookup finds the connection of k at time now (ns). An expired
// connection is removed and counts as a miss. Lookup does not touch.
func (t *ConnTable) Lookup(k *Key, now int64) (Ref, bool) {
	return t.lookupHash(k, k.hash(t.seed), now)
}

// lookupHash is Lookup with k's hash already computed.
func (t *ConnTable) lookupHash(k *Key, h uint32, now int64) (Ref, bool) {
	r := t.find(k, h)
	if r == nilIdx {
		t.misses++
		return nilIdx, false
	}
	e := &t.entries[r>>1]
	if t.expired(e, now) {
		t.remove(r >> 1)
		t.expires++
		t.misses++
		return nilIdx, false
	}
	t.hits++
	return Ref(r), true
}

// Value returns the value of the connection r names.
func (t *ConnTable) Value(r Ref) Value { return t.entries[r>>1].val }

// Key returns the key of r's connection in direction dir (0 or 1).
func (t *ConnTable) Key(r Ref, dir int) (Key, bool) {
	e := &t.entries[r>>1]
	d := dir & 1
	return e.keys[d], e.has[d]
}

// Class returns the class of r's connection.
func (t *ConnTable) Class(r Ref) Class { return t.entries[r>>1].class }

// LastSeen returns when r's connection was last touched.
func (t *ConnTable) LastSeen(r Ref) int64 { return t.entries[r>>1].lastSeen }

// Touch marks r's connection used at now and sets its class (an invalid
// class keeps the current one).
func (t *ConnTable) Touch(r Ref, now int64, c Class) {
	i := int32(r >> 1)
	e := &t.entries[i]
	if c >= numClasses {
		c = e.class
	}
	e.lastSeen = now
	if e.class == c {
		if t.head[c] == i {
			e.moved = now // still the newest of its list
			return
		}
		if now-e.moved < t.gran {
			return
		}
	}
	t.unlink(i)
	e.class, e.moved = c, now
	t.pushHead(i)
}

// Insert adds a connection under key k, and under reply too if reply is
// not nil, with value v and class c, last seen at now. If k is already
// present its connection is updated instead. A reply key that belongs to
// another connection is taken from it (the newer mapping wins; the older
// connection stays reachable by its own key). When the table is full a
// connection whose timeout passed is removed (counted as an expiration);
// if there is none, the least recently used connection is evicted
// (EvictLRU, counted in both Evictions and Full) or the insert fails
// (RejectNew, counted in Full).
func (t *ConnTable) Insert(k, reply *Key, v Value, c Class, now int64) (Ref, bool) {
	if c >= numClasses {
		c = ClassUDP
	}
	h := k.hash(t.seed)
	if r := t.find(k, h); r != nilIdx {
		i := r >> 1
		if r&1 == 0 {
			if old := t.entries[i].val.Slot; old != v.Slot {
				t.slotAdd(old, -1)
				t.slotAdd(v.Slot, 1)
			}
			t.entries[i].val = v
			t.Touch(Ref(r), now, c)
			if reply != nil {
				t.setReply(i, reply)
			}
			return Ref(r), true
		}
		// k is another connection's reply key: the new connection takes it.
		t.unlinkKey(i, 1)
		if !t.entries[i].has[0] {
			t.remove(i)
		}
	}
	// A connection whose timeout passed is removed as expired, not
	// evicted or refused: prefer it to the least recently used one.
	if t.free == nilIdx && t.fresh == int32(len(t.entries)) && !t.expireOne(now) {
		t.fullHits++
		if t.full == RejectNew {
			return nilIdx, false
		}
		t.remove(t.lru())
		t.evicts++
	}
	i := t.free
	if i != nilIdx {
		t.free = t.entries[i].next
	} else {
		i = t.fresh
		t.fresh++
	}
	e := &t.entries[i]
	*e = entry{used: true, lastSeen: now, moved: now, val: v, class: c}
	t.n++
	t.slotAdd(v.Slot, 1)
	t.inserts++
	e.keys[0], e.hashes[0] = *k, h
	t.link(i, 0)
	t.pushHead(i)
	if reply != nil {
		t.setReply(i, reply)
	}
	return Ref(i << 1), true
}

// SetReply sets (or replaces) the reply key of r's connection, taking it
// from another connection that has it.
func (t *ConnTable) SetReply(r Ref, reply *Key) { t.setReply(int32(r>>1), reply) }

func (t *ConnTable) setReply(i int32, reply *Key) {
	e := &t.entries[i]
	if e.has[1] && e.keys[1] == *reply {
		return
	}
	h := reply.hash(t.seed)
	if o := t.find(reply, h); o != nilIdx {
		oi := o >> 1
		if oi == i {
			// The reply key equals our own forward key: nothing to add.
			return
		}
		t.unlinkKey(oi, o&1)
		if oe := &t.entries[oi]; !oe.has[0] && !oe.has[1] {
			t.remove(oi)
		}
	}
	if e.has[1] {
		t.unlinkKey(i, 1)
	}
	e.keys[1], e.hashes[1] = *reply, h
	t.link(i, 1)
}

// Delete removes the connection of k (under either of its keys).
func (t *ConnTable) Delete(k *Key) bool {
	r := t.find(k, k.hash(t.seed))
	if r == nilIdx {
		return false
	}
	t.remove(r >> 1)
	return true
}

// Expire removes up to budget connections whose idle timeout has passed
// at now, oldest first in each class, and returns how many it removed.
// Call it once per batch with a small budget.
func (t *ConnTable) Expire(now int64, budget int) int {
	n := 0
	for n < budget && t.expireOne(now) {
		n++
	}
	return n
}

// expireOne removes the tail of a class list if it expired.
func (t *ConnTable) expireOne(now int64) bool {
	for c := range t.tail {
		if i := t.tail[c]; i != nilIdx && t.expired(&t.entries[i], now) {
			t.remove(i)
			t.expires++
			return true
		}
	}
	return false
}

// lru returns the least recently used entry: the oldest class tail.
func (t *ConnTable) lru() int32 {
	best := int32(nilIdx)
	for _, i := range t.tail {
		if i != nilIdx && (best == nilIdx || t.entries[i].moved < t.entries[best].moved) {
			best = i
		}
	}
	return best
}

func (t *ConnTable) link(i, d int32) {
	e := &t.entries[i]
	b := &t.buckets[e.hashes[d]&t.mask]
	e.chain[d] = *b
	*b = i<<1 | d
	e.has[d] = true
}

func (t *ConnTable) unlinkKey(i, d int32) {
	e := &t.entries[i]
	if !e.has[d] {
		return
	}
	want := i<<1 | d
	p := &t.buckets[e.hashes[d]&t.mask]
	for *p != nilIdx {
		if *p == want {
			*p = e.chain[d]
			break
		}
		o := &t.entries[*p>>1]
		p = &o.chain[*p&1]
	}
	e.has[d] = false
	e.chain[d] = nilIdx
}

func (t *ConnTable) pushHead(i int32) {
	e := &t.entries[i]
	c := e.class
	e.prev, e.next = nilIdx, t.head[c]
	if t.head[c] != nilIdx {
		t.entries[t.head[c]].prev = i
	} else {
		t.tail[c] = i
	}
	t.head[c] = i
}

func (t *ConnTable) unlink(i int32) {
	e := &t.entries[i]
	c := e.class
	if e.prev != nilIdx {
		t.entries[e.prev].next = e.next
	} else {
		t.head[c] = e.next
	}
	if e.next != nilIdx {
		t.entries[e.next].prev = e.prev
	} else {
		t.tail[c] = e.prev
	}
	e.prev, e.next = nilIdx, nilIdx
}

// CountSlots makes the table count its live connections per Value.Slot
// below n (SlotFlows). Call it before the first Insert.
func (t *ConnTable) CountSlots(n int) { t.slotFlows = make([]atomic.Int64, n) }

// SlotFlows returns the live connections whose Value.Slot is slot (0
// without CountSlots). Safe for concurrent use.
func (t *ConnTable) SlotFlows(slot uint32) int64 {
	if int(slot) >= len(t.slotFlows) {
		return 0
	}
	return t.slotFlows[slot].Load()
}

func (t *ConnTable) slotAdd(slot uint32, d int64) {
	if int(slot) < len(t.slotFlows) {
		t.slotFlows[slot].Add(d)
	}
}

func (t *ConnTable) remove(i int32) {
	e := &t.entries[i]
	if !e.used {
		panic("lb: removing a free connection entry")
	}
	t.slotAdd(e.val.Slot, -1)
	t.unlinkKey(i, 0)
	t.unlinkKey(i, 1)
	t.unlink(i)
	e.used = false
	e.next = t.free
	t.free = i
	t.n--
}
