package proto

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6 (RFC 4443) and neighbor discovery (RFC 4861). Every message starts
// with type, code and checksum, then a 4-byte word whose meaning depends on
// the type:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| echo: Identifier | Sequence; packet too big: MTU; parameter   |
//	| problem: Pointer; NA: R|S|O flags + reserved; RA: hop limit,  |
//	| M|O flags, router lifetime; RS, NS, redirect: reserved        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| RA: reachable time, retrans timer (8 bytes);                  |
//	| NS, NA: target address (16 bytes);                            |
//	| redirect: target address, destination address (32 bytes)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| echo: data; errors: as much of the invoking packet as fits;   |
//	| NDP: options (NDPOptions) ...                                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The checksum covers the IPv6 pseudo-header (next header 58) and the
// message; see ICMPv6Checksum.
const (
	icmp6Type     = 0
	icmp6Code     = 1
	icmp6Checksum = 2
	icmp6ID       = 4
	icmp6Seq      = 6
	icmp6MTU      = 4
	icmp6Pointer  = 4
	icmp6Flags    = 4 // NA flags; RA: 4 is the hop limit, 5 the flags
	icmp6RAHop    = 4
	icmp6RAFlags  = 5
	icmp6RALife   = 6
	icmp6RAReach  = 8
	icmp6RARetx   = 12
	icmp6Target   = 8
	icmp6RedirDst = 24

	// ICMPv6HeaderLen is the length of the ICMPv6 header including the
	// 4-byte word after the checksum.
	ICMPv6HeaderLen = 8

	icmp6RSLen       = 8
	icmp6RALen       = 16
	icmp6NSLen       = 24
	icmp6NALen       = 24
	icmp6RedirectLen = 40
)

// ICMPv6 message types.
const (
	ICMPv6DestUnreachable       uint8 = 1
	ICMPv6PacketTooBig          uint8 = 2
	ICMPv6TimeExceeded          uint8 = 3
	ICMPv6ParamProblem          uint8 = 4
	ICMPv6EchoRequest           uint8 = 128
	ICMPv6EchoReply             uint8 = 129
	ICMPv6RouterSolicitation    uint8 = 133
	ICMPv6RouterAdvertisement   uint8 = 134
	ICMPv6NeighborSolicitation  uint8 = 135
	ICMPv6NeighborAdvertisement uint8 = 136
	ICMPv6Redirect              uint8 = 137
)

// ICMPv6 destination unreachable codes.
const (
	ICMPv6NoRoute            uint8 = 0
	ICMPv6AdminProhibited    uint8 = 1
	ICMPv6BeyondScope        uint8 = 2
	ICMPv6AddressUnreachable uint8 = 3
	ICMPv6PortUnreachable    uint8 = 4
	ICMPv6SourcePolicyFailed uint8 = 5
	ICMPv6RejectRoute        uint8 = 6
)

// ICMPv6 time exceeded codes.
const (
	ICMPv6HopLimitExceeded   uint8 = 0
	ICMPv6ReassemblyExceeded uint8 = 1
)

// ICMPv6 parameter problem codes.
const (
	ICMPv6ErroneousHeader        uint8 = 0
	ICMPv6UnrecognizedNextHeader uint8 = 1
	ICMPv6UnrecognizedOption     uint8 = 2
)

// Neighbor advertisement flags (the high bits of the byte ICMPv6.NAFlags
// returns) and router advertisement flags (ICMPv6.RAFlags).
const (
	NDPFlagRouter    uint8 = 0x80 // NA: R
	NDPFlagSolicited uint8 = 0x40 // NA: S
	NDPFlagOverride  uint8 = 0x20 // NA: O
	NDPFlagManaged   uint8 = 0x80 // RA: M (DHCPv6 for addresses)
	NDPFlagOther     uint8 = 0x40 // RA: O (DHCPv6 for other configuration)
)

// ICMPv6 is a view of an ICMPv6 message, to the end of the IP payload. Make
// one with ParseICMPv6.
type ICMPv6 []byte

