package proto

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Address families of a FlowKey.
const (
	FamilyNone uint8 = 0
	FamilyIPv4 uint8 = 4
	FamilyIPv6 uint8 = 6
)

// FlowKey identifies a transport flow: the 5-tuple plus the address family.
// It is comparable and fixed-size, so it can be a map key without
// allocating.
//
// Addresses are held in 16 bytes for both families. An IPv4 address is
// stored IPv4-mapped (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2), so that
// netip.AddrFrom16(k.Src).Unmap() gives it back and it can never equal an
// IPv6 address of a key with Family 6 in a way that matters: Family is part
// of the key anyway.
//
// Ports are zero for protocols without ports (ICMP, GRE, …) and for IP
// fragments, whose later pieces carry no transport header: every fragment
// of a datagram gets the same key.
type FlowKey struct {
	Src, Dst         [16]byte // addresses; IPv4 ones IPv4-mapped
	SrcPort, DstPort uint16   // TCP/UDP ports, or 0
	Proto            uint8    // IP protocol number
	Family           uint8    // FamilyIPv4, FamilyIPv6, or FamilyNone for non-IP
}

// v4MappedHi is the little-endian load of bytes 8..15 of ::ffff:0.0.0.0.
const v4MappedHi = 0xffff << 16

// SetIPv4 sets Family to FamilyIPv4 and the addresses to src and dst,
// IPv4-mapped.
func (k *FlowKey) SetIPv4(src, dst [4]byte) {
	k.Family = FamilyIPv4
	binary.LittleEndian.PutUint64(k.Src[0:8], 0)
	binary.LittleEndian.PutUint64(k.Src[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(src[:]))<<32)
	binary.LittleEndian.PutUint64(k.Dst[0:8], 0)
	binary.LittleEndian.PutUint64(k.Dst[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(dst[:]))<<32)
}

// SetIPv6 sets Family to FamilyIPv6 and the addresses to src and dst.
func (k *FlowKey) SetIPv6(src, dst [16]byte) {
	k.Family = FamilyIPv6
	k.Src, k.Dst = src, dst
}

// SrcAddr returns the source address (an IPv4 address for Family 4), or
// the zero netip.Addr for FamilyNone.
func (k FlowKey) SrcAddr() netip.Addr { return flowAddr(k.Family, &k.Src) }

// DstAddr returns the destination address.
func (k FlowKey) DstAddr() netip.Addr { return flowAddr(k.Family, &k.Dst) }

func flowAddr(family uint8, a *[16]byte) netip.Addr {
	switch family {
	case FamilyIPv4:
		return netip.AddrFrom4([4]byte(a[12:16]))
	case FamilyIPv6:
		return netip.AddrFrom16(*a)
	}
	return netip.Addr{}
}

// Reverse returns the key of the opposite direction: addresses and ports
// swapped.
func (k FlowKey) Reverse() FlowKey {
	k.Src, k.Dst = k.Dst, k.Src
	k.SrcPort, k.DstPort = k.DstPort, k.SrcPort
	return k
}

// Multipliers and offsets of the hash: odd 64-bit constants from wyhash.
const (
	hashK0 = 0xa0761d6478bd642f
	hashK1 = 0xe7037ed1a0b428db
	hashK2 = 0x8ebc6af09c88c6e3
	hashK3 = 0x589965cc75374cc3
	hashK4 = 0x1d8e4e27c47d124f
)

// mum is wyhash's mixing step: the 128-bit product of a and b folded to 64
// bits.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashEndpoint hashes one (address, port) endpoint.
func hashEndpoint(a *[16]byte, port uint16, seed uint64) uint64 {
	w0 := binary.LittleEndian.Uint64(a[0:8])
	w1 := binary.LittleEndian.Uint64(a[8:16])
	h := mum(w0^seed^hashK0, w1^hashK1)
	return mum(h^uint64(port)^hashK2, seed^hashK3)
}

// Hash returns a seeded hash of k that is symmetric: k.Hash(s) ==
// k.Reverse().Hash(s), so both directions of a connection land on the same
// shard. Each endpoint (address, port) is hashed on its own and the two
// results are ordered before the final mix, so the hash does not depend on
// which endpoint is the source. It mixes with 64x64->128-bit multiplies
// (wyhash's mum), does not allocate, and with a random seed resists
// crafted collisions about as well as a fast non-cryptographic hash can.
//
// The receiver is a pointer so that hashing d.Flow right after Decode reads
// the key in place, in the 8-byte words Decode stored: a by-value call
// copies the key with 16-byte loads that cannot be forwarded from those
// stores and stalls for tens of cycles.
func (k *FlowKey) Hash(seed uint64) uint32 {
	a := hashEndpoint(&k.Src, k.SrcPort, seed)
	b := hashEndpoint(&k.Dst, k.DstPort, seed)
	lo, hi := min(a, b), max(a, b)
	h := mum(lo^hashK4^uint64(k.Proto)<<8^uint64(k.Family), hi^seed^hashK0)
	return uint32(h ^ h>>32)
}

// Hash returns a seeded hash of the connection ID, for steering QUIC
// packets by destination connection ID, which stays the same across client
// address changes (RFC 9000 section 9) where the 5-tuple does not. It is not
// symmetric: each endpoint chooses the IDs that the other puts in DCID. Like
// FlowKey.Hash it reads the ID in place.
func (c *ConnID) Hash(seed uint64) uint32 {
	w0 := binary.LittleEndian.Uint64(c.b[0:8])
	w1 := binary.LittleEndian.Uint64(c.b[8:16])
	w2 := uint64(binary.LittleEndian.Uint32(c.b[16:20])) | uint64(c.l)<<32
	h := mum(w0^seed^hashK0, w1^hashK1)
	h = mum(h^w2^hashK2, seed^hashK3)
	return uint32(h ^ h>>32)
}
