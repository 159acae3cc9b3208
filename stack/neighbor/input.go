package neighbor

import (
	"net/netip"

	"github.com/tygress/tygress/proto"
)

// Input handles a received Ethernet frame: ARP, or IPv6 carrying a neighbor
// solicitation or advertisement directly after the fixed header. It returns
// OK or the reason the frame was dropped (also counted in Stats). Answers
// go to Sink.Send and packets that became sendable to Sink.Release before
// Input returns. It allocates nothing.
func (t *Table[P]) Input(now int64, frame []byte) Reason {
	eth, err := proto.ParseEthernet(frame)
	if err != nil {
		return t.count(Malformed)
	}
	switch eth.EtherType() {
	case proto.EtherTypeARP:
		a, err := proto.ParseARP(eth.Payload())
		if err != nil {
			return t.count(Malformed)
		}
		return t.InputARP(now, eth, a)
	case proto.EtherTypeIPv6:
		ip, err := proto.ParseIPv6(eth.Payload())
		if err != nil {
			return t.count(Malformed)
		}
		return t.InputNDP(now, eth.Src(), ip)
	}
	return t.count(NotNeighbor)
}

func (t *Table[P]) count(r Reason) Reason {
	if r != OK {
		t.stats.Drops[r]++
	}
	return r
}

// InputARP handles a received ARP packet a that arrived in frame eth (whose
// source and destination addresses it checks). See Input.
func (t *Table[P]) InputARP(now int64, eth proto.Ethernet, a proto.ARP) Reason {
	return t.count(t.inputARP(now, eth.Src(), eth.Dst(), a))
}

// InputNDP handles a received IPv6 packet ip from Ethernet address srcMAC
// that should hold an NS or NA. See Input.
func (t *Table[P]) InputNDP(now int64, srcMAC [6]byte, ip proto.IPv6) Reason {
	return t.count(t.inputNDP(now, srcMAC, ip))
}

func (t *Table[P]) checkMAC(m [6]byte) Reason {
	switch {
	case m == t.cfg.MAC:
		return Loop
	case proto.IsMulticastMAC(m) || m == [6]byte{}:
		return BadSender
	}
	return OK
}

func (t *Table[P]) inputARP(now int64, ethSrc, ethDst [6]byte, a proto.ARP) Reason {
	op := a.Op()
	if op != proto.ARPRequest && op != proto.ARPReply {
		return Malformed
	}
	sha, spa, tpa := a.SenderHW(), a.SenderIP(), a.TargetIP()
	if r := t.checkMAC(ethSrc); r != OK {
		return r
	}
	if r := t.checkMAC(sha); r != OK {
		return r
	}
	if spa.IsMulticast() || spa.IsLoopback() || spa == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return BadSender
	}
	probe := spa.IsUnspecified() // RFC 5227 ARP probe: learn nothing
	if !probe && t.ownIndex(spa) >= 0 {
		return Spoofed
	}
	k := t.ownIndex(tpa)
	forUs := k >= 0 && t.own[k].state == addrAssign
	merged := false
	if !probe {
		if i, ok := t.index[spa]; ok {
			// RFC 826: update an existing entry whoever the target.
			// A unicast reply to us is the answer to our request.
			solicited := op == proto.ARPReply && forUs && !proto.IsMulticastMAC(ethDst)
			t.learn(now, i, sha, solicited, true)
			merged = true
		}
	}
	if !forUs {
		switch {
		case merged:
			return OK
		case op == proto.ARPRequest && spa == tpa:
			return Ignored // gratuitous ARP from a stranger
		case op == proto.ARPRequest:
			return NotOurTarget
		}
		return NoEntry
	}
	if !merged && !probe {
		if i, ok := t.alloc(now, spa, Stale, false); ok {
			t.ents[i].mac = sha
		}
	}
	if op == proto.ARPRequest {
		t.scratch = Action{Kind: SendARPReply, Src: tpa, Dst: spa, Target: tpa, SrcMAC: t.cfg.MAC, DstMAC: sha}
		t.stats.ARPReplies++
		t.sink.Send(&t.scratch)
	}
	return OK
}

// learn applies a link-layer address mac heard for entry i: RFC 4861
// section 7.2.5 for an advertisement with the given S and O flags, and
// section 7.2.3 (solicited false, override true) for a solicitation, an
// ARP packet or a router advertisement.
func (t *Table[P]) learn(now int64, i int32, mac [6]byte, solicited, override bool) Reason {
	e := &t.ents[i]
	if e.state == Incomplete {
		e.mac = mac
		if solicited {
			t.setState(i, Reachable, t.reachableDeadline(now))
		} else {
			t.setState(i, Stale, noDeadline)
		}
		t.stats.Resolved++
		if e.qlen > 0 {
			t.release(i)
			if e.state == Stale { // sending from STALE: RFC 4861 section 7.3.3
				t.setState(i, Delay, now+int64(t.cfg.DelayFirstProbe))
			}
		}
		return OK
	}
	differs := mac != e.mac
	if !override && differs {
		if e.state == Reachable {
			t.setState(i, Stale, noDeadline)
		}
		return Ignored
	}
	if differs {
		t.gen++
	}
	e.mac = mac
	switch {
	case solicited:
		t.setState(i, Reachable, t.reachableDeadline(now))
	case differs:
		t.setState(i, Stale, noDeadline)
	}
	return OK
}

