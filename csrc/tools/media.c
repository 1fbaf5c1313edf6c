/* SPDX-License-Identifier: MIT */
/* media.c — RTP and MPEG-TS payloads with injected faults for mcr-gen (see media.h). */
#include "media.h"

#include <string.h>

int media_parse(const char *s)
{
	if (!strcmp(s, "mcrt"))
		return MEDIA_MCRT;
	if (!strcmp(s, "rtp"))
		return MEDIA_RTP;
	if (!strcmp(s, "ts"))
		return MEDIA_TS;
	if (!strcmp(s, "rtp+ts"))
		return MEDIA_RTP_TS;
	return -1;
}

uint32_t media_len(int kind, uint32_t size)
{
	switch (kind) {
	case MEDIA_TS: return MEDIA_TS_PACKET * MEDIA_TS_PER_DGRAM;
	case MEDIA_RTP_TS: return MEDIA_RTP_HLEN + MEDIA_TS_PACKET * MEDIA_TS_PER_DGRAM;
	default: return size;
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void media_write(uint8_t *p, int kind, uint32_t len, uint32_t stream, uint64_t seq,
		 uint64_t inject_every)
{
	/* faults injected so far, this datagram's included: each shifts the counters by one */
	uint64_t shift = inject_every ? (seq + 1) / inject_every : 0;
	uint8_t *ts = p;
	if (kind == MEDIA_RTP || kind == MEDIA_RTP_TS) {
		uint64_t rtp_seq = seq + shift;
		p[0] = 0x80; /* version 2, no padding, extension or CSRC */
		p[1] = kind == MEDIA_RTP_TS ? 33 : 96;
		p[2] = (uint8_t)(rtp_seq >> 8);
		p[3] = (uint8_t)rtp_seq;
		put32(p + 4, (uint32_t)(seq * MEDIA_RTP_TS_STEP));
		put32(p + 8, 0x4d435200u + stream); /* SSRC */
		ts = p + MEDIA_RTP_HLEN;
		if (kind == MEDIA_RTP) {
			memset(ts, 0, len - MEDIA_RTP_HLEN);
			return;
		}
	}
	for (int k = 0; k < MEDIA_TS_PER_DGRAM; k++) {
		uint8_t *t = ts + k * MEDIA_TS_PACKET;
		uint64_t cc = seq * MEDIA_TS_PER_DGRAM + (uint64_t)k + shift;
		t[0] = 0x47;
		t[1] = (uint8_t)(MEDIA_PID >> 8);
		t[2] = (uint8_t)(MEDIA_PID & 0xff);
		t[3] = (uint8_t)(0x10 | (cc & 0x0f)); /* payload only */
		memset(t + 4, 0xff, MEDIA_TS_PACKET - 4);
	}
}
