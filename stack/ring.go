package stack

import (
	"encoding/binary"
	"sync/atomic"
)

// dgramHdr is the fixed part of a record in a dgramRing: the payload length
// (4), the remote and local ports (2+2), the family (1), 3 bytes of padding,
// then the remote address (16), the local address (16) and the next hop
// (16, used on the send side only).
const dgramHdr = 4 + 2 + 2 + 1 + 3 + 16 + 16 + 16

// wrapMark in the length field says the producer skipped the rest of the
// buffer: the next record starts at offset 0.
const wrapMark = ^uint32(0)

// dgram is the header of a datagram in a dgramRing.
type dgram struct {
	n       int      // payload length
	rport   uint16   // remote port
	lport   uint16   // local port
	v6      bool     // IPv6 addresses
	raddr   [16]byte // remote address (IPv4 in the first 4 bytes)
	laddr   [16]byte // local address
	nexthop [16]byte // send side: the next hop chosen by the route lookup
}

// dgramRing is a single-producer single-consumer queue of datagrams in one
// byte buffer, records stored contiguously (a record that does not fit
// before the end of the buffer starts again at offset 0). It bounds memory
// by bytes, like a socket buffer. The producer and the consumer each own
// their index and read the other's with an atomic load; nothing is
// allocated after newDgramRing.
type dgramRing struct {
	buf  []byte
	mask uint64
	_    [64]byte
	head atomic.Uint64 // consumer position (bytes, monotonic)
	_    [56]byte
	tail atomic.Uint64 // producer position
	_    [56]byte
}

// newDgramRing returns a ring of at least size bytes (a power of two, at
// least 4 KiB).
func newDgramRing(size int) *dgramRing {
	n := 4096
	for n < size {
		n <<= 1
	}
	return &dgramRing{buf: make([]byte, n), mask: uint64(n - 1)}
}

func recordLen(n int) uint64 { return uint64(dgramHdr+n+7) &^ 7 }

// empty reports whether the ring holds no record (either side may call it).
func (r *dgramRing) empty() bool { return r.head.Load() == r.tail.Load() }

// reserve returns the offset where a record of n payload bytes can be
// written, handling the wrap, or false when there is no room. Producer only.
func (r *dgramRing) reserve(n int) (uint64, bool) {
	size := uint64(len(r.buf))
	need := recordLen(n)
	if need > size/2 {
		return 0, false
	}
	tail := r.tail.Load()
	free := size - (tail - r.head.Load())
	off := tail & r.mask
	if off+need > size {
		// Skip to the start; the skipped bytes count as used.
		skip := size - off
		if free < skip+need {
			return 0, false
		}
		binary.LittleEndian.PutUint32(r.buf[off:], wrapMark)
		tail += skip
		r.tail.Store(tail)
		return 0, true
	}
	if free < need {
		return 0, false
	}
	return off, true
}

// push appends a datagram with the payload parts p1 and p2 (p2 may be
// empty), or returns false when the ring is full. Producer only.
func (r *dgramRing) push(h *dgram, p1, p2 []byte) bool {
	n := len(p1) + len(p2)
	off, ok := r.reserve(n)
	if !ok {
		return false
	}
	b := r.buf[off : off+recordLen(n)]
	binary.LittleEndian.PutUint32(b[0:], uint32(n))
	binary.LittleEndian.PutUint16(b[4:], h.rport)
	binary.LittleEndian.PutUint16(b[6:], h.lport)
	b[8] = 0
	if h.v6 {
		b[8] = 1
	}
	copy(b[12:28], h.raddr[:])
	copy(b[28:44], h.laddr[:])
	copy(b[44:60], h.nexthop[:])
	copy(b[dgramHdr:], p1)
	copy(b[dgramHdr+len(p1):], p2)
	r.tail.Store(r.tail.Load() + recordLen(n))
	return true
}

// peek returns the header and payload of the oldest datagram without
// removing it; the payload views the ring until pop. Consumer only.
func (r *dgramRing) peek(h *dgram) ([]byte, bool) {
	for {
		head := r.head.Load()
		if head == r.tail.Load() {
			return nil, false
		}
		off := head & r.mask
		b := r.buf[off:]
		n := binary.LittleEndian.Uint32(b)
		if n == wrapMark {
			r.head.Store(head + uint64(len(r.buf)) - off)
			continue
		}
		h.n = int(n)
		h.rport = binary.LittleEndian.Uint16(b[4:])
		h.lport = binary.LittleEndian.Uint16(b[6:])
		h.v6 = b[8] == 1
		copy(h.raddr[:], b[12:28])
		copy(h.laddr[:], b[28:44])
		copy(h.nexthop[:], b[44:60])
		return b[dgramHdr : dgramHdr+int(n)], true
	}
}

// pop removes the datagram peek returned. Consumer only.
func (r *dgramRing) pop(h *dgram) {
	r.head.Store(r.head.Load() + recordLen(h.n))
}
