/* SPDX-License-Identifier: MIT */
/*
 * common.h — private helpers shared by every libmcr source file: the public
 * header (with default visibility, everything else is hidden), error
 * formatting (lib_err), the live-object counter (live_inc/live_dec) and small
 * utilities. Internal names carry no mcr_ prefix: that prefix is the public API.
 */
#ifndef MCR_COMMON_H
#define MCR_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(default)
#include "mcr.h"
#pragma GCC visibility pop

#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/*
 * Format "<fmt>: <strerror(errnum)>" into err (when err != NULL and
 * errlen > 0) and return -errnum. errnum is a positive errno value.
 */
int lib_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A datagram socket of `family` (AF_INET, AF_INET6) for group memberships
 * (igmp.c, mld.c): the descriptor, or -errno with "socket(...) for <what>"
 * in err.
 */
int membership_socket(int family, const char *what, char *err, size_t errlen);

/* Live-object accounting (every open +1, every close -1). */
void live_inc(void);
void live_dec(void);

/* Interface helpers (iface.c). name must hold IFNAMSIZ bytes. */
int ifname_of(uint32_t ifindex, char *name, char *err, size_t errlen);
int ifmtu_of(uint32_t ifindex, uint32_t *mtu, char *err, size_t errlen);

/* Smallest power of two >= v (v <= 2^31). */
static inline uint32_t pow2_ceil(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

#define MCR_UNUSED(x) ((void)(x))

#endif /* MCR_COMMON_H */
