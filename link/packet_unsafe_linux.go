package link

// The only unsafe code of package link: recvmmsg(2) and sendmmsg(2), which
// golang.org/x/sys/unix defines types for (Mmsghdr) but has no wrappers of.
// The message headers, iovecs and buffers they point to are Go memory owned
// by the Packet link and kept alive by it; the Go heap does not move.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func recvmmsg(fd int, msgs []unix.Mmsghdr, flags int) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func sendmmsg(fd int, msgs []unix.Mmsghdr, flags int) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
