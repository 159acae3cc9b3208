package proto_test

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tygress/tygress/proto"
)

// l3Hex decodes hex with any whitespace in it. It panics on bad input: it
// only reads constants of this package's tests.
func l3Hex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

var (
	l3M1  = [6]byte{2, 0, 0, 0, 0, 1}
	l3M2  = [6]byte{2, 0, 0, 0, 0, 2}
	l3A4  = [4]byte{192, 0, 2, 1}
	l3B4  = [4]byte{198, 51, 100, 7}
	l3A6  = netip.MustParseAddr("2001:db8::1").As16()
	l3B6  = netip.MustParseAddr("2001:db8:1::2").As16()
	l3LL6 = netip.MustParseAddr("fe80::1").As16()
	l3LLb = netip.MustParseAddr("fe80::2").As16()
)

// l3Sentinels are the errors every failed parse must match with errors.Is.
var l3Sentinels = []error{
	proto.ErrTooShort, proto.ErrBadVersion, proto.ErrBadHeaderLength,
	proto.ErrLengthMismatch, proto.ErrBadChecksum, proto.ErrBadOption,
	proto.ErrUnsupported, proto.ErrBadValue, proto.ErrTooManyHeaders,
}

// l3CheckErr fails unless err is a *proto.ParseError wrapping a sentinel.
func l3CheckErr(t *testing.T, err error) {
	t.Helper()
	var pe *proto.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *proto.ParseError", err, err)
	}
	for _, s := range l3Sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v matches no sentinel", err)
}

// l3Decode parses a packet with every constructor of the link, network and
// ICMP layers that applies, the way a decoder would, and returns the first
// error. link says whether b starts with an Ethernet header.
func l3Decode(b []byte, link bool) error {
	etherType := proto.EtherTypeIPv4
	if link {
		if _, err := proto.ParseEthernet(b); err != nil {
			return err
		}
		et, off, _, n, err := proto.SkipVLANs(b)
		if err != nil {
			return err
		}
		if n > 0 {
			if _, err := proto.ParseVLAN(b[proto.EthernetLen:]); err != nil {
				return err
			}
		}
		etherType, b = et, b[off:]
	} else if len(b) > 0 && b[0]>>4 == 6 {
		etherType = proto.EtherTypeIPv6
	}
	switch etherType {
	case proto.EtherTypeARP:
		_, err := proto.ParseARP(b)
		return err
	case proto.EtherTypeIPv4:
		ip, err := proto.ParseIPv4(b)
		if err != nil {
			return err
		}
		if ip.Protocol() != proto.IPProtoICMP || ip.IsFragment() {
			return nil
		}
		m, err := proto.ParseICMPv4(ip.Payload())
		if err != nil {
			return err
		}
		if q := m.Quoted(); q != nil {
			_, err = proto.ParseIPv4Quoted(q)
		}
		return err
	case proto.EtherTypeIPv6:
		ip, err := proto.ParseIPv6(b)
		if err != nil {
			return err
		}
		ext, err := proto.WalkIPv6(ip)
		if err != nil {
			return err
		}
		if ext.FragOffset >= 0 {
			if _, err := proto.ParseIPv6Fragment(ip[ext.FragOffset:]); err != nil {
				return err
			}
		}
		if ext.Proto != proto.IPProtoICMPv6 {
			return nil
		}
		m, err := proto.ParseICMPv6(ip[ext.Offset:])
		if err != nil {
			return err
		}
		if q := m.Quoted(); q != nil {
			qip, err := proto.ParseIPv6Quoted(q)
			if err != nil {
				return err
			}
			_, err = proto.WalkIPv6(qip)
			return err
		}
		for opts := m.Options(); len(opts) > 0; {
			typ, body, rest, err := opts.Next()
			if err != nil {
				return err
			}
			if typ == proto.NDPOptPrefixInfo {
				if _, err := proto.ParseNDPPrefixInfo(body); err != nil {
					return err
				}
			}
			opts = rest
		}
		return nil
	}
	return nil
}

type l3GoldenPacket struct {
	name    string
	data    []byte
	link    bool  // starts with an Ethernet header
	minLen  int   // shortest prefix that decodes (the rest is padding); 0 means len(data)
	wantErr error // the whole packet is rejected with this sentinel
}

