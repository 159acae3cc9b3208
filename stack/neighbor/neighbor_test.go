package neighbor_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/neighbor"
)

type pkt uint32

type released struct {
	p   pkt
	mac [6]byte
}

type dropped struct {
	p   pkt
	why neighbor.Reason
}

type sent struct {
	at int64
	a  neighbor.Action
}

// rec is a Sink that records everything, stamped with the fake clock.
type rec struct {
	now      *int64
	sent     []sent
	released []released
	dropped  []dropped
}

func (r *rec) Send(a *neighbor.Action) { r.sent = append(r.sent, sent{*r.now, *a}) }
func (r *rec) Release(p pkt, mac [6]byte) {
	r.released = append(r.released, released{p, mac})
}
func (r *rec) Drop(p pkt, why neighbor.Reason) { r.dropped = append(r.dropped, dropped{p, why}) }

// nopSink records nothing, for the allocation tests.
type nopSink struct{ n int }

func (s *nopSink) Send(*neighbor.Action)     { s.n++ }
func (s *nopSink) Release(pkt, [6]byte)      { s.n++ }
func (s *nopSink) Drop(pkt, neighbor.Reason) { s.n++ }

var (
	ourMAC   = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	peerMAC  = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	otherMAC = [6]byte{0x02, 0, 0, 0, 0, 0x03}

	our4  = netip.MustParseAddr("10.0.0.1")
	peer4 = netip.MustParseAddr("10.0.0.2")
	our6  = netip.MustParseAddr("fd00::1")
	peer6 = netip.MustParseAddr("fd00::2")
	ll6   = netip.MustParseAddr("fe80::1")
)

const sec = int64(time.Second)

type env struct {
	t   *testing.T
	now int64
	tab *neighbor.Table[pkt]
	rec *rec
}

func newEnv(t *testing.T, mod func(*neighbor.Config)) *env {
	e := &env{t: t, now: 1000 * sec}
	e.rec = &rec{now: &e.now}
	cfg := neighbor.DefaultConfig()
	cfg.MAC = ourMAC
	cfg.Seed = 1
	if mod != nil {
		mod(&cfg)
	}
	e.tab = neighbor.New[pkt](cfg, e.rec)
	e.tab.AddAddress(our4)
	e.tab.AddAddress(our6)
	return e
}

// advance moves the clock by d, running Tick at every deadline on the way
// as a timer wheel would.
func (e *env) advance(d time.Duration) {
	end := e.now + int64(d)
	for e.tab.Next() <= end {
		e.now = max(e.now, e.tab.Next())
		e.tab.Tick(e.now)
	}
	e.now = end
	e.tab.Tick(e.now)
}

func (e *env) input(frame []byte) neighbor.Reason { return e.tab.Input(e.now, frame) }

func (e *env) expect(r, want neighbor.Reason) {
	e.t.Helper()
	if r != want {
		e.t.Fatalf("Input = %v, want %v", r, want)
	}
}

func (e *env) state(a netip.Addr) (neighbor.State, [6]byte) { return e.tab.State(a) }

func arpFrame(op uint16, ethSrc, ethDst, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	b := proto.AppendEthernet(nil, ethDst, ethSrc, proto.EtherTypeARP)
	return proto.AppendARP(b, op, sha, spa.As4(), tha, tpa.As4())
}

func ipv6Frame(srcMAC, dstMAC [6]byte, src, dst netip.Addr, hop uint8, msg []byte) []byte {
	b := proto.AppendEthernet(nil, dstMAC, srcMAC, proto.EtherTypeIPv6)
	f := proto.IPv6Fields{PayloadLength: uint16(len(msg)), NextHeader: proto.IPProtoICMPv6, HopLimit: hop, Src: src.As16(), Dst: dst.As16()}
	b = proto.AppendIPv6(b, &f)
	return append(b, msg...)
}

// naFrame is an NA for target from peerMAC (target's address as source)
// to our6.
func naFrame(srcMAC [6]byte, target netip.Addr, flags uint8, tll [6]byte) []byte {
	msg := proto.AppendICMPv6NeighborAdvertisement(nil, target.As16(), our6.As16(), target.As16(), flags, tll)
	return ipv6Frame(srcMAC, ourMAC, target, our6, 255, msg)
}

// nsFrame is an NS for target from src (with source link-layer sll) to
// target's solicited-node group.
func nsFrame(srcMAC [6]byte, src, target netip.Addr, sll [6]byte) []byte {
	dst := neighbor.SolicitedNode(target)
	msg := proto.AppendICMPv6NeighborSolicitation(nil, src.As16(), dst.As16(), target.As16(), sll)
	mac, _ := neighbor.MulticastMAC(dst)
	return ipv6Frame(srcMAC, mac, src, dst, 255, msg)
}

const (
	fS = proto.NDPFlagSolicited
	fO = proto.NDPFlagOverride
)

// Steps that bring peer6 into each state.
func toIncomplete(e *env) {
	if _, ok := e.tab.Resolve(e.now, peer6, 1); ok {
		e.t.Fatal("Resolve hit on an empty table")
	}
}

func toReachable(e *env) {
	toIncomplete(e)
	e.expect(e.input(naFrame(peerMAC, peer6, fS|fO, peerMAC)), neighbor.OK)
}

func toStale(e *env) {
	toReachable(e)
	e.advance(46 * time.Second) // > 1.5 × ReachableTime
}

