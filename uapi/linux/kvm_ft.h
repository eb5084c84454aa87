/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvm_ft — fault-tolerant KVM virtual machines: the user-space interface.
 *
 * This header is the specification shared by kvm_ft.ko, ftd, ftctl, the VMM
 * and the tests. Numbers defined here never change once released; new
 * operations, record types and attributes are added, never renumbered.
 * All multi-byte fields are little-endian (x86-64 only), sizes are explicit
 * and every structure is padded to a multiple of 8 bytes.
 *
 * OBJECTS
 *
 *   /dev/kvm_ft        misc device; opening it needs no privilege, every
 *                      operation on it that changes state needs CAP_SYS_ADMIN.
 *   ft fd              one per attached KVM VM, returned by KVM_FT_ATTACH.
 *                      Closing the last reference to it detaches the VM.
 *                      It is the handle for the VM's log ring (mmap, poll).
 *
 * OPERATIONS ON /dev/kvm_ft
 *
 *   KVM_FT_GET_API_VERSION (no argument)
 *       Returns KVM_FT_API_VERSION. Never fails.
 *
 *   KVM_FT_ATTACH (struct kvm_ft_attach *, in)
 *       Attach a KVM VM, given by an fd of that VM (the fd KVM_CREATE_VM
 *       returned), in the given mode. Returns a new ft fd (O_CLOEXEC).
 *       The module holds a reference on the VM until the ft fd is closed.
 *       The VM must have exactly one vCPU, created before the attach; a vCPU
 *       created later stops the VM (see KVM_FT_ERR_*). The guest's CPUID must
 *       hide the instructions the module cannot make deterministic on this
 *       host (RDRAND, RDSEED, RDTSCP, RDPID) and KVM's paravirtual features
 *       that let the host write guest memory behind the log (kvmclock,
 *       steal time, async page faults, PV EOI), unless
 *       KVM_FT_ATTACH_F_ALLOW_UNSAFE_CPUID is given. digest_interval sets
 *       how often register digests are logged (RECORD) or expected (REPLAY):
 *       0 = KVM_FT_DIGEST_INTERVAL_DEFAULT, KVM_FT_DIGEST_OFF = never; the
 *       backup must be attached with the primary's value (see DIGESTS).
 *       Errors:
 *         EPERM       caller lacks CAP_SYS_ADMIN
 *         EFAULT      bad pointer
 *         EOPNOTSUPP  unknown bit in flags, unknown mode, or a non-zero
 *                     reserved field (future extensions)
 *         EBADF       vm_fd is not an open fd
 *         EINVAL      vm_fd is not a KVM VM fd; ring_order out of range;
 *                     KVM_FT_ATTACH_F_REPLAY_OUTPUTS without REPLAY mode;
 *                     the VM does not have exactly one vCPU
 *         EBUSY       the VM is attached already (through any ft fd
 *                     not detached)
 *         ENODEV      the KVM vendor module this build supports is not
 *                     loaded, or a runtime layout check of KVM failed
 *         EMEDIUMTYPE the guest's CPUID exposes a feature listed above
 *         ENOMEM
 *
 * OPERATIONS ON AN ft fd
 *
 *   mmap
 *       Two mappings, both MAP_SHARED, at these offsets and of exactly these
 *       lengths (see struct kvm_ft_info):
 *         KVM_FT_MMAP_CONSUMER_OFF, length page_size: struct
 *             kvm_ft_ring_consumer, the only page user space may write.
 *         KVM_FT_MMAP_PRODUCER_OFF, length page_size + data_size: struct
 *             kvm_ft_ring_producer followed by the data area; read-only
 *             (PROT_WRITE, or a later mprotect to it, fails with EPERM).
 *       Errors: EINVAL wrong offset or length, or not MAP_SHARED;
 *               EPERM  writable mapping of the producer part.
 *
 *   poll / epoll
 *       POLLIN   unread records exist (producer != consumer).
 *       POLLOUT  never (user space does not write the log ring).
 *       POLLERR  the ring is in error (producer->error != 0): read the error,
 *                the records before the error remain valid.
 *       POLLHUP  the VM was detached (KVM_FT_DETACH) or destroyed.
 *       Wake-ups are batched: a sleeping reader is woken when unread bytes
 *       reach consumer->wakeup_bytes (clamped to [8, data_size / 2]; 0 means
 *       data_size / 4), when an output record is appended (the output rule
 *       needs it promptly), when the vCPU stops to wait for ring space, when
 *       it halts or leaves KVM_RUN, and at least every few milliseconds while
 *       unread records exist and the vCPU exits.
 *
 *   KVM_FT_GET_INFO (struct kvm_ft_info *, out)
 *       Ring geometry, mode and identity of the attached VM.
 *       Errors: EFAULT.
 *
 *   KVM_FT_GET_STATS (struct kvm_ft_stats *, out)
 *       Counters of this attachment, and async_pending: the inputs queued
 *       by KVM_FT_QUEUE_ASYNC and not applied yet (a VMM that stopped
 *       queueing sees the queue drain, e.g. before a planned failover).
 *       Errors: EFAULT.
 *
 *   KVM_FT_SET_MODE (__u32 mode by value)
 *       Switch modes. RECORD -> LIVE stops logging (go-live after the backup
 *       was lost, or an unprotected VM); REPLAY -> LIVE ends replay (the
 *       backup goes live at the next exit). Other transitions fail.
 *       Errors: EPERM (no CAP_SYS_ADMIN), EOPNOTSUPP (unknown mode),
 *               EINVAL (transition not allowed), ENODEV (detached).
 *
 *   KVM_FT_DETACH (no argument)
 *       Stop recording now; the ring stays mapped and readable so the
 *       reader can drain it; poll reports POLLHUP. The VM is released when
 *       the ft fd is closed. Any intercept the module set is removed before
 *       the vCPU next enters the guest. Idempotent. A detached VM may be
 *       attached again (KVM_FT_ATTACH, any mode) while this ft fd is still
 *       open: the new attachment starts a new log (seq and landmark from 1,
 *       the digest schedule anew) at the guest's state of that moment.
 *       Swapping roles: stop both replicas at the same landmark (the
 *       primary out of KVM_RUN after an exit whose records are all logged:
 *       a KVM_RUN with immediate_exit completes a pending PIO IN, whose
 *       record is appended then, and returns EINTR; the backup as THE
 *       REPLAY RING says), detach both, attach each in the other mode.
 *       Errors: EPERM (no CAP_SYS_ADMIN).
 *
 *   KVM_FT_GET_DIVERGENCE: see THE REPLAY RING.
 *
 *   KVM_FT_REQUEST_MEM_DIGEST (no argument)
 *       RECORD only: log a digest of guest memory at the next landmark that
 *       allows one (see DIGESTS). Returns at once; a second request before
 *       the digest is logged is the same request. KVM_FT_GET_DIGEST says
 *       when it is logged (flags, mem_count).
 *       Errors: EPERM (no CAP_SYS_ADMIN), EINVAL (not recording).
 *
 *   KVM_FT_GET_DIGEST (struct kvm_ft_digest *, out)
 *       The interval, whether a memory digest is pending, and the count,
 *       landmark and value of the last register and memory digest logged
 *       (RECORD) or matched (REPLAY). Errors: EFAULT.
 *
 *   KVM_FT_QUEUE_ASYNC (struct kvm_ft_async *, in)
 *       Hand kvm_ft an asynchronous input for the guest: an external
 *       interrupt (KVM_FT_ASYNC_IRQ) or a DMA write of len bytes at gpa
 *       (KVM_FT_ASYNC_DMA; the data is copied at the ioctl). An FT-aware VMM
 *       uses this instead of KVM_INTERRUPT and instead of writing guest
 *       memory itself. Inputs wait in a per-VM queue of KVM_FT_ASYNC_QUEUE_MAX
 *       entries and are applied on the vCPU thread, never by the caller:
 *         RECORD  at the next landmark (see ASYNCHRONOUS INPUTS), and logged
 *                 there (KVM_FT_REC_DMA, KVM_FT_REC_INTR), in apply order;
 *         LIVE    at the next guest entry (an IRQ: the next entry at which
 *                 the guest can take it), not logged. Inputs still queued
 *                 when RECORD switches to LIVE are applied this way.
 *       The call returns when the input is queued, not applied. IRQs need a
 *       VM without in-kernel irqchip (user-space irqchip, KVM_INTERRUPT
 *       semantics: one vector, no acknowledge cycle).
 *       Errors:
 *         EPERM       caller lacks CAP_SYS_ADMIN
 *         EFAULT      bad pointer (the argument or data)
 *         EOPNOTSUPP  unknown type, non-zero flags or reserved field
 *         EINVAL      IRQ: vector outside 32..255, gpa, data or len
 *                     non-zero, or the VM has an in-kernel irqchip;
 *                     DMA: vector non-zero, len 0 or above
 *                     KVM_FT_DMA_MAX, or [gpa, gpa + len) not entirely in
 *                     writable memslots (checked at the call; a memslot
 *                     removed before the apply stops the VM with
 *                     KVM_FT_ERR_UNSUPPORTED)
 *         EAGAIN      the queue is full; retry after the vCPU ran
 *         EBUSY       the VM replays: its asynchronous inputs come from
 *                     the replay ring only
 *         ENODEV      the VM is detached
 *         ENOMEM
 *
 *   Any other ioctl: ENOTTY.
 *
 * THE LOG RING
 *
 *   Single producer (the kernel, on behalf of the VM's vCPU), single consumer
 *   (one user-space reader). Positions are free-running 64-bit byte counts;
 *   the offset in the data area is pos & (data_size - 1). data_size is a
 *   power of two. Records are 8-byte aligned and never wrap: when a record
 *   does not fit before the end of the data area the producer writes a
 *   KVM_FT_REC_PAD record that covers the rest of the area (a pad can be as
 *   short as 8 bytes: only len and type are valid in it) and continues at
 *   offset 0.
 *
 *   Reader protocol:
 *       p = load_acquire(&producer->producer);  (pairs with the kernel's
 *                                                 store_release)
 *       while (c != p) { read the record at c; c += rec->len; }
 *       store_release(&consumer->consumer, c);   (pairs with the kernel's
 *                                                 load_acquire before it
 *                                                 reuses the space)
 *
 *   The kernel trusts nothing it reads from the consumer page: a consumer
 *   position that is unaligned, behind the last valid one, or ahead of the
 *   producer is ignored, counted, and sets producer->error to
 *   KVM_FT_ERR_BAD_CONSUMER; the ring then stays in error (POLLERR) and no
 *   further space is released, so the vCPU stops instead of overwriting
 *   unread records.
 *
 *   No record is ever dropped. When the free space falls below what one
 *   guest exit can produce (KVM_FT_RING_RESERVE), the vCPU waits before its
 *   next guest entry until the reader has released at least a quarter of
 *   the data area (counted in kvm_ft_stats.ring_waits / ring_wait_ns and
 *   visible in producer->flags KVM_FT_RING_F_WAITING). Any signal ends
 *   the wait: KVM_RUN returns EINTR (KVM_EXIT_INTR) with the guest not
 *   entered, and the next KVM_RUN waits again before its first entry. If
 *   a record still cannot be written the VM is stopped (KVM_RUN fails with
 *   EIO) and producer->error is KVM_FT_ERR_OVERRUN — a record is never
 *   lost silently.
 *
 * RECORDS
 *
 *   Every record starts with struct kvm_ft_rec. seq numbers all records but
 *   pads, gaplessly, from 1. A *synchronous* record comes from an exit the
 *   guest's own instruction caused (PIO, MMIO, RDTSC, CPUID, RDMSR, HLT).
 *   Synchronous records and POSITION records are *landmark* records:
 *   landmark is the 1-based ordinal of the record among all landmark
 *   records of the attachment, so the n-th one has landmark n on any host
 *   that executes the same instruction stream with the same log.
 *   An *asynchronous* record (INTR, DMA, REG_DIGEST, MEM_DIGEST) carries
 *   the landmark of the last landmark record before it (0 if none).
 *   ("Synchronous record" below, where landmarks are concerned, includes
 *   POSITION.)
 *
 * ASYNCHRONOUS INPUTS
 *
 *   A landmark is the point right after synchronous record L: the guest
 *   completed the instruction that exited and has not run since. It is the
 *   same guest state on any host that executes the same instruction
 *   stream, whatever the timing. Inputs queued with KVM_FT_QUEUE_ASYNC are
 *   applied only there:
 *     DMA   every queued DMA write, in queue order, before the next entry
 *           (a DMA may overtake IRQs queued before it, never the reverse).
 *     IRQ   the first queued IRQ with no DMA before it, at the first entry
 *           after L, if the guest can take it then: RFLAGS.IF set, no
 *           interrupt shadow, GIF set, no other event being injected.
 *           kvm_ft injects it itself (as KVM_INTERRUPT would), so the guest
 *           takes it before executing any instruction after L, at the RIP
 *           of that entry. Otherwise it waits for the next landmark.
 *   Each is logged at L, after record L and before record L + 1: DMA
 *   records first, then at most one INTR record with
 *   KVM_FT_INTR_F_LANDMARK, the RIP of the delivery and the vector.
 *   The delay until delivery is bounded by the time to the guest's next
 *   synchronous exit with IF set, and with POSITIONS on by position_us.
 *
 * POSITIONS
 *
 *   KVM_FT_ATTACH's position_us (RECORD; 0 or KVM_FT_POSITION_OFF = off,
 *   else KVM_FT_POSITION_US_MIN..KVM_FT_POSITION_US_MAX, EINVAL otherwise)
 *   bounds the wait of a guest that does not exit. When the oldest queued
 *   input has waited position_us, the vCPU is kicked out of the guest
 *   (again every position_us while one waits, counted in
 *   kvm_ft_stats.kicks). At that exit, if the guest is at a point a backup
 *   can find again (between two instructions, no event being delivered or
 *   queued, no interrupt shadow, RFLAGS.TF clear, no debug registers in
 *   use, not at a REP string instruction, not right after POP SS or MOV SS,
 *   whose shadow would hide the backup's breakpoint) and an input
 *   applies there (a
 *   DMA, or an IRQ first in the queue with RFLAGS.IF set), a POSITION
 *   record is logged: landmark = previous + 1, flags 0, the RIP, RFLAGS
 *   (RF cleared), CR3 and the 16 GPRs. It is a landmark: the queued inputs
 *   are applied and logged after it exactly as after a synchronous record,
 *   at least one of them (kvm_ft_stats.positions counts them). Otherwise
 *   the next kick tries again. Bound: an input is applied within
 *   position_us plus the kick latency after it was queued, or at the first
 *   landmark before that (IRQs: with IF set); a refused position adds
 *   position_us per retry. Off by default: the backup pays one exit per
 *   pass over the position's RIP since the previous landmark, unbounded
 *   for a tight loop (kmod/README, Bound, has the figures).
 *
 *   Replay: after landmark L (and its asynchronous records), a POSITION
 *   next is consumed and the vCPU runs with an instruction breakpoint at
 *   its RIP (DR0 and the VMCB's DR7, #DB intercepted; the guest sees
 *   neither, and a guest that uses debug registers or single-steps is
 *   KVM_FT_ERR_UNSUPPORTED while a position is armed). At each hit whose
 *   registers (the record's fields) equal the record's, the position is
 *   reached (a hit in an STI's interrupt shadow too: the backup then
 *   clears the shadow, as the primary logged none): landmark L + 1, and its
 *   INTR/DMA records apply there. Other hits step over the instruction
 *   (RFLAGS.RF). A synchronous exit before it is KVM_FT_ERR_DIVERGENCE,
 *   reason TYPE (expected = the POSITION); so is a POSITION not followed by
 *   an INTR or DMA record, and an asynchronous record at landmark 0. The
 *   report names the POSITION's seq and RIP (expected) and the exit the
 *   guest made instead (actual). A position still armed when replay ends
 *   (KVM_FT_SET_MODE LIVE, detach: a failover) is dropped: the backup runs
 *   on live. Matching is by registers only: a loop
 *   whose registers repeat while memory changes can be stopped at another
 *   iteration than the primary's; that shows later as a divergence (an
 *   output, a digest), not silently (kmod/README, Positions).
 *
 *   An interrupt that the VMM injects itself with KVM_INTERRUPT into a
 *   RECORD VM is not deterministic: it is logged when the guest takes it
 *   (INTR record without KVM_FT_INTR_F_LANDMARK, RIP of the delivery,
 *   landmark of the last synchronous record) and such a record can never
 *   be replayed (KVM_FT_ERR_UNSUPPORTED on the backup). DMA that the VMM
 *   writes into guest memory itself is not seen at all.
 *
 * THE REPLAY RING (KVM_FT_MODE_REPLAY)
 *
 *   KVM_FT_ATTACH with mode KVM_FT_MODE_REPLAY makes the ft fd's ring a
 *   replay ring: user space (the backup's VMM or ftd) PRODUCES records in
 *   exactly the log-record format (typically copied from a recorded ring,
 *   pads included or not: a pad is skipped wherever it is valid) and the
 *   kernel CONSUMES them, one per synchronous exit of the vCPU. The same two
 *   mmap offsets are used with the writability swapped:
 *     KVM_FT_MMAP_REPLAY_STATUS_OFF (= CONSUMER_OFF), length page_size:
 *         struct kvm_ft_replay_status, written by the kernel only;
 *         read-only (PROT_WRITE, or a later mprotect to it: EPERM).
 *     KVM_FT_MMAP_REPLAY_RING_OFF (= PRODUCER_OFF), length page_size +
 *         data_size: struct kvm_ft_replay_producer followed by the data
 *         area, both writable by user space.
 *   Positions are free-running byte counts as in the log ring; records are
 *   8-byte aligned, never wrap (a PAD whose len reaches exactly the end of
 *   the data area skips to offset 0) and are at most KVM_FT_RING_RESERVE
 *   bytes long.
 *
 *   Writer protocol:
 *       c = load_acquire(&status->consumer);     space: data_size - (p - c)
 *       write records at p & (data_size - 1); p += rec->len;
 *       store_release(&producer->producer, p);
 *   The kernel may read any byte between consumer and producer at any time
 *   and never reads beyond producer; space before status->consumer is free.
 *
 *   Everything in the writable area is hostile input. The kernel copies each
 *   record out of the shared area before it validates and uses it, and
 *   checks: producer 8-aligned, not behind the consumer and at most
 *   data_size ahead of it; len a multiple of 8, at least the header, at most
 *   KVM_FT_RING_RESERVE, inside the data area and before producer; a pad
 *   exactly to the end of the area; type known; seq the next one (gapless
 *   from 1); landmark the next synchronous ordinal; flags exactly those of
 *   the type (plus KVM_FT_RF_MEM_DIGEST where DIGESTS allows it); the length exactly that of the type (PIO: size 1, 2 or 4,
 *   count >= 1, size * count <= 4096, len = 8-aligned header plus data,
 *   padding zero; MMIO: len 1..8, reserved and data past len zero). Any
 *   violation is KVM_FT_ERR_BAD_RECORD. A valid record that does not match the exit the
 *   vCPU takes (type, RIP, port, size, count, access direction, CPUID
 *   function/index, MSR number; for outputs also the data) is
 *   KVM_FT_ERR_DIVERGENCE. A record or exit the replayer cannot handle yet
 *   (INTR without KVM_FT_INTR_F_LANDMARK, RDRAND, an MMIO access claimed
 *   by the in-kernel LAPIC) is KVM_FT_ERR_UNSUPPORTED, and so is an
 *   interrupt that the VMM injects into a REPLAY VM with KVM_INTERRUPT.
 *   Each stops the VM: KVM_RUN fails with EIO, status->error is set (sticky), poll
 *   reports POLLERR, KVM_FT_GET_DIVERGENCE describes it, a ratelimited line
 *   goes to the kernel log and a KVM_FT_EV_ERROR event is multicast.
 *
 *   At each synchronous exit the module consumes the next record (an
 *   emulated instruction, MMIO or string PIO: one per access or chunk, see
 *   below) and:
 *     PIO_IN (not string)   checks it, puts the record's data in RAX and
 *                           skips the instruction; no device is accessed.
 *     PIO_OUT (not string)  checks port, size and data; the output is not
 *                           emitted (no device, no user-space exit) -
 *                           unless the VM was attached with
 *                           KVM_FT_ATTACH_F_REPLAY_OUTPUTS: then, once
 *                           checked, KVM handles the OUT as on the primary
 *                           (an in-kernel device gets it, or KVM_RUN
 *                           returns KVM_EXIT_IO), so the backup's VMM keeps
 *                           its devices in step and knows which outputs the
 *                           guest made; it must not emit them (it is the
 *                           backup) and may re-emit the unacknowledged tail
 *                           at go-live.
 *     MMIO_READ             one per access of at most 8 bytes that KVM's
 *                           emulator makes (an instruction may make
 *                           several): checks RIP, gpa and length; the guest
 *                           reads the record's data. No device and no
 *                           KVM_EXIT_MMIO sees the read.
 *     MMIO_WRITE            checks RIP, gpa, length and data; not emitted,
 *                           or with KVM_FT_ATTACH_F_REPLAY_OUTPUTS passed on
 *                           like a PIO_OUT (in-kernel device, or
 *                           KVM_EXIT_MMIO to the VMM).
 *     PIO_IN (string)       INS: one record per chunk the emulator reads
 *                           at once (count elements, at most 1024 bytes,
 *                           one page): checks RIP, port, size and count;
 *                           the guest's memory gets the record's data.
 *     PIO_OUT (string)      OUTS: one record per element: checks RIP, port,
 *                           size, count and data; not emitted, or with
 *                           REPLAY_OUTPUTS passed on.
 *                           Where no in-kernel device takes the port, the
 *                           primary's VMM got each element in a KVM_RUN
 *                           exit of its own, after which the guest
 *                           re-executed the instruction: the backup ends
 *                           the exit after each element the same way.
 *     RDTSC                 checks it; the guest gets the record's value.
 *     CPUID                 checks function and index; the guest gets the
 *                           record's EAX..EDX.
 *     RDMSR                 checks the MSR; the guest gets the record's value,
 *                           or with KVM_FT_MSR_F_GP a #GP(0) at the RDMSR
 *                           (as KVM injects it when the read fails).
 *     HLT                   checks it; KVM then halts as usual.
 *   An access the recorder logged as one record must be one access on the
 *   backup: an MMIO read that user space completed across a page boundary
 *   (two fragments) is KVM_FT_ERR_UNSUPPORTED on the primary already.
 *   Asynchronous records are applied at their landmark, as the primary
 *   did (see ASYNCHRONOUS INPUTS): after synchronous record L, and before
 *   the vCPU enters again, the module waits until the record after L is
 *   published (the backup lags by at least one record), writes every DMA
 *   record at L into guest memory and, for an INTR record at L, checks at
 *   the next entry that the guest is at the record's RIP (else DIVERGENCE,
 *   reason RIP) and can take an interrupt (else DIVERGENCE, reason
 *   BLOCKED), and injects it. A DMA record whose range is not guest
 *   memory is a DIVERGENCE (reason ADDR); an asynchronous record where
 *   the vCPU makes a synchronous exit is a DIVERGENCE (reason TYPE).
 *   DMA: 1 <= len <= KVM_FT_DMA_MAX, reserved and padding zero; INTR:
 *   vector 32..255, flags only KVM_FT_INTR_F_LANDMARK; else BAD_RECORD.
 *   When no record is available at a synchronous exit the vCPU does not run
 *   ahead: the exit is abandoned without side effects and the vCPU waits
 *   before its next guest entry until the producer moves, the VM is
 *   detached or switched to LIVE, or the ring is orphaned; the guest then
 *   re-executes the instruction. An emulated exit (MMIO: an NPF exit to a
 *   gpa outside the VM's writable memslots; string PIO) cannot wait in the
 *   middle, so it waits before the emulation until all of its records are
 *   published: until a record follows them that cannot be the exit's (one
 *   that is not MMIO, PIO or a digest, or has another RIP), or
 *   2 * KVM_FT_RING_RESERVE bytes are published. The same wait precedes
 *   the first entry after a landmark until the record after it is
 *   published. Any signal ends either wait with the guest at the landmark:
 *   KVM_RUN returns EINTR (KVM_EXIT_INTR), nothing was applied or consumed
 *   twice, and the next KVM_RUN waits again. This is how a VMM stops a
 *   backup at a landmark (planned failover: wait until status->next_seq - 1
 *   reaches the last record of the primary's log, then signal the vCPU
 *   thread). While it waits status->flags has
 *   KVM_FT_RING_F_WAITING and poll reports POLLOUT. The kernel notices a new
 *   producer value within a jiffy; poll() on the ft fd wakes it at once.
 *   Detach or a switch to LIVE ends replay: the vCPU runs live from there.
 *
 *   Digest records are checked as DIGESTS describes; a mismatch, or one
 *   that is missing where due or present where not, is
 *   KVM_FT_ERR_DIVERGENCE with reason KVM_FT_DIV_REG_DIGEST or
 *   KVM_FT_DIV_MEM_DIGEST, expected = the record (value = digest, addr =
 *   bytes, rip), actual = what the backup computed (or the record it found
 *   instead, by type).
 *
 *   A record that passed the generic checks (len, seq, landmark) is
 *   consumed before it is compared: after a divergence, or a type-specific
 *   format error, status->consumer is past it and the report's pos, seq and
 *   landmark name it. A record failing the generic checks is not consumed:
 *   status->consumer and next_seq point at it.
 *
 *   poll in replay mode: POLLOUT when every published record is consumed
 *   (producer == consumer), POLLERR, POLLHUP as above; never POLLIN.
 *
 *   KVM_FT_GET_DIVERGENCE (struct kvm_ft_divergence *, out)
 *       The first error of a replay ring (error 0 if none yet). In record
 *       mode error is always 0. Errors: EFAULT.
 *
 * DIGESTS
 *
 *   A digest point is an exit at which the backup takes a record (IOIO,
 *   RDTSC, CPUID, RDMSR, HLT); the first synchronous record an exit
 *   produces is "at" its digest point. Both digests are xxh64 with seed 0.
 *
 *   Register digests. The first record at a digest point with landmark
 *   >= 1, then the first one at least digest_interval landmarks after the
 *   previous digest, is followed at once by a REG_DIGEST record (same
 *   landmark): the hash of 34 little-endian u64 taken at that exit before
 *   the instruction executed: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15,
 *   RIP, RFLAGS, CR0, CR3, CR4, EFER, then selector and base of CS, SS, DS,
 *   ES, FS, GS. rip is that RIP. The backup computes the same at its exit,
 *   follows the same rule and compares.
 *
 *   Memory digests. After KVM_FT_REQUEST_MEM_DIGEST, the next record at a
 *   digest point of an instruction that writes no guest memory (PIO of one
 *   element, RDTSC, CPUID, RDMSR without #GP) carries KVM_FT_RF_MEM_DIGEST. Before the
 *   vCPU next enters the guest (or returns to user space, i.e. before the
 *   VMM completes that exit) the module hashes guest memory and logs a
 *   MEM_DIGEST record with that landmark, after the register digest if
 *   any and before the landmark's DMA inputs. The hash covers, for every
 *   user memslot of address space 0 in ascending guest-physical order, its
 *   gpa and size (little-endian u64) then its bytes; a page that cannot be
 *   read counts as zeros; bytes = the memslot sizes summed. The backup,
 *   seeing the flag, hashes its memory at the same point (waiting for the
 *   MEM_DIGEST record if it is not published yet) and compares. Guest
 *   memory the VMM writes itself, outside KVM_FT_QUEUE_ASYNC, is seen by
 *   the digest on one side only: a divergence.
 *
 * GENERIC NETLINK
 *
 *   Family KVM_FT_GENL_NAME, version KVM_FT_GENL_VERSION, multicast group
 *   KVM_FT_GENL_MCGRP_EVENTS. KVM_FT_CMD_GET_VM dumps one message per
 *   attached VM with the KVM_FT_A_VM_* attributes (no privilege needed).
 *   Events (KVM_FT_CMD_EVENT) carry KVM_FT_A_EVENT_* and a per-module
 *   sequence number so a listener can tell that it missed some.
 */
#ifndef _UAPI_LINUX_KVM_FT_H
#define _UAPI_LINUX_KVM_FT_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KVM_FT_API_VERSION	1
#define KVM_FT_DEVICE_NAME	"kvm_ft"	/* /dev/kvm_ft */

#define KVM_FT_IOC_MAGIC	0xF7	/* unassigned in ioctl-number.rst */

/* ---- /dev/kvm_ft ---- */

enum kvm_ft_mode {
	KVM_FT_MODE_RECORD	= 1,	/* primary: log every nondeterministic input */
	KVM_FT_MODE_REPLAY	= 2,	/* backup: inputs come from the replay ring */
	KVM_FT_MODE_LIVE	= 3,	/* no logging (unprotected or promoted) */
};

/* Accept a guest CPUID that exposes nondeterministic features (tests only). */
#define KVM_FT_ATTACH_F_ALLOW_UNSAFE_CPUID	(1U << 0)
/* REPLAY only: checked PIO OUTs then reach their device or the VMM (see REPLAY). */
#define KVM_FT_ATTACH_F_REPLAY_OUTPUTS		(1U << 1)
#define KVM_FT_ATTACH_F_ALL			(KVM_FT_ATTACH_F_ALLOW_UNSAFE_CPUID | \
						 KVM_FT_ATTACH_F_REPLAY_OUTPUTS)

#define KVM_FT_RING_ORDER_MIN		16	/* 64 KiB data area */
#define KVM_FT_RING_ORDER_MAX		26	/* 64 MiB */
#define KVM_FT_RING_ORDER_DEFAULT	20	/* 1 MiB, used when ring_order is 0 */

/*
 * Register digests every this many landmarks unless the attach says
 * otherwise; both sides of a pair must use the same value (see DIGESTS).
 */
#define KVM_FT_DIGEST_INTERVAL_DEFAULT	64
#define KVM_FT_DIGEST_OFF		0xffffffffU	/* no register digests */

/*
 * RECORD: position_us, the bound of POSITIONS. 0 (or KVM_FT_POSITION_OFF)
 * = no positions: opt-in until the randomised replay passes with them on;
 * KVM_FT_POSITION_US_SUGGESTED is what the tests use.
 */
#define KVM_FT_POSITION_US_SUGGESTED	1000
#define KVM_FT_POSITION_US_MIN		50
#define KVM_FT_POSITION_US_MAX		10000000	/* 10 s */
#define KVM_FT_POSITION_OFF		0xffffffffU	/* no positions */

struct kvm_ft_attach {
	__s32 vm_fd;		/* fd of the KVM VM */
	__u32 mode;		/* enum kvm_ft_mode: RECORD or REPLAY */
	__u32 flags;		/* KVM_FT_ATTACH_F_* */
	__u32 ring_order;	/* log2(data_size); 0 = default */
	__u32 digest_interval;	/* landmarks between register digests; 0 = default */
	__u32 position_us;	/* RECORD: POSITION bound in us; 0 = off (see POSITIONS) */
	__u64 reserved[3];	/* must be zero */
};

#define KVM_FT_GET_API_VERSION	_IO(KVM_FT_IOC_MAGIC, 0x00)
#define KVM_FT_ATTACH		_IOW(KVM_FT_IOC_MAGIC, 0x01, struct kvm_ft_attach)

/* ---- ft fd ---- */

#define KVM_FT_MMAP_CONSUMER_OFF	0x0ULL
#define KVM_FT_MMAP_PRODUCER_OFF	0x100000ULL	/* 1 MiB: leaves room for more pages */

/*
 * Bytes of free space the producer keeps in reserve: the most that one guest
 * exit can append (a string PIO of one page plus a few fixed records).
 */
#define KVM_FT_RING_RESERVE		(2 * 4096 + 512)

struct kvm_ft_info {
	__u32 api_version;
	__u32 mode;		/* enum kvm_ft_mode */
	__u32 page_size;	/* length of the consumer mapping */
	__u32 ring_order;
	__u64 data_size;	/* 1 << ring_order */
	__u64 consumer_off;	/* KVM_FT_MMAP_CONSUMER_OFF */
	__u64 producer_off;	/* KVM_FT_MMAP_PRODUCER_OFF */
	__u64 producer_len;	/* page_size + data_size */
	__u32 vm_id;		/* module-wide id of this attachment, from 1 */
	__u32 vendor;		/* KVM_FT_VENDOR_* */
	__s32 vm_pid;		/* pid that created the VM */
	__u32 flags;		/* KVM_FT_INFO_F_* */
	__u64 reserved[4];
};

#define KVM_FT_VENDOR_SVM		1
#define KVM_FT_VENDOR_VMX		2

#define KVM_FT_INFO_F_DETACHED		(1U << 0)
#define KVM_FT_INFO_F_UNSAFE_CPUID	(1U << 1)	/* attached with ALLOW_UNSAFE_CPUID */
#define KVM_FT_INFO_F_REPLAY_OUTPUTS	(1U << 2)	/* attached with REPLAY_OUTPUTS */

struct kvm_ft_stats {
	__u64 records;		/* records appended (pads excluded) */
	__u64 bytes;		/* bytes appended, pads included */
	__u64 sync_records;	/* = the last landmark */
	__u64 exits;		/* every guest exit of the vCPU, deterministic or not */
	__u64 ring_waits;	/* times the vCPU waited for ring space */
	__u64 ring_wait_ns;	/* total time it waited */
	__u64 wakeups;		/* reader wake-ups issued */
	__u64 bad_consumer;	/* invalid consumer positions seen */
	__u64 rec_count[16];	/* records by type (index = KVM_FT_REC_*) */
	__u64 async_pending;	/* inputs in the KVM_FT_QUEUE_ASYNC queue now */
	__u64 positions;	/* POSITION records logged (RECORD) or reached (REPLAY) */
	__u64 kicks;		/* RECORD: position kicks; REPLAY: breakpoint hits (POSITIONS) */
	__u64 reserved[5];
};

#define KVM_FT_GET_INFO		_IOR(KVM_FT_IOC_MAGIC, 0x10, struct kvm_ft_info)
#define KVM_FT_GET_STATS	_IOR(KVM_FT_IOC_MAGIC, 0x11, struct kvm_ft_stats)
#define KVM_FT_SET_MODE		_IO(KVM_FT_IOC_MAGIC, 0x12)
#define KVM_FT_DETACH		_IO(KVM_FT_IOC_MAGIC, 0x13)

/* ---- ring control pages ---- */

#define KVM_FT_RING_MAGIC	0x474e4952544676ULL	/* "vFTRING" */

/* Written by the reader only. Page-sized mapping at KVM_FT_MMAP_CONSUMER_OFF. */
struct kvm_ft_ring_consumer {
	__u64 consumer;		/* byte position up to which records were consumed */
	__u64 acked_seq;	/* highest seq the backup has acknowledged (ftd) */
	__u32 wakeup_bytes;	/* wake a sleeping reader at this much unread data */
	__u32 reserved0;
	__u64 reserved[5];
};

/* Written by the kernel only. First page of the mapping at KVM_FT_MMAP_PRODUCER_OFF. */
struct kvm_ft_ring_producer {
	__u64 magic;		/* KVM_FT_RING_MAGIC */
	__u32 api_version;
	__u32 ring_order;
	__u64 data_size;
	__u64 producer;		/* byte position of the end of the last record */
	__u64 next_seq;		/* seq of the next record to be appended */
	__u64 landmark;		/* landmark of the last synchronous record */
	__u32 flags;		/* KVM_FT_RING_F_* */
	__u32 error;		/* KVM_FT_ERR_*; 0 = none; sticky */
	__u64 ring_waits;	/* same as kvm_ft_stats.ring_waits */
	__u64 reserved[8];
};

#define KVM_FT_RING_F_WAITING	(1U << 0)	/* the vCPU waits for ring space */
#define KVM_FT_RING_F_DETACHED	(1U << 1)	/* no more records will come */

enum kvm_ft_error {
	KVM_FT_ERR_NONE		= 0,
	KVM_FT_ERR_BAD_CONSUMER	= 1,	/* the reader wrote an invalid position */
	KVM_FT_ERR_OVERRUN	= 2,	/* a record did not fit: VM stopped */
	KVM_FT_ERR_MULTI_VCPU	= 3,	/* a second vCPU ran: VM stopped */
	KVM_FT_ERR_UNSUPPORTED	= 4,	/* an input the module cannot log/replay: VM stopped */
	KVM_FT_ERR_DIVERGENCE	= 5,	/* replay: the exit differs from the record */
	KVM_FT_ERR_BAD_RECORD	= 6,	/* replay: malformed record or producer */
};

/* ---- replay ring control pages ---- */

#define KVM_FT_MMAP_REPLAY_STATUS_OFF	KVM_FT_MMAP_CONSUMER_OFF
#define KVM_FT_MMAP_REPLAY_RING_OFF	KVM_FT_MMAP_PRODUCER_OFF
#define KVM_FT_REPLAY_MAGIC	0x59414c5045524676ULL	/* "vFREPLAY" */

/* Written by user space. First page of the mapping at REPLAY_RING_OFF. */
struct kvm_ft_replay_producer {
	__u64 producer;		/* byte position of the end of the last record */
	__u64 reserved[7];	/* ignored */
};

/* Written by the kernel only. Page-sized mapping at REPLAY_STATUS_OFF. */
struct kvm_ft_replay_status {
	__u64 magic;		/* KVM_FT_REPLAY_MAGIC */
	__u32 api_version;
	__u32 ring_order;
	__u64 data_size;
	__u64 consumer;		/* byte position up to which records were consumed */
	__u64 next_seq;		/* seq the next record must carry */
	__u64 landmark;		/* landmark of the last consumed synchronous record */
	__u32 flags;		/* KVM_FT_RING_F_*: WAITING = the vCPU waits for records */
	__u32 error;		/* KVM_FT_ERR_*; 0 = none; sticky */
	__u64 ring_waits;	/* times the vCPU waited for records */
	__u64 reserved[8];
};

/* What diverged (kvm_ft_divergence.reason). */
enum kvm_ft_div_reason {
	KVM_FT_DIV_NONE		= 0,
	KVM_FT_DIV_PRODUCER	= 1,	/* BAD_RECORD: invalid producer position */
	KVM_FT_DIV_LEN		= 2,	/* BAD_RECORD: invalid len or pad */
	KVM_FT_DIV_SEQ		= 3,	/* BAD_RECORD: seq is not the next one */
	KVM_FT_DIV_LANDMARK	= 4,	/* BAD_RECORD: landmark is not the next one */
	KVM_FT_DIV_FORMAT	= 5,	/* BAD_RECORD: unknown type, flags, sizes */
	KVM_FT_DIV_TYPE		= 6,	/* DIVERGENCE: another kind of exit */
	KVM_FT_DIV_RIP		= 7,	/* DIVERGENCE: another instruction */
	KVM_FT_DIV_ADDR		= 8,	/* DIVERGENCE: port, gpa, CPUID leaf, MSR */
	KVM_FT_DIV_SIZE		= 9,	/* DIVERGENCE: access size or count */
	KVM_FT_DIV_DATA		= 10,	/* DIVERGENCE: output data */
	KVM_FT_DIV_UNSUPPORTED	= 11,	/* UNSUPPORTED: record or exit not replayable */
	KVM_FT_DIV_BLOCKED	= 12,	/* DIVERGENCE: the guest cannot take the INTR here */
	KVM_FT_DIV_REG_DIGEST	= 13,	/* DIVERGENCE: register digest differs or is missing */
	KVM_FT_DIV_MEM_DIGEST	= 14,	/* DIVERGENCE: memory digest differs or is missing */
};

/* One side of a divergence: what the record says, or what the vCPU did. */
struct kvm_ft_div_event {
	__u32 type;		/* KVM_FT_REC_* (the exit's kind for the actual side) */
	__u32 size;		/* access size in bytes (PIO, MMIO); CPUID index */
	__u64 rip;
	__u64 addr;		/* port, gpa, CPUID function or MSR number */
	__u64 value;		/* output data, or 0 */
};

struct kvm_ft_divergence {
	__u32 error;		/* KVM_FT_ERR_*; 0 = no error so far */
	__u32 reason;		/* enum kvm_ft_div_reason */
	__u64 seq;		/* seq the kernel expected */
	__u64 landmark;		/* landmark the kernel expected */
	__u64 pos;		/* ring position of the offending record */
	struct kvm_ft_div_event expected;	/* from the record (zero if unreadable) */
	struct kvm_ft_div_event actual;		/* from the exit (zero if none) */
	__u64 reserved[4];
};

#define KVM_FT_GET_DIVERGENCE	_IOR(KVM_FT_IOC_MAGIC, 0x14, struct kvm_ft_divergence)

/* ---- asynchronous inputs ---- */

enum kvm_ft_async_type {
	KVM_FT_ASYNC_IRQ	= 1,	/* external interrupt (user-space irqchip VMs) */
	KVM_FT_ASYNC_DMA	= 2,	/* write len bytes of data at gpa */
};

#define KVM_FT_DMA_MAX		4096	/* bytes per DMA input (one record) */
#define KVM_FT_ASYNC_QUEUE_MAX	64	/* queued inputs per VM */

struct kvm_ft_async {
	__u32 type;		/* enum kvm_ft_async_type */
	__u32 vector;		/* IRQ: 32..255; DMA: 0 */
	__u64 gpa;		/* DMA: destination guest-physical address */
	__u64 data;		/* DMA: user pointer to len bytes */
	__u32 len;		/* DMA: 1..KVM_FT_DMA_MAX */
	__u32 flags;		/* 0 */
	__u64 reserved[2];	/* 0 */
};

#define KVM_FT_QUEUE_ASYNC	_IOW(KVM_FT_IOC_MAGIC, 0x15, struct kvm_ft_async)

/* ---- records ---- */

enum kvm_ft_rec_type {
	KVM_FT_REC_PAD		= 0,	/* skip to the end of the data area */
	KVM_FT_REC_PIO_IN	= 1,	/* sync: struct kvm_ft_rec_pio + data */
	KVM_FT_REC_PIO_OUT	= 2,	/* sync, output: struct kvm_ft_rec_pio + data */
	KVM_FT_REC_MMIO_READ	= 3,	/* sync: struct kvm_ft_rec_mmio */
	KVM_FT_REC_MMIO_WRITE	= 4,	/* sync, output: struct kvm_ft_rec_mmio */
	KVM_FT_REC_RDTSC	= 5,	/* sync: struct kvm_ft_rec_tsc */
	KVM_FT_REC_CPUID	= 6,	/* sync: struct kvm_ft_rec_cpuid */
	KVM_FT_REC_RDMSR	= 7,	/* sync: struct kvm_ft_rec_msr */
	KVM_FT_REC_HLT		= 8,	/* sync: struct kvm_ft_rec_hlt */
	KVM_FT_REC_INTR		= 9,	/* async: struct kvm_ft_rec_intr */
	KVM_FT_REC_RDRAND	= 10,	/* sync: struct kvm_ft_rec_rand (VMX hosts) */
	KVM_FT_REC_DMA		= 11,	/* async: struct kvm_ft_rec_dma + data */
	KVM_FT_REC_REG_DIGEST	= 12,	/* async: struct kvm_ft_rec_digest */
	KVM_FT_REC_MEM_DIGEST	= 13,	/* async: struct kvm_ft_rec_digest */
	KVM_FT_REC_POSITION	= 14,	/* landmark: struct kvm_ft_rec_position */
	KVM_FT_REC_TYPE_MAX	= 15,	/* kvm_ft_stats.rec_count has 16 slots */
};

#define KVM_FT_RF_OUTPUT	(1U << 0)	/* the record is a guest output */
#define KVM_FT_RF_ASYNC		(1U << 1)	/* asynchronous: landmark = last sync */
#define KVM_FT_RF_MEM_DIGEST	(1U << 2)	/* sync: a MEM_DIGEST record follows */

struct kvm_ft_rec {
	__u32 len;		/* bytes including this header; multiple of 8 */
	__u16 type;		/* enum kvm_ft_rec_type */
	__u16 flags;		/* KVM_FT_RF_* */
	__u64 seq;		/* gapless from 1; 0 in a pad */
	__u64 landmark;
};

/*
 * PIO_IN / PIO_OUT: the bytes the guest received / sent, size * count of
 * them (count > 1 for string instructions), zero-padded to 8 bytes.
 */
struct kvm_ft_rec_pio {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u16 port;
	__u8 size;		/* 1, 2 or 4 */
	__u8 reserved;
	__u32 count;
	__u8 data[];
};

/* MMIO_READ / MMIO_WRITE: one access of at most 8 bytes. */
struct kvm_ft_rec_mmio {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u64 gpa;
	__u32 len;		/* 1..8 */
	__u32 reserved;
	__u8 data[8];		/* len bytes valid, rest zero */
};

/* RDTSC (and RDTSCP where it can be intercepted): the value the guest got. */
struct kvm_ft_rec_tsc {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u64 tsc;
	__u32 aux;		/* TSC_AUX for RDTSCP, else 0 */
	__u32 insn;		/* KVM_FT_INSN_* */
};

#define KVM_FT_INSN_RDTSC	1
#define KVM_FT_INSN_RDTSCP	2
#define KVM_FT_INSN_RDRAND	3
#define KVM_FT_INSN_RDSEED	4

/* CPUID: the leaf asked for and the registers the guest got. */
struct kvm_ft_rec_cpuid {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u32 function;
	__u32 index;
	__u32 eax, ebx, ecx, edx;
};

/* RDMSR: the value the guest got, or (KVM_FT_MSR_F_GP) that it got #GP. */
struct kvm_ft_rec_msr {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u32 msr;
	__u32 flags;		/* KVM_FT_MSR_F_* (was reserved, always 0) */
	__u64 value;		/* 0 with KVM_FT_MSR_F_GP */
};

#define KVM_FT_MSR_F_GP		(1U << 0)	/* the read raised #GP(0) */

/* HLT: the guest halted; what wakes it is the next asynchronous record. */
struct kvm_ft_rec_hlt {
	struct kvm_ft_rec hdr;
	__u64 rip;
};

/*
 * INTR: an external interrupt delivered to the guest (not re-injections).
 * With KVM_FT_INTR_F_LANDMARK it was queued by KVM_FT_QUEUE_ASYNC and
 * injected at the landmark, and rip is the RIP of that entry; without it the
 * VMM injected it with KVM_INTERRUPT: logged at delivery, not replayable.
 */
struct kvm_ft_rec_intr {
	struct kvm_ft_rec hdr;
	__u64 rip;		/* guest RIP at delivery */
	__u32 vector;
	__u32 flags;		/* KVM_FT_INTR_F_* */
};

#define KVM_FT_INTR_F_LANDMARK	(1U << 0)	/* injected by kvm_ft at the landmark */

/* DMA: len bytes written at gpa at the landmark, zero-padded to 8 bytes. */
struct kvm_ft_rec_dma {
	struct kvm_ft_rec hdr;
	__u64 gpa;
	__u32 len;		/* 1..KVM_FT_DMA_MAX */
	__u32 reserved;
	__u8 data[];
};

/* RDRAND / RDSEED: the value the guest got (only where they can exit: VMX). */
struct kvm_ft_rec_rand {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u64 value;
	__u32 insn;		/* KVM_FT_INSN_RDRAND / RDSEED */
	__u32 reserved;
};

/*
 * REG_DIGEST: the digest of the registers at the exit of the synchronous
 * record it follows (landmark = that record's), taken before the exit was
 * handled. MEM_DIGEST: the digest of guest memory after the exit of the
 * record that announced it (KVM_FT_RF_MEM_DIGEST), before the next guest
 * entry. See DIGESTS.
 */
struct kvm_ft_rec_digest {
	struct kvm_ft_rec hdr;
	__u64 rip;		/* REG: guest RIP at that exit; MEM: 0 */
	__u64 digest;		/* xxh64, seed 0 */
	__u64 bytes;		/* MEM: bytes of guest memory hashed; REG: 0 */
};

/*
 * POSITION: a landmark in a stretch the guest ran without exiting (see
 * POSITIONS): the guest state before the instruction at rip. flags 0; its
 * landmark is the previous landmark + 1.
 */
struct kvm_ft_rec_position {
	struct kvm_ft_rec hdr;
	__u64 rip;
	__u64 rflags;		/* RF cleared */
	__u64 cr3;
	__u64 gpr[16];		/* RAX RCX RDX RBX RSP RBP RSI RDI R8..R15 */
};

/* ---- digests ---- */

/* What KVM_FT_GET_DIGEST reports: the last digests logged or checked. */
struct kvm_ft_digest {
	__u32 interval;		/* landmarks between register digests; KVM_FT_DIGEST_OFF */
	__u32 flags;		/* KVM_FT_DIGEST_F_* */
	__u64 reg_count;	/* register digests logged (RECORD) or matched (REPLAY) */
	__u64 reg_landmark;	/* landmark of the last one */
	__u64 reg_digest;
	__u64 mem_count;	/* memory digests logged or matched */
	__u64 mem_landmark;
	__u64 mem_digest;
	__u64 mem_bytes;
	__u64 reserved[4];
};

#define KVM_FT_DIGEST_F_MEM_PENDING	(1U << 0)	/* a memory digest is requested */

#define KVM_FT_REQUEST_MEM_DIGEST	_IO(KVM_FT_IOC_MAGIC, 0x16)
#define KVM_FT_GET_DIGEST	_IOR(KVM_FT_IOC_MAGIC, 0x17, struct kvm_ft_digest)

/* ---- generic netlink ---- */

#define KVM_FT_GENL_NAME		"kvm_ft"
#define KVM_FT_GENL_VERSION		1
#define KVM_FT_GENL_MCGRP_EVENTS	"events"

enum kvm_ft_genl_cmd {
	KVM_FT_CMD_UNSPEC,
	KVM_FT_CMD_GET_VM,	/* dump: one message per attached VM */
	KVM_FT_CMD_EVENT,	/* multicast notification */
	__KVM_FT_CMD_MAX,
};
#define KVM_FT_CMD_MAX (__KVM_FT_CMD_MAX - 1)

enum kvm_ft_genl_attr {
	KVM_FT_A_UNSPEC,
	KVM_FT_A_VM_ID,			/* u32 */
	KVM_FT_A_VM_PID,		/* u32 */
	KVM_FT_A_VM_MODE,		/* u32, enum kvm_ft_mode */
	KVM_FT_A_VM_NEXT_SEQ,		/* u64 */
	KVM_FT_A_VM_LANDMARK,		/* u64 */
	KVM_FT_A_VM_PRODUCER,		/* u64 */
	KVM_FT_A_VM_CONSUMER,		/* u64 */
	KVM_FT_A_VM_ACKED_SEQ,		/* u64 */
	KVM_FT_A_VM_DATA_SIZE,		/* u64 */
	KVM_FT_A_VM_RING_WAITS,		/* u64 */
	KVM_FT_A_VM_ERROR,		/* u32, enum kvm_ft_error */
	KVM_FT_A_VM_FLAGS,		/* u32, KVM_FT_RING_F_* */
	KVM_FT_A_EVENT_SEQ,		/* u64, per-module event counter */
	KVM_FT_A_EVENT_TYPE,		/* u32, enum kvm_ft_event */
	KVM_FT_A_PAD,
	__KVM_FT_A_MAX,
};
#define KVM_FT_A_MAX (__KVM_FT_A_MAX - 1)

enum kvm_ft_event {
	KVM_FT_EV_ATTACH	= 1,
	KVM_FT_EV_DETACH	= 2,
	KVM_FT_EV_MODE		= 3,
	KVM_FT_EV_ERROR		= 4,
};

#endif /* _UAPI_LINUX_KVM_FT_H */
