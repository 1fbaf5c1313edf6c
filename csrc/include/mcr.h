/* SPDX-License-Identifier: MIT */
/*
 * libmcr — the packet I/O half of mcr, a userspace multicast relay.
 *
 * The library is called from Deno through FFI, so its ABI is deliberately
 * plain: opaque handles, structs made only of fixed-width integers (their
 * sizes are checked from TypeScript through mcr_abi_sizeof()), and every call
 * returns 0, a count, or -errno. Error text is written into a caller-owned
 * buffer (NUL-terminated, truncated to errlen). Nothing prints, nothing exits,
 * there are no mutable globals except the atomic live-object counter used by
 * tests to prove that nothing leaks.
 *
 * Data path, per worker thread:
 *
 *   mcr_rx_poll(rx, timeout)  -> n frames ready; descriptors in mcr_rx_desc()
 *   ... TS parses frames in the ring mapping (mcr_rx_ring_base/size),
 *       matches rules, writes forward descriptors into mcr_fwd_desc() ...
 *   mcr_fwd_submit(fwd, rx, m) -> builds Ethernet/IPv4|IPv6/UDP frames into the
 *                                 TX rings, one sendto() kick per ring
 *   mcr_rx_release(rx)         -> hands the n frames back to the kernel
 *
 * Memory TS reads or writes (ring mapping, descriptor arrays, counters) is
 * owned by C and stays at a fixed address for the life of the handle, so TS
 * creates its typed-array views once.
 */
#ifndef MCR_H
#define MCR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCR_ABI_VERSION 11u
#define MCR_ERRBUF_MIN	64u

/* ------------------------------------------------------------------ misc */

/** ABI version of the library (MCR_ABI_VERSION). */
uint32_t mcr_abi_version(void);

/** Number of live handles (rx, tx, fwd, igmp socket, waker, ...) across the process. */
int64_t mcr_debug_live_objects(void);

/* sizeof() of ABI structs, so TS can check its layout. */
enum mcr_abi_struct {
	MCR_ABI_RX_CONFIG = 1,
	MCR_ABI_RX_DESC = 2,
	MCR_ABI_RX_STATS = 3,
	MCR_ABI_TX_CONFIG = 4,
	MCR_ABI_TEMPLATE = 5,
	MCR_ABI_FWD_DESC = 6,
	MCR_ABI_OUT_COUNTERS = 7,
	MCR_ABI_IFACE_INFO = 8,
	MCR_ABI_TX_STATS = 9,
	MCR_ABI_LINK_EVENT = 10,
	MCR_ABI_RXSET_STATS = 11,
};
/** sizeof the given struct, or -EINVAL. */
int32_t mcr_abi_sizeof(uint32_t which);
/**
 * offsetof every field of the given struct, in declaration order, into
 * out (at most max entries). Returns the number of fields, or -EINVAL. The
 * TS bindings check their named offsets against it when they load.
 */
int32_t mcr_abi_offsets(uint32_t which, uint32_t *out, uint32_t max);

/* Constants the bindings use, in this order (mcr_abi_constants). */
enum mcr_abi_constant {
	MCR_ABI_C_RX_FANOUT_UNIQUEID,
	MCR_ABI_C_RX_NO_FILTER,
	MCR_ABI_C_RX_FORCE_BPF_OUTGOING,
	MCR_ABI_C_TX_QDISC_BYPASS,
	MCR_ABI_C_TMPL_UNUSED,
	MCR_ABI_C_TMPL_RING,
	MCR_ABI_C_TMPL_SOCKET,
	MCR_ABI_C_FANOUT_NONE,
	MCR_ABI_C_FANOUT_HASH,
	MCR_ABI_C_FANOUT_LB,
	MCR_ABI_C_FANOUT_CPU,
	MCR_ABI_C_FANOUT_ROLLOVER,
	MCR_ABI_C_FANOUT_RND,
	MCR_ABI_C_FANOUT_QM,
	MCR_ABI_C_OWN_TX_FANOUT_FLAG,
	MCR_ABI_C_OWN_TX_BPF,
	MCR_ABI_C_OWN_TX_SOCKOPT,
	MCR_ABI_C_LINK_NEW,
	MCR_ABI_C_LINK_DEL,
	MCR_ABI_C_LINK_RESYNC,
	MCR_ABI_C_LINK_DUMP_DONE,
	MCR_ABI_C_LINK_ADDR,
	MCR_ABI_C_RX_L3,
	MCR_ABI_C_RX_PROMISC,
	MCR_ABI_C_RX_IPV6,
	MCR_ABI_C_FWD_IN_IPV6,
	MCR_ABI_C_COUNT
};
/** The values of enum mcr_abi_constant's names into out (at most max). Returns the count. */
int32_t mcr_abi_constants(uint32_t *out, uint32_t max);

/* ------------------------------------------------------------- interfaces */

struct mcr_iface_info {
	uint32_t ifindex;
	uint32_t mtu;
	uint32_t flags;	    /* IFF_* (IFF_UP = 0x1, IFF_RUNNING = 0x40, ...) */
	uint32_t ipv4;	    /* first IPv4 address, network byte order; 0 = none */
	uint8_t mac[8];	    /* 6 bytes used */
	uint32_t has_mac;   /* 1 when mac is valid (Ethernet-like device) */
	uint32_t link_type; /* ARPHRD_* (SIOCGIFHWADDR): 1 Ethernet, 0xfffe none (tun, WireGuard),
			       772 loopback, ... */
};

