package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tygress/tygress/bench/internal/frame"
)

// Row is the medians of one (scenario, implementation) over repetitions.
type Row struct {
	Scenario, Impl, Mode string
	Class                Class
	Len                  int
	Runs, Failed         int
	Mpps                 float64 // packets judged on / traffic window
	NsPerPkt             float64 // DUT CPU time in the traffic window per packet
	RusageNsPerPkt       float64 // DUT CPU time over its life (rusage) per packet
	Drops                float64
	GenNsPerPkt          float64 // generator CPU time per packet it sent
	CPUPct               float64 // DUT CPU time in the window / window
	CorePct              float64 // busy time of the DUT's cores / window
	GenPct               float64 // generator CPU time / its wall time
	LossPct              float64 // 1 - packets / generated
	FillEmpty            float64
	PktsPerWakeup        float64
	Allocs               float64
	Errs                 []string
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Aggregate folds repetitions into rows (medians of each column).
func Aggregate(res []Result) []Row {
	type key struct{ sc, im string }
	var order []key
	groups := map[key][]Result{}
	for _, r := range res {
		k := key{r.Scenario, r.Impl}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var rows []Row
	for _, k := range order {
		g := groups[k]
		row := Row{Scenario: k.sc, Impl: k.im, Mode: g[0].Mode, Len: g[0].Len}
		for _, im := range Impls {
			if im.Name == k.im {
				row.Class = im.Class
			}
		}
		var mpps, ns, rns, drops, gns, gpct, cpu, core, loss, fe, ppw, al []float64
		for _, r := range g {
			row.Runs++
			if r.Err != "" {
				row.Failed++
				row.Errs = append(row.Errs, r.Err)
				continue
			}
			p := float64(r.Pkts())
			mpps = append(mpps, r.Mpps())
			ns = append(ns, r.NsPerPkt())
			rns = append(rns, r.RusageNsPerPkt())
			drops = append(drops, float64(r.Drops))
			if r.GenWall > 0 {
				gpct = append(gpct, 100*r.GenCPU/r.GenWall)
			}
			if r.GenPkts > 0 {
				gns = append(gns, r.GenCPU*1e9/float64(r.GenPkts))
				loss = append(loss, max(0, 100*(1-p/float64(r.GenPkts))))
			}
			if r.Window > 0 && r.WinCPU >= 0 {
				cpu = append(cpu, 100*r.WinCPU/r.Window)
			}
			if r.Window > 0 {
				core = append(core, 100*r.CoreBusy/r.Window)
			}
			fe = append(fe, float64(r.FillEmpt))
			if r.Wakeups > 0 {
				ppw = append(ppw, float64(r.RxPkts)/float64(r.Wakeups))
			}
			al = append(al, float64(r.Allocs))
		}
		row.Mpps, row.NsPerPkt, row.GenNsPerPkt = median(mpps), median(ns), median(gns)
		row.RusageNsPerPkt, row.Drops, row.GenPct = median(rns), median(drops), median(gpct)
		row.CPUPct, row.CorePct, row.LossPct = median(cpu), median(core), median(loss)
		row.FillEmpty, row.PktsPerWakeup, row.Allocs = median(fe), median(ppw), median(al)
		rows = append(rows, row)
	}
	return rows
}

// reference picks the "ours" row a row is compared with: the named one,
// else tyfwd in the same mode, else tyfwd polling, else the xsk layer.
func reference(rows []Row, r Row, named string) *Row {
	find := func(name string) *Row {
		for i := range rows {
			if rows[i].Scenario == r.Scenario && rows[i].Impl == name && rows[i].Failed < rows[i].Runs {
				return &rows[i]
			}
		}
		return nil
	}
	if named != "" {
		if x := find(named); x != nil {
			return x
		}
	}
	mode := r.Mode
	if mode == "" {
		mode = "poll"
	}
	for _, n := range []string{"tyfwd-" + mode, "tyfwd-l2fwd-" + mode, "tyfwd-poll", "tyfwd-l2fwd-poll", "xsk-" + mode, "xsk-poll", "xsk-l2fwd-poll"} {
		if x := find(n); x != nil {
			return x
		}
	}
	return nil
}

func f(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

// Report prints the environment and one table per scenario.
func (b *Bench) Report(w io.Writer, res []Result) {
	rows := Aggregate(res)
	b.printEnv(w)
	var scenarios []string
	for _, r := range rows {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
	}
	for _, sc := range scenarios {
		var first Row
		for _, r := range rows {
			if r.Scenario == sc {
				first = r
				break
			}
		}
		fmt.Fprintf(w, "\n== %s: %d-byte frames to the kernel (%d on the wire with FCS)\n", sc, first.Len, first.Len+frame.FCSLen)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		hdr := "impl\tmode\tMpps\tGbps\t"
		if b.speed > 0 {
			hdr += "line%\t"
		}
		hdr += "loss%\tCPU%\tns/pkt\trusage-ns/pkt\tgen-ns/pkt\tfill-empty\tpkts/wakeup\tallocs\tours/peer-Mpps\tours/peer-ns\t"
		fmt.Fprintln(tw, hdr)
		var notes []string
		for _, r := range rows {
			if r.Scenario != sc {
				continue
			}
			mode := r.Mode
			if mode == "" {
				mode = "-"
			}
			line := r.Impl + "\t" + mode + "\t"
			if r.Failed == r.Runs {
				// Every cell, so that tabwriter keeps the columns aligned.
				fmt.Fprintln(tw, line+"FAILED\t"+strings.Repeat("-\t", strings.Count(hdr, "\t")-3))
				notes = append(notes, fmt.Sprintf("%s failed: %s", r.Impl, firstLine(r.Errs[0])))
				continue
			}
			pps := r.Mpps * 1e6
			line += f(r.Mpps, 3) + "\t" + f(pps*frame.L2Bits(r.Len)/1e9, 2) + "\t"
			if b.speed > 0 {
				line += f(100*pps*frame.WireBits(r.Len)/(float64(b.speed)*1e6), 1) + "\t"
			}
			ns, rns := f(r.NsPerPkt, 1), f(r.RusageNsPerPkt, 1)
			if r.Class == Kernel {
				ns, rns = "(softirq)", "-"
			}
			line += f(r.LossPct, 1) + "\t" + f(r.CPUPct, 0) + "\t" + ns + "\t" + rns + "\t" + f(r.GenNsPerPkt, 1) + "\t" +
				f(r.FillEmpty, 0) + "\t" + f(r.PktsPerWakeup, 1) + "\t" + f(r.Allocs, 0) + "\t"
			ref := reference(rows, r, b.cfg.Ours)
			switch {
			case ref == nil:
				line += "-\t-\t"
			case ref.Impl == r.Impl:
				line += "ref\tref\t"
			default:
				nsr := "-"
				if r.Class != Kernel && ref.Class != Kernel {
					nsr = f(ref.NsPerPkt/r.NsPerPkt, 2)
				}
				line += f(ref.Mpps/r.Mpps, 2) + "\t" + nsr + "\t"
			}
			fmt.Fprintln(tw, line)
			if r.Failed > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d of %d runs failed: %s", r.Impl, r.Failed, r.Runs, firstLine(r.Errs[0])))
			}
			var noise []string
			if r.GenPct < 90 {
				noise = append(noise, fmt.Sprintf("the generator had %.0f%% of its core", r.GenPct))
			}
			if r.Class != Kernel && r.CorePct-r.CPUPct > 15 {
				noise = append(noise, fmt.Sprintf("the DUT's cores were %.0f%% busy, the DUT %.0f%%", r.CorePct, r.CPUPct))
			}
			if len(noise) > 0 {
				notes = append(notes, fmt.Sprintf("%s: %s (other processes or softirq shared the cores)", r.Impl, strings.Join(noise, "; ")))
			}
		}
		tw.Flush()
		if ref := refName(rows, sc, b.cfg.Ours); ref != "" {
			fmt.Fprintf(w, "ours/peer: %s (same mode where there is one) divided by the row; Mpps > 1 and ns < 1 favour ours\n", ref)
		} else {
			fmt.Fprintln(w, "ours/peer: no row of ours ran in this scenario")
		}
		for _, n := range notes {
			fmt.Fprintln(w, "note: "+n)
		}
	}
	if len(b.missing) > 0 {
		fmt.Fprintln(w)
		for k, v := range b.missing {
			fmt.Fprintf(w, "not run: %s (%s)\n", k, v)
		}
	}
}

func refName(rows []Row, sc, named string) string {
	var names []string
	for _, r := range rows {
		if r.Scenario != sc {
			continue
		}
		if ref := reference(rows, r, named); ref != nil && !slices.Contains(names, ref.Impl) {
			names = append(names, ref.Impl)
		}
	}
	return strings.Join(names, ", ")
}

func (b *Bench) printEnv(w io.Writer) {
	c := b.cfg
	fmt.Fprintf(w, "Tygress data-path benchmark, %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s, %d CPUs, kernel %s, %s\n", cpuModel(), runtime.NumCPU(), kernelRelease(), runtime.Version())
	if c.In == "" {
		fmt.Fprintf(w, "topology: veth pairs in namespaces; generator xdpgen (BPF_PROG_TEST_RUN live frames, XDP_TX, %d repeats/call) on CPU %d; DUT on CPU %s\n", c.Repeat, c.GenCPU, b.env.Cores)
	} else {
		gen := "external"
		if c.GenIf != "" {
			gen = fmt.Sprintf("xdpgen on %s, CPU %d", c.GenIf, c.GenCPU)
		}
		fmt.Fprintf(w, "real NICs: in %s out %s, %d queues, %d Mb/s; generator %s; DUT on CPUs %s\n", c.In, orDash(c.Out), b.env.Queues, b.speed, gen, b.env.Cores)
	}
	fmt.Fprintf(w, "run: %s of traffic x %d repetition(s), medians; xdp mode %s, bind %s, batch %d; peers: 4096 frames x 4096 B, 2048-entry rings\n",
		c.Duration, c.Reps, c.XDPMode, c.Bind, c.Batch)
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(w, "load average at report time: %s", l)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// WriteJSON writes every result (all repetitions) to path.
func WriteJSON(path string, res []Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
