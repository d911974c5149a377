/*
 * libqos: a harness for tests of virtio devices with restricted DMA
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "../libqtest.h"
#include "malloc-pc.h"
#include "pci-pc.h"
#include "virtio-pci-modern.h"
#include "virtio-restricted-dma.h"

/* ---- machines ------------------------------------------------------ */

bool qrestricted_machine_is_x86(const char *machine)
{
    const char *arch = qtest_get_arch();
    size_t n;

    if (!machine) {
        return g_str_equal(arch, "x86_64") || g_str_equal(arch, "i386");
    }
    n = strcspn(machine, ",");
    return (n == 2 && !strncmp(machine, "pc", 2)) ||
           !strncmp(machine, "pc-", 3) ||
           (n == 3 && !strncmp(machine, "q35", 3)) ||
           (n == 7 && !strncmp(machine, "microvm", 7));
}

char *qrestricted_machine_args(const char *machine, uint64_t ram_mb)
{
    bool x86 = qrestricted_machine_is_x86(machine);
    GString *s = g_string_new(NULL);
    size_t n;

    if (machine && g_str_equal(machine, "none")) {
        g_string_append(s, "-M none");
        return g_string_free(s, false);
    }
    if (!machine) {
        machine = x86 ? "pc" : "virt";
    }
    if (!ram_mb && !x86) {
        ram_mb = 256;
    }
    g_string_append_printf(s, "-M %s", machine);
    if (ram_mb) {
        g_string_append_printf(s, " -m %" PRIu64 "M", ram_mb);
    }
    if (!x86) {
        g_string_append(s, " -cpu max");
    }
    n = strcspn(machine, ",");
    if ((n == 4 && !strncmp(machine, "virt", 4)) ||
        (n == 7 && !strncmp(machine, "microvm", 7))) {
        g_string_append(s, " -global virtio-mmio.force-legacy=false");
    }
    return g_string_free(s, false);
}

void qrestricted_start(QRestrictedMachine *m, const char *fmt, ...)
{
    g_autofree char *extra = NULL;
    g_autofree char *machine = NULL;
    g_autofree char *margs = NULL;
    g_autofree char *shared = NULL;
    uint64_t ram_mb = m->ram_mb;
    va_list ap;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    m->x86 = qrestricted_machine_is_x86(m->machine);
    machine = g_strdup(m->machine ? m->machine : m->x86 ? "pc" : "virt");
    if (!ram_mb && !m->x86) {
        ram_mb = 256;
    }
    if (m->shared_ram) {
        /* guest RAM that a vhost-user backend could map, if it were given */
        ram_mb = ram_mb ? ram_mb : 256;
        shared = g_strdup_printf("-object memory-backend-memfd,id=ram,"
                                 "size=%" PRIu64 "M,share=on", ram_mb);
        g_free(machine);
        machine = g_strdup_printf("%s,memory-backend=ram",
                                  m->machine ? m->machine :
                                  m->x86 ? "pc" : "virt");
    }
    margs = qrestricted_machine_args(machine, ram_mb);
    m->qts = qtest_initf("%s -nodefaults %s %s", margs, shared ? shared : "",
                         extra);
    if (m->x86) {
        pc_alloc_init(&m->ram, m->qts, ALLOC_NO_FLAGS);
        m->bus = qpci_new_pc(m->qts, &m->ram);
    } else {
        /* the lower half of RAM: the board puts pools at the top */
        alloc_init(&m->ram, ALLOC_NO_FLAGS,
                   QRESTRICTED_ARM_RAM_BASE + 16 * MiB,
                   QRESTRICTED_ARM_RAM_BASE + ram_mb * MiB / 2, 4096);
        qpci_init_generic(&m->gbus, m->qts, &m->ram, false);
        m->bus = &m->gbus.bus;
    }
}

static void window_free(QRestrictedWindow *w)
{
    if (w->has_alloc) {
        alloc_destroy(&w->alloc);
    }
    g_free(w->pool);
    memset(w, 0, sizeof(*w));
}

static void device_free(QRestrictedDevice *d)
{
    if (d->pci) {
        qos_object_destroy(&d->pci->obj);
    }
    window_free(&d->bar);
    g_free(d->id);
    g_free(d->path);
    memset(d, 0, sizeof(*d));
}

void qrestricted_stop(QRestrictedMachine *m)
{
    int i;

    for (i = 0; i < m->ndev; i++) {
        device_free(&m->dev[i]);
    }
    for (i = 0; i < m->npools; i++) {
        window_free(&m->pool[i]);
    }
    if (m->x86) {
        qpci_free_pc(m->bus);
    }
    alloc_destroy(&m->ram);
    qtest_quit(m->qts);
    for (i = 0; i < m->nimg; i++) {
        unlink(m->img[i]);
        g_free(m->img[i]);
    }
    memset(m, 0, sizeof(*m));
}

