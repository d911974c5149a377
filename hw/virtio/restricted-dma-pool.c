/*
 * restricted-dma-pool: a restricted DMA window in guest RAM
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/cutils.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qom/object_interfaces.h"
#include "exec/address-spaces.h"
#include "exec/target_page.h"
#include "hw/boards.h"
#include "migration/vmstate.h"
#include "system/hostmem.h"
#include "hw/qdev-core.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-bus.h"
#include "hw/virtio/virtio-restricted-dma.h"
#include "hw/virtio/restricted-dma-pool.h"

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
    uint64_t addr = pool->placed ? pool->base : pool->addr;

    visit_type_uint64(v, name, &addr, errp);
}

static void restricted_dma_pool_set_addr(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    if (visit_type_uint64(v, name, &pool->addr, errp)) {
        pool->has_addr = true;
    }
}

static void restricted_dma_pool_complete(UserCreatable *uc, Error **errp)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(uc);
    const char *id = restricted_dma_pool_id(pool);
    uint64_t page = qemu_target_page_size();

    if (pool->memdev) {
        const char *mid =
            object_get_canonical_path_component(OBJECT(pool->memdev));

        if (pool->has_size) {
            error_setg(errp, "restricted-dma-pool '%s': size and memdev "
                       "cannot be combined: the pool's size is the memory "
                       "backend's", id);
            error_append_hint(errp, "Drop size.\n");
            return;
        }
        if (host_memory_backend_is_mapped(pool->memdev)) {
            error_setg(errp, "restricted-dma-pool '%s': memdev=%s is already "
                       "in use", id, mid);
            error_append_hint(errp, "Give the pool a memory backend of its "
                              "own.\n");
            return;
        }
        pool->size =
            memory_region_size(host_memory_backend_get_memory(pool->memdev));
        if (pool->size % page) {
            error_setg(errp, "restricted-dma-pool '%s': memdev=%s has a size "
                       "of %" PRIu64 " bytes, not a multiple of the %" PRIu64
                       " byte page size", id, mid, pool->size, page);
            return;
        }
        host_memory_backend_set_mapped(pool->memdev, true);
    }
    if (!pool->memdev && !pool->has_size) {
        error_setg(errp, "restricted-dma-pool '%s' needs size or memdev", id);
        error_append_hint(errp, "For example size=16M, or memdev=ID of a "
                          "memory-backend-memfd with share=on for a "
                          "vhost-user device.\n");
        return;
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
}

static bool ranges_overlap64(uint64_t a, uint64_t alen, uint64_t b,
                             uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

typedef struct PoolOverlap {
    RestrictedDMAPool *self;
    uint64_t base, size;
    RestrictedDMAPool *hit;
} PoolOverlap;

static void pool_overlap_one(RestrictedDMAPool *pool, void *opaque)
{
    PoolOverlap *o = opaque;

    if (pool != o->self && pool->placed && !o->hit &&
        ranges_overlap64(o->base, o->size, pool->base, pool->size)) {
        o->hit = pool;
    }
}

static RestrictedDMAPool *pool_overlap(RestrictedDMAPool *self, uint64_t base,
                                       uint64_t size)
{
    PoolOverlap o = { .self = self, .base = base, .size = size };

    restricted_dma_pool_foreach(pool_overlap_one, &o);
    return o.hit;
}

/*
 * Place @pool: at its pinned address, or else as high in RAM as it fits,
 * 2 MiB aligned, below pools placed before it and clear of the kernel,
 * initrd and device tree.
 */
