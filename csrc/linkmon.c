/* SPDX-License-Identifier: MIT */
/*
 * linkmon.c — link monitor over rtnetlink: RTM_NEWLINK/RTM_DELLINK messages
 * of the RTMGRP_LINK group, plus dumps on request, decoded into fixed-size
 * events (index, flags, MTU, link type, name); and RTM_NEWADDR/RTM_DELADDR
 * of RTMGRP_IPV4_IFADDR as MCR_LINK_ADDR events (which addresses are the
 * host's decides whether a unicast input needs a UDP port claim). One socket serves the whole
 * process; the caller blocks in mcr_linkmon_wait() on a thread that may
 * block and reads the event array afterwards.
 *
 * When the kernel had to drop messages (the socket's receive buffer overran:
 * recv() fails with ENOBUFS), a MCR_LINK_RESYNC event tells the caller to
 * ask for a fresh dump: nothing is ever silently missed.
 */
#include "common.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_BUF_SIZE    65536u	  /* one recv(): many link messages */
#define NL_RCVBUF      (1u << 20) /* kernel-side queue before overrun */
#define MAX_EVENTS_CAP 65536u

struct mcr_linkmon {
	int fd;
	int wake_fd;
	uint32_t seq;
	uint32_t max_events;
	struct mcr_link_event *ev;
	uint8_t *buf;
	/* messages read but not yet turned into events (event array was full) */
	uint32_t buf_len, buf_off;
};

int mcr_linkmon_open(int32_t wake_fd, uint32_t max_events, mcr_linkmon **out, char *err,
		     size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_linkmon_open: NULL out");
	*out = NULL;
	if (!max_events || max_events > MAX_EVENTS_CAP)
		return lib_err(err, errlen, EINVAL, "mcr_linkmon_open: max_events %u", max_events);
	struct mcr_linkmon *m = calloc(1, sizeof(*m));
	if (!m)
		return lib_err(err, errlen, ENOMEM, "mcr_linkmon_open: calloc");
	m->fd = -1;
	m->wake_fd = wake_fd;
	m->max_events = max_events;
	m->ev = calloc(max_events, sizeof(*m->ev));
	m->buf = malloc(NL_BUF_SIZE);
	int rc;
	if (!m->ev || !m->buf) {
		rc = lib_err(err, errlen, ENOMEM, "mcr_linkmon_open: buffers");
		goto fail;
	}
	m->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (m->fd < 0) {
		rc = lib_err(err, errlen, errno, "socket(AF_NETLINK, NETLINK_ROUTE)");
		goto fail;
	}
	int sz = (int)NL_RCVBUF;
	(void)setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR };
	if (bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = lib_err(err, errlen, errno,
			     "bind rtnetlink (RTMGRP_LINK, RTMGRP_IPV4_IFADDR)");
		goto fail;
	}
	live_inc();
	*out = m;
	return 0;
fail:
	if (m->fd >= 0)
		close(m->fd);
	free(m->ev);
	free(m->buf);
	free(m);
	return rc;
}

int mcr_linkmon_dump(mcr_linkmon *m)
{
	if (!m)
		return -EINVAL;
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = ++m->seq;
	req.ifi.ifi_family = AF_UNSPEC;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	if (sendto(m->fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* Decode one RTM_NEWLINK/RTM_DELLINK message into ev. */
static void decode_link(const struct nlmsghdr *nh, struct mcr_link_event *ev)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(nh);
	memset(ev, 0, sizeof(*ev));
	ev->kind = nh->nlmsg_type == RTM_DELLINK ? MCR_LINK_DEL : MCR_LINK_NEW;
	ev->ifindex = (uint32_t)ifi->ifi_index;
	ev->flags = ifi->ifi_flags;
	ev->type = ifi->ifi_type;
	int len = (int)IFLA_PAYLOAD(nh);
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == IFLA_MTU && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
			memcpy(&ev->mtu, RTA_DATA(a), sizeof(uint32_t));
		} else if (a->rta_type == IFLA_IFNAME) {
			size_t n = RTA_PAYLOAD(a);
			if (n > sizeof(ev->name) - 1)
				n = sizeof(ev->name) - 1;
			memcpy(ev->name, RTA_DATA(a), n);
			ev->name[n] = '\0';
		}
	}
}

