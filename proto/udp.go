package proto

import "encoding/binary"

// UDP header (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
//	|          data octets ...
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// UDPHeaderLen is the length of the UDP header in bytes.
const UDPHeaderLen = 8

// UDP is a view of a UDP datagram (header and payload). Make one only with
// ParseUDP, which guarantees len(u) >= UDPHeaderLen; no accessor or setter
// can then panic.
type UDP []byte

// ParseUDP validates b as a UDP datagram and returns a view of it, cut to
// the datagram's Length field (bytes of b past Length, such as link-layer
// padding, are not part of the view).
//
// It returns ErrTooShort if b is shorter than the header or than the
// Length field says, and ErrBadHeaderLength if Length is below 8 (this
// includes Length 0, which RFC 2675 jumbograms use; they are not
// supported).
func ParseUDP(b []byte) (UDP, error) {
	if len(b) < UDPHeaderLen {
		return nil, perr(LayerUDP, ErrTooShort)
	}
	l := int(binary.BigEndian.Uint16(b[udpLength:]))
	if l < UDPHeaderLen {
		return nil, perr(LayerUDP, ErrBadHeaderLength)
	}
	if l > len(b) {
		return nil, perr(LayerUDP, ErrTooShort)
	}
	return UDP(b[:l:l]), nil
}

func (u UDP) h() *[UDPHeaderLen]byte { return (*[UDPHeaderLen]byte)(u) }

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u.h()[udpSrcPort:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u.h()[udpDstPort:]) }

// Length returns the Length field: header plus payload, in bytes.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u.h()[udpLength:]) }

// Checksum returns the Checksum field as stored.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u.h()[udpChecksum:]) }

// Payload returns the bytes after the header, up to the end of the view.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:] }

// SetSrcPort sets the source port.
func (u UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(u.h()[udpSrcPort:], p) }

// SetDstPort sets the destination port.
func (u UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(u.h()[udpDstPort:], p) }

// SetLength sets the Length field. It does not resize the view.
func (u UDP) SetLength(l uint16) { binary.BigEndian.PutUint16(u.h()[udpLength:], l) }

// SetChecksum sets the Checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u.h()[udpChecksum:], c) }

// ComputeChecksumV4 returns the checksum of the datagram (the whole view)
// over an IPv4 pseudo-header with addresses src and dst, computed as if the
// Checksum field were zero. A computed 0 is returned as 0xffff (RFC 768),
// since 0 on the wire means "no checksum". Store it with SetChecksum.
func (u UDP) ComputeChecksumV4(src, dst [4]byte) uint16 {
	return transportChecksum(u, udpChecksum, PseudoHeaderChecksumV4(IPProtoUDP, src, dst, uint16(len(u))), true)
}

// ComputeChecksumV6 returns the checksum of the datagram over an IPv6
// pseudo-header, computed as if the Checksum field were zero. A computed 0
// is returned as 0xffff.
func (u UDP) ComputeChecksumV6(src, dst [16]byte) uint16 {
	return transportChecksum(u, udpChecksum, PseudoHeaderChecksumV6(IPProtoUDP, src, dst, uint32(len(u))), true)
}

// VerifyChecksumV4 reports whether the stored checksum is correct for an
// IPv4 pseudo-header with addresses src and dst. A stored 0 means the sender
// did not compute a checksum, which RFC 768 allows over IPv4, and verifies.
func (u UDP) VerifyChecksumV4(src, dst [4]byte) bool {
	if u.Checksum() == 0 {
		return true
	}
	return Checksum(u, PseudoHeaderChecksumV4(IPProtoUDP, src, dst, uint16(len(u)))) == 0xffff
}

// VerifyChecksumV6 reports whether the stored checksum is correct for an
// IPv6 pseudo-header. Over IPv6 the checksum is mandatory (RFC 8200 section
// 8.1), so a stored 0 does not verify. (RFC 6935 zero-checksum tunnels are
// not supported here.)
func (u UDP) VerifyChecksumV6(src, dst [16]byte) bool {
	if u.Checksum() == 0 {
		return false
	}
	return Checksum(u, PseudoHeaderChecksumV6(IPProtoUDP, src, dst, uint32(len(u)))) == 0xffff
}

// transportChecksum returns the complemented checksum of b with the 16-bit
// field at off (even, and off+2 <= len(b)) counted as zero, starting from
// the partial sum initial. If zeroAsFFFF, a result of 0 becomes 0xffff.
func transportChecksum(b []byte, off int, initial uint32, zeroAsFFFF bool) uint16 {
	if off+2 > len(b) || off < 0 {
		return 0
	}
	s := Checksum(b[:off], initial)
	s = Checksum(b[off+2:], uint32(s))
	c := ^s
	if c == 0 && zeroAsFFFF {
		c = 0xffff
	}
	return c
}

// UDPFields holds the values of a UDP header to encode.
type UDPFields struct {
	SrcPort  uint16 // source port
	DstPort  uint16 // destination port
	Length   uint16 // header plus payload; set it before computing a checksum
	Checksum uint16 // usually 0 here, then ComputeChecksumV4/V6 on the datagram
}

// Fields returns the header's field values.
func (u UDP) Fields() UDPFields {
	return UDPFields{SrcPort: u.SrcPort(), DstPort: u.DstPort(), Length: u.Length(), Checksum: u.Checksum()}
}

// Encode writes the header into the first UDPHeaderLen bytes of b. It
// returns ErrTooShort, writing nothing, if b is shorter.
func (f UDPFields) Encode(b []byte) error {
	if len(b) < UDPHeaderLen {
		return perr(LayerUDP, ErrTooShort)
	}
	h := (*[UDPHeaderLen]byte)(b)
	binary.BigEndian.PutUint16(h[udpSrcPort:], f.SrcPort)
	binary.BigEndian.PutUint16(h[udpDstPort:], f.DstPort)
	binary.BigEndian.PutUint16(h[udpLength:], f.Length)
	binary.BigEndian.PutUint16(h[udpChecksum:], f.Checksum)
	return nil
}

// AppendUDP appends the 8-byte header f to b and returns the extended
// slice.
func AppendUDP(b []byte, f UDPFields) []byte {
	b = binary.BigEndian.AppendUint16(b, f.SrcPort)
	b = binary.BigEndian.AppendUint16(b, f.DstPort)
	b = binary.BigEndian.AppendUint16(b, f.Length)
	return binary.BigEndian.AppendUint16(b, f.Checksum)
}
