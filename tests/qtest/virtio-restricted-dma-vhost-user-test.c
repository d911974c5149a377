/*
 * QTest for restricted DMA with a vhost-user backend
 *
 * The test runs a small vhost-user-blk backend in a thread of its own,
 * built on the tree's libvhost-user: one virtqueue, split rings, a disk in
 * memory.  Like any vhost-user backend it reaches guest memory only through
 * the memory table QEMU sends it, and it records that table, so the test
 * can check what the backend can see: the restricted DMA window and
 * nothing else.  A request whose buffer lies outside the window has no
 * mapping in the backend: the backend fails it without any access and
 * signals the vring error eventfd, and QEMU breaks the device
 * (NEEDS_RESET) and counts a backend error.
 *
 * x86_64 "pc" and aarch64 "virt": vhost-user-blk-pci with its window in a
 * BAR backed by a shared memfd (restricted-dma-bar-memdev).  aarch64 also:
 * vhost-user-blk on virtio-mmio with a restricted-dma-pool backed by a
 * shared memfd (memdev=).  Guest RAM is never shared, unless a test shares
 * it on purpose.  The refusals are tried at startup and, where a device_add
 * can meet them, as a device_add on a PCIe root port, which must leave the
 * chardev and the memory backends as they were.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "libqtest.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/iov.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-restricted-dma.h"
#include "migration/migration-qmp.h"
#include "libvhost-user-glib.h"

#define DEV_SLOT 4
#define DEVFN QPCI_DEVFN(DEV_SLOT, 0)
#define DISK_SIZE (1 * MiB)
#define SECTOR 512
#define CANARY 0xa5
#define F(bit) (1ULL << (bit))

/* ---- the backend --------------------------------------------------- */

/* One region of a memory table, and the size of the file it came in. */
typedef struct BackendRegion {
    uint64_t gpa;
    uint64_t size;
    uint64_t uaddr;
    uint64_t mmap_offset;
    uint64_t fd_size;
} BackendRegion;

typedef struct Backend {
    VugDev dev;             /* libvhost-user's, while QEMU is connected */
    char *path;
    int listen_fd;
    GThread *thread;
    GMainContext *ctx;
    bool quit;

    /* owned by the backend thread */
    bool connected;
    bool hung_up;
    bool broken;            /* a request had no mapping, until restarted */
    uint8_t *disk;          /* shared with another backend, if any */
    /* any other vhost-user type: requests are echoed, config is @config */
    bool echo;
    uint8_t config[64];

    /* shared with the test, under @lock */
    GMutex lock;
    GCond cond;
    int tables;             /* SET_MEM_TABLE messages received */
    BackendRegion table[VHOST_MEMORY_BASELINE_NREGIONS];    /* the last */
    int table_regions;
    int requests;           /* requests completed */
    int unmapped;           /* requests failed: an address with no mapping */
    uint64_t unmapped_addr;
} Backend;

static Backend *backend_of(VuDev *dev)
{
    return container_of(dev, Backend, dev.parent);
}

static void backend_lock(Backend *b)
{
    g_mutex_lock(&b->lock);
}

static void backend_unlock(Backend *b)
{
    g_cond_broadcast(&b->cond);
    g_mutex_unlock(&b->lock);
}

/* The table as QEMU sends it, before libvhost-user maps it and closes it */
static void backend_record_table(Backend *b, VhostUserMsg *vmsg)
{
    VhostUserMemory mem = vmsg->payload.memory;
    int i;

    g_assert_cmpint(mem.nregions, ==, vmsg->fd_num);
    backend_lock(b);
    for (i = 0; i < mem.nregions; i++) {
        struct stat st;

        g_assert_cmpint(fstat(vmsg->fds[i], &st), ==, 0);
        b->table[i] = (BackendRegion) {
            .gpa = mem.regions[i].guest_phys_addr,
            .size = mem.regions[i].memory_size,
            .uaddr = mem.regions[i].userspace_addr,
            .mmap_offset = mem.regions[i].mmap_offset,
            .fd_size = st.st_size,
        };
    }
    b->table_regions = mem.nregions;
    b->tables++;
    backend_unlock(b);
}

/*
 * What the backend does beyond libvhost-user: it records each memory
 * table; it offers only what the old vhost-user memory table protocol
 * needs (SET_MEM_TABLE at every start, as the tests count them, where
 * libvhost-user would offer CONFIGURE_MEM_SLOTS, whose regions are added
 * and removed one by one and not sent again at a restart); and it stays
 * up when QEMU hangs up (libvhost-user would exit).
 */
static int backend_process_msg(VuDev *dev, VhostUserMsg *vmsg, int *do_reply)
{
    Backend *b = backend_of(dev);

    switch (vmsg->request) {
    case VHOST_USER_NONE:
        b->hung_up = true;
        *do_reply = false;
        return true;
    case VHOST_USER_GET_PROTOCOL_FEATURES:
        vmsg->payload.u64 = F(VHOST_USER_PROTOCOL_F_CONFIG) |
                            F(VHOST_USER_PROTOCOL_F_LOG_SHMFD);
        vmsg->size = sizeof(vmsg->payload.u64);
        vmsg->fd_num = 0;
        *do_reply = true;
        return true;
    case VHOST_USER_SET_MEM_TABLE:
        backend_record_table(b, vmsg);
        return false;
    case VHOST_USER_SET_VRING_KICK:
        /* a new start */
        b->broken = false;
        return false;
    case VHOST_USER_GPU_SET_SOCKET:
        /* vhost-user-gpu's display socket: an echo backend has no display */
        if (b->echo && vmsg->fd_num == 1) {
            close(vmsg->fds[0]);
            *do_reply = false;
            return true;
        }
        return false;
    default:
        return false;
    }
}

static void backend_panic(VuDev *dev, const char *err)
{
    Backend *b = backend_of(dev);

    g_test_message("vhost-user backend: %s", err);
    b->hung_up = true;
}

static uint64_t backend_get_features(VuDev *dev)
{
    return F(VIRTIO_F_VERSION_1);
}

