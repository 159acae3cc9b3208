package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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
	// rawOnly: a flowing worker's sleep needs no timeout and no eventfd
	// (pinned, nothing handed in, held or reclaimed): wait makes it a raw
	// ppoll on the rx rings without further checks.
	rawOnly bool
	// clock: stamp every batch with the time (see Clockless); without it
	// one batch in clockEvery is, for Run's yield.
	clock     bool
	unclocked uint32
	wakeFD    int // eventfd in the poll set; Wake and Stop write it
	fdMu      sync.Mutex
	sleeping  atomic.Bool
	// tid is the thread Run locked, while it runs: a rawOnly worker
	// sleeps without the eventfd, so Stop signals the thread instead.
	tid     atomic.Int32
	wakeBuf [8]byte

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
	w.rawOnly = cfg.CPU >= 0 && len(w.pollfds) > 1 && cfg.Incoming == nil && cfg.Reclaim == nil && !w.holds
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
	if tid := w.tid.Load(); w.rawOnly && tid != 0 {
		// The worker may sleep on its rx rings alone (see pollRaw): a
		// signal ends the sleep with EINTR. SIGURG is the runtime's
		// preemption signal, which every Go program must take when it
		// comes for no reason; one that finds the worker awake costs a
		// signal delivery, once. Asking first whether it sleeps would
		// cost the worker a locked store before and after every sleep.
		unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
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
	defer w.tid.Store(0)
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
	return w.loop()
}

// maxSleep bounds a sleep in poll() when something other than an rx ring
// or the eventfd may need the worker: stages that hold frames or run
// timers (Releaser), frames other shards return (Reclaim), or an rx
// socket whose fill ring is empty (its frames are on tx or completion
// rings, so no packet can arrive to wake it).
const maxSleep = 100 * time.Millisecond

// waitSlow is wait for every sleep but a flowing worker's plain one:
// it blocks in poll() until an rx ring has frames, the eventfd is
// written (Stop, Wake) or a held frame falls due. flowing says that the
// last wakeup brought frames (see pollRaw), full that it brought a full
// batch (see WorkerConfig.Coalesce). Without a reason to wake up on time
// it sleeps without a timeout: arming and cancelling the poll timer on
// every sleep costs more than the rest of the poll() call.
func (w *Worker) waitSlow(flowing, full bool) error {
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
		if e := w.pollRaw(); e != 0 {
			err = e
		}
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

// stepHandedIn is Step's part for frames that did not come from an rx
// ring: those held stages release and those other shards handed in. It
// returns how many there were.
func (w *Worker) stepHandedIn() int {
	handedIn := 0
	if w.holds {
		if n := w.cfg.Pipeline.Release(Now(), &w.batch, &w.out); n > 0 {
			handedIn += n
			w.dispatch(-1)
		}
	}
	if w.cfg.Incoming != nil {
		if n := w.cfg.Incoming(w.batch.Frames[:cap(w.batch.Frames)]); n > 0 {
			handedIn += n
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
	return handedIn
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

// dispatchOff is dispatch's part for frames that leave the data path:
// those for the local stack and those for other shards.
func (w *Worker) dispatchOff() {
	o := &w.out
	if len(o.Local) > 0 {
		if w.cfg.Local == nil {
			for i := range o.Local {
				w.drop(&o.Local[i], ReasonNoLocal)
			}
		} else {
			w.cfg.Local(o.Local)
			for i := range o.Local {
				w.cfg.Pool.Put(o.Local[i].Addr)
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
}

// countDrops counts dropped frames of mixed reasons, one by one.
func (w *Worker) countDrops(frames []Frame) {
	for i := range frames {
		w.dropLocal[frames[i].Reason]++
		w.dropSeen |= 1 << frames[i].Reason
	}
}

func (w *Worker) drop(f *Frame, r Reason) {
	w.dropLocal[r]++
	w.dropSeen |= 1 << r
	w.cfg.Pool.Put(f.Addr)
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