const char *qrestricted_image(QRestrictedMachine *m, size_t size)
{
    char *path = g_strdup("/tmp/qtest-rdma-disk.XXXXXX");
    int fd = g_mkstemp(path);

    g_assert_cmpint(m->nimg, <, QRESTRICTED_MAX_IMAGES);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    close(fd);
    m->img[m->nimg++] = path;
    return path;
}

/* ---- the device and its window ------------------------------------- */

static QRestrictedDevice *device_new(QRestrictedMachine *m, const char *id)
{
    QRestrictedDevice *d;

    g_assert_cmpint(m->ndev, <, QRESTRICTED_MAX_DEVICES);
    d = &m->dev[m->ndev++];
    d->m = m;
    d->id = g_strdup(id);
    d->devfn = -1;
    return d;
}

QRestrictedDevice *qrestricted_pci(QRestrictedMachine *m, int devfn,
                                   const char *id)
{
    QPCIAddress addr = { .devfn = devfn };
    QRestrictedDevice *d = device_new(m, id);

    d->devfn = devfn;
    d->pci = virtio_pci_new(m->bus, &addr);
    g_assert_nonnull(d->pci);
    d->vdev = &d->pci->vdev;
    d->path = g_strdup_printf("/machine/peripheral/%s/virtio-backend", id);
    qvirtio_pci_device_enable(d->pci);
    qvirtio_start_device(d->vdev);
    return d;
}

QRestrictedDevice *qrestricted_mmio(QRestrictedMachine *m, int nth,
                                    const char *id)
{
    QRestrictedDevice *d = device_new(m, id);

    qvirtio_mmio_init_device(&d->mmio, m->qts, QRESTRICTED_MMIO_LAST -
                             nth * QRESTRICTED_MMIO_STRIDE, 4096);
    g_assert_cmpint(d->mmio.version, ==, 2);
    d->vdev = &d->mmio.vdev;
    d->path = g_strdup_printf("/machine/peripheral/%s", id);
    qvirtio_start_device(d->vdev);
    return d;
}

void qrestricted_release(QRestrictedDevice *d)
{
    device_free(d);
}

bool qrestricted_find_cap(QVirtioPCIDevice *dev, uint8_t *bar,
                          uint32_t *offset, uint32_t *length)
{
    return qvirtio_pci_find_structure(dev, QVIRTIO_PCI_CAP_RESTRICTED_DMA_CFG,
                                      bar, offset, length, NULL);
}

void qrestricted_window_reset(QRestrictedWindow *w)
{
    if (w->has_alloc) {
        alloc_destroy(&w->alloc);
    }
    alloc_init(&w->alloc, ALLOC_NO_FLAGS, w->base, w->base + w->size, 64);
    w->has_alloc = true;
}

static void window_map_bar(QRestrictedWindow *w, QVirtioPCIDevice *dev)
{
    uint32_t length;
    uint64_t barsize;
    QPCIBar bar;

    window_free(w);
    w->pci = dev;
    g_assert_true(qrestricted_find_cap(dev, &w->bar, &w->offset, &length));
    bar = qpci_iomap(dev->pdev, w->bar, &barsize);
    g_assert_false(bar.is_io);
    g_assert_cmpuint(w->offset + (uint64_t)length, <=, barsize);
    w->bar_addr = bar.addr;
    w->base = bar.addr + w->offset;
    w->size = length;
    qrestricted_window_reset(w);
}

static uint64_t qom_get_uint(QTestState *qts, const char *path,
                             const char *property)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments':"
                           " { 'path': %s, 'property': %s } }", path,
                           property);
    uint64_t v;

    g_assert_true(qnum_get_try_uint(qobject_to(QNum, qdict_get(rsp,
                                                               "return")),
                                    &v));
    qobject_unref(rsp);
    return v;
}

QRestrictedWindow *qrestricted_pool(QRestrictedMachine *m, const char *id)
{
    g_autofree char *path = g_strdup_printf("/objects/%s", id);
    QRestrictedWindow *w;
    int i;

    for (i = 0; i < m->npools; i++) {
        if (g_str_equal(m->pool[i].pool, id)) {
            return &m->pool[i];
        }
    }
    g_assert_cmpint(m->npools, <, QRESTRICTED_MAX_POOLS);
    w = &m->pool[m->npools++];
    w->pool = g_strdup(id);
    /* where the board placed it */
    w->base = qom_get_uint(m->qts, path, "addr");
    w->size = qom_get_uint(m->qts, path, "size");
    qrestricted_window_reset(w);
    return w;
}

