package lb

import (
	"net/netip"
	"testing"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
)

const benchFlows = 100_000

func BenchmarkMaglevLookup(b *testing.B) {
	m := mustMaglev(b, testBackends(100, one), DefaultTableSize)
	h := uint32(0x9e3779b9)
	s := 0
	b.ReportAllocs()
	for b.Loop() {
		s += m.Lookup(h)
		h = h*1664525 + 1013904223
	}
	if s < 0 {
		b.Fatal(s)
	}
}

func BenchmarkMaglevBuild(b *testing.B) {
	bs := testBackends(100, func(i int) uint32 { return uint32(1 + i%4) })
	b.ReportAllocs()
	for b.Loop() {
		mustMaglev(b, bs, DefaultTableSize)
	}
}

func benchKeys(n int) []Key {
	keys := make([]Key, n)
	for i := range keys {
		keys[i].Flow.SetIPv4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, [4]byte{10, 0, 0, 100})
		keys[i].Flow.SrcPort, keys[i].Flow.DstPort, keys[i].Flow.Proto = uint16(i*7), 80, proto.IPProtoTCP
	}
	return keys
}

func benchTable(b *testing.B, capacity int) *ConnTable {
	o := DefaultTableOptions()
	o.Capacity = capacity
	o.Seed = 0x1234
	t, err := NewConnTable(o)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkConnTableLookupHit: a hit and a touch among 100k connections,
// in a pseudo-random order (so the cache misses of a big table count).
func BenchmarkConnTableLookupHit(b *testing.B) {
	keys := benchKeys(benchFlows)
	t := benchTable(b, 1<<17)
	for i := range keys {
		t.Insert(&keys[i], nil, val(1), ClassTCP, 1)
	}
	j := uint32(0)
	now := int64(2)
	b.ReportAllocs()
	for b.Loop() {
		j = (j + 40503) % benchFlows
		r, ok := t.Lookup(&keys[j], now)
		if !ok {
			b.Fatal("miss")
		}
		t.Touch(r, now, ClassTCP)
	}
}

// BenchmarkConnTableInsertEvict: every insert finds the 100k-connection
// table full and evicts the least recently used connection. Each insert
// also sets a reply key (as NAT does).
func BenchmarkConnTableInsertEvict(b *testing.B) {
	keys := benchKeys(2 * benchFlows)
	t := benchTable(b, benchFlows)
	for i := range benchFlows {
		t.Insert(&keys[i], nil, val(1), ClassTCP, 1)
	}
	j := benchFlows
	now := int64(2)
	var reply Key
	reply.Flow.SetIPv4([4]byte{10, 0, 1, 11}, [4]byte{})
	reply.Flow.Proto = proto.IPProtoTCP
	b.ReportAllocs()
	for b.Loop() {
		k := &keys[j]
		reply.Flow.Dst, reply.Flow.DstPort = k.Flow.Src, k.Flow.SrcPort
		if _, ok := t.Insert(k, &reply, val(1), ClassTCP, now); !ok {
			b.Fatal("insert failed")
		}
		j++
		if j == len(keys) {
			j = 0
		}
	}
	if s := t.Stats(); s.Evictions < uint64(b.N)/2 {
		b.Fatalf("only %d evictions in %d inserts", s.Evictions, b.N)
	}
}

type benchResolver struct{ mac [6]byte }

func (r benchResolver) Lookup(netip.Addr) ([6]byte, bool) { return r.mac, true }

// benchFrames builds 100k 64-byte TCP frames, one per flow, to dst.
func benchFrames(b *testing.B, dst netip.AddrPort) [][]byte { return benchFramesN(b, dst, benchFlows) }

func benchFramesN(b *testing.B, dst netip.AddrPort, n int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%50000))
		frames[i] = pkt{src: src, dst: dst, proto: TCP, flags: proto.TCPFlagACK, payload: make([]byte, 10)}.build(b)
		if len(frames[i]) != 64 {
			b.Fatalf("frame of %d bytes", len(frames[i]))
		}
	}
	return frames
}

// benchProcess runs batches of 64 frames through Process; ns/op is per
// packet. With restore, each frame is restored from its original first
// (NAT rewrites it in place), a 64-byte copy included in the figure.
func benchProcess(b *testing.B, bal *Balancer, orig [][]byte, restore bool) {
	work := make([][]byte, len(orig))
	for i := range orig {
		work[i] = append([]byte(nil), orig[i]...)
	}
	frames := make([]pipeline.Frame, 64)
	batch := &pipeline.Batch{}
	run := func(next int, now int64) int {
		for i := range frames {
			if restore {
				copy(work[next], orig[next])
			}
			frames[i] = pipeline.Frame{Data: work[next]}
			next = (next + 40503) % len(orig)
		}
		batch.Frames, batch.Now = frames, now
		bal.Process(batch)
		return next
	}
	// Warm up: every flow in the table.
	next := 0
	for range len(orig)/64 + 1 {
		next = run(next, 1)
	}
	for i := range orig {
		if restore {
			copy(work[i], orig[i])
		}
	}
	if f := batch.Frames[0]; f.Verdict != pipeline.Redirect {
		b.Fatalf("warm-up verdict %v %v", f.Verdict, f.Reason)
	}
	st := bal.Stats().Table
	b.ReportAllocs()
	b.ResetTimer()
	now := int64(2)
	for n := 0; n < b.N; n += 64 {
		next = run(next, now)
	}
	b.StopTimer()
	if s := bal.Stats().Table; s.Inserts != st.Inserts || s.Len < len(orig)-64 {
		b.Fatalf("flows were not all established: before %+v after %+v", st, s)
	}
}

