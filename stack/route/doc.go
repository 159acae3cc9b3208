// Package route is the host stack's routing table: longest-prefix match
// over IPv4 and IPv6 destinations, with a metric to choose among routes to
// the same prefix.
//
// # Model
//
// A Table holds Routes. Each Route names a destination prefix, the next hop
// (a gateway, or none for an on-link destination), an optional preferred
// source address and path MTU, and the output port. Lookup finds the route
// of the longest prefix that contains the destination; among routes to the
// same prefix the lowest Metric wins. 0.0.0.0/0 and ::/0 are default routes.
// IPv4 and IPv6 are separate tables; Lookup looks an IPv4-mapped IPv6
// address up in the IPv4 table.
//
// # Data structure
//
// Each family keeps one open-addressing hash table (linear probing, load at
// most one half) per prefix length that has at least one route, keyed by
// the masked destination, plus the list of those lengths in descending
// order. A lookup masks the address to each present length in turn, longest
// first, and stops at the first hit: at most 33 (IPv4) or 129 (IPv6)
// probes, in practice as many as there are distinct lengths in the table,
// and never an allocation. Each slot points straight at the best (lowest
// metric) route of its prefix, so the lookup does no metric comparison.
//
// Writes (Add, Delete) keep the per-length tables up to date incrementally
// (insert, or delete by backward shift) and may allocate. Every Add stores a
// fresh copy of its Route, and a stored Route is never modified, so a
// *Route returned by a lookup keeps describing the route as it was; it is
// guaranteed to be the table's current route only until the next Add or
// Delete. Callers must not modify it.
//
// # Ownership
//
// A Table is not safe for concurrent use: one goroutine (a shard's worker)
// owns it. Shards that need the same routes hold a Table each.
package route
