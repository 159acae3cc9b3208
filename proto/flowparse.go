package proto

import "encoding/binary"

// Flow is what ParseFlow extracts from a frame for steering and sharding:
// the flow key and, when the UDP payload is QUIC, its destination
// connection ID. It is comparable and holds no pointers.
type Flow struct {
	// Key is the transport flow key, as in Decoded.Flow: family,
	// addresses and IP protocol for every IP packet, ports for TCP and
	// UDP unless the packet is a fragment; zero for other EtherTypes.
	Key FlowKey
	// QUICDCID is the destination connection ID of the QUIC packet, as
	// in Decoded.QUICDCID: empty unless HasQUIC, and empty for long
	// header DCIDs over 20 bytes.
	QUICDCID ConnID
	// HasQUIC reports that the UDP payload was decoded as QUIC (a UDP
	// port is in DecodeOptions.QUICPorts and the payload is not empty).
	HasQUIC bool
}

// ParseFlow is Decode for the steering hot path: it extracts the flow key
// of an Ethernet frame and, on the UDP ports of opts, the QUIC destination
// connection ID, in one pass over the headers, and writes them to f,
// overwriting all of it. It does not record anything else (offsets, VLAN
// tags, fragment flags, the QUIC packet type): use Decode for those.
//
// ParseFlow accepts and rejects exactly the frames Decode accepts and
// rejects with the same options, with the same errors (the same
// *ParseError values): Ethernet, up to two 802.1Q/802.1ad tags, ARP (no
// key), IPv4 version, header length and total length (and the header
// checksum with DecodeOptions.VerifyIPv4Checksum), IPv6 version, payload
// length and extension headers, the TCP data offset, the UDP length, the
// ICMPv4 and ICMPv6 header lengths, and the QUIC long header or the short
// header DCID length. On success f.Key, f.QUICDCID and f.HasQUIC are
// Decode's Flow, QUICDCID and HasQUIC; on error f is the zero Flow.
//
// It decodes the common frames itself: IPv4 and IPv6 without extension
// headers, behind up to two VLAN tags, carrying TCP, UDP, QUIC short
// header packets with at least 20 bytes after the first byte, ICMP or
// another protocol, and IPv4 fragments after the first. Any other frame
// (IPv6 extension headers, IPv4 first fragments, QUIC long headers, ARP,
// IPv4 checksum verification) and any frame that fails a check is handed
// to Decode from the start, so that ParseFlow's answer is Decode's by
// construction where it does not have its own code, and the error is
// Decode's wherever a check fails.
//
// ParseFlow does not allocate and does not verify transport checksums.
func ParseFlow(frame []byte, f *Flow, opts *DecodeOptions) error {
	// Written like Decode (see its comments): one function, fixed-size
	// array views made with three-index slices, frame offsets rather
	// than re-sliced views, and no calls but tail calls to the slow
	// path, so that no value lives across a call. Because a failed check hands the frame
	// to Decode rather than naming the error here, checks that Decode
	// makes one by one are merged: a length that must lie in [lo, hi]
	// takes one unsigned compare of len-lo against hi-lo, and an IPv4
	// first byte of 0x45 settles the version and header length.
	b := frame
	if len(b) < EthernetLen {
		return parseFlowDecode(frame, f, opts)
	}
	et := binary.BigEndian.Uint16(b[12:14])
	off := EthernetLen
	if et == EtherTypeVLAN || et == EtherTypeQinQ {
		// Frames too short for two tags have no room for an IP header
		// after one; Decode names their error.
		if len(b) < EthernetLen+2*VLANLen {
			return parseFlowDecode(frame, f, opts)
		}
		t := (*[EthernetLen + 2*VLANLen]byte)(b)
		et = binary.BigEndian.Uint16(t[EthernetLen+2:])
		off = EthernetLen + VLANLen
		if et == EtherTypeVLAN || et == EtherTypeQinQ {
			et = binary.BigEndian.Uint16(t[EthernetLen+VLANLen+2:])
			off = EthernetLen + 2*VLANLen
			if et == EtherTypeVLAN || et == EtherTypeQinQ {
				return parseFlowDecode(frame, f, opts) // a third tag
			}
		}
	}
	k := &f.Key

	// L3: l4 is the frame offset of the upper-layer header and n the
	// bytes from there to the end of the IP packet (l4+n <= len(b)).
	var l4, n int
	var proto uint8
	room := len(b) - off
	if et == EtherTypeIPv4 {
		if room < IPv4MinHeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		h := (*[IPv4MinHeaderLen]byte)(b[off : off+IPv4MinHeaderLen : off+IPv4MinHeaderLen])
		ihl := IPv4MinHeaderLen
		if vihl := h[ipv4VersIHL]; vihl != 0x45 {
			ihl = int(vihl&0x0f) * 4
			if vihl>>4 != 4 || ihl < IPv4MinHeaderLen || ihl > room {
				return parseFlowDecode(frame, f, opts)
			}
		}
		// ihl <= total length <= room, given ihl <= room.
		n = int(binary.BigEndian.Uint16(h[ipv4TotalLen:])) - ihl
		if uint(n) > uint(room-ihl) || opts != nil && opts.VerifyIPv4Checksum {
			return parseFlowDecode(frame, f, opts)
		}
		binary.LittleEndian.PutUint64(k.Src[0:8], 0)
		binary.LittleEndian.PutUint64(k.Src[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(h[ipv4Src:]))<<32)
		binary.LittleEndian.PutUint64(k.Dst[0:8], 0)
		binary.LittleEndian.PutUint64(k.Dst[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(h[ipv4Dst:]))<<32)
		k.Family = FamilyIPv4
		proto = h[ipv4Protocol]
		// Flags and fragment offset, tested in wire byte order: MF or
		// an offset is a fragment, an offset a later one.
		if fo := binary.LittleEndian.Uint16(h[ipv4FlagsFrag:]); fo&bswap16(uint16(IPv4FlagMoreFragments)<<ipv4FlagsShift|ipv4FragMask) != 0 {
			if fo&bswap16(ipv4FragMask) == 0 {
				// The first fragment: its transport header is
				// checked but keyed without ports.
				return parseFlowDecode(frame, f, opts)
			}
			// A later fragment: no transport header.
			return f.noPorts(proto)
		}
		l4 = off + ihl
	} else if et == EtherTypeIPv6 {
		if room < IPv6HeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		h := (*[IPv6HeaderLen]byte)(b[off : off+IPv6HeaderLen : off+IPv6HeaderLen])
		pl := int(binary.BigEndian.Uint16(h[ipv6PayloadLen:]))
		if h[0]>>4 != 6 || pl > room-IPv6HeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		k.Src = [16]byte(h[ipv6Src : ipv6Src+16])
		k.Dst = [16]byte(h[ipv6Dst : ipv6Dst+16])
		k.Family = FamilyIPv6
		proto = h[ipv6NextHeader]
		l4 = off + IPv6HeaderLen
		n = pl
	} else if et == EtherTypeARP {
		return parseFlowDecode(frame, f, opts)
	} else {
		*f = Flow{}
		return nil
	}

	// L4, within the IP packet. TCP and UDP first, which are never IPv6
	// extension headers.
	if proto == IPProtoTCP {
		if n < TCPMinHeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		t := (*[TCPMinHeaderLen]byte)(b[l4 : l4+TCPMinHeaderLen : l4+TCPMinHeaderLen])
		// TCPMinHeaderLen <= hl <= n.
		if hl := int(t[tcpDataOffset]>>4) * 4; uint(hl-TCPMinHeaderLen) > uint(n-TCPMinHeaderLen) {
			return parseFlowDecode(frame, f, opts)
		}
		k.SrcPort = binary.BigEndian.Uint16(t[tcpSrcPort:])
		k.DstPort = binary.BigEndian.Uint16(t[tcpDstPort:])
		k.Proto = IPProtoTCP
		f.QUICDCID = ConnID{}
		f.HasQUIC = false
		return nil
	}
	if proto == IPProtoUDP {
		if n < UDPHeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		u := (*[UDPHeaderLen]byte)(b[l4 : l4+UDPHeaderLen : l4+UDPHeaderLen])
		// UDPHeaderLen <= ul <= n.
		ul := int(binary.BigEndian.Uint16(u[udpLength:]))
		if uint(ul-UDPHeaderLen) > uint(n-UDPHeaderLen) {
			return parseFlowDecode(frame, f, opts)
		}
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(u[udpSrcPort:]), binary.BigEndian.Uint16(u[udpDstPort:])
		sp, dp := k.SrcPort, k.DstPort
		k.Proto = IPProtoUDP
		if opts != nil {
			for _, p := range opts.QUICPorts {
				if p != sp && p != dp {
					continue
				}
				// A short header whose DCID, of the configured length,
				// is read as three masked words of the 21 bytes from the
				// first byte: bytes past the DCID stay zero, as ConnID's
				// comparability needs. Long headers, shorter payloads
				// (empty ones are not QUIC) and bad lengths go to Decode.
				dl := opts.QUICShortDCIDLen
				if ul < UDPHeaderLen+1+MaxConnIDLen || uint(dl) > MaxConnIDLen {
					return parseFlowDecode(frame, f, opts)
				}
				// The UDP header and the 21 bytes.
				const wl = UDPHeaderLen + 1 + MaxConnIDLen
				w := (*[wl]byte)(b[l4 : l4+wl : l4+wl])
				if w[UDPHeaderLen]&quicFormBit != 0 {
					return parseFlowDecode(frame, f, opts)
				}
				m := &connIDMasks[dl]
				c := &f.QUICDCID
				binary.LittleEndian.PutUint64(c.b[0:8], binary.LittleEndian.Uint64(w[UDPHeaderLen+1:])&m.w0)
				binary.LittleEndian.PutUint64(c.b[8:16], binary.LittleEndian.Uint64(w[UDPHeaderLen+9:])&m.w1)
				binary.LittleEndian.PutUint32(c.b[16:20], binary.LittleEndian.Uint32(w[UDPHeaderLen+17:])&m.w2)
				c.l = uint8(dl)
				f.HasQUIC = true
				return nil
			}
		}
		f.QUICDCID = ConnID{}
		f.HasQUIC = false
		return nil
	}
	if et == EtherTypeIPv4 {
		if proto == IPProtoICMP && n < ICMPv4HeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
	} else if proto == IPProtoICMPv6 && n < ICMPv6HeaderLen || proto < 64 && ipv6ExtHeaders>>(proto&63)&1 != 0 {
		return parseFlowDecode(frame, f, opts)
	}
	return f.noPorts(proto)
}

