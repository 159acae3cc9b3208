package proto

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 header (RFC 8200 section 3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                         Source Address                        +
//	|                          (16 bytes)                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                      Destination Address                      +
//	|                          (16 bytes)                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv6VersTCFlow = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	// IPv6HeaderLen is the length of the fixed IPv6 header.
	IPv6HeaderLen = 40

	// MaxIPv6ExtHeaders is the most extension headers WalkIPv6 follows.
	MaxIPv6ExtHeaders = 8
)

// IPv6 is a view of an IPv6 packet: the fixed header and exactly
// PayloadLength bytes of payload (extension headers included). Make one
// with ParseIPv6.
type IPv6 []byte

// ParseIPv6 checks that b starts with an IPv6 packet and returns a view of
// it, truncated to 40 + payload length so that trailing Ethernet padding is
// excluded. A payload length of 0 with a hop-by-hop header next (a
// jumbogram, RFC 2675) is ErrUnsupported; a payload length of 0 with any
// other next header is an empty payload.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, perr(LayerIPv6, ErrTooShort)
	}
	h := (*[IPv6HeaderLen]byte)(b)
	if h[ipv6VersTCFlow]>>4 != 6 {
		return nil, perr(LayerIPv6, ErrBadVersion)
	}
	pl := int(binary.BigEndian.Uint16(h[ipv6PayloadLen : ipv6PayloadLen+2]))
	if pl == 0 && h[ipv6NextHeader] == IPProtoHopByHop {
		return nil, perr(LayerIPv6, ErrUnsupported)
	}
	if pl > len(b)-IPv6HeaderLen {
		return nil, perr(LayerIPv6, ErrTooShort)
	}
	return IPv6(b[:IPv6HeaderLen+pl]), nil
}

// ParseIPv6Quoted parses the IPv6 packet quoted in an ICMPv6 error, which
// is usually cut short: it checks the version like ParseIPv6 but accepts a
// payload length beyond the end of b. The view is truncated to 40 + payload
// length when b holds more, else it is all of b; WalkIPv6 on it reports
// ErrTooShort if the cut falls inside an extension header.
func ParseIPv6Quoted(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, perr(LayerIPv6, ErrTooShort)
	}
	h := (*[IPv6HeaderLen]byte)(b)
	if h[ipv6VersTCFlow]>>4 != 6 {
		return nil, perr(LayerIPv6, ErrBadVersion)
	}
	pl := int(binary.BigEndian.Uint16(h[ipv6PayloadLen : ipv6PayloadLen+2]))
	return IPv6(b[:min(IPv6HeaderLen+pl, len(b))]), nil
}

func (b IPv6) hdr() *[IPv6HeaderLen]byte { return (*[IPv6HeaderLen]byte)(b) }

// Version returns the version field (6 for a parsed packet).
func (b IPv6) Version() uint8 { return b.hdr()[ipv6VersTCFlow] >> 4 }

func (b IPv6) word0() uint32 {
	return binary.BigEndian.Uint32(b.hdr()[ipv6VersTCFlow : ipv6VersTCFlow+4])
}

// TrafficClass returns the traffic class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 { return uint8(b.word0() >> 20) }

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 { return b.word0() & 0xfffff }

// PayloadLength returns the payload length field: the bytes after the fixed
// header, extension headers included.
func (b IPv6) PayloadLength() uint16 {
	return binary.BigEndian.Uint16(b.hdr()[ipv6PayloadLen : ipv6PayloadLen+2])
}

