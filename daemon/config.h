/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /etc/ftd/ftd.conf: one `key = value` per line, `#` starts a comment.
 *
 *   node_id            1 or 2 (required)
 *   role               primary | backup: the role at start (required)
 *   listen             address:port the backup accepts the channel on
 *                      ("127.0.0.1:7000", "[::1]:7000"; required)
 *   peer               address:port of the other ftd (required)
 *   key_file           64 hex digits, mode 0600 (required)
 *   ring               where the log comes from: vm (default) = the ft fd the
 *                      FT-aware VMM passes over vmm_socket (primary: its log
 *                      ring; backup: its replay ring); or file:/path = a ring
 *                      file laid out as the uapi says (a test producer's
 *                      ring, and the backup's ring of records)
 *   ring_order         log2 of the data area when ftd creates the ring file
 *                      (16..26, default 20)
 *   shared_disk        the arbitration area (optional; without it this node
 *                      can never go live after losing its peer)
 *   epoch              epoch to start in when there is no shared disk (default 1)
 *   heartbeat_interval default 100ms (10ms..10s)
 *   peer_timeout       default 500ms; at least 3 heartbeat intervals
 *   backup_delay       backup waits this long before its ballot (default
 *                      peer_timeout/2: the incumbent's bias)
 *   failover_timeout   planned failover: how long the VM may take to answer
 *                      PAUSE, the primary to get the last acks and EMITTED,
 *                      and the backup's disk step, before the failover is
 *                      abandoned (default 5s; 100ms..600s)
 *   go_live_timeout    promotion of a backup: how long the module may replay
 *                      nothing while records are left before ftd gives up
 *                      and halts (going live without them would lose acked
 *                      records; default 10s; 100ms..600s)
 *   reprotect          yes | no (default yes; ring = vm): a node fenced at
 *                      start asks its peer to seed it as the new backup, and
 *                      a node live alone with a VM offers that seed (README
 *                      "Re-protection"); no: a fenced node stays halted
 *   sync_timeout       re-protection: how long the live VM may take to answer
 *                      SNAPSHOT, and the returning node to report its VM
 *                      seeded after the last byte, before the sync is given
 *                      up and the VM goes live again (default 30s; 100ms..600s)
 *   sync_rate          re-protection: the snapshot transfer's pace in bytes
 *                      per second (default 0: as fast as TCP takes it; K/M/G)
 *   max_lag_records    unacked records in flight (default 65536)
 *   max_lag_bytes      unacked bytes in flight (default 4M; K/M/G suffixes)
 *   vmm_socket         the VMM socket (ftd_vmm.h; ring = vm only), default
 *                      /run/ftd/vmm.sock
 *   vmm_file_rings     yes | no (default no): also accept a ring file or
 *                      memfd instead of an ft fd from the VMM (tests only:
 *                      there is no module to switch to live mode)
 *   status_socket      default /run/ftd/ftd.sock
 *   log_level          err | warning | notice | info | debug (default info)
 *
 * Durations take us, ms or s suffixes (a bare number is ms).
 */
#ifndef FTD_CONFIG_H
#define FTD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "role.h"

struct ft_config {
	uint32_t node_id;
	enum ft_role role;
	struct sockaddr_storage listen, peer;
	socklen_t listen_len, peer_len;
	char listen_str[80], peer_str[80];
	char key_file[PATH_MAX];
	char ring[PATH_MAX];		/* path of the ring file; "" = ring from the VMM */
	char vmm_socket[PATH_MAX];
	bool vmm_file_rings;
	bool reprotect;
	unsigned int ring_order;
	char shared_disk[PATH_MAX];
	uint64_t epoch;
	uint64_t heartbeat_us, peer_timeout_us, backup_delay_us, failover_timeout_us;
	uint64_t go_live_timeout_us, sync_timeout_us;
	uint64_t sync_rate;		/* bytes/s; 0 = unpaced */
	uint32_t max_lag_records;
	uint64_t max_lag_bytes;
	char status_socket[PATH_MAX];
	int log_level;
};

/* 0, or -errno with a sentence naming the file, line and key in err. */
int ft_config_load(const char *path, struct ft_config *c, char *err, size_t errlen);
/* Same, from a string (tests). name is used in messages. */
int ft_config_parse(const char *text, const char *name, struct ft_config *c, char *err, size_t errlen);

int ft_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
int ft_parse_duration_us(const char *s, uint64_t *us);
int ft_parse_size(const char *s, uint64_t *bytes);

#endif