QRestrictedWindow *qrestricted_window(QRestrictedDevice *d)
{
    g_autoptr(QDict) st = NULL;
    const char *kind;

    if (d->win) {
        return d->win;
    }
    st = qrestricted_status(d);
    kind = qdict_get_str(st, "kind");
    if (g_str_equal(kind, "pool")) {
        d->win = qrestricted_pool(d->m, qdict_get_str(st, "pool"));
    } else {
        g_assert_cmpstr(kind, ==, "bar");
        g_assert_nonnull(d->pci);
        window_map_bar(&d->bar, d->pci);
        d->win = &d->bar;
    }
    g_assert_cmphex(qdict_get_int(st, "window-size"), ==, d->win->size);
    return d->win;
}

uint64_t qrestricted_window_move(QRestrictedWindow *w)
{
    QPCIBus *bus = w->pci->pdev->bus;
    uint64_t old = w->base;
    uint64_t size = pow2ceil(w->offset + w->size);
    uint64_t loc = QEMU_ALIGN_UP(bus->mmio_alloc_ptr, size);
    int reg = PCI_BASE_ADDRESS_0 + 4 * w->bar;

    g_assert_cmpuint(loc + size, <=, bus->mmio_limit);
    bus->mmio_alloc_ptr = loc + size;
    qpci_config_writel(w->pci->pdev, reg, loc);
    qpci_config_writel(w->pci->pdev, reg + 4, loc >> 32);
    w->bar_addr = loc;
    w->base = loc + w->offset;
    qrestricted_window_reset(w);
    return old;
}

uint64_t qrestricted_offered(QRestrictedDevice *d)
{
    uint64_t f = qvirtio_get_features(d->vdev);

    g_assert_cmphex(f & QRESTRICTED_F_AWARE, ==, QRESTRICTED_F_AWARE);
    return f;
}

void qrestricted_negotiate(QRestrictedDevice *d)
{
    uint64_t f = qrestricted_offered(d);

    qvirtio_set_features(d->vdev, f & (QRESTRICTED_F_AWARE |
                                       (1ULL << VIRTIO_RING_F_INDIRECT_DESC)));
}

QVirtQueue *qrestricted_driver(QRestrictedDevice *d)
{
    QRestrictedWindow *w = qrestricted_window(d);
    QVirtQueue *vq;

    qrestricted_negotiate(d);
    vq = qvirtqueue_setup(d->vdev, &w->alloc, 0);
    qvirtio_set_driver_ok(d->vdev);
    return vq;
}

QVirtQueue *qrestricted_restart(QRestrictedDevice *d)
{
    qvirtio_start_device(d->vdev);
    return qrestricted_driver(d);
}

uint8_t qrestricted_dev_status(QRestrictedDevice *d)
{
    return d->vdev->bus->get_status(d->vdev);
}

bool qrestricted_try_features(QRestrictedDevice *d, uint64_t features)
{
    d->vdev->bus->set_features(d->vdev, features);
    d->vdev->bus->set_status(d->vdev, qrestricted_dev_status(d) |
                             VIRTIO_CONFIG_S_FEATURES_OK);
    return qrestricted_dev_status(d) & VIRTIO_CONFIG_S_FEATURES_OK;
}

void qrestricted_force_driver_ok(QRestrictedDevice *d)
{
    d->vdev->bus->set_status(d->vdev, qrestricted_dev_status(d) |
                             VIRTIO_CONFIG_S_DRIVER_OK);
}

QVirtQueue *qrestricted_virtqueue_setup_used_at(QVirtioPCIDevice *d,
                                                QGuestAllocator *alloc,
                                                uint16_t index,
                                                uint64_t used)
{
    QTestState *qts = d->pdev->bus->qts;
    QVirtQueue *vq = qvirtio_pci_virtqueue_setup_common(&d->vdev, alloc,
                                                        index);
    QVirtQueuePCI *vqpci = container_of(vq, QVirtQueuePCI, vq);
    uint16_t notify_off;

    /* an empty used ring at @used */
    vq->used = used;
    qtest_writew(qts, used + offsetof(struct vring_used, flags), 0);
    qtest_writew(qts, used + offsetof(struct vring_used, idx), 0);
    d->vdev.bus->set_queue_address(&d->vdev, vq);

    notify_off = qpci_io_readw(d->pdev, d->bar, d->common_cfg_offset +
                               offsetof(struct virtio_pci_common_cfg,
                                        queue_notify_off));
    vqpci->notify_offset = d->notify_cfg_offset +
                           notify_off * d->notify_off_multiplier;
    qpci_io_writew(d->pdev, d->bar, d->common_cfg_offset +
                   offsetof(struct virtio_pci_common_cfg, queue_enable), 1);
    return vq;
}

