// SPDX-License-Identifier: GPL-2.0
/*
 * ftctl — query and steer ftd over its control socket (status.h).
 *
 *   ftctl [options] [COMMAND [ARGS]]       no command = status
 *
 * Options: -s, --socket PATH (default $FTD_SOCKET or /run/ftd/ftd.sock),
 *          -j, --json, --color=auto|always|never, -h, --help.
 *
 * Exit codes:
 *   0  done
 *   1  usage error
 *   2  ftd is not running (no socket, or nobody listening on it)
 *   3  permission denied on the socket (it is root-only)
 *   4  ftd refused the request (the message says why)
 *   5  ftd answered something this ftctl does not understand
 *   6  (vms) the kvm_ft module is not loaded
 *   failover only (it waits for the result):
 *   7  refused: no peer (the channel is down or the peer was declared dead)
 *   8  refused: this node is not the primary of a primary+backup pair (on
 *      the backup the message names the primary to ask)
 *   9  refused: a planned failover is already running
 *   10 started, then abandoned (timeout, refusal by the backup, a VMM that
 *      did not pause, the peer lost mid-way; the message says why); the
 *      pair runs on in its old roles, or the ballot decided
 *   4  refused for another reason (no VM attached, no shared disk)
 *
 * format-disk and disk work on the shared disk directly, without ftd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <stdarg.h>
#include <sys/random.h>
#include "arbiter.h"
#include "genl.h"
#include <linux/kvm_ft.h>

enum { EX_OK, EX_USAGE, EX_NOFTD, EX_PERM, EX_REFUSED, EX_PROTO, EX_NOMOD, EX_NOPEER, EX_NOTPAIR,
       EX_RUNNING, EX_ABANDONED };

static const char *sock_path = "/run/ftd/ftd.sock";
static bool json, color;

struct kv {
	char *k, *v;
};

struct reply {
	struct kv kv[128];
	int n;
};

static int dial(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ftctl: socket path too long: %s\n", sock_path);
		return -EX_USAGE;
	}
	strcpy(sa.sun_path, sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "ftctl: permission denied on %s: ftd's socket is root-only\n", sock_path);
			return -EX_PERM;
		}
		fprintf(stderr, "ftctl: ftd is not running (%s: %s); `ftctl vms` asks the module directly\n",
			sock_path, strerror(e));
		return -EX_NOFTD;
	}
	return fd;
}

/* Send one request; read the whole answer into a NUL-terminated buffer. */
static int ask(const char *req, char **out)
{
	size_t len = 0, cap = 8192;
	char *buf = malloc(cap);
	int fd = dial();
	ssize_t n;

	if (fd < 0) {
		free(buf);
		return -fd;
	}
	if (write(fd, req, strlen(req)) < 0 || write(fd, "\n", 1) < 0) {
		fprintf(stderr, "ftctl: cannot send to ftd: %s\n", strerror(errno));
		close(fd);
		free(buf);
		return EX_NOFTD;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 1024)
			buf = realloc(buf, cap *= 2);
	}
	close(fd);
	buf[len] = 0;
	*out = buf;
	return EX_OK;
}

static void parse(char *buf, struct reply *r)
{
	char *save = NULL;

	r->n = 0;
	for (char *line = strtok_r(buf, "\n", &save); line && r->n < 128; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq = 0;
		r->kv[r->n++] = (struct kv){ line, eq + 1 };
	}
}

static const char *get(const struct reply *r, const char *k)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->kv[i].k, k))
			return r->kv[i].v;
	return NULL;
}

