package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/proto"
)

// lbTopo: a client namespace (10.88.0.1), the balancer's namespace with a
// port toward the clients (l0) and one toward the backends (l1), a switch
// namespace with a bridge, and three backends (10.88.1.11-13) whose
// default route points at the balancer (NAT). VIP 10.88.0.100.
type lbTopo struct {
	tp       topo.Topology
	cli, lbn *topo.Namespace
	backs    [3]*topo.Namespace
	stop     []func()
	httpLn   [3]net.Listener
	httpMu   sync.Mutex
	errs     []string
}

const lbVIP = "10.88.0.100"

func newLBTopo(t *testing.T, queues int) *lbTopo {
	t.Helper()
	testutil.RequirePrivileged(t)
	lt := &lbTopo{}
	t.Cleanup(func() {
		for _, f := range lt.stop {
			f()
		}
		if err := lt.tp.Close(); err != nil {
			t.Errorf("topology: %v", err)
		}
	})
	var err error
	ns := func(p string) *topo.Namespace {
		n, err := lt.tp.AddNamespace(p)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	lt.cli, lt.lbn = ns("tylc"), ns("tyll")
	sw := ns("tyls")
	c0 := topo.Port{NS: lt.cli, Name: "c0", Addrs: []string{"10.88.0.1/24", "fd00:88::1/64"}}
	l0 := topo.Port{NS: lt.lbn, Name: "l0"}
	if err = topo.NewVeth(&c0, &l0, topo.VethOptions{Queues: queues}); err != nil {
		t.Fatal(err)
	}
	l1 := topo.Port{NS: lt.lbn, Name: "l1"}
	s0 := topo.Port{NS: sw, Name: "s0"}
	if err = topo.NewVeth(&l1, &s0, topo.VethOptions{Queues: queues}); err != nil {
		t.Fatal(err)
	}
	run := func(n *topo.Namespace, args ...string) {
		if out, err := topo.Output(n, args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run(sw, "ip", "link", "add", "br0", "type", "bridge")
	run(sw, "ip", "link", "set", "br0", "up")
	run(sw, "ip", "link", "set", "s0", "master", "br0")
	for i := range 3 {
		lt.backs[i] = ns(fmt.Sprintf("tylb%d", i+1))
		e := topo.Port{NS: lt.backs[i], Name: "e0", Addrs: []string{fmt.Sprintf("10.88.1.%d/24", 11+i), fmt.Sprintf("fd00:88:1::%d/64", 11+i)}}
		s := topo.Port{NS: sw, Name: fmt.Sprintf("s%d", i+1)}
		if err = topo.NewVeth(&e, &s, topo.VethOptions{}); err != nil {
			t.Fatal(err)
		}
		run(sw, "ip", "link", "set", s.Name, "master", "br0")
		run(lt.backs[i], "ip", "route", "add", "default", "via", "10.88.1.1")
		run(lt.backs[i], "ip", "-6", "route", "add", "default", "via", "fd00:88:1::1")
		lt.serve(t, i)
	}
	return lt
}

// serve runs backend i: HTTP on :80 answering its name, and on :7 a TCP
// service that greets with its name and then echoes lines.
func (lt *lbTopo) serve(t *testing.T, i int) {
	t.Helper()
	name := fmt.Sprintf("b%d", i+1)
	var hl, el net.Listener
	err := lt.backs[i].Do(func() error {
		var err error
		if hl, err = net.Listen("tcp", ":80"); err != nil {
			return err
		}
		el, err = net.Listen("tcp", ":7")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(hl)
	lt.httpMu.Lock()
	lt.httpLn[i] = hl
	lt.httpMu.Unlock()
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, line)
				}
			}()
		}
	}()
	lt.stop = append(lt.stop, func() { srv.Close(); el.Close() })
}

// dial connects from the client namespace.
func (lt *lbTopo) dial(addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := lt.cli.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return c, err
}

// get does one HTTP request on a new connection to the IPv4 VIP and
// returns the backend that answered.
func (lt *lbTopo) get() (string, error) { return lt.getFrom(lbVIP) }

