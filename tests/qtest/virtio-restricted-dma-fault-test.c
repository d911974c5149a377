/*
 * QTest: restricted DMA under faults
 *
 * A device with a restricted DMA window (a BAR, on q35) meets the events
 * a real system throws at it: a reset while requests are in flight, the
 * guest moving the BAR while requests are in flight, renegotiation after a
 * refusal, a driver that uses the window to its last byte, a driver that
 * exhausts the window and falls back outside it, hot-unplug and
 * re-plug behind a PCIe root port, and migration with requests outstanding.
 * In each: no data are lost, nothing outside the window is touched, and
 * QEMU does not crash.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-restricted-dma.h"
#include "migration/migration-qmp.h"

#define THROTTLE_STEP_NS (100 * 1000 * 1000)
#define SECTOR 512
#define DISK_SIZE (4 * MiB)
#define CANARY 0xa5
#define NREQ 4
#define DEVFN QPCI_DEVFN(4, 0)
#define F(bit) (1ULL << (bit))

/* q35, a disk image, and the device: one queue, in its window */
typedef struct Guest {
    QRestrictedMachine m;
    QRestrictedDevice *d;
    QVirtQueue *vq;
    const char *img;
} Guest;

/* A disk image of the guest's own, unlinked when it stops */
static void guest_image(Guest *g)
{
    g->img = qrestricted_image(&g->m, DISK_SIZE);
}

static void G_GNUC_PRINTF(2, 3) guest_start(Guest *g, const char *fmt, ...)
{
    g_autofree char *extra = NULL;
    va_list ap;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g->m.machine = "q35";
    qrestricted_start(&g->m, "%s", extra);
}

/* Find the device at @devfn (once), then an aware driver on queue 0. */
static void driver_start(Guest *g, int devfn)
{
    if (!g->d) {
        g->d = qrestricted_pci(&g->m, devfn, "dev0");
    }
    g->vq = qrestricted_restart(g->d);
}

static void pattern(uint8_t *buf, int seed)
{
    int i;

    for (i = 0; i < SECTOR; i++) {
        buf[i] = seed * 37 + i;
    }
}

typedef struct Batch {
    uint64_t data[NREQ];
    uint64_t status[NREQ];
    uint32_t head[NREQ];
} Batch;

/* Make the chain at @head available, without a notification. */
static void make_available(Guest *g, uint32_t head)
{
    uint16_t idx = qtest_readw(g->m.qts, g->vq->avail + 2);

    qtest_writew(g->m.qts, g->vq->avail + 4 + 2 * (idx % g->vq->size), head);
    qtest_writew(g->m.qts, g->vq->avail + 2, idx + 1);
}

/* Queue NREQ writes of sectors @first.. (seeded patterns); kick or not. */
static void write_batch(Guest *g, Batch *b, int first, bool kick)
{
    uint8_t buf[SECTOR];
    int i;

    for (i = 0; i < NREQ; i++) {
        struct virtio_blk_outhdr hdr = {
            .type = cpu_to_le32(VIRTIO_BLK_T_OUT),
            .sector = cpu_to_le64(first + i),
        };
        uint64_t h = guest_alloc(&g->d->win->alloc, sizeof(hdr));

        b->data[i] = guest_alloc(&g->d->win->alloc, SECTOR);
        b->status[i] = guest_alloc(&g->d->win->alloc, 1);
        pattern(buf, first + i);
        qtest_memwrite(g->m.qts, b->data[i], buf, SECTOR);
        qtest_memwrite(g->m.qts, h, &hdr, sizeof(hdr));
        qtest_writeb(g->m.qts, b->status[i], 0xff);
        b->head[i] = qvirtqueue_add(g->m.qts, g->vq, h, sizeof(hdr), false,
                                    true);
        qvirtqueue_add(g->m.qts, g->vq, b->data[i], SECTOR, false, true);
        qvirtqueue_add(g->m.qts, g->vq, b->status[i], 1, true, false);
        make_available(g, b->head[i]);
    }
    if (kick) {
        g->d->vdev->bus->virtqueue_kick(g->d->vdev, g->vq);
    }
}

