/* SPDX-License-Identifier: MIT */
/*
 * fwd.c — the forwarder: output templates, forward descriptors written by TS,
 * per-template counters, and mcr_fwd_submit().
 *
 * Ring templates: a complete Ethernet/IPv4/UDP frame is built straight into
 * a TX ring slot (frame.c); each TX ring touched by a submit is kicked once.
 * A datagram longer than the ring's MTU is sent as IPv4 fragments when the
 * input did not set DF (as a router would), and dropped as too_big when it
 * did. A datagram is counted as sent only when the kernel has taken it: the
 * ring reports every frame's outcome back (fwd_done) and the frame's tag
 * says which template (and which life of it) the datagram belongs to.
 * Socket templates: a UDP socket bound to the output device; the datagrams
 * of one submit go out with one sendmmsg() per template, the iovecs pointing
 * into the RX ring (zero copy), the TTL in a per-message IP_TTL cmsg.
 *
 * IPv6 (mcr_fwd_set_template6; descriptor flag MCR_FWD_IN_IPV6 for an IPv6
 * input): every combination of input and output family is built by
 * frame6.c with new headers and the payload unchanged. An IPv6 output is
 * never fragmented (a datagram longer than the MTU is too_big, as at an IPv6
 * router); an IPv4 output of an IPv6 input is fragmented like an input
 * without DF. Socket templates with IPv6 addresses use an AF_INET6 socket
 * (IPV6_DONTFRAG, so the kernel refuses what it would fragment at source:
 * EMSGSIZE, too_big) and a per-message IPV6_HOPLIMIT cmsg.
 *
 * A template whose destination follows the input datagram's (struct
 * mcr_template: dst_host_bits, dst_port 0) gets it per datagram: the ring
 * kind builds the frame from a copy of the template with this datagram's
 * address and multicast MAC (frame_dest), the socket kind gives each message
 * its own address (msg_name).
 *
 * Every ring a template uses is registered with the forwarder (its owner):
 * the forwarder services it between batches, and a ring leaving the
 * forwarder (last template gone, or the forwarder closing) is kicked once
 * and what the kernel does not take is discarded and counted, so no
 * datagram is ever left without an outcome.
 */
#include "fwd.h"
#include "frame.h"
#include "ring_rx.h"
#include "ring_tx.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_TOUCHED    64u
#define CMSG_TTL_SPACE CMSG_SPACE(sizeof(int))

/* Frame tag (ring_tx.h txr_commit): template index, the template's life
 * (generation) so that outcomes of a cleared template's frames are not
 * charged to the next output in that slot, and whether the frame carries
 * the datagram's accounting (the last frame of it). */
#define TAG_TMPL_BITS  20u
#define TAG_TMPL_MASK  ((1u << TAG_TMPL_BITS) - 1u)
#define TAG_GEN_MASK   0x7ffu
#define TAG_LAST       (1u << 31)
/* aux of the last frame: payload bytes, and whether the datagram was fragmented */
#define AUX_BYTES_MASK 0xffffu
#define AUX_FRAGMENTED (1u << 31)
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000 /* carrier (rtnetlink flags) */
#endif
/* IPv4 flags word: Don't Fragment */
#define IP_DF 0x4000u

