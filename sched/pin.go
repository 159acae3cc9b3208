//go:build linux

package sched

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"

	"golang.org/x/sys/unix"
)

// ErrInvalidCPU is returned by Pin for a negative or absurdly large CPU
// number. A CPU that exists but is outside the process's cpuset gives the
// kernel's EINVAL instead (wrapped; errors.Is(err, unix.EINVAL)).
var ErrInvalidCPU = errors.New("invalid cpu number")

// launchMask is the affinity of the thread that ran package initialisation
// (the main thread, at start-up): the mask the process was launched with,
// e.g. by taskset or a cpuset cgroup. Unpin restores it. It is never
// modified after init.
var launchMask = func() unix.CPUSetDynamic {
	s, err := threadAffinity()
	if err != nil {
		// Fall back to "every CPU": the kernel intersects the mask with
		// the cpuset the thread may use.
		s = unix.NewCPUSet(maxCPUID)
		s.Fill()
	}
	return s
}()

// threadAffinity returns the calling thread's affinity mask. The kernel
// refuses a buffer smaller than its own mask (nr_cpu_ids bits), so the
// buffer grows until it fits, as glibc's sched_getaffinity does.
func threadAffinity() (unix.CPUSetDynamic, error) {
	for size := 1024; ; size *= 2 {
		s := unix.NewCPUSet(size)
		err := unix.SchedGetaffinityDynamic(0, s)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, unix.EINVAL) || size >= maxCPUID {
			return nil, fmt.Errorf("sched_getaffinity: %w", err)
		}
	}
}

// Pin locks the calling goroutine to its current OS thread
// (runtime.LockOSThread) and restricts that thread to run only on cpu.
// Call it first thing in a worker goroutine.
//
// The lock comes first so that the runtime never moves another goroutine
// onto the restricted thread; and while a goroutine is locked, the runtime
// creates new threads from its template thread, never by cloning the
// pinned one, so the restriction does not leak into other threads.
//
// A goroutine that returns while still pinned takes its thread with it: the
// runtime destroys a thread whose goroutine exits locked. That is the
// simplest correct way to end a worker; Unpin is for goroutines that go on
// running other work.
//
// On failure the thread's affinity is unchanged and the goroutine is
// unlocked again (Pin undoes its own LockOSThread).
func Pin(cpu int) error {
	if cpu < 0 || cpu >= maxCPUID {
		return fmt.Errorf("%w: %d", ErrInvalidCPU, cpu)
	}
	runtime.LockOSThread()
	set := unix.NewCPUSet(cpu + 1)
	set.Set(cpu)
	if err := unix.SchedSetaffinityDynamic(0, set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin to cpu %d: sched_setaffinity: %w", cpu, err)
	}
	return nil
}

// Unpin undoes Pin: it restores the calling thread's affinity to the mask
// the process started with, then undoes one runtime.LockOSThread. Nested
// Pins on one goroutine each need an Unpin (like LockOSThread), but the
// first Unpin already restores the affinity.
//
// If the affinity cannot be restored, Unpin returns the error and leaves the
// goroutine locked, so that the runtime destroys the restricted thread when
// the goroutine exits instead of reusing it for other goroutines.
func Unpin() error {
	if err := unix.SchedSetaffinityDynamic(0, launchMask); err != nil {
		return fmt.Errorf("unpin: sched_setaffinity: %w", err)
	}
	runtime.UnlockOSThread()
	return nil
}

// AllowedCPUs returns the CPUs, in increasing order, that the calling
// thread may run on (sched_getaffinity). Called from an unpinned goroutine
// this is the process's set: what taskset or the cpuset cgroup allow. Called
// from a pinned goroutine it is the one CPU it is pinned to.
func AllowedCPUs() ([]int, error) {
	s, err := threadAffinity()
	if err != nil {
		return nil, err
	}
	cpus := make([]int, 0, s.Count())
	for i := range len(s) * bits.UintSize { // cpuMask is a C long
		if s.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}