static int64_t queue_int(Guest *g, const char *key)
{
    QDict *rsp = qtest_qmp(g->m.qts, "{ 'execute': "
                           "'x-query-virtio-queue-status', 'arguments': "
                           "{ 'path': %s, 'queue': 0 } }", g->d->path);
    int64_t v = qdict_get_int(qdict_get_qdict(rsp, "return"), key);

    qobject_unref(rsp);
    return v;
}

/*
 * Wait until the device has popped requests it has not completed yet.  The
 * throttle lets the first request through and holds the others until the
 * virtual clock moves, so they stay in flight for as long as the test
 * needs: nothing here races with the host's I/O.
 */
static void wait_in_flight(Guest *g)
{
    gint64 start = g_get_monotonic_time();

    while (queue_int(g, "inuse") < 2) {
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        g_usleep(1000);
    }
}

/*
 * Let the throttled requests go: under qtest the throttle runs on the
 * virtual clock, which moves only when the test steps it.
 */
static void release_throttled(Guest *g)
{
    qtest_clock_step(g->m.qts, THROTTLE_STEP_NS);
    g_usleep(1000);
}

/* Wait until the device has completed every request it popped. */
static void wait_drained(Guest *g)
{
    gint64 start = g_get_monotonic_time();

    while (queue_int(g, "inuse") != 0) {
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        release_throttled(g);
    }
}

static void wait_used_idx(Guest *g, uint16_t want)
{
    gint64 start = g_get_monotonic_time();

    while (qtest_readw(g->m.qts, g->vq->used + 2) != want) {
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        release_throttled(g);
    }
}

/* The image holds the patterns of sectors [first, first + n). */
static void assert_on_disk(Guest *g, int first, int n)
{
    uint8_t want[SECTOR], got[SECTOR];
    int fd = open(g->img, O_RDONLY), i;

    g_assert_cmpint(fd, >=, 0);
    for (i = 0; i < n; i++) {
        pattern(want, first + i);
        g_assert_cmpint(pread(fd, got, SECTOR, (first + i) * SECTOR), ==,
                        SECTOR);
        g_assert_cmpmem(got, SECTOR, want, SECTOR);
    }
    close(fd);
}

/* A write and a read back through the window, right now. */
static void roundtrip(Guest *g, int sector)
{
    uint8_t want[SECTOR], got[SECTOR];
    uint64_t data = guest_alloc(&g->d->win->alloc, SECTOR);

    pattern(want, sector);
    qtest_memwrite(g->m.qts, data, want, SECTOR);
    g_assert_cmpint(qrestricted_blk_io(g->d, g->vq, VIRTIO_BLK_T_OUT, sector,
                                       data, SECTOR), ==, VIRTIO_BLK_S_OK);
    qrestricted_fill(g->m.qts, data, 0, SECTOR);
    g_assert_cmpint(qrestricted_blk_io(g->d, g->vq, VIRTIO_BLK_T_IN, sector,
                                       data, SECTOR), ==, VIRTIO_BLK_S_OK);
    qtest_memread(g->m.qts, data, got, SECTOR);
    g_assert_cmpmem(got, SECTOR, want, SECTOR);
}

/*
 * Requests in flight: a throttled drive, and no request merging, which
 * would turn a batch of adjacent writes into one request that the throttle
 * lets through at once.
 */
#define BLK_THROTTLED "-drive if=none,id=d0,file=%s,format=raw," \
                      "throttling.iops-total=4 " \
                      "-device virtio-blk-pci,id=dev0,addr=4.0,drive=d0," \
                      "request-merging=off,disable-legacy=on," \
                      "restricted-dma-bar-size=1M"

#define BLK_THROTTLED_512K "-drive if=none,id=d0,file=%s,format=raw," \
                          "throttling.iops-total=4 " \
                          "-device virtio-blk-pci,id=dev0,addr=4.0," \
                          "drive=d0,request-merging=off," \
                          "disable-legacy=on,restricted-dma-bar-size=512K"
