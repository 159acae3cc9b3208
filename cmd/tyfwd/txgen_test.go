package main

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
)

// TestTxgenReachesKernelSockets sends IPv4 and IPv6 flows with txgen to a
// kernel UDP socket in another namespace: the kernel verifies every IP and
// UDP checksum (including the incrementally updated ones of flows > 1), so
// a datagram counted there was built right.
func TestTxgenReachesKernelSockets(t *testing.T) {
	testutil.RequirePrivileged(t)
	for _, tc := range []struct {
		name, src, dst, listen string
		size, flows            int
	}{
		{"ipv4-64B-1flow", "10.98.0.1", "10.98.0.2", "10.98.0.2:9", 60, 1},
		{"ipv4-1500B-37flows", "10.98.0.1", "10.98.0.2", "10.98.0.2:9", 1514, 37},
		{"ipv6-64B-8flows", "fd00:98::1", "fd00:98::2", "[fd00:98::2]:9", 66, 8},
		{"ipv6-1500B-1flow", "fd00:98::1", "fd00:98::2", "[fd00:98::2]:9", 1514, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tp topo.Topology
			defer tp.Close()
			nsA, err := tp.AddNamespace("tyga")
			if err != nil {
				t.Fatal(err)
			}
			nsB, err := tp.AddNamespace("tygb")
			if err != nil {
				t.Fatal(err)
			}
			a := topo.Port{NS: nsA, Name: "a0"}
			b := topo.Port{NS: nsB, Name: "b0", Addrs: []string{"10.98.0.2/24", "fd00:98::2/64"}}
			if err := topo.NewVeth(&a, &b, topo.VethOptions{}); err != nil {
				t.Fatal(err)
			}
			const count = 2000
			got := make(chan int, 1)
			ready := make(chan error, 1)
			go nsB.Do(func() error {
				c, err := net.ListenPacket("udp", tc.listen)
				ready <- err
				if err != nil {
					return err
				}
				defer c.Close()
				c.(*net.UDPConn).SetReadBuffer(4 << 20)
				buf := make([]byte, 2048)
				n := 0
				for {
					c.SetReadDeadline(time.Now().Add(time.Second))
					if _, _, err := c.ReadFrom(buf); err != nil {
						break
					}
					n++
				}
				got <- n
				return nil
			})
			if err := <-ready; err != nil {
				t.Fatal(err)
			}
			args := []string{"netns", "exec", nsA.Name, tyfwd, "txgen", "-i", "a0", "--dst-mac", b.MAC.String(),
				"--src", tc.src, "--dst", tc.dst, "--size", fmt.Sprint(tc.size), "--flows", fmt.Sprint(tc.flows),
				"--count", fmt.Sprint(count), "--rate", "100000", "--quiet"}
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("txgen: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), fmt.Sprintf("tx_pkts=%d ", count)) {
				t.Fatalf("txgen did not send %d:\n%s", count, out)
			}
			if n := <-got; n != count {
				t.Fatalf("kernel socket received %d of %d datagrams (bad checksums are dropped)\n%s", n, count, out)
			}
		})
	}
}
