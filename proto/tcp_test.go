package proto_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tygress/tygress/proto"
)

// gfTCPCase is a golden TCP segment with its addresses and decoded options.
type gfTCPCase struct {
	name     string
	off      int // of the TCP header in the frame
	v6       bool
	src, dst string
	want     proto.TCPFields // Options: the raw option bytes
	dataOff  uint8
	opts     []proto.TCPOption // expected iteration, Data left out
	payload  string
}

var gfTCPCases = []gfTCPCase{
	{
		name: "ipv4_tcp_syn", off: 34, src: "192.0.2.1", dst: "198.51.100.2",
		want: proto.TCPFields{SrcPort: 43210, DstPort: 443, Seq: 0x01020304, Flags: proto.TCPFlagSYN, Window: 64240, Checksum: 0x6de6,
			Options: gfHex("020405b4 0402 080a1122334400000000 01 030307")},
		dataOff: 10,
		opts: []proto.TCPOption{
			{Kind: proto.TCPOptMSS, MSS: 1460},
			{Kind: proto.TCPOptSACKPermitted},
			{Kind: proto.TCPOptTimestamps, TSVal: 0x11223344, TSEcr: 0},
			{Kind: proto.TCPOptNOP},
			{Kind: proto.TCPOptWindowScale, WindowScale: 7},
		},
	},
	{
		name: "ipv4opt_tcp_sack", off: 38, src: "10.0.0.1", dst: "10.0.0.2",
		want: proto.TCPFields{SrcPort: 80, DstPort: 51000, Seq: 1000, Ack: 2000, Flags: proto.TCPFlagPSH | proto.TCPFlagACK, Window: 501, Checksum: 0xad24, Urgent: 7,
			Options: gfHex("0101 080a0000000100000002 0101 0512 00000bb800000fa0 0000138800001770")},
		dataOff: 13,
		opts: []proto.TCPOption{
			{Kind: proto.TCPOptNOP}, {Kind: proto.TCPOptNOP},
			{Kind: proto.TCPOptTimestamps, TSVal: 1, TSEcr: 2},
			{Kind: proto.TCPOptNOP}, {Kind: proto.TCPOptNOP},
			{Kind: proto.TCPOptSACK, NumSACK: 2, SACK: [4]proto.SACKBlock{{3000, 4000}, {5000, 6000}}},
		},
		payload: "hello",
	},
	{
		name: "ipv6_ext_tcp", off: 14 + 40 + 16, v6: true, src: "2001:db8:1::10", dst: "2001:db8:2::20",
		want:    proto.TCPFields{SrcPort: 40000, DstPort: 22, Seq: 7, Flags: proto.TCPFlagSYN, Window: 1024, Checksum: 0xb3e0, Options: []byte{}},
		dataOff: 5,
	},
	{
		name: "vxlan", off: 42 + 8 + 14 + 20, src: "10.2.0.1", dst: "10.2.0.2", // the inner segment
		want:    proto.TCPFields{SrcPort: 1111, DstPort: 2222, Flags: proto.TCPFlagACK, Window: 8192, Checksum: 0x6ec9, Options: []byte{}},
		dataOff: 5,
	},
}

func gfTCPFieldsEqual(a, b proto.TCPFields) bool {
	return a.SrcPort == b.SrcPort && a.DstPort == b.DstPort && a.Seq == b.Seq && a.Ack == b.Ack &&
		a.Flags == b.Flags && a.Window == b.Window && a.Checksum == b.Checksum && a.Urgent == b.Urgent &&
		bytes.Equal(a.Options, b.Options)
}

// gfOptEqual compares options but not their Data.
func gfOptEqual(a, b proto.TCPOption) bool {
	return a.Kind == b.Kind && a.MSS == b.MSS && a.WindowScale == b.WindowScale && a.NumSACK == b.NumSACK &&
		a.SACK == b.SACK && a.TSVal == b.TSVal && a.TSEcr == b.TSEcr
}