#define EXHAUST_SECTOR 300

/* A throttled disk, and NREQ writes of sectors @first.. in flight on it */
static void start_in_flight(Guest *g, Batch *b, int first)
{
    guest_image(g);
    guest_start(g, BLK_THROTTLED, g->img);
    driver_start(g, DEVFN);
    write_batch(g, b, first, true);
    wait_in_flight(g);
}

#define CHUNK (64 * 1024)

static void test_reset_in_flight(void)
{
    Guest g = { 0 };
    Batch b;

    start_in_flight(&g, &b, 10);
    /* the driver resets the device under its feet */
    qvirtio_reset(g.d->vdev);
    g_assert_cmphex(g.d->vdev->bus->get_status(g.d->vdev), ==, 0);
    /* the reset drained the requests: every write is on the disk */
    assert_on_disk(&g, 10, NREQ);
    g_assert_cmpint(qrestricted_int(g.d, "violations"), ==, 0);
    driver_start(&g, DEVFN);
    roundtrip(&g, 100);
    qrestricted_stop(&g.m);
}

static void test_bar_move_in_flight(void)
{
    Guest g = { 0 };
    Batch b;
    uint64_t old;

    start_in_flight(&g, &b, 20);
    old = qrestricted_window_move(g.d->win);
    g_assert_cmphex(qrestricted_int(g.d, "window-address"),
                    ==, g.d->win->bar_addr);
    /*
     * The requests complete; their buffers were mapped from the window's
     * RAM, which moved with the BAR, so the data reach the disk.  The used
     * ring is at the old address, outside the window now: writing it is a
     * violation, and touches nothing.
     */
    wait_drained(&g);
    qrestricted_wait_needs_reset(g.d);
    assert_on_disk(&g, 20, NREQ);
    g_assert_cmpint(qrestricted_int(g.d, "violations"), ==, 1);
    g_assert_cmphex(old, !=, g.d->win->bar_addr);
    /* the driver starts again at the window's new place */
    driver_start(&g, DEVFN);
    roundtrip(&g, 200);
    qrestricted_stop(&g.m);
}

static void test_renegotiate_after_refusal(void)
{
    Guest g = { 0 };

    guest_image(&g);
    guest_start(&g, "-drive if=none,id=d0,file=%s,format=raw "
                "-device virtio-blk-pci,id=dev0,addr=4.0,drive=d0,"
                "disable-legacy=on,restricted-dma-bar-size=1M", g.img);
    g.d = qrestricted_pci(&g.m, DEVFN, "dev0");
    qrestricted_window(g.d);
    /* an unaware driver first */
    g_assert_false(qrestricted_try_features(g.d, F(VIRTIO_F_VERSION_1)));
    /* then, after a reset, an aware one */
    driver_start(&g, DEVFN);
    roundtrip(&g, 5);
    g_assert_cmpint(qrestricted_int(g.d, "refusals"), ==, 1);
    g_assert_true(qrestricted_bool(g.d, "driver-accepted"));
    qrestricted_stop(&g.m);
}

