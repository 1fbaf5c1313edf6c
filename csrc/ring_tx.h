/* SPDX-License-Identifier: MIT */
/*
 * ring_tx.h — private interface of the TPACKET_V2 TX ring used by fwd.c:
 * reserve a slot, commit it with a tag, kick once per batch, and learn the
 * outcome of every frame (sent, refused as too big, discarded) through the
 * owner's callback.
 *
 * Slot ownership (netsniff-ng's user_may_pull/kernel_may_pull, for TX):
 *
 *   AVAILABLE ──user fills, commit──▶ SEND_REQUEST ──kernel takes it in a kick──▶
 *   SENDING (skb in flight) ──skb freed──▶ AVAILABLE
 *
 * The kernel consumes SEND_REQUEST slots strictly in ring order, and only
 * inside our own sendto() (tpacket_snd), so between kicks the slots from
 * `tail` to `head` that still read SEND_REQUEST are exactly what the kernel
 * has not taken yet: its own head equals our `tail`. That is what makes
 * discarding safe: after a failed kick (link down), the queued slots are put
 * back to AVAILABLE and `head` rewinds to `tail`.
 *
 * With PACKET_LOSS the kernel silently marks a frame it refuses (larger than
 * the device MTU + link header) AVAILABLE without sending it; sendto()
 * returns the bytes of the frames it did send, so a kick whose consumed
 * frames add up to more than that return value had refusals. The ring then
 * re-reads the MTU and reports the frames above it as TXR_TOO_BIG.
 */
#ifndef MCR_RING_TX_H
#define MCR_RING_TX_H

#include "common.h"

#define MCR_TX_MAGIC 0x6d637274u /* "mcrt" */

/* Offset of frame data in a slot (TPACKET2_HDRLEN - sizeof(sockaddr_ll)). */
#define MCR_TX_DATA_OFF 32u

/* Link-layer header the kernel allows on top of the MTU (Ethernet). */
#define MCR_TX_LL_HLEN 14u

/* While the link is down, re-read its flags at most this often. */
#define MCR_TX_PROBE_NS 50000000ull

/* What happened to one committed frame. */
enum txr_outcome {
	TXR_SENT = 0,	   /* the kernel took it */
	TXR_TOO_BIG = 1,   /* the kernel refused it: larger than the MTU (PACKET_LOSS) */
	TXR_LINK_DOWN = 2, /* discarded: the link went down or away before it left */
	TXR_ERROR = 3,	   /* discarded: a kick failed with another error */
};

/* Called once per committed frame, in ring order, with the tag and aux value
 * given to txr_commit(). */
typedef void (*txr_done_fn)(void *ctx, uint32_t tag, uint32_t aux, enum txr_outcome o);
/* Called by mcr_tx_close() so the owner forgets the ring. */
typedef void (*txr_detach_fn)(void *ctx, struct mcr_tx *tx);

struct mcr_tx {
	uint32_t magic;
	int fd; /* -1 for a memory-only ring (tests) */
	uint8_t *map;
	size_t map_len;
	uint32_t frame_size, frame_count;
	uint32_t head;	   /* next slot to fill */
	uint32_t tail;	   /* oldest committed slot the kernel has not taken */
	uint32_t queued;   /* committed slots from tail to head */
	uint32_t unkicked; /* committed (or retried) since the last completed kick */
	uint32_t mtu;
	uint32_t ifindex;
	uint32_t max_frame;	   /* largest frame accepted: min(14 + mtu, slot room) */
	uint32_t link_flags;	   /* IFF_* last known */
	int32_t down;		   /* 0 = link usable, else the errno that says why not */
	int32_t down_by_kick;	   /* down was found by a failed kick (so probe for recovery) */
	int32_t last_err;	   /* errno of the last failed kick (0 = none yet) */
	uint64_t last_progress_ns; /* last time a kick took frames, or the ring was empty */
	uint64_t next_probe_ns;
	uint32_t *tags;	  /* per slot: tag given to txr_commit() */
	uint32_t *aux;	  /* per slot: aux value given to txr_commit() */
	txr_done_fn done; /* owner callbacks (fwd.c), may be NULL */
	txr_detach_fn detach;
	void *owner;
	/* Kick hook: the real sendto() by default; tests replace it to play the
	 * kernel. Returns bytes sent (>= 0) or -errno. */
	long (*send)(struct mcr_tx *tx);
	struct mcr_tx_stats st;
};

/* Data area of the next free slot (its room in *room), or NULL when the
 * ring is full. */
uint8_t *txr_slot(struct mcr_tx *tx, uint32_t *room);
/* True when the next n slots are free (a set of fragments fits). */
int txr_has_room(const struct mcr_tx *tx, uint32_t n);
/* Hand the slot returned by txr_slot() to the kernel with len bytes; tag and
 * aux come back in the done callback. */
void txr_commit(struct mcr_tx *tx, uint32_t len, uint32_t tag, uint32_t aux);
/*
 * One sendto() if anything is waiting, then report what the kernel took.
 * EAGAIN/ENOBUFS/EINTR: frames stay queued, retried by the next kick or
 * txr_service(). Any other error discards what is queued (TXR_LINK_DOWN and
 * the ring marked down for ENETDOWN/ENXIO/ENODEV, TXR_ERROR otherwise) so a
 * failing link can never wedge the ring. Returns 0 or the -errno of a
 * failed kick.
 */
int txr_kick(struct mcr_tx *tx);
/* Discard every queued frame with outcome `why` (slots back to AVAILABLE,
 * head rewound). Returns how many. Only between kicks (single thread). */
uint32_t txr_discard(struct mcr_tx *tx, enum txr_outcome why);
/*
 * Housekeeping between batches: retry an incomplete kick, and while the ring
 * is down re-read the link flags (at most every MCR_TX_PROBE_NS) so it comes
 * back by itself. Returns the number of frames still queued.
 */
uint32_t txr_service(struct mcr_tx *tx, uint64_t now_ns);
/* New link facts (rtnetlink IFF_* flags, MTU; 0 keeps the MTU): IFF_UP and
 * IFF_LOWER_UP (carrier) mean usable; anything else discards the queue and
 * marks the ring down. */
void txr_set_link(struct mcr_tx *tx, uint32_t flags, uint32_t mtu);
/* Set (or, with owner NULL, clear) the owner and its callbacks. */
void txr_set_owner(struct mcr_tx *tx, void *owner, txr_done_fn done, txr_detach_fn detach);

/* CLOCK_MONOTONIC in ns. */
uint64_t txr_now_ns(void);

/* Test hook: a ring in anonymous memory with no socket (the default kick
 * fails with EBADF; replace tx->send to play the kernel). Close with
 * mcr_tx_close(). */
int txr_open_mem(uint32_t frame_size, uint32_t frame_count, uint32_t mtu, struct mcr_tx **out);

#endif /* MCR_RING_TX_H */
