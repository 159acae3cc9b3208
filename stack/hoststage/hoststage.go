// Package hoststage makes a data path answer as a host on its ports from
// inside a pipeline: a Stage that answers ARP and neighbor discovery for
// the port's addresses, resolves next hops for the stages after it (the
// load balancer's Resolver), answers pings to its addresses, lets a
// component see frames sent to them (health-check replies) and send IP
// packets of its own (health-check probes).
//
// It is the host stack's neighbor machinery (package stack/neighbor) on
// pipeline frames instead of a link.Link: frames it builds come from the
// worker's frame pool through a FrameSource and leave through the
// pipeline's Releaser hook (pipeline.Releaser), so they are transmitted by
// the worker like any forwarded frame. One Stage per worker; it is owned
// by the worker's goroutine (Process, Release, Next, Lookup and SendIP
// must be called from it).
package hoststage

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/neighbor"
)

// Reasons for the frames the stage consumes or refuses.
var (
	ReasonConsumed = pipeline.NewReason("host-consumed") // ARP/NDP or an intercepted frame, fully handled
	ReasonHostDrop = pipeline.NewReason("host-drop")     // to one of our addresses, nothing handles it
)

// FrameSource gives the stage empty frames (Data of length 0 and the
// capacity of a buffer, Addr set) from the worker's pool. Frames go back
// through the pipeline's verdicts.
type FrameSource interface {
	Alloc() (pipeline.Frame, bool)
}

// PortConfig is one port of the data path as a host.
type PortConfig struct {
	Index uint16         // the port number (pipeline.Frame.InPort)
	MAC   [6]byte        // the port's MAC
	Addrs []netip.Prefix // our addresses on the port, with their prefixes
	// Gateways are next hops for destinations outside Addrs' prefixes
	// (one per family).
	Gateways []netip.Addr
	// Services are addresses the stage answers ARP/NDP and pings for but
	// whose other traffic it leaves to later stages (a load balancer's
	// VIPs).
	Services []netip.Addr
}

// Config configures a Stage.
type Config struct {
	Ports    []PortConfig
	Neighbor neighbor.Config // MAC is set per port
	Frames   FrameSource
	// Group, if set, joins the stages of several workers of one data
	// path: a neighbor reply (ARP reply, neighbor advertisement) one of
	// them receives is given to the others' tables too, since the peer's
	// RSS puts replies on any queue.
	Group *Group
	// Intercept, if set, sees every IP frame to one of our addresses
	// that is not ICMP echo, ARP or NDP (with the port it came from); it
	// returns true when it consumed the frame (the stage then frees it).
	Intercept func(port uint16, ip []byte) bool
}

// Stats are the stage's counters (owning goroutine).
type Stats struct {
	Neighbor    uint64 // ARP/NDP frames handled
	Echo        uint64 // echo replies sent
	Intercepted uint64 // frames Intercept consumed
	HostDrops   uint64 // frames to our addresses nothing handled
	Sent        uint64 // frames the stage built and emitted
	NoFrame     uint64 // frames not built: the pool was empty
	NoRoute     uint64 // SendIP and Lookup with no port for the address
}

type port struct {
	cfg  PortConfig
	nb   *neighbor.Table[pipeline.Frame]
	own  map[netip.Addr]bool // our addresses: their traffic is the host's
	echo map[netip.Addr]bool // addresses answered for pings: own and services
}

// Stage is the host on the data path's ports. It implements
// pipeline.Stage and pipeline.Releaser.
type Stage struct {
	cfg   Config
	inbox inbox // neighbor replies from the group
	ports []*port
	byIdx map[uint16]*port
	now   int64
	out   []pipeline.Frame // built frames waiting for Release
	stats Stats
	hops  [64]hopEntry // Lookup's recent answers, by address
}

