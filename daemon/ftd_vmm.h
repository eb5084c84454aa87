/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The protocol between ftd and the FT-aware VMM (vmm/ftvm) on one host.
 *
 * Transport: a SOCK_SEQPACKET Unix socket that ftd listens on
 * (config key vmm_socket, default FTD_VMM_SOCKET, mode 0600, root only).
 * One VMM per ftd. Every message is one struct ftd_vmm_msg (64 bytes);
 * a message of another size, an unknown type or a non-zero reserved field
 * closes the connection. Fields not listed for a type are zero.
 *
 *   VMM -> ftd  HELLO     version = FTD_VMM_VERSION, name = the VM's name.
 *   ftd -> VMM  ROLE      role = FTD_VMM_ROLE_PRIMARY or _BACKUP, epoch.
 *                         The VMM now builds the VM (same image, memory
 *                         size and CPUID on both hosts) and attaches it:
 *                         KVM_FT_MODE_RECORD for PRIMARY, _REPLAY for BACKUP.
 *   VMM -> ftd  ATTACHED  carries the ft fd as SCM_RIGHTS. ftd maps the ring
 *                         (primary: reads the log ring and publishes acked_seq;
 *                         backup: writes the replay ring). The VMM starts
 *                         its vCPU after sending it.
 *   ftd -> VMM  ACKED     seq = the backup has every record <= seq. Sent when
 *                         acked_seq advances (coalesced). The VMM releases an
 *                         output whose PIO_OUT/MMIO_WRITE record has seq <= it
 *                         (the output rule), in order.
 *   VMM -> ftd  EMITTED   seq = every output whose record seq <= seq has left
 *                         this host. ftd forwards the value to the peer.
 *                         It grows strictly on one attachment: a repeat
 *                         can cross RESUME and land on the new log.
 *   ftd -> VMM  GO_LIVE   the module is in KVM_FT_MODE_LIVE (ftd drained the
 *                         received log and called KVM_FT_SET_MODE), epoch =
 *                         the epoch this host won; seq = the highest EMITTED
 *                         value the old primary reported. The VMM re-emits
 *                         the outputs it saw in replay with record seq > seq
 *                         (a duplicate is allowed, a gap is not), then runs
 *                         its devices live.
 *   ftd -> VMM  HALT      this host lost arbitration or was fenced: stop the
 *                         vCPU now and emit nothing more. epoch = the epoch
 *                         that fenced us.
 *   ftd -> VMM  PAUSE     planned failover (ftctl failover). The VMM stops
 *                         feeding asynchronous inputs (device threads hold
 *                         them), then stops its vCPU at a landmark where the
 *                         log is complete, and answers PAUSED.
 *                         PRIMARY (seq = 0): wait until the module's async
 *                         queue is empty, then leave the vCPU out of KVM_RUN
 *                         after an exit whose records are all in the ring.
 *                         BACKUP (seq = S, the old primary's PAUSED seq):
 *                         wait until the module has replayed every record
 *                         <= S, then take the vCPU out of KVM_RUN (it waits
 *                         for record S+1 before its next entry; a signal
 *                         ends that wait at the landmark).
 *                         While paused, ACKED/EMITTED keep flowing: the
 *                         primary VMM releases held outputs as they are
 *                         acknowledged and reports EMITTED.
 *   VMM -> ftd  PAUSED    seq = PRIMARY: the seq of the last record in the
 *                         log (ring next_seq - 1); BACKUP: the seq of the
 *                         last record replayed (= S). Both replicas are now
 *                         in the same state. A VMM that cannot pause within
 *                         its own bound does not answer; ftd gives up after
 *                         its timeout and sends RESUME with the old role.
 *   ftd -> VMM  RESUME    role, epoch. role = the current role: the failover
 *                         was abandoned; continue as before (same
 *                         attachment, same log). role = the other role: the
 *                         roles swap without copying state. The VMM detaches
 *                         (KVM_FT_DETACH, closes the old ft fd), attaches the
 *                         same VM again at the same guest state in the new
 *                         mode (PRIMARY: RECORD, BACKUP: REPLAY; the new log
 *                         starts at seq 1), sends ATTACHED with the new fd,
 *                         then runs its vCPU and devices. Every output of the
 *                         old log was emitted by the old primary before
 *                         RESUME (ftd waits for EMITTED >= its PAUSED seq),
 *                         so the new primary re-emits nothing.
 *
 *
 * Re-protection (a new backup seeded from the live VM; DESIGN.md):
 *   ftd -> VMM  SNAPSHOT  the VM is LIVE (after GO_LIVE) and a new backup
 *                         wants to be seeded. The VMM holds its devices,
 *                         stops its vCPU at a landmark (after a PIO exit,
 *                         the module's async queue empty, as for PAUSE),
 *                         captures the whole VM (memory, vCPU, device
 *                         state: vmm/snapshot.h) into a sealed memfd,
 *                         detaches and attaches the same VM again in
 *                         KVM_FT_MODE_RECORD at exactly that state (a new
 *                         log from seq 1), answers SNAPSHOT_READY then
 *                         ATTACHED with the new ft fd, and runs on as a
 *                         PRIMARY: its outputs wait for ACKED of the new
 *                         log. The log it makes meanwhile waits in the ring
 *                         (ftd reads it once the backup is attached, or
 *                         buffers it); a full ring stops the vCPU, so the
 *                         run ahead of the backup is bounded by the ring.
 *                         If the sync fails (peer dead, snapshot refused)
 *                         ftd switches the module to LIVE again and sends
 *                         GO_LIVE (seq = the EMITTED it saw, or 0): the VMM
 *                         releases what it held and goes on live.
 *   VMM -> ftd  SNAPSHOT_READY  seq = the snapshot's length in bytes, the
 *                         memfd as SCM_RIGHTS. seq = 0 and no fd: the VMM
 *                         refused (not LIVE, could not stop or capture);
 *                         it goes on as before and sends no ATTACHED.
 *   ftd -> VMM  SEED      instead of ROLE, to a VMM that just said HELLO:
 *                         become the BACKUP (role = FTD_VMM_ROLE_BACKUP,
 *                         epoch) of a VM built from the snapshot in the
 *                         memfd passed as SCM_RIGHTS (seq = its length,
 *                         as the live VMM announced it). The VMM checks the
 *                         whole snapshot (version, length, checksum, every
 *                         section) before it uses it; a bad one is refused
 *                         with one log line and the VMM exits (the
 *                         socket closes). Else it attaches the VM in
 *                         KVM_FT_MODE_REPLAY and answers ATTACHED, as after
 *                         ROLE BACKUP; the primary's log from seq 1 applies
 *                         to exactly that state.
 *
 * Either side closing the socket is a failure of the other: ftd treats a
 * lost VMM as a dead local VM (it stops acknowledging/serving), the VMM
 * treats a lost ftd as HALT unless it is LIVE already.
 */
#ifndef FTD_VMM_H
#define FTD_VMM_H

#include <linux/types.h>

#define FTD_VMM_SOCKET	"/run/ftd/vmm.sock"
#define FTD_VMM_VERSION	1

enum ftd_vmm_type {
	FTD_VMM_HELLO		= 1,
	FTD_VMM_ROLE		= 2,
	FTD_VMM_ATTACHED	= 3,
	FTD_VMM_ACKED		= 4,
	FTD_VMM_EMITTED		= 5,
	FTD_VMM_GO_LIVE		= 6,
	FTD_VMM_HALT		= 7,
	FTD_VMM_PAUSE		= 8,
	FTD_VMM_PAUSED		= 9,
	FTD_VMM_RESUME		= 10,
	FTD_VMM_SNAPSHOT	= 11,
	FTD_VMM_SNAPSHOT_READY	= 12,
	FTD_VMM_SEED		= 13,
};

enum ftd_vmm_role {
	FTD_VMM_ROLE_PRIMARY	= 1,
	FTD_VMM_ROLE_BACKUP	= 2,
};

struct ftd_vmm_msg {
	__u32 type;		/* enum ftd_vmm_type */
	__u32 version;		/* HELLO only */
	__u64 seq;		/* ACKED, EMITTED, GO_LIVE, PAUSED; SNAPSHOT_READY, SEED: length */
	__u64 epoch;		/* ROLE, GO_LIVE, HALT, SEED */
	__u32 role;		/* ROLE, RESUME, SEED */
	__u32 reserved0;
	char name[32];		/* HELLO: NUL-terminated VM name */
};

_Static_assert(sizeof(struct ftd_vmm_msg) == 64, "ftd_vmm_msg is 64 bytes");

#endif /* FTD_VMM_H */
