// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm — the FT-aware VMM: runs one protected guest (workload.c) as the
 * primary or the backup of a pair, as ftd (daemon/ftd_vmm.h) says.
 *
 *   ftvm --name NAME [--ftd-socket PATH] [--out PATH] [--seed N]
 *        [--outputs N] [--standalone]
 *
 * Flow: HELLO to ftd, ROLE, build the VM (identical on both hosts: this
 * binary's image, 64 MiB, the same registers and CPUID), attach it to
 * /dev/kvm_ft in RECORD (primary) or REPLAY (backup) mode, ATTACHED with
 * the ft fd, run. The control thread (this one) then serves ftd: ACKED
 * releases held outputs (the output rule), GO_LIVE makes the VM live
 * (re-emitting what the old primary may not have emitted), HALT stops it.
 * PAUSE / RESUME (planned failover, ftctl failover): both replicas stop at
 * the same landmark, then swap roles by detaching and attaching the same
 * VM again in the other mode (see pause_start() and resume()).
 * Re-protection: SNAPSHOT makes a live VM a primary again, its state
 * captured for the new backup; SEED (instead of ROLE) builds the backup's
 * VM from such a snapshot (snapshot.c, snapshot()).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "ftvm.h"
#include "ftdlink.h"
#include "snapshot.h"
#include "ft_ring.h"
#include "guest.h"
#include "workload.h"

#define MEM_SIZE	(64ULL << 20)

/*
 * How long ftvm tries to pause before it gives up without answering PAUSED
 * (ftd then times out and sends RESUME with the old role). The primary
 * needs a PIO exit with the module's async queue empty: a guest that does
 * not exit cannot be paused (no exit-free fallback yet).
 */
#define PAUSE_BOUND_MS	4000

static const char *state_names[] = {
	[FTVM_STANDALONE] = "standalone", [FTVM_PRIMARY] = "primary",
	[FTVM_BACKUP] = "backup", [FTVM_LIVE] = "live",
};

void ftvm_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* One write per line: lines of concurrent threads never mix. */
	dprintf(STDERR_FILENO, "ftvm: %.*s", n, buf);
}

uint64_t ftvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ftvm --name NAME [--ftd-socket PATH] [--out PATH] [--seed N]\n"
		"            [--outputs N] [--standalone] [--no-async]\n"
		"  --name NAME        the protected VM's name (sent to ftd; at most 31 bytes)\n"
		"  --ftd-socket PATH  ftd's VMM socket (default %s)\n"
		"  --out PATH         where outputs go, one line \"out <n> <hash-hex16>\" each\n"
		"                     (default: standard output)\n"
		"  --seed N           seed of the host devices (random port, timer, DMA)\n"
		"  --outputs N        exit 0 after emitting output N\n"
		"  --standalone       no ftd, no kvm_ft: a plain VM (comparison, bench)\n"
		"  --no-async         no timer and DMA device: the guest's only inputs are\n"
		"                     its port reads and RDTSC\n"
		"exit codes: 0 done, 1 usage, 2 setup failed, 3 halted (HALT, or ftd lost\n"
		"before going live), 4 the VM stopped (guest error, divergence), 5 ftd broke\n"
		"the protocol\n", FTD_VMM_SOCKET);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || !*s || *end || *s == '-' ? -1 : 0;
}

static void log_delay(const char *what, const struct ftvm_hist *h)
{
	if (!h->count)
		return;
	ftvm_log("stats: %s: median %llu us, p99 %llu us, max %llu us over %llu outputs", what,
		 (unsigned long long)ftvm_hist_pct(h, 0.5), (unsigned long long)ftvm_hist_pct(h, 0.99),
		 (unsigned long long)h->max, (unsigned long long)h->count);
}

