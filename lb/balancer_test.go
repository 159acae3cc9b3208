package lb

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
)

type mapResolver map[netip.Addr][6]byte

func (m mapResolver) Lookup(ip netip.Addr) ([6]byte, bool) {
	mac, ok := m[ip]
	return mac, ok
}

const (
	clientPort  = 1
	backendPort = 2
)

var (
	macOurClientSide  = [6]byte{0x02, 0xaa, 0, 0, 0, 1}
	macOurBackendSide = [6]byte{0x02, 0xaa, 0, 0, 0, 2}
)

func macOf(a netip.Addr) [6]byte {
	b := a.As16()
	return [6]byte{0x02, 0xbb, b[12], b[13], b[14], b[15]}
}

// resolverFor knows every backend of cfg and the given clients.
func resolverFor(cfg *Config, clients ...netip.Addr) mapResolver {
	r := mapResolver{}
	for _, s := range cfg.Services {
		for _, b := range s.Backends {
			r[b.Addr] = macOf(b.Addr)
		}
	}
	for _, c := range clients {
		r[c] = macOf(c)
	}
	return r
}

func testConfig(tb testing.TB, capacity int) *Config {
	tb.Helper()
	s4, err := ServiceFromFlags("10.0.0.100:80/tcp", []string{"10.0.1.11", "10.0.1.12:8080,2", "10.0.1.13"}, "nat")
	if err != nil {
		tb.Fatal(err)
	}
	s6, err := ServiceFromFlags("[fd00::100]:53/udp", []string{"fd00:1::11", "fd00:1::12"}, "nat")
	if err != nil {
		tb.Fatal(err)
	}
	dsr, err := ServiceFromFlags("10.0.0.101:443/tcp", []string{"10.0.1.21", "10.0.1.22"}, "dsr")
	if err != nil {
		tb.Fatal(err)
	}
	q, err := ServiceFromFlags("10.0.0.102:443/udp", []string{"10.0.1.31", "10.0.1.32", "10.0.1.33"}, "nat")
	if err != nil {
		tb.Fatal(err)
	}
	q.QUIC = true
	for _, s := range []*Service{&s4, &s6, &dsr, &q} {
		s.TableSize = 1009
	}
	o := DefaultTableOptions()
	o.Capacity = capacity
	return &Config{Services: []Service{s4, s6, dsr, q}, Conntrack: o}
}