static int backend_get_config(VuDev *dev, uint8_t *config, uint32_t len)
{
    Backend *b = backend_of(dev);
    struct virtio_blk_config cfg = {
        .capacity = cpu_to_le64(DISK_SIZE / SECTOR),
        .num_queues = cpu_to_le16(1),
    };

    if (b->echo) {
        memset(config, 0, len);
        memcpy(config, b->config, MIN(sizeof(b->config), len));
        return 0;
    }
    memcpy(config, &cfg, MIN(sizeof(cfg), len));
    return 0;
}

static int backend_set_config(VuDev *dev, const uint8_t *data,
                              uint32_t offset, uint32_t size, uint32_t flags)
{
    return 0;
}

/*
 * Is a buffer of the next available request outside the memory table?
 * Then the request fails before libvhost-user maps it (it would only
 * panic, for good, without telling QEMU): no access, the vring error
 * eventfd, and nothing more until QEMU starts the queue again.
 */
static bool backend_unmapped(VuDev *dev, VuVirtq *vq, uint64_t *addr)
{
    unsigned int num = vq->vring.num, n;
    uint16_t d;

    if (vu_queue_empty(dev, vq)) {
        return false;
    }
    /* the ring entry, after the index that made it available */
    smp_rmb();
    d = le16_to_cpu(vq->vring.avail->ring[vq->last_avail_idx % num]);
    for (n = 0; n < num && d < num; n++) {
        struct vring_desc *desc = &vq->vring.desc[d];
        uint64_t pa = le64_to_cpu(desc->addr);
        uint64_t left = le32_to_cpu(desc->len);

        while (left) {
            uint64_t len = left;

            if (!vu_gpa_to_va(dev, &len, pa)) {
                *addr = le64_to_cpu(desc->addr);
                return true;
            }
            left -= len;
            pa += len;
        }
        if (!(le16_to_cpu(desc->flags) & VRING_DESC_F_NEXT)) {
            return false;
        }
        d = le16_to_cpu(desc->next);
    }
    *addr = 0;
    return true;
}

/* A virtio-blk request on the memory disk; returns the bytes written. */
static uint32_t backend_blk(Backend *b, VuVirtqElement *elem)
{
    struct virtio_blk_outhdr hdr;
    size_t in = iov_size(elem->in_sg, elem->in_num);
    size_t out = iov_size(elem->out_sg, elem->out_num);
    uint8_t status = VIRTIO_BLK_S_OK;
    uint64_t off;
    size_t len = 0;

    g_assert_cmpint(in, >=, 1);
    g_assert_cmpint(iov_to_buf(elem->out_sg, elem->out_num, 0, &hdr,
                               sizeof(hdr)), ==, sizeof(hdr));
    off = le64_to_cpu(hdr.sector) * SECTOR;
    switch (le32_to_cpu(hdr.type)) {
    case VIRTIO_BLK_T_IN:
        len = in - 1;
        if (off + len > DISK_SIZE) {
            status = VIRTIO_BLK_S_IOERR;
            len = 0;
            break;
        }
        iov_from_buf(elem->in_sg, elem->in_num, 0, b->disk + off, len);
        break;
    case VIRTIO_BLK_T_OUT:
        if (off + out - sizeof(hdr) > DISK_SIZE) {
            status = VIRTIO_BLK_S_IOERR;
            break;
        }
        iov_to_buf(elem->out_sg, elem->out_num, sizeof(hdr), b->disk + off,
                   out - sizeof(hdr));
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    iov_from_buf(elem->in_sg, elem->in_num, in - 1, &status, 1);
    return len + 1;
}

/* Any other type: what the driver wrote is copied back into its buffers */
static uint32_t backend_echo(VuVirtqElement *elem)
{
    size_t out = iov_size(elem->out_sg, elem->out_num);
    g_autofree uint8_t *buf = g_malloc(out);

    iov_to_buf(elem->out_sg, elem->out_num, 0, buf, out);
    return iov_from_buf(elem->in_sg, elem->in_num, 0, buf, out);
}

static void backend_queue(VuDev *dev, int qidx)
{
    Backend *b = backend_of(dev);
    VuVirtq *vq = vu_get_queue(dev, qidx);
    bool done = false;

    while (!b->broken) {
        VuVirtqElement *elem;
        uint64_t addr;

        if (backend_unmapped(dev, vq, &addr)) {
            uint64_t one = 1;

            b->broken = true;
            backend_lock(b);
            b->unmapped++;
            b->unmapped_addr = addr;
            backend_unlock(b);
            if (vq->err_fd >= 0) {
                g_assert_cmpint(write(vq->err_fd, &one, sizeof(one)), ==,
                                sizeof(one));
            }
            break;
        }
        elem = vu_queue_pop(dev, vq, sizeof(VuVirtqElement));
        if (!elem) {
            break;
        }
        vu_queue_push(dev, vq, elem, b->echo ? backend_echo(elem) :
                      backend_blk(b, elem));
        free(elem);
        done = true;
        backend_lock(b);
        b->requests++;
        backend_unlock(b);
    }
    if (done) {
        vu_queue_notify(dev, vq);
    }
}

static void backend_queue_started(VuDev *dev, int qidx, bool started)
{
    vu_set_queue_handler(dev, vu_get_queue(dev, qidx),
                         started ? backend_queue : NULL);
}

static const VuDevIface backend_iface = {
    .get_features = backend_get_features,
    .process_msg = backend_process_msg,
    .queue_set_started = backend_queue_started,
    .get_config = backend_get_config,
    .set_config = backend_set_config,
};

static void backend_disconnect(Backend *b)
{
    vu_deinit(&b->dev.parent);
    vug_deinit(&b->dev);
    b->connected = false;
}

static gpointer backend_thread(gpointer opaque)
{
    Backend *b = opaque;

    g_main_context_push_thread_default(b->ctx);
    while (!qatomic_read(&b->quit)) {
        if (!b->connected) {
            struct pollfd pfd = { .fd = b->listen_fd, .events = POLLIN };
            int fd;

            if (poll(&pfd, 1, 50) <= 0) {
                continue;
            }
            fd = accept(b->listen_fd, NULL, NULL);
            g_assert_cmpint(fd, >=, 0);
            g_assert_true(vug_init(&b->dev, b->echo ? 8 : 1, fd,
                                   backend_panic, &backend_iface));
            b->connected = true;
            b->hung_up = false;
            continue;
        }
        g_main_context_iteration(b->ctx, true);
        if (b->hung_up) {
            backend_disconnect(b);
        }
    }
    if (b->connected) {
        backend_disconnect(b);
    }
    g_main_context_pop_thread_default(b->ctx);
    return NULL;
}

/*
 * A vhost-user-blk backend on @disk or, without a disk, one for any other
 * type that echoes requests and has the device config @config.
 */
static void backend_start_full(Backend *b, uint8_t *disk,
                               const void *config, size_t len)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    memset(b, 0, sizeof(*b));
    b->path = g_strdup_printf("%s/qtest-rdma-vu-%d-%p.sock",
                              g_get_tmp_dir(), getpid(), b);
    b->disk = disk;
    if (!disk) {
        b->echo = true;
        g_assert_cmpint(len, <=, sizeof(b->config));
        memcpy(b->config, config, len);
    }
    g_mutex_init(&b->lock);
    g_cond_init(&b->cond);
    b->ctx = g_main_context_new();
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(b->listen_fd, >=, 0);
    g_strlcpy(sun.sun_path, b->path, sizeof(sun.sun_path));
    unlink(b->path);
    g_assert_cmpint(bind(b->listen_fd, (struct sockaddr *)&sun,
                         sizeof(sun)), ==, 0);
    g_assert_cmpint(listen(b->listen_fd, 1), ==, 0);
    b->thread = g_thread_new("vhost-user-backend", backend_thread, b);
}

