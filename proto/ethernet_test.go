package proto_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestParseEthernetGolden(t *testing.T) {
	tests := []struct {
		name      string
		frame     []byte
		dst, src  [6]byte
		etherType uint16 // of the Ethernet header
		// SkipVLANs results
		l3Type uint16
		l3Off  int
		vids   [2]uint16
		n      int
		err    error
	}{
		{"EthIPv4ICMPEcho", l3GoldenEthIPv4ICMPEcho, l3M2, l3M1, proto.EtherTypeIPv4, proto.EtherTypeIPv4, 14, [2]uint16{}, 0, nil},
		{"EthARPRequest", l3GoldenEthARPRequest, proto.BroadcastMAC, l3M1, proto.EtherTypeARP, proto.EtherTypeARP, 14, [2]uint16{}, 0, nil},
		{"EthARPReplyPadded", l3GoldenEthARPReplyPadded, l3M1, l3M2, proto.EtherTypeARP, proto.EtherTypeARP, 14, [2]uint16{}, 0, nil},
		{"EthVLANIPv4UDP", l3GoldenEthVLANIPv4UDP, l3M2, l3M1, proto.EtherTypeVLAN, proto.EtherTypeIPv4, 18, [2]uint16{100}, 1, nil},
		{"EthQinQIPv6ICMPv6Echo", l3GoldenEthQinQIPv6ICMPv6Echo, l3M2, l3M1, proto.EtherTypeQinQ, proto.EtherTypeIPv6, 22, [2]uint16{300, 42}, 2, nil},
		{"EthTripleTag", l3GoldenEthTripleTag, l3M2, l3M1, proto.EtherTypeQinQ, 0, 0, [2]uint16{1, 2}, 2, proto.ErrTooManyHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := proto.ParseEthernet(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Dst(); got != tt.dst {
				t.Errorf("Dst = %x, want %x", got, tt.dst)
			}
			if got := e.Src(); got != tt.src {
				t.Errorf("Src = %x, want %x", got, tt.src)
			}
			if got := e.EtherType(); got != tt.etherType {
				t.Errorf("EtherType = %#04x, want %#04x", got, tt.etherType)
			}
			if got := e.Payload(); !bytes.Equal(got, tt.frame[14:]) {
				t.Errorf("Payload = %x", got)
			}
			et, off, vids, n, err := proto.SkipVLANs(tt.frame)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("SkipVLANs error %v, want %v", err, tt.err)
			}
			if et != tt.l3Type || off != tt.l3Off || vids != tt.vids || n != tt.n {
				t.Errorf("SkipVLANs = %#04x, %d, %v, %d; want %#04x, %d, %v, %d",
					et, off, vids, n, tt.l3Type, tt.l3Off, tt.vids, tt.n)
			}
			// Re-encoding the header from the parsed fields gives the same
			// bytes.
			if got := proto.AppendEthernet(nil, e.Dst(), e.Src(), e.EtherType()); !bytes.Equal(got, tt.frame[:14]) {
				t.Errorf("AppendEthernet = %x, want %x", got, tt.frame[:14])
			}
		})
	}
}

func TestVLANGolden(t *testing.T) {
	// 802.1Q tag b064 0800: PCP 5, DEI set, VID 100, then IPv4.
	v, err := proto.ParseVLAN(l3GoldenEthVLANIPv4UDP[proto.EthernetLen:])
	if err != nil {
		t.Fatal(err)
	}
	if v.PCP() != 5 || !v.DEI() || v.VID() != 100 || v.TCI() != 0xb064 || v.EtherType() != proto.EtherTypeIPv4 {
		t.Errorf("PCP %d DEI %v VID %d TCI %#04x EtherType %#04x", v.PCP(), v.DEI(), v.VID(), v.TCI(), v.EtherType())
	}
	if got, want := v.Payload(), l3GoldenEthVLANIPv4UDP[18:]; !bytes.Equal(got, want) {
		t.Errorf("Payload = %x", got)
	}
	if got := proto.AppendVLAN(nil, proto.MakeTCI(5, true, 100), proto.EtherTypeIPv4); !bytes.Equal(got, l3GoldenEthVLANIPv4UDP[14:18]) {
		t.Errorf("AppendVLAN = %x", got)
	}

	// 802.1ad S-tag 012c 8100 (PCP 1, VID 300), C-tag 002a 86dd (VID 42).
	s, _ := proto.ParseVLAN(l3GoldenEthQinQIPv6ICMPv6Echo[14:])
	c, _ := proto.ParseVLAN(s.Payload())
	if s.PCP() != 1 || s.DEI() || s.VID() != 300 || s.EtherType() != proto.EtherTypeVLAN {
		t.Errorf("S-tag: PCP %d DEI %v VID %d EtherType %#04x", s.PCP(), s.DEI(), s.VID(), s.EtherType())
	}
	if c.PCP() != 0 || c.VID() != 42 || c.EtherType() != proto.EtherTypeIPv6 {
		t.Errorf("C-tag: PCP %d VID %d EtherType %#04x", c.PCP(), c.VID(), c.EtherType())
	}
}

