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
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "libqos/libqos-malloc.h"
#include "libqos/malloc-pc.h"
#include "libqos/pci-pc.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-restricted-dma.h"

#define TIMEOUT_US (30 * 1000 * 1000)
#define THROTTLE_STEP_NS (100 * 1000 * 1000)
#define SECTOR 512
#define DISK_SIZE (4 * 1024 * 1024)
#define CANARY 0xa5
#define NREQ 4
#define F(bit) (1ULL << (bit))
#define F_AWARE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_ACCESS_PLATFORM) | \
                 F(QVIRTIO_F_RESTRICTED_DMA))

typedef struct Guest {
    QTestState *qts;
    QGuestAllocator ram;
    QPCIBus *bus;
    QVirtioPCIDevice *dev;
    QVirtioDevice *vdev;
    QVirtioRestrictedDMA win;
    QVirtQueue *vq;
    char *img;
    const char *path;       /* QOM path of the VirtIODevice */
} Guest;

static void G_GNUC_PRINTF(2, 3) guest_start(Guest *g, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *extra = NULL;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!g->img) {
        g->img = qvirtio_rdma_make_image(DISK_SIZE);
    }
    g->qts = qtest_initf("-M q35 -nodefaults %s", extra);
    pc_alloc_init(&g->ram, g->qts, ALLOC_NO_FLAGS);
    g->bus = qpci_new_pc(g->qts, &g->ram);
    g->path = "/machine/peripheral/dev0/virtio-backend";
}

static void guest_release(Guest *g)
{
    if (g->dev) {
        qos_object_destroy(&g->dev->obj);
        g->dev = NULL;
    }
    qpci_free_pc(g->bus);
    alloc_destroy(&g->ram);
}

static void guest_stop(Guest *g)
{
    guest_release(g);
    qtest_quit(g->qts);
    unlink(g->img);
    g_free(g->img);
}

/* Find the device at @devfn, map its window, negotiate, queue 0. */
static void driver_start(Guest *g, int devfn)
{
    QPCIAddress addr = { .devfn = devfn };

    if (!g->dev) {
        g->dev = virtio_pci_new(g->bus, &addr);
        g_assert_nonnull(g->dev);
        g->vdev = &g->dev->vdev;
        qvirtio_pci_device_enable(g->dev);
        qvirtio_restricted_dma_map(&g->win, g->dev);
    }
    qvirtio_start_device(g->vdev);
    qvirtio_set_features(g->vdev, qvirtio_get_features(g->vdev) & F_AWARE);
    g->vq = qvirtqueue_setup(g->vdev, &g->win.alloc, 0);
    qvirtio_set_driver_ok(g->vdev);
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
    uint16_t idx = qtest_readw(g->qts, g->vq->avail + 2);

    qtest_writew(g->qts, g->vq->avail + 4 + 2 * (idx % g->vq->size), head);
    qtest_writew(g->qts, g->vq->avail + 2, idx + 1);
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
        uint64_t h = guest_alloc(&g->win.alloc, sizeof(hdr));

        b->data[i] = guest_alloc(&g->win.alloc, SECTOR);
        b->status[i] = guest_alloc(&g->win.alloc, 1);
        pattern(buf, first + i);
        qtest_memwrite(g->qts, b->data[i], buf, SECTOR);
        qtest_memwrite(g->qts, h, &hdr, sizeof(hdr));
        qtest_writeb(g->qts, b->status[i], 0xff);
        b->head[i] = qvirtqueue_add(g->qts, g->vq, h, sizeof(hdr), false,
                                    true);
        qvirtqueue_add(g->qts, g->vq, b->data[i], SECTOR, false, true);
        qvirtqueue_add(g->qts, g->vq, b->status[i], 1, true, false);
        make_available(g, b->head[i]);
    }
    if (kick) {
        g->vdev->bus->virtqueue_kick(g->vdev, g->vq);
    }
}

static int64_t queue_int(Guest *g, const char *key)
{
    QDict *rsp = qtest_qmp(g->qts, "{ 'execute': "
                           "'x-query-virtio-queue-status', 'arguments': "
                           "{ 'path': %s, 'queue': 0 } }", g->path);
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
        g_assert(g_get_monotonic_time() - start <= TIMEOUT_US);
        g_usleep(1000);
    }
}