static unsigned long long num(const struct reply *r, const char *k)
{
	const char *v = get(r, k);

	return v ? strtoull(v, NULL, 10) : 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static bool is_num(const char *s)
{
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void print_json(const struct reply *r)
{
	printf("{");
	for (int i = 0; i < r->n; i++) {
		printf(i ? ", " : "");
		json_str(r->kv[i].k);
		printf(": ");
		if (is_num(r->kv[i].v))
			printf("%s", r->kv[i].v);
		else
			json_str(r->kv[i].v);
	}
	printf("}\n");
}

static const char *human_bytes(unsigned long long b, char *buf, size_t len)
{
	if (b >= 1 << 20)
		snprintf(buf, len, "%.1f MiB", b / 1048576.0);
	else if (b >= 1 << 10)
		snprintf(buf, len, "%.1f KiB", b / 1024.0);
	else
		snprintf(buf, len, "%llu B", b);
	return buf;
}

__attribute__((format(printf, 1, 2)))
static void warn_line(const char *fmt, ...)
{
	va_list ap;

	printf("%s!! ", color ? "\033[1;31m" : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("%s\n", color ? "\033[0m" : "");
}

static int refused(const struct reply *r)
{
	const char *res = get(r, "result");

	if (res && !strcmp(res, "error")) {
		fprintf(stderr, "ftctl: ftd refused: %s\n", get(r, "message") ? get(r, "message") : "?");
		return EX_REFUSED;
	}
	return EX_OK;
}

static int cmd_status(int argc, char **argv)
{
	struct reply r;
	char *buf, b1[32], b2[32], b3[32];
	const char *role, *ps, *ch;
	int ret;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "ftctl: status takes no arguments\n");
		return EX_USAGE;
	}
	if ((ret = ask("status", &buf)))
		return ret;
	parse(buf, &r);
	if ((ret = refused(&r)) || !(role = get(&r, "role"))) {
		if (!ret)
			fprintf(stderr, "ftctl: unexpected answer from ftd\n");
		free(buf);
		return ret ? ret : EX_PROTO;
	}
	if (json) {
		print_json(&r);
		free(buf);
		return EX_OK;
	}
	ps = get(&r, "peer_state");
	ch = get(&r, "channel");
	printf("ftd node %llu: %s%s%s, epoch %llu\n", num(&r, "node_id"), color ? "\033[1m" : "", role,
	       color ? "\033[0m" : "", num(&r, "epoch"));
	/* What is wrong comes first. */
	if (!strcmp(role, "halted"))
		warn_line("halted: %s; it emits nothing", get(&r, "halt_reason") ? get(&r, "halt_reason") :
			  "this node lost arbitration or was fenced");
	if (num(&r, "ring_error"))
		warn_line("the VM's ring is in error %llu (the VM is stopped)", num(&r, "ring_error"));
	if (get(&r, "vmm") && !strcmp(get(&r, "vmm"), "lost"))
		warn_line("the VMM of %s went away: the local VM is gone", get(&r, "vm_name"));
	if (!strcmp(role, "arbitrating"))
		warn_line("arbitration in progress: %s (%llu attempts)", get(&r, "arbitration"),
			  num(&r, "arbitration_attempts"));
	if (ps && !strcmp(ps, "dead"))
		warn_line("peer %s declared DEAD %llu ms ago: no traffic for the timeout (%llu ms)",
			  get(&r, "peer"), num(&r, "peer_dead_ms"), num(&r, "peer_timeout_ms"));
	else if (ps && !strcmp(ps, "never-seen"))
		warn_line("peer %s never seen: not protected yet", get(&r, "peer"));
	else if (ch && strcmp(ch, "up"))
		warn_line("channel to %s is %s (%llu sessions so far)", get(&r, "peer"), ch,
			  num(&r, "sessions"));
	if (num(&r, "rejects"))
		warn_line("%llu frames rejected, last for %s (details: ftctl events)", num(&r, "rejects"),
			  get(&r, "last_reject") ? get(&r, "last_reject") : "?");
	if (get(&r, "failover") && strcmp(get(&r, "failover"), "idle"))
		warn_line("planned failover in progress: %s, paused at seq %llu, for %llu ms",
			  get(&r, "failover"), num(&r, "failover_seq"), num(&r, "failover_elapsed_ms"));
	if (get(&r, "sync_waiting_for"))
		warn_line("re-protection %s: %llu of %llu bytes (%llu%%) in %llu ms; waiting for %s",
			  get(&r, "sync"), num(&r, "sync_bytes"), num(&r, "sync_total"),
			  num(&r, "sync_total") ? num(&r, "sync_bytes") * 100 / num(&r, "sync_total") : 0,
			  num(&r, "sync_elapsed_ms"), get(&r, "sync_waiting_for"));
	if (num(&r, "lag_records") * 2 > num(&r, "max_lag_records"))
		warn_line("backup lags %llu records (window %llu)", num(&r, "lag_records"),
			  num(&r, "max_lag_records"));
	snprintf(b1, sizeof(b1), get(&r, "heartbeat_age_ms") ? "%llu ms ago" : "none yet",
		 num(&r, "heartbeat_age_ms"));
	printf("  peer         node %llu at %s, channel %s, heartbeat %s (every %llu ms, dead after %llu ms)\n",
	       num(&r, "peer_node"), get(&r, "peer"), ch ? ch : "?", b1,
	       num(&r, "heartbeat_interval_ms"), num(&r, "peer_timeout_ms"));
	printf("  log          seq %llu, acked %llu, lag %llu records / %s / %llu ms (window %llu records / %s)\n",
	       num(&r, "log_seq"), num(&r, "acked_seq"), num(&r, "lag_records"),
	       human_bytes(num(&r, "lag_bytes"), b1, sizeof(b1)), num(&r, "lag_ms"),
	       num(&r, "max_lag_records"), human_bytes(num(&r, "max_lag_bytes"), b2, sizeof(b2)));
	printf("  bandwidth    %s/s, %llu records/s; ack rtt %llu us, heartbeat rtt %llu us\n",
	       human_bytes(num(&r, "bandwidth_bytes_per_s"), b3, sizeof(b3)),
	       num(&r, "bandwidth_records_per_s"), num(&r, "ack_rtt_us"), num(&r, "heartbeat_rtt_us"));
	printf("  channel      %llu sessions, %llu rejected, %llu window-full stalls, max heartbeat gap %llu ms\n",
	       num(&r, "sessions"), num(&r, "rejects"), num(&r, "window_full"), num(&r, "max_heartbeat_gap_ms"));
	printf("  arbitration  %s (shared disk %s)\n", get(&r, "arbitration"), get(&r, "shared_disk"));
	if (get(&r, "vmm") && !strcmp(get(&r, "vmm"), "off"))
		printf("  vm           none (a ring file), ring seq %llu, consumed %llu\n",
		       num(&r, "ring_seq"), num(&r, "ring_consumed"));
	else if (get(&r, "vmm"))
		printf("  vm           %s: vmm %s, mode %s (%s), ring seq %llu, consumed %llu, lag %llu; "
		       "acked %llu, emitted %llu, peer emitted %llu%s%s\n",
		       get(&r, "vm_name")[0] ? get(&r, "vm_name") : "-", get(&r, "vmm"), get(&r, "vm_mode"),
		       get(&r, "vm_ring"), num(&r, "ring_seq"), num(&r, "ring_consumed"), num(&r, "ring_lag"),
		       num(&r, "vmm_acked_seq"), num(&r, "emitted_seq"), num(&r, "peer_emitted_seq"),
		       strcmp(get(&r, "go_live"), "none") ? "; go-live " : "",
		       strcmp(get(&r, "go_live"), "none") ? get(&r, "go_live") : "");
	if (num(&r, "failover_done"))
		printf("  failover     last: %s, %llu ms, paused at seq %llu, epoch %llu (%llu asked or taken)\n",
		       get(&r, "failover_last"), num(&r, "failover_last_ms"), num(&r, "failover_last_seq"),
		       num(&r, "failover_last_epoch"), num(&r, "failover_attempts"));
	if (num(&r, "sync_done"))
		printf("  sync         last: %s, %s in %llu ms (%llu started)\n", get(&r, "sync_last"),
		       human_bytes(num(&r, "sync_last_bytes"), b1, sizeof(b1)), num(&r, "sync_last_ms"),
		       num(&r, "sync_attempts"));
	free(buf);
	return EX_OK;
}

/* Asks for a planned failover, then follows status until its result is in. */
static int cmd_failover(int argc, char **argv)
{
	unsigned long long attempt;
	struct reply r;
	char *buf;
	int ret;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "ftctl: failover takes no arguments\n");
		return EX_USAGE;
	}
	if ((ret = ask("failover", &buf)))
		return ret;
	parse(buf, &r);
	if (get(&r, "result") && !strcmp(get(&r, "result"), "error")) {
		long e = (long)num(&r, "errno");

		fprintf(stderr, "ftctl: failover refused: %s\n", get(&r, "message") ? get(&r, "message") : "?");
		free(buf);
		return e == ENOTCONN ? EX_NOPEER : e == EPERM ? EX_NOTPAIR : e == EALREADY ? EX_RUNNING :
		       EX_REFUSED;
	}
	if (!get(&r, "result") || strcmp(get(&r, "result"), "started") || !(attempt = num(&r, "attempt"))) {
		fprintf(stderr, "ftctl: unexpected answer from ftd\n");
		free(buf);
		return EX_PROTO;
	}
	free(buf);
	/* ftd bounds every step (failover_timeout); this only guards against a wedged ftd */
	for (int i = 0; i < 6000; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if ((ret = ask("status", &buf))) {
			fprintf(stderr, "ftctl: ftd went away during the failover\n");
			return ret;
		}
		parse(buf, &r);
		if (num(&r, "failover_done") >= attempt) {
			bool ok = !strcmp(get(&r, "failover_last") ? get(&r, "failover_last") : "", "swapped");

			if (json) {
				printf("{\"result\": \"%s\", \"why\": ", ok ? "swapped" : "abandoned");
				json_str(get(&r, "failover_last"));
				printf(", \"role\": \"%s\", \"epoch\": %llu, \"ms\": %llu, \"seq\": %llu}\n",
				       get(&r, "role"), num(&r, "epoch"), num(&r, "failover_last_ms"),
				       num(&r, "failover_last_seq"));
			} else if (ok)
				printf("failover done: this node is now %s in epoch %llu (took %llu ms, the VM paused "
				       "at seq %llu)\n", get(&r, "role"), num(&r, "epoch"),
				       num(&r, "failover_last_ms"), num(&r, "failover_last_seq"));
			else
				fprintf(stderr, "ftctl: failover %s after %llu ms; this node is %s in epoch %llu\n",
					get(&r, "failover_last"), num(&r, "failover_last_ms"), get(&r, "role"),
					num(&r, "epoch"));
			free(buf);
			return ok ? EX_OK : EX_ABANDONED;
		}
		free(buf);
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "ftctl: no failover result from ftd after 120 s\n");
	return EX_ABANDONED;
}

