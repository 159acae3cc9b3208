package link

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/pipeline"
)

// PacketOptions configure an AF_PACKET link.
type PacketOptions struct {
	// Port is the Frame.InPort of received frames.
	Port uint16
	// HardwareAddr and MTU are the interface's when zero.
	HardwareAddr [6]byte
	MTU          int
	// Buffers is the number of frame buffers (default 1024).
	Buffers int
	// Batch is the most frames one recvmmsg or sendmmsg moves (default 64).
	Batch int
	// Headroom is free space before Data in every buffer.
	Headroom int
	// SocketBuffer sets SO_RCVBUF and SO_SNDBUF (default 4 MiB; the
	// FORCE variants are tried first, so root is not capped by
	// net.core.rmem_max).
	SocketBuffer int
}

// Packet is the AF_PACKET fallback link for hosts without XDP: a SOCK_RAW
// packet socket bound to one interface (ETH_P_ALL) with
// PACKET_IGNORE_OUTGOING, so it does not see its own transmits.
//
// I/O is batched: Receive is one recvmmsg(2) and Flush one sendmmsg(2) per
// Batch frames, issued as raw system calls because x/sys has the Mmsghdr
// type but no wrappers. Frames live in the link's own buffer slab: the
// kernel copies into and out of it, nothing is allocated per packet.
//
// The kernel stack keeps receiving every frame too: AF_PACKET taps the
// interface, it does not claim frames. A stack running on this link must
// own addresses the kernel does not have on that interface (otherwise the
// kernel answers too: ARP replies, TCP resets, ICMP port unreachable), or
// the host must drop them for the kernel, for example with an nftables
// rule in the ingress or input hook for the stack's addresses. The link
// configures neither.
//
// Offloads: frames the kernel merged (GRO/LRO) can be larger than the MTU
// and are dropped as RxTooBig when they do not fit a buffer; turn GRO and
// LRO off on the interface. VLAN tags the NIC stripped are not restored.
// Frames a local sender passes with CHECKSUM_PARTIAL carry an incomplete
// checksum (DESIGN.md section 5).
type Packet struct {
	fd       int
	ifindex  int
	slab     *slab
	port     uint16
	mac      [6]byte
	mtu      int
	maxFrame int
	rxMsgs   []unix.Mmsghdr
	rxIov    []unix.Iovec
	rxBuf    []uint32
	txMsgs   []unix.Mmsghdr
	txIov    []unix.Iovec
	txBuf    []uint32
	ntx      int
	poll     *poller
	closed   bool
	c        counters
	kdrops   atomic.Uint64 // PACKET_STATISTICS tp_drops, summed (reading resets them)
}

