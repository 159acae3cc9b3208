package proto_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tygress/tygress/proto"
)

// gfUDPCase is a golden UDP datagram with its IP addresses.
type gfUDPCase struct {
	name     string
	off      int // of the UDP header in the frame
	v6       bool
	src, dst string
	want     proto.UDPFields
	payload  []byte // nil: don't check
	csumOK   bool
}

var gfUDPCases = []gfUDPCase{
	{"vlan_ipv6_udp", 14 + 4 + 40, true, "2001:db8::1", "2001:db8::2",
		proto.UDPFields{SrcPort: 5353, DstPort: 53, Length: 20, Checksum: 0x710f}, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, true},
	{"qinq_ipv4_udp", 14 + 8 + 20, false, "203.0.113.5", "203.0.113.6",
		proto.UDPFields{SrcPort: 1234, DstPort: 5678, Length: 12, Checksum: 0x9406}, []byte("data"), true},
	{"vxlan", 34, false, "198.18.1.1", "198.18.1.2",
		proto.UDPFields{SrcPort: 49152, DstPort: 4789, Length: 70, Checksum: 0}, nil, true}, // no checksum: allowed over IPv4
	{"gue_v0", 34, false, "198.18.2.1", "198.18.2.2",
		proto.UDPFields{SrcPort: 49153, DstPort: 6080, Length: 44, Checksum: 0x790a}, nil, true},
	{"gue_v1_ipv6", 34, false, "198.18.2.1", "198.18.2.2",
		proto.UDPFields{SrcPort: 49154, DstPort: 6080, Length: 56, Checksum: 0x2664}, nil, true},
	{"quic_v1_initial", 34, false, "192.0.2.10", "198.51.100.20",
		proto.UDPFields{SrcPort: 51234, DstPort: 443, Length: 1208, Checksum: 0x76d6}, nil, true},
	{"quic_v2_initial_v6", 54, true, "2001:db8::10", "2001:db8::20",
		proto.UDPFields{SrcPort: 51234, DstPort: 443, Length: 1208, Checksum: 0xec1b}, nil, true},
}

func TestUDPGolden(t *testing.T) {
	for _, tc := range gfUDPCases {
		t.Run(tc.name, func(t *testing.T) {
			frame := gfFrame(t, tc.name)
			u, err := proto.ParseUDP(frame[tc.off:])
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Fields(); got != tc.want {
				t.Errorf("Fields() = %+v, want %+v", got, tc.want)
			}
			if u.SrcPort() != tc.want.SrcPort || u.DstPort() != tc.want.DstPort || u.Length() != tc.want.Length || u.Checksum() != tc.want.Checksum {
				t.Errorf("accessors disagree with Fields")
			}
			if len(u) != int(tc.want.Length) || len(u.Payload()) != int(tc.want.Length)-8 {
				t.Errorf("view %d bytes, payload %d", len(u), len(u.Payload()))
			}
			if tc.payload != nil && !bytes.Equal(u.Payload(), tc.payload) {
				t.Errorf("Payload() = %x, want %x", u.Payload(), tc.payload)
			}
			var ok bool
			if tc.v6 {
				ok = u.VerifyChecksumV6(gfV6(tc.src), gfV6(tc.dst))
				if tc.want.Checksum != 0 {
					if c := u.ComputeChecksumV6(gfV6(tc.src), gfV6(tc.dst)); c != tc.want.Checksum {
						t.Errorf("ComputeChecksumV6 = %#04x", c)
					}
				}
			} else {
				ok = u.VerifyChecksumV4(gfV4(tc.src), gfV4(tc.dst))
				if tc.want.Checksum != 0 {
					if c := u.ComputeChecksumV4(gfV4(tc.src), gfV4(tc.dst)); c != tc.want.Checksum {
						t.Errorf("ComputeChecksumV4 = %#04x", c)
					}
				}
			}
			if ok != tc.csumOK {
				t.Errorf("Verify = %v", ok)
			}
			// A flipped payload bit fails verification (when there is a
			// checksum).
			if tc.want.Checksum != 0 {
				u[len(u)-1] ^= 0x10
				if tc.v6 && u.VerifyChecksumV6(gfV6(tc.src), gfV6(tc.dst)) || !tc.v6 && u.VerifyChecksumV4(gfV4(tc.src), gfV4(tc.dst)) {
					t.Errorf("corrupted datagram verifies")
				}
			}

			// Every prefix shorter than Length fails with ErrTooShort.
			for n := range int(tc.want.Length) {
				if _, err := proto.ParseUDP(frame[tc.off : tc.off+n]); !errors.Is(err, proto.ErrTooShort) {
					t.Fatalf("prefix %d: %v", n, err)
				}
			}
		})
	}
}

