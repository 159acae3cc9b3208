package main

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
)

// TestSignalDetaches starts rxdrop, stops it with SIGINT and then SIGTERM,
// and checks each time that it printed its summary, exited 0 and left no
// XDP program on the interface.
func TestSignalDetaches(t *testing.T) {
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	defer tp.Close()
	ns, err := tp.AddNamespace("tysig")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Port{NS: ns, Name: "s0"}
	b := topo.Port{NS: ns, Name: "s1"}
	if err := topo.NewVeth(&a, &b, topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.Command("ip", "netns", "exec", ns.Name, tyfwd, "rxdrop", "-i", "s0", "--quiet")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		attached := false
		for i := 0; i < 50 && !attached; i++ {
			time.Sleep(20 * time.Millisecond)
			o, _ := topo.Output(ns, "ip", "link", "show", "s0")
			attached = strings.Contains(o, "xdp")
		}
		if !attached {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v: program never attached:\n%s", sig, out.String())
		}
		// `ip netns exec` execs the command: the pid is tyfwd's.
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: exit %v:\n%s", sig, err, out.String())
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: tyfwd did not stop:\n%s", sig, out.String())
		}
		if !strings.Contains(out.String(), "summary: ") {
			t.Fatalf("%v: no summary:\n%s", sig, out.String())
		}
		if o, _ := topo.Output(ns, "ip", "link", "show", "s0"); strings.Contains(o, "xdp") {
			t.Fatalf("%v: XDP program left attached:\n%s", sig, o)
		}
	}
}
