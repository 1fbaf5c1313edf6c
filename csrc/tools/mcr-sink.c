/* mcr-sink — independent receiver for mcrtest traffic.
 *
 * Joins the given multicast groups (or listens on unicast ports), validates every
 * datagram (header check, length, whole payload pattern) and counts per
 * (group, stream): received, unique, duplicates, reordered, lost, corrupt.  Latency
 * (receive time − send time, CLOCK_MONOTONIC) goes into a log-linear histogram.
 * The netns UDP counters from /proc/net/snmp are reported as deltas, and each
 * socket's own drop counter (SO_MEMINFO: receive buffer full, ...)
 * as `socket_drops`, so that "read + dropped at the socket" accounts for every
 * datagram that reached this receiver.  --stop-file lets a test stop the sink
 * exactly when a known number of datagrams has been read or dropped.
 *
 * One socket per address family and UDP port, bound to 0.0.0.0:port (IPv4) or
 * [::]:port (IPv6, IPV6_V6ONLY); the group a datagram was sent to is taken from
 * IP_PKTINFO / IPV6_PKTINFO, so several groups on one port are told apart, and
 * IP_MULTICAST_ALL / IPV6_MULTICAST_ALL is off so only groups joined here are
 * delivered. IPv6 groups are joined with IPV6_JOIN_GROUP (MLD). One run may mix
 * IPv4 and IPv6 groups.
 */
#include "mcrtest.h"
#include "tool.h"

#include <fcntl.h>
#include <getopt.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_GROUPS	     1024
#define BATCH		     64
#define RXBUF		     65536
#define DUP_CAP_BITS	     (64ull << 20) /* 64 Mi sequence numbers tracked per stream */
#define DUP_CAP_WORDS	     (DUP_CAP_BITS / 64)
#define DEFAULT_RCVBUF	     (32 << 20)
#define DEFAULT_STOP_WAIT_MS 10000
#define STOP_FILE_POLL_NS    20000000ull /* check the stop file every 20 ms */
#define DRAIN_MAX_ROUNDS     4096	 /* final drain: at most 4096 batches per socket */

/* ------------------------------------------------------------------ options */

struct gspec {
	union mcrt_sockaddr addr; /* port inside; an IPv6 %IFNAME scope: the join interface */
	uint16_t port;
};

