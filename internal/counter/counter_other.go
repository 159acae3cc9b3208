//go:build !amd64 && !arm64

package counter

import "sync/atomic"

func add(p *uint64, n uint64) { atomic.AddUint64(p, n) }

// StoreRelease32 stores v to *p with (at least) release ordering.
func StoreRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
