package sched

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// CPU is one logical CPU (a hardware thread) as Linux numbers it.
type CPU struct {
	// ID is the kernel's CPU number, as used by taskset and Pin.
	ID int
	// Core is the physical core ID within its package (topology/core_id);
	// hyperthread siblings share it. -1 when unknown (e.g. offline CPU).
	Core int
	// Package is the physical socket (topology/physical_package_id), -1
	// when unknown.
	Package int
	// NUMANode is the memory node the CPU belongs to, -1 when unknown.
	// Kernels built without NUMA report every CPU on node 0.
	NUMANode int
	// Online reports whether the CPU is online (/sys/.../cpu/online).
	Online bool
}

// Caches holds cache sizes in bytes; -1 means undetected.
type Caches struct {
	L1I int // level-1 instruction cache, per core
	L1D int // level-1 data cache, per core
	L2  int // level-2 cache (per core or shared)
	L3  int // level-3 cache (usually shared by a package or CCX)
}

// Topology describes the machine's CPUs. The placement fields (CPUs) come
// from sysfs and are authoritative: they are what the scheduler uses. The
// descriptive fields come from the CPUID instruction (klauspost/cpuid) and
// describe the processor model; in a VM or container they may disagree
// with CPUs (CPUID reports the host model's core count, for example).
type Topology struct {
	// CPUs lists every present CPU, online or not, by increasing ID.
	CPUs []CPU

	// Vendor is the CPU vendor string ("GenuineIntel", "AuthenticAMD", …).
	Vendor string
	// Brand is the processor's brand string.
	Brand string
	// Hypervisor is the hypervisor vendor, "" on bare metal or if unknown.
	Hypervisor string
	// PhysicalCores, ThreadsPerCore and LogicalCores are as CPUID reports
	// them (0 if undetectable).
	PhysicalCores, ThreadsPerCore, LogicalCores int
	// CacheLine is the cache line size in bytes (0 if undetectable).
	CacheLine int
	// Cache holds the cache sizes.
	Cache Caches
	// Features lists the CPU features detected (e.g. "AVX2", "SSE4").
	Features []string
}

// maxCPUID bounds CPU numbers accepted by Pin and ParseCPUList. Linux's
// NR_CPUS is at most 8192 today; the bound only stops a typo such as
// "0-4000000000" from allocating gigabytes.
const maxCPUID = 1 << 16

// ReadTopology reads the CPU topology of this machine from sysfs and CPUID.
func ReadTopology() (*Topology, error) {
	t, err := readTopology(os.DirFS("/"), "sys/devices/system/cpu", "sys/devices/system/node")
	if err != nil {
		return nil, err
	}
	c := &cpuid.CPU
	t.Vendor = c.VendorString
	t.Brand = strings.TrimSpace(c.BrandName)
	t.Hypervisor = c.HypervisorVendorString
	t.PhysicalCores = c.PhysicalCores
	t.ThreadsPerCore = c.ThreadsPerCore
	t.LogicalCores = c.LogicalCores
	t.CacheLine = c.CacheLine
	t.Cache = Caches{L1I: c.Cache.L1I, L1D: c.Cache.L1D, L2: c.Cache.L2, L3: c.Cache.L3}
	t.Features = c.FeatureSet()
	return t, nil
}

// readTopology reads the sysfs part of the topology from fsys, with cpuDir
// and nodeDir the paths of /sys/devices/system/{cpu,node} inside it. Tests
// point it at a fake tree.
func readTopology(fsys fs.FS, cpuDir, nodeDir string) (*Topology, error) {
	ids, err := readCPUListFile(fsys, cpuDir+"/present")
	if errors.Is(err, fs.ErrNotExist) {
		ids, err = listCPUDirs(fsys, cpuDir)
	}
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("read topology: no cpus in %s", cpuDir)
	}

	onlineList, err := readCPUListFile(fsys, cpuDir+"/online")
	onlineAll := errors.Is(err, fs.ErrNotExist) // no hotplug support: all online
	if err != nil && !onlineAll {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	online := make(map[int]bool, len(onlineList))
	for _, id := range onlineList {
		online[id] = true
	}

	nodeOf, err := readNodes(fsys, nodeDir)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}

	t := &Topology{CPUs: make([]CPU, 0, len(ids))}
	for _, id := range ids {
		c := CPU{ID: id, Core: -1, Package: -1, NUMANode: -1}
		c.Online = onlineAll || online[id]
		base := fmt.Sprintf("%s/cpu%d/topology/", cpuDir, id)
		// An offline CPU may have no topology directory: leave -1.
		if v, err := readIntFile(fsys, base+"core_id"); err == nil {
			c.Core = v
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read topology: %w", err)
		}
		if v, err := readIntFile(fsys, base+"physical_package_id"); err == nil {
			c.Package = v
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read topology: %w", err)
		}
		if nodeOf == nil {
			c.NUMANode = 0 // no node directory: kernel without NUMA
		} else if n, ok := nodeOf[id]; ok {
			c.NUMANode = n
		}
		t.CPUs = append(t.CPUs, c)
	}
	return t, nil
}

