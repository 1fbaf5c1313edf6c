/* SPDX-License-Identifier: MIT */
/*
 * test_fwd.c — forwarder bookkeeping on a synthetic RX batch and a
 * memory-only TX ring (no sockets, no root): descriptor validation and
 * counters, frames written into TX slots, ring-full and WRONG_FORMAT handling,
 * ABI struct sizes, BPF programs accepted by the kernel, and the live-object
 * counter returning to zero.
 */
#include "t.h"
#include "bpf.h"
#include "frame.h"
#include "fwd.h"
#include "ring_tx.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint8_t ring[16384];

/* Put an Ethernet/IPv4/UDP frame with plen payload bytes at off. */
static uint32_t put_frame(uint32_t off, uint32_t plen)
{
	uint8_t *f = ring + off;
	memset(f, 0, 42);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *u = ip + 20;
	ip[0] = 0x45;
	ip[8] = 5;
	ip[9] = 17;
	uint32_t sa = htonl(0x0a000001), da = htonl(0xef010101);
	memcpy(ip + 12, &sa, 4);
	memcpy(ip + 16, &da, 4);
	wr16(u, 1234);
	wr16(u + 2, 5000);
	wr16(u + 4, (uint16_t)(8 + plen));
	for (uint32_t i = 0; i < plen; i++)
		u[8 + i] = (uint8_t)i;
	wr16(u + 6, csum_udp_full(sa, da, u, 8 + plen));
	return 42 + plen;
}

static void set_desc(struct mcr_fwd_desc *d, uint32_t frame, uint32_t off, uint32_t plen,
		     uint32_t tmpl, uint32_t ttl)
{
	memset(d, 0, sizeof(*d));
	d->frame = frame;
	d->l3_offset = off + 14;
	d->payload_off = off + 42;
	d->payload_len = plen;
	d->tmpl = tmpl;
	d->ttl = ttl;
}

static struct tpacket2_hdr *slot(struct mcr_tx *tx, uint32_t i)
{
	return (struct tpacket2_hdr *)(tx->map + (size_t)i * tx->frame_size);
}

/* ---- a fake kernel for memory rings: takes SEND_REQUEST slots from the
 * kernel's head (= the ring's tail between kicks), refuses frames longer
 * than fake_mtu + 14 the way PACKET_LOSS does, then fails with fake_err
 * (after taking fake_take frames, -1 = all) or returns the bytes it sent. */
/* rtnetlink flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP */
#define UP_CARRIER (0x1u | 0x40u | 0x10000u)

static int fake_err;
static int fake_take = -1;
static uint32_t fake_mtu = 1500;

static long fake_send(struct mcr_tx *tx)
{
	if (fake_err == ENETDOWN || fake_err == ENXIO || fake_err == EPERM)
		return -fake_err; /* refused before taking anything */
	long bytes = 0;
	uint32_t i = tx->tail;
	for (int n = 0; fake_take < 0 || n < fake_take; n++) {
		struct tpacket2_hdr *h =
			(struct tpacket2_hdr *)(tx->map + (size_t)i * tx->frame_size);
		if (h->tp_status != TP_STATUS_SEND_REQUEST)
			break;
		if (h->tp_len <= 14 + fake_mtu)
			bytes += h->tp_len;
		h->tp_status = TP_STATUS_AVAILABLE;
		i = (i + 1) % tx->frame_count;
	}
	return fake_err ? -fake_err : bytes;
}

static void fake_reset(void)
{
	fake_err = 0;
	fake_take = -1;
	fake_mtu = 1500;
}

static struct mcr_template ring_tmpl(struct mcr_tx *tx)
{
	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	t.src_ip = htonl(0xc0a80001);
	t.dst_ip = htonl(0xef020202);
	t.dst_port = htons(6000);
	t.ttl = 7;
	t.tx = (uint64_t)(uintptr_t)tx;
	return t;
}

