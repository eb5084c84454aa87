// SPDX-License-Identifier: GPL-2.0
/* The logging channel: see channel.h for the protocol and its guarantees. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "channel.h"
#include "log.h"
#include "channel_int.h"

static int on_conn_io(sd_event_source *s, int fd, uint32_t ev, void *ud);

uint64_t ft_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

const char *ft_chan_state_name(enum ft_chan_state st)
{
	return st == FT_CHAN_UP ? "up" : st == FT_CHAN_CONNECTING ? "connecting" : "down";
}

void chan_set_state(struct ft_chan *c, enum ft_chan_state st)
{
	if (c->st.state == st)
		return;
	c->st.state = st;
	if (c->ops.state)
		c->ops.state(c->ctx, st);
}

static void conn_free(struct conn *k)
{
	sd_event_source_disable_unref(k->io);
	if (k->fd >= 0)
		close(k->fd);
	sodium_memzero(&k->k, sizeof(k->k));
	free(k->rbuf);
	free(k->wbuf);
	free(k);
}

static void schedule_redial(struct ft_chan *c)
{
	uint64_t d = c->backoff_us / 2 + randombytes_uniform((uint32_t)(c->backoff_us / 2 + 1));

	c->backoff_us *= 2;
	if (c->backoff_us > c->cfg.backoff_max_us)
		c->backoff_us = c->cfg.backoff_max_us;
	sd_event_source_set_time(c->redial_timer, ft_now_us() + d);
	sd_event_source_set_enabled(c->redial_timer, SD_EVENT_ONESHOT);
}

/* End a connection. The session's state is kept in the channel, not in k. */
void chan_drop(struct conn *k)
{
	struct ft_chan *c = k->c;

	for (int i = 0; i < MAX_PENDING; i++)
		if (c->pend[i] == k)
			c->pend[i] = NULL;
	if (c->up == k) {
		c->up = NULL;
		c->synced = false;
		c->snap = NULL;	/* a snapshot goes in one session or not at all */
		c->ack_pending = false;
		c->st.peer[0] = 0;
	}
	conn_free(k);
	if (!c->up) {
		bool busy = false;

		for (int i = 0; i < MAX_PENDING; i++)
			busy |= c->pend[i] != NULL;
		chan_set_state(c, busy ? FT_CHAN_CONNECTING : FT_CHAN_DOWN);
	}
	if (c->cfg.sender && !c->up && !c->pend[0])
		schedule_redial(c);
}

/*
 * The peer ended the connection: EOF, or a reset (ECONNRESET, or EPIPE when
 * sending after it). Nothing was refused, so it is no reject: one log line,
 * then the session ends (the sender redials). Always returns -1.
 */
int chan_peer_closed(struct conn *k, int err)
{
	if (!k->session)
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = k->peer, .err = err,
							   .reason = "handshake-aborted" },
		       "channel: peer closed the connection during the handshake%s%s",
		       err ? ": " : "", err ? strerror(err) : "");
	else
		ft_log(LOG_INFO, &(struct ft_log_fields){ .peer = k->peer, .err = err },
		       "channel: peer closed the connection%s%s", err ? ": " : "", err ? strerror(err) : "");
	chan_drop(k);
	return -1;
}

/* Refuse what k sent: one log line, then the session ends. Always returns -1. */
__attribute__((format(printf, 5, 6)))
int chan_reject(struct conn *k, const char *reason, int err, uint64_t epoch, const char *fmt, ...)
{
	struct ft_chan *c = k->c;
	struct ft_log_fields f = { .peer = k->peer, .epoch = epoch, .err = err, .reason = reason };
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->st.rejects++;
	snprintf(c->st.last_reject, sizeof(c->st.last_reject), "%s", reason);
	ft_log(LOG_WARNING, &f, "channel: %s; session closed", msg);
	chan_drop(k);
	return -1;
}

static struct conn *conn_new(struct ft_chan *c, int fd, bool client, const struct sockaddr *sa)
{
	struct conn *k = calloc(1, sizeof(*k));
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0, one = 1;

