// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft: record a KVM guest's nondeterministic inputs into a log ring.
 * Module init/exit and the /dev/kvm_ft misc device. See README for the
 * object model, lifetimes and lock order; uapi/linux/kvm_ft.h for the
 * interface.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include "ft.h"

static long ft_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case KVM_FT_GET_API_VERSION:
		return KVM_FT_API_VERSION;
	case KVM_FT_ATTACH:
		return ft_attach((const struct kvm_ft_attach __user *)arg);
	}
	return -ENOTTY;
}

static const struct file_operations ft_dev_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.unlocked_ioctl = ft_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

struct miscdevice ft_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = KVM_FT_DEVICE_NAME,
	.fops = &ft_dev_fops,
	.mode = 0666,	/* opening needs no privilege; mutations check CAP_SYS_ADMIN */
};

static int __init ft_init(void)
{
	int r;

	r = ft_svm_init();
	if (r)
		return r;
	r = ft_attach_init();
	if (r)
		goto err_svm;
	r = ft_hooks_init();
	if (r)
		goto err_attach;
	r = ft_genl_init();
	if (r)
		goto err_hooks;
	r = misc_register(&ft_misc);
	if (r)
		goto err_genl;
	return 0;

err_genl:
	ft_genl_uninit();
err_hooks:
	ft_hooks_uninit();
err_attach:
	ft_attach_uninit();
err_svm:
	ft_svm_uninit();
	return r;
}

/*
 * Runs only when no ft file is open and no tombstone is left (both hold
 * module references), so no VM carries an intercept of ours any more.
 */
static void __exit ft_exit(void)
{
	misc_deregister(&ft_misc);
	ft_genl_uninit();
	ft_hooks_uninit();
	ft_svm_uninit();
	ft_attach_uninit();
}

module_init(ft_init);
module_exit(ft_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Fault-tolerant KVM: record a guest's nondeterministic inputs");
MODULE_SOFTDEP("pre: kvm_amd");
