/* SPDX-License-Identifier: MIT */
/*
 * test_igmp.c — IGMP sockets holding many memberships, and the file-
 * descriptor budget, in a private network namespace (unshare(CLONE_NEWNET);
 * needs root, exits 77 = skipped otherwise). The namespace's own sysctls are
 * lowered to reach every per-socket limit: what the kernel refuses (ENOBUFS),
 * what mcr_igmp_limits() reads, what /proc/net/igmp and /proc/net/mcfilter
 * show, leaving after the interface is gone, live objects. MLD: IPv6
 * any-source and source-specific memberships as /proc/net/igmp6 and
 * /proc/net/mcfilter6 show them, refusals.
 */
#include "t.h"
#include "mcr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static char err[512];

static int run(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static void write_sysctl(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	REQUIRE(f != NULL);
	fprintf(f, "%ld\n", v);
	REQUIRE(fclose(f) == 0);
}

static uint32_t ifindex_of(const char *name)
{
	struct mcr_iface_info info;
	REQUIRE(mcr_iface_by_name(name, &info, err, sizeof(err)) == 0);
	return info.ifindex;
}

/* Whether /proc/net/igmp lists group (network order) on device dev. */
static int igmp_listed(const char *dev, uint32_t group)
{
	FILE *f = fopen("/proc/net/igmp", "r");
	REQUIRE(f != NULL);
	char line[256], want[16], cur[IFNAMSIZ + 1] = "";
	snprintf(want, sizeof(want), "%08X", group);
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		/* "<idx>\t<device> : <count> ..." starts a device; its groups are indented */
		unsigned idx;
		char name[IFNAMSIZ + 1];
		if (line[0] != '\t' && line[0] != ' ') {
			if (sscanf(line, "%u %16s", &idx, name) == 2)
				snprintf(cur, sizeof(cur), "%s", name);
			continue;
		}
		char hex[16];
		if (sscanf(line, " %15s", hex) == 1 && strcmp(cur, dev) == 0 && !strcmp(hex, want))
			found = 1;
	}
	fclose(f);
	return found;
}

/* Sockets including source (host order) for group (host order) on dev, per /proc/net/mcfilter. */
static long mcfilter_includes(const char *dev, uint32_t group, uint32_t source)
{
	FILE *f = fopen("/proc/net/mcfilter", "r");
	REQUIRE(f != NULL);
	char line[256];
	long inc = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned idx, g, s;
		long in, ex;
		char name[IFNAMSIZ + 1];
		if (sscanf(line, "%u %16s 0x%x 0x%x %ld %ld", &idx, name, &g, &s, &in, &ex) == 6 &&
		    !strcmp(name, dev) && g == group && s == source)
			inc = in;
	}
	fclose(f);
	return inc;
}

static void test_limits_read(void)
{
	int64_t lim[MCR_IGMP_LIMIT_COUNT];
	CHECK_EQ(mcr_igmp_limits(lim), MCR_IGMP_LIMIT_COUNT);
	CHECK(lim[MCR_IGMP_MAX_MEMBERSHIPS] >= 0);
	CHECK(lim[MCR_IGMP_MAX_MSF] >= 0);
	CHECK(lim[MCR_OPTMEM_MAX] > 0);
	write_sysctl("/proc/sys/net/ipv4/igmp_max_memberships", 3);
	write_sysctl("/proc/sys/net/ipv4/igmp_max_msf", 2);
	CHECK_EQ(mcr_igmp_limits(lim), MCR_IGMP_LIMIT_COUNT);
	CHECK_EQ(lim[MCR_IGMP_MAX_MEMBERSHIPS], 3);
	CHECK_EQ(lim[MCR_IGMP_MAX_MSF], 2);
	CHECK_EQ(mcr_igmp_limits(NULL), -EINVAL);
}

