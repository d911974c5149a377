/*
 * Restricted DMA for virtio devices: the transport-independent core
 *
 * The device's DMA address space is private.  It holds the window (an
 * alias of its backing memory at the window's current bus address) over a
 * catch-all region of lowest priority that covers every other address and
 * rejects each access to it.  The address space allows no bounce buffers,
 * so address_space_map() of anything but the window fails.  On top of that
 * the virtio core checks every ring, indirect table and buffer against the
 * window before it uses it, so that a driver's bad address is reported
 * precisely, before any access.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qapi/qapi-events-virtio.h"
#include "hw/qdev-properties.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-restricted-dma.h"
#include "hw/virtio/vhost.h"
#include "system/hostmem.h"
#include "migration/vmstate.h"
#include "standard-headers/linux/virtio_ids.h"
#include "trace.h"

struct VirtIORestrictedDMA {
    VirtIODevice *vdev;
    Object *holder;         /* holds the memory @vdev lives in */
    VirtioRestrictedDmaKind kind;
    uint64_t size;
    int bar;
    char *pool;

    MemoryRegion root;      /* the device's view of the bus */
    MemoryRegion outside;   /* every address but the window */
    MemoryRegion window;    /* alias of the backing at the bus address */
    AddressSpace as;

    bool open;              /* the transport lets the device DMA */
    hwaddr base;            /* bus address of the window */

    bool tripped;           /* a violation broke the device since reset */
    uint64_t refusals;
    uint64_t violations;
    uint64_t backend_errors;    /* not migrated: the backend is per host */

    /* migration */
    bool loaded;
    uint32_t in_kind;
    uint64_t in_size;
    uint64_t in_base;
    int32_t in_policy;
};

