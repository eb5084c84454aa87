// SPDX-License-Identifier: GPL-2.0
/*
 * observer: the clients' view of a protected guest, on the real machine.
 * It reads the output stream of both test hosts (each host's ftvm writes
 * `out <n> <hash-hex16>` lines to a serial port that QEMU turns into a FIFO
 * here), timestamps every line on arrival and checks the invariants a client
 * of the pair must see:
 *
 *   - no gap: a new output is exactly one more than the highest so far;
 *   - no contradiction: a repeated number carries the hash it had before
 *     (a duplicate is allowed, as TCP would absorb; it is counted);
 *   - never two live: new numbers come from one host at a time; within one
 *     period (between two `mark` commands) the host emitting new numbers
 *     changes at most once — a second change means both hosts emit.
 *
 *   observer LOG CTL_IN CTL_OUT NAME=FIFO...
 *
 * Each FIFO is opened read-write so that a QEMU may die and come back. Every
 * line is printed on stdout ("<time> <host> out <n> <hash>") and logged to
 * LOG with the time in ms; a broken invariant prints "VIOLATION ...".
 * Commands, one per line on CTL_IN, each answered by one line on CTL_OUT:
 *
 *   mark LABEL T_MS     a new period starts (a failure injected at T_MS,
 *                       CLOCK_REALTIME ms): the figures below are relative
 *                       to it                                       -> ok
 *   note KEY VALUE      a figure measured elsewhere (detection time, lag),
 *                       printed with the report                     -> ok
 *   reset LABEL         a new guest starts (its numbers begin again): forget
 *                       the stream, start a period                  -> ok
 *   cut HOST            HOST's QEMU is dead: read what it wrote, then drop
 *                       its unfinished line (a kill lands mid-line; a
 *                       client's connection would be reset), counted as
 *                       cut, not noise, so its next life starts a
 *                       fresh line                                  -> ok
 *   report              "report label=L key=value ..." (see report())
 *   quit                                                            -> bye
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_HOSTS	4
#define LINE_MAX_	256

struct host {
	const char *name;
	int fd;
	char buf[LINE_MAX_];
	size_t have;
	uint64_t lines, new_outputs;
};

struct out {			/* output n as first seen */
	uint64_t hash;
	int64_t t_ms;
	int host;
	bool seen;
};

static struct host hosts[MAX_HOSTS];
static int nhosts;
static struct out *outs;	/* indexed by n - base */
static size_t outs_cap;
static uint64_t base, top;	/* outputs base..top seen; top == 0: none yet */
static int owner = -1;		/* host that emitted `top` */
static int64_t t_top;		/* when `top` arrived */
static FILE *logf;

/* The current period (since the last mark). */
static struct {
	char label[64];
	int64_t t_mark;
	uint64_t top_at_mark;
	int64_t t_top_at_mark;
	int owner_at_mark;
	uint64_t first_new;	/* first new number after the mark, 0: none */
	int64_t t_first_new;
	int first_new_host;
	unsigned int switches, dups;
	uint64_t takeover;	/* first new number from the host that took over */
	int64_t takeover_gap_ms, takeover_ms;
	int64_t max_gap_ms;	/* longest silence between two new outputs */
	uint64_t new_outputs;
	int64_t t_last_new;
	char notes[512];
} per;

static unsigned long violations, noise, cuts, dups_total, outputs_total;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	int64_t t = now_ms();
	time_t s = (time_t)(t / 1000);
	struct tm tm;
	va_list ap;

	gmtime_r(&s, &tm);
	printf("%02d:%02d:%02d.%03d ", tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % 1000));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	violations++;
	say("VIOLATION %s", msg);
	fprintf(logf, "%" PRId64 " VIOLATION %s\n", now_ms(), msg);
	fflush(logf);
}

static struct out *slot(uint64_t n)
{
	size_t i = (size_t)(n - base);

	if (i >= outs_cap) {
		size_t cap = outs_cap ? outs_cap : 4096;

		while (cap <= i)
			cap *= 2;
		outs = realloc(outs, cap * sizeof(*outs));
		if (!outs) {
			fprintf(stderr, "observer: out of memory\n");
			exit(1);
		}
		memset(outs + outs_cap, 0, (cap - outs_cap) * sizeof(*outs));
		outs_cap = cap;
	}
	return &outs[i];
}

static bool parse_out(const char *line, uint64_t *n, uint64_t *hash)
{
	char nbuf[24], hbuf[17];
	char *end;
	int len = 0;

	if (sscanf(line, "out %20[0-9] %16[0-9a-f]%n", nbuf, hbuf, &len) != 2 || line[len] ||
	    strlen(hbuf) != 16)
		return false;
	errno = 0;
	*n = strtoull(nbuf, &end, 10);
	if (errno || *end || *n == 0)
		return false;
	*hash = strtoull(hbuf, NULL, 16);
	return true;
}

