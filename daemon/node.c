// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sodium.h>
#include "ballot.h"
#include "sync.h"
#include "log.h"
#include "node.h"
#include "vmm.h"

/* Promotion of a backup attached to a VM (see apply(): FT_ACT_GO_LIVE). */
enum go_live {
	GL_NONE = 0,
	GL_DRAIN_CHANNEL,	/* storing what the channel received into the replay ring */
	GL_DRAIN_REPLAY,	/* waiting for the module to consume every record */
	GL_DONE,		/* the module is live, the VMM told */
};

static const char *const go_live_names[] = {
	[GL_NONE] = "none", [GL_DRAIN_CHANNEL] = "draining-channel",
	[GL_DRAIN_REPLAY] = "draining-replay", [GL_DONE] = "done",
};

/* Planned failover, the steps within role HANDOVER (role.h, frame.h: enum ft_fo_wire). */
enum fo_step {
	FO_IDLE = 0,
	FO_PAUSING,	/* PAUSE sent, PAUSED not yet back */
	FO_DRAINING,	/* primary: PAUSED(S); waiting for acked >= S and EMITTED >= S */
	FO_HANDED,	/* primary: HANDOVER(S) sent; the backup answers SWAPPED or ABORTED */
	FO_DISK,	/* backup: PAUSED(S); ballot for e, then epoch e+1 on the disk */
	FO_LINGER,	/* backup (now primary of e+1): SWAPPED sent; the old session ends */
};

static const char *const fo_step_names[] = {
	[FO_IDLE] = "idle", [FO_PAUSING] = "pausing", [FO_DRAINING] = "draining",
	[FO_HANDED] = "handed-over", [FO_DISK] = "disk", [FO_LINGER] = "swapping",
};

struct ft_fo {
	enum fo_step step;
	uint64_t id, seq, t0_us, deadline_us;
	uint64_t handled_id;		/* backup: the last HANDOVER id taken or refused */
	struct ft_fo_msg peer;		/* the peer's last failover message */
	bool retry_logged;
	/* results, for ftctl */
	uint64_t attempts, done;	/* attempts started here; results recorded */
	char last[240];			/* "swapped" or "abandoned: why" */
	bool last_ok;
	uint64_t last_ms, last_seq, last_epoch;
};

/* Re-protection, the steps of either node (README "Re-protection"). */
enum sy_step {
	SY_IDLE = 0,
	/* the live node (role SYNCING, then PRIMARY) */
	SY_SNAPSHOT,	/* SNAPSHOT sent; SNAPSHOT_READY, then ATTACHED in RECORD */
	SY_SENDING,	/* streaming the snapshot */
	SY_SEEDING,	/* all sent; the returning node's VMM builds the VM */
	SY_DISK,	/* it is SEEDED: ballot for e, then epoch e+1 on the disk */
	SY_LINGER,	/* DONE(e+1) sent; the old session ends */
	/* the returning node (role HALTED until it is BACKUP of e+1) */
	SY_ASKING,	/* fenced at start: its channel asks the peer for a seed */
	SY_RECEIVING,	/* SNAP chunks arriving */
	SY_SEED,	/* the snapshot checked: SEED to the VMM, then its ATTACHED */
	SY_SEEDED,	/* its VM attached in REPLAY: waiting for DONE(e+1) */
	SY_FAILED,	/* REFUSED sent: halts when the session ends (bounded) */
	SY_GAVE_UP,	/* halted */
};

static const char *const sy_step_names[] = {
	[SY_IDLE] = "idle", [SY_SNAPSHOT] = "snapshotting", [SY_SENDING] = "sending",
	[SY_SEEDING] = "seeding", [SY_DISK] = "disk", [SY_LINGER] = "switching",
	[SY_ASKING] = "asking", [SY_RECEIVING] = "receiving", [SY_SEED] = "seeding-vm",
	[SY_SEEDED] = "seeded", [SY_FAILED] = "failed", [SY_GAVE_UP] = "gave-up",
};

/* What each step waits for, for ftctl status. */
static const char *const sy_waits[] = {
	[SY_SNAPSHOT] = "the VMM's snapshot and its re-attach in RECORD",
	[SY_SENDING] = "the snapshot transfer",
	[SY_SEEDING] = "the new backup's VM to be built from the snapshot",
	[SY_DISK] = "the shared disk: epoch e+1 naming this node primary",
	[SY_LINGER] = "the new backup to take the new epoch",
	[SY_ASKING] = "the live peer to accept the seed request",
	[SY_RECEIVING] = "the snapshot transfer",
	[SY_SEED] = "the VMM: HELLO, then its VM built from the snapshot (SEED, ATTACHED)",
	[SY_SEEDED] = "the live peer to write the new epoch on the disk",
	[SY_FAILED] = "the refusal to reach the live peer, then halting",
};

struct ft_sy {
	enum sy_step step;
	uint64_t t0_us, t_send_us, deadline_us;
	uint64_t total, sent;		/* snapshot bytes */
	struct ft_fo_msg peer;		/* the peer's last re-protection message */
	bool want_start;		/* live node: a seed session came up */
	bool snapshot_sent;		/* SNAPSHOT not answered yet */
	bool reattached;		/* the VMM re-attached in RECORD for this sync */
	bool late;			/* abandoned before the re-attach: go live when it comes */
	bool resume;			/* the GO_LIVE action resumes an abandoned sync */
	bool retry_logged;
	bool tell_refused;		/* returning node: REFUSED goes out at the next tick */
	uint64_t rx_seen;		/* returning node: rx.got at the last progress */
	int snap_fd, seed_fd;
	struct ft_sync_tx tx;
	struct ft_sync_rx rx;
	/* results, for ftctl */
	uint64_t attempts, done, last_ms, last_bytes;
	char last[240];
};

struct ft_node {
	sd_event *ev;
	struct ft_config cfg;
	struct ft_node_ops ops;
	void *ctx;
	struct ft_ring ring;
	int ring_fd;
	struct ft_chan *chan;
	struct ft_role_sm sm;
	uint64_t epoch;
	sd_event_source *detect, *ballot, *sample;
	struct ft_ballot *arb;
	int arb_last_err;
	enum ft_chan_state chan_state;
	bool peer_seen, peer_dead;
	bool never_seen_logged;		/* backup: "no primary seen" said once */
	uint64_t started_us, dead_at_us, stalled_at_us;
	const char *arb_state;
	bool arb_note_logged;
	uint64_t arb_attempts;
	/* bandwidth, sampled once a second */
	uint64_t bw_t, bw_bytes, bw_recs, bw_Bps, bw_rps;
	struct ft_event events[FT_NODE_EVENTS];
	uint64_t ev_next;
	/* ring = vm: the VM attached through the VMM socket */
	struct ft_vmm *vmm;
	struct kvm_ft_info vm_info;
	uint32_t vm_mode;		/* KVM_FT_MODE_* now */
	bool vm_file;			/* a ring file stands in for the ft fd (tests) */
	uint64_t peer_emitted;		/* backup: the primary's last EMITTED, kept past the channel */
	enum go_live go_live;
	sd_event_source *go_live_timer, *vm_lost_defer;
	uint64_t go_live_t0;
	uint64_t go_live_cons, go_live_moved_us;	/* replay progress while going live */
	const char *vm_lost_why;
	uint64_t fence_epoch;		/* the epoch that fenced this node (HALT) */
	struct ft_chan_cfg cc;		/* the channel to start once the ring is there */
	char halt_why[200];
	uint64_t chan_since_us;		/* the current channel's start (failure detection) */
	struct ft_fo fo;
	sd_event_source *fo_timer;
	struct ft_sy sy;
	sd_event_source *sy_timer;
};

static void changed(struct ft_node *n)
{
	if (n->ops.changed)
		n->ops.changed(n->ctx);
}

static void sink(void *ctx, int prio, const char *line)
{
	struct ft_node *n = ctx;
	struct ft_event *e = &n->events[n->ev_next % FT_NODE_EVENTS];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	e->seq = ++n->ev_next;
	e->realtime_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	e->prio = prio;
	snprintf(e->line, sizeof(e->line), "%s", line);
	if (n->ops.event)
		n->ops.event(n->ctx, e);
}

size_t ft_node_events(struct ft_node *n, uint64_t after, const struct ft_event **ev, size_t max)
{
	uint64_t first = n->ev_next > FT_NODE_EVENTS ? n->ev_next - FT_NODE_EVENTS : 0;
	size_t k = 0;

	if (after < first)
		after = first;
	for (uint64_t s = after; s < n->ev_next && k < max; s++)
		ev[k++] = &n->events[s % FT_NODE_EVENTS];
	return k;
}

enum ft_role ft_node_role(const struct ft_node *n)
{
	return n->sm.role;
}

static void apply(struct ft_node *n, enum ft_role_event ev);
static void go_live_start(struct ft_node *n);
static void fo_result(struct ft_node *n, bool ok, const char *why);
static void fo_arb_done(struct ft_node *n, int ret, unsigned int winner);
static void fo_kick(struct ft_node *n, uint64_t delay_us);
static void chan_failover(void *ctx, const struct ft_fo_msg *m);
static int fo_channel(struct ft_node *n, char *err, size_t errlen);
static void chan_sync(void *ctx, const struct ft_fo_msg *m);
static void chan_snap(void *ctx, uint64_t total, uint64_t off, const uint8_t *data, size_t len);
static void chan_snap_end(void *ctx, uint64_t total, const uint8_t hash[FT_SYNC_HASH_LEN]);
static void vmm_snapshot_ready(void *ctx, int fd, uint64_t len);
static int on_sy_tick(sd_event_source *s, uint64_t usec, void *ud);
static void sy_resume_live(struct ft_node *n);
static void sy_arb_done(struct ft_node *n, int ret, unsigned int winner);
static void sy_abort(struct ft_node *n, enum ft_role_event ev, const char *why);
static void sy_refuse(struct ft_node *n, const char *why);
static void sy_reattached(struct ft_node *n);
static void sy_kick(struct ft_node *n, uint64_t delay_us);
static void sy_tx_end(struct ft_node *n);
static void sy_offer(struct ft_node *n);

static void arm_ballot(struct ft_node *n, uint64_t delay_us)
{
	sd_event_source_set_time(n->ballot, ft_now_us() + delay_us);
	sd_event_source_set_enabled(n->ballot, SD_EVENT_ONESHOT);
}

static int on_ballot(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	int ret;

	(void)s;
	(void)usec;
	/* the disk step of a planned failover or of re-protection: epoch e, then e+1 */
	if (((n->sm.role == FT_ROLE_HANDOVER && n->fo.step == FO_DISK) ||
	     (n->sm.role == FT_ROLE_SYNCING && n->sy.step == SY_DISK)) && n->arb) {
		ret = ft_ballot_start_handover(n->arb, n->epoch);
		if (ret)
			arm_ballot(n, 100000);	/* the previous child is still alive */
		else
			n->arb_state = n->sm.role == FT_ROLE_HANDOVER ? "handover ballot running" :
					"re-protection ballot running";
		return 0;
	}
	if (n->sm.role != FT_ROLE_ARBITRATING)
		return 0;
	if (n->arb) {
		ret = ft_ballot_start(n->arb, n->epoch);
		if (ret == -EBUSY) {
			/* the previous round's process still runs (a hung disk?) */
			n->arb_state = "waiting for the previous ballot process to exit";
			arm_ballot(n, 100000);
			return 0;
		}
		if (!ret) {
			n->arb_attempts++;
			n->arb_state = "ballot running";
			changed(n);
			return 0;
		}
		n->arb_state = "undecided: cannot start a ballot process";
		apply(n, FT_EV_ARB_ERROR);
		return 0;
	}
	n->arb_attempts++;
	/* Never live without a decision (ARBITRATION.md invariant 5). */
	n->arb_state = "undecided: no shared_disk configured";
	if (!n->arb_note_logged) {
		ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "no-arbitration",
							 .role = ft_role_name(n->sm.role) },
		       "arbitration: %s; staying undecided, outputs held, retrying", n->arb_state);
		n->arb_note_logged = true;
	}
	apply(n, FT_EV_ARB_ERROR);
	return 0;
}

static void halt_for(struct ft_node *n, enum ft_role_event ev, uint64_t fence, const char *why);

