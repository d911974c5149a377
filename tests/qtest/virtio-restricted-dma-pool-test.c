/*
 * QTest for restricted DMA pools (-object restricted-dma-pool) on arm virt
 *
 * The device-tree tests dump the board's device tree (-M virt,dumpdtb=)
 * and read it with libfdt; where a pool was placed, the same machine
 * says through QOM.  The device tests drive virtio-mmio (version 2) and
 * virtio-pci devices whose window is a pool in guest RAM, with rings and
 * buffers placed in the pool, and hostile drivers that place them
 * elsewhere over a canary.  On x86 only the refusal of pools is tested:
 * no device tree reaches an x86 guest.  Each refusal that a device_add
 * can meet is also tried as one, on a PCIe root port: it must leave the
 * backends as they were.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <libfdt.h>
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/fw_cfg.h"
#include "libqos/pci.h"
#include "libqos/virtio.h"
#include "libqos/virtio-restricted-dma.h"
#include "migration/migration-qmp.h"

#define POOL_SIZE (16 * MiB)
#define CANARY 0xa5
#define SECTOR 512
#define DISK_SIZE (1 * MiB)
#define F(bit) (1ULL << (bit))
#define F_AWARE QRESTRICTED_F_AWARE


/* ---- the device tree ----------------------------------------------- */

/* The device tree the board writes for @args (after the machine). */
static void *dump_dtb(const char *args)
{
    g_autofree char *path = g_strdup_printf("/tmp/qtest-rdma-pool-%d.dtb",
                                            getpid());
    g_autofree char *machine = g_strdup_printf("virt,dumpdtb=%s", path);
    g_autofree char *err = NULL;
    gchar *dtb;
    gsize len;

    if (qrestricted_run(machine, args, &err) != 0) {
        g_error("QEMU %s failed:\n%s", args, err);
    }
    g_assert_true(g_file_get_contents(path, &dtb, &len, NULL));
    unlink(path);
    g_assert_cmpint(fdt_check_header(dtb), ==, 0);
    return dtb;
}

/* Where the board placed the pool @id, for @args, as QOM says. */
static uint64_t placed(const char *args, const char *id)
{
    QRestrictedMachine m = { .machine = "virt" };
    uint64_t base;

    qrestricted_start(&m, "%s", args);
    base = qrestricted_pool(&m, id)->base;
    qrestricted_stop(&m);
    return base;
}

static uint32_t prop_u32(const void *fdt, int node, const char *name)
{
    int len;
    const fdt32_t *p = fdt_getprop(fdt, node, name, &len);

    g_assert_nonnull(p);
    g_assert_cmpint(len, ==, 4);
    return fdt32_to_cpu(*p);
}

/* The pool node at @base: checked, and its phandle returned. */
static uint32_t check_pool_node(const void *fdt, uint64_t base,
                                uint64_t size)
{
    static const char *const forbidden[] = {
        "no-map", "reusable", "linux,cma-default", "linux,dma-default",
    };
    g_autofree char *path = g_strdup_printf("/reserved-memory/"
                                            "restricted-dma@%" PRIx64,
                                            (uint64_t)base);
    int rm = fdt_path_offset(fdt, "/reserved-memory");
    int node = fdt_path_offset(fdt, path);
    const fdt32_t *reg;
    int len, i;

    g_assert_cmpint(rm, >=, 0);
    g_assert_cmpint(prop_u32(fdt, rm, "#address-cells"), ==, 2);
    g_assert_cmpint(prop_u32(fdt, rm, "#size-cells"), ==, 2);
    g_assert_nonnull(fdt_getprop(fdt, rm, "ranges", &len));
    g_assert_cmpint(len, ==, 0);

    g_assert_cmpint(node, >=, 0);
    g_assert_cmpint(fdt_node_check_compatible(fdt, node,
                                              "restricted-dma-pool"), ==, 0);
    reg = fdt_getprop(fdt, node, "reg", &len);
    g_assert_nonnull(reg);
    g_assert_cmpint(len, ==, 16);
    g_assert_cmphex(((uint64_t)fdt32_to_cpu(reg[0]) << 32) |
                    fdt32_to_cpu(reg[1]), ==, base);
    g_assert_cmphex(((uint64_t)fdt32_to_cpu(reg[2]) << 32) |
                    fdt32_to_cpu(reg[3]), ==, size);
    for (i = 0; i < G_N_ELEMENTS(forbidden); i++) {
        g_assert_null(fdt_getprop(fdt, node, forbidden[i], NULL));
    }
    g_assert_cmpint(fdt_get_phandle(fdt, node), !=, 0);
    return fdt_get_phandle(fdt, node);
}

/* memory-region of the node at @path, 0 if it has none */
static uint32_t memory_region(const void *fdt, const char *path)
{
    int node = fdt_path_offset(fdt, path);

    g_assert_cmpint(node, >=, 0);
    if (!fdt_getprop(fdt, node, "memory-region", NULL)) {
        return 0;
    }
    return prop_u32(fdt, node, "memory-region");
}

static char *mmio_node(int nth_device)
{
    return g_strdup_printf("/virtio_mmio@%" PRIx64,
                           (uint64_t)(QRESTRICTED_MMIO_LAST -
                                      nth_device * QRESTRICTED_MMIO_STRIDE));
}

static int count_memory_regions(const void *fdt)
{
    int node, n = 0;

    for (node = fdt_next_node(fdt, -1, NULL); node >= 0;
         node = fdt_next_node(fdt, node, NULL)) {
        n += fdt_getprop(fdt, node, "memory-region", NULL) != NULL;
    }
    return n;
}

#define RNG_P0 "-object restricted-dma-pool,id=p0,size=16M " \
               "-device virtio-rng-device,restricted-dma-pool=p0"

static void test_dt_mmio(void)
{
    g_autofree void *fdt = dump_dtb(RNG_P0);
    g_autofree char *dev = mmio_node(0);
    g_autofree char *other = mmio_node(1);
    uint64_t base = placed(RNG_P0, "p0");
    uint32_t ph = check_pool_node(fdt, base, POOL_SIZE);

    /* the board puts the first pool at the top of RAM */
    g_assert_cmphex(base, ==, QRESTRICTED_ARM_RAM_BASE + 256 * MiB -
                    POOL_SIZE);

    g_assert_cmpint(memory_region(fdt, dev), ==, ph);
    g_assert_cmpint(memory_region(fdt, other), ==, 0);
    g_assert_cmpint(count_memory_regions(fdt), ==, 1);
}

