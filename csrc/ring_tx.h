/* SPDX-License-Identifier: MIT */
/*
 * ring_tx.h — private interface of the TPACKET_V2 TX ring used by fwd.c:
 * reserve a slot, commit it, kick once per batch.
 */
#ifndef MCR_RING_TX_H
#define MCR_RING_TX_H

#include "common.h"

#define MCR_TX_MAGIC 0x6d637274u /* "mcrt" */

struct mcr_tx {
	uint32_t magic;
	int fd;                 /* -1 for a memory-only ring (tests) */
	uint8_t *map;
	size_t map_len;
	uint32_t frame_size, frame_count;
	uint32_t head;          /* next slot to fill */
	uint32_t pending;       /* committed since the last kick */
	uint32_t mtu;
	uint32_t ifindex;
	uint32_t max_frame;     /* largest frame accepted: min(14 + mtu, slot room) */
	struct mcr_tx_stats st;
};

/* Offset of frame data in a slot (TPACKET2_HDRLEN - sizeof(sockaddr_ll)). */
#define MCR_TX_DATA_OFF 32u

/* Data area of the next free slot (its room in *room), or NULL when the
 * ring is full. */
uint8_t *txr_slot(struct mcr_tx *tx, uint32_t *room);
/* Hand the slot returned by txr_slot() to the kernel with len bytes. */
void txr_commit(struct mcr_tx *tx, uint32_t len);
/* One sendto() if anything is pending. 0 or -errno (EAGAIN/ENOBUFS -> 0). */
int txr_kick(struct mcr_tx *tx);

/* Test hook: a ring in anonymous memory with no socket (kicks fail with
 * EBADF and are counted in kick_errors). Close with mcr_tx_close(). */
int txr_open_mem(uint32_t frame_size, uint32_t frame_count, uint32_t mtu, struct mcr_tx **out);

#endif /* MCR_RING_TX_H */
