/*
 * QTest for restricted DMA pools (-object restricted-dma-pool) on arm virt
 *
 * The device-tree tests dump the board's device tree (-M virt,dumpdtb=)
 * and read it with libfdt.  The device tests drive virtio-mmio (version 2)
 * and virtio-pci devices whose window is a pool in guest RAM, with rings
 * and buffers placed in the pool, and hostile drivers that place them
 * elsewhere over a canary.  On x86 only the refusal of pools is tested:
 * no device tree reaches an x86 guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <libfdt.h>
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/libqos-malloc.h"
#include "libqos/generic-pcihost.h"
#include "libqos/virtio.h"
#include "libqos/virtio-mmio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-restricted-dma.h"

#define TIMEOUT_US (30 * 1000 * 1000)
#define RAM_BASE 0x40000000ULL
#define RAM_SIZE (256 * 1024 * 1024ULL)
#define POOL_SIZE (16 * 1024 * 1024ULL)
/* the board puts the first pool at the top of RAM */
#define POOL_BASE (RAM_BASE + RAM_SIZE - POOL_SIZE)
#define MMIO_LAST 0x0a003e00ULL     /* where the first -device lands */
#define MMIO_STRIDE 0x200
#define CANARY 0xa5
#define SECTOR 512
#define DISK_SIZE (1 * 1024 * 1024)
#define F(bit) (1ULL << (bit))
#define F_AWARE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_ACCESS_PLATFORM) | \
                 F(QVIRTIO_F_RESTRICTED_DMA))

static const char *arch;


/* ---- the device tree ----------------------------------------------- */

/* The device tree the board writes for @args (after the machine). */
static void *dump_dtb(const char *args)
{
    g_autofree char *path = g_strdup_printf("/tmp/qtest-rdma-pool-%d.dtb",
                                            getpid());
    g_autofree char *full = g_strdup_printf("-M virt,dumpdtb=%s -cpu max "
                                            "-m 256M %s", path, args);
    g_autofree char *err = NULL;
    gchar *dtb;
    gsize len;

    if (qvirtio_rdma_run_qemu(full, &err) != 0) {
        g_error("QEMU %s failed:\n%s", full, err);
    }
    g_assert_true(g_file_get_contents(path, &dtb, &len, NULL));
    unlink(path);
    g_assert_cmpint(fdt_check_header(dtb), ==, 0);
    return dtb;
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
                           (uint64_t)(MMIO_LAST - nth_device * MMIO_STRIDE));
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

static void test_dt_mmio(void)
{
    g_autofree void *fdt = dump_dtb(
        "-object restricted-dma-pool,id=p0,size=16M "
        "-device virtio-rng-device,restricted-dma-pool=p0");
    g_autofree char *dev = mmio_node(0);
    g_autofree char *other = mmio_node(1);
    uint32_t ph = check_pool_node(fdt, POOL_BASE, POOL_SIZE);

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
    g_autofree void *fdt = dump_dtb(
        "-object restricted-dma-pool,id=p0,size=16M "
        "-device virtio-rng-device,restricted-dma-pool=p0 "
        "-device virtio-rng-device,restricted-dma-pool=p0");
    g_autofree char *dev0 = mmio_node(0);
    g_autofree char *dev1 = mmio_node(1);
    uint32_t ph = check_pool_node(fdt, POOL_BASE, POOL_SIZE);
    int rm = fdt_path_offset(fdt, "/reserved-memory");

    g_assert_cmpint(memory_region(fdt, dev0), ==, ph);
    g_assert_cmpint(memory_region(fdt, dev1), ==, ph);
    /* one node for the one pool */
    g_assert_cmpint(fdt_next_subnode(fdt, fdt_first_subnode(fdt, rm)), <, 0);
}

static void test_dt_two_pools(void)
{
    g_autofree void *fdt = dump_dtb(
        "-object restricted-dma-pool,id=p0,size=16M "
        "-object restricted-dma-pool,id=p1,size=8M "
        "-device virtio-rng-device,restricted-dma-pool=p0 "
        "-device virtio-rng-device,restricted-dma-pool=p1");
    g_autofree char *dev0 = mmio_node(0);
    g_autofree char *dev1 = mmio_node(1);
    /* p1 goes below p0, 2 MiB aligned */
    uint64_t base1 = POOL_BASE - 8 * 1024 * 1024;
    uint32_t ph0 = check_pool_node(fdt, POOL_BASE, POOL_SIZE);
    uint32_t ph1 = check_pool_node(fdt, base1, 8 * 1024 * 1024);

    g_assert_cmpint(ph0, !=, ph1);
    g_assert_cmpint(memory_region(fdt, dev0), ==, ph0);
    g_assert_cmpint(memory_region(fdt, dev1), ==, ph1);
}

