/* SPDX-License-Identifier: MIT */
/*
 * frame.h — pure header-building and checksum functions (no I/O), shared by
 * fwd.c and the tests/fuzzers.
 *
 * Checksum value convention: a 16-bit checksum or partial sum is the host
 * integer value of the big-endian (network order) word, i.e. what ntohs()
 * of the on-wire field gives. Addresses and ports are passed in network byte
 * order, exactly as they sit in the headers.
 */
#ifndef MCR_FRAME_H
#define MCR_FRAME_H

#include <stdint.h>
#include <stddef.h>

#include "common.h"

#define MCR_ETH_HLEN  14u
#define MCR_IP_HLEN   20u
#define MCR_UDP_HLEN  8u
#define MCR_HDRS_LEN  (MCR_ETH_HLEN + MCR_IP_HLEN + MCR_UDP_HLEN) /* 42 */
#define MCR_IP6_HLEN  40u
#define MCR_HDRS6_LEN (MCR_ETH_HLEN + MCR_IP6_HLEN + MCR_UDP_HLEN) /* 62 */

/* Fold a 64-bit one's-complement accumulator to 16 bits (not complemented). */
static inline uint16_t csum_fold(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	return (uint16_t)s;
}

/* Sum of the two 16-bit words of an address in network byte order. */
static inline uint32_t csum_addr(uint32_t addr_net)
{
	const uint8_t *b = (const uint8_t *)&addr_net;
	return ((uint32_t)b[0] << 8 | b[1]) + ((uint32_t)b[2] << 8 | b[3]);
}

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* IPv4 header checksum (value to store) of an ihl_bytes header whose
 * checksum field is ignored (treated as 0). */
uint16_t csum_ipv4_hdr(const uint8_t *ip, uint32_t ihl_bytes);

/*
 * Full UDP checksum (value to store, 0 mapped to 0xFFFF) over the pseudo
 * header and udp (header + payload, udp_len bytes, contiguous). The header's
 * checksum field is ignored.
 */
uint16_t csum_udp_full(uint32_t saddr, uint32_t daddr, const uint8_t *udp, uint32_t udp_len);

/*
 * UDP checksum of a datagram whose payload and UDP length are unchanged but
 * whose addresses and ports changed (RFC 1624, eqn. 3). old_csum is the
 * received, non-zero checksum. Returns the value to store (0 mapped to 0xFFFF).
 */
uint16_t csum_udp_update(uint16_t old_csum, uint32_t old_saddr, uint32_t old_daddr,
			 uint16_t old_sport, uint16_t old_dport, uint32_t new_saddr,
			 uint32_t new_daddr, uint16_t new_sport, uint16_t new_dport);

/*
 * The destination address of a datagram sent with template t whose input
 * IPv4 header is in_ip: t->dst_ip, or with t->dst_host_bits its prefix and
 * that many low bits of the input's destination (network byte order).
 */
uint32_t frame_dst_addr(const struct mcr_template *t, const uint8_t *in_ip);
/* The same, the input's destination given as its low 32 bits (network order). */
uint32_t frame_dst_addr_low(const struct mcr_template *t, uint32_t in_dst_low);

/*
 * The template to build one datagram with: t itself when its destination
 * address is fixed (dst_host_bits 0), else a copy in *scratch with the
 * destination address of this datagram (frame_dst_addr) and its multicast
 * MAC. (A destination port of 0 needs no copy: the builders keep the
 * input's port.)
 */
const struct mcr_template *frame_dest(const struct mcr_template *t, const uint8_t *in_ip,
				      struct mcr_template *scratch);

/*
 * Write an Ethernet II + IPv4 (IHL 5, no DF, id ip_id) + UDP frame for
 * template t into out (cap bytes). in_ip: the input IPv4 header (addresses
 * read at +12/+16), in_udp: the input UDP header (8 bytes), payload/len: the
 * UDP payload. The UDP checksum is updated incrementally when in_csum_ok (the
 * input's checksum field is final: not TP_STATUS_CSUMNOTREADY, i.e. not a
 * CHECKSUM_PARTIAL skb from a local sender), the input carried a checksum
 * and its UDP length equals 8 + len; otherwise it is computed in full.
 * Template ports of 0 keep the input datagram's ports. Returns the frame
 * length, or 0 when it does not fit into cap.
 */
uint32_t frame_build(uint8_t *out, uint32_t cap, const struct mcr_template *t, const uint8_t *in_ip,
		     const uint8_t *in_udp, const uint8_t *payload, uint32_t len, uint8_t ttl,
		     uint16_t ip_id, int in_csum_ok);

/*
 * The UDP header (8 bytes) of an output datagram: template ports (0 keeps the
 * input's), length, and the checksum over the whole datagram — incremental
 * from the input's when possible (see frame_build), in full otherwise.
 */
void udp_header_build(uint8_t *udp, const struct mcr_template *t, const uint8_t *in_ip,
		      const uint8_t *in_udp, const uint8_t *payload, uint32_t len, int in_csum_ok);

/* Ethernet II + IPv4 header (IHL 5) for template t: total length ip_len,
 * identification ip_id, flags/fragment-offset word frag, ttl. */
void l2l3_build(uint8_t *out, const struct mcr_template *t, uint16_t ip_len, uint16_t ip_id,
		uint16_t frag, uint8_t ttl);

