// Command xsys is the plain-Go AF_XDP reference: the C xdpsock sample's
// rxdrop written directly on golang.org/x/sys, with no library in between.
// Rings are mmapped and their indices read and written with sync/atomic,
// cached, and published once per batch; received frame addresses go
// straight back to the fill ring. need_wakeup is on. It shows what the
// language and the syscalls cost without any framework.
//
//	xsys -i IFACE [--queues N] [--cores LIST] [--poll|--busy] [--batch 64] [--duration D]
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/peer"
	"github.com/tygress/tygress/bench/internal/xdpprog"
)

func main() {
	peer.Main("xsys", nil, run)
}

func run(ctx context.Context, c *peer.Config) (string, error) {
	ifc, err := net.InterfaceByName(c.Iface)
	if err != nil {
		return "", err
	}
	steer, err := xdpprog.NewXSKSteering(ifc.Index, c.Queues, c.XDPMode)
	if err != nil {
		return "", err
	}
	defer steer.Close()
	socks := make([]*socket, c.Queues)
	for q := range socks {
		s, err := newSocket(ifc.Index, q, c.Frames, c.Ring, peer.BindFlags(c.Bind))
		if err != nil {
			return "", fmt.Errorf("queue %d: %w", q, err)
		}
		defer s.close()
		if err := steer.Register(q, s.fd); err != nil {
			return "", err
		}
		socks[q] = s
	}
	fmt.Fprintf(os.Stderr, "xsys: %d queue(s) on %s, xdp %s, %s mode\n", c.Queues, c.Iface, steer.Mode, peer.XDPMode(socks[0].fd))

	var cnt peer.Counters
	var stop atomic.Bool
	read := func() peer.Snapshot {
		s := cnt.Load()
		for _, x := range socks {
			if st, err := peer.XDPStats(x.fd); err == nil {
				s.FillEmpty += st.Rx_fill_ring_empty_descs
				s.Drops += st.Rx_dropped + st.Rx_ring_full
			}
		}
		return s
	}
	go peer.Monitor(ctx, os.Stdout, c.Quiet, read)
	go func() { <-ctx.Done(); stop.Store(true) }()

	start, allocs := time.Now(), peer.Mallocs()
	err = c.Workers(len(socks), func(i int) error {
		s := socks[i]
		pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
		batch := uint32(c.Batch)
		for !stop.Load() {
			n, idx := s.rx.peek(batch)
			if n == 0 {
				if c.Busy {
					if s.fill.needWakeup() {
						unix.Recvfrom(s.fd, nil, unix.MSG_DONTWAIT)
						cnt.Wakeups.Add(1)
					}
					continue
				}
				cnt.Wakeups.Add(1)
				if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
					return err
				}
				continue
			}
			// Every received frame goes straight back to the fill ring,
			// which has room: it holds every frame the socket owns.
			fidx := s.fill.next()
			for j := range n {
				s.fill.addrs[(fidx+j)&s.fill.mask] = s.rx.descs[(idx+j)&s.rx.mask].Addr
			}
			s.fill.submit(n)
			s.rx.release(n)
			cnt.Rx.Add(uint64(n))
		}
		return nil
	})
	secs, allocs := time.Since(start).Seconds(), peer.Mallocs()-allocs
	if err != nil {
		return "", err
	}
	return peer.Summary(read(), secs, allocs), nil
}
