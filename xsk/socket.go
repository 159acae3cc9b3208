package xsk

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/internal/counter"
)

// BindMode selects copy or zero-copy operation.
type BindMode int

// Bind modes.
const (
	// BindAuto tries zero-copy and falls back to copy mode when the driver
	// answers EOPNOTSUPP (veth does).
	BindAuto BindMode = iota
	// BindCopy forces copy mode.
	BindCopy
	// BindZeroCopy requires zero-copy and fails where the driver lacks it.
	BindZeroCopy
)

func (m BindMode) String() string {
	switch m {
	case BindAuto:
		return "auto"
	case BindCopy:
		return "copy"
	case BindZeroCopy:
		return "zero-copy"
	}
	return fmt.Sprintf("BindMode(%d)", int(m))
}

// ParseBindMode parses "auto", "copy" or "zc"/"zero-copy".
func ParseBindMode(s string) (BindMode, error) {
	switch s {
	case "auto", "":
		return BindAuto, nil
	case "copy":
		return BindCopy, nil
	case "zc", "zero-copy", "zerocopy":
		return BindZeroCopy, nil
	}
	return 0, fmt.Errorf("bind mode %q (want auto, copy or zero-copy): %w", s, ErrBadOptions)
}

// SocketOptions configure a Socket. Ring sizes are powers of two.
type SocketOptions struct {
	RxSize, TxSize, FillSize, CompSize int
	Bind                               BindMode
	// NoNeedWakeup turns need_wakeup off: then every Transmit kicks the
	// kernel. It is on by default because it saves a syscall per batch.
	NoNeedWakeup bool
	// BusyPoll sets SO_PREFER_BUSY_POLL with BusyPollUsec (SO_BUSY_POLL)
	// and BusyPollBudget (SO_BUSY_POLL_BUDGET).
	BusyPoll       bool
	BusyPollUsec   int
	BusyPollBudget int
	// FillLimit bounds the frames the socket keeps in its fill and rx
	// rings together: Refill stops there even if the fill ring has room.
	// In copy mode the kernel copies every frame into the UMEM on the
	// receiving CPU, and every frame in circulation is another page it
	// writes: a fill ring kept full at 4096 frames made the receive side
	// cost about 1.5 times what 2048 do (TLB misses on the kernel's 4 KiB
	// mapping of the UMEM). Above the rx ring's size, a stalled consumer
	// still shows as rx-ring-full and not as fill-ring-empty. 0 picks
	// RxSize + RxSize/8 in copy mode and FillSize in zero-copy mode, where
	// the driver's descriptor ring holds frames too.
	FillLimit int
}

// DefaultSocketOptions returns 2048-entry rx, tx and completion rings and
// a 4096-entry fill ring (twice the rx ring, as libxdp does, so the kernel
// does not run out of buffers while the worker wakes up; in copy mode the
// fill limit keeps 2304 frames in it and the rx ring), bind mode auto and
// need_wakeup on.
func DefaultSocketOptions() SocketOptions {
	return SocketOptions{RxSize: 2048, TxSize: 2048, FillSize: 4096, CompSize: 2048,
		BusyPollUsec: 20, BusyPollBudget: 64}
}

// Socket options absent from x/sys.
const (
	soPreferBusyPoll  = 69
	soBusyPollBudget  = 70
	bindRetryDeadline = 2 * time.Second
)

// Stats are the counters a Socket keeps in user space. The socket's
// goroutine updates them once per batch (single-writer counters, see
// internal/counter), and any goroutine may read them.
type Stats struct {
	RxFrames      uint64 // valid descriptors received
	TxFrames      uint64 // descriptors placed on the tx ring
	Completed     uint64 // frames back from the completion ring
	RxInvalid     uint64 // rx descriptors outside the UMEM or a frame
	CompInvalid   uint64 // completion addresses outside the UMEM
	TxInvalid     uint64 // descriptors Transmit refused before posting
	TxRingFull    uint64 // descriptors Transmit could not place
	FillSubmitted uint64 // frames handed to the fill ring
	TxKicks       uint64 // sendto() wakeups for TX
	RxWakeups     uint64 // poll()/recvfrom() calls for RX or the fill ring
	RxEmptyPolls  uint64 // Receive calls that found the rx ring empty
	KickErrors    uint64 // sendto() failures other than EAGAIN/EBUSY/ENOBUFS
}