func newTestBalancer(tb testing.TB, cfg *Config, res Resolver, mod func(*Options)) *Balancer {
	tb.Helper()
	o := Options{Resolver: res, ClientPort: clientPort, BackendPort: backendPort,
		ClientMAC: macOurClientSide, BackendMAC: macOurBackendSide, HashSeed: 42}
	if mod != nil {
		mod(&o)
	}
	b, err := NewBalancer(cfg, o)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// run processes one frame at time now and returns it.
func run(b *Balancer, frame []byte, now int64) pipeline.Frame {
	batch := pipeline.Batch{Frames: []pipeline.Frame{{Data: frame, InPort: clientPort}}, Now: now}
	b.Process(&batch)
	return batch.Frames[0]
}

func TestBalancerNAT(t *testing.T) {
	for _, tc := range []struct {
		name     string
		client   netip.AddrPort
		vip      netip.AddrPort
		proto    Proto
		backends []netip.AddrPort
	}{
		{"tcp4", ap("192.0.2.7:40000"), ap("10.0.0.100:80"), TCP, []netip.AddrPort{ap("10.0.1.11:80"), ap("10.0.1.12:8080"), ap("10.0.1.13:80")}},
		{"udp6", ap("[2001:db8::7]:5353"), ap("[fd00::100]:53"), UDP, []netip.AddrPort{ap("[fd00:1::11]:53"), ap("[fd00:1::12]:53")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, 1024)
			b := newTestBalancer(t, cfg, resolverFor(cfg, tc.client.Addr()), nil)
			req := pkt{src: tc.client, dst: tc.vip, proto: tc.proto, flags: proto.TCPFlagSYN, payload: []byte("ping")}
			f := run(b, req.build(t), 1)
			if f.Verdict != pipeline.Redirect || f.OutPort != backendPort {
				t.Fatalf("request: verdict %v port %d reason %v", f.Verdict, f.OutPort, f.Reason)
			}
			h, err := decodeHeaders(f.Data)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, be := range tc.backends {
				found = found || h.dst == be
			}
			if !found || h.src != tc.client {
				t.Fatalf("request rewritten to %v -> %v", h.src, h.dst)
			}
			if h.srcMAC != macOurBackendSide || h.dstMAC != macOf(h.dst.Addr()) {
				t.Fatalf("request MACs %x -> %x", h.srcMAC, h.dstMAC)
			}
			if err := verifyChecksums(f.Data); err != nil {
				t.Fatal(err)
			}
			backend := h.dst
			// Later packets of the flow go to the same backend.
			for i := range 5 {
				f := run(b, pkt{src: tc.client, dst: tc.vip, proto: tc.proto, flags: proto.TCPFlagACK}.build(t), int64(2+i))
				if h, _ := decodeHeaders(f.Data); h.dst != backend {
					t.Fatalf("packet %d went to %v, first to %v", i, h.dst, backend)
				}
			}
			// The reply comes back from the VIP.
			rep := pkt{src: backend, dst: tc.client, proto: tc.proto, flags: proto.TCPFlagSYN | proto.TCPFlagACK, payload: []byte("pong!")}
			f = run(b, rep.build(t), 10)
			if f.Verdict != pipeline.Redirect || f.OutPort != clientPort {
				t.Fatalf("reply: verdict %v port %d reason %v", f.Verdict, f.OutPort, f.Reason)
			}
			h, _ = decodeHeaders(f.Data)
			if h.src != tc.vip || h.dst != tc.client {
				t.Fatalf("reply rewritten to %v -> %v, want %v -> %v", h.src, h.dst, tc.vip, tc.client)
			}
			if h.srcMAC != macOurClientSide || h.dstMAC != macOf(tc.client.Addr()) {
				t.Fatalf("reply MACs %x -> %x", h.srcMAC, h.dstMAC)
			}
			if err := verifyChecksums(f.Data); err != nil {
				t.Fatal(err)
			}
			s := b.Stats()
			if s.Inbound != 6 || s.Outbound != 1 || s.Table.Len != 1 || s.Table.Inserts != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestBalancerSpread: many clients use every backend, in proportion to
// the weights (1:2:1) within a loose bound.
func TestBalancerSpread(t *testing.T) {
	cfg := testConfig(t, 1<<14)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	counts := map[netip.AddrPort]int{}
	const n = 8000
	for i := range n {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), uint16(1024+i))
		f := run(b, pkt{src: c, dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagSYN}.build(t), 1)
		if f.Verdict != pipeline.Redirect {
			t.Fatalf("verdict %v %v", f.Verdict, f.Reason)
		}
		h, _ := decodeHeaders(f.Data)
		counts[h.dst]++
	}
	for be, w := range map[netip.AddrPort]float64{ap("10.0.1.11:80"): 0.25, ap("10.0.1.12:8080"): 0.5, ap("10.0.1.13:80"): 0.25} {
		got := float64(counts[be]) / n
		if got < w-0.03 || got > w+0.03 {
			t.Errorf("backend %v got %.3f of the flows, want %.2f±0.03", be, got, w)
		}
	}
	// The per-backend counters agree with what was forwarded.
	total := 0
	for _, st := range b.BackendStats() {
		if st.VIP != ap("10.0.0.100:80") || st.Proto != TCP {
			continue
		}
		if int(st.InPackets) != counts[st.Backend] || int(st.Flows) != counts[st.Backend] || st.InBytes == 0 || st.OutPackets != 0 {
			t.Errorf("BackendStats %+v, forwarded %d", st, counts[st.Backend])
		}
		total += int(st.InPackets)
	}
	if total != n {
		t.Errorf("BackendStats count %d packets, want %d", total, n)
	}
}

func TestBalancerDSR(t *testing.T) {
	cfg := testConfig(t, 64)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	in := pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.101:443"), proto: TCP, flags: proto.TCPFlagSYN}.build(t)
	orig := bytes.Clone(in)
	f := run(b, in, 1)
	if f.Verdict != pipeline.Redirect || f.OutPort != backendPort {
		t.Fatalf("verdict %v port %d %v", f.Verdict, f.OutPort, f.Reason)
	}
	if !bytes.Equal(f.Data[12:], orig[12:]) {
		t.Fatal("DSR changed more than the MACs")
	}
	h, _ := decodeHeaders(f.Data)
	if h.srcMAC != macOurBackendSide || (h.dstMAC != macOf(ipAddr("10.0.1.21")) && h.dstMAC != macOf(ipAddr("10.0.1.22"))) {
		t.Fatalf("MACs %x -> %x", h.srcMAC, h.dstMAC)
	}
}

func TestBalancerDrops(t *testing.T) {
	cfg := testConfig(t, 64)
	res := resolverFor(cfg)
	b := newTestBalancer(t, cfg, res, nil)
	good := pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagSYN}

	// Unknown VIP: another address, another port, another protocol.
	for _, p := range []pkt{
		{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.200:80"), proto: TCP},
		{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:81"), proto: TCP},
		{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: UDP},
	} {
		if f := run(b, p.build(t), 1); f.Verdict != pipeline.Drop || f.Reason != ReasonUnknownVIP {
			t.Errorf("%v -> %v/%v: %v %v, want drop %v", p.src, p.dst, p.proto, f.Verdict, f.Reason, ReasonUnknownVIP)
		}
	}
	// Malformed: a truncated IPv4 packet.
	fr := good.build(t)
	if f := run(b, fr[:30], 1); f.Verdict != pipeline.Drop || f.Reason != pipeline.ReasonMalformed {
		t.Errorf("truncated: %v %v", f.Verdict, f.Reason)
	}
	if f := run(b, fr[:5], 1); f.Verdict != pipeline.Drop || f.Reason != pipeline.ReasonMalformed {
		t.Errorf("runt: %v %v", f.Verdict, f.Reason)
	}
	// ARP is not ours: left undecided.
	arp := proto.AppendEthernet(nil, proto.BroadcastMAC, macClient, proto.EtherTypeARP)
	arp = proto.AppendARP(arp, proto.ARPRequest, macClient, [4]byte{192, 0, 2, 7}, [6]byte{}, [4]byte{10, 0, 0, 100})
	if f := run(b, arp, 1); f.Verdict != pipeline.Pass {
		t.Errorf("ARP: %v %v", f.Verdict, f.Reason)
	}
	// A fragment to a VIP.
	frag := good.build(t)
	ip, _ := proto.ParseIPv4(frag[14:])
	ip.SetFlagsFragmentOffset(proto.IPv4FlagMoreFragments, 0)
	ip.UpdateChecksum()
	if f := run(b, frag, 1); f.Verdict != pipeline.Drop || f.Reason != ReasonFragment {
		t.Errorf("fragment: %v %v", f.Verdict, f.Reason)
	}
	// ICMP to a VIP.
	icmp := proto.AppendEthernet(nil, macLB, macClient, proto.EtherTypeIPv4)
	echo := proto.AppendICMPv4Echo(nil, proto.ICMPv4EchoRequest, 1, 1, nil)
	icmp = proto.AppendIPv4(icmp, &proto.IPv4Fields{TotalLength: uint16(20 + len(echo)), TTL: 64, Protocol: proto.IPProtoICMP,
		Src: [4]byte{192, 0, 2, 7}, Dst: [4]byte{10, 0, 0, 100}})
	icmp = append(icmp, echo...)
	if f := run(b, icmp, 1); f.Verdict != pipeline.Drop || f.Reason != pipeline.ReasonUnknownProto {
		t.Errorf("ICMP: %v %v", f.Verdict, f.Reason)
	}
	// No neighbor for the backend.
	delete(res, ipAddr("10.0.1.11"))
	delete(res, ipAddr("10.0.1.12"))
	delete(res, ipAddr("10.0.1.13"))
	if f := run(b, good.build(t), 1); f.Verdict != pipeline.Drop || f.Reason != ReasonNoNeighbor {
		t.Errorf("no neighbor: %v %v", f.Verdict, f.Reason)
	}
	// PassUnmatched leaves unknown VIPs undecided.
	pb := newTestBalancer(t, cfg, res, func(o *Options) { o.PassUnmatched = true })
	if f := run(pb, pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.200:80"), proto: TCP}.build(t), 1); f.Verdict != pipeline.Pass {
		t.Errorf("PassUnmatched: %v %v", f.Verdict, f.Reason)
	}
}

func TestBalancerNoBackendAndFull(t *testing.T) {
	cfg := testConfig(t, 1)
	cfg.Conntrack.Full = RejectNew
	for i := range cfg.Services[0].Backends {
		cfg.Services[0].Backends[i].Weight = 0
	}
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	if f := run(b, pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP}.build(t), 1); f.Verdict != pipeline.Drop || f.Reason != ReasonNoBackend {
		t.Errorf("all drained: %v %v", f.Verdict, f.Reason)
	}
	if f := run(b, pkt{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.101:443"), proto: TCP}.build(t), 1); f.Verdict != pipeline.Redirect {
		t.Errorf("first flow: %v %v", f.Verdict, f.Reason)
	}
	if f := run(b, pkt{src: ap("192.0.2.8:40000"), dst: ap("10.0.0.101:443"), proto: TCP}.build(t), 1); f.Verdict != pipeline.Drop || f.Reason != ReasonTableFull {
		t.Errorf("table full: %v %v", f.Verdict, f.Reason)
	}
}

// TestBalancerUpdate: a new configuration moves no established flow, even
// when it removes the flow's backend or its service, and new flows follow
// the new configuration.
func TestBalancerUpdate(t *testing.T) {
	cfg := testConfig(t, 1<<12)
	res := resolverFor(cfg)
	b := newTestBalancer(t, cfg, res, nil)
	vip := ap("10.0.0.100:80")
	client := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), uint16(2000+i))
	}
	first := map[int]netip.AddrPort{}
	for i := range 200 {
		f := run(b, pkt{src: client(i), dst: vip, proto: TCP, flags: proto.TCPFlagSYN}.build(t), 1)
		h, _ := decodeHeaders(f.Data)
		first[i] = h.dst
	}
	// Replace every backend of the service.
	cfg2 := testConfig(t, 1<<12)
	cfg2.Services[0].Backends = []Backend{{Addr: ipAddr("10.0.2.1"), Weight: 1}, {Addr: ipAddr("10.0.2.2"), Weight: 1}}
	res[ipAddr("10.0.2.1")], res[ipAddr("10.0.2.2")] = macOf(ipAddr("10.0.2.1")), macOf(ipAddr("10.0.2.2"))
	if err := b.Update(cfg2); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		f := run(b, pkt{src: client(i), dst: vip, proto: TCP, flags: proto.TCPFlagACK}.build(t), 2)
		if h, _ := decodeHeaders(f.Data); h.dst != first[i] {
			t.Fatalf("client %d moved from %v to %v", i, first[i], h.dst)
		}
	}
	f := run(b, pkt{src: client(250), dst: vip, proto: TCP, flags: proto.TCPFlagSYN}.build(t), 3)
	if h, _ := decodeHeaders(f.Data); h.dst.Addr() != ipAddr("10.0.2.1") && h.dst.Addr() != ipAddr("10.0.2.2") {
		t.Fatalf("new flow went to %v", h.dst)
	}
	// Remove the service: established flows continue, new ones are dropped.
	cfg3 := testConfig(t, 1<<12)
	cfg3.Services = cfg3.Services[1:]
	if err := b.Update(cfg3); err != nil {
		t.Fatal(err)
	}
	f = run(b, pkt{src: client(7), dst: vip, proto: TCP, flags: proto.TCPFlagACK}.build(t), 4)
	if h, _ := decodeHeaders(f.Data); f.Verdict != pipeline.Redirect || h.dst != first[7] {
		t.Fatalf("established flow of a removed service: %v %v %v", f.Verdict, f.Reason, h.dst)
	}
	f = run(b, pkt{src: client(251), dst: vip, proto: TCP, flags: proto.TCPFlagSYN}.build(t), 4)
	if f.Verdict != pipeline.Drop || f.Reason != ReasonUnknownVIP {
		t.Fatalf("new flow of a removed service: %v %v", f.Verdict, f.Reason)
	}
	// Capacity cannot change; a bad configuration is refused and the old
	// one stays.
	cfg4 := testConfig(t, 1<<13)
	if err := b.Update(cfg4); err == nil {
		t.Fatal("capacity change accepted")
	}
	cfg5 := testConfig(t, 1<<12)
	cfg5.Services[0].TableSize = 1000
	if err := b.Update(cfg5); err == nil {
		t.Fatal("non-prime table size accepted")
	}
}

