/*
 * xdpsock-c: the C reference for the data-path benchmark, in the manner of
 * the kernel's xdpsock (rxdrop) and xsk_fwd (l2fwd) samples, written from
 * Documentation/networking/af_xdp.rst on the raw socket interface: no
 * libxdp, libbpf only to load and attach the XDP program (xdpsock.bpf.c,
 * embedded in the binary).
 *
 *   xdpsock-c -i IFACE [--poll|--busy] [--batch 64] [--duration D] ...
 *   xdpsock-c -i IN -o OUT [--dst-mac MAC] ...       (l2fwd)
 *
 * It takes the flags of the Go peers (bench/internal/peer) and ends with
 * the same line:
 *
 *   summary: rx_pkts=N tx_pkts=N drops=N fill_ring_empty=N wakeups=N seconds=S allocs=0
 *
 * rxdrop: one socket, a UMEM of --frames 4096-byte frames of which --ring
 * go to the fill ring; every received address goes straight back to it.
 * l2fwd: a receiving socket on IN owns the UMEM; a transmitting socket on
 * OUT shares it (XDP_SHARED_UMEM, with its own fill and completion rings).
 * Frames move by descriptor; only the Ethernet addresses are rewritten.
 * The hot loops make no allocation and no system call per packet: ring
 * indices are read once per batch (acquire) and published once per batch
 * (release), the kernel is woken with one poll() when the rx ring is empty
 * (--poll) and one sendto() per transmitted batch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/if_xdp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
/* Linux 6.16: frames one copy-mode sendto() may send (default 32). */
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9
#endif

#define FRAME_SIZE 4096u
#define ETH_ALEN 6
#define ETH_HLEN 14
#define POLL_TIMEOUT_MS 100

/* The XDP program, compiled by clang -target bpf and embedded here. */
#ifndef XDPSOCK_BPF_OBJ
#error "define XDPSOCK_BPF_OBJ as the path of the compiled xdpsock.bpf.o"
#endif
__asm__(".pushsection .rodata\n"
	".balign 8\n"
	".globl xdpsock_bpf_start\n.hidden xdpsock_bpf_start\n"
	"xdpsock_bpf_start:\n"
	".incbin \"" XDPSOCK_BPF_OBJ "\"\n"
	".globl xdpsock_bpf_end\n.hidden xdpsock_bpf_end\n"
	"xdpsock_bpf_end:\n"
	".popsection\n");
extern const char xdpsock_bpf_start[] __attribute__((visibility("hidden")));
extern const char xdpsock_bpf_end[] __attribute__((visibility("hidden")));

static const char *prog_name = "xdpsock-c";

struct config {
	const char *iface, *out, *dst_mac, *xdp_mode, *bind;
	int queues, batch, frames, ring, cpu;
	bool busy, quiet;
	double duration; /* seconds, 0: until SIGINT/SIGTERM */
};

/* Counters the worker publishes once per batch and the monitor reads. */
struct counters {
	uint64_t rx, tx, drops, wakeups;
};

/* One ring as mapped from the socket, with cached copies of the indices. */
struct ring {
	uint32_t *producer, *consumer, *flags;
	void *descs;
	uint32_t mask, size;
	uint32_t cached_prod, cached_cons;
	void *map;
	size_t map_len;
};

struct xsk {
	int fd;
	struct ring fill, comp, rx, tx;
	bool tx_budget; /* XDP_MAX_TX_SKB_BUDGET accepted */
};

static volatile sig_atomic_t stop;
static struct counters cnt;
static struct xsk *stats_xsk; /* the receiving socket: XDP_STATISTICS */

static pthread_mutex_t mon_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_cv;
static bool mon_done;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* The XDP program goes with its bpf_link when the process exits. */
	exit(1);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

#define PUBLISH(field, v) __atomic_store_n(&cnt.field, (v), __ATOMIC_RELAXED)
#define READ(field) __atomic_load_n(&cnt.field, __ATOMIC_RELAXED)

