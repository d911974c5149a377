/*
 * QTest for restricted DMA of virtio-pci devices (window in a BAR)
 *
 * Runs on x86_64 "pc" and on aarch64 "virt" (generic PCIe host).  Each
 * test starts its own QEMU with the device under test at slot 4, id "dev0",
 * and drives it as a guest driver would, through libqos: it finds the
 * restricted DMA capability, maps the window BAR, and puts rings and
 * buffers in the window.  Hostile drivers put them elsewhere, over a
 * canary pattern in guest RAM that must come out unchanged.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/iov.h"
#include "qemu/module.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/libqos-malloc.h"
#include "libqos/malloc-pc.h"
#include "libqos/pci-pc.h"
#include "libqos/generic-pcihost.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-pci-modern.h"
#include "libqos/virtio-restricted-dma.h"

#define TIMEOUT_US (30 * 1000 * 1000)
#define DEV_SLOT 4
#define VDEV_PATH "/machine/peripheral/dev0/virtio-backend"
#define WINDOW_SIZE (1 * 1024 * 1024)
#define CANARY 0xa5
#define SECTOR 512
#define DISK_SIZE (1 * 1024 * 1024)
#define ARM_RAM_BASE 0x40000000ULL
#define ARM_RAM_SIZE (256 * 1024 * 1024)

#define F(bit) (1ULL << (bit))
#define F_AWARE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_ACCESS_PLATFORM) | \
                 F(QVIRTIO_F_RESTRICTED_DMA))

static const char *arch;

typedef struct Machine {
    QTestState *qts;
    QGuestAllocator ram;        /* guest RAM, outside any window */
    QPCIBus *bus;
    QGenericPCIBus gbus;
    QVirtioPCIDevice *dev;
    QVirtioDevice *vdev;
    QVirtioRestrictedDMA win;
    char *img;                  /* virtio-blk disk image */
    int sock[2];                /* virtio-net: our end is sock[0] */
    char *errfile;              /* QEMU's stderr, when captured */
} Machine;

static bool is_x86(void)
{
    return !strcmp(arch, "x86_64") || !strcmp(arch, "i386");
}

static const char *machine_args(void)
{
    return is_x86() ? "-M pc" : "-M virt -cpu max -m 256M";
}

/* Start QEMU with @args (printf-style) and find the PCI bus. */
static void G_GNUC_PRINTF(2, 3) machine_start(Machine *m, const char *fmt,
                                              ...)
{
    va_list ap;
    g_autofree char *extra = NULL;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    m->qts = qtest_initf("%s -nodefaults %s", machine_args(), extra);
    if (is_x86()) {
        pc_alloc_init(&m->ram, m->qts, ALLOC_NO_FLAGS);
        m->bus = qpci_new_pc(m->qts, &m->ram);
    } else {
        alloc_init(&m->ram, ALLOC_NO_FLAGS, ARM_RAM_BASE + 16 * 1024 * 1024,
                   ARM_RAM_BASE + ARM_RAM_SIZE, 4096);
        qpci_init_generic(&m->gbus, m->qts, &m->ram, false);
        m->bus = &m->gbus.bus;
    }
}

/* Probe the device at slot 4, enable it and start a driver on it. */
static void machine_probe(Machine *m)
{
    QPCIAddress addr = { .devfn = QPCI_DEVFN(DEV_SLOT, 0) };

    m->dev = virtio_pci_new(m->bus, &addr);
    g_assert_nonnull(m->dev);
    m->vdev = &m->dev->vdev;
    qvirtio_pci_device_enable(m->dev);
    qvirtio_start_device(m->vdev);
}

static void machine_stop(Machine *m)
{
    if (m->dev) {
        qos_object_destroy(&m->dev->obj);
        m->dev = NULL;
    }
    if (m->win.dev) {
        qvirtio_restricted_dma_unmap(&m->win);
    }
    if (is_x86()) {
        qpci_free_pc(m->bus);
    }
    alloc_destroy(&m->ram);
    qtest_quit(m->qts);
    if (m->img) {
        unlink(m->img);
        g_free(m->img);
    }
    if (m->sock[0]) {
        close(m->sock[0]);
        close(m->sock[1]);
    }
    if (m->errfile) {
        unlink(m->errfile);
        g_free(m->errfile);
    }
    memset(m, 0, sizeof(*m));
}


/* A restricted virtio-blk-pci with a file-backed disk. */
static void start_blk(Machine *m, const char *devopts)
{
    m->img = qvirtio_rdma_make_image(DISK_SIZE);
    machine_start(m, "-drive if=none,id=drive0,file=%s,format=raw "
                  "-device virtio-blk-pci,id=dev0,addr=%d.0,drive=drive0,"
                  "disable-legacy=on,%s", m->img, DEV_SLOT, devopts);
    machine_probe(m);
}

static uint64_t restricted_features(Machine *m)
{
    uint64_t f = qvirtio_get_features(m->vdev);

    g_assert_cmphex(f & F_AWARE, ==, F_AWARE);
    return f;
}

/* An aware driver: accept the feature, FEATURES_OK latches. */
static void negotiate_aware(Machine *m)
{
    uint64_t f = restricted_features(m);

    qvirtio_set_features(m->vdev, f & (F_AWARE |
                                       F(VIRTIO_RING_F_INDIRECT_DESC)));
}

static uint8_t dev_status(Machine *m)
{
    return m->vdev->bus->get_status(m->vdev);
}

/* DRIVER_OK from a driver that does not look at what the device says */
static void force_driver_ok(Machine *m)
{
    m->vdev->bus->set_status(m->vdev, dev_status(m) |
                             VIRTIO_CONFIG_S_DRIVER_OK);
}

static QDict *rdma_status(QTestState *qts)
{
    return qvirtio_rdma_query(qts, VDEV_PATH);
}

static int64_t rdma_int(QTestState *qts, const char *key)
{
    return qvirtio_rdma_query_int(qts, VDEV_PATH, key);
}

static bool rdma_bool(QTestState *qts, const char *key)
{
    return qvirtio_rdma_query_bool(qts, VDEV_PATH, key);
}

static uint32_t blk_submit(Machine *m, QVirtQueue *vq, QGuestAllocator *a,
                           uint32_t type, uint64_t sector, uint64_t data,
                           uint32_t len, uint64_t *status)
{
    return qvirtio_rdma_blk_submit(m->qts, m->vdev, vq, a, type, sector,
                                   data, len, status);
}

static void settle(Machine *m)
{
    qvirtio_rdma_settle(m->qts);
}

static void wait_needs_reset(Machine *m)
{
    qvirtio_rdma_wait_needs_reset(m->qts, m->vdev, TIMEOUT_US);
}