/* A socket template's destination, either family. */
union sock_dst {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

struct tmpl_state {
	struct mcr_template t;
	struct frame_addr6 a6; /* v6: source and destination addresses */
	uint8_t v6;	       /* output is IPv6 (mcr_fwd_set_template6) */
	struct mcr_tx *tx;     /* ring kind */
	int fd;		       /* socket kind only (valid while t.kind is SOCKET) */
	uint16_t ip_id;	       /* ring kind: IPv4 identification counter */
	uint8_t def_ttl;       /* TTL when neither descriptor nor template gives one */
	uint8_t frag_fail;     /* outcome + 1 of a failed earlier fragment of the datagram */
	uint32_t gen;	       /* life of this template slot (bumped when cleared) */
	int32_t down;	       /* socket kind: link not usable (errno), from mcr_fwd_set_link */
	union sock_dst dst;    /* socket kind */
	socklen_t dst_len;
};

struct ring_ref {
	struct mcr_tx *tx;
	uint32_t refs; /* templates using it */
};

struct mcr_fwd {
	uint32_t max_templates, max_desc;
	struct tmpl_state *tm;
	struct mcr_fwd_desc *desc;
	struct mcr_out_counters *own_ctr; /* the forwarder's own counter array */
	uint8_t *cbase;			  /* counters in use: template i at cbase + i * cstride */
	uint32_t cstride;
	uint32_t hi; /* 1 + the highest template index ever installed (loops stop there) */
	uint64_t invalid;
	uint64_t orphans;	/* outcomes of frames whose template was cleared meanwhile */
	struct ring_ref *rings; /* rings this forwarder owns */
	uint32_t nrings, cap_rings;
	/* socket-kind staging, all max_desc entries */
	struct mmsghdr *msgs;
	struct iovec *iov;
	union sock_dst *names; /* per message, for templates whose destination follows the input */
	uint8_t *cmsg;	       /* max_desc * CMSG_TTL_SPACE, aligned by calloc */
	uint32_t *stage_tmpl, *order;
	uint32_t *sock_cnt;  /* max_templates */
	uint32_t *sock_list; /* templates with staged messages */
	struct mcr_tx *touched[MAX_TOUCHED];
};

static void tmpl_clear(struct tmpl_state *s)
{
	if (s->t.kind == MCR_TMPL_SOCKET)
		close(s->fd);
	memset(s, 0, sizeof(*s));
}

static inline struct mcr_out_counters *ctr_of(const struct mcr_fwd *f, uint32_t idx)
{
	return (struct mcr_out_counters *)(f->cbase + (size_t)idx * f->cstride);
}

int mcr_fwd_open(uint32_t max_templates, uint32_t max_desc, mcr_fwd **out, char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_fwd_open: NULL out");
	*out = NULL;
	if (!max_templates || !max_desc || max_templates > (1u << 20) || max_desc > (1u << 20))
		return lib_err(err, errlen, EINVAL, "mcr_fwd_open: max_templates %u, max_desc %u",
			       max_templates, max_desc);
	struct mcr_fwd *f = calloc(1, sizeof(*f));
	if (!f)
		return lib_err(err, errlen, ENOMEM, "mcr_fwd_open: calloc");
	f->max_templates = max_templates;
	f->max_desc = max_desc;
	f->tm = calloc(max_templates, sizeof(*f->tm));
	f->desc = calloc(max_desc, sizeof(*f->desc));
	f->own_ctr = calloc(max_templates, sizeof(*f->own_ctr));
	f->cbase = (uint8_t *)f->own_ctr;
	f->cstride = sizeof(struct mcr_out_counters);
	f->msgs = calloc(max_desc, sizeof(*f->msgs));
	f->iov = calloc(max_desc, sizeof(*f->iov));
	f->names = calloc(max_desc, sizeof(*f->names));
	f->cmsg = calloc(max_desc, CMSG_TTL_SPACE);
	f->stage_tmpl = calloc(max_desc, sizeof(uint32_t));
	f->order = calloc(max_desc, sizeof(uint32_t));
	f->sock_cnt = calloc(max_templates, sizeof(uint32_t));
	f->sock_list = calloc(max_templates, sizeof(uint32_t));
	if (!f->tm || !f->desc || !f->own_ctr || !f->msgs || !f->iov || !f->names || !f->cmsg ||
	    !f->stage_tmpl || !f->order || !f->sock_cnt || !f->sock_list) {
		live_inc();
		mcr_fwd_close(f);
		return lib_err(err, errlen, ENOMEM,
			       "mcr_fwd_open: allocating %u templates, %u descs", max_templates,
			       max_desc);
	}
	live_inc();
	*out = f;
	return 0;
}

static void ring_leave(struct mcr_fwd *f, struct mcr_tx *tx);

int mcr_fwd_close(mcr_fwd *f)
{
	if (!f)
		return 0;
	while (f->nrings)
		ring_leave(f, f->rings[f->nrings - 1].tx);
	free(f->rings);
	if (f->tm)
		for (uint32_t i = 0; i < f->hi; i++)
			if (f->tm[i].t.kind == MCR_TMPL_SOCKET)
				close(f->tm[i].fd);
	free(f->tm);
	free(f->desc);
	free(f->own_ctr);
	free(f->msgs);
	free(f->iov);
	free(f->names);
	free(f->cmsg);
	free(f->stage_tmpl);
	free(f->order);
	free(f->sock_cnt);
	free(f->sock_list);
	free(f);
	live_dec();
	return 0;
}

struct mcr_fwd_desc *mcr_fwd_desc(mcr_fwd *f)
{
	return f ? f->desc : NULL;
}

struct mcr_out_counters *mcr_fwd_counters(mcr_fwd *f)
{
	return f ? (struct mcr_out_counters *)f->cbase : NULL;
}

int mcr_fwd_set_counters(mcr_fwd *f, void *mem, uint64_t bytes, uint32_t stride)
{
	if (!f || !mem || stride < sizeof(struct mcr_out_counters) || stride % 8u ||
	    bytes < (uint64_t)f->max_templates * stride)
		return -EINVAL;
	uint8_t *to = mem;
	for (uint32_t i = 0; i < f->hi; i++)
		memcpy(to + (size_t)i * stride, ctr_of(f, i), sizeof(struct mcr_out_counters));
	f->cbase = to;
	f->cstride = stride;
	return 0;
}

int mcr_fwd_reset_counters(mcr_fwd *f, uint32_t idx)
{
	if (!f || idx >= f->max_templates)
		return -EINVAL;
	memset(ctr_of(f, idx), 0, sizeof(struct mcr_out_counters));
	return 0;
}

uint64_t mcr_fwd_invalid(const mcr_fwd *f)
{
	return f ? f->invalid : 0;
}

/* ------------------------------------------------------ ring ownership */

/* A frame's outcome, reported by its ring (in ring order). */
static void fwd_done(void *ctx, uint32_t tag, uint32_t aux, enum txr_outcome o)
{
	struct mcr_fwd *f = ctx;
	uint32_t idx = tag & TAG_TMPL_MASK;
	if (idx >= f->max_templates ||
	    (f->tm[idx].gen & TAG_GEN_MASK) != ((tag >> TAG_TMPL_BITS) & TAG_GEN_MASK)) {
		f->orphans++;
		return;
	}
	struct tmpl_state *s = &f->tm[idx];
	if (!(tag & TAG_LAST)) { /* an earlier fragment: remember a failure for the datagram */
		if (o != TXR_SENT && !s->frag_fail)
			s->frag_fail = (uint8_t)(o + 1);
		return;
	}
	if (s->frag_fail && o == TXR_SENT)
		o = (enum txr_outcome)(s->frag_fail - 1);
	s->frag_fail = 0;
	struct mcr_out_counters *c = ctr_of(f, idx);
	if (c->queued > 0)
		c->queued--;
	switch (o) {
	case TXR_SENT:
		c->packets++;
		c->bytes += aux & AUX_BYTES_MASK;
		if (aux & AUX_FRAGMENTED)
			c->fragmented++;
		break;
	case TXR_TOO_BIG: c->too_big++; break;
	case TXR_LINK_DOWN: c->link_down++; break;
	case TXR_ERROR: c->errors++; break;
	}
}

static struct ring_ref *ring_find(struct mcr_fwd *f, const struct mcr_tx *tx)
{
	for (uint32_t i = 0; i < f->nrings; i++)
		if (f->rings[i].tx == tx)
			return &f->rings[i];
	return NULL;
}

/* The ring is being closed: forget it, and clear templates still using it
 * (they would point at freed memory). */
static void fwd_detach(void *ctx, struct mcr_tx *tx)
{
	struct mcr_fwd *f = ctx;
	for (uint32_t i = 0; i < f->hi; i++) {
		struct tmpl_state *s = &f->tm[i];
		if (s->t.kind == MCR_TMPL_RING && s->tx == tx) {
			s->t.kind = MCR_TMPL_UNUSED;
			s->tx = NULL;
			s->gen++;
		}
	}
	struct ring_ref *r = ring_find(f, tx);
	if (r)
		*r = f->rings[--f->nrings];
}

static int ring_join(struct mcr_fwd *f, struct mcr_tx *tx, char *err, size_t errlen)
{
	struct ring_ref *r = ring_find(f, tx);
	if (r) {
		r->refs++;
		return 0;
	}
	if (tx->owner && tx->owner != f)
		return lib_err(err, errlen, EBUSY, "TX ring belongs to another forwarder");
	if (f->nrings == f->cap_rings) {
		uint32_t cap = f->cap_rings ? f->cap_rings * 2 : 8;
		struct ring_ref *nr = realloc(f->rings, cap * sizeof(*nr));
		if (!nr)
			return lib_err(err, errlen, ENOMEM, "forwarder: ring registry");
		f->rings = nr;
		f->cap_rings = cap;
	}
	f->rings[f->nrings++] = (struct ring_ref){ .tx = tx, .refs = 1 };
	txr_set_owner(tx, f, fwd_done, fwd_detach);
	return 0;
}

/* The ring leaves the forwarder: one last kick, what the kernel does not
 * take is discarded (and counted), then the ring has no owner. */
static void ring_leave(struct mcr_fwd *f, struct mcr_tx *tx)
{
	if (tx->queued && !tx->down) {
		tx->unkicked = 1;
		(void)txr_kick(tx);
	}
	if (tx->queued)
		txr_discard(tx, tx->down ? TXR_LINK_DOWN : TXR_ERROR);
	txr_set_owner(tx, NULL, NULL, NULL);
	struct ring_ref *r = ring_find(f, tx);
	if (r)
		*r = f->rings[--f->nrings];
}

static void ring_unref(struct mcr_fwd *f, struct mcr_tx *tx)
{
	struct ring_ref *r = ring_find(f, tx);
	if (r && --r->refs == 0)
		ring_leave(f, tx);
}

int mcr_fwd_service(mcr_fwd *f)
{
	if (!f)
		return -EINVAL;
	uint64_t now = txr_now_ns();
	uint32_t queued = 0;
	for (uint32_t i = 0; i < f->nrings; i++)
		queued += txr_service(f->rings[i].tx, now);
	return (int)queued;
}

int mcr_fwd_set_link(mcr_fwd *f, uint32_t ifindex, uint32_t flags, uint32_t mtu)
{
	if (!f)
		return -EINVAL;
	int usable = (flags & (IFF_UP | IFF_LOWER_UP)) == (IFF_UP | IFF_LOWER_UP);
	int32_t why = usable ? 0 : (flags & IFF_UP) ? ENOLINK : ENETDOWN;
	for (uint32_t i = 0; i < f->nrings; i++)
		if (f->rings[i].tx->ifindex == ifindex)
			txr_set_link(f->rings[i].tx, flags, mtu);
	for (uint32_t i = 0; i < f->hi; i++)
		if (f->tm[i].t.kind == MCR_TMPL_SOCKET && f->tm[i].t.ifindex == ifindex)
			f->tm[i].down = why;
	return 0;
}

uint64_t mcr_fwd_orphans(const mcr_fwd *f)
{
	return f ? f->orphans : 0;
}

static int is_mcast(uint32_t a)
{
	return (((const uint8_t *)&a)[0] & 0xf0) == 0xe0;
}

static int open_socket(struct tmpl_state *s, uint32_t idx, char *err, size_t errlen)
{
	const struct mcr_template *t = &s->t;
	char name[IFNAMSIZ];
	int rc = ifname_of(t->ifindex, name, err, errlen);
	if (rc < 0)
		return rc;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return lib_err(err, errlen, errno, "template %u: socket(AF_INET, SOCK_DGRAM)", idx);
	int one = 1, zero = 0, small = 4096;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) < 0) {
		uint32_t ifx = htonl(t->ifindex);
		if (setsockopt(fd, IPPROTO_IP, IP_UNICAST_IF, &ifx, sizeof(ifx)) < 0) {
			rc = lib_err(err, errlen, errno,
				     "template %u: SO_BINDTODEVICE/IP_UNICAST_IF %s (ifindex %u)",
				     idx, name, t->ifindex);
			goto fail;
		}
	}
	/* never read: keep the receive buffer small */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (t->src_port) /* several templates may share a source port */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (t->src_ip || t->src_port) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_port = t->src_port,
					  .sin_addr.s_addr = t->src_ip };
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			const uint8_t *b = (const uint8_t *)&t->src_ip;
			rc = lib_err(err, errlen, errno, "template %u: bind %u.%u.%u.%u:%u on %s",
				     idx, b[0], b[1], b[2], b[3], ntohs(t->src_port), name);
			goto fail;
		}
	}
	int tos = t->tos;
	if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) < 0) {
		rc = lib_err(err, errlen, errno, "template %u: IP_TOS %d", idx, tos);
		goto fail;
	}
	if (is_mcast(t->dst_ip)) {
		struct ip_mreqn mr;
		memset(&mr, 0, sizeof(mr));
		mr.imr_ifindex = (int)t->ifindex;
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) < 0) {
			rc = lib_err(err, errlen, errno, "template %u: IP_MULTICAST_IF %s", idx,
				     name);
			goto fail;
		}
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof(zero)) < 0) {
			rc = lib_err(err, errlen, errno, "template %u: IP_MULTICAST_LOOP", idx);
			goto fail;
		}
	}
	s->fd = fd;
	s->dst.v4.sin_family = AF_INET;
	s->dst.v4.sin_addr.s_addr = t->dst_ip;
	s->dst.v4.sin_port = t->dst_port;
	s->dst_len = sizeof(s->dst.v4);
	return 0;
