/*
 * QTest: every virtio device type that takes a restricted DMA window
 *
 * For each device type that QEMU accepts with a window, and for each
 * window kind it accepts (x86_64: a BAR or a pool, on pc and q35; aarch64
 * virt: a BAR or a pool on virtio-pci, a pool on virtio-mmio), two or
 * more cases:
 *
 *   .../KIND/TYPE/io       an aware driver with its rings in the window
 *                          makes requests the device answers, with every
 *                          buffer in the window, and checks the answers;
 *   .../KIND/TYPE/hostile  a request with one buffer in guest RAM outside
 *                          the window, over a canary: the device reports
 *                          the violation, marks itself NEEDS_RESET, counts
 *                          one violation, completes nothing, and the
 *                          canary is intact.
 *
 * virtio-gpu (and virtio-vga) also have .../hostile-backing: a resource
 * backing outside the window, which the device maps with its own
 * dma_memory_map() and not through a virtqueue element.
 *
 * The census (.../census/KIND) asks QEMU for every virtio-pci type (and,
 * on arm, every virtio-bus type for virtio-mmio), starts each with a
 * window of that kind and compares what happens with the table below:
 * a type that starts must have its I/O and hostile cases here, and a type
 * that is refused must be refused with the message the table gives.  A
 * new device type, or one that starts to accept a window, fails it.
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
#include "standard-headers/linux/input-event-codes.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_crypto.h"
#include "standard-headers/linux/virtio_gpu.h"
#include "standard-headers/linux/virtio_input.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_ring.h"
#include "standard-headers/linux/virtio_scsi.h"
#include "standard-headers/linux/virtio_snd.h"
#include "libqos/virtio.h"
#include "libqos/virtio-restricted-dma.h"

#define DEV_SLOT 4
#define DEVFN QPCI_DEVFN(DEV_SLOT, 0)
#define BAR_SIZE "4M"           /* virtio-serial's 64 queues need 2 MiB */
#define POOL_SIZE "16M"
#define DISK_SIZE (1 * MiB)
#define SECTOR 512
#define MAX_QUEUES 4

/* ---- window kinds ----------------------------------------------------- */

typedef struct Kind {
    const char *name;           /* in the test's path */
    const char *machine;
    bool mmio;                  /* virtio-*-device on virtio-mmio */
    bool pool;                  /* a restricted-dma-pool, else a BAR */
} Kind;

static const Kind kinds_x86[] = {
    { "pc-bar", "pc", false, false },
    { "q35-bar", "q35", false, false },
    { "pc-pool", "pc", false, true },
    { "q35-pool", "q35", false, true },
};

static const Kind kinds_arm[] = {
    { "virt-bar", "virt", false, false },
    { "virt-pci-pool", "virt", false, true },
    { "virt-mmio-pool", "virt", true, true },
};

/* ---- a device under test ---------------------------------------------- */

typedef struct Ctx Ctx;

typedef struct DevType {
    const char *name;           /* in the test's path */
    const char *pci;            /* its virtio-pci type, or NULL */
    const char *mmio;           /* its virtio-mmio type, or NULL */
    bool no_bar;                /* it has no BAR for a window: refused */
    int nqueues;                /* the driver sets up queues 0 to n - 1 */
    uint64_t features;          /* device features it accepts, if offered */
    /* backends (@before), device properties, devices on its bus */
    void (*setup)(Ctx *c, GString *before, GString *props, GString *after);
    void (*io)(Ctx *c);
    void (*hostile)(Ctx *c);
    void (*hostile_own)(Ctx *c);        /* a DMA path of its own */
    const char *own_name;
    const char *input;          /* virtio-input: which events */
} DevType;

struct Ctx {
    QRestrictedMachine m;
    const Kind *k;
    const DevType *t;
    QRestrictedDevice *d;
    QVirtQueue *vq[MAX_QUEUES];
    int sock[2];                /* net, serial: the test's end is sock[0] */
    const char *img;
    char *tmp;                  /* a file the test removes */
};

static QTestState *qts_of(Ctx *c)
{
    return c->m.qts;
}

static void ctx_start(Ctx *c)
{
    g_autoptr(GString) before = g_string_new("");
    g_autoptr(GString) props = g_string_new("");
    g_autoptr(GString) after = g_string_new("");
    const char *type = c->k->mmio ? c->t->mmio : c->t->pci;
    g_autofree char *where = NULL;
    QRestrictedWindow *w;
    int i;

    c->sock[0] = c->sock[1] = -1;
    c->m.machine = c->k->machine;
    if (c->t->setup) {
        c->t->setup(c, before, props, after);
    }
    if (c->k->pool) {
        g_string_append(before, " -object restricted-dma-pool,id=p0,size="
                        POOL_SIZE);
    }
    where = c->k->mmio ? g_strdup("") :
            g_strdup_printf(",addr=%d.0,disable-legacy=on", DEV_SLOT);
    qrestricted_start(&c->m, "%s -device %s,id=dev0%s,%s%s %s", before->str,
                      type, where, c->k->pool ? "restricted-dma-pool=p0" :
                      "restricted-dma-bar-size=" BAR_SIZE, props->str,
                      after->str);
    c->d = c->k->mmio ? qrestricted_mmio(&c->m, 0, "dev0") :
           qrestricted_pci(&c->m, DEVFN, "dev0");
    qrestricted_driver_queues(c->d, c->t->features, c->t->nqueues, c->vq);

    /* every ring of the driver is in the window */
    w = c->d->win;
    for (i = 0; i < c->t->nqueues; i++) {
        g_assert_cmphex(c->vq[i]->desc, >=, w->base);
        g_assert_cmphex(c->vq[i]->used, <, w->base + w->size);
    }
    g_assert_true(qrestricted_bool(c->d, "driver-accepted"));
}

static void ctx_stop(Ctx *c)
{
    qrestricted_stop(&c->m);
    if (c->sock[0] >= 0) {
        close(c->sock[0]);
        close(c->sock[1]);
    }
    if (c->tmp) {
        unlink(c->tmp);
        g_free(c->tmp);
    }
}

/* A buffer in the window holding @data, or @len bytes of @fill */
static uint64_t win(Ctx *c, const void *data, size_t len)
{
    return qrestricted_put(c->d, data, len);
}

static uint64_t win_filled(Ctx *c, uint8_t byte, size_t len)
{
    uint64_t addr = qrestricted_put(c->d, NULL, len);

    qrestricted_fill(qts_of(c), addr, byte, len);
    return addr;
}

#define OUT(a, l) { .addr = (a), .len = (l), .write = false }
#define IN(a, l) { .addr = (a), .len = (l), .write = true }

static void ctx_socketpair(Ctx *c)
{
    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, c->sock), ==, 0);
}

/* ---- virtio-blk ------------------------------------------------------- */

static void blk_setup(Ctx *c, GString *before, GString *props,
                      GString *after)
{
    c->img = qrestricted_image(&c->m, DISK_SIZE);
    g_string_append_printf(before, "-drive if=none,id=d0,file=%s,format=raw",
                           c->img);
    g_string_append(props, ",drive=d0");
}

static void blk_io(Ctx *c)
{
    qrestricted_blk_roundtrip(c->d, c->vq[0], 0, 4 * SECTOR, 0x10, c->img);
    qrestricted_blk_roundtrip(c->d, c->vq[0], 100, 8 * SECTOR, 0x20, c->img);
}

