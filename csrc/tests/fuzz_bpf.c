/* SPDX-License-Identifier: MIT */
/*
 * fuzz_bpf.c — libFuzzer target for the RX socket-filter builder (bpf.c).
 *
 * For random kinds, destination lists and capacities: bpf_build must refuse
 * what it cannot build (-E2BIG over MCR_BPF_MAX_DST, -EINVAL when cap is too
 * small) and otherwise produce a program that a strict classic-BPF checker
 * accepts (every jump inside the program, every path ending in a return, at
 * most cap and bpf_size(n) instructions). The program is then run by a small
 * interpreter on a fuzzed packet and must agree with a reference predicate:
 * drop outgoing (with MCR_BPF_OUTGOING), accept IPv4/UDP untagged or with one
 * 802.1Q/802.1ad tag (with MCR_BPF_UDP) — or, with MCR_BPF_L3, an IPv4/UDP
 * packet at offset 0 (version nibble 4) — whose destination is in the list (if
 * any): equal to an address, or inside a prefix. With MCR_BPF_IPV6 an IPv6
 * packet (ethertype 0x86DD, tagged or not, or version 6 with MCR_BPF_L3)
 * passes whole when its next header is UDP, hop-by-hop, routing or
 * destination options. Loads past the packet end drop the packet, as in the
 * kernel.
 *
 * Input: kinds(1, low 3 bits) pkttype(1) n(2) capsel(1) then 4*min(n,64) list
 * bytes, then the packet. Bit 3 of the kinds byte gives the entries prefix
 * lengths of mixed lengths (0..32, from the kinds byte's high bits and the
 * entry's index); without it every entry is one address. Bit 7 of the pkttype
 * byte adds MCR_BPF_IPV6. Built without
 * -fsanitize=fuzzer, fuzz_replay.c provides main().
 */
#include "bpf.h"

#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ACCEPT 0xffffffffu

static int load(const uint8_t *p, size_t n, uint32_t off, uint32_t width, uint32_t *v)
{
	if (off > n || width > n - off)
		return -1;
	uint32_t r = 0;
	for (uint32_t i = 0; i < width; i++)
		r = r << 8 | p[off + i];
	*v = r;
	return 0;
}

/* Runs a program using only the instructions bpf_build emits; aborts on anything else. */
static uint32_t run(const struct sock_filter *f, int len, const uint8_t *p, size_t n,
		    uint32_t pkttype)
{
	uint32_t A = 0, X = 0;
	for (int pc = 0; pc < len; pc++) {
		const struct sock_filter *i = &f[pc];
		uint32_t w = 0, v;
		switch (i->code) {
		case BPF_RET | BPF_K: return i->k;
		case BPF_LDX | BPF_W | BPF_IMM: X = i->k; break;
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k == (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)) {
				A = pkttype;
				break;
			}
			w = 4;
			/* fall through */
		case BPF_LD | BPF_H | BPF_ABS:
			if (!w)
				w = 2;
			if (load(p, n, i->k, w, &v))
				return 0;
			A = v;
			break;
		case BPF_LD | BPF_B | BPF_ABS:
			if (load(p, n, i->k, 1, &v))
				return 0;
			A = v;
			break;
		case BPF_ALU | BPF_AND | BPF_K: A &= i->k; break;
		case BPF_LD | BPF_B | BPF_IND:
			w = 1;
			/* fall through */
		case BPF_LD | BPF_W | BPF_IND:
			if (!w)
				w = 4;
			if (load(p, n, X + i->k, w, &v))
				return 0;
			A = v;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K: pc += A == i->k ? i->jt : i->jf; break;
		default: abort(); /* an instruction the builder never emits */
		}
	}
	abort(); /* fell off the end: the checker should have caught it */
}

