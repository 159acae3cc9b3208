package dataplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/xsk"
)

// FlowSpec describes the UDP traffic a Generator sends.
type FlowSpec struct {
	SrcMAC, DstMAC [6]byte
	Src, Dst       netip.Addr // both IPv4 or both IPv6
	SrcPort        uint16     // first source port; flow i uses SrcPort+i
	DstPort        uint16
	// Size is the Ethernet frame length without FCS (64-byte frames on the
	// wire are Size 60; 1500-byte packets are Size 1514).
	Size  int
	Flows int
}

// BuildUDP writes the frame of flow 0 into b and returns its length.
// Checksums are complete, so receivers need no offload.
func BuildUDP(b []byte, f FlowSpec) (int, error) {
	v6 := f.Src.Is6() && !f.Src.Is4In6()
	if f.Src.Is4() != f.Dst.Is4() || !f.Src.IsValid() || !f.Dst.IsValid() {
		return 0, errors.New("generator: source and destination must both be IPv4 or both IPv6")
	}
	l3 := 20
	if v6 {
		l3 = 40
	}
	min := 14 + l3 + 8
	if f.Size < min || f.Size > len(b) {
		return 0, fmt.Errorf("generator: frame size %d outside %d..%d", f.Size, min, len(b))
	}
	clear(b[:f.Size])
	b = b[:f.Size]
	copy(b[0:6], f.DstMAC[:])
	copy(b[6:12], f.SrcMAC[:])
	ulen := f.Size - 14 - l3
	u := b[14+l3:]
	binary.BigEndian.PutUint16(u[0:], f.SrcPort)
	binary.BigEndian.PutUint16(u[2:], f.DstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	for i := 8; i < ulen; i++ {
		u[i] = byte(i)
	}
	var pseudo uint32
	if v6 {
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		ip := b[14:54]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(ulen))
		ip[6], ip[7] = 17, 64
		s, d := f.Src.As16(), f.Dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		pseudo = proto.PseudoHeaderChecksumV6(17, s, d, uint32(ulen))
	} else {
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		ip := b[14:34]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+ulen))
		ip[6] = 0x40 // DF
		ip[8], ip[9] = 64, 17
		s, d := f.Src.As4(), f.Dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^proto.Checksum(ip, 0))
		pseudo = proto.PseudoHeaderChecksumV4(17, s, d, uint16(ulen))
	}
	c := ^proto.Checksum(u, pseudo)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return f.Size, nil
}

// GenStats are a generator's counters.
type GenStats struct {
	Sent      uint64
	Completed uint64
	RingFull  uint64 // times the tx ring had no room (backpressure)
	Kicks     uint64
}

// Generator sends UDP flows out of one AF_XDP socket as fast as allowed.
type Generator struct {
	sock     *xsk.Socket
	spec     FlowSpec
	template []byte
	udpOff   int
	rate     float64
	count    uint64
	batch    int
	cpu      int
	pin      func(int) error

	sent, completed, ringFull atomic.Uint64
}

// NewGenerator prepares a generator on a tx socket. rate is in packets
// per second (0: as fast as possible); count stops it after that many
// packets (0: never).
func NewGenerator(sock *xsk.Socket, spec FlowSpec, rate float64, count uint64, batch, cpu int, pin func(int) error) (*Generator, error) {
	if spec.Flows <= 0 {
		spec.Flows = 1
	}
	if spec.Flows > 65536-int(spec.SrcPort) {
		return nil, fmt.Errorf("generator: %d flows from source port %d overflow the port range", spec.Flows, spec.SrcPort)
	}
	if batch <= 0 {
		batch = 64
	}
	t := make([]byte, sock.UMEM().FrameSize())
	n, err := BuildUDP(t, spec)
	if err != nil {
		return nil, err
	}
	off := 14 + 20
	if spec.Src.Is6() && !spec.Src.Is4In6() {
		off = 14 + 40
	}
	return &Generator{sock: sock, spec: spec, template: t[:n], udpOff: off, rate: rate, count: count, batch: batch, cpu: cpu, pin: pin}, nil
}

// Run sends until ctx is done or count packets were sent, then waits
// briefly for completions.
func (g *Generator) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if g.cpu >= 0 && g.pin != nil {
		if err := g.pin(g.cpu); err != nil {
			return err
		}
	}
	s := g.sock
	pool := s.Pool()
	descs := make([]xsk.Desc, 0, g.batch)
	var flow int
	start := time.Now()
	var sent uint64
	baseSum := binary.BigEndian.Uint16(g.template[g.udpOff+6:])
	done := ctx.Done()
	for {
		select {
		case <-done:
			return g.drain()
		default:
		}
		if g.count > 0 && sent >= g.count {
			return g.drain()
		}
		g.completed.Add(uint64(s.Complete(4 * g.batch)))
		want := g.batch
		if g.count > 0 {
			want = int(min(uint64(want), g.count-sent))
		}
		if g.rate > 0 {
			allowed := uint64(g.rate*time.Since(start).Seconds()) + 1
			if allowed <= sent {
				// Sleep until the next batch is due instead of spinning:
				// the generator shares cores with what it measures.
				due := start.Add(time.Duration(float64(sent+uint64(want)) / g.rate * float64(time.Second)))
				time.Sleep(time.Until(due))
				continue
			}
			want = int(min(uint64(want), allowed-sent))
		}
		descs = descs[:0]
		for len(descs) < want {
			a, ok := pool.Get()
			if !ok {
				break
			}
			f := s.UMEM().Frame(a)
			copy(f, g.template)
			if g.spec.Flows > 1 {
				u := f[g.udpOff:]
				port := g.spec.SrcPort + uint16(flow)
				binary.BigEndian.PutUint16(u[0:], port)
				c := proto.ChecksumUpdate16(baseSum, g.spec.SrcPort, port)
				if c == 0 {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(u[6:], c)
				if flow++; flow == g.spec.Flows {
					flow = 0
				}
			}
			descs = append(descs, xsk.Desc{Addr: a, Len: uint32(len(g.template))})
		}
		if len(descs) == 0 {
			// Every frame is in flight: wait for completions.
			g.ringFull.Add(1)
			s.Kick()
			continue
		}
		k := s.Transmit(descs)
		for _, d := range descs[k:] {
			pool.Put(d.Addr)
		}
		if k < len(descs) {
			g.ringFull.Add(1)
		}
		sent += uint64(k)
		g.sent.Add(uint64(k))
	}
}

func (g *Generator) drain() error {
	deadline := time.Now().Add(500 * time.Millisecond)
	for g.sock.InKernel() > 0 && time.Now().Before(deadline) {
		g.completed.Add(uint64(g.sock.Complete(1 << 16)))
		g.sock.Kick()
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Stats returns the generator's counters; safe from any goroutine.
func (g *Generator) Stats() GenStats {
	return GenStats{Sent: g.sent.Load(), Completed: g.completed.Load(), RingFull: g.ringFull.Load(), Kicks: g.sock.Stats().TxKicks}
}