/* A driver that fills the window to its last byte: all of it works. */
static void test_window_to_the_last_byte(void)
{
    Guest g = { 0 };
    uint8_t want[SECTOR], got[SECTOR];
    uint64_t end, data;

    guest_image(&g);
    guest_start(&g, "-drive if=none,id=d0,file=%s,format=raw "
                "-device virtio-blk-pci,id=dev0,addr=4.0,drive=d0,"
                "disable-legacy=on,restricted-dma-bar-size=1M", g.img);
    driver_start(&g, DEVFN);
    end = g.d->win->base + g.d->win->size;
    /* the window's last sector, its neighbour just below it canaried */
    data = end - SECTOR;
    qrestricted_fill(g.m.qts, data - SECTOR, CANARY, SECTOR);
    pattern(want, 7);
    qtest_memwrite(g.m.qts, data, want, SECTOR);
    g_assert_cmpint(qrestricted_blk_io(g.d, g.vq, VIRTIO_BLK_T_OUT, 7, data,
                                       SECTOR), ==, VIRTIO_BLK_S_OK);
    qrestricted_fill(g.m.qts, data, 0, SECTOR);
    qrestricted_blk_io(g.d, g.vq, VIRTIO_BLK_T_IN, 7, data, SECTOR);
    qtest_memread(g.m.qts, data, got, SECTOR);
    g_assert_cmpmem(got, SECTOR, want, SECTOR);
    qrestricted_assert_filled(g.m.qts, data - SECTOR, CANARY, SECTOR);
    g_assert_cmpint(qrestricted_int(g.d, "violations"), ==, 0);
    qrestricted_stop(&g.m);
}

/*
 * Make a request available, without a notification: its header at slot
 * @n of @hdrs, its status byte at slot @n of the status bytes after them.
 */
static void queue_slot(Guest *g, uint64_t hdrs, int n, uint32_t type,
                       uint64_t sector, uint64_t data, uint32_t len)
{
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(type),
        .sector = cpu_to_le64(sector),
    };
    uint32_t head;

    qtest_memwrite(g->m.qts, hdrs + 16 * n, &hdr, sizeof(hdr));
    head = qvirtqueue_add(g->m.qts, g->vq, hdrs + 16 * n, sizeof(hdr), false,
                          true);
    qvirtqueue_add(g->m.qts, g->vq, data, len, type == VIRTIO_BLK_T_IN, true);
    qvirtqueue_add(g->m.qts, g->vq, hdrs + 2048 + n, 1, true, false);
    make_available(g, head);
}

/*
 * A driver that has exhausted the window: writes in flight fill every byte
 * the rings leave.  A driver whose bounce allocator then falls back to
 * memory outside the window (what a guest without a working pool would
 * do) gets a violation, not an access: the fallback buffer keeps its
 * canary, the device needs a reset, and the reset loses none of the writes
 * the device had accepted.  The driver then retries inside the window.
 */
static void test_window_exhausted(void)
{
    Guest g = { 0 };
    uint64_t start, end, ring_end, hdrs, data, fallback;
    uint32_t len;
    int nreq, i, sectors = 0;
    uint8_t buf[SECTOR], want[SECTOR];
    g_autofree uint8_t *chunk = g_malloc(CHUNK);

    guest_image(&g);
    guest_start(&g, BLK_THROTTLED_512K, g.img);
    driver_start(&g, DEVFN);
    start = g.d->win->base;
    end = start + g.d->win->size;
    /* the rings took the start of the window; the rest is the driver's */
    g_assert_cmphex(g.vq->desc, ==, start);
    ring_end = QEMU_ALIGN_UP(g.vq->used + 6 + 8 * g.vq->size, 4096);
    hdrs = ring_end;                      /* headers, then status bytes */
    data = ring_end + 4096;
    g_assert_cmpuint(end - data, >=, 4 * CHUNK);

    /* 64 KiB writes, the last one up to the window's last byte */
    for (nreq = 0; data < end; nreq++) {
        len = MIN(CHUNK, end - data);
        for (i = 0; i < len / SECTOR; i++) {
            pattern(chunk + i * SECTOR, EXHAUST_SECTOR + sectors + i);
        }
        qtest_memwrite(g.m.qts, data, chunk, len);
        queue_slot(&g, hdrs, nreq, VIRTIO_BLK_T_OUT, EXHAUST_SECTOR + sectors,
                   data, len);
        sectors += len / SECTOR;
        data += len;
    }
    g_assert_cmphex(data, ==, end);
    g.d->vdev->bus->virtqueue_kick(g.d->vdev, g.vq);
    wait_in_flight(&g);

    /* the window is full: the next read lands outside it */
    fallback = guest_alloc(&g.m.ram, SECTOR);
    qrestricted_fill(g.m.qts, fallback, CANARY, SECTOR);
    queue_slot(&g, hdrs, nreq, VIRTIO_BLK_T_IN, EXHAUST_SECTOR, fallback,
               SECTOR);
    g.d->vdev->bus->virtqueue_kick(g.d->vdev, g.vq);
    qrestricted_expect_violation(g.d, "buffer", fallback, SECTOR);
    qrestricted_wait_needs_reset(g.d);
    qrestricted_assert_filled(g.m.qts, fallback, CANARY, SECTOR);
    g_assert_cmpint(qrestricted_int(g.d, "violations"), ==, 1);

    /* the reset drains what the device accepted: all of it is on disk */
    qvirtio_reset(g.d->vdev);
    assert_on_disk(&g, EXHAUST_SECTOR, sectors);
    driver_start(&g, DEVFN);
    data = guest_alloc(&g.d->win->alloc, SECTOR);
    g_assert_cmpint(qrestricted_blk_io(g.d, g.vq, VIRTIO_BLK_T_IN,
                                       EXHAUST_SECTOR, data, SECTOR), ==,
                    VIRTIO_BLK_S_OK);
    pattern(want, EXHAUST_SECTOR);
    qtest_memread(g.m.qts, data, buf, SECTOR);
    g_assert_cmpmem(buf, SECTOR, want, SECTOR);
    qrestricted_stop(&g.m);
}