func toDelay(e *env) {
	toStale(e)
	if _, ok := e.tab.Lookup(e.now, peer6); !ok {
		e.t.Fatal("Lookup missed a STALE entry")
	}
}

func toProbe(e *env) {
	toDelay(e)
	e.advance(5 * time.Second)
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name      string
		run       func(e *env)
		want      neighbor.State
		wantMAC   [6]byte
		wantRel   int // packets released
		wantDrops int // packets dropped
	}{
		{"none/Resolve→INCOMPLETE", toIncomplete, neighbor.Incomplete, [6]byte{}, 0, 0},
		{"INCOMPLETE/solicited NA→REACHABLE", toReachable, neighbor.Reachable, peerMAC, 1, 0},
		{"INCOMPLETE/unsolicited NA→STALE→DELAY (queue sent)", func(e *env) {
			toIncomplete(e)
			e.expect(e.input(naFrame(peerMAC, peer6, fO, peerMAC)), neighbor.OK)
		}, neighbor.Delay, peerMAC, 1, 0},
		{"INCOMPLETE/NA without TLL ignored", func(e *env) {
			toIncomplete(e)
			e.expect(e.input(naFrame(peerMAC, peer6, fS|fO, [6]byte{})), neighbor.NoLinkAddr)
		}, neighbor.Incomplete, [6]byte{}, 0, 0},
		{"INCOMPLETE/NS with SLL→STALE→DELAY", func(e *env) {
			toIncomplete(e)
			e.expect(e.input(nsFrame(peerMAC, peer6, our6, peerMAC)), neighbor.OK)
		}, neighbor.Delay, peerMAC, 1, 0},
		{"INCOMPLETE/timeout→none", func(e *env) {
			toIncomplete(e)
			e.advance(3 * time.Second)
		}, neighbor.NoState, [6]byte{}, 0, 1},
		{"REACHABLE/timeout→STALE", toStale, neighbor.Stale, peerMAC, 1, 0},
		{"REACHABLE/not yet timed out", func(e *env) {
			toReachable(e)
			e.advance(14 * time.Second) // < 0.5 × ReachableTime
		}, neighbor.Reachable, peerMAC, 1, 0},
		{"REACHABLE/NA O=0 other LL→STALE, MAC kept", func(e *env) {
			toReachable(e)
			e.expect(e.input(naFrame(otherMAC, peer6, fS, otherMAC)), neighbor.Ignored)
		}, neighbor.Stale, peerMAC, 1, 0},
		{"REACHABLE/NA O=1 S=0 other LL→STALE, MAC updated", func(e *env) {
			toReachable(e)
			e.expect(e.input(naFrame(otherMAC, peer6, fO, otherMAC)), neighbor.OK)
		}, neighbor.Stale, otherMAC, 1, 0},
		{"REACHABLE/NA S=1 same LL→REACHABLE", func(e *env) {
			toReachable(e)
			e.expect(e.input(naFrame(peerMAC, peer6, fS, peerMAC)), neighbor.OK)
		}, neighbor.Reachable, peerMAC, 1, 0},
		{"REACHABLE/NS other SLL→STALE, MAC updated", func(e *env) {
			toReachable(e)
			e.expect(e.input(nsFrame(otherMAC, peer6, our6, otherMAC)), neighbor.OK)
		}, neighbor.Stale, otherMAC, 1, 0},
		{"STALE/Lookup→DELAY", toDelay, neighbor.Delay, peerMAC, 1, 0},
		{"STALE/NA S=1 O=0 same LL→REACHABLE", func(e *env) {
			toStale(e)
			e.expect(e.input(naFrame(peerMAC, peer6, fS, peerMAC)), neighbor.OK)
		}, neighbor.Reachable, peerMAC, 1, 0},
		{"STALE/NA S=0 O=0 other LL ignored", func(e *env) {
			toStale(e)
			e.expect(e.input(naFrame(otherMAC, peer6, 0, otherMAC)), neighbor.Ignored)
		}, neighbor.Stale, peerMAC, 1, 0},
		{"DELAY/timeout→PROBE", toProbe, neighbor.Probe, peerMAC, 1, 0},
		{"DELAY/solicited NA→REACHABLE", func(e *env) {
			toDelay(e)
			e.expect(e.input(naFrame(peerMAC, peer6, fS, [6]byte{})), neighbor.OK)
		}, neighbor.Reachable, peerMAC, 1, 0},
		{"DELAY/Confirm→REACHABLE", func(e *env) {
			toDelay(e)
			e.tab.Confirm(e.now, peer6)
		}, neighbor.Reachable, peerMAC, 1, 0},
		{"PROBE/solicited NA→REACHABLE", func(e *env) {
			toProbe(e)
			e.expect(e.input(naFrame(peerMAC, peer6, fS|fO, peerMAC)), neighbor.OK)
		}, neighbor.Reachable, peerMAC, 1, 0},
		{"PROBE/unsolicited NA O=1 other LL→STALE", func(e *env) {
			toProbe(e)
			e.expect(e.input(naFrame(otherMAC, peer6, fO, otherMAC)), neighbor.OK)
		}, neighbor.Stale, otherMAC, 1, 0},
		{"PROBE/timeout→none", func(e *env) {
			toProbe(e)
			e.advance(3 * time.Second)
		}, neighbor.NoState, [6]byte{}, 1, 0},
		{"PROBE/still probing", func(e *env) {
			toProbe(e)
			e.advance(2 * time.Second)
		}, neighbor.Probe, peerMAC, 1, 0},
		{"none/NS with SLL→STALE", func(e *env) {
			e.expect(e.input(nsFrame(peerMAC, peer6, our6, peerMAC)), neighbor.OK)
		}, neighbor.Stale, peerMAC, 0, 0},
		{"none/unsolicited NA not installed", func(e *env) {
			e.expect(e.input(naFrame(peerMAC, peer6, fO, peerMAC)), neighbor.NoEntry)
		}, neighbor.NoState, [6]byte{}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tc.run(e)
			st, mac := e.state(peer6)
			if st != tc.want || mac != tc.wantMAC {
				t.Errorf("state = %v %x, want %v %x", st, mac, tc.want, tc.wantMAC)
			}
			if len(e.rec.released) != tc.wantRel || len(e.rec.dropped) != tc.wantDrops {
				t.Errorf("released %d dropped %d, want %d %d", len(e.rec.released), len(e.rec.dropped), tc.wantRel, tc.wantDrops)
			}
			for _, r := range e.rec.released {
				if r.mac != peerMAC && r.mac != otherMAC {
					t.Errorf("released to %x", r.mac)
				}
			}
			for _, d := range e.rec.dropped {
				if d.why != neighbor.GaveUp {
					t.Errorf("dropped with %v, want GaveUp", d.why)
				}
			}
		})
	}
}

