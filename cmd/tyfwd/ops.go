package main

// Operations, for every tyfwd command: the admin endpoint (Prometheus
// metrics, pprof, health), packet capture at any pipeline stage, and
// structured logs of runtime events. Bad flags and missing privileges are
// still reported as one plain line on stderr (exit 2 and 1); slog carries
// only what happens while running.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/internal/admin"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/pipeline/capture"
)

// logOut is where the structured logs go (tests may replace it).
var logOut io.Writer = os.Stderr

// captureSpecs is the repeatable --capture STAGE=FILE flag.
type captureSpecs []captureSpec

type captureSpec struct{ point, path string }

func (c *captureSpecs) String() string {
	var s []string
	for _, x := range *c {
		s = append(s, x.point+"="+x.path)
	}
	return strings.Join(s, ",")
}

func (c *captureSpecs) Set(v string) error {
	point, path, ok := strings.Cut(v, "=")
	if !ok || point == "" || path == "" {
		return fmt.Errorf("want STAGE=FILE.pcap or STAGE=FILE.pcapng, got %q", v)
	}
	*c = append(*c, captureSpec{point, path})
	return nil
}

// ops holds the operations flags and what they start.
type ops struct {
	admin        string
	logFormat    string
	logLevel     string
	captures     captureSpecs
	captureCount uint64
	captureDur   time.Duration

	log *slog.Logger
	// caps[i] serves captures[i]; made by validate so that pipelines
	// built inside dataplane.Open can get their rings.
	caps    []*capture.Capture
	mu      sync.Mutex
	wrapErr error
	srv     *admin.Server
	started []*capture.Capture
	running bool // start succeeded: stop logs the shutdown
}

func (o *ops) registerLog(fs *flag.FlagSet) {
	fs.StringVar(&o.logFormat, "log-format", "text", "structured log format on stderr: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func (o *ops) register(fs *flag.FlagSet) {
	o.registerLog(fs)
	fs.StringVar(&o.admin, "admin", "", "serve /metrics, /debug/pprof/ and /healthz on ADDR (host:port, or unix:PATH); empty: off. Any address is allowed: keep it on loopback unless the network is trusted")
	fs.Var(&o.captures, "capture", "write the frames seen at STAGE to FILE (STAGE=FILE, repeatable; STAGE is rx, tx or a pipeline stage's name or index; FILE.pcapng writes pcapng with verdicts)")
	fs.Uint64Var(&o.captureCount, "capture-count", 0, "stop each capture after this many frames (0: no limit)")
	fs.DurationVar(&o.captureDur, "capture-duration", 0, "stop each capture after this long (0: no limit)")
}

func (o *ops) validateLog() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", o.logLevel)}
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		o.log = slog.New(slog.NewTextHandler(logOut, ho))
	case "json":
		o.log = slog.New(slog.NewJSONHandler(logOut, ho))
	default:
		return usageError{fmt.Sprintf("--log-format %q: want text or json", o.logFormat)}
	}
	return nil
}

func (o *ops) validate() error {
	if err := o.validateLog(); err != nil {
		return err
	}
	if o.captureDur < 0 {
		return usageError{"--capture-duration must not be negative"}
	}
	if err := checkAdminAddr(o.admin); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range o.captures {
		if seen[s.path] {
			return usageError{fmt.Sprintf("--capture: %s named twice", s.path)}
		}
		seen[s.path] = true
		c, err := capture.New(capture.Options{Point: s.point, Format: capture.FormatOf(s.path), Count: o.captureCount, Duration: o.captureDur})
		if err != nil {
			return usageError{"--capture: " + err.Error()}
		}
		o.caps = append(o.caps, c)
	}
	return nil
}

// wrap returns a pipeline builder that adds the capture taps to every
// worker's pipeline.
func (o *ops) wrap(pl func(q int) *pipeline.Pipeline) func(q int) *pipeline.Pipeline {
	if len(o.caps) == 0 || pl == nil {
		return pl
	}
	return func(q int) *pipeline.Pipeline {
		p := pl(q)
		taps := make([]capture.Tap, len(o.caps))
		for i, c := range o.caps {
			taps[i] = capture.Tap{Point: o.captures[i].point, Capture: c}
		}
		wp, err := capture.Pipeline(p, taps...)
		if err != nil {
			o.mu.Lock()
			if o.wrapErr == nil {
				o.wrapErr = err
			}
			o.mu.Unlock()
			return p
		}
		return wp
	}
}

