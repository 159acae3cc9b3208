// Command xsk is rxdrop and l2fwd on Tygress's own xsk package without the
// pipeline and scheduler on top: UMEM, FramePool, Socket.Receive (with
// descriptor validation), FramePool.Put, Socket.Refill, Socket.Poll, and for
// l2fwd a second socket on the output port sharing the UMEM
// (XDP_SHARED_UMEM), Socket.Transmit and Socket.Complete. Set beside tyfwd
// it separates the cost of the socket layer from the cost of the framework
// above it.
//
//	xsk -i IFACE [--queues N] [--cores LIST] [--poll|--busy] [--batch 64] [--bind auto|copy|zc] [--duration D]
//	xsk -i IN -o OUT [--dst-mac MAC] ...      (l2fwd: rewrite MACs, send out of OUT)
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/tygress/tygress/xsk"

	"github.com/tygress/tygress/bench/internal/peer"
	"github.com/tygress/tygress/bench/internal/xdpprog"
)

func main() {
	var dstMAC string
	peer.Main("xsk", func(fs *flag.FlagSet) {
		fs.StringVar(&dstMAC, "dst-mac", "", "l2fwd: destination MAC written into each frame (default: unchanged)")
	}, func(ctx context.Context, c *peer.Config) (string, error) {
		if c.Out != "" {
			return l2fwd(ctx, c, dstMAC)
		}
		return run(ctx, c)
	})
}

func run(ctx context.Context, c *peer.Config) (string, error) {
	ifc, err := net.InterfaceByName(c.Iface)
	if err != nil {
		return "", err
	}
	bind, err := xsk.ParseBindMode(c.Bind)
	if err != nil {
		return "", err
	}
	steer, err := xdpprog.NewXSKSteering(ifc.Index, c.Queues, c.XDPMode)
	if err != nil {
		return "", err
	}
	defer steer.Close()

	socks := make([]*xsk.Socket, c.Queues)
	for q := range socks {
		u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 4096, NumFrames: c.Frames})
		if err != nil {
			return "", err
		}
		defer u.Close()
		pool, err := xsk.NewFramePool(u, 0, c.Frames)
		if err != nil {
			return "", err
		}
		o := xsk.DefaultSocketOptions()
		o.RxSize, o.FillSize, o.CompSize, o.TxSize = c.Ring, c.Ring, c.Ring, 0
		o.Bind = bind
		s, err := xsk.NewSocket(pool, ifc.Index, q, o)
		if err != nil {
			return "", fmt.Errorf("queue %d: %w", q, err)
		}
		defer s.Close()
		s.Refill()
		if err := steer.Register(q, s.FD()); err != nil {
			return "", err
		}
		socks[q] = s
	}
	fmt.Fprintf(os.Stderr, "xsk: %d queue(s) on %s, xdp %s, %s mode\n", c.Queues, c.Iface, steer.Mode, socks[0].Mode())

	var stop atomic.Bool
	read := func() peer.Snapshot {
		var s peer.Snapshot
		for _, x := range socks {
			st := x.Stats()
			s.Rx += st.RxFrames
			s.Wakeups += st.RxWakeups + st.TxKicks
			if ks, err := x.KernelStats(); err == nil {
				s.FillEmpty += ks.RxFillRingEmpty
				s.Drops += ks.RxDropped + ks.RxRingFull
			}
		}
		return s
	}
	go peer.Monitor(ctx, os.Stdout, c.Quiet, read)
	go func() { <-ctx.Done(); stop.Store(true) }()

	start, allocs := time.Now(), peer.Mallocs()
	err = c.Workers(len(socks), func(i int) error {
		s, pool := socks[i], socks[i].Pool()
		descs := make([]xsk.Desc, c.Batch)
		for !stop.Load() {
			n := s.Receive(descs)
			if n == 0 {
				if c.Busy {
					s.WakeupFill()
					continue
				}
				if _, err := s.Poll(100 * time.Millisecond); err != nil {
					return err
				}
				continue
			}
			for _, d := range descs[:n] {
				pool.Put(d.Addr)
			}
			s.Refill()
		}
		return nil
	})
	secs, allocs := time.Since(start).Seconds(), peer.Mallocs()-allocs
	if err != nil {
		return "", err
	}
	return peer.Summary(read(), secs, allocs), nil
}

