// Command kernxdp is the in-kernel peer: the ceiling for any user-space
// consumer. `kernxdp drop -i IF` attaches an XDP program that counts and
// drops every frame; `kernxdp redirect -i IN -o OUT --dst-mac MAC` counts,
// rewrites the Ethernet addresses and redirects every frame out of OUT
// through a devmap. The process only loads, attaches (bpf_link, so nothing
// is left behind when it dies), reads the per-CPU counter once a second and
// detaches: the packet work runs in the kernel's softirq, not in this
// process, so its own CPU time is near zero.
//
// It ends with the summary line the harness parses:
//
//	summary: rx_pkts=N tx_pkts=N drops=0 fill_ring_empty=0 wakeups=0 seconds=S allocs=N mode=native
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/tygress/tygress/bench/internal/peer"
	"github.com/tygress/tygress/bench/internal/xdpprog"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "drop" && os.Args[1] != "redirect") {
		fmt.Fprintln(os.Stderr, "usage: kernxdp drop -i IFACE [flags] | kernxdp redirect -i IN -o OUT [--dst-mac MAC] [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	os.Args = append(os.Args[:1], os.Args[2:]...)
	var dstMAC, srcMAC string
	peer.Main("kernxdp "+mode, func(fs *flag.FlagSet) {
		fs.StringVar(&dstMAC, "dst-mac", "", "redirect: destination MAC written into each frame (default: OUT's MAC)")
		fs.StringVar(&srcMAC, "src-mac", "", "redirect: source MAC written into each frame (default: OUT's MAC)")
	}, func(ctx context.Context, c *peer.Config) (string, error) {
		return run(ctx, c, mode, dstMAC, srcMAC)
	})
}

func run(ctx context.Context, c *peer.Config, mode, dstMAC, srcMAC string) (string, error) {
	in, err := net.InterfaceByName(c.Iface)
	if err != nil {
		return "", err
	}
	cnt, err := xdpprog.NewCounter()
	if err != nil {
		return "", err
	}
	defer cnt.Close()

	var prog interface{ Close() error }
	var attachErr error
	var obtained string
	switch mode {
	case "drop":
		p, err := xdpprog.DropCounting(cnt)
		if err != nil {
			return "", err
		}
		prog = p
		l, m, err := xdpprog.Attach(p, in.Index, c.XDPMode)
		if err == nil {
			defer l.Close()
		}
		attachErr, obtained = err, m
	case "redirect":
		if c.Out == "" {
			return "", errors.New("redirect needs -o OUT")
		}
		out, err := net.InterfaceByName(c.Out)
		if err != nil {
			return "", err
		}
		dst, src := out.HardwareAddr, out.HardwareAddr
		if dstMAC != "" {
			if dst, err = net.ParseMAC(dstMAC); err != nil {
				return "", err
			}
		}
		if srcMAC != "" {
			if src, err = net.ParseMAC(srcMAC); err != nil {
				return "", err
			}
		}
		dm, err := xdpprog.DevMap(out.Index)
		if err != nil {
			return "", err
		}
		defer dm.Close()
		p, err := xdpprog.RedirectCounting(cnt, dm, dst, src)
		if err != nil {
			return "", err
		}
		prog = p
		l, m, err := xdpprog.Attach(p, in.Index, c.XDPMode)
		if err == nil {
			defer l.Close()
		}
		attachErr, obtained = err, m
	}
	defer prog.Close()
	if attachErr != nil {
		return "", attachErr
	}
	fmt.Fprintf(os.Stderr, "kernxdp %s: attached to %s in %s mode\n", mode, c.Iface, obtained)

	read := func() peer.Snapshot {
		n, _ := cnt.Read()
		s := peer.Snapshot{Rx: n}
		if mode == "redirect" {
			s.Tx = n
		}
		return s
	}
	start, allocs := time.Now(), peer.Mallocs()
	peer.Monitor(ctx, os.Stdout, c.Quiet, read)
	<-ctx.Done()
	s := read()
	return peer.Summary(s, time.Since(start).Seconds(), peer.Mallocs()-allocs, "mode="+obtained), nil
}
