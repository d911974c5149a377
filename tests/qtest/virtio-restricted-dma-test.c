/*
 * QTest for restricted DMA of virtio-pci devices (window in a BAR)
 *
 * Runs on x86_64 "pc" and on aarch64 "virt" (generic PCIe host).  Each
 * test starts its own QEMU with the device under test at slot 4, id "dev0",
 * and drives it as a guest driver would, through libqos and its restricted
 * DMA harness: it finds the restricted DMA capability, maps the window
 * BAR, and puts rings and buffers in the window.  Hostile drivers put them
 * elsewhere, over a canary pattern in guest RAM that must come out
 * unchanged.  Each configuration error is also tried as a device_add on a
 * PCIe root port, which must leave the device's backend as it was.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/iov.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-restricted-dma.h"
#include "migration/migration-qmp.h"

#define DEV_SLOT 4
#define DEVFN QPCI_DEVFN(DEV_SLOT, 0)
#define VDEV_PATH "/machine/peripheral/dev0/virtio-backend"
#define WINDOW_SIZE (1 * MiB)
#define CANARY 0xa5
#define SECTOR 512
#define DISK_SIZE (1 * MiB)

#define F(bit) (1ULL << (bit))
#define F_AWARE QRESTRICTED_F_AWARE

/* A restricted virtio-blk-pci with a file-backed disk. */
static QRestrictedDevice *start_blk(QRestrictedMachine *m,
                                    const char *devopts)
{
    const char *img = qrestricted_image(m, DISK_SIZE);

    qrestricted_start(m, "-drive if=none,id=drive0,file=%s,format=raw "
                      "-device virtio-blk-pci,id=dev0,addr=%d.0,"
                      "drive=drive0,disable-legacy=on,%s", img, DEV_SLOT,
                      devopts);
    return qrestricted_pci(m, DEVFN, "dev0");
}

static uint16_t used_idx(QRestrictedDevice *d, QVirtQueue *vq)
{
    return qtest_readw(d->m->qts, vq->used + offsetof(struct vring_used,
                                                      idx));
}

/*
 * Write a pattern to the disk through the window and read it back into
 * another window buffer; the disk image must hold the pattern too.
 */
static void blk_roundtrip(QRestrictedDevice *d, QVirtQueue *vq,
                          uint64_t sector, uint8_t seed)
{
    qrestricted_blk_roundtrip(d, vq, sector, 4 * SECTOR, seed, d->m->img[0]);
}

/* After a violation: reset, renegotiate, and I/O works again. */
static void reset_and_recover(QRestrictedDevice *d)
{
    QVirtQueue *vq;

    qvirtio_reset(d->vdev);
    g_assert_cmphex(qrestricted_dev_status(d), ==, 0);
    qvirtio_set_acknowledge(d->vdev);
    qvirtio_set_driver(d->vdev);
    qrestricted_window_reset(d->win);
    vq = qrestricted_driver(d);
    blk_roundtrip(d, vq, 8, 0x31);
    g_assert_false(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    g_assert_true(qrestricted_bool(d, "driver-accepted"));
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
}

/* ------------------------------------------------------------------ */

static void test_capability(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QRestrictedWindow *w;
    uint8_t bar;
    uint32_t offset, length;
    g_autoptr(QDict) st = NULL;

    qrestricted_start(&m, "-drive if=none,id=drive0,file=%s,format=raw "
                      "-device virtio-blk-pci,id=dev0,addr=%d.0,"
                      "drive=drive0,disable-legacy=on,"
                      "restricted-dma-bar-size=1M",
                      qrestricted_image(&m, DISK_SIZE), DEV_SLOT);
    /* memory decoding and Bus Master are off: the window is closed */
    st = qrestricted_query(m.qts, VDEV_PATH);
    g_assert_cmpstr(qdict_get_str(st, "kind"), ==, "bar");
    g_assert_cmpint(qdict_get_int(st, "bar"), ==, 2);
    g_assert_cmpstr(qdict_get_str(st, "policy"), ==, "refuse");
    g_assert_false(qdict_get_bool(st, "window-open"));
    d = qrestricted_pci(&m, DEVFN, "dev0");

    g_assert_true(qrestricted_find_cap(d->pci, &bar, &offset, &length));
    g_assert_cmpint(bar, ==, 2);
    g_assert_cmpint(offset, ==, 0);
    g_assert_cmpint(length, ==, WINDOW_SIZE);
    /* a 64-bit prefetchable memory BAR */
    g_assert_cmphex(qpci_config_readl(d->pci->pdev, PCI_BASE_ADDRESS_2) & 0xf,
                    ==, PCI_BASE_ADDRESS_SPACE_MEMORY |
                    PCI_BASE_ADDRESS_MEM_TYPE_64 |
                    PCI_BASE_ADDRESS_MEM_PREFETCH);
    qrestricted_offered(d);

    w = qrestricted_window(d);
    g_assert_true(qrestricted_bool(d, "window-open"));
    g_assert_cmphex(qrestricted_int(d, "window-address"), ==, w->bar_addr);
    qrestricted_stop(&m);
}

static void test_bar_option(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    uint8_t bar;
    uint32_t offset, length;

    /* without MSI-X, BARs 0 and 1 are free */
    d = start_blk(&m, "restricted-dma-bar-size=2M,restricted-dma-bar=0,"
                  "vectors=0");
    g_assert_true(qrestricted_find_cap(d->pci, &bar, &offset, &length));
    g_assert_cmpint(bar, ==, 0);
    g_assert_cmpint(length, ==, 2 * MiB);
    qrestricted_stop(&m);
}

static void test_blk_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QVirtQueue *vq = qrestricted_driver(d);
    g_autoptr(QDict) st = NULL;

    /* the rings are in the window */
    g_assert_cmphex(vq->desc, >=, d->win->bar_addr);
    g_assert_cmphex(vq->used, <, d->win->bar_addr + d->win->size);
    blk_roundtrip(d, vq, 0, 0x10);
    blk_roundtrip(d, vq, 100, 0x20);

    st = qrestricted_status(d);
    g_assert_true(qdict_get_bool(st, "driver-accepted"));
    g_assert_cmpint(qdict_get_int(st, "violations"), ==, 0);
    g_assert_cmpint(qdict_get_int(st, "refusals"), ==, 0);
    qrestricted_stop(&m);
}

