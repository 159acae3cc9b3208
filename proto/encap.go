package proto

import "encoding/binary"

// Tunnel encapsulations: GRE, GUE, VXLAN. IP-in-IP needs no header of its
// own: it is an IPv4 protocol or IPv6 next header value of IPProtoIPIP (4)
// for an inner IPv4 packet or IPProtoIPv6 (41) for an inner IPv6 packet
// (RFC 2003, RFC 2473, RFC 4213).

// UDP destination ports of the UDP-based encapsulations.
const (
	VXLANPort = 4789 // IANA, RFC 7348
	GUEPort   = 6080 // IANA "gue", draft-ietf-intarea-gue
)

// ---------------------------------------------------------------------------
// GRE

// GRE header (RFC 2784, with the key and sequence number of RFC 2890):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|C| |K|S| Reserved0       | Ver |         Protocol Type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Checksum (optional)      |       Reserved1 (Optional)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Key (optional)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sequence Number (Optional)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	greFlags    = 0
	greVersion  = 1
	greProtocol = 2
	greChecksum = 4

	greFlagC = 0x80
	greFlagK = 0x20
	greFlagS = 0x10
	// Bits 1, 4 and 5 (RFC 1701 routing, strict source route, recursion):
	// RFC 2784 section 2.3 says to discard packets that set them.
	greFlagsRFC1701 = 0x40 | 0x08 | 0x04
	greVersionMask  = 0x07
)

// Lengths of the GRE header.
const (
	GREMinHeaderLen = 4
	GREMaxHeaderLen = 16
)

// GRE is a view of a GRE packet: the header with its optional fields, then
// the payload. Make one only with ParseGRE; no accessor or setter can then
// panic.
type GRE []byte

// ParseGRE validates b as a GRE packet and returns a view of all of b. The
// header length follows from the C, K and S bits. It returns ErrTooShort if
// b is shorter than the header, ErrBadVersion for a version other than 0
// (version 1 is PPTP's enhanced GRE, RFC 2637), and ErrUnsupported if any
// of the RFC 1701 routing, strict-source-route or recursion bits is set.
func ParseGRE(b []byte) (GRE, error) {
	if len(b) < GREMinHeaderLen {
		return nil, perr(LayerGRE, ErrTooShort)
	}
	if b[greVersion]&greVersionMask != 0 {
		return nil, perr(LayerGRE, ErrBadVersion)
	}
	if b[greFlags]&greFlagsRFC1701 != 0 {
		return nil, perr(LayerGRE, ErrUnsupported)
	}
	if greHeaderLen(b[greFlags]) > len(b) {
		return nil, perr(LayerGRE, ErrTooShort)
	}
	return GRE(b), nil
}

func greHeaderLen(flags byte) int {
	n := GREMinHeaderLen
	if flags&greFlagC != 0 {
		n += 4
	}
	if flags&greFlagK != 0 {
		n += 4
	}
	if flags&greFlagS != 0 {
		n += 4
	}
	return n
}

func (g GRE) h() *[GREMinHeaderLen]byte { return (*[GREMinHeaderLen]byte)(g) }

// HeaderLen returns the header length in bytes (4 to 16).
func (g GRE) HeaderLen() int { return min(greHeaderLen(g.h()[greFlags]), len(g)) }

// HasChecksum reports whether the C bit is set (checksum field present).
func (g GRE) HasChecksum() bool { return g.h()[greFlags]&greFlagC != 0 }

// HasKey reports whether the K bit is set (key field present).
func (g GRE) HasKey() bool { return g.h()[greFlags]&greFlagK != 0 }

// HasSeq reports whether the S bit is set (sequence number present).
func (g GRE) HasSeq() bool { return g.h()[greFlags]&greFlagS != 0 }

// Version returns the version field (always 0 in a parsed view).
func (g GRE) Version() uint8 { return g.h()[greVersion] & greVersionMask }

// Protocol returns the Protocol Type: the EtherType of the payload.
func (g GRE) Protocol() uint16 { return binary.BigEndian.Uint16(g.h()[greProtocol:]) }

// Checksum returns the checksum field and true, or 0 and false if the C bit
// is clear.
func (g GRE) Checksum() (uint16, bool) {
	if !g.HasChecksum() || len(g) < greChecksum+2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(g[greChecksum:]), true
}

// keyOff returns the offset of the key field, or -1.
func (g GRE) keyOff() int {
	f := g.h()[greFlags]
	if f&greFlagK == 0 {
		return -1
	}
	if f&greFlagC != 0 {
		return 8
	}
	return 4
}

