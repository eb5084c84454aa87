// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include "log.h"

static const char *ident = "ftd";
static char node[12];		/* FT_NODE=, and ident[node] on stderr */
static int max_prio = LOG_INFO;
static bool journal;
static ft_log_sink sink;
static void *sink_ctx;

void ft_log_init(const char *id, unsigned int node_id, int maxp)
{
	ident = id;
	node[0] = 0;
	if (node_id)
		snprintf(node, sizeof(node), "%u", node_id);
	max_prio = maxp;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void ft_log_set_sink(ft_log_sink fn, void *ctx)
{
	sink = fn;
	sink_ctx = ctx;
}

static void add(char *line, size_t cap, int *n, const char *name, const char *v)
{
	if (v && *v && *n < (int)cap)
		*n += snprintf(line + *n, cap - *n, " %s=%s", name, v);
}

static void jf(char f[][600], struct iovec *iov, int *k, const char *name, const char *v)
{
	if (!v || !*v || *k >= 9)
		return;
	iov[*k].iov_base = f[*k];
	iov[*k].iov_len = snprintf(f[*k], 600, "%s=%s", name, v);
	if (iov[*k].iov_len >= 600)
		iov[*k].iov_len = 599;
	(*k)++;
}

void ft_log(int prio, const struct ft_log_fields *f, const char *fmt, ...)
{
	char msg[512], line[900], ep[32] = "", er[16] = "";
	static const struct ft_log_fields none;
	va_list ap;
	int n;

	if (prio > max_prio && !sink)
		return;
	if (!f)
		f = &none;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->epoch)
		snprintf(ep, sizeof(ep), "%llu", (unsigned long long)f->epoch);
	if (f->err)
		snprintf(er, sizeof(er), "%d", f->err);

	n = snprintf(line, sizeof(line), "%s", msg);
	add(line, sizeof(line), &n, "FT_PEER", f->peer);
	add(line, sizeof(line), &n, "FT_EPOCH", ep);
	add(line, sizeof(line), &n, "ERRNO", er);
	add(line, sizeof(line), &n, "FT_REASON", f->reason);
	add(line, sizeof(line), &n, "FT_ROLE", f->role);
	if (sink)
		sink(sink_ctx, prio, line);
	if (prio > max_prio)
		return;
	if (journal) {
		char fields[9][600];
		struct iovec iov[9];
		int k = 0;

		jf(fields, iov, &k, "MESSAGE", msg);
		char pr[16];

		snprintf(pr, sizeof(pr), "%d", prio);
		jf(fields, iov, &k, "PRIORITY", pr);
		jf(fields, iov, &k, "SYSLOG_IDENTIFIER", ident);
		jf(fields, iov, &k, "FT_NODE", node);
		jf(fields, iov, &k, "FT_PEER", f->peer);
		jf(fields, iov, &k, "FT_EPOCH", f->epoch ? ep : NULL);
		jf(fields, iov, &k, "ERRNO", er);
		jf(fields, iov, &k, "FT_REASON", f->reason);
		jf(fields, iov, &k, "FT_ROLE", f->role);
		sd_journal_sendv(iov, k);
		return;
	}
	fprintf(stderr, "%s%s%s%s: %s\n", ident, node[0] ? "[" : "", node, node[0] ? "]" : "", line);
}