static void expect_violation_event(Machine *m, const char *access,
                                   uint64_t addr, uint64_t len)
{
    qvirtio_rdma_expect_violation(m->qts, "dev0", VDEV_PATH, access, addr,
                                  len, m->win.addr + m->win.offset,
                                  m->win.size);
}

/* Write @features and try FEATURES_OK; return whether it latched. */
static bool try_features(Machine *m, uint64_t features)
{
    m->vdev->bus->set_features(m->vdev, features);
    m->vdev->bus->set_status(m->vdev, dev_status(m) |
                             VIRTIO_CONFIG_S_FEATURES_OK);
    return dev_status(m) & VIRTIO_CONFIG_S_FEATURES_OK;
}








static uint8_t blk_io(Machine *m, QVirtQueue *vq, QGuestAllocator *a,
                      uint32_t type, uint64_t sector, uint64_t data,
                      uint32_t len)
{
    uint64_t status;
    uint32_t head = blk_submit(m, vq, a, type, sector, data, len, &status);

    qvirtio_wait_used_elem(m->qts, m->vdev, vq, head, NULL, TIMEOUT_US);
    return qtest_readb(m->qts, status);
}



static uint16_t used_idx(Machine *m, QVirtQueue *vq)
{
    return qtest_readw(m->qts, vq->used + offsetof(struct vring_used, idx));
}


/*
 * Write a pattern to the disk through the window and read it back into
 * another window buffer; the disk image must hold the pattern too.
 */
static void blk_roundtrip(Machine *m, QVirtQueue *vq, uint64_t sector,
                          uint8_t seed)
{
    QGuestAllocator *a = &m->win.alloc;
    size_t len = 4 * SECTOR;
    g_autofree uint8_t *pattern = g_malloc(len);
    g_autofree uint8_t *back = g_malloc(len);
    uint64_t out = guest_alloc(a, len);
    uint64_t in = guest_alloc(a, len);
    size_t i;
    int fd;

    for (i = 0; i < len; i++) {
        pattern[i] = seed + i * 7;
    }
    qtest_memwrite(m->qts, out, pattern, len);
    qvirtio_rdma_fill(m->qts, in, 0, len);
    g_assert_cmpint(blk_io(m, vq, a, VIRTIO_BLK_T_OUT, sector, out, len), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(blk_io(m, vq, a, VIRTIO_BLK_T_IN, sector, in, len), ==,
                    VIRTIO_BLK_S_OK);
    qtest_memread(m->qts, in, back, len);
    g_assert_cmpmem(back, len, pattern, len);

    fd = open(m->img, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, back, len, sector * SECTOR), ==, len);
    close(fd);
    g_assert_cmpmem(back, len, pattern, len);
}

/* Map the window, negotiate as an aware driver, queue 0 in the window. */
static QVirtQueue *blk_setup_aware(Machine *m)
{
    QVirtQueue *vq;

    if (!m->win.dev) {
        qvirtio_restricted_dma_map(&m->win, m->dev);
    }
    negotiate_aware(m);
    vq = qvirtqueue_setup(m->vdev, &m->win.alloc, 0);
    qvirtio_set_driver_ok(m->vdev);
    return vq;
}

/* After a violation: reset, renegotiate, and I/O works again. */
static void reset_and_recover(Machine *m)
{
    QVirtQueue *vq;

    qvirtio_reset(m->vdev);
    g_assert_cmphex(dev_status(m), ==, 0);
    qvirtio_set_acknowledge(m->vdev);
    qvirtio_set_driver(m->vdev);
    alloc_destroy(&m->win.alloc);
    alloc_init(&m->win.alloc, ALLOC_NO_FLAGS, m->win.addr + m->win.offset,
               m->win.addr + m->win.offset + m->win.size, 64);
    negotiate_aware(m);
    vq = qvirtqueue_setup(m->vdev, &m->win.alloc, 0);
    qvirtio_set_driver_ok(m->vdev);
    blk_roundtrip(m, vq, 8, 0x31);
    g_assert_false(dev_status(m) & VIRTIO_CONFIG_S_NEEDS_RESET);
    g_assert_true(rdma_bool(m->qts, "driver-accepted"));
    g_assert_cmpint(rdma_int(m->qts, "violations"), ==, 1);
}

/* ------------------------------------------------------------------ */

static void test_capability(void)
{
    Machine m = { 0 };
    uint8_t bar;
    uint32_t offset, length;
    g_autoptr(QDict) st = NULL;

    m.img = qvirtio_rdma_make_image(DISK_SIZE);
    machine_start(&m, "-drive if=none,id=drive0,file=%s,format=raw "
                  "-device virtio-blk-pci,id=dev0,addr=%d.0,drive=drive0,"
                  "disable-legacy=on,restricted-dma-bar-size=1M", m.img,
                  DEV_SLOT);
    /* memory decoding and Bus Master are off: the window is closed */
    st = rdma_status(m.qts);
    g_assert_cmpstr(qdict_get_str(st, "kind"), ==, "bar");
    g_assert_cmpint(qdict_get_int(st, "bar"), ==, 2);
    g_assert_cmpstr(qdict_get_str(st, "policy"), ==, "refuse");
    g_assert_false(qdict_get_bool(st, "window-open"));
    machine_probe(&m);

    g_assert_true(qvirtio_pci_find_restricted_dma(m.dev, &bar, &offset,
                                                  &length));
    g_assert_cmpint(bar, ==, 2);
    g_assert_cmpint(offset, ==, 0);
    g_assert_cmpint(length, ==, WINDOW_SIZE);
    /* a 64-bit prefetchable memory BAR */
    g_assert_cmphex(qpci_config_readl(m.dev->pdev, PCI_BASE_ADDRESS_2) & 0xf,
                    ==, PCI_BASE_ADDRESS_SPACE_MEMORY |
                    PCI_BASE_ADDRESS_MEM_TYPE_64 |
                    PCI_BASE_ADDRESS_MEM_PREFETCH);
    restricted_features(&m);

    qvirtio_restricted_dma_map(&m.win, m.dev);
    g_assert_true(rdma_bool(m.qts, "window-open"));
    g_assert_cmphex(rdma_int(m.qts, "window-address"), ==, m.win.addr);
    machine_stop(&m);
}

static void test_bar_option(void)
{
    Machine m = { 0 };
    uint8_t bar;
    uint32_t offset, length;

    /* without MSI-X, BARs 0 and 1 are free */
    start_blk(&m, "restricted-dma-bar-size=2M,restricted-dma-bar=0,vectors=0");
    g_assert_true(qvirtio_pci_find_restricted_dma(m.dev, &bar, &offset,
                                                  &length));
    g_assert_cmpint(bar, ==, 0);
    g_assert_cmpint(length, ==, 2 * 1024 * 1024);
    machine_stop(&m);
}

