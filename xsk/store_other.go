//go:build !amd64 && !arm64

package xsk

import "sync/atomic"

func storeRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }
