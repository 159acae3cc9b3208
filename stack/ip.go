package stack

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/reasm"
	"github.com/tygress/tygress/stack/route"
)

// pkt is what the upper layers need to know of a received IP packet. For a
// reassembled datagram f is nil (the fragments' frames are already
// released), hdr is the IP header of the fragment that completed it and
// data the reassembled payload.
type pkt struct {
	f        *pipeline.Frame
	eth      proto.Ethernet
	v6       bool
	src, dst [16]byte // IPv4 in the first 4 bytes
	hdr      []byte   // IP header (IPv6: up to the upper layer)
	data     []byte   // upper-layer bytes
	whole    bool     // hdr and data are one unfragmented packet in f, contiguous
	proto    uint8    // upper-layer protocol
}

// l2unicast reports whether the frame was sent to our MAC (ICMP errors are
// never sent for link-layer group frames).
func (s *Shard) l2unicast(p *pkt) bool { return p.eth.Dst() == s.mac }

// martian4 reports source addresses no reply may go to: 0/8, loopback,
// multicast, class E and broadcast.
func martian4(a [4]byte) bool { return a[0] == 0 || a[0] == 127 || a[0] >= 224 }

func martian6(a [16]byte) bool {
	x := netip.AddrFrom16(a)
	return x.IsUnspecified() || x.IsMulticast() || x.IsLoopback() || x.Is4In6()
}

func (s *Shard) inputIPv4(now int64, f *pipeline.Frame, eth proto.Ethernet) {
	ip, err := proto.ParseIPv4(eth.Payload())
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	if !ip.VerifyChecksum() {
		s.drop(f, DropBadChecksum)
		return
	}
	dst, src := ip.DstArray(), ip.SrcArray()
	if !s.st.ours4(dst) {
		s.drop(f, DropNotOurs)
		return
	}
	if martian4(src) || s.st.ours4(src) {
		s.drop(f, DropNotOurs) // no reply to 0/8, loopback, multicast, broadcast or ourselves
		return
	}
	p := pkt{f: f, eth: eth}
	copy(p.src[:], src[:])
	copy(p.dst[:], dst[:])
	hl := ip.HeaderLength()
	if ip.IsFragment() {
		data, done, err := s.rs.Add(now, reasm.KeyFromIPv4(ip), int(ip.FragmentOffset()), ip.MoreFragments(), ip[:hl], ip.Payload())
		if err != nil {
			s.drop(f, DropReasm)
			return
		}
		s.stats.Fragments++
		s.consume(f)
		if !done {
			return
		}
		s.stats.Reassembled++
		p.f, p.hdr, p.data = nil, ip[:hl], data
		s.upper(now, &p, ip.Protocol())
		return
	}
	p.hdr, p.data, p.whole = ip[:hl], ip[hl:], true
	s.upper(now, &p, ip.Protocol())
}

