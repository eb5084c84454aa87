// SPDX-License-Identifier: GPL-2.0
/*
 * The logging channel between two real processes over loopback TCP, with a
 * fault-injecting proxy in the middle. Proves: every record produced arrives
 * exactly once, in order and byte-exact; each forged, corrupted, truncated,
 * replayed or stale-epoch frame is refused with exactly one log line and
 * costs nothing already accepted; a peer without the key gets nothing in or
 * out; a peer that resets the connection is no rejected frame and the
 * primary redials; a slow backup bounds the primary's unacked window and
 * memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include "chanproc.h"
#include "frame.h"
#include "recgen.h"
#include "tap.h"

static uint64_t seed;
static char dir[] = "/tmp/ftchan.XXXXXX";
static uint8_t psk[FT_PSK_LEN];

struct scen {
	const char *name;
	enum proxy_mode mode;
	bool proxy, wrong_key;
	uint64_t n, primary_epoch, backup_epoch;
	uint32_t primary_flags, backup_flags;	/* enum ft_hello_flags */
	unsigned int backup_order;
	uint32_t max_recs;
	uint64_t max_bytes;
	int slow;		/* drain at most this many records per ms */
	int secs;		/* give up after */
};

struct res {
	uint64_t produced, verified, acked_src;
	bool bad;
	char plog[256], blog[256];
	struct ep_shared *shp, *shb;
};

static int memring(unsigned int order)
{
	int fd = memfd_create("ring", 0);

	if (fd < 0 || ft_ring_format(fd, order))
		exit(2);
	return fd;
}

static void run(const struct scen *s, struct res *r)
{
	int src = memring(20), dst = memring(s->backup_order ? s->backup_order : 20);
	uint16_t bport = 0, pport = 0;
	int bl = tcp_listen(&bport), pl = s->proxy ? tcp_listen(&pport) : -1;
	struct ep_args pa = { .sender = true, .ring_fd = src, .port = s->proxy ? pport : bport,
			      .epoch = s->primary_epoch ? s->primary_epoch : 1, .node_id = 1,
			      .max_unacked_records = s->max_recs, .max_unacked_bytes = s->max_bytes,
			      .hello_flags = s->primary_flags };
	struct ep_args ba = { .sender = false, .ring_fd = dst, .listen_fd = bl,
			      .epoch = s->backup_epoch ? s->backup_epoch : 1, .node_id = 2,
			      .hello_flags = s->backup_flags };
	struct ft_ring w, rd;
	struct ft_ring_cursor cur;
	uint8_t buf[FT_RECGEN_MAX];
	pid_t pp, bp, xp = 0;
	uint64_t deadline;

	memset(r, 0, sizeof(*r));
	snprintf(r->plog, sizeof(r->plog), "%s/%s.primary.log", dir, s->name);
	snprintf(r->blog, sizeof(r->blog), "%s/%s.backup.log", dir, s->name);
	r->shp = shared_page();
	r->shb = shared_page();
	memcpy(pa.psk, psk, FT_PSK_LEN);
	if (s->wrong_key)
		pa.psk[7] ^= 1;
	memcpy(ba.psk, psk, FT_PSK_LEN);
	pa.log_path = r->plog;
	ba.log_path = r->blog;
	pa.sh = r->shp;
	ba.sh = r->shb;
	bp = spawn_endpoint(&ba);
	if (s->proxy)
		xp = spawn_proxy(pl, bport, s->mode, 5, psk, NULL);
	pp = spawn_endpoint(&pa);
	close(bl);
	if (pl >= 0)
		close(pl);

	ft_ring_map(&w, src, true);
	ft_ring_map(&rd, dst, false);
	cur = rd.tail;
	deadline = ft_now_us() + (uint64_t)s->secs * 1000000;
	while (r->verified < s->n && ft_now_us() < deadline && !r->bad) {
		const struct kvm_ft_rec *rec;
		uint32_t len;
		int got = 0, ret;

		while (r->produced < s->n) {
			len = ft_recgen(seed, r->produced + 1, buf);
			if (ft_ring_append(&w, buf, len))
				break;
			r->produced++;
		}
		while ((!s->slow || got < s->slow) && (ret = ft_ring_next(&rd, &cur, &rec, &len)) == 1) {
			if (!ft_recgen_verify(seed, r->verified + 1, 0, rec, len)) {
				r->bad = true;
				break;
			}
			r->verified++;
			got++;
		}
		if (got)
			ft_ring_release(&rd, cur.seq - 1, &cur);
		usleep(s->slow ? 1000 : 200);
	}
	/* the primary must see every record acked */
	while (w.cons->acked_seq < r->produced && ft_now_us() < deadline)
		usleep(1000);
	r->acked_src = w.cons->acked_seq;
	stop_child(pp);
	stop_child(bp);
	if (xp)
		stop_child(xp);
	ft_ring_unmap(&w);
	ft_ring_unmap(&rd);
	close(src);
	close(dst);
}

