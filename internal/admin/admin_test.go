package admin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/internal/admin"
	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/xsk"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestEndpoints(t *testing.T) {
	s := admin.New(nil)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tygress_test_things_total", Help: "Things."})
	c.Add(7)
	if err := s.Register(c); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	code, body := get(t, h, "/metrics")
	if code != 200 || !strings.Contains(body, "tygress_test_things_total 7\n") || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, "process_cpu_seconds_total") {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	if code, body := get(t, h, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ %d: %.200s", code, body)
	}
	if code, body := get(t, h, "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile %d: %.200s", code, body)
	}
	if code, body := get(t, h, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz %d %q", code, body)
	}
	s.SetHealth(func() error { return errors.New("worker 1 stopped") })
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "worker 1 stopped") {
		t.Fatalf("/healthz unhealthy %d %q", code, body)
	}
	if code, _ := get(t, h, "/nosuch"); code != 404 {
		t.Fatalf("/nosuch %d", code)
	}
	// Our own mux, not the default one.
	if code, _ := get(t, http.DefaultServeMux, "/metrics"); code != 404 {
		t.Fatalf("/metrics on DefaultServeMux answered %d", code)
	}
}

func TestStartClose(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "unix:" + filepath.Join(t.TempDir(), "admin.sock")} {
		s := admin.New(nil)
		if err := s.Start(addr); err != nil {
			t.Fatal(err)
		}
		a := s.Addr()
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, a.Network(), a.String())
		}}}
		resp, err := hc.Get("http://admin/healthz")
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok\n" {
			t.Fatalf("%s: %q", addr, body)
		}
		hc.CloseIdleConnections()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout(a.Network(), a.String(), time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still listening after Close", addr)
		}
	}
	if err := admin.New(nil).Start("256.0.0.1:1"); err == nil {
		t.Fatal("bad address accepted")
	}
}

// twice is a stage used twice in one pipeline: its series get "#index".
type twice struct{}

func (twice) Name() string { return "twice" }
func (twice) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		if len(b.Frames[i].Data) < 60 {
			b.Frames[i].SetDrop(pipeline.ReasonTooShort)
		}
	}
}

// TestStageCountersNoPrivileges builds a data path by hand (a worker with
// no sockets) and runs batches through its pipeline: the collector
// exports the stage counters under their names and passes promlint.
func TestStageCountersNoPrivileges(t *testing.T) {
	u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: 64})
	if err != nil {
		t.Skipf("umem: %v", err)
	}
	defer u.Close()
	pool, err := xsk.NewFramePool(u, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(twice{}, twice{}, pipeline.DropAll{})
	w, err := pipeline.NewWorker(pipeline.WorkerConfig{Pool: pool, Pipeline: p})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := &pipeline.Batch{Frames: make([]pipeline.Frame, 10)}
	for i := range b.Frames {
		b.Frames[i].Data = make([]byte, 40+4*i) // 40..76: five too short
	}
	var out pipeline.Output
	p.Run(b, &out)
	dp := &dataplane.DataPath{Workers: []*pipeline.Worker{w}}
	c := admin.NewDataPathCollector(dp)
	if probs, err := promtest.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Fatalf("lint: %v %+v", err, probs)
	}
	want := `
# HELP tygress_stage_drops_total Drops a pipeline stage decided, by reason.
# TYPE tygress_stage_drops_total counter
tygress_stage_drops_total{queue="0",reason="policy",stage="drop-all"} 5
tygress_stage_drops_total{queue="0",reason="too-short",stage="twice#0"} 5
# HELP tygress_stage_packets_total Frames a pipeline stage was given (stage "default": frames no stage decided).
# TYPE tygress_stage_packets_total counter
tygress_stage_packets_total{queue="0",stage="default"} 0
tygress_stage_packets_total{queue="0",stage="drop-all"} 5
tygress_stage_packets_total{queue="0",stage="twice#0"} 10
tygress_stage_packets_total{queue="0",stage="twice#1"} 5
`
	if err := promtest.CollectAndCompare(c, strings.NewReader(want), "tygress_stage_drops_total", "tygress_stage_packets_total"); err != nil {
		t.Fatal(err)
	}
}

