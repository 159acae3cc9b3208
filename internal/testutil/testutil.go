// Package testutil holds helpers shared by Tygress's tests: the privileged
// test gate and a minimal XDP program that redirects every frame to an
// XSKMAP, so xsk/ can be tested without the bpf/ package (xsk never
// imports bpf).
package testutil

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/tygress/tygress/internal/topo"
)

// RequirePrivileged skips a test that needs root, unless
// TYGRESS_REQUIRE_PRIVILEGED is set (CI sets it): then a missing privilege
// fails the test instead of hiding it.
func RequirePrivileged(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("TYGRESS_REQUIRE_PRIVILEGED") != "" {
		tb.Fatal("test needs root and TYGRESS_REQUIRE_PRIVILEGED is set")
	}
	tb.Skip("test needs root (set TYGRESS_REQUIRE_PRIVILEGED=1 to make this a failure)")
}

// RedirectProgram is an XDP program that sends every frame to the XSKMAP
// slot of its rx queue, or XDP_PASS when the slot is empty.
type RedirectProgram struct {
	Map  *ebpf.Map
	Prog *ebpf.Program
}

// NewRedirectProgram loads the program and its 64-slot XSKMAP.
func NewRedirectProgram() (*RedirectProgram, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 64})
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "redirect_all",
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			// r2 = ctx->rx_queue_index (offset 16 in struct xdp_md)
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS when the slot is empty
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	return &RedirectProgram{Map: m, Prog: prog}, nil
}

// Attach attaches the program (generic or driver mode) to ifindex in ns.
func (r *RedirectProgram) Attach(ns *topo.Namespace, ifindex int, generic bool) (link.Link, error) {
	var l link.Link
	flags := link.XDPDriverMode
	if generic {
		flags = link.XDPGenericMode
	}
	err := ns.Do(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: r.Prog, Interface: ifindex, Flags: flags})
		return err
	})
	return l, err
}

// Register puts a socket fd in the slot of queue.
func (r *RedirectProgram) Register(queue, fd int) error {
	return r.Map.Put(uint32(queue), uint32(fd))
}

// Close frees the program and map.
func (r *RedirectProgram) Close() {
	r.Prog.Close()
	r.Map.Close()
}