// ParseICMPv6 checks that b holds at least an 8-byte ICMPv6 header, and for
// the neighbor discovery types the fixed part of the message (RS 8, RA 16,
// NS and NA 24, redirect 40 bytes; ErrTooShort) with code 0 (ErrBadValue,
// RFC 4861 says to discard others). It returns a view of all of b. It does
// not verify the checksum, which needs the IPv6 addresses (see
// VerifyChecksum), nor NDP's hop limit of 255, which is in the IPv6 header.
func ParseICMPv6(b []byte) (ICMPv6, error) {
	if len(b) < ICMPv6HeaderLen {
		return nil, perr(LayerICMPv6, ErrTooShort)
	}
	m := ICMPv6(b)
	if m.IsNDP() {
		if len(b) < m.fixedLen() {
			return nil, perr(LayerICMPv6, ErrTooShort)
		}
		if m.Code() != 0 {
			return nil, perr(LayerICMPv6, ErrBadValue)
		}
	}
	return m, nil
}

// fixedLen returns the length of the fixed part of the message for its
// type: where the options of an NDP message start.
func (m ICMPv6) fixedLen() int {
	switch m.Type() {
	case ICMPv6RouterAdvertisement:
		return icmp6RALen
	case ICMPv6NeighborSolicitation:
		return icmp6NSLen
	case ICMPv6NeighborAdvertisement:
		return icmp6NALen
	case ICMPv6Redirect:
		return icmp6RedirectLen
	}
	return ICMPv6HeaderLen
}

func (m ICMPv6) hdr() *[ICMPv6HeaderLen]byte { return (*[ICMPv6HeaderLen]byte)(m) }

// Type returns the message type.
func (m ICMPv6) Type() uint8 { return m.hdr()[icmp6Type] }

// Code returns the message code.
func (m ICMPv6) Code() uint8 { return m.hdr()[icmp6Code] }

// Checksum returns the checksum field.
func (m ICMPv6) Checksum() uint16 {
	return binary.BigEndian.Uint16(m.hdr()[icmp6Checksum : icmp6Checksum+2])
}

// ID returns the echo identifier.
func (m ICMPv6) ID() uint16 { return binary.BigEndian.Uint16(m.hdr()[icmp6ID : icmp6ID+2]) }

// Seq returns the echo sequence number.
func (m ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(m.hdr()[icmp6Seq : icmp6Seq+2]) }

// MTU returns the MTU of a packet too big message.
func (m ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(m.hdr()[icmp6MTU : icmp6MTU+4]) }

// Pointer returns the offset of the error in a parameter problem message.
func (m ICMPv6) Pointer() uint32 {
	return binary.BigEndian.Uint32(m.hdr()[icmp6Pointer : icmp6Pointer+4])
}

// Payload returns the message body after the 8-byte header: the echo data,
// the invoking packet of an error, or the rest of an NDP message. It
// aliases the message.
func (m ICMPv6) Payload() []byte { return m[ICMPv6HeaderLen:] }

// IsError reports whether the type is an error message (types below 128).
func (m ICMPv6) IsError() bool { return m.Type() < 128 }

// Quoted returns the invoking packet quoted by an error message, or nil for
// informational types. It is usually truncated: parse it with
// ParseIPv6Quoted, not ParseIPv6.
func (m ICMPv6) Quoted() []byte {
	if !m.IsError() {
		return nil
	}
	return m[ICMPv6HeaderLen:]
}

// NAFlags returns the flags byte of a neighbor advertisement
// (NDPFlagRouter, NDPFlagSolicited, NDPFlagOverride).
func (m ICMPv6) NAFlags() uint8 { return m.hdr()[icmp6Flags] }

// Router reports a neighbor advertisement's R flag.
func (m ICMPv6) Router() bool { return m.NAFlags()&NDPFlagRouter != 0 }

// Solicited reports a neighbor advertisement's S flag.
func (m ICMPv6) Solicited() bool { return m.NAFlags()&NDPFlagSolicited != 0 }

// Override reports a neighbor advertisement's O flag.
func (m ICMPv6) Override() bool { return m.NAFlags()&NDPFlagOverride != 0 }

// CurHopLimit returns a router advertisement's current hop limit.
func (m ICMPv6) CurHopLimit() uint8 { return m.hdr()[icmp6RAHop] }

