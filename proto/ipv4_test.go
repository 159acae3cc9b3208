package proto_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestParseIPv4Golden(t *testing.T) {
	type want struct {
		hl, tl                int
		tos, ttl, proto       uint8
		id, fragOff, checksum uint16
		flags                 uint8
		src, dst              [4]byte
		options               []byte
		payloadLen            int
	}
	tests := []struct {
		name string
		pkt  []byte
		want want
	}{
		// (tos 0x0, ttl 64, id 4660, offset 0, flags [DF], proto ICMP (1), length 45)
		{"EthIPv4ICMPEcho", l3GoldenEthIPv4ICMPEcho[14:], want{20, 45, 0, 64, proto.IPProtoICMP, 0x1234, 0, 0x3c60, proto.IPv4FlagDontFragment, l3A4, l3B4, nil, 25}},
		// (tos 0xb8, ttl 17, id 1, offset 0, flags [none], proto UDP (17), length 32)
		{"EthVLANIPv4UDP", l3GoldenEthVLANIPv4UDP[18:], want{20, 32, 0xb8, 17, proto.IPProtoUDP, 1, 0, 0xbcd8, 0, l3A4, l3B4, nil, 12}},
		// (tos 0x0, ttl 1, id 48879, offset 0, flags [none], proto UDP (17), length 41, options (RR 10.0.0.1 10.0.0.2,EOL))
		{"IPv4OptionsUDP", l3GoldenIPv4OptionsUDP, want{32, 41, 0, 1, proto.IPProtoUDP, 0xbeef, 0, 0xfd79, 0, l3A4, l3B4,
			[]byte{7, 11, 4, 10, 0, 0, 1, 10, 0, 0, 2, 0}, 9}},
		// (tos 0x0, ttl 64, id 2748, offset 0, flags [+], proto UDP (17), length 36)
		{"IPv4FragmentMF", l3GoldenIPv4FragmentMF, want{20, 36, 0, 64, proto.IPProtoUDP, 0x0abc, 0, 0x63d1, proto.IPv4FlagMoreFragments, l3A4, l3B4, nil, 16}},
		// (tos 0x0, ttl 64, id 2748, offset 16, flags [none], proto UDP (17), length 28)
		{"IPv4FragmentLast", l3GoldenIPv4FragmentLast, want{20, 28, 0, 64, proto.IPProtoUDP, 0x0abc, 16, 0x83d7, 0, l3A4, l3B4, nil, 8}},
		// (tos 0x0, ttl 255, id 0, offset 0, flags [none], proto ICMP (1), length 56)
		{"IPv4ICMPFragNeeded", l3GoldenIPv4ICMPFragNeeded, want{20, 56, 0, 255, proto.IPProtoICMP, 0, 0, 0xcf88, 0, l3B4, l3A4, nil, 36}},
		// (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto ICMP (1), length 56)
		{"IPv4ICMPTimeExceeded", l3GoldenIPv4ICMPTimeExceeded, want{20, 56, 0, 64, proto.IPProtoICMP, 1, 0, 0x8e88, 0, l3B4, l3A4, nil, 36}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Trailing bytes (Ethernet padding) are cut off by the total
			// length.
			padded := append(append([]byte(nil), tt.pkt...), 0, 0, 0, 0, 0, 0)
			ip, err := proto.ParseIPv4(padded)
			if err != nil {
				t.Fatal(err)
			}
			w := tt.want
			if len(ip) != w.tl {
				t.Errorf("view length %d, want %d", len(ip), w.tl)
			}
			check := func(field string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			check("Version", ip.Version(), uint8(4))
			check("HeaderLength", ip.HeaderLength(), w.hl)
			check("TotalLength", ip.TotalLength(), uint16(w.tl))
			check("TOS", ip.TOS(), w.tos)
			check("DSCP", ip.DSCP(), w.tos>>2)
			check("ECN", ip.ECN(), w.tos&3)
			check("ID", ip.ID(), w.id)
			check("Flags", ip.Flags(), w.flags)
			check("DontFragment", ip.DontFragment(), w.flags&proto.IPv4FlagDontFragment != 0)
			check("MoreFragments", ip.MoreFragments(), w.flags&proto.IPv4FlagMoreFragments != 0)
			check("FragmentOffset", ip.FragmentOffset(), w.fragOff)
			check("IsFragment", ip.IsFragment(), w.fragOff != 0 || w.flags&proto.IPv4FlagMoreFragments != 0)
			check("TTL", ip.TTL(), w.ttl)
			check("Protocol", ip.Protocol(), w.proto)
			check("Checksum", ip.Checksum(), w.checksum)
			check("CalculateChecksum", ip.CalculateChecksum(), w.checksum)
			check("VerifyChecksum", ip.VerifyChecksum(), true)
			check("SrcArray", ip.SrcArray(), w.src)
			check("DstArray", ip.DstArray(), w.dst)
			check("Src", ip.Src(), netip.AddrFrom4(w.src))
			check("Dst", ip.Dst(), netip.AddrFrom4(w.dst))
			if !bytes.Equal(ip.Options(), w.options) {
				t.Errorf("Options = %x, want %x", ip.Options(), w.options)
			}
			if got := ip.Payload(); len(got) != w.payloadLen || !bytes.Equal(got, tt.pkt[w.hl:]) {
				t.Errorf("Payload = %x", got)
			}
			// Encoding the parsed fields gives back the header, checksum
			// included.
			f := ip.Fields()
			if got := proto.AppendIPv4(nil, &f); !bytes.Equal(got, tt.pkt[:w.hl]) {
				t.Errorf("AppendIPv4 = %x\nwant         %x", got, tt.pkt[:w.hl])
			}
			enc := make([]byte, w.hl)
			f.Encode(enc)
			if !bytes.Equal(enc, tt.pkt[:w.hl]) {
				t.Errorf("Encode = %x", enc)
			}
		})
	}
}

