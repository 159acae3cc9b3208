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
	// One function, no calls on the common paths: the Go inliner would not
	// inline per-layer helpers of this size, and each call costs more than
	// a header's worth of checks. The calls that remain are in tail
	// position or on the IPv6 extension header path: a call in the middle
	// makes the compiler spill arguments and locals on every path that
	// leads to it.
	//
	// Headers are read through fixed-size array pointers made with
	// three-index slices (b[o : o+n : o+n]): their capacity is the
	// constant n, so the compiler drops the pointer mask of an open-ended
	// slice (b[o:]) and checks bounds once per header, not per field.
	// Lengths are kept as frame offsets (l4, end) rather than as
	// re-sliced views.
	*d = Decoded{}
	b := frame
	if len(b) < EthernetLen {
		return decodeErrs[LayerEthernet][eTooShort]
	}
	et := binary.BigEndian.Uint16(b[12:14])
	d.EtherType = et
	off := EthernetLen
	if et == EtherTypeVLAN || et == EtherTypeQinQ {
		// Unrolled for the two tags Decode accepts. Each tag goes straight
		// to its own field: collecting them in a local array and copying
		// it with one 4-byte load stalled on store forwarding, since the
		// load spans two 2-byte stores.
		if len(b) < EthernetLen+VLANLen {
			return decodeErrs[LayerVLAN][eTooShort]
		}
		t := (*[EthernetLen + VLANLen]byte)(b)
		d.VLANs[0] = binary.BigEndian.Uint16(t[EthernetLen:])
		et = binary.BigEndian.Uint16(t[EthernetLen+2:])
		d.NumVLANs = 1
		off = EthernetLen + VLANLen
		if et == EtherTypeVLAN || et == EtherTypeQinQ {
			if len(b) < EthernetLen+2*VLANLen {
				return decodeErrs[LayerVLAN][eTooShort]
			}
			t := (*[EthernetLen + 2*VLANLen]byte)(b)
			d.VLANs[1] = binary.BigEndian.Uint16(t[EthernetLen+VLANLen:])
			et = binary.BigEndian.Uint16(t[EthernetLen+VLANLen+2:])
			d.NumVLANs = 2
			off = EthernetLen + 2*VLANLen
			if et == EtherTypeVLAN || et == EtherTypeQinQ {
				return decodeErrs[LayerVLAN][eTooManyHeaders]
			}
		}
	}
	d.L3Off = off
	d.L3Proto = et
	k := &d.Flow

	// L3: set l4 and end (the frame offsets of the upper-layer header and
	// of the end of the IP packet, end <= len(b)) and proto, or return.
	var l4, end int
	var proto uint8
	var frag bool
	room := len(b) - off // bytes from the L3 header on
	// An if chain rather than a switch: IPv4, then IPv6, one compare each.
	if et == EtherTypeIPv4 {
		if room < IPv4MinHeaderLen {
			return decodeErrs[LayerIPv4][eTooShort]
		}
		f := (*[IPv4MinHeaderLen]byte)(b[off : off+IPv4MinHeaderLen : off+IPv4MinHeaderLen])
		vihl := f[ipv4VersIHL]
		if vihl>>4 != 4 {
			return decodeErrs[LayerIPv4][eBadVersion]
		}
		ihl := int(vihl&0x0f) * 4
		if ihl < IPv4MinHeaderLen {
			return decodeErrs[LayerIPv4][eBadHeaderLength]
		}
		if ihl > room {
			return decodeErrs[LayerIPv4][eTooShort]
		}
		tl := int(binary.BigEndian.Uint16(f[ipv4TotalLen:]))
		if tl < ihl {
			return decodeErrs[LayerIPv4][eLengthMismatch]
		}
		if tl > room {
			return decodeErrs[LayerIPv4][eTooShort]
		}
		if opts != nil && opts.VerifyIPv4Checksum {
			// Checked here rather than on entry, where it would cost
			// every frame: decodeVerify decodes the frame again and
			// checks the checksum of the header that just passed.
			return decodeVerify(frame, d, opts)
		}
		k.Family = FamilyIPv4
		binary.LittleEndian.PutUint64(k.Src[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(f[ipv4Src:]))<<32)
		binary.LittleEndian.PutUint64(k.Dst[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(f[ipv4Dst:]))<<32)
		proto = f[ipv4Protocol]
		k.Proto = proto
		d.L4Proto = proto
		end = off + tl
		d.L3End = end
		l4 = off + ihl
		if fo := binary.BigEndian.Uint16(f[ipv4FlagsFrag:]); fo&(uint16(IPv4FlagMoreFragments)<<ipv4FlagsShift|ipv4FragMask) != 0 {
			d.Frag, frag = true, true
			if fo&ipv4FragMask != 0 {
				d.LaterFrag = true
				d.PayloadOff = l4
				return nil
			}
		}
	} else if et == EtherTypeIPv6 {
		if room < IPv6HeaderLen {
			return decodeErrs[LayerIPv6][eTooShort]
		}
		f := (*[IPv6HeaderLen]byte)(b[off : off+IPv6HeaderLen : off+IPv6HeaderLen])
		if f[0]>>4 != 6 {
			return decodeErrs[LayerIPv6][eBadVersion]
		}
		pl := int(binary.BigEndian.Uint16(f[ipv6PayloadLen:]))
		proto = f[ipv6NextHeader]
		if pl == 0 && proto == IPProtoHopByHop {
			return decodeErrs[LayerIPv6][eUnsupported] // RFC 2675 jumbogram
		}
		if pl > room-IPv6HeaderLen {
			return decodeErrs[LayerIPv6][eTooShort]
		}
		k.Family = FamilyIPv6
		k.Src = [16]byte(f[ipv6Src : ipv6Src+16])
		k.Dst = [16]byte(f[ipv6Dst : ipv6Dst+16])
		end = off + IPv6HeaderLen + pl
		d.L3End = end
		l4 = off + IPv6HeaderLen
		if proto < 64 && ipv6ExtHeaders>>(proto&63)&1 != 0 {
			// An extension header that WalkIPv6 steps over.
			var err error
			if proto, l4, err = decodeIPv6Ext(b[off:end], off, d); err != nil || d.LaterFrag {
				return err
			}
			if l4 < off+IPv6HeaderLen || l4 > end {
				return decodeErrs[LayerIPv6Ext][eTooShort] // not reached: checked by decodeIPv6Ext
			}
			frag = d.Frag
		}
		k.Proto = proto
		d.L4Proto = proto
	} else if et == EtherTypeARP {
		return decodeARP(b[off:], off, d)
	} else {
		return nil
	}

	// L4, within the IP packet: n bytes from l4 to end.
	d.L4Off = l4
	n := end - l4
	// TCP and UDP first, in one compare each; a switch orders its cases
	// by value.
	if proto == IPProtoTCP {
		if n < TCPMinHeaderLen {
			return decodeErrs[LayerTCP][eTooShort]
		}
		t := (*[TCPMinHeaderLen]byte)(b[l4 : l4+TCPMinHeaderLen : l4+TCPMinHeaderLen])
		hl := int(t[tcpDataOffset]>>4) * 4
		if hl < TCPMinHeaderLen {
			return decodeErrs[LayerTCP][eBadHeaderLength]
		}
		if hl > n {
			return decodeErrs[LayerTCP][eTooShort]
		}
		d.PayloadOff = l4 + hl
		if !frag {
			k.SrcPort = binary.BigEndian.Uint16(t[tcpSrcPort:])
			k.DstPort = binary.BigEndian.Uint16(t[tcpDstPort:])
		}
		return nil
	}
	if proto == IPProtoUDP {
		if n < UDPHeaderLen {
			return decodeErrs[LayerUDP][eTooShort]
		}
		u := (*[UDPHeaderLen]byte)(b[l4 : l4+UDPHeaderLen : l4+UDPHeaderLen])
		d.PayloadOff = l4 + UDPHeaderLen
		if frag {
			// The Length field covers the whole datagram, not this
			// fragment; ports are left out of the flow key.
			return nil
		}
		ul := int(binary.BigEndian.Uint16(u[udpLength:]))
		if ul < UDPHeaderLen {
			return decodeErrs[LayerUDP][eBadHeaderLength]
		}
		if ul > n {
			return decodeErrs[LayerUDP][eTooShort]
		}
		sp := binary.BigEndian.Uint16(u[udpSrcPort:])
		dp := binary.BigEndian.Uint16(u[udpDstPort:])
		k.SrcPort, k.DstPort = sp, dp
		if opts != nil && ul > UDPHeaderLen {
			for _, p := range opts.QUICPorts {
				if p != sp && p != dp {
					continue
				}
				q := b[l4+UDPHeaderLen : l4+ul : l4+ul]
				if q[0]&quicFormBit != 0 {
					return decodeQUICLong(q, d)
				}
				// Short header: the DCID of the configured length.
				dl := opts.QUICShortDCIDLen
				if uint(dl) > MaxConnIDLen {
					return decodeErrs[LayerQUIC][eBadValue]
				}
				if len(q) < 1+dl {
					return decodeErrs[LayerQUIC][eTooShort]
				}
				d.HasQUIC = true
				d.QUICType = QUICPacketShort
				d.QUICPNOff = l4 + UDPHeaderLen + 1 + dl
				c := &d.QUICDCID
				c.l = uint8(dl)
				if len(q) < 1+MaxConnIDLen {
					copy(c.b[:], q[1:1+dl])
					return nil
				}
				// Load 20 bytes as three words and mask them rather than
				// call memmove for a variable-length copy; bytes past dl
				// stay zero, as ConnID's comparability needs.
				w := (*[1 + MaxConnIDLen]byte)(q)
				sh := uint(8 * dl) // bits to keep
				binary.LittleEndian.PutUint64(c.b[0:8], binary.LittleEndian.Uint64(w[1:9])&(^uint64(0)>>(64-min(sh, 64))))
				binary.LittleEndian.PutUint64(c.b[8:16], binary.LittleEndian.Uint64(w[9:17])&(^uint64(0)>>(64-(min(sh, 128)-min(sh, 64)))))
				binary.LittleEndian.PutUint32(c.b[16:20], binary.LittleEndian.Uint32(w[17:21])&(^uint32(0)>>(32-(sh-min(sh, 128)))))
				return nil
			}
		}
		return nil
	}
	switch proto {
	case IPProtoICMP:
		if et != EtherTypeIPv4 {
			d.PayloadOff = l4
			return nil
		}
		if n < ICMPv4HeaderLen {
			return decodeErrs[LayerICMPv4][eTooShort]
		}
		d.PayloadOff = l4 + ICMPv4HeaderLen
	case IPProtoICMPv6:
		if et != EtherTypeIPv6 {
			d.PayloadOff = l4
			return nil
		}
		if n < ICMPv6HeaderLen {
			return decodeErrs[LayerICMPv6][eTooShort]
		}
		d.PayloadOff = l4 + ICMPv6HeaderLen
	default:
		d.PayloadOff = l4
	}
	return nil
}

