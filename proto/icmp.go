package proto

import "encoding/binary"

// ICMP for IPv4 (RFC 792):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Identifier (echo) / unused / pointer | Sequence (echo) / MTU |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Data (echo) or quoted IP header + 8 bytes (errors) ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-
//
// The checksum covers the whole ICMP message; there is no pseudo-header.
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpRest     = 4
	icmpID       = 4
	icmpSeq      = 6
	icmpMTU      = 6 // RFC 1191: next-hop MTU in the low half of the rest word
	icmpPointer  = 4 // RFC 792 parameter problem

	// ICMPv4HeaderLen is the length of the ICMPv4 header including the
	// 4-byte rest-of-header word.
	ICMPv4HeaderLen = 8
)

// ICMPv4 message types.
const (
	ICMPv4EchoReply       uint8 = 0
	ICMPv4DestUnreachable uint8 = 3
	ICMPv4Redirect        uint8 = 5
	ICMPv4EchoRequest     uint8 = 8
	ICMPv4TimeExceeded    uint8 = 11
	ICMPv4ParamProblem    uint8 = 12
)

// ICMPv4 destination unreachable codes (RFC 792, RFC 1812).
const (
	ICMPv4NetUnreachable      uint8 = 0
	ICMPv4HostUnreachable     uint8 = 1
	ICMPv4ProtoUnreachable    uint8 = 2
	ICMPv4PortUnreachable     uint8 = 3
	ICMPv4FragmentationNeeded uint8 = 4 // with the next-hop MTU (RFC 1191)
	ICMPv4SourceRouteFailed   uint8 = 5
	ICMPv4NetProhibited       uint8 = 9
	ICMPv4HostProhibited      uint8 = 10
	ICMPv4AdminProhibited     uint8 = 13
)

// ICMPv4 time exceeded codes.
const (
	ICMPv4TTLExceeded        uint8 = 0
	ICMPv4ReassemblyExceeded uint8 = 1
)

// ICMPv4 is a view of an ICMP for IPv4 message: the 8-byte header and its
// body, to the end of the IP payload. Make one with ParseICMPv4.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least an 8-byte ICMP header and returns
// a view of all of b. It does not verify the checksum (see VerifyChecksum).
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, perr(LayerICMPv4, ErrTooShort)
	}
	return ICMPv4(b), nil
}

func (m ICMPv4) hdr() *[ICMPv4HeaderLen]byte { return (*[ICMPv4HeaderLen]byte)(m) }

// Type returns the message type.
func (m ICMPv4) Type() uint8 { return m.hdr()[icmpType] }

// Code returns the message code.
func (m ICMPv4) Code() uint8 { return m.hdr()[icmpCode] }

// Checksum returns the checksum field.
func (m ICMPv4) Checksum() uint16 {
	return binary.BigEndian.Uint16(m.hdr()[icmpChecksum : icmpChecksum+2])
}

// Rest returns the 4-byte rest-of-header word, whose meaning depends on the
// type.
func (m ICMPv4) Rest() uint32 { return binary.BigEndian.Uint32(m.hdr()[icmpRest : icmpRest+4]) }

// ID returns the echo identifier.
func (m ICMPv4) ID() uint16 { return binary.BigEndian.Uint16(m.hdr()[icmpID : icmpID+2]) }

// Seq returns the echo sequence number.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m.hdr()[icmpSeq : icmpSeq+2]) }

// MTU returns the next-hop MTU of a fragmentation-needed message
// (destination unreachable, code 4; RFC 1191). 0 means the router predates
// RFC 1191.
func (m ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(m.hdr()[icmpMTU : icmpMTU+2]) }

// Pointer returns the octet offset of the error in a parameter problem
// message.
func (m ICMPv4) Pointer() uint8 { return m.hdr()[icmpPointer] }

// Payload returns the message body after the 8-byte header: the echo data,
// or the quoted datagram of an error. It aliases the message.
func (m ICMPv4) Payload() []byte { return m[ICMPv4HeaderLen:] }

