package stack

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/proto"
)

func udp4Frame(dst, src [6]byte, sip, dip netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := proto.AppendEthernet(nil, dst, src, proto.EtherTypeIPv4)
	b = proto.AppendIPv4(b, &proto.IPv4Fields{TotalLength: uint16(20 + 8 + len(payload)), ID: 99,
		TTL: 64, Protocol: proto.IPProtoUDP, Src: sip.As4(), Dst: dip.As4()})
	n := len(b)
	b = proto.AppendUDP(b, proto.UDPFields{SrcPort: sport, DstPort: dport, Length: uint16(8 + len(payload))})
	b = append(b, payload...)
	u := proto.UDP(b[n:])
	u.SetChecksum(u.ComputeChecksumV4(sip.As4(), dip.As4()))
	return b
}

func udp6Frame(dst, src [6]byte, sip, dip netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := proto.AppendEthernet(nil, dst, src, proto.EtherTypeIPv6)
	b = proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: uint16(8 + len(payload)), NextHeader: proto.IPProtoUDP,
		HopLimit: 64, Src: sip.As16(), Dst: dip.As16()})
	n := len(b)
	b = proto.AppendUDP(b, proto.UDPFields{SrcPort: sport, DstPort: dport, Length: uint16(8 + len(payload))})
	b = append(b, payload...)
	u := proto.UDP(b[n:])
	u.SetChecksum(u.ComputeChecksumV6(sip.As16(), dip.As16()))
	return b
}

// resolvePeer teaches the shard the peer's MAC (an ARP request from the
// peer) and an NS, so replies need no resolution.
func (h *memHost) resolvePeer() {
	h.exchange(arpRequest(h.peerMAC, peer4, our4))
	h.exchange(neighborSolicit(h.peerMAC, peer6, our6))
}

// TestICMPPortUnreachable: the error quotes the datagram, goes to the
// sender, and is never sent for a datagram to a link-layer broadcast.
func TestICMPPortUnreachable(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	req := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1234, 4321, []byte("hello"))
	out := h.one1(req)
	eth, _ := proto.ParseEthernet(out)
	ip, err := proto.ParseIPv4(eth.Payload())
	if err != nil || !ip.VerifyChecksum() || ip.Dst() != peer4 || ip.Src() != our4 || ip.Protocol() != proto.IPProtoICMP {
		t.Fatalf("error packet %x", out)
	}
	m, _ := proto.ParseICMPv4(ip.Payload())
	if m.Type() != proto.ICMPv4DestUnreachable || m.Code() != proto.ICMPv4PortUnreachable || !m.VerifyChecksum() {
		t.Fatalf("icmp %x", []byte(m))
	}
	if q := m.Quoted(); string(q) != string(req[14:]) {
		t.Fatalf("quote %x, want %x", q, req[14:])
	}
	bcast := udp4Frame(proto.BroadcastMAC, h.peerMAC, peer4, our4, 1234, 4321, []byte("hello"))
	if out := h.exchange(bcast); len(out) != 0 {
		t.Fatalf("answered a broadcast frame: %x", out)
	}
	req6 := udp6Frame(h.ourMAC, h.peerMAC, peer6, our6, 1234, 4321, []byte("hello"))
	out = h.one1(req6)
	eth, _ = proto.ParseEthernet(out)
	ip6, err := proto.ParseIPv6(eth.Payload())
	if err != nil || ip6.Dst() != peer6 || ip6.NextHeader() != proto.IPProtoICMPv6 {
		t.Fatalf("error packet %x", out)
	}
	m6, _ := proto.ParseICMPv6(ip6.Payload())
	if m6.Type() != proto.ICMPv6DestUnreachable || m6.Code() != proto.ICMPv6PortUnreachable || !m6.VerifyChecksum(our6.As16(), peer6.As16()) {
		t.Fatalf("icmpv6 %x", []byte(m6))
	}
	if st := h.s.Stats(); st.ICMPOut != 2 || st.Drops[DropNoSocket] != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestICMPRateLimit: a flood of datagrams to a closed port gets at most the