// atomicStats are written by the socket's owner goroutine only
// (single-writer counters: no locked instruction per batch) and read by
// any goroutine.
type atomicStats struct {
	rxFrames, txFrames, completed, rxInvalid, compInvalid, txInvalid, txRingFull,
	fillSubmitted, txKicks, rxWakeups, rxEmptyPolls, kickErrors counter.Counter
}

// KernelStats are the kernel's XDP_STATISTICS for a socket.
type KernelStats struct {
	RxDropped        uint64 // dropped for reasons other than invalid descriptors
	RxInvalidDescs   uint64
	TxInvalidDescs   uint64
	RxRingFull       uint64 // dropped because the rx ring was full
	RxFillRingEmpty  uint64 // times the fill ring was empty when a frame arrived
	TxRingEmptyDescs uint64
}

// Socket is an AF_XDP socket bound to one queue of one interface. It is
// owned by one goroutine (see the package documentation).
type Socket struct {
	fd       int
	umem     *UMEM
	pool     *FramePool
	ifindex  int
	queue    int
	zeroCopy bool
	wakeup   bool // need_wakeup in use
	closed   bool
	txBudget int // frames one sendto() sends in copy mode (0: zero-copy)

	Fill FillRing
	Comp CompRing
	RX   RxRing
	TX   TxRing

	st           atomicStats
	inKern       int64  // frames handed to the kernel and not yet back
	rxKern       int64  // of those, frames given to the fill ring and not yet received
	fillLimit    int64  // Refill keeps rxKern at most this
	rxPeeked     uint32 // taken by RxPeek, not yet released
	txReserved   uint32 // given by TxReserve, not yet submitted
	fillReserved uint32 // given by FillReserve, not yet submitted
	// frames is the UMEM's layout and [poolLo, poolHi) the pool's frames,
	// copied here: the per-frame paths read nothing else of either.
	frames         layout
	poolLo, poolHi uint64
	pollfds        [1]unix.PollFd
	sim            *SimKernel // the simulated kernel of a NewSimSocket socket
}

// NewSocket creates a socket on (ifindex, queue) that takes its frames from
// pool. The first socket on a UMEM registers it; later ones share it
// (XDP_SHARED_UMEM), and then follow the first socket's copy/zero-copy
// mode. Rebinding a queue shortly after closing its socket gives EBUSY for
// a few milliseconds; NewSocket retries for up to two seconds.
func NewSocket(pool *FramePool, ifindex, queue int, opts SocketOptions) (*Socket, error) {
	u := pool.umem
	if err := checkRings(u, opts); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_XDP): %w", err)
	}
	s := newSocket(u, pool)
	s.fd, s.ifindex, s.queue, s.wakeup = fd, ifindex, queue, !opts.NoNeedWakeup
	s.pollfds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	if err := s.setup(opts); err != nil {
		s.unmap()
		unix.Close(fd)
		return nil, err
	}
	u.sockets++
	return s, nil
}

// checkRings refuses ring sizes NewSocket and NewSimSocket cannot use.
func checkRings(u *UMEM, opts SocketOptions) error {
	if u.mem == nil {
		return fmt.Errorf("xsk socket: umem: %w", ErrClosed)
	}
	for _, n := range []int{opts.RxSize, opts.TxSize, opts.FillSize, opts.CompSize} {
		if n < 0 || n&(n-1) != 0 || n > 1<<20 {
			return fmt.Errorf("xsk ring size %d (want a power of two): %w", n, ErrBadOptions)
		}
	}
	if opts.RxSize == 0 && opts.TxSize == 0 {
		return fmt.Errorf("xsk socket needs an rx or a tx ring: %w", ErrBadOptions)
	}
	if opts.FillSize == 0 || opts.CompSize == 0 {
		return fmt.Errorf("xsk socket needs fill and completion rings: %w", ErrBadOptions)
	}
	return nil
}

// fillLimit is how many frames Refill keeps in the fill and rx rings
// together (SocketOptions.FillLimit).
func fillLimit(opts SocketOptions, zeroCopy bool) int64 {
	switch {
	case opts.FillLimit > 0:
		return int64(opts.FillLimit)
	case zeroCopy || opts.RxSize <= 0:
		return int64(opts.FillSize)
	default:
		return int64(min(opts.FillSize, opts.RxSize+opts.RxSize/8))
	}
}

