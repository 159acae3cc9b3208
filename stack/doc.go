// Package stack is Tygress's host stack: the part that makes a link.Link
// answer as a host on its network.
//
// # Model
//
// A Stack is sharded: there is one Shard per core and link queue, owned
// by one goroutine (its worker, see Shard.Run) that is the only one to
// touch the shard, its link.Link, its neighbor.Table, its reassembler and
// its timer wheel. Steering (the XDP program in package bpf, RSS in the
// NIC) decides which shard sees a frame; every shard holds the same
// addresses and routes and answers for them. Sockets (UDPConn) are shared:
// they meet the shards in single-producer single-consumer rings, so no
// lock is taken on the data path.
//
// A worker loop is Poll, then, when Poll found nothing, link.Wait until the
// timer wheel's next deadline (or Wake: a socket queued a datagram). Poll
// receives a batch, handles every frame, sends a batch of queued
// datagrams, runs the timers that are due and flushes the link once. Time is nanoseconds on any monotonic
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
//   - ARP, and IPv6 neighbor solicitations and advertisements, go to the
//     shard's neighbor.Table, which answers for our addresses and learns
//     neighbors; replies are shared with the other shards. Announce sends
//     a gratuitous ARP and an unsolicited NA for each address.
//   - IPv4 (options skipped) and IPv6 (extension headers walked) packets to
//     our addresses; fragments go to the shard's stack/reasm reassembler.
//   - ICMP echo requests are answered in place when the packet is whole and
//     plain, else through the output path.
//   - UDP datagrams are checksum-verified and copied into the receive ring
//     of the socket bound to them (UDPConn); datagrams sockets write are
//     routed (stack/route), fragmented to the path MTU and sent through the
//     neighbor table.
//   - ICMP errors are sent (rate limited) for closed ports, unknown
//     protocols and expired reassembly, and received ones update sockets
//     (ECONNREFUSED) and the path MTU cache.
//   - Everything else is released and counted under a DropReason.
//
// # Missing
//
// TCP and QUIC (they come next, on the same Stack), IPv6 router discovery,
// multicast and broadcast UDP, VLAN tags, forwarding between ports, and
// changing the addresses or the routes of a running stack.
package stack