func TestLookupLazyStale(t *testing.T) {
	// Lookup after ReachableTime without a Tick must still see STALE and
	// move to DELAY.
	e := newEnv(t, nil)
	toReachable(e)
	e.now += 46 * sec
	if _, ok := e.tab.Lookup(e.now, peer6); !ok {
		t.Fatal("miss")
	}
	if st, _ := e.state(peer6); st != neighbor.Delay {
		t.Fatalf("state %v, want DELAY", st)
	}
}

func TestReachableRandomFactor(t *testing.T) {
	// The REACHABLE deadline lies in [0.5, 1.5) × ReachableTime and is not
	// the same for every entry.
	e := newEnv(t, nil)
	seen := map[int64]bool{}
	for i := range 50 {
		a := netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
		e.tab.Resolve(e.now, a, pkt(i))
		e.expect(e.input(arpFrame(proto.ARPReply, peerMAC, ourMAC, peerMAC, a, ourMAC, our4)), neighbor.OK)
	}
	start := e.now
	for e.tab.Len() > 0 && e.now < start+60*sec {
		next := e.tab.Next()
		e.now = next
		before := countState(e, neighbor.Reachable)
		e.tab.Tick(e.now)
		if countState(e, neighbor.Reachable) < before {
			d := e.now - start
			if d < 15*sec || d >= 45*sec {
				t.Fatalf("REACHABLE expired after %v", time.Duration(d))
			}
			seen[d] = true
		}
		if countState(e, neighbor.Reachable) == 0 {
			break
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct REACHABLE lifetimes", len(seen))
	}
}

func countState(e *env, s neighbor.State) int {
	n := 0
	for i := range 50 {
		if st, _ := e.state(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})); st == s {
			n++
		}
	}
	return n
}

