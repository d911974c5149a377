/*
 * restricted-dma-pool: a restricted DMA window in guest RAM
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/cutils.h"
#include "qemu/range.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qom/object_interfaces.h"
#include "exec/address-spaces.h"
#include "exec/target_page.h"
#include "hw/boards.h"
#include "hw/qdev-core.h"
#include "migration/vmstate.h"
#include "system/hostmem.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-restricted-dma.h"
#include "hw/virtio/restricted-dma-pool.h"

/* The pools, in the order they were created. */
static QTAILQ_HEAD(, RestrictedDMAPool) restricted_dma_pools =
    QTAILQ_HEAD_INITIALIZER(restricted_dma_pools);

const char *restricted_dma_pool_id(RestrictedDMAPool *pool)
{
    return object_get_canonical_path_component(OBJECT(pool));
}

static void restricted_dma_pool_get_size(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    visit_type_size(v, name, &pool->size, errp);
}

static void restricted_dma_pool_set_size(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    if (visit_type_size(v, name, &pool->size, errp)) {
        pool->has_size = true;
    }
}

static void restricted_dma_pool_get_addr(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    visit_type_uint64(v, name, &pool->addr, errp);
}

static void restricted_dma_pool_set_addr(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    if (pool->placed) {
        error_setg(errp, "restricted-dma-pool '%s' is placed already: addr "
                   "cannot change", restricted_dma_pool_id(pool));
        return;
    }
    if (visit_type_uint64(v, name, &pool->addr, errp)) {
        pool->has_addr = true;
    }
}

static void restricted_dma_pool_complete(UserCreatable *uc, Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(uc);
    const char *id = restricted_dma_pool_id(pool);
    uint64_t page = qemu_target_page_size();

    if (phase_check(PHASE_MACHINE_INITIALIZED)) {
        error_setg(errp, "restricted-dma-pool '%s': a pool must exist when "
                   "the board lays out guest RAM, which it has done "
                   "already", id);
        error_append_hint(errp, "Give the pool with -object on the command "
                          "line.\n");
        return;
    }
    if (pool->memdev && pool->has_size) {
        error_setg(errp, "restricted-dma-pool '%s': size and memdev cannot "
                   "be combined: the pool's size is the memory backend's",
                   id);
        error_append_hint(errp, "Drop size.\n");
        return;
    }
    if (!pool->memdev && !pool->has_size) {
        error_setg(errp, "restricted-dma-pool '%s' needs size or memdev", id);
        error_append_hint(errp, "For example size=16M, or memdev=ID of a "
                          "memory-backend-memfd with share=on for a "
                          "vhost-user device.\n");
        return;
    }
    if (pool->memdev) {
        pool->size =
            memory_region_size(host_memory_backend_get_memory(pool->memdev));
        if (pool->size % page) {
            error_setg(errp, "restricted-dma-pool '%s': memdev=%s has a size "
                       "of %" PRIu64 " bytes, not a multiple of the %" PRIu64
                       " byte page size", id,
                       object_get_canonical_path_component(
                           OBJECT(pool->memdev)), pool->size, page);
            return;
        }
    }
    if (!pool->size || pool->size % page) {
        error_setg(errp, "restricted-dma-pool '%s': size=%" PRIu64 " must be "
                   "a non-zero multiple of the %" PRIu64 " byte page size",
                   id, pool->size, page);
        error_append_hint(errp, "For example size=16M.\n");
        return;
    }
    if (pool->has_addr && pool->addr % page) {
        error_setg(errp, "restricted-dma-pool '%s': addr=0x%" PRIx64 " is not "
                   "aligned to the %" PRIu64 " byte page size", id,
                   pool->addr, page);
        return;
    }
    if (pool->memdev) {
        g_autofree char *what = g_strdup_printf(
            "restricted-dma-pool '%s': memdev=%s", id,
            object_get_canonical_path_component(OBJECT(pool->memdev)));

        if (!virtio_restricted_dma_claim_memdev(pool->memdev, what, errp)) {
            return;
        }
    }
    QTAILQ_INSERT_TAIL(&restricted_dma_pools, pool, next);
    pool->listed = true;
}

