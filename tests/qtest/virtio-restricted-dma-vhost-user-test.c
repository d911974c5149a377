/*
 * QTest for restricted DMA with a vhost-user backend
 *
 * The test runs a small vhost-user-blk backend in a thread of its own: one
 * virtqueue, split rings, a disk in memory.  Like any vhost-user backend it
 * reaches guest memory only through the memory table QEMU sends it, and it
 * records that table, so the test can check what the backend can see: the
 * restricted DMA window and nothing else.  A request whose buffer lies
 * outside the window has no mapping in the backend: the backend fails it
 * without any access and signals the vring error eventfd, and QEMU breaks
 * the device (NEEDS_RESET) and counts a backend error.
 *
 * x86_64 "pc" and aarch64 "virt": vhost-user-blk-pci with its window in a
 * BAR backed by a shared memfd (restricted-dma-bar-memdev).  aarch64 also:
 * vhost-user-blk on virtio-mmio with a restricted-dma-pool backed by a
 * shared memfd (memdev=).  Guest RAM is never shared.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "libqtest.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libqos/libqos-malloc.h"
#include "libqos/malloc-pc.h"
#include "libqos/pci-pc.h"
#include "libqos/generic-pcihost.h"
#include "libqos/virtio.h"
#include "libqos/virtio-mmio.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio-restricted-dma.h"

#define TIMEOUT_US (30 * 1000 * 1000)
#define DEV_SLOT 4
#define VDEV_PATH "/machine/peripheral/dev0/virtio-backend"
#define MMIO_VDEV_PATH "/machine/peripheral/dev0"
#define WINDOW_SIZE (1 * 1024 * 1024)
#define ARM_RAM_BASE 0x40000000ULL
#define ARM_RAM_SIZE (256 * 1024 * 1024ULL)
#define POOL_BASE (ARM_RAM_BASE + ARM_RAM_SIZE - 2 * 1024 * 1024)
#define MMIO_LAST 0x0a003e00ULL     /* where the first -device lands */
#define DISK_SIZE (1 * 1024 * 1024)
#define SECTOR 512
#define CANARY 0xa5
#define F(bit) (1ULL << (bit))
#define F_AWARE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_ACCESS_PLATFORM) | \
                 F(QVIRTIO_F_RESTRICTED_DMA))

static const char *arch;

/* ---- the backend --------------------------------------------------- */

/* vhost-user messages (docs/interop/vhost-user.rst) */
enum {
    VU_GET_FEATURES = 1,
    VU_SET_FEATURES = 2,
    VU_SET_OWNER = 3,
    VU_RESET_OWNER = 4,
    VU_SET_MEM_TABLE = 5,
    VU_SET_LOG_BASE = 6,
    VU_SET_LOG_FD = 7,
    VU_SET_VRING_NUM = 8,
    VU_SET_VRING_ADDR = 9,
    VU_SET_VRING_BASE = 10,
    VU_GET_VRING_BASE = 11,
    VU_SET_VRING_KICK = 12,
    VU_SET_VRING_CALL = 13,
    VU_SET_VRING_ERR = 14,
    VU_GET_PROTOCOL_FEATURES = 15,
    VU_SET_PROTOCOL_FEATURES = 16,
    VU_GET_QUEUE_NUM = 17,
    VU_SET_VRING_ENABLE = 18,
    VU_GET_CONFIG = 24,
    VU_SET_CONFIG = 25,
};

#define VU_FLAG_VERSION 0x1
#define VU_FLAG_REPLY 0x4
#define VU_VRING_NOFD (1 << 8)
#define VU_F_PROTOCOL_FEATURES 30
#define VU_F_LOG_ALL 26
#define VU_PROTOCOL_F_LOG_SHMFD 1
#define VU_PROTOCOL_F_CONFIG 9
#define VU_MAX_REGIONS 8
#define VU_MAX_FDS 8
#define VU_LOG_PAGE 4096

typedef struct QEMU_PACKED VuRegion {
    uint64_t gpa;
    uint64_t size;
    uint64_t uaddr;
    uint64_t mmap_offset;
} VuRegion;

typedef struct QEMU_PACKED VuMsg {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
    union {
        uint64_t u64;
        struct {
            uint32_t index;
            uint32_t num;
        } state;
        struct {
            uint32_t index;
            uint32_t flags;
            uint64_t desc;
            uint64_t used;
            uint64_t avail;
            uint64_t log;
        } addr;
        struct {
            uint32_t nregions;
            uint32_t padding;
            VuRegion regions[VU_MAX_REGIONS];
        } mem;
        struct {
            uint32_t offset;
            uint32_t size;
            uint32_t flags;
            uint8_t data[256];
        } config;
        struct {
            uint64_t size;
            uint64_t offset;
        } log;
    } p;
} VuMsg;

#define VU_HDR_SIZE offsetof(VuMsg, p)

/* One region of the memory table, and what the backend made of it. */
typedef struct VuMap {
    VuRegion r;
    uint64_t fd_size;       /* the size of the file it was given */
    uint8_t *ptr;           /* the mapping, from offset 0 of the file */
} VuMap;

