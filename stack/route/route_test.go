package route_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/stack/route"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func mustAdd(t testing.TB, tb *route.Table, rs ...route.Route) {
	t.Helper()
	for _, r := range rs {
		if err := tb.Add(r); err != nil {
			t.Fatalf("Add(%v): %v", r, err)
		}
	}
}

// model is the brute-force reference: every route in a slice, the best one
// found by a full scan.
type model []route.Route

func (m *model) add(r route.Route) {
	for i := range *m {
		if (*m)[i].Dst == r.Dst && (*m)[i].Metric == r.Metric {
			(*m)[i] = r
			return
		}
	}
	*m = append(*m, r)
}

func (m *model) del(dst netip.Prefix, metric int) bool {
	for i := range *m {
		if (*m)[i].Dst == dst && (*m)[i].Metric == metric {
			*m = append((*m)[:i], (*m)[i+1:]...)
			return true
		}
	}
	return false
}

func (m model) lookup(a netip.Addr) (route.Route, bool) {
	a = a.Unmap()
	best, ok := route.Route{}, false
	for _, r := range m {
		if !r.Dst.Contains(a) {
			continue
		}
		if !ok || r.Dst.Bits() > best.Dst.Bits() || r.Dst.Bits() == best.Dst.Bits() && r.Metric < best.Metric {
			best, ok = r, true
		}
	}
	return best, ok
}

func TestLookupBasics(t *testing.T) {
	tb := route.New()
	if r, ok := tb.Lookup(addr("10.0.0.1")); ok || r != nil {
		t.Fatalf("empty table: Lookup = %v, %v", r, ok)
	}
	mustAdd(t, tb,
		route.Route{Dst: pfx("0.0.0.0/0"), Gateway: addr("192.0.2.1")},
		route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("192.0.2.2"), Port: 1},
		route.Route{Dst: pfx("10.1.0.0/16"), MTU: 1400},
		route.Route{Dst: pfx("10.1.2.3/32"), Gateway: addr("192.0.2.3")},
		route.Route{Dst: pfx("::/0"), Gateway: addr("fe80::1")},
		route.Route{Dst: pfx("2001:db8::/32"), Port: 2},
		route.Route{Dst: pfx("2001:db8:1::/48"), Gateway: addr("2001:db8::1")},
		route.Route{Dst: pfx("2001:db8:1::5/128"), Src: addr("2001:db8::9")},
	)
	tests := []struct {
		dst  string
		want string // Dst of the route, "" for none
		hop  string
	}{
		{"8.8.8.8", "0.0.0.0/0", "192.0.2.1"},
		{"10.200.0.1", "10.0.0.0/8", "192.0.2.2"},
		{"10.1.200.1", "10.1.0.0/16", "10.1.200.1"},
		{"10.1.2.3", "10.1.2.3/32", "192.0.2.3"},
		{"10.1.2.4", "10.1.0.0/16", "10.1.2.4"},
		{"::ffff:10.1.2.4", "10.1.0.0/16", "10.1.2.4"},
		{"2001:db8:2::1", "2001:db8::/32", "2001:db8:2::1"},
		{"2001:db8:1::1", "2001:db8:1::/48", "2001:db8::1"},
		{"2001:db8:1::5", "2001:db8:1::5/128", "2001:db8:1::5"},
		{"2001:db9::1", "::/0", "fe80::1"},
		{"fe80::1%eth0", "::/0", "fe80::1"},
	}
	for _, tt := range tests {
		r, ok := tb.Lookup(addr(tt.dst))
		if !ok {
			t.Errorf("Lookup(%s): no route, want %s", tt.dst, tt.want)
			continue
		}
		if r.Dst != pfx(tt.want) {
			t.Errorf("Lookup(%s) = %v, want %s", tt.dst, r, tt.want)
		}
		if hop := route.NextHop(r, addr(tt.dst)); hop.WithZone("") != addr(tt.hop) {
			t.Errorf("NextHop(%v, %s) = %v, want %s", r, tt.dst, hop, tt.hop)
		}
	}
	if r, ok := tb.Lookup(netip.Addr{}); ok {
		t.Errorf("Lookup(zero Addr) = %v", r)
	}
	if r, ok := tb.Lookup4([4]byte{10, 1, 2, 3}); !ok || r.Gateway != addr("192.0.2.3") {
		t.Errorf("Lookup4(10.1.2.3) = %v, %v", r, ok)
	}
	if r, ok := tb.Lookup6(addr("2001:db8:1::5").As16()); !ok || r.Src != addr("2001:db8::9") {
		t.Errorf("Lookup6(2001:db8:1::5) = %v, %v", r, ok)
	}
}