func TestTCPGolden(t *testing.T) {
	for _, tc := range gfTCPCases {
		t.Run(tc.name, func(t *testing.T) {
			frame := gfFrame(t, tc.name)
			seg := frame[tc.off:]
			tp, err := proto.ParseTCP(seg)
			if err != nil {
				t.Fatal(err)
			}
			if got := tp.Fields(); !gfTCPFieldsEqual(got, tc.want) {
				t.Errorf("Fields() = %+v\nwant %+v", got, tc.want)
			}
			if tp.SrcPort() != tc.want.SrcPort || tp.DstPort() != tc.want.DstPort || tp.Seq() != tc.want.Seq ||
				tp.Ack() != tc.want.Ack || tp.Flags() != tc.want.Flags || tp.Window() != tc.want.Window ||
				tp.Checksum() != tc.want.Checksum || tp.Urgent() != tc.want.Urgent {
				t.Errorf("accessors disagree with Fields")
			}
			if tp.DataOffset() != tc.dataOff || tp.HeaderLen() != int(tc.dataOff)*4 {
				t.Errorf("DataOffset %d HeaderLen %d, want %d", tp.DataOffset(), tp.HeaderLen(), tc.dataOff)
			}
			if string(tp.Payload()) != tc.payload {
				t.Errorf("Payload() = %q, want %q", tp.Payload(), tc.payload)
			}

			it := tp.IterOptions()
			var got []proto.TCPOption
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				o.Data = nil
				got = append(got, o)
			}
			if it.Err() != nil {
				t.Errorf("options: %v", it.Err())
			}
			if len(got) != len(tc.opts) {
				t.Fatalf("options %+v\nwant %+v", got, tc.opts)
			}
			for i := range got {
				if !gfOptEqual(got[i], tc.opts[i]) {
					t.Errorf("option %d = %+v, want %+v", i, got[i], tc.opts[i])
				}
			}

			if tc.v6 {
				if !tp.VerifyChecksumV6(gfV6(tc.src), gfV6(tc.dst)) || tp.ComputeChecksumV6(gfV6(tc.src), gfV6(tc.dst)) != tc.want.Checksum {
					t.Errorf("IPv6 checksum: verify %v compute %#04x", tp.VerifyChecksumV6(gfV6(tc.src), gfV6(tc.dst)), tp.ComputeChecksumV6(gfV6(tc.src), gfV6(tc.dst)))
				}
			} else {
				if !tp.VerifyChecksumV4(gfV4(tc.src), gfV4(tc.dst)) || tp.ComputeChecksumV4(gfV4(tc.src), gfV4(tc.dst)) != tc.want.Checksum {
					t.Errorf("IPv4 checksum: verify %v compute %#04x", tp.VerifyChecksumV4(gfV4(tc.src), gfV4(tc.dst)), tp.ComputeChecksumV4(gfV4(tc.src), gfV4(tc.dst)))
				}
				if tp.VerifyChecksumV4(gfV4(tc.dst), gfV4("10.9.9.9")) {
					t.Errorf("verifies with the wrong addresses")
				}
			}

			// Encode reproduces the header.
			f := tp.Fields()
			enc, err := proto.AppendTCP(nil, f)
			if err != nil || !bytes.Equal(enc, seg[:tp.HeaderLen()]) {
				t.Errorf("AppendTCP = %x, %v\nwant %x", enc, err, seg[:tp.HeaderLen()])
			}

			// Every prefix shorter than the header fails.
			for n := range tp.HeaderLen() {
				if _, err := proto.ParseTCP(seg[:n]); !errors.Is(err, proto.ErrTooShort) {
					t.Fatalf("prefix %d: %v", n, err)
				}
			}
		})
	}
}

func TestTCPParseErrors(t *testing.T) {
	hdr := func(doff byte, n int) []byte {
		b := make([]byte, n)
		if n > 12 {
			b[12] = doff << 4
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, proto.ErrTooShort},
		{"19 bytes", hdr(5, 19), proto.ErrTooShort},
		{"data offset 0", hdr(0, 20), proto.ErrBadHeaderLength},
		{"data offset 4", hdr(4, 40), proto.ErrBadHeaderLength},
		{"data offset 6 of 20 bytes", hdr(6, 20), proto.ErrTooShort},
		{"data offset 15 of 59 bytes", hdr(15, 59), proto.ErrTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := proto.ParseTCP(tc.b)
			var pe *proto.ParseError
			if !errors.Is(err, tc.err) || tp != nil || !errors.As(err, &pe) || pe.Layer != proto.LayerTCP {
				t.Errorf("ParseTCP = %x, %v; want %v", tp, err, tc.err)
			}
		})
	}
	if tp, err := proto.ParseTCP(hdr(15, 60)); err != nil || tp.HeaderLen() != 60 || len(tp.Options()) != 40 || len(tp.Payload()) != 0 {
		t.Errorf("data offset 15: %v", err)
	}
}

