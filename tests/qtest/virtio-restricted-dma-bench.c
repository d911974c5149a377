/*
 * Benchmark driver: the device-side cost of restricted DMA per request
 *
 * Not a test.  It drives one virtio device on aarch64 virt through qtest,
 * as a guest driver would, and issues N requests:
 *
 *   virtio-restricted-dma-bench CONFIG WORKLOAD SIZE DEPTH N
 *
 *   CONFIG    stock   a modern virtio-pci device, rings and buffers in RAM
 *             bar     restricted-dma-bar-size=8M, all in the BAR window
 *             pool    restricted-dma-pool (64M), all in the pool
 *             viommu  iommu_platform=on behind virtio-iommu-pci: the driver
 *                     maps each request's buffers before it and unmaps
 *                     them after, as Linux's DMA API does
 *   WORKLOAD  blk-read, blk-write (virtio-blk-pci on a null-co disk) or
 *             net-tx (virtio-net-pci on a socket netdev)
 *   SIZE      bytes per request (blk) or per packet (net)
 *   DEPTH     requests queued before each kick (1 to 64)
 *
 * It prints "BENCH config=... wall_ns_per_request=...".  Run QEMU under
 * callgrind (QTEST_QEMU_BINARY="valgrind --tool=callgrind ... qemu") to
 * count the instructions QEMU spends on the requests; see tests/bench/.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include "libqtest.h"
#include "qemu/bswap.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "standard-headers/linux/virtio_net.h"
#include "libqos/virtio.h"
#include "libqos/virtio-restricted-dma.h"

#define TIMEOUT_US (60 * 1000 * 1000)
#define DEV_SLOT 4
#define IOMMU_SLOT 3
#define MAX_DEPTH 64
#define F(bit) (1ULL << (bit))

static QRestrictedMachine m = { .machine = "virt", .ram_mb = 512 };
static QTestState *qts;
static QGuestAllocator *ram, *alloc;
static QRestrictedDevice *dev, *iommu;
static QVirtQueue *vq, *iommu_vq;

/* One virtio-iommu request, completed synchronously. */
static void iommu_request(void *req, size_t len)
{
    uint64_t ro = guest_alloc(ram, len);
    uint64_t wr = guest_alloc(ram, sizeof(struct virtio_iommu_req_tail));
    struct virtio_iommu_req_tail tail;
    uint32_t head;

    qtest_memwrite(qts, ro, req, len - sizeof(tail));
    head = qvirtqueue_add(qts, iommu_vq, ro, len - sizeof(tail), false, true);
    qvirtqueue_add(qts, iommu_vq, wr, sizeof(tail), true, false);
    qvirtqueue_kick(qts, iommu->vdev, iommu_vq, head);
    qvirtio_wait_used_elem(qts, iommu->vdev, iommu_vq, head, NULL,
                           TIMEOUT_US);
    qvirtqueue_reset_pool(iommu_vq);
    qtest_memread(qts, wr, &tail, sizeof(tail));
    g_assert_cmpint(tail.status, ==, VIRTIO_IOMMU_S_OK);
    guest_free(ram, ro);
    guest_free(ram, wr);
}

static void iommu_map(uint64_t addr, uint64_t len, bool map)
{
    if (map) {
        struct virtio_iommu_req_map req = {
            .head.type = VIRTIO_IOMMU_T_MAP,
            .domain = cpu_to_le32(1),
            .virt_start = cpu_to_le64(addr),
            .virt_end = cpu_to_le64(addr + len - 1),
            .phys_start = cpu_to_le64(addr),
            .flags = cpu_to_le32(VIRTIO_IOMMU_MAP_F_READ |
                                 VIRTIO_IOMMU_MAP_F_WRITE),
        };
        iommu_request(&req, sizeof(req));
    } else {
        struct virtio_iommu_req_unmap req = {
            .head.type = VIRTIO_IOMMU_T_UNMAP,
            .domain = cpu_to_le32(1),
            .virt_start = cpu_to_le64(addr),
            .virt_end = cpu_to_le64(addr + len - 1),
        };
        iommu_request(&req, sizeof(req));
    }
}