static void backend_start(Backend *b, uint8_t *disk)
{
    backend_start_full(b, disk, NULL, 0);
}

static void backend_stop(Backend *b)
{
    qatomic_set(&b->quit, true);
    g_main_context_wakeup(b->ctx);
    g_thread_join(b->thread);
    g_main_context_unref(b->ctx);
    close(b->listen_fd);
    unlink(b->path);
    g_free(b->path);
    g_mutex_clear(&b->lock);
    g_cond_clear(&b->cond);
}

/* Wait until the backend's counter *@count reaches @n. */
static void backend_wait(Backend *b, int *count, int n)
{
    gint64 end = g_get_monotonic_time() + QRESTRICTED_TIMEOUT_US;

    g_mutex_lock(&b->lock);
    while (*count < n) {
        g_assert(g_cond_wait_until(&b->cond, &b->lock, end));
    }
    g_mutex_unlock(&b->lock);
}

/* ... memory tables received */
static void backend_wait_tables(Backend *b, int n)
{
    backend_wait(b, &b->tables, n);
}

/* ... requests failed for want of a mapping */
static void backend_wait_unmapped(Backend *b, int n)
{
    backend_wait(b, &b->unmapped, n);
}

/*
 * The backend's last memory table holds exactly the window: one region at
 * the window's bus address, of its size, from a file of that size (so that
 * no mmap offset reaches anything else).
 */
static void backend_assert_only_window(Backend *b, QRestrictedWindow *w)
{
    g_mutex_lock(&b->lock);
    g_assert_cmpint(b->table_regions, ==, 1);
    g_assert_cmphex(b->table[0].gpa, ==, w->base);
    g_assert_cmphex(b->table[0].size, ==, w->size);
    g_assert_cmphex(b->table[0].mmap_offset, ==, 0);
    g_assert_cmphex(b->table[0].fd_size, ==, w->size);
    g_mutex_unlock(&b->lock);
}

/* ---- the guest ----------------------------------------------------- */

#define PCI_DEVICE_ARGS \
    "-object memory-backend-memfd,id=win0,size=1M,share=on " \
    "-device vhost-user-blk-pci,id=dev0,addr=%d.0,chardev=vu0," \
    "num-queues=1,disable-legacy=on,restricted-dma-bar-memdev=win0"

#define MMIO_DEVICE_ARGS \
    "-object memory-backend-memfd,id=pm,size=2M,share=on " \
    "-object restricted-dma-pool,id=p0,memdev=pm " \
    "-device vhost-user-blk,id=dev0,chardev=vu0,num-queues=1," \
    "restricted-dma-pool=p0"

/*
 * Start QEMU, its chardev vu0 connected to @b.  With @shared_ram, guest
 * RAM is shared memory too, as a vhost-user setup without restricted DMA
 * needs: the backend could map it, if it were given it.
 */
static void G_GNUC_PRINTF(4, 5) guest_start(QRestrictedMachine *m,
                                            Backend *b, bool shared_ram,
                                            const char *fmt, ...)
{
    g_autofree char *extra = NULL;
    va_list ap;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    m->ram_mb = 256;
    m->shared_ram = shared_ram;
    qrestricted_start(m, "-chardev socket,id=vu0,path=%s %s", b->path,
                      extra);
}

/* vhost-user-blk-pci at slot 4 with its window in a BAR, or on mmio */
static QRestrictedDevice *start_guest(QRestrictedMachine *m, Backend *b,
                                      uint8_t *disk, bool mmio,
                                      bool shared_ram)
{
    QRestrictedDevice *d;

    backend_start(b, disk);
    if (mmio) {
        guest_start(m, b, shared_ram, MMIO_DEVICE_ARGS);
        d = qrestricted_mmio(m, 0, "dev0");
    } else {
        guest_start(m, b, shared_ram, PCI_DEVICE_ARGS, DEV_SLOT);
        d = qrestricted_pci(m, DEVFN, "dev0");
    }
    qrestricted_window(d);
    return d;
}

/*
 * Write a pattern through the backend and read it back; the backend's
 * disk holds it.
 */
