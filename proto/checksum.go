package proto

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the ones-complement of the
// ones-complement sum of the data taken as big-endian 16-bit words, an odd
// final byte padded with a zero byte.
//
// Checksum returns the folded sum, not its complement, so that partial sums
// chain: the checksum field of a header is ^Checksum(hdr, 0) computed with
// the field zeroed, and a header verifies when Checksum(hdr, 0) == 0xffff.
// For UDP, TCP and ICMPv6 start from the pseudo-header sum:
//
//	sum := PseudoHeaderChecksumV4(IPProtoUDP, src, dst, uint16(len(seg)))
//	csum := ^Checksum(seg, sum) // with the checksum field zeroed
//
// The fast path adds 64-bit words in one carry chain (math/bits.Add64, which
// compiles to ADC on amd64), eight words per loop iteration. The
// ones-complement sum does not depend on byte order (RFC 1071 section 2(B)), so the words are loaded little-endian, which is a
// plain load on the common hosts, and the folded result is byte-swapped once
// at the end.

// Checksum returns the 16-bit ones-complement sum of b, as big-endian 16-bit
// words, added to initial (a partial sum such as a pseudo-header sum or an
// earlier Checksum result of a preceding even-length chunk). The result is
// folded but not complemented. It never allocates.
func Checksum(b []byte, initial uint32) uint16 {
	var s, c uint64
	for len(b) >= 64 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:8]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:16]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:24]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:32]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[32:40]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[40:48]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[48:56]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[56:64]), c)
		b = b[64:]
	}
	if len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:8]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:16]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:24]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	if len(b) >= 16 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:8]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:16]), c)
		b = b[16:]
	}
	if len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		s, c = bits.Add64(s, uint64(binary.LittleEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		s, c = bits.Add64(s, uint64(binary.LittleEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) >= 1 {
		// The odd byte is the high byte of a big-endian word, so the low
		// byte of a little-endian one.
		s, c = bits.Add64(s, uint64(b[0]), c)
	}
	// Fold the end-around carry. If this add carries out, s is 0 and the
	// second add cannot overflow.
	s, c = bits.Add64(s, 0, c)
	s += c
	le := fold64(s)
	return fold64(uint64(bits.ReverseBytes16(le)) + uint64(initial))
}

// fold64 folds a 64-bit ones-complement sum to 16 bits.
func fold64(s uint64) uint16 {
	t, c := bits.Add32(uint32(s>>32), uint32(s), 0)
	t += c // t <= 0xfffffffe when c == 1
	t = t>>16 + t&0xffff
	t = t>>16 + t&0xffff
	return uint16(t)
}

// fold32 folds a 32-bit ones-complement sum to 16 bits.
func fold32(s uint32) uint16 {
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}

// ChecksumFinish folds a partial sum (such as PseudoHeaderChecksumV4's) to
// 16 bits and complements it: the value to store in a checksum field.
func ChecksumFinish(sum uint32) uint16 { return ^fold32(sum) }

// ChecksumCombine adds two 16-bit ones-complement sums, for example the sums
// of two even-length chunks of one message.
func ChecksumCombine(a, b uint16) uint16 { return fold32(uint32(a) + uint32(b)) }

// PseudoHeaderChecksumV4 returns the unfolded sum of the IPv4 pseudo-header
// (RFC 768, RFC 9293 section 3.1) for upper-layer protocol proto and
// upper-layer length length (header plus payload), to pass as Checksum's
// initial value.
func PseudoHeaderChecksumV4(proto uint8, src, dst [4]byte, length uint16) uint32 {
	return uint32(binary.BigEndian.Uint16(src[0:2])) + uint32(binary.BigEndian.Uint16(src[2:4])) +
		uint32(binary.BigEndian.Uint16(dst[0:2])) + uint32(binary.BigEndian.Uint16(dst[2:4])) +
		uint32(proto) + uint32(length)
}

// PseudoHeaderChecksumV6 returns the unfolded sum of the IPv6 pseudo-header
// (RFC 8200 section 8.1) for upper-layer protocol proto (the final next
// header value) and upper-layer packet length length, to pass as Checksum's
// initial value.
func PseudoHeaderChecksumV6(proto uint8, src, dst [16]byte, length uint32) uint32 {
	s := uint32(proto) + length>>16 + length&0xffff
	for i := 0; i < 16; i += 2 {
		s += uint32(binary.BigEndian.Uint16(src[i:i+2])) + uint32(binary.BigEndian.Uint16(dst[i:i+2]))
	}
	return s
}

// Incremental update (RFC 1624 eqn. 3): when a 16-bit word m of the covered
// data becomes m', the stored checksum HC becomes
//
//	HC' = ~(~HC + ~m + m')
//
// The result equals a full recomputation, except that where recomputation
// gives 0xffff (all covered data zero) the update gives 0x0000, the other
// ones-complement zero; receivers accept either. The updated fields must sit
// at even offsets of the checksummed data (TTL and protocol form one word in
// IPv4; ports, addresses and the IPv6 hop limit's neighbour words are all
// 16-bit aligned).

// ChecksumUpdate16 returns the checksum field value old updated for one
// 16-bit word of the covered data changing from oldVal to newVal.
func ChecksumUpdate16(old, oldVal, newVal uint16) uint16 {
	return ^fold32(uint32(^old) + uint32(^oldVal) + uint32(newVal))
}

// ChecksumUpdate32 returns the checksum field value old updated for one
// 32-bit, 16-bit-aligned field of the covered data changing from oldVal to
// newVal.
func ChecksumUpdate32(old uint16, oldVal, newVal uint32) uint16 {
	s := uint32(^old) +
		uint32(^uint16(oldVal>>16)) + uint32(^uint16(oldVal)) +
		newVal>>16 + newVal&0xffff
	return ^fold32(s)
}

// ChecksumUpdateAddr4 returns the checksum field value old updated for an
// IPv4 address in the covered data (the IPv4 header, or a UDP/TCP
// pseudo-header) changing from oldAddr to newAddr.
func ChecksumUpdateAddr4(old uint16, oldAddr, newAddr [4]byte) uint16 {
	return ChecksumUpdate32(old, binary.BigEndian.Uint32(oldAddr[:]), binary.BigEndian.Uint32(newAddr[:]))
}

// ChecksumUpdateAddr16 returns the checksum field value old updated for an
// IPv6 address in the covered data (a UDP/TCP/ICMPv6 pseudo-header)
// changing from oldAddr to newAddr.
func ChecksumUpdateAddr16(old uint16, oldAddr, newAddr [16]byte) uint16 {
	s := uint32(^old)
	for i := 0; i < 16; i += 2 {
		s += uint32(^binary.BigEndian.Uint16(oldAddr[i:i+2])) + uint32(binary.BigEndian.Uint16(newAddr[i:i+2]))
	}
	return ^fold32(s)
}