	if (!k)
		return NULL;
	k->c = c;
	k->fd = fd;
	k->client = client;
	k->started_us = ft_now_us();
	k->max_rx = c->cfg.sender ? SENDER_MAX_RX : FT_FRAME_MAX;
	k->rcap = k->max_rx + 65536;
	k->wcap = c->cfg.sender ? 2 * (size_t)c->cfg.max_frame : 65536;
	k->rbuf = malloc(k->rcap);
	k->wbuf = malloc(k->wcap);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(k->peer, sizeof(k->peer), "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(k->peer, sizeof(k->peer), "[%s]:%d", host, port);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!k->rbuf || !k->wbuf ||
	    sd_event_add_io(c->ev, &k->io, fd, client ? EPOLLOUT : EPOLLIN, on_conn_io, k) < 0) {
		conn_free(k);
		return NULL;
	}
	return k;
}

/* ---- building frames ---- */

static struct ft_frame_hdr *put_hdr(struct conn *k, unsigned int type, size_t plen)
{
	struct ft_frame_hdr *h = (struct ft_frame_hdr *)(k->wbuf + k->wlen);
	bool sealed = type >= FT_F_LOG;

	memset(h, 0, sizeof(*h));
	h->magic = FT_FRAME_MAGIC;
	h->len = (uint32_t)(sizeof(*h) + plen + (sealed ? FT_FRAME_TAG : 0));
	h->type = (uint16_t)type;
	h->epoch = k->c->cfg.epoch;
	if (sealed)
		h->counter = ++k->txctr;
	return h;
}

static void put_clear(struct conn *k, unsigned int type, const void *p, size_t plen)
{
	struct ft_frame_hdr *h = put_hdr(k, type, plen);

	memcpy(h + 1, p, plen);
	ft_seal_clear((uint8_t *)h);
	k->wlen += h->len;
}

static void put_sealed(struct conn *k, unsigned int type, uint64_t first_seq, uint32_t count,
		       const void *p, size_t plen)
{
	struct ft_frame_hdr *h = put_hdr(k, type, plen);

	h->first_seq = first_seq;
	h->count = count;
	ft_seal(k->txkey, (uint8_t *)h, p, plen);
	k->wlen += h->len;
	k->c->st.tx_frames++;
}

/* Sender: one LOG frame of records contiguous in the ring. 1 built, 0 none, -1 dropped. */
static int build_log(struct conn *k)
{
	struct ft_chan *c = k->c;
	struct ft_ring *r = c->cfg.ring;
	struct ft_ring_cursor cur = c->sent, save;
	const struct kvm_ft_rec *rec;
	const uint8_t *first = NULL;
	uint64_t recs = c->sent.seq - 1 - c->st.acked_seq;
	uint64_t bytes = c->sent.pos - r->tail.pos;
	size_t room = k->wcap - k->wlen, total = 0, limit;
	uint32_t len, count = 0;
	bool window;
	int ret;

	if (room < sizeof(struct ft_frame_hdr) + FT_FRAME_TAG + KVM_FT_RING_RESERVE)
		return 0;
	limit = room - sizeof(struct ft_frame_hdr) - FT_FRAME_TAG;
	if (limit > c->cfg.max_frame - sizeof(struct ft_frame_hdr) - FT_FRAME_TAG)
		limit = c->cfg.max_frame - sizeof(struct ft_frame_hdr) - FT_FRAME_TAG;
	window = c->ihead - c->itail >= INFLIGHT ||
		 recs >= c->cfg.max_unacked_records || bytes >= c->cfg.max_unacked_bytes;

	for (; !window;) {
		save = cur;
		ret = ft_ring_next(r, &cur, &rec, &len);
		if (ret < 0) {
			struct ft_log_fields f = { .err = EBADMSG, .reason = "bad-ring" };

			if (c->ring_bad)
				return 0;
			c->ring_bad = true;
			ft_log(LOG_ERR, &f, "log ring: %s at position %llu: not sending past it",
			       r->why, (unsigned long long)save.pos);
			c->st.rejects++;
			snprintf(c->st.last_reject, sizeof(c->st.last_reject), "bad-ring");
			return 0;
		}
		if (ret == 0)
			break;
		if (recs + count + 1 > c->cfg.max_unacked_records ||
		    cur.pos - r->tail.pos > c->cfg.max_unacked_bytes)
			window = true;	/* the next record does not fit in the window */
		if (window || (first && (const uint8_t *)rec != first + total) || total + len > limit) {
			cur = save;
			break;
		}
		if (!first)
			first = (const uint8_t *)rec;
		total += len;
		count++;
	}
	if (!count) {
		if (window && !c->window_was_full)
			c->st.window_full++;
		c->window_was_full = window;
		return 0;
	}
	c->window_was_full = false;
	put_sealed(k, FT_F_LOG, c->sent.seq, count, first, total);
	c->sent = cur;
	if (cur.seq > c->hw.seq)
		c->hw = cur;
	c->infl[c->ihead++ % INFLIGHT] = (struct inflight){ cur.seq - 1, ft_now_us() };
	c->st.records += count;
	c->st.record_bytes += total;
	return 1;
}