func l3Goldens() []l3GoldenPacket {
	return []l3GoldenPacket{
		{name: "EthIPv4ICMPEcho", data: l3GoldenEthIPv4ICMPEcho, link: true},
		{name: "EthARPRequest", data: l3GoldenEthARPRequest, link: true},
		{name: "EthARPReplyPadded", data: l3GoldenEthARPReplyPadded, link: true, minLen: 42},
		{name: "EthVLANIPv4UDP", data: l3GoldenEthVLANIPv4UDP, link: true},
		{name: "EthQinQIPv6ICMPv6Echo", data: l3GoldenEthQinQIPv6ICMPv6Echo, link: true},
		{name: "EthTripleTag", data: l3GoldenEthTripleTag, link: true, wantErr: proto.ErrTooManyHeaders},
		{name: "IPv4OptionsUDP", data: l3GoldenIPv4OptionsUDP},
		{name: "IPv4FragmentMF", data: l3GoldenIPv4FragmentMF},
		{name: "IPv4FragmentLast", data: l3GoldenIPv4FragmentLast},
		{name: "IPv4ICMPFragNeeded", data: l3GoldenIPv4ICMPFragNeeded},
		{name: "IPv4ICMPTimeExceeded", data: l3GoldenIPv4ICMPTimeExceeded},
		{name: "IPv6ExtChainUDP", data: l3GoldenIPv6ExtChainUDP},
		{name: "IPv6FragmentNonFirst", data: l3GoldenIPv6FragmentNonFirst},
		{name: "IPv6AHTCP", data: l3GoldenIPv6AHTCP},
		{name: "IPv6NoNextHeader", data: l3GoldenIPv6NoNextHeader},
		{name: "ICMPv6NS", data: l3GoldenICMPv6NS},
		{name: "ICMPv6NA", data: l3GoldenICMPv6NA},
		{name: "ICMPv6RA", data: l3GoldenICMPv6RA},
		{name: "ICMPv6RS", data: l3GoldenICMPv6RS},
		{name: "ICMPv6Redirect", data: l3GoldenICMPv6Redirect},
		{name: "ICMPv6PacketTooBig", data: l3GoldenICMPv6PacketTooBig},
		{name: "ICMPv6TimeExceeded", data: l3GoldenICMPv6TimeExceeded},
		{name: "ICMPv6ParamProblem", data: l3GoldenICMPv6ParamProblem},
	}
}

// TestL3Truncation feeds every prefix of every golden packet to the
// decoder: each prefix shorter than the packet must fail cleanly with a
// *ParseError wrapping a sentinel, and each one at least as long must
// decode.
func TestL3Truncation(t *testing.T) {
	for _, g := range l3Goldens() {
		t.Run(g.name, func(t *testing.T) {
			minLen := g.minLen
			if minLen == 0 {
				minLen = len(g.data)
			}
			for n := 0; n <= len(g.data); n++ {
				// A fresh copy of exactly n bytes, so that reading past
				// the prefix would panic rather than see the rest.
				b := append([]byte(nil), g.data[:n]...)
				err := l3Decode(b, g.link)
				switch {
				case n < minLen || g.wantErr != nil:
					if err == nil {
						t.Fatalf("prefix %d/%d: decoded, want an error", n, len(g.data))
					}
					l3CheckErr(t, err)
					if n == len(g.data) && !errors.Is(err, g.wantErr) {
						t.Fatalf("whole packet: error %v, want %v", err, g.wantErr)
					}
				case err != nil:
					t.Fatalf("prefix %d/%d: %v", n, len(g.data), err)
				}
			}
		})
	}
}