func TestNoDefault(t *testing.T) {
	tb := route.New()
	mustAdd(t, tb, route.Route{Dst: pfx("10.0.0.0/8")}, route.Route{Dst: pfx("2001:db8::/32")})
	for _, a := range []string{"11.0.0.1", "9.255.255.255", "2001:db9::", "::1"} {
		if r, ok := tb.Lookup(addr(a)); ok {
			t.Errorf("Lookup(%s) = %v, want none", a, r)
		}
	}
	// One family's routes never answer for the other.
	if r, ok := tb.Lookup(addr("::a00:1")); ok { // ::10.0.0.1, IPv4-compatible, not mapped
		t.Errorf("Lookup(::a00:1) = %v, want none", r)
	}
}

func TestMetric(t *testing.T) {
	tb := route.New()
	d := pfx("10.0.0.0/8")
	mustAdd(t, tb,
		route.Route{Dst: d, Gateway: addr("192.0.2.20"), Metric: 20},
		route.Route{Dst: d, Gateway: addr("192.0.2.10"), Metric: 10},
		route.Route{Dst: d, Gateway: addr("192.0.2.30"), Metric: 30},
	)
	want := func(gw string) {
		t.Helper()
		r, ok := tb.Lookup(addr("10.9.9.9"))
		if gw == "" {
			if ok {
				t.Fatalf("Lookup = %v, want none", r)
			}
			return
		}
		if !ok || r.Gateway != addr(gw) {
			t.Fatalf("Lookup = %v, %v, want gateway %s", r, ok, gw)
		}
	}
	want("192.0.2.10")
	// Replacing (Dst, Metric) updates in place: no new route.
	mustAdd(t, tb, route.Route{Dst: d, Gateway: addr("192.0.2.11"), Metric: 10})
	if tb.Len() != 3 {
		t.Fatalf("Len = %d after a replacement, want 3", tb.Len())
	}
	want("192.0.2.11")
	if !tb.Delete(d, 10) {
		t.Fatal("Delete(metric 10) = false")
	}
	want("192.0.2.20")
	if tb.Delete(d, 10) {
		t.Fatal("second Delete(metric 10) = true")
	}
	if tb.Delete(d, 25) {
		t.Fatal("Delete(metric 25) = true")
	}
	if !tb.Delete(d, 30) {
		t.Fatal("Delete(metric 30) = false")
	}
	want("192.0.2.20")
	if !tb.Delete(d, 20) {
		t.Fatal("Delete(metric 20) = false")
	}
	want("")
	if tb.Len() != 0 || len(tb.Routes()) != 0 {
		t.Fatalf("Len = %d, Routes = %v after deleting all", tb.Len(), tb.Routes())
	}
}

func TestPointerStable(t *testing.T) {
	tb := route.New()
	mustAdd(t, tb, route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("192.0.2.1")})
	r, _ := tb.Lookup(addr("10.0.0.1"))
	mustAdd(t, tb, route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("192.0.2.2")})
	for i := range 1000 {
		mustAdd(t, tb, route.Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 0}), 24)})
	}
	if r.Gateway != addr("192.0.2.1") {
		t.Errorf("a looked-up route changed under the caller: %v", r)
	}
	if r2, _ := tb.Lookup(addr("10.0.0.1")); r2.Gateway != addr("192.0.2.2") {
		t.Errorf("Lookup after replace = %v", r2)
	}
}

