// SPDX-License-Identifier: GPL-2.0
/*
 * The generic netlink family: the GET_VM dump reports every attached VM
 * with values equal to its ring header and consumer page, needs no
 * privilege, and events arrive for attach, mode change and detach with a
 * gapless per-module sequence number. Plain netlink sockets, no libnl, so
 * the binary stays static.
 */
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "ft_test.h"

struct nl {
	int fd;
	uint16_t family;
	uint32_t events_group;
	uint32_t seq;
};

static int nl_send(struct nl *nl, uint16_t type, uint16_t flags, uint8_t cmd,
		   uint16_t attr, const char *str)
{
	struct {
		struct nlmsghdr n;
		struct genlmsghdr g;
		char buf[64];
	} req = { 0 };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	req.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	req.n.nlmsg_type = type;
	req.n.nlmsg_flags = NLM_F_REQUEST | flags;
	req.n.nlmsg_seq = ++nl->seq;
	req.g.cmd = cmd;
	req.g.version = type == GENL_ID_CTRL ? 1 : KVM_FT_GENL_VERSION;
	if (str) {
		struct nlattr *a = (struct nlattr *)((char *)&req + req.n.nlmsg_len);

		a->nla_type = attr;
		a->nla_len = NLA_HDRLEN + strlen(str) + 1;
		strcpy((char *)a + NLA_HDRLEN, str);
		req.n.nlmsg_len += NLA_ALIGN(a->nla_len);
	}
	return sendto(nl->fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0
		? -errno : 0;
}

/* Attribute table of one generic netlink message (indices up to max). */
static void nl_attrs(struct nlmsghdr *n, struct nlattr **tb, int max)
{
	struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(n) + GENL_HDRLEN);
	int len = n->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);

	memset(tb, 0, (max + 1) * sizeof(*tb));
	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
		if ((a->nla_type & NLA_TYPE_MASK) <= max)
			tb[a->nla_type & NLA_TYPE_MASK] = a;
		len -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
}

static uint32_t u32_of(struct nlattr *a) { uint32_t v; memcpy(&v, a + 1, 4); return v; }
static uint64_t u64_of(struct nlattr *a) { uint64_t v; memcpy(&v, a + 1, 8); return v; }

static int nl_open(struct nl *nl)
{
	static char buf[16384];
	struct nlattr *tb[CTRL_ATTR_MAX + 1];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 5 };
	struct nlmsghdr *n;
	ssize_t len;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0 || bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -errno;
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (nl_send(nl, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME,
		    KVM_FT_GENL_NAME))
		return -errno;
	len = recv(nl->fd, buf, sizeof(buf), 0);
	n = (struct nlmsghdr *)buf;
	if (len < 0 || !NLMSG_OK(n, len))
		return -EIO;
	if (n->nlmsg_type == NLMSG_ERROR)
		return ((struct nlmsgerr *)NLMSG_DATA(n))->error;
	nl_attrs(n, tb, CTRL_ATTR_MAX);
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return -ENOENT;
	memcpy(&nl->family, tb[CTRL_ATTR_FAMILY_ID] + 1, 2);
	if (tb[CTRL_ATTR_MCAST_GROUPS]) {
		struct nlattr *g = tb[CTRL_ATTR_MCAST_GROUPS];
		int glen = g->nla_len - NLA_HDRLEN;
		struct nlattr *e = g + 1;

		while (glen >= NLA_HDRLEN && e->nla_len >= NLA_HDRLEN) {
			struct nlattr *f = e + 1, *id = NULL;
			int flen = e->nla_len - NLA_HDRLEN;
			const char *name = NULL;

			while (flen >= NLA_HDRLEN && f->nla_len >= NLA_HDRLEN) {
				if (f->nla_type == CTRL_ATTR_MCAST_GRP_NAME)
					name = (const char *)(f + 1);
				if (f->nla_type == CTRL_ATTR_MCAST_GRP_ID)
					id = f;
				flen -= NLA_ALIGN(f->nla_len);
				f = (struct nlattr *)((char *)f + NLA_ALIGN(f->nla_len));
			}
			if (name && id && !strcmp(name, KVM_FT_GENL_MCGRP_EVENTS))
				nl->events_group = u32_of(id);
			glen -= NLA_ALIGN(e->nla_len);
			e = (struct nlattr *)((char *)e + NLA_ALIGN(e->nla_len));
		}
	}
	return 0;
}