// seqOff returns the offset of the sequence number field, or -1.
func (g GRE) seqOff() int {
	f := g.h()[greFlags]
	if f&greFlagS == 0 {
		return -1
	}
	return greHeaderLen(f) - 4
}

// Key returns the key and true, or 0 and false if the K bit is clear.
func (g GRE) Key() (uint32, bool) {
	o := g.keyOff()
	if o < 0 || o+4 > len(g) {
		return 0, false
	}
	return binary.BigEndian.Uint32(g[o:]), true
}

// Seq returns the sequence number and true, or 0 and false if the S bit is
// clear.
func (g GRE) Seq() (uint32, bool) {
	o := g.seqOff()
	if o < 0 || o+4 > len(g) {
		return 0, false
	}
	return binary.BigEndian.Uint32(g[o:]), true
}

// Payload returns the bytes after the header.
func (g GRE) Payload() []byte { return g[g.HeaderLen():] }

// SetProtocol sets the Protocol Type.
func (g GRE) SetProtocol(p uint16) { binary.BigEndian.PutUint16(g.h()[greProtocol:], p) }

// SetChecksum sets the checksum field if present and reports whether it is.
func (g GRE) SetChecksum(c uint16) bool {
	if !g.HasChecksum() || len(g) < greChecksum+2 {
		return false
	}
	binary.BigEndian.PutUint16(g[greChecksum:], c)
	return true
}

// SetKey sets the key if the field is present and reports whether it is.
func (g GRE) SetKey(k uint32) bool {
	o := g.keyOff()
	if o < 0 || o+4 > len(g) {
		return false
	}
	binary.BigEndian.PutUint32(g[o:], k)
	return true
}

// SetSeq sets the sequence number if the field is present and reports
// whether it is.
func (g GRE) SetSeq(s uint32) bool {
	o := g.seqOff()
	if o < 0 || o+4 > len(g) {
		return false
	}
	binary.BigEndian.PutUint32(g[o:], s)
	return true
}

// ComputeChecksum returns the GRE checksum over the header and payload (the
// whole view), computed as if the checksum field were zero (RFC 2784
// section 2.5). It is meaningful only when HasChecksum.
func (g GRE) ComputeChecksum() uint16 {
	if !g.HasChecksum() {
		return 0
	}
	return transportChecksum(g, greChecksum, 0, false)
}

// VerifyChecksum reports whether the checksum is correct. A header without
// the C bit has no checksum and verifies.
func (g GRE) VerifyChecksum() bool {
	if !g.HasChecksum() {
		return true
	}
	return Checksum(g, 0) == 0xffff
}

// GREFields holds the values of a GRE header to encode.
type GREFields struct {
	Protocol    uint16 // EtherType of the payload
	HasChecksum bool   // C bit: checksum field present
	Checksum    uint16 // usually 0 here, then GRE.ComputeChecksum once the payload is in place
	HasKey      bool   // K bit: key field present
	Key         uint32 // RFC 2890 key
	HasSeq      bool   // S bit: sequence number present
	Seq         uint32 // RFC 2890 sequence number
}

// Fields returns the header's field values.
func (g GRE) Fields() GREFields {
	f := GREFields{Protocol: g.Protocol()}
	f.Checksum, f.HasChecksum = g.Checksum()
	f.Key, f.HasKey = g.Key()
	f.Seq, f.HasSeq = g.Seq()
	return f
}

// Len returns the encoded header length.
func (f GREFields) Len() int {
	n := GREMinHeaderLen
	for _, p := range [...]bool{f.HasChecksum, f.HasKey, f.HasSeq} {
		if p {
			n += 4
		}
	}
	return n
}

// AppendGRE appends the GRE header f (version 0) to b.
func AppendGRE(b []byte, f GREFields) []byte {
	var flags byte
	if f.HasChecksum {
		flags |= greFlagC
	}
	if f.HasKey {
		flags |= greFlagK
	}
	if f.HasSeq {
		flags |= greFlagS
	}
	b = append(b, flags, 0)
	b = binary.BigEndian.AppendUint16(b, f.Protocol)
	if f.HasChecksum {
		b = binary.BigEndian.AppendUint16(b, f.Checksum)
		b = append(b, 0, 0) // Reserved1
	}
	if f.HasKey {
		b = binary.BigEndian.AppendUint32(b, f.Key)
	}
	if f.HasSeq {
		b = binary.BigEndian.AppendUint32(b, f.Seq)
	}
	return b
}

// ---------------------------------------------------------------------------
// GUE