static void test_dt_pinned(void)
{
    g_autofree void *fdt = dump_dtb(
        "-object restricted-dma-pool,id=p0,size=4M,addr=0x48000000 "
        "-device virtio-rng-device,restricted-dma-pool=p0");

    check_pool_node(fdt, 0x48000000, 4 * 1024 * 1024);
}

static void test_dt_pci(void)
{
    g_autofree void *fdt = dump_dtb(
        "-object restricted-dma-pool,id=p0,size=16M "
        "-device virtio-rng-pci,disable-legacy=on,addr=5.0,"
        "restricted-dma-pool=p0 "
        "-device pcie-root-port,id=rp0,addr=6.0,chassis=1 "
        "-device virtio-rng-pci,bus=rp0,addr=0.0,restricted-dma-pool=p0");
    uint32_t ph = check_pool_node(fdt, POOL_BASE, POOL_SIZE);
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
    g_autofree void *fdt = dump_dtb("");
    g_autofree char *image = g_malloc0(4096);

    g_assert_true(g_file_set_contents(dtb, fdt, fdt_totalsize(fdt), NULL));
    /* -dtb needs a kernel; an empty one trips UBSan in QEMU's ROM loader */
    g_assert_true(g_file_set_contents(kernel, image, 4096, NULL));
    args = g_strdup_printf("-M virt -cpu max -m 256M -dtb %s -kernel %s "
                           "-object restricted-dma-pool,id=p0,size=16M "
                           "-device virtio-rng-device,restricted-dma-pool=p0",
                           dtb, kernel);
    g_assert_cmpint(qvirtio_rdma_run_qemu(args, &err), ==, 0);
    unlink(dtb);
    unlink(kernel);
    /* the warning names what the user must add, and where */
    g_assert_nonnull(strstr(err, "-dtb: QEMU cannot add "
                            "restricted-dma-pool 'p0'"));
    g_assert_nonnull(strstr(err, "restricted-dma@4f000000 { compatible = "
                            "\"restricted-dma-pool\"; reg = <0x0 0x4f000000 "
                            "0x0 0x1000000>;"));
    g_assert_nonnull(strstr(err, "memory-region = <&pool>; on: "
                            "/virtio_mmio@a003e00"));
}

/* ---- devices ------------------------------------------------------- */

typedef struct Guest {
    QTestState *qts;
    QGuestAllocator ram;    /* guest RAM below the pools */
    QGuestAllocator pool;   /* the pool */
    QGenericPCIBus gbus;
    QVirtioMMIODevice mmio[2];
    QVirtioPCIDevice *pci;
    char *img[2];
} Guest;


static void G_GNUC_PRINTF(2, 3) guest_start(Guest *g, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *extra = NULL;
    int i;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    for (i = 0; i < 2; i++) {
        g->img[i] = qvirtio_rdma_make_image(DISK_SIZE);
    }
    g->qts = qtest_initf("-M virt -cpu max -m 256M -nodefaults "
                         "-drive if=none,id=d0,file=%s,format=raw "
                         "-drive if=none,id=d1,file=%s,format=raw "
                         "-object restricted-dma-pool,id=p0,size=16M %s",
                         g->img[0], g->img[1], extra);
    alloc_init(&g->ram, ALLOC_NO_FLAGS, RAM_BASE + 16 * 1024 * 1024,
               RAM_BASE + 128 * 1024 * 1024, 4096);
    alloc_init(&g->pool, ALLOC_NO_FLAGS, POOL_BASE, POOL_BASE + POOL_SIZE,
               64);
}

static void guest_stop(Guest *g)
{
    int i;

    if (g->pci) {
        qos_object_destroy(&g->pci->obj);
    }
    alloc_destroy(&g->ram);
    alloc_destroy(&g->pool);
    qtest_quit(g->qts);
    for (i = 0; i < 2; i++) {
        unlink(g->img[i]);
        g_free(g->img[i]);
    }
}