/*
 * Let the throttled requests go: under qtest the throttle runs on the
 * virtual clock, which moves only when the test steps it.
 */
static void release_throttled(Guest *g)
{
    qtest_clock_step(g->qts, THROTTLE_STEP_NS);
    g_usleep(1000);
}

/* Wait until the device has completed every request it popped. */
static void wait_drained(Guest *g)
{
    gint64 start = g_get_monotonic_time();

    while (queue_int(g, "inuse") != 0) {
        g_assert(g_get_monotonic_time() - start <= TIMEOUT_US);
        release_throttled(g);
    }
}

static void wait_used_idx(Guest *g, uint16_t want)
{
    gint64 start = g_get_monotonic_time();

    while (qtest_readw(g->qts, g->vq->used + 2) != want) {
        g_assert(g_get_monotonic_time() - start <= TIMEOUT_US);
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
    uint64_t data = guest_alloc(&g->win.alloc, SECTOR), status;
    uint32_t head;

    pattern(want, sector);
    qtest_memwrite(g->qts, data, want, SECTOR);
    head = qvirtio_rdma_blk_submit(g->qts, g->vdev, g->vq, &g->win.alloc,
                                   VIRTIO_BLK_T_OUT, sector, data, SECTOR,
                                   &status);
    qvirtio_wait_used_elem(g->qts, g->vdev, g->vq, head, NULL, TIMEOUT_US);
    g_assert_cmpint(qtest_readb(g->qts, status), ==, VIRTIO_BLK_S_OK);
    qvirtio_rdma_fill(g->qts, data, 0, SECTOR);
    head = qvirtio_rdma_blk_submit(g->qts, g->vdev, g->vq, &g->win.alloc,
                                   VIRTIO_BLK_T_IN, sector, data, SECTOR,
                                   &status);
    qvirtio_wait_used_elem(g->qts, g->vdev, g->vq, head, NULL, TIMEOUT_US);
    g_assert_cmpint(qtest_readb(g->qts, status), ==, VIRTIO_BLK_S_OK);
    qtest_memread(g->qts, data, got, SECTOR);
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
#define CHUNK (64 * 1024)

static void test_reset_in_flight(void)
{
    Guest g = { 0 };
    Batch b;

    g.img = qvirtio_rdma_make_image(DISK_SIZE);
    guest_start(&g, BLK_THROTTLED, g.img);
    driver_start(&g, QPCI_DEVFN(4, 0));
    write_batch(&g, &b, 10, true);
    wait_in_flight(&g);
    /* the driver resets the device under its feet */
    qvirtio_reset(g.vdev);
    g_assert_cmphex(g.vdev->bus->get_status(g.vdev), ==, 0);
    /* the reset drained the requests: every write is on the disk */
    assert_on_disk(&g, 10, NREQ);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, g.path, "violations"), ==,
                    0);
    driver_start(&g, QPCI_DEVFN(4, 0));
    roundtrip(&g, 100);
    guest_stop(&g);
}

static void test_bar_move_in_flight(void)
{
    Guest g = { 0 };
    Batch b;
    uint64_t old;

    g.img = qvirtio_rdma_make_image(DISK_SIZE);
    guest_start(&g, BLK_THROTTLED, g.img);
    driver_start(&g, QPCI_DEVFN(4, 0));
    write_batch(&g, &b, 20, true);
    wait_in_flight(&g);
    old = qvirtio_restricted_dma_move(&g.win);
    g_assert_cmphex(qvirtio_rdma_query_int(g.qts, g.path, "window-address"),
                    ==, g.win.addr);
    /*
     * The requests complete; their buffers were mapped from the window's
     * RAM, which moved with the BAR, so the data reach the disk.  The used
     * ring is at the old address, outside the window now: writing it is a
     * violation, and touches nothing.
     */
    wait_drained(&g);
    qvirtio_rdma_wait_needs_reset(g.qts, g.vdev, TIMEOUT_US);
    assert_on_disk(&g, 20, NREQ);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, g.path, "violations"), ==,
                    1);
    g_assert_cmphex(old, !=, g.win.addr);
    /* the driver starts again at the window's new place */
    driver_start(&g, QPCI_DEVFN(4, 0));
    roundtrip(&g, 200);
    guest_stop(&g);
}

