package xsk

import "sync/atomic"

// simHeadroom is where the simulated kernel puts a packet in its frame,
// after the UMEM's headroom: XDP_PACKET_HEADROOM, as copy mode does.
const simHeadroom = 256

// SimKernel plays the kernel's side of a Socket made by NewSimSocket,
// whose rings live in ordinary process memory: Deliver moves frames from
// the fill ring to the rx ring as a receiving driver does, Transmit moves
// descriptors from the tx ring to the completion ring. Both keep the
// kernel's index discipline (acquire the other side's index, release
// their own), so the socket's code runs unchanged. It needs no privileges
// and no interface: code above xsk (workers, stages) can be tested
// without root, and its user-space cost measured apart from the kernel's,
// as DPDK's null and ring drivers allow.
//
// A SimKernel is not safe for concurrent use with the socket's owner:
// call it between the owner's steps, from the same goroutine or with a
// happens-before edge. A simulated socket has no file descriptor, so it
// never wakes a sleeping poll(): drive its owner step by step (a
// pipeline.Worker's Step, or Run with Busy).
type SimKernel struct {
	s *Socket
	// Read by KernelStats from any goroutine.
	fillEmpty, rxFull, rxInvalid, txInvalid atomic.Uint64
}

// NewSimSocket returns a socket on simulated rings of the sizes in opts
// (ring sizes as for NewSocket; binding and busy-poll options are
// ignored) that takes its frames from pool, and the SimKernel that serves
// it. It runs in copy mode with need_wakeup: the kernel side never asks
// for a wakeup, so the socket makes no system call.
func NewSimSocket(pool *FramePool, opts SocketOptions) (*Socket, *SimKernel, error) {
	u := pool.umem
	if err := checkRings(u, opts); err != nil {
		return nil, nil, err
	}
	s := newSocket(u, pool)
	s.fd, s.wakeup = -1, true
	s.pollfds[0].Fd = -1
	s.Fill = FillRing{ring: simRing(opts.FillSize), addrs: make([]uint64, opts.FillSize)}
	s.Comp = CompRing{ring: simRing(opts.CompSize), addrs: make([]uint64, opts.CompSize)}
	if opts.RxSize > 0 {
		s.RX = RxRing{ring: simRing(opts.RxSize), descs: make([]Desc, opts.RxSize)}
	}
	if opts.TxSize > 0 {
		s.TX = TxRing{ring: simRing(opts.TxSize), descs: make([]Desc, opts.TxSize)}
		s.TX.cachedCons = s.TX.size
	}
	s.Fill.cachedCons = s.Fill.size
	s.fillLimit = fillLimit(opts, false)
	s.sim = &SimKernel{s: s}
	u.sockets++
	return s, s.sim, nil
}

// simRing is a ring of n entries whose indices and flags are words of
// their own; each index gets a cache line, as the kernel lays them out.
func simRing(n int) ring {
	if n == 0 {
		return ring{}
	}
	var words struct {
		producer atomic.Uint32
		_        [60]byte
		consumer atomic.Uint32
		_        [60]byte
		flags    atomic.Uint32
	}
	w := &words
	return ring{producer: &w.producer, consumer: &w.consumer, flags: &w.flags, mask: uint32(n - 1), size: uint32(n)}
}