// TestL3ParseErrors checks the sentinel and layer of hand-made bad headers.
func TestL3ParseErrors(t *testing.T) {
	ipv4 := func(edit func(b []byte)) []byte {
		b := append([]byte(nil), l3GoldenIPv4OptionsUDP...)
		edit(b)
		return b
	}
	ipv6 := func(edit func(b []byte)) []byte {
		b := append([]byte(nil), l3GoldenIPv6ExtChainUDP...)
		edit(b)
		return b
	}
	arp := func(edit func(b []byte)) []byte {
		b := append([]byte(nil), l3GoldenEthARPRequest[proto.EthernetLen:]...)
		edit(b)
		return b
	}
	tests := []struct {
		name  string
		parse func() error
		want  error
		layer proto.Layer
	}{
		{"ipv4/version", func() error { _, err := proto.ParseIPv4(ipv4(func(b []byte) { b[0] = 0x68 })); return err }, proto.ErrBadVersion, proto.LayerIPv4},
		{"ipv4/ihl<5", func() error { _, err := proto.ParseIPv4(ipv4(func(b []byte) { b[0] = 0x44 })); return err }, proto.ErrBadHeaderLength, proto.LayerIPv4},
		{"ipv4/ihl>len", func() error { _, err := proto.ParseIPv4(ipv4(func(b []byte) { b[0] = 0x4f })); return err }, proto.ErrTooShort, proto.LayerIPv4},
		{"ipv4/total<ihl", func() error { _, err := proto.ParseIPv4(ipv4(func(b []byte) { b[3] = 31 })); return err }, proto.ErrLengthMismatch, proto.LayerIPv4},
		{"ipv4/total>len", func() error { _, err := proto.ParseIPv4(ipv4(func(b []byte) { b[3] = 42 })); return err }, proto.ErrTooShort, proto.LayerIPv4},
		{"ipv4quoted/version", func() error {
			_, err := proto.ParseIPv4Quoted(ipv4(func(b []byte) { b[0] = 0x65 }))
			return err
		}, proto.ErrBadVersion, proto.LayerIPv4},
		{"ipv6/version", func() error { _, err := proto.ParseIPv6(ipv6(func(b []byte) { b[0] = 0x40 })); return err }, proto.ErrBadVersion, proto.LayerIPv6},
		{"ipv6/jumbo", func() error { _, err := proto.ParseIPv6(ipv6(func(b []byte) { b[4], b[5] = 0, 0 })); return err }, proto.ErrUnsupported, proto.LayerIPv6},
		{"ipv6/payload>len", func() error { _, err := proto.ParseIPv6(ipv6(func(b []byte) { b[5]++ })); return err }, proto.ErrTooShort, proto.LayerIPv6},
		{"ipv6ext/hbh-not-first", func() error {
			ip, _ := proto.ParseIPv6(ipv6(func(b []byte) { b[40] = 0 })) // HBH's next header: HBH again
			_, err := proto.WalkIPv6(ip)
			return err
		}, proto.ErrBadValue, proto.LayerIPv6Ext},
		{"ipv6ext/overrun", func() error {
			ip, _ := proto.ParseIPv6(ipv6(func(b []byte) { b[41] = 200 })) // HBH length 201×8
			_, err := proto.WalkIPv6(ip)
			return err
		}, proto.ErrTooShort, proto.LayerIPv6Ext},
		{"arp/htype", func() error { _, err := proto.ParseARP(arp(func(b []byte) { b[1] = 6 })); return err }, proto.ErrUnsupported, proto.LayerARP},
		{"arp/ptype", func() error { _, err := proto.ParseARP(arp(func(b []byte) { b[2] = 0x86 })); return err }, proto.ErrUnsupported, proto.LayerARP},
		{"arp/hlen", func() error { _, err := proto.ParseARP(arp(func(b []byte) { b[4] = 8 })); return err }, proto.ErrBadValue, proto.LayerARP},
		{"arp/plen", func() error { _, err := proto.ParseARP(arp(func(b []byte) { b[5] = 16 })); return err }, proto.ErrBadValue, proto.LayerARP},
		{"icmpv6/ns-code", func() error {
			b := append([]byte(nil), l3GoldenICMPv6NS[proto.IPv6HeaderLen:]...)
			b[1] = 1
			_, err := proto.ParseICMPv6(b)
			return err
		}, proto.ErrBadValue, proto.LayerICMPv6},
		{"icmpv6/na-short", func() error {
			_, err := proto.ParseICMPv6(l3GoldenICMPv6NA[proto.IPv6HeaderLen : proto.IPv6HeaderLen+20])
			return err
		}, proto.ErrTooShort, proto.LayerICMPv6},
		{"ndp/zero-length-option", func() error {
			o := proto.NDPOptions{1, 1, 2, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0}
			return o.Validate()
		}, proto.ErrBadOption, proto.LayerICMPv6},
		{"ndp/overrun", func() error {
			o := proto.NDPOptions{1, 2, 2, 0, 0, 0, 0, 1}
			return o.Validate()
		}, proto.ErrTooShort, proto.LayerICMPv6},
		{"ndp/prefix-info-length", func() error {
			_, err := proto.ParseNDPPrefixInfo(make([]byte, 38))
			return err
		}, proto.ErrBadOption, proto.LayerICMPv6},
		{"vlan/short", func() error {
			_, err := proto.ParseVLAN([]byte{1, 2, 3})
			return err
		}, proto.ErrTooShort, proto.LayerVLAN},
		{"vlan/triple", func() error {
			_, _, _, _, err := proto.SkipVLANs(l3GoldenEthTripleTag)
			return err
		}, proto.ErrTooManyHeaders, proto.LayerVLAN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var pe *proto.ParseError
			if !errors.As(err, &pe) || pe.Layer != tt.layer {
				t.Fatalf("error %v: want layer %v", err, tt.layer)
			}
		})
	}
}

