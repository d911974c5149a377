/*
 * Restricted DMA for virtio devices: the transport-independent core
 *
 * The device's DMA address space is private.  It holds the window (an
 * alias of the memory its provider backs it with, at the window's current
 * bus address) over a catch-all region of lowest priority that covers
 * every other address and rejects each access to it.  The address space
 * allows no bounce buffers, so address_space_map() of anything but the
 * window fails.  On top of that the virtio core checks every ring,
 * indirect table and buffer against the window before it uses it, so that
 * a driver's bad address is reported precisely, before any access.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qapi/qapi-events-virtio.h"
#include "exec/cpu-common.h"
#include "hw/qdev-properties.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-bus.h"
#include "hw/virtio/virtio-restricted-dma.h"
#include "hw/virtio/vhost.h"
#include "system/hostmem.h"
#include "system/reset.h"
#include "exec/address-spaces.h"
#include "migration/vmstate.h"
#include "trace.h"

struct VirtIORestrictedDMA {
    VirtIODevice *vdev;
    Object *provider;
    VirtIORestrictedDMAProviderClass *pc;
    const char *prop;       /* the property that asked for the window */
    uint64_t size;
    bool gated;             /* closed until the transport enables DMA */

    /* the address space, once the device is plugged */
    bool built;
    Object *holder;         /* holds the memory @vdev lives in */
    MemoryRegion root;      /* the device's view of the bus */
    MemoryRegion outside;   /* every address but the window */
    MemoryRegion window;    /* alias of the backing at its bus address */
    MemoryRegion anywhere;  /* opt-in, unconfined: all of system memory */
    AddressSpace as;
    bool dma_enabled;       /* the transport lets the device DMA */

    /*
     * Every access is checked against the window: always, but for the
     * opt-in policy before a driver accepted the feature.  @latched: a
     * driver of an opt-in device accepted it since the machine was last
     * reset.
     */
    bool confined;
    bool latched;

    bool tripped;           /* a violation broke the device since reset */
    uint64_t refusals;
    uint64_t violations;
    uint64_t backend_errors;    /* not migrated: the backend is per host */

    bool loaded;            /* the migration stream had the subsection */
};