typedef struct VuBackend {
    char *path;
    int listen_fd;
    int conn_fd;
    GThread *thread;
    bool quit;

    /* owned by the backend thread */
    uint64_t features;
    VuMap map[VU_MAX_REGIONS];
    int nmaps;
    uint8_t *log;
    uint64_t log_size;
    uint32_t num;
    uint64_t desc_ua, avail_ua, used_ua, log_ga;
    bool log_used;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t last_avail;
    bool enabled;
    bool stopped;           /* GET_VRING_BASE until the next start */
    bool broken;            /* a request had no mapping, until restarted */
    int kick_fd, call_fd, err_fd;
    uint8_t *disk;          /* shared with another backend, if any */

    /* shared with the test, under @lock */
    GMutex lock;
    GCond cond;
    int tables;             /* SET_MEM_TABLE messages received */
    VuMap table[VU_MAX_REGIONS];    /* the last one */
    int table_regions;
    int requests;           /* requests completed */
    int unmapped;           /* requests failed: an address with no mapping */
    uint64_t unmapped_addr;
} VuBackend;

static void vu_lock(VuBackend *b)
{
    g_mutex_lock(&b->lock);
}

static void vu_unlock(VuBackend *b)
{
    g_cond_broadcast(&b->cond);
    g_mutex_unlock(&b->lock);
}

/* guest memory through the memory table: by QEMU's address, or by GPA */
static uint8_t *vu_uva(VuBackend *b, uint64_t uva, uint64_t len)
{
    int i;

    for (i = 0; i < b->nmaps; i++) {
        VuRegion *r = &b->map[i].r;

        if (uva >= r->uaddr && len <= r->size && uva - r->uaddr <= r->size -
            len) {
            return b->map[i].ptr + r->mmap_offset + (uva - r->uaddr);
        }
    }
    return NULL;
}

static uint8_t *vu_gpa(VuBackend *b, uint64_t gpa, uint64_t len)
{
    int i;

    for (i = 0; i < b->nmaps; i++) {
        VuRegion *r = &b->map[i].r;

        if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len) {
            return b->map[i].ptr + r->mmap_offset + (gpa - r->gpa);
        }
    }
    return NULL;
}

/* A write to guest memory, logged while QEMU migrates. */
static void vu_log_write(VuBackend *b, uint64_t gpa, uint64_t len)
{
    uint64_t page;

    if (!b->log || !(b->features & F(VU_F_LOG_ALL)) || !len) {
        return;
    }
    for (page = gpa / VU_LOG_PAGE; page <= (gpa + len - 1) / VU_LOG_PAGE;
         page++) {
        if (page / 8 < b->log_size) {
            qatomic_or(&b->log[page / 8], 1 << (page % 8));
        }
    }
}

static void vu_unmap_all(VuBackend *b)
{
    int i;

    for (i = 0; i < b->nmaps; i++) {
        munmap(b->map[i].ptr, b->map[i].r.size + b->map[i].r.mmap_offset);
    }
    b->nmaps = 0;
}

/* The rings, from the addresses QEMU gave (its own virtual addresses). */
static void vu_map_rings(VuBackend *b)
{
    b->desc = (void *)vu_uva(b, b->desc_ua, 16 * b->num);
    b->avail = (void *)vu_uva(b, b->avail_ua, 4 + 2 * b->num);
    b->used = (void *)vu_uva(b, b->used_ua, 4 + 8 * b->num);
}

static void vu_signal(int fd)
{
    uint64_t one = 1;

    if (fd >= 0) {
        g_assert_cmpint(write(fd, &one, sizeof(one)), ==, sizeof(one));
    }
}

/* A buffer with no mapping: fail without touching anything. */
static void vu_unmapped(VuBackend *b, uint64_t gpa)
{
    b->broken = true;
    vu_lock(b);
    b->unmapped++;
    b->unmapped_addr = gpa;
    vu_unlock(b);
    vu_signal(b->err_fd);
}

typedef struct VuSeg {
    uint8_t *p;
    uint64_t gpa;
    uint32_t len;
    bool write;
} VuSeg;