func (s *Shard) inputIPv6(now int64, f *pipeline.Frame, eth proto.Ethernet) {
	ip, err := proto.ParseIPv6(eth.Payload())
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	src, dst := ip.SrcArray(), ip.DstArray()
	if ip.NextHeader() == proto.IPProtoICMPv6 {
		// Neighbor discovery goes to the table whatever the destination
		// (solicited-node multicast, unspecified sources for DAD).
		m, err := proto.ParseICMPv6(ip.Payload())
		if err != nil {
			s.drop(f, DropMalformed)
			return
		}
		switch m.Type() {
		case proto.ICMPv6NeighborSolicitation, proto.ICMPv6NeighborAdvertisement:
			r := s.nb.InputNDP(now, eth.Src(), ip)
			if m.Type() == proto.ICMPv6NeighborAdvertisement {
				// Shared whatever this table made of it: an unsolicited
				// NA is not installed here but may be the answer another
				// shard waits for (or end the DAD the port's first shard
				// runs).
				s.share(f.Data)
			}
			s.neighbor(f, r)
			return
		}
	}
	if !s.st.ours6(dst) {
		s.drop(f, DropNotOurs)
		return
	}
	if martian6(src) || s.st.ours6(src) {
		s.drop(f, DropNotOurs)
		return
	}
	ext, err := proto.WalkIPv6(ip)
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	p := pkt{f: f, eth: eth, v6: true, src: src, dst: dst}
	if ext.FragOffset >= 0 {
		fh, err := proto.ParseIPv6Fragment(ip[ext.FragOffset:])
		if err != nil {
			s.drop(f, DropMalformed)
			return
		}
		data, done, err := s.rs.Add(now, reasm.KeyFromIPv6(ip, fh), int(fh.FragmentOffset()), fh.MoreFragments(),
			ip[:ext.FragOffset], ip[ext.FragOffset+proto.IPv6FragmentLen:])
		if err != nil {
			s.drop(f, DropReasm)
			return
		}
		s.stats.Fragments++
		s.consume(f)
		if !done {
			return
		}
		s.stats.Reassembled++
		p.f, p.hdr, p.data = nil, ip[:ext.FragOffset], data
		switch nh := fh.NextHeader(); nh {
		case proto.IPProtoHopByHop, proto.IPProtoRouting, proto.IPProtoFragment, proto.IPProtoDstOpts, proto.IPProtoAH:
			s.drop(nil, DropExtHeader)
		default:
			s.upper(now, &p, nh)
		}
		return
	}
	p.hdr, p.data, p.whole = ip[:ext.Offset], ip[ext.Offset:], ext.N == 0
	s.upper(now, &p, ext.Proto)
}

// upper dispatches on the upper-layer protocol.
func (s *Shard) upper(now int64, p *pkt, protocol uint8) {
	p.proto = protocol
	switch {
	case protocol == proto.IPProtoUDP:
		s.inputUDP(now, p)
	case protocol == proto.IPProtoICMP && !p.v6:
		s.inputICMPv4(now, p)
	case protocol == proto.IPProtoICMPv6 && p.v6:
		s.inputICMPv6(now, p)
	default:
		if p.v6 {
			if len(p.hdr) == proto.IPv6HeaderLen { // the pointer is easy only without extension headers
				s.icmpError(now, p, proto.ICMPv6ParamProblem, proto.ICMPv6UnrecognizedNextHeader, 6)
			}
		} else {
			s.icmpError(now, p, proto.ICMPv4DestUnreachable, proto.ICMPv4ProtoUnreachable, 0)
		}
		s.drop(p.f, DropProtocol)
	}
}

func (s *Shard) inputUDP(now int64, p *pkt) {
	u, err := proto.ParseUDP(p.data)
	if err != nil {
		s.drop(p.f, DropMalformed)
		return
	}
	n := int(u.Length())
	if n < proto.UDPHeaderLen || n > len(u) {
		s.drop(p.f, DropMalformed)
		return
	}
	u = u[:n]
	var ok bool
	if p.v6 {
		ok = u.VerifyChecksumV6(p.src, p.dst)
	} else {
		ok = u.VerifyChecksumV4([4]byte(p.src[:4]), [4]byte(p.dst[:4]))
	}
	if !ok {
		s.drop(p.f, DropBadChecksum)
		return
	}
	h := dgram{rport: u.SrcPort(), lport: u.DstPort(), v6: p.v6, raddr: p.src, laddr: p.dst}
	tbl := s.st.socks.Load()
	if len(tbl.handlers) > 0 {
		if hd := tbl.handlers[h.lport]; hd != nil {
			s.serveUDP(p, u, hd)
			return
		}
	}
	c := tbl.lookup(p.v6, &h.laddr, &h.raddr, h.lport, h.rport)
	if c == nil {
		if p.v6 {
			s.icmpError(now, p, proto.ICMPv6DestUnreachable, proto.ICMPv6PortUnreachable, 0)
		} else {
			s.icmpError(now, p, proto.ICMPv4DestUnreachable, proto.ICMPv4PortUnreachable, 0)
		}
		s.drop(p.f, DropNoSocket)
		return
	}
	payload := u.Payload()
	h.n = len(payload)
	if !c.deliver(s.id, &h, payload) {
		s.drop(p.f, DropRcvBuf)
		return
	}
	s.stats.UDPRx++
	s.consume(p.f)
}