func TestARP(t *testing.T) {
	e := newEnv(t, nil)

	// A request for our address: reply to the sender, entry created STALE.
	r := e.input(arpFrame(proto.ARPRequest, peerMAC, proto.BroadcastMAC, peerMAC, peer4, [6]byte{}, our4))
	e.expect(r, neighbor.OK)
	if st, mac := e.state(peer4); st != neighbor.Stale || mac != peerMAC {
		t.Fatalf("after request: %v %x", st, mac)
	}
	if len(e.rec.sent) != 1 || e.rec.sent[0].a.Kind != neighbor.SendARPReply {
		t.Fatalf("sent %+v", e.rec.sent)
	}
	f := e.rec.sent[0].a.AppendFrame(nil)
	eth, _ := proto.ParseEthernet(f)
	a, err := proto.ParseARP(eth.Payload())
	if err != nil || eth.Dst() != peerMAC || eth.Src() != ourMAC || eth.EtherType() != proto.EtherTypeARP ||
		a.Op() != proto.ARPReply || a.SenderHW() != ourMAC || a.SenderIP() != our4 || a.TargetHW() != peerMAC || a.TargetIP() != peer4 {
		t.Fatalf("bad reply frame % x (%v)", f, err)
	}

	// Resolution: broadcast request, unicast reply → REACHABLE, queue sent.
	p3 := netip.MustParseAddr("10.0.0.3")
	for i := range 3 {
		if _, ok := e.tab.Resolve(e.now, p3, pkt(10+i)); ok {
			t.Fatal("hit")
		}
	}
	last := e.rec.sent[len(e.rec.sent)-1].a
	if len(e.rec.sent) != 2 || last.Kind != neighbor.SendARPRequest || last.DstMAC != proto.BroadcastMAC || last.Target != p3 || last.Src != our4 {
		t.Fatalf("solicitation %+v (%d sent)", last, len(e.rec.sent))
	}
	f = last.AppendFrame(nil)
	eth, _ = proto.ParseEthernet(f)
	a, _ = proto.ParseARP(eth.Payload())
	if a.Op() != proto.ARPRequest || a.TargetIP() != p3 || a.SenderIP() != our4 || a.SenderHW() != ourMAC {
		t.Fatalf("bad request frame % x", f)
	}
	e.expect(e.input(arpFrame(proto.ARPReply, otherMAC, ourMAC, otherMAC, p3, ourMAC, our4)), neighbor.OK)
	if st, mac := e.state(p3); st != neighbor.Reachable || mac != otherMAC {
		t.Fatalf("after reply: %v %x", st, mac)
	}
	if len(e.rec.released) != 3 || e.rec.released[0].p != 10 || e.rec.released[2].p != 12 {
		t.Fatalf("released %+v", e.rec.released)
	}

	// RFC 826 merge: a gratuitous ARP updates an existing entry.
	newMAC := [6]byte{0x02, 9, 9, 9, 9, 9}
	e.expect(e.input(arpFrame(proto.ARPRequest, newMAC, proto.BroadcastMAC, newMAC, p3, [6]byte{}, p3)), neighbor.OK)
	if st, mac := e.state(p3); st != neighbor.Stale || mac != newMAC {
		t.Fatalf("after gratuitous: %v %x", st, mac)
	}
	// …but does not create one for a stranger.
	p4 := netip.MustParseAddr("10.0.0.4")
	e.expect(e.input(arpFrame(proto.ARPRequest, newMAC, proto.BroadcastMAC, newMAC, p4, [6]byte{}, p4)), neighbor.Ignored)
	if st, _ := e.state(p4); st != neighbor.NoState {
		t.Fatal("gratuitous ARP from a stranger installed")
	}

	// ARP probe (sender 0.0.0.0): answered, nothing learned.
	n := e.tab.Len()
	e.expect(e.input(arpFrame(proto.ARPRequest, otherMAC, proto.BroadcastMAC, otherMAC, netip.IPv4Unspecified(), [6]byte{}, our4)), neighbor.OK)
	if e.tab.Len() != n || e.rec.sent[len(e.rec.sent)-1].a.Kind != neighbor.SendARPReply {
		t.Fatal("probe handling")
	}

	// Probing in PROBE is unicast.
	e.tab.Lookup(e.now, p3) // STALE → DELAY
	e.advance(5 * time.Second)
	last = e.rec.sent[len(e.rec.sent)-1].a
	if st, _ := e.state(p3); st != neighbor.Probe || last.Kind != neighbor.SendARPRequest || last.DstMAC != newMAC {
		t.Fatalf("probe: %v %+v", st, last)
	}
}

func TestBogusInput(t *testing.T) {
	goodNS := nsFrame(peerMAC, peer6, our6, peerMAC)
	badSum := append([]byte(nil), goodNS...)
	badSum[len(badSum)-1] ^= 0xff
	hop := append([]byte(nil), goodNS...)
	hop[proto.EthernetLen+7] = 64
	naMcastS := func() []byte {
		msg := proto.AppendICMPv6NeighborAdvertisement(nil, peer6.As16(), netip.MustParseAddr("ff02::1").As16(), peer6.As16(), fS, peerMAC)
		return ipv6Frame(peerMAC, ourMAC, peer6, netip.MustParseAddr("ff02::1"), 255, msg)
	}()
	dadWithSLL := func() []byte {
		dst := neighbor.SolicitedNode(our6)
		msg := proto.AppendICMPv6NeighborSolicitation(nil, [16]byte{}, dst.As16(), our6.As16(), peerMAC)
		return ipv6Frame(peerMAC, ourMAC, netip.IPv6Unspecified(), dst, 255, msg)
	}()
	echo := func() []byte {
		msg := proto.AppendICMPv6Echo(nil, peer6.As16(), our6.As16(), proto.ICMPv6EchoRequest, 1, 1, nil)
		return ipv6Frame(peerMAC, ourMAC, peer6, our6, 64, msg)
	}()
	tests := []struct {
		name  string
		frame []byte
		want  neighbor.Reason
	}{
		{"ARP spoofing our IPv4", arpFrame(proto.ARPReply, otherMAC, ourMAC, otherMAC, our4, ourMAC, our4), neighbor.Spoofed},
		{"gratuitous ARP for our IPv4", arpFrame(proto.ARPRequest, otherMAC, proto.BroadcastMAC, otherMAC, our4, [6]byte{}, our4), neighbor.Spoofed},
		{"ARP request for someone else", arpFrame(proto.ARPRequest, peerMAC, proto.BroadcastMAC, peerMAC, peer4, [6]byte{}, netip.MustParseAddr("10.0.0.9")), neighbor.NotOurTarget},
		{"unsolicited ARP reply", arpFrame(proto.ARPReply, peerMAC, ourMAC, peerMAC, peer4, ourMAC, our4), neighbor.OK},
		{"ARP reply for someone else", arpFrame(proto.ARPReply, peerMAC, otherMAC, peerMAC, peer4, otherMAC, netip.MustParseAddr("10.0.0.9")), neighbor.NoEntry},
		{"ARP from our own MAC", arpFrame(proto.ARPRequest, ourMAC, proto.BroadcastMAC, ourMAC, our4, [6]byte{}, peer4), neighbor.Loop},
		{"ARP from broadcast MAC", arpFrame(proto.ARPRequest, proto.BroadcastMAC, proto.BroadcastMAC, proto.BroadcastMAC, peer4, [6]byte{}, our4), neighbor.BadSender},
		{"ARP from multicast IP", arpFrame(proto.ARPRequest, peerMAC, proto.BroadcastMAC, peerMAC, netip.MustParseAddr("224.0.0.1"), [6]byte{}, our4), neighbor.BadSender},
		{"ARP bad op", arpFrame(7, peerMAC, proto.BroadcastMAC, peerMAC, peer4, [6]byte{}, our4), neighbor.Malformed},
		{"ARP truncated", arpFrame(proto.ARPRequest, peerMAC, proto.BroadcastMAC, peerMAC, peer4, [6]byte{}, our4)[:30], neighbor.Malformed},
		{"runt", []byte{1, 2, 3}, neighbor.Malformed},
		{"NA spoofing our IPv6", naFrame(otherMAC, our6, fO, otherMAC), neighbor.Spoofed},
		{"NS from our IPv6", nsFrame(otherMAC, our6, our6, otherMAC), neighbor.Spoofed},
		{"NS for someone else", nsFrame(peerMAC, peer6, netip.MustParseAddr("fd00::9"), peerMAC), neighbor.NotOurTarget},
		{"NS bad checksum", badSum, neighbor.BadChecksum},
		{"NS hop limit 64", hop, neighbor.BadHopLimit},
		{"NS truncated", goodNS[:len(goodNS)-20], neighbor.Malformed},
		{"NA multicast with S", naMcastS, neighbor.Malformed},
		{"DAD NS with SLL", dadWithSLL, neighbor.Malformed},
		{"echo", echo, neighbor.NotNeighbor},
		{"NS from our own MAC", nsFrame(ourMAC, peer6, our6, ourMAC), neighbor.Loop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.expect(e.input(tc.frame), tc.want)
			if tc.want != neighbor.OK {
				if got := e.tab.Stats().Drops[tc.want]; got != 1 {
					t.Errorf("Drops[%v] = %d, want 1", tc.want, got)
				}
				if e.tab.Len() != 0 {
					t.Errorf("bogus input installed an entry")
				}
			}
			for _, a := range []netip.Addr{our4, our6} {
				if st, _ := e.state(a); st != neighbor.NoState {
					t.Errorf("entry for our own address %v", a)
				}
			}
		})
	}
}

