package stack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/stack/route"
)

// Ephemeral ports (Linux's default ip_local_port_range).
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// Largest UDP payloads: 65535 minus the IPv4 and UDP headers, and 65535
// minus the UDP header for IPv6 (no jumbograms).
const (
	maxUDPPayload4 = 65535 - 20 - 8
	maxUDPPayload6 = 65535 - 8
)

// sockKey is a bound local endpoint; addr zero is the wildcard.
type sockKey struct {
	addr [16]byte
	port uint16
	v6   bool
}

// connKey is a connected socket's 4-tuple.
type connKey struct {
	laddr, raddr [16]byte
	lport, rport uint16
	v6           bool
}

// sockTable is an immutable snapshot of the sockets: writers copy it under
// Stack.mu and publish the copy; shards read it with one atomic load per
// datagram. Sockets come and go rarely; datagrams arrive constantly.
type sockTable struct {
	bound    map[sockKey]*UDPConn
	conn     map[connKey]*UDPConn
	handlers map[uint16]UDPHandler
}

func (t *sockTable) clone() *sockTable {
	n := &sockTable{bound: make(map[sockKey]*UDPConn, len(t.bound)+2), conn: make(map[connKey]*UDPConn, len(t.conn)+1),
		handlers: make(map[uint16]UDPHandler, len(t.handlers)+1)}
	for k, v := range t.handlers {
		n.handlers[k] = v
	}
	for k, v := range t.bound {
		n.bound[k] = v
	}
	for k, v := range t.conn {
		n.conn[k] = v
	}
	return n
}

// lookup finds the socket for a datagram: a connected socket with the exact
// 4-tuple, else one bound to the address and port, else one bound to the
// port on the wildcard address.
func (t *sockTable) lookup(v6 bool, laddr, raddr *[16]byte, lport, rport uint16) *UDPConn {
	if len(t.conn) > 0 {
		if c, ok := t.conn[connKey{laddr: *laddr, raddr: *raddr, lport: lport, rport: rport, v6: v6}]; ok {
			return c
		}
	}
	if c, ok := t.bound[sockKey{addr: *laddr, port: lport, v6: v6}]; ok {
		return c
	}
	return t.bound[sockKey{port: lport, v6: v6}]
}

// UDPStats are a socket's counters.
type UDPStats struct {
	RxDatagrams uint64 // datagrams queued for reading
	RxBytes     uint64
	RxDropped   uint64 // datagrams dropped: receive buffer full
	TxDatagrams uint64 // datagrams handed to a shard
	TxBytes     uint64
}

// UDPConn is a UDP socket of a Stack. It implements net.PacketConn and,
// when made by DialUDP, net.Conn. All methods are safe for concurrent use.
//
// Received datagrams are copied out of the frame by the shard that
// received them into a per-shard receive buffer of the socket
// (Config.UDPRecvBuffer bytes; datagrams that do not fit are dropped and
// counted), and copied again into the reader's buffer. Written datagrams
// are copied into the send queue of a shard, which builds the frames. A
// reader or writer never takes a lock a shard takes: shards and sockets
// meet in single-producer single-consumer rings.
type UDPConn struct {
	st    *Stack
	v4    bool // accepts IPv4
	v6    bool // accepts IPv6
	laddr netip.AddrPort
	raddr netip.AddrPort // valid when connected
	keys  []sockKey      // bound keys, for Close
	ckey  connKey

	rings atomic.Pointer[ringSet] // receive buffers, one per shard (producer: that shard)
	rmu   sync.Mutex              // readers
	next  int                     // next ring to read, under rmu
	rwait atomic.Int32            // readers waiting for a datagram
	rnote chan struct{}

	done      chan struct{}
	closeOnce sync.Once
	rdl, wdl  deadline
	softErr   atomic.Int32 // pending ICMP-reported error (syscall.Errno), connected sockets

	rxDatagrams, rxBytes, rxDropped atomic.Uint64
	txDatagrams, txBytes            atomic.Uint64
}