struct opts {
	struct gspec groups[MAX_GROUPS];
	int ngroups;
	const char *iface;
	unsigned ifindex;
	uint64_t expect;       /* per stream, 0 = not given */
	uint64_t expect_total; /* stop when total unique reaches it */
	double duration;
	uint64_t idle_ms;
	uint64_t first_timeout_ms;
	const char *ready_file;
	bool json;
	uint64_t interval_ms;
	int rcvbuf;
	const char *stop_file;
	uint64_t stop_wait_ms;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mcr-sink --group G:P [--group G:P ...] [options]\n"
		"  --group ADDR:PORT      multicast group to join, or unicast/0.0.0.0 to listen on "
		"PORT\n"
		"                         A.B.C.D:PORT, or [IPV6]:PORT ([IPV6%%IFNAME]:PORT joins\n"
		"                         on IFNAME, [::]:PORT listens); families may be mixed\n"
		"  --iface NAME           join the groups on this interface\n"
		"  --expect N             datagrams expected per stream (lost = N - unique)\n"
		"  --expect-total N       stop once N unique datagrams (all streams) have arrived\n"
		"  --duration SEC         stop after SEC seconds\n"
		"  --idle-ms MS           stop after MS without datagrams, once one has arrived (0 "
		"= off)\n"
		"  --first-timeout-ms MS  stop if nothing arrives within MS of being ready\n"
		"  --ready-file PATH      write \"ready\\n\" to PATH once every socket is bound "
		"and joined\n"
		"  --interval-ms MS       print a progress JSON line on stderr every MS\n"
		"  --rcvbuf BYTES         socket receive buffer (default 32 MiB, SO_RCVBUFFORCE)\n"
		"  --stop-file PATH       once PATH holds a count N, stop as soon as N datagrams "
		"have been\n"
		"                         read or dropped at the sockets (socket_drops)\n"
		"  --stop-wait-ms MS      give up waiting for that count MS after PATH appeared "
		"(default %d)\n"
		"  --json                 one JSON object on stdout instead of the human report\n"
		"Stops on SIGINT/SIGTERM too (after reading what is already queued).\n"
		"Exit: 0 ok, 1 runtime error, 2 usage error.\n",
		DEFAULT_STOP_WAIT_MS);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		O_GROUP = 1000,
		O_IFACE,
		O_EXPECT,
		O_EXPECT_TOTAL,
		O_DUR,
		O_IDLE,
		O_FIRST,
		O_READY,
		O_JSON,
		O_INTERVAL,
		O_RCVBUF,
		O_STOP_FILE,
		O_STOP_WAIT,
		O_HELP
	};
	static const struct option lo[] = {
		{ "group", required_argument, 0, O_GROUP },
		{ "iface", required_argument, 0, O_IFACE },
		{ "expect", required_argument, 0, O_EXPECT },
		{ "expect-total", required_argument, 0, O_EXPECT_TOTAL },
		{ "duration", required_argument, 0, O_DUR },
		{ "idle-ms", required_argument, 0, O_IDLE },
		{ "first-timeout-ms", required_argument, 0, O_FIRST },
		{ "ready-file", required_argument, 0, O_READY },
		{ "json", no_argument, 0, O_JSON },
		{ "interval-ms", required_argument, 0, O_INTERVAL },
		{ "rcvbuf", required_argument, 0, O_RCVBUF },
		{ "stop-file", required_argument, 0, O_STOP_FILE },
		{ "stop-wait-ms", required_argument, 0, O_STOP_WAIT },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	memset(o, 0, sizeof *o);
	o->rcvbuf = DEFAULT_RCVBUF;
	o->stop_wait_ms = DEFAULT_STOP_WAIT_MS;
	uint64_t v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_GROUP: {
			if (o->ngroups >= MAX_GROUPS)
				tool_die_usage("too many --group: %s", optarg);
			struct gspec *g = &o->groups[o->ngroups];
			int err = mcrt_parse_addr_port(optarg, &g->addr);
			if (err)
				tool_die_addr("--group", optarg, err);
			g->port = mcrt_port(&g->addr);
			for (int i = 0; i < o->ngroups; i++)
				if (mcrt_same_addr(&o->groups[i].addr, &g->addr) &&
				    o->groups[i].port == g->port)
					tool_die_usage("--group %s given twice", optarg);
			o->ngroups++;
			break;
		}
		case O_IFACE:
			if (strlen(optarg) >= IF_NAMESIZE)
				tool_die_usage("--iface name too long: %s", optarg);
			o->iface = optarg;
			break;
		case O_EXPECT:
			if (mcrt_parse_u64(optarg, &o->expect) || o->expect == 0)
				tool_die_usage("--expect wants a positive integer, got '%s'",
					       optarg);
			break;
		case O_EXPECT_TOTAL:
			if (mcrt_parse_u64(optarg, &o->expect_total) || o->expect_total == 0)
				tool_die_usage("--expect-total wants a positive integer, got '%s'",
					       optarg);
			break;
		case O_DUR:
			if (mcrt_parse_double(optarg, &o->duration) || o->duration <= 0 ||
			    o->duration > 1e7)
				tool_die_usage(
					"--duration wants a positive number of seconds, got '%s'",
					optarg);
			break;
		case O_IDLE:
			if (mcrt_parse_u64(optarg, &o->idle_ms))
				tool_die_usage("--idle-ms wants milliseconds, got '%s'", optarg);
			break;
		case O_FIRST:
			if (mcrt_parse_u64(optarg, &o->first_timeout_ms))
				tool_die_usage("--first-timeout-ms wants milliseconds, got '%s'",
					       optarg);
			break;
		case O_READY: o->ready_file = optarg; break;
		case O_JSON: o->json = true; break;
		case O_INTERVAL:
			if (mcrt_parse_u64(optarg, &o->interval_ms))
				tool_die_usage("--interval-ms wants milliseconds, got '%s'",
					       optarg);
			break;
		case O_RCVBUF:
			if (mcrt_parse_u64(optarg, &v) || v < 1024 || v > (1u << 30))
				tool_die_usage("--rcvbuf wants 1024..1073741824 bytes, got '%s'",
					       optarg);
			o->rcvbuf = (int)v;
			break;
		case O_STOP_FILE: o->stop_file = optarg; break;
		case O_STOP_WAIT:
			if (mcrt_parse_u64(optarg, &o->stop_wait_ms))
				tool_die_usage("--stop-wait-ms wants milliseconds, got '%s'",
					       optarg);
			break;
		case 'h':
		case O_HELP: usage(stdout); exit(0);
		default: tool_die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		tool_die_usage("unexpected argument '%s'", argv[optind]);
	if (o->ngroups == 0)
		tool_die_usage("%s", "at least one --group is required");
	if (o->iface) {
		o->ifindex = if_nametoindex(o->iface);
		if (!o->ifindex) {
			fprintf(stderr, "mcr-sink: no interface '%s'\n", o->iface);
			exit(1);
		}
	}
}

/* ------------------------------------------------------------------ accounting */

struct stream {
	uint32_t id;
	bool seen_valid;
	uint64_t received, unique, dups, reordered, corrupt;
	uint64_t first_seq, last_seq, highest;
	/* CLOCK_MONOTONIC receive times of the first and the last unique datagram, and the
	 * longest time between two consecutive unique datagrams (with the time it ended) */
	uint64_t first_rx_ns, last_rx_ns, max_gap_ns, max_gap_end_ns;
	uint64_t untracked; /* valid datagrams whose sequence fell outside the duplicate window */
	uint64_t *bits;	    /* bit (seq - base) set once seq has been seen */
	uint64_t nwords, base;
};

struct group {
	union mcrt_sockaddr addr; /* address and family; port 0 */
	uint16_t port;
	bool multicast, wildcard, requested;
	int sock;
	struct stream *streams;
	size_t nstreams, cap, last;
	uint64_t foreign, bad_header;
};

static struct group **g_groups;
static size_t g_ngroups, g_capgroups;

static struct group *group_add(const union mcrt_sockaddr *addr, uint16_t port, int sock,
			       bool requested)
{
	if (g_ngroups == g_capgroups) {
		g_capgroups = g_capgroups ? g_capgroups * 2 : 16;
		g_groups = realloc(g_groups, g_capgroups * sizeof *g_groups);
		if (!g_groups)
			abort();
	}
	struct group *g = calloc(1, sizeof *g);
	if (!g)
		abort();
	g->addr = *addr;
	if (addr->sa.sa_family == AF_INET6)
		g->addr.v6.sin6_port = 0;
	else
		g->addr.v4.sin_port = 0;
	g->port = port;
	g->multicast = mcrt_is_multicast(addr);
	g->wildcard = mcrt_is_any(addr);
	g->requested = requested;
	g->sock = sock;
	g_groups[g_ngroups++] = g;
	return g;
}

