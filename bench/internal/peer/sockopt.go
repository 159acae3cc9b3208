package peer

import (
	"errors"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// XDPStats reads XDP_STATISTICS of an AF_XDP socket.
func XDPStats(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	l := uint32(unsafe.Sizeof(st))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return st, errno
	}
	return st, nil
}

// XDPMode reads XDP_OPTIONS and says "zero-copy" or "copy".
func XDPMode(fd int) string {
	var o uint32
	l := uint32(unsafe.Sizeof(o))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_OPTIONS,
		uintptr(unsafe.Pointer(&o)), uintptr(unsafe.Pointer(&l)), 0)
	switch {
	case errno != 0:
		return "unknown"
	case o&unix.XDP_OPTIONS_ZEROCOPY != 0:
		return "zero-copy"
	}
	return "copy"
}

// BindFlags maps --bind to XDP bind flags (auto: none, the kernel tries
// zero-copy and falls back to copy).
func BindFlags(mode string) uint16 {
	switch mode {
	case "copy":
		return unix.XDP_COPY
	case "zc", "zero-copy":
		return unix.XDP_ZEROCOPY
	}
	return 0
}

// Workers starts fn(i) for each of n workers on its own goroutine, pinned
// when --cores was given, and waits for all. The first error wins.
func (c *Config) Workers(n int, fn func(i int) error) error {
	errc := make(chan error, n)
	for i := range n {
		go func() {
			if cpu, ok := c.Core(i); ok {
				if err := PinThread(cpu); err != nil {
					errc <- err
					return
				}
			}
			errc <- fn(i)
		}()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// RetryBusy calls fn until it stops failing with EBUSY, for up to two
// seconds: re-binding a queue within ~20 ms of closing the previous socket
// on it gives EBUSY, and the harness runs peers back to back.
func RetryBusy(fn func() error) error {
	deadline := time.Now().Add(2 * time.Second)
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		err := fn()
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(backoff)
	}
}
