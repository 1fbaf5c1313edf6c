/* SPDX-License-Identifier: MIT */
/*
 * t.h — the tiny assertion helpers of the libmcr ctest suite.
 */
#ifndef MCR_T_H
#define MCR_T_H

#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int t_failures;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);      \
			t_failures++;                                                              \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n",          \
				__FILE__, __LINE__, #a, _a, #b, _b);                               \
			t_failures++;                                                              \
		}                                                                                  \
	} while (0)

/* Fatal variant: stop the test at once. */
#define REQUIRE(c)                                                                                 \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #c);    \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static inline int t_done(const char *name)
{
	if (t_failures) {
		fprintf(stderr, "%s: %d failure(s)\n", name, t_failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

/*
 * Enter a private network namespace with lo up (for tests that open
 * sockets): 0 once there; 77 (ctest's "skipped") when not root or unshare
 * is refused.
 */
static inline int t_private_netns(void)
{
	if (geteuid() != 0)
		return 77;
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return 77;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	REQUIRE(fd >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	REQUIRE(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	REQUIRE(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
	close(fd);
	return 0;
}

/* xorshift64* — deterministic pseudo-random numbers */
static uint64_t t_rng_state = 0x9e3779b97f4a7c15ull;
static inline uint64_t t_rand(void)
{
	uint64_t x = t_rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t_rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Naive RFC 1071 reference: big-endian 16-bit words, end-around carry. */
static inline uint16_t t_csum_naive(const uint8_t *b, uint32_t len, uint32_t seed)
{
	uint32_t s = (seed & 0xffff) + (seed >> 16);
	s = (s & 0xffff) + (s >> 16);
	for (uint32_t i = 0; i + 1 < len; i += 2) {
		s += (uint32_t)b[i] << 8 | b[i + 1];
		s = (s & 0xffff) + (s >> 16);
	}
	if (len & 1) {
		s += (uint32_t)b[len - 1] << 8;
		s = (s & 0xffff) + (s >> 16);
	}
	return (uint16_t)s;
}

#endif
