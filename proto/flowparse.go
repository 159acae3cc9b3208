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
// It decodes the common frames itself: IPv4 without options and IPv6
// without extension headers, behind up to two VLAN tags, carrying TCP,
// UDP, QUIC short header packets with at least 20 bytes after the first
// byte, ICMP or another protocol, and IPv4 fragments after the first. Any
// other frame (IPv4 options, IPv6 extension headers, IPv4 first
// fragments, QUIC long headers, ARP, IPv4 checksum verification, frames
// shorter than an Ethernet header and an IPv4 header) and any frame that
// fails a check is handed to Decode from the start, so that ParseFlow's
// answer is Decode's by construction where it does not have its own code,
// and the error is Decode's wherever a check fails.
//
// ParseFlow does not allocate and does not verify transport checksums.
func ParseFlow(frame []byte, f *Flow, opts *DecodeOptions) error {
	// One function with no calls but tail calls to the slow path (see
	// Decode's comments), written so that the compiler proves every
	// header view in bounds from the checks the parse needs anyway
	// (go build -gcflags=-d=ssa/check_bce: only the QUIC view is left):
	//
	//   - b is the frame with its capacity cut to its length, re-sliced
	//     past the Ethernet header and the tags, so that it starts at the
	//     IP header. With cap == len and the length checked first, the
	//     compiler knows the remaining capacity is positive and drops the
	//     pointer mask of an open-ended slice.
	//   - l4 and end are offsets in b, and l4 is only ever one of the
	//     constants 20 (IPv4 without options) and 40 (IPv6): from
	//     l4+n <= end <= len(b) the prove pass drops the bounds checks of
	//     the TCP and UDP views (a header length read from the packet, or
	//     a third possible value, defeats it), and the loads of the ports
	//     do not wait on a load of the header length.
	//   - Lengths are compared as l4+n > end, the form the prove pass
	//     reasons with, and end <= len(b) is checked once after the two
	//     L3 branches rather than in each.
	//   - The key is written through f, not a k := &f.Key, which costs an
	//     explicit nil check.
	//
	// A failed check hands the frame to Decode rather than naming the
	// error here, so checks that Decode makes one by one are merged, and
	// frames that are valid but rare (IPv4 options, say) are left to
	// Decode as well.
	b := frame[:len(frame):len(frame)]
	// Shorter frames have no room for an IP header, even untagged; two
	// tags then fit too.
	if len(b) < EthernetLen+IPv4MinHeaderLen {
		return parseFlowDecode(frame, f, opts)
	}
	et := binary.BigEndian.Uint16(b[12:14])
	b = b[EthernetLen:]
	if et == EtherTypeVLAN || et == EtherTypeQinQ {
		t := (*[2 * VLANLen]byte)(b) // both tags, outer first
		et = binary.BigEndian.Uint16(t[2:])
		b = b[VLANLen:]
		if et == EtherTypeVLAN || et == EtherTypeQinQ {
			et = binary.BigEndian.Uint16(t[VLANLen+2:])
			if et == EtherTypeVLAN || et == EtherTypeQinQ {
				return parseFlowDecode(frame, f, opts) // a third tag
			}
			b = b[VLANLen:]
		}
	}

	// L3: b starts at the IP header; l4 and end are the offsets in b of
	// the upper-layer header and of the end of the IP packet.
	var l4, end int
	var proto uint8
	if et == EtherTypeIPv4 {
		if len(b) < IPv4MinHeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		h := (*[IPv4MinHeaderLen]byte)(b)
		// Version 4 without options: other headers go to Decode.
		l4 = IPv4MinHeaderLen
		end = int(binary.BigEndian.Uint16(h[ipv4TotalLen:]))
		if h[ipv4VersIHL] != 0x45 || end < IPv4MinHeaderLen || opts != nil && opts.VerifyIPv4Checksum {
			return parseFlowDecode(frame, f, opts)
		}
		binary.LittleEndian.PutUint64(f.Key.Src[0:8], 0)
		binary.LittleEndian.PutUint64(f.Key.Src[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(h[ipv4Src:]))<<32)
		binary.LittleEndian.PutUint64(f.Key.Dst[0:8], 0)
		binary.LittleEndian.PutUint64(f.Key.Dst[8:16], v4MappedHi|uint64(binary.LittleEndian.Uint32(h[ipv4Dst:]))<<32)
		f.Key.Family = FamilyIPv4
		proto = h[ipv4Protocol]
		// Flags and fragment offset, tested in wire byte order: MF or
		// an offset is a fragment, an offset a later one.
		if fo := binary.LittleEndian.Uint16(h[ipv4FlagsFrag:]); fo&bswap16(uint16(IPv4FlagMoreFragments)<<ipv4FlagsShift|ipv4FragMask) != 0 {
			if fo&bswap16(ipv4FragMask) == 0 {
				// The first fragment: its transport header is
				// checked but keyed without ports.
				return parseFlowDecode(frame, f, opts)
			}
			// A later fragment: no transport header. (The check
			// below the L3 branches is not reached.)
			if end > len(b) {
				return parseFlowDecode(frame, f, opts)
			}
			return f.noPorts(proto)
		}
	} else if et == EtherTypeIPv6 {
		if len(b) < IPv6HeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
		h := (*[IPv6HeaderLen]byte)(b)
		l4 = IPv6HeaderLen
		end = IPv6HeaderLen + int(binary.BigEndian.Uint16(h[ipv6PayloadLen:]))
		if h[0]>>4 != 6 {
			return parseFlowDecode(frame, f, opts)
		}
		f.Key.Src = [16]byte(h[ipv6Src : ipv6Src+16])
		f.Key.Dst = [16]byte(h[ipv6Dst : ipv6Dst+16])
		f.Key.Family = FamilyIPv6
		proto = h[ipv6NextHeader]
	} else if et == EtherTypeARP {
		return parseFlowDecode(frame, f, opts)
	} else {
		*f = Flow{}
		return nil
	}

	// The IP packet is within the frame: l4 <= end <= len(b) from here.
	if end > len(b) {
		return parseFlowDecode(frame, f, opts)
	}

	// L4, within the IP packet. TCP and UDP first, which are never IPv6
	// extension headers.
	if proto == IPProtoTCP {
		if l4+TCPMinHeaderLen > end {
			return parseFlowDecode(frame, f, opts)
		}
		t := (*[TCPMinHeaderLen]byte)(b[l4 : l4+TCPMinHeaderLen])
		// TCPMinHeaderLen <= hl <= end-l4: a data offset of at least
		// 5, and the header within the IP packet.
		if t[tcpDataOffset] < TCPMinHeaderLen/4<<4 || l4+int(t[tcpDataOffset]>>2&0x3c) > end {
			return parseFlowDecode(frame, f, opts)
		}
		f.Key.SrcPort = binary.BigEndian.Uint16(t[tcpSrcPort:])
		f.Key.DstPort = binary.BigEndian.Uint16(t[tcpDstPort:])
		f.Key.Proto = IPProtoTCP
		f.QUICDCID = ConnID{}
		f.HasQUIC = false
		return nil
	}
	if proto == IPProtoUDP {
		if l4+UDPHeaderLen > end {
			return parseFlowDecode(frame, f, opts)
		}
		u := (*[UDPHeaderLen]byte)(b[l4 : l4+UDPHeaderLen])
		// UDPHeaderLen <= ul <= end-l4.
		ul := int(binary.BigEndian.Uint16(u[udpLength:]))
		if ul < UDPHeaderLen || l4+ul > end {
			return parseFlowDecode(frame, f, opts)
		}
		f.Key.SrcPort, f.Key.DstPort = binary.BigEndian.Uint16(u[udpSrcPort:]), binary.BigEndian.Uint16(u[udpDstPort:])
		sp, dp := f.Key.SrcPort, f.Key.DstPort
		f.Key.Proto = IPProtoUDP
		if opts != nil && quicPort(opts.QUICPorts, sp, dp) {
			// A short header whose DCID, of the configured length, is
			// read as three masked words of the 21 bytes from the first
			// byte: bytes past the DCID stay zero, as ConnID's
			// comparability needs. Long headers, shorter payloads (empty
			// ones are not QUIC) and bad lengths go to Decode.
			dl := opts.QUICShortDCIDLen
			// The UDP header and the 21 bytes.
			const wl = UDPHeaderLen + 1 + MaxConnIDLen
			if ul < wl || uint(dl) > MaxConnIDLen {
				return parseFlowDecode(frame, f, opts)
			}
			w := (*[wl]byte)(b[l4 : l4+wl])
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
		f.QUICDCID = ConnID{}
		f.HasQUIC = false
		return nil
	}
	n := end - l4
	if et == EtherTypeIPv4 {
		if proto == IPProtoICMP && n < ICMPv4HeaderLen {
			return parseFlowDecode(frame, f, opts)
		}
	} else if proto == IPProtoICMPv6 && n < ICMPv6HeaderLen || proto < 64 && ipv6ExtHeaders>>(proto&63)&1 != 0 {
		return parseFlowDecode(frame, f, opts)
	}
	return f.noPorts(proto)
}

// quicPort reports whether sp or dp is in ports. The first port is
// compared before the loop: one port is the usual configuration, and with
// the plain loop the compiler spilled four registers on every UDP frame.
func quicPort(ports []uint16, sp, dp uint16) bool {
	if len(ports) == 0 {
		return false
	}
	if p := ports[0]; p == sp || p == dp {
		return true
	}
	return len(ports) > 1 && quicPortLoop(ports[1:], sp, dp)
}

// quicPortLoop reports whether sp or dp is in ports.
func quicPortLoop(ports []uint16, sp, dp uint16) bool {
	for _, p := range ports {
		if p == sp || p == dp {
			return true
		}
	}
	return false
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
