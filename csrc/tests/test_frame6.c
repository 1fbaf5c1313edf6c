/* SPDX-License-Identifier: MIT */
/*
 * test_frame6.c — IPv6 output frames and translation between the families
 * (frame6.c): the RFC 2464 multicast MAC; frames built for IPv6 -> IPv6,
 * IPv4 -> IPv6 and IPv6 -> IPv4 parsed back field by field; the UDP checksum
 * checked against an independent pseudo-header sum, rebased from the input's
 * (equal to the full computation, and a corrupted payload stays detectably
 * corrupted) or computed in full when the input has none; destinations that
 * take their low bits from the input's.
 */
#include "t.h"
#include "frame.h"

#include <arpa/inet.h>
#include <string.h>

static void ip6(const char *s, uint8_t *out)
{
	REQUIRE(inet_pton(AF_INET6, s, out) == 1);
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;
	REQUIRE(inet_pton(AF_INET, s, &a) == 1);
	return a.s_addr;
}

/* Independent UDP checksum check: the naive sum over a pseudo header built
 * here (IPv6: RFC 8200 §8.1; IPv4: RFC 768) and the UDP datagram must be
 * 0xffff. */
static int udp_ok6(const uint8_t *src, const uint8_t *dst, const uint8_t *udp, uint32_t ulen)
{
	uint8_t ph[40];
	memcpy(ph, src, 16);
	memcpy(ph + 16, dst, 16);
	memset(ph + 32, 0, 8);
	ph[34] = (uint8_t)(ulen >> 8);
	ph[35] = (uint8_t)ulen;
	ph[39] = 17;
	return t_csum_naive(udp, ulen, t_csum_naive(ph, 40, 0)) == 0xffff;
}

static int udp_ok4(const uint8_t *ip, const uint8_t *udp, uint32_t ulen)
{
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	ph[10] = (uint8_t)(ulen >> 8);
	ph[11] = (uint8_t)ulen;
	return t_csum_naive(udp, ulen, t_csum_naive(ph, 12, 0)) == 0xffff;
}

static void test_mac6(void)
{
	uint8_t g[16], mac[6];
	ip6("ff3e::8000:1", g);
	mcr_mcast_mac6(g, mac);
	const uint8_t want[6] = { 0x33, 0x33, 0x80, 0x00, 0x00, 0x01 };
	CHECK(memcmp(mac, want, 6) == 0);
	ip6("ff02::1:ff12:3456", g);
	mcr_mcast_mac6(g, mac);
	const uint8_t want2[6] = { 0x33, 0x33, 0xff, 0x12, 0x34, 0x56 };
	CHECK(memcmp(mac, want2, 6) == 0);
}

#define PLEN 300u

/* Synthetic IPv6 input: fixed header + optional 8-byte destination-options
 * header + UDP + payload. Returns the offset of the UDP header. */
static uint32_t make_in6(uint8_t *in, int ext, int with_csum)
{
	memset(in, 0, 48 + 8 + PLEN);
	uint8_t sa[16], da[16];
	ip6("2001:db8::10", sa);
	ip6("ff3e::239:1:1:1", da);
	in[0] = 0x60;
	in[6] = ext ? 60 : 17;
	in[7] = 9;
	memcpy(in + 8, sa, 16);
	memcpy(in + 24, da, 16);
	uint32_t u = 40;
	if (ext) {
		in[40] = 17; /* next header UDP, length 0 (8 bytes), PadN */
		in[42] = 1;
		in[43] = 4;
		u = 48;
	}
	wr16(in + 4, (uint16_t)(u - 40 + 8 + PLEN));
	uint8_t *udp = in + u;
	wr16(udp, 40000);
	wr16(udp + 2, 5000);
	wr16(udp + 4, 8 + PLEN);
	for (uint32_t i = 0; i < PLEN; i++)
		udp[8 + i] = (uint8_t)(i * 13 + 5);
	if (with_csum) {
		/* the input's own checksum, from the same independent reference */
		uint8_t ph[40];
		memcpy(ph, sa, 16);
		memcpy(ph + 16, da, 16);
		memset(ph + 32, 0, 8);
		wr16(ph + 34, 8 + PLEN);
		ph[39] = 17;
		wr16(udp + 6, (uint16_t)~t_csum_naive(udp, 8 + PLEN, t_csum_naive(ph, 40, 0)));
	}
	return u;
}

