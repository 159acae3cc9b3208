package pipeline

// This file holds what a polling worker runs at every wakeup, in the
// order it runs it: the loop, the sleep, Step, the pipeline's run and
// the dispatch of the verdicts. The linker lays out a package's code in
// source order (files by name, then the wrappers the compiler makes,
// such as the built-in stages' pointer-receiver ones, then assembly such
// as ppoll), so one file that sorts last puts a wakeup's code on three
// pages instead of six. That counts because on a kernel with page-table
// isolation and a CPU without PCID (the test host) every system call
// empties the TLB: each page a wakeup touches costs a page walk. The
// cold branches (handed-in frames, local and handoff verdicts, the other
// sleeps) live in worker.go.

import (
	"fmt"
	"math/bits"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/xsk"
)

// loop is Run's loop, on the worker's pinned thread.
func (w *Worker) loop() error {
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

// yieldEvery is how often a polling worker yields its P (see loop).
const yieldEvery = 5 * time.Millisecond

// clockEvery is how many batches share one clock reading when no stage
// reads the batch clock (Clockless): loop's yield is then late by at most
// that many batches, a fraction of a millisecond under load.
const clockEvery = 16

// wait sleeps until an rx ring has frames, the eventfd is written
// (Stop, Wake) or a held frame falls due. flowing says that the last
// wakeup brought frames (see pollRaw), full that it brought a full batch
// (see WorkerConfig.Coalesce). The common sleep under load, a pinned
// worker's on its rx rings alone (rawOnly), is a raw ppoll right here;
// waitSlow has the others.
func (w *Worker) wait(flowing, full bool) error {
	if flowing && w.rawOnly && (!full || w.cfg.Coalesce == 0) && w.fillReady() {
		w.polls.Add(1)
		if e := w.pollRaw(); e != 0 && e != unix.EINTR {
			return fmt.Errorf("poll: %w", e)
		}
		return nil
	}
	return w.waitSlow(flowing, full)
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
func (w *Worker) pollRaw() unix.Errno {
	fds := w.pollfds
	if w.cfg.Incoming != nil || len(fds) == 1 {
		return ppollRaw(fds, nil)
	}
	fds = fds[:len(fds)-1]
	// waitSlow reads the eventfd's result: not from an earlier poll.
	w.pollfds[len(fds)].Revents = 0
	if w.stop.Load() {
		return 0
	}
	return ppollRaw(fds, nil)
}

// ppollRaw is ppoll(2) as a raw system call (see ppoll): the goroutine
// keeps its P (see pollRaw). A nil ts waits without a timeout.
func ppollRaw(fds []unix.PollFd, ts *unix.Timespec) unix.Errno {
	return unix.Errno(ppoll(&fds[0], uintptr(len(fds)), ts))
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
	if w.holds || w.cfg.Incoming != nil {
		handedIn = w.stepHandedIn()
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

// Run passes the batch through every stage and sorts the decided frames
// into out (which it does not reset). b.Frames is empty afterwards. A
// batch whose frames all got one verdict may move whole into an empty
// slice of out of the same capacity: Run then trades the two backing
// arrays instead of copying, so b.Frames and that slice of out swap
// storage. Give them equal capacities to let it (the worker does).
func (p *Pipeline) Run(b *Batch, out *Output) {
	for i, s := range p.stages {
		if len(b.Frames) == 0 {
			return
		}
		n := len(b.Frames)
		s.Process(b)
		p.collect(i, n, b, out)
	}
	if len(b.Frames) == 0 {
		return
	}
	p.finish(b, out)
}

// collectUniform is collect's fast path for the common batch whose frames
// all got the same decided verdict (and reason): one scan, one bulk copy
// and one counter update per batch instead of per frame.
func (p *Pipeline) collectUniform(stage int, b *Batch, out *Output) bool {
	fr := b.Frames
	if len(fr) == 0 {
		return false
	}
	v, r := fr[0].Verdict, fr[0].Reason
	if v == Pass || v == Hold || v >= numVerdicts || (v == Drop && (r == ReasonNone || int(r) >= MaxReasons)) {
		return false
	}
	for i := 1; i < len(fr); i++ {
		if fr[i].Verdict != v || fr[i].Reason != r {
			return false
		}
	}
	var dst *[]Frame
	switch v {
	case Drop:
		out.noteDrop(r)
		dst = &out.Drop
	case TX, Redirect:
		dst = &out.TX
	case Local:
		dst = &out.Local
	case Handoff:
		dst = &out.Handoff
	}
	n := uint64(len(fr))
	if len(*dst) == 0 && cap(*dst) == cap(fr) {
		// The whole batch moves: trade the backing arrays instead of
		// copying the frames.
		*dst, fr = fr, (*dst)[:0]
	} else {
		*dst = append(*dst, fr...)
	}
	c := &p.counters[stage]
	c.in.Add(n)
	c.verdicts[v].Add(n)
	if v == Drop {
		c.drops[r].Add(n)
	}
	b.Frames = fr[:0]
	return true
}

// dispatch sends the decided frames on: transmit grouped per port (one
// kick per port per batch), hand to the local stack or another shard, or
// free. from is the port whose rx ring every frame came from, or -1.
func (w *Worker) dispatch(from int) {
	o := &w.out
	if len(o.Drop) > 0 {
		w.free(o.Drop, from)
		if r, same := o.DropReason(); same {
			w.dropLocal[r] += uint64(len(o.Drop))
			w.dropSeen |= 1 << r
		} else {
			w.countDrops(o.Drop)
		}
	}
	if len(o.Local) > 0 || len(o.Handoff) > 0 {
		w.dispatchOff()
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
