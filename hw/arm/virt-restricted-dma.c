/*
 * arm virt: restricted-dma-pool objects in guest RAM and the device tree
 *
 * The board places every pool when it lays out RAM, at the top of the
 * first RAM region, and checks that the kernel, initrd and device tree the
 * boot loader put at its bottom stay clear of them.  When it finishes the
 * device tree it adds, for each pool that a device uses, a child of
 * /reserved-memory
 *   restricted-dma@BASE { compatible = "restricted-dma-pool"; reg; phandle }
 * and memory-region = <&pool> on the node of each device that uses it: the
 * virtio_mmio@ADDR node of its transport, or for a virtio-pci device a
 * child node of the PCIe host bridge at its devfn (nested under the nodes
 * of the bridges above it), as the PCI bus binding defines.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
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

bool virt_restricted_dma_place(VirtMachineState *vms, bool firmware,
                               Error **errp)
{
    MachineState *ms = MACHINE(vms);
    hwaddr base = vms->memmap[VIRT_MEM].base;

    if (!restricted_dma_pool_place_all(base, ms->ram_size, !firmware, errp)) {
        return false;
    }
    if (firmware && ms->numa_state->num_nodes &&
        restricted_dma_pool_lowest(base + ms->ram_size) < base + ms->ram_size) {
        error_setg(errp, "restricted-dma-pool cannot be used with firmware "
                   "and NUMA nodes: the board hides pools from the firmware "
                   "at the top of RAM, which NUMA nodes describe");
        return false;
    }
    return true;
}

static void virt_restricted_dma_hidden(RestrictedDMAPool *pool, void *opaque)
{
    pool->reserved = true;
}

uint64_t virt_restricted_dma_ram_size(VirtMachineState *vms, bool firmware)
{
    MachineState *ms = MACHINE(vms);
    hwaddr base = vms->memmap[VIRT_MEM].base;

    /*
     * Firmware (UEFI) tells the guest its memory map, and knows nothing of
     * pools: it would hand their RAM out.  So it is told only about the RAM
     * below them, and the guest learns about each pool from the capability
     * of the virtio-pci devices that use it.
     */
    if (firmware) {
        restricted_dma_pool_foreach(virt_restricted_dma_hidden, NULL);
        return restricted_dma_pool_lowest(base + ms->ram_size) - base;
    }
    return ms->ram_size;
}

bool virt_restricted_dma_check_boot(VirtMachineState *vms, Error **errp)
{
    struct arm_boot_info *info = &vms->bootinfo;

    if (!info->kernel_filename || info->firmware_loaded) {
        return true;
    }
    /*
     * arm_load_kernel() put the kernel, then the initrd, then (2 MiB
     * aligned) the device tree at the bottom of RAM.
     */
    return restricted_dma_pool_check_free(info->loader_start,
               QEMU_ALIGN_UP(info->dtb_start + vms->fdt_size,
                             RESTRICTED_DMA_POOL_ALIGN) - info->loader_start,
               "the kernel, initrd and device tree", errp);
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
                                            pool->addr);
    uint32_t phandle = qemu_fdt_alloc_phandle(fdt);

    if (fdt_path_offset(fdt, "/reserved-memory") < 0) {
        qemu_fdt_add_subnode(fdt, "/reserved-memory");
        qemu_fdt_setprop_cell(fdt, "/reserved-memory", "#address-cells", 2);
        qemu_fdt_setprop_cell(fdt, "/reserved-memory", "#size-cells", 2);
        qemu_fdt_setprop(fdt, "/reserved-memory", "ranges", NULL, 0);
    }
    qemu_fdt_add_subnode(fdt, node);
    qemu_fdt_setprop_string(fdt, node, "compatible", "restricted-dma-pool");
    qemu_fdt_setprop_sized_cells(fdt, node, "reg", 2, pool->addr,
                                 2, pool->size);
    qemu_fdt_setprop_cell(fdt, node, "phandle", phandle);
    return phandle;
}

/*
 * The device-tree node of the transport of @vdev.  For a PCI device, the
 * node and those of the bridges above it are created in @fdt if it is not
 * NULL.
 */
static char *virt_restricted_dma_dev_node(VirtMachineState *vms, void *fdt,
                                          VirtIODevice *vdev)
{
    DeviceState *proxy = qdev_get_parent_bus(DEVICE(vdev))->parent;
    g_autoptr(GPtrArray) chain = g_ptr_array_new();
    char *node;
    int i;

    if (object_dynamic_cast(OBJECT(proxy), TYPE_VIRTIO_MMIO)) {
        return g_strdup_printf("/virtio_mmio@%" PRIx64,
                               SYS_BUS_DEVICE(proxy)->mmio[0].addr);
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
        if (fdt && fdt_path_offset(fdt, node) < 0) {
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

    if (!pool->described) {
        return;     /* firmware: the RAM the guest is told about ends below */
    }
    if (!pool->users->len) {
        warn_report("restricted-dma-pool '%s' is used by no device, so it is "
                    "not described to the guest", restricted_dma_pool_id(pool));
        return;
    }
    phandle = virt_restricted_dma_pool_node(fdt, pool);
    pool->reserved = true;
    for (i = 0; i < pool->users->len; i++) {
        g_autofree char *node =
            virt_restricted_dma_dev_node(vms, fdt,
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
    pool->reserved = true;      /* if the user adds the node */
    for (i = 0; i < pool->users->len; i++) {
        g_autofree char *node =
            virt_restricted_dma_dev_node(vms, NULL,
                                         g_ptr_array_index(pool->users, i));

        g_string_append_printf(nodes, " %s", node);
    }
    warn_report("-dtb: QEMU cannot add restricted-dma-pool '%s' to a "
                "device tree it did not write; add to it: /reserved-memory "
                "{ #address-cells = <2>; #size-cells = <2>; ranges; "
                "pool: restricted-dma@%" PRIx64 " { compatible = "
                "\"restricted-dma-pool\"; reg = <0x%" PRIx64 " 0x%" PRIx64
                " 0x%" PRIx64 " 0x%" PRIx64 ">; }; }; and "
                "memory-region = <&pool>; on:%s",
                restricted_dma_pool_id(pool), pool->addr, pool->addr >> 32,
                pool->addr & 0xffffffff, pool->size >> 32,
                pool->size & 0xffffffff, nodes->str);
}

void virt_restricted_dma_fdt(VirtMachineState *vms, bool user_dtb)
{
    restricted_dma_pool_foreach(user_dtb ? virt_restricted_dma_pool_warn :
                                virt_restricted_dma_pool_fdt, vms);
}