fail:
	close(fd);
	return rc;
}

static int is_mcast6(const uint8_t *a)
{
	return a[0] == 0xff;
}

/* The scope id an IPv6 address needs: the output interface for link-local
 * unicast (fe80::/10) and interface-/link-local multicast (ff01, ff02). */
static uint32_t scope_of(const uint8_t *a, uint32_t ifindex)
{
	int ll = (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || (a[0] == 0xff && (a[1] & 0x0f) <= 2);
	return ll ? ifindex : 0;
}

static int open_socket6(struct tmpl_state *s, uint32_t idx, char *err, size_t errlen)
{
	const struct mcr_template *t = &s->t;
	const struct frame_addr6 *a = &s->a6;
	static const uint8_t any[16];
	char name[IFNAMSIZ], as[INET6_ADDRSTRLEN];
	int rc = ifname_of(t->ifindex, name, err, errlen);
	if (rc < 0)
		return rc;
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return lib_err(err, errlen, errno, "template %u: socket(AF_INET6, SOCK_DGRAM)",
			       idx);
	int one = 1, zero = 0, small = 4096, ifx = (int)t->ifindex;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) < 0 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_IF, &ifx, sizeof(ifx)) < 0) {
		rc = lib_err(err, errlen, errno,
			     "template %u: SO_BINDTODEVICE/IPV6_UNICAST_IF %s (ifindex %u)", idx,
			     name, t->ifindex);
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (t->src_port)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (memcmp(a->src, any, 16) != 0 || t->src_port) {
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
					   .sin6_port = t->src_port,
					   .sin6_scope_id = scope_of(a->src, t->ifindex) };
		memcpy(&sa.sin6_addr, a->src, 16);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			inet_ntop(AF_INET6, a->src, as, sizeof(as));
			rc = lib_err(err, errlen, errno, "template %u: bind [%s]:%u on %s", idx, as,
				     ntohs(t->src_port), name);
			goto fail;
		}
	}
	int tclass = t->tos;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass)) < 0) {
		rc = lib_err(err, errlen, errno, "template %u: IPV6_TCLASS %d", idx, tclass);
		goto fail;
	}
	/* IPv6 is never fragmented on the way: refuse what the kernel would
	 * fragment at source (EMSGSIZE, counted too_big) */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof(one)) < 0) {
		rc = lib_err(err, errlen, errno, "template %u: IPV6_DONTFRAG", idx);
		goto fail;
	}
	if (is_mcast6(a->dst)) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifx, sizeof(ifx)) < 0) {
			rc = lib_err(err, errlen, errno, "template %u: IPV6_MULTICAST_IF %s", idx,
				     name);
			goto fail;
		}
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero)) < 0) {
			rc = lib_err(err, errlen, errno, "template %u: IPV6_MULTICAST_LOOP", idx);
			goto fail;
		}
	}
	s->fd = fd;
	memset(&s->dst, 0, sizeof(s->dst));
	s->dst.v6.sin6_family = AF_INET6;
	memcpy(&s->dst.v6.sin6_addr, a->dst, 16);
	s->dst.v6.sin6_port = t->dst_port;
	s->dst.v6.sin6_scope_id = scope_of(a->dst, t->ifindex);
	s->dst_len = sizeof(s->dst.v6);
	return 0;