/* igmp_max_memberships = 3: a socket takes three groups, the fourth needs another socket. */
static void test_memberships_limit(uint32_t lo)
{
	mcr_igmp *a = NULL, *b = NULL;
	REQUIRE(mcr_igmp_open(&a, err, sizeof(err)) == 0);
	REQUIRE(mcr_igmp_open(&b, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_debug_live_objects(), 2);
	for (uint32_t i = 1; i <= 3; i++)
		CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xef010100 + i), 0, err, sizeof(err)), 0);
	err[0] = 0;
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xef010104), 0, err, sizeof(err)), -ENOBUFS);
	CHECK(strstr(err, "IP_ADD_MEMBERSHIP 239.1.1.4") != NULL);
	CHECK_EQ(mcr_igmp_add(b, lo, htonl(0xef010104), 0, err, sizeof(err)), 0);
	for (uint32_t i = 1; i <= 4; i++)
		CHECK(igmp_listed("lo", htonl(0xef010100 + i)));
	/* the same group on a second socket is another user of it, not a new group */
	CHECK_EQ(mcr_igmp_add(b, lo, htonl(0xef010101), 0, err, sizeof(err)), 0);
	/* a group the socket already holds */
	CHECK_EQ(mcr_igmp_add(b, lo, htonl(0xef010101), 0, err, sizeof(err)), -EADDRINUSE);
	/* leaving frees a place */
	CHECK_EQ(mcr_igmp_drop(a, lo, htonl(0xef010102), 0, err, sizeof(err)), 0);
	CHECK(!igmp_listed("lo", htonl(0xef010102)));
	CHECK_EQ(mcr_igmp_drop(a, lo, htonl(0xef010102), 0, err, sizeof(err)), -EADDRNOTAVAIL);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xef010105), 0, err, sizeof(err)), 0);
	/* not a group */
	err[0] = 0;
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(0x0a000001), 0, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "10.0.0.1 is not a multicast group") != NULL);
	CHECK_EQ(mcr_igmp_add(NULL, lo, htonl(0xef010101), 0, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mcr_igmp_close(a), 0);
	/* closing leaves what only that socket held */
	CHECK(!igmp_listed("lo", htonl(0xef010103)));
	CHECK(igmp_listed("lo", htonl(0xef010101)));
	CHECK_EQ(mcr_igmp_close(b), 0);
	CHECK(!igmp_listed("lo", htonl(0xef010101)));
	CHECK_EQ(mcr_igmp_close(NULL), 0);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

/* igmp_max_msf = 2: two sources of a group per socket; the third needs another socket. */
static void test_msf_limit(uint32_t lo)
{
	const uint32_t g = 0xe8010101, s1 = 0x0a000001, s2 = 0x0a000002, s3 = 0x0a000003;
	mcr_igmp *a = NULL, *b = NULL;
	REQUIRE(mcr_igmp_open(&a, err, sizeof(err)) == 0);
	REQUIRE(mcr_igmp_open(&b, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), htonl(s1), err, sizeof(err)), 0);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), htonl(s2), err, sizeof(err)), 0);
	err[0] = 0;
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), htonl(s3), err, sizeof(err)), -ENOBUFS);
	CHECK(strstr(err, "MCAST_JOIN_SOURCE_GROUP (10.0.0.3, 232.1.1.1)") != NULL);
	/* at the bound even a repeated source is ENOBUFS (the bound is checked first) */
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), htonl(s1), err, sizeof(err)), -ENOBUFS);
	CHECK_EQ(mcr_igmp_add(b, lo, htonl(g), htonl(s3), err, sizeof(err)), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s1), 1);
	CHECK_EQ(mcfilter_includes("lo", g, s2), 1);
	CHECK_EQ(mcfilter_includes("lo", g, s3), 1);
	/* one source leaves, the group stays with the other */
	CHECK_EQ(mcr_igmp_drop(a, lo, htonl(g), htonl(s1), err, sizeof(err)), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s1), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s2), 1);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), htonl(s1), err, sizeof(err)), 0);
	/* the group with every source at once */
	CHECK_EQ(mcr_igmp_drop(a, lo, htonl(g), 0, err, sizeof(err)), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s1), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s2), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s3), 1);
	CHECK_EQ(mcr_igmp_close(a), 0);
	CHECK_EQ(mcr_igmp_close(b), 0);
	CHECK(!igmp_listed("lo", htonl(g)));
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

/*
 * Why one socket never holds (*,G) and (S,G) of the same group and interface:
 * the source-specific join switches the socket's any-source filter to
 * include-only (what /proc/net/mcfilter shows).
 */
static void test_mode_switch(uint32_t lo)
{
	const uint32_t g = 0xe8050501, s1 = 0x0a000009;
	mcr_igmp *a = NULL;
	REQUIRE(mcr_igmp_open(&a, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), 0, err, sizeof(err)), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s1), 0);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(g), htonl(s1), err, sizeof(err)), 0);
	CHECK_EQ(mcfilter_includes("lo", g, s1), 1); /* no longer any-source */
	CHECK_EQ(mcr_igmp_close(a), 0);
}

