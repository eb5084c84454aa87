// SPDX-License-Identifier: GPL-2.0
/*
 * ft object lifetime: KVM_FT_ATTACH, the ft file (ioctl, mmap, poll,
 * release), the lookup table the probes use, and the tombstones that remove
 * our intercepts from a vCPU after its ft file is gone.
 */
#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "ft.h"

#define FT_HASH_BITS 4

/* Attached VMs by struct kvm *. Readers: RCU (probes run preempt-disabled). */
static DEFINE_HASHTABLE(ft_vm_hash, FT_HASH_BITS);
static DEFINE_MUTEX(ft_vms_lock);	/* writers of ft_vm_hash */
static struct kmem_cache *ft_vm_cache;
static atomic_t ft_next_id = ATOMIC_INIT(0);

/*
 * A tombstone says "vcpu of kvm may still carry our RDTSC intercept": left by
 * the release of an ft file, consumed by the vCPU's next entry (the kvm_entry
 * probe clears the intercept) or dropped when the VM is destroyed (kprobe on
 * kvm_arch_destroy_vm). The pointers are keys, never dereferenced. Each
 * tombstone holds a module reference, so rmmod is refused while a VM could
 * still enter the guest with an intercept nobody handles; the reference is
 * dropped only from probe context, which module exit waits for.
 */
struct ft_tomb {
	struct hlist_node node;		/* ft_tombs: RCU, writers hold ft_tomb_lock */
	const struct kvm *kvm;
	const struct kvm_vcpu *vcpu;
	struct rcu_head rcu;
};
static HLIST_HEAD(ft_tombs);
static DEFINE_SPINLOCK(ft_tomb_lock);

static const struct file_operations ft_vm_fops;

/* ft_ring.on_error: every ring error (bad consumer, overrun, ...) is an event. */
static void ring_error(struct ft_ring *r)
{
	ft_genl_event(container_of(r, struct ft_vm, ring), KVM_FT_EV_ERROR);
}

struct ft_vm *ft_vm_lookup(const struct kvm *kvm)
{
	struct ft_vm *ft;

	hash_for_each_possible_rcu(ft_vm_hash, ft, node, (unsigned long)kvm)
		if (ft->kvm == kvm)
			return ft;
	return NULL;
}

struct ft_vm *ft_vm_lookup_task(const void *task)
{
	struct ft_vm *ft;
	int bkt;

	hash_for_each_rcu(ft_vm_hash, bkt, ft, node)
		if (READ_ONCE(ft->run_task) == task)
			return ft;
	return NULL;
}

/*
 * Calls fn on the attachment with the smallest id above after_id, with
 * ft_vms_lock held (the ft cannot go away meanwhile). Returns fn's result,
 * or -ENOENT when there is none. Lets a genetlink dump resume by id.
 */
int ft_vm_visit_next(u32 after_id, int (*fn)(struct ft_vm *ft, void *arg), void *arg)
{
	struct ft_vm *ft, *best = NULL;
	int bkt, r = -ENOENT;

	mutex_lock(&ft_vms_lock);
	hash_for_each(ft_vm_hash, bkt, ft, node)
		if (ft->id > after_id && (!best || ft->id < best->id))
			best = ft;
	if (best)
		r = fn(best, arg);
	mutex_unlock(&ft_vms_lock);
	return r;
}

bool ft_tombs_pending(void)
{
	return !hlist_empty(&ft_tombs);
}

static void tomb_free(struct ft_tomb *t)
{
	kfree_rcu(t, rcu);
	module_put(THIS_MODULE);
}

/*
 * Probe context, or process context with a module reference of its own.
 * Returns true if the caller must clear the vCPU's intercept.
 */
bool ft_tomb_take(const struct kvm_vcpu *vcpu)
{
	struct ft_tomb *t, *found = NULL;
	unsigned long irqf;

	spin_lock_irqsave(&ft_tomb_lock, irqf);
	hlist_for_each_entry(t, &ft_tombs, node) {
		if (t->vcpu == vcpu) {
			hlist_del_rcu(&t->node);
			found = t;
			break;
		}
	}
	spin_unlock_irqrestore(&ft_tomb_lock, irqf);
	if (!found)
		return false;
	tomb_free(found);
	return true;
}

