/* SPDX-License-Identifier: MIT */
/*
 * test_gather.c — the adaptive gather policy (gather.h): no wait at or below
 * coalesce_pps, a batch of (rate / coalesce_pps)^2 frames above it, bounded by
 * the caller's room and by coalesce_us, never with gathering off.
 */
#include "t.h"
#include "gather.h"

static uint64_t wait_at(struct gather *g, double rate, uint64_t have, uint64_t max)
{
	g->rate = rate;
	return gather_wait_ns(g, have, max);
}

int main(void)
{
	struct gather g;
	gather_init(&g, 0, 0);
	CHECK_EQ(g.coalesce_us, GATHER_DEFAULT_US);
	CHECK_EQ(g.coalesce_pps, GATHER_DEFAULT_PPS);

	/* sparse: every frame wakes the worker at once */
	CHECK_EQ(wait_at(&g, 0, 0, GATHER_MAX), 0);
	CHECK_EQ(wait_at(&g, 10000, 1, GATHER_MAX), 0);
	CHECK_EQ(wait_at(&g, 20000, 1, GATHER_MAX), 0);

	/* 40 kpps = 2 r0: a batch of 4, three more to come = 75 µs */
	CHECK_EQ(wait_at(&g, 40000, 1, GATHER_MAX), 75000);
	CHECK_EQ(wait_at(&g, 40000, 4, GATHER_MAX), 0);
	/* 100 kpps: a batch of 25 = 250 µs from nothing */
	CHECK_EQ(wait_at(&g, 100000, 0, GATHER_MAX), 250000);
	CHECK_EQ(wait_at(&g, 100000, 20, GATHER_MAX), 50000);
	CHECK_EQ(wait_at(&g, 100000, 25, GATHER_MAX), 0);

	/* the gather time grows with the rate (r / r0^2) until a bound holds */
	uint64_t prev = 0;
	for (double r = 25000; r <= 100000; r += 5000) {
		uint64_t ns = wait_at(&g, r, 0, GATHER_MAX);
		CHECK(ns > prev);
		prev = ns;
	}
	/* bounded by coalesce_us (250 µs by default) ... */
	CHECK_EQ(wait_at(&g, 200000, 0, GATHER_MAX), 250000);
	CHECK_EQ(wait_at(&g, 1000000, 0, GATHER_MAX), 250000);
	/* ... and by the room the caller has */
	CHECK_EQ(wait_at(&g, 100000, 0, 10), 100000);
	gather_init(&g, 1000, 0);
	CHECK_EQ(wait_at(&g, 1000000, 0, GATHER_MAX), 256000); /* 256 frames at 1 Mpps */
	CHECK_EQ(wait_at(&g, 200000, 0, GATHER_MAX), 500000);  /* 100 frames at 200 kpps */

	/* an operator's budget */
	gather_init(&g, 100, 10000);
	CHECK_EQ(wait_at(&g, 10000, 0, GATHER_MAX), 0);
	CHECK_EQ(wait_at(&g, 20000, 0, GATHER_MAX), 100000); /* 4 frames = 200 µs: capped */
	/* gathering off */
	gather_init(&g, UINT32_MAX, 0);
	CHECK_EQ(wait_at(&g, 1000000, 0, GATHER_MAX), 0);
	return t_done("gather");
}
