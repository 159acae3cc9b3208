package proto_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/proto"
)

type l3NDPOpt struct {
	typ  uint8
	body []byte
}

func l3CollectOpts(t *testing.T, o proto.NDPOptions) []l3NDPOpt {
	t.Helper()
	var out []l3NDPOpt
	for len(o) > 0 {
		typ, body, rest, err := o.Next()
		if err != nil {
			t.Fatalf("option %d: %v", len(out), err)
		}
		out = append(out, l3NDPOpt{typ, body})
		o = rest
	}
	return out
}

func TestParseICMPv6Golden(t *testing.T) {
	ll := func(a [6]byte) []byte { return a[:] }
	tests := []struct {
		name      string
		ip        []byte
		typ, code uint8
		checksum  uint16
		opts      []l3NDPOpt
		check     func(t *testing.T, m proto.ICMPv6)
		reencode  func(m proto.ICMPv6, src, dst [16]byte) []byte
	}{
		{
			// ICMP6, echo request, id 119, seq 3
			name: "EchoRequest", ip: l3GoldenEthQinQIPv6ICMPv6Echo[22:],
			typ: proto.ICMPv6EchoRequest, checksum: 0x853e,
			check: func(t *testing.T, m proto.ICMPv6) {
				if m.ID() != 119 || m.Seq() != 3 || string(m.Payload()) != "hi6!" || m.IsError() || m.Quoted() != nil || m.Options() != nil {
					t.Errorf("id %d seq %d data %q", m.ID(), m.Seq(), m.Payload())
				}
			},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				return proto.AppendICMPv6Echo(nil, src, dst, m.Type(), m.ID(), m.Seq(), m.Payload())
			},
		},
		{
			// ICMP6, neighbor solicitation, length 32, who has fe80::2
			//   source link-address option (1), length 8 (1): 02:00:00:00:00:01
			name: "NS", ip: l3GoldenICMPv6NS,
			typ: proto.ICMPv6NeighborSolicitation, checksum: 0x7a97,
			opts: []l3NDPOpt{{proto.NDPOptSourceLinkLayer, ll(l3M1)}},
			check: func(t *testing.T, m proto.ICMPv6) {
				if m.Target() != netip.AddrFrom16(l3LLb) || m.TargetArray() != l3LLb {
					t.Errorf("target %v", m.Target())
				}
			},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				a, _ := m.Options().LinkLayerAddress(proto.NDPOptSourceLinkLayer)
				return proto.AppendICMPv6NeighborSolicitation(nil, src, dst, m.TargetArray(), a)
			},
		},
		{
			// ICMP6, neighbor advertisement, length 32, tgt is fe80::2, Flags [router, solicited]
			//   destination link-address option (2), length 8 (1): 02:00:00:00:00:02
			name: "NA", ip: l3GoldenICMPv6NA,
			typ: proto.ICMPv6NeighborAdvertisement, checksum: 0xb819,
			opts: []l3NDPOpt{{proto.NDPOptTargetLinkLayer, ll(l3M2)}},
			check: func(t *testing.T, m proto.ICMPv6) {
				if m.Target() != netip.AddrFrom16(l3LLb) || !m.Router() || !m.Solicited() || m.Override() ||
					m.NAFlags() != proto.NDPFlagRouter|proto.NDPFlagSolicited {
					t.Errorf("target %v flags %#x", m.Target(), m.NAFlags())
				}
			},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				a, _ := m.Options().LinkLayerAddress(proto.NDPOptTargetLinkLayer)
				return proto.AppendICMPv6NeighborAdvertisement(nil, src, dst, m.TargetArray(), m.NAFlags(), a)
			},
		},
		{
			// ICMP6, router advertisement, length 64
			// hop limit 64, Flags [managed], pref high, router lifetime 1800s, reachable time 30000ms, retrans timer 1000ms
			//   source link-address option (1), length 8 (1): 02:00:00:00:00:01
			//   mtu option (5), length 8 (1):  1500
			//   prefix info option (3), length 32 (4): 2001:db8:1::/64, Flags [onlink, auto], valid time 86400s, pref. time 14400s
			name: "RA", ip: l3GoldenICMPv6RA,
			typ: proto.ICMPv6RouterAdvertisement, checksum: 0xb237,
			opts: []l3NDPOpt{
				{proto.NDPOptSourceLinkLayer, ll(l3M1)},
				{proto.NDPOptMTU, []byte{0, 0, 0, 0, 0x05, 0xdc}},
				{proto.NDPOptPrefixInfo, l3Hex("40c0 0001 5180 0000 3840 0000 0000 2001 0db8 0001 0000 0000 0000 0000 0000")},
			},
			check: func(t *testing.T, m proto.ICMPv6) {
				// Flags byte 0x88: M, and router preference "high" (01) in bits 4-3.
				if m.CurHopLimit() != 64 || m.RAFlags() != proto.NDPFlagManaged|0x08 || m.RouterLifetime() != 1800 ||
					m.ReachableTime() != 30000 || m.RetransTimer() != 1000 {
					t.Errorf("hop %d flags %#x life %d reach %d retrans %d", m.CurHopLimit(), m.RAFlags(), m.RouterLifetime(), m.ReachableTime(), m.RetransTimer())
				}
				if mtu, ok := m.Options().MTU(); !ok || mtu != 1500 {
					t.Errorf("MTU option %d %v", mtu, ok)
				}
				if a, ok := m.Options().LinkLayerAddress(proto.NDPOptSourceLinkLayer); !ok || a != l3M1 {
					t.Errorf("SLLA %x %v", a, ok)
				}
				if _, ok := m.Options().LinkLayerAddress(proto.NDPOptTargetLinkLayer); ok {
					t.Error("found a TLLA")
				}
				_, _, rest, _ := m.Options().Next()
				_, _, rest, _ = rest.Next()
				_, body, _, _ := rest.Next()
				p, err := proto.ParseNDPPrefixInfo(body)
				if err != nil {
					t.Fatal(err)
				}
				if p.Prefix() != netip.MustParsePrefix("2001:db8:1::/64") || p.PrefixLength() != 64 || !p.OnLink() || !p.Autonomous() ||
					p.ValidLifetime() != 86400 || p.PreferredLifetime() != 14400 {
					t.Errorf("prefix info %v L %v A %v valid %d preferred %d", p.Prefix(), p.OnLink(), p.Autonomous(), p.ValidLifetime(), p.PreferredLifetime())
				}
				// The option encoders rebuild all three options.
				var o []byte
				o = proto.AppendNDPOptionLinkLayer(o, proto.NDPOptSourceLinkLayer, l3M1)
				o = proto.AppendNDPOptionMTU(o, 1500)
				o = proto.AppendNDPOptionPrefixInfo(o, p.Prefix(), p.OnLink(), p.Autonomous(), p.ValidLifetime(), p.PreferredLifetime())
				if !bytes.Equal(o, m.Options()) {
					t.Errorf("options re-encoded %x\nwant                %x", o, []byte(m.Options()))
				}
			},
		},
		{
			// ICMP6, router solicitation, length 16
			//   source link-address option (1), length 8 (1): 02:00:00:00:00:02
			name: "RS", ip: l3GoldenICMPv6RS,
			typ: proto.ICMPv6RouterSolicitation, checksum: 0x7a2a,
			opts: []l3NDPOpt{{proto.NDPOptSourceLinkLayer, ll(l3M2)}},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				a, _ := m.Options().LinkLayerAddress(proto.NDPOptSourceLinkLayer)
				return proto.AppendICMPv6RouterSolicitation(nil, src, dst, a)
			},
		},
		{
			// ICMP6, redirect, length 48, 2001:db8:2::5 to fe80::3
			//   destination link-address option (2), length 8 (1): 02:00:00:00:00:03
			name: "Redirect", ip: l3GoldenICMPv6Redirect,
			typ: proto.ICMPv6Redirect, checksum: 0x4948,
			opts: []l3NDPOpt{{proto.NDPOptTargetLinkLayer, []byte{2, 0, 0, 0, 0, 3}}},
			check: func(t *testing.T, m proto.ICMPv6) {
				if m.Target() != netip.MustParseAddr("fe80::3") || m.RedirectDst() != netip.MustParseAddr("2001:db8:2::5") {
					t.Errorf("target %v dst %v", m.Target(), m.RedirectDst())
				}
			},
		},
		{
			// ICMP6, packet too big, mtu 1280
			name: "PacketTooBig", ip: l3GoldenICMPv6PacketTooBig,
			typ: proto.ICMPv6PacketTooBig, checksum: 0x2644,
			check: func(t *testing.T, m proto.ICMPv6) {
				if m.MTU() != 1280 || !m.IsError() || len(m.Quoted()) != 48 || m.Options() != nil {
					t.Errorf("mtu %d quoted %d", m.MTU(), len(m.Quoted()))
				}
				// The quoted packet claims 1452 bytes of payload but holds 8.
				q := m.Quoted()
				if _, err := proto.ParseIPv6(q); !errors.Is(err, proto.ErrTooShort) {
					t.Errorf("quoted packet parsed: %v", err)
				}
				qip, err := proto.ParseIPv6Quoted(q)
				if err != nil {
					t.Fatal(err)
				}
				ext, err := proto.WalkIPv6(qip)
				if err != nil || ext.Proto != proto.IPProtoUDP || ext.Offset != 40 || qip.PayloadLength() != 1452 ||
					len(qip.Payload()) != 8 || qip.SrcArray() != l3A6 || qip.DstArray() != l3B6 {
					t.Errorf("quoted packet %+v %+v %v", qip.Fields(), ext, err)
				}
			},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				return proto.AppendICMPv6Error(nil, src, dst, m.Type(), m.Code(), m.MTU(), m.Quoted())
			},
		},
		{
			// ICMP6, time exceeded in-transit for 2001:db8:1::2
			name: "TimeExceeded", ip: l3GoldenICMPv6TimeExceeded,
			typ: proto.ICMPv6TimeExceeded, code: proto.ICMPv6HopLimitExceeded, checksum: 0x0750,
			check: func(t *testing.T, m proto.ICMPv6) {
				// The quoted echo request fits whole, so it parses.
				q, err := proto.ParseIPv6(m.Quoted())
				if err != nil {
					t.Fatal(err)
				}
				e, _ := proto.ParseICMPv6(q.Payload())
				if q.HopLimit() != 1 || e.Type() != proto.ICMPv6EchoRequest || e.ID() != 5 || e.Seq() != 6 ||
					!e.VerifyChecksum(q.SrcArray(), q.DstArray()) {
					t.Errorf("quoted %x", m.Quoted())
				}
			},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				return proto.AppendICMPv6Error(nil, src, dst, m.Type(), m.Code(), 0, m.Quoted())
			},
		},
		{
			// ICMP6, parameter problem, next header - octet 40
			name: "ParamProblem", ip: l3GoldenICMPv6ParamProblem,
			typ: proto.ICMPv6ParamProblem, code: proto.ICMPv6UnrecognizedNextHeader, checksum: 0x1c2f,
			check: func(t *testing.T, m proto.ICMPv6) {
				if m.Pointer() != 40 {
					t.Errorf("pointer %d", m.Pointer())
				}
			},
			reencode: func(m proto.ICMPv6, src, dst [16]byte) []byte {
				return proto.AppendICMPv6Error(nil, src, dst, m.Type(), m.Code(), m.Pointer(), m.Quoted())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, err := proto.ParseIPv6(tt.ip)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := proto.WalkIPv6(ip)
			if err != nil || ext.Proto != proto.IPProtoICMPv6 {
				t.Fatalf("walk %+v %v", ext, err)
			}
			m, err := proto.ParseICMPv6(ip[ext.Offset:])
			if err != nil {
				t.Fatal(err)
			}
			src, dst := ip.SrcArray(), ip.DstArray()
			if m.Type() != tt.typ || m.Code() != tt.code {
				t.Errorf("type %d code %d, want %d %d", m.Type(), m.Code(), tt.typ, tt.code)
			}
			if m.Checksum() != tt.checksum || m.CalculateChecksum(src, dst) != tt.checksum || !m.VerifyChecksum(src, dst) {
				t.Errorf("checksum %#04x computed %#04x, want %#04x", m.Checksum(), m.CalculateChecksum(src, dst), tt.checksum)
			}
			if proto.ICMPv6Checksum(src, dst, m) != tt.checksum {
				t.Errorf("ICMPv6Checksum = %#04x", proto.ICMPv6Checksum(src, dst, m))
			}
			if m.VerifyChecksum(l3A6, l3A6) {
				t.Error("checksum verifies with the wrong pseudo-header")
			}
			if m.IsNDP() != (tt.opts != nil) {
				t.Errorf("IsNDP = %v", m.IsNDP())
			}
			if tt.opts != nil {
				got := l3CollectOpts(t, m.Options())
				if len(got) != len(tt.opts) {
					t.Fatalf("options %v, want %v", got, tt.opts)
				}
				for i := range got {
					if got[i].typ != tt.opts[i].typ || !bytes.Equal(got[i].body, tt.opts[i].body) {
						t.Errorf("option %d = %d %x, want %d %x", i, got[i].typ, got[i].body, tt.opts[i].typ, tt.opts[i].body)
					}
				}
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			if tt.reencode != nil {
				if re := tt.reencode(m, src, dst); !bytes.Equal(re, m) {
					t.Errorf("re-encoded %x\nwant         %x", re, []byte(m))
				}
			}
		})
	}
}