// ListenPacket returns a UDP socket bound to address, like net.ListenPacket:
// network is "udp", "udp4" or "udp6"; an empty or unspecified host binds
// the wildcard (with "udp", both families); port 0 picks an ephemeral port.
func (st *Stack) ListenPacket(network, address string) (*UDPConn, error) {
	fam, err := family(network)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("bad port %q", portStr)}
	}
	var a netip.Addr
	if host != "" {
		if a, err = netip.ParseAddr(host); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
		a = a.Unmap()
	}
	c, err := st.bind(fam, netip.AddrPortFrom(a, uint16(port)), netip.AddrPort{})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: udpAddr(netip.AddrPortFrom(a, uint16(port))), Err: err}
	}
	return c, nil
}

// DialUDP returns a UDP socket connected to raddr, like net.DialUDP: it
// receives only datagrams from raddr and its Write sends to raddr. laddr
// may be nil (an ephemeral port on the source address the route picks).
func (st *Stack) DialUDP(network string, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	fam, err := family(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("missing address")}
	}
	ra := raddr.AddrPort()
	ra = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
	if !ra.Addr().IsValid() || ra.Port() == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: errors.New("bad remote address")}
	}
	if ra.Addr().Is4() && fam == famV6 || !ra.Addr().Is4() && fam == famV4 {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: syscall.EAFNOSUPPORT}
	}
	var la netip.AddrPort
	if laddr != nil {
		la = laddr.AddrPort()
		la = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
	}
	if !la.Addr().IsValid() || la.Addr().IsUnspecified() {
		r, ok := st.routes.Lookup(ra.Addr())
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: syscall.ENETUNREACH}
		}
		src, ok := st.source(r, ra.Addr())
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: syscall.EADDRNOTAVAIL}
		}
		la = netip.AddrPortFrom(src, la.Port())
	}
	if ra.Addr().Is4() {
		fam = famV4
	} else {
		fam = famV6
	}
	c, err := st.bind(fam, la, ra)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	return c, nil
}

const (
	famBoth = iota
	famV4
	famV6
)

func family(network string) (int, error) {
	switch network {
	case "udp":
		return famBoth, nil
	case "udp4":
		return famV4, nil
	case "udp6":
		return famV6, nil
	}
	return 0, net.UnknownNetworkError(network)
}

