// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include "config.h"
#include "channel.h"
#include "ftd_vmm.h"

int ft_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
		return -EINVAL;
	if (s[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EINVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
	}
	return 0;
}

int ft_parse_duration_us(const char *s, uint64_t *us)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || v > 3600ULL * 1000000)
		return -EINVAL;
	if (!strcmp(end, "us"))
		*us = v;
	else if (!*end || !strcmp(end, "ms"))
		*us = v * 1000;
	else if (!strcmp(end, "s"))
		*us = v * 1000000;
	else
		return -EINVAL;
	return 0;
}

int ft_parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M')
		shift = 20;
	else if (*end == 'G')
		shift = 30;
	else if (*end)
		return -EINVAL;
	if (*end && end[1])
		return -EINVAL;
	if (v > (1ULL << 40) >> shift)
		return -ERANGE;
	*bytes = v << shift;
	return 0;
}

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

static int copy_path(char *dst, const char *v)
{
	if (v[0] != '/' || strlen(v) >= PATH_MAX)
		return -EINVAL;
	strcpy(dst, v);
	return 0;
}

static int set(struct ft_config *c, const char *k, const char *v, const char **hint)
{
	uint64_t n;

	if (!strcmp(k, "node_id")) {
		*hint = "1 or 2";
		if (strcmp(v, "1") && strcmp(v, "2"))
			return -EINVAL;
		c->node_id = (uint32_t)(v[0] - '0');
	} else if (!strcmp(k, "role")) {
		*hint = "primary or backup";
		if (ft_role_parse(v, &c->role) || (c->role != FT_ROLE_PRIMARY && c->role != FT_ROLE_BACKUP))
			return -EINVAL;
	} else if (!strcmp(k, "listen") || !strcmp(k, "peer")) {
		bool l = k[0] == 'l';

		*hint = "a numeric address and port: 192.0.2.1:7000 or [2001:db8::1]:7000";
		if (strlen(v) >= sizeof(c->listen_str) ||
		    ft_parse_addr(v, l ? &c->listen : &c->peer, l ? &c->listen_len : &c->peer_len))
			return -EINVAL;
		strcpy(l ? c->listen_str : c->peer_str, v);
	} else if (!strcmp(k, "key_file")) {
		*hint = "an absolute path";
		return copy_path(c->key_file, v);
	} else if (!strcmp(k, "shared_disk")) {
		*hint = "an absolute path";
		return copy_path(c->shared_disk, v);
	} else if (!strcmp(k, "status_socket")) {
		*hint = "an absolute path shorter than 108 bytes";
		if (strlen(v) >= 108)
			return -EINVAL;
		return copy_path(c->status_socket, v);
	} else if (!strcmp(k, "ring")) {
		*hint = "vm or file:/absolute/path";
		if (!strcmp(v, "vm")) {
			c->ring[0] = 0;
			return 0;
		}
		if (strncmp(v, "file:", 5))
			return -EINVAL;
		return copy_path(c->ring, v + 5);
	} else if (!strcmp(k, "vmm_socket")) {
		*hint = "an absolute path shorter than 108 bytes";
		if (strlen(v) >= 108)
			return -EINVAL;
		return copy_path(c->vmm_socket, v);
	} else if (!strcmp(k, "vmm_file_rings")) {
		*hint = "yes or no";
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return -EINVAL;
		c->vmm_file_rings = v[0] == 'y';
	} else if (!strcmp(k, "ring_order")) {
		*hint = "16..26";
		if (ft_parse_size(v, &n) || n < KVM_FT_RING_ORDER_MIN || n > KVM_FT_RING_ORDER_MAX)
			return -EINVAL;
		c->ring_order = (unsigned int)n;
	} else if (!strcmp(k, "epoch")) {
		*hint = "a positive integer";
		if (ft_parse_size(v, &n) || !n || strpbrk(v, "KMGk"))
			return -EINVAL;
		c->epoch = n;
	} else if (!strcmp(k, "heartbeat_interval")) {
		*hint = "10ms..10s";
		if (ft_parse_duration_us(v, &n) || n < 10000 || n > 10000000)
			return -EINVAL;
		c->heartbeat_us = n;
	} else if (!strcmp(k, "peer_timeout")) {
		*hint = "30ms..600s";
		if (ft_parse_duration_us(v, &n) || n < 30000 || n > 600000000)
			return -EINVAL;
		c->peer_timeout_us = n;
	} else if (!strcmp(k, "backup_delay")) {
		*hint = "0..600s";
		if (ft_parse_duration_us(v, &n) || n > 600000000)
			return -EINVAL;
		c->backup_delay_us = n ? n : 1;
	} else if (!strcmp(k, "failover_timeout")) {
		*hint = "100ms..600s";
		if (ft_parse_duration_us(v, &n) || n < 100000 || n > 600000000)
			return -EINVAL;
		c->failover_timeout_us = n;
	} else if (!strcmp(k, "go_live_timeout")) {
		*hint = "100ms..600s";
		if (ft_parse_duration_us(v, &n) || n < 100000 || n > 600000000)
			return -EINVAL;
		c->go_live_timeout_us = n;
	} else if (!strcmp(k, "max_lag_records")) {
		*hint = "16..16777216";
		if (ft_parse_size(v, &n) || n < 16 || n > 16777216)
			return -EINVAL;
		c->max_lag_records = (uint32_t)n;
	} else if (!strcmp(k, "max_lag_bytes")) {
		*hint = "32K..1G";
		if (ft_parse_size(v, &n) || n < 32768 || n > (1ULL << 30))
			return -EINVAL;
		c->max_lag_bytes = n;
	} else if (!strcmp(k, "reprotect")) {
		*hint = "yes or no";
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return -EINVAL;
		c->reprotect = v[0] == 'y';
	} else if (!strcmp(k, "sync_timeout")) {
		*hint = "100ms..600s";
		if (ft_parse_duration_us(v, &n) || n < 100000 || n > 600000000)
			return -EINVAL;
		c->sync_timeout_us = n;
	} else if (!strcmp(k, "sync_rate")) {
		*hint = "0 or 64K..10G (bytes per second)";
		if (ft_parse_size(v, &n) || (n && n < 65536) || n > (10ULL << 30))
			return -EINVAL;
		c->sync_rate = n;
	} else if (!strcmp(k, "log_level")) {
		static const char *const lv[] = { "err", "warning", "notice", "info", "debug" };

		*hint = "err, warning, notice, info or debug";
		for (int i = 0; i < 5; i++)
			if (!strcmp(v, lv[i])) {
				c->log_level = LOG_ERR + i;
				return 0;
			}
		return -EINVAL;
	} else {
		*hint = NULL;
		return -ENOENT;
	}
	return 0;
}