func (s *Socket) setup(opts SocketOptions) error {
	u := s.umem
	shared := u.ownerFD >= 0
	if !shared {
		if err := registerUMEM(s.fd, u.mem, uint32(u.frameSize), u.headroom); err != nil {
			return fmt.Errorf("register umem: %w", err)
		}
	}
	set := func(opt, n int, what string) error {
		if n == 0 {
			return nil
		}
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, opt, n); err != nil {
			return fmt.Errorf("set %s ring size %d: %w", what, n, err)
		}
		return nil
	}
	if err := errors.Join(
		set(unix.XDP_UMEM_FILL_RING, opts.FillSize, "fill"),
		set(unix.XDP_UMEM_COMPLETION_RING, opts.CompSize, "completion"),
		set(unix.XDP_RX_RING, opts.RxSize, "rx"),
		set(unix.XDP_TX_RING, opts.TxSize, "tx"),
	); err != nil {
		return err
	}
	off, err := mmapOffsets(s.fd)
	if err != nil {
		return err
	}
	r, p, err := mapRing(s.fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, uint32(opts.FillSize), 8)
	if err != nil {
		return err
	}
	s.Fill = FillRing{ring: r, addrs: addrSlice(p, uint32(opts.FillSize))}
	r, p, err = mapRing(s.fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, uint32(opts.CompSize), 8)
	if err != nil {
		return err
	}
	s.Comp = CompRing{ring: r, addrs: addrSlice(p, uint32(opts.CompSize))}
	if opts.RxSize > 0 {
		r, p, err = mapRing(s.fd, unix.XDP_PGOFF_RX_RING, off.Rx, uint32(opts.RxSize), 16)
		if err != nil {
			return err
		}
		s.RX = RxRing{ring: r, descs: descSlice(p, uint32(opts.RxSize))}
	}
	if opts.TxSize > 0 {
		r, p, err = mapRing(s.fd, unix.XDP_PGOFF_TX_RING, off.Tx, uint32(opts.TxSize), 16)
		if err != nil {
			return err
		}
		s.TX = TxRing{ring: r, descs: descSlice(p, uint32(opts.TxSize))}
		s.TX.cachedCons = s.TX.size
	}
	s.Fill.cachedCons = s.Fill.size

	if err := s.bind(opts, shared); err != nil {
		return err
	}
	o, err := xdpOptions(s.fd)
	if err != nil {
		return fmt.Errorf("read xdp options: %w", err)
	}
	s.zeroCopy = o&unix.XDP_OPTIONS_ZEROCOPY != 0
	s.fillLimit = fillLimit(opts, s.zeroCopy)
	if opts.TxSize > 0 && !s.zeroCopy {
		// Copy mode transmits at most 32 frames per sendto() unless the
		// budget is raised (XDP_MAX_TX_SKB_BUDGET, Linux 6.16+): raise it
		// to the ring size so one kick per batch drains the ring. Older
		// kernels refuse the option; Transmit then kicks until drained.
		s.txBudget = 32
		if unix.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, opts.TxSize) == nil {
			s.txBudget = opts.TxSize
		}
	}
	if opts.BusyPoll {
		if err := errors.Join(
			unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, soPreferBusyPoll, 1),
			unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, opts.BusyPollUsec),
			unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, soBusyPollBudget, opts.BusyPollBudget),
		); err != nil {
			return fmt.Errorf("busy poll options: %w", err)
		}
	}
	if !shared {
		u.ownerFD = s.fd
	}
	return nil
}

func (s *Socket) bind(opts SocketOptions, shared bool) error {
	var wake uint16
	if s.wakeup {
		wake = unix.XDP_USE_NEED_WAKEUP
	}
	try := func(flags uint16) error {
		sa := &unix.SockaddrXDP{Flags: flags | wake, Ifindex: uint32(s.ifindex), QueueID: uint32(s.queue)}
		if shared {
			// The kernel refuses mode and need_wakeup flags on a shared
			// socket: it inherits them from the socket that owns the UMEM.
			sa.Flags = unix.XDP_SHARED_UMEM
			sa.SharedUmemFD = uint32(s.umem.ownerFD)
		}
		deadline := time.Now().Add(bindRetryDeadline)
		for backoff := time.Millisecond; ; backoff *= 2 {
			err := unix.Bind(s.fd, sa)
			if err != unix.EBUSY || time.Now().After(deadline) {
				return err
			}
			time.Sleep(min(backoff, 100*time.Millisecond))
		}
	}
	var err error
	switch {
	case shared:
		err = try(0)
	case opts.Bind == BindCopy:
		err = try(unix.XDP_COPY)
	case opts.Bind == BindZeroCopy:
		err = try(unix.XDP_ZEROCOPY)
		if errors.Is(err, unix.EOPNOTSUPP) {
			err = fmt.Errorf("%w: %w", ErrNotSupported, err)
		}
	default:
		err = try(unix.XDP_ZEROCOPY)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			err = try(unix.XDP_COPY)
		}
	}
	if err != nil {
		return fmt.Errorf("bind ifindex %d queue %d (%s): %w", s.ifindex, s.queue, opts.Bind, err)
	}
	return nil
}