func TestEthernetSetters(t *testing.T) {
	frame := append([]byte(nil), l3GoldenEthQinQIPv6ICMPv6Echo...)
	e, _ := proto.ParseEthernet(frame)
	e.SetDst(l3M1)
	e.SetSrc(proto.BroadcastMAC)
	e.SetEtherType(proto.EtherTypeVLAN)
	if e.Dst() != l3M1 || e.Src() != proto.BroadcastMAC || e.EtherType() != proto.EtherTypeVLAN {
		t.Errorf("after set: %x %x %#04x", e.Dst(), e.Src(), e.EtherType())
	}
	e.SwapAddrs()
	if e.Dst() != proto.BroadcastMAC || e.Src() != l3M1 {
		t.Errorf("after swap: %x %x", e.Dst(), e.Src())
	}
	if !proto.IsMulticastMAC(e.Dst()) || proto.IsMulticastMAC(e.Src()) {
		t.Error("IsMulticastMAC")
	}
	v, _ := proto.ParseVLAN(e.Payload())
	for _, tc := range []struct {
		pcp uint8
		dei bool
		vid uint16
	}{{7, true, 4095}, {0, false, 0}, {3, true, 1}, {6, false, 2049}} {
		v.SetPCP(tc.pcp)
		v.SetDEI(tc.dei)
		v.SetVID(tc.vid)
		if v.PCP() != tc.pcp || v.DEI() != tc.dei || v.VID() != tc.vid || v.TCI() != proto.MakeTCI(tc.pcp, tc.dei, tc.vid) {
			t.Errorf("set %v: got PCP %d DEI %v VID %d", tc, v.PCP(), v.DEI(), v.VID())
		}
		if v.EtherType() != proto.EtherTypeVLAN {
			t.Errorf("set %v clobbered the EtherType", tc)
		}
	}
	v.SetTCI(0xffff)
	v.SetVID(0)
	if v.TCI() != 0xf000 {
		t.Errorf("SetVID kept %#04x", v.TCI())
	}
	v.SetEtherType(proto.EtherTypeARP)
	if v.EtherType() != proto.EtherTypeARP {
		t.Error("SetEtherType")
	}
	// 0x8100 inside 0x8100 is also walked.
	v.SetEtherType(proto.EtherTypeVLAN)
	_, off, vids, n, err := proto.SkipVLANs(frame)
	if err != nil || off != 22 || n != 2 || vids != [2]uint16{0, 42} {
		t.Errorf("SkipVLANs = %d %v %d %v", off, vids, n, err)
	}
}

func FuzzEthernet(f *testing.F) {
	for _, g := range l3Goldens() {
		if g.link {
			f.Add(g.data)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := proto.ParseEthernet(b)
		et, off, vids, n, verr := proto.SkipVLANs(b)
		if err != nil {
			l3CheckErr(t, err)
			if verr == nil {
				t.Fatal("SkipVLANs accepted what ParseEthernet refused")
			}
			return
		}
		if proto.AppendEthernet(nil, e.Dst(), e.Src(), e.EtherType()) == nil || len(e.Payload()) != len(b)-14 {
			t.Fatal("Ethernet accessors")
		}
		if verr != nil {
			l3CheckErr(t, verr)
			return
		}
		if off != 14+4*n || off > len(b) || n > 2 {
			t.Fatalf("SkipVLANs off %d n %d len %d", off, n, len(b))
		}
		// Walk the tags with the VLAN view and compare.
		p := e.Payload()
		for i := 0; i < n; i++ {
			v, err := proto.ParseVLAN(p)
			if err != nil {
				t.Fatal(err)
			}
			if v.VID() != vids[i] {
				t.Fatalf("tag %d: VID %d, SkipVLANs %d", i, v.VID(), vids[i])
			}
			re := proto.AppendVLAN(nil, proto.MakeTCI(v.PCP(), v.DEI(), v.VID()), v.EtherType())
			if !bytes.Equal(re, v[:4]) {
				t.Fatalf("tag %d: re-encoded %x, was %x", i, re, v[:4])
			}
			if i == n-1 && v.EtherType() != et {
				t.Fatalf("last tag EtherType %#04x, SkipVLANs %#04x", v.EtherType(), et)
			}
			p = v.Payload()
		}
	})
}
