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
 * The window comes from a *provider*, an object that implements
 * TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER: it says what memory backs the window
 * and where the window is now.  A transport names the provider of its
 * device through VirtioBusClass::get_restricted_dma (a BAR of its own, a
 * pool the user gave the device, ...).  This core knows nothing of
 * transports, pools or boards: it owns the device's private address space,
 * the policy, the confinement checks and the counters.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_RESTRICTED_DMA_H
#define HW_VIRTIO_RESTRICTED_DMA_H

#include "qemu/units.h"
#include "qom/object.h"
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

/* The properties every virtio device has. */
#define VIRTIO_RESTRICTED_DMA_PROP_POLICY "restricted-dma-policy"
#define VIRTIO_RESTRICTED_DMA_PROP_POOL "restricted-dma-pool"

/*
 * One maximum-size request: the largest single mapping a Linux restricted
 * DMA pool bounces (128 slots of 2 KiB).  The minimum window holds every
 * ring at its maximum size plus one such request.
 */
#define VIRTIO_RESTRICTED_DMA_MAX_REQUEST (256 * KiB)

extern const PropertyInfo qdev_prop_virtio_restricted_dma_policy;
#define DEFINE_PROP_VIRTIO_RESTRICTED_DMA_POLICY(_s, _f) \
    DEFINE_PROP_SIGNED(VIRTIO_RESTRICTED_DMA_PROP_POLICY, _s, _f, \
                       VIRTIO_RESTRICTED_DMA_POLICY_REFUSE, \
                       qdev_prop_virtio_restricted_dma_policy, \
                       VirtioRestrictedDmaPolicy)

/*
 * The provider of a window.
 */
#define TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER "virtio-restricted-dma-provider"

typedef struct VirtIORestrictedDMAProviderClass
    VirtIORestrictedDMAProviderClass;
DECLARE_CLASS_CHECKERS(VirtIORestrictedDMAProviderClass,
                       VIRTIO_RESTRICTED_DMA_PROVIDER,
                       TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER)

/*
 * What a transport asks for when its device is realized (see
 * VirtioBusClass::get_restricted_dma).
 */
struct VirtIORestrictedDMARequest {
    /* implements TYPE_VIRTIO_RESTRICTED_DMA_PROVIDER; NULL: no window */
    Object *provider;
    /* the property that asks for the window, for messages */
    const char *prop;
    /*
     * the transport itself tells the guest where the window is (a BAR's
     * capability), so it needs no firmware table and works for a device
     * plugged at run time
     */
    bool announced;
    /*
     * the window is closed until the transport enables DMA with
     * virtio_restricted_dma_update() (Bus Master)
     */
    bool gated;
    /* the device has a legacy interface, where bit 27 is ANY_LAYOUT */
    bool legacy;
    /* how to do without the legacy interface; freed by the core */
    char *legacy_hint;
};

struct VirtIORestrictedDMAProviderClass {
    InterfaceClass parent_class;

    /*
     * @vdev, whose transport made @req, is realized and asks for the
     * window: check that the window can serve it and record it as a user.
     * Called before anything of @vdev is built.  Optional.
     */
    bool (*attach)(Object *provider, VirtIODevice *vdev,
                   const VirtIORestrictedDMARequest *req, Error **errp);
    /*
     * @vdev no longer uses the window: it is unplugged, or its realize
     * failed after attach().  Optional.
     */
    void (*detach)(Object *provider, VirtIODevice *vdev);
    /* The memory that backs the window; all of it is the window. */
    MemoryRegion *(*get_memory)(Object *provider);
    /*
     * Where the device sees the window now: its bus address in *@addr, or
     * false while the window is not mapped.
     */
    bool (*get_address)(Object *provider, uint64_t *addr);
    /* Describe the window in @st: its kind and that kind's members. */
    void (*describe)(Object *provider, VirtioRestrictedDmaStatus *st);
};

