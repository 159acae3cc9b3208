package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/internal/counter"
	"github.com/tygress/tygress/xsk"
)

// MaxBatch is the largest batch a worker takes from one rx ring at once.
const MaxBatch = 256

// MaxCoalesce bounds WorkerConfig.Coalesce: a 2048-entry rx ring fills in
// 2 ms at 1 Mpps.
const MaxCoalesce = time.Millisecond

// WorkerConfig wires a worker to its sockets and pipeline.
type WorkerConfig struct {
	// Ports are this worker's sockets, indexed by port number; all of
	// them take frames from Pool, so they share one UMEM and a frame
	// received on one can be sent on another without a copy. A nil entry
	// is a port this worker does not serve.
	Ports    []*xsk.Socket
	Pool     *xsk.FramePool
	Pipeline *Pipeline
	// BatchSize is the number of descriptors taken per rx ring per poll
	// (default 64, at most MaxBatch).
	BatchSize int
	// Busy makes the worker spin on empty rings instead of blocking in
	// poll(). Use it only with a core per worker.
	Busy bool
	// Coalesce, if positive, trades latency for CPU under sustained load:
	// after a wakeup that brought at least one full batch, the worker
	// sleeps this long on a timer instead of until the next frame, and
	// then takes everything that arrived meanwhile. The kernel wakes a
	// sleeping socket for every NAPI poll (at most 64 frames), and on a
	// virtual machine each wakeup costs microseconds on both cores; a
	// timed sleep costs one wakeup per interval however many frames it
	// collects, and frames that find nobody waiting cost the sender no
	// wakeup either. A wakeup with only partial batches sends the worker
	// back to waiting for frames, so light traffic keeps its latency.
	// Frames wait at most this long (plus the timer's slack, set to a
	// tenth of it) on top of the usual; keep it well below the time the
	// rx and fill rings take to fill at the expected rate. It does not
	// suit sockets with xsk.SocketOptions.BusyPoll, whose queue waits for
	// the application's poll(). Zero: off.
	Coalesce time.Duration
	// CPU pins the worker's thread to a CPU; -1 leaves it unpinned.
	CPU int
	// Pin pins the calling thread; sched.Pin fits (it locks the thread
	// once more, so the runtime ends the pinned thread with the goroutine
	// that called Run). Nil with CPU >= 0 uses a plain sched_setaffinity,
	// undone when Run returns.
	Pin func(cpu int) error
	// Local takes frames with the Local verdict. It runs on the worker and
	// must not keep the frames: they go back to the pool when it returns.
	Local func(frames []Frame)
	// Handoff takes frames with the Handoff verdict to the shards they
	// name. It moves the frames it could not hand off to the front of
	// frames and returns their count; the worker drops those with
	// ReasonHandoffFull.
	Handoff func(frames []Frame) (rejected int)
	// Incoming, if set, fills out with frames other shards handed to this
	// one and returns how many; the worker runs them through its pipeline
	// (Batch.Handoff is true) at each step. A frame handed off again is
	// dropped with ReasonHandoffLoop.
	Incoming func(out []Frame) int
	// HasIncoming reports whether handed-off frames wait; the worker asks
	// it before it goes to sleep in poll(), after announcing that it
	// sleeps, so a producer that calls Wake after enqueueing is never
	// missed.
	HasIncoming func() bool
	// Reclaim, if set, runs at each step to take back this worker's frames
	// that other shards returned (see xsk.FramePool.Foreign).
	Reclaim func()
	// Tap, if set, sees every received batch before the first stage (for
	// capture). It must not keep the frames.
	Tap func(frames []Frame)
}

// WorkerStats are a worker's counters; safe to read from any goroutine.
type WorkerStats struct {
	RxFrames   uint64
	TxFrames   uint64
	Batches    uint64
	Polls      uint64 // poll() syscalls made while idle
	Coalesced  uint64 // of which timed sleeps under load (WorkerConfig.Coalesce)
	HandoffIn  uint64 // frames other shards handed to this one
	Wakes      uint64 // eventfd wakeups other shards sent this one
	Drops      [MaxReasons]uint64
	DropsTotal uint64
}