static void blk_roundtrip(QRestrictedDevice *d, QVirtQueue *vq,
                          uint8_t *disk, uint64_t sector, uint8_t seed)
{
    uint8_t pattern[4 * SECTOR];

    qrestricted_blk_roundtrip(d, vq, sector, sizeof(pattern), seed, NULL);
    qrestricted_pattern(pattern, sizeof(pattern), seed);
    g_assert_cmpmem(disk + sector * SECTOR, sizeof(pattern), pattern,
                    sizeof(pattern));
}

/* After a reset: renegotiate; the backend gets a new table, I/O works. */
static QVirtQueue *guest_reset(QRestrictedDevice *d, QVirtQueue *vq,
                               Backend *b, int tables)
{
    qvirtqueue_cleanup(d->vdev->bus, vq, &d->win->alloc);
    qvirtio_reset(d->vdev);
    g_assert_cmphex(qrestricted_dev_status(d), ==, 0);
    qvirtio_set_acknowledge(d->vdev);
    qvirtio_set_driver(d->vdev);
    vq = qrestricted_driver(d);
    backend_wait_tables(b, tables);
    return vq;
}

/* ---- tests --------------------------------------------------------- */

/*
 * I/O through the backend, which sees only the window, whether or not
 * guest RAM is shared memory it could map.
 */
static void io_test(bool mmio, bool shared_ram)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    Backend vu;
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_guest(&m, &vu, disk, mmio, shared_ram);
    QVirtQueue *vq;

    g_assert_cmpint(vu.tables, ==, 0);
    vq = qrestricted_driver(d);
    backend_wait_tables(&vu, 1);
    backend_assert_only_window(&vu, d->win);

    blk_roundtrip(d, vq, disk, 0, 0x11);
    blk_roundtrip(d, vq, disk, 100, 0x22);
    g_assert_cmpint(vu.requests, ==, 4);
    g_assert_cmpint(vu.unmapped, ==, 0);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 0);
    g_assert_false(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);

    qvirtqueue_cleanup(d->vdev->bus, vq, &d->win->alloc);
    qrestricted_stop(&m);
    backend_stop(&vu);
}

static void test_pci_io(void)
{
    io_test(false, false);
}

static void test_pci_io_shared_ram(void)
{
    io_test(false, true);
}

static void test_mmio_io(void)
{
    io_test(true, false);
}

static void test_mmio_io_shared_ram(void)
{
    io_test(true, true);
}

/*
 * A buffer outside the window, over a canary in guest RAM: the backend has
 * no mapping for it and fails the request without any access; QEMU breaks
 * the device and counts a backend error.  A reset brings it back.
 */
static void buffer_outside_test(bool mmio)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    Backend vu;
    QRestrictedMachine m = { 0 };
    /* guest RAM shared: only the memory table keeps the backend out */
    QRestrictedDevice *d = start_guest(&m, &vu, disk, mmio, true);
    QVirtQueue *vq = qrestricted_driver(d);
    QRestrictedWindow *w = d->win;
    uint64_t outside, status;
    uint16_t used_idx;

    backend_wait_tables(&vu, 1);
    blk_roundtrip(d, vq, disk, 0, 0x33);

    memset(disk, 0x5a, 4096);
    outside = guest_alloc(&m.ram, 4096);
    g_assert_true(outside + 4096 <= w->base || outside >= w->base + w->size);
    qrestricted_fill(m.qts, outside, CANARY, 4096);
    used_idx = qtest_readw(m.qts, vq->used + offsetof(struct vring_used, idx));
    qrestricted_blk_submit(d, vq, &w->alloc, VIRTIO_BLK_T_IN, 0, outside,
                           4096, &status);
    backend_wait_unmapped(&vu, 1);
    g_assert_cmphex(vu.unmapped_addr, ==, outside);
    qrestricted_wait_needs_reset(d);
    g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 1);
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    /* nothing was read into the buffer, nothing completed */
    qrestricted_assert_filled(m.qts, outside, CANARY, 4096);
    g_assert_cmpint(qtest_readb(m.qts, status), ==, 0xff);
    g_assert_cmpint(qtest_readw(m.qts, vq->used +
                                offsetof(struct vring_used, idx)), ==,
                    used_idx);
    /* and the backend still sees only the window */
    backend_assert_only_window(&vu, w);

    vq = guest_reset(d, vq, &vu, 2);
    backend_assert_only_window(&vu, w);
    blk_roundtrip(d, vq, disk, 8, 0x44);
    g_assert_false(qrestricted_dev_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET);
    g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 1);

    qvirtqueue_cleanup(d->vdev->bus, vq, &w->alloc);
    qrestricted_stop(&m);
    backend_stop(&vu);
}

static void test_pci_buffer_outside(void)
{
    buffer_outside_test(false);
}

static void test_mmio_buffer_outside(void)
{
    buffer_outside_test(true);
}

/*
 * The guest moves the window BAR: the backend's table follows it, and
 * requests with the new addresses work; the old addresses have no mapping.
 */
static void test_pci_bar_move(void)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    Backend vu;
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_guest(&m, &vu, disk, false, false);
    QVirtQueue *vq = qrestricted_driver(d);
    uint64_t old;

    backend_wait_tables(&vu, 1);
    blk_roundtrip(d, vq, disk, 0, 0x55);

    /* a driver that reassigns BARs resets the device first */
    qvirtqueue_cleanup(d->vdev->bus, vq, &d->win->alloc);
    qvirtio_reset(d->vdev);
    old = qrestricted_window_move(d->win);
    g_assert_cmphex(d->win->base, !=, old);
    qvirtio_set_acknowledge(d->vdev);
    qvirtio_set_driver(d->vdev);
    vq = qrestricted_driver(d);
    backend_wait_tables(&vu, 2);
    backend_assert_only_window(&vu, d->win);
    blk_roundtrip(d, vq, disk, 16, 0x66);
    g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 0);

    qvirtqueue_cleanup(d->vdev->bus, vq, &d->win->alloc);
    qrestricted_stop(&m);
    backend_stop(&vu);
}

