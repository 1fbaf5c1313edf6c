/* SPDX-License-Identifier: MIT */
/*
 * ring_rx.h — private accessors of the RX ring used by fwd.c and rxset.c.
 */
#ifndef MCR_RING_RX_H
#define MCR_RING_RX_H

#include "common.h"

/* The current batch (descriptors and count) and the ring mapping. */
void rxr_batch(const mcr_rx *rx, const struct mcr_rx_desc **desc, uint32_t *n, const uint8_t **base,
	       uint64_t *size);

/* For the ring set (rxset.c). */

/* The ring's socket. */
int rxr_fd(const mcr_rx *rx);
/* TPACKET version in use: 2 or 3. */
uint32_t rxr_version(const mcr_rx *rx);
/* Hand the last batch back to the kernel and collect a new one (up to
 * batch_max frames, no syscall). Returns the number of frames. */
uint32_t rxr_take(mcr_rx *rx);
/* Add frames that arrived since to the current batch (no release). */
uint32_t rxr_more(mcr_rx *rx);
/* Count the current batch in the ring's statistics (frames, batches). */
void rxr_finish(mcr_rx *rx);
/* Read and clear the socket's pending error (0 = none). */
int rxr_sock_error(mcr_rx *rx);

#endif /* MCR_RING_RX_H */
