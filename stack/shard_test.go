package stack

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/neighbor"
)

var (
	our4  = netip.MustParseAddr("10.90.0.2")
	our6  = netip.MustParseAddr("fd00:90::2")
	peer4 = netip.MustParseAddr("10.90.0.1")
	peer6 = netip.MustParseAddr("fd00:90::1")
)

// memHost is a shard on endpoint B of a memory link and the test's peer on
// endpoint A, both driven by the test goroutine.
type memHost struct {
	t       testing.TB
	peer    *link.Mem
	s       *Shard
	peerMAC [6]byte
	ourMAC  [6]byte
	now     int64
	rx      []pipeline.Frame
	one     []pipeline.Frame
}

func newMemHost(t testing.TB) *memHost {
	t.Helper()
	a, b, err := link.NewMemPair(link.DefaultMemOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	s, err := NewShard(b, ShardConfig{Addrs: []netip.Prefix{
		netip.PrefixFrom(our4, 24), netip.PrefixFrom(our6, 64)}})
	if err != nil {
		t.Fatal(err)
	}
	return &memHost{t: t, peer: a, s: s, peerMAC: a.HardwareAddr(), ourMAC: b.HardwareAddr(),
		now: 1e9, rx: make([]pipeline.Frame, 64), one: make([]pipeline.Frame, 1)}
}

// send transmits frame from the peer.
func (h *memHost) send(frame []byte) {
	if h.peer.Alloc(h.one) != 1 {
		h.t.Fatal("peer: no buffer")
	}
	h.one[0].Data = append(h.one[0].Data[:0], frame...)
	h.peer.Transmit(h.one)
	h.peer.Flush()
}

// exchange sends frame, polls the shard and returns copies of what the
// peer received.
func (h *memHost) exchange(frame []byte) [][]byte {
	h.t.Helper()
	if frame != nil {
		h.send(frame)
	}
	h.s.Poll(h.now)
	return h.recv()
}

func (h *memHost) recv() [][]byte {
	var out [][]byte
	for {
		n := h.peer.Receive(h.rx)
		if n == 0 {
			return out
		}
		for _, f := range h.rx[:n] {
			out = append(out, bytes.Clone(f.Data))
		}
		h.peer.Release(h.rx[:n])
	}
}

func (h *memHost) one1(frame []byte) []byte {
	h.t.Helper()
	out := h.exchange(frame)
	if len(out) != 1 {
		h.t.Fatalf("got %d frames, want 1", len(out))
	}
	return out[0]
}

func arpRequest(src [6]byte, sip, tip netip.Addr) []byte {
	b := proto.AppendEthernet(nil, proto.BroadcastMAC, src, proto.EtherTypeARP)
	return proto.AppendARP(b, proto.ARPRequest, src, sip.As4(), [6]byte{}, tip.As4())
}

func echo4(dst, src [6]byte, sip, dip netip.Addr, payload []byte) []byte {
	b := proto.AppendEthernet(nil, dst, src, proto.EtherTypeIPv4)
	b = proto.AppendIPv4(b, &proto.IPv4Fields{TotalLength: uint16(20 + 8 + len(payload)), ID: 77,
		Flags: proto.IPv4FlagDontFragment, TTL: 61, Protocol: proto.IPProtoICMP, Src: sip.As4(), Dst: dip.As4()})
	return proto.AppendICMPv4Echo(b, proto.ICMPv4EchoRequest, 0x1234, 7, payload)
}

func neighborSolicit(src [6]byte, sip, target netip.Addr) []byte {
	dst := neighbor.SolicitedNode(target)
	mac, _ := neighbor.MulticastMAC(dst)
	b := proto.AppendEthernet(nil, mac, src, proto.EtherTypeIPv6)
	b = proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: 32, NextHeader: proto.IPProtoICMPv6, HopLimit: 255,
		Src: sip.As16(), Dst: dst.As16()})
	return proto.AppendICMPv6NeighborSolicitation(b, sip.As16(), dst.As16(), target.As16(), src)
}

func echo6(dst, src [6]byte, sip, dip netip.Addr, payload []byte) []byte {
	b := proto.AppendEthernet(nil, dst, src, proto.EtherTypeIPv6)
	b = proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: uint16(8 + len(payload)), NextHeader: proto.IPProtoICMPv6,
		HopLimit: 63, Src: sip.As16(), Dst: dip.As16()})
	return proto.AppendICMPv6Echo(b, sip.As16(), dip.As16(), proto.ICMPv6EchoRequest, 0x4321, 9, payload)
}

