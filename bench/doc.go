// Package bench holds Tygress's comparative benchmarks. It is a separate
// module so that the peers it measures against (gopacket, gVisor,
// asavie/xdp) never enter the library's go.mod.
package bench