fail:
	close(fd);
	return rc;
}

/* Install template idx; a6: its IPv6 addresses (an IPv6 output), or NULL. */
static int set_template(mcr_fwd *f, uint32_t idx, const struct mcr_template *t, const uint8_t *a6,
			char *err, size_t errlen)
{
	if (!f || !t)
		return lib_err(err, errlen, EINVAL, "mcr_fwd_set_template: NULL argument");
	if (idx >= f->max_templates)
		return lib_err(err, errlen, EINVAL, "template index %u >= max_templates %u", idx,
			       f->max_templates);
	int mcast = a6 ? is_mcast6(a6 + 16) : is_mcast(t->dst_ip);
	if (t->dst_host_bits > MCR_TMPL_MAX_HOST_BITS ||
	    (t->dst_host_bits && t->kind != MCR_TMPL_UNUSED && !mcast))
		return lib_err(
			err, errlen, EINVAL,
			"template %u: dst_host_bits %u needs a multicast dst_ip and at most %u",
			idx, t->dst_host_bits, MCR_TMPL_MAX_HOST_BITS);
	struct tmpl_state *old = &f->tm[idx];
	struct tmpl_state ns;
	memset(&ns, 0, sizeof(ns));
	ns.t = *t;
	if (a6) {
		ns.v6 = 1;
		memcpy(ns.a6.src, a6, 16);
		memcpy(ns.a6.dst, a6 + 16, 16);
	}
	ns.def_ttl = mcast ? 1 : 64;
	/* Replacing a template keeps its life (and counters): datagrams still in
	 * a ring are charged to the same output. Clearing it starts a new life. */
	ns.gen = t->kind == MCR_TMPL_UNUSED ? old->gen + 1 : old->gen;
	switch (t->kind) {
	case MCR_TMPL_UNUSED: break;
	case MCR_TMPL_RING: {
		struct mcr_tx *tx = (struct mcr_tx *)(uintptr_t)t->tx;
		if (!tx || tx->magic != MCR_TX_MAGIC)
			return lib_err(err, errlen, EINVAL,
				       "template %u: ring kind needs a TX handle", idx);
		if (t->ifindex != tx->ifindex && tx->fd >= 0)
			return lib_err(err, errlen, EINVAL,
				       "template %u: ifindex %u but its TX ring is on %u", idx,
				       t->ifindex, tx->ifindex);
		int rc = ring_join(f, tx, err, errlen);
		if (rc < 0)
			return rc;
		ns.tx = tx;
		ns.ip_id = old->t.kind == MCR_TMPL_RING ? old->ip_id : 0;
		break;
	}
	case MCR_TMPL_SOCKET: {
		int rc = ns.v6 ? open_socket6(&ns, idx, err, errlen)
			       : open_socket(&ns, idx, err, errlen);
		if (rc < 0)
			return rc;
		break;
	}
	default: return lib_err(err, errlen, EINVAL, "template %u: unknown kind %u", idx, t->kind);
	}
	struct mcr_tx *old_tx = old->t.kind == MCR_TMPL_RING ? old->tx : NULL;
	if (old_tx) /* may flush the old ring: its frames' outcomes still find the old life */
		ring_unref(f, old_tx);
	tmpl_clear(old);
	*old = ns;
	if (t->kind == MCR_TMPL_UNUSED) /* its frames still in a ring are orphans now */
		ctr_of(f, idx)->queued = 0;
	else if (idx >= f->hi)
		f->hi = idx + 1;
	return 0;
}

