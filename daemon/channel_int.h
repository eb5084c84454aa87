/* SPDX-License-Identifier: GPL-2.0 */
/* Internals shared by channel.c (setup, sending, handshake) and chanrx.c (receiving). */
#ifndef FTD_CHANNEL_INT_H
#define FTD_CHANNEL_INT_H

#include "channel.h"

#define MAX_PENDING	4
#define INFLIGHT	4096		/* frames tracked for lag and ack RTT */
#define SENDER_MAX_RX	4096		/* largest frame a sender accepts */

struct conn {
	struct ft_chan *c;
	int fd;
	sd_event_source *io;
	bool client, dialing, session;
	uint64_t started_us;
	struct ft_hello mine, theirs;
	struct ft_session_keys k;
	const uint8_t *txkey, *rxkey;
	uint64_t txctr, rxctr, their_epoch;
	uint8_t *rbuf, *wbuf;
	size_t rcap, rstart, rend, wcap, woff, wlen;
	uint32_t max_rx;
	char peer[64];
	/* receiver: the LOG frame at rstart is stored up to stall_off */
	bool stalled;
	size_t stall_off;
};

struct inflight {
	uint64_t last_seq, t_us;
};

struct ft_chan {
	sd_event *ev;
	struct ft_chan_cfg cfg;
	struct ft_chan_ops ops;
	void *ctx;
	struct conn *up;
	struct conn *pend[MAX_PENDING];
	sd_event_source *listen_io, *hb_timer, *poll_timer, *redial_timer, *notify_io;
	uint64_t backoff_us;
	bool dial_fail_logged;
	/* sender */
	struct ft_ring_cursor sent, hw;
	bool synced;
	struct inflight infl[INFLIGHT];
	unsigned int ihead, itail;
	bool window_was_full, ring_bad;
	/* receiver */
	uint64_t stored_seq, acked_sent;
	bool ack_pending, ack_on, hb_pending;
	uint64_t peer_hb_ns, peer_hb_rx_ns;
	/* sender: the snapshot being streamed (re-protection) */
	struct ft_sync_tx *snap;
	uint64_t snap_rate, snap_t0;
	struct ft_chan_stats st;
};

int chan_tx_pump(struct conn *k);
void chan_set_state(struct ft_chan *c, enum ft_chan_state st);
void chan_drop(struct conn *k);
__attribute__((format(printf, 5, 6)))
int chan_reject(struct conn *k, const char *reason, int err, uint64_t epoch, const char *fmt, ...);
int chan_peer_closed(struct conn *k, int err);
int chan_handshake(struct conn *k, const struct ft_frame_hdr *h, const uint8_t *p, size_t plen);
int chan_resume(struct conn *k);
int chan_rx_read(struct conn *k);

#endif
