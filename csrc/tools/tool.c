/* SPDX-License-Identifier: MIT */
/*
 * tool.c — the shared part of the mcr tools (see tool.h).
 */
#include "tool.h"
#include "mcrtest.h"

#include <stdio.h>
#include <stdlib.h>

volatile sig_atomic_t tool_stop;

static const char *tool_name = "mcr-tool";
static const char *tool_hint = "";

void tool_init(const char *name, const char *usage_hint)
{
	tool_name = name;
	tool_hint = usage_hint;
}

void tool_die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", tool_name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s\n", tool_hint);
	exit(TOOL_EXIT_USAGE);
}

void tool_die_addr(const char *opt, const char *arg, int err)
{
	if (err == MCRT_ADDR_NO_IFACE) {
		fprintf(stderr, "%s: %s '%s': no such interface\n", tool_name, opt, arg);
		exit(1);
	}
	fprintf(stderr, "%s: %s %s, got '%s'\n%s\n", tool_name, opt, mcrt_addr_err_str(err), arg,
		tool_hint);
	exit(TOOL_EXIT_USAGE);
}

static void on_signal(int sig)
{
	(void)sig;
	tool_stop = 1;
}

void tool_stop_on_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