func (s *Socket) unmap() {
	for _, r := range []*ring{&s.Fill.ring, &s.Comp.ring, &s.RX.ring, &s.TX.ring} {
		if r.mem != nil {
			unix.Munmap(r.mem)
			*r = ring{}
		}
	}
}

// Close unbinds the socket and unmaps its rings. Frames the kernel still
// held are lost to the pool; InKernel says how many.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.unmap()
	var err error
	if s.sim == nil {
		err = unix.Close(s.fd)
	}
	s.umem.sockets--
	if s.sim == nil && s.umem.ownerFD == s.fd {
		// The kernel keeps the UMEM alive while other sockets use it, but
		// new sockets can no longer share it through this fd.
		s.umem.ownerFD = -2
		if s.umem.sockets == 0 {
			s.umem.ownerFD = -1
		}
	}
	return err
}

// FD is the socket's file descriptor, for the XSKMAP.
func (s *Socket) FD() int { return s.fd }

// Queue is the queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Ifindex is the interface the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// Mode is "zero-copy" or "copy", as obtained from the kernel.
func (s *Socket) Mode() string {
	if s.zeroCopy {
		return "zero-copy"
	}
	return "copy"
}

// newSocket is a Socket on u and pool, before its file descriptor and
// rings.
func newSocket(u *UMEM, pool *FramePool) *Socket {
	return &Socket{umem: u, pool: pool, frames: u.layout, poolLo: pool.lo, poolHi: pool.hi}
}

// UMEM returns the socket's UMEM.
func (s *Socket) UMEM() *UMEM { return s.umem }

// Bytes is UMEM().Bytes from the socket's own copy of the UMEM's layout:
// the n bytes at addr, which the caller checked (RxDesc does).
func (s *Socket) Bytes(addr uint64, n uint32) []byte { return s.frames.bytes(addr, n) }

// Pool returns the frame pool the socket refills from.
func (s *Socket) Pool() *FramePool { return s.pool }

// InKernel is the number of frames handed to the kernel (fill and tx
// rings) that have not come back (rx and completion rings).
func (s *Socket) InKernel() int { return int(s.inKern) }

// AtFillLimit reports whether the frames given to the fill ring and not
// yet received reach the fill limit: Refill would add none. It reads
// only the socket's own counts, not the indices the kernel writes.
func (s *Socket) AtFillLimit() bool { return s.rxKern >= s.fillLimit }

// Refill moves free frames from the pool to the fill ring, as many as fit
// and as the fill limit allows (SocketOptions.FillLimit), and returns how
// many. One atomic load (at most) and one store.
func (s *Socket) Refill() int {
	room := s.fillLimit - s.rxKern
	if room <= 0 || len(s.pool.addrs) == 0 {
		return 0
	}
	want := uint32(min(int64(len(s.pool.addrs)), room))
	idx, got := s.Fill.Reserve(want)
	if got == 0 {
		return 0
	}
	addrs := s.pool.addrs[len(s.pool.addrs)-int(got):]
	for i, a := range addrs {
		s.Fill.Set(idx+uint32(i), a)
	}
	s.pool.addrs = s.pool.addrs[:len(s.pool.addrs)-int(got)]
	s.Fill.Submit()
	s.inKern += int64(got)
	s.rxKern += int64(got)
	s.st.fillSubmitted.Add(uint64(got))
	return int(got)
}