static void blk_hostile(Ctx *c)
{
    uint64_t data = qrestricted_canary(c->d, SECTOR);
    uint16_t idx = qrestricted_used_idx(c->d, c->vq[0]);
    uint64_t status;

    qrestricted_blk_submit(c->d, c->vq[0], &c->d->win->alloc,
                           VIRTIO_BLK_T_IN, 0, data, SECTOR, &status);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "buffer", data, SECTOR,
                              data, SECTOR);
    g_assert_cmphex(qtest_readb(qts_of(c), status), ==, 0xff);
}

/* ---- virtio-net ------------------------------------------------------- */

#define NET_HDR sizeof(struct virtio_net_hdr_mrg_rxbuf)

static void net_setup(Ctx *c, GString *before, GString *props,
                      GString *after)
{
    ctx_socketpair(c);
    g_string_append_printf(before, "-netdev socket,fd=%d,id=n0", c->sock[1]);
    g_string_append(props, ",netdev=n0");
}

/* A packet from the host: -netdev socket frames it with a length. */
static void net_send(Ctx *c, const char *payload)
{
    uint32_t be_len = htonl(strlen(payload) + 1);
    struct iovec iov[] = {
        { .iov_base = &be_len, .iov_len = sizeof(be_len) },
        { .iov_base = (char *)payload, .iov_len = strlen(payload) + 1 },
    };
    size_t total = sizeof(be_len) + strlen(payload) + 1;

    g_assert_cmpint(iov_send(c->sock[0], iov, 2, 0, total), ==, total);
}

static void net_io(Ctx *c)
{
    QTestState *qts = qts_of(c);
    QVirtQueue *rx = c->vq[0], *tx = c->vq[1];
    QRestrictedBuf rxb = IN(win(c, NULL, 128), 128);
    char buf[64];
    uint32_t head, len;

    /* receive into the window */
    head = qrestricted_submit_chain(c->d, rx, &rxb, 1);
    net_send(c, "restricted rx");
    len = qrestricted_wait_used(c->d, rx, head);
    g_assert_cmpint(len, ==, NET_HDR + sizeof("restricted rx"));
    qtest_memread(qts, rxb.addr + NET_HDR, buf, sizeof("restricted rx"));
    g_assert_cmpstr(buf, ==, "restricted rx");

    /* transmit from the window */
    {
        char pkt[NET_HDR + sizeof("restricted tx")] = { 0 };
        QRestrictedBuf txb;

        memcpy(pkt + NET_HDR, "restricted tx", sizeof("restricted tx"));
        txb = (QRestrictedBuf)OUT(win(c, pkt, sizeof(pkt)), sizeof(pkt));
        qrestricted_call(c->d, tx, &txb, 1);
        g_assert_cmpint(recv(c->sock[0], &len, sizeof(len), MSG_WAITALL),
                        ==, sizeof(len));
        g_assert_cmpint(ntohl(len), ==, sizeof("restricted tx"));
        g_assert_cmpint(recv(c->sock[0], buf, sizeof("restricted tx"),
                             MSG_WAITALL), ==, sizeof("restricted tx"));
        g_assert_cmpstr(buf, ==, "restricted tx");
    }
}

static void net_hostile(Ctx *c)
{
    QVirtQueue *rx = c->vq[0];
    uint64_t canary = qrestricted_canary(c->d, 128);
    QRestrictedBuf rxb = IN(canary, 128);
    uint16_t idx = qrestricted_used_idx(c->d, rx);

    qrestricted_submit_chain(c->d, rx, &rxb, 1);
    net_send(c, "to outside the window");
    qrestricted_assert_broken(c->d, rx, idx, "buffer", canary, 128, canary,
                              128);
}

/* ---- virtio-rng ------------------------------------------------------- */

static void rng_io(Ctx *c)
{
    uint8_t data[64];
    size_t i, zeros = 0;

    qrestricted_rng_read(c->d, c->vq[0], data, sizeof(data));
    for (i = 0; i < sizeof(data); i++) {
        zeros += !data[i];
    }
    g_assert_cmpint(zeros, <, 16);
}

static void rng_hostile(Ctx *c)
{
    uint64_t canary = qrestricted_canary(c->d, 64);
    QRestrictedBuf b = IN(canary, 64);
    uint16_t idx = qrestricted_used_idx(c->d, c->vq[0]);

    qrestricted_submit_chain(c->d, c->vq[0], &b, 1);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "buffer", canary, 64,
                              canary, 64);
}

/* ---- virtio-scsi, with a scsi-hd ------------------------------------ */

#define SCSI_REQUESTQ 2

static void scsi_setup(Ctx *c, GString *before, GString *props,
                       GString *after)
{
    c->img = qrestricted_image(&c->m, DISK_SIZE);
    g_string_append_printf(before, "-drive if=none,id=sd0,file=%s,"
                           "format=raw", c->img);
    g_string_append(after, "-device scsi-hd,drive=sd0,bus=dev0.0");
}

/*
 * A SCSI command to LUN 0 of target 0, its data at @data (in the window,
 * or not): the request and the response in the window.  Returns the
 * response's address; the command is queued, waited for if @wait.
 */
static uint64_t scsi_submit(Ctx *c, const uint8_t *cdb, size_t cdb_len,
                            uint64_t data, uint32_t len, bool data_in,
                            bool wait)
{
    struct virtio_scsi_cmd_req req = {
        .lun = { 1, 0, 0x40, 0 },
        .tag = cpu_to_le64(0x1234),
    };
    QRestrictedBuf b[3];
    uint64_t resp;
    int n = 0;

    memcpy(req.cdb, cdb, cdb_len);
    b[n++] = (QRestrictedBuf)OUT(win(c, &req, sizeof(req)), sizeof(req));
    if (len && !data_in) {
        b[n++] = (QRestrictedBuf)OUT(data, len);
    }
    resp = win_filled(c, 0xff, sizeof(struct virtio_scsi_cmd_resp));
    b[n++] = (QRestrictedBuf)IN(resp, sizeof(struct virtio_scsi_cmd_resp));
    if (len && data_in) {
        b[n++] = (QRestrictedBuf)IN(data, len);
    }
    if (wait) {
        qrestricted_call(c->d, c->vq[SCSI_REQUESTQ], b, n);
    } else {
        qrestricted_submit_chain(c->d, c->vq[SCSI_REQUESTQ], b, n);
    }
    return resp;
}

/* ... and its SCSI status, the virtio response checked */
static uint8_t scsi_cmd(Ctx *c, const uint8_t *cdb, size_t cdb_len,
                        uint64_t data, uint32_t len, bool data_in)
{
    struct virtio_scsi_cmd_resp resp;

    qtest_memread(qts_of(c), scsi_submit(c, cdb, cdb_len, data, len,
                                         data_in, true),
                  &resp, sizeof(resp));
    g_assert_cmpint(resp.response, ==, VIRTIO_SCSI_S_OK);
    return resp.status;
}

static void scsi_rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t n)
{
    memset(cdb, 0, 10);
    cdb[0] = op;
    stl_be_p(cdb + 2, lba);
    stw_be_p(cdb + 7, n);
}