static int cmd_events(int argc, char **argv)
{
	bool follow = argc > 1 && (!strcmp(argv[1], "--follow") || !strcmp(argv[1], "-f"));
	char line[1024];
	FILE *f;
	int fd;

	if (argc > 2 || (argc == 2 && !follow)) {
		fprintf(stderr, "ftctl: usage: events [--follow]\n");
		return EX_USAGE;
	}
	fd = dial();
	if (fd < 0)
		return -fd;
	dprintf(fd, follow ? "events follow\n" : "events\n");
	f = fdopen(fd, "r");
	while (fgets(line, sizeof(line), f)) {
		unsigned long long seq, ms;
		int prio, off = 0;

		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "%llu %llu %d %n", &seq, &ms, &prio, &off) != 3 || !off) {
			fclose(f);
			fprintf(stderr, "ftctl: unexpected answer from ftd\n");
			return EX_PROTO;
		}
		if (json) {
			printf("{\"seq\": %llu, \"time_ms\": %llu, \"priority\": %d, \"message\": ", seq, ms, prio);
			json_str(line + off);
			printf("}\n");
		} else {
			time_t t = (time_t)(ms / 1000);
			char ts[32];

			strftime(ts, sizeof(ts), "%F %T", localtime(&t));
			printf("%s%s.%03llu %s%s\n", color && prio <= 4 ? "\033[1;31m" : "", ts, ms % 1000,
			       line + off, color && prio <= 4 ? "\033[0m" : "");
		}
		fflush(stdout);
	}
	fclose(f);
	return EX_OK;
}