// burst of errors at once, and more as the bucket refills.
func TestICMPRateLimit(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	req := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1234, 4321, nil)
	sent := 0
	for range 200 {
		sent += len(h.exchange(req))
	}
	if sent != 50 {
		t.Fatalf("%d errors for 200 datagrams at one instant, want the burst of 50", sent)
	}
	h.now += int64(10 * time.Millisecond) // 10 tokens at 1000/s
	sent = 0
	for range 100 {
		sent += len(h.exchange(req))
	}
	if sent != 10 {
		t.Fatalf("%d errors after 10 ms, want 10", sent)
	}
	if st := h.s.Stats(); st.ICMPLimited != 240 {
		t.Fatalf("ICMPLimited %d", st.ICMPLimited)
	}
}

// TestICMPNoErrorForErrors: an ICMP error to us about a packet we never
// sent is dropped and counted, never answered; an unknown protocol gets
// protocol unreachable.
func TestICMPNoErrorForErrors(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	// An error quoting a datagram from some other host.
	quoted := udp4Frame(h.peerMAC, h.ourMAC, netip.MustParseAddr("10.90.0.77"), peer4, 1, 2, nil)[14:]
	b := proto.AppendEthernet(nil, h.ourMAC, h.peerMAC, proto.EtherTypeIPv4)
	b = proto.AppendIPv4(b, &proto.IPv4Fields{TotalLength: uint16(20 + 8 + len(quoted)), TTL: 64,
		Protocol: proto.IPProtoICMP, Src: peer4.As4(), Dst: our4.As4()})
	b = proto.AppendICMPv4Error(b, proto.ICMPv4DestUnreachable, proto.ICMPv4PortUnreachable, 0, quoted)
	if out := h.exchange(b); len(out) != 0 {
		t.Fatalf("answered an error: %x", out)
	}
	if st := h.s.Stats(); st.Drops[DropICMPUnmatched] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Protocol 253 (experimental): protocol unreachable.
	p := proto.AppendEthernet(nil, h.ourMAC, h.peerMAC, proto.EtherTypeIPv4)
	p = proto.AppendIPv4(p, &proto.IPv4Fields{TotalLength: 28, TTL: 64, Protocol: 253, Src: peer4.As4(), Dst: our4.As4()})
	p = append(p, make([]byte, 8)...)
	out := h.one1(p)
	m, _ := proto.ParseICMPv4(out[14+20:])
	if m.Type() != proto.ICMPv4DestUnreachable || m.Code() != proto.ICMPv4ProtoUnreachable {
		t.Fatalf("got %x", out)
	}
}

// TestReassemblyTimeExceeded: a datagram whose first fragment arrived but
// never completed gets ICMP time exceeded (reassembly) when it expires; one
// whose first fragment never arrived gets nothing.
func TestReassemblyTimeExceeded(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	payload := make([]byte, 32)
	first := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1, 2, payload)
	ip, _ := proto.ParseIPv4(first[14:])
	ip.SetFlagsFragmentOffset(proto.IPv4FlagMoreFragments, 0)
	ip.UpdateChecksum()
	if out := h.exchange(first); len(out) != 0 {
		t.Fatalf("answered a fragment: %x", out)
	}
	h.now += int64(31 * time.Second)
	out := h.exchange(nil)
	if len(out) != 1 {
		t.Fatalf("%d frames after the timeout, want 1", len(out))
	}
	m, _ := proto.ParseICMPv4(out[0][14+20:])
	if m.Type() != proto.ICMPv4TimeExceeded || m.Code() != proto.ICMPv4ReassemblyExceeded {
		t.Fatalf("got %x", out[0])
	}
	// A later fragment alone: nothing on expiry.
	later := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1, 2, payload)
	ip, _ = proto.ParseIPv4(later[14:])
	ip.SetFlagsFragmentOffset(0, 16)
	ip.SetID(1000)
	ip.UpdateChecksum()
	h.exchange(later)
	h.now += int64(31 * time.Second)
	for _, f := range h.exchange(nil) {
		if len(f) > 14 && f[12] == 0x08 && f[13] == 0x00 { // IPv4 (ARP probes may go out)
			t.Fatalf("answered an expired datagram without its first fragment: %x", f)
		}
	}
}