func TestTCPSetters(t *testing.T) {
	b, err := proto.AppendTCP(nil, proto.TCPFields{Options: []byte{1, 1, 1}}) // padded to 4
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 24 || b[12] != 6<<4 || !bytes.Equal(b[20:], []byte{1, 1, 1, 0}) {
		t.Fatalf("AppendTCP = %x", b)
	}
	tp, err := proto.ParseTCP(append(b, "data"...))
	if err != nil {
		t.Fatal(err)
	}
	tp.SetSrcPort(1)
	tp.SetDstPort(2)
	tp.SetSeq(3)
	tp.SetAck(4)
	tp.SetFlags(proto.TCPFlagFIN | proto.TCPFlagCWR)
	tp.SetWindow(5)
	tp.SetChecksum(6)
	tp.SetUrgent(7)
	want := proto.TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: proto.TCPFlagFIN | proto.TCPFlagCWR, Window: 5, Checksum: 6, Urgent: 7, Options: []byte{1, 1, 1, 0}}
	if got := tp.Fields(); !gfTCPFieldsEqual(got, want) || string(tp.Payload()) != "data" {
		t.Errorf("after setters %+v, want %+v", got, want)
	}
	if !tp.Flags().Has(proto.TCPFlagCWR) || tp.Flags().Has(proto.TCPFlagSYN|proto.TCPFlagFIN) {
		t.Errorf("Has")
	}
	if s := (proto.TCPFlagSYN | proto.TCPFlagACK).String(); s != "SYN|ACK" {
		t.Errorf("String = %q", s)
	}
	if s := proto.TCPFlags(0).String(); s != "0" {
		t.Errorf("String = %q", s)
	}

	// The data offset is rewritten past the view: accessors clamp.
	tp[12] = 0xf0
	if tp.HeaderLen() != len(tp) || len(tp.Payload()) != 0 || len(tp.Options()) != len(tp)-20 {
		t.Errorf("clamped: %d %d", tp.HeaderLen(), len(tp.Options()))
	}

	f := proto.TCPFields{Options: make([]byte, 41)}
	if _, err := proto.AppendTCP(nil, f); !errors.Is(err, proto.ErrBadOption) {
		t.Errorf("41 option bytes: %v", err)
	}
	f.Options = f.Options[:40]
	if err := f.Encode(make([]byte, 59)); !errors.Is(err, proto.ErrTooShort) {
		t.Errorf("Encode into 59 bytes: %v", err)
	}
	if err := f.Encode(make([]byte, 60)); err != nil {
		t.Errorf("Encode: %v", err)
	}
}

func TestTCPOptionsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		n    int // options before the error
		err  bool
	}{
		{"empty", nil, 0, false},
		{"EOL then junk", []byte{0, 2, 0, 0}, 1, false},
		{"NOPs", []byte{1, 1, 1}, 3, false},
		{"kind without length", []byte{1, 2}, 1, true},
		{"length 0", []byte{2, 0, 0, 0}, 0, true},
		{"length 1", []byte{30, 1, 0, 0}, 0, true},
		{"past the end", []byte{2, 4, 5}, 0, true},
		{"MSS length 3", []byte{2, 3, 5, 1}, 0, true},
		{"MSS length 5", []byte{2, 5, 5, 1, 1}, 0, true},
		{"window scale length 4", []byte{3, 4, 7, 0}, 0, true},
		{"SACK-permitted length 3", []byte{4, 3, 0, 1}, 0, true},
		{"SACK no blocks", []byte{5, 2, 1, 1}, 0, true},
		{"SACK half block", []byte{1, 5, 6, 0, 0, 0, 1}, 1, true},
		{"SACK 5 blocks", append([]byte{5, 42}, make([]byte, 40)...), 0, true},
		{"timestamps length 9", []byte{8, 9, 0, 0, 0, 0, 0, 0, 0}, 0, true},
		{"unknown kind", []byte{254, 4, 0xf9, 0x89, 1, 1}, 3, false},
		{"unknown kind, zero data", []byte{30, 2}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := proto.IterTCPOptions(tc.b)
			n := 0
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				n++
				if o.Data != nil && (len(o.Data) > len(tc.b) || cap(o.Data) != len(o.Data)) {
					t.Errorf("Data %x not capped", o.Data)
				}
			}
			if n != tc.n || (it.Err() != nil) != tc.err {
				t.Fatalf("%d options, err %v; want %d, %v", n, it.Err(), tc.n, tc.err)
			}
			if tc.err && !errors.Is(it.Err(), proto.ErrBadOption) {
				t.Errorf("err %v", it.Err())
			}
			if _, ok := it.Next(); ok {
				t.Errorf("Next after the end returned an option")
			}
		})
	}
	it := proto.IterTCPOptions([]byte{254, 4, 0xf9, 0x89})
	if o, ok := it.Next(); !ok || o.Kind != 254 || !bytes.Equal(o.Data, []byte{0xf9, 0x89}) {
		t.Errorf("unknown option: %+v", o)
	}
}

