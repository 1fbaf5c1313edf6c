/* SPDX-License-Identifier: MIT */
/*
 * frame6.c — IPv6 output frames and translation between the families: the
 * Ethernet/IPv6/UDP builder (RFC 8200 fixed header, RFC 2464 multicast MAC),
 * the IPv4 builder fed by an IPv6 input, and the UDP checksum rebased from
 * one pseudo header onto another (RFC 1624). Pure functions, no I/O.
 *
 * The UDP checksum covers a pseudo header (addresses, length, protocol 17)
 * plus the UDP header and payload. The IPv4 and IPv6 pseudo headers sum the
 * same length and protocol words and differ only in their addresses, so a
 * checksum moves from any input to any output by subtracting the input's
 * address and port words and adding the output's: the payload is never read
 * and a datagram that arrived corrupted leaves detectably corrupted.
 */
#include "frame.h"

#include <arpa/inet.h>
#include <string.h>

#define ETH_P_IPV6_HI 0x86u
#define ETH_P_IPV6_LO 0xddu
#define IPPROTO_UDP_V 17u
/* RFC 2464 §7: 33:33 followed by the last four bytes of the group */
#define MAC6_PREFIX   0x33u

void mcr_mcast_mac6(const uint8_t *group16, uint8_t *mac6)
{
	mac6[0] = MAC6_PREFIX;
	mac6[1] = MAC6_PREFIX;
	memcpy(mac6 + 2, group16 + 12, 4);
}

uint32_t frame_in_addr_sum(const struct frame_in *in)
{
	return in->v6 ? csum_words(in->ip + 8, 32) : csum_words(in->ip + 12, 8);
}

uint32_t frame_in_dst_low32(const struct frame_in *in)
{
	uint32_t a;
	memcpy(&a, in->ip + (in->v6 ? 36 : 16), 4);
	return a;
}

uint16_t csum_udp_rebase(uint16_t old_csum, uint32_t old_sum, uint32_t new_sum)
{
	/* ~HC + sum(~m) + sum(m'), and sum(~m) = ~fold(sum(m)) in one's complement */
	uint64_t s = (uint64_t)(uint16_t)~old_csum + (uint16_t)~csum_fold(old_sum) + new_sum;
	uint16_t c = (uint16_t)~csum_fold(s);
	return c ? c : 0xffff;
}

void udp_header_make(uint8_t *udp, const struct mcr_template *t, const struct frame_in *in,
		     uint32_t out_addr_sum)
{
	uint16_t sport, dport, in_sport, in_dport;
	memcpy(&in_sport, in->udp, 2);
	memcpy(&in_dport, in->udp + 2, 2);
	sport = t->src_port ? t->src_port : in_sport;
	dport = t->dst_port ? t->dst_port : in_dport;
	memcpy(udp, &sport, 2);
	memcpy(udp + 2, &dport, 2);
	uint32_t udp_len = MCR_UDP_HLEN + in->len;
	wr16(udp + 4, (uint16_t)udp_len);
	wr16(udp + 6, 0);
	uint32_t new_sum = out_addr_sum + rd16(udp) + rd16(udp + 2);
	uint16_t in_csum = rd16(in->udp + 6);
	if (in->csum_ok && in_csum != 0 && rd16(in->udp + 4) == udp_len) {
		uint32_t old_sum = frame_in_addr_sum(in) + rd16(in->udp) + rd16(in->udp + 2);
		wr16(udp + 6, csum_udp_rebase(in_csum, old_sum, new_sum));
		return;
	}
	/* pseudo header (addresses, protocol, length) + header (ports, length) + payload */
	uint64_t s = (uint64_t)out_addr_sum + IPPROTO_UDP_V + udp_len;
	s += mcr_csum_partial(udp, 6, 0);
	if (in->len)
		s += mcr_csum_partial(in->payload, in->len, 0);
	uint16_t c = (uint16_t)~csum_fold(s);
	wr16(udp + 6, c ? c : 0xffff);
}

uint32_t frame_build_x4(uint8_t *out, uint32_t cap, const struct mcr_template *t,
			const struct frame_in *in, uint8_t ttl, uint16_t ip_id)
{
	uint32_t len = in->len;
	if (len > 65535u - MCR_IP_HLEN - MCR_UDP_HLEN || cap < MCR_HDRS_LEN ||
	    len > cap - MCR_HDRS_LEN)
		return 0;
	l2l3_build(out, t, (uint16_t)(MCR_IP_HLEN + MCR_UDP_HLEN + len), ip_id, 0, ttl);
	uint8_t *udp = out + MCR_ETH_HLEN + MCR_IP_HLEN;
	memcpy(udp + MCR_UDP_HLEN, in->payload, len);
	udp_header_make(udp, t, in, csum_addr(t->src_ip) + csum_addr(t->dst_ip));
	return MCR_HDRS_LEN + len;
}

void frame_dst6(const struct mcr_template *t, const struct frame_addr6 *a, uint32_t in_dst_low,
		uint8_t *dst16)
{
	memcpy(dst16, a->dst, 16);
	uint32_t bits = t->dst_host_bits;
	if (!bits)
		return;
	uint32_t fixed, host = htonl(bits >= 32 ? ~0u : (1u << bits) - 1u);
	memcpy(&fixed, a->dst + 12, 4);
	fixed = (fixed & ~host) | (in_dst_low & host);
	memcpy(dst16 + 12, &fixed, 4);
}

uint32_t frame_build6(uint8_t *out, uint32_t cap, const struct mcr_template *t,
		      const struct frame_addr6 *a, const struct frame_in *in, uint8_t hlim)
{
	uint32_t len = in->len;
	if (len > 65535u - MCR_UDP_HLEN || cap < MCR_HDRS6_LEN || len > cap - MCR_HDRS6_LEN)
		return 0;
	uint8_t *eth = out, *ip6 = out + MCR_ETH_HLEN, *udp = ip6 + MCR_IP6_HLEN;
	uint8_t *dst = ip6 + 24;
	frame_dst6(t, a, frame_in_dst_low32(in), dst);
	if (dst[0] == 0xff)
		mcr_mcast_mac6(dst, eth);
	else
		memcpy(eth, t->dst_mac, 6);
	memcpy(eth + 6, t->src_mac, 6);
	eth[12] = ETH_P_IPV6_HI;
	eth[13] = ETH_P_IPV6_LO;
	/* version 6, traffic class, flow label 0 */
	ip6[0] = (uint8_t)(0x60u | (t->tos >> 4));
	ip6[1] = (uint8_t)((t->tos & 0x0fu) << 4);
	ip6[2] = 0;
	ip6[3] = 0;
	wr16(ip6 + 4, (uint16_t)(MCR_UDP_HLEN + len));
	ip6[6] = IPPROTO_UDP_V;
	ip6[7] = hlim;
	memcpy(ip6 + 8, a->src, 16);
	memcpy(udp + MCR_UDP_HLEN, in->payload, len);
	udp_header_make(udp, t, in, csum_words(ip6 + 8, 32));
	return MCR_HDRS6_LEN + len;
}
