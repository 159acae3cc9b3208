package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/link/fault"
	"github.com/tygress/tygress/stack/route"
)

// pair is two stacks joined by a memory link, each running on its own
// goroutine: A has 10.91.0.1 and fd00:91::1, B .2 and ::2.
type pair struct {
	a, b *Stack
	la   *link.Mem
	lb   *link.Mem
}

var (
	addrA4 = netip.MustParseAddr("10.91.0.1")
	addrB4 = netip.MustParseAddr("10.91.0.2")
	addrA6 = netip.MustParseAddr("fd00:91::1")
	addrB6 = netip.MustParseAddr("fd00:91::2")
)

func newPair(t *testing.T, opts link.MemOptions, cfgA, cfgB Config) *pair {
	t.Helper()
	la, lb, err := link.NewMemPair(opts)
	if err != nil {
		t.Fatal(err)
	}
	cfgA.Addrs = append(cfgA.Addrs, netip.PrefixFrom(addrA4, 24), netip.PrefixFrom(addrA6, 64))
	cfgB.Addrs = append(cfgB.Addrs, netip.PrefixFrom(addrB4, 24), netip.PrefixFrom(addrB6, 64))
	a, err := New([]link.Link{la}, cfgA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New([]link.Link{lb}, cfgB)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, st := range []*Stack{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		la.Close()
		lb.Close()
	})
	return &pair{a: a, b: b, la: la, lb: lb}
}

func listen(t testing.TB, st *Stack, network, addr string) *UDPConn {
	t.Helper()
	c, err := st.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestUDPExchange: datagrams of many sizes, up to ones that need many
// fragments, go both ways over IPv4 and IPv6 and arrive intact, with the
// right source address.
func TestUDPExchange(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{})
	for _, fam := range []struct {
		net  string
		a, b netip.Addr
	}{{"udp4", addrA4, addrB4}, {"udp6", addrA6, addrB6}} {
		srv := listen(t, p.b, fam.net, net.JoinHostPort(fam.b.String(), "7000"))
		cli, err := p.a.DialUDP(fam.net, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(fam.b, 7000)))
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 70000)
		for _, size := range []int{0, 1, 64, 1472, 1473, 1500, 3000, 8192, 20000, 65000} {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			if _, err := cli.Write(msg); err != nil {
				t.Fatalf("%s write %d: %v", fam.net, size, err)
			}
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%s read %d: %v", fam.net, size, err)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("%s: datagram of %d bytes arrived as %d bytes, different", fam.net, size, n)
			}
			if from.Addr() != fam.a || from != cli.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("%s: from %v, client is %v", fam.net, from, cli.LocalAddr())
			}
			// And back, to the connected socket.
			if _, err := srv.WriteTo(msg, net.UDPAddrFromAddrPort(from)); err != nil {
				t.Fatal(err)
			}
			cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err = cli.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("%s echo of %d bytes: %d, %v", fam.net, size, n, err)
			}
		}
	}
	waitStats(t, p.a, func(s Stats) bool { return s.FragsOut > 0 && s.Dropped() == s.Drops[DropNeighbor] })
	waitStats(t, p.b, func(s Stats) bool { return s.Reassembled > 0 && s.Dropped() == s.Drops[DropNeighbor] })
}

// TestUDPPortUnreachable: a datagram to a closed port makes the peer send
// port unreachable, which a connected socket reports as ECONNREFUSED, both
// families; an unconnected socket sees nothing.
func TestUDPPortUnreachable(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{})
	for _, dst := range []netip.Addr{addrB4, addrB6} {
		c, err := p.a.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9999)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 10))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v: read error %v, want ECONNREFUSED", dst, err)
		}
		c.Close()
	}
	// Shards publish their counters at the end of a poll, after the
	// socket saw the error: wait for them.
	waitStats(t, p.b, func(st Stats) bool { return st.ICMPOut == 2 && st.Drops[DropNoSocket] == 2 })
	waitStats(t, p.a, func(st Stats) bool { return st.ICMPIn == 2 })
}