/*
 * Migrate a running device to a destination with a backend of its own
 * (the disk is shared, as storage would be): the window's contents and the
 * ring state arrive, the destination's backend sees only the window, and
 * I/O goes on.
 */
static void test_pci_migration(void)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    g_autofree char *uri = g_strdup_printf("unix:%s/qtest-rdma-vu-mig-%d",
                                           g_get_tmp_dir(), getpid());
    Backend vu_src, vu_dst;
    QRestrictedMachine src = { 0 }, dst = { 0 };
    QRestrictedDevice *d = start_guest(&src, &vu_src, disk, false, true);
    QVirtQueue *vq = qrestricted_driver(d);
    uint8_t mark[64], back[64];
    uint64_t in_window;

    backend_wait_tables(&vu_src, 1);
    blk_roundtrip(d, vq, disk, 0, 0x77);
    in_window = guest_alloc(&d->win->alloc, sizeof(mark));
    memset(mark, 0x3c, sizeof(mark));
    qtest_memwrite(src.qts, in_window, mark, sizeof(mark));

    backend_start(&vu_dst, disk);
    guest_start(&dst, &vu_dst, true, PCI_DEVICE_ARGS " -incoming %s",
                DEV_SLOT, uri);
    migrate_qmp(src.qts, dst.qts, uri, NULL, "{}");
    wait_for_migration_complete(src.qts);
    qtest_qmp_eventwait(dst.qts, "RESUME");

    /* the window's contents came along; the backend sees only the window */
    qtest_memread(dst.qts, in_window, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), mark, sizeof(mark));
    backend_wait_tables(&vu_dst, 1);
    backend_assert_only_window(&vu_dst, d->win);

    /* go on with the source's driver state, on the destination alone */
    d = qrestricted_adopt(&dst, d);
    vq->vdev = d->vdev;
    qrestricted_stop(&src);
    backend_stop(&vu_src);

    blk_roundtrip(d, vq, disk, 32, 0x88);
    g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 0);

    qvirtqueue_cleanup(d->vdev->bus, vq, &d->win->alloc);
    qrestricted_stop(&dst);
    backend_stop(&vu_dst);
}

/*
 * Unplug a running device (x86 pc, ACPI hot-plug): QEMU stays up, and the
 * window's memory backend is free again.
 */
static void test_pci_hot_unplug(void)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    Backend vu;
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d = start_guest(&m, &vu, disk, false, true);
    QVirtQueue *vq = qrestricted_driver(d);

    backend_wait_tables(&vu, 1);
    blk_roundtrip(d, vq, disk, 0, 0x99);

    /* in use by the device: the backend cannot go */
    qtest_qmp_assert_failure_ref(m.qts, "{ 'execute': 'object-del',"
                                 " 'arguments': { 'id': 'win0' } }");
    qvirtqueue_cleanup(d->vdev->bus, vq, &d->win->alloc);
    qrestricted_release(d);
    qpci_unplug_acpi_device_test(m.qts, "dev0", DEV_SLOT);
    qtest_qmp_assert_success(m.qts, "{ 'execute': 'object-del',"
                             " 'arguments': { 'id': 'win0' } }");
    qtest_qmp_assert_success(m.qts, "{ 'execute': 'query-status' }");
    /* and no other table reached the backend on the way, an empty one */
    g_assert_cmpint(vu.tables, ==, 1);
    g_assert_cmpint(vu.table_regions, ==, 1);

    qrestricted_stop(&m);
    backend_stop(&vu);
}

/* ---- every other vhost-user type ---------------------------------- */

/*
 * vhost-user types besides blk take a window too, if it is shared memory.
 * QEMU does none of their I/O: what keeps them confined is the memory
 * table their backend gets, which is the same for every type.  So each
 * type runs against an echo backend (the test's, on libvhost-user), with
 * its window a shared BAR or a shared pool: the table must be the window
 * alone, a request in the window is answered (the backend copies what
 * the driver wrote into the driver's buffer), and a request whose buffer
 * is in guest RAM outside the window, shared or not, cannot be reached by
 * the backend: a counted backend error, NEEDS_RESET, the canary intact.
 */
typedef struct VuType {
    const char *name;
    const char *pci;            /* its PCI type, or NULL */
    const char *mmio;           /* its virtio-mmio type, or NULL */
    bool legacy_prop;           /* the PCI type has disable-legacy */
    bool no_bar;                /* no BAR is free for a window: refused */
    int nqueues;
    const char *props;          /* more device properties */
    /* the device config the backend gives, if QEMU asks for it */
    uint8_t config[8];
} VuType;

static const VuType vu_types[] = {
    { "fs", "vhost-user-fs-pci", "vhost-user-fs-device", false, false, 2,
      ",tag=fs0" },
    { "gpio", "vhost-user-gpio-pci", "vhost-user-gpio-device", false, false,
      2 },
    { "gpu", "vhost-user-gpu-pci", "vhost-user-gpu", true, false, 2 },
    { "i2c", "vhost-user-i2c-pci", "vhost-user-i2c-device", false, false,
      1 },
    { "input", "vhost-user-input-pci", "vhost-user-input", true, false, 2 },
    { "rng", "vhost-user-rng-pci", "vhost-user-rng", false, false, 1 },
    { "scmi", "vhost-user-scmi-pci", "vhost-user-scmi", false, false, 2 },
    { "scsi", "vhost-user-scsi-pci", "vhost-user-scsi", true, false, 3 },
    { "snd", "vhost-user-snd-pci", "vhost-user-snd", false, false, 4 },
    /* as virtio-vga: VGA RAM, the modern BAR and MSI-X leave no BAR free */
    { "vga", "vhost-user-vga", NULL, true, true, 2 },
    /* guest_cid 3, which QEMU reads from the backend */
    { "vsock", "vhost-user-vsock-pci", "vhost-user-vsock-device", true,
      false, 3, "", { 3 } },
};

typedef enum VuKind { VU_BAR, VU_PCI_POOL, VU_MMIO_POOL } VuKind;