/* The random seeds virt puts in /chosen differ from run to run. */
static void drop_seeds(void *fdt)
{
    int chosen = fdt_path_offset(fdt, "/chosen");

    g_assert_cmpint(chosen, >=, 0);
    fdt_delprop(fdt, chosen, "kaslr-seed");
    fdt_delprop(fdt, chosen, "rng-seed");
}

/* Same nodes, in the same order, with the same properties. */
static void assert_same_tree(const void *a, const void *b)
{
    int na = fdt_next_node(a, -1, NULL), nb = fdt_next_node(b, -1, NULL);

    while (na >= 0 && nb >= 0) {
        int pa, pb;

        g_assert_cmpstr(fdt_get_name(a, na, NULL), ==,
                        fdt_get_name(b, nb, NULL));
        pa = fdt_first_property_offset(a, na);
        pb = fdt_first_property_offset(b, nb);
        while (pa >= 0 && pb >= 0) {
            const char *name_a, *name_b;
            int len_a, len_b;
            const void *va = fdt_getprop_by_offset(a, pa, &name_a, &len_a);
            const void *vb = fdt_getprop_by_offset(b, pb, &name_b, &len_b);

            g_assert_cmpstr(name_a, ==, name_b);
            g_assert_cmpmem(va, len_a, vb, len_b);
            pa = fdt_next_property_offset(a, pa);
            pb = fdt_next_property_offset(b, pb);
        }
        g_assert_cmpint(pa < 0, ==, pb < 0);
        na = fdt_next_node(a, na, NULL);
        nb = fdt_next_node(b, nb, NULL);
    }
    g_assert_cmpint(na < 0, ==, nb < 0);
}

static void test_dt_no_pool(void)
{
    g_autofree void *plain = dump_dtb("-device virtio-rng-device");
    g_autofree void *unused = dump_dtb(
        "-object restricted-dma-pool,id=p0,size=16M "
        "-device virtio-rng-device");

    g_assert_cmpint(fdt_path_offset(plain, "/reserved-memory"), <, 0);
    g_assert_cmpint(count_memory_regions(plain), ==, 0);
    /* a pool that no device uses changes nothing either (but the seeds) */
    drop_seeds(plain);
    drop_seeds(unused);
    assert_same_tree(plain, unused);
}

static void test_dt_shared(void)
{
    const char *args = "-object restricted-dma-pool,id=p0,size=16M "
                       "-device virtio-rng-device,restricted-dma-pool=p0 "
                       "-device virtio-rng-device,restricted-dma-pool=p0";
    g_autofree void *fdt = dump_dtb(args);
    g_autofree char *dev0 = mmio_node(0);
    g_autofree char *dev1 = mmio_node(1);
    uint32_t ph = check_pool_node(fdt, placed(args, "p0"), POOL_SIZE);
    int rm = fdt_path_offset(fdt, "/reserved-memory");

    g_assert_cmpint(memory_region(fdt, dev0), ==, ph);
    g_assert_cmpint(memory_region(fdt, dev1), ==, ph);
    /* one node for the one pool */
    g_assert_cmpint(fdt_next_subnode(fdt, fdt_first_subnode(fdt, rm)), <, 0);
}

static void test_dt_two_pools(void)
{
    const char *args = "-object restricted-dma-pool,id=p0,size=16M "
                       "-object restricted-dma-pool,id=p1,size=8M "
                       "-device virtio-rng-device,restricted-dma-pool=p0 "
                       "-device virtio-rng-device,restricted-dma-pool=p1";
    g_autofree void *fdt = dump_dtb(args);
    g_autofree char *dev0 = mmio_node(0);
    g_autofree char *dev1 = mmio_node(1);
    uint64_t base0 = placed(args, "p0");
    uint64_t base1 = placed(args, "p1");
    uint32_t ph0 = check_pool_node(fdt, base0, POOL_SIZE);
    uint32_t ph1 = check_pool_node(fdt, base1, 8 * MiB);

    /* p1 goes below p0, 2 MiB aligned */
    g_assert_cmphex(base1, ==, base0 - 8 * MiB);

    g_assert_cmpint(ph0, !=, ph1);
    g_assert_cmpint(memory_region(fdt, dev0), ==, ph0);
    g_assert_cmpint(memory_region(fdt, dev1), ==, ph1);
}

static void test_dt_pinned(void)
{
    const char *args = "-object restricted-dma-pool,id=p0,size=4M,"
                       "addr=0x48000000 "
                       "-device virtio-rng-device,restricted-dma-pool=p0";
    g_autofree void *fdt = dump_dtb(args);

    g_assert_cmphex(placed(args, "p0"), ==, 0x48000000);
    check_pool_node(fdt, 0x48000000, 4 * MiB);
}

static void test_dt_pci(void)
{
    const char *args = "-object restricted-dma-pool,id=p0,size=16M "
        "-device virtio-rng-pci,disable-legacy=on,addr=5.0,"
        "restricted-dma-pool=p0 "
        "-device pcie-root-port,id=rp0,addr=6.0,chassis=1 "
        "-device virtio-rng-pci,bus=rp0,addr=0.0,restricted-dma-pool=p0";
    g_autofree void *fdt = dump_dtb(args);
    uint32_t ph = check_pool_node(fdt, placed(args, "p0"), POOL_SIZE);
    int dev = fdt_path_offset(fdt, "/pcie@10000000/virtio@5,0");
    int port = fdt_path_offset(fdt, "/pcie@10000000/pci@6,0");
    int behind = fdt_path_offset(fdt, "/pcie@10000000/pci@6,0/virtio@0,0");
    const fdt32_t *reg;
    int len;

    g_assert_cmpint(dev, >=, 0);
    g_assert_cmpint(memory_region(fdt, "/pcie@10000000/virtio@5,0"), ==, ph);
    /* reg: bus 0, device 5, function 0, as the PCI bus binding says */
    reg = fdt_getprop(fdt, dev, "reg", &len);
    g_assert_cmpint(len, ==, 20);
    g_assert_cmphex(fdt32_to_cpu(reg[0]), ==, 5 << 11);
    g_assert_cmphex(fdt32_to_cpu(reg[1]) | fdt32_to_cpu(reg[2]) |
                    fdt32_to_cpu(reg[3]) | fdt32_to_cpu(reg[4]), ==, 0);

    /* a device behind a root port: nested under the port's node */
    g_assert_cmpint(port, >=, 0);
    g_assert_cmpint(prop_u32(fdt, port, "#address-cells"), ==, 3);
    g_assert_cmpint(prop_u32(fdt, port, "#size-cells"), ==, 2);
    g_assert_cmphex(fdt32_to_cpu(*(const fdt32_t *)
                                 fdt_getprop(fdt, port, "reg", NULL)), ==,
                    6 << 11);
    g_assert_cmpint(behind, >=, 0);
    g_assert_cmpint(memory_region(fdt,
                                  "/pcie@10000000/pci@6,0/virtio@0,0"),
                    ==, ph);
    g_assert_null(fdt_getprop(fdt, port, "memory-region", NULL));
}

