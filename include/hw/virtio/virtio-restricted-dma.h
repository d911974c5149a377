/*
 * Restricted DMA for virtio devices
 *
 * A virtio device with restricted DMA owns one bounce window of guest
 * memory, the only memory it ever reads or writes.  It offers
 * VIRTIO_F_RESTRICTED_DMA together with VIRTIO_F_ACCESS_PLATFORM, and a
 * policy decides whether a driver that does not accept them is refused.
 * Every access outside the window fails before it touches memory, breaks
 * the device (NEEDS_RESET) and is counted.
 *
 * This is the transport-independent core; a transport provides the window
 * (virtio-pci: a RAM-backed BAR) and tells the core where it currently is.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_RESTRICTED_DMA_H
#define HW_VIRTIO_RESTRICTED_DMA_H

#include "qemu/units.h"
#include "exec/memory.h"
#include "hw/qdev-properties.h"
#include "hw/virtio/virtio.h"
#include "qapi/qapi-types-virtio.h"

/*
 * Device-independent feature bit 27: the transport provides a bounce
 * window and the driver passes only addresses inside it.  Bit 27 is also
 * the legacy VIRTIO_F_ANY_LAYOUT, so it only means this on a modern
 * (virtio 1.x) interface.
 */
#define VIRTIO_F_RESTRICTED_DMA 27

/* virtio-pci vendor capability that locates the window in a BAR */
#define VIRTIO_PCI_CAP_RESTRICTED_DMA_CFG 10

/*
 * One maximum-size request: the largest single mapping a Linux restricted
 * DMA pool bounces (128 slots of 2 KiB).  The minimum window holds every
 * ring at its maximum size plus one such request.
 */
#define VIRTIO_RESTRICTED_DMA_MAX_REQUEST (256 * KiB)

extern const PropertyInfo qdev_prop_virtio_restricted_dma_policy;
#define DEFINE_PROP_VIRTIO_RESTRICTED_DMA_POLICY(_n, _s, _f) \
    DEFINE_PROP_SIGNED(_n, _s, _f, VIRTIO_RESTRICTED_DMA_POLICY_REFUSE, \
                       qdev_prop_virtio_restricted_dma_policy, \
                       VirtioRestrictedDmaPolicy)

/*
 * The minimum window size for @vdev: every virtqueue at its maximum size
 * (split layout: 16 bytes of descriptor, 2 of avail ring and 8 of used
 * ring per entry, plus 6 bytes of header each for avail and used, each
 * part rounded up to 16 bytes), plus VIRTIO_RESTRICTED_DMA_MAX_REQUEST.
 */
uint64_t virtio_restricted_dma_min_size(VirtIODevice *vdev);

/* @size as a property value for messages: "512K", "8M", "4096". */
char *virtio_restricted_dma_size_arg(uint64_t size);

/*
 * Can a vhost-user backend map @be (shared memory with a file
 * descriptor)?  False for NULL.
 */
bool virtio_restricted_dma_shareable(HostMemoryBackend *be);

/*
 * Device types whose vhost backend maps all of guest RAM ("vhost-*")
 * cannot be confined; vhost-user types ("vhost-user-*") can be when the
 * window is @shared (virtio_restricted_dma_shareable()), as their backend
 * is then given the window alone.  Checked before realize, so that such a
 * device fails before it waits for its backend.
 */
bool virtio_restricted_dma_check_type(const char *type, const char *prop,
                                      bool shared, Error **errp);

/*
 * Check that @vdev can be confined at all (a device type that does not
 * touch guest RAM by design, no vhost backend but vhost-user with a
 * @shared window, iommu_platform not turned off, a modern interface) and
 * that @size fits it.  @prop names the user's property in messages.
 */
bool virtio_restricted_dma_check_device(VirtIODevice *vdev, const char *prop,
                                        uint64_t size, bool shared,
                                        Error **errp);

/* restricted-dma-policy without a window is a configuration error. */
bool virtio_restricted_dma_check_unused(VirtIODevice *vdev, Error **errp);

