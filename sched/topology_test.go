package sched_test

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tygress/tygress/sched"
)

func TestReadTopologyThisMachine(t *testing.T) {
	topo, err := sched.ReadTopology()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%s), hypervisor %q: %d cores × %d threads per CPUID, cache line %d, L1D %d L2 %d L3 %d",
		topo.Brand, topo.Vendor, topo.Hypervisor, topo.PhysicalCores, topo.ThreadsPerCore,
		topo.CacheLine, topo.Cache.L1D, topo.Cache.L2, topo.Cache.L3)
	t.Logf("sysfs: %d present, online %s, %d online cores", len(topo.CPUs),
		sched.FormatCPUList(topo.Online()), topo.OnlineCores())

	if !slices.IsSortedFunc(topo.CPUs, func(a, b sched.CPU) int { return a.ID - b.ID }) {
		t.Error("CPUs not sorted by ID")
	}
	online := topo.Online()
	// runtime.NumCPU counts the CPUs in the process's affinity mask at
	// start-up, which is a subset of the online CPUs.
	if len(online) < runtime.NumCPU() {
		t.Errorf("%d online CPUs < runtime.NumCPU() = %d", len(online), runtime.NumCPU())
	}
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) != runtime.NumCPU() {
		t.Errorf("AllowedCPUs %v, runtime.NumCPU() = %d", allowed, runtime.NumCPU())
	}
	for _, id := range allowed {
		c, ok := topo.CPU(id)
		if !ok || !c.Online {
			t.Errorf("allowed CPU %d is not an online CPU of the topology (%+v)", id, c)
		}
	}
	for _, c := range topo.CPUs {
		if c.Online && (c.Core < 0 || c.Package < 0 || c.NUMANode < 0) {
			t.Errorf("online CPU without topology: %+v", c)
		}
	}
	if n := topo.OnlineCores(); n < 1 || n > len(online) {
		t.Errorf("OnlineCores = %d with %d online CPUs", n, len(online))
	}
	if topo.CacheLine != 0 && topo.CacheLine&(topo.CacheLine-1) != 0 {
		t.Errorf("cache line %d is not a power of two", topo.CacheLine)
	}
	// Cross-check with the kernel's own list.
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		want, err := sched.ParseCPUList(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(online, want) {
			t.Errorf("Online() = %v, sysfs says %v", online, want)
		}
	}

	plan := sched.PlanWorkers(len(allowed), allowed, topo)
	if !slices.Equal(slices.Sorted(slices.Values(plan)), allowed) {
		t.Errorf("PlanWorkers(%d) = %v, want each of %v once", len(allowed), plan, allowed)
	}
}