func benchBalancer(b *testing.B, mode string) *Balancer {
	s, err := ServiceFromFlags("10.0.0.100:80/tcp", []string{"10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14"}, mode)
	if err != nil {
		b.Fatal(err)
	}
	o := DefaultTableOptions()
	o.Capacity = 1 << 17
	bal, err := NewBalancer(&Config{Services: []Service{s}, Conntrack: o}, Options{Resolver: benchResolver{[6]byte{2, 3, 4, 5, 6, 7}}})
	if err != nil {
		b.Fatal(err)
	}
	return bal
}

// BenchmarkBalancerProcess: established flows, 100k of them, 64-byte
// frames, per packet.
func BenchmarkBalancerProcess(b *testing.B) {
	b.Run("nat-inbound", func(b *testing.B) {
		benchProcess(b, benchBalancer(b, "nat"), benchFrames(b, ap("10.0.0.100:80")), true)
	})
	b.Run("nat-inbound-1k-flows", func(b *testing.B) {
		// Table and frames in cache: the CPU cost without DRAM misses.
		benchProcess(b, benchBalancer(b, "nat"), benchFramesN(b, ap("10.0.0.100:80"), 1000), true)
	})
	b.Run("dsr", func(b *testing.B) {
		benchProcess(b, benchBalancer(b, "dsr"), benchFrames(b, ap("10.0.0.100:80")), false)
	})
	b.Run("nat-reply", func(b *testing.B) {
		bal := benchBalancer(b, "nat")
		in := benchFrames(b, ap("10.0.0.100:80"))
		// Establish the flows, then build each one's reply from the
		// rewritten request.
		replies := make([][]byte, len(in))
		batch := &pipeline.Batch{Frames: make([]pipeline.Frame, 1)}
		for i, f := range in {
			w := append([]byte(nil), f...)
			batch.Frames = batch.Frames[:1]
			batch.Frames[0] = pipeline.Frame{Data: w}
			batch.Now = 1
			bal.Process(batch)
			h, err := decodeHeaders(w)
			if err != nil {
				b.Fatal(err)
			}
			replies[i] = pkt{src: h.dst, dst: h.src, proto: TCP, flags: proto.TCPFlagACK, payload: make([]byte, 10)}.build(b)
		}
		benchProcess(b, bal, replies, true)
	})
}

// BenchmarkBalancerNewFlows: every packet is a new flow (table full,
// LRU eviction), the worst case.
func BenchmarkBalancerNewFlows(b *testing.B) {
	bal := benchBalancer(b, "nat")
	orig := benchFrames(b, ap("10.0.0.100:80"))
	work := make([][]byte, len(orig))
	for i := range orig {
		work[i] = append([]byte(nil), orig[i]...)
	}
	o := DefaultTableOptions()
	o.Capacity = 1 << 14 // far fewer than the flows: every packet misses
	ct, err := NewConnTable(o)
	if err != nil {
		b.Fatal(err)
	}
	bal.ct = ct
	frames := make([]pipeline.Frame, 64)
	batch := &pipeline.Batch{}
	next := 0
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += 64 {
		for i := range frames {
			copy(work[next], orig[next])
			frames[i] = pipeline.Frame{Data: work[next]}
			next = (next + 40503) % len(orig)
		}
		batch.Frames, batch.Now = frames, 1
		bal.Process(batch)
	}
}

// BenchmarkGoMapLookup is the reference for BenchmarkConnTableLookupHit:
// a Go map of the same 100k keys, looked up in the same order.
func BenchmarkGoMapLookup(b *testing.B) {
	keys := benchKeys(benchFlows)
	m := make(map[Key]Value, 1<<17)
	for i := range keys {
		m[keys[i]] = val(1)
	}
	j := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		j = (j + 40503) % benchFlows
		if _, ok := m[keys[j]]; !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkServiceLookup compares the service table with a Go map keyed
// the same way (hits, 4 services).
func BenchmarkServiceLookup(b *testing.B) {
	cfg := testConfig(b, 64)
	var keys []svcKey
	m := map[svcKey]*service{}
	t := newSvcTable(len(cfg.Services))
	for i := range cfg.Services {
		s := &cfg.Services[i]
		k := svcKey{s.VIP.Addr().As16(), s.VIP.Port(), uint8(s.Proto)}
		keys = append(keys, k)
		m[k] = &service{}
		t.put(k, m[k])
	}
	b.Run("table", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if t.get(&keys[i&3]) == nil {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if m[keys[i&3]] == nil {
				b.Fatal("miss")
			}
			i++
		}
	})
}