static void test_blk_indirect_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QVirtQueue *vq = qrestricted_driver(d);
    QGuestAllocator *a = &d->win->alloc;
    QVRingIndirectDesc *ind;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(VIRTIO_BLK_T_IN),
        .sector = cpu_to_le64(0),
    };
    uint64_t hdr_addr, data, status;
    uint32_t head;

    blk_roundtrip(d, vq, 0, 0x40);

    /* an indirect table inside the window works */
    hdr_addr = guest_alloc(a, sizeof(hdr));
    data = guest_alloc(a, SECTOR);
    status = guest_alloc(a, 1);
    qtest_memwrite(m.qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(m.qts, status, 0xff);
    ind = qvring_indirect_desc_setup(m.qts, d->vdev, a, 3);
    qvring_indirect_desc_add(d->vdev, m.qts, ind, hdr_addr, sizeof(hdr),
                             false);
    qvring_indirect_desc_add(d->vdev, m.qts, ind, data, SECTOR, true);
    qvring_indirect_desc_add(d->vdev, m.qts, ind, status, 1, true);
    head = qvirtqueue_add_indirect(m.qts, vq, ind);
    qvirtqueue_kick(m.qts, d->vdev, vq, head);
    qvirtio_wait_used_elem(m.qts, d->vdev, vq, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(qtest_readb(m.qts, status), ==, VIRTIO_BLK_S_OK);
    /* sector 0 holds what blk_roundtrip(seed 0x40) wrote */
    g_assert_cmphex(qtest_readb(m.qts, data), ==, 0x40);
    g_free(ind);
    qrestricted_stop(&m);
}

static void test_net_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QVirtQueue *rx, *tx;
    QGuestAllocator *a;
    int sock[2];
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

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, sock), ==, 0);
    qrestricted_start(&m, "-netdev socket,fd=%d,id=hs0 "
                      "-device virtio-net-pci,id=dev0,addr=%d.0,netdev=hs0,"
                      "disable-legacy=on,restricted-dma-bar-size=1M",
                      sock[1], DEV_SLOT);
    d = qrestricted_pci(&m, DEVFN, "dev0");
    a = &qrestricted_window(d)->alloc;
    qrestricted_negotiate(d);
    rx = qvirtqueue_setup(d->vdev, a, 0);
    tx = qvirtqueue_setup(d->vdev, a, 1);
    qvirtio_set_driver_ok(d->vdev);

    /* receive into a window buffer */
    buf = guest_alloc(a, 64);
    head = qvirtqueue_add(m.qts, rx, buf, 64, true, false);
    qvirtqueue_kick(m.qts, d->vdev, rx, head);
    g_assert_cmpint(iov_send(sock[0], iov, 2, 0,
                             sizeof(be_len) + sizeof(test)), ==,
                    sizeof(be_len) + sizeof(test));
    qvirtio_wait_used_elem(m.qts, d->vdev, rx, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    qtest_memread(m.qts, buf + hdr, buffer, sizeof(test));
    g_assert_cmpstr(buffer, ==, "TEST");

    /* transmit from a window buffer */
    buf = guest_alloc(a, 64);
    qrestricted_fill(m.qts, buf, 0, hdr);
    qtest_memwrite(m.qts, buf + hdr, "SENT", 5);
    head = qvirtqueue_add(m.qts, tx, buf, hdr + 5, false, false);
    qvirtqueue_kick(m.qts, d->vdev, tx, head);
    qvirtio_wait_used_elem(m.qts, d->vdev, tx, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(recv(sock[0], &len, sizeof(len), 0), ==, sizeof(len));
    g_assert_cmpint(ntohl(len), ==, 5);
    g_assert_cmpint(recv(sock[0], buffer, 5, 0), ==, 5);
    g_assert_cmpstr(buffer, ==, "SENT");

    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    qrestricted_stop(&m);
    close(sock[0]);
    close(sock[1]);
}

static void test_rng_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    uint8_t data[64];
    size_t i, zeros = 0;

    qrestricted_start(&m, "-device virtio-rng-pci,id=dev0,addr=%d.0,"
                      "disable-legacy=on,restricted-dma-bar-size=1M",
                      DEV_SLOT);
    d = qrestricted_pci(&m, DEVFN, "dev0");
    qrestricted_rng_read(d, qrestricted_driver(d), data, sizeof(data));
    for (i = 0; i < sizeof(data); i++) {
        zeros += !data[i];
    }
    /* 64 random bytes: all but a handful are non-zero */
    g_assert_cmpint(zeros, <, 16);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    qrestricted_stop(&m);
}

/* ---- the policy ---------------------------------------------------- */

/* A driver that declines @bit, of the two restricted DMA needs. */
static void refuse_without(uint64_t bit)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    uint64_t f = qrestricted_offered(d);

    g_assert_false(qrestricted_try_features(d, f & (F_AWARE & ~bit)));
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 1);
    g_assert_false(qrestricted_bool(d, "driver-accepted"));
    qrestricted_stop(&m);
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
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QGuestAllocator *a = &qrestricted_window(d)->alloc;
    QVirtQueue *vq;
    uint64_t data, status;

    /* a driver that skips negotiation and sets up a queue anyway */
    d->vdev->bus->set_features(d->vdev, F(VIRTIO_F_VERSION_1));
    d->vdev->features_negotiated = true;
    vq = qvirtqueue_setup(d->vdev, a, 0);
    qrestricted_force_driver_ok(d);
    g_assert_false(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_DRIVER_OK);
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 1);

    /* ... and the device does not process its queue */
    data = guest_alloc(a, SECTOR);
    qrestricted_fill(m.qts, data, CANARY, SECTOR);
    qrestricted_blk_submit(d, vq, a, VIRTIO_BLK_T_IN, 0, data, SECTOR,
                           &status);
    qrestricted_settle(m.qts);
    g_assert_cmpint(used_idx(d, vq), ==, 0);
    g_assert_cmphex(qtest_readb(m.qts, status), ==, 0xff);
    qrestricted_assert_filled(m.qts, data, CANARY, SECTOR);
    qrestricted_stop(&m);
}