func TestRoutesOrder(t *testing.T) {
	tb := route.New()
	in := []route.Route{
		{Dst: pfx("::/0"), Gateway: addr("fe80::1"), Metric: 5},
		{Dst: pfx("0.0.0.0/0"), Gateway: addr("192.0.2.1"), Metric: 100},
		{Dst: pfx("0.0.0.0/0"), Gateway: addr("192.0.2.2"), Metric: 50},
		{Dst: pfx("10.0.0.0/8")},
		{Dst: pfx("192.0.2.0/24"), Port: 1},
		{Dst: pfx("10.1.0.0/24")},
		{Dst: pfx("2001:db8::/32")},
	}
	mustAdd(t, tb, in...)
	want := []string{
		"10.1.0.0/24 port 0 metric 0",
		"192.0.2.0/24 port 1 metric 0",
		"10.0.0.0/8 port 0 metric 0",
		"0.0.0.0/0 via 192.0.2.2 port 0 metric 50",
		"0.0.0.0/0 via 192.0.2.1 port 0 metric 100",
		"2001:db8::/32 port 0 metric 0",
		"::/0 via fe80::1 port 0 metric 5",
	}
	got := tb.Routes()
	if len(got) != len(want) {
		t.Fatalf("Routes() = %v, want %d routes", got, len(want))
	}
	for i := range got {
		if got[i].String() != want[i] {
			t.Errorf("Routes()[%d] = %q, want %q", i, got[i].String(), want[i])
		}
	}
}

func TestAddValidation(t *testing.T) {
	tests := []struct {
		r    route.Route
		frag string // expected in the message
	}{
		{route.Route{}, "not a valid prefix"},
		{route.Route{Dst: netip.PrefixFrom(addr("10.0.0.0"), 33)}, "not a valid prefix"},
		{route.Route{Dst: pfx("10.0.0.1/24")}, "host bits set (the prefix is 10.0.0.0/24)"},
		{route.Route{Dst: pfx("2001:db8::1/64")}, "host bits set"},
		{route.Route{Dst: pfx("::ffff:10.0.0.0/104")}, "IPv4-mapped"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("fe80::1")}, "family"},
		{route.Route{Dst: pfx("::/0"), Gateway: addr("192.0.2.1")}, "family"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("0.0.0.0")}, "unspecified"},
		{route.Route{Dst: pfx("::/0"), Gateway: addr("::")}, "unspecified"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("224.0.0.1")}, "multicast"},
		{route.Route{Dst: pfx("::/0"), Gateway: addr("ff02::1")}, "multicast"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("255.255.255.255")}, "broadcast"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Src: addr("2001:db8::1")}, "source"},
		{route.Route{Dst: pfx("10.0.0.0/8"), MTU: -1}, "MTU"},
		{route.Route{Dst: pfx("10.0.0.0/8"), MTU: 67}, "MTU"},
		{route.Route{Dst: pfx("::/0"), MTU: 1279}, "MTU"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Metric: -1}, "metric"},
		{route.Route{Dst: pfx("10.0.0.0/8"), Port: -1}, "port"},
	}
	tb := route.New()
	for _, tt := range tests {
		err := tb.Add(tt.r)
		if err == nil {
			t.Errorf("Add(%+v) = nil, want an error about %q", tt.r, tt.frag)
			continue
		}
		if !errors.Is(err, route.ErrInvalid) {
			t.Errorf("Add(%+v) = %v, not ErrInvalid", tt.r, err)
		}
		if !contains(err.Error(), tt.frag) {
			t.Errorf("Add(%+v) = %q, want it to mention %q", tt.r, err, tt.frag)
		}
	}
	if tb.Len() != 0 {
		t.Fatalf("rejected routes were added: %v", tb.Routes())
	}
	// Accepted with normalisation: mapped gateway, zoned gateway.
	mustAdd(t, tb,
		route.Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("::ffff:192.0.2.1"), MTU: 68},
		route.Route{Dst: pfx("::/0"), Gateway: addr("fe80::1%eth0"), MTU: 1280},
	)
	got := tb.Routes()
	if got[0].Gateway != addr("192.0.2.1") || got[1].Gateway != addr("fe80::1") {
		t.Errorf("gateways not normalised: %v", got)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// randPrefix draws a prefix of family v4 or v6 from a small pool of
// addresses, so that prefixes nest and collide often.
func randPrefix(rng *rand.Rand, v4 bool, lens []int) netip.Prefix {
	l := lens[rng.IntN(len(lens))]
	return netip.PrefixFrom(randAddr(rng, v4), l).Masked()
}

// randAddr draws from a space with few distinct leading bits, so that
// random addresses often fall inside random prefixes.
func randAddr(rng *rand.Rand, v4 bool) netip.Addr {
	if v4 {
		x := rng.Uint32() & 0xc3c3c3ff
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32()) & []byte{0x20, 0x01, 0x81, 0x03, 0x11, 0x80, 0x01, 0xff}[i%8]
	}
	return netip.AddrFrom16(b)
}

