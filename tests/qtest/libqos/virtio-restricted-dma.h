/*
 * libqos: a harness for tests of virtio devices with restricted DMA
 *
 * One machine per test, started with the target's defaults (x86 "pc",
 * arm "virt") or the machine the test names; the device under test found
 * on virtio-pci or virtio-mmio; its window, a BAR or a restricted-dma-pool,
 * found through QMP and QOM, with an allocator over it for rings and
 * buffers; the status queries; QEMU run for a configuration error; a
 * device_add that must be refused and cost nothing.
 *
 * Migration goes through tests/qtest/migration/ (migrate_qmp(),
 * wait_for_migration_complete()), called by the tests: libqos is linked
 * into every qtest and into the fuzzer, which do not link those helpers,
 * so this file offers only what comes after, qrestricted_adopt().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef LIBQOS_VIRTIO_RESTRICTED_DMA_H
#define LIBQOS_VIRTIO_RESTRICTED_DMA_H

#include "qobject/qdict.h"
#include "standard-headers/linux/virtio_config.h"
#include "libqos-malloc.h"
#include "generic-pcihost.h"
#include "virtio-mmio.h"
#include "virtio-pci.h"

/* the virtio-pci vendor capability that locates the window */
#define QVIRTIO_PCI_CAP_RESTRICTED_DMA_CFG 10
#define QVIRTIO_F_RESTRICTED_DMA 27

/* what an aware driver accepts */
#define QRESTRICTED_F_AWARE ((1ULL << VIRTIO_F_VERSION_1) | \
                             (1ULL << VIRTIO_F_ACCESS_PLATFORM) | \
                             (1ULL << QVIRTIO_F_RESTRICTED_DMA))

#define QRESTRICTED_TIMEOUT_US (30 * 1000 * 1000)
#define QRESTRICTED_ARM_RAM_BASE 0x40000000ULL
/* arm virt: where the first -device virtio-*-device lands, and the next */
#define QRESTRICTED_MMIO_LAST 0x0a003e00ULL
#define QRESTRICTED_MMIO_STRIDE 0x200
#define QRESTRICTED_MAX_DEVICES 2
#define QRESTRICTED_MAX_POOLS 2
#define QRESTRICTED_MAX_IMAGES 2

typedef struct QRestrictedMachine QRestrictedMachine;

/* A restricted DMA window, as a driver sees it. */
typedef struct QRestrictedWindow {
    uint64_t base;            /* bus address of its first byte */
    uint64_t size;
    QGuestAllocator alloc;    /* rings and buffers, inside the window */
    bool has_alloc;
    char *pool;               /* a pool: its id */
    QVirtioPCIDevice *pci;    /* a BAR: the device, the BAR, the offset */
    uint8_t bar;
    uint32_t offset;
    uint64_t bar_addr;        /* bus address of the BAR */
} QRestrictedWindow;

/* The device under test, and the driver's view of it. */
typedef struct QRestrictedDevice {
    QRestrictedMachine *m;
    char *id;                 /* its -device id */
    char *path;               /* QOM path of its VirtIODevice */
    int devfn;                /* on virtio-pci, or -1 */
    QVirtioDevice *vdev;
    QVirtioPCIDevice *pci;    /* on virtio-pci */
    QVirtioMMIODevice mmio;   /* on virtio-mmio */
    QRestrictedWindow *win;   /* its window, once qrestricted_window() */
    QRestrictedWindow bar;    /* a BAR window lives here */
} QRestrictedDevice;

struct QRestrictedMachine {
    /* set before qrestricted_start(), or left 0 for the default */
    const char *machine;      /* -M: "pc" on x86, "virt" on arm, or ... */
    uint64_t ram_mb;          /* -m: QEMU's on x86, 256 on arm */
    bool shared_ram;          /* guest RAM a shared memfd (vhost-user) */

    QTestState *qts;
    bool x86;
    QGuestAllocator ram;      /* guest RAM outside every window */
    QPCIBus *bus;
    QGenericPCIBus gbus;
    QRestrictedDevice dev[QRESTRICTED_MAX_DEVICES];
    int ndev;
    QRestrictedWindow pool[QRESTRICTED_MAX_POOLS];
    int npools;
    char *img[QRESTRICTED_MAX_IMAGES];
    int nimg;
};

/* ---- machines ------------------------------------------------------ */

