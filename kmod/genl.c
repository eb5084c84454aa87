// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink family "kvm_ft": KVM_FT_CMD_GET_VM dumps the attached VMs,
 * the "events" multicast group carries attach/detach/mode/error events.
 *
 * Events can arise in probe context (interrupts possibly off), so they are
 * queued in a small FIFO and sent from a work item. Each event takes a
 * number from a module-wide counter when it happens; an event that does not
 * fit in the FIFO is lost but its number is used, so listeners see the gap.
 */
#include <linux/module.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include "ft.h"

#define FT_EV_QUEUE 64

struct ft_ev {
	u64 seq;
	u32 type;
	u32 vm_id;
	s32 vm_pid;
	u32 mode;
	u32 error;
	u32 flags;
};

static DEFINE_SPINLOCK(ev_lock);	/* protects the fields below */
static struct ft_ev ev_queue[FT_EV_QUEUE];
static unsigned int ev_head, ev_count;
static u64 ev_seq;
static bool ev_enabled;			/* false before init and after uninit */

static void ev_send(struct work_struct *work);
static DECLARE_WORK(ev_work, ev_send);

static const struct nla_policy ft_genl_policy[KVM_FT_A_MAX + 1] = {
	[KVM_FT_A_VM_ID] = { .type = NLA_U32 },
};

static const struct genl_multicast_group ft_mcgrps[] = {
	{ .name = KVM_FT_GENL_MCGRP_EVENTS },
};

static int get_vm_dumpit(struct sk_buff *skb, struct netlink_callback *cb);

static const struct genl_small_ops ft_genl_ops[] = {
	{
		.cmd = KVM_FT_CMD_GET_VM,
		.validate = GENL_DONT_VALIDATE_STRICT,
		.dumpit = get_vm_dumpit,
	},
};

static struct genl_family ft_genl_family __ro_after_init = {
	.name = KVM_FT_GENL_NAME,
	.version = KVM_FT_GENL_VERSION,
	.maxattr = KVM_FT_A_MAX,
	.policy = ft_genl_policy,
	.module = THIS_MODULE,
	.small_ops = ft_genl_ops,
	.n_small_ops = ARRAY_SIZE(ft_genl_ops),
	.resv_start_op = KVM_FT_CMD_MAX + 1,
	.mcgrps = ft_mcgrps,
	.n_mcgrps = ARRAY_SIZE(ft_mcgrps),
};

struct dump_ctx {
	struct sk_buff *skb;
	struct netlink_callback *cb;
	u32 id;
};

static int fill_vm(struct ft_vm *ft, void *arg)
{
	struct dump_ctx *d = arg;
	struct kvm_ft_stats st;
	u64 head, tail, next_seq, landmark, acked;
	u32 flags, error;
	void *hdr;

	ft_ring_snapshot(&ft->ring, &head, &tail, &next_seq, &landmark, &acked,
			 &flags, &error);
	ft_ring_stats(&ft->ring, &st);
	hdr = genlmsg_put(d->skb, NETLINK_CB(d->cb->skb).portid,
			  d->cb->nlh->nlmsg_seq, &ft_genl_family, NLM_F_MULTI,
			  KVM_FT_CMD_GET_VM);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(d->skb, KVM_FT_A_VM_ID, ft->id) ||
	    nla_put_u32(d->skb, KVM_FT_A_VM_PID, ft->vm_pid) ||
	    nla_put_u32(d->skb, KVM_FT_A_VM_MODE, READ_ONCE(ft->mode)) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_NEXT_SEQ, next_seq, KVM_FT_A_PAD) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_LANDMARK, landmark, KVM_FT_A_PAD) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_PRODUCER, head, KVM_FT_A_PAD) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_CONSUMER, tail, KVM_FT_A_PAD) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_ACKED_SEQ, acked, KVM_FT_A_PAD) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_DATA_SIZE, ft->ring.size, KVM_FT_A_PAD) ||
	    nla_put_u64_64bit(d->skb, KVM_FT_A_VM_RING_WAITS, st.ring_waits, KVM_FT_A_PAD) ||
	    nla_put_u32(d->skb, KVM_FT_A_VM_ERROR, error) ||
	    nla_put_u32(d->skb, KVM_FT_A_VM_FLAGS, flags)) {
		genlmsg_cancel(d->skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(d->skb, hdr);
	d->id = ft->id;
	return 0;
}

/* cb->args[0]: id of the last VM put in a message; resumes after it. */
static int get_vm_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct dump_ctx d = { .skb = skb, .cb = cb, .id = cb->args[0] };
	int r;

	for (;;) {
		r = ft_vm_visit_next(d.id, fill_vm, &d);
		if (r)
			break;
		cb->args[0] = d.id;
	}
	if (r == -EMSGSIZE && skb->len)
		return skb->len;	/* more to come in the next call */
	if (r == -ENOENT)
		return skb->len;
	return r;
}