static bool restricted_dma_pool_place(RestrictedDMAPool *pool, Object *host,
                                      Error **errp)
{
    RestrictedDMAPoolHostClass *hc = RESTRICTED_DMA_POOL_HOST_GET_CLASS(host);
    const char *id = restricted_dma_pool_id(pool);
    hwaddr ram_base, boot_base, end, base;
    uint64_t ram_size, boot_size;
    RestrictedDMAPool *other;

    if (pool->placed) {
        return true;
    }
    hc->get_ram(host, &ram_base, &ram_size, &boot_base, &boot_size);

    if (pool->has_addr) {
        base = pool->addr;
        if (base < ram_base || pool->size > ram_size ||
            base - ram_base > ram_size - pool->size) {
            error_setg(errp, "restricted-dma-pool '%s': addr=0x%" PRIx64
                       " size=0x%" PRIx64 " is not wholly inside guest RAM "
                       "[0x%" PRIx64 ", 0x%" PRIx64 ")", id, base, pool->size,
                       ram_base, ram_base + ram_size);
            error_append_hint(errp, "Pick an addr inside RAM, or drop addr "
                              "and let the board place the pool.\n");
            return false;
        }
        other = pool_overlap(pool, base, pool->size);
        if (other) {
            error_setg(errp, "restricted-dma-pool '%s' at 0x%" PRIx64
                       " overlaps restricted-dma-pool '%s' at [0x%" PRIx64
                       ", 0x%" PRIx64 ")", id, base,
                       restricted_dma_pool_id(other), other->base,
                       other->base + other->size);
            return false;
        }
        if (boot_size && ranges_overlap64(base, pool->size, boot_base,
                                          boot_size)) {
            error_setg(errp, "restricted-dma-pool '%s' at 0x%" PRIx64
                       " overlaps the kernel, initrd and device tree at "
                       "[0x%" PRIx64 ", 0x%" PRIx64 ")", id, base, boot_base,
                       boot_base + boot_size);
            return false;
        }
    } else {
        end = ram_base + ram_size;
        for (;;) {
            if (end - ram_base < pool->size) {
                goto full;
            }
            base = QEMU_ALIGN_DOWN(end - pool->size, RESTRICTED_DMA_POOL_ALIGN);
            if (base < ram_base) {
                goto full;
            }
            other = pool_overlap(pool, base, pool->size);
            if (other) {
                end = other->base;
                continue;
            }
            if (boot_size && ranges_overlap64(base, pool->size, boot_base,
                                              boot_size)) {
                goto full;
            }
            break;
        }
    }
    pool->base = base;
    pool->placed = true;
    if (pool->memdev) {
        MemoryRegion *mr = host_memory_backend_get_memory(pool->memdev);

        /*
         * The backend's memory takes the place of the guest RAM there; the
         * guest sees RAM, described as a pool, as without memdev.
         */
        vmstate_register_ram_global(mr);
        memory_region_add_subregion_overlap(get_system_memory(), base, mr, 1);
    }
    return true;

full:
    error_setg(errp, "restricted-dma-pool '%s': no room for 0x%" PRIx64
               " bytes in guest RAM [0x%" PRIx64 ", 0x%" PRIx64 ") above "
               "the kernel, initrd and device tree and below other pools",
               id, pool->size, ram_base, ram_base + ram_size);
    error_append_hint(errp, "Give the guest more RAM (-m) or the pool less "
                      "size.\n");
    return false;
}

bool restricted_dma_pool_plug(VirtIODevice *vdev, Error **errp)
{
    RestrictedDMAPool *pool = vdev->rdma_pool;
    Object *machine = qdev_get_machine();
    BusState *bus = qdev_get_parent_bus(DEVICE(vdev));
    VirtioBusClass *vbc = VIRTIO_BUS_GET_CLASS(bus);
    const char *id = restricted_dma_pool_id(pool);
    VirtIORestrictedDMAWindow w = {
        .kind = VIRTIO_RESTRICTED_DMA_KIND_POOL,
        .backing = get_system_memory(),
        .bar = -1,
        .pool = id,
    };

    if (!object_dynamic_cast(machine, TYPE_RESTRICTED_DMA_POOL_HOST)) {
        error_setg(errp, "restricted-dma-pool=%s: machine type %s cannot "
                   "describe a restricted DMA pool to its guest; pools are "
                   "described in a device tree, which only the arm virt "
                   "board writes", id, object_get_typename(machine));
        error_append_hint(errp, "On this machine, give a virtio-pci device "
                          "a window in a BAR with restricted-dma-bar-size.\n");
        return false;
    }
    if (phase_check(PHASE_MACHINE_READY)) {
        error_setg(errp, "restricted-dma-pool=%s: the guest learns about "
                   "pools from the device tree at boot, so a hot-plugged "
                   "device cannot use one", id);
        error_append_hint(errp, "Give the device on the command line, or "
                          "use restricted-dma-bar-size on a virtio-pci "
                          "device.\n");
        return false;
    }
    if (vdev->rdma) {
        error_setg(errp, "restricted-dma-pool and restricted-dma-bar-size "
                   "cannot be combined: a device has one window");
        error_append_hint(errp, "Keep one of them.\n");
        return false;
    }
    if (!object_dynamic_cast(OBJECT(bus), "virtio-mmio-bus") &&
        !object_dynamic_cast(OBJECT(bus), "virtio-pci-bus")) {
        error_setg(errp, "restricted-dma-pool=%s: the pool can only be "
                   "described for virtio-mmio and virtio-pci devices, not "
                   "on %s", id, object_get_typename(OBJECT(bus)));
        return false;
    }
    if (vbc->check_restricted_dma &&
        !vbc->check_restricted_dma(bus->parent, "restricted-dma-pool",
                                   errp)) {
        return false;
    }
    if (!virtio_host_has_feature(vdev, VIRTIO_F_VERSION_1)) {
        error_setg(errp, "restricted-dma-pool=%s needs a modern (virtio 1.x) "
                   "device", id);
        error_append_hint(errp, "Use disable-legacy=on, or a "
                          "non-transitional device type.\n");
        return false;
    }
    if (!restricted_dma_pool_place(pool, machine, errp)) {
        return false;
    }
    if (!virtio_restricted_dma_check_device(vdev, "restricted-dma-pool",
                                            pool->size,
                                            virtio_restricted_dma_shareable(
                                                pool->memdev),
                                            errp)) {
        return false;
    }

    w.offset = pool->base;
    w.size = pool->size;
    virtio_restricted_dma_init(vdev, &w);
    /* Guest RAM: the window is always where the pool is. */
    virtio_restricted_dma_set_window(vdev, true, pool->base);
    g_ptr_array_add(pool->users, vdev);
    return true;
}

