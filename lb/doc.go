// Package lb is the core of an L4 load balancer on the AF_XDP data path
// (issue 5, `tyfwd lb`), in the manner of Katran, IPVS and VPP's lb: pure
// Go, no root, nothing allocated per packet.
//
// # Model
//
// A service is a VIP, a port and a protocol (TCP or UDP), balanced over
// weighted backends in one of two modes:
//
//	nat  client→VIP:port becomes client→backend:bport (destination NAT; the
//	     client address is kept, so the backends' route back to clients
//	     must point at the balancer). Replies backend:bport→client become
//	     VIP:port→client. MACs: source ours, destination the next hop's.
//	dsr  only the destination MAC changes (the backend's); the backend holds
//	     the VIP on a loopback and answers the client directly.
//
// The first packet of a flow picks a backend with Maglev consistent hashing
// (Maglev, NSDI 2016) of the flow's 5-tuple; the choice is stored in the
// shard's connection table (ConnTable), and later packets follow the table,
// so neither a configuration change (Balancer.Update, which swaps in new
// Maglev tables between batches) nor a backend's removal moves an
// established connection. A NAT connection is stored under two keys, its
// inbound 5-tuple and the 5-tuple of its replies (client and rewritten
// backend swapped), as Linux conntrack does, so the reply path finds the VIP
// to restore with one lookup. For a UDP service marked quic the inbound key
// is the QUIC destination connection ID (scoped to the VIP) when one can be
// read, so a client whose NAT rebinds keeps its backend; backends must then
// issue IDs of the configured short header length.
//
// Checksums are updated incrementally (RFC 1624): a packet whose checksums
// were right leaves with right checksums; a UDP checksum of 0 over IPv4
// stays 0. IP fragments to a VIP are dropped (later fragments carry no
// ports); non-IP frames (ARP) are left to later stages.
//
// Each worker (shard) owns one Balancer: its connection table is used
// without locks. Both directions of a NAT connection must reach the same
// shard, but a symmetric 5-tuple hash does not do that here: the reply's
// tuple (backend, client) is not the reverse of the request's (client,
// VIP). What both share is the client endpoint (address and port: the
// request's source, the reply's destination); steer on it (ClientHash).
//
// Balancer.Process works on chunks of up to 64 frames in three passes:
// decode each frame and read its connection table bucket; read each
// bucket's first entry; then look up, rewrite and decide. The first two
// passes only warm the cache, so that the DRAM misses of a large table
// overlap across frames instead of queueing one after another.
//
// Not handled yet: ICMP errors about balanced flows (so path MTU discovery
// through a NAT service does not work; they are dropped as unknown-proto),
// TTL/hop limit decrement, and checking that requests arrive on the client
// port and replies on the backend port. IPv6 packets with a routing header
// are refused (dropped as malformed): their pseudo-header holds the final
// destination, not the fixed header's.
//
// # Configuration
//
// Services come from flags (ServiceFromFlags: --vip 10.0.0.100:80/tcp,
// --vip [fd00::100]:53/udp, --backend addr[:port][,weight] repeated, --mode
// nat|dsr) or from a TOML file (LoadConfig, ParseConfig). In the file every
// key is optional except vip, proto and each backend's addr; unknown keys
// are errors:
//
//	[conntrack]
//	capacity = 262144           # connections per shard (216 bytes each)
//	tcp_timeout = "15m"         # idle timeout of established TCP
//	tcp_closing_timeout = "10s" # after FIN or RST
//	udp_timeout = "2m"
//	touch_granularity = "100ms" # LRU order and Expire exact to within this
//	when_full = "evict"         # or "reject": new flows are dropped
//
//	[[service]]
//	vip = "10.0.0.100:80"       # [v6]:port for IPv6
//	proto = "tcp"               # tcp or udp
//	mode = "nat"                # nat (default) or dsr
//	table_size = 65537          # Maglev table size, a prime in [101, 16777213]
//	quic = false                # udp only: key by QUIC connection ID
//	quic_short_cid_len = 8      # length of the IDs the backends issue
//
//	  [service.health_check]    # settings only; no prober yet
//	  kind = "tcp"              # tcp, udp or none
//	  interval = "2s"
//	  timeout = "1s"            # at most interval
//	  rise = 2                  # successes to go up
//	  fall = 3                  # failures to go down
//
//	  [[service.backend]]
//	  addr = "10.0.1.11"        # same family as the VIP
//	  port = 8080               # default: the VIP's port (dsr: must be it)
//	  weight = 3                # default 1; 0 drains the backend
//
// testdata/example.toml is a complete example. Validation errors are one
// line and name the service: mixed address families, duplicate backends or
// services, weights above MaxWeight, a table size that is not a prime.
package lb