// Worker runs one pipeline over its sockets, to completion, on one
// goroutine locked to an OS thread.
type Worker struct {
	cfg     WorkerConfig
	batch   Batch
	out     Output
	txDescs [][]xsk.Desc
	addrs   []uint64 // scratch for free
	pollfds []unix.PollFd
	pollMap []int

	holds bool // the pipeline has Releaser stages
	// clock: stamp every batch with the time (see Clockless); without it
	// one batch in clockEvery is, for Run's yield.
	clock     bool
	unclocked uint32
	wakeFD    int // eventfd in the poll set; Wake and Stop write it
	fdMu      sync.Mutex
	sleeping  atomic.Bool
	// rawSleep: the worker sleeps in pollRaw without the eventfd, so Stop
	// signals its thread (tid) instead.
	rawSleep atomic.Bool
	tid      atomic.Int32
	wakeBuf  [8]byte

	// Counted by the worker goroutine alone (single-writer counters: no
	// locked instruction per batch); wakes by any goroutine.
	rx, tx, batches, polls, handoffIn counter.Counter
	coalesced                         counter.Counter
	wakes                             atomic.Uint64
	drops                             [MaxReasons]counter.Counter
	dropLocal                         [MaxReasons]uint64
	dropSeen                          uint64 // bit r: dropLocal[r] != 0
	stop                              atomic.Bool
}

// NewWorker checks the configuration and preallocates every buffer the
// loop uses, so the loop itself never allocates.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Pool == nil || cfg.Pipeline == nil {
		return nil, errors.New("worker needs a frame pool and a pipeline")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 64
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatch {
		return nil, fmt.Errorf("batch size %d outside 1..%d", cfg.BatchSize, MaxBatch)
	}
	if cfg.Coalesce < 0 || cfg.Coalesce > MaxCoalesce {
		return nil, fmt.Errorf("coalesce %v outside 0..%v", cfg.Coalesce, MaxCoalesce)
	}
	w := &Worker{cfg: cfg, wakeFD: -1, holds: cfg.Pipeline.Holds(), clock: !cfg.Pipeline.Clockless() || cfg.Tap != nil}
	// Every frame slice gets the same capacity, so that Pipeline.Run can
	// move a uniform batch into out by trading backing arrays.
	n := cfg.BatchSize * max(len(cfg.Ports), 1)
	w.batch.Frames = make([]Frame, 0, n)
	w.out = Output{Drop: make([]Frame, 0, n), TX: make([]Frame, 0, n), Local: make([]Frame, 0, n), Handoff: make([]Frame, 0, n)}
	w.addrs = make([]uint64, n)
	for i, s := range cfg.Ports {
		w.txDescs = append(w.txDescs, make([]xsk.Desc, 0, n))
		if s == nil {
			continue
		}
		if s.Pool() != cfg.Pool {
			return nil, fmt.Errorf("port %d takes frames from another pool", i)
		}
		if s.RX.Len() > 0 {
			w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(s.FD()), Events: unix.POLLIN})
			w.pollMap = append(w.pollMap, i)
		}
	}
	if len(w.pollfds) > 0 || cfg.Incoming != nil {
		// Stop (and Wake, for handed-off frames) write it, so that poll()
		// needs no timeout to notice them.
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		w.wakeFD = fd
		w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	return w, nil
}

// Wake interrupts the worker's poll() if it sleeps there: producers of
// handed-off frames call it after enqueueing. It costs one atomic load
// when the worker is busy.
func (w *Worker) Wake() {
	if w.cfg.Incoming != nil && w.wakeFD >= 0 && w.sleeping.Load() {
		w.wakes.Add(1)
		var one = [8]byte{1}
		unix.Write(w.wakeFD, one[:])
	}
}

// Close frees the worker's eventfd. Call it after Run returned.
func (w *Worker) Close() error {
	w.fdMu.Lock()
	defer w.fdMu.Unlock()
	if w.wakeFD < 0 {
		return nil
	}
	fd := w.wakeFD
	w.wakeFD = -1
	return unix.Close(fd)
}

