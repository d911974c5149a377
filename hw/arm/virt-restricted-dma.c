/*
 * arm virt: describe restricted-dma-pool objects in the device tree
 *
 * For each pool that a device uses, a child of /reserved-memory
 *   restricted-dma@BASE { compatible = "restricted-dma-pool"; reg; phandle }
 * and memory-region = <&pool> on the node of each device that uses it:
 * the virtio_mmio@ADDR node of its transport, or for a virtio-pci device a
 * child node of the PCIe host bridge at its devfn (nested under the nodes
 * of the bridges above it), as the PCI bus binding defines.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "hw/arm/virt.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/sysbus.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-mmio.h"
#include "hw/virtio/restricted-dma-pool.h"
#include "system/device_tree.h"
#include <libfdt.h>

void virt_restricted_dma_get_ram(Object *host, hwaddr *ram_base,
                                 uint64_t *ram_size, hwaddr *boot_base,
                                 uint64_t *boot_size)
{
    VirtMachineState *vms = VIRT_MACHINE(host);
    MachineState *ms = MACHINE(host);
    struct arm_boot_info *info = &vms->bootinfo;

    *ram_base = vms->memmap[VIRT_MEM].base;
    *ram_size = ms->ram_size;
    *boot_base = *ram_base;
    *boot_size = 0;
    if (info->kernel_filename && !info->firmware_loaded) {
        /*
         * arm_load_kernel() put the kernel, then the initrd, then (2 MiB
         * aligned) the device tree at the bottom of RAM.
         */
        *boot_size = QEMU_ALIGN_UP(info->dtb_start + vms->fdt_size,
                                   RESTRICTED_DMA_POOL_ALIGN) - *ram_base;
    }
}

/*
 * The pool's node under /reserved-memory, which is created if needed.  It
 * never has no-map, reusable or a default flag, any of which would keep
 * Linux from using it as a restricted DMA pool.
 */
static uint32_t virt_restricted_dma_pool_node(void *fdt,
                                              RestrictedDMAPool *pool)
{
    g_autofree char *node = g_strdup_printf("/reserved-memory/"
                                            "restricted-dma@%" PRIx64,
                                            pool->base);

    if (fdt_path_offset(fdt, "/reserved-memory") < 0) {
        qemu_fdt_add_subnode(fdt, "/reserved-memory");
        qemu_fdt_setprop_cell(fdt, "/reserved-memory", "#address-cells", 2);
        qemu_fdt_setprop_cell(fdt, "/reserved-memory", "#size-cells", 2);
        qemu_fdt_setprop(fdt, "/reserved-memory", "ranges", NULL, 0);
    }
    pool->phandle = qemu_fdt_alloc_phandle(fdt);
    qemu_fdt_add_subnode(fdt, node);
    qemu_fdt_setprop_string(fdt, node, "compatible", "restricted-dma-pool");
    qemu_fdt_setprop_sized_cells(fdt, node, "reg", 2, pool->base,
                                 2, pool->size);
    qemu_fdt_setprop_cell(fdt, node, "phandle", pool->phandle);
    return pool->phandle;
}

