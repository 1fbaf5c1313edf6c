/* SPDX-License-Identifier: MIT */
/*
 * media.h — RTP and MPEG-TS payloads for mcr-gen (--payload), with injected
 * faults (--inject-every N): every Nth datagram of a stream skips one RTP
 * sequence number (one gap: one datagram "lost") and one MPEG-TS continuity
 * counter step on its first TS packet (one continuity-counter error). A
 * receiver that analyses the stream counts exactly floor(count / N) of each.
 * Plain C11; no dependency on libmcr.
 */
#ifndef MCR_TOOL_MEDIA_H
#define MCR_TOOL_MEDIA_H

#include <stdint.h>

/* What mcr-gen puts in a datagram. */
enum media_kind {
	MEDIA_MCRT = 0, /* the mcrtest format (mcrtest.h): sequence, timestamp, pattern */
	MEDIA_RTP,	/* RTP (version 2, payload type 96) + filler */
	MEDIA_TS,	/* 7 MPEG-TS packets on PID 0x100 */
	MEDIA_RTP_TS,	/* RTP (payload type 33, MP2T) carrying 7 MPEG-TS packets */
};

#define MEDIA_TS_PACKET	   188
#define MEDIA_TS_PER_DGRAM 7
#define MEDIA_RTP_HLEN	   12
#define MEDIA_PID	   0x100
/* RTP timestamp step per datagram (90 kHz clock). */
#define MEDIA_RTP_TS_STEP  3000u

/* Parse "mcrt", "rtp", "ts" or "rtp+ts"; -1 when unknown. */
int media_parse(const char *s);

/* Datagram length of `kind` (`size` for MEDIA_MCRT and MEDIA_RTP). */
uint32_t media_len(int kind, uint32_t size);

/*
 * Write datagram `seq` (0-based) of stream `stream` into p (media_len bytes):
 * `inject_every` N > 0 injects a gap and a CC error into every Nth datagram.
 */
void media_write(uint8_t *p, int kind, uint32_t len, uint32_t stream, uint64_t seq,
		 uint64_t inject_every);

#endif /* MCR_TOOL_MEDIA_H */