static void iommu_setup(void)
{
    struct virtio_iommu_req_attach att = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = cpu_to_le32(1),
        .endpoint = cpu_to_le32(QPCI_DEVFN(DEV_SLOT, 0)),
    };
    uint64_t f;

    iommu = qrestricted_pci(&m, QPCI_DEVFN(IOMMU_SLOT, 0), "iommu0");
    f = qvirtio_get_features(iommu->vdev);
    qvirtio_set_features(iommu->vdev, f & (F(VIRTIO_F_VERSION_1) |
                                           F(VIRTIO_IOMMU_F_MAP_UNMAP) |
                                           F(VIRTIO_IOMMU_F_INPUT_RANGE) |
                                           F(VIRTIO_IOMMU_F_DOMAIN_RANGE)));
    iommu_vq = qvirtqueue_setup(iommu->vdev, ram, 0);
    qvirtio_set_driver_ok(iommu->vdev);
    iommu_request(&att, sizeof(att));
}

/* Make @head available without notifying; qvirtqueue_kick() notifies. */
static void avail_add(uint32_t head)
{
    uint16_t idx = qtest_readw(qts, vq->avail + 2);

    qtest_writew(qts, vq->avail + 4 + 2 * (idx % vq->size), head);
    qtest_writew(qts, vq->avail + 2, idx + 1);
}

/* Wait until @count more requests are used. */
static void wait_used(uint16_t *seen, uint32_t count)
{
    gint64 start = g_get_monotonic_time();
    uint16_t want = *seen + count;

    while (qtest_readw(qts, vq->used + 2) != want) {
        g_assert(g_get_monotonic_time() - start <= TIMEOUT_US);
    }
    *seen = want;
}

typedef struct Req {
    uint32_t head;
    uint64_t hdr, data, status;
} Req;

static void blk_queue(Req *r, bool write, uint32_t size, uint64_t sector)
{
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN),
        .sector = cpu_to_le64(sector),
    };

    qtest_memwrite(qts, r->hdr, &hdr, sizeof(hdr));
    r->head = qvirtqueue_add(qts, vq, r->hdr, sizeof(hdr), false, true);
    qvirtqueue_add(qts, vq, r->data, size, !write, true);
    qvirtqueue_add(qts, vq, r->status, 1, true, false);
}