// bind registers a socket for la (and ra when connected).
func (st *Stack) bind(fam int, la, ra netip.AddrPort) (*UDPConn, error) {
	a := la.Addr()
	switch {
	case !a.IsValid() || a.IsUnspecified():
		if a.IsValid() { // 0.0.0.0 or ::
			if a.Is4() {
				if fam == famV6 {
					return nil, syscall.EAFNOSUPPORT
				}
				fam = famV4
			} else if fam == famBoth {
				fam = famBoth // "::" with "udp" is dual-stack, like Linux
			}
		}
		a = netip.Addr{}
	case a.Is4():
		if fam == famV6 {
			return nil, syscall.EAFNOSUPPORT
		}
		if !st.ours4(a.As4()) {
			return nil, syscall.EADDRNOTAVAIL
		}
		fam = famV4
	default:
		if fam == famV4 {
			return nil, syscall.EAFNOSUPPORT
		}
		if !st.ours6(a.As16()) {
			return nil, syscall.EADDRNOTAVAIL
		}
		fam = famV6
	}
	c := &UDPConn{
		st:    st,
		v4:    fam != famV6,
		v6:    fam != famV4,
		raddr: ra,
		rnote: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	c.rdl.init()
	c.wdl.init()
	c.rings.Store(newRingSet(len(st.shards), st.cfg.UDPRecvBuffer, nil))

	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.socks.Load().clone()
	keysFor := func(port uint16) []sockKey {
		var ks []sockKey
		var k16 [16]byte
		if a.IsValid() {
			k16 = a.As16()
			if a.Is4() {
				k16 = [16]byte{}
				a4 := a.As4()
				copy(k16[:], a4[:])
			}
		}
		if c.v4 {
			ks = append(ks, sockKey{addr: k16, port: port, v6: false})
		}
		if c.v6 {
			ks = append(ks, sockKey{addr: k16, port: port, v6: true})
		}
		return ks
	}
	free := func(port uint16) bool {
		if _, used := t.handlers[port]; used {
			return false
		}
		if ra.IsValid() {
			// A connected socket may share its port with other connected
			// sockets, not with a bound one on the same address.
			for _, k := range keysFor(port) {
				if _, used := t.bound[k]; used {
					return false
				}
			}
			_, used := t.conn[st.connKeyOf(a, port, ra)]
			return !used
		}
		for _, k := range keysFor(port) {
			if _, used := t.bound[k]; used {
				return false
			}
			if k.addr != ([16]byte{}) {
				if _, used := t.bound[sockKey{port: port, v6: k.v6}]; used {
					return false
				}
			}
		}
		if !a.IsValid() {
			// A wildcard bind conflicts with any specific bind of the port.
			for k := range t.bound {
				if k.port == port && (k.v6 && c.v6 || !k.v6 && c.v4) {
					return false
				}
			}
		}
		return true
	}
	port := la.Port()
	if port == 0 {
		n := uint32(ephemeralHigh - ephemeralLow + 1)
		for i := uint32(0); i < n; i++ {
			p := uint16(ephemeralLow + (st.ephemeral-ephemeralLow+i)%n)
			if free(p) {
				port = p
				st.ephemeral = uint32(p) + 1
				break
			}
		}
		if port == 0 {
			return nil, syscall.EADDRINUSE
		}
	} else if !free(port) {
		return nil, syscall.EADDRINUSE
	}
	c.laddr = netip.AddrPortFrom(a, port)
	if ra.IsValid() {
		c.ckey = st.connKeyOf(a, port, ra)
		t.conn[c.ckey] = c
	} else {
		c.keys = keysFor(port)
		for _, k := range c.keys {
			t.bound[k] = c
		}
	}
	st.socks.Store(t)
	return c, nil
}

func (st *Stack) connKeyOf(la netip.Addr, lport uint16, ra netip.AddrPort) connKey {
	k := connKey{lport: lport, rport: ra.Port(), v6: !ra.Addr().Is4()}
	k.laddr = addr16(la)
	k.raddr = addr16(ra.Addr())
	return k
}

// addr16 stores a in the stack's 16-byte form: IPv4 in the first 4 bytes.
func addr16(a netip.Addr) [16]byte {
	if a.Is4() {
		var b [16]byte
		a4 := a.As4()
		copy(b[:], a4[:])
		return b
	}
	return a.As16()
}

// addrFrom16 is the inverse of addr16.
func addrFrom16(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	if !ap.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// LocalAddr returns the bound address (a *net.UDPAddr).
func (c *UDPConn) LocalAddr() net.Addr {
	a := c.laddr
	if !a.Addr().IsValid() {
		if c.v6 {
			a = netip.AddrPortFrom(netip.IPv6Unspecified(), a.Port())
		} else {
			a = netip.AddrPortFrom(netip.IPv4Unspecified(), a.Port())
		}
	}
	return net.UDPAddrFromAddrPort(a)
}

// RemoteAddr returns the connected peer (a *net.UDPAddr), or nil.
func (c *UDPConn) RemoteAddr() net.Addr {
	if !c.raddr.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(c.raddr)
}

// Stats returns the socket's counters.
func (c *UDPConn) Stats() UDPStats {
	return UDPStats{
		RxDatagrams: c.rxDatagrams.Load(), RxBytes: c.rxBytes.Load(), RxDropped: c.rxDropped.Load(),
		TxDatagrams: c.txDatagrams.Load(), TxBytes: c.txBytes.Load(),
	}
}

// Close unregisters the socket and unblocks its readers and writers.
func (c *UDPConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = nil
		st := c.st
		st.mu.Lock()
		t := st.socks.Load().clone()
		for _, k := range c.keys {
			if t.bound[k] == c {
				delete(t.bound, k)
			}
		}
		if c.raddr.IsValid() && t.conn[c.ckey] == c {
			delete(t.conn, c.ckey)
		}
		st.socks.Store(t)
		st.mu.Unlock()
		close(c.done)
	})
	if err != nil {
		return &net.OpError{Op: "close", Net: "udp", Addr: c.LocalAddr(), Err: err}
	}
	return nil
}

