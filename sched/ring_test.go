package sched_test

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tygress/tygress/sched"
)

// stressCount is how many sequence numbers the stress tests move.
func stressCount(t testing.TB) uint64 {
	switch {
	case testing.Short():
		return 100_000
	case raceEnabled:
		return 1_000_000
	default:
		return 10_000_000
	}
}

func TestRingSizes(t *testing.T) {
	for _, size := range []int{-8, -1, 0, 3, 6, 12, 1000, 1<<32 + 1, 1 << 33} {
		if _, err := sched.NewSPSC[int](size); !errors.Is(err, sched.ErrRingSize) {
			t.Errorf("NewSPSC(%d): err = %v, want ErrRingSize", size, err)
		}
		if _, err := sched.NewMPSC[int](size); !errors.Is(err, sched.ErrRingSize) {
			t.Errorf("NewMPSC(%d): err = %v, want ErrRingSize", size, err)
		}
	}
	for _, size := range []int{1, 2, 4, 64, 1 << 16} {
		r, err := sched.NewSPSC[int](size)
		if err != nil {
			t.Fatalf("NewSPSC(%d): %v", size, err)
		}
		if r.Cap() != size || r.Len() != 0 {
			t.Errorf("NewSPSC(%d): Cap %d Len %d", size, r.Cap(), r.Len())
		}
		q, err := sched.NewMPSC[int](size)
		if err != nil {
			t.Fatalf("NewMPSC(%d): %v", size, err)
		}
		if q.Cap() != size || q.Len() != 0 {
			t.Errorf("NewMPSC(%d): Cap %d Len %d", size, q.Cap(), q.Len())
		}
	}
}

// ring is the API that SPSC and MPSC share, so edge cases run on both.
type ring interface {
	Enqueue(int) bool
	EnqueueBatch([]int) int
	Dequeue() (int, bool)
	DequeueBatch([]int) int
	Len() int
	Cap() int
}

func rings(t *testing.T, size int) map[string]ring {
	t.Helper()
	s, err := sched.NewSPSC[int](size)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sched.NewMPSC[int](size)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]ring{"SPSC": s, "MPSC": m}
}

func TestRingEmptyFull(t *testing.T) {
	for name, r := range rings(t, 8) {
		t.Run(name, func(t *testing.T) {
			if v, ok := r.Dequeue(); ok {
				t.Fatalf("Dequeue on empty ring = %d, true", v)
			}
			out := make([]int, 16)
			if n := r.DequeueBatch(out); n != 0 {
				t.Fatalf("DequeueBatch on empty ring = %d", n)
			}
			if n := r.EnqueueBatch(nil); n != 0 {
				t.Fatalf("EnqueueBatch(nil) = %d", n)
			}
			for i := range 5 {
				if !r.Enqueue(i) {
					t.Fatalf("Enqueue(%d) failed at Len %d", i, r.Len())
				}
			}
			// A batch larger than the free space is cut to fit.
			if n := r.EnqueueBatch([]int{5, 6, 7, 8, 9}); n != 3 {
				t.Fatalf("EnqueueBatch of 5 into 3 free slots = %d", n)
			}
			if r.Len() != 8 {
				t.Fatalf("Len of full ring = %d", r.Len())
			}
			if r.Enqueue(99) {
				t.Fatal("Enqueue into full ring succeeded")
			}
			if n := r.EnqueueBatch([]int{99}); n != 0 {
				t.Fatalf("EnqueueBatch into full ring = %d", n)
			}
			if n := r.DequeueBatch(nil); n != 0 {
				t.Fatalf("DequeueBatch(nil) = %d", n)
			}
			if n := r.DequeueBatch(out[:3]); n != 3 || out[0] != 0 || out[2] != 2 {
				t.Fatalf("DequeueBatch(3) = %d %v", n, out[:n])
			}
			// Free space again: wraps around the end of the buffer.
			if n := r.EnqueueBatch([]int{8, 9, 10, 11}); n != 3 {
				t.Fatalf("EnqueueBatch after partial drain = %d, want 3", n)
			}
			var got []int
			for {
				v, ok := r.Dequeue()
				if !ok {
					break
				}
				got = append(got, v)
			}
			want := []int{3, 4, 5, 6, 7, 8, 9, 10}
			if !equal(got, want) {
				t.Fatalf("drained %v, want %v", got, want)
			}
			if r.Len() != 0 {
				t.Fatalf("Len after drain = %d", r.Len())
			}
		})
	}
}

