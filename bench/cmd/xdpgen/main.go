// Command xdpgen is the benchmark's traffic source: a BPF_PROG_TEST_RUN
// live-frames generator. It loads an XDP program that returns XDP_TX and
// runs it with BPF_F_TEST_XDP_LIVE_FRAMES on one prebuilt UDP/IPv4 frame,
// with the sender interface as ingress_ifindex, so every repetition leaves
// that interface towards the device under test. Nothing varies per packet,
// unless --flows N: then the program rewrites each repetition into the next
// of N UDP flows (source port and source address; see xdpprog.FlowRotator).
//
// Run it inside the namespace of the sender interface (ingress_ifindex is
// looked up in the caller's namespace) and pinned to one CPU. Each call
// repeats the frame --repeat times: with 64k the kernel spends most of its
// time in synchronize_rcu between calls (~2 Mpps here); with ≥ 2M one core
// saturates (~6 Mpps of 64-byte frames into XDP_DROP).
//
// The peer interface must take XDP frames (an XDP program attached, or GRO
// on), or the kernel drops them silently.
//
//	summary: tx_pkts=N seconds=S calls=N ns_per_pkt=F len=N
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bench/internal/frame"
	"github.com/tygress/tygress/bench/internal/peer"
	"github.com/tygress/tygress/bench/internal/xdpprog"
)

type options struct {
	iface          string
	length         int
	dstMAC, srcMAC string
	src, dst       string
	sport, dport   int
	duration       time.Duration
	repeat         uint
	batch          uint
	cpu            int
	quiet          bool
	dumpFrame      bool
	flows, ports   int
}

func main() {
	var o options
	fs := flag.NewFlagSet("xdpgen", flag.ContinueOnError)
	fs.StringVar(&o.iface, "i", "", "sender interface (required)")
	fs.IntVar(&o.length, "len", 60, "frame length without FCS: 60 = a 64-byte frame, 1514 = a 1500-byte IP packet")
	fs.StringVar(&o.dstMAC, "dst-mac", "", "destination MAC, the receiver's (required)")
	fs.StringVar(&o.srcMAC, "src-mac", "", "source MAC (default: the sender interface's)")
	fs.StringVar(&o.src, "src", "10.77.0.1", "source IPv4 address")
	fs.StringVar(&o.dst, "dst", "10.77.0.2", "destination IPv4 address")
	fs.IntVar(&o.sport, "sport", 40000, "UDP source port")
	fs.IntVar(&o.dport, "dport", 9000, "UDP destination port")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long to send (the last call may run over by one call)")
	fs.UintVar(&o.repeat, "repeat", 4<<20, "repetitions per BPF_PROG_TEST_RUN call (≥ 2M to saturate a core)")
	fs.UintVar(&o.batch, "batch", 0, "live-frames batch size (0: the kernel's 64)")
	fs.IntVar(&o.cpu, "cpu", -1, "pin the sending thread to this CPU (-1: do not pin)")
	fs.IntVar(&o.flows, "flows", 1, "rotate this many UDP flows, one per frame: source port --sport + i%ports, source address --src + i/ports (checksums stay valid)")
	fs.IntVar(&o.ports, "ports", 0, "with --flows: source ports per source address (0: min(flows, 65536 - sport))")
	fs.BoolVar(&o.quiet, "quiet", false, "no per-call lines")
	fs.BoolVar(&o.dumpFrame, "dump", false, "print the frame in hex and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		peer.Fatal("xdpgen", err)
	}
	line, err := run(o)
	if err != nil {
		peer.Fatal("xdpgen", err)
	}
	fmt.Println(line)
}

func buildFrame(o options, ifc *net.Interface) ([]byte, error) {
	if o.dstMAC == "" {
		return nil, errors.New("--dst-mac is required")
	}
	dst, err := net.ParseMAC(o.dstMAC)
	if err != nil {
		return nil, err
	}
	src := ifc.HardwareAddr
	if o.srcMAC != "" {
		if src, err = net.ParseMAC(o.srcMAC); err != nil {
			return nil, err
		}
	}
	sip, err := netip.ParseAddr(o.src)
	if err != nil {
		return nil, err
	}
	dip, err := netip.ParseAddr(o.dst)
	if err != nil {
		return nil, err
	}
	if o.sport < 0 || o.sport > 65535 || o.dport < 0 || o.dport > 65535 {
		return nil, errors.New("ports must be in [0, 65535]")
	}
	var payload []byte
	if o.flows > 1 {
		payload = []byte{0xff, 0xff} // room for FlowRotator's compensation
	}
	return frame.UDP4(frame.UDP4Options{DstMAC: dst, SrcMAC: src, Src: sip, Dst: dip,
		SrcPort: uint16(o.sport), DstPort: uint16(o.dport), Len: o.length, Payload: payload})
}

