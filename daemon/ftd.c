// SPDX-License-Identifier: GPL-2.0
/*
 * ftd — the kvm_ft daemon. One single-threaded sd-event loop runs the log
 * ring, the logging channel, heartbeats and failure detection, the role
 * state machine and the control socket (node.c, channel.c, status.c).
 *
 * systemd: Type=notify. READY=1 once the node runs, STATUS= a readable
 * line on every change (at most once a second otherwise), WATCHDOG=1 at half
 * of WatchdogSec when the unit sets it. SIGTERM and SIGINT stop it cleanly.
 *
 * Usage: ftd [-c /etc/ftd/ftd.conf] [--check-config]
 * Exit: 0 clean stop, 1 usage, 2 bad configuration, 3 start-up failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include "config.h"
#include "log.h"
#include "node.h"
#include "status.h"

struct ftd {
	sd_event *ev;
	struct ft_node *node;
	struct ft_status *status;
	uint64_t last_notify_us;
	char last_status[400];
};

static void notify_status(struct ftd *d, bool force)
{
	char line[400];

	if (!d->node)
		return;
	ft_node_status_line(d->node, line, sizeof(line));
	if (!force && !strcmp(line, d->last_status))
		return;
	strcpy(d->last_status, line);
	d->last_notify_us = ft_now_us();
	sd_notifyf(0, "STATUS=%s", line);
}

static void on_changed(void *ctx)
{
	notify_status(ctx, false);
}

static void on_event(void *ctx, const struct ft_event *e)
{
	struct ftd *d = ctx;

	if (d->status)
		ft_status_event(d->status, e);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *ud)
{
	uint64_t *interval = ud;

	sd_notify(0, "WATCHDOG=1");
	sd_event_source_set_time(s, usec + *interval);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct ftd *d = ud;

	(void)s;
	ft_info("received %s, stopping", strsignal((int)si->ssi_signo));
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	sd_event_exit(d->ev, 0);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ftd [-c CONFIG] [--check-config]\n"
		   "  -c, --config FILE   configuration (default /etc/ftd/ftd.conf)\n"
		   "      --check-config  validate the configuration and exit\n"
		   "  -h, --help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *path = "/etc/ftd/ftd.conf";
	struct ft_node_ops ops = { on_changed, on_event };
	struct ftd d = { 0 };
	struct ft_config cfg;
	char err[512];
	uint64_t wd_us = 0;
	bool check = false;
	sigset_t ss;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'C': check = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (ft_config_load(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "ftd: %s\n", err);
		return 2;
	}
	if (check) {
		printf("%s: valid (node %u, %s)\n", path, cfg.node_id, ft_role_name(cfg.role));
		return 0;
	}
	ft_log_init("ftd", cfg.node_id, cfg.log_level);
	if (ft_crypto_init()) {
		fprintf(stderr, "ftd: libsodium failed to initialise\n");
		return 3;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGCHLD);	/* ballot processes, reaped by sd-event */
	sigprocmask(SIG_BLOCK, &ss, NULL);
	ret = sd_event_default(&d.ev);
	if (ret >= 0)
		ret = sd_event_add_signal(d.ev, NULL, SIGTERM, on_signal, &d);
	if (ret >= 0)
		ret = sd_event_add_signal(d.ev, NULL, SIGINT, on_signal, &d);
	if (ret < 0) {
		fprintf(stderr, "ftd: sd-event: %s\n", strerror(-ret));
		return 3;
	}
	if (ft_status_new(d.ev, cfg.status_socket, &d.status, err, sizeof(err)) ||
	    ft_node_new(d.ev, &cfg, &ops, &d, &d.node, err, sizeof(err))) {
		ft_err("cannot start: %s", err);
		sd_notifyf(0, "STATUS=failed: %s", err);
		ft_status_free(d.status);
		sd_event_unref(d.ev);
		return 3;
	}
	ft_status_set_node(d.status, d.node);
	if (sd_watchdog_enabled(0, &wd_us) > 0 && wd_us) {
		wd_us /= 2;
		sd_event_source *wd;

		sd_event_add_time(d.ev, &wd, CLOCK_MONOTONIC, ft_now_us() + wd_us, 10000, on_watchdog, &wd_us);
		sd_event_source_set_enabled(wd, SD_EVENT_ON);
		sd_event_source_set_floating(wd, 1);
		sd_event_source_unref(wd);
	}
	notify_status(&d, true);
	sd_notify(0, "READY=1");
	ret = sd_event_loop(d.ev);
	ft_status_free(d.status);
	ft_node_free(d.node);
	sd_event_unref(d.ev);
	return ret < 0 ? 3 : 0;
}
