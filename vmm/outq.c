// SPDX-License-Identifier: GPL-2.0
/*
 * Outputs of the guest: the vCPU thread pushes each completed output with
 * the seq of its record; the control thread writes them to --out, in
 * order, when the output rule allows (see ftvm_outq_release()).
 *
 * Line format (the observer parses exactly this): "out <n> <hash-hex16>\n",
 * n in decimal, the hash as 16 lower-case hex digits. Each line is written
 * with one write() and fsync'ed when --out takes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ftvm.h"

/* The backup keeps at most this many replayed outputs for GO_LIVE. */
#define KEEP_MAX	(1u << 16)

int ftvm_outq_init(struct ftvm_outq *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->efd < 0)
		return -errno;
	if (!path || !strcmp(path, "-")) {
		o->out_fd = STDOUT_FILENO;
	} else {
		o->out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
		if (o->out_fd < 0)
			return -errno;
	}
	/* Regular files are fsync'ed after each line; ttys and pipes cannot be. */
	o->out_sync = fsync(o->out_fd) == 0;
	return 0;
}

void ftvm_hist_add(struct ftvm_hist *h, uint64_t v)
{
	unsigned int i;

	if (v < 64) {
		i = (unsigned int)v;
	} else {
		unsigned int e = 63 - __builtin_clzll(v);	/* >= 6 */

		i = 64 + (e - 6) * FTVM_HIST_SUB +
		    (unsigned int)((v >> (e - 5)) & (FTVM_HIST_SUB - 1));
		if (i >= FTVM_HIST_N)
			i = FTVM_HIST_N - 1;
	}
	h->b[i]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

/* Lower bound of the bucket holding the p-th fraction of the values. */
uint64_t ftvm_hist_pct(const struct ftvm_hist *h, double p)
{
	uint64_t want = (uint64_t)(p * (double)h->count), seen = 0;

	if (!h->count)
		return 0;
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned int i = 0; i < FTVM_HIST_N; i++) {
		seen += h->b[i];
		if (seen > want) {
			unsigned int e, s;

			if (i < 64)
				return i;
			e = (i - 64) / FTVM_HIST_SUB + 6;
			s = (i - 64) % FTVM_HIST_SUB;
			return (1ULL << e) + ((uint64_t)s << (e - 5));
		}
	}
	return h->max;
}

