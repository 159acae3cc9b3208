package link

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// poller blocks on a socket and an eventfd: Wait and Wake of the links
// built on kernel sockets.
//
// Wake writes the eventfd only on the first Wake since the owner last
// consumed one (woken), so a burst of Wakes from application goroutines
// costs one write(2). The owner reads the eventfd only when poll says it is
// readable, then clears woken: every Wake that saw woken already set
// happened before that clear, and so before Wait returned.
type poller struct {
	fds   [2]unix.PollFd
	ts    unix.Timespec
	buf   [8]byte
	woken atomic.Bool
	mu    sync.RWMutex // Close against Wake: never write a closed (reused) fd
	shut  bool
}

// eventfdOne adds a non-zero count to an eventfd (1 on little-endian hosts;
// any non-zero count wakes the poller).
var eventfdOne = [8]byte{1}

func newPoller(sockFD int) (*poller, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p := &poller{}
	p.fds[0] = unix.PollFd{Fd: int32(sockFD), Events: unix.POLLIN}
	p.fds[1] = unix.PollFd{Fd: int32(efd), Events: unix.POLLIN}
	return p, nil
}

// wait blocks until the socket is readable, timeout passes (negative:
// forever) or wake is called. It reports whether the socket is readable.
func (p *poller) wait(timeout time.Duration) (bool, error) {
	var ts *unix.Timespec
	if timeout >= 0 {
		p.ts = unix.NsecToTimespec(int64(timeout))
		ts = &p.ts
	}
	_, err := unix.Ppoll(p.fds[:], ts, nil)
	if err == unix.EINTR {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("poll: %w", err)
	}
	if p.fds[1].Revents&unix.POLLIN != 0 {
		unix.Read(int(p.fds[1].Fd), p.buf[:]) // resets the counter
		p.woken.Store(false)
	}
	return p.fds[0].Revents&(unix.POLLIN|unix.POLLERR|unix.POLLHUP) != 0, nil
}

// wake interrupts wait; safe for concurrent use and after close.
func (p *poller) wake() {
	if !p.woken.CompareAndSwap(false, true) {
		return
	}
	p.mu.RLock()
	if !p.shut {
		unix.Write(int(p.fds[1].Fd), eventfdOne[:])
	}
	p.mu.RUnlock()
}

func (p *poller) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return nil
	}
	p.shut = true
	return unix.Close(int(p.fds[1].Fd))
}
