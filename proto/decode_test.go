package proto_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tygress/tygress/proto"
)

// gfDecodeOpts is what the decode tests use: QUIC on 443, 8-byte short
// header DCIDs.
func gfDecodeOpts() *proto.DecodeOptions {
	o := proto.DefaultDecodeOptions()
	return &o
}

func TestDecodeGolden(t *testing.T) {
	const (
		eth  = 14
		ip4  = 34 // eth + 20
		ip6  = 54 // eth + 40
		udp4 = 42 // ip4 + 8
	)
	v6 := func(s string) [16]byte { return gfV6(s) }
	none := proto.FlowKey{}
	tests := []struct {
		name string
		want proto.Decoded
	}{
		{"ipv4_tcp_syn", proto.Decoded{
			Flow:      gfFlow("192.0.2.1", 43210, "198.51.100.2", 443, proto.IPProtoTCP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 6,
			L3Off: eth, L3End: eth + 60, L4Off: ip4, PayloadOff: ip4 + 40,
		}},
		{"ipv4opt_tcp_sack", proto.Decoded{ // IHL 6 (router alert), TCP data offset 13
			Flow:      gfFlow("10.0.0.1", 80, "10.0.0.2", 51000, proto.IPProtoTCP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 6,
			L3Off: eth, L3End: eth + 81, L4Off: eth + 24, PayloadOff: eth + 24 + 52,
		}},
		{"vlan_ipv6_udp", proto.Decoded{
			Flow:      gfFlow("2001:db8::1", 5353, "2001:db8::2", 53, proto.IPProtoUDP),
			EtherType: 0x8100, L3Proto: 0x86dd, VLANs: [2]uint16{3<<13 | 100}, NumVLANs: 1, L4Proto: 17,
			L3Off: eth + 4, L3End: eth + 4 + 40 + 8 + 12, L4Off: eth + 4 + 40, PayloadOff: eth + 4 + 48,
		}},
		{"qinq_ipv4_udp", proto.Decoded{
			Flow:      gfFlow("203.0.113.5", 1234, "203.0.113.6", 5678, proto.IPProtoUDP),
			EtherType: 0x88a8, L3Proto: 0x0800, VLANs: [2]uint16{10, 5<<13 | 20}, NumVLANs: 2, L4Proto: 17,
			L3Off: eth + 8, L3End: eth + 8 + 20 + 8 + 4, L4Off: eth + 8 + 20, PayloadOff: eth + 8 + 28,
		}},
		{"ipv6_ext_tcp", proto.Decoded{ // hop-by-hop 8 bytes, destination options 8 bytes
			Flow:      gfFlow("2001:db8:1::10", 40000, "2001:db8:2::20", 22, proto.IPProtoTCP),
			EtherType: 0x86dd, L3Proto: 0x86dd, L4Proto: 6,
			L3Off: eth, L3End: ip6 + 16 + 20, L4Off: ip6 + 16, PayloadOff: ip6 + 16 + 20,
		}},
		{"ipv6_frag_first_udp", proto.Decoded{ // ports left out of fragments' keys
			Flow:      gfFlow("2001:db8::a", 0, "2001:db8::b", 0, proto.IPProtoUDP),
			EtherType: 0x86dd, L3Proto: 0x86dd, L4Proto: 17, Frag: true,
			L3Off: eth, L3End: ip6 + 8 + 8 + 16, L4Off: ip6 + 8, PayloadOff: ip6 + 16,
		}},
		{"ipv6_frag_later", proto.Decoded{
			Flow:      gfFlow("2001:db8::a", 0, "2001:db8::b", 0, proto.IPProtoUDP),
			EtherType: 0x86dd, L3Proto: 0x86dd, L4Proto: 17, Frag: true, LaterFrag: true,
			L3Off: eth, L3End: ip6 + 8 + 16, PayloadOff: ip6 + 8,
		}},
		{"ipv4_frag_first_udp", proto.Decoded{
			Flow:      gfFlow("192.0.2.7", 0, "192.0.2.8", 0, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17, Frag: true,
			L3Off: eth, L3End: ip4 + 8 + 24, L4Off: ip4, PayloadOff: udp4,
		}},
		{"ipv4_frag_later", proto.Decoded{
			Flow:      gfFlow("192.0.2.7", 0, "192.0.2.8", 0, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17, Frag: true, LaterFrag: true,
			L3Off: eth, L3End: ip4 + 24, PayloadOff: ip4,
		}},
		{"icmpv4_echo", proto.Decoded{
			Flow:      gfFlow("192.0.2.1", 0, "192.0.2.2", 0, proto.IPProtoICMP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 1,
			L3Off: eth, L3End: ip4 + 8 + 4, L4Off: ip4, PayloadOff: ip4 + 8,
		}},
		{"icmpv6_echo", proto.Decoded{
			Flow:      gfFlow("fe80::1", 0, "fe80::2", 0, proto.IPProtoICMPv6),
			EtherType: 0x86dd, L3Proto: 0x86dd, L4Proto: 58,
			L3Off: eth, L3End: ip6 + 8 + 4, L4Off: ip6, PayloadOff: ip6 + 8,
		}},
		{"arp_request", proto.Decoded{
			Flow:      none,
			EtherType: 0x0806, L3Proto: 0x0806,
			L3Off: eth, L3End: eth + 28,
		}},
		{"gre_full", proto.Decoded{ // GRE is not decoded: PayloadOff = L4Off
			Flow:      gfFlow("198.18.0.1", 0, "198.18.0.2", 0, proto.IPProtoGRE),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 47,
			L3Off: eth, L3End: ip4 + 16 + 20 + 8, L4Off: ip4, PayloadOff: ip4,
		}},
		{"gre_key_teb", proto.Decoded{
			Flow:      gfFlow("198.18.0.1", 0, "198.18.0.2", 0, proto.IPProtoGRE),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 47,
			L3Off: eth, L3End: ip4 + 8 + 14 + 20 + 8 + 1, L4Off: ip4, PayloadOff: ip4,
		}},
		{"vxlan", proto.Decoded{
			Flow:      gfFlow("198.18.1.1", 49152, "198.18.1.2", 4789, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 8 + 14 + 20 + 20, L4Off: ip4, PayloadOff: udp4,
		}},
		{"gue_v0", proto.Decoded{
			Flow:      gfFlow("198.18.2.1", 49153, "198.18.2.2", 6080, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 8 + 28, L4Off: ip4, PayloadOff: udp4,
		}},
		{"gue_v1_ipv6", proto.Decoded{
			Flow:      gfFlow("198.18.2.1", 49154, "198.18.2.2", 6080, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 48, L4Off: ip4, PayloadOff: udp4,
		}},
		{"quic_v1_initial", proto.Decoded{
			Flow:      gfFlow("192.0.2.10", 51234, "198.51.100.20", 443, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 1200, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketInitial, QUICVersion: 1,
			QUICPNOff: udp4 + 18, QUICDCID: gfConnID("8394c8f03e515708"),
		}},
		{"quic_v2_initial_v6", proto.Decoded{
			Flow:      proto.FlowKey{Src: v6("2001:db8::10"), Dst: v6("2001:db8::20"), SrcPort: 51234, DstPort: 443, Proto: 17, Family: 6},
			EtherType: 0x86dd, L3Proto: 0x86dd, L4Proto: 17,
			L3Off: eth, L3End: ip6 + 8 + 1200, L4Off: ip6, PayloadOff: ip6 + 8,
			HasQUIC: true, QUICType: proto.QUICPacketInitial, QUICVersion: proto.QUICVersion2,
			QUICPNOff: ip6 + 8 + 18, QUICDCID: gfConnID("8394c8f03e515708"),
		}},
		{"quic_v1_server_coalesced", proto.Decoded{ // empty DCID; the first packet is decoded
			Flow:      gfFlow("198.51.100.20", 443, "192.0.2.10", 51234, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 81 + 59, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketInitial, QUICVersion: 1, QUICPNOff: udp4 + 18,
		}},
		{"quic_v1_initial_token", proto.Decoded{
			Flow:      gfFlow("192.0.2.11", 40000, "198.51.100.21", 443, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 35 + 78, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketInitial, QUICVersion: 1,
			QUICPNOff: udp4 + 35, QUICDCID: gfConnID("0011223344556677"),
		}},
		{"quic_v1_0rtt", proto.Decoded{
			Flow:      gfFlow("192.0.2.11", 40000, "198.51.100.21", 443, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 20 + 36, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacket0RTT, QUICVersion: 1,
			QUICPNOff: udp4 + 20, QUICDCID: gfConnID("0011223344556677"),
		}},
		{"quic_v1_retry", proto.Decoded{
			Flow:      gfFlow("198.51.100.20", 443, "192.0.2.10", 51234, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 36, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketRetry, QUICVersion: 1,
		}},
		{"quic_vn", proto.Decoded{
			Flow:      gfFlow("198.51.100.20", 443, "192.0.2.10", 51234, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 31, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketVersionNegotiation, QUICVersion: 0,
			QUICDCID: gfConnID("aabbccdd"),
		}},
		{"quic_short", proto.Decoded{
			Flow:      gfFlow("192.0.2.10", 51234, "198.51.100.20", 443, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 50, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketShort,
			QUICPNOff: udp4 + 9, QUICDCID: gfConnID("f067a5502a4262b5"),
		}},
		{"quic_unknown_version", proto.Decoded{ // a 21-byte DCID does not fit a ConnID
			Flow:      gfFlow("192.0.2.10", 51234, "198.51.100.20", 443, proto.IPProtoUDP),
			EtherType: 0x0800, L3Proto: 0x0800, L4Proto: 17,
			L3Off: eth, L3End: udp4 + 34, L4Off: ip4, PayloadOff: udp4,
			HasQUIC: true, QUICType: proto.QUICPacketUnknown, QUICVersion: 0xff00001d,
		}},
	}
	if len(tests) != len(gfAll) {
		t.Errorf("%d test cases for %d golden frames", len(tests), len(gfAll))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := gfFrame(t, tc.name)
			var d proto.Decoded
			if err := proto.Decode(frame, &d, gfDecodeOpts()); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d != tc.want {
				t.Errorf("Decode:\n got %+v\nwant %+v", d, tc.want)
			}
			if d.L3End != len(frame) && tc.name != "arp_request" {
				t.Errorf("L3End %d, frame length %d", d.L3End, len(frame))
			}

			// Every prefix shorter than the packet fails cleanly; longer
			// ones (link padding) decode the same.
			for n := range len(frame) {
				var p proto.Decoded
				err := proto.Decode(frame[:n], &p, gfDecodeOpts())
				switch {
				case n < d.L3End && err == nil:
					t.Fatalf("prefix %d: no error, %+v", n, p)
				case n < d.L3End && !gfIsSentinel(err):
					t.Fatalf("prefix %d: %v is not a sentinel", n, err)
				case n >= d.L3End && (err != nil || p != d):
					t.Fatalf("prefix %d: %v, %+v", n, err, p)
				}
			}
			padded := append(frame[:len(frame):len(frame)], make([]byte, 20)...)
			var p proto.Decoded
			if err := proto.Decode(padded, &p, gfDecodeOpts()); err != nil || p != d {
				t.Errorf("padded: %v, %+v", err, p)
			}

			// The flow from the individual views agrees.
			vk, vc, vq, err := gfFlowFromViews(frame, gfDecodeOpts())
			if err != nil || vk != d.Flow || vc != d.QUICDCID || vq != d.HasQUIC {
				t.Errorf("views: %v %+v %v %v", err, vk, vc, vq)
			}
		})
	}
}

// TestDecodeQUICOptions checks that QUIC is decoded only on the configured
// ports and with the configured short header DCID length.
func TestDecodeQUICOptions(t *testing.T) {
	frame := gfFrame(t, "quic_short")
	var d proto.Decoded
	for _, tc := range []struct {
		name    string
		opts    *proto.DecodeOptions
		hasQUIC bool
		dcid    proto.ConnID
		err     error
	}{
		{"nil options", nil, false, proto.ConnID{}, nil},
		{"other port", &proto.DecodeOptions{QUICPorts: []uint16{8443}, QUICShortDCIDLen: 8}, false, proto.ConnID{}, nil},
		{"source port matches", &proto.DecodeOptions{QUICPorts: []uint16{51234}, QUICShortDCIDLen: 4}, true, gfConnID("f067a550"), nil},
		{"zero-length DCID", &proto.DecodeOptions{QUICPorts: []uint16{443}}, true, proto.ConnID{}, nil},
		{"DCID longer than the payload", &proto.DecodeOptions{QUICPorts: []uint16{443}, QUICShortDCIDLen: 20}, true, gfConnID("f067a5502a4262b55a6465666768696a6b6c6d6e"), nil},
		{"DCID length too large", &proto.DecodeOptions{QUICPorts: []uint16{443}, QUICShortDCIDLen: 21}, false, proto.ConnID{}, proto.ErrBadValue},
		{"negative DCID length", &proto.DecodeOptions{QUICPorts: []uint16{443}, QUICShortDCIDLen: -1}, false, proto.ConnID{}, proto.ErrBadValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := proto.Decode(frame, &d, tc.opts)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if d.HasQUIC != tc.hasQUIC || d.QUICDCID != tc.dcid {
				t.Errorf("HasQUIC %v DCID %v, want %v %v", d.HasQUIC, d.QUICDCID, tc.hasQUIC, tc.dcid)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	mod := func(name string, f func(b []byte) []byte) []byte { return f(gfFrame(t, name)) }
	tests := []struct {
		name  string
		frame []byte
		opts  *proto.DecodeOptions
		layer proto.Layer
		err   error
	}{
		{"empty", nil, nil, proto.LayerEthernet, proto.ErrTooShort},
		{"three VLAN tags", mod("qinq_ipv4_udp", func(b []byte) []byte {
			// Insert a third tag after the second.
			out := append([]byte(nil), b[:22]...)
			out[20], out[21] = 0x81, 0x00
			return append(append(out, 0, 30, 0x08, 0x00), b[22:]...)
		}), nil, proto.LayerVLAN, proto.ErrTooManyHeaders},
		{"IPv4 version 5", mod("ipv4_tcp_syn", func(b []byte) []byte { b[14] = 0x55; return b }), nil, proto.LayerIPv4, proto.ErrBadVersion},
		{"IPv4 IHL 4", mod("ipv4_tcp_syn", func(b []byte) []byte { b[14] = 0x44; return b }), nil, proto.LayerIPv4, proto.ErrBadHeaderLength},
		{"IPv4 total length below IHL", mod("ipv4_tcp_syn", func(b []byte) []byte { b[16], b[17] = 0, 19; return b }), nil, proto.LayerIPv4, proto.ErrLengthMismatch},
		{"IPv4 bad checksum", mod("ipv4_tcp_syn", func(b []byte) []byte { b[24] ^= 1; return b }), &proto.DecodeOptions{VerifyIPv4Checksum: true}, proto.LayerIPv4, proto.ErrBadChecksum},
		{"IPv6 version 4", mod("vlan_ipv6_udp", func(b []byte) []byte { b[18] = 0x40; return b }), nil, proto.LayerIPv6, proto.ErrBadVersion},
		{"IPv6 jumbogram", mod("ipv6_ext_tcp", func(b []byte) []byte { b[18], b[19] = 0, 0; return b }), nil, proto.LayerIPv6, proto.ErrUnsupported},
		{"IPv6 extension past the end", mod("ipv6_ext_tcp", func(b []byte) []byte { b[14+40+1] = 200; return b }), nil, proto.LayerIPv6Ext, proto.ErrTooShort},
		{"TCP data offset 4", mod("ipv4_tcp_syn", func(b []byte) []byte { b[34+12] = 0x40; return b }), nil, proto.LayerTCP, proto.ErrBadHeaderLength},
		{"TCP data offset past the end", mod("ipv4_tcp_syn", func(b []byte) []byte { b[34+12] = 0xf0; return b }), nil, proto.LayerTCP, proto.ErrTooShort},
		{"UDP length 7", mod("qinq_ipv4_udp", func(b []byte) []byte { b[42+4], b[42+5] = 0, 7; return b }), nil, proto.LayerUDP, proto.ErrBadHeaderLength},
		{"UDP length past the IP packet", mod("qinq_ipv4_udp", func(b []byte) []byte { b[42+5]++; return b }), nil, proto.LayerUDP, proto.ErrTooShort},
		{"ICMPv4 short", mod("icmpv4_echo", func(b []byte) []byte { b[17] -= 5; return b[:len(b)-5] }), nil, proto.LayerICMPv4, proto.ErrTooShort},
		{"ICMPv6 short", mod("icmpv6_echo", func(b []byte) []byte { b[19] -= 5; return b[:len(b)-5] }), nil, proto.LayerICMPv6, proto.ErrTooShort},
		{"ARP for IPv6", mod("arp_request", func(b []byte) []byte { b[16], b[17] = 0x86, 0xdd; return b }), nil, proto.LayerARP, proto.ErrUnsupported},
		{"QUIC v1 DCID of 21 bytes", mod("quic_v1_initial", func(b []byte) []byte { b[42+5] = 21; return b }), gfDecodeOpts(), proto.LayerQUIC, proto.ErrBadValue},
		{"QUIC Initial length past the datagram", mod("quic_v1_initial", func(b []byte) []byte { b[42+17]++; return b }), gfDecodeOpts(), proto.LayerQUIC, proto.ErrTooShort},
		{"QUIC short header shorter than the DCID", mod("quic_short", func(b []byte) []byte {
			b[16], b[17] = 0, 20+8+4 // IPv4 total length
			b[38], b[39] = 0, 8+4    // UDP length
			return b[:42+4]
		}), gfDecodeOpts(), proto.LayerQUIC, proto.ErrTooShort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d proto.Decoded
			err := proto.Decode(tc.frame, &d, tc.opts)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			var pe *proto.ParseError
			if !errors.As(err, &pe) || pe.Layer != tc.layer {
				t.Errorf("err = %v, want layer %v", err, tc.layer)
			}
		})
	}
}

func TestDecodeUnknownProtocols(t *testing.T) {
	// An unknown EtherType and an unknown IP protocol end decoding without
	// error.
	f := gfFrame(t, "ipv4_tcp_syn")
	f[12], f[13] = 0x88, 0xcc // LLDP
	var d proto.Decoded
	if err := proto.Decode(f, &d, nil); err != nil || d.L3Proto != 0x88cc || d.L3Off != 14 || d.L4Off != 0 || d.Flow != (proto.FlowKey{}) {
		t.Errorf("LLDP: %v %+v", err, d)
	}
	f = gfFrame(t, "ipv4_tcp_syn")
	f[14+9] = 132 // SCTP
	if err := proto.Decode(f, &d, nil); err != nil || d.L4Proto != 132 || d.L4Off != 34 || d.PayloadOff != 34 || d.Flow.SrcPort != 0 {
		t.Errorf("SCTP: %v %+v", err, d)
	}
}

func TestDecodeAllocs(t *testing.T) {
	opts := gfDecodeOpts()
	var d proto.Decoded
	bad := gfFrame(t, "ipv4_tcp_syn")[:40]
	for _, g := range gfAll {
		if n := testing.AllocsPerRun(100, func() { _ = proto.Decode(g.frame, &d, opts) }); n != 0 {
			t.Errorf("%s: %v allocations", g.name, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = proto.Decode(bad, &d, opts) }); n != 0 {
		t.Errorf("failing decode: %v allocations", n)
	}
}

// gfFlowFromViews computes what Decode computes, the slow way: through the
// checked constructors of each layer.
func gfFlowFromViews(frame []byte, opts *proto.DecodeOptions) (k proto.FlowKey, dcid proto.ConnID, hasQUIC bool, err error) {
	e, err := proto.ParseEthernet(frame)
	if err != nil {
		return k, dcid, false, err
	}
	et, p := e.EtherType(), e.Payload()
	for i := 0; et == proto.EtherTypeVLAN || et == proto.EtherTypeQinQ; i++ {
		if i == 2 {
			return k, dcid, false, fmt.Errorf("vlan: %w", proto.ErrTooManyHeaders)
		}
		v, err := proto.ParseVLAN(p)
		if err != nil {
			return k, dcid, false, err
		}
		et, p = v.EtherType(), v.Payload()
	}
	var l4 []byte
	var frag bool
	switch et {
	case proto.EtherTypeARP:
		_, err := proto.ParseARP(p)
		return k, dcid, false, err
	case proto.EtherTypeIPv4:
		ip, err := proto.ParseIPv4(p)
		if err != nil {
			return k, dcid, false, err
		}
		k.SetIPv4(ip.SrcArray(), ip.DstArray())
		k.Proto = ip.Protocol()
		if ip.IsFragment() {
			frag = true
			if ip.FragmentOffset() != 0 {
				return k, dcid, false, nil
			}
		}
		l4 = ip.Payload()
	case proto.EtherTypeIPv6:
		ip, err := proto.ParseIPv6(p)
		if err != nil {
			return k, dcid, false, err
		}
		k.SetIPv6(ip.SrcArray(), ip.DstArray())
		ext, err := proto.WalkIPv6(ip)
		if err != nil {
			return k, dcid, false, err
		}
		k.Proto = ext.Proto
		if ext.FragOffset >= 0 {
			frag = true
			f, err := proto.ParseIPv6Fragment(ip[ext.FragOffset:])
			if err != nil {
				return k, dcid, false, err
			}
			if f.FragmentOffset() != 0 {
				return k, dcid, false, nil
			}
		}
		l4 = ip[ext.Offset:]
	default:
		return k, dcid, false, nil
	}
	switch {
	case k.Proto == proto.IPProtoTCP:
		t, err := proto.ParseTCP(l4)
		if err != nil {
			return k, dcid, false, err
		}
		if !frag {
			k.SrcPort, k.DstPort = t.SrcPort(), t.DstPort()
		}
	case k.Proto == proto.IPProtoUDP && frag:
		if len(l4) < proto.UDPHeaderLen {
			return k, dcid, false, fmt.Errorf("udp: %w", proto.ErrTooShort)
		}
	case k.Proto == proto.IPProtoUDP:
		u, err := proto.ParseUDP(l4)
		if err != nil {
			return k, dcid, false, err
		}
		k.SrcPort, k.DstPort = u.SrcPort(), u.DstPort()
		quic := false
		for _, port := range opts.QUICPorts {
			quic = quic || port == k.SrcPort || port == k.DstPort
		}
		if !quic || len(u.Payload()) == 0 {
			return k, dcid, false, nil
		}
		if proto.IsQUICLongHeader(u.Payload()) {
			h, _, err := proto.ParseQUICLongHeader(u.Payload())
			if err != nil {
				return k, dcid, false, err
			}
			if len(h.DCID) <= proto.MaxConnIDLen {
				dcid, _ = proto.ConnIDFromBytes(h.DCID)
			}
			return k, dcid, true, nil
		}
		h, _, err := proto.ParseQUICShortHeader(u.Payload(), opts.QUICShortDCIDLen)
		if err != nil {
			return k, dcid, false, err
		}
		dcid, err = proto.ConnIDFromBytes(h.DCID)
		return k, dcid, true, err
	case k.Proto == proto.IPProtoICMP && k.Family == proto.FamilyIPv4:
		_, err := proto.ParseICMPv4(l4)
		return k, dcid, false, err
	case k.Proto == proto.IPProtoICMPv6 && k.Family == proto.FamilyIPv6:
		if len(l4) < proto.ICMPv6HeaderLen {
			return k, dcid, false, fmt.Errorf("icmpv6: %w", proto.ErrTooShort)
		}
	}
	return k, dcid, false, nil
}

func FuzzDecode(f *testing.F) {
	for _, g := range gfAll {
		f.Add(g.frame, uint8(8))
	}
	f.Fuzz(func(t *testing.T, frame []byte, dcidLen uint8) {
		opts := &proto.DecodeOptions{QUICPorts: []uint16{443, 4433}, QUICShortDCIDLen: int(dcidLen % 24)}
		var d proto.Decoded
		err := proto.Decode(frame, &d, opts)
		vk, vc, vq, verr := gfFlowFromViews(frame, opts)
		if err != nil {
			if !gfIsSentinel(err) {
				t.Fatalf("error %v is not a sentinel", err)
			}
			if verr == nil {
				t.Fatalf("Decode: %v, views: no error", err)
			}
			return
		}
		if verr != nil {
			t.Fatalf("Decode: no error, views: %v", verr)
		}
		if vk != d.Flow || vc != d.QUICDCID || vq != d.HasQUIC {
			t.Fatalf("Decode %+v %v %v, views %+v %v %v", d.Flow, d.QUICDCID, d.HasQUIC, vk, vc, vq)
		}
		if r := d.Flow.Reverse(); d.Flow.Hash(7) != r.Hash(7) {
			t.Fatalf("hash not symmetric for %+v", d.Flow)
		}
		if d.L3End > len(frame) || d.L4Off > d.L3End || d.PayloadOff > d.L3End || d.QUICPNOff > d.L3End {
			t.Fatalf("offsets past the packet: %+v (len %d)", d, len(frame))
		}
	})
}

// Benchmarks of the three frames the bench module compares against
// gopacket and gVisor: decoding to a flow key.

func benchmarkDecode(b *testing.B, name string) {
	frame := gfFrame(b, name)
	opts := gfDecodeOpts()
	var d proto.Decoded
	if err := proto.Decode(frame, &d, opts); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_ = proto.Decode(frame, &d, opts)
	}
	if d.Flow.Family == 0 {
		b.Fatal("no flow")
	}
}

func BenchmarkDecodeIPv4TCP(b *testing.B)          { benchmarkDecode(b, "ipv4_tcp_syn") }
func BenchmarkDecodeVLANIPv6UDP(b *testing.B)      { benchmarkDecode(b, "vlan_ipv6_udp") }
func BenchmarkDecodeIPv4UDPQUICShort(b *testing.B) { benchmarkDecode(b, "quic_short") }
