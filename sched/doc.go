// Package sched places Tygress's packet workers on CPUs and moves work
// between them: thread pinning, CPU topology, worker placement, the flow →
// shard map, and the lock-free rings that connect cores.
//
// # Model
//
// Tygress runs one worker per (port, queue) pair. A worker is a goroutine
// locked to its own OS thread and pinned to one CPU (Pin); it runs to
// completion: it pulls a batch of descriptors from its AF_XDP rx ring, pushes
// the whole batch through the pipeline stages, acts on the verdicts, and only
// then looks at the next batch. There is no per-packet hand-off to another
// goroutine, no per-packet lock and no per-packet allocation. PlanWorkers
// chooses the CPUs: distinct physical cores first, hyperthread siblings next.
//
// Every flow (a 5-tuple, or a QUIC connection ID) is owned by exactly one
// shard, and each worker is one shard. The owner is a function of a seeded,
// symmetric flow hash (ShardMap), so both directions of a connection land on
// the same shard. The NIC, however, spreads packets over queues with its own
// hash, and an AF_XDP socket only receives from the queue it is bound to, so
// a worker sometimes receives a packet of a flow that another shard owns.
// It then hands the descriptor to the owner through an SPSC ring: one ring
// per ordered pair of shards, never a shared queue. Connections that a shard
// opens itself choose a local port whose flow hash maps back to that shard
// (ShardMap.PortForShard), so their replies need no hand-off at all.
// Traffic from all shards to a single consumer (the control plane, a
// logger, a stats collector) goes through one MPSC ring.
//
// # Who owns which end
//
//   - SPSC: exactly one producer goroutine calls Enqueue and EnqueueBatch;
//     exactly one consumer goroutine calls Dequeue and DequeueBatch. The two
//     may be the same goroutine. For a hand-off ring from shard a to shard b,
//     worker a is the producer and worker b the consumer. Len and Cap may be
//     called from anywhere.
//   - MPSC: any number of goroutines may call Enqueue and EnqueueBatch
//     concurrently; exactly one goroutine calls Dequeue and DequeueBatch.
//
// Breaking the ownership rule is a data race; the race detector reports it.
//
// # Memory ordering
//
// Every index that the other side reads is a sync/atomic value. A producer
// writes the slots, then stores its index; a consumer loads that index, then
// reads the slots (and symmetrically for the consumer's index and the free
// slots). This is the acquire/release pairing that the kernel's own rings use
// (smp_load_acquire / smp_store_release); Go's atomics are sequentially
// consistent, which is stronger, so the Go memory model makes every slot
// write happen before the matching slot read. Plain loads or stores of a
// shared index would be a bug even where x86 happens to tolerate them.
//
// Each side keeps a private copy of the other side's index and reloads the
// shared one only when its copy says the ring is full (producer) or empty
// (consumer). The batch operations publish their own index once per batch,
// so a batch of 64 costs one atomic store, not 64.
package sched