/* ---- command line (Go's flag package: -x and --x, -x=v and -x v) ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s -i IFACE [flags]          rxdrop\n"
		"       %s -i IN -o OUT [--dst-mac MAC] [flags]   l2fwd\n"
		"  -i IFACE            input interface (required)\n"
		"  -o IFACE            output interface (l2fwd)\n"
		"  --dst-mac MAC       l2fwd: destination MAC written into each frame (default: unchanged)\n"
		"  --queues N          number of queues (only 1 is supported)\n"
		"  --cores LIST        CPU list; the worker is pinned to its first CPU\n"
		"  --poll | --busy     block in poll() when the rx ring is empty (default) or spin\n"
		"  --batch N           descriptors per batch (default 64)\n"
		"  --duration D        stop after D (Go duration: 10s, 1m30s; 0: at SIGINT/SIGTERM)\n"
		"  --xdp-mode M        auto, native or generic (default auto)\n"
		"  --bind M            auto, copy or zc (default auto)\n"
		"  --frames N          UMEM frames of 4096 bytes (default 4096)\n"
		"  --ring N            entries of each ring, a power of two (default 2048)\n"
		"  --quiet             no per-second lines\n",
		prog_name, prog_name);
}

static int parse_int(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < -2147483647L || v > 2147483647L)
		return -1;
	*out = (int)v;
	return 0;
}

static void int_flag(const char *name, const char *val, int *out)
{
	if (parse_int(val, out))
		die("invalid value \"%s\" for flag -%s", val, name);
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *no[] = { "0", "f", "F", "false", "FALSE", "False" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcmp(s, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* A Go duration: "0", or a sequence of decimal numbers with units. */
static int parse_duration(const char *s, double *out)
{
	static const struct {
		const char *unit;
		double secs;
	} units[] = {
		{ "ns", 1e-9 }, { "us", 1e-6 }, { "\xc2\xb5s", 1e-6 }, { "\xce\xbcs", 1e-6 },
		{ "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
	};
	double total = 0;

	if (!strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	if (!*s)
		return -1;
	while (*s) {
		char *end;
		double v;
		size_t i;

		if (!((*s >= '0' && *s <= '9') || *s == '.'))
			return -1;
		v = strtod(s, &end);
		if (end == s)
			return -1;
		s = end;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);

			if (!strncmp(s, units[i].unit, l) && !(l == 1 && s[0] == 'm' && s[1] == 's')) {
				total += v * units[i].secs;
				s += l;
				break;
			}
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -1;
	}
	*out = total;
	return 0;
}

/* "1", "0-3,6": the first CPU of the list (one worker). */
static int parse_cpu_list(const char *s, int *first)
{
	int lo, hi, n = 0;
	const char *p = s;

	while (*p) {
		char *end;

		if (*p == ',' || *p == ' ') {
			p++;
			continue;
		}
		lo = (int)strtol(p, &end, 10);
		if (end == p || lo < 0)
			return -1;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = (int)strtol(p + 1, &end, 10);
			if (end == p + 1 || hi < lo)
				return -1;
			p = end;
		}
		if (*p && *p != ',')
			return -1;
		if (n++ == 0)
			*first = lo;
	}
	return n ? 0 : -1;
}

static void parse_args(int argc, char **argv, struct config *c)
{
	int i;

	for (i = 1; i < argc; i++) {
		char *a = argv[i], *val;
		bool b;

		if (a[0] != '-' || a[1] == '\0')
			break;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		a += a[1] == '-' ? 2 : 1;
		val = strchr(a, '=');
		if (val)
			*val++ = '\0';

		if (!strcmp(a, "h") || !strcmp(a, "help")) {
			usage(stderr);
			exit(0);
		}
		/* Boolean flags take no separate argument. */
		if (!strcmp(a, "poll") || !strcmp(a, "busy") || !strcmp(a, "quiet")) {
			b = true;
			if (val && !parse_bool(val, &b))
				die("invalid boolean value \"%s\" for -%s", val, a);
			if (!strcmp(a, "poll"))
				c->busy = !b;
			else if (!strcmp(a, "busy"))
				c->busy = b;
			else
				c->quiet = b;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc)
				die("flag needs an argument: -%s", a);
			val = argv[++i];
		}
		if (!strcmp(a, "i")) {
			c->iface = val;
		} else if (!strcmp(a, "o")) {
			c->out = val;
		} else if (!strcmp(a, "dst-mac")) {
			c->dst_mac = val;
		} else if (!strcmp(a, "xdp-mode")) {
			c->xdp_mode = val;
		} else if (!strcmp(a, "bind")) {
			c->bind = val;
		} else if (!strcmp(a, "queues")) {
			int_flag(a, val, &c->queues);
		} else if (!strcmp(a, "batch")) {
			int_flag(a, val, &c->batch);
		} else if (!strcmp(a, "frames")) {
			int_flag(a, val, &c->frames);
		} else if (!strcmp(a, "ring")) {
			int_flag(a, val, &c->ring);
		} else if (!strcmp(a, "duration")) {
			if (parse_duration(val, &c->duration))
				die("invalid value \"%s\" for flag -duration", val);
		} else if (!strcmp(a, "cores")) {
			if (parse_cpu_list(val, &c->cpu))
				die("invalid value \"%s\" for flag -cores: bad CPU list", val);
		} else {
			die("flag provided but not defined: -%s", a);
		}
	}
	if (i < argc)
		die("unexpected arguments starting at \"%s\"", argv[i]);
	if (!c->iface)
		die("-i IFACE is required");
	if (c->queues < 1 || c->batch < 1 || c->frames < 1 || c->ring < 1 || (c->ring & (c->ring - 1)))
		die("--queues, --batch and --frames must be positive and --ring a power of two");
	if (c->queues != 1)
		die("--queues %d: this C reference runs one queue only", c->queues);
	if (c->frames < c->ring)
		die("need at least as many frames as fill ring entries (--frames %d < --ring %d)", c->frames, c->ring);
	if ((uint32_t)c->batch > (uint32_t)c->ring)
		c->batch = c->ring;
}

