/* SPDX-License-Identifier: MIT */
/*
 * gather.h — adaptive gathering, shared by one RX ring (ring_rx.c) and a
 * set of them (rxset.c).
 *
 * An estimate of the arrival rate (an EWMA over 1 ms samples) decides
 * whether waiting pays: while the rate is above coalesce_pps and fewer
 * frames than the target are at hand, sleep for the time the target takes
 * to arrive at that rate (at most coalesce_us) and collect again — larger
 * batches as the rate rises, an immediate wake-up when traffic is sparse.
 */
#ifndef MCR_GATHER_H
#define MCR_GATHER_H

#include <stdint.h>

/* Frames a gather waits for. */
#define GATHER_TARGET 32u

struct gather {
	uint32_t coalesce_us;  /* longest gather; UINT32_MAX = never gather */
	uint32_t coalesce_pps; /* rate above which gathering starts */
	uint64_t win_start, win_frames;
	double rate; /* frames per second */
	int slack_set;
};

/* Set up with the caller's budget (0 = the defaults: 50 µs, 20 000 pps). */
void gather_init(struct gather *g, uint32_t coalesce_us, uint32_t coalesce_pps);
/* Once per waiting thread: 1 µs timer slack, so that short sleeps are short. */
void gather_thread(struct gather *g);
/* n frames were collected now: update the rate estimate. */
void gather_seen(struct gather *g, uint64_t n);
/* With `have` frames at hand: sleep for the rest of `target` when the rate
 * says it comes soon. Returns 1 when it slept (collect again, then count
 * what came with gather_more), else 0. */
int gather_sleep(const struct gather *g, uint64_t have, uint64_t target);

/* Frames that came during a gather count in the current rate sample. */
static inline void gather_more(struct gather *g, uint64_t n)
{
	g->win_frames += n;
}

#endif /* MCR_GATHER_H */