func TestLPMAgainstModel(t *testing.T) {
	lens4 := []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 30, 31, 32}
	lens6 := []int{0, 1, 3, 16, 32, 47, 48, 56, 63, 64, 65, 96, 112, 127, 128}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		tb := route.New()
		var m model
		n := 1 + rng.IntN(400)
		check := func(stage string) {
			t.Helper()
			for range 2000 {
				a := randAddr(rng, rng.IntN(2) == 0)
				if rng.IntN(10) == 0 && len(m) > 0 { // an address inside a route
					r := m[rng.IntN(len(m))]
					a = r.Dst.Addr()
				}
				want, wok := m.lookup(a)
				got, gok := tb.Lookup(a)
				if wok != gok || gok && *got != want {
					t.Fatalf("seed %d %s: Lookup(%v) = %v, %v; want %v, %v", seed, stage, a, got, gok, want, wok)
				}
			}
			if tb.Len() != len(m) || len(tb.Routes()) != len(m) {
				t.Fatalf("seed %d %s: Len = %d, Routes = %d, want %d", seed, stage, tb.Len(), len(tb.Routes()), len(m))
			}
		}
		for i := range n {
			v4 := rng.IntN(2) == 0
			lens := lens6
			if v4 {
				lens = lens4
			}
			r := route.Route{Dst: randPrefix(rng, v4, lens), Metric: rng.IntN(3), Port: i}
			mustAdd(t, tb, r)
			m.add(r)
		}
		check("after adds")
		// Delete about half, some of them absent.
		for range n {
			var dst netip.Prefix
			metric := rng.IntN(3)
			if len(m) > 0 && rng.IntN(4) != 0 {
				dst = m[rng.IntN(len(m))].Dst
			} else {
				dst = randPrefix(rng, rng.IntN(2) == 0, lens4)
				if !dst.Addr().Is4() {
					dst = randPrefix(rng, false, lens6)
				}
			}
			if got, want := tb.Delete(dst, metric), m.del(dst, metric); got != want {
				t.Fatalf("seed %d: Delete(%v, %d) = %v, want %v", seed, dst, metric, got, want)
			}
		}
		check("after deletes")
		for i := range n / 2 {
			v4 := rng.IntN(2) == 0
			lens := lens6
			if v4 {
				lens = lens4
			}
			r := route.Route{Dst: randPrefix(rng, v4, lens), Metric: rng.IntN(3), Port: 1000 + i}
			mustAdd(t, tb, r)
			m.add(r)
		}
		check("after re-adds")
	}
}