/* Leaving after the interface is gone: the whole group by ifindex works, one source does not. */
static void test_leave_gone(void)
{
	REQUIRE(run("ip link add mcrd0 type veth peer name mcrd1 && ip link set mcrd0 up") == 0);
	uint32_t d = ifindex_of("mcrd0");
	mcr_igmp *a = NULL;
	REQUIRE(mcr_igmp_open(&a, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_igmp_add(a, d, htonl(0xef020201), 0, err, sizeof(err)), 0);
	CHECK_EQ(mcr_igmp_add(a, d, htonl(0xe8020201), htonl(0x0a000001), err, sizeof(err)), 0);
	CHECK_EQ(mcr_igmp_add(a, d, htonl(0xe8020201), htonl(0x0a000002), err, sizeof(err)), 0);
	CHECK(igmp_listed("mcrd0", htonl(0xef020201)));
	REQUIRE(run("ip link del mcrd0") == 0); /* its peer goes too */
	CHECK_EQ(mcr_igmp_drop(a, d, htonl(0xe8020201), htonl(0x0a000001), err, sizeof(err)),
		 -ENODEV);
	CHECK_EQ(mcr_igmp_drop(a, d, htonl(0xe8020201), 0, err, sizeof(err)), 0);
	CHECK_EQ(mcr_igmp_drop(a, d, htonl(0xef020201), 0, err, sizeof(err)), 0);
	/* the socket's places are free again: three groups fit (igmp_max_memberships = 3) */
	uint32_t lo = ifindex_of("lo");
	for (uint32_t i = 1; i <= 3; i++)
		CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xef030300 + i), 0, err, sizeof(err)), 0);
	CHECK_EQ(mcr_igmp_close(a), 0);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

/* net.core.optmem_max (per namespace since Linux 6.9) bounds a socket's groups too. */
static void test_optmem(uint32_t lo)
{
	int64_t lim[MCR_IGMP_LIMIT_COUNT];
	mcr_igmp_limits(lim);
	write_sysctl("/proc/sys/net/ipv4/igmp_max_memberships", 1000);
	write_sysctl("/proc/sys/net/core/optmem_max", 16);
	mcr_igmp *a = NULL;
	REQUIRE(mcr_igmp_open(&a, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xef040401), 0, err, sizeof(err)), -ENOBUFS);
	/* room for a group (~48 bytes) but not for its source list (64): the
	 * source-specific join fails and leaves the group joined without a source
	 * (include mode, empty) until it is dropped */
	write_sysctl("/proc/sys/net/core/optmem_max", 100);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xe8040401), htonl(0x0a000001), err, sizeof(err)),
		 -ENOBUFS);
	CHECK(igmp_listed("lo", htonl(0xe8040401)));
	CHECK_EQ(mcr_igmp_drop(a, lo, htonl(0xe8040401), 0, err, sizeof(err)), 0);
	CHECK(!igmp_listed("lo", htonl(0xe8040401)));
	write_sysctl("/proc/sys/net/core/optmem_max", lim[MCR_OPTMEM_MAX]);
	CHECK_EQ(mcr_igmp_add(a, lo, htonl(0xef040401), 0, err, sizeof(err)), 0);
	CHECK_EQ(mcr_igmp_close(a), 0);
	write_sysctl("/proc/sys/net/ipv4/igmp_max_memberships", 3);
}

static void test_fd_limits(void)
{
	uint64_t v[3], w[3];
	CHECK_EQ(mcr_fd_limits(v, err, sizeof(err)), 0);
	CHECK(v[MCR_FD_SOFT] <= v[MCR_FD_HARD]);
	CHECK(v[MCR_FD_OPEN] >= 3 && v[MCR_FD_OPEN] < v[MCR_FD_SOFT]);
	mcr_igmp *a = NULL;
	REQUIRE(mcr_igmp_open(&a, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_fd_limits(w, err, sizeof(err)), 0);
	CHECK_EQ(w[MCR_FD_OPEN], v[MCR_FD_OPEN] + 1);
	mcr_igmp_close(a);
	/* lower the soft limit, see it, put it back */
	CHECK_EQ(mcr_fd_set_soft_limit(v[MCR_FD_SOFT] - 1, err, sizeof(err)), 0);
	CHECK_EQ(mcr_fd_limits(w, err, sizeof(err)), 0);
	CHECK_EQ(w[MCR_FD_SOFT], v[MCR_FD_SOFT] - 1);
	CHECK_EQ(mcr_fd_set_soft_limit(v[MCR_FD_SOFT], err, sizeof(err)), 0);
	CHECK_EQ(mcr_fd_limits(w, err, sizeof(err)), 0);
	CHECK_EQ(w[MCR_FD_SOFT], v[MCR_FD_SOFT]);
	/* above the hard limit: refused, with the figures */
	if (v[MCR_FD_HARD] != UINT64_MAX) {
		err[0] = 0;
		CHECK(mcr_fd_set_soft_limit(v[MCR_FD_HARD] + 1, err, sizeof(err)) < 0);
		CHECK(strstr(err, "setrlimit(RLIMIT_NOFILE)") != NULL);
	}
	CHECK_EQ(mcr_fd_limits(NULL, err, sizeof(err)), -EINVAL);
}

/* Whether /proc/net/<file> (igmp6: "idx dev group ...", mcfilter6: "idx dev
 * group source ...", addresses as 32 hex digits) lists group (and source) on dev. */
static int mld_listed(const char *file, const char *dev, const char *group, const char *source)
{
	char path[64], line[256], want_g[33], want_s[33] = "";
	uint8_t a[16];
	REQUIRE(inet_pton(AF_INET6, group, a) == 1);
	for (int i = 0; i < 16; i++)
		snprintf(want_g + 2 * i, 3, "%02x", a[i]);
	if (source) {
		REQUIRE(inet_pton(AF_INET6, source, a) == 1);
		for (int i = 0; i < 16; i++)
			snprintf(want_s + 2 * i, 3, "%02x", a[i]);
	}
	snprintf(path, sizeof(path), "/proc/net/%s", file);
	FILE *f = fopen(path, "r");
	REQUIRE(f != NULL);
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned idx;
		char name[IFNAMSIZ + 1], g[40], src[40] = "";
		int n = sscanf(line, "%u %16s %39s %39s", &idx, name, g, src);
		if (n >= 3 && !strcmp(name, dev) && !strcmp(g, want_g) &&
		    (!source || (n == 4 && !strcmp(src, want_s))))
			found = 1;
	}
	fclose(f);
	return found;
}

