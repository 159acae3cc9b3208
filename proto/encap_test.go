package proto_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestGREGolden(t *testing.T) {
	for _, tc := range []struct {
		name       string
		want       proto.GREFields
		hlen, plen int
	}{
		{"gre_full", proto.GREFields{Protocol: proto.EtherTypeIPv4, HasChecksum: true, Checksum: 0x37f7, HasKey: true, Key: 0x1001, HasSeq: true, Seq: 7}, 16, 20 + 8},
		{"gre_key_teb", proto.GREFields{Protocol: 0x6558, HasKey: true, Key: 42}, 8, 14 + 20 + 8 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := gfFrame(t, tc.name)[34:]
			g, err := proto.ParseGRE(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Fields(); got != tc.want {
				t.Errorf("Fields() = %+v, want %+v", got, tc.want)
			}
			if g.HasChecksum() != tc.want.HasChecksum || g.HasKey() != tc.want.HasKey || g.HasSeq() != tc.want.HasSeq ||
				g.Protocol() != tc.want.Protocol || g.Version() != 0 {
				t.Errorf("accessors disagree with Fields")
			}
			if g.HeaderLen() != tc.hlen || len(g.Payload()) != tc.plen || tc.want.Len() != tc.hlen {
				t.Errorf("HeaderLen %d, payload %d", g.HeaderLen(), len(g.Payload()))
			}
			if !g.VerifyChecksum() {
				t.Errorf("checksum does not verify")
			}
			if tc.want.HasChecksum {
				if c := g.ComputeChecksum(); c != tc.want.Checksum {
					t.Errorf("ComputeChecksum = %#04x", c)
				}
				g[len(g)-1] ^= 1
				if g.VerifyChecksum() {
					t.Errorf("corrupted packet verifies")
				}
				g[len(g)-1] ^= 1
			}
			if enc := proto.AppendGRE(nil, tc.want); !bytes.Equal(enc, b[:tc.hlen]) {
				t.Errorf("AppendGRE = %x, want %x", enc, b[:tc.hlen])
			}
			for n := range tc.hlen {
				if _, err := proto.ParseGRE(b[:n]); !errors.Is(err, proto.ErrTooShort) {
					t.Fatalf("prefix %d: %v", n, err)
				}
			}
		})
	}
}

func TestGREErrorsAndSetters(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, proto.ErrTooShort},
		{"version 1 (PPTP)", []byte{0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0}, proto.ErrBadVersion},
		{"routing bit", []byte{0x40, 0, 0x08, 0}, proto.ErrUnsupported},
		{"strict source route", []byte{0x08, 0, 0x08, 0}, proto.ErrUnsupported},
		{"recursion", []byte{0x04, 0, 0x08, 0}, proto.ErrUnsupported},
		{"C without room", []byte{0x80, 0, 0x08, 0, 0, 0}, proto.ErrTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := proto.ParseGRE(tc.b)
			var pe *proto.ParseError
			if !errors.Is(err, tc.err) || g != nil || !errors.As(err, &pe) || pe.Layer != proto.LayerGRE {
				t.Errorf("ParseGRE = %x, %v; want %v", g, err, tc.err)
			}
		})
	}

	// Reserved bits 6-12 are ignored (RFC 2784 section 2.3.1).
	if _, err := proto.ParseGRE([]byte{0x03, 0xf8, 0x08, 0}); err != nil {
		t.Errorf("reserved bits: %v", err)
	}

	// Setters write present fields only.
	plain, _ := proto.ParseGRE(proto.AppendGRE(nil, proto.GREFields{Protocol: 0x86dd}))
	if plain.SetKey(1) || plain.SetSeq(2) || plain.SetChecksum(3) || plain.HeaderLen() != 4 {
		t.Errorf("setters wrote absent fields")
	}
	if _, ok := plain.Key(); ok {
		t.Error("Key present")
	}
	if !plain.VerifyChecksum() || plain.ComputeChecksum() != 0 {
		t.Error("no checksum should verify")
	}
	b := proto.AppendGRE(nil, proto.GREFields{HasChecksum: true, HasKey: true, HasSeq: true})
	b = append(b, "payload"...)
	g, err := proto.ParseGRE(b)
	if err != nil {
		t.Fatal(err)
	}
	g.SetProtocol(0x0800)
	if !g.SetKey(0xdeadbeef) || !g.SetSeq(99) || !g.SetChecksum(g.ComputeChecksum()) {
		t.Fatal("setters failed")
	}
	want := proto.GREFields{Protocol: 0x0800, HasChecksum: true, Checksum: g.ComputeChecksum(), HasKey: true, Key: 0xdeadbeef, HasSeq: true, Seq: 99}
	if g.Fields() != want || !g.VerifyChecksum() || string(g.Payload()) != "payload" {
		t.Errorf("after setters %+v, want %+v", g.Fields(), want)
	}
	// Key only with sequence: sequence follows key.
	ks, _ := proto.ParseGRE(proto.AppendGRE(nil, proto.GREFields{HasSeq: true, Seq: 5}))
	if s, ok := ks.Seq(); !ok || s != 5 || ks.HeaderLen() != 8 {
		t.Errorf("seq only: %d %v", s, ok)
	}
}

