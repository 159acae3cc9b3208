package sched

import (
	"slices"
	"testing"
	"testing/fstest"
)

// fakeSysfs is a two-socket machine: two cores per socket, two threads per
// core, Intel-style numbering, one NUMA node per socket, and CPU 7 offline
// (its topology directory gone, as the kernel does).
func fakeSysfs() fstest.MapFS {
	fsys := fstest.MapFS{
		"cpu/present":         {Data: []byte("0-7\n")},
		"cpu/possible":        {Data: []byte("0-7\n")},
		"cpu/online":          {Data: []byte("0-6\n")},
		"node/online":         {Data: []byte("0-1\n")},
		"node/has_cpu":        {Data: []byte("0-1\n")},
		"node/node0/cpulist":  {Data: []byte("0-1,4-5\n")},
		"node/node1/cpulist":  {Data: []byte("2-3,6-7\n")},
		"node/power/autosusp": {Data: []byte("x")},
	}
	for id := range 7 {
		pkg := (id % 4) / 2
		core := id % 2
		base := "cpu/cpu" + string(rune('0'+id)) + "/topology/"
		fsys[base+"core_id"] = &fstest.MapFile{Data: []byte{byte('0' + core), '\n'}}
		fsys[base+"physical_package_id"] = &fstest.MapFile{Data: []byte{byte('0' + pkg), '\n'}}
	}
	fsys["cpu/cpu7/online"] = &fstest.MapFile{Data: []byte("0\n")}
	return fsys
}

func TestReadTopologyFake(t *testing.T) {
	topo, err := readTopology(fakeSysfs(), "cpu", "node")
	if err != nil {
		t.Fatal(err)
	}
	want := []CPU{
		{0, 0, 0, 0, true}, {1, 1, 0, 0, true}, {2, 0, 1, 1, true}, {3, 1, 1, 1, true},
		{4, 0, 0, 0, true}, {5, 1, 0, 0, true}, {6, 0, 1, 1, true}, {7, -1, -1, 1, false},
	}
	if !slices.Equal(topo.CPUs, want) {
		t.Errorf("CPUs:\n got %v\nwant %v", topo.CPUs, want)
	}
	if got := topo.Online(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("Online = %v", got)
	}
	if n := topo.OnlineCores(); n != 4 {
		t.Errorf("OnlineCores = %d, want 4", n)
	}
	if got := PlanWorkers(5, topo.Online(), topo); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("PlanWorkers(5) = %v", got)
	}
	if got := PlanWorkers(2, topo.Online(), topo); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("PlanWorkers(2) = %v (want both on node 0, distinct cores)", got)
	}
}

func TestReadTopologyFallbacks(t *testing.T) {
	// No present, online or node files: CPUs come from the cpuN
	// directories, all online, all on node 0.
	fsys := fakeSysfs()
	for _, name := range []string{"cpu/present", "cpu/online", "cpu/cpu7/online"} {
		delete(fsys, name)
	}
	for name := range fsys {
		if len(name) > 5 && name[:5] == "node/" {
			delete(fsys, name)
		}
	}
	topo, err := readTopology(fsys, "cpu", "node")
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.CPUs) != 7 {
		t.Fatalf("%d CPUs, want 7: %v", len(topo.CPUs), topo.CPUs)
	}
	for _, c := range topo.CPUs {
		if !c.Online || c.NUMANode != 0 {
			t.Errorf("CPU %+v: want online on node 0", c)
		}
	}
}

func TestReadTopologyErrors(t *testing.T) {
	for name, mutate := range map[string]func(fstest.MapFS){
		"bad online":  func(f fstest.MapFS) { f["cpu/online"] = &fstest.MapFile{Data: []byte("0-x\n")} },
		"bad present": func(f fstest.MapFS) { f["cpu/present"] = &fstest.MapFile{Data: []byte("3-1\n")} },
		"bad core_id": func(f fstest.MapFS) {
			f["cpu/cpu1/topology/core_id"] = &fstest.MapFile{Data: []byte("one\n")}
		},
		"bad node list": func(f fstest.MapFS) {
			f["node/node1/cpulist"] = &fstest.MapFile{Data: []byte(",\n")}
		},
		"no cpus": func(f fstest.MapFS) { f["cpu/present"] = &fstest.MapFile{Data: []byte("\n")} },
	} {
		fsys := fakeSysfs()
		mutate(fsys)
		if topo, err := readTopology(fsys, "cpu", "node"); err == nil {
			t.Errorf("%s: no error, got %+v", name, topo.CPUs)
		}
	}
}