func TestNSAnswer(t *testing.T) {
	e := newEnv(t, nil)
	e.expect(e.input(nsFrame(peerMAC, peer6, our6, peerMAC)), neighbor.OK)
	if len(e.rec.sent) != 1 {
		t.Fatalf("sent %d", len(e.rec.sent))
	}
	a := e.rec.sent[0].a
	if a.Kind != neighbor.SendNA || a.Dst != peer6 || a.DstMAC != peerMAC || a.Flags != fS|fO || a.Target != our6 {
		t.Fatalf("NA %+v", a)
	}
	checkNDPFrame(t, a.AppendFrame(nil), proto.ICMPv6NeighborAdvertisement, our6, peer6, our6, proto.NDPOptTargetLinkLayer)

	// DAD by another node for our assigned address: NA to all-nodes, S clear.
	dad := func() []byte {
		dst := neighbor.SolicitedNode(our6)
		msg := proto.AppendICMPv6NeighborSolicitation(nil, [16]byte{}, dst.As16(), our6.As16(), [6]byte{})
		mac, _ := neighbor.MulticastMAC(dst)
		return ipv6Frame(peerMAC, mac, netip.IPv6Unspecified(), dst, 255, msg)
	}()
	e.expect(e.input(dad), neighbor.OK)
	a = e.rec.sent[1].a
	if a.Kind != neighbor.SendNA || a.Dst != netip.MustParseAddr("ff02::1") || a.Flags != fO || a.DstMAC != [6]byte{0x33, 0x33, 0, 0, 0, 1} {
		t.Fatalf("NA to DAD %+v", a)
	}
}

func checkNDPFrame(t *testing.T, f []byte, typ uint8, src, dst, target netip.Addr, opt uint8) {
	t.Helper()
	eth, err := proto.ParseEthernet(f)
	if err != nil || eth.Src() != ourMAC || eth.EtherType() != proto.EtherTypeIPv6 {
		t.Fatalf("eth % x", f)
	}
	ip, err := proto.ParseIPv6(eth.Payload())
	if err != nil || ip.HopLimit() != 255 || ip.Src() != src || ip.Dst() != dst {
		t.Fatalf("ipv6 % x (%v)", f, err)
	}
	m, err := proto.ParseICMPv6(ip.Payload())
	if err != nil || m.Type() != typ || m.Target() != target || !m.VerifyChecksum(ip.SrcArray(), ip.DstArray()) {
		t.Fatalf("icmpv6 % x (%v)", f, err)
	}
	ll, ok := m.Options().LinkLayerAddress(opt)
	if opt == 0 {
		if len(m.Options()) != 0 {
			t.Fatalf("unexpected options % x", m.Options())
		}
	} else if !ok || ll != ourMAC {
		t.Fatalf("link-layer option %x %v", ll, ok)
	}
	if len(f) > neighbor.FrameLen {
		t.Fatalf("frame %d > FrameLen", len(f))
	}
}

