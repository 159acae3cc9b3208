package proto_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestParseIPv6Golden(t *testing.T) {
	type want struct {
		tc         uint8
		flow       uint32
		plen       uint16
		nh, hlim   uint8
		src, dst   [16]byte
		ext        proto.IPv6Ext
		fragNH     uint8
		fragOffset uint16
		fragMore   bool
		fragID     uint32
	}
	tests := []struct {
		name string
		pkt  []byte
		want want
	}{
		// (class 0x10, flowlabel 0x12345, hlim 64, next-header ICMPv6 (58) payload length: 12)
		{"EthQinQIPv6ICMPv6Echo", l3GoldenEthQinQIPv6ICMPv6Echo[22:], want{tc: 0x10, flow: 0x12345, plen: 12, nh: 58, hlim: 64, src: l3A6, dst: l3B6,
			ext: proto.IPv6Ext{Proto: proto.IPProtoICMPv6, Offset: 40, FragOffset: -1}}},
		// (hlim 9, next-header Options (0) payload length: 60) HBH (rtalert) DSTOPT (padn)
		// RT6 (len=2, type=0, segleft=1) frag (0xdeadbeef:0|12) 53 > 53
		{"IPv6ExtChainUDP", l3GoldenIPv6ExtChainUDP, want{plen: 60, nh: 0, hlim: 9, src: l3A6, dst: l3B6,
			ext:    proto.IPv6Ext{Proto: proto.IPProtoUDP, Offset: 40 + 8 + 8 + 24 + 8, FragOffset: 80, N: 4},
			fragNH: proto.IPProtoUDP, fragMore: true, fragID: 0xdeadbeef}},
		// (hlim 64, next-header Fragment (44) payload length: 24) frag (0xdeadbeef:800|16)
		{"IPv6FragmentNonFirst", l3GoldenIPv6FragmentNonFirst, want{plen: 24, nh: 44, hlim: 64, src: l3A6, dst: l3B6,
			ext:    proto.IPv6Ext{Proto: proto.IPProtoUDP, Offset: 48, FragOffset: 40, N: 1},
			fragNH: proto.IPProtoUDP, fragOffset: 800, fragID: 0xdeadbeef}},
		// (hlim 64, next-header AH (51) payload length: 44) AH(length=4(24-bytes),spi=0x00000100,seq=0x1): 80 > 40000
		{"IPv6AHTCP", l3GoldenIPv6AHTCP, want{plen: 44, nh: 51, hlim: 64, src: l3A6, dst: l3B6,
			ext: proto.IPv6Ext{Proto: proto.IPProtoTCP, Offset: 64, FragOffset: -1, N: 1}}},
		// (hlim 64, next-header unknown (59) payload length: 0) no next header
		{"IPv6NoNextHeader", l3GoldenIPv6NoNextHeader, want{plen: 0, nh: 59, hlim: 64, src: l3A6, dst: l3B6,
			ext: proto.IPv6Ext{Proto: proto.IPProtoNoNext, Offset: 40, FragOffset: -1}}},
		// (hlim 255, next-header ICMPv6 (58) payload length: 72)
		{"ICMPv6RA", l3GoldenICMPv6RA, want{plen: 64, nh: 58, hlim: 255, src: l3LL6, dst: netip.MustParseAddr("ff02::1").As16(),
			ext: proto.IPv6Ext{Proto: proto.IPProtoICMPv6, Offset: 40, FragOffset: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			padded := append(append([]byte(nil), tt.pkt...), 0, 0, 0, 0)
			ip, err := proto.ParseIPv6(padded)
			if err != nil {
				t.Fatal(err)
			}
			w := tt.want
			check := func(field string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			check("len", len(ip), len(tt.pkt))
			check("Version", ip.Version(), uint8(6))
			check("TrafficClass", ip.TrafficClass(), w.tc)
			check("FlowLabel", ip.FlowLabel(), w.flow)
			check("PayloadLength", ip.PayloadLength(), w.plen)
			check("NextHeader", ip.NextHeader(), w.nh)
			check("HopLimit", ip.HopLimit(), w.hlim)
			check("SrcArray", ip.SrcArray(), w.src)
			check("DstArray", ip.DstArray(), w.dst)
			check("Src", ip.Src(), netip.AddrFrom16(w.src))
			check("Dst", ip.Dst(), netip.AddrFrom16(w.dst))
			check("Payload", len(ip.Payload()), int(w.plen))
			ext, err := proto.WalkIPv6(ip)
			if err != nil {
				t.Fatal(err)
			}
			check("WalkIPv6", ext, w.ext)
			if ext.FragOffset >= 0 {
				fr, err := proto.ParseIPv6Fragment(ip[ext.FragOffset:])
				if err != nil {
					t.Fatal(err)
				}
				check("Fragment.NextHeader", fr.NextHeader(), w.fragNH)
				check("Fragment.FragmentOffset", fr.FragmentOffset(), w.fragOffset)
				check("Fragment.MoreFragments", fr.MoreFragments(), w.fragMore)
				check("Fragment.ID", fr.ID(), w.fragID)
				re := proto.AppendIPv6Fragment(nil, fr.NextHeader(), fr.FragmentOffset(), fr.MoreFragments(), fr.ID())
				if !bytes.Equal(re, fr) {
					t.Errorf("AppendIPv6Fragment = %x, want %x", re, []byte(fr))
				}
			}
			f := ip.Fields()
			if got := proto.AppendIPv6(nil, &f); !bytes.Equal(got, tt.pkt[:40]) {
				t.Errorf("AppendIPv6 = %x\nwant         %x", got, tt.pkt[:40])
			}
		})
	}
}

func TestIPv6Setters(t *testing.T) {
	pkt := append([]byte(nil), l3GoldenEthQinQIPv6ICMPv6Echo[22:]...)
	ip, _ := proto.ParseIPv6(pkt)
	ip.SetTrafficClass(0xff)
	ip.SetFlowLabel(0xfffff)
	if ip.Version() != 6 || ip.TrafficClass() != 0xff || ip.FlowLabel() != 0xfffff {
		t.Errorf("TC %#x FL %#x", ip.TrafficClass(), ip.FlowLabel())
	}
	ip.SetTrafficClass(0)
	if ip.Version() != 6 || ip.TrafficClass() != 0 || ip.FlowLabel() != 0xfffff {
		t.Errorf("TC %#x FL %#x", ip.TrafficClass(), ip.FlowLabel())
	}
	ip.SetFlowLabel(0x123456) // only 20 bits kept
	if ip.TrafficClass() != 0 || ip.FlowLabel() != 0x23456 {
		t.Errorf("TC %#x FL %#x", ip.TrafficClass(), ip.FlowLabel())
	}
	ip.SetPayloadLength(7)
	ip.SetNextHeader(proto.IPProtoTCP)
	ip.SetHopLimit(2)
	ip.SetSrc(l3B6)
	ip.SetDst(l3A6)
	if ip.PayloadLength() != 7 || ip.NextHeader() != proto.IPProtoTCP || ip.HopLimit() != 2 || ip.SrcArray() != l3B6 || ip.DstArray() != l3A6 {
		t.Errorf("%+v", ip.Fields())
	}
	for _, want := range []uint8{1, 0, 0} {
		if got := ip.DecHopLimit(); got != want {
			t.Errorf("DecHopLimit = %d, want %d", got, want)
		}
	}
	fr := proto.IPv6Fragment(make([]byte, 8))
	fr.SetNextHeader(proto.IPProtoUDP)
	fr.SetFragmentOffset(65528, true)
	fr.SetID(0x01020304)
	if fr.NextHeader() != proto.IPProtoUDP || fr.FragmentOffset() != 65528 || !fr.MoreFragments() || fr.ID() != 0x01020304 {
		t.Errorf("fragment %x", []byte(fr))
	}
	fr.SetFragmentOffset(8, false)
	if fr.FragmentOffset() != 8 || fr.MoreFragments() {
		t.Errorf("fragment %x", []byte(fr))
	}
}

// l3IPv6WithExts builds an IPv6 packet with n destination options headers
// (8 bytes each) followed by an 8-byte UDP header.
func l3IPv6WithExts(n int) []byte {
	f := proto.IPv6Fields{PayloadLength: uint16(8*n + 8), NextHeader: proto.IPProtoDstOpts, HopLimit: 64, Src: l3A6, Dst: l3B6}
	if n == 0 {
		f.NextHeader = proto.IPProtoUDP
	}
	b := proto.AppendIPv6(nil, &f)
	for i := 0; i < n; i++ {
		next := proto.IPProtoDstOpts
		if i == n-1 {
			next = proto.IPProtoUDP
		}
		b = append(b, next, 0, 1, 4, 0, 0, 0, 0) // PadN
	}
	return append(b, 0, 1, 0, 2, 0, 8, 0, 0)
}

func TestWalkIPv6Limits(t *testing.T) {
	for n := 0; n <= proto.MaxIPv6ExtHeaders+2; n++ {
		ip, err := proto.ParseIPv6(l3IPv6WithExts(n))
		if err != nil {
			t.Fatal(err)
		}
		ext, err := proto.WalkIPv6(ip)
		if n <= proto.MaxIPv6ExtHeaders {
			want := proto.IPv6Ext{Proto: proto.IPProtoUDP, Offset: 40 + 8*n, FragOffset: -1, N: n}
			if err != nil || ext != want {
				t.Errorf("%d headers: %+v, %v; want %+v", n, ext, err, want)
			}
		} else if !errors.Is(err, proto.ErrTooManyHeaders) {
			t.Errorf("%d headers: %v, want ErrTooManyHeaders", n, err)
		}
	}
	// ESP and unknown protocols end the walk.
	for _, p := range []uint8{proto.IPProtoESP, 200, proto.IPProtoNoNext} {
		b := l3IPv6WithExts(1)
		b[40] = p
		ip, _ := proto.ParseIPv6(b)
		ext, err := proto.WalkIPv6(ip)
		if err != nil || ext.Proto != p || ext.Offset != 48 || ext.N != 1 {
			t.Errorf("proto %d: %+v, %v", p, ext, err)
		}
	}
}

func TestIPv6PayloadLengthZero(t *testing.T) {
	b := append([]byte(nil), l3GoldenIPv6NoNextHeader...)
	b = append(b, 1, 2, 3, 4) // trailing bytes are not payload
	ip, err := proto.ParseIPv6(b)
	if err != nil || len(ip) != 40 || len(ip.Payload()) != 0 {
		t.Fatalf("%d bytes, %v", len(ip), err)
	}
	b[6] = proto.IPProtoHopByHop // a jumbogram
	if _, err := proto.ParseIPv6(b); !errors.Is(err, proto.ErrUnsupported) {
		t.Fatalf("jumbogram: %v", err)
	}
}

func FuzzIPv6(f *testing.F) {
	for _, g := range l3Goldens() {
		if !g.link && g.data[0]>>4 == 6 {
			f.Add(g.data)
		}
	}
	f.Add(l3GoldenEthQinQIPv6ICMPv6Echo[22:])
	f.Add(l3IPv6WithExts(proto.MaxIPv6ExtHeaders + 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := proto.ParseIPv6Quoted(b); err == nil {
			if len(q) > len(b) || len(q) < 40 {
				t.Fatalf("quoted view %d of %d bytes", len(q), len(b))
			}
			if ext, err := proto.WalkIPv6(q); err == nil && ext.Offset > len(q) {
				t.Fatalf("walk of quoted packet past its end: %+v", ext)
			}
		} else {
			l3CheckErr(t, err)
		}
		ip, err := proto.ParseIPv6(b)
		if err != nil {
			l3CheckErr(t, err)
			return
		}
		if len(ip) != 40+int(ip.PayloadLength()) || len(ip.Payload()) != int(ip.PayloadLength()) {
			t.Fatalf("view %d bytes, payload length %d", len(ip), ip.PayloadLength())
		}
		_, _ = ip.Src(), ip.Dst()
		ext, err := proto.WalkIPv6(ip)
		if err != nil {
			l3CheckErr(t, err)
		} else {
			if ext.Offset < 40 || ext.Offset > len(ip) || ext.N > proto.MaxIPv6ExtHeaders {
				t.Fatalf("walk %+v beyond %d bytes", ext, len(ip))
			}
			if ext.FragOffset >= 0 {
				if ext.FragOffset+8 > ext.Offset {
					t.Fatalf("fragment header at %d, upper layer at %d", ext.FragOffset, ext.Offset)
				}
				fr, err := proto.ParseIPv6Fragment(ip[ext.FragOffset:])
				if err != nil {
					t.Fatal(err)
				}
				re := proto.AppendIPv6Fragment(nil, fr.NextHeader(), fr.FragmentOffset(), fr.MoreFragments(), fr.ID())
				want := append([]byte(nil), fr...)
				want[1], want[3] = 0, want[3]&^6 // reserved fields are written as zero
				if !bytes.Equal(re, want) {
					t.Fatalf("fragment re-encoded %x, was %x", re, []byte(fr))
				}
			} else if ext.N > 0 && ext.Offset == 40 {
				t.Fatal("walked headers but did not move")
			}
		}
		// parse → encode → parse.
		f := ip.Fields()
		enc := append(proto.AppendIPv6(nil, &f), ip.Payload()...)
		if !bytes.Equal(enc, ip) {
			t.Fatalf("re-encoded %x\nparsed       %x", enc, []byte(ip))
		}
		ip2, err := proto.ParseIPv6(enc)
		if err != nil || ip2.Fields() != f {
			t.Fatalf("reparse: %v", err)
		}
	})
}