// FillReserve is Refill for frames that are not in the pool: a worker
// puts the frames it dropped straight back on the fill ring of the
// socket they came from, as the C xdpsock's rxdrop does, instead of
// through the pool; the per-wakeup cost of a poll-mode worker is mostly
// the memory it touches, and the pool's array and the copy into it are
// memory. It reserves up to n slots, within the fill limit, and returns
// the index of the first and how many. Write the frames with FillSet at
// idx, idx+1, ... (one FillSet refuses takes no slot: return it to the
// pool), then call FillSubmit once, before the next FillReserve. A
// socket without an rx ring reserves nothing.
func (s *Socket) FillReserve(n int) (idx, got uint32) {
	room := s.fillLimit - s.rxKern
	if s.RX.size == 0 || room <= 0 || n <= 0 {
		return 0, 0
	}
	idx, got = s.Fill.Reserve(uint32(min(int64(n), room)))
	s.fillReserved = got
	return idx, got
}

// FillSet writes the frame that holds addr at slot idx (from
// FillReserve) if it is one of the pool's own frames, and reports
// whether it did; a frame of another pool must go through the pool's
// Put, which gives it back to its owner.
func (s *Socket) FillSet(idx uint32, addr uint64) bool {
	base := addr &^ s.frames.frameMask
	if base-s.poolLo >= s.poolHi-s.poolLo {
		return false
	}
	s.Fill.addrs[idx&s.Fill.mask] = base
	return true
}

// FillSubmit publishes the first placed of the slots FillReserve gave
// and gives the rest back.
func (s *Socket) FillSubmit(placed uint32) {
	placed = min(placed, s.fillReserved)
	s.Fill.cachedProd -= s.fillReserved - placed
	s.fillReserved = 0
	if placed == 0 {
		return
	}
	s.Fill.Submit()
	s.inKern += int64(placed)
	s.rxKern += int64(placed)
	s.st.fillSubmitted.Add(uint64(placed))
}

// RxPeek is Receive without the copy, for a caller that turns
// descriptors into records of its own in one pass: it takes up to max
// received descriptors off the rx ring and returns the index of the
// first and how many. Read each with RxDesc, skipping the invalid ones,
// then give the slots back with RxRelease before the next RxPeek.
func (s *Socket) RxPeek(max int) (idx, n uint32) {
	if s.RX.size == 0 {
		return 0, 0 // no rx ring
	}
	idx, n = s.RX.Peek(uint32(max))
	if n == 0 {
		s.st.rxEmptyPolls.Add(1)
	}
	s.rxPeeked += n
	return idx, n
}

// RxDesc returns the descriptor at idx (from RxPeek) and whether it is
// valid: inside the UMEM and within one frame. Skip an invalid one:
// RxRelease counts it and returns its frame to the pool.
func (s *Socket) RxDesc(idx uint32) (Desc, bool) {
	d := s.RX.descs[idx&s.RX.mask]
	return d, s.frames.valid(d.Addr, d.Len)
}

// RxRelease gives the slots RxPeek took back to the kernel; valid is how
// many of them RxDesc found valid. If that is fewer than it took, it
// finds the invalid ones again, counts them in RxInvalid and returns
// their frames to the pool when it can identify them.
func (s *Socket) RxRelease(valid uint32) {
	got := s.rxPeeked
	if got == 0 {
		return
	}
	if valid < got {
		valid = got - s.dropInvalid(got)
	}
	s.RX.Release()
	s.inKern -= int64(got)
	s.rxKern -= int64(got)
	s.st.rxFrames.Add(uint64(valid))
	s.rxPeeked = 0
}

// WakeupFill asks the kernel to take frames from the fill ring if it set
// need_wakeup on it (zero-copy drivers do). It returns whether it called.
func (s *Socket) WakeupFill() bool {
	if !s.wakeup || !s.Fill.NeedWakeup() {
		return false
	}
	s.st.rxWakeups.Add(1)
	unix.Recvfrom(s.fd, nil, unix.MSG_DONTWAIT)
	return true
}

// TxReserve is Transmit in parts, for a caller that writes descriptors
// straight from records of its own: it reserves up to n slots on the tx
// ring and returns the index of the first and how many; the n-got that
// do not fit count in TxRingFull (the caller keeps those frames). Write
// the descriptors with TxSet at idx, idx+1, ... (a refused one takes no
// slot: pass it to TxRefuse), then call TxSubmit once, before the next
// TxReserve.
func (s *Socket) TxReserve(n int) (idx, got uint32) {
	if s.TX.size == 0 {
		return 0, 0 // no tx ring: nothing fits
	}
	idx, got = s.TX.Reserve(uint32(n))
	if rest := uint32(n) - got; rest > 0 {
		s.st.txRingFull.Add(uint64(rest))
	}
	s.txReserved = got
	return idx, got
}

