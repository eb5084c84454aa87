// SPDX-License-Identifier: GPL-2.0
/*
 * Registration of the hooks into KVM: tracepoint probes (exported ones by
 * symbol, the others found in kvm.ko's tracepoint table), the kprobe that
 * drops tombstones when a VM is destroyed, the one that reports a VM whose
 * users are gone, and symbol lookup.
 *
 * This module links against kvm.ko (exported symbols), so kvm.ko cannot
 * unload while we are loaded: its tracepoints stay valid from init to exit.
 */
#include <linux/kprobes.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/tracepoint.h>
#include <trace/events/kvm.h>
#include "trace.h"
#include "ft.h"

typedef unsigned long (*kallsyms_lookup_name_t)(const char *name);
static kallsyms_lookup_name_t lookup_name;

unsigned long ft_lookup_symbol(const char *name)
{
	return lookup_name ? lookup_name(name) : 0;
}

/* kallsyms_lookup_name() is not exported; a kprobe resolves its address. */
static int resolve_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int r = register_kprobe(&kp);

	if (r)
		return r;
	lookup_name = (kallsyms_lookup_name_t)kp.addr;
	unregister_kprobe(&kp);
	return 0;
}

struct ft_tp {
	const char *name;
	void *probe;
	struct tracepoint *tp;		/* exported ones preset, others found */
	bool registered;
};

static struct ft_tp tps[] = {
	{ "kvm_entry", ft_probe_kvm_entry, &__tracepoint_kvm_entry },
	{ "kvm_exit", ft_probe_kvm_exit, &__tracepoint_kvm_exit },
	{ "kvm_msr", ft_probe_kvm_msr, &__tracepoint_kvm_msr },
	{ "kvm_inj_virq", ft_probe_kvm_inj_virq, &__tracepoint_kvm_inj_virq },
	{ "kvm_pio", ft_probe_kvm_pio, NULL },
	{ "kvm_mmio", ft_probe_kvm_mmio, NULL },
	{ "kvm_cpuid", ft_probe_kvm_cpuid, NULL },
	{ "kvm_userspace_exit", ft_probe_kvm_userspace_exit, NULL },
	{ "kvm_fpu", ft_probe_kvm_fpu, NULL },
};

/* Called for every module with tracepoints already loaded (and new ones). */
static int tp_notify(struct notifier_block *nb, unsigned long val, void *data)
{
	struct tp_module *tpm = data;
	struct module *mod = tpm->mod;
	unsigned int i, j;

	if (val != MODULE_STATE_COMING || strcmp(mod->name, "kvm"))
		return NOTIFY_OK;
	for (i = 0; i < mod->num_tracepoints; i++) {
		struct tracepoint *tp = tracepoint_ptr_deref(&mod->tracepoints_ptrs[i]);

		for (j = 0; j < ARRAY_SIZE(tps); j++)
			if (!tps[j].tp && !strcmp(tp->name, tps[j].name))
				tps[j].tp = tp;
	}
	return NOTIFY_OK;
}

static struct notifier_block tp_nb = { .notifier_call = tp_notify };

static int find_tracepoints(void)
{
	int i, r;

	r = register_tracepoint_module_notifier(&tp_nb);
	if (r)
		return r;
	unregister_tracepoint_module_notifier(&tp_nb);
	for (i = 0; i < ARRAY_SIZE(tps); i++) {
		if (!tps[i].tp) {
			pr_err("KVM tracepoint %s not found\n", tps[i].name);
			return -ENOENT;
		}
	}
	return 0;
}

static void unregister_tracepoints(void)
{
	int i;

	for (i = ARRAY_SIZE(tps) - 1; i >= 0; i--) {
		if (tps[i].registered)
			tracepoint_probe_unregister(tps[i].tp, tps[i].probe, NULL);
		tps[i].registered = false;
	}
	/* No probe runs any more once this returns. */
	tracepoint_synchronize_unregister();
}

static int register_tracepoints(void)
{
	int i, r;

	for (i = 0; i < ARRAY_SIZE(tps); i++) {
		r = tracepoint_probe_register(tps[i].tp, tps[i].probe, NULL);
		if (r) {
			pr_err("cannot register probe on %s: %d\n", tps[i].name, r);
			unregister_tracepoints();
			return r;
		}
		tps[i].registered = true;
	}
	return 0;
}

/* void kvm_arch_destroy_vm(struct kvm *kvm): global, not inlined (x86.c). */
static int destroy_vm_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (unlikely(ft_tombs_pending()))
		ft_tomb_drop_vm((const struct kvm *)regs->di);
	return 0;
}

static struct kprobe destroy_kp = {
	.symbol_name = "kvm_arch_destroy_vm",
	.pre_handler = destroy_vm_pre,
};

/* void kvm_put_kvm(struct kvm *kvm): exported. POLLHUP when users are gone. */
static int put_kvm_pre(struct kprobe *p, struct pt_regs *regs)
{
	ft_vm_put_notify((const struct kvm *)regs->di);
	return 0;
}

static struct kprobe put_kp = {
	.symbol_name = "kvm_put_kvm",
	.pre_handler = put_kvm_pre,
};

int ft_hooks_init(void)
{
	int r;

	r = resolve_lookup_name();
	if (r) {
		pr_err("cannot resolve kallsyms_lookup_name: %d\n", r);
		return r;
	}
	r = find_tracepoints();
	if (r)
		return r;
	/* Before any attach can leave a tombstone behind. */
	r = register_kprobe(&destroy_kp);
	if (r) {
		pr_err("cannot probe kvm_arch_destroy_vm: %d\n", r);
		return r;
	}
	r = register_kprobe(&put_kp);
	if (r) {
		pr_err("cannot probe kvm_put_kvm: %d\n", r);
		goto err_destroy_kp;
	}
	r = register_tracepoints();
	if (r)
		goto err_put_kp;
	return 0;

err_put_kp:
	unregister_kprobe(&put_kp);
err_destroy_kp:
	unregister_kprobe(&destroy_kp);
	return r;
}

void ft_hooks_uninit(void)
{
	unregister_tracepoints();
	/* unregister_kprobe() waits for running handlers (synchronize_rcu). */
	unregister_kprobe(&put_kp);
	unregister_kprobe(&destroy_kp);
}
