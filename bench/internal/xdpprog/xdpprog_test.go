package xdpprog_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tygress/tygress/bench/internal/frame"
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

func TestFlowRotator(t *testing.T) {
	needRoot(t)
	pkt, err := frame.UDP4(frame.UDP4Options{
		DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		Src: netip.MustParseAddr("10.89.0.10"), Dst: netip.MustParseAddr("10.89.0.100"),
		SrcPort: 10000, DstPort: 9000, Len: 60, Payload: []byte{0xff, 0xff},
	})
	if err != nil {
		t.Fatal(err)
	}
	state, err := xdpprog.FlowState()
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	base := xdpprog.FlowBase{SrcLo: 10, ID: binary.BigEndian.Uint16(pkt[18:20]), Sport: 10000, Payload: 0xffff}
	if _, err := xdpprog.FlowRotator(state, 100, 40, xdpprog.FlowBase{SrcLo: 10, ID: 1, Sport: 10000, Payload: 0xffff}); err == nil {
		t.Fatal("a base without room for the identification was accepted")
	}
	p, err := xdpprog.FlowRotator(state, 7, 3, base)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	seen := map[[6]byte]bool{}
	for i := range 9 {
		ret, out := run(t, p, pkt)
		if ret != xdpprog.TX {
			t.Fatalf("returned %d", ret)
		}
		out = out[:len(pkt)]
		if err := frame.Verify(out); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		c := i % 7
		if src, sport := out[29], binary.BigEndian.Uint16(out[34:36]); int(src) != 10+c/3 || int(sport) != 10000+c%3 {
			t.Fatalf("frame %d: source .%d:%d, want .%d:%d", i, src, sport, 10+c/3, 10000+c%3)
		}
		seen[[6]byte(append(append([]byte(nil), out[26:30]...), out[34:36]...))] = true
		if !bytes.Equal(out[30:34], pkt[30:34]) {
			t.Fatalf("frame %d: destination changed", i)
		}
	}
	if len(seen) != 7 {
		t.Fatalf("%d distinct flows, want 7", len(seen))
	}
}

func TestDropCountingPassARP(t *testing.T) {
	needRoot(t)
	c, err := xdpprog.NewCounter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := xdpprog.DropCountingPassARP(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pkt := make([]byte, 60)
	pkt[12], pkt[13] = 0x08, 0x06
	if ret, _ := run(t, p, pkt); ret != xdpprog.Pass {
		t.Fatalf("ARP: returned %d, want XDP_PASS", ret)
	}
	pkt[13] = 0x00
	if ret, _ := run(t, p, pkt); ret != xdpprog.Drop {
		t.Fatalf("IPv4: returned %d, want XDP_DROP", ret)
	}
	if n, err := c.Read(); err != nil || n != 1 {
		t.Fatalf("counter %d, %v; want 1", n, err)
	}
}
