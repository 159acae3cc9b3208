//go:build amd64 || arm64

package pipeline

import "golang.org/x/sys/unix"

// ppoll is ppoll(2) with no signal mask, as a raw system call in a stub
// of this package's own. Through x/sys a return from the sleep passed
// four functions on three pages of code (x/sys's stub, syscall's ABI
// wrapper, syscall.RawSyscall6, the runtime's Syscall6): on a kernel with
// page-table isolation and a CPU without PCID every system call empties
// the TLB, so each of those pages cost a page walk at every wakeup. The
// stub lands with the package's code, after the worker's loop.
//
//go:noescape
func ppoll(fds *unix.PollFd, nfds uintptr, ts *unix.Timespec) (errno uintptr)