/* IPv4 fragmentation (RFC 791), as a router does when a datagram without DF
 * is longer than the output MTU: every fragment but the last carries a
 * multiple of 8 bytes of the IPv4 payload (UDP header + payload), as much as
 * fits into max_frame (Ethernet + IPv4 header + data). */
/* Largest fragment data per frame for max_frame (0 if none fits). */
uint32_t frag_payload_max(uint32_t max_frame);
/* Fragments needed for a UDP payload of len bytes (0 if impossible). */
uint32_t frag_count(uint32_t len, uint32_t max_frame);
/* Write fragment k of the datagram (udp8: its UDP header from
 * udp_header_build, payload/len: its payload). Returns the frame length, or
 * 0 when k is past the end or the fragment does not fit into cap. */
uint32_t frame_build_fragment(uint8_t *out, uint32_t cap, const struct mcr_template *t,
			      const uint8_t *udp8, const uint8_t *payload, uint32_t len,
			      uint8_t ttl, uint16_t ip_id, uint32_t k, uint32_t max_frame);

/* ------------------------------------------------ IPv6 and translation (frame6.c) */

/* One input datagram as the forwarder found it: IPv4 or IPv6. */
struct frame_in {
	const uint8_t *ip;	/* its IPv4 header, or its IPv6 fixed header (v6) */
	const uint8_t *udp;	/* its UDP header (8 bytes) */
	const uint8_t *payload; /* its UDP payload, len bytes */
	uint32_t len;
	int v6;	     /* ip is an IPv6 header */
	int csum_ok; /* the UDP checksum field is final (not TP_STATUS_CSUMNOTREADY) */
};

/* The IPv6 addresses of an output (mcr_fwd_set_template6). */
struct frame_addr6 {
	uint8_t src[16];
	uint8_t dst[16];
};

/* Sum of the 16-bit big-endian words of n bytes (n even): an address's
 * contribution to a pseudo-header checksum. */
static inline uint32_t csum_words(const uint8_t *a, uint32_t n)
{
	uint32_t s = 0;
	for (uint32_t i = 0; i < n; i += 2)
		s += rd16(a + i);
	return s;
}

/* Sum of the input's source and destination address words (either family). */
uint32_t frame_in_addr_sum(const struct frame_in *in);

/* The low 32 bits of the input's destination address (network byte order):
 * the whole IPv4 address, or the last word of the IPv6 one. */
uint32_t frame_in_dst_low32(const struct frame_in *in);

/*
 * A UDP checksum rebased from one pseudo header and ports onto another, the
 * payload and UDP length unchanged (RFC 1624 eqn. 3 over every changed word
 * at once): old_sum / new_sum are the sums of the address and port words
 * before and after (csum_words). Works across families: IPv4 and IPv6
 * pseudo headers differ only in their address words (the length and next
 * header words are the same for a datagram under 64 KiB). Returns the value
 * to store (0 mapped to 0xFFFF).
 */
uint16_t csum_udp_rebase(uint16_t old_csum, uint32_t old_sum, uint32_t new_sum);

/*
 * The UDP header of an output datagram of any family built from in:
 * template ports (0 keeps the input's), length, checksum — rebased from the
 * input's when it is usable (non-zero, final, its UDP length 8 + len),
 * computed in full otherwise. out_addr_sum: the output's address words.
 */
void udp_header_make(uint8_t *udp, const struct mcr_template *t, const struct frame_in *in,
		     uint32_t out_addr_sum);

/* The template to build one IPv4 datagram with (frame_dest), the input's
 * destination given as its low 32 bits (network byte order). */
const struct mcr_template *frame_dest_low(const struct mcr_template *t, uint32_t in_dst_low,
					  struct mcr_template *scratch);

/* An Ethernet/IPv4/UDP frame from an input of either family (frame_build for
 * an IPv6 input: new headers, payload unchanged). Returns the frame length,
 * or 0 when it does not fit into cap. */
uint32_t frame_build_x4(uint8_t *out, uint32_t cap, const struct mcr_template *t,
			const struct frame_in *in, uint8_t ttl, uint16_t ip_id);

/*
 * The destination of an IPv6 output (a->dst, or with t->dst_host_bits its
 * last 32 bits' low bits from in_dst_low) into dst16.
 */
void frame_dst6(const struct mcr_template *t, const struct frame_addr6 *a, uint32_t in_dst_low,
		uint8_t *dst16);

/*
 * Write an Ethernet II + IPv6 (no extension headers, flow label 0, traffic
 * class t->tos, hop limit hlim) + UDP frame for template t with addresses a
 * from an input of either family into out (cap bytes). Destination MAC: the
 * RFC 2464 mapping (33:33 + low 32 bits) for a multicast destination,
 * t->dst_mac otherwise. The UDP checksum (mandatory in IPv6) is rebased from
 * the input's when usable, computed in full otherwise. Returns the frame
 * length, or 0 when it does not fit into cap (IPv6 is never fragmented).
 */
uint32_t frame_build6(uint8_t *out, uint32_t cap, const struct mcr_template *t,
		      const struct frame_addr6 *a, const struct frame_in *in, uint8_t hlim);

#endif /* MCR_FRAME_H */