static void test_tolerate(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M,"
                                     "restricted-dma-policy=tolerate");
    g_autoptr(QDict) st = NULL;

    qrestricted_offered(d);
    g_assert_true(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1)));
    st = qrestricted_status(d);
    g_assert_cmpstr(qdict_get_str(st, "policy"), ==, "tolerate");
    g_assert_cmpint(qdict_get_int(st, "refusals"), ==, 0);
    g_assert_false(qdict_get_bool(st, "driver-accepted"));
    qrestricted_stop(&m);
}

/*
 * An unaware driver on a tolerant device: rings and buffers in ordinary
 * RAM.  Enabling the queue is the violation; nothing in RAM is touched.
 */
static void test_tolerate_unaware_driver(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M,"
                                     "restricted-dma-policy=tolerate");
    QVirtQueue *vq;

    qrestricted_window(d);
    qvirtio_set_features(d->vdev, F(VIRTIO_F_VERSION_1));
    vq = qvirtqueue_setup(d->vdev, &m.ram, 0);
    qrestricted_force_driver_ok(d);
    qrestricted_expect_violation(d, "descriptor ring", vq->desc,
                                 16 * vq->size);
    g_assert_true(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    qrestricted_assert_inert(d, vq, &m.ram, vq->used, 4);
    qrestricted_stop(&m);
}

/* ---- opt-in: the guest decides, then it holds ---------------------- */

#define OPT_IN "restricted-dma-bar-size=1M,restricted-dma-policy=opt-in"

static char *migration_uri(void);

/*
 * An unaware driver (no ACCESS_PLATFORM, no bit 27) with its queue and
 * buffers in ordinary RAM writes a sector and reads it back: the device
 * of an opt-in policy is an ordinary device until a driver opts in.
 */
static void unaware_roundtrip(QRestrictedDevice *d, uint64_t sector,
                              uint8_t seed)
{
    QTestState *qts = d->m->qts;
    QGuestAllocator *ram = &d->m->ram;
    QVirtQueue *vq;
    uint64_t data, status;
    uint8_t pattern[SECTOR], back[SECTOR];
    uint32_t head;

    g_assert_true(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1)));
    d->vdev->features = F(VIRTIO_F_VERSION_1);
    d->vdev->features_negotiated = true;
    vq = qvirtqueue_setup(d->vdev, ram, 0);
    qvirtio_set_driver_ok(d->vdev);
    qrestricted_pattern(pattern, sizeof(pattern), seed);
    data = guest_alloc(ram, SECTOR);
    qtest_memwrite(qts, data, pattern, sizeof(pattern));
    head = qrestricted_blk_submit(d, vq, ram, VIRTIO_BLK_T_OUT, sector, data,
                                  SECTOR, &status);
    qvirtio_wait_used_elem(qts, d->vdev, vq, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(qtest_readb(qts, status), ==, VIRTIO_BLK_S_OK);
    qrestricted_fill(qts, data, 0, SECTOR);
    head = qrestricted_blk_submit(d, vq, ram, VIRTIO_BLK_T_IN, sector, data,
                                  SECTOR, &status);
    qvirtio_wait_used_elem(qts, d->vdev, vq, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(qtest_readb(qts, status), ==, VIRTIO_BLK_S_OK);
    qtest_memread(qts, data, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
}

/* A driver starts over: reset, ACKNOWLEDGE, DRIVER. */
static void driver_restart(QRestrictedDevice *d)
{
    qvirtio_reset(d->vdev);
    qvirtio_set_acknowledge(d->vdev);
    qvirtio_set_driver(d->vdev);
    d->vdev->features_negotiated = false;
}

static void assert_latch(QRestrictedDevice *d, bool latched)
{
    g_autoptr(QDict) st = qrestricted_status(d);

    g_assert_cmpstr(qdict_get_str(st, "policy"), ==, "opt-in");
    g_assert_cmpint(qdict_get_bool(st, "latched"), ==, latched);
    g_assert_cmpint(qdict_get_bool(st, "confined"), ==, latched);
}

/* Before a driver opts in: DMA anywhere, no violation, no refusal. */
static void test_opt_in_unconfined(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);

    /* the device offers the feature and the window as under refuse */
    g_assert_true(qrestricted_offered(d) & F(QVIRTIO_F_RESTRICTED_DMA));
    qrestricted_window(d);
    unaware_roundtrip(d, 2, 0x41);
    assert_latch(d, false);
    g_assert_false(qrestricted_bool(d, "driver-accepted"));
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 0);
    qrestricted_stop(&m);
}

/* A driver that opts in gets the full confinement, as under refuse. */
static void test_opt_in_confined(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);
    QVirtQueue *vq = qrestricted_driver(d);
    uint64_t data = guest_alloc(&m.ram, SECTOR);

    assert_latch(d, true);
    g_assert_true(qrestricted_bool(d, "driver-accepted"));
    blk_roundtrip(d, vq, 0, 0x52);
    /* a buffer outside the window over a canary */
    qrestricted_hostile_buffer(d, vq, data, SECTOR, data, SECTOR);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
    qrestricted_stop(&m);
}

/* Bit 27 without ACCESS_PLATFORM is no way to opt in. */
static void test_opt_in_needs_access_platform(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);

    g_assert_false(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1) |
                                            F(QVIRTIO_F_RESTRICTED_DMA)));
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 1);
    assert_latch(d, false);
    qrestricted_stop(&m);
}

/*
 * The latch holds across a device reset (a kexec, a driver unbind): the
 * next driver that declines the feature is refused, as under refuse, and
 * one that accepts it works.
 */
static void test_opt_in_latch_holds(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);
    QVirtQueue *vq;

    qrestricted_driver(d);
    assert_latch(d, true);
    driver_restart(d);
    assert_latch(d, true);
    qrestricted_offered(d);
    g_assert_false(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1)));
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 1);
    /* a driver that skips negotiation gets nothing either */
    qrestricted_force_driver_ok(d);
    g_assert_false(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_DRIVER_OK);
    driver_restart(d);
    qrestricted_window_reset(d->win);
    vq = qrestricted_driver(d);
    blk_roundtrip(d, vq, 4, 0x63);
    assert_latch(d, true);
    qrestricted_stop(&m);
}

