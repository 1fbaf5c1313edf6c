/* SPDX-License-Identifier: MIT */
/*
 * bpf.h — classic BPF socket filters for the RX ring.
 */
#ifndef MCR_BPF_H
#define MCR_BPF_H

#include <linux/filter.h>

#include "common.h"

#define MCR_BPF_MAX_DST	    1000u /* entries: 2 instructions each, plus 2 per prefix length */
/* Prefix lengths below 32 a destination list can have (0..31): each costs 2
 * instructions (reload the address, mask it) once, whatever its entries. */
#define MCR_BPF_PREFIX_LENS 32u

/* Filter kinds for bpf_build(). */
#define MCR_BPF_OUTGOING 0x1u /* drop pkt_type == PACKET_OUTGOING */
#define MCR_BPF_UDP	 0x2u /* accept only IPv4/UDP (untagged or one 802.1Q/802.1ad tag) */
#define MCR_BPF_L3	 0x4u /* with MCR_BPF_UDP: frames start at the IPv4 header (no link header) */
/* with MCR_BPF_UDP: IPv6 passes too (ethertype 0x86DD, or version 6 with
 * MCR_BPF_L3) when its next header is UDP, hop-by-hop, routing or
 * destination options; the destination list applies to IPv4 only */
#define MCR_BPF_IPV6	 0x8u

/*
 * Build a program into prog (capacity cap instructions). With MCR_BPF_UDP and
 * n > 0 only datagrams to one of the destinations pass: dst[i] (network byte
 * order) with prefix length plen[i] (0..32; plen NULL: all /32) passes a
 * destination whose first plen[i] bits are dst[i]'s. Returns the instruction
 * count, or -E2BIG (n > MCR_BPF_MAX_DST) / -EINVAL (cap below bpf_size(n), a
 * prefix length over 32).
 */
int bpf_build(struct sock_filter *prog, uint32_t cap, uint32_t kinds, const uint32_t *dst,
	      const uint8_t *plen, uint32_t n);

/* Instructions enough for n destinations, whatever their prefix lengths. */
static inline uint32_t bpf_size(uint32_t n)
{
	return 27u + 2u * n + (n ? 2u * MCR_BPF_PREFIX_LENS : 0u);
}

#endif /* MCR_BPF_H */
