package proto

import (
	"encoding/binary"
	"encoding/hex"
)

// QUIC headers as a middlebox sees them: the version-independent invariants
// (RFC 8999) for every version, and the cleartext long header fields of
// QUIC version 1 (RFC 9000 section 17.2) and version 2 (RFC 9369).
//
// Header protection (RFC 9001 section 5.4) masks the packet number and the
// low bits of the first byte (the packet number length, the reserved bits
// and, in short headers, the key phase) with keys only the endpoints have.
// Those bits and the packet number are therefore not readable here: the
// parsers report where the packet number starts (PNOffset), not its value
// or length, and First holds the first byte as received.

// Variable-length integers (RFC 9000 section 16): the two high bits of the
// first byte give the length (1, 2, 4 or 8 bytes), the rest is the value,
// big-endian.

// MaxVarint is the largest value a QUIC variable-length integer can hold,
// 2^62-1.
const MaxVarint = 1<<62 - 1

// ParseVarint decodes the variable-length integer at the start of b and
// returns its value and length in bytes. It returns ErrTooShort if b is
// shorter than the length the first byte gives. Non-minimal encodings are
// accepted, as RFC 9000 requires.
func ParseVarint(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, perr(LayerQUIC, ErrTooShort)
	}
	switch b[0] >> 6 {
	case 0:
		return uint64(b[0]), 1, nil
	case 1:
		if len(b) < 2 {
			return 0, 0, perr(LayerQUIC, ErrTooShort)
		}
		return uint64(binary.BigEndian.Uint16(b) & 0x3fff), 2, nil
	case 2:
		if len(b) < 4 {
			return 0, 0, perr(LayerQUIC, ErrTooShort)
		}
		return uint64(binary.BigEndian.Uint32(b) & 0x3fffffff), 4, nil
	default:
		if len(b) < 8 {
			return 0, 0, perr(LayerQUIC, ErrTooShort)
		}
		return binary.BigEndian.Uint64(b) & MaxVarint, 8, nil
	}
}

// VarintLen returns the length of the minimal encoding of v: 1, 2, 4 or 8,
// or 0 if v is larger than MaxVarint and cannot be encoded.
func VarintLen(v uint64) int {
	switch {
	case v <= 63:
		return 1
	case v <= 16383:
		return 2
	case v <= 1073741823:
		return 4
	case v <= MaxVarint:
		return 8
	}
	return 0
}

// AppendVarint appends the minimal encoding of v to b. A v larger than
// MaxVarint cannot be encoded: b is returned unchanged (check VarintLen(v)
// != 0 first when v is not known to fit).
func AppendVarint(b []byte, v uint64) []byte {
	b, _ = AppendVarintLen(b, v, VarintLen(v))
	return b
}

// AppendVarintLen appends v encoded in exactly n bytes (1, 2, 4 or 8), a
// non-minimal encoding if n is larger than VarintLen(v). It is used for
// fields patched after the fact, such as a long header's Length. It returns
// b unchanged and ErrBadValue if n is not a valid length or v does not fit.
func AppendVarintLen(b []byte, v uint64, n int) ([]byte, error) {
	switch {
	case n == 1 && v <= 63:
		return append(b, byte(v)), nil
	case n == 2 && v <= 16383:
		return binary.BigEndian.AppendUint16(b, uint16(v)|0x4000), nil
	case n == 4 && v <= 1073741823:
		return binary.BigEndian.AppendUint32(b, uint32(v)|0x80000000), nil
	case n == 8 && v <= MaxVarint:
		return binary.BigEndian.AppendUint64(b, v|0xc000000000000000), nil
	}
	return b, perr(LayerQUIC, ErrBadValue)
}

// MaxConnIDLen is the longest connection ID QUIC versions 1 and 2 allow.
// (The invariants allow up to 255 bytes in long headers of other versions;
// such IDs do not fit a ConnID.)
const MaxConnIDLen = 20

// ConnID is a QUIC connection ID of up to 20 bytes, held by value: it is
// comparable and can be a map key without allocating.
type ConnID struct {
	b [MaxConnIDLen]byte
	l uint8
}