/* Only a reset of the machine clears the latch. */
static void test_opt_in_latch_machine_reset(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);

    qrestricted_driver(d);
    assert_latch(d, true);
    qtest_qmp_assert_success(m.qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(m.qts, "RESET");
    assert_latch(d, false);
    /* an ordinary device again: firmware after a reboot may use it */
    qrestricted_release(d);
    d = qrestricted_pci(&m, DEVFN, "dev0");
    unaware_roundtrip(d, 6, 0x74);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    assert_latch(d, false);
    qrestricted_stop(&m);
}

/* The latch is part of the device's migrated state. */
static void test_opt_in_latch_migrated(void)
{
    QRestrictedMachine src = { 0 }, dst = { 0 };
    g_autofree char *uri = migration_uri();
    QRestrictedDevice *d = start_blk(&src, OPT_IN);

    qrestricted_driver(d);
    assert_latch(d, true);
    qrestricted_start(&dst, "-drive if=none,id=drive0,file=%s,format=raw "
                      "-device virtio-blk-pci,id=dev0,addr=%d.0,"
                      "drive=drive0,disable-legacy=on," OPT_IN " -incoming %s",
                      src.img[0], DEV_SLOT, uri);
    migrate_qmp(src.qts, dst.qts, uri, NULL, "{}");
    wait_for_migration_complete(src.qts);
    qtest_qmp_eventwait(dst.qts, "RESUME");
    d = qrestricted_adopt(&dst, d);
    assert_latch(d, true);
    /* confined on the destination: an unaware driver is refused */
    driver_restart(d);
    qrestricted_offered(d);
    g_assert_false(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1)));
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 1);
    qrestricted_stop(&dst);
    qrestricted_stop(&src);
}

/* ---- hostile drivers ----------------------------------------------- */

static void test_hostile_rings_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QGuestAllocator *a = &qrestricted_window(d)->alloc;
    QVirtQueue *vq;

    qrestricted_negotiate(d);
    vq = qvirtqueue_setup(d->vdev, &m.ram, 0);
    qrestricted_expect_violation(d, "descriptor ring", vq->desc,
                                 16 * vq->size);
    qrestricted_wait_needs_reset(d);
    /* the driver goes on anyway: the device touches nothing */
    qrestricted_assert_inert(d, vq, a, vq->used, 4 + 8 * vq->size);
    reset_and_recover(d);
    qrestricted_stop(&m);
}

/* A request whose buffer is at @data, length @len: a violation. */
static void hostile_buffer(QRestrictedDevice *d, uint64_t data, uint32_t len,
                           uint64_t canary, size_t canary_len)
{
    QVirtQueue *vq = qrestricted_driver(d);

    qrestricted_hostile_buffer(d, vq, data, len, canary, canary_len);
    reset_and_recover(d);
}

static void test_hostile_buffer_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    uint64_t data = guest_alloc(&m.ram, SECTOR);

    hostile_buffer(d, data, SECTOR, data, SECTOR);
    qrestricted_stop(&m);
}

static void test_hostile_buffer_straddles_end(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QRestrictedWindow *w = qrestricted_window(d);
    uint64_t end = w->base + w->size;

    /* the half inside the window must not be written either */
    hostile_buffer(d, end - SECTOR / 2, SECTOR, end - SECTOR / 2,
                   SECTOR / 2);
    qrestricted_stop(&m);
}

static void test_hostile_buffer_wraps(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    uint64_t addr = 0xfffffffffffff000ULL;

    /*
     * addr + len wraps around to 0x1000.  On x86 guest RAM starts at 0,
     * so the wrapped part lands on RAM: a canary there stays.  On arm
     * virt, flash is at 0 and no canary can be written.
     */
    hostile_buffer(d, addr, 0x2000, 0, m.x86 ? 0x1000 : 0);
    qrestricted_stop(&m);
}

static void test_hostile_indirect_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");

    qrestricted_hostile_indirect(d, qrestricted_driver(d));
    reset_and_recover(d);
    qrestricted_stop(&m);
}

static void test_hostile_used_ring_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QGuestAllocator *a = &qrestricted_window(d)->alloc;
    QVirtQueue *vq;
    uint64_t used;
    size_t used_len;

    qrestricted_negotiate(d);
    used = guest_alloc(&m.ram, 4096);
    vq = qrestricted_virtqueue_setup_used_at(d->pci, a, 0, used);
    used_len = 4 + 8 * vq->size;
    qrestricted_expect_violation(d, "device (used) ring", used, used_len);
    qrestricted_wait_needs_reset(d);
    qrestricted_assert_inert(d, vq, a, used, used_len);
    reset_and_recover(d);
    qrestricted_stop(&m);
}

/*
 * An MSI-X message is a DMA write of the device too: vector 0 of queue 0
 * at @addr with @data; then one request, completed, on a device that
 * polls its used ring.
 */
static uint32_t msix_request(QRestrictedDevice *d, QVirtQueue *vq,
                             uint64_t addr, uint32_t data)
{
    QPCIDevice *pdev = d->pci->pdev;
    uint64_t off = pdev->msix_table_off;
    uint64_t buf = qrestricted_put(d, NULL, SECTOR);
    uint64_t status;
    uint32_t ctrl;

    qpci_io_writel(pdev, pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_LOWER_ADDR, addr & 0xffffffff);
    qpci_io_writel(pdev, pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_UPPER_ADDR, addr >> 32);
    qpci_io_writel(pdev, pdev->msix_table_bar, off + PCI_MSIX_ENTRY_DATA,
                   data);
    ctrl = qpci_io_readl(pdev, pdev->msix_table_bar,
                         off + PCI_MSIX_ENTRY_VECTOR_CTRL);
    qpci_io_writel(pdev, pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_VECTOR_CTRL,
                   ctrl & ~PCI_MSIX_ENTRY_CTRL_MASKBIT);
    d->pci->msix_ops->set_queue_vector(d->pci, vq->index, 0);
    return qrestricted_blk_submit(d, vq, &qrestricted_window(d)->alloc,
                                  VIRTIO_BLK_T_IN, 0, buf, SECTOR, &status);
}

