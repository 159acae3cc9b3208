package main

// The load client: `udpecho client ...`, re-executed by the orchestrator
// inside the client namespace under `taskset -c CPU`. One OS thread, pinned,
// raw non-blocking sockets, so the client's own cost per request is small
// and does not allocate.

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/peer"
)

type clientCfg struct {
	mode    string // throughput or latency
	server  netip.AddrPort
	cpu     int
	window  int
	sockets int
	size    int
	warmup  time.Duration
	dur     time.Duration
	latN    int
	timeout time.Duration
}

// runClient is the `client` subcommand. It prints "window-start" when the
// measured interval begins, "window-end" when it ends, then its summary line.
func runClient(args []string) int {
	var c clientCfg
	var server string
	fs := flag.NewFlagSet("udpecho client", flag.ContinueOnError)
	fs.StringVar(&c.mode, "mode", "throughput", "throughput or latency")
	fs.StringVar(&server, "server", "10.96.0.2:7", "server address")
	fs.IntVar(&c.cpu, "cpu", 0, "pin to this CPU (-1: not pinned)")
	fs.IntVar(&c.window, "window", 32, "requests in flight (throughput)")
	fs.IntVar(&c.sockets, "sockets", 8, "client sockets, each its own source port (throughput)")
	fs.IntVar(&c.size, "size", 18, "UDP payload bytes (>= 10)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warm-up before the measured interval")
	fs.DurationVar(&c.dur, "duration", 5*time.Second, "measured interval (throughput)")
	fs.IntVar(&c.latN, "n", 20000, "requests measured (latency)")
	fs.DurationVar(&c.timeout, "timeout", 50*time.Millisecond, "a request without answer after this long is re-sent")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if c.server, err = netip.ParseAddrPort(server); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	if c.size < 10 || c.size > 1400 || c.window < 1 || c.sockets < 1 || c.window > 65535 {
		fmt.Fprintln(os.Stderr, "client: -size must be 10..1400, -window 1..65535, -sockets >= 1")
		return 2
	}
	if c.cpu >= 0 {
		if err := peer.PinThread(c.cpu); err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			return 1
		}
	}
	switch c.mode {
	case "throughput":
		err = throughput(&c)
	case "latency":
		err = latency(&c)
	default:
		err = fmt.Errorf("unknown -mode %q", c.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	return 0
}

// dial opens a connected, non-blocking (unless blocking) UDP socket.
func dial(to netip.AddrPort, blocking bool) (int, error) {
	var sa unix.Sockaddr
	fam := unix.AF_INET
	if to.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	} else {
		fam = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(to.Port()), Addr: to.Addr().As16()}
	}
	typ := unix.SOCK_DGRAM | unix.SOCK_CLOEXEC
	if !blocking {
		typ |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(fam, typ, 0)
	if err != nil {
		return -1, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// A request's payload: slot (2 bytes), sequence number (8), zero padding.
func putReq(b []byte, slot uint16, seq uint64) {
	binary.LittleEndian.PutUint16(b, slot)
	binary.LittleEndian.PutUint64(b[2:], seq)
}

func getReq(b []byte) (uint16, uint64) {
	return binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint64(b[2:])
}

// hist is a log-linear latency histogram: 64 sub-buckets per power of two
// (under 1.6% error), values in nanoseconds.
type hist struct {
	b [64 * 66]uint64
	n uint64
}

func histIndex(v uint64) int {
	if v < 128 {
		return int(v)
	}
	s := bits.Len64(v) - 7
	return s*64 + int(v>>s)
}

// histValue is the middle of bucket i.
func histValue(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	s := i/64 - 1
	lo := uint64(i-s*64) << s
	return float64(lo) + float64(uint64(1)<<s)/2
}

func (h *hist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.b[histIndex(uint64(ns))]++
	h.n++
}

func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var sum uint64
	for i, c := range h.b {
		sum += c
		if sum >= rank {
			return histValue(i)
		}
	}
	return histValue(len(h.b) - 1)
}

func (h *hist) summary() string {
	return fmt.Sprintf("p50_ns=%.0f p90_ns=%.0f p99_ns=%.0f p999_ns=%.0f", h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(0.999))
}

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

const batch = 64

// msgs is a batch of message headers over one buffer.
type msgs struct {
	h    [batch]mmsghdr
	iov  [batch]unix.Iovec
	buf  []byte
	size int
}

func newMsgs(size int) *msgs {
	m := &msgs{buf: make([]byte, batch*size), size: size}
	for i := range m.h {
		m.iov[i].Base = &m.buf[i*size]
		m.iov[i].SetLen(size)
		m.h[i].hdr.Iov = &m.iov[i]
		m.h[i].hdr.SetIovlen(1)
	}
	return m
}

func (m *msgs) at(i int) []byte { return m.buf[i*m.size : (i+1)*m.size] }

// mmsg calls sendmmsg or recvmmsg (trap) on n headers of m from off.
func mmsg(trap uintptr, fd int, m *msgs, off, n int, flags uintptr) (int, unix.Errno) {
	r, _, e := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&m.h[off])), uintptr(n), flags, 0, 0)
	return int(r), e
}

type slot struct {
	seq  uint64
	sent int64 // ns since base
}