func TestVXLANGolden(t *testing.T) {
	b := gfFrame(t, "vxlan")[42:]
	v, err := proto.ParseVXLAN(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Flags() != 0x08 || v.VNI() != 0x123456 || len(v.Payload()) != 14+20+20 {
		t.Errorf("flags %#x VNI %#x payload %d", v.Flags(), v.VNI(), len(v.Payload()))
	}
	if enc := proto.AppendVXLAN(nil, 0x123456); !bytes.Equal(enc, b[:8]) {
		t.Errorf("AppendVXLAN = %x, want %x", enc, b[:8])
	}
	if e, err := proto.ParseEthernet(v.Payload()); err != nil || e.EtherType() != proto.EtherTypeIPv4 {
		t.Errorf("inner Ethernet: %v", err)
	}
	for n := range 8 {
		if _, err := proto.ParseVXLAN(b[:n]); !errors.Is(err, proto.ErrTooShort) {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
	v.SetVNI(0xfedcba98) // low 24 bits
	if v.VNI() != 0xdcba98 || v[7] != 0 {
		t.Errorf("SetVNI: %x", v[:8])
	}
	if _, err := proto.ParseVXLAN(make([]byte, 8)); !errors.Is(err, proto.ErrBadValue) {
		t.Errorf("I flag clear: %v", err)
	}
	// Reserved bits are ignored on receipt.
	if v, err := proto.ParseVXLAN([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0xff}); err != nil || v.VNI() != 1 {
		t.Errorf("reserved bits: %v", err)
	}
}

func TestGUEGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		variant uint8
		want    proto.GUEFields
		hlen    int
		inner   uint8 // IP version of the payload
	}{
		{"gue_v0", 0, proto.GUEFields{Proto: proto.IPProtoIPIP, Flags: 0x8000, Extensions: gfHex("deadbeef")}, 8, 4},
		{"gue_v1_ipv6", 1, proto.GUEFields{Proto: proto.IPProtoIPv6, Extensions: nil}, 0, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := gfFrame(t, tc.name)[42:]
			g, err := proto.ParseGUE(b)
			if err != nil {
				t.Fatal(err)
			}
			f := g.Fields()
			if g.Variant() != tc.variant || f.Control != tc.want.Control || f.Proto != tc.want.Proto || f.Flags != tc.want.Flags ||
				!bytes.Equal(f.Extensions, tc.want.Extensions) || g.HeaderLen() != tc.hlen || int(g.Hlen())*4+min(tc.hlen, 4) != tc.hlen {
				t.Errorf("variant %d, fields %+v, header %d", g.Variant(), f, g.HeaderLen())
			}
			if p := g.Payload(); len(p) == 0 || p[0]>>4 != tc.inner {
				t.Errorf("payload %x", p)
			}
			if tc.variant == 0 {
				enc, err := proto.AppendGUE(nil, tc.want)
				if err != nil || !bytes.Equal(enc, b[:tc.hlen]) {
					t.Errorf("AppendGUE = %x, %v; want %x", enc, err, b[:tc.hlen])
				}
				for n := range tc.hlen {
					if _, err := proto.ParseGUE(b[:n]); !errors.Is(err, proto.ErrTooShort) {
						t.Fatalf("prefix %d: %v", n, err)
					}
				}
			}
		})
	}
}

func TestGUEErrorsAndSetters(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, proto.ErrTooShort},
		{"variant 2", []byte{0x80, 0, 0, 0}, proto.ErrBadVersion},
		{"variant 3", []byte{0xc0, 0, 0, 0}, proto.ErrBadVersion},
		{"variant 1, IP version 5", []byte{0x50}, proto.ErrBadVersion},
		{"variant 1, IP version 7", []byte{0x70}, proto.ErrBadVersion},
		{"Hlen past the end", []byte{0x02, 4, 0, 0, 1, 2, 3, 4}, proto.ErrTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := proto.ParseGUE(tc.b)
			var pe *proto.ParseError
			if !errors.Is(err, tc.err) || g != nil || !errors.As(err, &pe) || pe.Layer != proto.LayerGUE {
				t.Errorf("ParseGUE = %x, %v; want %v", g, err, tc.err)
			}
		})
	}
	// A control message with the largest header.
	f := proto.GUEFields{Control: true, Proto: 7, Flags: 0x1234, Extensions: make([]byte, 123)}
	b, err := proto.AppendGUE(nil, f)
	if err != nil || len(b) != proto.GUEMaxHeaderLen || f.Len() != len(b) {
		t.Fatalf("AppendGUE: %d bytes, %v", len(b), err)
	}
	g, err := proto.ParseGUE(b)
	if err != nil || !g.Control() || g.Proto() != 7 || g.Hlen() != 31 || len(g.Extensions()) != 124 || len(g.Payload()) != 0 {
		t.Fatalf("control: %v", err)
	}
	g.SetControl(false)
	g.SetProto(17)
	g.SetFlags(1)
	if g.Control() || g.Proto() != 17 || g.Flags() != 1 {
		t.Errorf("setters")
	}
	if _, err := proto.AppendGUE(nil, proto.GUEFields{Extensions: make([]byte, 125)}); !errors.Is(err, proto.ErrBadHeaderLength) {
		t.Errorf("125 extension bytes: %v", err)
	}
	// Setters leave variant 1 alone.
	v1, _ := proto.ParseGUE([]byte{0x45, 0, 0, 20})
	v1.SetProto(1)
	v1.SetFlags(0xffff)
	v1.SetControl(true)
	if !bytes.Equal(v1, []byte{0x45, 0, 0, 20}) || v1.Proto() != proto.IPProtoIPIP || v1.Control() || v1.Flags() != 0 || v1.Extensions() != nil {
		t.Errorf("variant 1 changed: %x", []byte(v1))
	}
}