// NextHeader returns the next header field: the first extension header or
// the upper-layer protocol (see WalkIPv6).
func (b IPv6) NextHeader() uint8 { return b.hdr()[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b.hdr()[ipv6HopLimit] }

// SrcArray returns the source address.
func (b IPv6) SrcArray() [16]byte { return [16]byte(b.hdr()[ipv6Src : ipv6Src+16]) }

// DstArray returns the destination address.
func (b IPv6) DstArray() [16]byte { return [16]byte(b.hdr()[ipv6Dst : ipv6Dst+16]) }

// Src returns the source address.
func (b IPv6) Src() netip.Addr { return netip.AddrFrom16(b.SrcArray()) }

// Dst returns the destination address.
func (b IPv6) Dst() netip.Addr { return netip.AddrFrom16(b.DstArray()) }

// Payload returns the bytes after the fixed header (extension headers
// first, if any). It aliases the packet.
func (b IPv6) Payload() []byte { return b[IPv6HeaderLen:] }

func (b IPv6) setWord0(v uint32) {
	binary.BigEndian.PutUint32(b.hdr()[ipv6VersTCFlow:ipv6VersTCFlow+4], v)
}

// SetTrafficClass sets the traffic class.
func (b IPv6) SetTrafficClass(tc uint8) { b.setWord0(b.word0()&^0x0ff00000 | uint32(tc)<<20) }

// SetFlowLabel sets the flow label; only the low 20 bits of fl are used.
func (b IPv6) SetFlowLabel(fl uint32) { b.setWord0(b.word0()&^0xfffff | fl&0xfffff) }

// SetPayloadLength sets the payload length field. The view keeps its
// length: reslice the frame and parse again to see a different payload.
func (b IPv6) SetPayloadLength(n uint16) {
	binary.BigEndian.PutUint16(b.hdr()[ipv6PayloadLen:ipv6PayloadLen+2], n)
}

// SetNextHeader sets the next header field.
func (b IPv6) SetNextHeader(nh uint8) { b.hdr()[ipv6NextHeader] = nh }

// SetHopLimit sets the hop limit.
func (b IPv6) SetHopLimit(hl uint8) { b.hdr()[ipv6HopLimit] = hl }

// DecHopLimit decrements the hop limit and returns the new value; a hop
// limit that is already 0 is left alone. IPv6 has no header checksum to
// update.
func (b IPv6) DecHopLimit() uint8 {
	h := b.hdr()
	if h[ipv6HopLimit] != 0 {
		h[ipv6HopLimit]--
	}
	return h[ipv6HopLimit]
}

// SetSrc sets the source address. Transport checksums are not updated (see
// ChecksumUpdateAddr16).
func (b IPv6) SetSrc(a [16]byte) { copy(b.hdr()[ipv6Src:ipv6Src+16], a[:]) }

// SetDst sets the destination address. Transport checksums are not updated
// (see ChecksumUpdateAddr16).
func (b IPv6) SetDst(a [16]byte) { copy(b.hdr()[ipv6Dst:ipv6Dst+16], a[:]) }

// Fields returns the fixed header's fields.
func (b IPv6) Fields() IPv6Fields {
	return IPv6Fields{
		TrafficClass:  b.TrafficClass(),
		FlowLabel:     b.FlowLabel(),
		PayloadLength: b.PayloadLength(),
		NextHeader:    b.NextHeader(),
		HopLimit:      b.HopLimit(),
		Src:           b.SrcArray(),
		Dst:           b.DstArray(),
	}
}

// IPv6Fields holds the fields of a fixed IPv6 header for Encode and
// AppendIPv6.
type IPv6Fields struct {
	TrafficClass  uint8    // DSCP << 2 | ECN
	FlowLabel     uint32   // low 20 bits
	PayloadLength uint16   // bytes after the fixed header
	NextHeader    uint8    // first extension header or upper-layer protocol
	HopLimit      uint8    // hop limit
	Src, Dst      [16]byte // source and destination addresses
}

// Encode writes the 40-byte header described by f to the start of b, which
// must be at least IPv6HeaderLen bytes long (shorter is a programming error
// and panics).
func (f *IPv6Fields) Encode(b []byte) {
	h := (*[IPv6HeaderLen]byte)(b[:IPv6HeaderLen])
	binary.BigEndian.PutUint32(h[ipv6VersTCFlow:ipv6VersTCFlow+4], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(h[ipv6PayloadLen:ipv6PayloadLen+2], f.PayloadLength)
	h[ipv6NextHeader] = f.NextHeader
	h[ipv6HopLimit] = f.HopLimit
	copy(h[ipv6Src:ipv6Src+16], f.Src[:])
	copy(h[ipv6Dst:ipv6Dst+16], f.Dst[:])
}

// AppendIPv6 appends the 40-byte header described by f to b; the caller
// appends extension headers and payload.
func AppendIPv6(b []byte, f *IPv6Fields) []byte {
	n := len(b)
	b = append(b, make([]byte, IPv6HeaderLen)...)
	f.Encode(b[n:])
	return b
}

// IPv6Ext is what WalkIPv6 found after the fixed header.
type IPv6Ext struct {
	// Proto is the upper-layer protocol: the first next header value that
	// is not an extension header WalkIPv6 follows (IPProtoNoNext and
	// IPProtoESP included).
	Proto uint8
	// Offset is the offset of the upper-layer header from the start of the
	// IPv6 packet.
	Offset int
	// FragOffset is the offset of the fragment header from the start of
	// the packet, or -1 if there is none.
	FragOffset int
	// N is the number of extension headers walked.
	N int
}

// WalkIPv6 follows the extension header chain of b: hop-by-hop options (0,
// only directly after the fixed header, else ErrBadValue), routing (43),
// fragment (44), destination options (60) and authentication (51). It stops
// at any other next header and reports it as Proto with its offset.
//
// For a fragment whose offset is not zero the walk stops after the fragment
// header: Proto is the fragment header's next header, but Offset points at
// fragment data, not at a header. Check FragOffset before parsing the upper
// layer.
//
// The walk follows at most MaxIPv6ExtHeaders headers (ErrTooManyHeaders),
// never reads past b (a header that does not fit is ErrTooShort) and never
// allocates. b must come from ParseIPv6.
func WalkIPv6(b IPv6) (ext IPv6Ext, err error) {
	nh := b.NextHeader()
	rest := b[IPv6HeaderLen:] // the unwalked part, at offset len(b)-len(rest)
	ext.FragOffset = -1
	for {
		switch nh {
		case IPProtoHopByHop, IPProtoRouting, IPProtoFragment, IPProtoDstOpts, IPProtoAH:
		default:
			ext.Proto = nh
			ext.Offset = len(b) - len(rest)
			return ext, nil
		}
		if nh == IPProtoHopByHop && ext.N != 0 {
			return ext, perr(LayerIPv6Ext, ErrBadValue)
		}
		if ext.N == MaxIPv6ExtHeaders {
			return ext, perr(LayerIPv6Ext, ErrTooManyHeaders)
		}
		if len(rest) < 2 {
			return ext, perr(LayerIPv6Ext, ErrTooShort)
		}
		next, hl := rest[0], int(rest[1])
		switch nh {
		case IPProtoFragment:
			hl = IPv6FragmentLen
		case IPProtoAH:
			hl = (hl + 2) * 4 // RFC 4302 section 2.2
		default:
			hl = (hl + 1) * 8 // RFC 8200 section 4
		}
		if len(rest) < hl {
			return ext, perr(LayerIPv6Ext, ErrTooShort)
		}
		ext.N++
		if nh == IPProtoFragment {
			off := len(b) - len(rest)
			if ext.FragOffset < 0 {
				ext.FragOffset = off
			}
			if IPv6Fragment(rest[:IPv6FragmentLen]).FragmentOffset() != 0 {
				ext.Proto = next
				ext.Offset = off + IPv6FragmentLen
				return ext, nil
			}
		}
		nh = next
		rest = rest[hl:]
	}
}

// IPv6 fragment header (RFC 8200 section 4.5):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv6FragNextHeader = 0
	ipv6FragOffM       = 2
	ipv6FragID         = 4

	// IPv6FragmentLen is the length of an IPv6 fragment header.
	IPv6FragmentLen = 8
)

// IPv6Fragment is a view of an IPv6 fragment header. Make one with
// ParseIPv6Fragment (or slice b[ext.FragOffset:] after WalkIPv6).
type IPv6Fragment []byte

// ParseIPv6Fragment checks that b holds a fragment header and returns a
// view of its 8 bytes.
func ParseIPv6Fragment(b []byte) (IPv6Fragment, error) {
	if len(b) < IPv6FragmentLen {
		return nil, perr(LayerIPv6Ext, ErrTooShort)
	}
	return IPv6Fragment(b[:IPv6FragmentLen]), nil
}

func (f IPv6Fragment) hdr() *[IPv6FragmentLen]byte { return (*[IPv6FragmentLen]byte)(f) }

// NextHeader returns the protocol of the fragmentable part.
func (f IPv6Fragment) NextHeader() uint8 { return f.hdr()[ipv6FragNextHeader] }

func (f IPv6Fragment) offM() uint16 {
	return binary.BigEndian.Uint16(f.hdr()[ipv6FragOffM : ipv6FragOffM+2])
}

// FragmentOffset returns the fragment offset in bytes (the field × 8).
func (f IPv6Fragment) FragmentOffset() uint16 { return f.offM() &^ 7 }

// MoreFragments reports the M flag.
func (f IPv6Fragment) MoreFragments() bool { return f.offM()&1 != 0 }

// ID returns the identification field.
func (f IPv6Fragment) ID() uint32 {
	return binary.BigEndian.Uint32(f.hdr()[ipv6FragID : ipv6FragID+4])
}

// SetNextHeader sets the next header field.
func (f IPv6Fragment) SetNextHeader(nh uint8) { f.hdr()[ipv6FragNextHeader] = nh }

// SetFragmentOffset sets the fragment offset in bytes (rounded down to a
// multiple of 8) and the M flag.
func (f IPv6Fragment) SetFragmentOffset(offset uint16, more bool) {
	v := offset &^ 7
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(f.hdr()[ipv6FragOffM:ipv6FragOffM+2], v)
}

// SetID sets the identification field.
func (f IPv6Fragment) SetID(id uint32) {
	binary.BigEndian.PutUint32(f.hdr()[ipv6FragID:ipv6FragID+4], id)
}

// AppendIPv6Fragment appends an 8-byte fragment header to b. offset is in
// bytes and rounded down to a multiple of 8.
func AppendIPv6Fragment(b []byte, nextHeader uint8, offset uint16, more bool, id uint32) []byte {
	v := offset &^ 7
	if more {
		v |= 1
	}
	b = append(b, nextHeader, 0, byte(v>>8), byte(v))
	return binary.BigEndian.AppendUint32(b, id)
}
