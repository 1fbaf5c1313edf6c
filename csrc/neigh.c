/* SPDX-License-Identifier: MIT */
/*
 * neigh.c — the kernel's neighbour state of the next hop toward an address
 * out of an interface: one RTM_GETROUTE (the route's gateway, or the address
 * itself on a connected subnet) and one RTM_GETNEIGH for that next hop
 * (a single-entry get, Linux 5.0+), over a short-lived NETLINK_ROUTE socket.
 * A unicast output sent through a socket is "sent" once the kernel took it;
 * when ARP for its next hop fails the kernel drops it afterwards
 * (/proc/net/stat/arp_cache unresolved_discards; for IPv6, when neighbour
 * discovery fails, ndisc_cache): this is how the relay learns that, and says
 * so. IPv4 and IPv6 ask the same two questions.
 */
#include "common.h"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NL_BUF	   8192
#define NL_TIMEOUT 200000 /* µs: the kernel answers at once; never block the data path long */

struct nl_req {
	struct nlmsghdr h;
	union {
		struct rtmsg r;
		struct ndmsg n;
	} u;
	char attrs[64];
};

static void add_attr(struct nl_req *q, uint16_t type, const void *data, uint16_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)q + NLMSG_ALIGN(q->h.nlmsg_len));
	a->rta_type = type;
	a->rta_len = (uint16_t)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	q->h.nlmsg_len = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Send q, receive the answer into buf; returns its length, or -errno (an
 * NLMSG_ERROR answer gives its error). */
static int roundtrip(int fd, struct nl_req *q, char *buf)
{
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	if (sendto(fd, q, q->h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, NL_BUF, 0);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (!NLMSG_OK(h, (size_t)n))
			return -EPROTO;
		if (h->nlmsg_seq != q->h.nlmsg_seq)
			continue; /* not ours */
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error ? e->error : -EPROTO;
		}
		return (int)n;
	}
}

/* The next hop toward dst (alen bytes of family) out of ifindex and its neighbour state: see
 * mcr_neigh_state, mcr_neigh_state6. nexthop (alen bytes) starts as dst. */
static int neigh_state(uint8_t family, uint32_t ifindex, const void *dst, uint16_t alen,
		       uint32_t *state, void *nexthop, char *err, size_t errlen)
{
	*state = 0;
	memcpy(nexthop, dst, alen);
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return lib_err(err, errlen, errno, "socket(AF_NETLINK, NETLINK_ROUTE)");
	struct timeval tv = { .tv_sec = 0, .tv_usec = NL_TIMEOUT };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char *buf = malloc(NL_BUF);
	if (!buf) {
		close(fd);
		return lib_err(err, errlen, ENOMEM, "mcr_neigh_state: buffer");
	}
	int rc;
	struct nl_req q;
	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	q.h.nlmsg_type = RTM_GETROUTE;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.h.nlmsg_seq = 1;
	q.u.r.rtm_family = family;
	q.u.r.rtm_dst_len = (uint8_t)(alen * 8u);
	add_attr(&q, RTA_DST, dst, alen);
	add_attr(&q, RTA_OIF, &ifindex, 4);
	int n = roundtrip(fd, &q, buf);
	if (n < 0) {
		rc = lib_err(err, errlen, -n, "route to the output's destination (ifindex %u)",
			     ifindex);
		goto out;
	}
	{
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (h->nlmsg_type != RTM_NEWROUTE) {
			rc = lib_err(err, errlen, EPROTO, "RTM_GETROUTE answered type %u",
				     h->nlmsg_type);
			goto out;
		}
		struct rtmsg *r = NLMSG_DATA(h);
		if (r->rtm_type != RTN_UNICAST && r->rtm_type != RTN_LOCAL) {
			rc = lib_err(err, errlen, EHOSTUNREACH, "route type %u", r->rtm_type);
			goto out;
		}
		int len = (int)RTM_PAYLOAD(h);
		for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len))
			if (a->rta_type == RTA_GATEWAY && RTA_PAYLOAD(a) == alen)
				memcpy(nexthop, RTA_DATA(a), alen);
		if (r->rtm_type == RTN_LOCAL) { /* the host itself: no neighbour */
			*state = NUD_NOARP;
			rc = 0;
			goto out;
		}
	}
	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
	q.h.nlmsg_type = RTM_GETNEIGH;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.h.nlmsg_seq = 2;
	q.u.n.ndm_family = family;
	q.u.n.ndm_ifindex = (int)ifindex;
	add_attr(&q, NDA_DST, nexthop, alen);
	n = roundtrip(fd, &q, buf);
	if (n == -ENOENT) { /* no entry: nothing was sent there lately */
		rc = 0;
		goto out;
	}
	if (n < 0) {
		rc = lib_err(err, errlen, -n, "neighbour entry (ifindex %u)", ifindex);
		goto out;
	}
	{
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (h->nlmsg_type != RTM_NEWNEIGH) {
			rc = lib_err(err, errlen, EPROTO, "RTM_GETNEIGH answered type %u",
				     h->nlmsg_type);
			goto out;
		}
		const struct ndmsg *nd = NLMSG_DATA(h);
		*state = nd->ndm_state;
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

int mcr_neigh_state(uint32_t ifindex, uint32_t dst, uint32_t *state, uint32_t *nexthop, char *err,
		    size_t errlen)
{
	if (!state || !nexthop || ifindex == 0)
		return lib_err(err, errlen, EINVAL, "mcr_neigh_state: bad argument");
	return neigh_state(AF_INET, ifindex, &dst, 4, state, nexthop, err, errlen);
}

int mcr_neigh_state6(uint32_t ifindex, const uint8_t *dst16, uint32_t *state, uint8_t *nexthop16,
		     char *err, size_t errlen)
{
	if (!dst16 || !state || !nexthop16 || ifindex == 0)
		return lib_err(err, errlen, EINVAL, "mcr_neigh_state6: bad argument");
	return neigh_state(AF_INET6, ifindex, dst16, 16, state, nexthop16, err, errlen);
}