// TestBalancerTCPClose: after a FIN the connection expires on the short
// timeout.
func TestBalancerTCPClose(t *testing.T) {
	cfg := testConfig(t, 64)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	c, vip := ap("192.0.2.7:40000"), ap("10.0.0.100:80")
	run(b, pkt{src: c, dst: vip, proto: TCP, flags: proto.TCPFlagSYN}.build(t), 0)
	run(b, pkt{src: c, dst: vip, proto: TCP, flags: proto.TCPFlagFIN | proto.TCPFlagACK}.build(t), 1)
	var k Key
	d := decodeT(t, pkt{src: c, dst: vip, proto: TCP}.build(t))
	k.Flow = d.Flow
	ref, ok := b.Table().Lookup(&k, 2)
	if !ok || b.Table().Class(ref) != ClassTCPClosing {
		t.Fatalf("after FIN: found %v", ok)
	}
	// A later batch expires it (10 s closing timeout).
	b.Process(&pipeline.Batch{Now: 1 + int64(11e9)})
	if b.Table().Len() != 0 || b.Stats().Table.Expirations != 1 {
		t.Fatalf("closed connection not expired: %+v", b.Stats().Table)
	}
}

func quicShort(tb testing.TB, src, dst netip.AddrPort, dcid []byte) []byte {
	tb.Helper()
	payload, err := proto.AppendQUICShortHeader(nil, proto.QUICShortHeaderFields{DCID: dcid, PacketNumber: 1, PNLen: 1})
	if err != nil {
		tb.Fatal(err)
	}
	payload = append(payload, make([]byte, 20)...)
	return pkt{src: src, dst: dst, proto: UDP, payload: payload}.build(tb)
}

