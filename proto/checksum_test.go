package proto_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tygress/tygress/proto"
)

// refChecksum is the obvious RFC 1071 sum: big-endian 16-bit words, an odd
// last byte padded with zero, end-around carry folded at the end.
func refChecksum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// onesEqual reports whether two checksum field values are the same
// ones-complement number (0x0000 and 0xffff are both zero).
func onesEqual(a, b uint16) bool {
	norm := func(x uint16) uint16 {
		if x == 0xffff {
			return 0
		}
		return x
	}
	return norm(a) == norm(b)
}

func TestChecksumAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2048+8)
	for n := 0; n <= 2048; n++ {
		for _, start := range []int{0, 1, 3, 7} {
			for rep := 0; rep < 3; rep++ {
				fill := byte(0)
				switch rep {
				case 0:
					for i := range buf {
						buf[i] = byte(r.Uint32())
					}
				case 1:
					fill = 0xff
					for i := range buf {
						buf[i] = fill
					}
				case 2:
					for i := range buf {
						buf[i] = 0
					}
				}
				b := buf[start : start+n]
				initial := r.Uint32()
				if rep == 1 {
					initial = 0xffffffff
				}
				for _, init := range []uint32{0, initial} {
					got, want := proto.Checksum(b, init), refChecksum(b, init)
					if got != want {
						t.Fatalf("len %d start %d rep %d initial %#x: got %#04x want %#04x", n, start, rep, init, got, want)
					}
				}
			}
		}
	}
}

