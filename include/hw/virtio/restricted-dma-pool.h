/*
 * restricted-dma-pool: a restricted DMA window in guest RAM
 *
 * -object restricted-dma-pool,id=ID,size=SIZE[,addr=GPA] is a range of
 * ordinary guest RAM that virtio devices with restricted-dma-pool=ID use as
 * their only DMA window.  The board places it (or checks the pinned
 * address) and describes it to the guest as a device-tree
 * "restricted-dma-pool" node referenced from each device's node.
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
#include "exec/hwaddr.h"

#define TYPE_RESTRICTED_DMA_POOL "restricted-dma-pool"
OBJECT_DECLARE_SIMPLE_TYPE(RestrictedDMAPool, RESTRICTED_DMA_POOL)

/* Linux maps the pool in its linear map: keep it 2 MiB aligned. */
#define RESTRICTED_DMA_POOL_ALIGN (2 * MiB)

struct RestrictedDMAPool {
    Object parent_obj;

    uint64_t size;
    bool has_size;
    HostMemoryBackend *memdev;  /* backs the pool, if given */
    bool has_addr;
    uint64_t addr;          /* the pinned address, if has_addr */

    bool placed;
    hwaddr base;
    GPtrArray *users;       /* the VirtIODevices that use the pool */
    uint32_t phandle;       /* of its device-tree node, once written */
};

/*
 * A machine that can describe pools to its guest implements this
 * interface.
 */
#define TYPE_RESTRICTED_DMA_POOL_HOST "restricted-dma-pool-host"

typedef struct RestrictedDMAPoolHostClass {
    InterfaceClass parent_class;

    /*
     * The guest RAM pools may live in, [*ram_base, *ram_base + *ram_size),
     * and the part of it that holds the kernel, initrd and device tree,
     * [*boot_base, *boot_base + *boot_size) (*boot_size is 0 without a
     * kernel).
     */
    void (*get_ram)(Object *host, hwaddr *ram_base, uint64_t *ram_size,
                    hwaddr *boot_base, uint64_t *boot_size);
} RestrictedDMAPoolHostClass;

DECLARE_CLASS_CHECKERS(RestrictedDMAPoolHostClass, RESTRICTED_DMA_POOL_HOST,
                       TYPE_RESTRICTED_DMA_POOL_HOST)

/*
 * Give @vdev, whose restricted-dma-pool property is set, the pool as its
 * window: check the machine and the transport, place the pool if it is not
 * placed yet, and hand it to the restricted DMA core.
 */
bool restricted_dma_pool_plug(VirtIODevice *vdev, Error **errp);

/* Call @fn for each pool object, in the order they were created. */
void restricted_dma_pool_foreach(void (*fn)(RestrictedDMAPool *pool,
                                            void *opaque),
                                 void *opaque);

const char *restricted_dma_pool_id(RestrictedDMAPool *pool);

/* @vdev goes away: it no longer uses its pool. */
void restricted_dma_pool_unplug(VirtIODevice *vdev);

#endif