func TestICMPv6Setters(t *testing.T) {
	ip, _ := proto.ParseIPv6(append([]byte(nil), l3GoldenICMPv6NA...))
	src, dst := ip.SrcArray(), ip.DstArray()
	m, _ := proto.ParseICMPv6(ip.Payload())
	m.SetNAFlags(proto.NDPFlagOverride)
	m.SetTarget(l3A6)
	m.UpdateChecksum(src, dst)
	if m.Router() || m.Solicited() || !m.Override() || m.TargetArray() != l3A6 || !m.VerifyChecksum(src, dst) {
		t.Errorf("%x", []byte(m))
	}
	m.SetType(proto.ICMPv6PacketTooBig)
	m.SetCode(0)
	m.SetMTU(1500)
	if m.MTU() != 1500 || m.Options() != nil {
		t.Errorf("%x", []byte(m))
	}
	m.SetType(proto.ICMPv6EchoReply)
	m.SetID(9)
	m.SetSeq(10)
	m.SetChecksum(11)
	if m.ID() != 9 || m.Seq() != 10 || m.Checksum() != 11 || m.VerifyChecksum(src, dst) {
		t.Errorf("%x", []byte(m))
	}
	// Type-specific accessors on a message too short for the type return
	// zero values instead of reading past the end.
	short, _ := proto.ParseICMPv6(proto.AppendICMPv6Echo(nil, src, dst, proto.ICMPv6EchoRequest, 1, 2, nil))
	short.SetType(proto.ICMPv6Redirect)
	if short.Target().IsValid() || short.TargetArray() != ([16]byte{}) || short.RedirectDst().IsValid() ||
		short.ReachableTime() != 0 || short.RetransTimer() != 0 || short.Options() != nil {
		t.Error("short message accessors")
	}
	short.SetTarget(l3A6) // does nothing
}