func TestIPv4Setters(t *testing.T) {
	pkt := append([]byte(nil), l3GoldenIPv4OptionsUDP...)
	ip, _ := proto.ParseIPv4(pkt)
	ip.SetTOS(0x2e)
	ip.SetID(77)
	ip.SetFlagsFragmentOffset(proto.IPv4FlagMoreFragments|proto.IPv4FlagDontFragment, 1480)
	ip.SetTTL(9)
	ip.SetProtocol(proto.IPProtoTCP)
	ip.SetSrc([4]byte{10, 1, 2, 3})
	ip.SetDst([4]byte{10, 4, 5, 6})
	ip.SetTotalLength(40)
	ip.UpdateChecksum()
	if ip.TOS() != 0x2e || ip.ID() != 77 || ip.Flags() != 3 || ip.FragmentOffset() != 1480 || ip.TTL() != 9 ||
		ip.Protocol() != proto.IPProtoTCP || ip.SrcArray() != [4]byte{10, 1, 2, 3} || ip.DstArray() != [4]byte{10, 4, 5, 6} ||
		ip.TotalLength() != 40 || !ip.VerifyChecksum() {
		t.Errorf("after setters: %+v", ip.Fields())
	}
	ip.SetChecksum(0x1234)
	if ip.Checksum() != 0x1234 || ip.VerifyChecksum() {
		t.Error("SetChecksum")
	}
}