/* Process the available ring: virtio-blk requests on the memory disk. */
static void vu_process(VuBackend *b)
{
    bool done = false;

    if (!b->enabled || b->stopped || b->broken || !b->desc || !b->avail ||
        !b->used) {
        return;
    }
    while (b->last_avail != le16_to_cpu(qatomic_read(&b->avail->idx))) {
        VuSeg seg[16];
        int n = 0, i;
        uint16_t head, d;
        struct virtio_blk_outhdr hdr;
        uint64_t off;
        uint32_t written = 0;
        uint8_t status = VIRTIO_BLK_S_OK;
        uint16_t uidx;

        /* read the ring entry after the index that made it available */
        smp_rmb();
        head = le16_to_cpu(b->avail->ring[b->last_avail % b->num]);
        for (d = head; ; d = le16_to_cpu(b->desc[d].next)) {
            struct vring_desc *desc;

            if (d >= b->num || n == ARRAY_SIZE(seg)) {
                vu_unmapped(b, 0);
                return;
            }
            desc = &b->desc[d];
            seg[n].gpa = le64_to_cpu(desc->addr);
            seg[n].len = le32_to_cpu(desc->len);
            seg[n].write = le16_to_cpu(desc->flags) & VRING_DESC_F_WRITE;
            seg[n].p = vu_gpa(b, seg[n].gpa, seg[n].len);
            if (!seg[n].p) {
                vu_unmapped(b, seg[n].gpa);
                return;
            }
            n++;
            if (!(le16_to_cpu(desc->flags) & VRING_DESC_F_NEXT)) {
                break;
            }
        }
        g_assert_cmpint(n, >=, 2);
        g_assert_cmpint(seg[0].len, ==, sizeof(hdr));
        memcpy(&hdr, seg[0].p, sizeof(hdr));
        off = le64_to_cpu(hdr.sector) * SECTOR;
        for (i = 1; i < n - 1; i++) {
            if (off + seg[i].len > DISK_SIZE) {
                status = VIRTIO_BLK_S_IOERR;
                break;
            }
            switch (le32_to_cpu(hdr.type)) {
            case VIRTIO_BLK_T_IN:
                memcpy(seg[i].p, b->disk + off, seg[i].len);
                vu_log_write(b, seg[i].gpa, seg[i].len);
                written += seg[i].len;
                break;
            case VIRTIO_BLK_T_OUT:
                memcpy(b->disk + off, seg[i].p, seg[i].len);
                break;
            default:
                status = VIRTIO_BLK_S_UNSUPP;
                break;
            }
            off += seg[i].len;
        }
        *seg[n - 1].p = status;
        vu_log_write(b, seg[n - 1].gpa, 1);
        written++;

        uidx = le16_to_cpu(b->used->idx);
        b->used->ring[uidx % b->num].id = cpu_to_le32(head);
        b->used->ring[uidx % b->num].len = cpu_to_le32(written);
        /* the used element, then the index that publishes it */
        smp_wmb();
        qatomic_set(&b->used->idx, cpu_to_le16(uidx + 1));
        if (b->log_used) {
            vu_log_write(b, b->log_ga, 4 + 8 * b->num);
        }
        b->last_avail++;
        done = true;
        vu_lock(b);
        b->requests++;
        vu_unlock(b);
    }
    if (done) {
        vu_signal(b->call_fd);
    }
}

static void vu_set_fd(int *slot, VuMsg *m, int *fds, int nfds)
{
    if (*slot >= 0) {
        close(*slot);
    }
    *slot = (m->p.u64 & VU_VRING_NOFD) || !nfds ? -1 : fds[0];
}

static void vu_reply(VuBackend *b, VuMsg *m, uint32_t size)
{
    m->flags = VU_FLAG_VERSION | VU_FLAG_REPLY;
    m->size = size;
    g_assert_cmpint(send(b->conn_fd, m, VU_HDR_SIZE + size, 0), ==,
                    VU_HDR_SIZE + size);
}

static void vu_set_mem_table(VuBackend *b, VuMsg *m, int *fds, int nfds)
{
    int i;

    g_assert_cmpint(m->p.mem.nregions, ==, nfds);
    vu_unmap_all(b);
    for (i = 0; i < nfds; i++) {
        VuMap *map = &b->map[i];
        struct stat st;

        map->r = m->p.mem.regions[i];
        g_assert_cmpint(fstat(fds[i], &st), ==, 0);
        map->fd_size = st.st_size;
        map->ptr = mmap(NULL, map->r.size + map->r.mmap_offset,
                        PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
        g_assert(map->ptr != MAP_FAILED);
        close(fds[i]);
    }
    b->nmaps = nfds;
    vu_map_rings(b);
    vu_lock(b);
    b->tables++;
    memcpy(b->table, b->map, sizeof(b->table));
    b->table_regions = nfds;
    vu_unlock(b);
}

static void vu_handle(VuBackend *b, VuMsg *m, int *fds, int nfds)
{
    struct virtio_blk_config cfg = {
        .capacity = cpu_to_le64(DISK_SIZE / SECTOR),
        .num_queues = cpu_to_le16(1),
    };

    switch (m->request) {
    case VU_GET_FEATURES:
        m->p.u64 = F(VIRTIO_F_VERSION_1) | F(VU_F_PROTOCOL_FEATURES) |
                   F(VU_F_LOG_ALL);
        vu_reply(b, m, sizeof(m->p.u64));
        break;
    case VU_SET_FEATURES:
        b->features = m->p.u64;
        break;
    case VU_GET_PROTOCOL_FEATURES:
        m->p.u64 = F(VU_PROTOCOL_F_CONFIG) | F(VU_PROTOCOL_F_LOG_SHMFD);
        vu_reply(b, m, sizeof(m->p.u64));
        break;
    case VU_GET_CONFIG:
        memcpy(m->p.config.data, &cfg,
               MIN(sizeof(cfg), sizeof(m->p.config.data)));
        vu_reply(b, m, m->size);
        break;
    case VU_SET_MEM_TABLE:
        vu_set_mem_table(b, m, fds, nfds);
        return;
    case VU_SET_LOG_BASE:
        if (b->log) {
            munmap(b->log, b->log_size);
        }
        b->log_size = m->p.log.size;
        b->log = mmap(NULL, b->log_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      fds[0], m->p.log.offset);
        g_assert(b->log != MAP_FAILED);
        close(fds[0]);
        m->p.u64 = 0;
        vu_reply(b, m, sizeof(m->p.u64));
        return;
    case VU_SET_VRING_NUM:
        b->num = m->p.state.num;
        break;
    case VU_SET_VRING_BASE:
        b->last_avail = m->p.state.num;
        break;
    case VU_SET_VRING_ADDR:
        b->desc_ua = m->p.addr.desc;
        b->avail_ua = m->p.addr.avail;
        b->used_ua = m->p.addr.used;
        b->log_ga = m->p.addr.log;
        b->log_used = m->p.addr.flags & 1;
        vu_map_rings(b);
        break;
    case VU_GET_VRING_BASE:
        b->stopped = true;
        m->p.state.num = b->last_avail;
        vu_reply(b, m, sizeof(m->p.state));
        break;
    case VU_SET_VRING_KICK:
        vu_set_fd(&b->kick_fd, m, fds, nfds);
        /* a new start */
        b->stopped = false;
        b->broken = false;
        return;
    case VU_SET_VRING_CALL:
        vu_set_fd(&b->call_fd, m, fds, nfds);
        return;
    case VU_SET_VRING_ERR:
        vu_set_fd(&b->err_fd, m, fds, nfds);
        return;
    case VU_SET_VRING_ENABLE:
        b->enabled = m->p.state.num;
        break;
    case VU_SET_OWNER:
    case VU_RESET_OWNER:
    case VU_SET_PROTOCOL_FEATURES:
    case VU_SET_CONFIG:
        break;
    default:
        g_test_message("vhost-user backend: unexpected request %u",
                       m->request);
        g_assert_not_reached();
    }
    while (nfds--) {
        close(fds[nfds]);
    }
}

/* Read one message; false when the connection closed. */
static bool vu_read(VuBackend *b, VuMsg *m, int *fds, int *nfds)
{
    struct iovec iov = { .iov_base = m, .iov_len = VU_HDR_SIZE };
    char control[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control,
        .msg_controllen = sizeof(control),
    };
    struct cmsghdr *c;
    ssize_t r;

    *nfds = 0;
    r = recvmsg(b->conn_fd, &mh, 0);
    if (r <= 0) {
        return false;
    }
    g_assert_cmpint(r, ==, VU_HDR_SIZE);
    for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            *nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(c), *nfds * sizeof(int));
        }
    }
    g_assert_cmpint(m->size, <=, sizeof(m->p));
    if (m->size) {
        g_assert_cmpint(read(b->conn_fd, &m->p, m->size), ==, m->size);
    }
    return true;
}