func isSolicitedNode(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && b[0] == 0xff && b[1] == 0x02 && [10]byte(b[2:12]) == [10]byte{9: 1} && b[12] == 0xff
}

func (t *Table[P]) inputNDP(now int64, srcMAC [6]byte, ip proto.IPv6) Reason {
	if ip.NextHeader() != proto.IPProtoICMPv6 {
		return NotNeighbor
	}
	m, err := proto.ParseICMPv6(ip.Payload())
	if err != nil {
		return Malformed
	}
	typ := m.Type()
	if typ != proto.ICMPv6NeighborSolicitation && typ != proto.ICMPv6NeighborAdvertisement {
		return NotNeighbor
	}
	if ip.HopLimit() != 255 {
		return BadHopLimit
	}
	if !m.VerifyChecksum(ip.SrcArray(), ip.DstArray()) {
		return BadChecksum
	}
	if r := t.checkMAC(srcMAC); r != OK {
		return r
	}
	opts := m.Options()
	if opts.Validate() != nil {
		return Malformed
	}
	target, src, dst := m.Target(), ip.Src(), ip.Dst()
	if target.IsMulticast() || src.IsMulticast() {
		return Malformed
	}
	if typ == proto.ICMPv6NeighborSolicitation {
		return t.inputNS(now, srcMAC, src, dst, target, opts)
	}
	return t.inputNA(now, dst, target, m, opts)
}

// inputNS: RFC 4861 sections 7.1.1, 7.2.3, 7.2.4; RFC 4862 section 5.4.3.
func (t *Table[P]) inputNS(now int64, srcMAC [6]byte, src, dst, target netip.Addr, opts proto.NDPOptions) Reason {
	sll, hasSLL := opts.LinkLayerAddress(proto.NDPOptSourceLinkLayer)
	dad := src.IsUnspecified()
	if dad && (!isSolicitedNode(dst) || hasSLL) {
		return Malformed
	}
	if hasSLL {
		if r := t.checkMAC(sll); r != OK {
			return r
		}
	}
	k := t.ownIndex(target)
	if k < 0 {
		return NotOurTarget
	}
	if t.own[k].state == addrTentatv {
		if dad { // another node is doing DAD for our tentative address
			t.dadFail(k)
			return Duplicate
		}
		return Tentative
	}
	if dad { // RFC 4861 section 7.2.4: answer to all-nodes, S clear
		mac, _ := MulticastMAC(allNodes)
		t.sendNA(target, allNodes, mac, proto.NDPFlagOverride)
		return OK
	}
	if t.ownIndex(src) >= 0 {
		return Spoofed
	}
	// Without a source link-layer option (allowed for a unicast NS) answer
	// the cached address, else the frame's source rather than resolving
	// src first as RFC 4861 section 7.2.4 would: the NS just came from it.
	dstMAC := srcMAC
	i, ok := t.index[src]
	if hasSLL {
		if ok {
			t.learn(now, i, sll, false, true)
		} else if i, ok = t.alloc(now, src, Stale, false); ok {
			t.ents[i].mac = sll
		}
		dstMAC = sll
	} else if ok && t.ents[i].state != Incomplete {
		dstMAC = t.ents[i].mac
	}
	t.sendNA(target, src, dstMAC, proto.NDPFlagSolicited|proto.NDPFlagOverride)
	return OK
}

func (t *Table[P]) sendNA(target, dst netip.Addr, dstMAC [6]byte, flags uint8) {
	t.scratch = Action{Kind: SendNA, Src: target, Dst: dst, Target: target, SrcMAC: t.cfg.MAC, DstMAC: dstMAC, Flags: flags}
	t.stats.NAs++
	t.sink.Send(&t.scratch)
}

// inputNA: RFC 4861 sections 7.1.2 and 7.2.5; RFC 4862 section 5.4.4.
func (t *Table[P]) inputNA(now int64, dst, target netip.Addr, m proto.ICMPv6, opts proto.NDPOptions) Reason {
	if dst.IsMulticast() && m.Solicited() {
		return Malformed
	}
	tll, hasTLL := opts.LinkLayerAddress(proto.NDPOptTargetLinkLayer)
	if k := t.ownIndex(target); k >= 0 {
		if t.own[k].state == addrTentatv {
			t.dadFail(k)
			return Duplicate
		}
		return Spoofed
	}
	i, ok := t.index[target]
	if !ok {
		return NoEntry
	}
	e := &t.ents[i]
	mac := e.mac
	if hasTLL {
		if r := t.checkMAC(tll); r != OK {
			return r
		}
		mac = tll
	} else if e.state == Incomplete {
		return NoLinkAddr
	}
	e.router = m.Router()
	return t.learn(now, i, mac, m.Solicited(), m.Override())
}

func (t *Table[P]) dadFail(k int) {
	addr := t.own[k].addr
	t.own = append(t.own[:k], t.own[k+1:]...)
	t.stats.DADFailed++
	t.scratch = Action{Kind: DADFailed, Target: addr, SrcMAC: t.cfg.MAC}
	t.sink.Send(&t.scratch)
}