func TestShardARP(t *testing.T) {
	h := newMemHost(t)
	r := h.one1(arpRequest(h.peerMAC, peer4, our4))
	eth, err := proto.ParseEthernet(r)
	if err != nil || eth.EtherType() != proto.EtherTypeARP || eth.Dst() != h.peerMAC || eth.Src() != h.ourMAC {
		t.Fatalf("reply %x: %v", r, err)
	}
	a, err := proto.ParseARP(eth.Payload())
	if err != nil || a.Op() != proto.ARPReply || a.SenderHW() != h.ourMAC || a.SenderIP() != our4 ||
		a.TargetHW() != h.peerMAC || a.TargetIP() != peer4 {
		t.Fatalf("arp reply %x: %v", r, err)
	}
	// A request for someone else (from a stranger) is not answered.
	stranger := [6]byte{2, 0, 0, 0, 0, 9}
	if out := h.exchange(arpRequest(stranger, netip.MustParseAddr("10.90.0.5"), netip.MustParseAddr("10.90.0.3"))); len(out) != 0 {
		t.Fatalf("answered for another address: %x", out)
	}
	st := h.s.Stats()
	if st.Neighbor != 1 || st.Drops[DropNeighbor] != 1 || st.NeighborSent != 1 {
		t.Fatalf("stats %+v", st)
	}
	if ns := h.s.Neighbors().Stats(); ns.Drops[neighbor.NotOurTarget] != 1 {
		t.Fatalf("neighbor stats %+v", ns)
	}
}