static void on_arb_done(void *ctx, int ret, unsigned int winner)
{
	struct ft_node *n = ctx;
	static char state[160];
	struct ft_log_fields f = { .epoch = n->epoch, .role = ft_role_name(n->sm.role) };

	if (n->sm.role == FT_ROLE_HANDOVER) {
		fo_arb_done(n, ret, winner);
		return;
	}
	if (n->sm.role == FT_ROLE_SYNCING) {
		sy_arb_done(n, ret, winner);
		return;
	}
	if (n->sm.role != FT_ROLE_ARBITRATING)
		return;	/* a late answer (the node halted or went live meanwhile) */
	if (n->arb && ft_ballot_advanced(n->arb)) {
		/*
		 * A handover round ended after the peer died: this node won the
		 * epoch and wrote epoch + 1 naming itself primary. It goes on in it.
		 */
		n->epoch++;
		f.epoch = n->epoch;
		ft_log(LOG_NOTICE, &f, "arbitration: the handover ballot wrote epoch %llu naming this node "
		       "primary before the peer died", (unsigned long long)n->epoch);
	}
	if (!ret) {
		snprintf(state, sizeof(state), "%s epoch %llu (winner node %u)",
			 winner == n->cfg.node_id ? "won" : "lost", (unsigned long long)n->epoch, winner);
		n->arb_state = state;
		f.reason = winner == n->cfg.node_id ? "arb-won" : "arb-lost";
		ft_log(LOG_NOTICE, &f, "arbitration: node %u decided for epoch %llu: %s", winner,
		       (unsigned long long)n->epoch, winner == n->cfg.node_id ? "going live" : "halting");
		if (winner == n->cfg.node_id)
			apply(n, FT_EV_ARB_WON);
		else
			halt_for(n, FT_EV_ARB_LOST, n->epoch, "the peer won the arbitration");
		return;
	}
	if (ret == -ESTALE) {
		snprintf(state, sizeof(state), "fenced: the shared disk is past epoch %llu",
			 (unsigned long long)n->epoch);
		n->arb_state = state;
		f.reason = "stale-epoch";
		f.err = ESTALE;
		ft_log(LOG_WARNING, &f, "arbitration: %s; halting", state);
		halt_for(n, FT_EV_STALE_EPOCH, ft_ballot_disk_epoch(n->arb), "fenced by a newer epoch on the disk");
		return;
	}
	snprintf(state, sizeof(state), ret == -EBUSY ? "preempted by the peer's ballot, retrying" :
		 "undecided: %s, retrying", strerror(-ret));
	n->arb_state = state;
	if (ret != n->arb_last_err && ret != -EBUSY) {
		f.reason = "arb-error";
		f.err = -ret;
		ft_log(LOG_ERR, &f, "arbitration: %s (outputs stay held)", state);
	}
	n->arb_last_err = ret;
	apply(n, FT_EV_ARB_ERROR);
}

static void halt_for(struct ft_node *n, enum ft_role_event ev, uint64_t fence, const char *why)
{
	if (n->sm.role == FT_ROLE_HALTED)
		return;	/* halted for good already, for the first reason */
	if (fence > n->fence_epoch)
		n->fence_epoch = fence;
	snprintf(n->halt_why, sizeof(n->halt_why), "%s", why);
	apply(n, ev);
}

/* The module leaves RECORD or REPLAY: KVM_FT_SET_MODE LIVE. */
static int vm_set_live(struct ft_node *n)
{
	if (n->vm_file) {
		/* A ring file has no module behind it: nothing to switch (tests). */
		n->vm_mode = KVM_FT_MODE_LIVE;
		return 0;
	}
	if (ioctl(n->ring_fd, KVM_FT_SET_MODE, (unsigned long)KVM_FT_MODE_LIVE) < 0)
		return -errno;
	n->vm_mode = KVM_FT_MODE_LIVE;
	return 0;
}

/* Last step of going live: the module live, the VMM told, systemd and the journal told. */
static void go_live_finish(struct ft_node *n, uint64_t emitted)
{
	struct ft_log_fields f = { .epoch = n->epoch, .role = "live-alone", .reason = "go-live" };
	int ret = n->vmm && n->ring.map_cons ? vm_set_live(n) : 0;

	if (ret) {
		f.err = -ret;
		ft_log(LOG_ERR, &f, "cannot switch the module to live mode: %s", strerror(-ret));
		halt_for(n, FT_EV_VM_LOST, 0, "the module refused live mode");
		return;
	}
	n->go_live = GL_DONE;
	if (n->vmm && n->ring.map_cons)
		ft_vmm_send(n->vmm, FTD_VMM_GO_LIVE, emitted, n->epoch, 0);
	ft_log(LOG_NOTICE, &f, "LIVE alone in epoch %llu%s%s; the VMM re-emits outputs after seq %llu "
	       "(took %llu ms)", (unsigned long long)n->epoch,
	       !n->vmm ? "" : n->ring.map_cons ? ", module in live mode" : ", no VM attached",
	       n->vm_file ? " (ring file: no module)" : "", (unsigned long long)emitted,
	       (unsigned long long)(ft_now_us() - n->go_live_t0) / 1000);
	sy_offer(n);
	changed(n);
}

static uint64_t replay_left(const struct ft_node *n)
{
	return *n->ring.wprod_pos - __atomic_load_n(n->ring.cons_pos, __ATOMIC_ACQUIRE);
}

/*
 * The module must replay every stored record before the VM goes live: going
 * live with records left would lose them, and the old primary may have
 * released their outputs. A module that replays nothing for go_live_timeout
 * while records are left is not going to: the node halts, the VM stays
 * stopped, the records stay in the ring. Never two live: the old primary lost
 * this epoch and halts too.
 */
static bool go_live_stuck(struct ft_node *n)
{
	uint64_t cons = __atomic_load_n(n->ring.cons_pos, __ATOMIC_ACQUIRE), now = ft_now_us();

	if (!n->go_live_moved_us || cons != n->go_live_cons || !replay_left(n)) {
		n->go_live_cons = cons;
		n->go_live_moved_us = now;
		return false;
	}
	if (now - n->go_live_moved_us < n->cfg.go_live_timeout_us)
		return false;
	ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "go-live-stalled",
						 .role = ft_role_name(n->sm.role) },
	       "go-live: the module replayed nothing for %llu ms with records left (replayed up to seq %llu, "
	       "stored up to %llu): going live would lose them; halting, the VM stays stopped",
	       (unsigned long long)(now - n->go_live_moved_us) / 1000,
	       (unsigned long long)__atomic_load_n(&n->ring.rstat->next_seq, __ATOMIC_ACQUIRE) - 1,
	       (unsigned long long)n->ring.wseq - 1);
	halt_for(n, FT_EV_VM_LOST, 0, "go-live: the module stopped replaying before the log was consumed");
	return true;
}

/* Backup promotion, one step per millisecond until done. */
static int on_go_live(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	struct ft_chan_stats st;

	if (n->sm.role != FT_ROLE_LIVE_ALONE || go_live_stuck(n))
		return 0;
	if (n->go_live == GL_DRAIN_CHANNEL) {
		/* Every record received is stored before the channel closes. */
		if (n->chan) {
			ft_chan_kick(n->chan);
			ft_chan_get_stats(n->chan, &st);
			if (st.stalled)
				goto again;
			n->peer_emitted = st.peer_emitted_seq;
			ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
			       "go-live: %llu records received and stored; log channel closed",
			       (unsigned long long)st.head_seq);
		}
		ft_chan_free(n->chan);
		n->chan = NULL;
		n->go_live = GL_DRAIN_REPLAY;
		changed(n);
	}
	if (n->go_live == GL_DRAIN_REPLAY) {
		uint32_t err = __atomic_load_n(&n->ring.rstat->error, __ATOMIC_ACQUIRE);

		if (err) {
			ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "replay-failed" },
			       "go-live: replay stopped with error %u before the log was consumed", err);
			halt_for(n, FT_EV_VM_LOST, 0, "replay failed");
			return 0;
		}
		if (replay_left(n))
			goto again;
		go_live_finish(n, n->peer_emitted);
		return 0;
	}
	return 0;
again:
	sd_event_source_set_time(s, usec + 1000);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

/* FT_ACT_GO_LIVE: this node won its epoch. */
static void go_live_start(struct ft_node *n)
{
	if (n->sy.resume) {
		sy_resume_live(n);
		return;
	}
	n->go_live_t0 = ft_now_us();
	if (!n->vmm || n->sm.from == FT_ROLE_PRIMARY || !n->ring.rstat) {
		/*
		 * The primary (or a ring-file node) is live alone at once: it stops
		 * logging rather than acking locally; re-protection would start
		 * from a new snapshot, not from this log. The channel closes: no
		 * log goes to the other node until re-protection seeds it under a
		 * new epoch.
		 */
		ft_chan_free(n->chan);
		n->chan = NULL;
		go_live_finish(n, ft_vmm_emitted(n->vmm));
		return;
	}
	/*
	 * The backup drains first: every record received goes into the replay
	 * ring, the module consumes all of it, then the VM goes live.
	 */
	n->go_live = GL_DRAIN_CHANNEL;
	n->go_live_moved_us = 0;
	sd_event_source_set_time(n->go_live_timer, ft_now_us());
	sd_event_source_set_enabled(n->go_live_timer, SD_EVENT_ONESHOT);
}

static void apply(struct ft_node *n, enum ft_role_event ev)
{
	enum ft_role before = n->sm.role;
	unsigned int act;
	char acts[160];
	int ret = ft_role_step(&n->sm, ev, &act);

	if (ret)
		return;
	if (before != n->sm.role)
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = ft_role_event_name(ev),
							    .role = ft_role_name(n->sm.role) },
		       "role: %s -> %s on %s (%s)", ft_role_name(before), ft_role_name(n->sm.role),
		       ft_role_event_name(ev), ft_role_actions_str(act, acts, sizeof(acts)));
	if (n->chan)
		ft_chan_set_role(n->chan, n->sm.role);
	if (act & FT_ACT_RESUME_VM) {
		/* the failover is over without a swap: continue as before */
		enum ft_role r = n->sm.role == FT_ROLE_ARBITRATING ? n->sm.from : n->sm.role;

		ft_vmm_send(n->vmm, FTD_VMM_RESUME, 0, n->epoch,
			    r == FT_ROLE_PRIMARY ? FTD_VMM_ROLE_PRIMARY : FTD_VMM_ROLE_BACKUP);
		if (n->chan) {
			ft_chan_set_failover(n->chan, &(struct ft_fo_msg){
				.state = r == FT_ROLE_BACKUP ? FT_FO_ABORTED : FT_FO_NONE,
				.id = n->fo.id, .seq = n->fo.seq });
			if (r == FT_ROLE_BACKUP)
				ft_chan_set_ack(n->chan, true);
		}
		if (n->fo.step != FO_IDLE) {
			/* the peer died (or never answered) mid-way: the ballot decides */
			ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch,
								     .reason = "failover-abandoned" },
			       "planned failover abandoned while %s at seq %llu: the peer is gone; the VM "
			       "resumes as %s and the ballot decides", fo_step_names[n->fo.step],
			       (unsigned long long)n->fo.seq, ft_role_name(r));
			fo_result(n, false, "the peer is gone; the ballot decides");
		}
	}
	if (act & FT_ACT_STOP_ACKING && n->chan)
		ft_chan_set_ack(n->chan, false);
	if (act & FT_ACT_BALLOT_NOW) {
		n->arb_state = "ballot pending";
		arm_ballot(n, 0);
	}
	if (act & FT_ACT_BALLOT_DELAYED) {
		n->arb_state = "waiting (backup delay)";
		arm_ballot(n, n->cfg.backup_delay_us);
	}
	if (act & FT_ACT_BALLOT_RETRY)
		arm_ballot(n, 50000 + randombytes_uniform(450000));
	if (act & FT_ACT_SEED_BACKUP)
		ft_vmm_send(n->vmm, FTD_VMM_SNAPSHOT, 0, 0, 0);
	if (act & FT_ACT_GO_LIVE)
		go_live_start(n);
	if (act & FT_ACT_HALT) {
		uint64_t fence = n->fence_epoch > n->epoch ? n->fence_epoch : n->epoch;

		/* Emit nothing more. */
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = fence, .role = "halted" },
		       "HALTED in epoch %llu: this node must not run the VM%s%s", (unsigned long long)fence,
		       n->halt_why[0] ? ": " : "", n->halt_why);
		ft_chan_free(n->chan);
		n->chan = NULL;
		if (n->go_live_timer)
			sd_event_source_set_enabled(n->go_live_timer, SD_EVENT_OFF);
		if (n->fo.step != FO_IDLE)
			fo_result(n, false, "this node halted");
		sy_tx_end(n);
		if (ft_vmm_state(n->vmm) != FT_VMM_NONE && ft_vmm_state(n->vmm) != FT_VMM_LOST) {
			ft_vmm_send(n->vmm, FTD_VMM_HALT, 0, fence, 0);
			ft_vmm_close(n->vmm);
		}
	}
	changed(n);
}

