package bpf_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/internal/testutil"
)

// requirePrivileged skips a test that needs root, or fails it when
// TYGRESS_REQUIRE_PRIVILEGED is set.
func requirePrivileged(t *testing.T) {
	t.Helper()
	testutil.RequirePrivileged(t)
}

// Frame builders. Each returns the frame and the length of the headers the
// steering program must read (hdrLen): every shorter prefix is malformed.
// Checksums are left zero: the program never looks at them.

var (
	dstMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	srcMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

// tag is a VLAN tag: TPID 0x8100 (802.1Q) or 0x88a8 (802.1ad) and id.
type tag struct {
	tpid uint16
	vid  uint16
}

func q(vid uint16) tag  { return tag{0x8100, vid} }
func ad(vid uint16) tag { return tag{0x88a8, vid} }

// l3 is a network-layer packet and the length of its headers.
type l3 struct {
	ethertype uint16
	b         []byte
	hdrLen    int
}

// eth wraps p in an Ethernet header with the given tags (outermost first).
func eth(p l3, tags ...tag) (frame []byte, hdrLen int) {
	b := append([]byte{}, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	for _, t := range tags {
		b = binary.BigEndian.AppendUint16(b, t.tpid)
		b = binary.BigEndian.AppendUint16(b, 0x2000|t.vid) // PCP 1
	}
	b = binary.BigEndian.AppendUint16(b, p.ethertype)
	h := len(b)
	return append(b, p.b...), h + p.hdrLen
}

// l4 is a transport header with a few bytes of payload.
type l4 struct {
	proto  uint8
	b      []byte
	hdrLen int
}

func udp(dport uint16) l4 {
	b := binary.BigEndian.AppendUint16(nil, 40000)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, 8+4)
	b = append(b, 0, 0, 'p', 'i', 'n', 'g')
	return l4{17, b, 8}
}

func tcp(dport uint16) l4 {
	b := binary.BigEndian.AppendUint16(nil, 40000)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, make([]byte, 8)...) // seq, ack
	b = append(b, 5<<4, 0x02)         // data offset 5, SYN
	b = append(b, 0xff, 0xff, 0, 0, 0, 0)
	return l4{6, append(b, 'x'), 20}
}

func sctp(dport uint16) l4 {
	b := binary.BigEndian.AppendUint16(nil, 40000)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, make([]byte, 8)...) // verification tag, checksum
	return l4{132, append(b, 1, 0, 0, 4), 12}
}

// icmp is an ICMP (or ICMPv6, proto 58) echo request: no ports.
func icmp(proto uint8) l4 {
	return l4{proto, []byte{8, 0, 0, 0, 0, 1, 0, 1}, 0}
}

// ipv4 options.
type v4opts struct {
	optWords int    // IHL - 5
	fragOff  uint16 // flags (MF = 0x2000) and offset in 8-byte units
	version  uint8  // 0 means 4
	ihl      uint8  // 0 means 5 + optWords
}

func ipv4(dst string, t l4, o v4opts) l3 {
	ihl := 5 + o.optWords
	if o.ihl != 0 {
		ihl = int(o.ihl)
	}
	ver := o.version
	if ver == 0 {
		ver = 4
	}
	a := netip.MustParseAddr(dst).As4()
	b := []byte{ver<<4 | uint8(ihl&0xf), 0}
	b = binary.BigEndian.AppendUint16(b, uint16(20+4*o.optWords+len(t.b)))
	b = binary.BigEndian.AppendUint16(b, 0x1234)
	b = binary.BigEndian.AppendUint16(b, o.fragOff)
	b = append(b, 64, t.proto, 0, 0, 192, 0, 2, 1)
	b = append(b, a[:]...)
	for range o.optWords {
		b = append(b, 1, 1, 1, 1) // NOPs
	}
	hdr := len(b)
	if o.fragOff&0x1fff != 0 {
		return l3{0x0800, append(b, t.b...), hdr} // no L4 header to read
	}
	return l3{0x0800, append(b, t.b...), hdr + t.hdrLen}
}

// ext is an IPv6 extension header: type 0 (hop-by-hop), 43 (routing),
// 44 (fragment, with fragOff) or 60 (destination options), of 8*(words+1)
// bytes for the variable-length ones.
type ext struct {
	typ     uint8
	words   uint8
	fragOff uint16 // offset << 3 | M
}

func ipv6(dst string, t l4, exts ...ext) l3 {
	a := netip.MustParseAddr(dst).As16()
	var hdrs []byte
	frag := false
	parsed := 0 // bytes of the extension headers the program reads (at most 4)
	for i, e := range exts {
		if i == 4 {
			parsed = len(hdrs)
		}
		next := t.proto
		if i+1 < len(exts) {
			next = exts[i+1].typ
		}
		if e.typ == 44 {
			hdrs = append(hdrs, next, 0)
			hdrs = binary.BigEndian.AppendUint16(hdrs, e.fragOff)
			hdrs = append(hdrs, 0, 0, 0, 7)
			frag = frag || e.fragOff&0xfff8 != 0
			continue
		}
		h := make([]byte, 8*(int(e.words)+1))
		h[0], h[1] = next, e.words
		h[2] = 1 // PadN
		h[3] = byte(len(h) - 4)
		hdrs = append(hdrs, h...)
	}
	first := t.proto
	if len(exts) > 0 {
		first = exts[0].typ
	}
	b := []byte{0x60, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(hdrs)+len(t.b)))
	b = append(b, first, 64)
	b = append(b, netip.MustParseAddr("2001:db8::1").AsSlice()...)
	b = append(b, a[:]...)
	hdr := len(b) + len(hdrs)
	switch {
	case len(exts) > 4:
		hdr = len(b) + parsed // the fifth is taken for the protocol
	case !frag:
		hdr += t.hdrLen
	}
	b = append(b, hdrs...)
	return l3{0x86dd, append(b, t.b...), hdr}
}

func arp() l3 {
	b := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	b = append(b, srcMAC[:]...)
	b = append(b, 192, 0, 2, 1)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, 192, 0, 2, 2)
	return l3{0x0806, b, 0}
}

// raw is a frame of another ethertype that the program does not parse.
func raw(ethertype uint16) l3 {
	return l3{ethertype, []byte("some payload of another protocol"), 0}
}