static uint32_t host_of(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint32_t reference(uint32_t kinds, const uint32_t *dst, const uint8_t *plen, uint32_t n,
			  const uint8_t *p, size_t len, uint32_t pkttype)
{
	if ((kinds & MCR_BPF_OUTGOING) && pkttype == PACKET_OUTGOING)
		return 0;
	if (!(kinds & MCR_BPF_UDP))
		return ACCEPT;
	uint32_t x = 0; /* offset of the IP header */
	int v6 = 0, ip6 = (kinds & MCR_BPF_IPV6) != 0;
	if (kinds & MCR_BPF_L3) {
		if (len < 1)
			return 0;
		v6 = ip6 && (p[0] & 0xf0) == 0x60;
		if ((p[0] & 0xf0) != 0x40 && !v6)
			return 0;
	} else {
		if (len < 14)
			return 0;
		uint32_t t = (uint32_t)p[12] << 8 | p[13];
		x = 14;
		if (t != 0x0800 && !(ip6 && t == 0x86dd)) {
			if (t != 0x8100 && t != 0x88a8)
				return 0;
			if (len < 18)
				return 0;
			t = (uint32_t)p[16] << 8 | p[17];
			if (t != 0x0800 && !(ip6 && t == 0x86dd))
				return 0;
			x = 18;
		}
		v6 = t == 0x86dd;
	}
	if (v6) {
		if (len < x + 7)
			return 0;
		uint8_t nh = p[x + 6];
		return nh == 17 || nh == 0 || nh == 43 || nh == 60 || nh == 44 ? ACCEPT : 0;
	}
	if (len < x + 10 || p[x + 9] != 17)
		return 0;
	if (n == 0)
		return ACCEPT;
	if (len < x + 20)
		return 0;
	uint32_t a = host_of(p + x + 16);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t l = plen ? plen[k] : 32u;
		uint32_t mask = l ? ~0u << (32u - l) : 0u;
		if ((a & mask) == (host_of((const uint8_t *)&dst[k]) & mask))
			return ACCEPT;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	uint32_t kinds = data[0] & 7u;
	int prefixes = (data[0] & 8u) != 0;
	uint32_t lens_seed = data[0] >> 4;
	uint32_t pkttype = data[1] % 8;
	if (data[1] & 0x80)
		kinds |= MCR_BPF_IPV6;
	uint32_t n = ((uint32_t)data[2] << 8 | data[3]) % 1100u;
	uint32_t capsel = data[4];
	data += 5;
	size -= 5;
	/* up to 64 addresses from the input, the rest synthesized */
	uint32_t *dst = calloc(n ? n : 1, sizeof(uint32_t));
	uint8_t *plen = calloc(n ? n : 1, 1);
	if (!dst || !plen) {
		free(dst);
		free(plen);
		return 0;
	}
	for (uint32_t k = 0; k < n; k++)
		plen[k] = (uint8_t)((lens_seed + k * 5u) % 33u);
	uint32_t given = n < 64 ? n : 64;
	for (uint32_t k = 0; k < n; k++) {
		if (k < given && size >= 4) {
			memcpy(&dst[k], data, 4);
			data += 4;
			size -= 4;
		} else {
			uint32_t v = 0xe0000000u | k;
			uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
					 (uint8_t)v };
			memcpy(&dst[k], b, 4);
		}
	}
	uint32_t eff_n = (kinds & MCR_BPF_UDP) ? n : 0;
	uint32_t need = bpf_size(eff_n);
	uint32_t cap = capsel < 200 ? need + capsel % 4 : capsel % 64;
	struct sock_filter *prog = malloc((cap ? cap : 1) * sizeof(*prog));
	if (!prog) {
		free(dst);
		free(plen);
		return 0;
	}
	int len = bpf_build(prog, cap, kinds, dst, prefixes ? plen : NULL, n);
	if (eff_n > MCR_BPF_MAX_DST) {
		if (len != -E2BIG)
			abort();
		goto done;
	}
	if (cap < need) {
		if (len != -EINVAL)
			abort();
		goto done;
	}
	if (len <= 0 || (uint32_t)len > cap || (uint32_t)len > need || len > BPF_MAXINSNS)
		abort();
	/* strict checker: jumps in range, the last instruction returns */
	for (int pc = 0; pc < len; pc++) {
		const struct sock_filter *i = &prog[pc];
		if (BPF_CLASS(i->code) == BPF_JMP &&
		    (pc + 1 + i->jt >= len || pc + 1 + i->jf >= len))
			abort();
	}
	if (BPF_CLASS(prog[len - 1].code) != BPF_RET)
		abort();
	uint32_t got = run(prog, len, data, size, pkttype);
	uint32_t want = reference(kinds, dst, prefixes ? plen : NULL, eff_n, data, size, pkttype);
	if (got != want)
		abort();
done:
	free(prog);
	free(dst);
	free(plen);
	return 0;
}