/*
 * Sender, in a seed session: the next SNAP chunk of the snapshot, or
 * SNAP_END after the last one. Paced by the room in the write buffer (TCP)
 * and the rate. 1 built, 0 none.
 */
static int build_snap(struct conn *k)
{
	struct ft_chan *c = k->c;
	struct ft_sync_tx *t = c->snap;
	size_t over = sizeof(struct ft_frame_hdr) + FT_FRAME_TAG, room = k->wcap - k->wlen, max;
	struct ft_frame_hdr *h;
	const uint8_t *data;
	uint64_t off;

	if (c->st.snap_end_sent)
		return 0;
	if (t->sent == t->len) {
		struct ft_snap_end e = { .total = t->len };

		if (room < over + sizeof(e))
			return 0;
		memcpy(e.hash, t->hash, sizeof(e.hash));
		put_sealed(k, FT_F_SNAP_END, t->len, 0, &e, sizeof(e));
		c->st.snap_end_sent = true;
		return 1;
	}
	if (c->snap_rate && t->sent >= (ft_now_us() - c->snap_t0) * c->snap_rate / 1000000)
		return 0;	/* ahead of the rate: the ring poll timer comes back */
	over += sizeof(struct ft_snap);
	max = c->cfg.max_frame < room ? c->cfg.max_frame : room;
	if (max < over + 4096)
		return 0;
	max -= over;
	if (c->snap_rate && max > c->snap_rate / 50 + 4096)
		max = c->snap_rate / 50 + 4096;	/* about 50 frames a second when paced */
	max = ft_sync_tx_next(t, max, &off, &data);
	h = put_hdr(k, FT_F_SNAP, sizeof(struct ft_snap) + max);
	h->first_seq = off;
	memcpy(h + 1, &(struct ft_snap){ .total = t->len }, sizeof(struct ft_snap));
	memcpy((uint8_t *)(h + 1) + sizeof(struct ft_snap), data, max);
	ft_seal(k->txkey, (uint8_t *)h, h + 1, sizeof(struct ft_snap) + max);	/* in place */
	k->wlen += h->len;
	c->st.tx_frames++;
	c->st.snap_sent = t->sent;
	return 1;
}

static void set_events(struct conn *k)
{
	uint32_t ev = 0;

	if (k->dialing)
		ev = EPOLLOUT;
	else {
		if (!k->stalled)
			ev |= EPOLLIN;
		if (k->woff < k->wlen)
			ev |= EPOLLOUT;
	}
	sd_event_source_set_io_events(k->io, ev);
}

int chan_tx_pump(struct conn *k)
{
	struct ft_chan *c = k->c;

	for (;;) {
		while (k->woff < k->wlen) {
			ssize_t n = write(k->fd, k->wbuf + k->woff, k->wlen - k->woff);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				goto out;
			if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
				return chan_peer_closed(k, errno);
			if (n < 0)
				return chan_reject(k, "io-error", errno, c->cfg.epoch, "send failed: %s",
					      strerror(errno));
			k->woff += (size_t)n;
			c->st.tx_bytes += (uint64_t)n;
		}
		k->woff = k->wlen = 0;
		if (!k->session || c->up != k)
			break;
		if (c->ack_pending && c->ack_on && !c->cfg.sender) {
			struct ft_ack a = { c->stored_seq, c->st.record_bytes };

			put_sealed(k, FT_F_ACK, c->stored_seq, 0, &a, sizeof(a));
			c->acked_sent = c->stored_seq;
			c->st.acked_seq = c->stored_seq;
			c->ack_pending = false;
		}
		if (c->hb_pending) {
			struct ft_heartbeat hb = {
				.sent_ns = ft_now_us() * 1000, .echo_ns = c->peer_hb_ns,
				.echo_hold_ns = c->peer_hb_ns ? ft_now_us() * 1000 - c->peer_hb_rx_ns : 0,
				.role = c->cfg.role,
				.head_seq = c->cfg.sender ? c->hw.seq - 1 : c->stored_seq,
				.emitted_seq = c->st.emitted_seq,
				.fo_state = c->st.fo.state, .fo_id = c->st.fo.id,
				.fo_seq = c->st.fo.seq, .fo_epoch = c->st.fo.epoch,
				.sy_state = c->st.sy.state, .sy_epoch = c->st.sy.epoch,
			};

			put_sealed(k, FT_F_HEARTBEAT, 0, 0, &hb, sizeof(hb));
			c->hb_pending = false;
		}
		if (c->cfg.sender && c->synced)
			while (build_log(k) > 0)
				;
		if (c->cfg.sender && c->snap)
			while (build_snap(k) > 0)
				;
		if (!k->wlen)
			break;
	}
out:
	set_events(k);
	return 0;
}

