/* SPDX-License-Identifier: MIT */
/*
 * frame.c — RFC 1071 Internet checksum (64-bit accumulator), IPv4/UDP
 * checksums (full and RFC 1624 incremental), the IPv4 multicast MAC mapping,
 * and the Ethernet/IPv4/UDP frame builder. Pure functions, no I/O.
 */
#include "frame.h"

#include <arpa/inet.h>
#include <string.h>

uint16_t mcr_csum_partial(const uint8_t *buf, uint32_t len, uint32_t seed)
{
	uint64_t s = 0;
	uint64_t v;

	/* Sum 8-byte native-order loads as two 32-bit halves: no carry
	 * handling needed below 2^31 iterations (16 GiB). One's-complement
	 * addition is byte-order independent up to a final swap. */
	while (len >= 32) {
		uint64_t a, b, c, d;
		memcpy(&a, buf, 8);
		memcpy(&b, buf + 8, 8);
		memcpy(&c, buf + 16, 8);
		memcpy(&d, buf + 24, 8);
		s += (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32);
		s += (c & 0xffffffffu) + (c >> 32) + (d & 0xffffffffu) + (d >> 32);
		buf += 32;
		len -= 32;
	}
	while (len >= 8) {
		memcpy(&v, buf, 8);
		s += (v & 0xffffffffu) + (v >> 32);
		buf += 8;
		len -= 8;
	}
	if (len) {
		v = 0;
		memcpy(&v, buf, len); /* zero padding keeps word positions */
		s += (v & 0xffffffffu) + (v >> 32);
	}
	uint16_t r = csum_fold(s);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	r = __builtin_bswap16(r);
#endif
	return csum_fold((uint64_t)r + (seed & 0xffffu) + (seed >> 16));
}

uint16_t csum_ipv4_hdr(const uint8_t *ip, uint32_t ihl_bytes)
{
	uint32_t sum = mcr_csum_partial(ip, 10, 0);
	sum += mcr_csum_partial(ip + 12, ihl_bytes - 12, 0);
	return (uint16_t)~csum_fold(sum);
}

uint16_t csum_udp_full(uint32_t saddr, uint32_t daddr, const uint8_t *udp, uint32_t udp_len)
{
	uint64_t pseudo = (uint64_t)csum_addr(saddr) + csum_addr(daddr) + 17u + (udp_len & 0xffffu);
	uint64_t s = pseudo + mcr_csum_partial(udp, 6, 0);
	if (udp_len > 8)
		s += mcr_csum_partial(udp + 8, udp_len - 8, 0);
	uint16_t c = (uint16_t)~csum_fold(s);
	return c ? c : 0xffff;
}

uint16_t csum_udp_update(uint16_t old_csum, uint32_t old_saddr, uint32_t old_daddr,
			 uint16_t old_sport, uint16_t old_dport, uint32_t new_saddr,
			 uint32_t new_daddr, uint16_t new_sport, uint16_t new_dport)
{
	/* HC' = ~(~HC + ~m + m') for every changed 16-bit word m -> m'.
	 * ~m summed over words equals (0xffff * words - sum m). */
	const uint8_t *os = (const uint8_t *)&old_saddr, *od = (const uint8_t *)&old_daddr;
	const uint8_t *ns = (const uint8_t *)&new_saddr, *nd = (const uint8_t *)&new_daddr;
	const uint8_t *op = (const uint8_t *)&old_sport, *oq = (const uint8_t *)&old_dport;
	const uint8_t *np = (const uint8_t *)&new_sport, *nq = (const uint8_t *)&new_dport;
	uint16_t m[6] = { rd16(os), rd16(os + 2), rd16(od), rd16(od + 2), rd16(op), rd16(oq) };
	uint16_t mn[6] = { rd16(ns), rd16(ns + 2), rd16(nd), rd16(nd + 2), rd16(np), rd16(nq) };
	uint64_t s = (uint16_t)~old_csum;
	for (int i = 0; i < 6; i++)
		s += (uint16_t)~m[i] + (uint64_t)mn[i];
	uint16_t c = (uint16_t)~csum_fold(s);
	return c ? c : 0xffff;
}

