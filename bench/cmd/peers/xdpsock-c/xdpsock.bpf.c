// SPDX-License-Identifier: GPL-2.0
/*
 * The XDP half of xdpsock-c: every frame goes to the AF_XDP socket
 * registered for its rx queue, or to the kernel stack when there is none.
 * max_entries is set by the loader to the number of queues.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

SEC("xdp")
int xdpsock_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
