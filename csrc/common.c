/* SPDX-License-Identifier: MIT */
/*
 * common.c — error helper, the live-object counter (the library's only
 * global, atomic), and the ABI introspection calls.
 */
#include "common.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <errno.h>
#include <netinet/in.h>

static int64_t live_objects; /* accessed with __atomic builtins only */

int lib_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
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

void live_inc(void)
{
	__atomic_add_fetch(&live_objects, 1, __ATOMIC_RELAXED);
}

void live_dec(void)
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

#define OFF(type, field) (uint32_t) offsetof(struct type, field)

static const uint32_t off_rx_config[] = {
	OFF(mcr_rx_config, ifindex),	      OFF(mcr_rx_config, tpacket_version),
	OFF(mcr_rx_config, frame_size),	      OFF(mcr_rx_config, frame_count),
	OFF(mcr_rx_config, block_size),	      OFF(mcr_rx_config, block_count),
	OFF(mcr_rx_config, block_timeout_ms), OFF(mcr_rx_config, fanout_id),
	OFF(mcr_rx_config, fanout_mode),      OFF(mcr_rx_config, flags),
	OFF(mcr_rx_config, batch_max),	      OFF(mcr_rx_config, coalesce_us),
	OFF(mcr_rx_config, coalesce_pps),     OFF(mcr_rx_config, wake_fd),
	OFF(mcr_rx_config, mtu_hint),	      OFF(mcr_rx_config, reserved)
};
static const uint32_t off_rx_desc[] = { OFF(mcr_rx_desc, offset),   OFF(mcr_rx_desc, snaplen),
					OFF(mcr_rx_desc, len),	    OFF(mcr_rx_desc, status),
					OFF(mcr_rx_desc, vlan_tci), OFF(mcr_rx_desc, vlan_tpid),
					OFF(mcr_rx_desc, pkttype),  OFF(mcr_rx_desc, tstamp_us) };
static const uint32_t off_rx_stats[] = { OFF(mcr_rx_stats, packets), OFF(mcr_rx_stats, drops),
					 OFF(mcr_rx_stats, freezes), OFF(mcr_rx_stats, polls),
					 OFF(mcr_rx_stats, wakeups), OFF(mcr_rx_stats, frames),
					 OFF(mcr_rx_stats, batches), OFF(mcr_rx_stats, gathers) };
static const uint32_t off_tx_config[] = {
	OFF(mcr_tx_config, ifindex),	 OFF(mcr_tx_config, frame_size),
	OFF(mcr_tx_config, frame_count), OFF(mcr_tx_config, flags),
	OFF(mcr_tx_config, mtu_hint),	 OFF(mcr_tx_config, reserved)
};
static const uint32_t off_template[] = {
	OFF(mcr_template, kind),      OFF(mcr_template, ifindex),  OFF(mcr_template, src_ip),
	OFF(mcr_template, dst_ip),    OFF(mcr_template, src_port), OFF(mcr_template, dst_port),
	OFF(mcr_template, ttl),	      OFF(mcr_template, tos),	   OFF(mcr_template, dst_host_bits),
	OFF(mcr_template, reserved0), OFF(mcr_template, dst_mac),  OFF(mcr_template, src_mac),
	OFF(mcr_template, tx)
};
static const uint32_t off_fwd_desc[] = {
	OFF(mcr_fwd_desc, frame),	OFF(mcr_fwd_desc, l3_offset),
	OFF(mcr_fwd_desc, payload_off), OFF(mcr_fwd_desc, payload_len),
	OFF(mcr_fwd_desc, tmpl),	OFF(mcr_fwd_desc, ttl),
	OFF(mcr_fwd_desc, flags),	OFF(mcr_fwd_desc, reserved)
};
static const uint32_t off_out_counters[] = {
	OFF(mcr_out_counters, packets),	   OFF(mcr_out_counters, bytes),
	OFF(mcr_out_counters, ring_full),  OFF(mcr_out_counters, errors),
	OFF(mcr_out_counters, link_down),  OFF(mcr_out_counters, too_big),
	OFF(mcr_out_counters, fragmented), OFF(mcr_out_counters, queued)
};
static const uint32_t off_iface_info[] = {
	OFF(mcr_iface_info, ifindex),  OFF(mcr_iface_info, mtu), OFF(mcr_iface_info, flags),
	OFF(mcr_iface_info, ipv4),     OFF(mcr_iface_info, mac), OFF(mcr_iface_info, has_mac),
	OFF(mcr_iface_info, link_type)
};
static const uint32_t off_tx_stats[] = {
	OFF(mcr_tx_stats, frames),	OFF(mcr_tx_stats, sent),
	OFF(mcr_tx_stats, kicks),	OFF(mcr_tx_stats, ring_full),
	OFF(mcr_tx_stats, too_big),	OFF(mcr_tx_stats, discarded),
	OFF(mcr_tx_stats, kick_errors), OFF(mcr_tx_stats, link_changes),
	OFF(mcr_tx_stats, mtu_changes), OFF(mcr_tx_stats, queued),
	OFF(mcr_tx_stats, mtu),		OFF(mcr_tx_stats, down),
	OFF(mcr_tx_stats, last_err),	OFF(mcr_tx_stats, link_flags),
	OFF(mcr_tx_stats, stalled_ms),	OFF(mcr_tx_stats, frame_room),
	OFF(mcr_tx_stats, reserved)
};
static const uint32_t off_link_event[] = {
	OFF(mcr_link_event, kind), OFF(mcr_link_event, ifindex), OFF(mcr_link_event, flags),
	OFF(mcr_link_event, mtu),  OFF(mcr_link_event, type),	 OFF(mcr_link_event, reserved),
	OFF(mcr_link_event, name)
};

