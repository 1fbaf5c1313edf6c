/* SPDX-License-Identifier: MIT */
/*
 * gather.h — adaptive gathering, shared by one RX ring (ring_rx.c) and a
 * set of them (rxset.c).
 *
 * An estimate of the arrival rate r (an EWMA over 1 ms samples) decides
 * whether waiting pays. At or below coalesce_pps (r0) every frame wakes the
 * worker at once. Above it the worker gathers a batch of (r / r0)^2 frames:
 * while fewer are at hand, it sleeps for the time the rest takes to arrive at
 * that rate (at most coalesce_us) and collects again. The gather grows with
 * the rate — r / r0^2 seconds: 50 µs at 20 kpps, 125 µs at 50 kpps, 250 µs
 * (the default coalesce_us) from 100 kpps — so the wake-ups per second fall
 * as the rate rises (r0^2 / r: 4000 per second at 100 kpps instead of
 * 100 000), which is where a relay's CPU per packet goes; sparse traffic
 * never waits.
 */
#ifndef MCR_GATHER_H
#define MCR_GATHER_H

#include <stdint.h>

/* Most frames a gather waits for. */
#define GATHER_MAX	   256u
/* Defaults: the longest gather (µs) and the rate above which gathering starts (pps). */
#define GATHER_DEFAULT_US  250u
#define GATHER_DEFAULT_PPS 20000u

struct gather {
	uint32_t coalesce_us;  /* longest gather; UINT32_MAX = never gather */
	uint32_t coalesce_pps; /* rate above which gathering starts */
	uint64_t win_start, win_frames;
	double rate; /* frames per second */
	int slack_set;
};

/* Set up with the caller's budget (0 = the defaults: 250 µs, 20 000 pps). */
void gather_init(struct gather *g, uint32_t coalesce_us, uint32_t coalesce_pps);
/* Once per waiting thread: 1 µs timer slack, so that short sleeps are short. */
void gather_thread(struct gather *g);
/* n frames were collected now: update the rate estimate. */
void gather_seen(struct gather *g, uint64_t n);
/* With `have` frames at hand and room for at most `max`: how long to sleep
 * for the rest of the batch the rate calls for, in ns (0: do not wait). Pure. */
uint64_t gather_wait_ns(const struct gather *g, uint64_t have, uint64_t max);
/* Sleep for gather_wait_ns when it is not 0. Returns 1 when it slept (collect
 * again, then count what came with gather_more), else 0. */
int gather_sleep(const struct gather *g, uint64_t have, uint64_t max);

/* Frames that came during a gather count in the current rate sample. */
static inline void gather_more(struct gather *g, uint64_t n)
{
	g->win_frames += n;
}

#endif /* MCR_GATHER_H */