/* The nth device given on the command line, on virtio-mmio. */
static QVirtioDevice *mmio_dev(Guest *g, int n)
{
    QVirtioMMIODevice *d = &g->mmio[n];

    qvirtio_mmio_init_device(d, g->qts, MMIO_LAST - n * MMIO_STRIDE, 4096);
    /* the transport of a device with a pool is always version 2 */
    g_assert_cmpint(d->version, ==, 2);
    qvirtio_start_device(&d->vdev);
    return &d->vdev;
}

static QVirtioDevice *pci_dev(Guest *g, int slot)
{
    QPCIAddress addr = { .devfn = QPCI_DEVFN(slot, 0) };

    qpci_init_generic(&g->gbus, g->qts, &g->ram, false);
    g->pci = virtio_pci_new(&g->gbus.bus, &addr);
    g_assert_nonnull(g->pci);
    qvirtio_pci_device_enable(g->pci);
    qvirtio_start_device(&g->pci->vdev);
    return &g->pci->vdev;
}

static QVirtQueue *setup_aware(Guest *g, QVirtioDevice *d)
{
    uint64_t f = qvirtio_get_features(d);
    QVirtQueue *vq;

    g_assert_cmphex(f & F_AWARE, ==, F_AWARE);
    qvirtio_set_features(d, f & (F_AWARE | F(VIRTIO_RING_F_INDIRECT_DESC)));
    vq = qvirtqueue_setup(d, &g->pool, 0);
    qvirtio_set_driver_ok(d);
    return vq;
}

static uint8_t blk_io(Guest *g, QVirtioDevice *d, QVirtQueue *vq,
                      uint32_t type, uint64_t sector, uint64_t data,
                      uint32_t len)
{
    uint64_t status;
    uint32_t head = qvirtio_rdma_blk_submit(g->qts, d, vq, &g->pool, type,
                                            sector, data, len, &status);

    qvirtio_wait_used_elem(g->qts, d, vq, head, NULL, TIMEOUT_US);
    return qtest_readb(g->qts, status);
}

/* Write a pattern through the pool, read it back, find it in the image. */
static void blk_roundtrip(Guest *g, QVirtioDevice *d, QVirtQueue *vq,
                          const char *img, uint64_t sector, uint8_t seed)
{
    uint8_t pattern[2 * SECTOR], back[2 * SECTOR];
    size_t len = sizeof(pattern), i;
    uint64_t out = guest_alloc(&g->pool, len);
    uint64_t in = guest_alloc(&g->pool, len);
    int fd;

    for (i = 0; i < len; i++) {
        pattern[i] = seed ^ (i * 3);
    }
    qtest_memwrite(g->qts, out, pattern, len);
    g_assert_cmpint(blk_io(g, d, vq, VIRTIO_BLK_T_OUT, sector, out, len), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(blk_io(g, d, vq, VIRTIO_BLK_T_IN, sector, in, len), ==,
                    VIRTIO_BLK_S_OK);
    qtest_memread(g->qts, in, back, len);
    g_assert_cmpmem(back, len, pattern, len);
    fd = open(img, O_RDONLY);
    g_assert_cmpint(pread(fd, back, len, sector * SECTOR), ==, len);
    close(fd);
    g_assert_cmpmem(back, len, pattern, len);
}

static void check_status(Guest *g, const char *path, int64_t violations)
{
    g_autoptr(QDict) st = qvirtio_rdma_query(g->qts, path);

    g_assert_cmpstr(qdict_get_str(st, "kind"), ==, "pool");
    g_assert_cmpstr(qdict_get_str(st, "pool"), ==, "p0");
    g_assert_false(qdict_haskey(st, "bar"));
    g_assert_cmphex(qdict_get_int(st, "window-address"), ==, POOL_BASE);
    g_assert_cmphex(qdict_get_int(st, "window-size"), ==, POOL_SIZE);
    g_assert_true(qdict_get_bool(st, "window-open"));
    g_assert_cmpint(qdict_get_int(st, "violations"), ==, violations);
}

static void test_mmio_blk_io(void)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    QVirtQueue *vq;

    guest_start(&g, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&g, 0);
    vq = setup_aware(&g, d);
    g_assert_cmphex(vq->desc, >=, POOL_BASE);
    blk_roundtrip(&g, d, vq, g.img[0], 0, 0x21);
    blk_roundtrip(&g, d, vq, g.img[0], 64, 0x42);
    check_status(&g, "/machine/peripheral/dev0", 0);
    g_assert_true(qvirtio_rdma_query_bool(g.qts, "/machine/peripheral/dev0",
                                          "driver-accepted"));
    guest_stop(&g);
}

