/* SPDX-License-Identifier: MIT */
/*
 * iface.c — interface lookups through ioctl(): index, MTU, flags, link type,
 * hardware address and first IPv4 address. Works in the calling thread's network
 * namespace.
 */
#include "common.h"

#include <net/if.h>
#include <stdio.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int ctl_socket(char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lib_err(err, errlen, errno, "socket(AF_INET, SOCK_DGRAM)");
	return fd;
}

int ifname_of(uint32_t ifindex, char *name, char *err, size_t errlen)
{
	if (ifindex == 0)
		return lib_err(err, errlen, EINVAL, "interface index 0");
	if (!if_indextoname(ifindex, name))
		return lib_err(err, errlen, errno, "if_indextoname(%u)", ifindex);
	return 0;
}

int ifmtu_of(uint32_t ifindex, uint32_t *mtu, char *err, size_t errlen)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	int rc = ifname_of(ifindex, ifr.ifr_name, err, errlen);
	if (rc < 0)
		return rc;
	int fd = ctl_socket(err, errlen);
	if (fd < 0)
		return fd;
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) {
		rc = lib_err(err, errlen, errno, "SIOCGIFMTU on %s (ifindex %u)", ifr.ifr_name,
			     ifindex);
		close(fd);
		return rc;
	}
	close(fd);
	*mtu = (uint32_t)ifr.ifr_mtu;
	return 0;
}

/* Fill everything but the index from the name. */
static int fill_info(int fd, const char *name, struct mcr_iface_info *out, char *err, size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		return lib_err(err, errlen, errno, "SIOCGIFMTU on %s", name);
	out->mtu = (uint32_t)ifr.ifr_mtu;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return lib_err(err, errlen, errno, "SIOCGIFFLAGS on %s", name);
	out->flags = (uint32_t)(uint16_t)ifr.ifr_flags;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return lib_err(err, errlen, errno, "SIOCGIFHWADDR on %s", name);
	out->link_type = ifr.ifr_hwaddr.sa_family;
	if (ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER) {
		memcpy(out->mac, ifr.ifr_hwaddr.sa_data, 6);
		out->has_mac = 1;
	}

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_addr.sa_family = AF_INET;
	if (ioctl(fd, SIOCGIFADDR, &ifr) < 0) {
		if (errno != EADDRNOTAVAIL)
			return lib_err(err, errlen, errno, "SIOCGIFADDR on %s", name);
	} else {
		struct sockaddr_in sin;
		memcpy(&sin, &ifr.ifr_addr, sizeof(sin));
		out->ipv4 = sin.sin_addr.s_addr;
	}
	return 0;
}

int mcr_iface_by_name(const char *name, struct mcr_iface_info *out, char *err, size_t errlen)
{
	if (!name || !out)
		return lib_err(err, errlen, EINVAL, "mcr_iface_by_name: NULL argument");
	if (strlen(name) >= IFNAMSIZ)
		return lib_err(err, errlen, ENAMETOOLONG, "interface name '%s'", name);
	memset(out, 0, sizeof(*out));
	int fd = ctl_socket(err, errlen);
	if (fd < 0)
		return fd;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	int rc = 0;
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		rc = lib_err(err, errlen, errno, "SIOCGIFINDEX on %s", name);
	else {
		out->ifindex = (uint32_t)ifr.ifr_ifindex;
		rc = fill_info(fd, name, out, err, errlen);
	}
	close(fd);
	return rc;
}

int mcr_iface_by_index(uint32_t ifindex, struct mcr_iface_info *out, char *name_out,
		       size_t name_len, char *err, size_t errlen)
{
	char name[IFNAMSIZ];
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_iface_by_index: NULL argument");
	memset(out, 0, sizeof(*out));
	int rc = ifname_of(ifindex, name, err, errlen);
	if (rc < 0)
		return rc;
	int fd = ctl_socket(err, errlen);
	if (fd < 0)
		return fd;
	out->ifindex = ifindex;
	rc = fill_info(fd, name, out, err, errlen);
	close(fd);
	if (rc == 0 && name_out && name_len > 0) {
		strncpy(name_out, name, name_len - 1);
		name_out[name_len - 1] = '\0';
	}
	return rc;
}

/* /proc/net/if_inet6 scopes and flags (include/net/ipv6.h, if_addr.h) */
#define IF_INET6_SCOPE_GLOBAL 0x00u
#define IF_INET6_SCOPE_LINK   0x20u
#define IF_INET6_UNUSABLE     (0x08u | 0x20u | 0x40u) /* DADFAILED | DEPRECATED | TENTATIVE */

static int hex_bytes(const char *hex, uint8_t *out16)
{
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out16[i] = (uint8_t)v;
	}
	return 0;
}

int mcr_iface_addr6(uint32_t ifindex, uint8_t *out16)
{
	if (!out16)
		return -EINVAL;
	FILE *f = fopen("/proc/net/if_inet6", "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	char hex[33], name[IFNAMSIZ + 1];
	unsigned idx, plen, scope, flags;
	int found = 0; /* 2: global, 1: link-local */
	while (found < 2 &&
	       fscanf(f, "%32s %x %x %x %x %16s", hex, &idx, &plen, &scope, &flags, name) == 6) {
		if (idx != ifindex || (flags & IF_INET6_UNUSABLE))
			continue;
		int rank = scope == IF_INET6_SCOPE_GLOBAL ? 2
			   : scope == IF_INET6_SCOPE_LINK ? 1
							  : 0;
		if (rank > found && hex_bytes(hex, out16) == 0)
			found = rank;
	}
	fclose(f);
	return found > 0;
}
