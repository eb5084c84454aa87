/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One arbitration round (arbiter.h: ft_arb_ballot_once) in a child process,
 * so that a hung shared disk never blocks ftd's event loop. The answer comes
 * back over a pipe; no answer within the timeout counts as "undecided"
 * (-ETIMEDOUT), never as a win. A new round is refused while a previous
 * child is still alive (one ballot process per node at a time, as the
 * arbiter requires), even one that timed out. The caller's SIGCHLD must be
 * blocked (sd-event child sources).
 */
#ifndef FTD_BALLOT_H
#define FTD_BALLOT_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/* ret: 0 decided (winner 1 or 2), or -errno as ft_arb_ballot_once(), or -ETIMEDOUT. */
typedef void (*ft_ballot_done)(void *ctx, int ret, unsigned int winner);

struct ft_ballot;

int ft_ballot_new(sd_event *ev, const char *disk, unsigned int node_id,
		  uint64_t timeout_us, ft_ballot_done done, void *ctx, struct ft_ballot **out);
void ft_ballot_free(struct ft_ballot *b);
/* Start a round for epoch: 0, or -EBUSY while a previous child lives. */
int ft_ballot_start(struct ft_ballot *b, uint64_t epoch);
/*
 * Planned failover: a round for epoch and, if this node wins it, the epoch
 * record epoch + 1 naming this node primary and the peer backup
 * (ft_arb_advance_epoch). Answers as ft_ballot_start(); then
 * ft_ballot_advanced() says whether epoch + 1 is on the disk (also when an
 * earlier round wrote it and its answer was lost). A won round whose
 * advance failed answers that error with winner = this node: call again.
 */
int ft_ballot_start_handover(struct ft_ballot *b, uint64_t epoch);
bool ft_ballot_advanced(const struct ft_ballot *b);
/* The disk's epoch the last -ESTALE answer reported (0 if unknown). */
uint64_t ft_ballot_disk_epoch(const struct ft_ballot *b);
/*
 * Who was decided to go live in epoch (blocking: at start-up only): 0 with
 * *winner 0 if nobody yet, or -ESTALE if a later epoch was decided.
 */
int ft_ballot_read_decided(const char *disk, uint64_t epoch, unsigned int *winner);
/* Read the epoch record (blocking: at start-up only). */
int ft_ballot_read_epoch(const char *disk, uint64_t *epoch, unsigned int *primary);

#endif
