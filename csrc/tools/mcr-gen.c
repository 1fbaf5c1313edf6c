/* mcr-gen — paced UDP (multicast or unicast, IPv4 or IPv6) traffic generator for measuring
 * relays.
 *
 * Sends datagrams in the mcrtest wire format (see mcrtest.h) to one or more
 * destinations, round robin, each destination being its own stream with its own
 * stream id and sequence.  Pacing follows an absolute CLOCK_MONOTONIC schedule so
 * that the average rate is exact; datagrams that are due go out together in one
 * sendmmsg (at most --burst), so bursts stay as small as the scheduler allows.
 * The destinations of one run are all IPv4 or all IPv6 (one socket of that family).
 */
#include "mcrtest.h"
#include "media.h"
#include "tool.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_DST	      256
#define MAX_BURST     1024
#define DEFAULT_BURST 32

struct opts {
	union mcrt_sockaddr dst[MAX_DST];
	int ndst;
	int family; /* AF_INET or AF_INET6: the family of every --dst */
	const char *iface;
	union mcrt_sockaddr src_ip; /* port 0 */
	bool have_src;
	double rate;	 /* total pps, 0 = flat out */
	uint64_t count;	 /* per stream, 0 = unlimited */
	double duration; /* seconds, 0 = unlimited */
	uint32_t size;
	int ttl;
	int tos; /* -1 = leave */
	uint32_t stream_base;
	uint64_t seq_start;
	uint64_t start_at_ms; /* --start-at: CLOCK_REALTIME ms, 0 = now */
	int burst;
	double spin_us;
	int no_df;
	bool json;
	int media;	       /* enum media_kind */
	uint64_t inject_every; /* 0 = no faults */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mcr-gen --dst G:P [--dst G:P ...] [options]\n"
		"  --dst ADDR:PORT     destination (multicast or unicast); each one is a stream:\n"
		"                      A.B.C.D:PORT, or [IPV6]:PORT ([IPV6%%IFNAME]:PORT when\n"
		"                      link-local); the --dst of one run are of one family\n"
		"  --iface NAME        send via this interface (SO_BINDTODEVICE and\n"
		"                      IP_MULTICAST_IF / IPV6_MULTICAST_IF)\n"
		"  --src-ip A          bind the socket to this local address (--dst family)\n"
		"  --rate PPS          total datagrams per second over all streams (0 = flat out; "
		"default 0)\n"
		"  --count N           datagrams per stream (default: unlimited)\n"
		"  --duration SEC      stop after SEC seconds\n"
		"  --size BYTES        UDP payload size, %u..%u (default %u)\n"
		"  --ttl N             IP TTL / multicast TTL, IPv6 hop limits (default 8)\n"
		"  --tos N             IP TOS byte / IPv6 traffic class\n"
		"  --stream-base ID    stream id of the first --dst (default 0)\n"
		"  --seq-start N       first sequence number of every stream (default 0)\n"
		"  --start-at MS       start sending at this CLOCK_REALTIME time (ms since the "
		"epoch),\n"
		"                      so that two senders start a known time apart\n"
		"  --burst N           at most N datagrams per sendmmsg (default %d; adaptive: "
		"only what is due)\n"
		"  --spin-us US        sleep when the next datagram is due in more than US µs, "
		"else\n"
		"                      yield-spin (default 50; 0 = always sleep)\n"
		"  --no-df             clear the Don't Fragment bit (IP_PMTUDISC_DONT): the "
		"datagrams\n"
		"                      may be fragmented on the way (default: the kernel sets DF)\n"
		"                      IPv6 (no DF bit): IPV6_PMTUDISC_DONT, fragment to the MTU\n"
		"  --payload KIND      mcrt (default: the mcrtest format), rtp, ts (7 MPEG-TS "
		"packets)\n"
		"                      or rtp+ts (MPEG-TS in RTP): for stream health analysis\n"
		"  --inject-every N    with --payload: every Nth datagram of a stream skips one "
		"RTP\n"
		"                      sequence number and one MPEG-TS continuity counter step\n"
		"  --json              one JSON object on stdout instead of the human report\n"
		"Numbers accept k/M suffixes (20k = 20000). Exit: 0 ok, 1 runtime error, 2 usage "
		"error.\n",
		MCRT_MIN_LEN, MCRT_MAX_LEN, MCRT_DEFAULT_LEN, DEFAULT_BURST);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		O_DST = 1000,
		O_IFACE,
		O_SRC,
		O_RATE,
		O_COUNT,
		O_DUR,
		O_SIZE,
		O_TTL,
		O_TOS,
		O_SBASE,
		O_SEQ,
		O_START,
		O_BURST,
		O_SPIN,
		O_NODF,
		O_JSON,
		O_PAYLOAD,
		O_INJECT,
		O_HELP
	};
	static const struct option lo[] = {
		{ "dst", required_argument, 0, O_DST },
		{ "iface", required_argument, 0, O_IFACE },
		{ "src-ip", required_argument, 0, O_SRC },
		{ "rate", required_argument, 0, O_RATE },
		{ "count", required_argument, 0, O_COUNT },
		{ "duration", required_argument, 0, O_DUR },
		{ "size", required_argument, 0, O_SIZE },
		{ "ttl", required_argument, 0, O_TTL },
		{ "tos", required_argument, 0, O_TOS },
		{ "stream-base", required_argument, 0, O_SBASE },
		{ "seq-start", required_argument, 0, O_SEQ },
		{ "start-at", required_argument, 0, O_START },
		{ "burst", required_argument, 0, O_BURST },
		{ "spin-us", required_argument, 0, O_SPIN },
		{ "no-df", no_argument, 0, O_NODF },
		{ "json", no_argument, 0, O_JSON },
		{ "payload", required_argument, 0, O_PAYLOAD },
		{ "inject-every", required_argument, 0, O_INJECT },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	memset(o, 0, sizeof *o);
	o->size = MCRT_DEFAULT_LEN;
	o->ttl = 8;
	o->tos = -1;
	o->burst = DEFAULT_BURST;
	o->spin_us = 50;
	uint64_t v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_DST: {
			if (o->ndst >= MAX_DST)
				tool_die_usage("too many --dst (max 256): %s", optarg);
			union mcrt_sockaddr *d = &o->dst[o->ndst];
			int err = mcrt_parse_addr_port(optarg, d);
			if (err)
				tool_die_addr("--dst", optarg, err);
			if (o->ndst && d->sa.sa_family != o->family)
				tool_die_usage("--dst of both IPv4 and IPv6 (one family per run: "
					       "start two mcr-gen): '%s'",
					       optarg);
			o->family = d->sa.sa_family;
			o->ndst++;
			break;
		}
		case O_IFACE:
			if (strlen(optarg) >= IF_NAMESIZE)
				tool_die_usage("--iface name too long: %s", optarg);
			o->iface = optarg;
			break;
		case O_SRC: {
			int err = mcrt_parse_addr(optarg, &o->src_ip);
			if (err == MCRT_ADDR_NO_IFACE)
				tool_die_addr("--src-ip", optarg, err);
			if (err)
				tool_die_usage("--src-ip wants an IPv4 or IPv6 address, got '%s'",
					       optarg);
			o->have_src = true;
			break;
		}
		case O_RATE:
			if (mcrt_parse_double(optarg, &o->rate) || o->rate > 1e9)
				tool_die_usage(
					"--rate wants a number of datagrams per second, got '%s'",
					optarg);
			break;
		case O_COUNT:
			if (mcrt_parse_u64(optarg, &o->count) || o->count == 0)
				tool_die_usage("--count wants a positive integer, got '%s'",
					       optarg);
			break;
		case O_DUR:
			if (mcrt_parse_double(optarg, &o->duration) || o->duration <= 0 ||
			    o->duration > 1e7)
				tool_die_usage(
					"--duration wants a positive number of seconds, got '%s'",
					optarg);
			break;
		case O_SIZE:
			if (mcrt_parse_u64(optarg, &v) || v < MCRT_MIN_LEN || v > MCRT_MAX_LEN)
				tool_die_usage("--size must be 32..65507, got '%s'", optarg);
			o->size = (uint32_t)v;
			break;
		case O_TTL:
			if (mcrt_parse_u64(optarg, &v) || v > 255)
				tool_die_usage("--ttl must be 0..255, got '%s'", optarg);
			o->ttl = (int)v;
			break;
		case O_TOS:
			if (mcrt_parse_u64(optarg, &v) || v > 255)
				tool_die_usage("--tos must be 0..255, got '%s'", optarg);
			o->tos = (int)v;
			break;
		case O_SBASE:
			if (mcrt_parse_u64(optarg, &v) || v > UINT32_MAX)
				tool_die_usage("--stream-base must be 0..4294967295, got '%s'",
					       optarg);
			o->stream_base = (uint32_t)v;
			break;
		case O_SEQ:
			if (mcrt_parse_u64(optarg, &o->seq_start))
				tool_die_usage("--seq-start wants an integer, got '%s'", optarg);
			break;
		case O_START:
			if (mcrt_parse_u64(optarg, &o->start_at_ms) || o->start_at_ms == 0)
				tool_die_usage("--start-at wants epoch milliseconds, got '%s'",
					       optarg);
			break;
		case O_BURST:
			if (mcrt_parse_u64(optarg, &v) || v < 1 || v > MAX_BURST)
				tool_die_usage("--burst must be 1..1024, got '%s'", optarg);
			o->burst = (int)v;
			break;
		case O_SPIN:
			if (mcrt_parse_double(optarg, &o->spin_us) || o->spin_us > 1e6)
				tool_die_usage("--spin-us wants microseconds, got '%s'", optarg);
			break;
		case O_NODF: o->no_df = 1; break;
		case O_JSON: o->json = true; break;
		case O_PAYLOAD:
			o->media = media_parse(optarg);
			if (o->media < 0)
				tool_die_usage(
					"--payload must be mcrt, rtp, ts or rtp+ts, got '%s'",
					optarg);
			break;
		case O_INJECT:
			if (mcrt_parse_u64(optarg, &v) || v == 0)
				tool_die_usage("--inject-every wants a positive integer, got '%s'",
					       optarg);
			o->inject_every = v;
			break;
		case 'h':
		case O_HELP: usage(stdout); exit(0);
		default: tool_die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		tool_die_usage("unexpected argument '%s'", argv[optind]);
	if (o->ndst == 0)
		tool_die_usage("%s", "at least one --dst is required");
	if (o->have_src && o->src_ip.sa.sa_family != o->family)
		tool_die_usage("--src-ip %s is not of the --dst family",
			       o->family == AF_INET6 ? "IPv4 (the --dst are IPv6)"
						     : "IPv6 (the --dst are IPv4)");
	if ((uint64_t)o->stream_base + (uint64_t)o->ndst - 1 > UINT32_MAX)
		tool_die_usage("%s",
			       "--stream-base + number of --dst overflows the 32-bit stream id");
	if (o->inject_every && o->media == MEDIA_MCRT)
		tool_die_usage("%s", "--inject-every needs --payload rtp, ts or rtp+ts");
}