func TestAppendTCPOptions(t *testing.T) {
	blocks := [4]proto.SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	for _, tc := range []struct {
		name  string
		set   proto.TCPOptionSet
		want  []byte
		nSACK int
	}{
		{"none", proto.TCPOptionSet{}, nil, 0},
		{"Linux SYN", proto.TCPOptionSet{MSS: 1460, SACKPermitted: true, HasTimestamps: true, TSVal: 0x11223344, HasWindowScale: true, WindowScale: 7},
			gfHex("020405b4 0402 080a1122334400000000 01030307"), 0},
		{"SACK-permitted alone", proto.TCPOptionSet{SACKPermitted: true}, gfHex("01010402"), 0},
		{"timestamps alone", proto.TCPOptionSet{HasTimestamps: true, TSVal: 1, TSEcr: 2}, gfHex("0101080a0000000100000002"), 0},
		{"window scale 0", proto.TCPOptionSet{HasWindowScale: true}, gfHex("01030300"), 0},
		{"4 SACK blocks", proto.TCPOptionSet{NumSACK: 4, SACK: blocks}, nil, 4},
		{"SACK with timestamps: 3 fit", proto.TCPOptionSet{HasTimestamps: true, NumSACK: 4, SACK: blocks}, nil, 3},
		{"NumSACK over 4", proto.TCPOptionSet{NumSACK: 9, SACK: blocks}, nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := proto.AppendTCPOptions(nil, tc.set)
			if tc.want != nil && !bytes.Equal(b, tc.want) {
				t.Errorf("AppendTCPOptions = %x, want %x", b, tc.want)
			}
			if len(b)%4 != 0 || len(b) > proto.TCPMaxOptionLen {
				t.Errorf("length %d", len(b))
			}
			got := gfOptionSet(t, b)
			want := tc.set
			want.NumSACK = uint8(tc.nSACK)
			for i := tc.nSACK; i < 4; i++ {
				want.SACK[i] = proto.SACKBlock{}
			}
			if got != want {
				t.Errorf("round trip %+v\nwant %+v", got, want)
			}
		})
	}
}

// gfOptionSet parses options back into a TCPOptionSet.
func gfOptionSet(t *testing.T, b []byte) proto.TCPOptionSet {
	var s proto.TCPOptionSet
	it := proto.IterTCPOptions(b)
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		switch o.Kind {
		case proto.TCPOptMSS:
			s.MSS = o.MSS
		case proto.TCPOptWindowScale:
			s.HasWindowScale, s.WindowScale = true, o.WindowScale
		case proto.TCPOptSACKPermitted:
			s.SACKPermitted = true
		case proto.TCPOptTimestamps:
			s.HasTimestamps, s.TSVal, s.TSEcr = true, o.TSVal, o.TSEcr
		case proto.TCPOptSACK:
			s.NumSACK, s.SACK = o.NumSACK, o.SACK
			if len(o.SACKBlocks()) != int(o.NumSACK) {
				t.Errorf("SACKBlocks")
			}
		}
	}
	if it.Err() != nil {
		t.Fatalf("options %x: %v", b, it.Err())
	}
	return s
}

func TestTCPChecksumReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		n := 20 + rng.IntN(300)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[12] = 5 << 4
		tp, err := proto.ParseTCP(b)
		if err != nil {
			t.Fatal(err)
		}
		s4, d4 := [4]byte{byte(i), 2, 3, 4}, [4]byte{9, 8, 7, byte(n)}
		want := gfRefChecksum(append(append(s4[:], d4[:]...), 0, 6, byte(n>>8), byte(n)), b, 16)
		got := tp.ComputeChecksumV4(s4, d4)
		// The reference maps 0 to 0xffff; TCP keeps 0.
		if got != want && !(got == 0 && want == 0xffff) {
			t.Fatalf("case %d: %#04x, want %#04x", i, got, want)
		}
		tp.SetChecksum(got)
		if !tp.VerifyChecksumV4(s4, d4) {
			t.Fatalf("case %d: does not verify", i)
		}
	}
}