int ft_config_parse(const char *text, const char *name, struct ft_config *c, char *err, size_t errlen)
{
	char line[1024];
	int lineno = 0;

	memset(c, 0, sizeof(*c));
	c->ring_order = KVM_FT_RING_ORDER_DEFAULT;
	c->epoch = 1;
	c->heartbeat_us = 100000;
	c->peer_timeout_us = 500000;
	c->go_live_timeout_us = 10000000;
	c->sync_timeout_us = 30000000;
	c->reprotect = true;
	c->max_lag_records = 65536;
	c->max_lag_bytes = 4u << 20;
	c->log_level = LOG_INFO;
	strcpy(c->status_socket, "/run/ftd/ftd.sock");
	strcpy(c->vmm_socket, FTD_VMM_SOCKET);
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);
		char *k, *v, *eq, *e;
		const char *hint = NULL;
		int ret;

		lineno++;
		if (n >= sizeof(line))
			return fail(err, errlen, -EINVAL, "%s:%d: line too long", name, lineno);
		memcpy(line, text, n);
		line[n] = 0;
		text += n + (nl ? 1 : 0);
		if ((e = strchr(line, '#')))
			*e = 0;
		for (k = line; isspace((unsigned char)*k); k++)
			;
		if (!*k)
			continue;
		eq = strchr(k, '=');
		if (!eq)
			return fail(err, errlen, -EINVAL, "%s:%d: expected key = value", name, lineno);
		for (e = eq; e > k && isspace((unsigned char)e[-1]); e--)
			;
		*e = 0;
		for (v = eq + 1; isspace((unsigned char)*v); v++)
			;
		for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]); e--)
			;
		*e = 0;
		ret = set(c, k, v, &hint);
		if (ret == -ENOENT)
			return fail(err, errlen, -EINVAL, "%s:%d: unknown key '%s'", name, lineno, k);
		if (ret)
			return fail(err, errlen, -EINVAL, "%s:%d: %s = '%s' is invalid: expected %s",
				    name, lineno, k, v, hint);
	}
	if (!c->node_id)
		return fail(err, errlen, -EINVAL, "%s: node_id is required", name);
	if (!c->role)
		return fail(err, errlen, -EINVAL, "%s: role is required", name);
	if (!c->listen_len || !c->peer_len)
		return fail(err, errlen, -EINVAL, "%s: listen and peer are both required", name);
	if (!c->key_file[0])
		return fail(err, errlen, -EINVAL, "%s: key_file is required", name);
	if (c->peer_timeout_us < 3 * c->heartbeat_us)
		return fail(err, errlen, -EINVAL,
			    "%s: peer_timeout (%llu ms) must be at least 3 heartbeat intervals (%llu ms)",
			    name, (unsigned long long)c->peer_timeout_us / 1000,
			    (unsigned long long)c->heartbeat_us / 1000);
	if (!c->backup_delay_us)
		c->backup_delay_us = c->peer_timeout_us / 2;
	if (!c->failover_timeout_us)
		c->failover_timeout_us = 5000000;
	return 0;
}

int ft_config_load(const char *path, struct ft_config *c, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	FILE *f = fopen(path, "re");
	int ret;

	if (!f)
		return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
	buf = calloc(1, 65537);
	n = buf ? fread(buf, 1, 65536, f) : 0;
	fclose(f);
	if (!buf)
		return -ENOMEM;
	if (n == 65536) {
		free(buf);
		return fail(err, errlen, -EFBIG, "%s: larger than 64 KiB", path);
	}
	ret = ft_config_parse(buf, path, c, err, errlen);
	free(buf);
	return ret;
}
