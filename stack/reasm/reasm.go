// Package reasm reassembles IPv4 (RFC 791, RFC 815) and IPv6 (RFC 8200
// section 4.5) fragments with bounded memory.
//
// # Model
//
// A Reassembler is a pure state machine owned by one shard goroutine: it
// starts no goroutines, takes no locks and reads no clock. Every method takes
// the current time as int64 nanoseconds (any monotonic epoch), and the owner
// calls Tick when Next says a datagram is due to expire (from its timer
// wheel).
//
// All memory is allocated by New and reused afterwards:
//
//   - Payload is held in fixed-size chunks (ChunkSize bytes) cut from one
//     slab of Config.MaxBytes bytes. A datagram takes only the chunks its
//     fragments touch, so a lone fragment at offset 60000 costs one chunk,
//     not 60 KiB. Accounting is in whole chunks: Stats.BytesHeld is the
//     memory really pinned and never exceeds MaxBytes.
//   - At most Config.MaxDatagrams datagrams are in progress; each slot has
//     room for Config.MaxFragmentsPerDatagram fragment extents (kept sorted,
//     never overlapping) and a bounded copy of its first fragment's header
//     plus 8 payload bytes for the ICMP time exceeded message.
//   - A complete datagram is copied into one output buffer and returned; the
//     slice is valid until the next call to Add or Tick.
//
// When a new fragment needs a slot or chunks that are not free, the oldest
// datagrams (by arrival of their first fragment) are evicted, counted in
// Stats.Evicted. A datagram that alone would need more chunks than the slab
// holds is refused (Stats.NoSpace). A fragment flood therefore never grows
// memory: it churns through the slots and the slab.
//
// # Overlaps
//
// RFC 5722 requires an IPv6 node to discard a datagram when any of its
// fragments overlap, and to silently drop fragments of it that arrive
// later. This package applies the same rule to IPv4 (RFC 791 allows
// overlaps, but overlapping IPv4 fragments are used almost only to evade
// middleboxes; Linux drops overlaps whose data differs, we drop every
// overlap, which is simpler and never accepts an ambiguous datagram). The
// key of a discarded datagram is remembered as a tombstone for the family's
// timeout, so later fragments of it are dropped too (Stats.Tombstoned).
//
// A fragment with exactly the same extent and bytes as one already held is a
// duplicate from the network: it is dropped (ErrDuplicate, Stats.Duplicate)
// and the datagram is kept. Same extent with different bytes is an overlap.
//
// Other datagram-fatal errors (conflicting last fragments, too many
// fragments) also leave a tombstone: the remaining fragments cannot make a
// valid datagram.
//
// A fragment with offset 0 and no more fragments (an IPv6 atomic fragment,
// RFC 6946, or an unfragmented IPv4 packet) is returned at once without
// copying and without touching any datagram in progress.
package reasm

import (
	"errors"
	"math"
	"time"

	"github.com/tygress/tygress/proto"
)

// ChunkSize is the granularity of payload memory.
const ChunkSize = 2048

// MaxQuoteHeader bounds the header bytes kept from a first fragment for the
// ICMP time exceeded quote (an IPv4 header is at most 60 bytes; IPv6 keeps the
// fixed header and the start of its extension headers).
const MaxQuoteHeader = 128

// quoteData is how many payload bytes of the first fragment are kept
// (RFC 792: the internet header plus 64 bits of data).
const quoteData = 8

const (
	// MaxPayloadIPv4 is the largest reassembled IPv4 payload: a total
	// length of 65535 minus the minimum 20-byte header.
	MaxPayloadIPv4 = 65535 - 20
	// MaxPayloadIPv6 is the largest reassembled IPv6 payload (no
	// jumbograms): the 16-bit payload length.
	MaxPayloadIPv6 = 65535

	maxChunks = (MaxPayloadIPv6 + ChunkSize - 1) / ChunkSize
)