static int parse_mac(const char *s, unsigned char mac[ETH_ALEN])
{
	unsigned int b[ETH_ALEN];
	char sep[ETH_ALEN - 1], extra;

	if (sscanf(s, "%2x%c%2x%c%2x%c%2x%c%2x%c%2x%c", &b[0], &sep[0], &b[1], &sep[1], &b[2], &sep[2],
		   &b[3], &sep[3], &b[4], &sep[4], &b[5], &extra) != 11)
		return -1;
	for (int i = 0; i < ETH_ALEN - 1; i++)
		if (sep[i] != sep[0] || (sep[i] != ':' && sep[i] != '-'))
			return -1;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (unsigned char)b[i];
	return 0;
}

static void iface_mac(const char *name, unsigned char mac[ETH_ALEN])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		die("MAC address of %s: %s", name, strerror(errno));
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	close(fd);
}

/* ---- rings (Documentation/networking/af_xdp.rst, "Rings") ---- */

/* Entries the kernel produced and we have not consumed: rx, completion. */
static inline uint32_t cons_peek(struct ring *r, uint32_t max, uint32_t *idx)
{
	uint32_t avail = r->cached_prod - r->cached_cons;

	if (avail == 0) {
		/* Acquire pairs with the kernel's release of the producer:
		 * the descriptors are visible once the index is. */
		r->cached_prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
		avail = r->cached_prod - r->cached_cons;
	}
	*idx = r->cached_cons;
	return avail < max ? avail : max;
}

static inline void cons_release(struct ring *r, uint32_t n)
{
	r->cached_cons += n;
	/* Release: our reads of the entries happen before the kernel may
	 * overwrite them. */
	__atomic_store_n(r->consumer, r->cached_cons, __ATOMIC_RELEASE);
}

/* Free slots of a ring we produce into: fill, tx. */
static inline uint32_t prod_free(struct ring *r, uint32_t want)
{
	uint32_t room = r->size - (r->cached_prod - r->cached_cons);

	if (room < want) {
		r->cached_cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
		room = r->size - (r->cached_prod - r->cached_cons);
	}
	return room < want ? room : want;
}

static inline void prod_submit(struct ring *r, uint32_t n)
{
	r->cached_prod += n;
	/* Release: the entries are written before the kernel sees them. */
	__atomic_store_n(r->producer, r->cached_prod, __ATOMIC_RELEASE);
}

/* In a spin-wait: let the core breathe, and poll the cache line the
 * kernel writes less often, so the producer on another CPU is not slowed. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline bool need_wakeup(const struct ring *r)
{
	return __atomic_load_n(r->flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP;
}

static void set_ring_size(int fd, int opt, int n, const char *what)
{
	if (setsockopt(fd, SOL_XDP, opt, &n, sizeof(n)) < 0)
		die("%s ring size %d: %s", what, n, strerror(errno));
}

static void map_ring(int fd, struct ring *r, const struct xdp_ring_offset *o, off_t pgoff, uint32_t n,
		     size_t entry, const char *what)
{
	char *m;

	r->map_len = o->desc + n * entry;
	m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
	if (m == MAP_FAILED)
		die("mmap %s ring: %s", what, strerror(errno));
	r->map = m;
	r->producer = (uint32_t *)(m + o->producer);
	r->consumer = (uint32_t *)(m + o->consumer);
	r->flags = (uint32_t *)(m + o->flags);
	r->descs = m + o->desc;
	r->size = n;
	r->mask = n - 1;
	r->cached_prod = *r->producer;
	r->cached_cons = *r->consumer;
}

static void unmap_ring(struct ring *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
}

/* ---- sockets ---- */