const PropertyInfo qdev_prop_virtio_restricted_dma_policy = {
    .type = "VirtioRestrictedDmaPolicy",
    .description = "refuse/tolerate (a driver without restricted DMA)",
    .enum_table = &VirtioRestrictedDmaPolicy_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

/*
 * iommu_platform: a bit of host_features like the other common feature
 * properties, except that the device also learns whether the user set it,
 * because restricted DMA turns ACCESS_PLATFORM on and must not override an
 * explicit iommu_platform=off.  The default (off) is the zeroed field, so
 * that every call of the setter is the user's.
 */
static void virtio_iommu_platform_get(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    const Property *prop = opaque;
    uint64_t *p = object_field_prop_ptr(obj, prop);
    bool value = *p & BIT_ULL(prop->bitnr);

    visit_type_bool(v, name, &value, errp);
}

static void virtio_iommu_platform_set(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    const Property *prop = opaque;
    uint64_t *p = object_field_prop_ptr(obj, prop);
    bool value;

    if (!visit_type_bool(v, name, &value, errp)) {
        return;
    }
    if (value) {
        *p |= BIT_ULL(prop->bitnr);
    } else {
        *p &= ~BIT_ULL(prop->bitnr);
    }
    VIRTIO_DEVICE(obj)->iommu_platform_set = true;
}

static void virtio_iommu_platform_set_default(ObjectProperty *op,
                                              const Property *prop)
{
    /* Shown by -device help; not applied through the setter. */
    object_property_set_default_bool(op, false);
    op->init = NULL;
}

const PropertyInfo qdev_prop_virtio_iommu_platform = {
    .type = "bool",
    .description = "on/off",
    .get = virtio_iommu_platform_get,
    .set = virtio_iommu_platform_set,
    .set_default_value = virtio_iommu_platform_set_default,
};

char *virtio_restricted_dma_size_arg(uint64_t size)
{
    if (size && !(size % GiB)) {
        return g_strdup_printf("%" PRIu64 "G", size / GiB);
    } else if (size && !(size % MiB)) {
        return g_strdup_printf("%" PRIu64 "M", size / MiB);
    } else if (size && !(size % KiB)) {
        return g_strdup_printf("%" PRIu64 "K", size / KiB);
    }
    return g_strdup_printf("%" PRIu64, size);
}

/* The type the user named: the proxy of a virtio-*-pci device. */
static const char *virtio_rdma_user_type(VirtIODevice *vdev)
{
    BusState *bus = qdev_get_parent_bus(DEVICE(vdev));

    if (bus && bus->parent &&
        object_dynamic_cast(OBJECT(bus->parent), "pci-device")) {
        return object_get_typename(OBJECT(bus->parent));
    }
    return object_get_typename(OBJECT(vdev));
}

static const char *virtio_rdma_path(VirtIODevice *vdev)
{
    /* The device the user named: the proxy of a virtio-*-pci device. */
    DeviceState *dev = DEVICE(vdev);
    BusState *bus = qdev_get_parent_bus(dev);

    if (!dev->id && bus && bus->parent && bus->parent->id) {
        return bus->parent->id;
    }
    return dev->id ? dev->id : vdev->name;
}

uint64_t virtio_restricted_dma_min_size(VirtIODevice *vdev)
{
    uint64_t total = VIRTIO_RESTRICTED_DMA_MAX_REQUEST;
    int i;

    for (i = 0; i < VIRTIO_QUEUE_MAX; i++) {
        uint64_t n = virtio_queue_get_max_num(vdev, i);

        if (!n) {
            continue;
        }
        total += ROUND_UP(16 * n, 16) + ROUND_UP(6 + 2 * n, 16) +
                 ROUND_UP(6 + 8 * n, 16);
    }
    return total;
}

static const char *vhost_backend_name(struct vhost_dev *hdev)
{
    if (!hdev->vhost_ops) {
        return "vhost";
    }
    switch (hdev->vhost_ops->backend_type) {
    case VHOST_BACKEND_TYPE_KERNEL:
        return "vhost-kernel";
    case VHOST_BACKEND_TYPE_USER:
        return "vhost-user";
    case VHOST_BACKEND_TYPE_VDPA:
        return "vhost-vdpa";
    default:
        return "vhost";
    }
}

bool virtio_restricted_dma_shareable(HostMemoryBackend *be)
{
    return be && host_memory_backend_get_memory(be) &&
           memory_region_get_fd(host_memory_backend_get_memory(be)) >= 0 &&
           object_property_get_bool(OBJECT(be), "share", NULL);
}

static void virtio_rdma_hint_shared(Error **errp)
{
    error_append_hint(errp, "Put the window in memory the backend can map, "
                      "and nothing else: -object memory-backend-memfd,"
                      "id=win0,size=8M,share=on, then "
                      "restricted-dma-bar-memdev=win0 on a virtio-pci "
                      "device, or memdev=win0 on the restricted-dma-pool.\n");
}

bool virtio_restricted_dma_check_type(const char *type, const char *prop,
                                      bool shared, Error **errp)
{
    if (g_str_has_prefix(type, "vhost-user-")) {
        if (shared) {
            return true;
        }
        error_setg(errp, "%s cannot be used with %s unless the window is "
                   "shared memory with a file descriptor: its vhost-user "
                   "backend is given the window as its only memory", prop,
                   type);
        virtio_rdma_hint_shared(errp);
        return false;
    }
    if (g_str_has_prefix(type, "vhost-")) {
        error_setg(errp, "%s cannot be used with %s: its vhost backend maps "
                   "all of guest RAM, outside the device's restricted DMA "
                   "address space", prop, type);
        error_append_hint(errp, "Use the device emulated in QEMU, or its "
                          "vhost-user form with a shared window.\n");
        return false;
    }
    return true;
}

bool virtio_restricted_dma_check_device(VirtIODevice *vdev, const char *prop,
                                        uint64_t size, bool shared,
                                        Error **errp)
{
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_GET_CLASS(vdev);
    const char *type = virtio_rdma_user_type(vdev);
    uint64_t min;

    switch (vdev->device_id) {
    case VIRTIO_ID_BALLOON:
    case VIRTIO_ID_MEM:
    case VIRTIO_ID_PMEM:
        error_setg(errp, "%s cannot be used with %s: the device works on "
                   "guest RAM by design, outside any window", prop, type);
        error_append_hint(errp, "Remove %s from this device.\n", prop);
        return false;
    }

    if (vdc->get_vhost && vdc->get_vhost(vdev)) {
        struct vhost_dev *hdev = vdc->get_vhost(vdev);
        bool user = hdev->vhost_ops &&
                    hdev->vhost_ops->backend_type == VHOST_BACKEND_TYPE_USER;

        /*
         * A vhost-user backend takes its memory table from the device's
         * address space (hw/virtio/vhost.c), so it is given the window
         * alone, if it can map it.  vhost-kernel and vhost-vdpa take all
         * of guest RAM or an IOMMU's view.
         */
        if (user && !shared) {
            error_setg(errp, "%s cannot be used with a vhost-user backend "
                       "unless the window is shared memory with a file "
                       "descriptor: the backend is given the window as its "
                       "only memory", prop);
            virtio_rdma_hint_shared(errp);
            return false;
        }
        if (!user) {
            error_setg(errp, "%s cannot be used with a %s backend: it maps "
                       "all of guest RAM, outside the device's restricted "
                       "DMA address space", prop, vhost_backend_name(hdev));
            error_append_hint(errp, "Use a backend emulated in QEMU (for a "
                              "network device: vhost=off on its -netdev), "
                              "or a vhost-user backend with a shared "
                              "window.\n");
            return false;
        }
    }
    if (!virtio_restricted_dma_check_type(type, prop, shared, errp)) {
        return false;
    }

    if (vdev->iommu_platform_set &&
        !virtio_host_has_feature(vdev, VIRTIO_F_IOMMU_PLATFORM)) {
        error_setg(errp, "%s needs VIRTIO_F_ACCESS_PLATFORM, but "
                   "iommu_platform=off was given", prop);
        error_append_hint(errp, "Drop iommu_platform=off: restricted DMA "
                          "offers ACCESS_PLATFORM by itself.\n");
        return false;
    }

    min = virtio_restricted_dma_min_size(vdev);
    if (size < min) {
        g_autofree char *want = size_to_str(min);
        g_autofree char *have = size_to_str(size);
        g_autofree char *hint = virtio_restricted_dma_size_arg(pow2ceil(min));

        error_setg(errp, "%s=%s is below the minimum of %s (%" PRIu64
                   " bytes) for %s: its virtqueues at their maximum size "
                   "plus one %u KiB request", prop, have, want, min, type,
                   (unsigned)(VIRTIO_RESTRICTED_DMA_MAX_REQUEST / KiB));
        error_append_hint(errp, "Use %s=%s or more.\n", prop, hint);
        return false;
    }
    return true;
}

static bool virtio_rdma_outside_accepts(void *opaque, hwaddr addr,
                                        unsigned size, bool is_write,
                                        MemTxAttrs attrs)
{
    return true;
}

static MemTxResult virtio_rdma_outside_read(void *opaque, hwaddr addr,
                                            uint64_t *data, unsigned size,
                                            MemTxAttrs attrs)
{
    VirtIORestrictedDMA *r = opaque;

    *data = 0;
    virtio_restricted_dma_check_slow(r->vdev, addr, size, "read");
    return MEMTX_ACCESS_ERROR;
}

static MemTxResult virtio_rdma_outside_write(void *opaque, hwaddr addr,
                                             uint64_t data, unsigned size,
                                             MemTxAttrs attrs)
{
    VirtIORestrictedDMA *r = opaque;

    virtio_restricted_dma_check_slow(r->vdev, addr, size, "write");
    return MEMTX_ACCESS_ERROR;
}

static const MemoryRegionOps virtio_rdma_outside_ops = {
    .read_with_attrs = virtio_rdma_outside_read,
    .write_with_attrs = virtio_rdma_outside_write,
    .endianness = DEVICE_NATIVE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
        .accepts = virtio_rdma_outside_accepts,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

bool virtio_restricted_dma_check_unused(VirtIODevice *vdev, Error **errp)
{
    if (!vdev->rdma &&
        vdev->rdma_policy != VIRTIO_RESTRICTED_DMA_POLICY_REFUSE) {
        error_setg(errp, "restricted-dma-policy=%s needs a restricted DMA "
                   "window",
                   VirtioRestrictedDmaPolicy_str(vdev->rdma_policy));
        error_append_hint(errp, "Give the device a window with "
                          "restricted-dma-pool, or restricted-dma-bar-size "
                          "(virtio-pci), or drop restricted-dma-policy.\n");
        return false;
    }
    return true;
}

void virtio_restricted_dma_init(VirtIODevice *vdev,
                                const VirtIORestrictedDMAWindow *w)
{
    VirtIORestrictedDMA *r = g_new0(VirtIORestrictedDMA, 1);
    Object *owner = OBJECT(vdev);
    g_autofree char *asname = g_strdup_printf("virtio-restricted-dma-%s",
                                              vdev->name);
    uint64_t size = w->size;

    r->vdev = vdev;
    /*
     * The regions below are the device's, and the flat views of the
     * address space hold references to it until RCU is done with them.
     * A virtio-pci or virtio-ccw proxy embeds its VirtIODevice, though:
     * keep the proxy, and with it the device's memory, until the device
     * is finalized.  (A device on virtio-mmio has a container as parent,
     * which is never freed.)
     */
    r->holder = OBJECT(vdev)->parent;
    if (r->holder) {
        object_ref(r->holder);
    }
    r->kind = w->kind;
    r->size = size;
    r->bar = w->bar;
    r->pool = g_strdup(w->pool);

    memory_region_init(&r->root, owner, "virtio-restricted-dma-root",
                       UINT64_MAX);
    memory_region_init_io(&r->outside, owner, &virtio_rdma_outside_ops, r,
                          "virtio-restricted-dma-outside", UINT64_MAX);
    memory_region_add_subregion_overlap(&r->root, 0, &r->outside, INT_MIN);
    memory_region_init_alias(&r->window, owner, "virtio-restricted-dma-window",
                             w->backing, w->offset, size);
    memory_region_set_enabled(&r->window, false);
    memory_region_add_subregion_overlap(&r->root, 0, &r->window, 1);
    address_space_init(&r->as, &r->root, asname);
    /* No bounce buffers: only the window can ever be mapped. */
    r->as.max_bounce_buffer_size = 0;

    vdev->rdma = r;
    virtio_add_feature(&vdev->host_features, VIRTIO_F_IOMMU_PLATFORM);
    /* On a modern-only device bit 27 is RESTRICTED_DMA, not ANY_LAYOUT. */
    virtio_add_feature(&vdev->host_features, VIRTIO_F_RESTRICTED_DMA);
    trace_virtio_restricted_dma_init(vdev->name,
                                     VirtioRestrictedDmaKind_str(w->kind),
                                     size);
}

void virtio_restricted_dma_cleanup(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->rdma;

    if (!r) {
        return;
    }
    /*
     * The address space and its flat views go away in RCU callbacks, which
     * still use the regions embedded in @r: those hold references to the
     * device, so @r is freed when the device is finalized.
     */
    address_space_destroy(&r->as);
    memory_region_del_subregion(&r->root, &r->window);
    memory_region_del_subregion(&r->root, &r->outside);
    object_unparent(OBJECT(&r->window));
    object_unparent(OBJECT(&r->outside));
    object_unparent(OBJECT(&r->root));
}

static void virtio_rdma_release_holder(void *opaque)
{
    object_unref(opaque);
}

void virtio_restricted_dma_finalize(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->rdma;

    if (r) {
        vdev->rdma = NULL;
        if (r->holder) {
            /* not now: object_finalize() still uses @vdev after this */
            aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                    virtio_rdma_release_holder, r->holder);
        }
        g_free(r->pool);
        g_free(r);
    }
}

AddressSpace *virtio_restricted_dma_address_space(VirtIODevice *vdev)
{
    return &vdev->rdma->as;
}

VirtioRestrictedDmaKind virtio_restricted_dma_kind(VirtIODevice *vdev)
{
    return vdev->rdma->kind;
}

void virtio_restricted_dma_set_enabled(VirtIODevice *vdev, bool open)
{
    virtio_restricted_dma_set_window(vdev, open, vdev->rdma->base);
}

void virtio_restricted_dma_set_window(VirtIODevice *vdev, bool open,
                                      hwaddr base)
{
    VirtIORestrictedDMA *r = vdev->rdma;

    if (!r || (r->open == open && (!open || r->base == base))) {
        return;
    }
    trace_virtio_restricted_dma_window(vdev->name, open, base, r->size);
    memory_region_transaction_begin();
    if (open) {
        memory_region_set_address(&r->window, base);
        r->base = base;
    }
    memory_region_set_enabled(&r->window, open);
    r->open = open;
    memory_region_transaction_commit();
}

static int virtio_rdma_refuse(VirtIODevice *vdev, const char *why)
{
    vdev->rdma->refusals++;
    trace_virtio_restricted_dma_refuse(vdev->name, vdev->guest_features);
    qemu_log_mask(LOG_GUEST_ERROR,
                  "%s (%s): restricted DMA: status write refused: %s "
                  "(restricted-dma-policy=refuse)\n",
                  vdev->name, virtio_rdma_path(vdev), why);
    return -EPERM;
}

int virtio_restricted_dma_check_status(VirtIODevice *vdev, uint8_t val)
{
    bool rdma = virtio_vdev_has_feature(vdev, VIRTIO_F_RESTRICTED_DMA);
    bool platform = virtio_vdev_has_feature(vdev, VIRTIO_F_IOMMU_PLATFORM);
    bool features_ok = vdev->status & VIRTIO_CONFIG_S_FEATURES_OK;

    if (vdev->rdma_policy == VIRTIO_RESTRICTED_DMA_POLICY_TOLERATE) {
        return 0;
    }
    if (!features_ok && (val & VIRTIO_CONFIG_S_FEATURES_OK) &&
        !(rdma && platform)) {
        return virtio_rdma_refuse(vdev, !rdma && !platform ?
            "the driver accepted neither VIRTIO_F_RESTRICTED_DMA nor "
            "VIRTIO_F_ACCESS_PLATFORM" : !rdma ?
            "the driver did not accept VIRTIO_F_RESTRICTED_DMA" :
            "the driver did not accept VIRTIO_F_ACCESS_PLATFORM");
    }
    if ((val & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(val & VIRTIO_CONFIG_S_FEATURES_OK)) {
        return virtio_rdma_refuse(vdev, "DRIVER_OK without FEATURES_OK");
    }
    return 0;
}

void virtio_restricted_dma_reset(VirtIODevice *vdev)
{
    if (vdev->rdma) {
        vdev->rdma->tripped = false;
    }
}

bool virtio_restricted_dma_inside(VirtIODevice *vdev, hwaddr addr,
                                  hwaddr len)
{
    VirtIORestrictedDMA *r = vdev->rdma;

    return !r || (r->open && len <= r->size && addr >= r->base &&
                  addr - r->base <= r->size - len);
}

bool virtio_restricted_dma_rings_inside(VirtIODevice *vdev, int n)
{
    return virtio_restricted_dma_inside(vdev,
                virtio_queue_get_desc_addr(vdev, n),
                virtio_queue_get_desc_size(vdev, n)) &&
           virtio_restricted_dma_inside(vdev,
                virtio_queue_get_avail_addr(vdev, n),
                virtio_queue_get_avail_size(vdev, n)) &&
           virtio_restricted_dma_inside(vdev,
                virtio_queue_get_used_addr(vdev, n),
                virtio_queue_get_used_size(vdev, n));
}

bool virtio_restricted_dma_check_slow(VirtIODevice *vdev, hwaddr addr,
                                      hwaddr len, const char *what)
{
    VirtIORestrictedDMA *r = vdev->rdma;
    g_autofree char *qom_path = NULL;
    const char *path;

    if (virtio_restricted_dma_inside(vdev, addr, len)) {
        return true;
    }

    trace_virtio_restricted_dma_violation(vdev->name, what, addr, len,
                                          r->open, r->base, r->size);
    if (r->tripped) {
        /* The device is already broken by a violation: counted once. */
        return false;
    }
    r->tripped = true;
    r->violations++;
    path = virtio_rdma_path(vdev);
    qom_path = object_get_canonical_path(OBJECT(vdev));
    qapi_event_send_virtio_restricted_dma_violation(path, qom_path, what,
                                                    addr, len, r->base,
                                                    r->size, r->open,
                                                    r->pool);
    virtio_error(vdev, "%s (%s): restricted DMA violation: %s at 0x%" PRIx64
                 " length 0x%" PRIx64 " is outside the window [0x%" PRIx64
                 ", 0x%" PRIx64 ")%s", vdev->name, path, what, addr, len,
                 r->base, r->base + r->size,
                 r->open ? "" : ", which is closed");
    return false;
}

void virtio_restricted_dma_backend_error(VirtIODevice *vdev, int queue)
{
    VirtIORestrictedDMA *r = vdev->rdma;

    trace_virtio_restricted_dma_backend_error(vdev->name, queue, r->tripped);
    if (r->tripped) {
        return;
    }
    r->tripped = true;
    r->backend_errors++;
    virtio_error(vdev, "%s (%s): its vhost backend reported an error on "
                 "virtqueue %d; the backend maps only the restricted DMA "
                 "window [0x%" PRIx64 ", 0x%" PRIx64 "), so a ring or buffer "
                 "outside it is the likely cause", vdev->name,
                 virtio_rdma_path(vdev), queue, r->base, r->base + r->size);
}

bool virtio_restricted_dma_check_rings(VirtIODevice *vdev, int n)
{
    if (likely(!vdev->rdma)) {
        return true;
    }
    return virtio_restricted_dma_check_slow(vdev,
                virtio_queue_get_desc_addr(vdev, n),
                virtio_queue_get_desc_size(vdev, n), "descriptor ring") &&
           virtio_restricted_dma_check_slow(vdev,
                virtio_queue_get_avail_addr(vdev, n),
                virtio_queue_get_avail_size(vdev, n), "driver (avail) ring") &&
           virtio_restricted_dma_check_slow(vdev,
                virtio_queue_get_used_addr(vdev, n),
                virtio_queue_get_used_size(vdev, n), "device (used) ring");
}

VirtioRestrictedDmaStatus *virtio_restricted_dma_query(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->rdma;
    VirtioRestrictedDmaStatus *s;

    if (!r) {
        return NULL;
    }
    s = g_new0(VirtioRestrictedDmaStatus, 1);
    s->kind = r->kind;
    s->policy = vdev->rdma_policy;
    s->window_address = r->base;
    s->window_size = r->size;
    s->window_open = r->open;
    if (r->kind == VIRTIO_RESTRICTED_DMA_KIND_BAR) {
        s->has_bar = true;
        s->bar = r->bar;
    }
    s->pool = g_strdup(r->pool);
    s->driver_accepted =
        (vdev->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
        virtio_vdev_has_feature(vdev, VIRTIO_F_RESTRICTED_DMA) &&
        virtio_vdev_has_feature(vdev, VIRTIO_F_IOMMU_PLATFORM);
    s->refusals = r->refusals;
    s->violations = r->violations;
    s->backend_errors = r->backend_errors;
    return s;
}

/*
 * Migration.  The window's contents are RAM and migrate with it, the
 * window's address with the transport (the PCI BAR in config space), the
 * negotiated features with the device.  This subsection carries the rest
 * and lets the destination refuse a stream whose window does not match.
 */
static bool virtio_rdma_needed(void *opaque)
{
    VirtIODevice *vdev = opaque;

    return vdev->rdma != NULL;
}

static int virtio_rdma_pre_save(void *opaque)
{
    VirtIODevice *vdev = opaque;
    VirtIORestrictedDMA *r = vdev->rdma;

    r->in_kind = r->kind;
    r->in_size = r->size;
    r->in_base = r->base;
    r->in_policy = vdev->rdma_policy;
    return 0;
}

static int virtio_rdma_pre_load(void *opaque)
{
    VirtIODevice *vdev = opaque;

    if (!vdev->rdma) {
        error_report("%s (%s): the migration stream has a restricted DMA "
                     "window, this device has none; start the destination "
                     "with the source's restricted-dma-* properties",
                     vdev->name, virtio_rdma_path(vdev));
        return -EINVAL;
    }
    return 0;
}

static int virtio_rdma_post_load_sub(void *opaque, int version_id)
{
    VirtIODevice *vdev = opaque;
    VirtIORestrictedDMA *r = vdev->rdma;

    if (r->kind == VIRTIO_RESTRICTED_DMA_KIND_POOL && r->in_kind == r->kind &&
        r->in_base != r->base) {
        error_report("%s (%s): the source's restricted-dma-pool is at "
                     "0x%" PRIx64 ", this destination's at 0x%" PRIx64 "; "
                     "give the pool the same size, addr and -m on both "
                     "sides", vdev->name, virtio_rdma_path(vdev), r->in_base,
                     r->base);
        return -EINVAL;
    }
    if (r->in_kind != r->kind || r->in_size != r->size ||
        r->in_policy != vdev->rdma_policy) {
        error_report("%s (%s): restricted DMA differs: the source has a %s "
                     "window of 0x%" PRIx64 " bytes and policy %s, this "
                     "destination a %s window of 0x%" PRIx64 " bytes and "
                     "policy %s", vdev->name, virtio_rdma_path(vdev),
                     r->in_kind < VIRTIO_RESTRICTED_DMA_KIND__MAX ?
                     VirtioRestrictedDmaKind_str(r->in_kind) : "?",
                     r->in_size,
                     r->in_policy >= 0 &&
                     r->in_policy < VIRTIO_RESTRICTED_DMA_POLICY__MAX ?
                     VirtioRestrictedDmaPolicy_str(r->in_policy) : "?",
                     VirtioRestrictedDmaKind_str(r->kind), r->size,
                     VirtioRestrictedDmaPolicy_str(vdev->rdma_policy));
        return -EINVAL;
    }
    r->loaded = true;
    return 0;
}

static const VMStateDescription vmstate_virtio_rdma_state = {
    .name = "virtio/restricted_dma/state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(in_kind, VirtIORestrictedDMA),
        VMSTATE_UINT64(in_size, VirtIORestrictedDMA),
        VMSTATE_UINT64(in_base, VirtIORestrictedDMA),
        VMSTATE_INT32(in_policy, VirtIORestrictedDMA),
        VMSTATE_BOOL(tripped, VirtIORestrictedDMA),
        VMSTATE_UINT64(refusals, VirtIORestrictedDMA),
        VMSTATE_UINT64(violations, VirtIORestrictedDMA),
        VMSTATE_END_OF_LIST()
    }
};

const VMStateDescription vmstate_virtio_restricted_dma = {
    .name = "virtio/restricted_dma",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = virtio_rdma_needed,
    .pre_save = virtio_rdma_pre_save,
    .pre_load = virtio_rdma_pre_load,
    .post_load = virtio_rdma_post_load_sub,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_POINTER(rdma, VirtIODevice, vmstate_virtio_rdma_state,
                               VirtIORestrictedDMA),
        VMSTATE_END_OF_LIST()
    }
};

int virtio_restricted_dma_post_load(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->rdma;

    if (!r) {
        return 0;
    }
    if (!r->loaded) {
        error_report("%s (%s): this device has a restricted DMA window, the "
                     "migration stream has none; start the destination "
                     "without restricted-dma-* properties, as the source",
                     vdev->name, virtio_rdma_path(vdev));
        return -EINVAL;
    }
    r->loaded = false;
    return 0;
}
