package neighbor

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tygress/tygress/proto"
)

// State is the state of a cache entry (RFC 4861 section 7.3.2).
type State uint8

// Entry states. NoState is what State reports for an address without an
// entry.
const (
	NoState State = iota
	Incomplete
	Reachable
	Stale
	Delay
	Probe
	numStates
)

var stateNames = [numStates]string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "State(?)"
}

// Config configures a Table. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	MAC [6]byte // our Ethernet address

	ReachableTime   time.Duration // RFC 4861 REACHABLE_TIME, 30s
	RetransTimer    time.Duration // RFC 4861 RETRANS_TIMER, 1s
	DelayFirstProbe time.Duration // RFC 4861 DELAY_FIRST_PROBE_TIME, 5s

	MaxMulticastSolicit int // RFC 4861 MAX_MULTICAST_SOLICIT, 3 (at most 255)
	MaxUnicastSolicit   int // RFC 4861 MAX_UNICAST_SOLICIT, 3 (at most 255)
	DADTransmits        int // RFC 4862 DupAddrDetectTransmits, 1 (at most 255)

	MaxEntries int // cache size bound, 1024
	MaxPending int // packets queued per INCOMPLETE entry, 8 (at most 4096)

	// Seed seeds the PRNG that draws the random factor of ReachableTime,
	// so that a run can be replayed.
	Seed uint64
}