var (
	l3SinkInt  int
	l3SinkAddr netip.Addr
	l3SinkErr  error
)

// TestL3Allocs proves that parsing (successful or not), walking, accessors,
// setters and checksums never allocate.
func TestL3Allocs(t *testing.T) {
	frame := append([]byte(nil), l3GoldenEthIPv4ICMPEcho...)
	v6 := append([]byte(nil), l3GoldenIPv6ExtChainUDP...)
	ra := append([]byte(nil), l3GoldenICMPv6RA...)
	bad := []byte{0x45, 0, 0}
	encBuf := make([]byte, 0, 512)
	tests := []struct {
		name string
		fn   func()
	}{
		{"ethernet+ipv4+icmp", func() {
			e, _ := proto.ParseEthernet(frame)
			et, off, vids, n, _ := proto.SkipVLANs(frame)
			ip, _ := proto.ParseIPv4(frame[off:])
			m, _ := proto.ParseICMPv4(ip.Payload())
			d, s := e.Dst(), e.Src()
			l3SinkInt += int(d[0]) + int(s[5]) + int(et) + int(vids[0]) + n + int(e.EtherType())
			l3SinkAddr = ip.Src()
			l3SinkAddr = ip.Dst()
			l3SinkInt += int(ip.TTL()) + int(ip.TotalLength()) + ip.HeaderLength() + len(ip.Options()) + int(ip.FragmentOffset())
			if ip.VerifyChecksum() && m.VerifyChecksum() {
				l3SinkInt++
			}
			ip.DecTTL()
			ip.SetTTL(64)
			ip.UpdateChecksum()
			old := ip.RewriteDst(l3B4)
			ip.RewriteDst(old)
			l3SinkInt += int(m.ID()) + int(m.Seq()) + len(m.Payload())
		}},
		{"ipv6+walk", func() {
			ip, _ := proto.ParseIPv6(v6)
			ext, _ := proto.WalkIPv6(ip)
			f, _ := proto.ParseIPv6Fragment(ip[ext.FragOffset:])
			l3SinkAddr = ip.Src()
			l3SinkInt += ext.Offset + int(f.ID()) + int(ip.FlowLabel()) + int(ip.HopLimit())
		}},
		{"icmpv6+ndp", func() {
			ip, _ := proto.ParseIPv6(ra)
			m, _ := proto.ParseICMPv6(ip.Payload())
			if m.VerifyChecksum(ip.SrcArray(), ip.DstArray()) {
				l3SinkInt++
			}
			for opts := m.Options(); len(opts) > 0; {
				typ, body, rest, err := opts.Next()
				if err != nil {
					break
				}
				if typ == proto.NDPOptPrefixInfo {
					p, _ := proto.ParseNDPPrefixInfo(body)
					l3SinkInt += p.Prefix().Bits()
				}
				opts = rest
			}
			ll, _ := m.Options().LinkLayerAddress(proto.NDPOptSourceLinkLayer)
			mtu, _ := m.Options().MTU()
			l3SinkInt += int(ll[5]) + int(mtu)
		}},
		{"encoders into spare capacity", func() {
			b := encBuf[:0]
			b = proto.AppendEthernet(b, l3M2, l3M1, proto.EtherTypeIPv4)
			f4 := proto.IPv4Fields{TotalLength: 28, TTL: 64, Protocol: proto.IPProtoICMP, Src: l3A4, Dst: l3B4}
			b = proto.AppendIPv4(b, &f4)
			b = proto.AppendICMPv4Echo(b, proto.ICMPv4EchoRequest, 1, 2, nil)
			f6 := proto.IPv6Fields{PayloadLength: 32, NextHeader: proto.IPProtoICMPv6, HopLimit: 255, Src: l3LLb, Dst: l3LL6}
			b = proto.AppendIPv6(b, &f6)
			b = proto.AppendICMPv6NeighborAdvertisement(b, l3LLb, l3LL6, l3LLb, proto.NDPFlagSolicited, l3M2)
			b = proto.AppendARP(b, proto.ARPReply, l3M1, l3A4, l3M2, l3B4)
			l3SinkInt += len(b)
		}},
		{"failing parses", func() {
			_, l3SinkErr = proto.ParseEthernet(bad)
			_, l3SinkErr = proto.ParseIPv4(bad)
			_, l3SinkErr = proto.ParseIPv6(bad)
			_, l3SinkErr = proto.ParseARP(bad)
			_, l3SinkErr = proto.ParseICMPv4(bad)
			_, l3SinkErr = proto.ParseICMPv6(bad)
			_, _, _, _, l3SinkErr = proto.SkipVLANs(l3GoldenEthTripleTag)
			l3SinkErr = proto.NDPOptions{1, 0}.Validate()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Errorf("allocs = %v, want 0", n)
			}
		})
	}
}

