package lb

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/proto"
)

var (
	macClient = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	macLB     = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

type pkt struct {
	src, dst netip.AddrPort
	proto    Proto
	flags    proto.TCPFlags
	payload  []byte
	noCsum   bool // UDP over IPv4 without a checksum
	pad      int  // Ethernet padding after the IP packet
}

// build crafts an Ethernet frame with correct checksums.
func (p pkt) build(tb testing.TB) []byte {
	tb.Helper()
	var l4 []byte
	switch p.proto {
	case TCP:
		var err error
		l4, err = proto.AppendTCP(nil, proto.TCPFields{SrcPort: p.src.Port(), DstPort: p.dst.Port(),
			Seq: 1000, Ack: 2000, Flags: p.flags, Window: 65535})
		if err != nil {
			tb.Fatal(err)
		}
		l4 = append(l4, p.payload...)
	case UDP:
		l4 = proto.AppendUDP(nil, proto.UDPFields{SrcPort: p.src.Port(), DstPort: p.dst.Port(),
			Length: uint16(proto.UDPHeaderLen + len(p.payload))})
		l4 = append(l4, p.payload...)
	}
	b := make([]byte, 0, 128+len(l4))
	if p.src.Addr().Is4() {
		b = proto.AppendEthernet(b, macLB, macClient, proto.EtherTypeIPv4)
		b = proto.AppendIPv4(b, &proto.IPv4Fields{TotalLength: uint16(20 + len(l4)), TTL: 64,
			Protocol: uint8(p.proto), Src: p.src.Addr().As4(), Dst: p.dst.Addr().As4(), ID: 0x1234})
	} else {
		b = proto.AppendEthernet(b, macLB, macClient, proto.EtherTypeIPv6)
		b = proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: uint16(len(l4)), NextHeader: uint8(p.proto),
			HopLimit: 64, Src: p.src.Addr().As16(), Dst: p.dst.Addr().As16()})
	}
	off := len(b)
	b = append(b, l4...)
	if err := setChecksum(b, off, p); err != nil {
		tb.Fatal(err)
	}
	b = append(b, make([]byte, p.pad)...)
	return b
}

func setChecksum(b []byte, off int, p pkt) error {
	l4 := b[off:]
	v4 := p.src.Addr().Is4()
	switch p.proto {
	case TCP:
		t, err := proto.ParseTCP(l4)
		if err != nil {
			return err
		}
		if v4 {
			t.SetChecksum(t.ComputeChecksumV4(p.src.Addr().As4(), p.dst.Addr().As4()))
		} else {
			t.SetChecksum(t.ComputeChecksumV6(p.src.Addr().As16(), p.dst.Addr().As16()))
		}
	case UDP:
		u, err := proto.ParseUDP(l4)
		if err != nil {
			return err
		}
		switch {
		case v4 && p.noCsum:
			u.SetChecksum(0)
		case v4:
			u.SetChecksum(u.ComputeChecksumV4(p.src.Addr().As4(), p.dst.Addr().As4()))
		default:
			u.SetChecksum(u.ComputeChecksumV6(p.src.Addr().As16(), p.dst.Addr().As16()))
		}
	}
	return nil
}

// headers decodes a frame's addresses and ports.
type headers struct {
	srcMAC, dstMAC [6]byte
	src, dst       netip.AddrPort
	proto          uint8
	l4csum         uint16
}

func decodeHeaders(frame []byte) (headers, error) {
	var d proto.Decoded
	if err := proto.Decode(frame, &d, nil); err != nil {
		return headers{}, err
	}
	eth, _ := proto.ParseEthernet(frame)
	h := headers{srcMAC: eth.Src(), dstMAC: eth.Dst(), proto: d.L4Proto,
		src: netip.AddrPortFrom(d.Flow.SrcAddr(), d.Flow.SrcPort),
		dst: netip.AddrPortFrom(d.Flow.DstAddr(), d.Flow.DstPort)}
	if d.L4Off != 0 && d.L4Off+8 <= len(frame) {
		o := 6
		if d.L4Proto == proto.IPProtoTCP {
			o = 16
		}
		if d.L4Off+o+2 <= len(frame) {
			h.l4csum = uint16(frame[d.L4Off+o])<<8 | uint16(frame[d.L4Off+o+1])
		}
	}
	return h, nil
}

// verifyChecksums recomputes every checksum of a TCP or UDP frame from
// scratch: the IPv4 header checksum and the transport checksum.
func verifyChecksums(frame []byte) error {
	var d proto.Decoded
	if err := proto.Decode(frame, &d, nil); err != nil {
		return err
	}
	if d.Frag || (d.L4Proto != proto.IPProtoTCP && d.L4Proto != proto.IPProtoUDP) {
		return fmt.Errorf("not an unfragmented TCP or UDP packet")
	}
	l4 := frame[d.L4Off:d.L3End]
	switch d.L3Proto {
	case proto.EtherTypeIPv4:
		ip, err := proto.ParseIPv4(frame[d.L3Off:])
		if err != nil {
			return err
		}
		if !ip.VerifyChecksum() {
			return fmt.Errorf("bad IPv4 header checksum %#04x, want %#04x", ip.Checksum(), ip.CalculateChecksum())
		}
		src, dst := ip.SrcArray(), ip.DstArray()
		if d.L4Proto == proto.IPProtoTCP {
			t, err := proto.ParseTCP(l4)
			if err != nil {
				return err
			}
			if !t.VerifyChecksumV4(src, dst) {
				return fmt.Errorf("bad TCP checksum %#04x, want %#04x", t.Checksum(), t.ComputeChecksumV4(src, dst))
			}
			return nil
		}
		u, err := proto.ParseUDP(l4)
		if err != nil {
			return err
		}
		if !u.VerifyChecksumV4(src, dst) {
			return fmt.Errorf("bad UDP checksum %#04x, want %#04x", u.Checksum(), u.ComputeChecksumV4(src, dst))
		}
	case proto.EtherTypeIPv6:
		ip, err := proto.ParseIPv6(frame[d.L3Off:])
		if err != nil {
			return err
		}
		src, dst := ip.SrcArray(), ip.DstArray()
		if d.L4Proto == proto.IPProtoTCP {
			t, err := proto.ParseTCP(l4)
			if err != nil {
				return err
			}
			if !t.VerifyChecksumV6(src, dst) {
				return fmt.Errorf("bad TCP checksum %#04x, want %#04x", t.Checksum(), t.ComputeChecksumV6(src, dst))
			}
			return nil
		}
		u, err := proto.ParseUDP(l4)
		if err != nil {
			return err
		}
		if !u.VerifyChecksumV6(src, dst) {
			return fmt.Errorf("bad UDP checksum %#04x, want %#04x", u.Checksum(), u.ComputeChecksumV6(src, dst))
		}
	}
	return nil
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func ipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
