/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One ftd node: the log ring, the channel, failure detection and the role
 * state machine, driven by one sd-event loop. ftd.c adds the process
 * (config, signals, sd_notify); status.c serves it to ftctl.
 *
 * Failure detection: the peer is declared dead when no authenticated frame
 * of any kind (heartbeat, log, ack) arrived for peer_timeout. Heartbeats go
 * in-band on the channel every heartbeat_interval in both directions, so
 * they share the channel's authentication and epoch fencing and need no
 * second socket; log and ack traffic count as heartbeats too. Detection
 * starts once the peer was seen in this run (a node that never met its peer
 * has nothing to take over).
 */
#ifndef FTD_NODE_H
#define FTD_NODE_H

#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>
#include "channel.h"
#include "config.h"
#include "role.h"

#define FT_NODE_EVENTS 256

struct ft_event {
	uint64_t seq;
	uint64_t realtime_ms;
	int prio;
	char line[480];
};

struct ft_node;

struct ft_node_ops {
	void (*changed)(void *ctx);			/* role or peer state changed */
	void (*event)(void *ctx, const struct ft_event *e);	/* a new log line */
};

int ft_node_new(sd_event *ev, const struct ft_config *cfg, const struct ft_node_ops *ops,
		void *ctx, struct ft_node **out, char *err, size_t errlen);
void ft_node_free(struct ft_node *n);
/* key=value lines, one per field: the status protocol (see status.h). */
void ft_node_status(struct ft_node *n, FILE *out);
/* One line for sd_notify STATUS=. */
const char *ft_node_status_line(struct ft_node *n, char *buf, size_t len);
/*
 * Planned failover (role.h, HANDOVER): 0 when it started (its number in
 * *attempt; status shows its progress and result as failover_*), or
 * -errno with a sentence in msg: -EALREADY one is running, -EPERM this
 * node is not the primary, -ENOTCONN no live peer, -EOPNOTSUPP no VM or
 * no shared disk.
 */
int ft_node_failover(struct ft_node *n, uint64_t *attempt, char *msg, size_t len);
/* Buffered events with seq > after, oldest first; returns how many were given. */
size_t ft_node_events(struct ft_node *n, uint64_t after, const struct ft_event **ev, size_t max);
enum ft_role ft_node_role(const struct ft_node *n);

#endif