// hopEntry is a cached answer of Lookup: valid while its port's neighbor
// table has the same generation (no address changed or went) and until
// its deadline, so the table still sees the entry used (its reachability
// state machine runs on use) every hopTTL at least.
type hopEntry struct {
	ip    netip.Addr
	p     *port
	gen   uint64
	until int64
	mac   [6]byte
}

// hopTTL bounds how long a cached next hop skips the neighbor table.
const hopTTL = int64(10 * time.Millisecond)

func hopIndex(ip netip.Addr) int {
	b := ip.As16()
	return int(b[15]^b[14]*7^b[11]*13) & 63
}

// New returns a Stage.
func New(cfg Config) (*Stage, error) {
	if cfg.Frames == nil {
		return nil, errors.New("hoststage: no frame source")
	}
	s := &Stage{cfg: cfg, byIdx: map[uint16]*port{}, out: make([]pipeline.Frame, 0, 256)}
	for _, pc := range cfg.Ports {
		if _, dup := s.byIdx[pc.Index]; dup {
			return nil, fmt.Errorf("hoststage: port %d twice", pc.Index)
		}
		p := &port{cfg: pc, own: map[netip.Addr]bool{}, echo: map[netip.Addr]bool{}}
		ncfg := cfg.Neighbor
		ncfg.MAC = pc.MAC
		ncfg.Seed ^= uint64(pc.Index) + 1
		p.nb = neighbor.New[pipeline.Frame](ncfg, &sink{s: s, p: p})
		for _, a := range pc.Addrs {
			p.nb.AddAddress(a.Addr())
			p.own[a.Addr()] = true
			p.echo[a.Addr()] = true
		}
		for _, a := range pc.Services {
			p.nb.AddAddress(a)
			p.echo[a] = true
		}
		s.ports = append(s.ports, p)
		s.byIdx[pc.Index] = p
	}
	if cfg.Group != nil {
		cfg.Group.mu.Lock()
		cfg.Group.stages = append(cfg.Group.stages, s)
		cfg.Group.mu.Unlock()
	}
	return s, nil
}

// Group joins the stages of the workers of one data path (Config.Group).
type Group struct {
	mu     sync.Mutex
	stages []*Stage
}

// inbox holds copies of neighbor replies other stages received: a few
// fixed slots under a mutex (control-plane rate; a full inbox drops).
type inbox struct {
	mu    sync.Mutex
	n     int
	ports [16]uint16
	lens  [16]int
	bufs  [16][128]byte
}

func (s *Stage) share(port uint16, frame []byte) {
	g := s.cfg.Group
	if g == nil || len(frame) > 128 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range g.stages {
		if o == s {
			continue
		}
		o.inbox.mu.Lock()
		if i := o.inbox.n; i < len(o.inbox.bufs) {
			o.inbox.ports[i], o.inbox.lens[i] = port, copy(o.inbox.bufs[i][:], frame)
			o.inbox.n++
		}
		o.inbox.mu.Unlock()
	}
}

// drainInbox feeds the shared replies to the tables.
func (s *Stage) drainInbox() {
	s.inbox.mu.Lock()
	defer s.inbox.mu.Unlock()
	for i := range s.inbox.n {
		p := s.byIdx[s.inbox.ports[i]]
		eth, err := proto.ParseEthernet(s.inbox.bufs[i][:s.inbox.lens[i]])
		if p == nil || err != nil {
			continue
		}
		switch eth.EtherType() {
		case proto.EtherTypeARP:
			if a, err := proto.ParseARP(eth.Payload()); err == nil {
				p.nb.InputARP(s.now, eth, a)
			}
		case proto.EtherTypeIPv6:
			if ip, err := proto.ParseIPv6(eth.Payload()); err == nil {
				p.nb.InputNDP(s.now, eth.Src(), ip)
			}
		}
	}
	s.inbox.n = 0
}

// Name is the stage's name in counters and captures.
func (s *Stage) Name() string { return "host" }

// Stats returns the stage's counters.
func (s *Stage) Stats() Stats { return s.stats }

