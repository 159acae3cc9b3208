package proto

import (
	"encoding/binary"
	"net/netip"
)

// ARP for IPv4 over Ethernet (RFC 826):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Hardware Type (1)        |    Protocol Type (0x0800)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HLEN (6)     |  PLEN (4)     |           Operation           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sender Hardware Address (6)                   |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |   Sender Protocol Address (4) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                 Target Hardware Address (6)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Target Protocol Address (4)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	arpHType    = 0
	arpPType    = 2
	arpHLen     = 4
	arpPLen     = 5
	arpOp       = 6
	arpSenderHW = 8
	arpSenderIP = 14
	arpTargetHW = 18
	arpTargetIP = 24

	// ARPLen is the length of an ARP packet for IPv4 over Ethernet.
	ARPLen = 28

	arpHTypeEthernet = 1
)

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARP is a view of an ARP packet for IPv4 over Ethernet. Make one with
// ParseARP.
type ARP []byte

// ParseARP checks that b starts with an ARP packet for IPv4 over Ethernet
// and returns a view of its 28 bytes (trailing Ethernet padding excluded).
// A hardware type other than Ethernet or a protocol type other than IPv4 is
// ErrUnsupported; address lengths other than 6 and 4 are ErrBadValue.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, perr(LayerARP, ErrTooShort)
	}
	h := (*[ARPLen]byte)(b)
	if binary.BigEndian.Uint16(h[arpHType:arpHType+2]) != arpHTypeEthernet ||
		binary.BigEndian.Uint16(h[arpPType:arpPType+2]) != EtherTypeIPv4 {
		return nil, perr(LayerARP, ErrUnsupported)
	}
	if h[arpHLen] != 6 || h[arpPLen] != 4 {
		return nil, perr(LayerARP, ErrBadValue)
	}
	return ARP(h[:]), nil
}

func (a ARP) hdr() *[ARPLen]byte { return (*[ARPLen]byte)(a) }

// Op returns the operation (ARPRequest, ARPReply).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a.hdr()[arpOp : arpOp+2]) }

// SenderHW returns the sender hardware address.
func (a ARP) SenderHW() [6]byte { return [6]byte(a.hdr()[arpSenderHW : arpSenderHW+6]) }

// SenderIPArray returns the sender protocol address.
func (a ARP) SenderIPArray() [4]byte { return [4]byte(a.hdr()[arpSenderIP : arpSenderIP+4]) }

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() netip.Addr { return netip.AddrFrom4(a.SenderIPArray()) }

// TargetHW returns the target hardware address.
func (a ARP) TargetHW() [6]byte { return [6]byte(a.hdr()[arpTargetHW : arpTargetHW+6]) }

// TargetIPArray returns the target protocol address.
func (a ARP) TargetIPArray() [4]byte { return [4]byte(a.hdr()[arpTargetIP : arpTargetIP+4]) }

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() netip.Addr { return netip.AddrFrom4(a.TargetIPArray()) }

// SetOp sets the operation.
func (a ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(a.hdr()[arpOp:arpOp+2], op) }

// SetSenderHW sets the sender hardware address.
func (a ARP) SetSenderHW(hw [6]byte) { copy(a.hdr()[arpSenderHW:arpSenderHW+6], hw[:]) }

// SetSenderIP sets the sender protocol address.
func (a ARP) SetSenderIP(ip [4]byte) { copy(a.hdr()[arpSenderIP:arpSenderIP+4], ip[:]) }

// SetTargetHW sets the target hardware address.
func (a ARP) SetTargetHW(hw [6]byte) { copy(a.hdr()[arpTargetHW:arpTargetHW+6], hw[:]) }

// SetTargetIP sets the target protocol address.
func (a ARP) SetTargetIP(ip [4]byte) { copy(a.hdr()[arpTargetIP:arpTargetIP+4], ip[:]) }

// AppendARP appends a 28-byte ARP packet for IPv4 over Ethernet to b. For a
// request targetHW is usually all zeros.
func AppendARP(b []byte, op uint16, senderHW [6]byte, senderIP [4]byte, targetHW [6]byte, targetIP [4]byte) []byte {
	b = append(b, 0, arpHTypeEthernet, byte(EtherTypeIPv4>>8), byte(EtherTypeIPv4&0xff), 6, 4, byte(op>>8), byte(op))
	b = append(b, senderHW[:]...)
	b = append(b, senderIP[:]...)
	b = append(b, targetHW[:]...)
	return append(b, targetIP[:]...)
}