static void test_dt_user_dtb(void)
{
    g_autofree char *dtb = g_strdup_printf("/tmp/qtest-rdma-user-%d.dtb",
                                           getpid());
    g_autofree char *kernel = g_strdup_printf("/tmp/qtest-rdma-kernel-%d",
                                              getpid());
    g_autofree char *args = NULL;
    g_autofree char *err = NULL;
    g_autofree char *node = NULL;
    g_autofree void *fdt = dump_dtb("");
    g_autofree char *image = g_malloc0(4096);
    uint64_t base = placed(RNG_P0, "p0");

    g_assert_true(g_file_set_contents(dtb, fdt, fdt_totalsize(fdt), NULL));
    /* -dtb needs a kernel; an empty one trips UBSan in QEMU's ROM loader */
    g_assert_true(g_file_set_contents(kernel, image, 4096, NULL));
    args = g_strdup_printf("-dtb %s -kernel %s " RNG_P0, dtb, kernel);
    g_assert_cmpint(qrestricted_run(NULL, args, &err), ==, 0);
    unlink(dtb);
    unlink(kernel);
    /* the warning names what the user must add, and where */
    g_assert_nonnull(strstr(err, "-dtb: QEMU cannot add "
                            "restricted-dma-pool 'p0'"));
    node = g_strdup_printf("restricted-dma@%" PRIx64 " { compatible = "
                           "\"restricted-dma-pool\"; reg = <0x%" PRIx64
                           " 0x%" PRIx64 " 0x0 0x1000000>;", base,
                           base >> 32, base & 0xffffffff);
    g_assert_nonnull(strstr(err, node));
    g_assert_nonnull(strstr(err, "memory-region = <&pool>; on: "
                            "/virtio_mmio@a003e00"));
}

/* ---- devices ------------------------------------------------------- */

/* Two disks and a pool p0, and @fmt: the devices. */
static void G_GNUC_PRINTF(2, 3) guest_start(QRestrictedMachine *m,
                                            const char *fmt, ...)
{
    g_autofree char *extra = NULL;
    const char *img0, *img1;
    va_list ap;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    img0 = qrestricted_image(m, DISK_SIZE);
    img1 = qrestricted_image(m, DISK_SIZE);
    m->machine = "virt";
    qrestricted_start(m, "-drive if=none,id=d0,file=%s,format=raw "
                      "-drive if=none,id=d1,file=%s,format=raw "
                      "-object restricted-dma-pool,id=p0,size=16M %s",
                      img0, img1, extra);
}

/* The nth device given on the command line, on virtio-mmio: "devN". */
static QRestrictedDevice *mmio_dev(QRestrictedMachine *m, int n)
{
    g_autofree char *id = g_strdup_printf("dev%d", n);

    /* the transport of a device with a pool is always version 2 */
    return qrestricted_mmio(m, n, id);
}

/* Write a pattern through the pool, read it back, find it in the image. */
static void blk_roundtrip(QRestrictedDevice *d, QVirtQueue *vq,
                          const char *img, uint64_t sector, uint8_t seed)
{
    qrestricted_blk_roundtrip(d, vq, sector, 2 * SECTOR, seed, img);
}

static void check_status(QRestrictedDevice *d, int64_t violations)
{
    g_autoptr(QDict) st = qrestricted_status(d);

    g_assert_cmpstr(qdict_get_str(st, "kind"), ==, "pool");
    g_assert_cmpstr(qdict_get_str(st, "pool"), ==, "p0");
    g_assert_false(qdict_haskey(st, "bar"));
    g_assert_cmphex(qdict_get_int(st, "window-address"), ==,
                    qrestricted_window(d)->base);
    g_assert_cmphex(qdict_get_int(st, "window-size"), ==, POOL_SIZE);
    g_assert_true(qdict_get_bool(st, "window-open"));
    g_assert_cmpint(qdict_get_int(st, "violations"), ==, violations);
}

static void test_mmio_blk_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QVirtQueue *vq;

    guest_start(&m, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&m, 0);
    vq = qrestricted_driver(d);
    g_assert_cmphex(vq->desc, >=, d->win->base);
    blk_roundtrip(d, vq, m.img[0], 0, 0x21);
    blk_roundtrip(d, vq, m.img[0], 64, 0x42);
    check_status(d, 0);
    g_assert_true(qrestricted_bool(d, "driver-accepted"));
    qrestricted_stop(&m);
}

static void test_mmio_rng_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    uint8_t data[64];

    guest_start(&m, "-device virtio-rng-device,id=dev0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&m, 0);
    qrestricted_rng_read(d, qrestricted_driver(d), data, sizeof(data));
    check_status(d, 0);
    qrestricted_stop(&m);
}

static void test_pci_blk_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QVirtQueue *vq;

    guest_start(&m, "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
                "disable-legacy=on,restricted-dma-pool=p0");
    d = qrestricted_pci(&m, QPCI_DEVFN(4, 0), "dev0");
    vq = qrestricted_driver(d);
    blk_roundtrip(d, vq, m.img[0], 8, 0x63);
    check_status(d, 0);
    qrestricted_stop(&m);
}