// Never is what Next returns when nothing is due.
const Never int64 = math.MaxInt64

// Errors returned by Add. Each is also counted in Stats. ErrDuplicate is
// benign: the datagram is kept. The others drop the fragment and, where
// documented, the whole datagram.
var (
	// ErrBadFragment: empty payload, negative or unaligned offset, or a
	// non-last fragment whose length is not a multiple of 8.
	ErrBadFragment = errors.New("reasm: bad fragment offset or length")
	// ErrTooBig: the fragment ends beyond the largest datagram.
	ErrTooBig = errors.New("reasm: fragment beyond maximum datagram size")
	// ErrOverlap: the fragment overlaps one already held; the datagram is
	// dropped.
	ErrOverlap = errors.New("reasm: overlapping fragment")
	// ErrDuplicate: an exact duplicate was dropped; the datagram is kept.
	ErrDuplicate = errors.New("reasm: duplicate fragment")
	// ErrLengthConflict: the last fragment disagrees with the data held
	// or with another last fragment; the datagram is dropped.
	ErrLengthConflict = errors.New("reasm: conflicting datagram length")
	// ErrTooManyFragments: the datagram exceeded MaxFragmentsPerDatagram;
	// it is dropped.
	ErrTooManyFragments = errors.New("reasm: too many fragments")
	// ErrNoSpace: the datagram alone would exceed MaxBytes; it is dropped.
	ErrNoSpace = errors.New("reasm: datagram exceeds reassembly budget")
	// ErrTombstoned: the key belongs to a recently dropped datagram.
	ErrTombstoned = errors.New("reasm: fragment of a dropped datagram")
)

// Config bounds a Reassembler. Zero fields take the DefaultConfig values.
type Config struct {
	// MaxBytes is the payload memory for all datagrams in progress,
	// rounded down to whole chunks.
	MaxBytes int
	// MaxDatagrams is the number of datagrams in progress.
	MaxDatagrams int
	// MaxFragmentsPerDatagram bounds the fragments of one datagram.
	MaxFragmentsPerDatagram int
	// Timeout is the reassembly timeout for IPv4 (RFC 791 suggests 15 s,
	// Linux uses 30 s).
	Timeout time.Duration
	// TimeoutIPv6 is the reassembly timeout for IPv6 (60 s, RFC 8200).
	TimeoutIPv6 time.Duration
}

// DefaultConfig returns a Config for one shard: 4 MiB, 1024 datagrams, 64
// fragments each, 30 s (IPv4) and 60 s (IPv6).
func DefaultConfig() Config {
	return Config{
		MaxBytes:                4 << 20,
		MaxDatagrams:            1024,
		MaxFragmentsPerDatagram: 64,
		Timeout:                 30 * time.Second,
		TimeoutIPv6:             60 * time.Second,
	}
}

// Key identifies the datagram a fragment belongs to: (src, dst, protocol,
// ID) for IPv4 (RFC 791), (src, dst, ID) for IPv6 (RFC 8200). It is a
// comparable fixed-size value: map lookups do not allocate.
type Key struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	v6       bool
}

// KeyIPv4 returns the key of an IPv4 fragment.
func KeyIPv4(src, dst [4]byte, protocol uint8, id uint16) Key {
	var k Key
	copy(k.src[:], src[:])
	copy(k.dst[:], dst[:])
	k.proto = protocol
	k.id = uint32(id)
	return k
}

// KeyIPv6 returns the key of an IPv6 fragment.
func KeyIPv6(src, dst [16]byte, id uint32) Key {
	return Key{src: src, dst: dst, id: id, v6: true}
}

// KeyFromIPv4 returns the key of a parsed IPv4 header.
func KeyFromIPv4(h proto.IPv4) Key {
	return KeyIPv4(h.SrcArray(), h.DstArray(), h.Protocol(), h.ID())
}

