// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "ballot.h"
#include "log.h"
#include "node.h"

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
	uint64_t started_us, dead_at_us, stalled_at_us;
	const char *arb_state;
	bool arb_note_logged;
	uint64_t arb_attempts;
	/* bandwidth, sampled once a second */
	uint64_t bw_t, bw_bytes, bw_recs, bw_Bps, bw_rps;
	struct ft_event events[FT_NODE_EVENTS];
	uint64_t ev_next;
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

static void on_arb_done(void *ctx, int ret, unsigned int winner)
{
	struct ft_node *n = ctx;
	static char state[160];
	struct ft_log_fields f = { .epoch = n->epoch, .role = ft_role_name(n->sm.role) };

	if (!ret) {
		snprintf(state, sizeof(state), "%s epoch %llu (winner node %u)",
			 winner == n->cfg.node_id ? "won" : "lost", (unsigned long long)n->epoch, winner);
		n->arb_state = state;
		f.reason = winner == n->cfg.node_id ? "arb-won" : "arb-lost";
		ft_log(LOG_NOTICE, &f, "arbitration: node %u decided for epoch %llu: %s", winner,
		       (unsigned long long)n->epoch, winner == n->cfg.node_id ? "going live" : "halting");
		apply(n, winner == n->cfg.node_id ? FT_EV_ARB_WON : FT_EV_ARB_LOST);
		return;
	}
	if (ret == -ESTALE) {
		snprintf(state, sizeof(state), "fenced: the shared disk is past epoch %llu",
			 (unsigned long long)n->epoch);
		n->arb_state = state;
		f.reason = "stale-epoch";
		f.err = ESTALE;
		ft_log(LOG_WARNING, &f, "arbitration: %s; halting", state);
		apply(n, FT_EV_STALE_EPOCH);
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
	if (act & FT_ACT_GO_LIVE) {
		/*
		 * Live alone in this epoch. The channel closes: no log is taken
		 * from, or sent to, the other node until re-protection (not yet
		 * implemented) seeds it under a new epoch.
		 */
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .epoch = n->epoch, .role = "live-alone" },
		       "LIVE alone in epoch %llu; log channel closed", (unsigned long long)n->epoch);
		ft_chan_free(n->chan);
		n->chan = NULL;
	}
	if (act & FT_ACT_HALT) {
		/* Emit nothing more. */
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = n->epoch, .role = "halted" },
		       "HALTED in epoch %llu: this node must not run the VM", (unsigned long long)n->epoch);
		ft_chan_free(n->chan);
		n->chan = NULL;
	}
	changed(n);
}

/* Fires at last_rx + peer_timeout; re-arms itself while traffic flows. */
static int on_detect(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_node *n = ud;
	struct ft_chan_stats st;
	uint64_t now = ft_now_us(), deadline;

	(void)usec;
	if (!n->chan)
		return 0;
	ft_chan_get_stats(n->chan, &st);
	/*
	 * While our own replay ring is full we stop reading the socket, so the
	 * peer's frames wait unread in it: that silence is ours, not the
	 * peer's. Detection pauses; promotion could not finish before the
	 * replay drained anyway.
	 */
	if (st.stalled)
		n->stalled_at_us = now;
	deadline = (st.last_rx_us > n->stalled_at_us ? st.last_rx_us : n->stalled_at_us) +
		   n->cfg.peer_timeout_us;
	if (n->peer_seen && !n->peer_dead && now >= deadline) {
		n->peer_dead = true;
		n->dead_at_us = now;
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = n->epoch,
							     .reason = "peer-timeout",
							     .role = ft_role_name(n->sm.role) },
		       "peer node %u declared dead: no heartbeat, log or ack for %llu ms (timeout %llu ms)",
		       3 - n->cfg.node_id,
		       (unsigned long long)(now - (st.last_rx_us > n->stalled_at_us ? st.last_rx_us :
						   n->stalled_at_us)) / 1000,
		       (unsigned long long)n->cfg.peer_timeout_us / 1000);
		apply(n, FT_EV_PEER_DEAD);
	}
	if (!n->peer_seen || n->peer_dead || now >= deadline)
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
	}
	changed(n);
}

