package stack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/sched"
	"github.com/tygress/tygress/stack/neighbor"
	"github.com/tygress/tygress/stack/reasm"
	"github.com/tygress/tygress/stack/route"
)

// Config configures a Stack (and a standalone Shard).
type Config struct {
	// Addrs are our addresses on port 0, IPv4 and IPv6, with their
	// prefix lengths. Each adds an on-link route for its prefix.
	Addrs []netip.Prefix
	// LinkPorts gives the port of each link passed to New (the links of
	// one port are its queues); nil puts every link on port 0. A stack
	// spans a set of ports: a route's Port says which one sends.
	LinkPorts []int
	// PortAddrs[p] are the addresses of port p for p >= 1 (port 0's are
	// Addrs; PortAddrs[0] must be empty). A shard answers ARP and NDP for
	// its own port's addresses; packets to any of the stack's addresses
	// are accepted on any port (the weak host model, as Linux).
	PortAddrs [][]netip.Prefix
	// Routes are added to the routing table after the on-link routes.
	Routes []route.Route
	// Gateways are default gateways: each adds a default route
	// (0.0.0.0/0 or ::/0) through it.
	Gateways []netip.Addr
	// Neighbor configures the neighbor tables; the MAC is the link's.
	// MaxPending defaults to 64 here (an 8 KB datagram is 6 fragments).
	Neighbor neighbor.Config
	// Reasm bounds each shard's fragment reassembly (reasm.DefaultConfig
	// when zero).
	Reasm reasm.Config
	// Batch is the most frames one Poll receives (default 64).
	Batch int
	// ICMPRate and ICMPBurst bound the ICMP errors a shard sends: a token
	// bucket of ICMPBurst tokens refilled at ICMPRate per second (defaults
	// 1000 and 50, Linux's icmp_msgs_per_sec and icmp_msgs_burst).
	ICMPRate  int
	ICMPBurst int
	// UDPRecvBuffer is the receive buffer of a UDP socket, in bytes, per
	// shard (default 256 KiB). Datagrams that do not fit are dropped and
	// counted.
	UDPRecvBuffer int
	// SendQueue is the queue of datagrams sockets hand to a shard, in bytes
	// (default 1 MiB). Writers block while it is full.
	SendQueue int
	// CPUs pins shard i's goroutine to CPUs[i % len(CPUs)] in Run; empty:
	// no pinning.
	CPUs []int
	// DAD runs duplicate address detection (RFC 4862) for the IPv6
	// addresses when the stack starts: they are tentative (not answered
	// for, not used) until it succeeds, and unusable if it fails. Shard 0
	// probes; the others take the address when it is assigned.
	DAD bool
}

func (c *Config) fill() {
	if c.Batch <= 0 {
		c.Batch = 64
	}
	if c.Neighbor.MaxPending == 0 {
		c.Neighbor.MaxPending = 64
	}
	if c.ICMPRate <= 0 {
		c.ICMPRate = 1000
	}
	if c.ICMPBurst <= 0 {
		c.ICMPBurst = 50
	}
	if c.UDPRecvBuffer <= 0 {
		c.UDPRecvBuffer = 256 << 10
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 1 << 20
	}
}

// Stack is a host stack on a set of links, one Shard per link (one link per
// queue of a port). Shards share the addresses, the routing table (fixed at
// New) and the socket table; everything else belongs to one shard.
type Stack struct {
	cfg    Config
	shards []*Shard
	routes *route.Table // read-only after New: shared by shards and socket writers
	v4     [][4]byte
	v6     [][16]byte
	v6st   []atomic.Int32 // per v6 address: addrAssigned, addrTentative or addrDuplicate
	dadGen atomic.Uint32  // bumped when a v6 address changes state
	addrs  []netip.Prefix
	aport  []int      // port of addrs[i]
	byPort [][]*Shard // the shards of each port
	seed   uint64

	mu        sync.Mutex // socket table writers
	socks     atomic.Pointer[sockTable]
	ephemeral uint32 // next ephemeral port to try, under mu
}

