/*
 * Restricted DMA for virtio-pci: the bounce window in a BAR
 *
 * restricted-dma-bar-size=SIZE gives the device a RAM-backed, 64-bit,
 * prefetchable memory BAR (restricted-dma-bar=N, default 2), announced by
 * a vendor capability of cfg_type 10 with offset 0 and length SIZE.  The
 * addresses the driver gives the device are bus addresses inside that BAR,
 * so the window follows the guest moving the BAR, and is closed while the
 * BAR is unmapped or Bus Master is clear.
 *
 * restricted-dma-bar-memdev=ID backs the BAR with a memory backend instead
 * (its size is the window's), which a vhost-user backend can map when it
 * is shared.
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
#include "hw/virtio/virtio-restricted-dma.h"
#include "migration/vmstate.h"

/* The capability's length field is 32 bits wide. */
#define VIRTIO_PCI_RESTRICTED_DMA_MAX_SIZE (2 * GiB)
#define VIRTIO_PCI_RESTRICTED_DMA_DEFAULT_BAR 2

static const char *virtio_pci_rdma_bar_user(VirtIOPCIProxy *proxy, int bar)
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

static bool virtio_pci_rdma_bar_free(PCIDevice *dev, int bar)
{
    return bar + 1 < PCI_ROM_SLOT && !dev->io_regions[bar].size &&
           !dev->io_regions[bar + 1].size;
}

/* Either window: a modern-only device, no vIOMMU in front of it. */
bool virtio_pci_restricted_dma_check_transport(VirtIOPCIProxy *proxy,
                                               const char *prop,
                                               Error **errp)
{
    PCIDevice *dev = &proxy->pci_dev;
    const char *type = object_get_typename(OBJECT(proxy));

    if (virtio_pci_legacy(proxy) || !virtio_pci_modern(proxy)) {
        g_autofree char *nt = g_strdup_printf("%s-non-transitional", type);

        error_setg(errp, "%s needs a modern-only (virtio 1.x) device; %s "
                   "here has a legacy interface, where bit 27 means "
                   "something else", prop, type);
        if (!virtio_pci_modern(proxy)) {
            error_append_hint(errp, "Drop disable-modern=on and set "
                              "disable-legacy=on.\n");
        } else if (object_class_by_name(nt)) {
            error_append_hint(errp, "Set disable-legacy=on, or use %s.\n",
                              nt);
        } else {
            error_append_hint(errp, "Set disable-legacy=on.\n");
        }
        return false;
    }

    if (pci_device_iommu_address_space(dev) != &address_space_memory) {
        error_setg(errp, "%s cannot be used on a device behind a vIOMMU: "
                   "the window would be translated by the IOMMU", prop);
        error_append_hint(errp, "Put the device on a bus without an IOMMU, "
                          "or remove %s.\n", prop);
        return false;
    }
    return true;
}

static bool virtio_pci_rdma_shared(VirtIOPCIProxy *proxy)
{
    return virtio_restricted_dma_shareable(proxy->rdma_bar_memdev);
}

/* The property that gives the window, for messages. */
static const char *virtio_pci_rdma_prop(VirtIOPCIProxy *proxy)
{
    return proxy->rdma_bar_memdev ? "restricted-dma-bar-memdev"
                                  : "restricted-dma-bar-size";
}

/* The window from restricted-dma-bar-memdev: check it, take its size. */
static bool virtio_pci_rdma_check_memdev(VirtIOPCIProxy *proxy,
                                         Error **errp)
{
    HostMemoryBackend *be = proxy->rdma_bar_memdev;
    const char *id = object_get_canonical_path_component(OBJECT(be));

    if (proxy->rdma_bar_size) {
        error_setg(errp, "restricted-dma-bar-size and "
                   "restricted-dma-bar-memdev cannot be combined: the "
                   "window's size is the memory backend's");
        error_append_hint(errp, "Drop restricted-dma-bar-size.\n");
        return false;
    }
    if (host_memory_backend_is_mapped(be)) {
        error_setg(errp, "restricted-dma-bar-memdev=%s: memory backend '%s' "
                   "is already in use", id, id);
        error_append_hint(errp, "Give each window a memory backend of its "
                          "own.\n");
        return false;
    }
    proxy->rdma_bar_size =
        memory_region_size(host_memory_backend_get_memory(be));
    return true;
}