func TestUDPChecksumZero(t *testing.T) {
	// A datagram whose checksum computes to 0 is sent as 0xffff (RFC 768);
	// 0 verifies over IPv4 only.
	src, dst := gfV4("0.0.0.0"), gfV4("0.0.0.0")
	b := proto.AppendUDP(nil, proto.UDPFields{Length: 10})
	// Choose the payload so the sum of everything but the checksum is
	// 0xffff: pseudo-header 17+10, header 10 (the length again).
	b = append(b, 0xff, byte(0xff-17-10-10))
	u, err := proto.ParseUDP(b)
	if err != nil {
		t.Fatal(err)
	}
	if c := u.ComputeChecksumV4(src, dst); c != 0xffff {
		t.Fatalf("ComputeChecksumV4 = %#04x, want 0xffff", c)
	}
	u.SetChecksum(0xffff)
	if !u.VerifyChecksumV4(src, dst) {
		t.Error("0xffff does not verify")
	}
	u.SetChecksum(0)
	if !u.VerifyChecksumV4(src, dst) {
		t.Error("0 does not verify over IPv4")
	}
	if u.VerifyChecksumV6([16]byte{}, [16]byte{}) {
		t.Error("0 verifies over IPv6")
	}
}

func TestUDPParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, proto.ErrTooShort},
		{"7 bytes", make([]byte, 7), proto.ErrTooShort},
		{"length 0 (jumbogram)", []byte{0, 1, 0, 2, 0, 0, 0, 0}, proto.ErrBadHeaderLength},
		{"length 7", []byte{0, 1, 0, 2, 0, 7, 0, 0}, proto.ErrBadHeaderLength},
		{"length 9 of 8", []byte{0, 1, 0, 2, 0, 9, 0, 0}, proto.ErrTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := proto.ParseUDP(tc.b)
			if !errors.Is(err, tc.err) || u != nil {
				t.Errorf("ParseUDP = %x, %v; want %v", u, err, tc.err)
			}
			var pe *proto.ParseError
			if !errors.As(err, &pe) || pe.Layer != proto.LayerUDP {
				t.Errorf("error %v is not a UDP ParseError", err)
			}
		})
	}
	// Bytes past Length are not part of the view.
	u, err := proto.ParseUDP([]byte{0, 1, 0, 2, 0, 9, 0, 0, 'x', 'p', 'a', 'd'})
	if err != nil || len(u) != 9 || string(u.Payload()) != "x" {
		t.Errorf("padded: %x %v", u, err)
	}
}

func TestUDPSettersAndEncode(t *testing.T) {
	f := proto.UDPFields{SrcPort: 1, DstPort: 0xfffe, Length: 13, Checksum: 0xabcd}
	b := proto.AppendUDP([]byte{0xee}, f)
	if want := []byte{0xee, 0, 1, 0xff, 0xfe, 0, 13, 0xab, 0xcd}; !bytes.Equal(b, want) {
		t.Fatalf("AppendUDP = %x, want %x", b, want)
	}
	b = append(b[1:], "hello"...)
	u, err := proto.ParseUDP(b)
	if err != nil || u.Fields() != f {
		t.Fatalf("round trip: %+v %v", u.Fields(), err)
	}
	u.SetSrcPort(7)
	u.SetDstPort(8)
	u.SetLength(12)
	u.SetChecksum(9)
	if got, want := u.Fields(), (proto.UDPFields{SrcPort: 7, DstPort: 8, Length: 12, Checksum: 9}); got != want {
		t.Errorf("after setters %+v, want %+v", got, want)
	}
	var enc [8]byte
	if err := f.Encode(enc[:]); err != nil || !bytes.Equal(enc[:], []byte{0, 1, 0xff, 0xfe, 0, 13, 0xab, 0xcd}) {
		t.Errorf("Encode = %x, %v", enc, err)
	}
	if err := f.Encode(enc[:7]); !errors.Is(err, proto.ErrTooShort) {
		t.Errorf("Encode into 7 bytes: %v", err)
	}
}