static void test_submit(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	fake_reset();
	REQUIRE(mcr_fwd_open(4, 32, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 8, 1500, &tx) == 0);
	CHECK_EQ(mcr_debug_live_objects(), 2);

	struct mcr_template t = ring_tmpl(tx);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	t.src_port = htons(999);
	REQUIRE(mcr_fwd_set_template(fwd, 2, &t, err, sizeof(err)) == 0);
	/* bad templates are refused */
	t.tx = 0;
	CHECK_EQ(mcr_fwd_set_template(fwd, 3, &t, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "TX handle") != NULL);
	CHECK_EQ(mcr_fwd_set_template(fwd, 4, &t, err, sizeof(err)), -EINVAL);
	t.kind = 77;
	CHECK_EQ(mcr_fwd_set_template(fwd, 3, &t, err, sizeof(err)), -EINVAL);

	struct mcr_rx_desc batch[3];
	memset(batch, 0, sizeof(batch));
	batch[0].offset = 100;
	batch[0].snaplen = put_frame(100, 100);
	batch[1].offset = 1000;
	batch[1].snaplen = 60; /* truncated capture of a 1000-byte payload */
	put_frame(1000, 1000);
	batch[2].offset = 4000;
	batch[2].snaplen = put_frame(4000, 1600); /* bigger than the TX MTU */

	struct mcr_fwd_desc *d = mcr_fwd_desc(fwd);
	set_desc(&d[0], 0, 100, 100, 0, 0);   /* valid -> tmpl 0 */
	set_desc(&d[1], 5, 100, 100, 0, 0);   /* frame out of range */
	set_desc(&d[2], 1, 1000, 1000, 0, 0); /* payload beyond snaplen */
	set_desc(&d[3], 0, 100, 100, 0, 0);
	d[3].payload_off = d[3].l3_offset + 27; /* payload inside the headers */
	set_desc(&d[4], 0, 100, 100, 1, 0);	/* UNUSED template */
	set_desc(&d[5], 0, 100, 100, 99, 0);	/* template out of range */
	set_desc(&d[6], 0, 100, 100, 0, 300);	/* TTL > 255 */
	set_desc(&d[7], 0, 100, 100, 2, 0);	/* valid -> tmpl 2, template TTL */
	set_desc(&d[8], 2, 4000, 1600, 0, 0);	/* too big for the MTU, no DF: 2 fragments */
	set_desc(&d[9], 0, 100, 100, 0, 0);
	d[9].l3_offset = 99;		       /* l3 before the frame */
	set_desc(&d[10], 0, 100, 100, 2, 200); /* valid, descriptor TTL */
	d[10].payload_len = 50;		       /* shorter than the UDP length: full csum */

	/* the kick fails (memory ring: EBADF): nothing may stay queued */
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 11), 4);
	struct mcr_out_counters *c = mcr_fwd_counters(fwd);
	CHECK_EQ(c[0].packets, 0);
	CHECK_EQ(c[0].errors, 5 + 2); /* 5 invalid descriptors + 2 discarded after the kick */
	CHECK_EQ(c[0].queued, 0);
	CHECK_EQ(c[2].errors, 2);
	CHECK_EQ(mcr_fwd_invalid(fwd), 2);
	struct mcr_tx_stats ts;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.frames, 5); /* 1 + 1 + 2 fragments + 1 */
	CHECK_EQ(ts.kicks, 1);	/* one kick per ring per submit */
	CHECK_EQ(ts.kick_errors, 1);
	CHECK_EQ(ts.last_err, EBADF);
	CHECK_EQ(ts.discarded, 5);
	CHECK_EQ(ts.queued, 0);
	CHECK_EQ(ts.down, 0); /* EBADF is no link problem */

	/* the same batch through a kernel that takes everything */
	tx->send = fake_send;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 11), 4);
	CHECK_EQ(c[0].packets, 2);
	CHECK_EQ(c[0].bytes, 1700);
	CHECK_EQ(c[0].fragmented, 1);
	CHECK_EQ(c[2].packets, 2);
	CHECK_EQ(c[2].bytes, 150);
	CHECK_EQ(c[0].queued + c[2].queued, 0);

	/* slot contents: the discard rewound the ring, so the second submit wrote
	 * slots 0 (d0), 1 (d7), 2-3 (fragments of d8), 4 (d10) */
	const uint8_t *f0 = (const uint8_t *)slot(tx, 0) + MCR_TX_DATA_OFF;
	const uint8_t *f1 = (const uint8_t *)slot(tx, 1) + MCR_TX_DATA_OFF;
	const uint8_t *f2 = (const uint8_t *)slot(tx, 4) + MCR_TX_DATA_OFF;
	CHECK_EQ(slot(tx, 0)->tp_len, 142);
	CHECK_EQ(slot(tx, 4)->tp_len, 92);
	CHECK_EQ(f0[14 + 8], 7);       /* template TTL */
	CHECK_EQ(rd16(f0 + 34), 1234); /* source port copied from the input */
	CHECK_EQ(rd16(f0 + 36), 6000);
	CHECK_EQ(rd16(f1 + 34), 999); /* template source port */
	CHECK_EQ(rd16(f0 + 18), 2);   /* ip id counters per template (2 datagrams before) */
	CHECK_EQ(rd16(f1 + 18), 2);
	CHECK_EQ(rd16(f2 + 18), 3);
	CHECK_EQ(f2[14 + 8], 200);    /* descriptor TTL */
	for (int k = 0; k < 3; k++) { /* every UDP checksum verifies */
		const uint8_t *f = k == 0 ? f0 : k == 1 ? f1 : f2;
		uint32_t ulen = rd16(f + 38);
		uint8_t ph[12];
		memcpy(ph, f + 26, 8);
		ph[8] = 0;
		ph[9] = 17;
		wr16(ph + 10, (uint16_t)ulen);
		CHECK_EQ(t_csum_naive(f + 34, ulen, t_csum_naive(ph, 12, 0)), 0xffff);
		CHECK_EQ((uint16_t)~t_csum_naive(f + 14, 20, 0), 0);
	}

	/* ring full: the kernel takes nothing (EAGAIN), 8 slots */
	fake_err = EAGAIN;
	fake_take = 0;
	for (uint32_t i = 0; i < 10; i++)
		set_desc(&d[i], 0, 100, 100, 0, 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 10), 8);
	CHECK_EQ(c[0].ring_full, 2);
	CHECK_EQ(c[0].queued, 8);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.ring_full, 2);
	CHECK_EQ(ts.queued, 8);
	/* still blocked: the next submit finds no room; service retries the kick */
	CHECK_EQ(mcr_fwd_service(fwd), 8);
	fake_reset();
	CHECK_EQ(mcr_fwd_service(fwd), 0);
	CHECK_EQ(c[0].packets, 2 + 8);
	CHECK_EQ(c[0].queued, 0);

	/* empty batch: everything is out of range */
	CHECK_EQ(fwd_submit_batch(fwd, batch, 0, ring, sizeof(ring), 1), 0);
	/* n larger than max_desc is clamped */
	CHECK(fwd_submit_batch(fwd, batch, 0, ring, sizeof(ring), 1000) == 0);

	/* clearing a template */
	memset(&t, 0, sizeof(t));
	CHECK_EQ(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)), 0);
	set_desc(&d[0], 0, 100, 100, 0, 0);
	uint64_t inv = mcr_fwd_invalid(fwd);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 1), 0);
	CHECK_EQ(mcr_fwd_invalid(fwd), inv + 1);

	CHECK_EQ(mcr_fwd_close(fwd), 0);
	CHECK_EQ(mcr_tx_close(tx), 0);
}

