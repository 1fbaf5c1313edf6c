/* mcr-inject — replay raw Ethernet frames from pcap files onto an interface
 * (AF_PACKET SOCK_RAW), optionally interleaved with valid, sequence-numbered
 * datagrams in the mcr-gen/mcr-sink wire format (mcrtest.h).
 *
 *   mcr-inject --iface NAME --pcap FILE [--pcap FILE ...] [--repeat N]
 *              [--valid G:P] [--valid-every N] [--valid-src A] [--valid-size B]
 *              [--valid-ttl N] [--valid-stream ID] [--pps N] [--json]
 *
 * Every frame of every pcap (classic libpcap format, LINKTYPE_ETHERNET, micro- or
 * nanosecond timestamps, either byte order) is sent verbatim, `--repeat` times
 * over the whole list. With `--valid G:P` and `--valid-every N`, N valid
 * datagrams to G:P (multicast MAC of G, the interface's MAC and IPv4 address
 * unless --valid-src) precede each file frame; they carry stream
 * `--valid-stream` (default 0) and sequence numbers 0, 1, 2, ...
 *
 * The valid datagrams are IPv4 only (--valid [IPV6]:PORT is refused); the pcap
 * frames are sent verbatim, IPv6 ones included.
 *
 * The socket uses protocol 0, so it never receives anything. A frame the kernel
 * refuses (longer than the MTU: EMSGSIZE; shorter than an Ethernet header:
 * EINVAL) is counted under `rejected` and skipped; ENOBUFS/EAGAIN are retried.
 *
 * Exit status: 0 ok (also when frames were rejected), 1 runtime error, 2 usage.
 * Plain C11 + POSIX + Linux headers; no libmcr.
 */
#include "mcrtest.h"
#include "tool.h"

#include <fcntl.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FILES 256
#define MAX_FRAME 65536u

struct frame {
	uint8_t *data;
	uint32_t len;
};

struct file {
	const char *path;
	struct frame *frames;
	size_t n;
	uint64_t sent, rejected;
};

struct opts {
	const char *iface;
	struct file files[MAX_FILES];
	int nfiles;
	uint64_t repeat;
	bool valid;
	struct in_addr valid_dst;
	uint16_t valid_port;
	uint64_t valid_every;
	bool have_src;
	struct in_addr valid_src;
	uint32_t valid_size;
	int valid_ttl;
	uint32_t valid_stream;
	double pps;
	bool json;
};

/* The usage line printed after a usage error. */
static const char USAGE[] =
	"usage: mcr-inject --iface NAME --pcap FILE [--pcap FILE ...] [--repeat N]\n"
	"         [--valid G:P] [--valid-every N] [--valid-src A] [--valid-size BYTES]\n"
	"         [--valid-ttl N] [--valid-stream ID] [--pps N] [--json]";

