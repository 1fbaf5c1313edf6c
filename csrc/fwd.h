/* SPDX-License-Identifier: MIT */
/*
 * fwd.h — private interface of the forwarder: the submit core that works on
 * any batch (a real RX ring or a synthetic one in the tests).
 */
#ifndef MCR_FWD_H
#define MCR_FWD_H

#include "common.h"

/*
 * Validate and send n forward descriptors against a batch of nbatch received
 * frames whose descriptors are batch[] and whose bytes live in
 * base[0 .. size). Same semantics as mcr_fwd_submit().
 */
int fwd_submit_batch(mcr_fwd *fwd, const struct mcr_rx_desc *batch, uint32_t nbatch,
		     const uint8_t *base, uint64_t size, uint32_t n);

#endif /* MCR_FWD_H */