static void scsi_io(Ctx *c)
{
    QTestState *qts = qts_of(c);
    static const uint8_t tur[6] = { 0x00 };
    static const uint8_t inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
    uint8_t cdb[10], data[36];
    uint8_t pattern[4 * SECTOR], back[4 * SECTOR];
    uint64_t buf;
    int fd;

    /* the first command may report the unit attention of the reset */
    scsi_cmd(c, tur, sizeof(tur), 0, 0, false);
    buf = win(c, NULL, sizeof(data));
    g_assert_cmpint(scsi_cmd(c, inquiry, sizeof(inquiry), buf, sizeof(data),
                             true), ==, 0);
    qtest_memread(qts, buf, data, sizeof(data));
    g_assert_cmpmem(data + 8, 8, "QEMU    ", 8);

    /* WRITE(10) from the window, READ(10) into it, and the image agrees */
    qrestricted_pattern(pattern, sizeof(pattern), 0x5a);
    scsi_rw10(cdb, 0x2a, 8, 4);
    g_assert_cmpint(scsi_cmd(c, cdb, 10, win(c, pattern, sizeof(pattern)),
                             sizeof(pattern), false), ==, 0);
    buf = win(c, NULL, sizeof(back));
    scsi_rw10(cdb, 0x28, 8, 4);
    g_assert_cmpint(scsi_cmd(c, cdb, 10, buf, sizeof(back), true), ==, 0);
    qtest_memread(qts, buf, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
    fd = open(c->img, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, back, sizeof(back), 8 * SECTOR), ==,
                    sizeof(back));
    close(fd);
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
}

static void scsi_hostile(Ctx *c)
{
    QVirtQueue *vq = c->vq[SCSI_REQUESTQ];
    uint64_t canary = qrestricted_canary(c->d, 4 * SECTOR);
    uint16_t idx = qrestricted_used_idx(c->d, vq);
    uint8_t cdb[10];
    uint64_t resp;

    scsi_rw10(cdb, 0x28, 0, 4);
    resp = scsi_submit(c, cdb, 10, canary, 4 * SECTOR, true, false);
    qrestricted_assert_broken(c->d, vq, idx, "buffer", canary, 4 * SECTOR,
                              canary, 4 * SECTOR);
    /* the response in the window is untouched too */
    g_assert_cmphex(qtest_readb(qts_of(c), resp + offsetof(
                        struct virtio_scsi_cmd_resp, response)), ==, 0xff);
}

/* ---- virtio-serial, with a virtconsole on a socket ------------------ */

static void serial_setup(Ctx *c, GString *before, GString *props,
                         GString *after)
{
    ctx_socketpair(c);
    g_string_append_printf(before, "-chardev socket,id=ch0,fd=%d",
                           c->sock[1]);
    /* port 0: a driver without VIRTIO_CONSOLE_F_MULTIPORT has it open */
    g_string_append(after, "-device virtconsole,chardev=ch0,bus=dev0.0");
}

static void serial_io(Ctx *c)
{
    QTestState *qts = qts_of(c);
    QRestrictedBuf rx = IN(win(c, NULL, 64), 64);
    QRestrictedBuf tx = OUT(win(c, "to the host", 11), 11);
    char buf[16] = { 0 };
    uint32_t head;

    /* host to guest, into the window */
    head = qrestricted_submit_chain(c->d, c->vq[0], &rx, 1);
    g_assert_cmpint(send(c->sock[0], "to the guest", 12, 0), ==, 12);
    g_assert_cmpint(qrestricted_wait_used(c->d, c->vq[0], head), ==, 12);
    qtest_memread(qts, rx.addr, buf, 12);
    g_assert_cmpstr(buf, ==, "to the guest");

    /* guest to host, from the window */
    qrestricted_call(c->d, c->vq[1], &tx, 1);
    memset(buf, 0, sizeof(buf));
    g_assert_cmpint(recv(c->sock[0], buf, 11, MSG_WAITALL), ==, 11);
    g_assert_cmpstr(buf, ==, "to the host");
}

static void serial_hostile(Ctx *c)
{
    uint64_t canary = qrestricted_canary(c->d, 64);
    QRestrictedBuf rx = IN(canary, 64);
    uint16_t idx = qrestricted_used_idx(c->d, c->vq[0]);

    qrestricted_submit_chain(c->d, c->vq[0], &rx, 1);
    g_assert_cmpint(send(c->sock[0], "to outside", 10, 0), ==, 10);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "buffer", canary, 64,
                              canary, 64);
}

/* ---- virtio-gpu, virtio-vga ----------------------------------------- */

#define GPU_W 16
#define GPU_H 16
#define GPU_BACKING (GPU_W * GPU_H * 4)
#define GPU_RESOURCE 1

static void gpu_setup(Ctx *c, GString *before, GString *props,
                      GString *after)
{
    g_autofree char *path = g_strdup_printf("%s/qtest-rdma-gpu-%d.state",
                                            g_get_tmp_dir(), getpid());

    c->tmp = g_steal_pointer(&path);
}

/*
 * A control command, @req (@len bytes, a virtio_gpu_ctrl_hdr first), and
 * @extra_len bytes at @extra after it, if any: its response of @resp_len
 * bytes in the window.  Returns the response's type.
 */
static uint32_t gpu_cmd(Ctx *c, void *req, size_t len, uint64_t extra,
                        uint32_t extra_len, void *resp, size_t resp_len)
{
    QRestrictedBuf b[3];
    struct virtio_gpu_ctrl_hdr hdr;
    uint64_t r = win_filled(c, 0xff, resp_len);
    int n = 0;

    b[n++] = (QRestrictedBuf)OUT(win(c, req, len), len);
    if (extra_len) {
        b[n++] = (QRestrictedBuf)OUT(extra, extra_len);
    }
    b[n++] = (QRestrictedBuf)IN(r, resp_len);
    qrestricted_call(c->d, c->vq[0], b, n);
    if (resp) {
        qtest_memread(qts_of(c), r, resp, resp_len);
    }
    qtest_memread(qts_of(c), r, &hdr, sizeof(hdr));
    return le32_to_cpu(hdr.type);
}

/* A command whose response carries no data: it must be OK_NODATA */
static void gpu_ok(Ctx *c, void *req, size_t len, uint64_t extra,
                   uint32_t extra_len)
{
    g_assert_cmphex(gpu_cmd(c, req, len, extra, extra_len, NULL,
                            sizeof(struct virtio_gpu_ctrl_hdr)), ==,
                    VIRTIO_GPU_RESP_OK_NODATA);
}

static void gpu_hdr(struct virtio_gpu_ctrl_hdr *hdr, uint32_t type)
{
    memset(hdr, 0, sizeof(*hdr));
    hdr->type = cpu_to_le32(type);
}