static void test_blk_io(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    g_autoptr(QDict) st = NULL;

    start_blk(&m, "restricted-dma-bar-size=1M");
    vq = blk_setup_aware(&m);
    /* the rings are in the window */
    g_assert_cmphex(vq->desc, >=, m.win.addr);
    g_assert_cmphex(vq->used, <, m.win.addr + m.win.size);
    blk_roundtrip(&m, vq, 0, 0x10);
    blk_roundtrip(&m, vq, 100, 0x20);

    st = rdma_status(m.qts);
    g_assert_true(qdict_get_bool(st, "driver-accepted"));
    g_assert_cmpint(qdict_get_int(st, "violations"), ==, 0);
    g_assert_cmpint(qdict_get_int(st, "refusals"), ==, 0);
    machine_stop(&m);
}

static void test_blk_indirect_io(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    QVRingIndirectDesc *ind;
    QGuestAllocator *a;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(VIRTIO_BLK_T_IN),
        .sector = cpu_to_le64(0),
    };
    uint64_t hdr_addr, data, status;
    uint32_t head;

    start_blk(&m, "restricted-dma-bar-size=1M");
    vq = blk_setup_aware(&m);
    a = &m.win.alloc;
    blk_roundtrip(&m, vq, 0, 0x40);

    /* an indirect table inside the window works */
    hdr_addr = guest_alloc(a, sizeof(hdr));
    data = guest_alloc(a, SECTOR);
    status = guest_alloc(a, 1);
    qtest_memwrite(m.qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(m.qts, status, 0xff);
    ind = qvring_indirect_desc_setup(m.qts, m.vdev, a, 3);
    qvring_indirect_desc_add(m.vdev, m.qts, ind, hdr_addr, sizeof(hdr),
                             false);
    qvring_indirect_desc_add(m.vdev, m.qts, ind, data, SECTOR, true);
    qvring_indirect_desc_add(m.vdev, m.qts, ind, status, 1, true);
    head = qvirtqueue_add_indirect(m.qts, vq, ind);
    qvirtqueue_kick(m.qts, m.vdev, vq, head);
    qvirtio_wait_used_elem(m.qts, m.vdev, vq, head, NULL, TIMEOUT_US);
    g_assert_cmpint(qtest_readb(m.qts, status), ==, VIRTIO_BLK_S_OK);
    g_assert_cmphex(qtest_readb(m.qts, data), ==, 0x40);
    g_free(ind);
    machine_stop(&m);
}

static void test_net_io(void)
{
    Machine m = { 0 };
    QVirtQueue *rx, *tx;
    QGuestAllocator *a;
    uint64_t buf;
    uint32_t head, len;
    char test[] = "TEST";
    char buffer[64];
    uint32_t be_len = htonl(sizeof(test));
    struct iovec iov[] = {
        { .iov_base = &be_len, .iov_len = sizeof(be_len) },
        { .iov_base = test, .iov_len = sizeof(test) },
    };
    size_t hdr = sizeof(struct virtio_net_hdr_mrg_rxbuf);

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, m.sock), ==, 0);
    machine_start(&m, "-netdev socket,fd=%d,id=hs0 "
                  "-device virtio-net-pci,id=dev0,addr=%d.0,netdev=hs0,"
                  "disable-legacy=on,restricted-dma-bar-size=1M",
                  m.sock[1], DEV_SLOT);
    machine_probe(&m);
    qvirtio_restricted_dma_map(&m.win, m.dev);
    negotiate_aware(&m);
    rx = qvirtqueue_setup(m.vdev, &m.win.alloc, 0);
    tx = qvirtqueue_setup(m.vdev, &m.win.alloc, 1);
    qvirtio_set_driver_ok(m.vdev);
    a = &m.win.alloc;

    /* receive into a window buffer */
    buf = guest_alloc(a, 64);
    head = qvirtqueue_add(m.qts, rx, buf, 64, true, false);
    qvirtqueue_kick(m.qts, m.vdev, rx, head);
    g_assert_cmpint(iov_send(m.sock[0], iov, 2, 0,
                             sizeof(be_len) + sizeof(test)), ==,
                    sizeof(be_len) + sizeof(test));
    qvirtio_wait_used_elem(m.qts, m.vdev, rx, head, NULL, TIMEOUT_US);
    qtest_memread(m.qts, buf + hdr, buffer, sizeof(test));
    g_assert_cmpstr(buffer, ==, "TEST");

    /* transmit from a window buffer */
    buf = guest_alloc(a, 64);
    qvirtio_rdma_fill(m.qts, buf, 0, hdr);
    qtest_memwrite(m.qts, buf + hdr, "SENT", 5);
    head = qvirtqueue_add(m.qts, tx, buf, hdr + 5, false, false);
    qvirtqueue_kick(m.qts, m.vdev, tx, head);
    qvirtio_wait_used_elem(m.qts, m.vdev, tx, head, NULL, TIMEOUT_US);
    g_assert_cmpint(recv(m.sock[0], &len, sizeof(len), 0), ==, sizeof(len));
    g_assert_cmpint(ntohl(len), ==, 5);
    g_assert_cmpint(recv(m.sock[0], buffer, 5, 0), ==, 5);
    g_assert_cmpstr(buffer, ==, "SENT");

    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 0);
    machine_stop(&m);
}

static void test_rng_io(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t buf;
    uint32_t head, len = 0;
    uint8_t data[64];
    size_t i, zeros = 0;

    machine_start(&m, "-device virtio-rng-pci,id=dev0,addr=%d.0,"
                  "disable-legacy=on,restricted-dma-bar-size=1M", DEV_SLOT);
    machine_probe(&m);
    qvirtio_restricted_dma_map(&m.win, m.dev);
    negotiate_aware(&m);
    vq = qvirtqueue_setup(m.vdev, &m.win.alloc, 0);
    qvirtio_set_driver_ok(m.vdev);

    buf = guest_alloc(&m.win.alloc, sizeof(data));
    qvirtio_rdma_fill(m.qts, buf, 0, sizeof(data));
    head = qvirtqueue_add(m.qts, vq, buf, sizeof(data), true, false);
    qvirtqueue_kick(m.qts, m.vdev, vq, head);
    qvirtio_wait_used_elem(m.qts, m.vdev, vq, head, &len, TIMEOUT_US);
    g_assert_cmpint(len, ==, sizeof(data));
    qtest_memread(m.qts, buf, data, sizeof(data));
    for (i = 0; i < sizeof(data); i++) {
        zeros += !data[i];
    }
    /* 64 random bytes: all but a handful are non-zero */
    g_assert_cmpint(zeros, <, 16);
    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 0);
    machine_stop(&m);
}

