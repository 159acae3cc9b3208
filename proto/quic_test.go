package proto_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestVarint(t *testing.T) {
	for _, tc := range []struct {
		hex     string
		v       uint64
		minimal bool
	}{
		// RFC 9000 appendix A.1.
		{"c2197c5eff14e88c", 151288809941952652, true},
		{"9d7f3e7d", 494878333, true},
		{"7bbd", 15293, true},
		{"25", 37, true},
		{"4025", 37, false},
		// Boundaries.
		{"00", 0, true},
		{"3f", 63, true},
		{"4040", 64, true},
		{"7fff", 16383, true},
		{"80004000", 16384, true},
		{"bfffffff", 1073741823, true},
		{"c000000040000000", 1073741824, true},
		{"ffffffffffffffff", proto.MaxVarint, true},
		{"c000000000000000", 0, false},
	} {
		t.Run(tc.hex, func(t *testing.T) {
			b := gfHex(tc.hex)
			v, n, err := proto.ParseVarint(append(b, 0xaa, 0xbb))
			if err != nil || v != tc.v || n != len(b) {
				t.Fatalf("ParseVarint = %d, %d, %v; want %d, %d", v, n, err, tc.v, len(b))
			}
			enc, err := proto.AppendVarintLen(nil, tc.v, len(b))
			if err != nil || !bytes.Equal(enc, b) {
				t.Errorf("AppendVarintLen = %x, %v", enc, err)
			}
			if tc.minimal {
				if enc := proto.AppendVarint([]byte{9}, tc.v); !bytes.Equal(enc[1:], b) || enc[0] != 9 {
					t.Errorf("AppendVarint = %x", enc)
				}
				if l := proto.VarintLen(tc.v); l != len(b) {
					t.Errorf("VarintLen = %d", l)
				}
			}
			for i := range len(b) {
				if _, _, err := proto.ParseVarint(b[:i]); !errors.Is(err, proto.ErrTooShort) {
					t.Errorf("prefix %d: %v", i, err)
				}
			}
		})
	}
	if proto.VarintLen(proto.MaxVarint+1) != 0 || len(proto.AppendVarint(nil, 1<<62)) != 0 {
		t.Errorf("2^62 encodes")
	}
	for _, tc := range []struct {
		v uint64
		n int
	}{{64, 1}, {16384, 2}, {1 << 30, 4}, {1 << 62, 8}, {1, 3}, {1, 0}} {
		if b, err := proto.AppendVarintLen([]byte{1}, tc.v, tc.n); !errors.Is(err, proto.ErrBadValue) || len(b) != 1 {
			t.Errorf("AppendVarintLen(%d, %d) = %x, %v", tc.v, tc.n, b, err)
		}
	}
}

