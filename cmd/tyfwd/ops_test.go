package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/internal/admin"
	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
)

func TestOpsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rxdrop", "-i", "lo", "--log-format", "xml"}, "--log-format"},
		{[]string{"rxdrop", "-i", "lo", "--log-level", "loud"}, "--log-level"},
		{[]string{"rxdrop", "-i", "lo", "--capture", "rx"}, "STAGE=FILE"},
		{[]string{"rxdrop", "-i", "lo", "--capture-duration", "-1s"}, "--capture-duration"},
		{[]string{"rxdrop", "-i", "lo", "--admin", "127.0.0.1:99999"}, "--admin"},
		{[]string{"rxdrop", "-i", "lo", "--admin", "localhost"}, "--admin"},
		{[]string{"demo", "--log-format", "xml"}, "--log-format"},
		{[]string{"demo", "--admin", "unix:"}, "--admin"},
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
			msg := stderr.String()
			if !strings.Contains(msg, tc.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Fatalf("stderr %q: want one line saying %q", msg, tc.want)
			}
		})
	}
}

// scrape GETs /metrics over conn-dialing function dial.
func scrape(dial func() (net.Conn, error)) (admin.Samples, string, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return dial() }}}
	resp, err := hc.Get("http://admin/metrics")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 200 {
		return nil, string(body), fmt.Errorf("status %s", resp.Status)
	}
	ss, err := admin.ParseText(bytes.NewReader(body))
	return ss, string(body), err
}

func countPackets(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var next func() error
	if strings.HasSuffix(path, ".pcapng") {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		next = func() error { _, _, err := r.ReadPacketData(); return err }
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		next = func() error { _, _, err := r.ReadPacketData(); return err }
	}
	n := 0
	for {
		err := next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("%s after %d packets: %v", path, n, err)
		}
		n++
	}
}

// toolLines runs tcpdump or tshark -r on the file and returns its lines.
func toolLines(t *testing.T, tool string, args ...string) []string {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		t.Logf("%s not installed: not checked", tool)
		return nil
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(stdout.String()), "\n")
}