const PropertyInfo qdev_prop_virtio_restricted_dma_policy = {
    .type = "VirtioRestrictedDmaPolicy",
    .description = "What the device does with a driver that does not "
                   "accept VIRTIO_F_RESTRICTED_DMA: refuse (FEATURES_OK "
                   "does not latch), tolerate (it runs, confined all the "
                   "same) or opt-in (it runs unconfined; a driver that "
                   "accepts the feature confines the device until the "
                   "machine is reset); needs a window",
    .enum_table = &VirtioRestrictedDmaPolicy_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
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

/*
 * The device the user named: the proxy a virtio-pci or virtio-ccw device
 * is embedded in, or the device itself.
 */
static DeviceState *virtio_restricted_dma_user_dev(VirtIODevice *vdev)
{
    Object *parent = OBJECT(vdev)->parent;

    if (parent && object_dynamic_cast(parent, TYPE_DEVICE)) {
        return DEVICE(parent);
    }
    return DEVICE(vdev);
}

static const char *virtio_restricted_dma_user_type(VirtIODevice *vdev)
{
    return object_get_typename(OBJECT(virtio_restricted_dma_user_dev(vdev)));
}

static const char *virtio_restricted_dma_path(VirtIODevice *vdev)
{
    DeviceState *dev = virtio_restricted_dma_user_dev(vdev);

    return dev->id ? dev->id : vdev->name;
}

bool virtio_restricted_dma_claim_memdev(HostMemoryBackend *be,
                                        const char *what, Error **errp)
{
    if (host_memory_backend_is_mapped(be)) {
        error_setg(errp, "%s is already in use", what);
        error_append_hint(errp, "Give each window a memory backend of its "
                          "own.\n");
        return false;
    }
    host_memory_backend_set_mapped(be, true);
    return true;
}

void virtio_restricted_dma_release_memdev(HostMemoryBackend *be)
{
    host_memory_backend_set_mapped(be, false);
}

/* Can a vhost-user backend map @mr: shared memory with a file descriptor? */
static bool virtio_restricted_dma_shareable(MemoryRegion *mr)
{
    while (mr->alias) {
        mr = mr->alias;
    }
    return mr->ram_block && memory_region_get_fd(mr) >= 0 &&
           qemu_ram_is_shared(mr->ram_block);
}

static void virtio_restricted_dma_hint_shared(Error **errp)
{
    error_append_hint(errp, "Put the window in memory the backend can map, "
                      "and nothing else: -object memory-backend-memfd,"
                      "id=win0,size=8M,share=on, then "
                      "restricted-dma-bar-memdev=win0 on a virtio-pci "
                      "device, or memdev=win0 on the restricted-dma-pool.\n");
}

static const char *virtio_restricted_dma_vhost_name(VhostBackendType type)
{
    switch (type) {
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

/*
 * A vhost backend of @type is given the device's memory by its memory
 * table: may it serve a device confined to a window?  @by_type: the
 * device type always has such a backend (checked before it connects).
 */
static bool virtio_restricted_dma_check_vhost(VirtIODevice *vdev,
                                              VhostBackendType type,
                                              bool by_type, Error **errp)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;
    const char *utype = virtio_restricted_dma_user_type(vdev);

    if (vdev->restricted_dma_policy == VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POLICY "=opt-in cannot "
                   "be used with a vhost backend: the backend's memory "
                   "would have to shrink to the window when the guest opts "
                   "in");
        error_append_hint(errp, "Use " VIRTIO_RESTRICTED_DMA_PROP_POLICY
                          "=refuse or tolerate.\n");
        return false;
    }
    if (vhost_backend_follows_dma_as(type)) {
        if (virtio_restricted_dma_shareable(r->pc->get_memory(r->provider))) {
            return true;
        }
        if (by_type) {
            error_setg(errp, "%s cannot be used with %s unless the window "
                       "is shared memory with a file descriptor: its "
                       "vhost-user backend is given the window as its only "
                       "memory", r->prop, utype);
        } else {
            error_setg(errp, "%s cannot be used with a vhost-user backend "
                       "unless the window is shared memory with a file "
                       "descriptor: the backend is given the window as its "
                       "only memory", r->prop);
        }
        virtio_restricted_dma_hint_shared(errp);
        return false;
    }
    if (by_type) {
        error_setg(errp, "%s cannot be used with %s: its vhost backend maps "
                   "all of guest RAM, outside the device's restricted DMA "
                   "address space", r->prop, utype);
        error_append_hint(errp, "Use the device emulated in QEMU, or its "
                          "vhost-user form with a shared window.\n");
    } else {
        error_setg(errp, "%s cannot be used with a %s backend: it maps all "
                   "of guest RAM, outside the device's restricted DMA "
                   "address space", r->prop,
                   virtio_restricted_dma_vhost_name(type));
        error_append_hint(errp, "Use a backend emulated in QEMU (for a "
                          "network device: vhost=off on its -netdev), or a "
                          "vhost-user backend with a shared window.\n");
    }
    return false;
}

bool virtio_restricted_dma_realize(VirtIODevice *vdev, Error **errp)
{
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_GET_CLASS(vdev);
    BusState *qbus = qdev_get_parent_bus(DEVICE(vdev));
    VirtioBusClass *vbc = VIRTIO_BUS_GET_CLASS(qbus);
    VirtIORestrictedDMARequest req = { 0 };
    VirtIORestrictedDMAProviderClass *pc;
    VirtIORestrictedDMA *r;
    const char *type = virtio_restricted_dma_user_type(vdev);

    if (vbc->get_restricted_dma) {
        if (!vbc->get_restricted_dma(qbus->parent, &req, errp)) {
            goto fail;
        }
    } else if (vdev->restricted_dma_pool) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POOL " cannot be used "
                   "on a %s: the transport cannot give its device a "
                   "restricted DMA window", object_get_typename(OBJECT(qbus)));
        error_append_hint(errp, "Use a virtio-pci or virtio-mmio device.\n");
        return false;
    }

    if (!req.provider) {
        if (vdev->restricted_dma_policy !=
            VIRTIO_RESTRICTED_DMA_POLICY_REFUSE) {
            error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POLICY "=%s needs a "
                       "restricted DMA window",
                       VirtioRestrictedDmaPolicy_str(
                           vdev->restricted_dma_policy));
            error_append_hint(errp, "Give the device a window with "
                              VIRTIO_RESTRICTED_DMA_PROP_POOL ", or "
                              "restricted-dma-bar-size (virtio-pci), or drop "
                              VIRTIO_RESTRICTED_DMA_PROP_POLICY ".\n");
            goto fail;
        }
        return true;
    }

    /* The window, by its provider's own rules. */
    pc = VIRTIO_RESTRICTED_DMA_PROVIDER_GET_CLASS(req.provider);
    if (pc->attach && !pc->attach(req.provider, vdev, &req, errp)) {
        goto fail;
    }
    r = g_new0(VirtIORestrictedDMA, 1);
    r->vdev = vdev;
    r->provider = object_ref(req.provider);
    r->pc = pc;
    r->prop = req.prop;
    r->size = memory_region_size(pc->get_memory(req.provider));
    r->gated = req.gated;
    vdev->restricted_dma = r;

    /* The device. */
    if (vdc->reaches_guest_ram) {
        error_setg(errp, "%s cannot be used with %s: the device works on "
                   "guest RAM by design, outside any window", req.prop, type);
        error_append_hint(errp, "Remove %s from this device.\n", req.prop);
        goto undo;
    }
    /* A device type that always has a vhost backend, before it connects. */
    if (vdc->vhost_backend != VHOST_BACKEND_TYPE_NONE &&
        !virtio_restricted_dma_check_vhost(vdev, vdc->vhost_backend, true,
                                           errp)) {
        goto undo;
    }
    if (vdev->iommu_platform_set &&
        !virtio_host_has_feature(vdev, VIRTIO_F_IOMMU_PLATFORM)) {
        error_setg(errp, "%s needs VIRTIO_F_ACCESS_PLATFORM, but "
                   "iommu_platform=off was given", req.prop);
        error_append_hint(errp, "Drop iommu_platform=off: restricted DMA "
                          "offers ACCESS_PLATFORM by itself.\n");
        goto undo;
    }
    /* Its transport: bit 27 is ANY_LAYOUT on a legacy interface. */
    if (req.legacy) {
        error_setg(errp, "%s needs a modern-only (virtio 1.x) device; %s "
                   "here has a legacy interface, where bit 27 means "
                   "something else", req.prop, type);
        if (req.legacy_hint) {
            error_append_hint(errp, "%s\n", req.legacy_hint);
        }
        goto undo;
    }
    g_free(req.legacy_hint);
    return true;

