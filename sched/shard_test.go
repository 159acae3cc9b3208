package sched_test

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/tygress/tygress/sched"
)

func TestNewShardMap(t *testing.T) {
	for _, n := range []int{-1, 0, math.MaxUint32 + 1} {
		if _, err := sched.NewShardMap(n); !errors.Is(err, sched.ErrShardCount) {
			t.Errorf("NewShardMap(%d) = %v, want ErrShardCount", n, err)
		}
	}
	var zero sched.ShardMap
	if zero.N() != 1 || zero.Shard(math.MaxUint32) != 0 {
		t.Errorf("zero ShardMap: N %d, Shard %d", zero.N(), zero.Shard(math.MaxUint32))
	}
}

// TestShard checks Shard against floor(h*n / 2^32) computed with big
// integers, its range, its ends, and its balance.
func TestShard(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 5, 7, 8, 12, 64, 1000, math.MaxUint32} {
		m, err := sched.NewShardMap(n)
		if err != nil {
			t.Fatal(err)
		}
		if m.N() != n {
			t.Errorf("N() = %d, want %d", m.N(), n)
		}
		if s := m.Shard(0); s != 0 {
			t.Errorf("n=%d: Shard(0) = %d", n, s)
		}
		if s := m.Shard(math.MaxUint32); s != n-1 {
			t.Errorf("n=%d: Shard(max) = %d, want %d", n, s, n-1)
		}
		for range 10000 {
			h := rng.Uint32()
			ref := new(big.Int).Mul(big.NewInt(int64(h)), big.NewInt(int64(n)))
			ref.Rsh(ref, 32)
			if s := m.Shard(h); int64(s) != ref.Int64() || s < 0 || s >= n {
				t.Fatalf("n=%d: Shard(%#x) = %d, want %d", n, h, s, ref.Int64())
			}
		}
	}
	// Balance: with evenly spread hashes every shard gets its share
	// (fastrange splits 2^32 into n intervals of equal length ±1).
	for _, n := range []int{3, 6, 7} {
		m, _ := sched.NewShardMap(n)
		counts := make([]int, n)
		const samples = 1 << 16
		for i := range samples {
			counts[m.Shard(uint32(i)<<16|uint32(i)&0xffff)]++
		}
		for s, c := range counts {
			if want := samples / n; c < want-1 || c > want+1 {
				t.Errorf("n=%d: shard %d got %d of %d hashes", n, s, c, samples)
			}
		}
	}
	m, _ := sched.NewShardMap(4)
	if a := testing.AllocsPerRun(100, func() { _ = m.Shard(12345) }); a != 0 {
		t.Errorf("Shard allocates %v", a)
	}
}

// mix is a stand-in flow hash: a seeded 32-bit finaliser of the port
// (murmur3 fmix32), well mixed in its high bits as ShardMap requires.
func mix(seed uint32) func(uint16) uint32 {
	return func(p uint16) uint32 {
		h := uint32(p) ^ seed
		h ^= h >> 16
		h *= 0x85ebca6b
		h ^= h >> 13
		h *= 0xc2b2ae35
		h ^= h >> 16
		return h
	}
}

func TestPortForShard(t *testing.T) {
	const lo, hi = 32768, 60999 // Linux's default ephemeral range
	for _, n := range []int{1, 2, 3, 8} {
		m, _ := sched.NewShardMap(n)
		hash := mix(uint32(n) * 0x9e3779b9)
		for shard := range n {
			for _, start := range []uint16{lo, 40000, hi, 0, 65535} {
				p, ok := m.PortForShard(hash, shard, lo, hi, start)
				if !ok {
					t.Fatalf("n=%d shard=%d start=%d: no port", n, shard, start)
				}
				if p < lo || p > hi || m.Shard(hash(p)) != shard {
					t.Fatalf("n=%d shard=%d: port %d (shard %d)", n, shard, p, m.Shard(hash(p)))
				}
				// It is the first match at or after start, wrapping.
				s := start
				if s < lo || s > hi {
					s = lo
				}
				for q := s; q != p; {
					if m.Shard(hash(q)) == shard {
						t.Fatalf("n=%d shard=%d start=%d: returned %d, but %d matches earlier", n, shard, start, p, q)
					}
					if q == hi {
						q = lo
					} else {
						q++
					}
				}
			}
		}
	}

	m, _ := sched.NewShardMap(4)
	hash := mix(7)
	// The whole port space, starting at the top, wraps to 0.
	if p, ok := m.PortForShard(hash, 2, 0, 65535, 65535); !ok || m.Shard(hash(p)) != 2 {
		t.Errorf("full range: %d, %v", p, ok)
	}
	// A single-port range.
	p0, _ := m.PortForShard(hash, 0, 0, 65535, 0)
	if p, ok := m.PortForShard(hash, 0, p0, p0, p0); !ok || p != p0 {
		t.Errorf("single port %d: got %d, %v", p0, p, ok)
	}
	// No port can map to shard 3 if the hash puts everything on shard 0.
	if _, ok := m.PortForShard(func(uint16) uint32 { return 0 }, 3, 1000, 2000, 1500); ok {
		t.Error("found a port for an unreachable shard")
	}
	for _, shard := range []int{-1, 4} {
		if _, ok := m.PortForShard(hash, shard, 1000, 2000, 1000); ok {
			t.Errorf("shard %d out of range accepted", shard)
		}
	}
	if _, ok := m.PortForShard(hash, 0, 2000, 1000, 1500); ok {
		t.Error("lo > hi accepted")
	}
}

func BenchmarkShard(b *testing.B) {
	m, _ := sched.NewShardMap(6)
	b.ReportAllocs()
	s := 0
	for i := range b.N {
		s += m.Shard(uint32(i) * 0x9e3779b9)
	}
	_ = s
}