// ConnIDFromBytes returns b as a ConnID. It returns ErrBadValue if b is
// longer than MaxConnIDLen.
//
// The result is named so that the inlined body fills it directly: with a
// local returned by value, the compiler built the ID in one stack slot and
// copied it to another with 16-byte loads that span the smaller stores
// just made, a store-forwarding stall per load (~10 ns per call in
// bench's QUIC case). One such copy remains when the caller assigns the
// result, so hot paths should let Decode fill Decoded.QUICDCID in place.
func ConnIDFromBytes(b []byte) (c ConnID, err error) {
	if len(b) > MaxConnIDLen {
		return c, perr(LayerQUIC, ErrBadValue)
	}
	c.l = uint8(copy(c.b[:], b))
	return c, nil
}

// Len returns the length of the ID in bytes.
func (c ConnID) Len() int { return int(c.l) }

// Bytes returns a copy of the ID's bytes. It allocates; AppendTo does not.
func (c ConnID) Bytes() []byte { return c.AppendTo(nil) }

// AppendTo appends the ID's bytes to b. It has a pointer receiver so that
// reading an ID in place (d.QUICDCID.AppendTo(buf) right after Decode)
// does not copy the whole 21-byte value first, which costs a store-to-load
// forwarding stall while Decode's stores are still in flight.
func (c *ConnID) AppendTo(b []byte) []byte { return append(b, c.b[:min(c.l, MaxConnIDLen)]...) }

// String returns the ID in hex, or "(empty)" for a zero-length ID.
func (c ConnID) String() string {
	if c.l == 0 {
		return "(empty)"
	}
	return hex.EncodeToString(c.b[:min(c.l, MaxConnIDLen)])
}

// QUIC versions with known long header layouts.
const (
	QUICVersionNegotiation uint32 = 0          // version negotiation packets (RFC 8999 section 6)
	QUICVersion1           uint32 = 0x00000001 // RFC 9000
	QUICVersion2           uint32 = 0x6b3343cf // RFC 9369
)

// QUICPacketType is the kind of a QUIC packet, independent of the version's
// wire encoding of the long packet type.
type QUICPacketType uint8

// QUIC packet types.
const (
	QUICPacketUnknown            QUICPacketType = iota // long header of a version other than 1 and 2
	QUICPacketInitial                                  // v1 type 0, v2 type 1
	QUICPacket0RTT                                     // v1 type 1, v2 type 2
	QUICPacketHandshake                                // v1 type 2, v2 type 3
	QUICPacketRetry                                    // v1 type 3, v2 type 0
	QUICPacketVersionNegotiation                       // long header, version 0
	QUICPacketShort                                    // short header (1-RTT)
)

var quicPacketTypeNames = [...]string{"unknown", "initial", "0-rtt", "handshake", "retry", "version-negotiation", "short"}

// String returns the type's name.
func (t QUICPacketType) String() string {
	if int(t) < len(quicPacketTypeNames) {
		return quicPacketTypeNames[t]
	}
	return "invalid"
}

// quicTypes maps the 2-bit long packet type to QUICPacketType, per version.
var (
	quicV1Types = [4]QUICPacketType{QUICPacketInitial, QUICPacket0RTT, QUICPacketHandshake, QUICPacketRetry}
	quicV2Types = [4]QUICPacketType{QUICPacketRetry, QUICPacketInitial, QUICPacket0RTT, QUICPacketHandshake}
)

// quicTypeBits returns the 2-bit wire type for t in version v, or -1.
func quicTypeBits(v uint32, t QUICPacketType) int {
	var tab *[4]QUICPacketType
	switch v {
	case QUICVersion1:
		tab = &quicV1Types
	case QUICVersion2:
		tab = &quicV2Types
	default:
		return -1
	}
	for i, x := range tab {
		if x == t {
			return i
		}
	}
	return -1
}

// First-byte bits.
const (
	quicFormBit  = 0x80 // header form: 1 = long
	quicFixedBit = 0x40 // v1/v2 fixed bit (may be greased, RFC 9287)
	quicSpinBit  = 0x20 // short header spin bit
	quicKeyPhase = 0x04 // short header key phase (protected)
	quicTagLen   = 16   // Retry integrity tag
)

// IsQUICLongHeader reports whether b starts with a QUIC long header (the
// header form bit is set).
func IsQUICLongHeader(b []byte) bool { return len(b) > 0 && b[0]&quicFormBit != 0 }

// IsQUICVersionNegotiation reports whether b starts with a long header whose
// version is 0: a version negotiation packet.
func IsQUICVersionNegotiation(b []byte) bool {
	return len(b) >= 5 && b[0]&quicFormBit != 0 && binary.BigEndian.Uint32(b[1:5]) == QUICVersionNegotiation
}