static bool virtio_pci_rdma_check(VirtIOPCIProxy *proxy, VirtIODevice *vdev,
                                  Error **errp)
{
    PCIDevice *dev = &proxy->pci_dev;
    const char *prop = virtio_pci_rdma_prop(proxy);
    uint64_t size = proxy->rdma_bar_size;
    int bar = proxy->rdma_bar;
    int i;

    if (!virtio_pci_restricted_dma_check_transport(proxy, prop, errp)) {
        return false;
    }

    if (!is_power_of_2(size)) {
        g_autofree char *s = size_to_str(size);

        if (proxy->rdma_bar_memdev) {
            error_setg(errp, "restricted-dma-bar-memdev: the memory "
                       "backend's size, %s, is not a power of two, which a "
                       "BAR must be", s);
            error_append_hint(errp, "Give the memory backend a size that "
                              "is a power of two.\n");
            return false;
        }
        error_setg(errp, "restricted-dma-bar-size=%s is not a power of two, "
                   "which a BAR must be", s);
        g_autofree char *lo = virtio_restricted_dma_size_arg(pow2floor(size));
        g_autofree char *hi = virtio_restricted_dma_size_arg(pow2ceil(size));

        error_append_hint(errp, "Use restricted-dma-bar-size=%s or %s.\n",
                          lo, hi);
        return false;
    }
    if (size > VIRTIO_PCI_RESTRICTED_DMA_MAX_SIZE) {
        g_autofree char *s = size_to_str(size);

        error_setg(errp, "%s: a window of %s is above the maximum of 2 GiB "
                   "(the capability's length field has 32 bits)", prop, s);
        error_append_hint(errp, "Use a window of 2G or less.\n");
        return false;
    }

    if (!virtio_restricted_dma_check_device(vdev, prop, size,
                                            virtio_pci_rdma_shared(proxy),
                                            errp)) {
        return false;
    }

    if (bar + 1 >= PCI_ROM_SLOT) {
        error_setg(errp, "restricted-dma-bar=%d is not a BAR that can hold a "
                   "64-bit window", bar);
        error_append_hint(errp, "A 64-bit BAR takes two slots: use 0 to "
                          "4.\n");
        return false;
    }
    if (!virtio_pci_rdma_bar_free(dev, bar)) {
        int busy = dev->io_regions[bar].size ? bar : bar + 1;

        error_setg(errp, "restricted-dma-bar=%d: BAR %d is in use by %s",
                   bar, busy, virtio_pci_rdma_bar_user(proxy, busy));
        for (i = 0; i + 1 < PCI_ROM_SLOT; i++) {
            if (virtio_pci_rdma_bar_free(dev, i)) {
                error_append_hint(errp, "BARs %d and %d are free: set "
                                  "restricted-dma-bar=%d.\n", i, i + 1, i);
                break;
            }
        }
        return false;
    }
    return true;
}

bool virtio_pci_restricted_dma_pre_realize(VirtIOPCIProxy *proxy,
                                           Error **errp)
{
    return (!proxy->rdma_bar_size && !proxy->rdma_bar_memdev) ||
           virtio_restricted_dma_check_type(object_get_typename(OBJECT(proxy)),
                                            virtio_pci_rdma_prop(proxy),
                                            virtio_pci_rdma_shared(proxy),
                                            errp);
}