static QRestrictedDevice *start_blk_msix(QRestrictedMachine *m,
                                         QVirtQueue **vq)
{
    QRestrictedDevice *d = start_blk(m, "restricted-dma-bar-size=1M");

    qpci_msix_enable(d->pci->pdev);
    *vq = qrestricted_driver(d);
    return d;
}

/* A vector aimed at the window: the message is delivered there. */
static void test_msix_in_window(void)
{
    QRestrictedMachine m = { 0 };
    QVirtQueue *vq;
    QRestrictedDevice *d = start_blk_msix(&m, &vq);
    uint64_t msg = qrestricted_put(d, NULL, 4);

    qrestricted_wait_used(d, vq, msix_request(d, vq, msg, 0x4d5349));
    qrestricted_settle(m.qts);
    g_assert_cmphex(qtest_readl(m.qts, msg), ==, 0x4d5349);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    qrestricted_stop(&m);
}

/* A vector aimed at the interrupt controller is an interrupt, not DMA. */
static void test_msix_interrupt_controller(void)
{
    QRestrictedMachine m = { 0 };
    QVirtQueue *vq;
    QRestrictedDevice *d = start_blk_msix(&m, &vq);

    /* x86: the local APIC, fixed delivery of vector 0x30 to CPU 0 */
    qrestricted_wait_used(d, vq, msix_request(d, vq, 0xfee00000, 0x30));
    qrestricted_settle(m.qts);
    g_assert_false(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    qrestricted_stop(&m);
}

/*
 * A vector aimed at guest RAM outside the window: the request completes
 * in the window, but the message is not written; it is a violation.
 */
static void test_msix_outside(void)
{
    QRestrictedMachine m = { 0 };
    QVirtQueue *vq;
    QRestrictedDevice *d = start_blk_msix(&m, &vq);
    uint64_t canary = qrestricted_canary(d, 4);

    msix_request(d, vq, canary, 0x4d5349);
    qrestricted_expect_violation(d, "MSI message", canary, 4);
    qrestricted_wait_needs_reset(d);
    qrestricted_assert_filled(m.qts, canary, QRESTRICTED_CANARY, 4);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
    qrestricted_stop(&m);
}

/* Once a driver opted in, the hostile cases are caught as with refuse. */
static void test_opt_in_hostile_rings(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);
    QGuestAllocator *a = &qrestricted_window(d)->alloc;
    QVirtQueue *vq;

    qrestricted_negotiate(d);
    assert_latch(d, true);
    vq = qvirtqueue_setup(d->vdev, &m.ram, 0);
    qrestricted_expect_violation(d, "descriptor ring", vq->desc,
                                 16 * vq->size);
    qrestricted_wait_needs_reset(d);
    qrestricted_assert_inert(d, vq, a, vq->used, 4 + 8 * vq->size);
    reset_and_recover(d);
    assert_latch(d, true);
    qrestricted_stop(&m);
}

static void test_opt_in_hostile_indirect(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, OPT_IN);

    qrestricted_hostile_indirect(d, qrestricted_driver(d));
    assert_latch(d, true);
    reset_and_recover(d);
    qrestricted_stop(&m);
}

/* ---- the window follows the BAR ------------------------------------ */

static void test_bar_move(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QVirtQueue *vq = qrestricted_driver(d);
    uint64_t old, data, status;

    blk_roundtrip(d, vq, 0, 0x50);

    /* the guest moves the BAR; the driver sets up again at the new place */
    qvirtio_reset(d->vdev);
    old = qrestricted_window_move(d->win);
    g_assert_cmphex(old, !=, d->win->bar_addr);
    g_assert_cmphex(qrestricted_int(d, "window-address"), ==,
                    d->win->bar_addr);
    g_assert_true(qrestricted_bool(d, "window-open"));
    qvirtio_set_acknowledge(d->vdev);
    qvirtio_set_driver(d->vdev);
    vq = qrestricted_driver(d);
    blk_roundtrip(d, vq, 16, 0x60);

    /* the old address is outside now */
    data = old + 4096;
    qrestricted_blk_submit(d, vq, &d->win->alloc, VIRTIO_BLK_T_IN, 0, data,
                           SECTOR, &status);
    qrestricted_expect_violation(d, "buffer", data, SECTOR);
    qrestricted_wait_needs_reset(d);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
    qrestricted_stop(&m);
}

static void test_bus_master(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-bar-size=1M");
    QVirtQueue *vq = qrestricted_driver(d);
    uint64_t data, status;
    uint16_t cmd;
    QDict *ev;

    blk_roundtrip(d, vq, 0, 0x70);
    g_assert_true(qrestricted_bool(d, "window-open"));

    cmd = qpci_config_readw(d->pci->pdev, PCI_COMMAND);
    qpci_config_writew(d->pci->pdev, PCI_COMMAND,
                       cmd & ~PCI_COMMAND_MASTER);
    g_assert_false(qrestricted_bool(d, "window-open"));

    /* DMA fails: the request is not processed, the buffer is unchanged */
    data = guest_alloc(&d->win->alloc, SECTOR);
    qrestricted_fill(m.qts, data, CANARY, SECTOR);
    qrestricted_blk_submit(d, vq, &d->win->alloc, VIRTIO_BLK_T_IN, 0, data,
                           SECTOR, &status);
    /* the device tries to read its ring: a violation, the window is shut */
    ev = qtest_qmp_eventwait_ref(m.qts, "VIRTIO_RESTRICTED_DMA_VIOLATION");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "access"),
                    ==, "read");
    g_assert_false(qdict_get_bool(qdict_get_qdict(ev, "data"),
                                  "window-open"));
    qobject_unref(ev);
    qrestricted_settle(m.qts);
    qrestricted_assert_filled(m.qts, data, CANARY, SECTOR);
    g_assert_cmphex(qtest_readb(m.qts, status), ==, 0xff);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);

    qpci_config_writew(d->pci->pdev, PCI_COMMAND, cmd);
    g_assert_true(qrestricted_bool(d, "window-open"));
    qrestricted_stop(&m);
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
static bool qemu_starts(const char *machine, const char *args)
{
    g_autofree char *err = NULL;

    return qrestricted_run(machine, args, &err) == 0;
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
        QRestrictedMachine m = { 0 };
        QRestrictedDevice *d;
        uint64_t f;

        if (g_str_has_prefix(type, "vhost-")) {
            g_string_append_printf(skipped, " %s", type);
            continue;
        }
        args = g_strdup_printf("%s -device %s,id=dev0,addr=%d.0%s%s",
                               da ? da->before : "", type, DEV_SLOT,
                               da && *da->props ? "," : "",
                               da ? da->props : "");
        if (!qemu_starts(NULL, args)) {
            g_string_append_printf(skipped, " %s", type);
            continue;
        }
        qrestricted_start(&m, "%s", args);
        d = qrestricted_pci(&m, DEVFN, "dev0");
        f = qvirtio_get_features(d->vdev);
        if (!(f & F(VIRTIO_F_VERSION_1))) {
            /* a legacy-only device: no modern interface */
            qrestricted_stop(&m);
            continue;
        }
        g_assert_cmphex(f & F(QVIRTIO_F_RESTRICTED_DMA), ==, 0);
        g_assert_false(qrestricted_find_cap(d->pci, &(uint8_t){0},
                                            &(uint32_t){0}, &(uint32_t){0}));
        snd |= g_str_has_prefix(type, "virtio-sound-pci");
        checked++;
        qrestricted_stop(&m);
    }
    g_test_message("bit 27 absent on %d virtio-pci device types; not "
                   "started here (no backend):%s", checked, skipped->str);
    g_assert_cmpint(checked, >=, 10);
    if (qemu_starts("none", "-audiodev none,id=a1 "
                    "-device virtio-sound-pci,audiodev=a1")) {
        g_assert_true(snd);
    }
}

