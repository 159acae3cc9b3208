package proto

import (
	"encoding/binary"
	"strings"
)

// TCP header (RFC 9293 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16
	tcpUrgent     = 18
)

// Lengths of the TCP header.
const (
	TCPMinHeaderLen = 20 // without options
	TCPMaxHeaderLen = 60 // data offset 15
	TCPMaxOptionLen = TCPMaxHeaderLen - TCPMinHeaderLen
)

// TCPFlags is the flags byte of a TCP header (byte 13).
type TCPFlags uint8

// TCP flags (RFC 9293, RFC 3168 for ECE and CWR).
const (
	TCPFlagFIN TCPFlags = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// Has reports whether all flags in m are set in f.
func (f TCPFlags) Has(m TCPFlags) bool { return f&m == m }

var tcpFlagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String returns the set flags joined by "|", such as "SYN|ACK", or "0".
// It allocates; use it for logs, not on the fast path.
func (f TCPFlags) String() string {
	if f == 0 {
		return "0"
	}
	var sb strings.Builder
	for i, n := range tcpFlagNames {
		if f&(1<<i) != 0 {
			if sb.Len() > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(n)
		}
	}
	return sb.String()
}

// TCP is a view of a TCP segment: header, options and payload. TCP has no
// length field, so the view runs to the end of the slice given to ParseTCP,
// which should be the IP payload. Make one only with ParseTCP; no accessor
// or setter can then panic.
type TCP []byte

// ParseTCP validates b as a TCP segment and returns a view of all of b.
// It returns ErrTooShort if b is shorter than 20 bytes or than the header
// length the data offset gives, and ErrBadHeaderLength if the data offset
// is below 5.
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPMinHeaderLen {
		return nil, perr(LayerTCP, ErrTooShort)
	}
	hl := int(b[tcpDataOffset]>>4) * 4
	if hl < TCPMinHeaderLen {
		return nil, perr(LayerTCP, ErrBadHeaderLength)
	}
	if hl > len(b) {
		return nil, perr(LayerTCP, ErrTooShort)
	}
	return TCP(b), nil
}

func (t TCP) h() *[TCPMinHeaderLen]byte { return (*[TCPMinHeaderLen]byte)(t) }

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t.h()[tcpSrcPort:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t.h()[tcpDstPort:]) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t.h()[tcpSeq:]) }

// Ack returns the acknowledgment number.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t.h()[tcpAck:]) }

// DataOffset returns the Data Offset field: the header length in 32-bit
// words (5 to 15).
func (t TCP) DataOffset() uint8 { return t.h()[tcpDataOffset] >> 4 }

// HeaderLen returns the header length in bytes (DataOffset*4), clamped to
// the view so that Options and Payload stay in bounds even after the view
// was rewritten.
func (t TCP) HeaderLen() int {
	hl := int(t.h()[tcpDataOffset]>>4) * 4
	hl = max(hl, TCPMinHeaderLen)
	return min(hl, len(t))
}

// Flags returns the flags byte.
func (t TCP) Flags() TCPFlags { return TCPFlags(t.h()[tcpFlags]) }

// Window returns the (unscaled) window field.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t.h()[tcpWindow:]) }

// Checksum returns the Checksum field as stored.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t.h()[tcpChecksum:]) }

// Urgent returns the urgent pointer.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t.h()[tcpUrgent:]) }

// Options returns the options bytes, between the fixed header and the data
// offset (padding included). It is a slice of the view.
func (t TCP) Options() []byte {
	hl := t.HeaderLen()
	return t[TCPMinHeaderLen:hl:hl]
}

// Payload returns the bytes after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// IterOptions returns an iterator over the options (see TCPOptions).
func (t TCP) IterOptions() TCPOptions { return TCPOptions{b: t.Options()} }

// SetSrcPort sets the source port.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t.h()[tcpSrcPort:], p) }

// SetDstPort sets the destination port.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t.h()[tcpDstPort:], p) }

// SetSeq sets the sequence number.
func (t TCP) SetSeq(v uint32) { binary.BigEndian.PutUint32(t.h()[tcpSeq:], v) }

// SetAck sets the acknowledgment number.
func (t TCP) SetAck(v uint32) { binary.BigEndian.PutUint32(t.h()[tcpAck:], v) }

// SetFlags sets the flags byte.
func (t TCP) SetFlags(f TCPFlags) { t.h()[tcpFlags] = byte(f) }

// SetWindow sets the window field.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t.h()[tcpWindow:], w) }