// New returns a stack with one shard per link. Links are owned by their
// shard's goroutine from Run on; New may be called on any goroutine.
func New(links []link.Link, cfg Config) (*Stack, error) {
	if len(links) == 0 {
		return nil, errors.New("stack: no links")
	}
	st, err := newStack(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.LinkPorts != nil && len(cfg.LinkPorts) != len(links) {
		return nil, fmt.Errorf("stack: %d link ports for %d links", len(cfg.LinkPorts), len(links))
	}
	for i, l := range links {
		port := 0
		if cfg.LinkPorts != nil {
			port = cfg.LinkPorts[i]
		}
		if port < 0 || port > 255 {
			return nil, fmt.Errorf("stack: link %d: port %d out of range", i, port)
		}
		s, err := newShard(st, i, port, l)
		if err != nil {
			return nil, err
		}
		st.shards = append(st.shards, s)
		for len(st.byPort) <= port {
			st.byPort = append(st.byPort, nil)
		}
		st.byPort[port] = append(st.byPort[port], s)
	}
	for p := range st.aport {
		if port := st.aport[p]; port >= len(st.byPort) || len(st.byPort[port]) == 0 {
			return nil, fmt.Errorf("stack: address %v is on port %d, which has no link", st.addrs[p], port)
		}
	}
	return st, nil
}

// CheckConfig reports what New would reject in cfg's addresses, routes and
// gateways, without links.
func CheckConfig(cfg Config) error {
	_, err := newStack(cfg)
	return err
}

func newStack(cfg Config) (*Stack, error) {
	cfg.fill()
	st := &Stack{cfg: cfg, routes: route.New(), seed: uint64(time.Now().UnixNano()) | 1}
	st.ephemeral = ephemeralLow + uint32(st.seed%uint64(ephemeralHigh-ephemeralLow))
	st.socks.Store(&sockTable{})
	if len(cfg.PortAddrs) > 0 && len(cfg.PortAddrs[0]) > 0 {
		return nil, errors.New("stack: port 0's addresses go in Addrs, not PortAddrs[0]")
	}
	type portAddr struct {
		p    netip.Prefix
		port int
	}
	var all []portAddr
	for _, p := range cfg.Addrs {
		all = append(all, portAddr{p, 0})
	}
	for port, ps := range cfg.PortAddrs {
		for _, p := range ps {
			all = append(all, portAddr{p, port})
		}
	}
	for _, pa := range all {
		p := pa.p
		a := p.Addr()
		if !p.IsValid() || a.Zone() != "" || !a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() {
			return nil, fmt.Errorf("stack: address %v is not a unicast prefix", p)
		}
		switch {
		case a.Is4():
			st.v4 = append(st.v4, a.As4())
		case a.Is4In6():
			return nil, fmt.Errorf("stack: address %v: use the IPv4 form", p)
		default:
			st.v6 = append(st.v6, a.As16())
		}
		st.addrs = append(st.addrs, p)
		st.aport = append(st.aport, pa.port)
		if err := st.routes.Add(route.Route{Dst: p.Masked(), Src: a, Port: pa.port}); err != nil {
			return nil, fmt.Errorf("stack: on-link route for %v: %w", p, err)
		}
	}
	for _, r := range cfg.Routes {
		if err := st.routes.Add(r); err != nil {
			return nil, fmt.Errorf("stack: route %v: %w", r.Dst, err)
		}
	}
	st.v6st = make([]atomic.Int32, len(st.v6))
	if cfg.DAD {
		for i := range st.v6st {
			st.v6st[i].Store(addrTentative)
		}
	}
	for _, g := range cfg.Gateways {
		g = g.Unmap()
		dst := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if g.Is4() {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		port, ok := st.onLink(g)
		if !ok {
			return nil, fmt.Errorf("stack: gateway %v is not on the network of any address", g)
		}
		if err := st.routes.Add(route.Route{Dst: dst, Gateway: g, Port: port}); err != nil {
			return nil, fmt.Errorf("stack: gateway %v: %w", g, err)
		}
	}
	return st, nil
}

// onLink reports whether a is inside the prefix of one of our addresses,
// and on which port.
func (st *Stack) onLink(a netip.Addr) (int, bool) {
	for i, p := range st.addrs {
		if p.Contains(a) {
			return st.aport[i], true
		}
	}
	return 0, false
}

// Shards returns the stack's shards, in the order of the links.
func (st *Stack) Shards() []*Shard { return st.shards }

// Routes returns the routing table's routes.
func (st *Stack) Routes() []route.Route { return st.routes.Routes() }

// Addrs returns the stack's addresses.
func (st *Stack) Addrs() []netip.Prefix { return append([]netip.Prefix(nil), st.addrs...) }

// Stats returns the sum of the shards' published counters. Safe for
// concurrent use.
func (st *Stack) Stats() Stats {
	var t Stats
	for _, s := range st.shards {
		t.add(s.PublishedStats())
	}
	return t
}

// Run runs every shard on its own goroutine (locked to an OS thread, and
// pinned when Config.CPUs is set) until ctx is done or a shard fails; it
// returns the first error. Links stay open: the caller closes them after
// Run returns.
func (st *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(st.shards))
	for i, s := range st.shards {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if len(st.cfg.CPUs) > 0 {
				if err := sched.Pin(st.cfg.CPUs[i%len(st.cfg.CPUs)]); err != nil {
					errs <- fmt.Errorf("stack: shard %d: %w", i, err)
					cancel()
					return
				}
			}
			err := s.Run(ctx)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range st.shards {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ours4 and ours6 report whether a is one of our addresses. The address
// lists are fixed at New, so any goroutine may call them.
func (st *Stack) ours4(a [4]byte) bool {
	for _, o := range st.v4 {
		if o == a {
			return true
		}
	}
	return false
}

func (st *Stack) ours6(a [16]byte) bool {
	for i, o := range st.v6 {
		if o == a {
			return st.v6st[i].Load() == addrAssigned
		}
	}
	return false
}

// IPv6 address states (Config.DAD).
const (
	addrAssigned = iota
	addrTentative
	addrDuplicate
)

// setV6State records the result of DAD for a.
func (st *Stack) setV6State(a netip.Addr, state int32) {
	for i, o := range st.v6 {
		if o == a.As16() {
			st.v6st[i].Store(state)
			st.dadGen.Add(1)
		}
	}
}

// AddrState describes one of the stack's addresses.
type AddrState struct {
	Prefix    netip.Prefix
	Tentative bool // IPv6 duplicate address detection is running
	Duplicate bool // DAD found another node using it: not used
}

// AddrStates returns the state of every address. Safe for concurrent use.
func (st *Stack) AddrStates() []AddrState {
	var out []AddrState
	for _, p := range st.addrs {
		as := AddrState{Prefix: p}
		if !p.Addr().Is4() {
			for i, o := range st.v6 {
				if o == p.Addr().As16() {
					s := st.v6st[i].Load()
					as.Tentative, as.Duplicate = s == addrTentative, s == addrDuplicate
				}
			}
		}
		out = append(out, as)
	}
	return out
}

// source picks our address to send to dst through r: the route's preferred
// source, else an address whose prefix holds the next hop, else the first
// address of the family.
func (st *Stack) source(r *route.Route, dst netip.Addr) (netip.Addr, bool) {
	if r.Src.IsValid() {
		return r.Src, true
	}
	hop := route.NextHop(r, dst)
	var first netip.Addr
	for _, p := range st.addrs {
		if p.Addr().Is4() != dst.Is4() || !p.Addr().Is4() && !st.ours6(p.Addr().As16()) {
			continue
		}
		if p.Contains(hop) {
			return p.Addr(), true
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	return first, first.IsValid()
}

// shardFor returns the shard of port that sends a flow: the flow's
// symmetric hash, so that with one shard per queue a connected flow's
// sends and its receives (steered by the same hash in the NIC) tend to meet
// on one core. It returns nil when the port has no link.
func (st *Stack) shardFor(port int, laddr, raddr *[16]byte, lport, rport uint16) *Shard {
	if port < 0 || port >= len(st.byPort) || len(st.byPort[port]) == 0 {
		return nil
	}
	shards := st.byPort[port]
	if len(shards) == 1 {
		return shards[0]
	}
	var h uint64 = st.seed
	for i := 0; i < 16; i += 8 {
		a := uint64(laddr[i]) | uint64(laddr[i+1])<<8 | uint64(laddr[i+2])<<16 | uint64(laddr[i+3])<<24 |
			uint64(laddr[i+4])<<32 | uint64(laddr[i+5])<<40 | uint64(laddr[i+6])<<48 | uint64(laddr[i+7])<<56
		b := uint64(raddr[i]) | uint64(raddr[i+1])<<8 | uint64(raddr[i+2])<<16 | uint64(raddr[i+3])<<24 |
			uint64(raddr[i+4])<<32 | uint64(raddr[i+5])<<40 | uint64(raddr[i+6])<<48 | uint64(raddr[i+7])<<56
		h ^= (a ^ b) * 0x9e3779b97f4a7c15
	}
	h ^= uint64(lport^rport) * 0xff51afd7ed558ccd
	h ^= h >> 29
	return shards[h%uint64(len(shards))]
}
