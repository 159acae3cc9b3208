package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
)

// Drop reasons of the balancer, registered with the pipeline.
var (
	ReasonUnknownVIP = pipeline.NewReason("unknown-vip") // IP packet to no service and no tracked reply
	ReasonNoBackend  = pipeline.NewReason("no-backend")  // new flow, every backend drained
	ReasonTableFull  = pipeline.NewReason("table-full")  // new flow, table full (RejectNew)
	ReasonNoNeighbor = pipeline.NewReason("no-neighbor") // no MAC for the next hop
	ReasonFragment   = pipeline.NewReason("fragment")    // IP fragment to a VIP
)

// Resolver gives the MAC address of the next hop toward ip (the address
// itself when it is on the link). The data path backs it with the
// neighbor table; Lookup runs per packet and must not allocate or block.
type Resolver interface {
	Lookup(ip netip.Addr) (mac [6]byte, ok bool)
}

// Options configure a Balancer's wiring (what the configuration file does
// not know: ports, MACs, seeds).
type Options struct {
	// Resolver gives next hop MACs; required.
	Resolver Resolver
	// ClientPort is the port toward clients (NAT replies are redirected
	// there), BackendPort the port toward backends; the same port for a
	// one-arm balancer.
	ClientPort, BackendPort uint16
	// ClientMAC and BackendMAC are this host's MACs on those ports.
	ClientMAC, BackendMAC [6]byte
	// HashSeed seeds the flow hash that picks backends. Balancers behind
	// one ECMP group must share it (and the configuration) to pick the
	// same backend for a flow.
	HashSeed uint64
	// ExpireBudget bounds the expired connections removed per batch
	// (default 64).
	ExpireBudget int
	// PassUnmatched leaves IP packets that are for no service and no
	// tracked connection undecided (for a later stage, such as the host
	// stack) instead of dropping them with ReasonUnknownVIP. Non-IP
	// frames (ARP) are always left undecided.
	PassUnmatched bool
}

// Stats are a balancer's counters, readable from any goroutine.
type Stats struct {
	Table    TableStats
	Inbound  uint64 // frames forwarded to a backend
	Outbound uint64 // NAT replies forwarded to a client
}

// svcKey finds a service: VIP address (IPv4-mapped), port and protocol.
type svcKey struct {
	addr  [16]byte
	port  uint16
	proto uint8
}

type backendState struct {
	addr [16]byte
	port uint16
	slot uint32
}

// MaxCounterSlots bounds the (service, backend) pairs a balancer counts
// separately over its life; later ones share slot 0 ("other").
const MaxCounterSlots = 4096

// slotKey names a (service, backend) pair for the per-backend counters.
type slotKey struct {
	vip     netip.AddrPort
	proto   Proto
	backend netip.AddrPort
}

// slotCount is a pair's traffic (owning worker).
type slotCount struct{ inPkts, inBytes, outPkts, outBytes uint64 }

// BackendStat is the traffic of one backend of one service through a
// balancer.
type BackendStat struct {
	VIP        netip.AddrPort
	Proto      Proto
	Backend    netip.AddrPort // zero for slot 0 (pairs beyond MaxCounterSlots)
	InPackets  uint64         // client to backend
	InBytes    uint64
	OutPackets uint64 // NAT replies, backend to client
	OutBytes   uint64
	Flows      int64 // connections in the table now
}

type service struct {
	mode     Mode
	quic     bool
	cidLen   int
	vip      [16]byte
	vipPort  uint16
	backends []backendState
	maglev   *Maglev
}

// svcTable finds services: open addressing with linear probing, at most
// half full, built once per configuration. A Go map would do, but hashing a
// 20-byte struct key through it costs more than this multiply.
type svcTable struct {
	slots []svcSlot
	mask  uint32
}

type svcSlot struct {
	key svcKey
	svc *service // nil: empty
}

func newSvcTable(n int) svcTable {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return svcTable{slots: make([]svcSlot, size), mask: uint32(size - 1)}
}