func TestRetransmitAndGiveUp(t *testing.T) {
	for _, fam := range []struct {
		name   string
		target netip.Addr
		kind   neighbor.Kind
	}{{"ARP", peer4, neighbor.SendARPRequest}, {"NDP", peer6, neighbor.SendNS}} {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			t0 := e.now
			e.tab.Resolve(e.now, fam.target, 7)
			for e.tab.Next() < t0+10*sec {
				e.now = e.tab.Next()
				e.tab.Tick(e.now)
			}
			var at []int64
			for _, s := range e.rec.sent {
				if s.a.Kind != fam.kind || s.a.Target != fam.target {
					t.Fatalf("sent %+v", s.a)
				}
				at = append(at, (s.at-t0)/sec)
			}
			if len(at) != 3 || at[0] != 0 || at[1] != 1 || at[2] != 2 {
				t.Fatalf("solicitations at %v s, want [0 1 2]", at)
			}
			if len(e.rec.dropped) != 1 || e.rec.dropped[0] != (dropped{7, neighbor.GaveUp}) {
				t.Fatalf("dropped %+v", e.rec.dropped)
			}
			if st, _ := e.state(fam.target); st != neighbor.NoState || e.tab.Len() != 0 {
				t.Fatal("entry survived")
			}
			if e.tab.Stats().Drops[neighbor.GaveUp] != 1 {
				t.Fatal("GaveUp not counted")
			}
			if fam.kind == neighbor.SendNS {
				a := e.rec.sent[0].a
				checkNDPFrame(t, a.AppendFrame(nil), proto.ICMPv6NeighborSolicitation, our6, neighbor.SolicitedNode(peer6), peer6, proto.NDPOptSourceLinkLayer)
			}
		})
	}

	// PROBE: unicast solicitations RetransTimer apart, then deletion.
	e := newEnv(t, nil)
	toProbe(e)
	t0 := e.now
	n := len(e.rec.sent)
	e.advance(time.Second)
	e.advance(time.Second)
	e.advance(time.Second)
	probes := e.rec.sent[n-1:]
	if len(probes) != 3 {
		t.Fatalf("%d probes", len(probes))
	}
	for k, s := range probes {
		if s.a.Kind != neighbor.SendNS || s.a.Dst != peer6 || s.a.DstMAC != peerMAC || s.at != t0+int64(k)*sec {
			t.Fatalf("probe %d %+v at %d", k, s.a, s.at-t0)
		}
	}
	if st, _ := e.state(peer6); st != neighbor.NoState {
		t.Fatalf("state %v after probes", st)
	}
}

func TestBounded(t *testing.T) {
	const maxE, maxP = 16, 4
	mod := func(c *neighbor.Config) { c.MaxEntries, c.MaxPending = maxE, maxP }

	t.Run("queue", func(t *testing.T) {
		e := newEnv(t, mod)
		for i := range 10 {
			e.tab.Resolve(e.now, peer6, pkt(i))
		}
		if e.tab.Pending(peer6) != maxP || len(e.rec.dropped) != 6 {
			t.Fatalf("pending %d dropped %d", e.tab.Pending(peer6), len(e.rec.dropped))
		}
		for i, d := range e.rec.dropped { // oldest dropped first (RFC 4861 7.2.2)
			if d != (dropped{pkt(i), neighbor.QueueFull}) {
				t.Fatalf("dropped %+v", e.rec.dropped)
			}
		}
		e.expect(e.input(naFrame(peerMAC, peer6, fS|fO, peerMAC)), neighbor.OK)
		if len(e.rec.released) != maxP || e.rec.released[0].p != 6 || e.rec.released[3].p != 9 {
			t.Fatalf("released %+v", e.rec.released)
		}
	})

	t.Run("resolve flood", func(t *testing.T) {
		e := newEnv(t, mod)
		const n = 5000
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
			for k := range 3 {
				e.tab.Resolve(e.now, a, pkt(i*3+k))
			}
			if e.tab.Len() > maxE {
				t.Fatalf("Len %d", e.tab.Len())
			}
		}
		pend := 0
		for i := n - maxE; i < n; i++ {
			pend += e.tab.Pending(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
		}
		if pend+len(e.rec.dropped) != 3*n {
			t.Fatalf("pending %d + dropped %d != %d: packets lost", pend, len(e.rec.dropped), 3*n)
		}
		if e.tab.Stats().Drops[neighbor.Evicted] != uint64(3*(n-maxE)) {
			t.Fatalf("Evicted %d", e.tab.Stats().Drops[neighbor.Evicted])
		}
		e.advance(10 * time.Second)
		if e.tab.Len() != 0 || len(e.rec.dropped) != 3*n {
			t.Fatalf("after give-up: Len %d dropped %d", e.tab.Len(), len(e.rec.dropped))
		}
	})

	t.Run("input flood keeps live entries", func(t *testing.T) {
		e := newEnv(t, mod)
		toReachable(e) // one live neighbor
		for i := range 5000 {
			a := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
			mac := [6]byte{0x02, 1, 2, 3, byte(i >> 8), byte(i)}
			e.expect(e.input(arpFrame(proto.ARPRequest, mac, proto.BroadcastMAC, mac, a, [6]byte{}, our4)), neighbor.OK)
			if e.tab.Len() > maxE {
				t.Fatalf("Len %d", e.tab.Len())
			}
		}
		if st, _ := e.state(peer6); st != neighbor.Reachable {
			t.Fatalf("live entry evicted by a flood: %v", st)
		}
		// Fill the rest with INCOMPLETE entries: STALE go first, then
		// input can no longer create entries.
		for i := range maxE - 1 {
			e.tab.Resolve(e.now, netip.AddrFrom4([4]byte{10, 3, 0, byte(i)}), 1)
		}
		e.expect(e.input(arpFrame(proto.ARPRequest, otherMAC, proto.BroadcastMAC, otherMAC, netip.MustParseAddr("10.4.0.1"), [6]byte{}, our4)), neighbor.OK)
		if e.tab.Stats().Drops[neighbor.TableFull] != 1 || e.tab.Len() != maxE {
			t.Fatalf("TableFull %d Len %d", e.tab.Stats().Drops[neighbor.TableFull], e.tab.Len())
		}
	})
}