static void test_mmio_rng_io(void)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    QVirtQueue *vq;
    uint64_t buf;
    uint32_t head, len = 0;

    guest_start(&g, "-device virtio-rng-device,id=dev0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&g, 0);
    vq = setup_aware(&g, d);
    buf = guest_alloc(&g.pool, 64);
    qvirtio_rdma_fill(g.qts, buf, 0, 64);
    head = qvirtqueue_add(g.qts, vq, buf, 64, true, false);
    qvirtqueue_kick(g.qts, d, vq, head);
    qvirtio_wait_used_elem(g.qts, d, vq, head, &len, TIMEOUT_US);
    g_assert_cmpint(len, ==, 64);
    check_status(&g, "/machine/peripheral/dev0", 0);
    guest_stop(&g);
}

static void test_pci_blk_io(void)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    QVirtQueue *vq;

    guest_start(&g, "-device virtio-blk-pci,id=dev0,drive=d0,addr=4.0,"
                "disable-legacy=on,restricted-dma-pool=p0");
    d = pci_dev(&g, 4);
    vq = setup_aware(&g, d);
    blk_roundtrip(&g, d, vq, g.img[0], 8, 0x63);
    check_status(&g, "/machine/peripheral/dev0/virtio-backend", 0);
    guest_stop(&g);
}

static void test_shared_pool(void)
{
    Guest g = { 0 };
    QVirtioDevice *d0, *d1;
    QVirtQueue *vq0, *vq1;
    int i;

    guest_start(&g, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0 "
                "-device virtio-blk-device,id=dev1,drive=d1,"
                "restricted-dma-pool=p0");
    d0 = mmio_dev(&g, 0);
    d1 = mmio_dev(&g, 1);
    vq0 = setup_aware(&g, d0);
    vq1 = setup_aware(&g, d1);
    /* both at once, their rings and buffers side by side in the pool */
    for (i = 0; i < 4; i++) {
        blk_roundtrip(&g, d0, vq0, g.img[0], i * 8, 0x10 + i);
        blk_roundtrip(&g, d1, vq1, g.img[1], i * 8, 0x80 + i);
    }
    check_status(&g, "/machine/peripheral/dev0", 0);
    check_status(&g, "/machine/peripheral/dev1", 0);
    guest_stop(&g);
}

static void test_refuse_and_tolerate(void)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    uint64_t f;

    guest_start(&g, "-device virtio-rng-device,id=dev0,"
                "restricted-dma-pool=p0 "
                "-device virtio-rng-device,id=dev1,restricted-dma-pool=p0,"
                "restricted-dma-policy=tolerate");
    d = mmio_dev(&g, 0);
    f = qvirtio_get_features(d);
    g_assert_cmphex(f & F_AWARE, ==, F_AWARE);
    /* what a pool-aware Linux accepts today: ACCESS_PLATFORM, not bit 27 */
    d->bus->set_features(d, F(VIRTIO_F_VERSION_1) |
                         F(VIRTIO_F_ACCESS_PLATFORM));
    d->bus->set_status(d, d->bus->get_status(d) |
                       VIRTIO_CONFIG_S_FEATURES_OK);
    g_assert_false(d->bus->get_status(d) & VIRTIO_CONFIG_S_FEATURES_OK);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, "/machine/peripheral/dev0",
                                           "refusals"), ==, 1);

    d = mmio_dev(&g, 1);
    d->bus->set_features(d, F(VIRTIO_F_VERSION_1) |
                         F(VIRTIO_F_ACCESS_PLATFORM));
    d->bus->set_status(d, d->bus->get_status(d) |
                       VIRTIO_CONFIG_S_FEATURES_OK);
    g_assert_true(d->bus->get_status(d) & VIRTIO_CONFIG_S_FEATURES_OK);
    g_assert_cmpint(qvirtio_rdma_query_int(g.qts, "/machine/peripheral/dev1",
                                           "refusals"), ==, 0);
    guest_stop(&g);
}

/* ---- hostile drivers, with a canary outside the pool --------------- */