// Neighbors returns the neighbor table of a port (owning goroutine).
func (s *Stage) Neighbors(portIdx uint16) *neighbor.Table[pipeline.Frame] {
	if p := s.byIdx[portIdx]; p != nil {
		return p.nb
	}
	return nil
}

// Announce queues a gratuitous ARP and an unsolicited NA for every
// address of every port (sent at the next Release).
func (s *Stage) Announce() {
	for _, p := range s.ports {
		p.nb.Announce()
	}
}

// Process handles the frames for the host and leaves the others undecided.
func (s *Stage) Process(b *pipeline.Batch) {
	s.now = b.Now
	for i := range b.Frames {
		f := &b.Frames[i]
		if f.Verdict != pipeline.Pass {
			continue
		}
		p := s.byIdx[f.InPort]
		if p == nil {
			continue
		}
		s.input(p, f)
	}
}

func (s *Stage) input(p *port, f *pipeline.Frame) {
	eth, err := proto.ParseEthernet(f.Data)
	if err != nil {
		return // not ours to judge: the next stage counts malformed frames
	}
	switch eth.EtherType() {
	case proto.EtherTypeARP:
		a, err := proto.ParseARP(eth.Payload())
		if err != nil {
			return
		}
		// A reply is shared whatever this table made of it: another
		// worker's table may be the one waiting (an unsolicited NA is
		// not installed here, but is the answer there).
		p.nb.InputARP(s.now, eth, a)
		if a.Op() == proto.ARPReply {
			s.share(p.cfg.Index, f.Data)
		}
		s.stats.Neighbor++
		f.SetDrop(ReasonConsumed)
	case proto.EtherTypeIPv4:
		ip, err := proto.ParseIPv4(eth.Payload())
		if err != nil || !p.echo[ip.Dst()] {
			return
		}
		if ip.Protocol() == proto.IPProtoICMP && !ip.IsFragment() && ip.HeaderLength() == proto.IPv4MinHeaderLen && ip.VerifyChecksum() {
			if m, err := proto.ParseICMPv4(ip.Payload()); err == nil && m.Type() == proto.ICMPv4EchoRequest && m.VerifyChecksum() {
				s.echo4(p, f, eth, ip, m)
				return
			}
		}
		if p.own[ip.Dst()] {
			s.intercept(p, f, ip)
		}
	case proto.EtherTypeIPv6:
		ip, err := proto.ParseIPv6(eth.Payload())
		if err != nil {
			return
		}
		if ip.NextHeader() == proto.IPProtoICMPv6 {
			m, err := proto.ParseICMPv6(ip.Payload())
			if err == nil {
				switch m.Type() {
				case proto.ICMPv6NeighborSolicitation, proto.ICMPv6NeighborAdvertisement:
					p.nb.InputNDP(s.now, eth.Src(), ip)
					if m.Type() == proto.ICMPv6NeighborAdvertisement {
						s.share(p.cfg.Index, f.Data)
					}
					s.stats.Neighbor++
					f.SetDrop(ReasonConsumed)
					return
				case proto.ICMPv6EchoRequest:
					if p.echo[ip.Dst()] && m.Code() == 0 && m.VerifyChecksum(ip.SrcArray(), ip.DstArray()) {
						s.echo6(f, eth, ip, m)
						return
					}
				}
			}
		}
		if p.own[ip.Dst()] {
			s.intercept(p, f, ip)
		}
	}
}

func (s *Stage) intercept(p *port, f *pipeline.Frame, ip []byte) {
	if s.cfg.Intercept != nil && s.cfg.Intercept(p.cfg.Index, ip) {
		s.stats.Intercepted++
		f.SetDrop(ReasonConsumed)
		return
	}
	s.stats.HostDrops++
	f.SetDrop(ReasonHostDrop)
}