// QUICLongHeader is a parsed long header. Slices point into the parsed
// buffer.
//
// Long header (RFC 8999 section 5.1, RFC 9000 section 17.2):
//
//	Header Form (1) = 1, Version-Specific Bits (7),
//	Version (32),
//	Destination Connection ID Length (8), Destination Connection ID (0..2040),
//	Source Connection ID Length (8), Source Connection ID (0..2040),
//	Version-Specific Data (..)
//
// In versions 1 and 2 the version-specific bits are the fixed bit, the
// 2-bit long packet type and 4 type-specific bits (protected in Initial,
// 0-RTT and Handshake packets), connection IDs are at most 20 bytes, and
// the type-specific payload is:
//
//	Initial:           Token Length (i), Token (..), Length (i), Packet Number (8..32), …
//	0-RTT, Handshake:  Length (i), Packet Number (8..32), …
//	Retry:             Retry Token (..), Retry Integrity Tag (128)
//
// A version negotiation packet (version 0) carries a list of 32-bit
// versions after the connection IDs.
type QUICLongHeader struct {
	First   byte // first byte as received; its low 4 bits are header-protected in Initial, 0-RTT and Handshake packets
	Version uint32
	Type    QUICPacketType // QUICPacketUnknown for versions other than 0, 1 and 2
	DCID    []byte
	SCID    []byte
	// Token is an Initial packet's token or a Retry packet's retry token.
	Token []byte
	// Length is the Length field of Initial, 0-RTT and Handshake packets:
	// the bytes of packet number and payload that follow PNOffset.
	Length uint64
	// PNOffset is where the (protected) packet number starts, from the
	// start of the parsed buffer, in Initial, 0-RTT and Handshake packets;
	// 0 otherwise.
	PNOffset int
	// IntegrityTag is a Retry packet's integrity tag (16 bytes).
	IntegrityTag []byte
	// Versions is a version negotiation packet's list of supported
	// versions, 4 bytes each (read them with encoding/binary).
	Versions []byte
}

// PacketEnd returns the offset just past this packet (PNOffset+Length) for
// Initial, 0-RTT and Handshake packets: a datagram may carry further
// coalesced packets from there (RFC 9000 section 12.2). For the other types
// it returns 0.
func (h *QUICLongHeader) PacketEnd() int {
	if h.PNOffset == 0 {
		return 0
	}
	return h.PNOffset + int(h.Length)
}

// ParseQUICLongHeader parses the long header at the start of b (a UDP
// payload) and returns it with the number of bytes it used: up to the
// packet number for Initial, 0-RTT and Handshake packets, all of b for
// Retry and version negotiation packets, and up to the end of the source
// connection ID for unknown versions, whose remaining bytes are not
// interpreted.
//
// It returns ErrBadValue if the form bit is clear or a version 1 or 2
// connection ID is longer than 20 bytes, ErrTooShort if b ends before the
// header or, for Initial, 0-RTT and Handshake packets, before the packet
// end that the Length field gives, and ErrLengthMismatch if a version
// negotiation packet's version list is not a multiple of 4 bytes. It does
// not allocate.
func ParseQUICLongHeader(b []byte) (QUICLongHeader, int, error) {
	var h QUICLongHeader
	if len(b) < 7 {
		return h, 0, perr(LayerQUIC, ErrTooShort)
	}
	h.First = b[0]
	if h.First&quicFormBit == 0 {
		return h, 0, perr(LayerQUIC, ErrBadValue)
	}
	h.Version = binary.BigEndian.Uint32(b[1:5])
	var types *[4]QUICPacketType
	maxCID := 255
	switch h.Version {
	case QUICVersion1:
		types, maxCID = &quicV1Types, MaxConnIDLen
	case QUICVersion2:
		types, maxCID = &quicV2Types, MaxConnIDLen
	}
	off := 5
	l := int(b[off])
	off++
	if l > maxCID {
		return h, 0, perr(LayerQUIC, ErrBadValue)
	}
	if len(b) < off+l+1 {
		return h, 0, perr(LayerQUIC, ErrTooShort)
	}
	h.DCID = b[off : off+l : off+l]
	off += l
	l = int(b[off])
	off++
	if l > maxCID {
		return h, 0, perr(LayerQUIC, ErrBadValue)
	}
	if len(b) < off+l {
		return h, 0, perr(LayerQUIC, ErrTooShort)
	}
	h.SCID = b[off : off+l : off+l]
	off += l
	if h.Version == QUICVersionNegotiation {
		h.Type = QUICPacketVersionNegotiation
		if (len(b)-off)%4 != 0 {
			return h, 0, perr(LayerQUIC, ErrLengthMismatch)
		}
		h.Versions = b[off:]
		return h, len(b), nil
	}
	if types == nil {
		return h, off, nil
	}
	h.Type = types[(h.First>>4)&3]
	switch h.Type {
	case QUICPacketRetry:
		if len(b)-off < quicTagLen {
			return h, 0, perr(LayerQUIC, ErrTooShort)
		}
		t := len(b) - quicTagLen
		h.Token = b[off:t:t]
		h.IntegrityTag = b[t:]
		return h, len(b), nil
	case QUICPacketInitial:
		tl, n, err := ParseVarint(b[off:])
		if err != nil {
			return h, 0, err
		}
		off += n
		if tl > uint64(len(b)-off) {
			return h, 0, perr(LayerQUIC, ErrTooShort)
		}
		end := off + int(tl)
		h.Token = b[off:end:end]
		off = end
	}
	v, n, err := ParseVarint(b[off:])
	if err != nil {
		return h, 0, err
	}
	off += n
	if v > uint64(len(b)-off) {
		return h, 0, perr(LayerQUIC, ErrTooShort)
	}
	h.Length = v
	h.PNOffset = off
	return h, off, nil
}

