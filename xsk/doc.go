// Package xsk implements AF_XDP sockets on golang.org/x/sys: UMEM
// registration, the four kernel-shared rings, binding (zero-copy with a
// fallback to copy mode), shared UMEM across queues and ports,
// need_wakeup, busy polling and XDP_STATISTICS.
//
// # Model
//
// A UMEM is one mmap'ed region split into equal frames (2048 or 4096 bytes).
// The first Socket created on a UMEM registers it with the kernel; every
// further Socket binds with XDP_SHARED_UMEM, so a descriptor received on one
// socket can be transmitted on another (another queue or another port)
// without a copy. Every Socket has its own fill and completion rings, so
// each socket sits on a distinct (interface, queue) pair.
//
// Frame addresses that user space owns live in a FramePool. A frame is in
// exactly one place at a time: a FramePool, the fill ring, the kernel, the
// rx ring, the caller's batch, the tx ring or the completion ring. Socket
// counts what it hands to and takes back from the kernel (InKernel), so
// tests can prove that nothing is lost or doubled.
//
// # Ownership and memory ordering
//
// Each ring has one owner goroutine: a Socket, its rings and its FramePool
// are used by the single worker goroutine that polls them; nothing here is
// safe for concurrent use. Sockets that share a FramePool must be driven by
// the same goroutine.
//
// The producer and consumer indices shared with the kernel are read with
// sync/atomic loads (acquire) and written with release stores. The kernel
// (net/xdp/xsk_queue.h) pairs smp_load_acquire of the other side's index
// with smp_store_release of its own. Go's atomic Store would do too, but
// on amd64 it is an XCHG, a full barrier: it waits until every earlier
// store has left the store buffer, and those are the ring entries whose
// cache lines the kernel reads on another CPU. A plain MOV (a release
// store under x86-TSO) or arm64's STLR does not wait; it is a few lines
// of assembly in internal/counter. Each index of the other side is
// cached and re-read only when the cache says the ring is empty
// (consumer) or full (producer), so a batch costs one atomic load and one
// release store. The statistics are single-writer counters
// (internal/counter) for the same reason.
//
// Descriptors written by the kernel are untrusted: Receive, RxDesc and
// Complete check that every address and length lie inside the UMEM (and
// inside one frame) before the frame is touched; a bad descriptor is
// counted and, when its frame can be identified, recycled. RxPeek, RxDesc
// and RxRelease are Receive in parts, for a caller that builds its own
// records straight from the rx ring; TxReserve, TxSet, TxRefuse and
// TxSubmit are Transmit in parts, for one that writes descriptors straight
// from them (TxSet checks each as Transmit does).
//
// # Simulated sockets
//
// NewSimSocket makes a Socket whose rings live in process memory, and a
// SimKernel that plays the kernel's side of them (fill to rx, tx to
// completion, with the same index discipline). The socket's code runs
// unchanged, with no privileges and no interface: code above xsk is tested
// without root, and its user-space cost per frame is measured apart from
// the kernel's and the host's noise (pipeline's BenchmarkSim*).
package xsk