/*
 * After the peer died: compete for the disk, unless this node has no VM to
 * run (ring = vm, none attached yet). Winning would then only fence the
 * peer, which may be alive and running the VM; the peer's node wins
 * uncontested instead. The ballot runs when a VM attaches (vmm_attached).
 */
static void peer_dead_compete(struct ft_node *n)
{
	if (n->sm.role == FT_ROLE_SYNCING) {
		/* the disk step finishes first: it may have written epoch e+1 already */
		if (n->sy.step != SY_DISK)
			sy_abort(n, FT_EV_PEER_DEAD, "the returning node went silent");
		return;
	}
	if (n->sy.step >= SY_RECEIVING && n->sy.step <= SY_SEEDED) {
		sy_refuse(n, "the live node went silent mid-sync");
		return;
	}
	if (n->vmm && !n->ring.map_cons && (n->sm.role == FT_ROLE_PRIMARY || n->sm.role == FT_ROLE_BACKUP)) {
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "no-vm",
							     .role = ft_role_name(n->sm.role) },
		       "not competing for the shared disk: no VM is attached, so there is nothing to run "
		       "(the ballot runs if one attaches)");
		return;
	}
	apply(n, FT_EV_PEER_DEAD);
}

/*
 * No frame from the peer for peer_timeout, or none at all since this node
 * started. A primary whose backup never answered is alone as after a peer
 * death: it ballots and goes live alone. A backup that never saw its
 * primary has no log to take over from: it does not compete, it waits.
 */
static void peer_silent(struct ft_node *n, uint64_t now, uint64_t silent_us)
{
	struct ft_log_fields f = { .peer = n->cfg.peer_str, .epoch = n->epoch,
				   .reason = n->peer_seen ? "peer-timeout" : "peer-never-seen",
				   .role = ft_role_name(n->sm.role) };

	if (n->sy.step == SY_ASKING || n->sy.step >= SY_FAILED)
		return;	/* a returning node waits for a live peer; it has nothing to lose */

	if (!n->peer_seen && n->sm.role == FT_ROLE_BACKUP) {
		if (!n->never_seen_logged)
			ft_log(LOG_WARNING, &f, "no primary (node %u) seen within %llu ms of start: a backup "
			       "that never saw its primary does not compete for the disk; waiting for it",
			       3 - n->cfg.node_id, (unsigned long long)silent_us / 1000);
		n->never_seen_logged = true;
		return;
	}
	n->peer_dead = true;
	n->dead_at_us = now;
	if (n->peer_seen)
		ft_log(LOG_WARNING, &f, "peer node %u declared dead: no heartbeat, log or ack for %llu ms "
		       "(timeout %llu ms)", 3 - n->cfg.node_id, (unsigned long long)silent_us / 1000,
		       (unsigned long long)n->cfg.peer_timeout_us / 1000);
	else
		ft_log(LOG_WARNING, &f, "peer node %u declared dead: never answered in the %llu ms since "
		       "this node started (timeout %llu ms)", 3 - n->cfg.node_id,
		       (unsigned long long)silent_us / 1000, (unsigned long long)n->cfg.peer_timeout_us / 1000);
	peer_dead_compete(n);
}

/* Fires at last_rx + peer_timeout; re-arms itself while traffic flows. */
static int on_detect(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	struct ft_chan_stats st;
	uint64_t now = ft_now_us(), deadline, since;

	(void)usec;
	if (!n->chan) {
		/* no channel (yet, or any more): nothing to watch, look again later */
		sd_event_source_set_time(s, now + n->cfg.heartbeat_us);
		return 0;
	}
	ft_chan_get_stats(n->chan, &st);
	/*
	 * While our own replay ring is full we stop reading the socket, so the
	 * peer's frames wait unread in it: that silence is ours, not the
	 * peer's. Detection pauses; promotion could not finish before the
	 * replay drained anyway.
	 */
	if (st.stalled)
		n->stalled_at_us = now;
	/* a channel started (at start, or for a new epoch) gives its peer a full timeout too */
	if (n->chan_since_us > n->stalled_at_us)
		n->stalled_at_us = n->chan_since_us;
	since = st.last_rx_us > n->stalled_at_us ? st.last_rx_us : n->stalled_at_us;
	deadline = since + n->cfg.peer_timeout_us;
	/* swapping: the old session ends on purpose, the new one starts next */
	if (n->fo.step == FO_LINGER)
		deadline = now + n->cfg.peer_timeout_us;
	if (!n->peer_dead && now >= deadline)
		peer_silent(n, now, now - since);
	if (n->peer_dead || now >= deadline)
		deadline = now + n->cfg.heartbeat_us;
	sd_event_source_set_time(s, deadline);
	return 0;
}

static void chan_state(void *ctx, enum ft_chan_state st)
{
	struct ft_node *n = ctx;

	n->chan_state = st;
	if (st == FT_CHAN_UP) {
		if (n->peer_dead)
			ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch },
			       "peer node %u is back after %llu ms", 3 - n->cfg.node_id,
			       (unsigned long long)(ft_now_us() - n->dead_at_us) / 1000);
		n->peer_seen = true;
		n->peer_dead = false;
		sd_event_source_set_time(n->detect, ft_now_us() + n->cfg.peer_timeout_us);
		apply(n, FT_EV_PEER_ALIVE);
		if (n->sm.role == FT_ROLE_LIVE_ALONE && n->sy.step == SY_IDLE) {
			n->sy.want_start = true;	/* only a seed session comes up now */
			sy_kick(n, 0);
		}
	} else if (n->sm.role == FT_ROLE_SYNCING && n->sy.step != SY_DISK && n->sy.step != SY_IDLE) {
		sy_abort(n, FT_EV_PEER_DEAD, "the session with the returning node ended");
		ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ 0 });	/* the next session starts clean */
	} else if (n->sm.role == FT_ROLE_LIVE_ALONE && n->chan) {
		ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ 0 });
	} else if (n->sy.step >= SY_RECEIVING && n->sy.step <= SY_FAILED) {
		sy_kick(n, 0);
	}
	changed(n);
}

static void chan_epoch(void *ctx, uint64_t peer_epoch)
{
	struct ft_node *n = ctx;

	/*
	 * Only the decided winner of an epoch may advance it, so an
	 * authenticated peer at a later epoch means this node's epoch is over:
	 * it halts (safe even if the peer is misconfigured: never two live).
	 */
	ft_log(LOG_WARNING, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = peer_epoch,
						     .reason = "peer-epoch-ahead" },
	       "peer is at epoch %llu, this node at %llu: this node is fenced",
	       (unsigned long long)peer_epoch, (unsigned long long)n->epoch);
	halt_for(n, FT_EV_STALE_EPOCH, peer_epoch, "the peer is at a newer epoch");
}

static void chan_acked(void *ctx, uint64_t seq)
{
	struct ft_node *n = ctx;

	/* while the primary's VM is paused for a handover, held outputs still leave */
	if (n->vmm && (n->sm.role == FT_ROLE_PRIMARY ||
		       (n->sm.role == FT_ROLE_HANDOVER && n->sm.from == FT_ROLE_PRIMARY)))
		ft_vmm_send(n->vmm, FTD_VMM_ACKED, seq, 0, 0);
}

static int on_sample(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	struct ft_chan_stats st;
	uint64_t now = ft_now_us();

	if (n->chan) {
		ft_chan_get_stats(n->chan, &st);
		if (n->bw_t && now > n->bw_t) {
			n->bw_Bps = (st.record_bytes - n->bw_bytes) * 1000000 / (now - n->bw_t);
			n->bw_rps = (st.records - n->bw_recs) * 1000000 / (now - n->bw_t);
		}
		n->bw_t = now;
		n->bw_bytes = st.record_bytes;
		n->bw_recs = st.records;
	}
	sd_event_source_set_time(s, usec + 1000000);
	changed(n);
	return 0;
}

static int open_ring(struct ft_node *n, char *err, size_t errlen)
{
	bool backup = n->cfg.role == FT_ROLE_BACKUP;
	int fd = open(n->cfg.ring, O_RDWR | O_CLOEXEC | (backup ? O_CREAT : 0), 0600);
	int ret;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open ring %s: %s", n->cfg.ring, strerror(errno));
		return -errno;
	}
	if (backup && lseek(fd, 0, SEEK_END) == 0 && (ret = ft_ring_format(fd, n->cfg.ring_order))) {
		close(fd);
		snprintf(err, errlen, "cannot lay out ring %s: %s", n->cfg.ring, strerror(-ret));
		return ret;
	}
	ret = ft_ring_map(&n->ring, fd, backup);
	if (ret) {
		close(fd);
		snprintf(err, errlen, "ring %s is not a kvm_ft ring (%s)", n->cfg.ring, strerror(-ret));
		return ret;
	}
	n->ring_fd = fd;
	return 0;
}

static int listen_on(const struct ft_config *c, char *err, size_t errlen)
{
	int one = 1, fd = socket(c->listen.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)&c->listen, c->listen_len) || listen(fd, 8)) {
		int e = errno;

		snprintf(err, errlen, "cannot listen on %s: %s", c->listen_str, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	return fd;
}

/* The channel; with ring = vm it carries heartbeats only until the VM attaches. */
static int start_channel(struct ft_node *n, char *err, size_t errlen)
{
	static const struct ft_chan_ops cops = {
		.state = chan_state, .epoch_mismatch = chan_epoch, .acked = chan_acked,
		.failover = chan_failover, .sync = chan_sync, .snap = chan_snap, .snap_end = chan_snap_end,
	};
	int ret;

	n->chan_since_us = ft_now_us();
	n->cc.ring = n->ring.map_cons && !n->cc.hello_flags ? &n->ring : NULL;
	n->cc.epoch = n->epoch;
	n->cc.role = n->sm.role;
	ret = ft_chan_new(n->ev, &n->cc, &cops, n, &n->chan);
	n->cc.listen_fd = -1;	/* the channel owns it now (or closed it) */
	sodium_memzero(n->cc.psk, sizeof(n->cc.psk));
	if (ret)
		snprintf(err, errlen, "cannot start the channel: %s", strerror(-ret));
	return ret;
}

/* ---- the VMM (ring = vm) ---- */

static int vmm_hello(void *ctx, const char *name, uint32_t *role, uint64_t *epoch, char *why, size_t whylen)
{
	struct ft_node *n = ctx;

	(void)name;
	*epoch = n->fence_epoch > n->epoch ? n->fence_epoch : n->epoch;
	if (n->sm.role == FT_ROLE_HALTED && n->sy.step >= SY_ASKING && n->sy.step <= SY_SEED) {
		snprintf(why, whylen, "this node is being re-protected (%s): SEED follows once node %u's "
			 "snapshot is here", sy_step_names[n->sy.step], 3 - n->cfg.node_id);
		sy_kick(n, 0);
		return 1;
	}
	if (n->sm.role == FT_ROLE_HALTED) {
		snprintf(why, whylen, "this node is halted (%s)", n->halt_why[0] ? n->halt_why : "fenced");
		return -EPERM;
	}
	if (n->sm.role != FT_ROLE_PRIMARY && n->sm.role != FT_ROLE_BACKUP) {
		snprintf(why, whylen, "this node is %s, not protecting a new VM (re-protection is not "
			 "implemented)", ft_role_name(n->sm.role));
		return -EBUSY;
	}
	*role = n->sm.role == FT_ROLE_PRIMARY ? FTD_VMM_ROLE_PRIMARY : FTD_VMM_ROLE_BACKUP;
	return 0;
}

static int vmm_attached(void *ctx, int fd, const struct kvm_ft_info *info, char *why, size_t whylen)
{
	struct ft_node *n = ctx;
	bool primary = info->mode == KVM_FT_MODE_RECORD;
	bool late = n->sy.late && n->sm.role == FT_ROLE_LIVE_ALONE;
	int ret;

	if ((!n->chan && !late) || n->ring.map_cons) {
		snprintf(why, whylen, n->chan ? "a ring is attached already" : "this node is %s now",
			 ft_role_name(n->sm.role));
		return -EBUSY;
	}
	ret = primary ? ft_ring_map_log(&n->ring, fd, info->data_size) :
			ft_ring_map_replay(&n->ring, fd, info->data_size);
	if (ret) {
		snprintf(why, whylen, "cannot map its ring: %s", ret == -EBADMSG && n->ring.why ?
			 n->ring.why : strerror(-ret));
		memset(&n->ring, 0, sizeof(n->ring));
		return ret;
	}
	n->ring_fd = fd;
	n->vm_info = *info;
	n->vm_mode = info->mode;
	n->vm_file = info->flags & FT_VMM_INFO_F_FILE;
	if (primary && (n->sy.step == SY_SNAPSHOT || late)) {
		/* re-protection: the log waits in the ring until the epoch e+1 channel */
		sy_reattached(n);
		changed(n);
		return 0;
	}
	if (!primary && n->sy.step == SY_SEED) {
		n->sy.step = SY_SEEDED;
		ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ .state = FT_SY_SEEDED });
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "sync-seeded" },
		       "re-protection: the VM was built from the snapshot and attached in REPLAY; waiting for "
		       "node %u to write the next epoch", 3 - n->cfg.node_id);
		changed(n);
		return 0;
	}
	/* The kernel's ft fd wakes the sender (edge-triggered); a ring file is polled. */
	ret = ft_chan_set_ring(n->chan, &n->ring, primary && !n->vm_file ? fd : 0, false);
	if (ret) {
		snprintf(why, whylen, "the channel cannot take the ring: %s", strerror(-ret));
		ft_ring_unmap(&n->ring);
		n->ring_fd = -1;
		return ret;
	}
	/* the peer died while there was nothing to run: there is now */
	if (n->peer_dead && (n->sm.role == FT_ROLE_PRIMARY || n->sm.role == FT_ROLE_BACKUP))
		peer_dead_compete(n);
	changed(n);
	return 0;
}

