// SPDX-License-Identifier: GPL-2.0
/*
 * The logging channel's receive path: frame checks in order CRC32C, frame
 * counter, AEAD tag, epoch, then content; a refused frame ends the session
 * and stores nothing.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "channel_int.h"
#include "log.h"

/* ---- receiving ---- */

/* Receiver: store the records of the LOG frame at rstart from stall_off on. */
static int store_log(struct conn *k)
{
	struct ft_chan *c = k->c;
	const uint8_t *f = k->rbuf + k->rstart;
	const struct ft_frame_hdr *h = (const void *)f;
	size_t end = h->len - FT_FRAME_TAG;

	while (k->stall_off < end) {
		const struct kvm_ft_rec *rec = (const void *)(f + k->stall_off);
		int ret;

		if (rec->seq <= c->stored_seq) {
			c->st.duplicates++;
		} else {
			ret = ft_ring_append(c->cfg.ring, rec, rec->len);
			if (ret == -EAGAIN) {
				if (!k->stalled)
					c->st.ring_full++;
				k->stalled = true;
				return 1;
			}
			if (ret)
				return chan_reject(k, "replay-ring", -ret, h->epoch,
					      "replay ring refused record %llu: %s",
					      (unsigned long long)rec->seq,
					      c->cfg.ring->why ? c->cfg.ring->why : strerror(-ret));
			c->stored_seq = rec->seq;
			c->st.records++;
			c->st.record_bytes += rec->len;
			c->ack_pending = true;
		}
		k->stall_off += rec->len;
	}
	k->stalled = false;
	return 0;
}

static int on_log(struct conn *k, const struct ft_frame_hdr *h, const uint8_t *p, size_t plen)
{
	struct ft_chan *c = k->c;
	uint64_t seq = h->first_seq;
	size_t off = 0;
	const char *why = NULL;

	if (c->cfg.sender)
		return chan_reject(k, "unexpected-frame", EPROTO, h->epoch, "LOG frame sent to the primary");
	if (!c->cfg.ring)
		return chan_reject(k, "unexpected-frame", EPROTO, h->epoch, "LOG frame before any ACK");
	if (!h->count || !seq)
		return chan_reject(k, "bad-record", EBADMSG, h->epoch, "LOG frame without records");
	/* Check everything first: a refused frame stores nothing. */
	for (uint32_t i = 0; i < h->count; i++, seq++) {
		int ret = ft_rec_check(p + off, plen - off, seq, &why);

		if (ret < 0)
			return chan_reject(k, "bad-record", EBADMSG, h->epoch, "record %llu: %s",
				      (unsigned long long)seq, why);
		off += (size_t)ret;
	}
	if (off != plen)
		return chan_reject(k, "bad-record", EBADMSG, h->epoch, "%zu bytes after the last record",
			      plen - off);
	if (h->first_seq > c->stored_seq + 1)
		return chan_reject(k, "sequence-gap", EBADMSG, h->epoch,
			      "records from %llu, expected %llu",
			      (unsigned long long)h->first_seq, (unsigned long long)c->stored_seq + 1);
	k->stall_off = sizeof(*h);
	return store_log(k);
}

static int on_ack(struct conn *k, const struct ft_frame_hdr *h, const uint8_t *p, size_t plen)
{
	struct ft_chan *c = k->c;
	struct ft_ring *r = c->cfg.ring;
	struct ft_ack a;
	uint64_t now = ft_now_us();
	int ret;

	if (!c->cfg.sender || plen != sizeof(a))
		return chan_reject(k, "unexpected-frame", EPROTO, h->epoch, "malformed ACK frame");
	memcpy(&a, p, sizeof(a));
	if (a.acked_seq != h->first_seq)
		return chan_reject(k, "bad-ack", EPROTO, h->epoch, "ACK fields disagree");
	if (!r)
		return 0;	/* no ring yet: the session restarts when it comes */
	if (a.acked_seq > c->hw.seq - 1)
		return chan_reject(k, "ack-beyond-sent", EPROTO, h->epoch, "ACK of %llu, only %llu sent",
			      (unsigned long long)a.acked_seq, (unsigned long long)c->hw.seq - 1);
	if (a.acked_seq < r->tail.seq - 1)
		return chan_reject(k, c->synced ? "ack-regress" : "peer-lost-records", EPROTO, h->epoch,
			      "peer acks %llu but had acked %llu: it lost records (re-protection needed)",
			      (unsigned long long)a.acked_seq, (unsigned long long)r->tail.seq - 1);
	ret = ft_ring_release(r, a.acked_seq, &c->hw);
	if (ret)
		return chan_reject(k, "bad-ring", -ret, h->epoch, "cannot release the ring to %llu: %s",
			      (unsigned long long)a.acked_seq, r->why ? r->why : strerror(-ret));
	if (a.acked_seq > c->st.acked_seq && c->ops.acked)
		c->ops.acked(c->ctx, a.acked_seq);
	c->st.acked_seq = a.acked_seq;
	while (c->itail != c->ihead && c->infl[c->itail % INFLIGHT].last_seq <= a.acked_seq) {
		c->st.ack_rtt_us = now - c->infl[c->itail % INFLIGHT].t_us;
		c->itail++;
	}
	if (!c->synced) {
		/* First ACK of the session: resend everything after it. */
		c->synced = true;
		c->sent = r->tail;
		c->itail = c->ihead;
		chan_set_state(c, FT_CHAN_UP);
	}
	return 0;
}