// TestBalancerQUIC: a QUIC client whose address changes keeps its backend
// (the connection ID is the key) and gets its replies at the new address.
func TestBalancerQUIC(t *testing.T) {
	cfg := testConfig(t, 1<<12)
	vip := ap("10.0.0.102:443")
	b := newTestBalancer(t, cfg, resolverFor(cfg, ipAddr("192.0.2.7"), ipAddr("192.0.2.99")), nil)
	for i := range 50 {
		cid := []byte{1, 2, 3, 4, 5, 6, 7, byte(i)}
		old := netip.AddrPortFrom(ipAddr("192.0.2.7"), uint16(10000+i))
		moved := netip.AddrPortFrom(ipAddr("192.0.2.99"), uint16(30000+i))
		f := run(b, quicShort(t, old, vip, cid), 1)
		h1, _ := decodeHeaders(f.Data)
		f = run(b, quicShort(t, moved, vip, cid), 2)
		h2, _ := decodeHeaders(f.Data)
		if f.Verdict != pipeline.Redirect || h1.dst != h2.dst {
			t.Fatalf("cid %d: first to %v, after the move to %v (%v %v)", i, h1.dst, h2.dst, f.Verdict, f.Reason)
		}
		if err := verifyChecksums(f.Data); err != nil {
			t.Fatal(err)
		}
		rep := run(b, pkt{src: h2.dst, dst: moved, proto: UDP, payload: []byte("r")}.build(t), 3)
		if hr, _ := decodeHeaders(rep.Data); rep.Verdict != pipeline.Redirect || hr.src != vip || hr.dst != moved {
			t.Fatalf("cid %d: reply %v %v %v -> %v", i, rep.Verdict, rep.Reason, hr.src, hr.dst)
		}
	}
	// Long header (Initial) packets are keyed by their DCID too.
	ini, err := proto.AppendQUICLongHeader(nil, proto.QUICLongHeaderFields{Version: 1, Type: proto.QUICPacketInitial,
		DCID: []byte{9, 9, 9, 9, 9, 9, 9, 9}, SCID: []byte{1}, Length: 21, PacketNumber: 0, PNLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	ini = append(ini, make([]byte, 20)...)
	f := run(b, pkt{src: ap("192.0.2.7:9999"), dst: vip, proto: UDP, payload: ini}.build(t), 5)
	if f.Verdict != pipeline.Redirect {
		t.Fatalf("Initial: %v %v", f.Verdict, f.Reason)
	}
	var k Key
	k.Flow.SetIPv4([4]byte{}, [4]byte{10, 0, 0, 102})
	k.Flow.Src = [16]byte{}
	k.Flow.DstPort, k.Flow.Proto = 443, proto.IPProtoUDP
	k.CID, _ = proto.ConnIDFromBytes([]byte{9, 9, 9, 9, 9, 9, 9, 9})
	if _, ok := b.Table().Lookup(&k, 5); !ok {
		t.Fatal("Initial not keyed by its DCID")
	}
}

// TestBalancerBatch mixes verdicts in one batch and checks the pipeline's
// counters by reason.
func TestBalancerBatch(t *testing.T) {
	cfg := testConfig(t, 64)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	p := pipeline.New(b)
	frames := []pipeline.Frame{
		{Data: pkt{src: ap("192.0.2.7:1"), dst: ap("10.0.0.100:80"), proto: TCP}.build(t)},
		{Data: pkt{src: ap("192.0.2.7:2"), dst: ap("10.0.0.200:80"), proto: TCP}.build(t)},
		{Data: pkt{src: ap("192.0.2.7:3"), dst: ap("10.0.0.100:80"), proto: TCP}.build(t)[:20]},
		{Data: pkt{src: ap("192.0.2.7:4"), dst: ap("10.0.0.101:443"), proto: TCP}.build(t)},
	}
	var out pipeline.Output
	p.Run(&pipeline.Batch{Frames: frames, Now: 1}, &out)
	if len(out.TX) != 2 || len(out.Drop) != 2 {
		t.Fatalf("tx %d drop %d", len(out.TX), len(out.Drop))
	}
	c := p.Counters()[0]
	if c.Drops[ReasonUnknownVIP] != 1 || c.Drops[pipeline.ReasonMalformed] != 1 || c.Verdicts[pipeline.Redirect] != 2 {
		t.Fatalf("counters: %+v", c)
	}
	if c.Name != "lb" {
		t.Fatalf("name %q", c.Name)
	}
}

func TestBalancerAllocs(t *testing.T) {
	cfg := testConfig(t, 1<<10)
	b := newTestBalancer(t, cfg, resolverFor(cfg, ipAddr("192.0.2.7"), ipAddr("2001:db8::7")), nil)
	var orig [][]byte
	for i := range 32 {
		c4 := netip.AddrPortFrom(ipAddr("192.0.2.7"), uint16(1000+i))
		c6 := netip.AddrPortFrom(ipAddr("2001:db8::7"), uint16(1000+i))
		orig = append(orig,
			pkt{src: c4, dst: ap("10.0.0.100:80"), proto: TCP}.build(t),
			pkt{src: c6, dst: ap("[fd00::100]:53"), proto: UDP}.build(t),
			pkt{src: c4, dst: ap("10.0.0.101:443"), proto: TCP}.build(t),
			quicShort(t, c4, ap("10.0.0.102:443"), []byte{1, 2, 3, 4, 5, 6, 7, byte(i)}),
			pkt{src: ap("10.0.1.11:80"), dst: c4, proto: TCP}.build(t),
			pkt{src: c4, dst: ap("10.0.0.200:80"), proto: TCP}.build(t),
		)
	}
	work := make([][]byte, len(orig))
	for i := range orig {
		work[i] = bytes.Clone(orig[i])
	}
	frames := make([]pipeline.Frame, len(orig))
	batch := &pipeline.Batch{}
	now := int64(0)
	n := testing.AllocsPerRun(200, func() {
		for i := range orig {
			copy(work[i], orig[i])
			frames[i] = pipeline.Frame{Data: work[i]}
		}
		now += 1e6
		batch.Frames, batch.Now = frames, now
		b.Process(batch)
	})
	if n != 0 {
		t.Fatalf("Process allocates %v times per batch", n)
	}
	if s := b.Stats(); s.Inbound == 0 || s.Outbound == 0 {
		t.Fatalf("the batch did not exercise both paths: %+v", s)
	}
}

func ExampleServiceFromFlags() {
	s, err := ServiceFromFlags("10.0.0.100:80/tcp", []string{"10.0.1.11", "10.0.1.12:8080,3"}, "nat")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, be := range s.Backends {
		fmt.Println(s.VIP, s.Proto, s.Mode, "->", netip.AddrPortFrom(be.Addr, s.BackendPort(&be)), "weight", be.Weight)
	}
	// Output:
	// 10.0.0.100:80 tcp nat -> 10.0.1.11:80 weight 1
	// 10.0.0.100:80 tcp nat -> 10.0.1.12:8080 weight 3
}

// FuzzBalancer: arbitrary frames never panic the stage; a frame it
// forwards with checksums that were right has them right still.
func FuzzBalancer(f *testing.F) {
	cfg := testConfig(f, 256)
	for _, p := range []pkt{
		{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagSYN},
		{src: ap("[2001:db8::7]:5353"), dst: ap("[fd00::100]:53"), proto: UDP, payload: []byte("q")},
		{src: ap("192.0.2.7:40000"), dst: ap("10.0.0.101:443"), proto: TCP},
		{src: ap("10.0.1.11:80"), dst: ap("192.0.2.7:40000"), proto: TCP},
	} {
		f.Add(p.build(f))
	}
	f.Add(quicShort(f, ap("192.0.2.7:4000"), ap("10.0.0.102:443"), []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	b := newTestBalancer(f, cfg, resolverFor(cfg, ipAddr("192.0.2.7"), ipAddr("2001:db8::7")), nil)
	now := int64(0)
	f.Fuzz(func(t *testing.T, frame []byte) {
		good := verifyChecksums(frame) == nil
		now++
		fr := run(b, frame, now)
		if fr.Verdict == pipeline.Redirect && good {
			if err := verifyChecksums(fr.Data); err != nil {
				t.Fatalf("forwarded with bad checksums: %v", err)
			}
		}
	})
}

// TestClientHash: a request and the NAT reply to it hash alike, so both
// reach the shard that holds the connection.
func TestClientHash(t *testing.T) {
	cfg := testConfig(t, 64)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	for i := range 100 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), uint16(3000+i))
		req := pkt{src: c, dst: ap("10.0.0.100:80"), proto: TCP}.build(t)
		h1 := ClientHash(decodeT(t, req), true, 5)
		f := run(b, req, 1)
		h, _ := decodeHeaders(f.Data)
		rep := pkt{src: h.dst, dst: c, proto: TCP}.build(t)
		if h2 := ClientHash(decodeT(t, rep), false, 5); h1 != h2 {
			t.Fatalf("client %v: request hash %#x, reply hash %#x", c, h1, h2)
		}
		other := pkt{src: netip.AddrPortFrom(c.Addr(), c.Port()+1), dst: ap("10.0.0.100:80"), proto: TCP}.build(t)
		if ClientHash(decodeT(t, other), true, 5) == h1 {
			t.Fatalf("client %v: another port hashes alike", c)
		}
	}
}

// TestBalancerUpdateConcurrent swaps configurations from another goroutine
// while batches run (run with -race).
func TestBalancerUpdateConcurrent(t *testing.T) {
	cfg := testConfig(t, 1<<10)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			c := testConfig(t, 1<<10)
			c.Services[0].Backends[i%3].Weight = 0
			c.Conntrack.UDPTimeout += time.Duration(i) * time.Second
			if err := b.Update(c); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			if s := b.Stats(); s.Inbound == 0 {
				t.Fatalf("nothing forwarded: %+v", s)
			}
			return
		default:
		}
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 4000)
		if f := run(b, pkt{src: c, dst: ap("10.0.0.100:80"), proto: TCP}.build(t), int64(i)); f.Verdict != pipeline.Redirect {
			t.Fatalf("verdict %v %v", f.Verdict, f.Reason)
		}
	}
}

