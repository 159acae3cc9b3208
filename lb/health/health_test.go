package health

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/tygress/tygress/lb"
	"github.com/tygress/tygress/proto"
)

type recorder struct{ pkts [][]byte }

func (r *recorder) SendIP(p []byte) bool {
	r.pkts = append(r.pkts, append([]byte(nil), p...))
	return true
}

var (
	src  = netip.MustParseAddr("10.0.1.1")
	back = netip.MustParseAddr("10.0.1.11")
)

// answerTCP builds the backend's answer to a SYN probe.
func answerTCP(t *testing.T, syn []byte, flags proto.TCPFlags) []byte {
	t.Helper()
	ip, err := proto.ParseIPv4(syn)
	if err != nil {
		t.Fatal(err)
	}
	tcp := ip.Payload()
	b := proto.AppendIPv4(nil, &proto.IPv4Fields{TotalLength: 40, TTL: 64, Protocol: proto.IPProtoTCP, Src: ip.DstArray(), Dst: ip.SrcArray()})
	h := make([]byte, 20)
	copy(h[0:2], tcp[2:4])
	copy(h[2:4], tcp[0:2])
	binary.BigEndian.PutUint32(h[4:], 777)
	binary.BigEndian.PutUint32(h[8:], binary.BigEndian.Uint32(tcp[4:])+1)
	h[12] = 5 << 4
	h[13] = byte(flags)
	return append(b, h...)
}

func TestTCPCheck(t *testing.T) {
	rec := &recorder{}
	var changes []Change
	p := New(rec, func(c Change) { changes = append(changes, c) })
	chk := lb.HealthCheck{Kind: lb.HealthTCP, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}
	p.SetTargets(0, []Target{{Addr: back, Port: 80, Check: chk, Src: src}})
	now := int64(0)
	probe := func() []byte {
		t.Helper()
		p.Tick(now)
		if len(rec.pkts) == 0 {
			t.Fatal("no probe sent")
		}
		pk := rec.pkts[len(rec.pkts)-1]
		rec.pkts = nil
		ip, _ := proto.ParseIPv4(pk)
		if !ip.VerifyChecksum() || ip.Protocol() != proto.IPProtoTCP || proto.TCPFlags(ip.Payload()[13]) != proto.TCPFlagSYN {
			t.Fatalf("probe %x", pk)
		}
		tcp := ip.Payload()
		if proto.Checksum(tcp, proto.PseudoHeaderChecksumV4(proto.IPProtoTCP, src.As4(), back.As4(), uint16(len(tcp)))) != 0xffff {
			t.Fatal("bad TCP checksum")
		}
		return pk
	}
	// A SYN-ACK is a success, answered with a RST.
	syn := probe()
	if !p.Input(answerTCP(t, syn, proto.TCPFlagSYN|proto.TCPFlagACK)) {
		t.Fatal("answer not taken")
	}
	p.Tick(now)
	if len(rec.pkts) != 1 || proto.TCPFlags(rec.pkts[0][20+13])&proto.TCPFlagRST == 0 {
		t.Fatalf("no RST after the SYN-ACK: %x", rec.pkts)
	}
	rec.pkts = nil
	// Two RSTs in a row: down.
	for range 2 {
		now += int64(time.Second)
		syn = probe()
		p.Input(answerTCP(t, syn, proto.TCPFlagRST|proto.TCPFlagACK))
		p.Tick(now)
	}
	if len(changes) != 1 || changes[0].Up {
		t.Fatalf("changes %+v, want one down", changes)
	}
	// Silence counts as failure too; two successes bring it back.
	for range 2 {
		now += int64(time.Second)
		syn = probe()
		p.Input(answerTCP(t, syn, proto.TCPFlagSYN|proto.TCPFlagACK))
		p.Tick(now)
	}
	if len(changes) != 2 || !changes[1].Up {
		t.Fatalf("changes %+v, want up again", changes)
	}
	// A stale answer (old probe port) counts for nothing.
	now += int64(time.Second)
	probe()
	if p.Input(answerTCP(t, syn, proto.TCPFlagRST)) {
		p.Tick(now)
	}
	now += int64(600 * time.Millisecond) // timeout: failure 1 of 2
	p.Tick(now)
	if len(changes) != 2 {
		t.Fatalf("a stale answer or one timeout changed the state: %+v", changes)
	}
	// Answers from elsewhere are not probes.
	if p.Input(proto.AppendIPv4(nil, &proto.IPv4Fields{TotalLength: 20, Protocol: proto.IPProtoTCP, Src: back.As4(), Dst: src.As4()})) {
		t.Fatal("took a truncated packet")
	}
}

func TestUDPCheck(t *testing.T) {
	rec := &recorder{}
	var changes []Change
	p := New(rec, func(c Change) { changes = append(changes, c) })
	chk := lb.HealthCheck{Kind: lb.HealthUDP, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1}
	p.SetTargets(0, []Target{{Addr: back, Port: 53, Check: chk, Src: src}})
	p.Tick(0)
	if len(rec.pkts) != 1 {
		t.Fatal("no probe")
	}
	// Port unreachable quoting the probe: down.
	probe := rec.pkts[0]
	b := proto.AppendIPv4(nil, &proto.IPv4Fields{TotalLength: uint16(20 + 8 + len(probe)), TTL: 64, Protocol: proto.IPProtoICMP, Src: back.As4(), Dst: src.As4()})
	b = proto.AppendICMPv4Error(b, proto.ICMPv4DestUnreachable, proto.ICMPv4PortUnreachable, 0, probe)
	if !p.Input(b) {
		t.Fatal("unreachable not taken")
	}
	p.Tick(1)
	if len(changes) != 1 || changes[0].Up {
		t.Fatalf("changes %+v", changes)
	}
	// Silence for the timeout: up again.
	p.Tick(int64(time.Second))
	p.Tick(int64(time.Second + 600*time.Millisecond))
	if len(changes) != 2 || !changes[1].Up {
		t.Fatalf("changes %+v", changes)
	}
}
