package hugemem

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

type row struct {
	a [3]uint32
	b int64
	c [2]struct{ x, y uint16 }
}

func TestMakeHuge(t *testing.T) {
	const n = 3 << 20 / 32 // 3 MiB of 32-byte rows: two huge pages
	s, free, huge := Make[row](n)
	defer free()
	if len(s) != n || cap(s) != n {
		t.Fatalf("len %d cap %d, want %d", len(s), cap(s), n)
	}
	if !huge {
		t.Fatal("a 3 MiB table was not mapped by itself")
	}
	if p := uintptr(unsafe.Pointer(&s[0])); p%HugePageSize != 0 {
		t.Fatalf("table at %#x, not 2 MiB aligned", p)
	}
	for i := range s {
		if s[i] != (row{}) {
			t.Fatalf("row %d not zero", i)
		}
		s[i].b = int64(i)
	}
	if s[n-1].b != n-1 {
		t.Fatal("last row not written")
	}
	// Where the kernel hands out transparent huge pages for advised
	// memory, the table got some.
	if mode := thpMode(t); mode == "always" || mode == "madvise" {
		kb := anonHugeKB(t, uintptr(unsafe.Pointer(&s[0])))
		if kb == 0 {
			t.Errorf("THP mode %q but the table has no huge pages", mode)
		}
		t.Logf("THP %s: %d kB of huge pages", mode, kb)
	}
}

func TestMakeSmallAndZero(t *testing.T) {
	for _, n := range []int{0, 1, 1000} {
		s, free, huge := Make[uint64](n)
		if len(s) != n || huge {
			t.Errorf("Make(%d): len %d huge %v, want a heap slice", n, len(s), huge)
		}
		free()
	}
}

func TestMakePointerTypePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"pointer":      func() { Make[*int](1 << 20) },
		"slice field":  func() { Make[struct{ b []byte }](1 << 20) },
		"string array": func() { Make[[2]string](1 << 20) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func thpMode(t *testing.T) string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Logf("no THP: %v", err)
		return ""
	}
	f := strings.Fields(string(b))
	for _, m := range f {
		if strings.HasPrefix(m, "[") {
			return strings.Trim(m, "[]")
		}
	}
	return ""
}

// anonHugeKB returns the AnonHugePages of the mapping that starts at addr.
func anonHugeKB(t *testing.T, addr uintptr) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prefix := fmt.Sprintf("%x-", addr)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if f := strings.Fields(l); len(f) > 0 && strings.Count(f[0], "-") == 1 && !strings.HasSuffix(l, "kB") {
			in = strings.HasPrefix(l, prefix) // a mapping's first line
			continue
		}
		if in && strings.HasPrefix(l, "AnonHugePages:") {
			var kb int
			fmt.Sscanf(strings.TrimPrefix(l, "AnonHugePages:"), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no mapping at %#x in smaps", addr)
	return 0
}