static uint32_t make_in4(uint8_t *in, int with_csum)
{
	memset(in, 0, 28 + PLEN);
	in[0] = 0x45;
	in[8] = 17;
	in[9] = 17;
	uint32_t sa = ip4("10.1.2.3"), da = ip4("239.1.1.1");
	memcpy(in + 12, &sa, 4);
	memcpy(in + 16, &da, 4);
	uint8_t *u = in + 20;
	wr16(u, 40000);
	wr16(u + 2, 5000);
	wr16(u + 4, 8 + PLEN);
	for (uint32_t i = 0; i < PLEN; i++)
		u[8 + i] = (uint8_t)(i * 13 + 5);
	wr16(u + 6, with_csum ? csum_udp_full(sa, da, u, 8 + PLEN) : 0);
	return 20;
}

static struct mcr_template tmpl(void)
{
	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	t.dst_port = htons(6000);
	t.tos = 0xb8; /* DSCP EF */
	const uint8_t smac[6] = { 0x02, 0, 0, 0, 0, 0x07 };
	memcpy(t.src_mac, smac, 6);
	memset(t.dst_mac, 0xee, 6);
	return t;
}

/* Check an Ethernet/IPv6/UDP frame field by field. */
static void check_frame6(const uint8_t *f, uint32_t flen, const struct mcr_template *t,
			 const uint8_t *src, const uint8_t *dst, uint8_t hlim, uint16_t sport,
			 uint16_t dport)
{
	CHECK_EQ(flen, 62 + PLEN);
	if (dst[0] == 0xff) {
		CHECK_EQ(f[0], 0x33);
		CHECK_EQ(f[1], 0x33);
		CHECK(memcmp(f + 2, dst + 12, 4) == 0);
	} else {
		CHECK(memcmp(f, t->dst_mac, 6) == 0);
	}
	CHECK(memcmp(f + 6, t->src_mac, 6) == 0);
	CHECK_EQ(rd16(f + 12), 0x86dd);
	const uint8_t *h = f + 14, *u = h + 40;
	CHECK_EQ(h[0] >> 4, 6);
	CHECK_EQ(((h[0] & 0x0f) << 4) | (h[1] >> 4), t->tos); /* traffic class */
	CHECK_EQ(((h[1] & 0x0f) << 16) | rd16(h + 2), 0);     /* flow label */
	CHECK_EQ(rd16(h + 4), 8 + PLEN);
	CHECK_EQ(h[6], 17);
	CHECK_EQ(h[7], hlim);
	CHECK(memcmp(h + 8, src, 16) == 0);
	CHECK(memcmp(h + 24, dst, 16) == 0);
	CHECK_EQ(rd16(u), sport);
	CHECK_EQ(rd16(u + 2), dport);
	CHECK_EQ(rd16(u + 4), 8 + PLEN);
	CHECK(rd16(u + 6) != 0); /* mandatory in IPv6 */
	CHECK(udp_ok6(src, dst, u, 8 + PLEN));
	for (uint32_t i = 0; i < PLEN; i++)
		if (u[8 + i] != (uint8_t)(i * 13 + 5)) {
			CHECK(!"payload differs");
			break;
		}
}

static void test_v6_to_v6(void)
{
	static uint8_t in[512], out[1024], out2[1024];
	struct mcr_template t = tmpl();
	struct frame_addr6 a;
	ip6("2001:db8:1::1", a.src);
	ip6("ff3e::1234:5678", a.dst);
	for (int ext = 0; ext < 2; ext++) {
		uint32_t u = make_in6(in, ext, 1);
		struct frame_in fi = { .ip = in,
				       .udp = in + u,
				       .payload = in + u + 8,
				       .len = PLEN,
				       .v6 = 1,
				       .csum_ok = 1 };
		uint32_t n = frame_build6(out, sizeof(out), &t, &a, &fi, 8);
		check_frame6(out, n, &t, a.src, a.dst, 8, 40000, 6000);
		/* the rebased checksum equals the full computation */
		fi.csum_ok = 0;
		CHECK_EQ(frame_build6(out2, sizeof(out2), &t, &a, &fi, 8), n);
		CHECK_EQ(rd16(out + 54 + 6), rd16(out2 + 54 + 6));
		fi.csum_ok = 1;
		/* a corrupted input stays detectably corrupted (rebased, not recomputed) */
		in[u + 8 + 10] ^= 0x40;
		n = frame_build6(out, sizeof(out), &t, &a, &fi, 8);
		CHECK(!udp_ok6(a.src, a.dst, out + 54, 8 + PLEN));
		in[u + 8 + 10] ^= 0x40;
	}
	/* unicast destination: the template's MAC, ports kept and replaced */
	uint32_t u = make_in6(in, 0, 1);
	struct frame_in fi = {
		.ip = in, .udp = in + u, .payload = in + u + 8, .len = PLEN, .v6 = 1, .csum_ok = 1
	};
	ip6("2001:db8:2::9", a.dst);
	t.src_port = htons(7777);
	t.dst_port = 0;
	uint32_t n = frame_build6(out, sizeof(out), &t, &a, &fi, 64);
	check_frame6(out, n, &t, a.src, a.dst, 64, 7777, 5000);
	/* does not fit: 0, nothing written past cap */
	CHECK_EQ(frame_build6(out, 62 + PLEN - 1, &t, &a, &fi, 64), 0);
	CHECK_EQ(frame_build6(out, 61, &t, &a, &fi, 64), 0);
}