static void vmm_emitted(void *ctx, uint64_t seq)
{
	struct ft_node *n = ctx;

	if (n->chan)
		ft_chan_set_emitted(n->chan, seq);
}

static int on_vm_lost(sd_event_source *s, void *ud)
{
	struct ft_node *n = ud;
	char why[200];

	(void)s;
	snprintf(why, sizeof(why), "the local VM is gone (VMM %s)", n->vm_lost_why);
	sd_event_source_set_enabled(n->vm_lost_defer, SD_EVENT_OFF);
	if (n->sy.step >= SY_ASKING && n->sy.step <= SY_SEEDED) {
		sy_refuse(n, "its VMM refused the snapshot or went away");
		return 0;
	}
	halt_for(n, FT_EV_VM_LOST, 0, why);
	return 0;
}

static void vmm_lost(void *ctx, const char *why)
{
	struct ft_node *n = ctx;

	/* Deferred: this may run inside the channel's or the VMM socket's own callbacks. */
	n->vm_lost_why = why && strstr(why, "closed") ? "closed its socket" : "broke the protocol";
	sd_event_source_set_enabled(n->vm_lost_defer, SD_EVENT_ONESHOT);
}

/* ---- planned failover (role.h: HANDOVER; frame.h: enum ft_fo_wire; ftd_vmm.h: PAUSE) ---- */

static void fo_kick(struct ft_node *n, uint64_t delay_us)
{
	sd_event_source_set_time(n->fo_timer, ft_now_us() + delay_us);
	sd_event_source_set_enabled(n->fo_timer, SD_EVENT_ONESHOT);
}

static void fo_result(struct ft_node *n, bool ok, const char *why)
{
	struct ft_fo *fo = &n->fo;

	fo->last_ok = ok;
	fo->last_ms = (ft_now_us() - fo->t0_us) / 1000;
	fo->last_seq = fo->seq;
	fo->last_epoch = n->epoch;
	snprintf(fo->last, sizeof(fo->last), "%s%s%s", ok ? "swapped" : "abandoned", why ? ": " : "",
		 why ? why : "");
	fo->done = fo->attempts;
	fo->step = FO_IDLE;
	changed(n);
}

/* Leave the failover without a swap (before the backup's disk step only). */
static void fo_abandon(struct ft_node *n, const char *why)
{
	enum ft_role back = n->sm.from;

	ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-abandoned",
						     .role = ft_role_name(back) },
	       "planned failover abandoned while %s at seq %llu: %s; the VM resumes as %s",
	       fo_step_names[n->fo.step], (unsigned long long)n->fo.seq, why, ft_role_name(back));
	fo_result(n, false, why);
	apply(n, FT_EV_FAILOVER_ABORT);
}

/* The VMM detached its VM: its ring and ft fd go (a new ATTACHED brings the next). */
static void vm_detached(struct ft_node *n)
{
	if (n->ring.map_cons)
		ft_ring_unmap(&n->ring);
	memset(&n->ring, 0, sizeof(n->ring));
	if (n->ring_fd >= 0)
		close(n->ring_fd);
	n->ring_fd = -1;
	n->vm_mode = 0;
}

/*
 * The roles swapped: the old channel and ring go (the VMM detaches), RESUME
 * asks the VMM to re-attach in the new mode, and the channel of the new
 * epoch starts at once in the other direction, heartbeats only, as at
 * start: failure detection does not wait for either VMM. When the VMM has
 * re-attached (vmm_attached -> ft_chan_set_ring) the channel carries the new
 * log from seq 1.
 */
static int fo_restart(struct ft_node *n)
{
	char err[200];
	int ret;

	ft_chan_free(n->chan);
	n->chan = NULL;
	vm_detached(n);
	n->peer_emitted = 0;
	n->bw_t = 0;
	ret = fo_channel(n, err, sizeof(err));
	ft_vmm_send(n->vmm, FTD_VMM_RESUME, 0, n->epoch,
		    n->sm.role == FT_ROLE_PRIMARY ? FTD_VMM_ROLE_PRIMARY : FTD_VMM_ROLE_BACKUP);
	return ret;
}

/* The channel of the new epoch (the ring follows when the VMM re-attaches). */
static int fo_channel(struct ft_node *n, char *err, size_t errlen)
{
	bool sender = n->sm.role == FT_ROLE_PRIMARY;
	int ret = 0;

	n->stalled_at_us = 0;
	n->cc.sender = sender;
	if (!sender) {
		n->cc.listen_fd = listen_on(&n->cfg, err, errlen);
		ret = n->cc.listen_fd < 0 ? n->cc.listen_fd : 0;
	}
	if (!ret)
		ret = ft_psk_load(n->cfg.key_file, n->cc.psk, err, errlen);
	if (!ret)
		ret = start_channel(n, err, errlen);
	if (n->cc.listen_fd >= 0)
		close(n->cc.listen_fd);	/* start_channel failed before taking it */
	n->cc.listen_fd = -1;
	if (ret)
		ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-channel",
							 .err = -ret },
		       "planned failover: %s", err);
	return ret;
}

static void fo_swapped(struct ft_node *n, const char *how)
{
	int ret;

	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-swapped",
						    .role = ft_role_name(n->sm.role) },
	       "planned failover done in %llu ms: %s at seq %llu; now %s in epoch %llu, the VM re-attaches "
	       "and the log restarts at seq 1", (unsigned long long)(ft_now_us() - n->fo.t0_us) / 1000,
	       how, (unsigned long long)n->fo.seq, ft_role_name(n->sm.role), (unsigned long long)n->epoch);
	ret = fo_restart(n);
	fo_result(n, true, NULL);
	if (ret)
		halt_for(n, FT_EV_VM_LOST, 0, "planned failover: the channel of the new epoch cannot start");
}

/* Backup: the primary asked to hand over at S (peer HANDOVER). Take it or refuse. */
static void fo_backup_take(struct ft_node *n)
{
	const struct ft_fo_msg *m = &n->fo.peer;
	uint64_t stored = n->ring.rstat ? n->ring.wseq - 1 : 0;
	char why[160] = "";

	n->fo.handled_id = m->id;
	if (!n->ring.rstat)
		snprintf(why, sizeof(why), "no VM is attached to the backup");
	else if (!n->arb)
		snprintf(why, sizeof(why), "no shared_disk configured on the backup");
	else if (stored != m->seq)
		snprintf(why, sizeof(why), "the backup holds the log up to seq %llu, the primary paused at %llu",
			 (unsigned long long)stored, (unsigned long long)m->seq);
	n->fo.id = m->id;
	n->fo.seq = m->seq;
	n->fo.t0_us = ft_now_us();
	n->fo.attempts++;
	if (why[0]) {
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-refused" },
		       "planned failover: the primary asked to hand over at seq %llu; refused: %s",
		       (unsigned long long)m->seq, why);
		ft_chan_set_failover(n->chan, &(struct ft_fo_msg){ .state = FT_FO_ABORTED, .id = m->id,
								   .seq = m->seq });
		fo_result(n, false, why);
		return;
	}
	n->fo.step = FO_PAUSING;
	n->fo.deadline_us = n->fo.t0_us + n->cfg.failover_timeout_us;
	ft_chan_set_failover(n->chan, &(struct ft_fo_msg){ .state = FT_FO_CATCHING, .id = m->id,
							   .seq = m->seq });
	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-start" },
	       "planned failover: the primary paused at seq %llu; replaying up to it, then the disk step",
	       (unsigned long long)m->seq);
	apply(n, FT_EV_FAILOVER);
	ft_vmm_send(n->vmm, FTD_VMM_PAUSE, m->seq, 0, 0);
	fo_kick(n, 0);
}

/*
 * A ballot that writes epoch e+1 (planned failover, re-protection) answered
 * that the peer won or that the disk is past e: halt. true if so.
 */
static bool arb_halts(struct ft_node *n, int ret, unsigned int winner, const char *during)
{
	char why[160];

	if (!ret && winner != n->cfg.node_id) {
		snprintf(why, sizeof(why), "the peer won the arbitration during %s", during);
		halt_for(n, FT_EV_ARB_LOST, n->epoch, why);
		return true;
	}
	if (ret == -ESTALE) {
		snprintf(why, sizeof(why), "fenced by a newer epoch on the disk during %s", during);
		halt_for(n, FT_EV_STALE_EPOCH, ft_ballot_disk_epoch(n->arb), why);
		return true;
	}
	return false;
}

/* Backup's disk step answered (ballot for e, then epoch e+1). */
static void fo_arb_done(struct ft_node *n, int ret, unsigned int winner)
{
	char why[200];

	if (n->fo.step != FO_DISK)
		return;
	if (!ret && winner == n->cfg.node_id && ft_ballot_advanced(n->arb)) {
		uint64_t old = n->epoch;

		n->epoch++;
		n->arb_state = "won the handover ballot";
		ft_chan_set_failover(n->chan, &(struct ft_fo_msg){ .state = FT_FO_SWAPPED, .id = n->fo.id,
								   .seq = n->fo.seq, .epoch = n->epoch });
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-epoch" },
		       "planned failover: won epoch %llu on the shared disk and wrote epoch %llu naming this "
		       "node primary", (unsigned long long)old, (unsigned long long)n->epoch);
		apply(n, FT_EV_SWAPPED);
		/* the old primary ends the old session when it reads SWAPPED; bounded */
		n->fo.step = FO_LINGER;
		n->fo.deadline_us = ft_now_us() + n->cfg.peer_timeout_us;
		fo_kick(n, 1000);
		return;
	}
	if (arb_halts(n, ret, winner, "the handover"))
		return;
	if (winner == n->cfg.node_id) {
		/* decided for this node, epoch e+1 not written yet: must finish, retry */
		if (!n->fo.retry_logged)
			ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-advance",
								 .err = -ret },
			       "planned failover: won epoch %llu but cannot write the next epoch: %s; retrying",
			       (unsigned long long)n->epoch, strerror(-ret));
		n->fo.retry_logged = true;
		apply(n, FT_EV_ARB_ERROR);
		return;
	}
	if (ft_now_us() >= n->fo.deadline_us) {
		snprintf(why, sizeof(why), "the disk step did not decide within the failover timeout (%s)",
			 strerror(-ret));
		fo_abandon(n, why);
		return;
	}
	apply(n, FT_EV_ARB_ERROR);
}