// NewPacket opens a packet socket on the interface named ifname, in the
// network namespace of the calling thread.
func NewPacket(ifname string, opts PacketOptions) (*Packet, error) {
	if opts.Buffers == 0 {
		opts.Buffers = 1024
	}
	if opts.Batch == 0 {
		opts.Batch = 64
	}
	if opts.SocketBuffer == 0 {
		opts.SocketBuffer = 4 << 20
	}
	if opts.Batch < 0 || opts.Batch > 1024 || opts.SocketBuffer < 0 {
		return nil, fmt.Errorf("packet link options %+v: %w", opts, ErrBadOptions)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("packet link: %w", err)
	}
	if opts.HardwareAddr == [6]byte{} {
		if len(ifi.HardwareAddr) != 6 {
			return nil, fmt.Errorf("packet link: %s has no Ethernet address: %w", ifname, ErrBadOptions)
		}
		opts.HardwareAddr = [6]byte(ifi.HardwareAddr)
	}
	if opts.MTU == 0 {
		opts.MTU = ifi.MTU
	}
	l := &Packet{
		ifindex:  ifi.Index,
		port:     opts.Port,
		mac:      opts.HardwareAddr,
		mtu:      opts.MTU,
		maxFrame: opts.MTU + MaxHeader,
		rxMsgs:   make([]unix.Mmsghdr, opts.Batch),
		rxIov:    make([]unix.Iovec, opts.Batch),
		rxBuf:    make([]uint32, opts.Batch),
		txMsgs:   make([]unix.Mmsghdr, opts.Batch),
		txIov:    make([]unix.Iovec, opts.Batch),
		txBuf:    make([]uint32, opts.Batch),
	}
	if l.slab, err = newSlab(opts.Buffers, opts.Buffers, l.maxFrame, opts.Headroom); err != nil {
		return nil, err
	}
	for i := range opts.Batch {
		l.rxMsgs[i].Hdr.Iov = &l.rxIov[i]
		l.rxMsgs[i].Hdr.SetIovlen(1)
		l.txMsgs[i].Hdr.Iov = &l.txIov[i]
		l.txMsgs[i].Hdr.SetIovlen(1)
	}
	// Protocol 0 receives nothing until bind names the interface, so no
	// frame of another interface slips in between.
	l.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	if err := l.setup(opts); err != nil {
		unix.Close(l.fd)
		return nil, err
	}
	if l.poll, err = newPoller(l.fd); err != nil {
		unix.Close(l.fd)
		return nil, err
	}
	return l, nil
}

func (l *Packet) setup(opts PacketOptions) error {
	if err := unix.SetsockoptInt(l.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fmt.Errorf("PACKET_IGNORE_OUTGOING (Linux 4.20+): %w", err)
	}
	for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
		if unix.SetsockoptInt(l.fd, unix.SOL_SOCKET, o[0], opts.SocketBuffer) != nil {
			if err := unix.SetsockoptInt(l.fd, unix.SOL_SOCKET, o[1], opts.SocketBuffer); err != nil {
				return fmt.Errorf("socket buffer size %d: %w", opts.SocketBuffer, err)
			}
		}
	}
	proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8 // network byte order
	if err := unix.Bind(l.fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: l.ifindex}); err != nil {
		return fmt.Errorf("bind packet socket to ifindex %d: %w", l.ifindex, err)
	}
	return nil
}

// Receive implements Link: one recvmmsg for up to min(len(frames), Batch)
// frames.
func (l *Packet) Receive(frames []pipeline.Frame) int {
	if l.closed {
		return 0
	}
	k := min(len(frames), len(l.rxMsgs), len(l.slab.free[poolRx]))
	if k == 0 {
		return 0
	}
	room := l.slab.size - l.slab.headroom
	for i := range k {
		b, _ := l.slab.get(poolRx)
		l.rxBuf[i] = b
		l.rxIov[i].Base = &l.slab.mem[int(b)*l.slab.size+l.slab.headroom]
		l.rxIov[i].SetLen(room)
		l.rxMsgs[i].Hdr.Flags = 0
	}
	n, err := recvmmsg(l.fd, l.rxMsgs[:k], unix.MSG_DONTWAIT)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.c.local[cRxError]++
	}
	out := 0
	var nb uint64
	for i := range n {
		b, m := l.rxBuf[i], &l.rxMsgs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			l.c.local[cRxTooBig]++
			l.slab.put(b)
			continue
		}
		frames[out] = l.slab.frame(b, int(m.Len))
		frames[out].InPort = l.port
		nb += uint64(m.Len)
		out++
	}
	for i := k - 1; i >= n; i-- { // unused, back in the order they came
		l.slab.put(l.rxBuf[i])
	}
	l.c.local[cRxFrames] += uint64(out)
	l.c.local[cRxBytes] += nb
	l.c.publish()
	return out
}

// Release implements Link.
func (l *Packet) Release(frames []pipeline.Frame) {
	for i := range frames {
		l.slab.release(&frames[i])
	}
}