/* Receiver, in a seed session: a SNAP chunk or SNAP_END, handed to the node. */
static int on_snap(struct conn *k, const struct ft_frame_hdr *h, const uint8_t *p, size_t plen)
{
	struct ft_chan *c = k->c;
	struct ft_snap sh;
	struct ft_snap_end e;

	if (c->cfg.sender || !(c->cfg.hello_flags & FT_HELLO_SEED_REQUEST))
		return chan_reject(k, "unexpected-frame", EPROTO, h->epoch, "%s frame outside a seed session",
				   ft_frame_type_name(h->type));
	if (h->type == FT_F_SNAP_END) {
		if (plen != sizeof(e) || h->count)
			return chan_reject(k, "bad-snapshot", EPROTO, h->epoch, "SNAP_END of %zu bytes", plen);
		memcpy(&e, p, sizeof(e));
		if (e.total != h->first_seq)
			return chan_reject(k, "bad-snapshot", EPROTO, h->epoch, "SNAP_END fields disagree");
		if (c->ops.snap_end)
			c->ops.snap_end(c->ctx, e.total, e.hash);
		return 0;
	}
	if (plen <= sizeof(sh) || h->count)
		return chan_reject(k, "bad-snapshot", EPROTO, h->epoch, "SNAP frame of %zu bytes", plen);
	memcpy(&sh, p, sizeof(sh));
	if (sh.reserved)
		return chan_reject(k, "bad-snapshot", EPROTO, h->epoch, "SNAP frame with a reserved field set");
	if (c->ops.snap)
		c->ops.snap(c->ctx, sh.total, h->first_seq, p + sizeof(sh), plen - sizeof(sh));
	return 0;
}

static int on_frame(struct conn *k, uint8_t *f)
{
	struct ft_chan *c = k->c;
	struct ft_frame_hdr h;
	size_t plen;

	memcpy(&h, f, sizeof(h));
	if (ft_frame_crc(f, h.len) != h.crc32c)
		return chan_reject(k, "crc-mismatch", EBADMSG, h.epoch, "%s frame %llu fails its CRC32C",
			      ft_frame_type_name(h.type), (unsigned long long)h.counter);
	if (!k->session) {
		if (h.type >= FT_F_LOG)
			return chan_reject(k, "unexpected-frame", EPROTO, h.epoch,
				      "%s frame before authentication", ft_frame_type_name(h.type));
		return chan_handshake(k, &h, f + sizeof(h), h.len - sizeof(h));
	}
	if (h.type < FT_F_LOG)
		return chan_reject(k, "unexpected-frame", EPROTO, h.epoch, "%s frame in a session",
			      ft_frame_type_name(h.type));
	if (h.counter != k->rxctr + 1)
		return chan_reject(k, h.counter <= k->rxctr ? "replayed-frame" : "frame-gap", EBADMSG, h.epoch,
			      "%s frame number %llu, expected %llu", ft_frame_type_name(h.type),
			      (unsigned long long)h.counter, (unsigned long long)k->rxctr + 1);
	if (ft_open(k->rxkey, f))
		return chan_reject(k, "auth-failed", EBADMSG, h.epoch,
			      "%s frame %llu fails authentication", ft_frame_type_name(h.type),
			      (unsigned long long)h.counter);
	k->rxctr++;
	if (h.epoch != c->cfg.epoch)
		return chan_reject(k, h.epoch < c->cfg.epoch ? "stale-epoch" : "future-epoch", ESTALE, h.epoch,
			      "%s frame of epoch %llu in a session of epoch %llu",
			      ft_frame_type_name(h.type), (unsigned long long)h.epoch,
			      (unsigned long long)c->cfg.epoch);
	uint64_t now = ft_now_us();

	c->st.rx_frames++;
	if (now - c->st.last_rx_us > c->st.max_rx_gap_us)
		c->st.max_rx_gap_us = now - c->st.last_rx_us;
	c->st.last_rx_us = now;
	plen = h.len - sizeof(h) - FT_FRAME_TAG;
	switch (h.type) {
	case FT_F_LOG:
		return on_log(k, &h, f + sizeof(h), plen);
	case FT_F_ACK:
		return on_ack(k, &h, f + sizeof(h), plen);
	case FT_F_SNAP:
	case FT_F_SNAP_END:
		return on_snap(k, &h, f + sizeof(h), plen);
	default: {
		struct ft_heartbeat hb;

		if (plen != sizeof(hb))
			return chan_reject(k, "bad-heartbeat", EPROTO, h.epoch, "heartbeat of %zu bytes", plen);
		memcpy(&hb, f + sizeof(h), sizeof(hb));
		c->peer_hb_ns = hb.sent_ns;
		c->peer_hb_rx_ns = now * 1000;
		c->st.peer_role = hb.role;
		if (!c->cfg.sender && hb.emitted_seq > c->st.peer_emitted_seq)
			c->st.peer_emitted_seq = hb.emitted_seq;
		if (hb.fo_state > FT_FO_WIRE_MAX || hb.fo_reserved)
			return chan_reject(k, "bad-heartbeat", EPROTO, h.epoch,
				      "heartbeat with failover state %u", hb.fo_state);
		if (hb.fo_state != c->st.peer_fo.state || hb.fo_id != c->st.peer_fo.id ||
		    hb.fo_seq != c->st.peer_fo.seq || hb.fo_epoch != c->st.peer_fo.epoch) {
			c->st.peer_fo = (struct ft_fo_msg){ .state = hb.fo_state, .id = hb.fo_id,
							     .seq = hb.fo_seq, .epoch = hb.fo_epoch };
			if (c->ops.failover)
				c->ops.failover(c->ctx, &c->st.peer_fo);
		}
		if (hb.sy_state > FT_SY_WIRE_MAX || hb.sy_reserved)
			return chan_reject(k, "bad-heartbeat", EPROTO, h.epoch,
				      "heartbeat with re-protection state %u", hb.sy_state);
		if (hb.sy_state != c->st.peer_sy.state || hb.sy_epoch != c->st.peer_sy.epoch) {
			c->st.peer_sy = (struct ft_fo_msg){ .state = hb.sy_state, .epoch = hb.sy_epoch };
			if (c->ops.sync)
				c->ops.sync(c->ctx, &c->st.peer_sy);
		}
		/* our timestamp came back: RTT minus the time it sat at the peer */
		if (hb.echo_ns && hb.echo_ns + hb.echo_hold_ns <= now * 1000)
			c->st.hb_rtt_us = (now * 1000 - hb.echo_ns - hb.echo_hold_ns) / 1000;
		return 0;
	}
	}
}