/* ---- handshake ---- */

static void send_hello(struct conn *k, unsigned int type)
{
	k->mine.version = FT_FRAME_VERSION;
	k->mine.node_id = k->c->cfg.node_id;
	k->mine.flags = k->c->cfg.hello_flags;
	put_clear(k, type, &k->mine, sizeof(k->mine));
}

/* Both proofs checked: compare epochs, then the session starts. */
static int epochs_agree(struct conn *k, uint64_t theirs)
{
	struct ft_chan *c = k->c;

	if (theirs == c->cfg.epoch)
		return 0;
	c->st.peer_epoch_seen = theirs;
	if (theirs < c->cfg.epoch)
		return chan_reject(k, "stale-epoch", ESTALE, theirs,
			      "peer node %u offers epoch %llu, ours is %llu", k->theirs.node_id,
			      (unsigned long long)theirs, (unsigned long long)c->cfg.epoch);
	if (c->ops.epoch_mismatch)
		c->ops.epoch_mismatch(c->ctx, theirs);
	return chan_reject(k, "future-epoch", ESTALE, theirs,
		      "peer node %u is at epoch %llu, ours is %llu", k->theirs.node_id,
		      (unsigned long long)theirs, (unsigned long long)c->cfg.epoch);
}

/*
 * Both proofs checked: a session between a node asking to be seeded and one
 * offering a seed (frame.h: enum ft_hello_flags), or a plain one with equal
 * epochs. The asker takes the offerer's epoch for the session.
 */
static int session_agree(struct conn *k, uint64_t theirs)
{
	struct ft_chan *c = k->c;
	uint32_t mine = c->cfg.hello_flags, peer = k->theirs.flags;
	const char *no = NULL;

	if (peer & ~FT_HELLO_FLAGS || k->theirs.reserved)
		return chan_reject(k, "bad-handshake", EPROTO, theirs, "hello flags %#x", peer);
	if (!mine && !peer)
		return epochs_agree(k, theirs);
	if (peer & FT_HELLO_SEED_REQUEST && !(mine & FT_HELLO_SEED_OFFER))
		no = "it asks to be seeded; this node offers no seed (it is not live alone with a VM)";
	else if (peer & FT_HELLO_SEED_OFFER && !(mine & FT_HELLO_SEED_REQUEST))
		no = "it offers a seed; this node does not ask for one";
	else if (mine & FT_HELLO_SEED_REQUEST && !(peer & FT_HELLO_SEED_OFFER))
		no = "this node asks to be seeded; the peer offers no seed (it is not live alone with a VM)";
	else if (mine & FT_HELLO_SEED_OFFER && !(peer & FT_HELLO_SEED_REQUEST))
		no = "this node offers a seed; the peer does not ask for one";
	if (no)
		return chan_reject(k, "seed-refused", EPERM, theirs, "peer node %u at epoch %llu: %s",
				   k->theirs.node_id, (unsigned long long)theirs, no);
	if (mine & FT_HELLO_SEED_OFFER)
		return theirs > c->cfg.epoch ? epochs_agree(k, theirs) : 0;
	if (theirs < c->cfg.epoch)
		return epochs_agree(k, theirs);	/* the offerer is the stale one */
	c->cfg.epoch = theirs;
	return 0;
}