static void vu_disconnect(VuBackend *b)
{
    close(b->conn_fd);
    b->conn_fd = -1;
    vu_set_fd(&b->kick_fd, &(VuMsg){ .p.u64 = VU_VRING_NOFD }, NULL, 0);
    vu_set_fd(&b->call_fd, &(VuMsg){ .p.u64 = VU_VRING_NOFD }, NULL, 0);
    vu_set_fd(&b->err_fd, &(VuMsg){ .p.u64 = VU_VRING_NOFD }, NULL, 0);
    vu_unmap_all(b);
    b->desc = NULL;
    b->avail = NULL;
    b->used = NULL;
}

static gpointer vu_thread(gpointer opaque)
{
    VuBackend *b = opaque;

    while (!qatomic_read(&b->quit)) {
        struct pollfd pfd[2] = {
            { .fd = b->conn_fd >= 0 ? b->conn_fd : b->listen_fd,
              .events = POLLIN },
            { .fd = b->kick_fd, .events = POLLIN },
        };
        int r = poll(pfd, b->kick_fd >= 0 ? 2 : 1, 50);

        if (r <= 0) {
            continue;
        }
        if (pfd[0].revents && b->conn_fd < 0) {
            b->conn_fd = accept(b->listen_fd, NULL, NULL);
            g_assert_cmpint(b->conn_fd, >=, 0);
        } else if (pfd[0].revents) {
            VuMsg m = { 0 };
            int fds[VU_MAX_FDS], nfds;

            if (!vu_read(b, &m, fds, &nfds)) {
                vu_disconnect(b);
                continue;
            }
            vu_handle(b, &m, fds, nfds);
        }
        if (b->kick_fd >= 0 && (pfd[1].revents & POLLIN)) {
            uint64_t v;

            g_assert_cmpint(read(b->kick_fd, &v, sizeof(v)), ==, sizeof(v));
            vu_process(b);
        }
    }
    return NULL;
}

static void vu_start(VuBackend *b, uint8_t *disk)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    memset(b, 0, sizeof(*b));
    b->path = g_strdup_printf("%s/qtest-rdma-vu-%d-%p.sock",
                              g_get_tmp_dir(), getpid(), b);
    b->conn_fd = b->kick_fd = b->call_fd = b->err_fd = -1;
    b->disk = disk;
    g_mutex_init(&b->lock);
    g_cond_init(&b->cond);
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(b->listen_fd, >=, 0);
    g_strlcpy(sun.sun_path, b->path, sizeof(sun.sun_path));
    unlink(b->path);
    g_assert_cmpint(bind(b->listen_fd, (struct sockaddr *)&sun,
                         sizeof(sun)), ==, 0);
    g_assert_cmpint(listen(b->listen_fd, 1), ==, 0);
    b->thread = g_thread_new("vhost-user-backend", vu_thread, b);
}

