/*
 * libqos: virtio-pci devices with a restricted DMA window in a BAR
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "qemu/bswap.h"
#include "qobject/qnum.h"
#include "virtio-pci-modern.h"
#include "virtio-restricted-dma.h"

bool qvirtio_pci_find_restricted_dma(QVirtioPCIDevice *dev, uint8_t *bar,
                                     uint32_t *offset, uint32_t *length)
{
    return qvirtio_pci_find_structure(dev, QVIRTIO_PCI_CAP_RESTRICTED_DMA_CFG,
                                      bar, offset, length, NULL);
}

static void qvirtio_restricted_dma_alloc_init(QVirtioRestrictedDMA *w)
{
    alloc_init(&w->alloc, ALLOC_NO_FLAGS, w->addr + w->offset,
               w->addr + w->offset + w->size, 64);
}

void qvirtio_restricted_dma_map(QVirtioRestrictedDMA *w,
                                QVirtioPCIDevice *dev)
{
    uint32_t length;
    uint64_t barsize;
    QPCIBar bar;

    memset(w, 0, sizeof(*w));
    w->dev = dev;
    g_assert_true(qvirtio_pci_find_restricted_dma(dev, &w->bar, &w->offset,
                                                  &length));
    bar = qpci_iomap(dev->pdev, w->bar, &barsize);
    g_assert_false(bar.is_io);
    g_assert_cmpuint(w->offset + (uint64_t)length, <=, barsize);
    w->addr = bar.addr;
    w->size = length;
    qvirtio_restricted_dma_alloc_init(w);
}

uint64_t qvirtio_restricted_dma_move(QVirtioRestrictedDMA *w)
{
    QPCIBus *bus = w->dev->pdev->bus;
    uint64_t old = w->addr;
    uint64_t size = pow2ceil(w->offset + w->size);
    uint64_t loc = QEMU_ALIGN_UP(bus->mmio_alloc_ptr, size);
    int reg = PCI_BASE_ADDRESS_0 + 4 * w->bar;

    g_assert_cmpuint(loc + size, <=, bus->mmio_limit);
    bus->mmio_alloc_ptr = loc + size;
    qpci_config_writel(w->dev->pdev, reg, loc);
    qpci_config_writel(w->dev->pdev, reg + 4, loc >> 32);
    alloc_destroy(&w->alloc);
    w->addr = loc;
    qvirtio_restricted_dma_alloc_init(w);
    return old;
}

void qvirtio_restricted_dma_unmap(QVirtioRestrictedDMA *w)
{
    alloc_destroy(&w->alloc);
}

QVirtQueue *qvirtio_pci_virtqueue_setup_used_at(QVirtioPCIDevice *d,
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

QDict *qvirtio_rdma_query(QTestState *qts, const char *path)
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

int64_t qvirtio_rdma_query_int(QTestState *qts, const char *path,
                               const char *key)
{
    g_autoptr(QDict) r = qvirtio_rdma_query(qts, path);

    return qdict_get_int(r, key);
}

bool qvirtio_rdma_query_bool(QTestState *qts, const char *path,
                             const char *key)
{
    g_autoptr(QDict) r = qvirtio_rdma_query(qts, path);

    return qdict_get_bool(r, key);
}

static uint64_t dict_uint(QDict *d, const char *key)
{
    uint64_t v;

    g_assert_true(qnum_get_try_uint(qobject_to(QNum, qdict_get(d, key)), &v));
    return v;
}

void qvirtio_rdma_expect_violation(QTestState *qts, const char *device,
                                   const char *qom_path, const char *access,
                                   uint64_t addr, uint64_t len,
                                   uint64_t window, uint64_t window_size)
{
    QDict *ev = qtest_qmp_eventwait_ref(qts,
                                        "VIRTIO_RESTRICTED_DMA_VIOLATION");
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "device"), ==, device);
    g_assert_cmpstr(qdict_get_str(data, "qom-path"), ==, qom_path);
    g_assert_cmpstr(qdict_get_str(data, "access"), ==, access);
    g_assert_cmphex(dict_uint(data, "address"), ==, addr);
    g_assert_cmphex(dict_uint(data, "length"), ==, len);
    g_assert_cmphex(dict_uint(data, "window-address"), ==, window);
    g_assert_cmphex(dict_uint(data, "window-size"), ==, window_size);
    qobject_unref(ev);
}

void qvirtio_rdma_fill(QTestState *qts, uint64_t addr, uint8_t byte,
                       size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);

    memset(buf, byte, len);
    qtest_memwrite(qts, addr, buf, len);
}

void qvirtio_rdma_assert_filled(QTestState *qts, uint64_t addr, uint8_t byte,
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

uint32_t qvirtio_rdma_blk_submit(QTestState *qts, QVirtioDevice *d,
                                 QVirtQueue *vq, QGuestAllocator *a,
                                 uint32_t type, uint64_t sector,
                                 uint64_t data, uint32_t len,
                                 uint64_t *status)
{
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
    qvirtqueue_kick(qts, d, vq, head);
    return head;
}

void qvirtio_rdma_settle(QTestState *qts)
{
    int i;

    for (i = 0; i < 5; i++) {
        qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    }
}

void qvirtio_rdma_wait_needs_reset(QTestState *qts, QVirtioDevice *d,
                                   gint64 timeout_us)
{
    gint64 start = g_get_monotonic_time();

    while (!(d->bus->get_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        g_assert(g_get_monotonic_time() - start <= timeout_us);
        g_usleep(1000);
    }
}

char *qvirtio_rdma_make_image(size_t size)
{
    char *path = g_strdup("/tmp/qtest-rdma-disk.XXXXXX");
    int fd = g_mkstemp(path);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    close(fd);
    return path;
}

int qvirtio_rdma_run_qemu(const char *args, char **err)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = g_strdup_printf("echo quit | timeout 20 %s %s "
                                           "-nodefaults -display none -S "
                                           "-accel qtest -monitor stdio",
                                           qemu, args);
    char *argv[] = { (char *)"sh", (char *)"-c", cmd, NULL };
    int status;

    g_assert_true(g_spawn_sync(NULL, argv, NULL,
                               G_SPAWN_SEARCH_PATH |
                               G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               err, &status, NULL));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