// TestDataPathMetrics runs rxdrop's pipeline on a veth, sends datagrams
// from the peer and scrapes: per port/queue rx, per reason drops and the
// stage, socket and XDP series agree with what was sent.
func TestDataPathMetrics(t *testing.T) {
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() { tp.Close() })
	nsA, err := tp.AddNamespace("tyma")
	if err != nil {
		t.Fatal(err)
	}
	nsF, err := tp.AddNamespace("tymf")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Port{NS: nsA, Name: "a0", Addrs: []string{"10.82.0.1/24"}}
	f := topo.Port{NS: nsF, Name: "f0"}
	if err := topo.NewVeth(&a, &f, topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := topo.Run(nsA, "ip", "neigh", "replace", "10.82.0.2", "lladdr", f.MAC.String(), "dev", "a0"); err != nil {
		t.Fatal(err)
	}
	so := xsk.DefaultSocketOptions()
	so.RxSize, so.TxSize, so.FillSize, so.CompSize = 512, 0, 512, 512
	cfg := dataplane.Config{
		Ports:     []dataplane.PortConfig{{Name: "f0", Steer: true, ClaimAll: true, NoTx: true}},
		Queues:    1,
		Socket:    so,
		FrameSize: 2048,
		Pipeline:  func(int) *pipeline.Pipeline { return pipeline.New(pipeline.DropAll{}) },
	}
	var dp *dataplane.DataPath
	if err := nsF.Do(func() (err error) { dp, err = dataplane.Open(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	s := admin.New(nil)
	if err := s.Register(admin.NewDataPathCollector(dp)); err != nil {
		t.Fatal(err)
	}
	const n = 300
	err = nsA.Do(func() error {
		c, err := net.Dial("udp4", "10.82.0.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			if _, err := c.Write([]byte("hello")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w := dp.Workers[0]
	for i := 0; i < 200 && w.Stats().RxFrames < n; i++ {
		if w.Step() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	code, body := get(t, s.Handler(), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	ss, err := admin.ParseText(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	val := func(name string, labels ...string) float64 {
		v, k := ss.Sum(name, labels...)
		if k != 1 {
			t.Fatalf("%s%v: %d series\n%s", name, labels, k, body)
		}
		return v
	}
	rx := val("tygress_rx_packets_total", "port", "f0", "queue", "0")
	// The peer may add IPv6 neighbor discovery; the program claims all.
	if rx < n || rx > n+20 {
		t.Fatalf("rx %v, want %d (+ a few ND frames)\n%s", rx, n, body)
	}
	for _, chk := range []struct {
		name   string
		labels []string
	}{
		{"tygress_drops_total", []string{"queue", "0", "reason", "policy"}},
		{"tygress_stage_drops_total", []string{"queue", "0", "stage", "drop-all", "reason", "policy"}},
		{"tygress_stage_packets_total", []string{"queue", "0", "stage", "drop-all"}},
		{"tygress_xdp_redirected_packets_total", []string{"port", "f0"}},
	} {
		if v := val(chk.name, chk.labels...); v != rx {
			t.Errorf("%s%v = %v, want %v (rx)", chk.name, chk.labels, v, rx)
		}
	}
	if v := val("tygress_tx_packets_total", "port", "f0", "queue", "0"); v != 0 {
		t.Errorf("tx %v, want 0", v)
	}
	if v := val("tygress_port_info", "port", "f0"); v != 1 {
		t.Errorf("port_info %v", v)
	}
	if _, k := ss.Sum("tygress_xsk_rx_ring_full_total", "port", "f0", "queue", "0"); k != 1 {
		t.Errorf("no kernel XDP_STATISTICS series")
	}
	if probs, err := promtest.GatherAndLint(s.Registry()); err != nil || len(probs) != 0 {
		t.Fatalf("lint: %v %+v", err, probs)
	}
}