// serveUDP runs a handler on a datagram; the frame is released unless the
// handler sent it back.
func (s *Shard) serveUDP(p *pkt, u proto.UDP, hd UDPHandler) {
	r := &s.req
	s.reqPkt = *p // a copy: p stays on the caller's stack
	*r = UDPRequest{s: s, p: &s.reqPkt, u: u, Payload: u.Payload(),
		From: netip.AddrPortFrom(addrFrom16(&p.src, p.v6), u.SrcPort()),
		To:   netip.AddrPortFrom(addrFrom16(&p.dst, p.v6), u.DstPort())}
	s.stats.UDPRx++
	hd.ServeUDP(r)
	if !r.sent {
		s.consume(p.f)
	}
	*r = UDPRequest{}
	s.reqPkt = pkt{}
}

func (s *Shard) inputICMPv4(now int64, p *pkt) {
	m, err := proto.ParseICMPv4(p.data)
	if err != nil {
		s.drop(p.f, DropMalformed)
		return
	}
	if !m.VerifyChecksum() {
		s.drop(p.f, DropBadChecksum)
		return
	}
	switch m.Type() {
	case proto.ICMPv4EchoRequest:
		if m.Code() != 0 {
			s.drop(p.f, DropProtocol)
			return
		}
		if p.f != nil && len(p.hdr) == proto.IPv4MinHeaderLen {
			s.echo4InPlace(p, m)
			return
		}
		s.echoReply(now, p, m)
	case proto.ICMPv4DestUnreachable, proto.ICMPv4TimeExceeded, proto.ICMPv4ParamProblem:
		s.inputICMPError(now, p, m.Type(), m.Code(), uint32(m.MTU()), m.Quoted())
	default:
		s.drop(p.f, DropProtocol)
	}
}

func (s *Shard) inputICMPv6(now int64, p *pkt) {
	m, err := proto.ParseICMPv6(p.data)
	if err != nil {
		s.drop(p.f, DropMalformed)
		return
	}
	if !m.VerifyChecksum(p.src, p.dst) {
		s.drop(p.f, DropBadChecksum)
		return
	}
	switch m.Type() {
	case proto.ICMPv6EchoRequest:
		if m.Code() != 0 {
			s.drop(p.f, DropProtocol)
			return
		}
		if p.f != nil && p.whole {
			s.echo6InPlace(p, m)
			return
		}
		s.echoReply(now, p, m)
	case proto.ICMPv6DestUnreachable, proto.ICMPv6PacketTooBig, proto.ICMPv6TimeExceeded, proto.ICMPv6ParamProblem:
		s.inputICMPError(now, p, m.Type(), m.Code(), m.MTU(), m.Quoted())
	case proto.ICMPv6NeighborSolicitation, proto.ICMPv6NeighborAdvertisement:
		s.drop(p.f, DropExtHeader) // NDP behind extension headers or fragmented
	default:
		s.drop(p.f, DropProtocol)
	}
}

// echo4InPlace turns an unfragmented ICMPv4 echo request without options
// into its reply in the same frame.
func (s *Shard) echo4InPlace(p *pkt, m proto.ICMPv4) {
	f := p.f
	if !s.replyMACs(p.eth) {
		s.drop(f, DropBadSource)
		return
	}
	ip := proto.IPv4(p.hdr[:len(p.hdr)+len(p.data)])
	// Swapping the addresses leaves both checksums as they are (the
	// one's-complement sum does not depend on the order of the words); the
	// TTL and the ICMP type change, updated incrementally.
	src, dst := ip.SrcArray(), ip.DstArray()
	ip.SetSrc(dst)
	ip.SetDst(src)
	word := uint16(ip.TTL())<<8 | uint16(ip.Protocol())
	ip.SetTTL(EchoTTL)
	ip.SetChecksum(proto.ChecksumUpdate16(ip.Checksum(), word, uint16(EchoTTL)<<8|uint16(ip.Protocol())))
	m.EchoToReply()
	f.Data = f.Data[:proto.EthernetLen+len(ip)] // drop Ethernet padding
	s.stats.EchoV4++
	s.send(f)
}

