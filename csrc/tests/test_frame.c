/* SPDX-License-Identifier: MIT */
/*
 * test_frame.c — IPv4 multicast MAC mapping vectors, and the frame builder:
 * build a frame from a synthetic input datagram and parse it back byte by
 * byte (ethertype, IHL, lengths, TTL, TOS, addresses, ports, checksums);
 * destinations that follow the input's (a range mapped or kept, a port
 * kept), whole and as fragments, with the UDP checksum derived
 * incrementally (a corrupted payload stays detectable).
 */
#include "t.h"
#include "frame.h"

#include <arpa/inet.h>
#include <string.h>

static uint32_t ip4(const char *s)
{
	struct in_addr a;
	REQUIRE(inet_pton(AF_INET, s, &a) == 1);
	return a.s_addr;
}

static void check_mac(const char *group, const uint8_t *want)
{
	uint8_t mac[6];
	mcr_mcast_mac(ip4(group), mac);
	if (memcmp(mac, want, 6) != 0) {
		fprintf(stderr, "%s -> %02x:%02x:%02x:%02x:%02x:%02x\n", group, mac[0], mac[1],
			mac[2], mac[3], mac[4], mac[5]);
		t_failures++;
	}
}

static void test_mac(void)
{
	check_mac("224.0.0.1", (const uint8_t[]){ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 });
	check_mac("239.255.255.250", (const uint8_t[]){ 0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa });
	check_mac("224.128.1.1", (const uint8_t[]){ 0x01, 0x00, 0x5e, 0x00, 0x01, 0x01 });
	check_mac("239.128.1.1", (const uint8_t[]){ 0x01, 0x00, 0x5e, 0x00, 0x01, 0x01 });
}

/* Synthetic input: IPv4 header (optionally with options) + UDP + payload. */
static uint32_t make_input(uint8_t *in, uint32_t ihl, uint32_t plen, int with_csum)
{
	memset(in, 0, 60);
	in[0] = (uint8_t)(0x40 | ihl);
	in[8] = 17;
	in[9] = 17;
	uint32_t sa = ip4("10.1.2.3"), da = ip4("239.1.1.1");
	memcpy(in + 12, &sa, 4);
	memcpy(in + 16, &da, 4);
	uint8_t *u = in + ihl * 4;
	wr16(u, 40000);
	wr16(u + 2, 5000);
	wr16(u + 4, (uint16_t)(8 + plen));
	for (uint32_t i = 0; i < plen; i++)
		u[8 + i] = (uint8_t)(i * 7 + 3);
	wr16(u + 6, with_csum ? csum_udp_full(sa, da, u, 8 + plen) : 0);
	return ihl * 4;
}

static void test_build(uint32_t ihl, uint32_t plen, int with_csum, uint16_t tmpl_sport)
{
	static uint8_t in[70000], out[70000];
	uint32_t l3len = make_input(in, ihl, plen, with_csum);
	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	t.src_ip = ip4("192.168.7.1");
	t.dst_ip = ip4("239.9.8.7");
	t.src_port = htons(tmpl_sport);
	t.dst_port = htons(6000);
	t.ttl = 9;
	t.tos = 0xb8;
	mcr_mcast_mac(t.dst_ip, t.dst_mac);
	memcpy(t.src_mac, (const uint8_t[]){ 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 }, 6);

	uint32_t len = frame_build(out, sizeof(out), &t, in, in + l3len, in + l3len + 8, plen, 33,
				   0xbeef, 1);
	CHECK_EQ(len, 42 + plen);
	CHECK(memcmp(out, t.dst_mac, 6) == 0);
	CHECK(memcmp(out + 6, t.src_mac, 6) == 0);
	CHECK_EQ(rd16(out + 12), 0x0800);
	const uint8_t *ip = out + 14, *u = ip + 20;
	CHECK_EQ(ip[0], 0x45);
	CHECK_EQ(ip[1], 0xb8);
	CHECK_EQ(rd16(ip + 2), 28 + plen);
	CHECK_EQ(rd16(ip + 4), 0xbeef);
	CHECK_EQ(rd16(ip + 6), 0); /* no DF, no fragment */
	CHECK_EQ(ip[8], 33);
	CHECK_EQ(ip[9], 17);
	CHECK(memcmp(ip + 12, &t.src_ip, 4) == 0);
	CHECK(memcmp(ip + 16, &t.dst_ip, 4) == 0);
	CHECK_EQ((uint16_t)~t_csum_naive(ip, 20, 0), 0);
	CHECK_EQ(rd16(u), tmpl_sport ? tmpl_sport : 40000);
	CHECK_EQ(rd16(u + 2), 6000);
	CHECK_EQ(rd16(u + 4), 8 + plen);
	CHECK(rd16(u + 6) != 0);
	CHECK(memcmp(u + 8, in + l3len + 8, plen) == 0);
	/* UDP verifies over the pseudo header */
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, (uint16_t)(8 + plen));
	CHECK_EQ(t_csum_naive(u, 8 + plen, t_csum_naive(ph, 12, 0)), 0xffff);

	/* too small a buffer: refused */
	CHECK_EQ(frame_build(out, 41 + plen, &t, in, in + l3len, in + l3len + 8, plen, 1, 0, 1), 0);
}