/* Probe context (kvm_arch_destroy_vm kprobe): the VM will never run again. */
void ft_tomb_drop_vm(const struct kvm *kvm)
{
	struct ft_tomb *t;
	struct hlist_node *tmp;
	unsigned long irqf;
	HLIST_HEAD(dead);

	spin_lock_irqsave(&ft_tomb_lock, irqf);
	hlist_for_each_entry_safe(t, tmp, &ft_tombs, node) {
		if (t->kvm == kvm) {
			hlist_del_rcu(&t->node);
			hlist_add_head(&t->node, &dead);
		}
	}
	spin_unlock_irqrestore(&ft_tomb_lock, irqf);
	/* Nobody reaches the list entries any more except lock-free readers
	 * of ft_tombs, which only test emptiness. */
	hlist_for_each_entry_safe(t, tmp, &dead, node)
		tomb_free(t);
}

static void tomb_add(struct ft_vm *ft)
{
	struct ft_tomb *t = kmalloc(sizeof(*t), GFP_KERNEL | __GFP_NOFAIL);
	unsigned long irqf;

	t->kvm = ft->kvm;
	t->vcpu = ft->vcpu;
	__module_get(THIS_MODULE);	/* we hold one through the ft file */
	spin_lock_irqsave(&ft_tomb_lock, irqf);
	hlist_add_head_rcu(&t->node, &ft_tombs);
	spin_unlock_irqrestore(&ft_tomb_lock, irqf);
}

static int check_vcpus(struct kvm *kvm, struct kvm_vcpu **vcpu)
{
	int r = 0;

	/* created_vcpus is under kvm->lock; a vCPU created after this point
	 * is caught by its first exit (KVM_FT_ERR_MULTI_VCPU). */
	mutex_lock(&kvm->lock);
	if (kvm->created_vcpus != 1 || atomic_read(&kvm->online_vcpus) != 1)
		r = -EINVAL;
	mutex_unlock(&kvm->lock);
	if (r)
		return r;
	*vcpu = kvm_get_vcpu(kvm, 0);
	return *vcpu ? 0 : -EINVAL;
}