/* One step of the failover; runs every few ms while one is under way. */
static int on_fo_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	struct ft_fo *fo = &n->fo;
	const struct ft_fo_msg *pm = &fo->peer;
	uint64_t now = ft_now_us();
	char why[200];

	(void)s;
	(void)usec;
	if (n->sm.role == FT_ROLE_BACKUP && fo->step == FO_IDLE) {
		if (pm->state == FT_FO_HANDOVER && pm->id != fo->handled_id && n->chan)
			fo_backup_take(n);
		return 0;
	}
	if (fo->step == FO_LINGER) {
		struct ft_chan_stats st = { 0 };

		if (n->chan)
			ft_chan_get_stats(n->chan, &st);
		if (st.state == FT_CHAN_UP && now < fo->deadline_us) {
			fo_kick(n, 2000);
			return 0;
		}
		fo_swapped(n, "this node won the handover ballot");
		return 0;
	}
	if (n->sm.role != FT_ROLE_HANDOVER || fo->step == FO_IDLE)
		return 0;
	if (n->sm.from == FT_ROLE_BACKUP && fo->step == FO_PAUSING && n->ring.rstat &&
	    __atomic_load_n(&n->ring.rstat->error, __ATOMIC_ACQUIRE)) {
		snprintf(why, sizeof(why), "replay stopped with error %u while catching up to seq %llu",
			 n->ring.rstat->error, (unsigned long long)fo->seq);
		fo_abandon(n, why);
		halt_for(n, FT_EV_VM_LOST, 0, "replay failed during a planned failover");
		return 0;
	}
	if ((fo->step == FO_PAUSING || fo->step == FO_DRAINING) && now >= fo->deadline_us) {
		if (fo->step == FO_PAUSING)
			snprintf(why, sizeof(why), "the VMM did not answer PAUSE within %llu ms",
				 (unsigned long long)n->cfg.failover_timeout_us / 1000);
		else
			snprintf(why, sizeof(why), "acked %llu / emitted %llu did not reach seq %llu within %llu ms",
				 (unsigned long long)n->ring.cons->acked_seq,
				 (unsigned long long)ft_vmm_emitted(n->vmm), (unsigned long long)fo->seq,
				 (unsigned long long)n->cfg.failover_timeout_us / 1000);
		fo_abandon(n, why);
		return 0;
	}
	if (fo->step == FO_DRAINING) {
		/* every record <= S acked by the backup, every output <= S out of this host */
		if (n->ring.cons->acked_seq >= fo->seq && ft_vmm_emitted(n->vmm) >= fo->seq) {
			fo->step = FO_HANDED;
			/* the backup's own bounds (PAUSE, disk step) answer within this */
			fo->deadline_us = now + 2 * n->cfg.failover_timeout_us + 5000000;
			ft_chan_set_failover(n->chan, &(struct ft_fo_msg){ .state = FT_FO_HANDOVER, .id = fo->id,
									   .seq = fo->seq });
			ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
			       "planned failover: paused at seq %llu, all of it acked and emitted; asking the "
			       "backup to take over", (unsigned long long)fo->seq);
			changed(n);
		}
	} else if (fo->step == FO_HANDED && pm->id == fo->id) {
		if (pm->state == FT_FO_ABORTED) {
			fo_abandon(n, "the backup refused or abandoned the handover (its log says why)");
			return 0;
		}
		if (pm->state == FT_FO_SWAPPED && pm->epoch == n->epoch + 1 && pm->seq == fo->seq) {
			n->epoch = pm->epoch;
			apply(n, FT_EV_SWAPPED);
			fo_swapped(n, "the backup won the handover ballot and wrote the new epoch");
			return 0;
		}
	}
	if (fo->step == FO_HANDED && now >= fo->deadline_us) {
		/*
		 * No answer from a backup that stays alive: it may be in its disk
		 * step, so this node cannot just resume. Let the ballot decide, as
		 * if the peer had died (never two live).
		 */
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-no-answer" },
		       "planned failover: the backup did not answer the handover at seq %llu; the ballot "
		       "decides", (unsigned long long)fo->seq);
		apply(n, FT_EV_PEER_DEAD);
		return 0;
	}
	fo_kick(n, 2000);
	return 0;
}

/* The VMM answered PAUSE. */
static void vmm_paused(void *ctx, uint64_t seq)
{
	struct ft_node *n = ctx;
	struct ft_fo *fo = &n->fo;
	uint64_t want;
	char why[200];

	if (n->sm.role != FT_ROLE_HANDOVER || fo->step != FO_PAUSING)
		return;
	if (n->sm.from == FT_ROLE_PRIMARY) {
		want = __atomic_load_n(&n->ring.prod->next_seq, __ATOMIC_ACQUIRE) - 1;
		if (seq != want) {
			snprintf(why, sizeof(why), "the VMM said PAUSED at seq %llu but its log ends at %llu",
				 (unsigned long long)seq, (unsigned long long)want);
			fo_abandon(n, why);
			return;
		}
		fo->seq = seq;
		fo->step = FO_DRAINING;
	} else {
		want = __atomic_load_n(&n->ring.rstat->next_seq, __ATOMIC_ACQUIRE) - 1;
		if (seq != fo->seq || want != fo->seq) {
			snprintf(why, sizeof(why), "the VMM said PAUSED at seq %llu (replayed up to %llu), the "
				 "handover is at %llu", (unsigned long long)seq, (unsigned long long)want,
				 (unsigned long long)fo->seq);
			fo_abandon(n, why);
			return;
		}
		fo->step = FO_DISK;
		n->arb_state = "handover ballot pending";
		arm_ballot(n, 0);
	}
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
	       "planned failover: the VM paused at seq %llu", (unsigned long long)seq);
	fo_kick(n, 0);
	changed(n);
}

static void chan_failover(void *ctx, const struct ft_fo_msg *m)
{
	struct ft_node *n = ctx;

	n->fo.peer = *m;
	fo_kick(n, 0);	/* not from inside the channel's callback */
}

int ft_node_failover(struct ft_node *n, uint64_t *attempt, char *msg, size_t len)
{
	struct ft_fo *fo = &n->fo;
	struct ft_chan_stats st = { 0 };

	if (n->chan)
		ft_chan_get_stats(n->chan, &st);
	if (n->sm.role == FT_ROLE_HANDOVER || fo->step != FO_IDLE) {
		snprintf(msg, len, "a planned failover is already running (%s, seq %llu)",
			 fo_step_names[fo->step], (unsigned long long)fo->seq);
		return -EALREADY;
	}
	if (n->sm.role == FT_ROLE_BACKUP) {
		snprintf(msg, len, "this node is the backup: ask the primary (node %u, %s)",
			 3 - n->cfg.node_id, n->cfg.peer_str);
		return -EPERM;
	}
	if (n->sm.role != FT_ROLE_PRIMARY) {
		snprintf(msg, len, "this node is %s: a planned failover needs a primary and a backup",
			 ft_role_name(n->sm.role));
		return -EPERM;
	}
	if (!n->arb) {
		snprintf(msg, len, "no shared_disk configured: the new epoch cannot be decided");
		return -EOPNOTSUPP;
	}
	if (!n->vmm || !n->ring.prod || ft_vmm_state(n->vmm) != FT_VMM_ATTACHED) {
		snprintf(msg, len, "no VM attached (a planned failover pauses the VM through its VMM)");
		return -EOPNOTSUPP;
	}
	if (!n->chan || st.state != FT_CHAN_UP || n->peer_dead) {
		snprintf(msg, len, "no peer: the channel to node %u is %s", 3 - n->cfg.node_id,
			 n->peer_dead ? "dead" : n->chan ? ft_chan_state_name(st.state) : "closed");
		return -ENOTCONN;
	}
	fo->attempts++;
	*attempt = fo->attempts;
	fo->id = ((uint64_t)randombytes_random() << 32 | randombytes_random()) | 1;
	fo->seq = 0;
	fo->t0_us = ft_now_us();
	fo->deadline_us = fo->t0_us + n->cfg.failover_timeout_us;
	fo->step = FO_PAUSING;
	fo->retry_logged = false;
	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "failover-start" },
	       "planned failover %llu asked: pausing the VM", (unsigned long long)fo->attempts);
	apply(n, FT_EV_FAILOVER);
	ft_vmm_send(n->vmm, FTD_VMM_PAUSE, 0, 0, 0);
	fo_kick(n, 0);
	return 0;
}

/* ---- re-protection (README "Re-protection"; frame.h: SNAP, enum ft_sy_wire) ---- */

/* The live node offers a seed to its returning peer: a channel that dials it, heartbeats only. */
static void sy_offer(struct ft_node *n)
{
	char err[200];
	int ret;

	if (!n->cfg.reprotect || !n->vmm || !n->ring.map_cons || !n->arb || n->chan ||
	    n->sm.role != FT_ROLE_LIVE_ALONE)
		return;
	n->cc.sender = true;
	n->cc.hello_flags = FT_HELLO_SEED_OFFER;
	ret = ft_psk_load(n->cfg.key_file, n->cc.psk, err, sizeof(err));
	if (!ret)
		ret = start_channel(n, err, sizeof(err));
	n->cc.hello_flags = 0;
	if (ret) {
		ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "sync-offer", .err = -ret },
		       "re-protection: cannot offer a seed to node %u: %s", 3 - n->cfg.node_id, err);
		return;
	}
	ft_log(LOG_INFO, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch },
	       "re-protection: offering node %u a seed when it comes back (dialing %s)", 3 - n->cfg.node_id,
	       n->cfg.peer_str);
}

static void sy_kick(struct ft_node *n, uint64_t delay_us)
{
	sd_event_source_set_time(n->sy_timer, ft_now_us() + delay_us);
	sd_event_source_set_enabled(n->sy_timer, SD_EVENT_ONESHOT);
}

static void sy_result(struct ft_node *n, bool ok, const char *why)
{
	struct ft_sy *sy = &n->sy;

	snprintf(sy->last, sizeof(sy->last), "%s%s%s", ok ? "done" : "abandoned", why ? ": " : "",
		 why ? why : "");
	sy->last_ms = (ft_now_us() - sy->t0_us) / 1000;
	sy->last_bytes = sy->total;
	sy->done++;
	changed(n);
}

/* The live node's transfer state goes (the channel stops streaming). */
static void sy_tx_end(struct ft_node *n)
{
	if (n->chan)
		ft_chan_snap_stop(n->chan);
	ft_sync_tx_close(&n->sy.tx);
	if (n->sy.snap_fd >= 0)
		close(n->sy.snap_fd);
	n->sy.snap_fd = -1;
}

/*
 * The live node gives the sync up: one line, ABORTED to the peer (in every
 * heartbeat of this session: the returning node halts and ends it), then ev
 * (peer-dead or sync-abort) takes it back to LIVE_ALONE and the VM goes
 * live again (sy_resume_live). A returning node that went on asking in the
 * same session would get no second attempt: bounded.
 */
static void sy_abort(struct ft_node *n, enum ft_role_event ev, const char *why)
{
	ft_log(LOG_WARNING, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
						     .reason = "sync-abandoned", .role = "live-alone" },
	       "re-protection abandoned while %s (%llu of %llu bytes sent): %s; the VM goes on live alone",
	       sy_step_names[n->sy.step], (unsigned long long)n->sy.sent, (unsigned long long)n->sy.total,
	       why);
	sy_tx_end(n);
	n->sy.step = SY_IDLE;
	n->sy.resume = true;
	sy_result(n, false, why);
	if (n->chan)
		ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ .state = FT_SY_ABORTED });
	apply(n, ev);
}

/*
 * FT_ACT_GO_LIVE after an abandoned sync. The VMM re-attached in RECORD (its
 * outputs held for acks that never come): the module goes live and GO_LIVE
 * releases them. SNAPSHOT still unanswered, or answered with a memfd but no
 * ATTACHED yet: that happens when the VMM gets there (vmm_attached). A
 * refused SNAPSHOT left the VM live: nothing to do.
 */
