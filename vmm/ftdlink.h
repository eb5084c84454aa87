/* SPDX-License-Identifier: GPL-2.0 */
/* The VMM's end of the socket to ftd (daemon/ftd_vmm.h). */
#ifndef FTVM_FTDLINK_H
#define FTVM_FTDLINK_H

#include <stdint.h>
#include "../daemon/ftd_vmm.h"

/* Connect to ftd's VMM socket; the fd, or -errno. */
int ftd_link_connect(const char *path);
/* Send one message (with fd >= 0 as SCM_RIGHTS); 0 or -errno. */
int ftd_link_send(int sock, const struct ftd_vmm_msg *m, int fd);
/*
 * Receive one message: 1 on success, 0 when ftd closed the socket, -errno
 * on an error, -EPROTO when the message is malformed (size, type, reserved
 * fields, a message only the VMM sends, an fd with any message but SEED).
 * SEED's memfd goes to *fd (fd may be NULL where SEED is not expected: it
 * is then malformed); *fd is -1 for every other message.
 */
int ftd_link_recv(int sock, struct ftd_vmm_msg *m, int *fd);
const char *ftd_link_type_name(uint32_t type);

#endif