static void test_shared_pool(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d0, *d1;
    QVirtQueue *vq0, *vq1;
    int i;

    guest_start(&m, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0 "
                "-device virtio-blk-device,id=dev1,drive=d1,"
                "restricted-dma-pool=p0");
    d0 = mmio_dev(&m, 0);
    d1 = mmio_dev(&m, 1);
    vq0 = qrestricted_driver(d0);
    vq1 = qrestricted_driver(d1);
    /* one window, one allocator: rings and buffers side by side */
    g_assert_true(d0->win == d1->win);
    for (i = 0; i < 4; i++) {
        blk_roundtrip(d0, vq0, m.img[0], i * 8, 0x10 + i);
        blk_roundtrip(d1, vq1, m.img[1], i * 8, 0x80 + i);
    }
    check_status(d0, 0);
    check_status(d1, 0);
    qrestricted_stop(&m);
}

static void test_refuse_and_tolerate(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    uint64_t f;

    guest_start(&m, "-device virtio-rng-device,id=dev0,"
                "restricted-dma-pool=p0 "
                "-device virtio-rng-device,id=dev1,restricted-dma-pool=p0,"
                "restricted-dma-policy=tolerate");
    d = mmio_dev(&m, 0);
    f = qvirtio_get_features(d->vdev);
    g_assert_cmphex(f & F_AWARE, ==, F_AWARE);
    /* what a pool-aware Linux accepts today: ACCESS_PLATFORM, not bit 27 */
    g_assert_false(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1) |
                                            F(VIRTIO_F_ACCESS_PLATFORM)));
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 1);

    d = mmio_dev(&m, 1);
    g_assert_true(qrestricted_try_features(d, F(VIRTIO_F_VERSION_1) |
                                           F(VIRTIO_F_ACCESS_PLATFORM)));
    g_assert_cmpint(qrestricted_int(d, "refusals"), ==, 0);
    qrestricted_stop(&m);
}

/* ---- hostile drivers, with a canary outside the pool --------------- */

/* After the violation: reset, renegotiate, I/O works again. */
static void recover(QRestrictedDevice *d)
{
    QVirtQueue *vq = qrestricted_restart(d);

    blk_roundtrip(d, vq, d->m->img[0], 16, 0x99);
    check_status(d, 1);
}

#define BLK_P0 "-device virtio-blk-device,id=dev0,drive=d0," \
               "restricted-dma-pool=p0"

typedef enum Hostile {
    BUFFER_IN_RAM,          /* in ordinary RAM, over a canary */
    BUFFER_STRADDLES_END,   /* the part inside the pool must not change */
    BUFFER_WRAPS,           /* address + length wraps around */
} Hostile;

static void hostile_buffer(Hostile where)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QRestrictedWindow *w;
    QVirtQueue *vq;
    uint64_t end;

    guest_start(&m, BLK_P0);
    d = mmio_dev(&m, 0);
    vq = qrestricted_driver(d);
    w = d->win;
    end = w->base + w->size;
    switch (where) {
    case BUFFER_IN_RAM: {
        uint64_t data = guest_alloc(&m.ram, SECTOR);

        qrestricted_hostile_buffer(d, vq, data, SECTOR, data, SECTOR);
        break;
    }
    case BUFFER_STRADDLES_END:
        qrestricted_hostile_buffer(d, vq, end - SECTOR / 2, SECTOR,
                                   end - SECTOR / 2, SECTOR / 2);
        break;
    default:
        qrestricted_hostile_buffer(d, vq, 0xfffffffffffff000ULL, 0x2000, 0,
                                   0);
        break;
    }
    recover(d);
    qrestricted_stop(&m);
}

static void test_hostile_buffer_outside(void)
{
    hostile_buffer(BUFFER_IN_RAM);
}

static void test_hostile_buffer_straddles_end(void)
{
    hostile_buffer(BUFFER_STRADDLES_END);
}

static void test_hostile_buffer_wraps(void)
{
    hostile_buffer(BUFFER_WRAPS);
}

static void test_hostile_rings_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QVirtQueue *vq;

    guest_start(&m, BLK_P0);
    d = mmio_dev(&m, 0);
    qrestricted_window(d);
    qvirtio_set_features(d->vdev, qrestricted_offered(d) & F_AWARE);
    vq = qvirtqueue_setup(d->vdev, &m.ram, 0);
    qrestricted_expect_violation(d, "descriptor ring", vq->desc,
                                 16 * vq->size);
    qrestricted_wait_needs_reset(d);
    qrestricted_assert_inert(d, vq, &d->win->alloc, vq->used,
                             4 + 8 * vq->size);
    recover(d);
    qrestricted_stop(&m);
}

static void test_hostile_used_ring_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    uint64_t base, desc, used;
    uint16_t num;

    guest_start(&m, BLK_P0);
    d = mmio_dev(&m, 0);
    base = d->mmio.addr;
    qvirtio_set_features(d->vdev, qrestricted_offered(d) & F_AWARE);
    /* desc and avail in the pool, used in ordinary RAM */
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_SEL, 0);
    num = qtest_readl(m.qts, base + QVIRTIO_MMIO_QUEUE_NUM_MAX);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_NUM, num);
    desc = guest_alloc(&qrestricted_window(d)->alloc, 16 * num + 6 + 2 * num);
    used = guest_alloc(&m.ram, 4096);
    qrestricted_fill(m.qts, used, CANARY, 6 + 8 * num);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_DESC_LOW, desc);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_DESC_HIGH, desc >> 32);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_AVAIL_LOW,
                 desc + 16 * num);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_AVAIL_HIGH,
                 (desc + 16 * num) >> 32);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_USED_LOW, used);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_USED_HIGH, used >> 32);
    qtest_writel(m.qts, base + QVIRTIO_MMIO_QUEUE_READY, 1);
    /* no EVENT_IDX: the used ring has no avail_event field */
    qrestricted_expect_violation(d, "device (used) ring", used, 4 + 8 * num);
    qrestricted_wait_needs_reset(d);
    qrestricted_settle(m.qts);
    qrestricted_assert_filled(m.qts, used, CANARY, 6 + 8 * num);
    recover(d);
    qrestricted_stop(&m);
}

static void test_hostile_indirect_outside(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;

    guest_start(&m, BLK_P0);
    d = mmio_dev(&m, 0);
    qrestricted_hostile_indirect(d, qrestricted_driver(d));
    recover(d);
    qrestricted_stop(&m);
}

/* ---- the capability's system-memory form --------------------------- */

#define SYSMEM_BAR 0xff         /* the capability's bar: system memory */