func (c *UDPConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// SetDeadline sets the read and write deadlines.
func (c *UDPConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline for reads; a blocked read returns
// os.ErrDeadlineExceeded when it passes.
func (c *UDPConn) SetReadDeadline(t time.Time) error { c.rdl.set(t); return nil }

// SetWriteDeadline sets the deadline for writes blocked on a full send
// queue.
func (c *UDPConn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// ringSet is a socket's receive rings: the current ones, and those a
// SetReadBuffer replaced, which readers keep draining (a shard may still
// push into them for a moment after the swap).
type ringSet struct {
	cur  []*dgramRing
	old  []*dgramRing
	size int
}

func newRingSet(shards, size int, prev *ringSet) *ringSet {
	rs := &ringSet{cur: make([]*dgramRing, shards), size: size}
	for i := range rs.cur {
		rs.cur[i] = newDgramRing(size)
	}
	if prev != nil {
		rs.old = append(append([]*dgramRing(nil), prev.old...), prev.cur...)
	}
	return rs
}

// MaxRecvBuffer bounds SetReadBuffer.
const MaxRecvBuffer = 64 << 20

// SetReadBuffer grows the receive buffer (per shard) to at least bytes, at
// most MaxRecvBuffer; it never shrinks it. quic-go asks for 7 MiB.
func (c *UDPConn) SetReadBuffer(bytes int) error {
	if bytes < 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	bytes = min(bytes, MaxRecvBuffer)
	c.rmu.Lock()
	defer c.rmu.Unlock()
	cur := c.rings.Load()
	if bytes <= cur.size {
		return nil
	}
	c.rings.Store(newRingSet(len(cur.cur), bytes, cur))
	return nil
}

// SetWriteBuffer is accepted for compatibility; the send queue is
// Config.SendQueue.
func (c *UDPConn) SetWriteBuffer(int) error { return nil }

// ReadFrom reads one datagram into b (truncating it if b is too short) and
// returns its length and sender (a *net.UDPAddr).
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.read(b)
	if err != nil {
		return 0, nil, c.opErr("read", err)
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// ReadFromUDPAddrPort is ReadFrom without allocating the address.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, ap, err := c.read(b)
	if err != nil {
		return 0, ap, c.opErr("read", err)
	}
	return n, ap, nil
}

// Read reads one datagram (a connected socket's, or any).
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.read(b)
	if err != nil {
		return 0, c.opErr("read", err)
	}
	return n, nil
}

// Message is one datagram of ReadBatch and WriteBatch.
type Message struct {
	Buf  []byte         // ReadBatch: room for the datagram; WriteBatch: the datagram
	N    int            // ReadBatch: bytes read
	Addr netip.AddrPort // ReadBatch: sender; WriteBatch: destination (ignored when connected)
}

// ReadBatch reads up to len(ms) datagrams: it blocks for the first like
// Read, then takes those already queued, and returns how many it read.
func (c *UDPConn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	n, ap, err := c.read(ms[0].Buf)
	if err != nil {
		return 0, c.opErr("read", err)
	}
	ms[0].N, ms[0].Addr = n, ap
	i := 1
	c.rmu.Lock()
	for ; i < len(ms); i++ {
		n, ap, ok := c.dequeue(ms[i].Buf)
		if !ok {
			break
		}
		ms[i].N, ms[i].Addr = n, ap
	}
	c.rmu.Unlock()
	return i, nil
}

// WriteBatch writes the datagrams of ms and returns how many it wrote; it
// stops at the first error.
func (c *UDPConn) WriteBatch(ms []Message) (int, error) {
	for i := range ms {
		to := ms[i].Addr
		if c.raddr.IsValid() {
			to = c.raddr
		}
		if _, err := c.write(ms[i].Buf, to); err != nil {
			return i, c.opErr("write", err)
		}
	}
	return len(ms), nil
}

func (c *UDPConn) opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errno, ok := err.(syscall.Errno); ok {
		call := "recvfrom"
		if op == "write" {
			call = "sendto"
		}
		err = os.NewSyscallError(call, errno)
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// read blocks until a datagram, an error, Close or the read deadline.
func (c *UDPConn) read(b []byte) (int, netip.AddrPort, error) {
	for {
		c.rmu.Lock()
		n, ap, ok := c.dequeue(b)
		more := ok && c.rwait.Load() > 0 && !c.allEmpty()
		c.rmu.Unlock()
		if ok {
			if more {
				c.notify() // pass the baton to another waiting reader
			}
			return n, ap, nil
		}
		if e := c.softErr.Swap(0); e != 0 {
			return 0, ap, syscall.Errno(e)
		}
		if c.closed() {
			return 0, ap, net.ErrClosed
		}
		dl := c.rdl.wait()
		if closedChan(dl) {
			return 0, ap, os.ErrDeadlineExceeded
		}
		c.rwait.Add(1)
		if c.allEmpty() && c.softErr.Load() == 0 {
			select {
			case <-c.rnote:
			case <-c.done:
			case <-dl:
			}
		}
		c.rwait.Add(-1)
	}
}

func (c *UDPConn) allEmpty() bool {
	rs := c.rings.Load()
	for _, r := range rs.old {
		if !r.empty() {
			return false
		}
	}
	for _, r := range rs.cur {
		if !r.empty() {
			return false
		}
	}
	return true
}

func (c *UDPConn) notify() {
	select {
	case c.rnote <- struct{}{}:
	default:
	}
}

// dequeue takes one datagram from the rings, round robin. Under rmu.
func (c *UDPConn) dequeue(b []byte) (int, netip.AddrPort, bool) {
	var h dgram
	rs := c.rings.Load()
	for _, r := range rs.old {
		if p, ok := r.peek(&h); ok {
			n := copy(b, p)
			r.pop(&h)
			return n, netip.AddrPortFrom(addrFrom16(&h.raddr, h.v6), h.rport), true
		}
	}
	for i := range rs.cur {
		k := (c.next + i) % len(rs.cur)
		r := rs.cur[k]
		p, ok := r.peek(&h)
		if !ok {
			continue
		}
		n := copy(b, p)
		r.pop(&h)
		c.next = k + 1
		return n, netip.AddrPortFrom(addrFrom16(&h.raddr, h.v6), h.rport), true
	}
	return 0, netip.AddrPort{}, false
}

// deliver queues a received datagram; it runs on shard i. It reports false
// when the receive buffer is full.
func (c *UDPConn) deliver(i int, h *dgram, payload []byte) bool {
	if !c.rings.Load().cur[i].push(h, payload, nil) {
		c.rxDropped.Add(1)
		return false
	}
	c.rxDatagrams.Add(1)
	c.rxBytes.Add(uint64(len(payload)))
	if c.rwait.Load() > 0 {
		c.notify()
	}
	return true
}

// setSoftErr records an error an ICMP message reported (connected
// sockets): the next read returns it, like Linux's ECONNREFUSED.
func (c *UDPConn) setSoftErr(e syscall.Errno) {
	c.softErr.Store(int32(e))
	c.notify()
}

// WriteTo sends b to addr (a *net.UDPAddr, or a net.Addr whose String is
// host:port).
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var to netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		to = a.AddrPort()
	case nil:
		return 0, c.opErr("write", errors.New("missing address"))
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return 0, c.opErr("write", err)
		}
		to = ap
	}
	if c.raddr.IsValid() {
		return 0, c.opErr("write", syscall.EISCONN)
	}
	n, err := c.write(b, to)
	return n, c.opErr("write", err)
}

