package pipeline

import (
	"testing"
	"time"
)

func TestNowFollowsWallAndNeverGoesBack(t *testing.T) {
	prev := Now()
	for i := 0; i < 1000; i++ {
		n := Now()
		if n < prev {
			t.Fatalf("Now went back: %d after %d", n, prev)
		}
		prev = n
	}
	time.Sleep(20 * time.Millisecond)
	n, wall := Now(), time.Now().UnixNano()
	if d := time.Duration(wall - n); d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("Now is %v away from the wall clock", d)
	}
	if n-prev < int64(20*time.Millisecond) {
		t.Fatalf("Now advanced %v across a 20 ms sleep", time.Duration(n-prev))
	}
}

func BenchmarkNow(b *testing.B) {
	var s int64
	for b.Loop() {
		s += Now()
	}
	_ = s
}

func BenchmarkTimeNowUnixNano(b *testing.B) {
	var s int64
	for b.Loop() {
		s += time.Now().UnixNano()
	}
	_ = s
}