QRestrictedDevice *qrestricted_adopt(QRestrictedMachine *dst,
                                     QRestrictedDevice *src)
{
    QPCIAddress addr = { .devfn = src->devfn };
    QRestrictedDevice *d = device_new(dst, src->id);
    uint64_t lo, hi;
    int reg;

    g_assert_nonnull(src->pci);
    d->devfn = src->devfn;
    d->pci = virtio_pci_new(dst->bus, &addr);
    g_assert_nonnull(d->pci);
    d->vdev = &d->pci->vdev;
    d->path = g_strdup(src->path);
    /* the BARs keep the addresses the guest gave them */
    reg = PCI_BASE_ADDRESS_0 + 4 * d->pci->bar_idx;
    lo = qpci_config_readl(d->pci->pdev, reg) & PCI_BASE_ADDRESS_MEM_MASK;
    hi = qpci_config_readl(d->pci->pdev, reg + 4);
    d->pci->bar.addr = lo | hi << 32;
    d->pci->bar.is_io = false;
    d->vdev->features = src->vdev->features;
    d->vdev->features_negotiated = true;
    if (src->win == &src->bar) {
        d->bar = src->bar;
        d->bar.pci = d->pci;
        memset(&src->bar, 0, sizeof(src->bar));
        src->win = NULL;
        d->win = &d->bar;
    }
    return d;
}

/* ---- status -------------------------------------------------------- */

QDict *qrestricted_query(QTestState *qts, const char *path)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'x-query-virtio-status',"
                           " 'arguments': { 'path': %s } }", path);
    QDict *ret, *r;

    g_assert(qdict_haskey(rsp, "return"));
    ret = qdict_get_qdict(rsp, "return");
    r = qdict_get_qdict(ret, "restricted-dma");
    g_assert_nonnull(r);
    qobject_ref(r);
    qobject_unref(rsp);
    return r;
}

QDict *qrestricted_status(QRestrictedDevice *d)
{
    return qrestricted_query(d->m->qts, d->path);
}

int64_t qrestricted_int(QRestrictedDevice *d, const char *key)
{
    g_autoptr(QDict) r = qrestricted_status(d);

    return qdict_get_int(r, key);
}

bool qrestricted_bool(QRestrictedDevice *d, const char *key)
{
    g_autoptr(QDict) r = qrestricted_status(d);

    return qdict_get_bool(r, key);
}

static uint64_t dict_uint(QDict *d, const char *key)
{
    uint64_t v;

    g_assert_true(qnum_get_try_uint(qobject_to(QNum, qdict_get(d, key)), &v));
    return v;
}

void qrestricted_expect_violation(QRestrictedDevice *d, const char *access,
                                  uint64_t addr, uint64_t len)
{
    QRestrictedWindow *w = qrestricted_window(d);
    QDict *ev = qtest_qmp_eventwait_ref(d->m->qts,
                                        "VIRTIO_RESTRICTED_DMA_VIOLATION");
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "device"), ==, d->id);
    g_assert_cmpstr(qdict_get_str(data, "qom-path"), ==, d->path);
    g_assert_cmpstr(qdict_get_str(data, "access"), ==, access);
    g_assert_cmphex(dict_uint(data, "address"), ==, addr);
    g_assert_cmphex(dict_uint(data, "length"), ==, len);
    g_assert_cmphex(dict_uint(data, "window-address"), ==, w->base);
    g_assert_cmphex(dict_uint(data, "window-size"), ==, w->size);
    qobject_unref(ev);
}

void qrestricted_wait_needs_reset(QRestrictedDevice *d)
{
    gint64 start = g_get_monotonic_time();

    while (!(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        g_usleep(1000);
    }
}

void qrestricted_settle(QTestState *qts)
{
    int i;

    for (i = 0; i < 5; i++) {
        qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    }
}

void qrestricted_fill(QTestState *qts, uint64_t addr, uint8_t byte,
                      size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);

    memset(buf, byte, len);
    qtest_memwrite(qts, addr, buf, len);
}

void qrestricted_assert_filled(QTestState *qts, uint64_t addr, uint8_t byte,
                               size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);
    size_t i;

    qtest_memread(qts, addr, buf, len);
    for (i = 0; i < len; i++) {
        if (buf[i] != byte) {
            g_error("byte 0x%" PRIx64 " is 0x%02x, expected 0x%02x",
                    addr + i, buf[i], byte);
        }
    }
}

/* ---- virtio-blk ---------------------------------------------------- */