/* Turn buffered messages into events until the buffer or the array is used
 * up. Returns the number of events now in the array. */
static uint32_t drain_buffer(struct mcr_linkmon *m, uint32_t n)
{
	while (m->buf_off < m->buf_len && n < m->max_events) {
		struct nlmsghdr *nh = (struct nlmsghdr *)(m->buf + m->buf_off);
		uint32_t left = m->buf_len - m->buf_off;
		if (!NLMSG_OK(nh, left)) {
			m->buf_off = m->buf_len;
			break;
		}
		m->buf_off += NLMSG_ALIGN(nh->nlmsg_len);
		if (nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK) {
			if (nh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
				decode_link(nh, &m->ev[n++]);
		} else if (nh->nlmsg_type == RTM_NEWADDR || nh->nlmsg_type == RTM_DELADDR) {
			const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
			if (nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*ifa)) &&
			    ifa->ifa_family == AF_INET) {
				memset(&m->ev[n], 0, sizeof(m->ev[n]));
				m->ev[n].kind = MCR_LINK_ADDR;
				m->ev[n++].ifindex = ifa->ifa_index;
			}
		} else if (nh->nlmsg_type == NLMSG_DONE) {
			memset(&m->ev[n], 0, sizeof(m->ev[n]));
			m->ev[n++].kind = MCR_LINK_DUMP_DONE;
		} else if (nh->nlmsg_type == NLMSG_ERROR) {
			/* a refused dump request (e.g. EBUSY): ask the caller to try again */
			memset(&m->ev[n], 0, sizeof(m->ev[n]));
			m->ev[n++].kind = MCR_LINK_RESYNC;
		}
	}
	if (m->buf_off >= m->buf_len)
		m->buf_off = m->buf_len = 0;
	return n;
}

int mcr_linkmon_wait(mcr_linkmon *m, int32_t timeout_ms)
{
	if (!m)
		return -EINVAL;
	uint32_t n = drain_buffer(m, 0);
	if (n)
		return (int)n;
	struct pollfd pfd[2] = { { .fd = m->fd, .events = POLLIN } };
	nfds_t nfd = 1;
	if (m->wake_fd >= 0) {
		pfd[1].fd = m->wake_fd;
		pfd[1].events = POLLIN;
		nfd = 2;
	}
	int r = poll(pfd, nfd, timeout_ms < 0 ? -1 : timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (nfd == 2 && (pfd[1].revents & POLLIN)) {
		uint64_t v;
		if (read(m->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		if (!(pfd[0].revents & POLLIN))
			return 0;
	}
	while (n < m->max_events) {
		ssize_t got = recv(m->fd, m->buf, NL_BUF_SIZE, MSG_DONTWAIT);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) { /* overrun: some events were lost */
				memset(&m->ev[n], 0, sizeof(m->ev[n]));
				m->ev[n++].kind = MCR_LINK_RESYNC;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return n ? (int)n : -errno;
		}
		m->buf_len = (uint32_t)got;
		m->buf_off = 0;
		n = drain_buffer(m, n);
		if (m->buf_len) /* array full, the rest waits for the next call */
			break;
	}
	return (int)n;
}

struct mcr_link_event *mcr_linkmon_events(mcr_linkmon *m)
{
	return m ? m->ev : NULL;
}

int mcr_linkmon_close(mcr_linkmon *m)
{
	if (!m)
		return 0;
	if (m->fd >= 0)
		close(m->fd);
	free(m->ev);
	free(m->buf);
	free(m);
	live_dec();
	return 0;
}