static void die(const char *what)
{
	fprintf(stderr, "mcr-inject: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t rd32(const uint8_t *p, bool swap)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return swap ? __builtin_bswap32(v) : v;
}

/* Load every record of a classic pcap file. */
static void load_pcap(struct file *f)
{
	FILE *fp = fopen(f->path, "rb");
	if (!fp) {
		fprintf(stderr, "mcr-inject: %s: %s\n", f->path, strerror(errno));
		exit(1);
	}
	uint8_t gh[24];
	if (fread(gh, 1, 24, fp) != 24) {
		fprintf(stderr, "mcr-inject: %s: not a pcap file (short header)\n", f->path);
		exit(1);
	}
	uint32_t magic;
	memcpy(&magic, gh, 4);
	bool swap;
	if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
		swap = false;
	else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
		swap = true;
	else {
		fprintf(stderr, "mcr-inject: %s: not a pcap file (magic %08x)\n", f->path, magic);
		exit(1);
	}
	uint32_t linktype = rd32(gh + 20, swap) & 0x0fffffffu;
	if (linktype != 1) {
		fprintf(stderr, "mcr-inject: %s: link type %u, need 1 (Ethernet)\n", f->path,
			linktype);
		exit(1);
	}
	size_t cap = 16;
	f->frames = calloc(cap, sizeof *f->frames);
	if (!f->frames)
		die("calloc");
	for (;;) {
		uint8_t rh[16];
		size_t got = fread(rh, 1, 16, fp);
		if (got == 0)
			break;
		if (got != 16) {
			fprintf(stderr, "mcr-inject: %s: truncated record header\n", f->path);
			exit(1);
		}
		uint32_t incl = rd32(rh + 8, swap);
		if (incl > MAX_FRAME) {
			fprintf(stderr, "mcr-inject: %s: record of %u bytes (max %u)\n", f->path,
				incl, MAX_FRAME);
			exit(1);
		}
		uint8_t *d = malloc(incl ? incl : 1);
		if (!d)
			die("malloc");
		if (incl && fread(d, 1, incl, fp) != incl) {
			fprintf(stderr, "mcr-inject: %s: truncated record\n", f->path);
			exit(1);
		}
		if (f->n == cap) {
			cap *= 2;
			struct frame *nf = realloc(f->frames, cap * sizeof *nf);
			if (!nf)
				die("realloc");
			f->frames = nf;
		}
		f->frames[f->n].data = d;
		f->frames[f->n].len = incl;
		f->n++;
	}
	fclose(fp);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		O_IFACE = 256,
		O_PCAP,
		O_REPEAT,
		O_VALID,
		O_EVERY,
		O_SRC,
		O_SIZE,
		O_TTL,
		O_STREAM,
		O_PPS,
		O_JSON,
		O_HELP
	};
	static const struct option lo[] = { { "iface", required_argument, 0, O_IFACE },
					    { "pcap", required_argument, 0, O_PCAP },
					    { "repeat", required_argument, 0, O_REPEAT },
					    { "valid", required_argument, 0, O_VALID },
					    { "valid-every", required_argument, 0, O_EVERY },
					    { "valid-src", required_argument, 0, O_SRC },
					    { "valid-size", required_argument, 0, O_SIZE },
					    { "valid-ttl", required_argument, 0, O_TTL },
					    { "valid-stream", required_argument, 0, O_STREAM },
					    { "pps", required_argument, 0, O_PPS },
					    { "json", no_argument, 0, O_JSON },
					    { "help", no_argument, 0, O_HELP },
					    { 0, 0, 0, 0 } };
	memset(o, 0, sizeof *o);
	o->repeat = 1;
	o->valid_size = 64;
	o->valid_ttl = 64;
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_IFACE: o->iface = optarg; break;
		case O_PCAP:
			if (o->nfiles == MAX_FILES)
				tool_die_usage("at most %s --pcap files", "256");
			o->files[o->nfiles++].path = optarg;
			break;
		case O_REPEAT:
			if (mcrt_parse_u64(optarg, &o->repeat) || o->repeat == 0)
				tool_die_usage("--repeat must be a positive integer, got '%s'",
					       optarg);
			break;
		case O_VALID: {
			union mcrt_sockaddr a;
			int err = mcrt_parse_addr_port(optarg, &a);
			if (err)
				tool_die_addr("--valid", optarg, err);
			if (a.sa.sa_family != AF_INET)
				tool_die_usage("--valid builds IPv4 frames only, got '%s'", optarg);
			o->valid_dst = a.v4.sin_addr;
			o->valid_port = mcrt_port(&a);
			o->valid = true;
			break;
		}
		case O_EVERY:
			if (mcrt_parse_u64(optarg, &o->valid_every) || o->valid_every > 1000000)
				tool_die_usage("--valid-every must be 0..1000000, got '%s'",
					       optarg);
			break;
		case O_SRC:
			if (inet_pton(AF_INET, optarg, &o->valid_src) != 1)
				tool_die_usage("--valid-src wants an IPv4 address, got '%s'",
					       optarg);
			o->have_src = true;
			break;
		case O_SIZE:
			if (mcrt_parse_u64(optarg, &v) || v < MCRT_MIN_LEN || v > 8972)
				tool_die_usage("--valid-size must be 32..8972, got '%s'", optarg);
			o->valid_size = (uint32_t)v;
			break;
		case O_TTL:
			if (mcrt_parse_u64(optarg, &v) || v > 255)
				tool_die_usage("--valid-ttl must be 0..255, got '%s'", optarg);
			o->valid_ttl = (int)v;
			break;
		case O_STREAM:
			if (mcrt_parse_u64(optarg, &v) || v > UINT32_MAX)
				tool_die_usage("bad --valid-stream '%s'", optarg);
			o->valid_stream = (uint32_t)v;
			break;
		case O_PPS:
			if (mcrt_parse_double(optarg, &o->pps))
				tool_die_usage("bad --pps '%s'", optarg);
			break;
		case O_JSON: o->json = true; break;
		case 'h':
		case O_HELP: tool_die_usage("%s", "help"); break;
		default: tool_die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		tool_die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->iface)
		tool_die_usage("%s", "--iface is required");
	if (o->nfiles == 0 && !(o->valid && o->valid_every))
		tool_die_usage("%s", "nothing to send: give --pcap");
}

