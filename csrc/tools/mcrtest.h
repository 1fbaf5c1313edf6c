/* mcrtest.h — wire format shared by mcr-gen and mcr-sink.
 *
 * Every datagram payload starts with a 32-byte header, all fields little-endian:
 *
 *   off  size  field
 *     0     4  magic        0x4D435254 ("MCRT" read as a LE u32)
 *     4     4  stream id
 *     8     8  sequence     starts at 0 per stream
 *    16     8  send time    CLOCK_MONOTONIC ns (shared by all network namespaces)
 *    24     4  length       total UDP payload bytes, >= 32
 *    28     4  check        FNV-1a 32 of bytes 0..27
 *
 * Bytes 32..length-1 carry a pattern: byte i (counting from the payload
 * start) = (uint8_t)(seq * 131 + stream * 7 + i).
 *
 * Plain C11 + POSIX; no dependency on libmcr.
 */
#ifndef MCRTEST_H
#define MCRTEST_H

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#define MCRT_MAGIC	 0x4D435254u
#define MCRT_HDR_LEN	 32u
#define MCRT_MIN_LEN	 32u
#define MCRT_MAX_LEN	 65507u /* largest IPv4 UDP payload (IPv6 allows 65527; both use this) */
#define MCRT_DEFAULT_LEN 1024u

struct mcrt_hdr {
	uint32_t magic;
	uint32_t stream;
	uint64_t seq;
	uint64_t send_ns;
	uint32_t len;
	uint32_t check;
};

static inline uint32_t mcrt_fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static inline void mcrt_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}
static inline void mcrt_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}
static inline uint32_t mcrt_get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}
static inline uint64_t mcrt_get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/* Write the 32-byte header (including its check) at p. */
static inline void mcrt_write_hdr(uint8_t *p, uint32_t stream, uint64_t seq, uint64_t send_ns,
				  uint32_t len)
{
	mcrt_put32(p + 0, MCRT_MAGIC);
	mcrt_put32(p + 4, stream);
	mcrt_put64(p + 8, seq);
	mcrt_put64(p + 16, send_ns);
	mcrt_put32(p + 24, len);
	mcrt_put32(p + 28, mcrt_fnv1a(p, 28));
}

/* Only the send time (and therefore the check) changes just before sending. */
static inline void mcrt_stamp(uint8_t *p, uint64_t send_ns)
{
	mcrt_put64(p + 16, send_ns);
	mcrt_put32(p + 28, mcrt_fnv1a(p, 28));
}

enum mcrt_parse {
	MCRT_OK = 0,
	MCRT_FOREIGN, /* too short or wrong magic: not our format */
	MCRT_BAD_HDR, /* magic right, header check wrong: stream id untrustworthy */
};

static inline enum mcrt_parse mcrt_read_hdr(const uint8_t *p, size_t n, struct mcrt_hdr *h)
{
	if (n < MCRT_HDR_LEN)
		return MCRT_FOREIGN;
	h->magic = mcrt_get32(p);
	if (h->magic != MCRT_MAGIC)
		return MCRT_FOREIGN;
	h->stream = mcrt_get32(p + 4);
	h->seq = mcrt_get64(p + 8);
	h->send_ns = mcrt_get64(p + 16);
	h->len = mcrt_get32(p + 24);
	h->check = mcrt_get32(p + 28);
	if (h->check != mcrt_fnv1a(p, 28))
		return MCRT_BAD_HDR;
	return MCRT_OK;
}

/* The pattern byte at offset i is (base + i) mod 256 with base = seq*131 + stream*7.
 * A ramp buffer r[j] = j mod 256 of length 256 + MCRT_MAX_LEN lets both the generator
 * (memcpy) and the sink (memcmp) handle the whole pattern in one library call. */
#define MCRT_RAMP_LEN (256u + MCRT_MAX_LEN)

static inline uint8_t *mcrt_ramp_new(void)
{
	uint8_t *r = malloc(MCRT_RAMP_LEN);
	if (!r)
		return NULL;
	for (size_t j = 0; j < MCRT_RAMP_LEN; j++)
		r[j] = (uint8_t)j;
	return r;
}

static inline unsigned mcrt_pattern_base(uint32_t stream, uint64_t seq)
{
	return (unsigned)(uint8_t)(seq * 131u + (uint64_t)stream * 7u);
}

