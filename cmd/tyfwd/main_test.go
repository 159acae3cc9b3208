package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/pipeline"
)

var tyfwd string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tyfwd-test")
	if err != nil {
		panic(err)
	}
	tyfwd = filepath.Join(dir, "tyfwd")
	if out, err := exec.Command("go", "build", "-o", tyfwd, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"nosuch"}, "unknown command"},
		{[]string{"rxdrop"}, "-i IFACE is required"},
		{[]string{"rxdrop", "-i", "lo", "--batch", "0"}, "--batch 0"},
		{[]string{"rxdrop", "-i", "lo", "--rx-size", "1000"}, "power of two"},
		{[]string{"rxdrop", "-i", "lo", "--xdp-mode", "fast"}, "--xdp-mode"},
		{[]string{"rxdrop", "-i", "lo", "--bind", "maybe"}, "--bind"},
		{[]string{"rxdrop", "-i", "lo", "--cores", "3-1"}, "--cores"},
		{[]string{"rxdrop", "-i", "lo", "--fill-limit", "8192"}, "--fill-limit"},
		{[]string{"rxdrop", "-i", "lo", "--fill-limit", "-1"}, "--fill-limit"},
		{[]string{"rxdrop", "-i", "lo", "--frame-size", "3000"}, "--frame-size"},
		{[]string{"rxdrop", "-i", "lo", "--busy", "--poll"}, "exclude"},
		{[]string{"rxdrop", "-i", "lo", "--coalesce", "2ms"}, "--coalesce 2ms"},
		{[]string{"rxdrop", "-i", "lo", "--coalesce", "-1us"}, "--coalesce -1"},
		{[]string{"rxdrop", "-i", "lo", "--coalesce", "20us", "--busy"}, "needs poll mode"},
		{[]string{"rxdrop", "-i", "lo", "--coalesce", "20us", "--busy-poll"}, "exclude each other"},
		{[]string{"rxdrop", "--nosuchflag"}, "not defined"},
		{[]string{"l2fwd", "-i", "a"}, "required"},
		{[]string{"l2fwd", "-i", "a", "-o", "a"}, "must differ"},
		{[]string{"l2fwd", "-i", "a", "-o", "b", "--dst-mac", "zz"}, "--dst-mac"},
		{[]string{"txgen", "-i", "lo", "--dst-mac", "02:00:00:00:00:01", "--src", "10.0.0.1", "--dst", "fd00::1"}, "one family"},
		{[]string{"txgen", "-i", "lo", "--dst-mac", "02:00:00:00:00:01", "--size", "9000"}, "--size 9000"},
		{[]string{"txgen", "-i", "lo", "--dst-mac", "02:00:00:00:00:01", "--flows", "70000"}, "ports"},
		{[]string{"demo", "extra"}, "unexpected argument"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			cmd := exec.Command(tyfwd, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2; stderr %q", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("stack trace on bad flags: %s", stderr.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	out, err := exec.Command(tyfwd, "rxdrop", "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-queues") {
		t.Fatalf("rxdrop -h: %v\n%s", err, out)
	}
}

// TestUnprivileged runs rxdrop as nobody: one clear error line, exit 1.
func TestUnprivileged(t *testing.T) {
	testutil.RequirePrivileged(t)
	cmd := exec.Command(tyfwd, "rxdrop", "-i", "lo", "--duration", "1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stderr %q", err, stderr.String())
	}
	msg := stderr.String()
	if strings.Count(strings.TrimSpace(msg), "\n") != 0 || !strings.Contains(msg, "needs root") || strings.Contains(msg, "goroutine ") {
		t.Fatalf("want one line saying it needs root, got %q", msg)
	}
}

// TestDemo runs the whole demo: txgen -> l2fwd -> rxdrop across three
// namespaces, every process a real tyfwd.
func TestDemo(t *testing.T) {
	testutil.RequirePrivileged(t)
	out, err := exec.Command(tyfwd, "demo", "--duration", "2s", "--rate", "50000").CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`txgen sent (\d+), l2fwd forwarded (\d+), rxdrop received (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no result line:\n%s", out)
	}
	sent, _ := strconv.Atoi(string(m[1]))
	fwd, _ := strconv.Atoi(string(m[2]))
	recv, _ := strconv.Atoi(string(m[3]))
	// 50k pps for 2 s: nearly everything must arrive (the sink and the
	// forwarder share two cores with the generator).
	if sent < 90000 || fwd < sent*99/100 || recv < sent*99/100 {
		t.Fatalf("sent %d forwarded %d received %d\n%s", sent, fwd, recv, out)
	}
	// Start-up and the per-second lines allocate a little; an allocation
	// per packet would show as 1 or more.
	for _, m := range regexp.MustCompile(`allocs_per_pkt=([0-9.]+)`).FindAllSubmatch(out, -1) {
		if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 0.01 {
			t.Errorf("%s allocations per packet", m[1])
		}
	}
	// A round that received frames took at most a batch (64) per port.
	for _, m := range regexp.MustCompile(`rx_pkts=(\d+) .* rx_batches=(\d+) `).FindAllSubmatch(out, -1) {
		rx, _ := strconv.Atoi(string(m[1]))
		batches, _ := strconv.Atoi(string(m[2]))
		if rx > 0 && (batches == 0 || rx > 64*batches) {
			t.Errorf("%d frames received in %d batches", rx, batches)
		}
	}
	if n := len(regexp.MustCompile(`rx_batches=`).FindAll(out, -1)); n != 3 {
		t.Errorf("%d summaries with batch counts, want 3", n)
	}
	if n := len(regexp.MustCompile(`allocs_per_pkt=`).FindAll(out, -1)); n != 3 {
		t.Errorf("%d summaries with allocation counts, want 3", n)
	}
	if !strings.Contains(string(out), "namespaces and links removed") {
		t.Fatalf("no cleanup:\n%s", out)
	}
	if ns, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(ns), "tyd-") {
		t.Fatalf("namespaces left behind: %s", ns)
	}
}

// TestDemoWithFaults runs the demo with the fault injector as a stage in
// l2fwd on the real data path: 10% loss plus delay and jitter. About a
// tenth of the frames must be dropped with the fault reason, and every
// delayed frame must still come out.
func TestDemoWithFaults(t *testing.T) {
	testutil.RequirePrivileged(t)
	out, err := exec.Command(tyfwd, "demo", "--duration", "2s", "--rate", "30000", "--fault", "loss=0.1,delay=2ms,jitter=1ms,seed=5").CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`txgen sent (\d+), l2fwd forwarded (\d+), rxdrop received (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no result line:\n%s", out)
	}
	sent, _ := strconv.Atoi(string(m[1]))
	fwd, _ := strconv.Atoi(string(m[2]))
	lost := regexp.MustCompile(`drop_fault_loss=(\d+)`).FindSubmatch(out)
	if lost == nil {
		t.Fatalf("no fault drops counted:\n%s", out)
	}
	n, _ := strconv.Atoi(string(lost[1]))
	if sent < 50000 || n < sent*8/100 || n > sent*12/100 || fwd+n < sent*99/100 {
		t.Fatalf("sent %d, forwarded %d, lost to faults %d\n%s", sent, fwd, n, out)
	}
}

// TestPortSwitchClockless: l2fwd's stage never reads the batch clock, so
// its pipeline lets the worker skip the clock (pipeline.Clockless).
func TestPortSwitchClockless(t *testing.T) {
	if !pipeline.New(portSwitch{&pipeline.L2Forward{}, &pipeline.L2Forward{OutPort: 1}}).Clockless() {
		t.Error("l2fwd's pipeline reads the clock for every batch")
	}
}
