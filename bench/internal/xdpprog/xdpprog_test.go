package xdpprog_test

import (
	"bytes"
	"net"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tygress/tygress/bench/internal/xdpprog"
)

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("TYGRESS_REQUIRE_PRIVILEGED") == "" {
		t.Skip("needs root (BPF_PROG_LOAD)")
	}
}

func run(t *testing.T, p *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	ret, err := p.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}

func TestPrograms(t *testing.T) {
	needRoot(t)
	pkt := make([]byte, 60)
	for i := range pkt {
		pkt[i] = byte(i)
	}
	c, err := xdpprog.NewCounter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	drop, err := xdpprog.DropCounting(c)
	if err != nil {
		t.Fatal(err)
	}
	defer drop.Close()
	for range 3 {
		if ret, _ := run(t, drop, pkt); ret != xdpprog.Drop {
			t.Fatalf("drop program returned %d", ret)
		}
	}
	if n, err := c.Read(); err != nil || n != 3 {
		t.Fatalf("counter %d, %v; want 3", n, err)
	}

	dm, err := xdpprog.DevMap(1)
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	dst := net.HardwareAddr{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	src := net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	red, err := xdpprog.RedirectCounting(c, dm, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	defer red.Close()
	ret, out := run(t, red, pkt)
	if ret != xdpprog.Redirect {
		t.Fatalf("redirect program returned %d", ret)
	}
	if !bytes.Equal(out[0:6], dst) || !bytes.Equal(out[6:12], src) || !bytes.Equal(out[12:60], pkt[12:]) {
		t.Fatalf("rewritten frame %x", out[:60])
	}
	// (The kernel refuses test frames under 14 bytes, so the program's
	// short-frame branch cannot be exercised here.)
	if n, _ := c.Read(); n != 4 {
		t.Fatalf("counter %d, want 4", n)
	}

	xm, err := xdpprog.XSKMap(4)
	if err != nil {
		t.Fatal(err)
	}
	defer xm.Close()
	xp, err := xdpprog.XSKRedirect(xm)
	if err != nil {
		t.Fatal(err)
	}
	defer xp.Close()
	if ret, _ := run(t, xp, pkt); ret != xdpprog.Pass {
		t.Fatalf("xsk program with an empty map returned %d, want pass", ret)
	}

	for _, a := range []int32{xdpprog.Pass, xdpprog.TX} {
		p, err := xdpprog.Return(a)
		if err != nil {
			t.Fatal(err)
		}
		if ret, _ := run(t, p, pkt); ret != uint32(a) {
			t.Fatalf("return program gave %d, want %d", ret, a)
		}
		p.Close()
	}
}