/* A modern driver that writes bit 27 anyway does not get it. */
static void test_bit27_masked_on_write(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_blk(&m, "restricted-dma-policy=refuse");
    g_autoptr(QDict) rsp = NULL;
    QDict *ret;
    QList *transports;
    QListEntry *e;

    g_assert_true(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1) |
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
    qrestricted_stop(&m);
}

/* ---- configuration errors, at startup and as a device_add ---------- */

typedef struct BadConfig {
    const char *name;
    const char *args;           /* after the machine */
    const char *message;        /* must appear on stderr */
    const char *x86_machine;    /* instead of "pc" */
    /* the same refusals as device_add on a root port, with backends */
    const QRestrictedPlug *plugs;
} BadConfig;

#define BLK "-drive if=none,id=d0,file=null-co://,format=raw " \
            "-device virtio-blk-pci,drive=d0,"

/* the backends of the hot-plugged devices, and what they are given */
#define DRIVE "-drive if=none,id=d0,file=null-co://,format=raw"
#define BLOCKDEV "-blockdev driver=null-co,node-name=d0"
#define NETDEV "-netdev user,id=n0"
#define ON_DRIVE "'drive': 'd0', 'disable-legacy': 'on', "
#define ON_NETDEV "'netdev': 'n0', 'disable-legacy': 'on', "
#define BAR_1M "'restricted-dma-bar-size': 1048576"
#define BLK_PLUG(bad, good) \
    { DRIVE, "virtio-blk-pci", ON_DRIVE bad, ON_DRIVE good }
#define PLUGS(...) ((const QRestrictedPlug[]) { __VA_ARGS__, { NULL } })