static const char *const vu_kind_names[] = {
    "pci-bar", "pci-pool", "mmio-pool",
};

typedef struct VuCase {
    const VuType *t;
    VuKind kind;
    bool hostile;
} VuCase;

/* The names of every type this build has */
static GHashTable *all_types(void)
{
    QTestState *qts = qtest_init("-M none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-types' }");
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal,
                                              g_free, NULL);
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *t = qobject_to(QDict, qlist_entry_obj(e));

        g_hash_table_add(names, g_strdup(qdict_get_str(t, "name")));
    }
    qobject_unref(rsp);
    qtest_quit(qts);
    return names;
}

static void test_vu_type(const void *opaque)
{
    const VuCase *vc = opaque;
    const VuType *t = vc->t;
    const char *type = vc->kind == VU_MMIO_POOL ? t->mmio : t->pci;
    Backend vu;
    QRestrictedMachine m = { 0 };
    QRestrictedDevice *d;
    QVirtQueue *vq[4];
    static const char ping[] = "to the backend, through the window";
    g_autofree char *win = NULL;
    uint64_t out, in;
    uint16_t idx;
    int i;

    g_assert_cmpint(t->nqueues, <=, G_N_ELEMENTS(vq));
    backend_start_full(&vu, NULL, t->config, sizeof(t->config));
    if (vc->kind == VU_BAR) {
        win = g_strdup("-object memory-backend-memfd,id=win0,size=2M,"
                       "share=on");
    } else {
        win = g_strdup("-object memory-backend-memfd,id=pm,size=2M,"
                       "share=on -object restricted-dma-pool,id=p0,"
                       "memdev=pm");
    }
    /* guest RAM shared: only the memory table keeps the backend out */
    guest_start(&m, &vu, true, "%s -device %s,id=dev0,chardev=vu0%s%s%s,%s",
                win, type, vc->kind == VU_MMIO_POOL ? "" : ",addr=4.0",
                t->legacy_prop && vc->kind != VU_MMIO_POOL ?
                ",disable-legacy=on" : "", t->props ? t->props : "",
                vc->kind == VU_BAR ? "restricted-dma-bar-memdev=win0" :
                "restricted-dma-pool=p0");
    d = vc->kind == VU_MMIO_POOL ? qrestricted_mmio(&m, 0, "dev0") :
        qrestricted_pci(&m, DEVFN, "dev0");
    qrestricted_driver_queues(d, 0, t->nqueues, vq);
    backend_wait_tables(&vu, 1);
    backend_assert_only_window(&vu, d->win);

    if (!vc->hostile) {
        QRestrictedBuf b[2] = {
            { qrestricted_put(d, ping, sizeof(ping)), sizeof(ping), false },
            { qrestricted_put(d, NULL, 64), 64, true },
        };
        char back[sizeof(ping)];

        g_assert_cmpint(qrestricted_call(d, vq[0], b, 2), ==, sizeof(ping));
        qtest_memread(m.qts, b[1].addr, back, sizeof(back));
        g_assert_cmpstr(back, ==, ping);
        g_assert_cmpint(vu.requests, ==, 1);
        g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 0);
        g_assert_false(qrestricted_dev_status(d) &
                       VIRTIO_CONFIG_S_NEEDS_RESET);
    } else {
        QRestrictedBuf b[2];

        out = qrestricted_put(d, ping, sizeof(ping));
        in = qrestricted_canary(d, 64);
        g_assert_true(in + 64 <= d->win->base ||
                      in >= d->win->base + d->win->size);
        b[0] = (QRestrictedBuf) { out, sizeof(ping), false };
        b[1] = (QRestrictedBuf) { in, 64, true };
        idx = qrestricted_used_idx(d, vq[0]);
        qrestricted_submit_chain(d, vq[0], b, 2);
        backend_wait_unmapped(&vu, 1);
        g_assert_cmphex(vu.unmapped_addr, ==, in);
        qrestricted_wait_needs_reset(d);
        g_assert_cmpint(qrestricted_int(d, "backend-errors"), ==, 1);
        qrestricted_assert_filled(m.qts, in, QRESTRICTED_CANARY, 64);
        g_assert_cmpint(qrestricted_used_idx(d, vq[0]), ==, idx);
        g_assert_cmpint(vu.requests, ==, 0);
        backend_assert_only_window(&vu, d->win);
    }
    g_assert_cmpint(qrestricted_int(d, "violations"), ==, 0);
    for (i = 0; i < t->nqueues; i++) {
        qvirtqueue_cleanup(d->vdev->bus, vq[i], &d->win->alloc);
    }
    qrestricted_stop(&m);
    backend_stop(&vu);
}

/* A type with no free BAR is refused a BAR window, once it has a backend */
static void test_vu_type_no_bar(const void *opaque)
{
    const VuType *t = opaque;
    g_autofree char *args = NULL;
    Backend vu;

    backend_start_full(&vu, NULL, t->config, sizeof(t->config));
    args = g_strdup_printf("-chardev socket,id=vu0,path=%s "
                           "-object memory-backend-memfd,id=win0,size=2M,"
                           "share=on -device %s,chardev=vu0%s,"
                           "restricted-dma-bar-memdev=win0", vu.path, t->pci,
                           t->legacy_prop ? ",disable-legacy=on" : "");
    qrestricted_assert_run(NULL, args, 1, "restricted-dma-bar=2: BAR 2 is in "
                           "use by the virtio-pci modern BAR");
    g_assert_cmpint(vu.tables, ==, 0);
    backend_stop(&vu);
}