static void print_stats(struct ftvm *v)
{
	struct ftvm_outq *o = &v->out;
	struct ftvm_guest_stats g = { 0 };
	uint64_t timer = 0, dma = 0;
	struct kvm_ft_stats s;

	if (v->vm)
		vm_read(v->vm, &ftvm_gstats, &g, sizeof(g));
	ftvm_log("stats: %llu exits (%llu random-port reads, %llu EINTR), %llu outputs emitted "
		 "(last n %llu), %zu held or kept, guest at output %llu",
		 (unsigned long long)v->exits, (unsigned long long)v->pio_in,
		 (unsigned long long)v->eintr, (unsigned long long)o->emitted,
		 (unsigned long long)o->last_n, o->len, (unsigned long long)g.outputs);
	log_delay("output-rule delay (exit -> acked and written)", &o->delay);
	log_delay("unprotected delay (exit -> written, standalone or live)", &o->delay_live);
	if (v->vm) {
		vm_read(v->vm, (const void *)(uintptr_t)&guest_irq.per_vector[FTVM_TIMER_VECTOR],
			&timer, sizeof(timer));
		vm_read(v->vm, (const void *)(uintptr_t)&guest_irq.per_vector[FTVM_DMA_VECTOR],
			&dma, sizeof(dma));
	}
	ftvm_log("stats: devices: %llu timer irqs queued (%llu dropped), %llu dma blocks sent "
		 "(%llu retried)", (unsigned long long)v->timer_irqs,
		 (unsigned long long)v->timer_dropped, (unsigned long long)v->dma_blocks,
		 (unsigned long long)v->dma_busy);
	ftvm_log("stats: guest: %llu timer irqs, %llu dma irqs, %llu dma blocks checked "
		 "(%llu re-read, %llu overwritten unseen)", (unsigned long long)timer,
		 (unsigned long long)dma, (unsigned long long)g.dma_blocks,
		 (unsigned long long)g.dma_retries, (unsigned long long)g.dma_skipped);
	if (v->ft_fd >= 0 && !ioctl(v->ft_fd, KVM_FT_GET_STATS, &s))
		ftvm_log("stats: module: %llu guest exits, %llu records, %llu ring waits (%llu us)",
			 (unsigned long long)s.exits, (unsigned long long)s.records,
			 (unsigned long long)s.ring_waits, (unsigned long long)s.ring_wait_ns / 1000);
}

static __attribute__((noreturn)) void finish(struct ftvm *v, int code)
{
	print_stats(v);
	ftvm_log("exit %d", code);
	exit(code);
}

/* Attach the VM to kvm_ft and map the page holding next_seq read-only. */
static int attach(struct ftvm *v, uint32_t mode)
{
	struct kvm_ft_info info;
	int dev = ft_open(), fd;
	void *p;

	if (dev < 0) {
		ftvm_log("open /dev/%s: %s (is kvm_ft loaded?)", KVM_FT_DEVICE_NAME, strerror(-dev));
		return -1;
	}
	fd = ft_attach(dev, v->vm->vm_fd, mode, 0, 0);
	close(dev);
	if (fd < 0) {
		ftvm_log("KVM_FT_ATTACH (%s): %s", mode == KVM_FT_MODE_RECORD ? "record" : "replay",
			 strerror(-fd));
		return -1;
	}
	if (ioctl(fd, KVM_FT_GET_INFO, &info)) {
		ftvm_log("KVM_FT_GET_INFO: %s", strerror(errno));
		return -1;
	}
	if (mode == KVM_FT_MODE_RECORD) {
		v->ft_map_len = info.producer_len;
		p = mmap(NULL, info.producer_len, PROT_READ, MAP_SHARED, fd, info.producer_off);
		v->ft_next_seq = p == MAP_FAILED ? NULL :
			&((struct kvm_ft_ring_producer *)p)->next_seq;
	} else {
		v->ft_map_len = info.page_size;
		p = mmap(NULL, info.page_size, PROT_READ, MAP_SHARED, fd,
			 KVM_FT_MMAP_REPLAY_STATUS_OFF);
		v->ft_next_seq = p == MAP_FAILED ? NULL :
			&((struct kvm_ft_replay_status *)p)->next_seq;
	}
	if (p == MAP_FAILED) {
		ftvm_log("mmap of the ring's %s page: %s",
			 mode == KVM_FT_MODE_RECORD ? "producer" : "status", strerror(errno));
		return -1;
	}
	v->ft_map = p;
	v->ft_fd = fd;
	v->ft_mode = mode;
	ftvm_log("attached to kvm_ft as vm %u in %s mode, ring of %llu KiB", info.vm_id,
		 mode == KVM_FT_MODE_RECORD ? "record" : "replay",
		 (unsigned long long)info.data_size >> 10);
	return 0;
}

