/* SPDX-License-Identifier: MIT */
/*
 * test_checksum.c — the fast RFC 1071 sum against a naive reference, IPv4
 * header checksums, full UDP checksums, and the RFC 1624 incremental update
 * against full recomputation (including the 0 / 0xFFFF edge cases).
 */
#include "t.h"
#include "frame.h"

#include <arpa/inet.h>
#include <string.h>

#define htons_compat(x) htons(x)

static uint8_t buf[9100];

static void fill_random(uint8_t *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)t_rand();
}

static void test_partial(void)
{
	for (int iter = 0; iter < 4000; iter++) {
		uint32_t len = (uint32_t)(t_rand() % 9001);
		uint32_t off = (uint32_t)(t_rand() % 8); /* odd alignments too */
		uint32_t seed = (uint32_t)t_rand();
		if (iter % 4 == 0)
			seed &= 0xffff;
		if (iter % 7 == 0)
			seed = 0;
		fill_random(buf + off, len);
		if (iter % 13 == 0)
			memset(buf + off, 0xff, len); /* all-ones data: carries everywhere */
		uint16_t fast = mcr_csum_partial(buf + off, len, seed);
		uint16_t ref = t_csum_naive(buf + off, len, seed);
		/* 0 and 0xffff are the same one's-complement value only when
		 * everything is zero; the fold must agree exactly otherwise */
		if (fast != ref)
			fprintf(stderr, "len %u off %u seed %08x: fast %04x naive %04x\n", len, off,
				seed, fast, ref);
		CHECK_EQ(fast, ref);
	}
	for (uint32_t len = 0; len < 80; len++) { /* every small length */
		fill_random(buf + 1, len);
		CHECK_EQ(mcr_csum_partial(buf + 1, len, 0x1234),
			 t_csum_naive(buf + 1, len, 0x1234));
	}
	CHECK_EQ(mcr_csum_partial(buf, 0, 0), 0);
}

static void test_ipv4(void)
{
	for (int iter = 0; iter < 1000; iter++) {
		uint8_t ip[60];
		uint32_t ihl = 5 + (uint32_t)(t_rand() % 11);
		fill_random(ip, sizeof(ip));
		ip[0] = (uint8_t)(0x40 | ihl);
		uint16_t c = csum_ipv4_hdr(ip, ihl * 4);
		wr16(ip + 10, c);
		/* a correct header sums to 0xffff, i.e. verifies to 0 */
		CHECK_EQ((uint16_t)~t_csum_naive(ip, ihl * 4, 0), 0);
	}
}

/* Build a UDP datagram with a correct checksum into u (header + payload). */
static uint16_t make_udp(uint8_t *u, uint32_t plen, uint32_t sa, uint32_t da)
{
	fill_random(u, 8 + plen);
	wr16(u + 4, (uint16_t)(8 + plen));
	uint16_t c = csum_udp_full(sa, da, u, 8 + plen);
	wr16(u + 6, c);
	return c;
}

static uint16_t naive_udp(uint32_t sa, uint32_t da, const uint8_t *u, uint32_t ulen)
{
	uint8_t ph[12];
	memcpy(ph, &sa, 4);
	memcpy(ph + 4, &da, 4);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, (uint16_t)ulen);
	uint8_t *tmp = malloc(ulen + 12);
	memcpy(tmp, ph, 12);
	memcpy(tmp + 12, u, ulen);
	tmp[12 + 6] = tmp[12 + 7] = 0;
	uint16_t c = (uint16_t)~t_csum_naive(tmp, ulen + 12, 0);
	free(tmp);
	return c ? c : 0xffff;
}