func TestSvcTable(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 100, 1000} {
		tab := newSvcTable(n)
		svcs := make([]service, n)
		key := func(i int) svcKey {
			return svcKey{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).As16(), uint16(80 + i%3), uint8(TCP)}
		}
		for i := range n {
			tab.put(key(i), &svcs[i])
		}
		for i := range n {
			k := key(i)
			if tab.get(&k) != &svcs[i] {
				t.Fatalf("n=%d: service %d not found", n, i)
			}
		}
		for i := n; i < n+100; i++ {
			k := key(i)
			if tab.get(&k) != nil {
				t.Fatalf("n=%d: absent service %d found", n, i)
			}
		}
		if n > 0 {
			k := key(0)
			k.proto = uint8(UDP)
			if tab.get(&k) != nil {
				t.Fatalf("n=%d: wrong protocol found", n)
			}
		}
	}
}

// TestBalancerLargeBatch: a batch longer than the 64-frame chunks, with
// frames another stage already decided, comes out frame by frame right.
func TestBalancerLargeBatch(t *testing.T) {
	cfg := testConfig(t, 1<<10)
	b := newTestBalancer(t, cfg, resolverFor(cfg), nil)
	const n = 150
	batch := &pipeline.Batch{Now: 1}
	clients := make([]netip.AddrPort, n)
	for i := range n {
		clients[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), uint16(5000+i))
		f := pipeline.Frame{Data: pkt{src: clients[i], dst: ap("10.0.0.100:80"), proto: TCP, flags: proto.TCPFlagSYN}.build(t)}
		if i%7 == 3 {
			f.SetDrop(pipeline.ReasonPolicy) // decided before: must be left alone
		}
		batch.Frames = append(batch.Frames, f)
	}
	b.Process(batch)
	for i, f := range batch.Frames {
		h, err := decodeHeaders(f.Data)
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 3 {
			if f.Verdict != pipeline.Drop || f.Reason != pipeline.ReasonPolicy || h.dst != ap("10.0.0.100:80") {
				t.Fatalf("frame %d (decided before) was touched: %v %v %v", i, f.Verdict, f.Reason, h.dst)
			}
			continue
		}
		var k Key
		k.Flow.SetIPv4(clients[i].Addr().As4(), [4]byte{10, 0, 0, 100})
		k.Flow.SrcPort, k.Flow.DstPort, k.Flow.Proto = clients[i].Port(), 80, proto.IPProtoTCP
		ref, ok := b.Table().Lookup(&k, 1)
		if !ok || f.Verdict != pipeline.Redirect {
			t.Fatalf("frame %d: %v %v, in table %v", i, f.Verdict, f.Reason, ok)
		}
		v := b.Table().Value(ref)
		if want := netip.AddrPortFrom(netip.AddrFrom16(v.Addr).Unmap(), v.Port); h.dst != want || h.src != clients[i] {
			t.Fatalf("frame %d: %v -> %v, table says backend %v", i, h.src, h.dst, want)
		}
	}
}

