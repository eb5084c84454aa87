// SPDX-License-Identifier: GPL-2.0
/* ftd.conf parsing: a full file, the defaults, and one clear error per bad value. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include "config.h"
#include "tap.h"

#define BASE "node_id = 1\nrole = primary\nlisten = 127.0.0.1:7000\npeer = [::1]:7001\n" \
	     "key_file = /etc/ftd/key\nring = file:/var/lib/ftd/ring\n"

static void bad(const char *extra, const char *want)
{
	char text[1024], err[512] = "";
	struct ft_config c;
	int ret;

	snprintf(text, sizeof(text), "%s%s", BASE, extra);
	ret = ft_config_parse(text, "t.conf", &c, err, sizeof(err));
	ok(ret < 0 && strstr(err, want), "refused %.*s: %s", (int)strcspn(extra, "\n"), extra, err);
}

int main(void)
{
	struct ft_config c;
	char err[512] = "";
	int ret;

	ret = ft_config_parse(BASE "# comment\n\nheartbeat_interval = 50ms\npeer_timeout = 2s\n"
			      "max_lag_bytes = 8M\nmax_lag_records = 1024\nshared_disk = /dev/vdb\n"
			      "epoch = 7  # trailing comment\nlog_level = debug\nstatus_socket = /tmp/s\n",
			      "t.conf", &c, err, sizeof(err));
	ok(ret == 0, "full file parses (%s)", err);
	ok(c.node_id == 1 && c.role == FT_ROLE_PRIMARY && c.epoch == 7, "node, role, epoch");
	ok(c.heartbeat_us == 50000 && c.peer_timeout_us == 2000000 && c.backup_delay_us == 1000000,
	   "durations, and backup_delay defaults to peer_timeout/2");
	ok(c.max_lag_bytes == 8u << 20 && c.max_lag_records == 1024, "sizes");
	ok(c.listen.ss_family == AF_INET && ntohs(((struct sockaddr_in *)&c.listen)->sin_port) == 7000 &&
	   c.peer.ss_family == AF_INET6 && ntohs(((struct sockaddr_in6 *)&c.peer)->sin6_port) == 7001,
	   "IPv4 and IPv6 addresses");
	ok(!strcmp(c.ring, "/var/lib/ftd/ring") && !strcmp(c.shared_disk, "/dev/vdb") &&
	   !strcmp(c.status_socket, "/tmp/s"), "paths");

	ret = ft_config_parse(BASE, "t.conf", &c, err, sizeof(err));
	ok(ret == 0 && c.heartbeat_us == 100000 && c.peer_timeout_us == 500000 &&
	   c.max_lag_records == 65536 && c.max_lag_bytes == 4u << 20 && c.epoch == 1 &&
	   !strcmp(c.status_socket, "/run/ftd/ftd.sock") && c.ring_order == 20 &&
	   c.go_live_timeout_us == 10000000,
	   "defaults: heartbeat 100 ms, timeout 500 ms, window 64Ki records / 4 MiB, go-live timeout 10 s");
	ret = ft_config_parse(BASE "go_live_timeout = 2s\n", "t.conf", &c, err, sizeof(err));
	ok(ret == 0 && c.go_live_timeout_us == 2000000, "go_live_timeout = 2s (%s)", err);

	bad("node_id = 3\n", "t.conf:7: node_id = '3' is invalid: expected 1 or 2");
	bad("role = boss\n", "expected primary or backup");
	bad("peer = 127.0.0.1\n", "peer = '127.0.0.1' is invalid");
	bad("peer = 127.0.0.1:99999\n", "is invalid");
	bad("peer = example.com:7000\n", "numeric address");
	bad("key_file = relative\n", "absolute path");
	bad("ring = /no/scheme\n", "file:");
	bad("heartbeat_interval = 1ms\n", "10ms..10s");
	bad("heartbeat_interval = fast\n", "10ms..10s");
	bad("peer_timeout = 200ms\n", "at least 3 heartbeat intervals");
	bad("max_lag_bytes = 1K\n", "32K..1G");
	bad("max_lag_bytes = 4X\n", "32K..1G");
	bad("ring_order = 30\n", "16..26");
	bad("go_live_timeout = 10ms\n", "100ms..600s");
	bad("colour = blue\n", "t.conf:7: unknown key 'colour'");
	bad("just words\n", "t.conf:7: expected key = value");
	bad("log_level = loud\n", "err, warning");

	ret = ft_config_parse("node_id = 2\nrole = backup\n", "t.conf", &c, err, sizeof(err));
	ok(ret < 0 && strstr(err, "listen and peer are both required"), "missing addresses: %s", err);
	ret = ft_config_load("/nonexistent/ftd.conf", &c, err, sizeof(err));
	ok(ret < 0 && strstr(err, "cannot open /nonexistent/ftd.conf"), "missing file: %s", err);
	return tap_done();
}
