package harness

// tyfwd's admin endpoint (--admin unix:PATH): the Go runtime's heap
// allocation counter for the measured interval, and CPU profiles.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Admin is a client of tyfwd's admin endpoint on a unix socket.
type Admin struct {
	c *http.Client
}

// NewAdmin returns a client of the admin endpoint at unix socket sock.
func NewAdmin(sock string) *Admin {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &Admin{c: &http.Client{Transport: tr}}
}

// mallocs scrapes go_memstats_mallocs_total from /metrics.
func (a *Admin) Mallocs() (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://tyfwd/metrics", nil)
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no go_memstats_mallocs_total in /metrics (%v)", sc.Err())
}

// profile writes a CPU profile of d to path.
func (a *Admin) Profile(d time.Duration, path string) error {
	secs := max(int(d/time.Second), 1)
	resp, err := a.c.Get(fmt.Sprintf("http://tyfwd/debug/pprof/profile?seconds=%d", secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