// GUE header, variant 0 (draft-ietf-intarea-gue-09 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| 0 |C|   Hlen  |  Proto/ctype  |             Flags             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                  Extensions Fields (optional)                 ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Variant 1 (section 4) has no GUE header: the UDP payload is an IPv4
// (first nibble 0100) or IPv6 (0110) packet. Variants 2 and 3 are
// reserved.
const (
	gueFlags0  = 0
	gueProto   = 1
	gueFlags   = 2
	gueCBit    = 0x20
	gueHlenMax = 0x1f
)

// Lengths of the GUE variant 0 header.
const (
	GUEMinHeaderLen = 4
	GUEMaxHeaderLen = 4 + 4*gueHlenMax
)

// GUE is a view of a GUE packet (the UDP payload): header and payload for
// variant 0, or the bare inner IP packet for variant 1. Make one only with
// ParseGUE; no accessor or setter can then panic.
type GUE []byte

// ParseGUE validates b as a GUE packet and returns a view of all of b. It
// returns ErrTooShort if b is shorter than the header (4+4*Hlen bytes, or 1
// byte for variant 1) and ErrBadVersion for variants 2 and 3 and for a
// variant 1 packet whose IP version is not 4 or 6.
func ParseGUE(b []byte) (GUE, error) {
	if len(b) < 1 {
		return nil, perr(LayerGUE, ErrTooShort)
	}
	switch b[0] >> 6 {
	case 0:
		if len(b) < GUEMinHeaderLen {
			return nil, perr(LayerGUE, ErrTooShort)
		}
		if 4+4*int(b[0]&gueHlenMax) > len(b) {
			return nil, perr(LayerGUE, ErrTooShort)
		}
	case 1:
		if v := b[0] >> 4; v != 4 && v != 6 {
			return nil, perr(LayerGUE, ErrBadVersion)
		}
	default:
		return nil, perr(LayerGUE, ErrBadVersion)
	}
	return GUE(b), nil
}

// Variant returns the 2-bit variant: 0 (GUE header) or 1 (direct IP).
func (g GUE) Variant() uint8 {
	if len(g) == 0 {
		return 0
	}
	return g[0] >> 6
}

// Control reports whether the C bit is set: the packet is a control message
// and Proto is a control type. Always false for variant 1.
func (g GUE) Control() bool {
	return g.Variant() == 0 && len(g) >= GUEMinHeaderLen && g[0]&gueCBit != 0
}

// Hlen returns the Hlen field: the length of the extension fields in 32-bit
// words. 0 for variant 1.
func (g GUE) Hlen() uint8 {
	if g.Variant() != 0 || len(g) < GUEMinHeaderLen {
		return 0
	}
	return g[0] & gueHlenMax
}

// HeaderLen returns the header length in bytes: 4+4*Hlen for variant 0, 0
// for variant 1.
func (g GUE) HeaderLen() int {
	if g.Variant() != 0 || len(g) < GUEMinHeaderLen {
		return 0
	}
	return min(4+4*int(g[0]&gueHlenMax), len(g))
}

// Proto returns the IP protocol number of the payload (variant 0 data
// message), the control type (variant 0 control message), or for variant 1
// IPProtoIPIP or IPProtoIPv6 according to the inner IP version.
func (g GUE) Proto() uint8 {
	if g.Variant() != 0 {
		if len(g) > 0 && g[0]>>4 == 6 {
			return IPProtoIPv6
		}
		return IPProtoIPIP
	}
	if len(g) < GUEMinHeaderLen {
		return 0
	}
	return g[gueProto]
}

// Flags returns the 16-bit flags field (0 for variant 1).
func (g GUE) Flags() uint16 {
	if g.Variant() != 0 || len(g) < GUEMinHeaderLen {
		return 0
	}
	return binary.BigEndian.Uint16(g[gueFlags:])
}

// Extensions returns the extension fields (4*Hlen bytes).
func (g GUE) Extensions() []byte {
	hl := g.HeaderLen()
	if hl < GUEMinHeaderLen {
		return nil
	}
	return g[GUEMinHeaderLen:hl:hl]
}

// Payload returns the bytes after the header (all of the view for variant
// 1).
func (g GUE) Payload() []byte { return g[g.HeaderLen():] }

// SetProto sets Proto/ctype of a variant 0 header; it does nothing for
// variant 1.
func (g GUE) SetProto(p uint8) {
	if g.Variant() == 0 && len(g) >= GUEMinHeaderLen {
		g[gueProto] = p
	}
}

// SetFlags sets the flags of a variant 0 header; it does nothing for
// variant 1.
func (g GUE) SetFlags(f uint16) {
	if g.Variant() == 0 && len(g) >= GUEMinHeaderLen {
		binary.BigEndian.PutUint16(g[gueFlags:], f)
	}
}

