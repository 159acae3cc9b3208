package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/stack"
)

// kernelPeer is namespace A with a kernel stack (10.92.0.1, fd00:92::1)
// and namespace F where a Host runs on the other end of the veth (.2, ::2).
type kernelPeer struct {
	nsA, nsF *topo.Namespace
	pa, pf   topo.Port
	h        *Host
}

func newKernelPeer(t *testing.T, queues int) *kernelPeer {
	t.Helper()
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("topology cleanup: %v", err)
		}
	})
	k := &kernelPeer{}
	var err error
	if k.nsA, err = tp.AddNamespace("tyha"); err != nil {
		t.Fatal(err)
	}
	if k.nsF, err = tp.AddNamespace("tyhf"); err != nil {
		t.Fatal(err)
	}
	k.pa = topo.Port{NS: k.nsA, Name: "a0", Addrs: []string{"10.92.0.1/24", "fd00:92::1/64"}}
	k.pf = topo.Port{NS: k.nsF, Name: "f0"}
	if err := topo.NewVeth(&k.pa, &k.pf, topo.VethOptions{Queues: queues}); err != nil {
		t.Fatal(err)
	}
	err = k.nsF.Do(func() error {
		var err error
		k.h, err = Open(Config{Interface: "f0", Queues: queues, Stack: stack.Config{Addrs: []netip.Prefix{
			netip.MustParsePrefix("10.92.0.2/24"), netip.MustParsePrefix("fd00:92::2/64")}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := k.h.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		t.Logf("stack %+v", k.h.Stack.Stats())
		k.h.Close()
	})
	t.Logf("XDP mode %s, bind %s, %d queues", k.h.Mode, k.h.Bind, queues)
	return k
}

// kernelUDP opens a kernel UDP socket in namespace A.
func (k *kernelPeer) kernelUDP(t *testing.T, network, laddr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := k.nsA.Do(func() error {
		a, err := net.ResolveUDPAddr(network, laddr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP(network, a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestKernelUDP: a kernel UDP socket and ours exchange datagrams both
// ways, IPv4 and IPv6, up to 8 KB datagrams that are fragmented and
// reassembled on both sides; each side resolves the other's MAC itself.
func TestKernelUDP(t *testing.T) {
	k := newKernelPeer(t, 1)
	for _, fam := range []struct{ net, kernel, ours string }{
		{"udp4", "10.92.0.1", "10.92.0.2"},
		{"udp6", "fd00:92::1", "fd00:92::2"},
	} {
		ours, err := k.h.Stack.ListenPacket(fam.net, net.JoinHostPort(fam.ours, "7000"))
		if err != nil {
			t.Fatal(err)
		}
		defer ours.Close()
		kc := k.kernelUDP(t, fam.net, net.JoinHostPort(fam.kernel, "0"))
		oursAddr := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(net.JoinHostPort(fam.ours, "7000")))
		rng := rand.New(rand.NewPCG(5, 6))
		buf := make([]byte, 10000)
		for _, size := range []int{1, 64, 1400, 1472, 3000, 8192} {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			// kernel -> ours
			if _, err := kc.WriteTo(msg, oursAddr); err != nil {
				t.Fatal(err)
			}
			ours.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := ours.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%s: ours did not receive %d bytes: %v", fam.net, size, err)
			}
			if !bytes.Equal(buf[:n], msg) || from != kc.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("%s: got %d bytes from %v", fam.net, n, from)
			}
			// ours -> kernel
			if _, err := ours.WriteToUDPAddrPort(msg, from); err != nil {
				t.Fatal(err)
			}
			kc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, kfrom, err := kc.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("%s: kernel did not receive %d bytes: %v", fam.net, size, err)
			}
			if !bytes.Equal(buf[:n], msg) || kfrom.Addr().Unmap().String() != fam.ours || kfrom.Port() != 7000 {
				t.Fatalf("%s: kernel got %d bytes from %v", fam.net, n, kfrom)
			}
		}
	}
	neigh, _ := topo.Output(k.nsA, "ip", "neigh", "show", "dev", "a0")
	if !strings.Contains(neigh, "10.92.0.2 lladdr "+k.pf.MAC.String()) || !strings.Contains(neigh, "fd00:92::2 lladdr "+k.pf.MAC.String()) {
		t.Errorf("kernel neighbors:\n%s", neigh)
	}
	// Shards publish their counters at the end of a poll: wait for them.
	deadline := time.Now().Add(5 * time.Second)
	st := k.h.Stack.Stats()
	for (st.Reassembled == 0 || st.FragsOut == 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		st = k.h.Stack.Stats()
	}
	if st.Reassembled == 0 || st.FragsOut == 0 || st.Drops[stack.DropBadChecksum] != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestKernelConnRefused: a connected kernel socket that sends to a port
// we do not listen on reads ECONNREFUSED (our port unreachable), both
// families; and our connected socket gets ECONNREFUSED from the kernel.
func TestKernelConnRefused(t *testing.T) {
	k := newKernelPeer(t, 1)
	for _, dst := range []string{"10.92.0.2:9999", "[fd00:92::2]:9999"} {
		var c *net.UDPConn
		err := k.nsA.Do(func() error {
			var err error
			c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var rerr error
		for range 20 { // the first datagram may wait for neighbor resolution
			c.Write([]byte("anyone?"))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, rerr = c.Read(make([]byte, 10)); errors.Is(rerr, syscall.ECONNREFUSED) {
				break
			}
		}
		if !errors.Is(rerr, syscall.ECONNREFUSED) {
			t.Errorf("kernel socket to %s: %v, want ECONNREFUSED", dst, rerr)
		}
	}
	for _, dst := range []string{"10.92.0.1:9999", "[fd00:92::1]:9999"} {
		c, err := k.h.Stack.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var rerr error
		for range 20 {
			c.Write([]byte("anyone?"))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, rerr = c.Read(make([]byte, 10)); errors.Is(rerr, syscall.ECONNREFUSED) {
				break
			}
		}
		if !errors.Is(rerr, syscall.ECONNREFUSED) {
			t.Errorf("our socket to %s: %v, want ECONNREFUSED", dst, rerr)
		}
	}
}

// TestKernelPingMultiQueue: with two queues and two shards, kernel ping
// and UDP from several source ports reach us whichever queue they land on.
func TestKernelPingMultiQueue(t *testing.T) {
	k := newKernelPeer(t, 2)
	for _, args := range [][]string{{"-c", "2", "-W", "1", "10.92.0.2"}, {"-6", "-c", "2", "-W", "1", "fd00:92::2"}} {
		if out, err := topo.Output(k.nsA, "ping", args...); err != nil {
			t.Errorf("ping %v: %v\n%s", args, err, out)
		}
	}
	ours, err := k.h.Stack.ListenPacket("udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := ours.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			ours.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	for i := range 8 {
		kc := k.kernelUDP(t, "udp4", "10.92.0.1:0")
		msg := []byte{byte(i), 'e', 'c', 'h', 'o'}
		kc.WriteTo(msg, &net.UDPAddr{IP: net.ParseIP("10.92.0.2"), Port: 7})
		kc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 100)
		n, _, err := kc.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
}

// TestKernelTwoPorts: one host on two interfaces, a kernel peer on each
// network; a socket of the host exchanges datagrams with both, each
// through its own port.
func TestKernelTwoPorts(t *testing.T) {
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("topology cleanup: %v", err)
		}
	})
	nsF, err := tp.AddNamespace("tyh2f")
	if err != nil {
		t.Fatal(err)
	}
	var peers [2]*topo.Namespace
	for i := range peers {
		if peers[i], err = tp.AddNamespace(fmt.Sprintf("tyh2p%d", i)); err != nil {
			t.Fatal(err)
		}
		pa := topo.Port{NS: peers[i], Name: "p0", Addrs: []string{fmt.Sprintf("10.95.%d.1/24", i)}}
		pf := topo.Port{NS: nsF, Name: fmt.Sprintf("f%d", i)}
		if err := topo.NewVeth(&pa, &pf, topo.VethOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var h *Host
	err = nsF.Do(func() error {
		var err error
		h, err = Open(Config{Interfaces: []string{"f0", "f1"}, Queues: 1, Stack: stack.Config{
			Addrs:     []netip.Prefix{netip.MustParsePrefix("10.95.0.2/24")},
			PortAddrs: [][]netip.Prefix{nil, {netip.MustParsePrefix("10.95.1.2/24")}}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait(); h.Close() })
	ours, err := h.Stack.ListenPacket("udp4", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	buf := make([]byte, 100)
	for i, ns := range peers {
		var kc *net.UDPConn
		if err := ns.Do(func() error {
			var err error
			kc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(fmt.Sprintf("10.95.%d.1", i))})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		kc.WriteTo([]byte{byte(i)}, &net.UDPAddr{IP: net.ParseIP(fmt.Sprintf("10.95.%d.2", i)), Port: 7000})
		ours.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := ours.ReadFromUDPAddrPort(buf)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("from kernel peer %d: %d %v", i, n, err)
		}
		if _, err := ours.WriteToUDPAddrPort([]byte{byte(10 + i)}, from); err != nil {
			t.Fatal(err)
		}
		kc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _, err := kc.ReadFrom(buf); err != nil || n != 1 || buf[0] != byte(10+i) {
			t.Fatalf("reply to kernel peer %d: %d %v", i, n, err)
		}
	}
}