/** Look an interface up by name (in the calling thread's network namespace). */
int mcr_iface_by_name(const char *name, struct mcr_iface_info *out, char *err, size_t errlen);
/**
 * The IPv6 address an output on ifindex sends from by default: its first
 * global address, else its link-local one, never a tentative, deprecated or
 * duplicate one (from /proc/net/if_inet6, the calling process's network
 * namespace). Writes 16 bytes as on the wire. 1: found, 0: none (or IPv6
 * disabled), -errno.
 */
int mcr_iface_addr6(uint32_t ifindex, uint8_t *out16);
/**
 * The kernel's neighbour state (NUD_* bits, 0 = no entry) of the next hop
 * toward dst (network order) out of ifindex, and that next hop (the route's
 * gateway, or dst itself; network order). NUD_NOARP for one of the host's own
 * addresses. A destination without a route is an error (EHOSTUNREACH,
 * ENETUNREACH). Linux 5.0+ (single-entry RTM_GETNEIGH).
 */
int mcr_neigh_state(uint32_t ifindex, uint32_t dst, uint32_t *state, uint32_t *nexthop, char *err,
		    size_t errlen);
/**
 * mcr_neigh_state for IPv6: the next hop toward dst16 (16 bytes as on the
 * wire) out of ifindex — the route's gateway, or dst16 itself — into
 * nexthop16, and its neighbour-discovery state. Same errors.
 */
int mcr_neigh_state6(uint32_t ifindex, const uint8_t *dst16, uint32_t *state, uint8_t *nexthop16,
		     char *err, size_t errlen);
/** Look an interface up by index. name_out gets the name (IFNAMSIZ bytes). */
int mcr_iface_by_index(uint32_t ifindex, struct mcr_iface_info *out, char *name_out,
		       size_t name_len, char *err, size_t errlen);

/** Pin the calling thread to one CPU (sched_setaffinity). */
int mcr_pin_thread(uint32_t cpu, char *err, size_t errlen);

/**
 * Set the calling thread's nice value (-20..19; setpriority on its thread
 * id). A value below the current one needs CAP_SYS_NICE or RLIMIT_NICE
 * (-EACCES / -EPERM otherwise, nothing changed).
 */
int mcr_thread_nice(int32_t nice, char *err, size_t errlen);

/** The calling thread's nice value (getpriority on its thread id) into *out. 0 or -errno. */
int mcr_thread_get_nice(int32_t *out, char *err, size_t errlen);

/* ----------------------------------------------------------------- waker */

/*
 * An eventfd another thread can use to cut a blocking mcr_rx_poll() short
 * (rule-table change, shutdown). Create it before the rings that use it, close
 * it after them.
 */
typedef struct mcr_waker mcr_waker;
int mcr_waker_open(mcr_waker **out, char *err, size_t errlen);
/** The eventfd's file descriptor (pass it in mcr_rx_config.wake_fd). */
int mcr_waker_fd(const mcr_waker *w);
/** Wake every poll waiting on this waker (thread-safe). */
int mcr_waker_wake(mcr_waker *w);
int mcr_waker_close(mcr_waker *w);

/* -------------------------------------------------------------------- RX */

typedef struct mcr_rx mcr_rx;

enum mcr_fanout_mode {
	MCR_FANOUT_NONE = 0xffff, /* do not join a fanout group */
	MCR_FANOUT_HASH = 0,	  /* PACKET_FANOUT_HASH: one flow stays on one member */
	MCR_FANOUT_LB = 1,	  /* round robin (reorders a flow) */
	MCR_FANOUT_CPU = 2,	  /* by receiving CPU */
	MCR_FANOUT_ROLLOVER = 3,
	MCR_FANOUT_RND = 4,
	MCR_FANOUT_QM = 5,
};

/* mcr_rx_config.flags */
#define MCR_RX_FANOUT_UNIQUEID 0x1u /* let the kernel pick a free fanout id (fanout_id = 0) */
#define MCR_RX_NO_FILTER       0x2u /* no IPv4/UDP BPF filter (still never re-captures own TX) */
#define MCR_RX_FORCE_BPF_OUTGOING                                                                  \
	0x4u /* test hook: use the BPF outgoing check even if the
					  kernel has PACKET_FANOUT_FLAG_IGNORE_OUTGOING */
/*
 * Frames start at the IPv4 header: the interface has no link-layer header
 * (ARPHRD_NONE: tun, WireGuard; ipip, sit, ip6tnl, PPP, raw IP). The filter
 * reads the IP version nibble instead of an ethertype. Without it every frame
 * is taken for Ethernet II.
 */
#define MCR_RX_L3      0x8u
/*
 * Promiscuous capture (PACKET_MR_PROMISC): frames for other hosts' MACs reach
 * the ring (a mirror/SPAN port); held by the socket and released with it.
 */
#define MCR_RX_PROMISC 0x10u
/*
 * The filter passes IPv6/UDP as well as IPv4/UDP (set it when IPv6 rules
 * exist): ethertype 0x86DD (or IP version 6 with MCR_RX_L3) whose next header
 * is UDP, or a hop-by-hop, routing or destination-options header (the
 * caller's parser walks those and decides). mcr_rx_set_filter's destination
 * list is IPv4 only: with n > 0 IPv6 frames still pass whole.
 */
#define MCR_RX_IPV6    0x20u

/*
 * Zero means "default" for every field. All fields are uint32_t.
 */