// KeyFromIPv6 returns the key of a parsed IPv6 header and its fragment
// header.
func KeyFromIPv6(h proto.IPv6, f proto.IPv6Fragment) Key {
	return KeyIPv6(h.SrcArray(), h.DstArray(), f.ID())
}

// IsIPv6 reports whether k is an IPv6 key.
func (k Key) IsIPv6() bool { return k.v6 }

// ID returns the identification field of k.
func (k Key) ID() uint32 { return k.id }

func (k Key) maxPayload() int {
	if k.v6 {
		return MaxPayloadIPv6
	}
	return MaxPayloadIPv4
}

// Stats counts what a Reassembler did. Counters only grow; BytesHeld and
// Datagrams are gauges.
type Stats struct {
	Fragments        uint64 // fragments passed to Add
	Atomic           uint64 // offset 0 without more fragments, returned at once
	Complete         uint64 // datagrams reassembled
	Timeout          uint64 // datagrams expired
	TimeoutQuoted    uint64 // of which the first fragment was held (ICMP can be sent)
	Overlap          uint64 // datagrams dropped for overlapping fragments
	Duplicate        uint64 // exact duplicate fragments dropped
	TooBig           uint64 // fragments ending beyond the maximum datagram
	BadFragment      uint64 // empty, unaligned or bad-length fragments
	LengthConflict   uint64 // datagrams dropped for conflicting lengths
	TooManyFragments uint64 // datagrams dropped for too many fragments
	Evicted          uint64 // datagrams evicted to make room
	NoSpace          uint64 // datagrams refused: larger than the budget
	Tombstoned       uint64 // fragments dropped as part of a dropped datagram

	BytesHeld int // payload memory in use, in whole chunks
	Datagrams int // datagrams in progress
}

// Expired describes a datagram dropped by Tick whose first fragment had
// arrived, for an ICMP time exceeded message (RFC 792 type 11 code 1,
// RFC 4443 type 3 code 1). The slices are valid only during the callback.
type Expired struct {
	Key Key
	// Header is the header bytes passed with the first fragment,
	// truncated to MaxQuoteHeader.
	Header []byte
	// Data is up to the first 8 bytes of the datagram's payload.
	Data []byte
}

type span struct{ start, end int32 }

type datagram struct {
	key        Key
	expires    int64
	prev, next int32 // age list of the family, or free list (next)
	total      int32 // -1 until the last fragment arrived
	maxEnd     int32
	have       int32
	nfrags     int32
	nchunks    int32
	hdrLen     uint8
	dataLen    uint8
	first      bool
	chunks     [maxChunks]int32
	quote      [MaxQuoteHeader + quoteData]byte
}

type ageList struct{ head, tail int32 }

type tomb struct {
	expires int64
	pos     int32
}

// Reassembler holds the datagrams being reassembled by one shard. It is not
// safe for concurrent use.
type Reassembler struct {
	cfg      Config
	timeout  [2]int64 // IPv4, IPv6
	slots    []datagram
	spans    []span // MaxFragmentsPerDatagram per slot
	freeSlot int32
	index    map[Key]int32
	age      [2]ageList

	slab      []byte
	freeChunk []int32

	tombs    map[Key]tomb
	tombRing []Key
	tombPos  int32
	tombN    int32

	out   []byte
	stats Stats
}

