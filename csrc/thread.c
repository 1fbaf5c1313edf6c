/* SPDX-License-Identifier: MIT */
/*
 * thread.c — per-thread settings for the worker threads that call libmcr.
 */
#include "common.h"

#include <errno.h>
#include <sched.h>

int mcr_pin_thread(uint32_t cpu, char *err, size_t errlen)
{
	if (cpu >= CPU_SETSIZE)
		return lib_err(err, errlen, EINVAL, "cpu %u out of range", cpu);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* pid 0 = the calling thread */
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return lib_err(err, errlen, errno, "sched_setaffinity(cpu %u)", cpu);
	return 0;
}
