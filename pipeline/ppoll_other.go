//go:build !amd64 && !arm64

package pipeline

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ppoll is ppoll(2) with no signal mask, as a raw system call.
func ppoll(fds *unix.PollFd, nfds uintptr, ts *unix.Timespec) (errno uintptr) {
	_, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(fds)), nfds, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	return uintptr(e)
}
