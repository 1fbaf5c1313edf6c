/* SPDX-License-Identifier: MIT */
/*
 * igmp.c — group memberships so IGMP-snooping switches and the upstream
 * router deliver the input groups. One AF_INET socket per membership (avoids
 * the per-socket igmp_max_memberships limit); the kernel sends the reports.
 *
 * Any-source joins use IP_ADD_MEMBERSHIP with ip_mreqn (by ifindex); source-
 * specific joins use MCAST_JOIN_SOURCE_GROUP, which also takes an ifindex, so
 * the interface needs no IPv4 address of its own.
 */
#include "common.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

struct mcr_igmp {
	int fd;
	uint32_t ifindex, group, source;
};

static void fill_gsr(struct group_source_req *g, uint32_t ifindex, uint32_t group, uint32_t source)
{
	memset(g, 0, sizeof(*g));
	g->gsr_interface = ifindex;
	struct sockaddr_in *gr = (struct sockaddr_in *)&g->gsr_group;
	struct sockaddr_in *sr = (struct sockaddr_in *)&g->gsr_source;
	gr->sin_family = AF_INET;
	gr->sin_addr.s_addr = group;
	sr->sin_family = AF_INET;
	sr->sin_addr.s_addr = source;
}

int mcr_igmp_join(uint32_t ifindex, uint32_t group, uint32_t source, mcr_igmp **out, char *err,
		  size_t errlen)
{
	char gs[16];
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_igmp_join: NULL out");
	*out = NULL;
	const uint8_t *g = (const uint8_t *)&group;
	snprintf(gs, sizeof(gs), "%u.%u.%u.%u", g[0], g[1], g[2], g[3]);
	if ((g[0] & 0xf0) != 0xe0)
		return lib_err(err, errlen, EINVAL, "mcr_igmp_join: %s is not a multicast group",
			       gs);

	mcr_igmp *m = calloc(1, sizeof(*m));
	if (!m)
		return lib_err(err, errlen, ENOMEM, "mcr_igmp_join: calloc");
	m->ifindex = ifindex;
	m->group = group;
	m->source = source;
	int rc;
	m->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		rc = lib_err(err, errlen, errno, "socket(AF_INET, SOCK_DGRAM) for IGMP join");
		free(m);
		return rc;
	}
	if (source == 0) {
		struct ip_mreqn mr;
		memset(&mr, 0, sizeof(mr));
		mr.imr_multiaddr.s_addr = group;
		mr.imr_ifindex = (int)ifindex;
		if (setsockopt(m->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
			rc = lib_err(err, errlen, errno, "IP_ADD_MEMBERSHIP %s on ifindex %u", gs,
				     ifindex);
			goto fail;
		}
	} else {
		struct group_source_req gsr;
		fill_gsr(&gsr, ifindex, group, source);
		if (setsockopt(m->fd, IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP, &gsr, sizeof(gsr)) < 0) {
			const uint8_t *s = (const uint8_t *)&source;
			rc = lib_err(err, errlen, errno,
				     "MCAST_JOIN_SOURCE_GROUP (%u.%u.%u.%u, %s) on ifindex %u",
				     s[0], s[1], s[2], s[3], gs, ifindex);
			goto fail;
		}
	}
	live_inc();
	*out = m;
	return 0;
fail:
	close(m->fd);
	free(m);
	return rc;
}

int mcr_igmp_close(mcr_igmp *m)
{
	if (!m)
		return 0;
	int rc = 0;
	if (m->source == 0) {
		struct ip_mreqn mr;
		memset(&mr, 0, sizeof(mr));
		mr.imr_multiaddr.s_addr = m->group;
		mr.imr_ifindex = (int)m->ifindex;
		if (setsockopt(m->fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof(mr)) < 0)
			rc = -errno;
	} else {
		struct group_source_req gsr;
		fill_gsr(&gsr, m->ifindex, m->group, m->source);
		if (setsockopt(m->fd, IPPROTO_IP, MCAST_LEAVE_SOURCE_GROUP, &gsr, sizeof(gsr)) < 0)
			rc = -errno;
	}
	close(m->fd); /* closing drops the membership anyway */
	free(m);
	live_dec();
	/* A failed explicit leave (e.g. the interface vanished) is not an error
	 * the caller can act on: the close dropped everything. */
	MCR_UNUSED(rc);
	return 0;
}