// echo6InPlace answers an ICMPv6 echo request without extension headers in
// the same frame.
func (s *Shard) echo6InPlace(p *pkt, m proto.ICMPv6) {
	f := p.f
	if !s.replyMACs(p.eth) {
		s.drop(f, DropBadSource)
		return
	}
	ip := proto.IPv6(p.hdr[:len(p.hdr)+len(p.data)])
	src, dst := p.src, p.dst
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetHopLimit(EchoTTL)
	m.SetType(proto.ICMPv6EchoReply)
	m.SetChecksum(proto.ICMPv6Checksum(dst, src, m))
	f.Data = f.Data[:proto.EthernetLen+len(ip)]
	s.stats.EchoV6++
	s.send(f)
}

// echoReply answers an echo request that cannot be answered in place
// (fragmented, options, extension headers) with a new datagram through the
// output path, fragmented as needed.
func (s *Shard) echoReply(now int64, p *pkt, req []byte) {
	var h [8]byte
	copy(h[:], req[:8])
	body := req[8:]
	h[2], h[3] = 0, 0
	var sum uint16
	if p.v6 {
		h[0] = proto.ICMPv6EchoReply
		sum = proto.Checksum(h[:], proto.PseudoHeaderChecksumV6(proto.IPProtoICMPv6, p.dst, p.src, uint32(len(req))))
	} else {
		h[0] = proto.ICMPv4EchoReply
		sum = proto.Checksum(h[:], 0)
	}
	binary.BigEndian.PutUint16(h[2:], ^proto.Checksum(body, uint32(sum)))
	if s.output(now, p.v6, &p.dst, &p.src, nil, protoICMP(p.v6), h[:], body, nil) {
		if p.v6 {
			s.stats.EchoV6++
		} else {
			s.stats.EchoV4++
		}
	}
	s.consume(p.f)
}

func protoICMP(v6 bool) uint8 {
	if v6 {
		return proto.IPProtoICMPv6
	}
	return proto.IPProtoICMP
}