func TestICMPv6Encoders(t *testing.T) {
	// Duplicate address detection: unspecified source, no SLLA option.
	var unspec [16]byte
	b := proto.AppendICMPv6NeighborSolicitation([]byte{0xee}, unspec, netip.MustParseAddr("ff02::1:ff00:2").As16(), l3LLb, [6]byte{})
	m, err := proto.ParseICMPv6(b[1:])
	if err != nil || len(m) != 24 || len(m.Options()) != 0 || b[0] != 0xee {
		t.Fatalf("DAD NS %x %v", b, err)
	}
	if !m.VerifyChecksum(unspec, netip.MustParseAddr("ff02::1:ff00:2").As16()) {
		t.Error("DAD NS checksum")
	}
	// An unsolicited NA without a link-layer option.
	b = proto.AppendICMPv6NeighborAdvertisement(nil, l3LLb, l3LL6, l3LLb, proto.NDPFlagOverride, [6]byte{})
	if m, err := proto.ParseICMPv6(b); err != nil || len(m) != 24 || !m.Override() {
		t.Fatalf("NA %x %v", b, err)
	}
	// A prefix longer than the address is clamped by netip; an invalid
	// prefix encodes as ::/0.
	b = proto.AppendNDPOptionPrefixInfo(nil, netip.Prefix{}, false, false, 0, 0)
	_, body, _, err := proto.NDPOptions(b).Next()
	if err != nil {
		t.Fatal(err)
	}
	p, err := proto.ParseNDPPrefixInfo(body)
	if err != nil || p.Prefix() != netip.MustParsePrefix("::/0") {
		t.Errorf("%v %v", p.Prefix(), err)
	}
	body[0] = 129
	if p.Prefix().IsValid() {
		t.Error("prefix length 129 gave a valid prefix")
	}
	// Checksum of messages too short to have a checksum field.
	if got, want := proto.ICMPv6Checksum(l3A6, l3B6, []byte{1, 2, 3}), ^proto.Checksum([]byte{1, 2, 3}, proto.PseudoHeaderChecksumV6(58, l3A6, l3B6, 3)); got != want {
		t.Errorf("short checksum %#04x want %#04x", got, want)
	}
}