/* ---- the policy ---------------------------------------------------- */

/* A driver that declines @bit, of the two restricted DMA needs. */
static void refuse_without(uint64_t bit)
{
    Machine m = { 0 };
    uint64_t f;

    start_blk(&m, "restricted-dma-bar-size=1M");
    f = restricted_features(&m);
    g_assert_false(try_features(&m, f & (F_AWARE & ~bit)));
    g_assert_cmpint(rdma_int(m.qts, "refusals"), ==, 1);
    g_assert_false(rdma_bool(m.qts, "driver-accepted"));
    machine_stop(&m);
}

static void test_refuse_without_feature(void)
{
    refuse_without(F(QVIRTIO_F_RESTRICTED_DMA));
}

static void test_refuse_without_access_platform(void)
{
    refuse_without(F(VIRTIO_F_ACCESS_PLATFORM));
}

static void test_refuse_driver_ok_without_features_ok(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t data, status;

    start_blk(&m, "restricted-dma-bar-size=1M");
    qvirtio_restricted_dma_map(&m.win, m.dev);
    /* a driver that skips negotiation and sets up a queue anyway */
    m.vdev->bus->set_features(m.vdev, F(VIRTIO_F_VERSION_1));
    m.vdev->features_negotiated = true;
    vq = qvirtqueue_setup(m.vdev, &m.win.alloc, 0);
    m.vdev->bus->set_status(m.vdev, dev_status(&m) |
                            VIRTIO_CONFIG_S_DRIVER_OK);
    g_assert_false(dev_status(&m) & VIRTIO_CONFIG_S_DRIVER_OK);
    g_assert_cmpint(rdma_int(m.qts, "refusals"), ==, 1);

    /* ... and the device does not process its queue */
    data = guest_alloc(&m.win.alloc, SECTOR);
    qvirtio_rdma_fill(m.qts, data, CANARY, SECTOR);
    blk_submit(&m, vq, &m.win.alloc, VIRTIO_BLK_T_IN, 0, data, SECTOR,
               &status);
    settle(&m);
    g_assert_cmpint(used_idx(&m, vq), ==, 0);
    g_assert_cmphex(qtest_readb(m.qts, status), ==, 0xff);
    qvirtio_rdma_assert_filled(m.qts, data, CANARY, SECTOR);
    machine_stop(&m);
}

static void test_tolerate(void)
{
    Machine m = { 0 };
    g_autoptr(QDict) st = NULL;

    start_blk(&m, "restricted-dma-bar-size=1M,restricted-dma-policy=tolerate");
    restricted_features(&m);
    g_assert_true(try_features(&m, F(VIRTIO_F_VERSION_1)));
    st = rdma_status(m.qts);
    g_assert_cmpstr(qdict_get_str(st, "policy"), ==, "tolerate");
    g_assert_cmpint(qdict_get_int(st, "refusals"), ==, 0);
    g_assert_false(qdict_get_bool(st, "driver-accepted"));
    machine_stop(&m);
}

/*
 * An unaware driver on a tolerant device: rings and buffers in ordinary
 * RAM.  Enabling the queue is the violation; nothing in RAM is touched.
 */
static void test_tolerate_unaware_driver(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t data, status;

    start_blk(&m, "restricted-dma-bar-size=1M,restricted-dma-policy=tolerate");
    qvirtio_restricted_dma_map(&m.win, m.dev);
    qvirtio_set_features(m.vdev, F(VIRTIO_F_VERSION_1));
    vq = qvirtqueue_setup(m.vdev, &m.ram, 0);
    force_driver_ok(&m);
    expect_violation_event(&m, "descriptor ring", vq->desc, 16 * vq->size);
    g_assert_true(dev_status(&m) & VIRTIO_CONFIG_S_NEEDS_RESET);

    data = guest_alloc(&m.ram, SECTOR);
    qvirtio_rdma_fill(m.qts, data, CANARY, SECTOR);
    qvirtio_rdma_fill(m.qts, vq->used, CANARY, 4);
    blk_submit(&m, vq, &m.ram, VIRTIO_BLK_T_IN, 0, data, SECTOR, &status);
    settle(&m);
    qvirtio_rdma_assert_filled(m.qts, data, CANARY, SECTOR);
    qvirtio_rdma_assert_filled(m.qts, vq->used, CANARY, 4);
    g_assert_cmphex(qtest_readb(m.qts, status), ==, 0xff);
    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 1);
    machine_stop(&m);
}

/* ---- hostile drivers ----------------------------------------------- */

static void test_hostile_rings_outside(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t data, status;

    start_blk(&m, "restricted-dma-bar-size=1M");
    qvirtio_restricted_dma_map(&m.win, m.dev);
    negotiate_aware(&m);
    vq = qvirtqueue_setup(m.vdev, &m.ram, 0);
    expect_violation_event(&m, "descriptor ring", vq->desc, 16 * vq->size);
    wait_needs_reset(&m);

    /* the driver goes on anyway: the device touches nothing */
    qvirtio_rdma_fill(m.qts, vq->used, CANARY, 4 + 8 * vq->size);
    data = guest_alloc(&m.win.alloc, SECTOR);
    qvirtio_rdma_fill(m.qts, data, CANARY, SECTOR);
    force_driver_ok(&m);
    blk_submit(&m, vq, &m.win.alloc, VIRTIO_BLK_T_IN, 0, data, SECTOR,
               &status);
    settle(&m);
    qvirtio_rdma_assert_filled(m.qts, vq->used, CANARY, 4 + 8 * vq->size);
    qvirtio_rdma_assert_filled(m.qts, data, CANARY, SECTOR);
    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 1);
    reset_and_recover(&m);
    machine_stop(&m);
}

/* A request whose buffer is at @data, length @len: a violation. */
static void hostile_buffer(Machine *m, uint64_t data, uint32_t len,
                           uint64_t canary, size_t canary_len)
{
    QVirtQueue *vq = blk_setup_aware(m);
    uint64_t status;

    if (canary_len) {
        qvirtio_rdma_fill(m->qts, canary, CANARY, canary_len);
    }
    blk_submit(m, vq, &m->win.alloc, VIRTIO_BLK_T_IN, 0, data, len, &status);
    expect_violation_event(m, "buffer", data, len);
    wait_needs_reset(m);
    if (canary_len) {
        qvirtio_rdma_assert_filled(m->qts, canary, CANARY, canary_len);
    }
    g_assert_cmpint(used_idx(m, vq), ==, 0);
    g_assert_cmphex(qtest_readb(m->qts, status), ==, 0xff);
    g_assert_cmpint(rdma_int(m->qts, "violations"), ==, 1);
    reset_and_recover(m);
}

