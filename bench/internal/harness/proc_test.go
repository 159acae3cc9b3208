package harness

import (
	"fmt"
	"testing"
)

// TestProcResultSeesLastLine: a process that prints its summary as its
// last act and exits at once must have that line parsed. result() once
// raced the goroutine that scans the output (it only waited for the
// process), and a benchmark run then failed with "no summary line" and no
// output at all.
func TestProcResultSeesLastLine(t *testing.T) {
	for i := range 300 {
		p, err := startProc("sh", []string{"sh", "-c", fmt.Sprintf("echo line; echo 'summary: n=%d'", i)})
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := p.result()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if got := s.Uint("n"); got != uint64(i) {
			t.Fatalf("run %d: summary n=%d", i, got)
		}
		if out := p.output(); out != fmt.Sprintf("line\nsummary: n=%d", i) {
			t.Fatalf("run %d: output %q", i, out)
		}
	}
}