func TestNDPOptionsIterator(t *testing.T) {
	tests := []struct {
		name  string
		opts  []byte
		types []uint8
		err   error
	}{
		{"empty", nil, nil, nil},
		{"one", []byte{1, 1, 2, 0, 0, 0, 0, 1}, []uint8{1}, nil},
		{"two", []byte{1, 1, 2, 0, 0, 0, 0, 1, 5, 1, 0, 0, 0, 0, 5, 0xdc}, []uint8{1, 5}, nil},
		{"zero length", []byte{1, 0, 2, 0, 0, 0, 0, 1}, nil, proto.ErrBadOption},
		{"zero length after one", []byte{1, 1, 2, 0, 0, 0, 0, 1, 9, 0}, []uint8{1}, proto.ErrBadOption},
		{"past the end", []byte{1, 2, 2, 0, 0, 0, 0, 1}, nil, proto.ErrTooShort},
		{"lone byte", []byte{1, 1, 2, 0, 0, 0, 0, 1, 3}, []uint8{1}, proto.ErrTooShort},
		{"huge length", append([]byte{3, 255}, make([]byte, 200)...), nil, proto.ErrTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var types []uint8
			var err error
			for o := proto.NDPOptions(tt.opts); len(o) > 0; {
				var typ uint8
				var rest proto.NDPOptions
				typ, _, rest, err = o.Next()
				if err != nil {
					break
				}
				types = append(types, typ)
				o = rest
			}
			if !bytes.Equal(types, tt.types) || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("types %v err %v, want %v %v", types, err, tt.types, tt.err)
			}
			if verr := proto.NDPOptions(tt.opts).Validate(); !errors.Is(verr, tt.err) || (verr == nil) != (tt.err == nil) {
				t.Errorf("Validate = %v", verr)
			}
		})
	}
}