static int cmd_format_disk(int argc, char **argv)
{
	uint8_t uuid[16];
	unsigned int first = 1;
	int ret;

	if (argc == 4 && !strcmp(argv[2], "--first-primary") && (!strcmp(argv[3], "1") || !strcmp(argv[3], "2")))
		first = (unsigned int)(argv[3][0] - '0');
	else if (argc != 2) {
		fprintf(stderr, "ftctl: usage: format-disk PATH [--first-primary 1|2]\n");
		return EX_USAGE;
	}
	if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid)) {
		fprintf(stderr, "ftctl: getrandom: %s\n", strerror(errno));
		return EX_REFUSED;
	}
	ret = ft_arb_format(argv[1], uuid, 0, first);
	if (ret) {
		fprintf(stderr, "ftctl: cannot format %s: %s\n", argv[1], strerror(-ret));
		return EX_REFUSED;
	}
	printf("formatted %s: epoch 1, node %u primary\n", argv[1], first);
	return EX_OK;
}

static int cmd_disk(int argc, char **argv)
{
	struct ft_arb *a;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "ftctl: usage: disk PATH\n");
		return EX_USAGE;
	}
	ret = ft_arb_open(argv[1], 0, &a);
	if (ret) {
		fprintf(stderr, "ftctl: cannot open %s: %s\n", argv[1], strerror(-ret));
		return EX_REFUSED;
	}
	ret = ft_arb_dump(a, stdout);
	ft_arb_close(a);
	return ret ? EX_REFUSED : EX_OK;
}