static void test_renegotiate_after_refusal(void)
{
    Guest g = { 0 };
    QPCIAddress addr = { .devfn = QPCI_DEVFN(4, 0) };

    g.img = qvirtio_rdma_make_image(DISK_SIZE);
    guest_start(&g, "-drive if=none,id=d0,file=%s,format=raw "
                "-device virtio-blk-pci,id=dev0,addr=4.0,drive=d0,"
                "disable-legacy=on,restricted-dma-bar-size=1M", g.img);
    g.dev = virtio_pci_new(g.bus, &addr);
    g.vdev = &g.dev->vdev;
    qvirtio_pci_device_enable(g.dev);
    qvirtio_restricted_dma_map(&g.win, g.dev);
    /* an unaware driver first */
    qvirtio_start_device(g.vdev);
    g.vdev->bus->set_features(g.vdev, F(VIRTIO_F_VERSION_1));
    g.vdev->bus->set_status(g.vdev, g.vdev->bus->get_status(g.vdev) |
                            VIRTIO_CONFIG_S_FEATURES_OK);
    g_assert_false(g.vdev->bus->get_status(g.vdev) &
                   VIRTIO_CONFIG_S_FEATURES_OK);
    /* then, after a reset, an aware one */
    driver_start(&g, QPCI_DEVFN(4, 0));
    roundtrip(&g, 5);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, g.path, "refusals"), ==, 1);
    g_assert_true(qvirtio_rdma_query_bool(g.qts, g.path, "driver-accepted"));
    guest_stop(&g);
}

