package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/pipeline"
)

// reporter prints a statistics line per interval in the style of
// xdp-bench and a final summary line of key=value pairs.
type reporter struct {
	out      io.Writer
	interval time.Duration
	quiet    bool
	snap     func() dataplane.Snapshot

	start      dataplane.Snapshot
	startCPU   time.Duration
	startUser  time.Duration
	startAlloc uint64
	done       chan struct{}
	wg         sync.WaitGroup
	once       sync.Once
}

func newReporter(out io.Writer, interval time.Duration, quiet bool, snap func() dataplane.Snapshot) *reporter {
	r := &reporter{out: out, interval: interval, quiet: quiet, snap: snap, done: make(chan struct{})}
	r.start = snap()
	r.startCPU = cpuTime()
	r.startUser, _ = cpuSplit()
	r.startAlloc = allocs()
	return r
}

func cpuTime() time.Duration {
	u, s := cpuSplit()
	return u + s
}

// cpuSplit returns the process's user and system CPU time.
func cpuSplit() (user, sys time.Duration) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}

func allocs() uint64 {
	metrics.Read(allocSample)
	if allocSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return allocSample[0].Value.Uint64()
}

func (r *reporter) loop(ctx context.Context) {
	r.wg.Add(1)
	defer r.wg.Done()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	prev := r.start
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-t.C:
			cur := r.snap()
			if !r.quiet {
				fmt.Fprintln(r.out, rateLine(prev, cur))
			}
			prev = cur
		}
	}
}

func (r *reporter) stop() {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
}

func perSec(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// group formats n with thousands separators.
func group(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func rateLine(a, b dataplane.Snapshot) string {
	d := b.Time.Sub(a.Time)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-10s rx %12s/s  tx %12s/s  drop %12s/s", b.Time.Format("15:04:05"),
		group(perSec(b.RxFrames-a.RxFrames, d)), group(perSec(b.TxFrames-a.TxFrames, d)), group(perSec(b.DropsTotal-a.DropsTotal, d)))
	var reasons []string
	for r := range b.Drops {
		if n := b.Drops[r] - a.Drops[r]; n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %s", pipeline.Reason(r), group(perSec(n, d))))
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&sb, " (%s)", strings.Join(reasons, ", "))
	}
	pk := max(b.RxFrames-a.RxFrames, b.TxFrames-a.TxFrames)
	wake := 0.0
	if pk > 0 {
		wake = float64(b.Polls-a.Polls+b.TxKicks-a.TxKicks) / float64(pk)
	}
	fmt.Fprintf(&sb, "  fill-empty %s/s  rx-full %s/s  wakeups/pkt %.4f",
		group(perSec(b.FillRingEmpty-a.FillRingEmpty, d)), group(perSec(b.RxRingFull-a.RxRingFull, d)), wake)
	if n := b.RxInvalid - a.RxInvalid + b.TxInvalid - a.TxInvalid; n > 0 {
		fmt.Fprintf(&sb, "  invalid-desc %d", n)
	}
	return sb.String()
}

// summary prints the final line: totals since the start, CPU time per
// packet of this process and allocations per packet.
func (r *reporter) summary() {
	end := r.snap()
	a := r.start
	secs := end.Time.Sub(a.Time).Seconds()
	cpu := cpuTime() - r.startCPU
	user, _ := cpuSplit()
	user -= r.startUser
	al := allocs() - r.startAlloc
	rx, tx := end.RxFrames-a.RxFrames, end.TxFrames-a.TxFrames
	pk := max(rx, tx)
	cpuPer, allocPer := 0.0, 0.0
	if pk > 0 {
		cpuPer = float64(cpu.Nanoseconds()) / float64(pk)
		allocPer = float64(al) / float64(pk)
	}
	wakeups := end.Polls - a.Polls + end.TxKicks - a.TxKicks
	var sb strings.Builder
	fmt.Fprintf(&sb, "summary: rx_pkts=%d tx_pkts=%d drops=%d", rx, tx, end.DropsTotal-a.DropsTotal)
	for rs := range end.Drops {
		if n := end.Drops[rs] - a.Drops[rs]; n > 0 {
			fmt.Fprintf(&sb, " drop_%s=%d", strings.ReplaceAll(pipeline.Reason(rs).String(), "-", "_"), n)
		}
	}
	fmt.Fprintf(&sb, " fill_ring_empty=%d rx_ring_full=%d rx_dropped=%d invalid_descs=%d wakeups=%d seconds=%.3f rx_pps=%.0f tx_pps=%.0f cpu_seconds=%.3f cpu_user_seconds=%.3f cpu_ns_per_pkt=%.1f allocs=%d allocs_per_pkt=%.6f",
		end.FillRingEmpty-a.FillRingEmpty, end.RxRingFull-a.RxRingFull, end.RxDropped-a.RxDropped,
		end.RxInvalid-a.RxInvalid+end.TxInvalid-a.TxInvalid, wakeups, secs,
		float64(rx)/max(secs, 1e-9), float64(tx)/max(secs, 1e-9), cpu.Seconds(), user.Seconds(), cpuPer, al, allocPer)
	if pk > 0 {
		fmt.Fprintf(&sb, " wakeups_per_pkt=%.5f", float64(wakeups)/float64(pk))
	}
	fmt.Fprintf(&sb, " rx_batches=%d rx_empty_reads=%d coalesced_sleeps=%d", end.Batches-a.Batches, end.EmptyRx-a.EmptyRx, end.Coalesced-a.Coalesced)
	fmt.Fprintln(r.out, sb.String())
}

func portMACs(in, out string) (srcOut, srcIn [6]byte, err error) {
	for _, x := range []struct {
		name string
		mac  *[6]byte
	}{{out, &srcOut}, {in, &srcIn}} {
		ifc, e := net.InterfaceByName(x.name)
		if e != nil {
			return srcOut, srcIn, fmt.Errorf("interface %s: %w", x.name, e)
		}
		copy(x.mac[:], ifc.HardwareAddr)
	}
	return srcOut, srcIn, nil
}