static void chan_epoch(void *ctx, uint64_t peer_epoch)
{
	struct ft_node *n = ctx;

	/* A hint only: the shared disk, not the peer, says which epoch is current. */
	ft_log(LOG_WARNING, &(struct ft_log_fields){ .peer = n->cfg.peer_str, .epoch = peer_epoch,
						     .reason = "peer-epoch-ahead" },
	       "peer is at epoch %llu, this node at %llu: the shared disk decides",
	       (unsigned long long)peer_epoch, (unsigned long long)n->epoch);
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

int ft_node_new(sd_event *ev, const struct ft_config *cfg, const struct ft_node_ops *ops,
		void *ctx, struct ft_node **out, char *err, size_t errlen)
{
	struct ft_node *n = calloc(1, sizeof(*n));
	struct ft_chan_cfg cc = { 0 };
	static const struct ft_chan_ops cops = { .state = chan_state, .epoch_mismatch = chan_epoch };
	int ret;

	if (!n)
		return -ENOMEM;
	n->ev = sd_event_ref(ev);
	n->cfg = *cfg;
	if (ops)
		n->ops = *ops;
	n->ctx = ctx;
	n->ring_fd = -1;
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
		ret = ft_ballot_new(ev, cfg->shared_disk, cfg->node_id, 5000000, on_arb_done, n, &n->arb);
		if (ret) {
			snprintf(err, errlen, "arbitration: %s", strerror(-ret));
			goto fail;
		}
	}
	ret = ft_psk_load(cfg->key_file, cc.psk, err, errlen);
	if (!ret)
		ret = open_ring(n, err, errlen);
	if (ret)
		goto fail;
	cc.node_id = cfg->node_id;
	cc.epoch = n->epoch;
	cc.sender = cfg->role == FT_ROLE_PRIMARY;
	cc.peer = cfg->peer;
	cc.peer_len = cfg->peer_len;
	cc.listen_fd = -1;
	cc.ring = &n->ring;
	cc.max_unacked_records = cfg->max_lag_records;
	cc.max_unacked_bytes = cfg->max_lag_bytes;
	cc.heartbeat_us = cfg->heartbeat_us;
	cc.role = cfg->role;
	if (!cc.sender) {
		cc.listen_fd = listen_on(cfg, err, errlen);
		if (cc.listen_fd < 0) {
			ret = cc.listen_fd;
			goto fail;
		}
	}
	ret = ft_chan_new(ev, &cc, &cops, n, &n->chan);
	sodium_memzero(cc.psk, sizeof(cc.psk));
	if (ret) {
		snprintf(err, errlen, "cannot start the channel: %s", strerror(-ret));
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
		ret = sd_event_add_time(ev, &n->sample, CLOCK_MONOTONIC, ft_now_us() + 1000000, 10000,
					on_sample, n);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(n->sample, SD_EVENT_ON);
	if (ret < 0) {
		snprintf(err, errlen, "sd-event: %s", strerror(-ret));
		goto fail;
	}
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = n->epoch, .role = ft_role_name(n->sm.role) },
	       "node %u started as %s, %s %s, heartbeat %llu ms, peer timeout %llu ms",
	       cfg->node_id, ft_role_name(n->sm.role), cc.sender ? "dialing" : "listening on",
	       cc.sender ? cfg->peer_str : cfg->listen_str,
	       (unsigned long long)cfg->heartbeat_us / 1000, (unsigned long long)cfg->peer_timeout_us / 1000);
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
	ft_ballot_free(n->arb);
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

int ft_node_failover(struct ft_node *n, char *msg, size_t len)
{
	unsigned int act;
	int ret = ft_role_step(&n->sm, FT_EV_FAILOVER, &act);

	if (ret == -EOPNOTSUPP)
		snprintf(msg, len, "planned failover needs replay on the backup, which is not "
			 "implemented yet (the backup can store the log but not execute it)");
	else if (ret)
		snprintf(msg, len, "no planned failover from role %s", ft_role_name(n->sm.role));
	return ret;
}

void ft_node_status(struct ft_node *n, FILE *o)
{
	struct ft_chan_stats st = { 0 };
	uint64_t now = ft_now_us();

	if (n->chan)
		ft_chan_get_stats(n->chan, &st);
	fprintf(o, "node_id=%u\nrole=%s\n", n->cfg.node_id, ft_role_name(n->sm.role));
	if (n->sm.role == FT_ROLE_ARBITRATING)
		fprintf(o, "role_before=%s\n", ft_role_name(n->sm.from));
	fprintf(o, "epoch=%llu\npeer=%s\n", (unsigned long long)n->epoch, n->cfg.peer_str);
	fprintf(o, "peer_node=%u\nchannel=%s\n", 3 - n->cfg.node_id,
		n->chan ? ft_chan_state_name(st.state) : "closed");
	fprintf(o, "peer_state=%s\n", !n->peer_seen ? "never-seen" : n->peer_dead ? "dead" : "alive");
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
		n->cfg.ring);
	fprintf(o, "uptime_s=%llu\n", (unsigned long long)(now - n->started_us) / 1000000);
}

const char *ft_node_status_line(struct ft_node *n, char *buf, size_t len)
{
	struct ft_chan_stats st = { 0 };

	if (n->chan)
		ft_chan_get_stats(n->chan, &st);
	snprintf(buf, len, "%s, epoch %llu; peer %s %s; log %llu, acked %llu (lag %llu records, %llu ms)%s%s",
		 ft_role_name(n->sm.role), (unsigned long long)n->epoch, n->cfg.peer_str,
		 !n->peer_seen ? "not seen yet" : n->peer_dead ? "DEAD" :
		 st.state == FT_CHAN_UP ? "up" : "reconnecting",
		 (unsigned long long)st.head_seq, (unsigned long long)st.acked_seq,
		 (unsigned long long)st.unacked_records, (unsigned long long)st.lag_us / 1000,
		 n->sm.role == FT_ROLE_ARBITRATING ? "; arbitration: " : "",
		 n->sm.role == FT_ROLE_ARBITRATING ? n->arb_state : "");
	return buf;
}
