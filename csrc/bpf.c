/* SPDX-License-Identifier: MIT */
/*
 * bpf.c — builds the RX socket filter. A socket filter runs before the ring
 * room check and the copy, so everything no rule wants is dropped in the
 * kernel at the lowest cost.
 *
 *   [outgoing]  ld  #pkttype ; jeq #PACKET_OUTGOING -> drop
 *   [udp]       ldx #0 ; ldh [12]
 *               0x0800 -> ip ; 0x8100/0x88a8 -> ldh [16] == 0x0800 ? ldx #4 -> ip : drop
 *          ip:  ldb [x+23] == 17 ? : drop
 *               [dst list] ld [x+30] ; (jeq #a_i ; ret accept)*          (the /32 entries)
 *                          (ld [x+30] ; and #mask_L ; (jeq #net_i ; ret accept)*)*
 *                                                  (one group per prefix length L < 32,
 *                                                   longest first) ; ret drop
 *   ret accept
 *
 * The kernel normally strips the outer VLAN tag into the ring header before
 * the filter runs, so [12] is usually already the inner ethertype; the tagged
 * path covers devices/paths that keep the tag in-band. Every drop/accept is a
 * return placed next to its test so no jump exceeds the 8-bit offsets.
 *
 * With MCR_BPF_L3 the frame is the IPv4 packet itself (a link without a
 * link-layer header: tun, WireGuard, ipip, PPP, ...). There is no ethertype;
 * the version nibble says IPv4, and the same tests follow at offsets 14 lower:
 *
 *   [udp]       ldx #0 ; ldb [0] ; and #0xf0 ; jeq #0x40 ? : drop
 *          ip:  ldb [x+9] == 17 ? : drop
 *               [dst list] ld [x+16] ; ...
 *
 * With MCR_BPF_IPV6 the ethertype (or version) tests also branch to an IPv6
 * block placed before the IPv4 one, which passes a next header of UDP or of
 * an extension header that may precede it (hop-by-hop 0, routing 43,
 * destination options 60) — classic BPF cannot walk a chain of them, so the
 * parser in user space does, and counts what it refuses — or of a fragment
 * header (44), so that IPv6 fragments are counted as IPv4 ones are:
 *
 *               0x0800 -> ip ; 0x86dd -> ip6 ; 0x8100/0x88a8 -> ldh [16] ; ldx #4 ;
 *                          0x0800 -> ip ; 0x86dd -> ip6 ; drop
 *         ip6:  ldb [x+20] in {17, 0, 43, 60, 44} ? accept : drop
 */
#include "bpf.h"

#include <linux/if_ether.h>
#include <linux/if_packet.h>

#define ACCEPT	    0xffffffffu
/* IPv4 header (RFC 791): protocol and destination address offsets, version bits */
#define IP_PROTO    9u
#define IP_DST	    16u
#define IP_VERSION  0xf0u
#define IP_V4	    0x40u
#define IP_V6	    0x60u
/* IPv6 (RFC 8200): next header offset; the next headers the filter passes */
#define IP6_NEXT    6u
#define NH_HOPOPTS  0u
#define NH_ROUTING  43u
#define NH_DSTOPTS  60u
#define NH_FRAGMENT 44u
#define NH_UDP	    17u
#define ETH_IPV4    0x0800u
#define ETH_IPV6    0x86ddu

/* The IPv6 block: next header at ip + IP6_NEXT (+ X) UDP or an extension
 * header that may precede it: accept, else drop (7 instructions). */
