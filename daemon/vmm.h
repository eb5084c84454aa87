/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftd's end of the VMM socket (ftd_vmm.h): a root-only SOCK_SEQPACKET
 * listener that takes one FT-aware VMM at a time and checks everything it
 * sends. A message of another size, an unknown or out-of-order type, a
 * non-zero field the type does not use, a file descriptor on anything but
 * ATTACHED, or an ATTACHED fd that is not a kvm_ft ring in the mode the
 * role needs closes the connection with one log line (FT_REASON=vmm-*).
 * A second VMM is refused while one is connected.
 *
 * Planned failover: PAUSED is taken only after a PAUSE (one that crosses
 * ftd's RESUME of an abandoned failover is ignored with a log line). A
 * RESUME in the other role sends the connection back to waiting for
 * ATTACHED (the VMM re-attaches in the new mode; losing it then is still
 * the loss of the VM); EMITTED and ACKED restart with the new log.
 *
 * Re-protection: SNAPSHOT_READY is taken only after a SNAPSHOT; with a
 * memfd (seq = its length) the VMM has detached and re-attaches in RECORD
 * (ATTACHED comes next, a new log: EMITTED and ACKED restart, the output
 * rule holds again). A HELLO the node cannot answer yet (hello returns 1:
 * a returning node waiting for its snapshot) waits for ft_vmm_seed(), which
 * sends SEED with the memfd; losing that VMM then is the loss of the VM.
 *
 * The ATTACHED fd is an ft fd (KVM_FT_GET_INFO gives the API version, mode
 * and geometry). With allow_files (tests only: config vmm_file_rings) a
 * regular file or memfd laid out as a ring is accepted instead; its mode is
 * read from the layout (log ring: RECORD, replay ring: REPLAY), and
 * info.flags has FT_VMM_INFO_F_FILE.
 */
#ifndef FTD_VMM_SRV_H
#define FTD_VMM_SRV_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>
#include <linux/kvm_ft.h>
#include "ftd_vmm.h"

#define FT_VMM_INFO_F_FILE	(1U << 31)	/* a ring file, not an ft fd */

enum ft_vmm_state {
	FT_VMM_NONE = 0,	/* nobody connected (yet, or any more) */
	FT_VMM_HELLO,		/* connected, waiting for HELLO */
	FT_VMM_WAIT_SEED,	/* HELLO taken, SEED not sent yet (re-protection) */
	FT_VMM_ROLE,		/* ROLE sent, waiting for ATTACHED */
	FT_VMM_ATTACHED,	/* ring handed over, the VM runs */
	FT_VMM_LOST,		/* an attached VMM went away */
};

struct ft_vmm_ops {
	/*
	 * HELLO accepted: set *role (FTD_VMM_ROLE_*) and *epoch and return 0,
	 * or return -errno to answer HALT (with *epoch: the fencing epoch)
	 * and close, with a sentence in why, or 1 to answer later with
	 * ft_vmm_seed().
	 */
	int (*hello)(void *ctx, const char *name, uint32_t *role, uint64_t *epoch,
		     char *why, size_t whylen);
	/* A checked ring fd: return 0 to take it (fd is the callee's), -errno to refuse (closed). */
	int (*attached)(void *ctx, int fd, const struct kvm_ft_info *info, char *why, size_t whylen);
	void (*emitted)(void *ctx, uint64_t seq);
	void (*paused)(void *ctx, uint64_t seq);
	/* SNAPSHOT answered: the memfd (the callee's) of len bytes, or fd -1: refused */
	void (*snapshot_ready)(void *ctx, int fd, uint64_t len);
	/* An attached VMM closed its socket or broke the protocol: the local VM is gone. */
	void (*lost)(void *ctx, const char *why);
};

struct ft_vmm;

int ft_vmm_new(sd_event *ev, const char *path, bool allow_files, const struct ft_vmm_ops *ops,
	       void *ctx, struct ft_vmm **out, char *err, size_t errlen);
void ft_vmm_free(struct ft_vmm *v);
/* Queue one message to the connected VMM (ACKED is coalesced). 0, or -ENOTCONN. */
int ft_vmm_send(struct ft_vmm *v, uint32_t type, uint64_t seq, uint64_t epoch, uint32_t role);
/* SEED(len, epoch, BACKUP) with the memfd to a VMM waiting after HELLO. 0 or -errno. */
int ft_vmm_seed(struct ft_vmm *v, int memfd, uint64_t len, uint64_t epoch);
/* Close the connection after what is queued (after HALT). */
void ft_vmm_close(struct ft_vmm *v);
enum ft_vmm_state ft_vmm_state(const struct ft_vmm *v);
const char *ft_vmm_state_name(enum ft_vmm_state st);
const char *ft_vmm_name(const struct ft_vmm *v);
uint64_t ft_vmm_emitted(const struct ft_vmm *v);	/* highest EMITTED received */
uint64_t ft_vmm_acked_sent(const struct ft_vmm *v);	/* highest ACKED sent */
uint64_t ft_vmm_refused(const struct ft_vmm *v);	/* connections refused or closed for errors */

#endif