static void add_vu_types(bool arm)
{
    g_autoptr(GHashTable) types = all_types();
    size_t i;
    int k, h;

    for (i = 0; i < G_N_ELEMENTS(vu_types); i++) {
        for (k = VU_BAR; k <= VU_MMIO_POOL; k++) {
            const char *type = k == VU_MMIO_POOL ? vu_types[i].mmio :
                               vu_types[i].pci;

            if (!type || (k == VU_MMIO_POOL && !arm) ||
                !g_hash_table_contains(types, type)) {
                continue;
            }
            if (k == VU_BAR && vu_types[i].no_bar) {
                g_autofree char *path = g_strdup_printf(
                    "/virtio-rdma-vhost-user/types/pci-bar/%s/refused",
                    vu_types[i].name);

                qtest_add_data_func(path, &vu_types[i], test_vu_type_no_bar);
                continue;
            }
            for (h = 0; h < 2; h++) {
                VuCase *vc = g_new0(VuCase, 1);
                g_autofree char *path = NULL;

                vc->t = &vu_types[i];
                vc->kind = k;
                vc->hostile = h;
                path = g_strdup_printf("/virtio-rdma-vhost-user/types/%s/%s/"
                                       "%s", vu_kind_names[k],
                                       vu_types[i].name,
                                       h ? "hostile" : "io");
                qtest_add_data_func_full(path, vc, test_vu_type, g_free);
            }
        }
    }
}

/* ---- refusals -------------------------------------------------------- */

typedef struct Refusal {
    const char *name;
    const char *args;       /* %s: the backend's socket */
    const char *message;
} Refusal;

static const Refusal refusals[] = {
    {
        "anonymous-bar",
        "-chardev socket,id=vu0,path=%s "
        "-device vhost-user-blk-pci,chardev=vu0,num-queues=1,"
        "disable-legacy=on,restricted-dma-bar-size=1M",
        "restricted-dma-bar-size cannot be used with vhost-user-blk-pci "
        "unless the window is shared memory with a file descriptor",
    }, {
        "private-memdev",
        "-chardev socket,id=vu0,path=%s "
        "-object memory-backend-memfd,id=win0,size=1M,share=off "
        "-device vhost-user-blk-pci,chardev=vu0,num-queues=1,"
        "disable-legacy=on,restricted-dma-bar-memdev=win0",
        "restricted-dma-bar-memdev cannot be used with vhost-user-blk-pci "
        "unless the window is shared memory with a file descriptor",
    }, {
        "memdev-and-size",
        "-chardev socket,id=vu0,path=%s "
        "-object memory-backend-memfd,id=win0,size=1M,share=on "
        "-device vhost-user-blk-pci,chardev=vu0,num-queues=1,"
        "disable-legacy=on,restricted-dma-bar-memdev=win0,"
        "restricted-dma-bar-size=1M",
        "restricted-dma-bar-size and restricted-dma-bar-memdev cannot be "
        "combined",
    }, {
        "memdev-not-power-of-two",
        "-chardev socket,id=vu0,path=%s "
        "-object memory-backend-memfd,id=win0,size=1536K,share=on "
        "-device vhost-user-blk-pci,chardev=vu0,num-queues=1,"
        "disable-legacy=on,restricted-dma-bar-memdev=win0",
        "restricted-dma-bar-memdev: the memory backend's size, 1.5 MiB, is "
        "not a power of two",
    }, {
        "memdev-in-use",
        "-chardev socket,id=vu0,path=%s "
        "-object memory-backend-memfd,id=win0,size=1M,share=on "
        "-device virtio-rng-pci,disable-legacy=on,"
        "restricted-dma-bar-memdev=win0 "
        "-device virtio-rng-pci,disable-legacy=on,"
        "restricted-dma-bar-memdev=win0",
        "restricted-dma-bar-memdev=win0: memory backend 'win0' is already "
        "in use",
    }, {
        "pool-needs-size-or-memdev",
        "-chardev socket,id=vu0,path=%s "
        "-object restricted-dma-pool,id=p0",
        "restricted-dma-pool 'p0' needs size or memdev",
    }, {
        "pool-memdev-in-use",
        "-chardev socket,id=vu0,path=%s "
        "-object memory-backend-memfd,id=pm,size=2M,share=on "
        "-object restricted-dma-pool,id=p0,memdev=pm "
        "-object restricted-dma-pool,id=p1,memdev=pm",
        "restricted-dma-pool 'p1': memdev=pm is already in use",
    }, {
        "pool-memdev-and-size",
        "-chardev socket,id=vu0,path=%s "
        "-object memory-backend-memfd,id=pm,size=2M,share=on "
        "-object restricted-dma-pool,id=p0,memdev=pm,size=2M",
        "restricted-dma-pool 'p0': size and memdev cannot be combined",
    }, {
        "vhost-kernel-type",
        "-chardev socket,id=vu0,path=%s "
        "-device vhost-vsock-pci,guest-cid=3,disable-legacy=on,"
        "restricted-dma-bar-size=1M",
        "restricted-dma-bar-size cannot be used with vhost-vsock-pci: its "
        "vhost backend maps all of guest RAM",
    },
};

static const Refusal pool_refusals[] = {
    {
        "anonymous-pool",
        "-chardev socket,id=vu0,path=%s "
        "-object restricted-dma-pool,id=p0,size=2M "
        "-device vhost-user-blk,chardev=vu0,num-queues=1,"
        "restricted-dma-pool=p0",
        "restricted-dma-pool cannot be used with vhost-user-blk unless the "
        "window is shared memory with a file descriptor",
    },
};

static void test_refusal(const void *opaque)
{
    const Refusal *r = opaque;
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    g_autofree char *args = NULL;
    Backend vu;

    backend_start(&vu, disk);
    args = g_strdup_printf(r->args, vu.path);
    qrestricted_assert_run(NULL, args, 1, r->message);
    /* the backend never got a memory table */
    g_assert_cmpint(vu.tables, ==, 0);
    backend_stop(&vu);
}

static void add_refusals(const Refusal *table, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        g_autofree char *path =
            g_strdup_printf("/virtio-rdma-vhost-user/refuse/%s",
                            table[i].name);
        qtest_add_data_func(path, &table[i], test_refusal);
    }
}

