package proto

import "encoding/binary"

// Ethernet II header (IEEE 802.3 clause 3.2, DIX framing):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination MAC Address                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                      Source MAC Address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The frame check sequence is not part of what AF_XDP delivers.
const (
	ethDst       = 0
	ethSrc       = 6
	ethEtherType = 12

	// EthernetLen is the length of an Ethernet II header without tags.
	EthernetLen = 14
)

// EtherType values (IEEE Registration Authority).
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100 // IEEE 802.1Q customer VLAN tag (C-tag)
	EtherTypeIPv6 uint16 = 0x86dd
	EtherTypeQinQ uint16 = 0x88a8 // IEEE 802.1ad service VLAN tag (S-tag)
)

// BroadcastMAC is the Ethernet broadcast address ff:ff:ff:ff:ff:ff. Treat
// it as a constant.
var BroadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Ethernet is a view of an Ethernet II frame: the 14-byte header followed by
// the payload (which starts with VLAN tags when EtherType is EtherTypeVLAN or
// EtherTypeQinQ; see SkipVLANs). Make one with ParseEthernet.
type Ethernet []byte

// ParseEthernet returns b as an Ethernet view after checking that it holds
// a whole header. The view covers all of b.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetLen {
		return nil, perr(LayerEthernet, ErrTooShort)
	}
	return Ethernet(b), nil
}

func (e Ethernet) hdr() *[EthernetLen]byte { return (*[EthernetLen]byte)(e) }

// Dst returns the destination MAC address.
func (e Ethernet) Dst() [6]byte { return [6]byte(e.hdr()[ethDst : ethDst+6]) }

// Src returns the source MAC address.
func (e Ethernet) Src() [6]byte { return [6]byte(e.hdr()[ethSrc : ethSrc+6]) }

// EtherType returns the EtherType field: the payload's protocol, or the TPID
// of the first VLAN tag.
func (e Ethernet) EtherType() uint16 {
	return binary.BigEndian.Uint16(e.hdr()[ethEtherType : ethEtherType+2])
}

// Payload returns the bytes after the 14-byte header.
func (e Ethernet) Payload() []byte { return e[EthernetLen:] }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(a [6]byte) { copy(e.hdr()[ethDst:ethDst+6], a[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(a [6]byte) { copy(e.hdr()[ethSrc:ethSrc+6], a[:]) }

// SetEtherType sets the EtherType field.
func (e Ethernet) SetEtherType(t uint16) {
	binary.BigEndian.PutUint16(e.hdr()[ethEtherType:ethEtherType+2], t)
}

// SwapAddrs exchanges the source and destination MAC addresses, as a
// reflector or an XDP_TX-style responder does.
func (e Ethernet) SwapAddrs() {
	h := e.hdr()
	d, s := [6]byte(h[ethDst:ethDst+6]), [6]byte(h[ethSrc:ethSrc+6])
	copy(h[ethDst:ethDst+6], s[:])
	copy(h[ethSrc:ethSrc+6], d[:])
}

// IsMulticastMAC reports whether a is a group (multicast or broadcast)
// address: the least significant bit of its first octet is set.
func IsMulticastMAC(a [6]byte) bool { return a[0]&1 != 0 }

// AppendEthernet appends a 14-byte Ethernet II header to b.
func AppendEthernet(b []byte, dst, src [6]byte, etherType uint16) []byte {
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	return binary.BigEndian.AppendUint16(b, etherType)
}