static void test_v4_to_v6(void)
{
	static uint8_t in[512], out[1024];
	struct mcr_template t = tmpl();
	struct frame_addr6 a;
	ip6("fe80::1", a.src);
	ip6("ff3e::1", a.dst);
	for (int csum = 0; csum < 2; csum++) {
		uint32_t u = make_in4(in, csum);
		struct frame_in fi = { .ip = in,
				       .udp = in + u,
				       .payload = in + u + 8,
				       .len = PLEN,
				       .v6 = 0,
				       .csum_ok = 1 };
		uint32_t n = frame_build6(out, sizeof(out), &t, &a, &fi, 1);
		/* an IPv4 input without checksum still leaves with one */
		check_frame6(out, n, &t, a.src, a.dst, 1, 40000, 6000);
	}
	/* the low bits of the destination follow the input's (239.1.1.1 -> ff3e::x.x.1.1) */
	t.dst_host_bits = 16;
	ip6("ff3e::ef14:0", a.dst);
	uint32_t u = make_in4(in, 1);
	struct frame_in fi = {
		.ip = in, .udp = in + u, .payload = in + u + 8, .len = PLEN, .v6 = 0, .csum_ok = 1
	};
	uint32_t n = frame_build6(out, sizeof(out), &t, &a, &fi, 1);
	uint8_t want[16];
	ip6("ff3e::ef14:101", want);
	check_frame6(out, n, &t, a.src, want, 1, 40000, 6000);
	const uint8_t mac[6] = { 0x33, 0x33, 0xef, 0x14, 0x01, 0x01 };
	CHECK(memcmp(out, mac, 6) == 0);
}

static void test_v6_to_v4(void)
{
	static uint8_t in[512], out[1024];
	struct mcr_template t = tmpl();
	t.src_ip = ip4("192.168.0.1");
	t.dst_ip = ip4("239.2.2.2");
	mcr_mcast_mac(t.dst_ip, t.dst_mac);
	for (int csum = 0; csum < 2; csum++) {
		uint32_t u = make_in6(in, 1, 1);
		struct frame_in fi = { .ip = in,
				       .udp = in + u,
				       .payload = in + u + 8,
				       .len = PLEN,
				       .v6 = 1,
				       .csum_ok = csum };
		uint32_t n = frame_build_x4(out, sizeof(out), &t, &fi, 5, 0x1234);
		CHECK_EQ(n, 42 + PLEN);
		CHECK_EQ(rd16(out + 12), 0x0800);
		CHECK(memcmp(out, t.dst_mac, 6) == 0);
		const uint8_t *h = out + 14, *ud = h + 20;
		CHECK_EQ(h[0], 0x45);
		CHECK_EQ(h[1], t.tos);
		CHECK_EQ(rd16(h + 2), 28 + PLEN);
		CHECK_EQ(rd16(h + 4), 0x1234);
		CHECK_EQ(rd16(h + 6), 0);
		CHECK_EQ(h[8], 5);
		CHECK_EQ(h[9], 17);
		CHECK_EQ((uint16_t)~t_csum_naive(h, 20, 0), 0);
		CHECK(memcmp(h + 12, &t.src_ip, 4) == 0);
		CHECK(memcmp(h + 16, &t.dst_ip, 4) == 0);
		CHECK_EQ(rd16(ud), 40000);
		CHECK_EQ(rd16(ud + 2), 6000);
		CHECK_EQ(rd16(ud + 4), 8 + PLEN);
		CHECK(udp_ok4(h, ud, 8 + PLEN));
	}
	/* host bits from the IPv6 destination's last 32 bits (ff3e::239:1:1:1 -> .0.1) */
	t.dst_host_bits = 16;
	t.dst_ip = ip4("239.20.0.0");
	struct mcr_template scratch;
	uint32_t u = make_in6(in, 0, 1);
	struct frame_in fi = {
		.ip = in, .udp = in + u, .payload = in + u + 8, .len = PLEN, .v6 = 1, .csum_ok = 1
	};
	const struct mcr_template *tt = frame_dest_low(&t, frame_in_dst_low32(&fi), &scratch);
	uint32_t n = frame_build_x4(out, sizeof(out), tt, &fi, 5, 1);
	CHECK_EQ(n, 42 + PLEN);
	CHECK_EQ(rd16(out + 30), 0xef14);
	CHECK_EQ(rd16(out + 32), 0x0001);
	const uint8_t mac[6] = { 0x01, 0x00, 0x5e, 0x14, 0x00, 0x01 };
	CHECK(memcmp(out, mac, 6) == 0);
	CHECK(udp_ok4(out + 14, out + 34, 8 + PLEN));
}