// decodeVerify is Decode with VerifyIPv4Checksum: it decodes without the
// check, then checks the checksum of a valid IPv4 header. This keeps the
// call to Checksum out of Decode's body.
func decodeVerify(frame []byte, d *Decoded, opts *DecodeOptions) error {
	o := *opts
	o.VerifyIPv4Checksum = false
	err := Decode(frame, d, &o)
	// Decode sets an IPv4 packet's L3End only once the header has passed
	// the length checks, which come before the checksum check; until then
	// (and for other EtherTypes) its result stands.
	if d.L3Proto != EtherTypeIPv4 || d.L3End == 0 || d.L3Off >= d.L3End || d.L3End > len(frame) {
		return err
	}
	h := frame[d.L3Off:d.L3End]
	if ihl := int(h[ipv4VersIHL]&0x0f) * 4; ihl > len(h) || Checksum(h[:ihl], 0) == 0xffff {
		return err
	}
	// As if decoding had stopped at the checksum: the L2 fields, the L3
	// offset and the L3 EtherType are set, nothing after them.
	*d = Decoded{EtherType: d.EtherType, L3Proto: d.L3Proto, VLANs: d.VLANs, NumVLANs: d.NumVLANs, L3Off: d.L3Off}
	return decodeErrs[LayerIPv4][eBadChecksum]
}

