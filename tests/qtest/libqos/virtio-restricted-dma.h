/*
 * libqos: virtio-pci devices with a restricted DMA window in a BAR
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef LIBQOS_VIRTIO_RESTRICTED_DMA_H
#define LIBQOS_VIRTIO_RESTRICTED_DMA_H

#include "virtio-pci.h"
#include "libqos-malloc.h"

/* the virtio-pci vendor capability that locates the window */
#define QVIRTIO_PCI_CAP_RESTRICTED_DMA_CFG 10
#define QVIRTIO_F_RESTRICTED_DMA 27

typedef struct QVirtioRestrictedDMA {
    QVirtioPCIDevice *dev;
    uint8_t bar;              /* the BAR holding the window */
    uint32_t offset;          /* of the window in the BAR, from the cap */
    uint64_t addr;            /* bus address of the window */
    uint64_t size;
    QGuestAllocator alloc;    /* allocations inside the window */
} QVirtioRestrictedDMA;

/*
 * Find the restricted DMA capability of @dev.  Returns false if the device
 * has none.
 */
bool qvirtio_pci_find_restricted_dma(QVirtioPCIDevice *dev, uint8_t *bar,
                                     uint32_t *offset, uint32_t *length);

/*
 * Map the window BAR of @dev (which must have the capability) and build an
 * allocator over the window, for rings and buffers.
 */
void qvirtio_restricted_dma_map(QVirtioRestrictedDMA *w,
                                QVirtioPCIDevice *dev);

/*
 * Move the window BAR to the next free bus address, as a guest that
 * reassigns BARs does, and rebuild the allocator there.  Returns the old
 * bus address.
 */
uint64_t qvirtio_restricted_dma_move(QVirtioRestrictedDMA *w);

void qvirtio_restricted_dma_unmap(QVirtioRestrictedDMA *w);

/*
 * Set up virtqueue @index of a modern virtio-pci device with its rings
 * allocated from @alloc, except the used ring, which is put at @used
 * (a driver that places one ring elsewhere).
 */
QVirtQueue *qvirtio_pci_virtqueue_setup_used_at(QVirtioPCIDevice *d,
                                                QGuestAllocator *alloc,
                                                uint16_t index,
                                                uint64_t used);

#endif