func TestIPv4DecTTLAndRewrite(t *testing.T) {
	pkt := append([]byte(nil), l3GoldenEthIPv4ICMPEcho[14:]...)
	ip, _ := proto.ParseIPv4(pkt)
	for want := 63; want >= 0; want-- {
		if got := ip.DecTTL(); int(got) != want {
			t.Fatalf("DecTTL = %d, want %d", got, want)
		}
		if !ip.VerifyChecksum() {
			t.Fatalf("TTL %d: checksum %#04x, want %#04x", want, ip.Checksum(), ip.CalculateChecksum())
		}
		if ip.Checksum() != ip.CalculateChecksum() {
			t.Fatalf("TTL %d: incremental %#04x, full %#04x", want, ip.Checksum(), ip.CalculateChecksum())
		}
	}
	if ip.DecTTL() != 0 || ip.TTL() != 0 || !ip.VerifyChecksum() {
		t.Error("DecTTL at 0 must leave the packet alone")
	}
	r := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 1000; i++ {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		prev := ip.SrcArray()
		if old := ip.RewriteSrc(a); old != prev {
			t.Fatalf("RewriteSrc returned %v, want %v", old, prev)
		}
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		ip.RewriteDst(a)
		if !ip.VerifyChecksum() {
			t.Fatalf("rewrite %d: checksum %#04x, want %#04x", i, ip.Checksum(), ip.CalculateChecksum())
		}
	}
}

func TestIPv4Encode(t *testing.T) {
	f := proto.IPv4Fields{
		TOS: 0x10, TotalLength: 20 + 4 + 8, ID: 0x4242, Flags: proto.IPv4FlagDontFragment,
		TTL: 64, Protocol: proto.IPProtoUDP, Src: l3A4, Dst: l3B4,
		Options: []byte{0x94, 0x04, 0x00}, // router alert, one byte short: padded with EOL
	}
	if f.HeaderLength() != 24 {
		t.Fatalf("HeaderLength = %d", f.HeaderLength())
	}
	b := proto.AppendIPv4([]byte{0xaa}, &f)
	b = append(b, make([]byte, 8)...)
	ip, err := proto.ParseIPv4(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ip.Options(), []byte{0x94, 0x04, 0x00, 0x00}) || ip.HeaderLength() != 24 || !ip.VerifyChecksum() {
		t.Errorf("encoded %x", b)
	}
	if b[0] != 0xaa {
		t.Error("AppendIPv4 overwrote the prefix")
	}
	// Garbage in the destination is overwritten, padding included.
	dst := bytes.Repeat([]byte{0xff}, 24)
	f.Encode(dst)
	if !bytes.Equal(dst, ip[:24]) {
		t.Errorf("Encode over garbage = %x, want %x", dst, ip[:24])
	}
	defer func() {
		if recover() == nil {
			t.Error("options longer than 40 bytes did not panic")
		}
	}()
	f.Options = make([]byte, 41)
	proto.AppendIPv4(nil, &f)
}

// TestIPv4Quoted parses the datagram quoted by an ICMP error, which is cut
// after 8 bytes of payload and so fails ParseIPv4.
func TestIPv4Quoted(t *testing.T) {
	ip, _ := proto.ParseIPv4(l3GoldenIPv4ICMPFragNeeded)
	m, _ := proto.ParseICMPv4(ip.Payload())
	if _, err := proto.ParseIPv4(m.Quoted()); err == nil {
		t.Fatal("ParseIPv4 accepted a truncated datagram")
	}
	q, err := proto.ParseIPv4Quoted(m.Quoted())
	if err != nil {
		t.Fatal(err)
	}
	// IP (tos 0x0, ttl 64, id 9, offset 0, flags [DF], proto UDP (17), length 1500)
	// 192.0.2.1.1111 > 198.51.100.7.2222
	if q.TotalLength() != 1500 || q.ID() != 9 || !q.DontFragment() || q.Protocol() != proto.IPProtoUDP ||
		q.SrcArray() != l3A4 || q.DstArray() != l3B4 || len(q.Payload()) != 8 ||
		binary.BigEndian.Uint16(q.Payload()) != 1111 || !q.VerifyChecksum() {
		t.Errorf("quoted: %+v, payload %x", q.Fields(), q.Payload())
	}
	// With more bytes than the total length, the view is cut to it.
	q2, err := proto.ParseIPv4Quoted(append(append([]byte(nil), l3GoldenIPv4FragmentLast...), 1, 2, 3))
	if err != nil || len(q2) != len(l3GoldenIPv4FragmentLast) {
		t.Errorf("ParseIPv4Quoted with padding: %d bytes, %v", len(q2), err)
	}
}

