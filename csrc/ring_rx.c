/* SPDX-License-Identifier: MIT */
/*
 * ring_rx.c — AF_PACKET RX ring (TPACKET_V2 default, V3 supported),
 * netsniff-ng style, with adaptive interrupt-style coalescing.
 *
 * Setup order: socket (protocol 0: receives nothing yet), PACKET_VERSION,
 * a drop-all BPF filter, PACKET_IGNORE_OUTGOING, PACKET_RX_RING, mmap, bind
 * (ETH_P_ALL), PACKET_FANOUT, then the real filter. Until the socket is a
 * member of its fanout group it therefore sees nothing (no duplicates when
 * several workers start).
 *
 * Promiscuous capture (MCR_RX_PROMISC) is a PACKET_MR_PROMISC membership of
 * the socket, as tcpdump takes it: the kernel counts it per socket and drops
 * it when the socket closes, so a crash leaves no interface promiscuous.
 *
 * Own-TX suppression (geometry[6]): 1 = PACKET_FANOUT_FLAG_IGNORE_OUTGOING,
 * 2 = BPF pkt_type check only, 3 = PACKET_IGNORE_OUTGOING sockopt (no fanout;
 * the BPF check is installed as well).
 *
 * Adaptive coalescing (V2): a poll returns at once when traffic is sparse;
 * when the estimated arrival rate exceeds coalesce_pps and the batch is small,
 * it sleeps for min(coalesce_us, time to gather the batch the rate calls for,
 * gather.h) and collects again — fewer wakeups and syscalls per packet under
 * load, wakeup latency when idle. V3 batches by itself (blocks), so it never gathers.
 */
#include "ring_rx.h"
#include "bpf.h"
#include "gather.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define V2_HDR_OFF_SLL TPACKET_ALIGN(sizeof(struct tpacket2_hdr))
#define V3_HDR_OFF_SLL TPACKET_ALIGN(sizeof(struct tpacket3_hdr))

struct mcr_rx {
	int fd;
	int wake_fd;
	uint8_t *map;
	size_t map_len;
	uint32_t ifindex;
	char name[IFNAMSIZ];
	uint32_t version, frame_size, frame_count, block_size, block_count, per_block;
	uint32_t fanout_id, out_mode, flags;
	uint32_t batch_max, gather_max; /* most frames a gather waits for */
	struct mcr_rx_desc *desc;
	uint32_t ndesc;
	/* V2 */
	uint32_t head; /* next frame to look at */
	uint32_t held; /* frames before head still owned by the caller */
	/* V3 */
	uint32_t blk;	      /* current block */
	uint32_t blk_left;    /* frames left in the current (open) block */
	uint32_t blk_off;     /* offset of the next frame in the current block */
	uint32_t blk_open;    /* current block has been started */
	uint32_t rel_blk;     /* oldest block not yet returned */
	uint32_t blk_done;    /* fully consumed blocks not yet returned */
	struct gather gather; /* coalescing */
	struct mcr_rx_stats st;
};

/* ------------------------------------------------------------- filters */