static void output(int h, const char *line)
{
	int64_t t = now_ms();
	uint64_t n, hash;
	struct out *o;

	hosts[h].lines++;
	if (!parse_out(line, &n, &hash)) {
		noise++;
		fprintf(logf, "%" PRId64 " %s noise %s\n", t, hosts[h].name, line);
		return;
	}
	fprintf(logf, "%" PRId64 " %s %" PRIu64 " %016" PRIx64 "\n", t, hosts[h].name, n, hash);
	fflush(logf);
	say("%s out %" PRIu64 " %016" PRIx64, hosts[h].name, n, hash);

	if (!top) {
		base = n;
	} else if (n < base) {
		violation("%s: output %" PRIu64 " is before the first output %" PRIu64, hosts[h].name, n, base);
		return;
	} else if (n <= top) {
		o = slot(n);
		if (o->hash != hash)
			violation("%s: output %" PRIu64 " hash %016" PRIx64 " contradicts %016" PRIx64
				  " from %s", hosts[h].name, n, hash, o->hash, hosts[o->host].name);
		dups_total++;
		per.dups++;
		return;
	} else if (n != top + 1) {
		violation("%s: gap, output %" PRIu64 " after %" PRIu64, hosts[h].name, n, top);
	}
	o = slot(n);
	*o = (struct out){ .hash = hash, .t_ms = t, .host = h, .seen = true };
	if (owner >= 0 && owner != h) {
		per.switches++;
		if (per.switches == 1) {
			per.takeover = n;
			per.takeover_gap_ms = t - t_top;
			per.takeover_ms = t - per.t_mark;
		}
		say("new outputs now come from %s (were from %s)", hosts[h].name, hosts[owner].name);
		if (per.switches > 1)
			violation("both hosts emit new outputs in one period: %s took over again at %" PRIu64,
				  hosts[h].name, n);
	}
	if (top && t - t_top > per.max_gap_ms)
		per.max_gap_ms = t - t_top;
	owner = h;
	top = n;
	t_top = t;
	hosts[h].new_outputs++;
	outputs_total++;
	per.new_outputs++;
	per.t_last_new = t;
	if (!per.first_new) {
		per.first_new = n;
		per.t_first_new = t;
		per.first_new_host = h;
	}
}

static void mark(const char *label, int64_t t)
{
	memset(&per, 0, sizeof(per));
	snprintf(per.label, sizeof(per.label), "%s", label);
	per.t_mark = t;
	per.top_at_mark = top;
	per.t_top_at_mark = top ? t_top : 0;
	per.owner_at_mark = owner;
	say("--- %s", label);
}

/*
 * One line of key=value. outputs: distinct numbers seen; gap_ms: from the last output before the mark to the
 * first new one after it (what a client saw as silence); resume_ms: from the
 * mark to that first new output. takeover: the first new number from the
 * host that took over in this period, takeover_gap_ms: the silence between
 * the old host's last new output and it (the output gap of a failover),
 * takeover_ms: from the mark to it. -1 when there is none. max_gap_ms: the
 * longest silence between two new outputs in the period.
 */
static void report(FILE *o)
{
	const char *nm = per.owner_at_mark >= 0 ? hosts[per.owner_at_mark].name : "-";
	const char *cur = owner >= 0 ? hosts[owner].name : "-";

	fprintf(o, "report label=%s outputs=%lu top=%" PRIu64 " owner=%s owner_at_mark=%s"
		" top_at_mark=%" PRIu64 " new=%" PRIu64 " first_new=%" PRIu64 " first_new_host=%s"
		" gap_ms=%" PRId64 " resume_ms=%" PRId64 " takeover=%" PRIu64 " takeover_gap_ms=%" PRId64
		" takeover_ms=%" PRId64 " max_gap_ms=%" PRId64 " switches=%u dups=%u dups_total=%lu"
		" violations=%lu noise=%lu cut=%lu%s\n",
		per.label, outputs_total, top, cur, nm, per.top_at_mark, per.new_outputs,
		per.first_new, per.first_new ? hosts[per.first_new_host].name : "-",
		per.first_new && per.top_at_mark ? per.t_first_new - per.t_top_at_mark : -1,
		per.first_new ? per.t_first_new - per.t_mark : -1, per.takeover,
		per.switches ? per.takeover_gap_ms : -1, per.switches ? per.takeover_ms : -1, per.max_gap_ms, per.switches, per.dups, dups_total,
		violations, noise, cuts, per.notes);
	fflush(o);
}

static bool feed(int fd, char *buf, size_t *have, size_t cap, void (*fn)(char *, void *), void *ctx);
static void host_line(char *line, void *ctx);

