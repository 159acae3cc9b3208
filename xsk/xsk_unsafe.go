package xsk

// All of xsk's unsafe code lives in this file: struct socket options and
// laying typed views over the mmap'ed rings.

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/internal/counter"
)

func setsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) (uintptr, error) {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return uintptr(l), nil
}

func registerUMEM(fd int, mem []byte, frameSize, headroom uint32) error {
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&mem[0]))),
		Len:      uint64(len(mem)),
		Size:     frameSize,
		Headroom: headroom,
	}
	return setsockoptPtr(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	n, err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	if err != nil {
		return off, err
	}
	if n != unsafe.Sizeof(off) {
		// Kernels before 5.4 have no flags field (no need_wakeup).
		return off, fmt.Errorf("xdp mmap offsets: kernel returned %d bytes, want %d: %w", n, unsafe.Sizeof(off), ErrNotSupported)
	}
	return off, nil
}

func kernelStats(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	_, err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

func xdpOptions(fd int) (uint32, error) {
	var o uint32
	_, err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&o), unsafe.Sizeof(o))
	return o, err
}

// mapRing mmaps one ring of n entries of entrySize bytes at the given page
// offset and lays the kernel's producer/consumer/flags words over it.
func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, n, entrySize uint32) (ring, unsafe.Pointer, error) {
	size := int(off.Desc) + int(n)*int(entrySize)
	mem, err := unix.Mmap(fd, pgoff, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, nil, fmt.Errorf("mmap ring: %w", err)
	}
	base := unsafe.Pointer(&mem[0])
	r := ring{
		producer: (*atomic.Uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*atomic.Uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*atomic.Uint32)(unsafe.Add(base, off.Flags)),
		mask:     n - 1,
		size:     n,
		mem:      mem,
	}
	return r, unsafe.Add(base, off.Desc), nil
}

func addrSlice(p unsafe.Pointer, n uint32) []uint64 { return unsafe.Slice((*uint64)(p), n) }
func descSlice(p unsafe.Pointer, n uint32) []Desc   { return unsafe.Slice((*Desc)(p), n) }

// storeRelease publishes an index to the kernel, which reads it with
// smp_load_acquire (net/xdp/xsk_queue.h): a release store is all the
// pairing needs. atomic.Uint32 is its uint32 and nothing else (checked
// below), so the word is reached through the pointer.
func storeRelease(a *atomic.Uint32, v uint32) {
	counter.StoreRelease32((*uint32)(unsafe.Pointer(a)), v)
}

// Compile-time check that atomic.Uint32 is a bare 4-byte word.
var _ [4]byte = [unsafe.Sizeof(atomic.Uint32{})]byte{}

// Compile-time check that Desc matches struct xdp_desc.
var _ [16]byte = [unsafe.Sizeof(Desc{})]byte{}