static int apply_filter(struct mcr_rx *rx, const uint32_t *dst, const uint8_t *plen, uint32_t n,
			char *err, size_t errlen)
{
	uint32_t kinds = 0;
	if (rx->out_mode != MCR_OWN_TX_FANOUT_FLAG)
		kinds |= MCR_BPF_OUTGOING;
	if (!(rx->flags & MCR_RX_NO_FILTER) || n > 0)
		kinds |= MCR_BPF_UDP;
	if (rx->flags & MCR_RX_L3)
		kinds |= MCR_BPF_L3;
	if (rx->flags & MCR_RX_IPV6)
		kinds |= MCR_BPF_IPV6;
	if (!kinds) {
		/* SOL_SOCKET options need optlen >= sizeof(int), even this one (else EINVAL) */
		int unused = 0;
		if (setsockopt(rx->fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused)) < 0 &&
		    errno != ENOENT)
			return lib_err(err, errlen, errno, "SO_DETACH_FILTER on %s", rx->name);
		return 0;
	}
	/* too many destinations to list: every IPv4/UDP datagram passes (the rules
	 * still match in user space, and count what they do not want as no_match) */
	int fallback = n > MCR_BPF_MAX_DST;
	if (fallback)
		n = 0;
	uint32_t cap = bpf_size(n);
	struct sock_filter *prog = calloc(cap, sizeof(*prog));
	if (!prog)
		return lib_err(err, errlen, ENOMEM, "RX filter on %s", rx->name);
	int len = bpf_build(prog, cap, kinds, dst, plen, n);
	int rc = fallback;
	if (len < 0) {
		rc = lib_err(err, errlen, -len, "building the RX filter for %s", rx->name);
	} else {
		struct sock_fprog fp = { .len = (unsigned short)len, .filter = prog };
		if (setsockopt(rx->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0)
			rc = lib_err(err, errlen, errno, "SO_ATTACH_FILTER (%d insns) on %s", len,
				     rx->name);
	}
	free(prog);
	return rc;
}

int mcr_rx_set_filter(mcr_rx *rx, const uint32_t *dst_addrs, const uint8_t *prefix_lens, uint32_t n,
		      char *err, size_t errlen)
{
	if (!rx || (n > 0 && !dst_addrs))
		return lib_err(err, errlen, EINVAL, "mcr_rx_set_filter: bad argument");
	for (uint32_t k = 0; prefix_lens && k < n && n <= MCR_BPF_MAX_DST; k++)
		if (prefix_lens[k] > 32)
			return lib_err(err, errlen, EINVAL,
				       "RX filter on %s: prefix length %u of entry %u (max 32)",
				       rx->name, prefix_lens[k], k);
	return apply_filter(rx, dst_addrs, prefix_lens, n, err, errlen);
}

int mcr_rx_set_ipv6(mcr_rx *rx, uint32_t on, char *err, size_t errlen)
{
	if (!rx)
		return lib_err(err, errlen, EINVAL, "mcr_rx_set_ipv6: bad argument");
	uint32_t before = rx->flags;
	if (on)
		rx->flags |= MCR_RX_IPV6;
	else
		rx->flags &= ~MCR_RX_IPV6;
	int rc = apply_filter(rx, NULL, NULL, 0, err, errlen);
	if (rc < 0)
		rx->flags = before;
	return rc;
}

/* ------------------------------------------------------------- setup */

static int join_fanout(struct mcr_rx *rx, const struct mcr_rx_config *cfg, char *err, size_t errlen)
{
	uint32_t mode = cfg->fanout_mode;
	uint32_t fl = 0, id = cfg->fanout_id & 0xffff;
	if (cfg->flags & MCR_RX_FANOUT_UNIQUEID) {
		fl |= PACKET_FANOUT_FLAG_UNIQUEID;
		id = 0;
	}
	int try_flag = !(cfg->flags & MCR_RX_FORCE_BPF_OUTGOING);
	for (;;) {
		uint32_t f = fl | (try_flag ? PACKET_FANOUT_FLAG_IGNORE_OUTGOING : 0);
		int val = (int)(id | ((mode | f) << 16));
		if (setsockopt(rx->fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)) == 0)
			break;
		if (errno == EINVAL && try_flag) {
			try_flag = 0; /* kernel < 6.2: no IGNORE_OUTGOING flag */
			continue;
		}
		return lib_err(err, errlen, errno,
			       "PACKET_FANOUT (id %u, mode %u, flags 0x%x) on %s", id, mode, f,
			       rx->name);
	}
	rx->out_mode = try_flag ? MCR_OWN_TX_FANOUT_FLAG : MCR_OWN_TX_BPF;
	int val = 0;
	socklen_t vl = sizeof(val);
	if (getsockopt(rx->fd, SOL_PACKET, PACKET_FANOUT, &val, &vl) < 0)
		return lib_err(err, errlen, errno, "getsockopt(PACKET_FANOUT) on %s", rx->name);
	rx->fanout_id = (uint32_t)val & 0xffff;
	return 0;
}