func TestRingSizeOne(t *testing.T) {
	for name, r := range rings(t, 1) {
		t.Run(name, func(t *testing.T) {
			for i := range 10 {
				if !r.Enqueue(i) {
					t.Fatalf("Enqueue(%d) into empty ring failed", i)
				}
				if r.Enqueue(-1) {
					t.Fatal("Enqueue into full size-1 ring succeeded")
				}
				if v, ok := r.Dequeue(); !ok || v != i {
					t.Fatalf("Dequeue = %d, %v; want %d", v, ok, i)
				}
			}
		})
	}
}

// TestRingSlotWrap moves items through a small ring with every batch size,
// so that each batch starts at every offset and many batches straddle the
// end of the buffer.
func TestRingSlotWrap(t *testing.T) {
	for name, r := range rings(t, 16) {
		t.Run(name, func(t *testing.T) {
			next, want := 0, 0
			in, out := make([]int, 20), make([]int, 20)
			for round := range 2000 {
				k := 1 + round%20
				for i := range k {
					in[i] = next + i
				}
				next += r.EnqueueBatch(in[:k])
				n := r.DequeueBatch(out[:1+(round*7)%20])
				for _, v := range out[:n] {
					if v != want {
						t.Fatalf("round %d: got %d, want %d", round, v, want)
					}
					want++
				}
			}
			if want < 10000 {
				t.Fatalf("only %d items moved", want)
			}
		})
	}
}