static void fault(const char *name, enum proxy_mode mode, const char *reason)
{
	struct scen s = { .name = name, .mode = mode, .proxy = true, .n = 20000, .secs = 30,
			  .primary_epoch = 5, .backup_epoch = 5 };
	struct res r;
	char needle[64];

	snprintf(needle, sizeof(needle), "FT_REASON=%s", reason);
	run(&s, &r);
	ok(!r.bad && r.verified == s.n && r.acked_src == s.n,
	   "%s: all %llu records stored once, in order, byte-exact; %llu acked",
	   name, (unsigned long long)r.verified, (unsigned long long)r.acked_src);
	ok(count_lines(r.blog, needle) == 1 && count_lines(r.blog, "FT_REASON=") == 1,
	   "%s: the backup logged exactly one rejection, %s (%d lines with FT_REASON)",
	   name, needle, count_lines(r.blog, "FT_REASON="));
	ok(r.shp->sessions >= 2, "%s: the primary reconnected (%llu sessions)", name,
	   (unsigned long long)r.shp->sessions);
}

/* A client that has no key but talks the protocol: HELLO, a guessed PROOF, then data. */
static void rogue_client(void)
{
	int dst = memring(16);
	uint16_t port = 0;
	int bl = tcp_listen(&port);
	struct ep_args ba = { .sender = false, .ring_fd = dst, .listen_fd = bl, .epoch = 1, .node_id = 2 };
	char blog[256];
	uint8_t fb[512];
	struct ft_frame_hdr *h = (void *)fb;
	struct ft_hello hello = { .version = FT_FRAME_VERSION, .node_id = 1 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port) };
	struct ft_ring rd;
	ssize_t got;
	pid_t bp;
	int fd;

	snprintf(blog, sizeof(blog), "%s/rogue.backup.log", dir);
	memcpy(ba.psk, psk, FT_PSK_LEN);
	ba.log_path = blog;
	bp = spawn_endpoint(&ba);
	close(bl);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	ft_nonce_fresh(hello.nonce);
	*h = (struct ft_frame_hdr){ .magic = FT_FRAME_MAGIC, .type = FT_F_HELLO, .epoch = 1,
				    .len = sizeof(*h) + sizeof(hello) };
	memcpy(h + 1, &hello, sizeof(hello));
	ft_seal_clear(fb);
	write(fd, fb, h->len);
	got = recv(fd, fb, sizeof(*h) + sizeof(hello), MSG_WAITALL);
	ok(got == (ssize_t)(sizeof(*h) + sizeof(hello)) && h->type == FT_F_HELLO_REPLY,
	   "rogue: the backup answers HELLO with its proof");
	*h = (struct ft_frame_hdr){ .magic = FT_FRAME_MAGIC, .type = FT_F_PROOF, .epoch = 1,
				    .len = sizeof(*h) + 32 };
	randombytes_buf(h + 1, 32);
	ft_seal_clear(fb);
	write(fd, fb, h->len);
	/* then a LOG frame sealed under a key we made up */
	uint8_t key[32], rec[FT_RECGEN_MAX];
	uint32_t rl = ft_recgen_sized(seed, 1, 64, rec);

	randombytes_buf(key, sizeof(key));
	*h = (struct ft_frame_hdr){ .magic = FT_FRAME_MAGIC, .type = FT_F_LOG, .epoch = 1,
				    .len = sizeof(*h) + rl + FT_FRAME_TAG, .first_seq = 1,
				    .count = 1, .counter = 1 };
	ft_seal(key, fb, rec, rl);
	write(fd, fb, h->len);
	got = read(fd, fb, sizeof(fb));
	ok(got == 0, "rogue: the backup closes the connection without sending anything more");
	close(fd);
	usleep(100000);
	stop_child(bp);
	ft_ring_map(&rd, dst, false);
	ok(rd.prod->producer == 0 && rd.prod->next_seq == 1, "rogue: nothing stored in the replay ring");
	ft_ring_unmap(&rd);
	ok(count_lines(blog, "FT_REASON=auth-failed") == 1 &&
	   count_lines(blog, "authenticated session") == 0,
	   "rogue: one auth-failed line, no session");
	close(dst);
}

