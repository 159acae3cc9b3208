package link_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/xsk"
)

// Topology of the kernel tests: a kernel peer in namespace A (a0,
// 10.79.0.1) wired to f0 in namespace F, where the link under test sits.
// f0 has no IPv4 address, so F's kernel ignores what the link answers for
// (the AF_PACKET link needs that); the peer has a static neighbor entry for
// 10.79.0.2, so the link needs no ARP.
var (
	peerIP  = [4]byte{10, 79, 0, 1}
	localIP = [4]byte{10, 79, 0, 2}
)

const (
	peerPort  = 7777
	localPort = 9999
)

type vethPair struct {
	nsA, nsF *topo.Namespace
	a, f     topo.Port
}

func newVethPair(t *testing.T, mtu int) *vethPair {
	t.Helper()
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("topology cleanup: %v", err)
		}
	})
	p := &vethPair{}
	var err error
	if p.nsA, err = tp.AddNamespace("tyla"); err != nil {
		t.Fatal(err)
	}
	if p.nsF, err = tp.AddNamespace("tylf"); err != nil {
		t.Fatal(err)
	}
	p.a = topo.Port{NS: p.nsA, Name: "a0", Addrs: []string{"10.79.0.1/24"}}
	p.f = topo.Port{NS: p.nsF, Name: "f0"}
	if err := topo.NewVeth(&p.a, &p.f, topo.VethOptions{MTU: mtu}); err != nil {
		t.Fatal(err)
	}
	if err := topo.Run(p.nsA, "ip", "neigh", "replace", "10.79.0.2", "lladdr", p.f.MAC.String(), "dev", "a0"); err != nil {
		t.Fatal(err)
	}
	return p
}

// peerResult is what the kernel peer saw.
type peerResult struct {
	seqs []uint32
	err  error
}

// runPeer sends n datagrams of size bytes (a 4-byte sequence number first)
// from the kernel in A to 10.79.0.2:9999 and collects the replies until all
// came or quiet passes without one. ready is closed once the socket is
// bound.
func (p *vethPair) runPeer(n, size int, gap, quiet time.Duration, ready chan<- struct{}) <-chan peerResult {
	res := make(chan peerResult, 1)
	go func() {
		var r peerResult
		r.err = p.nsA.Do(func() error {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(peerIP[:]), Port: peerPort})
			if err == nil {
				// The link answers in bursts; under -race on a loaded
				// machine the default receive buffer (rmem_default)
				// overflowed and the kernel dropped replies the link had
				// sent (1970 of 2000 once). A 4 MiB buffer (root may
				// exceed rmem_max) holds every reply of a run.
				err = forceRcvBuf(c, 4<<20)
			}
			close(ready)
			if err != nil {
				return err
			}
			defer c.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 2048)
				for len(r.seqs) < n {
					c.SetReadDeadline(time.Now().Add(quiet))
					m, _, err := c.ReadFrom(buf)
					if err != nil {
						return
					}
					if m == size {
						r.seqs = append(r.seqs, binary.BigEndian.Uint32(buf))
					}
				}
			}()
			dst := &net.UDPAddr{IP: net.IP(localIP[:]), Port: localPort}
			b := make([]byte, size)
			for i := range n {
				binary.BigEndian.PutUint32(b, uint32(i))
				if _, err := c.WriteTo(b, dst); err != nil {
					return fmt.Errorf("write %d: %w", i, err)
				}
				if gap > 0 {
					time.Sleep(gap)
				}
			}
			wg.Wait()
			return nil
		})
		res <- r
	}()
	return res
}

// forceRcvBuf sets SO_RCVBUFFORCE on c (root only; above rmem_max).
func forceRcvBuf(c *net.UDPConn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return err
	}
	return serr
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// isRequest reports whether d is an IPv4 UDP datagram to localIP:9999.
func isRequest(d []byte) bool {
	return len(d) >= 46 && d[12] == 0x08 && d[13] == 0 && d[14] == 0x45 && d[23] == 17 &&
		[4]byte(d[30:34]) == localIP && binary.BigEndian.Uint16(d[36:]) == localPort
}

// swapInPlace turns a request into its reply: swapping addresses and ports
// leaves both checksums valid.
func swapInPlace(d []byte) {
	var mac [6]byte
	copy(mac[:], d[0:6])
	copy(d[0:6], d[6:12])
	copy(d[6:12], mac[:])
	var ip [4]byte
	copy(ip[:], d[26:30])
	copy(d[26:30], d[30:34])
	copy(d[30:34], ip[:])
	sp := binary.BigEndian.Uint16(d[34:])
	copy(d[34:36], d[36:38])
	binary.BigEndian.PutUint16(d[36:], sp)
}

