/*
 * libqos: virtio-pci devices with a restricted DMA window in a BAR
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "virtio-pci-modern.h"
#include "virtio-restricted-dma.h"

bool qvirtio_pci_find_restricted_dma(QVirtioPCIDevice *dev, uint8_t *bar,
                                     uint32_t *offset, uint32_t *length)
{
    return qvirtio_pci_find_structure(dev, QVIRTIO_PCI_CAP_RESTRICTED_DMA_CFG,
                                      bar, offset, length, NULL);
}

static void qvirtio_restricted_dma_alloc_init(QVirtioRestrictedDMA *w)
{
    alloc_init(&w->alloc, ALLOC_NO_FLAGS, w->addr + w->offset,
               w->addr + w->offset + w->size, 64);
}

void qvirtio_restricted_dma_map(QVirtioRestrictedDMA *w,
                                QVirtioPCIDevice *dev)
{
    uint32_t length;
    uint64_t barsize;
    QPCIBar bar;

    memset(w, 0, sizeof(*w));
    w->dev = dev;
    g_assert_true(qvirtio_pci_find_restricted_dma(dev, &w->bar, &w->offset,
                                                  &length));
    bar = qpci_iomap(dev->pdev, w->bar, &barsize);
    g_assert_false(bar.is_io);
    g_assert_cmpuint(w->offset + (uint64_t)length, <=, barsize);
    w->addr = bar.addr;
    w->size = length;
    qvirtio_restricted_dma_alloc_init(w);
}

uint64_t qvirtio_restricted_dma_move(QVirtioRestrictedDMA *w)
{
    QPCIBus *bus = w->dev->pdev->bus;
    uint64_t old = w->addr;
    uint64_t size = pow2ceil(w->offset + w->size);
    uint64_t loc = QEMU_ALIGN_UP(bus->mmio_alloc_ptr, size);
    int reg = PCI_BASE_ADDRESS_0 + 4 * w->bar;

    g_assert_cmpuint(loc + size, <=, bus->mmio_limit);
    bus->mmio_alloc_ptr = loc + size;
    qpci_config_writel(w->dev->pdev, reg, loc);
    qpci_config_writel(w->dev->pdev, reg + 4, loc >> 32);
    alloc_destroy(&w->alloc);
    w->addr = loc;
    qvirtio_restricted_dma_alloc_init(w);
    return old;
}

void qvirtio_restricted_dma_unmap(QVirtioRestrictedDMA *w)
{
    alloc_destroy(&w->alloc);
}

QVirtQueue *qvirtio_pci_virtqueue_setup_used_at(QVirtioPCIDevice *d,
                                                QGuestAllocator *alloc,
                                                uint16_t index,
                                                uint64_t used)
{
    QTestState *qts = d->pdev->bus->qts;
    QVirtQueue *vq = qvirtio_pci_virtqueue_setup_common(&d->vdev, alloc,
                                                        index);
    QVirtQueuePCI *vqpci = container_of(vq, QVirtQueuePCI, vq);
    uint16_t notify_off;

    /* an empty used ring at @used */
    vq->used = used;
    qtest_writew(qts, used + offsetof(struct vring_used, flags), 0);
    qtest_writew(qts, used + offsetof(struct vring_used, idx), 0);
    d->vdev.bus->set_queue_address(&d->vdev, vq);

    notify_off = qpci_io_readw(d->pdev, d->bar, d->common_cfg_offset +
                               offsetof(struct virtio_pci_common_cfg,
                                        queue_notify_off));
    vqpci->notify_offset = d->notify_cfg_offset +
                           notify_off * d->notify_off_multiplier;
    qpci_io_writew(d->pdev, d->bar, d->common_cfg_offset +
                   offsetof(struct virtio_pci_common_cfg, queue_enable), 1);
    return vq;
}