// TxSet writes d at slot idx (from TxReserve) if it is valid: inside the
// UMEM and one frame, and not empty. It reports whether it did.
func (s *Socket) TxSet(idx uint32, d Desc) bool {
	if !s.frames.valid(d.Addr, d.Len) || d.Len == 0 {
		return false
	}
	s.TX.descs[idx&s.TX.mask] = d
	return true
}

// TxRefuse counts a descriptor TxSet refused in TxInvalid and returns
// its frame to the pool when it can be identified: posting it would have
// made the kernel drop it and lose the frame.
func (s *Socket) TxRefuse(addr uint64) {
	s.st.txInvalid.Add(1)
	if addr < uint64(len(s.frames.mem)) {
		s.pool.Put(addr)
	}
}

// TxSubmit publishes the first placed of the slots TxReserve gave, gives
// the rest back, and kicks the kernel when it asks (need_wakeup), or
// always without need_wakeup.
func (s *Socket) TxSubmit(placed uint32) {
	placed = min(placed, s.txReserved)
	s.TX.cachedProd -= s.txReserved - placed // slots of refused descriptors
	s.txReserved = 0
	if placed == 0 {
		return
	}
	s.TX.Submit()
	s.inKern += int64(placed)
	s.st.txFrames.Add(uint64(placed))
	if !s.wakeup || s.TX.NeedWakeup() {
		s.Kick()
		// In copy mode one kick sends at most txBudget frames.
		for i := 0; s.txBudget > 0 && i < 8 && s.TX.Occupancy() > 0; i++ {
			s.Kick()
		}
	}
}

// Kick tells the kernel to process the tx ring (sendto with MSG_DONTWAIT).
// Copy mode always needs it; zero-copy with need_wakeup only when asked.
func (s *Socket) Kick() {
	s.st.txKicks.Add(1)
	// A raw syscall: sendto with MSG_DONTWAIT never blocks, so the
	// runtime need not hand the P off around it (entersyscall and
	// exitsyscall cost ~7 ns per packet in l2fwd). In copy mode it runs
	// the whole transmit path for a batch, some tens of microseconds:
	// like a computation of that length, not a blocking call.
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN:
	default:
		s.st.kickErrors.Add(1)
	}
}

// Complete moves up to max transmitted frames from the completion ring
// back to the pool and returns how many.
func (s *Socket) Complete(max int) int {
	idx, got := s.Comp.Peek(uint32(max))
	if got == 0 {
		return 0
	}
	// The entries are at most two runs of the ring's array (it wraps);
	// each goes to the pool in bulk (a call per frame cost l2fwd 8% of
	// its user time).
	first := idx & s.Comp.mask
	n1 := min(got, s.Comp.size-first)
	bad := s.putCompleted(s.Comp.addrs[first:first+n1]) + s.putCompleted(s.Comp.addrs[:got-n1])
	s.Comp.Release()
	s.inKern -= int64(got)
	s.st.completed.Add(uint64(got) - bad)
	if bad != 0 {
		s.st.compInvalid.Add(bad)
	}
	return int(got)
}

// putCompleted returns completed frames to the pool and counts the
// addresses outside the UMEM, which only a kernel gone wrong posts.
func (s *Socket) putCompleted(addrs []uint64) (bad uint64) {
	size := uint64(len(s.frames.mem))
	for _, a := range addrs {
		if a >= size {
			bad++
		}
	}
	if bad == 0 {
		s.pool.PutN(addrs)
		return 0
	}
	for _, a := range addrs {
		if a < size {
			s.pool.Put(a)
		}
	}
	return bad
}

// Receive takes up to len(descs) received frames off the rx ring, checks
// each descriptor against the UMEM and returns the valid ones in descs. A
// descriptor that points outside the UMEM or past its frame is counted in
// RxInvalid; its frame goes back to the pool when it can be identified.
func (s *Socket) Receive(descs []Desc) int {
	idx, got := s.RxPeek(len(descs))
	if got == 0 {
		return 0
	}
	n := 0
	for i := range got {
		if d, ok := s.RxDesc(idx + i); ok {
			descs[n] = d
			n++
		}
	}
	s.RxRelease(uint32(n))
	return n
}

