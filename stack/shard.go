package stack

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/neighbor"
)

// EchoTTL is the TTL (IPv4) and hop limit (IPv6) of echo replies.
const EchoTTL = 64

// DropReason says why the shard dropped a received frame.
type DropReason uint8

// Drop reasons.
const (
	DropMalformed   DropReason = iota // a header failed to parse
	DropEtherType                     // neither ARP, IPv4 nor IPv6 (VLAN tags included)
	DropBadChecksum                   // IPv4 header, ICMPv4 or ICMPv6 checksum wrong
	DropNotOurs                       // IP destination (or unicast MAC) is not ours, or the source cannot be answered
	DropProtocol                      // IP protocol or ICMP type we do not handle
	DropFragment                      // IPv4 fragment, or IPv6 fragment header
	DropIPOptions                     // IPv4 header with options
	DropExtHeader                     // IPv6 extension header other than a fragment header (MLD's hop-by-hop, …)
	DropBadSource                     // group or our own source MAC on an echo request
	DropNeighbor                      // rejected by the neighbor table (its Stats say why)
	numDropReasons
)

// NumDropReasons is the length of Stats.Drops.
const NumDropReasons = int(numDropReasons)

var dropNames = [numDropReasons]string{"Malformed", "EtherType", "BadChecksum", "NotOurs",
	"Protocol", "Fragment", "IPOptions", "ExtHeader", "BadSource", "Neighbor"}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Stats are a shard's counters.
type Stats struct {
	RxFrames     uint64 // frames received
	Neighbor     uint64 // ARP and NDP frames the neighbor table accepted
	EchoV4       uint64 // ICMPv4 echo replies sent
	EchoV6       uint64 // ICMPv6 echo replies sent
	NeighborSent uint64 // frames built for the neighbor table and transmitted
	NoTxBuffer   uint64 // neighbor frames not sent: link.Alloc had no buffer
	Transmitted  uint64 // frames link.Transmit accepted
	TxRefused    uint64 // frames link.Transmit dropped (link.Stats says why)

	Drops [NumDropReasons]uint64 // received frames dropped, by reason
}

// Dropped returns the sum of Drops.
func (s *Stats) Dropped() uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}

// ShardConfig configures a shard.
type ShardConfig struct {
	// Addrs are our addresses, IPv4 and IPv6, with their prefix lengths.
	Addrs []netip.Prefix
	// Neighbor configures the neighbor table; its MAC is set to the
	// link's.
	Neighbor neighbor.Config
	// Batch is the most frames one Poll receives (default 64).
	Batch int
}

// Shard is one host stack shard driving one link.Link. It is owned by one
// goroutine: none of its methods are safe for concurrent use.
type Shard struct {
	l     link.Link
	mac   [6]byte
	v4    [][4]byte
	v6    [][16]byte
	addrs []netip.Prefix
	nb    *neighbor.Table[pipeline.Frame]
	start time.Time

	rx  []pipeline.Frame // received batch
	tx  []pipeline.Frame // frames to transmit
	rel []pipeline.Frame // frames to release
	one []pipeline.Frame // Alloc scratch

	stats Stats
}

// NewShard returns a shard for l with the addresses of cfg. The MAC is the
// link's. It allocates all the memory the shard uses.
func NewShard(l link.Link, cfg ShardConfig) (*Shard, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	s := &Shard{
		l:     l,
		mac:   l.HardwareAddr(),
		start: time.Now(),
		rx:    make([]pipeline.Frame, cfg.Batch),
		tx:    make([]pipeline.Frame, 0, cfg.Batch),
		rel:   make([]pipeline.Frame, 0, cfg.Batch),
		one:   make([]pipeline.Frame, 1),
	}
	if s.mac == [6]byte{} || proto.IsMulticastMAC(s.mac) {
		return nil, fmt.Errorf("stack: link address %x is not a unicast MAC", s.mac)
	}
	ncfg := cfg.Neighbor
	ncfg.MAC = s.mac
	s.nb = neighbor.New[pipeline.Frame](ncfg, (*sink)(s))
	for _, p := range cfg.Addrs {
		a := p.Addr()
		if !p.IsValid() || a.Zone() != "" || !a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() {
			return nil, fmt.Errorf("stack: address %v is not a unicast prefix", p)
		}
		switch {
		case a.Is4():
			s.v4 = append(s.v4, a.As4())
		case a.Is4In6():
			return nil, fmt.Errorf("stack: address %v: use the IPv4 form", p)
		default:
			s.v6 = append(s.v6, a.As16())
		}
		s.addrs = append(s.addrs, p)
		s.nb.AddAddress(a)
	}
	return s, nil
}

// Addrs returns the shard's addresses.
func (s *Shard) Addrs() []netip.Prefix { return append([]netip.Prefix(nil), s.addrs...) }

// HardwareAddr returns the shard's MAC (the link's).
func (s *Shard) HardwareAddr() [6]byte { return s.mac }

// Neighbors returns the shard's neighbor table, for inspection from the
// owning goroutine.
func (s *Shard) Neighbors() *neighbor.Table[pipeline.Frame] { return s.nb }