static void die_errno(const char *what)
{
	fprintf(stderr, "mcr-gen: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* IPv4 options: multicast interface, TTLs, loop off, TOS, DF. */
static void setup_ipv4(int fd, const struct opts *o, unsigned idx)
{
	if (idx) {
		struct ip_mreqn mr = { .imr_ifindex = (int)idx };
		if (o->have_src)
			mr.imr_address = o->src_ip.v4.sin_addr;
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr))
			die_errno("IP_MULTICAST_IF");
	}
	int ttl = o->ttl;
	unsigned char mttl = (unsigned char)o->ttl;
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &mttl, sizeof mttl) ||
	    setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl))
		die_errno("TTL");
	unsigned char loop = 0;
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop))
		die_errno("IP_MULTICAST_LOOP");
	if (o->tos >= 0 && setsockopt(fd, IPPROTO_IP, IP_TOS, &o->tos, sizeof o->tos))
		die_errno("IP_TOS");
	if (o->no_df) {
		int pmtu = IP_PMTUDISC_DONT;
		if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu))
			die_errno("IP_MTU_DISCOVER");
	}
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
}

/* IPv6 options: the same choices under their IPv6 names (hop limits from --ttl, traffic
 * class from --tos; IPv6 has no DF bit: --no-df lets the sender fragment to the MTU). */
