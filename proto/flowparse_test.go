package proto_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tygress/tygress/proto"
)

// ParseFlow is checked against Decode: for every frame and options, the
// same error (the same *ParseError value) and, on success, the same key,
// QUIC DCID and HasQUIC; on error, the zero Flow.

// flowFromDecode runs Decode and returns what ParseFlow must return.
func flowFromDecode(frame []byte, opts *proto.DecodeOptions) (proto.Flow, error) {
	var d proto.Decoded
	err := proto.Decode(frame, &d, opts)
	if err != nil {
		return proto.Flow{}, err
	}
	return proto.Flow{Key: d.Flow, QUICDCID: d.QUICDCID, HasQUIC: d.HasQUIC}, nil
}

// checkFlow fails t if ParseFlow and Decode disagree on frame. f is
// ParseFlow's result, dirtied first so that a field ParseFlow forgets to
// write shows up.
func checkFlow(t *testing.T, what string, frame []byte, opts *proto.DecodeOptions) (proto.Flow, error) {
	t.Helper()
	want, werr := flowFromDecode(frame, opts)
	f := dirtyFlow()
	err := proto.ParseFlow(frame, &f, opts)
	if err != werr {
		t.Fatalf("%s: ParseFlow error %v, Decode %v", what, err, werr)
	}
	if f != want {
		t.Fatalf("%s: ParseFlow %+v\nDecode %+v", what, f, want)
	}
	return f, err
}

// dirtyFlow returns a Flow with every byte set.
func dirtyFlow() proto.Flow {
	var f proto.Flow
	for i := range f.Key.Src {
		f.Key.Src[i], f.Key.Dst[i] = 0xee, 0xdd
	}
	f.Key.SrcPort, f.Key.DstPort, f.Key.Proto, f.Key.Family = 1, 2, 3, 5
	f.QUICDCID = gfConnID("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
	f.HasQUIC = true
	return f
}

// flowOptions are the options the differential tests run with.
func flowOptions() []*proto.DecodeOptions {
	return []*proto.DecodeOptions{
		nil,
		gfDecodeOpts(),
		{QUICPorts: []uint16{8443, 443}, QUICShortDCIDLen: 4},
		{QUICPorts: []uint16{443}, QUICShortDCIDLen: 20},
		{QUICPorts: []uint16{443}, QUICShortDCIDLen: 0},
		{QUICPorts: []uint16{443}, QUICShortDCIDLen: 21},
		{QUICPorts: []uint16{51234}, QUICShortDCIDLen: 8},
		{QUICPorts: []uint16{8443, 4433, 443}, QUICShortDCIDLen: 8},
		{QUICPorts: []uint16{}, QUICShortDCIDLen: 8},
		{QUICPorts: []uint16{443}, QUICShortDCIDLen: 8, VerifyIPv4Checksum: true},
		{VerifyIPv4Checksum: true},
	}
}

// flowFrames returns the golden frames of decode_test.go and the
// Ethernet-level ones of l3golden_test.go, with the raw IP packets there
// put in an Ethernet header.
func flowFrames() []struct {
	name  string
	frame []byte
} {
	fs := append([]struct {
		name  string
		frame []byte
	}(nil), gfAll...)
	add := func(name string, b []byte) {
		fs = append(fs, struct {
			name  string
			frame []byte
		}{name, b})
	}
	for _, e := range []struct {
		name string
		b    []byte
	}{
		{"l3_eth_ipv4_icmp_echo", l3GoldenEthIPv4ICMPEcho},
		{"l3_eth_arp_request", l3GoldenEthARPRequest},
		{"l3_eth_arp_reply_padded", l3GoldenEthARPReplyPadded},
		{"l3_eth_vlan_ipv4_udp", l3GoldenEthVLANIPv4UDP},
		{"l3_eth_qinq_ipv6_icmpv6", l3GoldenEthQinQIPv6ICMPv6Echo},
		{"l3_eth_triple_tag", l3GoldenEthTripleTag},
	} {
		add(e.name, e.b)
	}
	for _, e := range []struct {
		name string
		b    []byte
	}{
		{"l3_ipv4_options_udp", l3GoldenIPv4OptionsUDP},
		{"l3_ipv4_fragment_mf", l3GoldenIPv4FragmentMF},
		{"l3_ipv4_fragment_last", l3GoldenIPv4FragmentLast},
		{"l3_ipv4_icmp_frag_needed", l3GoldenIPv4ICMPFragNeeded},
		{"l3_ipv4_icmp_time_exceeded", l3GoldenIPv4ICMPTimeExceeded},
		{"l3_ipv6_ext_chain_udp", l3GoldenIPv6ExtChainUDP},
		{"l3_ipv6_fragment_non_first", l3GoldenIPv6FragmentNonFirst},
		{"l3_ipv6_ah_tcp", l3GoldenIPv6AHTCP},
		{"l3_ipv6_no_next_header", l3GoldenIPv6NoNextHeader},
		{"l3_icmpv6_ns", l3GoldenICMPv6NS},
		{"l3_icmpv6_na", l3GoldenICMPv6NA},
		{"l3_icmpv6_ra", l3GoldenICMPv6RA},
		{"l3_icmpv6_rs", l3GoldenICMPv6RS},
		{"l3_icmpv6_redirect", l3GoldenICMPv6Redirect},
		{"l3_icmpv6_packet_too_big", l3GoldenICMPv6PacketTooBig},
		{"l3_icmpv6_time_exceeded", l3GoldenICMPv6TimeExceeded},
		{"l3_icmpv6_param_problem", l3GoldenICMPv6ParamProblem},
	} {
		et := proto.EtherTypeIPv4
		if e.b[0]>>4 == 6 {
			et = proto.EtherTypeIPv6
		}
		eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}
		add(e.name, append(eth, e.b...))
	}
	return fs
}

