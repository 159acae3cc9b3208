package lb

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func testBackends(n int, w func(i int) uint32) []MaglevBackend {
	bs := make([]MaglevBackend, n)
	for i := range bs {
		a := ipAddr(fmt.Sprintf("10.0.%d.%d", 1+i/250, 1+i%250)).As16()
		bs[i] = MaglevBackend{Key: backendKey(a, 80), Weight: w(i)}
	}
	return bs
}

func one(int) uint32 { return 1 }

func mustMaglev(tb testing.TB, bs []MaglevBackend, m uint32) *Maglev {
	tb.Helper()
	t, err := NewMaglev(bs, m)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestTableSize(t *testing.T) {
	for _, m := range []uint32{0, 1, 2, 97, 100, 65536, 65535, MaxTableSize + 2, 1 << 30} {
		if err := CheckTableSize(m); !errors.Is(err, ErrTableSize) {
			t.Errorf("CheckTableSize(%d) = %v, want ErrTableSize", m, err)
		}
		if _, err := NewMaglev(testBackends(3, one), m); !errors.Is(err, ErrTableSize) {
			t.Errorf("NewMaglev(_, %d) = %v, want ErrTableSize", m, err)
		}
	}
	for _, m := range []uint32{101, 251, 65537, 655373, MaxTableSize} {
		if err := CheckTableSize(m); err != nil {
			t.Errorf("CheckTableSize(%d) = %v", m, err)
		}
	}
	if _, err := NewMaglev(testBackends(101, one), 101); !errors.Is(err, ErrTableSize) {
		t.Errorf("101 backends in 101 entries: %v, want ErrTableSize", err)
	}
	if IsPrime(1) || !IsPrime(2) || IsPrime(9) || !IsPrime(65537) || IsPrime(65539*3) {
		t.Error("IsPrime is wrong")
	}
}

// TestMaglevDistribution checks that each backend owns its weight's share
// of the entries, within 2% (relative) of its expected count.
func TestMaglevDistribution(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		w    func(int) uint32
	}{
		{"equal-10", 10, one},
		{"equal-100", 100, one},
		{"weights-1-2-3", 30, func(i int) uint32 { return uint32(1 + i%3) }},
		{"weights-1-10", 11, func(i int) uint32 { return map[bool]uint32{true: 10, false: 1}[i == 0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := testBackends(tc.n, tc.w)
			m := mustMaglev(t, bs, DefaultTableSize)
			var sum float64
			for _, b := range bs {
				sum += float64(b.Weight)
			}
			for i, c := range m.Counts(len(bs)) {
				want := float64(DefaultTableSize) * float64(bs[i].Weight) / sum
				if dev := math.Abs(float64(c)-want) / want; dev > 0.02 {
					t.Errorf("backend %d (weight %d): %d entries, want %.0f ±2%% (off by %.1f%%)", i, bs[i].Weight, c, want, 100*dev)
				}
			}
		})
	}
}

// TestMaglevDeterministic: the table depends on the keys, not on their
// order or the process.
func TestMaglevDeterministic(t *testing.T) {
	bs := testBackends(7, func(i int) uint32 { return uint32(i + 1) })
	a := mustMaglev(t, bs, 1009)
	rev := make([]MaglevBackend, len(bs))
	for i := range bs {
		rev[len(bs)-1-i] = bs[i]
	}
	b := mustMaglev(t, rev, 1009)
	for h := range a.entries {
		if bs[a.entries[h]].Key[15] != rev[b.entries[h]].Key[15] {
			t.Fatalf("entry %d: backend order changed the table", h)
		}
	}
	// A golden value, so that a change of the hashes (which would move
	// every flow of a fleet during an upgrade) does not go unnoticed.
	var sum uint64
	for i, e := range a.entries {
		sum = sum*31 + uint64(e) + uint64(i)
	}
	if sum != goldenMaglevSum {
		t.Errorf("table checksum %d, golden %d: the Maglev permutation changed", sum, goldenMaglevSum)
	}
}

const goldenMaglevSum uint64 = 15426718694241711714

// TestMaglevDisruption removes one of N backends: only its entries and a
// small fraction of the others may move; adding it back restores the
// table exactly.
func TestMaglevDisruption(t *testing.T) {
	for _, n := range []int{5, 10, 50, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bs := testBackends(n, one)
			before := mustMaglev(t, bs, DefaultTableSize)
			for _, gone := range []int{0, n / 2, n - 1} {
				drained := append([]MaglevBackend(nil), bs...)
				drained[gone].Weight = 0
				after := mustMaglev(t, drained, DefaultTableSize)
				own, extra := 0, 0
				for i := range before.entries {
					if after.entries[i] == uint16(gone) {
						t.Fatalf("drained backend %d still owns entry %d", gone, i)
					}
					switch {
					case before.entries[i] == uint16(gone):
						own++
					case before.entries[i] != after.entries[i]:
						extra++
					}
				}
				frac := float64(extra) / float64(DefaultTableSize)
				t.Logf("n=%d remove %d: %d own entries moved, %d others moved (%.2f%%)", n, gone, own, extra, 100*frac)
				if frac > 0.025 {
					t.Errorf("removing backend %d of %d moved %.2f%% of the other entries, want < 2.5%%", gone, n, 100*frac)
				}
				restored := mustMaglev(t, bs, DefaultTableSize)
				for i := range before.entries {
					if restored.entries[i] != before.entries[i] {
						t.Fatalf("adding backend %d back did not restore entry %d", gone, i)
					}
				}
			}
			// Removing (not draining) the backend must give the same table,
			// modulo the index shift.
			removed := append(append([]MaglevBackend(nil), bs[:1]...), bs[2:]...)
			r := mustMaglev(t, removed, DefaultTableSize)
			drained := append([]MaglevBackend(nil), bs...)
			drained[1].Weight = 0
			d := mustMaglev(t, drained, DefaultTableSize)
			for i := range r.entries {
				want := d.entries[i]
				if want > 1 {
					want--
				}
				if r.entries[i] != want {
					t.Fatalf("entry %d: removed and drained tables differ", i)
				}
			}
		})
	}
}

func TestMaglevNoBackends(t *testing.T) {
	m := mustMaglev(t, testBackends(3, func(int) uint32 { return 0 }), 101)
	for h := uint32(0); h < 1000; h++ {
		if b := m.Lookup(h * 4294967); b != -1 {
			t.Fatalf("all drained: Lookup = %d, want -1", b)
		}
	}
	var nilTable *Maglev
	if nilTable.Lookup(1) != -1 {
		t.Fatal("nil table")
	}
	if _, err := NewMaglev(testBackends(2, func(int) uint32 { return MaxWeight + 1 }), 101); err == nil {
		t.Fatal("weight above MaxWeight accepted")
	}
}

func TestMaglevLookupRange(t *testing.T) {
	m := mustMaglev(t, testBackends(4, one), 101)
	for _, h := range []uint32{0, 1, 1 << 31, math.MaxUint32} {
		if b := m.Lookup(h); b < 0 || b >= 4 {
			t.Fatalf("Lookup(%#x) = %d", h, b)
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.Lookup(12345) }); n != 0 {
		t.Fatalf("Lookup allocates %v", n)
	}
}