int mcr_fwd_set_template(mcr_fwd *f, uint32_t idx, const struct mcr_template *t, char *err,
			 size_t errlen)
{
	return set_template(f, idx, t, NULL, err, errlen);
}

int mcr_fwd_set_template6(mcr_fwd *f, uint32_t idx, const struct mcr_template *t,
			  const uint8_t *addrs, char *err, size_t errlen)
{
	if (!addrs)
		return lib_err(err, errlen, EINVAL, "mcr_fwd_set_template6: NULL addresses");
	return set_template(f, idx, t, addrs, err, errlen);
}

/* ------------------------------------------------------------- submit */

static inline uint32_t idx_tag(const struct tmpl_state *s, uint32_t idx)
{
	return idx | ((s->gen & TAG_GEN_MASK) << TAG_TMPL_BITS);
}

/*
 * Room for n frames in tx. When the ring is full of frames this batch
 * committed, kick it now instead of dropping the rest of the batch as
 * ring_full: the kernel takes them, and on a virtual link (veth across
 * namespaces) their slots are free again before sendto() returns.
 */
static int room_or_kick(struct mcr_tx *tx, uint32_t n)
{
	if (txr_has_room(tx, n))
		return 1;
	if (!tx->unkicked || tx->down)
		return 0;
	(void)txr_kick(tx);
	return !tx->down && txr_has_room(tx, n);
}