// RAFlags returns a router advertisement's flags byte (NDPFlagManaged,
// NDPFlagOther).
func (m ICMPv6) RAFlags() uint8 { return m.hdr()[icmp6RAFlags] }

// RouterLifetime returns a router advertisement's router lifetime in
// seconds.
func (m ICMPv6) RouterLifetime() uint16 {
	return binary.BigEndian.Uint16(m.hdr()[icmp6RALife : icmp6RALife+2])
}

// ReachableTime returns a router advertisement's reachable time in
// milliseconds, or 0 if the message is too short to be one.
func (m ICMPv6) ReachableTime() uint32 {
	if len(m) < icmp6RALen {
		return 0
	}
	return binary.BigEndian.Uint32(m[icmp6RAReach : icmp6RAReach+4])
}

// RetransTimer returns a router advertisement's retransmission timer in
// milliseconds, or 0 if the message is too short to be one.
func (m ICMPv6) RetransTimer() uint32 {
	if len(m) < icmp6RALen {
		return 0
	}
	return binary.BigEndian.Uint32(m[icmp6RARetx : icmp6RARetx+4])
}

// TargetArray returns the target address of a neighbor solicitation,
// neighbor advertisement or redirect, or the zero array if the message is
// too short to be one.
func (m ICMPv6) TargetArray() [16]byte {
	if len(m) < icmp6Target+16 {
		return [16]byte{}
	}
	return [16]byte(m[icmp6Target : icmp6Target+16])
}

// Target returns the target address of a neighbor solicitation, neighbor
// advertisement or redirect, or the zero Addr if the message is too short
// to be one.
func (m ICMPv6) Target() netip.Addr {
	if len(m) < icmp6Target+16 {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(m[icmp6Target : icmp6Target+16]))
}

// RedirectDst returns the destination address of a redirect, or the zero
// Addr if the message is too short to be one.
func (m ICMPv6) RedirectDst() netip.Addr {
	if len(m) < icmp6RedirectLen {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(m[icmp6RedirDst : icmp6RedirDst+16]))
}

// Options returns the NDP options of a router solicitation or
// advertisement, neighbor solicitation or advertisement, or redirect, and
// nil for other types (or a message too short for its type).
func (m ICMPv6) Options() NDPOptions {
	n := m.fixedLen()
	if !m.IsNDP() || len(m) < n {
		return nil
	}
	return NDPOptions(m[n:])
}

// IsNDP reports whether the type is one of the neighbor discovery messages
// (133 to 137).
func (m ICMPv6) IsNDP() bool {
	t := m.Type()
	return t >= ICMPv6RouterSolicitation && t <= ICMPv6Redirect
}

// SetType sets the message type.
func (m ICMPv6) SetType(t uint8) { m.hdr()[icmp6Type] = t }

// SetCode sets the message code.
func (m ICMPv6) SetCode(c uint8) { m.hdr()[icmp6Code] = c }

// SetChecksum sets the checksum field.
func (m ICMPv6) SetChecksum(c uint16) {
	binary.BigEndian.PutUint16(m.hdr()[icmp6Checksum:icmp6Checksum+2], c)
}

// SetID sets the echo identifier.
func (m ICMPv6) SetID(id uint16) { binary.BigEndian.PutUint16(m.hdr()[icmp6ID:icmp6ID+2], id) }

// SetSeq sets the echo sequence number.
func (m ICMPv6) SetSeq(seq uint16) {
	binary.BigEndian.PutUint16(m.hdr()[icmp6Seq:icmp6Seq+2], seq)
}

// SetMTU sets the MTU of a packet too big message.
func (m ICMPv6) SetMTU(mtu uint32) {
	binary.BigEndian.PutUint32(m.hdr()[icmp6MTU:icmp6MTU+4], mtu)
}

// SetNAFlags sets a neighbor advertisement's flags byte.
func (m ICMPv6) SetNAFlags(f uint8) { m.hdr()[icmp6Flags] = f }

// SetTarget sets the target address of a neighbor solicitation,
// advertisement or redirect; it does nothing if the message is too short to
// be one.
func (m ICMPv6) SetTarget(a [16]byte) {
	if len(m) >= icmp6Target+16 {
		copy(m[icmp6Target:icmp6Target+16], a[:])
	}
}

