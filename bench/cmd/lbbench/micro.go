package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// microResult is one line of the lb package's micro-benchmarks.
type microResult struct {
	Name     string  `json:"name"`
	NsOp     float64 `json:"ns_per_op"`
	AllocsOp float64 `json:"allocs_per_op"`
	BytesOp  float64 `json:"bytes_per_op"`
}

// runMicro runs `go test -run '^$' -bench 'Maglev|ConnTable|Process'
// -benchmem ./lb` in the repository root, the test binary pinned to cpu.
func runMicro(ctx context.Context, benchDir string, cpu int, benchtime string) ([]microResult, error) {
	root := filepath.Join(benchDir, "..")
	tmp, err := os.MkdirTemp("", "tygress-lbmicro-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "lb.test")
	fmt.Fprintln(os.Stderr, "micro-benchmarks: go test -c ./lb; lb.test -test.run '^$' -test.bench 'Maglev|ConnTable|Process' -test.benchmem (CPU", cpu, ")")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./lb")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go test -c ./lb: %w\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, "taskset", "-c", strconv.Itoa(cpu), bin, "-test.run", "^$",
		"-test.bench", "Maglev|ConnTable|Process", "-test.benchmem", "-test.benchtime", benchtime, "-test.count", "1")
	cmd.Dir = filepath.Join(root, "lb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("lb.test: %w\n%s", err, out)
	}
	return parseBench(string(out)), nil
}

// parseBench reads "BenchmarkX-N  iters  v ns/op  v B/op  v allocs/op" lines.
func parseBench(out string) []microResult {
	var rs []microResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(fs[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		r := microResult{Name: name, AllocsOp: -1, BytesOp: -1}
		for i := 2; i+1 < len(fs); i += 2 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				continue
			}
			switch fs[i+1] {
			case "ns/op":
				r.NsOp = v
			case "allocs/op":
				r.AllocsOp = v
			case "B/op":
				r.BytesOp = v
			}
		}
		rs = append(rs, r)
	}
	return rs
}

func microNs(ms []microResult, name string) (float64, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m.NsOp, true
		}
	}
	return 0, false
}