func FuzzICMPv6(f *testing.F) {
	for _, g := range l3Goldens() {
		if !g.link && g.data[0]>>4 == 6 && g.data[6] == proto.IPProtoICMPv6 {
			f.Add(g.data[40:])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := proto.ParseICMPv6(b)
		if err != nil {
			l3CheckErr(t, err)
			return
		}
		_, _, _, _ = m.Target(), m.RedirectDst(), m.ReachableTime(), m.RetransTimer()
		_, _, _ = m.MTU(), m.Pointer(), m.Quoted()
		if m.IsNDP() {
			o := m.Options()
			if o == nil {
				t.Fatal("NDP message shorter than its fixed part")
			}
			_ = o.Validate()
			_, _ = o.LinkLayerAddress(proto.NDPOptSourceLinkLayer)
			_, _ = o.MTU()
		} else if m.Options() != nil {
			t.Fatal("options outside NDP")
		}
		// parse → encode → parse: the error encoder reproduces any message
		// but its checksum.
		re := proto.AppendICMPv6Error(nil, l3A6, l3B6, m.Type(), m.Code(), m.MTU(), m.Payload())
		m2, err := proto.ParseICMPv6(re)
		if err != nil || !m2.VerifyChecksum(l3A6, l3B6) {
			t.Fatalf("re-encoded message: %v", err)
		}
		want := append([]byte(nil), m...)
		want[2], want[3] = re[2], re[3]
		if !bytes.Equal(re, want) {
			t.Fatalf("re-encoded %x\nparsed       %x", re, want)
		}
		if m.Type() == proto.ICMPv6EchoRequest || m.Type() == proto.ICMPv6EchoReply {
			if m.Code() == 0 && !bytes.Equal(proto.AppendICMPv6Echo(nil, l3A6, l3B6, m.Type(), m.ID(), m.Seq(), m.Payload()), re) {
				t.Fatal("AppendICMPv6Echo differs")
			}
		}
	})
}

