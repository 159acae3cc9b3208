// Package health probes a load balancer's backends from the data path
// itself: TCP checks are half-open connects (a SYN; a SYN-ACK is a success
// and is answered with a RST, a RST or silence is a failure), UDP checks
// send an empty datagram (a reply, or silence for the timeout, is a
// success; ICMP port or host unreachable is a failure). A backend goes up
// after Rise successes in a row and down after Fall failures in a row;
// backends start up, as IPVS and Katran assume, so a balancer serves from
// its first packet and a dead backend is taken out after Fall intervals.
//
// The Prober is driven by one worker: Tick (from a pipeline Releaser)
// sends the probes that are due through a Sender (stack/hoststage's
// SendIP) and times out the missing answers. Answers may arrive on any
// worker: Input copies what it needs into a small locked inbox that Tick
// drains (control-plane rate; the data path never waits on it).
package health

import (
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/tygress/tygress/lb"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
)

// Sender sends a complete IP packet (stack/hoststage.Stage.SendIP).
type Sender interface {
	SendIP(pkt []byte) bool
}

// Target is one backend of one service to probe.
type Target struct {
	Service int // index in the configuration's services
	Addr    netip.Addr
	Port    uint16
	Check   lb.HealthCheck
	Src     netip.Addr // our address to probe from (on the backends' network)
}

// Change is a backend going up or down.
type Change struct {
	Target
	Up bool
}

type target struct {
	Target
	up        bool
	ok, fail  int
	next      int64 // next probe
	inflight  bool
	deadline  int64 // of the probe in flight
	sport     uint16
	seq       uint32
	result    int8 // answer for the probe in flight: 0 none, 1 success, -1 failure
	probes    uint64
	successes uint64
}

// answer is an Input result waiting for Tick.
type answer struct {
	src   netip.Addr
	sport uint16 // the backend's port
	dport uint16 // our probe port
	ok    bool
	rst   bool   // TCP: answer with RST (seq)
	seq   uint32 // for the RST
}

// Prober probes targets. Tick, SetTargets and States run on one goroutine;
// Input on any.
type Prober struct {
	send     Sender
	onChange func(Change)
	ts       []*target
	byPort   map[uint16]*target
	nextPort uint16
	pkt      []byte

	mu    sync.Mutex
	inbox []answer
}

// Probe ports: the source ports of our probes.
const (
	PortLow  = 61000
	PortHigh = 61999
)

// New returns a prober that sends through send and reports changes to
// onChange (called from Tick).
func New(send Sender, onChange func(Change)) *Prober {
	return &Prober{send: send, onChange: onChange, byPort: map[uint16]*target{}, nextPort: PortLow, pkt: make([]byte, 0, 128)}
}

// SetTargets replaces the targets. A target that was there before (same
// service, address and port) keeps its state; new ones start up.
func (p *Prober) SetTargets(now int64, ts []Target) {
	old := map[Target]*target{}
	for _, t := range p.ts {
		k := t.Target
		k.Check = lb.HealthCheck{}
		old[k] = t
	}
	p.ts = p.ts[:0]
	p.byPort = map[uint16]*target{}
	for i, nt := range ts {
		if nt.Check.Kind == lb.HealthNone {
			continue
		}
		k := nt
		k.Check = lb.HealthCheck{}
		t := old[k]
		if t == nil {
			// Spread the first probes over the interval.
			t = &target{up: true, next: now + int64(nt.Check.Interval)*int64(i%8)/8}
		}
		t.Target = nt
		t.inflight = false
		p.ts = append(p.ts, t)
	}
}

// States returns every target's state.
func (p *Prober) States() []Change {
	out := make([]Change, len(p.ts))
	for i, t := range p.ts {
		out[i] = Change{Target: t.Target, Up: t.up}
	}
	return out
}

// Next is when Tick must run next (0: no targets).
func (p *Prober) Next() int64 {
	next := int64(math.MaxInt64)
	for _, t := range p.ts {
		if t.inflight {
			next = min(next, t.deadline)
		} else {
			next = min(next, t.next)
		}
	}
	if next == math.MaxInt64 {
		return 0
	}
	p.mu.Lock()
	if len(p.inbox) > 0 {
		next = 0
	}
	p.mu.Unlock()
	return next
}

