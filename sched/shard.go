package sched

import (
	"errors"
	"fmt"
	"math"
)

// ErrShardCount is returned by NewShardMap for a shard count outside
// [1, 2^32-1].
var ErrShardCount = errors.New("shard count out of range")

// ShardMap maps a 32-bit flow hash to the shard that owns the flow, an
// index in [0, N()).
//
// It uses Lemire's multiply-shift range reduction ("fastrange"):
// shard = (hash * n) >> 32. That is one multiplication instead of a
// division, and it is fair for any n, not only powers of two: every shard
// receives either floor(2^32/n) or ceil(2^32/n) of the hash values. It
// depends on the high bits of the hash, so the hash must be well mixed in
// its high bits (a Toeplitz/RSS hash, or a seeded hash with a finaliser);
// a hash whose entropy sits in the low bits (a raw port number) would put
// everything on shard 0.
//
// For both directions of a connection to land on one shard the hash must be
// symmetric (hash(a→b) == hash(b→a)); that is the flow hash's job, not
// ShardMap's.
//
// The zero value maps every hash to shard 0 and has N() == 1.
type ShardMap struct {
	n uint32
}

// NewShardMap returns a ShardMap for n shards, 1 <= n < 2^32.
func NewShardMap(n int) (ShardMap, error) {
	if n < 1 || uint64(n) > math.MaxUint32 {
		return ShardMap{}, fmt.Errorf("%w: %d", ErrShardCount, n)
	}
	return ShardMap{n: uint32(n)}, nil
}

// N returns the number of shards.
func (m ShardMap) N() int { return int(max(m.n, 1)) }

// Shard returns the shard that owns a flow with the given hash. It does not
// allocate or branch.
func (m ShardMap) Shard(hash uint32) int {
	return int(uint32((uint64(hash) * uint64(m.n)) >> 32))
}

// PortForShard finds a local port in [lo, hi] whose flow hash lands on
// shard, for a connection this shard originates: with such a port, the
// peer's replies are delivered to (or handed to) the shard that owns the
// connection, with no cross-core hand-off.
//
// hash(p) must return the flow hash the receive path will compute for the
// reply traffic when the local port is p; it closes over the other three
// parts of the tuple (local address, remote address and port). PortForShard
// tries the ports in order starting at start (clamped into [lo, hi]) and
// wrapping around, so a caller that picks start at random follows RFC 6056's
// randomised search; if the port it returns is in use, it calls again with
// start set to the next port. With n shards and a good hash about n ports
// are tried.
//
// It reports false if shard is not in [0, N()), if lo > hi, or if no port in
// the range maps to shard.
func (m ShardMap) PortForShard(hash func(port uint16) uint32, shard int, lo, hi, start uint16) (uint16, bool) {
	if shard < 0 || shard >= m.N() || lo > hi {
		return 0, false
	}
	if start < lo || start > hi {
		start = lo
	}
	span := uint32(hi-lo) + 1
	off := uint32(start - lo)
	for i := range span {
		p := lo + uint16((off+i)%span)
		if m.Shard(hash(p)) == shard {
			return p, true
		}
	}
	return 0, false
}