// inputICMPError handles an ICMP error: it must quote a packet we sent
// (our address as its source); port unreachable for a connected UDP socket
// becomes ECONNREFUSED on that socket, and fragmentation needed / packet
// too big lowers the path MTU.
func (s *Shard) inputICMPError(now int64, p *pkt, typ, code uint8, mtu uint32, quoted []byte) {
	var qsrc, qdst [16]byte
	var qproto uint8
	var qdata []byte
	if p.v6 {
		q, err := proto.ParseIPv6Quoted(quoted)
		if err != nil {
			s.drop(p.f, DropMalformed)
			return
		}
		qsrc, qdst = q.SrcArray(), q.DstArray()
		if !s.st.ours6(qsrc) {
			s.drop(p.f, DropICMPUnmatched)
			return
		}
		ext, err := proto.WalkIPv6(q)
		if err == nil && ext.FragOffset < 0 {
			qproto, qdata = ext.Proto, q[ext.Offset:]
		}
	} else {
		q, err := proto.ParseIPv4Quoted(quoted)
		if err != nil {
			s.drop(p.f, DropMalformed)
			return
		}
		a, b := q.SrcArray(), q.DstArray()
		copy(qsrc[:], a[:])
		copy(qdst[:], b[:])
		if !s.st.ours4(a) {
			s.drop(p.f, DropICMPUnmatched)
			return
		}
		if q.FragmentOffset() == 0 {
			qproto, qdata = q.Protocol(), q.Payload()
		}
	}
	tooBig := p.v6 && typ == proto.ICMPv6PacketTooBig ||
		!p.v6 && typ == proto.ICMPv4DestUnreachable && code == proto.ICMPv4FragmentationNeeded
	if tooBig {
		s.lowerPMTU(now, p.v6, &qdst, int(mtu))
		s.stats.ICMPIn++
		s.consume(p.f)
		return
	}
	if qproto != proto.IPProtoUDP || len(qdata) < proto.UDPHeaderLen {
		s.drop(p.f, DropICMPUnmatched) // we send no other protocol yet
		return
	}
	sport := binary.BigEndian.Uint16(qdata[0:])
	dport := binary.BigEndian.Uint16(qdata[2:])
	c := s.st.socks.Load().lookup(p.v6, &qsrc, &qdst, sport, dport)
	if c == nil {
		s.drop(p.f, DropICMPUnmatched)
		return
	}
	s.stats.ICMPIn++
	refused := p.v6 && typ == proto.ICMPv6DestUnreachable && code == proto.ICMPv6PortUnreachable ||
		!p.v6 && typ == proto.ICMPv4DestUnreachable && code == proto.ICMPv4PortUnreachable
	if refused && c.raddr.IsValid() {
		c.setSoftErr(syscall.ECONNREFUSED)
	}
	s.consume(p.f)
}

// lowerPMTU records a smaller path MTU for dst.
func (s *Shard) lowerPMTU(now int64, v6 bool, dst *[16]byte, mtu int) {
	floor := 552 // Linux's min_pmtu for IPv4
	if v6 {
		floor = 1280
	}
	mtu = max(mtu, floor)
	if mtu >= s.mtu {
		return
	}
	if e, ok := s.pmtu[*dst]; ok && e.mtu <= mtu && e.expires > now {
		return
	}
	if len(s.pmtu) >= maxPMTU {
		for k, e := range s.pmtu {
			if e.expires <= now {
				delete(s.pmtu, k)
			}
		}
		if len(s.pmtu) >= maxPMTU {
			return
		}
	}
	s.pmtu[*dst] = pmtuEntry{mtu: mtu, expires: now + pmtuLifetime}
	s.stats.PMTUUpdates++
}

// pathMTU returns the MTU towards dst through r.
func (s *Shard) pathMTU(now int64, r *route.Route, dst *[16]byte) int {
	mtu := s.mtu
	if r != nil && r.MTU > 0 {
		mtu = min(mtu, r.MTU)
	}
	if len(s.pmtu) > 0 {
		if e, ok := s.pmtu[*dst]; ok {
			if e.expires > now {
				mtu = min(mtu, e.mtu)
			} else {
				delete(s.pmtu, *dst)
			}
		}
	}
	return mtu
}

// allowICMP takes a token from the ICMP error bucket.
func (s *Shard) allowICMP(now int64) bool {
	burst := int64(s.st.cfg.ICMPBurst) * 1e9
	if d := now - s.tokensAt; d > 0 {
		s.tokens = min(burst, s.tokens+d*int64(s.st.cfg.ICMPRate))
		s.tokensAt = now
	}
	if s.tokens < 1e9 {
		return false
	}
	s.tokens -= 1e9
	return true
}

// icmpError sends an ICMP error about the received packet p, unless RFC
// 1122 section 3.2.2 / RFC 4443 section 2.4 forbid it: p was sent to a
// link-layer group or is itself an ICMP error (the caller never passes a
// non-first fragment: errors are sent only for whole datagrams). The
// source was checked on input (no unspecified, loopback, multicast or
// broadcast source, nor ours). Errors are rate limited.
func (s *Shard) icmpError(now int64, p *pkt, typ, code uint8, rest uint32) {
	if !s.l2unicast(p) {
		return
	}
	if p.v6 {
		if p.proto == proto.IPProtoICMPv6 && len(p.data) > 0 && p.data[0] < 128 {
			return
		}
	} else if p.proto == proto.IPProtoICMP && len(p.data) > 0 {
		switch p.data[0] {
		case proto.ICMPv4DestUnreachable, proto.ICMPv4Redirect, proto.ICMPv4TimeExceeded, proto.ICMPv4ParamProblem:
			return
		}
	}
	s.sendICMPError(now, p.v6, &p.dst, &p.src, typ, code, rest, p.hdr, p.data)
}

