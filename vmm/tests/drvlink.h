/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftd's end of the VMM socket (daemon/ftd_vmm.h) for the test drivers that
 * stand in for a pair of ftd (ftvm_swapdrv, ftvm_syncdrv). Sending is the
 * VMM's own ftd_link_send() (vmm/ftdlink.c): the framing is the same both
 * ways.
 */
#ifndef FTVM_DRVLINK_H
#define FTVM_DRVLINK_H

#include "../ftdlink.h"

/* Listen on a SOCK_SEQPACKET Unix socket at path (replacing it); fd or -1. */
int drv_listen(const char *path);
/*
 * Receive one message from a VMM; a passed fd goes to *fd, else -1. 1 on
 * success, 0 when the VMM closed the socket (or it failed), -1 when the
 * message has the wrong size.
 */
int drv_recv(int sock, struct ftd_vmm_msg *m, int *fd);

#endif
