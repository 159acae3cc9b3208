//go:build arm64

package counter

import (
	"sync/atomic"
	"unsafe"
)

// store64 writes v to *p with one aligned store, without a barrier
// (counter_arm64.s).
//
//go:noescape
func store64(p *uint64, v uint64)

// StoreRelease32 stores v to *p with release ordering and nothing more:
// STLR. xsk publishes ring indices with it (see xsk/doc.go).
//
//go:noescape
func StoreRelease32(p *uint32, v uint32)

// add is the single writer's increment: its own last value plus n (an
// atomic load is a LDAR), published by one plain store to the
// atomic.Uint64's word.
func add(p *atomic.Uint64, n uint64) { store64((*uint64)(unsafe.Pointer(p)), p.Load()+n) }

// Compile-time check that atomic.Uint64 is its 8-byte word and nothing else.
var _ [8]byte = [unsafe.Sizeof(atomic.Uint64{})]byte{}