// replyMACs addresses an in-place reply to the request's sender.
func replyMACs(eth proto.Ethernet, mac [6]byte) bool {
	src := eth.Src()
	if proto.IsMulticastMAC(src) || src == mac {
		return false
	}
	eth.SetDst(src)
	eth.SetSrc(mac)
	return true
}

func (s *Stage) echo4(p *port, f *pipeline.Frame, eth proto.Ethernet, ip proto.IPv4, m proto.ICMPv4) {
	src, dst := ip.SrcArray(), ip.DstArray()
	if src[0] == 0 || src[0] == 127 || src[0] >= 224 || !replyMACs(eth, p.cfg.MAC) {
		f.SetDrop(ReasonHostDrop)
		return
	}
	ip.SetSrc(dst)
	ip.SetDst(src)
	word := uint16(ip.TTL())<<8 | uint16(ip.Protocol())
	ip.SetTTL(64)
	ip.SetChecksum(proto.ChecksumUpdate16(ip.Checksum(), word, 64<<8|uint16(ip.Protocol())))
	m.EchoToReply()
	f.Data = f.Data[:proto.EthernetLen+len(ip)]
	f.SetRedirect(f.InPort)
	s.stats.Echo++
}

func (s *Stage) echo6(f *pipeline.Frame, eth proto.Ethernet, ip proto.IPv6, m proto.ICMPv6) {
	src, dst := ip.SrcArray(), ip.DstArray()
	if a := netip.AddrFrom16(src); a.IsUnspecified() || a.IsMulticast() || !replyMACs(eth, s.byIdx[f.InPort].cfg.MAC) {
		f.SetDrop(ReasonHostDrop)
		return
	}
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetHopLimit(64)
	m.SetType(proto.ICMPv6EchoReply)
	m.SetChecksum(proto.ICMPv6Checksum(dst, src, m))
	f.Data = f.Data[:proto.EthernetLen+len(ip)]
	f.SetRedirect(f.InPort)
	s.stats.Echo++
}

// route returns the port and next hop for dst.
func (s *Stage) route(dst netip.Addr) (*port, netip.Addr, bool) {
	dst = dst.Unmap()
	for _, p := range s.ports {
		for _, a := range p.cfg.Addrs {
			if a.Contains(dst) {
				return p, dst, true
			}
		}
	}
	for _, p := range s.ports {
		for _, g := range p.cfg.Gateways {
			if g.Is4() == dst.Is4() {
				return p, g, true
			}
		}
	}
	return nil, netip.Addr{}, false
}

// Lookup gives the MAC of the next hop toward ip (the lb.Resolver
// interface). On a miss it starts resolution (a solicitation goes out at
// the next Release), so the next packets find it. It does not allocate.
//
// A load balancer asks once per packet for a handful of backends: answers
// are cached per address (route, neighbor map and entry were ~110 ns per
// packet of tyfwd lb), dropped when the neighbor table changes an address
// and refreshed every hopTTL.
func (s *Stage) Lookup(ip netip.Addr) ([6]byte, bool) {
	e := &s.hops[hopIndex(ip)]
	if e.ip == ip && e.p != nil && e.gen == e.p.nb.Gen() && s.now < e.until {
		return e.mac, true
	}
	p, hop, ok := s.route(ip)
	if !ok {
		s.stats.NoRoute++
		return [6]byte{}, false
	}
	if mac, ok := p.nb.Lookup(s.now, hop); ok {
		*e = hopEntry{ip: ip, p: p, gen: p.nb.Gen(), until: s.now + hopTTL, mac: mac}
		return mac, true
	}
	return p.nb.Resolve(s.now, hop, pipeline.Frame{}) // a frame without Data only starts resolution
}

// PortFor returns the port the stage would send a packet to ip on.
func (s *Stage) PortFor(ip netip.Addr) (uint16, bool) {
	p, _, ok := s.route(ip)
	if !ok {
		return 0, false
	}
	return p.cfg.Index, true
}

