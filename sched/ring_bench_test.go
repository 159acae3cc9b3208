package sched_test

import (
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/tygress/tygress/sched"
)

// Single-goroutine costs: one Enqueue plus one Dequeue per op.
func BenchmarkSPSCSingle(b *testing.B) {
	r, _ := sched.NewSPSC[uint64](1024)
	b.ReportAllocs()
	for i := range uint64(b.N) {
		r.Enqueue(i)
		r.Dequeue()
	}
}

func BenchmarkMPSCSingle(b *testing.B) {
	q, _ := sched.NewMPSC[uint64](1024)
	b.ReportAllocs()
	for i := range uint64(b.N) {
		q.Enqueue(i)
		q.Dequeue()
	}
}

// Batch costs per item: one op moves one item through a batch of the size
// named in the sub-benchmark.
func BenchmarkSPSCBatch(b *testing.B) {
	for _, k := range []int{8, 64, 256} {
		b.Run(strconv.Itoa(k), func(b *testing.B) {
			r, _ := sched.NewSPSC[uint64](1024)
			in, out := make([]uint64, k), make([]uint64, k)
			b.ReportAllocs()
			for i := 0; i < b.N; i += k {
				r.EnqueueBatch(in)
				r.DequeueBatch(out)
			}
		})
	}
}

func BenchmarkMPSCBatch(b *testing.B) {
	for _, k := range []int{8, 64, 256} {
		b.Run(strconv.Itoa(k), func(b *testing.B) {
			q, _ := sched.NewMPSC[uint64](1024)
			in, out := make([]uint64, k), make([]uint64, k)
			b.ReportAllocs()
			for i := 0; i < b.N; i += k {
				q.EnqueueBatch(in)
				q.DequeueBatch(out)
			}
		})
	}
}

// spin waits politely: busy for a while, then lets the scheduler run
// something else (the benchmarks must also work with -cpu 1).
func spin(n *int) {
	*n++
	if *n&63 == 0 {
		runtime.Gosched()
	}
}

// BenchmarkSPSCStream is cross-core throughput: a producer goroutine
// streams b.N items in batches to a consumer goroutine; ns/op is per item.
func BenchmarkSPSCStream(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run("batch="+strconv.Itoa(k), func(b *testing.B) {
			r, _ := sched.NewSPSC[uint64](4096)
			b.ReportAllocs()
			n := uint64(b.N)
			var wg sync.WaitGroup
			wg.Go(func() {
				buf := make([]uint64, k)
				s := 0
				for sent := uint64(0); sent < n; {
					m := r.EnqueueBatch(buf[:min(uint64(k), n-sent)])
					if m == 0 {
						spin(&s)
					}
					sent += uint64(m)
				}
			})
			buf := make([]uint64, k)
			s := 0
			for got := uint64(0); got < n; {
				m := r.DequeueBatch(buf)
				if m == 0 {
					spin(&s)
				}
				got += uint64(m)
			}
			wg.Wait()
		})
	}
}

// BenchmarkMPSCStream is BenchmarkSPSCStream on an MPSC ring with one
// producer (the uncontended cost of the multi-producer protocol).
func BenchmarkMPSCStream(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run("batch="+strconv.Itoa(k), func(b *testing.B) {
			q, _ := sched.NewMPSC[uint64](4096)
			b.ReportAllocs()
			n := uint64(b.N)
			var wg sync.WaitGroup
			wg.Go(func() {
				buf := make([]uint64, k)
				s := 0
				for sent := uint64(0); sent < n; {
					m := q.EnqueueBatch(buf[:min(uint64(k), n-sent)])
					if m == 0 {
						spin(&s)
					}
					sent += uint64(m)
				}
			})
			buf := make([]uint64, k)
			s := 0
			for got := uint64(0); got < n; {
				m := q.DequeueBatch(buf)
				if m == 0 {
					spin(&s)
				}
				got += uint64(m)
			}
			wg.Wait()
		})
	}
}

// BenchmarkChanStream is the reference for the Stream benchmarks: a
// buffered channel of the same capacity.
func BenchmarkChanStream(b *testing.B) {
	c := make(chan uint64, 4096)
	b.ReportAllocs()
	go func() {
		for i := range uint64(b.N) {
			c <- i
		}
	}()
	for range b.N {
		<-c
	}
}

// BenchmarkSPSCPingPong is cross-core round-trip latency: one item goes to
// the other goroutine over one ring and comes back over another. ns/op is
// per round trip.
func BenchmarkSPSCPingPong(b *testing.B) {
	ping, _ := sched.NewSPSC[uint64](64)
	pong, _ := sched.NewSPSC[uint64](64)
	b.ReportAllocs()
	n := uint64(b.N)
	var wg sync.WaitGroup
	wg.Go(func() {
		s := 0
		for i := uint64(0); i < n; {
			v, ok := ping.Dequeue()
			if !ok {
				spin(&s)
				continue
			}
			for !pong.Enqueue(v) {
				spin(&s)
			}
			i++
		}
	})
	s := 0
	for i := range n {
		for !ping.Enqueue(i) {
			spin(&s)
		}
		for {
			v, ok := pong.Dequeue()
			if ok {
				if v != i {
					b.Fatalf("got %d, want %d", v, i)
				}
				break
			}
			spin(&s)
		}
	}
	wg.Wait()
}

// BenchmarkChanPingPong is the reference for BenchmarkSPSCPingPong.
func BenchmarkChanPingPong(b *testing.B) {
	ping, pong := make(chan uint64, 64), make(chan uint64, 64)
	b.ReportAllocs()
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	for i := range uint64(b.N) {
		ping <- i
		<-pong
	}
	close(ping)
}

// BenchmarkMPSCProducers has GOMAXPROCS producers (b.RunParallel) feeding
// one consumer goroutine; ns/op is per item. On a machine with few cores
// the consumer competes with the producers for CPU.
func BenchmarkMPSCProducers(b *testing.B) {
	q, _ := sched.NewMPSC[uint64](4096)
	b.ReportAllocs()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]uint64, 64)
		s := 0
		for {
			if q.DequeueBatch(buf) == 0 {
				select {
				case <-stop:
					return
				default:
				}
				spin(&s)
			}
		}
	})
	b.RunParallel(func(pb *testing.PB) {
		s := 0
		for pb.Next() {
			for !q.Enqueue(1) {
				spin(&s)
			}
		}
	})
	close(stop)
	wg.Wait()
}