/* Finding: an output link down for 100 ms never sent again (the ring filled
 * with frames the kernel would not take, and nothing kicked it again). */
static void test_link_flap(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	fake_reset();
	REQUIRE(mcr_fwd_open(2, 64, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 8, 1500, &tx) == 0);
	tx->send = fake_send;
	struct mcr_template t = ring_tmpl(tx);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	struct mcr_rx_desc batch[1];
	memset(batch, 0, sizeof(batch));
	batch[0].offset = 100;
	batch[0].snaplen = put_frame(100, 100);
	struct mcr_fwd_desc *d = mcr_fwd_desc(fwd);
	for (uint32_t i = 0; i < 6; i++)
		set_desc(&d[i], 0, 100, 100, 0, 0);
	struct mcr_out_counters *c = mcr_fwd_counters(fwd);

	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 6);
	CHECK_EQ(c[0].packets, 6);

	/* a batch larger than the ring: kicked when full instead of dropping the rest */
	for (uint32_t i = 0; i < 20; i++)
		set_desc(&d[i], 0, 100, 100, 0, 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 20), 20);
	CHECK_EQ(c[0].packets, 26);
	CHECK_EQ(c[0].ring_full, 0);
	c[0].packets = 6; /* keep the arithmetic below as it was */

	/* the link goes down: the kick fails, the queue is discarded, not kept */
	fake_err = ENETDOWN;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 6);
	CHECK_EQ(c[0].link_down, 6);
	CHECK_EQ(c[0].queued, 0);
	struct mcr_tx_stats ts;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.down, ENETDOWN);
	CHECK_EQ(ts.queued, 0);
	CHECK_EQ(ts.link_changes, 1);
	/* while down: counted, never queued (many batches, more than the ring holds) */
	for (int k = 0; k < 5; k++)
		CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 0);
	CHECK_EQ(c[0].link_down, 6 + 30);
	CHECK_EQ(c[0].ring_full, 0);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.frames, 6 + 20 + 6);

	/* the link monitor says it is up again: forwarding resumes at once */
	fake_reset();
	CHECK_EQ(mcr_fwd_set_link(fwd, 0, UP_CARRIER, 0), 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 6);
	CHECK_EQ(c[0].packets, 12);
	CHECK_EQ(c[0].packets + c[0].link_down + c[0].ring_full + c[0].errors + c[0].queued, 6 * 8);

	/* no carrier: refused as link down until it is running again */
	CHECK_EQ(mcr_fwd_set_link(fwd, 0, 0x1 | 0x40, 0), 0); /* up, "running", no carrier */
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.down, ENOLINK);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 0);
	CHECK_EQ(c[0].link_down, 36 + 6);
	CHECK_EQ(mcr_fwd_set_link(fwd, 0, UP_CARRIER, 0), 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 6);
	CHECK_EQ(c[0].packets, 18);

	/* a kick error that is not about the link: queue discarded as errors */
	fake_err = EPERM;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 6);
	CHECK_EQ(c[0].errors, 6);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.down, 0);
	CHECK_EQ(ts.last_err, EPERM);
	fake_reset();
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 6), 6);
	CHECK_EQ(c[0].packets, 24);

	/* a stalled ring shows how long it has waited */
	fake_err = EAGAIN;
	fake_take = 0;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 2), 2);
	tx->last_progress_ns -= 2000000000ull;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK(ts.stalled_ms >= 2000);
	CHECK_EQ(ts.queued, 2);
	fake_reset();
	CHECK_EQ(mcr_fwd_service(fwd), 0);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.stalled_ms, 0);
	CHECK_EQ(ts.frames, ts.sent + ts.too_big + ts.discarded + ts.queued);

	CHECK_EQ(mcr_fwd_close(fwd), 0);
	CHECK_EQ(mcr_tx_close(tx), 0);
}