/* Process whole frames in rbuf. 0: need more bytes; 1: stalled; -1: dropped. */
static int rx_frames(struct conn *k)
{
	const char *why;

	while (k->rend - k->rstart >= sizeof(struct ft_frame_hdr)) {
		struct ft_frame_hdr h;
		int ret;

		memcpy(&h, k->rbuf + k->rstart, sizeof(h));
		if (ft_frame_check_hdr(&h, k->max_rx, &why))
			return chan_reject(k, why, EBADMSG, h.epoch,
				      "frame header refused (magic %#x, type %u, length %u)",
				      h.magic, h.type, h.len);
		if (k->rend - k->rstart < h.len)
			break;
		ret = on_frame(k, k->rbuf + k->rstart);
		if (ret)
			return ret;
		k->rstart += h.len;
	}
	if (k->rstart == k->rend)
		k->rstart = k->rend = 0;
	else if (k->rcap - k->rend < k->max_rx) {
		memmove(k->rbuf, k->rbuf + k->rstart, k->rend - k->rstart);
		k->rend -= k->rstart;
		k->rstart = 0;
	}
	return 0;
}

/* Receiver: the replay ring may have room again. */
int chan_resume(struct conn *k)
{
	int ret = store_log(k);

	if (ret)
		return ret;
	k->rstart += ((struct ft_frame_hdr *)(k->rbuf + k->rstart))->len;
	return rx_frames(k);
}

int chan_rx_read(struct conn *k)
{
	struct ft_chan *c = k->c;

	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n;
		int ret = k->stalled ? chan_resume(k) : rx_frames(k);

		if (ret)
			return ret;
		if (k->rend == k->rcap)
			break;
		n = read(k->fd, k->rbuf + k->rend, k->rcap - k->rend);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && errno == ECONNRESET)
			return chan_peer_closed(k, errno);
		if (n < 0)
			return chan_reject(k, "io-error", errno, c->cfg.epoch, "receive failed: %s",
				      strerror(errno));
		if (n == 0) {
			if (k->rend != k->rstart)
				return chan_reject(k, "truncated-frame", EPIPE, c->cfg.epoch,
					      "connection closed inside a frame (%zu bytes of it received)",
					      k->rend - k->rstart);
			return chan_peer_closed(k, 0);
		}
		k->rend += (size_t)n;
		c->st.rx_bytes += (uint64_t)n;
	}
	return k->stalled ? 1 : rx_frames(k);
}