static int build_vm(struct ftvm *v)
{
	struct vm_opts opts = { .mem_size = MEM_SIZE };
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	/* vm_create() fails hard; say clearly why before it does. */
	if (fd < 0) {
		ftvm_log("open /dev/kvm: %s", strerror(errno));
		return -1;
	}
	close(fd);
	v->vm = vm_create(&opts, ftvm_guest_main, NULL);
	return 0;
}

/* ---- planned failover ---- */

enum { PAUSE_NONE, PAUSE_PAUSING, PAUSE_PAUSED };

struct pause_st {
	int phase;
	uint64_t seq;		/* backup: S, the old primary's PAUSED seq */
	bool kicked;		/* backup: replay reached S, the vCPU was told */
	uint64_t at;		/* the PAUSED seq */
	bool all_emitted;	/* primary: EMITTED(at) sent */
	uint64_t t0, t_paused;	/* when PAUSE came, when the vCPU parked */
};

/* Primary: the last record logged; backup: the last record replayed. */
static uint64_t last_seq(struct ftvm *v)
{
	return __atomic_load_n(v->ft_next_seq, __ATOMIC_ACQUIRE) - 1;
}

static void pause_start(struct ftvm *v, struct pause_st *p, uint64_t seq)
{
	if (p->phase != PAUSE_NONE) {
		ftvm_log("PAUSE while pausing or paused: ignored");
		return;
	}
	if (v->state != FTVM_PRIMARY && v->state != FTVM_BACKUP) {
		ftvm_log("PAUSE while %s: ignored (no pair to swap with)", state_names[v->state]);
		return;
	}
	*p = (struct pause_st){ .phase = PAUSE_PAUSING, .seq = seq, .t0 = ftvm_now_ns() };
	if (v->state == FTVM_PRIMARY) {
		/* Inputs wait in the devices; the module's queue drains at landmarks. */
		ftvm_devices_hold(v, true);
		ftvm_vcpu_pause(v);
		ftvm_log("PAUSE: holding device inputs, stopping at the next landmark");
	} else {
		ftvm_log("PAUSE: replaying up to seq %llu, then stopping",
			 (unsigned long long)seq);
	}
}

static void pause_cancel(struct ftvm *v, struct pause_st *p)
{
	ftvm_vcpu_resume(v);
	ftvm_devices_hold(v, false);
	p->phase = PAUSE_NONE;
}

/*
 * Control loop while pausing: true when the vCPU is parked at the pause
 * point and PAUSED(*seq) must go to ftd. Gives up after PAUSE_BOUND_MS.
 */
static bool pause_step(struct ftvm *v, struct pause_st *p, uint64_t *seq)
{
	uint64_t now = ftvm_now_ns();

	if (p->phase != PAUSE_PAUSING)
		return false;
	if (v->state == FTVM_BACKUP && !p->kicked) {
		uint64_t done = last_seq(v);

		if (done > p->seq) {
			ftvm_log("PAUSE: replayed seq %llu, past the pause point %llu: not pausing",
				 (unsigned long long)done, (unsigned long long)p->seq);
			pause_cancel(v, p);
			return false;
		}
		if (done == p->seq) {
			ftvm_vcpu_pause(v);
			p->kicked = true;
		}
	}
	if (ftvm_vcpu_paused(v)) {
		*seq = p->at = last_seq(v);
		p->phase = PAUSE_PAUSED;
		p->t_paused = now;
		ftvm_log("PAUSED at seq %llu after %llu us", (unsigned long long)*seq,
			 (unsigned long long)(now - p->t0) / 1000);
		return true;
	}
	if (now - p->t0 > PAUSE_BOUND_MS * 1000000ULL) {
		ftvm_log("PAUSE: not paused within %d ms (%s): going on, no PAUSED", PAUSE_BOUND_MS,
			 v->state == FTVM_PRIMARY ? "no PIO exit with the async queue empty" :
			 "the replay did not reach the pause point");
		pause_cancel(v, p);
	}
	return false;
}