static struct stream *stream_get(struct group *g, uint32_t id)
{
	if (g->nstreams && g->streams[g->last].id == id)
		return &g->streams[g->last];
	for (size_t i = 0; i < g->nstreams; i++)
		if (g->streams[i].id == id) {
			g->last = i;
			return &g->streams[i];
		}
	if (g->nstreams == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 8;
		g->streams = realloc(g->streams, g->cap * sizeof *g->streams);
		if (!g->streams)
			abort();
	}
	struct stream *s = &g->streams[g->nstreams];
	memset(s, 0, sizeof *s);
	s->id = id;
	g->last = g->nstreams++;
	return s;
}

/* Mark seq as seen. Returns 1 if new (or untrackable), 0 if a duplicate. */
static int seen_mark(struct stream *s, uint64_t seq)
{
	if (!s->bits && s->nwords == 0) {
		/* window starts a little below the first sequence seen, to allow early reordering */
		s->base = seq > 65536 ? (seq - 65536) & ~63ull : 0;
	}
	if (seq < s->base) {
		s->untracked++;
		return 1;
	}
	uint64_t off = seq - s->base;
	if (off >= DUP_CAP_BITS) {
		/* slide the window so that seq lands in its upper half */
		uint64_t nb = (seq - DUP_CAP_BITS / 2) & ~63ull;
		uint64_t drop = (nb - s->base) / 64;
		if (drop >= s->nwords) {
			memset(s->bits, 0, s->nwords * 8);
		} else {
			memmove(s->bits, s->bits + drop, (s->nwords - drop) * 8);
			memset(s->bits + (s->nwords - drop), 0, drop * 8);
		}
		s->base = nb;
		off = seq - nb;
	}
	uint64_t w = off / 64;
	if (w >= s->nwords) {
		uint64_t nw = s->nwords ? s->nwords : 1024;
		while (nw <= w)
			nw *= 2;
		if (nw > DUP_CAP_WORDS)
			nw = DUP_CAP_WORDS;
		uint64_t *nbits = realloc(s->bits, nw * 8);
		if (!nbits) {
			s->untracked++;
			return 1;
		}
		memset(nbits + s->nwords, 0, (nw - s->nwords) * 8);
		s->bits = nbits;
		s->nwords = nw;
	}
	uint64_t m = 1ull << (off & 63);
	if (s->bits[w] & m)
		return 0;
	s->bits[w] |= m;
	return 1;
}

/* ------------------------------------------------------------------ latency histogram
 * Values in ns.  Below 2048 ns: 1 ns buckets.  Above: 1024 buckets per power of two
 * (relative resolution < 0.1 %, i.e. ≤ 1 µs up to 1 ms, ≤ 10 ms at 10 s).  Clamped at 10 s. */
#define H_LIN  2048u
#define H_SUB  1024u
#define H_MAXV 10000000000ull
#define H_N    (H_LIN + 24u * H_SUB)

static uint64_t h_counts[H_N];
static uint64_t h_n, h_max, h_overflow, h_negative;
static long double h_sum;

static unsigned h_index(uint64_t v)
{
	if (v < H_LIN)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - 10u;
	return H_LIN + (shift - 1u) * H_SUB + (unsigned)((v >> shift) - H_SUB);
}
static double h_mid(unsigned idx)
{
	if (idx < H_LIN)
		return (double)idx;
	unsigned r = idx - H_LIN, shift = r / H_SUB + 1u;
	uint64_t lo = (uint64_t)(r % H_SUB + H_SUB) << shift;
	return (double)lo + (double)(1ull << shift) / 2.0;
}
static void h_add(int64_t v)
{
	if (v < 0) {
		h_negative++;
		v = 0;
	}
	uint64_t u = (uint64_t)v;
	if (u > h_max)
		h_max = u;
	h_sum += (long double)u;
	h_n++;
	if (u > H_MAXV) {
		h_overflow++;
		u = H_MAXV;
	}
	h_counts[h_index(u)]++;
}
/* value (ns) at quantile q */
static double h_quantile(double q)
{
	if (!h_n)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h_n);
	if ((double)rank < q * (double)h_n)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < H_N; i++) {
		acc += h_counts[i];
		if (acc >= rank) {
			double m = h_mid(i);
			return m > (double)h_max ? (double)h_max : m;
		}
	}
	return (double)h_max;
}

/* ------------------------------------------------------------------ /proc/net/snmp{,6}
 * The netns UDP counters of both families, summed: IPv4 from /proc/net/snmp ("Udp:" name and
 * value lines), IPv6 from /proc/net/snmp6 ("Udp6InDatagrams N" lines). The kernel verifies
 * every UDP checksum before a socket sees the datagram (mandatory in IPv6: a zero checksum is
 * an error too) and counts a bad one under InCsumErrors and InErrors of its family. */

struct udpstat {
	bool ok;
	uint64_t in_datagrams, in_errors, in_csum_errors, rcvbuf_errors;
};