/*
 * The restricted DMA capability of @d: one, in the 64-bit layout, whose
 * bar says system memory and whose range is the pool, as QOM and
 * x-query-virtio-status have it.
 */
static void check_sysmem_cap(QRestrictedDevice *d)
{
    QPCIDevice *pdev = d->pci->pdev;
    QRestrictedWindow *w = qrestricted_window(d);
    g_autoptr(QDict) st = qrestricted_status(d);
    int found = 0;
    uint8_t off;

    for (off = qpci_find_capability(pdev, PCI_CAP_ID_VNDR, 0); off;
         off = qpci_find_capability(pdev, PCI_CAP_ID_VNDR, off)) {
        uint64_t base, size;

        if (qpci_config_readb(pdev, off + offsetof(struct virtio_pci_cap,
                                                   cfg_type)) !=
            QVIRTIO_PCI_CAP_RESTRICTED_DMA_CFG) {
            continue;
        }
        found++;
        g_assert_cmpint(qpci_config_readb(pdev, off +
                            offsetof(struct virtio_pci_cap, cap_len)), ==,
                        sizeof(struct virtio_pci_cap64));
        g_assert_cmphex(qpci_config_readb(pdev, off +
                            offsetof(struct virtio_pci_cap, bar)), ==,
                        SYSMEM_BAR);
        base = qpci_config_readl(pdev, off + offsetof(struct virtio_pci_cap,
                                                      offset)) |
               (uint64_t)qpci_config_readl(pdev, off +
                   offsetof(struct virtio_pci_cap64, offset_hi)) << 32;
        size = qpci_config_readl(pdev, off + offsetof(struct virtio_pci_cap,
                                                      length)) |
               (uint64_t)qpci_config_readl(pdev, off +
                   offsetof(struct virtio_pci_cap64, length_hi)) << 32;
        g_assert_cmphex(base, ==, w->base);
        g_assert_cmphex(size, ==, w->size);
        g_assert_cmphex(base, ==, qdict_get_int(st, "window-address"));
        g_assert_cmphex(size, ==, qdict_get_int(st, "window-size"));
    }
    g_assert_cmpint(found, ==, 1);
}

/* On arm virt a PCI device's pool is in its capability too. */
static void test_arm_pci_capability(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;

    guest_start(&m, "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
                "disable-legacy=on,restricted-dma-pool=p0");
    d = qrestricted_pci(&m, QPCI_DEVFN(4, 0), "dev0");
    check_sysmem_cap(d);
    qrestricted_stop(&m);
}

/* ---- pools on x86 -------------------------------------------------- */

#define X86_RAM_MB 512

/* An x86 machine (q35 unless @machine) with two disks and pool p0. */
static void G_GNUC_PRINTF(3, 4) x86_start(QRestrictedMachine *m,
                                          const char *machine,
                                          const char *fmt, ...)
{
    g_autofree char *extra = NULL;
    const char *img0, *img1;
    va_list ap;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    img0 = qrestricted_image(m, DISK_SIZE);
    img1 = qrestricted_image(m, DISK_SIZE);
    m->machine = machine ? machine : "q35";
    m->ram_mb = X86_RAM_MB;
    qrestricted_start(m, "-drive if=none,id=d0,file=%s,format=raw "
                      "-drive if=none,id=d1,file=%s,format=raw "
                      "-object restricted-dma-pool,id=p0,size=16M %s",
                      img0, img1, extra);
}

typedef struct QEMU_PACKED E820Entry {
    uint64_t address;
    uint64_t length;
    uint32_t type;
} E820Entry;

/*
 * fw_cfg etc/e820, as firmware and Linux read it: the pool is reserved,
 * and no RAM entry covers any of it.
 */
static void check_e820(QRestrictedMachine *m, QRestrictedWindow *w)
{
    QFWCFG *fw_cfg = pc_fw_cfg_init(m->qts);
    E820Entry table[32];
    size_t len = qfw_cfg_get_file(fw_cfg, "etc/e820", table, sizeof(table));
    int i, reserved = 0, ram = 0;

    g_assert_cmpint(len, >, 0);
    g_assert_cmpint(len % sizeof(E820Entry), ==, 0);
    for (i = 0; i < len / sizeof(E820Entry); i++) {
        uint64_t a = le64_to_cpu(table[i].address);
        uint64_t l = le64_to_cpu(table[i].length);
        uint32_t type = le32_to_cpu(table[i].type);

        if (type == 2 && a == w->base && l == w->size) {
            reserved++;
        }
        if (type == 1) {
            ram++;
            g_assert_false(a < w->base + w->size && w->base < a + l);
        }
    }
    g_assert_cmpint(reserved, ==, 1);
    g_assert_cmpint(ram, >=, 1);
    pc_fw_cfg_uninit(fw_cfg);
}

static void test_x86_capability_and_e820(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QRestrictedWindow *w;

    x86_start(&m, NULL, "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
              "disable-legacy=on,restricted-dma-pool=p0");
    d = qrestricted_pci(&m, QPCI_DEVFN(4, 0), "dev0");
    w = qrestricted_window(d);
    /* placed at the top of the RAM below 4 GiB, 2 MiB aligned */
    g_assert_cmphex(w->base, ==, X86_RAM_MB * MiB - POOL_SIZE);
    check_sysmem_cap(d);
    check_e820(&m, w);
    qrestricted_stop(&m);
}

static void test_x86_io(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QVirtQueue *vq;
    uint64_t data;

    x86_start(&m, NULL, "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
              "disable-legacy=on,restricted-dma-pool=p0");
    d = qrestricted_pci(&m, QPCI_DEVFN(4, 0), "dev0");
    vq = qrestricted_driver(d);
    g_assert_cmphex(vq->desc, >=, d->win->base);
    blk_roundtrip(d, vq, m.img[0], 0, 0x15);
    blk_roundtrip(d, vq, m.img[0], 40, 0x26);
    check_status(d, 0);
    g_assert_true(qrestricted_bool(d, "driver-accepted"));
    /* and a buffer outside the pool over a canary */
    data = guest_alloc(&m.ram, SECTOR);
    qrestricted_hostile_buffer(d, vq, data, SECTOR, data, SECTOR);
    check_status(d, 1);
    qrestricted_stop(&m);
}

