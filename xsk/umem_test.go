package xsk_test

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/xsk"
)

func TestUMEMOptions(t *testing.T) {
	for _, o := range []xsk.UMEMOptions{
		{FrameSize: 1000, NumFrames: 10},
		{FrameSize: 2048, NumFrames: 0},
		{FrameSize: 4096, NumFrames: 10, Headroom: 4000},
	} {
		if _, err := xsk.NewUMEM(o); !errors.Is(err, xsk.ErrBadOptions) {
			t.Errorf("%+v: %v, want ErrBadOptions", o, err)
		}
	}
	for _, fs := range []int{2048, 4096} {
		u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: fs, NumFrames: 8})
		if err != nil {
			t.Fatal(err)
		}
		if u.Size() != 8*fs || u.FrameBase(u.FrameAddr(3)+100) != u.FrameAddr(3) || !u.Valid(u.FrameAddr(7), uint32(fs)) || u.Valid(u.FrameAddr(7)+1, uint32(fs)) {
			t.Errorf("frame size %d: geometry wrong", fs)
		}
		if _, err := xsk.NewFramePool(u, 4, 5); !errors.Is(err, xsk.ErrBadOptions) {
			t.Errorf("pool past the end: %v", err)
		}
		u.Close()
	}
}

func setHugePages(t *testing.T, n int) {
	t.Helper()
	const path = "/proc/sys/vm/nr_hugepages"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(path, old, 0) })
}

// TestHugePages gets a huge-page UMEM when pages are reserved and falls
// back to normal pages, still working, when none are.
func TestHugePages(t *testing.T) {
	testutil.RequirePrivileged(t)
	setHugePages(t, 0)
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 4096, NumFrames: 1024, HugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	if u.HugePages() {
		t.Fatal("huge pages reported with none reserved")
	}
	u.Memory()[len(u.Memory())-1] = 1
	u.Close()

	setHugePages(t, 4)
	if b, _ := os.ReadFile("/proc/sys/vm/nr_hugepages"); strings.TrimSpace(string(b)) == "0" {
		t.Skip("kernel reserved no huge pages (memory too fragmented)")
	}
	u, err = xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 4096, NumFrames: 1024, HugePages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if !u.HugePages() {
		t.Fatal("no huge pages although 4 are reserved")
	}
	u.Memory()[len(u.Memory())-1] = 1
	// And it registers with the kernel like any other UMEM.
	p := newPair(t, 1)
	pool, _ := xsk.NewFramePool(u, 0, 1024)
	s := p.socket(t, pool, 0, xsk.DefaultSocketOptions())
	s.Refill()
	sent := p.goSendUDP(t, 100, 20*time.Microsecond)
	got := drain(t, s, 300*time.Millisecond, false)
	<-sent
	if len(got) != 100 {
		t.Fatalf("huge-page UMEM received %d of 100", len(got))
	}
}

// TestOversizedFrames: frames larger than a UMEM frame are dropped and
// counted by the kernel; nothing reaches the rx ring, nothing leaks.
func TestOversizedFrames(t *testing.T) {
	p := newPair(t, 1)
	// Jumbo-ish MTU so the kernel does not fragment (native XDP on veth
	// allows up to about a page).
	for _, x := range []struct {
		ns   *topo.Namespace
		name string
	}{{p.nsA, "a0"}, {p.nsF, "f0"}} {
		if err := topo.Run(x.ns, "ip", "link", "set", x.name, "mtu", "3000"); err != nil {
			t.Fatal(err)
		}
	}
	pool := newPool(t, 256)
	s := p.socket(t, pool, 0, xsk.DefaultSocketOptions())
	s.Refill()
	err := p.nsA.Do(func() error {
		c, err := net.Dial("udp4", "10.77.0.2:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		// 1400 bytes fit a 2048-byte frame less headroom; 1900 do not.
		for _, n := range []int{1400, 1900, 1400} {
			if _, err := c.Write(make([]byte, n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 200*time.Millisecond, false)
	ks, _ := s.KernelStats()
	if ks.RxDropped == 0 {
		t.Fatalf("oversized frame not counted: kernel stats %+v, received %d", ks, len(got))
	}
	if len(got) != 2 {
		t.Fatalf("received %d datagrams, want the 2 that fit", len(got))
	}
	if pool.Len()+s.InKernel() != pool.Total() {
		t.Fatalf("pool %d + kernel %d != %d", pool.Len(), s.InKernel(), pool.Total())
	}
}
