/*
 * Restricted DMA for virtio-pci: the transport, and the window in a BAR
 *
 * restricted-dma-bar-size=SIZE gives the device a RAM-backed, 64-bit,
 * prefetchable memory BAR (restricted-dma-bar=N, default 2), announced by
 * a vendor capability of cfg_type 10 with offset 0 and length SIZE.  The
 * addresses the driver gives the device are bus addresses inside that BAR,
 * so the window follows the guest moving the BAR.  The proxy is the
 * window's provider (TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER).
 *
 * restricted-dma-bar-memdev=ID backs the BAR with a memory backend instead
 * (its size is the window's), which a vhost-user backend can map when it
 * is shared.
 *
 * Whichever the window (the BAR, or a restricted-dma-pool the user gave
 * the device), it is closed while Bus Master is clear.  The capability
 * announces a pool too, in its system-memory form.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "system/hostmem.h"
#include "hw/pci/pci.h"
#include "standard-headers/linux/virtio_pci.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio-pci-restricted-dma.h"
#include "migration/vmstate.h"

/* The capability's length field is 32 bits wide. */
#define VIRTIO_PCI_RESTRICTED_DMA_MAX_SIZE (2 * GiB)

static bool virtio_pci_restricted_dma_has_bar(VirtIOPCIProxy *proxy)
{
    return proxy->restricted_dma_bar_size || proxy->restricted_dma_bar_memdev;
}

/* The property that gives the BAR window, for messages. */
static const char *virtio_pci_restricted_dma_bar_prop(VirtIOPCIProxy *proxy)
{
    return proxy->restricted_dma_bar_memdev ?
           VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_MEMDEV :
           VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE;
}

bool virtio_pci_get_restricted_dma(DeviceState *d,
                                   VirtIORestrictedDMARequest *req,
                                   Error **errp)
{
    VirtIOPCIProxy *proxy = VIRTIO_PCI(d);
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);
    const char *type = object_get_typename(OBJECT(proxy));
    bool bar = virtio_pci_restricted_dma_has_bar(proxy);
    int b = proxy->restricted_dma_bar;

    if (!bar && b != VIRTIO_PCI_RESTRICTED_DMA_DEFAULT_BAR) {
        error_setg(errp, VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR "=%d has no "
                   "effect without " VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE,
                   b);
        error_append_hint(errp, "Give the window a size with "
                          VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE ".\n");
        return false;
    }
    if (bar && vdev->restricted_dma_pool) {
        error_setg(errp, VIRTIO_RESTRICTED_DMA_PROP_POOL " and %s cannot be "
                   "combined: a device has one window",
                   virtio_pci_restricted_dma_bar_prop(proxy));
        error_append_hint(errp, "Keep one of them.\n");
        return false;
    }
    if (!bar && !vdev->restricted_dma_pool) {
        return true;
    }
    if (bar && b + 1 >= PCI_ROM_SLOT) {
        error_setg(errp, VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR "=%d is not a BAR "
                   "that can hold a 64-bit window", b);
        error_append_hint(errp, "A 64-bit BAR takes two slots: use 0 to "
                          "4.\n");
        return false;
    }

    req->provider = bar ? OBJECT(proxy) : OBJECT(vdev->restricted_dma_pool);
    req->prop = bar ? virtio_pci_restricted_dma_bar_prop(proxy)
                    : VIRTIO_RESTRICTED_DMA_PROP_POOL;
    /* The capability tells the guest where the window is, whichever. */
    req->announced = true;
    /* Closed until the guest enables Bus Master. */
    req->gated = true;
    req->legacy = virtio_pci_legacy(proxy) || !virtio_pci_modern(proxy);
    if (!virtio_pci_modern(proxy)) {
        req->legacy_hint = g_strdup("Drop disable-modern=on and set "
                                    "disable-legacy=on.");
    } else if (req->legacy) {
        g_autofree char *nt = g_strdup_printf("%s-non-transitional", type);

        req->legacy_hint = object_class_by_name(nt) ?
            g_strdup_printf("Set disable-legacy=on, or use %s.", nt) :
            g_strdup("Set disable-legacy=on.");
    }

    if (pci_device_iommu_address_space(&proxy->pci_dev) !=
        &address_space_memory) {
        error_setg(errp, "%s cannot be used on a device behind a vIOMMU: "
                   "the window would be translated by the IOMMU", req->prop);
        error_append_hint(errp, "Put the device on a bus without an IOMMU, "
                          "or remove %s.\n", req->prop);
        return false;
    }
    return true;
}