// sendICMPError builds and sends an ICMP error from src (ours) to dst,
// quoting hdr and as much of data as fits in 576 bytes (IPv4) or 1280
// (IPv6).
func (s *Shard) sendICMPError(now int64, v6 bool, src, dst *[16]byte, typ, code uint8, rest uint32, hdr, data []byte) {
	if !s.allowICMP(now) {
		s.stats.ICMPLimited++
		return
	}
	room := 576 - proto.IPv4MinHeaderLen - proto.ICMPv4HeaderLen
	if v6 {
		room = 1280 - proto.IPv6HeaderLen - proto.ICMPv6HeaderLen
	}
	if len(hdr) > room {
		hdr = hdr[:room]
	}
	if len(data) > room-len(hdr) {
		data = data[:room-len(hdr)]
	}
	var h [8]byte
	h[0], h[1] = typ, code
	binary.BigEndian.PutUint32(h[4:], rest)
	n := len(h) + len(hdr) + len(data)
	var sum uint16
	if v6 {
		sum = proto.Checksum(h[:], proto.PseudoHeaderChecksumV6(proto.IPProtoICMPv6, *src, *dst, uint32(n)))
	} else {
		sum = proto.Checksum(h[:], 0)
	}
	sum = proto.Checksum(hdr, uint32(sum)) // IP headers have even lengths
	binary.BigEndian.PutUint16(h[2:], ^proto.Checksum(data, uint32(sum)))
	if s.output(now, v6, src, dst, nil, protoICMP(v6), h[:], hdr, data) {
		s.stats.ICMPOut++
	}
}

// reasmExpired sends ICMP time exceeded (fragment reassembly) for a
// datagram whose first fragment arrived (RFC 792, RFC 8200 section 4.5).
// The quoted header was checked when the fragment arrived: its source can
// be answered and its destination is ours.
func (s *Shard) reasmExpired(e reasm.Expired) {
	now := s.tickNow
	if e.Key.IsIPv6() {
		ip, err := proto.ParseIPv6Quoted(e.Header)
		if err != nil {
			return
		}
		src, dst := ip.SrcArray(), ip.DstArray()
		s.sendICMPError(now, true, &dst, &src, proto.ICMPv6TimeExceeded, proto.ICMPv6ReassemblyExceeded, 0, e.Header, e.Data)
		return
	}
	ip, err := proto.ParseIPv4Quoted(e.Header)
	if err != nil {
		return
	}
	var src, dst [16]byte
	a, b := ip.SrcArray(), ip.DstArray()
	copy(src[:], a[:])
	copy(dst[:], b[:])
	s.sendICMPError(now, false, &dst, &src, proto.ICMPv4TimeExceeded, proto.ICMPv4ReassemblyExceeded, 0, e.Header, e.Data)
}

