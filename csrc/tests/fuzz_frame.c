/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame.c — libFuzzer target for everything in frame.c: the RFC 1071
 * checksum (against a byte-wise reference), the IPv4/UDP checksums (full and
 * RFC 1624 incremental), the multicast MAC and the frame builder, writing into
 * an exact-size heap buffer (ASan sees any overrun).
 *
 * Properties checked on every input:
 * - mcr_csum_partial(buf, len, seed) equals a naive 16-bit one's-complement sum;
 * - frame_build returns 0 exactly when the frame does not fit, otherwise a
 *   frame of 42 + len bytes whose IPv4 header checksum verifies, whose lengths
 *   are right and whose payload is the input's;
 * - the output UDP checksum verifies when the input's did (or the input had
 *   none / the path computes it in full), and stays WRONG when the input's was
 *   wrong and the incremental path was taken (end-to-end integrity);
 * - with prm[8] & 0x80 the template's destination follows the input's
 *   (dst_host_bits = prm[8] % 29 on a multicast prefix): the frame goes to
 *   the template's prefix with the input's host bits, to that group's
 *   multicast MAC, with the same checksum properties.
 *
 * Input: 40 parameter bytes, then the input datagram (IPv4 header 20 + UDP 8 +
 * payload). Built without -fsanitize=fuzzer, fuzz_replay.c provides main().
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Host-order value of a network-order word (no libc byte-order helper needed). */
static uint32_t ntohl_(uint32_t net)
{
	const uint8_t *b = (const uint8_t *)&net;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint16_t ref_sum(const uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t s = (seed & 0xffffu) + (seed >> 16);
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* One's-complement sum (folded, not complemented) of pseudo header + UDP segment. */
static uint16_t udp_verify(const uint8_t *ip, const uint8_t *udp, uint32_t ulen)
{
	uint32_t seed = 17u + ulen;
	uint16_t a = ref_sum(ip + 12, 8, seed);
	uint16_t b = ref_sum(udp, ulen, a);
	return b;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { P = 40 };
	if (size < P)
		return 0;
	const uint8_t *prm = data;
	const uint8_t *in = data + P;
	size_t inlen = size - P;

	/* 1. checksum against the reference, any length and alignment */
	uint32_t seed = get32(prm + 0);
	uint32_t skip = prm[4] % 8;
	if (inlen >= skip) {
		uint8_t *copy = malloc(inlen - skip + 1);
		if (!copy)
			return 0;
		memcpy(copy, in + skip, inlen - skip);
		uint16_t got = mcr_csum_partial(copy, (uint32_t)(inlen - skip), seed);
		uint16_t want = ref_sum(copy, inlen - skip, seed);
		/* 0 and 0xffff are the same one's-complement value */
		if (got != want && !((got == 0 || got == 0xffff) && (want == 0 || want == 0xffff)))
			abort();
		free(copy);
	}

	/* 2. multicast MAC */
	uint8_t mac[6];
	uint32_t grp = get32(prm + 8);
	mcr_mcast_mac(grp, mac);
	const uint8_t *g = (const uint8_t *)&grp;
	if (mac[0] != 1 || mac[1] != 0 || mac[2] != 0x5e || mac[3] != (g[1] & 0x7f) ||
	    mac[4] != g[2] || mac[5] != g[3])
		abort();

	/* 3. frame builder */
	if (inlen < 28)
		return 0;
	uint8_t *ip_in = malloc(inlen);
	if (!ip_in)
		return 0;
	memcpy(ip_in, in, inlen);
	uint32_t len = (uint32_t)(inlen - 28);
	uint8_t *udp_in = ip_in + 20, *pl = ip_in + 28;
	int mode = prm[5] % 4; /* 0 verbatim, 1 correct csum, 2 corrupt csum, 3 no csum */
	if (mode) {
		udp_in[4] = (uint8_t)((8 + len) >> 8);
		udp_in[5] = (uint8_t)(8 + len);
		udp_in[6] = udp_in[7] = 0;
		if (mode != 3) {
			uint16_t c = (uint16_t)~udp_verify(ip_in, udp_in, 8 + len);
			if (c == 0)
				c = 0xffff;
			if (mode == 2) {
				c ^= (uint16_t)(prm[6] | 1); /* a different non-zero value */
				if (c == 0)
					c = 0x1234;
			}
			wr16(udp_in + 6, c);
		}
	}
	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	memcpy(&t.src_ip, prm + 12, 4);
	memcpy(&t.dst_ip, prm + 16, 4);
	memcpy(&t.src_port, prm + 20, 2);
	memcpy(&t.dst_port, prm + 22, 2);
	t.tos = prm[24];
	memcpy(t.dst_mac, prm + 25, 6);
	memcpy(t.src_mac, prm + 31, 6);
	if (prm[8] & 0x80) {
		t.dst_host_bits = (uint8_t)(prm[8] % 29u);
		((uint8_t *)&t.dst_ip)[0] = (uint8_t)(0xe0 | (((uint8_t *)&t.dst_ip)[0] & 0x0f));
	}
	struct mcr_template scratch;
	const struct mcr_template *tp = frame_dest(&t, ip_in, &scratch);
	uint32_t want_dst = t.dst_ip;
	if (t.dst_host_bits) {
		uint32_t host = (1u << t.dst_host_bits) - 1u, in_dst;
		memcpy(&in_dst, ip_in + 16, 4);
		uint32_t d = (ntohl_(t.dst_ip) & ~host) | (ntohl_(in_dst) & host);
		uint8_t b[4] = { (uint8_t)(d >> 24), (uint8_t)(d >> 16), (uint8_t)(d >> 8),
				 (uint8_t)d };
		memcpy(&want_dst, b, 4);
	}
	uint8_t ttl = prm[37];
	uint16_t ip_id = (uint16_t)(prm[38] << 8 | prm[7]);
	int csum_ok = prm[39] & 1;
	/* capacity: exact fit, a little short, or generous */
	uint32_t need = MCR_HDRS_LEN + len;
	uint32_t cap;
	switch ((prm[39] >> 1) % 3) {
	case 0: cap = need; break;
	case 1: cap = need > (prm[4] & 63u) ? need - (prm[4] & 63u) : 0; break;
	default: cap = need + 64; break;
	}
	uint8_t *out = malloc(cap ? cap : 1);
	if (!out) {
		free(ip_in);
		return 0;
	}
	uint32_t flen = frame_build(out, cap, tp, ip_in, udp_in, pl, len, ttl, ip_id, csum_ok);
	int fits = need <= cap && len <= 65535u - 28u;
	if (!fits) {
		if (flen != 0)
			abort();
		goto done;
	}
	if (flen != need)
		abort();
	const uint8_t *ip = out + 14, *udp = ip + 20;
	uint8_t want_mac[6];
	if (t.dst_host_bits)
		mcr_mcast_mac(want_dst, want_mac);
	else
		memcpy(want_mac, t.dst_mac, 6);
	if (memcmp(out, want_mac, 6) || memcmp(out + 6, t.src_mac, 6) || out[12] != 8 || out[13])
		abort();
	if (memcmp(ip + 16, &want_dst, 4) || memcmp(ip + 12, &t.src_ip, 4))
		abort();
	if (ip[0] != 0x45 || ip[1] != t.tos || rd16(ip + 2) != 28 + len || ip[8] != ttl ||
	    ip[9] != 17 || rd16(ip + 4) != ip_id || (ip[6] & 0x3f) || ip[7])
		abort();
	if (ref_sum(ip, 20, 0) != 0xffff) /* header checksum verifies */
		abort();
	if (rd16(udp + 4) != 8 + len || memcmp(udp + 8, pl, len))
		abort();
	uint16_t in_sport, in_dport;
	memcpy(&in_sport, udp_in, 2);
	memcpy(&in_dport, udp_in + 2, 2);
	if (memcmp(udp, t.src_port ? (const void *)&t.src_port : (const void *)&in_sport, 2) ||
	    memcmp(udp + 2, t.dst_port ? (const void *)&t.dst_port : (const void *)&in_dport, 2))
		abort();
	if (rd16(udp + 6) == 0) /* never "no checksum" */
		abort();
	int incremental = csum_ok && rd16(udp_in + 6) != 0 && rd16(udp_in + 4) == 8 + len;
	int in_valid = udp_verify(ip_in, udp_in, 8 + len) == 0xffff;
	int out_valid = udp_verify(ip, udp, 8 + len) == 0xffff;
	if (!incremental || in_valid) {
		if (!out_valid)
			abort();
	} else if (out_valid) {
		abort(); /* a corrupted input must stay detectably corrupted */
	}
done:
	free(out);
	free(ip_in);
	return 0;
}