static void vu_stop(VuBackend *b)
{
    qatomic_set(&b->quit, true);
    g_thread_join(b->thread);
    if (b->conn_fd >= 0) {
        vu_disconnect(b);
    }
    if (b->log) {
        munmap(b->log, b->log_size);
    }
    close(b->listen_fd);
    unlink(b->path);
    g_free(b->path);
    g_mutex_clear(&b->lock);
    g_cond_clear(&b->cond);
}

/* Wait until the backend's counter *@count reaches @n. */
static void vu_wait(VuBackend *b, int *count, int n)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_US;

    g_mutex_lock(&b->lock);
    while (*count < n) {
        g_assert(g_cond_wait_until(&b->cond, &b->lock, end));
    }
    g_mutex_unlock(&b->lock);
}

/* ... memory tables received */
static void vu_wait_tables(VuBackend *b, int n)
{
    vu_wait(b, &b->tables, n);
}

/* ... requests failed for want of a mapping */
static void vu_wait_unmapped(VuBackend *b, int n)
{
    vu_wait(b, &b->unmapped, n);
}

/*
 * The backend's last memory table holds exactly the window: one region at
 * the window's bus address, of its size, from a file of that size (so that
 * no mmap offset reaches anything else).
 */
static void vu_assert_only_window(VuBackend *b, uint64_t base,
                                  uint64_t size)
{
    g_mutex_lock(&b->lock);
    g_assert_cmpint(b->table_regions, ==, 1);
    g_assert_cmphex(b->table[0].r.gpa, ==, base);
    g_assert_cmphex(b->table[0].r.size, ==, size);
    g_assert_cmphex(b->table[0].r.mmap_offset, ==, 0);
    g_assert_cmphex(b->table[0].fd_size, ==, size);
    g_mutex_unlock(&b->lock);
}

/* ---- the guest ----------------------------------------------------- */

typedef struct Guest {
    QTestState *qts;
    QGuestAllocator ram;        /* guest RAM, outside any window */
    QPCIBus *bus;
    QGenericPCIBus gbus;
    QVirtioPCIDevice *dev;
    QVirtioMMIODevice mmio;
    QVirtioDevice *vdev;
    QVirtioRestrictedDMA win;   /* a BAR window */
    QGuestAllocator pool;       /* a pool window */
    QGuestAllocator *alloc;     /* where rings and buffers go */
    uint64_t base, size;        /* the window */
    const char *path;           /* of the VirtIODevice */
    VuBackend *vu;
} Guest;

static bool is_x86(void)
{
    return !strcmp(arch, "x86_64");
}

/*
 * Start QEMU.  With @shared_ram, guest RAM is shared memory too, as a
 * vhost-user setup without restricted DMA needs: the backend could map it,
 * if it were given it.
 */
static void G_GNUC_PRINTF(4, 5) guest_start(Guest *g, VuBackend *vu,
                                            bool shared_ram,
                                            const char *fmt, ...)
{
    va_list ap;
    g_autofree char *extra = NULL;

    va_start(ap, fmt);
    extra = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g->vu = vu;
    g->qts = qtest_initf("-M %s%s %s -m 256M -nodefaults "
                         "-chardev socket,id=vu0,path=%s %s %s",
                         is_x86() ? "pc" : "virt",
                         shared_ram ? ",memory-backend=ram" : "",
                         is_x86() ? "" : "-cpu max", vu->path, shared_ram ?
                         "-object memory-backend-memfd,id=ram,size=256M,"
                         "share=on" : "", extra);
    if (is_x86()) {
        pc_alloc_init(&g->ram, g->qts, ALLOC_NO_FLAGS);
        g->bus = qpci_new_pc(g->qts, &g->ram);
    } else {
        alloc_init(&g->ram, ALLOC_NO_FLAGS, ARM_RAM_BASE + 16 * 1024 * 1024,
                   ARM_RAM_BASE + 128 * 1024 * 1024, 4096);
        qpci_init_generic(&g->gbus, g->qts, &g->ram, false);
        g->bus = &g->gbus.bus;
    }
}

/* vhost-user-blk-pci at slot 4 with its window in a BAR: map it. */
static void guest_probe_pci(Guest *g)
{
    QPCIAddress addr = { .devfn = QPCI_DEVFN(DEV_SLOT, 0) };

    g->dev = virtio_pci_new(g->bus, &addr);
    g_assert_nonnull(g->dev);
    g->vdev = &g->dev->vdev;
    qvirtio_pci_device_enable(g->dev);
    qvirtio_start_device(g->vdev);
    qvirtio_restricted_dma_map(&g->win, g->dev);
    g->alloc = &g->win.alloc;
    g->base = g->win.addr + g->win.offset;
    g->size = g->win.size;
    g->path = VDEV_PATH;
}

/* vhost-user-blk on virtio-mmio with a pool at POOL_BASE */
static void guest_probe_mmio(Guest *g)
{
    qvirtio_mmio_init_device(&g->mmio, g->qts, MMIO_LAST, 4096);
    g_assert_cmpint(g->mmio.version, ==, 2);
    g->vdev = &g->mmio.vdev;
    qvirtio_start_device(g->vdev);
    g->base = POOL_BASE;
    g->size = 2 * 1024 * 1024;
    alloc_init(&g->pool, ALLOC_NO_FLAGS, g->base, g->base + g->size, 64);
    g->alloc = &g->pool;
    g->path = MMIO_VDEV_PATH;
}