struct mcr_rx_config {
	uint32_t ifindex;
	uint32_t tpacket_version;  /* 2 or 3; default 2 (see csrc/README.md) */
	uint32_t frame_size;	   /* V2 slot size; default from MTU (2048 for 1500) */
	uint32_t frame_count;	   /* V2 slots; default 4096 */
	uint32_t block_size;	   /* V3 block size; default 65536 (V2: derived) */
	uint32_t block_count;	   /* V3 blocks; default 64 */
	uint32_t block_timeout_ms; /* V3 retire timeout; default 1 */
	uint32_t fanout_id;	   /* 16-bit group id; ignored with MCR_RX_FANOUT_UNIQUEID */
	uint32_t fanout_mode;	   /* enum mcr_fanout_mode; default... 0 = HASH */
	uint32_t flags;		   /* MCR_RX_* */
	uint32_t batch_max;	   /* max frames per poll; default 256, cap 4096 */
	uint32_t
		coalesce_us; /* adaptive gather budget; 0 = default (see README); UINT32_MAX = off */
	uint32_t coalesce_pps; /* rate above which gathering starts; default 20000 */
	int32_t wake_fd;       /* eventfd from mcr_waker_fd(), or -1 */
	uint32_t mtu_hint;     /* MTU used for default frame_size; 0 = ask the kernel */
	uint32_t reserved;
};

/* Descriptor of one received frame (8 x uint32, 32 bytes). Offsets are
 * absolute byte offsets into the ring mapping (mcr_rx_ring_base). */
struct mcr_rx_desc {
	uint32_t offset;  /* start of the MAC header in the ring mapping */
	uint32_t snaplen; /* bytes present in the ring */
	uint32_t len;	  /* length on the wire (snaplen < len: truncated) */
	uint32_t
		status; /* TP_STATUS_* bits (VLAN_VALID 0x10, VLAN_TPID_VALID 0x40, LOSING 0x4, COPY 0x2) */
	uint32_t vlan_tci;  /* kernel-stripped 802.1Q tag, valid with TP_STATUS_VLAN_VALID */
	uint32_t vlan_tpid; /* its TPID, valid with TP_STATUS_VLAN_TPID_VALID */
	uint32_t
		pkttype; /* sockaddr_ll.sll_pkttype (PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3) */
	uint32_t tstamp_us; /* kernel receive time (tp_sec/tp_nsec) in microseconds, modulo 2^32
			       (wraps every 71.6 minutes: use differences only) */
};

/* Ring statistics (accumulated; PACKET_STATISTICS resets on read). */
struct mcr_rx_stats {
	uint64_t packets; /* tp_packets: frames the kernel handed to the ring (incl. drops) */
	uint64_t drops;	  /* tp_drops: frames lost because the ring was full */
	uint64_t freezes; /* V3 tp_freeze_q_cnt */
	uint64_t polls;	  /* poll() syscalls made */
	uint64_t wakeups; /* polls that returned frames */
	uint64_t frames;  /* frames returned to the caller */
	uint64_t batches; /* mcr_rx_poll calls that returned > 0 */
	uint64_t gathers; /* adaptive gather sleeps */
};

/** Open an RX ring. On success *out is set and 0 returned. */
int mcr_rx_open(const struct mcr_rx_config *cfg, mcr_rx **out, char *err, size_t errlen);
/**
 * Wait up to timeout_ms (-1 forever, 0 no wait) for frames; returns the number
 * of frames ready (descriptors in mcr_rx_desc(), at most batch_max), 0 on
 * timeout or wake-up, -errno on error. Frames from the previous poll that were
 * not released are released first.
 */
int mcr_rx_poll(mcr_rx *rx, int32_t timeout_ms);
/** Hand the frames of the last poll back to the kernel. Idempotent. */
int mcr_rx_release(mcr_rx *rx);
/** Descriptor array (batch_max entries, valid for the frames of the last poll). */
struct mcr_rx_desc *mcr_rx_desc(mcr_rx *rx);
/** Base and size of the ring mapping (fixed for the life of the handle). */
uint8_t *mcr_rx_ring_base(mcr_rx *rx);
uint64_t mcr_rx_ring_size(const mcr_rx *rx);
uint32_t mcr_rx_batch_max(const mcr_rx *rx);
/**
 * 1 when half the ring or more is waiting beyond the frames the last poll
 * collected: V2, the slot half the ring's slots after the next one to look at
 * is ready (the kernel fills a ring in order, so every slot before it is too);
 * V3, the block half the ring's blocks after the current one is. One load, no
 * syscall: a worker asks after a full batch whether it is falling behind.
 */
uint32_t mcr_rx_behind(const mcr_rx *rx);
/* How an RX socket ignores the relay's own transmissions (geometry[6]). */
enum mcr_own_tx_mode {
	MCR_OWN_TX_FANOUT_FLAG = 1, /* PACKET_FANOUT_FLAG_IGNORE_OUTGOING (Linux >= 6.2) */
	MCR_OWN_TX_BPF = 2,	    /* BPF pkt_type != PACKET_OUTGOING only */
	MCR_OWN_TX_SOCKOPT = 3,	    /* PACKET_IGNORE_OUTGOING (no fanout), BPF check as well */
};

/** Effective geometry: writes [version, frame_size, frame_count, block_size, block_count,
 *  fanout_id, own-TX mode (enum mcr_own_tx_mode)] */
