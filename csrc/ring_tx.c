/* SPDX-License-Identifier: MIT */
/*
 * ring_tx.c — TPACKET_V2 TX ring (PACKET_TX_RING), netsniff-ng style, that
 * survives its link: every committed frame gets exactly one outcome (sent,
 * too big, discarded because the link went down, discarded after a kick
 * error), reported to the owner in ring order; a kick that fails for good
 * discards the queue instead of leaving it to wedge the ring; a ring that is
 * down probes its link and comes back by itself. See ring_tx.h for the slot
 * ownership rules this relies on.
 *
 * The socket uses protocol 0 so it never receives anything. PACKET_LOSS is
 * set before the ring is created so a malformed frame is dropped instead of
 * stalling the ring.
 */
#include "ring_tx.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* IFF_LOWER_UP (carrier) is in rtnetlink's 32-bit flags, not in <net/if.h>'s
 * 16-bit SIOCGIFFLAGS ones. */
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif
/* Link flags that make a device usable for sending: administratively up
 * and with carrier. (IFF_RUNNING, the operational state, lags the carrier
 * by up to a second: linkwatch applies it later.) */
#define LINK_USABLE (IFF_UP | IFF_LOWER_UP)

static inline struct tpacket2_hdr *slot_hdr(struct mcr_tx *tx, uint32_t i)
{
	return (struct tpacket2_hdr *)(tx->map + (size_t)i * tx->frame_size);
}

static inline uint32_t slot_status(struct mcr_tx *tx, uint32_t i)
{
	return __atomic_load_n(&slot_hdr(tx, i)->tp_status, __ATOMIC_ACQUIRE);
}

/* The kernel has taken the slot (SENDING, or already AVAILABLE again, or
 * WRONG_FORMAT without PACKET_LOSS): user may reclaim its bookkeeping. */
static inline int kernel_took(uint32_t st)
{
	return !(st & TP_STATUS_SEND_REQUEST);
}

/* The slot may be filled by the user. */
static inline int user_may_fill(uint32_t st)
{
	return st == TP_STATUS_AVAILABLE || (st & TP_STATUS_WRONG_FORMAT);
}

static inline uint32_t next_slot(const struct mcr_tx *tx, uint32_t i)
{
	return i + 1 == tx->frame_count ? 0 : i + 1;
}

uint64_t txr_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t max_frame_of(const struct mcr_tx *tx)
{
	uint32_t room = tx->frame_size - MCR_TX_DATA_OFF;
	uint32_t lim = MCR_TX_LL_HLEN + tx->mtu;
	return lim < room ? lim : room;
}

uint8_t *txr_slot(struct mcr_tx *tx, uint32_t *room)
{
	if (tx->queued == tx->frame_count || !user_may_fill(slot_status(tx, tx->head)))
		return NULL; /* SEND_REQUEST or SENDING: ring full */
	*room = tx->max_frame;
	return (uint8_t *)slot_hdr(tx, tx->head) + MCR_TX_DATA_OFF;
}

int txr_has_room(const struct mcr_tx *tx, uint32_t n)
{
	if (n > tx->frame_count - tx->queued)
		return 0;
	uint32_t i = tx->head;
	for (uint32_t k = 0; k < n; k++) {
		if (!user_may_fill(slot_status((struct mcr_tx *)tx, i)))
			return 0;
		i = next_slot(tx, i);
	}
	return 1;
}

void txr_commit(struct mcr_tx *tx, uint32_t len, uint32_t tag, uint32_t aux)
{
	struct tpacket2_hdr *h = slot_hdr(tx, tx->head);
	h->tp_len = len;
	h->tp_snaplen = len;
	tx->tags[tx->head] = tag;
	tx->aux[tx->head] = aux;
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	tx->head = next_slot(tx, tx->head);
	if (tx->queued++ == 0)
		tx->last_progress_ns = txr_now_ns(); /* the wait of this frame starts now */
	tx->unkicked++;
	tx->st.frames++;
}