static void guest_stop(Guest *g)
{
    if (g->dev) {
        qos_object_destroy(&g->dev->obj);
    }
    if (g->win.dev) {
        qvirtio_restricted_dma_unmap(&g->win);
    }
    if (g->alloc == &g->pool) {
        alloc_destroy(&g->pool);
    }
    if (is_x86()) {
        qpci_free_pc(g->bus);
    }
    alloc_destroy(&g->ram);
    qtest_quit(g->qts);
    memset(g, 0, sizeof(*g));
}

static uint8_t dev_status(Guest *g)
{
    return g->vdev->bus->get_status(g->vdev);
}

/* An aware driver: negotiate, queue 0 in the window, DRIVER_OK. */
static QVirtQueue *guest_setup(Guest *g)
{
    uint64_t f = qvirtio_get_features(g->vdev);
    QVirtQueue *vq;

    g_assert_cmphex(f & F_AWARE, ==, F_AWARE);
    qvirtio_set_features(g->vdev, f & F_AWARE);
    vq = qvirtqueue_setup(g->vdev, g->alloc, 0);
    qvirtio_set_driver_ok(g->vdev);
    return vq;
}

static uint8_t blk_io(Guest *g, QVirtQueue *vq, uint32_t type,
                      uint64_t sector, uint64_t data, uint32_t len)
{
    uint64_t status;
    uint32_t head = qvirtio_rdma_blk_submit(g->qts, g->vdev, vq, g->alloc,
                                            type, sector, data, len, &status);

    qvirtio_wait_used_elem(g->qts, g->vdev, vq, head, NULL, TIMEOUT_US);
    return qtest_readb(g->qts, status);
}

/*
 * Write a pattern through the backend and read it back; the backend's
 * disk holds it.
 */