/* HOST's QEMU is dead: what it wrote is all in its FIFO. */
static void cut(int h)
{
	struct host *x = &hosts[h];
	struct pollfd p = { .fd = x->fd, .events = POLLIN };

	while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
		if (!feed(x->fd, x->buf, &x->have, sizeof(x->buf), host_line, (void *)(intptr_t)h))
			break;
	if (!x->have)
		return;
	x->buf[x->have] = 0;
	cuts++;
	fprintf(logf, "%" PRId64 " %s cut %s\n", now_ms(), x->name, x->buf);
	fflush(logf);
	say("%s: unfinished line dropped: %s", x->name, x->buf);
	x->have = 0;
}

static int host_index(const char *name)
{
	for (int i = 0; i < nhosts; i++)
		if (!strcmp(hosts[i].name, name))
			return i;
	return -1;
}

static void command(char *line, FILE *reply)
{
	char a[64], b[64];
	long long t;

	if (sscanf(line, "mark %63s %lld", a, &t) == 2) {
		mark(a, t);
		fputs("ok\n", reply);
	} else if (sscanf(line, "reset %63s", a) == 1) {
		memset(outs, 0, outs_cap * sizeof(*outs));
		base = top = 0;
		owner = -1;
		say("=== new guest: %s", a);
		mark(a, now_ms());
		fputs("ok\n", reply);
	} else if (sscanf(line, "cut %63s", a) == 1 && host_index(a) >= 0) {
		cut(host_index(a));
		fputs("ok\n", reply);
	} else if (sscanf(line, "note %63s %63s", a, b) == 2 && !strchr(a, '=')) {
		size_t l = strlen(per.notes);

		snprintf(per.notes + l, sizeof(per.notes) - l, " %s=%s", a, b);
		say("%s: %s = %s", per.label, a, b);
		fputs("ok\n", reply);
	} else if (!strcmp(line, "report")) {
		report(reply);
		report(stdout);
		return;
	} else if (!strcmp(line, "quit")) {
		fputs("bye\n", reply);
		fflush(reply);
		exit(violations ? 1 : 0);
	} else {
		fprintf(reply, "error unknown command '%s'\n", line);
	}
	fflush(reply);
}

/* Split what arrived into lines; call fn on each (without '\r' or '\n'). */
static bool feed(int fd, char *buf, size_t *have, size_t cap, void (*fn)(char *, void *), void *ctx)
{
	ssize_t r = read(fd, buf + *have, cap - 1 - *have);
	char *nl;

	if (r < 0)
		return errno == EINTR || errno == EAGAIN;
	*have += (size_t)r;
	buf[*have] = 0;
	while ((nl = memchr(buf, '\n', *have))) {
		size_t n = (size_t)(nl - buf) + 1;

		*nl = 0;
		if (nl > buf && nl[-1] == '\r')
			nl[-1] = 0;
		fn(buf, ctx);
		memmove(buf, nl + 1, *have - n);
		*have -= n;
	}
	if (*have == cap - 1)
		*have = 0;	/* an over-long line is noise */
	return true;
}

static void host_line(char *line, void *ctx)
{
	if (*line)
		output((int)(intptr_t)ctx, line);
}

static void ctl_line(char *line, void *ctx)
{
	command(line, ctx);
}

static int open_fifo(const char *path)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "observer: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	char cbuf[LINE_MAX_];
	size_t chave = 0;
	FILE *reply;
	int ctl;

	if (argc < 5 || argc - 4 > MAX_HOSTS) {
		fprintf(stderr, "usage: observer LOG CTL_IN CTL_OUT NAME=FIFO... (at most %d)\n", MAX_HOSTS);
		return 2;
	}
	logf = fopen(argv[1], "a");
	if (!logf) {
		fprintf(stderr, "observer: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ctl = open_fifo(argv[2]);
	reply = fdopen(open_fifo(argv[3]), "w");
	for (int i = 4; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i]) {
			fprintf(stderr, "observer: '%s' is not NAME=FIFO\n", argv[i]);
			return 2;
		}
		*eq = 0;
		hosts[nhosts].name = argv[i];
		hosts[nhosts].fd = open_fifo(eq + 1);
		nhosts++;
	}
	mark("start", now_ms());

	for (;;) {
		struct pollfd p[MAX_HOSTS + 1];

		for (int i = 0; i < nhosts; i++)
			p[i] = (struct pollfd){ .fd = hosts[i].fd, .events = POLLIN };
		p[nhosts] = (struct pollfd){ .fd = ctl, .events = POLLIN };
		if (poll(p, (nfds_t)nhosts + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("observer: poll");
			return 1;
		}
		for (int i = 0; i < nhosts; i++)
			if (p[i].revents & POLLIN)
				feed(hosts[i].fd, hosts[i].buf, &hosts[i].have, sizeof(hosts[i].buf),
				     host_line, (void *)(intptr_t)i);
		if (p[nhosts].revents & POLLIN)
			feed(ctl, cbuf, &chave, sizeof(cbuf), ctl_line, reply);
	}
}