struct vm_row {
	uint32_t id, pid, mode, error, flags;
	uint64_t next_seq, landmark, producer, consumer, acked, data_size, waits;
	int present;	/* bitmask of attributes seen, from bit 1 */
};

/* GET_VM dump; returns the number of rows (<= max) or -errno. */
static int dump_vms(struct nl *nl, struct vm_row *rows, int max)
{
	static char buf[32768];
	int n = 0;

	if (nl_send(nl, nl->family, NLM_F_DUMP, KVM_FT_CMD_GET_VM, 0, NULL))
		return -errno;
	for (;;) {
		ssize_t len = recv(nl->fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			return -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			struct nlattr *tb[KVM_FT_A_MAX + 1];
			struct vm_row *r;

			if (h->nlmsg_type == NLMSG_DONE)
				return n;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type != nl->family || n >= max)
				continue;
			nl_attrs(h, tb, KVM_FT_A_MAX);
			r = &rows[n++];
			memset(r, 0, sizeof(*r));
			for (int i = 1; i <= KVM_FT_A_MAX; i++)
				if (tb[i])
					r->present |= 1 << i;
#define U32(a, f) if (tb[a]) r->f = u32_of(tb[a])
#define U64(a, f) if (tb[a]) r->f = u64_of(tb[a])
			U32(KVM_FT_A_VM_ID, id);
			U32(KVM_FT_A_VM_PID, pid);
			U32(KVM_FT_A_VM_MODE, mode);
			U32(KVM_FT_A_VM_ERROR, error);
			U32(KVM_FT_A_VM_FLAGS, flags);
			U64(KVM_FT_A_VM_NEXT_SEQ, next_seq);
			U64(KVM_FT_A_VM_LANDMARK, landmark);
			U64(KVM_FT_A_VM_PRODUCER, producer);
			U64(KVM_FT_A_VM_CONSUMER, consumer);
			U64(KVM_FT_A_VM_ACKED_SEQ, acked);
			U64(KVM_FT_A_VM_DATA_SIZE, data_size);
			U64(KVM_FT_A_VM_RING_WAITS, waits);
		}
	}
}

static struct vm_row *find_row(struct vm_row *rows, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (rows[i].id == id)
			return &rows[i];
	return NULL;
}

static void guest_some(void *arg)
{
	(void)arg;
	for (int i = 0; i < 30; i++)
		rdtsc();
}

#define VM_ATTRS ((1 << KVM_FT_A_VM_ID) | (1 << KVM_FT_A_VM_PID) | (1 << KVM_FT_A_VM_MODE) | \
	(1 << KVM_FT_A_VM_NEXT_SEQ) | (1 << KVM_FT_A_VM_LANDMARK) | (1 << KVM_FT_A_VM_PRODUCER) | \
	(1 << KVM_FT_A_VM_CONSUMER) | (1 << KVM_FT_A_VM_ACKED_SEQ) | (1 << KVM_FT_A_VM_DATA_SIZE) | \
	(1 << KVM_FT_A_VM_RING_WAITS) | (1 << KVM_FT_A_VM_ERROR) | (1 << KVM_FT_A_VM_FLAGS))

/*
 * Proves: the dump has one row per attached VM with every KVM_FT_A_VM_*
 * attribute, equal to the ring's own header (producer, next_seq, landmark,
 * size, waits, error, flags) and to what the reader wrote in the consumer
 * page (acked_seq; consumer: see below); a closed attachment disappears from it; an
 * unprivileged process (nobody) gets the same dump.
 */