// QUICShortHeader is a parsed short (1-RTT) header (RFC 8999 section 5.2,
// RFC 9000 section 17.3):
//
//	Header Form (1) = 0, Fixed Bit (1) = 1, Spin Bit (1),
//	Reserved Bits (2), Key Phase (1), Packet Number Length (2),
//	Destination Connection ID (0..160),
//	Packet Number (8..32), Packet Payload (8..)
//
// The header does not carry the DCID length: the receiver knows the length
// of the IDs it issued. Only the spin bit (and the fixed bit) of First are
// readable; the reserved bits, key phase and packet number length are
// header-protected.
type QUICShortHeader struct {
	First    byte   // first byte as received (see above for what is readable)
	DCID     []byte // slice of the parsed buffer
	PNOffset int    // 1 + len(DCID)
}

// SpinBit returns the latency spin bit (RFC 9000 section 17.4), which is
// not protected.
func (h *QUICShortHeader) SpinBit() bool { return h.First&quicSpinBit != 0 }

// ParseQUICShortHeader parses the short header at the start of b whose
// destination connection ID is dcidLen bytes long, and returns it with the
// number of bytes used (1+dcidLen). It returns ErrBadValue if dcidLen is
// not in [0, 20] or the form bit is set, and ErrTooShort if b is shorter
// than 1+dcidLen. It does not allocate.
func ParseQUICShortHeader(b []byte, dcidLen int) (QUICShortHeader, int, error) {
	var h QUICShortHeader
	if dcidLen < 0 || dcidLen > MaxConnIDLen {
		return h, 0, perr(LayerQUIC, ErrBadValue)
	}
	if len(b) < 1 {
		return h, 0, perr(LayerQUIC, ErrTooShort)
	}
	h.First = b[0]
	if h.First&quicFormBit != 0 {
		return h, 0, perr(LayerQUIC, ErrBadValue)
	}
	n := 1 + dcidLen
	if len(b) < n {
		return h, 0, perr(LayerQUIC, ErrTooShort)
	}
	h.DCID = b[1:n:n]
	h.PNOffset = n
	return h, n, nil
}

// QUICLongHeaderFields holds the values of a long header to encode.
// AppendQUICLongHeader writes the header in clear: applying header
// protection, and the payload protection before it, is the caller's job.
type QUICLongHeaderFields struct {
	Version uint32
	// Type selects the layout and wire type for versions 1 and 2; it is
	// ignored for other versions (version 0 is always version negotiation).
	Type QUICPacketType
	// LowBits are the first byte's bits that the version leaves free: the
	// low 7 bits for version negotiation and unknown versions, the low 4
	// (unused) bits for Retry. Ignored otherwise: Initial, 0-RTT and
	// Handshake get reserved bits 0 and the packet number length.
	LowBits uint8
	DCID    []byte
	SCID    []byte
	Token   []byte // Initial token, or Retry token
	// Length is the Length field of Initial, 0-RTT and Handshake: packet
	// number length plus payload length (with the AEAD tag).
	Length uint64
	// LengthLen is the encoded length of the Length field (1, 2, 4 or 8),
	// or 0 for the minimal encoding.
	LengthLen int
	// PacketNumber is the truncated packet number, written in PNLen
	// bytes (1 to 4), for Initial, 0-RTT and Handshake.
	PacketNumber uint32
	PNLen        int
	IntegrityTag [quicTagLen]byte // Retry
	Versions     []uint32         // version negotiation
}