static void session_start(struct conn *k)
{
	struct ft_chan *c = k->c;

	for (int i = 0; i < MAX_PENDING; i++)
		if (c->pend[i] == k)
			c->pend[i] = NULL;
	if (c->up) {
		struct ft_log_fields f = { .peer = c->up->peer, .reason = "replaced" };

		ft_log(LOG_NOTICE, &f, "channel: session replaced by a new one from %s", k->peer);
		chan_drop(c->up);
	}
	k->session = true;
	k->txkey = k->client ? k->k.c2s : k->k.s2c;
	k->rxkey = k->client ? k->k.s2c : k->k.c2s;
	c->up = k;
	c->st.sessions++;
	c->st.peer_role = 0;
	c->st.peer_sy = (struct ft_fo_msg){ 0 };	/* a new peer process says its own */
	c->backoff_us = c->cfg.backoff_min_us;
	c->dial_fail_logged = false;
	snprintf(c->st.peer, sizeof(c->st.peer), "%s", k->peer);
	c->st.last_rx_us = ft_now_us();
	c->peer_hb_ns = 0;
	if (!c->cfg.sender) {
		/* Tell the sender where we are: it resumes after this seq. */
		c->ack_pending = c->cfg.ring != NULL;
		chan_set_state(c, FT_CHAN_UP);
	} else if (!c->cfg.ring) {
		/* heartbeats only until the ring is there (ft_chan_set_ring) */
		chan_set_state(c, FT_CHAN_UP);
	}
	ft_log(LOG_INFO, &(struct ft_log_fields){ .peer = k->peer, .epoch = c->cfg.epoch },
	       "channel: authenticated session with node %u", k->theirs.node_id);
}

int chan_handshake(struct conn *k, const struct ft_frame_hdr *h, const uint8_t *p, size_t plen)
{
	struct ft_chan *c = k->c;

	if (h->counter || h->first_seq || h->count)
		return chan_reject(k, "bad-handshake", EPROTO, h->epoch, "malformed handshake frame");
	if (!k->client && h->type == FT_F_HELLO && !k->theirs.version) {
		if (plen != sizeof(struct ft_hello))
			return chan_reject(k, "bad-handshake", EPROTO, h->epoch, "HELLO of %zu bytes", plen);
		memcpy(&k->theirs, p, plen);
		if (k->theirs.version != FT_FRAME_VERSION)
			return chan_reject(k, "bad-version", EPROTO, h->epoch, "protocol version %u, ours is %u",
				      k->theirs.version, FT_FRAME_VERSION);
		ft_nonce_fresh(k->mine.nonce);
		k->mine.version = FT_FRAME_VERSION;
		k->mine.node_id = c->cfg.node_id;
		k->mine.flags = c->cfg.hello_flags;
		ft_session_derive(c->cfg.psk, &k->theirs, h->epoch, &k->mine, c->cfg.epoch, &k->k);
		k->their_epoch = h->epoch;
		memcpy(k->mine.proof, k->k.proof_s, 32);
		send_hello(k, FT_F_HELLO_REPLY);
		return 0;
	}
	if (k->client && h->type == FT_F_HELLO_REPLY && !k->theirs.version) {
		if (plen != sizeof(struct ft_hello))
			return chan_reject(k, "bad-handshake", EPROTO, h->epoch, "HELLO_REPLY of %zu bytes", plen);
		memcpy(&k->theirs, p, plen);
		if (k->theirs.version != FT_FRAME_VERSION)
			return chan_reject(k, "bad-version", EPROTO, h->epoch, "protocol version %u, ours is %u",
				      k->theirs.version, FT_FRAME_VERSION);
		ft_session_derive(c->cfg.psk, &k->mine, c->cfg.epoch, &k->theirs, h->epoch, &k->k);
		if (!ft_proof_equal(k->theirs.proof, k->k.proof_s))
			return chan_reject(k, "auth-failed", EACCES, 0,
				      "peer failed to prove the pre-shared key (wrong key?)");
		/* Prove ourselves even if the epochs differ, so that both sides log why. */
		put_clear(k, FT_F_PROOF, k->k.proof_c, 32);
		if (h->epoch != c->cfg.epoch || k->mine.flags || k->theirs.flags) {
			if (chan_tx_pump(k))
				return -1;
			if (session_agree(k, h->epoch))
				return -1;
		}
		session_start(k);
		return 0;
	}
	if (!k->client && h->type == FT_F_PROOF && k->theirs.version) {
		if (plen != 32)
			return chan_reject(k, "bad-handshake", EPROTO, h->epoch, "PROOF of %zu bytes", plen);
		if (!ft_proof_equal(p, k->k.proof_c))
			return chan_reject(k, "auth-failed", EACCES, 0,
				      "peer failed to prove the pre-shared key (wrong key?)");
		if (session_agree(k, k->their_epoch))
			return -1;
		session_start(k);
		return 0;
	}
	return chan_reject(k, "unexpected-frame", EPROTO, h->epoch, "%s frame during the handshake",
		      ft_frame_type_name(h->type));
}