// waitStats waits (up to 5 s) until st's published counters satisfy ok.
func waitStats(t *testing.T, st *Stack, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(st.Stats()) {
		if time.Now().After(deadline) {
			t.Errorf("stats %+v", st.Stats())
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUDPDeadlineClose: read deadlines expire, moving a deadline wakes a
// blocked reader, and Close unblocks readers with net.ErrClosed.
func TestUDPDeadlineClose(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{})
	c := listen(t, p.a, "udp", ":5000")
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, _, err := c.ReadFrom(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("deadline: %v after %v", err, time.Since(start))
	}
	// A deadline set while a reader waits applies to it.
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, _, err := c.ReadFrom(make([]byte, 10)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("moved deadline: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("moved deadline did not wake the reader")
	}
	c.SetReadDeadline(time.Time{})
	go func() { _, _, err := c.ReadFrom(make([]byte, 10)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the reader")
	}
	if _, err := c.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB4, 1))); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	// The port is free again.
	listen(t, p.a, "udp", ":5000")
}

// TestUDPBind: port conflicts, ephemeral ports, addresses that are not
// ours, families.
func TestUDPBind(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{})
	listen(t, p.a, "udp", ":6000")
	for _, c := range []struct {
		net, addr string
		want      error
	}{
		{"udp", ":6000", syscall.EADDRINUSE},
		{"udp4", "10.91.0.1:6000", syscall.EADDRINUSE},
		{"udp6", "[fd00:91::1]:6000", syscall.EADDRINUSE},
		{"udp4", "10.91.0.9:6001", syscall.EADDRNOTAVAIL},
		{"udp6", "10.91.0.1:6001", syscall.EAFNOSUPPORT},
		{"udp4", "[fd00:91::1]:6001", syscall.EAFNOSUPPORT},
	} {
		if _, err := p.a.ListenPacket(c.net, c.addr); !errors.Is(err, c.want) {
			t.Errorf("%s %s: %v, want %v", c.net, c.addr, err, c.want)
		}
	}
	if _, err := p.a.ListenPacket("tcp", ":1"); err == nil {
		t.Error("tcp: no error")
	}
	s4 := listen(t, p.a, "udp4", "10.91.0.1:6002")
	s6 := listen(t, p.a, "udp6", "[fd00:91::1]:6002") // other family, same port: fine
	e1 := listen(t, p.a, "udp", ":0")
	e2 := listen(t, p.a, "udp", ":0")
	pe1, pe2 := e1.LocalAddr().(*net.UDPAddr).Port, e2.LocalAddr().(*net.UDPAddr).Port
	if pe1 < ephemeralLow || pe1 > ephemeralHigh || pe1 == pe2 {
		t.Errorf("ephemeral ports %d %d", pe1, pe2)
	}
	_ = s4
	_ = s6
}

// TestUDPRecvBufferFull: a socket nobody reads drops what does not fit in
// its buffer, counted on the socket and the shard, and keeps working.
func TestUDPRecvBufferFull(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{UDPRecvBuffer: 8192})
	srv := listen(t, p.b, "udp4", ":7100")
	cli := listen(t, p.a, "udp4", ":0")
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB4, 7100))
	msg := make([]byte, 1000)
	for range 50 {
		if _, err := cli.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().RxDatagrams+srv.Stats().RxDropped < 50 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := srv.Stats()
	if st.RxDropped == 0 || st.RxDatagrams == 0 || st.RxDatagrams > 8 {
		t.Fatalf("socket stats %+v", st)
	}
	buf := make([]byte, 2000)
	for range st.RxDatagrams {
		srv.SetReadDeadline(time.Now().Add(time.Second))
		if n, _, err := srv.ReadFrom(buf); err != nil || n != len(msg) {
			t.Fatalf("read: %d %v", n, err)
		}
	}
	if _, err := cli.WriteTo(msg, to); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := srv.ReadFrom(buf); err != nil {
		t.Fatalf("after draining: %v", err)
	}
	waitStats(t, p.b, func(s Stats) bool { return s.Drops[DropRcvBuf] == st.RxDropped })
}

// TestUDPBatch: ReadBatch returns several queued datagrams at once;
// WriteBatch sends them all.
func TestUDPBatch(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{})
	srv := listen(t, p.b, "udp6", ":7200")
	cli := listen(t, p.a, "udp6", ":0")
	to := netip.AddrPortFrom(addrB6, 7200)
	out := make([]Message, 16)
	for i := range out {
		out[i] = Message{Buf: []byte{byte(i), 1, 2, 3}, Addr: to}
	}
	if n, err := cli.WriteBatch(out); n != 16 || err != nil {
		t.Fatalf("WriteBatch: %d %v", n, err)
	}
	in := make([]Message, 32)
	for i := range in {
		in[i].Buf = make([]byte, 100)
	}
	got := 0
	for got < 16 {
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := srv.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range in[:n] {
			if m.N != 4 || m.Buf[0] != byte(got) || m.Addr.Addr() != addrA6 {
				t.Fatalf("datagram %d: %+v", got, m)
			}
			got++
		}
	}
}