/* Finding: an output MTU lowered below the frame size was counted as sent
 * while the kernel dropped the frames (PACKET_LOSS). */
static void test_mtu(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	fake_reset();
	REQUIRE(mcr_fwd_open(2, 64, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 16, 1500, &tx) == 0);
	tx->send = fake_send;
	struct mcr_template t = ring_tmpl(tx);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	struct mcr_rx_desc batch[2];
	memset(batch, 0, sizeof(batch));
	batch[0].offset = 100;
	batch[0].snaplen = put_frame(100, 1000);
	batch[1].offset = 2000;
	batch[1].snaplen = put_frame(2000, 100);
	struct mcr_fwd_desc *d = mcr_fwd_desc(fwd);
	set_desc(&d[0], 0, 100, 1000, 0, 0);
	set_desc(&d[1], 1, 2000, 100, 0, 0);
	set_desc(&d[2], 0, 100, 1000, 0, 0);
	struct mcr_out_counters *c = mcr_fwd_counters(fwd);

	/* the MTU drops to 576 behind the ring's back: the kernel refuses the two
	 * 1042-byte frames, sendto() reports only the 142 bytes it sent */
	fake_mtu = 576;
	tx->mtu = 576; /* what the ring's MTU re-read (an ioctl on real rings) finds */
	CHECK_EQ(fwd_submit_batch(fwd, batch, 2, ring, sizeof(ring), 3), 3);
	CHECK_EQ(c[0].packets, 1);
	CHECK_EQ(c[0].too_big, 2);
	struct mcr_tx_stats ts;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.too_big, 2);
	CHECK_EQ(ts.sent, 1);

	/* once the ring knows the MTU, long datagrams leave as fragments */
	CHECK_EQ(mcr_fwd_set_link(fwd, 0, UP_CARRIER, 576), 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 2, ring, sizeof(ring), 3), 3);
	CHECK_EQ(c[0].packets, 4);
	CHECK_EQ(c[0].fragmented, 2);
	CHECK_EQ(c[0].bytes, 100 + 1000 + 100 + 1000);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.frames, 3 + 5); /* 2 fragments + 1 + 2 fragments */

	/* reassemble the first datagram's fragments (slots 3, 4) and check them */
	uint8_t dgram[2000];
	uint32_t got = 0, frags = 0;
	for (uint32_t i = 3; i <= 4; i++) {
		const uint8_t *f = (const uint8_t *)slot(tx, i) + MCR_TX_DATA_OFF;
		const uint8_t *ip = f + 14;
		CHECK(slot(tx, i)->tp_len <= 14 + 576);
		CHECK_EQ((uint16_t)~t_csum_naive(ip, 20, 0), 0);
		uint16_t fw = rd16(ip + 6);
		CHECK_EQ(rd16(ip + 4), rd16(((const uint8_t *)slot(tx, 3) + MCR_TX_DATA_OFF) + 18));
		uint32_t off = (fw & 0x1fffu) * 8u, n = rd16(ip + 2) - 20u;
		CHECK_EQ(!!(fw & 0x2000), i == 3); /* MF on all but the last */
		CHECK_EQ(fw & 0x4000, 0);
		CHECK(i == 4 || n % 8 == 0);
		memcpy(dgram + off, ip + 20, n);
		got += n;
		frags++;
	}
	CHECK_EQ(frags, 2);
	CHECK_EQ(got, 8 + 1000);
	CHECK_EQ(rd16(dgram + 4), 1008);
	for (uint32_t k = 0; k < 1000; k++)
		if (dgram[8 + k] != (uint8_t)k) {
			CHECK(!"fragment payload differs");
			break;
		}
	uint8_t ph[12];
	memcpy(ph, (const uint8_t *)slot(tx, 3) + MCR_TX_DATA_OFF + 26, 8);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, 1008);
	CHECK_EQ(t_csum_naive(dgram, 1008, t_csum_naive(ph, 12, 0)), 0xffff);

	/* DF set on the input: not fragmented, counted as too_big */
	ring[100 + 14 + 6] = 0x40;
	uint64_t tb = c[0].too_big;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 2, ring, sizeof(ring), 3), 1);
	CHECK_EQ(c[0].too_big, tb + 2);
	ring[100 + 14 + 6] = 0;

	CHECK_EQ(mcr_fwd_close(fwd), 0);
	CHECK_EQ(mcr_tx_close(tx), 0);
}

/* Outcomes of frames whose template was cleared never reach the slot's next
 * life; a template replaced in place keeps them; a ring leaving the
 * forwarder gets one last kick and the rest is counted. */