// start runs after dataplane.Open: it logs the ports, opens the capture
// files and starts the admin endpoint. Call stop when the data path has
// stopped, also when start fails.
func (o *ops) start(dp *dataplane.DataPath, cmd string) error {
	o.mu.Lock()
	werr := o.wrapErr
	o.mu.Unlock()
	if werr != nil {
		return usageError{"--" + werr.Error()}
	}
	for _, p := range dp.Ports {
		bind := "none"
		if len(p.Sockets) > 0 {
			bind = p.Sockets[0].Mode()
		}
		xdp := p.XDPMode
		if xdp == "" {
			xdp = "none"
		}
		o.log.Info("port open", "cmd", cmd, "port", p.Name, "ifindex", p.Ifindex, "queues", len(p.Sockets), "xdp_mode", xdp, "bind_mode", bind)
	}
	for i, c := range o.caps {
		s := o.captures[i]
		f, err := os.Create(s.path)
		if err != nil {
			return fmt.Errorf("--capture: %w", err)
		}
		if err := c.Start(f); err != nil {
			f.Close()
			return err
		}
		o.started = append(o.started, c)
		o.log.Info("capture started", "stage", s.point, "file", s.path, "count", o.captureCount, "duration", o.captureDur.String())
	}
	if o.admin == "" {
		o.running = true
		return nil
	}
	o.srv = admin.New(o.log)
	if err := o.srv.Register(admin.NewDataPathCollector(dp)); err != nil {
		return err
	}
	for i, c := range o.caps {
		if err := o.srv.Register(captureCollector(o.captures[i], c)); err != nil {
			return err
		}
	}
	if err := o.srv.Start(o.admin); err != nil {
		o.srv = nil
		return err
	}
	o.running = true
	return nil
}

// stop closes the captures (after writing what their rings hold) and the
// admin endpoint.
func (o *ops) stop() {
	var errs []error
	for i, c := range o.started {
		err := c.Close()
		st := c.Stats()
		o.log.Info("capture finished", "stage", o.captures[i].point, "file", o.captures[i].path, "written", st.Written, "dropped", st.Dropped)
		if err != nil {
			errs = append(errs, err)
		}
	}
	o.started = nil
	if o.srv != nil {
		errs = append(errs, o.srv.Close())
		o.srv = nil
	}
	if err := errors.Join(errs...); err != nil {
		o.log.Error("shutdown", "err", err)
	}
	if o.running {
		o.log.Info("stopped")
		o.running = false
	}
}

// captureCollector exports a capture's counters.
func captureCollector(s captureSpec, c *capture.Capture) prometheus.Collector {
	labels := prometheus.Labels{"stage": s.point, "file": filepath.Base(s.path)}
	return collectors{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tygress_capture_packets_total", Help: "Frames written to a capture file.", ConstLabels: labels},
			func() float64 { return float64(c.Stats().Written) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tygress_capture_dropped_total", Help: "Frames a capture missed because its ring was full.", ConstLabels: labels},
			func() float64 { return float64(c.Stats().Dropped) }),
	}
}

// collectors is several collectors registered as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// childArgs are the operations flags the demo passes to its process
// role: logs to every one; the admin endpoint and captures to the
// forwarder, where the pipeline runs (capture paths made absolute).
func (o *ops) childArgs(role string) []string {
	args := []string{"--log-format", o.logFormat, "--log-level", o.logLevel}
	if role != "fwd" {
		return args
	}
	if o.admin != "" {
		args = append(args, "--admin", o.admin)
	}
	for _, s := range o.captures {
		p, err := filepath.Abs(s.path)
		if err != nil {
			p = s.path
		}
		args = append(args, "--capture", s.point+"="+p)
	}
	if o.captureCount > 0 {
		args = append(args, "--capture-count", fmt.Sprint(o.captureCount))
	}
	if o.captureDur > 0 {
		args = append(args, "--capture-duration", o.captureDur.String())
	}
	return args
}

// validateDemo checks the demo's operations flags; the demo's children
// check the rest (capture stages exist only in the forwarder).
func (o *ops) validateDemo() error {
	if err := o.validateLog(); err != nil {
		return err
	}
	if o.captureDur < 0 {
		return usageError{"--capture-duration must not be negative"}
	}
	return checkAdminAddr(o.admin)
}

// checkAdminAddr refuses an --admin address that cannot be listened on
// for its form alone (the listen itself happens after the data path is
// open).
func checkAdminAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return usageError{"--admin unix:PATH: empty path"}
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return usageError{fmt.Sprintf("--admin %q: want HOST:PORT or unix:PATH", addr)}
	}
	return nil
}
