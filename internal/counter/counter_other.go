//go:build (!amd64 && !arm64) || (amd64 && race)

package counter

import "sync/atomic"

func add(p *atomic.Uint64, n uint64) { p.Add(n) }

// StoreRelease32 stores v to *p with (at least) release ordering.
func StoreRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
