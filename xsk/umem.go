package xsk

import (
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"
)

// Errors callers can test with errors.Is.
var (
	// ErrNotSupported: the kernel or driver lacks a feature (zero-copy on
	// veth answers this).
	ErrNotSupported = errors.New("not supported")
	// ErrBadOptions: an option is out of range.
	ErrBadOptions = errors.New("bad options")
	// ErrClosed: the object was closed.
	ErrClosed = errors.New("closed")
)

// UMEMOptions configure a UMEM.
type UMEMOptions struct {
	// FrameSize is 2048 or 4096 bytes.
	FrameSize int
	// NumFrames is the number of frames; the UMEM is FrameSize*NumFrames.
	NumFrames int
	// Headroom is extra space the kernel leaves before the packet in each
	// frame (on top of XDP_PACKET_HEADROOM in copy mode).
	Headroom int
	// HugePages asks for 2 MiB huge pages; without them (none reserved in
	// /proc/sys/vm/nr_hugepages) the UMEM falls back to normal pages and
	// UMEM.HugePages reports false.
	HugePages bool
}

// DefaultUMEMOptions returns 4096 frames of 4096 bytes: enough for one
// socket with 2048-entry fill and completion rings.
func DefaultUMEMOptions() UMEMOptions {
	return UMEMOptions{FrameSize: 4096, NumFrames: 4096}
}

// UMEM is the packet memory shared between user space and the kernel.
type UMEM struct {
	layout
	nframes  uint32
	headroom uint32
	huge     bool
	ownerFD  int // socket that registered the UMEM, -1 before the first
	sockets  int
}

const hugePageSize = 2 << 20

// NewUMEM maps and zeroes the packet memory. It is registered with the
// kernel by the first Socket created on it.
func NewUMEM(opts UMEMOptions) (*UMEM, error) {
	if opts.FrameSize != 2048 && opts.FrameSize != 4096 {
		return nil, fmt.Errorf("umem frame size %d (want 2048 or 4096): %w", opts.FrameSize, ErrBadOptions)
	}
	if opts.NumFrames <= 0 || opts.NumFrames > 1<<24 {
		return nil, fmt.Errorf("umem frame count %d: %w", opts.NumFrames, ErrBadOptions)
	}
	if opts.Headroom < 0 || opts.Headroom > opts.FrameSize/2 {
		return nil, fmt.Errorf("umem headroom %d: %w", opts.Headroom, ErrBadOptions)
	}
	size := opts.FrameSize * opts.NumFrames
	u := &UMEM{
		layout:   layout{frameSize: uint64(opts.FrameSize), frameMask: uint64(opts.FrameSize - 1)},
		nframes:  uint32(opts.NumFrames),
		headroom: uint32(opts.Headroom),
		ownerFD:  -1,
	}
	var err error
	if opts.HugePages {
		hsize := (size + hugePageSize - 1) &^ (hugePageSize - 1)
		u.mem, err = unix.Mmap(-1, 0, hsize, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE|unix.MAP_HUGETLB)
		if err == nil {
			u.huge = true
			u.mem = u.mem[:size:size]
		} else {
			slog.Debug("umem: huge pages unavailable, using normal pages", "err", err)
		}
	}
	if u.mem == nil {
		u.mem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("mmap umem of %d bytes: %w", size, err)
		}
	}
	return u, nil
}

// Close unmaps the memory. Every Socket on the UMEM must be closed first.
func (u *UMEM) Close() error {
	if u.mem == nil {
		return nil
	}
	if u.sockets > 0 {
		return fmt.Errorf("umem close: %d sockets still open", u.sockets)
	}
	mem := u.mem
	u.mem = nil
	return unix.Munmap(mem[:cap(mem)])
}

// FrameSize is the size of one frame.
func (u *UMEM) FrameSize() int { return int(u.frameSize) }

// NumFrames is the number of frames.
func (u *UMEM) NumFrames() int { return int(u.nframes) }

// Size is the size of the UMEM in bytes.
func (u *UMEM) Size() int { return len(u.mem) }

// HugePages reports whether the UMEM is backed by huge pages.
func (u *UMEM) HugePages() bool { return u.huge }

// Headroom is the configured headroom.
func (u *UMEM) Headroom() int { return int(u.headroom) }

// FrameAddr returns the address of frame i.
func (u *UMEM) FrameAddr(i int) uint64 { return uint64(i) * u.frameSize }

// FrameBase rounds an address down to the start of its frame.
func (u *UMEM) FrameBase(addr uint64) uint64 { return addr &^ u.frameMask }

// Valid reports whether [addr, addr+n) lies inside one frame of the UMEM.
func (u *UMEM) Valid(addr uint64, n uint32) bool { return u.layout.valid(addr, n) }

