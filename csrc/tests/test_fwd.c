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

static void test_submit(void)
{
	char err[256];
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	REQUIRE(mcr_fwd_open(4, 32, &fwd, err, sizeof(err)) == 0);
	REQUIRE(txr_open_mem(2048, 8, 1500, &tx) == 0);
	CHECK_EQ(mcr_debug_live_objects(), 2);

	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	t.src_ip = htonl(0xc0a80001);
	t.dst_ip = htonl(0xef020202);
	t.dst_port = htons(6000);
	t.ttl = 7;
	t.tx = (uint64_t)(uintptr_t)tx;
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
	set_desc(&d[0], 0, 100, 100, 0, 0);     /* valid -> tmpl 0 */
	set_desc(&d[1], 5, 100, 100, 0, 0);     /* frame out of range */
	set_desc(&d[2], 1, 1000, 1000, 0, 0);   /* payload beyond snaplen */
	set_desc(&d[3], 0, 100, 100, 0, 0);
	d[3].payload_off = d[3].l3_offset + 27; /* payload inside the headers */
	set_desc(&d[4], 0, 100, 100, 1, 0);     /* UNUSED template */
	set_desc(&d[5], 0, 100, 100, 99, 0);    /* template out of range */
	set_desc(&d[6], 0, 100, 100, 0, 300);   /* TTL > 255 */
	set_desc(&d[7], 0, 100, 100, 2, 0);     /* valid -> tmpl 2, template TTL */
	set_desc(&d[8], 2, 4000, 1600, 0, 0);   /* too big for the MTU */
	set_desc(&d[9], 0, 100, 100, 0, 0);
	d[9].l3_offset = 99;                    /* l3 before the frame */
	set_desc(&d[10], 0, 100, 100, 2, 200);  /* valid, descriptor TTL */
	d[10].payload_len = 50;                 /* shorter than the UDP length: full csum */

	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 11), 3);
	struct mcr_out_counters *c = mcr_fwd_counters(fwd);
	CHECK_EQ(c[0].packets, 1);
	CHECK_EQ(c[0].bytes, 100);
	CHECK_EQ(c[0].errors, 6);
	CHECK_EQ(c[2].packets, 2);
	CHECK_EQ(c[2].bytes, 150);
	CHECK_EQ(c[2].errors, 0);
	CHECK_EQ(mcr_fwd_invalid(fwd), 2);

	struct mcr_tx_stats ts;
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.frames, 3);
	CHECK_EQ(ts.kicks, 1); /* one kick per ring per submit */
	CHECK_EQ(ts.kick_errors, 1); /* memory ring: sendto(-1) fails */

	/* slot contents */
	for (uint32_t i = 0; i < 3; i++)
		CHECK_EQ(slot(tx, i)->tp_status, TP_STATUS_SEND_REQUEST);
	CHECK_EQ(slot(tx, 0)->tp_len, 142);
	CHECK_EQ(slot(tx, 2)->tp_len, 92);
	const uint8_t *f0 = (const uint8_t *)slot(tx, 0) + MCR_TX_DATA_OFF;
	const uint8_t *f1 = (const uint8_t *)slot(tx, 1) + MCR_TX_DATA_OFF;
	const uint8_t *f2 = (const uint8_t *)slot(tx, 2) + MCR_TX_DATA_OFF;
	CHECK_EQ(f0[14 + 8], 7);         /* template TTL */
	CHECK_EQ(rd16(f0 + 34), 1234);   /* source port copied from the input */
	CHECK_EQ(rd16(f0 + 36), 6000);
	CHECK_EQ(rd16(f1 + 34), 999);    /* template source port */
	CHECK_EQ(rd16(f0 + 18), 0);      /* ip id counters per template */
	CHECK_EQ(rd16(f1 + 18), 0);
	CHECK_EQ(rd16(f2 + 18), 1);
	CHECK_EQ(f2[14 + 8], 200);       /* descriptor TTL */
	for (int k = 0; k < 3; k++) {    /* every UDP checksum verifies */
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

	/* ring full: 5 slots left of 8 */
	for (uint32_t i = 0; i < 10; i++)
		set_desc(&d[i], 0, 100, 100, 0, 0);
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 10), 5);
	CHECK_EQ(c[0].ring_full, 5);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.ring_full, 5);

	/* the kernel "rejected" slot 0, completed slot 1: both reusable */
	slot(tx, 0)->tp_status = TP_STATUS_WRONG_FORMAT;
	slot(tx, 1)->tp_status = TP_STATUS_AVAILABLE;
	CHECK_EQ(fwd_submit_batch(fwd, batch, 3, ring, sizeof(ring), 3), 2);
	REQUIRE(mcr_tx_stats(tx, &ts) == 0);
	CHECK_EQ(ts.rejected, 1);
	CHECK_EQ(ts.ring_full, 6);

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

static void test_abi(void)
{
	CHECK_EQ(mcr_abi_version(), MCR_ABI_VERSION);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RX_CONFIG), sizeof(struct mcr_rx_config));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RX_DESC), 32);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_RX_STATS), sizeof(struct mcr_rx_stats));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_TX_CONFIG), sizeof(struct mcr_tx_config));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_TEMPLATE), sizeof(struct mcr_template));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_FWD_DESC), 32);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_OUT_COUNTERS), 32);
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_IFACE_INFO), sizeof(struct mcr_iface_info));
	CHECK_EQ(mcr_abi_sizeof(MCR_ABI_TX_STATS), sizeof(struct mcr_tx_stats));
	CHECK_EQ(mcr_abi_sizeof(0), -EINVAL);
	CHECK_EQ(mcr_abi_sizeof(10), -EINVAL);
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
	char name[16];
	CHECK(mcr_iface_by_index(info.ifindex, &info, name, sizeof(name), err, sizeof(err)) == 0);
	CHECK(strcmp(name, "lo") == 0);
	/* a short error buffer is truncated, not overrun */
	char small[8];
	CHECK(mcr_iface_by_name("no-such-if0", &info, small, sizeof(small)) < 0);
	CHECK(strlen(small) == 7);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

static void test_bpf(void)
{
	/* the kernel's checker accepts every variant (any socket can carry
	 * a classic filter; this needs no privileges) */
	static struct sock_filter prog[18 + 2 * MCR_BPF_MAX_DST];
	static uint32_t dst[MCR_BPF_MAX_DST + 1];
	for (uint32_t i = 0; i <= MCR_BPF_MAX_DST; i++)
		dst[i] = htonl(0xe0000000u + i);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	REQUIRE(fd >= 0);
	uint32_t ns[] = {0, 1, 7, MCR_BPF_MAX_DST};
	for (uint32_t kinds = 1; kinds <= 3; kinds++)
		for (uint32_t k = 0; k < 4; k++) {
			int len = bpf_build(prog, sizeof(prog) / sizeof(prog[0]), kinds, dst, ns[k]);
			REQUIRE(len > 0 && (uint32_t)len <= bpf_size(ns[k]));
			struct sock_fprog fp = {.len = (unsigned short)len, .filter = prog};
			CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)), 0);
		}
	CHECK_EQ(bpf_build(prog, sizeof(prog) / sizeof(prog[0]), 3, dst, MCR_BPF_MAX_DST + 1),
		 -E2BIG);
	CHECK_EQ(bpf_build(prog, 10, 3, dst, 5), -EINVAL);
	close(fd);
}

int main(void)
{
	test_abi();
	test_submit();
	CHECK_EQ(mcr_debug_live_objects(), 0);
	test_objects();
	test_bpf();
	CHECK_EQ(mcr_debug_live_objects(), 0);
	return t_done("fwd");
}
