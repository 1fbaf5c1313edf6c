/* SPDX-License-Identifier: MIT */
/*
 * tool.h — what every mcr tool (mcr-gen, mcr-sink, mcr-inject) shares: usage
 * errors (a message naming the tool, a hint, exit status 2), how an ADDR:PORT
 * argument is refused, and a stop flag that SIGINT and SIGTERM set. Plain C11 +
 * POSIX; no dependency on libmcr.
 */
#ifndef MCR_TOOL_H
#define MCR_TOOL_H

#include <signal.h>

/* Exit status of a usage error (0 = ok, 1 = runtime error). */
#define TOOL_EXIT_USAGE 2

/* Set by SIGINT/SIGTERM once tool_stop_on_signals() ran. */
extern volatile sig_atomic_t tool_stop;

/* Name the tool and the hint printed after a usage error ("(see mcr-gen --help)"). */
void tool_init(const char *name, const char *usage_hint);

/* Print "<name>: " + fmt (with arg) + the hint on stderr and exit(TOOL_EXIT_USAGE). */
void tool_die_usage(const char *fmt, const char *arg) __attribute__((noreturn));

/* A refused ADDR:PORT of option opt (err from mcrt_parse_addr_port): a usage error, except
 * an unknown "%IFNAME" scope, which is a runtime error (exit 1) like an unknown --iface. */
void tool_die_addr(const char *opt, const char *arg, int err) __attribute__((noreturn));

/* SIGINT and SIGTERM set tool_stop (no SA_RESTART: blocking calls return EINTR). */
void tool_stop_on_signals(void);

#endif /* MCR_TOOL_H */
