/* SPDX-License-Identifier: MIT */
/*
 * test_claim.c — UDP port claims (udpclaim.c) on a real kernel, in a private
 * network namespace (unshare(CLONE_NEWNET); needs root, exits 77 = skipped
 * otherwise): a datagram to a port nobody holds is answered with ICMP port
 * unreachable (the connected sender gets ECONNREFUSED; Udp NoPorts, Icmp
 * OutDestUnreachs count it); a claimed port is answered never, each datagram
 * is dropped at the claim's filter and counted once in Udp InErrors; closing
 * the claim brings the answers back; an address that is not the host's is
 * EADDRNOTAVAIL; a port another socket holds is EADDRINUSE (never shared);
 * live objects.
 */
#include "t.h"
#include "mcr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char err[512];

/* Datagrams sent per case. */
#define DATAGRAMS 20

static long snmp(const char *section, const char *field)
{
	FILE *f = fopen("/proc/net/snmp", "r");
	REQUIRE(f != NULL);
	char head[2048], vals[2048];
	long v = -1;
	size_t n = strlen(section);
	while (fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
		if (strncmp(head, section, n) != 0 || head[n] != ':')
			continue;
		char *hs, *vs;
		char *h = strtok_r(head + n + 1, " \n", &hs);
		char *x = strtok_r(vals + n + 1, " \n", &vs);
		for (; h && x; h = strtok_r(NULL, " \n", &hs), x = strtok_r(NULL, " \n", &vs)) {
			if (strcmp(h, field) == 0)
				v = atol(x);
		}
	}
	fclose(f);
	REQUIRE(v >= 0);
	return v;
}

/* A UDP socket connected to 127.0.0.1:port: it sees the ICMP answers as ECONNREFUSED. */
static int sender(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	REQUIRE(connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0);
	return fd;
}

/* Send DATAGRAMS datagrams; returns how many sends or receives reported ECONNREFUSED. */
static int send_all(uint16_t port)
{
	int fd = sender(port), refused = 0;
	char buf[64] = "mcr";
	for (int i = 0; i < DATAGRAMS; i++) {
		if (send(fd, buf, sizeof(buf), 0) < 0) {
			REQUIRE(errno == ECONNREFUSED);
			refused++;
		}
		/* loopback answers within the send; a pending error shows on a receive */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10) > 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 &&
		    errno == ECONNREFUSED)
			refused++;
	}
	close(fd);
	return refused;
}

static void test_claimed_port_is_never_answered(uint32_t lo)
{
	const uint16_t port = 7001;
	/* the measurement works: nobody holds the port */
	long noports = snmp("Udp", "NoPorts"), unreach = snmp("Icmp", "OutDestUnreachs");
	CHECK(send_all(port) > 0);
	CHECK(snmp("Udp", "NoPorts") > noports);
	CHECK(snmp("Icmp", "OutDestUnreachs") > unreach);

	mcr_udp_claim *c = NULL;
	REQUIRE(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), port, &c, err, sizeof(err)) == 0);
	CHECK_EQ(mcr_debug_live_objects(), 1);
	noports = snmp("Udp", "NoPorts");
	unreach = snmp("Icmp", "OutDestUnreachs");
	long inerr = snmp("Udp", "InErrors"), indgrams = snmp("Udp", "InDatagrams");
	CHECK_EQ(send_all(port), 0);
	CHECK_EQ(snmp("Udp", "NoPorts"), noports);
	CHECK_EQ(snmp("Icmp", "OutDestUnreachs"), unreach);
	/* each datagram dropped at the claim's filter, counted once as an error, none queued */
	CHECK_EQ(snmp("Udp", "InErrors"), inerr + DATAGRAMS);
	CHECK_EQ(snmp("Udp", "InDatagrams"), indgrams);

	CHECK_EQ(mcr_udp_claim_close(c), 0);
	CHECK_EQ(mcr_debug_live_objects(), 0);
	noports = snmp("Udp", "NoPorts");
	CHECK(send_all(port) > 0);
	CHECK(snmp("Udp", "NoPorts") > noports);
}

static void test_refusals(uint32_t lo)
{
	mcr_udp_claim *c = NULL;
	/* not the host's address: no claim needed, and none possible */
	err[0] = 0;
	CHECK_EQ(mcr_udp_claim_open(lo, inet_addr("10.9.9.9"), 7002, &c, err, sizeof(err)),
		 -EADDRNOTAVAIL);
	CHECK(c == NULL);
	CHECK(strstr(err, "10.9.9.9:7002") != NULL);

	/* another program's socket on the port (with SO_REUSEADDR): refused, never shared */
	int other = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(other >= 0);
	int one = 1;
	REQUIRE(setsockopt(other, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
	REQUIRE(setsockopt(other, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0);
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(7003) };
	REQUIRE(bind(other, (struct sockaddr *)&any, sizeof(any)) == 0);
	err[0] = 0;
	CHECK_EQ(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), 7003, &c, err, sizeof(err)),
		 -EADDRINUSE);
	CHECK(strstr(err, "127.0.0.1:7003") != NULL);
	close(other);

	/* a second claim of the same port */
	mcr_udp_claim *first = NULL;
	REQUIRE(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), 7004, &first, err, sizeof(err)) ==
		0);
	CHECK_EQ(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), 7004, &c, err, sizeof(err)),
		 -EADDRINUSE);
	CHECK_EQ(mcr_udp_claim_close(first), 0);

	/* arguments */
	CHECK_EQ(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), 0, &c, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), 65536, &c, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(mcr_udp_claim_open(0, htonl(INADDR_LOOPBACK), 1, &c, err, sizeof(err)), -EINVAL);
	CHECK_EQ(mcr_udp_claim_open(lo, htonl(INADDR_LOOPBACK), 1, NULL, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(mcr_udp_claim_close(NULL), 0);
	CHECK_EQ(mcr_debug_live_objects(), 0);
}

int main(void)
{
	if (t_private_netns() != 0)
		return 77;
	struct mcr_iface_info info;
	REQUIRE(mcr_iface_by_name("lo", &info, err, sizeof(err)) == 0);
	test_claimed_port_is_never_answered(info.ifindex);
	test_refusals(info.ifindex);
	return t_done("claim");
}
