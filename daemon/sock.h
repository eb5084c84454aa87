/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Root-only Unix listening sockets for ftd (control socket, VMM socket):
 * the parent directories are created 0700 if missing (a busybox initramfs
 * has no /run/ftd), a socket file nobody answers on is a leftover and is
 * replaced, one that answers means another ftd runs, and the socket is
 * bound under umask 0177 and chmod 0600.
 */
#ifndef FTD_SOCK_H
#define FTD_SOCK_H

#include <stddef.h>

/* A non-blocking, close-on-exec listening socket of type, or -errno with a sentence in err. */
int ft_unix_listen(const char *path, int type, char *err, size_t errlen);

#endif
