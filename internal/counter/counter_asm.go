//go:build amd64 || arm64

package counter

// store64 writes v to *p with one aligned store, without a lock prefix
// or barrier (counter_amd64.s, counter_arm64.s).
//
//go:noescape
func store64(p *uint64, v uint64)

// add is the single writer's increment: its own last value plus n,
// published by one plain store.
func add(p *uint64, n uint64) { store64(p, *p+n) }