void mcr_mcast_mac(uint32_t group, uint8_t *mac6)
{
	const uint8_t *g = (const uint8_t *)&group;
	mac6[0] = 0x01;
	mac6[1] = 0x00;
	mac6[2] = 0x5e;
	mac6[3] = g[1] & 0x7f;
	mac6[4] = g[2];
	mac6[5] = g[3];
}

uint32_t frame_dst_addr_low(const struct mcr_template *t, uint32_t in_dst)
{
	uint32_t bits = t->dst_host_bits;
	if (!bits)
		return t->dst_ip;
	uint32_t host = htonl(bits >= 32 ? ~0u : (1u << bits) - 1u);
	return (t->dst_ip & ~host) | (in_dst & host);
}

uint32_t frame_dst_addr(const struct mcr_template *t, const uint8_t *in_ip)
{
	uint32_t in_dst;
	memcpy(&in_dst, in_ip + 16, 4);
	return frame_dst_addr_low(t, in_dst);
}

const struct mcr_template *frame_dest_low(const struct mcr_template *t, uint32_t in_dst_low,
					  struct mcr_template *scratch)
{
	if (!t->dst_host_bits)
		return t;
	*scratch = *t;
	scratch->dst_ip = frame_dst_addr_low(t, in_dst_low);
	mcr_mcast_mac(scratch->dst_ip, scratch->dst_mac);
	return scratch;
}

const struct mcr_template *frame_dest(const struct mcr_template *t, const uint8_t *in_ip,
				      struct mcr_template *scratch)
{
	uint32_t in_dst;
	memcpy(&in_dst, in_ip + 16, 4);
	return frame_dest_low(t, in_dst, scratch);
}

/* Sum of the UDP checksum over a header (8 bytes, checksum field ignored)
 * and a separate payload: the value to store (0 mapped to 0xFFFF). */
static uint16_t csum_udp_split(uint32_t saddr, uint32_t daddr, const uint8_t *udp8,
			       const uint8_t *payload, uint32_t len)
{
	uint32_t udp_len = MCR_UDP_HLEN + len;
	uint64_t s = (uint64_t)csum_addr(saddr) + csum_addr(daddr) + 17u + (udp_len & 0xffffu);
	s += mcr_csum_partial(udp8, 6, 0);
	if (len)
		s += mcr_csum_partial(payload, len, 0);
	uint16_t c = (uint16_t)~csum_fold(s);
	return c ? c : 0xffff;
}

void udp_header_build(uint8_t *udp, const struct mcr_template *t, const uint8_t *in_ip,
		      const uint8_t *in_udp, const uint8_t *payload, uint32_t len, int in_csum_ok)
{
	uint16_t sport, dport, in_sport, in_dport;
	memcpy(&in_sport, in_udp, 2);
	memcpy(&in_dport, in_udp + 2, 2);
	sport = t->src_port ? t->src_port : in_sport;
	dport = t->dst_port ? t->dst_port : in_dport;
	memcpy(udp, &sport, 2);
	memcpy(udp + 2, &dport, 2);
	wr16(udp + 4, (uint16_t)(MCR_UDP_HLEN + len));
	wr16(udp + 6, 0);

	uint16_t in_csum = rd16(in_udp + 6);
	uint16_t c;
	if (in_csum_ok && in_csum != 0 && rd16(in_udp + 4) == MCR_UDP_HLEN + len) {
		uint32_t in_saddr, in_daddr;
		memcpy(&in_saddr, in_ip + 12, 4);
		memcpy(&in_daddr, in_ip + 16, 4);
		c = csum_udp_update(in_csum, in_saddr, in_daddr, in_sport, in_dport, t->src_ip,
				    t->dst_ip, sport, dport);
	} else {
		c = csum_udp_split(t->src_ip, t->dst_ip, udp, payload, len);
	}
	wr16(udp + 6, c);
}