// Transmit places descriptors on the tx ring and kicks the kernel when it
// asks (need_wakeup) or always without need_wakeup. It returns how many of
// descs, from the front, it took. A descriptor outside the UMEM is counted
// in TxInvalid, its frame returned to the pool, and it is taken (never
// posted: the kernel would drop it and lose the frame). The caller owns
// descs[n:] (the ring was full) and usually drops them.
func (s *Socket) Transmit(descs []Desc) int {
	if len(descs) == 0 {
		return 0
	}
	idx, got := s.TxReserve(len(descs))
	var placed uint32
	for _, d := range descs[:got] {
		if s.TxSet(idx+placed, d) {
			placed++
		} else {
			s.TxRefuse(d.Addr)
		}
	}
	s.TxSubmit(placed)
	return int(got)
}

// Poll blocks until the rx ring has frames or timeout passes (negative:
// forever). It returns whether frames are ready. Copy mode never sets the
// fill ring's need_wakeup flag, so a worker with an empty rx ring must
// block here rather than spin.
func (s *Socket) Poll(timeout time.Duration) (bool, error) {
	s.st.rxWakeups.Add(1)
	if s.sim != nil {
		// Nothing wakes a simulated socket: report what is there.
		return s.RX.Len() > 0 && s.RX.Occupancy() > 0, nil
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	for {
		n, err := unix.Poll(s.pollfds[:], ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll xsk: %w", err)
		}
		return n > 0 && s.pollfds[0].Revents&unix.POLLIN != 0, nil
	}
}

// dropInvalid counts the invalid descriptors among the last got peeked
// ones, returns the frames it can identify to the pool and reports how
// many it found. Out of RxRelease's line: the common release has none.
func (s *Socket) dropInvalid(got uint32) (bad uint32) {
	size := uint64(len(s.frames.mem))
	for i := s.RX.cachedCons - got; i != s.RX.cachedCons; i++ {
		d := s.RX.descs[i&s.RX.mask]
		if s.frames.valid(d.Addr, d.Len) {
			continue
		}
		bad++
		if d.Addr < size {
			s.pool.Put(d.Addr)
		}
	}
	s.st.rxInvalid.Add(uint64(bad))
	return bad
}

// Stats returns a snapshot of the user-space counters; safe from any
// goroutine.
func (s *Socket) Stats() Stats {
	return Stats{
		RxFrames:      s.st.rxFrames.Load(),
		TxFrames:      s.st.txFrames.Load(),
		Completed:     s.st.completed.Load(),
		RxInvalid:     s.st.rxInvalid.Load(),
		CompInvalid:   s.st.compInvalid.Load(),
		TxInvalid:     s.st.txInvalid.Load(),
		TxRingFull:    s.st.txRingFull.Load(),
		FillSubmitted: s.st.fillSubmitted.Load(),
		TxKicks:       s.st.txKicks.Load(),
		RxWakeups:     s.st.rxWakeups.Load(),
		RxEmptyPolls:  s.st.rxEmptyPolls.Load(),
		KickErrors:    s.st.kickErrors.Load(),
	}
}

// KernelStats reads XDP_STATISTICS; safe from any goroutine while the
// socket is open.
func (s *Socket) KernelStats() (KernelStats, error) {
	if s.sim != nil {
		return s.sim.stats(), nil
	}
	st, err := kernelStats(s.fd)
	if err != nil {
		return KernelStats{}, fmt.Errorf("xdp statistics: %w", err)
	}
	return KernelStats{
		RxDropped: st.Rx_dropped, RxInvalidDescs: st.Rx_invalid_descs, TxInvalidDescs: st.Tx_invalid_descs,
		RxRingFull: st.Rx_ring_full, RxFillRingEmpty: st.Rx_fill_ring_empty_descs, TxRingEmptyDescs: st.Tx_ring_empty_descs,
	}, nil
}

// InRings is the number of frames visible in the four rings: the fill
// and tx rings' entries the kernel has not taken, and the rx and
// completion rings' entries user space has not taken. At rest InKernel -
// InRings is the number of frames the kernel holds elsewhere (copy mode
// keeps a few frames of dropped packets in its own free list and uses them
// first for the next packets); after traffic drains it must be zero.
func (s *Socket) InRings() int {
	n := s.Fill.Occupancy() + s.Comp.Occupancy()
	if s.RX.Len() > 0 {
		n += s.RX.Occupancy()
	}
	if s.TX.Len() > 0 {
		n += s.TX.Occupancy()
	}
	return n
}