/* Is @machine (NULL: the target's default) an x86 machine type? */
bool qrestricted_machine_is_x86(const char *machine);

/*
 * The arguments that start @machine (NULL: the target's default), with
 * @ram_mb of RAM (0: the default): -M, -m, and on arm "-cpu max".
 * Machines with virtio-mmio transports (virt, microvm) get
 * "-global virtio-mmio.force-legacy=false": a legacy transport cannot
 * carry a restricted device.
 */
char *qrestricted_machine_args(const char *machine, uint64_t ram_mb);

/* Start QEMU with -nodefaults and @fmt; an allocator and the PCI bus. */
void G_GNUC_PRINTF(2, 3) qrestricted_start(QRestrictedMachine *m,
                                           const char *fmt, ...);

/* Let go of the devices, the windows, the images, and quit QEMU. */
void qrestricted_stop(QRestrictedMachine *m);

/*
 * A zeroed raw disk image of @size bytes, unlinked by qrestricted_stop();
 * the path is @m's.
 */
const char *qrestricted_image(QRestrictedMachine *m, size_t size);

/* ---- the device and its window ------------------------------------- */

/*
 * The virtio-pci device at @devfn, -device id @id: found, enabled, and
 * reset with ACKNOWLEDGE and DRIVER set.
 */
QRestrictedDevice *qrestricted_pci(QRestrictedMachine *m, int devfn,
                                   const char *id);

/*
 * The @nth virtio-*-device given on the command line (arm virt), on a
 * version 2 virtio-mmio transport, likewise.
 */
QRestrictedDevice *qrestricted_mmio(QRestrictedMachine *m, int nth,
                                    const char *id);

/* The device was unplugged: let go of the driver's view of it. */
void qrestricted_release(QRestrictedDevice *d);

/*
 * The device's window, as x-query-virtio-status describes it: a BAR,
 * which is mapped (the guest assigns it an address), or a pool, whose
 * placed address is read from QOM.  Devices sharing a pool share its
 * window and its allocator.
 */
QRestrictedWindow *qrestricted_window(QRestrictedDevice *d);

/* The window of the restricted-dma-pool @id, its base read from QOM. */
QRestrictedWindow *qrestricted_pool(QRestrictedMachine *m, const char *id);

/* A fresh allocator over the window, as a driver that starts over. */
void qrestricted_window_reset(QRestrictedWindow *w);

/*
 * Move a BAR window to the next free bus address, as a guest that
 * reassigns BARs does, with a fresh allocator there.  Returns the old
 * base.
 */
uint64_t qrestricted_window_move(QRestrictedWindow *w);

/* Find the restricted DMA capability of @dev; false if it has none. */
bool qrestricted_find_cap(QVirtioPCIDevice *dev, uint8_t *bar,
                          uint32_t *offset, uint32_t *length);

/* The device's features; those of an aware driver must be offered. */
uint64_t qrestricted_offered(QRestrictedDevice *d);

/*
 * What an aware driver accepts: the restricted DMA features and indirect
 * descriptors, if offered; FEATURES_OK must latch.
 */
void qrestricted_negotiate(QRestrictedDevice *d);

/*
 * An aware driver on a device with ACKNOWLEDGE and DRIVER set: negotiate,
 * queue 0 in the window, DRIVER_OK.
 */
QVirtQueue *qrestricted_driver(QRestrictedDevice *d);

/* Reset the device and start the aware driver again. */
QVirtQueue *qrestricted_restart(QRestrictedDevice *d);

/* Write @features and FEATURES_OK; returns whether FEATURES_OK latched. */
bool qrestricted_try_features(QRestrictedDevice *d, uint64_t features);

uint8_t qrestricted_dev_status(QRestrictedDevice *d);

/* DRIVER_OK from a driver that does not look at what the device says */
void qrestricted_force_driver_ok(QRestrictedDevice *d);

/*
 * Set up virtqueue @index of a modern virtio-pci device with its rings
 * allocated from @alloc, except the used ring, which is put at @used
 * (a driver that places one ring elsewhere).
 */
QVirtQueue *qrestricted_virtqueue_setup_used_at(QVirtioPCIDevice *d,
                                                QGuestAllocator *alloc,
                                                uint16_t index,
                                                uint64_t used);