int mcr_rx_geometry(const mcr_rx *rx, uint32_t *out7);
/** Read PACKET_STATISTICS, add to the accumulated totals, copy them out. */
int mcr_rx_stats(mcr_rx *rx, struct mcr_rx_stats *out);
/**
 * Restrict the BPF filter to UDP datagrams to these destinations (IPv4,
 * network byte order): dst_addrs[i] with prefix_lens[i] (0..32; NULL: every
 * entry is one address, /32) passes datagrams whose destination's first
 * prefix_lens[i] bits equal dst_addrs[i]'s. n = 0: every IPv4/UDP datagram.
 * More entries than the filter lists one by one (1000, MCR_BPF_MAX_DST in
 * csrc/bpf.h): it falls back to every IPv4/UDP datagram (as n = 0) and 1 is
 * returned; else 0 or -errno. Atomic replacement.
 */
int mcr_rx_set_filter(mcr_rx *rx, const uint32_t *dst_addrs, const uint8_t *prefix_lens, uint32_t n,
		      char *err, size_t errlen);
/**
 * Pass IPv6/UDP to the ring too (on != 0), or no longer (as MCR_RX_IPV6 at
 * open): for a ring whose interface gains its first IPv6 rule, or loses its
 * last. The filter is rebuilt without a destination list (as n = 0 in
 * mcr_rx_set_filter). 0 or -errno.
 */
int mcr_rx_set_ipv6(mcr_rx *rx, uint32_t on, char *err, size_t errlen);
int mcr_rx_close(mcr_rx *rx);

/* ---------------------------------------------------------------- RX set */

/*
 * One blocking wait over many RX rings and a waker (a worker serves many
 * input interfaces from one thread). Each ring is added under a tag chosen
 * by the caller (< max_tags). A wait collects first from the rings that had
 * frames last time (no syscall), then asks epoll for the others, or blocks
 * there when nothing was collected; while the arrival rate over all rings is
 * above coalesce_pps it gathers bigger batches (as mcr_rx_poll does for one
 * ring). Each ready ring's frames are in its own mcr_rx_desc(); hand them
 * back with mcr_rx_release() before the next wait. A ring must be removed
 * before it is closed.
 */
typedef struct mcr_rxset mcr_rxset;

/* RX set statistics (accumulated). */
struct mcr_rxset_stats {
	uint64_t polls;	  /* epoll waits that could block */
	uint64_t wakeups; /* of those, waits that returned frames */
	uint64_t gathers; /* adaptive gather sleeps */
	uint64_t batches; /* ring batches returned */
	uint64_t frames;  /* frames returned */
};

/** Open a set for tags 0..max_tags-1 (at most 65536). wake_fd: a waker's fd, or -1.
 *  coalesce_us: longest gather (0 = 250 µs, UINT32_MAX = never gather); coalesce_pps:
 *  arrival rate above which gathering starts (0 = 20000); the gather grows with
 *  the rate (gather.h). */
int mcr_rxset_open(uint32_t max_tags, int32_t wake_fd, uint32_t coalesce_us, uint32_t coalesce_pps,
		   mcr_rxset **out, char *err, size_t errlen);
/** Add a ring under tag (EEXIST when the tag is in use). */
int mcr_rxset_add(mcr_rxset *set, mcr_rx *rx, uint32_t tag, char *err, size_t errlen);
/** Remove the ring of tag (-ENOENT when there is none). */
int mcr_rxset_remove(mcr_rxset *set, uint32_t tag);
/**
 * Wait up to timeout_ms (-1 forever, 0 no wait) for frames on any ring.
 * Returns the number of entries in mcr_rxset_ready() (0 on timeout or
 * wake-up), or -errno.
 */
int mcr_rxset_wait(mcr_rxset *set, int32_t timeout_ms);
/** The ready list of the last wait: (tag, frames) int32 pairs; frames < 0 is
 *  -errno of a ring whose socket reported an error (-ENETDOWN: link down). */
int32_t *mcr_rxset_ready(mcr_rxset *set);
int mcr_rxset_stats(const mcr_rxset *set, struct mcr_rxset_stats *out);
/** Close the set (not its rings). */
int mcr_rxset_close(mcr_rxset *set);

/* -------------------------------------------------------------------- TX */

typedef struct mcr_tx mcr_tx;

#define MCR_TX_QDISC_BYPASS 0x1u

struct mcr_tx_config {
	uint32_t ifindex;
	uint32_t frame_size;  /* slot size; default from MTU (2048 for 1500) */
	uint32_t frame_count; /* default 1024 */
	uint32_t flags;	      /* MCR_TX_* */
	uint32_t mtu_hint;    /* 0 = ask the kernel */
	uint32_t reserved;
};

/*
 * TX ring counters and state. Every frame committed to the ring ends in
 * exactly one of sent, too_big or discarded (or is still queued):
 * frames = sent + too_big + discarded + queued.
 */
struct mcr_tx_stats {
	uint64_t frames;       /* frames committed to the ring */
	uint64_t sent;	       /* frames the kernel took */
	uint64_t kicks;	       /* sendto() calls */
	uint64_t ring_full;    /* frames not committed: no free slot */
	uint64_t too_big;      /* frames the kernel refused: longer than MTU + link header */
	uint64_t discarded;    /* frames taken back after a failed kick or a link loss */
	uint64_t kick_errors;  /* sendto() failures other than EAGAIN/ENOBUFS/EINTR */
	uint64_t link_changes; /* transitions between usable and down */
	uint64_t mtu_changes;  /* MTU changes noticed */
	/* state at the time of the call */
	uint32_t queued;     /* committed, not yet taken by the kernel */
	uint32_t mtu;	     /* MTU in force for the frame-size check */
	int32_t down;	     /* 0 = usable; else why not: ENETDOWN (down), ENOLINK (no
				  carrier), ENXIO/ENODEV (gone) */
	int32_t last_err;    /* errno of the last failed kick, 0 = none */
	uint32_t link_flags; /* IFF_* last known */
	uint32_t stalled_ms; /* frames queued and none taken for this long (0 = moving) */
	uint32_t frame_room; /* longest frame a slot holds (a larger MTU needs a new ring) */
	uint32_t reserved;
};