typedef struct PoolOverlap {
    RestrictedDMAPool *self;
    uint64_t base, size;
    RestrictedDMAPool *hit;
} PoolOverlap;

static void restricted_dma_pool_overlap_one(RestrictedDMAPool *pool,
                                            void *opaque)
{
    PoolOverlap *o = opaque;

    if (pool != o->self && pool->placed && !o->hit &&
        ranges_overlap(o->base, o->size, pool->addr, pool->size)) {
        o->hit = pool;
    }
}

static RestrictedDMAPool *restricted_dma_pool_overlap(RestrictedDMAPool *self,
                                                      uint64_t base,
                                                      uint64_t size)
{
    PoolOverlap o = { .self = self, .base = base, .size = size };

    restricted_dma_pool_foreach(restricted_dma_pool_overlap_one, &o);
    return o.hit;
}

static bool restricted_dma_pool_place(RestrictedDMAPool *pool,
                                      hwaddr ram_base, uint64_t ram_size,
                                      Error **errp)
{
    const char *id = restricted_dma_pool_id(pool);
    hwaddr end = ram_base + ram_size, base;
    RestrictedDMAPool *other;

    if (pool->has_addr) {
        base = pool->addr;
        if (base < ram_base || pool->size > ram_size ||
            base - ram_base > ram_size - pool->size) {
            error_setg(errp, "restricted-dma-pool '%s': addr=0x%" PRIx64
                       " size=0x%" PRIx64 " is not wholly inside guest RAM "
                       "[0x%" PRIx64 ", 0x%" PRIx64 ")", id, base, pool->size,
                       ram_base, end);
            error_append_hint(errp, "Pick an addr inside RAM, or drop addr "
                              "and let the board place the pool.\n");
            return false;
        }
        other = restricted_dma_pool_overlap(pool, base, pool->size);
        if (other) {
            error_setg(errp, "restricted-dma-pool '%s' at 0x%" PRIx64
                       " overlaps restricted-dma-pool '%s' at [0x%" PRIx64
                       ", 0x%" PRIx64 ")", id, base,
                       restricted_dma_pool_id(other), other->addr,
                       other->addr + other->size);
            return false;
        }
    } else {
        for (;;) {
            if (end - ram_base < pool->size) {
                goto full;
            }
            base = QEMU_ALIGN_DOWN(end - pool->size, RESTRICTED_DMA_POOL_ALIGN);
            if (base < ram_base) {
                goto full;
            }
            other = restricted_dma_pool_overlap(pool, base, pool->size);
            if (!other) {
                break;
            }
            end = other->addr;
        }
    }
    pool->addr = base;
    pool->placed = true;
    if (pool->memdev) {
        MemoryRegion *mr = host_memory_backend_get_memory(pool->memdev);

        /*
         * The backend's memory takes the place of the guest RAM there; the
         * guest sees RAM, described as a pool, as without memdev.
         */
        vmstate_register_ram_global(mr);
        memory_region_add_subregion_overlap(get_system_memory(), base, mr, 1);
    } else {
        memory_region_init_alias(&pool->mr, OBJECT(pool),
                                 "restricted-dma-pool", get_system_memory(),
                                 base, pool->size);
    }
    return true;

full:
    error_setg(errp, "restricted-dma-pool '%s': no room for 0x%" PRIx64
               " bytes in guest RAM [0x%" PRIx64 ", 0x%" PRIx64 ") below "
               "other pools", id, pool->size, ram_base, ram_base + ram_size);
    error_append_hint(errp, "Give the guest more RAM (-m) or the pool less "
                      "size.\n");
    return false;
}

typedef struct PoolPlaceAll {
    hwaddr ram_base;
    uint64_t ram_size;
    bool described;
    Error **errp;
    bool ok;
} PoolPlaceAll;

