// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <linux/kvm_ft.h>
#include "genl.h"

struct dump {
	void (*cb)(void *ctx, const struct ft_genl_vm *vm);
	void *ctx;
	int n;
};

static struct nla_policy policy[KVM_FT_A_MAX + 1] = {
	[KVM_FT_A_VM_ID] = { .type = NLA_U32 },
	[KVM_FT_A_VM_PID] = { .type = NLA_U32 },
	[KVM_FT_A_VM_MODE] = { .type = NLA_U32 },
	[KVM_FT_A_VM_NEXT_SEQ] = { .type = NLA_U64 },
	[KVM_FT_A_VM_LANDMARK] = { .type = NLA_U64 },
	[KVM_FT_A_VM_PRODUCER] = { .type = NLA_U64 },
	[KVM_FT_A_VM_CONSUMER] = { .type = NLA_U64 },
	[KVM_FT_A_VM_ACKED_SEQ] = { .type = NLA_U64 },
	[KVM_FT_A_VM_DATA_SIZE] = { .type = NLA_U64 },
	[KVM_FT_A_VM_RING_WAITS] = { .type = NLA_U64 },
	[KVM_FT_A_VM_ERROR] = { .type = NLA_U32 },
	[KVM_FT_A_VM_FLAGS] = { .type = NLA_U32 },
};

static uint32_t u32_of(struct nlattr **a, int i)
{
	return a[i] ? nla_get_u32(a[i]) : 0;
}

static uint64_t u64_of(struct nlattr **a, int i)
{
	return a[i] ? nla_get_u64(a[i]) : 0;
}

static int on_msg(struct nl_msg *msg, void *arg)
{
	struct dump *d = arg;
	struct nlattr *a[KVM_FT_A_MAX + 1];
	struct ft_genl_vm vm;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, a, KVM_FT_A_MAX, policy) < 0 || !a[KVM_FT_A_VM_ID])
		return NL_SKIP;
	vm = (struct ft_genl_vm){
		.id = u32_of(a, KVM_FT_A_VM_ID), .pid = u32_of(a, KVM_FT_A_VM_PID),
		.mode = u32_of(a, KVM_FT_A_VM_MODE), .error = u32_of(a, KVM_FT_A_VM_ERROR),
		.flags = u32_of(a, KVM_FT_A_VM_FLAGS),
		.next_seq = u64_of(a, KVM_FT_A_VM_NEXT_SEQ), .landmark = u64_of(a, KVM_FT_A_VM_LANDMARK),
		.producer = u64_of(a, KVM_FT_A_VM_PRODUCER), .consumer = u64_of(a, KVM_FT_A_VM_CONSUMER),
		.acked_seq = u64_of(a, KVM_FT_A_VM_ACKED_SEQ), .data_size = u64_of(a, KVM_FT_A_VM_DATA_SIZE),
		.ring_waits = u64_of(a, KVM_FT_A_VM_RING_WAITS),
	};
	d->cb(d->ctx, &vm);
	d->n++;
	return NL_OK;
}

int ft_genl_list_vms(void (*cb)(void *ctx, const struct ft_genl_vm *vm), void *ctx)
{
	struct dump d = { cb, ctx, 0 };
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_msg *msg = NULL;
	int fam, ret;

	if (!sk)
		return -ENOMEM;
	ret = genl_connect(sk);
	if (ret < 0) {
		ret = -ECONNREFUSED;
		goto out;
	}
	fam = genl_ctrl_resolve(sk, KVM_FT_GENL_NAME);
	if (fam < 0) {
		ret = -ENOENT;
		goto out;
	}
	msg = nlmsg_alloc();
	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, fam, 0, NLM_F_DUMP,
				 KVM_FT_CMD_GET_VM, KVM_FT_GENL_VERSION)) {
		ret = -ENOMEM;
		goto out;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_msg, &d);
	ret = nl_send_auto(sk, msg);
	if (ret >= 0)
		ret = nl_recvmsgs_default(sk);
	ret = ret < 0 ? -EIO : d.n;
out:
	nlmsg_free(msg);
	nl_socket_free(sk);
	return ret;
}
