// Package link separates Tygress's host stack from packet I/O. A Link is
// one queue of one port as a stack shard sees it: it receives and transmits
// whole Ethernet frames in batches, in buffers that the link owns.
//
// # Implementations
//
//   - XSK (NewXSK): the product's link, an AF_XDP socket from package xsk.
//     Received frames are views of UMEM frames; nothing is copied.
//   - Packet (NewPacket): the fallback for hosts without XDP, an AF_PACKET
//     raw socket with batched recvmmsg/sendmmsg into a fixed buffer slab.
//     The kernel stack still sees every frame it receives (see NewPacket).
//   - Mem (NewMemPair): two endpoints in one process joined by lock-free
//     SPSC rings, with a seeded fault injector (package link/fault) on each
//     direction. It makes the stack, TCP and QUIC testable and benchmarkable
//     without root.
//
// # Buffer ownership
//
// Every frame buffer belongs to exactly one link and is, at any time, in
// exactly one place: the link's free list, the kernel or the wire (in
// flight), or the caller. The caller owns a frame from the moment Receive or
// Alloc returns it until it hands it back with Release or Transmit; after
// that it must not touch Frame.Data again. Transmit takes ownership of every
// frame it is given, also of those it cannot send: they are dropped, counted
// in Stats, and their buffers go back to the free list.
//
// Frame.Data views the link's buffer; its capacity reaches the end of the
// buffer, so a stack may grow a received frame in place (an ICMP echo reply,
// an added tunnel header at the tail) and send it back with Transmit. A
// stage that moves the start of Data must move Frame.Addr by the same
// amount (the pipeline's rule). A link accepts in Transmit only frames whose
// buffers it owns: frames received or allocated on it (for XSK links, any
// frame of the same UMEM), recognised by Data viewing the buffer at Addr.
// Anything else is counted in Stats.TxInvalid and left alone: freeing it
// could free a buffer still in use. To move a frame between links of
// different kinds, Alloc on the target, copy, and Release on the source.
//
// # Goroutines
//
// A Link is owned by one goroutine, the shard's worker: Receive, Release,
// Alloc, Transmit, Flush, Wait and Close are called only from it. Wake and
// Stats are safe from any goroutine. A worker loop is:
//
//	for {
//		n := l.Receive(frames)
//		... process, Release or Transmit every frame ...
//		l.Flush()
//		if n == 0 { l.Wait(timerDeadline) }
//	}
//
// Application goroutines queue their work for the shard and call Wake; a
// Wake that arrives while the worker is not in Wait makes its next Wait
// return at once, so no wakeup is lost.
//
// Counters are kept by the owner and published with atomic adds once per
// call, so Stats never takes a lock on the data path.
package link

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/pipeline"
)

// Link is one queue of one port as a host stack shard sees it. It is owned by
// one goroutine (the shard's worker); nothing is safe for concurrent use
// unless stated.
type Link interface {
	// Receive fills frames with up to len(frames) received Ethernet frames
	// and returns how many. Frame.Data views the link's own buffer; the
	// caller must Release every received frame (or Transmit it: ownership
	// moves). Buffers are never copied on the way in.
	Receive(frames []pipeline.Frame) int
	// Release gives received or allocated frames back to the link.
	Release(frames []pipeline.Frame)
	// Alloc fills frames with free transmit buffers (Data has len 0 and cap
	// the buffer size) and returns how many it could get.
	Alloc(frames []pipeline.Frame) int
	// Transmit queues frames (Data holds what to send) and takes ownership
	// of all of them; frames it cannot queue are dropped and counted
	// (Stats). It returns how many were queued.
	Transmit(frames []pipeline.Frame) int
	// Flush pushes queued frames out (the syscall or kick happens here, once
	// per batch).
	Flush()
	// Wait blocks until Receive may return frames, timeout passes (negative:
	// no timeout), or Wake is called. It may return early; callers loop.
	Wait(timeout time.Duration) error
	// Wake interrupts Wait from another goroutine. Safe for concurrent use.
	Wake()
	// HardwareAddr is the link's Ethernet address.
	HardwareAddr() [6]byte
	// MTU is the largest IP packet the link carries; frames may be up to
	// MTU + MaxHeader bytes long.
	MTU() int
	// Stats returns the link's counters. Safe for concurrent use.
	Stats() Stats
	// Close drains the link and frees its resources. Release every frame
	// first: frames the caller still holds are lost to the link's free list.
	Close() error
}

