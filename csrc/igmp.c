/* SPDX-License-Identifier: MIT */
/*
 * igmp.c — group memberships so IGMP-snooping switches and the upstream
 * router deliver the input groups; the kernel sends the reports.
 *
 * A handle is one AF_INET socket that holds many memberships: the relay packs
 * them (src/relay/igmp_sockets.ts) instead of spending a descriptor on each.
 * What one socket may hold is bounded per network namespace, and the kernel
 * (net/ipv4/igmp.c) answers every bound with ENOBUFS:
 *   - net.ipv4.igmp_max_memberships: groups per socket, one per (group,
 *     interface), any-source or source-specific alike;
 *   - net.ipv4.igmp_max_msf: sources per source-specific group per socket
 *     (checked before the duplicate test, so a repeated source at the bound
 *     is ENOBUFS too); the first source of a group is always taken;
 *   - net.core.optmem_max (per namespace since Linux 6.9): option memory
 *     per socket, about 50 bytes per group plus the source lists.
 * mcr_igmp_limits() reads the three.
 *
 * Any-source joins use IP_ADD_MEMBERSHIP with ip_mreqn (by ifindex); source-
 * specific joins use MCAST_JOIN_SOURCE_GROUP, which also takes an ifindex, so
 * the interface needs no IPv4 address of its own. One socket must never hold
 * an any-source and a source-specific membership of the same group on the
 * same interface: the kernel would switch the first to the second's
 * include-mode filter (checked on Linux 6.18). Placing them is the caller's
 * job.
 */
#include "common.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mcr_igmp {
	int fd;
};

/* "a.b.c.d" of an address in network byte order (buf: 16 bytes). */
static const char *dotted(uint32_t a, char *buf)
{
	const uint8_t *b = (const uint8_t *)&a;
	snprintf(buf, 16, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	return buf;
}

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

static void fill_mreqn(struct ip_mreqn *mr, uint32_t ifindex, uint32_t group)
{
	memset(mr, 0, sizeof(*mr));
	mr->imr_multiaddr.s_addr = group;
	mr->imr_ifindex = (int)ifindex;
}

int mcr_igmp_open(mcr_igmp **out, char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_igmp_open: NULL out");
	*out = NULL;
	mcr_igmp *m = calloc(1, sizeof(*m));
	if (!m)
		return lib_err(err, errlen, ENOMEM, "mcr_igmp_open: calloc");
	m->fd = membership_socket(AF_INET, "IGMP memberships", err, errlen);
	if (m->fd < 0) {
		int rc = m->fd;
		free(m);
		return rc;
	}
	live_inc();
	*out = m;
	return 0;
}

int mcr_igmp_add(mcr_igmp *m, uint32_t ifindex, uint32_t group, uint32_t source, char *err,
		 size_t errlen)
{
	char gs[16], ss[16];
	if (!m)
		return lib_err(err, errlen, EINVAL, "mcr_igmp_add: NULL handle");
	dotted(group, gs);
	if ((((const uint8_t *)&group)[0] & 0xf0) != 0xe0)
		return lib_err(err, errlen, EINVAL, "mcr_igmp_add: %s is not a multicast group",
			       gs);
	if (source == 0) {
		struct ip_mreqn mr;
		fill_mreqn(&mr, ifindex, group);
		if (setsockopt(m->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
			return lib_err(err, errlen, errno, "IP_ADD_MEMBERSHIP %s on ifindex %u", gs,
				       ifindex);
		return 0;
	}
	struct group_source_req gsr;
	fill_gsr(&gsr, ifindex, group, source);
	if (setsockopt(m->fd, IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP, &gsr, sizeof(gsr)) < 0)
		return lib_err(err, errlen, errno, "MCAST_JOIN_SOURCE_GROUP (%s, %s) on ifindex %u",
			       dotted(source, ss), gs, ifindex);
	return 0;
}

int mcr_igmp_drop(mcr_igmp *m, uint32_t ifindex, uint32_t group, uint32_t source, char *err,
		  size_t errlen)
{
	char gs[16], ss[16];
	if (!m)
		return lib_err(err, errlen, EINVAL, "mcr_igmp_drop: NULL handle");
	dotted(group, gs);
	if (source == 0) {
		/* By ifindex, the kernel finds the socket's entry even when the
		 * interface is gone (it then has no device to tell). */
		struct ip_mreqn mr;
		fill_mreqn(&mr, ifindex, group);
		if (setsockopt(m->fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof(mr)) < 0)
			return lib_err(err, errlen, errno, "IP_DROP_MEMBERSHIP %s on ifindex %u",
				       gs, ifindex);
		return 0;
	}
	struct group_source_req gsr;
	fill_gsr(&gsr, ifindex, group, source);
	if (setsockopt(m->fd, IPPROTO_IP, MCAST_LEAVE_SOURCE_GROUP, &gsr, sizeof(gsr)) < 0)
		return lib_err(err, errlen, errno,
			       "MCAST_LEAVE_SOURCE_GROUP (%s, %s) on ifindex %u",
			       dotted(source, ss), gs, ifindex);
	return 0;
}

int mcr_igmp_close(mcr_igmp *m)
{
	if (!m)
		return 0;
	close(m->fd); /* drops every membership the socket holds */
	free(m);
	live_dec();
	return 0;
}

/* The integer in a /proc/sys file, or -1 when it cannot be read. */
static int64_t read_sysctl(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[32];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	long long v = strtoll(buf, &end, 10);
	if (end == buf || v < 0)
		return -1;
	return (int64_t)v;
}

int mcr_igmp_limits(int64_t *out3)
{
	if (!out3)
		return -EINVAL;
	/* /proc/sys/net shows the namespace of the process that opens it. */
	out3[MCR_IGMP_MAX_MEMBERSHIPS] = read_sysctl("/proc/sys/net/ipv4/igmp_max_memberships");
	out3[MCR_IGMP_MAX_MSF] = read_sysctl("/proc/sys/net/ipv4/igmp_max_msf");
	out3[MCR_OPTMEM_MAX] = read_sysctl("/proc/sys/net/core/optmem_max");
	return MCR_IGMP_LIMIT_COUNT;
}