/* ---- events ---- */

/*
 * The dial never reached the peer (refused, unreachable, or no answer
 * within the handshake timeout): a peer that is down, not a bad frame.
 * Logged once until a session comes up, then retried quietly with backoff.
 */
static int dial_failed(struct conn *k, int err)
{
	struct ft_chan *c = k->c;

	if (!c->dial_fail_logged)
		ft_log(LOG_NOTICE, &(struct ft_log_fields){ .peer = k->peer, .err = err,
							   .reason = "connect-failed" },
		       "channel: cannot connect to the peer: %s (retrying with backoff)",
		       strerror(err));
	c->dial_fail_logged = true;
	chan_drop(k);
	return -1;
}

static int dial_done(struct conn *k)
{
	int err = 0;
	socklen_t l = sizeof(err);

	getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err)
		return dial_failed(k, err);
	k->dialing = false;
	ft_nonce_fresh(k->mine.nonce);
	send_hello(k, FT_F_HELLO);
	return 0;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t ev, void *ud)
{
	struct conn *k = ud;
	int ret = 0;

	(void)s;
	(void)fd;
	if (k->dialing) {
		if (dial_done(k))
			return 0;
	} else if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ret = chan_rx_read(k);
		if (ret < 0)
			return 0;
	}
	chan_tx_pump(k);
	return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t ev, void *ud)
{
	struct ft_chan *c = ud;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int cfd, slot = -1;

	(void)s;
	(void)ev;
	cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0;
	for (int i = 0; i < MAX_PENDING; i++)
		if (!c->pend[i]) {
			slot = i;
			break;
		}
	if (slot < 0) {
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .reason = "too-many-handshakes" },
		       "channel: %d handshakes under way already; connection refused", MAX_PENDING);
		close(cfd);
		return 0;
	}
	c->pend[slot] = conn_new(c, cfd, false, (struct sockaddr *)&ss);
	if (!c->pend[slot]) {
		close(cfd);
		return 0;
	}
	if (!c->up)
		chan_set_state(c, FT_CHAN_CONNECTING);
	return 0;
}

static int on_redial(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_chan *c = ud;
	int fd;

	(void)s;
	(void)usec;
	if (c->up || c->pend[0])
		return 0;
	fd = socket(c->cfg.peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		schedule_redial(c);
		return 0;
	}
	c->pend[0] = conn_new(c, fd, true, (struct sockaddr *)&c->cfg.peer);
	if (!c->pend[0]) {
		close(fd);
		schedule_redial(c);
		return 0;
	}
	c->pend[0]->dialing = true;
	chan_set_state(c, FT_CHAN_CONNECTING);
	if (connect(fd, (struct sockaddr *)&c->cfg.peer, c->cfg.peer_len) < 0 && errno != EINPROGRESS) {
		int e = errno;

		setsockopt(fd, SOL_SOCKET, SO_ERROR, &e, sizeof(e));
		dial_done(c->pend[0]);
	}
	return 0;
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_chan *c = ud;
	uint64_t now = ft_now_us();

	sd_event_source_set_time(s, usec + c->cfg.heartbeat_us);
	for (int i = 0; i < MAX_PENDING; i++) {
		struct conn *k = c->pend[i];

		if (!k || now - k->started_us <= c->cfg.handshake_timeout_us)
			continue;
		if (k->dialing)
			dial_failed(k, ETIMEDOUT);
		else
			chan_reject(k, "handshake-timeout", ETIMEDOUT, 0,
				    "no authenticated session within %llu ms",
				    (unsigned long long)c->cfg.handshake_timeout_us / 1000);
	}
	if (c->up) {
		c->hb_pending = true;
		chan_tx_pump(c->up);
	}
	return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_chan *c = ud;

	sd_event_source_set_time(s, usec + c->cfg.ring_poll_us);
	ft_chan_kick(c);
	return 0;
}

