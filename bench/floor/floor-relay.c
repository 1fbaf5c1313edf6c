/* SPDX-License-Identifier: MIT */
/*
 * floor-relay.c — the physical floor of a userspace packet-ring relay, for bench/ only (not
 * product code, no libmcr): the least work a relay of mcr's design can do per datagram.
 *
 * One TPACKET_V3 RX ring on the input interface; every IPv4/UDP frame to one group:port is
 * rewritten as mcr rewrites it (new Ethernet/IPv4/UDP headers toward the output group from the
 * output interface's MAC and address, payload copied, IPv4 header checksum computed, UDP
 * checksum updated incrementally — or computed in full when the kernel left it unfinished,
 * TP_STATUS_CSUMNOTREADY, as veth senders do) into a TPACKET_V2 TX ring (PACKET_TX_RING,
 * PACKET_LOSS) on the output interface, with one sendto() kick per RX block. Joins the input
 * group (IGMP) like mcr. Prints its counters as one JSON line on SIGINT/SIGTERM.
 *
 *   floor-relay --in IF --out IF --group G:P --to G:P [--ttl N] [--block-kib K] [--blocks N]
 *               [--timeout-ms MS] [--tx-frames N] [--ready-file PATH]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define TX_DATA_OFF 32u	  /* TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where frame data goes */
#define TX_FRAME    2048u /* TX slot size, as mcr's for a 1500-byte MTU */
#define RX_FRAME    2048u
#define HDRS	    42u /* Ethernet 14 + IPv4 20 + UDP 8 */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "floor-relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: floor-relay --in IF --out IF --group G:P --to G:P [--ttl N] "
			"[--block-kib K] [--blocks N] [--timeout-ms MS] [--tx-frames N] "
			"[--ready-file PATH]\n");
	exit(2);
}

static void parse_gp(const char *s, uint32_t *addr, uint16_t *port)
{
	char buf[64];
	const char *c = strrchr(s, ':');
	if (!c || (size_t)(c - s) >= sizeof buf)
		usage();
	memcpy(buf, s, (size_t)(c - s));
	buf[c - s] = 0;
	if (inet_pton(AF_INET, buf, addr) != 1 || atoi(c + 1) <= 0 || atoi(c + 1) > 65535)
		usage();
	*port = htons((uint16_t)atoi(c + 1));
}

/* One's-complement sum of a buffer (RFC 1071), 32-bit loads into a 64-bit accumulator,
 * folded to 16 bits in network order. */
