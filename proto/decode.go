package proto

import "encoding/binary"

// Decode is the pipeline's one-pass decoder: it walks a frame's headers
// once, validating each length it uses, and records offsets and the flow
// key in a caller-owned Decoded. It reads the frame with encoding/binary at
// computed offsets instead of building views, does not allocate, and does
// not verify transport checksums (NICs and later stages do).

// maxVLANTags is how many VLAN tags Decode accepts (802.1ad S-tag and
// 802.1Q C-tag).
const maxVLANTags = 2

// DecodeOptions configures Decode. A nil *DecodeOptions means the zero
// value: no QUIC decoding, no IPv4 header checksum check.
type DecodeOptions struct {
	// QUICPorts lists UDP ports on which the UDP payload is decoded as
	// QUIC when either the source or the destination port matches.
	QUICPorts []uint16
	// QUICShortDCIDLen is the length of the destination connection ID of
	// short header packets: the length of the IDs this host issues (0 to
	// 20).
	QUICShortDCIDLen int
	// VerifyIPv4Checksum makes Decode check the IPv4 header checksum and
	// return ErrBadChecksum on a mismatch.
	VerifyIPv4Checksum bool
}

// DefaultDecodeOptions returns options that decode QUIC on UDP port 443
// with 8-byte short header connection IDs and leave checksums to the NIC.
func DefaultDecodeOptions() DecodeOptions {
	return DecodeOptions{QUICPorts: []uint16{443}, QUICShortDCIDLen: 8}
}

// Decoded is what Decode learns about a frame. Offsets are from the start
// of the frame; an offset of 0 means the layer is absent. It holds no
// pointers, so reusing one per packet costs no GC work.
type Decoded struct {
	// Flow is the transport flow key (see FlowKey): family, addresses and
	// IP protocol for every IP packet, ports for TCP and UDP unless the
	// packet is a fragment.
	Flow FlowKey

	EtherType   uint16              // EtherType field of the Ethernet header (the outer TPID if tagged)
	L3Proto     uint16              // EtherType of the L3 header after any VLAN tags
	VLANs       [maxVLANTags]uint16 // tag control information (PCP, DEI, VID = TCI&0xfff), outer first
	NumVLANs    uint8               // tags used in VLANs
	L4Proto     uint8               // IP protocol (IPv6: after extension headers); 0 if not IP
	Frag        bool                // the IP packet is a fragment (first or later)
	LaterFrag   bool                // a fragment other than the first: there is no L4 header, L4Off is 0
	HasQUIC     bool                // the UDP payload was decoded as QUIC
	QUICType    QUICPacketType      // QUIC packet type, if HasQUIC
	_           [2]byte             // padding, kept explicit
	L3Off       int                 // start of the ARP/IPv4/IPv6 header (the L2 header length)
	L3End       int                 // end of the IP packet (IPv4 total length, IPv6 40+payload length) or ARP message; frame bytes after it are link padding
	L4Off       int                 // start of the ICMP/TCP/UDP (or other upper-layer) header
	PayloadOff  int                 // start of the L4 payload (after the TCP/UDP/ICMP header), or of the upper-layer header for other protocols
	QUICVersion uint32              // long header version, if HasQUIC and long
	QUICPNOff   int                 // start of the (protected) packet number; 0 if unknown (Retry, version negotiation, unknown versions)
	QUICDCID    ConnID              // destination connection ID (long header DCIDs over 20 bytes are left empty)
}

// Decode decodes the headers of an Ethernet frame into d, overwriting all
// of it: Ethernet; up to two 802.1Q/802.1ad VLAN tags; ARP (as L3 only),
// IPv4 (with options) or IPv6 (with extension headers); the ICMPv4, ICMPv6,
// UDP or TCP header; and, on UDP ports listed in opts, the QUIC long or
// short header. Other EtherTypes and IP protocols end decoding without an
// error at the layer Decode does not know (L3Proto or L4Proto tells which).
//
// On error, the fields of the layers decoded before the failing one are
// valid. Errors are *ParseError values wrapping the sentinels
// (ErrTooShort, ErrBadVersion, …) with the failing layer; a third VLAN tag
// is ErrTooManyHeaders. Decode does not allocate.
func Decode(frame []byte, d *Decoded, opts *DecodeOptions) error {
	*d = Decoded{}
	b := frame
	if len(b) < EthernetLen {
		return perr(LayerEthernet, ErrTooShort)
	}
	et := binary.BigEndian.Uint16(b[12:14])
	d.EtherType = et
	off := EthernetLen
	for et == EtherTypeVLAN || et == EtherTypeQinQ {
		if d.NumVLANs >= maxVLANTags {
			return perr(LayerVLAN, ErrTooManyHeaders)
		}
		if len(b) < off+VLANLen {
			return perr(LayerVLAN, ErrTooShort)
		}
		t := b[off : off+VLANLen]
		d.VLANs[d.NumVLANs&1] = binary.BigEndian.Uint16(t[0:2])
		et = binary.BigEndian.Uint16(t[2:4])
		d.NumVLANs++
		off += VLANLen
	}
	d.L3Off = off
	d.L3Proto = et
	switch et {
	case EtherTypeIPv4:
		return decodeIPv4(b, off, d, opts)
	case EtherTypeIPv6:
		return decodeIPv6(b, off, d, opts)
	case EtherTypeARP:
		if _, err := ParseARP(b[off:]); err != nil {
			return err
		}
		d.L3End = off + ARPLen
	}
	return nil
}