static int on_notify(sd_event_source *s, int fd, uint32_t ev, void *ud)
{
	struct ft_chan *c = ud;
	uint64_t v;

	(void)s;
	(void)ev;
	if (c->cfg.ring_notify_eventfd && read(fd, &v, sizeof(v)) < 0)
		return 0;
	ft_chan_kick(c);
	return 0;
}

void ft_chan_kick(struct ft_chan *c)
{
	struct conn *k = c->up;

	if (!k)
		return;
	if (k->stalled) {
		if (chan_resume(k) < 0 || k->stalled)
			return;
		if (chan_rx_read(k) < 0)
			return;
	}
	chan_tx_pump(k);
}

/* ---- setup ---- */

/* Where sending or storing starts: the ring's own positions, or nothing yet. */
static void ring_positions(struct ft_chan *c)
{
	struct ft_ring *r = c->cfg.ring;

	if (c->cfg.sender) {
		c->sent = c->hw = r ? r->tail : (struct ft_ring_cursor){ 0, 1 };
		c->st.acked_seq = c->sent.seq - 1;
	} else {
		c->stored_seq = r ? ft_ring_next_seq(r) - 1 : 0;
		c->st.acked_seq = c->acked_sent = c->stored_seq;
	}
}

static int watch_notify(struct ft_chan *c)
{
	if (!c->cfg.sender || c->cfg.ring_notify_fd <= 0 || !c->cfg.ring || c->notify_io)
		return 0;
	return sd_event_add_io(c->ev, &c->notify_io, c->cfg.ring_notify_fd,
			       EPOLLIN | (c->cfg.ring_notify_eventfd ? 0 : EPOLLET), on_notify, c);
}

int ft_chan_set_ring(struct ft_chan *c, struct ft_ring *ring, int notify_fd, bool notify_eventfd)
{
	if (c->cfg.ring || !ring)
		return -EBUSY;
	c->cfg.ring = ring;
	c->cfg.ring_notify_fd = notify_fd;
	c->cfg.ring_notify_eventfd = notify_eventfd;
	ring_positions(c);
	/* The next session starts from the ring: the backup's first ACK says where. */
	if (c->up) {
		ft_log(LOG_INFO, &(struct ft_log_fields){ .peer = c->up->peer, .epoch = c->cfg.epoch,
							  .reason = "ring-attached" },
		       "channel: the ring is attached; the heartbeat-only session ends so that the next one "
		       "starts from the ring's positions");
		chan_drop(c->up);
	}
	return watch_notify(c);
}

static void defaults(struct ft_chan_cfg *cfg)
{
#define DEF(f, v) if (!cfg->f) cfg->f = (v)
	DEF(max_unacked_records, 65536);
	DEF(max_unacked_bytes, 4u << 20);
	DEF(max_frame, 256u << 10);
	DEF(heartbeat_us, 100000);
	DEF(handshake_timeout_us, 2000000);
	DEF(backoff_min_us, 50000);
	DEF(backoff_max_us, 2000000);
	DEF(ring_poll_us, 1000);
#undef DEF
	if (cfg->max_frame > FT_FRAME_MAX)
		cfg->max_frame = FT_FRAME_MAX;
}