// SetChecksum sets the Checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t.h()[tcpChecksum:], c) }

// SetUrgent sets the urgent pointer.
func (t TCP) SetUrgent(u uint16) { binary.BigEndian.PutUint16(t.h()[tcpUrgent:], u) }

// ComputeChecksumV4 returns the checksum of the segment (the whole view)
// over an IPv4 pseudo-header, computed as if the Checksum field were zero.
// Store it with SetChecksum.
func (t TCP) ComputeChecksumV4(src, dst [4]byte) uint16 {
	return transportChecksum(t, tcpChecksum, PseudoHeaderChecksumV4(IPProtoTCP, src, dst, uint16(len(t))), false)
}

// ComputeChecksumV6 returns the checksum of the segment over an IPv6
// pseudo-header, computed as if the Checksum field were zero.
func (t TCP) ComputeChecksumV6(src, dst [16]byte) uint16 {
	return transportChecksum(t, tcpChecksum, PseudoHeaderChecksumV6(IPProtoTCP, src, dst, uint32(len(t))), false)
}

// VerifyChecksumV4 reports whether the stored checksum is correct for an
// IPv4 pseudo-header with addresses src and dst.
func (t TCP) VerifyChecksumV4(src, dst [4]byte) bool {
	return Checksum(t, PseudoHeaderChecksumV4(IPProtoTCP, src, dst, uint16(len(t)))) == 0xffff
}

// VerifyChecksumV6 reports whether the stored checksum is correct for an
// IPv6 pseudo-header with addresses src and dst.
func (t TCP) VerifyChecksumV6(src, dst [16]byte) bool {
	return Checksum(t, PseudoHeaderChecksumV6(IPProtoTCP, src, dst, uint32(len(t)))) == 0xffff
}

// TCPFields holds the values of a TCP header to encode.
type TCPFields struct {
	SrcPort  uint16
	DstPort  uint16
	Seq      uint32
	Ack      uint32
	Flags    TCPFlags
	Window   uint16
	Checksum uint16 // usually 0 here, then ComputeChecksumV4/V6 on the segment
	Urgent   uint16
	// Options are the encoded options (see AppendTCPOptions), at most 40
	// bytes. Encode pads them with zeros (EOL) to a multiple of 4 and sets
	// the data offset from their padded length.
	Options []byte
}

// Fields returns the header's field values. Options is a slice of the view.
func (t TCP) Fields() TCPFields {
	return TCPFields{
		SrcPort: t.SrcPort(), DstPort: t.DstPort(), Seq: t.Seq(), Ack: t.Ack(),
		Flags: t.Flags(), Window: t.Window(), Checksum: t.Checksum(), Urgent: t.Urgent(),
		Options: t.Options(),
	}
}

// Len returns the encoded header length in bytes: 20 plus the options
// padded to a multiple of 4.
func (f TCPFields) Len() int { return TCPMinHeaderLen + (len(f.Options)+3)&^3 }

// Encode writes the header, options and padding into the first f.Len()
// bytes of b. It returns ErrBadOption if the options are longer than 40
// bytes and ErrTooShort if b is shorter than f.Len(); it writes nothing
// then.
func (f TCPFields) Encode(b []byte) error {
	if len(f.Options) > TCPMaxOptionLen {
		return perr(LayerTCP, ErrBadOption)
	}
	hl := f.Len()
	if len(b) < hl {
		return perr(LayerTCP, ErrTooShort)
	}
	h := (*[TCPMinHeaderLen]byte)(b)
	binary.BigEndian.PutUint16(h[tcpSrcPort:], f.SrcPort)
	binary.BigEndian.PutUint16(h[tcpDstPort:], f.DstPort)
	binary.BigEndian.PutUint32(h[tcpSeq:], f.Seq)
	binary.BigEndian.PutUint32(h[tcpAck:], f.Ack)
	h[tcpDataOffset] = byte(hl/4) << 4
	h[tcpFlags] = byte(f.Flags)
	binary.BigEndian.PutUint16(h[tcpWindow:], f.Window)
	binary.BigEndian.PutUint16(h[tcpChecksum:], f.Checksum)
	binary.BigEndian.PutUint16(h[tcpUrgent:], f.Urgent)
	n := copy(b[TCPMinHeaderLen:hl], f.Options)
	clear(b[TCPMinHeaderLen+n : hl])
	return nil
}