static void test_lifetimes(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx, *tx2;
	fake_reset();
	REQUIRE(mcr_fwd_open(2, 64, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 16, 1500, &tx) == 0);
	REQUIRE(txr_open_mem(2048, 16, 1500, &tx2) == 0);
	tx->send = fake_send;
	tx2->send = fake_send;
	struct mcr_template t = ring_tmpl(tx);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	struct mcr_rx_desc batch[1];
	memset(batch, 0, sizeof(batch));
	batch[0].offset = 100;
	batch[0].snaplen = put_frame(100, 100);
	struct mcr_fwd_desc *d = mcr_fwd_desc(fwd);
	for (uint32_t i = 0; i < 4; i++)
		set_desc(&d[i], 0, 100, 100, 0, 0);
	struct mcr_out_counters *c = mcr_fwd_counters(fwd);

	/* 4 queued (EAGAIN), then the template is replaced in place: same life */
	fake_err = EAGAIN;
	fake_take = 0;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 4), 4);
	t.ttl = 9;
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	fake_reset();
	CHECK_EQ(mcr_fwd_service(fwd), 0);
	CHECK_EQ(c[0].packets, 4);

	/* 4 queued, then the last template on tx is cleared: one last kick
	 * (refused), the rest discarded and charged to the life that sent them */
	fake_err = EAGAIN;
	fake_take = 0;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 4), 4);
	struct mcr_template none;
	memset(&none, 0, sizeof(none));
	REQUIRE(mcr_fwd_set_template(fwd, 0, &none, err, sizeof(err)) == 0);
	struct mcr_tx_stats ts;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.queued, 0);
	CHECK_EQ(ts.discarded, 4);
	CHECK_EQ(tx->owner, NULL);
	CHECK_EQ(mcr_fwd_orphans(fwd), 0);
	/* clearing keeps the counts (the caller decides when a slot starts over),
	 * queued is 0: nothing of this life is left in a ring */
	CHECK_EQ(c[0].packets, 4);
	CHECK_EQ(c[0].errors, 4);
	CHECK_EQ(c[0].queued, 0);
	/* the slot's next life starts at zero once reset */
	CHECK_EQ(mcr_fwd_reset_counters(fwd, 0), 0);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	CHECK_EQ(c[0].packets + c[0].errors + c[0].queued, 0);

	/* a second template keeps tx in the forwarder: clearing template 0 with
	 * frames queued leaves them in the ring; their outcomes are orphans and
	 * never reach the slot's next life */
	REQUIRE(mcr_fwd_set_template(fwd, 1, &t, err, sizeof(err)) == 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 4), 4);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &none, err, sizeof(err)) == 0);
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	fake_reset();
	CHECK_EQ(mcr_fwd_service(fwd), 0);
	CHECK_EQ(mcr_fwd_orphans(fwd), 4);
	CHECK_EQ(c[0].packets + c[0].errors + c[0].queued, 0);
	REQUIRE(mcr_fwd_set_template(fwd, 1, &none, err, sizeof(err)) == 0);

	/* moved to another ring: the old ring's queue is flushed to the same output */
	fake_take = 0;
	fake_err = EAGAIN;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 4), 4);
	fake_reset();
	t.tx = (uint64_t)(uintptr_t)tx2;
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	CHECK_EQ(c[0].packets, 4);
	CHECK_EQ(tx->owner, NULL);
	CHECK_EQ(tx2->owner, fwd);

	/* a ring closed before its templates: the forwarder forgets both */
	CHECK_EQ(mcr_tx_close(tx2), 0);
	set_desc(&d[0], 0, 100, 100, 0, 0);
	uint64_t inv = mcr_fwd_invalid(fwd);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 1), 0);
	CHECK_EQ(mcr_fwd_invalid(fwd), inv + 1);
	CHECK_EQ(mcr_fwd_service(fwd), 0);

	CHECK_EQ(mcr_fwd_close(fwd), 0);
	CHECK_EQ(mcr_tx_close(tx), 0);
}

static void test_abi(void)
{
	CHECK_EQ(mcr_abi_version(), MCR_ABI_VERSION);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RX_CONFIG), sizeof(struct mcr_rx_config));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RX_DESC), 32);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RX_STATS), sizeof(struct mcr_rx_stats));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_TX_CONFIG), sizeof(struct mcr_tx_config));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_TEMPLATE), sizeof(struct mcr_template));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_FWD_DESC), 32);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_OUT_COUNTERS), 64);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_LINK_EVENT), 40);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_IFACE_INFO), sizeof(struct mcr_iface_info));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_TX_STATS), sizeof(struct mcr_tx_stats));
	CHECK_EQ(mcr_abi_sizeof(0), -EINVAL);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RXSET_STATS), 40);
	CHECK_EQ(mcr_abi_sizeof(12), -EINVAL);
}