// TestHashChurn adds and deletes many prefixes of one length, which works
// the backward-shift deletion of a single per-length table hard.
func TestHashChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	tb := route.New()
	live := map[netip.Prefix]bool{}
	for step := range 20000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(8)), byte(rng.IntN(64)), 0}), 24)
		if live[p] {
			if !tb.Delete(p, 0) {
				t.Fatalf("step %d: Delete(%v) = false", step, p)
			}
			delete(live, p)
		} else {
			mustAdd(t, tb, route.Route{Dst: p})
			live[p] = true
		}
		if step%500 == 0 {
			for a := range 8 {
				for b := range 64 {
					q := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(a), byte(b), 0}), 24)
					r, ok := tb.Lookup(q.Addr().Next())
					if ok != live[q] || ok && r.Dst != q {
						t.Fatalf("step %d: Lookup(%v) = %v, %v; live %v", step, q, r, ok, live[q])
					}
				}
			}
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	tb := route.New()
	mustAdd(t, tb,
		route.Route{Dst: pfx("0.0.0.0/0"), Gateway: addr("192.0.2.1")},
		route.Route{Dst: pfx("10.0.0.0/8")},
		route.Route{Dst: pfx("::/0"), Gateway: addr("fe80::1")},
		route.Route{Dst: pfx("2001:db8::/32")},
	)
	a4, a6 := addr("10.1.2.3"), addr("2001:db8::1")
	b4, b6 := a4.As4(), a6.As16()
	var sink int
	n := testing.AllocsPerRun(1000, func() {
		r, _ := tb.Lookup4(b4)
		sink += r.Port
		r, _ = tb.Lookup6(b6)
		sink += r.Port
		r, _ = tb.Lookup(a4)
		sink += route.NextHop(r, a4).BitLen()
		r, _ = tb.Lookup(a6)
		sink += route.NextHop(r, a6).BitLen()
	})
	if n != 0 {
		t.Errorf("lookups allocate: %v allocs/op", n)
	}
	_ = sink
}

// table builds a table of n routes per family shaped like a real one:
// mostly /24 and /48, some shorter, a default route.
func table(b *testing.B, n int) (*route.Table, [][4]byte, [][16]byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	tb := route.New()
	mustAdd(b, tb, route.Route{Dst: pfx("0.0.0.0/0"), Gateway: addr("192.0.2.1")},
		route.Route{Dst: pfx("::/0"), Gateway: addr("fe80::1")})
	lens4 := []int{8, 12, 16, 19, 20, 21, 22, 23, 24, 24, 24, 24, 24, 24, 32}
	lens6 := []int{29, 32, 36, 40, 44, 48, 48, 48, 48, 48, 56, 64, 128}
	for tb.Len() < 2*n {
		a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		_ = tb.Add(route.Route{Dst: netip.PrefixFrom(a, lens4[rng.IntN(len(lens4))]).Masked()})
		var b16 [16]byte
		b16[0], b16[1] = 0x20, 0x01
		for i := 2; i < 16; i++ {
			b16[i] = byte(rng.Uint32())
		}
		b16[2] &= 0x0f
		_ = tb.Add(route.Route{Dst: netip.PrefixFrom(netip.AddrFrom16(b16), lens6[rng.IntN(len(lens6))]).Masked()})
	}
	// Destinations: half inside a route, half random.
	var d4 [][4]byte
	var d6 [][16]byte
	rs := tb.Routes()
	for i := range 1024 {
		r := rs[rng.IntN(len(rs))]
		if i%2 == 0 {
			if r.Dst.Addr().Is4() {
				d4 = append(d4, r.Dst.Addr().As4())
			} else {
				d6 = append(d6, r.Dst.Addr().As16())
			}
			continue
		}
		d4 = append(d4, [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		var b16 [16]byte
		b16[0], b16[1], b16[2] = 0x20, 0x01, byte(rng.Uint32())&0x0f
		d6 = append(d6, b16)
	}
	return tb, d4, d6
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10000} {
		tb, d4, d6 := table(b, n)
		b.Run(fmt.Sprintf("v4/%d", n), func(b *testing.B) {
			var sink int
			for i := 0; b.Loop(); i++ {
				r, _ := tb.Lookup4(d4[i%len(d4)])
				sink += r.Port
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("v6/%d", n), func(b *testing.B) {
			var sink int
			for i := 0; b.Loop(); i++ {
				r, _ := tb.Lookup6(d6[i%len(d6)])
				sink += r.Port
			}
			_ = sink
		})
	}
}

func BenchmarkAdd10k(b *testing.B) {
	for b.Loop() {
		table(b, 10000)
	}
}
