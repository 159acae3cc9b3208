package link

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/xsk"
)

// XSKOptions configure an AF_XDP link.
type XSKOptions struct {
	// Port is the Frame.InPort of received frames.
	Port uint16
	// HardwareAddr and MTU are the interface's; when zero, NewXSK reads
	// them from the socket's interface, looked up by index in the network
	// namespace of the calling thread.
	HardwareAddr [6]byte
	MTU          int
	// Headroom is free space before Data in frames from Alloc.
	Headroom int
	// TxReserve frames are kept out of the fill ring so that Alloc finds
	// buffers even while the kernel holds every other frame for receiving
	// (default: 64, at most a quarter of the pool).
	TxReserve int
	// Batch bounds the frames one Receive returns (default 64).
	Batch int
	// TxQueue bounds the frames queued between Flushes; Transmit flushes
	// when the queue is full (default 256).
	TxQueue int
	// DrainTimeout bounds how long Close waits for the kernel to complete
	// frames in flight (default 100 ms).
	DrainTimeout time.Duration
}

// XSK is the AF_XDP link: one xsk.Socket, bound to one queue of one port.
//
// Received frames are views of UMEM frames (no copy). Their buffers come
// from the socket's xsk.FramePool and return to it: Release puts them back,
// Transmit hands them to the tx ring, and the completion ring gives them
// back to the pool. Alloc takes frames from a small reserve (TxReserve)
// that Receive tops up from the pool before it refills the fill ring, so
// that a link whose fill ring holds all free frames can still transmit.
//
// The link owns the socket: Close drains it and closes it. Sockets that
// share a FramePool (several ports or queues of one worker) must be driven
// by the same goroutine, as package xsk requires; a frame received on one
// may be transmitted on another (same UMEM: the descriptor moves).
type XSK struct {
	sock     *xsk.Socket
	pool     *xsk.FramePool
	umem     *xsk.UMEM
	mem      []byte
	fsize    uint64
	headroom uint64
	port     uint16
	mac      [6]byte
	mtu      int
	maxFrame int
	descs    []xsk.Desc
	txq      []xsk.Desc
	reserve  []uint64
	drain    time.Duration
	poll     *poller
	closed   bool
	c        counters

	lastKernel atomic.Uint64 // kernel drops, read at Close
}

// NewXSK wraps a bound socket and fills its fill ring. The caller registers
// the socket in its XSKMAP; the link takes ownership of the socket itself.
// Call NewXSK on the goroutine that will own the link.
func NewXSK(sock *xsk.Socket, opts XSKOptions) (*XSK, error) {
	u := sock.UMEM()
	if opts.Batch == 0 {
		opts.Batch = 64
	}
	if opts.TxQueue == 0 {
		opts.TxQueue = 256
	}
	if opts.TxReserve == 0 {
		opts.TxReserve = min(64, sock.Pool().Total()/4)
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 100 * time.Millisecond
	}
	if opts.Batch < 0 || opts.TxQueue < 0 || opts.TxReserve < 0 || opts.TxReserve > sock.Pool().Total() ||
		opts.Headroom < 0 || opts.Headroom >= u.FrameSize()-64 {
		return nil, fmt.Errorf("xsk link options %+v: %w", opts, ErrBadOptions)
	}
	if opts.HardwareAddr == [6]byte{} || opts.MTU == 0 {
		ifi, err := net.InterfaceByIndex(sock.Ifindex())
		if err != nil {
			return nil, fmt.Errorf("xsk link: %w", err)
		}
		if opts.HardwareAddr == [6]byte{} {
			if len(ifi.HardwareAddr) != 6 {
				return nil, fmt.Errorf("xsk link: %s has no Ethernet address: %w", ifi.Name, ErrBadOptions)
			}
			opts.HardwareAddr = [6]byte(ifi.HardwareAddr)
		}
		if opts.MTU == 0 {
			opts.MTU = ifi.MTU
		}
	}
	p, err := newPoller(sock.FD())
	if err != nil {
		return nil, err
	}
	l := &XSK{
		sock:     sock,
		pool:     sock.Pool(),
		umem:     u,
		mem:      u.Memory(),
		fsize:    uint64(u.FrameSize()),
		headroom: uint64(opts.Headroom),
		port:     opts.Port,
		mac:      opts.HardwareAddr,
		mtu:      opts.MTU,
		maxFrame: min(opts.MTU+MaxHeader, u.FrameSize()),
		descs:    make([]xsk.Desc, opts.Batch),
		txq:      make([]xsk.Desc, 0, opts.TxQueue),
		reserve:  make([]uint64, 0, opts.TxReserve),
		drain:    opts.DrainTimeout,
		poll:     p,
	}
	l.refill() // the kernel can receive before the first Receive or Wait
	return l, nil
}

