// Command udprecv is the kernel-socket peer: a UDP socket read with
// recvmmsg(2) in batches, counting datagrams. The kernel stack (XDP_PASS,
// skb, IP, UDP, socket queue) runs in softirq on the CPU that receives the
// frame; this process pays the syscalls and the copies into user memory.
//
// A veth only takes the generator's XDP frames when an XDP program is
// attached on the receiving end (or GRO is on): --xdp-pass attaches an
// XDP_PASS program to -i for the lifetime of the process.
//
//	udprecv -i IFACE [--port 9000] [--xdp-pass] [--batch 64] [--poll|--busy] [--duration D]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/peer"
	"github.com/tygress/tygress/bench/internal/xdpprog"
)

func main() {
	var port, rcvbuf int
	var xdpPass bool
	peer.Main("udprecv", func(fs *flag.FlagSet) {
		fs.IntVar(&port, "port", 9000, "UDP port to receive on")
		fs.IntVar(&rcvbuf, "rcvbuf", 8<<20, "SO_RCVBUFFORCE bytes")
		fs.BoolVar(&xdpPass, "xdp-pass", false, "attach an XDP_PASS program to -i so a veth takes XDP frames")
	}, func(ctx context.Context, c *peer.Config) (string, error) {
		return run(ctx, c, port, rcvbuf, xdpPass)
	})
}

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

func run(ctx context.Context, c *peer.Config, port, rcvbuf int, xdpPass bool) (string, error) {
	ifc, err := net.InterfaceByName(c.Iface)
	if err != nil {
		return "", err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		fmt.Fprintf(os.Stderr, "udprecv: SO_RCVBUFFORCE: %v (keeping the default)\n", err)
	}
	// A timeout lets a blocked recvmmsg notice the end of the run.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return "", err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return "", fmt.Errorf("bind udp port %d: %w", port, err)
	}
	if xdpPass {
		p, err := xdpprog.Return(xdpprog.Pass)
		if err != nil {
			return "", err
		}
		defer p.Close()
		l, mode, err := xdpprog.Attach(p, ifc.Index, c.XDPMode)
		if err != nil {
			return "", err
		}
		defer l.Close()
		fmt.Fprintf(os.Stderr, "udprecv: XDP_PASS on %s (%s)\n", c.Iface, mode)
	}
	snmp0 := udpSNMP()

	var cnt peer.Counters
	var stop atomic.Bool
	read := func() peer.Snapshot {
		s := cnt.Load()
		s.Drops = udpSNMP()["RcvbufErrors"] - snmp0["RcvbufErrors"]
		return s
	}
	go peer.Monitor(ctx, os.Stdout, c.Quiet, read)
	go func() { <-ctx.Done(); stop.Store(true) }()

	start, allocs := time.Now(), peer.Mallocs()
	err = c.Workers(1, func(int) error {
		const bufSize = 2048
		bufs := make([]byte, c.Batch*bufSize)
		iovs := make([]unix.Iovec, c.Batch)
		msgs := make([]mmsghdr, c.Batch)
		for i := range msgs {
			iovs[i].Base = &bufs[i*bufSize]
			iovs[i].SetLen(bufSize)
			msgs[i].hdr.Iov = &iovs[i]
			msgs[i].hdr.SetIovlen(1)
		}
		flags := uintptr(unix.MSG_WAITFORONE)
		if c.Busy {
			flags = unix.MSG_DONTWAIT
		}
		for !stop.Load() {
			n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), flags, 0, 0)
			cnt.Wakeups.Add(1)
			switch errno {
			case 0:
				cnt.Rx.Add(uint64(n))
			case unix.EAGAIN, unix.EINTR:
			default:
				return fmt.Errorf("recvmmsg: %w", errno)
			}
		}
		return nil
	})
	secs, allocs := time.Since(start).Seconds(), peer.Mallocs()-allocs
	if err != nil {
		return "", err
	}
	s := read()
	return peer.Summary(s, secs, allocs, fmt.Sprintf("in_datagrams=%d", udpSNMP()["InDatagrams"]-snmp0["InDatagrams"])), nil
}

// udpSNMP reads the Udp: counters of /proc/net/snmp (this namespace's).
func udpSNMP() map[string]uint64 {
	m := map[string]uint64{}
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return m
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if keys == nil {
			keys = fields[1:]
			continue
		}
		for i, v := range fields[1:] {
			if i < len(keys) {
				n, _ := strconv.ParseUint(v, 10, 64)
				m[keys[i]] = n
			}
		}
		break
	}
	return m
}
