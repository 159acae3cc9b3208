// Package xdpprog holds the tiny XDP programs the benchmark uses, written
// with cilium/ebpf's assembler so no C toolchain is needed: the in-kernel
// peers (XDP_DROP and XDP_REDIRECT through a devmap, each counting into a
// per-CPU array), the XSKMAP redirect that feeds the Go AF_XDP peers that
// bring no program of their own, XDP_PASS (so a veth takes XDP frames for
// the kernel stack), and the generator's XDP_TX.
package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// XDP actions.
const (
	Aborted  = 0
	Drop     = 1
	Pass     = 2
	TX       = 3
	Redirect = 4
)

// struct xdp_md offsets.
const (
	mdData         = 0
	mdDataEnd      = 4
	mdRxQueueIndex = 16
)

// Counter is a one-slot per-CPU array of u64 that a program increments
// once per packet.
type Counter struct{ *ebpf.Map }

// NewCounter creates a Counter.
func NewCounter() (*Counter, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bench_count", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create counter map: %w", err)
	}
	return &Counter{m}, nil
}

// Read sums the counter over all CPUs.
func (c *Counter) Read() (uint64, error) {
	var vals []uint64
	if err := c.Lookup(uint32(0), &vals); err != nil {
		return 0, fmt.Errorf("read counter: %w", err)
	}
	var s uint64
	for _, v := range vals {
		s += v
	}
	return s, nil
}

// count emits code that increments counter slot 0; it clobbers r0-r5 and
// keeps r6 (the context by convention).
func count(c *Counter) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, c.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "counted"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R0).WithSymbol("counted"), // no-op jump target
	}
}

func load(name string, insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.XDP, License: "GPL", Instructions: insns,
	}, ebpf.ProgramOptions{})
	if err != nil {
		return nil, fmt.Errorf("load xdp program %s: %w", name, err)
	}
	return p, nil
}

// Return loads a program that only returns action (XDP_PASS, XDP_TX, ...).
func Return(action int32) (*ebpf.Program, error) {
	return load("bench_ret", asm.Instructions{asm.Mov.Imm(asm.R0, action), asm.Return()})
}

// DropCounting loads a program that counts every frame in c and drops it.
func DropCounting(c *Counter) (*ebpf.Program, error) {
	insns := append(count(c), asm.Mov.Imm(asm.R0, Drop), asm.Return())
	return load("bench_drop", insns)
}

// DevMap is a one-slot devmap whose slot 0 holds the egress ifindex.
func DevMap(ifindex int) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bench_tx_port", Type: ebpf.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create devmap: %w", err)
	}
	if err := m.Put(uint32(0), uint32(ifindex)); err != nil {
		m.Close()
		return nil, fmt.Errorf("devmap slot 0 = ifindex %d: %w", ifindex, err)
	}
	return m, nil
}

// RedirectCounting loads a program that counts every frame in c, rewrites
// its Ethernet destination (and source, when src is given) and redirects it
// through slot 0 of devmap; frames too short for an Ethernet header and
// failed redirects are dropped.
func RedirectCounting(c *Counter, devmap *ebpf.Map, dst, src net.HardwareAddr) (*ebpf.Program, error) {
	if len(dst) != 6 || (src != nil && len(src) != 6) {
		return nil, errors.New("xdpprog: MAC addresses must be 6 bytes")
	}
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	insns = append(insns, count(c)...)
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
	)
	insns = append(insns, storeMAC(0, dst)...)
	if src != nil {
		insns = append(insns, storeMAC(6, src)...)
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, devmap.FD()),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Imm(asm.R3, Drop), // low bits of flags: the action when the slot is empty
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, Drop).WithSymbol("drop"),
		asm.Return(),
	)
	return load("bench_redirect", insns)
}

// storeMAC writes mac at data+off (r2 holds data, bounds already checked).
func storeMAC(off int16, mac net.HardwareAddr) asm.Instructions {
	lo := int64(binary.NativeEndian.Uint32(mac[0:4]))
	hi := int64(binary.NativeEndian.Uint16(mac[4:6]))
	return asm.Instructions{
		asm.StoreImm(asm.R2, off, lo, asm.Word),
		asm.StoreImm(asm.R2, off+4, hi, asm.Half),
	}
}

