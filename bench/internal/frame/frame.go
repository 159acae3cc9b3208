// Package frame builds the test frames the benchmark generator sends:
// Ethernet + IPv4 + UDP with valid IPv4 and UDP checksums, so that any
// receiver (AF_XDP or the kernel's UDP stack) accepts them.
//
// Sizes follow the usual benchmark convention: a "64-byte frame" is 64 bytes
// on the wire including the 4-byte FCS, so the generator hands the kernel
// 60 bytes (FCS is added by hardware, and veth has none); a "1500-byte
// packet" is an IPv4 packet of 1500 bytes, a 1514-byte frame.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Header sizes.
const (
	EthLen  = 14
	IPv4Len = 20
	UDPLen  = 8
	// MinLen is the smallest frame UDP4 builds: the three headers.
	MinLen = EthLen + IPv4Len + UDPLen
	// FCSLen is the Ethernet frame check sequence, absent from the bytes a
	// program sees but present on a wire.
	FCSLen = 4
	// WireOverhead is preamble, start delimiter and inter-frame gap: the
	// bytes a frame costs on a wire beyond the frame and its FCS.
	WireOverhead = 20
)

// UDP4Options describe one UDP/IPv4 frame.
type UDP4Options struct {
	DstMAC, SrcMAC   net.HardwareAddr
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// Len is the frame length without FCS (60 for a 64-byte frame, 1514 for
	// a 1500-byte IP packet).
	Len int
	TTL uint8 // 0 means 64
	// Payload, when given, is copied to the start of the UDP payload (as
	// much as fits); the rest keeps the pattern.
	Payload []byte
}

// ErrBadOptions reports options UDP4 cannot build a frame from.
var ErrBadOptions = errors.New("frame: bad options")

// UDP4 returns a frame with valid checksums and a payload of an
// incrementing byte pattern.
func UDP4(o UDP4Options) ([]byte, error) {
	if len(o.DstMAC) != 6 || len(o.SrcMAC) != 6 {
		return nil, fmt.Errorf("%w: MAC addresses must be 6 bytes", ErrBadOptions)
	}
	if !o.Src.Is4() || !o.Dst.Is4() {
		return nil, fmt.Errorf("%w: addresses must be IPv4", ErrBadOptions)
	}
	if o.Len < MinLen || o.Len > EthLen+0xffff {
		return nil, fmt.Errorf("%w: frame length %d outside [%d, %d]", ErrBadOptions, o.Len, MinLen, EthLen+0xffff)
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = 64
	}
	b := make([]byte, o.Len)
	copy(b[0:6], o.DstMAC)
	copy(b[6:12], o.SrcMAC)
	binary.BigEndian.PutUint16(b[12:14], 0x0800)

	ip := b[EthLen : EthLen+IPv4Len]
	ipLen := o.Len - EthLen
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipLen))
	binary.BigEndian.PutUint16(ip[4:6], 0x7467) // identification
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // don't fragment
	ip[8] = ttl
	ip[9] = 17
	src, dst := o.Src.As4(), o.Dst.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:12], ^fold(sum(0, ip)))

	udp := b[EthLen+IPv4Len:]
	binary.BigEndian.PutUint16(udp[0:2], o.SrcPort)
	binary.BigEndian.PutUint16(udp[2:4], o.DstPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(len(udp)))
	for i := UDPLen; i < len(udp); i++ {
		udp[i] = byte(i - UDPLen)
	}
	copy(udp[UDPLen:], o.Payload)
	c := ^fold(sum(pseudo(src, dst, len(udp)), udp))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return b, nil
}

func pseudo(src, dst [4]byte, udpLen int) uint32 {
	var s uint32
	s += uint32(binary.BigEndian.Uint16(src[0:2])) + uint32(binary.BigEndian.Uint16(src[2:4]))
	s += uint32(binary.BigEndian.Uint16(dst[0:2])) + uint32(binary.BigEndian.Uint16(dst[2:4]))
	return s + 17 + uint32(udpLen)
}

// sum adds b as big-endian 16-bit words (odd tail padded with zero) to s.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// Verify checks a frame built by UDP4 (or any Ethernet/IPv4/UDP frame
// without options): lengths and both checksums. Tests and the generator's
// self-check use it.
func Verify(b []byte) error {
	if len(b) < MinLen {
		return fmt.Errorf("frame of %d bytes is shorter than %d", len(b), MinLen)
	}
	if t := binary.BigEndian.Uint16(b[12:14]); t != 0x0800 {
		return fmt.Errorf("ethertype %#04x is not IPv4", t)
	}
	ip := b[EthLen:]
	if ip[0] != 0x45 {
		return fmt.Errorf("IPv4 version/IHL %#02x, want 0x45", ip[0])
	}
	ipLen := int(binary.BigEndian.Uint16(ip[2:4]))
	if ipLen != len(ip) {
		return fmt.Errorf("IPv4 total length %d, frame carries %d", ipLen, len(ip))
	}
	if fold(sum(0, ip[:IPv4Len])) != 0xffff {
		return errors.New("bad IPv4 header checksum")
	}
	if ip[9] != 17 {
		return fmt.Errorf("IP protocol %d is not UDP", ip[9])
	}
	udp := ip[IPv4Len:]
	if int(binary.BigEndian.Uint16(udp[4:6])) != len(udp) {
		return fmt.Errorf("UDP length %d, packet carries %d", binary.BigEndian.Uint16(udp[4:6]), len(udp))
	}
	src, dst := [4]byte(ip[12:16]), [4]byte(ip[16:20])
	if fold(sum(pseudo(src, dst, len(udp)), udp)) != 0xffff {
		return errors.New("bad UDP checksum")
	}
	return nil
}

// WireBits is the number of bits a frame of frameLen bytes (without FCS)
// occupies on an Ethernet wire, FCS, preamble and gap included: the
// denominator of line rate.
func WireBits(frameLen int) float64 {
	return float64(8 * (frameLen + FCSLen + WireOverhead))
}

// L2Bits is the number of bits of a frame and its FCS: what "Gbps" counts.
func L2Bits(frameLen int) float64 {
	return float64(8 * (frameLen + FCSLen))
}