static void touch(struct mcr_fwd *f, struct mcr_tx *tx, uint32_t *nt)
{
	for (uint32_t i = 0; i < *nt; i++)
		if (f->touched[i] == tx)
			return;
	if (*nt == MAX_TOUCHED) { /* more rings than slots: kick early */
		for (uint32_t i = 0; i < *nt; i++)
			(void)txr_kick(f->touched[i]);
		*nt = 0;
	}
	f->touched[(*nt)++] = tx;
}

/* Whether a socket template's destination follows the input datagram's (per-message name). */
static inline int dst_follows(const struct mcr_template *t)
{
	return t->dst_host_bits || !t->dst_port;
}

static uint32_t send_socket_batches(struct mcr_fwd *f, uint32_t nstaged, uint32_t nlist)
{
	uint32_t sent = 0;
	/* group staged messages by template (counting sort), then one
	 * sendmmsg per template */
	uint32_t pos = 0;
	for (uint32_t k = 0; k < nlist; k++) {
		uint32_t ti = f->sock_list[k], c = f->sock_cnt[ti];
		f->sock_cnt[ti] = pos; /* becomes the write cursor */
		pos += c;
	}
	for (uint32_t i = 0; i < nstaged; i++)
		f->order[f->sock_cnt[f->stage_tmpl[i]]++] = i;
	/* sock_cnt[ti] is now the end of ti's range */
	uint32_t start = 0;
	for (uint32_t k = 0; k < nlist; k++) {
		uint32_t ti = f->sock_list[k], end = f->sock_cnt[ti];
		struct tmpl_state *s = &f->tm[ti];
		struct mcr_out_counters *c = ctr_of(f, ti);
		int follows = dst_follows(&s->t);
		for (uint32_t j = start; j < end; j++) {
			uint32_t i = f->order[j]; /* staged index: iov[i], names[i], cmsg slot i */
			struct msghdr *m = &f->msgs[j].msg_hdr;
			m->msg_name = follows ? &f->names[i] : &s->dst;
			m->msg_namelen = s->dst_len;
			m->msg_iov = &f->iov[i];
			m->msg_iovlen = 1;
			m->msg_control = f->cmsg + (size_t)i * CMSG_TTL_SPACE;
			m->msg_controllen = CMSG_TTL_SPACE;
			m->msg_flags = 0;
			f->msgs[j].msg_len = 0;
		}
		uint32_t off = start;
		while (off < end) {
			int r = sendmmsg(s->fd, &f->msgs[off], end - off, MSG_DONTWAIT);
			if (r > 0) {
				for (uint32_t j = off; j < off + (uint32_t)r; j++)
					c->bytes += f->msgs[j].msg_hdr.msg_iov->iov_len;
				c->packets += (uint32_t)r;
				sent += (uint32_t)r;
				off += (uint32_t)r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
				c->ring_full += end - off;
				break;
			}
			if (r < 0 && (errno == ENETDOWN || errno == ENODEV || errno == ENXIO)) {
				c->link_down += end - off; /* the rest would fail the same way */
				break;
			}
			if (r < 0 && errno == EMSGSIZE)
				c->too_big++;
			else
				c->errors++; /* skip the failing message, keep going */
			off++;
		}
		f->sock_cnt[ti] = 0;
		start = end;
	}
	return sent;
}

