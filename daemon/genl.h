/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kvm_ft module's generic netlink family (uapi KVM_FT_GENL_NAME), read
 * directly with libnl-genl-3: what ftctl shows when ftd is not running.
 */
#ifndef FTD_GENL_H
#define FTD_GENL_H

#include <stdint.h>

struct ft_genl_vm {
	uint32_t id, pid, mode, error, flags;
	uint64_t next_seq, landmark, producer, consumer, acked_seq, data_size, ring_waits;
};

/*
 * Dump every attached VM (KVM_FT_CMD_GET_VM), calling cb for each. Returns
 * the number of VMs, -ENOENT when the family is not registered (module not
 * loaded), or another -errno.
 */
int ft_genl_list_vms(void (*cb)(void *ctx, const struct ft_genl_vm *vm), void *ctx);

#endif