static void gpu_create(Ctx *c)
{
    struct virtio_gpu_resource_create_2d cr;

    memset(&cr, 0, sizeof(cr));
    gpu_hdr(&cr.hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
    cr.resource_id = cpu_to_le32(GPU_RESOURCE);
    cr.format = cpu_to_le32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
    cr.width = cpu_to_le32(GPU_W);
    cr.height = cpu_to_le32(GPU_H);
    gpu_ok(c, &cr, sizeof(cr), 0, 0);
}

/* RESOURCE_ATTACH_BACKING: one entry, @len bytes at @addr; queued only */
static uint32_t gpu_attach_submit(Ctx *c, uint64_t addr, uint32_t len,
                                  uint64_t *resp)
{
    struct virtio_gpu_resource_attach_backing ab;
    struct virtio_gpu_mem_entry ent = {
        .addr = cpu_to_le64(addr),
        .length = cpu_to_le32(len),
    };
    QRestrictedBuf b[3];

    memset(&ab, 0, sizeof(ab));
    gpu_hdr(&ab.hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
    ab.resource_id = cpu_to_le32(GPU_RESOURCE);
    ab.nr_entries = cpu_to_le32(1);
    *resp = win_filled(c, 0xff, sizeof(struct virtio_gpu_ctrl_hdr));
    b[0] = (QRestrictedBuf)OUT(win(c, &ab, sizeof(ab)), sizeof(ab));
    b[1] = (QRestrictedBuf)OUT(win(c, &ent, sizeof(ent)), sizeof(ent));
    b[2] = (QRestrictedBuf)IN(*resp, sizeof(struct virtio_gpu_ctrl_hdr));
    return qrestricted_submit_chain(c->d, c->vq[0], b, 3);
}

static void gpu_rect(struct virtio_gpu_rect *r)
{
    r->x = r->y = 0;
    r->width = cpu_to_le32(GPU_W);
    r->height = cpu_to_le32(GPU_H);
}

/*
 * Is @len bytes of @data in the device's state on the host?  This build
 * has no screendump (no pixman), so the state is saved the way migration
 * saves it, to a file, where virtio-gpu puts each resource's pixels.
 */
static bool gpu_host_has(Ctx *c, const void *data, size_t len)
{
    g_autofree char *uri = g_strdup_printf("file:%s", c->tmp);
    g_autofree char *stream = NULL;
    gint64 start = g_get_monotonic_time();
    gsize size;

    qtest_qmp_assert_success(qts_of(c), "{ 'execute': 'migrate',"
                             " 'arguments': { 'uri': %s } }", uri);
    for (;;) {
        QDict *rsp = qtest_qmp(qts_of(c), "{ 'execute': 'query-migrate' }");
        const char *st = qdict_get_try_str(qdict_get_qdict(rsp, "return"),
                                           "status");
        bool done = st && g_str_equal(st, "completed");

        g_assert_false(st && g_str_equal(st, "failed"));
        qobject_unref(rsp);
        if (done) {
            break;
        }
        g_assert(g_get_monotonic_time() - start <= QRESTRICTED_TIMEOUT_US);
        g_usleep(1000);
    }
    g_assert_true(g_file_get_contents(c->tmp, &stream, &size, NULL));
    return memmem(stream, size, data, len) != NULL;
}

static void gpu_io(Ctx *c)
{
    QTestState *qts = qts_of(c);
    struct virtio_gpu_ctrl_hdr hdr;
    struct virtio_gpu_resp_display_info info;
    struct virtio_gpu_transfer_to_host_2d t2h;
    struct virtio_gpu_set_scanout ss;
    struct virtio_gpu_resource_flush fl;
    uint8_t pixels[GPU_BACKING];
    uint64_t backing, resp;
    int i;

    /* GET_DISPLAY_INFO: scanout 0 is enabled, at the default size */
    gpu_hdr(&hdr, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    g_assert_cmphex(gpu_cmd(c, &hdr, sizeof(hdr), 0, 0, &info, sizeof(info)),
                    ==, VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    g_assert_cmpint(le32_to_cpu(info.pmodes[0].enabled), ==, 1);
    g_assert_cmpint(le32_to_cpu(info.pmodes[0].r.width), ==, 1280);
    g_assert_cmpint(le32_to_cpu(info.pmodes[0].r.height), ==, 800);

    /* a resource whose backing is in the window, and a picture in it */
    gpu_create(c);
    for (i = 0; i < GPU_W * GPU_H; i++) {
        pixels[4 * i] = i;              /* blue */
        pixels[4 * i + 1] = 0x5a ^ (i * 13);    /* green */
        pixels[4 * i + 2] = i * 7 + 3;  /* red */
        pixels[4 * i + 3] = 0;
    }
    backing = win(c, pixels, sizeof(pixels));
    qrestricted_wait_used(c->d, c->vq[0],
                          gpu_attach_submit(c, backing, sizeof(pixels),
                                            &resp));
    qtest_memread(qts, resp, &hdr, sizeof(hdr));
    g_assert_cmphex(le32_to_cpu(hdr.type), ==, VIRTIO_GPU_RESP_OK_NODATA);

    memset(&t2h, 0, sizeof(t2h));
    gpu_hdr(&t2h.hdr, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D);
    gpu_rect(&t2h.r);
    t2h.resource_id = cpu_to_le32(GPU_RESOURCE);
    gpu_ok(c, &t2h, sizeof(t2h), 0, 0);

    memset(&ss, 0, sizeof(ss));
    gpu_hdr(&ss.hdr, VIRTIO_GPU_CMD_SET_SCANOUT);
    gpu_rect(&ss.r);
    ss.resource_id = cpu_to_le32(GPU_RESOURCE);
    gpu_ok(c, &ss, sizeof(ss), 0, 0);

    memset(&fl, 0, sizeof(fl));
    gpu_hdr(&fl.hdr, VIRTIO_GPU_CMD_RESOURCE_FLUSH);
    gpu_rect(&fl.r);
    fl.resource_id = cpu_to_le32(GPU_RESOURCE);
    gpu_ok(c, &fl, sizeof(fl), 0, 0);

    /*
     * The host has the picture: with the only copy in the guest wiped, the
     * device's saved state still holds it.
     */
    g_assert_cmpint(qrestricted_int(c->d, "violations"), ==, 0);
    qrestricted_fill(qts, backing, 0, sizeof(pixels));
    g_assert_true(gpu_host_has(c, pixels, sizeof(pixels)));
}

/* GET_DISPLAY_INFO with its response outside the window */
static void gpu_hostile(Ctx *c)
{
    struct virtio_gpu_ctrl_hdr hdr;
    size_t len = sizeof(struct virtio_gpu_resp_display_info);
    uint64_t canary = qrestricted_canary(c->d, len);
    uint16_t idx = qrestricted_used_idx(c->d, c->vq[0]);
    QRestrictedBuf b[2];

    gpu_hdr(&hdr, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    b[0] = (QRestrictedBuf)OUT(win(c, &hdr, sizeof(hdr)), sizeof(hdr));
    b[1] = (QRestrictedBuf)IN(canary, len);
    qrestricted_submit_chain(c->d, c->vq[0], b, 2);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "buffer", canary, len,
                              canary, len);
}

/*
 * RESOURCE_ATTACH_BACKING whose entry is guest RAM outside the window:
 * the command itself is in the window, so no virtqueue check sees it.
 */
static void gpu_hostile_backing(Ctx *c)
{
    uint64_t canary = qrestricted_canary(c->d, GPU_BACKING);
    struct virtio_gpu_transfer_to_host_2d t2h;
    uint64_t resp;
    uint16_t idx;

    gpu_create(c);
    idx = qrestricted_used_idx(c->d, c->vq[0]);
    gpu_attach_submit(c, canary, GPU_BACKING, &resp);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "resource backing",
                              canary, GPU_BACKING, canary, GPU_BACKING);

    /* a transfer from the backing that was refused does nothing either */
    memset(&t2h, 0, sizeof(t2h));
    gpu_hdr(&t2h.hdr, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D);
    gpu_rect(&t2h.r);
    t2h.resource_id = cpu_to_le32(GPU_RESOURCE);
    {
        QRestrictedBuf b[2] = {
            OUT(win(c, &t2h, sizeof(t2h)), sizeof(t2h)),
            IN(win_filled(c, 0xff, sizeof(struct virtio_gpu_ctrl_hdr)),
               sizeof(struct virtio_gpu_ctrl_hdr)),
        };

        qrestricted_submit_chain(c->d, c->vq[0], b, 2);
        qrestricted_settle(qts_of(c));
        g_assert_cmpint(qrestricted_used_idx(c->d, c->vq[0]), ==, idx);
        g_assert_cmphex(qtest_readb(qts_of(c), b[1].addr), ==, 0xff);
    }
    g_assert_cmpint(qrestricted_int(c->d, "violations"), ==, 1);
}

/* ---- virtio-sound ------------------------------------------------------ */

static void snd_setup(Ctx *c, GString *before, GString *props,
                      GString *after)
{
    g_string_append(before, "-audiodev none,id=a0");
    g_string_append(props, ",audiodev=a0");
}

/* PCM_INFO of both streams: the request and its response, in the window */
static uint32_t snd_pcm_info_submit(Ctx *c, uint64_t resp)
{
    struct virtio_snd_query_info q = {
        .hdr.code = cpu_to_le32(VIRTIO_SND_R_PCM_INFO),
        .start_id = 0,
        .count = cpu_to_le32(2),
        .size = cpu_to_le32(sizeof(struct virtio_snd_pcm_info)),
    };
    QRestrictedBuf b[2] = {
        OUT(win(c, &q, sizeof(q)), sizeof(q)),
        IN(resp, sizeof(struct virtio_snd_hdr) +
           2 * sizeof(struct virtio_snd_pcm_info)),
    };

    return qrestricted_submit_chain(c->d, c->vq[0], b, 2);
}

static void snd_io(Ctx *c)
{
    struct {
        struct virtio_snd_hdr hdr;
        struct virtio_snd_pcm_info info[2];
    } QEMU_PACKED r;
    uint64_t resp = win_filled(c, 0xff, sizeof(r));

    qrestricted_wait_used(c->d, c->vq[0], snd_pcm_info_submit(c, resp));
    qtest_memread(qts_of(c), resp, &r, sizeof(r));
    g_assert_cmphex(le32_to_cpu(r.hdr.code), ==, VIRTIO_SND_S_OK);
    g_assert_cmpint(r.info[0].direction, ==, VIRTIO_SND_D_OUTPUT);
    g_assert_cmpint(r.info[1].direction, ==, VIRTIO_SND_D_INPUT);
    g_assert_cmpint(r.info[0].channels_min, >=, 1);
    g_assert_cmphex(le64_to_cpu(r.info[0].formats) &
                    (1ULL << VIRTIO_SND_PCM_FMT_S16), !=, 0);
}

static void snd_hostile(Ctx *c)
{
    size_t len = sizeof(struct virtio_snd_hdr) +
                 2 * sizeof(struct virtio_snd_pcm_info);
    uint64_t canary = qrestricted_canary(c->d, len);
    uint16_t idx = qrestricted_used_idx(c->d, c->vq[0]);

    snd_pcm_info_submit(c, canary);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "buffer", canary, len,
                              canary, len);
}

/* ---- virtio-crypto, with cryptodev-backend-builtin ------------------ */

#define CRYPTO_DATAQ 0
#define CRYPTO_CTRLQ 1

/* AES-128-CBC, the first block of NIST SP 800-38A F.2.1 */
static const uint8_t aes_key[16] = {
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
    0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
};
static const uint8_t aes_iv[16] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
static const uint8_t aes_plain[16] = {
    0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96,
    0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
};
static const uint8_t aes_cipher[16] = {
    0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46,
    0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9, 0x19, 0x7d,
};

static void crypto_setup(Ctx *c, GString *before, GString *props,
                         GString *after)
{
    g_string_append(before, "-object cryptodev-backend-builtin,id=c0");
    g_string_append(props, ",cryptodev=c0");
}

/* An AES-128-CBC encryption session, through the control queue */
static uint64_t crypto_session(Ctx *c)
{
    struct virtio_crypto_op_ctrl_req req;
    struct virtio_crypto_cipher_session_para *p =
        &req.u.sym_create_session.u.cipher.para;
    struct virtio_crypto_session_input in;
    QRestrictedBuf b[3];

    memset(&req, 0, sizeof(req));
    req.header.opcode = cpu_to_le32(VIRTIO_CRYPTO_CIPHER_CREATE_SESSION);
    req.header.algo = cpu_to_le32(VIRTIO_CRYPTO_CIPHER_AES_CBC);
    req.u.sym_create_session.op_type = cpu_to_le32(VIRTIO_CRYPTO_SYM_OP_CIPHER);
    p->algo = cpu_to_le32(VIRTIO_CRYPTO_CIPHER_AES_CBC);
    p->keylen = cpu_to_le32(sizeof(aes_key));
    p->op = cpu_to_le32(VIRTIO_CRYPTO_OP_ENCRYPT);
    b[0] = (QRestrictedBuf)OUT(win(c, &req, sizeof(req)), sizeof(req));
    b[1] = (QRestrictedBuf)OUT(win(c, aes_key, sizeof(aes_key)),
                               sizeof(aes_key));
    b[2] = (QRestrictedBuf)IN(win_filled(c, 0xff, sizeof(in)), sizeof(in));
    qrestricted_call(c->d, c->vq[CRYPTO_CTRLQ], b, 3);
    qtest_memread(qts_of(c), b[2].addr, &in, sizeof(in));
    g_assert_cmpint(le32_to_cpu(in.status), ==, VIRTIO_CRYPTO_OK);
    return le64_to_cpu(in.session_id);
}

/* Encrypt aes_plain into @dst; returns the address of the status byte */
static uint64_t crypto_encrypt_submit(Ctx *c, uint64_t session,
                                      uint64_t dst)
{
    struct virtio_crypto_op_data_req req;
    struct virtio_crypto_cipher_para *p = &req.u.sym_req.u.cipher.para;
    QRestrictedBuf b[5];

    memset(&req, 0, sizeof(req));
    req.header.opcode = cpu_to_le32(VIRTIO_CRYPTO_CIPHER_ENCRYPT);
    req.header.algo = cpu_to_le32(VIRTIO_CRYPTO_CIPHER_AES_CBC);
    req.header.session_id = cpu_to_le64(session);
    req.u.sym_req.op_type = cpu_to_le32(VIRTIO_CRYPTO_SYM_OP_CIPHER);
    p->iv_len = cpu_to_le32(sizeof(aes_iv));
    p->src_data_len = cpu_to_le32(sizeof(aes_plain));
    p->dst_data_len = cpu_to_le32(sizeof(aes_plain));
    b[0] = (QRestrictedBuf)OUT(win(c, &req, sizeof(req)), sizeof(req));
    b[1] = (QRestrictedBuf)OUT(win(c, aes_iv, sizeof(aes_iv)),
                               sizeof(aes_iv));
    b[2] = (QRestrictedBuf)OUT(win(c, aes_plain, sizeof(aes_plain)),
                               sizeof(aes_plain));
    b[3] = (QRestrictedBuf)IN(dst, sizeof(aes_plain));
    b[4] = (QRestrictedBuf)IN(win_filled(c, 0xff, 1), 1);
    qrestricted_submit_chain(c->d, c->vq[CRYPTO_DATAQ], b, 5);
    return b[4].addr;
}

static void crypto_io(Ctx *c)
{
    uint64_t session = crypto_session(c);
    uint64_t dst = win(c, NULL, sizeof(aes_plain));
    uint8_t out[16];
    uint64_t status;
    uint32_t head;

    head = c->vq[CRYPTO_DATAQ]->free_head;
    status = crypto_encrypt_submit(c, session, dst);
    qrestricted_wait_used(c->d, c->vq[CRYPTO_DATAQ], head);
    g_assert_cmpint(qtest_readb(qts_of(c), status), ==, VIRTIO_CRYPTO_OK);
    qtest_memread(qts_of(c), dst, out, sizeof(out));
    g_assert_cmpmem(out, sizeof(out), aes_cipher, sizeof(aes_cipher));
}

static void crypto_hostile(Ctx *c)
{
    uint64_t session = crypto_session(c);
    QVirtQueue *vq = c->vq[CRYPTO_DATAQ];
    uint64_t canary = qrestricted_canary(c->d, sizeof(aes_plain));
    uint16_t idx = qrestricted_used_idx(c->d, vq);
    uint64_t status = crypto_encrypt_submit(c, session, canary);

    qrestricted_assert_broken(c->d, vq, idx, "buffer", canary,
                              sizeof(aes_plain), canary, sizeof(aes_plain));
    g_assert_cmphex(qtest_readb(qts_of(c), status), ==, 0xff);
}

/* ---- virtio-input: keyboard, mouse, tablet, multitouch ------------- */

/* What the host sends (input-send-event) and the guest must read */
typedef struct InputCase {
    const char *events;         /* JSON */
    struct virtio_input_event expect[4];
    int n;
} InputCase;

static const InputCase input_cases[] = {
    { "[ { 'type': 'key', 'data': { 'down': true,"
      " 'key': { 'type': 'qcode', 'data': 'a' } } } ]",
      { { EV_KEY, KEY_A, 1 }, { EV_SYN, SYN_REPORT, 0 } }, 2 },
    { "[ { 'type': 'rel', 'data': { 'axis': 'x', 'value': 10 } } ]",
      { { EV_REL, REL_X, 10 }, { EV_SYN, SYN_REPORT, 0 } }, 2 },
    { "[ { 'type': 'abs', 'data': { 'axis': 'y', 'value': 1000 } } ]",
      { { EV_ABS, ABS_Y, 1000 }, { EV_SYN, SYN_REPORT, 0 } }, 2 },
    { "[ { 'type': 'mtt', 'data': { 'type': 'begin', 'slot': 0,"
      " 'tracking-id': 7, 'axis': 'x', 'value': 0 } },"
      " { 'type': 'mtt', 'data': { 'type': 'data', 'slot': 0,"
      " 'tracking-id': 7, 'axis': 'x', 'value': 500 } } ]",
      { { EV_ABS, ABS_MT_SLOT, 0 }, { EV_ABS, ABS_MT_TRACKING_ID, 7 },
        { EV_ABS, ABS_MT_POSITION_X, 500 }, { EV_SYN, SYN_REPORT, 0 } }, 4 },
};

static const InputCase *input_case(Ctx *c)
{
    static const char *const names[] = {
        "keyboard", "mouse", "tablet", "multitouch",
    };
    int i;

    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        if (g_str_equal(c->t->name, names[i])) {
            return &input_cases[i];
        }
    }
    g_assert_not_reached();
}

static void input_send(Ctx *c, const char *events)
{
    g_autofree char *cmd = g_strdup_printf("{ 'execute': 'input-send-event',"
                                           " 'arguments': { 'events': %s } }",
                                           events);

    qtest_qmp_assert_success(qts_of(c), cmd, NULL);
}

static void input_io(Ctx *c)
{
    const InputCase *ic = input_case(c);
    QVirtQueue *vq = c->vq[0];
    uint64_t ev[8];
    uint32_t head[8];
    int i;

    for (i = 0; i < G_N_ELEMENTS(ev); i++) {
        QRestrictedBuf b = IN(win_filled(c, 0xff, 8), 8);

        ev[i] = b.addr;
        head[i] = qrestricted_submit_chain(c->d, vq, &b, 1);
    }
    input_send(c, ic->events);
    for (i = 0; i < ic->n; i++) {
        struct virtio_input_event e;

        g_assert_cmpint(qrestricted_wait_used(c->d, vq, head[i]), ==, 8);
        qtest_memread(qts_of(c), ev[i], &e, sizeof(e));
        g_assert_cmpint(le16_to_cpu(e.type), ==, ic->expect[i].type);
        g_assert_cmpint(le16_to_cpu(e.code), ==, ic->expect[i].code);
        g_assert_cmpint(le32_to_cpu(e.value), ==, ic->expect[i].value);
    }
}

static void input_hostile(Ctx *c)
{
    QVirtQueue *vq = c->vq[0];
    uint64_t canary = qrestricted_canary(c->d, 8);
    QRestrictedBuf b = IN(canary, 8);
    uint16_t idx = qrestricted_used_idx(c->d, vq);

    qrestricted_submit_chain(c->d, vq, &b, 1);
    input_send(c, input_case(c)->events);
    qrestricted_assert_broken(c->d, vq, idx, "buffer", canary, 8, canary, 8);
}

/* ---- virtio-iommu ------------------------------------------------------ */

/* ATTACH or DETACH endpoint @ep to domain @domain; the tail at @tail */
static uint32_t iommu_submit(Ctx *c, uint8_t type, uint32_t domain,
                             uint32_t ep, uint64_t tail)
{
    struct virtio_iommu_req_attach req;
    size_t out = sizeof(req) - sizeof(struct virtio_iommu_req_tail);
    QRestrictedBuf b[2];

    memset(&req, 0, sizeof(req));
    req.head.type = type;
    req.domain = cpu_to_le32(domain);
    req.endpoint = cpu_to_le32(ep);
    b[0] = (QRestrictedBuf)OUT(win(c, &req, out), out);
    b[1] = (QRestrictedBuf)IN(tail, sizeof(struct virtio_iommu_req_tail));
    return qrestricted_submit_chain(c->d, c->vq[0], b, 2);
}

static uint8_t iommu_req(Ctx *c, uint8_t type, uint32_t domain, uint32_t ep)
{
    uint64_t tail = win_filled(c, 0xff, sizeof(struct virtio_iommu_req_tail));

    qrestricted_wait_used(c->d, c->vq[0],
                          iommu_submit(c, type, domain, ep, tail));
    return qtest_readb(qts_of(c), tail);
}

static void iommu_io(Ctx *c)
{
    /* endpoint 0 is the host bridge, 00:00.0, behind the IOMMU */
    g_assert_cmpint(iommu_req(c, VIRTIO_IOMMU_T_ATTACH, 1, 0), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(iommu_req(c, VIRTIO_IOMMU_T_ATTACH, 1, 444), ==,
                    VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(iommu_req(c, VIRTIO_IOMMU_T_DETACH, 1, 0), ==,
                    VIRTIO_IOMMU_S_OK);
}

static void iommu_hostile(Ctx *c)
{
    size_t len = sizeof(struct virtio_iommu_req_tail);
    uint64_t canary = qrestricted_canary(c->d, len);
    uint16_t idx = qrestricted_used_idx(c->d, c->vq[0]);

    iommu_submit(c, VIRTIO_IOMMU_T_ATTACH, 1, 0, canary);
    qrestricted_assert_broken(c->d, c->vq[0], idx, "buffer", canary, len,
                              canary, len);
}

/* ---- the device types ------------------------------------------------ */

static const DevType dev_types[] = {
    { "blk", "virtio-blk-pci", "virtio-blk-device", false, 1, 0,
      blk_setup, blk_io, blk_hostile },
    { "net", "virtio-net-pci", "virtio-net-device", false, 2, 0,
      net_setup, net_io, net_hostile },
    { "rng", "virtio-rng-pci", "virtio-rng-device", false, 1, 0,
      NULL, rng_io, rng_hostile },
    { "scsi", "virtio-scsi-pci", "virtio-scsi-device", false, 3, 0,
      scsi_setup, scsi_io, scsi_hostile },
    { "serial", "virtio-serial-pci", "virtio-serial-device", false, 2, 0,
      serial_setup, serial_io, serial_hostile },
    { "gpu", "virtio-gpu-pci", "virtio-gpu-device", false, 2, 0,
      gpu_setup, gpu_io, gpu_hostile, gpu_hostile_backing,
      "hostile-backing" },
    /* its modern BAR takes BAR 2 and 3, MSI-X 4, VGA 0: no BAR is free */
    { "vga", "virtio-vga", NULL, true, 2, 0,
      gpu_setup, gpu_io, gpu_hostile, gpu_hostile_backing,
      "hostile-backing" },
    { "sound", "virtio-sound-pci", "virtio-sound-device", false, 4, 0,
      snd_setup, snd_io, snd_hostile },
    { "crypto", "virtio-crypto-pci", "virtio-crypto-device", false, 2, 0,
      crypto_setup, crypto_io, crypto_hostile },
    { "keyboard", "virtio-keyboard-pci", "virtio-keyboard-device", false, 2,
      0, NULL, input_io, input_hostile },
    { "mouse", "virtio-mouse-pci", "virtio-mouse-device", false, 2, 0,
      NULL, input_io, input_hostile },
    { "tablet", "virtio-tablet-pci", "virtio-tablet-device", false, 2, 0,
      NULL, input_io, input_hostile },
    { "multitouch", "virtio-multitouch-pci", "virtio-multitouch-device",
      false, 2, 0, NULL, input_io, input_hostile },
    /* virtio-iommu-device: "VIRTIO-IOMMU is not attached to any PCI bus" */
    { "iommu", "virtio-iommu-pci", NULL, false, 2, 0,
      NULL, iommu_io, iommu_hostile },
};

/* Does @t take a window of kind @k on this target? */
static bool applies(const DevType *t, const Kind *k)
{
    const char *type = k->mmio ? t->mmio : t->pci;

    if (!type || (t->no_bar && !k->pool)) {
        return false;
    }
    /* virtio-vga is an x86 device */
    return qrestricted_machine_is_x86(k->machine) ||
           !g_str_equal(type, "virtio-vga");
}

typedef enum Which { IO, HOSTILE, HOSTILE_OWN } Which;

typedef struct Case {
    const Kind *k;
    const DevType *t;
    Which which;
} Case;

static void test_device(const void *opaque)
{
    const Case *cs = opaque;
    Ctx c = { .k = cs->k, .t = cs->t };

    ctx_start(&c);
    switch (cs->which) {
    case IO:
        cs->t->io(&c);
        g_assert_false(qrestricted_dev_status(c.d) &
                       VIRTIO_CONFIG_S_NEEDS_RESET);
        g_assert_cmpint(qrestricted_int(c.d, "violations"), ==, 0);
        g_assert_true(qrestricted_bool(c.d, "window-open"));
        break;
    case HOSTILE:
        cs->t->hostile(&c);
        break;
    case HOSTILE_OWN:
        cs->t->hostile_own(&c);
        break;
    }
    ctx_stop(&c);
}

/* ---- the census ------------------------------------------------------ */

/*
 * A device type that QEMU refuses with a window, and why: the census
 * checks the message.  Types not listed here or in dev_types[] must not
 * exist.
 */
typedef struct Refused {
    const char *prefix;         /* the types whose name starts so */
    const char *before;         /* backends it needs to get that far */
    const char *props;
    const char *message;
    bool pool_only;             /* refused only with a pool */
    bool bar_only;              /* refused only with a BAR */
} Refused;

#define VHOST_USER_WINDOW "unless the window is shared memory"
#define VHOST_KERNEL "its vhost backend maps all of guest RAM"
#define GUEST_RAM "the device works on guest RAM by design"
#define LEGACY "has a legacy interface"

static const Refused refused[] = {
    { "virtio-balloon", "", "", GUEST_RAM },
    { "virtio-mem", "-m 256M,maxmem=2G "
      "-object memory-backend-ram,id=m1,size=128M", ",memdev=m1", GUEST_RAM },
    { "virtio-pmem", "-m 256M,slots=2,maxmem=2G "
      "-object memory-backend-ram,id=m1,size=4M", ",memdev=m1", GUEST_RAM },
    { "vhost-scsi", "", ",wwpn=naa.5001405000000000", VHOST_KERNEL },
    { "vhost-vsock", "", ",guest-cid=3", VHOST_KERNEL },
    /* a window that is not shared memory: the backend could not map it */
    { "vhost-user-", "-chardev socket,id=c0,path=/tmp/qtest-rdma-none.sock,"
      "server=on,wait=off", ",chardev=c0", VHOST_USER_WINDOW },
    { "virtio-vga", "", "", "BAR 2 is in use by the virtio-pci modern BAR",
      false, true },
};

/*
 * Types that cannot be started on this machine at all, window or not,
 * and so cannot be tested here: the census only checks that they do not
 * start.
 */
static const char *const not_startable[] = {
    "virtio-input-host",        /* needs an evdev device, /dev/input/... */
    "vhost-user-device",        /* not user-creatable */
    /* "VIRTIO-IOMMU is not attached to any PCI bus" */
    "virtio-iommu-device",
};

/* A type that can be given a window, and whether it has disable-legacy */
typedef struct CensusType {
    char *name;
    bool legacy_prop;
} CensusType;

static bool has_property(QTestState *qts, const char *type, const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'device-list-properties',"
                           " 'arguments': { 'typename': %s } }", type);
    QListEntry *e;
    bool found = false;

    if (qdict_haskey(rsp, "return")) {
        QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
            QDict *p = qobject_to(QDict, qlist_entry_obj(e));

            found |= g_str_equal(qdict_get_str(p, "name"), prop);
        }
    }
    qobject_unref(rsp);
    return found;
}

static gint census_type_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(((const CensusType *)a)->name,
                  ((const CensusType *)b)->name);
}