int mcr_tx_open(const struct mcr_tx_config *cfg, mcr_tx **out, char *err, size_t errlen);
/**
 * Kick the ring and wait up to timeout_ms until the kernel has taken every
 * queued frame (graceful shutdown). Returns the number still queued.
 */
int mcr_tx_drain(mcr_tx *tx, int32_t timeout_ms);
int mcr_tx_stats(mcr_tx *tx, struct mcr_tx_stats *out);
/**
 * Tell the ring what the link monitor saw (IFF_* flags as rtnetlink reports
 * them, MTU; mtu 0 keeps the current one). IFF_UP and IFF_LOWER_UP (0x10000,
 * carrier) make it usable; otherwise whatever is queued is discarded
 * (outcome "link down") and frames are refused until it is usable again. A
 * ring also notices a down link by itself (a failed kick) and then probes
 * its flags every 50 ms until it comes back.
 */
int mcr_tx_set_link(mcr_tx *tx, uint32_t flags, uint32_t mtu);
uint32_t mcr_tx_mtu(const mcr_tx *tx);
/** Give up on whatever is still queued (counted as errors; at shutdown, after
 *  mcr_tx_drain). Returns how many frames. */
int mcr_tx_discard(mcr_tx *tx);
int mcr_tx_close(mcr_tx *tx);

/* ------------------------------------------------------ forward/templates */

typedef struct mcr_fwd mcr_fwd;

enum mcr_template_kind {
	MCR_TMPL_UNUSED = 0,
	MCR_TMPL_RING = 1,   /* frame built into a TX ring (multicast, or unicast with known MAC) */
	MCR_TMPL_SOCKET = 2, /* datagram sent through a UDP socket bound to the device (AF_INET,
				or AF_INET6 for mcr_fwd_set_template6; unicast outputs and links
				without a MAC: the kernel resolves the next hop) */
};

/* Most host bits a template's destination may take from the input datagram's
 * (a range of at least /4: 224.0.0.0/4 is the widest multicast range). */
#define MCR_TMPL_MAX_HOST_BITS 28u

/*
 * Output template. All addresses/ports in network byte order.
 *
 * The destination is fixed, or follows the input datagram's: dst_host_bits
 * low bits of the destination address come from the input datagram's
 * destination and the rest from dst_ip (a range mapped onto another range of
 * the same length, or kept: dst_ip is then the input range itself), and a
 * dst_port of 0 keeps the input datagram's destination port. Both are
 * computed per datagram in C; the UDP checksum follows incrementally (RFC
 * 1624), the IPv4 header checksum and the multicast MAC are computed for the
 * new address.
 */
struct mcr_template {
	uint32_t kind;	       /* enum mcr_template_kind */
	uint32_t ifindex;      /* output interface (socket kind: SO_BINDTODEVICE) */
	uint32_t src_ip;       /* source address */
	uint32_t dst_ip;       /* group or unicast destination (with dst_host_bits: its prefix) */
	uint16_t src_port;     /* 0 = keep the input datagram's source port (ring kind) /
				ephemeral (socket kind) */
	uint16_t dst_port;     /* 0 = keep the input datagram's destination port */
	uint8_t ttl;	       /* fixed TTL; ignored when the forward descriptor carries one */
	uint8_t tos;	       /* DSCP << 2 */
	uint8_t dst_host_bits; /* 0 = dst_ip as is; 1..MCR_TMPL_MAX_HOST_BITS: that many low
				  bits of the destination from the input datagram's (dst_ip
				  must be multicast: the class, and the MAC, stay multicast) */
	uint8_t reserved0;
	uint8_t dst_mac[8]; /* ring kind; 6 bytes used (with dst_host_bits: per datagram) */
	uint8_t src_mac[8]; /* ring kind; 6 bytes used */
	uint64_t tx;	    /* ring kind: (mcr_tx *) handle as integer */
};

/* Forward descriptor (8 x uint32, 32 bytes), written by TS. */
struct mcr_fwd_desc {
	uint32_t frame;	      /* index of the received frame in the current rx batch */
	uint32_t l3_offset;   /* IPv4 header of the input datagram (ring offset) */
	uint32_t payload_off; /* UDP payload (ring offset) */
	uint32_t payload_len; /* UDP payload bytes */
	uint32_t tmpl;	      /* template index */
	uint32_t ttl;	      /* output TTL for this datagram, 1..255; 0 = template's */
	uint32_t flags;	      /* MCR_FWD_*; other bits: the descriptor is an error */
	uint32_t reserved;
};

/*
 * mcr_fwd_desc.flags: the input datagram is IPv6. l3_offset is then its IPv6
 * fixed header (40 bytes; extension headers, already walked by the caller,
 * may lie between it and the UDP header at payload_off - 8), and ttl is the
 * output's hop limit or TTL (the caller decrements the input's hop limit).
 * The output's family is the template's: any input goes to any output, with
 * new headers and the payload unchanged.
 */
#define MCR_FWD_IN_IPV6 0x1u

/*
 * Per-template counters (8 x double: exact to 2^53), read by TS. Datagrams,
 * not frames: a datagram sent as IPv4 fragments counts once. For each
 * template, descriptors = packets + ring_full + errors + link_down + too_big
 * + queued. They live in the forwarder's own array, or in memory the caller
 * provides (mcr_fwd_set_counters: a block other threads read directly).
 */