func run(o options) (string, error) {
	if o.iface == "" {
		return "", errors.New("-i IFACE is required")
	}
	if o.repeat == 0 || o.repeat > 1<<31 {
		return "", errors.New("--repeat must be in [1, 2^31]")
	}
	ifc, err := net.InterfaceByName(o.iface)
	if err != nil {
		return "", err
	}
	pkt, err := buildFrame(o, ifc)
	if err != nil {
		return "", err
	}
	if o.dumpFrame {
		return fmt.Sprintf("%x", pkt), nil
	}
	if err := frame.Verify(pkt); err != nil {
		return "", fmt.Errorf("self-check of the frame: %w", err)
	}
	prog, err := loadProg(o, pkt)
	if err != nil {
		return "", err
	}
	defer prog.Close()

	runtime.LockOSThread()
	if o.cpu >= 0 {
		if err := peer.PinThread(o.cpu); err != nil {
			return "", err
		}
	}
	ctx, cancel := peer.Context(0)
	defer cancel()

	md := xdpprog.XDPMd{DataEnd: uint32(len(pkt)), IngressIfindex: uint32(ifc.Index)}
	attr := progRunAttr{
		progFd:     uint32(prog.FD()),
		dataSizeIn: uint32(len(pkt)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&pkt[0]))),
		repeat:     uint32(o.repeat),
		ctxSizeIn:  uint32(unsafe.Sizeof(md)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&md))),
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		batchSize:  uint32(o.batch),
	}
	var sent, calls, nsSum uint64
	start := time.Now()
	var last time.Duration
	for ctx.Err() == nil {
		el := time.Since(start)
		if el+last/2 >= o.duration {
			break
		}
		t0 := time.Now()
		a := attr
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&a)), unsafe.Sizeof(a))
		runtime.KeepAlive(pkt)
		runtime.KeepAlive(&md)
		last = time.Since(t0)
		if errno == unix.EINTR {
			// A signal cut the call short; how far it got is unknown, so it
			// is not counted (the receiver's count is what matters).
			continue
		}
		if errno != 0 {
			return "", fmt.Errorf("BPF_PROG_TEST_RUN (live frames) on %s: %w", o.iface, errno)
		}
		// Live-frames mode reports neither retval nor anything per frame.
		calls++
		sent += uint64(o.repeat)
		nsSum += uint64(a.duration)
		if !o.quiet {
			fmt.Printf("tx/s=%.0f call_ms=%.0f\n", float64(o.repeat)/last.Seconds(), last.Seconds()*1e3)
		}
	}
	secs := time.Since(start).Seconds()
	var nsPer float64
	if calls > 0 {
		nsPer = float64(nsSum) / float64(calls)
	}
	return fmt.Sprintf("summary: tx_pkts=%d seconds=%.3f calls=%d ns_per_pkt=%.1f len=%d flows=%d", sent, secs, calls, nsPer, len(pkt), max(o.flows, 1)), nil
}

// loadProg loads the plain XDP_TX program, or with --flows the flow
// rotator over pkt's fields.
func loadProg(o options, pkt []byte) (*ebpf.Program, error) {
	if o.flows <= 1 {
		return xdpprog.Return(xdpprog.TX)
	}
	ports := o.ports
	if ports <= 0 {
		ports = min(o.flows, 65536-o.sport)
	}
	if len(pkt) < frame.MinLen+2 {
		return nil, errors.New("--flows needs a frame with at least 2 payload bytes")
	}
	base := xdpprog.FlowBase{
		SrcLo:   binary.BigEndian.Uint16(pkt[28:30]),
		ID:      binary.BigEndian.Uint16(pkt[18:20]),
		Sport:   binary.BigEndian.Uint16(pkt[34:36]),
		Payload: binary.BigEndian.Uint16(pkt[42:44]),
	}
	state, err := xdpprog.FlowState()
	if err != nil {
		return nil, err
	}
	defer state.Close() // the program holds its own reference
	return xdpprog.FlowRotator(state, uint32(o.flows), uint32(ports), base)
}

// progRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr
// (include/uapi/linux/bpf.h), called directly so that a signal ends the
// call instead of restarting it (cilium/ebpf's Program.Run retries EINTR).
type progRunAttr struct {
	progFd      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}
