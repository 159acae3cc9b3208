package proto

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header (RFC 791 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Flags, high bit first: reserved (must be zero), DF, MF. The fragment
// offset counts 8-byte units.
const (
	ipv4VersIHL    = 0
	ipv4TOS        = 1
	ipv4TotalLen   = 2
	ipv4ID         = 4
	ipv4FlagsFrag  = 6
	ipv4TTL        = 8
	ipv4Protocol   = 9
	ipv4Checksum   = 10
	ipv4Src        = 12
	ipv4Dst        = 16
	ipv4FragMask   = 0x1fff
	ipv4FlagsShift = 13

	// IPv4MinHeaderLen is the length of an IPv4 header without options.
	IPv4MinHeaderLen = 20
	// IPv4MaxHeaderLen is the longest IPv4 header (IHL 15).
	IPv4MaxHeaderLen = 60
	// IPv4MaxOptionsLen is the most option bytes an IPv4 header can carry.
	IPv4MaxOptionsLen = IPv4MaxHeaderLen - IPv4MinHeaderLen
)

// IPv4 flag bits as returned by IPv4.Flags.
const (
	IPv4FlagMoreFragments uint8 = 1 << 0 // MF
	IPv4FlagDontFragment  uint8 = 1 << 1 // DF
	IPv4FlagReserved      uint8 = 1 << 2 // must be zero (RFC 3514 aside)
)

// IPv4 is a view of an IPv4 packet: header, options and payload, exactly
// TotalLength bytes. Make one with ParseIPv4.
type IPv4 []byte

// ParseIPv4 checks that b starts with an IPv4 packet and returns a view of
// it, truncated to the header's total length so that trailing Ethernet
// padding is excluded. It checks the version, that the IHL is at least 5 and
// the header fits in b, and that the total length covers the header and
// fits in b. It does not verify the header checksum (see VerifyChecksum),
// which NICs usually have checked already.
func ParseIPv4(b []byte) (IPv4, error) { return parseIPv4(b, false) }

// ParseIPv4Quoted parses the IPv4 datagram quoted in an ICMP error, which
// is usually cut short: it checks the version and header length like
// ParseIPv4, but accepts a total length beyond the end of b. The view is
// truncated to the total length when b holds more (padding), else it is all
// of b, so that Payload returns the quoted part of the payload.
func ParseIPv4Quoted(b []byte) (IPv4, error) { return parseIPv4(b, true) }

// parseIPv4 holds the checks both constructors share; quoted accepts a
// total length beyond the end of b.
func parseIPv4(b []byte, quoted bool) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, perr(LayerIPv4, ErrTooShort)
	}
	h := (*[IPv4MinHeaderLen]byte)(b)
	if h[ipv4VersIHL]>>4 != 4 {
		return nil, perr(LayerIPv4, ErrBadVersion)
	}
	hl := int(h[ipv4VersIHL]&0x0f) * 4
	if hl < IPv4MinHeaderLen {
		return nil, perr(LayerIPv4, ErrBadHeaderLength)
	}
	if hl > len(b) {
		return nil, perr(LayerIPv4, ErrTooShort)
	}
	tl := int(binary.BigEndian.Uint16(h[ipv4TotalLen : ipv4TotalLen+2]))
	if tl < hl {
		return nil, perr(LayerIPv4, ErrLengthMismatch)
	}
	if tl > len(b) {
		if !quoted {
			return nil, perr(LayerIPv4, ErrTooShort)
		}
		tl = len(b)
	}
	return IPv4(b[:tl]), nil
}

func (b IPv4) hdr() *[IPv4MinHeaderLen]byte { return (*[IPv4MinHeaderLen]byte)(b) }

// Version returns the version field (4 for a parsed packet).
func (b IPv4) Version() uint8 { return b.hdr()[ipv4VersIHL] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4), options
// included. It is clamped to the view's length, so that slicing with it is
// safe even if the IHL was rewritten after parsing.
func (b IPv4) HeaderLength() int {
	return min(int(b.hdr()[ipv4VersIHL]&0x0f)*4, len(b))
}