func decodeIPv4(b []byte, off int, d *Decoded, opts *DecodeOptions) error {
	if off > len(b) {
		return perr(LayerIPv4, ErrTooShort)
	}
	h := b[off:]
	if len(h) < IPv4MinHeaderLen {
		return perr(LayerIPv4, ErrTooShort)
	}
	f := (*[IPv4MinHeaderLen]byte)(h)
	if f[ipv4VersIHL]>>4 != 4 {
		return perr(LayerIPv4, ErrBadVersion)
	}
	ihl := int(f[ipv4VersIHL]&0x0f) * 4
	if ihl < IPv4MinHeaderLen {
		return perr(LayerIPv4, ErrBadHeaderLength)
	}
	if ihl > len(h) {
		return perr(LayerIPv4, ErrTooShort)
	}
	tl := int(binary.BigEndian.Uint16(f[ipv4TotalLen:]))
	if tl < ihl {
		return perr(LayerIPv4, ErrLengthMismatch)
	}
	if tl > len(h) {
		return perr(LayerIPv4, ErrTooShort)
	}
	if opts != nil && opts.VerifyIPv4Checksum && Checksum(h[:ihl], 0) != 0xffff {
		return perr(LayerIPv4, ErrBadChecksum)
	}
	k := &d.Flow
	k.Family = FamilyIPv4
	binary.LittleEndian.PutUint64(k.Src[0:8], 0)
	binary.LittleEndian.PutUint64(k.Src[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(f[ipv4Src:]))<<32)
	binary.LittleEndian.PutUint64(k.Dst[0:8], 0)
	binary.LittleEndian.PutUint64(k.Dst[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(f[ipv4Dst:]))<<32)
	proto := f[ipv4Protocol]
	k.Proto = proto
	d.L4Proto = proto
	end := off + tl
	d.L3End = end
	l4 := off + ihl
	if fo := binary.BigEndian.Uint16(f[ipv4FlagsFrag:]); fo&(uint16(IPv4FlagMoreFragments)<<ipv4FlagsShift|ipv4FragMask) != 0 {
		d.Frag = true
		if fo&ipv4FragMask != 0 {
			d.LaterFrag = true
			d.PayloadOff = l4
			return nil
		}
	}
	return decodeL4(b[:end], l4, proto, d, opts)
}

func decodeIPv6(b []byte, off int, d *Decoded, opts *DecodeOptions) error {
	if off > len(b) {
		return perr(LayerIPv6, ErrTooShort)
	}
	h := b[off:]
	if len(h) < IPv6HeaderLen {
		return perr(LayerIPv6, ErrTooShort)
	}
	f := (*[IPv6HeaderLen]byte)(h)
	if f[0]>>4 != 6 {
		return perr(LayerIPv6, ErrBadVersion)
	}
	pl := int(binary.BigEndian.Uint16(f[ipv6PayloadLen:]))
	if pl == 0 && f[ipv6NextHeader] == IPProtoHopByHop {
		return perr(LayerIPv6, ErrUnsupported) // RFC 2675 jumbogram
	}
	if pl > len(h)-IPv6HeaderLen {
		return perr(LayerIPv6, ErrTooShort)
	}
	k := &d.Flow
	k.Family = FamilyIPv6
	k.Src = [16]byte(f[ipv6Src : ipv6Src+16])
	k.Dst = [16]byte(f[ipv6Dst : ipv6Dst+16])
	end := off + IPv6HeaderLen + pl
	d.L3End = end
	proto := f[ipv6NextHeader]
	l4 := off + IPv6HeaderLen
	switch proto {
	case IPProtoTCP, IPProtoUDP, IPProtoICMPv6, IPProtoNoNext, IPProtoESP, IPProtoGRE, IPProtoIPIP, IPProtoIPv6:
		// Not an extension header that WalkIPv6 would step over.
	default:
		ext, err := WalkIPv6(IPv6(h[: IPv6HeaderLen+pl : IPv6HeaderLen+pl]))
		if err != nil {
			return err
		}
		if ext.Offset < IPv6HeaderLen || ext.Offset > IPv6HeaderLen+pl {
			return perr(LayerIPv6Ext, ErrBadHeaderLength)
		}
		proto = ext.Proto
		l4 = off + ext.Offset
		if ext.FragOffset >= 0 {
			d.Frag = true
			fo := off + ext.FragOffset + ipv6FragOffM
			if fo < 0 || fo+2 > end {
				return perr(LayerIPv6Ext, ErrTooShort)
			}
			if binary.BigEndian.Uint16(b[fo:])&^7 != 0 {
				d.LaterFrag = true
				k.Proto = proto
				d.L4Proto = proto
				d.PayloadOff = l4
				return nil
			}
		}
	}
	k.Proto = proto
	d.L4Proto = proto
	return decodeL4(b[:end], l4, proto, d, opts)
}