// AppendTCP appends the encoded header f (see Encode) to b. On error
// (options longer than 40 bytes) it returns b unchanged.
func AppendTCP(b []byte, f TCPFields) ([]byte, error) {
	if len(f.Options) > TCPMaxOptionLen {
		return b, perr(LayerTCP, ErrBadOption)
	}
	n := len(b)
	b = append(b, make([]byte, f.Len())...)
	return b, f.Encode(b[n:])
}

// TCPOptionKind is a TCP option kind (IANA "TCP Option Kind Numbers").
type TCPOptionKind uint8

// TCP option kinds with typed decoding.
const (
	TCPOptEOL           TCPOptionKind = 0 // end of option list (RFC 9293)
	TCPOptNOP           TCPOptionKind = 1 // no-operation (RFC 9293)
	TCPOptMSS           TCPOptionKind = 2 // maximum segment size (RFC 9293)
	TCPOptWindowScale   TCPOptionKind = 3 // window scale (RFC 7323)
	TCPOptSACKPermitted TCPOptionKind = 4 // SACK permitted (RFC 2018)
	TCPOptSACK          TCPOptionKind = 5 // SACK blocks (RFC 2018)
	TCPOptTimestamps    TCPOptionKind = 8 // timestamps (RFC 7323)
)

// Fixed total lengths (kind and length bytes included) of the typed options.
const (
	tcpOptMSSLen           = 4
	tcpOptWindowScaleLen   = 3
	tcpOptSACKPermittedLen = 2
	tcpOptTimestampsLen    = 10
	tcpSACKBlockLen        = 8
)

// TCPMaxSACKBlocks is the largest number of SACK blocks an option can
// carry: 4 blocks take 34 of the 40 option bytes.
const TCPMaxSACKBlocks = 4

// SACKBlock is one block of a SACK option: the sequence numbers of the first
// byte received and of the byte after the last.
type SACKBlock struct {
	Left, Right uint32
}

// TCPOption is one decoded option. Kind says which of the typed fields are
// set; Data is the option's value bytes (after kind and length) as a slice
// of the header, for every kind that has a length byte (nil for EOL and
// NOP), so unknown kinds can be read too.
type TCPOption struct {
	Kind        TCPOptionKind
	Data        []byte
	MSS         uint16                      // TCPOptMSS
	WindowScale uint8                       // TCPOptWindowScale (shift count as sent, may exceed 14)
	NumSACK     uint8                       // TCPOptSACK: blocks used in SACK
	SACK        [TCPMaxSACKBlocks]SACKBlock // TCPOptSACK
	TSVal       uint32                      // TCPOptTimestamps
	TSEcr       uint32                      // TCPOptTimestamps
}

// SACKBlocks returns the used SACK blocks as a slice of o.SACK.
func (o *TCPOption) SACKBlocks() []SACKBlock { return o.SACK[:min(int(o.NumSACK), TCPMaxSACKBlocks)] }

// TCPOptions iterates over encoded TCP options without allocating and
// without reading past the bytes it was given:
//
//	it := tcp.IterOptions()
//	for o, ok := it.Next(); ok; o, ok = it.Next() { … }
//	if it.Err() != nil { … }
//
// NOP and EOL are returned like other options; iteration stops after EOL
// (what follows it is padding). A malformed option (length below 2, running
// past the end, or a wrong length for a typed kind) stops iteration with
// Err returning ErrBadOption.
type TCPOptions struct {
	b   []byte
	off int
	err error
}

// IterTCPOptions returns an iterator over the options encoded in b, such as
// TCP.Options().
func IterTCPOptions(b []byte) TCPOptions { return TCPOptions{b: b} }

// Err returns the error that stopped iteration, or nil.
func (it *TCPOptions) Err() error { return it.err }