// Stop asks Run to return after the current batch, and wakes the worker
// if it sleeps in poll().
func (w *Worker) Stop() {
	w.stop.Store(true)
	if w.rawSleep.Load() {
		// The worker sleeps on its rx rings alone (see pollRaw): a
		// signal ends the sleep with EINTR. SIGURG is the runtime's
		// preemption signal, which every Go program must take when it
		// comes for no reason.
		unix.Tgkill(unix.Getpid(), int(w.tid.Load()), unix.SIGURG)
	}
	w.fdMu.Lock()
	defer w.fdMu.Unlock()
	if w.wakeFD >= 0 {
		var one = [8]byte{1}
		unix.Write(w.wakeFD, one[:])
	}
}

// Run loops until ctx is done or Stop is called.
func (w *Worker) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w.tid.Store(int32(unix.Gettid()))
	if w.cfg.CPU >= 0 {
		pin := w.cfg.Pin
		if pin == nil {
			// The thread goes back to the runtime's pool when Run
			// returns: with its old CPU mask, or not at all (locked
			// once more, the runtime ends it with the goroutine).
			var prev unix.CPUSet
			if err := unix.SchedGetaffinity(0, &prev); err != nil {
				return fmt.Errorf("pin worker to cpu %d: sched_getaffinity: %w", w.cfg.CPU, err)
			}
			defer func() {
				if unix.SchedSetaffinity(0, &prev) != nil {
					runtime.LockOSThread()
				}
			}()
			pin = func(cpu int) error {
				var set unix.CPUSet
				set.Set(cpu)
				return unix.SchedSetaffinity(0, &set)
			}
		}
		if err := pin(w.cfg.CPU); err != nil {
			return fmt.Errorf("pin worker to cpu %d: %w", w.cfg.CPU, err)
		}
	}
	stop := context.AfterFunc(ctx, w.Stop)
	defer stop()
	if w.cfg.Coalesce > 0 {
		// The timer's slack (50 µs by default) would otherwise stretch
		// every coalesced sleep; it is a property of this thread.
		unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(max(w.cfg.Coalesce/10, time.Microsecond)), 0, 0, 0)
		// Zero restores the default before the thread goes back to the
		// runtime's pool.
		defer unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0)
	}
	idle := 0
	full := false // a step since the last sleep took a full batch
	yielded := Now()
	for !w.stop.Load() {
		n := w.Step()
		if n >= w.cfg.BatchSize {
			full = true
		}
		// A goroutine that has not been rescheduled for 10 ms counts as
		// long-running: the runtime's sysmon then preempts it, takes its
		// P away in its next syscall, and wakes every 20 µs (on the
		// worker's core) for as long as that goes on. Yielding first
		// costs two thread switches every few milliseconds instead. It
		// matters most under load, when Step never comes back empty: a
		// forwarder's sendto() of a whole batch takes ~80 µs on veth.
		// The clock is the last batch's (reading it here too cost a
		// vDSO call per wakeup), or one batch in clockEvery's when no
		// stage needs the time (Clockless); with no traffic the worker
		// sleeps in poll() without its P.
		if now := w.batch.Now; now-yielded > int64(yieldEvery) {
			runtime.Gosched()
			yielded = now
		}
		if n > 0 {
			idle = 0
			continue
		}
		idle++
		if w.cfg.Busy {
			if idle&1023 == 0 {
				runtime.Gosched()
			}
			continue
		}
		// idle is 1 when the last wakeup brought frames: traffic is
		// flowing, and the sleep will be short (see pollRaw).
		if err := w.wait(idle == 1, full); err != nil {
			return err
		}
		full = false
	}
	return nil
}

// yieldEvery is how often a polling worker yields its P (see Run).
const yieldEvery = 5 * time.Millisecond

// clockEvery is how many batches share one clock reading when no stage
// reads the batch clock (Clockless): Run's yield is then late by at most
// that many batches, a fraction of a millisecond under load.
const clockEvery = 16