/*
 * After a migration to @dst: the driver's view of @src's device there,
 * with the BARs where the guest put them, the features it negotiated,
 * and its window, whose allocator (what the driver allocated) moves to
 * the new device.  Queues go on as they were: set their vdev.
 */
QRestrictedDevice *qrestricted_adopt(QRestrictedMachine *dst,
                                     QRestrictedDevice *src);

/* ---- status -------------------------------------------------------- */

/* The "restricted-dma" member of x-query-virtio-status of @path. */
QDict *qrestricted_query(QTestState *qts, const char *path);
QDict *qrestricted_status(QRestrictedDevice *d);
int64_t qrestricted_int(QRestrictedDevice *d, const char *key);
bool qrestricted_bool(QRestrictedDevice *d, const char *key);

/*
 * Wait for the next VIRTIO_RESTRICTED_DMA_VIOLATION event and check it:
 * the device, what access, where and how long, and the device's window.
 */
void qrestricted_expect_violation(QRestrictedDevice *d, const char *access,
                                  uint64_t addr, uint64_t len);

/* Wait until the device reports NEEDS_RESET. */
void qrestricted_wait_needs_reset(QRestrictedDevice *d);

/*
 * Let QEMU's main loop run, so that a kick (an ioeventfd) the device would
 * act on has been handled.
 */
void qrestricted_settle(QTestState *qts);

/* A canary: fill guest memory with @byte, check it is still there. */
void qrestricted_fill(QTestState *qts, uint64_t addr, uint8_t byte,
                      size_t len);
void qrestricted_assert_filled(QTestState *qts, uint64_t addr, uint8_t byte,
                               size_t len);

/* ---- virtio-blk ---------------------------------------------------- */

/*
 * Queue a virtio-blk request (header and status allocated from @a, the
 * data at @data) and kick; returns its head.  *@status is the address of
 * its status byte, 0xff until the device completes it.
 */
uint32_t qrestricted_blk_submit(QRestrictedDevice *d, QVirtQueue *vq,
                                QGuestAllocator *a, uint32_t type,
                                uint64_t sector, uint64_t data, uint32_t len,
                                uint64_t *status);

/* ... and wait for it; returns its status.  Header and status: window. */
uint8_t qrestricted_blk_io(QRestrictedDevice *d, QVirtQueue *vq,
                           uint32_t type, uint64_t sector, uint64_t data,
                           uint32_t len);

/* The test pattern: byte i is @seed + 7 * i. */
void qrestricted_pattern(uint8_t *buf, size_t len, uint8_t seed);

/*
 * Write @len bytes of the pattern from a window buffer to @sector and read
 * them back into another, zeroed one; they must match, and so must
 * @image at @sector, if given.
 */
void qrestricted_blk_roundtrip(QRestrictedDevice *d, QVirtQueue *vq,
                               uint64_t sector, size_t len, uint8_t seed,
                               const char *image);

/* ---- virtio-rng ---------------------------------------------------- */

/* Read @len random bytes into a window buffer, and copy them to @buf. */
void qrestricted_rng_read(QRestrictedDevice *d, QVirtQueue *vq, uint8_t *buf,
                          uint32_t len);

/* ---- hostile drivers ---------------------------------------------- */

/*
 * A driver that goes on after the device broke: DRIVER_OK, and a read
 * request whose buffer (allocated from @a) holds a canary, like @len
 * bytes at @used (its used ring).  The device touches neither, completes
 * nothing, and counts no violation more than the one it had.
 */
void qrestricted_assert_inert(QRestrictedDevice *d, QVirtQueue *vq,
                              QGuestAllocator *a, uint64_t used,
                              size_t len);

/*
 * A read request whose buffer is @len bytes at @data: a violation, the
 * device breaks, @canary_len bytes at @canary keep their canary, and
 * nothing completes.
 */
void qrestricted_hostile_buffer(QRestrictedDevice *d, QVirtQueue *vq,
                                uint64_t data, uint32_t len, uint64_t canary,
                                size_t canary_len);

/*
 * A read request through an indirect table in guest RAM outside the
 * window, its buffer there too: a violation, and nothing is touched.
 */
void qrestricted_hostile_indirect(QRestrictedDevice *d, QVirtQueue *vq);

/* ---- any device: requests as chains of buffers --------------------- */

/* The byte that a canary outside the window is filled with */
#define QRESTRICTED_CANARY 0xa5