static void test_udp_full(void)
{
	static uint8_t u[9000];
	for (int iter = 0; iter < 1000; iter++) {
		uint32_t plen = (uint32_t)(t_rand() % 8900);
		uint32_t sa = (uint32_t)t_rand(), da = (uint32_t)t_rand();
		uint16_t c = make_udp(u, plen, sa, da);
		CHECK_EQ(c, naive_udp(sa, da, u, 8 + plen));
		CHECK(c != 0);
		/* the datagram verifies: sum including checksum == 0xffff */
		uint8_t ph[12];
		memcpy(ph, &sa, 4);
		memcpy(ph + 4, &da, 4);
		ph[8] = 0;
		ph[9] = 17;
		wr16(ph + 10, (uint16_t)(8 + plen));
		uint32_t s = t_csum_naive(ph, 12, 0);
		CHECK_EQ(t_csum_naive(u, 8 + plen, s), 0xffff);
	}
}

static void test_udp_incremental(void)
{
	static uint8_t u[2000];
	int edge = 0;
	for (int iter = 0; iter < 20000; iter++) {
		uint32_t plen = (uint32_t)(t_rand() % 1500);
		uint32_t sa = (uint32_t)t_rand(), da = (uint32_t)t_rand();
		uint16_t old = make_udp(u, plen, sa, da);
		uint16_t sp, dp;
		memcpy(&sp, u, 2);
		memcpy(&dp, u + 2, 2);
		uint32_t nsa = (uint32_t)t_rand(), nda = (uint32_t)t_rand();
		uint16_t nsp = (uint16_t)t_rand(), ndp = (uint16_t)t_rand();
		switch (iter % 5) {
		case 0: nsa = sa; break;
		case 1:
			nsp = sp;
			ndp = dp;
			break;
		case 2:
			nsa = sa;
			nda = da;
			nsp = sp;
			ndp = dp;
			break; /* nothing changes */
		default: break;
		}
		uint16_t inc = csum_udp_update(old, sa, da, sp, dp, nsa, nda, nsp, ndp);
		memcpy(u, &nsp, 2);
		memcpy(u + 2, &ndp, 2);
		uint16_t full = csum_udp_full(nsa, nda, u, 8 + plen);
		CHECK_EQ(inc, full);
		if (full == 0xffff)
			edge++;
	}
	/* Force the edge case: choose the new source port so the full
	 * checksum is exactly 0 (transmitted as 0xFFFF), and the reverse. */
	for (int iter = 0; iter < 2000; iter++) {
		uint32_t plen = (uint32_t)(t_rand() % 64);
		uint32_t sa = (uint32_t)t_rand(), da = (uint32_t)t_rand();
		uint16_t old = make_udp(u, plen, sa, da);
		uint16_t sp, dp;
		memcpy(&sp, u, 2);
		memcpy(&dp, u + 2, 2);
		/* with sport = 0 the sum is S; a sport value p adds p: pick p so
		 * that the total is 0xffff (checksum 0) */
		uint16_t zero = 0;
		memcpy(u, &zero, 2);
		uint16_t c0 = csum_udp_full(sa, da, u, 8 + plen); /* ~S (S != 0) */
		uint16_t s_sum = (uint16_t)~c0;
		uint16_t p = (uint16_t)(0xffff - s_sum); /* S + p == 0xffff */
		if (p == 0)
			continue;
		uint16_t pn = htons_compat(p);
		uint16_t inc = csum_udp_update(old, sa, da, sp, dp, sa, da, pn, dp);
		memcpy(u, &pn, 2);
		uint16_t full = csum_udp_full(sa, da, u, 8 + plen);
		CHECK_EQ(full, 0xffff);
		CHECK_EQ(inc, full);
		/* and back: an input carrying 0xffff updates correctly */
		uint16_t back = csum_udp_update(0xffff, sa, da, pn, dp, sa, da, sp, dp);
		memcpy(u, &sp, 2);
		CHECK_EQ(back, csum_udp_full(sa, da, u, 8 + plen));
		edge++;
	}
	CHECK(edge > 100);
}

int main(void)
{
	test_partial();
	test_ipv4();
	test_udp_full();
	test_udp_incremental();
	return t_done("checksum");
}
