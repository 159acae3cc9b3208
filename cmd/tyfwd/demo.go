package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tygress/tygress/internal/topo"
)

// cmdDemo builds gen -- fwd -- sink: three namespaces joined by two veth
// pairs, runs txgen in gen, l2fwd in fwd and rxdrop in sink (each its own
// tyfwd process, as an operator would), prints what happened and removes
// everything.
func cmdDemo(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dur := fs.Duration("duration", 5*time.Second, "how long txgen sends")
	rate := fs.Float64("rate", 200000, "txgen packets per second (0: as fast as possible)")
	size := fs.Int("size", 60, "frame size without FCS")
	flows := fs.Int("flows", 16, "UDP flows")
	faults := fs.String("fault", "", "faults l2fwd injects (see tyfwd l2fwd -h), e.g. loss=0.1")
	var o ops // ops.go: --admin and --capture go to the forwarder, logs to every process
	o.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := o.validateDemo(); err != nil {
		return err
	}
	if *dur <= 0 || *rate < 0 {
		return usageError{"--duration must be positive and --rate not negative"}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("demo creates namespaces: needs root")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var tp topo.Topology
	defer func() {
		if err := tp.Close(); err != nil {
			fmt.Fprintf(out, "demo: cleanup: %v\n", err)
		} else {
			fmt.Fprintln(out, "demo: namespaces and links removed")
		}
	}()
	gen, err := tp.AddNamespace("tyd-gen-")
	if err != nil {
		return err
	}
	fwd, err := tp.AddNamespace("tyd-fwd-")
	if err != nil {
		return err
	}
	sink, err := tp.AddNamespace("tyd-sink-")
	if err != nil {
		return err
	}
	g0 := topo.Port{NS: gen, Name: "g0", Addrs: []string{"10.99.0.1/24"}}
	fin := topo.Port{NS: fwd, Name: "fin"}
	fout := topo.Port{NS: fwd, Name: "fout"}
	s0 := topo.Port{NS: sink, Name: "s0", Addrs: []string{"10.99.1.1/24"}}
	if err := topo.NewVeth(&g0, &fin, topo.VethOptions{}); err != nil {
		return err
	}
	if err := topo.NewVeth(&fout, &s0, topo.VethOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: topology %s[g0 %s] -- [fin]%s[fout] -- [s0 %s]%s\n", gen.Name, g0.MAC, fwd.Name, s0.MAC, sink.Name)

	secs := func(d time.Duration) string { return d.String() }
	procs := []*demoProc{
		{name: "sink", ns: sink, args: []string{"rxdrop", "-i", "s0", "--duration", secs(*dur + 3*time.Second)}},
		{name: "fwd", ns: fwd, args: []string{"l2fwd", "-i", "fin", "-o", "fout", "--dst-mac", s0.MAC.String(), "--duration", secs(*dur + 2*time.Second), "--fault", *faults}},
		{name: "gen", ns: gen, args: []string{"txgen", "-i", "g0", "--dst-mac", fin.MAC.String(), "--src", "10.99.0.1", "--dst", "10.99.1.1",
			"--rate", strconv.FormatFloat(*rate, 'f', 0, 64), "--size", strconv.Itoa(*size), "--flows", strconv.Itoa(*flows), "--duration", secs(*dur)}},
	}
	for _, p := range procs {
		p.args = append(p.args, o.childArgs(p.name)...)
	}
	var wg sync.WaitGroup
	var outMu sync.Mutex
	for _, p := range procs {
		if err := p.start(ctx, self, out, &outMu, &wg); err != nil {
			return err
		}
		select {
		case <-p.ready:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s did not start", p.name)
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
	}
	wg.Wait()
	var failed []string
	for _, p := range procs {
		if p.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", p.name, p.err))
		}
	}
	sent := procs[2].summary["tx_pkts"]
	fwdd := procs[1].summary["tx_pkts"]
	recv := procs[0].summary["rx_pkts"]
	fmt.Fprintf(out, "demo: txgen sent %d, l2fwd forwarded %d, rxdrop received %d", sent, fwdd, recv)
	if sent > 0 {
		fmt.Fprintf(out, " (%.2f%% delivered end to end)", 100*float64(recv)/float64(sent))
	}
	fmt.Fprintln(out)
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	if sent == 0 || recv == 0 {
		return fmt.Errorf("no traffic went through")
	}
	return nil
}

type demoProc struct {
	name    string
	ns      *topo.Namespace
	args    []string
	ready   chan struct{}
	summary map[string]uint64
	err     error
}

func (p *demoProc) start(ctx context.Context, self string, out io.Writer, mu *sync.Mutex, wg *sync.WaitGroup) error {
	p.ready = make(chan struct{})
	p.summary = map[string]uint64{}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.ns.Name, self}, p.args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.err = cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer wg.Done()
		once := sync.Once{}
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			once.Do(func() { close(p.ready) })
			if rest, ok := strings.CutPrefix(line, "summary: "); ok {
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					if n, err := strconv.ParseUint(v, 10, 64); err == nil {
						p.summary[k] = n
					}
				}
			}
			mu.Lock()
			fmt.Fprintf(out, "[%-4s] %s\n", p.name, line)
			mu.Unlock()
		}
		once.Do(func() { close(p.ready) })
	}()
	return nil
}
