package harness

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestParseSummary(t *testing.T) {
	s, err := ParseSummary("summary: rx_pkts=123 tx_pkts=0 seconds=5.002 mode=native")
	if err != nil {
		t.Fatal(err)
	}
	if s.Uint("rx_pkts") != 123 || s.Float("seconds") != 5.002 || s["mode"] != "native" || s.Has("allocs") {
		t.Fatalf("parsed %v", s)
	}
	for _, bad := range []string{"rx_pkts=1", "summary: rx_pkts", "summary: =3"} {
		if _, err := ParseSummary(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func res(sc, impl, mode string, pkts uint64, winCPU float64, rep int) Result {
	r := Result{Scenario: sc, Impl: impl, Mode: mode, Rep: rep, Len: 60, GenPkts: 10_000_000, GenSecs: 5, GenCPU: 5,
		Window: 5, WinCPU: winCPU, DUTCPU: winCPU + 0.01, RxPkts: pkts, Wakeups: pkts / 64}
	if strings.HasPrefix(sc, "l2fwd") {
		r.Sunk = pkts
	}
	return r
}

func TestAggregateAndReport(t *testing.T) {
	in := []Result{
		res("rxdrop-64B", "tyfwd-poll", "poll", 10_000_000, 0.8, 1),
		res("rxdrop-64B", "asavie-poll", "poll", 8_000_000, 0.8, 1),
		res("rxdrop-64B", "tyfwd-poll", "poll", 12_000_000, 1.2, 2),
		res("rxdrop-64B", "asavie-poll", "poll", 9_000_000, 0.9, 2),
		res("rxdrop-64B", "tyfwd-poll", "poll", 11_000_000, 0.9, 3),
		res("rxdrop-64B", "asavie-poll", "poll", 1, 0.9, 3),
		{Scenario: "l2fwd-64B", Impl: "tyfwd-l2fwd-poll", Mode: "poll", Rep: 1, Err: "exited before traffic: boom"},
	}
	in[5].Err = "failed"
	rows := Aggregate(in)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	ty, as := rows[0], rows[1]
	if ty.Impl != "tyfwd-poll" || ty.Runs != 3 || ty.Failed != 0 || math.Abs(ty.Mpps-2.2) > 1e-9 {
		t.Fatalf("tyfwd row %+v", ty)
	}
	if as.Runs != 3 || as.Failed != 1 || math.Abs(as.Mpps-1.7) > 1e-9 {
		t.Fatalf("asavie row %+v", as)
	}
	if ty.Class != Ours || as.Class != Peer {
		t.Fatalf("classes %v %v", ty.Class, as.Class)
	}
	if ref := reference(rows, as, ""); ref == nil || ref.Impl != "tyfwd-poll" {
		t.Fatalf("reference of asavie: %+v", ref)
	}
	if ref := reference(rows, rows[2], ""); ref != nil {
		t.Fatalf("a failed row must not be a reference: %+v", ref)
	}

	b := &Bench{cfg: Config{Duration: 5e9, Reps: 3}, missing: map[string]string{}}
	var out bytes.Buffer
	b.Report(&out, in)
	txt := out.String()
	for _, want := range []string{"== rxdrop-64B", "tyfwd-poll", "ref", "1.29", "FAILED", "1 of 3 runs failed", "tyfwd-l2fwd-poll failed: exited before traffic"} {
		if !strings.Contains(txt, want) {
			t.Errorf("report lacks %q:\n%s", want, txt)
		}
	}
}

func TestLenLabel(t *testing.T) {
	if lenLabel(60) != 64 || lenLabel(1514) != 1500 {
		t.Fatal(lenLabel(60), lenLabel(1514))
	}
}

func TestProcCPU(t *testing.T) {
	if _, ok := procCPU(1 << 30); ok {
		t.Fatal("CPU time of a process that does not exist")
	}
}

func TestCommand(t *testing.T) {
	got := strings.Join(command(nil, "1", "/bin/x", "-i", "eth0"), " ")
	if got != "taskset -c 1 /bin/x -i eth0" {
		t.Fatal(got)
	}
}

func TestReadCPUTimes(t *testing.T) {
	st := ReadCPUTimes()
	if len(st) != runtime.NumCPU() {
		t.Fatalf("%d CPUs in /proc/stat, runtime says %d", len(st), runtime.NumCPU())
	}
	for c, v := range st {
		if v.Busy <= 0 || v.Softirq < 0 || v.Softirq > v.Busy {
			t.Errorf("cpu%d: %+v", c, v)
		}
	}
}
