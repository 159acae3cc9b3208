// Package hugemem allocates big pointer-free tables (connection tables,
// hash buckets) in anonymous memory of their own, 2 MiB aligned and
// advised MADV_HUGEPAGE, so that the kernel backs them with transparent
// huge pages where it can ("madvise" or "always" in
// /sys/kernel/mm/transparent_hugepage/enabled). A table looked up at
// random then costs one TLB entry per 2 MiB instead of per 4 KiB: with a
// 50 MB table every lookup is otherwise a TLB miss, and its page walk
// evicts the lines the rest of the data path (the kernel's skbs among
// them) works on.
//
// The memory is outside the Go heap: the garbage collector neither scans
// it (the element type must hold no pointers; Make panics otherwise) nor
// counts it. Pages are faulted in on first touch, so a table that is
// mostly empty costs little.
package hugemem

import (
	"fmt"
	"reflect"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugePageSize is the size of a transparent huge page on x86-64 and arm64
// with 4 KiB pages.
const HugePageSize = 2 << 20

// MinSize is the smallest table Make maps by itself; smaller ones come
// from the Go heap (a huge page would be mostly wasted).
const MinSize = HugePageSize

// Make returns a zeroed slice of n elements and a function that releases
// it (call it once, when nothing uses the slice any more). huge reports
// whether the slice is in memory of its own advised for huge pages;
// otherwise it is an ordinary Go slice (small tables, or mmap or madvise
// refused) and free does nothing. T must not contain pointers.
func Make[T any](n int) (s []T, free func(), huge bool) {
	var zero T
	if err := pointerFree(reflect.TypeOf(zero)); err != nil {
		panic("hugemem: " + err.Error())
	}
	size := int(unsafe.Sizeof(zero)) * n
	if n <= 0 || size < MinSize || size/n != int(unsafe.Sizeof(zero)) {
		return make([]T, n), func() {}, false
	}
	mem, err := mapAligned(size)
	if err != nil {
		return make([]T, n), func() {}, false
	}
	s = unsafe.Slice((*T)(unsafe.Pointer(&mem[0])), n)
	return s, func() { _ = unix.Munmap(mem) }, true
}

// mapAligned maps size bytes (rounded up to huge pages) at a 2 MiB
// aligned address and advises huge pages for them.
func mapAligned(size int) ([]byte, error) {
	size = (size + HugePageSize - 1) &^ (HugePageSize - 1)
	// Map one huge page more, then cut the unaligned head and the tail.
	raw, err := unix.Mmap(-1, 0, size+HugePageSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size+HugePageSize, err)
	}
	base := uintptr(unsafe.Pointer(&raw[0]))
	head := int((HugePageSize - base%HugePageSize) % HugePageSize)
	if head > 0 {
		_ = unix.Munmap(raw[:head])
	}
	if tail := raw[head+size:]; len(tail) > 0 {
		_ = unix.Munmap(tail)
	}
	mem := raw[head : head+size : head+size]
	if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("madvise MADV_HUGEPAGE: %w", err)
	}
	return mem, nil
}

// pointerFree returns an error if values of t can hold pointers.
func pointerFree(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return pointerFree(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if err := pointerFree(t.Field(i).Type); err != nil {
				return fmt.Errorf("%s.%s: %w", t, t.Field(i).Name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%s can hold pointers", t)
}