/* The non-abstract types implementing @iface, sorted by name */
static GArray *types_implementing(const char *iface)
{
    QTestState *qts = qtest_init("-M none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-types', 'arguments':"
                           " { 'implements': %s, 'abstract': false } }",
                           iface);
    GArray *types = g_array_new(true, true, sizeof(CensusType));
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *t = qobject_to(QDict, qlist_entry_obj(e));
        CensusType ct = { g_strdup(qdict_get_str(t, "name")) };

        ct.legacy_prop = has_property(qts, ct.name, "disable-legacy");
        g_array_append_val(types, ct);
    }
    qobject_unref(rsp);
    qtest_quit(qts);
    g_array_sort(types, census_type_cmp);
    return types;
}

static const DevType *tested_type(const Kind *k, const char *type)
{
    int i;

    for (i = 0; i < G_N_ELEMENTS(dev_types); i++) {
        const DevType *t = &dev_types[i];
        const char *name = k->mmio ? t->mmio : t->pci;

        if (!name || !applies(t, k)) {
            continue;
        }
        /* the -non-transitional variant is the same device */
        if (g_str_equal(type, name) ||
            (g_str_has_prefix(type, name) &&
             g_str_equal(type + strlen(name), "-non-transitional"))) {
            return t;
        }
    }
    return NULL;
}