static void sy_resume_live(struct ft_node *n)
{
	n->sy.resume = false;
	if (n->sy.reattached) {
		n->sy.reattached = false;
		n->go_live_t0 = ft_now_us();
		go_live_finish(n, ft_vmm_emitted(n->vmm));
		return;
	}
	/* SNAPSHOT unanswered, or answered with a memfd (the old ring is gone) but no ATTACHED yet */
	if (n->sy.snapshot_sent || !n->ring.map_cons)
		n->sy.late = true;
	changed(n);
}

/* The returning node gives up: one line, REFUSED to the live node, then it halts (sy_tick). */
static void sy_refuse(struct ft_node *n, const char *why)
{
	ft_log(LOG_WARNING, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
						     .reason = "sync-refused", .role = "halted" },
	       "re-protection failed while %s (%llu of %llu bytes received): %s; telling node %u, then "
	       "halting (this node has no acked state: it never runs the VM)", sy_step_names[n->sy.step],
	       (unsigned long long)(n->sy.step >= SY_SEED ? n->sy.total : n->sy.rx.got),
	       (unsigned long long)n->sy.total, why,
	       3 - n->cfg.node_id);
	ft_sync_rx_close(&n->sy.rx);
	if (n->sy.seed_fd >= 0)
		close(n->sy.seed_fd);
	n->sy.seed_fd = -1;
	snprintf(n->halt_why, sizeof(n->halt_why), "re-protection failed: %s", why);
	n->sy.step = SY_FAILED;
	n->sy.deadline_us = ft_now_us() + n->cfg.peer_timeout_us;
	sy_result(n, false, why);
	/*
	 * Not now: this may run inside the channel's frame callback (chan_snap),
	 * and a heartbeat written from there can fail and free the connection
	 * the callback's caller still uses.
	 */
	n->sy.tell_refused = true;
	sy_kick(n, 1000);
}

/* The live node: a returning node asked to be seeded, the session is up. */
static void sy_start(struct ft_node *n)
{
	struct ft_sy *sy = &n->sy;
	const char *no = NULL;

	sy->want_start = false;
	if (n->sm.role != FT_ROLE_LIVE_ALONE || sy->step != SY_IDLE)
		return;
	if (!n->arb)
		no = "no shared_disk: the next epoch cannot be decided";
	else if (ft_vmm_state(n->vmm) != FT_VMM_ATTACHED || n->go_live != GL_DONE || sy->late)
		no = "the VM is not attached and live";
	if (no) {
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
							     .reason = "sync-refused" },
		       "re-protection: node %u asks to be seeded; refused: %s", 3 - n->cfg.node_id, no);
		if (n->chan)
			ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ .state = FT_SY_ABORTED });
		return;
	}
	sy->attempts++;
	sy->t0_us = ft_now_us();
	sy->deadline_us = sy->t0_us + n->cfg.sync_timeout_us;
	sy->step = SY_SNAPSHOT;
	sy->snapshot_sent = true;
	sy->reattached = false;
	sy->sent = sy->total = 0;
	sy->peer = (struct ft_fo_msg){ 0 };
	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
						    .reason = "sync-start" },
	       "re-protection: node %u asks to be seeded as the new backup; snapshotting the VM",
	       3 - n->cfg.node_id);
	apply(n, FT_EV_SYNC_START);	/* FT_ACT_SEED_BACKUP: SNAPSHOT */
}

/* The VMM answered SNAPSHOT (vmm.h). */
static void vmm_snapshot_ready(void *ctx, int fd, uint64_t len)
{
	struct ft_node *n = ctx;
	const char *why = NULL;

	n->sy.snapshot_sent = false;
	if (fd >= 0) {
		/* the VMM detached: the old ring and ft fd are gone; ATTACHED (RECORD) comes next */
		vm_detached(n);
	}
	if (n->sm.role != FT_ROLE_SYNCING || n->sy.step != SY_SNAPSHOT) {
		/* after an abandoned sync: ATTACHED then GO_LIVE (vmm_attached), or the VM stayed live */
		if (fd < 0)
			n->sy.late = false;
		else
			close(fd);
		return;
	}
	if (fd < 0) {
		sy_abort(n, FT_EV_SYNC_ABORT, "the VMM refused the SNAPSHOT (its log says why)");
		return;
	}
	if (ft_sync_tx_open(&n->sy.tx, fd, len, &why)) {
		close(fd);
		n->sy.late = true;	/* the VMM re-attaches: it goes live again then */
		sy_abort(n, FT_EV_SYNC_ABORT, why);
		return;
	}
	n->sy.snap_fd = fd;
	n->sy.total = len;
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
	       "re-protection: the VM's snapshot is %llu bytes; waiting for it to re-attach in RECORD",
	       (unsigned long long)len);
}

/* The live node's VM re-attached in RECORD after SNAPSHOT_READY: stream the snapshot. */
static void sy_reattached(struct ft_node *n)
{
	n->sy.reattached = true;
	if (n->sy.late) {
		n->sy.late = false;
		n->sy.reattached = false;
		n->go_live_t0 = ft_now_us();
		go_live_finish(n, ft_vmm_emitted(n->vmm));
		return;
	}
	if (n->sm.role != FT_ROLE_SYNCING || n->sy.step != SY_SNAPSHOT)
		return;
	if (!n->chan || ft_chan_snap_send(n->chan, &n->sy.tx, n->cfg.sync_rate)) {
		sy_abort(n, FT_EV_PEER_DEAD, "the session with the returning node ended");
		return;
	}
	n->sy.step = SY_SENDING;
	n->sy.t_send_us = ft_now_us();
	n->sy.deadline_us = n->sy.t_send_us + n->cfg.sync_timeout_us;
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
	       "re-protection: the VM records a new log (outputs held for the new backup); sending the "
	       "snapshot%s", n->cfg.sync_rate ? " (paced)" : "");
	changed(n);
}

/* The live node's disk step answered: epoch e (decided for it) again, then e+1. */
static void sy_arb_done(struct ft_node *n, int ret, unsigned int winner)
{
	if (n->sy.step != SY_DISK)
		return;
	if (!ret && winner == n->cfg.node_id && ft_ballot_advanced(n->arb)) {
		uint64_t old = n->epoch;

		n->epoch++;
		n->arb_state = "won the re-protection ballot";
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "sync-epoch" },
		       "re-protection: won epoch %llu and wrote epoch %llu naming this node primary and node "
		       "%u backup", (unsigned long long)old, (unsigned long long)n->epoch, 3 - n->cfg.node_id);
		if (n->chan)
			ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ .state = FT_SY_DONE, .epoch = n->epoch });
		n->sy.step = SY_LINGER;
		n->sy.deadline_us = ft_now_us() + n->cfg.peer_timeout_us;
		apply(n, FT_EV_SYNC_DONE);
		sy_kick(n, 1000);
		return;
	}
	if (arb_halts(n, ret, winner, "re-protection"))
		return;
	/* the disk decides for this node or errs: the epoch must advance, retry */
	if (!n->sy.retry_logged)
		ft_log(LOG_ERR, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "sync-advance",
							 .err = -ret },
		       "re-protection: cannot write the next epoch yet: %s; retrying", strerror(-ret));
	n->sy.retry_logged = true;
	apply(n, FT_EV_ARB_ERROR);
}

/* The live node, now primary of e+1: the channel of e+1 carries the ring that waited. */
static void sy_finish_primary(struct ft_node *n)
{
	uint64_t waiting = n->ring.prod ? __atomic_load_n(&n->ring.prod->next_seq, __ATOMIC_ACQUIRE) - 1 : 0;

	n->sy.step = SY_IDLE;
	sy_tx_end(n);
	ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ 0 });
	ft_chan_set_hello_flags(n->chan, 0);
	ft_chan_set_epoch(n->chan, n->epoch);
	ft_chan_set_ring(n->chan, &n->ring, n->vm_file ? 0 : n->ring_fd, false);
	n->peer_dead = false;
	n->chan_since_us = ft_now_us();
	n->stalled_at_us = 0;
	n->bw_t = 0;
	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
						    .reason = "sync-done", .role = "primary" },
	       "re-protected in %llu ms: PRIMARY of epoch %llu with node %u as backup; the log that waited "
	       "in the ring (%llu records) flows from seq 1", (unsigned long long)(ft_now_us() - n->sy.t0_us) / 1000,
	       (unsigned long long)n->epoch, 3 - n->cfg.node_id, (unsigned long long)waiting);
	sy_result(n, true, NULL);
}

/* The returning node, seeded: BACKUP of e+1, as a restarted ftd would start. */
static void sy_finish_backup(struct ft_node *n, uint64_t epoch)
{
	n->sy.step = SY_IDLE;
	n->epoch = epoch;
	n->fence_epoch = 0;
	n->halt_why[0] = 0;
	ft_role_init(&n->sm, FT_ROLE_BACKUP);
	n->arb_state = "idle";
	ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ 0 });
	ft_chan_set_hello_flags(n->chan, 0);
	ft_chan_set_role(n->chan, n->sm.role);
	ft_chan_set_epoch(n->chan, n->epoch);
	ft_chan_set_ring(n->chan, &n->ring, 0, false);
	n->peer_dead = false;
	n->chan_since_us = ft_now_us();
	n->stalled_at_us = 0;
	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
						    .reason = "sync-done", .role = "backup" },
	       "re-protected in %llu ms: BACKUP of epoch %llu, its VM seeded from node %u's snapshot "
	       "(%llu bytes); the log flows from seq 1", (unsigned long long)(ft_now_us() - n->sy.t0_us) / 1000,
	       (unsigned long long)n->epoch, 3 - n->cfg.node_id, (unsigned long long)n->sy.total);
	sy_result(n, true, NULL);
}