// Tick applies the answers that arrived, fails the probes that timed out,
// and sends the probes that are due.
func (p *Prober) Tick(now int64) {
	p.mu.Lock()
	in := p.inbox
	p.inbox = nil
	p.mu.Unlock()
	for _, a := range in {
		t := p.byPort[a.dport]
		if t == nil || !t.inflight || t.Addr != a.src || t.Port != a.sport {
			continue
		}
		if a.rst {
			p.sendTCP(t, proto.TCPFlagRST, a.seq, 0)
		}
		if a.ok {
			t.result = 1
		} else {
			t.result = -1
		}
	}
	for _, t := range p.ts {
		if t.inflight {
			switch {
			case t.result == 1 || t.result == 0 && now >= t.deadline && t.Check.Kind == lb.HealthUDP:
				p.done(t, true, now)
			case t.result == -1 || now >= t.deadline:
				p.done(t, false, now)
			}
		}
		if !t.inflight && now >= t.next {
			p.probe(t, now)
		}
	}
}

func (p *Prober) done(t *target, ok bool, now int64) {
	t.inflight = false
	delete(p.byPort, t.sport)
	if ok {
		t.successes++
		t.ok, t.fail = t.ok+1, 0
		if !t.up && t.ok >= t.Check.Rise {
			t.up = true
			p.onChange(Change{Target: t.Target, Up: true})
		}
	} else {
		t.ok, t.fail = 0, t.fail+1
		if t.up && t.fail >= t.Check.Fall {
			t.up = false
			p.onChange(Change{Target: t.Target, Up: false})
		}
	}
	_ = now
}

func (p *Prober) probe(t *target, now int64) {
	t.next = now + int64(t.Check.Interval)
	// A fresh source port per probe, so late answers to old probes do not
	// count.
	for range PortHigh - PortLow + 1 {
		port := p.nextPort
		p.nextPort++
		if p.nextPort > PortHigh {
			p.nextPort = PortLow
		}
		if p.byPort[port] == nil {
			t.sport = port
			break
		}
	}
	p.byPort[t.sport] = t
	t.inflight, t.result = true, 0
	t.deadline = now + int64(t.Check.Timeout)
	t.probes++
	t.seq = uint32(now) ^ uint32(t.sport)<<16
	if t.Check.Kind == lb.HealthTCP {
		p.sendTCP(t, proto.TCPFlagSYN, t.seq, 0)
	} else {
		p.sendUDP(t)
	}
}

// ipHeader appends an IPv4 or IPv6 header from t.Src to t.Addr.
func (p *Prober) ipHeader(t *target, protocol uint8, payload int) []byte {
	b := p.pkt[:0]
	if t.Addr.Is4() {
		return proto.AppendIPv4(b, &proto.IPv4Fields{TotalLength: uint16(20 + payload), TTL: 64, Protocol: protocol,
			Flags: proto.IPv4FlagDontFragment, Src: t.Src.As4(), Dst: t.Addr.As4()})
	}
	return proto.AppendIPv6(b, &proto.IPv6Fields{PayloadLength: uint16(payload), NextHeader: protocol, HopLimit: 64,
		Src: t.Src.As16(), Dst: t.Addr.As16()})
}

func (p *Prober) pseudo(t *target, protocol uint8, n int) uint32 {
	if t.Addr.Is4() {
		return proto.PseudoHeaderChecksumV4(protocol, t.Src.As4(), t.Addr.As4(), uint16(n))
	}
	return proto.PseudoHeaderChecksumV6(protocol, t.Src.As16(), t.Addr.As16(), uint32(n))
}

func (p *Prober) sendTCP(t *target, flags proto.TCPFlags, seq, ack uint32) {
	b := p.ipHeader(t, proto.IPProtoTCP, 20)
	h := len(b)
	b = append(b, make([]byte, 20)...)
	tcp := b[h:]
	binary.BigEndian.PutUint16(tcp[0:], t.sport)
	binary.BigEndian.PutUint16(tcp[2:], t.Port)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = byte(flags)
	binary.BigEndian.PutUint16(tcp[14:], 1024)
	binary.BigEndian.PutUint16(tcp[16:], ^proto.Checksum(tcp, p.pseudo(t, proto.IPProtoTCP, 20)))
	p.pkt = b
	p.send.SendIP(b)
}

func (p *Prober) sendUDP(t *target) {
	b := p.ipHeader(t, proto.IPProtoUDP, 8)
	h := len(b)
	b = append(b, make([]byte, 8)...)
	u := proto.UDP(b[h:])
	u.SetSrcPort(t.sport)
	u.SetDstPort(t.Port)
	u.SetLength(8)
	if t.Addr.Is4() {
		u.SetChecksum(u.ComputeChecksumV4(t.Src.As4(), t.Addr.As4()))
	} else {
		u.SetChecksum(u.ComputeChecksumV6(t.Src.As16(), t.Addr.As16()))
	}
	p.pkt = b
	p.send.SendIP(b)
}

