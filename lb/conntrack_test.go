package lb

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/tygress/tygress/proto"
)

func flowKey(srcPort uint16) Key {
	var k Key
	k.Flow.SetIPv4([4]byte{192, 0, 2, 7}, [4]byte{10, 0, 0, 100})
	k.Flow.SrcPort, k.Flow.DstPort, k.Flow.Proto = srcPort, 80, proto.IPProtoTCP
	return k
}

func val(n uint16) Value { return Value{Port: n, Backend: n} }

func smallTable(tb testing.TB, capacity int, full FullPolicy) *ConnTable {
	tb.Helper()
	t, err := NewConnTable(TableOptions{Capacity: capacity, TCPTimeout: 100, TCPClosingTimeout: 10, UDPTimeout: 50, Full: full, Seed: 7})
	// TouchGranularity 0: exact LRU, which the model mirrors.
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestConnTableOptions(t *testing.T) {
	for _, o := range []TableOptions{
		{Capacity: 0, TCPTimeout: 1, TCPClosingTimeout: 1, UDPTimeout: 1},
		{Capacity: MaxCapacity + 1, TCPTimeout: 1, TCPClosingTimeout: 1, UDPTimeout: 1},
		{Capacity: 10, TCPTimeout: 0, TCPClosingTimeout: 1, UDPTimeout: 1},
		{Capacity: 10, TCPTimeout: 1, TCPClosingTimeout: 1, UDPTimeout: 1, Full: 9},
	} {
		if _, err := NewConnTable(o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%+v: err %v, want ErrBadOptions", o, err)
		}
	}
	if _, err := NewConnTable(DefaultTableOptions()); err != nil {
		t.Fatal(err)
	}
}

func TestConnTableBasic(t *testing.T) {
	ct := smallTable(t, 4, EvictLRU)
	k1, r1 := flowKey(1), flowKey(1001)
	if _, ok := ct.Lookup(&k1, 0); ok {
		t.Fatal("hit in an empty table")
	}
	ref, ok := ct.Insert(&k1, &r1, val(1), ClassTCP, 0)
	if !ok || ref.Dir() != 0 {
		t.Fatalf("Insert: %v %v", ref, ok)
	}
	got, ok := ct.Lookup(&r1, 5)
	if !ok || got.Dir() != 1 || ct.Value(got) != val(1) {
		t.Fatalf("reply lookup: %v %v %+v", got, ok, ct.Value(got))
	}
	if k, has := ct.Key(got, 0); !has || k != k1 {
		t.Fatal("Key(ref, 0) is not the original key")
	}
	if !ct.Delete(&r1) {
		t.Fatal("Delete by reply key failed")
	}
	if _, ok := ct.Lookup(&k1, 5); ok {
		t.Fatal("Delete by reply key left the original key")
	}
	if ct.Len() != 0 {
		t.Fatalf("Len %d after Delete", ct.Len())
	}
	s := ct.Stats()
	if s.Hits != 1 || s.Misses != 2 || s.Inserts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestConnTableEvictionOrder fills a table and checks that inserts evict
// the least recently used connection, across classes.
func TestConnTableEvictionOrder(t *testing.T) {
	ct := smallTable(t, 3, EvictLRU)
	k := []Key{flowKey(1), flowKey(2), flowKey(3), flowKey(4), flowKey(5)}
	ct.Insert(&k[0], nil, val(0), ClassTCP, 1)
	ct.Insert(&k[1], nil, val(1), ClassUDP, 2)
	ct.Insert(&k[2], nil, val(2), ClassTCP, 3)
	// Touch k0: now k1 (UDP, seen at 2) is the LRU.
	r, _ := ct.Lookup(&k[0], 4)
	ct.Touch(r, 4, ClassTCP)
	ct.Insert(&k[3], nil, val(3), ClassTCP, 5)
	if _, ok := ct.Lookup(&k[1], 5); ok {
		t.Fatal("k1 (least recently used) was not evicted")
	}
	// Now k2 (3) is the oldest.
	ct.Insert(&k[4], nil, val(4), ClassUDP, 6)
	if _, ok := ct.Lookup(&k[2], 6); ok {
		t.Fatal("k2 was not evicted")
	}
	for _, i := range []int{0, 3, 4} {
		if r, ok := ct.Lookup(&k[i], 6); !ok || ct.Value(r) != val(uint16(i)) {
			t.Fatalf("k%d lost", i)
		}
	}
	s := ct.Stats()
	if s.Evictions != 2 || s.Full != 2 || s.Len != 3 || s.Expirations != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConnTableRejectNew(t *testing.T) {
	ct := smallTable(t, 2, RejectNew)
	a, b, c := flowKey(1), flowKey(2), flowKey(3)
	ct.Insert(&a, nil, val(1), ClassTCP, 0)
	ct.Insert(&b, nil, val(2), ClassTCP, 0)
	if _, ok := ct.Insert(&c, nil, val(3), ClassTCP, 1); ok {
		t.Fatal("insert into a full RejectNew table succeeded")
	}
	if _, ok := ct.Lookup(&a, 1); !ok {
		t.Fatal("an established connection was dropped")
	}
	if s := ct.Stats(); s.Full != 1 || s.Evictions != 0 {
		t.Fatalf("stats %+v", s)
	}
	// An expired connection makes room even under RejectNew? No: the
	// policy is explicit; but Expire frees it first.
	ct.Expire(200, 10)
	if _, ok := ct.Insert(&c, nil, val(3), ClassTCP, 200); !ok {
		t.Fatal("insert after expiry failed")
	}
}

func TestConnTableTimeouts(t *testing.T) {
	ct := smallTable(t, 8, EvictLRU)
	tcp, fin, udp := flowKey(1), flowKey(2), flowKey(3)
	ct.Insert(&tcp, nil, val(1), ClassTCP, 0)
	ct.Insert(&fin, nil, val(2), ClassTCPClosing, 0)
	ct.Insert(&udp, nil, val(3), ClassUDP, 0)
	// At 10 nothing has expired (timeouts are "more than" the idle time).
	if n := ct.Expire(10, 100); n != 0 {
		t.Fatalf("Expire(10) removed %d", n)
	}
	if n := ct.Expire(11, 100); n != 1 {
		t.Fatalf("Expire(11) removed %d, want the closing one", n)
	}
	if _, ok := ct.Lookup(&fin, 11); ok {
		t.Fatal("closing connection still there")
	}
	// Lookup itself expires lazily.
	if _, ok := ct.Lookup(&udp, 51); ok {
		t.Fatal("UDP connection alive after its timeout")
	}
	if r, ok := ct.Lookup(&tcp, 100); !ok {
		t.Fatal("TCP connection expired early")
	} else {
		ct.Touch(r, 100, ClassTCP)
	}
	if _, ok := ct.Lookup(&tcp, 199); !ok {
		t.Fatal("Touch did not extend the TCP connection")
	}
	if s := ct.Stats(); s.Expirations != 2 || s.Len != 1 {
		t.Fatalf("stats %+v", s)
	}
	// A connection moved to the closing class expires on its timeout.
	r, _ := ct.Lookup(&tcp, 199)
	ct.Touch(r, 199, ClassTCPClosing)
	if n := ct.Expire(210, 1); n != 1 {
		t.Fatalf("Expire after FIN removed %d", n)
	}
	// SetTimeouts applies to existing entries.
	ct.Insert(&udp, nil, val(3), ClassUDP, 300)
	ct.SetTimeouts(0, 0, 5)
	if n := ct.Expire(306, 10); n != 1 {
		t.Fatalf("shortened UDP timeout: Expire removed %d", n)
	}
}

// TestConnTableExpireBudget: Expire does at most budget removals.
func TestConnTableExpireBudget(t *testing.T) {
	ct := smallTable(t, 100, EvictLRU)
	for i := range 100 {
		k := flowKey(uint16(i))
		ct.Insert(&k, nil, val(0), ClassUDP, int64(i))
	}
	if n := ct.Expire(1000, 7); n != 7 || ct.Len() != 93 {
		t.Fatalf("Expire budget 7 removed %d, Len %d", n, ct.Len())
	}
	// Oldest first: keys 0..6 are gone, 7 is there.
	k := flowKey(7)
	ct.SetTimeouts(0, 0, 1<<40)
	if _, ok := ct.Lookup(&k, 1000); !ok {
		t.Fatal("Expire did not go oldest first")
	}
}

func TestConnTableCapacityOne(t *testing.T) {
	ct := smallTable(t, 1, EvictLRU)
	a, ar, b, br := flowKey(1), flowKey(101), flowKey(2), flowKey(102)
	ct.Insert(&a, &ar, val(1), ClassTCP, 0)
	ct.Insert(&b, &br, val(2), ClassTCP, 1)
	for _, k := range []*Key{&a, &ar} {
		if _, ok := ct.Lookup(k, 1); ok {
			t.Fatal("evicted connection still found")
		}
	}
	for _, k := range []*Key{&b, &br} {
		if r, ok := ct.Lookup(k, 1); !ok || ct.Value(r) != val(2) {
			t.Fatal("new connection not found")
		}
	}
	if s := ct.Stats(); s.Evictions != 1 || s.Len != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Re-inserting the same key updates in place, no eviction.
	ct.Insert(&b, &br, val(3), ClassUDP, 2)
	if s := ct.Stats(); s.Evictions != 1 || s.Len != 1 {
		t.Fatalf("update evicted: %+v", s)
	}
}

// TestConnTableReplyTakeover: a reply key already owned by another
// connection moves to the newer one.
func TestConnTableReplyTakeover(t *testing.T) {
	ct := smallTable(t, 4, EvictLRU)
	a, b, r := flowKey(1), flowKey(2), flowKey(100)
	ct.Insert(&a, &r, val(1), ClassTCP, 0)
	ct.Insert(&b, &r, val(2), ClassTCP, 0)
	if ref, ok := ct.Lookup(&r, 0); !ok || ct.Value(ref) != val(2) {
		t.Fatal("reply key did not move to the newer connection")
	}
	if ref, ok := ct.Lookup(&a, 0); !ok || ct.Value(ref) != val(1) {
		t.Fatal("older connection lost its own key")
	}
	if _, has := ct.Key(Ref(0), 1); has {
		t.Fatal("older connection still claims the reply key")
	}
	if ct.Len() != 2 {
		t.Fatalf("Len %d", ct.Len())
	}
}

func TestConnTableAllocs(t *testing.T) {
	ct := smallTable(t, 64, EvictLRU)
	keys := make([]Key, 200)
	for i := range keys {
		keys[i] = flowKey(uint16(i))
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		k := &keys[i%len(keys)]
		r := &keys[(i+7)%len(keys)]
		if ref, ok := ct.Lookup(k, int64(i)); ok {
			ct.Touch(ref, int64(i), ClassTCP)
		} else {
			ct.Insert(k, r, val(1), ClassTCP, int64(i))
		}
		if i%5 == 0 {
			ct.Delete(r)
		}
		ct.Expire(int64(i), 4)
		i++
	})
	if n != 0 {
		t.Fatalf("%v allocations per operation", n)
	}
}

// The model: a slice of connections, searched linearly.
type modelConn struct {
	keys  [2]Key
	has   [2]bool
	val   Value
	last  int64
	seq   uint64
	class Class
}

type model struct {
	conns                            []*modelConn
	cap                              int
	full                             FullPolicy
	timeout                          [numClasses]int64
	seq                              uint64
	hits, misses, inserts, evictions uint64
	expirations, fulls               uint64
}

func (m *model) find(k Key) (*modelConn, int) {
	for _, c := range m.conns {
		for d := range 2 {
			if c.has[d] && c.keys[d] == k {
				return c, d
			}
		}
	}
	return nil, 0
}

func (m *model) del(c *modelConn) {
	for i, o := range m.conns {
		if o == c {
			m.conns = append(m.conns[:i], m.conns[i+1:]...)
			return
		}
	}
	panic("model: deleting an absent connection")
}

func (m *model) expired(c *modelConn, now int64) bool { return now-c.last > m.timeout[c.class] }

func (m *model) touch(c *modelConn, now int64, cl Class) {
	m.seq++
	c.last, c.seq, c.class = now, m.seq, cl
}

func (m *model) tail(cl Class) *modelConn {
	var t *modelConn
	for _, c := range m.conns {
		if c.class == cl && (t == nil || c.seq < t.seq) {
			t = c
		}
	}
	return t
}

func (m *model) expireOne(now int64) bool {
	for cl := Class(0); cl < numClasses; cl++ {
		if t := m.tail(cl); t != nil && m.expired(t, now) {
			m.del(t)
			m.expirations++
			return true
		}
	}
	return false
}

func (m *model) lookup(k Key, now int64) (*modelConn, int, bool) {
	c, d := m.find(k)
	if c == nil {
		m.misses++
		return nil, 0, false
	}
	if m.expired(c, now) {
		m.del(c)
		m.expirations++
		m.misses++
		return nil, 0, false
	}
	m.hits++
	return c, d, true
}

func (m *model) setReply(c *modelConn, r Key) {
	if c.has[1] && c.keys[1] == r {
		return
	}
	if o, d := m.find(r); o != nil {
		if o == c {
			return
		}
		o.has[d] = false
		if !o.has[0] && !o.has[1] {
			m.del(o)
		}
	}
	c.keys[1], c.has[1] = r, true
}

func (m *model) insert(k Key, r *Key, v Value, cl Class, now int64) bool {
	if c, d := m.find(k); c != nil {
		if d == 0 {
			c.val = v
			m.touch(c, now, cl)
			if r != nil {
				m.setReply(c, *r)
			}
			return true
		}
		c.has[1] = false
		if !c.has[0] {
			m.del(c)
		}
	}
	if len(m.conns) == m.cap && !m.expireOne(now) {
		m.fulls++
		if m.full == RejectNew {
			return false
		}
		{
			var lru *modelConn
			for cl := Class(0); cl < numClasses; cl++ {
				if t := m.tail(cl); t != nil && (lru == nil || t.last < lru.last) {
					lru = t
				}
			}
			m.del(lru)
			m.evictions++
		}
	}
	c := &modelConn{val: v}
	c.keys[0], c.has[0] = k, true
	m.touch(c, now, cl)
	m.conns = append(m.conns, c)
	m.inserts++
	if r != nil {
		m.setReply(c, *r)
	}
	return true
}

// TestConnTableModel runs random operations on a table and a simple model
// and compares every answer and counter.
func TestConnTableModel(t *testing.T) {
	for _, tc := range []struct {
		seed     uint64
		capacity int
		keys     int
		full     FullPolicy
	}{
		{1, 1, 4, EvictLRU}, {2, 8, 24, EvictLRU}, {3, 32, 40, EvictLRU}, {4, 16, 64, RejectNew}, {5, 64, 300, EvictLRU},
	} {
		r := rand.New(rand.NewPCG(tc.seed, 99))
		ct := smallTable(t, tc.capacity, tc.full)
		m := &model{cap: tc.capacity, full: tc.full, timeout: ct.timeout}
		keys := make([]Key, tc.keys)
		for i := range keys {
			keys[i] = flowKey(uint16(i))
			if i%3 == 0 { // some QUIC keys
				keys[i].Flow.Src, keys[i].Flow.SrcPort = [16]byte{}, 0
				keys[i].CID, _ = proto.ConnIDFromBytes([]byte{byte(i), byte(i >> 8), 1, 2, 3, 4, 5, 6})
			}
		}
		now := int64(0)
		for step := 0; step < 20000; step++ {
			now += int64(r.IntN(4))
			k := keys[r.IntN(len(keys))]
			cl := Class(r.IntN(int(numClasses)))
			switch op := r.IntN(10); {
			case op < 4:
				ref, ok := ct.Lookup(&k, now)
				mc, md, mok := m.lookup(k, now)
				if ok != mok {
					t.Fatalf("seed %d step %d: Lookup hit %v, model %v", tc.seed, step, ok, mok)
				}
				if ok {
					if ref.Dir() != md || ct.Value(ref) != mc.val {
						t.Fatalf("seed %d step %d: Lookup dir %d val %+v, model %d %+v", tc.seed, step, ref.Dir(), ct.Value(ref), md, mc.val)
					}
					if r.IntN(2) == 0 {
						ct.Touch(ref, now, cl)
						m.touch(mc, now, cl)
					}
				}
			case op < 8:
				v := val(uint16(r.Uint32()))
				var rp *Key
				if r.IntN(2) == 0 {
					rk := keys[r.IntN(len(keys))]
					rp = &rk
				}
				_, ok := ct.Insert(&k, rp, v, cl, now)
				if mok := m.insert(k, rp, v, cl, now); ok != mok {
					t.Fatalf("seed %d step %d: Insert %v, model %v", tc.seed, step, ok, mok)
				}
			case op < 9:
				ok := ct.Delete(&k)
				c, _ := m.find(k)
				if ok != (c != nil) {
					t.Fatalf("seed %d step %d: Delete %v, model %v", tc.seed, step, ok, c != nil)
				}
				if c != nil {
					m.del(c)
				}
			default:
				budget := r.IntN(4)
				n := ct.Expire(now, budget)
				mn := 0
				for mn < budget && m.expireOne(now) {
					mn++
				}
				if n != mn {
					t.Fatalf("seed %d step %d: Expire %d, model %d", tc.seed, step, n, mn)
				}
			}
			s := ct.Stats()
			want := TableStats{Len: len(m.conns), Hits: m.hits, Misses: m.misses, Inserts: m.inserts,
				Evictions: m.evictions, Expirations: m.expirations, Full: m.fulls}
			if s != want {
				t.Fatalf("seed %d step %d: stats %+v, model %+v", tc.seed, step, s, want)
			}
		}
		t.Logf("seed %d: %+v", tc.seed, ct.Stats())
	}
}

// TestConnTableGranularity: with a touch granularity, a touch within it
// does not reorder the LRU list, but expiry stays exact in Lookup and late
// by at most the granularity in Expire.
func TestConnTableGranularity(t *testing.T) {
	ct, err := NewConnTable(TableOptions{Capacity: 2, TCPTimeout: 100, TCPClosingTimeout: 10, UDPTimeout: 50, TouchGranularity: 10})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := flowKey(1), flowKey(2), flowKey(3)
	ct.Insert(&a, nil, val(1), ClassUDP, 0)
	ct.Insert(&b, nil, val(2), ClassUDP, 1)
	r, _ := ct.Lookup(&a, 5)
	ct.Touch(r, 5, ClassUDP) // within 10 of its move at 0: stays the tail
	if ct.tail[ClassUDP] != int32(r>>1) {
		t.Fatal("a touch within the granularity moved the entry")
	}
	r, _ = ct.Lookup(&a, 12)
	ct.Touch(r, 12, ClassUDP) // 12 since the move: goes to the head
	if ct.head[ClassUDP] != int32(r>>1) {
		t.Fatal("a touch after the granularity did not move the entry")
	}
	// Exact expiry in Lookup: a seen at 12, b at 1.
	if _, ok := ct.Lookup(&a, 62); !ok {
		t.Fatal("a expired early")
	}
	if _, ok := ct.Lookup(&b, 52); ok {
		t.Fatal("b alive after its timeout")
	}
	r, _ = ct.Lookup(&a, 62)
	ct.Touch(r, 62, ClassUDP)
	ct.Insert(&c, nil, val(3), ClassUDP, 63)
	// a was touched at 66 without a move (moved at 62): Expire at
	// 66+50+1 may skip it, at 66+50+10+1 it must not.
	r, _ = ct.Lookup(&a, 66)
	ct.Touch(r, 66, ClassUDP)
	ct.Expire(66+50+10+1, 10)
	if ct.Len() != 0 {
		t.Fatalf("Expire left %d entries a granularity after their timeout", ct.Len())
	}
}

// TestWarmCoversLookupLines: ConnTable.warm reads fixed fields of an
// entry so that every cache line a lookup reads is loaded. That holds
// while the fields it reads are at most 64 bytes apart from the start of
// the entry to the end of the key of either direction; a change of the
// entry's layout must keep it so (or change warm).
func TestWarmCoversLookupLines(t *testing.T) {
	var e entry
	keyEnd := func(d int) uintptr {
		return unsafe.Offsetof(e.keys) + uintptr(d+1)*unsafe.Sizeof(e.keys[0])
	}
	base := []uintptr{
		unsafe.Offsetof(e.hashes),
		unsafe.Offsetof(e.val) + unsafe.Offsetof(e.val.VIP),
		unsafe.Offsetof(e.keys) + unsafe.Offsetof(e.keys[0].Flow) + unsafe.Offsetof(e.keys[0].Flow.SrcPort),
	}
	cidEnd := unsafe.Offsetof(e.keys[0].CID) + unsafe.Sizeof(e.keys[0].CID) - 1 // CID's length byte
	for d, extra := range [][]uintptr{
		{unsafe.Offsetof(e.keys) + cidEnd},
		{unsafe.Offsetof(e.keys) + unsafe.Sizeof(e.keys[0]) + unsafe.Offsetof(e.keys[0].Flow.SrcPort),
			unsafe.Offsetof(e.keys) + unsafe.Sizeof(e.keys[0]) + cidEnd},
	} {
		reads := append(append([]uintptr(nil), base...), extra...)
		slices.Sort(reads)
		if reads[0] != 0 {
			t.Fatalf("direction %d: first read at %d, not at the entry's start", d, reads[0])
		}
		for i := 1; i < len(reads); i++ {
			if reads[i]-reads[i-1] > 64 {
				t.Errorf("direction %d: reads at %d and %d are more than a line apart", d, reads[i-1], reads[i])
			}
		}
		if end := keyEnd(d); end-reads[len(reads)-1] > 64 {
			t.Errorf("direction %d: last read at %d, key ends at %d", d, reads[len(reads)-1], end)
		}
	}
}