// New returns a Reassembler with all its memory allocated.
func New(cfg Config) *Reassembler {
	def := DefaultConfig()
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = def.MaxBytes
	}
	if cfg.MaxDatagrams <= 0 {
		cfg.MaxDatagrams = def.MaxDatagrams
	}
	if cfg.MaxFragmentsPerDatagram <= 0 {
		cfg.MaxFragmentsPerDatagram = def.MaxFragmentsPerDatagram
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.TimeoutIPv6 <= 0 {
		cfg.TimeoutIPv6 = def.TimeoutIPv6
	}
	nchunks := cfg.MaxBytes / ChunkSize
	r := &Reassembler{
		cfg:       cfg,
		timeout:   [2]int64{int64(cfg.Timeout), int64(cfg.TimeoutIPv6)},
		slots:     make([]datagram, cfg.MaxDatagrams),
		spans:     make([]span, cfg.MaxDatagrams*cfg.MaxFragmentsPerDatagram),
		index:     make(map[Key]int32, cfg.MaxDatagrams),
		slab:      make([]byte, nchunks*ChunkSize),
		freeChunk: make([]int32, nchunks),
		tombs:     make(map[Key]tomb, cfg.MaxDatagrams),
		tombRing:  make([]Key, cfg.MaxDatagrams),
		out:       make([]byte, MaxPayloadIPv6),
	}
	for i := range r.freeChunk {
		r.freeChunk[i] = int32(nchunks - 1 - i)
	}
	for i := range r.slots {
		r.slots[i].next = int32(i + 1)
	}
	r.slots[len(r.slots)-1].next = -1
	r.freeSlot = 0
	r.age[0] = ageList{-1, -1}
	r.age[1] = ageList{-1, -1}
	return r
}

// Config returns the configuration in effect (defaults filled in).
func (r *Reassembler) Config() Config { return r.cfg }

// Stats returns a copy of the counters.
func (r *Reassembler) Stats() Stats { return r.stats }

func fam(k Key) int {
	if k.v6 {
		return 1
	}
	return 0
}