// decodeL4 decodes the upper-layer header at b[off:]; b ends at the end of
// the IP packet.
func decodeL4(b []byte, off int, proto uint8, d *Decoded, opts *DecodeOptions) error {
	d.L4Off = off
	if off > len(b) {
		return perr(LayerNone, ErrTooShort)
	}
	h := b[off:]
	switch proto {
	case IPProtoTCP:
		if len(h) < TCPMinHeaderLen {
			return perr(LayerTCP, ErrTooShort)
		}
		t := (*[TCPMinHeaderLen]byte)(h)
		hl := int(t[tcpDataOffset]>>4) * 4
		if hl < TCPMinHeaderLen {
			return perr(LayerTCP, ErrBadHeaderLength)
		}
		if hl > len(h) {
			return perr(LayerTCP, ErrTooShort)
		}
		d.PayloadOff = off + hl
		if !d.Frag {
			d.Flow.SrcPort = binary.BigEndian.Uint16(t[tcpSrcPort:])
			d.Flow.DstPort = binary.BigEndian.Uint16(t[tcpDstPort:])
		}
	case IPProtoUDP:
		if len(h) < UDPHeaderLen {
			return perr(LayerUDP, ErrTooShort)
		}
		u := (*[UDPHeaderLen]byte)(h)
		d.PayloadOff = off + UDPHeaderLen
		if d.Frag {
			// The Length field covers the whole datagram, not this
			// fragment; ports are left out of the flow key.
			return nil
		}
		ul := int(binary.BigEndian.Uint16(u[udpLength:]))
		if ul < UDPHeaderLen {
			return perr(LayerUDP, ErrBadHeaderLength)
		}
		if ul > len(h) {
			return perr(LayerUDP, ErrTooShort)
		}
		sp := binary.BigEndian.Uint16(u[udpSrcPort:])
		dp := binary.BigEndian.Uint16(u[udpDstPort:])
		d.Flow.SrcPort, d.Flow.DstPort = sp, dp
		if opts != nil && ul > UDPHeaderLen {
			for _, p := range opts.QUICPorts {
				if p == sp || p == dp {
					return decodeQUIC(h[UDPHeaderLen:ul], d.PayloadOff, d, opts)
				}
			}
		}
	case IPProtoICMP:
		if d.Flow.Family != FamilyIPv4 {
			d.PayloadOff = off
			return nil
		}
		if len(h) < ICMPv4HeaderLen {
			return perr(LayerICMPv4, ErrTooShort)
		}
		d.PayloadOff = off + ICMPv4HeaderLen
	case IPProtoICMPv6:
		if d.Flow.Family != FamilyIPv6 {
			d.PayloadOff = off
			return nil
		}
		if len(h) < ICMPv6HeaderLen {
			return perr(LayerICMPv6, ErrTooShort)
		}
		d.PayloadOff = off + ICMPv6HeaderLen
	default:
		d.PayloadOff = off
	}
	return nil
}

// decodeQUIC decodes the QUIC header at the start of p, the non-empty UDP
// payload, which starts at frame offset base.
func decodeQUIC(p []byte, base int, d *Decoded, opts *DecodeOptions) error {
	if len(p) == 0 {
		return nil
	}
	if p[0]&quicFormBit == 0 {
		n := 1 + opts.QUICShortDCIDLen
		if opts.QUICShortDCIDLen < 0 || opts.QUICShortDCIDLen > MaxConnIDLen {
			return perr(LayerQUIC, ErrBadValue)
		}
		if len(p) < n {
			return perr(LayerQUIC, ErrTooShort)
		}
		d.HasQUIC = true
		d.QUICType = QUICPacketShort
		d.QUICDCID.l = uint8(copy(d.QUICDCID.b[:], p[1:n]))
		d.QUICPNOff = base + n
		return nil
	}
	lh, _, err := ParseQUICLongHeader(p)
	if err != nil {
		return err
	}
	d.HasQUIC = true
	d.QUICType = lh.Type
	d.QUICVersion = lh.Version
	if lh.PNOffset > 0 {
		d.QUICPNOff = base + lh.PNOffset
	}
	if len(lh.DCID) <= MaxConnIDLen {
		d.QUICDCID.l = uint8(copy(d.QUICDCID.b[:], lh.DCID))
	}
	return nil
}