static void restricted_dma_pool_place_one(RestrictedDMAPool *pool,
                                          void *opaque)
{
    PoolPlaceAll *p = opaque;

    if (p->ok && !pool->placed) {
        pool->described = p->described;
        p->ok = restricted_dma_pool_place(pool, p->ram_base, p->ram_size,
                                          p->errp);
    }
}

bool restricted_dma_pool_place_all(hwaddr ram_base, uint64_t ram_size,
                                   bool described, Error **errp)
{
    PoolPlaceAll p = { ram_base, ram_size, described, errp, true };

    restricted_dma_pool_foreach(restricted_dma_pool_place_one, &p);
    return p.ok;
}

typedef struct PoolLowest {
    uint64_t limit, lowest;
} PoolLowest;

static void restricted_dma_pool_lowest_one(RestrictedDMAPool *pool,
                                           void *opaque)
{
    PoolLowest *l = opaque;

    if (pool->placed && pool->addr < l->limit && pool->addr < l->lowest) {
        l->lowest = pool->addr;
    }
}

uint64_t restricted_dma_pool_lowest(uint64_t limit)
{
    PoolLowest l = { limit, limit };

    restricted_dma_pool_foreach(restricted_dma_pool_lowest_one, &l);
    return l.lowest;
}

bool restricted_dma_pool_check_free(hwaddr base, uint64_t size,
                                    const char *what, Error **errp)
{
    RestrictedDMAPool *hit = restricted_dma_pool_overlap(NULL, base, size);

    if (hit) {
        error_setg(errp, "restricted-dma-pool '%s' at [0x%" PRIx64 ", 0x%"
                   PRIx64 ") overlaps %s at [0x%" PRIx64 ", 0x%" PRIx64 ")",
                   restricted_dma_pool_id(hit), hit->addr,
                   hit->addr + hit->size, what, base, base + size);
        error_append_hint(errp, "Give the guest more RAM (-m), the pool "
                          "less size, or an addr clear of it.\n");
        return false;
    }
    return true;
}

void restricted_dma_pool_foreach(void (*fn)(RestrictedDMAPool *pool,
                                            void *opaque),
                                 void *opaque)
{
    RestrictedDMAPool *pool;

    QTAILQ_FOREACH(pool, &restricted_dma_pools, next) {
        fn(pool, opaque);
    }
}

/* The pool as a window provider. */

static bool restricted_dma_pool_attach(Object *provider, VirtIODevice *vdev,
                                       const VirtIORestrictedDMARequest *req,
                                       Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(provider);
    const char *id = restricted_dma_pool_id(pool);

    if (!pool->placed) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POOL "=%s: machine type "
                   "%s cannot describe a restricted DMA pool to its guest; "
                   "the arm virt, pc and q35 boards can", id,
                   object_get_typename(qdev_get_machine()));
        error_append_hint(errp, "On this machine, give a virtio-pci device "
                          "a window in a BAR with restricted-dma-bar-size.\n");
        return false;
    }
    if (!req->announced && !pool->described) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POOL "=%s: this guest "
                   "learns about pools only from the capability of a "
                   "virtio-pci device, which %s does not have", id,
                   object_get_typename(OBJECT(vdev)));
        error_append_hint(errp, "Use a virtio-pci device.\n");
        return false;
    }
    if (phase_check(PHASE_MACHINE_READY) && !pool->reserved) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POOL "=%s: no device used "
                   "the pool at boot, so the guest's memory map does not "
                   "reserve it, and a hot-plugged device cannot use one", id);
        error_append_hint(errp, "Give a device that uses the pool on the "
                          "command line, or use restricted-dma-bar-size on a "
                          "virtio-pci device.\n");
        return false;
    }
    if (!req->announced && phase_check(PHASE_MACHINE_READY)) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POOL "=%s: the guest "
                   "learns about this device's pool from the device tree at "
                   "boot, so a hot-plugged device cannot use one", id);
        error_append_hint(errp, "Give the device on the command line, or "
                          "use a virtio-pci device, whose capability "
                          "announces its pool.\n");
        return false;
    }
    g_ptr_array_add(pool->users, vdev);
    return true;
}

