package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/peer"
)

// ringHdr are the kernel-shared words of one ring. The kernel
// (net/xdp/xsk_queue.h) pairs smp_load_acquire of our index with
// smp_store_release of its own; Go's atomics are at least that strong.
type ringHdr struct {
	prod, cons *atomic.Uint32
	flags      *atomic.Uint32
	mask       uint32
	mem        []byte
}

type fillRing struct {
	ringHdr
	addrs      []uint64
	cachedProd uint32
}

// next is the index of the first free slot. The fill ring has as many
// entries as the socket has frames in flight, so a recycled batch always
// fits and no free-space check is needed.
func (f *fillRing) next() uint32 { return f.cachedProd }

func (f *fillRing) submit(n uint32) {
	f.cachedProd += n
	f.prod.Store(f.cachedProd)
}

func (f *fillRing) needWakeup() bool { return f.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0 }

type rxRing struct {
	ringHdr
	descs      []unix.XDPDesc
	cachedProd uint32
	cachedCons uint32
}

// peek returns up to max descriptors, reading the kernel's producer index
// only when the cached view is empty.
func (r *rxRing) peek(max uint32) (n, idx uint32) {
	avail := r.cachedProd - r.cachedCons
	if avail == 0 {
		r.cachedProd = r.prod.Load()
		avail = r.cachedProd - r.cachedCons
	}
	return min(avail, max), r.cachedCons
}

func (r *rxRing) release(n uint32) {
	r.cachedCons += n
	r.cons.Store(r.cachedCons)
}

type socket struct {
	fd   int
	umem []byte
	fill fillRing
	comp ringHdr
	rx   rxRing
}

func newSocket(ifindex, queue, frames, ringSize int, bindFlags uint16) (s *socket, err error) {
	if frames < ringSize {
		return nil, errors.New("need at least as many frames as fill ring entries")
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_XDP): %w", err)
	}
	s = &socket{fd: fd}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	const frameSize = 4096
	s.umem, err = unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap umem: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&s.umem[0]))), Len: uint64(len(s.umem)), Size: frameSize}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); e != 0 {
		return nil, fmt.Errorf("XDP_UMEM_REG: %w", e)
	}
	for _, o := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o, ringSize); err != nil {
			return nil, fmt.Errorf("ring size option %d: %w", o, err)
		}
	}
	var off unix.XDPMmapOffsets
	l := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return nil, fmt.Errorf("XDP_MMAP_OFFSETS: %w", e)
	}
	n := uint32(ringSize)
	mapRing := func(pgoff int64, o unix.XDPRingOffset, entry uintptr) (ringHdr, unsafe.Pointer, error) {
		mem, err := unix.Mmap(fd, pgoff, int(o.Desc)+ringSize*int(entry), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return ringHdr{}, nil, fmt.Errorf("mmap ring at %#x: %w", pgoff, err)
		}
		b := unsafe.Pointer(&mem[0])
		return ringHdr{
			prod:  (*atomic.Uint32)(unsafe.Add(b, o.Producer)),
			cons:  (*atomic.Uint32)(unsafe.Add(b, o.Consumer)),
			flags: (*atomic.Uint32)(unsafe.Add(b, o.Flags)),
			mask:  n - 1, mem: mem,
		}, unsafe.Add(b, o.Desc), nil
	}
	h, p, err := mapRing(unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, 8)
	if err != nil {
		return nil, err
	}
	s.fill = fillRing{ringHdr: h, addrs: unsafe.Slice((*uint64)(p), n)}
	if s.comp, _, err = mapRing(unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, 8); err != nil {
		return nil, err
	}
	h, p, err = mapRing(unix.XDP_PGOFF_RX_RING, off.Rx, unsafe.Sizeof(unix.XDPDesc{}))
	if err != nil {
		return nil, err
	}
	s.rx = rxRing{ringHdr: h, descs: unsafe.Slice((*unix.XDPDesc)(p), n)}

	// Give the fill ring one frame per entry; the rest of the UMEM idles.
	for i := range n {
		s.fill.addrs[i] = uint64(i) * frameSize
	}
	s.fill.submit(n)

	sa := &unix.SockaddrXDP{Flags: unix.XDP_USE_NEED_WAKEUP | bindFlags, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err := peer.RetryBusy(func() error { return unix.Bind(fd, sa) }); err != nil {
		return nil, fmt.Errorf("bind ifindex %d queue %d: %w", ifindex, queue, err)
	}
	return s, nil
}

func (s *socket) close() {
	for _, m := range [][]byte{s.fill.mem, s.comp.mem, s.rx.mem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	unix.Close(s.fd)
	if s.umem != nil {
		unix.Munmap(s.umem)
	}
}
