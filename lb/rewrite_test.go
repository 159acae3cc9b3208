package lb

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/proto"
)

func decodeT(tb testing.TB, frame []byte) *proto.Decoded {
	tb.Helper()
	var d proto.Decoded
	if err := proto.Decode(frame, &d, nil); err != nil {
		tb.Fatal(err)
	}
	return &d
}

func TestRewrite(t *testing.T) {
	payload := []byte("hello, balancer: an odd-length payload")
	cases := []struct {
		name     string
		p        pkt
		newDst   netip.AddrPort
		newSrc   netip.AddrPort
		zeroKept bool
	}{
		{"tcp4", pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagSYN},
			ap("10.0.1.11:8080"), ap("10.0.0.100:80"), false},
		{"udp4", pkt{src: ap("192.0.2.7:5353"), dst: ap("10.0.0.100:53"), proto: UDP, payload: payload},
			ap("10.0.1.12:53"), ap("10.0.0.100:53"), false},
		{"udp4-nocsum", pkt{src: ap("192.0.2.7:5353"), dst: ap("10.0.0.100:53"), proto: UDP, payload: payload, noCsum: true},
			ap("10.0.1.12:5300"), ap("10.9.9.9:1"), true},
		{"tcp6", pkt{src: ap("[2001:db8::7]:40000"), dst: ap("[fd00::100]:443"), proto: TCP, flags: proto.TCPFlagACK, payload: payload},
			ap("[fd00:1::11]:8443"), ap("[fd00::100]:443"), false},
		{"udp6", pkt{src: ap("[2001:db8::7]:5353"), dst: ap("[fd00::100]:53"), proto: UDP, payload: payload[:7]},
			ap("[fd00:1::12]:53"), ap("[fd00::100]:53"), false},
		{"tcp4-padded", pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagACK, pad: 6},
			ap("10.0.1.11:80"), ap("10.0.0.1:81"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frame := c.p.build(t)
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("crafted frame: %v", err)
			}
			d := decodeT(t, frame)
			if err := RewriteDst(frame, d, c.newDst.Addr().As16(), c.newDst.Port()); err != nil {
				t.Fatal(err)
			}
			h, err := decodeHeaders(frame)
			if err != nil {
				t.Fatal(err)
			}
			if h.dst != c.newDst || h.src != c.p.src {
				t.Fatalf("after RewriteDst: %v -> %v, want %v -> %v", h.src, h.dst, c.p.src, c.newDst)
			}
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("after RewriteDst: %v", err)
			}
			if c.zeroKept && h.l4csum != 0 {
				t.Fatalf("UDP checksum 0 became %#04x", h.l4csum)
			}
			d = decodeT(t, frame)
			if err := RewriteSrc(frame, d, c.newSrc.Addr().As16(), c.newSrc.Port()); err != nil {
				t.Fatal(err)
			}
			h, _ = decodeHeaders(frame)
			if h.src != c.newSrc || h.dst != c.newDst {
				t.Fatalf("after RewriteSrc: %v -> %v, want %v -> %v", h.src, h.dst, c.newSrc, c.newDst)
			}
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("after RewriteSrc: %v", err)
			}
		})
	}
}

// TestRewriteRandom checks the incremental updates against full
// recomputation on many random addresses, ports and payloads.
func TestRewriteRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func(v4 bool) netip.Addr {
		if v4 {
			var a [4]byte
			for i := range a {
				a[i] = byte(r.UintN(256))
			}
			return netip.AddrFrom4(a)
		}
		var a [16]byte
		for i := range a {
			a[i] = byte(r.UintN(256))
		}
		a[0] = 0xfd
		return netip.AddrFrom16(a)
	}
	for i := 0; i < 5000; i++ {
		v4 := r.IntN(2) == 0
		p := pkt{src: netip.AddrPortFrom(addr(v4), uint16(r.Uint32())), dst: netip.AddrPortFrom(addr(v4), uint16(r.Uint32())),
			proto: TCP, payload: make([]byte, r.IntN(64))}
		if r.IntN(2) == 0 {
			p.proto = UDP
			p.noCsum = v4 && r.IntN(4) == 0
		}
		for j := range p.payload {
			p.payload[j] = byte(r.UintN(256))
		}
		frame := p.build(t)
		d := decodeT(t, frame)
		na := addr(v4)
		np := uint16(r.Uint32())
		rw := RewriteDst
		if r.IntN(2) == 0 {
			rw = RewriteSrc
		}
		if err := rw(frame, d, na.As16(), np); err != nil {
			t.Fatal(err)
		}
		if err := verifyChecksums(frame); err != nil {
			t.Fatalf("case %d %+v -> %v:%d: %v", i, p, na, np, err)
		}
	}
}