// maxSleep bounds a sleep in poll() when something other than an rx ring
// or the eventfd may need the worker: stages that hold frames or run
// timers (Releaser), frames other shards return (Reclaim), or an rx
// socket whose fill ring is empty (its frames are on tx or completion
// rings, so no packet can arrive to wake it).
const maxSleep = 100 * time.Millisecond

// wait blocks in poll() until an rx ring has frames, the eventfd is
// written (Stop, Wake) or a held frame falls due. flowing says that the
// last wakeup brought frames (see pollRaw), full that it brought a full
// batch (see WorkerConfig.Coalesce). Without a reason to wake up on time
// it sleeps without a timeout: arming and cancelling the poll timer on
// every sleep costs more than the rest of the poll() call.
func (w *Worker) wait(flowing, full bool) error {
	if len(w.pollfds) == 0 {
		time.Sleep(time.Millisecond)
		return nil
	}
	if w.cfg.Incoming != nil {
		w.sleeping.Store(true)
		defer w.sleeping.Store(false)
		if w.cfg.HasIncoming != nil && w.cfg.HasIncoming() {
			return nil
		}
	}
	timeout := time.Duration(-1)
	if w.holds || w.cfg.Reclaim != nil || !w.fillReady() {
		timeout = maxSleep
	}
	if w.holds {
		if next := w.cfg.Pipeline.Next(); next != 0 {
			// Wake for the first held frame that falls due (poll has
			// millisecond resolution: round up, never spin).
			timeout = min(timeout, max(time.Duration(next-Now())+time.Millisecond-1, time.Millisecond))
		}
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	w.polls.Add(1)
	var err error
	if full && w.cfg.Coalesce > 0 && (timeout < 0 || w.cfg.Coalesce < timeout) {
		w.coalesced.Add(1)
		err = w.sleepCoalesce()
	} else if ms < 0 && flowing && w.cfg.CPU >= 0 {
		err = w.pollRaw()
	} else {
		_, err = unix.Poll(w.pollfds, ms)
	}
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("poll: %w", err)
	}
	if w.pollfds[len(w.pollfds)-1].Revents&unix.POLLIN != 0 {
		unix.Read(int(w.pollfds[len(w.pollfds)-1].Fd), w.wakeBuf[:])
	}
	return nil
}

// pollRaw is poll() without a timeout for a worker pinned to its own
// core while traffic flows, made as a raw system call: the goroutine
// keeps its P while it sleeps. Through the runtime's system-call path a
// poll-mode worker paid entersyscall and exitsyscall at every wakeup,
// about 3% of its CPU per packet in rxdrop; and with a single P (a
// process confined to one CPU, as in bench/) the runtime's monitor may
// take the P away during a sleep, which in a wakeup microbenchmark had it
// running 6659 times a second on the worker's CPU. Keeping the P loses
// nothing while frames come every few microseconds: what wakes the
// worker (a frame, the eventfd) needs no P, and should another goroutine
// need this one, the runtime preempts the worker after 10 ms with a
// signal, which ends the sleep (EINTR) like any wakeup. A wakeup without
// frames means the traffic stopped: the next sleep goes through the
// runtime again (wait's flowing), so an idle worker costs nothing.
//
// Without handed-off frames to wait for (Incoming), the sleep leaves the
// eventfd out of the poll set: ppoll then registers on one wait queue,
// not two, which cost 2-3% of rxdrop's CPU per packet on veth. Stop
// signals the thread instead (see Stop); a Stop that comes between the
// check below and the system call still ends the sleep when the runtime
// preempts the worker, after about 10 ms, or at the next frame.
func (w *Worker) pollRaw() error {
	fds := w.pollfds
	if w.cfg.Incoming == nil && len(fds) > 1 {
		fds = fds[:len(fds)-1]
		// wait reads the eventfd's result: not from an earlier poll.
		w.pollfds[len(fds)].Revents = 0
		w.rawSleep.Store(true)
		defer w.rawSleep.Store(false)
		if w.stop.Load() {
			return nil
		}
	}
	if e := ppollRaw(fds, nil); e != 0 {
		return e
	}
	return nil
}