/* The BAR window: its provider methods, on the proxy. */

static bool virtio_pci_restricted_dma_attach(Object *provider,
                                             VirtIODevice *vdev,
                                             const VirtIORestrictedDMARequest
                                             *req, Error **errp)
{
    VirtIOPCIProxy *proxy = VIRTIO_PCI(provider);
    HostMemoryBackend *be = proxy->restricted_dma_bar_memdev;
    uint64_t size = proxy->restricted_dma_bar_size;

    if (be) {
        if (size) {
            error_setg(errp, VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE " and "
                       VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_MEMDEV " cannot be "
                       "combined: the window's size is the memory "
                       "backend's");
            error_append_hint(errp, "Drop "
                              VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE ".\n");
            return false;
        }
        size = memory_region_size(host_memory_backend_get_memory(be));
    }

    if (!is_power_of_2(size)) {
        g_autofree char *s = size_to_str(size);
        g_autofree char *lo = virtio_restricted_dma_size_arg(pow2floor(size));
        g_autofree char *hi = virtio_restricted_dma_size_arg(pow2ceil(size));

        if (be) {
            error_setg(errp, VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_MEMDEV ": the "
                       "memory backend's size, %s, is not a power of two, "
                       "which a BAR must be", s);
            error_append_hint(errp, "Give the memory backend a size that "
                              "is a power of two.\n");
        } else {
            error_setg(errp, VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE "=%s is "
                       "not a power of two, which a BAR must be", s);
            error_append_hint(errp, "Use "
                              VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE "=%s or "
                              "%s.\n", lo, hi);
        }
        return false;
    }
    if (size > VIRTIO_PCI_RESTRICTED_DMA_MAX_SIZE) {
        g_autofree char *s = size_to_str(size);

        error_setg(errp, "%s: a window of %s is above the maximum of 2 GiB "
                   "(the capability's length field has 32 bits)", req->prop,
                   s);
        error_append_hint(errp, "Use a window of 2G or less.\n");
        return false;
    }

    if (be) {
        MemoryRegion *mr = host_memory_backend_get_memory(be);
        const char *id = object_get_canonical_path_component(OBJECT(be));
        g_autofree char *what =
            g_strdup_printf("%s=%s: memory backend '%s'", req->prop, id, id);

        if (!virtio_restricted_dma_claim_memdev(be, what, errp)) {
            return false;
        }
        /* the backend's RAM, migrated under this device's name */
        memory_region_init_alias(&proxy->restricted_dma_window, OBJECT(proxy),
                                 "virtio-pci-restricted-dma", mr, 0, size);
        vmstate_register_ram(mr, DEVICE(proxy));
    } else {
        if (!memory_region_init_ram_flags_nomigrate(
                &proxy->restricted_dma_window, OBJECT(proxy),
                "virtio-pci-restricted-dma", size, 0, errp)) {
            return false;
        }
        vmstate_register_ram(&proxy->restricted_dma_window, DEVICE(proxy));
    }
    return true;
}

static void virtio_pci_restricted_dma_detach(Object *provider,
                                             VirtIODevice *vdev)
{
    VirtIOPCIProxy *proxy = VIRTIO_PCI(provider);
    HostMemoryBackend *be = proxy->restricted_dma_bar_memdev;

    if (be) {
        vmstate_unregister_ram(host_memory_backend_get_memory(be),
                               DEVICE(proxy));
        virtio_restricted_dma_release_memdev(be);
    } else {
        vmstate_unregister_ram(&proxy->restricted_dma_window, DEVICE(proxy));
    }
}