static int attach(struct ftvm *v, uint32_t mode);

/* Detach the VM from kvm_ft (its state stays), drop the ft fd and its map. */
static void detach(struct ftvm *v)
{
	if (ioctl(v->ft_fd, KVM_FT_DETACH))
		ftvm_log("KVM_FT_DETACH: %s", strerror(errno));
	munmap((void *)v->ft_map, v->ft_map_len);
	close(v->ft_fd);
	v->ft_fd = -1;
	v->ft_map = NULL;
}

/*
 * RESUME(role): the same role continues as before; the other role swaps:
 * detach, attach the same VM in the other mode (a new log from seq 1),
 * ATTACHED with the new fd, then the vCPU and devices run again. Returns
 * 0 or an exit code.
 */
static int resume(struct ftvm *v, struct pause_st *p, int sock, uint32_t role, uint64_t *acked)
{
	int want = role == FTD_VMM_ROLE_PRIMARY ? FTVM_PRIMARY : FTVM_BACKUP;
	struct ftd_vmm_msg m = { .type = FTD_VMM_ATTACHED };
	uint64_t t0 = ftvm_now_ns();
	size_t n;
	int r;

	if (want == v->state) {
		ftvm_log("RESUME as %s: the failover was abandoned, going on", state_names[want]);
		pause_cancel(v, p);
		return 0;
	}
	if (p->phase != PAUSE_PAUSED || (v->state != FTVM_PRIMARY && v->state != FTVM_BACKUP)) {
		ftvm_log("RESUME as %s while %s and not paused", state_names[want],
			 state_names[v->state]);
		return FTVM_EXIT_PROTOCOL;
	}
	if (v->state == FTVM_PRIMARY) {
		ftvm_devices_stop(v);
		n = ftvm_outq_len(v);
		if (n) {
			ftvm_log("RESUME as backup with %zu outputs not emitted (ftd must wait for "
				 "EMITTED first)", n);
			return FTVM_EXIT_PROTOCOL;
		}
	} else {
		ftvm_rlog_unmap(v);
	}
	/* The new primary's kept outputs were all emitted by the old one. */
	n = ftvm_outq_swap(v);
	detach(v);
	if (attach(v, want == FTVM_PRIMARY ? KVM_FT_MODE_RECORD : KVM_FT_MODE_REPLAY))
		return FTVM_EXIT_SETUP;
	if (want == FTVM_BACKUP && ((r = ftvm_rlog_map(v)) || (r = ftvm_rlog_start(v)))) {
		ftvm_log("reading the replay ring: %s", strerror(-r));
		return FTVM_EXIT_SETUP;
	}
	v->state = want;
	*acked = 0;
	if ((r = ftd_link_send(sock, &m, v->ft_fd))) {
		ftvm_log("ATTACHED to ftd: %s", strerror(-r));
		return FTVM_EXIT_HALTED;
	}
	ftvm_devices_hold(v, false);
	if (want == FTVM_PRIMARY && v->async && ftvm_devices_start(v))
		ftvm_log("RESUME: starting the device thread failed: no timer, no DMA");
	ftvm_vcpu_resume(v);
	p->phase = PAUSE_NONE;
	ftvm_log("RESUME: swapped to %s in %llu us (%zu kept outputs forgotten), paused %llu ms "
		 "in all", state_names[want], (unsigned long long)(ftvm_now_ns() - t0) / 1000, n,
		 (unsigned long long)(ftvm_now_ns() - p->t_paused) / 1000000);
	return 0;
}