int ft_chan_new(sd_event *ev, const struct ft_chan_cfg *cfg,
		const struct ft_chan_ops *ops, void *ctx, struct ft_chan **out)
{
	struct ft_chan *c = calloc(1, sizeof(*c));
	uint64_t now = ft_now_us();
	int ret;

	if (!c)
		return -ENOMEM;
	c->ev = sd_event_ref(ev);
	c->cfg = *cfg;
	defaults(&c->cfg);
	if (c->cfg.max_frame < 4 * KVM_FT_RING_RESERVE ||
	    c->cfg.max_unacked_bytes < 2 * KVM_FT_RING_RESERVE) {
		free(c);
		return -EINVAL;
	}
	if (ops)
		c->ops = *ops;
	c->ctx = ctx;
	c->ack_on = true;
	c->backoff_us = c->cfg.backoff_min_us;
	c->st.epoch = c->cfg.epoch;
	ring_positions(c);
	if (c->cfg.sender)
		ret = sd_event_add_time(ev, &c->redial_timer, CLOCK_MONOTONIC, now, 1000, on_redial, c);
	else
		ret = sd_event_add_io(ev, &c->listen_io, cfg->listen_fd, EPOLLIN, on_accept, c);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &c->hb_timer, CLOCK_MONOTONIC, now + c->cfg.heartbeat_us,
					1000, on_heartbeat, c);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(c->hb_timer, SD_EVENT_ON);
	if (ret >= 0)
		ret = sd_event_add_time(ev, &c->poll_timer, CLOCK_MONOTONIC, now + c->cfg.ring_poll_us,
					c->cfg.ring_poll_us / 4, on_poll, c);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(c->poll_timer, SD_EVENT_ON);
	if (ret >= 0)
		ret = watch_notify(c);
	if (ret < 0) {
		ft_chan_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void ft_chan_free(struct ft_chan *c)
{
	if (!c)
		return;
	if (c->up)
		conn_free(c->up);
	for (int i = 0; i < MAX_PENDING; i++)
		if (c->pend[i])
			conn_free(c->pend[i]);
	sd_event_source_disable_unref(c->listen_io);
	if (!c->cfg.sender && c->cfg.listen_fd >= 0)
		close(c->cfg.listen_fd);
	sd_event_source_disable_unref(c->hb_timer);
	sd_event_source_disable_unref(c->poll_timer);
	sd_event_source_disable_unref(c->notify_io);
	sd_event_source_disable_unref(c->redial_timer);
	sd_event_unref(c->ev);
	sodium_memzero(c->cfg.psk, sizeof(c->cfg.psk));
	free(c);
}

void ft_chan_get_stats(const struct ft_chan *c, struct ft_chan_stats *st)
{
	*st = c->st;
	st->epoch = c->cfg.epoch;
	if (c->cfg.sender) {
		const struct ft_ring *r = c->cfg.ring;

		st->head_seq = c->hw.seq - 1;
		st->sent_seq = c->sent.seq - 1;
		st->unacked_records = c->hw.seq - 1 - st->acked_seq;
		st->unacked_bytes = r ? c->hw.pos - r->tail.pos : 0;
		st->lag_us = c->itail != c->ihead ? ft_now_us() - c->infl[c->itail % INFLIGHT].t_us : 0;
	} else {
		st->head_seq = c->stored_seq;
		st->unacked_records = c->stored_seq - c->acked_sent;
		st->stalled = c->up && c->up->stalled;
	}
}

void ft_chan_set_epoch(struct ft_chan *c, uint64_t epoch)
{
	if (epoch == c->cfg.epoch)
		return;
	c->cfg.epoch = epoch;
	if (c->up)
		chan_drop(c->up);
	for (int i = 0; i < MAX_PENDING; i++)
		if (c->pend[i])
			chan_drop(c->pend[i]);
}

void ft_chan_set_role(struct ft_chan *c, uint32_t role)
{
	c->cfg.role = role;
}

void ft_chan_set_emitted(struct ft_chan *c, uint64_t seq)
{
	if (seq <= c->st.emitted_seq)
		return;
	c->st.emitted_seq = seq;
	if (c->up) {
		c->hb_pending = true;
		chan_tx_pump(c->up);
	}
}

void ft_chan_set_failover(struct ft_chan *c, const struct ft_fo_msg *m)
{
	c->st.fo = *m;
	if (c->up) {
		c->hb_pending = true;
		chan_tx_pump(c->up);
	}
}

void ft_chan_set_sync(struct ft_chan *c, const struct ft_fo_msg *m)
{
	c->st.sy = *m;
	if (c->up) {
		c->hb_pending = true;
		chan_tx_pump(c->up);
	}
}

void ft_chan_set_hello_flags(struct ft_chan *c, uint32_t flags)
{
	c->cfg.hello_flags = flags;
}

int ft_chan_snap_send(struct ft_chan *c, struct ft_sync_tx *t, uint64_t rate)
{
	if (!c->up || !c->cfg.sender)
		return -ENOTCONN;
	c->snap = t;
	c->snap_rate = rate;
	c->snap_t0 = ft_now_us();
	c->st.snap_total = t->len;
	c->st.snap_sent = 0;
	c->st.snap_end_sent = false;
	chan_tx_pump(c->up);
	return 0;
}

void ft_chan_snap_stop(struct ft_chan *c)
{
	c->snap = NULL;
}

void ft_chan_set_ack(struct ft_chan *c, bool on)
{
	c->ack_on = on;
	if (on && c->up)
		chan_tx_pump(c->up);
}