static int bind_xsk(int fd, int ifindex, int queue, uint16_t flags, int shared_fd)
{
	struct sockaddr_xdp sxdp = {
		.sxdp_family = AF_XDP,
		.sxdp_flags = flags,
		.sxdp_ifindex = (uint32_t)ifindex,
		.sxdp_queue_id = (uint32_t)queue,
		.sxdp_shared_umem_fd = (uint32_t)shared_fd,
	};
	struct timespec t0, now;
	long backoff_us = 1000;

	/* Re-binding a queue within ~20 ms of closing its previous socket
	 * gives EBUSY (the harness runs peers back to back): retry for 2 s. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (bind(fd, (struct sockaddr *)&sxdp, sizeof(sxdp)) == 0)
			return 0;
		if (errno != EBUSY)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 2)
			return -1;
		usleep((useconds_t)backoff_us);
		if ((backoff_us *= 2) > 100000)
			backoff_us = 100000;
	}
}

static int xsk_socket(void)
{
	int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket(AF_XDP): %s", strerror(errno));
	return fd;
}

static void mmap_offsets(int fd, struct xdp_mmap_offsets *off)
{
	socklen_t l = sizeof(*off);

	if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, off, &l) < 0)
		die("XDP_MMAP_OFFSETS: %s", strerror(errno));
}

/*
 * The socket that owns the UMEM and receives on ifindex/queue: fill,
 * completion and rx rings, the first --ring frames on the fill ring.
 */
static void open_rx_socket(struct xsk *x, void *umem, size_t umem_len, int ifindex, int queue,
			   const struct config *c)
{
	struct xdp_umem_reg reg = { .addr = (uint64_t)(uintptr_t)umem, .len = umem_len, .chunk_size = FRAME_SIZE };
	struct xdp_mmap_offsets off;
	uint32_t n = (uint32_t)c->ring;
	uint64_t *addrs;
	uint16_t mode;
	int err;

	x->fd = xsk_socket();
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) < 0)
		die("XDP_UMEM_REG: %s%s", strerror(errno),
		    errno == ENOMEM || errno == EPERM ? " (RLIMIT_MEMLOCK / CAP_IPC_LOCK?)" : "");
	set_ring_size(x->fd, XDP_UMEM_FILL_RING, c->ring, "fill");
	set_ring_size(x->fd, XDP_UMEM_COMPLETION_RING, c->ring, "completion");
	set_ring_size(x->fd, XDP_RX_RING, c->ring, "rx");
	mmap_offsets(x->fd, &off);
	map_ring(x->fd, &x->fill, &off.fr, XDP_UMEM_PGOFF_FILL_RING, n, sizeof(uint64_t), "fill");
	map_ring(x->fd, &x->comp, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, n, sizeof(uint64_t), "completion");
	map_ring(x->fd, &x->rx, &off.rx, XDP_PGOFF_RX_RING, n, sizeof(struct xdp_desc), "rx");

	addrs = x->fill.descs;
	for (uint32_t i = 0; i < n; i++)
		addrs[i] = (uint64_t)i * FRAME_SIZE;
	prod_submit(&x->fill, n);

	if (!strcmp(c->bind, "copy"))
		mode = XDP_COPY;
	else if (!strcmp(c->bind, "zc") || !strcmp(c->bind, "zero-copy"))
		mode = XDP_ZEROCOPY;
	else if (!strcmp(c->bind, "auto") || !*c->bind)
		mode = XDP_ZEROCOPY;
	else
		die("--bind %s (want auto, copy or zc)", c->bind);
	err = bind_xsk(x->fd, ifindex, queue, XDP_USE_NEED_WAKEUP | mode, 0);
	if (err && mode == XDP_ZEROCOPY && strcmp(c->bind, "zc") && strcmp(c->bind, "zero-copy") &&
	    (errno == EOPNOTSUPP || errno == EINVAL))
		err = bind_xsk(x->fd, ifindex, queue, XDP_USE_NEED_WAKEUP | XDP_COPY, 0);
	if (err)
		die("bind ifindex %d queue %d (%s): %s", ifindex, queue, c->bind, strerror(errno));
}