static void blk_roundtrip(Guest *g, QVirtQueue *vq, uint8_t *disk,
                          uint64_t sector, uint8_t seed)
{
    uint8_t pattern[4 * SECTOR], back[4 * SECTOR];
    size_t len = sizeof(pattern), i;
    uint64_t out = guest_alloc(g->alloc, len);
    uint64_t in = guest_alloc(g->alloc, len);

    for (i = 0; i < len; i++) {
        pattern[i] = seed + i * 7;
    }
    qtest_memwrite(g->qts, out, pattern, len);
    qvirtio_rdma_fill(g->qts, in, 0, len);
    g_assert_cmpint(blk_io(g, vq, VIRTIO_BLK_T_OUT, sector, out, len), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpint(blk_io(g, vq, VIRTIO_BLK_T_IN, sector, in, len), ==,
                    VIRTIO_BLK_S_OK);
    qtest_memread(g->qts, in, back, len);
    g_assert_cmpmem(back, len, pattern, len);
    g_assert_cmpmem(disk + sector * SECTOR, len, pattern, len);
}

static int64_t rdma_int(Guest *g, const char *key)
{
    return qvirtio_rdma_query_int(g->qts, g->path, key);
}

/* After a reset: renegotiate; the backend gets a new table, I/O works. */
static QVirtQueue *guest_reset(Guest *g, QVirtQueue *vq, int tables)
{
    qvirtqueue_cleanup(g->vdev->bus, vq, g->alloc);
    qvirtio_reset(g->vdev);
    g_assert_cmphex(dev_status(g), ==, 0);
    qvirtio_set_acknowledge(g->vdev);
    qvirtio_set_driver(g->vdev);
    vq = guest_setup(g);
    vu_wait_tables(g->vu, tables);
    return vq;
}

#define PCI_DEVICE_ARGS \
    "-object memory-backend-memfd,id=win0,size=1M,share=on " \
    "-device vhost-user-blk-pci,id=dev0,addr=%d.0,chardev=vu0," \
    "num-queues=1,disable-legacy=on,restricted-dma-bar-memdev=win0"

#define MMIO_DEVICE_ARGS \
    "-object memory-backend-memfd,id=pm,size=2M,share=on " \
    "-object restricted-dma-pool,id=p0,memdev=pm " \
    "-device vhost-user-blk,id=dev0,chardev=vu0,num-queues=1," \
    "restricted-dma-pool=p0"

static void start_pci(Guest *g, VuBackend *vu, uint8_t *disk,
                      bool shared_ram)
{
    vu_start(vu, disk);
    guest_start(g, vu, shared_ram, PCI_DEVICE_ARGS, DEV_SLOT);
    guest_probe_pci(g);
}

static void start_mmio(Guest *g, VuBackend *vu, uint8_t *disk,
                       bool shared_ram)
{
    vu_start(vu, disk);
    guest_start(g, vu, shared_ram, MMIO_DEVICE_ARGS);
    guest_probe_mmio(g);
}

/* ---- tests --------------------------------------------------------- */

/*
 * I/O through the backend, which sees only the window, whether or not
 * guest RAM is shared memory it could map.
 */
static void io_test(bool mmio, bool shared_ram)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    VuBackend vu;
    Guest g = { 0 };
    QVirtQueue *vq;

    if (mmio) {
        start_mmio(&g, &vu, disk, shared_ram);
    } else {
        start_pci(&g, &vu, disk, shared_ram);
    }
    g_assert_cmpint(vu.tables, ==, 0);
    vq = guest_setup(&g);
    vu_wait_tables(&vu, 1);
    vu_assert_only_window(&vu, g.base, g.size);

    blk_roundtrip(&g, vq, disk, 0, 0x11);
    blk_roundtrip(&g, vq, disk, 100, 0x22);
    g_assert_cmpint(vu.requests, ==, 4);
    g_assert_cmpint(vu.unmapped, ==, 0);
    g_assert_cmpint(rdma_int(&g, "violations"), ==, 0);
    g_assert_cmpint(rdma_int(&g, "backend-errors"), ==, 0);
    g_assert_false(dev_status(&g) & VIRTIO_CONFIG_S_NEEDS_RESET);

    qvirtqueue_cleanup(g.vdev->bus, vq, g.alloc);
    guest_stop(&g);
    vu_stop(&vu);
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
    VuBackend vu;
    Guest g = { 0 };
    QVirtQueue *vq;
    uint64_t outside, status;
    uint16_t used_idx;

    /* guest RAM shared: only the memory table keeps the backend out */
    if (mmio) {
        start_mmio(&g, &vu, disk, true);
    } else {
        start_pci(&g, &vu, disk, true);
    }
    vq = guest_setup(&g);
    vu_wait_tables(&vu, 1);
    blk_roundtrip(&g, vq, disk, 0, 0x33);

    memset(disk, 0x5a, 4096);
    outside = guest_alloc(&g.ram, 4096);
    g_assert_true(outside + 4096 <= g.base || outside >= g.base + g.size);
    qvirtio_rdma_fill(g.qts, outside, CANARY, 4096);
    used_idx = qtest_readw(g.qts, vq->used + offsetof(struct vring_used, idx));
    qvirtio_rdma_blk_submit(g.qts, g.vdev, vq, g.alloc, VIRTIO_BLK_T_IN, 0,
                            outside, 4096, &status);
    vu_wait_unmapped(&vu, 1);
    g_assert_cmphex(vu.unmapped_addr, ==, outside);
    qvirtio_rdma_wait_needs_reset(g.qts, g.vdev, TIMEOUT_US);
    g_assert_cmpint(rdma_int(&g, "backend-errors"), ==, 1);
    g_assert_cmpint(rdma_int(&g, "violations"), ==, 0);
    /* nothing was read into the buffer, nothing completed */
    qvirtio_rdma_assert_filled(g.qts, outside, CANARY, 4096);
    g_assert_cmpint(qtest_readb(g.qts, status), ==, 0xff);
    g_assert_cmpint(qtest_readw(g.qts, vq->used +
                                offsetof(struct vring_used, idx)), ==,
                    used_idx);
    /* and the backend still sees only the window */
    vu_assert_only_window(&vu, g.base, g.size);

    vq = guest_reset(&g, vq, 2);
    vu_assert_only_window(&vu, g.base, g.size);
    blk_roundtrip(&g, vq, disk, 8, 0x44);
    g_assert_false(dev_status(&g) & VIRTIO_CONFIG_S_NEEDS_RESET);
    g_assert_cmpint(rdma_int(&g, "backend-errors"), ==, 1);

    qvirtqueue_cleanup(g.vdev->bus, vq, g.alloc);
    guest_stop(&g);
    vu_stop(&vu);
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
    VuBackend vu;
    Guest g = { 0 };
    QVirtQueue *vq;
    uint64_t old;

    start_pci(&g, &vu, disk, false);
    vq = guest_setup(&g);
    vu_wait_tables(&vu, 1);
    blk_roundtrip(&g, vq, disk, 0, 0x55);

    /* a driver that reassigns BARs resets the device first */
    qvirtqueue_cleanup(g.vdev->bus, vq, g.alloc);
    qvirtio_reset(g.vdev);
    old = qvirtio_restricted_dma_move(&g.win);
    g.base = g.win.addr + g.win.offset;
    g_assert_cmphex(g.base, !=, old);
    qvirtio_set_acknowledge(g.vdev);
    qvirtio_set_driver(g.vdev);
    vq = guest_setup(&g);
    vu_wait_tables(&vu, 2);
    vu_assert_only_window(&vu, g.base, g.size);
    blk_roundtrip(&g, vq, disk, 16, 0x66);
    g_assert_cmpint(rdma_int(&g, "backend-errors"), ==, 0);

    qvirtqueue_cleanup(g.vdev->bus, vq, g.alloc);
    guest_stop(&g);
    vu_stop(&vu);
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
    VuBackend vu_src, vu_dst;
    Guest src = { 0 }, dst = { 0 };
    QVirtQueue *vq;
    uint8_t mark[64], back[64];
    uint64_t in_window;
    QDict *rsp;

    start_pci(&src, &vu_src, disk, true);
    vq = guest_setup(&src);
    vu_wait_tables(&vu_src, 1);
    blk_roundtrip(&src, vq, disk, 0, 0x77);
    in_window = guest_alloc(src.alloc, sizeof(mark));
    memset(mark, 0x3c, sizeof(mark));
    qtest_memwrite(src.qts, in_window, mark, sizeof(mark));

    vu_start(&vu_dst, disk);
    guest_start(&dst, &vu_dst, true, PCI_DEVICE_ARGS " -incoming %s",
                DEV_SLOT, uri);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'migrate',"
                             " 'arguments': { 'uri': %s } }", uri);
    for (;;) {
        const char *st;

        rsp = qtest_qmp(src.qts, "{ 'execute': 'query-migrate' }");
        st = qdict_get_str(qdict_get_qdict(rsp, "return"), "status");
        if (!strcmp(st, "completed") || !strcmp(st, "failed")) {
            g_assert_cmpstr(st, ==, "completed");
            qobject_unref(rsp);
            break;
        }
        qobject_unref(rsp);
        g_usleep(5000);
    }
    qtest_qmp_eventwait(dst.qts, "RESUME");

    /* the window's contents came along; the backend sees only the window */
    qtest_memread(dst.qts, in_window, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), mark, sizeof(mark));
    vu_wait_tables(&vu_dst, 1);
    vu_assert_only_window(&vu_dst, src.base, src.size);

    /* go on with the source's driver state, on the destination */
    dst.dev = src.dev;
    dst.dev->pdev->bus = dst.bus;
    dst.vdev = src.vdev;
    dst.win = src.win;
    dst.alloc = src.alloc;
    dst.base = src.base;
    dst.size = src.size;
    dst.path = VDEV_PATH;
    dst.vu = &vu_dst;
    src.dev = NULL;
    src.win.dev = NULL;
    qtest_quit(src.qts);
    src.qts = NULL;
    vu_stop(&vu_src);

    blk_roundtrip(&dst, vq, disk, 32, 0x88);
    g_assert_cmpint(rdma_int(&dst, "backend-errors"), ==, 0);

    qvirtqueue_cleanup(dst.vdev->bus, vq, dst.alloc);
    guest_stop(&dst);
    if (is_x86()) {
        qpci_free_pc(src.bus);
    }
    alloc_destroy(&src.ram);
    vu_stop(&vu_dst);
}