static const Refused *refused_type(const Kind *k, const char *type)
{
    int i;

    for (i = 0; i < G_N_ELEMENTS(refused); i++) {
        if (g_str_has_prefix(type, refused[i].prefix) &&
            !(refused[i].pool_only && !k->pool) &&
            !(refused[i].bar_only && k->pool)) {
            return &refused[i];
        }
    }
    return NULL;
}

/* The arguments that give @ct a window of kind @k, and its backends */
static char *window_args(const Kind *k, const CensusType *ct,
                         const char *before, const char *props)
{
    const char *pci = k->mmio ? "" : ct->legacy_prop &&
                      !g_str_has_suffix(ct->name, "transitional") ?
                      ",addr=4.0,disable-legacy=on" : ",addr=4.0";

    return g_strdup_printf("%s%s -device %s%s%s,%s", before,
                           k->pool ? " -object restricted-dma-pool,id=p0,"
                           "size=" POOL_SIZE : "", ct->name, pci, props,
                           k->pool ? "restricted-dma-pool=p0" :
                           "restricted-dma-bar-size=" BAR_SIZE);
}

/* The backends with which dev_types[] starts @t, for the census */
static const char *census_backends(const DevType *t, const char **props)
{
    static const struct {
        const char *name, *before, *props;
    } b[] = {
        { "blk", "-drive if=none,id=d0,file=null-co://,format=raw",
          ",drive=d0" },
        { "net", "-netdev user,id=n0", ",netdev=n0" },
        { "sound", "-audiodev none,id=a0", ",audiodev=a0" },
        { "crypto", "-object cryptodev-backend-builtin,id=c0",
          ",cryptodev=c0" },
    };
    int i;

    for (i = 0; i < G_N_ELEMENTS(b); i++) {
        if (g_str_equal(t->name, b[i].name)) {
            *props = b[i].props;
            return b[i].before;
        }
    }
    *props = "";
    return "";
}