func (k *svcKey) hash() uint32 {
	x := binary.LittleEndian.Uint64(k.addr[0:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(k.addr[8:16])
	x = (x ^ uint64(k.port)<<40 ^ uint64(k.proto)<<32) * 0xff51afd7ed558ccd
	return uint32(x >> 32)
}

func (t *svcTable) put(k svcKey, s *service) {
	for h := k.hash() & t.mask; ; h = (h + 1) & t.mask {
		if sl := &t.slots[h]; sl.svc == nil || sl.key == k {
			sl.key, sl.svc = k, s
			return
		}
	}
}

// get returns the service of k or nil. The table always has empty slots,
// so the probe ends.
func (t *svcTable) get(k *svcKey) *service {
	for h := k.hash() & t.mask; ; h = (h + 1) & t.mask {
		sl := &t.slots[h]
		if sl.svc == nil || sl.key == *k {
			return sl.svc
		}
	}
}

// state is everything Update replaces at once.
type state struct {
	services svcTable
	vipAddrs map[[16]byte]struct{}
	timeouts [numClasses]time.Duration
}

// Balancer is a pipeline.Stage that load-balances TCP and UDP services at
// L4 (see the package documentation). Process runs on one worker
// goroutine; Update and Stats may be called from any goroutine.
type Balancer struct {
	st      atomic.Pointer[state]
	ct      *ConnTable
	opts    Options
	applied [numClasses]time.Duration
	scr     [64]scratch
	warm    int32
	hops    hopCache

	inbound, outbound uint64
	pub               struct {
		table             [7]atomic.Uint64
		inbound, outbound atomic.Uint64
	}

	// Per-backend counters: slots are assigned by Update (under smu) and
	// never reused, so established connections keep counting to their
	// pair after a reload; the worker counts in cnt and publishes the
	// slots a batch touched.
	smu      sync.Mutex
	slots    map[slotKey]uint32
	slotKeys []slotKey
	cnt      []slotCount
	dirty    []uint32
	isDirty  []bool
	pubCnt   [][4]atomic.Uint64
}

// NewBalancer builds a balancer for cfg (validated here).
func NewBalancer(cfg *Config, o Options) (*Balancer, error) {
	if o.Resolver == nil {
		return nil, errors.New("lb: Options.Resolver is required")
	}
	if o.ExpireBudget <= 0 {
		o.ExpireBudget = 64
	}
	topts := cfg.Conntrack
	if topts.Capacity == 0 {
		topts = DefaultTableOptions()
	}
	if topts.Seed == 0 {
		topts.Seed = rand.Uint64() // against crafted hash collisions
	}
	ct, err := NewConnTable(topts)
	if err != nil {
		return nil, err
	}
	ct.CountSlots(MaxCounterSlots)
	b := &Balancer{ct: ct, opts: o, slots: map[slotKey]uint32{}, slotKeys: make([]slotKey, 1, 16),
		cnt: make([]slotCount, MaxCounterSlots), isDirty: make([]bool, MaxCounterSlots),
		dirty: make([]uint32, 0, MaxCounterSlots), pubCnt: make([][4]atomic.Uint64, MaxCounterSlots)}
	if err := b.Update(cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// slotFor returns the counter slot of a pair, assigning one if needed.
func (b *Balancer) slotFor(k slotKey) uint32 {
	b.smu.Lock()
	defer b.smu.Unlock()
	if i, ok := b.slots[k]; ok {
		return i
	}
	if len(b.slotKeys) >= MaxCounterSlots {
		return 0
	}
	i := uint32(len(b.slotKeys))
	b.slots[k] = i
	b.slotKeys = append(b.slotKeys, k)
	return i
}

// BackendStats returns every (service, backend) pair's traffic as of the
// last batch. Safe for concurrent use.
func (b *Balancer) BackendStats() []BackendStat {
	b.smu.Lock()
	keys := append([]slotKey(nil), b.slotKeys...)
	b.smu.Unlock()
	out := make([]BackendStat, 0, len(keys))
	for i, k := range keys {
		c := &b.pubCnt[i]
		st := BackendStat{VIP: k.vip, Proto: k.proto, Backend: k.backend,
			InPackets: c[0].Load(), InBytes: c[1].Load(), OutPackets: c[2].Load(), OutBytes: c[3].Load(),
			Flows: b.ct.SlotFlows(uint32(i))}
		if i == 0 && st.InPackets == 0 && st.OutPackets == 0 && st.Flows == 0 {
			continue
		}
		out = append(out, st)
	}
	return out
}

func (b *Balancer) count(slot uint32, in bool, n int) {
	if slot >= MaxCounterSlots {
		slot = 0
	}
	c := &b.cnt[slot]
	if in {
		c.inPkts++
		c.inBytes += uint64(n)
	} else {
		c.outPkts++
		c.outBytes += uint64(n)
	}
	if !b.isDirty[slot] {
		b.isDirty[slot] = true
		b.dirty = append(b.dirty, slot)
	}
}

// Name names the stage in counters.
func (b *Balancer) Name() string { return "lb" }

// Update validates cfg, builds its services and Maglev tables, and swaps
// them in: the next batch uses them. Established connections keep their
// backend (the connection table holds it), also when the backend or the
// service is gone from cfg, until they end or idle out. The connection
// table's capacity cannot change; its timeouts can.
func (b *Balancer) Update(cfg *Config) error {
	c := *cfg
	if c.Conntrack.Capacity == 0 {
		c.Conntrack = DefaultTableOptions()
		c.Conntrack.Capacity = b.ct.Cap()
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Conntrack.Capacity != b.ct.Cap() {
		return fmt.Errorf("conntrack capacity %d differs from %d: it is fixed when the balancer is made",
			c.Conntrack.Capacity, b.ct.Cap())
	}
	st := &state{
		services: newSvcTable(len(c.Services)),
		vipAddrs: make(map[[16]byte]struct{}, len(c.Services)),
		timeouts: [numClasses]time.Duration{c.Conntrack.TCPTimeout, c.Conntrack.TCPClosingTimeout, c.Conntrack.UDPTimeout},
	}
	for i := range c.Services {
		s := &c.Services[i]
		svc := &service{
			mode:    s.Mode,
			quic:    s.QUIC,
			cidLen:  s.QUICShortCIDLen,
			vip:     s.VIP.Addr().As16(),
			vipPort: s.VIP.Port(),
		}
		if svc.cidLen == 0 {
			svc.cidLen = 8
		}
		mb := make([]MaglevBackend, len(s.Backends))
		for j := range s.Backends {
			be := backendState{addr: s.Backends[j].Addr.As16(), port: s.BackendPort(&s.Backends[j]),
				slot: b.slotFor(slotKey{s.VIP, s.Proto, netip.AddrPortFrom(s.Backends[j].Addr, s.BackendPort(&s.Backends[j]))})}
			svc.backends = append(svc.backends, be)
			mb[j] = MaglevBackend{Key: backendKey(be.addr, be.port), Weight: s.Backends[j].Weight}
		}
		size := s.TableSize
		if size == 0 {
			size = DefaultTableSize
		}
		m, err := NewMaglev(mb, size)
		if err != nil {
			return fmt.Errorf("service %s: %w", s, err)
		}
		svc.maglev = m
		st.services.put(svcKey{svc.vip, svc.vipPort, uint8(s.Proto)}, svc)
		st.vipAddrs[svc.vip] = struct{}{}
	}
	b.st.Store(st)
	return nil
}

// Stats returns the counters as of the last batch.
func (b *Balancer) Stats() Stats {
	var s Stats
	t := &b.pub.table
	s.Table = TableStats{Len: int(t[0].Load()), Hits: t[1].Load(), Misses: t[2].Load(), Inserts: t[3].Load(),
		Evictions: t[4].Load(), Expirations: t[5].Load(), Full: t[6].Load()}
	s.Inbound, s.Outbound = b.pub.inbound.Load(), b.pub.outbound.Load()
	return s
}

func (b *Balancer) publish() {
	s := b.ct.Stats()
	t := &b.pub.table
	t[0].Store(uint64(s.Len))
	t[1].Store(s.Hits)
	t[2].Store(s.Misses)
	t[3].Store(s.Inserts)
	t[4].Store(s.Evictions)
	t[5].Store(s.Expirations)
	t[6].Store(s.Full)
	b.pub.inbound.Store(b.inbound)
	b.pub.outbound.Store(b.outbound)
	for _, i := range b.dirty {
		c, p := &b.cnt[i], &b.pubCnt[i]
		p[0].Store(c.inPkts)
		p[1].Store(c.inBytes)
		p[2].Store(c.outPkts)
		p[3].Store(c.outBytes)
		b.isDirty[i] = false
	}
	b.dirty = b.dirty[:0]
}

// Process balances every frame of the batch: forwarded frames get
// Redirect (to BackendPort or, for NAT replies, to ClientPort), bad ones
// Drop with a reason, non-IP frames (and unmatched ones with
// PassUnmatched) stay undecided.
func (b *Balancer) Process(batch *pipeline.Batch) {
	st := b.st.Load()
	now := batch.Now
	b.hops.inserted = 0
	if st.timeouts != b.applied {
		b.ct.SetTimeouts(st.timeouts[ClassTCP], st.timeouts[ClassTCPClosing], st.timeouts[ClassUDP])
		b.applied = st.timeouts
	}
	// Passes over chunks of up to 64 frames, so that the cache misses of
	// different frames overlap instead of queueing: read each frame's
	// headers (written by another core's copy); decode them and hash the
	// flow; read each flow's bucket; read the lines of each bucket's first
	// entry; then the real work, on warm lines.
	for start := 0; start < len(batch.Frames); start += len(b.scr) {
		fr := batch.Frames[start:min(start+len(b.scr), len(batch.Frames))]
		var warm int32
		for i := range fr {
			if d := fr[i].Data; len(d) > 64 {
				warm += int32(d[0]) + int32(d[64])
			} else if len(d) > 0 {
				warm += int32(d[0])
			}
		}
		for i := range fr {
			s := &b.scr[i]
			s.live = fr[i].Verdict == pipeline.Pass && b.prepare(st, &fr[i], s)
		}
		for i := range fr {
			if s := &b.scr[i]; s.live {
				s.head = b.ct.buckets[s.h&b.ct.mask]
				warm += s.head
			}
		}
		for i := range fr {
			if s := &b.scr[i]; s.live && s.head >= 0 {
				warm += b.ct.warm(s.head)
			}
		}
		b.warm = warm // keeps the warming loads
		for i := range fr {
			if s := &b.scr[i]; s.live {
				b.finish(&fr[i], s, now)
			}
		}
	}
	b.ct.Expire(now, b.opts.ExpireBudget)
	b.publish()
}

func (b *Balancer) unmatched(f *pipeline.Frame, r pipeline.Reason) {
	if !b.opts.PassUnmatched {
		f.SetDrop(r)
	}
}

// TCP flag bits (RFC 9293 section 3.1), at byte 13 of the header.
const (
	tcpFIN      = 0x01
	tcpSYN      = 0x02
	tcpRST      = 0x04
	tcpACK      = 0x10
	offTCPFlags = 13
)

// nextClass returns the class after a packet with TCP flags fl (UDP: 0)
// on a connection of class c.
func nextClass(c Class, l4proto uint8, fl byte) Class {
	switch {
	case l4proto != proto.IPProtoTCP:
		return ClassUDP
	case fl&(tcpFIN|tcpRST) != 0:
		return ClassTCPClosing
	case fl&(tcpSYN|tcpACK) == tcpSYN:
		return ClassTCP // a new SYN reopens a closing connection
	case c == ClassUDP:
		return ClassTCP
	}
	return c
}

// scratch is what the first pass learns about a frame.
type scratch struct {
	d        proto.Decoded
	k        Key
	svc      *service
	h        uint32 // k's hash in the connection table
	head     int32  // first ref of k's bucket, read to warm it
	fl       byte   // TCP flags
	cidKeyed bool
	live     bool // prepared: finish it
}

// prepare decodes f and finds its service and connection key. It returns
// false when it decided the frame (or left it to a later stage).
func (b *Balancer) prepare(st *state, f *pipeline.Frame, s *scratch) bool {
	d := &s.d
	err := proto.Decode(f.Data, d, nil)
	if d.L3Proto != proto.EtherTypeIPv4 && d.L3Proto != proto.EtherTypeIPv6 {
		if err != nil && d.L3Off == 0 {
			f.SetDrop(pipeline.ReasonMalformed) // not even an Ethernet header
		}
		return false // ARP and other non-IP frames are not ours
	}
	if err != nil {
		f.SetDrop(pipeline.ReasonMalformed)
		return false
	}
	if d.Frag {
		if _, ok := st.vipAddrs[d.Flow.Dst]; ok {
			f.SetDrop(ReasonFragment)
			return false
		}
		b.unmatched(f, ReasonUnknownVIP)
		return false
	}
	if d.L4Proto != proto.IPProtoTCP && d.L4Proto != proto.IPProtoUDP {
		b.unmatched(f, pipeline.ReasonUnknownProto)
		return false
	}
	var fl byte
	if d.L4Proto == proto.IPProtoTCP {
		if d.L4Off+offTCPFlags >= len(f.Data) {
			f.SetDrop(pipeline.ReasonMalformed)
			return false
		}
		fl = f.Data[d.L4Off+offTCPFlags]
	}
	sk := svcKey{d.Flow.Dst, d.Flow.DstPort, d.L4Proto}
	svc := st.services.get(&sk)

	k := &s.k
	*k = Key{Flow: d.Flow}
	s.cidKeyed = false
	if svc != nil && svc.quic && d.L4Off < d.PayloadOff && d.PayloadOff <= d.L3End && d.L3End <= len(f.Data) {
		if cid, ok := quicDCID(f.Data[d.PayloadOff:d.L3End], svc.cidLen); ok {
			k.Flow.Src, k.Flow.SrcPort = [16]byte{}, 0
			k.CID = cid
			s.cidKeyed = true
		}
	}
	s.svc, s.fl = svc, fl
	s.h = k.hash(b.ct.seed)
	return true
}

// finish looks the connection up (or makes it), rewrites and decides f.
func (b *Balancer) finish(f *pipeline.Frame, s *scratch, now int64) {
	d, k, svc, fl := &s.d, &s.k, s.svc, s.fl
	ref, ok := b.ct.lookupHash(k, s.h, now)
	var v Value
	switch {
	case ok && ref.Dir() == 1:
		b.reply(f, d, ref, fl, now)
		return
	case ok:
		v = b.ct.Value(ref)
		b.ct.Touch(ref, now, nextClass(b.ct.Class(ref), d.L4Proto, fl))
		if s.cidKeyed && v.Mode == NAT {
			// The client may have moved (NAT rebinding): the replies
			// go to where its packets come from now.
			rk := replyKey(d, &v)
			if cur, has := b.ct.Key(ref, 1); !has || cur != rk {
				b.ct.SetReply(ref, &rk)
			}
		}
	case svc == nil:
		b.unmatched(f, ReasonUnknownVIP)
		return
	default:
		bi := svc.maglev.Lookup(d.Flow.Hash(b.opts.HashSeed))
		if bi < 0 {
			f.SetDrop(ReasonNoBackend)
			return
		}
		be := &svc.backends[bi]
		v = Value{Addr: be.addr, Port: be.port, VIP: svc.vip, VIPPort: svc.vipPort, Backend: uint16(bi), Mode: svc.mode, Slot: be.slot}
		c := nextClass(ClassUDP, d.L4Proto, fl)
		if v.Mode == NAT {
			rk := replyKey(d, &v)
			_, ok = b.ct.Insert(k, &rk, v, c, now)
		} else {
			_, ok = b.ct.Insert(k, nil, v, c, now)
		}
		if !ok {
			f.SetDrop(ReasonTableFull)
			return
		}
	}
	mac, ok := b.resolve(netip.AddrFrom16(v.Addr).Unmap())
	if !ok {
		f.SetDrop(ReasonNoNeighbor)
		return
	}
	if v.Mode == NAT {
		if err := RewriteDst(f.Data, d, v.Addr, v.Port); err != nil {
			f.SetDrop(pipeline.ReasonMalformed)
			return
		}
	}
	_ = SetMACs(f.Data, b.opts.BackendMAC, mac) // the frame has an Ethernet header: Decode checked it
	f.SetRedirect(b.opts.BackendPort)
	b.inbound++
	b.count(v.Slot, true, len(f.Data))
}

// reply forwards a NAT reply (backend to client) of connection ref: the
// source becomes the VIP again.
func (b *Balancer) reply(f *pipeline.Frame, d *proto.Decoded, ref Ref, fl byte, now int64) {
	v := b.ct.Value(ref)
	b.ct.Touch(ref, now, nextClass(b.ct.Class(ref), d.L4Proto, fl))
	mac, ok := b.resolve(d.Flow.DstAddr())
	if !ok {
		f.SetDrop(ReasonNoNeighbor)
		return
	}
	if err := RewriteSrc(f.Data, d, v.VIP, v.VIPPort); err != nil {
		f.SetDrop(pipeline.ReasonMalformed)
		return
	}
	_ = SetMACs(f.Data, b.opts.ClientMAC, mac)
	f.SetRedirect(b.opts.ClientPort)
	b.outbound++
	b.count(v.Slot, false, len(f.Data))
}

// hopCache holds the next hop MACs a batch has asked for: a batch goes to
// a few backends again and again, and each Resolver lookup is an interface
// call and a hash lookup. It is emptied at every batch, so a neighbor
// change shows from the next batch on, as the resolver would show it.
type hopCache struct {
	addr     [4]netip.Addr
	mac      [4][6]byte
	inserted int // this batch; entries [0, min(inserted, 4)) are valid
}

// resolve returns the next hop MAC toward ip.
func (b *Balancer) resolve(ip netip.Addr) ([6]byte, bool) {
	c := &b.hops
	for i := range min(c.inserted, len(c.addr)) {
		if c.addr[i] == ip {
			return c.mac[i], true
		}
	}
	mac, ok := b.opts.Resolver.Lookup(ip)
	if ok {
		i := c.inserted % len(c.addr)
		c.addr[i], c.mac[i] = ip, mac
		c.inserted++
	}
	return mac, ok
}

// replyKey is the 5-tuple of the backend's replies to the packet d
// describes once it is rewritten to v's backend.
func replyKey(d *proto.Decoded, v *Value) Key {
	var k Key
	k.Flow = proto.FlowKey{Src: v.Addr, Dst: d.Flow.Src, SrcPort: v.Port, DstPort: d.Flow.SrcPort,
		Proto: d.Flow.Proto, Family: d.Flow.Family}
	return k
}

// quicDCID reads the destination connection ID of the QUIC packet at the
// start of a UDP payload: from a long header, or a short header with
// cidLen-byte IDs. Packets without the fixed bit are not QUIC (RFC 9000
// section 17.2); an empty ID is no key.
func quicDCID(p []byte, cidLen int) (proto.ConnID, bool) {
	if len(p) == 0 || p[0]&0x40 == 0 {
		return proto.ConnID{}, false
	}
	var dcid []byte
	if proto.IsQUICLongHeader(p) {
		h, _, err := proto.ParseQUICLongHeader(p)
		if err != nil {
			return proto.ConnID{}, false
		}
		dcid = h.DCID
	} else {
		h, _, err := proto.ParseQUICShortHeader(p, cidLen)
		if err != nil {
			return proto.ConnID{}, false
		}
		dcid = h.DCID
	}
	if len(dcid) == 0 {
		return proto.ConnID{}, false
	}
	cid, err := proto.ConnIDFromBytes(dcid)
	return cid, err == nil
}

// Table returns the connection table, for the worker goroutine only
// (tests, a control loop running between batches).
func (b *Balancer) Table() *ConnTable { return b.ct }

// ClientHash returns a seeded hash of the client endpoint of a packet
// that d describes: its source if toVIP (a request), its destination
// otherwise (a NAT reply from a backend). Steering on it sends both
// directions of a NAT connection to one shard. For QUIC services keyed by
// connection ID it keeps a rebound client on one shard only if the
// steering also uses the ID.
func ClientHash(d *proto.Decoded, toVIP bool, seed uint64) uint32 {
	return ClientHashKey(&d.Flow, toVIP, seed)
}

// ClientHashKey is ClientHash from a flow key (proto.ParseFlow's, for
// steering without a full Decode).
func ClientHashKey(f *proto.FlowKey, toVIP bool, seed uint64) uint32 {
	var k proto.FlowKey
	k.Family, k.Proto = f.Family, f.Proto
	if toVIP {
		k.Src, k.SrcPort = f.Src, f.SrcPort
	} else {
		k.Src, k.SrcPort = f.Dst, f.DstPort
	}
	return k.Hash(seed)
}