/*
 * ---- refusals as a device_add ---------------------------------------
 *
 * The refusals above that a device_add on a PCIe root port can meet, with
 * the chardev (and a backend behind it) and the memory backends on the
 * command line: the refused device must leave them as they were, and the
 * corrected device_add must work with them.  Not here: the pools' own
 * errors (an object's, not a device's; a hot-plugged device cannot have a
 * pool at all, virtio-restricted-dma-pool-test has that case), and
 * vhost-kernel-type, whose correction (vhost-vsock-pci without a window)
 * needs /dev/vhost-vsock.
 */

typedef struct Plug {
    const char *name;
    const char *refusal;        /* the refusal it repeats: its message */
    const char *backend;        /* %s: the backend's socket */
    const char *driver;
    const char *bad;
    const char *good;
    const char *then_free;      /* a memory backend the device let go of */
} Plug;

#define CHARDEV "-chardev socket,id=vu0,path=%s "
#define MEMFD(id, size, share) \
    "-object memory-backend-memfd,id=" id ",size=" size ",share=" share " "
#define VU_ON "'chardev': 'vu0', 'num-queues': 1, 'disable-legacy': 'on', "

static const Plug plugs[] = {
    { "anonymous-bar", "anonymous-bar", CHARDEV MEMFD("win0", "1M", "on"),
      "vhost-user-blk-pci", VU_ON "'restricted-dma-bar-size': 1048576",
      VU_ON "'restricted-dma-bar-memdev': 'win0'" },
    { "private-memdev", "private-memdev",
      CHARDEV MEMFD("win0", "1M", "off") MEMFD("win1", "1M", "on"),
      "vhost-user-blk-pci", VU_ON "'restricted-dma-bar-memdev': 'win0'",
      VU_ON "'restricted-dma-bar-memdev': 'win1'", "win0" },
    { "memdev-and-size", "memdev-and-size", CHARDEV MEMFD("win0", "1M", "on"),
      "vhost-user-blk-pci", VU_ON "'restricted-dma-bar-memdev': 'win0', "
      "'restricted-dma-bar-size': 1048576",
      VU_ON "'restricted-dma-bar-memdev': 'win0'" },
    { "memdev-not-power-of-two", "memdev-not-power-of-two",
      CHARDEV MEMFD("win0", "1536K", "on") MEMFD("win1", "1M", "on"),
      "vhost-user-blk-pci", VU_ON "'restricted-dma-bar-memdev': 'win0'",
      VU_ON "'restricted-dma-bar-memdev': 'win1'", "win0" },
    /* the memory backend in use by a device on the command line */
    { "memdev-in-use", "memdev-in-use",
      CHARDEV MEMFD("win0", "1M", "on") MEMFD("win1", "1M", "on")
      "-device virtio-rng-pci,id=rng0,disable-legacy=on,"
      "restricted-dma-bar-memdev=win0",
      "virtio-rng-pci", "'disable-legacy': 'on', "
      "'restricted-dma-bar-memdev': 'win0'",
      "'disable-legacy': 'on', 'restricted-dma-bar-memdev': 'win1'" },
};

static void test_plug(const void *opaque)
{
    const Plug *p = opaque;
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    g_autofree char *backend = NULL;
    const Refusal *r = NULL;
    QRestrictedPlug plug;
    QTestState *qts;
    Backend vu;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(refusals); i++) {
        if (g_str_equal(refusals[i].name, p->refusal)) {
            r = &refusals[i];
        }
    }
    g_assert_nonnull(r);
    backend_start(&vu, disk);
    backend = g_strdup_printf(p->backend, vu.path);
    plug = (QRestrictedPlug) {
        .backend = backend,
        .driver = p->driver,
        .bad = p->bad,
        .good = p->good,
    };
    qts = qrestricted_plug_refused(&plug, r->message);
    /* no driver has started the device: the backend has no table yet */
    g_assert_cmpint(vu.tables, ==, 0);
    if (p->then_free) {
        qtest_qmp_assert_success(qts, "{ 'execute': 'object-del',"
                                 " 'arguments': { 'id': %s } }",
                                 p->then_free);
    }
    if (strstr(p->backend, "rng0")) {
        /* the device that has the memory backend still has its window */
        g_autoptr(QDict) st = qrestricted_query(qts, "/machine/peripheral/"
                                                "rng0/virtio-backend");

        g_assert_cmpstr(qdict_get_str(st, "kind"), ==, "bar");
    }
    qtest_quit(qts);
    backend_stop(&vu);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/virtio-rdma-vhost-user/pci/io", test_pci_io);
    qtest_add_func("/virtio-rdma-vhost-user/pci/io-shared-ram",
                   test_pci_io_shared_ram);
    qtest_add_func("/virtio-rdma-vhost-user/pci/buffer-outside",
                   test_pci_buffer_outside);
    qtest_add_func("/virtio-rdma-vhost-user/pci/bar-move", test_pci_bar_move);
    qtest_add_func("/virtio-rdma-vhost-user/pci/migration",
                   test_pci_migration);
    if (qrestricted_machine_is_x86(NULL)) {
        qtest_add_func("/virtio-rdma-vhost-user/pci/hot-unplug",
                       test_pci_hot_unplug);
    }
    add_refusals(refusals, ARRAY_SIZE(refusals));
    add_vu_types(!qrestricted_machine_is_x86(NULL));
    if (!qrestricted_machine_is_x86(NULL)) {
        qtest_add_func("/virtio-rdma-vhost-user/mmio-pool/io", test_mmio_io);
        qtest_add_func("/virtio-rdma-vhost-user/mmio-pool/io-shared-ram",
                       test_mmio_io_shared_ram);
        qtest_add_func("/virtio-rdma-vhost-user/mmio-pool/buffer-outside",
                       test_mmio_buffer_outside);
        add_refusals(pool_refusals, ARRAY_SIZE(pool_refusals));
    }
    for (i = 0; i < G_N_ELEMENTS(plugs); i++) {
        g_autofree char *path =
            g_strdup_printf("/virtio-rdma-vhost-user/hotplug/%s",
                            plugs[i].name);

        qtest_add_data_func(path, &plugs[i], test_plug);
    }
    return g_test_run();
}
