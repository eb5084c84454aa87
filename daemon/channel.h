/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The logging channel between two ftd: one authenticated, encrypted TCP
 * session (frame.h, crypto.h) carrying log records primary -> backup, acks
 * backup -> primary, and heartbeats both ways.
 *
 * Sender (primary): dials the peer, reconnecting with exponential backoff
 * (with jitter). Reads records from the log ring without copying them out:
 * a LOG frame is a run of records contiguous in the mapped data area, sealed
 * straight from the ring into the socket buffer, so each record byte is
 * copied once by the AEAD (ring -> frame buffer) and once by the kernel
 * (frame buffer -> socket). Ring space is released only when the backup acks,
 * so the ring itself is the retransmission buffer: after a reconnect the
 * sender resumes after the backup's acked seq and nothing acked is ever
 * needed again. At most max_unacked_records / max_unacked_bytes are in flight;
 * when the window is full the sender stops reading the ring (and the vCPU
 * eventually waits for ring space): memory never grows.
 *
 * Receiver (backup): listens, authenticates, checks every frame (CRC,
 * counter, AEAD tag, epoch, then every record), skips records it already
 * holds (retransmissions), appends new ones to the replay ring and acks the
 * highest contiguous seq stored. When the replay ring is full it stops
 * reading the socket, which pushes back through TCP to the sender's window.
 *
 * Re-protection: a live-alone node's channel offers a seed and a returning
 * node's asks for one (cfg.hello_flags, frame.h: enum ft_hello_flags); in
 * such a session the sender streams a snapshot (ft_chan_snap_send: SNAP
 * chunks, then SNAP_END) paced by TCP and an optional rate, and the
 * receiver hands each chunk to ops.snap and the end to ops.snap_end.
 *
 * A bad frame gets one log line (FT_PEER, FT_EPOCH, ERRNO, FT_REASON) and
 * ends the session; nothing it carried is stored or acked, and nothing
 * accepted before it is lost.
 */
#ifndef FTD_CHANNEL_H
#define FTD_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>
#include "crypto.h"
#include "frame.h"
#include "ring.h"
#include "sync.h"

enum ft_chan_state {
	FT_CHAN_DOWN = 0,	/* no session; the sender waits to redial */
	FT_CHAN_CONNECTING,	/* TCP connect or handshake under way */
	FT_CHAN_UP,		/* authenticated session, epochs equal */
};

struct ft_chan_cfg {
	uint32_t node_id;
	uint64_t epoch;
	uint8_t psk[FT_PSK_LEN];
	bool sender;
	/* sender: where to dial */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	/* receiver: a bound, listening socket (the channel takes it) */
	int listen_fd;
	struct ft_ring *ring;		/* sender: log ring; receiver: replay ring;
					 * NULL: heartbeats only until ft_chan_set_ring() */
	uint32_t max_unacked_records;	/* default 65536 */
	uint64_t max_unacked_bytes;	/* default 4 MiB */
	uint32_t max_frame;		/* default 256 KiB, at most FT_FRAME_MAX */
	uint64_t heartbeat_us;		/* default 100 ms */
	uint64_t handshake_timeout_us;	/* default 2 s */
	uint64_t backoff_min_us, backoff_max_us;	/* defaults 50 ms, 2 s */
	uint64_t ring_poll_us;		/* check the ring for new records; default 1 ms */
	/*
	 * Readable when the producer appended (sender only; 0 = none). An
	 * eventfd is drained on each wake-up; another fd (the kernel's ft fd)
	 * is watched edge-triggered, because its POLLIN stays raised while
	 * unacked records hold the consumer position back.
	 */
	int ring_notify_fd;
	bool ring_notify_eventfd;
	uint32_t role;			/* carried in heartbeats */
	uint32_t hello_flags;		/* enum ft_hello_flags (re-protection) */
};

