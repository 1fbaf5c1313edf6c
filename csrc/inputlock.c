/* SPDX-License-Identifier: MIT */
/*
 * inputlock.c — one relay per input interface. Two processes capturing the
 * same interface would each receive (and forward) every datagram, so the
 * relay takes a lock per input interface: an abstract Unix socket bound to
 * "mcr/rx/<ifindex>". Abstract socket names belong to the network namespace,
 * as interfaces do; the kernel frees the name when the holder exits or
 * crashes, so a stale lock cannot outlive its relay.
 */
#include "common.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct mcr_input_lock {
	int fd;
};

int mcr_input_lock_take(uint32_t ifindex, mcr_input_lock **out, char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_input_lock_take: NULL out");
	*out = NULL;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* abstract: sun_path[0] = '\0', the name follows (not NUL-terminated) */
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "mcr/rx/%u", ifindex);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lib_err(err, errlen, errno, "socket(AF_UNIX) for the input lock");
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE)
			return lib_err(err, errlen, e,
				       "interface index %u is already captured by another mcr "
				       "process in this network namespace (lock @mcr/rx/%u)",
				       ifindex, ifindex);
		return lib_err(err, errlen, e, "bind @mcr/rx/%u", ifindex);
	}
	struct mcr_input_lock *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return lib_err(err, errlen, ENOMEM, "mcr_input_lock_take: calloc");
	}
	l->fd = fd;
	live_inc();
	*out = l;
	return 0;
}

int mcr_input_lock_release(mcr_input_lock *l)
{
	if (!l)
		return 0;
	close(l->fd);
	free(l);
	live_dec();
	return 0;
}
