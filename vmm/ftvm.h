/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftvm, the FT-aware VMM: host-side objects shared by its parts.
 *
 *   ftvm.c     command line, the role flow with ftd, the control loop
 *   vcpu.c     the vCPU thread: KVM_RUN loop, the guest's ports
 *   devices.c  the timer and DMA device thread, and the path of their
 *              asynchronous inputs into the guest (KVM_FT_QUEUE_ASYNC, or
 *              KVM_INTERRUPT on a standalone VM)
 *   outq.c     outputs: the queue from the vCPU, the output rule, emission,
 *              the delay histogram
 *   ftdlink.c  the socket to ftd (daemon/ftd_vmm.h)
 *   replaylog.c the backup's outputs, read from its replay ring
 *   workload.c the guest (runs in the VM; workload.h)
 *
 * Threads: the control thread (main: ftd socket, signals, emission), the
 * vCPU thread, the device thread (unless --no-async; not on a backup) and the
 * replay-ring reader (backup only).
 */
#ifndef FTVM_H
#define FTVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm_ft.h>

#include "kvm_util.h"

#define FTVM_SEQ_NONE	UINT64_MAX	/* the output has no record (unlogged) */

/* Exit codes (documented in README.md). */
enum {
	FTVM_EXIT_OK		= 0,	/* --outputs reached, or SIGINT/SIGTERM */
	FTVM_EXIT_USAGE		= 1,
	FTVM_EXIT_SETUP		= 2,	/* /dev/kvm, /dev/kvm_ft, ftd socket, attach, bad snapshot */
	FTVM_EXIT_HALTED	= 3,	/* HALT from ftd, or ftd lost before going live */
	FTVM_EXIT_VM		= 4,	/* the VM stopped: guest error, divergence, ring error */
	FTVM_EXIT_PROTOCOL	= 5,	/* ftd broke the protocol */
};

enum ftvm_state {
	FTVM_STANDALONE,	/* no ftd, no kvm_ft */
	FTVM_PRIMARY,		/* RECORD: outputs wait for ACKED */
	FTVM_BACKUP,		/* REPLAY: outputs are kept, not emitted */
	FTVM_LIVE,		/* after GO_LIVE: outputs leave at once */
};

struct ftvm_output {
	uint64_t n;
	uint64_t hash;
	uint64_t seq;		/* record seq of the OUT of n, or FTVM_SEQ_NONE */
	uint64_t t_ns;		/* CLOCK_MONOTONIC at the exit */
};

/* Delay histogram: exact below 64 us, then 32 buckets per power of two. */
#define FTVM_HIST_SUB	32
#define FTVM_HIST_N	(64 + 40 * FTVM_HIST_SUB)
struct ftvm_hist {
	uint64_t count, max;
	uint64_t b[FTVM_HIST_N];
};

struct ftvm_outq {
	pthread_mutex_t lock;
	struct ftvm_output *q;		/* FIFO of outputs not emitted yet */
	size_t head, len, cap;
	int efd;			/* eventfd: the vCPU pushed, or stopped */
	int out_fd;			/* --out */
	bool out_sync;			/* out_fd takes fsync */
	uint64_t emitted, last_n;	/* outputs written; n of the last one */
	uint64_t emitted_seq;		/* highest seq written (EMITTED) */
	uint64_t told;			/* highest EMITTED sent to ftd on this attachment */
	uint64_t dropped, dropped_max_seq;	/* backup: kept outputs dropped */
	/* Exit -> written, microseconds: released by ACKED (the output rule), else. */
	struct ftvm_hist delay, delay_live;
};

/* The backup's reader of its replay ring (replaylog.c). */
struct ftvm_rlog {
	const struct kvm_ft_replay_producer *prod;	/* read-only mapping */
	const uint8_t *data;
	uint64_t size, len;
	uint64_t pos, seq;		/* next record and the seq it must carry */
	uint32_t lo, hi;		/* halves of the output being assembled */
	bool lost;			/* fell a lap behind: stopped */
	volatile bool stop;
	bool running;
	pthread_t tid;
};

struct ftvm {
	const char *name;
	uint64_t seed;
	uint64_t max_outputs;		/* 0 = run until told to stop */
	bool standalone;
	bool async;			/* run the timer and DMA device (not --no-async) */

	struct kvm_vm *vm;
	int ft_fd;			/* -1 when standalone */
	uint32_t ft_mode;		/* the mode it was attached in */
	size_t ft_map_len;
	const void *ft_map;		/* read-only: producer page or replay status */
	volatile __u64 *ft_next_seq;	/* next_seq in that page */