/* A census finding that fails the case, after the other types ran */
#define CENSUS_FAIL(...) do {           \
        g_test_message(__VA_ARGS__);    \
        g_test_fail();                  \
    } while (0)

static void test_census(const void *opaque)
{
    const Kind *k = opaque;
    GArray *types = types_implementing(k->mmio ? "virtio-device" :
                                       "virtio-pci");
    g_autoptr(GString) report = g_string_new("");
    int tested = 0, nrefused = 0, skipped = 0;
    guint i, j;

    for (i = 0; i < types->len; i++) {
        const CensusType *ct = &g_array_index(types, CensusType, i);
        const char *type = ct->name;
        const DevType *t = tested_type(k, type);
        const Refused *r = t ? NULL : refused_type(k, type);
        bool legacy = g_str_has_suffix(type, "-transitional") &&
                      !g_str_has_suffix(type, "-non-transitional");
        g_autofree char *args = NULL;
        g_autofree char *err = NULL;
        const char *before = "", *props = "";
        bool skip = false;
        int st;

        for (j = 0; j < G_N_ELEMENTS(not_startable); j++) {
            skip |= g_str_has_prefix(type, not_startable[j]);
        }
        if (t) {
            before = census_backends(t, &props);
        } else if (r) {
            before = r->before;
            props = r->props;
        }
        args = window_args(k, ct, before, props);
        st = qrestricted_run(k->machine, args, &err);
        if (t) {
            if (st) {
                CENSUS_FAIL("%s with a %s window did not start:\n%s", type,
                            k->name, err);
            }
            tested++;
            g_string_append_printf(report, " %s: tested (%s);", type,
                                   t->name);
        } else if (skip) {
            if (!st) {
                CENSUS_FAIL("%s starts with a %s window: test it", type,
                            k->name);
            }
            skipped++;
            g_string_append_printf(report, " %s: cannot start here;", type);
        } else if (r || legacy) {
            const char *msg = r ? r->message : LEGACY;

            if (st != 1 || !strstr(err, msg)) {
                CENSUS_FAIL("%s with a %s window: exit status %d, expected "
                            "1 and '%s' in:\n%s", type, k->name, st, msg,
                            err);
            }
            nrefused++;
            g_string_append_printf(report, " %s: refused;", type);
        } else if (!st) {
            CENSUS_FAIL("%s starts with a %s window, and no case here tests "
                        "it", type, k->name);
        } else {
            CENSUS_FAIL("%s with a %s window: exit status %d, neither tested "
                        "nor known to be refused:\n%s", type, k->name, st,
                        err);
        }
    }
    g_test_message("%s: %d types tested, %d refused, %d cannot start here:%s",
                   k->name, tested, nrefused, skipped, report->str);
    g_assert_cmpint(tested, >, 0);
    for (i = 0; i < types->len; i++) {
        g_free(g_array_index(types, CensusType, i).name);
    }
    g_array_free(types, true);
}

