package link

import (
	"fmt"

	"github.com/tygress/tygress/pipeline"
)

// Buffer states.
const (
	bufFree   = iota // on the free list
	bufCaller        // the caller owns it (received or allocated)
	bufLink          // the link holds it: queued for transmit, on the wire, held by faults
)

// Buffer pools of a slab.
const (
	poolRx = 0 // buffers frames are received into
	poolTx = 1 // buffers Alloc hands out
)

// slab is the packet memory of the Packet and Mem links: n equal buffers in
// one byte slice, split into a receive pool (buffers [0, split)) and a
// transmit pool (the rest), each a LIFO free list of buffer indices. A
// buffer always returns to its own pool, so a caller that allocates every
// transmit buffer cannot starve reception, as a NIC's rx ring and a
// driver's tx buffers are separate. A Frame.Addr is an offset into mem, as
// a UMEM address is an offset into the UMEM.
//
// Each buffer's state is tracked, so a frame released or transmitted twice,
// or released after it was transmitted, is caught at once: Release panics (a
// broken invariant, as in xsk.FramePool) and Transmit counts it invalid.
type slab struct {
	mem      []byte
	size     int // bytes per buffer, a multiple of 64
	headroom int // bytes before Data in allocated and received frames
	split    uint32
	free     [2][]uint32
	state    []uint8
}

// newSlab makes n buffers with room for size bytes after headroom; the
// first rx are the receive pool. rx == n leaves the transmit pool empty
// (the Packet link allocates from the receive pool).
func newSlab(n, rx, size, headroom int) (*slab, error) {
	if n <= 0 || n > 1<<22 || rx < 0 || rx > n {
		return nil, fmt.Errorf("buffer count %d (%d for receiving): %w", n, rx, ErrBadOptions)
	}
	if headroom < 0 || size <= 0 {
		return nil, fmt.Errorf("buffer size %d headroom %d: %w", size, headroom, ErrBadOptions)
	}
	size = (size + headroom + 63) &^ 63
	s := &slab{
		mem:      make([]byte, n*size),
		size:     size,
		headroom: headroom,
		split:    uint32(rx),
		state:    make([]uint8, n),
	}
	s.free[poolRx] = make([]uint32, 0, rx)
	s.free[poolTx] = make([]uint32, 0, n-rx)
	for i := n - 1; i >= 0; i-- { // the lowest buffer is handed out first
		s.free[s.pool(uint32(i))] = append(s.free[s.pool(uint32(i))], uint32(i))
	}
	return s, nil
}

func (s *slab) pool(i uint32) int {
	if i < s.split {
		return poolRx
	}
	return poolTx
}

// total is the number of buffers.
func (s *slab) total() int { return len(s.state) }

// nfree is the number of free buffers in both pools.
func (s *slab) nfree() int { return len(s.free[poolRx]) + len(s.free[poolTx]) }

// get takes a free buffer of pool p for the caller.
func (s *slab) get(p int) (uint32, bool) {
	f := s.free[p]
	n := len(f)
	if n == 0 {
		return 0, false
	}
	i := f[n-1]
	s.free[p] = f[:n-1]
	s.state[i] = bufCaller
	return i, true
}

// put returns buffer i to its pool.
func (s *slab) put(i uint32) {
	if s.state[i] == bufFree {
		panic("link: buffer freed twice")
	}
	s.state[i] = bufFree
	p := s.pool(i)
	s.free[p] = append(s.free[p], i)
}

// frame returns buffer i as a frame of n bytes starting after the headroom;
// Data's capacity reaches the end of the buffer.
func (s *slab) frame(i uint32, n int) pipeline.Frame {
	a := int(i)*s.size + s.headroom
	return pipeline.Frame{Data: s.mem[a : a+n : int(i+1)*s.size], Addr: uint64(a)}
}

// index returns the buffer that holds address addr.
func (s *slab) index(addr uint64) (uint32, bool) {
	if addr >= uint64(len(s.mem)) {
		return 0, false
	}
	return uint32(addr / uint64(s.size)), true
}

// release returns the buffer of a frame the caller owns. A frame of another
// link, or one already released or transmitted, is a broken invariant and
// panics.
func (s *slab) release(f *pipeline.Frame) {
	i, ok := s.index(f.Addr)
	if !ok {
		panic("link: frame of another link released here")
	}
	if s.state[i] != bufCaller {
		panic("link: frame released twice or after Transmit")
	}
	s.put(i)
}

// mine reports whether f views a buffer of this slab at Addr (Data and Addr
// agree), and returns the buffer.
func (s *slab) mine(f *pipeline.Frame) (uint32, bool) {
	i, ok := s.index(f.Addr)
	if !ok || cap(f.Data) == 0 || &f.Data[:1][0] != &s.mem[f.Addr] {
		return i, false
	}
	return i, true
}

// owned checks that f is a non-empty frame of this slab that the caller
// owns, and returns its buffer.
func (s *slab) owned(f *pipeline.Frame) (uint32, bool) {
	i, ok := s.mine(f)
	return i, ok && s.state[i] == bufCaller && len(f.Data) > 0
}

// admit is the check both slab-backed links make on every frame given to
// Transmit: the link must be open and the frame one of this slab's buffers
// that the caller owns, no longer than maxFrame. A refused frame is
// dropped and counted in c; admit returns the frame's buffer and whether
// it may be queued.
func (s *slab) admit(f *pipeline.Frame, closed bool, maxFrame int, c *counters) (uint32, bool) {
	if closed {
		c.local[cTxDown]++
		s.drop(f)
		return 0, false
	}
	b, ok := s.owned(f)
	if !ok || len(f.Data) > maxFrame {
		c.local[cTxInvalid]++
		s.drop(f)
		return 0, false
	}
	return b, true
}

// drop disposes of a frame Transmit refused: its buffer goes back to the
// free list when it is one of ours that the caller owned; anything else (a
// foreign frame, Data and Addr that disagree, a frame transmitted twice)
// is left alone: freeing it could free a buffer still in use.
func (s *slab) drop(f *pipeline.Frame) {
	if i, ok := s.mine(f); ok && s.state[i] == bufCaller {
		s.put(i)
	}
}