// Socket returns the link's socket (for its statistics and frame
// accounting).
func (l *XSK) Socket() *xsk.Socket { return l.sock }

// Reserved is the number of frames in the transmit reserve.
func (l *XSK) Reserved() int { return len(l.reserve) }

// refill tops up the transmit reserve, then gives the kernel every other
// free frame.
func (l *XSK) refill() {
	for len(l.reserve) < cap(l.reserve) {
		a, ok := l.pool.Get()
		if !ok {
			break
		}
		l.reserve = append(l.reserve, a)
	}
	l.sock.Refill()
}

// Receive implements Link.
func (l *XSK) Receive(frames []pipeline.Frame) int {
	if l.closed {
		return 0
	}
	l.refill()
	// One pass from the rx ring to the frames (see xsk.Socket.RxPeek).
	idx, got := l.sock.RxPeek(min(len(frames), len(l.descs)))
	if got == 0 {
		l.sock.WakeupFill()
		return 0
	}
	var nb uint64
	n := 0
	for i := range got {
		d, ok := l.sock.RxDesc(idx + i)
		if !ok {
			continue
		}
		end := l.umem.FrameBase(d.Addr) + l.fsize
		frames[n] = pipeline.Frame{Data: l.mem[d.Addr : d.Addr+uint64(d.Len) : end], Addr: d.Addr, InPort: l.port}
		nb += uint64(d.Len)
		n++
	}
	l.sock.RxRelease(uint32(n))
	if n == 0 {
		return 0
	}
	l.c.local[cRxFrames] += uint64(n)
	l.c.local[cRxBytes] += nb
	l.c.publish()
	return n
}

// Release implements Link.
func (l *XSK) Release(frames []pipeline.Frame) {
	for i := range frames {
		l.pool.Put(frames[i].Addr)
	}
}

func (l *XSK) getTx() (uint64, bool) {
	if n := len(l.reserve); n > 0 {
		a := l.reserve[n-1]
		l.reserve = l.reserve[:n-1]
		return a, true
	}
	return l.pool.Get()
}

// Alloc implements Link. When the reserve and the pool are empty it first
// takes back completed transmits.
func (l *XSK) Alloc(frames []pipeline.Frame) int {
	if l.closed {
		return 0
	}
	n := 0
	reaped := false
	for n < len(frames) {
		base, ok := l.getTx()
		if !ok {
			if reaped || l.sock.Complete(len(frames)-n) == 0 {
				break
			}
			reaped = true
			continue
		}
		a := base + l.headroom
		frames[n] = pipeline.Frame{Data: l.mem[a:a:(base + l.fsize)], Addr: a, InPort: l.port}
		n++
	}
	return n
}

// Transmit implements Link.
func (l *XSK) Transmit(frames []pipeline.Frame) int {
	queued := 0
	for i := range frames {
		f := &frames[i]
		// Ours when Data views the UMEM at Addr; anything else is not ours
		// to free (and freeing it could free a frame still in use).
		if !l.umem.Valid(f.Addr, 0) || cap(f.Data) == 0 || &f.Data[:1][0] != &l.mem[f.Addr] {
			l.c.local[cTxInvalid]++
			continue
		}
		if l.closed {
			l.c.local[cTxDown]++
			l.pool.Put(f.Addr)
			continue
		}
		n := len(f.Data)
		if n == 0 || n > l.maxFrame || !l.umem.Valid(f.Addr, uint32(n)) {
			l.c.local[cTxInvalid]++
			l.pool.Put(f.Addr)
			continue
		}
		if len(l.txq) == cap(l.txq) {
			l.Flush()
		}
		l.txq = append(l.txq, xsk.Desc{Addr: f.Addr, Len: uint32(n)})
		queued++
	}
	l.c.publish()
	return queued
}

