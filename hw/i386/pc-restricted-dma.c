/*
 * pc, q35: restricted-dma-pool objects in the RAM below 4 GiB
 *
 * The board places every pool when it lays out RAM: at the top of the RAM
 * below 4 GiB, or where its addr says, and reserves it in the E820 map
 * that firmware and Linux read (fw_cfg etc/e820), so that the guest never
 * uses it for anything else.  A virtio-pci device announces its pool in its
 * restricted DMA capability, so neither firmware tables nor a device tree
 * are needed, and a device plugged at run time can use a pool too.  The
 * kernel's initrd, which x86_load_linux() puts at the top of that RAM,
 * goes below the pools.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/i386/x86.h"
#include "hw/i386/pc.h"
#include "hw/i386/e820_memory_layout.h"
#include "hw/virtio/restricted-dma-pool.h"

/* Pools stay clear of the first MiB: BIOS, VGA and option ROMs. */
#define PC_RESTRICTED_DMA_LOW (1 * MiB)

typedef struct PcPools {
    GArray *ranges;     /* of Range, the pools below 4 GiB */
} PcPools;

static void pc_restricted_dma_collect(RestrictedDMAPool *pool, void *opaque)
{
    PcPools *p = opaque;
    Range r;

    if (pool->placed) {
        pool->reserved = true;
        range_init_nofail(&r, pool->addr, pool->size);
        g_array_append_val(p->ranges, r);
    }
}

static gint pc_restricted_dma_cmp(gconstpointer a, gconstpointer b)
{
    return range_compare((Range *)a, (Range *)b);
}

void pc_restricted_dma_memory_init(X86MachineState *x86ms)
{
    uint64_t end = x86ms->below_4g_mem_size, ram = 0;
    PcPools p = { g_array_new(false, false, sizeof(Range)) };
    int i;

    if (!restricted_dma_pool_place_all(PC_RESTRICTED_DMA_LOW,
                                       end - PC_RESTRICTED_DMA_LOW, false,
                                       &error_fatal)) {
        exit(1);
    }
    /* The RAM below 4 GiB, but for the pools. */
    restricted_dma_pool_foreach(pc_restricted_dma_collect, &p);
    g_array_sort(p.ranges, pc_restricted_dma_cmp);
    for (i = 0; i < p.ranges->len; i++) {
        Range *r = &g_array_index(p.ranges, Range, i);

        if (range_lob(r) > ram) {
            e820_add_entry(ram, range_lob(r) - ram, E820_RAM);
        }
        e820_add_entry(range_lob(r), range_size(r), E820_RESERVED);
        ram = range_upb(r) + 1;
    }
    if (end > ram) {
        e820_add_entry(ram, end - ram, E820_RAM);
    }
    g_array_free(p.ranges, true);
}