// ipv6ExtHeaders has bit n set for the next header values n that WalkIPv6
// steps over: hop-by-hop options, routing, fragment, authentication and
// destination options.
const ipv6ExtHeaders = 1<<IPProtoHopByHop | 1<<IPProtoRouting | 1<<IPProtoFragment | 1<<IPProtoAH | 1<<IPProtoDstOpts

// decodeARP checks the ARP message a at frame offset off.
func decodeARP(a []byte, off int, d *Decoded) error {
	if _, err := ParseARP(a); err != nil {
		return err
	}
	d.L3End = off + ARPLen
	return nil
}

// decodeIPv6Ext walks the extension headers of the IPv6 packet p (a
// parsed view: 40 bytes plus the payload length) at frame offset off and
// returns the upper-layer protocol and its frame offset. For a later
// fragment it sets d.LaterFrag and d.PayloadOff.
func decodeIPv6Ext(p []byte, off int, d *Decoded) (uint8, int, error) {
	ext, err := WalkIPv6(IPv6(p))
	if err != nil {
		return 0, 0, err
	}
	if ext.Offset < IPv6HeaderLen || ext.Offset > len(p) {
		return 0, 0, decodeErrs[LayerIPv6Ext][eBadHeaderLength]
	}
	l4 := off + ext.Offset
	if ext.FragOffset >= 0 {
		d.Frag = true
		fo := ext.FragOffset + ipv6FragOffM
		if fo < 0 || fo+2 > len(p) {
			return 0, 0, decodeErrs[LayerIPv6Ext][eTooShort]
		}
		if binary.BigEndian.Uint16(p[fo:])&^7 != 0 {
			d.LaterFrag = true
			d.Flow.Proto = ext.Proto
			d.L4Proto = ext.Proto
			d.PayloadOff = l4
		}
	}
	return ext.Proto, l4, nil
}