// CalculateChecksum returns the checksum of the message for the given IPv6
// source and destination, with the checksum field taken as zero.
func (m ICMPv6) CalculateChecksum(src, dst [16]byte) uint16 {
	return ICMPv6Checksum(src, dst, m)
}

// VerifyChecksum reports whether the checksum is correct for the given IPv6
// source and destination.
func (m ICMPv6) VerifyChecksum(src, dst [16]byte) bool {
	return Checksum(m, PseudoHeaderChecksumV6(IPProtoICMPv6, src, dst, uint32(len(m)))) == 0xffff
}

// UpdateChecksum recomputes the checksum for the given IPv6 source and
// destination and stores it.
func (m ICMPv6) UpdateChecksum(src, dst [16]byte) { m.SetChecksum(ICMPv6Checksum(src, dst, m)) }

// ICMPv6Checksum returns the value of the checksum field of ICMPv6 message
// msg sent from src to dst: the complemented sum of the IPv6 pseudo-header
// and msg, with msg's checksum field (bytes 2 and 3) taken as zero whatever
// it holds. msg shorter than 4 bytes is summed as it is.
func ICMPv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	s := PseudoHeaderChecksumV6(IPProtoICMPv6, src, dst, uint32(len(msg)))
	if len(msg) < icmp6Checksum+2 {
		return ^Checksum(msg, s)
	}
	s = uint32(Checksum(msg[:icmp6Checksum], s))
	return ^Checksum(msg[icmp6Checksum+2:], s)
}

// AppendICMPv6Echo appends an echo message (typ ICMPv6EchoRequest or
// ICMPv6EchoReply) from src to dst with identifier id, sequence seq and
// data, checksum computed.
func AppendICMPv6Echo(b []byte, src, dst [16]byte, typ uint8, id, seq uint16, data []byte) []byte {
	n := len(b)
	b = append(b, typ, 0, 0, 0, byte(id>>8), byte(id), byte(seq>>8), byte(seq))
	b = append(b, data...)
	return finishICMPv6(b, n, src, dst)
}

// AppendICMPv6Error appends an error message of type typ and code code from
// src to dst whose 4-byte word is extra (the MTU for packet too big, the
// pointer for parameter problem, else 0) followed by quoted, checksum
// computed. RFC 4443 section 2.4(c) says to quote as much of the invoking
// packet as fits in the minimum IPv6 MTU (1280 bytes) in all, which is the
// caller's choice.
func AppendICMPv6Error(b []byte, src, dst [16]byte, typ, code uint8, extra uint32, quoted []byte) []byte {
	n := len(b)
	b = append(b, typ, code, 0, 0)
	b = binary.BigEndian.AppendUint32(b, extra)
	b = append(b, quoted...)
	return finishICMPv6(b, n, src, dst)
}

// AppendICMPv6NeighborSolicitation appends a neighbor solicitation for
// target from src to dst (usually target's solicited-node multicast
// address), with a source link-layer address option holding srcLL unless
// srcLL is all zeros (RFC 4861 forbids the option when src is the
// unspecified address, as in duplicate address detection).
func AppendICMPv6NeighborSolicitation(b []byte, src, dst, target [16]byte, srcLL [6]byte) []byte {
	n := len(b)
	b = append(b, ICMPv6NeighborSolicitation, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, target[:]...)
	if srcLL != ([6]byte{}) {
		b = AppendNDPOptionLinkLayer(b, NDPOptSourceLinkLayer, srcLL)
	}
	return finishICMPv6(b, n, src, dst)
}

// AppendICMPv6NeighborAdvertisement appends a neighbor advertisement for
// target from src to dst with flags (NDPFlagRouter, NDPFlagSolicited,
// NDPFlagOverride) and a target link-layer address option holding targetLL
// unless targetLL is all zeros.
func AppendICMPv6NeighborAdvertisement(b []byte, src, dst, target [16]byte, flags uint8, targetLL [6]byte) []byte {
	n := len(b)
	b = append(b, ICMPv6NeighborAdvertisement, 0, 0, 0, flags, 0, 0, 0)
	b = append(b, target[:]...)
	if targetLL != ([6]byte{}) {
		b = AppendNDPOptionLinkLayer(b, NDPOptTargetLinkLayer, targetLL)
	}
	return finishICMPv6(b, n, src, dst)
}