/* One step of re-protection, on either node; runs every few ms while one is under way. */
static int on_sy_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	struct ft_sy *sy = &n->sy;
	struct ft_chan_stats st = { 0 };
	uint64_t now = ft_now_us();
	char why[200];
	bool up;

	(void)s;
	(void)usec;
	if (sy->tell_refused && n->chan)
		ft_chan_set_sync(n->chan, &(struct ft_fo_msg){ .state = FT_SY_REFUSED });
	sy->tell_refused = false;
	if (n->chan)
		ft_chan_get_stats(n->chan, &st);
	up = n->chan && st.state == FT_CHAN_UP;
	if (sy->want_start && up)
		sy_start(n);
	switch (sy->step) {
	case SY_IDLE:
		return 0;
	case SY_ASKING:
		if (up && sy->peer.state == FT_SY_ABORTED)
			sy_refuse(n, "the live node refused or gave the sync up (its log says why)");
		return 0;
	case SY_SNAPSHOT:
	case SY_SENDING:
	case SY_SEEDING:
		/* Sending: sync_timeout bounds each stretch without progress. */
		if (sy->step == SY_SENDING && st.snap_sent != sy->sent)
			sy->deadline_us = now + n->cfg.sync_timeout_us;
		sy->sent = st.snap_sent;
		if (sy->peer.state == FT_SY_REFUSED) {
			sy_abort(n, FT_EV_SYNC_ABORT, "the returning node refused the snapshot (its log says why)");
			return 0;
		}
		if (sy->step == SY_SENDING && st.snap_end_sent) {
			sy->step = SY_SEEDING;
			sy->deadline_us = now + n->cfg.sync_timeout_us;
			ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
			       "re-protection: snapshot sent (%llu bytes in %llu ms); waiting for node %u's VM",
			       (unsigned long long)sy->total, (unsigned long long)(now - sy->t_send_us) / 1000,
			       3 - n->cfg.node_id);
			changed(n);
		}
		if (sy->step == SY_SEEDING && sy->peer.state == FT_SY_SEEDED) {
			sy_tx_end(n);
			sy->step = SY_DISK;
			sy->retry_logged = false;
			n->arb_state = "re-protection ballot pending";
			ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
			       "re-protection: node %u's VM is seeded and attached; the disk step", 3 - n->cfg.node_id);
			arm_ballot(n, 0);
			changed(n);
			return 0;
		}
		if (now >= sy->deadline_us) {
			snprintf(why, sizeof(why), "%s within the sync timeout (%llu ms)",
				 sy->step == SY_SNAPSHOT ? "the VMM did not answer SNAPSHOT and re-attach" :
				 sy->step == SY_SENDING ? "the snapshot transfer made no progress" :
				 "the returning node did not report its VM seeded",
				 (unsigned long long)n->cfg.sync_timeout_us / 1000);
			sy_abort(n, FT_EV_SYNC_ABORT, why);
			return 0;
		}
		break;
	case SY_DISK:
		break;
	case SY_LINGER:
		/* the returning node ends the old session when it reads DONE; bounded */
		if (up && now < sy->deadline_us)
			break;
		sy_finish_primary(n);
		return 0;
	case SY_RECEIVING:
	case SY_SEED:
	case SY_SEEDED:
		if (!up) {
			sy_refuse(n, "the session with the live node ended mid-sync");
			return 0;
		}
		if (sy->peer.state == FT_SY_ABORTED) {
			sy_refuse(n, "the live node gave the sync up (its log says why)");
			return 0;
		}
		/* Receiving: sync_timeout bounds each stretch without a chunk. */
		if (sy->step == SY_RECEIVING && sy->rx.got != sy->rx_seen) {
			sy->rx_seen = sy->rx.got;
			sy->deadline_us = now + n->cfg.sync_timeout_us;
		}
		if (sy->step == SY_RECEIVING && now >= sy->deadline_us) {
			sy_refuse(n, "the snapshot transfer made no progress within the sync timeout");
			return 0;
		}
		if (sy->step == SY_SEED && sy->seed_fd >= 0 && ft_vmm_state(n->vmm) == FT_VMM_WAIT_SEED) {
			int ret = ft_vmm_seed(n->vmm, sy->seed_fd, sy->total, st.epoch);

			close(sy->seed_fd);
			sy->seed_fd = -1;
			if (ret) {
				sy_refuse(n, "SEED could not be sent to the VMM");
				return 0;
			}
			changed(n);
		}
		if (sy->step == SY_SEEDED && sy->peer.state == FT_SY_DONE && sy->peer.epoch > st.epoch) {
			sy_finish_backup(n, sy->peer.epoch);
			return 0;
		}
		break;
	case SY_FAILED:
		if (n->chan && up && now < sy->deadline_us)
			break;
		/* REFUSED went out (or the session is gone): halted for good */
		ft_chan_free(n->chan);
		n->chan = NULL;
		sy->step = SY_GAVE_UP;
		if (ft_vmm_state(n->vmm) != FT_VMM_NONE && ft_vmm_state(n->vmm) != FT_VMM_LOST) {
			ft_vmm_send(n->vmm, FTD_VMM_HALT, 0, n->epoch, 0);
			ft_vmm_close(n->vmm);
		}
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .role = "halted" },
		       "HALTED in epoch %llu: %s", (unsigned long long)n->epoch, n->halt_why);
		changed(n);
		return 0;
	case SY_GAVE_UP:
		return 0;
	}
	sy_kick(n, 5000);
	return 0;
}

static void chan_sync(void *ctx, const struct ft_fo_msg *m)
{
	struct ft_node *n = ctx;

	n->sy.peer = *m;
	sy_kick(n, 0);	/* not from inside the channel's callback */
}

/* The returning node: a SNAP chunk. */
static void chan_snap(void *ctx, uint64_t total, uint64_t off, const uint8_t *data, size_t len)
{
	struct ft_node *n = ctx;
	const char *why = NULL;

	if (n->sy.step == SY_ASKING) {
		if (ft_sync_rx_open(&n->sy.rx, total, &why)) {
			sy_refuse(n, why);
			return;
		}
		n->sy.step = SY_RECEIVING;
		n->sy.total = total;
		n->sy.t0_us = ft_now_us();
		n->sy.rx_seen = 0;
		n->sy.deadline_us = n->sy.t0_us + n->cfg.sync_timeout_us;
		n->sy.attempts++;
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
							    .reason = "sync-start" },
		       "re-protection: receiving a snapshot of %llu bytes from node %u", (unsigned long long)total,
		       3 - n->cfg.node_id);
		changed(n);
	}
	if (n->sy.step != SY_RECEIVING)
		return;	/* refused already: the rest is dropped */
	if (total != n->sy.total) {
		sy_refuse(n, "a snapshot chunk announces another length");
		return;
	}
	if (ft_sync_rx_chunk(&n->sy.rx, off, data, len, &why))
		sy_refuse(n, why);
}

/* The returning node: SNAP_END. The memfd goes to the VMM with SEED (sy_tick). */
static void chan_snap_end(void *ctx, uint64_t total, const uint8_t hash[FT_SYNC_HASH_LEN])
{
	struct ft_node *n = ctx;
	const char *why = NULL;
	int fd;

	if (n->sy.step != SY_RECEIVING) {
		if (n->sy.step == SY_ASKING)
			sy_refuse(n, "snapshot end without a snapshot");
		return;
	}
	fd = ft_sync_rx_end(&n->sy.rx, total, hash, &why);
	if (fd < 0) {
		sy_refuse(n, why);
		return;
	}
	n->sy.seed_fd = fd;
	n->sy.step = SY_SEED;
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch },
	       "re-protection: snapshot received and checked (%llu bytes in %llu ms, BLAKE2b-256 matches); "
	       "%s", (unsigned long long)total, (unsigned long long)(ft_now_us() - n->sy.t0_us) / 1000,
	       ft_vmm_state(n->vmm) == FT_VMM_WAIT_SEED ? "SEED to the VMM" : "SEED when the VMM says HELLO");
	sy_kick(n, 0);
	changed(n);
}

/*
 * A node that comes back after its pair moved on must not run the VM: if
 * the disk's current epoch was decided while it was away, the other node is
 * (or was) live alone in it. Blocking reads, at start-up only.
 */
static int check_returning(struct ft_node *n, char *err, size_t errlen)
{
	unsigned int winner = 0;
	int ret = ft_ballot_read_decided(n->cfg.shared_disk, n->epoch, &winner);

	if (ret == -ESTALE)
		winner = 3 - n->cfg.node_id;	/* a later epoch was decided already */
	else if (ret) {
		snprintf(err, errlen, "cannot read the decisions on shared disk %s: %s",
			 n->cfg.shared_disk, strerror(-ret));
		return ret;
	}
	if (!winner)
		return 0;
	if (winner == n->cfg.node_id) {
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "returning-live",
							     .role = "live-alone" },
		       "epoch %llu was decided for this node before ftd restarted: live alone, not "
		       "protecting (re-protection needs a new epoch)", (unsigned long long)n->epoch);
		ft_role_init(&n->sm, FT_ROLE_LIVE_ALONE);
		n->arb_state = "won before the restart";
		return 0;
	}
	snprintf(n->halt_why, sizeof(n->halt_why), "epoch %llu was decided for node %u while this node "
		 "was away%s", (unsigned long long)n->epoch, winner,
		 !n->cfg.ring[0] && n->cfg.reprotect ? "; asking it to seed this node as the new backup" : "");
	if (!n->cfg.ring[0] && n->cfg.reprotect)
		n->sy.step = SY_ASKING;
	n->fence_epoch = n->epoch;
	ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .reason = "returning-fenced",
						     .role = "halted" },
	       "fenced at start: %s; this node %s", n->halt_why, n->sy.step == SY_ASKING ?
	       "runs no VM until it is seeded" : "stays halted and will not run the VM");
	ft_role_init(&n->sm, FT_ROLE_HALTED);
	n->arb_state = "fenced: the pair moved on while this node was away";
	return 0;
}

int ft_node_new(sd_event *ev, const struct ft_config *cfg, const struct ft_node_ops *ops,
		void *ctx, struct ft_node **out, char *err, size_t errlen)
{
	struct ft_node *n = calloc(1, sizeof(*n));
	struct ft_chan_cfg *cc;
	bool protecting, asking;
	int ret;

	if (!n)
		return -ENOMEM;
	cc = &n->cc;
	cc->listen_fd = -1;
	n->ev = sd_event_ref(ev);
	n->cfg = *cfg;
	if (ops)
		n->ops = *ops;
	n->ctx = ctx;
	n->ring_fd = -1;
	n->sy.snap_fd = n->sy.seed_fd = n->sy.rx.fd = -1;
	n->epoch = cfg->epoch;
	n->started_us = ft_now_us();
	n->arb_state = "idle";
	ft_role_init(&n->sm, cfg->role);
	ft_log_set_sink(sink, n);

	if (cfg->shared_disk[0]) {
		unsigned int primary = 0;

		ret = ft_ballot_read_epoch(cfg->shared_disk, &n->epoch, &primary);
		if (ret) {
			snprintf(err, errlen, "cannot read the epoch from shared disk %s: %s",
				 cfg->shared_disk, strerror(-ret));
			goto fail;
		}
		if ((primary == cfg->node_id) != (cfg->role == FT_ROLE_PRIMARY))
			ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch },
			       "configured as %s but the shared disk names node %u primary of epoch %llu",
			       ft_role_name(cfg->role), primary, (unsigned long long)n->epoch);
		ret = check_returning(n, err, errlen);
		if (ret)
			goto fail;
		ret = ft_ballot_new(ev, cfg->shared_disk, cfg->node_id, 5000000, on_arb_done, n, &n->arb);
		if (ret) {
			snprintf(err, errlen, "arbitration: %s", strerror(-ret));
			goto fail;
		}
	}
	protecting = n->sm.role == FT_ROLE_PRIMARY || n->sm.role == FT_ROLE_BACKUP;
	ret = ft_psk_load(cfg->key_file, cc->psk, err, errlen);
	if (ret)
		goto fail;
	cc->node_id = cfg->node_id;
	/* a returning node asks to be seeded: it listens, the live node dials */
	asking = n->sy.step == SY_ASKING;
	cc->hello_flags = asking ? FT_HELLO_SEED_REQUEST : 0;
	cc->sender = cfg->role == FT_ROLE_PRIMARY && !asking;
	cc->peer = cfg->peer;
	cc->peer_len = cfg->peer_len;
	cc->max_unacked_records = cfg->max_lag_records;
	cc->max_unacked_bytes = cfg->max_lag_bytes;
	cc->heartbeat_us = cfg->heartbeat_us;
	/*
	 * The dialer retries at least 8 times per peer_timeout (50 ms..2 s): a
	 * peer that is back (a restart, the new backup after a planned swap) gets
	 * its session long before the detector would call it dead.
	 */
	cc->backoff_max_us = cfg->peer_timeout_us / 8;
	if (cc->backoff_max_us < 50000)
		cc->backoff_max_us = 50000;
	if (cc->backoff_max_us > 2000000)
		cc->backoff_max_us = 2000000;
	if (!cc->sender && (protecting || asking)) {
		cc->listen_fd = listen_on(cfg, err, errlen);
		if (cc->listen_fd < 0) {
			ret = cc->listen_fd;
			goto fail;
		}
	}
	if (!cfg->ring[0]) {
		static const struct ft_vmm_ops vops = {
			.hello = vmm_hello, .attached = vmm_attached, .emitted = vmm_emitted, .lost = vmm_lost,
			.paused = vmm_paused, .snapshot_ready = vmm_snapshot_ready,
		};

		ret = ft_vmm_new(ev, cfg->vmm_socket, cfg->vmm_file_rings, &vops, n, &n->vmm, err, errlen);
		if (ret)
			goto fail;
	} else if (protecting) {
		ret = open_ring(n, err, errlen);
		if (ret)
			goto fail;
	}
	if (protecting || asking) {
		ret = start_channel(n, err, errlen);
		cc->hello_flags = 0;
		if (ret)
			goto fail;
	}
	ret = sd_event_add_time(ev, &n->detect, CLOCK_MONOTONIC, ft_now_us() + cfg->heartbeat_us, 1000,
				on_detect, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->detect, SD_EVENT_ON);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &n->ballot, CLOCK_MONOTONIC, 0, 1000, on_ballot, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->ballot, SD_EVENT_OFF);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &n->go_live_timer, CLOCK_MONOTONIC, 0, 500, on_go_live, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->go_live_timer, SD_EVENT_OFF);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &n->fo_timer, CLOCK_MONOTONIC, 0, 500, on_fo_tick, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->fo_timer, SD_EVENT_OFF);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &n->sy_timer, CLOCK_MONOTONIC, 0, 500, on_sy_tick, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->sy_timer, SD_EVENT_OFF);
	if (ret >= 0)
		ret = sd_event_add_defer(ev, &n->vm_lost_defer, on_vm_lost, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->vm_lost_defer, SD_EVENT_OFF);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &n->sample, CLOCK_MONOTONIC, ft_now_us() + 1000000, 10000,
					on_sample, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->sample, SD_EVENT_ON);
	if (ret < 0) {
		snprintf(err, errlen, "sd-event: %s", strerror(-ret));
		goto fail;
	}
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch, .role = ft_role_name(n->sm.role) },
	       "node %u started as %s, %s %s, heartbeat %llu ms, peer timeout %llu ms%s%s",
	       cfg->node_id, ft_role_name(n->sm.role), cc->sender ? "dialing" : "listening on",
	       cc->sender ? cfg->peer_str : cfg->listen_str,
	       (unsigned long long)cfg->heartbeat_us / 1000, (unsigned long long)cfg->peer_timeout_us / 1000,
	       n->vmm ? "; waiting for the VMM on " : "", n->vmm ? cfg->vmm_socket : "");
	*out = n;
	return 0;
