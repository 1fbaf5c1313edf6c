/* SPDX-License-Identifier: MIT */
/*
 * tool.c — the shared part of the mcr tools (see tool.h).
 */
#include "tool.h"

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
