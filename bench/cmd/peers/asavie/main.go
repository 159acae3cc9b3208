// Command asavie is the asavie/xdp v0.3.3 rxdrop peer. It uses that
// library as its examples do: xdp.NewProgram (its translation of libbpf's
// default XSKMAP program, attached over netlink), one xdp.Socket per queue,
// and the loop Fill(GetDescs(NumFreeFillSlots())) → Poll → Receive. The
// library has no need_wakeup; in poll mode every empty ring costs a poll().
//
//	asavie -i IFACE [--queues N] [--cores LIST] [--poll|--busy] [--duration D]
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/peer"
)

func main() {
	peer.Main("asavie", nil, run)
}

func run(ctx context.Context, c *peer.Config) (string, error) {
	ifc, err := net.InterfaceByName(c.Iface)
	if err != nil {
		return "", err
	}
	switch c.XDPMode {
	case "native":
		xdp.DefaultXdpFlags = unix.XDP_FLAGS_DRV_MODE
	case "generic":
		xdp.DefaultXdpFlags = unix.XDP_FLAGS_SKB_MODE
	}
	xdp.DefaultSocketFlags = peer.BindFlags(c.Bind)

	prog, err := xdp.NewProgram(c.Queues)
	if err != nil {
		return "", err
	}
	defer prog.Close()
	if err := prog.Attach(ifc.Index); err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	defer prog.Detach(ifc.Index)

	opts := xdp.SocketOptions{
		NumFrames: c.Frames, FrameSize: 4096,
		FillRingNumDescs: c.Ring, CompletionRingNumDescs: c.Ring, RxRingNumDescs: c.Ring, TxRingNumDescs: c.Ring,
	}
	socks := make([]*xdp.Socket, c.Queues)
	for q := range socks {
		var s *xdp.Socket
		err := peer.RetryBusy(func() (err error) {
			// asavie wraps the errno with %v: match its text.
			s, err = xdp.NewSocket(ifc.Index, q, &opts)
			if err != nil && strings.Contains(err.Error(), unix.EBUSY.Error()) {
				return fmt.Errorf("%w: %v", unix.EBUSY, err)
			}
			return err
		})
		if err != nil {
			return "", fmt.Errorf("queue %d: %w", q, err)
		}
		defer s.Close()
		if err := prog.Register(q, s.FD()); err != nil {
			return "", err
		}
		socks[q] = s
	}
	fmt.Fprintf(os.Stderr, "asavie: %d queue(s) on %s, %s mode\n", c.Queues, c.Iface, peer.XDPMode(socks[0].FD()))

	var cnt peer.Counters
	var stop atomic.Bool
	read := func() peer.Snapshot {
		s := cnt.Load()
		for _, x := range socks {
			if st, err := peer.XDPStats(x.FD()); err == nil {
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
		xsk := socks[i]
		for !stop.Load() {
			if n := xsk.NumFreeFillSlots(); n > 0 {
				xsk.Fill(xsk.GetDescs(n))
			}
			var numRx int
			if c.Busy {
				numRx = xsk.NumReceived()
			} else {
				var err error
				numRx, _, err = xsk.Poll(100)
				cnt.Wakeups.Add(1)
				if err != nil && !errors.Is(err, unix.EINTR) {
					return err
				}
			}
			if numRx > 0 {
				rx := xsk.Receive(numRx)
				cnt.Rx.Add(uint64(len(rx)))
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