func TestTCPAllocs(t *testing.T) {
	seg := gfFrame(t, "ipv4opt_tcp_sack")[38:]
	var sink uint64
	if n := testing.AllocsPerRun(100, func() {
		tp, err := proto.ParseTCP(seg)
		if err != nil {
			t.Fatal(err)
		}
		sink += uint64(tp.SrcPort()) + uint64(tp.Seq()) + uint64(tp.Ack()) + uint64(tp.Flags()) + uint64(len(tp.Payload()))
		it := tp.IterOptions()
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			sink += uint64(o.TSVal) + uint64(o.NumSACK)
		}
		if _, err := proto.ParseTCP(seg[:10]); err == nil {
			t.Fatal("no error")
		}
		bad := proto.IterTCPOptions(seg[20:23])
		for _, ok := bad.Next(); ok; _, ok = bad.Next() {
		}
		if bad.Err() == nil {
			sink++
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	_ = sink
}

func FuzzTCP(f *testing.F) {
	for _, tc := range gfTCPCases {
		f.Add(gfFrame(f, tc.name)[tc.off:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, err := proto.ParseTCP(b)
		if err != nil {
			if !gfIsSentinel(err) || tp != nil {
				t.Fatalf("ParseTCP: %x, %v", tp, err)
			}
			return
		}
		hl := tp.HeaderLen()
		if hl < 20 || hl > 60 || hl > len(b) || len(tp.Options()) != hl-20 || len(tp.Payload()) != len(b)-hl {
			t.Fatalf("header length %d of %d", hl, len(b))
		}
		_ = tp.VerifyChecksumV6([16]byte{}, [16]byte{})
		it := tp.IterOptions()
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
		// parse → encode → parse agrees.
		enc, err := proto.AppendTCP(nil, tp.Fields())
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, tp.Payload()...)
		tp2, err := proto.ParseTCP(enc)
		if err != nil || !gfTCPFieldsEqual(tp2.Fields(), tp.Fields()) || !bytes.Equal(tp2.Payload(), tp.Payload()) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, tp2.Fields(), tp.Fields())
		}
	})
}

func FuzzTCPOptions(f *testing.F) {
	for _, tc := range gfTCPCases {
		f.Add(tc.want.Options)
	}
	f.Add(proto.AppendTCPOptions(nil, proto.TCPOptionSet{HasTimestamps: true, NumSACK: 3}))
	f.Add([]byte{5, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		it := proto.IterTCPOptions(b)
		used := 0
		var set proto.TCPOptionSet
		for o, ok := it.Next(); ok; o, ok = it.Next() {
			switch o.Kind {
			case proto.TCPOptEOL, proto.TCPOptNOP:
				used++
				if o.Data != nil {
					t.Fatalf("EOL/NOP with data")
				}
			default:
				used += 2 + len(o.Data)
			}
			if used > len(b) {
				t.Fatalf("options use %d of %d bytes", used, len(b))
			}
			switch o.Kind {
			case proto.TCPOptMSS:
				set.MSS = o.MSS
			case proto.TCPOptWindowScale:
				set.HasWindowScale, set.WindowScale = true, o.WindowScale
			case proto.TCPOptSACKPermitted:
				set.SACKPermitted = true
			case proto.TCPOptTimestamps:
				set.HasTimestamps, set.TSVal, set.TSEcr = true, o.TSVal, o.TSEcr
			case proto.TCPOptSACK:
				if o.NumSACK < 1 || o.NumSACK > 4 || len(o.Data) != 8*int(o.NumSACK) {
					t.Fatalf("SACK %+v", o)
				}
				set.NumSACK, set.SACK = o.NumSACK, o.SACK
			}
		}
		if err := it.Err(); err != nil && !errors.Is(err, proto.ErrBadOption) {
			t.Fatalf("Err() = %v", err)
		}
		// encode → parse agrees for what the encoder can express (MSS 0
		// means "absent").
		enc := proto.AppendTCPOptions(nil, set)
		got := gfOptionSet(t, enc)
		if got.MSS != set.MSS || got.HasWindowScale != set.HasWindowScale || got.WindowScale != set.WindowScale ||
			got.SACKPermitted != set.SACKPermitted || got.HasTimestamps != set.HasTimestamps || got.TSVal != set.TSVal || got.TSEcr != set.TSEcr {
			t.Fatalf("round trip %+v, want %+v", got, set)
		}
	})
}