undo:
    virtio_restricted_dma_unrealize(vdev);
fail:
    g_free(req.legacy_hint);
    return false;
}

/* The most memory the rings of @vdev can take, plus one request. */
static uint64_t virtio_restricted_dma_min_size(VirtIODevice *vdev)
{
    uint64_t total = VIRTIO_RESTRICTED_DMA_MAX_REQUEST;
    int i;

    for (i = 0; i < VIRTIO_QUEUE_MAX; i++) {
        total += virtio_queue_get_max_rings_size(vdev, i);
    }
    return total;
}

static bool virtio_restricted_dma_outside_accepts(void *opaque, hwaddr addr,
                                                  unsigned size,
                                                  bool is_write,
                                                  MemTxAttrs attrs)
{
    return true;
}

static MemTxResult virtio_restricted_dma_outside_read(void *opaque,
                                                      hwaddr addr,
                                                      uint64_t *data,
                                                      unsigned size,
                                                      MemTxAttrs attrs)
{
    VirtIORestrictedDMA *r = opaque;

    *data = 0;
    virtio_restricted_dma_check_slow(r->vdev, addr, size, "read");
    return MEMTX_ACCESS_ERROR;
}

static MemTxResult virtio_restricted_dma_outside_write(void *opaque,
                                                       hwaddr addr,
                                                       uint64_t data,
                                                       unsigned size,
                                                       MemTxAttrs attrs)
{
    VirtIORestrictedDMA *r = opaque;

    virtio_restricted_dma_check_slow(r->vdev, addr, size, "write");
    return MEMTX_ACCESS_ERROR;
}