// TOS returns the type of service byte (DSCP and ECN).
func (b IPv4) TOS() uint8 { return b.hdr()[ipv4TOS] }

// DSCP returns the differentiated services code point (the TOS byte's high
// six bits).
func (b IPv4) DSCP() uint8 { return b.hdr()[ipv4TOS] >> 2 }

// ECN returns the explicit congestion notification bits.
func (b IPv4) ECN() uint8 { return b.hdr()[ipv4TOS] & 3 }

// TotalLength returns the total length field: header plus payload.
func (b IPv4) TotalLength() uint16 {
	return binary.BigEndian.Uint16(b.hdr()[ipv4TotalLen : ipv4TotalLen+2])
}

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b.hdr()[ipv4ID : ipv4ID+2]) }

func (b IPv4) flagsFrag() uint16 {
	return binary.BigEndian.Uint16(b.hdr()[ipv4FlagsFrag : ipv4FlagsFrag+2])
}

// Flags returns the three flag bits (IPv4FlagDontFragment,
// IPv4FlagMoreFragments, IPv4FlagReserved).
func (b IPv4) Flags() uint8 { return uint8(b.flagsFrag() >> ipv4FlagsShift) }

// DontFragment reports the DF flag.
func (b IPv4) DontFragment() bool { return b.Flags()&IPv4FlagDontFragment != 0 }

// MoreFragments reports the MF flag.
func (b IPv4) MoreFragments() bool { return b.Flags()&IPv4FlagMoreFragments != 0 }

// FragmentOffset returns the fragment offset in bytes (the field × 8).
func (b IPv4) FragmentOffset() uint16 { return (b.flagsFrag() & ipv4FragMask) << 3 }

// IsFragment reports whether the packet is a fragment: MF is set or the
// fragment offset is not zero.
func (b IPv4) IsFragment() bool {
	return b.flagsFrag()&(uint16(IPv4FlagMoreFragments)<<ipv4FlagsShift|ipv4FragMask) != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b.hdr()[ipv4TTL] }