// XSKMap creates an XSKMAP with n slots (one per queue).
func XSKMap(n int) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bench_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(n)})
	if err != nil {
		return nil, fmt.Errorf("create xskmap: %w", err)
	}
	return m, nil
}

// XSKRedirect loads the program libxdp installs by default: redirect to the
// XSKMAP slot of the frame's rx queue, XDP_PASS when the slot is empty.
func XSKRedirect(xsks *ebpf.Map) (*ebpf.Program, error) {
	return load("bench_xsk", asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, mdRxQueueIndex, asm.Word),
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.Mov.Imm(asm.R3, Pass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	})
}

// Attach attaches prog to ifindex through a bpf_link (removed when the
// process dies). mode is "native", "generic" or "auto" (native, falling back
// to generic); the mode obtained is returned.
func Attach(prog *ebpf.Program, ifindex int, mode string) (link.Link, string, error) {
	try := func(f link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: f})
	}
	switch mode {
	case "native", "drv", "driver":
		l, err := try(link.XDPDriverMode)
		return l, "native", wrapAttach(err, ifindex, "native")
	case "generic", "skb":
		l, err := try(link.XDPGenericMode)
		return l, "generic", wrapAttach(err, ifindex, "generic")
	case "auto", "":
		l, err := try(link.XDPDriverMode)
		if err == nil {
			return l, "native", nil
		}
		l, err2 := try(link.XDPGenericMode)
		if err2 == nil {
			return l, "generic", nil
		}
		return nil, "", wrapAttach(errors.Join(err, err2), ifindex, "auto")
	}
	return nil, "", fmt.Errorf("xdp mode %q (want auto, native or generic)", mode)
}

func wrapAttach(err error, ifindex int, mode string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("attach xdp to ifindex %d (%s): %w", ifindex, mode, err)
}

// XDPMd mirrors struct xdp_md, the context BPF_PROG_TEST_RUN takes.
type XDPMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// XSKSteering is an XSKMAP with the redirect program attached to one
// interface: what a Go AF_XDP peer without its own program needs.
type XSKSteering struct {
	Map  *ebpf.Map
	prog *ebpf.Program
	link link.Link
	Mode string // XDP mode obtained
}

// NewXSKSteering creates an XSKMAP of queues slots and attaches the
// redirect program to ifindex in the given mode.
func NewXSKSteering(ifindex, queues int, mode string) (*XSKSteering, error) {
	m, err := XSKMap(queues)
	if err != nil {
		return nil, err
	}
	p, err := XSKRedirect(m)
	if err != nil {
		m.Close()
		return nil, err
	}
	l, got, err := Attach(p, ifindex, mode)
	if err != nil {
		p.Close()
		m.Close()
		return nil, err
	}
	return &XSKSteering{Map: m, prog: p, link: l, Mode: got}, nil
}

// Register steers queue's frames to the socket fd.
func (s *XSKSteering) Register(queue, fd int) error {
	if err := s.Map.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("xskmap[%d] = fd %d: %w", queue, fd, err)
	}
	return nil
}

// Close detaches the program and frees the map.
func (s *XSKSteering) Close() error {
	return errors.Join(s.link.Close(), s.prog.Close(), s.Map.Close())
}

// Frame offsets of an Ethernet + IPv4 (no options) + UDP frame, the fields
// FlowRotator rewrites.
const (
	offIPID    = 14 + 4
	offSrcLo   = 14 + 12 + 2 // low 16 bits of the IPv4 source address
	offSport   = 14 + 20
	offPayload = 14 + 20 + 8
)

// FlowBase is what FlowRotator's frame holds for flow 0 (host order).
type FlowBase struct {
	SrcLo   uint16 // low 16 bits of the source address
	ID      uint16 // IPv4 identification
	Sport   uint16 // UDP source port
	Payload uint16 // first 16-bit word of the UDP payload
}