static struct udpstat read_udp_snmp(void)
{
	struct udpstat u = { 0 };
	FILE *f = fopen("/proc/net/snmp", "r");
	if (!f)
		return u;
	char names[1024], vals[1024];
	while (fgets(names, sizeof names, f)) {
		if (strncmp(names, "Udp: ", 5) != 0)
			continue;
		if (!fgets(vals, sizeof vals, f))
			break;
		char *sn, *sv;
		char *n = strtok_r(names + 5, " \n", &sn);
		char *v = strtok_r(vals + 5, " \n", &sv);
		while (n && v) {
			uint64_t x = strtoull(v, NULL, 10);
			if (!strcmp(n, "InDatagrams"))
				u.in_datagrams = x;
			else if (!strcmp(n, "InErrors"))
				u.in_errors = x;
			else if (!strcmp(n, "InCsumErrors"))
				u.in_csum_errors = x;
			else if (!strcmp(n, "RcvbufErrors"))
				u.rcvbuf_errors = x;
			n = strtok_r(NULL, " \n", &sn);
			v = strtok_r(NULL, " \n", &sv);
		}
		u.ok = true;
		break;
	}
	fclose(f);
	f = fopen("/proc/net/snmp6", "r");
	if (!f)
		return u; /* a kernel without IPv6: the IPv4 counters alone */
	char line[256];
	while (fgets(line, sizeof line, f)) {
		char name[64];
		unsigned long long x;
		if (sscanf(line, "%63s %llu", name, &x) != 2 || strncmp(name, "Udp6", 4) != 0)
			continue;
		if (!strcmp(name + 4, "InDatagrams"))
			u.in_datagrams += x;
		else if (!strcmp(name + 4, "InErrors"))
			u.in_errors += x;
		else if (!strcmp(name + 4, "InCsumErrors"))
			u.in_csum_errors += x;
		else if (!strcmp(name + 4, "RcvbufErrors"))
			u.rcvbuf_errors += x;
	}
	fclose(f);
	return u;
}

/* ------------------------------------------------------------------ sockets */

struct sock {
	int fd;
	int family;
	uint16_t port;
	int rcvbuf;
	size_t last_group;
};

static struct sock g_socks[MAX_GROUPS];
static int g_nsocks;

static void die_errno(const char *what)
{
	fprintf(stderr, "mcr-sink: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int open_port(int family, uint16_t port, int rcvbuf)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die_errno("socket");
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	union mcrt_sockaddr sa;
	memset(&sa, 0, sizeof sa);
	if (family == AF_INET6) {
		/* IPv4 datagrams go to the IPv4 socket of the port, never to this one */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one))
			die_errno("IPV6_V6ONLY");
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one))
			die_errno("IPV6_RECVPKTINFO");
		/* only groups joined on this socket, not every group joined in the namespace */
		setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof zero);
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(port);
		sa.v6.sin6_addr = in6addr_any;
	} else {
		if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one))
			die_errno("IP_PKTINFO");
		/* only groups joined on this socket, not every group joined in the namespace */
		setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(port);
		sa.v4.sin_addr.s_addr = htonl(INADDR_ANY);
	}
	int rb = rcvbuf;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
	if (bind(fd, &sa.sa, mcrt_sockaddr_len(&sa))) {
		fprintf(stderr, "mcr-sink: bind %s:%u: %s\n",
			family == AF_INET6 ? "[::]" : "0.0.0.0", port, strerror(errno));
		exit(1);
	}
	int s = g_nsocks++;
	g_socks[s].fd = fd;
	g_socks[s].family = family;
	g_socks[s].port = port;
	socklen_t l = sizeof g_socks[s].rcvbuf;
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &g_socks[s].rcvbuf, &l);
	return s;
}

/* Join group g on socket fd: IP_ADD_MEMBERSHIP (IGMP) or IPV6_JOIN_GROUP (MLD), on the
 * group's %IFNAME scope, else on --iface, else where the kernel routes the group. */
static int join(int fd, const union mcrt_sockaddr *g, unsigned ifindex)
{
	if (g->sa.sa_family == AF_INET6) {
		unsigned on = g->v6.sin6_scope_id ? g->v6.sin6_scope_id : ifindex;
		struct ipv6_mreq mr = { .ipv6mr_multiaddr = g->v6.sin6_addr,
					.ipv6mr_interface = on };
		return setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr);
	}
	struct ip_mreqn mr = { .imr_multiaddr = g->v4.sin_addr, .imr_ifindex = (int)ifindex };
	return setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
}

static void setup(const struct opts *o)
{
	for (int i = 0; i < o->ngroups; i++) {
		const struct gspec *gs = &o->groups[i];
		const int family = gs->addr.sa.sa_family;
		int s = -1;
		for (int j = 0; j < g_nsocks; j++)
			if (g_socks[j].port == gs->port && g_socks[j].family == family)
				s = j;
		if (s < 0)
			s = open_port(family, gs->port, o->rcvbuf);
		struct group *g = group_add(&gs->addr, gs->port, s, true);
		if (g->multicast && join(g_socks[s].fd, &gs->addr, o->ifindex)) {
			char ab[MCRT_ADDR_PORT_STRLEN];
			fprintf(stderr, "mcr-sink: join %s on %s: %s%s\n",
				mcrt_fmt_addr_port(&gs->addr, ab, sizeof ab),
				o->iface ? o->iface : "(route)", strerror(errno),
				o->iface ? "" : " (try --iface)");
			exit(1);
		}
	}
}

/* The socket's own drop counter (sk_drops: receive buffer full, ...) via
 * SO_MEMINFO; false when the kernel does not support it. */
static bool sock_drops(int fd, uint64_t *out)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t l = sizeof mem;
	memset(mem, 0, sizeof mem);
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &l) ||
	    l <= SK_MEMINFO_DROPS * sizeof mem[0])
		return false;
	*out = mem[SK_MEMINFO_DROPS];
	return true;
}

/* Drops of every socket; false if any socket cannot report them. */
static bool all_sock_drops(uint64_t *out)
{
	uint64_t sum = 0;
	for (int i = 0; i < g_nsocks; i++) {
		uint64_t d;
		if (!sock_drops(g_socks[i].fd, &d))
			return false;
		sum += d;
	}
	*out = sum;
	return true;
}

