package proto_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestFlowKeyAddrs(t *testing.T) {
	k := gfFlow("192.0.2.1", 1, "198.51.100.2", 2, proto.IPProtoTCP)
	if k.Family != proto.FamilyIPv4 || k.SrcAddr() != netip.MustParseAddr("192.0.2.1") || k.DstAddr() != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("IPv4: %v %v", k.SrcAddr(), k.DstAddr())
	}
	// IPv4 addresses are stored IPv4-mapped.
	if netip.AddrFrom16(k.Src) != netip.MustParseAddr("::ffff:192.0.2.1") || netip.AddrFrom16(k.Src).Unmap() != k.SrcAddr() {
		t.Errorf("not IPv4-mapped: %x", k.Src)
	}
	k6 := gfFlow("2001:db8::1", 1, "2001:db8::2", 2, proto.IPProtoUDP)
	if k6.Family != proto.FamilyIPv6 || k6.SrcAddr() != netip.MustParseAddr("2001:db8::1") || k6.DstAddr() != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("IPv6: %v %v", k6.SrcAddr(), k6.DstAddr())
	}
	if (proto.FlowKey{}).SrcAddr().IsValid() {
		t.Errorf("zero key has an address")
	}
	r := k.Reverse()
	if r.SrcAddr() != k.DstAddr() || r.DstAddr() != k.SrcAddr() || r.SrcPort != 2 || r.DstPort != 1 || r.Proto != k.Proto || r.Family != k.Family || r.Reverse() != k {
		t.Errorf("Reverse: %+v", r)
	}
	// SetIPv4 overwrites a previous IPv6 address completely.
	k6.SetIPv4(gfV4("192.0.2.1"), gfV4("198.51.100.2"))
	k6.SrcPort, k6.DstPort, k6.Proto = 1, 2, proto.IPProtoTCP
	if k6 != k {
		t.Errorf("SetIPv4 over IPv6: %+v", k6)
	}
}

// gfRandKey returns a random key of either family.
func gfRandKey(rng *rand.Rand) proto.FlowKey {
	var k proto.FlowKey
	if rng.IntN(2) == 0 {
		var s, d [4]byte
		binary.LittleEndian.PutUint32(s[:], rng.Uint32())
		binary.LittleEndian.PutUint32(d[:], rng.Uint32())
		k.SetIPv4(s, d)
	} else {
		var s, d [16]byte
		binary.LittleEndian.PutUint64(s[:], rng.Uint64())
		binary.LittleEndian.PutUint64(s[8:], rng.Uint64())
		binary.LittleEndian.PutUint64(d[:], rng.Uint64())
		binary.LittleEndian.PutUint64(d[8:], rng.Uint64())
		k.SetIPv6(s, d)
	}
	k.SrcPort, k.DstPort = uint16(rng.Uint32()), uint16(rng.Uint32())
	k.Proto = []uint8{6, 17, 1, 58}[rng.IntN(4)]
	return k
}

func TestFlowKeyHashSymmetric(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		k := gfRandKey(rng)
		seed := rng.Uint64()
		if r := k.Reverse(); k.Hash(seed) != r.Hash(seed) {
			t.Fatalf("Hash(%+v) not symmetric", k)
		}
	}
	// Same endpoints on both sides.
	k := gfFlow("10.0.0.1", 80, "10.0.0.1", 80, 6)
	if r := k.Reverse(); k.Hash(1) != r.Hash(1) {
		t.Error("loopback key")
	}
}

func TestFlowKeyHashSensitivity(t *testing.T) {
	// Every field and the seed change the hash.
	base := gfFlow("192.0.2.1", 1000, "198.51.100.2", 443, proto.IPProtoTCP)
	variants := map[string]proto.FlowKey{}
	k := base
	k.SrcPort++
	variants["src port"] = k
	k = base
	k.DstPort++
	variants["dst port"] = k
	k = base
	k.Proto = proto.IPProtoUDP
	variants["proto"] = k
	k = base
	k.Src[15]++
	variants["src addr"] = k
	k = base
	k.Dst[12] ^= 0x80
	variants["dst addr"] = k
	k = base
	k.SrcPort, k.DstPort = k.DstPort, k.SrcPort // ports swapped, addresses not
	variants["ports swapped"] = k
	k = base
	k.Family = proto.FamilyIPv6
	variants["family"] = k
	h := base.Hash(42)
	for name, v := range variants {
		if v.Hash(42) == h {
			t.Errorf("%s does not change the hash", name)
		}
	}
	if base.Hash(43) == h {
		t.Errorf("seed does not change the hash")
	}
}