// decodeQUICLong decodes the QUIC long header at the start of p, the UDP
// payload, which starts at frame offset d.PayloadOff. (Reading the offset
// back from d rather than passing it keeps it from being spilled on every
// UDP packet.)
func decodeQUICLong(p []byte, d *Decoded) error {
	base := d.PayloadOff
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

// decodeErrs holds the errors Decode returns, by layer and kind: the same
// preallocated *ParseError values perr returns. Returning one is a load,
// not a call, which keeps the error paths from costing the fast path
// register spills.
var decodeErrs = func() (t [numLayers][numDecodeErrs]error) {
	kinds := [numDecodeErrs]error{
		eTooShort: ErrTooShort, eBadVersion: ErrBadVersion, eBadHeaderLength: ErrBadHeaderLength,
		eLengthMismatch: ErrLengthMismatch, eBadChecksum: ErrBadChecksum, eUnsupported: ErrUnsupported,
		eBadValue: ErrBadValue, eTooManyHeaders: ErrTooManyHeaders,
	}
	for l := range t {
		for i, e := range kinds {
			t[l][i] = perr(Layer(l), e)
		}
	}
	return t
}()

// Indexes of decodeErrs's second dimension.
const (
	eTooShort = iota
	eBadVersion
	eBadHeaderLength
	eLengthMismatch
	eBadChecksum
	eUnsupported
	eBadValue
	eTooManyHeaders
	numDecodeErrs
)