func FuzzNDPOptions(f *testing.F) {
	for _, g := range [][]byte{l3GoldenICMPv6NS, l3GoldenICMPv6NA, l3GoldenICMPv6RA, l3GoldenICMPv6RS, l3GoldenICMPv6Redirect} {
		m, _ := proto.ParseICMPv6(g[40:])
		f.Add([]byte(m.Options()))
	}
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rebuilt []byte
		o := proto.NDPOptions(b)
		for len(o) > 0 {
			typ, body, rest, err := o.Next()
			if err != nil {
				l3CheckErr(t, err)
				if proto.NDPOptions(b).Validate() == nil {
					t.Fatal("Validate missed an error")
				}
				break
			}
			if len(rest) >= len(o) || (len(body)+2)%8 != 0 {
				t.Fatalf("option %d: body %d rest %d of %d", typ, len(body), len(rest), len(o))
			}
			rebuilt = append(rebuilt, typ, uint8((len(body)+2)/8))
			rebuilt = append(rebuilt, body...)
			switch typ {
			case proto.NDPOptPrefixInfo:
				if p, err := proto.ParseNDPPrefixInfo(body); err == nil {
					_ = p.Prefix()
					re := proto.AppendNDPOptionPrefixInfo(nil, p.Prefix(), p.OnLink(), p.Autonomous(), p.ValidLifetime(), p.PreferredLifetime())
					if p.PrefixLength() <= 128 && len(re) != 32 {
						t.Fatal("prefix info re-encoding")
					}
				} else {
					l3CheckErr(t, err)
				}
			case proto.NDPOptSourceLinkLayer, proto.NDPOptTargetLinkLayer:
				if len(body) == 6 && !bytes.Equal(proto.AppendNDPOptionLinkLayer(nil, typ, [6]byte(body)), b[len(b)-len(o):len(b)-len(rest)]) {
					t.Fatal("link-layer option re-encoding")
				}
			}
			o = rest
		}
		// Rebuilding the options from type and body gives back the bytes
		// that parsed.
		if !bytes.Equal(rebuilt, b[:len(rebuilt)]) {
			t.Fatalf("rebuilt %x from %x", rebuilt, b)
		}
		_, _ = proto.NDPOptions(b).LinkLayerAddress(proto.NDPOptTargetLinkLayer)
		_, _ = proto.NDPOptions(b).MTU()
	})
}
