package stack

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/neighbor"
	"github.com/tygress/tygress/stack/reasm"
	"github.com/tygress/tygress/stack/timer"
)

// EchoTTL is the TTL (IPv4) and hop limit (IPv6) of echo replies.
const EchoTTL = 64

// DefaultTTL is the TTL (IPv4) and hop limit (IPv6) of packets the stack
// originates.
const DefaultTTL = 64

// DropReason says why the shard dropped a received frame.
type DropReason uint8

// Drop reasons.
const (
	DropMalformed     DropReason = iota // a header failed to parse, or lengths disagree
	DropEtherType                       // neither ARP, IPv4 nor IPv6 (VLAN tags included)
	DropBadChecksum                     // IPv4 header, ICMP or UDP checksum wrong (UDP over IPv6: also 0)
	DropNotOurs                         // IP destination (or unicast MAC) is not ours, or the source cannot be answered
	DropProtocol                        // IP protocol or ICMP type we do not handle
	DropReasm                           // fragment refused by reassembly (overlap, budget, …: reasm.Stats says why)
	DropExtHeader                       // IPv6 extension header where none is allowed (NDP), or after a fragment header
	DropBadSource                       // group or our own source MAC on an echo request
	DropNeighbor                        // rejected by the neighbor table (its Stats say why)
	DropNoSocket                        // UDP datagram for a port without a socket (port unreachable sent, rate permitting)
	DropRcvBuf                          // UDP datagram dropped: the socket's receive buffer is full
	DropICMPUnmatched                   // ICMP error quoting a packet we did not send
	numDropReasons
)

// NumDropReasons is the length of Stats.Drops.
const NumDropReasons = int(numDropReasons)

var dropNames = [numDropReasons]string{"Malformed", "EtherType", "BadChecksum", "NotOurs",
	"Protocol", "Reasm", "ExtHeader", "BadSource", "Neighbor", "NoSocket", "RcvBuf", "ICMPUnmatched"}

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
	NoTxBuffer   uint64 // frames not sent: link.Alloc had no buffer
	Transmitted  uint64 // frames link.Transmit accepted
	TxRefused    uint64 // frames link.Transmit dropped (link.Stats says why)

	Fragments    uint64 // fragments taken by reassembly (their frames are released)
	Reassembled  uint64 // datagrams reassembled
	UDPRx        uint64 // UDP datagrams delivered to sockets
	UDPTx        uint64 // UDP datagrams sent (before fragmentation)
	FragsOut     uint64 // fragments sent
	TooBig       uint64 // datagrams not sent: more fragments than a shard sends at once
	NoRoute      uint64 // replies and errors not sent: no route back
	ICMPOut      uint64 // ICMP errors sent
	ICMPLimited  uint64 // ICMP errors not sent: rate limit
	ICMPIn       uint64 // ICMP errors received that quote our packets
	PMTUUpdates  uint64 // path MTU lowered by a packet too big / fragmentation needed
	DADSucceeded uint64 // IPv6 addresses assigned after duplicate address detection
	DADFailed    uint64 // IPv6 addresses another node already uses (not used)

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

func (s *Stats) add(o Stats) {
	s.RxFrames += o.RxFrames
	s.Neighbor += o.Neighbor
	s.EchoV4 += o.EchoV4
	s.EchoV6 += o.EchoV6
	s.NeighborSent += o.NeighborSent
	s.NoTxBuffer += o.NoTxBuffer
	s.Transmitted += o.Transmitted
	s.TxRefused += o.TxRefused
	s.Fragments += o.Fragments
	s.Reassembled += o.Reassembled
	s.UDPRx += o.UDPRx
	s.UDPTx += o.UDPTx
	s.FragsOut += o.FragsOut
	s.TooBig += o.TooBig
	s.NoRoute += o.NoRoute
	s.ICMPOut += o.ICMPOut
	s.ICMPLimited += o.ICMPLimited
	s.ICMPIn += o.ICMPIn
	s.PMTUUpdates += o.PMTUUpdates
	s.DADSucceeded += o.DADSucceeded
	s.DADFailed += o.DADFailed
	for i := range s.Drops {
		s.Drops[i] += o.Drops[i]
	}
}

// ShardConfig configures a standalone shard (NewShard).
type ShardConfig = Config