static const BadConfig bad_configs[] = {
    { "not-pow2", BLK "disable-legacy=on,restricted-dma-bar-size=3M",
      "restricted-dma-bar-size=3 MiB is not a power of two", NULL,
      PLUGS(BLK_PLUG("'restricted-dma-bar-size': 3145728", BAR_1M),
            { BLOCKDEV, "virtio-blk-pci",
              ON_DRIVE "'restricted-dma-bar-size': 3145728",
              ON_DRIVE BAR_1M },
            { NETDEV, "virtio-net-pci",
              ON_NETDEV "'restricted-dma-bar-size': 3145728",
              ON_NETDEV BAR_1M }) },
    { "below-min", BLK "disable-legacy=on,restricted-dma-bar-size=64K",
      "is below the minimum of", NULL,
      PLUGS(BLK_PLUG("'restricted-dma-bar-size': 65536", BAR_1M)) },
    /*
     * The minimum counts every queue: 16 queues of 1024 need 672 KiB
     * (their rings and one request), so 512 KiB is refused for them and
     * taken for one queue of the same size.
     */
    { "below-min-queues", BLK "disable-legacy=on,num-queues=16,"
      "queue-size=1024,restricted-dma-bar-size=512K",
      "is below the minimum of 672 KiB (688640 bytes)", NULL,
      PLUGS(BLK_PLUG("'num-queues': 16, 'queue-size': 1024, "
                     "'restricted-dma-bar-size': 524288",
                     "'num-queues': 1, 'queue-size': 1024, "
                     "'restricted-dma-bar-size': 524288")) },
    { "above-max", BLK "disable-legacy=on,restricted-dma-bar-size=4G",
      "is above the maximum of 2 GiB", NULL,
      PLUGS(BLK_PLUG("'restricted-dma-bar-size': 4294967296", BAR_1M)) },
    { "transitional", BLK "disable-legacy=off,restricted-dma-bar-size=1M",
      "Set disable-legacy=on, or use virtio-blk-pci-non-transitional", NULL,
      /* the hint that says what to set is not part of a QMP error */
      PLUGS({ DRIVE, "virtio-blk-pci",
              "'drive': 'd0', 'disable-legacy': 'off', " BAR_1M,
              ON_DRIVE BAR_1M, NULL, "restricted-dma-bar-size needs a "
              "modern-only (virtio 1.x) device; virtio-blk-pci here has a "
              "legacy interface" },
            { NETDEV, "virtio-net-pci",
              "'netdev': 'n0', 'disable-legacy': 'off', " BAR_1M,
              ON_NETDEV BAR_1M, NULL, "restricted-dma-bar-size needs a "
              "modern-only (virtio 1.x) device; virtio-net-pci here has a "
              "legacy interface" }) },
    { "transitional-type", "-device virtio-rng-pci-transitional,"
      "restricted-dma-bar-size=1M", "needs a modern-only", NULL,
      PLUGS({ "-object rng-builtin,id=rng0",
              "virtio-rng-pci-transitional", "'rng': 'rng0', " BAR_1M,
              "'rng': 'rng0', " BAR_1M,
              "virtio-rng-pci-non-transitional" }) },
    { "modern-off", BLK "disable-modern=on,restricted-dma-bar-size=1M",
      "needs a modern-only", NULL,
      PLUGS({ DRIVE, "virtio-blk-pci", "'drive': 'd0', 'disable-legacy': "
              "'off', 'disable-modern': true, " BAR_1M, ON_DRIVE BAR_1M }) },
    { "iommu-platform-off", BLK "disable-legacy=on,iommu_platform=off,"
      "restricted-dma-bar-size=1M", "iommu_platform=off was given", NULL,
      PLUGS(BLK_PLUG("'iommu_platform': false, " BAR_1M, BAR_1M)) },
    { "bar-in-use", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-bar=4", "restricted-dma-bar=4: BAR 4 is in use by "
      "the virtio-pci modern BAR", NULL,
      PLUGS(BLK_PLUG(BAR_1M ", 'restricted-dma-bar': 4", BAR_1M)) },
    { "bar-msix", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-bar=1", "BAR 1 is in use by the MSI-X BAR", NULL,
      PLUGS(BLK_PLUG(BAR_1M ", 'restricted-dma-bar': 1", BAR_1M)) },
    { "bar-64bit-slot", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-bar=5", "is not a BAR that can hold a 64-bit window",
      NULL, PLUGS(BLK_PLUG(BAR_1M ", 'restricted-dma-bar': 5", BAR_1M)) },
    { "bar-without-size", BLK "disable-legacy=on,restricted-dma-bar=0",
      "restricted-dma-bar=0 has no effect without restricted-dma-bar-size",
      NULL,
      /* a 64-bit BAR 0 takes BAR 1 too: no MSI-X */
      PLUGS(BLK_PLUG("'restricted-dma-bar': 0",
                     "'restricted-dma-bar': 0, 'vectors': 0, " BAR_1M)) },
    { "policy-without-window", BLK "disable-legacy=on,"
      "restricted-dma-policy=tolerate",
      "restricted-dma-policy=tolerate needs a restricted DMA window", NULL,
      PLUGS(BLK_PLUG("'restricted-dma-policy': 'tolerate'",
                     "'restricted-dma-policy': 'tolerate', " BAR_1M)) },
    { "bad-policy", BLK "disable-legacy=on,restricted-dma-bar-size=1M,"
      "restricted-dma-policy=maybe", "restricted-dma-policy", NULL,
      PLUGS(BLK_PLUG(BAR_1M ", 'restricted-dma-policy': 'maybe'",
                     BAR_1M ", 'restricted-dma-policy': 'tolerate'")) },
    { "balloon", "-device virtio-balloon-pci,disable-legacy=on,"
      "restricted-dma-bar-size=1M", "works on guest RAM by design", NULL,
      PLUGS({ "", "virtio-balloon-pci", "'disable-legacy': 'on', " BAR_1M,
              "'disable-legacy': 'on'" }) },
    /* as a device_add in virtio-restricted-dma-vhost-user-test.c */
    { "vhost-user-anonymous-window",
      "-chardev socket,id=c0,path=/tmp/qtest-rdma-none.sock,"
      "server=on,wait=off -device vhost-user-blk-pci,chardev=c0,"
      "restricted-dma-bar-size=1M", "restricted-dma-bar-size cannot be used "
      "with vhost-user-blk-pci unless the window is shared memory" },
    { "opt-in-vhost-user",
      "-chardev socket,id=c0,path=/tmp/qtest-rdma-none.sock,"
      "server=on,wait=off "
      "-object memory-backend-memfd,id=w0,size=1M,share=on "
      "-device vhost-user-blk-pci,chardev=c0,disable-legacy=on,"
      "restricted-dma-bar-memdev=w0,restricted-dma-policy=opt-in",
      "restricted-dma-policy=opt-in cannot be used with a vhost backend" },
    { "viommu", "-device virtio-iommu-pci " BLK "disable-legacy=on,"
      "restricted-dma-bar-size=1M", "behind a vIOMMU", "q35",
      PLUGS({ "-device virtio-iommu-pci " DRIVE, "virtio-blk-pci",
              ON_DRIVE BAR_1M, "'drive': 'd0', 'disable-legacy': 'on'" }) },
};

static void test_bad_config(const void *opaque)
{
    const BadConfig *bc = opaque;

    /* a clean error exit: status 1, not a crash, not a hang */
    qrestricted_assert_run(qrestricted_machine_is_x86(NULL) ?
                           bc->x86_machine : NULL, bc->args, 1, bc->message);
}

/* What kind of backend the device_add case @p is about, for its name */
static const char *plug_kind(const QRestrictedPlug *p)
{
    static const char *const kinds[] = {
        "drive", "blockdev", "netdev", "chardev", "object",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(kinds); i++) {
        g_autofree char *opt = g_strdup_printf("-%s ", kinds[i]);

        if (strstr(p->backend, opt)) {
            return kinds[i];
        }
    }
    return "no-backend";
}

typedef struct PlugCase {
    const QRestrictedPlug *plug;
    const char *message;
} PlugCase;

static void test_bad_plug(const void *opaque)
{
    const PlugCase *pc = opaque;

    qtest_quit(qrestricted_plug_refused(pc->plug, pc->message));
}

/* ---- migration ----------------------------------------------------- */

static char *migration_uri(void)
{
    return g_strdup_printf("unix:%s/qtest-rdma-%d.sock", g_get_tmp_dir(),
                           getpid());
}

