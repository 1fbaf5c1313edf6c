/* SPDX-License-Identifier: MIT */
/*
 * udpclaim.c — UDP port claims for unicast inputs. A datagram sent to one of
 * the host's own addresses is captured by the relay's RX ring and also
 * handed to the kernel's UDP stack; with no socket bound to its port, the
 * kernel answers the sender with ICMP port unreachable (and counts Udp
 * NoPorts). A claim is a UDP socket bound to (address, port) on the input
 * interface with a classic BPF filter that accepts nothing: the kernel finds
 * a socket, so it sends no ICMP, and the filter drops the datagram before it
 * is queued (nothing is ever read, no receive memory is used).
 *
 * The kernel counts each datagram dropped by a socket filter as Udp
 * InErrors and in the socket's drop counter (udp_queue_rcv_one_skb: the
 * filter runs after the socket lookup; `ss -uam` shows it as d<N>). Without
 * the claim the same datagram counts as Udp NoPorts, so one counter grows per
 * datagram either way (checked on Linux 6.18 by csrc/tests/test_claim.c).
 *
 * The filter is attached before the bind, so no datagram is ever queued.
 * Neither SO_REUSEADDR nor SO_REUSEPORT is set: a claim never shares a port
 * with another program's socket (that would take a share of its unicast
 * datagrams and drop them); the bind fails with EADDRINUSE instead. The
 * socket is bound to the input interface (SO_BINDTOIFINDEX, or
 * SO_BINDTODEVICE before Linux 5.7), so it only answers for datagrams that
 * arrive there. An address that is not the host's (a mirror port's) cannot
 * be bound (EADDRNOTAVAIL) and needs no claim: the kernel does not deliver
 * other hosts' datagrams to its UDP stack.
 */
#include "common.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62 /* Linux 5.7 */
#endif

struct mcr_udp_claim {
	int fd;
};

/* Bind fd to the device: by index, or by name on kernels before 5.7. */
static int bind_device(int fd, uint32_t ifindex, char *err, size_t errlen)
{
	int idx = (int)ifindex;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &idx, sizeof(idx)) == 0)
		return 0;
	if (errno != ENOPROTOOPT)
		return lib_err(err, errlen, errno, "SO_BINDTOIFINDEX %u", ifindex);
	char name[IFNAMSIZ];
	int rc = ifname_of(ifindex, name, err, errlen);
	if (rc < 0)
		return rc;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name) + 1) < 0)
		return lib_err(err, errlen, errno, "SO_BINDTODEVICE %s", name);
	return 0;
}

int mcr_udp_claim_open(uint32_t ifindex, uint32_t addr, uint32_t port, mcr_udp_claim **out,
		       char *err, size_t errlen)
{
	if (!out)
		return lib_err(err, errlen, EINVAL, "mcr_udp_claim_open: NULL out");
	*out = NULL;
	char as[INET_ADDRSTRLEN];
	struct in_addr ia = { .s_addr = addr };
	inet_ntop(AF_INET, &ia, as, sizeof(as));
	if (!ifindex || !port || port > 65535)
		return lib_err(err, errlen, EINVAL, "mcr_udp_claim_open: ifindex %u, port %u",
			       ifindex, port);
	mcr_udp_claim *c = calloc(1, sizeof(*c));
	if (!c)
		return lib_err(err, errlen, ENOMEM, "mcr_udp_claim_open: calloc");
	int rc;
	c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		rc = lib_err(err, errlen, errno, "socket(AF_INET, SOCK_DGRAM) to claim %s:%u", as,
			     port);
		free(c);
		return rc;
	}
	struct sock_filter none = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog fp = { .len = 1, .filter = &none };
	if (setsockopt(c->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0) {
		rc = lib_err(err, errlen, errno, "SO_ATTACH_FILTER (drop all) to claim %s:%u", as,
			     port);
		goto fail;
	}
	rc = bind_device(c->fd, ifindex, err, errlen);
	if (rc < 0)
		goto fail;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr = ia };
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = lib_err(err, errlen, errno, "bind UDP %s:%u on ifindex %u", as, port, ifindex);
		goto fail;
	}
	live_inc();
	*out = c;
	return 0;
fail:
	close(c->fd);
	free(c);
	return rc;
}

int mcr_udp_claim_close(mcr_udp_claim *c)
{
	if (!c)
		return 0;
	close(c->fd);
	free(c);
	live_dec();
	return 0;
}