static const MemoryRegionOps virtio_restricted_dma_outside_ops = {
    .read_with_attrs = virtio_restricted_dma_outside_read,
    .write_with_attrs = virtio_restricted_dma_outside_write,
    .endianness = DEVICE_NATIVE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
        .accepts = virtio_restricted_dma_outside_accepts,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/* Confine the device to its window, or (opt-in, unlatched) let it go. */
static void virtio_restricted_dma_set_confined(VirtIORestrictedDMA *r,
                                               bool confined)
{
    if (r->confined == confined) {
        return;
    }
    r->confined = confined;
    memory_region_set_enabled(&r->anywhere, !confined);
}

static void virtio_restricted_dma_set_latched(VirtIORestrictedDMA *r,
                                              bool latched)
{
    trace_virtio_restricted_dma_latch(r->vdev->name, latched);
    r->latched = latched;
    virtio_restricted_dma_set_confined(r, latched);
}

/*
 * Opt-in: only a machine reset clears the latch, not a device reset nor a
 * PCI function reset, which a guest can do: a kexec into a kernel that does
 * not know the feature must not silently lose the restriction.
 */
static void virtio_restricted_dma_machine_reset(void *opaque)
{
    VirtIORestrictedDMA *r = opaque;

    if (r->latched) {
        virtio_restricted_dma_set_latched(r, false);
    }
}

bool virtio_restricted_dma_plug(VirtIODevice *vdev, Error **errp)
{
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_GET_CLASS(vdev);
    VirtIORestrictedDMA *r = vdev->restricted_dma;
    Object *owner = OBJECT(vdev);
    g_autofree char *asname = NULL;
    uint64_t min;

    if (!r) {
        return true;
    }

    min = virtio_restricted_dma_min_size(vdev);
    if (r->size < min) {
        g_autofree char *want = size_to_str(min);
        g_autofree char *have = size_to_str(r->size);
        g_autofree char *hint = virtio_restricted_dma_size_arg(pow2ceil(min));

        error_setg(errp, "%s: a window of %s is below the minimum of %s (%"
                   PRIu64 " bytes) for %s: its virtqueues at their maximum "
                   "size plus one %u KiB request", r->prop, have, want, min,
                   virtio_restricted_dma_user_type(vdev),
                   (unsigned)(VIRTIO_RESTRICTED_DMA_MAX_REQUEST / KiB));
        error_append_hint(errp, "Give the window %s or more.\n", hint);
        return false;
    }
    /* A vhost backend the device got from its own backend (a netdev). */
    if (vdc->get_vhost && vdc->get_vhost(vdev) &&
        vdc->get_vhost(vdev)->vhost_ops &&
        !virtio_restricted_dma_check_vhost(
            vdev, vdc->get_vhost(vdev)->vhost_ops->backend_type, false,
            errp)) {
        return false;
    }

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
    memory_region_init(&r->root, owner, "virtio-restricted-dma-root",
                       UINT64_MAX);
    memory_region_init_io(&r->outside, owner,
                          &virtio_restricted_dma_outside_ops, r,
                          "virtio-restricted-dma-outside", UINT64_MAX);
    memory_region_add_subregion_overlap(&r->root, 0, &r->outside, INT_MIN);
    memory_region_init_alias(&r->window, owner, "virtio-restricted-dma-window",
                             r->pc->get_memory(r->provider), 0, r->size);
    memory_region_set_enabled(&r->window, false);
    memory_region_add_subregion_overlap(&r->root, 0, &r->window, 1);
    /* Opt-in: until the guest opts in, the device reaches all memory. */
    r->confined = vdev->restricted_dma_policy !=
                  VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN;
    memory_region_init_alias(&r->anywhere, owner,
                             "virtio-restricted-dma-unconfined",
                             get_system_memory(), 0,
                             memory_region_size(get_system_memory()));
    memory_region_set_enabled(&r->anywhere, !r->confined);
    memory_region_add_subregion_overlap(&r->root, 0, &r->anywhere, 0);
    asname = g_strdup_printf("virtio-restricted-dma-%s", vdev->name);
    address_space_init(&r->as, &r->root, asname);
    /* No bounce buffers: only the window can ever be mapped. */
    r->as.max_bounce_buffer_size = 0;
    r->built = true;
    if (vdev->restricted_dma_policy == VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN) {
        /* the latch holds across device resets, until the machine's */
        qemu_register_reset(virtio_restricted_dma_machine_reset, r);
    }

    virtio_add_feature(&vdev->host_features, VIRTIO_F_IOMMU_PLATFORM);
    /* On a modern-only device bit 27 is RESTRICTED_DMA, not ANY_LAYOUT. */
    virtio_add_feature(&vdev->host_features, VIRTIO_F_RESTRICTED_DMA);
    vdev->dma_as = &r->as;
    trace_virtio_restricted_dma_plug(vdev->name, r->prop, r->size);
    virtio_restricted_dma_update(vdev, !r->gated);
    return true;
}

void virtio_restricted_dma_unrealize(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;

    if (!r || !r->provider) {
        return;
    }
    if (r->built) {
        /*
         * The address space and its flat views go away in RCU callbacks,
         * which still use the regions embedded in @r: those hold
         * references to the device, so @r is freed when the device is
         * finalized.
         */
        if (vdev->restricted_dma_policy ==
            VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN) {
            qemu_unregister_reset(virtio_restricted_dma_machine_reset, r);
        }
        address_space_destroy(&r->as);
        memory_region_del_subregion(&r->root, &r->anywhere);
        memory_region_del_subregion(&r->root, &r->window);
        memory_region_del_subregion(&r->root, &r->outside);
        object_unparent(OBJECT(&r->anywhere));
        object_unparent(OBJECT(&r->window));
        object_unparent(OBJECT(&r->outside));
        object_unparent(OBJECT(&r->root));
    }
    if (r->pc->detach) {
        r->pc->detach(r->provider, vdev);
    }
    object_unref(r->provider);
    r->provider = NULL;
    if (!r->built) {
        /* Nothing refers to @r. */
        vdev->restricted_dma = NULL;
        g_free(r);
    }
}

static void virtio_restricted_dma_release_holder(void *opaque)
{
    object_unref(opaque);
}

void virtio_restricted_dma_finalize(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;

    if (r) {
        vdev->restricted_dma = NULL;
        if (r->holder) {
            /* not now: object_finalize() still uses @vdev after this */
            aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                    virtio_restricted_dma_release_holder,
                                    r->holder);
        }
        g_free(r);
    }
}