// TestUDPLossyLink: over a link that loses, reorders and duplicates
// fragments, whole datagrams arrive intact or not at all; reassembly never
// delivers a corrupted datagram.
func TestUDPLossyLink(t *testing.T) {
	opts := link.DefaultMemOptions()
	cfg, err := fault.ParseConfig("loss=0.02,reorder=0.1,dup=0.05,corrupt=0.01,seed=7")
	if err != nil {
		t.Fatal(err)
	}
	opts.Faults = &cfg
	p := newPair(t, opts, Config{}, Config{})
	srv := listen(t, p.b, "udp4", ":7300")
	cli := listen(t, p.a, "udp4", ":0")
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB4, 7300))
	// Resolve the neighbors first (their frames cross the same faulty link).
	buf := make([]byte, 10000)
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("no datagram crossed the lossy link")
		}
		cli.WriteTo([]byte("warm-up"), to)
		srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := srv.ReadFrom(buf); err == nil && n == 7 {
			break
		}
	}
	sums := map[[32]byte]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		msg := make([]byte, 4000)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		sums[sha256.Sum256(msg)] = true
		if _, err := cli.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for {
		srv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := srv.ReadFrom(buf)
		if err != nil {
			break
		}
		if n == 7 {
			continue // a late warm-up datagram
		}
		if n != 4000 || !sums[sha256.Sum256(buf[:n])] {
			t.Fatalf("corrupted datagram of %d bytes", n)
		}
		got++
	}
	t.Logf("%d of 100 datagrams arrived; B %+v; reasm %+v", got, p.b.Stats(), p.b.Shards()[0].rs.Stats())
	if got < 50 {
		t.Errorf("only %d of 100 arrived", got)
	}
}

// TestRouting: a datagram to an address off the local networks goes to the
// gateway's MAC; without a route, writing fails with ENETUNREACH.
func TestRouting(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{Gateways: []netip.Addr{addrB4}}, Config{
		Routes: []route.Route{{Dst: netip.MustParsePrefix("192.0.2.0/24"), Gateway: addrA4}},
	})
	// B has no route to 198.51.100.1 and no gateway.
	c := listen(t, p.b, "udp", ":0")
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 9}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("no route: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("fd00:99::1"), Port: 9}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("no route v6: %v", err)
	}
	// A sends to 198.51.100.1 through its gateway B: the frame reaches B
	// (B's MAC), which drops it as not its own address.
	a := listen(t, p.a, "udp4", ":0")
	if _, err := a.WriteTo([]byte("via gateway"), &net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 9}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.b.Stats().Drops[DropNotOurs] == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.b.Stats().Drops[DropNotOurs] != 1 {
		t.Fatalf("B did not see the datagram for the gateway: %+v", p.b.Stats())
	}
	if _, err := New([]link.Link{p.la}, Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.0.1.1")}}); err == nil {
		t.Fatal("off-link gateway accepted")
	}
}