static uint16_t csum_add(const uint8_t *p, uint32_t n, uint64_t s)
{
	uint32_t w;
	for (; n >= 4; p += 4, n -= 4) {
		memcpy(&w, p, 4);
		s += w;
	}
	if (n >= 2) {
		uint16_t h;
		memcpy(&h, p, 2);
		s += h;
		p += 2;
		n -= 2;
	}
	if (n)
		s += *p; /* a lone last byte: the first byte of a zero-padded word (little-endian) */
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* The slot is the user's to fill (PACKET_LOSS marks a rejected frame WRONG_FORMAT). */
static int slot_free(const struct tpacket2_hdr *t)
{
	uint32_t st = __atomic_load_n(&t->tp_status, __ATOMIC_ACQUIRE);
	return st == TP_STATUS_AVAILABLE || (st & TP_STATUS_WRONG_FORMAT);
}

/* RFC 1624: a 16-bit word m of the checksummed data became m': HC' = ~(~HC + ~m + m') */
static uint64_t csum_word(uint64_t s, uint16_t old, uint16_t new)
{
	return s + (uint16_t)~old + new;
}

int main(int argc, char **argv)
{
	const char *in = NULL, *out = NULL, *ready = NULL;
	uint32_t grp = 0, to = 0, block_kib = 64, blocks = 64, tmo_ms = 1, txn = 1024;
	uint16_t gport = 0, tport = 0;
	int ttl = 1, c;
	static const struct option lo[] = {
		{ "in", 1, 0, 'i' },
		{ "out", 1, 0, 'o' },
		{ "group", 1, 0, 'g' },
		{ "to", 1, 0, 't' },
		{ "ttl", 1, 0, 'T' },
		{ "block-kib", 1, 0, 'b' },
		{ "blocks", 1, 0, 'n' },
		{ "timeout-ms", 1, 0, 'm' },
		{ "tx-frames", 1, 0, 'x' },
		{ "ready-file", 1, 0, 'r' },
		{ 0, 0, 0, 0 },
	};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'g': parse_gp(optarg, &grp, &gport); break;
		case 't': parse_gp(optarg, &to, &tport); break;
		case 'T': ttl = atoi(optarg); break;
		case 'b': block_kib = (uint32_t)atoi(optarg); break;
		case 'n': blocks = (uint32_t)atoi(optarg); break;
		case 'm': tmo_ms = (uint32_t)atoi(optarg); break;
		case 'x': txn = (uint32_t)atoi(optarg); break;
		case 'r': ready = optarg; break;
		default: usage();
		}
	}
	if (!in || !out || !grp || !to || ttl < 1 || ttl > 255 || block_kib < 4 || !blocks || !txn)
		usage();
	int in_ifx = (int)if_nametoindex(in), out_ifx = (int)if_nametoindex(out);
	if (!in_ifx || !out_ifx)
		die("interface");

	/* output interface: MAC and IPv4 address */
	struct ifreq ifr;
	uint8_t src_mac[6];
	uint32_t src_ip;
	int ufd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", out);
	if (ufd < 0 || ioctl(ufd, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	memcpy(src_mac, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(ufd, SIOCGIFADDR, &ifr) < 0)
		die("SIOCGIFADDR (the output interface needs an IPv4 address)");
	src_ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
	struct ip_mreqn mr = { .imr_multiaddr.s_addr = grp, .imr_ifindex = in_ifx };
	if (setsockopt(ufd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
		die("IP_ADD_MEMBERSHIP");

	/* RX: TPACKET_V3 ring */
	int rx = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP)), v = TPACKET_V3;
	if (rx < 0 || setsockopt(rx, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0)
		die("RX socket");
	struct tpacket_req3 rq = { .tp_block_size = block_kib << 10,
				   .tp_block_nr = blocks,
				   .tp_frame_size = RX_FRAME,
				   .tp_frame_nr = (block_kib << 10) / RX_FRAME * blocks,
				   .tp_retire_blk_tov = tmo_ms };
	if (setsockopt(rx, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq) < 0)
		die("PACKET_RX_RING");
	size_t rx_len = (size_t)rq.tp_block_size * blocks;
	uint8_t *rxm = mmap(NULL, rx_len, PROT_READ | PROT_WRITE, MAP_SHARED, rx, 0);
	struct sockaddr_ll sl = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_IP),
				  .sll_ifindex = in_ifx };
	if (rxm == MAP_FAILED || bind(rx, (struct sockaddr *)&sl, sizeof sl) < 0)
		die("RX ring mmap/bind");

	/* TX: TPACKET_V2 ring, PACKET_LOSS before the ring (a bad frame must not stall it) */
	int tx = socket(AF_PACKET, SOCK_RAW, 0), one = 1;
	v = TPACKET_V2;
	struct tpacket_req tq = { .tp_block_size = 4096,
				  .tp_block_nr = txn / 2,
				  .tp_frame_size = TX_FRAME,
				  .tp_frame_nr = txn / 2 * 2 };
	if (tx < 0 || setsockopt(tx, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0 ||
	    setsockopt(tx, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0 ||
	    setsockopt(tx, SOL_PACKET, PACKET_TX_RING, &tq, sizeof tq) < 0)
		die("TX ring");
	txn = tq.tp_frame_nr;
	uint8_t *txm = mmap(NULL, (size_t)4096 * tq.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED,
			    tx, 0);
	struct sockaddr_ll so = { .sll_family = AF_PACKET, .sll_ifindex = out_ifx };
	if (txm == MAP_FAILED || bind(tx, (struct sockaddr *)&so, sizeof so) < 0)
		die("TX ring mmap/bind");

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (ready) {
		FILE *f = fopen(ready, "w");
		if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0)
			die("ready file");
	}
	const uint8_t dst_mac[6] = { 0x01,
				     0x00,
				     0x5e,
				     ((uint8_t *)&to)[1] & 0x7f,
				     ((uint8_t *)&to)[2],
				     ((uint8_t *)&to)[3] };
	uint64_t frames = 0, matched = 0, sent = 0, ring_full = 0, kicks = 0, nblocks = 0;
	uint32_t bi = 0, head = 0;
	uint16_t ip_id = 0;
	while (!g_stop) {
		struct tpacket_block_desc *bd = (void *)(rxm + (size_t)bi * rq.tp_block_size);
		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) &
		      TP_STATUS_USER)) {
			struct pollfd p = { .fd = rx, .events = POLLIN | POLLERR };
			if (poll(&p, 1, 100) < 0 && errno != EINTR)
				die("poll");
			continue;
		}
		uint32_t queued = 0, n = bd->hdr.bh1.num_pkts;
		struct tpacket3_hdr *h = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
		for (; n; n--, h = (void *)((uint8_t *)h + h->tp_next_offset)) {
			frames++;
			const uint8_t *e = (uint8_t *)h + h->tp_mac, *ip = e + 14;
			const struct sockaddr_ll *ll =
				(void *)((uint8_t *)h + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
			if (ll->sll_pkttype == PACKET_OUTGOING || h->tp_snaplen < HDRS ||
			    e[12] != 0x08 || e[13] != 0 || ip[0] != 0x45 || ip[9] != 17 ||
			    (ip[6] & 0x3f) || ip[7] || memcmp(ip + 16, &grp, 4) ||
			    memcmp(ip + 22, &gport, 2))
				continue;
			const uint8_t *udp = ip + 20;
			uint32_t ulen = (uint32_t)(udp[4] << 8 | udp[5]);
			if (ulen < 8 || 34u + ulen > h->tp_snaplen ||
			    ulen + HDRS > TX_FRAME - TX_DATA_OFF)
				continue;
			matched++;
			struct tpacket2_hdr *t = (void *)(txm + (size_t)head * TX_FRAME);
			if (!slot_free(t)) {
				if (queued && sendto(tx, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
					kicks++;
				queued = 0;
				if (!slot_free(t)) {
					ring_full++;
					continue;
				}
			}
			uint8_t *o = (uint8_t *)t + TX_DATA_OFF, *oip = o + 14, *oudp = oip + 20;
			memcpy(o, dst_mac, 6);
			memcpy(o + 6, src_mac, 6);
			o[12] = 0x08;
			o[13] = 0;
			uint16_t tot = htons((uint16_t)(20 + ulen)), id = htons(ip_id++), z = 0;
			oip[0] = 0x45;
			oip[1] = 0;
			memcpy(oip + 2, &tot, 2);
			memcpy(oip + 4, &id, 2);
			memcpy(oip + 6, &z, 2);
			oip[8] = (uint8_t)ttl;
			oip[9] = 17;
			memcpy(oip + 10, &z, 2);
			memcpy(oip + 12, &src_ip, 4);
			memcpy(oip + 16, &to, 4);
			uint16_t ck = (uint16_t)~csum_add(oip, 20, 0);
			memcpy(oip + 10, &ck, 2);
			memcpy(oudp, udp, ulen); /* ports, length, checksum and payload */
			memcpy(oudp + 2, &tport, 2);
			uint16_t in_ck;
			memcpy(&in_ck, udp + 6, 2);
			if (!(h->tp_status & TP_STATUS_CSUMNOTREADY) && in_ck) {
				const uint16_t *os = (const uint16_t *)(ip + 12),
					       *ns = (uint16_t *)(oip + 12);
				uint64_t s = (uint16_t)~in_ck;
				for (int w = 0; w < 4; w++) /* source and destination addresses */
					s = csum_word(s, os[w], ns[w]);
				s = csum_word(s, gport, tport);
				while (s >> 16)
					s = (s & 0xffff) + (s >> 16);
				ck = (uint16_t)~s;
			} else { /* pseudo-header + UDP header and payload, checksum field as zero */
				uint64_t s = (uint64_t)(src_ip & 0xffff) + (src_ip >> 16) +
					     (to & 0xffff) + (to >> 16) + htons(17) +
					     htons((uint16_t)ulen);
				memcpy(oudp + 6, &z, 2);
				ck = (uint16_t)~csum_add(oudp, ulen, s);
			}
			if (!ck)
				ck = 0xffff;
			memcpy(oudp + 6, &ck, 2);
			t->tp_len = HDRS + ulen - 8;
			__atomic_store_n(&t->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
			head = head + 1 == txn ? 0 : head + 1;
			queued++;
			sent++;
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		bi = bi + 1 == blocks ? 0 : bi + 1;
		nblocks++;
		if (queued && sendto(tx, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			kicks++;
	}
	struct tpacket_stats_v3 st;
	socklen_t sl3 = sizeof st;
	memset(&st, 0, sizeof st);
	getsockopt(rx, SOL_PACKET, PACKET_STATISTICS, &st, &sl3);
	printf("{\"frames\":%llu,\"matched\":%llu,\"queued\":%llu,\"ring_full\":%llu,"
	       "\"kicks\":%llu,\"blocks\":%llu,\"kernel_packets\":%u,\"kernel_drops\":%u}\n",
	       (unsigned long long)frames, (unsigned long long)matched, (unsigned long long)sent,
	       (unsigned long long)ring_full, (unsigned long long)kicks,
	       (unsigned long long)nblocks, st.tp_packets, st.tp_drops);
	return 0;
}