// buildReply writes the reply to request req into f (from Alloc): a new
// frame with a fresh IPv4 header and UDP checksum 0.
func buildReply(f *pipeline.Frame, req []byte, mac [6]byte) {
	payload := req[42:]
	d := f.Data[:42+len(payload)]
	copy(d[0:6], req[6:12])
	copy(d[6:12], mac[:])
	d[12], d[13] = 0x08, 0x00
	ip := d[14:34]
	clear(ip)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], localIP[:])
	copy(ip[16:], req[26:30])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := d[34:42]
	binary.BigEndian.PutUint16(udp[0:], localPort)
	binary.BigEndian.PutUint16(udp[2:], binary.BigEndian.Uint16(req[34:]))
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	binary.BigEndian.PutUint16(udp[6:], 0)
	copy(d[42:], payload)
	f.Data = d
}

// echo is the link's owner goroutine: it answers every request, even
// sequence numbers in place (the received frame is transmitted back) and
// odd ones in a frame from Alloc, until stop is closed. It returns the
// number of requests it saw and the frames it saw from its own address.
func echo(l link.Link, stop <-chan struct{}) (requests, own int, err error) {
	rx := make([]pipeline.Frame, 64)
	tx := make([]pipeline.Frame, 0, 64)
	one := make([]pipeline.Frame, 1)
	mac := l.HardwareAddr()
	for {
		select {
		case <-stop:
			return requests, own, nil
		default:
		}
		n := l.Receive(rx)
		tx = tx[:0]
		for i := range rx[:n] {
			f := rx[i]
			if [6]byte(f.Data[6:12]) == mac {
				own++
			}
			if !isRequest(f.Data) {
				l.Release(rx[i : i+1])
				continue
			}
			requests++
			if binary.BigEndian.Uint32(f.Data[42:])%2 == 0 {
				swapInPlace(f.Data)
				tx = append(tx, f)
				continue
			}
			if l.Alloc(one) != 1 {
				return requests, own, errors.New("alloc failed")
			}
			buildReply(&one[0], f.Data, mac)
			l.Release(rx[i : i+1])
			tx = append(tx, one[0])
		}
		if q := l.Transmit(tx); q != len(tx) {
			return requests, own, fmt.Errorf("transmit queued %d of %d", q, len(tx))
		}
		l.Flush()
		if n == 0 {
			if err := l.Wait(10 * time.Millisecond); err != nil {
				return requests, own, err
			}
		}
	}
}