uint32_t qrestricted_blk_submit(QRestrictedDevice *d, QVirtQueue *vq,
                                QGuestAllocator *a, uint32_t type,
                                uint64_t sector, uint64_t data, uint32_t len,
                                uint64_t *status)
{
    QTestState *qts = d->m->qts;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(type),
        .sector = cpu_to_le64(sector),
    };
    uint64_t hdr_addr = guest_alloc(a, sizeof(hdr));
    uint32_t head;

    *status = guest_alloc(a, 1);
    qtest_memwrite(qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(qts, *status, 0xff);
    head = qvirtqueue_add(qts, vq, hdr_addr, sizeof(hdr), false, true);
    qvirtqueue_add(qts, vq, data, len, type == VIRTIO_BLK_T_IN, true);
    qvirtqueue_add(qts, vq, *status, 1, true, false);
    qvirtqueue_kick(qts, d->vdev, vq, head);
    return head;
}

uint8_t qrestricted_blk_io(QRestrictedDevice *d, QVirtQueue *vq,
                           uint32_t type, uint64_t sector, uint64_t data,
                           uint32_t len)
{
    uint64_t status;
    uint32_t head = qrestricted_blk_submit(d, vq,
                                           &qrestricted_window(d)->alloc,
                                           type, sector, data, len, &status);

    qvirtio_wait_used_elem(d->m->qts, d->vdev, vq, head, NULL,
                           QRESTRICTED_TIMEOUT_US);
    return qtest_readb(d->m->qts, status);
}

void qrestricted_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = seed + i * 7;
    }
}

void qrestricted_blk_roundtrip(QRestrictedDevice *d, QVirtQueue *vq,
                               uint64_t sector, size_t len, uint8_t seed,
                               const char *image)
{
    QTestState *qts = d->m->qts;
    QGuestAllocator *a = &qrestricted_window(d)->alloc;
    g_autofree uint8_t *pattern = g_malloc(len);
    g_autofree uint8_t *back = g_malloc(len);
    uint64_t out = guest_alloc(a, len);
    uint64_t in = guest_alloc(a, len);
    int fd;

    qrestricted_pattern(pattern, len, seed);
    qtest_memwrite(qts, out, pattern, len);
    qrestricted_fill(qts, in, 0, len);
    g_assert_cmpint(qrestricted_blk_io(d, vq, VIRTIO_BLK_T_OUT, sector, out,
                                       len), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(qrestricted_blk_io(d, vq, VIRTIO_BLK_T_IN, sector, in,
                                       len), ==, VIRTIO_BLK_S_OK);
    qtest_memread(qts, in, back, len);
    g_assert_cmpmem(back, len, pattern, len);
    if (image) {
        fd = open(image, O_RDONLY);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pread(fd, back, len, sector * 512), ==, len);
        close(fd);
        g_assert_cmpmem(back, len, pattern, len);
    }
}

/* ---- virtio-rng ---------------------------------------------------- */

void qrestricted_rng_read(QRestrictedDevice *d, QVirtQueue *vq, uint8_t *buf,
                          uint32_t len)
{
    QTestState *qts = d->m->qts;
    uint64_t addr = guest_alloc(&qrestricted_window(d)->alloc, len);
    uint32_t head, used = 0;

    qrestricted_fill(qts, addr, 0, len);
    head = qvirtqueue_add(qts, vq, addr, len, true, false);
    qvirtqueue_kick(qts, d->vdev, vq, head);
    qvirtio_wait_used_elem(qts, d->vdev, vq, head, &used,
                           QRESTRICTED_TIMEOUT_US);
    g_assert_cmpint(used, ==, len);
    qtest_memread(qts, addr, buf, len);
}

/* ---- hostile drivers ---------------------------------------------- */

#define CANARY 0xa5

static uint16_t used_idx(QTestState *qts, QVirtQueue *vq)
{
    return qtest_readw(qts, vq->used + offsetof(struct vring_used, idx));
}

void qrestricted_assert_inert(QRestrictedDevice *d, QVirtQueue *vq,
                              QGuestAllocator *a, uint64_t used, size_t len)
{
    QTestState *qts = d->m->qts;
    uint64_t data = guest_alloc(a, 512), status;

    qrestricted_fill(qts, used, CANARY, len);
    qrestricted_fill(qts, data, CANARY, 512);
    qrestricted_force_driver_ok(d);
    qrestricted_blk_submit(d, vq, a, VIRTIO_BLK_T_IN, 0, data, 512, &status);
    qrestricted_settle(qts);
    qrestricted_assert_filled(qts, used, CANARY, len);
    qrestricted_assert_filled(qts, data, CANARY, 512);
    g_assert_cmphex(qtest_readb(qts, status), ==, 0xff);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
}