func TestConnID(t *testing.T) {
	for n := 0; n <= 20; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0xa0 + i)
		}
		c, err := proto.ConnIDFromBytes(b)
		if err != nil || c.Len() != n || !bytes.Equal(c.Bytes(), b) || !bytes.Equal(c.AppendTo([]byte{1})[1:], b) {
			t.Fatalf("%d bytes: %v %v", n, c, err)
		}
		if n > 0 {
			b[0] = 0
			if c.Bytes()[0] != 0xa0 {
				t.Fatal("ConnID aliases its input")
			}
		}
	}
	if _, err := proto.ConnIDFromBytes(make([]byte, 21)); !errors.Is(err, proto.ErrBadValue) {
		t.Errorf("21 bytes: %v", err)
	}
	a, b := gfConnID("0102"), gfConnID("010200")
	if a == b || a != gfConnID("0102") {
		t.Errorf("comparison: a length is part of the ID")
	}
	m := map[proto.ConnID]int{a: 1, b: 2}
	if m[gfConnID("0102")] != 1 || m[gfConnID("010200")] != 2 {
		t.Errorf("map lookup")
	}
	if a.String() != "0102" || (proto.ConnID{}).String() != "(empty)" {
		t.Errorf("String = %q", a.String())
	}
	buf := gfHex("0011223344556677")
	if n := testing.AllocsPerRun(100, func() {
		c, _ := proto.ConnIDFromBytes(buf)
		_ = c.Hash(1) + uint32(c.Len())
		_, _ = proto.ConnIDFromBytes(make([]byte, 21))
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// gfLong is the expected parse of a golden long header.
type gfLong struct {
	name      string
	off       int // of the UDP payload in the frame
	first     byte
	version   uint32
	typ       proto.QUICPacketType
	dcid      string
	scid      string
	token     string
	length    uint64
	pnOff     int
	n         int
	tag       string
	versions  string
	packetEnd int
}

var gfLongCases = []gfLong{
	{name: "quic_v1_initial", off: 42, first: 0xc0, version: 1, typ: proto.QUICPacketInitial, dcid: "8394c8f03e515708",
		length: 1182, pnOff: 18, n: 18, packetEnd: 1200},
	{name: "quic_v2_initial_v6", off: 62, first: 0xd7, version: proto.QUICVersion2, typ: proto.QUICPacketInitial, dcid: "8394c8f03e515708",
		length: 1182, pnOff: 18, n: 18, packetEnd: 1200},
	{name: "quic_v1_server_coalesced", off: 42, first: 0xc0 | gfFirstLow(42, "quic_v1_server_coalesced"), version: 1, typ: proto.QUICPacketInitial,
		scid: "f067a5502a4262b5", length: 63, pnOff: 18, n: 18, packetEnd: 81},
	{name: "quic_v1_server_coalesced", off: 42 + 81, first: 0xe1, version: 1, typ: proto.QUICPacketHandshake,
		scid: "f067a5502a4262b5", length: 42, pnOff: 17, n: 17, packetEnd: 59},
	{name: "quic_v1_initial_token", off: 42, first: 0xc0 | gfFirstLow(42, "quic_v1_initial_token"), version: 1, typ: proto.QUICPacketInitial,
		dcid: "0011223344556677", scid: "aabbccdd", token: "tygress-token", length: 78, pnOff: 35, n: 35, packetEnd: 113},
	{name: "quic_v1_0rtt", off: 42, first: 0xd3, version: 1, typ: proto.QUICPacket0RTT,
		dcid: "0011223344556677", scid: "aabbccdd", length: 36, pnOff: 20, n: 20, packetEnd: 56},
	{name: "quic_v1_retry", off: 42, first: 0xff, version: 1, typ: proto.QUICPacketRetry,
		scid: "f067a5502a4262b5", token: "token", tag: "04a265ba2eff4d829058fb3f0f2496ba", n: 36},
	{name: "quic_vn", off: 42, first: 0xaa, version: 0, typ: proto.QUICPacketVersionNegotiation,
		dcid: "aabbccdd", scid: "8394c8f03e515708", versions: "000000016b3343cf1a2a3a4a", n: 31},
	{name: "quic_unknown_version", off: 42, first: 0xc5, version: 0xff00001d, typ: proto.QUICPacketUnknown,
		dcid: "000102030405060708090a0b0c0d0e0f1011121314", n: 28},
}

// gfFirstLow returns the low 4 bits of the first byte of a golden QUIC
// packet, which header protection randomizes.
func gfFirstLow(off int, name string) byte {
	for _, g := range gfAll {
		if g.name == name {
			return g.frame[off] & 0x0f
		}
	}
	panic(name)
}

func TestQUICLongHeaderGolden(t *testing.T) {
	for _, tc := range gfLongCases {
		t.Run(tc.name+"/"+tc.typ.String(), func(t *testing.T) {
			b := gfFrame(t, tc.name)[tc.off:]
			if !proto.IsQUICLongHeader(b) || proto.IsQUICVersionNegotiation(b) != (tc.version == 0) {
				t.Errorf("IsQUICLongHeader / IsQUICVersionNegotiation")
			}
			h, n, err := proto.ParseQUICLongHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.First != tc.first || h.Version != tc.version || h.Type != tc.typ || n != tc.n {
				t.Errorf("first %#x version %#x type %v n %d; want %#x %#x %v %d", h.First, h.Version, h.Type, n, tc.first, tc.version, tc.typ, tc.n)
			}
			if !bytes.Equal(h.DCID, gfHex(tc.dcid)) || !bytes.Equal(h.SCID, gfHex(tc.scid)) || string(h.Token) != tc.token {
				t.Errorf("DCID %x SCID %x token %q", h.DCID, h.SCID, h.Token)
			}
			if h.Length != tc.length || h.PNOffset != tc.pnOff || h.PacketEnd() != tc.packetEnd {
				t.Errorf("length %d pn offset %d end %d", h.Length, h.PNOffset, h.PacketEnd())
			}
			if !bytes.Equal(h.IntegrityTag, gfHex(tc.tag)) || !bytes.Equal(h.Versions, gfHex(tc.versions)) {
				t.Errorf("tag %x versions %x", h.IntegrityTag, h.Versions)
			}
			if cap(h.DCID) != len(h.DCID) || cap(h.SCID) != len(h.SCID) || cap(h.Token) != len(h.Token) {
				t.Errorf("slices not capped")
			}

			// Prefixes: a clean error, or (where the layout has no length
			// to check against) a consistent shorter parse.
			need := max(tc.n, tc.packetEnd)
			switch tc.typ {
			case proto.QUICPacketRetry:
				need = 7 + len(h.DCID) + len(h.SCID) + 16
			case proto.QUICPacketVersionNegotiation:
				need = 7 + len(h.DCID) + len(h.SCID)
			}
			for i := range len(b) {
				h2, n2, err := proto.ParseQUICLongHeader(b[:i])
				switch {
				case i < need && err == nil:
					t.Fatalf("prefix %d: no error", i)
				case err != nil && !gfIsSentinel(err):
					t.Fatalf("prefix %d: %v", i, err)
				case err == nil && (n2 > i || h2.Version != h.Version || !bytes.Equal(h2.DCID, h.DCID)):
					t.Fatalf("prefix %d: %+v", i, h2)
				}
			}
		})
	}
}

func TestQUICShortHeaderGolden(t *testing.T) {
	b := gfFrame(t, "quic_short")[42:]
	if proto.IsQUICLongHeader(b) {
		t.Fatal("long")
	}
	h, n, err := proto.ParseQUICShortHeader(b, 8)
	if err != nil || n != 9 || h.PNOffset != 9 || h.First != 0x6a || !h.SpinBit() || !bytes.Equal(h.DCID, gfHex("f067a5502a4262b5")) {
		t.Fatalf("ParseQUICShortHeader = %+v, %d, %v", h, n, err)
	}
	for i := range 9 {
		if _, _, err := proto.ParseQUICShortHeader(b[:i], 8); !errors.Is(err, proto.ErrTooShort) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		n    int
		err  error
	}{
		{"long header", []byte{0xc0, 0, 0, 0, 1}, 0, proto.ErrBadValue},
		{"DCID 21", b, 21, proto.ErrBadValue},
		{"DCID -1", b, -1, proto.ErrBadValue},
		{"empty", nil, 0, proto.ErrTooShort},
	} {
		if _, _, err := proto.ParseQUICShortHeader(tc.b, tc.n); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// RFC 9001 A.5: unprotected short header 4200bff4 (empty DCID, 3-byte
	// packet number 654360564 truncated to 0x00bff4).
	enc, err := proto.AppendQUICShortHeader(nil, proto.QUICShortHeaderFields{PacketNumber: 654360564, PNLen: 3})
	if err != nil || !bytes.Equal(enc, gfHex("4200bff4")) {
		t.Errorf("AppendQUICShortHeader = %x, %v", enc, err)
	}
	enc, err = proto.AppendQUICShortHeader(nil, proto.QUICShortHeaderFields{DCID: h.DCID, SpinBit: true, KeyPhase: true, PacketNumber: 0x5a, PNLen: 1})
	if err != nil || !bytes.Equal(enc, gfHex("64f067a5502a4262b55a")) {
		t.Errorf("AppendQUICShortHeader = %x, %v", enc, err)
	}
	for _, f := range []proto.QUICShortHeaderFields{{PNLen: 0}, {PNLen: 5}, {DCID: make([]byte, 21), PNLen: 1}} {
		if b, err := proto.AppendQUICShortHeader([]byte{1}, f); !errors.Is(err, proto.ErrBadValue) || len(b) != 1 {
			t.Errorf("%+v: %v", f, err)
		}
	}
}

func TestQUICLongHeaderErrors(t *testing.T) {
	v1 := func(typ byte, rest string) []byte { return append([]byte{0xc0 | typ<<4, 0, 0, 0, 1}, gfHex(rest)...) }
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, proto.ErrTooShort},
		{"short header", []byte{0x40, 0, 0, 0, 1, 0, 0}, proto.ErrBadValue},
		{"v1 DCID 21", v1(0, "15"+"000102030405060708090a0b0c0d0e0f1011121314"+"00 00 01 00"), proto.ErrBadValue},
		{"v1 SCID 21", v1(0, "00 15"+"000102030405060708090a0b0c0d0e0f1011121314"+"00 01 00"), proto.ErrBadValue},
		{"v2 DCID 21", append([]byte{0xd0, 0x6b, 0x33, 0x43, 0xcf, 21}, make([]byte, 30)...), proto.ErrBadValue},
		{"DCID past the end", v1(0, "08 0001"), proto.ErrTooShort},
		{"SCID past the end", v1(0, "00 04 01"), proto.ErrTooShort},
		{"Initial without token length", v1(0, "00 00"), proto.ErrTooShort},
		{"Initial token past the end", v1(0, "00 00 05 0102"), proto.ErrTooShort},
		{"Initial without length", v1(0, "00 00 00"), proto.ErrTooShort},
		{"Initial truncated length", v1(0, "00 00 00 40"), proto.ErrTooShort},
		{"Initial length past the end", v1(0, "00 00 00 02 01"), proto.ErrTooShort},
		{"Handshake length past the end", v1(2, "00 00 4001"), proto.ErrTooShort},
		{"Retry without tag", v1(3, "00 00 000102030405060708090a0b0c0d0e"), proto.ErrTooShort},
		{"VN list of 3 bytes", append([]byte{0x80, 0, 0, 0, 0, 0, 0}, 1, 2, 3), proto.ErrLengthMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := proto.ParseQUICLongHeader(tc.b)
			var pe *proto.ParseError
			if !errors.Is(err, tc.err) || n != 0 || !errors.As(err, &pe) || pe.Layer != proto.LayerQUIC {
				t.Errorf("ParseQUICLongHeader: %d, %v; want %v", n, err, tc.err)
			}
		})
	}
	// Unknown versions may use 255-byte connection IDs and carry anything
	// after them.
	b := append([]byte{0x80, 1, 2, 3, 4, 255}, make([]byte, 255)...)
	b = append(b, 255)
	b = append(b, make([]byte, 255)...)
	b = append(b, "rest"...)
	h, n, err := proto.ParseQUICLongHeader(b)
	if err != nil || len(h.DCID) != 255 || len(h.SCID) != 255 || n != len(b)-4 || h.Type != proto.QUICPacketUnknown {
		t.Errorf("255-byte IDs: %d, %v", n, err)
	}
	// An empty version list is a valid (if useless) VN packet.
	if h, n, err := proto.ParseQUICLongHeader([]byte{0x80, 0, 0, 0, 0, 0, 0}); err != nil || n != 7 || h.Type != proto.QUICPacketVersionNegotiation {
		t.Errorf("empty VN: %v", err)
	}
}