// WriteToUDPAddrPort is WriteTo without the net.Addr.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if c.raddr.IsValid() {
		return 0, c.opErr("write", syscall.EISCONN)
	}
	n, err := c.write(b, to)
	return n, c.opErr("write", err)
}

// Write sends b to the connected peer.
func (c *UDPConn) Write(b []byte) (int, error) {
	if !c.raddr.IsValid() {
		return 0, c.opErr("write", syscall.EDESTADDRREQ)
	}
	n, err := c.write(b, c.raddr)
	return n, c.opErr("write", err)
}

func (c *UDPConn) write(b []byte, to netip.AddrPort) (int, error) {
	if c.closed() {
		return 0, net.ErrClosed
	}
	if e := c.softErr.Swap(0); e != 0 && c.raddr.IsValid() {
		return 0, syscall.Errno(e)
	}
	dst := to.Addr().Unmap()
	if !dst.IsValid() || to.Port() == 0 {
		return 0, syscall.EINVAL
	}
	v6 := !dst.Is4()
	if v6 && !c.v6 || !v6 && !c.v4 {
		return 0, syscall.EAFNOSUPPORT
	}
	if v6 && len(b) > maxUDPPayload6 || !v6 && len(b) > maxUDPPayload4 {
		return 0, syscall.EMSGSIZE
	}
	if dst.IsUnspecified() || dst.IsLoopback() {
		return 0, syscall.EINVAL
	}
	st := c.st
	r, ok := st.routes.Lookup(dst)
	if !ok {
		return 0, syscall.ENETUNREACH
	}
	h := dgram{n: len(b), rport: to.Port(), lport: c.laddr.Port(), v6: v6}
	src := c.laddr.Addr()
	if !src.IsValid() {
		if src, ok = st.source(r, dst); !ok {
			return 0, syscall.EADDRNOTAVAIL
		}
	}
	h.raddr = addr16(dst)
	h.laddr = addr16(src)
	h.nexthop = addr16(route.NextHop(r, dst))
	s := st.shardFor(r.Port, &h.laddr, &h.raddr, h.lport, h.rport)
	if s == nil {
		return 0, syscall.ENETUNREACH
	}
	if err := s.queue(&h, b, &c.wdl, c.done); err != nil {
		return 0, err
	}
	c.txDatagrams.Add(1)
	c.txBytes.Add(uint64(len(b)))
	return len(b), nil
}