static MemoryRegion *virtio_pci_restricted_dma_get_memory(Object *provider)
{
    return &VIRTIO_PCI(provider)->restricted_dma_window;
}

static bool virtio_pci_restricted_dma_get_address(Object *provider,
                                                  uint64_t *addr)
{
    VirtIOPCIProxy *proxy = VIRTIO_PCI(provider);
    pcibus_t a = pci_get_bar_addr(&proxy->pci_dev, proxy->restricted_dma_bar);

    *addr = a;
    return a != PCI_BAR_UNMAPPED;
}

static void virtio_pci_restricted_dma_describe(Object *provider,
                                               VirtioRestrictedDmaStatus *st)
{
    st->kind = VIRTIO_RESTRICTED_DMA_KIND_BAR;
    st->has_bar = true;
    st->bar = VIRTIO_PCI(provider)->restricted_dma_bar;
}

static const char *virtio_pci_restricted_dma_bar_user(VirtIOPCIProxy *proxy,
                                                      int bar)
{
    if (virtio_pci_modern(proxy) &&
        (bar == proxy->modern_mem_bar_idx ||
         bar == proxy->modern_mem_bar_idx + 1)) {
        return "the virtio-pci modern BAR";
    }
    if (bar == proxy->msix_bar_idx) {
        return "the MSI-X BAR";
    }
    if ((proxy->flags & VIRTIO_PCI_FLAG_MODERN_PIO_NOTIFY) &&
        bar == proxy->modern_io_bar_idx) {
        return "the modern-pio-notify BAR";
    }
    return "another BAR of this device";
}

static bool virtio_pci_restricted_dma_bar_free(PCIDevice *dev, int bar)
{
    return bar + 1 < PCI_ROM_SLOT && !dev->io_regions[bar].size &&
           !dev->io_regions[bar + 1].size;
}

/*
 * A window in system memory (a pool in guest RAM) is announced by the same
 * capability in its 64-bit layout, with a bar value that no BAR has: the
 * window is [offset, offset + length) of the guest's physical address
 * space.  A driver that does not know this form ignores the capability, as
 * the virtio spec requires for a reserved bar value.
 */
static void virtio_pci_restricted_dma_announce(VirtIOPCIProxy *proxy,
                                               Object *provider)
{
    VirtIORestrictedDMAProviderClass *pc =
        VIRTIO_RESTRICTED_DMA_PROVIDER_GET_CLASS(provider);
    uint64_t addr = 0, size = memory_region_size(pc->get_memory(provider));
    struct virtio_pci_cap64 cap = {
        .cap.cap_len = sizeof(cap),
        .cap.cfg_type = VIRTIO_PCI_CAP_RESTRICTED_DMA_CFG,
        .cap.bar = VIRTIO_PCI_RESTRICTED_DMA_BAR_SYSTEM_MEMORY,
    };

    pc->get_address(provider, &addr);
    cap.cap.offset = cpu_to_le32(addr);
    cap.offset_hi = cpu_to_le32(addr >> 32);
    cap.cap.length = cpu_to_le32(size);
    cap.length_hi = cpu_to_le32(size >> 32);
    virtio_pci_add_mem_cap(proxy, &cap.cap);
}

/*
 * An MSI message is a DMA write of the device to an address the guest
 * chose.  Aimed at an interrupt controller it is an interrupt; aimed at
 * RAM outside the window it is a write the window forbids: drop it and
 * report the violation.
 */