typedef struct VirtIORestrictedDMAWindow {
    VirtioRestrictedDmaKind kind;
    MemoryRegion *backing;      /* the window is @size bytes of @backing */
    uint64_t offset;            /* ... from @offset */
    uint64_t size;
    int bar;                    /* VIRTIO_RESTRICTED_DMA_KIND_BAR: index */
    const char *pool;           /* VIRTIO_RESTRICTED_DMA_KIND_POOL: id */
} VirtIORestrictedDMAWindow;

/*
 * Give @vdev the window @w.  The window starts closed.  From now on the
 * device offers VIRTIO_F_RESTRICTED_DMA and VIRTIO_F_ACCESS_PLATFORM, and
 * virtio_restricted_dma_address_space() is its DMA address space.
 */
void virtio_restricted_dma_init(VirtIODevice *vdev,
                                const VirtIORestrictedDMAWindow *w);
/* unrealize: tear the address space down; finalize: free the rest. */
void virtio_restricted_dma_cleanup(VirtIODevice *vdev);
void virtio_restricted_dma_finalize(VirtIODevice *vdev);

/* The transport moved, opened or closed the window (bus address @base). */
void virtio_restricted_dma_set_window(VirtIODevice *vdev, bool open,
                                      hwaddr base);

/* Open or close the window where it is (Bus Master for a pool). */
void virtio_restricted_dma_set_enabled(VirtIODevice *vdev, bool open);

AddressSpace *virtio_restricted_dma_address_space(VirtIODevice *vdev);
VirtioRestrictedDmaKind virtio_restricted_dma_kind(VirtIODevice *vdev);

/*
 * A status write: with the refuse policy, FEATURES_OK from a driver that
 * did not accept both VIRTIO_F_RESTRICTED_DMA and VIRTIO_F_ACCESS_PLATFORM
 * is refused (the status write is dropped), whether or not the driver
 * accepted VERSION_1, and so is DRIVER_OK without FEATURES_OK.  Returns 0
 * or a negative errno.
 */
int virtio_restricted_dma_check_status(VirtIODevice *vdev, uint8_t val);

/*
 * May the device process its queues?  With the refuse policy, only once
 * FEATURES_OK has latched: a driver that skips negotiation gets nothing.
 */
static inline bool virtio_restricted_dma_may_run(VirtIODevice *vdev)
{
    return likely(!vdev->rdma) ||
           vdev->rdma_policy == VIRTIO_RESTRICTED_DMA_POLICY_TOLERATE ||
           (vdev->status & VIRTIO_CONFIG_S_FEATURES_OK);
}

/* The device was reset: a new violation may be counted again. */
void virtio_restricted_dma_reset(VirtIODevice *vdev);

/*
 * Is [@addr, @addr + @len) wholly inside the open window (or the device
 * not restricted)?  No side effect: for debug and monitor paths.
 */
bool virtio_restricted_dma_inside(VirtIODevice *vdev, hwaddr addr,
                                  hwaddr len);
bool virtio_restricted_dma_rings_inside(VirtIODevice *vdev, int n);

/*
 * Is the access [@addr, @addr + @len) wholly inside the open window?  If
 * not, the violation is reported (guest error, trace, QMP event, counter)
 * and the device is marked broken; @what names the access for the message.
 */
bool virtio_restricted_dma_check_slow(VirtIODevice *vdev, hwaddr addr,
                                      hwaddr len, const char *what);

static inline bool virtio_restricted_dma_check(VirtIODevice *vdev,
                                               hwaddr addr, hwaddr len,
                                               const char *what)
{
    return likely(!vdev->rdma) ||
           virtio_restricted_dma_check_slow(vdev, addr, len, what);
}

/*
 * The vhost backend of @vdev signalled an error on virtqueue @queue (its
 * vring error notifier).  The backend maps only the window, so an address
 * outside it is the likely cause: the device is marked broken and the
 * error counted, once until the device is reset.
 */
void virtio_restricted_dma_backend_error(VirtIODevice *vdev, int queue);

/* Check every ring of queue @n before the device uses it. */
bool virtio_restricted_dma_check_rings(VirtIODevice *vdev, int n);

VirtioRestrictedDmaStatus *virtio_restricted_dma_query(VirtIODevice *vdev);

extern const VMStateDescription vmstate_virtio_restricted_dma;
/* After loading: the stream and this device agree about restricted DMA. */
int virtio_restricted_dma_post_load(VirtIODevice *vdev);

#endif