func TestChecksumKnown(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"empty", nil, 0},
		// RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
		{"rfc1071", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0xddf2},
		{"odd", []byte{0x12}, 0x1200},
		{"ones", []byte{0xff, 0xff, 0xff, 0xff}, 0xffff},
		{"carry", []byte{0xff, 0xff, 0x00, 0x01}, 0x0001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proto.Checksum(tt.in, 0); got != tt.want {
				t.Errorf("Checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

func TestChecksumChaining(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for split := 0; split <= len(b); split += 2 {
		a := proto.Checksum(b[:split], 0)
		if got, want := proto.Checksum(b[split:], uint32(a)), proto.Checksum(b, 0); got != want {
			t.Fatalf("split %d: chained %#04x, whole %#04x", split, got, want)
		}
		if got, want := proto.ChecksumCombine(a, proto.Checksum(b[split:], 0)), proto.Checksum(b, 0); got != want {
			t.Fatalf("split %d: combined %#04x, whole %#04x", split, got, want)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 1000; i++ {
		var src4, dst4 [4]byte
		var src6, dst6 [16]byte
		for j := range src4 {
			src4[j], dst4[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		for j := range src6 {
			src6[j], dst6[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		proto4 := uint8(r.Uint32())
		len4 := uint16(r.Uint32())
		len6 := r.Uint32()
		// RFC 768 pseudo-header layout.
		ph4 := append(append(append([]byte{}, src4[:]...), dst4[:]...), 0, proto4, byte(len4>>8), byte(len4))
		if got, want := fold(proto.PseudoHeaderChecksumV4(proto4, src4, dst4, len4)), refChecksum(ph4, 0); got != want {
			t.Fatalf("v4: got %#04x want %#04x", got, want)
		}
		// RFC 8200 section 8.1 layout.
		ph6 := append(append([]byte{}, src6[:]...), dst6[:]...)
		ph6 = binary.BigEndian.AppendUint32(ph6, len6)
		ph6 = append(ph6, 0, 0, 0, proto4)
		if got, want := fold(proto.PseudoHeaderChecksumV6(proto4, src6, dst6, len6)), refChecksum(ph6, 0); got != want {
			t.Fatalf("v6: got %#04x want %#04x", got, want)
		}
		if got, want := proto.ChecksumFinish(proto.PseudoHeaderChecksumV6(proto4, src6, dst6, len6)), ^refChecksum(ph6, 0); got != want {
			t.Fatalf("finish: got %#04x want %#04x", got, want)
		}
	}
}

func fold(s uint32) uint16 { return proto.Checksum(nil, s) }

// TestChecksumUpdate rewrites random 16-bit words, 32-bit fields and
// addresses in random data and checks every incremental update against a
// full recomputation.
func TestChecksumUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := 0; iter < 20000; iter++ {
		n := 2 * (16 + r.IntN(100)) // even, >= 32
		b := make([]byte, n)
		switch iter % 10 {
		case 0: // all zero
		case 1:
			for i := range b {
				b[i] = 0xff
			}
		default:
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		}
		stored := ^proto.Checksum(b, 0)
		var got uint16
		switch iter % 4 {
		case 0:
			off := 2 * r.IntN(n/2)
			oldV := binary.BigEndian.Uint16(b[off:])
			newV := uint16(r.Uint32())
			if iter%3 == 0 {
				newV = 0
			}
			binary.BigEndian.PutUint16(b[off:], newV)
			got = proto.ChecksumUpdate16(stored, oldV, newV)
		case 1:
			off := 2 * r.IntN(n/2-1)
			oldV := binary.BigEndian.Uint32(b[off:])
			newV := r.Uint32()
			binary.BigEndian.PutUint32(b[off:], newV)
			got = proto.ChecksumUpdate32(stored, oldV, newV)
		case 2:
			off := 2 * r.IntN(n/2-1)
			var oldA, newA [4]byte
			copy(oldA[:], b[off:])
			binary.BigEndian.PutUint32(newA[:], r.Uint32())
			copy(b[off:], newA[:])
			got = proto.ChecksumUpdateAddr4(stored, oldA, newA)
		case 3:
			off := 2 * r.IntN(n/2-7)
			var oldA, newA [16]byte
			copy(oldA[:], b[off:])
			for i := range newA {
				newA[i] = byte(r.Uint32())
			}
			copy(b[off:], newA[:])
			got = proto.ChecksumUpdateAddr16(stored, oldA, newA)
		}
		want := ^proto.Checksum(b, 0)
		if !onesEqual(got, want) {
			t.Fatalf("iter %d: updated %#04x, recomputed %#04x", iter, got, want)
		}
		if got != want && want != 0xffff {
			t.Fatalf("iter %d: updated %#04x, recomputed %#04x (only the all-zero case may differ)", iter, got, want)
		}
		// The data with the updated checksum appended must verify.
		v := binary.BigEndian.AppendUint16(append([]byte{}, b...), got)
		if s := proto.Checksum(v, 0); s != 0xffff && !(s == 0 && got == 0) {
			t.Fatalf("iter %d: verify sum %#04x", iter, s)
		}
	}
}

func TestChecksumAllocs(t *testing.T) {
	b := make([]byte, 1500)
	var sink uint16
	n := testing.AllocsPerRun(100, func() {
		sink += proto.Checksum(b, 0)
		sink += proto.Checksum(b[1:], 7)
		sink += proto.ChecksumUpdate16(sink, 1, 2)
		sink += proto.ChecksumUpdate32(sink, 1, 2)
		sink += proto.ChecksumUpdateAddr4(sink, [4]byte{1}, [4]byte{2})
		sink += proto.ChecksumUpdateAddr16(sink, [16]byte{1}, [16]byte{2})
		sink += proto.ChecksumFinish(proto.PseudoHeaderChecksumV6(17, [16]byte{}, [16]byte{1}, 8))
		sink += fold(proto.PseudoHeaderChecksumV4(17, [4]byte{}, [4]byte{1}, 8))
	})
	if n != 0 {
		t.Errorf("allocs = %v, want 0", n)
	}
	_ = sink
}

var checksumSink uint16

func BenchmarkChecksum(b *testing.B) {
	for _, size := range []int{64, 1500, 9000} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				checksumSink += proto.Checksum(buf, 0)
			}
		})
	}
}

func BenchmarkChecksumReference(b *testing.B) {
	for _, size := range []int{64, 1500, 9000} {
		buf := make([]byte, size)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				checksumSink += refChecksum(buf, 0)
			}
		})
	}
}

func BenchmarkChecksumUpdateAddr4(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	for b.Loop() {
		c = proto.ChecksumUpdateAddr4(c, [4]byte{10, 0, 0, 1}, [4]byte{192, 168, 1, 1})
	}
	checksumSink += c
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint32(0))
	f.Add([]byte{0xff, 0xff, 0xff}, uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, b []byte, initial uint32) {
		if got, want := proto.Checksum(b, initial), refChecksum(b, initial); got != want {
			t.Fatalf("Checksum = %#04x, reference %#04x", got, want)
		}
	})
}