// countingResolver counts Lookup calls and can change its answers.
type countingResolver struct {
	m     mapResolver
	calls int
}

func (r *countingResolver) Lookup(ip netip.Addr) ([6]byte, bool) {
	r.calls++
	return r.m.Lookup(ip)
}

// TestBalancerNextHopCache: within a batch the resolver is asked once per
// next hop; a neighbor change shows from the next batch on; IPv6 next hops
// are asked as IPv6 addresses.
func TestBalancerNextHopCache(t *testing.T) {
	cfg := testConfig(t, 1024)
	res := &countingResolver{m: resolverFor(cfg)}
	b := newTestBalancer(t, cfg, res, nil)
	batch := func(dst string, n int, now int64) []pipeline.Frame {
		fr := make([]pipeline.Frame, n)
		for i := range fr {
			p := pkt{src: netip.AddrPortFrom(ipAddr("192.0.2.7"), uint16(1000+i)), dst: ap(dst), proto: TCP}
			if ap(dst).Addr().Is6() {
				p = pkt{src: netip.AddrPortFrom(ipAddr("2001:db8::7"), uint16(1000+i)), dst: ap(dst), proto: UDP}
			}
			fr[i] = pipeline.Frame{Data: p.build(t)}
		}
		b.Process(&pipeline.Batch{Frames: fr, Now: now})
		return fr
	}
	fr := batch("10.0.0.100:80", 40, 1)
	backends := map[[6]byte]bool{}
	for _, f := range fr {
		if f.Verdict != pipeline.Redirect {
			t.Fatalf("verdict %v %v", f.Verdict, f.Reason)
		}
		backends[[6]byte(f.Data[0:6])] = true
	}
	if res.calls != len(backends) {
		t.Fatalf("%d resolver calls for %d next hops in one batch", res.calls, len(backends))
	}
	// A backend's MAC changes: the next batch uses the new one.
	be := ipAddr("10.0.1.11")
	res.m[be] = [6]byte{0x02, 0xcc, 0, 0, 0, 1}
	seen := false
	for _, f := range batch("10.0.0.100:80", 40, 2) {
		if [6]byte(f.Data[0:6]) == macOf(be) {
			t.Fatalf("old MAC used after the neighbor changed: %x (resolver %v)", f.Data[0:12], res.m)
		}
		seen = seen || [6]byte(f.Data[0:6]) == res.m[be]
	}
	if !seen {
		t.Fatal("no frame went to the changed backend")
	}
	// IPv6 next hops are asked as IPv6 addresses.
	res.calls = 0
	for _, f := range batch("[fd00::100]:53", 8, 3) {
		if f.Verdict != pipeline.Redirect {
			t.Fatalf("IPv6: verdict %v %v", f.Verdict, f.Reason)
		}
	}
	if res.calls == 0 || res.calls > 2 {
		t.Fatalf("IPv6: %d resolver calls for at most 2 backends", res.calls)
	}
}
