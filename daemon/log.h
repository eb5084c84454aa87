/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Logging for ftd: one line per event. Under systemd (JOURNAL_STREAM set) a
 * structured journal entry with upper-case fields (SYSLOG_IDENTIFIER=ftd,
 * FT_NODE= the node id, and those below); otherwise one line on stderr,
 * "ftd[NODE]: message", with the same fields appended, which the tests count
 * and grep. tests/ftd_journal.sh reads the journal entries.
 */
#ifndef FTD_LOG_H
#define FTD_LOG_H

#include <stdint.h>
#include <syslog.h>

struct ft_log_fields {
	const char *peer;	/* FT_PEER= */
	uint64_t epoch;		/* FT_EPOCH= (0: omitted) */
	int err;		/* ERRNO= (0: omitted), positive errno */
	const char *reason;	/* FT_REASON= */
	const char *role;	/* FT_ROLE= */
};

/* Every line is also handed to the sink (ftd's event stream), if set. */
typedef void (*ft_log_sink)(void *ctx, int prio, const char *line);

/* ident: SYSLOG_IDENTIFIER; node_id (0: none): FT_NODE=, and "ident[node]:" on stderr */
void ft_log_init(const char *ident, unsigned int node_id, int max_prio);
void ft_log_set_sink(ft_log_sink fn, void *ctx);
__attribute__((format(printf, 3, 4)))
void ft_log(int prio, const struct ft_log_fields *f, const char *fmt, ...);

#define ft_info(...)  ft_log(LOG_INFO, NULL, __VA_ARGS__)
#define ft_warn(...)  ft_log(LOG_WARNING, NULL, __VA_ARGS__)
#define ft_err(...)   ft_log(LOG_ERR, NULL, __VA_ARGS__)
#define ft_debug(...) ft_log(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