// Input looks at an IP packet sent to one of our addresses (hoststage's
// Intercept) and reports whether it answers a probe. Safe for concurrent
// use.
func (p *Prober) Input(ip []byte) bool {
	var src netip.Addr
	var protocol uint8
	var l4 []byte
	switch {
	case len(ip) > 0 && ip[0]>>4 == 4:
		h, err := proto.ParseIPv4(ip)
		if err != nil || h.IsFragment() {
			return false
		}
		src, protocol, l4 = h.Src(), h.Protocol(), h.Payload()
	case len(ip) > 0 && ip[0]>>4 == 6:
		h, err := proto.ParseIPv6(ip)
		if err != nil {
			return false
		}
		src, protocol, l4 = h.Src(), h.NextHeader(), h.Payload()
	default:
		return false
	}
	var a answer
	switch protocol {
	case proto.IPProtoTCP:
		if len(l4) < 20 {
			return false
		}
		a = answer{src: src, sport: binary.BigEndian.Uint16(l4[0:]), dport: binary.BigEndian.Uint16(l4[2:])}
		flags := proto.TCPFlags(l4[13])
		switch {
		case flags&proto.TCPFlagRST != 0:
			a.ok = false
		case flags&(proto.TCPFlagSYN|proto.TCPFlagACK) == proto.TCPFlagSYN|proto.TCPFlagACK:
			a.ok, a.rst, a.seq = true, true, binary.BigEndian.Uint32(l4[8:])
		default:
			return false
		}
	case proto.IPProtoUDP:
		if len(l4) < 8 {
			return false
		}
		a = answer{src: src, sport: binary.BigEndian.Uint16(l4[0:]), dport: binary.BigEndian.Uint16(l4[2:]), ok: true}
	case proto.IPProtoICMP, proto.IPProtoICMPv6:
		// Unreachable quoting one of our UDP probes.
		if len(l4) < 8 || !(protocol == proto.IPProtoICMP && l4[0] == proto.ICMPv4DestUnreachable ||
			protocol == proto.IPProtoICMPv6 && l4[0] == proto.ICMPv6DestUnreachable) {
			return false
		}
		q := l4[8:]
		var qdst netip.Addr
		var qdata []byte
		if protocol == proto.IPProtoICMP {
			h, err := proto.ParseIPv4Quoted(q)
			if err != nil || h.Protocol() != proto.IPProtoUDP {
				return false
			}
			qdst, qdata = h.Dst(), h.Payload()
		} else {
			h, err := proto.ParseIPv6Quoted(q)
			if err != nil || h.NextHeader() != proto.IPProtoUDP {
				return false
			}
			qdst, qdata = h.Dst(), h.Payload()
		}
		if len(qdata) < 4 {
			return false
		}
		a = answer{src: qdst, sport: binary.BigEndian.Uint16(qdata[2:]), dport: binary.BigEndian.Uint16(qdata[0:]), ok: false}
	default:
		return false
	}
	if a.dport < PortLow || a.dport > PortHigh {
		return false
	}
	p.mu.Lock()
	if len(p.inbox) < 1024 {
		p.inbox = append(p.inbox, a)
	}
	p.mu.Unlock()
	return true
}

// Stage runs a Prober inside a pipeline: it decides no frame, and its
// Release hook (pipeline.Releaser) calls Tick, so put it first and on one
// worker only.
type Stage struct{ P *Prober }

// Name is the stage's name.
func (Stage) Name() string { return "health" }

// Process does nothing: probes go out through the Sender.
func (Stage) Process(*pipeline.Batch) {}

// Release ticks the prober; it never returns frames.
func (s Stage) Release(now int64, _ []pipeline.Frame) int {
	if n := s.P.Next(); n == 0 || now >= n {
		s.P.Tick(now)
	}
	return 0
}

// Next is the prober's next deadline.
func (s Stage) Next() int64 { return s.P.Next() }

// Interval is the shortest interval of the targets (for callers that poll).
func (p *Prober) Interval() time.Duration {
	var d time.Duration
	for _, t := range p.ts {
		if d == 0 || t.Check.Interval < d {
			d = t.Check.Interval
		}
	}
	return d
}
