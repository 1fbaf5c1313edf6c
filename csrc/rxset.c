/* SPDX-License-Identifier: MIT */
/*
 * rxset.c — one blocking wait over many RX rings (a data-path worker serves
 * every input interface it is given from one thread).
 *
 * A wait first collects from the rings that had frames last time, without a
 * syscall (under load the next frames are usually there already). Rings
 * that were idle are found through one epoll instance over every ring's
 * socket plus the waker: when nothing was collected the worker blocks there;
 * otherwise it asks epoll once without blocking (skipped when every ring was
 * already looked at), so a busy ring cannot starve the quiet ones.
 *
 * Coalescing (gather.h) works over the whole set, as ring_rx.c does for one ring: while
 * the estimated arrival rate (all rings) is above coalesce_pps and the
 * frames collected are fewer than the batch that rate calls for, sleep for
 * the time the rest takes to arrive (at most coalesce_us) and collect again —
 * larger gathers as the rate rises, an immediate wake-up when traffic is
 * sparse.
 *
 * The ready list holds (tag, frames) pairs; frames < 0 is -errno for a ring
 * whose socket reported an error (ENETDOWN: its link went down; the ring
 * keeps working when it comes back).
 */
#include "ring_rx.h"
#include "gather.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define WAKE_TAG UINT32_MAX /* epoll data of the waker */
#define MAX_TAGS (1u << 16)

struct mcr_rxset {
	int epfd;
	int wake_fd;
	uint32_t max_tags;
	mcr_rx **by_tag; /* max_tags */
	uint32_t nrings;
	uint32_t *hot; /* tags that had frames in the last wait */
	uint32_t nhot;
	uint8_t *in_ready; /* max_tags: 1 while the tag is in this wait's ready list */
	struct epoll_event *ev;
	uint32_t evcap;
	int32_t *ready;	      /* (tag, frames) pairs, max_tags of them */
	struct gather gather; /* coalescing over the whole set */
	struct mcr_rxset_stats st;
};

static void set_free(struct mcr_rxset *s)
{
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->by_tag);
	free(s->hot);
	free(s->in_ready);
	free(s->ev);
	free(s->ready);
	free(s);
}

int mcr_rxset_open(uint32_t max_tags, int32_t wake_fd, uint32_t coalesce_us, uint32_t coalesce_pps,
		   mcr_rxset **out, char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_rxset_open: NULL out");
	*out = NULL;
	if (!max_tags || max_tags > MAX_TAGS)
		return lib_err(err, errlen, EINVAL, "mcr_rxset_open: max_tags %u (1..%u)", max_tags,
			       MAX_TAGS);
	struct mcr_rxset *s = calloc(1, sizeof(*s));
	if (!s)
		return lib_err(err, errlen, ENOMEM, "mcr_rxset_open: calloc");
	s->epfd = -1;
	s->wake_fd = wake_fd;
	s->max_tags = max_tags;
	gather_init(&s->gather, coalesce_us, coalesce_pps);
	s->evcap = max_tags + 1u;
	s->by_tag = calloc(max_tags, sizeof(*s->by_tag));
	s->hot = calloc(max_tags, sizeof(*s->hot));
	s->in_ready = calloc(max_tags, 1);
	s->ev = calloc(s->evcap, sizeof(*s->ev));
	s->ready = calloc((size_t)max_tags * 2u, sizeof(*s->ready));
	if (!s->by_tag || !s->hot || !s->in_ready || !s->ev || !s->ready) {
		set_free(s);
		return lib_err(err, errlen, ENOMEM, "mcr_rxset_open: %u tags", max_tags);
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		int rc = lib_err(err, errlen, errno, "epoll_create1 for the RX ring set");
		set_free(s);
		return rc;
	}
	if (wake_fd >= 0) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = WAKE_TAG };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, wake_fd, &e) < 0) {
			int rc = lib_err(err, errlen, errno, "epoll_ctl ADD waker fd %d", wake_fd);
			set_free(s);
			return rc;
		}
	}
	live_inc();
	*out = s;
	return 0;
}

int mcr_rxset_add(mcr_rxset *s, mcr_rx *rx, uint32_t tag, char *err, size_t errlen)
{
	if (!s || !rx)
		return lib_err(err, errlen, EINVAL, "mcr_rxset_add: NULL argument");
	if (tag >= s->max_tags)
		return lib_err(err, errlen, EINVAL, "mcr_rxset_add: tag %u >= max_tags %u", tag,
			       s->max_tags);
	if (s->by_tag[tag])
		return lib_err(err, errlen, EEXIST, "mcr_rxset_add: tag %u is in use", tag);
	struct epoll_event e = { .events = EPOLLIN | EPOLLERR, .data.u32 = tag };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, rxr_fd(rx), &e) < 0)
		return lib_err(err, errlen, errno, "epoll_ctl ADD RX ring (tag %u)", tag);
	s->by_tag[tag] = rx;
	s->nrings++;
	/* look at it without waiting on the first pass: frames may be there already */
	s->hot[s->nhot++] = tag;
	return 0;
}