static void expect_violation(Guest *g, const char *access, uint64_t addr,
                             uint64_t len)
{
    qvirtio_rdma_expect_violation(g->qts, "dev0", "/machine/peripheral/dev0",
                                  access, addr, len, POOL_BASE, POOL_SIZE);
}

/* After the violation: reset, renegotiate, I/O works again. */
static void recover(Guest *g, QVirtioDevice *d)
{
    QVirtQueue *vq;

    qvirtio_start_device(d);
    vq = setup_aware(g, d);
    blk_roundtrip(g, d, vq, g->img[0], 16, 0x99);
    check_status(g, "/machine/peripheral/dev0", 1);
}

static void hostile_buffer(uint64_t data, uint32_t len, bool ram_canary)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    QVirtQueue *vq;
    uint64_t status, canary = 0;
    size_t canary_len = 0;

    guest_start(&g, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&g, 0);
    vq = setup_aware(&g, d);
    if (!data) {
        data = canary = guest_alloc(&g.ram, SECTOR);
    } else if (data + len > POOL_BASE + POOL_SIZE) {
        /* straddles the end: the part inside must not be written */
        canary = data;
        canary_len = POOL_BASE + POOL_SIZE - data;
    }
    if (ram_canary) {
        canary_len = len;
    }
    if (canary_len) {
        qvirtio_rdma_fill(g.qts, canary, CANARY, canary_len);
    }
    qvirtio_rdma_blk_submit(g.qts, d, vq, &g.pool, VIRTIO_BLK_T_IN, 0, data,
                            len, &status);
    expect_violation(&g, "buffer", data, len);
    qvirtio_rdma_wait_needs_reset(g.qts, d, TIMEOUT_US);
    if (canary_len) {
        qvirtio_rdma_assert_filled(g.qts, canary, CANARY, canary_len);
    }
    g_assert_cmphex(qtest_readb(g.qts, status), ==, 0xff);
    recover(&g, d);
    guest_stop(&g);
}

static void test_hostile_buffer_outside(void)
{
    hostile_buffer(0, SECTOR, true);
}

static void test_hostile_buffer_straddles_end(void)
{
    hostile_buffer(POOL_BASE + POOL_SIZE - SECTOR / 2, SECTOR, false);
}

static void test_hostile_buffer_wraps(void)
{
    hostile_buffer(0xfffffffffffff000ULL, 0x2000, false);
}

static void test_hostile_rings_outside(void)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    QVirtQueue *vq;
    uint64_t f, status, data;

    guest_start(&g, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&g, 0);
    f = qvirtio_get_features(d);
    qvirtio_set_features(d, f & F_AWARE);
    vq = qvirtqueue_setup(d, &g.ram, 0);
    expect_violation(&g, "descriptor ring", vq->desc, 16 * vq->size);
    qvirtio_rdma_wait_needs_reset(g.qts, d, TIMEOUT_US);
    qvirtio_rdma_fill(g.qts, vq->used, CANARY, 4 + 8 * vq->size);
    data = guest_alloc(&g.pool, SECTOR);
    qvirtio_rdma_fill(g.qts, data, CANARY, SECTOR);
    qvirtio_rdma_blk_submit(g.qts, d, vq, &g.pool, VIRTIO_BLK_T_IN, 0, data,
                            SECTOR, &status);
    qvirtio_rdma_settle(g.qts);
    qvirtio_rdma_assert_filled(g.qts, vq->used, CANARY, 4 + 8 * vq->size);
    qvirtio_rdma_assert_filled(g.qts, data, CANARY, SECTOR);
    recover(&g, d);
    guest_stop(&g);
}

static void test_hostile_used_ring_outside(void)
{
    Guest g = { 0 };
    QVirtioMMIODevice *m = &g.mmio[0];
    QVirtioDevice *d;
    uint64_t f, desc, used;
    uint16_t num;

    guest_start(&g, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&g, 0);
    f = qvirtio_get_features(d);
    qvirtio_set_features(d, f & F_AWARE);
    /* desc and avail in the pool, used in ordinary RAM */
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_SEL, 0);
    num = qtest_readl(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_NUM_MAX);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_NUM, num);
    desc = guest_alloc(&g.pool, 16 * num + 6 + 2 * num);
    used = guest_alloc(&g.ram, 4096);
    qvirtio_rdma_fill(g.qts, used, CANARY, 6 + 8 * num);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_DESC_LOW, desc);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_DESC_HIGH, desc >> 32);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_AVAIL_LOW,
                 desc + 16 * num);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_AVAIL_HIGH,
                 (desc + 16 * num) >> 32);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_USED_LOW, used);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_USED_HIGH, used >> 32);
    qtest_writel(g.qts, m->addr + QVIRTIO_MMIO_QUEUE_READY, 1);
    /* no EVENT_IDX: the used ring has no avail_event field */
    expect_violation(&g, "device (used) ring", used, 4 + 8 * num);
    qvirtio_rdma_wait_needs_reset(g.qts, d, TIMEOUT_US);
    qvirtio_rdma_settle(g.qts);
    qvirtio_rdma_assert_filled(g.qts, used, CANARY, 6 + 8 * num);
    recover(&g, d);
    guest_stop(&g);
}