static void test_mld(uint32_t lo)
{
	char err[256];
	mcr_mld *m = NULL;
	REQUIRE(mcr_mld_open(&m, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_debug_live_objects(), 1);
	uint8_t g1[16], g2[16], src[16], any[16] = { 0 }, uni[16];
	REQUIRE(inet_pton(AF_INET6, "ff3e::1:1", g1) == 1);
	REQUIRE(inet_pton(AF_INET6, "ff3e::1:2", g2) == 1);
	REQUIRE(inet_pton(AF_INET6, "2001:db8::7", src) == 1);
	REQUIRE(inet_pton(AF_INET6, "2001:db8::1", uni) == 1);
	/* any source: NULL or :: */
	CHECK_EQ(mcr_mld_add(m, lo, g1, NULL, err, sizeof(err)), 0);
	CHECK(mld_listed("igmp6", "lo", "ff3e::1:1", NULL));
	CHECK_EQ(mcr_mld_add(m, lo, g1, any, err, sizeof(err)), -EADDRINUSE);
	/* source-specific */
	CHECK_EQ(mcr_mld_add(m, lo, g2, src, err, sizeof(err)), 0);
	CHECK(mld_listed("igmp6", "lo", "ff3e::1:2", NULL));
	CHECK(mld_listed("mcfilter6", "lo", "ff3e::1:2", "2001:db8::7"));
	/* refusals name what was refused */
	CHECK_EQ(mcr_mld_add(m, lo, uni, NULL, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "2001:db8::1 is not a multicast group") != NULL);
	CHECK_EQ(mcr_mld_add(NULL, lo, g1, NULL, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mcr_mld_add(m, lo, NULL, NULL, err, sizeof(err)), -EINVAL);
	CHECK(mcr_mld_add(m, 999999, g1, NULL, err, sizeof(err)) < 0);
	CHECK(strstr(err, "IPV6_JOIN_GROUP ff3e::1:1 on ifindex 999999") != NULL);
	/* leave */
	CHECK_EQ(mcr_mld_drop(m, lo, g2, src, err, sizeof(err)), 0);
	CHECK(!mld_listed("igmp6", "lo", "ff3e::1:2", NULL));
	CHECK_EQ(mcr_mld_drop(m, lo, g1, NULL, err, sizeof(err)), 0);
	CHECK(!mld_listed("igmp6", "lo", "ff3e::1:1", NULL));
	CHECK(mcr_mld_drop(m, lo, g1, NULL, err, sizeof(err)) < 0);
	CHECK(strstr(err, "IPV6_LEAVE_GROUP ff3e::1:1") != NULL);
	/* closing drops what the socket still holds */
	CHECK_EQ(mcr_mld_add(m, lo, g1, NULL, err, sizeof(err)), 0);
	CHECK(mld_listed("igmp6", "lo", "ff3e::1:1", NULL));
	CHECK_EQ(mcr_mld_close(m), 0);
	CHECK(!mld_listed("igmp6", "lo", "ff3e::1:1", NULL));
	CHECK_EQ(mcr_mld_close(NULL), 0);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

int main(void)
{
	if (t_private_netns() != 0)
		return 77;
	uint32_t lo = ifindex_of("lo");
	test_limits_read();
	test_memberships_limit(lo);
	test_msf_limit(lo);
	test_mode_switch(lo);
	test_leave_gone();
	test_optmem(lo);
	test_fd_limits();
	test_mld(lo);
	CHECK_EQ(mcr_debug_live_objects(), 0);
	return t_done("igmp");
}
