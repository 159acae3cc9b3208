// Command gvisor is the gVisor pkg/xdp rxdrop peer. Its receive loop is
// gVisor's own AF_XDP link endpoint (pkg/tcpip/link/xdp, dispatch) minus the
// copy into a netstack buffer: block in rawfile.BlockingPollUntilStopped,
// then RX.Peek everything, free each frame to the UMEM under its lock,
// Fill.FillAll, RX.Release. pkg/xdp has no XDP program of its own (gVisor
// loads one from runsc), so this peer attaches the libxdp-style XSKMAP
// redirect of internal/xdpprog.
//
//	gvisor -i IFACE [--queues N] [--cores LIST] [--poll|--busy] [--duration D]
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip/link/stopfd"
	"gvisor.dev/gvisor/pkg/xdp"

	"github.com/tygress/tygress/bench/internal/peer"
	"github.com/tygress/tygress/bench/internal/xdpprog"
)

func main() {
	peer.Main("gvisor", nil, run)
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

	cbs := make([]*xdp.ControlBlock, c.Queues)
	for q := range cbs {
		fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		// Bind ourselves (not through Opts.Bind) to honour --bind; gVisor's
		// own Bind passes no mode flags, which is --bind auto; like gVisor's
		// link endpoint, no need_wakeup.
		cb, err := xdp.NewFromSocket(fd, uint32(ifc.Index), uint32(q), xdp.Opts{
			NFrames: uint32(c.Frames), FrameSize: 4096, NDescriptors: uint32(c.Ring),
		})
		if err != nil {
			return "", fmt.Errorf("queue %d: %w", q, err)
		}
		sa := &unix.SockaddrXDP{Flags: peer.BindFlags(c.Bind), Ifindex: uint32(ifc.Index), QueueID: uint32(q)}
		if err := peer.RetryBusy(func() error { return unix.Bind(fd, sa) }); err != nil {
			return "", fmt.Errorf("bind queue %d: %w", q, err)
		}
		cb.UMEM.Lock()
		cb.Fill.FillAll(&cb.UMEM)
		cb.UMEM.Unlock()
		if err := steer.Register(q, fd); err != nil {
			return "", err
		}
		cbs[q] = cb
	}
	fmt.Fprintf(os.Stderr, "gvisor: %d queue(s) on %s, xdp %s, %s mode\n", c.Queues, c.Iface, steer.Mode, peer.XDPMode(int(cbs[0].UMEM.SockFD())))

	stops := make([]stopfd.StopFD, len(cbs))
	for i := range stops {
		if stops[i], err = stopfd.New(); err != nil {
			return "", err
		}
		defer unix.Close(stops[i].EFD)
	}
	var cnt peer.Counters
	var stop atomic.Bool
	read := func() peer.Snapshot {
		s := cnt.Load()
		for _, cb := range cbs {
			if st, err := peer.XDPStats(int(cb.UMEM.SockFD())); err == nil {
				s.FillEmpty += st.Rx_fill_ring_empty_descs
				s.Drops += st.Rx_dropped + st.Rx_ring_full
			}
		}
		return s
	}
	go peer.Monitor(ctx, os.Stdout, c.Quiet, read)
	go func() {
		<-ctx.Done()
		stop.Store(true)
		for i := range stops {
			stops[i].Stop()
		}
	}()

	start, allocs := time.Now(), peer.Mallocs()
	err = c.Workers(len(cbs), func(i int) error {
		cb, fd := cbs[i], int(cbs[i].UMEM.SockFD())
		for !stop.Load() {
			if !c.Busy {
				stopped, errno := rawfile.BlockingPollUntilStopped(stops[i].EFD, fd, unix.POLLIN|unix.POLLERR)
				cnt.Wakeups.Add(1)
				if errno != 0 && errno != unix.EINTR {
					return fmt.Errorf("poll: %w", errno)
				}
				if stopped {
					return nil
				}
			}
			// As gVisor's dispatch: peek until the ring is empty.
			for {
				n, idx := cb.RX.Peek()
				if n == 0 {
					break
				}
				cb.UMEM.Lock()
				for j := range n {
					cb.UMEM.FreeFrame(cb.RX.Get(idx + j).Addr)
				}
				cb.Fill.FillAll(&cb.UMEM)
				cb.UMEM.Unlock()
				cb.RX.Release(n)
				cnt.Rx.Add(uint64(n))
			}
		}
		return nil
	})
	secs, allocs := time.Since(start).Seconds(), peer.Mallocs()-allocs
	if err != nil {
		return "", err
	}
	return peer.Summary(read(), secs, allocs), nil
}