// ppollRaw is ppoll(2) as a raw system call: the goroutine keeps its P
// (see pollRaw). A nil ts waits without a timeout.
func ppollRaw(fds []unix.PollFd, ts *unix.Timespec) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	return e
}

// sleepCoalesce sleeps for WorkerConfig.Coalesce, or until the eventfd
// is written (Stop, Wake), without waiting on the rx rings: frames
// arriving meanwhile find no sleeper and wake nobody. Like pollRaw it
// keeps the P on a pinned worker; the sleep is short.
func (w *Worker) sleepCoalesce() error {
	ts := unix.NsecToTimespec(int64(w.cfg.Coalesce))
	ev := w.pollfds[len(w.pollfds)-1:]
	if w.cfg.CPU < 0 {
		_, err := unix.Ppoll(ev, &ts, nil)
		return err
	}
	if e := ppollRaw(ev, &ts); e != 0 {
		return e
	}
	return nil
}

// fillReady reports whether every rx socket has frames in its fill ring,
// so that the next packet can arrive and end a sleep in poll(). A socket
// at its fill limit has (the step that found nothing refilled it, and
// the worker's own drops went straight back); only one below it costs a
// look at the consumer index the kernel writes on another core.
func (w *Worker) fillReady() bool {
	for _, s := range w.cfg.Ports {
		if s != nil && s.RX.Len() > 0 && !s.AtFillLimit() && s.Fill.Occupancy() == 0 {
			return false
		}
	}
	return true
}

// Step runs one round: completions and refills on every port, then one
// batch from each rx ring through the pipeline. It returns the number of
// frames received (from sockets, other shards and stages that held them). Tests drive a worker with Step instead of Run.
func (w *Worker) Step() int {
	ports := w.cfg.Ports
	for _, s := range ports {
		// A socket without a tx ring completes nothing: skipping it
		// spares a look at its completion ring's page at every step.
		if s != nil && s.TX.Len() > 0 {
			// Drain the completion ring: a worker that went idle with
			// its frames there (the fill ring then empty, so no packet
			// comes to wake it) would otherwise win back only one
			// chunk per timed wakeup.
			for c := w.cfg.BatchSize * 4; s.Complete(c) == c; {
			}
		}
	}
	for _, s := range ports {
		if s != nil && s.RX.Len() > 0 {
			s.Refill()
			s.WakeupFill()
		}
	}
	if w.cfg.Reclaim != nil {
		w.cfg.Reclaim()
	}
	total, handedIn := 0, 0
	if w.holds {
		if n := w.cfg.Pipeline.Release(Now(), &w.batch, &w.out); n > 0 {
			handedIn += n
			w.dispatch(-1)
		}
	}
	if w.cfg.Incoming != nil {
		if n := w.cfg.Incoming(w.batch.Frames[:cap(w.batch.Frames)]); n > 0 {
			handedIn = n
			w.handoffIn.Add(uint64(n))
			w.batch.Frames = w.batch.Frames[:n]
			w.batch.Port = w.batch.Frames[0].InPort
			w.batch.Handoff = true
			w.batch.Now = Now()
			w.cfg.Pipeline.Run(&w.batch, &w.out)
			w.batch.Frames = w.batch.Frames[:0]
			w.batch.Handoff = false
			for i := range w.out.Handoff {
				w.drop(&w.out.Handoff[i], ReasonHandoffLoop)
			}
			w.out.Handoff = w.out.Handoff[:0]
			w.dispatch(-1)
		}
	}
	for pi, s := range ports {
		if s == nil || s.RX.Len() == 0 {
			continue
		}
		// One pass from the rx ring to the frames: no copy of the
		// descriptors in between.
		idx, got := s.RxPeek(w.cfg.BatchSize)
		if got == 0 {
			continue
		}
		fr := w.batch.Frames[:got]
		n := 0
		for i := range got {
			d, ok := s.RxDesc(idx + i)
			if !ok {
				continue
			}
			// Field by field: a composite literal is built on the stack
			// and copied, which stalls on store forwarding (8 ns/frame).
			f := &fr[n]
			n++
			f.Data = s.Bytes(d.Addr, d.Len)
			f.Addr = d.Addr
			f.InPort, f.OutPort, f.Shard = uint16(pi), 0, 0
			f.Verdict, f.Reason = Pass, ReasonNone
		}
		s.RxRelease(uint32(n))
		if n == 0 {
			continue
		}
		fr = fr[:n]
		total += n
		w.batch.Frames = fr
		w.batch.Port = uint16(pi)
		w.batch.Queue = uint16(s.Queue())
		if w.clock {
			w.batch.Now = Now()
		} else if w.unclocked++; w.unclocked%clockEvery == 0 {
			w.batch.Now = Now()
		}
		if w.cfg.Tap != nil {
			w.cfg.Tap(fr)
		}
		w.cfg.Pipeline.Run(&w.batch, &w.out)
		w.batch.Frames = w.batch.Frames[:0]
		w.dispatch(pi)
	}
	if total > 0 {
		w.rx.Add(uint64(total))
		w.batches.Add(1)
	}
	return total + handedIn
}