static uint32_t emit_ip6(struct sock_filter *prog, uint32_t i, uint32_t ip)
{
	prog[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_IND, ip + IP6_NEXT);
	prog[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NH_UDP, 5, 0);
	prog[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NH_HOPOPTS, 4, 0);
	prog[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NH_ROUTING, 3, 0);
	prog[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NH_DSTOPTS, 2, 0);
	prog[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NH_FRAGMENT, 1, 0);
	prog[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	prog[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ACCEPT);
	return i;
}

/* Host-order value of a network-order address. */
static uint32_t host_of(uint32_t net)
{
	const uint8_t *b = (const uint8_t *)&net;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Host-order mask of a prefix length 0..32. */
static uint32_t mask_of(uint32_t len)
{
	return len ? ~0u << (32u - len) : 0u;
}

int bpf_build(struct sock_filter *prog, uint32_t cap, uint32_t kinds, const uint32_t *dst,
	      const uint8_t *plen, uint32_t n)
{
	uint32_t i = 0;
	if (!(kinds & MCR_BPF_UDP))
		n = 0;
	if (n > MCR_BPF_MAX_DST)
		return -E2BIG;
	if (cap < bpf_size(n))
		return -EINVAL;
	for (uint32_t k = 0; plen && k < n; k++)
		if (plen[k] > 32)
			return -EINVAL;
#define EMIT(x) (prog[i++] = (struct sock_filter)x)
	if (kinds & MCR_BPF_OUTGOING) {
		EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)));
		EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1));
		EMIT(BPF_STMT(BPF_RET | BPF_K, 0));
	}
	if (kinds & MCR_BPF_UDP) {
		/* offset of the IPv4 header (+ X: an in-band VLAN tag) */
		uint32_t ip = (kinds & MCR_BPF_L3) ? 0u : ETH_HLEN;
		if ((kinds & MCR_BPF_IPV6) && (kinds & MCR_BPF_L3)) {
			EMIT(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0));		 /* +0 */
			EMIT(BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0));		 /* +1 */
			EMIT(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, IP_VERSION));	 /* +2 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IP_V4, 10, 0)); /* +3 -> +14 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IP_V6, 1, 0));	 /* +4 -> +6 / +5 */
			EMIT(BPF_STMT(BPF_RET | BPF_K, 0));			 /* +5 */
			i = emit_ip6(prog, i, ip);				 /* +6..+13 */
		} else if (kinds & MCR_BPF_IPV6) {
			EMIT(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0));		    /* +0 */
			EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12));		    /* +1 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_IPV4, 16, 0)); /* +2 -> +19 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_IPV6, 7, 0));  /* +3 -> +11 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8100, 1, 0));    /* +4 -> +6 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x88a8, 0,
				      4));			      /* +5 -> +6 / +10 */
			EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 16)); /* +6 */
			EMIT(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 4)); /* +7 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_IPV4, 10, 0)); /* +8 -> +19 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_IPV6, 1,
				      0));		    /* +9 -> +11 / +10 */
			EMIT(BPF_STMT(BPF_RET | BPF_K, 0)); /* +10 */
			i = emit_ip6(prog, i, ip);	    /* +11..+18 */
		} else if (kinds & MCR_BPF_L3) {
			EMIT(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0));		/* +0 */
			EMIT(BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0));		/* +1 */
			EMIT(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, IP_VERSION));	/* +2 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IP_V4, 1, 0)); /* +3 -> +5 / +4 */
			EMIT(BPF_STMT(BPF_RET | BPF_K, 0));			/* +4 */
		} else {
			EMIT(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0));		 /* +0 */
			EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12));		 /* +1 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 6, 0)); /* +2 -> +9 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8100, 1, 0)); /* +3 -> +5 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x88a8, 0, 2)); /* +4 -> +5 / +7 */
			EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 16));		 /* +5 */
			EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 1, 0)); /* +6 -> +8 / +7 */
			EMIT(BPF_STMT(BPF_RET | BPF_K, 0));			 /* +7 */
			EMIT(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 4));		 /* +8 */
		}
		/* ip: (Ethernet +9, L3 +5) */
		EMIT(BPF_STMT(BPF_LD | BPF_B | BPF_IND, ip + IP_PROTO)); /* ip+0 */
		EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 1, 0));	 /* ip+1 -> ip+3 / ip+2 */
		EMIT(BPF_STMT(BPF_RET | BPF_K, 0));			 /* ip+2 */
		if (n > 0) {
			/* the /32 entries against the address as loaded, then one group per
			 * shorter prefix length: reload, mask, compare each network */
			for (uint32_t len = 32;; len--) {
				uint32_t mask = mask_of(len), first = 1;
				for (uint32_t k = 0; k < n; k++) {
					if ((plen ? plen[k] : 32u) != len)
						continue;
					if (first) {
						EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_IND,
							      ip + IP_DST));
						if (len < 32)
							EMIT(BPF_STMT(BPF_ALU | BPF_AND | BPF_K,
								      mask));
						first = 0;
					}
					EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      host_of(dst[k]) & mask, 0, 1));
					EMIT(BPF_STMT(BPF_RET | BPF_K, ACCEPT));
				}
				if (len == 0)
					break;
			}
			EMIT(BPF_STMT(BPF_RET | BPF_K, 0));
			return (int)i;
		}
	}
	EMIT(BPF_STMT(BPF_RET | BPF_K, ACCEPT));
#undef EMIT
	return (int)i;
}
