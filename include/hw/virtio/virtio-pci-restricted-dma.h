/*
 * Restricted DMA for virtio-pci
 *
 * The transport's side of restricted DMA: it names the window of its
 * device (a BAR of its own, restricted-dma-bar-size, or the device's
 * restricted-dma-pool), provides the BAR window, and tells the core where
 * the window is as the guest programs the BAR and Bus Master.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_PCI_RESTRICTED_DMA_H
#define HW_VIRTIO_PCI_RESTRICTED_DMA_H

#include "system/hostmem.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio-restricted-dma.h"

#define VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_SIZE "restricted-dma-bar-size"
#define VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR_MEMDEV "restricted-dma-bar-memdev"
#define VIRTIO_PCI_RESTRICTED_DMA_PROP_BAR "restricted-dma-bar"
#define VIRTIO_PCI_RESTRICTED_DMA_DEFAULT_BAR 2

/* The vendor capability that locates the window (cfg_type). */
#define VIRTIO_PCI_CAP_RESTRICTED_DMA_CFG 10
/*
 * Its bar value for a window in system memory (virtio_pci_cap64 layout,
 * offset and length a range of guest physical addresses): the virtio spec
 * reserves the values above 5, and tells drivers to ignore a capability
 * with a reserved one.
 */
#define VIRTIO_PCI_RESTRICTED_DMA_BAR_SYSTEM_MEMORY 0xff

/*
 * Class init of TYPE_VIRTIO_PCI: the provider methods of the BAR window
 * and the descriptions of the properties.
 */
void virtio_pci_restricted_dma_class_init(ObjectClass *klass);

/* VirtioBusClass::get_restricted_dma of the virtio-pci bus. */
bool virtio_pci_get_restricted_dma(DeviceState *d,
                                   VirtIORestrictedDMARequest *req,
                                   Error **errp);

/* The device is plugged: register the BAR window and its capability. */
bool virtio_pci_restricted_dma_plug(VirtIOPCIProxy *proxy, Error **errp);

/*
 * Config space changed (a write, or migration loaded it): the BAR may have
 * moved or been unmapped, Bus Master may have changed.
 */
void virtio_pci_restricted_dma_update(VirtIOPCIProxy *proxy);

/* The PCI reset clears Bus Master and unmaps the BARs. */
void virtio_pci_restricted_dma_reset(VirtIOPCIProxy *proxy);

#endif