void qrestricted_hostile_buffer(QRestrictedDevice *d, QVirtQueue *vq,
                                uint64_t data, uint32_t len, uint64_t canary,
                                size_t canary_len)
{
    QTestState *qts = d->m->qts;
    uint16_t idx = used_idx(qts, vq);
    uint64_t status;

    if (canary_len) {
        qrestricted_fill(qts, canary, CANARY, canary_len);
    }
    qrestricted_blk_submit(d, vq, &qrestricted_window(d)->alloc,
                           VIRTIO_BLK_T_IN, 0, data, len, &status);
    qrestricted_expect_violation(d, "buffer", data, len);
    qrestricted_wait_needs_reset(d);
    if (canary_len) {
        qrestricted_assert_filled(qts, canary, CANARY, canary_len);
    }
    g_assert_cmpint(used_idx(qts, vq), ==, idx);
    g_assert_cmphex(qtest_readb(qts, status), ==, 0xff);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
}

void qrestricted_hostile_indirect(QRestrictedDevice *d, QVirtQueue *vq)
{
    QTestState *qts = d->m->qts;
    QGuestAllocator *a = &qrestricted_window(d)->alloc;
    QGuestAllocator *ram = &d->m->ram;
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(VIRTIO_BLK_T_IN),
    };
    uint64_t hdr_addr = guest_alloc(a, sizeof(hdr));
    uint64_t status = guest_alloc(a, 1);
    uint64_t data = guest_alloc(ram, 512);
    uint16_t idx = used_idx(qts, vq);
    QVRingIndirectDesc *ind;
    uint32_t head;

    g_assert_true(vq->indirect);
    qtest_memwrite(qts, hdr_addr, &hdr, sizeof(hdr));
    qtest_writeb(qts, status, 0xff);
    qrestricted_fill(qts, data, CANARY, 512);
    ind = qvring_indirect_desc_setup(qts, d->vdev, ram, 3);
    qvring_indirect_desc_add(d->vdev, qts, ind, hdr_addr, sizeof(hdr), false);
    qvring_indirect_desc_add(d->vdev, qts, ind, data, 512, true);
    qvring_indirect_desc_add(d->vdev, qts, ind, status, 1, true);
    head = qvirtqueue_add_indirect(qts, vq, ind);
    qvirtqueue_kick(qts, d->vdev, vq, head);
    qrestricted_expect_violation(d, "indirect table", ind->desc,
                                 3 * sizeof(struct vring_desc));
    qrestricted_wait_needs_reset(d);
    qrestricted_assert_filled(qts, data, CANARY, 512);
    g_assert_cmpint(used_idx(qts, vq), ==, idx);
    g_assert_cmphex(qtest_readb(qts, status), ==, 0xff);
    g_free(ind);
}

/* ---- any device: requests as chains of buffers --------------------- */

void qrestricted_driver_queues(QRestrictedDevice *d, uint64_t features,
                               int n, QVirtQueue **vqs)
{
    QRestrictedWindow *w = qrestricted_window(d);
    uint64_t f = qrestricted_offered(d);
    int i;

    qvirtio_set_features(d->vdev, f & (QRESTRICTED_F_AWARE | features |
                                       (1ULL << VIRTIO_RING_F_INDIRECT_DESC)));
    for (i = 0; i < n; i++) {
        vqs[i] = qvirtqueue_setup(d->vdev, &w->alloc, i);
    }
    qvirtio_set_driver_ok(d->vdev);
}

uint64_t qrestricted_put(QRestrictedDevice *d, const void *data, size_t len)
{
    uint64_t addr = guest_alloc(&qrestricted_window(d)->alloc, len);

    if (data) {
        qtest_memwrite(d->m->qts, addr, data, len);
    } else {
        qrestricted_fill(d->m->qts, addr, 0, len);
    }
    return addr;
}

uint64_t qrestricted_canary(QRestrictedDevice *d, size_t len)
{
    uint64_t addr = guest_alloc(&d->m->ram, len);

    qrestricted_fill(d->m->qts, addr, QRESTRICTED_CANARY, len);
    return addr;
}

uint32_t qrestricted_submit_chain(QRestrictedDevice *d, QVirtQueue *vq,
                                  const QRestrictedBuf *bufs, int n)
{
    QTestState *qts = d->m->qts;
    uint32_t head = 0;
    int i;

    g_assert_cmpint(n, >, 0);
    for (i = 0; i < n; i++) {
        uint32_t idx = qvirtqueue_add(qts, vq, bufs[i].addr, bufs[i].len,
                                      bufs[i].write, i < n - 1);

        if (!i) {
            head = idx;
        }
    }
    qvirtqueue_kick(qts, d->vdev, vq, head);
    return head;
}

uint32_t qrestricted_wait_used(QRestrictedDevice *d, QVirtQueue *vq,
                               uint32_t head)
{
    gint64 start = g_get_monotonic_time();
    uint32_t got, len = 0;

    while (!qvirtqueue_get_buf(d->m->qts, vq, &got, &len)) {
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        g_usleep(100);
    }
    g_assert_cmpint(got, ==, head);
    return len;
}

