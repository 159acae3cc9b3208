package lb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Maglev table sizes. The paper (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4) needs a
// prime size M so that every skip in [1, M-1] visits all positions, and M
// much larger than the number of backends so that shares stay even.
const (
	DefaultTableSize = 65537
	MinTableSize     = 101
	MaxTableSize     = 16777213 // largest prime below 2^24
	// MaxBackends bounds the backends of one table: entries are uint16 and
	// noBackend is reserved.
	MaxBackends = 65535
	// MaxWeight bounds a backend's weight. The population loop gives a
	// backend of weight w one turn in w/maxWeight of the rounds, so the
	// ratio of the largest to the smallest non-zero weight bounds the work.
	MaxWeight = 65535
)

const noBackend = 0xffff

// ErrTableSize is returned (wrapped) for a table size that is not a prime
// in [MinTableSize, MaxTableSize].
var ErrTableSize = errors.New("bad maglev table size")

// MaglevBackend is one backend as the Maglev population sees it: a stable
// key (its identity; the same backend must give the same key in every
// configuration, so use its address and port, not its position) and a
// weight (0: drained, it gets no entries).
type MaglevBackend struct {
	Key    []byte
	Weight uint32
}

// Maglev is an immutable Maglev lookup table: entry i holds the index (in
// the slice given to NewMaglev) of the backend that owns hash bucket i.
// Build a new table for every change of backends (off the hot path) and
// swap it in; Lookup only reads and never allocates, so a table can be
// shared by any number of goroutines.
type Maglev struct {
	entries []uint16
	n       int // backends with weight > 0
}

// IsPrime reports whether n is prime (trial division; n is small).
func IsPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := uint32(3); d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// CheckTableSize returns nil if m is a usable table size (see ErrTableSize).
func CheckTableSize(m uint32) error {
	switch {
	case m < MinTableSize:
		return fmt.Errorf("%w: %d is below the minimum %d", ErrTableSize, m, MinTableSize)
	case m > MaxTableSize:
		return fmt.Errorf("%w: %d is above the maximum %d", ErrTableSize, m, MaxTableSize)
	case !IsPrime(m):
		return fmt.Errorf("%w: %d is not prime", ErrTableSize, m)
	}
	return nil
}

// hashKey hashes a backend key with seed: FNV-1a over the bytes, then the
// splitmix64 finalizer so that keys differing in one byte spread over all
// bits. It only has to be stable across runs and versions, not fast.
func hashKey(key []byte, seed uint64) uint64 {
	h := uint64(14695981039346656037) ^ seed
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Seeds of the two backend hashes (offset and skip), fixed so that tables
// are the same on every balancer of a fleet.
const (
	seedOffset = 0x5bd1e9955bd1e995
	seedSkip   = 0xc2b2ae3d27d4eb4f
)

// NewMaglev populates a table of size m (a prime, see CheckTableSize) for
// the backends. Backends of weight w > 0 get close to w/sum(w) of the
// entries; weight 0 backends get none. Backend i's permutation is
// offset(i) + j*skip(i) mod m with offset and skip from two hashes of its
// key, so the table depends only on the keys, weights and m, not on the
// order in which backends are listed or on the process. Keys must be
// unique.
//
// Weights (the paper leaves them open): the population runs in rounds; in
// each round every backend earns its weight in credit and takes one entry
// per maxWeight credit, so the backend of largest weight takes one entry
// per round and the others proportionally fewer.
func NewMaglev(backends []MaglevBackend, m uint32) (*Maglev, error) {
	if err := CheckTableSize(m); err != nil {
		return nil, err
	}
	if len(backends) > MaxBackends {
		return nil, fmt.Errorf("maglev: %d backends, at most %d", len(backends), MaxBackends)
	}
	t := &Maglev{entries: make([]uint16, m)}
	for i := range t.entries {
		t.entries[i] = noBackend
	}
	type perm struct {
		offset, skip, next uint64
		credit             uint64
		weight             uint64
		idx                uint16
		key                []byte
	}
	var maxW uint64
	ps := make([]perm, 0, len(backends))
	for i, b := range backends {
		if b.Weight > MaxWeight {
			return nil, fmt.Errorf("maglev: backend %d weight %d above %d", i, b.Weight, MaxWeight)
		}
		if b.Weight == 0 {
			continue
		}
		ps = append(ps, perm{
			offset: hashKey(b.Key, seedOffset) % uint64(m),
			skip:   hashKey(b.Key, seedSkip)%uint64(m-1) + 1,
			weight: uint64(b.Weight),
			idx:    uint16(i),
			key:    b.Key,
		})
		maxW = max(maxW, uint64(b.Weight))
	}
	t.n = len(ps)
	if len(ps) == 0 {
		return t, nil
	}
	if uint64(len(ps)) >= uint64(m) {
		return nil, fmt.Errorf("%w: %d is not larger than the %d backends", ErrTableSize, m, len(ps))
	}
	// Backends take turns in key order, so that the order of the slice
	// (of the configuration) does not change the table.
	slices.SortFunc(ps, func(a, b perm) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(ps); i++ {
		if bytes.Equal(ps[i-1].key, ps[i].key) {
			return nil, fmt.Errorf("maglev: backends %d and %d have the same key", ps[i-1].idx, ps[i].idx)
		}
	}
	filled := uint64(0)
	for {
		for i := range ps {
			p := &ps[i]
			p.credit += p.weight
			if p.credit < maxW {
				continue
			}
			p.credit -= maxW
			// Next free position in p's permutation. It exists: the
			// table is not full, and the permutation visits every slot.
			for {
				c := (p.offset + p.next*p.skip) % uint64(m)
				p.next++
				if t.entries[c] == noBackend {
					t.entries[c] = p.idx
					break
				}
			}
			filled++
			if filled == uint64(m) {
				return t, nil
			}
		}
	}
}

// Size returns the number of entries.
func (t *Maglev) Size() int { return len(t.entries) }

// Backends returns the number of backends with entries (weight > 0).
func (t *Maglev) Backends() int { return t.n }

// Lookup returns the index of the backend for a flow hash, or -1 when no
// backend has a weight above 0. The hash is mapped onto the table with a
// multiply-shift (Lemire's fast range reduction) instead of a division.
func (t *Maglev) Lookup(hash uint32) int {
	if t == nil || len(t.entries) == 0 {
		return -1
	}
	hi, _ := bits.Mul64(uint64(hash)<<32, uint64(len(t.entries)))
	b := t.entries[hi]
	if b == noBackend {
		return -1
	}
	return int(b)
}

// Counts returns how many entries each of n backends owns.
func (t *Maglev) Counts(n int) []int {
	c := make([]int, n)
	for _, e := range t.entries {
		if int(e) < n {
			c[e]++
		}
	}
	return c
}

// backendKey is the stable Maglev key of a backend: its 16-byte address
// (IPv4-mapped for IPv4) and its port.
func backendKey(addr [16]byte, port uint16) []byte {
	k := make([]byte, 18)
	copy(k, addr[:])
	binary.BigEndian.PutUint16(k[16:], port)
	return k
}