// TestPacketTooBig: a packet too big quoting one of our datagrams lowers
// the path MTU, and later datagrams to that destination are fragmented to
// it.
func TestPacketTooBig(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	c := listen(t, h.s.st, "udp6", ":4000")
	// The socket sends a 1400-byte datagram to the peer: one frame.
	if _, err := c.WriteTo(make([]byte, 1400), &net.UDPAddr{IP: peer6.AsSlice(), Port: 5000}); err != nil {
		t.Fatal(err)
	}
	out := h.exchange(nil)
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	// The path has an MTU of 1280: a router answers packet too big.
	b := proto.AppendEthernet(nil, h.ourMAC, h.peerMAC, proto.EtherTypeIPv6)
	quote := out[0][14 : 14+1232]
	b = proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: uint16(8 + len(quote)), NextHeader: proto.IPProtoICMPv6,
		HopLimit: 64, Src: peer6.As16(), Dst: our6.As16()})
	b = proto.AppendICMPv6Error(b, peer6.As16(), our6.As16(), proto.ICMPv6PacketTooBig, 0, 1280, quote)
	h.exchange(b)
	if st := h.s.Stats(); st.PMTUUpdates != 1 || st.ICMPIn != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := c.WriteTo(make([]byte, 1400), &net.UDPAddr{IP: peer6.AsSlice(), Port: 5000}); err != nil {
		t.Fatal(err)
	}
	out = h.exchange(nil)
	if len(out) != 2 {
		t.Fatalf("after PTB: %d frames, want 2 fragments", len(out))
	}
	for _, f := range out {
		if len(f) > 14+1280 {
			t.Fatalf("fragment of %d bytes exceeds the path MTU", len(f))
		}
	}
}

// TestUDPEchoAllocs: a UDP request through the shard to a socket and the
// reply back out allocate nothing.
func TestUDPEchoAllocs(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	c := listen(t, h.s.st, "udp", ":7")
	req := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1234, 7, make([]byte, 18))
	buf := make([]byte, 2048)
	round := func() {
		h.send(req)
		h.s.Poll(h.now)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(buf[:n], from); err != nil {
			t.Fatal(err)
		}
		h.s.Poll(h.now)
		n = h.peer.Receive(h.rx)
		if n != 1 {
			t.Fatalf("%d replies", n)
		}
		h.peer.Release(h.rx[:n])
	}
	round()
	if a := testing.AllocsPerRun(1000, round); a != 0 {
		t.Fatalf("%v allocations per request and reply", a)
	}
}

// TestFragmentFlood: thousands of first fragments of datagrams that never
// complete keep the reassembler within its budget; the excess is evicted
// and counted, the link gets every buffer back, and the shard still
// answers.
func TestFragmentFlood(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	payload := make([]byte, 1024)
	for i := range 5000 {
		f := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1, 2, payload)
		ip, _ := proto.ParseIPv4(f[14:])
		ip.SetID(uint16(i))
		ip.SetFlagsFragmentOffset(proto.IPv4FlagMoreFragments, 0)
		ip.UpdateChecksum()
		h.exchange(f)
	}
	rs := h.s.Reassembly().Stats()
	cfg := h.s.Reassembly().Config()
	if rs.BytesHeld > cfg.MaxBytes || rs.Datagrams > cfg.MaxDatagrams || rs.Evicted == 0 {
		t.Fatalf("reassembly %+v over budget %+v", rs, cfg)
	}
	if out := h.exchange(echo4(h.ourMAC, h.peerMAC, peer4, our4, []byte("still here"))); len(out) != 1 {
		t.Fatalf("no echo reply after the flood")
	}
	if free, total := h.s.l.(interface{ Buffers() (int, int) }).Buffers(); free != total {
		t.Fatalf("%d of %d buffers free", free, total)
	}
}