// TestParseFlowGolden checks ParseFlow against Decode on every golden
// frame, every prefix of it, the frame with link padding, and the frame
// with each of its first 128 bytes changed to a few values (which reaches
// most of the error paths), under several options.
func TestParseFlowGolden(t *testing.T) {
	valid := 0
	for _, g := range flowFrames() {
		t.Run(g.name, func(t *testing.T) {
			for oi, opts := range flowOptions() {
				frame := append([]byte(nil), g.frame...)
				if _, err := checkFlow(t, "frame", frame, opts); err == nil && oi == 1 {
					valid++
				}
				for n := range len(frame) {
					checkFlow(t, "prefix", frame[:n], opts)
				}
				checkFlow(t, "padded", append(frame[:len(frame):len(frame)], make([]byte, 20)...), opts)
				for i := range min(len(frame), 128) {
					orig := frame[i]
					for _, v := range []byte{0, 1, 0xff, orig ^ 0x01, orig ^ 0x80, orig ^ 0x10, orig + 1, orig - 1, 0x81, 0x88} {
						frame[i] = v
						checkFlow(t, "mutated", frame, opts)
					}
					frame[i] = orig
				}
			}
		})
	}
	if want := len(flowFrames()) - 1; valid != want { // the triple tag is an error
		t.Errorf("%d frames valid with the default options, want %d", valid, want)
	}
}

// TestParseFlowErrors checks the malformed frames of TestDecodeErrors
// that mutations of single bytes do not make, and the key of a few
// frames.
func TestParseFlowErrors(t *testing.T) {
	qinq := gfFrame(t, "qinq_ipv4_udp")
	third := append(append(append([]byte(nil), qinq[:22]...), 0, 30, 0x08, 0x00), qinq[22:]...)
	third[20], third[21] = 0x81, 0x00
	short := gfFrame(t, "quic_short")
	short[16], short[17] = 0, 20+8+4
	short[38], short[39] = 0, 8+4
	short = short[:42+4]
	jumbo := gfFrame(t, "ipv6_ext_tcp")
	jumbo[18], jumbo[19] = 0, 0
	icmp4 := gfFrame(t, "icmpv4_echo")
	icmp4[17] -= 5
	icmp4 = icmp4[:len(icmp4)-5]
	badsum := gfFrame(t, "ipv4_tcp_syn")
	badsum[24] ^= 1
	for _, tc := range []struct {
		name  string
		frame []byte
		opts  *proto.DecodeOptions
		layer proto.Layer
		err   error
	}{
		{"three VLAN tags", third, nil, proto.LayerVLAN, proto.ErrTooManyHeaders},
		{"QUIC short header shorter than the DCID", short, gfDecodeOpts(), proto.LayerQUIC, proto.ErrTooShort},
		{"IPv6 jumbogram", jumbo, nil, proto.LayerIPv6, proto.ErrUnsupported},
		{"ICMPv4 short", icmp4, nil, proto.LayerICMPv4, proto.ErrTooShort},
		{"IPv4 bad checksum", badsum, &proto.DecodeOptions{VerifyIPv4Checksum: true}, proto.LayerIPv4, proto.ErrBadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkFlow(t, tc.name, tc.frame, tc.opts)
			var pe *proto.ParseError
			if !errors.Is(err, tc.err) || !errors.As(err, &pe) || pe.Layer != tc.layer {
				t.Errorf("err = %v, want %v in layer %v", err, tc.err, tc.layer)
			}
		})
	}

	var f proto.Flow
	if err := proto.ParseFlow(gfFrame(t, "quic_short"), &f, gfDecodeOpts()); err != nil ||
		f.Key != gfFlow("192.0.2.10", 51234, "198.51.100.20", 443, proto.IPProtoUDP) ||
		!f.HasQUIC || f.QUICDCID != gfConnID("f067a5502a4262b5") {
		t.Errorf("quic_short: %v %+v", err, f)
	}
	if err := proto.ParseFlow(gfFrame(t, "ipv6_frag_later"), &f, nil); err != nil ||
		f.Key != gfFlow("2001:db8::a", 0, "2001:db8::b", 0, proto.IPProtoUDP) || f.HasQUIC {
		t.Errorf("ipv6_frag_later: %v %+v", err, f)
	}
}

