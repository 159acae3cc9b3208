// Package admin is tyfwd's operator endpoint: one HTTP listener that
// serves Prometheus metrics (/metrics), the Go profiler (/debug/pprof/)
// and a health check (/healthz) from a mux of its own (never
// http.DefaultServeMux, where importing net/http/pprof also registers).
//
// # Metrics model
//
// Nothing is counted for the endpoint: the data path keeps its counters
// as it always does (atomics published once per batch) and collectors
// read them when Prometheus scrapes, so a scrape costs the workers
// nothing. Components add their own collectors through Register (the load
// balancer's per-VIP/backend counters, the host stack's counters);
// DataPathCollector exports a dataplane.DataPath.
//
// Names follow the Prometheus conventions: a tygress_ prefix, _total on
// counters, base units, and labels port (interface name), queue, reason,
// stage, verdict; never a label per flow, address or connection.
//
// The package is internal: it is the wiring of cmd/tyfwd, and library
// users who want metrics register DataPathCollector-like collectors on
// their own registry.
package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the admin endpoint. Make it with New, add collectors, Start
// it, Close it.
type Server struct {
	reg *prometheus.Registry
	mux *http.ServeMux
	log *slog.Logger

	mu     sync.Mutex
	health func() error
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
}

// New makes a server whose registry already holds the Go runtime and
// process collectors. A nil logger discards.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{reg: prometheus.NewRegistry(), mux: http.NewServeMux(), log: log}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{log}}))
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("/healthz", s.healthz)
	return s
}

// Registry is where collectors go; prefer Register.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Register adds a collector (see prometheus.Collector); its metrics
// appear on the next scrape.
func (s *Server) Register(c prometheus.Collector) error { return s.reg.Register(c) }

// Handler serves /metrics, /debug/pprof/ and /healthz (for tests and for
// embedding in another server).
func (s *Server) Handler() http.Handler { return s.mux }

// SetHealth sets the check /healthz runs: nil error answers 200 "ok", an
// error 503 with its text. The default check always passes.
func (s *Server) SetHealth(check func() error) {
	s.mu.Lock()
	s.health = check
	s.mu.Unlock()
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	check := s.health
	s.mu.Unlock()
	if check != nil {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// Listen opens addr: "host:port" (TCP; port 0 picks a free one) or
// "unix:PATH" (a Unix socket, reachable across network namespaces).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// Start listens on addr (see Listen) and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.Serve(ln)
	return nil
}

// Serve serves on ln in the background; Close closes ln.
func (s *Server) Serve(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.done = make(chan struct{})
	s.log.Info("admin endpoint listening", "addr", AddrString(ln.Addr()))
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin endpoint failed", "err", err)
		}
	}()
}

// Addr is the listening address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// AddrString formats an address as Start accepts it.
func AddrString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

// Close stops the listener and the connections in flight (scrapes are
// short; a profile being taken is cut off).
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}

// slogAdapter gives promhttp the Println it logs errors with.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	a.log.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