uint32_t qrestricted_call(QRestrictedDevice *d, QVirtQueue *vq,
                          const QRestrictedBuf *bufs, int n)
{
    return qrestricted_wait_used(d, vq, qrestricted_submit_chain(d, vq, bufs,
                                                                 n));
}

uint16_t qrestricted_used_idx(QRestrictedDevice *d, QVirtQueue *vq)
{
    return qtest_readw(d->m->qts, vq->used + offsetof(struct vring_used,
                                                      idx));
}

void qrestricted_assert_broken(QRestrictedDevice *d, QVirtQueue *vq,
                               uint16_t idx, const char *access,
                               uint64_t addr, uint64_t len, uint64_t canary,
                               size_t canary_len)
{
    gint64 start = g_get_monotonic_time();

    /* a device that fails the request without counting it fails here */
    while (qrestricted_int(d, "violations") == 0) {
        if (g_get_monotonic_time() - start > QRESTRICTED_TIMEOUT_US) {
            g_error("%s: no violation counted for the %s at 0x%" PRIx64,
                    d->id, access, addr);
        }
        g_usleep(1000);
    }
    qrestricted_expect_violation(d, access, addr, len);
    qrestricted_wait_needs_reset(d);
    qrestricted_settle(d->m->qts);
    if (canary_len) {
        qrestricted_assert_filled(d->m->qts, canary, QRESTRICTED_CANARY,
                                  canary_len);
    }
    g_assert_cmpint(qrestricted_used_idx(d, vq), ==, idx);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 1);
}

/* ---- QEMU that must not start, or must refuse a device_add --------- */

int qrestricted_run(const char *machine, const char *args, char **err)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *margs = qrestricted_machine_args(machine, 0);
    g_autofree char *cmd = g_strdup_printf("echo quit | timeout 20 %s %s %s "
                                           "-nodefaults -display none -S "
                                           "-accel qtest -monitor stdio",
                                           qemu, margs, args);
    char *argv[] = { (char *)"sh", (char *)"-c", cmd, NULL };
    int status;

    g_assert_true(g_spawn_sync(NULL, argv, NULL,
                               G_SPAWN_SEARCH_PATH |
                               G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               err, &status, NULL));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void qrestricted_assert_run(const char *machine, const char *args,
                            int status, const char *message)
{
    g_autofree char *err = NULL;
    int st = qrestricted_run(machine, args, &err);

    if (st != status || !strstr(err, message)) {
        g_error("QEMU with %s: exit status %d (expected %d), and expected "
                "'%s' in:\n%s", args, st, status, message, err);
    }
}

QDict *qrestricted_device_add(QTestState *qts, const char *driver,
                              const char *id, const char *props)
{
    g_autofree char *json = g_strdup_printf("{ %s }", props);
    QDict *args = qobject_to(QDict, qobject_from_json(json, &error_abort));

    g_assert_nonnull(args);
    qdict_put_str(args, "driver", driver);
    qdict_put_str(args, "id", id);
    return qtest_qmp(qts, "{ 'execute': 'device_add', 'arguments': %p }",
                     args);
}

/* The value of @key= in the option string @opts ("type,key=value,...") */
static char *opt_value(const char *opts, const char *key)
{
    g_auto(GStrv) kv = g_strsplit(opts, ",", -1);
    size_t n = strlen(key);
    int i;

    for (i = 0; kv[i]; i++) {
        if (!strncmp(kv[i], key, n) && kv[i][n] == '=') {
            return g_strdup(kv[i] + n + 1);
        }
    }
    g_error("no %s= in '%s'", key, opts);
}

/* Does the reply @rsp list a dict whose @key is @value?  Takes @rsp. */
static bool listed(QDict *rsp, const char *key, const char *value)
{
    QListEntry *e;
    bool found = false;

    g_assert_true(qdict_haskey(rsp, "return"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *item = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_haskey(item, key) &&
            g_str_equal(qdict_get_str(item, key), value)) {
            found = true;
        }
    }
    qobject_unref(rsp);
    return found;
}

static bool netdev_exists(QTestState *qts, const char *id)
{
    g_autofree char *line = g_strdup_printf("%s: index=", id);
    g_autofree char *out = qtest_hmp(qts, "info network");

    return strstr(out, line) != NULL;
}

