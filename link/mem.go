package link

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/link/fault"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/sched"
)

// MemOptions configure a memory link pair.
type MemOptions struct {
	// MTU is the largest IP packet; frames may be MTU+MaxHeader bytes.
	MTU int
	// HardwareAddrs are the addresses of endpoints A and B.
	HardwareAddrs [2][6]byte
	// Buffers is the number of buffers each endpoint owns; RxBuffers of
	// them (0: half) only ever receive, the others are what Alloc hands
	// out. Frames held by the fault injector take receive buffers, so a
	// Faults.HoldLimit of 0 becomes RxBuffers/2 here.
	Buffers   int
	RxBuffers int
	// RingSize is the number of frames the wire holds in each direction, a
	// power of two (0: Buffers rounded up). With RingSize >= Buffers the
	// wire never overflows: a sender runs out of buffers first.
	RingSize int
	// Headroom is free space before Data in every buffer.
	Headroom int
	// Ports are the Frame.InPort values of A's and B's frames.
	Ports [2]uint16
	// Faults, if set, is applied to each direction: to frames from A to B
	// with Faults.Seed and to frames from B to A with Faults.Seed+1, so the
	// two directions make independent decisions.
	Faults *fault.Config
	// Clock is the fault injectors' clock (default time.Now). Wait turns
	// its deadlines into real sleeps, so a fake clock should move with the
	// real one or tests should not Wait on held frames.
	Clock func() time.Time
}

// DefaultMemOptions returns a pair with a 1500-byte MTU, 2048 buffers per
// endpoint (so 1024 for receiving and a 2048-frame wire), locally
// administered addresses 02:00:00:00:00:01 (A) and 02:00:00:00:00:02 (B),
// and no faults. NewMemPair fills in these values for zero fields.
func DefaultMemOptions() MemOptions {
	return MemOptions{
		MTU:           1500,
		HardwareAddrs: [2][6]byte{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}},
		Buffers:       2048,
	}
}

// wireDesc is a frame on the wire: where it is in the sender's slab.
type wireDesc struct {
	addr uint64
	len  uint32
	buf  uint32
}

// Mem is one endpoint of an in-memory link (NewMemPair).
//
// Each endpoint owns a slab of buffers. A frame A transmits stays in A's
// buffer while it is on the wire (an SPSC ring from A to B). When B receives
// it, B copies it into one of its own buffers (that copy is the wire's
// transfer) and returns A's buffer to A through a second SPSC ring, so a
// buffer is only ever written by its owner and ownership never crosses.
// Faults apply to B's copy, on B's goroutine, at Receive: delayed and
// reordered frames are held in B's buffers and released by B's Receive,
// whose Wait wakes up in time for them.
//
// A and B may run on two goroutines, one each (the usual case), or both on
// one.
type Mem struct {
	peer     *Mem
	mac      [6]byte
	mtu      int
	maxFrame int
	port     uint16
	slab     *slab
	out      *sched.SPSC[wireDesc] // our frames to the peer; we produce
	back     *sched.SPSC[uint32]   // our buffers returned by the peer; we consume
	txq      []wireDesc
	rxd      []wireDesc
	ret      []uint32
	batch    []pipeline.Frame
	ready    frameQueue
	inj      *fault.Injector
	clock    func() time.Time
	deliver  func(pipeline.Frame)
	dropped  func(pipeline.Frame, fault.Reason)
	allocDup func() (pipeline.Frame, bool)
	isClosed bool // owner's view
	c        counters

	wakeCh   chan struct{}
	timer    *time.Timer
	sleeping atomic.Bool // in Wait: the peer wakes us after Flush
	starved  atomic.Bool // Alloc came up short: the peer wakes us after returning buffers
	closed   atomic.Bool // the peer's view
}

const memBatch = 256