struct ft_chan_stats {
	enum ft_chan_state state;
	char peer[64];
	uint64_t epoch;
	uint64_t head_seq;		/* sender: last seq read; receiver: last stored */
	uint64_t sent_seq;		/* sender: last seq sent in this session */
	uint64_t acked_seq;		/* highest seq acked (sender) / sent in acks (receiver) */
	uint64_t unacked_records, unacked_bytes;
	uint64_t lag_us;		/* age of the oldest unacked frame */
	uint64_t records, record_bytes;	/* records sent (sender) / stored (receiver) */
	uint64_t duplicates;		/* retransmitted records skipped by the receiver */
	uint64_t tx_bytes, rx_bytes, tx_frames, rx_frames;
	uint64_t sessions, rejects, window_full, ring_full;
	char last_reject[32];
	uint64_t last_rx_us;		/* CLOCK_MONOTONIC of the last authenticated frame */
	uint64_t max_rx_gap_us;		/* longest silence between frames within sessions */
	uint64_t ack_rtt_us;		/* last frame-send -> covering-ack time */
	uint64_t hb_rtt_us;		/* last heartbeat round trip */
	uint32_t peer_role;
	uint64_t peer_epoch_seen;	/* epoch an authenticated peer offered, if different */
	bool stalled;			/* receiver: not reading, the replay ring is full */
	uint64_t emitted_seq;		/* sender: EMITTED forwarded to the peer */
	uint64_t peer_emitted_seq;	/* receiver: highest EMITTED the peer forwarded */
	struct ft_fo_msg fo, peer_fo;	/* planned failover: ours and the peer's last */
	struct ft_fo_msg sy, peer_sy;	/* re-protection (enum ft_sy_wire): ours, the peer's */
	uint64_t snap_total, snap_sent;	/* sender: the snapshot being streamed */
	bool snap_end_sent;
};

struct ft_chan_ops {
	/* the session came up or went down */
	void (*state)(void *ctx, enum ft_chan_state st);
	/* an authenticated peer offered another epoch (the session was refused) */
	void (*epoch_mismatch)(void *ctx, uint64_t peer_epoch);
	/* sender: the backup acked up to seq (called when it advances) */
	void (*acked)(void *ctx, uint64_t seq);
	/* the peer's planned-failover message changed (from a heartbeat) */
	void (*failover)(void *ctx, const struct ft_fo_msg *m);
	/* the peer's re-protection message changed (from a heartbeat) */
	void (*sync)(void *ctx, const struct ft_fo_msg *m);
	/*
	 * receiver, in a seed session: a SNAP chunk (total: the announced
	 * length) and SNAP_END. The node checks them (sync.h); it answers
	 * through ft_chan_set_sync, the session goes on either way.
	 */
	void (*snap)(void *ctx, uint64_t total, uint64_t off, const uint8_t *data, size_t n);
	void (*snap_end)(void *ctx, uint64_t total, const uint8_t hash[FT_SYNC_HASH_LEN]);
};

struct ft_chan;

int ft_chan_new(sd_event *ev, const struct ft_chan_cfg *cfg,
		const struct ft_chan_ops *ops, void *ctx, struct ft_chan **out);
void ft_chan_free(struct ft_chan *c);
void ft_chan_get_stats(const struct ft_chan *c, struct ft_chan_stats *st);
/*
 * The ring arrives (the VM attached): sending or storing starts from its
 * positions in the next session (the current one ends). -EBUSY if the
 * channel has one already.
 */
int ft_chan_set_ring(struct ft_chan *c, struct ft_ring *ring, int notify_fd, bool notify_eventfd);
/* New records may be in the ring (sender), or space freed (receiver). */
void ft_chan_kick(struct ft_chan *c);
/* Change the epoch: the current session ends, new ones must carry it. */
void ft_chan_set_epoch(struct ft_chan *c, uint64_t epoch);
void ft_chan_set_role(struct ft_chan *c, uint32_t role);
/* Stop or resume acking (promotion step 2: stop acking while arbitrating). */
void ft_chan_set_ack(struct ft_chan *c, bool on);
/*
 * Sender: the local VMM reported EMITTED seq. Forwarded in the next
 * heartbeat, which is sent at once (authenticated like every frame).
 */
void ft_chan_set_emitted(struct ft_chan *c, uint64_t seq);
/*
 * Planned failover: carry m in every heartbeat from now on (and send one at
 * once). The peer's side arrives through ops.failover.
 */
void ft_chan_set_failover(struct ft_chan *c, const struct ft_fo_msg *m);
/* Re-protection: carry m in every heartbeat from now on (and send one at once). */
void ft_chan_set_sync(struct ft_chan *c, const struct ft_fo_msg *m);
/* enum ft_hello_flags for the sessions from now on (the current one goes on). */
void ft_chan_set_hello_flags(struct ft_chan *c, uint32_t flags);
/*
 * Sender, in a seed session: stream t (the caller keeps it open until
 * ft_chan_snap_stop) at most rate bytes/s (0: as fast as TCP takes it),
 * then SNAP_END. Progress in the stats (snap_sent of snap_total).
 * -ENOTCONN without a session.
 */
int ft_chan_snap_send(struct ft_chan *c, struct ft_sync_tx *t, uint64_t rate);
void ft_chan_snap_stop(struct ft_chan *c);
const char *ft_chan_state_name(enum ft_chan_state st);

uint64_t ft_now_us(void);

#endif