// gfChiSquare returns the chi-square statistic of hashes spread over
// shards buckets with Lemire's multiply-shift reduction (mod=false) or a
// modulus.
func gfChiSquare(hashes []uint32, shards int, mod bool) float64 {
	counts := make([]int, shards)
	for _, h := range hashes {
		if mod {
			counts[int(h)%shards]++
		} else {
			counts[int(uint64(h)*uint64(shards)>>32)]++
		}
	}
	exp := float64(len(hashes)) / float64(shards)
	var x2 float64
	for _, c := range counts {
		d := float64(c) - exp
		x2 += d * d / exp
	}
	return x2
}

func TestFlowKeyHashDistribution(t *testing.T) {
	const n = 100000
	rng := rand.New(rand.NewPCG(7, 8))
	sets := map[string]func(i int) proto.FlowKey{
		"random": func(int) proto.FlowKey { return gfRandKey(rng) },
		// Many clients of one service: sequential source ports.
		"client ports": func(i int) proto.FlowKey {
			return gfFlow("192.0.2.1", uint16(1024+i%60000), "198.51.100.2", 443, 6)
		},
		// Sequential client addresses in a /16, fixed ports.
		"client addresses": func(i int) proto.FlowKey {
			k := gfFlow("10.0.0.0", 5000, "198.51.100.2", 443, 6)
			k.Src[14], k.Src[15] = byte(i>>8), byte(i)
			k.Src[13] = byte(i >> 16)
			return k
		},
		// IPv6 clients differing in the interface identifier's low bits.
		"ipv6 low bits": func(i int) proto.FlowKey {
			k := gfFlow("2001:db8::", 40000, "2001:db8:ffff::1", 443, 17)
			binary.BigEndian.PutUint32(k.Src[12:], uint32(i))
			return k
		},
	}
	for name, gen := range sets {
		t.Run(name, func(t *testing.T) {
			hs := make([]uint32, n)
			seen := make(map[uint32]struct{}, n)
			keys := make(map[proto.FlowKey]struct{}, n)
			collisions := 0
			for i := range hs {
				k := gen(i)
				if _, dup := keys[k]; dup {
					continue
				}
				keys[k] = struct{}{}
				hs[i] = k.Hash(0x5eed)
				if _, ok := seen[hs[i]]; ok {
					collisions++
				}
				seen[hs[i]] = struct{}{}
			}
			hs = hs[:0]
			for k := range keys {
				hs = append(hs, k.Hash(0x5eed))
			}
			for _, shards := range []int{2, 7, 16, 64, 1024} {
				for _, mod := range []bool{false, true} {
					// For k-1 degrees of freedom the statistic has mean
					// k-1 and standard deviation sqrt(2(k-1)); allow 6
					// standard deviations.
					df := float64(shards - 1)
					limit := df + 6*math.Sqrt(2*df)
					if x2 := gfChiSquare(hs, shards, mod); x2 > limit {
						t.Errorf("%d shards (mod %v): chi-square %.1f > %.1f", shards, mod, x2, limit)
					}
				}
			}
			// Expected 32-bit collisions among m keys: m²/2³³ ≈ 1.2 for
			// 100000.
			if collisions > 12 {
				t.Errorf("%d collisions", collisions)
			}
		})
	}
}

func TestConnIDHash(t *testing.T) {
	const n = 100000
	hs := make([]uint32, 0, n)
	for i := range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		c, _ := proto.ConnIDFromBytes(b[:])
		hs = append(hs, c.Hash(9))
	}
	for _, shards := range []int{16, 64, 1024} {
		df := float64(shards - 1)
		if x2 := gfChiSquare(hs, shards, false); x2 > df+6*math.Sqrt(2*df) {
			t.Errorf("%d shards: chi-square %.1f", shards, x2)
		}
	}
	// The length is part of the ID.
	a, b, e := gfConnID("00"), gfConnID("0000"), gfConnID("")
	if a.Hash(1) == b.Hash(1) || e.Hash(1) == a.Hash(1) {
		t.Errorf("length not hashed")
	}
}

func TestFlowHashAllocs(t *testing.T) {
	k := gfFlow("2001:db8::1", 1, "2001:db8::2", 2, 17)
	c := gfConnID("0011223344556677")
	var sink uint32
	if n := testing.AllocsPerRun(100, func() {
		r := k.Reverse()
		sink += k.Hash(1) + r.Hash(2) + c.Hash(3)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	_ = sink
}

func BenchmarkFlowKeyHash(b *testing.B) {
	k := gfFlow("192.0.2.1", 43210, "198.51.100.2", 443, 6)
	var sink uint32
	b.ReportAllocs()
	for b.Loop() {
		sink += k.Hash(uint64(sink))
	}
}

func BenchmarkConnIDHash(b *testing.B) {
	c := gfConnID("0011223344556677")
	var sink uint32
	b.ReportAllocs()
	for b.Loop() {
		sink += c.Hash(uint64(sink))
	}
}