static void ev_send(struct work_struct *work)
{
	struct ft_ev ev;
	struct sk_buff *skb;
	void *hdr;

	for (;;) {
		spin_lock_irq(&ev_lock);
		if (!ev_count) {
			spin_unlock_irq(&ev_lock);
			return;
		}
		ev = ev_queue[ev_head];
		ev_head = (ev_head + 1) % FT_EV_QUEUE;
		ev_count--;
		spin_unlock_irq(&ev_lock);

		skb = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
		if (!skb)
			continue;	/* listeners see the sequence gap */
		hdr = genlmsg_put(skb, 0, 0, &ft_genl_family, 0, KVM_FT_CMD_EVENT);
		if (!hdr ||
		    nla_put_u64_64bit(skb, KVM_FT_A_EVENT_SEQ, ev.seq, KVM_FT_A_PAD) ||
		    nla_put_u32(skb, KVM_FT_A_EVENT_TYPE, ev.type) ||
		    nla_put_u32(skb, KVM_FT_A_VM_ID, ev.vm_id) ||
		    nla_put_u32(skb, KVM_FT_A_VM_PID, ev.vm_pid) ||
		    nla_put_u32(skb, KVM_FT_A_VM_MODE, ev.mode) ||
		    nla_put_u32(skb, KVM_FT_A_VM_ERROR, ev.error) ||
		    nla_put_u32(skb, KVM_FT_A_VM_FLAGS, ev.flags)) {
			nlmsg_free(skb);
			continue;
		}
		genlmsg_end(skb, hdr);
		/* -ESRCH just means nobody listens. */
		genlmsg_multicast(&ft_genl_family, skb, 0, 0, GFP_KERNEL);
	}
}

/* Any context. */
void ft_genl_event(struct ft_vm *ft, u32 type)
{
	struct ft_ev *ev;
	unsigned long irqf;
	bool queued = false;

	spin_lock_irqsave(&ev_lock, irqf);
	if (ev_enabled) {
		ev_seq++;
		if (ev_count < FT_EV_QUEUE) {
			ev = &ev_queue[(ev_head + ev_count) % FT_EV_QUEUE];
			ev->seq = ev_seq;
			ev->type = type;
			ev->vm_id = ft->id;
			ev->vm_pid = ft->vm_pid;
			ev->mode = READ_ONCE(ft->mode);
			ev->error = ft_ring_error(&ft->ring);
			ev->flags = READ_ONCE(ft->ring.flags);
			ev_count++;
			queued = true;
		}
	}
	spin_unlock_irqrestore(&ev_lock, irqf);
	if (queued)
		schedule_work(&ev_work);
}

int ft_genl_init(void)
{
	int r = genl_register_family(&ft_genl_family);

	if (r)
		return r;
	spin_lock_irq(&ev_lock);
	ev_enabled = true;
	spin_unlock_irq(&ev_lock);
	return 0;
}

void ft_genl_uninit(void)
{
	spin_lock_irq(&ev_lock);
	ev_enabled = false;
	spin_unlock_irq(&ev_lock);
	cancel_work_sync(&ev_work);
	genl_unregister_family(&ft_genl_family);
}

MODULE_ALIAS_GENL_FAMILY(KVM_FT_GENL_NAME);