static void test_hostile_buffer_outside(void)
{
    Machine m = { 0 };
    uint64_t data;

    start_blk(&m, "restricted-dma-bar-size=1M");
    data = guest_alloc(&m.ram, SECTOR);
    hostile_buffer(&m, data, SECTOR, data, SECTOR);
    machine_stop(&m);
}

static void test_hostile_buffer_straddles_end(void)
{
    Machine m = { 0 };
    uint64_t end;

    start_blk(&m, "restricted-dma-bar-size=1M");
    qvirtio_restricted_dma_map(&m.win, m.dev);
    end = m.win.addr + m.win.offset + m.win.size;
    /* the half inside the window must not be written either */
    hostile_buffer(&m, end - SECTOR / 2, SECTOR, end - SECTOR / 2,
                   SECTOR / 2);
    machine_stop(&m);
}

static void test_hostile_buffer_wraps(void)
{
    Machine m = { 0 };
    uint64_t addr = 0xfffffffffffff000ULL;

    start_blk(&m, "restricted-dma-bar-size=1M");
    /*
     * addr + len wraps around to 0x1000.  On x86 guest RAM starts at 0,
     * so the wrapped part lands on RAM: a canary there stays.  On arm
     * virt, flash is at 0 and no canary can be written.
     */
    hostile_buffer(&m, addr, 0x2000, 0, is_x86() ? 0x1000 : 0);
    machine_stop(&m);
}

static void test_hostile_indirect_outside(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    QVRingIndirectDesc *ind;
    uint64_t data, hdr_addr, status;
    uint32_t head;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(VIRTIO_BLK_T_IN),
    };

    start_blk(&m, "restricted-dma-bar-size=1M");
    vq = blk_setup_aware(&m);
    g_assert_true(vq->indirect);
    hdr_addr = guest_alloc(&m.win.alloc, sizeof(hdr));
    status = guest_alloc(&m.win.alloc, 1);
    qtest_memwrite(m.qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(m.qts, status, 0xff);
    data = guest_alloc(&m.ram, SECTOR);
    qvirtio_rdma_fill(m.qts, data, CANARY, SECTOR);
    ind = qvring_indirect_desc_setup(m.qts, m.vdev, &m.ram, 3);
    qvring_indirect_desc_add(m.vdev, m.qts, ind, hdr_addr, sizeof(hdr),
                             false);
    qvring_indirect_desc_add(m.vdev, m.qts, ind, data, SECTOR, true);
    qvring_indirect_desc_add(m.vdev, m.qts, ind, status, 1, true);
    head = qvirtqueue_add_indirect(m.qts, vq, ind);
    qvirtqueue_kick(m.qts, m.vdev, vq, head);
    expect_violation_event(&m, "indirect table", ind->desc,
                           3 * sizeof(struct vring_desc));
    wait_needs_reset(&m);
    qvirtio_rdma_assert_filled(m.qts, data, CANARY, SECTOR);
    g_assert_cmpint(used_idx(&m, vq), ==, 0);
    g_assert_cmphex(qtest_readb(m.qts, status), ==, 0xff);
    g_free(ind);
    reset_and_recover(&m);
    machine_stop(&m);
}

static void test_hostile_used_ring_outside(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t used, data, status;
    size_t used_len;

    start_blk(&m, "restricted-dma-bar-size=1M");
    qvirtio_restricted_dma_map(&m.win, m.dev);
    negotiate_aware(&m);
    used = guest_alloc(&m.ram, 4096);
    vq = qvirtio_pci_virtqueue_setup_used_at(m.dev, &m.win.alloc, 0, used);
    used_len = 4 + 8 * vq->size;
    expect_violation_event(&m, "device (used) ring", used, used_len);
    wait_needs_reset(&m);

    qvirtio_rdma_fill(m.qts, used, CANARY, used_len);
    data = guest_alloc(&m.win.alloc, SECTOR);
    qvirtio_rdma_fill(m.qts, data, CANARY, SECTOR);
    force_driver_ok(&m);
    blk_submit(&m, vq, &m.win.alloc, VIRTIO_BLK_T_IN, 0, data, SECTOR,
               &status);
    settle(&m);
    qvirtio_rdma_assert_filled(m.qts, used, CANARY, used_len);
    qvirtio_rdma_assert_filled(m.qts, data, CANARY, SECTOR);
    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 1);
    reset_and_recover(&m);
    machine_stop(&m);
}

/* ---- the window follows the BAR ------------------------------------ */

static void test_bar_move(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t old, data, status;

    start_blk(&m, "restricted-dma-bar-size=1M");
    vq = blk_setup_aware(&m);
    blk_roundtrip(&m, vq, 0, 0x50);

    /* the guest moves the BAR; the driver sets up again at the new place */
    qvirtio_reset(m.vdev);
    old = qvirtio_restricted_dma_move(&m.win);
    g_assert_cmphex(old, !=, m.win.addr);
    g_assert_cmphex(rdma_int(m.qts, "window-address"), ==, m.win.addr);
    g_assert_true(rdma_bool(m.qts, "window-open"));
    qvirtio_set_acknowledge(m.vdev);
    qvirtio_set_driver(m.vdev);
    negotiate_aware(&m);
    vq = qvirtqueue_setup(m.vdev, &m.win.alloc, 0);
    qvirtio_set_driver_ok(m.vdev);
    blk_roundtrip(&m, vq, 16, 0x60);

    /* the old address is outside now */
    data = old + 4096;
    blk_submit(&m, vq, &m.win.alloc, VIRTIO_BLK_T_IN, 0, data, SECTOR,
               &status);
    expect_violation_event(&m, "buffer", data, SECTOR);
    wait_needs_reset(&m);
    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 1);
    machine_stop(&m);
}

static void test_bus_master(void)
{
    Machine m = { 0 };
    QVirtQueue *vq;
    uint64_t data, status;
    uint16_t cmd;
    QDict *ev;

    start_blk(&m, "restricted-dma-bar-size=1M");
    vq = blk_setup_aware(&m);
    blk_roundtrip(&m, vq, 0, 0x70);
    g_assert_true(rdma_bool(m.qts, "window-open"));

    cmd = qpci_config_readw(m.dev->pdev, PCI_COMMAND);
    qpci_config_writew(m.dev->pdev, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
    g_assert_false(rdma_bool(m.qts, "window-open"));

    /* DMA fails: the request is not processed, the buffer is unchanged */
    data = guest_alloc(&m.win.alloc, SECTOR);
    qvirtio_rdma_fill(m.qts, data, CANARY, SECTOR);
    blk_submit(&m, vq, &m.win.alloc, VIRTIO_BLK_T_IN, 0, data, SECTOR,
               &status);
    /* the device tries to read its ring: a violation, the window is shut */
    ev = qtest_qmp_eventwait_ref(m.qts, "VIRTIO_RESTRICTED_DMA_VIOLATION");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "access"),
                    ==, "read");
    g_assert_false(qdict_get_bool(qdict_get_qdict(ev, "data"),
                                  "window-open"));
    qobject_unref(ev);
    settle(&m);
    qvirtio_rdma_assert_filled(m.qts, data, CANARY, SECTOR);
    g_assert_cmphex(qtest_readb(m.qts, status), ==, 0xff);
    g_assert_cmpint(rdma_int(m.qts, "violations"), ==, 1);

    qpci_config_writew(m.dev->pdev, PCI_COMMAND, cmd);
    g_assert_true(rdma_bool(m.qts, "window-open"));
    machine_stop(&m);
}