static void restricted_dma_pool_detach(Object *provider, VirtIODevice *vdev)
{
    g_ptr_array_remove(RESTRICTED_DMA_POOL(provider)->users, vdev);
}

static MemoryRegion *restricted_dma_pool_get_memory(Object *provider)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(provider);

    return pool->memdev ? host_memory_backend_get_memory(pool->memdev)
                        : &pool->mr;
}

static bool restricted_dma_pool_get_address(Object *provider, uint64_t *addr)
{
    /* Guest RAM: the window is always where the pool is. */
    *addr = RESTRICTED_DMA_POOL(provider)->addr;
    return true;
}

static void restricted_dma_pool_describe(Object *provider,
                                         VirtioRestrictedDmaStatus *st)
{
    st->kind = VIRTIO_RESTRICTED_DMA_KIND_POOL;
    st->pool = g_strdup(restricted_dma_pool_id(RESTRICTED_DMA_POOL(provider)));
}

static void restricted_dma_pool_init(Object *obj)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    pool->users = g_ptr_array_new();
}

static void restricted_dma_pool_finalize(Object *obj)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    if (pool->listed) {
        QTAILQ_REMOVE(&restricted_dma_pools, pool, next);
    }
    if (pool->memdev && !pool->placed && pool->listed) {
        virtio_restricted_dma_release_memdev(pool->memdev);
    }
    g_ptr_array_free(pool->users, true);
}

static bool restricted_dma_pool_can_be_deleted(UserCreatable *uc)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(uc);

    /* a memdev, once placed, stays mapped into guest RAM */
    return pool->users->len == 0 && !(pool->memdev && pool->placed);
}

static void restricted_dma_pool_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);
    VirtIORestrictedDMAProviderClass *pc =
        VIRTIO_RESTRICTED_DMA_PROVIDER_CLASS(oc);

    ucc->complete = restricted_dma_pool_complete;
    ucc->can_be_deleted = restricted_dma_pool_can_be_deleted;
    pc->attach = restricted_dma_pool_attach;
    pc->detach = restricted_dma_pool_detach;
    pc->get_memory = restricted_dma_pool_get_memory;
    pc->get_address = restricted_dma_pool_get_address;
    pc->describe = restricted_dma_pool_describe;

    object_class_property_add(oc, "size", "size",
                              restricted_dma_pool_get_size,
                              restricted_dma_pool_set_size, NULL, NULL);
    object_class_property_set_description(oc, "size",
        "Size of the pool in bytes, a multiple of the page size (required, "
        "unless memdev gives the pool)");
    object_class_property_add_link(oc, "memdev", TYPE_MEMORY_BACKEND,
                                   offsetof(RestrictedDMAPool, memdev),
                                   object_property_allow_set_link,
                                   OBJ_PROP_LINK_STRONG);
    object_class_property_set_description(oc, "memdev",
        "Memory backend that backs the pool, in place of size (shared, for "
        "a vhost-user backend); default: none");
    object_class_property_add(oc, "addr", "uint64",
                              restricted_dma_pool_get_addr,
                              restricted_dma_pool_set_addr, NULL, NULL);
    object_class_property_set_description(oc, "addr",
        "Guest physical address of the pool (default: the board places it; "
        "reads the placed address)");
}

static const TypeInfo restricted_dma_pool_info = {
    .name = TYPE_RESTRICTED_DMA_POOL,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(RestrictedDMAPool),
    .instance_init = restricted_dma_pool_init,
    .instance_finalize = restricted_dma_pool_finalize,
    .class_init = restricted_dma_pool_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER },
        { }
    },
};

static void restricted_dma_pool_register_types(void)
{
    type_register_static(&restricted_dma_pool_info);
}

type_init(restricted_dma_pool_register_types)