/* Give the root port at 00:02.0 bus 1 and windows over libqos's MMIO. */
static void root_port_open(Guest *g)
{
    QPCIDevice *rp = qpci_device_find(g->m.bus, QPCI_DEVFN(2, 0));

    g_assert_nonnull(rp);
    qpci_config_writeb(rp, PCI_PRIMARY_BUS, 0);
    qpci_config_writeb(rp, PCI_SECONDARY_BUS, 1);
    qpci_config_writeb(rp, PCI_SUBORDINATE_BUS, 1);
    qpci_config_writew(rp, PCI_MEMORY_BASE, 0xe000);
    qpci_config_writew(rp, PCI_MEMORY_LIMIT, 0xfff0);
    qpci_config_writew(rp, PCI_PREF_MEMORY_BASE, 0xe000);
    qpci_config_writew(rp, PCI_PREF_MEMORY_LIMIT, 0xfff0);
    qpci_config_writel(rp, PCI_PREF_BASE_UPPER32, 0);
    qpci_config_writel(rp, PCI_PREF_LIMIT_UPPER32, 0);
    qpci_config_writew(rp, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    g_free(rp);
}

static void hotplug_device(Guest *g)
{
    qtest_qmp_device_add(g->m.qts, "virtio-blk-pci", "dev0",
                         "{ 'bus': 'rp0', 'drive': 'd0',"
                         " 'disable-legacy': 'on',"
                         " 'restricted-dma-bar-size': 1048576 }");
    root_port_open(g);
    /* bus 1, device 0 */
    driver_start(g, 1 << 8);
}

/* Does a block backend still belong to a device under @qdev_prefix? */
static bool block_attached(Guest *g, const char *qdev_prefix)
{
    QDict *rsp = qtest_qmp(g->m.qts, "{ 'execute': 'query-block' }");
    QListEntry *e;
    bool found = false;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *blk = qobject_to(QDict, e->value);

        if (qdict_haskey(blk, "qdev") &&
            g_str_has_prefix(qdict_get_str(blk, "qdev"), qdev_prefix)) {
            found = true;
        }
    }
    qobject_unref(rsp);
    return found;
}

/*
 * DEVICE_DELETED comes when the device is unplugged; it lets go of its
 * drive only when it is finalized, after RCU is done with its memory
 * regions.  Wait for that before plugging the drive in again.
 */
static void wait_drive_released(Guest *g)
{
    gint64 start = g_get_monotonic_time();

    while (block_attached(g, "/machine/peripheral/dev0")) {
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        g_usleep(1000);
    }
}