// exchangeWithPeer runs the kernel peer against echo on l.
func exchangeWithPeer(t *testing.T, p *vethPair, l link.Link, n int) {
	t.Helper()
	stop := make(chan struct{})
	type echoResult struct {
		requests, own int
		err           error
	}
	done := make(chan echoResult, 1)
	go func() {
		r, o, err := echo(l, stop)
		done <- echoResult{r, o, err}
	}()
	watcher := make(chan struct{})
	go func() { // Stats and Wake are safe from any goroutine
		defer close(watcher)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			l.Stats()
			l.Wake()
		}
	}()
	ready := make(chan struct{})
	res := p.runPeer(n, 32, 20*time.Microsecond, time.Second, ready)
	<-ready
	r := <-res
	close(stop)
	e := <-done
	<-watcher
	if r.err != nil || e.err != nil {
		t.Fatalf("peer: %v, link: %v", r.err, e.err)
	}
	if len(r.seqs) != n || e.requests != n {
		t.Fatalf("peer got %d of %d replies; link saw %d requests; stats %+v", len(r.seqs), n, e.requests, l.Stats())
	}
	seen := make([]bool, n)
	for _, s := range r.seqs {
		if int(s) >= n || seen[s] {
			t.Fatalf("reply %d unexpected or twice", s)
		}
		seen[s] = true
	}
	if e.own != 0 {
		t.Fatalf("link received %d of its own frames", e.own)
	}
	st := l.Stats()
	if st.TxFrames != uint64(n) || st.RxFrames < uint64(n) || st.TxDropped != 0 || st.RxDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestXSKLink(t *testing.T) {
	p := newVethPair(t, 0)
	prog, err := testutil.NewRedirectProgram()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prog.Close)
	xl, err := prog.Attach(p.nsF, p.f.Ifindex, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xl.Close() })

	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Error(err)
		}
	})
	pool, err := xsk.NewFramePool(u, 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var l *link.XSK
	err = p.nsF.Do(func() error {
		sock, err := xsk.NewSocket(pool, p.f.Ifindex, 0, xsk.DefaultSocketOptions())
		if err != nil {
			return err
		}
		// MAC and MTU from the interface: in F's namespace.
		if l, err = link.NewXSK(sock, link.XSKOptions{Headroom: 64}); err != nil {
			sock.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	if err := prog.Register(0, l.Socket().FD()); err != nil {
		t.Fatal(err)
	}
	if l.HardwareAddr() != [6]byte(p.f.MAC) || l.MTU() != 1500 {
		t.Fatalf("link address %x mtu %d, interface %s", l.HardwareAddr(), l.MTU(), p.f.MAC)
	}

	exchangeWithPeer(t, p, l, 2000)

	// Frame accounting: after draining, every frame is in the pool or in
	// the fill ring, and nowhere else.
	l.Drain()
	sock := l.Socket()
	if pool.Len()+sock.InKernel() != pool.Total() || sock.InKernel() != sock.InRings() {
		t.Fatalf("pool %d + kernel %d (in rings %d) != %d", pool.Len(), sock.InKernel(), sock.InRings(), pool.Total())
	}
	t.Logf("stats %+v, socket %+v", l.Stats(), sock.Stats())
	closed = true
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if pool.Len()+sock.InKernel() != pool.Total() {
		t.Fatalf("after close: pool %d + kernel %d != %d", pool.Len(), sock.InKernel(), pool.Total())
	}
	if err := l.Wait(time.Millisecond); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	l.Wake() // harmless after Close
	if st := l.Stats(); st.TxFrames != 2000 {
		t.Fatalf("stats after close %+v", st)
	}
}

// TestXSKTransmitChecks: frames not of this link are refused without
// touching the pool; frames of this link that cannot be sent return to it.
func TestXSKTransmitChecks(t *testing.T) {
	p := newVethPair(t, 0)
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 256})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	pool, _ := xsk.NewFramePool(u, 0, 256)
	var l *link.XSK
	err = p.nsF.Do(func() error {
		sock, err := xsk.NewSocket(pool, p.f.Ifindex, 0, xsk.DefaultSocketOptions())
		if err != nil {
			return err
		}
		l, err = link.NewXSK(sock, link.XSKOptions{HardwareAddr: [6]byte(p.f.MAC), MTU: 1500, TxReserve: 16})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fs := make([]pipeline.Frame, 4)
	if l.Alloc(fs) != 4 {
		t.Fatal("alloc")
	}
	if cap(fs[0].Data) != 2048 || len(fs[0].Data) != 0 {
		t.Fatalf("allocated frame len %d cap %d", len(fs[0].Data), cap(fs[0].Data))
	}
	before := pool.Len()
	fs[1].Data = fs[1].Data[:1600] // over MTU+MaxHeader
	fs[2].Data = fs[2].Data[1:60]  // Addr not moved with Data
	foreign := pipeline.Frame{Data: make([]byte, 60), Addr: fs[3].Addr}
	l.Transmit([]pipeline.Frame{fs[0], fs[1], fs[2], foreign})
	l.Flush()
	st := l.Stats()
	if st.TxInvalid != 4 || st.TxFrames != 0 {
		t.Fatalf("stats %+v", st)
	}
	// fs[0] (empty) and fs[1] (too big) were ours and went back; fs[2] and
	// the foreign frame were not touched.
	if pool.Len() != before+2 {
		t.Fatalf("pool %d -> %d", before, pool.Len())
	}
	fs[2].Data = fs[2].Data[:0]
	l.Release(fs[2:4])
}

func TestPacketLink(t *testing.T) {
	p := newVethPair(t, 9000)
	var l *link.Packet
	err := p.nsF.Do(func() (err error) {
		l, err = link.NewPacket("f0", link.PacketOptions{MTU: 1500})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	if l.HardwareAddr() != [6]byte(p.f.MAC) || l.MTU() != 1500 {
		t.Fatalf("link address %x mtu %d, interface %s", l.HardwareAddr(), l.MTU(), p.f.MAC)
	}

	exchangeWithPeer(t, p, l, 2000)

	// A frame larger than a buffer (the interface MTU is 9000, the link's
	// 1500) is truncated by the kernel and dropped as RxTooBig.
	ready := make(chan struct{})
	res := p.runPeer(1, 4000, 0, 50*time.Millisecond, ready)
	<-ready
	rx := make([]pipeline.Frame, 8)
	deadline := time.Now().Add(2 * time.Second)
	for l.Stats().RxTooBig == 0 && time.Now().Before(deadline) {
		l.Wait(10 * time.Millisecond)
		n := l.Receive(rx)
		l.Release(rx[:n])
	}
	<-res
	if st := l.Stats(); st.RxTooBig != 1 {
		t.Fatalf("stats %+v", st)
	}
	if free, total := l.Buffers(); free != total {
		t.Fatalf("%d of %d buffers free", free, total)
	}
	closed = true
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(0); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
}

// TestKernelLinkWake: Wait on an idle socket returns on Wake from another
// goroutine and at its timeout.
func TestKernelLinkWake(t *testing.T) {
	p := newVethPair(t, 0)
	var l *link.Packet
	if err := p.nsF.Do(func() (err error) {
		l, err = link.NewPacket("f0", link.PacketOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	if err := l.Wait(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		// Something arrived (the kernel sends IPv6 noise on link up):
		// drain and try again.
		rx := make([]pipeline.Frame, 64)
		for n := l.Receive(rx); n > 0; n = l.Receive(rx) {
			l.Release(rx[:n])
		}
	}
	for _, early := range []bool{false, true} {
		if early {
			l.Wake() // before Wait: the next Wait returns at once
		} else {
			go func() {
				time.Sleep(20 * time.Millisecond)
				l.Wake()
				l.Wake()
			}()
		}
		start = time.Now()
		if err := l.Wait(-1); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Wake did not end Wait (%v)", d)
		}
	}
}