// Add adds a fragment of the datagram k: its payload starts at byte offset
// (the header field × 8) and more is the MF / M flag. header is consulted
// only for the first fragment (offset 0): it is the network header the caller
// wants quoted in an ICMP time exceeded message should the datagram expire;
// it may be nil. payload is copied; neither slice is retained.
//
// When the fragment completes the datagram, Add returns its payload and done
// true; the slice is valid until the next call to Add or Tick. A dropped
// fragment returns one of the package errors.
func (r *Reassembler) Add(now int64, k Key, offset int, more bool, header, payload []byte) (datagram []byte, done bool, err error) {
	r.stats.Fragments++
	n := len(payload)
	if n == 0 || offset < 0 || offset%8 != 0 || (more && n%8 != 0) {
		r.stats.BadFragment++
		return nil, false, ErrBadFragment
	}
	end := offset + n
	if end > k.maxPayload() {
		r.stats.TooBig++
		return nil, false, ErrTooBig
	}
	if offset == 0 && !more {
		r.stats.Atomic++
		return payload, true, nil
	}
	if t, ok := r.tombs[k]; ok {
		if now < t.expires {
			r.stats.Tombstoned++
			return nil, false, ErrTombstoned
		}
		delete(r.tombs, k)
	}
	idx, ok := r.index[k]
	if !ok {
		idx = r.alloc(now, k)
	}
	d := &r.slots[idx]
	start, stop := int32(offset), int32(end)

	// Length rules (RFC 791, RFC 8200): the last fragment fixes the total.
	if !more {
		if (d.total >= 0 && stop != d.total) || stop < d.maxEnd {
			return r.kill(now, idx, &r.stats.LengthConflict, ErrLengthConflict)
		}
	} else if d.total >= 0 && stop > d.total {
		return r.kill(now, idx, &r.stats.LengthConflict, ErrLengthConflict)
	}

	// Overlap rules (RFC 5722).
	spans := r.spansOf(idx)
	i := 0
	for i < len(spans) && spans[i].start < start {
		i++
	}
	if i < len(spans) && spans[i].start == start && spans[i].end == stop {
		if r.equal(d, offset, payload) {
			r.stats.Duplicate++
			return nil, false, ErrDuplicate
		}
		return r.kill(now, idx, &r.stats.Overlap, ErrOverlap)
	}
	if (i > 0 && spans[i-1].end > start) || (i < len(spans) && spans[i].start < stop) {
		return r.kill(now, idx, &r.stats.Overlap, ErrOverlap)
	}
	if int(d.nfrags) == r.cfg.MaxFragmentsPerDatagram {
		return r.kill(now, idx, &r.stats.TooManyFragments, ErrTooManyFragments)
	}

	// Memory: take the chunks this fragment touches, evicting old datagrams.
	need := 0
	for c := start / ChunkSize; c <= (stop-1)/ChunkSize; c++ {
		if d.chunks[c] < 0 {
			need++
		}
	}
	if int(d.nchunks)+need > cap(r.freeChunk) {
		r.stats.NoSpace++
		r.drop(idx)
		return nil, false, ErrNoSpace
	}
	for len(r.freeChunk) < need {
		if !r.evictOldest(idx) {
			// Unreachable: every other datagram was evicted, so all
			// chunks not held by d are free.
			panic("reasm: chunk accounting broken")
		}
	}
	for c := start / ChunkSize; c <= (stop-1)/ChunkSize; c++ {
		if d.chunks[c] < 0 {
			last := len(r.freeChunk) - 1
			d.chunks[c] = r.freeChunk[last]
			r.freeChunk = r.freeChunk[:last]
			d.nchunks++
			r.stats.BytesHeld += ChunkSize
		}
	}
	for pos := start; pos < stop; {
		c := pos / ChunkSize
		off := pos % ChunkSize
		base := d.chunks[c] * ChunkSize
		m := copy(r.slab[base+off:base+ChunkSize], payload[pos-start:])
		pos += int32(m)
	}

	// Record the extent.
	all := r.spans[int(idx)*r.cfg.MaxFragmentsPerDatagram:][:d.nfrags+1]
	copy(all[i+1:], all[i:d.nfrags])
	all[i] = span{start, stop}
	d.nfrags++
	d.have += stop - start
	d.maxEnd = max(d.maxEnd, stop)
	if !more {
		d.total = stop
	}
	if start == 0 {
		d.first = true
		h := copy(d.quote[:MaxQuoteHeader], header)
		d.hdrLen = uint8(h)
		d.dataLen = uint8(copy(d.quote[h:h+quoteData], payload))
	}

	if d.total >= 0 && d.have == d.total {
		total := int(d.total)
		for c := 0; c*ChunkSize < total; c++ {
			base := int(d.chunks[c]) * ChunkSize
			copy(r.out[c*ChunkSize:total], r.slab[base:base+ChunkSize])
		}
		r.stats.Complete++
		r.drop(idx)
		return r.out[:total], true, nil
	}
	return nil, false, nil
}

func (r *Reassembler) spansOf(idx int32) []span {
	m := r.cfg.MaxFragmentsPerDatagram
	return r.spans[int(idx)*m:][:r.slots[idx].nfrags]
}

// equal reports whether payload matches the bytes held at offset.
func (r *Reassembler) equal(d *datagram, offset int, payload []byte) bool {
	for pos := 0; pos < len(payload); {
		c := (offset + pos) / ChunkSize
		off := (offset + pos) % ChunkSize
		base := int(d.chunks[c]) * ChunkSize
		held := r.slab[base+off : base+ChunkSize]
		m := min(len(held), len(payload)-pos)
		if string(held[:m]) != string(payload[pos:pos+m]) {
			return false
		}
		pos += m
	}
	return true
}

// kill drops datagram idx for a fatal error and leaves a tombstone.
func (r *Reassembler) kill(now int64, idx int32, counter *uint64, err error) ([]byte, bool, error) {
	*counter++
	k := r.slots[idx].key
	r.drop(idx)
	r.bury(now, k)
	return nil, false, err
}