// AppendQUICLongHeader appends the long header f to b: for Initial, 0-RTT
// and Handshake packets up to and including the packet number; for Retry
// packets the whole packet; for version negotiation packets the whole
// packet; for unknown versions up to the source connection ID. It returns
// b unchanged and ErrBadValue if a connection ID is too long (20 bytes for
// versions 1 and 2, 255 otherwise), Type is not a long header type, PNLen
// is not 1 to 4, or Length does not fit LengthLen.
func AppendQUICLongHeader(b []byte, f QUICLongHeaderFields) ([]byte, error) {
	bad := perr(LayerQUIC, ErrBadValue)
	maxCID := 255
	known := f.Version == QUICVersion1 || f.Version == QUICVersion2
	if known {
		maxCID = MaxConnIDLen
	}
	if len(f.DCID) > maxCID || len(f.SCID) > maxCID {
		return b, bad
	}
	var first byte
	switch {
	case f.Version == QUICVersionNegotiation || !known:
		first = quicFormBit | f.LowBits&0x7f
	default:
		tb := quicTypeBits(f.Version, f.Type)
		if tb < 0 {
			return b, bad
		}
		first = quicFormBit | quicFixedBit | byte(tb)<<4
		if f.Type == QUICPacketRetry {
			first |= f.LowBits & 0x0f
		} else {
			if f.PNLen < 1 || f.PNLen > 4 {
				return b, bad
			}
			ll := f.LengthLen
			if ll == 0 {
				ll = VarintLen(f.Length)
			}
			if _, err := AppendVarintLen(nil, f.Length, ll); err != nil || f.Length < uint64(f.PNLen) {
				return b, bad
			}
			if f.Type == QUICPacketInitial && VarintLen(uint64(len(f.Token))) == 0 {
				return b, bad
			}
			first |= byte(f.PNLen - 1)
		}
	}
	b = append(b, first)
	b = binary.BigEndian.AppendUint32(b, f.Version)
	b = append(b, byte(len(f.DCID)))
	b = append(b, f.DCID...)
	b = append(b, byte(len(f.SCID)))
	b = append(b, f.SCID...)
	switch {
	case f.Version == QUICVersionNegotiation:
		for _, v := range f.Versions {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b, nil
	case !known:
		return b, nil
	case f.Type == QUICPacketRetry:
		b = append(b, f.Token...)
		return append(b, f.IntegrityTag[:]...), nil
	case f.Type == QUICPacketInitial:
		b = AppendVarint(b, uint64(len(f.Token)))
		b = append(b, f.Token...)
	}
	ll := f.LengthLen
	if ll == 0 {
		ll = VarintLen(f.Length)
	}
	b, _ = AppendVarintLen(b, f.Length, ll) // checked above
	return appendPN(b, f.PacketNumber, f.PNLen), nil
}

func appendPN(b []byte, pn uint32, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(pn>>(8*i)))
	}
	return b
}

// QUICShortHeaderFields holds the values of a short header to encode. As
// for long headers, the header is written in clear.
type QUICShortHeaderFields struct {
	DCID         []byte // at most 20 bytes
	SpinBit      bool   // latency spin bit
	KeyPhase     bool   // key phase bit
	PacketNumber uint32 // truncated packet number
	PNLen        int    // 1 to 4
}

// AppendQUICShortHeader appends the short header f (fixed bit set, reserved
// bits 0) and the packet number to b. It returns b unchanged and
// ErrBadValue if the DCID is longer than 20 bytes or PNLen is not 1 to 4.
func AppendQUICShortHeader(b []byte, f QUICShortHeaderFields) ([]byte, error) {
	if len(f.DCID) > MaxConnIDLen || f.PNLen < 1 || f.PNLen > 4 {
		return b, perr(LayerQUIC, ErrBadValue)
	}
	first := quicFixedBit | byte(f.PNLen-1)
	if f.SpinBit {
		first |= quicSpinBit
	}
	if f.KeyPhase {
		first |= quicKeyPhase
	}
	b = append(b, first)
	b = append(b, f.DCID...)
	return appendPN(b, f.PacketNumber, f.PNLen), nil
}