// NewMemPair returns two endpoints joined by an in-memory wire.
func NewMemPair(opts MemOptions) (a, b *Mem, err error) {
	d := DefaultMemOptions()
	if opts.MTU == 0 {
		opts.MTU = d.MTU
	}
	if opts.HardwareAddrs == [2][6]byte{} {
		opts.HardwareAddrs = d.HardwareAddrs
	}
	if opts.Buffers == 0 {
		opts.Buffers = d.Buffers
	}
	if opts.RxBuffers == 0 {
		opts.RxBuffers = opts.Buffers / 2
	}
	if opts.RingSize == 0 {
		opts.RingSize = 1 << bits.Len(uint(opts.Buffers-1))
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MTU < 68 || opts.MTU > 65535 {
		return nil, nil, fmt.Errorf("mtu %d: %w", opts.MTU, ErrBadOptions)
	}
	if opts.Buffers < 2 || opts.Buffers > 1<<20 || opts.RxBuffers < 1 || opts.RxBuffers >= opts.Buffers {
		return nil, nil, fmt.Errorf("buffers %d, %d for receiving: %w", opts.Buffers, opts.RxBuffers, ErrBadOptions)
	}
	a, err = newMem(opts, 0)
	if err != nil {
		return nil, nil, err
	}
	b, err = newMem(opts, 1)
	if err != nil {
		return nil, nil, err
	}
	a.peer, b.peer = b, a
	return a, b, nil
}

func newMem(opts MemOptions, side int) (*Mem, error) {
	m := &Mem{
		mac:      opts.HardwareAddrs[side],
		mtu:      opts.MTU,
		maxFrame: opts.MTU + MaxHeader,
		port:     opts.Ports[side],
		clock:    opts.Clock,
		txq:      make([]wireDesc, 0, memBatch),
		rxd:      make([]wireDesc, memBatch),
		ret:      make([]uint32, 0, memBatch),
		batch:    make([]pipeline.Frame, 0, memBatch),
		wakeCh:   make(chan struct{}, 1),
		timer:    time.NewTimer(time.Hour),
	}
	m.timer.Stop()
	var err error
	if m.slab, err = newSlab(opts.Buffers, opts.RxBuffers, m.maxFrame, opts.Headroom); err != nil {
		return nil, err
	}
	if m.out, err = sched.NewSPSC[wireDesc](opts.RingSize); err != nil {
		return nil, fmt.Errorf("ring size %d: %w: %w", opts.RingSize, ErrBadOptions, err)
	}
	if m.back, err = sched.NewSPSC[uint32](1 << bits.Len(uint(opts.Buffers-1))); err != nil {
		return nil, err
	}
	m.ready.buf = make([]pipeline.Frame, opts.Buffers)
	if opts.Faults != nil && opts.Faults.Enabled() {
		cfg := *opts.Faults
		cfg.Seed += uint64(1 - side) // faults at B act on A→B: Seed; at A: Seed+1
		if cfg.HoldLimit == 0 {
			cfg.HoldLimit = max(1, opts.RxBuffers/2)
		}
		m.allocDup = func() (pipeline.Frame, bool) {
			i, ok := m.slab.get(poolRx)
			if !ok {
				return pipeline.Frame{}, false
			}
			f := m.slab.frame(i, 0)
			f.InPort = m.port
			return f, true
		}
		if m.inj, err = fault.New(cfg, m.allocDup); err != nil {
			return nil, err
		}
		m.deliver = func(f pipeline.Frame) { m.ready.push(f) }
		m.dropped = func(f pipeline.Frame, _ fault.Reason) {
			m.c.local[cRxFault]++
			m.slab.release(&f)
		}
	}
	return m, nil
}

// Receive implements Link.
func (m *Mem) Receive(frames []pipeline.Frame) int {
	if m.isClosed {
		return 0
	}
	n := 0
	if m.inj == nil && m.ready.n == 0 {
		// Fast path: straight from the wire into frames.
		n = m.pull(frames[:min(len(frames), len(m.rxd))])
	} else {
		if want := min(len(frames)-m.ready.n, len(m.rxd)); want > 0 {
			m.pull(frames[:want:want][:0])
		}
		if m.inj != nil && m.inj.Held() > 0 {
			m.inj.Due(m.clock(), m.deliver)
		}
		for n < len(frames) && m.ready.n > 0 {
			frames[n] = m.ready.pop()
			n++
		}
	}
	var nb uint64
	for i := range frames[:n] {
		nb += uint64(len(frames[i].Data))
	}
	m.c.local[cRxFrames] += uint64(n)
	m.c.local[cRxBytes] += nb
	m.c.publish()
	return n
}

// pull takes up to cap(out) frames off the wire, copies them into our
// buffers and gives the peer its buffers back. With len(out) > 0 (no
// faults, nothing ready) the frames go straight into out and pull returns
// how many; otherwise they go through the fault injector, or to ready.
func (m *Mem) pull(out []pipeline.Frame) int {
	k := cap(out)
	direct := len(out) > 0
	if len(m.slab.free[poolRx]) < k {
		m.reclaim() // our received frames that we transmitted come back here
	}
	p := m.peer
	n := p.out.DequeueBatch(m.rxd[:k])
	if n == 0 {
		return 0
	}
	ret := m.ret[:0]
	batch := m.batch[:0]
	got := 0
	for _, d := range m.rxd[:n] {
		ret = append(ret, d.buf)
		i, ok := m.slab.get(poolRx)
		if !ok {
			m.c.local[cRxNoBuffer]++
			continue
		}
		f := m.slab.frame(i, int(d.len))
		copy(f.Data, p.slab.mem[d.addr:d.addr+uint64(d.len)])
		f.InPort = m.port
		switch {
		case direct:
			out[got] = f
			got++
		case m.inj == nil:
			m.ready.push(f)
		default:
			batch = append(batch, f)
		}
	}
	if p.back.EnqueueBatch(ret) != len(ret) {
		panic("link: memory link return ring full") // sized for every buffer the peer has
	}
	if p.starved.Load() && p.starved.CompareAndSwap(true, false) {
		p.Wake()
	}
	if len(batch) > 0 {
		m.inj.Process(m.clock(), batch, m.deliver, m.dropped)
		clear(batch) // no stale views into our buffers
	}
	return got
}

// reclaim takes back our buffers the peer has copied.
func (m *Mem) reclaim() {
	buf := m.ret[:cap(m.ret)]
	for {
		n := m.back.DequeueBatch(buf)
		for _, i := range buf[:n] {
			m.slab.put(i)
		}
		if n < len(buf) {
			return
		}
	}
}

// Release implements Link.
func (m *Mem) Release(frames []pipeline.Frame) {
	for i := range frames {
		m.slab.release(&frames[i])
	}
}

// Alloc implements Link.
func (m *Mem) Alloc(frames []pipeline.Frame) int {
	if m.isClosed {
		return 0
	}
	if len(m.slab.free[poolTx]) < len(frames) {
		m.reclaim()
	}
	n := 0
	for n < len(frames) {
		i, ok := m.slab.get(poolTx)
		if !ok {
			m.starved.Store(true)
			break
		}
		frames[n] = m.slab.frame(i, 0)
		frames[n].InPort = m.port
		n++
	}
	return n
}

// Transmit implements Link. Frames wait in a queue of 256 until Flush, which
// Transmit calls itself when the queue is full.
func (m *Mem) Transmit(frames []pipeline.Frame) int {
	queued := 0
	for i := range frames {
		f := &frames[i]
		b, ok := m.slab.admit(f, m.isClosed, m.maxFrame, &m.c)
		if !ok {
			continue
		}
		if len(m.txq) == cap(m.txq) {
			m.Flush()
		}
		m.slab.state[b] = bufLink
		m.txq = append(m.txq, wireDesc{addr: f.Addr, len: uint32(len(f.Data)), buf: b})
		queued++
	}
	m.c.publish()
	return queued
}

// Flush implements Link: it puts the queued frames on the wire and wakes the
// peer if it waits.
func (m *Mem) Flush() {
	if len(m.txq) == 0 {
		return
	}
	k := 0
	if m.peer.closed.Load() {
		m.c.local[cTxDown] += uint64(len(m.txq))
	} else {
		k = m.out.EnqueueBatch(m.txq)
		m.c.local[cTxQueueFull] += uint64(len(m.txq) - k)
	}
	var nb uint64
	for _, d := range m.txq[:k] {
		nb += uint64(d.len)
	}
	for _, d := range m.txq[k:] {
		m.slab.put(d.buf)
	}
	m.c.local[cTxFrames] += uint64(k)
	m.c.local[cTxBytes] += nb
	m.txq = m.txq[:0]
	m.c.publish()
	if k > 0 && m.peer.sleeping.Load() {
		m.peer.Wake()
	}
}

// Wait implements Link. It also returns when a frame held by the fault
// injector becomes due.
func (m *Mem) Wait(timeout time.Duration) error {
	if m.isClosed {
		return ErrClosed
	}
	if m.ready.n > 0 || m.peer.out.Len() > 0 {
		return nil
	}
	if m.inj != nil {
		if next, ok := m.inj.Next(); ok {
			d := next.Sub(m.clock())
			if d <= 0 {
				return nil
			}
			if timeout < 0 || d < timeout {
				timeout = d
			}
		}
	}
	if timeout == 0 {
		return nil
	}
	// Announce that we sleep, then look again: either the peer's Flush
	// sees sleeping (and wakes us), or we see its frames. Go's atomics are
	// sequentially consistent, so one of the two must happen.
	m.sleeping.Store(true)
	defer m.sleeping.Store(false)
	if m.peer.out.Len() > 0 {
		return nil
	}
	if timeout < 0 {
		<-m.wakeCh
		return nil
	}
	m.timer.Reset(timeout)
	select {
	case <-m.wakeCh:
		m.timer.Stop()
	case <-m.timer.C:
	}
	return nil
}

// Wake implements Link; safe for concurrent use, also after Close.
func (m *Mem) Wake() {
	select {
	case m.wakeCh <- struct{}{}:
	default: // a wakeup is already pending
	}
}

// HardwareAddr implements Link.
func (m *Mem) HardwareAddr() [6]byte { return m.mac }

// MTU implements Link.
func (m *Mem) MTU() int { return m.mtu }

// Stats implements Link.
func (m *Mem) Stats() Stats {
	s := m.c.snapshot()
	s.sum()
	return s
}

// FaultStats returns the counters of the fault injector on frames arriving
// here (zero without faults). Safe for concurrent use.
func (m *Mem) FaultStats() fault.Stats {
	if m.inj == nil {
		return fault.Stats{}
	}
	return m.inj.Stats()
}

// Backlog is the number of frames Receive has yet to return or drop: on the
// wire to this endpoint, held by its fault injector, or ready. Owner only.
func (m *Mem) Backlog() int {
	n := m.peer.out.Len() + m.ready.n
	if m.inj != nil {
		n += m.inj.Held()
	}
	return n
}

// Buffers returns how many of the endpoint's buffers are free and how many
// it has, after taking back those the peer has finished with. Owner only (or
// after the owner stopped); with both endpoints closed and every frame
// released, free == total.
func (m *Mem) Buffers() (free, total int) {
	m.reclaim()
	return m.slab.nfree(), m.slab.total()
}

// Close implements Link. Frames queued, held by faults or not yet received
// are discarded (not counted as drops); frames on the wire to this endpoint
// go back to the peer. Close each endpoint on its own goroutine after it
// stops using it; a frame the peer puts on the wire after this endpoint
// closed is counted in the peer's TxDown, except in the short window while
// Close runs, where its buffer is lost to the peer.
func (m *Mem) Close() error {
	if m.isClosed {
		return nil
	}
	m.isClosed = true
	m.closed.Store(true)
	for m.ready.n > 0 {
		f := m.ready.pop()
		m.slab.release(&f)
	}
	if m.inj != nil {
		m.inj.Flush(func(f pipeline.Frame) { m.slab.release(&f) })
	}
	for _, d := range m.txq {
		m.slab.put(d.buf)
	}
	m.txq = m.txq[:0]
	p := m.peer
	for {
		n := p.out.DequeueBatch(m.rxd)
		ret := m.ret[:0]
		for _, d := range m.rxd[:n] {
			ret = append(ret, d.buf)
		}
		p.back.EnqueueBatch(ret)
		if n < len(m.rxd) {
			break
		}
	}
	m.reclaim()
	m.c.publish()
	return nil
}

// frameQueue is a FIFO of frames with room for every buffer of a slab.
type frameQueue struct {
	buf  []pipeline.Frame
	head int
	n    int
}

func (q *frameQueue) push(f pipeline.Frame) {
	if q.n == len(q.buf) {
		panic("link: frame queue overflow") // one entry per buffer: cannot happen
	}
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = f
	q.n++
}

func (q *frameQueue) pop() pipeline.Frame {
	f := q.buf[q.head]
	q.buf[q.head] = pipeline.Frame{}
	q.head++
	if q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	return f
}

var _ Link = (*Mem)(nil)
