/* SPDX-License-Identifier: MIT */
/*
 * gather.c — adaptive gathering (see gather.h).
 */
#include "gather.h"

#include <sys/prctl.h>
#include <time.h>

#define RATE_WINDOW_NS 1000000ull /* rate sample period */
#define RATE_TAU_NS    8000000.0  /* EWMA time constant */

void gather_init(struct gather *g, uint32_t coalesce_us, uint32_t coalesce_pps)
{
	*g = (struct gather){ .coalesce_us = coalesce_us ? coalesce_us : GATHER_DEFAULT_US,
			      .coalesce_pps = coalesce_pps ? coalesce_pps : GATHER_DEFAULT_PPS };
}

void gather_thread(struct gather *g)
{
	if (g->slack_set)
		return;
	/* timer slack is per thread; set it for the waiting thread */
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	g->slack_set = 1;
}

void gather_seen(struct gather *g, uint64_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (!g->win_start) {
		g->win_start = now;
		g->win_frames = 0;
	}
	g->win_frames += n;
	uint64_t el = now - g->win_start;
	if (el < RATE_WINDOW_NS)
		return;
	double inst = (double)g->win_frames * 1e9 / (double)el;
	double w = (double)el / RATE_TAU_NS;
	if (w > 1.0)
		w = 1.0;
	g->rate += (inst - g->rate) * w;
	g->win_start = now;
	g->win_frames = 0;
}

uint64_t gather_wait_ns(const struct gather *g, uint64_t have, uint64_t max)
{
	if (g->coalesce_us == UINT32_MAX || g->rate <= (double)g->coalesce_pps)
		return 0;
	double x = g->rate / (double)g->coalesce_pps;
	double target = x * x;
	if (target > (double)max)
		target = (double)max;
	if ((double)have >= target)
		return 0;
	double ns = (target - (double)have) * 1e9 / g->rate;
	double cap = (double)g->coalesce_us * 1000.0;
	return (uint64_t)(ns > cap ? cap : ns);
}

int gather_sleep(const struct gather *g, uint64_t have, uint64_t max)
{
	uint64_t ns = gather_wait_ns(g, have, max);
	if (!ns)
		return 0;
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };
	(void)clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	return 1;
}