	volatile int state;		/* enum ftvm_state; written by the control thread */
	volatile int stop_code;		/* -1, or why the vCPU thread stopped */
	char stop_why[160];
	pthread_t vcpu_tid, dev_tid;
	bool dev_running;
	volatile bool dev_stop;
	/* Planned failover: the device thread queues nothing while held. */
	pthread_mutex_t dev_lock;
	bool dev_hold;
	uint64_t dev_held;		/* inputs held back (timer ticks dropped, DMA retried) */

	/*
	 * Planned failover (ftvm.c, vcpu.c): the control thread sets pause_req,
	 * the vCPU thread parks (paused) at a landmark until it is cleared.
	 * Primary: at a PIO exit with the module's async queue empty, after a
	 * KVM_RUN with immediate_exit completed it. Backup: when KVM_RUN
	 * returns EINTR (the control thread kicks it once replay reached S).
	 */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	bool pause_req, paused;

	/* vCPU thread only. */
	uint64_t rng;			/* RANDOM_PORT */
	uint32_t out_lo, out_hi;	/* halves of the output being assembled */
	uint64_t exits, pio_in, eintr;

	/* Standalone: asynchronous inputs for the vCPU thread to apply. */
	pthread_mutex_t local_lock;
	struct ftvm_async_ev *local_q;
	size_t local_head, local_len;
	uint64_t irqs_injected;

	/* Device thread. */
	uint64_t timer_irqs, timer_dropped, dma_blocks, dma_busy, dma_seq;

	struct ftvm_outq out;
	struct ftvm_rlog rlog;
};

void ftvm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ftvm_now_ns(void);

/* vcpu.c */
int ftvm_vcpu_start(struct ftvm *v);
/* The vCPU thread stops the VM: records why and wakes the control thread. */
void ftvm_vcpu_stopped(struct ftvm *v, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* vcpu.c: the control thread's side of the pause */
void ftvm_vcpu_pause(struct ftvm *v);
bool ftvm_vcpu_paused(struct ftvm *v);
void ftvm_vcpu_resume(struct ftvm *v);

/* devices.c */
enum { FTVM_EV_IRQ = 1, FTVM_EV_DMA = 2 };
struct ftvm_async_ev {
	uint32_t type;			/* FTVM_EV_IRQ or FTVM_EV_DMA */
	uint32_t vector;
	uint64_t gpa;
	uint32_t len;
	uint8_t *data;			/* malloc'ed; DMA only */
};
int ftvm_devices_start(struct ftvm *v);
void ftvm_devices_stop(struct ftvm *v);
/* Hold (queue nothing from now on, once this returns) or release the inputs. */
void ftvm_devices_hold(struct ftvm *v, bool hold);
/* Standalone, vCPU thread, before KVM_RUN: apply what the devices queued. */
void ftvm_local_apply(struct ftvm *v);

/* replaylog.c */
int ftvm_rlog_map(struct ftvm *v);
int ftvm_rlog_start(struct ftvm *v);
/* Stop the reader and read what is left. */
void ftvm_rlog_stop(struct ftvm *v);
/* Stop the reader and unmap the ring (the attachment is going away). */
void ftvm_rlog_unmap(struct ftvm *v);
void ftvm_rlog_scan(struct ftvm *v);

/* outq.c */
int ftvm_outq_init(struct ftvm_outq *o, const char *path);
/* vCPU thread: output n completed. */
void ftvm_outq_push(struct ftvm *v, const struct ftvm_output *out);
/*
 * Control thread: write every output the state allows, in order
 * (standalone/live: all; primary: seq <= acked; backup: none), and drop
 * the oldest kept ones past the backup's limit. Returns the highest seq
 * written in this call, or 0.
 */
uint64_t ftvm_outq_release(struct ftvm *v, uint64_t acked);
/*
 * Control thread, GO_LIVE(seq) on the backup: put the kept outputs in
 * guest order, forget those the old primary emitted (seq <= emitted_seq)
 * and those whose record the module never consumed (seq >= next_seq).
 */
void ftvm_outq_go_live(struct ftvm *v, uint64_t emitted_seq, uint64_t next_seq);
size_t ftvm_outq_len(struct ftvm *v);
/*
 * Control thread, a new attachment (RESUME with the other role, SNAPSHOT):
 * a new log starts at seq 1. Forgets every kept or held output, the emitted
 * seq and the last EMITTED told to ftd; returns
 * how many were forgotten (the new primary's kept outputs were all emitted
 * by the old one; the old primary has none left once ftd saw EMITTED).
 */
size_t ftvm_outq_swap(struct ftvm *v);
void ftvm_hist_add(struct ftvm_hist *h, uint64_t v);
uint64_t ftvm_hist_pct(const struct ftvm_hist *h, double p);

#endif
