package main

import "testing"

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkMaglevLookup-2                 	100000000	        11.52 ns/op	       0 B/op	       0 allocs/op
BenchmarkBalancerProcess/nat-inbound-2  	 10000000	        95.10 ns/op	       0 B/op	       0 allocs/op
PASS
`
	rs := parseBench(out)
	if len(rs) != 2 || rs[0].Name != "MaglevLookup" || rs[0].NsOp != 11.52 || rs[0].AllocsOp != 0 ||
		rs[1].Name != "BalancerProcess/nat-inbound" || rs[1].NsOp != 95.1 {
		t.Fatalf("%+v", rs)
	}
	if v, ok := microNs(rs, "BalancerProcess/nat-inbound"); !ok || v != 95.1 {
		t.Fatal(v, ok)
	}
}

func TestLBFlows(t *testing.T) {
	if n := lbFlows("x\nlb: inbound=5 outbound=0 flows=99824 reloads=0 rejected_reloads=0\n"); n != 99824 {
		t.Fatal(n)
	}
	if n := lbFlows("nothing"); n != -1 {
		t.Fatal(n)
	}
}