// FuzzShardInput feeds arbitrary frames (seeded with real ones of every
// kind the shard handles) to a shard with a UDP socket: nothing panics,
// every buffer comes back, and the counters add up.
func FuzzShardInput(f *testing.F) {
	mac := [6]byte{2, 0, 0, 0, 0, 2}
	peerMAC := [6]byte{2, 0, 0, 0, 0, 1}
	f.Add(echo4(mac, peerMAC, peer4, our4, []byte("payload")))
	f.Add(echo6(mac, peerMAC, peer6, our6, []byte("payload")))
	f.Add(arpRequest(peerMAC, peer4, our4))
	f.Add(neighborSolicit(peerMAC, peer6, our6))
	f.Add(udp4Frame(mac, peerMAC, peer4, our4, 1, 7, []byte("hello")))
	f.Add(udp6Frame(mac, peerMAC, peer6, our6, 1, 7, []byte("hello")))
	frag := udp4Frame(mac, peerMAC, peer4, our4, 1, 7, make([]byte, 16))
	ip, _ := proto.ParseIPv4(frag[14:])
	ip.SetFlagsFragmentOffset(proto.IPv4FlagMoreFragments, 0)
	ip.UpdateChecksum()
	f.Add(frag)
	h := newMemHost(f)
	c, err := h.s.st.ListenPacket("udp", ":7")
	if err != nil {
		f.Fatal(err)
	}
	buf := make([]byte, 70000)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 1500+18 {
			return
		}
		h.t = t
		h.exchange(frame)
		for {
			c.SetReadDeadline(time.Now())
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				break
			}
		}
		queued := h.s.Neighbors().Stats().Queued
		if free, total := h.s.l.(interface{ Buffers() (int, int) }).Buffers(); free+queued != total {
			t.Fatalf("%d of %d buffers free, %d waiting for neighbor resolution", free, total, queued)
		}
	})
}

// TestUDPHandlerEcho: a handler echoes in place (the reply is the request
// frame with addresses and ports swapped and valid checksums), allocates
// nothing, and owns its port.
func TestUDPHandlerEcho(t *testing.T) {
	h := newMemHost(t)
	h.resolvePeer()
	remove, err := h.s.st.HandleUDP(7, UDPHandlerFunc(func(r *UDPRequest) { r.Echo() }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.st.ListenPacket("udp", ":7"); err == nil {
		t.Fatal("a socket took the handler's port")
	}
	for _, req := range [][]byte{
		udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1234, 7, []byte("ping over v4")),
		udp6Frame(h.ourMAC, h.peerMAC, peer6, our6, 1234, 7, []byte("ping over v6")),
	} {
		out := h.one1(req)
		eth, _ := proto.ParseEthernet(out)
		var u proto.UDP
		var ok bool
		if eth.EtherType() == proto.EtherTypeIPv4 {
			ip, _ := proto.ParseIPv4(eth.Payload())
			u, _ = proto.ParseUDP(ip.Payload())
			ok = ip.VerifyChecksum() && ip.Dst() == peer4 && u.VerifyChecksumV4(ip.SrcArray(), ip.DstArray())
		} else {
			ip, _ := proto.ParseIPv6(eth.Payload())
			u, _ = proto.ParseUDP(ip.Payload())
			ok = ip.Dst() == peer6 && u.VerifyChecksumV6(ip.SrcArray(), ip.DstArray())
		}
		if !ok || eth.Dst() != h.peerMAC || u.SrcPort() != 7 || u.DstPort() != 1234 || string(u.Payload()[:4]) != "ping" {
			t.Fatalf("reply %x", out)
		}
	}
	req := udp4Frame(h.ourMAC, h.peerMAC, peer4, our4, 1234, 7, make([]byte, 18))
	if a := testing.AllocsPerRun(1000, func() {
		h.send(req)
		h.s.Poll(h.now)
		if n := h.peer.Receive(h.rx); n != 1 {
			t.Fatalf("%d replies", n)
		} else {
			h.peer.Release(h.rx[:n])
		}
	}); a != 0 {
		t.Fatalf("%v allocations per echo", a)
	}
	remove()
	if c, err := h.s.st.ListenPacket("udp", ":7"); err != nil {
		t.Fatalf("port not freed: %v", err)
	} else {
		c.Close()
	}
}

// TestUDPHandlerReassembled: a datagram that needed reassembly is echoed
// through the output path, fragmented again.
func TestUDPHandlerReassembled(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{})
	if _, err := p.b.HandleUDP(7, UDPHandlerFunc(func(r *UDPRequest) { r.Echo() })); err != nil {
		t.Fatal(err)
	}
	c := listen(t, p.a, "udp4", ":0")
	msg := make([]byte, 5000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	c.WriteTo(msg, &net.UDPAddr{IP: addrB4.AsSlice(), Port: 7})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10000)
	n, _, err := c.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("echo of 5000 bytes: %d, %v", n, err)
	}
}