func TestDAD(t *testing.T) {
	tent := netip.MustParseAddr("fd00::77")
	dadNS := func() []byte {
		dst := neighbor.SolicitedNode(tent)
		msg := proto.AppendICMPv6NeighborSolicitation(nil, [16]byte{}, dst.As16(), tent.As16(), [6]byte{})
		mac, _ := neighbor.MulticastMAC(dst)
		return ipv6Frame(peerMAC, mac, netip.IPv6Unspecified(), dst, 255, msg)
	}()
	allNodes := netip.MustParseAddr("ff02::1")
	tests := []struct {
		name     string
		transmit int
		frame    []byte // fed after the first probe; nil for none
		want     neighbor.Reason
		result   neighbor.Kind
		at       int64 // seconds after start of the result
	}{
		{"success", 1, nil, neighbor.OK, neighbor.DADSucceeded, 1},
		{"success after 3 probes", 3, nil, neighbor.OK, neighbor.DADSucceeded, 3},
		{"NA for tentative", 1, func() []byte {
			msg := proto.AppendICMPv6NeighborAdvertisement(nil, tent.As16(), allNodes.As16(), tent.As16(), fO, peerMAC)
			return ipv6Frame(peerMAC, [6]byte{0x33, 0x33, 0, 0, 0, 1}, tent, allNodes, 255, msg)
		}(), neighbor.Duplicate, neighbor.DADFailed, 0},
		{"NS from :: for tentative", 1, dadNS, neighbor.Duplicate, neighbor.DADFailed, 0},
		{"NS from a node for tentative", 1, nsFrame(peerMAC, peer6, tent, peerMAC), neighbor.Tentative, neighbor.DADSucceeded, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *neighbor.Config) { c.DADTransmits = tc.transmit })
			t0 := e.now
			e.tab.StartDAD(e.now, tent)
			if ours, tentative := e.tab.Addresses(tent); !ours || !tentative {
				t.Fatal("not tentative")
			}
			s := e.rec.sent[0].a
			if s.Kind != neighbor.SendNS || !s.Src.IsUnspecified() || s.Dst != neighbor.SolicitedNode(tent) || s.DstMAC != [6]byte{0x33, 0x33, 0xff, 0, 0, 0x77} {
				t.Fatalf("DAD probe %+v", s)
			}
			checkNDPFrame(t, s.AppendFrame(nil), proto.ICMPv6NeighborSolicitation, netip.IPv6Unspecified(), neighbor.SolicitedNode(tent), tent, 0)
			if tc.frame != nil {
				e.expect(e.input(tc.frame), tc.want)
			}
			for e.tab.Next() < t0+20*sec {
				e.now = e.tab.Next()
				e.tab.Tick(e.now)
			}
			var got []sent
			probes := 0
			for _, s := range e.rec.sent {
				switch s.a.Kind {
				case neighbor.DADSucceeded, neighbor.DADFailed:
					got = append(got, s)
				case neighbor.SendNS:
					probes++
				}
			}
			if len(got) != 1 || got[0].a.Kind != tc.result || got[0].a.Target != tent || got[0].at-t0 != tc.at*sec {
				t.Fatalf("results %+v", got)
			}
			ours, tentative := e.tab.Addresses(tent)
			if tc.result == neighbor.DADSucceeded {
				if !ours || tentative || probes != tc.transmit {
					t.Fatalf("ours %v tentative %v probes %d", ours, tentative, probes)
				}
			} else if ours {
				t.Fatal("duplicate address kept")
			}
		})
	}

	// A tentative address is not answered for and not used as a source.
	e := newEnv(t, nil)
	e.tab.RemoveAddress(our6)
	e.tab.StartDAD(e.now, our6)
	n := len(e.rec.sent)
	e.tab.Resolve(e.now, peer6, 1)
	if len(e.rec.sent) != n || e.tab.Stats().Drops[neighbor.NoSource] != 1 {
		t.Fatal("solicited from a tentative address")
	}
}

func TestAnnounce(t *testing.T) {
	e := newEnv(t, nil)
	e.tab.AddAddress(ll6)
	e.tab.Announce()
	if len(e.rec.sent) != 3 {
		t.Fatalf("sent %d", len(e.rec.sent))
	}
	g := e.rec.sent[0].a
	f := g.AppendFrame(nil)
	eth, _ := proto.ParseEthernet(f)
	a, _ := proto.ParseARP(eth.Payload())
	if eth.Dst() != proto.BroadcastMAC || a.Op() != proto.ARPRequest || a.SenderIP() != our4 || a.TargetIP() != our4 || a.SenderHW() != ourMAC {
		t.Fatalf("gratuitous ARP % x", f)
	}
	na := e.rec.sent[1].a
	if na.Kind != neighbor.SendNA || na.Flags != fO || na.DstMAC != [6]byte{0x33, 0x33, 0, 0, 0, 1} {
		t.Fatalf("unsolicited NA %+v", na)
	}
	checkNDPFrame(t, na.AppendFrame(nil), proto.ICMPv6NeighborAdvertisement, our6, netip.MustParseAddr("ff02::1"), our6, proto.NDPOptTargetLinkLayer)

	// A link-local target is solicited from our link-local address.
	e.tab.Resolve(e.now, netip.MustParseAddr("fe80::2"), 1)
	if s := e.rec.sent[3].a; s.Src != ll6 {
		t.Fatalf("source %v for link-local target", s.Src)
	}
}