/*
 * A transmitting socket on ifindex/queue sharing owner's UMEM. Another
 * device, so it needs its own fill and completion rings (Linux 5.10+); the
 * bind mode and need_wakeup are inherited from the owner.
 */
static void open_tx_socket(struct xsk *x, const struct xsk *owner, int ifindex, int queue, const struct config *c)
{
	struct xdp_mmap_offsets off;
	int budget = c->ring;

	x->fd = xsk_socket();
	set_ring_size(x->fd, XDP_UMEM_FILL_RING, c->ring, "fill");
	set_ring_size(x->fd, XDP_UMEM_COMPLETION_RING, c->ring, "completion");
	set_ring_size(x->fd, XDP_TX_RING, c->ring, "tx");
	mmap_offsets(x->fd, &off);
	map_ring(x->fd, &x->comp, &off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, (uint32_t)c->ring, sizeof(uint64_t),
		 "completion");
	map_ring(x->fd, &x->tx, &off.tx, XDP_PGOFF_TX_RING, (uint32_t)c->ring, sizeof(struct xdp_desc), "tx");
	if (bind_xsk(x->fd, ifindex, queue, XDP_SHARED_UMEM, owner->fd))
		die("bind ifindex %d queue %d (shared UMEM): %s", ifindex, queue, strerror(errno));
	/* Copy mode sends at most 32 frames per sendto() unless raised. */
	x->tx_budget = setsockopt(x->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(budget)) == 0;
}

static void close_xsk(struct xsk *x)
{
	unmap_ring(&x->fill);
	unmap_ring(&x->comp);
	unmap_ring(&x->rx);
	unmap_ring(&x->tx);
	if (x->fd > 0)
		close(x->fd);
	x->fd = -1;
}

static const char *bind_mode(int fd)
{
	struct xdp_options o;
	socklen_t l = sizeof(o);

	if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &o, &l) < 0)
		return "unknown";
	return o.flags & XDP_OPTIONS_ZEROCOPY ? "zero-copy" : "copy";
}

/* ---- the XDP program ---- */

struct xdp {
	struct bpf_object *obj;
	int prog_fd, map_fd, link_fd;
	const char *mode;
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void xdp_load(struct xdp *x, int queues)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "xdpsock_c");
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	libbpf_set_print(libbpf_print);
	x->obj = bpf_object__open_mem(xdpsock_bpf_start, (size_t)(xdpsock_bpf_end - xdpsock_bpf_start), &opts);
	if (!x->obj)
		die("open BPF object: %s", strerror(errno));
	map = bpf_object__find_map_by_name(x->obj, "xsks");
	prog = bpf_object__find_program_by_name(x->obj, "xdpsock_redirect");
	if (!map || !prog)
		die("BPF object lacks map xsks or program xdpsock_redirect");
	if ((err = bpf_map__set_max_entries(map, (uint32_t)queues)))
		die("xsks max_entries: %s", strerror(-err));
	if ((err = bpf_object__load(x->obj)))
		die("load BPF object: %s", strerror(-err));
	x->prog_fd = bpf_program__fd(prog);
	x->map_fd = bpf_map__fd(map);
	x->link_fd = -1;
}

static void xdp_register(struct xdp *x, int queue, int fd)
{
	uint32_t k = (uint32_t)queue, v = (uint32_t)fd;

	if (bpf_map_update_elem(x->map_fd, &k, &v, BPF_ANY))
		die("xsks[%d] = fd %d: %s", queue, fd, strerror(errno));
}

/*
 * Attach through a bpf_link, like the Go peers: the kernel detaches the
 * program when the link's last fd closes, so nothing is left on the
 * interface even if the process is killed.
 */
