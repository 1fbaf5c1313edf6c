/* SPDX-License-Identifier: MIT */
/*
 * fuzz_fwd.c — libFuzzer target (built with -DMCR_FUZZ=ON and clang): random
 * RX batches and forward descriptors against a synthetic ring and a
 * memory-only TX ring. ASan catches any read outside a frame; every frame
 * written to the TX ring must carry a valid IPv4 header checksum.
 *
 *   CC=clang-14 cmake -S . -B build-fuzz -DMCR_FUZZ=ON && cmake --build build-fuzz
 *   build-fuzz/csrc/tests/fuzz_fwd -max_total_time=60
 */
#include "frame.h"
#include "fwd.h"
#include "ring_tx.h"

#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum { RING = 4096, NB = 4, ND = 8 };
	if (size < NB * 8 + ND * 12)
		return 0;
	/* the ring is an exact-size heap copy, so ASan sees overruns */
	size_t rsz = size - (NB * 8 + ND * 12);
	if (rsz > RING)
		rsz = RING;
	if (rsz == 0)
		return 0;
	uint8_t *ring = malloc(rsz);
	memcpy(ring, data, rsz);
	const uint8_t *p = data + rsz;
	struct mcr_rx_desc batch[NB];
	memset(batch, 0, sizeof(batch));
	for (int i = 0; i < NB; i++, p += 8) {
		uint32_t off = (uint32_t)(p[0] | p[1] << 8) % (uint32_t)rsz;
		uint32_t len = (uint32_t)(p[2] | p[3] << 8);
		if (len > rsz - off)
			len = (uint32_t)(rsz - off);
		batch[i].offset = off;
		batch[i].snaplen = len;
		batch[i].status = p[4] & 1 ? TP_STATUS_CSUMNOTREADY : 0;
	}
	mcr_fwd *fwd;
	struct mcr_tx *tx;
	if (mcr_fwd_open(3, ND, &fwd, NULL, 0) < 0)
		abort();
	if (txr_open_mem(2048, 4, 1500, &tx) < 0)
		abort();
	struct mcr_template t;
	memset(&t, 0, sizeof(t));
	t.kind = MCR_TMPL_RING;
	t.dst_ip = 0x010101efu;
	t.ttl = 4;
	t.tx = (uint64_t)(uintptr_t)tx;
	mcr_fwd_set_template(fwd, 0, &t, NULL, 0);
	t.src_port = 0x3412;
	mcr_fwd_set_template(fwd, 1, &t, NULL, 0);
	struct mcr_fwd_desc *d = mcr_fwd_desc(fwd);
	for (int i = 0; i < ND; i++, p += 12) {
		d[i].frame = p[0] % (NB + 1);
		uint32_t base = batch[p[0] % NB].offset;
		d[i].l3_offset = base + p[1] % 64;
		d[i].payload_off = d[i].l3_offset + p[2] % 64;
		d[i].payload_len = (uint32_t)(p[3] | p[4] << 8);
		d[i].tmpl = p[5] % 4;
		d[i].ttl = p[6] == 0xff ? 300 : p[6];
	}
	int n = fwd_submit_batch(fwd, batch, NB, ring, rsz, ND);
	if (n < 0 || n > ND)
		abort();
	for (uint32_t i = 0; i < tx->frame_count; i++) {
		struct tpacket2_hdr *h =
			(struct tpacket2_hdr *)(tx->map + (size_t)i * tx->frame_size);
		if (h->tp_status != TP_STATUS_SEND_REQUEST)
			continue;
		const uint8_t *ip = (const uint8_t *)h + MCR_TX_DATA_OFF + 14;
		if (h->tp_len < 42 || h->tp_len > tx->max_frame ||
		    mcr_csum_partial(ip, 20, 0) != 0xffff)
			abort();
	}
	mcr_fwd_close(fwd);
	mcr_tx_close(tx);
	free(ring);
	return 0;
}
