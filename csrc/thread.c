/* SPDX-License-Identifier: MIT */
/*
 * thread.c — per-thread settings for the worker threads that call libmcr.
 */
#include "common.h"

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

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

int mcr_thread_nice(int32_t nice, char *err, size_t errlen)
{
	if (nice < -20 || nice > 19)
		return lib_err(err, errlen, EINVAL, "nice %d out of range (-20..19)", nice);
	/* on Linux a thread id names one thread for PRIO_PROCESS: only the caller changes */
	id_t tid = (id_t)syscall(SYS_gettid);
	if (setpriority(PRIO_PROCESS, tid, nice) < 0)
		return lib_err(err, errlen, errno, "setpriority(nice %d)", nice);
	return 0;
}

int mcr_thread_get_nice(int32_t *out, char *err, size_t errlen)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	errno = 0; /* -1 is a nice value as well as the error return */
	int nice = getpriority(PRIO_PROCESS, tid);
	if (nice == -1 && errno != 0)
		return lib_err(err, errlen, errno, "getpriority");
	*out = nice;
	return 0;
}