/*
 * A peer that resets the connection (close with SO_LINGER 0: RST) after the
 * primary's HELLO. The primary reads ECONNRESET: the peer went away, nothing
 * was refused, so no reject is counted and it redials every time.
 */
static void reset_peer(void)
{
	int src = memring(16), resets = 0, redials = 0;
	uint16_t port = 0;
	int lfd = tcp_listen(&port);
	struct ep_args pa = { .sender = true, .ring_fd = src, .port = port, .epoch = 1, .node_id = 1 };
	char plog[256];
	pid_t pp;

	snprintf(plog, sizeof(plog), "%s/reset.primary.log", dir);
	memcpy(pa.psk, psk, FT_PSK_LEN);
	pa.log_path = plog;
	pa.sh = shared_page();
	pp = spawn_endpoint(&pa);
	for (int i = 0; i < 4; i++) {
		struct pollfd p = { lfd, POLLIN, 0 };
		struct linger lg = { 1, 0 };
		char buf[512];
		ssize_t got = 0;
		int fd;

		if (poll(&p, 1, 5000) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
			break;
		redials++;
		p = (struct pollfd){ fd, POLLIN, 0 };
		if (i < 3 && poll(&p, 1, 5000) == 1)
			got = read(fd, buf, sizeof(buf));	/* the HELLO */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		resets += got > 0;
	}
	usleep(100000);	/* the endpoint publishes its stats every ms */
	ok(resets == 3 && redials == 4, "reset: the primary dialed again after each of %d resets (%d dials)",
	   resets, redials);
	ok(pa.sh->rejects == 0 && count_lines(plog, "FT_REASON=io-error") == 0,
	   "reset: no frame counted as rejected (%llu), no io-error logged (%d)",
	   (unsigned long long)pa.sh->rejects, count_lines(plog, "FT_REASON=io-error"));
	ok(count_lines(plog, "peer closed the connection during the handshake") >= 3 &&
	   count_lines(plog, "ERRNO=104") >= 3,
	   "reset: each reset logged once as the peer closing the connection (ECONNRESET, %d lines)",
	   count_lines(plog, "ERRNO=104"));
	stop_child(pp);
	close(lfd);
	close(src);
}

int main(void)
{
	struct res r;

	signal(SIGPIPE, SIG_IGN);
	seed = tap_seed();
	ft_crypto_init();
	randombytes_buf(psk, sizeof(psk));
	if (!mkdtemp(dir))
		return 2;
	printf("# logs in %s\n", dir);

	struct scen clean = { .name = "clean", .proxy = true, .n = 50000, .secs = 30 };

	run(&clean, &r);
	ok(!r.bad && r.verified == clean.n && r.acked_src == clean.n,
	   "clean: %llu records through the proxy, byte-exact, all acked",
	   (unsigned long long)r.verified);
	ok(count_lines(r.blog, "FT_REASON=") == 0 && count_lines(r.plog, "FT_REASON=") == 0,
	   "clean: no rejection logged");

	fault("flip", PX_FLIP, "crc-mismatch");
	fault("forge", PX_FORGE, "auth-failed");
	fault("truncate", PX_TRUNCATE, "truncated-frame");
	fault("replay", PX_REPLAY, "replayed-frame");
	fault("replay-old-session", PX_XREPLAY, "auth-failed");
	fault("stale-epoch", PX_STALE, "stale-epoch");

	struct scen wk = { .name = "wrong-key", .wrong_key = true, .n = 1000, .secs = 2 };

	run(&wk, &r);
	ok(r.verified == 0 && r.acked_src == 0 && r.shb->records == 0,
	   "wrong key: nothing stored on the backup, nothing acked to the primary");
	ok(count_lines(r.plog, "FT_REASON=auth-failed") >= 1 &&
	   count_lines(r.blog, "authenticated session") == 0 &&
	   count_lines(r.plog, "authenticated session") == 0,
	   "wrong key: the primary refuses the backup's proof (%d times), no session on either side",
	   count_lines(r.plog, "FT_REASON=auth-failed"));
	rogue_client();
	reset_peer();

	struct scen st = { .name = "old-epoch-primary", .primary_epoch = 1, .backup_epoch = 2,
			   .n = 1000, .secs = 2 };

	run(&st, &r);
	ok(r.verified == 0 && r.acked_src == 0,
	   "epoch 1 primary vs epoch 2 backup: nothing stored, nothing acked");
	ok(count_lines(r.blog, "FT_REASON=stale-epoch") >= 1 &&
	   count_lines(r.plog, "FT_REASON=future-epoch") >= 1,
	   "both sides log why (backup: stale-epoch, primary: future-epoch)");

	/* re-protection's handshake: a seed request meets an offer, or is refused */
	struct scen sq = { .name = "seed-request-plain", .backup_flags = FT_HELLO_SEED_REQUEST,
			   .n = 100, .secs = 1 };

	run(&sq, &r);
	ok(r.verified == 0 && r.shp->sessions == 0 && r.shb->sessions == 0 &&
	   count_lines(r.plog, "FT_REASON=seed-refused") >= 1 &&
	   count_lines(r.blog, "FT_REASON=seed-refused") >= 1,
	   "a seed request to a node that offers none: no session, seed-refused on both sides");
	struct scen so = { .name = "seed-offer-plain", .primary_flags = FT_HELLO_SEED_OFFER,
			   .n = 100, .secs = 1 };

	run(&so, &r);
	ok(r.verified == 0 && r.shp->sessions == 0 && r.shb->sessions == 0 &&
	   count_lines(r.plog, "FT_REASON=seed-refused") >= 1 &&
	   count_lines(r.blog, "FT_REASON=seed-refused") >= 1,
	   "a seed offer to a node that asks for none: no session, seed-refused on both sides");
	struct scen sn = { .name = "seed-request-newer", .primary_flags = FT_HELLO_SEED_OFFER,
			   .backup_flags = FT_HELLO_SEED_REQUEST, .primary_epoch = 1, .backup_epoch = 2,
			   .n = 100, .secs = 1 };

	run(&sn, &r);
	ok(r.shp->sessions == 0 && count_lines(r.plog, "FT_REASON=future-epoch") >= 1,
	   "a seed request from a newer epoch: no session, the offerer is the fenced one (future-epoch)");
	struct scen sk = { .name = "seed-ok", .primary_flags = FT_HELLO_SEED_OFFER,
			   .backup_flags = FT_HELLO_SEED_REQUEST, .primary_epoch = 3, .backup_epoch = 2,
			   .n = 100, .secs = 1 };

	run(&sk, &r);
	ok(r.shp->sessions >= 1 && r.shb->sessions >= 1 && r.shp->rejects == 0 && r.shb->rejects == 0,
	   "a seed request from an older epoch meets an offer: a session (%llu, %llu), nothing rejected",
	   (unsigned long long)r.shp->sessions, (unsigned long long)r.shb->sessions);

	struct scen fc = { .name = "flow-control", .n = 30000, .backup_order = 16, .max_recs = 256,
			   .max_bytes = 64 << 10, .slow = 20, .secs = 60 };

	run(&fc, &r);
	ok(!r.bad && r.verified == fc.n && r.acked_src == fc.n,
	   "slow backup: all %llu records delivered", (unsigned long long)r.verified);
	ok(r.shp->max_unacked_records <= 256 && r.shp->max_unacked_bytes <= 64 << 10,
	   "slow backup: primary's unacked window stayed within 256 records / 64 KiB (max %llu, %llu B)",
	   (unsigned long long)r.shp->max_unacked_records,
	   (unsigned long long)r.shp->max_unacked_bytes);
	ok(r.shp->window_full > 0 && r.shb->ring_full > 0,
	   "slow backup: the window did fill (%llu times) and the replay ring pushed back (%llu times)",
	   (unsigned long long)r.shp->window_full, (unsigned long long)r.shb->ring_full);
	ok(r.shp->max_rss_kb < 16384, "slow backup: primary RSS stayed at %llu KiB (< 16 MiB)",
	   (unsigned long long)r.shp->max_rss_kb);
	return tap_done();
}