// SendIP sends the IP packet pkt (IPv4 or IPv6, complete with checksums)
// to its destination: it is copied into a frame, and sent at the next
// Release, after neighbor resolution if needed (then it waits in the
// neighbor table's bounded queue). It reports whether the packet was
// taken.
func (s *Stage) SendIP(pkt []byte) bool {
	var dst netip.Addr
	var et uint16
	switch {
	case len(pkt) >= proto.IPv4MinHeaderLen && pkt[0]>>4 == 4:
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		et = proto.EtherTypeIPv4
	case len(pkt) >= proto.IPv6HeaderLen && pkt[0]>>4 == 6:
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		et = proto.EtherTypeIPv6
	default:
		return false
	}
	p, hop, ok := s.route(dst)
	if !ok {
		s.stats.NoRoute++
		return false
	}
	f, ok := s.cfg.Frames.Alloc()
	if !ok {
		s.stats.NoFrame++
		return false
	}
	if cap(f.Data) < proto.EthernetLen+len(pkt) {
		f.SetDrop(ReasonHostDrop)
		s.out = append(s.out, f)
		return false
	}
	b := f.Data[:proto.EthernetLen+len(pkt)]
	eth := proto.Ethernet(b)
	eth.SetSrc(p.cfg.MAC)
	b[12], b[13] = byte(et>>8), byte(et)
	copy(b[proto.EthernetLen:], pkt)
	f.Data = b
	f.InPort = p.cfg.Index
	if mac, ok := p.nb.Resolve(s.now, hop, f); ok {
		eth.SetDst(mac)
		s.emit(f, p)
	}
	return true
}

func (s *Stage) emit(f pipeline.Frame, p *port) {
	f.SetRedirect(p.cfg.Index)
	s.out = append(s.out, f)
	s.stats.Sent++
}

// Release runs the neighbor timers and hands the frames the stage built
// to the pipeline (pipeline.Releaser).
func (s *Stage) Release(now int64, out []pipeline.Frame) int {
	s.now = now
	if s.cfg.Group != nil {
		s.drainInbox()
	}
	for _, p := range s.ports {
		if now >= p.nb.Next() {
			p.nb.Tick(now)
		}
	}
	n := copy(out, s.out)
	rest := copy(s.out, s.out[n:])
	clear(s.out[rest:])
	s.out = s.out[:rest]
	return n
}

// Next is when the stage needs to run next: at once when built frames
// wait, else at the earliest neighbor timer (pipeline.Releaser).
func (s *Stage) Next() int64 {
	if len(s.out) > 0 {
		return s.now
	}
	next := int64(math.MaxInt64)
	for _, p := range s.ports {
		next = min(next, p.nb.Next())
	}
	if next == math.MaxInt64 {
		return 0
	}
	return next
}

// sink is a port's neighbor.Sink.
type sink struct {
	s *Stage
	p *port
}

func (k *sink) Send(a *neighbor.Action) {
	s := k.s
	if a.Kind == neighbor.DADSucceeded || a.Kind == neighbor.DADFailed {
		return
	}
	f, ok := s.cfg.Frames.Alloc()
	if !ok {
		s.stats.NoFrame++
		return
	}
	if cap(f.Data) < neighbor.FrameLen {
		f.SetDrop(ReasonHostDrop)
		s.out = append(s.out, f)
		return
	}
	f.Data = a.AppendFrame(f.Data[:0])
	f.InPort = k.p.cfg.Index
	s.emit(f, k.p)
}

func (k *sink) Release(f pipeline.Frame, mac [6]byte) {
	if f.Data == nil {
		return // a resolution started by Lookup
	}
	proto.Ethernet(f.Data).SetDst(mac)
	k.s.emit(f, k.p)
}

func (k *sink) Drop(f pipeline.Frame, _ neighbor.Reason) {
	if f.Data == nil {
		return
	}
	f.SetDrop(ReasonHostDrop)
	k.s.out = append(k.s.out, f)
}