// Deliver receives up to n copies of pkt: for each it takes a frame from
// the fill ring, copies pkt into it after the headroom and posts its
// descriptor on the rx ring. A nil pkt posts descriptors of length bytes
// without writing the frames (to measure the consumer alone). It returns
// how many it delivered; the others count as fill-ring-empty or
// rx-ring-full drops (KernelStats), as the kernel counts them. A pkt
// longer than a frame's room is truncated.
func (k *SimKernel) Deliver(n int, pkt []byte, length uint32) int {
	s := k.s
	if s.RX.Len() == 0 {
		return 0
	}
	f, rx := &s.Fill.ring, &s.RX.ring
	fcons := f.consumer.Load()
	fprod := f.producer.Load()
	rprod := rx.producer.Load()
	rcons := rx.consumer.Load()
	room := s.umem.frameSize - uint64(s.umem.headroom) - simHeadroom
	if pkt != nil {
		length = uint32(min(uint64(len(pkt)), room))
	} else {
		length = uint32(min(uint64(length), room))
	}
	done := 0
	for tried := 0; tried < n; tried++ {
		if fcons == fprod {
			k.fillEmpty.Add(uint64(n - tried))
			break
		}
		if rprod-rcons == rx.size {
			k.rxFull.Add(uint64(n - tried))
			break
		}
		a := s.Fill.addrs[fcons&f.mask]
		fcons++
		if a >= uint64(len(s.umem.mem)) {
			// The kernel skips fill entries outside the UMEM.
			k.rxInvalid.Add(1)
			continue
		}
		a = a&^s.umem.frameMask + uint64(s.umem.headroom) + simHeadroom
		if pkt != nil {
			copy(s.umem.mem[a:a+uint64(length)], pkt)
		}
		s.RX.descs[rprod&rx.mask] = Desc{Addr: a, Len: length}
		rprod++
		done++
	}
	storeRelease(f.consumer, fcons)
	storeRelease(rx.producer, rprod)
	return done
}

// DeliverDesc posts d on the rx ring as it is, without taking a frame
// from the fill ring: a driver gone wrong. It reports false if the rx
// ring is full.
func (k *SimKernel) DeliverDesc(d Desc) bool {
	rx := &k.s.RX.ring
	if rx.size == 0 {
		return false
	}
	prod := rx.producer.Load()
	if prod-rx.consumer.Load() == rx.size {
		k.rxFull.Add(1)
		return false
	}
	k.s.RX.descs[prod&rx.mask] = d
	storeRelease(rx.producer, prod+1)
	return true
}

// CompleteAddr posts addr on the completion ring as it is, without a
// transmitted descriptor behind it: a driver gone wrong. It reports
// false if the completion ring is full.
func (k *SimKernel) CompleteAddr(addr uint64) bool {
	c := &k.s.Comp.ring
	prod := c.producer.Load()
	if prod-c.consumer.Load() == c.size {
		return false
	}
	k.s.Comp.addrs[prod&c.mask] = addr
	storeRelease(c.producer, prod+1)
	return true
}

// Transmit takes up to n descriptors off the tx ring, shows each packet
// to sent (if not nil; it must not keep the slice) and posts its address
// on the completion ring. It returns how many it took. A descriptor
// outside the UMEM or its frame is counted as invalid and never
// completed, as the kernel does.
func (k *SimKernel) Transmit(n int, sent func(pkt []byte)) int {
	s := k.s
	if s.TX.Len() == 0 {
		return 0
	}
	t, c := &s.TX.ring, &s.Comp.ring
	tcons, tprod := t.consumer.Load(), t.producer.Load()
	cprod, ccons := c.producer.Load(), c.consumer.Load()
	done := 0
	for ; done < n && tcons != tprod && cprod-ccons < c.size; done++ {
		d := s.TX.descs[tcons&t.mask]
		tcons++
		if !s.umem.Valid(d.Addr, d.Len) {
			k.txInvalid.Add(1)
			continue
		}
		if sent != nil {
			sent(s.umem.Bytes(d.Addr, d.Len))
		}
		s.Comp.addrs[cprod&c.mask] = d.Addr
		cprod++
	}
	storeRelease(t.consumer, tcons)
	storeRelease(c.producer, cprod)
	return done
}

// stats returns the simulated kernel's drop counters as XDP_STATISTICS.
func (k *SimKernel) stats() KernelStats {
	return KernelStats{RxFillRingEmpty: k.fillEmpty.Load(), RxRingFull: k.rxFull.Load(),
		RxInvalidDescs: k.rxInvalid.Load(), TxInvalidDescs: k.txInvalid.Load()}
}