// free returns frames to the pool, in bulk. Frames that came from port
// from's rx ring (from >= 0) go straight back to its fill ring while
// there is room (see xsk.Socket.FillReserve).
func (w *Worker) free(frames []Frame, from int) {
	if from >= 0 {
		s := w.cfg.Ports[from]
		idx, got := s.FillReserve(len(frames))
		var placed uint32
		for i := range frames[:got] {
			if s.FillSet(idx+placed, frames[i].Addr) {
				placed++
			} else {
				w.cfg.Pool.Put(frames[i].Addr)
			}
		}
		s.FillSubmit(placed)
		if frames = frames[got:]; len(frames) == 0 {
			return
		}
	}
	addrs := w.addrs[:len(frames)]
	for i := range addrs {
		addrs[i] = frames[i].Addr
	}
	w.cfg.Pool.PutN(addrs)
}

func (w *Worker) drop(f *Frame, r Reason) {
	w.dropLocal[r]++
	w.dropSeen |= 1 << r
	w.cfg.Pool.Put(f.Addr)
}

// dispatch sends the decided frames on: transmit grouped per port (one
// kick per port per batch), hand to the local stack or another shard, or
// free. from is the port whose rx ring every frame came from, or -1.
func (w *Worker) dispatch(from int) {
	o := &w.out
	pool := w.cfg.Pool
	if len(o.Drop) > 0 {
		w.free(o.Drop, from)
		if r, same := o.DropReason(); same {
			w.dropLocal[r] += uint64(len(o.Drop))
			w.dropSeen |= 1 << r
		} else {
			for i := range o.Drop {
				w.dropLocal[o.Drop[i].Reason]++
				w.dropSeen |= 1 << o.Drop[i].Reason
			}
		}
	}
	if len(o.Local) > 0 {
		if w.cfg.Local == nil {
			for i := range o.Local {
				w.drop(&o.Local[i], ReasonNoLocal)
			}
		} else {
			w.cfg.Local(o.Local)
			for i := range o.Local {
				pool.Put(o.Local[i].Addr)
			}
		}
	}
	if len(o.Handoff) > 0 {
		rej, r := len(o.Handoff), ReasonNoHandoff
		if w.cfg.Handoff != nil {
			rej, r = w.cfg.Handoff(o.Handoff), ReasonHandoffFull
		}
		for i := range o.Handoff[:rej] {
			w.drop(&o.Handoff[i], r)
		}
	}
	if len(o.TX) > 0 {
		if s := w.onePort(o.TX); s != nil {
			w.transmit(s, o.TX)
		} else {
			w.transmitMixed(o.TX)
		}
	}
	o.Reset()
	// Publish only the reasons this batch used, not all MaxReasons.
	for m := w.dropSeen; m != 0; m &= m - 1 {
		r := bits.TrailingZeros64(m)
		w.drops[r].Add(w.dropLocal[r])
		w.dropLocal[r] = 0
	}
	w.dropSeen = 0
}

