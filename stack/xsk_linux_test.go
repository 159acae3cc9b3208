package stack

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tygress/tygress/bpf"
	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/xsk"
)

// TestShardXSKPing: the kernel in namespace A pings a shard that drives an
// AF_XDP link on the veth end in namespace F, over IPv4 and IPv6, with no
// static neighbor entries: the kernel resolves the shard's MAC by ARP and
// neighbor discovery.
func TestShardXSKPing(t *testing.T) {
	testutil.RequirePrivileged(t)
	if _, err := exec.LookPath("ping"); err != nil {
		t.Fatalf("ping not found (install Debian's iputils-ping): %v", err)
	}
	var tp topo.Topology
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("topology cleanup: %v", err)
		}
	})
	nsA, err := tp.AddNamespace("tysa")
	if err != nil {
		t.Fatal(err)
	}
	nsF, err := tp.AddNamespace("tysf")
	if err != nil {
		t.Fatal(err)
	}
	pa := topo.Port{NS: nsA, Name: "a0", Addrs: []string{"10.90.0.1/24", "fd00:90::1/64"}}
	pf := topo.Port{NS: nsF, Name: "f0"}
	if err := topo.NewVeth(&pa, &pf, topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}

	steer, err := bpf.Load(bpf.Options{ClaimAll: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { steer.Close() })
	err = nsF.Do(func() error {
		_, err := steer.Attach(pf.Ifindex)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	pool, err := xsk.NewFramePool(u, 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var l *link.XSK
	err = nsF.Do(func() error {
		sock, err := xsk.NewSocket(pool, pf.Ifindex, 0, xsk.DefaultSocketOptions())
		if err != nil {
			return err
		}
		if l, err = link.NewXSK(sock, link.XSKOptions{}); err != nil {
			sock.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := steer.Register(0, l.Socket().FD()); err != nil {
		l.Close()
		t.Fatal(err)
	}

	s, err := NewShard(l, ShardConfig{Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.90.0.2/24"), netip.MustParsePrefix("fd00:90::2/64")}})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		runErr = s.Run(ctx)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
			l.Close()
		}
	}
	t.Cleanup(stop)

	for _, args := range [][]string{
		{"-c", "3", "-W", "1", "10.90.0.2"},
		{"-6", "-c", "3", "-W", "1", "fd00:90::2"},
	} {
		start := time.Now()
		out, err := topo.Output(nsA, "ping", args...)
		if err != nil {
			neigh, _ := topo.Output(nsA, "ip", "neigh", "show", "dev", "a0")
			t.Errorf("ping %s: %v\n%s\nneighbors:\n%s", strings.Join(args, " "), err, out, neigh)
			continue
		}
		t.Logf("ping %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	}
	neigh, _ := topo.Output(nsA, "ip", "neigh", "show", "dev", "a0")
	t.Logf("A's neighbors:\n%s", neigh)
	if !strings.Contains(neigh, "10.90.0.2 lladdr "+pf.MAC.String()) ||
		!strings.Contains(neigh, "fd00:90::2 lladdr "+pf.MAC.String()) {
		t.Errorf("A did not resolve the shard's MAC %s", pf.MAC)
	}

	stop()
	if runErr != nil {
		t.Errorf("Run: %v", runErr)
	}
	st := s.Stats()
	t.Logf("shard stats %+v\nneighbor stats %+v\nlink stats %+v", st, s.Neighbors().Stats(), l.Stats())
	if st.EchoV4 < 3 || st.EchoV6 < 3 || st.TxRefused != 0 {
		t.Errorf("shard stats %+v", st)
	}
}