func TestRewriteRefuses(t *testing.T) {
	tcp4 := pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP}
	v6 := ap("[fd00::1]:80").Addr().As16()
	v4 := ap("10.0.0.1:80").Addr().As16()

	frame := tcp4.build(t)
	orig := bytes.Clone(frame)
	d := decodeT(t, frame)
	if err := RewriteDst(frame, d, v6, 80); !errors.Is(err, ErrNotRewritable) {
		t.Errorf("IPv6 address into IPv4 packet: err %v", err)
	}
	// A Decoded that does not match the frame.
	bad := *d
	bad.L3End = len(frame) + 10
	if err := RewriteDst(frame, &bad, v4, 80); !errors.Is(err, ErrNotRewritable) {
		t.Errorf("L3End past the frame: err %v", err)
	}
	bad = *d
	bad.L4Off = bad.L3Off + 24
	if err := RewriteDst(frame, &bad, v4, 80); !errors.Is(err, ErrNotRewritable) {
		t.Errorf("L4Off inconsistent with IHL: err %v", err)
	}
	bad = *d
	bad.Frag = true
	if err := RewriteDst(frame, &bad, v4, 80); !errors.Is(err, ErrNotRewritable) {
		t.Errorf("fragment: err %v", err)
	}
	if !bytes.Equal(frame, orig) {
		t.Errorf("a refused rewrite changed the frame")
	}
	tcp6 := pkt{src: ap("[2001:db8::7]:40000"), dst: ap("[fd00::100]:443"), proto: TCP}
	frame = tcp6.build(t)
	if err := RewriteDst(frame, decodeT(t, frame), v4, 80); !errors.Is(err, ErrNotRewritable) {
		t.Errorf("IPv4 address into IPv6 packet: err %v", err)
	}
}

func TestRewriteAllocs(t *testing.T) {
	frame := pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP}.build(t)
	d := decodeT(t, frame)
	a := ap("10.0.1.11:8080").Addr().As16()
	if n := testing.AllocsPerRun(100, func() { _ = RewriteDst(frame, d, a, 8080) }); n != 0 {
		t.Errorf("RewriteDst allocates %v times", n)
	}
}

// FuzzRewrite feeds arbitrary frames to the rewrite: it must not panic,
// must leave a refused frame unchanged, and must keep checksums that were
// right before right after.
func FuzzRewrite(f *testing.F) {
	for _, p := range []pkt{
		{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagSYN},
		{src: ap("192.0.2.7:5353"), dst: ap("10.0.0.100:53"), proto: UDP, payload: []byte("x")},
		{src: ap("192.0.2.7:5353"), dst: ap("10.0.0.100:53"), proto: UDP, noCsum: true},
		{src: ap("[2001:db8::7]:40000"), dst: ap("[fd00::100]:443"), proto: TCP, payload: []byte("abc")},
		{src: ap("[2001:db8::7]:5353"), dst: ap("[fd00::100]:53"), proto: UDP, pad: 3},
	} {
		f.Add(p.build(f), uint16(8080), uint32(0x0a00010b), false)
	}
	f.Fuzz(func(t *testing.T, frame []byte, port uint16, a uint32, src bool) {
		var d proto.Decoded
		if proto.Decode(frame, &d, nil) != nil {
			return
		}
		good := verifyChecksums(frame) == nil
		orig := bytes.Clone(frame)
		var addr [16]byte
		if d.L3Proto == proto.EtherTypeIPv4 {
			addr = netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).As16()
		} else {
			addr[0], addr[15] = 0xfd, byte(a)
			addr[4], addr[5], addr[6], addr[7] = byte(a>>24), byte(a>>16), byte(a>>8), byte(a)
		}
		rw := RewriteDst
		if src {
			rw = RewriteSrc
		}
		err := rw(frame, &d, addr, port)
		if err != nil {
			if !bytes.Equal(frame, orig) {
				t.Fatalf("refused rewrite (%v) changed the frame", err)
			}
			return
		}
		if good {
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("checksums were right before the rewrite, now: %v", err)
			}
		}
	})
}