// deadline is a settable deadline whose channel is closed when it passes
// or changes, so that blocked callers can select on it (net.Pipe's
// approach). Setting it allocates; waiting does not.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed when the deadline passed or was changed
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

// set arms the deadline (zero t: none). Waiters wake up and re-read it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	old := d.ch
	d.ch = make(chan struct{})
	if !t.IsZero() {
		if dur := time.Until(t); dur <= 0 {
			close(d.ch)
		} else {
			ch := d.ch
			d.timer = time.AfterFunc(dur, func() {
				d.mu.Lock()
				if d.ch == ch {
					close(ch)
				}
				d.mu.Unlock()
			})
		}
	}
	// Wake waiters on the old deadline: they see a closed channel, find
	// it was not an expiry by re-reading, and wait on the new one.
	select {
	case <-old:
	default:
		close(old)
	}
}

// wait returns a channel closed when the current deadline passes or is
// changed: a caller woken by it calls wait again, and the deadline has
// passed if that channel is closed too.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	ch := d.ch
	d.mu.Unlock()
	return ch
}

func closedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// UDPHandler serves the datagrams to a port on the shard that receives
// them, without a socket: run-to-completion, no copy into a receive ring,
// no goroutine to wake. It must not block or keep the request (or its
// Payload) after it returns. Built-in services (echo) and users who want
// the last microsecond use it; everyone else uses UDPConn.
type UDPHandler interface {
	ServeUDP(r *UDPRequest)
}

// UDPHandlerFunc adapts a function to UDPHandler.
type UDPHandlerFunc func(r *UDPRequest)