// onePort returns the socket every frame goes out on, if they all go to
// one port that can transmit (the common batch: one stage redirected it
// whole), or nil.
func (w *Worker) onePort(frames []Frame) *xsk.Socket {
	p := txPort(&frames[0])
	for i := 1; i < len(frames); i++ {
		if txPort(&frames[i]) != p {
			return nil
		}
	}
	return w.txSocket(p)
}

// txPort is the port a frame with a TX or Redirect verdict leaves by.
func txPort(f *Frame) int {
	if f.Verdict == Redirect {
		return int(f.OutPort)
	}
	return int(f.InPort)
}

// txSocket is port p's socket if it can transmit, else nil.
func (w *Worker) txSocket(p int) *xsk.Socket {
	if p >= len(w.cfg.Ports) || w.cfg.Ports[p] == nil || w.cfg.Ports[p].TX.Len() == 0 {
		return nil
	}
	return w.cfg.Ports[p]
}

// transmit writes the frames' descriptors straight onto s's tx ring
// (see xsk.Socket.TxReserve) and drops those that do not fit.
func (w *Worker) transmit(s *xsk.Socket, frames []Frame) {
	idx, got := s.TxReserve(len(frames))
	var placed uint32
	for i := range frames[:got] {
		f := &frames[i]
		if s.TxSet(idx+placed, xsk.Desc{Addr: f.Addr, Len: uint32(len(f.Data))}) {
			placed++
		} else {
			s.TxRefuse(f.Addr)
		}
	}
	s.TxSubmit(placed)
	w.tx.Add(uint64(got))
	for i := range frames[got:] {
		w.drop(&frames[int(got)+i], ReasonTxRingFull)
	}
}

// transmitMixed sends frames bound for several ports (or none): their
// descriptors are grouped per port, one Transmit (and kick) per port.
func (w *Worker) transmitMixed(frames []Frame) {
	ports, txd := w.cfg.Ports, w.txDescs
	// Frames for one port come in runs: the port is checked and its
	// descriptor list loaded once per run.
	last := -1
	var d []xsk.Desc
	for i := range frames {
		f := &frames[i]
		p := txPort(f)
		if p != last {
			if last >= 0 {
				txd[last] = d
			}
			if w.txSocket(p) == nil {
				w.drop(f, ReasonBadPort)
				last = -1
				continue
			}
			last, d = p, txd[p]
		}
		d = append(d, xsk.Desc{Addr: f.Addr, Len: uint32(len(f.Data))})
	}
	if last >= 0 {
		txd[last] = d
	}
	var sent uint64
	for p, descs := range txd {
		if len(descs) == 0 {
			continue
		}
		k := ports[p].Transmit(descs)
		sent += uint64(k)
		for _, d := range descs[k:] {
			w.dropLocal[ReasonTxRingFull]++
			w.dropSeen |= 1 << ReasonTxRingFull
			w.cfg.Pool.Put(d.Addr)
		}
		txd[p] = descs[:0]
	}
	w.tx.Add(sent)
}

// Stats returns a snapshot of the worker's counters.
func (w *Worker) Stats() WorkerStats {
	s := WorkerStats{RxFrames: w.rx.Load(), TxFrames: w.tx.Load(), Batches: w.batches.Load(), Polls: w.polls.Load(), Coalesced: w.coalesced.Load(),
		HandoffIn: w.handoffIn.Load(), Wakes: w.wakes.Load()}
	for r := range w.drops {
		s.Drops[r] = w.drops[r].Load()
		s.DropsTotal += s.Drops[r]
	}
	return s
}

// Pipeline returns the worker's pipeline.
func (w *Worker) Pipeline() *Pipeline { return w.cfg.Pipeline }

// Ports returns the worker's sockets.
func (w *Worker) Ports() []*xsk.Socket { return w.cfg.Ports }
