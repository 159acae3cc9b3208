package harness

import (
	"bufio"
	"context"
	"errors"
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

// proc is one program of a run (generator, device under test, sink),
// started in a namespace and pinned with taskset, in its own process
// group so that a Ctrl-C reaches the harness first and the harness stops
// its children in order.
type proc struct {
	name    string
	cmd     *exec.Cmd
	lines   chan string // every output line, for readiness and logs
	mu      sync.Mutex
	tail    []string // last output lines, for error messages
	summary string
	done    chan struct{}
	waitErr error
	wall    time.Duration
	started time.Time
}

// command builds the argv: [ip netns exec NS] [taskset -c CPUS] bin args.
func command(ns *topo.Namespace, cpus, bin string, args ...string) []string {
	var argv []string
	if ns != nil {
		argv = append(argv, "ip", "netns", "exec", ns.Name)
	}
	if cpus != "" {
		argv = append(argv, "taskset", "-c", cpus)
	}
	return append(append(argv, bin), args...)
}

func startProc(name string, argv []string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 256), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.started = time.Now()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			if strings.HasPrefix(l, "summary:") {
				p.summary = l
			}
			p.tail = append(p.tail, l)
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
			select {
			case p.lines <- l:
			default:
			}
		}
		// A line too long for the scanner ends the loop early: keep
		// draining, or the process blocks writing and Wait never returns.
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		p.wall = time.Since(p.started)
		pw.Close()
		// Wait returns once the last output was written into the pipe,
		// not once it was scanned: done means both, so that result()
		// sees the summary line.
		<-scanned
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGINT and waits; after grace it kills.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits for the process to exit by itself, or until ctx ends (then
// it is stopped).
func (p *proc) wait(ctx context.Context) {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(5 * time.Second)
	}
}

// output returns the last lines the process printed.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// result returns the parsed summary line and the CPU time (user+sys) from
// the rusage wait4 returned. The process must have exited.
func (p *proc) result() (Summary, time.Duration, error) {
	<-p.done
	p.mu.Lock()
	line := p.summary
	p.mu.Unlock()
	var cpu time.Duration
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if line == "" {
		err := p.waitErr
		if err == nil {
			err = errors.New("no summary line")
		}
		return nil, cpu, fmt.Errorf("%s: %w; output:\n%s", p.name, err, indent(p.output()))
	}
	s, err := ParseSummary(line)
	if err != nil {
		return nil, cpu, fmt.Errorf("%s: %w", p.name, err)
	}
	if p.waitErr != nil {
		// A summary was printed but the exit was not clean: report it,
		// keep the numbers.
		s["exit"] = p.waitErr.Error()
	}
	return s, cpu, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// Summary is the key=value pairs of a `summary:` line.
type Summary map[string]string

// ParseSummary parses "summary: k=v k=v ...".
func ParseSummary(line string) (Summary, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "summary:")
	if !ok {
		return nil, fmt.Errorf("not a summary line: %q", line)
	}
	s := Summary{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad field %q in summary line", f)
		}
		s[k] = v
	}
	return s, nil
}

// Uint returns key as an integer (0 when absent or malformed).
func (s Summary) Uint(key string) uint64 {
	v, _ := strconv.ParseUint(s[key], 10, 64)
	return v
}

// Float returns key as a float (0 when absent or malformed).
func (s Summary) Float(key string) float64 {
	v, _ := strconv.ParseFloat(s[key], 64)
	return v
}

// Has reports whether key is present.
func (s Summary) Has(key string) bool {
	_, ok := s[key]
	return ok
}