void l2l3_build(uint8_t *out, const struct mcr_template *t, uint16_t ip_len, uint16_t ip_id,
		uint16_t frag, uint8_t ttl)
{
	uint8_t *eth = out, *ip = out + MCR_ETH_HLEN;
	memcpy(eth, t->dst_mac, 6);
	memcpy(eth + 6, t->src_mac, 6);
	eth[12] = 0x08;
	eth[13] = 0x00;
	ip[0] = 0x45;
	ip[1] = t->tos;
	wr16(ip + 2, ip_len);
	wr16(ip + 4, ip_id);
	wr16(ip + 6, frag);
	ip[8] = ttl;
	ip[9] = 17;
	memcpy(ip + 12, &t->src_ip, 4);
	memcpy(ip + 16, &t->dst_ip, 4);
	wr16(ip + 10, csum_ipv4_hdr(ip, MCR_IP_HLEN));
}

uint32_t frame_build(uint8_t *out, uint32_t cap, const struct mcr_template *t, const uint8_t *in_ip,
		     const uint8_t *in_udp, const uint8_t *payload, uint32_t len, uint8_t ttl,
		     uint16_t ip_id, int in_csum_ok)
{
	if (len > 65535u - MCR_IP_HLEN - MCR_UDP_HLEN || cap < MCR_HDRS_LEN ||
	    len > cap - MCR_HDRS_LEN)
		return 0;
	/* flags: no DF, not a fragment — the relay re-originates the datagram */
	l2l3_build(out, t, (uint16_t)(MCR_IP_HLEN + MCR_UDP_HLEN + len), ip_id, 0, ttl);
	uint8_t *udp = out + MCR_ETH_HLEN + MCR_IP_HLEN;
	memcpy(udp + MCR_UDP_HLEN, payload, len);
	udp_header_build(udp, t, in_ip, in_udp, payload, len, in_csum_ok);
	return MCR_HDRS_LEN + len;
}

uint32_t frag_payload_max(uint32_t max_frame)
{
	if (max_frame < MCR_ETH_HLEN + MCR_IP_HLEN + 8u)
		return 0;
	return (max_frame - MCR_ETH_HLEN - MCR_IP_HLEN) & ~7u;
}

uint32_t frag_count(uint32_t len, uint32_t max_frame)
{
	uint32_t chunk = frag_payload_max(max_frame);
	if (!chunk)
		return 0;
	uint32_t ip_payload = MCR_UDP_HLEN + len;
	return (ip_payload + chunk - 1) / chunk;
}

uint32_t frame_build_fragment(uint8_t *out, uint32_t cap, const struct mcr_template *t,
			      const uint8_t *udp8, const uint8_t *payload, uint32_t len,
			      uint8_t ttl, uint16_t ip_id, uint32_t k, uint32_t max_frame)
{
	uint32_t chunk = frag_payload_max(max_frame);
	uint32_t total = MCR_UDP_HLEN + len; /* the IPv4 payload being split */
	uint32_t off = k * chunk;
	if (!chunk || off >= total)
		return 0;
	uint32_t n = total - off < chunk ? total - off : chunk;
	if (cap < MCR_ETH_HLEN + MCR_IP_HLEN + n)
		return 0;
	int more = off + n < total;
	uint16_t frag = (uint16_t)((more ? 0x2000u : 0u) | (off / 8u));
	l2l3_build(out, t, (uint16_t)(MCR_IP_HLEN + n), ip_id, frag, ttl);
	uint8_t *dst = out + MCR_ETH_HLEN + MCR_IP_HLEN;
	if (off == 0) {
		memcpy(dst, udp8, MCR_UDP_HLEN);
		memcpy(dst + MCR_UDP_HLEN, payload, n - MCR_UDP_HLEN);
	} else {
		memcpy(dst, payload + (off - MCR_UDP_HLEN), n);
	}
	return MCR_ETH_HLEN + MCR_IP_HLEN + n;
}
