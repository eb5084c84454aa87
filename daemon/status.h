/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftd's control socket (default /run/ftd/ftd.sock, directory 0700, socket
 * 0600: root only). A client sends one request line and reads the answer
 * until ftd closes the connection:
 *
 *   status          key=value lines (node.c: ft_node_status)
 *   failover        result=started / attempt=N (status: failover_done reaches N
 *                   when it ends, failover_last says how), or result=error /
 *                   errno=N / message=...
 *   events          buffered events, one per line: "SEQ TIME_MS PRIO TEXT"
 *   events follow   the same, then every new event as it happens
 *
 * Unknown requests get result=error, errno=EINVAL. The loop never blocks on
 * a client: a follower that stops reading is disconnected.
 */
#ifndef FTD_STATUS_H
#define FTD_STATUS_H

#include <systemd/sd-event.h>
#include "node.h"

struct ft_status;

int ft_status_new(sd_event *ev, const char *path, struct ft_status **out, char *err, size_t errlen);
void ft_status_set_node(struct ft_status *s, struct ft_node *n);
void ft_status_free(struct ft_status *s);
/* Pass a new event to every follower. */
void ft_status_event(struct ft_status *s, const struct ft_event *e);

#endif