// maxFrags bounds the fragments of one datagram (65535 bytes over an IPv4
// MTU of 576 is 120).
const maxFrags = 128

// pmtuEntry is a path MTU learned from the network, with its expiry.
type pmtuEntry struct {
	mtu     int
	expires int64
}

// maxPMTU bounds the path MTU cache; pmtuLifetime is how long an entry
// lives (RFC 1191 and RFC 8201 suggest 10 minutes).
const (
	maxPMTU      = 4096
	pmtuLifetime = int64(10 * time.Minute)
)

// Shard is one host stack shard driving one link.Link. It is owned by one
// goroutine: none of its methods are safe for concurrent use unless stated.
type Shard struct {
	st    *Stack
	id    int
	port  int // the port of the shard's link (Config.LinkPorts)
	l     link.Link
	mac   [6]byte
	mtu   int
	nb    *neighbor.Table[pipeline.Frame]
	rs    *reasm.Reassembler
	start time.Time

	rx    []pipeline.Frame // received batch
	tx    []pipeline.Frame // frames to transmit
	rel   []pipeline.Frame // frames to release
	one   []pipeline.Frame // Alloc scratch
	frags []pipeline.Frame // output fragments

	ipID     uint16
	fragID   uint32
	tokens   int64 // ICMP rate limit: tokens × 1e9
	tokensAt int64
	pmtu     map[[16]byte]pmtuEntry
	expired  func(reasm.Expired)

	// The shard's timers run from one wheel: the neighbor table's and the
	// reassembler's next deadlines are timers on it (TCP and QUIC timers
	// will join them).
	wheel   *timer.Wheel
	nbTimer timer.Timer
	rsTimer timer.Timer
	tickNow int64 // now of the running reassembly Tick
	now     int64 // now of the running Poll
	req     UDPRequest
	reqPkt  pkt

	dadStarted bool   // shard 0: DAD probes sent
	dadSeen    uint32 // Stack.dadGen at the last syncAddrs

	// Neighbor replies other shards received (ARP replies and neighbor
	// advertisements land on whatever queue the peer picked): they push
	// under nbMu, this shard pops without a lock. Control-plane rate only.
	nbMu sync.Mutex
	nbq  *dgramRing

	// The send queue: sockets (any goroutine) push under txMu; the shard
	// pops without a lock.
	txMu     sync.Mutex
	txq      *dgramRing
	txWait   atomic.Int32
	txSpace  chan struct{}
	sleeping atomic.Bool

	stats Stats
	pubMu sync.Mutex
	pub   Stats
}

// NewShard returns a standalone shard for l: a Stack of one link. The MAC
// is the link's. It allocates all the memory the shard uses.
func NewShard(l link.Link, cfg ShardConfig) (*Shard, error) {
	st, err := New([]link.Link{l}, cfg)
	if err != nil {
		return nil, err
	}
	return st.shards[0], nil
}

func newShard(st *Stack, id, port int, l link.Link) (*Shard, error) {
	cfg := st.cfg
	s := &Shard{
		st:      st,
		id:      id,
		port:    port,
		l:       l,
		mac:     l.HardwareAddr(),
		mtu:     l.MTU(),
		start:   time.Now(),
		rx:      make([]pipeline.Frame, cfg.Batch),
		tx:      make([]pipeline.Frame, 0, cfg.Batch),
		rel:     make([]pipeline.Frame, 0, cfg.Batch),
		one:     make([]pipeline.Frame, 1),
		frags:   make([]pipeline.Frame, maxFrags),
		ipID:    uint16(st.seed >> 16),
		fragID:  uint32(st.seed>>32) + uint32(id)<<24,
		tokens:  int64(cfg.ICMPBurst) * 1e9,
		pmtu:    make(map[[16]byte]pmtuEntry),
		txq:     newDgramRing(cfg.SendQueue),
		nbq:     newDgramRing(16 << 10),
		txSpace: make(chan struct{}, 1),
	}
	if s.mac == [6]byte{} || proto.IsMulticastMAC(s.mac) {
		return nil, fmt.Errorf("stack: link address %x is not a unicast MAC", s.mac)
	}
	if s.mtu < 576 {
		return nil, fmt.Errorf("stack: link MTU %d is below 576", s.mtu)
	}
	s.expired = s.reasmExpired
	s.wheel = timer.NewWheel(time.Millisecond, 0)
	s.nbTimer.Init(func(now int64) { s.nb.Tick(now) })
	s.rsTimer.Init(func(now int64) {
		s.tickNow = now
		s.rs.Tick(now, s.expired)
	})
	ncfg := cfg.Neighbor
	ncfg.MAC = s.mac
	ncfg.Seed ^= uint64(id)
	s.nb = neighbor.New[pipeline.Frame](ncfg, (*sink)(s))
	rcfg := cfg.Reasm
	if rcfg == (reasm.Config{}) {
		rcfg = reasm.DefaultConfig()
	}
	s.rs = reasm.New(rcfg)
	s.syncAddrs()
	return s, nil
}

