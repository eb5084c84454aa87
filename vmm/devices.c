// SPDX-License-Identifier: GPL-2.0
/*
 * The host devices that produce asynchronous inputs, and their path into
 * the guest.
 *
 * One device thread runs a timer (FTVM_TIMER_VECTOR every ~1 ms, jittered)
 * and a DMA device (every ~10 ms a block of random length and content into
 * the next slot of ftvm_dma, then FTVM_DMA_VECTOR). Both hand their inputs
 * to kvm_ft with KVM_FT_QUEUE_ASYNC: on a recorded VM the module applies
 * them at the next landmark and logs them, on a LIVE VM at the next entry.
 * ftvm never injects with KVM_INTERRUPT or writes guest memory itself on an
 * attached VM: the backup could not replay that.
 *
 * KVM_FT_QUEUE_ASYNC fails with EAGAIN while KVM_FT_ASYNC_QUEUE_MAX inputs
 * wait (a guest that runs long without a landmark).
 *
 * A standalone VM (no kvm_ft) gets the same inputs through a local queue
 * that the vCPU thread applies before each KVM_RUN, in order: DMA copied
 * into guest memory, interrupts injected with KVM_INTERRUPT when the guest
 * can take one (else an interrupt window is requested).
 *
 * For a planned failover the control thread holds the devices
 * (ftvm_devices_hold()): from then on nothing is queued, as if the queue
 * were full (a timer tick is dropped, a DMA block retried later), so the
 * module's queue drains and the primary can stop at a landmark.
 *
 * The timer line is level-like: a tick that finds the previous one still
 * queued (EAGAIN from the module, or pending locally) is dropped and
 * counted. A DMA block that cannot be queued is retried at the next period.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ftvm.h"
#include "workload.h"

#define TIMER_US	1000
#define DMA_US		10000
#define LOCAL_MAX	64

static int local_queue(struct ftvm *v, const struct ftvm_async_ev *ev)
{
	int r = 0;

	pthread_mutex_lock(&v->local_lock);
	if (v->local_len == LOCAL_MAX) {
		r = -EAGAIN;
	} else if (ev->type == FTVM_EV_IRQ) {
		for (size_t i = 0; i < v->local_len; i++) {
			const struct ftvm_async_ev *q = &v->local_q[(v->local_head + i) % LOCAL_MAX];

			if (q->type == FTVM_EV_IRQ && q->vector == ev->vector)
				r = -EAGAIN;	/* this line is still pending */
		}
	}
	if (!r) {
		struct ftvm_async_ev *q = &v->local_q[(v->local_head + v->local_len) % LOCAL_MAX];

		*q = *ev;
		q->data = NULL;
		if (ev->type == FTVM_EV_DMA) {
			q->data = malloc(ev->len);
			if (q->data)
				memcpy(q->data, ev->data, ev->len);
			else
				r = -ENOMEM;
		}
		if (!r)
			v->local_len++;
	}
	pthread_mutex_unlock(&v->local_lock);
	if (!r)
		vm_kick(v->vm);
	return r;
}

void ftvm_local_apply(struct ftvm *v)
{
	struct kvm_run *run = v->vm->run;
	bool want_window = false;

	pthread_mutex_lock(&v->local_lock);
	while (v->local_len) {
		struct ftvm_async_ev *q = &v->local_q[v->local_head];

		if (q->type == FTVM_EV_DMA) {
			void *p = vm_gpa2hva(v->vm, q->gpa, q->len);

			if (p)
				memcpy(p, q->data, q->len);
			free(q->data);
		} else if (run->ready_for_interrupt_injection && run->if_flag) {
			struct kvm_interrupt irq = { .irq = q->vector };

			if (ioctl(v->vm->vcpu_fd, KVM_INTERRUPT, &irq))
				ftvm_log("KVM_INTERRUPT: %s", strerror(errno));
			v->irqs_injected++;
			/* One per entry: the next one needs a new window. */
			run->ready_for_interrupt_injection = 0;
		} else {
			want_window = true;
			break;
		}
		v->local_head = (v->local_head + 1) % LOCAL_MAX;
		v->local_len--;
	}
	pthread_mutex_unlock(&v->local_lock);
	run->request_interrupt_window = want_window;
}

