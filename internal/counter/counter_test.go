package counter

import (
	"sync"
	"testing"
)

func TestAddLoad(t *testing.T) {
	var c Counter
	for i := uint64(1); i <= 1000; i++ {
		c.Add(i)
	}
	if got := c.Load(); got != 500500 {
		t.Fatalf("Load = %d, want 500500", got)
	}
}

// One writer and concurrent readers: a reader never sees the count go
// back, and the writer's total is exact.
func TestConcurrentReaders(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := c.Load()
				if v < last {
					t.Errorf("count went back from %d to %d", last, v)
					return
				}
				last = v
			}
		}()
	}
	for i := 0; i < 200000; i++ {
		c.Add(3)
	}
	close(stop)
	wg.Wait()
	if got := c.Load(); got != 600000 {
		t.Fatalf("Load = %d, want 600000", got)
	}
}

func BenchmarkAdd(b *testing.B) {
	var c Counter
	for b.Loop() {
		c.Add(1)
	}
}