/* The rebased checksum against the full one on random addresses, ports and
 * payloads, for every pair of families. */
static void test_rebase_random(void)
{
	static uint8_t in[2048], out[4096];
	struct mcr_template t = tmpl();
	for (int round = 0; round < 2000; round++) {
		int in6 = round & 1, out6 = (round >> 1) & 1;
		uint32_t len = (uint32_t)(t_rand() % 1400);
		uint32_t ihl = in6 ? 40 : 20;
		for (uint32_t i = 0; i < ihl + 8 + len; i++)
			in[i] = (uint8_t)t_rand();
		in[0] = in6 ? 0x60 : 0x45;
		uint8_t *u = in + ihl;
		wr16(u + 4, (uint16_t)(8 + len));
		/* a correct input checksum, from the independent reference */
		wr16(u + 6, 0);
		uint16_t c;
		if (in6) {
			uint8_t ph[40];
			memcpy(ph, in + 8, 32);
			memset(ph + 32, 0, 8);
			wr16(ph + 34, (uint16_t)(8 + len));
			ph[39] = 17;
			c = (uint16_t)~t_csum_naive(u, 8 + len, t_csum_naive(ph, 40, 0));
		} else {
			uint8_t ph[12];
			memcpy(ph, in + 12, 8);
			ph[8] = 0;
			ph[9] = 17;
			wr16(ph + 10, (uint16_t)(8 + len));
			c = (uint16_t)~t_csum_naive(u, 8 + len, t_csum_naive(ph, 12, 0));
		}
		wr16(u + 6, c ? c : 0xffff);
		t.src_port = (uint16_t)(t_rand() % 3 ? t_rand() : 0);
		t.dst_port = (uint16_t)(t_rand() % 3 ? t_rand() : 0);
		struct frame_in fi = {
			.ip = in, .udp = u, .payload = u + 8, .len = len, .v6 = in6, .csum_ok = 1
		};
		if (out6) {
			struct frame_addr6 a;
			for (int i = 0; i < 16; i++) {
				a.src[i] = (uint8_t)t_rand();
				a.dst[i] = (uint8_t)t_rand();
			}
			uint32_t n = frame_build6(out, sizeof(out), &t, &a, &fi, 3);
			CHECK_EQ(n, 62 + len);
			CHECK(udp_ok6(a.src, a.dst, out + 54, 8 + len));
		} else {
			t.src_ip = (uint32_t)t_rand();
			t.dst_ip = (uint32_t)t_rand();
			uint32_t n = frame_build_x4(out, sizeof(out), &t, &fi, 3, 0);
			CHECK_EQ(n, 42 + len);
			CHECK(udp_ok4(out + 14, out + 34, 8 + len));
		}
	}
}

int main(void)
{
	test_mac6();
	test_v6_to_v6();
	test_v4_to_v6();
	test_v6_to_v4();
	test_rebase_random();
	return t_done("frame6");
}