// Flush implements Link: one Socket.Transmit (which kicks the kernel when it
// asks) and a pass over the completion ring.
func (l *XSK) Flush() {
	if len(l.txq) > 0 {
		k := l.sock.Transmit(l.txq)
		var nb uint64
		for _, d := range l.txq[:k] {
			nb += uint64(d.Len)
		}
		for _, d := range l.txq[k:] {
			l.pool.Put(d.Addr)
		}
		l.c.local[cTxFrames] += uint64(k)
		l.c.local[cTxBytes] += nb
		l.c.local[cTxQueueFull] += uint64(len(l.txq) - k)
		l.txq = l.txq[:0]
		l.c.publish()
	}
	l.sock.Complete(1 << 16)
}

// Wait implements Link: poll() on the socket and the wakeup eventfd, after
// refilling the fill ring so the kernel can receive while we sleep.
func (l *XSK) Wait(timeout time.Duration) error {
	if l.closed {
		return ErrClosed
	}
	l.refill()
	l.sock.Complete(1 << 16)
	_, err := l.poll.wait(timeout)
	return err
}

// Wake implements Link.
func (l *XSK) Wake() { l.poll.wake() }

// HardwareAddr implements Link.
func (l *XSK) HardwareAddr() [6]byte { return l.mac }

// MTU implements Link.
func (l *XSK) MTU() int { return l.mtu }

// Stats implements Link. RxInvalid comes from the socket's counters and
// RxKernel from XDP_STATISTICS (rx_dropped + rx_ring_full +
// rx_invalid_descs).
func (l *XSK) Stats() Stats {
	s := l.c.snapshot()
	s.RxInvalid = l.sock.Stats().RxInvalid
	l.poll.mu.RLock()
	if !l.poll.shut {
		s.RxKernel = l.kernelDrops()
	} else {
		s.RxKernel = l.lastKernel.Load()
	}
	l.poll.mu.RUnlock()
	s.sum()
	return s
}

func (l *XSK) kernelDrops() uint64 {
	ks, err := l.sock.KernelStats()
	if err != nil {
		return l.lastKernel.Load()
	}
	return ks.RxDropped + ks.RxRingFull + ks.RxInvalidDescs
}

// Drain returns to the pool every frame the link holds that the kernel does
// not: frames queued but not flushed, frames waiting in the rx ring, frames
// in flight on the tx ring (it waits up to DrainTimeout for their
// completions) and the transmit reserve. Afterwards pool.Len() +
// Socket().InKernel() == pool.Total() when the caller holds no frames, and
// the kernel holds only frames in the fill ring (and, in copy mode, those
// it kept for dropped packets). Close calls it.
func (l *XSK) Drain() {
	for _, d := range l.txq {
		l.pool.Put(d.Addr)
	}
	l.txq = l.txq[:0]
	for {
		n := l.sock.Receive(l.descs)
		for _, d := range l.descs[:n] {
			l.pool.Put(d.Addr)
		}
		if n == 0 {
			break
		}
	}
	deadline := time.Now().Add(l.drain)
	for {
		l.sock.Complete(1 << 16)
		st := l.sock.Stats()
		if st.TxFrames <= st.Completed+st.CompInvalid || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	for _, a := range l.reserve {
		l.pool.Put(a)
	}
	l.reserve = l.reserve[:0]
}

// Close implements Link: it drains the link and closes the socket.
func (l *XSK) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	l.Drain()
	l.c.publish()
	l.poll.mu.Lock()
	l.lastKernel.Store(l.kernelDrops())
	l.poll.mu.Unlock()
	err := l.poll.close()
	if e := l.sock.Close(); err == nil {
		err = e
	}
	return err
}

var _ Link = (*XSK)(nil)
