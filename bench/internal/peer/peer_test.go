package peer

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"1": {1}, "0-3,6": {0, 1, 2, 3, 6}, " 2 , 4-5": {2, 4, 5}} {
		got, err := ParseCPUList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "-1", ","} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c := RegisterFlags(fs)
	err := Parse(fs, c, []string{"-i", "eth0", "--queues", "2", "--cores", "1,3", "--busy", "--duration", "2s", "--bind", "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Iface != "eth0" || c.Queues != 2 || !c.Busy || c.Duration != 2*time.Second || c.Bind != "copy" {
		t.Fatalf("%+v", c)
	}
	if cpu, ok := c.Core(3); !ok || cpu != 3 {
		t.Fatalf("core of worker 3: %d %v", cpu, ok)
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	c = RegisterFlags(fs)
	if err := Parse(fs, c, []string{"--queues", "1"}); err == nil {
		t.Fatal("missing -i accepted")
	}
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	c = RegisterFlags(fs)
	if err := Parse(fs, c, []string{"-i", "x", "--ring", "1000"}); err == nil {
		t.Fatal("ring of 1000 accepted")
	}
}

func TestSummary(t *testing.T) {
	got := Summary(Snapshot{Rx: 5, Tx: 1, FillEmpty: 2, Wakeups: 3}, 1.5, 7, "mode=native")
	want := "summary: rx_pkts=5 tx_pkts=1 drops=0 fill_ring_empty=2 wakeups=3 seconds=1.500 allocs=7 mode=native"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !strings.HasPrefix(got, "summary: ") {
		t.Fatal("prefix")
	}
}

func TestRetryBusy(t *testing.T) {
	calls := 0
	err := RetryBusy(func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("bind: %w", unix.EBUSY)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	calls = 0
	if err := RetryBusy(func() error { calls++; return unix.EINVAL }); err != unix.EINVAL || calls != 1 {
		t.Fatalf("EINVAL: err %v after %d calls", err, calls)
	}
}