/* The count N in the stop file, or -1 while the file is absent or incomplete. */
static int64_t read_stop_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char buf[32];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *nl = strchr(buf, '\n');
	if (!nl)
		return -1; /* written without its newline yet */
	*nl = 0;
	uint64_t v;
	if (mcrt_parse_u64(buf, &v) || v > INT64_MAX) {
		fprintf(stderr, "mcr-sink: stop file %s does not hold a count\n", path);
		exit(1);
	}
	return (int64_t)v;
}

static struct group *group_for(int s, const union mcrt_sockaddr *dst)
{
	struct sock *k = &g_socks[s];
	if (k->last_group < g_ngroups) {
		struct group *g = g_groups[k->last_group];
		if (g->sock == s && mcrt_same_addr(&g->addr, dst))
			return g;
	}
	struct group *wild = NULL;
	size_t wi = 0;
	for (size_t i = 0; i < g_ngroups; i++) {
		struct group *g = g_groups[i];
		if (g->sock != s)
			continue;
		if (mcrt_same_addr(&g->addr, dst)) {
			k->last_group = i;
			return g;
		}
		if (g->wildcard && g->requested && !wild) {
			wild = g;
			wi = i;
		}
	}
	/* unicast/broadcast to a wildcard listener lands on the wildcard group; anything else
   * (e.g. unicast to a port that was only given with a group address) gets its own
   * unrequested entry so that nothing is silently ignored */
	if (wild && !mcrt_is_multicast(dst)) {
		k->last_group = wi;
		return wild;
	}
	struct group *g = group_add(dst, k->port, s, false);
	k->last_group = g_ngroups - 1;
	return g;
}

/* ------------------------------------------------------------------ main */

struct totals {
	uint64_t received, unique, dups, reordered, lost, corrupt, foreign;
};

static uint64_t stream_lost(const struct opts *o, const struct stream *s)
{
	uint64_t want = o->expect ? o->expect : (s->seen_valid ? s->highest + 1 : 0);
	return want > s->unique ? want - s->unique : 0;
}

static struct totals totals(const struct opts *o)
{
	struct totals t = { 0 };
	for (size_t i = 0; i < g_ngroups; i++) {
		struct group *g = g_groups[i];
		t.foreign += g->foreign;
		t.corrupt += g->bad_header;
		t.received += g->bad_header;
		for (size_t j = 0; j < g->nstreams; j++) {
			struct stream *s = &g->streams[j];
			t.received += s->received;
			t.unique += s->unique;
			t.dups += s->dups;
			t.reordered += s->reordered;
			t.corrupt += s->corrupt;
			t.lost += stream_lost(o, s);
		}
	}
	if (o->expect_total && o->expect_total > t.unique && o->expect_total - t.unique > t.lost)
		t.lost = o->expect_total - t.unique;
	return t;
}

static uint64_t g_rx_any; /* datagrams of any kind */
static uint64_t g_first_rx, g_last_rx;
static uint64_t g_unique_total;

static void handle(const uint8_t *ramp, int s, const uint8_t *p, size_t n, bool trunc,
		   const union mcrt_sockaddr *dst, uint64_t rx_ns)
{
	struct group *g = group_for(s, dst);
	struct mcrt_hdr h;
	enum mcrt_parse r = mcrt_read_hdr(p, n, &h);
	if (r == MCRT_FOREIGN) {
		g->foreign++;
		return;
	}
	if (r == MCRT_BAD_HDR) {
		g->bad_header++;
		return;
	}
	struct stream *st = stream_get(g, h.stream);
	st->received++;
	if (trunc || h.len != n || h.len < MCRT_MIN_LEN ||
	    !mcrt_check_pattern(ramp, p, h.stream, h.seq, h.len)) {
		st->corrupt++;
		return;
	}
	int fresh = seen_mark(st, h.seq);
	if (!st->seen_valid) {
		st->seen_valid = true;
		st->first_seq = h.seq;
		st->highest = h.seq;
	}
	st->last_seq = h.seq;
	if (!fresh) {
		st->dups++;
		return;
	}
	if (!st->unique) {
		st->first_rx_ns = rx_ns;
	} else if (rx_ns - st->last_rx_ns > st->max_gap_ns) {
		st->max_gap_ns = rx_ns - st->last_rx_ns;
		st->max_gap_end_ns = rx_ns;
	}
	st->last_rx_ns = rx_ns;
	st->unique++;
	g_unique_total++;
	if (h.seq < st->highest)
		st->reordered++;
	else
		st->highest = h.seq;
	h_add((int64_t)(rx_ns - h.send_ns));
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void write_ready(const char *path)
{
	size_t l = strlen(path);
	char *tmp = malloc(l + 16);
	if (!tmp)
		abort();
	snprintf(tmp, l + 16, "%s.tmp%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "mcr-sink: cannot write ready file %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	free(tmp);
}

static void print_json_u64_or_null(const char *name, double us, bool have, bool comma)
{
	if (have)
		printf("\"%s\":%.3f%s", name, us, comma ? "," : "");
	else
		printf("\"%s\":null%s", name, comma ? "," : "");
}

/* Receive buffers, made once in main. */
enum { CTL = 64 };
static uint8_t *g_ramp, *g_bufs, *g_ctl;
static struct mmsghdr *g_msgs;
static struct iovec *g_iov;

/* The destination address of a received datagram (IP_PKTINFO / IPV6_PKTINFO; the
 * wildcard address of the family when the kernel gave none). */
static void pktinfo_dst(struct msghdr *m, int family, union mcrt_sockaddr *dst)
{
	memset(dst, 0, sizeof *dst);
	dst->sa.sa_family = (sa_family_t)family;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			dst->v4.sin_addr = pi.ipi_addr;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			dst->v6.sin6_addr = pi.ipi6_addr;
		}
	}
}