// SetControl sets or clears the C bit of a variant 0 header; it does
// nothing for variant 1.
func (g GUE) SetControl(c bool) {
	if g.Variant() != 0 || len(g) < GUEMinHeaderLen {
		return
	}
	if c {
		g[gueFlags0] |= gueCBit
	} else {
		g[gueFlags0] &^= gueCBit
	}
}

// GUEFields holds the values of a variant 0 GUE header to encode.
type GUEFields struct {
	Control    bool   // C bit: a control message
	Proto      uint8  // IP protocol of the payload, or control type
	Flags      uint16 // flags field
	Extensions []byte // padded with zeros to a multiple of 4; at most 124 bytes
}

// Fields returns the header's field values (variant 0). Extensions is a
// slice of the view.
func (g GUE) Fields() GUEFields {
	return GUEFields{Control: g.Control(), Proto: g.Proto(), Flags: g.Flags(), Extensions: g.Extensions()}
}

// Len returns the encoded header length.
func (f GUEFields) Len() int { return GUEMinHeaderLen + (len(f.Extensions)+3)&^3 }

// AppendGUE appends the variant 0 GUE header f to b. It returns b unchanged
// and ErrBadHeaderLength if the extensions are longer than 124 bytes.
func AppendGUE(b []byte, f GUEFields) ([]byte, error) {
	el := (len(f.Extensions) + 3) &^ 3
	if el > 4*gueHlenMax {
		return b, perr(LayerGUE, ErrBadHeaderLength)
	}
	b0 := byte(el / 4)
	if f.Control {
		b0 |= gueCBit
	}
	b = append(b, b0, f.Proto)
	b = binary.BigEndian.AppendUint16(b, f.Flags)
	b = append(b, f.Extensions...)
	for range el - len(f.Extensions) {
		b = append(b, 0)
	}
	return b, nil
}

// ---------------------------------------------------------------------------
// VXLAN

// VXLAN header (RFC 7348 section 5):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|            Reserved                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                VXLAN Network Identifier (VNI) |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	vxlanFlags = 0
	vxlanVNI   = 4
	vxlanIFlag = 0x08
)

// VXLANHeaderLen is the length of the VXLAN header.
const VXLANHeaderLen = 8

// VXLANMaxVNI is the largest VXLAN network identifier (24 bits).
const VXLANMaxVNI = 1<<24 - 1

// VXLAN is a view of a VXLAN packet: the 8-byte header, then the inner
// Ethernet frame. Make one only with ParseVXLAN; no accessor or setter can
// then panic.
type VXLAN []byte

// ParseVXLAN validates b as a VXLAN packet and returns a view of all of b.
// It returns ErrTooShort if b is shorter than 8 bytes and ErrBadValue if
// the I flag is clear (RFC 7348: the I flag MUST be set for a valid VNI).
// Reserved bits are ignored, as the RFC asks of receivers.
func ParseVXLAN(b []byte) (VXLAN, error) {
	if len(b) < VXLANHeaderLen {
		return nil, perr(LayerVXLAN, ErrTooShort)
	}
	if b[vxlanFlags]&vxlanIFlag == 0 {
		return nil, perr(LayerVXLAN, ErrBadValue)
	}
	return VXLAN(b), nil
}

func (v VXLAN) h() *[VXLANHeaderLen]byte { return (*[VXLANHeaderLen]byte)(v) }

// Flags returns the flags byte (the I flag is 0x08).
func (v VXLAN) Flags() uint8 { return v.h()[vxlanFlags] }

// VNI returns the 24-bit VXLAN network identifier.
func (v VXLAN) VNI() uint32 { return binary.BigEndian.Uint32(v.h()[vxlanVNI:]) >> 8 }

// Payload returns the inner Ethernet frame.
func (v VXLAN) Payload() []byte { return v[VXLANHeaderLen:] }

// SetVNI sets the VNI (its low 24 bits) and the I flag.
func (v VXLAN) SetVNI(vni uint32) {
	h := v.h()
	h[vxlanFlags] |= vxlanIFlag
	h[vxlanVNI] = byte(vni >> 16)
	h[vxlanVNI+1] = byte(vni >> 8)
	h[vxlanVNI+2] = byte(vni)
}

// AppendVXLAN appends a VXLAN header with the I flag and the low 24 bits of
// vni to b; reserved fields are zero.
func AppendVXLAN(b []byte, vni uint32) []byte {
	return append(b, vxlanIFlag, 0, 0, 0, byte(vni>>16), byte(vni>>8), byte(vni), 0)
}
