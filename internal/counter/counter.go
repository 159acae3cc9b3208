// Package counter provides single-writer statistics counters: one
// goroutine adds, any goroutine reads.
//
// sync/atomic's Add is a locked read-modify-write (LOCK XADD on amd64). A
// locked instruction waits until every earlier store has left the store
// buffer, and in a packet loop those stores are ring entries and packet
// headers whose cache lines another CPU holds: each is a miss. A counter
// with one writer needs no read-modify-write, only a store that a
// concurrent reader sees whole, which a plain aligned MOV (amd64) or STR
// (arm64) is. sync/atomic has no such store: on amd64 it is a plain Go
// store (counter_amd64.go says why that is sound), on arm64 assembly;
// other architectures and race builds fall back to sync/atomic. The same
// few lines give xsk the release store it publishes ring indices with.
package counter

import "sync/atomic"

// Counter is a uint64 that one goroutine increments and any goroutine
// reads. The zero value is zero. It must not be copied after first use.
// The word is an atomic.Uint64, which keeps it 8-byte aligned on 32-bit
// platforms too (64-bit atomic loads need that) and lets vet flag copies.
type Counter struct {
	v atomic.Uint64
}

// Add adds n. Only one goroutine may call Add on a Counter.
func (c *Counter) Add(n uint64) { add(&c.v, n) }

// Load returns the value; safe from any goroutine.
func (c *Counter) Load() uint64 { return c.v.Load() }