static void report(struct mcr_tx *tx, uint32_t slot, enum txr_outcome o)
{
	if (tx->done)
		tx->done(tx->owner, tx->tags[slot], tx->aux[slot], o);
}

/* Re-read flags and MTU of the ring's interface (ioctl on the ring socket).
 * Returns 0, or -errno (ENXIO/ENODEV when the interface is gone). */
static int read_link(struct mcr_tx *tx, uint32_t *flags, uint32_t *mtu)
{
	if (tx->fd < 0)
		return -EBADF;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifindex = (int)tx->ifindex;
	if (ioctl(tx->fd, SIOCGIFNAME, &ifr) < 0)
		return -errno;
	if (ioctl(tx->fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	*flags = (uint32_t)(uint16_t)ifr.ifr_flags;
	/* no carrier bit here: the operational state stands in for it */
	if (*flags & IFF_RUNNING)
		*flags |= IFF_LOWER_UP;
	if (ioctl(tx->fd, SIOCGIFMTU, &ifr) < 0)
		return -errno;
	*mtu = (uint32_t)ifr.ifr_mtu;
	return 0;
}

static void set_mtu(struct mcr_tx *tx, uint32_t mtu)
{
	if (!mtu)
		return;
	if (mtu != tx->mtu)
		tx->st.mtu_changes++;
	tx->mtu = mtu;
	tx->max_frame = max_frame_of(tx);
}

/*
 * Account for what the last kick took: the slots from tail that no longer
 * read SEND_REQUEST. sent_bytes is sendto()'s return value, or -1 when it is
 * not known (a kick that ended in EAGAIN/ENOBUFS after sending some).
 */
static void reap(struct mcr_tx *tx, long sent_bytes)
{
	uint32_t n = 0, i = tx->tail;
	uint64_t bytes = 0;
	while (n < tx->queued && kernel_took(slot_status(tx, i))) {
		bytes += slot_hdr(tx, i)->tp_len;
		n++;
		i = next_slot(tx, i);
	}
	if (!n)
		return;
	/* PACKET_LOSS refusals: fewer bytes sent than taken. The only refusal
	 * for frames we built is "longer than MTU + link header": re-read the
	 * MTU and charge the frames above it. */
	uint32_t limit = UINT32_MAX;
	if (sent_bytes >= 0 && bytes > (uint64_t)sent_bytes) {
		uint32_t flags, mtu;
		if (read_link(tx, &flags, &mtu) == 0)
			set_mtu(tx, mtu);
		limit = MCR_TX_LL_HLEN + tx->mtu;
	}
	i = tx->tail;
	for (uint32_t k = 0; k < n; k++) {
		if (slot_hdr(tx, i)->tp_len > limit) {
			tx->st.too_big++;
			report(tx, i, TXR_TOO_BIG);
		} else {
			tx->st.sent++;
			report(tx, i, TXR_SENT);
		}
		i = next_slot(tx, i);
	}
	tx->tail = i;
	tx->queued -= n;
	tx->last_progress_ns = txr_now_ns();
}

uint32_t txr_discard(struct mcr_tx *tx, enum txr_outcome why)
{
	uint32_t n = tx->queued, i = tx->tail;
	for (uint32_t k = 0; k < n; k++) {
		report(tx, i, why);
		__atomic_store_n(&slot_hdr(tx, i)->tp_status, TP_STATUS_AVAILABLE,
				 __ATOMIC_RELEASE);
		i = next_slot(tx, i);
	}
	tx->st.discarded += n;
	tx->head = tx->tail;
	tx->queued = 0;
	tx->unkicked = 0;
	return n;
}

static void set_down(struct mcr_tx *tx, int why)
{
	if (!tx->down)
		tx->st.link_changes++;
	tx->down = why;
	tx->down_by_kick = 0;
	tx->next_probe_ns = txr_now_ns() + MCR_TX_PROBE_NS;
	txr_discard(tx, TXR_LINK_DOWN);
}

void txr_set_link(struct mcr_tx *tx, uint32_t flags, uint32_t mtu)
{
	tx->link_flags = flags;
	set_mtu(tx, mtu);
	tx->down_by_kick = 0;
	if ((flags & LINK_USABLE) == LINK_USABLE) {
		if (tx->down) {
			tx->down = 0;
			tx->st.link_changes++;
			tx->last_progress_ns = txr_now_ns();
		}
		return;
	}
	if (!tx->down || tx->down != ((flags & IFF_UP) ? ENOLINK : ENETDOWN))
		set_down(tx, (flags & IFF_UP) ? ENOLINK : ENETDOWN);
}

static int is_link_error(int e)
{
	return e == ENETDOWN || e == ENXIO || e == ENODEV;
}

int txr_kick(struct mcr_tx *tx)
{
	if (!tx->unkicked)
		return 0;
	if (tx->down) { /* nothing should have been committed; never queue behind a dead link */
		txr_discard(tx, TXR_LINK_DOWN);
		return -tx->down;
	}
	tx->st.kicks++;
	long r = tx->send(tx);
	if (r >= 0) {
		reap(tx, r);
		/* sendto() stops early when the socket's send buffer is full */
		tx->unkicked = tx->queued ? 1 : 0;
		return 0;
	}
	int e = (int)-r;
	if (e == EAGAIN || e == ENOBUFS || e == EINTR) {
		reap(tx, -1);
		tx->unkicked = tx->queued ? 1 : 0; /* retried by the next kick or txr_service() */
		return 0;
	}
	tx->st.kick_errors++;
	tx->last_err = e;
	reap(tx, -1);
	if (is_link_error(e)) {
		set_down(tx, e);
		tx->down_by_kick = 1; /* nobody may tell us when it is back: probe */
	} else
		txr_discard(tx, TXR_ERROR);
	return -e;
}

uint32_t txr_service(struct mcr_tx *tx, uint64_t now_ns)
{
	if (tx->down) {
		if (tx->down_by_kick && tx->fd >= 0 && now_ns >= tx->next_probe_ns) {
			uint32_t flags = 0, mtu = 0;
			int r = read_link(tx, &flags, &mtu);
			tx->next_probe_ns = now_ns + MCR_TX_PROBE_NS;
			if (r == 0 && (flags & LINK_USABLE) == LINK_USABLE)
				txr_set_link(tx, flags, mtu);
			else if (r < 0 && is_link_error(-r))
				tx->down = ENXIO;
		}
	} else if (tx->unkicked) {
		(void)txr_kick(tx);
	}
	return tx->queued;
}

void txr_set_owner(struct mcr_tx *tx, void *owner, txr_done_fn done, txr_detach_fn detach)
{
	tx->owner = owner;
	tx->done = owner ? done : NULL;
	tx->detach = owner ? detach : NULL;
}

static long socket_send(struct mcr_tx *tx)
{
	ssize_t r = sendto(tx->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
	return r < 0 ? -(long)errno : (long)r;
}

static long no_send(struct mcr_tx *tx)
{
	MCR_UNUSED(tx);
	return -EBADF;
}

/* Allocate the handle and its per-slot bookkeeping (map not set). */
static struct mcr_tx *tx_alloc(uint32_t frame_size, uint32_t frame_count, uint32_t mtu)
{
	struct mcr_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return NULL;
	tx->tags = calloc(frame_count, sizeof(uint32_t));
	tx->aux = calloc(frame_count, sizeof(uint32_t));
	if (!tx->tags || !tx->aux) {
		free(tx->tags);
		free(tx->aux);
		free(tx);
		return NULL;
	}
	tx->magic = MCR_TX_MAGIC;
	tx->fd = -1;
	tx->map = MAP_FAILED;
	tx->frame_size = frame_size;
	tx->frame_count = frame_count;
	tx->mtu = mtu;
	tx->link_flags = LINK_USABLE | IFF_RUNNING;
	tx->send = socket_send;
	tx->last_progress_ns = txr_now_ns();
	return tx;
}

static void tx_free(struct mcr_tx *tx)
{
	if (tx->map != MAP_FAILED)
		munmap(tx->map, tx->map_len);
	if (tx->fd >= 0)
		close(tx->fd);
	free(tx->tags);
	free(tx->aux);
	tx->magic = 0;
	free(tx);
}

int txr_open_mem(uint32_t frame_size, uint32_t frame_count, uint32_t mtu, struct mcr_tx **out)
{
	struct mcr_tx *tx = tx_alloc(frame_size, frame_count, mtu);
	if (!tx)
		return -ENOMEM;
	tx->send = no_send;
	tx->map_len = (size_t)frame_size * frame_count;
	tx->map =
		mmap(NULL, tx->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tx->map == MAP_FAILED) {
		int e = errno;
		tx_free(tx);
		return -e;
	}
	tx->max_frame = max_frame_of(tx);
	live_inc();
	*out = tx;
	return 0;
}

int mcr_tx_open(const struct mcr_tx_config *cfg, mcr_tx **out, char *err, size_t errlen)
{
	char name[IFNAMSIZ] = "?";
	int rc;

	if (!cfg || !out)
		return lib_err(err, errlen, EINVAL, "mcr_tx_open: NULL argument");
	*out = NULL;
	rc = ifname_of(cfg->ifindex, name, err, errlen);
	if (rc < 0)
		return rc;
	uint32_t mtu = cfg->mtu_hint;
	if (!mtu) {
		rc = ifmtu_of(cfg->ifindex, &mtu, err, errlen);
		if (rc < 0)
			return rc;
	}
	uint32_t fs = cfg->frame_size;
	if (!fs) {
		uint32_t want = MCR_TX_DATA_OFF + 14u + 4u + (mtu > 65536u ? 65536u : mtu);
		fs = pow2_ceil(want < 2048u ? 2048u : want);
	}
	if (fs < 128 || fs % TPACKET_ALIGNMENT)
		return lib_err(err, errlen, EINVAL, "TX ring on %s: bad frame_size %u", name, fs);
	uint32_t fc = cfg->frame_count;
	if (!fc) { /* 1024 slots, but keep jumbo/loopback rings under 32 MiB */
		fc = (32u << 20) / fs;
		fc = fc > 1024u ? 1024u : fc < 64u ? 64u : fc;
	}
	long page = sysconf(_SC_PAGESIZE);
	uint32_t bs = fs;
	if (bs < (uint32_t)page)
		bs = (uint32_t)page;
	bs = (bs + (uint32_t)page - 1) & ~((uint32_t)page - 1);
	uint32_t per_block = bs / fs;
	uint32_t blocks = (fc + per_block - 1) / per_block;
	fc = blocks * per_block;

	struct mcr_tx *tx = tx_alloc(fs, fc, mtu);
	if (!tx)
		return lib_err(err, errlen, ENOMEM, "mcr_tx_open: calloc");
	tx->ifindex = cfg->ifindex;

	tx->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (tx->fd < 0) {
		rc = lib_err(err, errlen, errno, "socket(AF_PACKET, SOCK_RAW) for TX on %s%s", name,
			     errno == EPERM ? " (needs CAP_NET_RAW)" : "");
		goto fail;
	}
	int v = TPACKET_V2;
	if (setsockopt(tx->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
		rc = lib_err(err, errlen, errno, "PACKET_VERSION V2 (TX on %s)", name);
		goto fail;
	}
	v = 1;
	if (setsockopt(tx->fd, SOL_PACKET, PACKET_LOSS, &v, sizeof(v)) < 0) {
		rc = lib_err(err, errlen, errno, "PACKET_LOSS (TX on %s)", name);
		goto fail;
	}
	if (cfg->flags & MCR_TX_QDISC_BYPASS) {
		v = 1;
		if (setsockopt(tx->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v)) < 0) {
			rc = lib_err(err, errlen, errno, "PACKET_QDISC_BYPASS (TX on %s)", name);
			goto fail;
		}
	}
	struct tpacket_req req = {
		.tp_block_size = bs, .tp_block_nr = blocks, .tp_frame_size = fs, .tp_frame_nr = fc
	};
	if (setsockopt(tx->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
		rc = lib_err(err, errlen, errno,
			     "PACKET_TX_RING on %s (block %u x %u, frame %u x %u)", name, bs,
			     blocks, fs, fc);
		goto fail;
	}
	tx->map_len = (size_t)bs * blocks;
	tx->map = mmap(NULL, tx->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, tx->fd, 0);
	if (tx->map == MAP_FAILED) {
		rc = lib_err(err, errlen, errno, "mmap TX ring on %s (%zu bytes)", name,
			     tx->map_len);
		goto fail;
	}
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = 0;
	sll.sll_ifindex = (int)cfg->ifindex;
	if (bind(tx->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		rc = lib_err(err, errlen, errno, "bind TX socket to %s (ifindex %u)", name,
			     cfg->ifindex);
		goto fail;
	}
	tx->max_frame = max_frame_of(tx);
	uint32_t flags = 0, cur_mtu = 0;
	/* A ring opened on an administratively down link starts down and probes
	 * for it to come up; carrier is the link monitor's to report
	 * (mcr_tx_set_link), the 16-bit ioctl flags cannot tell it. */
	if (read_link(tx, &flags, &cur_mtu) == 0 && !(flags & IFF_UP)) {
		set_down(tx, ENETDOWN);
		tx->down_by_kick = 1;
	}
	tx->st.link_changes = 0;
	tx->st.mtu_changes = 0;
	live_inc();
	*out = tx;
	return 0;
fail:
	tx_free(tx);
	return rc;
}

int mcr_tx_drain(mcr_tx *tx, int32_t timeout_ms)
{
	if (!tx || tx->magic != MCR_TX_MAGIC)
		return -EINVAL;
	uint64_t t0 = txr_now_ns();
	for (;;) {
		if (tx->queued == 0 || tx->down || tx->fd < 0)
			return (int)tx->queued;
		tx->unkicked = 1; /* force a kick: a previous one may have hit EAGAIN */
		(void)txr_kick(tx);
		if (tx->queued == 0)
			return 0;
		if ((int64_t)(txr_now_ns() - t0) >= (int64_t)timeout_ms * 1000000)
			return (int)tx->queued;
		struct timespec d = { 0, 200000 };
		nanosleep(&d, NULL);
	}
}

int mcr_tx_set_link(mcr_tx *tx, uint32_t flags, uint32_t mtu)
{
	if (!tx || tx->magic != MCR_TX_MAGIC)
		return -EINVAL;
	txr_set_link(tx, flags, mtu);
	return 0;
}

int mcr_tx_stats(mcr_tx *tx, struct mcr_tx_stats *out)
{
	if (!tx || !out)
		return -EINVAL;
	*out = tx->st;
	out->queued = tx->queued;
	out->mtu = tx->mtu;
	out->down = tx->down;
	out->last_err = tx->last_err;
	out->link_flags = tx->link_flags;
	uint64_t waited = tx->queued ? txr_now_ns() - tx->last_progress_ns : 0;
	out->stalled_ms =
		(uint32_t)(waited / 1000000u > UINT32_MAX ? UINT32_MAX : waited / 1000000u);
	out->frame_room = tx->frame_size - MCR_TX_DATA_OFF;
	return 0;
}

int mcr_tx_discard(mcr_tx *tx)
{
	if (!tx || tx->magic != MCR_TX_MAGIC)
		return -EINVAL;
	return (int)txr_discard(tx, tx->down ? TXR_LINK_DOWN : TXR_ERROR);
}

uint32_t mcr_tx_mtu(const mcr_tx *tx)
{
	return tx ? tx->mtu : 0;
}

int mcr_tx_close(mcr_tx *tx)
{
	if (!tx)
		return 0;
	if (tx->queued) {
		if (!tx->down && tx->fd >= 0) {
			tx->unkicked = 1;
			(void)txr_kick(tx);
		}
		/* what the kernel did not take will never leave: say so */
		txr_discard(tx, tx->down ? TXR_LINK_DOWN : TXR_ERROR);
	}
	if (tx->detach)
		tx->detach(tx->owner, tx);
	tx_free(tx);
	live_dec();
	return 0;
}
