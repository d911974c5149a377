/*
 * restricted-dma-pool: a restricted DMA window in guest RAM
 *
 * -object restricted-dma-pool,id=ID,size=SIZE[,addr=GPA] is a range of
 * ordinary guest RAM that virtio devices with restricted-dma-pool=ID use as
 * their only DMA window.  The pool is a window provider
 * (TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER).  A board that can tell its guest
 * about pools places them when it lays out RAM, with
 * restricted_dma_pool_place_all(), and describes each to the guest (arm
 * virt: a device-tree "restricted-dma-pool" node referenced from each
 * device's node).
 *
 * With memdev=MEMID in place of size, the range is backed by that memory
 * backend instead, mapped over the guest RAM there; a vhost-user backend
 * can map it when it is shared.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_RESTRICTED_DMA_POOL_H
#define HW_VIRTIO_RESTRICTED_DMA_POOL_H

#include "qemu/units.h"
#include "qom/object.h"
#include "exec/memory.h"
#include "qemu/queue.h"

#define TYPE_RESTRICTED_DMA_POOL "restricted-dma-pool"
OBJECT_DECLARE_SIMPLE_TYPE(RestrictedDMAPool, RESTRICTED_DMA_POOL)

/* Linux maps the pool in its linear map: keep it 2 MiB aligned. */
#define RESTRICTED_DMA_POOL_ALIGN (2 * MiB)

struct RestrictedDMAPool {
    Object parent_obj;

    uint64_t size;
    bool has_size;
    HostMemoryBackend *memdev;  /* backs the pool, if given */
    /* where the pool is: pinned by the user (has_addr), or placed */
    uint64_t addr;
    bool has_addr;
    bool placed;
    /*
     * the board describes the pool to the guest itself (a device-tree
     * node), so a device whose transport does not announce it can use it
     */
    bool described;
    /*
     * the guest will never use the pool's memory for itself (the board
     * reserved it in the memory map the guest boots with), so a device
     * plugged at run time can use the pool
     */
    bool reserved;
    MemoryRegion mr;        /* the pool's guest RAM, once placed */
    GPtrArray *users;       /* the VirtIODevices that use the pool */
    QTAILQ_ENTRY(RestrictedDMAPool) next;   /* in the order created */
    bool listed;
};

/*
 * Place every pool in guest RAM [@ram_base, @ram_base + @ram_size), in the
 * order they were created: at its addr, or else as high as it fits, 2 MiB
 * aligned, below the pools placed before it.  A board whose guest can
 * learn about pools calls it when it lays out RAM, before devices are
 * created, and keeps the pools out of the guest's own use.  @described:
 * the board also tells the guest which device uses which pool; otherwise
 * only a device whose transport announces its pool can use one.
 */
bool restricted_dma_pool_place_all(hwaddr ram_base, uint64_t ram_size,
                                   bool described, Error **errp);

/*
 * The board put @what at [@base, @base + @size): check that no pool is
 * there.
 */
bool restricted_dma_pool_check_free(hwaddr base, uint64_t size,
                                    const char *what, Error **errp);

/*
 * The lowest address of a placed pool below @limit, or @limit: where a
 * boot loader that fills RAM from the top down must stop.
 */
uint64_t restricted_dma_pool_lowest(uint64_t limit);

/* Call @fn for each pool object, in the order they were created. */
void restricted_dma_pool_foreach(void (*fn)(RestrictedDMAPool *pool,
                                            void *opaque),
                                 void *opaque);

const char *restricted_dma_pool_id(RestrictedDMAPool *pool);

#endif