static void test_hostile_indirect_outside(void)
{
    Guest g = { 0 };
    QVirtioDevice *d;
    QVirtQueue *vq;
    QVRingIndirectDesc *ind;
    struct virtio_blk_outhdr hdr = { .type = cpu_to_le32(VIRTIO_BLK_T_IN) };
    uint64_t hdr_addr, data, status;
    uint32_t head;

    guest_start(&g, "-device virtio-blk-device,id=dev0,drive=d0,"
                "restricted-dma-pool=p0");
    d = mmio_dev(&g, 0);
    vq = setup_aware(&g, d);
    hdr_addr = guest_alloc(&g.pool, sizeof(hdr));
    status = guest_alloc(&g.pool, 1);
    qtest_memwrite(g.qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(g.qts, status, 0xff);
    data = guest_alloc(&g.ram, SECTOR);
    qvirtio_rdma_fill(g.qts, data, CANARY, SECTOR);
    ind = qvring_indirect_desc_setup(g.qts, d, &g.ram, 3);
    qvring_indirect_desc_add(d, g.qts, ind, hdr_addr, sizeof(hdr), false);
    qvring_indirect_desc_add(d, g.qts, ind, data, SECTOR, true);
    qvring_indirect_desc_add(d, g.qts, ind, status, 1, true);
    head = qvirtqueue_add_indirect(g.qts, vq, ind);
    qvirtqueue_kick(g.qts, d, vq, head);
    expect_violation(&g, "indirect table", ind->desc,
                     3 * sizeof(struct vring_desc));
    qvirtio_rdma_wait_needs_reset(g.qts, d, TIMEOUT_US);
    qvirtio_rdma_assert_filled(g.qts, data, CANARY, SECTOR);
    g_assert_cmphex(qtest_readb(g.qts, status), ==, 0xff);
    g_free(ind);
    recover(&g, d);
    guest_stop(&g);
}

/* ---- configuration errors ------------------------------------------ */

typedef struct BadPool {
    const char *name;
    const char *args;       /* after the machine */
    const char *message;    /* on stderr */
    int status;             /* expected exit status */
} BadPool;

#define POOL "-object restricted-dma-pool,id=p0,"
#define RNG " -device virtio-rng-device,restricted-dma-pool=p0"

static const BadPool bad_arm[] = {
    { "size-not-page-multiple", POOL "size=1000" RNG,
      "restricted-dma-pool 'p0': size=1000 must be a non-zero multiple of "
      "the 4096 byte page size", 1 },
    { "size-zero", POOL "size=0" RNG,
      "restricted-dma-pool 'p0': size=0 must be a non-zero multiple", 1 },
    { "size-missing", "-object restricted-dma-pool,id=p0" RNG,
      "restricted-dma-pool 'p0' needs size or memdev", 1 },
    { "addr-outside-ram", POOL "size=16M,addr=0x10000000" RNG,
      "addr=0x10000000 size=0x1000000 is not wholly inside guest RAM", 1 },
    { "addr-past-ram-end", POOL "size=16M,addr=0x4f800000" RNG,
      "is not wholly inside guest RAM [0x40000000, 0x50000000)", 1 },
    { "addr-unaligned", POOL "size=16M,addr=0x48000100" RNG,
      "addr=0x48000100 is not aligned to the 4096 byte page size", 1 },
    { "overlapping-pools", "-object restricted-dma-pool,id=p1,size=16M "
      "-device virtio-rng-device,restricted-dma-pool=p1 "
      POOL "size=16M,addr=0x4e800000" RNG,
      "restricted-dma-pool 'p0' at 0x4e800000 overlaps restricted-dma-pool "
      "'p1' at [0x4f000000, 0x50000000)", 1 },
    { "overlaps-kernel", "-kernel /tmp/qtest-rdma-kernel "
      POOL "size=16M,addr=0x40000000" RNG,
      "overlaps the kernel, initrd and device tree", 1 },
    { "pool-and-bar", POOL "size=16M -device virtio-rng-pci,"
      "disable-legacy=on,restricted-dma-bar-size=1M,restricted-dma-pool=p0",
      "restricted-dma-pool and restricted-dma-bar-size cannot be combined",
      1 },
    { "unknown-pool", "-device virtio-rng-device,restricted-dma-pool=nope",
      "restricted-dma-pool=nope: Device 'nope' not found", 1 },
    { "transitional-pci", POOL "size=16M -device virtio-rng-pci,"
      "restricted-dma-pool=p0", "restricted-dma-pool needs a modern-only "
      "(virtio 1.x) device", 1 },
    { "vhost", POOL "size=16M -chardev socket,id=c0,"
      "path=/tmp/qtest-rdma-none.sock,server=on,wait=off "
      "-device vhost-user-blk-pci,chardev=c0,restricted-dma-pool=p0",
      "restricted-dma-pool cannot be used with vhost-user-blk", 1 },
    { "policy-without-window", "-device virtio-rng-device,"
      "restricted-dma-policy=tolerate",
      "restricted-dma-policy=tolerate needs a restricted DMA window", 1 },
    { "unused-pool", POOL "size=16M",
      "warning: restricted-dma-pool 'p0' is used by no device, so it is "
      "not described to the guest", 0 },
};

static const BadPool bad_x86[] = {
    { "pool-on-pc", "-M pc " POOL "size=16M -device virtio-rng-pci,"
      "disable-legacy=on,restricted-dma-pool=p0",
      "machine type pc-i440fx-10.0-machine cannot describe a restricted "
      "DMA pool", 1 },
    { "pool-on-q35", "-M q35 " POOL "size=16M -device virtio-rng-pci,"
      "disable-legacy=on,restricted-dma-pool=p0",
      "machine type pc-q35-10.0-machine cannot describe a restricted DMA "
      "pool", 1 },
    { "pool-on-microvm", "-M microvm " POOL "size=16M" RNG,
      "machine type microvm-machine cannot describe a restricted DMA pool",
      1 },
};

#undef POOL
#undef RNG

static void test_bad_config(const void *opaque)
{
    const BadPool *bp = opaque;
    g_autofree char *args = NULL;
    g_autofree char *err = NULL;

    if (g_str_equal(arch, "aarch64")) {
        args = g_strdup_printf("-M virt -cpu max -m 256M %s", bp->args);
    } else {
        args = g_strdup(bp->args);
    }
    g_assert_cmpint(qvirtio_rdma_run_qemu(args, &err), ==, bp->status);
    if (!strstr(err, bp->message)) {
        g_error("'%s': expected '%s' in:\n%s", bp->name, bp->message, err);
    }
}

static void test_hotplug_refused(void)
{
    QTestState *qts = qtest_init("-M virt -cpu max -m 256M "
                                 "-object restricted-dma-pool,id=p0,size=16M "
                                 "-device pcie-root-port,id=rp0,chassis=1");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'device_add', 'arguments': {"
                           " 'driver': 'virtio-rng-pci', 'bus': 'rp0',"
                           " 'disable-legacy': 'on',"
                           " 'restricted-dma-pool': 'p0' } }");
    const char *desc;

    g_assert_true(qdict_haskey(rsp, "error"));
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    g_assert_nonnull(strstr(desc, "a hot-plugged device cannot use one"));
    qobject_unref(rsp);
    qtest_quit(qts);
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

int main(int argc, char **argv)
{
    int ret;
    int fd;

    g_test_init(&argc, &argv, NULL);
    arch = qtest_get_arch();
    module_call_init(MODULE_INIT_QOM);

    if (!g_str_equal(arch, "aarch64")) {
        add_bad_configs(bad_x86, G_N_ELEMENTS(bad_x86));
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
    qtest_add_func("/virtio-rdma-pool/hotplug-refused", test_hotplug_refused);
    add_bad_configs(bad_arm, G_N_ELEMENTS(bad_arm));

    ret = g_test_run();
    unlink("/tmp/qtest-rdma-kernel");
    return ret;
}