// TestUDPChecksumReference checks the checksum against a slow, obvious
// implementation of RFC 768 on random datagrams.
func TestUDPChecksumReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		n := 8 + rng.IntN(200)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[4], b[5] = byte(n>>8), byte(n)
		u, err := proto.ParseUDP(b)
		if err != nil {
			t.Fatal(err)
		}
		var s4, d4 [4]byte
		var s6, d6 [16]byte
		for j := range s6 {
			s6[j], d6[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		copy(s4[:], s6[:])
		copy(d4[:], d6[:])
		pseudo4 := append(append(append(s4[:0:0], s4[:]...), d4[:]...), 0, 17, byte(n>>8), byte(n))
		pseudo6 := append(append(append(s6[:0:0], s6[:]...), d6[:]...), 0, 0, byte(n>>8), byte(n), 0, 0, 0, 17)
		want4 := gfRefChecksum(pseudo4, b, 6)
		want6 := gfRefChecksum(pseudo6, b, 6)
		if got := u.ComputeChecksumV4(s4, d4); got != want4 {
			t.Fatalf("case %d: v4 %#04x, want %#04x", i, got, want4)
		}
		if got := u.ComputeChecksumV6(s6, d6); got != want6 {
			t.Fatalf("case %d: v6 %#04x, want %#04x", i, got, want6)
		}
		u.SetChecksum(want6)
		if !u.VerifyChecksumV6(s6, d6) {
			t.Fatalf("case %d: v6 does not verify", i)
		}
	}
}

// gfRefChecksum is the textbook Internet checksum of pseudo||seg with the
// 16-bit field at csumOff of seg counted as zero; 0 becomes 0xffff.
func gfRefChecksum(pseudo, seg []byte, csumOff int) uint16 {
	b := append(append([]byte(nil), pseudo...), seg...)
	b[len(pseudo)+csumOff], b[len(pseudo)+csumOff+1] = 0, 0
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func TestUDPAllocs(t *testing.T) {
	frame := gfFrame(t, "qinq_ipv4_udp")[42:]
	var sink uint16
	if n := testing.AllocsPerRun(100, func() {
		u, err := proto.ParseUDP(frame)
		if err != nil {
			t.Fatal(err)
		}
		sink += u.SrcPort() + u.DstPort() + u.Length() + u.Checksum() + uint16(len(u.Payload()))
		if u.VerifyChecksumV4([4]byte{}, [4]byte{}) {
			sink++
		}
		_, err = proto.ParseUDP(frame[:5])
		if err == nil {
			t.Fatal("no error")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	_ = sink
}

func FuzzUDP(f *testing.F) {
	for _, tc := range gfUDPCases {
		f.Add(gfFrame(f, tc.name)[tc.off:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := proto.ParseUDP(b)
		if err != nil {
			if !gfIsSentinel(err) || u != nil {
				t.Fatalf("ParseUDP: %x, %v", u, err)
			}
			return
		}
		if len(u) != int(u.Length()) || len(u) > len(b) {
			t.Fatalf("view of %d bytes, Length %d", len(u), u.Length())
		}
		_ = u.VerifyChecksumV4([4]byte{1}, [4]byte{2})
		_ = u.ComputeChecksumV6([16]byte{1}, [16]byte{2})
		// parse → encode → parse agrees.
		enc := append(proto.AppendUDP(nil, u.Fields()), u.Payload()...)
		u2, err := proto.ParseUDP(enc)
		if err != nil || !bytes.Equal(u2, u) || u2.Fields() != u.Fields() {
			t.Fatalf("round trip: %x %v, want %x", u2, err, u)
		}
	})
}