func TestAppendQUICLongHeader(t *testing.T) {
	dcid := gfHex("8394c8f03e515708")
	for _, tc := range []struct {
		name string
		f    proto.QUICLongHeaderFields
		want string
	}{
		// RFC 9001 A.2 and RFC 9369 A.2: the unprotected client Initial
		// headers.
		{"v1 Initial", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketInitial, DCID: dcid, Length: 1182, PacketNumber: 2, PNLen: 4},
			"c300000001088394c8f03e5157080000449e00000002"},
		{"v2 Initial", proto.QUICLongHeaderFields{Version: proto.QUICVersion2, Type: proto.QUICPacketInitial, DCID: dcid, Length: 1182, PacketNumber: 2, PNLen: 4},
			"d36b3343cf088394c8f03e5157080000449e00000002"},
		// RFC 9001 A.3: the unprotected server Initial header.
		{"v1 server Initial", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketInitial, SCID: gfHex("f067a5502a4262b5"), Length: 117, PacketNumber: 1, PNLen: 2},
			"c1000000010008f067a5502a4262b50040750001"},
		{"v1 Initial with token, 4-byte length", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketInitial, DCID: gfHex("01"), SCID: gfHex("02"), Token: []byte("tk"), Length: 5, LengthLen: 4, PacketNumber: 0x0a0b, PNLen: 2},
			"c1000000010101010202746b800000050a0b"},
		{"v1 Handshake", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, SCID: gfHex("aa"), Length: 3, PacketNumber: 7, PNLen: 1},
			"e0000000010001aa0307"},
		{"v2 Handshake", proto.QUICLongHeaderFields{Version: proto.QUICVersion2, Type: proto.QUICPacketHandshake, Length: 3, PacketNumber: 7, PNLen: 1},
			"f06b3343cf00000307"},
		{"v2 0-RTT", proto.QUICLongHeaderFields{Version: proto.QUICVersion2, Type: proto.QUICPacket0RTT, Length: 3, PacketNumber: 7, PNLen: 1},
			"e06b3343cf00000307"},
		// RFC 9001 A.4.
		{"v1 Retry", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketRetry, LowBits: 0x0f, SCID: gfHex("f067a5502a4262b5"), Token: []byte("token"),
			IntegrityTag: [16]byte(gfHex("04a265ba2eff4d829058fb3f0f2496ba"))},
			"ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba"},
		{"v2 Retry", proto.QUICLongHeaderFields{Version: proto.QUICVersion2, Type: proto.QUICPacketRetry},
			"c06b3343cf0000" + "00000000000000000000000000000000"},
		{"VN", proto.QUICLongHeaderFields{Version: 0, LowBits: 0x2a, DCID: gfHex("aabbccdd"), SCID: dcid, Versions: []uint32{1, proto.QUICVersion2, 0x1a2a3a4a}},
			"aa0000000004aabbccdd088394c8f03e515708000000016b3343cf1a2a3a4a"},
		{"unknown version", proto.QUICLongHeaderFields{Version: 0xff00001d, LowBits: 0x45, DCID: make([]byte, 21)},
			"c5ff00001d15" + "000000000000000000000000000000000000000000" + "00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.AppendQUICLongHeader([]byte{0xee}, tc.f)
			if err != nil || b[0] != 0xee || !bytes.Equal(b[1:], gfHex(tc.want)) {
				t.Fatalf("AppendQUICLongHeader = %x, %v\nwant   %s", b[1:], err, tc.want)
			}
			// Parse it back (with room for the payload the Length counts).
			if tc.f.PNLen > 0 {
				b = append(b, make([]byte, int(tc.f.Length)-tc.f.PNLen)...)
			}
			h, _, err := proto.ParseQUICLongHeader(b[1:])
			if err != nil || h.Version != tc.f.Version || !bytes.Equal(h.DCID, tc.f.DCID) || !bytes.Equal(h.SCID, tc.f.SCID) || h.Length != tc.f.Length {
				t.Fatalf("parse back: %+v, %v", h, err)
			}
			if tc.f.Version == 1 || tc.f.Version == proto.QUICVersion2 {
				if h.Type != tc.f.Type || !bytes.Equal(h.Token, tc.f.Token) {
					t.Errorf("type %v token %q", h.Type, h.Token)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		f    proto.QUICLongHeaderFields
	}{
		{"v1 DCID 21", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketRetry, DCID: make([]byte, 21)}},
		{"unknown version DCID 256", proto.QUICLongHeaderFields{Version: 7, DCID: make([]byte, 256)}},
		{"v1 type unknown", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketUnknown}},
		{"v1 type short", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketShort}},
		{"v1 type VN", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketVersionNegotiation}},
		{"PNLen 0", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, Length: 1}},
		{"PNLen 5", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, Length: 9, PNLen: 5}},
		{"Length below PNLen", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, Length: 1, PNLen: 2}},
		{"Length too big for LengthLen", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, Length: 64, LengthLen: 1, PNLen: 1}},
		{"Length too big", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, Length: 1 << 62, PNLen: 1}},
		{"LengthLen 3", proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketHandshake, Length: 4, LengthLen: 3, PNLen: 1}},
	} {
		if b, err := proto.AppendQUICLongHeader([]byte{1}, tc.f); !errors.Is(err, proto.ErrBadValue) || len(b) != 1 {
			t.Errorf("%s: %x, %v", tc.name, b, err)
		}
	}
}