/* @size as a property value for messages: "512K", "8M", "4096". */
char *virtio_restricted_dma_size_arg(uint64_t size);

/*
 * A window backed by @be: check that no other window or device uses the
 * backend, and claim it.  @what names the backend for the message, as the
 * user gave it.
 */
bool virtio_restricted_dma_claim_memdev(HostMemoryBackend *be,
                                        const char *what, Error **errp);
void virtio_restricted_dma_release_memdev(HostMemoryBackend *be);

/*
 * Called by virtio_device_realize() before the device is realized: ask
 * the transport for a window and check everything about it that can be
 * checked before the device is built.
 */
bool virtio_restricted_dma_realize(VirtIODevice *vdev, Error **errp);

/*
 * Called once the device is plugged into its transport: check what needs
 * the realized device (its virtqueues, its vhost backend), build the
 * device's address space and offer the feature.  The address space is
 * then vdev->dma_as.
 */
bool virtio_restricted_dma_plug(VirtIODevice *vdev, Error **errp);

/* Undo realize() and plug(), after a failed realize or on unrealize. */
void virtio_restricted_dma_unrealize(VirtIODevice *vdev);
/* The device is finalized: free the rest. */
void virtio_restricted_dma_finalize(VirtIODevice *vdev);

/* The provider of @vdev's window, or NULL. */
Object *virtio_restricted_dma_provider(VirtIODevice *vdev);

/*
 * The window may have moved, been mapped or unmapped: look where the
 * provider has it now.  @dma_enabled: the transport lets the device
 * master the bus (Bus Master for PCI); the window is closed without it.
 */
void virtio_restricted_dma_update(VirtIODevice *vdev, bool dma_enabled);

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
 * (With opt-in, a driver that skips it opts out; once latched, FEATURES_OK
 * is refused to any driver that declines the feature.)
 */
bool virtio_restricted_dma_may_run_slow(VirtIODevice *vdev);

static inline bool virtio_restricted_dma_may_run(VirtIODevice *vdev)
{
    return likely(!vdev->restricted_dma) ||
           virtio_restricted_dma_may_run_slow(vdev);
}

/* The device was reset: a new violation may be counted again. */
void virtio_restricted_dma_reset(VirtIODevice *vdev);

/*
 * Is [@addr, @addr + @len) wholly inside the open window (or is the device
 * not confined now: opt-in)?  If not, and @what is not NULL, the violation
 * is reported (guest error, trace, QMP event, counter) and the device is
 * marked broken; @what names the access for the message.  With @what NULL
 * nothing is reported: for debug and monitor paths.
 */
bool virtio_restricted_dma_check_slow(VirtIODevice *vdev, hwaddr addr,
                                      hwaddr len, const char *what);

static inline bool virtio_restricted_dma_check(VirtIODevice *vdev,
                                               hwaddr addr, hwaddr len,
                                               const char *what)
{
    return likely(!vdev->restricted_dma) ||
           virtio_restricted_dma_check_slow(vdev, addr, len, what);
}

/*
 * Are the rings of queue @n inside the window?  Reported as
 * virtio_restricted_dma_check_slow() does if @report.
 */
bool virtio_restricted_dma_check_rings(VirtIODevice *vdev, int n,
                                       bool report);

/*
 * The vhost backend of @vdev signalled an error on virtqueue @queue (its
 * vring error notifier).  The backend maps only the window, so an address
 * outside it is the likely cause: the device is marked broken and the
 * error counted, once until the device is reset.
 */
void virtio_restricted_dma_backend_error(VirtIODevice *vdev, int queue);

VirtioRestrictedDmaStatus *virtio_restricted_dma_query(VirtIODevice *vdev);

extern const VMStateDescription vmstate_virtio_restricted_dma;
/* After loading: the stream and this device agree about restricted DMA. */
int virtio_restricted_dma_post_load(VirtIODevice *vdev);

#endif