static void test_objects(void)
{
	char err[256];
	mcr_waker *w;
	REQUIRE(mcr_waker_open(&w, err, sizeof(err)) == 0);
	CHECK(mcr_waker_fd(w) >= 0);
	CHECK_EQ(mcr_waker_wake(w), 0);
	CHECK_EQ(mcr_waker_wake(w), 0);
	uint64_t v = 0;
	CHECK_EQ(read(mcr_waker_fd(w), &v, sizeof(v)), 8);
	CHECK_EQ(v, 2);
	CHECK_EQ(mcr_debug_live_objects(), 1);
	CHECK_EQ(mcr_waker_close(w), 0);
	/* close accepts NULL */
	CHECK_EQ(mcr_waker_close(NULL), 0);
	CHECK_EQ(mcr_fwd_close(NULL), 0);
	CHECK_EQ(mcr_rx_close(NULL), 0);
	CHECK_EQ(mcr_tx_close(NULL), 0);
	CHECK_EQ(mcr_igmp_close(NULL), 0);
	/* bad arguments give -errno and a message */
	mcr_fwd *f;
	err[0] = 0;
	CHECK_EQ(mcr_fwd_open(0, 4, &f, err, sizeof(err)), -EINVAL);
	CHECK(strlen(err) > 0);
	CHECK_EQ(mcr_fwd_open(0, 4, &f, NULL, 0), -EINVAL);
	struct mcr_iface_info info;
	CHECK(mcr_iface_by_name("no-such-if0", &info, err, sizeof(err)) < 0);
	CHECK(strstr(err, "no-such-if0") != NULL);
	CHECK(mcr_iface_by_name("lo", &info, err, sizeof(err)) == 0);
	CHECK(info.ifindex > 0 && info.mtu > 0 && info.has_mac == 0);
	CHECK_EQ(info.link_type, 772u); /* ARPHRD_LOOPBACK */
	char name[16];
	CHECK(mcr_iface_by_index(info.ifindex, &info, name, sizeof(name), err, sizeof(err)) == 0);
	CHECK(strcmp(name, "lo") == 0);
	/* a short error buffer is truncated, not overrun */
	char small[8];
	CHECK(mcr_iface_by_name("no-such-if0", &info, small, sizeof(small)) < 0);
	CHECK(strlen(small) == 7);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

/* A ring template whose destination follows the input's (239.1.1.1:5000
 * mapped onto 239.20.0.0/16, port kept): the frame in the TX slot carries
 * 239.20.1.1:5000, its multicast MAC and verifying checksums (the UDP one
 * derived incrementally from the input's). Refusals: host bits over 28, or
 * on a unicast destination. */
static void test_follow(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	fake_reset();
	REQUIRE(mcr_fwd_open(2, 8, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 8, 1500, &tx) == 0);
	tx->send = fake_send;
	struct mcr_template t = ring_tmpl(tx);
	t.dst_ip = htonl(0x0a000005);
	t.dst_host_bits = 16;
	CHECK_EQ(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "multicast") != NULL);
	t.dst_ip = htonl(0xef140000);
	t.dst_host_bits = 29;
	CHECK_EQ(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)), -EINVAL);
	t.dst_host_bits = 16;
	t.dst_port = 0;
	REQUIRE(mcr_fwd_set_template(fwd, 0, &t, err, sizeof(err)) == 0);
	struct mcr_rx_desc batch[1];
	memset(batch, 0, sizeof(batch));
	batch[0].offset = 100;
	batch[0].snaplen = put_frame(100, 200);
	set_desc(&mcr_fwd_desc(fwd)[0], 0, 100, 200, 0, 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 1, ring, sizeof(ring), 1), 1);
	CHECK_EQ(mcr_fwd_counters(fwd)[0].packets, 1);
	const uint8_t *f = (const uint8_t *)slot(tx, 0) + MCR_TX_DATA_OFF;
	const uint8_t mac[6] = { 0x01, 0x00, 0x5e, 0x14, 0x01, 0x01 };
	CHECK(memcmp(f, mac, 6) == 0);
	CHECK_EQ(rd16(f + 30), 0xef14);
	CHECK_EQ(rd16(f + 32), 0x0101);
	CHECK_EQ(rd16(f + 36), 5000);
	CHECK_EQ((uint16_t)~t_csum_naive(f + 14, 20, 0), 0);
	uint8_t ph[12];
	memcpy(ph, f + 26, 8);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, 208);
	CHECK_EQ(t_csum_naive(f + 34, 208, t_csum_naive(ph, 12, 0)), 0xffff);
	mcr_fwd_close(fwd);
	mcr_tx_close(tx);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

/* Put an Ethernet/IPv6/UDP frame (with an 8-byte destination-options header
 * when ext) with plen payload bytes at off; returns its length. */
static uint32_t put_frame6(uint32_t off, uint32_t plen, int ext)
{
	uint8_t *f = ring + off;
	uint32_t eh = ext ? 8u : 0u;
	memset(f, 0, 62 + eh);
	f[12] = 0x86;
	f[13] = 0xdd;
	uint8_t *ip = f + 14, *u = ip + 40 + eh;
	ip[0] = 0x60;
	wr16(ip + 4, (uint16_t)(eh + 8 + plen));
	ip[6] = ext ? 60 : 17;
	ip[7] = 9;
	ip[8] = 0x20; /* 2001:db8::1 -> ff3e::1 */
	ip[9] = 0x01;
	ip[10] = 0x0d;
	ip[11] = 0xb8;
	ip[23] = 1;
	ip[24] = 0xff;
	ip[25] = 0x3e;
	ip[39] = 1;
	if (ext)
		ip[40] = 17;
	wr16(u, 1234);
	wr16(u + 2, 5000);
	wr16(u + 4, (uint16_t)(8 + plen));
	for (uint32_t i = 0; i < plen; i++)
		u[8 + i] = (uint8_t)i;
	uint8_t ph[40];
	memcpy(ph, ip + 8, 32);
	memset(ph + 32, 0, 8);
	wr16(ph + 34, (uint16_t)(8 + plen));
	ph[39] = 17;
	wr16(u + 6, (uint16_t)~t_csum_naive(u, 8 + plen, t_csum_naive(ph, 40, 0)));
	return 62 + eh + plen;
}