static int queue_async(struct ftvm *v, const struct ftvm_async_ev *ev)
{
	struct kvm_ft_async a = {
		.type = ev->type == FTVM_EV_IRQ ? KVM_FT_ASYNC_IRQ : KVM_FT_ASYNC_DMA,
		.vector = ev->type == FTVM_EV_IRQ ? ev->vector : 0,
		.gpa = ev->gpa, .data = (uint64_t)(uintptr_t)ev->data, .len = ev->len,
	};

	int r;

	if (v->standalone)
		return local_queue(v, ev);
	/* Held (planned failover): as if the queue were full. */
	pthread_mutex_lock(&v->dev_lock);
	if (v->dev_hold) {
		v->dev_held++;
		r = -EAGAIN;
	} else {
		r = ioctl(v->ft_fd, KVM_FT_QUEUE_ASYNC, &a) ? -errno : 0;
	}
	pthread_mutex_unlock(&v->dev_lock);
	return r;
}

void ftvm_devices_hold(struct ftvm *v, bool hold)
{
	pthread_mutex_lock(&v->dev_lock);
	v->dev_hold = hold;
	pthread_mutex_unlock(&v->dev_lock);
}

static uint64_t add_us(uint64_t t, uint64_t base_us, uint64_t *rng)
{
	/* base +- 50 % */
	return t + (base_us / 2 + kt_rand(rng) % (base_us + 1)) * 1000;
}

/*
 * Queues the block's write into its slot, unless *data_queued says an
 * earlier call did, then its interrupt. 0: both queued; -EAGAIN (counted in
 * dma_busy): the queue is full, call again at the next period; else -errno.
 */
static int dma_send(struct ftvm *v, struct ftvm_dma_slot *blk, bool *data_queued)
{
	struct ftvm_async_ev ev = {
		.type = FTVM_EV_DMA,
		.gpa = (uint64_t)(uintptr_t)&ftvm_dma[blk->seq % FTVM_DMA_SLOTS],
		.len = 16 + blk->len, .data = (uint8_t *)blk,
	};
	int r = 0;

	if (!*data_queued) {
		r = queue_async(v, &ev);
		*data_queued = !r;
	}
	if (!r) {
		ev = (struct ftvm_async_ev){ .type = FTVM_EV_IRQ, .vector = FTVM_DMA_VECTOR };
		r = queue_async(v, &ev);
	}
	if (r == -EAGAIN)
		v->dma_busy++;
	return r;
}

static void *dev_main(void *arg)
{
	struct ftvm *v = arg;
	uint64_t rng = v->seed ^ 0x5851f42d4c957f2dULL, now = ftvm_now_ns();
	uint64_t t_timer = add_us(now, TIMER_US, &rng), t_dma = add_us(now, DMA_US, &rng);
	static struct ftvm_dma_slot blk;	/* the block being sent */
	bool blk_ready = false, dma_irq_due = false;
	int r = 0;

	while (!__atomic_load_n(&v->dev_stop, __ATOMIC_ACQUIRE)) {
		uint64_t next = t_timer < t_dma ? t_timer : t_dma;
		struct timespec ts = { .tv_sec = next / 1000000000, .tv_nsec = next % 1000000000 };
		struct ftvm_async_ev ev;

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		now = ftvm_now_ns();
		if (now >= t_timer) {
			ev = (struct ftvm_async_ev){ .type = FTVM_EV_IRQ, .vector = FTVM_TIMER_VECTOR };
			r = queue_async(v, &ev);
			if (!r)
				v->timer_irqs++;
			else if (r == -EAGAIN)
				v->timer_dropped++;
			else
				goto fail;
			t_timer = add_us(now, TIMER_US, &rng);
		}
		if (now < t_dma)
			continue;
		t_dma = add_us(now, DMA_US, &rng);
		if (!blk_ready) {
			uint64_t k = ++v->dma_seq;

			blk.seq = k;
			blk.len = 1 + (uint32_t)(kt_rand(&rng) % FTVM_DMA_DATA_MAX);
			kt_fill_random(&rng, blk.data, blk.len);
			blk.sum = ftvm_dma_sum(blk.data, blk.len);
			blk_ready = true;
		}
		r = dma_send(v, &blk, &dma_irq_due);
		if (r == -EAGAIN)
			continue;
		if (r)
			goto fail;
		v->dma_blocks++;
		blk_ready = dma_irq_due = false;
	}
	return NULL;
fail:
	ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "queueing an asynchronous input: %s", strerror(-r));
	return NULL;
}

int ftvm_devices_start(struct ftvm *v)
{
	int r;

	if (v->dev_running)
		return 0;
	v->dev_stop = false;
	r = pthread_create(&v->dev_tid, NULL, dev_main, v);
	if (r)
		return -r;
	v->dev_running = true;
	return 0;
}

void ftvm_devices_stop(struct ftvm *v)
{
	if (!v->dev_running)
		return;
	__atomic_store_n(&v->dev_stop, true, __ATOMIC_RELEASE);
	pthread_join(v->dev_tid, NULL);
	v->dev_running = false;
}