func TestPlanWorkers(t *testing.T) {
	// Intel-style numbering: siblings are n apart (0 and 2 share core 0).
	intel := &sched.Topology{CPUs: []sched.CPU{
		{ID: 0, Core: 0, Online: true}, {ID: 1, Core: 1, Online: true},
		{ID: 2, Core: 0, Online: true}, {ID: 3, Core: 1, Online: true},
	}}
	// AMD-style numbering: siblings are adjacent.
	amd := &sched.Topology{CPUs: []sched.CPU{
		{ID: 0, Core: 0, Online: true}, {ID: 1, Core: 0, Online: true},
		{ID: 2, Core: 1, Online: true}, {ID: 3, Core: 1, Online: true},
	}}
	// Two NUMA nodes whose CPU numbers interleave; CPU 4 is offline.
	numa := &sched.Topology{CPUs: []sched.CPU{
		{ID: 0, Core: 0, Package: 0, NUMANode: 0, Online: true},
		{ID: 1, Core: 0, Package: 1, NUMANode: 1, Online: true},
		{ID: 2, Core: 1, Package: 0, NUMANode: 0, Online: true},
		{ID: 3, Core: 1, Package: 1, NUMANode: 1, Online: true},
		{ID: 4, Core: -1, Package: -1, NUMANode: -1, Online: false},
	}}
	all := []int{0, 1, 2, 3, 4}
	four := []int{0, 1, 2, 3}
	for _, tt := range []struct {
		name    string
		n       int
		allowed []int
		topo    *sched.Topology
		want    []int
	}{
		{"intel/1", 1, four, intel, []int{0}},
		{"intel/2 distinct cores", 2, four, intel, []int{0, 1}},
		{"intel/3 then siblings", 3, four, intel, []int{0, 1, 2}},
		{"intel/6 wraps", 6, four, intel, []int{0, 1, 2, 3, 0, 1}},
		{"amd/2 distinct cores", 2, four, amd, []int{0, 2}},
		{"amd/4", 4, four, amd, []int{0, 2, 1, 3}},
		{"amd/restricted", 2, []int{1, 0}, amd, []int{0, 1}},
		{"numa/2 stays on node 0", 2, all, numa, []int{0, 2}},
		{"numa/4", 4, all, numa, []int{0, 2, 1, 3}},
		{"numa/node 1 only", 2, []int{1, 3}, numa, []int{1, 3}},
		{"numa/offline skipped", 2, []int{4, 3}, numa, []int{3, 3}},
		{"nil topology", 3, []int{5, 3}, nil, []int{3, 5, 3}},
		{"unknown CPU is its own core", 3, []int{0, 2, 9}, intel, []int{0, 9, 2}},
		{"duplicates and negatives", 2, []int{-1, 2, 2, 0}, amd, []int{0, 2}},
		{"n=0", 0, four, intel, nil},
		{"nothing allowed", 2, nil, intel, nil},
		{"only offline", 2, []int{4}, numa, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.allowed)
			got := sched.PlanWorkers(tt.n, in, tt.topo)
			if !slices.Equal(got, tt.want) {
				t.Errorf("PlanWorkers(%d, %v) = %v, want %v", tt.n, tt.allowed, got, tt.want)
			}
			if !slices.Equal(in, tt.allowed) {
				t.Errorf("PlanWorkers modified allowed: %v", in)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
	}{
		{"", []int{}},
		{"0", []int{0}},
		{"0-3", []int{0, 1, 2, 3}},
		{"0-3,5,7-8", []int{0, 1, 2, 3, 5, 7, 8}},
		{"7-8,5,0-3", []int{0, 1, 2, 3, 5, 7, 8}},
		{"0-2,1-3,3", []int{0, 1, 2, 3}},
		{"4-4", []int{4}},
		{"007", []int{7}},
		{"65535", []int{65535}},
	} {
		got, err := sched.ParseCPUList(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{
		",", "0,", ",0", "0,,1", "-", "-1", "1-", "0--2", "3-1", "0-1-2",
		" 0", "0 ", "0, 1", "0\n", "+1", "a", "0x1", "1.5", "0-7:2/4",
		"65536", "0-65536", "99999999999999999999", "1-99999999999999999999",
	} {
		got, err := sched.ParseCPUList(in)
		if !errors.Is(err, sched.ErrCPUList) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want ErrCPUList", in, got, err)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	for _, tt := range []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 3, 5, 7, 8}, "0-3,5,7-8"},
		{[]int{8, 7, 5, 3, 2, 1, 0, 5}, "0-3,5,7-8"},
		{[]int{-3, 1, 3}, "1,3"},
	} {
		in := slices.Clone(tt.in)
		if got := sched.FormatCPUList(in); got != tt.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("FormatCPUList modified its input: %v", in)
		}
	}
}

// FuzzCPUList: whatever parses must format and parse back to the same set.
func FuzzCPUList(f *testing.F) {
	for _, s := range []string{"", "0", "0-3,5,7-8", "3-1", "0,,1", "1-2,2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := sched.ParseCPUList(s)
		if err != nil {
			return
		}
		text := sched.FormatCPUList(cpus)
		again, err := sched.ParseCPUList(text)
		if err != nil || !slices.Equal(again, cpus) {
			t.Fatalf("%q → %v → %q → %v, %v", s, cpus, text, again, err)
		}
	})
}
