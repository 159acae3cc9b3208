//go:build amd64 || arm64

package xsk

// storeRelease32 is a store-release of v to *p (store_amd64.s,
// store_arm64.s).
//
//go:noescape
func storeRelease32(p *uint32, v uint32)
