/* SPDX-License-Identifier: MIT */
/*
 * ring_rx.h — private accessors of the RX ring used by fwd.c.
 */
#ifndef MCR_RING_RX_H
#define MCR_RING_RX_H

#include "common.h"

/* The current batch (descriptors and count) and the ring mapping. */
void rxr_batch(const mcr_rx *rx, const struct mcr_rx_desc **desc, uint32_t *n, const uint8_t **base,
	       uint64_t *size);

#endif /* MCR_RING_RX_H */