/* ---- bit 27 stays out of sight ------------------------------------- */

typedef struct DeviceArgs {
    const char *prefix;     /* device type prefix */
    const char *before;     /* extra arguments (backends) */
    const char *props;      /* extra device properties */
} DeviceArgs;

static const DeviceArgs device_args[] = {
    { "virtio-blk-pci", "-drive if=none,id=d1,file=null-co://,format=raw",
      "drive=d1" },
    { "virtio-sound-pci", "-audiodev none,id=a1", "audiodev=a1" },
    { "virtio-crypto-pci", "-object cryptodev-backend-builtin,id=c1",
      "cryptodev=c1" },
    { "virtio-serial-pci", "", "" },
    { "virtio-9p-pci", "-fsdev local,id=f1,path=/tmp,security_model=none",
      "fsdev=f1,mount_tag=t" },
    { "virtio-pmem-pci", "-m 256M,slots=2,maxmem=2G "
      "-object memory-backend-ram,id=m1,size=4M", "memdev=m1" },
    { "virtio-mem-pci", "-m 256M,maxmem=2G "
      "-object memory-backend-ram,id=m1,size=128M", "memdev=m1" },
};

static const DeviceArgs *device_args_for(const char *type)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(device_args); i++) {
        if (g_str_has_prefix(type, device_args[i].prefix)) {
            return &device_args[i];
        }
    }
    return NULL;
}

static char **virtio_pci_types(void)
{
    QTestState *qts = qtest_init("-M none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-types', 'arguments':"
                           " { 'implements': 'virtio-pci',"
                           " 'abstract': false } }");
    QList *list = qdict_get_qlist(rsp, "return");
    GPtrArray *names = g_ptr_array_new();
    QListEntry *e;

    QLIST_FOREACH_ENTRY(list, e) {
        QDict *t = qobject_to(QDict, qlist_entry_obj(e));

        g_ptr_array_add(names, g_strdup(qdict_get_str(t, "name")));
    }
    g_ptr_array_add(names, NULL);
    qobject_unref(rsp);
    qtest_quit(qts);
    return (char **)g_ptr_array_free(names, false);
}


/* Can QEMU start with these arguments at all (backends present)? */
static bool qemu_starts(const char *args)
{
    g_autofree char *err = NULL;

    return qvirtio_rdma_run_qemu(args, &err) == 0;
}

static void test_bit27_hidden(void)
{
    g_auto(GStrv) types = virtio_pci_types();
    g_autoptr(GString) skipped = g_string_new("");
    int checked = 0, i;
    bool snd = false;

    for (i = 0; types[i]; i++) {
        const char *type = types[i];
        const DeviceArgs *da = device_args_for(type);
        g_autofree char *args = NULL;
        Machine m = { 0 };
        uint64_t f;

        if (g_str_has_prefix(type, "vhost-")) {
            g_string_append_printf(skipped, " %s", type);
            continue;
        }
        args = g_strdup_printf("%s %s -device %s,id=dev0,addr=%d.0%s%s",
                               machine_args(), da ? da->before : "", type,
                               DEV_SLOT, da && *da->props ? "," : "",
                               da ? da->props : "");
        if (!qemu_starts(args)) {
            g_string_append_printf(skipped, " %s", type);
            continue;
        }
        machine_start(&m, "%s -device %s,id=dev0,addr=%d.0%s%s",
                      da ? da->before : "", type, DEV_SLOT,
                      da && *da->props ? "," : "", da ? da->props : "");
        machine_probe(&m);
        f = qvirtio_get_features(m.vdev);
        if (!(f & F(VIRTIO_F_VERSION_1))) {
            /* a legacy-only device: no modern interface */
            machine_stop(&m);
            continue;
        }
        g_assert_cmphex(f & F(QVIRTIO_F_RESTRICTED_DMA), ==, 0);
        g_assert_false(qvirtio_pci_find_restricted_dma(m.dev, &(uint8_t){0},
                                                       &(uint32_t){0},
                                                       &(uint32_t){0}));
        snd |= g_str_has_prefix(type, "virtio-sound-pci");
        checked++;
        machine_stop(&m);
    }
    g_test_message("bit 27 absent on %d virtio-pci device types; not "
                   "started here (no backend):%s", checked, skipped->str);
    g_assert_cmpint(checked, >=, 10);
    if (qemu_starts("-M none -audiodev none,id=a1 "
                    "-device virtio-sound-pci,audiodev=a1")) {
        g_assert_true(snd);
    }
}

/* A modern driver that writes bit 27 anyway does not get it. */
static void test_bit27_masked_on_write(void)
{
    Machine m = { 0 };
    g_autoptr(QDict) rsp = NULL;
    QDict *ret;
    QList *transports;
    QListEntry *e;

    start_blk(&m, "restricted-dma-policy=refuse");
    g_assert_true(try_features(&m, F(VIRTIO_F_VERSION_1) |
                               F(QVIRTIO_F_RESTRICTED_DMA)));
    rsp = qtest_qmp(m.qts, "{ 'execute': 'x-query-virtio-status',"
                    " 'arguments': { 'path': %s } }", VDEV_PATH);
    ret = qdict_get_qdict(rsp, "return");
    g_assert_false(qdict_haskey(ret, "restricted-dma"));
    transports = qdict_get_qlist(qdict_get_qdict(ret, "guest-features"),
                                 "transports");
    QLIST_FOREACH_ENTRY(transports, e) {
        const char *s = qstring_get_str(qobject_to(QString,
                                                   qlist_entry_obj(e)));

        g_assert_null(strstr(s, "ANY_LAYOUT"));
        g_assert_null(strstr(s, "RESTRICTED_DMA"));
    }
    machine_stop(&m);
}

/* ---- configuration errors ------------------------------------------ */

typedef struct BadConfig {
    const char *name;
    const char *args;       /* after the machine */
    const char *message;    /* must appear on stderr */
    const char *x86_machine;    /* instead of "pc" */
} BadConfig;