long ft_attach(const struct kvm_ft_attach __user *uarg)
{
	struct kvm_ft_attach a;
	struct kvm_vcpu *vcpu;
	struct ft_vm *ft, *busy;
	struct file *file;
	struct kvm *kvm;
	struct fd f;
	u32 order;
	int i, fd, r;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags & ~KVM_FT_ATTACH_F_ALL)
		return -EOPNOTSUPP;
	if (a.mode != KVM_FT_MODE_RECORD && a.mode != KVM_FT_MODE_REPLAY)
		return -EOPNOTSUPP;
	for (i = 0; i < ARRAY_SIZE(a.reserved); i++)
		if (a.reserved[i])
			return -EOPNOTSUPP;
	if (a.position_us && a.position_us != KVM_FT_POSITION_OFF &&
	    (a.position_us < KVM_FT_POSITION_US_MIN || a.position_us > KVM_FT_POSITION_US_MAX))
		return -EINVAL;
	if ((a.flags & KVM_FT_ATTACH_F_REPLAY_OUTPUTS) && a.mode != KVM_FT_MODE_REPLAY)
		return -EINVAL;
	order = a.ring_order ? a.ring_order : KVM_FT_RING_ORDER_DEFAULT;
	if (order < KVM_FT_RING_ORDER_MIN || order > KVM_FT_RING_ORDER_MAX)
		return -EINVAL;

	f = fdget(a.vm_fd);
	if (!f.file)
		return -EBADF;
	if (!file_is_kvm(f.file)) {
		fdput(f);
		return -EINVAL;
	}
	kvm = f.file->private_data;
	kvm_get_kvm(kvm);
	fdput(f);

	r = check_vcpus(kvm, &vcpu);
	if (r)
		goto err_put_kvm;
	/* The VM pins the vendor module, so arming the hook now is race-free. */
	r = ft_svm_arm();
	if (r)
		goto err_put_kvm;
	r = ft_svm_check_vcpu(vcpu);
	if (!r && a.mode == KVM_FT_MODE_REPLAY)
		r = ft_svm_can_replay();
	if (r)
		goto err_put_kvm;
	/*
	 * vcpu->mutex keeps KVM_SET_CPUID2 from freeing the entries. If the
	 * vCPU is busy (KVM_RUN may hold the mutex for long), the kvm_entry
	 * probe checks at the first entry instead and stops the VM with
	 * KVM_FT_ERR_UNSUPPORTED; attach never blocks on a running vCPU.
	 */
	if (!(a.flags & KVM_FT_ATTACH_F_ALLOW_UNSAFE_CPUID) &&
	    mutex_trylock(&vcpu->mutex)) {
		r = ft_cpuid_check(vcpu);
		mutex_unlock(&vcpu->mutex);
		if (r)
			goto err_put_kvm;
	}

	ft = kmem_cache_zalloc(ft_vm_cache, GFP_KERNEL);
	if (!ft) {
		r = -ENOMEM;
		goto err_put_kvm;
	}
	r = ft_ring_init(&ft->ring, order, a.mode == KVM_FT_MODE_REPLAY);
	if (r)
		goto err_free_ft;
	if (a.mode == KVM_FT_MODE_REPLAY) {
		ft->rbuf = kmalloc(KVM_FT_RING_RESERVE, GFP_KERNEL);
		if (!ft->rbuf) {
			r = -ENOMEM;
			goto err_ring;
		}
	}
	ft->ring.on_error = ring_error;
	mutex_init(&ft->lock);
	ft_async_init(ft);
	ft->kvm = kvm;
	ft->vcpu = vcpu;
	ft->mode = a.mode;
	ft->vm_pid = kvm->userspace_pid;
	ft_digest_init(ft, a.digest_interval == KVM_FT_DIGEST_OFF ? 0 :
			   a.digest_interval ?: KVM_FT_DIGEST_INTERVAL_DEFAULT);
	ft_pos_init(ft, a.mode != KVM_FT_MODE_RECORD || a.position_us == KVM_FT_POSITION_OFF ?
			0 : a.position_us);
	/*
	 * Without the flag FT_S_CPUID_OK stays clear even when the check above
	 * passed: a KVM_SET_CPUID2 between now and the first KVM_RUN (after
	 * it KVM refuses changes) is caught by the first-entry check.
	 */
	/*
	 * The start is landmark 0: like any landmark, the vCPU does not enter
	 * before it knows the next record (a POSITION may be the first).
	 */
	if (a.mode == KVM_FT_MODE_REPLAY)
		set_bit(FT_S_RP_ASYNC, &ft->state);
	if (a.flags & KVM_FT_ATTACH_F_REPLAY_OUTPUTS)
		ft->info_flags |= KVM_FT_INFO_F_REPLAY_OUTPUTS;
	if (a.flags & KVM_FT_ATTACH_F_ALLOW_UNSAFE_CPUID) {
		ft->info_flags |= KVM_FT_INFO_F_UNSAFE_CPUID;
		set_bit(FT_S_CPUID_OK, &ft->state);
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto err_ring;
	}

	mutex_lock(&ft_vms_lock);
	rcu_read_lock();
	busy = ft_vm_lookup(kvm);
	rcu_read_unlock();
	if (busy && !test_bit(FT_S_DETACHED, &busy->state)) {
		r = -EBUSY;
		goto err_unlock;
	}
	/* f_op->owner pins this module until the last reference is gone. */
	file = anon_inode_getfile("kvm_ft", &ft_vm_fops, ft, O_RDWR | O_CLOEXEC);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		goto err_unlock;
	}
	ft->file = file;
	ft->id = atomic_inc_return(&ft_next_id);
	/*
	 * A new attachment of the same vCPU takes over the intercept. The
	 * tombstone's module reference is not the last one here: the caller's
	 * /dev/kvm_ft file holds another.
	 */
	if (ft_tomb_take(vcpu))
		set_bit(FT_S_INTERCEPT, &ft->state);
	/*
	 * A detached attachment whose file is still open (its reader drains
	 * the old ring) gives the VM up to the new one: probes find only the
	 * new one from now on (a probe that found the old one sees it
	 * detached). Its release later clears the intercept only with the
	 * vCPU outside KVM_RUN, and the new one sets it again at every entry.
	 */
	if (busy)
		hash_del_rcu(&busy->node);
	hash_add_rcu(ft_vm_hash, &ft->node, (unsigned long)kvm);
	pr_debug("attached vm %u (pid %d) ring order %u\n", ft->id, ft->vm_pid, order);
	ft_genl_event(ft, KVM_FT_EV_ATTACH);
	mutex_unlock(&ft_vms_lock);

	/* From here user space may close the fd: ft is no longer ours to touch. */
	fd_install(fd, file);
	return fd;

