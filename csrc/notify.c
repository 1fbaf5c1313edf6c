/* SPDX-License-Identifier: MIT */
/*
 * notify.c — sd_notify(3) without libsystemd: one datagram with the state
 * text to the AF_UNIX socket named by $NOTIFY_SOCKET ("/path" or "@abstract").
 * Done in C because a Unix datagram socket needs --unstable-net from Deno.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int mcr_sd_notify(const char *state, char *err, size_t errlen)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0; /* not started by systemd with Type=notify: nothing to do */
	if (!state || !*state)
		return lib_err(err, errlen, EINVAL, "mcr_sd_notify: empty state");
	if (path[0] != '/' && path[0] != '@')
		return lib_err(err, errlen, EAFNOSUPPORT,
			       "NOTIFY_SOCKET=%s: only /path and @abstract sockets are supported",
			       path);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return lib_err(err, errlen, ENAMETOOLONG, "NOTIFY_SOCKET=%s", path);
	memcpy(sa.sun_path, path, len);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace: no trailing NUL counted */
	else
		salen += 1; /* include the terminating NUL of a path */

	/* systemd >= 253 (Type=notify-reload) wants RELOADING=1 stamped with
	 * MONOTONIC_USEC; older versions ignore the extra field. */
	char msg[4096];
	const char *body = state;
	if (strstr(state, "RELOADING=1") && !strstr(state, "MONOTONIC_USEC=")) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int k = snprintf(msg, sizeof(msg), "%s\nMONOTONIC_USEC=%llu", state,
				 (unsigned long long)ts.tv_sec * 1000000ull +
					 (unsigned long long)ts.tv_nsec / 1000ull);
		if (k < 0 || (size_t)k >= sizeof(msg))
			return lib_err(err, errlen, EMSGSIZE, "mcr_sd_notify: state too long");
		body = msg;
	}

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lib_err(err, errlen, errno, "NOTIFY_SOCKET: socket");
	size_t n = strlen(body);
	ssize_t w = sendto(fd, body, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	int saved = errno;
	close(fd);
	if (w < 0)
		return lib_err(err, errlen, saved, "sd_notify to %s", path);
	if ((size_t)w != n)
		return lib_err(err, errlen, EMSGSIZE, "sd_notify to %s: short write", path);
	return 1;
}
