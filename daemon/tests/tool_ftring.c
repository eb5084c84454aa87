// SPDX-License-Identifier: GPL-2.0
/*
 * Test producer and verifier for ring files (the stand-in for kvm_ft.ko's
 * ring on hosts without /dev/kvm):
 *
 *   tool_ftring create PATH ORDER
 *   tool_ftring produce PATH SEED COUNT [RATE/s]  append records 1..COUNT
 *   tool_ftring verify PATH SEED COUNT TIMEOUT_S  read them back byte-exact
 *                                                 (releasing them), exit 0
 *                                                 when all COUNT arrived
 *   tool_ftring acked PATH                        print consumer->acked_seq
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "channel.h"
#include "recgen.h"
#include "ring.h"

static int map(const char *path, struct ft_ring *r, bool writer)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0 || ft_ring_map(r, fd, writer)) {
		fprintf(stderr, "tool_ftring: cannot map %s\n", path);
		exit(2);
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct ft_ring r;

	if (argc == 4 && !strcmp(argv[1], "create")) {
		int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		return fd < 0 || ft_ring_format(fd, (unsigned int)atoi(argv[3])) ? 2 : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "acked")) {
		map(argv[2], &r, false);
		printf("%llu\n", (unsigned long long)r.cons->acked_seq);
		return 0;
	}
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "produce")) {
		uint64_t seed = strtoull(argv[3], NULL, 0), n = strtoull(argv[4], NULL, 0);
		uint64_t rate = argc == 6 ? strtoull(argv[5], NULL, 0) : 0, t0 = ft_now_us();
		uint8_t buf[FT_RECGEN_MAX];

		map(argv[2], &r, true);
		for (uint64_t s = ft_ring_next_seq(&r); s <= n;) {
			uint32_t len = ft_recgen(seed, s, buf);
			int ret;

			if (rate && (s - 1) * 1000000 / rate > ft_now_us() - t0) {
				usleep(1000);
				continue;
			}
			ret = ft_ring_append(&r, buf, len);
			if (ret == -EAGAIN)
				usleep(200);
			else if (ret)
				return 3;
			else
				s++;
		}
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "verify")) {
		uint64_t seed = strtoull(argv[3], NULL, 0), n = strtoull(argv[4], NULL, 0);
		uint64_t end = ft_now_us() + strtoull(argv[5], NULL, 0) * 1000000, got = 0;
		struct ft_ring_cursor cur;

		map(argv[2], &r, false);
		cur = r.tail;
		while (cur.seq <= n && ft_now_us() < end) {
			const struct kvm_ft_rec *rec;
			uint32_t len;
			int ret = ft_ring_next(&r, &cur, &rec, &len);

			if (ret < 0) {
				fprintf(stderr, "tool_ftring: bad ring: %s\n", r.why);
				return 3;
			}
			if (ret == 0) {
				if (got)
					ft_ring_release(&r, cur.seq - 1, &cur);
				got = 0;
				usleep(1000);
				continue;
			}
			if (!ft_recgen_verify(seed, rec->seq, 0, rec, len)) {
				fprintf(stderr, "tool_ftring: record %llu differs\n", (unsigned long long)rec->seq);
				return 3;
			}
			got++;
		}
		if (cur.seq > 1)
			ft_ring_release(&r, cur.seq - 1, &cur);
		printf("%llu\n", (unsigned long long)cur.seq - 1);
		return cur.seq > n ? 0 : 1;
	}
	fprintf(stderr, "usage: see the top of tests/tool_ftring.c\n");
	return 1;
}