/* Devices share a pool on x86 too: one window, one allocator. */
static void test_x86_shared(void)
{
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d0, *d1;
    QVirtQueue *vq0, *vq1;
    uint8_t data[64];
    int i;

    x86_start(&m, "pc", "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
              "disable-legacy=on,restricted-dma-pool=p0 "
              "-device virtio-rng-pci,id=dev1,addr=5.0,disable-legacy=on,"
              "restricted-dma-pool=p0");
    d0 = qrestricted_pci(&m, QPCI_DEVFN(4, 0), "dev0");
    d1 = qrestricted_pci(&m, QPCI_DEVFN(5, 0), "dev1");
    vq0 = qrestricted_driver(d0);
    vq1 = qrestricted_driver(d1);
    g_assert_true(d0->win == d1->win);
    check_sysmem_cap(d0);
    check_sysmem_cap(d1);
    for (i = 0; i < 3; i++) {
        blk_roundtrip(d0, vq0, m.img[0], i * 8, 0x30 + i);
        qrestricted_rng_read(d1, vq1, data, sizeof(data));
    }
    check_status(d0, 0);
    check_status(d1, 0);
    qrestricted_stop(&m);
}

/*
 * A device plugged at run time may use a pool that existed at boot: the
 * E820 map reserved it, and the device's capability announces it.
 */
/*
 * A pool is guest RAM: it migrates with the rest of RAM, placed at the
 * same address on a destination with the same command line, and the
 * device goes on there with what the driver left in the pool.
 */
static void test_x86_migration(void)
{
    QRestrictedMachine src = { 0 }, dst = { 0 };
    g_autofree char *uri = g_strdup_printf("unix:/tmp/qtest-rdma-pool-%d.mig",
                                           getpid());
    QGuestAllocator *a;
    uint64_t keep, data, status, base;
    uint8_t pattern[SECTOR], back[SECTOR];
    QRestrictedDevice *d;
    QVirtQueue *vq;
    uint32_t head;
    size_t i;

    x86_start(&src, NULL, "-device virtio-blk-pci,id=dev0,drive=d0,"
              "addr=4.0,disable-legacy=on,restricted-dma-pool=p0");
    d = qrestricted_pci(&src, QPCI_DEVFN(4, 0), "dev0");
    vq = qrestricted_driver(d);
    blk_roundtrip(d, vq, src.img[0], 0, 0x19);
    /* the pool stays where it is: the driver allocates from it after */
    a = &d->win->alloc;
    base = d->win->base;
    for (i = 0; i < sizeof(pattern); i++) {
        pattern[i] = i * 11 + 3;
    }
    /* what the driver keeps in the pool, and a buffer for later */
    keep = guest_alloc(a, sizeof(pattern));
    qtest_memwrite(src.qts, keep, pattern, sizeof(pattern));
    data = guest_alloc(a, SECTOR);

    /* the same disks, pool and device, waiting for the migration */
    dst.machine = "q35";
    dst.ram_mb = X86_RAM_MB;
    qrestricted_start(&dst, "-drive if=none,id=d0,file=%s,format=raw "
                      "-drive if=none,id=d1,file=%s,format=raw "
                      "-object restricted-dma-pool,id=p0,size=16M "
                      "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
                      "disable-legacy=on,restricted-dma-pool=p0 "
                      "-incoming %s", src.img[0], src.img[1], uri);
    migrate_qmp(src.qts, dst.qts, uri, NULL, "{}");
    wait_for_migration_complete(src.qts);
    qtest_qmp_eventwait(dst.qts, "RESUME");
    d = qrestricted_adopt(&dst, d);

    /* the pool is where it was, with what the driver left in it */
    g_assert_cmphex(qrestricted_int(d, "window-address"), ==, base);
    g_assert_true(qrestricted_bool(d, "driver-accepted"));
    qtest_memread(dst.qts, keep, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));

    /* the queue goes on where it was: sector 0 as blk_roundtrip wrote it */
    vq->vdev = d->vdev;
    qrestricted_fill(dst.qts, data, 0, SECTOR);
    head = qrestricted_blk_submit(d, vq, a, VIRTIO_BLK_T_IN, 0, data, SECTOR,
                                  &status);
    qvirtio_wait_used_elem(dst.qts, d->vdev, vq, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(qtest_readb(dst.qts, status), ==, VIRTIO_BLK_S_OK);
    g_assert_cmphex(qtest_readb(dst.qts, data), ==, 0x19);
    g_assert_cmphex(qtest_readb(dst.qts, data + 1), ==, (uint8_t)(0x19 + 7));
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    unlink(uri + strlen("unix:"));
    qrestricted_stop(&dst);
    qrestricted_stop(&src);
}

static void test_x86_hotplug(void)
{
    QRestrictedMachine m = { 0 };
    g_autoptr(QDict) rsp = NULL;
    QRestrictedDevice *d;
    QVirtQueue *vq;

    x86_start(&m, "pc", " ");
    rsp = qrestricted_device_add(m.qts, "virtio-blk-pci", "dev0",
                                 "'bus': 'pci.0', 'addr': '6.0', "
                                 "'drive': 'd0', 'disable-legacy': 'on', "
                                 "'restricted-dma-pool': 'p0'");
    g_assert_false(qdict_haskey(rsp, "error"));
    d = qrestricted_pci(&m, QPCI_DEVFN(6, 0), "dev0");
    check_sysmem_cap(d);
    vq = qrestricted_driver(d);
    blk_roundtrip(d, vq, m.img[0], 16, 0x47);
    check_status(d, 0);
    qrestricted_stop(&m);
}

/* A pool must exist when the board lays out RAM. */
static void test_x86_object_add_refused(void)
{
    QRestrictedMachine m = { 0 };
    g_autoptr(QDict) rsp = NULL;
    const char *desc;

    x86_start(&m, NULL, " ");
    rsp = qtest_qmp(m.qts, "{ 'execute': 'object-add', 'arguments': {"
                    " 'qom-type': 'restricted-dma-pool', 'id': 'late',"
                    " 'size': 16777216 } }");
    g_assert_true(qdict_haskey(rsp, "error"));
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    g_assert_nonnull(strstr(desc, "a pool must exist when the board lays "
                            "out guest RAM"));
    qrestricted_stop(&m);
}

/* ---- arm virt booting through firmware ----------------------------- */

#define EFI_CODE "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"

/*
 * With firmware, the guest learns its memory map from UEFI, which knows
 * nothing of pools: the memory the board tells the firmware about ends
 * below the pools, no pool is in the device tree, and the PCI device's
 * capability is how the guest learns of it.
 */