// TestUDPSetReadBuffer: growing the buffer keeps what the old one held and
// then takes more.
func TestUDPSetReadBuffer(t *testing.T) {
	p := newPair(t, link.DefaultMemOptions(), Config{}, Config{UDPRecvBuffer: 8192})
	srv := listen(t, p.b, "udp4", ":7400")
	cli := listen(t, p.a, "udp4", ":0")
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB4, 7400))
	send := func(n int) {
		for range n {
			if _, err := cli.WriteTo(make([]byte, 1000), to); err != nil {
				t.Fatal(err)
			}
		}
	}
	wait := func(total uint64) {
		deadline := time.Now().Add(5 * time.Second)
		for srv.Stats().RxDatagrams+srv.Stats().RxDropped < total && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	send(3)
	wait(3)
	if err := srv.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	send(100)
	wait(103)
	if st := srv.Stats(); st.RxDropped != 0 || st.RxDatagrams != 103 {
		t.Fatalf("after growing: %+v", st)
	}
	buf := make([]byte, 2000)
	for i := range 103 {
		srv.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := srv.ReadFrom(buf); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
}

// TestDAD: with Config.DAD an IPv6 address is tentative until duplicate
// address detection succeeds, and never used when another node holds it.
func TestDAD(t *testing.T) {
	dup := netip.MustParsePrefix("fd00:91::77/64")
	p := newPair(t, link.DefaultMemOptions(), Config{Addrs: []netip.Prefix{dup}}, Config{DAD: true, Addrs: []netip.Prefix{dup}})
	states := func() map[netip.Addr]AddrState {
		m := map[netip.Addr]AddrState{}
		for _, s := range p.b.AddrStates() {
			m[s.Prefix.Addr()] = s
		}
		return m
	}
	if s := states()[addrB6]; !s.Tentative {
		t.Fatalf("B's %v is not tentative at start: %+v", addrB6, s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for states()[addrB6].Tentative && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := states()
	if st[addrB6].Tentative || st[addrB6].Duplicate {
		t.Fatalf("B's %v after DAD: %+v", addrB6, st[addrB6])
	}
	if s := st[dup.Addr()]; !s.Duplicate {
		t.Fatalf("B's %v, which A holds, is %+v; want duplicate", dup.Addr(), s)
	}
	if st[addrB4].Tentative {
		t.Fatal("IPv4 address tentative")
	}
	// The assigned address works; the duplicate is not B's.
	srv := listen(t, p.b, "udp6", ":7500")
	cli := listen(t, p.a, "udp6", ":0")
	if _, err := cli.WriteTo([]byte("hi"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB6, 7500))); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := srv.ReadFrom(make([]byte, 10)); err != nil {
		t.Fatalf("after DAD: %v", err)
	}
	waitStats(t, p.b, func(s Stats) bool { return s.DADSucceeded == 1 && s.DADFailed == 1 })
}

// TestTwoPorts: one stack on two ports (two links of different ports),
// each with its own network: a socket on it talks to a peer on each
// network, the route picks the port, and each port answers ARP only for
// its own addresses.
func TestTwoPorts(t *testing.T) {
	opts0 := link.DefaultMemOptions()
	opts1 := link.DefaultMemOptions()
	opts1.HardwareAddrs = [2][6]byte{{2, 0, 0, 0, 1, 1}, {2, 0, 0, 0, 1, 2}}
	a0, s0, err := link.NewMemPair(opts0)
	if err != nil {
		t.Fatal(err)
	}
	a1, s1, err := link.NewMemPair(opts1)
	if err != nil {
		t.Fatal(err)
	}
	net0 := netip.MustParsePrefix("10.93.0.2/24")
	net1 := netip.MustParsePrefix("10.94.0.2/24")
	s, err := New([]link.Link{s0, s1}, Config{
		Addrs:     []netip.Prefix{net0},
		PortAddrs: [][]netip.Prefix{nil, {net1}},
		LinkPorts: []int{0, 1},
		Gateways:  []netip.Addr{netip.MustParseAddr("10.94.0.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	p0, err := New([]link.Link{a0}, Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.93.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := New([]link.Link{a1}, Config{Addrs: []netip.Prefix{netip.MustParsePrefix("10.94.0.1/24")},
		Routes: []route.Route{{Dst: netip.MustParsePrefix("10.93.0.0/24"), Gateway: netip.MustParseAddr("10.94.0.2")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, st := range []*Stack{s, p0, p1} {
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, l := range []*link.Mem{a0, s0, a1, s1} {
			l.Close()
		}
	})
	srv := listen(t, s, "udp4", ":7600")
	c0 := listen(t, p0, "udp4", ":0")
	c1 := listen(t, p1, "udp4", ":0")
	buf := make([]byte, 100)
	for i, c := range []*UDPConn{c0, c1} {
		dst := []netip.Addr{net0.Addr(), net1.Addr()}[i]
		if _, err := c.WriteTo([]byte{byte(i)}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 7600))); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("from peer %d: %d %v", i, n, err)
		}
		// The reply leaves on the port its route says.
		if _, err := srv.WriteToUDPAddrPort([]byte{byte(10 + i)}, from); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _, err := c.ReadFrom(buf); err != nil || n != 1 || buf[0] != byte(10+i) {
			t.Fatalf("reply to peer %d: %d %v", i, n, err)
		}
	}
	// Off-net destinations go out on port 1, through its gateway: peer 1
	// receives the datagram (at its MAC) and drops it as not its own.
	if _, err := srv.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 9}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p1.Stats().Drops[DropNotOurs] == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p1.Stats().Drops[DropNotOurs] != 1 || p0.Stats().Drops[DropNotOurs] != 0 {
		t.Fatalf("off-net datagram: peer 0 %+v, peer 1 %+v", p0.Stats().Drops, p1.Stats().Drops)
	}
	// Each port's table holds only its own addresses.
	if ours, _ := s.Shards()[0].Neighbors().Addresses(net1.Addr()); ours {
		t.Error("port 0 answers for port 1's address")
	}
	if ours, _ := s.Shards()[1].Neighbors().Addresses(net1.Addr()); !ours {
		t.Error("port 1 does not answer for its address")
	}
	if _, err := New([]link.Link{s0}, Config{Addrs: []netip.Prefix{net0}, PortAddrs: [][]netip.Prefix{nil, {net1}}}); err == nil {
		t.Error("an address on a port without a link was accepted")
	}
}
