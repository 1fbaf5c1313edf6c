/* SPDX-License-Identifier: MIT */
/*
 * fdlimit.c — the process's file-descriptor budget: RLIMIT_NOFILE and how
 * many descriptors are open now, and raising the soft limit. The relay sizes
 * its need from its configuration (rings, sockets, IGMP memberships) and
 * raises the soft limit to the hard one when the need is above it
 * (src/relay/fd_budget.ts).
 */
#include "common.h"

#include <dirent.h>
#include <sys/resource.h>

/* Descriptors open in this process (the directory's own excepted), or -1. */
static int64_t count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0;
}

static uint64_t limit_value(rlim_t v)
{
	return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

int mcr_fd_limits(uint64_t *out3, char *err, size_t errlen)
{
	if (!out3)
		return lib_err(err, errlen, EINVAL, "mcr_fd_limits: NULL out");
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return lib_err(err, errlen, errno, "getrlimit(RLIMIT_NOFILE)");
	int64_t open_now = count_open_fds();
	out3[MCR_FD_SOFT] = limit_value(rl.rlim_cur);
	out3[MCR_FD_HARD] = limit_value(rl.rlim_max);
	out3[MCR_FD_OPEN] = open_now < 0 ? UINT64_MAX : (uint64_t)open_now;
	return 0;
}

int mcr_fd_set_soft_limit(uint64_t soft, char *err, size_t errlen)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return lib_err(err, errlen, errno, "getrlimit(RLIMIT_NOFILE)");
	rl.rlim_cur = soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)soft;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return lib_err(err, errlen, errno, "setrlimit(RLIMIT_NOFILE) soft %llu, hard %llu",
			       (unsigned long long)soft,
			       (unsigned long long)limit_value(rl.rlim_max));
	return 0;
}