err_unlock:
	mutex_unlock(&ft_vms_lock);
	put_unused_fd(fd);
err_ring:
	kfree(ft->rbuf);
	ft_ring_destroy(&ft->ring);
err_free_ft:
	kmem_cache_free(ft_vm_cache, ft);
err_put_kvm:
	kvm_put_kvm(kvm);
	return r;
}

void ft_vm_detach(struct ft_vm *ft)
{
	mutex_lock(&ft->lock);
	if (!test_and_set_bit(FT_S_DETACHED, &ft->state)) {
		/* The next kvm_entry probe removes the intercept (ft_vm_recording). */
		ft_ring_set_flags(&ft->ring, KVM_FT_RING_F_DETACHED, 0);
		ft_genl_event(ft, KVM_FT_EV_DETACH);
	}
	mutex_unlock(&ft->lock);
}

static int ft_vm_release(struct inode *inode, struct file *file)
{
	struct ft_vm *ft = file->private_data;

	ft_vm_detach(ft);
	mutex_lock(&ft_vms_lock);
	if (!hlist_unhashed(&ft->node))	/* else a new attachment took over */
		hash_del_rcu(&ft->node);
	mutex_unlock(&ft_vms_lock);
	/* Probes run with preemption disabled: after this none can see ft. */
	synchronize_rcu();
	/*
	 * FT_S_INTERCEPT is final now. A vCPU outside KVM_RUN loses the
	 * intercept here; a running one at its next entry, through a
	 * tombstone. Until either happens its RDTSC exits are still handled
	 * by our ftrace hook, which stays armed while this file pins the
	 * module. Never block on vcpu->mutex: KVM_RUN may hold it for long.
	 */
	if (test_bit(FT_S_INTERCEPT, &ft->state)) {
		bool cleared = false;

		if (mutex_trylock(&ft->vcpu->mutex)) {
			cleared = ft_svm_clear_intercept_locked(ft->vcpu);
			mutex_unlock(&ft->vcpu->mutex);
		}
		if (!cleared)
			tomb_add(ft);
	}
	ft_pos_destroy(ft);
	ft_async_destroy(ft);
	kfree(ft->rbuf);
	ft_ring_destroy(&ft->ring);
	kvm_put_kvm(ft->kvm);
	kmem_cache_free(ft_vm_cache, ft);
	return 0;
}

static long get_info(struct ft_vm *ft, struct kvm_ft_info __user *uinfo)
{
	struct kvm_ft_info info = {
		.api_version = KVM_FT_API_VERSION,
		.mode = READ_ONCE(ft->mode),
		.page_size = PAGE_SIZE,
		.ring_order = ft->ring.order,
		.data_size = ft->ring.size,
		.consumer_off = KVM_FT_MMAP_CONSUMER_OFF,
		.producer_off = KVM_FT_MMAP_PRODUCER_OFF,
		.producer_len = PAGE_SIZE + ft->ring.size,
		.vm_id = ft->id,
		.vendor = KVM_FT_VENDOR_SVM,
		.vm_pid = ft->vm_pid,
		.flags = ft->info_flags,
	};

	if (test_bit(FT_S_DETACHED, &ft->state))
		info.flags |= KVM_FT_INFO_F_DETACHED;
	return copy_to_user(uinfo, &info, sizeof(info)) ? -EFAULT : 0;
}

static long get_stats(struct ft_vm *ft, struct kvm_ft_stats __user *ustats)
{
	struct kvm_ft_stats st;

	ft_ring_stats(&ft->ring, &st);
	memset(st.reserved, 0, sizeof(st.reserved));
	st.async_pending = READ_ONCE(ft->aq_count);
	st.positions = atomic64_read(&ft->pos.positions);
	st.kicks = atomic64_read(&ft->pos.kicks);
	return copy_to_user(ustats, &st, sizeof(st)) ? -EFAULT : 0;
}