Object *virtio_restricted_dma_provider(VirtIODevice *vdev)
{
    return vdev->restricted_dma ? vdev->restricted_dma->provider : NULL;
}

void virtio_restricted_dma_update(VirtIODevice *vdev, bool dma_enabled)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;
    uint64_t addr = 0;
    bool open;

    if (!r || !r->built) {
        return;
    }
    r->dma_enabled = dma_enabled;
    open = dma_enabled && r->pc->get_address(r->provider, &addr);
    if (r->window.enabled == open && (!open || r->window.addr == addr)) {
        return;
    }
    trace_virtio_restricted_dma_window(vdev->name, open, addr, r->size);
    memory_region_transaction_begin();
    if (open) {
        memory_region_set_address(&r->window, addr);
    }
    memory_region_set_enabled(&r->window, open);
    memory_region_transaction_commit();
}

static int virtio_restricted_dma_refuse(VirtIODevice *vdev, const char *why)
{
    vdev->restricted_dma->refusals++;
    trace_virtio_restricted_dma_refuse(vdev->name, vdev->guest_features);
    qemu_log_mask(LOG_GUEST_ERROR,
                  "%s (%s): restricted DMA: status write refused: %s "
                  "(" VIRTIO_RESTRICTED_DMA_PROP_POLICY "=%s%s)\n",
                  vdev->name, virtio_restricted_dma_path(vdev), why,
                  VirtioRestrictedDmaPolicy_str(vdev->restricted_dma_policy),
                  vdev->restricted_dma->latched ? ", latched" : "");
    return -EPERM;
}