func TestShardEcho4(t *testing.T) {
	h := newMemHost(t)
	payload := []byte("0123456789abcdefghijklmnopqrstuvwxyz!")
	req := echo4(h.ourMAC, h.peerMAC, peer4, our4, payload)
	req = append(req, make([]byte, 6)...) // trailing Ethernet padding
	r := h.one1(req)
	eth, _ := proto.ParseEthernet(r)
	if eth.Dst() != h.peerMAC || eth.Src() != h.ourMAC || eth.EtherType() != proto.EtherTypeIPv4 {
		t.Fatalf("ethernet %x", r)
	}
	ip, err := proto.ParseIPv4(eth.Payload())
	if err != nil || !ip.VerifyChecksum() || ip.Src() != our4 || ip.Dst() != peer4 || ip.TTL() != EchoTTL ||
		len(eth.Payload()) != len(ip) {
		t.Fatalf("ip %x: %v", r, err)
	}
	m, err := proto.ParseICMPv4(ip.Payload())
	if err != nil || m.Type() != proto.ICMPv4EchoReply || m.Code() != 0 || !m.VerifyChecksum() ||
		m.ID() != 0x1234 || m.Seq() != 7 || !bytes.Equal(m.Payload(), payload) {
		t.Fatalf("icmp %x: %v", r, err)
	}
	if st := h.s.Stats(); st.EchoV4 != 1 || st.Transmitted != 1 || st.Dropped() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShardNDP(t *testing.T) {
	h := newMemHost(t)
	r := h.one1(neighborSolicit(h.peerMAC, peer6, our6))
	eth, _ := proto.ParseEthernet(r)
	ip, err := proto.ParseIPv6(eth.Payload())
	if err != nil || eth.Dst() != h.peerMAC || eth.Src() != h.ourMAC || ip.Src() != our6 || ip.Dst() != peer6 ||
		ip.HopLimit() != 255 {
		t.Fatalf("reply %x: %v", r, err)
	}
	m, err := proto.ParseICMPv6(ip.Payload())
	if err != nil || m.Type() != proto.ICMPv6NeighborAdvertisement || !m.VerifyChecksum(ip.SrcArray(), ip.DstArray()) ||
		m.Target() != our6 || !m.Solicited() {
		t.Fatalf("na %x: %v", r, err)
	}
	if mac, ok := m.Options().LinkLayerAddress(proto.NDPOptTargetLinkLayer); !ok || mac != h.ourMAC {
		t.Fatalf("na target link-layer address %x %v", mac, ok)
	}
}

func TestShardEcho6(t *testing.T) {
	h := newMemHost(t)
	payload := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, 100)
	r := h.one1(echo6(h.ourMAC, h.peerMAC, peer6, our6, payload))
	eth, _ := proto.ParseEthernet(r)
	ip, err := proto.ParseIPv6(eth.Payload())
	if err != nil || eth.Dst() != h.peerMAC || eth.Src() != h.ourMAC || ip.Src() != our6 || ip.Dst() != peer6 ||
		ip.HopLimit() != EchoTTL {
		t.Fatalf("reply %x: %v", r, err)
	}
	m, err := proto.ParseICMPv6(ip.Payload())
	if err != nil || m.Type() != proto.ICMPv6EchoReply || m.Checksum() != proto.ICMPv6Checksum(ip.SrcArray(), ip.DstArray(), m) ||
		!m.VerifyChecksum(ip.SrcArray(), ip.DstArray()) || m.ID() != 0x4321 || m.Seq() != 9 || !bytes.Equal(m.Payload(), payload) {
		t.Fatalf("icmpv6 %x: %v", r, err)
	}
	if st := h.s.Stats(); st.EchoV6 != 1 || st.Dropped() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShardAnnounce(t *testing.T) {
	h := newMemHost(t)
	h.s.Announce()
	out := h.recv()
	if len(out) != 2 {
		t.Fatalf("announce sent %d frames", len(out))
	}
	var arp, na bool
	for _, r := range out {
		var d proto.Decoded
		if err := proto.Decode(r, &d, nil); err != nil {
			t.Fatalf("%x: %v", r, err)
		}
		eth, _ := proto.ParseEthernet(r)
		switch eth.EtherType() {
		case proto.EtherTypeARP:
			a, _ := proto.ParseARP(eth.Payload())
			arp = a.SenderIP() == our4 && a.TargetIP() == our4 && eth.Dst() == proto.BroadcastMAC
		case proto.EtherTypeIPv6:
			ip, _ := proto.ParseIPv6(eth.Payload())
			m, _ := proto.ParseICMPv6(ip.Payload())
			na = m.Type() == proto.ICMPv6NeighborAdvertisement && m.Target() == our6 && m.Override()
		}
	}
	if !arp || !na {
		t.Fatalf("announce: arp %v na %v", arp, na)
	}
}

// TestShardDrops: junk is released and counted, never answered, and the
// link gets every buffer back.
func TestShardDrops(t *testing.T) {
	h := newMemHost(t)
	good4 := echo4(h.ourMAC, h.peerMAC, peer4, our4, []byte("payload!"))
	good6 := echo6(h.ourMAC, h.peerMAC, peer6, our6, []byte("payload!"))
	badsum := bytes.Clone(good4)
	badsum[len(badsum)-1] ^= 0xff
	bad6 := bytes.Clone(good6)
	bad6[len(bad6)-1] ^= 0xff
	frag := echo4(h.ourMAC, h.peerMAC, peer4, our4, []byte("payload")) // 15 bytes: not a multiple of 8
	ipf, _ := proto.ParseIPv4(frag[14:])
	ipf.SetFlagsFragmentOffset(proto.IPv4FlagMoreFragments, 0)
	ipf.UpdateChecksum()
	other := echo4(h.ourMAC, h.peerMAC, peer4, netip.MustParseAddr("10.90.0.9"), nil)
	mcastSrc := echo4(h.ourMAC, [6]byte{1, 0, 0x5e, 0, 0, 1}, peer4, our4, nil)
	udp := bytes.Clone(good4)
	ipu, _ := proto.ParseIPv4(udp[14:])
	ipu.SetProtocol(proto.IPProtoUDP)
	ipu.UpdateChecksum()
	hbh6 := bytes.Clone(good6)
	hbh6[14+6] = proto.IPProtoHopByHop
	reply := echo4(h.ourMAC, h.peerMAC, peer4, our4, nil)
	reply[14+20] = proto.ICMPv4EchoReply
	proto.ICMPv4(reply[14+20:]).UpdateChecksum()
	cases := []struct {
		name  string
		frame []byte
		why   DropReason
	}{
		{"short ethernet", []byte{1, 2, 3}, DropMalformed},
		{"ethertype", proto.AppendEthernet(nil, h.ourMAC, h.peerMAC, 0x88b5), DropEtherType},
		{"vlan", proto.AppendEthernet(nil, h.ourMAC, h.peerMAC, proto.EtherTypeVLAN), DropEtherType},
		{"truncated ipv4", good4[:30], DropMalformed},
		{"truncated ipv6", good6[:50], DropMalformed},
		{"truncated icmpv4", good4[:14+20+4], DropMalformed},
		{"truncated arp", arpRequest(h.peerMAC, peer4, our4)[:30], DropMalformed},
		{"ipv4 header checksum", func() []byte { b := bytes.Clone(good4); b[14+10] ^= 1; return b }(), DropBadChecksum},
		{"icmpv4 checksum", badsum, DropBadChecksum},
		{"icmpv6 checksum", bad6, DropBadChecksum},
		{"not ours", other, DropNotOurs},
		{"other host's MAC", echo4([6]byte{2, 0, 0, 0, 0, 7}, h.peerMAC, peer4, our4, nil), DropNotOurs},
		{"bad fragment", frag, DropReasm},
		{"udp length", udp, DropMalformed},
		{"ipv6 hop-by-hop, unknown upper layer", hbh6, DropProtocol},
		{"echo reply", reply, DropProtocol},
		{"group source MAC", mcastSrc, DropBadSource},
		{"ns for another", neighborSolicit(h.peerMAC, peer6, netip.MustParseAddr("fd00:90::3")), DropNeighbor},
	}
	for _, c := range cases {
		before := h.s.Stats().Drops[c.why]
		if out := h.exchange(c.frame); len(out) != 0 {
			t.Errorf("%s: answered %x", c.name, out)
		}
		if got := h.s.Stats().Drops[c.why]; got != before+1 {
			t.Errorf("%s: drops[%v] %d -> %d", c.name, c.why, before, got)
		}
	}
	// Every truncation of every frame: no panic, no answer beyond the
	// complete frames.
	for _, full := range [][]byte{good4, good6, arpRequest(h.peerMAC, peer4, our4), neighborSolicit(h.peerMAC, peer6, our6)} {
		for n := 0; n < len(full); n++ {
			h.exchange(full[:n])
		}
	}
	st := h.s.Stats()
	if st.Transmitted != st.NeighborSent+st.EchoV4+st.EchoV6 || st.RxFrames != st.Dropped()+st.Neighbor+st.EchoV4+st.EchoV6 {
		t.Fatalf("stats do not add up: %+v", st)
	}
	b := h.s.l.(*link.Mem)
	if free, total := b.Buffers(); free != total {
		t.Fatalf("shard's link has %d of %d buffers free", free, total)
	}
}

// TestShardEchoAllocs: the echo paths allocate nothing.
func TestShardEchoAllocs(t *testing.T) {
	h := newMemHost(t)
	req4 := echo4(h.ourMAC, h.peerMAC, peer4, our4, make([]byte, 56))
	req6 := echo6(h.ourMAC, h.peerMAC, peer6, our6, make([]byte, 56))
	rx := make([]pipeline.Frame, 4)
	for _, req := range [][]byte{req4, req6} {
		allocs := testing.AllocsPerRun(1000, func() {
			h.send(req)
			if h.s.Poll(h.now) != 1 {
				t.Fatal("shard received nothing")
			}
			if n := h.peer.Receive(rx); n != 1 {
				t.Fatalf("peer received %d", n)
			}
			h.peer.Release(rx[:1])
		})
		if allocs != 0 {
			t.Errorf("%v allocations per echo", allocs)
		}
	}
	if st := h.s.Stats(); st.EchoV4 != 1001 || st.EchoV6 != 1001 {
		t.Fatalf("stats %+v", st)
	}
}

// TestShardRun: Run announces, answers and stops with its context.
func TestShardRun(t *testing.T) {
	h := newMemHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	got := map[uint16]int{}
	deadline := time.Now().Add(5 * time.Second)
	sent := false
	for got[proto.EtherTypeIPv4] == 0 && time.Now().Before(deadline) {
		for _, r := range h.recv() {
			eth, err := proto.ParseEthernet(r)
			if err != nil {
				t.Fatal(err)
			}
			got[eth.EtherType()]++
		}
		if !sent && got[proto.EtherTypeARP] > 0 && got[proto.EtherTypeIPv6] > 0 {
			h.send(echo4(h.ourMAC, h.peerMAC, peer4, our4, []byte("run")))
			sent = true
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if got[proto.EtherTypeARP] != 1 || got[proto.EtherTypeIPv6] != 1 || got[proto.EtherTypeIPv4] != 1 {
		t.Fatalf("peer received %v", got)
	}
}