/* The UDP datagram at udp (ulen bytes) verifies against an IPv6 pseudo header. */
static int udp6_ok(const uint8_t *ip6, const uint8_t *udp, uint32_t ulen)
{
	uint8_t ph[40];
	memcpy(ph, ip6 + 8, 32);
	memset(ph + 32, 0, 8);
	wr16(ph + 34, (uint16_t)ulen);
	ph[39] = 17;
	return t_csum_naive(udp, ulen, t_csum_naive(ph, 40, 0)) == 0xffff;
}

/*
 * The forwarder with IPv6: an IPv6 template (ring kind) fed by IPv6 and IPv4
 * inputs, an IPv4 template fed by an IPv6 input (translated, fragmented when
 * longer than the MTU: an IPv6 input has no DF), an IPv6 datagram longer
 * than the MTU counted too_big (never fragmented), descriptors with unknown
 * flags or an IPv6 header that does not fit counted as errors, refusals.
 */
static void test_ipv6(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	fake_reset();
	REQUIRE(mcr_fwd_open(4, 16, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 16, 1500, &tx) == 0);
	tx->send = fake_send;
	struct mcr_template t = ring_tmpl(tx);
	t.tos = 0x28;
	uint8_t addrs[32] = { 0x20,	   0x01,	0x0d,	     0xb8,	 [15] = 0x99,
			      [16] = 0xff, [17] = 0x3e, [30] = 0x12, [31] = 0x34 };
	/* refusals: no addresses, host bits on a unicast destination */
	CHECK_EQ(mcr_fwd_set_template6(fwd, 0, &t, NULL, err, sizeof(err)), -EINVAL);
	t.dst_host_bits = 8;
	addrs[16] = 0x20;
	CHECK_EQ(mcr_fwd_set_template6(fwd, 0, &t, addrs, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "multicast") != NULL);
	addrs[16] = 0xff;
	t.dst_host_bits = 0;
	REQUIRE(mcr_fwd_set_template6(fwd, 0, &t, addrs, err, sizeof(err)) == 0);
	struct mcr_template t4 = ring_tmpl(tx);
	REQUIRE(mcr_fwd_set_template(fwd, 1, &t4, err, sizeof(err)) == 0);

	struct mcr_rx_desc batch[4];
	memset(batch, 0, sizeof(batch));
	batch[0].offset = 100;
	batch[0].snaplen = put_frame6(100, 200, 1);
	batch[1].offset = 1000;
	batch[1].snaplen = put_frame(1000, 100);
	batch[2].offset = 4000;
	batch[2].snaplen = put_frame6(4000, 1480, 0); /* IPv6 1542 bytes, IPv4 1522 */
	struct mcr_fwd_desc *d = mcr_fwd_desc(fwd);
	/* v6 -> v6 (payload after the extension header), hop limit from the descriptor */
	set_desc(&d[0], 0, 100, 200, 0, 33);
	d[0].payload_off = 100 + 14 + 40 + 8 + 8;
	d[0].flags = MCR_FWD_IN_IPV6;
	/* v4 -> v6, the template's hop limit */
	set_desc(&d[1], 1, 1000, 100, 0, 0);
	/* v6 -> v4 */
	set_desc(&d[2], 0, 100, 200, 1, 0);
	d[2].payload_off = d[0].payload_off;
	d[2].flags = MCR_FWD_IN_IPV6;
	/* v6 -> v6 longer than the MTU: too_big */
	set_desc(&d[3], 2, 4000, 1480, 0, 0);
	d[3].payload_off = 4000 + 62;
	d[3].flags = MCR_FWD_IN_IPV6;
	/* v6 -> v4 longer than the MTU: fragmented */
	d[4] = d[3];
	d[4].tmpl = 1;
	/* unknown flag bit; an IPv6 header that does not fit before the payload */
	set_desc(&d[5], 1, 1000, 100, 0, 0);
	d[5].flags = 0x2;
	set_desc(&d[6], 1, 1000, 100, 0, 0);
	d[6].flags = MCR_FWD_IN_IPV6; /* payload 28 bytes after l3: no room for 40 + 8 */

	struct mcr_out_counters *c = mcr_fwd_counters(fwd);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 7), 4);
	CHECK_EQ(c[0].packets, 2);
	CHECK_EQ(c[0].too_big, 1);
	CHECK_EQ(c[0].errors, 2);
	CHECK_EQ(c[1].packets, 2);
	CHECK_EQ(c[1].fragmented, 1);
	CHECK_EQ(c[1].errors, 0);

	/* slot 0: v6 -> v6 */
	const uint8_t *f = (const uint8_t *)slot(tx, 0) + MCR_TX_DATA_OFF;
	CHECK_EQ(slot(tx, 0)->tp_len, 62 + 200);
	const uint8_t mac[6] = { 0x33, 0x33, 0x00, 0x00, 0x12, 0x34 };
	CHECK(memcmp(f, mac, 6) == 0);
	CHECK_EQ(rd16(f + 12), 0x86dd);
	CHECK_EQ(f[14], 0x62); /* version 6, traffic class 0x28 */
	CHECK_EQ(f[15], 0x80);
	CHECK_EQ(rd16(f + 18), 208);
	CHECK_EQ(f[20], 17);
	CHECK_EQ(f[21], 33);
	CHECK(memcmp(f + 22, addrs, 32) == 0);
	CHECK_EQ(rd16(f + 54), 1234);
	CHECK_EQ(rd16(f + 56), 6000);
	CHECK(udp6_ok(f + 14, f + 54, 208));
	CHECK_EQ(f[62], 0);
	CHECK_EQ(f[62 + 199], 199);
	/* slot 1: v4 -> v6, hop limit 7 from the template */
	f = (const uint8_t *)slot(tx, 1) + MCR_TX_DATA_OFF;
	CHECK_EQ(slot(tx, 1)->tp_len, 62 + 100);
	CHECK_EQ(f[21], 7);
	CHECK(udp6_ok(f + 14, f + 54, 108));
	/* slot 2: v6 -> v4 */
	f = (const uint8_t *)slot(tx, 2) + MCR_TX_DATA_OFF;
	CHECK_EQ(slot(tx, 2)->tp_len, 42 + 200);
	CHECK_EQ(rd16(f + 12), 0x0800);
	CHECK_EQ(f[22], 7);
	CHECK_EQ((uint16_t)~t_csum_naive(f + 14, 20, 0), 0);
	uint8_t ph[12];
	memcpy(ph, f + 26, 8);
	ph[8] = 0;
	ph[9] = 17;
	wr16(ph + 10, 208);
	CHECK_EQ(t_csum_naive(f + 34, 208, t_csum_naive(ph, 12, 0)), 0xffff);
	/* slots 3, 4: the fragments of the long v6 -> v4 datagram */
	CHECK_EQ(rd16((const uint8_t *)slot(tx, 3) + MCR_TX_DATA_OFF + 20) & 0x2000, 0x2000);
	CHECK_EQ(rd16((const uint8_t *)slot(tx, 4) + MCR_TX_DATA_OFF + 20) & 0x3fff,
		 (1500 - 20) / 8);
	struct mcr_tx_stats ts;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.frames, 5);

	CHECK_EQ(mcr_fwd_close(fwd), 0);
	CHECK_EQ(mcr_tx_close(tx), 0);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