int virtio_restricted_dma_check_status(VirtIODevice *vdev, uint8_t val)
{
    bool accepted = virtio_vdev_has_feature(vdev, VIRTIO_F_RESTRICTED_DMA);
    bool platform = virtio_vdev_has_feature(vdev, VIRTIO_F_IOMMU_PLATFORM);
    bool features_ok = vdev->status & VIRTIO_CONFIG_S_FEATURES_OK;
    VirtIORestrictedDMA *r = vdev->restricted_dma;

    switch (vdev->restricted_dma_policy) {
    case VIRTIO_RESTRICTED_DMA_POLICY_TOLERATE:
        return 0;
    case VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN:
        if (r->latched) {
            break;      /* as refuse */
        }
        if (!features_ok && (val & VIRTIO_CONFIG_S_FEATURES_OK) &&
            accepted) {
            if (!platform) {
                return virtio_restricted_dma_refuse(vdev, "the driver "
                    "accepted VIRTIO_F_RESTRICTED_DMA without "
                    "VIRTIO_F_ACCESS_PLATFORM");
            }
            /* The guest opts in: from now on the device is confined. */
            virtio_restricted_dma_set_latched(r, true);
        }
        return 0;
    default:
        break;
    }
    if (!features_ok && (val & VIRTIO_CONFIG_S_FEATURES_OK) &&
        !(accepted && platform)) {
        return virtio_restricted_dma_refuse(vdev, !accepted && !platform ?
            "the driver accepted neither VIRTIO_F_RESTRICTED_DMA nor "
            "VIRTIO_F_ACCESS_PLATFORM" : !accepted ?
            "the driver did not accept VIRTIO_F_RESTRICTED_DMA" :
            "the driver did not accept VIRTIO_F_ACCESS_PLATFORM");
    }
    if ((val & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(val & VIRTIO_CONFIG_S_FEATURES_OK)) {
        return virtio_restricted_dma_refuse(vdev,
                                            "DRIVER_OK without FEATURES_OK");
    }
    return 0;
}

bool virtio_restricted_dma_may_run_slow(VirtIODevice *vdev)
{
    switch (vdev->restricted_dma_policy) {
    case VIRTIO_RESTRICTED_DMA_POLICY_TOLERATE:
        return true;
    case VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN:
        if (!vdev->restricted_dma->latched) {
            return true;
        }
        /* fall through */
    default:
        return vdev->status & VIRTIO_CONFIG_S_FEATURES_OK;
    }
}

void virtio_restricted_dma_reset(VirtIODevice *vdev)
{
    if (vdev->restricted_dma) {
        vdev->restricted_dma->tripped = false;
    }
}

static void virtio_restricted_dma_describe(VirtIORestrictedDMA *r,
                                           VirtioRestrictedDmaStatus *st)
{
    r->pc->describe(r->provider, st);
    /* where the provider has the window now, open or not */
    if (!r->pc->get_address(r->provider, &st->window_address)) {
        st->window_address = r->window.addr;
    }
    st->window_size = r->size;
    st->window_open = r->window.enabled;
}

bool virtio_restricted_dma_check_slow(VirtIODevice *vdev, hwaddr addr,
                                      hwaddr len, const char *what)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;
    g_autoptr(VirtioRestrictedDmaStatus) st = NULL;
    g_autofree char *qom_path = NULL;
    hwaddr base = r->window.addr;
    const char *path;

    if (!r->confined ||
        (r->window.enabled && len <= r->size && addr >= base &&
         addr - base <= r->size - len)) {
        return true;
    }
    if (!what) {
        return false;
    }
    trace_virtio_restricted_dma_violation(vdev->name, what, addr, len,
                                          r->window.enabled, base, r->size);
    if (r->tripped) {
        /* The device is already broken by a violation: counted once. */
        return false;
    }
    r->tripped = true;
    r->violations++;
    path = virtio_restricted_dma_path(vdev);
    qom_path = object_get_canonical_path(OBJECT(vdev));
    st = g_new0(VirtioRestrictedDmaStatus, 1);
    virtio_restricted_dma_describe(r, st);
    qapi_event_send_virtio_restricted_dma_violation(path, qom_path, what,
                                                    addr, len, base, r->size,
                                                    r->window.enabled,
                                                    st->pool);
    virtio_error(vdev, "%s (%s): restricted DMA violation: %s at 0x%" PRIx64
                 " length 0x%" PRIx64 " is outside the window [0x%" PRIx64
                 ", 0x%" PRIx64 ")%s", vdev->name, path, what, addr, len,
                 base, base + r->size,
                 r->window.enabled ? "" : ", which is closed");
    return false;
}