/* Fill bytes 32..len-1 of p. */
static inline void mcrt_fill(const uint8_t *ramp, uint8_t *p, uint32_t stream, uint64_t seq,
			     uint32_t len)
{
	if (len <= MCRT_HDR_LEN)
		return;
	unsigned start = (mcrt_pattern_base(stream, seq) + MCRT_HDR_LEN) & 0xffu;
	memcpy(p + MCRT_HDR_LEN, ramp + start, len - MCRT_HDR_LEN);
}

/* 1 when bytes 32..len-1 of p hold the pattern. */
static inline int mcrt_check_pattern(const uint8_t *ramp, const uint8_t *p, uint32_t stream,
				     uint64_t seq, uint32_t len)
{
	if (len <= MCRT_HDR_LEN)
		return 1;
	unsigned start = (mcrt_pattern_base(stream, seq) + MCRT_HDR_LEN) & 0xffu;
	return memcmp(p + MCRT_HDR_LEN, ramp + start, len - MCRT_HDR_LEN) == 0;
}

static inline uint64_t mcrt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline struct timespec mcrt_ts(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };
	return ts;
}

/* ---- small parsing helpers (both tools) ---- */

/* A socket address of either family, as parsed from ADDR:PORT. */
union mcrt_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/* Longest ADDR text inside the brackets: an IPv6 address and "%" + an interface name. */
#define MCRT_HOST_MAX (INET6_ADDRSTRLEN + IF_NAMESIZE + 1)

enum mcrt_addr_err {
	MCRT_ADDR_SYNTAX = -1,	  /* not A.B.C.D:PORT or [IPV6]:PORT */
	MCRT_ADDR_NO_IFACE = -2,  /* "%NAME" names no interface (in this namespace) */
	MCRT_ADDR_V4_MAPPED = -3, /* [::ffff:A.B.C.D]: write the IPv4 form */
};

/* Parse HOST into a, IPv4 ("A.B.C.D") or IPv6 ("ADDR" or "ADDR%IFNAME", scope by
 * interface name or number); port left 0. 0 or an enum mcrt_addr_err. */
static inline int mcrt_parse_addr(const char *host, union mcrt_sockaddr *a)
{
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, host, &a->v4.sin_addr) == 1) {
		a->v4.sin_family = AF_INET;
		return 0;
	}
	char h[MCRT_HOST_MAX + 1];
	size_t hl = strlen(host);
	if (hl > MCRT_HOST_MAX)
		return MCRT_ADDR_SYNTAX;
	memcpy(h, host, hl + 1);
	char *pct = strchr(h, '%');
	if (pct)
		*pct++ = '\0';
	if (inet_pton(AF_INET6, h, &a->v6.sin6_addr) != 1)
		return MCRT_ADDR_SYNTAX;
	if (IN6_IS_ADDR_V4MAPPED(&a->v6.sin6_addr))
		return MCRT_ADDR_V4_MAPPED;
	a->v6.sin6_family = AF_INET6;
	if (pct) {
		if (!*pct || strlen(pct) >= IF_NAMESIZE)
			return MCRT_ADDR_SYNTAX;
		char *end;
		errno = 0;
		unsigned long idx = strtoul(pct, &end, 10);
		if (*end || errno || idx == 0 || idx > UINT32_MAX)
			idx = if_nametoindex(pct);
		if (!idx)
			return MCRT_ADDR_NO_IFACE;
		a->v6.sin6_scope_id = (uint32_t)idx;
	}
	return 0;
}

/* "A.B.C.D:PORT" (IPv4) or "[IPV6]:PORT" / "[IPV6%IFNAME]:PORT" (IPv6) -> a, port
 * 1..65535 in network order inside. 0 on success, else an enum mcrt_addr_err. */