// ServeUDP calls f.
func (f UDPHandlerFunc) ServeUDP(r *UDPRequest) { f(r) }

// UDPRequest is a datagram given to a UDPHandler. It is valid only during
// ServeUDP.
type UDPRequest struct {
	From    netip.AddrPort // the sender
	To      netip.AddrPort // our address and port it was sent to
	Payload []byte         // views the frame (or the reassembly buffer)

	s    *Shard
	p    *pkt
	u    []byte // the UDP datagram (header and payload)
	sent bool   // the frame itself went out as the reply
}

// Echo sends the datagram back to its sender: in place (addresses and
// ports swapped, the frame retransmitted: no copy, and the checksums stay
// valid since the sums do not depend on the order of the swapped words)
// when it arrived whole, else through the output path.
func (r *UDPRequest) Echo() {
	s, p := r.s, r.p
	if p.f == nil || !p.whole || r.sent || !s.replyMACs(p.eth) {
		r.Reply(r.Payload)
		return
	}
	if p.v6 {
		ip := proto.IPv6(p.hdr[:len(p.hdr)+len(p.data)])
		ip.SetSrc(p.dst)
		ip.SetDst(p.src)
		ip.SetHopLimit(DefaultTTL)
	} else {
		ip := proto.IPv4(p.hdr[:len(p.hdr)+len(p.data)])
		ip.SetSrc([4]byte(p.dst[:4]))
		ip.SetDst([4]byte(p.src[:4]))
		word := uint16(ip.TTL())<<8 | uint16(ip.Protocol())
		ip.SetTTL(DefaultTTL)
		ip.SetChecksum(proto.ChecksumUpdate16(ip.Checksum(), word, uint16(DefaultTTL)<<8|uint16(ip.Protocol())))
	}
	u := proto.UDP(r.u)
	sp, dp := u.SrcPort(), u.DstPort()
	u.SetSrcPort(dp)
	u.SetDstPort(sp)
	f := p.f
	f.Data = f.Data[:proto.EthernetLen+len(p.hdr)+len(p.data)]
	r.sent = true
	s.stats.UDPTx++
	s.send(f)
}

// Reply sends b to the sender from the address and port the request was
// sent to, through the output path (routed, fragmented as needed; b is
// copied).
func (r *UDPRequest) Reply(b []byte) {
	s := r.s
	if len(b) > maxUDPPayload6 || !r.p.v6 && len(b) > maxUDPPayload4 {
		return
	}
	h := dgram{n: len(b), rport: r.From.Port(), lport: r.To.Port(), v6: r.p.v6, raddr: r.p.src, laddr: r.p.dst}
	var hop [16]byte
	if r.p.v6 {
		rt, ok := s.st.routes.Lookup6(h.raddr)
		if !ok {
			s.stats.NoRoute++
			return
		}
		hop = addr16(route.NextHop(rt, netip.AddrFrom16(h.raddr)))
	} else {
		rt, ok := s.st.routes.Lookup4([4]byte(h.raddr[:4]))
		if !ok {
			s.stats.NoRoute++
			return
		}
		hop = addr16(route.NextHop(rt, netip.AddrFrom4([4]byte(h.raddr[:4]))))
	}
	h.nexthop = hop
	s.outputUDP(s.now, &h, b)
}

// HandleUDP serves the datagrams to port (on every address of the stack,
// both families) with h on the shards. It fails with EADDRINUSE when a
// socket or another handler has the port. The returned function removes
// the handler.
func (st *Stack) HandleUDP(port uint16, h UDPHandler) (remove func(), err error) {
	if port == 0 || h == nil {
		return nil, syscall.EINVAL
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.socks.Load().clone()
	for k := range t.bound {
		if k.port == port {
			return nil, syscall.EADDRINUSE
		}
	}
	if _, used := t.handlers[port]; used {
		return nil, syscall.EADDRINUSE
	}
	t.handlers[port] = h
	st.socks.Store(t)
	return func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		t := st.socks.Load().clone()
		delete(t.handlers, port)
		st.socks.Store(t)
	}, nil
}