/* One buffer of a request: where, how long, and who writes it. */
typedef struct QRestrictedBuf {
    uint64_t addr;
    uint32_t len;
    bool write;               /* the device writes it */
} QRestrictedBuf;

/*
 * An aware driver with queues 0 to @n - 1 in the window (@vqs): it accepts
 * the restricted DMA features, indirect descriptors and those of
 * @features that the device offers; then DRIVER_OK.
 */
void qrestricted_driver_queues(QRestrictedDevice *d, uint64_t features,
                               int n, QVirtQueue **vqs);

/* @len bytes in the window, holding @data (NULL: zeroes) */
uint64_t qrestricted_put(QRestrictedDevice *d, const void *data, size_t len);

/* @len bytes of guest RAM outside every window, holding the canary */
uint64_t qrestricted_canary(QRestrictedDevice *d, size_t len);

/* Queue the chain @bufs (@n of them) on @vq and kick; returns its head. */
uint32_t qrestricted_submit_chain(QRestrictedDevice *d, QVirtQueue *vq,
                                  const QRestrictedBuf *bufs, int n);

/*
 * Wait until the device has used the chain @head on @vq; returns the
 * length it wrote.  It polls the used ring, not the ISR, which the
 * queues of a device share and which a read clears.
 */
uint32_t qrestricted_wait_used(QRestrictedDevice *d, QVirtQueue *vq,
                               uint32_t head);

/* Submit the chain @bufs and wait for it; returns the length written. */
uint32_t qrestricted_call(QRestrictedDevice *d, QVirtQueue *vq,
                          const QRestrictedBuf *bufs, int n);

/* The used index of @vq, as the device last wrote it */
uint16_t qrestricted_used_idx(QRestrictedDevice *d, QVirtQueue *vq);

/*
 * What a hostile request must come to: the violation event for @access
 * at @addr, @len bytes; NEEDS_RESET; @canary_len bytes at @canary still
 * hold the canary; nothing more on @vq's used ring than @idx; and one
 * violation counted.
 */
void qrestricted_assert_broken(QRestrictedDevice *d, QVirtQueue *vq,
                               uint16_t idx, const char *access,
                               uint64_t addr, uint64_t len, uint64_t canary,
                               size_t canary_len);

/* ---- QEMU that must not start, or must refuse a device_add --------- */

/*
 * Run QEMU (QTEST_QEMU_BINARY) with @machine (see
 * qrestricted_machine_args(); "none" for -M none) and @args until the
 * machine is created, then quit it from the monitor.  Returns its exit
 * status (-1 if it did not exit normally), its stderr in *@err.
 */
int qrestricted_run(const char *machine, const char *args, char **err);

/*
 * The same, which must exit with @status and say @message on stderr:
 * for a configuration error, status 1, not a crash, not a hang.
 */
void qrestricted_assert_run(const char *machine, const char *args,
                            int status, const char *message);

/*
 * A refused device_add costs nothing.  qrestricted_plug_refused() starts
 * the machine for hot-plug (x86: q35; arm: virt) with a PCIe root port
 * "rp0" and @backend, and device_add @driver with id "dev0" on rp0 and
 * the JSON members @bad.  QEMU must refuse it with an error that says
 * @message (or p->message: a QMP error has no hints, where the error at
 * startup may say more).  Then nothing of the device is left, every
 * backend on @backend (-drive, -blockdev, -netdev, -chardev, -object) is
 * still there, and device_add @good_driver (or @driver) with @good and
 * the same backends works: the device answers x-query-virtio-status.
 * Failures are reported with g_test_fail(), so that the next case runs.
 * It returns the machine, for more checks: qtest_quit() it.
 */
typedef struct QRestrictedPlug {
    const char *backend;      /* the backends and any other arguments */
    const char *driver;
    const char *bad;          /* JSON members, e.g. "'drive': 'd0'" */
    const char *good;
    const char *good_driver;  /* NULL: @driver */
    const char *message;      /* NULL: what qrestricted_plug_refused() says */
} QRestrictedPlug;

QTestState *qrestricted_plug_refused(const QRestrictedPlug *p,
                                     const char *message);

/* device_add @driver, id @id, with the JSON members @props; the reply */
QDict *qrestricted_device_add(QTestState *qts, const char *driver,
                              const char *id, const char *props);

/* Is every backend that @args creates still there? */
void qrestricted_assert_backends(QTestState *qts, const char *args);

#endif
