/* SPDX-License-Identifier: MIT */
/*
 * ring_tx.c — TPACKET_V2 TX ring (PACKET_TX_RING), netsniff-ng style.
 *
 * The socket uses protocol 0 so it never receives anything. PACKET_LOSS is
 * set before the ring is created so a malformed frame is dropped instead of
 * stalling the ring. fwd.c fills slots and kicks once per batch with
 * sendto(MSG_DONTWAIT); frames stay SEND_REQUEST until the next kick if the
 * kernel is short of buffers.
 */
#include "ring_tx.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline struct tpacket2_hdr *slot_hdr(struct mcr_tx *tx, uint32_t i)
{
	return (struct tpacket2_hdr *)(tx->map + (size_t)i * tx->frame_size);
}

uint8_t *txr_slot(struct mcr_tx *tx, uint32_t *room)
{
	struct tpacket2_hdr *h = slot_hdr(tx, tx->head);
	uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
	if (st != TP_STATUS_AVAILABLE) {
		if (!(st & TP_STATUS_WRONG_FORMAT))
			return NULL; /* SEND_REQUEST or SENDING: ring full */
		tx->st.rejected++;
		__atomic_store_n(&h->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELAXED);
	}
	*room = tx->max_frame;
	return (uint8_t *)h + MCR_TX_DATA_OFF;
}

void txr_commit(struct mcr_tx *tx, uint32_t len)
{
	struct tpacket2_hdr *h = slot_hdr(tx, tx->head);
	h->tp_len = len;
	h->tp_snaplen = len;
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	tx->head = tx->head + 1 == tx->frame_count ? 0 : tx->head + 1;
	tx->pending++;
	tx->st.frames++;
}

