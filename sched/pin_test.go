//go:build linux

package sched_test

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/tygress/tygress/sched"
	"golang.org/x/sys/unix"
)

// threadCPUs returns the calling thread's affinity.
func threadCPUs(t *testing.T) []int {
	t.Helper()
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	var cpus []int
	for i := range 1024 {
		if s.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

func TestPin(t *testing.T) {
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) == 0 {
		t.Fatal("AllowedCPUs is empty")
	}
	for _, cpu := range allowed {
		var wg sync.WaitGroup
		wg.Go(func() {
			runtime.LockOSThread() // keep this goroutine on one thread for the checks
			defer runtime.UnlockOSThread()
			before := threadCPUs(t)
			if err := sched.Pin(cpu); err != nil {
				t.Errorf("Pin(%d): %v", cpu, err)
				return
			}
			if got := threadCPUs(t); !slices.Equal(got, []int{cpu}) {
				t.Errorf("after Pin(%d) thread affinity = %v", cpu, got)
			}
			if got, err := sched.AllowedCPUs(); err != nil || !slices.Equal(got, []int{cpu}) {
				t.Errorf("after Pin(%d) AllowedCPUs = %v, %v", cpu, got, err)
			}
			// Let the scheduler move us if it could: we must still be on cpu.
			runtime.Gosched()
			if c, err := getcpu(); err == nil && c != cpu {
				t.Errorf("pinned to %d but running on %d", cpu, c)
			}
			if err := sched.Unpin(); err != nil {
				t.Errorf("Unpin: %v", err)
			}
			if got := threadCPUs(t); !slices.Equal(got, before) {
				t.Errorf("after Unpin thread affinity = %v, want %v", got, before)
			}
		})
		wg.Wait()
	}
}

// getcpu reports the CPU the calling thread runs on.
func getcpu() (int, error) {
	var cpu, node uint32
	_, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0)
	if e != 0 {
		return 0, e
	}
	return int(cpu), nil
}

func TestPinErrors(t *testing.T) {
	for _, cpu := range []int{-1, 1 << 20} {
		if err := sched.Pin(cpu); !errors.Is(err, sched.ErrInvalidCPU) {
			t.Errorf("Pin(%d) = %v, want ErrInvalidCPU", cpu, err)
		}
	}
	// A CPU that is not allowed (here: beyond the machine) is refused by the
	// kernel, and the thread keeps its affinity.
	var wg sync.WaitGroup
	wg.Go(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before := threadCPUs(t)
		cpu := 1000
		err := sched.Pin(cpu)
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("Pin(%d) = %v, want EINVAL", cpu, err)
		}
		if got := threadCPUs(t); !slices.Equal(got, before) {
			t.Errorf("failed Pin changed affinity to %v", got)
		}
	})
	wg.Wait()
}

// TestPinnedWorkerExit: a goroutine that exits while pinned must not leave
// its restricted thread behind for other goroutines.
func TestPinnedWorkerExit(t *testing.T) {
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) < 2 {
		t.Skip("needs two allowed CPUs")
	}
	for range 20 {
		done := make(chan error)
		go func() { done <- sched.Pin(allowed[0]) }() // exits still pinned
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// Every goroutine that runs now must see the full set.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if got := threadCPUs(t); !slices.Equal(got, allowed) {
				t.Errorf("thread affinity %v, want %v: a pinned thread was reused", got, allowed)
			}
		})
	}
	wg.Wait()
}