int mcr_rxset_remove(mcr_rxset *s, uint32_t tag)
{
	if (!s || tag >= s->max_tags)
		return -EINVAL;
	mcr_rx *rx = s->by_tag[tag];
	if (!rx)
		return -ENOENT;
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, rxr_fd(rx), NULL);
	s->by_tag[tag] = NULL;
	s->nrings--;
	for (uint32_t i = 0; i < s->nhot; i++) {
		if (s->hot[i] == tag) {
			s->hot[i] = s->hot[--s->nhot];
			break;
		}
	}
	return 0;
}

static void push_ready(struct mcr_rxset *s, uint32_t *nready, uint32_t tag, int32_t v)
{
	s->ready[*nready * 2u] = (int32_t)tag;
	s->ready[*nready * 2u + 1u] = v;
	s->in_ready[tag] = 1;
	(*nready)++;
}

/* Ask epoll which rings are ready (block up to timeout_ms) and collect from
 * those not yet in the ready list. Returns 1 when the waker fired, else 0,
 * or -errno. */
static int wait_epoll(struct mcr_rxset *s, int32_t timeout_ms, uint32_t *nready, uint64_t *total)
{
	if (timeout_ms != 0)
		s->st.polls++;
	int r = epoll_wait(s->epfd, s->ev, (int)s->evcap, timeout_ms < 0 ? -1 : timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	int woken = 0;
	for (int i = 0; i < r; i++) {
		uint32_t tag = s->ev[i].data.u32;
		if (tag == WAKE_TAG) {
			uint64_t v;
			if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return -errno;
			woken = 1;
			continue;
		}
		mcr_rx *rx = tag < s->max_tags ? s->by_tag[tag] : NULL;
		if (!rx || s->in_ready[tag])
			continue;
		if (s->ev[i].events & EPOLLERR) {
			int e = rxr_sock_error(rx);
			if (e) {
				push_ready(s, nready, tag, -e);
				continue;
			}
		}
		uint32_t n = rxr_take(rx);
		if (n) {
			push_ready(s, nready, tag, (int32_t)n);
			*total += n;
		}
	}
	return woken;
}

int mcr_rxset_wait(mcr_rxset *s, int32_t timeout_ms)
{
	if (!s)
		return -EINVAL;
	gather_thread(&s->gather);
	uint32_t nready = 0;
	uint64_t total = 0;
	int r;
	/* 1. rings that had frames last time: no syscall */
	for (uint32_t i = 0; i < s->nhot; i++) {
		uint32_t tag = s->hot[i];
		uint32_t n = rxr_take(s->by_tag[tag]);
		if (n) {
			push_ready(s, &nready, tag, (int32_t)n);
			total += n;
		}
	}
	/* 2. the others (or block when nothing was there) */
	int woken = 0;
	if (nready == 0 || s->nhot < s->nrings) {
		r = wait_epoll(s, nready ? 0 : timeout_ms, &nready, &total);
		if (r < 0)
			goto fail;
		woken = r;
		if (nready && timeout_ms != 0 && total)
			s->st.wakeups++;
	}
	/* 3. gather a bigger batch when the rate is high */
	if (total) {
		gather_seen(&s->gather, total);
		if (!woken && gather_sleep(&s->gather, total, GATHER_MAX)) {
			s->st.gathers++;
			uint64_t before = total;
			for (uint32_t k = 0; k < nready; k++) {
				int32_t *e = &s->ready[k * 2u];
				if (e[1] <= 0)
					continue;
				uint32_t n = rxr_more(s->by_tag[e[0]]);
				total += n - (uint32_t)e[1];
				e[1] = (int32_t)n;
			}
			if (nready < s->nrings) {
				r = wait_epoll(s, 0, &nready, &total);
				if (r < 0)
					goto fail;
			}
			gather_more(&s->gather, total - before);
		}
	}
	/* the rings that had frames are looked at first next time */
	s->nhot = 0;
	for (uint32_t k = 0; k < nready; k++) {
		uint32_t tag = (uint32_t)s->ready[k * 2u];
		s->in_ready[tag] = 0;
		if (s->ready[k * 2u + 1u] > 0) {
			s->hot[s->nhot++] = tag;
			rxr_finish(s->by_tag[tag]);
			s->st.batches++;
		}
	}
	s->st.frames += total;
	return (int)nready;
fail:
	for (uint32_t k = 0; k < nready; k++)
		s->in_ready[(uint32_t)s->ready[k * 2u]] = 0;
	return r;
}

int32_t *mcr_rxset_ready(mcr_rxset *s)
{
	return s ? s->ready : NULL;
}

int mcr_rxset_stats(const mcr_rxset *s, struct mcr_rxset_stats *out)
{
	if (!s || !out)
		return -EINVAL;
	*out = s->st;
	return 0;
}

int mcr_rxset_close(mcr_rxset *s)
{
	if (!s)
		return 0;
	set_free(s);
	live_dec();
	return 0;
}
