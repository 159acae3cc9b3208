package lb

import (
	"errors"

	"github.com/tygress/tygress/proto"
)

// ErrNotRewritable is returned by the rewrite functions for a frame they
// cannot rewrite: not TCP or UDP over IPv4 or IPv6, a fragment, or
// offsets in the Decoded that do not match the frame. The frame is then
// unchanged.
var ErrNotRewritable = errors.New("lb: frame cannot be rewritten")

// RewriteDst sets the destination address and port of the TCP or UDP
// packet in frame, which d describes (from proto.Decode of the same
// frame), in place. addr is 16 bytes, IPv4-mapped for IPv4 (as in
// proto.FlowKey); the family must be the packet's. The IPv4 header
// checksum and the TCP/UDP checksum (pseudo-header and port) are updated
// incrementally (RFC 1624), so a packet whose checksums were right still
// has right checksums. A UDP checksum of 0 over IPv4 (none computed)
// stays 0. Everything is validated before the first byte is written.
func RewriteDst(frame []byte, d *proto.Decoded, addr [16]byte, port uint16) error {
	return rewrite(frame, d, &addr, port, true)
}

// RewriteSrc is RewriteDst for the source address and port.
func RewriteSrc(frame []byte, d *proto.Decoded, addr [16]byte, port uint16) error {
	return rewrite(frame, d, &addr, port, false)
}

// SetMACs sets the Ethernet source and destination addresses of frame.
func SetMACs(frame []byte, src, dst [6]byte) error {
	eth, err := proto.ParseEthernet(frame)
	if err != nil {
		return err
	}
	eth.SetSrc(src)
	eth.SetDst(dst)
	return nil
}

// UDP and TCP header offsets of the ports and the checksum.
const (
	offSrcPort = 0
	offDstPort = 2
	offUDPCsum = 6
	offTCPCsum = 16
	ipv4Mapped = 12 // offset of the IPv4 address in a 16-byte mapped one
	ipv6HdrLen = 40
)

func rewrite(frame []byte, d *proto.Decoded, addr *[16]byte, port uint16, dst bool) error {
	if d.Frag || d.L3Off <= 0 || d.L4Off <= d.L3Off || d.L3End > len(frame) || d.L4Off >= d.L3End {
		return ErrNotRewritable
	}
	// The transport header, through its checked constructor.
	l4 := frame[d.L4Off:d.L3End]
	csOff := 0
	switch d.L4Proto {
	case proto.IPProtoTCP:
		if _, err := proto.ParseTCP(l4); err != nil {
			return ErrNotRewritable
		}
		csOff = offTCPCsum
	case proto.IPProtoUDP:
		u, err := proto.ParseUDP(l4)
		if err != nil {
			return ErrNotRewritable
		}
		l4 = u
		csOff = offUDPCsum
	default:
		return ErrNotRewritable
	}
	portOff := offSrcPort
	if dst {
		portOff = offDstPort
	}
	csum := uint16(l4[csOff])<<8 | uint16(l4[csOff+1])
	oldPort := uint16(l4[portOff])<<8 | uint16(l4[portOff+1])
	// UDP over IPv4 may carry no checksum (0); it must stay 0.
	noCsum := csOff == offUDPCsum && csum == 0
	switch d.L3Proto {
	case proto.EtherTypeIPv4:
		ip, err := proto.ParseIPv4(frame[d.L3Off:d.L3End])
		if err != nil || d.L3Off+ip.HeaderLength() != d.L4Off || ip.Protocol() != d.L4Proto || !isMapped(addr) {
			return ErrNotRewritable
		}
		a := [4]byte(addr[ipv4Mapped:])
		var old [4]byte
		if dst {
			old = ip.RewriteDst(a)
		} else {
			old = ip.RewriteSrc(a)
		}
		if !noCsum {
			csum = proto.ChecksumUpdateAddr4(csum, old, a)
		}
	case proto.EtherTypeIPv6:
		ip, err := proto.ParseIPv6(frame[d.L3Off:d.L3End])
		if err != nil || d.L4Off-d.L3Off < ipv6HdrLen || isMapped(addr) || hasRouting(ip, d.L4Off-d.L3Off) {
			return ErrNotRewritable
		}
		var old [16]byte
		if dst {
			old = ip.DstArray()
			ip.SetDst(*addr)
		} else {
			old = ip.SrcArray()
			ip.SetSrc(*addr)
		}
		// Over IPv6 a zero UDP checksum is invalid; it is left as it is.
		if !noCsum {
			csum = proto.ChecksumUpdateAddr16(csum, old, *addr)
		}
	default:
		return ErrNotRewritable
	}
	if !noCsum {
		csum = proto.ChecksumUpdate16(csum, oldPort, port)
		if csum == 0 && csOff == offUDPCsum {
			csum = 0xffff // RFC 768: a computed 0 is sent as all ones
		}
	}
	l4[portOff], l4[portOff+1] = byte(port>>8), byte(port)
	l4[csOff], l4[csOff+1] = byte(csum>>8), byte(csum)
	return nil
}

// isMapped reports whether a is an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
func isMapped(a *[16]byte) bool {
	for _, c := range a[:10] {
		if c != 0 {
			return false
		}
	}
	return a[10] == 0xff && a[11] == 0xff
}

// hasRouting reports whether the extension headers of ip before offset l4
// include a routing header (or cannot be walked). With one, the TCP/UDP
// pseudo-header holds the final destination, not the fixed header's, so
// the incremental update would be wrong.
func hasRouting(ip proto.IPv6, l4 int) bool {
	nh := ip.NextHeader()
	for off := ipv6HdrLen; off < l4; {
		if nh == proto.IPProtoRouting || off+2 > len(ip) {
			return true
		}
		n := (int(ip[off+1]) + 1) * 8
		switch nh {
		case proto.IPProtoFragment:
			n = 8
		case proto.IPProtoAH:
			n = (int(ip[off+1]) + 2) * 4
		}
		nh = ip[off]
		off += n
	}
	return false
}