// DefaultConfig returns the RFC 4861 defaults with room for 1024 entries
// of 8 queued packets each.
func DefaultConfig() Config {
	return Config{
		ReachableTime:       30 * time.Second,
		RetransTimer:        time.Second,
		DelayFirstProbe:     5 * time.Second,
		MaxMulticastSolicit: 3,
		MaxUnicastSolicit:   3,
		DADTransmits:        1,
		MaxEntries:          1024,
		MaxPending:          8,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.ReachableTime <= 0 {
		c.ReachableTime = d.ReachableTime
	}
	if c.RetransTimer <= 0 {
		c.RetransTimer = d.RetransTimer
	}
	if c.DelayFirstProbe <= 0 {
		c.DelayFirstProbe = d.DelayFirstProbe
	}
	if c.MaxMulticastSolicit <= 0 {
		c.MaxMulticastSolicit = d.MaxMulticastSolicit
	}
	if c.MaxUnicastSolicit <= 0 {
		c.MaxUnicastSolicit = d.MaxUnicastSolicit
	}
	if c.DADTransmits <= 0 {
		c.DADTransmits = d.DADTransmits
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = d.MaxEntries
	}
	if c.MaxPending <= 0 {
		c.MaxPending = d.MaxPending
	}
	c.MaxPending = min(c.MaxPending, maxPending)
	c.MaxMulticastSolicit = min(c.MaxMulticastSolicit, math.MaxUint8)
	c.MaxUnicastSolicit = min(c.MaxUnicastSolicit, math.MaxUint8)
	c.DADTransmits = min(c.DADTransmits, math.MaxUint8)
}

// maxPending bounds Config.MaxPending so that queue indices fit in uint16.
const maxPending = 1 << 12

// Sink receives what the table wants done. Its methods are called
// synchronously from the Table's methods, on the owning goroutine, and must
// not call back into the Table (queue the work instead). The *Action passed
// to Send is valid only during the call.
type Sink[P any] interface {
	// Send asks for the frame a describes to be sent (build it with
	// a.AppendFrame), or reports a DAD result.
	Send(a *Action)
	// Release hands back a queued packet that can now be sent to mac.
	Release(p P, mac [6]byte)
	// Drop hands back a queued packet the table dropped, for freeing.
	Drop(p P, why Reason)
}

const (
	none        = -1
	noDeadline  = math.MaxInt64
	addrAssign  = 1
	addrTentatv = 2
)

type entry struct {
	addr     netip.Addr
	mac      [6]byte
	state    State
	router   bool
	probes   uint8 // solicitations sent in this state
	qhead    uint16
	qlen     uint16
	deadline int64 // noDeadline when the state has no timer
	prev     int32 // per-state LRU list; head is most recently used
	next     int32
}

type list struct{ head, tail int32 }

type ownAddr struct {
	addr     netip.Addr
	state    uint8 // addrAssign or addrTentatv
	probes   uint8 // DAD solicitations sent
	deadline int64
}

// Table is a neighbor cache with its timers, queues and our addresses. Make
// one with New. It is owned by one goroutine.
type Table[P any] struct {
	cfg     Config
	sink    Sink[P]
	index   map[netip.Addr]int32
	ents    []entry
	pend    []P
	lists   [numStates]list // lists[NoState] chains free entries
	n       int             // entries in use
	next    int64           // no deadline is earlier than this
	rng     rand.PCG
	own     []ownAddr
	stats   Stats
	scratch Action
	gen     uint64 // bumped whenever an entry's address changes or goes
}

// New returns an empty table. It allocates all the memory the table will
// use: MaxEntries entries and MaxEntries × MaxPending values of P.
func New[P any](cfg Config, sink Sink[P]) *Table[P] {
	cfg.fill()
	t := &Table[P]{
		cfg:   cfg,
		sink:  sink,
		index: make(map[netip.Addr]int32, cfg.MaxEntries),
		ents:  make([]entry, cfg.MaxEntries),
		pend:  make([]P, cfg.MaxEntries*cfg.MaxPending),
		next:  noDeadline,
	}
	t.rng.Seed(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)
	for i := range t.lists {
		t.lists[i] = list{none, none}
	}
	for i := len(t.ents) - 1; i >= 0; i-- {
		t.pushFront(int32(i), NoState)
	}
	return t
}

// Stats returns the counters.
func (t *Table[P]) Stats() Stats { return t.stats }

// Gen changes whenever a link-layer address the table gave out may no
// longer hold (an entry learned a different one, or was removed). Callers
// that cache Lookup's answers compare it to drop them.
func (t *Table[P]) Gen() uint64 { return t.gen }

// Len returns the number of entries.
func (t *Table[P]) Len() int { return t.n }

// State returns the state of the entry for addr and its link-layer address.
func (t *Table[P]) State(addr netip.Addr) (State, [6]byte) {
	i, ok := t.index[key(addr)]
	if !ok {
		return NoState, [6]byte{}
	}
	return t.ents[i].state, t.ents[i].mac
}

// Pending returns the number of packets queued for addr.
func (t *Table[P]) Pending(addr netip.Addr) int {
	i, ok := t.index[key(addr)]
	if !ok {
		return 0
	}
	return int(t.ents[i].qlen)
}

func key(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// ---- per-state LRU lists ----

func (t *Table[P]) pushFront(i int32, s State) {
	l := &t.lists[s]
	e := &t.ents[i]
	e.state, e.prev, e.next = s, none, l.head
	if l.head != none {
		t.ents[l.head].prev = i
	} else {
		l.tail = i
	}
	l.head = i
}

func (t *Table[P]) unlink(i int32) {
	e := &t.ents[i]
	l := &t.lists[e.state]
	if e.prev != none {
		t.ents[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != none {
		t.ents[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
}

// setState moves entry i to state s (front of its list) with a deadline.
func (t *Table[P]) setState(i int32, s State, deadline int64) {
	t.unlink(i)
	t.pushFront(i, s)
	e := &t.ents[i]
	e.probes = 0
	e.deadline = deadline
	t.lower(deadline)
}

func (t *Table[P]) lower(d int64) {
	if d < t.next {
		t.next = d
	}
}

// touch marks entry i most recently used within its state.
func (t *Table[P]) touch(i int32) {
	if t.lists[t.ents[i].state].head != i {
		s := t.ents[i].state
		t.unlink(i)
		t.pushFront(i, s)
	}
}

func (t *Table[P]) reachableDeadline(now int64) int64 {
	base := int64(t.cfg.ReachableTime)
	return now + base/2 + int64(t.rng.Uint64()%uint64(base))
}

// alloc returns a free entry for addr in state s, evicting one if the table
// is full. With hard false only a STALE entry may be evicted.
func (t *Table[P]) alloc(now int64, addr netip.Addr, s State, hard bool) (int32, bool) {
	i := t.lists[NoState].head
	if i == none {
		i = t.lists[Stale].tail
		if i == none && hard {
			var best int32 = none
			for _, st := range [...]State{Reachable, Delay, Probe} {
				// The oldest tail among the live states: compare
				// by deadline as a proxy for age.
				if c := t.lists[st].tail; c != none && (best == none || t.ents[c].deadline < t.ents[best].deadline) {
					best = c
				}
			}
			if best == none {
				best = t.lists[Incomplete].tail
			}
			i = best
		}
		if i == none {
			t.stats.Drops[TableFull]++
			return none, false
		}
		t.stats.Evictions++
		t.remove(i, Evicted)
	}
	t.unlink(i)
	t.pushFront(i, s)
	e := &t.ents[i]
	*e = entry{addr: addr, state: s, deadline: noDeadline, prev: e.prev, next: e.next}
	t.index[addr] = i
	t.n++
	return i, true
}

// remove deletes entry i, dropping its queued packets with why.
func (t *Table[P]) remove(i int32, why Reason) {
	t.gen++
	t.flush(i, why)
	e := &t.ents[i]
	delete(t.index, e.addr)
	t.unlink(i)
	t.pushFront(i, NoState)
	e.addr = netip.Addr{}
	e.deadline = noDeadline
	t.n--
}

func (t *Table[P]) queue(i int32) []P {
	m := t.cfg.MaxPending
	return t.pend[int(i)*m : int(i)*m+m]
}

func (t *Table[P]) enqueue(i int32, p P) {
	e := &t.ents[i]
	q := t.queue(i)
	m := uint16(len(q))
	if e.qlen == m {
		old := q[e.qhead]
		var zero P
		q[e.qhead] = zero
		e.qhead = (e.qhead + 1) % m
		e.qlen--
		t.stats.Queued--
		t.stats.Drops[QueueFull]++
		t.sink.Drop(old, QueueFull)
	}
	q[(e.qhead+e.qlen)%m] = p
	e.qlen++
	t.stats.Queued++
}

// flush drops entry i's queue with why.
func (t *Table[P]) flush(i int32, why Reason) {
	e := &t.ents[i]
	q := t.queue(i)
	var zero P
	for e.qlen > 0 {
		p := q[e.qhead]
		q[e.qhead] = zero
		e.qhead = (e.qhead + 1) % uint16(len(q))
		e.qlen--
		t.stats.Queued--
		t.stats.Drops[why]++
		t.sink.Drop(p, why)
	}
}

// release hands entry i's queue to the sink, to be sent to its MAC.
func (t *Table[P]) release(i int32) {
	e := &t.ents[i]
	q := t.queue(i)
	var zero P
	for e.qlen > 0 {
		p := q[e.qhead]
		q[e.qhead] = zero
		e.qhead = (e.qhead + 1) % uint16(len(q))
		e.qlen--
		t.stats.Queued--
		t.stats.Released++
		t.sink.Release(p, e.mac)
	}
}

// ---- output path ----

// Lookup returns the link-layer address of addr if the cache holds one
// (REACHABLE, STALE, DELAY or PROBE). Using a STALE entry moves it to DELAY
// (RFC 4861 section 7.3.3). It never creates an entry and never allocates.
func (t *Table[P]) Lookup(now int64, addr netip.Addr) (mac [6]byte, ok bool) {
	i, found := t.index[key(addr)]
	if !found {
		return mac, false
	}
	return t.use(now, i)
}

func (t *Table[P]) use(now int64, i int32) ([6]byte, bool) {
	e := &t.ents[i]
	switch e.state {
	case Incomplete:
		return [6]byte{}, false
	case Reachable:
		if now >= e.deadline { // Tick has not run yet
			t.setState(i, Stale, noDeadline)
		}
	}
	if e.state == Stale {
		t.setState(i, Delay, now+int64(t.cfg.DelayFirstProbe))
	} else {
		t.touch(i)
	}
	return e.mac, true
}

// Resolve is Lookup for the output path: on a miss it queues p on an
// INCOMPLETE entry, created if needed (which sends the first
// solicitation), and returns false; the table later hands p to
// Sink.Release or Sink.Drop. Multicast and broadcast addresses resolve
// directly (MulticastMAC). An address that cannot be resolved (unspecified,
// or of no family) drops p with BadAddress.
func (t *Table[P]) Resolve(now int64, addr netip.Addr, p P) (mac [6]byte, ok bool) {
	addr = key(addr)
	if i, found := t.index[addr]; found {
		if mac, ok := t.use(now, i); ok {
			return mac, true
		}
		t.enqueue(i, p)
		return mac, false
	}
	if m, ok := MulticastMAC(addr); ok {
		return m, true
	}
	if !addr.IsValid() || addr.IsUnspecified() {
		t.stats.Drops[BadAddress]++
		t.sink.Drop(p, BadAddress)
		return mac, false
	}
	i, ok := t.alloc(now, addr, Incomplete, true)
	if !ok {
		t.sink.Drop(p, TableFull)
		return mac, false
	}
	t.enqueue(i, p)
	t.solicit(now, i)
	return mac, false
}

// Confirm records upper-layer proof that addr is reachable (RFC 4861
// section 7.3.1, e.g. TCP acknowledging new data): an entry with a
// link-layer address becomes REACHABLE.
func (t *Table[P]) Confirm(now int64, addr netip.Addr) {
	if i, ok := t.index[key(addr)]; ok && t.ents[i].state != Incomplete {
		t.setState(i, Reachable, t.reachableDeadline(now))
	}
}

// Remove deletes the entry for addr, dropping its queued packets with
// GaveUp.
func (t *Table[P]) Remove(addr netip.Addr) {
	if i, ok := t.index[key(addr)]; ok {
		t.remove(i, GaveUp)
	}
}

// solicit sends a solicitation for entry i (multicast/broadcast in
// INCOMPLETE, unicast in PROBE), counts it and arms the retransmit timer.
func (t *Table[P]) solicit(now int64, i int32) {
	e := &t.ents[i]
	e.probes++
	e.deadline = now + int64(t.cfg.RetransTimer)
	t.lower(e.deadline)
	a := &t.scratch
	*a = Action{Target: e.addr, SrcMAC: t.cfg.MAC}
	unicast := e.state == Probe
	src, ok := t.source(e.addr)
	if !ok {
		t.stats.Drops[NoSource]++
		return
	}
	a.Src = src
	if e.addr.Is4() {
		a.Kind = SendARPRequest
		a.DstMAC = proto.BroadcastMAC
		if unicast {
			a.DstMAC = e.mac
		}
		t.stats.ARPRequests++
	} else {
		a.Kind = SendNS
		a.Dst = SolicitedNode(e.addr)
		a.DstMAC, _ = MulticastMAC(a.Dst)
		if unicast {
			a.Dst, a.DstMAC = e.addr, e.mac
		}
		t.stats.NSs++
	}
	t.sink.Send(a)
}

// source picks our address to solicit target from: an assigned address of
// the same family, link-local for a link-local target if we have one.
func (t *Table[P]) source(target netip.Addr) (netip.Addr, bool) {
	var best netip.Addr
	for k := range t.own {
		o := &t.own[k]
		if o.state != addrAssign || o.addr.Is4() != target.Is4() {
			continue
		}
		if !best.IsValid() || o.addr.IsLinkLocalUnicast() == target.IsLinkLocalUnicast() && best.IsLinkLocalUnicast() != target.IsLinkLocalUnicast() {
			best = o.addr
		}
	}
	return best, best.IsValid()
}

// ---- timers ----

// Next returns the earliest time at which Tick has work, or math.MaxInt64.
// It may be earlier than needed (a deadline that was pushed back), never
// later.
func (t *Table[P]) Next() int64 { return t.next }

// Tick runs every timer due at now: retransmissions, give-ups, REACHABLE
// to STALE, DELAY to PROBE, and DAD.
func (t *Table[P]) Tick(now int64) {
	if now < t.next {
		return
	}
	next := int64(noDeadline)
	for i := range t.ents {
		e := &t.ents[i]
		if e.state == NoState || e.deadline == noDeadline {
			continue
		}
		if now >= e.deadline {
			t.expire(now, int32(i))
		}
		if e.state != NoState && e.deadline < next {
			next = e.deadline
		}
	}
	for k := 0; k < len(t.own); k++ {
		o := &t.own[k]
		if o.state != addrTentatv {
			continue
		}
		if now >= o.deadline {
			if int(o.probes) < t.cfg.DADTransmits {
				t.dadProbe(now, o)
			} else {
				o.state = addrAssign
				o.deadline = noDeadline
				t.stats.DADSucceeded++
				t.scratch = Action{Kind: DADSucceeded, Target: o.addr, SrcMAC: t.cfg.MAC}
				t.sink.Send(&t.scratch)
				continue
			}
		}
		next = min(next, o.deadline)
	}
	t.next = next
}

func (t *Table[P]) expire(now int64, i int32) {
	e := &t.ents[i]
	switch e.state {
	case Incomplete:
		if int(e.probes) >= t.cfg.MaxMulticastSolicit {
			t.stats.Expired++
			t.remove(i, GaveUp)
			return
		}
		t.solicit(now, i)
	case Reachable:
		t.setState(i, Stale, noDeadline)
	case Delay:
		t.setState(i, Probe, noDeadline)
		t.solicit(now, i)
	case Probe:
		if int(e.probes) >= t.cfg.MaxUnicastSolicit {
			t.stats.Expired++
			t.remove(i, GaveUp)
			return
		}
		t.solicit(now, i)
	default:
		e.deadline = noDeadline
	}
}

// ---- our addresses ----

func (t *Table[P]) ownIndex(a netip.Addr) int {
	for k := range t.own {
		if t.own[k].addr == a {
			return k
		}
	}
	return -1
}

// AddAddress adds addr as an assigned address of ours: the table answers
// ARP requests or NSs for it and uses it as a source.
func (t *Table[P]) AddAddress(addr netip.Addr) {
	addr = key(addr)
	if k := t.ownIndex(addr); k >= 0 {
		t.own[k] = ownAddr{addr: addr, state: addrAssign, deadline: noDeadline}
		return
	}
	t.own = append(t.own, ownAddr{addr: addr, state: addrAssign, deadline: noDeadline})
}

// RemoveAddress removes addr from our addresses (a tentative address
// included, which ends its DAD without a result).
func (t *Table[P]) RemoveAddress(addr netip.Addr) {
	if k := t.ownIndex(key(addr)); k >= 0 {
		t.own = append(t.own[:k], t.own[k+1:]...)
	}
}

// Addresses reports whether addr is ours and whether it is still tentative.
func (t *Table[P]) Addresses(addr netip.Addr) (ours, tentative bool) {
	k := t.ownIndex(key(addr))
	if k < 0 {
		return false, false
	}
	return true, t.own[k].state == addrTentatv
}

// StartDAD adds IPv6 address addr as tentative and starts duplicate address
// detection (RFC 4862 section 5.4): the first NS from :: to addr's
// solicited-node group is sent now, DADTransmits in all RetransTimer apart.
// RetransTimer after the last, Tick sends DADSucceeded; an NA for addr, or
// an NS for it from ::, makes Input send DADFailed. A tentative address is
// not used as a source nor answered for.
func (t *Table[P]) StartDAD(now int64, addr netip.Addr) {
	addr = key(addr)
	if !addr.Is6() {
		return
	}
	o := ownAddr{addr: addr, state: addrTentatv}
	k := t.ownIndex(addr)
	if k >= 0 {
		t.own[k] = o
	} else {
		k = len(t.own)
		t.own = append(t.own, o)
	}
	t.dadProbe(now, &t.own[k])
}

func (t *Table[P]) dadProbe(now int64, o *ownAddr) {
	o.probes++
	o.deadline = now + int64(t.cfg.RetransTimer)
	t.lower(o.deadline)
	dst := SolicitedNode(o.addr)
	mac, _ := MulticastMAC(dst)
	t.scratch = Action{Kind: SendNS, Src: netip.IPv6Unspecified(), Dst: dst, Target: o.addr, SrcMAC: t.cfg.MAC, DstMAC: mac}
	t.stats.NSs++
	t.sink.Send(&t.scratch)
}

// Announce sends a gratuitous ARP (an ARP announcement, RFC 5227 section
// 3) for every assigned IPv4 address and an unsolicited NA with the
// override flag to all-nodes (RFC 4861 section 7.2.6) for every assigned
// IPv6 address.
func (t *Table[P]) Announce() {
	for k := range t.own {
		o := t.own[k]
		if o.state != addrAssign {
			continue
		}
		a := &t.scratch
		if o.addr.Is4() {
			*a = Action{Kind: SendARPRequest, Src: o.addr, Target: o.addr, SrcMAC: t.cfg.MAC, DstMAC: proto.BroadcastMAC}
			t.stats.ARPRequests++
		} else {
			mac, _ := MulticastMAC(allNodes)
			*a = Action{Kind: SendNA, Src: o.addr, Dst: allNodes, Target: o.addr, SrcMAC: t.cfg.MAC, DstMAC: mac, Flags: proto.NDPFlagOverride}
			t.stats.NAs++
		}
		t.sink.Send(a)
	}
}