static int set_ring(struct mcr_rx *rx, const struct mcr_rx_config *cfg, char *err, size_t errlen)
{
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
	uint32_t mtu = cfg->mtu_hint;
	if (!mtu && !cfg->frame_size) {
		int rc = ifmtu_of(rx->ifindex, &mtu, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (mtu > 65536u)
		mtu = 65536u;
	/* header + sockaddr_ll (52) + 16 alignment slack + Ethernet + VLAN + MTU */
	uint32_t fs = cfg->frame_size;
	if (!fs)
		fs = pow2_ceil((uint32_t)TPACKET2_HDRLEN + 16u + 14u + 4u + mtu);
	if (fs < TPACKET3_HDRLEN + 64u || fs % TPACKET_ALIGNMENT)
		return lib_err(err, errlen, EINVAL, "RX ring on %s: bad frame_size %u", rx->name,
			       fs);

	if (rx->version == TPACKET_V2) {
		uint32_t fc = cfg->frame_count;
		if (!fc) { /* 4096 slots, but keep jumbo/loopback rings under 64 MiB */
			fc = (64u << 20) / fs;
			fc = fc > 4096u ? 4096u : fc < 64u ? 64u : fc;
		}
		uint32_t bs = cfg->block_size ? cfg->block_size : (fs > page ? fs : page);
		bs = (bs + page - 1) & ~(page - 1);
		if (bs < fs)
			return lib_err(err, errlen, EINVAL,
				       "RX ring on %s: block_size %u < frame_size %u", rx->name, bs,
				       fs);
		rx->per_block = bs / fs;
		rx->block_count = (fc + rx->per_block - 1) / rx->per_block;
		rx->frame_count = rx->block_count * rx->per_block;
		rx->block_size = bs;
		rx->frame_size = fs;
		struct tpacket_req req = { .tp_block_size = bs,
					   .tp_block_nr = rx->block_count,
					   .tp_frame_size = fs,
					   .tp_frame_nr = rx->frame_count };
		if (setsockopt(rx->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
			return lib_err(err, errlen, errno,
				       "PACKET_RX_RING V2 on %s (block %u x %u, frame %u x %u)",
				       rx->name, bs, rx->block_count, fs, rx->frame_count);
	} else {
		uint32_t bs = cfg->block_size ? cfg->block_size : 65536u;
		bs = (bs + page - 1) & ~(page - 1);
		if (fs > bs)
			fs = bs;
		rx->block_size = bs;
		rx->block_count = cfg->block_count ? cfg->block_count : 64u;
		rx->frame_size = fs;
		rx->per_block = bs / fs;
		rx->frame_count = rx->per_block * rx->block_count;
		struct tpacket_req3 req = {
			.tp_block_size = bs,
			.tp_block_nr = rx->block_count,
			.tp_frame_size = fs,
			.tp_frame_nr = rx->frame_count,
			.tp_retire_blk_tov = cfg->block_timeout_ms ? cfg->block_timeout_ms : 1u,
		};
		if (setsockopt(rx->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
			return lib_err(err, errlen, errno,
				       "PACKET_RX_RING V3 on %s (block %u x %u)", rx->name, bs,
				       rx->block_count);
	}
	uint64_t len = (uint64_t)rx->block_size * rx->block_count;
	if (len > UINT32_MAX)
		return lib_err(err, errlen, EINVAL, "RX ring on %s: %llu bytes exceeds 4 GiB",
			       rx->name, (unsigned long long)len);
	rx->map_len = (size_t)len;
	rx->map = mmap(NULL, rx->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, rx->fd, 0);
	if (rx->map == MAP_FAILED) {
		rx->map = NULL;
		return lib_err(err, errlen, errno, "mmap RX ring on %s (%zu bytes)", rx->name,
			       rx->map_len);
	}
	return 0;
}

/* Release everything an rx handle holds (open failure or close). */
static void rx_free(struct mcr_rx *rx)
{
	if (rx->map)
		munmap(rx->map, rx->map_len);
	if (rx->fd >= 0)
		close(rx->fd);
	free(rx->desc);
	free(rx);
}

int mcr_rx_open(const struct mcr_rx_config *cfg, mcr_rx **out, char *err, size_t errlen)
{
	int rc, one = 1;
	if (!cfg || !out)
		return lib_err(err, errlen, EINVAL, "mcr_rx_open: NULL argument");
	*out = NULL;
	uint32_t ver = cfg->tpacket_version ? cfg->tpacket_version : 2;
	if (ver != 2 && ver != 3)
		return lib_err(err, errlen, EINVAL, "mcr_rx_open: tpacket_version %u", ver);
	if (cfg->fanout_mode != MCR_FANOUT_NONE && cfg->fanout_mode > MCR_FANOUT_QM)
		return lib_err(err, errlen, EINVAL, "mcr_rx_open: fanout_mode %u",
			       cfg->fanout_mode);

	struct mcr_rx *rx = calloc(1, sizeof(*rx));
	if (!rx)
		return lib_err(err, errlen, ENOMEM, "mcr_rx_open: calloc");
	rx->fd = -1;
	rx->ifindex = cfg->ifindex;
	rx->version = ver == 3 ? TPACKET_V3 : TPACKET_V2;
	rx->flags = cfg->flags;
	rx->wake_fd = cfg->wake_fd;
	rx->batch_max = cfg->batch_max ? cfg->batch_max : 256u;
	if (rx->batch_max > 4096u)
		rx->batch_max = 4096u;
	rx->gather_max = rx->batch_max < GATHER_MAX ? rx->batch_max : GATHER_MAX;
	gather_init(&rx->gather, cfg->coalesce_us, cfg->coalesce_pps);
	rc = ifname_of(cfg->ifindex, rx->name, err, errlen);
	if (rc < 0)
		goto fail;
	rx->desc = calloc(rx->batch_max, sizeof(*rx->desc));
	if (!rx->desc) {
		rc = lib_err(err, errlen, ENOMEM, "mcr_rx_open: descriptors");
		goto fail;
	}

	rx->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (rx->fd < 0) {
		rc = lib_err(err, errlen, errno, "socket(AF_PACKET, SOCK_RAW) for RX on %s%s",
			     rx->name, errno == EPERM ? " (needs CAP_NET_RAW)" : "");
		goto fail;
	}
	int v = (int)rx->version;
	if (setsockopt(rx->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
		rc = lib_err(err, errlen, errno, "PACKET_VERSION %u on %s", ver, rx->name);
		goto fail;
	}
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog dropall = { .len = 1, .filter = &drop };
	if (setsockopt(rx->fd, SOL_SOCKET, SO_ATTACH_FILTER, &dropall, sizeof(dropall)) < 0) {
		rc = lib_err(err, errlen, errno, "SO_ATTACH_FILTER (drop all) on %s", rx->name);
		goto fail;
	}
	rx->out_mode = MCR_OWN_TX_BPF;
	if (!(cfg->flags & MCR_RX_FORCE_BPF_OUTGOING) &&
	    setsockopt(rx->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) == 0)
		rx->out_mode = MCR_OWN_TX_SOCKOPT;
	rc = set_ring(rx, cfg, err, errlen);
	if (rc < 0)
		goto fail;
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)cfg->ifindex;
	if (bind(rx->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		rc = lib_err(err, errlen, errno, "bind RX socket to %s (ifindex %u)", rx->name,
			     cfg->ifindex);
		goto fail;
	}
	if (cfg->flags & MCR_RX_PROMISC) {
		/* Counted by the kernel per socket and dropped with it: nothing to undo. */
		struct packet_mreq mr;
		memset(&mr, 0, sizeof(mr));
		mr.mr_ifindex = (int)cfg->ifindex;
		mr.mr_type = PACKET_MR_PROMISC;
		if (setsockopt(rx->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
			rc = lib_err(err, errlen, errno, "PACKET_MR_PROMISC on %s", rx->name);
			goto fail;
		}
	}
	if (cfg->fanout_mode != MCR_FANOUT_NONE) {
		rc = join_fanout(rx, cfg, err, errlen);
		if (rc < 0)
			goto fail;
	}
	rc = apply_filter(rx, NULL, NULL, 0, err, errlen);
	if (rc < 0)
		goto fail;
	live_inc();
	*out = rx;
	return 0;
fail:
	rx_free(rx);
	return rc;
}

int mcr_rx_close(mcr_rx *rx)
{
	if (!rx)
		return 0;
	rx_free(rx);
	live_dec();
	return 0;
}

/* ------------------------------------------------------------- V2 */

static inline uint8_t *v2_frame(const struct mcr_rx *rx, uint32_t i)
{
	return rx->map + (size_t)(i / rx->per_block) * rx->block_size +
	       (size_t)(i % rx->per_block) * rx->frame_size;
}

/* A frame's kernel receive time in microseconds modulo 2^32 (mcr_rx_desc.tstamp_us). The
 * kernel stamps every frame it puts in a ring (the skb's time, else the time of the copy). */
static inline uint32_t tstamp_us(uint32_t sec, uint32_t nsec)
{
	return (uint32_t)((uint64_t)sec * 1000000u + nsec / 1000u);
}

static void v2_release(struct mcr_rx *rx)
{
	uint32_t i = (rx->head + rx->frame_count - rx->held) % rx->frame_count;
	for (uint32_t k = 0; k < rx->held; k++) {
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)v2_frame(rx, i);
		__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		i = i + 1 == rx->frame_count ? 0 : i + 1;
	}
	rx->held = 0;
}

static uint32_t v2_collect(struct mcr_rx *rx, uint32_t n)
{
	while (n < rx->batch_max && rx->held < rx->frame_count) {
		uint8_t *f = v2_frame(rx, rx->head);
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)f;
		uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
		if (!(st & TP_STATUS_USER))
			break;
		const struct sockaddr_ll *sll = (const struct sockaddr_ll *)(f + V2_HDR_OFF_SLL);
		struct mcr_rx_desc *d = &rx->desc[n++];
		d->offset = (uint32_t)(f - rx->map) + h->tp_mac;
		d->snaplen = h->tp_snaplen;
		d->len = h->tp_len;
		d->status = st;
		d->vlan_tci = h->tp_vlan_tci;
		d->vlan_tpid = h->tp_vlan_tpid;
		d->pkttype = sll->sll_pkttype;
		d->tstamp_us = tstamp_us(h->tp_sec, h->tp_nsec);
		rx->head = rx->head + 1 == rx->frame_count ? 0 : rx->head + 1;
		rx->held++;
	}
	return n;
}

/* ------------------------------------------------------------- V3 */

static inline struct tpacket_block_desc *v3_block(const struct mcr_rx *rx, uint32_t b)
{
	return (struct tpacket_block_desc *)(rx->map + (size_t)b * rx->block_size);
}

static void v3_release(struct mcr_rx *rx)
{
	for (; rx->blk_done > 0; rx->blk_done--) {
		struct tpacket_block_desc *bd = v3_block(rx, rx->rel_blk);
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		rx->rel_blk = rx->rel_blk + 1 == rx->block_count ? 0 : rx->rel_blk + 1;
	}
}

static uint32_t v3_collect(struct mcr_rx *rx, uint32_t n)
{
	while (n < rx->batch_max) {
		struct tpacket_block_desc *bd = v3_block(rx, rx->blk);
		if (!rx->blk_open) {
			if (rx->blk_done >= rx->block_count)
				break;
			uint32_t st = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
			if (!(st & TP_STATUS_USER))
				break;
			rx->blk_open = 1;
			rx->blk_left = bd->hdr.bh1.num_pkts;
			rx->blk_off = bd->hdr.bh1.offset_to_first_pkt;
		}
		if (rx->blk_left > 0) {
			uint8_t *f = (uint8_t *)bd + rx->blk_off;
			struct tpacket3_hdr *h = (struct tpacket3_hdr *)f;
			const struct sockaddr_ll *sll =
				(const struct sockaddr_ll *)(f + V3_HDR_OFF_SLL);
			struct mcr_rx_desc *d = &rx->desc[n++];
			d->offset = (uint32_t)(f - rx->map) + h->tp_mac;
			d->snaplen = h->tp_snaplen;
			d->len = h->tp_len;
			d->status = h->tp_status;
			d->vlan_tci = h->hv1.tp_vlan_tci;
			d->vlan_tpid = h->hv1.tp_vlan_tpid;
			d->pkttype = sll->sll_pkttype;
			d->tstamp_us = tstamp_us(h->tp_sec, h->tp_nsec);
			rx->blk_off += h->tp_next_offset;
			rx->blk_left--;
		}
		if (rx->blk_left == 0) {
			rx->blk_open = 0;
			rx->blk_done++;
			rx->blk = rx->blk + 1 == rx->block_count ? 0 : rx->blk + 1;
		}
	}
	return n;
}

/* ------------------------------------------------------------- poll */

static inline void release_all(struct mcr_rx *rx)
{
	if (rx->version == TPACKET_V2)
		v2_release(rx);
	else
		v3_release(rx);
	rx->ndesc = 0;
}

static inline uint32_t collect(struct mcr_rx *rx, uint32_t n)
{
	return rx->version == TPACKET_V2 ? v2_collect(rx, n) : v3_collect(rx, n);
}

int mcr_rx_release(mcr_rx *rx)
{
	if (!rx)
		return -EINVAL;
	release_all(rx);
	return 0;
}

static int wait_ready(struct mcr_rx *rx, int32_t timeout_ms)
{
	struct pollfd pfd[2] = { { .fd = rx->fd, .events = POLLIN | POLLERR } };
	nfds_t nfd = 1;
	if (rx->wake_fd >= 0) {
		pfd[1].fd = rx->wake_fd;
		pfd[1].events = POLLIN;
		nfd = 2;
	}
	rx->st.polls++;
	int r = poll(pfd, nfd, timeout_ms < 0 ? -1 : timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (nfd == 2 && (pfd[1].revents & POLLIN)) {
		uint64_t v;
		if (read(rx->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		return 1; /* woken */
	}
	if (pfd[0].revents & POLLERR) {
		int e = 0;
		socklen_t el = sizeof(e);
		(void)getsockopt(rx->fd, SOL_SOCKET, SO_ERROR, &e, &el); /* reads and clears it */
		/* ENETDOWN: the device went down or away and the kernel unhooked
		 * the socket; report it so the caller can reopen the ring. */
		if (e != 0)
			return -e;
	}
	return 0;
}

int mcr_rx_poll(mcr_rx *rx, int32_t timeout_ms)
{
	if (!rx)
		return -EINVAL;
	gather_thread(&rx->gather);
	release_all(rx);
	uint32_t n = collect(rx, 0);
	if (n == 0 && timeout_ms != 0) {
		int r = wait_ready(rx, timeout_ms);
		if (r < 0)
			return r;
		if (r == 1)
			return 0;
		n = collect(rx, 0);
		if (n > 0)
			rx->st.wakeups++;
	}
	if (n == 0)
		return 0;
	gather_seen(&rx->gather, n);
	if (rx->version == TPACKET_V2 && gather_sleep(&rx->gather, n, rx->gather_max)) {
		rx->st.gathers++;
		uint32_t m = collect(rx, n);
		gather_more(&rx->gather, m - n);
		n = m;
	}
	rx->ndesc = n;
	rx->st.frames += n;
	rx->st.batches++;
	return (int)n;
}

/* ------------------------------------------------------------- accessors */

struct mcr_rx_desc *mcr_rx_desc(mcr_rx *rx)
{
	return rx ? rx->desc : NULL;
}

uint8_t *mcr_rx_ring_base(mcr_rx *rx)
{
	return rx ? rx->map : NULL;
}

uint64_t mcr_rx_ring_size(const mcr_rx *rx)
{
	return rx ? rx->map_len : 0;
}

uint32_t mcr_rx_batch_max(const mcr_rx *rx)
{
	return rx ? rx->batch_max : 0;
}

uint32_t mcr_rx_behind(const mcr_rx *rx)
{
	if (!rx)
		return 0;
	if (rx->version == TPACKET_V2) {
		/* the k-th slot after the next one to look at; slots the caller holds are not asked */
		uint32_t room = rx->frame_count - rx->held;
		uint32_t k = rx->frame_count / 2u < room ? rx->frame_count / 2u : room;
		if (!k)
			return 1;
		const struct tpacket2_hdr *h = (const struct tpacket2_hdr *)v2_frame(
			rx, (rx->head + k - 1u) % rx->frame_count);
		return (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
	}
	/* V3: the block half the ring after the current one; blocks not yet returned are not asked */
	if (rx->blk_done + 1u >= rx->block_count)
		return rx->blk_done > 0; /* the caller holds every block but one */
	uint32_t room = rx->block_count - rx->blk_done - 1u;
	uint32_t k = rx->block_count / 2u < room ? rx->block_count / 2u : room;
	if (!k)
		return 1;
	const struct tpacket_block_desc *bd = v3_block(rx, (rx->blk + k) % rx->block_count);
	uint32_t st = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
	return (st & TP_STATUS_USER) != 0;
}

int mcr_rx_geometry(const mcr_rx *rx, uint32_t *out7)
{
	if (!rx || !out7)
		return -EINVAL;
	out7[0] = rx->version == TPACKET_V3 ? 3 : 2;
	out7[1] = rx->frame_size;
	out7[2] = rx->frame_count;
	out7[3] = rx->block_size;
	out7[4] = rx->block_count;
	out7[5] = rx->fanout_id;
	out7[6] = rx->out_mode;
	return 0;
}

int mcr_rx_stats(mcr_rx *rx, struct mcr_rx_stats *out)
{
	if (!rx || !out)
		return -EINVAL;
	struct tpacket_stats_v3 s;
	memset(&s, 0, sizeof(s));
	socklen_t len = rx->version == TPACKET_V3 ? sizeof(struct tpacket_stats_v3)
						  : sizeof(struct tpacket_stats);
	if (getsockopt(rx->fd, SOL_PACKET, PACKET_STATISTICS, &s, &len) < 0)
		return -errno;
	rx->st.packets += s.tp_packets;
	rx->st.drops += s.tp_drops;
	if (rx->version == TPACKET_V3)
		rx->st.freezes += s.tp_freeze_q_cnt;
	*out = rx->st;
	return 0;
}

int rxr_fd(const mcr_rx *rx)
{
	return rx->fd;
}

uint32_t rxr_version(const mcr_rx *rx)
{
	return rx->version == TPACKET_V3 ? 3u : 2u;
}

uint32_t rxr_take(mcr_rx *rx)
{
	release_all(rx);
	rx->ndesc = collect(rx, 0);
	return rx->ndesc;
}

uint32_t rxr_more(mcr_rx *rx)
{
	rx->ndesc = collect(rx, rx->ndesc);
	return rx->ndesc;
}

void rxr_finish(mcr_rx *rx)
{
	if (!rx->ndesc)
		return;
	rx->st.frames += rx->ndesc;
	rx->st.batches++;
}

int rxr_sock_error(mcr_rx *rx)
{
	int e = 0;
	socklen_t el = sizeof(e);
	if (getsockopt(rx->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		return errno;
	return e;
}

void rxr_batch(const mcr_rx *rx, const struct mcr_rx_desc **desc, uint32_t *n, const uint8_t **base,
	       uint64_t *size)
{
	*desc = rx->desc;
	*n = rx->ndesc;
	*base = rx->map;
	*size = rx->map_len;
}