static void setup_ipv6(int fd, const struct opts *o, unsigned idx)
{
	int v = (int)idx;
	if (idx && setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v, sizeof v))
		die_errno("IPV6_MULTICAST_IF");
	v = o->ttl;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &v, sizeof v) ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v))
		die_errno("IPV6 hop limit");
	v = 0;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &v, sizeof v))
		die_errno("IPV6_MULTICAST_LOOP");
	if (o->tos >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &o->tos, sizeof o->tos))
		die_errno("IPV6_TCLASS");
	if (o->no_df) {
		v = IPV6_PMTUDISC_DONT;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof v))
			die_errno("IPV6_MTU_DISCOVER");
	}
}

static int setup_socket(struct opts *o)
{
	int fd = socket(o->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_errno("socket");
	unsigned idx = 0;
	if (o->iface) {
		idx = if_nametoindex(o->iface);
		if (!idx) {
			fprintf(stderr, "mcr-gen: no interface '%s'\n", o->iface);
			exit(1);
		}
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->iface,
			       (socklen_t)strlen(o->iface) + 1))
			die_errno("SO_BINDTODEVICE");
	}
	if (o->family == AF_INET6)
		setup_ipv6(fd, o, idx);
	else
		setup_ipv4(fd, o, idx);
	if (o->have_src) {
		/* a link-local source without %IFNAME takes the scope of --iface */
		if (o->family == AF_INET6 && !o->src_ip.v6.sin6_scope_id)
			o->src_ip.v6.sin6_scope_id = idx;
		if (bind(fd, &o->src_ip.sa, mcrt_sockaddr_len(&o->src_ip)))
			die_errno("bind --src-ip");
	}
	/* A larger send buffer keeps flat-out runs from blocking on socket memory. */
	int sb = 4 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb))
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
	return fd;
}