static void xdp_attach(struct xdp *x, int ifindex, const char *mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, drv, .flags = XDP_FLAGS_DRV_MODE);
	LIBBPF_OPTS(bpf_link_create_opts, skb, .flags = XDP_FLAGS_SKB_MODE);
	int e1 = 0;

	if (!strcmp(mode, "native") || !strcmp(mode, "drv") || !strcmp(mode, "driver") || !strcmp(mode, "auto") ||
	    !*mode) {
		x->link_fd = bpf_link_create(x->prog_fd, ifindex, BPF_XDP, &drv);
		x->mode = "native";
		if (x->link_fd >= 0)
			return;
		e1 = errno;
		if (strcmp(mode, "auto") && *mode)
			die("attach xdp to ifindex %d (native): %s", ifindex, strerror(e1));
	} else if (strcmp(mode, "generic") && strcmp(mode, "skb")) {
		die("xdp mode \"%s\" (want auto, native or generic)", mode);
	}
	x->link_fd = bpf_link_create(x->prog_fd, ifindex, BPF_XDP, &skb);
	x->mode = "generic";
	if (x->link_fd < 0) {
		if (e1)
			die("attach xdp to ifindex %d (auto): native: %s; generic: %s", ifindex, strerror(e1),
			    strerror(errno));
		die("attach xdp to ifindex %d (generic): %s", ifindex, strerror(errno));
	}
}

static void xdp_close(struct xdp *x)
{
	if (x->link_fd >= 0)
		close(x->link_fd); /* detaches */
	x->link_fd = -1;
	bpf_object__close(x->obj);
}

/* ---- counters, per-second lines ---- */

struct snapshot {
	uint64_t rx, tx, drops, fill_empty, wakeups;
};

static struct snapshot read_counters(void)
{
	struct snapshot s = { READ(rx), READ(tx), READ(drops), 0, READ(wakeups) };
	struct xdp_statistics st;
	socklen_t l = sizeof(st);

	if (stats_xsk && getsockopt(stats_xsk->fd, SOL_XDP, XDP_STATISTICS, &st, &l) == 0) {
		s.fill_empty += st.rx_fill_ring_empty_descs;
		s.drops += st.rx_dropped + st.rx_ring_full;
	}
	return s;
}

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *monitor(void *arg)
{
	struct snapshot prev = read_counters(), cur;
	struct timespec next;
	double pt = mono_now(), now, dt;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&mon_mu);
	for (;;) {
		next.tv_sec++;
		while (!mon_done && pthread_cond_timedwait(&mon_cv, &mon_mu, &next) != ETIMEDOUT)
			;
		if (mon_done)
			break;
		cur = read_counters();
		now = mono_now();
		dt = now - pt;
		printf("rx/s=%.0f tx/s=%.0f drop/s=%.0f fill_ring_empty/s=%.0f wakeups/s=%.0f\n",
		       (double)(cur.rx - prev.rx) / dt, (double)(cur.tx - prev.tx) / dt,
		       (double)(cur.drops - prev.drops) / dt, (double)(cur.fill_empty - prev.fill_empty) / dt,
		       (double)(cur.wakeups - prev.wakeups) / dt);
		fflush(stdout);
		prev = cur;
		pt = now;
	}
	pthread_mutex_unlock(&mon_mu);
	return NULL;
}

/* ---- the loops ---- */

/* Waits for the rx ring of x to fill: spins (waking the kernel when its
 * fill ring asks for it) or blocks in poll(). */
