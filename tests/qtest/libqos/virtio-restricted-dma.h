/*
 * libqos: virtio-pci devices with a restricted DMA window in a BAR
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef LIBQOS_VIRTIO_RESTRICTED_DMA_H
#define LIBQOS_VIRTIO_RESTRICTED_DMA_H

#include "qobject/qdict.h"
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

/*
 * Helpers for tests of restricted DMA, whichever the window.
 */

/* The "restricted-dma" member of x-query-virtio-status of @path. */
QDict *qvirtio_rdma_query(QTestState *qts, const char *path);
int64_t qvirtio_rdma_query_int(QTestState *qts, const char *path,
                               const char *key);
bool qvirtio_rdma_query_bool(QTestState *qts, const char *path,
                             const char *key);

/*
 * Wait for the next VIRTIO_RESTRICTED_DMA_VIOLATION event and check it:
 * which device, what access, where and how long, and the window.
 */
void qvirtio_rdma_expect_violation(QTestState *qts, const char *device,
                                   const char *qom_path, const char *access,
                                   uint64_t addr, uint64_t len,
                                   uint64_t window, uint64_t window_size);

/* A canary: fill guest memory with @byte, check it is still there. */
void qvirtio_rdma_fill(QTestState *qts, uint64_t addr, uint8_t byte,
                       size_t len);
void qvirtio_rdma_assert_filled(QTestState *qts, uint64_t addr, uint8_t byte,
                                size_t len);

/*
 * Queue a virtio-blk request (header and status allocated from @a, the
 * data at @data) and kick; returns its head.  *@status is the address of
 * its status byte, 0xff until the device completes it.
 */
uint32_t qvirtio_rdma_blk_submit(QTestState *qts, QVirtioDevice *d,
                                 QVirtQueue *vq, QGuestAllocator *a,
                                 uint32_t type, uint64_t sector,
                                 uint64_t data, uint32_t len,
                                 uint64_t *status);

/*
 * Let QEMU's main loop run, so that a kick (an ioeventfd) the device would
 * act on has been handled.
 */
void qvirtio_rdma_settle(QTestState *qts);

/* A temporary raw disk image of @size bytes; the caller unlinks it. */
char *qvirtio_rdma_make_image(size_t size);

/*
 * Run QEMU (QTEST_QEMU_BINARY) with @args until the machine is created,
 * then quit it from the monitor.  Returns its exit status (-1 if it did not
 * exit normally) and its stderr in *@err.
 */
int qvirtio_rdma_run_qemu(const char *args, char **err);

/* Wait until the device reports NEEDS_RESET. */
void qvirtio_rdma_wait_needs_reset(QTestState *qts, QVirtioDevice *d,
                                   gint64 timeout_us);

#endif