static long set_mode(struct ft_vm *ft, unsigned long mode)
{
	long r = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (mode != KVM_FT_MODE_RECORD && mode != KVM_FT_MODE_REPLAY &&
	    mode != KVM_FT_MODE_LIVE)
		return -EOPNOTSUPP;
	mutex_lock(&ft->lock);
	if (test_bit(FT_S_DETACHED, &ft->state)) {
		r = -ENODEV;
	} else if ((ft->mode == KVM_FT_MODE_RECORD ||
		    ft->mode == KVM_FT_MODE_REPLAY) && mode == KVM_FT_MODE_LIVE) {
		/*
		 * Probes stop recording (replaying) at once; the next entry
		 * drops the intercept; a vCPU waiting for space (records) runs.
		 */
		WRITE_ONCE(ft->mode, KVM_FT_MODE_LIVE);
		/* Queued asynchronous inputs now apply at the next entry. */
		if (READ_ONCE(ft->aq_count))
			kvm_vcpu_kick(ft->vcpu);
		wake_up_all(&ft->ring.space_wq);
		ft_ring_wake(&ft->ring, false);
		ft_genl_event(ft, KVM_FT_EV_MODE);
	} else {
		r = -EINVAL;
	}
	mutex_unlock(&ft->lock);
	return r;
}

static long ft_vm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ft_vm *ft = file->private_data;

	switch (cmd) {
	case KVM_FT_GET_INFO:
		return get_info(ft, (struct kvm_ft_info __user *)arg);
	case KVM_FT_GET_STATS:
		return get_stats(ft, (struct kvm_ft_stats __user *)arg);
	case KVM_FT_SET_MODE:
		return set_mode(ft, arg);
	case KVM_FT_GET_DIVERGENCE:
		return ft_replay_get_divergence(ft, (void __user *)arg);
	case KVM_FT_QUEUE_ASYNC:
		return ft_async_queue(ft, (const struct kvm_ft_async __user *)arg);
	case KVM_FT_REQUEST_MEM_DIGEST:
		return ft_digest_request(ft);
	case KVM_FT_GET_DIGEST:
		return ft_digest_get(ft, (void __user *)arg);
	case KVM_FT_DETACH:
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		ft_vm_detach(ft);
		return 0;
	}
	return -ENOTTY;
}

static int ft_vm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ft_vm *ft = file->private_data;

	return ft_ring_mmap(&ft->ring, vma);
}

/*
 * POLLHUP also when the VM is gone for its users: our reference is the only
 * one left (all VM and vCPU fds closed), nobody can run it again.
 */
static __poll_t ft_vm_poll(struct file *file, poll_table *wait)
{
	struct ft_vm *ft = file->private_data;
	__poll_t mask = ft_ring_poll(&ft->ring, file, wait);

	if (refcount_read(&ft->kvm->users_count) == 1)
		mask |= EPOLLHUP;
	return mask;
}

/* kvm_put_kvm kprobe (probe context): wake pollers when the VM's users are gone. */
void ft_vm_put_notify(const struct kvm *kvm)
{
	struct ft_vm *ft = ft_vm_lookup(kvm);

	/* The reference being dropped and ours are the last two. */
	if (ft && refcount_read(&kvm->users_count) == 2)
		wake_up_interruptible_poll(&ft->ring.read_wq, EPOLLHUP);
}

static const struct file_operations ft_vm_fops = {
	.owner = THIS_MODULE,
	.release = ft_vm_release,
	.unlocked_ioctl = ft_vm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = ft_vm_mmap,
	.poll = ft_vm_poll,
	.llseek = noop_llseek,
};

int ft_attach_init(void)
{
	ft_vm_cache = KMEM_CACHE(ft_vm, 0);
	return ft_vm_cache ? 0 : -ENOMEM;
}

void ft_attach_uninit(void)
{
	struct ft_tomb *t;
	struct hlist_node *tmp;

	/*
	 * Module exit runs only without ft files (each pins the module) and
	 * without tombstones (each holds a reference), so both sets are empty;
	 * free defensively without touching the module count.
	 */
	spin_lock_irq(&ft_tomb_lock);
	hlist_for_each_entry_safe(t, tmp, &ft_tombs, node) {
		hlist_del_rcu(&t->node);
		kfree_rcu(t, rcu);
	}
	spin_unlock_irq(&ft_tomb_lock);
	rcu_barrier();
	kmem_cache_destroy(ft_vm_cache);
}