struct mcr_out_counters {
	double packets;	   /* datagrams the kernel took */
	double bytes;	   /* UDP payload bytes of those */
	double ring_full;  /* dropped: TX ring full / socket would block */
	double errors;	   /* dropped: invalid descriptor, send error */
	double link_down;  /* dropped: output link down, without carrier, or gone */
	double too_big;	   /* dropped: longer than the output MTU and not fragmentable
			      (DF set), or refused by the kernel as too long */
	double fragmented; /* of packets: datagrams sent as IPv4 fragments */
	double queued;	   /* gauge: datagrams in a TX ring, not yet taken by the kernel */
};

int mcr_fwd_open(uint32_t max_templates, uint32_t max_desc, mcr_fwd **out, char *err,
		 size_t errlen);
/** Install or replace template idx. Kind UNUSED clears it: its queued gauge
 *  drops to 0 and outcomes of its frames still in a ring no longer count (they
 *  are orphans); its other counters stay (mcr_fwd_reset_counters zeroes them).
 *  Socket kind opens its socket here. */
int mcr_fwd_set_template(mcr_fwd *fwd, uint32_t idx, const struct mcr_template *t, char *err,
			 size_t errlen);
/**
 * Install or replace template idx with an IPv6 output: addrs is 32 bytes,
 * the source address then the destination (group or unicast), as on the wire;
 * t->src_ip/dst_ip are ignored, every other field means what it means for
 * IPv4: ttl is the hop limit (default 1 to a group, 64 otherwise), tos the
 * traffic class, dst_host_bits (group destinations only) takes that many low
 * bits of the destination's last 32 from the input's destination (its IPv4
 * address, or its IPv6 address's last 32 bits). Ring kind: the frame's MAC is
 * 33:33 + the group's low 32 bits (RFC 2464) for a group, t->dst_mac for a
 * unicast destination; a datagram longer than the ring's MTU is counted
 * too_big (IPv6 is never fragmented on the way). Socket kind: an AF_INET6
 * socket bound to the device (and to the source address and port when not
 * zero; link-local ones get the interface as scope), IPV6_TCLASS,
 * IPV6_DONTFRAG, IPV6_MULTICAST_IF/IPV6_MULTICAST_LOOP 0 for a group, a
 * per-message IPV6_HOPLIMIT. The UDP checksum is always present: rebased
 * from the input's (RFC 1624) when that one is usable, computed in full
 * otherwise (csrc/README.md, IPv6).
 */
int mcr_fwd_set_template6(mcr_fwd *fwd, uint32_t idx, const struct mcr_template *t,
			  const uint8_t *addrs, char *err, size_t errlen);
/** Forward descriptor array (max_desc entries). */
struct mcr_fwd_desc *mcr_fwd_desc(mcr_fwd *fwd);
/** Per-template counters: template i at (char *)result + i * stride (see mcr_fwd_set_counters;
 *  the forwarder's own array has stride sizeof(struct mcr_out_counters)). */
struct mcr_out_counters *mcr_fwd_counters(mcr_fwd *fwd);
/**
 * Keep the counters in caller memory: template i's struct mcr_out_counters at
 * mem + i * stride (stride >= 64, a multiple of 8; bytes >= max_templates *
 * stride). The current values are copied there. The memory must outlive the
 * forwarder or the next call.
 */
int mcr_fwd_set_counters(mcr_fwd *fwd, void *mem, uint64_t bytes, uint32_t stride);
/** Zero template idx's counters (a new output takes the slot). */
int mcr_fwd_reset_counters(mcr_fwd *fwd, uint32_t idx);
/**
 * Build and send n forward descriptors whose frames live in rx's current
 * batch. One kick per TX ring touched, one sendmmsg per socket template.
 * Returns the number of datagrams queued to a ring or handed to a socket;
 * every other one is counted in its template's ring_full, errors, link_down
 * or too_big. Ring datagrams are counted as packets once the kernel has
 * taken them (this kick, or a later one / mcr_fwd_service).
 */
int mcr_fwd_submit(mcr_fwd *fwd, const mcr_rx *rx, uint32_t n);
/**
 * As mcr_fwd_submit, for frames the caller copied into its own memory (a
 * reorder buffer): descriptor i's frame is batch[d->frame], whose offsets
 * are relative to base (size bytes). Same checks, counters and kicks.
 */
int mcr_fwd_submit_mem(mcr_fwd *fwd, const struct mcr_rx_desc *batch, uint32_t nbatch,
		       const uint8_t *base, uint64_t size, uint32_t n);
/**
 * Housekeeping between batches: retry kicks that were cut short (EAGAIN),
 * probe rings whose link is down. Returns the number of datagrams still
 * queued in the forwarder's rings (poll sooner while it is not 0).
 */
int mcr_fwd_service(mcr_fwd *fwd);
/**
 * What the link monitor saw for an output interface (IFF_* flags, MTU; mtu 0
 * keeps it): applied to the forwarder's rings on that interface (see
 * mcr_tx_set_link) and its socket templates. Datagrams for an output whose
 * link is not up and running are dropped and counted as link_down.
 */
int mcr_fwd_set_link(mcr_fwd *fwd, uint32_t ifindex, uint32_t flags, uint32_t mtu);
/** Outcomes of frames whose template had been cleared meanwhile (not charged to any output). */
uint64_t mcr_fwd_orphans(const mcr_fwd *fwd);
int mcr_fwd_close(mcr_fwd *fwd);
/** (addition) Descriptors dropped because their template index was out of
 *  range or UNUSED (they cannot be charged to a template's counters). */
