package neighbor

import (
	"net/netip"

	"github.com/tygress/tygress/proto"
)

// Kind says what an Action asks for.
type Kind uint8

// Action kinds.
const (
	// SendARPRequest: an ARP request for Target from Src (0.0.0.0 for a
	// probe), to DstMAC (broadcast, or the cached MAC when probing). A
	// gratuitous ARP (announcement) has Src == Target.
	SendARPRequest Kind = iota + 1
	// SendARPReply: an ARP reply saying Src is at SrcMAC, to Dst at DstMAC.
	SendARPReply
	// SendNS: a neighbor solicitation for Target from Src to Dst (Target's
	// solicited-node group, or Target itself when probing) at DstMAC. With
	// Src unspecified it is a DAD probe and carries no link-layer option.
	SendNS
	// SendNA: a neighbor advertisement for Target from Src to Dst at DstMAC
	// with Flags (proto.NDPFlagSolicited, proto.NDPFlagOverride).
	SendNA
	// DADSucceeded: tentative address Target is now assigned. Nothing to
	// send; the caller may call Announce.
	DADSucceeded
	// DADFailed: tentative address Target is in use by another node and
	// was removed (RFC 4862 section 5.4.5). Nothing to send.
	DADFailed
)

var kindNames = [...]string{"", "SendARPRequest", "SendARPReply", "SendNS", "SendNA", "DADSucceeded", "DADFailed"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Action is something the table wants the caller to do, given to Sink.Send.
// For the Send kinds AppendFrame writes the whole Ethernet frame.
type Action struct {
	Kind   Kind
	Src    netip.Addr // our address (sender); unspecified for probes
	Dst    netip.Addr // IPv6 destination, or the ARP target of a reply
	Target netip.Addr // the address being resolved or advertised
	SrcMAC [6]byte    // our MAC
	DstMAC [6]byte    // Ethernet destination
	Flags  uint8      // NA flags
}

// AppendFrame appends the Ethernet frame a describes (header included, no
// padding to the 60-byte minimum; AF_XDP does not need it) to b, built with
// the proto encoders. Kinds that send nothing append nothing. With b of
// capacity FrameLen or more it does not allocate.
func (a *Action) AppendFrame(b []byte) []byte {
	switch a.Kind {
	case SendARPRequest, SendARPReply:
		b = proto.AppendEthernet(b, a.DstMAC, a.SrcMAC, proto.EtherTypeARP)
		if a.Kind == SendARPRequest {
			return proto.AppendARP(b, proto.ARPRequest, a.SrcMAC, as4(a.Src), [6]byte{}, as4(a.Target))
		}
		return proto.AppendARP(b, proto.ARPReply, a.SrcMAC, as4(a.Src), a.DstMAC, as4(a.Dst))
	case SendNS, SendNA:
		b = proto.AppendEthernet(b, a.DstMAC, a.SrcMAC, proto.EtherTypeIPv6)
		src, dst, tgt := a.Src.As16(), a.Dst.As16(), a.Target.As16()
		n := 24 + 8
		ll := a.SrcMAC
		if a.Kind == SendNS && a.Src.IsUnspecified() {
			n, ll = 24, [6]byte{}
		}
		f := proto.IPv6Fields{PayloadLength: uint16(n), NextHeader: proto.IPProtoICMPv6, HopLimit: 255, Src: src, Dst: dst}
		b = proto.AppendIPv6(b, &f)
		if a.Kind == SendNS {
			return proto.AppendICMPv6NeighborSolicitation(b, src, dst, tgt, ll)
		}
		return proto.AppendICMPv6NeighborAdvertisement(b, src, dst, tgt, a.Flags, ll)
	}
	return b
}

// as4 is Addr.As4 without the panic: 0.0.0.0 for anything but IPv4.
func as4(a netip.Addr) [4]byte {
	if a = a.Unmap(); a.Is4() {
		return a.As4()
	}
	return [4]byte{}
}

// FrameLen is the longest frame AppendFrame writes: Ethernet, IPv6 and an
// NS or NA with a link-layer option.
const FrameLen = proto.EthernetLen + proto.IPv6HeaderLen + 24 + 8

// MulticastMAC returns the Ethernet group address for multicast IP address
// a (RFC 1112 section 6.4 for IPv4, RFC 2464 section 7 for IPv6), or the
// broadcast address for 255.255.255.255, and false for anything else.
func MulticastMAC(a netip.Addr) ([6]byte, bool) {
	a = a.Unmap()
	switch {
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return proto.BroadcastMAC, true
	case a.Is4() && a.IsMulticast():
		b := a.As4()
		return [6]byte{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}, true
	case a.Is6() && a.IsMulticast():
		b := a.As16()
		return [6]byte{0x33, 0x33, b[12], b[13], b[14], b[15]}, true
	}
	return [6]byte{}, false
}

// SolicitedNode returns the solicited-node multicast address of IPv6
// address a (RFC 4291 section 2.7.1): ff02::1:ffXX:XXXX.
func SolicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

var allNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})