static const uint32_t off_rxset_stats[] = {
	OFF(mcr_rxset_stats, polls), OFF(mcr_rxset_stats, wakeups), OFF(mcr_rxset_stats, gathers),
	OFF(mcr_rxset_stats, batches), OFF(mcr_rxset_stats, frames)
};

int32_t mcr_abi_offsets(uint32_t which, uint32_t *out, uint32_t max)
{
	const uint32_t *t;
	uint32_t n;
	switch (which) {
	case MCR_ABI_RX_CONFIG:
		t = off_rx_config;
		n = sizeof(off_rx_config) / 4;
		break;
	case MCR_ABI_RX_DESC:
		t = off_rx_desc;
		n = sizeof(off_rx_desc) / 4;
		break;
	case MCR_ABI_RX_STATS:
		t = off_rx_stats;
		n = sizeof(off_rx_stats) / 4;
		break;
	case MCR_ABI_TX_CONFIG:
		t = off_tx_config;
		n = sizeof(off_tx_config) / 4;
		break;
	case MCR_ABI_TEMPLATE:
		t = off_template;
		n = sizeof(off_template) / 4;
		break;
	case MCR_ABI_FWD_DESC:
		t = off_fwd_desc;
		n = sizeof(off_fwd_desc) / 4;
		break;
	case MCR_ABI_OUT_COUNTERS:
		t = off_out_counters;
		n = sizeof(off_out_counters) / 4;
		break;
	case MCR_ABI_IFACE_INFO:
		t = off_iface_info;
		n = sizeof(off_iface_info) / 4;
		break;
	case MCR_ABI_TX_STATS:
		t = off_tx_stats;
		n = sizeof(off_tx_stats) / 4;
		break;
	case MCR_ABI_LINK_EVENT:
		t = off_link_event;
		n = sizeof(off_link_event) / 4;
		break;
	case MCR_ABI_RXSET_STATS:
		t = off_rxset_stats;
		n = sizeof(off_rxset_stats) / 4;
		break;
	default: return -EINVAL;
	}
	for (uint32_t i = 0; out && i < n && i < max; i++)
		out[i] = t[i];
	return (int32_t)n;
}

int32_t mcr_abi_constants(uint32_t *out, uint32_t max)
{
	static const uint32_t v[MCR_ABI_C_COUNT] = {
		[MCR_ABI_C_RX_FANOUT_UNIQUEID] = MCR_RX_FANOUT_UNIQUEID,
		[MCR_ABI_C_RX_NO_FILTER] = MCR_RX_NO_FILTER,
		[MCR_ABI_C_RX_FORCE_BPF_OUTGOING] = MCR_RX_FORCE_BPF_OUTGOING,
		[MCR_ABI_C_TX_QDISC_BYPASS] = MCR_TX_QDISC_BYPASS,
		[MCR_ABI_C_TMPL_UNUSED] = MCR_TMPL_UNUSED,
		[MCR_ABI_C_TMPL_RING] = MCR_TMPL_RING,
		[MCR_ABI_C_TMPL_SOCKET] = MCR_TMPL_SOCKET,
		[MCR_ABI_C_FANOUT_NONE] = MCR_FANOUT_NONE,
		[MCR_ABI_C_FANOUT_HASH] = MCR_FANOUT_HASH,
		[MCR_ABI_C_FANOUT_LB] = MCR_FANOUT_LB,
		[MCR_ABI_C_FANOUT_CPU] = MCR_FANOUT_CPU,
		[MCR_ABI_C_FANOUT_ROLLOVER] = MCR_FANOUT_ROLLOVER,
		[MCR_ABI_C_FANOUT_RND] = MCR_FANOUT_RND,
		[MCR_ABI_C_FANOUT_QM] = MCR_FANOUT_QM,
		[MCR_ABI_C_OWN_TX_FANOUT_FLAG] = MCR_OWN_TX_FANOUT_FLAG,
		[MCR_ABI_C_OWN_TX_BPF] = MCR_OWN_TX_BPF,
		[MCR_ABI_C_OWN_TX_SOCKOPT] = MCR_OWN_TX_SOCKOPT,
		[MCR_ABI_C_LINK_NEW] = MCR_LINK_NEW,
		[MCR_ABI_C_LINK_DEL] = MCR_LINK_DEL,
		[MCR_ABI_C_LINK_RESYNC] = MCR_LINK_RESYNC,
		[MCR_ABI_C_LINK_DUMP_DONE] = MCR_LINK_DUMP_DONE,
		[MCR_ABI_C_LINK_ADDR] = MCR_LINK_ADDR,
		[MCR_ABI_C_RX_L3] = MCR_RX_L3,
		[MCR_ABI_C_RX_PROMISC] = MCR_RX_PROMISC,
		[MCR_ABI_C_RX_IPV6] = MCR_RX_IPV6,
		[MCR_ABI_C_FWD_IN_IPV6] = MCR_FWD_IN_IPV6,
	};
	for (uint32_t i = 0; out && i < MCR_ABI_C_COUNT && i < max; i++)
		out[i] = v[i];
	return MCR_ABI_C_COUNT;
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
	case MCR_ABI_RXSET_STATS: return (int32_t)sizeof(struct mcr_rxset_stats);
	default: return -EINVAL;
	}
}

int membership_socket(int family, const char *what, char *err, size_t errlen)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lib_err(err, errlen, errno, "socket(%s, SOCK_DGRAM) for %s",
			       family == AF_INET6 ? "AF_INET6" : "AF_INET", what);
	return fd;
}