uint64_t mcr_fwd_invalid(const mcr_fwd *fwd);

/* ---------------------------------------------------------- link monitor */

/*
 * Link changes from rtnetlink (RTM_NEWLINK/RTM_DELLINK, RTMGRP_LINK): one
 * socket per process tells about every interface of the network namespace
 * as it appears, changes (flags, MTU, name) and goes, and when an IPv4
 * address is added or removed (RTM_NEWADDR/RTM_DELADDR, RTMGRP_IPV4_IFADDR).
 * Wait on it from a thread that may block (Deno: a nonblocking FFI call).
 */
typedef struct mcr_linkmon mcr_linkmon;

enum mcr_link_event_kind {
	MCR_LINK_NEW = 1,	/* appeared or changed */
	MCR_LINK_DEL = 2,	/* gone */
	MCR_LINK_RESYNC = 3,	/* events were lost (socket overrun): dump again */
	MCR_LINK_DUMP_DONE = 4, /* the dump asked for with mcr_linkmon_dump() is complete */
	MCR_LINK_ADDR = 5,	/* an IPv4 address of ifindex was added or removed (only
				   ifindex is set; dumps do not list addresses) */
};

struct mcr_link_event {
	uint32_t kind; /* enum mcr_link_event_kind */
	uint32_t ifindex;
	uint32_t flags; /* IFF_* (32 bits: IFF_LOWER_UP 0x10000 = carrier, IFF_RUNNING =
			     operationally up, which lags the carrier by up to 1 s) */
	uint32_t mtu;
	uint32_t type; /* ARPHRD_* link type */
	uint32_t reserved;
	char name[16]; /* NUL-terminated */
};

/** Open the monitor; wake_fd (an mcr_waker fd, or -1) cuts mcr_linkmon_wait() short. */
int mcr_linkmon_open(int32_t wake_fd, uint32_t max_events, mcr_linkmon **out, char *err,
		     size_t errlen);
/** Ask for every link (answers arrive as MCR_LINK_NEW events, then MCR_LINK_DUMP_DONE). */
int mcr_linkmon_dump(mcr_linkmon *m);
/**
 * Wait up to timeout_ms for link messages, then read what is there into the
 * event array (at most max_events; call again for more). Returns the number
 * of events, 0 on timeout or wake-up, -errno on error.
 */
int mcr_linkmon_wait(mcr_linkmon *m, int32_t timeout_ms);
/** The event array (max_events entries, valid after mcr_linkmon_wait). */
struct mcr_link_event *mcr_linkmon_events(mcr_linkmon *m);
int mcr_linkmon_close(mcr_linkmon *m);

/* ------------------------------------------------------------ input lock */

/*
 * One relay per input interface: two relays capturing the same interface
 * would each forward every datagram. The lock is an abstract Unix socket
 * named after the interface index; abstract names are per network namespace,
 * like interfaces, and vanish with the process that holds them.
 */
typedef struct mcr_input_lock mcr_input_lock;
/** Take the lock of ifindex; -EADDRINUSE when another process holds it. */
int mcr_input_lock_take(uint32_t ifindex, mcr_input_lock **out, char *err, size_t errlen);
int mcr_input_lock_release(mcr_input_lock *l);

/* ------------------------------------------------------------------ IGMP */

/*
 * One AF_INET socket holding IGMP memberships (any-source or source-
 * specific, by interface index: the interface needs no IPv4 address). The
 * kernel bounds what one socket holds and refuses more with ENOBUFS
 * (net.ipv4.igmp_max_memberships groups, net.ipv4.igmp_max_msf sources per
 * group, net.core.optmem_max bytes): the caller spreads memberships over as
 * many handles as those limits need (mcr_igmp_limits). A handle must not hold
 * an any-source and a source-specific membership of the same group on the
 * same interface (the kernel would turn the first into the second).
 * Addresses are in network byte order.
 */
typedef struct mcr_igmp mcr_igmp;
/** Open a socket that holds no membership yet. */
int mcr_igmp_open(mcr_igmp **out, char *err, size_t errlen);
/** Join group on ifindex: any source (source 0, IP_ADD_MEMBERSHIP) or add one source
 *  (MCAST_JOIN_SOURCE_GROUP). -ENOBUFS when a limit of this socket is reached. */
int mcr_igmp_add(mcr_igmp *m, uint32_t ifindex, uint32_t group, uint32_t source, char *err,
		 size_t errlen);
/** Leave: source 0 drops the group with every source (IP_DROP_MEMBERSHIP; works after the
 *  interface is gone); else one source (MCAST_LEAVE_SOURCE_GROUP; the group goes with its
 *  last source; -ENODEV once the interface is gone). */
int mcr_igmp_drop(mcr_igmp *m, uint32_t ifindex, uint32_t group, uint32_t source, char *err,
		  size_t errlen);
/** Close the socket (the kernel drops every membership it holds) and free. */
int mcr_igmp_close(mcr_igmp *m);

/* Index of each value mcr_igmp_limits() writes. */
enum mcr_igmp_limit {
	MCR_IGMP_MAX_MEMBERSHIPS = 0, /* net.ipv4.igmp_max_memberships: groups per socket */
	MCR_IGMP_MAX_MSF = 1,	      /* net.ipv4.igmp_max_msf: sources per group per socket */
	MCR_OPTMEM_MAX = 2,	      /* net.core.optmem_max: option memory per socket, bytes */
	MCR_IGMP_LIMIT_COUNT = 3,
};
/** The calling process's network namespace's per-socket limits, -1 where unreadable;
 *  returns MCR_IGMP_LIMIT_COUNT. */