// Alloc implements Link.
func (l *Packet) Alloc(frames []pipeline.Frame) int {
	if l.closed {
		return 0
	}
	n := 0
	for n < len(frames) {
		b, ok := l.slab.get(poolRx) // one pool: Flush frees transmit buffers at once
		if !ok {
			break
		}
		frames[n] = l.slab.frame(b, 0)
		frames[n].InPort = l.port
		n++
	}
	return n
}

// Transmit implements Link; it flushes by itself every Batch frames.
func (l *Packet) Transmit(frames []pipeline.Frame) int {
	queued := 0
	for i := range frames {
		f := &frames[i]
		b, ok := l.slab.admit(f, l.closed, l.maxFrame, &l.c)
		if !ok {
			continue
		}
		if l.ntx == len(l.txMsgs) {
			l.Flush()
		}
		l.slab.state[b] = bufLink
		l.txBuf[l.ntx] = b
		l.txIov[l.ntx].Base = &f.Data[0]
		l.txIov[l.ntx].SetLen(len(f.Data))
		l.ntx++
		queued++
	}
	l.c.publish()
	return queued
}

// Flush implements Link: sendmmsg until every queued frame is sent or
// refused. The kernel copies the frames, so their buffers are free again
// when it returns.
func (l *Packet) Flush() {
	if l.ntx == 0 {
		return
	}
	for i := 0; i < l.ntx; {
		m, err := sendmmsg(l.fd, l.txMsgs[i:l.ntx], unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			// Socket buffer full: the rest would fail the same way.
			l.c.local[cTxQueueFull] += uint64(l.ntx - i)
			i = l.ntx
		case err == unix.ENOBUFS:
			l.c.local[cTxQueueFull]++ // the device queue dropped this one
			i++
		case err != nil:
			l.c.local[cTxError]++ // e.g. EMSGSIZE, ENETDOWN: this frame only
			i++
		default:
			for _, msg := range l.txMsgs[i : i+m] {
				l.c.local[cTxBytes] += uint64(msg.Len)
			}
			l.c.local[cTxFrames] += uint64(m)
			i += m
		}
	}
	for _, b := range l.txBuf[:l.ntx] {
		l.slab.put(b)
	}
	l.ntx = 0
	l.c.publish()
}

// Wait implements Link.
func (l *Packet) Wait(timeout time.Duration) error {
	if l.closed {
		return ErrClosed
	}
	_, err := l.poll.wait(timeout)
	return err
}

// Wake implements Link.
func (l *Packet) Wake() { l.poll.wake() }

// HardwareAddr implements Link.
func (l *Packet) HardwareAddr() [6]byte { return l.mac }

// MTU implements Link.
func (l *Packet) MTU() int { return l.mtu }

// Stats implements Link. RxKernel counts frames the kernel dropped because
// the socket's receive buffer was full (PACKET_STATISTICS).
func (l *Packet) Stats() Stats {
	s := l.c.snapshot()
	l.poll.mu.RLock()
	if !l.poll.shut {
		l.readKernelDrops()
	}
	l.poll.mu.RUnlock()
	s.RxKernel = l.kdrops.Load()
	s.sum()
	return s
}

func (l *Packet) readKernelDrops() {
	if st, err := unix.GetsockoptTpacketStats(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		l.kdrops.Add(uint64(st.Drops))
	}
}

// Buffers returns how many buffers are free and how many the link has.
// Owner only.
func (l *Packet) Buffers() (free, total int) { return l.slab.nfree(), l.slab.total() }

// Close implements Link. Frames queued and not flushed are discarded.
func (l *Packet) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	for _, b := range l.txBuf[:l.ntx] {
		l.slab.put(b)
	}
	l.ntx = 0
	l.c.publish()
	l.poll.mu.Lock()
	l.readKernelDrops()
	l.poll.mu.Unlock()
	err := l.poll.close()
	if e := unix.Close(l.fd); err == nil {
		err = e
	}
	return err
}

var _ Link = (*Packet)(nil)
