package route

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Route is one entry of a Table.
type Route struct {
	Dst     netip.Prefix // destination; 0.0.0.0/0 or ::/0 is the default route
	Gateway netip.Addr   // next hop; the zero Addr means on-link (the destination itself is the next hop)
	Src     netip.Addr   // preferred source address; zero = the caller picks
	MTU     int          // path MTU for this route; 0 = the link's
	Metric  int          // among equal prefixes, the lowest metric wins
	Port    int          // output port index (the stack may have several ports); default 0
}

// String formats r in the style of ip-route(8).
func (r Route) String() string {
	s := r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	s += fmt.Sprintf(" port %d", r.Port)
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	if r.MTU != 0 {
		s += fmt.Sprintf(" mtu %d", r.MTU)
	}
	return s + fmt.Sprintf(" metric %d", r.Metric)
}

// NextHop returns the address to resolve on the link to send to dst over r:
// r's gateway, or dst itself (IPv4-mapped addresses unmapped) for an
// on-link route.
func NextHop(r *Route, dst netip.Addr) netip.Addr {
	if r.Gateway.IsValid() {
		return r.Gateway
	}
	return dst.Unmap()
}

// ErrInvalid is wrapped by every error Add returns.
var ErrInvalid = errors.New("invalid route")

// Minimum MTUs: RFC 791 (every IPv4 module forwards 68-octet datagrams
// without fragmenting) and RFC 8200 section 5.
const (
	minMTU4 = 68
	minMTU6 = 1280
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("route: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Table is a routing table. Make one with New. It is owned by one
// goroutine and is not safe for concurrent use.
type Table struct {
	byDst map[netip.Prefix][]*Route // each sorted by metric, lowest first
	n     int

	v4    [33]hash4
	v6    [129]hash6
	lens4 []uint8 // prefix lengths with at least one route, longest first
	lens6 []uint8
}

// New returns an empty table.
func New() *Table {
	return &Table{byDst: make(map[netip.Prefix][]*Route)}
}

// Len returns the number of routes.
func (t *Table) Len() int { return t.n }

// normalize validates r and returns it in the form the table stores:
// gateway and source unmapped and without zone.
func normalize(r Route) (Route, error) {
	d := r.Dst
	if !d.IsValid() {
		return r, invalid("destination %v is not a valid prefix", d)
	}
	if d.Addr().Is4In6() {
		return r, invalid("destination %v is IPv4-mapped; use the IPv4 prefix", d)
	}
	if m := d.Masked(); m != d {
		return r, invalid("destination %v has host bits set (the prefix is %v)", d, m)
	}
	v4 := d.Addr().Is4()
	check := func(what string, a netip.Addr) (netip.Addr, error) {
		if !a.IsValid() {
			return a, nil
		}
		a = a.Unmap().WithZone("")
		switch {
		case a.Is4() != v4:
			return a, invalid("%s %v is not of the family of destination %v", what, a, d)
		case a.IsUnspecified():
			return a, invalid("%s %v is unspecified", what, a)
		case a.IsMulticast():
			return a, invalid("%s %v is multicast", what, a)
		case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return a, invalid("%s %v is the broadcast address", what, a)
		}
		return a, nil
	}
	var err error
	if r.Gateway, err = check("gateway", r.Gateway); err != nil {
		return r, err
	}
	if r.Src, err = check("source", r.Src); err != nil {
		return r, err
	}
	minMTU := minMTU6
	if v4 {
		minMTU = minMTU4
	}
	switch {
	case r.MTU < 0 || r.MTU > 0 && r.MTU < minMTU:
		return r, invalid("MTU %d of %v is below the minimum of %d", r.MTU, d, minMTU)
	case r.Metric < 0:
		return r, invalid("metric %d of %v is negative", r.Metric, d)
	case r.Port < 0:
		return r, invalid("port %d of %v is negative", r.Port, d)
	}
	return r, nil
}

// Add adds r, or replaces the route with the same Dst and Metric. It
// returns an error wrapping ErrInvalid, and changes nothing, if r.Dst is
// not a valid prefix, is IPv4-mapped or has bits set beyond its length (use
// netip.Prefix.Masked), if the gateway or the source is of the other family
// than Dst, unspecified, multicast or broadcast, if the MTU is below the
// minimum of the family (68 or 1280) and not 0, or if the metric or the
// port is negative. Zones and IPv4 mapping of the gateway and the source
// are removed: Port says which link a route uses.
func (t *Table) Add(r Route) error {
	r, err := normalize(r)
	if err != nil {
		return err
	}
	p := new(Route)
	*p = r
	rs := t.byDst[r.Dst]
	i, found := slices.BinarySearchFunc(rs, r.Metric, func(e *Route, m int) int { return cmp.Compare(e.Metric, m) })
	if found {
		rs[i] = p
	} else {
		rs = slices.Insert(rs, i, p)
		t.n++
	}
	t.byDst[r.Dst] = rs
	if i == 0 {
		t.setBest(r.Dst, rs[0])
	}
	return nil
}

// Delete removes the route to dst with the given metric and reports
// whether there was one.
func (t *Table) Delete(dst netip.Prefix, metric int) bool {
	rs := t.byDst[dst]
	i, found := slices.BinarySearchFunc(rs, metric, func(e *Route, m int) int { return cmp.Compare(e.Metric, m) })
	if !found {
		return false
	}
	rs = slices.Delete(rs, i, i+1)
	t.n--
	if len(rs) == 0 {
		delete(t.byDst, dst)
		t.setBest(dst, nil)
		return true
	}
	t.byDst[dst] = rs
	if i == 0 {
		t.setBest(dst, rs[0])
	}
	return true
}

// setBest points the lookup structure's entry for dst at r, or removes it
// when r is nil.
func (t *Table) setBest(dst netip.Prefix, r *Route) {
	bits := dst.Bits()
	if dst.Addr().Is4() {
		h := &t.v4[bits]
		k := binary.BigEndian.Uint32(dst.Addr().AsSlice())
		if r != nil {
			if h.set(k, r) {
				t.lens4 = addLen(t.lens4, bits)
			}
		} else if h.del(k) && h.n == 0 {
			t.lens4 = delLen(t.lens4, bits)
		}
		return
	}
	h := &t.v6[bits]
	a := dst.Addr().As16()
	k := key6{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
	if r != nil {
		if h.set(k, r) {
			t.lens6 = addLen(t.lens6, bits)
		}
	} else if h.del(k) && h.n == 0 {
		t.lens6 = delLen(t.lens6, bits)
	}
}

// addLen adds bits to the descending list ls if it is not there.
func addLen(ls []uint8, bits int) []uint8 {
	i, found := slices.BinarySearchFunc(ls, uint8(bits), func(e, b uint8) int { return cmp.Compare(b, e) })
	if found {
		return ls
	}
	return slices.Insert(ls, i, uint8(bits))
}

func delLen(ls []uint8, bits int) []uint8 {
	if i := slices.Index(ls, uint8(bits)); i >= 0 {
		return slices.Delete(ls, i, i+1)
	}
	return ls
}

// Routes returns a copy of every route, IPv4 first, then by prefix length
// (longest first), then by metric (lowest first), then by address.
func (t *Table) Routes() []Route {
	out := make([]Route, 0, t.n)
	for _, rs := range t.byDst {
		for _, r := range rs {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		if a4, b4 := a.Dst.Addr().Is4(), b.Dst.Addr().Is4(); a4 != b4 {
			if a4 {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.Dst.Bits(), a.Dst.Bits()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		return a.Dst.Addr().Compare(b.Dst.Addr())
	})
	return out
}

// Lookup4 returns the best route to dst. It does not allocate. The route
// must not be modified; it is the table's current one until the next Add
// or Delete.
func (t *Table) Lookup4(dst [4]byte) (r *Route, ok bool) {
	k := binary.BigEndian.Uint32(dst[:])
	for _, l := range t.lens4 {
		if r := t.v4[l].get(k & mask32(l)); r != nil {
			return r, true
		}
	}
	return nil, false
}

// Lookup6 is Lookup4 for IPv6. It does not allocate.
func (t *Table) Lookup6(dst [16]byte) (r *Route, ok bool) {
	hi := binary.BigEndian.Uint64(dst[:8])
	lo := binary.BigEndian.Uint64(dst[8:])
	for _, l := range t.lens6 {
		k := key6{hi, 0}
		if l <= 64 {
			k.hi &= mask64(l)
		} else {
			k.lo = lo & mask64(l-64)
		}
		if r := t.v6[l].get(k); r != nil {
			return r, true
		}
	}
	return nil, false
}

// Lookup returns the best route to dst, in the IPv4 table for an IPv4 or
// IPv4-mapped IPv6 address. It does not allocate.
func (t *Table) Lookup(dst netip.Addr) (*Route, bool) {
	dst = dst.Unmap()
	switch {
	case dst.Is4():
		return t.Lookup4(dst.As4())
	case dst.Is6():
		return t.Lookup6(dst.As16())
	}
	return nil, false
}

func mask32(bits uint8) uint32 { return ^(^uint32(0) >> bits) }
func mask64(bits uint8) uint64 { return ^(^uint64(0) >> bits) }