bool virtio_restricted_dma_check_rings(VirtIODevice *vdev, int n,
                                       bool report)
{
    if (likely(!vdev->restricted_dma)) {
        return true;
    }
    return virtio_restricted_dma_check_slow(vdev,
                virtio_queue_get_desc_addr(vdev, n),
                virtio_queue_get_desc_size(vdev, n),
                report ? "descriptor ring" : NULL) &&
           virtio_restricted_dma_check_slow(vdev,
                virtio_queue_get_avail_addr(vdev, n),
                virtio_queue_get_avail_size(vdev, n),
                report ? "driver (avail) ring" : NULL) &&
           virtio_restricted_dma_check_slow(vdev,
                virtio_queue_get_used_addr(vdev, n),
                virtio_queue_get_used_size(vdev, n),
                report ? "device (used) ring" : NULL);
}

void virtio_restricted_dma_backend_error(VirtIODevice *vdev, int queue)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;

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
                 virtio_restricted_dma_path(vdev), queue, r->window.addr,
                 r->window.addr + r->size);
}

VirtioRestrictedDmaStatus *virtio_restricted_dma_query(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;
    VirtioRestrictedDmaStatus *st;

    if (!r || !r->built) {
        return NULL;
    }
    st = g_new0(VirtioRestrictedDmaStatus, 1);
    virtio_restricted_dma_describe(r, st);
    st->policy = vdev->restricted_dma_policy;
    st->driver_accepted =
        (vdev->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
        virtio_vdev_has_feature(vdev, VIRTIO_F_RESTRICTED_DMA) &&
        virtio_vdev_has_feature(vdev, VIRTIO_F_IOMMU_PLATFORM);
    st->confined = r->confined;
    st->latched = r->latched;
    st->refusals = r->refusals;
    st->violations = r->violations;
    st->backend_errors = r->backend_errors;
    return st;
}

/*
 * Migration.  The window's contents are RAM and migrate with it, the
 * window's address with the transport (a PCI BAR in config space) or the
 * board (a pool), the negotiated features with the device.  This
 * subsection carries the rest and lets the destination refuse a stream
 * whose window does not match.
 */
typedef struct VirtIORestrictedDMAStream {
    VirtIORestrictedDMA *parent;
    uint32_t kind;
    uint64_t size;
    uint64_t base;
    int32_t policy;
} VirtIORestrictedDMAStream;

static int virtio_restricted_dma_stream_pre_save(void *opaque)
{
    VirtIORestrictedDMAStream *s = opaque;
    VirtIORestrictedDMA *r = s->parent;
    g_autoptr(VirtioRestrictedDmaStatus) st =
        g_new0(VirtioRestrictedDmaStatus, 1);

    virtio_restricted_dma_describe(r, st);
    s->kind = st->kind;
    s->size = r->size;
    s->base = st->window_address;
    s->policy = r->vdev->restricted_dma_policy;
    return 0;
}

static int virtio_restricted_dma_stream_post_load(void *opaque,
                                                  int version_id)
{
    VirtIORestrictedDMAStream *s = opaque;
    VirtIORestrictedDMA *r = s->parent;
    VirtIODevice *vdev = r->vdev;
    g_autoptr(VirtioRestrictedDmaStatus) st =
        g_new0(VirtioRestrictedDmaStatus, 1);
    const char *path = virtio_restricted_dma_path(vdev);
    uint64_t addr;

    virtio_restricted_dma_describe(r, st);
    if (s->kind != st->kind || s->size != r->size ||
        s->policy != vdev->restricted_dma_policy) {
        error_report("%s (%s): restricted DMA differs: the source has a %s "
                     "window of 0x%" PRIx64 " bytes and policy %s, this "
                     "destination a %s window of 0x%" PRIx64 " bytes and "
                     "policy %s", vdev->name, path,
                     s->kind < VIRTIO_RESTRICTED_DMA_KIND__MAX ?
                     VirtioRestrictedDmaKind_str(s->kind) : "?", s->size,
                     s->policy >= 0 &&
                     s->policy < VIRTIO_RESTRICTED_DMA_POLICY__MAX ?
                     VirtioRestrictedDmaPolicy_str(s->policy) : "?",
                     VirtioRestrictedDmaKind_str(st->kind), r->size,
                     VirtioRestrictedDmaPolicy_str(
                         vdev->restricted_dma_policy));
        return -EINVAL;
    }
    /*
     * The transport's state, loaded before this (a BAR's address in config
     * space), or the destination's configuration (a pool's address) must
     * put the window where the source had it.
     */
    if (r->pc->get_address(r->provider, &addr) && addr != s->base) {
        error_report("%s (%s): the source's restricted DMA window is at "
                     "0x%" PRIx64 ", this destination's at 0x%" PRIx64 "; "
                     "give the window the same size and address (for a "
                     "pool: size, addr and -m) on both sides", vdev->name,
                     path, s->base, addr);
        return -EINVAL;
    }
    r->loaded = true;
    return 0;
}

static const VMStateDescription vmstate_virtio_restricted_dma_stream = {
    .name = "virtio/restricted_dma/stream",
    .pre_save = virtio_restricted_dma_stream_pre_save,
    .post_load = virtio_restricted_dma_stream_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(kind, VirtIORestrictedDMAStream),
        VMSTATE_UINT64(size, VirtIORestrictedDMAStream),
        VMSTATE_UINT64(base, VirtIORestrictedDMAStream),
        VMSTATE_INT32(policy, VirtIORestrictedDMAStream),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_virtio_restricted_dma_state = {
    .name = "virtio/restricted_dma/state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_WITH_TMP(VirtIORestrictedDMA, VirtIORestrictedDMAStream,
                         vmstate_virtio_restricted_dma_stream),
        VMSTATE_BOOL(tripped, VirtIORestrictedDMA),
        VMSTATE_UINT64(refusals, VirtIORestrictedDMA),
        VMSTATE_UINT64(violations, VirtIORestrictedDMA),
        /* opt-in: a driver opted in since the machine was reset */
        VMSTATE_BOOL(latched, VirtIORestrictedDMA),
        VMSTATE_END_OF_LIST()
    }
};