bool virtio_pci_restricted_dma_plug(VirtIOPCIProxy *proxy, Error **errp)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);
    struct virtio_pci_cap cap = {
        .cap_len = sizeof(cap),
        .cfg_type = VIRTIO_PCI_CAP_RESTRICTED_DMA_CFG,
    };
    VirtIORestrictedDMAWindow w = {
        .kind = VIRTIO_RESTRICTED_DMA_KIND_BAR,
        .backing = &proxy->rdma_window,
        .bar = proxy->rdma_bar,
    };

    if (proxy->rdma_bar_memdev &&
        !virtio_pci_rdma_check_memdev(proxy, errp)) {
        return false;
    }
    if (!proxy->rdma_bar_size) {
        if (proxy->rdma_bar != VIRTIO_PCI_RESTRICTED_DMA_DEFAULT_BAR) {
            error_setg(errp, "restricted-dma-bar=%d has no effect without "
                       "restricted-dma-bar-size", proxy->rdma_bar);
            error_append_hint(errp, "Give the window a size with "
                              "restricted-dma-bar-size.\n");
            return false;
        }
        return true;
    }
    if (!virtio_pci_rdma_check(proxy, vdev, errp)) {
        return false;
    }

    if (proxy->rdma_bar_memdev) {
        MemoryRegion *mr =
            host_memory_backend_get_memory(proxy->rdma_bar_memdev);

        /* the backend's RAM, migrated under this device's name */
        memory_region_init_alias(&proxy->rdma_window, OBJECT(proxy),
                                 "virtio-pci-restricted-dma", mr, 0,
                                 proxy->rdma_bar_size);
        host_memory_backend_set_mapped(proxy->rdma_bar_memdev, true);
        vmstate_register_ram(mr, DEVICE(proxy));
    } else {
        if (!memory_region_init_ram_flags_nomigrate(&proxy->rdma_window,
                                                    OBJECT(proxy),
                                                    "virtio-pci-restricted-dma",
                                                    proxy->rdma_bar_size, 0,
                                                    errp)) {
            return false;
        }
        vmstate_register_ram(&proxy->rdma_window, DEVICE(proxy));
    }
    pci_register_bar(&proxy->pci_dev, proxy->rdma_bar,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64,
                     &proxy->rdma_window);

    cap.bar = proxy->rdma_bar;
    cap.offset = cpu_to_le32(0);
    cap.length = cpu_to_le32(proxy->rdma_bar_size);
    virtio_pci_add_mem_cap(proxy, &cap);

    w.size = proxy->rdma_bar_size;
    virtio_restricted_dma_init(vdev, &w);
    return true;
}

void virtio_pci_restricted_dma_unplug(VirtIOPCIProxy *proxy)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);

    if (!vdev || !vdev->rdma ||
        virtio_restricted_dma_kind(vdev) != VIRTIO_RESTRICTED_DMA_KIND_BAR) {
        return;
    }
    if (proxy->rdma_bar_memdev) {
        vmstate_unregister_ram(
            host_memory_backend_get_memory(proxy->rdma_bar_memdev),
            DEVICE(proxy));
        host_memory_backend_set_mapped(proxy->rdma_bar_memdev, false);
    } else {
        vmstate_unregister_ram(&proxy->rdma_window, DEVICE(proxy));
    }
}

void virtio_pci_restricted_dma_update(VirtIOPCIProxy *proxy)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);
    PCIDevice *dev = &proxy->pci_dev;
    pcibus_t addr;
    bool master;

    if (!vdev || !vdev->rdma) {
        return;
    }
    master = pci_get_word(dev->config + PCI_COMMAND) & PCI_COMMAND_MASTER;
    if (virtio_restricted_dma_kind(vdev) != VIRTIO_RESTRICTED_DMA_KIND_BAR) {
        /* a pool in guest RAM: only Bus Master matters */
        virtio_restricted_dma_set_enabled(vdev, master);
        return;
    }
    addr = pci_get_bar_addr(dev, proxy->rdma_bar);
    virtio_restricted_dma_set_window(vdev, addr != PCI_BAR_UNMAPPED && master,
                                     addr);
}

void virtio_pci_restricted_dma_close(VirtIOPCIProxy *proxy)
{
    VirtIODevice *vdev = virtio_bus_get_device(&proxy->bus);

    if (vdev && vdev->rdma) {
        virtio_restricted_dma_set_enabled(vdev, false);
    }
}
