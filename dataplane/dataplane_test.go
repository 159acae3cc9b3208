package dataplane_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/internal/testutil"
	"github.com/tygress/tygress/internal/topo"
	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/proto"
	"github.com/tygress/tygress/sched"
	"github.com/tygress/tygress/xsk"
)

// shardReflect hands each UDP flow to the shard its symmetric hash names
// and, on that shard, reflects it (swaps MACs, addresses and ports).
type shardReflect struct {
	q                  int
	shards             sched.ShardMap
	handedOff, handled *atomic.Uint64
	opts               proto.DecodeOptions
}

func (s *shardReflect) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		if f.Verdict != pipeline.Pass {
			panic(fmt.Sprintf("frame arrived decided (verdict %v, handed off %v)", f.Verdict, b.Handoff))
		}
		var d proto.Decoded
		if proto.Decode(f.Data, &d, &s.opts) != nil || d.L4Proto != proto.IPProtoUDP || d.L3Proto != proto.EtherTypeIPv4 {
			f.SetDrop(pipeline.ReasonUnknownProto)
			continue
		}
		shard := s.shards.Shard(d.Flow.Hash(42))
		if !b.Handoff && shard != s.q {
			f.Verdict, f.Shard = pipeline.Handoff, uint16(shard)
			s.handedOff.Add(1)
			continue
		}
		if shard != s.q {
			panic(fmt.Sprintf("flow of shard %d handled on %d", shard, s.q))
		}
		s.handled.Add(1)
		e := proto.Ethernet(f.Data)
		e.SwapAddrs()
		ip := f.Data[d.L3Off:]
		var a [4]byte
		copy(a[:], ip[12:16])
		copy(ip[12:16], ip[16:20])
		copy(ip[16:20], a[:])
		u := f.Data[d.L4Off:]
		u[0], u[1], u[2], u[3] = u[2], u[3], u[0], u[1]
		f.Verdict = pipeline.TX
	}
}

// TestHandoffAcrossShards runs two workers on a two-queue veth. Flows
// arrive on whichever queue the kernel picks; each is handed to the shard
// its hash names, answered there out of that shard's socket, and the
// frame returns to the pool it came from. Every datagram of every flow
// must come back, and every frame must be home afterwards.
func TestHandoffAcrossShards(t *testing.T) {
	testutil.RequirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() { tp.Close() })
	nsA, err := tp.AddNamespace("tyha")
	if err != nil {
		t.Fatal(err)
	}
	nsF, err := tp.AddNamespace("tyhf")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Port{NS: nsA, Name: "a0", Addrs: []string{"10.81.0.1/24"}}
	f := topo.Port{NS: nsF, Name: "f0"}
	if err := topo.NewVeth(&a, &f, topo.VethOptions{Queues: 2}); err != nil {
		t.Fatal(err)
	}
	if err := topo.Run(nsA, "ip", "neigh", "replace", "10.81.0.2", "lladdr", f.MAC.String(), "dev", "a0"); err != nil {
		t.Fatal(err)
	}
	var handedOff, handled [2]atomic.Uint64
	shards, _ := sched.NewShardMap(2)
	so := xsk.DefaultSocketOptions()
	so.RxSize, so.TxSize, so.FillSize, so.CompSize = 512, 512, 512, 512
	cfg := dataplane.Config{
		Ports:     []dataplane.PortConfig{{Name: "f0", Steer: true, ClaimAll: true}},
		Queues:    2,
		Socket:    so,
		FrameSize: 2048,
		CPUs:      []int{0, 1},
		Pin:       sched.Pin,
		Pipeline: func(q int) *pipeline.Pipeline {
			return pipeline.New(&shardReflect{q: q, shards: shards, handedOff: &handedOff[q], handled: &handled[q], opts: proto.DefaultDecodeOptions()})
		},
	}
	var dp *dataplane.DataPath
	if err := nsF.Do(func() (err error) { dp, err = dataplane.Open(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()

	const flows, perFlow = 32, 50
	err = nsA.Do(func() error {
		for fl := 0; fl < flows; fl++ {
			c, err := net.Dial("udp4", "10.81.0.2:7")
			if err != nil {
				return err
			}
			b := make([]byte, 64)
			for i := 0; i < perFlow; i++ {
				msg := fmt.Sprintf("flow %d msg %d", fl, i)
				if _, err := c.Write([]byte(msg)); err != nil {
					c.Close()
					return err
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				n, err := c.Read(b)
				if err != nil || string(b[:n]) != msg {
					c.Close()
					return fmt.Errorf("flow %d datagram %d: %q, %v", fl, i, b[:n], err)
				}
			}
			c.Close()
		}
		return nil
	})
	cancel()
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	total := handled[0].Load() + handled[1].Load()
	if total != flows*perFlow {
		t.Fatalf("handled %d datagrams, want %d", total, flows*perFlow)
	}
	in := dp.Workers[0].Stats().HandoffIn + dp.Workers[1].Stats().HandoffIn
	if in != handedOff[0].Load()+handedOff[1].Load() {
		t.Fatalf("%d frames handed off, %d arrived", handedOff[0].Load()+handedOff[1].Load(), in)
	}
	if in == 0 {
		t.Fatal("no frame was handed off: the test did not exercise the rings")
	}
	if handled[0].Load() == 0 || handled[1].Load() == 0 {
		t.Fatalf("one shard handled nothing: %d / %d", handled[0].Load(), handled[1].Load())
	}
	t.Logf("handled %d/%d, handed off %d/%d", handled[0].Load(), handled[1].Load(), handedOff[0].Load(), handedOff[1].Load())
	// Every frame is back in its own pool or with the kernel; run last
	// rounds first (workers have stopped). Step every worker each round:
	// a frame handed off and transmitted by the other shard comes back
	// through that shard's completion ring and then its return ring.
	balanced := func() bool {
		for q := range dp.Workers {
			if dp.Pools[q].Len()+dp.Ports[0].Sockets[q].InKernel() != dp.Pools[q].Total() {
				return false
			}
		}
		return true
	}
	for i := 0; i < 100; i++ {
		for _, w := range dp.Workers {
			w.Step()
		}
		if balanced() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for q := range dp.Workers {
		pool := dp.Pools[q]
		s := dp.Ports[0].Sockets[q]
		if pool.Len()+s.InKernel() != pool.Total() {
			t.Errorf("worker %d: pool %d + kernel %d != %d", q, pool.Len(), s.InKernel(), pool.Total())
		}
	}
}