// queue hands a datagram to the shard; it runs on socket goroutines and
// blocks while the send queue is full, until the write deadline or done.
func (s *Shard) queue(h *dgram, b []byte, wdl *deadline, done chan struct{}) error {
	if recordLen(len(b)) > uint64(len(s.txq.buf))/2 {
		return syscall.EMSGSIZE
	}
	for {
		s.txMu.Lock()
		ok := s.txq.push(h, b, nil)
		s.txMu.Unlock()
		if ok {
			if s.sleeping.Load() {
				s.l.Wake()
			}
			return nil
		}
		dl := wdl.wait()
		if closedChan(dl) {
			return os.ErrDeadlineExceeded
		}
		s.txWait.Add(1)
		s.txMu.Lock()
		ok = s.txq.push(h, b, nil) // the shard may have drained before txWait rose
		s.txMu.Unlock()
		if ok {
			s.txWait.Add(-1)
			if s.sleeping.Load() {
				s.l.Wake()
			}
			return nil
		}
		s.l.Wake()
		select {
		case <-s.txSpace:
		case <-done:
			s.txWait.Add(-1)
			return net.ErrClosed
		case <-dl:
		}
		s.txWait.Add(-1)
	}
}

// drainTx sends up to one batch of queued datagrams.
func (s *Shard) drainTx(now int64) int {
	var h dgram
	n := 0
	for n < cap(s.tx) {
		b, ok := s.txq.peek(&h)
		if !ok {
			break
		}
		s.outputUDP(now, &h, b)
		s.txq.pop(&h)
		n++
	}
	if n > 0 && s.txWait.Load() > 0 {
		select {
		case s.txSpace <- struct{}{}:
		default:
		}
	}
	return n
}

// outputUDP builds and sends a queued datagram.
func (s *Shard) outputUDP(now int64, h *dgram, payload []byte) {
	var u [proto.UDPHeaderLen]byte
	n := proto.UDPHeaderLen + len(payload)
	binary.BigEndian.PutUint16(u[0:], h.lport)
	binary.BigEndian.PutUint16(u[2:], h.rport)
	binary.BigEndian.PutUint16(u[4:], uint16(n))
	var ps uint32
	if h.v6 {
		ps = proto.PseudoHeaderChecksumV6(proto.IPProtoUDP, h.laddr, h.raddr, uint32(n))
	} else {
		ps = proto.PseudoHeaderChecksumV4(proto.IPProtoUDP, [4]byte(h.laddr[:4]), [4]byte(h.raddr[:4]), uint16(n))
	}
	sum := ^proto.Checksum(payload, uint32(proto.Checksum(u[:], ps)))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], sum)
	if s.output(now, h.v6, &h.laddr, &h.raddr, &h.nexthop, proto.IPProtoUDP, u[:], payload, nil) {
		s.stats.UDPTx++
	}
}