func TestMulticastResolve(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		addr string
		mac  [6]byte
	}{
		{"224.1.2.3", [6]byte{0x01, 0, 0x5e, 1, 2, 3}},
		{"239.129.2.3", [6]byte{0x01, 0, 0x5e, 1, 2, 3}},
		{"255.255.255.255", proto.BroadcastMAC},
		{"ff02::1:ff00:77", [6]byte{0x33, 0x33, 0xff, 0, 0, 0x77}},
	} {
		mac, ok := e.tab.Resolve(e.now, netip.MustParseAddr(tc.addr), 1)
		if !ok || mac != tc.mac {
			t.Errorf("%s: %x %v", tc.addr, mac, ok)
		}
	}
	if _, ok := e.tab.Resolve(e.now, netip.Addr{}, 2); ok || len(e.rec.dropped) != 1 || e.rec.dropped[0].why != neighbor.BadAddress {
		t.Fatal("invalid address")
	}
	if e.tab.Len() != 0 {
		t.Fatal("entries for multicast")
	}
}

func TestAllocs(t *testing.T) {
	s := &nopSink{}
	cfg := neighbor.DefaultConfig()
	cfg.MAC = ourMAC
	tab := neighbor.New[pkt](cfg, s)
	tab.AddAddress(our4)
	tab.AddAddress(our6)
	now := 100 * sec
	tab.Resolve(now, peer6, 1)
	tab.Resolve(now, peer4, 1)
	tab.Input(now, naFrame(peerMAC, peer6, fS|fO, peerMAC))
	tab.Input(now, arpFrame(proto.ARPReply, peerMAC, ourMAC, peerMAC, peer4, ourMAC, our4))

	na := naFrame(peerMAC, peer6, fS|fO, peerMAC)
	ns := nsFrame(peerMAC, peer6, our6, peerMAC)
	arpReq := arpFrame(proto.ARPRequest, peerMAC, proto.BroadcastMAC, peerMAC, peer4, [6]byte{}, our4)
	arpRep := arpFrame(proto.ARPReply, peerMAC, ourMAC, peerMAC, peer4, ourMAC, our4)
	buf := make([]byte, 0, neighbor.FrameLen)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Lookup v6", func() { tab.Lookup(now, peer6) }},
		{"Lookup v4", func() { tab.Lookup(now, peer4) }},
		{"Resolve hit", func() { tab.Resolve(now, peer4, 1) }},
		{"Input NA", func() { tab.Input(now, na) }},
		{"Input NS", func() { tab.Input(now, ns) }},
		{"Input ARP request", func() { tab.Input(now, arpReq) }},
		{"Input ARP reply", func() { tab.Input(now, arpRep) }},
		{"AppendFrame", func() {
			a := neighbor.Action{Kind: neighbor.SendNS, Src: our6, Dst: peer6, Target: peer6, SrcMAC: ourMAC, DstMAC: peerMAC}
			buf = a.AppendFrame(buf[:0])
		}},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocs", tc.name, n)
		}
	}
	if st, _ := tab.State(peer6); st != neighbor.Reachable {
		t.Fatalf("state %v", st)
	}
}

func BenchmarkLookup(b *testing.B) {
	tab := neighbor.New[pkt](neighbor.DefaultConfig(), &nopSink{})
	tab.AddAddress(our4)
	tab.Resolve(0, peer4, 1)
	tab.Input(0, arpFrame(proto.ARPReply, peerMAC, ourMAC, peerMAC, peer4, ourMAC, our4))
	for b.Loop() {
		tab.Lookup(1, peer4)
	}
}

func seedFrames() [][]byte {
	return [][]byte{
		arpFrame(proto.ARPRequest, peerMAC, proto.BroadcastMAC, peerMAC, peer4, [6]byte{}, our4),
		arpFrame(proto.ARPReply, peerMAC, ourMAC, peerMAC, peer4, ourMAC, our4),
		nsFrame(peerMAC, peer6, our6, peerMAC),
		naFrame(peerMAC, peer6, fS|fO, peerMAC),
		naFrame(otherMAC, our6, fO, otherMAC),
	}
}

// Every proper prefix of a valid frame is dropped with a reason; nothing
// panics.
func TestPrefixes(t *testing.T) {
	for _, f := range seedFrames() {
		for n := range len(f) {
			e := newEnv(t, nil)
			if r := e.input(f[:n]); r == neighbor.OK {
				t.Fatalf("prefix %d of % x accepted", n, f)
			}
		}
	}
}

func FuzzInput(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		e := newEnv(t, func(c *neighbor.Config) { c.MaxEntries, c.MaxPending = 4, 2 })
		e.tab.Resolve(e.now, peer6, 1)
		e.tab.Resolve(e.now, peer4, 2)
		e.input(frame)
		e.advance(time.Minute)
		if e.tab.Len() > 4 {
			t.Fatal("table overflow")
		}
		for _, s := range e.rec.sent {
			_ = s.a.AppendFrame(nil)
		}
	})
}