static void test_arm_firmware(void)
{
    const char *args = "-bios " EFI_CODE " "
        "-object restricted-dma-pool,id=p0,size=16M "
        "-device virtio-blk-pci,drive=d0,disable-legacy=on,addr=4.0,"
        "restricted-dma-pool=p0 -drive if=none,id=d0,file=/dev/null,"
        "format=raw,readonly=on";
    g_autofree void *fdt = dump_dtb(args);
    int node = fdt_path_offset(fdt, "/memory@40000000");
    const fdt32_t *reg;
    int len;

    g_assert_true(g_file_test(EFI_CODE, G_FILE_TEST_EXISTS));
    g_assert_cmpint(node, >=, 0);
    reg = fdt_getprop(fdt, node, "reg", &len);
    g_assert_cmpint(len, ==, 16);
    g_assert_cmphex(((uint64_t)fdt32_to_cpu(reg[2]) << 32) |
                    fdt32_to_cpu(reg[3]), ==, 256 * MiB - POOL_SIZE);
    g_assert_cmpint(fdt_path_offset(fdt, "/reserved-memory"), <, 0);
    g_assert_cmpint(count_memory_regions(fdt), ==, 0);
}

/* ---- configuration errors ------------------------------------------ */

typedef struct BadPool {
    const char *name;
    const char *machine;    /* NULL: virt */
    const char *args;
    const char *message;    /* on stderr */
    int status;             /* expected exit status */
} BadPool;

#define POOL "-object restricted-dma-pool,id=p0,"
#define RNG " -device virtio-rng-device,restricted-dma-pool=p0"

static const BadPool bad_arm[] = {
    { "size-not-page-multiple", NULL, POOL "size=1000" RNG,
      "restricted-dma-pool 'p0': size=1000 must be a non-zero multiple of "
      "the 4096 byte page size", 1 },
    { "size-zero", NULL, POOL "size=0" RNG,
      "restricted-dma-pool 'p0': size=0 must be a non-zero multiple", 1 },
    { "size-missing", NULL, "-object restricted-dma-pool,id=p0" RNG,
      "restricted-dma-pool 'p0' needs size or memdev", 1 },
    { "addr-outside-ram", NULL, POOL "size=16M,addr=0x10000000" RNG,
      "addr=0x10000000 size=0x1000000 is not wholly inside guest RAM", 1 },
    { "addr-past-ram-end", NULL, POOL "size=16M,addr=0x4f800000" RNG,
      "is not wholly inside guest RAM [0x40000000, 0x50000000)", 1 },
    { "addr-unaligned", NULL, POOL "size=16M,addr=0x48000100" RNG,
      "addr=0x48000100 is not aligned to the 4096 byte page size", 1 },
    { "overlapping-pools", NULL, "-object restricted-dma-pool,id=p1,size=16M "
      "-device virtio-rng-device,restricted-dma-pool=p1 "
      POOL "size=16M,addr=0x4e800000" RNG,
      "restricted-dma-pool 'p0' at 0x4e800000 overlaps restricted-dma-pool "
      "'p1' at [0x4f000000, 0x50000000)", 1 },
    { "overlaps-kernel", NULL, "-kernel /tmp/qtest-rdma-kernel "
      POOL "size=16M,addr=0x40000000" RNG,
      "overlaps the kernel, initrd and device tree", 1 },
    { "pool-and-bar", NULL, POOL "size=16M -device virtio-rng-pci,"
      "disable-legacy=on,restricted-dma-bar-size=1M,restricted-dma-pool=p0",
      "restricted-dma-pool and restricted-dma-bar-size cannot be combined",
      1 },
    { "unknown-pool", NULL,
      "-device virtio-rng-device,restricted-dma-pool=nope",
      "restricted-dma-pool=nope: Device 'nope' not found", 1 },
    { "transitional-pci", NULL, POOL "size=16M -device virtio-rng-pci,"
      "restricted-dma-pool=p0", "restricted-dma-pool needs a modern-only "
      "(virtio 1.x) device", 1 },
    { "vhost", NULL, POOL "size=16M -chardev socket,id=c0,"
      "path=/tmp/qtest-rdma-none.sock,server=on,wait=off "
      "-device vhost-user-blk-pci,chardev=c0,restricted-dma-pool=p0",
      "restricted-dma-pool cannot be used with vhost-user-blk", 1 },
    { "policy-without-window", NULL, "-device virtio-rng-device,"
      "restricted-dma-policy=tolerate",
      "restricted-dma-policy=tolerate needs a restricted DMA window", 1 },
    { "firmware-mmio", NULL, "-bios " EFI_CODE " " POOL "size=16M" RNG,
      "learns about pools only from the capability of a virtio-pci "
      "device", 1 },
    { "unused-pool", NULL, POOL "size=16M",
      "warning: restricted-dma-pool 'p0' is used by no device, so it is "
      "not described to the guest", 0 },
};

static const BadPool bad_x86[] = {
    { "pool-on-microvm", "microvm", POOL "size=16M" RNG,
      "machine type microvm-machine cannot describe a restricted DMA pool",
      1 },
    { "x86-no-room", "q35", POOL "size=256M -device virtio-rng-pci,"
      "disable-legacy=on,restricted-dma-pool=p0",
      "restricted-dma-pool 'p0': no room for 0x10000000 bytes", 1 },
    { "x86-addr-above-low-ram", "q35", POOL "size=16M,addr=0x100000000 "
      "-device virtio-rng-pci,disable-legacy=on,restricted-dma-pool=p0",
      "is not wholly inside guest RAM", 1 },
};

#undef POOL
#undef RNG

static void test_bad_config(const void *opaque)
{
    const BadPool *bp = opaque;

    qrestricted_assert_run(bp->machine ? bp->machine : "virt", bp->args,
                           bp->status, bp->message);
}

static void add_bad_configs(const BadPool *table, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        g_autofree char *path = g_strdup_printf("/virtio-rdma-pool/"
                                                "bad-config/%s",
                                                table[i].name);

        qtest_add_data_func(path, &table[i], test_bad_config);
    }
}