// getFrom is get for any VIP (an IPv6 one in brackets).
func (lt *lbTopo) getFrom(vip string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return lt.dial(addr, 2*time.Second)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + vip + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// spread does n requests, 8 at a time, and counts the answers by backend.
func (lt *lbTopo) spread(t *testing.T, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				b, err := lt.get()
				if err != nil {
					b = "error"
					mu.Lock()
					if len(lt.errs) < 5 {
						lt.errs = append(lt.errs, err.Error())
					}
					mu.Unlock()
				}
				mu.Lock()
				counts[b]++
				mu.Unlock()
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return counts
}

// echoConn is a long-lived connection to the VIP's echo service.
type echoConn struct {
	c       net.Conn
	r       *bufio.Reader
	backend string
}

func (lt *lbTopo) openEcho(timeout time.Duration) (*echoConn, error) {
	c, err := lt.dial(lbVIP+":7", timeout)
	if err != nil {
		return nil, err
	}
	e := &echoConn{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	name, err := e.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	e.backend = strings.TrimSpace(name)
	return e, nil
}

func (e *echoConn) ping(msg string) error {
	e.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(e.c, "%s\n", msg); err != nil {
		return err
	}
	got, err := e.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

const lbConfig = `
[conntrack]
capacity = 512
tcp_closing_timeout = "50ms"
touch_granularity = "10ms"
when_full = "reject"

[[service]]
vip = "10.88.0.100:80"
proto = "tcp"
  [service.health_check]
  kind = "tcp"
  interval = "200ms"
  timeout = "150ms"
  rise = 2
  fall = 2
%s
[[service]]
vip = "10.88.0.100:7"
proto = "tcp"
  [service.health_check]
  kind = "none"
%s
[[service]]
vip = "[fd00:88::100]:80"
proto = "tcp"
  [service.health_check]
  kind = "tcp"
  interval = "500ms"
  timeout = "200ms"
  [[service.backend]]
  addr = "fd00:88:1::11"
  [[service.backend]]
  addr = "fd00:88:1::12"
  [[service.backend]]
  addr = "fd00:88:1::13"
`

func lbBackends(weights ...int) string {
	var b strings.Builder
	for i, w := range weights {
		if w >= 0 {
			fmt.Fprintf(&b, "  [[service.backend]]\n  addr = \"10.88.1.%d\"\n  weight = %d\n", 11+i, w)
		}
	}
	return b.String()
}

func writeConfig(t *testing.T, path, httpB, echoB string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(fmt.Sprintf(lbConfig, httpB, echoB)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func within10(t *testing.T, counts map[string]int, weights map[string]int) {
	t.Helper()
	total, wsum := 0, 0
	for _, w := range weights {
		wsum += w
	}
	for _, n := range counts {
		total += n
	}
	for b, w := range weights {
		want := float64(total) * float64(w) / float64(wsum)
		if got := float64(counts[b]); got < want*0.9 || got > want*1.1 {
			t.Errorf("backend %s: %d of %d requests, want %.0f ±10%% (counts %v)", b, counts[b], total, want, counts)
		}
	}
}

// lbProc is a running tyfwd lb.
type lbProc struct {
	cmd *exec.Cmd
	out bytes.Buffer
	mu  sync.Mutex
}

func (p *lbProc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// startLB starts tyfwd lb in the balancer's namespace with the common
// flags and args, and waits until the IPv4 VIP answers.
func (lt *lbTopo) startLB(t *testing.T, ctx context.Context, args ...string) *lbProc {
	t.Helper()
	p := &lbProc{}
	full := append([]string{"netns", "exec", lt.lbn.Name, tyfwd, "lb", "-i", "l0", "-o", "l1",
		"--addr", "10.88.0.2/24", "--addr", "10.88.1.1/24", "--addr", "fd00:88::2/64", "--addr", "fd00:88:1::1/64"}, args...)
	p.cmd = exec.CommandContext(ctx, "ip", full...)
	p.cmd.Stdout = lockedWriter{&p.out, &p.mu}
	p.cmd.Stderr = lockedWriter{&p.out, &p.mu}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := lt.get(); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through the VIP:\n%s", p.output())
		}
	}
}

// stop ends the balancer with SIGTERM and returns its output.
func (p *lbProc) stop(t *testing.T) string {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("lb: %v\n%s", err, p.output())
	}
	return p.output()
}

// TestLB runs tyfwd lb between kernel clients and three kernel HTTP
// backends and checks what issue 5 asks of it.
func TestLB(t *testing.T) {
	lt := newLBTopo(t, 1)
	dir := t.TempDir()
	conf := filepath.Join(dir, "lb.toml")
	writeConfig(t, conf, lbBackends(1, 1, 2), lbBackends(1, 1, 1))
	sock := filepath.Join(dir, "admin.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lb := lt.startLB(t, ctx, "--config", conf, "--queues", "1", "--admin", "unix:"+sock, "--reload-poll", "0", "--quiet")
	output := lb.output
	hup := func() {
		if err := lb.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}

	t.Run("spread", func(t *testing.T) {
		counts := lt.spread(t, 4000)
		t.Logf("4000 connections: %v %q", counts, lt.errs)
		within10(t, counts, map[string]int{"b1": 1, "b2": 1, "b3": 2})
	})

	var echoes []*echoConn
	for range 30 {
		e, err := lt.openEcho(2 * time.Second)
		if err != nil {
			t.Fatalf("echo connection: %v", err)
		}
		defer e.c.Close()
		echoes = append(echoes, e)
	}
	pingAll := func(when string) {
		t.Helper()
		for i, e := range echoes {
			if err := e.ping(fmt.Sprintf("%s-%d", strings.ReplaceAll(when, " ", "-"), i)); err != nil {
				t.Fatalf("%s: connection %d (on %s) broke: %v", when, i, e.backend, err)
			}
		}
	}
	pingAll("before reloads")

	t.Run("ipv6", func(t *testing.T) {
		counts := map[string]int{}
		for range 300 {
			b, err := lt.getFrom("[fd00:88::100]")
			if err != nil {
				b = "error"
			}
			counts[b]++
		}
		t.Logf("300 connections over IPv6: %v", counts)
		if counts["error"] != 0 || counts["b1"] == 0 || counts["b2"] == 0 || counts["b3"] == 0 {
			t.Errorf("IPv6 service: %v", counts)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		_, body, err := scrape(func() (net.Conn, error) { return net.Dial("unix", sock) })
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`tygress_lb_backend_packets_total{backend="10.88.1.13:80",direction="in",service="10.88.0.100:80/tcp"}`,
			`tygress_lb_backend_up{backend="10.88.1.11:80",service="10.88.0.100:80/tcp"} 1`,
			`tygress_lb_backend_active_flows{backend="10.88.1.11:80",service="10.88.0.100:80/tcp"}`,
			"tygress_lb_active_flows", "tygress_rx_packets_total",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("same-config reload moves nothing", func(t *testing.T) {
		writeConfig(t, conf, lbBackends(1, 1, 2), lbBackends(1, 1, 1))
		hup()
		pingAll("after an identical reload")
		within10(t, lt.spread(t, 3000), map[string]int{"b1": 1, "b2": 1, "b3": 2})
	})

	t.Run("removing a backend moves only its flows", func(t *testing.T) {
		writeConfig(t, conf, lbBackends(1, 1, -1), lbBackends(1, 1, -1))
		hup()
		pingAll("after removing b3") // established connections, b3's included, keep their backend
		counts := lt.spread(t, 600)
		if counts["b3"] != 0 || counts["error"] != 0 {
			t.Errorf("after removing b3: %v", counts)
		}
		writeConfig(t, conf, lbBackends(1, 1, 2), lbBackends(1, 1, 1))
		hup()
	})

	t.Run("invalid configuration is rejected, the old one keeps running", func(t *testing.T) {
		os.WriteFile(conf, []byte("[[service]]\nvip = \"nonsense\"\n"), 0o644)
		hup()
		if !strings.Contains(output(), "configuration rejected") {
			t.Errorf("no rejection logged:\n%s", output())
		}
		if _, err := lt.get(); err != nil {
			t.Errorf("after a rejected reload: %v", err)
		}
		writeConfig(t, conf, lbBackends(1, 1, 2), lbBackends(1, 1, 1))
		hup()
	})

	t.Run("failing health check takes a backend out", func(t *testing.T) {
		lt.httpMu.Lock()
		lt.httpLn[1].Close() // b2's HTTP port now answers SYNs with RST
		lt.httpMu.Unlock()
		start := time.Now()
		// interval 200ms x fall 2 + timeout: out within about half a
		// second; allow scheduling slack.
		for {
			counts := lt.spread(t, 40)
			if counts["error"] == 0 && counts["b2"] == 0 {
				break
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("b2 still chosen %v after it went down: %v", time.Since(start), counts)
			}
		}
		t.Logf("b2 out after %v", time.Since(start).Round(10*time.Millisecond))
		pingAll("after the health change")
	})

	t.Run("unknown VIP port and malformed frames are counted", func(t *testing.T) {
		if c, err := lt.dial(lbVIP+":81", 300*time.Millisecond); err == nil {
			c.Close()
			t.Error("connected to a port no service has")
		}
		lt.sendMalformed(t)
		pingAll("after junk")
	})

	t.Run("full connection table", func(t *testing.T) {
		var more []*echoConn
		refused := 0
		for range 700 {
			e, err := lt.openEcho(200 * time.Millisecond)
			if err != nil {
				if refused++; refused == 10 {
					break
				}
				continue
			}
			more = append(more, e)
		}
		for _, e := range more {
			e.c.Close()
		}
		if refused == 0 {
			t.Errorf("700 more connections on a 512-entry table: none refused")
		}
		pingAll("with a full table")
	})

	o := lb.stop(t)
	t.Logf("lb output:\n%s", o)
	for _, want := range []string{"summary: ", "drop_unknown_vip=", "drop_table_full=", "drop_malformed=", "lb: inbound="} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// sendMalformed sends, from the client namespace, IPv4 frames to the VIP
// whose TCP header is cut short: the steering program claims them (they
// are for the VIP), the balancer must count and drop them.
func (lt *lbTopo) sendMalformed(t *testing.T) {
	t.Helper()
	err := lt.cli.Do(func() error {
		ifc, err := net.InterfaceByName("c0")
		if err != nil {
			return err
		}
		neigh, _ := exec.Command("ip", "neigh", "show", lbVIP).Output()
		f := strings.Fields(string(neigh))
		var dst net.HardwareAddr
		for i := range f {
			if f[i] == "lladdr" && i+1 < len(f) {
				dst, _ = net.ParseMAC(f[i+1])
			}
		}
		if dst == nil {
			return fmt.Errorf("no neighbor entry for the VIP: %q", neigh)
		}
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		var d, s [6]byte
		copy(d[:], dst)
		copy(s[:], ifc.HardwareAddr)
		b := proto.AppendEthernet(nil, d, s, proto.EtherTypeIPv4)
		b = proto.AppendIPv4(b, &proto.IPv4Fields{TotalLength: 20 + 20, TTL: 64, Protocol: proto.IPProtoTCP,
			Src: [4]byte{10, 88, 0, 1}, Dst: [4]byte{10, 88, 0, 100}})
		tcp := make([]byte, 20)
		tcp[1], tcp[3] = 80, 80
		tcp[12] = 3 << 4 // a data offset below 5 words
		b = append(b, tcp...)
		sa := &syscall.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
		copy(sa.Addr[:], dst)
		for range 10 {
			if err := syscall.Sendto(fd, b, 0, sa); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestLBTwoQueues: with two queues (two workers), connections still work:
// a NAT reply that arrives on the other worker's queue is handed to the
// worker that owns the client endpoint, and neighbor replies reach both.
func TestLBTwoQueues(t *testing.T) {
	lt := newLBTopo(t, 2)
	dir := t.TempDir()
	conf := filepath.Join(dir, "lb.toml")
	writeConfig(t, conf, lbBackends(1, 1, 2), lbBackends(1, 1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lb := lt.startLB(t, ctx, "--config", conf, "--queues", "2", "--quiet")
	counts := lt.spread(t, 1500)
	t.Logf("1500 connections over two workers: %v %q", counts, lt.errs)
	if counts["error"] != 0 {
		t.Errorf("%d requests failed", counts["error"])
	}
	// The spread itself is TestLB's; here every backend must serve.
	for _, b := range []string{"b1", "b2", "b3"} {
		if counts[b] < 150 {
			t.Errorf("backend %s served %d of 1500", b, counts[b])
		}
	}
	v6 := 0
	for range 100 {
		if _, err := lt.getFrom("[fd00:88::100]"); err == nil {
			v6++
		}
	}
	if v6 != 100 {
		t.Errorf("IPv6 service: %d of 100 requests answered", v6)
	}
	o := lb.stop(t)
	if strings.Contains(o, "up=false") {
		t.Errorf("a backend failed its health check:\n%s", o)
	}
	t.Logf("lb output:\n%s", o)
}
