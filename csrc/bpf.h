/* SPDX-License-Identifier: MIT */
/*
 * bpf.h — classic BPF socket filters for the RX ring.
 */
#ifndef MCR_BPF_H
#define MCR_BPF_H

#include <linux/filter.h>

#include "common.h"

#define MCR_BPF_MAX_DST 1000u /* 2 instructions per address and tag variant */

/* Filter kinds for bpf_build(). */
#define MCR_BPF_OUTGOING 0x1u /* drop pkt_type == PACKET_OUTGOING */
#define MCR_BPF_UDP	 0x2u /* accept only IPv4/UDP (untagged or one 802.1Q/802.1ad tag) */
#define MCR_BPF_L3	 0x4u /* with MCR_BPF_UDP: frames start at the IPv4 header (no link header) */

/*
 * Build a program into prog (capacity cap instructions). With MCR_BPF_UDP and
 * n > 0 only datagrams to one of dst (network byte order) pass. Returns the
 * instruction count, or -E2BIG/-EINVAL.
 */
int bpf_build(struct sock_filter *prog, uint32_t cap, uint32_t kinds, const uint32_t *dst,
	      uint32_t n);

/* Instructions needed for n destinations. */
static inline uint32_t bpf_size(uint32_t n)
{
	return 18u + 2u * n;
}

#endif /* MCR_BPF_H */