// TestParseFlowShortDCIDLengths covers every short header DCID length,
// with payloads shorter and longer than the 21 bytes the masked copy
// loads.
func TestParseFlowShortDCIDLengths(t *testing.T) {
	base := gfFrame(t, "quic_short")[:42]
	for plen := 0; plen <= 30; plen++ {
		frame := append([]byte(nil), base...)
		for i := range plen {
			frame = append(frame, byte(0x40+i))
		}
		binary.BigEndian.PutUint16(frame[16:], uint16(20+8+plen))
		binary.BigEndian.PutUint16(frame[38:], uint16(8+plen))
		for dl := -2; dl <= 22; dl++ {
			checkFlow(t, "short header", frame, &proto.DecodeOptions{QUICPorts: []uint16{443}, QUICShortDCIDLen: dl})
		}
	}
}

func TestParseFlowAllocs(t *testing.T) {
	var f proto.Flow
	bad := gfFrame(t, "ipv4_tcp_syn")[:40]
	for _, opts := range flowOptions() {
		for _, g := range flowFrames() {
			if n := testing.AllocsPerRun(100, func() { _ = proto.ParseFlow(g.frame, &f, opts) }); n != 0 {
				t.Errorf("%s: %v allocations", g.name, n)
			}
		}
		if n := testing.AllocsPerRun(100, func() { _ = proto.ParseFlow(bad, &f, opts) }); n != 0 {
			t.Errorf("failing parse: %v allocations", n)
		}
	}
}

// FuzzParseFlow compares ParseFlow with Decode. The seed corpus in
// testdata/fuzz/FuzzParseFlow holds the golden frames.
func FuzzParseFlow(f *testing.F) {
	for _, g := range gfAll {
		f.Add(g.frame, uint8(8), uint8(0))
	}
	f.Fuzz(func(t *testing.T, frame []byte, dcidLen, flags uint8) {
		opts := &proto.DecodeOptions{QUICPorts: []uint16{443, 4433}, QUICShortDCIDLen: int(dcidLen % 24), VerifyIPv4Checksum: flags&1 != 0}
		if flags&2 != 0 {
			opts = nil
		}
		checkFlow(t, "fuzz", frame, opts)
	})
}

// Benchmarks of the three frames the bench module compares against
// gopacket and gVisor (see BenchmarkDecodeIPv4TCP and the others in
// decode_test.go for Decode).

func benchmarkParseFlow(b *testing.B, name string) {
	frame := gfFrame(b, name)
	opts := gfDecodeOpts()
	var f proto.Flow
	if err := proto.ParseFlow(frame, &f, opts); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_ = proto.ParseFlow(frame, &f, opts)
	}
	if f.Key.Family == 0 {
		b.Fatal("no flow")
	}
}

func BenchmarkParseFlowIPv4TCP(b *testing.B)          { benchmarkParseFlow(b, "ipv4_tcp_syn") }
func BenchmarkParseFlowVLANIPv6UDP(b *testing.B)      { benchmarkParseFlow(b, "vlan_ipv6_udp") }
func BenchmarkParseFlowIPv4UDPQUICShort(b *testing.B) { benchmarkParseFlow(b, "quic_short") }