static void test_bpf(void)
{
	/* the kernel's checker accepts every variant (any socket can carry
	 * a classic filter; this needs no privileges), with addresses only and
	 * with prefixes of every length */
	static struct sock_filter prog[27 + 2 * MCR_BPF_MAX_DST + 2 * MCR_BPF_PREFIX_LENS];
	static uint32_t dst[MCR_BPF_MAX_DST + 1];
	static uint8_t plen[MCR_BPF_MAX_DST + 1];
	for (uint32_t i = 0; i <= MCR_BPF_MAX_DST; i++) {
		dst[i] = htonl(0xe0000000u + i);
		plen[i] = (uint8_t)(i % 33);
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	REQUIRE(fd >= 0);
	REQUIRE(sizeof(prog) / sizeof(prog[0]) == bpf_size(MCR_BPF_MAX_DST));
	uint32_t ns[] = { 0, 1, 7, 40, MCR_BPF_MAX_DST };
	for (int p = 0; p < 2; p++)
		for (uint32_t kinds = 1; kinds <= 15; kinds++)
			for (uint32_t k = 0; k < 5; k++) {
				int len = bpf_build(prog, sizeof(prog) / sizeof(prog[0]), kinds,
						    dst, p ? plen : NULL, ns[k]);
				REQUIRE(len > 0 && (uint32_t)len <= bpf_size(ns[k]));
				struct sock_fprog fp = { .len = (unsigned short)len,
							 .filter = prog };
				CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp,
						    sizeof(fp)),
					 0);
			}
	CHECK_EQ(bpf_build(prog, sizeof(prog) / sizeof(prog[0]), 3, dst, NULL, MCR_BPF_MAX_DST + 1),
		 -E2BIG);
	CHECK_EQ(bpf_build(prog, 10, 3, dst, NULL, 5), -EINVAL);
	plen[3] = 33; /* no such prefix length */
	CHECK_EQ(bpf_build(prog, sizeof(prog) / sizeof(prog[0]), 3, dst, plen, 5), -EINVAL);
	close(fd);
}

int main(void)
{
	test_abi();
	test_submit();
	CHECK_EQ(mcr_debug_live_objects(), 0);
	test_link_flap();
	test_mtu();
	test_lifetimes();
	CHECK_EQ(mcr_debug_live_objects(), 0);
	test_objects();
	test_follow();
	test_ipv6();
	test_bpf();
	CHECK_EQ(mcr_debug_live_objects(), 0);
	return t_done("fwd");
}