// Stack returns the stack the shard belongs to.
func (s *Shard) Stack() *Stack { return s.st }

// Reassembly returns the shard's reassembler, for inspection from the
// owning goroutine.
func (s *Shard) Reassembly() *reasm.Reassembler { return s.rs }

// Addrs returns the shard's addresses.
func (s *Shard) Addrs() []netip.Prefix { return s.st.Addrs() }

// HardwareAddr returns the shard's MAC (the link's).
func (s *Shard) HardwareAddr() [6]byte { return s.mac }

// Neighbors returns the shard's neighbor table, for inspection from the
// owning goroutine.
func (s *Shard) Neighbors() *neighbor.Table[pipeline.Frame] { return s.nb }

// Stats returns the shard's counters. Call it on the owning goroutine.
func (s *Shard) Stats() Stats { return s.stats }

// PublishedStats returns the counters as of the end of the last Poll. Safe
// for concurrent use.
func (s *Shard) PublishedStats() Stats {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	return s.pub
}

// Now returns the shard's clock as Run uses it: nanoseconds since NewShard.
func (s *Shard) Now() int64 { return int64(time.Since(s.start)) }

// syncAddrs gives the neighbor table the addresses that are assigned:
// IPv4 ones at once, IPv6 ones once DAD (on shard 0) let them be.
func (s *Shard) syncAddrs() {
	s.dadSeen = s.st.dadGen.Load()
	for i, p := range s.st.addrs {
		a := p.Addr()
		if s.st.aport[i] != s.port {
			continue
		}
		if ours, tentative := s.nb.Addresses(a); ours && !tentative {
			continue
		}
		if a.Is4() || s.st.ours6(a.As16()) {
			s.nb.AddAddress(a)
		}
	}
}

// Announce sends a gratuitous ARP for every IPv4 address of the shard's
// port and an unsolicited neighbor advertisement for every assigned IPv6
// one, and flushes. On the first shard of a port, with Config.DAD, it also
// starts duplicate address detection for the port's tentative IPv6
// addresses (once).
func (s *Shard) Announce() {
	if s.st.cfg.DAD && !s.dadStarted && s.st.byPort[s.port][0] == s {
		// The port's first shard probes its port's tentative addresses.
		s.dadStarted = true
		now := s.Now()
		for i, p := range s.st.addrs {
			a := p.Addr()
			if s.st.aport[i] == s.port && !a.Is4() && !s.st.ours6(a.As16()) {
				s.nb.StartDAD(now, a)
			}
		}
	}
	s.nb.Announce()
	s.transmit()
	s.l.Flush()
}

// Next returns when the shard's next timer is due (math.MaxInt64: none).
func (s *Shard) Next() int64 {
	s.arm()
	return s.wheel.Next()
}

// arm keeps the wheel's timers at the deadlines the neighbor table and the
// reassembler ask for.
func (s *Shard) arm() {
	rearm := func(t *timer.Timer, next int64) {
		switch {
		case next == math.MaxInt64:
			s.wheel.Stop(t)
		case !t.Pending() || t.Deadline() != next:
			s.wheel.Schedule(t, next)
		}
	}
	rearm(&s.nbTimer, s.nb.Next())
	rearm(&s.rsTimer, s.rs.Next())
}

// Poll receives one batch from the link and handles it, sends a batch of
// the datagrams sockets queued, runs the timers due at now, transmits what
// that produced and flushes the link. It returns the number of frames
// received plus datagrams sent.
func (s *Shard) Poll(now int64) int {
	s.now = now
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
	n += s.drainTx(now)
	if s.st.dadGen.Load() != s.dadSeen {
		s.syncAddrs()
	}
	if !s.nbq.empty() {
		s.sharedNeighbors(now)
	}
	s.arm()
	s.wheel.Advance(now)
	s.transmit()
	s.l.Flush()
	if n > 0 {
		s.publish()
	}
	return n
}