// Stats returns the shard's counters. Call it on the owning goroutine.
func (s *Shard) Stats() Stats { return s.stats }

// Now returns the shard's clock as Run uses it: nanoseconds since NewShard.
func (s *Shard) Now() int64 { return int64(time.Since(s.start)) }

// Announce sends a gratuitous ARP for every IPv4 address and an
// unsolicited neighbor advertisement for every IPv6 address, and flushes.
func (s *Shard) Announce() {
	s.nb.Announce()
	s.transmit()
	s.l.Flush()
}

// Poll receives one batch from the link and handles it, runs the neighbor
// timers due at now, transmits what that produced and flushes the link. It
// returns the number of frames received.
func (s *Shard) Poll(now int64) int {
	n := s.l.Receive(s.rx)
	s.stats.RxFrames += uint64(n)
	for i := range n {
		s.input(now, &s.rx[i])
		s.rx[i] = pipeline.Frame{}
	}
	if len(s.rel) > 0 {
		s.l.Release(s.rel)
		clear(s.rel)
		s.rel = s.rel[:0]
	}
	if now >= s.nb.Next() {
		s.nb.Tick(now)
	}
	s.transmit()
	s.l.Flush()
	return n
}

// Run runs the shard on the calling goroutine until ctx is done or the link
// fails: Announce, then Poll, and Wait on the link when there was nothing
// to do, until the neighbor table's next deadline. It returns nil when ctx
// ended it.
func (s *Shard) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.l.Wake)
	defer stop()
	s.Announce()
	for ctx.Err() == nil {
		now := s.Now()
		if s.Poll(now) > 0 {
			continue
		}
		timeout := time.Duration(-1)
		if next := s.nb.Next(); next != math.MaxInt64 {
			timeout = time.Duration(max(0, next-s.Now()))
		}
		if err := s.l.Wait(timeout); err != nil {
			if errors.Is(err, link.ErrClosed) && ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// drop releases f (at the end of the batch) and counts it.
func (s *Shard) drop(f *pipeline.Frame, r DropReason) {
	s.stats.Drops[r]++
	s.rel = append(s.rel, *f)
}

// send queues f for Transmit, transmitting the queue first when it is
// full.
func (s *Shard) send(f *pipeline.Frame) {
	if len(s.tx) == cap(s.tx) {
		s.transmit()
	}
	s.tx = append(s.tx, *f)
}

// transmit hands the queued frames to the link.
func (s *Shard) transmit() {
	if len(s.tx) == 0 {
		return
	}
	n := s.l.Transmit(s.tx)
	s.stats.Transmitted += uint64(n)
	s.stats.TxRefused += uint64(len(s.tx) - n)
	clear(s.tx)
	s.tx = s.tx[:0]
}

func (s *Shard) input(now int64, f *pipeline.Frame) {
	eth, err := proto.ParseEthernet(f.Data)
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	switch eth.EtherType() {
	case proto.EtherTypeARP:
		a, err := proto.ParseARP(eth.Payload())
		if err != nil {
			s.drop(f, DropMalformed)
			return
		}
		s.neighbor(f, s.nb.InputARP(now, eth, a))
	case proto.EtherTypeIPv4:
		if !s.forUs(eth) {
			s.drop(f, DropNotOurs)
			return
		}
		s.inputIPv4(f, eth)
	case proto.EtherTypeIPv6:
		if !s.forUs(eth) {
			s.drop(f, DropNotOurs)
			return
		}
		s.inputIPv6(now, f, eth)
	default:
		s.drop(f, DropEtherType)
	}
}

// neighbor finishes a frame the neighbor table has seen: the table keeps
// nothing of it, so it is released either way.
func (s *Shard) neighbor(f *pipeline.Frame, r neighbor.Reason) {
	if r != neighbor.OK {
		s.drop(f, DropNeighbor)
		return
	}
	s.stats.Neighbor++
	s.rel = append(s.rel, *f)
}

// forUs reports whether an IP frame is addressed to our MAC or a group
// (a promiscuous link may deliver frames for other hosts).
func (s *Shard) forUs(eth proto.Ethernet) bool {
	d := eth.Dst()
	return d == s.mac || proto.IsMulticastMAC(d)
}

func (s *Shard) ours4(a [4]byte) bool {
	for _, o := range s.v4 {
		if o == a {
			return true
		}
	}
	return false
}

func (s *Shard) ours6(a [16]byte) bool {
	for _, o := range s.v6 {
		if o == a {
			return true
		}
	}
	return false
}

// replyMACs checks the request's source MAC and addresses the reply to it.
func (s *Shard) replyMACs(eth proto.Ethernet) bool {
	src := eth.Src()
	if proto.IsMulticastMAC(src) || src == s.mac {
		return false
	}
	eth.SetDst(src)
	eth.SetSrc(s.mac)
	return true
}

func (s *Shard) inputIPv4(f *pipeline.Frame, eth proto.Ethernet) {
	ip, err := proto.ParseIPv4(eth.Payload())
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	switch {
	case !ip.VerifyChecksum():
		s.drop(f, DropBadChecksum)
		return
	case !s.ours4(ip.DstArray()):
		s.drop(f, DropNotOurs)
		return
	case ip.IsFragment():
		s.drop(f, DropFragment)
		return
	case ip.HeaderLength() != proto.IPv4MinHeaderLen:
		s.drop(f, DropIPOptions)
		return
	case ip.Protocol() != proto.IPProtoICMP:
		s.drop(f, DropProtocol)
		return
	}
	m, err := proto.ParseICMPv4(ip.Payload())
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	if m.Type() != proto.ICMPv4EchoRequest || m.Code() != 0 {
		s.drop(f, DropProtocol)
		return
	}
	if !m.VerifyChecksum() {
		s.drop(f, DropBadChecksum)
		return
	}
	src := ip.SrcArray()
	if src[0] == 0 || src[0] >= 224 || src[0] == 127 {
		s.drop(f, DropNotOurs) // no reply to 0/8, loopback, multicast or broadcast
		return
	}
	if !s.replyMACs(eth) {
		s.drop(f, DropBadSource)
		return
	}
	// Swapping the addresses leaves both checksums as they are (the
	// one's-complement sum does not depend on the order of the words); the
	// TTL and the ICMP type change, updated incrementally.
	dst := ip.DstArray()
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

func (s *Shard) inputIPv6(now int64, f *pipeline.Frame, eth proto.Ethernet) {
	ip, err := proto.ParseIPv6(eth.Payload())
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	switch ip.NextHeader() {
	case proto.IPProtoICMPv6:
	case proto.IPProtoFragment:
		s.drop(f, DropFragment)
		return
	case proto.IPProtoHopByHop, proto.IPProtoRouting, proto.IPProtoDstOpts, proto.IPProtoAH:
		s.drop(f, DropExtHeader)
		return
	default:
		s.drop(f, DropProtocol)
		return
	}
	m, err := proto.ParseICMPv6(ip.Payload())
	if err != nil {
		s.drop(f, DropMalformed)
		return
	}
	switch m.Type() {
	case proto.ICMPv6NeighborSolicitation, proto.ICMPv6NeighborAdvertisement:
		s.neighbor(f, s.nb.InputNDP(now, eth.Src(), ip))
		return
	case proto.ICMPv6EchoRequest:
	default:
		s.drop(f, DropProtocol)
		return
	}
	src, dst := ip.SrcArray(), ip.DstArray()
	if !s.ours6(dst) {
		s.drop(f, DropNotOurs)
		return
	}
	if m.Code() != 0 {
		s.drop(f, DropProtocol)
		return
	}
	if !m.VerifyChecksum(src, dst) {
		s.drop(f, DropBadChecksum)
		return
	}
	if a := netip.AddrFrom16(src); a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		s.drop(f, DropNotOurs)
		return
	}
	if !s.replyMACs(eth) {
		s.drop(f, DropBadSource)
		return
	}
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetHopLimit(EchoTTL)
	m.SetType(proto.ICMPv6EchoReply)
	m.SetChecksum(proto.ICMPv6Checksum(dst, src, m))
	f.Data = f.Data[:proto.EthernetLen+len(ip)]
	s.stats.EchoV6++
	s.send(f)
}

// sink is the Shard as the neighbor table's neighbor.Sink. Its methods run
// inside Table calls and only queue frames.
type sink Shard

// Send builds the frame a describes in a buffer from the link.
func (k *sink) Send(a *neighbor.Action) {
	s := (*Shard)(k)
	if a.Kind == neighbor.DADSucceeded || a.Kind == neighbor.DADFailed {
		return
	}
	if s.l.Alloc(s.one) == 0 {
		s.stats.NoTxBuffer++
		return
	}
	f := &s.one[0]
	if cap(f.Data) < neighbor.FrameLen {
		s.l.Release(s.one) // never with a sane MTU; AppendFrame would allocate
		s.stats.NoTxBuffer++
		return
	}
	f.Data = a.AppendFrame(f.Data[:0])
	if len(f.Data) == 0 {
		s.l.Release(s.one)
		return
	}
	s.stats.NeighborSent++
	s.send(f)
	s.one[0] = pipeline.Frame{}
}

// Release sends a packet that waited for resolution to mac. (Nothing
// queues packets yet: there is no output path.)
func (k *sink) Release(p pipeline.Frame, mac [6]byte) {
	s := (*Shard)(k)
	if eth, err := proto.ParseEthernet(p.Data); err == nil {
		eth.SetDst(mac)
		s.send(&p)
		return
	}
	s.one[0] = p
	s.l.Release(s.one)
	s.one[0] = pipeline.Frame{}
}

// Drop frees a packet the table gave up on.
func (k *sink) Drop(p pipeline.Frame, _ neighbor.Reason) {
	s := (*Shard)(k)
	s.one[0] = p
	s.l.Release(s.one)
	s.one[0] = pipeline.Frame{}
}