int main(int argc, char **argv)
{
    const char *config, *workload;
    uint32_t size, depth, n, done = 0, i;
    bool net, viommu;
    int sv[2] = { -1, -1 };
    g_autofree char *args = NULL;
    Req reqs[MAX_DEPTH];
    uint64_t features;
    gint64 t0, t1;
    g_autofree uint8_t *sink = NULL;
    uint16_t used_seen = 0;

    if (argc != 6) {
        fprintf(stderr, "usage: %s stock|bar|pool|viommu "
                "blk-read|blk-write|net-tx SIZE DEPTH N\n", argv[0]);
        return 2;
    }
    config = argv[1];
    workload = argv[2];
    size = atoi(argv[3]);
    depth = atoi(argv[4]);
    n = atoi(argv[5]);
    g_assert(depth >= 1 && depth <= MAX_DEPTH && size && n);
    net = g_str_equal(workload, "net-tx");
    viommu = g_str_equal(config, "viommu");

    if (net) {
        g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
        args = g_strdup_printf("-netdev socket,fd=%d,id=n0 -device "
                               "virtio-net-pci,id=dev0,netdev=n0,"
                               "mrg_rxbuf=off,addr=%d.0,disable-legacy=on",
                               sv[1], DEV_SLOT);
    } else {
        args = g_strdup_printf("-blockdev null-co,node-name=d0,"
                               "size=1073741824,read-zeroes=off "
                               "-device virtio-blk-pci,id=dev0,"
                               "drive=d0,addr=%d.0,disable-legacy=on",
                               DEV_SLOT);
    }
    if (g_str_equal(config, "bar")) {
        args = g_strconcat(args, ",restricted-dma-bar-size=8M", NULL);
    } else if (g_str_equal(config, "pool")) {
        args = g_strconcat(args, ",restricted-dma-pool=p0 -object "
                           "restricted-dma-pool,id=p0,size=64M", NULL);
    } else if (viommu) {
        args = g_strdup_printf("-device virtio-iommu-pci,addr=%d.0 "
                               "%s,iommu_platform=on", IOMMU_SLOT, args);
    } else {
        g_assert(g_str_equal(config, "stock"));
    }

    qrestricted_start(&m, "%s", args);
    qts = m.qts;
    ram = alloc = &m.ram;
    if (viommu) {
        iommu_setup();
    }
    dev = qrestricted_pci(&m, QPCI_DEVFN(DEV_SLOT, 0), "dev0");
    if (g_str_equal(config, "bar") || g_str_equal(config, "pool")) {
        /* the BAR mapped, or the pool where the board placed it */
        alloc = &qrestricted_window(dev)->alloc;
    }
    features = qvirtio_get_features(dev->vdev) & QRESTRICTED_F_AWARE;
    qvirtio_set_features(dev->vdev, features);
    vq = qvirtqueue_setup(dev->vdev, alloc, net ? 1 : 0);
    if (viommu) {
        /* the rings stay mapped, as a driver's coherent allocations do */
        iommu_map(vq->desc, ROUND_UP(qvring_size(vq->size, 4096), 4096),
                  true);
    }
    qvirtio_set_driver_ok(dev->vdev);

    for (i = 0; i < depth; i++) {
        reqs[i].hdr = guest_alloc(alloc, 16);
        reqs[i].status = guest_alloc(alloc, 16);
        reqs[i].data = guest_alloc(alloc, size + (net ? 12 : 0));
    }
    sink = g_malloc(size + 64);

    t0 = g_get_monotonic_time();
    while (done < n) {
        uint32_t batch = MIN(depth, n - done);

        for (i = 0; i < batch; i++) {
            if (viommu) {
                iommu_map(reqs[i].hdr, 16, true);
                iommu_map(reqs[i].data, size + (net ? 12 : 0), true);
                iommu_map(reqs[i].status, 16, true);
            }
            if (net) {
                reqs[i].head = qvirtqueue_add(qts, vq, reqs[i].data,
                                              size + 12, false, false);
            } else {
                blk_queue(&reqs[i], g_str_equal(workload, "blk-write"),
                          size, (done + i) * 8 % 1000000);
            }
        }
        for (i = 0; i < batch; i++) {
            avail_add(reqs[i].head);
        }
        dev->vdev->bus->virtqueue_kick(dev->vdev, vq);
        wait_used(&used_seen, batch);
        qvirtqueue_reset_pool(vq);
        for (i = 0; i < batch; i++) {
            if (net) {
                uint32_t len;

                g_assert_cmpint(recv(sv[0], &len, 4, MSG_WAITALL), ==, 4);
                g_assert_cmpint(recv(sv[0], sink, ntohl(len), MSG_WAITALL),
                                ==, ntohl(len));
            }
            if (viommu) {
                iommu_map(reqs[i].hdr, 16, false);
                iommu_map(reqs[i].data, size + (net ? 12 : 0), false);
                iommu_map(reqs[i].status, 16, false);
            }
        }
        done += batch;
    }
    t1 = g_get_monotonic_time();
    printf("BENCH config=%s workload=%s size=%u depth=%u n=%u "
           "wall_ns_per_request=%.0f\n", config, workload, size, depth, n,
           (t1 - t0) * 1000.0 / n);
    qrestricted_stop(&m);
    return 0;
}