func TestRingZeroAllocs(t *testing.T) {
	for name, r := range rings(t, 64) {
		t.Run(name, func(t *testing.T) {
			in, out := make([]int, 32), make([]int, 32)
			allocs := testing.AllocsPerRun(1000, func() {
				r.Enqueue(1)
				r.Dequeue()
				r.EnqueueBatch(in)
				r.DequeueBatch(out)
				_ = r.Len()
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per run, want 0", allocs)
			}
		})
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// backoff yields the processor after a failed attempt, so the stress tests
// make progress with GOMAXPROCS=1 and under the race detector.
func backoff(spins *int) {
	*spins++
	if *spins%16 == 0 {
		runtime.Gosched()
	}
}

// TestSPSCStress moves stressCount sequence numbers from a producer
// goroutine to a consumer goroutine with random batch sizes (and single
// operations) on both sides, and checks that they arrive in order, each
// exactly once.
func TestSPSCStress(t *testing.T) {
	total := stressCount(t)
	for _, size := range []int{1, 8, 256, 4096} {
		t.Run("size="+strconv.Itoa(size), func(t *testing.T) {
			total := total
			if size <= 8 {
				total /= 10 // tiny rings: mostly full/empty spinning
			}
			r, err := sched.NewSPSC[uint64](size)
			if err != nil {
				t.Fatal(err)
			}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d, %d items", seed, total)
			maxBatch := 2*size + 3
			var wg sync.WaitGroup
			wg.Go(func() { // producer
				rng := rand.New(rand.NewPCG(seed, 1))
				buf := make([]uint64, maxBatch)
				spins := 0
				for next := uint64(0); next < total; {
					if rng.IntN(4) == 0 {
						if r.Enqueue(next) {
							next++
						} else {
							backoff(&spins)
						}
						continue
					}
					k := min(uint64(1+rng.IntN(maxBatch)), total-next)
					for i := range k {
						buf[i] = next + i
					}
					n := r.EnqueueBatch(buf[:k])
					if n < 0 || uint64(n) > k {
						t.Errorf("EnqueueBatch(%d) = %d", k, n)
						return
					}
					if n == 0 {
						backoff(&spins)
					}
					next += uint64(n)
				}
			})
			rng := rand.New(rand.NewPCG(seed, 2))
			buf := make([]uint64, maxBatch)
			spins := 0
			for want := uint64(0); want < total; {
				if l := r.Len(); l < 0 || l > size {
					t.Fatalf("Len = %d outside [0, %d]", l, size)
				}
				if rng.IntN(4) == 0 {
					v, ok := r.Dequeue()
					if !ok {
						backoff(&spins)
						continue
					}
					if v != want {
						t.Fatalf("Dequeue = %d, want %d", v, want)
					}
					want++
					continue
				}
				n := r.DequeueBatch(buf[:1+rng.IntN(maxBatch)])
				if n == 0 {
					backoff(&spins)
				}
				for _, v := range buf[:n] {
					if v != want {
						t.Fatalf("DequeueBatch gave %d, want %d", v, want)
					}
					want++
				}
			}
			wg.Wait()
			if v, ok := r.Dequeue(); ok {
				t.Fatalf("extra item %d after %d", v, total)
			}
		})
	}
}

// TestMPSCStress runs several producers, each sending its own sequence,
// into one consumer, and checks each producer's order and the total.
func TestMPSCStress(t *testing.T) {
	const producers = 4
	total := stressCount(t)
	for _, size := range []int{2, 64, 1024} {
		t.Run("size="+strconv.Itoa(size), func(t *testing.T) {
			per := total / producers
			if size <= 8 {
				per /= 10 // tiny rings: mostly full/empty spinning
			}
			q, err := sched.NewMPSC[uint64](size)
			if err != nil {
				t.Fatal(err)
			}
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d, %d producers × %d items", seed, producers, per)
			maxBatch := size + 3
			var wg sync.WaitGroup
			for p := range uint64(producers) {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(seed, p))
					buf := make([]uint64, maxBatch)
					spins := 0
					for next := uint64(0); next < per; {
						if rng.IntN(3) == 0 {
							if q.Enqueue(p<<32 | next) {
								next++
							} else {
								backoff(&spins)
							}
							continue
						}
						k := min(uint64(1+rng.IntN(maxBatch)), per-next)
						for i := range k {
							buf[i] = p<<32 | (next + i)
						}
						n := q.EnqueueBatch(buf[:k])
						if n == 0 {
							backoff(&spins)
						}
						next += uint64(n)
					}
				})
			}
			var want [producers]uint64
			rng := rand.New(rand.NewPCG(seed, 99))
			buf := make([]uint64, maxBatch)
			spins := 0
			check := func(v uint64) {
				p, s := v>>32, v&0xffffffff
				if p >= producers {
					t.Fatalf("bad producer in %#x", v)
				}
				if s != want[p] {
					t.Fatalf("producer %d: got seq %d, want %d", p, s, want[p])
				}
				want[p]++
			}
			for got := uint64(0); got < per*producers; {
				if l := q.Len(); l < 0 || l > size {
					t.Fatalf("Len = %d outside [0, %d]", l, size)
				}
				if rng.IntN(3) == 0 {
					v, ok := q.Dequeue()
					if !ok {
						backoff(&spins)
						continue
					}
					check(v)
					got++
					continue
				}
				n := q.DequeueBatch(buf[:1+rng.IntN(maxBatch)])
				if n == 0 {
					backoff(&spins)
				}
				for _, v := range buf[:n] {
					check(v)
				}
				got += uint64(n)
			}
			wg.Wait()
			for p, w := range want {
				if w != per {
					t.Errorf("producer %d: received %d, want %d", p, w, per)
				}
			}
			if v, ok := q.Dequeue(); ok {
				t.Fatalf("extra item %#x", v)
			}
		})
	}
}

// TestMPSCBatchContiguous checks that the items of one EnqueueBatch call
// are dequeued back to back, never interleaved with another producer's.
func TestMPSCBatchContiguous(t *testing.T) {
	const producers = 3
	per := stressCount(t) / 10
	q, err := sched.NewMPSC[uint64](64)
	if err != nil {
		t.Fatal(err)
	}
	// An item is producer<<40 | call<<8 | index within the call.
	var wg sync.WaitGroup
	for p := range uint64(producers) {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(p, 7))
			buf := make([]uint64, 40)
			spins := 0
			for sent, call := uint64(0), uint64(0); sent < per; call++ {
				k := min(uint64(1+rng.IntN(len(buf))), per-sent)
				for i := range k {
					buf[i] = p<<40 | (call&0xffffffff)<<8 | i
				}
				n := q.EnqueueBatch(buf[:k])
				if n == 0 {
					backoff(&spins)
				}
				sent += uint64(n)
			}
		})
	}
	var prev uint64
	spins := 0
	for got := uint64(0); got < per*producers; {
		v, ok := q.Dequeue()
		if !ok {
			backoff(&spins)
			continue
		}
		if v&0xff != 0 && v != prev+1 {
			t.Fatalf("item %#x follows %#x: batch interleaved", v, prev)
		}
		prev = v
		got++
	}
	wg.Wait()
}