// AppendICMPv6RouterSolicitation appends a router solicitation from src to
// dst (usually ff02::2) with a source link-layer address option holding
// srcLL unless srcLL is all zeros.
func AppendICMPv6RouterSolicitation(b []byte, src, dst [16]byte, srcLL [6]byte) []byte {
	n := len(b)
	b = append(b, ICMPv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0)
	if srcLL != ([6]byte{}) {
		b = AppendNDPOptionLinkLayer(b, NDPOptSourceLinkLayer, srcLL)
	}
	return finishICMPv6(b, n, src, dst)
}

// finishICMPv6 computes and stores the checksum of the message b[n:].
func finishICMPv6(b []byte, n int, src, dst [16]byte) []byte {
	m := b[n:]
	binary.BigEndian.PutUint16(m[icmp6Checksum:icmp6Checksum+2], ICMPv6Checksum(src, dst, m))
	return b
}

// NDP option types (RFC 4861 section 4.6).
const (
	NDPOptSourceLinkLayer uint8 = 1
	NDPOptTargetLinkLayer uint8 = 2
	NDPOptPrefixInfo      uint8 = 3
	NDPOptRedirectedHdr   uint8 = 4
	NDPOptMTU             uint8 = 5
)

// NDPOptions is a view of the options of an NDP message. Each option is a
// type byte, a length byte counting 8-byte units (the two bytes included;
// never 0) and a body:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |    Length     |              ...              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Iterate with Next:
//
//	for opts := m.Options(); len(opts) > 0; {
//		typ, body, rest, err := opts.Next()
//		if err != nil {
//			return err // drop the message
//		}
//		…
//		opts = rest
//	}
type NDPOptions []byte

// Next returns the type and body (the bytes after type and length) of the
// first option of o, and the options after it. An option with length 0
// (RFC 4861 says to discard the message) is ErrBadOption, and one that runs
// past the end of o, or an empty o, is ErrTooShort. Next never reads past o
// and never allocates; body and rest alias o.
func (o NDPOptions) Next() (typ uint8, body []byte, rest NDPOptions, err error) {
	if len(o) < 2 {
		return 0, nil, nil, perr(LayerICMPv6, ErrTooShort)
	}
	n := int(o[1]) * 8
	if n == 0 {
		return 0, nil, nil, perr(LayerICMPv6, ErrBadOption)
	}
	if n > len(o) {
		return 0, nil, nil, perr(LayerICMPv6, ErrTooShort)
	}
	return o[0], o[2:n], o[n:], nil
}

// Validate walks all options and returns the first error Next reports.
func (o NDPOptions) Validate() error {
	for len(o) > 0 {
		_, _, rest, err := o.Next()
		if err != nil {
			return err
		}
		o = rest
	}
	return nil
}

// LinkLayerAddress returns the address in the first option of type typ
// (NDPOptSourceLinkLayer or NDPOptTargetLinkLayer) whose body holds an
// Ethernet address. It stops at a malformed option.
func (o NDPOptions) LinkLayerAddress(typ uint8) (addr [6]byte, ok bool) {
	for len(o) > 0 {
		t, body, rest, err := o.Next()
		if err != nil {
			break
		}
		if t == typ && len(body) >= 6 {
			return [6]byte(body[:6]), true
		}
		o = rest
	}
	return addr, false
}

// MTU returns the value of the first MTU option. It stops at a malformed
// option.
func (o NDPOptions) MTU() (mtu uint32, ok bool) {
	for len(o) > 0 {
		t, body, rest, err := o.Next()
		if err != nil {
			break
		}
		if t == NDPOptMTU && len(body) >= 6 {
			return binary.BigEndian.Uint32(body[2:6]), true
		}
		o = rest
	}
	return 0, false
}

// AppendNDPOptionLinkLayer appends a source or target link-layer address
// option (8 bytes) holding an Ethernet address.
func AppendNDPOptionLinkLayer(b []byte, typ uint8, addr [6]byte) []byte {
	b = append(b, typ, 1)
	return append(b, addr[:]...)
}