// IsError reports whether the type is an error message (destination
// unreachable, redirect, time exceeded, parameter problem), whose body
// quotes the offending datagram.
func (m ICMPv4) IsError() bool {
	switch m.Type() {
	case ICMPv4DestUnreachable, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// Quoted returns the quoted original datagram (its IP header and at least
// 8 bytes of its payload) of an error message, or nil for other types. It
// is usually truncated: parse it with ParseIPv4Quoted, not ParseIPv4.
func (m ICMPv4) Quoted() []byte {
	if !m.IsError() {
		return nil
	}
	return m[ICMPv4HeaderLen:]
}

// CalculateChecksum returns the checksum of the message computed with the
// checksum field taken as zero.
func (m ICMPv4) CalculateChecksum() uint16 {
	s := Checksum(m[:icmpChecksum], 0)
	return ^Checksum(m[icmpChecksum+2:], uint32(s))
}

// VerifyChecksum reports whether the checksum is correct.
func (m ICMPv4) VerifyChecksum() bool { return Checksum(m, 0) == 0xffff }

// SetType sets the message type.
func (m ICMPv4) SetType(t uint8) { m.hdr()[icmpType] = t }

// SetCode sets the message code.
func (m ICMPv4) SetCode(c uint8) { m.hdr()[icmpCode] = c }

// SetChecksum sets the checksum field.
func (m ICMPv4) SetChecksum(c uint16) {
	binary.BigEndian.PutUint16(m.hdr()[icmpChecksum:icmpChecksum+2], c)
}

// SetRest sets the rest-of-header word.
func (m ICMPv4) SetRest(v uint32) { binary.BigEndian.PutUint32(m.hdr()[icmpRest:icmpRest+4], v) }

// SetID sets the echo identifier.
func (m ICMPv4) SetID(id uint16) { binary.BigEndian.PutUint16(m.hdr()[icmpID:icmpID+2], id) }

// SetSeq sets the echo sequence number.
func (m ICMPv4) SetSeq(seq uint16) { binary.BigEndian.PutUint16(m.hdr()[icmpSeq:icmpSeq+2], seq) }

// SetMTU sets the next-hop MTU of a fragmentation-needed message.
func (m ICMPv4) SetMTU(mtu uint16) { binary.BigEndian.PutUint16(m.hdr()[icmpMTU:icmpMTU+2], mtu) }

// UpdateChecksum recomputes the checksum and stores it.
func (m ICMPv4) UpdateChecksum() { m.SetChecksum(m.CalculateChecksum()) }

// EchoToReply turns an echo request into an echo reply in place: the type
// becomes ICMPv4EchoReply and the checksum is updated incrementally. The
// caller swaps the IP addresses.
func (m ICMPv4) EchoToReply() {
	h := m.hdr()
	old := binary.BigEndian.Uint16(h[icmpType : icmpType+2])
	h[icmpType] = ICMPv4EchoReply
	binary.BigEndian.PutUint16(h[icmpChecksum:icmpChecksum+2],
		ChecksumUpdate16(m.Checksum(), old, binary.BigEndian.Uint16(h[icmpType:icmpType+2])))
}

// AppendICMPv4Echo appends an echo message (typ ICMPv4EchoRequest or
// ICMPv4EchoReply) with identifier id, sequence seq and data, checksum
// computed.
func AppendICMPv4Echo(b []byte, typ uint8, id, seq uint16, data []byte) []byte {
	return appendICMPv4(b, typ, 0, uint32(id)<<16|uint32(seq), data)
}

// AppendICMPv4Error appends an error message of type typ and code code
// whose rest-of-header word is extra (the MTU for fragmentation needed, the
// pointer in the high byte for parameter problem, the gateway address for
// redirect, else 0), followed by quoted, checksum computed. quoted is the
// offending datagram's IP header and at least 8 bytes of its payload; RFC
// 1812 section 4.3.2.3 says to quote as much as fits in 576 bytes in all,
// which is the caller's choice.
func AppendICMPv4Error(b []byte, typ, code uint8, extra uint32, quoted []byte) []byte {
	return appendICMPv4(b, typ, code, extra, quoted)
}

func appendICMPv4(b []byte, typ, code uint8, rest uint32, body []byte) []byte {
	n := len(b)
	b = append(b, typ, code, 0, 0)
	b = binary.BigEndian.AppendUint32(b, rest)
	b = append(b, body...)
	m := b[n:]
	binary.BigEndian.PutUint16(m[icmpChecksum:icmpChecksum+2], ^Checksum(m, 0))
	return b
}