// TestIPv4MutatedAfterParse rewrites the IHL and total length after parsing
// to values the view cannot hold: accessors must stay in bounds.
func TestIPv4MutatedAfterParse(t *testing.T) {
	for _, vihl := range []byte{0x40, 0x44, 0x45, 0x4f, 0xff} {
		pkt := append([]byte(nil), l3GoldenIPv4FragmentLast...)
		ip, _ := proto.ParseIPv4(pkt)
		ip[0] = vihl
		ip.SetTotalLength(0xffff)
		_ = ip.Options()
		_ = ip.Payload()
		_ = ip.VerifyChecksum()
		ip.UpdateChecksum()
		if ip.HeaderLength() > len(ip) {
			t.Errorf("IHL byte %#x: HeaderLength %d > %d", vihl, ip.HeaderLength(), len(ip))
		}
	}
}

func FuzzIPv4(f *testing.F) {
	f.Add(l3GoldenEthIPv4ICMPEcho[14:])
	f.Add(l3GoldenEthVLANIPv4UDP[18:])
	f.Add(l3GoldenIPv4OptionsUDP)
	f.Add(l3GoldenIPv4FragmentMF)
	f.Add(l3GoldenIPv4FragmentLast)
	f.Add(l3GoldenIPv4ICMPFragNeeded)
	f.Add(l3GoldenIPv4ICMPTimeExceeded)
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := proto.ParseIPv4Quoted(b); err == nil {
			_ = q.Fields()
			_ = q.Payload()
			_ = q.VerifyChecksum()
		} else {
			l3CheckErr(t, err)
		}
		ip, err := proto.ParseIPv4(b)
		if err != nil {
			l3CheckErr(t, err)
			return
		}
		if len(ip) != int(ip.TotalLength()) || ip.HeaderLength() < 20 || ip.HeaderLength() > len(ip) {
			t.Fatalf("view %d bytes, total %d, header %d", len(ip), ip.TotalLength(), ip.HeaderLength())
		}
		_, _ = ip.Src(), ip.Dst()
		_ = ip.IsFragment()
		if len(ip.Options())+len(ip.Payload())+20 != len(ip) {
			t.Fatal("options + payload do not add up")
		}
		// parse → encode → parse.
		f := ip.Fields()
		enc := proto.AppendIPv4(nil, &f)
		enc = append(enc, ip.Payload()...)
		ip2, err := proto.ParseIPv4(enc)
		if err != nil {
			t.Fatalf("re-encoded packet does not parse: %v", err)
		}
		f2 := ip2.Fields()
		if !bytes.Equal(f.Options, f2.Options) || !bytes.Equal(ip.Payload(), ip2.Payload()) {
			t.Fatal("options or payload differ")
		}
		f.Options, f2.Options = nil, nil
		if !reflect.DeepEqual(f, f2) {
			t.Fatalf("fields differ:\n%+v\n%+v", f, f2)
		}
		if !ip2.VerifyChecksum() {
			t.Fatal("encoded checksum does not verify")
		}
		// Apart from the checksum, the bytes are the same.
		want := append([]byte(nil), ip...)
		want[10], want[11] = enc[10], enc[11]
		if !bytes.Equal(want, enc) {
			t.Fatalf("re-encoded %x\nparsed       %x", enc, want)
		}
		// DecTTL keeps the checksum correct.
		ttl := ip2.TTL()
		if got := ip2.DecTTL(); ttl > 0 && got != ttl-1 || !ip2.VerifyChecksum() {
			t.Fatalf("DecTTL from %d: %d, checksum ok %v", ttl, got, ip2.VerifyChecksum())
		}
	})
}