func TestQUICPacketTypeString(t *testing.T) {
	if proto.QUICPacketInitial.String() != "initial" || proto.QUICPacketType(200).String() != "invalid" {
		t.Error("String")
	}
}

func TestQUICAllocs(t *testing.T) {
	long := gfFrame(t, "quic_v1_initial_token")[42:]
	short := gfFrame(t, "quic_short")[42:]
	var sink int
	if n := testing.AllocsPerRun(100, func() {
		h, n, err := proto.ParseQUICLongHeader(long)
		if err != nil {
			t.Fatal(err)
		}
		sink += n + len(h.DCID) + len(h.Token) + int(h.Length)
		s, n, _ := proto.ParseQUICShortHeader(short, 8)
		sink += n + len(s.DCID)
		_, _, err = proto.ParseQUICLongHeader(long[:30])
		_, _, err2 := proto.ParseQUICShortHeader(short[:3], 8)
		_, _, err3 := proto.ParseVarint(nil)
		if err == nil || err2 == nil || err3 == nil {
			t.Fatal("no error")
		}
		v, n, _ := proto.ParseVarint(long[7:])
		sink += int(v) + n
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	_ = sink
}

func FuzzVarint(f *testing.F) {
	f.Add([]byte{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, uint64(151288809941952652))
	f.Add([]byte{0x40, 0x25}, uint64(37))
	f.Add([]byte{}, uint64(1<<62))
	f.Fuzz(func(t *testing.T, b []byte, v uint64) {
		x, n, err := proto.ParseVarint(b)
		if err == nil {
			if x > proto.MaxVarint || n != 1<<(b[0]>>6) || n > len(b) {
				t.Fatalf("ParseVarint(%x) = %d, %d", b, x, n)
			}
			if enc, err := proto.AppendVarintLen(nil, x, n); err != nil || !bytes.Equal(enc, b[:n]) {
				t.Fatalf("AppendVarintLen = %x, %v; want %x", enc, err, b[:n])
			}
		} else if !errors.Is(err, proto.ErrTooShort) || len(b) >= 8 {
			t.Fatalf("ParseVarint(%x): %v", b, err)
		}
		// Round trip of an arbitrary value.
		enc := proto.AppendVarint(nil, v)
		if v > proto.MaxVarint {
			if len(enc) != 0 || proto.VarintLen(v) != 0 {
				t.Fatalf("%d encoded", v)
			}
			return
		}
		y, m, err := proto.ParseVarint(enc)
		if err != nil || y != v || m != len(enc) || m != proto.VarintLen(v) {
			t.Fatalf("round trip %d: %x -> %d, %d, %v", v, enc, y, m, err)
		}
	})
}

func FuzzQUICLongHeader(f *testing.F) {
	for _, tc := range gfLongCases {
		f.Add(gfFrame(f, tc.name)[tc.off:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := proto.ParseQUICLongHeader(b)
		if err != nil {
			if !gfIsSentinel(err) || n != 0 {
				t.Fatalf("ParseQUICLongHeader: %d, %v", n, err)
			}
			return
		}
		if n > len(b) || h.PacketEnd() > len(b) || (h.PNOffset != 0 && h.PNOffset != n) {
			t.Fatalf("n %d, end %d, len %d", n, h.PacketEnd(), len(b))
		}
		known := h.Version == proto.QUICVersion1 || h.Version == proto.QUICVersion2
		if known && (len(h.DCID) > 20 || len(h.SCID) > 20) {
			t.Fatalf("v1/v2 connection ID over 20 bytes")
		}
		// parse → encode → parse agrees.
		fl := proto.QUICLongHeaderFields{Version: h.Version, Type: h.Type, DCID: h.DCID, SCID: h.SCID, Token: h.Token, Length: h.Length}
		var rest []byte
		switch {
		case h.Type == proto.QUICPacketVersionNegotiation, !known:
			fl.LowBits = h.First & 0x7f
			for v := h.Versions; len(v) >= 4; v = v[4:] {
				fl.Versions = append(fl.Versions, binary.BigEndian.Uint32(v))
			}
			rest = b[n:]
		case h.Type == proto.QUICPacketRetry:
			fl.LowBits = h.First & 0x0f
			fl.IntegrityTag = [16]byte(h.IntegrityTag)
		default:
			if h.Length == 0 {
				return // no room for a packet number: the encoder refuses
			}
			// Keep the Length field's encoded size; find it from the
			// start of the field.
			off := 7 + len(h.DCID) + len(h.SCID)
			if h.Type == proto.QUICPacketInitial {
				off += 1<<(b[off]>>6) + len(h.Token)
			}
			fl.LengthLen = 1 << (b[off] >> 6)
			fl.PNLen, fl.PacketNumber = 1, uint32(b[n])
			rest = b[n+1:]
		}
		enc, err := proto.AppendQUICLongHeader(nil, fl)
		if err != nil {
			t.Fatalf("AppendQUICLongHeader(%+v): %v", fl, err)
		}
		enc = append(enc, rest...)
		h2, n2, err := proto.ParseQUICLongHeader(enc)
		if err != nil {
			t.Fatalf("reparse %x: %v", enc, err)
		}
		if h2.Version != h.Version || h2.Type != h.Type || !bytes.Equal(h2.DCID, h.DCID) || !bytes.Equal(h2.SCID, h.SCID) ||
			!bytes.Equal(h2.Token, h.Token) || h2.Length != h.Length || !bytes.Equal(h2.IntegrityTag, h.IntegrityTag) ||
			!bytes.Equal(h2.Versions, h.Versions) || (h.First^h2.First)&0xb0 != 0 {
			t.Fatalf("round trip:\n%+v\n%+v", h2, h)
		}
		if !known || h.Type == proto.QUICPacketVersionNegotiation {
			if !bytes.Equal(enc, b) || n2 != n {
				t.Fatalf("round trip bytes %x, want %x", enc, b)
			}
		}
	})
}

func FuzzQUICShortHeader(f *testing.F) {
	f.Add(gfFrame(f, "quic_short")[42:], uint8(8))
	f.Add(gfHex("4cfe4189655e5cd55c41f69080575d7999c25a5bfb"), uint8(0)) // RFC 9001 A.5
	f.Fuzz(func(t *testing.T, b []byte, dcidLen uint8) {
		h, n, err := proto.ParseQUICShortHeader(b, int(dcidLen))
		if err != nil {
			if !gfIsSentinel(err) || n != 0 {
				t.Fatalf("ParseQUICShortHeader: %d, %v", n, err)
			}
			return
		}
		if n != 1+int(dcidLen) || n > len(b) || h.PNOffset != n || len(h.DCID) != int(dcidLen) {
			t.Fatalf("n %d of %d", n, len(b))
		}
		if c, err := proto.ConnIDFromBytes(h.DCID); err != nil || !bytes.Equal(c.Bytes(), h.DCID) {
			t.Fatalf("ConnID: %v", err)
		}
		// parse → encode → parse agrees (the fixed bit is always set and
		// the reserved bits cleared by the encoder).
		fl := proto.QUICShortHeaderFields{DCID: h.DCID, SpinBit: h.SpinBit(), KeyPhase: h.First&0x04 != 0, PNLen: int(h.First&3) + 1}
		enc, err := proto.AppendQUICShortHeader(nil, fl)
		if err != nil {
			t.Fatal(err)
		}
		h2, n2, err := proto.ParseQUICShortHeader(enc, int(dcidLen))
		if err != nil || n2 != n || !bytes.Equal(h2.DCID, h.DCID) || h2.First != h.First&0x27|0x40 || len(enc) != n+fl.PNLen {
			t.Fatalf("round trip %x: %+v, %v", enc, h2, err)
		}
	})
}