// bury remembers k until its family's timeout, in a bounded ring.
func (r *Reassembler) bury(now int64, k Key) {
	if int(r.tombN) == len(r.tombRing) {
		old := r.tombRing[r.tombPos]
		if t, ok := r.tombs[old]; ok && t.pos == r.tombPos {
			delete(r.tombs, old)
		}
	} else {
		r.tombN++
	}
	r.tombRing[r.tombPos] = k
	r.tombs[k] = tomb{expires: now + r.timeout[fam(k)], pos: r.tombPos}
	r.tombPos++
	if int(r.tombPos) == len(r.tombRing) {
		r.tombPos = 0
	}
}

// alloc takes a slot for k, evicting the oldest datagram if none is free.
func (r *Reassembler) alloc(now int64, k Key) int32 {
	if r.freeSlot < 0 {
		r.evictOldest(-1)
	}
	idx := r.freeSlot
	d := &r.slots[idx]
	r.freeSlot = d.next
	*d = datagram{key: k, expires: now + r.timeout[fam(k)], total: -1}
	for i := range d.chunks {
		d.chunks[i] = -1
	}
	l := &r.age[fam(k)]
	d.prev, d.next = l.tail, -1
	if l.tail >= 0 {
		r.slots[l.tail].next = idx
	} else {
		l.head = idx
	}
	l.tail = idx
	r.index[k] = idx
	r.stats.Datagrams++
	return idx
}

// drop frees datagram idx: its chunks, its slot and its index entry.
func (r *Reassembler) drop(idx int32) {
	d := &r.slots[idx]
	for c, ch := range d.chunks {
		if ch >= 0 {
			r.freeChunk = append(r.freeChunk, ch)
			d.chunks[c] = -1
		}
	}
	r.stats.BytesHeld -= int(d.nchunks) * ChunkSize
	d.nchunks = 0
	l := &r.age[fam(d.key)]
	if d.prev >= 0 {
		r.slots[d.prev].next = d.next
	} else {
		l.head = d.next
	}
	if d.next >= 0 {
		r.slots[d.next].prev = d.prev
	} else {
		l.tail = d.prev
	}
	delete(r.index, d.key)
	d.prev, d.next = -1, r.freeSlot
	r.freeSlot = idx
	r.stats.Datagrams--
}

// evictOldest drops the datagram whose first fragment arrived first (by
// expiry time less its family's timeout), other than except.
func (r *Reassembler) evictOldest(except int32) bool {
	best, bestAge := int32(-1), int64(math.MaxInt64)
	for f := range r.age {
		i := r.age[f].head
		if i == except && i >= 0 {
			i = r.slots[i].next
		}
		if i < 0 {
			continue
		}
		if a := r.slots[i].expires - r.timeout[f]; a < bestAge {
			best, bestAge = i, a
		}
	}
	if best < 0 {
		return false
	}
	r.stats.Evicted++
	r.drop(best)
	return true
}

// Tick drops the datagrams whose timeout has passed at now. For each one
// whose first fragment had arrived it calls expired (if not nil) before the
// datagram's memory is reused, so the caller can send an ICMP time exceeded
// message. expired must not call back into r. It returns the number of
// datagrams dropped.
func (r *Reassembler) Tick(now int64, expired func(Expired)) int {
	n := 0
	for f := range r.age {
		for {
			i := r.age[f].head
			if i < 0 || r.slots[i].expires > now {
				break
			}
			d := &r.slots[i]
			r.stats.Timeout++
			if d.first {
				r.stats.TimeoutQuoted++
				if expired != nil {
					h, m := int(d.hdrLen), int(d.dataLen)
					expired(Expired{Key: d.key, Header: d.quote[:h:h], Data: d.quote[h : h+m : h+m]})
				}
			}
			r.drop(i)
			n++
		}
	}
	return n
}

// Next returns when the earliest datagram expires, or Never.
func (r *Reassembler) Next() int64 {
	next := Never
	for f := range r.age {
		if i := r.age[f].head; i >= 0 {
			next = min(next, r.slots[i].expires)
		}
	}
	return next
}