int main(int argc, char **argv)
{
	struct opts o;
	tool_init("mcr-gen", "(see mcr-gen --help)");
	parse_args(argc, argv, &o);
	tool_stop_on_signals();
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	int fd = setup_socket(&o);
	uint8_t *ramp = mcrt_ramp_new();
	int B = o.burst;
	o.size = media_len(o.media, o.size); /* fixed by the payload kind for MPEG-TS */
	uint8_t *bufs = malloc((size_t)B * o.size);
	struct mmsghdr *msgs = calloc((size_t)B, sizeof *msgs);
	struct iovec *iov = calloc((size_t)B, sizeof *iov);
	if (!ramp || !bufs || !msgs || !iov) {
		fprintf(stderr, "mcr-gen: out of memory\n");
		return 1;
	}
	for (int i = 0; i < B; i++) {
		iov[i].iov_base = bufs + (size_t)i * o.size;
		iov[i].iov_len = o.size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_namelen = mcrt_sockaddr_len(&o.dst[0]);
	}

	const uint64_t ns = (uint64_t)o.ndst;
	uint64_t limit = o.count ? o.count * ns : UINT64_MAX;
	if (o.count && limit / ns != o.count)
		limit = UINT64_MAX;
	const double rate = o.rate;
	if (o.start_at_ms) {
		struct timespec at = { .tv_sec = (time_t)(o.start_at_ms / 1000),
				       .tv_nsec = (long)(o.start_at_ms % 1000) * 1000000L };
		while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
			;
	}
	const uint64_t t0 = mcrt_now_ns();
	uint64_t end_ns = UINT64_MAX;
	if (o.duration > 0) {
		end_ns = t0 + (uint64_t)(o.duration * 1e9);
		if (rate > 0) {
			/* datagrams scheduled inside [t0, t0+duration) */
			double l = ceil(o.duration * rate);
			if (l < (double)limit)
				limit = (uint64_t)l;
			end_ns +=
				10000000ull; /* grace for the last wakeup; matters only when behind */
		}
	}
	const uint64_t spin_ns = (uint64_t)(o.spin_us * 1000.0);

	uint64_t k = 0; /* datagrams sent (all streams) */
	uint64_t err_nobufs = 0, err_again = 0, err_other = 0, calls = 0;
	uint64_t late_max = 0, late_sum = 0, late_n = 0;
	int max_batch = 0, last_errno = 0;
	const char *stop_reason = "count";
	uint64_t now = t0, t_last = t0;

	for (;;) {
		if (tool_stop) {
			stop_reason = "signal";
			break;
		}
		if (k >= limit) {
			stop_reason = o.count && k >= o.count * ns ? "count" : "duration";
			break;
		}
		now = mcrt_now_ns();
		if (now >= end_ns) {
			stop_reason = "duration";
			break;
		}
		uint64_t b;
		if (rate > 0) {
			double due_d = floor((double)(now - t0) * rate / 1e9) + 1.0;
			uint64_t due = due_d >= (double)limit ? limit : (uint64_t)due_d;
			if (due <= k) {
				uint64_t next = t0 + (uint64_t)ceil((double)k * 1e9 / rate);
				if (next > now && next - now > spin_ns) {
					struct timespec ts = mcrt_ts(next);
					clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
				} else {
					sched_yield();
				}
				continue;
			}
			b = due - k;
			if (b > (uint64_t)B)
				b = (uint64_t)B;
		} else {
			b = (uint64_t)B;
			if (b > limit - k)
				b = limit - k;
		}
		for (uint64_t i = 0; i < b; i++) {
			uint64_t j = k + i;
			uint32_t si = (uint32_t)(j % ns);
			uint32_t stream = o.stream_base + si;
			uint64_t seq = o.seq_start + j / ns;
			uint8_t *p = iov[i].iov_base;
			if (o.media != MEDIA_MCRT) {
				media_write(p, o.media, o.size, stream, seq, o.inject_every);
			} else {
				mcrt_write_hdr(p, stream, seq, 0, o.size);
				mcrt_fill(ramp, p, stream, seq, o.size);
			}
			msgs[i].msg_hdr.msg_name = &o.dst[si];
		}
		uint64_t stamp = mcrt_now_ns();
		for (uint64_t i = 0; o.media == MEDIA_MCRT && i < b; i++)
			mcrt_stamp(iov[i].iov_base, stamp);
		if (rate > 0) {
			uint64_t sched = t0 + (uint64_t)ceil((double)k * 1e9 / rate);
			uint64_t late = stamp > sched ? stamp - sched : 0;
			if (late > late_max)
				late_max = late;
			late_sum += late;
			late_n++;
		}
		int n = sendmmsg(fd, msgs, (unsigned)b, 0);
		calls++;
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			if (e == ENOBUFS) {
				err_nobufs++;
			} else if (e == EAGAIN) {
				err_again++;
			} else {
				err_other++;
				last_errno = e;
				if (e != ECONNREFUSED && e != EHOSTUNREACH && e != ENETUNREACH &&
				    e != EPERM) {
					fprintf(stderr, "mcr-gen: sendmmsg: %s\n", strerror(e));
					return 1;
				}
				if (err_other == 1)
					fprintf(stderr,
						"mcr-gen: sendmmsg: %s (counted, retrying)\n",
						strerror(e));
				if (err_other > 1000 && k == 0) {
					fprintf(stderr,
						"mcr-gen: giving up: nothing could be sent\n");
					return 1;
				}
			}
			/* back off briefly: the queue (or route) needs a moment */
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (n > max_batch)
			max_batch = n;
		k += (uint64_t)n;
		t_last = mcrt_now_ns();
	}

	uint64_t t_end = k ? t_last : mcrt_now_ns();
	double elapsed = (double)(t_end - t0) / 1e9;
	double pps = elapsed > 0 ? (double)k / elapsed : 0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	uint64_t errs = err_nobufs + err_again + err_other;
	char ab[MCRT_ADDR_PORT_STRLEN];

	if (o.json) {
		printf("{\"streams\":[");
		for (int i = 0; i < o.ndst; i++) {
			uint64_t sent = k / ns + ((uint64_t)i < k % ns ? 1 : 0);
			mcrt_ntop(&o.dst[i], ab, sizeof ab);
			printf("%s{\"stream\":%u,\"dst\":\"%s\",\"port\":%u,\"sent\":%llu,\"first_"
			       "seq\":%llu}",
			       i ? "," : "", o.stream_base + (unsigned)i, ab, mcrt_port(&o.dst[i]),
			       (unsigned long long)sent, (unsigned long long)o.seq_start);
		}
		printf("],\"sent\":%llu,\"bytes\":%llu,\"size\":%u,\"elapsed_s\":%.6f,\"pps\":%.1f,"
		       "\"target_pps\":%.1f,\"send_errors\":{\"total\":%llu,\"enobufs\":%llu,"
		       "\"eagain\":%llu,"
		       "\"other\":%llu},\"syscalls\":%llu,\"max_batch\":%d,",
		       (unsigned long long)k, (unsigned long long)k * o.size, o.size, elapsed, pps,
		       rate, (unsigned long long)errs, (unsigned long long)err_nobufs,
		       (unsigned long long)err_again, (unsigned long long)err_other,
		       (unsigned long long)calls, max_batch);
		if (rate > 0)
			printf("\"late_us\":{\"max\":%.1f,\"mean\":%.2f},", late_max / 1e3,
			       late_n ? (double)late_sum / (double)late_n / 1e3 : 0.0);
		printf("\"cpu_s\":%.3f,\"stop_reason\":\"%s\"}\n", cpu, stop_reason);
	} else {
		printf("mcr-gen: %llu datagrams of %u bytes in %.3f s = %.0f pps (target %s)\n",
		       (unsigned long long)k, o.size, elapsed, pps,
		       rate > 0 ? "paced" : "flat out");
		if (rate > 0)
			printf("  target %.0f pps; lateness max %.1f µs, mean %.2f µs\n", rate,
			       late_max / 1e3,
			       late_n ? (double)late_sum / (double)late_n / 1e3 : 0.0);
		for (int i = 0; i < o.ndst; i++) {
			uint64_t sent = k / ns + ((uint64_t)i < k % ns ? 1 : 0);
			mcrt_fmt_addr_port(&o.dst[i], ab, sizeof ab);
			printf("  stream %-10u -> %s  sent %llu\n", o.stream_base + (unsigned)i, ab,
			       (unsigned long long)sent);
		}
		printf("  send errors %llu (ENOBUFS %llu, EAGAIN %llu, other %llu%s%s)\n",
		       (unsigned long long)errs, (unsigned long long)err_nobufs,
		       (unsigned long long)err_again, (unsigned long long)err_other,
		       last_errno ? ", last: " : "", last_errno ? strerror(last_errno) : "");
		printf("  %llu sendmmsg calls, largest batch %d, CPU %.3f s, stopped by %s\n",
		       (unsigned long long)calls, max_batch, cpu, stop_reason);
	}
	fflush(stdout);
	close(fd);
	free(bufs);
	free(msgs);
	free(iov);
	free(ramp);
	return 0;
}