/* ---- re-protection: SNAPSHOT of the live VM ---- */

static void snapshot_refuse(int sock, const char *why)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_SNAPSHOT_READY };
	int r;

	ftvm_log("SNAPSHOT refused: %s; going on live", why);
	if ((r = ftd_link_send(sock, &m, -1)))
		ftvm_log("SNAPSHOT_READY to ftd: %s", strerror(-r));
}

/*
 * SNAPSHOT (daemon/ftd_vmm.h): stop the live VM at a landmark, capture it,
 * attach it again in RECORD mode at exactly that state, answer
 * SNAPSHOT_READY with the memfd and ATTACHED with the new ft fd, run on as
 * the primary. Returns 0 or an exit code.
 */
static int snapshot(struct ftvm *v, struct pause_st *p, int sock, uint64_t *acked)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_SNAPSHOT_READY };
	uint64_t t0 = ftvm_now_ns(), t_paused, t_cap, len;
	int fd, r;

	if (v->state != FTVM_LIVE || p->phase != PAUSE_NONE) {
		snapshot_refuse(sock, v->state != FTVM_LIVE ? "the VM is not live" :
				"a planned failover is under way");
		return 0;
	}
	ftvm_devices_hold(v, true);
	ftvm_vcpu_pause(v);
	while (!ftvm_vcpu_paused(v)) {
		if (__atomic_load_n(&v->stop_code, __ATOMIC_ACQUIRE) >= 0)
			return 0;	/* the control loop reports it */
		if (ftvm_now_ns() - t0 > PAUSE_BOUND_MS * 1000000ULL) {
			ftvm_vcpu_resume(v);
			ftvm_devices_hold(v, false);
			snapshot_refuse(sock, "the vCPU did not stop at a landmark in time");
			return 0;
		}
		usleep(100);
	}
	t_paused = ftvm_now_ns();
	/* Live: every output made so far leaves now; the new log starts clean. */
	ftvm_outq_release(v, 0);
	fd = ftvm_snap_capture(v, &len);
	if (fd < 0) {
		ftvm_vcpu_resume(v);
		ftvm_devices_hold(v, false);
		snapshot_refuse(sock, "capturing the VM failed");
		return 0;
	}
	t_cap = ftvm_now_ns();
	/* A backup that went live still maps its old replay ring. */
	ftvm_rlog_unmap(v);
	detach(v);
	if (attach(v, KVM_FT_MODE_RECORD)) {
		close(fd);
		return FTVM_EXIT_SETUP;
	}
	ftvm_outq_swap(v);
	v->state = FTVM_PRIMARY;
	*acked = 0;
	m.seq = len;
	r = ftd_link_send(sock, &m, fd);
	close(fd);
	if (!r) {
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED };
		r = ftd_link_send(sock, &m, v->ft_fd);
	}
	if (r) {
		ftvm_log("SNAPSHOT_READY/ATTACHED to ftd: %s", strerror(-r));
		return FTVM_EXIT_HALTED;
	}
	ftvm_devices_hold(v, false);
	ftvm_vcpu_resume(v);
	ftvm_log("SNAPSHOT: %llu bytes; stopped at a landmark in %llu us, captured in %llu us, "
		 "the vCPU was paused %llu us; recording a new log, outputs wait for the backup",
		 (unsigned long long)len, (unsigned long long)(t_paused - t0) / 1000,
		 (unsigned long long)(t_cap - t_paused) / 1000,
		 (unsigned long long)(ftvm_now_ns() - t_paused) / 1000);
	return 0;
}

