// SPDX-License-Identifier: (MIT OR GPL-2.0-only)

//go:build ignore

// Tygress XDP steering program.
//
// Every frame that arrives on a queue is either claimed, and redirected to the
// AF_XDP socket registered for that queue in xsks_map, or passed to the kernel
// stack. A frame is claimed when it matches any rule of the active rule set
// (every field of a rule that is not "any" must match), or when the
// FLAG_CLAIM_ALL flag is set (then the frame is not parsed at all). Frames
// whose headers are truncated are not claimed. Everything is counted per
// CPU, and every frame in seen and in exactly one outcome.
//
// The rules map holds two banks of MAX_RULES rules. User space writes the
// inactive bank and then publishes it, with its rule count, through one
// aligned 32-bit word (config.active), so the program never sees a half
// written rule set.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define MAX_QUEUES 256
#define MAX_RULES 64
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 4

// config.active: bits 0-7 rule count, bit 8 bank.
#define ACTIVE_COUNT_MASK 0xff
#define ACTIVE_BANK_SHIFT 8

// config.flags
#define FLAG_CLAIM_ALL (1U << 0)

#define ETH_P_8021AD_ 0x88A8
#define ETH_P_8021Q_ 0x8100
#define VLAN_VID_MASK 0x0fff
#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV6_FRAG_OFFSET_MASK 0xfff8

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_DSTOPTS_ 60

// A claim rule. Fields that are zero match anything.
struct rule {
	__u32 addr[4];   // destination prefix, masked, network byte order; IPv4 in addr[0]
	__u32 mask[4];   // prefix mask, network byte order
	__u16 ethertype; // host byte order, after the VLAN tags
	__u16 vlan;      // VLAN id of the innermost tag
	__u16 port_lo;   // destination port range, host byte order
	__u16 port_hi;
	__u8 family;     // 4 or 6: the destination prefix applies
	__u8 ipproto;    // IP protocol (IPv6: after the extension headers)
	__u8 pad[2];
};

struct config {
	__u32 active; // rule count and bank, written as one word
	__u32 flags;
};

// Counters, one set per CPU. Every frame is counted in seen and in exactly
// one of the others.
struct counters {
	__u64 seen;
	__u64 redirected;       // bpf_redirect_map found a socket in the queue's slot
	__u64 passed_no_match;  // no rule matched
	__u64 passed_no_socket; // claimed, but the queue's slot is empty
	__u64 passed_malformed; // truncated or invalid headers
	__u64 aborted;          // internal error (cannot happen)
};

// The fields of a frame that rules look at.
struct pkt {
	__u32 daddr[4]; // network byte order; IPv4 in daddr[0]
	__u16 ethertype;
	__u16 vlan;
	__u16 dport;
	__u8 family;
	__u8 ipproto;
	__u8 has_ports;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MAX_RULES);
	__type(key, __u32);
	__type(value, struct rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

struct ipv6_opt_hdr_ {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag_hdr_ {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

// The first four bytes of UDP, TCP and SCTP headers.
struct ports_hdr_ {
	__be16 source;
	__be16 dest;
};

enum parse_result {
	PARSE_OK,
	PARSE_MALFORMED,
};

// parse fills p from the frame. It reads only inside [data, data_end).
static __always_inline enum parse_result parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur;
	__u16 proto;
	__u8 l4 = 0;
	int frag = 0;

	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	proto = bpf_ntohs(eth->h_proto);
	cur = eth + 1;

#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr_ *vh = cur;

		if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
			break;
		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		p->vlan = bpf_ntohs(vh->tci) & VLAN_VID_MASK;
		proto = bpf_ntohs(vh->proto);
		cur = vh + 1;
	}
	p->ethertype = proto;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = cur;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return PARSE_MALFORMED;
		if (ip->version != 4 || ip->ihl < 5)
			return PARSE_MALFORMED;
		ihl = ip->ihl * 4;
		if (cur + ihl > data_end)
			return PARSE_MALFORMED;
		p->family = 4;
		p->daddr[0] = ip->daddr;
		l4 = ip->protocol;
		frag = (bpf_ntohs(ip->frag_off) & IPV4_FRAG_OFFSET_MASK) != 0;
		cur += ihl;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = cur;

		if ((void *)(ip6 + 1) > data_end)
			return PARSE_MALFORMED;
		if (ip6->version != 6)
			return PARSE_MALFORMED;
		p->family = 6;
		__builtin_memcpy(p->daddr, &ip6->daddr, sizeof(p->daddr));
		l4 = ip6->nexthdr;
		cur = ip6 + 1;

		for (int i = 0; i < MAX_IPV6_EXT; i++) {
			if (l4 == IPPROTO_FRAGMENT_) {
				struct ipv6_frag_hdr_ *fh = cur;

				if ((void *)(fh + 1) > data_end)
					return PARSE_MALFORMED;
				if (bpf_ntohs(fh->frag_off) & IPV6_FRAG_OFFSET_MASK)
					frag = 1;
				l4 = fh->nexthdr;
				cur = fh + 1;
			} else if (l4 == IPPROTO_HOPOPTS_ || l4 == IPPROTO_ROUTING_ ||
				   l4 == IPPROTO_DSTOPTS_) {
				struct ipv6_opt_hdr_ *oh = cur;
				__u32 len;

				if ((void *)(oh + 1) > data_end)
					return PARSE_MALFORMED;
				len = ((__u32)oh->hdrlen + 1) * 8;
				if (cur + len > data_end)
					return PARSE_MALFORMED;
				l4 = oh->nexthdr;
				cur += len;
			} else {
				break;
			}
		}
	} else {
		return PARSE_OK;
	}
	p->ipproto = l4;

	// A fragment other than the first has no L4 header: it matches only
	// rules without ports.
	if (frag)
		return PARSE_OK;

	__u32 l4len;
	switch (l4) {
	case IPPROTO_UDP:
		l4len = 8;
		break;
	case IPPROTO_TCP:
		l4len = 20;
		break;
	case IPPROTO_SCTP:
		l4len = 12;
		break;
	default:
		return PARSE_OK;
	}
	if (cur + l4len > data_end)
		return PARSE_MALFORMED;
	struct ports_hdr_ *ph = cur;
	if ((void *)(ph + 1) > data_end)
		return PARSE_MALFORMED;
	p->dport = bpf_ntohs(ph->dest);
	p->has_ports = 1;
	return PARSE_OK;
}