// Next returns the next option and true, or a zero TCPOption and false at
// the end of the options or on a malformed option (see Err).
func (it *TCPOptions) Next() (TCPOption, bool) {
	var o TCPOption
	off := it.off
	if off < 0 || off >= len(it.b) {
		return o, false
	}
	b := it.b[off:]
	o.Kind = TCPOptionKind(b[0])
	switch o.Kind {
	case TCPOptEOL:
		it.off = len(it.b)
		return o, true
	case TCPOptNOP:
		it.off = off + 1
		return o, true
	}
	if len(b) < 2 {
		return it.fail()
	}
	l := int(b[1])
	if l < 2 || l > len(b) {
		return it.fail()
	}
	d := b[2:l:l]
	o.Data = d
	switch o.Kind {
	case TCPOptMSS:
		if len(d) != tcpOptMSSLen-2 {
			return it.fail()
		}
		o.MSS = binary.BigEndian.Uint16(d)
	case TCPOptWindowScale:
		if len(d) != tcpOptWindowScaleLen-2 {
			return it.fail()
		}
		o.WindowScale = d[0]
	case TCPOptSACKPermitted:
		if len(d) != tcpOptSACKPermittedLen-2 {
			return it.fail()
		}
	case TCPOptSACK:
		n := len(d) / tcpSACKBlockLen
		if n == 0 || n > TCPMaxSACKBlocks || len(d)%tcpSACKBlockLen != 0 {
			return it.fail()
		}
		for i := range n {
			blk := d[i*tcpSACKBlockLen:]
			if len(blk) < tcpSACKBlockLen {
				return it.fail()
			}
			o.SACK[i] = SACKBlock{binary.BigEndian.Uint32(blk[0:4]), binary.BigEndian.Uint32(blk[4:8])}
		}
		o.NumSACK = uint8(n)
	case TCPOptTimestamps:
		if len(d) != tcpOptTimestampsLen-2 {
			return it.fail()
		}
		o.TSVal = binary.BigEndian.Uint32(d[0:4])
		o.TSEcr = binary.BigEndian.Uint32(d[4:8])
	}
	it.off = off + l
	return o, true
}

func (it *TCPOptions) fail() (TCPOption, bool) {
	it.err = perr(LayerTCP, ErrBadOption)
	it.off = len(it.b)
	return TCPOption{}, false
}

// TCPOptionSet is the set of options AppendTCPOptions encodes. Zero fields
// are left out.
type TCPOptionSet struct {
	MSS            uint16                      // 0: no MSS option
	HasWindowScale bool                        // send WindowScale (0 is a valid shift)
	WindowScale    uint8                       // shift count
	SACKPermitted  bool                        // send SACK-permitted
	HasTimestamps  bool                        // send TSVal and TSEcr
	TSVal, TSEcr   uint32                      // timestamp value and echo reply
	NumSACK        uint8                       // SACK blocks to send from SACK
	SACK           [TCPMaxSACKBlocks]SACKBlock // blocks to acknowledge
}

// AppendTCPOptions appends the options in o to b, in the order and with the
// NOP alignment Linux uses (MSS; SACK-permitted and timestamps; window
// scale; SACK blocks), padded with EOL to a multiple of 4 bytes. The
// options never exceed 40 bytes: SACK blocks that do not fit are left out
// (with timestamps, at most 3 fit), as RFC 2018 section 3 prescribes.
func AppendTCPOptions(b []byte, o TCPOptionSet) []byte {
	start := len(b)
	if o.MSS != 0 {
		b = append(b, byte(TCPOptMSS), tcpOptMSSLen)
		b = binary.BigEndian.AppendUint16(b, o.MSS)
	}
	switch {
	case o.SACKPermitted && o.HasTimestamps:
		b = append(b, byte(TCPOptSACKPermitted), tcpOptSACKPermittedLen)
	case o.SACKPermitted:
		b = append(b, byte(TCPOptNOP), byte(TCPOptNOP), byte(TCPOptSACKPermitted), tcpOptSACKPermittedLen)
	case o.HasTimestamps:
		b = append(b, byte(TCPOptNOP), byte(TCPOptNOP))
	}
	if o.HasTimestamps {
		b = append(b, byte(TCPOptTimestamps), tcpOptTimestampsLen)
		b = binary.BigEndian.AppendUint32(b, o.TSVal)
		b = binary.BigEndian.AppendUint32(b, o.TSEcr)
	}
	if o.HasWindowScale {
		b = append(b, byte(TCPOptNOP), byte(TCPOptWindowScale), tcpOptWindowScaleLen, o.WindowScale)
	}
	if n := min(int(o.NumSACK), TCPMaxSACKBlocks, (TCPMaxOptionLen-(len(b)-start)-4)/tcpSACKBlockLen); n > 0 {
		b = append(b, byte(TCPOptNOP), byte(TCPOptNOP), byte(TCPOptSACK), byte(2+n*tcpSACKBlockLen))
		for _, s := range o.SACK[:n] {
			b = binary.BigEndian.AppendUint32(b, s.Left)
			b = binary.BigEndian.AppendUint32(b, s.Right)
		}
	}
	for (len(b)-start)%4 != 0 {
		b = append(b, byte(TCPOptEOL))
	}
	return b
}