static inline int mcrt_parse_addr_port(const char *s, union mcrt_sockaddr *a)
{
	const char *colon, *host = s;
	size_t hl;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return MCRT_ADDR_SYNTAX;
		host = s + 1;
		hl = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return MCRT_ADDR_SYNTAX;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl > MCRT_HOST_MAX || colon[1] == '\0')
		return MCRT_ADDR_SYNTAX;
	char h[MCRT_HOST_MAX + 1];
	memcpy(h, host, hl);
	h[hl] = '\0';
	int r = mcrt_parse_addr(h, a);
	if (r)
		return r;
	/* brackets exactly around IPv6 addresses: "ff3e::1:5001" would be ambiguous */
	if ((s[0] == '[') != (a->sa.sa_family == AF_INET6))
		return MCRT_ADDR_SYNTAX;
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '-' || colon[1] == '+' || p == 0 || p > 65535)
		return MCRT_ADDR_SYNTAX;
	if (a->sa.sa_family == AF_INET6)
		a->v6.sin6_port = htons((uint16_t)p);
	else
		a->v4.sin_port = htons((uint16_t)p);
	return 0;
}

/* Why mcrt_parse_addr_port refused s (for a message that goes on with " '%s'"). */
static inline const char *mcrt_addr_err_str(int err)
{
	switch (err) {
	case MCRT_ADDR_NO_IFACE: return "names no interface (%NAME inside the brackets)";
	case MCRT_ADDR_V4_MAPPED: return "is IPv4-mapped: write A.B.C.D:PORT";
	default: return "wants A.B.C.D:PORT or [IPV6]:PORT";
	}
}

static inline socklen_t mcrt_sockaddr_len(const union mcrt_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof a->v6 : sizeof a->v4;
}

/* Port in host order. */
static inline uint16_t mcrt_port(const union mcrt_sockaddr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port : a->v4.sin_port);
}

static inline int mcrt_is_multicast(const union mcrt_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_MULTICAST(&a->v6.sin6_addr);
	return IN_MULTICAST(ntohl(a->v4.sin_addr.s_addr));
}

/* 1 when a and b hold the same family and address (ports and scopes not compared). */
static inline int mcrt_same_addr(const union mcrt_sockaddr *a, const union mcrt_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_INET6)
		return IN6_ARE_ADDR_EQUAL(&a->v6.sin6_addr, &b->v6.sin6_addr);
	return a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
}

/* 1 for the wildcard address of either family (0.0.0.0 or ::). */
static inline int mcrt_is_any(const union mcrt_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&a->v6.sin6_addr);
	return a->v4.sin_addr.s_addr == htonl(INADDR_ANY);
}

/* The address alone in its canonical text form (inet_ntop), no port, no scope. */
static inline const char *mcrt_ntop(const union mcrt_sockaddr *a, char *buf, size_t n)
{
	const void *p = a->sa.sa_family == AF_INET6 ? (const void *)&a->v6.sin6_addr
						    : (const void *)&a->v4.sin_addr;
	if (!inet_ntop(a->sa.sa_family, p, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

/* "A.B.C.D:PORT" or "[IPV6]:PORT" (with "%IFNAME" when scoped and the name is known). */
static inline const char *mcrt_fmt_addr_port(const union mcrt_sockaddr *a, char *buf, size_t n)
{
	char ab[INET6_ADDRSTRLEN];
	mcrt_ntop(a, ab, sizeof ab);
	if (a->sa.sa_family != AF_INET6) {
		snprintf(buf, n, "%s:%u", ab, mcrt_port(a));
		return buf;
	}
	char ifn[IF_NAMESIZE] = "";
	if (a->v6.sin6_scope_id && !if_indextoname(a->v6.sin6_scope_id, ifn))
		snprintf(ifn, sizeof ifn, "%u", a->v6.sin6_scope_id);
	snprintf(buf, n, "[%s%s%s]:%u", ab, *ifn ? "%" : "", ifn, mcrt_port(a));
	return buf;
}

/* Longest mcrt_fmt_addr_port text, with its terminator. */
#define MCRT_ADDR_PORT_STRLEN (MCRT_HOST_MAX + 9)

/* Unsigned integer with optional k/M/G (decimal) suffix. 0 on success. */
static inline int mcrt_parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s || *s == '-')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1000ull, end++;
	else if (*end == 'M')
		mul = 1000000ull, end++;
	else if (*end == 'G')
		mul = 1000000000ull, end++;
	if (*end)
		return -1;
	if (mul > 1 && v > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

/* Non-negative decimal number (seconds, rates). 0 on success. */
static inline int mcrt_parse_double(const char *s, double *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || v != v)
		return -1;
	double mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1e3, end++;
	else if (*end == 'M')
		mul = 1e6, end++;
	if (*end)
		return -1;
	*out = v * mul;
	return 0;
}

#endif