/* A driver that fills the window to its last byte: all of it works. */
static void test_window_to_the_last_byte(void)
{
    Guest g = { 0 };
    uint8_t want[SECTOR], got[SECTOR];
    uint64_t end, data, status;
    uint32_t head;

    g.img = qvirtio_rdma_make_image(DISK_SIZE);
    guest_start(&g, "-drive if=none,id=d0,file=%s,format=raw "
                "-device virtio-blk-pci,id=dev0,addr=4.0,drive=d0,"
                "disable-legacy=on,restricted-dma-bar-size=1M", g.img);
    driver_start(&g, QPCI_DEVFN(4, 0));
    end = g.win.addr + g.win.offset + g.win.size;
    /* the window's last sector, its neighbour just below it canaried */
    data = end - SECTOR;
    qvirtio_rdma_fill(g.qts, data - SECTOR, CANARY, SECTOR);
    pattern(want, 7);
    qtest_memwrite(g.qts, data, want, SECTOR);
    head = qvirtio_rdma_blk_submit(g.qts, g.vdev, g.vq, &g.win.alloc,
                                   VIRTIO_BLK_T_OUT, 7, data, SECTOR,
                                   &status);
    qvirtio_wait_used_elem(g.qts, g.vdev, g.vq, head, NULL, TIMEOUT_US);
    g_assert_cmpint(qtest_readb(g.qts, status), ==, VIRTIO_BLK_S_OK);
    qvirtio_rdma_fill(g.qts, data, 0, SECTOR);
    head = qvirtio_rdma_blk_submit(g.qts, g.vdev, g.vq, &g.win.alloc,
                                   VIRTIO_BLK_T_IN, 7, data, SECTOR,
                                   &status);
    qvirtio_wait_used_elem(g.qts, g.vdev, g.vq, head, NULL, TIMEOUT_US);
    qtest_memread(g.qts, data, got, SECTOR);
    g_assert_cmpmem(got, SECTOR, want, SECTOR);
    qvirtio_rdma_assert_filled(g.qts, data - SECTOR, CANARY, SECTOR);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, g.path, "violations"), ==,
                    0);
    guest_stop(&g);
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
    uint64_t start, end, ring_end, hdrs, data, fallback, status;
    uint32_t head, len;
    int nreq, i, sectors = 0;
    uint8_t buf[SECTOR], want[SECTOR];
    g_autofree uint8_t *chunk = g_malloc(CHUNK);

    g.img = qvirtio_rdma_make_image(DISK_SIZE);
    guest_start(&g, BLK_THROTTLED_512K, g.img);
    driver_start(&g, QPCI_DEVFN(4, 0));
    start = g.win.addr + g.win.offset;
    end = start + g.win.size;
    /* the rings took the start of the window; the rest is the driver's */
    g_assert_cmphex(g.vq->desc, ==, start);
    ring_end = QEMU_ALIGN_UP(g.vq->used + 6 + 8 * g.vq->size, 4096);
    hdrs = ring_end;                      /* headers, then status bytes */
    data = ring_end + 4096;
    g_assert_cmpuint(end - data, >=, 4 * CHUNK);

    /* 64 KiB writes, the last one up to the window's last byte */
    for (nreq = 0; data < end; nreq++) {
        struct virtio_blk_outhdr hdr = {
            .type = cpu_to_le32(VIRTIO_BLK_T_OUT),
            .sector = cpu_to_le64(EXHAUST_SECTOR + sectors),
        };

        len = MIN(CHUNK, end - data);
        for (i = 0; i < len / SECTOR; i++) {
            pattern(chunk + i * SECTOR, EXHAUST_SECTOR + sectors + i);
        }
        qtest_memwrite(g.qts, data, chunk, len);
        qtest_memwrite(g.qts, hdrs + 16 * nreq, &hdr, sizeof(hdr));
        head = qvirtqueue_add(g.qts, g.vq, hdrs + 16 * nreq, sizeof(hdr),
                              false, true);
        qvirtqueue_add(g.qts, g.vq, data, len, false, true);
        qvirtqueue_add(g.qts, g.vq, hdrs + 2048 + nreq, 1, true, false);
        make_available(&g, head);
        sectors += len / SECTOR;
        data += len;
    }
    g_assert_cmphex(data, ==, end);
    g.vdev->bus->virtqueue_kick(g.vdev, g.vq);
    wait_in_flight(&g);

    /* the window is full: the next read lands outside it */
    fallback = guest_alloc(&g.ram, SECTOR);
    qvirtio_rdma_fill(g.qts, fallback, CANARY, SECTOR);
    {
        struct virtio_blk_outhdr hdr = {
            .type = cpu_to_le32(VIRTIO_BLK_T_IN),
            .sector = cpu_to_le64(EXHAUST_SECTOR),
        };

        qtest_memwrite(g.qts, hdrs + 16 * nreq, &hdr, sizeof(hdr));
        head = qvirtqueue_add(g.qts, g.vq, hdrs + 16 * nreq, sizeof(hdr),
                              false, true);
        qvirtqueue_add(g.qts, g.vq, fallback, SECTOR, true, true);
        qvirtqueue_add(g.qts, g.vq, hdrs + 2048 + nreq, 1, true, false);
        make_available(&g, head);
    }
    g.vdev->bus->virtqueue_kick(g.vdev, g.vq);
    qvirtio_rdma_expect_violation(g.qts, "dev0", g.path, "buffer", fallback,
                                  SECTOR, start, g.win.size);
    qvirtio_rdma_wait_needs_reset(g.qts, g.vdev, TIMEOUT_US);
    qvirtio_rdma_assert_filled(g.qts, fallback, CANARY, SECTOR);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, g.path, "violations"), ==,
                    1);

    /* the reset drains what the device accepted: all of it is on disk */
    qvirtio_reset(g.vdev);
    assert_on_disk(&g, EXHAUST_SECTOR, sectors);
    driver_start(&g, QPCI_DEVFN(4, 0));
    data = guest_alloc(&g.win.alloc, SECTOR);
    head = qvirtio_rdma_blk_submit(g.qts, g.vdev, g.vq, &g.win.alloc,
                                   VIRTIO_BLK_T_IN, EXHAUST_SECTOR, data,
                                   SECTOR, &status);
    qvirtio_wait_used_elem(g.qts, g.vdev, g.vq, head, NULL, TIMEOUT_US);
    g_assert_cmpint(qtest_readb(g.qts, status), ==, VIRTIO_BLK_S_OK);
    pattern(want, EXHAUST_SECTOR);
    qtest_memread(g.qts, data, buf, SECTOR);
    g_assert_cmpmem(buf, SECTOR, want, SECTOR);
    guest_stop(&g);
}

/* Give the root port at 00:02.0 bus 1 and windows over libqos's MMIO. */
static void root_port_open(Guest *g)
{
    QPCIDevice *rp = qpci_device_find(g->bus, QPCI_DEVFN(2, 0));

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
    qtest_qmp_device_add(g->qts, "virtio-blk-pci", "dev0",
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
    QDict *rsp = qtest_qmp(g->qts, "{ 'execute': 'query-block' }");
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
        g_assert(g_get_monotonic_time() - start <= TIMEOUT_US);
        g_usleep(1000);
    }
}