// Bytes returns the n bytes at addr. The caller must have checked Valid
// (Socket.Receive does).
func (u *UMEM) Bytes(addr uint64, n uint32) []byte { return u.layout.bytes(addr, n) }

// layout is where a UMEM's frames lie: all that the per-frame checks
// read. Each Socket keeps a copy next to its rings, so that a wakeup does
// not touch the UMEM's own struct, a page of its own (a poll-mode worker
// pays for every page it touches after a system call; see Socket.Bytes).
// The memory stays mapped while sockets are open (Close refuses).
type layout struct {
	mem       []byte
	frameSize uint64
	frameMask uint64
}

func (l *layout) valid(addr uint64, n uint32) bool {
	return addr < uint64(len(l.mem)) && uint64(n) <= l.frameSize-(addr&l.frameMask)
}

func (l *layout) bytes(addr uint64, n uint32) []byte {
	return l.mem[addr : addr+uint64(n) : addr+uint64(n)]
}

// Frame returns the whole frame that contains addr, from its first byte.
// The caller must have checked that addr is inside the UMEM.
func (u *UMEM) Frame(addr uint64) []byte {
	base := addr &^ u.frameMask
	return u.mem[base : base+u.frameSize : base+u.frameSize]
}

// Memory returns the whole UMEM.
func (u *UMEM) Memory() []byte { return u.mem }

// FramePool is a LIFO stack of free frame addresses owned by one worker
// goroutine. Frames come back to the pool that last gave them out; a frame
// may move between sockets that share the UMEM and the pool.
type FramePool struct {
	umem   *UMEM
	addrs  []uint64
	total  int
	lo, hi uint64 // address range of the pool's own frames
	mask   uint64 // the UMEM's frame mask
	// Foreign, if set, takes frames of other pools that reach Put (a frame
	// handed to another shard comes back through the completion ring or a
	// drop of the shard that received it) so they can be returned to
	// their owner. Without it such a Put is a broken invariant and panics.
	Foreign func(addr uint64)
}

// NewFramePool returns a pool holding frames [first, first+n) of u. Give
// each worker its own disjoint range.
func NewFramePool(u *UMEM, first, n int) (*FramePool, error) {
	if first < 0 || n < 0 || first+n > int(u.nframes) {
		return nil, fmt.Errorf("frame pool [%d,%d) outside umem of %d frames: %w", first, first+n, u.nframes, ErrBadOptions)
	}
	p := &FramePool{umem: u, addrs: make([]uint64, 0, n), total: n, lo: u.FrameAddr(first), hi: u.FrameAddr(first + n), mask: u.frameMask}
	for i := first + n - 1; i >= first; i-- {
		p.addrs = append(p.addrs, u.FrameAddr(i))
	}
	return p, nil
}

// UMEM returns the pool's UMEM.
func (p *FramePool) UMEM() *UMEM { return p.umem }

// Len is the number of free frames in the pool.
func (p *FramePool) Len() int { return len(p.addrs) }

// Total is the number of frames the pool was made with.
func (p *FramePool) Total() int { return p.total }

// Get takes one frame; ok is false when the pool is empty.
func (p *FramePool) Get() (addr uint64, ok bool) {
	n := len(p.addrs)
	if n == 0 {
		return 0, false
	}
	addr = p.addrs[n-1]
	p.addrs = p.addrs[:n-1]
	return addr, true
}

// Put returns a frame (any address inside it) to the pool. Putting more
// frames than the pool was made with means a frame was doubled: that is a
// broken invariant and panics.
func (p *FramePool) Put(addr uint64) {
	// Small enough to inline: the per-frame cost on every drop and
	// completion is a compare and a store.
	base := addr &^ p.mask
	n := len(p.addrs)
	if base-p.lo >= p.hi-p.lo || n == cap(p.addrs) {
		p.putSlow(base)
		return
	}
	p.addrs = p.addrs[:n+1]
	p.addrs[n] = base
}

// PutN returns many frames at once: Put for each address, without a call
// per frame.
func (p *FramePool) PutN(addrs []uint64) {
	free, lo, span := p.addrs, p.lo, p.hi-p.lo
	for _, a := range addrs {
		base := a &^ p.mask
		n := len(free)
		if base-lo >= span || n == cap(free) {
			p.addrs = free
			p.putSlow(base)
			free = p.addrs
			continue
		}
		free = free[:n+1]
		free[n] = base
	}
	p.addrs = free
}

func (p *FramePool) putSlow(base uint64) {
	if base < p.lo || base >= p.hi {
		if p.Foreign == nil {
			panic("xsk: frame of another pool freed here")
		}
		p.Foreign(base)
		return
	}
	panic("xsk: frame pool overflow: a frame was freed twice")
}

// Owns reports whether addr lies in one of the pool's own frames.
func (p *FramePool) Owns(addr uint64) bool {
	base := addr &^ p.umem.frameMask
	return base >= p.lo && base < p.hi
}
