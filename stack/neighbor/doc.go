// Package neighbor resolves IPv4 and IPv6 next hops to Ethernet addresses
// with ARP (RFC 826) and neighbor discovery (RFC 4861), and runs duplicate
// address detection for IPv6 (RFC 4862 section 5.4).
//
// # Model
//
// A Table is a pure state machine. It does no I/O, starts no goroutines and
// never reads the clock: every method that depends on time takes now, in
// nanoseconds on any monotonic scale the caller chooses (the shard's timer
// wheel). One shard goroutine owns a Table; it is not safe for concurrent
// use.
//
// Everything the table wants done is handed to a Sink the caller supplies
// to New:
//
//   - Sink.Send gets an Action: a small value that says which frame to
//     transmit (ARP request or reply, neighbor solicitation or
//     advertisement) or which DAD result to act on. The caller builds the
//     frame into a TX buffer of its own with Action.AppendFrame, which uses
//     the proto encoders; the table never holds frame memory.
//   - Sink.Release gets each packet that was queued waiting for resolution,
//     with the Ethernet address it can now be sent to.
//   - Sink.Drop gets each queued packet the table gives up on (queue
//     overflow, resolution failure, eviction), with the reason, so that the
//     caller can free its buffer and, for a resolution failure, send an ICMP
//     destination unreachable.
//
// The type parameter P is whatever the caller queues: a UMEM frame handle,
// an index, a small struct. Queues are preallocated (MaxEntries × MaxPending
// values of P) so that queuing never allocates.
//
// # Cache
//
// Entries are keyed by netip.Addr (IPv4 uses ARP, IPv6 uses NDP; zones and
// IPv4-mapped forms are normalised away) and move through the states of RFC
// 4861 section 7.3.2, which ARP uses too:
//
//	INCOMPLETE  solicitation sent, packets queued; multicast (ARP: broadcast)
//	            retransmissions every RetransTimer, deleted after
//	            MaxMulticastSolicit, queued packets dropped with GaveUp.
//	REACHABLE   confirmed within ReachableTime × random(0.5, 1.5); then STALE.
//	STALE       usable; no timer. The first use moves it to DELAY.
//	DELAY       used while STALE; after DelayFirstProbe without a
//	            confirmation (Confirm, or a solicited advertisement) it moves
//	            to PROBE.
//	PROBE       unicast solicitations every RetransTimer, deleted after
//	            MaxUnicastSolicit.
//
// The table holds at most MaxEntries entries in per-state LRU lists. A new
// entry for an outgoing packet (Resolve) evicts, in order, the least
// recently used STALE entry, then of the least recently used REACHABLE,
// DELAY and PROBE entries the one whose timer fires first, then the least
// recently used INCOMPLETE entry (its queued packets dropped with Evicted). An entry created by
// received input (an ARP request or NS from a new neighbor) only ever evicts
// a STALE entry, so a flood of strangers cannot push out live neighbors.
//
// Timers are deadlines on the entries; Next returns the earliest and Tick
// runs every one that is due. Tick scans the table (O(MaxEntries)) only when
// a deadline has passed.
//
// # Input
//
// Input takes a received Ethernet frame (ARP, or IPv6 carrying an NS or NA
// without extension headers); InputARP and InputNDP take already-parsed
// layers. Each returns a Reason: OK, or why the frame was dropped, which is
// also counted in Stats. Frames claiming one of our addresses from another
// MAC are counted as Spoofed and never installed; requests for an address
// that is not ours are NotOurTarget; an NA without a target link-layer
// option for an INCOMPLETE entry is NoLinkAddr. ARP follows RFC 826's merge
// rule (an existing entry for the sender is always updated; a new one is
// created only when we are the target); NA follows RFC 4861 section 7.2.5
// (S, O and R flags).
//
// # Our addresses
//
// AddAddress adds an address the table answers for (ARP replies, solicited
// NAs). StartDAD adds an IPv6 address as tentative and sends DADTransmits
// solicitations from :: to its solicited-node group; the result arrives as
// a DADSucceeded or DADFailed Action from Tick or Input. The caller must
// accept frames to the solicited-node multicast MAC (MulticastMAC) of every
// address. Announce sends a gratuitous ARP or an unsolicited NA (override
// set) for every assigned address, for use on start.
//
// Not covered: VLAN-tagged frames (strip the tags first), NDP messages
// behind extension headers, router discovery and redirects, proxy
// ARP/NDP, and RFC 5227 address conflict detection for IPv4 (a conflict is
// only counted as Spoofed).
package neighbor