static void test_corrupt_stays_corrupt(void)
{
	static uint8_t in[2000], out[2000];
	uint32_t l3len = make_input(in, 5, 100, 1);
	in[l3len + 8 + 50] ^= 0x40; /* corrupt the payload after the checksum */
	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.src_ip = ip4("192.168.7.1");
	t.dst_ip = ip4("239.9.8.7");
	t.dst_port = htons(6000);
	uint32_t len =
		frame_build(out, sizeof(out), &t, in, in + l3len, in + l3len + 8, 100, 1, 0, 1);
	REQUIRE(len == 142);
	const uint8_t *ip = out + 14, *u = ip + 20;
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, 108);
	CHECK(t_csum_naive(u, 108, t_csum_naive(ph, 12, 0)) != 0xffff);
	CHECK_EQ(rd16(u + 2), 6000);
	/* template dst_port 0 keeps the input's */
	t.dst_port = 0;
	frame_build(out, sizeof(out), &t, in, in + l3len, in + l3len + 8, 100, 1, 0, 1);
	CHECK_EQ(rd16(u + 2), 5000);
}

/* The UDP checksum of a datagram (pseudo header from ip, UDP header udp8,
 * payload) verifies. */
static int udp_verifies(const uint8_t *ip, const uint8_t *udp8, const uint8_t *payload,
			uint32_t plen)
{
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, (uint16_t)(8 + plen));
	uint16_t s = t_csum_naive(ph, 12, 0);
	s = t_csum_naive(udp8, 8, s);
	return t_csum_naive(payload, plen, s) == 0xffff;
}

/*
 * A template whose destination follows the input's: dst_host_bits low bits
 * of the input's destination (239.1.1.1) on the template's prefix, and the
 * input's port when dst_port is 0. Checked for a mapping onto another /16, a
 * range kept (the template's prefix is the input's own), a /28 of a /4, with
 * and without the input's checksum (incremental, and computed in full), and
 * a corrupted payload, which must fail at the receiver as it did at the input.
 */
static void test_follow(uint8_t bits, const char *prefix, const char *want_dst, uint16_t dport,
			int with_csum, int corrupt)
{
	static uint8_t in[2000], out[2000];
	uint32_t plen = 333;
	uint32_t l3len = make_input(in, 5, plen, with_csum);
	if (corrupt)
		in[l3len + 8 + 100] ^= 0x10;
	struct mcr_template t, scratch;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	t.src_ip = ip4("192.168.7.1");
	t.dst_ip = ip4(prefix);
	t.dst_host_bits = bits;
	t.dst_port = htons(dport);
	if (bits)
		memset(t.dst_mac, 0xee, 6); /* never used for a following destination */
	else
		mcr_mcast_mac(t.dst_ip, t.dst_mac);
	const struct mcr_template *tp = frame_dest(&t, in, &scratch);
	CHECK(tp == (bits ? &scratch : &t));
	CHECK_EQ(frame_dst_addr(&t, in), ip4(want_dst));
	uint32_t len =
		frame_build(out, sizeof(out), tp, in, in + l3len, in + l3len + 8, plen, 5, 7, 1);
	REQUIRE(len == 42 + plen);
	uint8_t mac[6];
	mcr_mcast_mac(ip4(want_dst), mac);
	CHECK(memcmp(out, mac, 6) == 0);
	const uint8_t *ip = out + 14, *u = ip + 20;
	uint32_t dst;
	memcpy(&dst, ip + 16, 4);
	CHECK_EQ(dst, ip4(want_dst));
	CHECK_EQ((uint16_t)~t_csum_naive(ip, 20, 0), 0);
	CHECK_EQ(rd16(u + 2), dport ? dport : 5000);
	CHECK_EQ(udp_verifies(ip, u, u + 8, plen), !corrupt);
	/* the template itself is untouched */
	CHECK_EQ(t.dst_ip, ip4(prefix));
	CHECK_EQ(t.dst_mac[0], bits ? 0xee : 0x01);

	/* the same datagram as fragments (an MTU of 200) */
	uint8_t udp8[8];
	udp_header_build(udp8, tp, in, in + l3len, in + l3len + 8, plen, 1);
	CHECK(memcmp(udp8, u, 8) == 0);
	uint32_t nf = frag_count(plen, 214);
	CHECK_EQ(nf, 2);
	for (uint32_t k = 0; k < nf; k++) {
		uint32_t fl = frame_build_fragment(out, sizeof(out), tp, udp8, in + l3len + 8, plen,
						   5, 7, k, 214);
		REQUIRE(fl > 34);
		CHECK(memcmp(out, mac, 6) == 0);
		memcpy(&dst, out + 30, 4);
		CHECK_EQ(dst, ip4(want_dst));
		CHECK_EQ((uint16_t)~t_csum_naive(out + 14, 20, 0), 0);
	}
}

int main(void)
{
	test_mac();
	for (uint32_t plen = 0; plen < 70; plen++)
		test_build(5, plen, (int)(plen & 1), (uint16_t)(plen & 2 ? 7777 : 0));
	test_build(5, 1472, 1, 0);
	test_build(15, 1472, 1, 0);
	test_build(6, 8972, 0, 1);
	test_build(5, 65507, 1, 1);
	test_build(5, 65507, 0, 0);
	test_corrupt_stays_corrupt();
	/* input 239.1.1.1:5000 */
	for (int csum = 0; csum < 2; csum++) {
		test_follow(16, "239.20.0.0", "239.20.1.1", 6000, csum, 0); /* mapped /16 */
		test_follow(16, "239.1.0.0", "239.1.1.1", 0, csum, 0);	    /* kept, port kept */
		test_follow(28, "224.0.0.0", "239.1.1.1", 0, csum, 0);	    /* 224.0.0.0/4 kept */
		test_follow(8, "238.0.0.0", "238.0.0.1", 6000, csum, 0);    /* mapped /24 */
		test_follow(0, "239.9.9.9", "239.9.9.9", 6000, csum, 0);    /* fixed */
	}
	test_follow(16, "239.20.0.0", "239.20.1.1", 6000, 1, 1); /* corruption stays visible */
	test_follow(16, "239.20.0.0", "239.20.1.1", 0, 1, 1);
	return t_done("frame");
}