static void test_hotplug_root_port(void)
{
    Guest g = { 0 };

    g.img = qvirtio_rdma_make_image(DISK_SIZE);
    /* -blockdev: unlike -drive, it outlives the device it is plugged to */
    guest_start(&g, "-blockdev driver=file,node-name=f0,filename=%s "
                "-blockdev driver=raw,node-name=d0,file=f0 "
                "-device pcie-root-port,id=rp0,addr=2.0,chassis=1", g.img);
    hotplug_device(&g);
    roundtrip(&g, 30);
    g_assert_true(qvirtio_rdma_query_bool(g.qts, g.path, "window-open"));
    g_assert_true(block_attached(&g, "/machine/peripheral/dev0"));

    /* unplug: the guest's part of it is played by a system reset */
    qtest_qmp_device_del_send(g.qts, "dev0");
    qtest_system_reset_nowait(g.qts);
    qtest_qmp_eventwait(g.qts, "DEVICE_DELETED");
    qos_object_destroy(&g.dev->obj);
    g.dev = NULL;
    wait_drive_released(&g);

    /* re-plug the same device: a new window, and the data are still there */
    hotplug_device(&g);
    assert_on_disk(&g, 30, 1);
    roundtrip(&g, 31);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, g.path, "violations"), ==,
                    0);
    guest_stop(&g);
}

static void test_migration_outstanding(void)
{
    Guest src = { 0 }, dst = { 0 };
    g_autofree char *uri = g_strdup_printf("unix:/tmp/qtest-rdma-fault-%d."
                                           "sock", getpid());
    QPCIAddress addr = { .devfn = QPCI_DEVFN(4, 0) };
    Batch running, queued;
    uint64_t lo, hi;
    int i;

    src.img = qvirtio_rdma_make_image(DISK_SIZE);
    guest_start(&src, BLK_THROTTLED, src.img);
    driver_start(&src, QPCI_DEVFN(4, 0));
    /* requests in flight, and requests queued that were never kicked */
    write_batch(&src, &running, 40, true);
    wait_in_flight(&src);
    write_batch(&src, &queued, 50, false);

    dst.img = g_strdup(src.img);
    guest_start(&dst, BLK_THROTTLED " -incoming %s", dst.img, uri);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'migrate',"
                             " 'arguments': { 'uri': %s } }", uri);
    qtest_qmp_eventwait(dst.qts, "RESUME");

    /* the driver goes on on the destination */
    dst.dev = virtio_pci_new(dst.bus, &addr);
    dst.vdev = &dst.dev->vdev;
    lo = qpci_config_readl(dst.dev->pdev, PCI_BASE_ADDRESS_4) & ~0xfULL;
    hi = qpci_config_readl(dst.dev->pdev, PCI_BASE_ADDRESS_5);
    dst.dev->bar.addr = lo | hi << 32;
    dst.dev->bar.is_io = false;
    dst.vdev->features = src.vdev->features;
    dst.vdev->features_negotiated = true;
    dst.vq = src.vq;
    dst.vq->vdev = dst.vdev;
    dst.win = src.win;
    dst.vdev->bus->virtqueue_kick(dst.vdev, dst.vq);
    wait_used_idx(&dst, 2 * NREQ);
    for (i = 0; i < NREQ; i++) {
        g_assert_cmpint(qtest_readb(dst.qts, running.status[i]), ==,
                        VIRTIO_BLK_S_OK);
        g_assert_cmpint(qtest_readb(dst.qts, queued.status[i]), ==,
                        VIRTIO_BLK_S_OK);
    }
    assert_on_disk(&dst, 40, NREQ);
    assert_on_disk(&dst, 50, NREQ);
    g_assert_cmpint(qvirtio_rdma_query_int(dst.qts, dst.path, "violations"),
                    ==, 0);

    dst.win.dev = NULL;
    qos_object_destroy(&dst.dev->obj);
    dst.dev = NULL;
    guest_release(&dst);
    qtest_quit(dst.qts);
    g_free(dst.img);
    guest_stop(&src);
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