TEST(dump_matches_rings)
{
	struct ft_vm a, b;
	struct nl nl;
	struct vm_row rows[64], *ra, *rb;
	const struct kvm_ft_rec *rec;
	int n, status;
	pid_t pid;

	ASSERT_EQ(0, nl_open(&nl));
	ft_vm_setup(&a, NULL, guest_some, NULL, 0);
	ft_vm_setup(&b, NULL, guest_some, NULL, KVM_FT_RING_ORDER_MIN);
	vcpu_run_expect(a.vm, UCALL_DONE, NULL);
	/* Consume 10 of a's 31 records; pretend the backup acked seq 7. */
	for (int i = 0; i < 10; i++)
		ASSERT_NE(NULL, rec = ft_ring_next(&a.ring));
	ft_ring_release(&a.ring);
	a.ring.cons->acked_seq = 7;
	ASSERT_EQ(0, ioctl(b.ft_fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));

	n = dump_vms(&nl, rows, 64);
	ASSERT_LE(2, n);
	ra = find_row(rows, n, a.ring.info.vm_id);
	rb = find_row(rows, n, b.ring.info.vm_id);
	ASSERT_NE(NULL, ra);
	ASSERT_NE(NULL, rb);
	ASSERT_EQ(VM_ATTRS, ra->present & VM_ATTRS);
	ASSERT_EQ(getpid(), ra->pid);
	ASSERT_EQ(KVM_FT_MODE_RECORD, ra->mode);
	ASSERT_EQ(32, ra->next_seq);
	ASSERT_EQ(a.ring.prod->next_seq, ra->next_seq);
	ASSERT_EQ(31, ra->landmark);
	ASSERT_EQ(ft_ring_producer(&a.ring), ra->producer);
	/*
	 * The header does not say whether CONSUMER is the reader's published
	 * position or the last one the module validated (it reads the page
	 * lazily, when it needs space): accept either, nothing else.
	 */
	ASSERT_TRUE(ra->consumer == a.ring.pos || ra->consumer == 0)
		TH_LOG("consumer %llu, published %llu", (unsigned long long)ra->consumer,
		       (unsigned long long)a.ring.pos);
	ASSERT_EQ(7, ra->acked);
	ASSERT_EQ(a.ring.info.data_size, ra->data_size);
	ASSERT_EQ(0, ra->waits);
	ASSERT_EQ(0, ra->error);
	ASSERT_EQ(0, ra->flags);
	ASSERT_EQ(KVM_FT_MODE_LIVE, rb->mode);
	ASSERT_EQ(1ULL << KVM_FT_RING_ORDER_MIN, rb->data_size);
	ASSERT_EQ(0, rb->producer);
	ASSERT_EQ(1, rb->next_seq);

	/* No privilege needed to read it. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct nl nl2;
		struct vm_row r2[64];
		int m;

		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(1);
		if (nl_open(&nl2))
			_exit(2);
		m = dump_vms(&nl2, r2, 64);
		if (m < 2 || !find_row(r2, m, a.ring.info.vm_id))
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	ft_vm_teardown(&b);
	n = dump_vms(&nl, rows, 64);
	ASSERT_LE(1, n);
	ASSERT_NE(NULL, find_row(rows, n, a.ring.info.vm_id));
	ASSERT_EQ(NULL, find_row(rows, n, b.ring.info.vm_id));
	ft_vm_teardown(&a);
	close(nl.fd);
}

/*
 * Proves: a listener on the "events" group gets ATTACH, MODE and DETACH for
 * an attachment, in that order, with its vm_id and consecutive event
 * sequence numbers.
 */
TEST(events)
{
	static char buf[8192];
	struct nl nl;
	struct ft_vm f;
	uint32_t types[8], ids[8];
	uint64_t seqs[8];
	int n = 0;

	ASSERT_EQ(0, nl_open(&nl));
	ASSERT_NE(0, nl.events_group);
	ASSERT_EQ(0, setsockopt(nl.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
				&nl.events_group, sizeof(nl.events_group)));
	ft_vm_setup(&f, NULL, guest_some, NULL, 0);
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_DETACH));
	while (n < 3) {
		ssize_t len = recv(nl.fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		ASSERT_LT(0, len) TH_LOG("waiting for event %d: %s", n, strerror(errno));
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			struct nlattr *tb[KVM_FT_A_MAX + 1];

			if (h->nlmsg_type != nl.family || n >= 8)
				continue;
			nl_attrs(h, tb, KVM_FT_A_MAX);
			ASSERT_NE(NULL, tb[KVM_FT_A_EVENT_SEQ]);
			ASSERT_NE(NULL, tb[KVM_FT_A_EVENT_TYPE]);
			ASSERT_NE(NULL, tb[KVM_FT_A_VM_ID]);
			seqs[n] = u64_of(tb[KVM_FT_A_EVENT_SEQ]);
			types[n] = u32_of(tb[KVM_FT_A_EVENT_TYPE]);
			ids[n] = u32_of(tb[KVM_FT_A_VM_ID]);
			n++;
		}
	}
	ASSERT_EQ(KVM_FT_EV_ATTACH, types[0]);
	ASSERT_EQ(KVM_FT_EV_MODE, types[1]);
	ASSERT_EQ(KVM_FT_EV_DETACH, types[2]);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(f.ring.info.vm_id, ids[i]);
	ASSERT_EQ(seqs[0] + 1, seqs[1]);
	ASSERT_EQ(seqs[1] + 1, seqs[2]);
	ft_vm_teardown(&f);
	close(nl.fd);
}