int fwd_submit_batch(mcr_fwd *f, const struct mcr_rx_desc *batch, uint32_t nbatch,
		     const uint8_t *base, uint64_t size, uint32_t n)
{
	if (!f)
		return -EINVAL;
	if (n > f->max_desc)
		n = f->max_desc; /* the rest cannot have been written */
	uint32_t sent = 0, nt = 0, nstaged = 0, nlist = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct mcr_fwd_desc *d = &f->desc[i];
		if (d->tmpl >= f->max_templates || f->tm[d->tmpl].t.kind == MCR_TMPL_UNUSED) {
			f->invalid++;
			continue;
		}
		struct tmpl_state *s = &f->tm[d->tmpl];
		struct mcr_out_counters *c = ctr_of(f, d->tmpl);
		if (d->frame >= nbatch || d->ttl > 255 || (d->flags & ~MCR_FWD_IN_IPV6)) {
			c->errors++;
			continue;
		}
		int in6 = (d->flags & MCR_FWD_IN_IPV6) != 0;
		/* the input's IP header (IPv6: the fixed one; extension headers may
		 * follow) and UDP header lie before the payload */
		uint32_t hdrs = in6 ? MCR_IP6_HLEN + MCR_UDP_HLEN : MCR_IP_HLEN + MCR_UDP_HLEN;
		const struct mcr_rx_desc *rd = &batch[d->frame];
		uint64_t fb = rd->offset, fe = fb + rd->snaplen;
		uint64_t l3 = d->l3_offset, po = d->payload_off, pe = po + d->payload_len;
		if (fe > size || l3 < fb || po < l3 + hdrs || pe > fe ||
		    d->payload_len > 65535u - 28u) {
			c->errors++;
			continue;
		}
		const uint8_t *ip = base + l3, *udp = base + po - 8u, *pl = base + po;
		uint8_t ttl = (uint8_t)(d->ttl ? d->ttl : s->t.ttl ? s->t.ttl : s->def_ttl);
		int csum_ok = !(rd->status & TP_STATUS_CSUMNOTREADY);
		const struct frame_in in = { .ip = ip,
					     .udp = udp,
					     .payload = pl,
					     .len = d->payload_len,
					     .v6 = in6,
					     .csum_ok = csum_ok };

		if (s->t.kind == MCR_TMPL_RING) {
			struct mcr_tx *tx = s->tx;
			if (tx->down) {
				c->link_down++;
				continue;
			}
			uint32_t tag = idx_tag(s, d->tmpl), room;
			if (s->v6) { /* IPv6 is never fragmented on the way */
				if (MCR_HDRS6_LEN + d->payload_len > tx->max_frame) {
					c->too_big++;
					continue;
				}
				if (!room_or_kick(tx, 1)) {
					if (tx->down) {
						c->link_down++;
					} else {
						c->ring_full++;
						tx->st.ring_full++;
					}
					continue;
				}
				uint8_t *slot = txr_slot(tx, &room);
				uint32_t len = frame_build6(slot, room, &s->t, &s->a6, &in, ttl);
				if (!len) {
					c->errors++;
					continue;
				}
				txr_commit(tx, len, tag | TAG_LAST, d->payload_len);
				c->queued++;
				touch(f, tx, &nt);
				sent++;
				continue;
			}
			uint32_t flen = MCR_HDRS_LEN + d->payload_len;
			uint32_t nf = flen <= tx->max_frame
					      ? 1
					      : frag_count(d->payload_len, tx->max_frame);
			struct mcr_template scratch;
			const struct mcr_template *t =
				in6 ? frame_dest_low(&s->t, frame_in_dst_low32(&in), &scratch)
				    : frame_dest(&s->t, ip, &scratch);
			/* an IPv6 input has no DF: it is fragmented into IPv4 like one without */
			if (nf != 1 && ((!in6 && (rd16(ip + 6) & IP_DF)) || !nf)) {
				c->too_big++; /* longer than the MTU with DF set: a router would not fragment */
				continue;
			}
			if (!room_or_kick(tx, nf)) {
				if (tx->down) {
					c->link_down++;
				} else {
					c->ring_full++;
					tx->st.ring_full += nf;
				}
				continue;
			}
			if (nf == 1 && flen <= tx->max_frame) {
				uint8_t *slot = txr_slot(tx, &room);
				uint32_t len =
					in6 ? frame_build_x4(slot, room, t, &in, ttl, s->ip_id)
					    : frame_build(slot, room, t, ip, udp, pl,
							  d->payload_len, ttl, s->ip_id, csum_ok);
				if (!len) {
					c->errors++;
					continue;
				}
				txr_commit(tx, len, tag | TAG_LAST, d->payload_len);
			} else {
				/* longer than the MTU: IPv4 fragments, as a router would */
				uint8_t udp8[MCR_UDP_HLEN];
				if (in6)
					udp_header_make(udp8, t, &in,
							csum_addr(t->src_ip) +
								csum_addr(t->dst_ip));
				else
					udp_header_build(udp8, t, ip, udp, pl, d->payload_len,
							 csum_ok);
				for (uint32_t k = 0; k < nf; k++) {
					uint8_t *slot = txr_slot(tx, &room);
					uint32_t len = frame_build_fragment(
						slot, room, t, udp8, pl, d->payload_len, ttl,
						s->ip_id, k, tx->max_frame);
					txr_commit(tx, len, k + 1 == nf ? tag | TAG_LAST : tag,
						   k + 1 == nf ? (d->payload_len | AUX_FRAGMENTED)
							       : 0);
				}
			}
			s->ip_id++;
			c->queued++;
			touch(f, tx, &nt);
			sent++;
		} else { /* socket */
			if (s->down) {
				c->link_down++;
				continue;
			}
			uint32_t k = nstaged++;
			f->stage_tmpl[k] = d->tmpl;
			if (dst_follows(&s->t)) {
				union sock_dst *nm = &f->names[k];
				*nm = s->dst;
				uint32_t low = frame_in_dst_low32(&in);
				if (s->v6) {
					frame_dst6(&s->t, &s->a6, low, nm->v6.sin6_addr.s6_addr);
					if (!s->t.dst_port)
						memcpy(&nm->v6.sin6_port, udp + 2, 2);
				} else {
					nm->v4.sin_addr.s_addr = frame_dst_addr_low(&s->t, low);
					if (!s->t.dst_port)
						memcpy(&nm->v4.sin_port, udp + 2, 2);
				}
			}
			f->iov[k].iov_base = (void *)(uintptr_t)pl;
			f->iov[k].iov_len = d->payload_len;
			struct cmsghdr *cm =
				(struct cmsghdr *)(f->cmsg + (size_t)k * CMSG_TTL_SPACE);
			cm->cmsg_level = s->v6 ? IPPROTO_IPV6 : IPPROTO_IP;
			cm->cmsg_type = s->v6 ? IPV6_HOPLIMIT : IP_TTL;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			int ittl = ttl;
			memcpy(CMSG_DATA(cm), &ittl, sizeof(int));
			if (f->sock_cnt[d->tmpl]++ == 0)
				f->sock_list[nlist++] = d->tmpl;
		}
	}
	for (uint32_t i = 0; i < nt; i++)
		(void)txr_kick(f->touched[i]);
	if (nstaged)
		sent += send_socket_batches(f, nstaged, nlist);
	return (int)sent;
}

int mcr_fwd_submit_mem(mcr_fwd *fwd, const struct mcr_rx_desc *batch, uint32_t nbatch,
		       const uint8_t *base, uint64_t size, uint32_t n)
{
	if (!fwd || !batch || !base)
		return -EINVAL;
	return fwd_submit_batch(fwd, batch, nbatch, base, size, n);
}

int mcr_fwd_submit(mcr_fwd *fwd, const mcr_rx *rx, uint32_t n)
{
	if (!fwd || !rx)
		return -EINVAL;
	const struct mcr_rx_desc *batch;
	uint32_t nbatch;
	const uint8_t *base;
	uint64_t size;
	rxr_batch(rx, &batch, &nbatch, &base, &size);
	return fwd_submit_batch(fwd, batch, nbatch, base, size, n);
}
