/* SPDX-License-Identifier: MIT */
/*
 * common.c — error helper, the live-object counter (the library's only
 * global, atomic), and the ABI introspection calls.
 */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int64_t live_objects; /* accessed with __atomic builtins only */

int mcr_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
	if (errnum <= 0)
		errnum = EIO;
	if (err && errlen > 0) {
		char ebuf[128];
		const char *es = strerror_r(errnum, ebuf, sizeof(ebuf));
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < errlen)
			snprintf(err + n, errlen - (size_t)n, ": %s", es);
	}
	return -errnum;
}

void mcr_live_inc(void)
{
	__atomic_add_fetch(&live_objects, 1, __ATOMIC_RELAXED);
}

void mcr_live_dec(void)
{
	__atomic_sub_fetch(&live_objects, 1, __ATOMIC_RELAXED);
}

int64_t mcr_debug_live_objects(void)
{
	return __atomic_load_n(&live_objects, __ATOMIC_RELAXED);
}

uint32_t mcr_abi_version(void)
{
	return MCR_ABI_VERSION;
}

int32_t mcr_abi_sizeof(uint32_t which)
{
	switch (which) {
	case MCR_ABI_RX_CONFIG: return (int32_t)sizeof(struct mcr_rx_config);
	case MCR_ABI_RX_DESC: return (int32_t)sizeof(struct mcr_rx_desc);
	case MCR_ABI_RX_STATS: return (int32_t)sizeof(struct mcr_rx_stats);
	case MCR_ABI_TX_CONFIG: return (int32_t)sizeof(struct mcr_tx_config);
	case MCR_ABI_TEMPLATE: return (int32_t)sizeof(struct mcr_template);
	case MCR_ABI_FWD_DESC: return (int32_t)sizeof(struct mcr_fwd_desc);
	case MCR_ABI_OUT_COUNTERS: return (int32_t)sizeof(struct mcr_out_counters);
	case MCR_ABI_IFACE_INFO: return (int32_t)sizeof(struct mcr_iface_info);
	case MCR_ABI_TX_STATS: return (int32_t)sizeof(struct mcr_tx_stats);
	case MCR_ABI_LINK_EVENT: return (int32_t)sizeof(struct mcr_link_event);
	default: return -EINVAL;
	}
}