/* ---------------------------------------------------------------------- */

static void add_cases(const Kind *kinds, size_t nkinds)
{
    size_t i, j;

    for (i = 0; i < nkinds; i++) {
        g_autofree char *census = g_strdup_printf("/virtio-rdma-devices/"
                                                  "census/%s", kinds[i].name);

        qtest_add_data_func(census, &kinds[i], test_census);
        for (j = 0; j < G_N_ELEMENTS(dev_types); j++) {
            const DevType *t = &dev_types[j];
            static const char *const names[] = { "io", "hostile", NULL };
            int w;

            if (!applies(t, &kinds[i])) {
                continue;
            }
            for (w = IO; w <= HOSTILE_OWN; w++) {
                Case *cs;
                g_autofree char *path = NULL;

                if (w == HOSTILE_OWN && !t->hostile_own) {
                    continue;
                }
                cs = g_new0(Case, 1);
                cs->k = &kinds[i];
                cs->t = t;
                cs->which = w;
                path = g_strdup_printf("/virtio-rdma-devices/%s/%s/%s",
                                       kinds[i].name, t->name,
                                       w == HOSTILE_OWN ? t->own_name :
                                       names[w]);
                qtest_add_data_func_full(path, cs, test_device, g_free);
            }
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    module_call_init(MODULE_INIT_QOM);

    if (qrestricted_machine_is_x86(NULL)) {
        add_cases(kinds_x86, G_N_ELEMENTS(kinds_x86));
    } else {
        add_cases(kinds_arm, G_N_ELEMENTS(kinds_arm));
    }
    return g_test_run();
}
