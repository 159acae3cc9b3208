package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tygress/tygress/bench/internal/harness"
)

// Privileged tests skip when not root, unless TYGRESS_REQUIRE_PRIVILEGED is
// set (CI): then a missing privilege is a failure.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("TYGRESS_REQUIRE_PRIVILEGED") != "" {
		tb.Fatal("needs root (namespaces, XDP, AF_XDP) and TYGRESS_REQUIRE_PRIVILEGED is set")
	}
	tb.Skip("needs root (namespaces, XDP, AF_XDP)")
}

// smokeImpls run in every `go test`: cheap to build, each a different
// kind of receiver. TYGRESS_BENCH=1 adds the rest (gVisor's packages take
// a minute to compile from a cold cache; tyfwd is built from ../cmd/tyfwd).
var smokeImpls = []string{"kernel-xdp-drop", "xsk-poll", "xsys-poll", "asavie-poll", "c-xdpsock-poll", "udp-recvmmsg", "kernel-xdp-redirect", "c-xdpsock-l2fwd-poll"}

// TestDatapathSmoke runs each implementation for one second on the veth
// topology with the live-frames generator and checks that it counted
// packets. It proves the harness and the peers work, not how fast they are
// (that is BenchmarkDatapath, or `go run ./cmd/benchrun`).
func TestDatapathSmoke(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := harness.Config{
		BenchDir: ".", Duration: time.Second, Reps: 1, Settle: 200 * time.Millisecond,
		Repeat: 1 << 20, Log: testLog{t},
		Scenarios: []string{"rxdrop-64B", "l2fwd-64B"},
	}
	if os.Getenv("TYGRESS_BENCH") == "" {
		cfg.Impls = smokeImpls
	} else {
		cfg.Scenarios = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := harness.Prepare(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := b.RunAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	b.Report(&report, res)
	t.Log("\n" + report.String())
	if len(res) == 0 {
		t.Fatal("nothing ran")
	}
	for _, r := range res {
		switch {
		case r.Err != "":
			t.Errorf("%s %s: %s", r.Scenario, r.Impl, r.Err)
		case r.GenPkts == 0:
			t.Errorf("%s %s: the generator sent nothing", r.Scenario, r.Impl)
		case r.Pkts() < r.GenPkts/20:
			// A loaded machine can starve a receiver, but not to nothing.
			t.Errorf("%s %s: %d of %d packets counted", r.Scenario, r.Impl, r.Pkts(), r.GenPkts)
		}
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// BenchmarkDatapath is the data-path benchmark under `go test -bench`:
// one sub-benchmark per scenario and implementation, each reporting Mpps
// and the DUT's CPU ns per packet, so that benchstat can compare runs:
//
//	go test -run '^$' -bench Datapath -benchtime 1x -count 3 | tee new.txt
//
// TYGRESS_BENCH_DURATION sets the traffic per run (default 5s).
func BenchmarkDatapath(b *testing.B) {
	needRoot(b)
	d := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("TYGRESS_BENCH_DURATION")); err == nil {
		d = v
	}
	ctx := context.Background()
	bench, err := harness.Prepare(ctx, harness.Config{BenchDir: ".", Duration: d, Reps: 1, Log: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	defer bench.Close()
	for _, sc := range harness.Scenarios {
		for _, im := range bench.Impls() {
			if im.Kind != sc.Kind {
				continue
			}
			b.Run(sc.Name+"/"+im.Name, func(b *testing.B) {
				var mpps, ns float64
				for i := 0; i < b.N; i++ {
					r := bench.RunOne(ctx, sc, im, i+1)
					if r.Err != "" {
						b.Fatal(r.Err)
					}
					mpps += r.Mpps()
					ns += r.NsPerPkt()
				}
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(mpps/float64(b.N), "Mpps")
				b.ReportMetric(ns/float64(b.N), "cpu-ns/pkt")
			})
		}
	}
}
