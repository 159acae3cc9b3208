// Package stack is Tygress's host stack: the part that makes a link.Link
// answer as a host on its network.
//
// # Model
//
// The stack is sharded: there is one Shard per core and link queue, owned
// by one goroutine (its worker, see Shard.Run) that is the only one to
// touch the shard, its link.Link and its neighbor.Table. Shards share
// nothing on the data path, so there are no locks: steering (the XDP
// program in package bpf, RSS in the NIC) decides which shard sees a
// frame. Every shard holds the same addresses and answers for them.
//
// A worker loop is Poll, then, when Poll found nothing, link.Wait until the
// neighbor table's next deadline (or Wake). Poll receives a batch, handles
// every frame, transmits what it produced, runs the neighbor timers that
// are due and flushes the link once. Time is nanoseconds on any monotonic
// scale (Run uses the time since NewShard); the shard never reads the clock
// in Poll.
//
// # Ownership
//
// Frames follow the rules of package link: every received frame is, before
// Poll returns, either Released back to the link (dropped, counted in
// Stats by DropReason) or turned into a reply in place and handed to
// Transmit, which takes ownership. Frames the neighbor table wants sent
// (ARP replies and requests, neighbor solicitations and advertisements)
// are built with neighbor.Action.AppendFrame into buffers from link.Alloc.
// Nothing on the per-packet path allocates and no packet data can make the
// shard panic: every header is parsed with package proto's bounds-checked
// views first.
//
// # What it does
//
//   - ARP, and IPv6 neighbor solicitations and advertisements (no extension
//     headers), go to the shard's neighbor.Table, which answers for our
//     addresses and learns neighbors. Addresses are assigned at once (no
//     duplicate address detection); Announce sends a gratuitous ARP and an
//     unsolicited NA for each, and Run calls it on start.
//   - ICMPv4 echo requests to one of our addresses are answered in place:
//     MACs and IP addresses swapped, TTL 64, type 0, both checksums updated
//     incrementally.
//   - ICMPv6 echo requests to one of our unicast addresses are answered in
//     place: addresses swapped, hop limit 64, type 129, checksum recomputed.
//   - Everything else is released and counted under a DropReason.
//
// # Missing
//
// No routing: replies go back to the MAC the request came from, and there
// is no route table, default gateway or output path through
// neighbor.Table.Resolve yet. No IP fragments (IPv4 fragments and IPv6
// fragment headers are dropped; reassembly belongs to package stack/reasm,
// not wired in yet). No IPv4 options (dropped), no IPv6 extension headers,
// no VLAN tags, no multicast or broadcast echo, no ICMP errors (port or
// host unreachable), no UDP or TCP sockets, no DAD or router discovery, and
// no way to change the addresses of a running shard.
package stack