// throughput keeps -window requests in flight over -sockets sockets (slot i
// on socket i % sockets): every answer sends that slot's next request at
// once, a slot without answer for -timeout is re-sent with a new sequence
// number (stale answers are ignored), so the window neither drains nor grows.
func throughput(c *clientCfg) error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	S := min(c.sockets, c.window)
	fds := make([]int, S)
	for i := range fds {
		if fds[i], err = dial(c.server, false); err != nil {
			return err
		}
		defer unix.Close(fds[i])
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fds[i], &ev); err != nil {
			return err
		}
	}
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	slots := make([]slot, c.window)
	rx := newMsgs(2048)
	tx := newMsgs(c.size)
	var h hist
	var responses, resent, stale uint64
	measuring := false

	// send sends the listed slots' current requests on socket s.
	send := func(s int, list []uint16) error {
		t := now()
		for i, sl := range list {
			putReq(tx.at(i), sl, slots[sl].seq)
			slots[sl].sent = t
		}
		for off := 0; off < len(list); {
			n, e := mmsg(unix.SYS_SENDMMSG, fds[s], tx, off, len(list)-off, 0)
			switch e {
			case 0:
				off += n
			case unix.EAGAIN, unix.ENOBUFS, unix.ECONNREFUSED, unix.EINTR:
				return nil // the timeout re-sends them
			default:
				return fmt.Errorf("sendmmsg: %w", e)
			}
		}
		return nil
	}
	perSock := make([][]uint16, S)
	for i := range slots {
		perSock[i%S] = append(perSock[i%S], uint16(i))
	}
	for s, l := range perSock {
		for len(l) > 0 {
			k := min(len(l), batch)
			if err := send(s, l[:k]); err != nil {
				return err
			}
			l = l[k:]
		}
	}

	events := make([]unix.EpollEvent, S)
	next := make([]uint16, 0, batch)
	warmEnd := int64(c.warmup)
	end := warmEnd + int64(c.dur)
	lastScan := int64(0)
	var winStart, winEnd int64
	for {
		t := now()
		if !measuring && t >= warmEnd {
			measuring, winStart = true, t
			responses, resent, stale, h = 0, 0, 0, hist{}
			fmt.Println("window-start")
		}
		if t >= end {
			winEnd = t
			fmt.Println("window-end")
			time.Sleep(100 * time.Millisecond) // the harness samples the server now
			break
		}
		if t-lastScan >= int64(10*time.Millisecond) {
			lastScan = t
			for s := range S {
				next = next[:0]
				for i := s; i < len(slots); i += S {
					if t-slots[i].sent > int64(c.timeout) {
						slots[i].seq++
						next = append(next, uint16(i))
						resent++
						if len(next) == batch {
							if err := send(s, next); err != nil {
								return err
							}
							next = next[:0]
						}
					}
				}
				if err := send(s, next); err != nil {
					return err
				}
			}
		}
		n, err := unix.EpollWait(ep, events, 10)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		for _, ev := range events[:max(n, 0)] {
			s := int(ev.Fd)
			for {
				got, e := mmsg(unix.SYS_RECVMMSG, fds[s], rx, 0, batch, unix.MSG_DONTWAIT)
				if e == unix.EAGAIN || e == unix.EINTR {
					break
				}
				if e == unix.ECONNREFUSED {
					continue // the server is not up yet
				}
				if e != 0 {
					return fmt.Errorf("recvmmsg: %w", e)
				}
				t := now()
				next = next[:0]
				for i := range got {
					if rx.h[i].n < 10 {
						continue
					}
					sl, seq := getReq(rx.at(i))
					if int(sl) >= len(slots) || slots[sl].seq != seq {
						stale++
						continue
					}
					h.add(t - slots[sl].sent)
					responses++
					slots[sl].seq++
					next = append(next, sl)
				}
				if err := send(s, next); err != nil {
					return err
				}
				if got < batch {
					break
				}
			}
		}
	}
	secs := float64(winEnd-winStart) / 1e9
	fmt.Printf("summary: mode=throughput responses=%d seconds=%.4f rps=%.0f resent=%d stale=%d %s\n",
		responses, secs, float64(responses)/secs, resent, stale, h.summary())
	return nil
}

// latency sends one request at a time on one blocking socket and times each
// round trip; a request without answer for -timeout is counted lost and the
// next one sent.
func latency(c *clientCfg) error {
	fd, err := dial(c.server, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(c.timeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	req := make([]byte, c.size)
	resp := make([]byte, 2048)
	var h hist
	var seq, lost, responses uint64
	var winStart time.Time
	start := time.Now()
	measuring := false
	for {
		if !measuring && time.Since(start) >= c.warmup {
			measuring, winStart = true, time.Now()
			h, lost, responses = hist{}, 0, 0
			fmt.Println("window-start")
		}
		if measuring && responses >= uint64(c.latN) {
			break
		}
		if time.Since(start) > c.warmup+2*time.Minute {
			return fmt.Errorf("%d answers after 2 minutes, %d lost", responses, lost)
		}
		seq++
		putReq(req, 0, seq)
		t0 := time.Now()
		if _, err := unix.Write(fd, req); err != nil {
			if errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOBUFS) {
				time.Sleep(time.Millisecond)
				continue
			}
			return fmt.Errorf("send: %w", err)
		}
		for {
			n, err := unix.Read(fd, resp)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ECONNREFUSED) {
					lost++
					break
				}
				return fmt.Errorf("recv: %w", err)
			}
			if n < 10 {
				continue
			}
			if _, s := getReq(resp[:n]); s != seq {
				continue // a late answer to a lost request
			}
			h.add(int64(time.Since(t0)))
			responses++
			break
		}
	}
	secs := time.Since(winStart).Seconds()
	fmt.Println("window-end")
	time.Sleep(100 * time.Millisecond)
	fmt.Printf("summary: mode=latency responses=%d seconds=%.4f rps=%.0f resent=%d stale=0 %s\n",
		responses, secs, float64(responses)/secs, lost, h.summary())
	return nil
}