static inline void wait_rx(struct xsk *x, struct pollfd *pfd, bool busy, uint64_t *wakeups)
{
	if (busy) {
		if (need_wakeup(&x->fill)) {
			recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			PUBLISH(wakeups, ++*wakeups);
		}
		cpu_relax();
		return;
	}
	PUBLISH(wakeups, ++*wakeups);
	if (poll(pfd, 1, POLL_TIMEOUT_MS) < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
}

static void rxdrop(struct xsk *x, const struct config *c)
{
	struct ring *rx = &x->rx, *fq = &x->fill;
	const struct xdp_desc *descs = rx->descs;
	uint64_t *addrs = fq->descs;
	struct pollfd pfd = { .fd = x->fd, .events = POLLIN };
	uint32_t batch = (uint32_t)c->batch;
	uint64_t pkts = 0, wakeups = 0;

	while (!stop) {
		uint32_t idx, fidx, n = cons_peek(rx, batch, &idx);

		if (n == 0) {
			wait_rx(x, &pfd, c->busy, &wakeups);
			continue;
		}
		/* Every received frame goes straight back to the fill ring,
		 * which has room: it holds every frame in circulation. */
		fidx = fq->cached_prod;
		for (uint32_t j = 0; j < n; j++)
			addrs[(fidx + j) & fq->mask] = descs[(idx + j) & rx->mask].addr;
		prod_submit(fq, n);
		cons_release(rx, n);
		PUBLISH(rx, pkts += n);
	}
}

/* Moves free frames to the fill ring, as many as it has room for. */
static inline void refill(struct ring *fq, uint64_t *free_frames, uint32_t *nfree)
{
	uint64_t *addrs = fq->descs;
	uint32_t n = prod_free(fq, *nfree), idx = fq->cached_prod;

	if (n == 0)
		return;
	for (uint32_t j = 0; j < n; j++)
		addrs[(idx + j) & fq->mask] = free_frames[--*nfree];
	prod_submit(fq, n);
}

static void l2fwd(struct xsk *in, struct xsk *out, char *umem, uint64_t *free_frames, const unsigned char *dst,
		  const unsigned char *src, const struct config *c)
{
	struct ring *rx = &in->rx, *fq = &in->fill, *tx = &out->tx, *cq = &out->comp;
	const struct xdp_desc *rdescs = rx->descs;
	struct xdp_desc *tdescs = tx->descs;
	const uint64_t *caddrs = cq->descs;
	struct pollfd pfd = { .fd = in->fd, .events = POLLIN };
	uint32_t batch = (uint32_t)c->batch, nfree = 0;
	uint64_t rx_pkts = 0, tx_pkts = 0, drops = 0, wakeups = 0;

	/* The frames not on the fill ring: the spare ones cover frames in
	 * flight on the tx and completion rings. */
	for (uint32_t f = (uint32_t)c->frames; f > (uint32_t)c->ring; f--)
		free_frames[nfree++] = (uint64_t)(f - 1) * FRAME_SIZE;

	while (!stop) {
		uint32_t idx, tidx, n, k;

		/* Take back every transmitted frame, in bulk. */
		n = cons_peek(cq, cq->size, &idx);
		if (n) {
			for (uint32_t j = 0; j < n; j++)
				free_frames[nfree++] = caddrs[(idx + j) & cq->mask];
			cons_release(cq, n);
		}

		n = cons_peek(rx, batch, &idx);
		if (n == 0) {
			refill(fq, free_frames, &nfree);
			wait_rx(in, &pfd, c->busy, &wakeups);
			continue;
		}

		for (uint32_t j = 0; j < n; j++) {
			const struct xdp_desc *d = &rdescs[(idx + j) & rx->mask];
			unsigned char *p = (unsigned char *)umem + d->addr;

			if (d->len < ETH_HLEN)
				continue;
			if (dst)
				memcpy(p, dst, ETH_ALEN);
			memcpy(p + ETH_ALEN, src, ETH_ALEN);
		}

		k = prod_free(tx, n);
		tidx = tx->cached_prod;
		for (uint32_t j = 0; j < k; j++) {
			const struct xdp_desc *d = &rdescs[(idx + j) & rx->mask];
			struct xdp_desc *t = &tdescs[(tidx + j) & tx->mask];

			t->addr = d->addr;
			t->len = d->len;
			t->options = 0;
		}
		/* No room on the tx ring: drop the rest, their frames are free. */
		for (uint32_t j = k; j < n; j++)
			free_frames[nfree++] = rdescs[(idx + j) & rx->mask].addr;
		cons_release(rx, n);
		PUBLISH(rx, rx_pkts += n);
		if (k < n)
			PUBLISH(drops, drops += n - k);

		if (k) {
			prod_submit(tx, k);
			PUBLISH(tx, tx_pkts += k);
			/* Copy mode always asks for the kick: one sendto() sends
			 * the whole ring when XDP_MAX_TX_SKB_BUDGET took. */
			if (need_wakeup(tx)) {
				sendto(out->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
				wakeups++;
				for (int i = 0; !out->tx_budget && i < 8 &&
						__atomic_load_n(tx->consumer, __ATOMIC_ACQUIRE) != tx->cached_prod;
				     i++) {
					sendto(out->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
					wakeups++;
				}
				PUBLISH(wakeups, wakeups);
			}
		}
		refill(fq, free_frames, &nfree);
	}
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	struct config c = {
		.xdp_mode = "auto", .bind = "auto", .queues = 1, .batch = 64, .frames = 4096, .ring = 2048, .cpu = -1,
	};
	struct xsk in = { .fd = -1 }, out = { .fd = -1 };
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	unsigned char src[ETH_ALEN], dst[ETH_ALEN];
	bool have_dst = false;
	struct sigaction sa;
	struct xdp xdp;
	struct snapshot s;
	pthread_condattr_t ca;
	pthread_t mon;
	sigset_t block, old;
	int in_ifindex, out_ifindex = 0;
	size_t umem_len;
	uint64_t *free_frames = NULL;
	double t0, secs;
	void *umem;

	parse_args(argc, argv, &c);

	in_ifindex = (int)if_nametoindex(c.iface);
	if (!in_ifindex)
		die("interface %s: %s", c.iface, strerror(errno));
	if (c.out) {
		out_ifindex = (int)if_nametoindex(c.out);
		if (!out_ifindex)
			die("interface %s: %s", c.out, strerror(errno));
		iface_mac(c.out, src);
		if (c.dst_mac && *c.dst_mac) {
			if (parse_mac(c.dst_mac, dst))
				die("invalid MAC address \"%s\"", c.dst_mac);
			have_dst = true;
		}
	}
	if (c.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(c.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("pin to CPU %d: %s", c.cpu, strerror(errno));
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);

	/* Not needed with memcg-accounted BPF memory and CAP_IPC_LOCK, and
	 * refused without CAP_SYS_RESOURCE: try, never fail. */
	setrlimit(RLIMIT_MEMLOCK, &rl);

	umem_len = (size_t)c.frames * FRAME_SIZE;
	umem = mmap(NULL, umem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (umem == MAP_FAILED)
		die("mmap umem: %s", strerror(errno));

	/* Sockets and map entry first, XDP last: once the program is on the
	 * interface (the harness's sign of readiness) frames reach a socket. */
	xdp_load(&xdp, c.queues);
	open_rx_socket(&in, umem, umem_len, in_ifindex, 0, &c);
	if (c.out)
		open_tx_socket(&out, &in, out_ifindex, 0, &c);
	xdp_register(&xdp, 0, in.fd);
	xdp_attach(&xdp, in_ifindex, c.xdp_mode);
	stats_xsk = &in;
	if (c.out)
		fprintf(stderr, "%s l2fwd: %d queue(s) %s -> %s, xdp %s, %s mode, tx budget %s\n", prog_name, c.queues,
			c.iface, c.out, xdp.mode, bind_mode(in.fd), out.tx_budget ? "raised" : "32");
	else
		fprintf(stderr, "%s: %d queue(s) on %s, xdp %s, %s mode\n", prog_name, c.queues, c.iface, xdp.mode,
			bind_mode(in.fd));

	if (c.duration > 0) {
		struct itimerval it = { 0 };

		it.it_value.tv_sec = (time_t)c.duration;
		it.it_value.tv_usec = (suseconds_t)((c.duration - (double)it.it_value.tv_sec) * 1e6);
		if (!it.it_value.tv_sec && !it.it_value.tv_usec)
			it.it_value.tv_usec = 1;
		setitimer(ITIMER_REAL, &it, NULL);
	}
	if (!c.quiet) {
		/* The monitor blocks the stop signals so they interrupt the
		 * worker's poll(). */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&mon_cv, &ca);
		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		if (pthread_create(&mon, NULL, monitor, NULL))
			die("start monitor thread");
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}

	if (c.out) {
		/* The l2fwd free-frame stack: the only allocation, before the loop. */
		free_frames = calloc((size_t)c.frames, sizeof(*free_frames));
		if (!free_frames)
			die("out of memory");
	}
	t0 = mono_now();
	if (c.out)
		l2fwd(&in, &out, umem, free_frames, have_dst ? dst : NULL, src, &c);
	else
		rxdrop(&in, &c);
	secs = mono_now() - t0;

	if (!c.quiet) {
		pthread_mutex_lock(&mon_mu);
		mon_done = true;
		pthread_cond_signal(&mon_cv);
		pthread_mutex_unlock(&mon_mu);
		pthread_join(mon, NULL);
	}
	s = read_counters();
	/* No garbage collector and no allocation in the loops: allocs=0. */
	printf("summary: rx_pkts=%llu tx_pkts=%llu drops=%llu fill_ring_empty=%llu wakeups=%llu seconds=%.3f allocs=0\n",
	       (unsigned long long)s.rx, (unsigned long long)s.tx, (unsigned long long)s.drops,
	       (unsigned long long)s.fill_empty, (unsigned long long)s.wakeups, secs);
	fflush(stdout);

	xdp_close(&xdp);
	stats_xsk = NULL;
	close_xsk(&out);
	close_xsk(&in);
	munmap(umem, umem_len);
	free(free_frames);
	return 0;
}