static void test_hotplug_root_port(void)
{
    Guest g = { 0 };

    guest_image(&g);
    /* -blockdev: unlike -drive, it outlives the device it is plugged to */
    guest_start(&g, "-blockdev driver=file,node-name=f0,filename=%s "
                "-blockdev driver=raw,node-name=d0,file=f0 "
                "-device pcie-root-port,id=rp0,addr=2.0,chassis=1", g.img);
    hotplug_device(&g);
    roundtrip(&g, 30);
    g_assert_true(qrestricted_bool(g.d, "window-open"));
    g_assert_true(block_attached(&g, "/machine/peripheral/dev0"));

    /* unplug: the guest's part of it is played by a system reset */
    qtest_qmp_device_del_send(g.m.qts, "dev0");
    qtest_system_reset_nowait(g.m.qts);
    qtest_qmp_eventwait(g.m.qts, "DEVICE_DELETED");
    qrestricted_release(g.d);
    g.d = NULL;
    wait_drive_released(&g);

    /* re-plug the same device: a new window, and the data are still there */
    hotplug_device(&g);
    assert_on_disk(&g, 30, 1);
    roundtrip(&g, 31);
    g_assert_cmpint(qrestricted_int(g.d, "violations"), ==, 0);
    qrestricted_stop(&g.m);
}

static void test_migration_outstanding(void)
{
    Guest src = { 0 }, dst = { 0 };
    g_autofree char *uri = g_strdup_printf("unix:%s/qtest-rdma-fault-%d."
                                           "sock", g_get_tmp_dir(), getpid());
    Batch running, queued;
    int i;

    /* requests in flight, and requests queued that were never kicked */
    start_in_flight(&src, &running, 40);
    write_batch(&src, &queued, 50, false);

    /* the destination shares the source's image */
    dst.img = src.img;
    guest_start(&dst, BLK_THROTTLED " -incoming %s", dst.img, uri);
    migrate_qmp(src.m.qts, dst.m.qts, uri, NULL, "{}");
    wait_for_migration_complete(src.m.qts);
    qtest_qmp_eventwait(dst.m.qts, "RESUME");

    /* the driver goes on on the destination */
    dst.d = qrestricted_adopt(&dst.m, src.d);
    dst.vq = src.vq;
    dst.vq->vdev = dst.d->vdev;
    dst.d->vdev->bus->virtqueue_kick(dst.d->vdev, dst.vq);
    wait_used_idx(&dst, 2 * NREQ);
    for (i = 0; i < NREQ; i++) {
        g_assert_cmpint(qtest_readb(dst.m.qts, running.status[i]), ==,
                        VIRTIO_BLK_S_OK);
        g_assert_cmpint(qtest_readb(dst.m.qts, queued.status[i]), ==,
                        VIRTIO_BLK_S_OK);
    }
    assert_on_disk(&dst, 40, NREQ);
    assert_on_disk(&dst, 50, NREQ);
    g_assert_cmpint(qrestricted_int(dst.d, "violations"), ==, 0);

    qrestricted_stop(&dst.m);
    qrestricted_stop(&src.m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    module_call_init(MODULE_INIT_QOM);

    if (g_str_equal(qtest_get_arch(), "x86_64")) {
        qtest_add_func("/virtio-rdma-fault/reset-in-flight",
                       test_reset_in_flight);
        qtest_add_func("/virtio-rdma-fault/bar-move-in-flight",
                       test_bar_move_in_flight);
        qtest_add_func("/virtio-rdma-fault/renegotiate-after-refusal",
                       test_renegotiate_after_refusal);
        qtest_add_func("/virtio-rdma-fault/window-to-the-last-byte",
                       test_window_to_the_last_byte);
        qtest_add_func("/virtio-rdma-fault/window-exhausted",
                       test_window_exhausted);
        qtest_add_func("/virtio-rdma-fault/hotplug-root-port",
                       test_hotplug_root_port);
        qtest_add_func("/virtio-rdma-fault/migration-outstanding",
                       test_migration_outstanding);
    }
    return g_test_run();
}
