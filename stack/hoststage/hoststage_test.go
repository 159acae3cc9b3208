package hoststage

import (
	"net/netip"
	"testing"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/neighbor"
)

// slab is a FrameSource over plain memory that counts what is out.
type slab struct {
	mem  []byte
	free []uint64
	out  int
}

func newSlab(n int) *slab {
	s := &slab{mem: make([]byte, n*2048)}
	for i := range n {
		s.free = append(s.free, uint64(i*2048))
	}
	return s
}

func (s *slab) Alloc() (pipeline.Frame, bool) {
	if len(s.free) == 0 {
		return pipeline.Frame{}, false
	}
	a := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.out++
	return pipeline.Frame{Data: s.mem[a : a : a+2048], Addr: a}, true
}

func (s *slab) put(f pipeline.Frame) { s.free = append(s.free, f.Addr); s.out-- }

var (
	macLB   = [6]byte{2, 0, 0, 0, 1, 1}
	macPeer = [6]byte{2, 0, 0, 0, 2, 2}
	ourA    = netip.MustParseAddr("10.0.1.1")
	peerA   = netip.MustParseAddr("10.0.1.11")
	ourA6   = netip.MustParseAddr("fd00:1::1")
)

func newStage(t *testing.T, intercept func(uint16, []byte) bool) (*Stage, *slab) {
	t.Helper()
	sl := newSlab(64)
	s, err := New(Config{
		Ports: []PortConfig{{Index: 1, MAC: macLB, Addrs: []netip.Prefix{
			netip.PrefixFrom(ourA, 24), netip.PrefixFrom(ourA6, 64)}, Gateways: []netip.Addr{netip.MustParseAddr("10.0.1.254")}}},
		Neighbor:  neighbor.DefaultConfig(),
		Frames:    sl,
		Intercept: intercept,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, sl
}

// run passes frames (from port 1) through the stage, then releases what
// it built; it returns the frames left undecided, those redirected (the
// stage's own and in-place replies), and frees everything.
func run(s *Stage, sl *slab, now int64, frames ...[]byte) (pass int, sent [][]byte) {
	b := pipeline.Batch{Now: now, Port: 1}
	for _, fr := range frames {
		b.Frames = append(b.Frames, pipeline.Frame{Data: append([]byte(nil), fr...), InPort: 1})
	}
	s.Process(&b)
	for _, f := range b.Frames {
		switch f.Verdict {
		case pipeline.Pass:
			pass++
		case pipeline.Redirect:
			sent = append(sent, f.Data)
		}
	}
	out := make([]pipeline.Frame, 256)
	n := s.Release(now, out)
	for _, f := range out[:n] {
		if f.Verdict == pipeline.Redirect {
			sent = append(sent, append([]byte(nil), f.Data...))
		}
		sl.put(f)
	}
	return pass, sent
}

func arp(op uint16, sha [6]byte, spa, tpa netip.Addr, dst [6]byte) []byte {
	b := proto.AppendEthernet(nil, dst, sha, proto.EtherTypeARP)
	tha := [6]byte{}
	if op == proto.ARPReply {
		tha = macLB
	}
	return proto.AppendARP(b, op, sha, spa.As4(), tha, tpa.As4())
}

func TestARPAndResolve(t *testing.T) {
	s, sl := newStage(t, nil)
	// An ARP request for our address gets a reply.
	_, sent := run(s, sl, 1e9, arp(proto.ARPRequest, macPeer, peerA, ourA, proto.BroadcastMAC))
	if len(sent) != 1 {
		t.Fatalf("%d frames for an ARP request", len(sent))
	}
	a, _ := proto.ParseARP(sent[0][14:])
	if a.Op() != proto.ARPReply || a.SenderIP() != ourA {
		t.Fatalf("reply %x", sent[0])
	}
	// Lookup of an unknown backend starts resolution: a request goes out.
	other := netip.MustParseAddr("10.0.1.12")
	if _, ok := s.Lookup(other); ok {
		t.Fatal("resolved an unknown neighbor")
	}
	_, sent = run(s, sl, 1e9)
	if len(sent) != 1 {
		t.Fatalf("%d frames after a miss", len(sent))
	}
	// A packet sent to it waits, and leaves with the MAC once the reply
	// arrives.
	pkt := proto.AppendIPv4(nil, &proto.IPv4Fields{TotalLength: 20, TTL: 64, Protocol: 253, Src: ourA.As4(), Dst: other.As4()})
	if !s.SendIP(pkt) {
		t.Fatal("SendIP refused")
	}
	if _, sent = run(s, sl, 1e9); len(sent) != 0 {
		t.Fatalf("sent %d frames before resolution", len(sent))
	}
	mac2 := [6]byte{2, 0, 0, 0, 2, 3}
	_, sent = run(s, sl, 1e9, arp(proto.ARPReply, mac2, other, ourA, macLB))
	if len(sent) != 1 || proto.Ethernet(sent[0]).Dst() != mac2 || string(sent[0][14:]) != string(pkt) {
		t.Fatalf("after the reply: %x", sent)
	}
	if mac, ok := s.Lookup(other); !ok || mac != mac2 {
		t.Fatalf("Lookup after the reply: %x %v", mac, ok)
	}
	// Off-link destinations go to the gateway.
	if p, ok := s.PortFor(netip.MustParseAddr("192.0.2.1")); !ok || p != 1 {
		t.Fatal("no route through the gateway")
	}
	if sl.out != 0 {
		t.Fatalf("%d frames not returned", sl.out)
	}
}

func TestEchoInterceptPass(t *testing.T) {
	var got []byte
	s, sl := newStage(t, func(port uint16, ip []byte) bool {
		got = append([]byte(nil), ip...)
		return ip[9] == proto.IPProtoTCP
	})
	echo := proto.AppendEthernet(nil, macLB, macPeer, proto.EtherTypeIPv4)
	echo = proto.AppendIPv4(echo, &proto.IPv4Fields{TotalLength: 28, TTL: 64, Protocol: proto.IPProtoICMP, Src: peerA.As4(), Dst: ourA.As4()})
	echo = proto.AppendICMPv4Echo(echo, proto.ICMPv4EchoRequest, 1, 2, nil)
	tcp := proto.AppendEthernet(nil, macLB, macPeer, proto.EtherTypeIPv4)
	tcp = proto.AppendIPv4(tcp, &proto.IPv4Fields{TotalLength: 40, TTL: 64, Protocol: proto.IPProtoTCP, Src: peerA.As4(), Dst: ourA.As4()})
	tcp = append(tcp, make([]byte, 20)...)
	udp := proto.AppendEthernet(nil, macLB, macPeer, proto.EtherTypeIPv4)
	udp = proto.AppendIPv4(udp, &proto.IPv4Fields{TotalLength: 28, TTL: 64, Protocol: proto.IPProtoUDP, Src: peerA.As4(), Dst: ourA.As4()})
	udp = append(udp, make([]byte, 8)...)
	transit := proto.AppendEthernet(nil, macLB, macPeer, proto.EtherTypeIPv4)
	transit = proto.AppendIPv4(transit, &proto.IPv4Fields{TotalLength: 28, TTL: 64, Protocol: proto.IPProtoUDP, Src: peerA.As4(), Dst: netip.MustParseAddr("10.0.0.100").As4()})
	transit = append(transit, make([]byte, 8)...)
	pass, sent := run(s, sl, 1e9, echo, tcp, udp, transit)
	if pass != 1 {
		t.Fatalf("%d frames left for the next stage, want 1 (the transit one)", pass)
	}
	if len(sent) != 1 || sent[0][14+20] != proto.ICMPv4EchoReply || proto.Ethernet(sent[0]).Dst() != macPeer {
		t.Fatalf("echo: %x", sent)
	}
	st := s.Stats()
	if st.Echo != 1 || st.Intercepted != 1 || st.HostDrops != 1 || got[9] != proto.IPProtoUDP {
		t.Fatalf("stats %+v", st)
	}
}

// TestGroupSharesReplies: a neighbor reply one worker's stage receives
// resolves the address in the other workers' stages too.
func TestGroupSharesReplies(t *testing.T) {
	g := &Group{}
	var stages [2]*Stage
	var slabs [2]*slab
	for i := range stages {
		slabs[i] = newSlab(64)
		s, err := New(Config{Ports: []PortConfig{{Index: 1, MAC: macLB, Addrs: []netip.Prefix{netip.PrefixFrom(ourA, 24)}}},
			Neighbor: neighbor.DefaultConfig(), Frames: slabs[i], Group: g})
		if err != nil {
			t.Fatal(err)
		}
		stages[i] = s
	}
	other := netip.MustParseAddr("10.0.1.12")
	// Stage 1 wants the address; the reply lands on stage 0.
	stages[1].Lookup(other)
	run(stages[1], slabs[1], 1e9)
	mac2 := [6]byte{2, 0, 0, 0, 2, 3}
	run(stages[0], slabs[0], 1e9, arp(proto.ARPReply, mac2, other, ourA, macLB))
	run(stages[1], slabs[1], 1e9) // Release drains the inbox
	if mac, ok := stages[1].Lookup(other); !ok || mac != mac2 {
		t.Fatalf("stage 1 did not learn the shared reply: %x %v", mac, ok)
	}
}

// TestLookupCache checks the next-hop cache: a cached answer stands for
// hopTTL without touching the neighbor table, a changed link-layer address
// is seen at once, and after hopTTL the table is consulted again (so its
// reachability state machine still sees the entry used).
func TestLookupCache(t *testing.T) {
	s, sl := newStage(t, nil)
	other := netip.MustParseAddr("10.0.1.12")
	mac2, mac3 := [6]byte{2, 0, 0, 0, 2, 3}, [6]byte{2, 0, 0, 0, 2, 4}
	// An unsolicited ARP request from it creates a STALE entry.
	run(s, sl, 1e9, arp(proto.ARPRequest, mac2, other, ourA, proto.BroadcastMAC))
	p := s.byIdx[1]
	if st, _ := p.nb.State(other); st != neighbor.Stale {
		t.Fatalf("state %v, want STALE", st)
	}
	// The first Lookup uses the entry (STALE -> DELAY) and caches it.
	if mac, ok := s.Lookup(other); !ok || mac != mac2 {
		t.Fatalf("Lookup: %x %v", mac, ok)
	}
	if st, _ := p.nb.State(other); st != neighbor.Delay {
		t.Fatalf("state %v after a use, want DELAY", st)
	}
	e := &s.hops[hopIndex(other)]
	if e.ip != other || e.mac != mac2 {
		t.Fatalf("not cached: %+v", e)
	}
	// Within hopTTL, a hit: the entry is not looked at.
	e.mac = [6]byte{0xee} // poison: only a hit returns it
	if mac, _ := s.Lookup(other); mac != e.mac {
		t.Fatalf("Lookup within hopTTL went to the table: %x", mac)
	}
	// A new address (gratuitous ARP, which overrides) drops the cache.
	run(s, sl, 1e9+1, arp(proto.ARPRequest, mac3, other, other, proto.BroadcastMAC))
	if _, m := p.nb.State(other); m != mac3 {
		t.Fatalf("table holds %x, want %x", m, mac3)
	}
	if mac, ok := s.Lookup(other); !ok || mac != mac3 {
		t.Fatalf("Lookup after the address changed: %x %v", mac, ok)
	}
	// After hopTTL the table is asked again.
	e.mac = [6]byte{0xee}
	run(s, sl, 1e9+1+hopTTL)
	if mac, _ := s.Lookup(other); mac != mac3 {
		t.Fatalf("Lookup after hopTTL: %x, want the table's %x", mac, mac3)
	}
}
