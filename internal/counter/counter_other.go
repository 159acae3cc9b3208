//go:build !amd64 && !arm64

package counter

import "sync/atomic"

func add(p *uint64, n uint64) { atomic.AddUint64(p, n) }