// output sends an IP datagram whose payload is the concatenation of p0, p1
// and p2, from src to dst, fragmenting it to the path MTU. The next hop
// comes from the routing table unless hop is given. Frames whose next hop
// is not resolved yet wait in the neighbor table. It reports whether the
// datagram was handed on.
func (s *Shard) output(now int64, v6 bool, src, dst, hop *[16]byte, protocol uint8, p0, p1, p2 []byte) bool {
	var r *route.Route
	var ok bool
	if v6 {
		r, ok = s.st.routes.Lookup6(*dst)
	} else {
		r, ok = s.st.routes.Lookup4([4]byte(dst[:4]))
	}
	if !ok || r.Port != s.port {
		// No route, or one through another port: replies and errors the
		// shard originates go out on its own port only (sockets hand
		// their datagrams to a shard of the route's port).
		s.stats.NoRoute++
		return false
	}
	var nh netip.Addr
	if hop != nil {
		nh = addrFrom16(hop, v6)
	} else {
		nh = route.NextHop(r, addrFrom16(dst, v6))
	}
	mtu := s.pathMTU(now, r, dst)
	total := len(p0) + len(p1) + len(p2)
	hl := proto.IPv4MinHeaderLen
	if v6 {
		hl = proto.IPv6HeaderLen
	}
	var nfrag, chunk int
	if hl+total <= mtu {
		nfrag, chunk = 1, total
	} else {
		fh := 0
		if v6 {
			fh = proto.IPv6FragmentLen
		}
		chunk = (mtu - hl - fh) &^ 7
		nfrag = (total + chunk - 1) / chunk
	}
	if nfrag > len(s.frags) {
		s.stats.TooBig++
		return false
	}
	frames := s.frags[:nfrag]
	if got := s.l.Alloc(frames); got < nfrag {
		s.l.Release(frames[:got])
		clear(frames)
		s.stats.NoTxBuffer++
		return false
	}
	if cap(frames[0].Data) < proto.EthernetLen+mtu {
		s.l.Release(frames)
		clear(frames)
		s.stats.NoTxBuffer++
		return false
	}
	var id uint32
	if nfrag > 1 {
		if v6 {
			s.fragID++
			id = s.fragID
		} else {
			s.ipID++
			id = uint32(s.ipID)
		}
	}
	for i := range frames {
		f := &frames[i]
		off := i * chunk
		n := min(chunk, total-off)
		more := i < nfrag-1
		b := f.Data[:cap(f.Data)]
		eth := proto.Ethernet(b[:proto.EthernetLen])
		eth.SetSrc(s.mac)
		if v6 {
			binary.BigEndian.PutUint16(b[12:], uint16(proto.EtherTypeIPv6))
			ip := b[proto.EthernetLen:]
			fh := 0
			if nfrag > 1 {
				fh = proto.IPv6FragmentLen
			}
			binary.BigEndian.PutUint32(ip[0:], 6<<28)
			binary.BigEndian.PutUint16(ip[4:], uint16(fh+n))
			ip[6] = protocol
			ip[7] = DefaultTTL
			copy(ip[8:24], src[:])
			copy(ip[24:40], dst[:])
			if nfrag > 1 {
				ip[6] = proto.IPProtoFragment
				frag := ip[40:48]
				frag[0], frag[1] = protocol, 0
				om := uint16(off)
				if more {
					om |= 1
				}
				binary.BigEndian.PutUint16(frag[2:], om)
				binary.BigEndian.PutUint32(frag[4:], id)
			}
			gather(ip[hl+fh:hl+fh+n], off, p0, p1, p2)
			f.Data = b[:proto.EthernetLen+hl+fh+n]
		} else {
			binary.BigEndian.PutUint16(b[12:], uint16(proto.EtherTypeIPv4))
			ip := b[proto.EthernetLen:]
			fl := IPv4Flags(nfrag == 1, more)
			hdr := proto.IPv4Fields{
				TotalLength: uint16(hl + n), ID: uint16(id), Flags: fl, FragmentOffset: uint16(off),
				TTL: DefaultTTL, Protocol: protocol, Src: [4]byte(src[:4]), Dst: [4]byte(dst[:4]),
			}
			hdr.Encode(ip)
			gather(ip[hl:hl+n], off, p0, p1, p2)
			f.Data = b[:proto.EthernetLen+hl+n]
		}
	}
	if nfrag > 1 {
		s.stats.FragsOut += uint64(nfrag)
	}
	for i := range frames {
		if mac, ok := s.nb.Resolve(now, nh, frames[i]); ok {
			proto.Ethernet(frames[i].Data).SetDst(mac)
			s.send(&frames[i])
		}
	}
	clear(frames)
	return true
}

// IPv4Flags returns the flags of an IPv4 datagram the stack sends: DF on
// unfragmented datagrams (path MTU discovery, as Linux's
// IP_PMTUDISC_WANT does), MF on all fragments but the last.
func IPv4Flags(whole, more bool) uint8 {
	switch {
	case whole:
		return proto.IPv4FlagDontFragment
	case more:
		return proto.IPv4FlagMoreFragments
	}
	return 0
}

// gather copies len(dst) bytes starting at offset off of the
// concatenation p0|p1|p2 into dst.
func gather(dst []byte, off int, p0, p1, p2 []byte) {
	for _, p := range [3][]byte{p0, p1, p2} {
		if len(dst) == 0 {
			return
		}
		if off >= len(p) {
			off -= len(p)
			continue
		}
		n := copy(dst, p[off:])
		dst = dst[n:]
		off = 0
	}
}