static void go_live(struct ftvm *v, uint64_t emitted_seq)
{
	if (v->state == FTVM_BACKUP) {
		ftvm_rlog_stop(v);
		ftvm_outq_go_live(v, emitted_seq, __atomic_load_n(v->ft_next_seq, __ATOMIC_ACQUIRE));
	}
	v->state = FTVM_LIVE;
	/* The backup's devices start now; the primary's run on. */
	if (v->async && ftvm_devices_start(v))
		ftvm_log("GO_LIVE: starting the device thread failed: no timer, no DMA");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "ftd-socket", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'S' },
		{ "outputs", required_argument, NULL, 'N' },
		{ "standalone", no_argument, NULL, 'A' },
		{ "no-async", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct ftvm vs = { .ft_fd = -1, .stop_code = -1, .async = true };
	struct ftvm *v = &vs;
	struct pause_st pause = { 0 };
	const char *sock_path = FTD_VMM_SOCKET, *out_path = NULL;
	bool have_seed = false;
	struct ftd_vmm_msg m;
	uint64_t acked = 0, next_log = ftvm_now_ns() + 10000000000ULL;
	int c, sock = -1, sfd, r, seed_fd = -1;
	sigset_t sigs;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': v->name = optarg; break;
		case 's': sock_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'S':
			if (parse_u64(optarg, &v->seed)) {
				ftvm_log("--seed: not a number: %s", optarg);
				return FTVM_EXIT_USAGE;
			}
			have_seed = true;
			break;
		case 'N':
			if (parse_u64(optarg, &v->max_outputs) || !v->max_outputs) {
				ftvm_log("--outputs: not a positive number: %s", optarg);
				return FTVM_EXIT_USAGE;
			}
			break;
		case 'A': v->standalone = true; break;
		case 'x': v->async = false; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return FTVM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		ftvm_log("unexpected argument: %s", argv[optind]);
		usage(stderr);
		return FTVM_EXIT_USAGE;
	}
	if (!v->name || !*v->name || strlen(v->name) >= sizeof(m.name)) {
		ftvm_log("--name NAME is required (1 to %zu bytes)", sizeof(m.name) - 1);
		return FTVM_EXIT_USAGE;
	}
	if (!have_seed)
		v->seed = ftvm_now_ns() ^ ((uint64_t)getpid() << 32);
	v->rng = v->seed ? v->seed : 1;
	ftvm_log("%s: seed %llu (re-run with --seed %llu)", v->name, (unsigned long long)v->seed,
		 (unsigned long long)v->seed);

	/* Signals: SIGINT/SIGTERM reach the control loop; no thread dies of SIGPIPE. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	pthread_mutex_init(&v->local_lock, NULL);
	pthread_mutex_init(&v->dev_lock, NULL);
	pthread_mutex_init(&v->pause_lock, NULL);
	pthread_cond_init(&v->pause_cond, NULL);
	v->local_q = calloc(64, sizeof(*v->local_q));
	if (sfd < 0 || !v->local_q) {
		ftvm_log("setup: %s", strerror(errno));
		return FTVM_EXIT_SETUP;
	}
	r = ftvm_outq_init(&v->out, out_path);
	if (r) {
		ftvm_log("--out %s: %s", out_path ? out_path : "-", strerror(-r));
		return FTVM_EXIT_SETUP;
	}

	if (v->standalone) {
		v->state = FTVM_STANDALONE;
		if (build_vm(v))
			return FTVM_EXIT_SETUP;
	} else {
		sock = ftd_link_connect(sock_path);
		if (sock < 0) {
			ftvm_log("connect to ftd at %s: %s", sock_path, strerror(-sock));
			return FTVM_EXIT_SETUP;
		}
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_HELLO, .version = FTD_VMM_VERSION };
		strcpy(m.name, v->name);
		if ((r = ftd_link_send(sock, &m, -1))) {
			ftvm_log("HELLO to ftd: %s", strerror(-r));
			return FTVM_EXIT_SETUP;
		}
		r = ftd_link_recv(sock, &m, &seed_fd);
		if (r > 0 && m.type == FTD_VMM_HALT) {
			ftvm_log("HALT from ftd instead of a role (fenced by epoch %llu): not running",
				 (unsigned long long)m.epoch);
			return FTVM_EXIT_HALTED;
		}
		if (r <= 0 || (m.type != FTD_VMM_ROLE && m.type != FTD_VMM_SEED)) {
			ftvm_log("waiting for ROLE or SEED: %s", r < 0 ? strerror(-r) : r == 0 ?
				 "ftd closed the connection" : ftd_link_type_name(m.type));
			return r == 0 ? FTVM_EXIT_HALTED : FTVM_EXIT_PROTOCOL;
		}
		ftvm_log("%s %s in epoch %llu", ftd_link_type_name(m.type),
			 m.role == FTD_VMM_ROLE_PRIMARY ? "primary" : "backup",
			 (unsigned long long)m.epoch);
		v->state = m.role == FTD_VMM_ROLE_PRIMARY ? FTVM_PRIMARY : FTVM_BACKUP;
		if (build_vm(v))
			return FTVM_EXIT_SETUP;
		/* SEED: the backup of a live VM, from its snapshot. */
		if (seed_fd >= 0) {
			uint64_t t0 = ftvm_now_ns();

			r = ftvm_snap_restore(v, seed_fd, m.seq);
			close(seed_fd);
			if (r)
				return FTVM_EXIT_SETUP;
			ftvm_log("SEED: the VM was built from the snapshot in %llu us",
				 (unsigned long long)(ftvm_now_ns() - t0) / 1000);
		}
		if (attach(v, v->state == FTVM_PRIMARY ? KVM_FT_MODE_RECORD : KVM_FT_MODE_REPLAY))
			return FTVM_EXIT_SETUP;
		if (v->state == FTVM_BACKUP && ((r = ftvm_rlog_map(v)) || (r = ftvm_rlog_start(v)))) {
			ftvm_log("reading the replay ring: %s", strerror(-r));
			return FTVM_EXIT_SETUP;
		}
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED };
		if ((r = ftd_link_send(sock, &m, v->ft_fd))) {
			ftvm_log("ATTACHED to ftd: %s", strerror(-r));
			return FTVM_EXIT_SETUP;
		}
	}
	/* The vCPU first: a standalone VM's devices kick its thread. */
	if ((r = ftvm_vcpu_start(v))) {
		ftvm_log("starting the vCPU thread: %s", strerror(-r));
		return FTVM_EXIT_SETUP;
	}
	if (v->async && v->state != FTVM_BACKUP && ftvm_devices_start(v)) {
		ftvm_log("starting the device thread failed");
		return FTVM_EXIT_SETUP;
	}
	ftvm_log("running as %s%s", state_names[v->state],
		 v->async ? ", timer and DMA device on" : ", no timer or DMA device");

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = v->out.efd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = sock, .events = POLLIN },
		};
		uint64_t top, cnt, pseq;

		if (poll(p, sock >= 0 ? 3 : 2, pause.phase == PAUSE_PAUSING ? 1 : -1) < 0) {
			if (errno == EINTR)
				continue;
			ftvm_log("poll: %s", strerror(errno));
			finish(v, FTVM_EXIT_SETUP);
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGPIPE) {
				ftvm_log("%s: stopping", strsignal(si.ssi_signo));
				finish(v, FTVM_EXIT_OK);
			}
		}
		if (p[0].revents && read(v->out.efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			ftvm_log("eventfd read: %s", strerror(errno));
		if (sock >= 0 && p[2].revents) {
			r = ftd_link_recv(sock, &m, NULL);
			if (r <= 0) {
				if (r < 0)
					ftvm_log("from ftd: %s", r == -EPROTO ?
						 "malformed message" : strerror(-r));
				close(sock);
				sock = -1;
				if (v->state != FTVM_LIVE) {
					ftvm_log("lost ftd while %s: halting, nothing more is emitted",
						 state_names[v->state]);
					finish(v, r == -EPROTO ? FTVM_EXIT_PROTOCOL : FTVM_EXIT_HALTED);
				}
				ftvm_log("lost ftd while live: running on");
			} else {
				switch (m.type) {
				case FTD_VMM_ACKED:
					if (m.seq > acked)
						acked = m.seq;
					break;
				case FTD_VMM_GO_LIVE:
					ftvm_log("GO_LIVE in epoch %llu, the old primary emitted up to seq %llu",
						 (unsigned long long)m.epoch, (unsigned long long)m.seq);
					if (pause.phase != PAUSE_NONE)
						pause_cancel(v, &pause);
					go_live(v, m.seq);
					break;
				case FTD_VMM_PAUSE:
					pause_start(v, &pause, m.seq);
					break;
				case FTD_VMM_RESUME:
					r = resume(v, &pause, sock, m.role, &acked);
					if (r)
						finish(v, r);
					break;
				case FTD_VMM_SNAPSHOT:
					r = snapshot(v, &pause, sock, &acked);
					if (r)
						finish(v, r);
					break;
				case FTD_VMM_HALT:
					ftvm_log("HALT from ftd (fenced by epoch %llu): nothing more is emitted",
						 (unsigned long long)m.epoch);
					finish(v, FTVM_EXIT_HALTED);
				default:
					ftvm_log("%s from ftd: not supported yet, halting",
						 ftd_link_type_name(m.type));
					finish(v, FTVM_EXIT_PROTOCOL);
				}
			}
		}
		if (sock >= 0 && pause_step(v, &pause, &pseq)) {
			m = (struct ftd_vmm_msg){ .type = FTD_VMM_PAUSED, .seq = pseq };
			if ((r = ftd_link_send(sock, &m, -1)))
				ftvm_log("PAUSED to ftd: %s", strerror(-r));
		}
		top = ftvm_outq_release(v, acked);
		/*
		 * Paused primary with nothing held: every output of the log (seq
		 * <= the PAUSED seq) has left, though the last records may be no
		 * output; ftd waits for EMITTED >= its PAUSED seq. Never beyond
		 * ACKED: ftd takes that for a broken output rule.
		 */
		if (pause.phase == PAUSE_PAUSED && v->state == FTVM_PRIMARY && !pause.all_emitted &&
		    acked >= pause.at && !ftvm_outq_len(v)) {
			top = pause.at;
			pause.all_emitted = true;
		}
		/*
		 * EMITTED only ever grows on one attachment: a paused primary
		 * whose last output is its PAUSED seq would otherwise say it
		 * twice, and the second could reach ftd after RESUME, on the
		 * new log, where it breaks the output rule.
		 */
		if (top > v->out.told && sock >= 0 && v->state == FTVM_PRIMARY) {
			m = (struct ftd_vmm_msg){ .type = FTD_VMM_EMITTED, .seq = top };
			if ((r = ftd_link_send(sock, &m, -1)))
				ftvm_log("EMITTED to ftd: %s", strerror(-r));
			v->out.told = top;
		}
		if (ftvm_now_ns() >= next_log) {
			/* A killed primary prints no statistics: say it as it goes. */
			next_log = ftvm_now_ns() + 10000000000ULL;
			ftvm_log("%s: %llu outputs written (last n %llu), %zu held or kept",
				 state_names[v->state], (unsigned long long)v->out.emitted,
				 (unsigned long long)v->out.last_n, ftvm_outq_len(v));
			log_delay("output-rule delay (exit -> acked and written)", &v->out.delay);
		}
		if (v->max_outputs && v->out.last_n >= v->max_outputs) {
			ftvm_log("output %llu emitted: done", (unsigned long long)v->out.last_n);
			finish(v, FTVM_EXIT_OK);
		}
		if (__atomic_load_n(&v->stop_code, __ATOMIC_ACQUIRE) >= 0) {
			ftvm_log("the VM stopped: %s", v->stop_why);
			finish(v, v->stop_code);
		}
	}
}