// readNodes maps CPU IDs to NUMA nodes from nodeDir/nodeN/cpulist. It
// returns a nil map if nodeDir does not exist.
func readNodes(fsys fs.FS, nodeDir string) (map[int]int, error) {
	entries, err := fs.ReadDir(fsys, nodeDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := make(map[int]int)
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), "node")
		node, err := strconv.Atoi(num)
		if !ok || err != nil || node < 0 {
			continue // "online", "possible", "has_cpu", …
		}
		cpus, err := readCPUListFile(fsys, nodeDir+"/"+e.Name()+"/cpulist")
		if err != nil {
			return nil, err
		}
		for _, c := range cpus {
			m[c] = node
		}
	}
	return m, nil
}

// listCPUDirs finds CPU IDs from the cpuN directory names.
func listCPUDirs(fsys fs.FS, cpuDir string) ([]int, error) {
	entries, err := fs.ReadDir(fsys, cpuDir)
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), "cpu")
		id, err := strconv.Atoi(num)
		if ok && err == nil && id >= 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func readCPUListFile(fsys fs.FS, name string) ([]int, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	cpus, err := ParseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cpus, nil
}

func readIntFile(fsys fs.FS, name string) (int, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// Online returns the IDs of the online CPUs, in increasing order.
func (t *Topology) Online() []int {
	var ids []int
	for _, c := range t.CPUs {
		if c.Online {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// CPU returns the CPU with the given ID.
func (t *Topology) CPU(id int) (CPU, bool) {
	i, ok := slices.BinarySearchFunc(t.CPUs, id, func(c CPU, id int) int { return cmp.Compare(c.ID, id) })
	if !ok {
		return CPU{}, false
	}
	return t.CPUs[i], true
}

// coreKey identifies a physical core: core IDs are unique only within a
// package. A CPU without topology information is its own core.
type coreKey struct{ pkg, core, cpu int }

func (c CPU) coreKey() coreKey {
	if c.Core < 0 {
		return coreKey{pkg: c.Package, core: -1, cpu: c.ID}
	}
	return coreKey{pkg: c.Package, core: c.Core, cpu: -1}
}

// OnlineCores counts the distinct physical cores among the online CPUs,
// from sysfs (unlike PhysicalCores, which CPUID reports).
func (t *Topology) OnlineCores() int {
	seen := make(map[coreKey]struct{})
	for _, c := range t.CPUs {
		if c.Online {
			seen[c.coreKey()] = struct{}{}
		}
	}
	return len(seen)
}

// PlanWorkers chooses a CPU for each of n workers from allowed (typically
// AllowedCPUs()), and returns them in worker order.
//
// Policy:
//   - CPUs that topo marks offline are skipped; CPUs that topo does not
//     know (or a nil topo) count as their own physical core.
//   - Physical cores are ordered by (NUMA node, package, core ID, lowest
//     CPU ID), unknown values last, so a small worker set stays on one
//     node and shares its L3 and memory.
//     Callers that want the NIC's node should pass only that node's CPUs.
//   - Spread first: worker i gets the first hardware thread of the i-th
//     core; only when every core has a worker do the second siblings
//     (hyperthreads) get one, and so on. Two busy-polling workers on
//     sibling threads share one core's execution units.
//   - CPU 0 gets no special treatment: on a two-CPU machine it is needed.
//     A caller that wants to keep it for interrupts and housekeeping
//     removes it from allowed.
//   - When n exceeds the usable CPUs the plan wraps around and CPUs get
//     more than one worker. That works but, for busy-polling workers,
//     collapses throughput (see DESIGN.md); callers should warn.
//
// It returns nil if n <= 0 or no allowed CPU is usable.
func PlanWorkers(n int, allowed []int, topo *Topology) []int {
	if n <= 0 {
		return nil
	}
	type core struct {
		node, pkg, core int
		cpus            []int
	}
	cores := make(map[coreKey]*core)
	var order []*core
	for _, id := range slices.Compact(slices.Sorted(slices.Values(allowed))) {
		c := CPU{ID: id, Core: -1, Package: -1, NUMANode: -1, Online: true}
		if topo != nil {
			if tc, ok := topo.CPU(id); ok {
				c = tc
			}
		}
		if !c.Online || id < 0 {
			continue
		}
		k := c.coreKey()
		pc := cores[k]
		if pc == nil {
			pc = &core{node: c.NUMANode, pkg: c.Package, core: c.Core}
			cores[k] = pc
			order = append(order, pc)
		}
		pc.cpus = append(pc.cpus, id) // ascending: allowed was sorted
	}
	if len(order) == 0 {
		return nil
	}
	// Unknown (-1) node, package or core sorts after every known one.
	known := func(v int) uint { return uint(v) }
	slices.SortFunc(order, func(a, b *core) int {
		return cmp.Or(cmp.Compare(known(a.node), known(b.node)),
			cmp.Compare(known(a.pkg), known(b.pkg)),
			cmp.Compare(known(a.core), known(b.core)),
			cmp.Compare(a.cpus[0], b.cpus[0]))
	})
	var seq []int // one CPU of each core, then the second of each, …
	for round := 0; ; round++ {
		added := false
		for _, c := range order {
			if round < len(c.cpus) {
				seq = append(seq, c.cpus[round])
				added = true
			}
		}
		if !added {
			break
		}
	}
	plan := make([]int, n)
	for i := range plan {
		plan[i] = seq[i%len(seq)]
	}
	return plan
}

// ParseCPUList parses the kernel's CPU list format ("0-3,5,7-8", as in
// /sys/devices/system/cpu/online and taskset -c) and returns the CPU IDs in
// increasing order without duplicates. The empty string is the empty list.
//
// It is strict: no spaces, no empty elements ("1,,2", "1,"), no signs, no
// reversed ranges ("3-1"), and no stride syntax ("0-7:2/4"). Overlapping or
// unordered elements are accepted, as the kernel accepts them. The input is
// not trimmed; trim a trailing newline from a sysfs file first.
func ParseCPUList(s string) ([]int, error) {
	if s == "" {
		return []int{}, nil
	}
	var cpus []int
	for elem := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(elem, "-")
		a, err := parseCPUNum(lo)
		if err != nil {
			return nil, cpuListError(s, elem, err)
		}
		b := a
		if isRange {
			if b, err = parseCPUNum(hi); err != nil {
				return nil, cpuListError(s, elem, err)
			}
			if b < a {
				return nil, cpuListError(s, elem, errors.New("reversed range"))
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

// ErrCPUList is wrapped by every error from ParseCPUList.
var ErrCPUList = errors.New("bad cpu list")

func cpuListError(s, elem string, err error) error {
	return fmt.Errorf("%w %q: element %q: %w", ErrCPUList, s, elem, err)
}

func parseCPUNum(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("unexpected %q", s[i])
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v >= maxCPUID {
		return 0, fmt.Errorf("cpu %s out of range [0, %d)", s, maxCPUID)
	}
	return v, nil
}

// FormatCPUList formats CPU IDs in the kernel's list format, as ranges in
// increasing order ("0-3,5,7-8"); the inverse of ParseCPUList. Duplicates
// are merged; negative IDs are not CPUs and are left out. The input is not
// modified.
func FormatCPUList(cpus []int) string {
	ids := slices.Compact(slices.Sorted(slices.Values(cpus)))
	var b strings.Builder
	for i := 0; i < len(ids); {
		if ids[i] < 0 {
			i++
			continue
		}
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return b.String()
}