static uint16_t csum_fold32(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffffu) + (s >> 16);
	return (uint16_t)s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (i < n)
		s += (uint32_t)p[i] << 8;
	return s;
}

/* Build one valid frame (Ethernet/IPv4/UDP + mcrt payload) into buf; returns its length. */
static uint32_t build_valid(uint8_t *buf, const struct opts *o, const uint8_t mac[6],
			    struct in_addr src, const uint8_t *ramp, uint64_t seq)
{
	uint32_t plen = o->valid_size, ulen = 8 + plen, tot = 20 + ulen;
	const uint8_t *g = (const uint8_t *)&o->valid_dst.s_addr;
	uint8_t *eth = buf, *ip = buf + 14, *udp = ip + 20, *pl = udp + 8;
	if ((g[0] & 0xf0) == 0xe0) {
		uint8_t d[6] = { 0x01, 0x00, 0x5e, (uint8_t)(g[1] & 0x7f), g[2], g[3] };
		memcpy(eth, d, 6);
	} else {
		memset(eth, 0xff, 6);
	}
	memcpy(eth + 6, mac, 6);
	eth[12] = 0x08;
	eth[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[4] = (uint8_t)(seq >> 8);
	ip[5] = (uint8_t)seq;
	ip[8] = (uint8_t)o->valid_ttl;
	ip[9] = 17;
	memcpy(ip + 12, &src.s_addr, 4);
	memcpy(ip + 16, &o->valid_dst.s_addr, 4);
	uint16_t hc = (uint16_t)~csum_fold32(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(hc >> 8);
	ip[11] = (uint8_t)hc;
	udp[0] = 0x9c; /* source port 40000 */
	udp[1] = 0x40;
	udp[2] = (uint8_t)(o->valid_port >> 8);
	udp[3] = (uint8_t)o->valid_port;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	udp[6] = udp[7] = 0;
	mcrt_write_hdr(pl, o->valid_stream, seq, mcrt_now_ns(), plen);
	mcrt_fill(ramp, pl, o->valid_stream, seq, plen);
	uint32_t s = csum_add(0, ip + 12, 8);
	s += 17 + ulen;
	s = csum_add(s, udp, ulen);
	uint16_t uc = (uint16_t)~csum_fold32(s);
	if (uc == 0)
		uc = 0xffff;
	udp[6] = (uint8_t)(uc >> 8);
	udp[7] = (uint8_t)uc;
	return 14 + tot;
}

struct sender {
	int fd;
	struct sockaddr_ll sll;
	double pps;
	uint64_t t0, n;
	uint64_t retries;
};

/* 0 sent, 1 rejected by the kernel (size), exits on other errors. */
static int send_frame(struct sender *s, const uint8_t *p, uint32_t len)
{
	if (s->pps > 0) {
		uint64_t due = s->t0 + (uint64_t)((double)s->n * 1e9 / s->pps);
		uint64_t now = mcrt_now_ns();
		if (due > now) {
			struct timespec ts = mcrt_ts(due);
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
			       EINTR) {
			}
		}
	}
	s->n++;
	for (int tries = 0;; tries++) {
		if (len >= 6)
			memcpy(s->sll.sll_addr, p, 6);
		ssize_t r = sendto(s->fd, p, len, 0, (struct sockaddr *)&s->sll, sizeof s->sll);
		if (r == (ssize_t)len)
			return 0;
		if (r >= 0) {
			fprintf(stderr, "mcr-inject: short send (%zd of %u)\n", r, len);
			exit(1);
		}
		if ((errno == ENOBUFS || errno == EAGAIN || errno == EINTR) && tries < 100000) {
			s->retries++;
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno == EMSGSIZE || errno == EINVAL)
			return 1;
		die("sendto");
	}
}

int main(int argc, char **argv)
{
	tool_init("mcr-inject", USAGE);
	struct opts o;
	parse_args(argc, argv, &o);
	for (int i = 0; i < o.nfiles; i++)
		load_pcap(&o.files[i]);

	unsigned idx = if_nametoindex(o.iface);
	if (!idx) {
		fprintf(stderr, "mcr-inject: no interface '%s'\n", o.iface);
		return 1;
	}
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket(AF_PACKET, SOCK_RAW) (needs CAP_NET_RAW)");
	int sb = 4 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb))
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);

	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct in_addr src = o.valid_src;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", o.iface);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	if (!o.have_src) {
		memset(&ifr.ifr_addr, 0, sizeof ifr.ifr_addr);
		ifr.ifr_addr.sa_family = AF_INET;
		if (ioctl(fd, SIOCGIFADDR, &ifr) == 0)
			src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
		else if (o.valid) {
			fprintf(stderr, "mcr-inject: %s has no IPv4 address: give --valid-src\n",
				o.iface);
			return 1;
		}
	}

	struct sender s;
	memset(&s, 0, sizeof s);
	s.fd = fd;
	s.sll.sll_family = AF_PACKET;
	s.sll.sll_ifindex = (int)idx;
	s.sll.sll_halen = 6;
	s.sll.sll_protocol = 0;
	s.pps = o.pps;
	s.t0 = mcrt_now_ns();

	uint8_t *ramp = mcrt_ramp_new();
	uint8_t *vbuf = malloc(14 + 28 + 8972);
	if (!ramp || !vbuf)
		die("malloc");
	uint64_t seq = 0, valid_sent = 0, valid_rejected = 0, file_sent = 0, file_rejected = 0;
	uint64_t bytes = 0;
	for (uint64_t r = 0; r < o.repeat; r++) {
		for (int fi = 0; fi < o.nfiles; fi++) {
			struct file *f = &o.files[fi];
			for (size_t k = 0; k < f->n; k++) {
				if (o.valid) {
					for (uint64_t v = 0; v < o.valid_every; v++) {
						uint32_t len =
							build_valid(vbuf, &o, mac, src, ramp, seq);
						seq++;
						if (send_frame(&s, vbuf, len))
							valid_rejected++;
						else
							valid_sent++, bytes += len;
					}
				}
				if (send_frame(&s, f->frames[k].data, f->frames[k].len)) {
					f->rejected++;
					file_rejected++;
				} else {
					f->sent++;
					file_sent++;
					bytes += f->frames[k].len;
				}
			}
		}
		if (o.nfiles == 0 &&
		    o.valid) { /* only valid traffic: valid_every frames per round */
			for (uint64_t v = 0; v < o.valid_every; v++) {
				uint32_t len = build_valid(vbuf, &o, mac, src, ramp, seq);
				seq++;
				if (send_frame(&s, vbuf, len))
					valid_rejected++;
				else
					valid_sent++, bytes += len;
			}
		}
	}
	double el = (double)(mcrt_now_ns() - s.t0) / 1e9;
	if (o.json) {
		printf("{\"iface\":\"%s\",\"frames\":%llu,\"bytes\":%llu,\"file_sent\":%llu,"
		       "\"file_rejected\":%llu,\"valid_sent\":%llu,\"valid_rejected\":%llu,"
		       "\"retries\":%llu,"
		       "\"elapsed_s\":%.3f,\"files\":[",
		       o.iface, (unsigned long long)(file_sent + valid_sent),
		       (unsigned long long)bytes, (unsigned long long)file_sent,
		       (unsigned long long)file_rejected, (unsigned long long)valid_sent,
		       (unsigned long long)valid_rejected, (unsigned long long)s.retries, el);
		for (int fi = 0; fi < o.nfiles; fi++) {
			const struct file *f = &o.files[fi];
			printf("%s{\"pcap\":\"", fi ? "," : "");
			for (const char *c = f->path; *c; c++) {
				if (*c == '"' || *c == '\\')
					putchar('\\');
				putchar(*c);
			}
			printf("\",\"records\":%zu,\"sent\":%llu,\"rejected\":%llu}", f->n,
			       (unsigned long long)f->sent, (unsigned long long)f->rejected);
		}
		printf("]}\n");
	} else {
		printf("%s: %llu frames (%llu from pcap, %llu rejected; %llu valid) in %.3f s\n",
		       o.iface, (unsigned long long)(file_sent + valid_sent),
		       (unsigned long long)file_sent,
		       (unsigned long long)(file_rejected + valid_rejected),
		       (unsigned long long)valid_sent, el);
	}
	for (int fi = 0; fi < o.nfiles; fi++) {
		for (size_t k = 0; k < o.files[fi].n; k++)
			free(o.files[fi].frames[k].data);
		free(o.files[fi].frames);
	}
	free(ramp);
	free(vbuf);
	close(fd);
	return 0;
}