int txr_kick(struct mcr_tx *tx)
{
	if (!tx->pending)
		return 0;
	tx->st.kicks++;
	tx->pending = 0;
	if (sendto(tx->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
		int e = errno;
		if (e == EAGAIN || e == ENOBUFS || e == EINTR) {
			tx->pending = 1; /* frames stay queued; kick again next time */
			return 0;
		}
		tx->st.kick_errors++;
		return -e;
	}
	return 0;
}

static uint32_t max_frame_of(const struct mcr_tx *tx)
{
	uint32_t room = tx->frame_size - MCR_TX_DATA_OFF;
	uint32_t lim = 14u + tx->mtu;
	return lim < room ? lim : room;
}

int txr_open_mem(uint32_t frame_size, uint32_t frame_count, uint32_t mtu, struct mcr_tx **out)
{
	struct mcr_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	tx->magic = MCR_TX_MAGIC;
	tx->fd = -1;
	tx->frame_size = frame_size;
	tx->frame_count = frame_count;
	tx->mtu = mtu;
	tx->map_len = (size_t)frame_size * frame_count;
	tx->map = mmap(NULL, tx->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tx->map == MAP_FAILED) {
		int e = errno;
		free(tx);
		return -e;
	}
	tx->max_frame = max_frame_of(tx);
	mcr_live_inc();
	*out = tx;
	return 0;
}

int mcr_tx_open(const struct mcr_tx_config *cfg, mcr_tx **out, char *err, size_t errlen)
{
	char name[IFNAMSIZ] = "?";
	int rc;

	if (!cfg || !out)
		return mcr_err(err, errlen, EINVAL, "mcr_tx_open: NULL argument");
	*out = NULL;
	rc = mcr_ifname(cfg->ifindex, name, err, errlen);
	if (rc < 0)
		return rc;
	uint32_t mtu = cfg->mtu_hint;
	if (!mtu) {
		rc = mcr_ifmtu(cfg->ifindex, &mtu, err, errlen);
		if (rc < 0)
			return rc;
	}
	uint32_t fs = cfg->frame_size;
	if (!fs) {
		uint32_t want = MCR_TX_DATA_OFF + 14u + 4u + (mtu > 65536u ? 65536u : mtu);
		fs = mcr_pow2(want < 2048u ? 2048u : want);
	}
	if (fs < 128 || fs % TPACKET_ALIGNMENT)
		return mcr_err(err, errlen, EINVAL, "TX ring on %s: bad frame_size %u", name, fs);
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

	struct mcr_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return mcr_err(err, errlen, ENOMEM, "mcr_tx_open: calloc");
	tx->magic = MCR_TX_MAGIC;
	tx->map = MAP_FAILED;
	tx->ifindex = cfg->ifindex;
	tx->mtu = mtu;
	tx->frame_size = fs;
	tx->frame_count = fc;

	tx->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (tx->fd < 0) {
		rc = mcr_err(err, errlen, errno,
			     "socket(AF_PACKET, SOCK_RAW) for TX on %s%s", name,
			     errno == EPERM ? " (needs CAP_NET_RAW)" : "");
		goto fail;
	}
	int v = TPACKET_V2;
	if (setsockopt(tx->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0) {
		rc = mcr_err(err, errlen, errno, "PACKET_VERSION V2 (TX on %s)", name);
		goto fail;
	}
	v = 1;
	if (setsockopt(tx->fd, SOL_PACKET, PACKET_LOSS, &v, sizeof(v)) < 0) {
		rc = mcr_err(err, errlen, errno, "PACKET_LOSS (TX on %s)", name);
		goto fail;
	}
	if (cfg->flags & MCR_TX_QDISC_BYPASS) {
		v = 1;
		if (setsockopt(tx->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v)) < 0) {
			rc = mcr_err(err, errlen, errno, "PACKET_QDISC_BYPASS (TX on %s)", name);
			goto fail;
		}
	}
	struct tpacket_req req = {
		.tp_block_size = bs, .tp_block_nr = blocks, .tp_frame_size = fs, .tp_frame_nr = fc};
	if (setsockopt(tx->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
		rc = mcr_err(err, errlen, errno,
			     "PACKET_TX_RING on %s (block %u x %u, frame %u x %u)", name, bs, blocks,
			     fs, fc);
		goto fail;
	}
	tx->map_len = (size_t)bs * blocks;
	tx->map = mmap(NULL, tx->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, tx->fd, 0);
	if (tx->map == MAP_FAILED) {
		rc = mcr_err(err, errlen, errno, "mmap TX ring on %s (%zu bytes)", name, tx->map_len);
		goto fail;
	}
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = 0;
	sll.sll_ifindex = (int)cfg->ifindex;
	if (bind(tx->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		rc = mcr_err(err, errlen, errno, "bind TX socket to %s (ifindex %u)", name,
			     cfg->ifindex);
		goto fail;
	}
	tx->max_frame = max_frame_of(tx);
	mcr_live_inc();
	*out = tx;
	return 0;
fail:
	if (tx->map != MAP_FAILED)
		munmap(tx->map, tx->map_len);
	if (tx->fd >= 0)
		close(tx->fd);
	free(tx);
	return rc;
}

int mcr_tx_drain(mcr_tx *tx, int32_t timeout_ms)
{
	if (!tx || tx->magic != MCR_TX_MAGIC)
		return -EINVAL;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint32_t busy = 0;
		for (uint32_t i = 0; i < tx->frame_count; i++) {
			uint32_t st = __atomic_load_n(&slot_hdr(tx, i)->tp_status, __ATOMIC_ACQUIRE);
			if (st & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING))
				busy++;
		}
		if (busy == 0 || tx->fd < 0)
			return (int)busy;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= timeout_ms)
			return (int)busy;
		tx->pending = 1; /* force a kick: a previous one may have hit EAGAIN */
		(void)txr_kick(tx);
		struct timespec d = {0, 200000};
		nanosleep(&d, NULL);
	}
}

int mcr_tx_stats(mcr_tx *tx, struct mcr_tx_stats *out)
{
	if (!tx || !out)
		return -EINVAL;
	*out = tx->st;
	return 0;
}

uint32_t mcr_tx_mtu(const mcr_tx *tx)
{
	return tx ? tx->mtu : 0;
}

int mcr_tx_close(mcr_tx *tx)
{
	if (!tx)
		return 0;
	if (tx->fd >= 0 && tx->pending)
		(void)txr_kick(tx);
	if (tx->map && tx->map != MAP_FAILED)
		munmap(tx->map, tx->map_len);
	if (tx->fd >= 0)
		close(tx->fd);
	tx->magic = 0;
	free(tx);
	mcr_live_dec();
	return 0;
}