static __always_inline int rule_matches(const struct rule *r, const struct pkt *p)
{
	if (r->ethertype && r->ethertype != p->ethertype)
		return 0;
	if (r->vlan && r->vlan != p->vlan)
		return 0;
	if (r->family) {
		if (r->family != p->family)
			return 0;
		if ((p->daddr[0] & r->mask[0]) != r->addr[0] ||
		    (p->daddr[1] & r->mask[1]) != r->addr[1] ||
		    (p->daddr[2] & r->mask[2]) != r->addr[2] ||
		    (p->daddr[3] & r->mask[3]) != r->addr[3])
			return 0;
	}
	if (r->ipproto && (!p->family || r->ipproto != p->ipproto))
		return 0;
	if (r->port_lo | r->port_hi) {
		if (!p->has_ports || p->dport < r->port_lo || p->dport > r->port_hi)
			return 0;
	}
	return 1;
}

// match reports whether p matches any rule of the active set. It is a global
// function, so the verifier checks it once and not once per parse path.
__noinline int match(const struct pkt *p, __u32 active)
{
	__u32 n = active & ACTIVE_COUNT_MASK;
	__u32 base = ((active >> ACTIVE_BANK_SHIFT) & 1) * MAX_RULES;

	if (!p)
		return 0;
	for (__u32 i = 0; i < MAX_RULES; i++) {
		__u32 key = base + i;
		struct rule *r;

		if (i >= n)
			break;
		r = bpf_map_lookup_elem(&rules, &key);
		if (!r)
			return 0;
		if (rule_matches(r, p))
			return 1;
	}
	return 0;
}

SEC("xdp")
int tygress_steer(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct counters *c;
	struct config *cfg;
	struct pkt p = {};
	long ret;

	c = bpf_map_lookup_elem(&counters, &zero);
	if (!c)
		return XDP_ABORTED;
	c->seen++;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg) {
		c->aborted++;
		return XDP_ABORTED;
	}

	if (!(cfg->flags & FLAG_CLAIM_ALL)) {
		if (parse(ctx, &p) != PARSE_OK) {
			c->passed_malformed++;
			return XDP_PASS;
		}
		if (!match(&p, *(volatile __u32 *)&cfg->active)) {
			c->passed_no_match++;
			return XDP_PASS;
		}
	}

	ret = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	if (ret == XDP_REDIRECT) {
		c->redirected++;
		return XDP_REDIRECT;
	}
	if (ret == XDP_PASS) {
		c->passed_no_socket++;
		return XDP_PASS;
	}
	c->aborted++;
	return XDP_ABORTED;
}