// MaxHeader is the room for link-layer headers a frame may have on top of
// the MTU: an Ethernet header and one VLAN tag.
const MaxHeader = 14 + 4

// Errors callers can test with errors.Is.
var (
	// ErrClosed: the link was closed.
	ErrClosed = errors.New("link closed")
	// ErrBadOptions: an option is out of range.
	ErrBadOptions = errors.New("bad link options")
)

// Stats are a link's counters. Every drop is counted once, under one reason;
// RxDropped and TxDropped are the sums of the reasons.
type Stats struct {
	RxFrames, RxBytes uint64 // frames handed to the caller by Receive
	TxFrames, TxBytes uint64 // frames put on the wire by Flush
	RxDropped         uint64 // sum of the Rx reasons below
	TxDropped         uint64 // sum of the Tx reasons below

	// Receive drops.
	RxNoBuffer uint64 // no free buffer to receive into (memory link)
	RxTooBig   uint64 // longer than a buffer (AF_PACKET: truncated)
	RxInvalid  uint64 // descriptors outside the UMEM (AF_XDP)
	RxKernel   uint64 // dropped by the kernel before the link saw them: rx ring full or fill ring empty (AF_XDP), socket buffer full (AF_PACKET)
	RxFault    uint64 // dropped by the fault injector (memory link; FaultStats has the reasons)
	RxError    uint64 // failed receive system calls (not frames)

	// Transmit drops.
	TxQueueFull uint64 // no room in the tx ring, the wire or the socket buffer
	TxInvalid   uint64 // empty, longer than MTU+MaxHeader, or not a buffer of this link
	TxError     uint64 // the kernel refused the frame
	TxDown      uint64 // the link or its peer is closed
}

// Counter indices.
const (
	cRxFrames = iota
	cRxBytes
	cTxFrames
	cTxBytes
	cRxNoBuffer
	cRxTooBig
	cRxFault
	cRxError
	cTxQueueFull
	cTxInvalid
	cTxError
	cTxDown
	numCounters
)

// counters are the owner's running counts (local), published to pub once per
// call: one atomic add per counter that changed.
type counters struct {
	local [numCounters]uint64
	pub   [numCounters]atomic.Uint64
}

func (c *counters) publish() {
	for i, v := range c.local {
		if v != 0 {
			c.pub[i].Add(v)
			c.local[i] = 0
		}
	}
}

// snapshot reads the published counters; safe from any goroutine.
func (c *counters) snapshot() Stats {
	return Stats{
		RxFrames: c.pub[cRxFrames].Load(), RxBytes: c.pub[cRxBytes].Load(),
		TxFrames: c.pub[cTxFrames].Load(), TxBytes: c.pub[cTxBytes].Load(),
		RxNoBuffer: c.pub[cRxNoBuffer].Load(), RxTooBig: c.pub[cRxTooBig].Load(),
		RxFault: c.pub[cRxFault].Load(), RxError: c.pub[cRxError].Load(),
		TxQueueFull: c.pub[cTxQueueFull].Load(), TxInvalid: c.pub[cTxInvalid].Load(),
		TxError: c.pub[cTxError].Load(), TxDown: c.pub[cTxDown].Load(),
	}
}

// sum fills in the totals.
func (s *Stats) sum() {
	s.RxDropped = s.RxNoBuffer + s.RxTooBig + s.RxInvalid + s.RxKernel + s.RxFault
	s.TxDropped = s.TxQueueFull + s.TxInvalid + s.TxError + s.TxDown
}