// noPorts finishes the key of an IP packet without ports: later
// fragments and protocols other than TCP and UDP.
func (f *Flow) noPorts(proto uint8) error {
	f.Key.Proto = proto
	f.Key.SrcPort, f.Key.DstPort = 0, 0
	f.QUICDCID = ConnID{}
	f.HasQUIC = false
	return nil
}

// parseFlowDecode is ParseFlow's slow path: Decode, from the start of the
// frame.
func parseFlowDecode(frame []byte, f *Flow, opts *DecodeOptions) error {
	var d Decoded
	if err := Decode(frame, &d, opts); err != nil {
		*f = Flow{}
		return err
	}
	f.Key, f.QUICDCID, f.HasQUIC = d.Flow, d.QUICDCID, d.HasQUIC
	return nil
}

// connIDMasks[n] keeps the first n bytes of the 20 a ConnID holds, as the
// masks of its three little-endian words.
var connIDMasks = func() (t [MaxConnIDLen + 1]struct {
	w0, w1 uint64
	w2     uint32
}) {
	for n := range t {
		var b [MaxConnIDLen]byte
		for i := range n {
			b[i] = 0xff
		}
		t[n].w0 = binary.LittleEndian.Uint64(b[0:8])
		t[n].w1 = binary.LittleEndian.Uint64(b[8:16])
		t[n].w2 = binary.LittleEndian.Uint32(b[16:20])
	}
	return t
}()

// bswap16 swaps the bytes of a constant.
func bswap16(v uint16) uint16 { return v<<8 | v>>8 }