func TestEncapAllocs(t *testing.T) {
	gre := gfFrame(t, "gre_full")[34:]
	vx := gfFrame(t, "vxlan")[42:]
	gue := gfFrame(t, "gue_v0")[42:]
	var sink uint64
	if n := testing.AllocsPerRun(100, func() {
		g, _ := proto.ParseGRE(gre)
		k, _ := g.Key()
		s, _ := g.Seq()
		sink += uint64(k) + uint64(s) + uint64(g.Protocol()) + uint64(len(g.Payload()))
		v, _ := proto.ParseVXLAN(vx)
		sink += uint64(v.VNI())
		u, _ := proto.ParseGUE(gue)
		sink += uint64(u.Proto()) + uint64(len(u.Extensions()))
		_, e1 := proto.ParseGRE(gre[:3])
		_, e2 := proto.ParseVXLAN(vx[:3])
		_, e3 := proto.ParseGUE(gue[:3])
		if e1 == nil || e2 == nil || e3 == nil {
			t.Fatal("no error")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	_ = sink
}

func FuzzGRE(f *testing.F) {
	f.Add(gfFrame(f, "gre_full")[34:])
	f.Add(gfFrame(f, "gre_key_teb")[34:])
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := proto.ParseGRE(b)
		if err != nil {
			if !gfIsSentinel(err) || g != nil {
				t.Fatalf("ParseGRE: %x, %v", g, err)
			}
			return
		}
		_ = g.VerifyChecksum()
		f := g.Fields()
		if f.Len() != g.HeaderLen() {
			t.Fatalf("Len %d, HeaderLen %d", f.Len(), g.HeaderLen())
		}
		enc := append(proto.AppendGRE(nil, f), g.Payload()...)
		g2, err := proto.ParseGRE(enc)
		if err != nil || g2.Fields() != f || !bytes.Equal(g2.Payload(), g.Payload()) {
			t.Fatalf("round trip: %v %+v, want %+v", err, g2.Fields(), f)
		}
	})
}

func FuzzGUE(f *testing.F) {
	f.Add(gfFrame(f, "gue_v0")[42:])
	f.Add(gfFrame(f, "gue_v1_ipv6")[42:])
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := proto.ParseGUE(b)
		if err != nil {
			if !gfIsSentinel(err) || g != nil {
				t.Fatalf("ParseGUE: %x, %v", g, err)
			}
			return
		}
		if g.HeaderLen()+len(g.Payload()) != len(b) {
			t.Fatalf("header %d + payload %d != %d", g.HeaderLen(), len(g.Payload()), len(b))
		}
		if g.Variant() != 0 {
			return
		}
		f := g.Fields()
		enc, err := proto.AppendGUE(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, g.Payload()...)
		g2, err := proto.ParseGUE(enc)
		f2 := g2.Fields()
		// Variant, C and Hlen fill the first byte: the encoding is exact.
		if err != nil || f2.Control != f.Control || f2.Proto != f.Proto || f2.Flags != f.Flags ||
			!bytes.Equal(f2.Extensions, f.Extensions) || !bytes.Equal(g2, g) {
			t.Fatalf("round trip: %v %x, want %x", err, []byte(g2), []byte(g))
		}
	})
}

func FuzzVXLAN(f *testing.F) {
	f.Add(gfFrame(f, "vxlan")[42:])
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := proto.ParseVXLAN(b)
		if err != nil {
			if !gfIsSentinel(err) || v != nil {
				t.Fatalf("ParseVXLAN: %x, %v", v, err)
			}
			return
		}
		if v.VNI() > proto.VXLANMaxVNI || len(v.Payload()) != len(b)-8 {
			t.Fatalf("VNI %#x", v.VNI())
		}
		enc := append(proto.AppendVXLAN(nil, v.VNI()), v.Payload()...)
		v2, err := proto.ParseVXLAN(enc)
		if err != nil || v2.VNI() != v.VNI() || !bytes.Equal(v2.Payload(), v.Payload()) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