/*
 * Proves: a replay ring error (here an unaligned producer position, found at
 * the guest's first RDTSC) is multicast as KVM_FT_EV_ERROR carrying the
 * error and mode REPLAY, right after the attach event.
 */
TEST(replay_error_event)
{
	static char buf[8192];
	struct kvm_ft_replay_producer *prod;
	struct kvm_ft_info info;
	struct kvm_vm *vm;
	struct ucall uc;
	struct nl nl;
	uint32_t types[2], errs[2], modes[2];
	int n = 0, dev, fd;

	ASSERT_EQ(0, nl_open(&nl));
	ASSERT_EQ(0, setsockopt(nl.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
				&nl.events_group, sizeof(nl.events_group)));
	vm = vm_create(NULL, guest_some, NULL);
	dev = ft_open();
	ASSERT_LE(0, dev);
	fd = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_REPLAY, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	prod = mmap(NULL, info.producer_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    KVM_FT_MMAP_REPLAY_RING_OFF);
	ASSERT_NE(MAP_FAILED, prod);
	__atomic_store_n(&prod->producer, 4, __ATOMIC_RELEASE);
	ASSERT_EQ(-EIO, vcpu_run_raw(vm, &uc));
	while (n < 2) {
		ssize_t len = recv(nl.fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		ASSERT_LT(0, len) TH_LOG("waiting for event %d: %s", n, strerror(errno));
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			struct nlattr *tb[KVM_FT_A_MAX + 1];

			if (h->nlmsg_type != nl.family || n >= 2)
				continue;
			nl_attrs(h, tb, KVM_FT_A_MAX);
			ASSERT_NE(NULL, tb[KVM_FT_A_EVENT_TYPE]);
			ASSERT_NE(NULL, tb[KVM_FT_A_VM_ERROR]);
			ASSERT_NE(NULL, tb[KVM_FT_A_VM_MODE]);
			ASSERT_NE(NULL, tb[KVM_FT_A_VM_ID]);
			if (u32_of(tb[KVM_FT_A_VM_ID]) != info.vm_id)
				continue;
			types[n] = u32_of(tb[KVM_FT_A_EVENT_TYPE]);
			errs[n] = u32_of(tb[KVM_FT_A_VM_ERROR]);
			modes[n] = u32_of(tb[KVM_FT_A_VM_MODE]);
			n++;
		}
	}
	ASSERT_EQ(KVM_FT_EV_ATTACH, types[0]);
	ASSERT_EQ(KVM_FT_EV_ERROR, types[1]);
	ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, errs[1]);
	ASSERT_EQ(KVM_FT_MODE_REPLAY, modes[0]);
	ASSERT_EQ(KVM_FT_MODE_REPLAY, modes[1]);
	munmap(prod, info.producer_len);
	close(fd);
	close(dev);
	vm_free(vm);
	close(nl.fd);
}

TEST_HARNESS_MAIN