// l2fwd forwards every frame from -i to -o: one UMEM shared by a receiving
// socket on IN and a transmitting socket on OUT of the same queue, driven
// by one goroutine per queue. Frames move by descriptor, never copied in
// user space; only the Ethernet addresses are rewritten.
func l2fwd(ctx context.Context, c *peer.Config, dstMAC string) (string, error) {
	in, err := net.InterfaceByName(c.Iface)
	if err != nil {
		return "", err
	}
	out, err := net.InterfaceByName(c.Out)
	if err != nil {
		return "", err
	}
	var dst net.HardwareAddr
	if dstMAC != "" {
		if dst, err = net.ParseMAC(dstMAC); err != nil {
			return "", err
		}
	}
	bind, err := xsk.ParseBindMode(c.Bind)
	if err != nil {
		return "", err
	}
	steer, err := xdpprog.NewXSKSteering(in.Index, c.Queues, c.XDPMode)
	if err != nil {
		return "", err
	}
	defer steer.Close()

	type pair struct{ rx, tx *xsk.Socket }
	pairs := make([]pair, c.Queues)
	for q := range pairs {
		u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 4096, NumFrames: c.Frames})
		if err != nil {
			return "", err
		}
		defer u.Close()
		pool, err := xsk.NewFramePool(u, 0, c.Frames)
		if err != nil {
			return "", err
		}
		o := xsk.DefaultSocketOptions()
		o.RxSize, o.FillSize, o.CompSize, o.TxSize, o.Bind = c.Ring, c.Ring, c.Ring, 0, bind
		rx, err := xsk.NewSocket(pool, in.Index, q, o)
		if err != nil {
			return "", fmt.Errorf("rx queue %d: %w", q, err)
		}
		defer rx.Close()
		o.RxSize, o.TxSize = 0, c.Ring
		tx, err := xsk.NewSocket(pool, out.Index, q, o)
		if err != nil {
			return "", fmt.Errorf("tx queue %d: %w", q, err)
		}
		defer tx.Close()
		// Refill stops when the fill ring is full: with twice as many
		// frames as ring entries, the rest cover frames in flight on the
		// tx ring.
		rx.Refill()
		if err := steer.Register(q, rx.FD()); err != nil {
			return "", err
		}
		pairs[q] = pair{rx, tx}
	}
	fmt.Fprintf(os.Stderr, "xsk l2fwd: %d queue(s) %s -> %s, xdp %s, %s mode\n", c.Queues, c.Iface, c.Out, steer.Mode, pairs[0].rx.Mode())

	var stop atomic.Bool
	var ringFull atomic.Uint64
	read := func() peer.Snapshot {
		var s peer.Snapshot
		for _, p := range pairs {
			rs, ts := p.rx.Stats(), p.tx.Stats()
			s.Rx += rs.RxFrames
			s.Tx += ts.TxFrames
			s.Wakeups += rs.RxWakeups + ts.TxKicks
			if ks, err := p.rx.KernelStats(); err == nil {
				s.FillEmpty += ks.RxFillRingEmpty
				s.Drops += ks.RxDropped + ks.RxRingFull
			}
		}
		s.Drops += ringFull.Load()
		return s
	}
	go peer.Monitor(ctx, os.Stdout, c.Quiet, read)
	go func() { <-ctx.Done(); stop.Store(true) }()

	src := out.HardwareAddr
	start, allocs := time.Now(), peer.Mallocs()
	err = c.Workers(len(pairs), func(i int) error {
		rx, tx := pairs[i].rx, pairs[i].tx
		pool, u := rx.Pool(), rx.UMEM()
		descs := make([]xsk.Desc, c.Batch)
		for !stop.Load() {
			tx.Complete(c.Ring)
			n := rx.Receive(descs)
			if n == 0 {
				rx.Refill()
				if c.Busy {
					rx.WakeupFill()
					continue
				}
				if _, err := rx.Poll(100 * time.Millisecond); err != nil {
					return err
				}
				continue
			}
			for _, d := range descs[:n] {
				if d.Len < 14 {
					continue
				}
				f := u.Bytes(d.Addr, d.Len)
				if dst != nil {
					copy(f[0:6], dst)
				}
				copy(f[6:12], src)
			}
			sent := tx.Transmit(descs[:n])
			for _, d := range descs[sent:n] {
				pool.Put(d.Addr)
			}
			if sent < n {
				ringFull.Add(uint64(n - sent))
			}
			rx.Refill()
		}
		return nil
	})
	secs, allocs := time.Since(start).Seconds(), peer.Mallocs()-allocs
	if err != nil {
		return "", err
	}
	return peer.Summary(read(), secs, allocs), nil
}
