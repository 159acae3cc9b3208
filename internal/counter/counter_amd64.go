//go:build amd64 && !race

package counter

import (
	"sync/atomic"
	"unsafe"
)

// On amd64 both stores are plain Go stores: a MOV, which x86-TSO never
// reorders with earlier stores, so it is a release store, and the
// compiler keeps stores in program order. Assembly gave the same MOV
// behind a call the compiler cannot inline, after which it reloads g
// from thread-local storage: on a kernel whose system calls empty the
// TLB, one more page walk per wakeup of a polling worker, besides the
// page of the stubs. A concurrent Load races with the store in the
// memory model's terms, which still defines the outcome for a word: the
// reader sees one of the values written, whole. The race detector does
// not know that, so race builds take the atomic fallback
// (counter_other.go).

func add(p *atomic.Uint64, n uint64) { *(*uint64)(unsafe.Pointer(p)) = p.Load() + n }

// StoreRelease32 stores v to *p with release ordering and nothing more:
// a plain MOV. xsk publishes ring indices with it (see xsk/doc.go).
func StoreRelease32(p *uint32, v uint32) { *p = v }
