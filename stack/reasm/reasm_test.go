package reasm_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/tygress/tygress/stack/reasm"
)

var (
	src4 = [4]byte{10, 0, 0, 1}
	dst4 = [4]byte{10, 0, 0, 2}
	src6 = [16]byte{0xfd, 0, 15: 1}
	dst6 = [16]byte{0xfd, 0, 15: 2}
)

func key4(id uint16) reasm.Key { return reasm.KeyIPv4(src4, dst4, 17, id) }
func key6(id uint32) reasm.Key { return reasm.KeyIPv6(src6, dst6, id) }

// data returns n deterministic bytes that differ per seed.
func data(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type frag struct {
	off  int
	more bool
	b    []byte
}

// split cuts p into fragments of size bytes (a multiple of 8), in order.
func split(p []byte, size int) []frag {
	var fs []frag
	for off := 0; off < len(p); off += size {
		end := min(off+size, len(p))
		fs = append(fs, frag{off, end < len(p), p[off:end]})
	}
	return fs
}

func check(t testing.TB, r *reasm.Reassembler) {
	t.Helper()
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// feed adds fs in order and returns the datagram if the last one completed it.
func feed(t *testing.T, r *reasm.Reassembler, now int64, k reasm.Key, fs []frag) []byte {
	t.Helper()
	var out []byte
	for i, f := range fs {
		got, done, err := r.Add(now, k, f.off, f.more, nil, f.b)
		check(t, r)
		if err != nil {
			t.Fatalf("fragment %d (off %d len %d): %v", i, f.off, len(f.b), err)
		}
		if done != (i == len(fs)-1) {
			t.Fatalf("fragment %d of %d: done = %v", i, len(fs), done)
		}
		if done {
			out = bytes.Clone(got)
		}
	}
	return out
}

func TestReassembleOrders(t *testing.T) {
	small := reasm.Config{MaxBytes: 256 << 10, MaxDatagrams: 16, MaxFragmentsPerDatagram: 64}
	tests := []struct {
		name  string
		key   reasm.Key
		size  int
		frag  int
		order string // "in", "rev" or "perm"
	}{
		{"v4/in", key4(1), 4000, 1480, "in"},
		{"v4/rev", key4(2), 4000, 1480, "rev"},
		{"v4/perm-small", key4(3), 3001, 64, "perm"},
		{"v4/max", key4(4), reasm.MaxPayloadIPv4, 1480, "perm"},
		{"v4/two", key4(5), 9, 8, "rev"},
		{"v6/in", key6(1), 8000, 1232, "in"},
		{"v6/rev", key6(2), 8000, 1232, "rev"},
		{"v6/perm", key6(3), 5555, 512, "perm"},
		{"v6/max", key6(4), reasm.MaxPayloadIPv6, 1232, "perm"},
	}
	for _, tt := range tests {
		for seed := range uint64(5) {
			if tt.order != "perm" && seed > 0 {
				break
			}
			t.Run(tt.name, func(t *testing.T) {
				r := reasm.New(small)
				p := data(tt.size, seed)
				fs := split(p, tt.frag)
				switch tt.order {
				case "rev":
					for i, j := 0, len(fs)-1; i < j; i, j = i+1, j-1 {
						fs[i], fs[j] = fs[j], fs[i]
					}
				case "perm":
					rand.New(rand.NewPCG(seed, 1)).Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
				}
				got := feed(t, r, 0, tt.key, fs)
				if !bytes.Equal(got, p) {
					t.Fatalf("reassembled %d bytes differ from the original %d", len(got), len(p))
				}
				st := r.Stats()
				if st.Complete != 1 || st.Datagrams != 0 || st.BytesHeld != 0 {
					t.Fatalf("stats after completion: %+v", st)
				}
			})
		}
	}
}

func TestInterleavedKeys(t *testing.T) {
	r := reasm.New(reasm.Config{})
	keys := []reasm.Key{key4(1), key4(2), reasm.KeyIPv4(src4, dst4, 6, 1), reasm.KeyIPv4(dst4, src4, 17, 1), key6(1), reasm.KeyIPv6(dst6, src6, 1)}
	ps := make([][]byte, len(keys))
	fss := make([][]frag, len(keys))
	for i := range keys {
		ps[i] = data(3000, uint64(i))
		fss[i] = split(ps[i], 992)
	}
	for j := range fss[0] {
		for i, k := range keys {
			f := fss[i][j]
			got, done, err := r.Add(0, k, f.off, f.more, nil, f.b)
			check(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if done != !f.more {
				t.Fatalf("key %d fragment %d: done %v", i, j, done)
			}
			if done && !bytes.Equal(got, ps[i]) {
				t.Fatalf("key %d: wrong datagram", i)
			}
		}
	}
	if st := r.Stats(); st.Complete != uint64(len(keys)) {
		t.Fatalf("complete = %d, want %d", st.Complete, len(keys))
	}
}

func TestOverlap(t *testing.T) {
	// The datagram is 64 bytes; fragment [16,48) is held first.
	p := data(64, 1)
	held := frag{16, true, p[16:48]}
	tests := []struct {
		name string
		f    frag
	}{
		{"partial-start", frag{8, true, p[8:24]}},
		{"partial-end", frag{40, true, p[40:56]}},
		{"same-start-shorter", frag{16, true, p[16:24]}},
		{"same-end-longer", frag{8, true, p[8:48]}},
		{"contained", frag{24, true, p[24:40]}},
		{"covering", frag{8, true, p[8:56]}},
		{"covering-last", frag{8, false, p[8:64]}},
		{"last-overlapping", frag{40, false, p[40:64]}},
		{"same-range-other-data", frag{16, true, data(32, 99)}},
		{"end-one-byte-in", frag{0, true, append(bytes.Clone(p[0:16]), p[16:24]...)}},
	}
	for _, fam := range []struct {
		name string
		key  reasm.Key
	}{{"v4", key4(7)}, {"v6", key6(7)}} {
		for _, tt := range tests {
			t.Run(fam.name+"/"+tt.name, func(t *testing.T) {
				r := reasm.New(reasm.Config{})
				if _, _, err := r.Add(0, fam.key, held.off, held.more, nil, held.b); err != nil {
					t.Fatal(err)
				}
				_, done, err := r.Add(1, fam.key, tt.f.off, tt.f.more, nil, tt.f.b)
				check(t, r)
				if !errors.Is(err, reasm.ErrOverlap) || done {
					t.Fatalf("overlap: err %v done %v, want ErrOverlap", err, done)
				}
				st := r.Stats()
				if st.Overlap != 1 || st.Datagrams != 0 || st.BytesHeld != 0 {
					t.Fatalf("after overlap: %+v", st)
				}
				// Every later fragment of the key is dropped, even the
				// original ones, so the datagram never completes.
				for _, f := range split(p, 16) {
					_, done, err := r.Add(2, fam.key, f.off, f.more, nil, f.b)
					check(t, r)
					if !errors.Is(err, reasm.ErrTombstoned) || done {
						t.Fatalf("fragment at %d after overlap: err %v done %v", f.off, err, done)
					}
				}
				// The tombstone lasts one timeout; then the key is new.
				later := int64(r.Config().TimeoutIPv6) + 10
				if got := feed(t, r, later, fam.key, split(p, 16)); !bytes.Equal(got, p) {
					t.Fatal("key not reusable after the tombstone expired")
				}
			})
		}
	}
}

func TestAdjacentIsNotOverlap(t *testing.T) {
	r := reasm.New(reasm.Config{})
	p := data(48, 3)
	fs := []frag{{16, true, p[16:32]}, {0, true, p[0:16]}, {32, false, p[32:48]}}
	if got := feed(t, r, 0, key4(1), fs); !bytes.Equal(got, p) {
		t.Fatal("wrong datagram")
	}
}

func TestDuplicate(t *testing.T) {
	for _, k := range []reasm.Key{key4(9), key6(9)} {
		r := reasm.New(reasm.Config{})
		p := data(100, 4)
		fs := split(p, 32)
		for _, f := range fs[:len(fs)-1] {
			for range 3 {
				_, done, err := r.Add(0, k, f.off, f.more, nil, f.b)
				check(t, r)
				if done || (err != nil && !errors.Is(err, reasm.ErrDuplicate)) {
					t.Fatalf("err %v done %v", err, done)
				}
			}
		}
		last := fs[len(fs)-1]
		got, done, err := r.Add(0, k, last.off, last.more, nil, last.b)
		if err != nil || !done || !bytes.Equal(got, p) {
			t.Fatalf("last fragment: err %v done %v", err, done)
		}
		if st := r.Stats(); st.Duplicate != 2*uint64(len(fs)-1) || st.Overlap != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name  string
		key   reasm.Key
		prior []frag // accepted first
		f     frag
		want  error
		alive bool // the datagram survives
	}{
		{"empty", key4(1), nil, frag{8, true, nil}, reasm.ErrBadFragment, false},
		{"unaligned-offset", key4(1), nil, frag{12, false, make([]byte, 8)}, reasm.ErrBadFragment, false},
		{"negative-offset", key4(1), nil, frag{-8, true, make([]byte, 8)}, reasm.ErrBadFragment, false},
		{"middle-not-multiple-of-8", key4(1), nil, frag{8, true, make([]byte, 12)}, reasm.ErrBadFragment, false},
		{"v4-too-big", key4(1), nil, frag{65512, false, make([]byte, 4)}, reasm.ErrTooBig, false},
		{"v6-too-big", key6(1), nil, frag{65528, false, make([]byte, 8)}, reasm.ErrTooBig, false},
		{"two-lasts", key4(1), []frag{{64, false, make([]byte, 10)}}, frag{64, false, make([]byte, 12)}, reasm.ErrLengthConflict, false},
		{"last-before-data", key6(1), []frag{{64, true, make([]byte, 16)}}, frag{8, false, make([]byte, 8)}, reasm.ErrLengthConflict, false},
		{"middle-after-last", key4(1), []frag{{16, false, make([]byte, 8)}}, frag{24, true, make([]byte, 8)}, reasm.ErrLengthConflict, false},
		{"bad-kept-datagram", key4(1), []frag{{16, true, make([]byte, 8)}}, frag{13, true, make([]byte, 8)}, reasm.ErrBadFragment, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reasm.New(reasm.Config{})
			for _, f := range tt.prior {
				if _, _, err := r.Add(0, tt.key, f.off, f.more, nil, f.b); err != nil {
					t.Fatal(err)
				}
			}
			_, done, err := r.Add(0, tt.key, tt.f.off, tt.f.more, nil, tt.f.b)
			check(t, r)
			if !errors.Is(err, tt.want) || done {
				t.Fatalf("err %v done %v, want %v", err, done, tt.want)
			}
			if alive := r.Stats().Datagrams == 1; alive != tt.alive {
				t.Fatalf("datagram alive = %v, want %v", alive, tt.alive)
			}
		})
	}
}

func TestV6MaxBoundary(t *testing.T) {
	r := reasm.New(reasm.Config{})
	// 65535 is a valid IPv6 payload but not an IPv4 one.
	if _, _, err := r.Add(0, key6(1), 65528, false, nil, make([]byte, 7)); err != nil {
		t.Fatalf("v6 end 65535: %v", err)
	}
	if _, _, err := r.Add(0, key4(1), 65512, false, nil, make([]byte, 3)); err != nil {
		t.Fatalf("v4 end 65515: %v", err)
	}
}

func TestAtomic(t *testing.T) {
	r := reasm.New(reasm.Config{})
	p := data(100, 1)
	// A datagram in progress with the same key is not disturbed.
	if _, _, err := r.Add(0, key6(1), 8, false, nil, p[:8]); err != nil {
		t.Fatal(err)
	}
	got, done, err := r.Add(0, key6(1), 0, false, nil, p)
	if err != nil || !done || !bytes.Equal(got, p) {
		t.Fatalf("atomic fragment: err %v done %v", err, done)
	}
	if st := r.Stats(); st.Atomic != 1 || st.Datagrams != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTooManyFragments(t *testing.T) {
	r := reasm.New(reasm.Config{MaxFragmentsPerDatagram: 4})
	for i := range 4 {
		if _, _, err := r.Add(0, key4(1), 8*i, true, nil, make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.Add(0, key4(1), 32, false, nil, make([]byte, 8)); !errors.Is(err, reasm.ErrTooManyFragments) {
		t.Fatalf("err %v", err)
	}
	check(t, r)
	if _, _, err := r.Add(0, key4(1), 40, true, nil, make([]byte, 8)); !errors.Is(err, reasm.ErrTombstoned) {
		t.Fatalf("after drop: err %v", err)
	}
}

func TestTimeout(t *testing.T) {
	cfg := reasm.Config{Timeout: 30 * time.Second, TimeoutIPv6: 60 * time.Second}
	r := reasm.New(cfg)
	if r.Next() != reasm.Never {
		t.Fatal("Next on an empty reassembler")
	}
	hdr4 := []byte{0x45, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	hdr6 := bytes.Repeat([]byte{0x60}, 200) // longer than MaxQuoteHeader
	p := data(64, 5)
	t0 := int64(1e9)
	// v4 with its first fragment, v4 without, v6 with.
	mustAdd(t, r, t0, key4(1), 0, true, hdr4, p[:16])
	mustAdd(t, r, t0+1, key4(2), 16, true, hdr4, p[16:32])
	mustAdd(t, r, t0+2, key6(3), 0, true, hdr6, p[:4*8])
	if got, want := r.Next(), t0+int64(30*time.Second); got != want {
		t.Fatalf("Next = %d, want %d", got, want)
	}
	var got []reasm.Expired
	collect := func(e reasm.Expired) {
		e.Header, e.Data = bytes.Clone(e.Header), bytes.Clone(e.Data)
		got = append(got, e)
	}
	if n := r.Tick(t0+int64(30*time.Second)-1, collect); n != 0 {
		t.Fatalf("expired %d early", n)
	}
	if n := r.Tick(t0+int64(30*time.Second)+1, collect); n != 2 {
		t.Fatalf("expired %d, want 2", n)
	}
	check(t, r)
	if len(got) != 1 || got[0].Key != key4(1) || !bytes.Equal(got[0].Header, hdr4) || !bytes.Equal(got[0].Data, p[:8]) {
		t.Fatalf("v4 expiry: %+v", got)
	}
	if want := t0 + 2 + int64(60*time.Second); r.Next() != want {
		t.Fatalf("Next = %d, want %d", r.Next(), want)
	}
	got = nil
	if n := r.Tick(t0+int64(61*time.Second), collect); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if len(got) != 1 || got[0].Key != key6(3) || !bytes.Equal(got[0].Header, hdr6[:reasm.MaxQuoteHeader]) || !bytes.Equal(got[0].Data, p[:8]) {
		t.Fatalf("v6 expiry: %+v", got)
	}
	st := r.Stats()
	if st.Timeout != 3 || st.TimeoutQuoted != 2 || st.Datagrams != 0 || st.BytesHeld != 0 || r.Next() != reasm.Never {
		t.Fatalf("stats %+v", st)
	}
	// A short first fragment quotes what it has.
	mustAdd(t, r, 0, key4(5), 0, true, nil, p[:8])
	r.Tick(int64(time.Hour), func(e reasm.Expired) {
		if len(e.Header) != 0 || !bytes.Equal(e.Data, p[:8]) {
			t.Fatalf("quote %+v", e)
		}
	})
}

func mustAdd(t *testing.T, r *reasm.Reassembler, now int64, k reasm.Key, off int, more bool, hdr, b []byte) {
	t.Helper()
	if _, _, err := r.Add(now, k, off, more, hdr, b); err != nil {
		t.Fatal(err)
	}
	check(t, r)
}

func TestEvictOldest(t *testing.T) {
	// Room for four chunks: two 3000-byte datagrams (two chunks each).
	r := reasm.New(reasm.Config{MaxBytes: 4 * reasm.ChunkSize, MaxDatagrams: 8})
	p := data(3000, 1)
	fs := split(p, 1496)
	mustAdd(t, r, 1, key4(1), fs[0].off, fs[0].more, nil, fs[0].b)
	mustAdd(t, r, 1, key4(1), fs[1].off, fs[1].more, nil, fs[1].b)
	mustAdd(t, r, 2, key6(2), fs[0].off, fs[0].more, nil, fs[0].b)
	mustAdd(t, r, 2, key6(2), fs[1].off, fs[1].more, nil, fs[1].b)
	// A third datagram evicts the oldest (key4(1)), then completes.
	if got := feed(t, r, 3, key4(3), fs); !bytes.Equal(got, p) {
		t.Fatal("wrong datagram")
	}
	if st := r.Stats(); st.Evicted != 1 {
		t.Fatalf("evicted %d", st.Evicted)
	}
	// key6(2) survived and completes; key4(1) starts over.
	if got, done, err := r.Add(4, key6(2), fs[2].off, fs[2].more, nil, fs[2].b); err != nil || !done || !bytes.Equal(got, p) {
		t.Fatalf("survivor: err %v done %v", err, done)
	}
	if _, done, err := r.Add(4, key4(1), fs[2].off, fs[2].more, nil, fs[2].b); err != nil || done {
		t.Fatalf("evicted key: err %v done %v", err, done)
	}
	check(t, r)

	// Slots: with MaxDatagrams 2 a third key evicts the oldest slot.
	r = reasm.New(reasm.Config{MaxDatagrams: 2})
	for i := range uint16(5) {
		mustAdd(t, r, int64(i), key4(i), 8, true, nil, p[:8])
	}
	if st := r.Stats(); st.Evicted != 3 || st.Datagrams != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoSpace(t *testing.T) {
	r := reasm.New(reasm.Config{MaxBytes: 4 * reasm.ChunkSize})
	p := data(5*reasm.ChunkSize, 1)
	mustAdd(t, r, 0, key6(9), 0, true, nil, p[:8]) // evicted below
	fs := split(p, 1024)
	var err error
	for _, f := range fs {
		if _, _, err = r.Add(0, key4(1), f.off, f.more, nil, f.b); err != nil {
			break
		}
	}
	check(t, r)
	if !errors.Is(err, reasm.ErrNoSpace) {
		t.Fatalf("err %v, want ErrNoSpace", err)
	}
	if st := r.Stats(); st.NoSpace != 1 || st.Datagrams != 0 || st.BytesHeld != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFlood sends 100k fragments of distinct datagrams that never complete:
// memory must stay within the budget, both by the reassembler's accounting
// and by the Go heap.
func TestFlood(t *testing.T) {
	tests := []struct {
		name    string
		cfg     reasm.Config
		overlap bool // every datagram is poisoned by an overlap (tombstone churn)
	}{
		{"slot-bound", reasm.Config{MaxBytes: 1 << 20, MaxDatagrams: 256}, false},
		{"byte-bound", reasm.Config{MaxBytes: 64 << 10, MaxDatagrams: 1024}, false},
		{"overlaps", reasm.Config{MaxBytes: 64 << 10, MaxDatagrams: 128}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reasm.New(tt.cfg)
			cfg := r.Config()
			payload := data(1480, 1)
			rng := rand.New(rand.NewPCG(1, 2))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const n = 100_000
			for i := range n {
				var k reasm.Key
				if i%2 == 0 {
					k = key4(uint16(i))
				} else {
					k = key6(uint32(i))
				}
				off := int(rng.Uint32N(40)) * 1480
				if tt.overlap && i%2 == 1 {
					off = 1480 * 3
				}
				r.Add(int64(i), k, off, true, nil, payload)
				if tt.overlap {
					r.Add(int64(i), k, off+8, true, nil, payload)
				}
				st := r.Stats()
				if st.BytesHeld > cfg.MaxBytes || st.Datagrams > cfg.MaxDatagrams {
					t.Fatalf("fragment %d: over budget: %+v", i, st)
				}
				if i%4096 == 0 {
					check(t, r)
				}
			}
			check(t, r)
			runtime.GC()
			runtime.ReadMemStats(&after)
			grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("heap grew %d bytes over %d datagrams; stats %+v", grew, n, r.Stats())
			if grew > 256<<10 {
				t.Fatalf("heap grew %d bytes during the flood", grew)
			}
			st := r.Stats()
			if tt.overlap {
				if st.Overlap != n {
					t.Fatalf("overlaps %d", st.Overlap)
				}
			} else if st.Evicted < n-uint64(cfg.MaxDatagrams) {
				t.Fatalf("evicted %d", st.Evicted)
			}
			runtime.KeepAlive(r)
		})
	}
}

func TestZeroAllocs(t *testing.T) {
	r := reasm.New(reasm.Config{MaxDatagrams: 64})
	p := data(3000, 1)
	fs := split(p, 1480)
	id := uint16(0)
	cycle := func() {
		id++
		k := key4(id)
		for _, f := range fs {
			r.Add(0, k, f.off, f.more, nil, f.b)
		}
		// And a datagram left behind, evicted later.
		r.Add(0, key6(uint32(id)), 8, true, nil, p[:8])
	}
	for range 1000 { // reach steady state
		cycle()
	}
	if a := testing.AllocsPerRun(10000, cycle); a != 0 {
		t.Fatalf("%v allocations per cycle", a)
	}
	timeouts := func() {
		id++
		r.Add(int64(id), key4(id), 0, true, nil, p[:8])
		r.Tick(int64(id)+int64(r.Config().Timeout), nil)
	}
	for range 1000 {
		timeouts()
	}
	if a := testing.AllocsPerRun(10000, timeouts); a != 0 {
		t.Fatalf("%v allocations per timeout", a)
	}
	check(t, r)
}

func BenchmarkReassemble(b *testing.B) {
	r := reasm.New(reasm.Config{})
	p := data(8000, 1)
	fs := split(p, 1480)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := key4(uint16(i))
		for _, f := range fs {
			r.Add(0, k, f.off, f.more, nil, f.b)
		}
	}
}