static int restricted_dma_pool_foreach_one(Object *obj, void *opaque)
{
    struct {
        void (*fn)(RestrictedDMAPool *pool, void *opaque);
        void *opaque;
    } *f = opaque;

    if (object_dynamic_cast(obj, TYPE_RESTRICTED_DMA_POOL)) {
        f->fn(RESTRICTED_DMA_POOL(obj), f->opaque);
    }
    return 0;
}

void restricted_dma_pool_foreach(void (*fn)(RestrictedDMAPool *pool,
                                            void *opaque),
                                 void *opaque)
{
    struct {
        void (*fn)(RestrictedDMAPool *pool, void *opaque);
        void *opaque;
    } f = { fn, opaque };

    object_child_foreach(object_get_objects_root(),
                         restricted_dma_pool_foreach_one, &f);
}

void restricted_dma_pool_unplug(VirtIODevice *vdev)
{
    if (vdev->rdma_pool) {
        g_ptr_array_remove(vdev->rdma_pool->users, vdev);
    }
}

static void restricted_dma_pool_init(Object *obj)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

    pool->users = g_ptr_array_new();
}

static void restricted_dma_pool_finalize(Object *obj)
{
    RestrictedDMAPool *pool = RESTRICTED_DMA_POOL(obj);

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

    ucc->complete = restricted_dma_pool_complete;
    ucc->can_be_deleted = restricted_dma_pool_can_be_deleted;
    object_class_property_add(oc, "size", "size",
                              restricted_dma_pool_get_size,
                              restricted_dma_pool_set_size, NULL, NULL);
    object_class_property_set_description(oc, "size",
        "Size of the pool in bytes, a multiple of the page size");
    object_class_property_add_link(oc, "memdev", TYPE_MEMORY_BACKEND,
                                   offsetof(RestrictedDMAPool, memdev),
                                   object_property_allow_set_link,
                                   OBJ_PROP_LINK_STRONG);
    object_class_property_set_description(oc, "memdev",
        "Memory backend that backs the pool, in place of size (shared, for "
        "a vhost-user backend)");
    object_class_property_add(oc, "addr", "uint64",
                              restricted_dma_pool_get_addr,
                              restricted_dma_pool_set_addr, NULL, NULL);
    object_class_property_set_description(oc, "addr",
        "Guest physical address of the pool (default: the board places it)");
}

static const TypeInfo restricted_dma_pool_types[] = {
    {
        .name = TYPE_RESTRICTED_DMA_POOL,
        .parent = TYPE_OBJECT,
        .instance_size = sizeof(RestrictedDMAPool),
        .instance_init = restricted_dma_pool_init,
        .instance_finalize = restricted_dma_pool_finalize,
        .class_init = restricted_dma_pool_class_init,
        .interfaces = (InterfaceInfo[]) {
            { TYPE_USER_CREATABLE },
            { }
        },
    }, {
        .name = TYPE_RESTRICTED_DMA_POOL_HOST,
        .parent = TYPE_INTERFACE,
        .class_size = sizeof(RestrictedDMAPoolHostClass),
    },
};

DEFINE_TYPES(restricted_dma_pool_types)