// AppendNDPOptionMTU appends an MTU option (8 bytes).
func AppendNDPOptionMTU(b []byte, mtu uint32) []byte {
	b = append(b, NDPOptMTU, 1, 0, 0)
	return binary.BigEndian.AppendUint32(b, mtu)
}

// Prefix information option body (RFC 4861 section 4.6.2), after type 3 and
// length 4:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	                                | Prefix Length |L|A| Reserved1 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Valid Lifetime                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Preferred Lifetime                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Reserved2                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Prefix (16 bytes)                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	pioPrefixLen = 0
	pioFlags     = 1
	pioValid     = 2
	pioPreferred = 6
	pioPrefix    = 14

	// NDPPrefixInfoLen is the length of a prefix information option's
	// body (the option is 32 bytes).
	NDPPrefixInfoLen = 30

	pioFlagOnLink     = 0x80
	pioFlagAutonomous = 0x40
)

// NDPPrefixInfo is a view of a prefix information option's body, as
// returned by NDPOptions.Next for type NDPOptPrefixInfo. Make one with
// ParseNDPPrefixInfo.
type NDPPrefixInfo []byte

// ParseNDPPrefixInfo checks that body is the 30-byte body of a prefix
// information option and returns a view of it.
func ParseNDPPrefixInfo(body []byte) (NDPPrefixInfo, error) {
	if len(body) < NDPPrefixInfoLen {
		return nil, perr(LayerICMPv6, ErrTooShort)
	}
	if len(body) != NDPPrefixInfoLen {
		return nil, perr(LayerICMPv6, ErrBadOption)
	}
	return NDPPrefixInfo(body), nil
}

func (p NDPPrefixInfo) hdr() *[NDPPrefixInfoLen]byte { return (*[NDPPrefixInfoLen]byte)(p) }

// PrefixLength returns the number of leading bits of the prefix that are
// valid.
func (p NDPPrefixInfo) PrefixLength() uint8 { return p.hdr()[pioPrefixLen] }

// OnLink reports the L flag.
func (p NDPPrefixInfo) OnLink() bool { return p.hdr()[pioFlags]&pioFlagOnLink != 0 }

// Autonomous reports the A flag (usable for SLAAC).
func (p NDPPrefixInfo) Autonomous() bool { return p.hdr()[pioFlags]&pioFlagAutonomous != 0 }

// ValidLifetime returns the valid lifetime in seconds (0xffffffff is
// infinity).
func (p NDPPrefixInfo) ValidLifetime() uint32 {
	return binary.BigEndian.Uint32(p.hdr()[pioValid : pioValid+4])
}

// PreferredLifetime returns the preferred lifetime in seconds (0xffffffff
// is infinity).
func (p NDPPrefixInfo) PreferredLifetime() uint32 {
	return binary.BigEndian.Uint32(p.hdr()[pioPreferred : pioPreferred+4])
}

// Prefix returns the prefix with its length, masked. A prefix length above
// 128 gives the invalid zero Prefix.
func (p NDPPrefixInfo) Prefix() netip.Prefix {
	h := p.hdr()
	pfx, err := netip.AddrFrom16([16]byte(h[pioPrefix : pioPrefix+16])).Prefix(int(h[pioPrefixLen]))
	if err != nil {
		return netip.Prefix{}
	}
	return pfx
}

// AppendNDPOptionPrefixInfo appends a prefix information option (32 bytes)
// for prefix (which must be IPv6; its bits beyond the length are cleared)
// with the on-link and autonomous flags and lifetimes in seconds.
func AppendNDPOptionPrefixInfo(b []byte, prefix netip.Prefix, onLink, autonomous bool, valid, preferred uint32) []byte {
	var flags uint8
	if onLink {
		flags |= pioFlagOnLink
	}
	if autonomous {
		flags |= pioFlagAutonomous
	}
	prefix = prefix.Masked()
	b = append(b, NDPOptPrefixInfo, 4, uint8(max(prefix.Bits(), 0)), flags)
	b = binary.BigEndian.AppendUint32(b, valid)
	b = binary.BigEndian.AppendUint32(b, preferred)
	b = append(b, 0, 0, 0, 0)
	a := prefix.Addr().As16()
	return append(b, a[:]...)
}