// FlowState is a one-slot array holding a FlowRotator's next flow number.
func FlowState() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bench_flow", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create flow state map: %w", err)
	}
	return m, nil
}

// FlowRotator loads the generator's XDP_TX program that sends each
// repetition of a UDP/IPv4 frame as the next of flows flows: flow c (kept
// in state, wrapping at flows) has source port base.Sport + c%ports and
// source address low word base.SrcLo + c/ports. Both checksums stay valid
// without being computed: the IPv4 identification goes down by what the
// address goes up, and the first payload word by what the address and the
// port go up (one's complement sums unchanged). The frame must be at least
// 44 bytes and base must leave room: base.ID >= c/ports, base.SrcLo +
// c/ports and base.Sport + c%ports <= 0xffff, base.Payload >= c/ports +
// c%ports for every c. Not safe for concurrent callers (one generator
// thread).
func FlowRotator(state *ebpf.Map, flows, ports uint32, base FlowBase) (*ebpf.Program, error) {
	if flows == 0 || ports == 0 || flows > 1<<30 {
		return nil, errors.New("xdpprog: flows and ports must be in [1, 2^30]")
	}
	amax, pmax := (flows-1)/ports, min(ports, flows)-1
	if uint32(base.ID) < amax || uint32(base.SrcLo)+amax > 0xffff || uint32(base.Sport)+pmax > 0xffff || uint32(base.Payload) < amax+pmax {
		return nil, errors.New("xdpprog: the base frame leaves no room for the flow fields")
	}
	// store16 writes r1 (host order) big-endian at data+off (r2 = data).
	store16 := func(off int16) asm.Instructions {
		return asm.Instructions{asm.HostTo(asm.BE, asm.R1, asm.Half), asm.StoreMem(asm.R2, off, asm.R1, asm.Half)}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, state.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "tx"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord), // c
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.JLT.Imm(asm.R1, int32(flows), "store"),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord).WithSymbol("store"),
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, offPayload+2),
		asm.JGT.Reg(asm.R4, asm.R3, "tx"),
		asm.Mov.Reg(asm.R8, asm.R7),
		asm.Div.Imm(asm.R8, int32(ports)), // a: address offset
		asm.Mov.Reg(asm.R9, asm.R7),
		asm.Mod.Imm(asm.R9, int32(ports)), // p: port offset
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.Add.Imm(asm.R1, int32(base.SrcLo)),
	}
	insns = append(insns, store16(offSrcLo)...)
	insns = append(insns, asm.Mov.Imm(asm.R1, int32(base.ID)), asm.Sub.Reg(asm.R1, asm.R8))
	insns = append(insns, store16(offIPID)...)
	insns = append(insns, asm.Mov.Reg(asm.R1, asm.R9), asm.Add.Imm(asm.R1, int32(base.Sport)))
	insns = append(insns, store16(offSport)...)
	insns = append(insns, asm.Mov.Imm(asm.R1, int32(base.Payload)), asm.Sub.Reg(asm.R1, asm.R8), asm.Sub.Reg(asm.R1, asm.R9))
	insns = append(insns, store16(offPayload)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, TX).WithSymbol("tx"),
		asm.Return(),
	)
	return load("bench_flows", insns)
}

// DropCountingPassARP loads a program that passes ARP (so a kernel behind
// the interface still answers it) and counts and drops everything else.
func DropCountingPassARP(c *Counter) (*ebpf.Program, error) {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "count"),
		asm.LoadMem(asm.R1, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R1, int32(binary.NativeEndian.Uint16([]byte{0x08, 0x06})), "count"), // ETH_P_ARP
		asm.Mov.Imm(asm.R0, Pass),
		asm.Return(),
		asm.Mov.Reg(asm.R6, asm.R6).WithSymbol("count"), // no-op jump target
	}
	insns = append(insns, count(c)...)
	insns = append(insns, asm.Mov.Imm(asm.R0, Drop), asm.Return())
	return load("bench_drop_arp", insns)
}
