package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
)

// TestServe runs `tyfwd serve` in namespace S and reaches its services from
// a kernel peer in namespace A: ping and ping -6, UDP echo (also an 8 KB
// datagram, fragmented both ways), discard, the stats service, and port
// unreachable for a closed port. SIGTERM ends it with a summary.
func TestServe(t *testing.T) {
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	defer tp.Close()
	nsA, err := tp.AddNamespace("tysva")
	if err != nil {
		t.Fatal(err)
	}
	nsS, err := tp.AddNamespace("tysvs")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Port{NS: nsA, Name: "a0", Addrs: []string{"10.97.0.1/24", "fd00:97::1/64"}}
	s := topo.Port{NS: nsS, Name: "s0"}
	if err := topo.NewVeth(&a, &s, topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", nsS.Name, tyfwd, "serve", "-i", "s0",
		"--addr", "10.97.0.2/24", "--addr", "fd00:97::2/64", "--gateway", "10.97.0.1", "--queues", "1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until it answers pings.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := topo.Run(nsA, "ping", "-c", "1", "-W", "1", "10.97.0.2"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve does not answer ping:\n%s", out.String())
		}
	}
	// IPv6 answers once duplicate address detection (1 s) is done.
	for {
		o, err := topo.Output(nsA, "ping", "-6", "-c", "1", "-W", "1", "fd00:97::2")
		if err == nil {
			break
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("ping -6: %v\n%s\n%s", err, o, out.String())
		}
	}
	err = nsA.Do(func() error {
		for _, dst := range []string{"10.97.0.2", "fd00:97::2"} {
			// Echo.
			c, err := net.Dial("udp", net.JoinHostPort(dst, "7"))
			if err != nil {
				return err
			}
			defer c.Close()
			for _, size := range []int{18, 1400, 8000} {
				msg := bytes.Repeat([]byte{byte(size)}, size)
				c.Write(msg)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 10000)
				n, err := c.Read(buf)
				if err != nil || !bytes.Equal(buf[:n], msg) {
					t.Errorf("echo %s %d bytes: %d, %v", dst, size, n, err)
				}
			}
			// Discard: nothing comes back.
			d, err := net.Dial("udp", net.JoinHostPort(dst, "9"))
			if err != nil {
				return err
			}
			defer d.Close()
			d.Write([]byte("into the void"))
			d.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := d.Read(make([]byte, 100)); err == nil {
				t.Errorf("discard answered %d bytes", n)
			}
			// Stats.
			st, err := net.Dial("udp", net.JoinHostPort(dst, "9100"))
			if err != nil {
				return err
			}
			defer st.Close()
			st.Write([]byte("?"))
			st.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			n, err := st.Read(buf)
			if err != nil || !strings.Contains(string(buf[:n]), "udp_rx=") {
				t.Errorf("stats %s: %q, %v", dst, buf[:n], err)
			}
			// A closed port: ECONNREFUSED.
			x, err := net.Dial("udp", net.JoinHostPort(dst, "4444"))
			if err != nil {
				return err
			}
			defer x.Close()
			x.Write([]byte("hello?"))
			x.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := x.Read(buf); err == nil || !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("closed port %s: %v, want connection refused", dst, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, out.String())
	}
	t.Logf("serve output:\n%s", out.String())
	if !strings.Contains(out.String(), "summary: ") || !strings.Contains(out.String(), "echo=") {
		t.Fatalf("no summary:\n%s", out.String())
	}
}
