package harness

// The pieces of the harness other benchmark commands (cmd/udpecho) reuse:
// starting pinned programs in a namespace, sampling their CPU time and the
// cores' busy time, building tyfwd, the machine description.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tygress/tygress/internal/topo"
)

// Proc is a program started by StartProc: in a namespace, pinned with
// taskset, in its own process group, killed should the caller die.
type Proc struct{ p *proc }

// StartProc runs `[ip netns exec NS] [taskset -c CPUS] bin args...`.
func StartProc(name string, ns *topo.Namespace, cpus, bin string, args ...string) (*Proc, error) {
	p, err := startProc(name, command(ns, cpus, bin, args...))
	if err != nil {
		return nil, err
	}
	return &Proc{p}, nil
}

// Pid is the process id (ip netns exec and taskset exec in place, so it is
// the program's own).
func (p *Proc) Pid() int { return p.p.cmd.Process.Pid }

// CPU is the process's CPU time so far (user+sys, all threads) in seconds,
// from /proc/PID/stat.
func (p *Proc) CPU() (float64, bool) { return procCPU(p.Pid()) }

// Lines delivers the program's output lines (stdout and stderr); lines
// nobody reads in time are dropped from it (not from Output).
func (p *Proc) Lines() <-chan string { return p.p.lines }

// Done is closed when the program has exited.
func (p *Proc) Done() <-chan struct{} { return p.p.done }

// Exited reports whether the program has exited.
func (p *Proc) Exited() bool { return p.p.exited() }

// Stop sends SIGINT and waits; after grace it kills.
func (p *Proc) Stop(grace time.Duration) { p.p.stop(grace) }

// Wait waits for the program to exit by itself, or stops it when ctx ends.
func (p *Proc) Wait(ctx context.Context) { p.p.wait(ctx) }

// Output is the last lines the program printed.
func (p *Proc) Output() string { return p.p.output() }

// Result is the program's parsed summary line and its whole-life CPU time
// from rusage. It waits for the exit.
func (p *Proc) Result() (Summary, time.Duration, error) { return p.p.result() }

// CoresBusy is the busy time (everything but idle and iowait, softirq
// included) of the listed CPUs so far, in seconds, from /proc/stat.
func CoresBusy(cpus []int) float64 { return readCPUStat().busy(cpus) }

// CPUModel is the model name from /proc/cpuinfo.
func CPUModel() string { return cpuModel() }

// KernelRelease is the running kernel's release.
func KernelRelease() string { return kernelRelease() }

// WaitXDP waits until an XDP program is attached to ifc in ns, or p exits,
// or 15 s pass.
func WaitXDP(ctx context.Context, ns *topo.Namespace, ifc string, p *Proc) error {
	return (&Bench{}).waitXDP(ctx, ns, ifc, p.p)
}

// BuildTyfwd builds ../cmd/tyfwd (relative to the bench module benchDir)
// into out.
func BuildTyfwd(ctx context.Context, benchDir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/tyfwd")
	cmd.Dir = filepath.Join(benchDir, "..")
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/tyfwd: %w: %s", err, firstLine(string(o)))
	}
	return nil
}

// BuildBench builds packages of the bench module (e.g. ./cmd/peers/udpecho)
// into the directory dir.
func BuildBench(ctx context.Context, benchDir, dir string, pkgs ...string) error {
	if len(pkgs) == 0 {
		return errors.New("no packages")
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = benchDir
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", pkgs, err, o)
	}
	return nil
}

// BenchDir finds the bench module: the working directory or a parent of
// it, or ./bench below one of them.
func BenchDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	isBench := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		return err == nil && strings.Contains(string(b), "module github.com/tygress/tygress/bench\n")
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isBench(d) {
			return d, nil
		}
		if isBench(filepath.Join(d, "bench")) {
			return filepath.Join(d, "bench"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("run from the bench module (cd bench)")
		}
	}
}

// PidCPU is any process's CPU time so far (user+sys, all threads) in
// seconds, from /proc/PID/stat.
func PidCPU(pid int) (float64, bool) { return procCPU(pid) }
