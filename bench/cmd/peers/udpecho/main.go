// Command udpecho is the kernel-socket peer of the UDP echo benchmark
// (cmd/udpecho): a Go UDP echo server on a kernel socket, the way a Go
// program would write one. One goroutine, locked to its OS thread and that
// thread pinned to --cpu, loops ReadFromUDPAddrPort / WriteToUDPAddrPort
// (neither allocates) on a dual-stack socket bound to :PORT.
//
//	udpecho [--port 7] [--cpu 1] [--lock=true] [--duration D]
//
// It prints "listening" when the socket is bound and, at SIGINT, SIGTERM or
// after --duration, `summary: rx_pkts=… tx_pkts=… seconds=… allocs=…
// allocs_per_pkt=…` (heap allocations of the whole process while serving).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/tygress/tygress/bench/internal/peer"
)

func main() {
	fs := flag.NewFlagSet("udpecho", flag.ContinueOnError)
	port := fs.Int("port", 7, "UDP port")
	cpu := fs.Int("cpu", -1, "pin the serving thread to this CPU (-1: not pinned)")
	lock := fs.Bool("lock", true, "serve on a goroutine locked to its OS thread (runtime.LockOSThread)")
	dur := fs.Duration("duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{Port: *port})
	if err != nil {
		peer.Fatal("udpecho", err)
	}
	ctx, cancel := peer.Context(*dur)
	defer cancel()
	go func() { <-ctx.Done(); c.Close() }()

	switch {
	case *cpu >= 0:
		if err := peer.PinThread(*cpu); err != nil { // locks the thread too
			peer.Fatal("udpecho", err)
		}
	case *lock:
		runtime.LockOSThread()
	}
	fmt.Println("listening on", c.LocalAddr())
	buf := make([]byte, 65536)
	var rx, tx uint64
	start, allocs := time.Now(), peer.Mallocs()
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			continue // e.g. ECONNREFUSED from an ICMP error
		}
		rx++
		if _, err := c.WriteToUDPAddrPort(buf[:n], from); err == nil {
			tx++
		} else if errors.Is(err, net.ErrClosed) {
			break
		}
	}
	secs, allocs := time.Since(start).Seconds(), peer.Mallocs()-allocs
	per := 0.0
	if rx > 0 {
		per = float64(allocs) / float64(rx)
	}
	fmt.Printf("summary: rx_pkts=%d tx_pkts=%d seconds=%.3f allocs=%d allocs_per_pkt=%.4f\n", rx, tx, secs, allocs, per)
}