fail:
	ft_node_free(n);
	return ret;
}

void ft_node_free(struct ft_node *n)
{
	if (!n)
		return;
	ft_log_set_sink(NULL, NULL);
	ft_chan_free(n->chan);
	ft_vmm_free(n->vmm);
	ft_ballot_free(n->arb);
	sd_event_source_disable_unref(n->go_live_timer);
	sd_event_source_disable_unref(n->vm_lost_defer);
	sd_event_source_disable_unref(n->fo_timer);
	sd_event_source_disable_unref(n->sy_timer);
	ft_sync_tx_close(&n->sy.tx);
	ft_sync_rx_close(&n->sy.rx);
	if (n->sy.snap_fd >= 0)
		close(n->sy.snap_fd);
	if (n->sy.seed_fd >= 0)
		close(n->sy.seed_fd);
	if (n->cc.listen_fd >= 0)
		close(n->cc.listen_fd);
	sodium_memzero(n->cc.psk, sizeof(n->cc.psk));
	sd_event_source_disable_unref(n->detect);
	sd_event_source_disable_unref(n->ballot);
	sd_event_source_disable_unref(n->sample);
	if (n->ring.map_cons)
		ft_ring_unmap(&n->ring);
	if (n->ring_fd >= 0)
		close(n->ring_fd);
	sd_event_unref(n->ev);
	free(n);
}

/*
 * The attached VM, read from the ring's own control pages: ring_seq is the
 * last record in the ring, ring_consumed the last one its consumer released
 * (primary: acked by the backup; backup: replayed by the module).
 */
static void vm_status(struct ft_node *n, FILE *o)
{
	static const char *const modes[] = { "none", "record", "replay", "live" };
	uint64_t seq = 0, done = 0, peer_emitted = n->peer_emitted;
	uint32_t err = 0;

	if (n->ring.prod) {
		seq = __atomic_load_n(&n->ring.prod->next_seq, __ATOMIC_ACQUIRE) - 1;
		done = n->ring.cons->acked_seq;
		err = n->ring.prod->error;
	} else if (n->ring.rstat) {
		seq = n->ring.wseq - 1;
		done = __atomic_load_n(&n->ring.rstat->next_seq, __ATOMIC_ACQUIRE) - 1;
		err = n->ring.rstat->error;
	}
	if (n->chan) {
		struct ft_chan_stats st;

		ft_chan_get_stats(n->chan, &st);
		peer_emitted = st.peer_emitted_seq;
	}
	fprintf(o, "vmm=%s\nvm_name=%s\n", n->vmm ? ft_vmm_state_name(ft_vmm_state(n->vmm)) : "off",
		ft_vmm_name(n->vmm));
	fprintf(o, "vm_mode=%s\nvm_ring=%s\n", modes[n->vm_mode <= 3 ? n->vm_mode : 0],
		!n->ring.map_cons ? "none" : !n->vmm ? "file" : n->vm_file ? "vmm-file" : "ft-fd");
	fprintf(o, "ring_seq=%llu\nring_consumed=%llu\nring_lag=%llu\nring_error=%u\n",
		(unsigned long long)seq, (unsigned long long)done,
		(unsigned long long)(seq > done ? seq - done : 0), err);
	fprintf(o, "vmm_acked_seq=%llu\nemitted_seq=%llu\npeer_emitted_seq=%llu\n",
		(unsigned long long)ft_vmm_acked_sent(n->vmm), (unsigned long long)ft_vmm_emitted(n->vmm),
		(unsigned long long)peer_emitted);
	fprintf(o, "go_live=%s\nvmm_refused=%llu\n", go_live_names[n->go_live],
		(unsigned long long)ft_vmm_refused(n->vmm));
	if (n->halt_why[0])
		fprintf(o, "halt_reason=%s\n", n->halt_why);
}

/* Re-protection: the step, bytes moved of the total, what it waits for, the last result. */
static void sy_status(struct ft_node *n, FILE *o, uint64_t now)
{
	const struct ft_sy *sy = &n->sy;
	uint64_t moved = sy->step >= SY_ASKING ? sy->rx.got : sy->sent;

	if (n->chan && sy->step >= SY_SNAPSHOT && sy->step <= SY_SEEDING) {
		struct ft_chan_stats st;

		ft_chan_get_stats(n->chan, &st);
		moved = st.snap_sent;
	}
	if (sy->step >= SY_SEED && sy->step <= SY_SEEDED)
		moved = sy->total;
	fprintf(o, "sync=%s\n", sy_step_names[sy->step]);
	if (sy->step != SY_IDLE && sy->step != SY_GAVE_UP) {
		fprintf(o, "sync_bytes=%llu\nsync_total=%llu\nsync_waiting_for=%s\n", (unsigned long long)moved,
			(unsigned long long)sy->total, sy_waits[sy->step]);
		if (sy->t0_us && sy->step != SY_ASKING)
			fprintf(o, "sync_elapsed_ms=%llu\n", (unsigned long long)(now - sy->t0_us) / 1000);
	}
	fprintf(o, "sync_attempts=%llu\nsync_done=%llu\n", (unsigned long long)sy->attempts,
		(unsigned long long)sy->done);
	if (sy->done)
		fprintf(o, "sync_last=%s\nsync_last_ms=%llu\nsync_last_bytes=%llu\n", sy->last,
			(unsigned long long)sy->last_ms, (unsigned long long)sy->last_bytes);
}

void ft_node_status(struct ft_node *n, FILE *o)
{
	struct ft_chan_stats st = { 0 };
	uint64_t now = ft_now_us();

	if (n->chan)
		ft_chan_get_stats(n->chan, &st);
	fprintf(o, "node_id=%u\nrole=%s\n", n->cfg.node_id, ft_role_name(n->sm.role));
	if (n->sm.role == FT_ROLE_ARBITRATING || n->sm.role == FT_ROLE_HANDOVER)
		fprintf(o, "role_before=%s\n", ft_role_name(n->sm.from));
	fprintf(o, "epoch=%llu\npeer=%s\n", (unsigned long long)n->epoch, n->cfg.peer_str);
	fprintf(o, "peer_node=%u\nchannel=%s\n", 3 - n->cfg.node_id,
		n->chan ? ft_chan_state_name(st.state) : "closed");
	fprintf(o, "peer_state=%s\n", n->peer_dead ? "dead" : !n->peer_seen ? "never-seen" : "alive");
	if (n->peer_dead)
		fprintf(o, "peer_dead_ms=%llu\n", (unsigned long long)(now - n->dead_at_us) / 1000);
	if (st.last_rx_us)
		fprintf(o, "heartbeat_age_ms=%llu\n", (unsigned long long)(now - st.last_rx_us) / 1000);
	fprintf(o, "heartbeat_interval_ms=%llu\npeer_timeout_ms=%llu\n",
		(unsigned long long)n->cfg.heartbeat_us / 1000,
		(unsigned long long)n->cfg.peer_timeout_us / 1000);
	fprintf(o, "max_heartbeat_gap_ms=%llu\n", (unsigned long long)st.max_rx_gap_us / 1000);
	fprintf(o, "log_seq=%llu\nacked_seq=%llu\n", (unsigned long long)st.head_seq,
		(unsigned long long)st.acked_seq);
	fprintf(o, "lag_records=%llu\nlag_bytes=%llu\nlag_ms=%llu\n",
		(unsigned long long)st.unacked_records, (unsigned long long)st.unacked_bytes,
		(unsigned long long)st.lag_us / 1000);
	fprintf(o, "max_lag_records=%u\nmax_lag_bytes=%llu\n", n->cfg.max_lag_records,
		(unsigned long long)n->cfg.max_lag_bytes);
	fprintf(o, "bandwidth_bytes_per_s=%llu\nbandwidth_records_per_s=%llu\n",
		(unsigned long long)n->bw_Bps, (unsigned long long)n->bw_rps);
	fprintf(o, "ack_rtt_us=%llu\nheartbeat_rtt_us=%llu\n", (unsigned long long)st.ack_rtt_us,
		(unsigned long long)st.hb_rtt_us);
	fprintf(o, "sessions=%llu\nrejects=%llu\n", (unsigned long long)st.sessions,
		(unsigned long long)st.rejects);
	if (st.last_reject[0])
		fprintf(o, "last_reject=%s\n", st.last_reject);
	if (st.stalled)
		fprintf(o, "stalled=replay-ring-full\n");
	fprintf(o, "window_full=%llu\nreplay_ring_full=%llu\nduplicates=%llu\n",
		(unsigned long long)st.window_full, (unsigned long long)st.ring_full,
		(unsigned long long)st.duplicates);
	fprintf(o, "arbitration=%s\narbitration_attempts=%llu\n", n->arb_state,
		(unsigned long long)n->arb_attempts);
	fprintf(o, "shared_disk=%s\nring=%s\n", n->cfg.shared_disk[0] ? n->cfg.shared_disk : "none",
		n->cfg.ring[0] ? n->cfg.ring : "vm");
	vm_status(n, o);
	fprintf(o, "failover=%s\n", fo_step_names[n->fo.step]);
	if (n->fo.step != FO_IDLE)
		fprintf(o, "failover_seq=%llu\nfailover_elapsed_ms=%llu\n", (unsigned long long)n->fo.seq,
			(unsigned long long)(now - n->fo.t0_us) / 1000);
	fprintf(o, "failover_attempts=%llu\nfailover_done=%llu\n", (unsigned long long)n->fo.attempts,
		(unsigned long long)n->fo.done);
	if (n->fo.done)
		fprintf(o, "failover_last=%s\nfailover_last_ms=%llu\nfailover_last_seq=%llu\n"
			"failover_last_epoch=%llu\n", n->fo.last, (unsigned long long)n->fo.last_ms,
			(unsigned long long)n->fo.last_seq, (unsigned long long)n->fo.last_epoch);
	sy_status(n, o, now);
	fprintf(o, "uptime_s=%llu\n", (unsigned long long)(now - n->started_us) / 1000000);
}

const char *ft_node_status_line(struct ft_node *n, char *buf, size_t len)
{
	struct ft_chan_stats st = { 0 };

	if (n->chan)
		ft_chan_get_stats(n->chan, &st);
	char vm[120] = "";

	if (n->vmm)
		snprintf(vm, sizeof(vm), "; vm %s %s%s%s", ft_vmm_name(n->vmm)[0] ? ft_vmm_name(n->vmm) : "-",
			 ft_vmm_state_name(ft_vmm_state(n->vmm)), n->go_live ? ", go-live " : "",
			 n->go_live ? go_live_names[n->go_live] : "");
	snprintf(buf, len, "%s, epoch %llu; peer %s %s; log %llu, acked %llu (lag %llu records, %llu ms)%s%s%s",
		 ft_role_name(n->sm.role), (unsigned long long)n->epoch, n->cfg.peer_str,
		 n->peer_dead ? "DEAD" : !n->peer_seen ? "not seen yet" :
		 st.state == FT_CHAN_UP ? "up" : "reconnecting",
		 (unsigned long long)st.head_seq, (unsigned long long)st.acked_seq,
		 (unsigned long long)st.unacked_records, (unsigned long long)st.lag_us / 1000,
		 n->sm.role == FT_ROLE_ARBITRATING ? "; arbitration: " : "",
		 n->sm.role == FT_ROLE_ARBITRATING ? n->arb_state : "", vm);
	return buf;
}