// TestDemoOperations runs the demo with the admin endpoint on a Unix
// socket (the forwarder runs in its own network namespace; a socket path
// is reachable from here), JSON logs and two captures in the forwarder:
// rx limited to 100 frames, and the l2fwd stage in pcapng with verdicts.
// It scrapes /metrics while traffic flows.
func TestDemoOperations(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	rxPcap := filepath.Join(dir, "rx.pcap")
	stPcap := filepath.Join(dir, "l2fwd.pcapng")
	cmd := exec.Command(tyfwd, "demo", "--duration", "3s", "--rate", "20000", "--admin", "unix:"+sock,
		"--capture", "rx="+rxPcap, "--capture", "l2fwd="+stPcap, "--capture-count", "100", "--log-format", "json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	dial := func() (net.Conn, error) { return net.Dial("unix", sock) }
	var ss admin.Samples
	var body string
	var serr error
	ok := false
	deadline := time.After(15 * time.Second)
wait:
	for !ok {
		select {
		case err := <-done:
			t.Fatalf("demo ended (%v) before /metrics showed traffic: %v\n%s\n%s", err, serr, body, out.String())
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("no traffic on /metrics: %v\n%s\n%s", serr, body, out.String())
		case <-time.After(200 * time.Millisecond):
			ss, body, serr = scrape(dial)
			if serr != nil {
				continue
			}
			rx, _ := ss.Sum("tygress_rx_packets_total", "port", "fin")
			tx, _ := ss.Sum("tygress_tx_packets_total", "port", "fout")
			if rx > 1000 && tx > 1000 {
				ok = true
				break wait
			}
		}
	}
	for _, name := range []string{"tygress_stage_packets_total", "tygress_xdp_redirected_packets_total", "tygress_capture_packets_total", "go_goroutines"} {
		if v, n := ss.Sum(name); n == 0 || v == 0 {
			t.Errorf("%s: %d series, sum %v\n%s", name, n, v, body)
		}
	}
	if v, _ := ss.Sum("tygress_stage_verdicts_total", "stage", "l2fwd", "verdict", "redirect"); v == 0 {
		t.Errorf("no l2fwd redirect verdicts\n%s", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if n := countPackets(t, rxPcap); n != 100 {
		t.Fatalf("rx.pcap: %d packets, want 100\n%s", n, out.String())
	}
	if n := countPackets(t, stPcap); n != 100 {
		t.Fatalf("l2fwd.pcapng: %d packets, want 100", n)
	}
	// The capture may also hold the kernel's own IPv6 chatter on the
	// fresh veths (a DAD neighbor solicitation, say) that the forwarder
	// carries too; the generator's datagrams are nearly all of it.
	if l := toolLines(t, "tcpdump", "-n", "-r", rxPcap); l != nil {
		gen := 0
		for _, line := range l {
			if strings.Contains(line, "IP 10.99.0.1.") && strings.Contains(line, "UDP") {
				gen++
			}
		}
		if len(l) != 100 || gen < 90 {
			t.Fatalf("tcpdump -r rx.pcap: %d lines, %d from the generator:\n%s", len(l), gen, strings.Join(l, "\n"))
		}
	}
	if l := toolLines(t, "tshark", "-n", "-r", stPcap); l != nil && len(l) != 100 {
		t.Fatalf("tshark -r l2fwd.pcapng: %d lines", len(l))
	}
	if l := toolLines(t, "tshark", "-n", "-r", stPcap, "-T", "fields", "-e", "frame.comment"); l != nil &&
		(len(l) != 100 || !strings.Contains(l[0], "verdict=redirect out-port=1")) {
		t.Fatalf("tshark comments: %q", l[:min(len(l), 3)])
	}
	// The forwarder logged its runtime events as JSON.
	var events []string
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "[fwd ] {") {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "[fwd ] ")), &ev); err != nil {
			t.Fatalf("bad JSON log line %q: %v", line, err)
		}
		events = append(events, fmt.Sprint(ev["msg"]))
	}
	for _, want := range []string{"port open", "capture started", "admin endpoint listening", "capture finished", "stopped"} {
		if !strings.Contains(strings.Join(events, "|"), want) {
			t.Errorf("no %q event in the forwarder's log: %q\n%s", want, events, out.String())
		}
	}
}

// TestAdminTCP runs rxdrop with --admin 127.0.0.1:0 in a namespace, reads
// the address it picked from its log, sends frames from the veth peer and
// scrapes over TCP inside the namespace.
func TestAdminTCP(t *testing.T) {
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	defer tp.Close()
	ns, err := tp.AddNamespace("tyop")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Port{NS: ns, Name: "o0"}
	b := topo.Port{NS: ns, Name: "o1"}
	if err := topo.NewVeth(&a, &b, topo.VethOptions{}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, tyfwd, "rxdrop", "-i", "o0", "--quiet", "--admin", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg="admin endpoint listening" addr=(\S+)`)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(10 * time.Second):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("no admin address logged:\n%s", logs.String())
	}
	// 200 raw broadcast frames out of the peer.
	const n = 200
	err = ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ll := &unix.SockaddrLinklayer{Ifindex: b.Ifindex, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		frame := make([]byte, 60)
		copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x88, 0xb5})
		for i := 0; i < n; i++ {
			if err := unix.Sendto(fd, frame, 0, ll); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dial := func() (c net.Conn, err error) {
		err = ns.Do(func() error { c, err = net.Dial("tcp", addr); return err })
		return c, err
	}
	var rx, drops float64
	var body string
	for i := 0; i < 50; i++ {
		var ss admin.Samples
		ss, body, err = scrape(dial)
		if err == nil {
			rx, _ = ss.Sum("tygress_rx_packets_total", "port", "o0", "queue", "0")
			drops, _ = ss.Sum("tygress_drops_total", "queue", "0", "reason", "policy")
			if rx >= n && drops == rx {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || rx < n || drops != rx {
		t.Fatalf("scrape: %v; rx %v drops %v, want >= %d and equal\n%s", err, rx, drops, n, body)
	}
}