// TestRewriteUDPZero walks every destination port, so that one of them
// makes the updated UDP checksum compute to 0, which must be sent as
// 0xffff (RFC 768; over IPv6 a 0 would mean "no checksum", which is not
// allowed, and over IPv4 it would turn the checksum off).
func TestRewriteUDPZero(t *testing.T) {
	for _, p := range []pkt{
		{src: ap("[2001:db8::7]:5353"), dst: ap("[fd00::100]:53"), proto: UDP, payload: []byte("zero?")},
		{src: ap("192.0.2.7:5353"), dst: ap("10.0.0.100:53"), proto: UDP, payload: []byte("zero?")},
	} {
		orig := p.build(t)
		frame := bytes.Clone(orig)
		d := decodeT(t, frame)
		a := p.dst.Addr().As16()
		sawFFFF := false
		for port := range 1 << 16 {
			copy(frame, orig)
			if err := RewriteDst(frame, d, a, uint16(port)); err != nil {
				t.Fatal(err)
			}
			h, _ := decodeHeaders(frame)
			if h.l4csum == 0 {
				t.Fatalf("%v port %d: UDP checksum 0", p.src, port)
			}
			sawFFFF = sawFFFF || h.l4csum == 0xffff
			if err := verifyChecksums(frame); err != nil {
				t.Fatalf("port %d: %v", port, err)
			}
		}
		if !sawFFFF {
			t.Fatalf("%v: no port gave a computed 0 checksum: the test did not test it", p.src)
		}
	}
}

// TestRewriteIPv6Extensions: an extension header before TCP is walked
// over; a routing header makes the packet not rewritable (its final
// destination is in the pseudo-header).
func TestRewriteIPv6Extensions(t *testing.T) {
	src, dst := ipAddr("2001:db8::7").As16(), ipAddr("fd00::100").As16()
	build := func(ext uint8) []byte {
		tcp, _ := proto.AppendTCP(nil, proto.TCPFields{SrcPort: 40000, DstPort: 443, Seq: 1, Flags: proto.TCPFlagSYN, Window: 1000})
		seg, _ := proto.ParseTCP(tcp)
		seg.SetChecksum(seg.ComputeChecksumV6(src, dst))
		hdr := []byte{proto.IPProtoTCP, 0, 1, 4, 0, 0, 0, 0} // next header TCP, length 0, PadN
		if ext == proto.IPProtoRouting {
			hdr = []byte{proto.IPProtoTCP, 0, 0, 0, 0, 0, 0, 0} // type 0, segments left 0
		}
		b := proto.AppendEthernet(nil, macLB, macClient, proto.EtherTypeIPv6)
		b = proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: uint16(len(hdr) + len(tcp)), NextHeader: ext, HopLimit: 64, Src: src, Dst: dst})
		return append(append(b, hdr...), tcp...)
	}
	frame := build(60) // destination options
	if err := verifyChecksums(frame); err != nil {
		t.Fatal(err)
	}
	d := decodeT(t, frame)
	if d.L4Off != 14+48 {
		t.Fatalf("L4Off %d", d.L4Off)
	}
	if err := RewriteDst(frame, d, ipAddr("fd00:1::11").As16(), 8443); err != nil {
		t.Fatal(err)
	}
	if err := verifyChecksums(frame); err != nil {
		t.Fatal(err)
	}
	frame = build(proto.IPProtoRouting)
	orig := bytes.Clone(frame)
	if err := RewriteDst(frame, decodeT(t, frame), ipAddr("fd00:1::11").As16(), 8443); !errors.Is(err, ErrNotRewritable) {
		t.Fatalf("routing header: err %v", err)
	}
	if !bytes.Equal(frame, orig) {
		t.Fatal("refused rewrite changed the frame")
	}
}