static bool virtio_restricted_dma_needed(void *opaque)
{
    VirtIODevice *vdev = opaque;

    return vdev->restricted_dma != NULL;
}

static int virtio_restricted_dma_pre_load(void *opaque)
{
    VirtIODevice *vdev = opaque;

    if (!vdev->restricted_dma) {
        error_report("%s (%s): the migration stream has a restricted DMA "
                     "window, this device has none; start the destination "
                     "with the source's restricted-dma-* properties",
                     vdev->name, virtio_restricted_dma_path(vdev));
        return -EINVAL;
    }
    return 0;
}

const VMStateDescription vmstate_virtio_restricted_dma = {
    .name = "virtio/restricted_dma",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = virtio_restricted_dma_needed,
    .pre_load = virtio_restricted_dma_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_POINTER(restricted_dma, VirtIODevice,
                               vmstate_virtio_restricted_dma_state,
                               VirtIORestrictedDMA),
        VMSTATE_END_OF_LIST()
    }
};

int virtio_restricted_dma_post_load(VirtIODevice *vdev)
{
    VirtIORestrictedDMA *r = vdev->restricted_dma;

    if (!r) {
        return 0;
    }
    if (!r->loaded) {
        error_report("%s (%s): this device has a restricted DMA window, the "
                     "migration stream has none; start the destination "
                     "without restricted-dma-* properties, as the source",
                     vdev->name, virtio_restricted_dma_path(vdev));
        return -EINVAL;
    }
    r->loaded = false;
    /* an opt-in device the source's guest had confined stays confined */
    if (vdev->restricted_dma_policy == VIRTIO_RESTRICTED_DMA_POLICY_OPT_IN) {
        virtio_restricted_dma_set_latched(r, r->latched);
    }
    return 0;
}

static const TypeInfo virtio_restricted_dma_provider_info = {
    .name = TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER,
    .parent = TYPE_INTERFACE,
    .class_size = sizeof(VirtIORestrictedDMAProviderClass),
};

static void virtio_restricted_dma_register_types(void)
{
    type_register_static(&virtio_restricted_dma_provider_info);
}

type_init(virtio_restricted_dma_register_types)