func BenchmarkParseEthernetIPv4(b *testing.B) {
	frame := l3GoldenEthVLANIPv4UDP
	b.ReportAllocs()
	for b.Loop() {
		_, off, _, _, err := proto.SkipVLANs(frame)
		if err != nil {
			b.Fatal(err)
		}
		ip, err := proto.ParseIPv4(frame[off:])
		if err != nil {
			b.Fatal(err)
		}
		l3SinkInt += int(ip.Protocol())
	}
}

func BenchmarkParseIPv4(b *testing.B) {
	pkt := l3GoldenIPv4OptionsUDP
	b.ReportAllocs()
	for b.Loop() {
		ip, err := proto.ParseIPv4(pkt)
		if err != nil {
			b.Fatal(err)
		}
		l3SinkInt += int(ip.Protocol())
	}
}

func BenchmarkParseIPv6Walk(b *testing.B) {
	pkt := l3GoldenIPv6ExtChainUDP
	b.ReportAllocs()
	for b.Loop() {
		ip, err := proto.ParseIPv6(pkt)
		if err != nil {
			b.Fatal(err)
		}
		ext, err := proto.WalkIPv6(ip)
		if err != nil {
			b.Fatal(err)
		}
		l3SinkInt += ext.Offset
	}
}

func BenchmarkParseICMPv6NDP(b *testing.B) {
	pkt := l3GoldenICMPv6RA[proto.IPv6HeaderLen:]
	b.ReportAllocs()
	for b.Loop() {
		m, err := proto.ParseICMPv6(pkt)
		if err != nil {
			b.Fatal(err)
		}
		ll, _ := m.Options().LinkLayerAddress(proto.NDPOptSourceLinkLayer)
		l3SinkInt += int(ll[5])
	}
}

func BenchmarkIPv4DecTTL(b *testing.B) {
	pkt := append([]byte(nil), l3GoldenIPv4OptionsUDP...)
	ip, _ := proto.ParseIPv4(pkt)
	b.ReportAllocs()
	for b.Loop() {
		if ip.DecTTL() == 0 {
			ip.SetTTL(255)
		}
	}
}

func BenchmarkIPv4VerifyChecksum(b *testing.B) {
	ip, _ := proto.ParseIPv4(l3GoldenIPv4OptionsUDP)
	b.ReportAllocs()
	for b.Loop() {
		if !ip.VerifyChecksum() {
			b.Fatal("bad checksum")
		}
	}
}