func (s *Shard) publish() {
	s.pubMu.Lock()
	s.pub = s.stats
	s.pubMu.Unlock()
}

// Run runs the shard on the calling goroutine until ctx is done or the link
// fails: Announce, then Poll, and Wait on the link when there was nothing
// to do, until the next timer. It returns nil when ctx ended it.
func (s *Shard) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.l.Wake)
	defer stop()
	defer s.publish()
	s.Announce()
	for ctx.Err() == nil {
		now := s.Now()
		if s.Poll(now) > 0 {
			continue
		}
		timeout := time.Duration(-1)
		if next := s.Next(); next != math.MaxInt64 {
			timeout = time.Duration(max(0, next-s.Now()))
		}
		s.sleeping.Store(true)
		if !s.txq.empty() {
			s.sleeping.Store(false)
			continue
		}
		err := s.l.Wait(timeout)
		s.sleeping.Store(false)
		if err != nil {
			if errors.Is(err, link.ErrClosed) && ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// drop releases f (at the end of the batch) and counts it. f may be nil
// (a fragment already taken by reassembly): then it only counts.
func (s *Shard) drop(f *pipeline.Frame, r DropReason) {
	s.stats.Drops[r]++
	if f != nil {
		s.rel = append(s.rel, *f)
	}
}

// consume releases f (at the end of the batch) without counting a drop.
func (s *Shard) consume(f *pipeline.Frame) {
	if f != nil {
		s.rel = append(s.rel, *f)
	}
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
		r := s.nb.InputARP(now, eth, a)
		if a.Op() == proto.ARPReply {
			s.share(f.Data) // whatever this table made of it: another may wait for it
		}
		s.neighbor(f, r)
	case proto.EtherTypeIPv4:
		if !s.forUs(eth) {
			s.drop(f, DropNotOurs)
			return
		}
		s.inputIPv4(now, f, eth)
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

// share hands a neighbor reply to the other shards of the port: their
// tables may be waiting for it.
func (s *Shard) share(frame []byte) {
	peers := s.st.byPort[s.port] // neighbors are per link: share within the port
	if len(peers) == 1 || len(frame) > 256 {
		return
	}
	var h dgram
	for _, o := range peers {
		if o == s {
			continue
		}
		o.nbMu.Lock()
		o.nbq.push(&h, frame, nil)
		o.nbMu.Unlock()
	}
}

// sharedNeighbors feeds the neighbor replies other shards received to this
// shard's table.
func (s *Shard) sharedNeighbors(now int64) {
	var h dgram
	for {
		b, ok := s.nbq.peek(&h)
		if !ok {
			return
		}
		if eth, err := proto.ParseEthernet(b); err == nil {
			switch eth.EtherType() {
			case proto.EtherTypeARP:
				if a, err := proto.ParseARP(eth.Payload()); err == nil {
					s.nb.InputARP(now, eth, a)
				}
			case proto.EtherTypeIPv6:
				if ip, err := proto.ParseIPv6(eth.Payload()); err == nil {
					s.nb.InputNDP(now, eth.Src(), ip)
				}
			}
		}
		s.nbq.pop(&h)
	}
}

// forUs reports whether an IP frame is addressed to our MAC or a group
// (a promiscuous link may deliver frames for other hosts).
func (s *Shard) forUs(eth proto.Ethernet) bool {
	d := eth.Dst()
	return d == s.mac || proto.IsMulticastMAC(d)
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

// sink is the Shard as the neighbor table's neighbor.Sink. Its methods run
// inside Table calls and only queue frames.
type sink Shard

// Send builds the frame a describes in a buffer from the link.
func (k *sink) Send(a *neighbor.Action) {
	s := (*Shard)(k)
	switch a.Kind {
	case neighbor.DADSucceeded:
		s.st.setV6State(a.Target, addrAssigned)
		s.stats.DADSucceeded++
		return
	case neighbor.DADFailed:
		s.st.setV6State(a.Target, addrDuplicate)
		s.stats.DADFailed++
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