static void test_migration(void)
{
    QRestrictedMachine src = { 0 }, dst = { 0 };
    g_autofree char *uri = migration_uri();
    QRestrictedDevice *d = start_blk(&src, "restricted-dma-bar-size=1M");
    QVirtQueue *vq = qrestricted_driver(d);
    QGuestAllocator *a = &d->win->alloc;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(VIRTIO_BLK_T_IN),
    };
    uint64_t keep, data, status, hdr_addr;
    uint32_t head;
    uint8_t pattern[SECTOR], back[SECTOR];
    size_t i;

    blk_roundtrip(d, vq, 0, 0x11);
    /* data in the window that the migration must carry */
    for (i = 0; i < sizeof(pattern); i++) {
        pattern[i] = i * 13 + 5;
    }
    keep = guest_alloc(a, sizeof(pattern));
    qtest_memwrite(src.qts, keep, pattern, sizeof(pattern));
    data = guest_alloc(a, 4 * SECTOR);
    status = guest_alloc(a, 1);
    hdr_addr = guest_alloc(a, sizeof(hdr));

    /* the destination shares the source's image */
    qrestricted_start(&dst, "-drive if=none,id=drive0,file=%s,format=raw "
                      "-device virtio-blk-pci,id=dev0,addr=%d.0,"
                      "drive=drive0,disable-legacy=on,"
                      "restricted-dma-bar-size=1M -incoming %s",
                      src.img[0], DEV_SLOT, uri);
    migrate_qmp(src.qts, dst.qts, uri, NULL, "{}");
    wait_for_migration_complete(src.qts);
    qtest_qmp_eventwait(dst.qts, "RESUME");
    d = qrestricted_adopt(&dst, d);

    qtest_memread(dst.qts, keep, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
    g_assert_true(qrestricted_bool(d, "window-open"));
    g_assert_true(qrestricted_bool(d, "driver-accepted"));
    g_assert_cmphex(qrestricted_int(d, "window-address"), ==,
                    d->win->bar_addr);

    /* the queue goes on where it was, on the destination */
    vq->vdev = d->vdev;
    qtest_memwrite(dst.qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(dst.qts, status, 0xff);
    qrestricted_fill(dst.qts, data, 0, 4 * SECTOR);
    head = qvirtqueue_add(dst.qts, vq, hdr_addr, sizeof(hdr), false, true);
    qvirtqueue_add(dst.qts, vq, data, 4 * SECTOR, true, true);
    qvirtqueue_add(dst.qts, vq, status, 1, true, false);
    qvirtqueue_kick(dst.qts, d->vdev, vq, head);
    qvirtio_wait_used_elem(dst.qts, d->vdev, vq, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(qtest_readb(dst.qts, status), ==, VIRTIO_BLK_S_OK);
    /* sector 0 holds what blk_roundtrip(seed 0x11) wrote */
    g_assert_cmphex(qtest_readb(dst.qts, data), ==, 0x11);
    g_assert_cmphex(qtest_readb(dst.qts, data + 1), ==, (uint8_t)(0x11 + 7));
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);

    qrestricted_stop(&dst);
    qrestricted_stop(&src);
}

/*
 * A destination that differs fails the migration and says why.  It fails
 * after the source has sent everything: only the destination knows.
 */
static void migration_mismatch(const char *dst_props, const char *message)
{
    QRestrictedMachine src = { 0 }, dst = { 0 };
    g_autofree char *uri = migration_uri();
    g_autofree char *errfile = g_strdup_printf("%s/qtest-rdma-%d.err",
                                               g_get_tmp_dir(), getpid());
    g_autofree char *err = NULL;
    QRestrictedDevice *d = start_blk(&src, "restricted-dma-bar-size=1M");

    qrestricted_driver(d);
    qrestricted_start(&dst, "-drive if=none,id=drive0,file=%s,format=raw "
                      "-device virtio-blk-pci,id=dev0,addr=%d.0,"
                      "drive=drive0,disable-legacy=on%s -incoming %s 2>%s",
                      src.img[0], DEV_SLOT, dst_props, uri, errfile);
    qtest_set_expected_status(dst.qts, EXIT_FAILURE);
    migrate_qmp(src.qts, dst.qts, uri, NULL, "{}");
    qtest_wait_qemu(dst.qts);
    g_assert_true(g_file_get_contents(errfile, &err, NULL, NULL));
    unlink(errfile);
    if (!strstr(err, message)) {
        g_error("expected '%s' in:\n%s", message, err);
    }
    qrestricted_stop(&dst);
    qrestricted_stop(&src);
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
    qtest_add_func("/virtio-rdma/opt-in/unconfined", test_opt_in_unconfined);
    qtest_add_func("/virtio-rdma/opt-in/confined", test_opt_in_confined);
    qtest_add_func("/virtio-rdma/opt-in/needs-access-platform",
                   test_opt_in_needs_access_platform);
    qtest_add_func("/virtio-rdma/opt-in/hostile-rings",
                   test_opt_in_hostile_rings);
    qtest_add_func("/virtio-rdma/opt-in/hostile-indirect",
                   test_opt_in_hostile_indirect);
    qtest_add_func("/virtio-rdma/opt-in/latch-holds", test_opt_in_latch_holds);
    qtest_add_func("/virtio-rdma/opt-in/latch-machine-reset",
                   test_opt_in_latch_machine_reset);
    qtest_add_func("/virtio-rdma/opt-in/latch-migrated",
                   test_opt_in_latch_migrated);
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
    qtest_add_func("/virtio-rdma/hostile/msix-outside", test_msix_outside);
    qtest_add_func("/virtio-rdma/msix/in-window", test_msix_in_window);
    if (qrestricted_machine_is_x86(NULL)) {
        qtest_add_func("/virtio-rdma/msix/interrupt-controller",
                       test_msix_interrupt_controller);
    }
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
    for (i = 0; i < G_N_ELEMENTS(bad_configs); i++) {
        const QRestrictedPlug *p;

        for (p = bad_configs[i].plugs; p && p->backend; p++) {
            PlugCase *pc = g_new(PlugCase, 1);
            g_autofree char *path = NULL;

            pc->plug = p;
            pc->message = bad_configs[i].message;
            path = g_strdup_printf("/virtio-rdma/hotplug/%s/%s",
                                   bad_configs[i].name, plug_kind(p));
            qtest_add_data_func_full(path, pc, test_bad_plug, g_free);
        }
    }
    qtest_add_func("/virtio-rdma/migration/io", test_migration);
    qtest_add_func("/virtio-rdma/migration/no-window",
                   test_migration_no_window);
    qtest_add_func("/virtio-rdma/migration/other-policy",
                   test_migration_other_policy);

    return g_test_run();
}