/*
 * Unplug a running device (x86 pc, ACPI hot-plug): QEMU stays up, and the
 * window's memory backend is free again.
 */
static void test_pci_hot_unplug(void)
{
    g_autofree uint8_t *disk = g_malloc0(DISK_SIZE);
    VuBackend vu;
    Guest g = { 0 };
    QVirtQueue *vq;

    start_pci(&g, &vu, disk, true);
    vq = guest_setup(&g);
    vu_wait_tables(&vu, 1);
    blk_roundtrip(&g, vq, disk, 0, 0x99);

    /* in use by the device: the backend cannot go */
    qtest_qmp_assert_failure_ref(g.qts, "{ 'execute': 'object-del',"
                                 " 'arguments': { 'id': 'win0' } }");
    qvirtqueue_cleanup(g.vdev->bus, vq, g.alloc);
    qvirtio_restricted_dma_unmap(&g.win);
    g.win.dev = NULL;
    qos_object_destroy(&g.dev->obj);
    g.dev = NULL;
    qpci_unplug_acpi_device_test(g.qts, "dev0", DEV_SLOT);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'object-del',"
                             " 'arguments': { 'id': 'win0' } }");
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'query-status' }");

    guest_stop(&g);
    vu_stop(&vu);
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
    g_autofree char *dev = NULL;
    g_autofree char *args = NULL;
    g_autofree char *err = NULL;
    VuBackend vu;
    int status;

    vu_start(&vu, disk);
    dev = g_strdup_printf(r->args, vu.path);
    args = g_strdup_printf("%s %s", is_x86() ? "-M pc" :
                           "-M virt -cpu max -m 256M", dev);
    status = qvirtio_rdma_run_qemu(args, &err);
    g_assert_cmpint(status, ==, 1);
    if (!strstr(err, r->message)) {
        g_test_message("stderr: %s", err);
    }
    g_assert_nonnull(strstr(err, r->message));
    /* the backend never got a memory table */
    g_assert_cmpint(vu.tables, ==, 0);
    vu_stop(&vu);
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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    arch = qtest_get_arch();

    qtest_add_func("/virtio-rdma-vhost-user/pci/io", test_pci_io);
    qtest_add_func("/virtio-rdma-vhost-user/pci/io-shared-ram",
                   test_pci_io_shared_ram);
    qtest_add_func("/virtio-rdma-vhost-user/pci/buffer-outside",
                   test_pci_buffer_outside);
    qtest_add_func("/virtio-rdma-vhost-user/pci/bar-move", test_pci_bar_move);
    qtest_add_func("/virtio-rdma-vhost-user/pci/migration",
                   test_pci_migration);
    if (is_x86()) {
        qtest_add_func("/virtio-rdma-vhost-user/pci/hot-unplug",
                       test_pci_hot_unplug);
    }
    add_refusals(refusals, ARRAY_SIZE(refusals));
    if (!is_x86()) {
        qtest_add_func("/virtio-rdma-vhost-user/mmio-pool/io", test_mmio_io);
        qtest_add_func("/virtio-rdma-vhost-user/mmio-pool/io-shared-ram",
                       test_mmio_io_shared_ram);
        qtest_add_func("/virtio-rdma-vhost-user/mmio-pool/buffer-outside",
                       test_mmio_buffer_outside);
        add_refusals(pool_refusals, ARRAY_SIZE(pool_refusals));
    }
    return g_test_run();
}