/*
 * ---- refusals as a device_add ---------------------------------------
 *
 * A pool is described to the guest at boot, so a hot-plugged device is
 * refused one for that reason before any other of the pool's: the
 * correction is a BAR window, and the pool object must be left as it was.
 * The pool's own errors (size, address, overlap) are errors of an object,
 * not of a device_add; a virtio-mmio device cannot be hot-plugged.
 */

#define RNG_ON "'disable-legacy': 'on', "
#define BAR_1M "'restricted-dma-bar-size': 1048576"
#define POOL_OBJ "-object restricted-dma-pool,id=p0,size=16M"

typedef struct PoolPlug {
    const char *name;
    QRestrictedPlug plug;
    const char *message;
} PoolPlug;

/* a pool and a BAR: refused, and a BAR alone must then work */
#define POOL_AND_BAR \
    { "hotplug/pool-and-bar", { POOL_OBJ, "virtio-rng-pci", \
      RNG_ON "'restricted-dma-pool': 'p0', " BAR_1M, RNG_ON BAR_1M }, \
      "restricted-dma-pool" }

static const PoolPlug plugs_arm[] = {
    /* the hot-plugged pool of bad_arm's transitional-pci and vhost too */
    { "hotplug-refused", { POOL_OBJ, "virtio-rng-pci",
      RNG_ON "'restricted-dma-pool': 'p0'", RNG_ON BAR_1M },
      "a hot-plugged device cannot use one" },
    { "hotplug/transitional-pci", { POOL_OBJ, "virtio-rng-pci",
      "'disable-legacy': 'off', 'restricted-dma-pool': 'p0'",
      RNG_ON BAR_1M }, "restricted-dma-pool" },
    /* a link property's error, which does not say which property */
    { "hotplug/unknown-pool", { POOL_OBJ, "virtio-rng-pci",
      RNG_ON "'restricted-dma-pool': 'nope'", RNG_ON BAR_1M },
      "Device 'nope' not found" },
    POOL_AND_BAR,
};

static const PoolPlug plugs_x86[] = {
    /* a transitional device: refused, and a modern one with the pool works */
    { "hotplug/transitional-pci", { POOL_OBJ, "virtio-rng-pci",
      "'disable-legacy': 'off', 'restricted-dma-pool': 'p0'",
      RNG_ON "'restricted-dma-pool': 'p0'" }, "restricted-dma-pool" },
    POOL_AND_BAR,
};

static void test_plug(const void *opaque)
{
    const PoolPlug *pp = opaque;

    qtest_quit(qrestricted_plug_refused(&pp->plug, pp->message));
}

static void add_plugs(const PoolPlug *table, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        g_autofree char *path = g_strdup_printf("/virtio-rdma-pool/%s",
                                                table[i].name);

        qtest_add_data_func(path, &table[i], test_plug);
    }
}

int main(int argc, char **argv)
{
    int ret;
    int fd;

    g_test_init(&argc, &argv, NULL);
    module_call_init(MODULE_INIT_QOM);

    if (!g_str_equal(qtest_get_arch(), "aarch64")) {
        qtest_add_func("/virtio-rdma-pool/x86/capability-and-e820",
                       test_x86_capability_and_e820);
        qtest_add_func("/virtio-rdma-pool/x86/io", test_x86_io);
        qtest_add_func("/virtio-rdma-pool/x86/shared", test_x86_shared);
        qtest_add_func("/virtio-rdma-pool/x86/hotplug", test_x86_hotplug);
        qtest_add_func("/virtio-rdma-pool/x86/migration",
                       test_x86_migration);
        qtest_add_func("/virtio-rdma-pool/x86/object-add-refused",
                       test_x86_object_add_refused);
        add_bad_configs(bad_x86, G_N_ELEMENTS(bad_x86));
        add_plugs(plugs_x86, G_N_ELEMENTS(plugs_x86));
        return g_test_run();
    }

    /* a raw "kernel" for the overlap case: 1 MiB of zeroes */
    fd = open("/tmp/qtest-rdma-kernel", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1024 * 1024), ==, 0);
    close(fd);

    qtest_add_func("/virtio-rdma-pool/dt/mmio", test_dt_mmio);
    qtest_add_func("/virtio-rdma-pool/dt/no-pool", test_dt_no_pool);
    qtest_add_func("/virtio-rdma-pool/dt/shared", test_dt_shared);
    qtest_add_func("/virtio-rdma-pool/dt/two-pools", test_dt_two_pools);
    qtest_add_func("/virtio-rdma-pool/dt/pinned", test_dt_pinned);
    qtest_add_func("/virtio-rdma-pool/dt/pci", test_dt_pci);
    qtest_add_func("/virtio-rdma-pool/dt/user-dtb", test_dt_user_dtb);
    qtest_add_func("/virtio-rdma-pool/dt/firmware", test_arm_firmware);
    qtest_add_func("/virtio-rdma-pool/pci-capability",
                   test_arm_pci_capability);
    qtest_add_func("/virtio-rdma-pool/io/mmio-blk", test_mmio_blk_io);
    qtest_add_func("/virtio-rdma-pool/io/mmio-rng", test_mmio_rng_io);
    qtest_add_func("/virtio-rdma-pool/io/pci-blk", test_pci_blk_io);
    qtest_add_func("/virtio-rdma-pool/io/shared-pool", test_shared_pool);
    qtest_add_func("/virtio-rdma-pool/policy/refuse-and-tolerate",
                   test_refuse_and_tolerate);
    qtest_add_func("/virtio-rdma-pool/hostile/rings-outside",
                   test_hostile_rings_outside);
    qtest_add_func("/virtio-rdma-pool/hostile/buffer-outside",
                   test_hostile_buffer_outside);
    qtest_add_func("/virtio-rdma-pool/hostile/buffer-straddles-end",
                   test_hostile_buffer_straddles_end);
    qtest_add_func("/virtio-rdma-pool/hostile/indirect-outside",
                   test_hostile_indirect_outside);
    qtest_add_func("/virtio-rdma-pool/hostile/used-ring-outside",
                   test_hostile_used_ring_outside);
    qtest_add_func("/virtio-rdma-pool/hostile/wrap-around",
                   test_hostile_buffer_wraps);
    add_bad_configs(bad_arm, G_N_ELEMENTS(bad_arm));
    add_plugs(plugs_arm, G_N_ELEMENTS(plugs_arm));

    ret = g_test_run();
    unlink("/tmp/qtest-rdma-kernel");
    return ret;
}
