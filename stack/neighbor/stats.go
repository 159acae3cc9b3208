package neighbor

// Reason is the outcome of Input, and why a queued packet was dropped.
type Reason uint8

// Reasons. OK is success; every other value is counted in Stats.Drops.
const (
	OK           Reason = iota
	Malformed           // failed to parse, or a field RFC 4861 section 7.1 rejects
	BadChecksum         // ICMPv6 checksum wrong
	BadHopLimit         // NDP with hop limit other than 255
	NotNeighbor         // not ARP, NS or NA
	BadSender           // multicast/broadcast sender MAC or invalid sender IP
	Loop                // our own frame (sender MAC is ours)
	Spoofed             // claims one of our addresses from another MAC
	NotOurTarget        // request for an address that is not ours
	NoEntry             // reply/advertisement for a neighbor we did not ask about
	NoLinkAddr          // NA without target link-layer option for an INCOMPLETE entry
	Ignored             // NA without override for a different MAC; nothing changes
	Tentative           // NS from a node for our tentative address (RFC 4862 5.4.3)
	Duplicate           // DAD conflict: our tentative address is in use
	QueueFull           // queued packet dropped: queue overflowed, oldest dropped
	GaveUp              // queued packet dropped: resolution failed
	Evicted             // queued packet dropped: entry evicted for a new one
	TableFull           // no room for an entry
	BadAddress          // Resolve for an address that cannot be resolved
	NoSource            // no address of ours to send a solicitation from
	numReasons
)

var reasonNames = [numReasons]string{"OK", "Malformed", "BadChecksum", "BadHopLimit", "NotNeighbor",
	"BadSender", "Loop", "Spoofed", "NotOurTarget", "NoEntry", "NoLinkAddr", "Ignored", "Tentative",
	"Duplicate", "QueueFull", "GaveUp", "Evicted", "TableFull", "BadAddress", "NoSource"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "Reason(?)"
}

// NumReasons is the length of Stats.Drops.
const NumReasons = int(numReasons)

// Stats are the table's counters. Read them with Table.Stats.
type Stats struct {
	Drops [NumReasons]uint64 // by Reason; Drops[OK] stays 0

	ARPRequests, ARPReplies uint64 // sent (gratuitous ARP included in requests)
	NSs, NAs                uint64 // sent (DAD probes and unsolicited NAs included)
	Resolved                uint64 // INCOMPLETE entries that got a link-layer address
	Released                uint64 // queued packets handed back to send
	Evictions               uint64 // entries evicted to make room
	Expired                 uint64 // entries deleted after failed probing
	DADSucceeded, DADFailed uint64

	Queued int // packets waiting for resolution now (a gauge)
}