/* Is every backend that @args creates still there?  If not, which not */
static char *backends_missing(QTestState *qts, const char *args)
{
    /* the backends a query lists: option, its id, query, the id there */
    static const char *const listed_by[][4] = {
        { "-drive", "id", "query-block", "device" },
        { "-blockdev", "node-name", "query-named-block-nodes", "node-name" },
        { "-chardev", "id", "query-chardev", "label" },
    };
    g_auto(GStrv) w = g_strsplit(args, " ", -1);
    GString *missing = g_string_new(NULL);
    int i, j;

    for (i = 0; w[i] && w[i + 1]; i++) {
        g_autofree char *id = NULL;
        bool ok = false;

        for (j = 0; j < G_N_ELEMENTS(listed_by); j++) {
            if (g_str_equal(w[i], listed_by[j][0])) {
                id = opt_value(w[i + 1], listed_by[j][1]);
                ok = listed(qtest_qmp(qts, "{ 'execute': %s }",
                                      listed_by[j][2]), listed_by[j][3], id);
            }
        }
        if (g_str_equal(w[i], "-object")) {
            id = opt_value(w[i + 1], "id");
            ok = listed(qtest_qmp(qts, "{ 'execute': 'qom-list',"
                                  " 'arguments': { 'path': '/objects' } }"),
                        "name", id);
        } else if (g_str_equal(w[i], "-netdev")) {
            id = opt_value(w[i + 1], "id");
            ok = netdev_exists(qts, id);
        }
        if (id && !ok) {
            g_string_append_printf(missing, " %s %s", w[i], id);
        }
    }
    if (!missing->len) {
        g_string_free(missing, true);
        return NULL;
    }
    return g_string_free(missing, false);
}

void qrestricted_assert_backends(QTestState *qts, const char *args)
{
    g_autofree char *missing = backends_missing(qts, args);

    if (missing) {
        g_error("backends gone:%s", missing);
    }
}

/*
 * A case of qrestricted_plug_refused() that fails: say why, and let the
 * other cases run (a failed g_assert would end the test program).
 */
#define PLUG_FAIL(...) do {             \
        g_test_message(__VA_ARGS__);    \
        g_test_fail();                  \
        qobject_unref(rsp);             \
        return qts;                     \
    } while (0)

QTestState *qrestricted_plug_refused(const QRestrictedPlug *p,
                                     const char *message)
{
    const char *machine = qrestricted_machine_is_x86(NULL) ? "q35" : "virt";
    const char *good_driver = p->good_driver ? p->good_driver : p->driver;
    g_autofree char *margs = qrestricted_machine_args(machine, 0);
    g_autofree char *bad = g_strdup_printf("'bus': 'rp0', %s", p->bad);
    g_autofree char *good = g_strdup_printf("'bus': 'rp0', %s", p->good);
    g_autofree char *missing = NULL;
    QTestState *qts = qtest_initf("%s -nodefaults -device pcie-root-port,"
                                  "id=rp0,chassis=1 %s", margs, p->backend);
    QDict *rsp = qrestricted_device_add(qts, p->driver, "dev0", bad);
    QDict *st;
    const char *desc;

    if (p->message) {
        message = p->message;
    }
    if (!qdict_haskey(rsp, "error")) {
        PLUG_FAIL("device_add %s { %s } was not refused", p->driver, p->bad);
    }
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    if (!strstr(desc, message)) {
        PLUG_FAIL("device_add %s { %s }: expected '%s' in '%s'", p->driver,
                  p->bad, message, desc);
    }
    qobject_unref(rsp);

    /* nothing of the device is left, and its backends are all there */
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-list', 'arguments':"
                    " { 'path': '/machine/peripheral/dev0' } }");
    if (!qdict_haskey(rsp, "error")) {
        PLUG_FAIL("the refused device is still in /machine/peripheral");
    }
    qobject_unref(rsp);
    rsp = NULL;
    missing = backends_missing(qts, p->backend);
    if (missing) {
        PLUG_FAIL("after the refusal, backends gone:%s", missing);
    }

    /* the corrected device, with the same backends */
    rsp = qrestricted_device_add(qts, good_driver, "dev0", good);
    if (!qdict_haskey(rsp, "return")) {
        PLUG_FAIL("after the refusal, device_add %s { %s } failed: %s",
                  good_driver, p->good,
                  qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"));
    }
    qobject_unref(rsp);
    rsp = qtest_qmp(qts, "{ 'execute': 'x-query-virtio-status', 'arguments':"
                    " { 'path': '/machine/peripheral/dev0/virtio-backend' } }");
    if (!qdict_haskey(rsp, "return")) {
        PLUG_FAIL("the corrected device does not answer "
                  "x-query-virtio-status");
    }
    st = qdict_get_qdict(rsp, "return");
    if (strstr(p->good, "restricted-dma-bar") &&
        (!qdict_haskey(st, "restricted-dma") ||
         !g_str_equal(qdict_get_str(qdict_get_qdict(st, "restricted-dma"),
                                    "kind"), "bar"))) {
        PLUG_FAIL("the corrected device has no BAR window");
    }
    qobject_unref(rsp);
    return qts;
}