void ftvm_outq_push(struct ftvm *v, const struct ftvm_output *out)
{
	struct ftvm_outq *o = &v->out;
	uint64_t one = 1;

	pthread_mutex_lock(&o->lock);
	if (o->len == o->cap) {
		size_t ncap = o->cap ? 2 * o->cap : 1024;
		struct ftvm_output *nq = malloc(ncap * sizeof(*nq));

		if (!nq) {
			pthread_mutex_unlock(&o->lock);
			ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "out of memory for outputs");
			return;
		}
		for (size_t i = 0; i < o->len; i++)
			nq[i] = o->q[(o->head + i) % o->cap];
		free(o->q);
		o->q = nq;
		o->cap = ncap;
		o->head = 0;
	}
	o->q[(o->head + o->len) % o->cap] = *out;
	o->len++;
	pthread_mutex_unlock(&o->lock);
	if (write(o->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ftvm_log("eventfd write: %s", strerror(errno));
}

size_t ftvm_outq_len(struct ftvm *v)
{
	size_t n;

	pthread_mutex_lock(&v->out.lock);
	n = v->out.len;
	pthread_mutex_unlock(&v->out.lock);
	return n;
}

static void emit(struct ftvm *v, const struct ftvm_output *out, uint64_t now, bool by_ack)
{
	struct ftvm_outq *o = &v->out;
	char line[64];
	int len = snprintf(line, sizeof(line), "out %llu %016llx\n",
			   (unsigned long long)out->n, (unsigned long long)out->hash);
	ssize_t w;

	do {
		w = write(o->out_fd, line, len);
	} while (w < 0 && errno == EINTR);
	if (w != len) {
		/* The observer would see a gap: there is no way to go on. */
		ftvm_log("writing output %llu: %s", (unsigned long long)out->n,
			 w < 0 ? strerror(errno) : "short write");
		exit(FTVM_EXIT_VM);
	}
	if (o->out_sync && fsync(o->out_fd)) {
		ftvm_log("fsync of the output: %s", strerror(errno));
		exit(FTVM_EXIT_VM);
	}
	if (o->last_n && out->n != o->last_n + 1)
		ftvm_log("output %llu follows %llu", (unsigned long long)out->n,
			 (unsigned long long)o->last_n);
	o->last_n = out->n;
	o->emitted++;
	if (out->seq != FTVM_SEQ_NONE && out->seq > o->emitted_seq)
		o->emitted_seq = out->seq;
	ftvm_hist_add(by_ack ? &o->delay : &o->delay_live, (now - out->t_ns) / 1000);
}

uint64_t ftvm_outq_release(struct ftvm *v, uint64_t acked)
{
	struct ftvm_outq *o = &v->out;
	int state = v->state;
	uint64_t top = 0;

	pthread_mutex_lock(&o->lock);
	if (state == FTVM_BACKUP) {
		while (o->len > KEEP_MAX) {
			struct ftvm_output *out = &o->q[o->head];

			if (out->seq != FTVM_SEQ_NONE && out->seq > o->dropped_max_seq)
				o->dropped_max_seq = out->seq;
			o->dropped++;
			o->head = (o->head + 1) % o->cap;
			o->len--;
		}
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	while (o->len) {
		struct ftvm_output *out = &o->q[o->head];

		/*
		 * The primary releases an output once the backup has its
		 * record; an output without a record (the module went LIVE
		 * under us) waits for GO_LIVE like everything behind it.
		 */
		if (state == FTVM_PRIMARY && (out->seq == FTVM_SEQ_NONE || out->seq > acked))
			break;
		if (v->max_outputs && o->last_n >= v->max_outputs)
			break;	/* --outputs N: nothing after output N */
		emit(v, out, ftvm_now_ns(), state == FTVM_PRIMARY);
		if (out->seq != FTVM_SEQ_NONE && out->seq > top)
			top = out->seq;
		o->head = (o->head + 1) % o->cap;
		o->len--;
	}
	pthread_mutex_unlock(&o->lock);
	return top;
}

void ftvm_outq_go_live(struct ftvm *v, uint64_t emitted_seq, uint64_t next_seq)
{
	struct ftvm_outq *o = &v->out;
	size_t dup = 0, unmade = 0, k = 0;

	pthread_mutex_lock(&o->lock);
	/*
	 * Replayed outputs come from the ring reader, outputs made after the
	 * module went LIVE from the vCPU thread: merge them by n (insertion
	 * sort, the two runs are each in order), keep only what must go out.
	 */
	for (size_t i = 0; i < o->len; i++) {
		struct ftvm_output out = o->q[(o->head + i) % o->cap];
		size_t j;

		if (out.seq != FTVM_SEQ_NONE && out.seq <= emitted_seq) {
			dup++;
			continue;
		}
		if (out.seq != FTVM_SEQ_NONE && out.seq >= next_seq) {
			unmade++;
			continue;
		}
		for (j = k; j > 0 && o->q[(o->head + j - 1) % o->cap].n > out.n; j--)
			o->q[(o->head + j) % o->cap] = o->q[(o->head + j - 1) % o->cap];
		o->q[(o->head + j) % o->cap] = out;
		k++;
	}
	o->len = k;
	if ((o->dropped && o->dropped_max_seq > emitted_seq) || v->rlog.lost)
		ftvm_log("GO_LIVE: replayed outputs after seq %llu were lost (%s): the output "
			 "stream may have a gap", (unsigned long long)emitted_seq,
			 v->rlog.lost ? "the ring reader fell behind" : "more than the kept maximum");
	ftvm_log("GO_LIVE: %zu replayed outputs were emitted by the old primary (seq <= %llu), "
		 "%zu never replayed, %zu to re-emit or new", dup, (unsigned long long)emitted_seq,
		 unmade, k);
	pthread_mutex_unlock(&o->lock);
}

size_t ftvm_outq_swap(struct ftvm *v)
{
	struct ftvm_outq *o = &v->out;
	size_t n;

	pthread_mutex_lock(&o->lock);
	n = o->len;
	o->head = o->len = 0;
	o->emitted_seq = o->told = 0;
	o->dropped = o->dropped_max_seq = 0;
	pthread_mutex_unlock(&o->lock);
	return n;
}