static void virtio_pci_restricted_dma_msi_trigger(PCIDevice *dev,
                                                  MSIMessage msg)
{
    VirtIOPCIProxy *proxy = VIRTIO_PCI(dev);
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);
    hwaddr xlat, len = sizeof(uint32_t);
    MemoryRegion *mr;
    bool ram;

    if (vdev) {
        RCU_READ_LOCK_GUARD();
        mr = address_space_translate(&dev->bus_master_as, msg.address, &xlat,
                                     &len, true, MEMTXATTRS_UNSPECIFIED);
        ram = memory_region_is_ram(mr);
        if (ram && !virtio_restricted_dma_check(vdev, msg.address,
                                                sizeof(uint32_t),
                                                "MSI message")) {
            return;
        }
    }
    pci_default_msi_trigger(dev, msg);
}

bool virtio_pci_restricted_dma_plug(VirtIOPCIProxy *proxy, Error **errp)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);
    Object *provider = virtio_restricted_dma_provider(vdev);
    PCIDevice *dev = &proxy->pci_dev;
    int bar = proxy->restricted_dma_bar;
    uint64_t size;
    struct virtio_pci_cap cap = {
        .cap_len = sizeof(cap),
        .cfg_type = VIRTIO_PCI_CAP_RESTRICTED_DMA_CFG,
    };
    int i;

    if (!provider) {
        return true;
    }
    dev->msi_trigger = virtio_pci_restricted_dma_msi_trigger;
    if (provider != OBJECT(proxy)) {
        virtio_pci_restricted_dma_announce(proxy, provider);
        return true;
    }
    if (!virtio_pci_restricted_dma_bar_free(dev, bar)) {
        int busy = dev->io_regions[bar].size ? bar : bar + 1;

        error_setg(errp, VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR "=%d: BAR %d is "
                   "in use by %s", bar, busy,
                   virtio_pci_restricted_dma_bar_user(proxy, busy));
        for (i = 0; i + 1 < PCI_ROM_SLOT; i++) {
            if (virtio_pci_restricted_dma_bar_free(dev, i)) {
                error_append_hint(errp, "BARs %d and %d are free: set "
                                  VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR "=%d.\n",
                                  i, i + 1, i);
                break;
            }
        }
        return false;
    }
    size = memory_region_size(&proxy->restricted_dma_window);
    pci_register_bar(dev, bar,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64,
                     &proxy->restricted_dma_window);
    cap.bar = bar;
    cap.offset = cpu_to_le32(0);
    cap.length = cpu_to_le32(size);
    virtio_pci_add_mem_cap(proxy, &cap);
    return true;
}

void virtio_pci_restricted_dma_update(VirtIOPCIProxy *proxy)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);

    if (vdev) {
        virtio_restricted_dma_update(vdev,
                                     pci_get_word(proxy->pci_dev.config +
                                                  PCI_COMMAND) &
                                     PCI_COMMAND_MASTER);
    }
}

void virtio_pci_restricted_dma_reset(VirtIOPCIProxy *proxy)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);

    if (vdev) {
        virtio_restricted_dma_update(vdev, false);
    }
}

void virtio_pci_restricted_dma_class_init(ObjectClass *klass)
{
    VirtIORestrictedDMAProviderClass *pc =
        VIRTIO_RESTRICTED_DMA_PROVIDER_CLASS(klass);

    pc->attach = virtio_pci_restricted_dma_attach;
    pc->detach = virtio_pci_restricted_dma_detach;
    pc->get_memory = virtio_pci_restricted_dma_get_memory;
    pc->get_address = virtio_pci_restricted_dma_get_address;
    pc->describe = virtio_pci_restricted_dma_describe;

    object_class_property_set_description(klass,
        VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE,
        "Size of the device's restricted DMA window, a RAM-backed BAR: a "
        "power of two up to 2G, at least the device's rings at their "
        "largest plus 256K; 0: no window");
    object_class_property_set_description(klass,
        VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_MEMDEV,
        "Memory backend to back the restricted DMA window BAR with, in "
        "place of " VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE " (its size, a "
        "power of two, is the window's; shared, for a vhost-user backend); "
        "default: none");
    object_class_property_set_description(klass,
        VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR,
        "Index of the 64-bit BAR that holds the restricted DMA window: 0 "
        "to 4, with the next slot free too");
}