/* The node of the transport of @vdev, created if it is a PCI device. */
static char *virt_restricted_dma_dev_node(VirtMachineState *vms,
                                          VirtIODevice *vdev)
{
    void *fdt = MACHINE(vms)->fdt;
    BusState *bus = qdev_get_parent_bus(DEVICE(vdev));
    DeviceState *proxy = bus->parent;
    g_autoptr(GPtrArray) chain = g_ptr_array_new();
    char *node;
    int i;

    if (object_dynamic_cast(OBJECT(proxy), TYPE_VIRTIO_MMIO)) {
        SysBusDevice *sbd = SYS_BUS_DEVICE(proxy);

        return g_strdup_printf("/virtio_mmio@%" PRIx64, sbd->mmio[0].addr);
    }

    /* the PCI device, and the bridges above it up to the root bus */
    for (PCIDevice *d = PCI_DEVICE(proxy); d;
         d = pci_bus_is_root(pci_get_bus(d)) ? NULL :
             pci_get_bus(d)->parent_dev) {
        g_ptr_array_insert(chain, 0, d);
    }
    node = g_strdup(vms->pciehb_nodename);
    for (i = 0; i < chain->len; i++) {
        PCIDevice *d = g_ptr_array_index(chain, i);
        char *child = g_strdup_printf("%s/%s@%x,%x", node,
                                      i + 1 < chain->len ? "pci" : "virtio",
                                      PCI_SLOT(d->devfn), PCI_FUNC(d->devfn));

        g_free(node);
        node = child;
        if (fdt_path_offset(fdt, node) < 0) {
            qemu_fdt_add_subnode(fdt, node);
            qemu_fdt_setprop_cells(fdt, node, "reg",
                                   (pci_dev_bus_num(d) << 16) |
                                   (d->devfn << 8), 0, 0, 0, 0);
            if (i + 1 < chain->len) {
                qemu_fdt_setprop_cell(fdt, node, "#address-cells", 3);
                qemu_fdt_setprop_cell(fdt, node, "#size-cells", 2);
            }
        }
    }
    return node;
}

static void virt_restricted_dma_pool_fdt(RestrictedDMAPool *pool,
                                         void *opaque)
{
    VirtMachineState *vms = opaque;
    void *fdt = MACHINE(vms)->fdt;
    uint32_t phandle;
    int i;

    if (!pool->users->len) {
        warn_report("restricted-dma-pool '%s' is used by no device, so it is "
                    "not described to the guest", restricted_dma_pool_id(pool));
        return;
    }
    phandle = virt_restricted_dma_pool_node(fdt, pool);
    for (i = 0; i < pool->users->len; i++) {
        g_autofree char *node =
            virt_restricted_dma_dev_node(vms,
                                         g_ptr_array_index(pool->users, i));

        qemu_fdt_setprop_cell(fdt, node, "memory-region", phandle);
    }
}

static void virt_restricted_dma_pool_warn(RestrictedDMAPool *pool,
                                          void *opaque)
{
    VirtMachineState *vms = opaque;
    g_autoptr(GString) nodes = g_string_new("");
    int i;

    if (!pool->users->len) {
        return;
    }
    for (i = 0; i < pool->users->len; i++) {
        VirtIODevice *vdev = g_ptr_array_index(pool->users, i);
        DeviceState *proxy = qdev_get_parent_bus(DEVICE(vdev))->parent;

        if (object_dynamic_cast(OBJECT(proxy), TYPE_VIRTIO_MMIO)) {
            g_string_append_printf(nodes, " /virtio_mmio@%" PRIx64,
                                   SYS_BUS_DEVICE(proxy)->mmio[0].addr);
        } else {
            PCIDevice *d = PCI_DEVICE(proxy);

            g_string_append_printf(nodes, " the PCI device %02x:%02x.%x "
                                   "under %s", pci_dev_bus_num(d),
                                   PCI_SLOT(d->devfn), PCI_FUNC(d->devfn),
                                   vms->pciehb_nodename);
        }
    }
    warn_report("-dtb: QEMU cannot add restricted-dma-pool '%s' to a "
                "device tree it did not write; add to it: /reserved-memory "
                "{ #address-cells = <2>; #size-cells = <2>; ranges; "
                "pool: restricted-dma@%" PRIx64 " { compatible = "
                "\"restricted-dma-pool\"; reg = <0x%" PRIx64 " 0x%" PRIx64
                " 0x%" PRIx64 " 0x%" PRIx64 ">; }; }; and "
                "memory-region = <&pool>; on:%s",
                restricted_dma_pool_id(pool), pool->base, pool->base >> 32,
                pool->base & 0xffffffff, pool->size >> 32,
                pool->size & 0xffffffff, nodes->str);
}

void virt_restricted_dma_fdt(VirtMachineState *vms, bool user_dtb)
{
    restricted_dma_pool_foreach(user_dtb ? virt_restricted_dma_pool_warn :
                                virt_restricted_dma_pool_fdt, vms);
}
