/* SPDX-License-Identifier: MIT */
/*
 * mld.c — IPv6 group memberships (MLD), the counterpart of igmp.c: one
 * AF_INET6 socket holds many memberships, the kernel sends the MLD reports
 * (MLDv2, or MLDv1 on a link whose querier speaks it).
 *
 * Any-source joins use IPV6_JOIN_GROUP (ipv6_mreq, by ifindex); source-
 * specific joins MCAST_JOIN_SOURCE_GROUP with AF_INET6 addresses, also by
 * ifindex, so the interface needs no global address. The kernel bounds a
 * socket's sources per group by net.ipv6.mld_max_msf and its option memory by
 * net.core.optmem_max, and answers ENOBUFS at either bound. As with IGMP, one
 * socket must never hold an any-source and a source-specific membership of
 * the same group on the same interface; placing them is the caller's job.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mcr_mld {
	int fd;
};

static const uint8_t any6[16];

/* Whether a source argument means "any source" (NULL or ::). */
static int any_source(const uint8_t *source)
{
	return !source || memcmp(source, any6, 16) == 0;
}

static const char *text6(const uint8_t *a, char *buf)
{
	if (!inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN))
		strcpy(buf, "?");
	return buf;
}

static void fill_gsr6(struct group_source_req *g, uint32_t ifindex, const uint8_t *group,
		      const uint8_t *source)
{
	memset(g, 0, sizeof(*g));
	g->gsr_interface = ifindex;
	struct sockaddr_in6 *gr = (struct sockaddr_in6 *)&g->gsr_group;
	struct sockaddr_in6 *sr = (struct sockaddr_in6 *)&g->gsr_source;
	gr->sin6_family = AF_INET6;
	memcpy(&gr->sin6_addr, group, 16);
	sr->sin6_family = AF_INET6;
	memcpy(&sr->sin6_addr, source, 16);
}

static void fill_mreq6(struct ipv6_mreq *mr, uint32_t ifindex, const uint8_t *group)
{
	memset(mr, 0, sizeof(*mr));
	memcpy(&mr->ipv6mr_multiaddr, group, 16);
	mr->ipv6mr_interface = ifindex;
}

int mcr_mld_open(mcr_mld **out, char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_mld_open: NULL out");
	*out = NULL;
	mcr_mld *m = calloc(1, sizeof(*m));
	if (!m)
		return lib_err(err, errlen, ENOMEM, "mcr_mld_open: calloc");
	m->fd = membership_socket(AF_INET6, "MLD memberships", err, errlen);
	if (m->fd < 0) {
		int rc = m->fd;
		free(m);
		return rc;
	}
	live_inc();
	*out = m;
	return 0;
}

/* Common checks of add/drop: a handle and a multicast group. */
static int check_args(const char *fn, mcr_mld *m, const uint8_t *group, char *gs, char *err,
		      size_t errlen)
{
	if (!m || !group)
		return lib_err(err, errlen, EINVAL, "%s: NULL %s", fn, m ? "group" : "handle");
	text6(group, gs);
	if (group[0] != 0xff)
		return lib_err(err, errlen, EINVAL, "%s: %s is not a multicast group", fn, gs);
	return 0;
}

int mcr_mld_add(mcr_mld *m, uint32_t ifindex, const uint8_t *group, const uint8_t *source,
		char *err, size_t errlen)
{
	char gs[INET6_ADDRSTRLEN], ss[INET6_ADDRSTRLEN];
	int rc = check_args("mcr_mld_add", m, group, gs, err, errlen);
	if (rc < 0)
		return rc;
	if (any_source(source)) {
		struct ipv6_mreq mr;
		fill_mreq6(&mr, ifindex, group);
		if (setsockopt(m->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) < 0)
			return lib_err(err, errlen, errno, "IPV6_JOIN_GROUP %s on ifindex %u", gs,
				       ifindex);
		return 0;
	}
	struct group_source_req gsr;
	fill_gsr6(&gsr, ifindex, group, source);
	if (setsockopt(m->fd, IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, &gsr, sizeof(gsr)) < 0)
		return lib_err(err, errlen, errno, "MCAST_JOIN_SOURCE_GROUP (%s, %s) on ifindex %u",
			       text6(source, ss), gs, ifindex);
	return 0;
}

int mcr_mld_drop(mcr_mld *m, uint32_t ifindex, const uint8_t *group, const uint8_t *source,
		 char *err, size_t errlen)
{
	char gs[INET6_ADDRSTRLEN], ss[INET6_ADDRSTRLEN];
	int rc = check_args("mcr_mld_drop", m, group, gs, err, errlen);
	if (rc < 0)
		return rc;
	if (any_source(source)) {
		struct ipv6_mreq mr;
		fill_mreq6(&mr, ifindex, group);
		if (setsockopt(m->fd, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &mr, sizeof(mr)) < 0)
			return lib_err(err, errlen, errno, "IPV6_LEAVE_GROUP %s on ifindex %u", gs,
				       ifindex);
		return 0;
	}
	struct group_source_req gsr;
	fill_gsr6(&gsr, ifindex, group, source);
	if (setsockopt(m->fd, IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP, &gsr, sizeof(gsr)) < 0)
		return lib_err(err, errlen, errno,
			       "MCAST_LEAVE_SOURCE_GROUP (%s, %s) on ifindex %u", text6(source, ss),
			       gs, ifindex);
	return 0;
}

int mcr_mld_close(mcr_mld *m)
{
	if (!m)
		return 0;
	close(m->fd); /* drops every membership the socket holds */
	free(m);
	live_dec();
	return 0;
}