int mcr_igmp_limits(int64_t *out3);

/* ------------------------------------------------------------------- MLD */

/*
 * One AF_INET6 socket holding MLD memberships (the IPv6 counterpart of
 * mcr_igmp: the kernel sends MLDv2 reports, or MLDv1 where the link asks for
 * it). Any-source joins use IPV6_JOIN_GROUP, source-specific ones
 * MCAST_JOIN_SOURCE_GROUP, both by interface index. The kernel bounds a
 * socket's source lists by net.ipv6.mld_max_msf and its option memory by
 * net.core.optmem_max (ENOBUFS, as for IGMP). The same rule holds: one handle
 * must not hold an any-source and a source-specific membership of one group
 * on one interface. Addresses are 16 bytes as on the wire.
 */
typedef struct mcr_mld mcr_mld;
/** Open a socket that holds no membership yet. */
int mcr_mld_open(mcr_mld **out, char *err, size_t errlen);
/** Join group (ff00::/8) on ifindex: any source (source NULL or ::, IPV6_JOIN_GROUP) or add
 *  one source (MCAST_JOIN_SOURCE_GROUP). -EINVAL for a group that is not multicast,
 *  -ENOBUFS when a limit of this socket is reached. */
int mcr_mld_add(mcr_mld *m, uint32_t ifindex, const uint8_t *group, const uint8_t *source,
		char *err, size_t errlen);
/** Leave: source NULL or :: drops the group with every source (IPV6_LEAVE_GROUP); else one
 *  source (MCAST_LEAVE_SOURCE_GROUP; the group goes with its last source). */
int mcr_mld_drop(mcr_mld *m, uint32_t ifindex, const uint8_t *group, const uint8_t *source,
		 char *err, size_t errlen);
/** Close the socket (the kernel drops every membership it holds) and free. */
int mcr_mld_close(mcr_mld *m);

/* ------------------------------------------------------ UDP port claims */

/*
 * A unicast input addressed to one of the host's own addresses is also seen
 * by the kernel's UDP stack, which answers ICMP port unreachable when no
 * socket is bound to the port. A claim is a UDP socket bound to (addr, port)
 * on ifindex whose socket filter accepts nothing: the kernel finds a socket
 * (no ICMP) and drops each datagram at the filter, unqueued (counted in Udp
 * InErrors and the socket's drops, where it would otherwise count in Udp
 * NoPorts). No SO_REUSEADDR/SO_REUSEPORT: a port another socket holds is
 * refused with -EADDRINUSE, never shared. -EADDRNOTAVAIL: addr is not the
 * host's (a mirror port's address needs no claim). -EACCES: a port below
 * net.ipv4.ip_unprivileged_port_start without CAP_NET_BIND_SERVICE.
 */
typedef struct mcr_udp_claim mcr_udp_claim;
/** Claim UDP port (host order, 1..65535) of addr (network byte order) on ifindex. */
int mcr_udp_claim_open(uint32_t ifindex, uint32_t addr, uint32_t port, mcr_udp_claim **out,
		       char *err, size_t errlen);
/** Close the claim (the kernel answers for the port again) and free. */
int mcr_udp_claim_close(mcr_udp_claim *c);

/* ------------------------------------------------ file-descriptor budget */

/* Index of each value mcr_fd_limits() writes. */
enum mcr_fd_limit {
	MCR_FD_SOFT = 0, /* RLIMIT_NOFILE soft limit (UINT64_MAX: unlimited) */
	MCR_FD_HARD = 1, /* RLIMIT_NOFILE hard limit (UINT64_MAX: unlimited) */
	MCR_FD_OPEN = 2, /* descriptors open now (UINT64_MAX: unknown) */
};
/** RLIMIT_NOFILE and the number of open descriptors. */
int mcr_fd_limits(uint64_t *out3, char *err, size_t errlen);
/** Set the soft RLIMIT_NOFILE (at most the hard limit; UINT64_MAX: unlimited). */
int mcr_fd_set_soft_limit(uint64_t soft, char *err, size_t errlen);

/* ------------------------------------------------------------- checksums */

/** Internet checksum (RFC 1071) of buf, folded, NOT complemented; exported for tests. */
uint16_t mcr_csum_partial(const uint8_t *buf, uint32_t len, uint32_t seed);
/** IPv4 multicast MAC for a group in network byte order (RFC 1112 §6.4). */
void mcr_mcast_mac(uint32_t group, uint8_t *mac6);
/** IPv6 multicast MAC for a group (16 bytes as on the wire): 33:33 + its last 4 bytes
 *  (RFC 2464 §7). */
void mcr_mcast_mac6(const uint8_t *group16, uint8_t *mac6);

/* ---------------------------------------------------------------- systemd */

/**
 * sd_notify(3): send `state` (e.g. "READY=1", "RELOADING=1", "STOPPING=1",
 * "STATUS=...", several separated by '\n') to $NOTIFY_SOCKET ("/path" or
 * "@abstract"). Returns 1 when sent, 0 when NOTIFY_SOCKET is unset (not run
 * by systemd with Type=notify), -errno on failure. Call it from the process's
 * main thread (systemd's default NotifyAccess=main checks the sender's PID).
 * A RELOADING=1 message gets MONOTONIC_USEC= appended (systemd >= 253).
 */
int mcr_sd_notify(const char *state, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MCR_H */