static void print_vm(void *ctx, const struct ft_genl_vm *vm)
{
	static const char *const modes[] = { "?", "record", "replay", "live" };

	(void)ctx;
	if (json)
		printf("{\"vm_id\": %u, \"pid\": %u, \"mode\": \"%s\", \"next_seq\": %llu, "
		       "\"acked_seq\": %llu, \"producer\": %llu, \"consumer\": %llu, "
		       "\"data_size\": %llu, \"ring_waits\": %llu, \"error\": %u, \"flags\": %u}\n",
		       vm->id, vm->pid, modes[vm->mode <= 3 ? vm->mode : 0],
		       (unsigned long long)vm->next_seq, (unsigned long long)vm->acked_seq,
		       (unsigned long long)vm->producer, (unsigned long long)vm->consumer,
		       (unsigned long long)vm->data_size, (unsigned long long)vm->ring_waits,
		       vm->error, vm->flags);
	else
		printf("%s vm %u (pid %u): %s, next seq %llu, acked %llu, ring %llu/%llu bytes used, "
		       "%llu waits%s\n", vm->error ? "!!" : "  ", vm->id, vm->pid,
		       modes[vm->mode <= 3 ? vm->mode : 0], (unsigned long long)vm->next_seq,
		       (unsigned long long)vm->acked_seq,
		       (unsigned long long)(vm->producer - vm->consumer), (unsigned long long)vm->data_size,
		       (unsigned long long)vm->ring_waits, vm->error ? ", RING ERROR" : "");
}

/* Straight from the module over generic netlink: works without ftd. */
static int cmd_vms(int argc, char **argv)
{
	int ret;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "ftctl: vms takes no arguments\n");
		return EX_USAGE;
	}
	ret = ft_genl_list_vms(print_vm, NULL);
	if (ret == -ENOENT) {
		fprintf(stderr, "ftctl: the kvm_ft module is not loaded (no \"%s\" generic netlink family)\n",
			KVM_FT_GENL_NAME);
		return EX_NOMOD;
	}
	if (ret < 0) {
		fprintf(stderr, "ftctl: generic netlink: %s\n", strerror(-ret));
		return EX_PROTO;
	}
	if (!ret && !json)
		printf("no VM attached to kvm_ft\n");
	return EX_OK;
}

static int cmd_help(int argc, char **argv);

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "status", cmd_status, "role, epoch, peer, heartbeat, log/acked/lag, bandwidth, arbitration" },
	{ "failover", cmd_failover, "planned failover: swap primary and backup" },
	{ "events", cmd_events, "ftd's recent events; --follow keeps streaming new ones" },
	{ "vms", cmd_vms, "VMs attached to kvm_ft, from the module itself (works without ftd)" },
	{ "format-disk", cmd_format_disk, "PATH [--first-primary N]: lay out a shared arbitration disk" },
	{ "disk", cmd_disk, "PATH: print the arbitration records on a shared disk" },
	{ "help", cmd_help, "this text" },
};

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("usage: ftctl [-s SOCKET] [-j|--json] [--color=auto|always|never] [COMMAND]\n\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		printf("  %-12s %s\n", cmds[i].name, cmds[i].help);
	printf("\nWithout a command: status. Socket: $FTD_SOCKET or /run/ftd/ftd.sock.\n"
	       "Exit: 0 ok, 1 usage, 2 ftd not running, 3 permission denied,\n"
	       "      4 ftd refused the request, 5 unexpected answer, 6 kvm_ft module not loaded.\n");
	return EX_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "color", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *colormode = "auto";
	char *def[] = { "status", NULL };
	int opt;

	if (getenv("FTD_SOCKET"))
		sock_path = getenv("FTD_SOCKET");
	/* '+': options end at the command, whose own options follow it */
	while ((opt = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock_path = optarg; break;
		case 'j': json = true; break;
		case 'C': colormode = optarg; break;
		case 'h': return cmd_help(0, NULL);
		default: return EX_USAGE;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (optind == argc) {
		argc = 1;
		argv = def;
	} else {
		argc -= optind;
		argv += optind;
	}
	/* global options are also accepted after the command */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j") ||
		    !strncmp(argv[i], "--color=", 8)) {
			if (argv[i][2] == 'c')
				colormode = argv[i] + 8;
			else
				json = true;
			memmove(&argv[i], &argv[i + 1], sizeof(char *) * (size_t)(argc - i));
			argc--;
			i--;
		}
	if (!strcmp(colormode, "always"))
		color = true;
	else if (!strcmp(colormode, "auto"))
		color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	else if (strcmp(colormode, "never")) {
		fprintf(stderr, "ftctl: --color takes auto, always or never\n");
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[0], cmds[i].name))
			return cmds[i].fn(argc, argv);
	fprintf(stderr, "ftctl: unknown command '%s' (try ftctl help)\n", argv[0]);
	return EX_USAGE;
}