#define BLK "-drive if=none,id=d0,file=null-co://,format=raw " \
            "-device virtio-blk-pci,drive=d0,"

static const BadConfig bad_configs[] = {
    { "not-pow2", BLK "disable-legacy=on,restricted-dma-bar-size=3M",
      "restricted-dma-bar-size=3 MiB is not a power of two" },
    { "below-min", BLK "disable-legacy=on,restricted-dma-bar-size=64K",
      "is below the minimum of" },
    { "above-max", BLK "disable-legacy=on,restricted-dma-bar-size=4G",
      "is above the maximum of 2 GiB" },
    { "transitional", BLK "disable-legacy=off,restricted-dma-bar-size=1M",
      "Set disable-legacy=on, or use virtio-blk-pci-non-transitional" },
    { "transitional-type", "-device virtio-rng-pci-transitional,"
      "restricted-dma-bar-size=1M", "needs a modern-only" },
    { "modern-off", BLK "disable-modern=on,restricted-dma-bar-size=1M",
      "needs a modern-only" },
    { "iommu-platform-off", BLK "disable-legacy=on,iommu_platform=off,"
      "restricted-dma-bar-size=1M", "iommu_platform=off was given" },
    { "bar-in-use", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-bar=4", "restricted-dma-bar=4: BAR 4 is in use by "
      "the virtio-pci modern BAR" },
    { "bar-msix", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-bar=1", "BAR 1 is in use by the MSI-X BAR" },
    { "bar-64bit-slot", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-bar=5", "is not a BAR that can hold a 64-bit window" },
    { "bar-without-size", BLK "disable-legacy=on,restricted-dma-bar=0",
      "restricted-dma-bar=0 has no effect without restricted-dma-bar-size" },
    { "policy-without-window", BLK "disable-legacy=on,"
      "restricted-dma-policy=tolerate",
      "restricted-dma-policy=tolerate needs a restricted DMA window" },
    { "bad-policy", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-policy=maybe", "restricted-dma-policy" },
    { "balloon", "-device virtio-balloon-pci,disable-legacy=on,"
      "restricted-dma-bar-size=1M", "works on guest RAM by design" },
    { "vhost-user-anonymous-window",
      "-chardev socket,id=c0,path=/tmp/qtest-rdma-none.sock,"
      "server=on,wait=off -device vhost-user-blk-pci,chardev=c0,"
      "restricted-dma-bar-size=1M", "restricted-dma-bar-size cannot be used "
      "with vhost-user-blk-pci unless the window is shared memory" },
    { "viommu", "-device virtio-iommu-pci " BLK "disable-legacy=on,"
      "restricted-dma-bar-size=1M", "behind a vIOMMU", "-M q35" },
};

static void test_bad_config(const void *opaque)
{
    const BadConfig *bc = opaque;
    g_autofree char *args = g_strdup_printf("%s %s",
                                            is_x86() && bc->x86_machine ?
                                            bc->x86_machine : machine_args(),
                                            bc->args);
    g_autofree char *err = NULL;

    /* a clean error exit: status 1, not a crash, not a hang */
    g_assert_cmpint(qvirtio_rdma_run_qemu(args, &err), ==, 1);
    if (!strstr(err, bc->message)) {
        g_error("'%s': expected '%s' in:\n%s", bc->name, bc->message, err);
    }
}

/* ---- migration ----------------------------------------------------- */

static void migrate_to(Machine *src, Machine *dst, const char *uri,
                       bool ok)
{
    QDict *rsp;
    const char *st;

    qtest_qmp_assert_success(src->qts, "{ 'execute': 'migrate',"
                             " 'arguments': { 'uri': %s } }", uri);
    for (;;) {
        rsp = qtest_qmp(src->qts, "{ 'execute': 'query-migrate' }");
        st = qdict_get_str(qdict_get_qdict(rsp, "return"), "status");
        if (!strcmp(st, "completed") || !strcmp(st, "failed")) {
            /*
             * A destination that refuses the device state fails after
             * the source has sent everything: only the destination knows.
             */
            if (ok) {
                g_assert_cmpstr(st, ==, "completed");
            }
            qobject_unref(rsp);
            break;
        }
        qobject_unref(rsp);
        g_usleep(5000);
    }
    if (ok) {
        qtest_qmp_eventwait(dst->qts, "RESUME");
    }
}

/* Attach a driver to the device a migration brought, as it was. */
static void adopt_device(Machine *dst, Machine *src)
{
    QPCIAddress addr = { .devfn = QPCI_DEVFN(DEV_SLOT, 0) };
    uint64_t lo, hi;
    int reg;

    dst->dev = virtio_pci_new(dst->bus, &addr);
    g_assert_nonnull(dst->dev);
    dst->vdev = &dst->dev->vdev;
    /* the BARs keep the addresses the guest gave them */
    reg = PCI_BASE_ADDRESS_0 + 4 * dst->dev->bar_idx;
    lo = qpci_config_readl(dst->dev->pdev, reg) & PCI_BASE_ADDRESS_MEM_MASK;
    hi = qpci_config_readl(dst->dev->pdev, reg + 4);
    dst->dev->bar.addr = lo | hi << 32;
    dst->dev->bar.is_io = false;
    dst->vdev->features = src->vdev->features;
    dst->vdev->features_negotiated = true;
    dst->win = src->win;
    dst->win.dev = NULL;    /* the allocator stays with the source */
}

static void test_migration(void)
{
    Machine src = { 0 }, dst = { 0 };
    g_autofree char *uri = g_strdup_printf("unix:/tmp/qtest-rdma-%d.sock",
                                           getpid());
    QVirtQueue *vq;
    uint64_t keep, data, status;
    uint32_t head;
    uint8_t pattern[SECTOR], back[SECTOR];
    size_t i;

    start_blk(&src, "restricted-dma-bar-size=1M");
    vq = blk_setup_aware(&src);
    blk_roundtrip(&src, vq, 0, 0x11);
    /* data in the window that the migration must carry */
    for (i = 0; i < sizeof(pattern); i++) {
        pattern[i] = i * 13 + 5;
    }
    keep = guest_alloc(&src.win.alloc, sizeof(pattern));
    qtest_memwrite(src.qts, keep, pattern, sizeof(pattern));
    data = guest_alloc(&src.win.alloc, 4 * SECTOR);
    status = guest_alloc(&src.win.alloc, 1);

    dst.img = g_strdup(src.img);
    machine_start(&dst, "-drive if=none,id=drive0,file=%s,format=raw "
                  "-device virtio-blk-pci,id=dev0,addr=%d.0,drive=drive0,"
                  "disable-legacy=on,restricted-dma-bar-size=1M "
                  "-incoming %s", dst.img, DEV_SLOT, uri);
    migrate_to(&src, &dst, uri, true);
    adopt_device(&dst, &src);

    qtest_memread(dst.qts, keep, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
    g_assert_true(rdma_bool(dst.qts, "window-open"));
    g_assert_true(rdma_bool(dst.qts, "driver-accepted"));
    g_assert_cmphex(rdma_int(dst.qts, "window-address"), ==, src.win.addr);

    /* the queue goes on where it was, on the destination */
    vq->vdev = dst.vdev;
    {
        struct virtio_blk_outhdr hdr = {
            .type = cpu_to_le32(VIRTIO_BLK_T_IN),
        };
        uint64_t hdr_addr = guest_alloc(&src.win.alloc, sizeof(hdr));

        qtest_memwrite(dst.qts, hdr_addr, &hdr, sizeof(hdr));
        qtest_writeb(dst.qts, status, 0xff);
        qvirtio_rdma_fill(dst.qts, data, 0, 4 * SECTOR);
        head = qvirtqueue_add(dst.qts, vq, hdr_addr, sizeof(hdr), false,
                              true);
        qvirtqueue_add(dst.qts, vq, data, 4 * SECTOR, true, true);
        qvirtqueue_add(dst.qts, vq, status, 1, true, false);
        qvirtqueue_kick(dst.qts, dst.vdev, vq, head);
        qvirtio_wait_used_elem(dst.qts, dst.vdev, vq, head, NULL,
                               TIMEOUT_US);
    }
    g_assert_cmpint(qtest_readb(dst.qts, status), ==, VIRTIO_BLK_S_OK);
    /* sector 0 holds what blk_roundtrip(seed 0x11) wrote */
    g_assert_cmphex(qtest_readb(dst.qts, data), ==, 0x11);
    g_assert_cmphex(qtest_readb(dst.qts, data + 1), ==, (uint8_t)(0x11 + 7));
    g_assert_cmpint(rdma_int(dst.qts, "violations"), ==, 0);

    g_free(dst.img);
    dst.img = NULL;         /* shared with the source */
    machine_stop(&dst);
    machine_stop(&src);
}

/* A destination that differs fails the migration and says why. */
static void migration_mismatch(const char *dst_props, const char *message)
{
    Machine src = { 0 }, dst = { 0 };
    g_autofree char *uri = g_strdup_printf("unix:/tmp/qtest-rdma-%d.sock",
                                           getpid());
    g_autofree char *err = NULL;

    start_blk(&src, "restricted-dma-bar-size=1M");
    blk_setup_aware(&src);
    dst.errfile = g_strdup_printf("/tmp/qtest-rdma-%d.err", getpid());
    dst.img = g_strdup(src.img);
    machine_start(&dst, "-drive if=none,id=drive0,file=%s,format=raw "
                  "-device virtio-blk-pci,id=dev0,addr=%d.0,drive=drive0,"
                  "disable-legacy=on%s -incoming %s 2>%s", dst.img,
                  DEV_SLOT, dst_props, uri, dst.errfile);
    qtest_set_expected_status(dst.qts, EXIT_FAILURE);
    migrate_to(&src, &dst, uri, false);
    qtest_wait_qemu(dst.qts);
    g_assert_true(g_file_get_contents(dst.errfile, &err, NULL, NULL));
    if (!strstr(err, message)) {
        g_error("expected '%s' in:\n%s", message, err);
    }
    g_free(dst.img);
    dst.img = NULL;         /* shared with the source */
    machine_stop(&dst);
    machine_stop(&src);
}

static void test_migration_no_window(void)
{
    /* the window's RAM block is what the destination lacks */
    migration_mismatch("", "virtio-pci-restricted-dma");
}

static void test_migration_other_policy(void)
{
    migration_mismatch(",restricted-dma-bar-size=1M,"
                       "restricted-dma-policy=tolerate",
                       "restricted DMA differs");
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    arch = qtest_get_arch();
    module_call_init(MODULE_INIT_QOM);

    qtest_add_func("/virtio-rdma/capability", test_capability);
    qtest_add_func("/virtio-rdma/bar-option", test_bar_option);
    qtest_add_func("/virtio-rdma/io/blk", test_blk_io);
    qtest_add_func("/virtio-rdma/io/blk-indirect", test_blk_indirect_io);
    qtest_add_func("/virtio-rdma/io/net", test_net_io);
    qtest_add_func("/virtio-rdma/io/rng", test_rng_io);
    qtest_add_func("/virtio-rdma/refuse/no-feature",
                   test_refuse_without_feature);
    qtest_add_func("/virtio-rdma/refuse/no-access-platform",
                   test_refuse_without_access_platform);
    qtest_add_func("/virtio-rdma/refuse/driver-ok-without-features-ok",
                   test_refuse_driver_ok_without_features_ok);
    qtest_add_func("/virtio-rdma/tolerate/latches", test_tolerate);
    qtest_add_func("/virtio-rdma/tolerate/unaware-driver",
                   test_tolerate_unaware_driver);
    qtest_add_func("/virtio-rdma/hostile/rings-outside",
                   test_hostile_rings_outside);
    qtest_add_func("/virtio-rdma/hostile/buffer-outside",
                   test_hostile_buffer_outside);
    qtest_add_func("/virtio-rdma/hostile/buffer-straddles-end",
                   test_hostile_buffer_straddles_end);
    qtest_add_func("/virtio-rdma/hostile/indirect-outside",
                   test_hostile_indirect_outside);
    qtest_add_func("/virtio-rdma/hostile/used-ring-outside",
                   test_hostile_used_ring_outside);
    qtest_add_func("/virtio-rdma/hostile/wrap-around",
                   test_hostile_buffer_wraps);
    qtest_add_func("/virtio-rdma/bar/move", test_bar_move);
    qtest_add_func("/virtio-rdma/bar/bus-master", test_bus_master);
    qtest_add_func("/virtio-rdma/bit27/hidden", test_bit27_hidden);
    qtest_add_func("/virtio-rdma/bit27/masked-on-write",
                   test_bit27_masked_on_write);
    for (i = 0; i < G_N_ELEMENTS(bad_configs); i++) {
        g_autofree char *path = g_strdup_printf("/virtio-rdma/bad-config/%s",
                                                bad_configs[i].name);

        qtest_add_data_func(path, &bad_configs[i], test_bad_config);
    }
    qtest_add_func("/virtio-rdma/migration/io", test_migration);
    qtest_add_func("/virtio-rdma/migration/no-window",
                   test_migration_no_window);
    qtest_add_func("/virtio-rdma/migration/other-policy",
                   test_migration_other_policy);

    return g_test_run();
}