/* Read socket si in batches until it is empty or after max_rounds batches.
 * Returns 0, or -1 on a receive error (reported). */
static int receive(int si, int max_rounds)
{
	for (int rounds = 0; rounds < max_rounds; rounds++) {
		for (int i = 0; i < BATCH; i++) {
			g_iov[i].iov_base = g_bufs + (size_t)i * RXBUF;
			g_iov[i].iov_len = RXBUF;
			g_msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &g_iov[i],
							     .msg_iovlen = 1,
							     .msg_control = g_ctl + (size_t)i * CTL,
							     .msg_controllen = CTL };
		}
		int n = recvmmsg(g_socks[si].fd, g_msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				perror("mcr-sink: recvmmsg");
				return -1;
			}
			return 0;
		}
		uint64_t rx = mcrt_now_ns();
		if (!g_rx_any)
			g_first_rx = rx;
		g_rx_any += (uint64_t)n;
		g_last_rx = rx;
		for (int i = 0; i < n; i++) {
			union mcrt_sockaddr dst;
			pktinfo_dst(&g_msgs[i].msg_hdr, g_socks[si].family, &dst);
			handle(g_ramp, si, g_iov[i].iov_base, g_msgs[i].msg_len,
			       (g_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, &dst, rx);
		}
		if (n < BATCH)
			return 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	tool_init("mcr-sink", "(see mcr-sink --help)");
	parse_args(argc, argv, &o);
	tool_stop_on_signals();
	signal(SIGPIPE, SIG_IGN);

	g_ramp = mcrt_ramp_new();
	g_bufs = malloc((size_t)BATCH * RXBUF);
	g_msgs = calloc(BATCH, sizeof *g_msgs);
	g_iov = calloc(BATCH, sizeof *g_iov);
	g_ctl = calloc(BATCH, CTL);
	if (!g_ramp || !g_bufs || !g_msgs || !g_iov || !g_ctl) {
		fprintf(stderr, "mcr-sink: out of memory\n");
		return 1;
	}

	setup(&o);
	struct udpstat u0 = read_udp_snmp();
	struct pollfd *pfd = calloc((size_t)g_nsocks, sizeof *pfd);
	for (int i = 0; i < g_nsocks; i++) {
		pfd[i].fd = g_socks[i].fd;
		pfd[i].events = POLLIN;
	}
	const uint64_t t0 = mcrt_now_ns();
	if (o.ready_file)
		write_ready(o.ready_file);

	const uint64_t end_ns = o.duration > 0 ? t0 + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
	const uint64_t first_ns =
		o.first_timeout_ms ? t0 + o.first_timeout_ms * 1000000ull : UINT64_MAX;
	const uint64_t idle_ns = o.idle_ms * 1000000ull;
	const uint64_t ivl_ns = o.interval_ms * 1000000ull;
	uint64_t next_ivl = ivl_ns ? t0 + ivl_ns : UINT64_MAX;
	uint64_t ivl_last_unique = 0, ivl_last_t = t0;
	const char *stop_reason = "signal";
	int64_t stop_count = -1; /* from --stop-file, once it appeared */
	uint64_t stop_deadline = UINT64_MAX;

	for (;;) {
		uint64_t now = mcrt_now_ns();
		if (tool_stop)
			break;
		if (o.stop_file) {
			if (stop_count < 0) {
				stop_count = read_stop_file(o.stop_file);
				if (stop_count >= 0)
					stop_deadline = now + o.stop_wait_ms * 1000000ull;
			}
			if (stop_count >= 0) {
				uint64_t drops = 0;
				(void)all_sock_drops(&drops);
				if (g_rx_any + drops >= (uint64_t)stop_count) {
					stop_reason = "stop-file";
					break;
				}
				if (now >= stop_deadline) {
					stop_reason = "stop-file-timeout";
					break;
				}
			}
		}
		if (o.expect_total && g_unique_total >= o.expect_total) {
			stop_reason = "expect-total";
			break;
		}
		if (now >= end_ns) {
			stop_reason = "duration";
			break;
		}
		if (!g_rx_any && now >= first_ns) {
			stop_reason = "first-timeout";
			break;
		}
		if (idle_ns && g_rx_any && now >= g_last_rx + idle_ns) {
			stop_reason = "idle";
			break;
		}
		if (now >= next_ivl) {
			struct totals t = totals(&o);
			double dt = (double)(now - ivl_last_t) / 1e9;
			fprintf(stderr,
				"{\"t\":%.3f,\"received\":%llu,\"unique\":%llu,\"lost\":%llu,"
				"\"duplicates\":%llu,"
				"\"reordered\":%llu,\"corrupt\":%llu,\"foreign\":%llu,\"pps\":%.1f}"
				"\n",
				(double)(now - t0) / 1e9, (unsigned long long)t.received,
				(unsigned long long)t.unique, (unsigned long long)t.lost,
				(unsigned long long)t.dups, (unsigned long long)t.reordered,
				(unsigned long long)t.corrupt, (unsigned long long)t.foreign,
				dt > 0 ? (double)(t.unique - ivl_last_unique) / dt : 0.0);
			ivl_last_unique = t.unique;
			ivl_last_t = now;
			while (next_ivl <= now)
				next_ivl += ivl_ns;
		}
		/* sleep until data or the nearest deadline (at most 1 s) */
		uint64_t wake = now + 1000000000ull;
		if (end_ns < wake)
			wake = end_ns;
		if (!g_rx_any && first_ns < wake)
			wake = first_ns;
		if (idle_ns && g_rx_any && g_last_rx + idle_ns < wake)
			wake = g_last_rx + idle_ns;
		if (next_ivl < wake)
			wake = next_ivl;
		if (o.stop_file && now + STOP_FILE_POLL_NS < wake)
			wake = now + STOP_FILE_POLL_NS;
		struct timespec ts = mcrt_ts(wake > now ? wake - now : 0);
		int pr = ppoll(pfd, (nfds_t)g_nsocks, &ts, NULL);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			perror("mcr-sink: ppoll");
			return 1;
		}
		if (pr == 0)
			continue;
		for (int si = 0; si < g_nsocks; si++) {
			if (!(pfd[si].revents & POLLIN))
				continue;
			if (receive(si, 64) < 0)
				return 1;
		}
	}
	/* Whatever already sits in the sockets was received before the stop: read it (bounded, in
   * case a sender is still going) so that "read + socket_drops" covers everything that arrived. */
	for (int si = 0; si < g_nsocks; si++)
		if (receive(si, DRAIN_MAX_ROUNDS) < 0)
			return 1;

	const uint64_t t_end = mcrt_now_ns();
	struct udpstat u1 = read_udp_snmp();
	uint64_t sock_drop_total = 0;
	const bool have_drops = all_sock_drops(&sock_drop_total);
	struct totals t = totals(&o);
	double elapsed = (double)(t_end - t0) / 1e9;
	double active = g_rx_any ? (double)(g_last_rx - g_first_rx) / 1e9 : 0;
	double cpu = cpu_seconds();
	bool hl = h_n > 0;
	double mean = hl ? (double)(h_sum / (long double)h_n) : 0;
	char ab[INET6_ADDRSTRLEN];

	if (o.json) {
		printf("{\"groups\":[");
		for (size_t i = 0; i < g_ngroups; i++) {
			struct group *g = g_groups[i];
			mcrt_ntop(&g->addr, ab, sizeof ab);
			printf("%s{\"group\":\"%s\",\"port\":%u,\"requested\":%s,\"foreign\":%llu,"
			       "\"bad_header\":%llu,"
			       "\"streams\":[",
			       i ? "," : "", ab, g->port, g->requested ? "true" : "false",
			       (unsigned long long)g->foreign, (unsigned long long)g->bad_header);
			for (size_t j = 0; j < g->nstreams; j++) {
				struct stream *s = &g->streams[j];
				printf("%s{\"stream\":%u,\"received\":%llu,\"unique\":%llu,"
				       "\"duplicates\":%llu,"
				       "\"reordered\":%llu,\"lost\":%llu,\"corrupt\":%llu,",
				       j ? "," : "", s->id, (unsigned long long)s->received,
				       (unsigned long long)s->unique, (unsigned long long)s->dups,
				       (unsigned long long)s->reordered,
				       (unsigned long long)stream_lost(&o, s),
				       (unsigned long long)s->corrupt);
				if (s->seen_valid)
					printf("\"first_seq\":%llu,\"last_seq\":%llu,\"highest_"
					       "seq\":%llu,",
					       (unsigned long long)s->first_seq,
					       (unsigned long long)s->last_seq,
					       (unsigned long long)s->highest);
				else
					printf("\"first_seq\":null,\"last_seq\":null,\"highest_"
					       "seq\":null,");
				if (s->unique)
					printf("\"first_rx_ns\":%llu,\"last_rx_ns\":%llu,\"max_gap_"
					       "us\":%.3f,\"max_gap_end_ns\":%llu,",
					       (unsigned long long)s->first_rx_ns,
					       (unsigned long long)s->last_rx_ns,
					       (double)s->max_gap_ns / 1e3,
					       (unsigned long long)s->max_gap_end_ns);
				else
					printf("\"first_rx_ns\":null,\"last_rx_ns\":null,\"max_gap_"
					       "us\":null,\"max_gap_end_ns\":null,");
				printf("\"dup_untracked\":%llu}", (unsigned long long)s->untracked);
			}
			printf("]}");
		}
		printf("],\"total\":{\"received\":%llu,\"unique\":%llu,\"duplicates\":%llu,"
		       "\"reordered\":%llu,"
		       "\"lost\":%llu,\"corrupt\":%llu,\"foreign\":%llu},",
		       (unsigned long long)t.received, (unsigned long long)t.unique,
		       (unsigned long long)t.dups, (unsigned long long)t.reordered,
		       (unsigned long long)t.lost, (unsigned long long)t.corrupt,
		       (unsigned long long)t.foreign);
		printf("\"latency_us\":{");
		print_json_u64_or_null("p50", h_quantile(0.50) / 1e3, hl, true);
		print_json_u64_or_null("p90", h_quantile(0.90) / 1e3, hl, true);
		print_json_u64_or_null("p99", h_quantile(0.99) / 1e3, hl, true);
		print_json_u64_or_null("p999", h_quantile(0.999) / 1e3, hl, true);
		print_json_u64_or_null("max", (double)h_max / 1e3, hl, true);
		print_json_u64_or_null("mean", mean / 1e3, hl, true);
		printf("\"count\":%llu,\"negative\":%llu,\"over_10s\":%llu},",
		       (unsigned long long)h_n, (unsigned long long)h_negative,
		       (unsigned long long)h_overflow);
		if (u0.ok && u1.ok)
			printf("\"udp\":{\"in_datagrams\":%llu,\"in_errors\":%llu,\"in_csum_"
			       "errors\":%llu,"
			       "\"rcvbuf_errors\":%llu},",
			       (unsigned long long)(u1.in_datagrams - u0.in_datagrams),
			       (unsigned long long)(u1.in_errors - u0.in_errors),
			       (unsigned long long)(u1.in_csum_errors - u0.in_csum_errors),
			       (unsigned long long)(u1.rcvbuf_errors - u0.rcvbuf_errors));
		else
			printf("\"udp\":null,");
		if (have_drops)
			printf("\"socket_drops\":%llu,", (unsigned long long)sock_drop_total);
		else
			printf("\"socket_drops\":null,");
		printf("\"sockets\":[");
		for (int i = 0; i < g_nsocks; i++) {
			uint64_t d = 0;
			bool ok = sock_drops(g_socks[i].fd, &d);
			printf("%s{\"port\":%u,\"family\":\"%s\",\"rcvbuf\":%d,\"drops\":",
			       i ? "," : "", g_socks[i].port,
			       g_socks[i].family == AF_INET6 ? "ipv6" : "ipv4", g_socks[i].rcvbuf);
			if (ok)
				printf("%llu}", (unsigned long long)d);
			else
				printf("null}");
		}
		printf("],");
		printf("\"rcvbuf\":%d,\"elapsed_s\":%.6f,\"active_s\":%.6f,\"rx_pps\":%.1f,\"cpu_"
		       "s\":%.3f,"
		       "\"stop_reason\":\"%s\"}\n",
		       g_nsocks ? g_socks[0].rcvbuf : 0, elapsed, active,
		       active > 0 ? (double)t.unique / active : 0.0, cpu, stop_reason);
	} else {
		printf("mcr-sink: %.3f s (stopped by %s), %llu datagrams, CPU %.3f s\n", elapsed,
		       stop_reason, (unsigned long long)g_rx_any, cpu);
		printf("%-21s %10s %12s %12s %10s %10s %10s %8s %12s %12s\n", "group:port",
		       "stream", "received", "unique", "dups", "reordered", "lost", "corrupt",
		       "first_seq", "last_seq");
		for (size_t i = 0; i < g_ngroups; i++) {
			struct group *g = g_groups[i];
			char gp[INET6_ADDRSTRLEN + 10];
			mcrt_ntop(&g->addr, ab, sizeof ab);
			const bool v6 = g->addr.sa.sa_family == AF_INET6;
			snprintf(gp, sizeof gp, "%s%s%s:%u%s", v6 ? "[" : "", ab, v6 ? "]" : "",
				 g->port, g->requested ? "" : "*");
			if (!g->nstreams)
				printf("%-21s %10s (no mcrtest datagrams)\n", gp, "-");
			for (size_t j = 0; j < g->nstreams; j++) {
				struct stream *s = &g->streams[j];
				printf("%-21s %10u %12llu %12llu %10llu %10llu %10llu %8llu %12llu "
				       "%12llu\n",
				       gp, s->id, (unsigned long long)s->received,
				       (unsigned long long)s->unique, (unsigned long long)s->dups,
				       (unsigned long long)s->reordered,
				       (unsigned long long)stream_lost(&o, s),
				       (unsigned long long)s->corrupt,
				       (unsigned long long)s->first_seq,
				       (unsigned long long)s->last_seq);
			}
			for (size_t j = 0; j < g->nstreams; j++)
				if (g->streams[j].untracked)
					printf("%-21s   stream %u: %llu datagrams outside the "
					       "duplicate window (counted unique)\n",
					       gp, g->streams[j].id,
					       (unsigned long long)g->streams[j].untracked);
			if (g->foreign || g->bad_header)
				printf("%-21s   foreign %llu, bad header %llu\n", gp,
				       (unsigned long long)g->foreign,
				       (unsigned long long)g->bad_header);
		}
		printf("%-21s %10s %12llu %12llu %10llu %10llu %10llu %8llu   foreign %llu\n",
		       "total", "", (unsigned long long)t.received, (unsigned long long)t.unique,
		       (unsigned long long)t.dups, (unsigned long long)t.reordered,
		       (unsigned long long)t.lost, (unsigned long long)t.corrupt,
		       (unsigned long long)t.foreign);
		if (hl)
			printf("latency µs: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
			       "mean %.1f  (n=%llu)\n",
			       h_quantile(0.5) / 1e3, h_quantile(0.9) / 1e3, h_quantile(0.99) / 1e3,
			       h_quantile(0.999) / 1e3, (double)h_max / 1e3, mean / 1e3,
			       (unsigned long long)h_n);
		if (u0.ok && u1.ok)
			printf("netns UDP (IPv4 + IPv6): InDatagrams +%llu  InErrors +%llu  "
			       "InCsumErrors +%llu  "
			       "RcvbufErrors +%llu\n",
			       (unsigned long long)(u1.in_datagrams - u0.in_datagrams),
			       (unsigned long long)(u1.in_errors - u0.in_errors),
			       (unsigned long long)(u1.in_csum_errors - u0.in_csum_errors),
			       (unsigned long long)(u1.rcvbuf_errors - u0.rcvbuf_errors));
		if (have_drops)
			printf("socket drops (receive buffer full, ...): %llu\n",
			       (unsigned long long)sock_drop_total);
		if (active > 0)
			printf("receive rate %.0f pps over %.3f s\n", (double)t.unique / active,
			       active);
	}
	fflush(stdout);
	for (size_t i = 0; i < g_ngroups; i++) {
		for (size_t j = 0; j < g_groups[i]->nstreams; j++)
			free(g_groups[i]->streams[j].bits);
		free(g_groups[i]->streams);
		free(g_groups[i]);
	}
	free(g_groups);
	for (int i = 0; i < g_nsocks; i++)
		close(g_socks[i].fd);
	free(pfd);
	free(g_ctl);
	free(g_iov);
	free(g_msgs);
	free(g_bufs);
	free(g_ramp);
	return 0;
}