// Protocol returns the payload's protocol number (IPProtoTCP, …).
func (b IPv4) Protocol() uint8 { return b.hdr()[ipv4Protocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 {
	return binary.BigEndian.Uint16(b.hdr()[ipv4Checksum : ipv4Checksum+2])
}

// SrcArray returns the source address.
func (b IPv4) SrcArray() [4]byte { return [4]byte(b.hdr()[ipv4Src : ipv4Src+4]) }

// DstArray returns the destination address.
func (b IPv4) DstArray() [4]byte { return [4]byte(b.hdr()[ipv4Dst : ipv4Dst+4]) }

// Src returns the source address.
func (b IPv4) Src() netip.Addr { return netip.AddrFrom4(b.SrcArray()) }

// Dst returns the destination address.
func (b IPv4) Dst() netip.Addr { return netip.AddrFrom4(b.DstArray()) }

// Options returns the option bytes between the fixed header and the payload
// (padding included); empty when IHL is 5. It aliases the packet.
func (b IPv4) Options() []byte { return b[IPv4MinHeaderLen:max(b.HeaderLength(), IPv4MinHeaderLen)] }

// Payload returns the bytes after the header, up to the total length. It
// aliases the packet.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():] }

// CalculateChecksum returns the header checksum computed over the header
// with the checksum field taken as zero.
func (b IPv4) CalculateChecksum() uint16 {
	h := b[:max(b.HeaderLength(), IPv4MinHeaderLen)]
	s := Checksum(h[:ipv4Checksum], 0)
	return ^Checksum(h[ipv4Checksum+2:], uint32(s))
}

// VerifyChecksum reports whether the header checksum is correct.
func (b IPv4) VerifyChecksum() bool {
	return Checksum(b[:max(b.HeaderLength(), IPv4MinHeaderLen)], 0) == 0xffff
}

// SetTOS sets the type of service byte. The checksum is not updated.
func (b IPv4) SetTOS(v uint8) { b.hdr()[ipv4TOS] = v }

// SetTotalLength sets the total length field. The checksum is not updated,
// and the view keeps its length: reslice the frame and parse again to see
// a different payload.
func (b IPv4) SetTotalLength(n uint16) {
	binary.BigEndian.PutUint16(b.hdr()[ipv4TotalLen:ipv4TotalLen+2], n)
}

// SetID sets the identification field. The checksum is not updated.
func (b IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(b.hdr()[ipv4ID:ipv4ID+2], id) }

// SetFlagsFragmentOffset sets the flags (low 3 bits of flags) and the
// fragment offset in bytes (rounded down to a multiple of 8). The checksum
// is not updated.
func (b IPv4) SetFlagsFragmentOffset(flags uint8, offset uint16) {
	v := uint16(flags&7)<<ipv4FlagsShift | offset>>3
	binary.BigEndian.PutUint16(b.hdr()[ipv4FlagsFrag:ipv4FlagsFrag+2], v)
}

// SetTTL sets the time to live. The checksum is not updated (see DecTTL).
func (b IPv4) SetTTL(ttl uint8) { b.hdr()[ipv4TTL] = ttl }

// SetProtocol sets the protocol field. The checksum is not updated.
func (b IPv4) SetProtocol(p uint8) { b.hdr()[ipv4Protocol] = p }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) {
	binary.BigEndian.PutUint16(b.hdr()[ipv4Checksum:ipv4Checksum+2], c)
}

// SetSrc sets the source address. The checksum is not updated (see
// RewriteSrc).
func (b IPv4) SetSrc(a [4]byte) { copy(b.hdr()[ipv4Src:ipv4Src+4], a[:]) }

// SetDst sets the destination address. The checksum is not updated (see
// RewriteDst).
func (b IPv4) SetDst(a [4]byte) { copy(b.hdr()[ipv4Dst:ipv4Dst+4], a[:]) }

// UpdateChecksum recomputes the header checksum and stores it.
func (b IPv4) UpdateChecksum() { b.SetChecksum(b.CalculateChecksum()) }

// DecTTL decrements the TTL and updates the header checksum incrementally
// (RFC 1624), as a router does. It returns the new TTL. A TTL that is
// already 0 is left alone and 0 is returned; a router drops a packet whose
// TTL was 0 or 1 before forwarding and sends ICMP time exceeded instead.
func (b IPv4) DecTTL() uint8 {
	h := b.hdr()
	ttl := h[ipv4TTL]
	if ttl == 0 {
		return 0
	}
	h[ipv4TTL] = ttl - 1
	// TTL and protocol form one 16-bit word; only its high byte changes.
	old := binary.BigEndian.Uint16(h[ipv4Checksum : ipv4Checksum+2])
	binary.BigEndian.PutUint16(h[ipv4Checksum:ipv4Checksum+2], ChecksumUpdate16(old, uint16(ttl)<<8, uint16(ttl-1)<<8))
	return ttl - 1
}

// RewriteSrc sets the source address and updates the header checksum
// incrementally. It returns the old address so that the caller can update
// the transport checksum's pseudo-header part with ChecksumUpdateAddr4.
func (b IPv4) RewriteSrc(a [4]byte) (old [4]byte) {
	old = b.SrcArray()
	b.SetSrc(a)
	b.SetChecksum(ChecksumUpdateAddr4(b.Checksum(), old, a))
	return old
}

// RewriteDst sets the destination address and updates the header checksum
// incrementally. It returns the old address (see RewriteSrc).
func (b IPv4) RewriteDst(a [4]byte) (old [4]byte) {
	old = b.DstArray()
	b.SetDst(a)
	b.SetChecksum(ChecksumUpdateAddr4(b.Checksum(), old, a))
	return old
}

// Fields returns the header's fields. Options aliases the packet.
func (b IPv4) Fields() IPv4Fields {
	return IPv4Fields{
		TOS:            b.TOS(),
		TotalLength:    b.TotalLength(),
		ID:             b.ID(),
		Flags:          b.Flags(),
		FragmentOffset: b.FragmentOffset(),
		TTL:            b.TTL(),
		Protocol:       b.Protocol(),
		Src:            b.SrcArray(),
		Dst:            b.DstArray(),
		Options:        b.Options(),
	}
}

// IPv4Fields holds the fields of an IPv4 header for Encode and AppendIPv4.
// The version, IHL and checksum are computed.
type IPv4Fields struct {
	TOS            uint8   // type of service (DSCP << 2 | ECN)
	TotalLength    uint16  // header plus payload, in bytes
	ID             uint16  // identification
	Flags          uint8   // IPv4FlagDontFragment, IPv4FlagMoreFragments
	FragmentOffset uint16  // in bytes; a multiple of 8
	TTL            uint8   // time to live
	Protocol       uint8   // payload protocol (IPProtoUDP, …)
	Src, Dst       [4]byte // source and destination addresses
	// Options holds raw option bytes, at most IPv4MaxOptionsLen. They are
	// padded with zeros (end of option list) to a multiple of 4.
	Options []byte
}

// HeaderLength returns the length of the header f encodes: 20 plus the
// options rounded up to a multiple of 4.
func (f *IPv4Fields) HeaderLength() int {
	return IPv4MinHeaderLen + (len(f.Options)+3)&^3
}

// Encode writes the header described by f to the start of b and computes
// its checksum. b must be at least f.HeaderLength() bytes long, and
// f.Options at most IPv4MaxOptionsLen bytes; anything else is a programming
// error and panics. Encode does not touch the payload.
func (f *IPv4Fields) Encode(b []byte) {
	if len(f.Options) > IPv4MaxOptionsLen {
		panic("proto: IPv4 options longer than 40 bytes")
	}
	f.encode(b[:f.HeaderLength()])
}

func (f *IPv4Fields) encode(b []byte) {
	h := (*[IPv4MinHeaderLen]byte)(b)
	h[ipv4VersIHL] = 4<<4 | uint8(len(b)/4)
	h[ipv4TOS] = f.TOS
	binary.BigEndian.PutUint16(h[ipv4TotalLen:ipv4TotalLen+2], f.TotalLength)
	binary.BigEndian.PutUint16(h[ipv4ID:ipv4ID+2], f.ID)
	binary.BigEndian.PutUint16(h[ipv4FlagsFrag:ipv4FlagsFrag+2], uint16(f.Flags&7)<<ipv4FlagsShift|f.FragmentOffset>>3)
	h[ipv4TTL] = f.TTL
	h[ipv4Protocol] = f.Protocol
	h[ipv4Checksum], h[ipv4Checksum+1] = 0, 0
	copy(h[ipv4Src:ipv4Src+4], f.Src[:])
	copy(h[ipv4Dst:ipv4Dst+4], f.Dst[:])
	opt := b[IPv4MinHeaderLen:]
	clear(opt[copy(opt, f.Options):])
	binary.BigEndian.PutUint16(h[ipv4Checksum:ipv4Checksum+2], ^Checksum(b, 0))
}

// AppendIPv4 appends the header described by f to b, with its checksum
// computed; the caller appends the payload. f.Options longer than
// IPv4MaxOptionsLen is a programming error and panics.
func AppendIPv4(b []byte, f *IPv4Fields) []byte {
	if len(f.Options) > IPv4MaxOptionsLen {
		panic("proto: IPv4 options longer than 40 bytes")
	}
	n := len(b)
	b = append(b, make([]byte, f.HeaderLength())...)
	f.encode(b[n:])
	return b
}
