/* SPDX-License-Identifier: MIT */
/*
 * waker.c — an eventfd another thread writes to cut a blocking mcr_rx_poll()
 * short. mcr_rx_poll() reads (clears) it when it fires.
 */
#include "common.h"

#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct mcr_waker {
	int fd;
};

int mcr_waker_open(mcr_waker **out, char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_waker_open: NULL out");
	*out = NULL;
	mcr_waker *w = calloc(1, sizeof(*w));
	if (!w)
		return lib_err(err, errlen, ENOMEM, "mcr_waker_open: calloc");
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->fd < 0) {
		int rc = lib_err(err, errlen, errno, "eventfd");
		free(w);
		return rc;
	}
	live_inc();
	*out = w;
	return 0;
}

int mcr_waker_fd(const mcr_waker *w)
{
	return w ? w->fd : -EINVAL;
}

int mcr_waker_wake(mcr_waker *w)
{
	if (!w)
		return -EINVAL;
	uint64_t one = 1;
	if (write(w->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno; /* EAGAIN: counter saturated, a wake is already pending */
	return 0;
}

int mcr_waker_close(mcr_waker *w)
{
	if (!w)
		return 0;
	close(w->fd);
	free(w);
	live_dec();
	return 0;
}
