/*
 * rdma-blk-ref: the fork's reference driver for the restricted DMA window
 * in a virtio-pci BAR.
 *
 * It runs in guest userspace while no kernel driver is bound to the
 * device, and drives a modern virtio-blk-pci device through sysfs: its
 * config space (/sys/bus/pci/devices/D/config) and its BARs (resourceN,
 * mmapped).  It finds the restricted DMA capability (cfg_type 10),
 * negotiates VIRTIO_F_RESTRICTED_DMA and VIRTIO_F_ACCESS_PLATFORM, puts
 * its virtqueue and every buffer in the window at the bus address the
 * guest's PCI enumeration gave the BAR, and writes, reads back and checks
 * sectors, polling the used ring.
 *
 * It prints one line: "RDMA-REF: ok ..." or "RDMA-REF: fail <reason>".
 *
 * Usage: rdma-blk-ref [DDDD:BB:DD.F]   (default: the first virtio-blk
 *                                       device, 1af4:1042)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SYSFS "/sys/bus/pci/devices"

/* virtio-pci capabilities (virtio 1.x, 4.1.4) */
#define PCI_CAP_ID_VNDR 0x09
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CAP_RESTRICTED_DMA 10

/* struct virtio_pci_common_cfg */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_STATUS 0x14
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_DESCHI 0x24
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_AVAILHI 0x2c
#define COMMON_Q_USEDLO 0x30
#define COMMON_Q_USEDHI 0x34

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_RESTRICTED_DMA 27
#define F_VERSION_1 32
#define F_ACCESS_PLATFORM 33

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define SECTOR 512
#define QSIZE 16
#define NSECTORS 8

struct cap {
    int found;
    uint8_t bar;
    uint32_t offset, length;
    uint32_t notify_mult;
};

static const char *dev;
static struct cap caps[16];
static volatile uint8_t *bars[6];
static uint64_t bar_addr[6], bar_size[6];

static void fail(const char *fmt, ...)
{
    va_list ap;

    printf("RDMA-REF: fail ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static int sysfs_open(const char *file, int flags)
{
    char path[256];
    int fd;

    snprintf(path, sizeof(path), SYSFS "/%s/%s", dev, file);
    fd = open(path, flags);
    if (fd < 0) {
        fail("open %s: %s", path, strerror(errno));
    }
    return fd;
}

static unsigned long sysfs_hex(const char *d, const char *file)
{
    char path[256], buf[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), SYSFS "/%s/%s", d, file);
    f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof(buf), f)) {
        if (f) {
            fclose(f);
        }
        return 0;
    }
    fclose(f);
    return strtoul(buf, NULL, 16);
}

static const char *find_device(void)
{
    static char name[256];
    DIR *dir = opendir(SYSFS);
    struct dirent *e;

    if (!dir) {
        fail("no %s", SYSFS);
    }
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (sysfs_hex(e->d_name, "vendor") == 0x1af4 &&
            sysfs_hex(e->d_name, "device") == 0x1042) {
            snprintf(name, sizeof(name), "%s", e->d_name);
            closedir(dir);
            return name;
        }
    }
    closedir(dir);
    fail("no modern virtio-blk PCI device (1af4:1042)");
    return NULL;
}

static uint8_t cfg[256];

static void read_config(void)
{
    int fd = sysfs_open("config", O_RDONLY);

    if (pread(fd, cfg, sizeof(cfg), 0) != sizeof(cfg)) {
        fail("read config space: %s", strerror(errno));
    }
    close(fd);
}

static uint32_t cfg32(int off)
{
    return cfg[off] | cfg[off + 1] << 8 | cfg[off + 2] << 16 |
           (uint32_t)cfg[off + 3] << 24;
}

static void find_caps(void)
{
    int pos = cfg[0x34] & 0xfc, guard = 0;

    while (pos && guard++ < 48) {
        if (cfg[pos] == PCI_CAP_ID_VNDR) {
            uint8_t type = cfg[pos + 3];

            if (type < 16 && !caps[type].found) {
                caps[type].found = 1;
                caps[type].bar = cfg[pos + 4];
                caps[type].offset = cfg32(pos + 8);
                caps[type].length = cfg32(pos + 12);
                if (type == CAP_NOTIFY) {
                    caps[type].notify_mult = cfg32(pos + 16);
                }
            }
        }
        pos = cfg[pos + 1] & 0xfc;
    }
}

static void read_resources(void)
{
    char path[256], line[128];
    FILE *f;
    int i;

    snprintf(path, sizeof(path), SYSFS "/%s/resource", dev);
    f = fopen(path, "r");
    if (!f) {
        fail("open %s", path);
    }
    for (i = 0; i < 6 && fgets(line, sizeof(line), f); i++) {
        unsigned long long start, end, flags;

        if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) == 3 &&
            end > start) {
            bar_addr[i] = start;
            bar_size[i] = end - start + 1;
        }
    }
    fclose(f);
}

static volatile uint8_t *map_bar(int bar)
{
    char file[16];
    void *p;
    int fd;

    if (bars[bar]) {
        return bars[bar];
    }
    if (!bar_size[bar]) {
        fail("BAR %d is not assigned", bar);
    }
    snprintf(file, sizeof(file), "resource%d", bar);
    fd = sysfs_open(file, O_RDWR | O_SYNC);
    p = mmap(NULL, bar_size[bar], PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fail("mmap BAR %d: %s", bar, strerror(errno));
    }
    bars[bar] = p;
    return p;
}

static volatile uint8_t *common;

static uint8_t rd8(int off) { return *(volatile uint8_t *)(common + off); }
static uint16_t rd16(int off) { return *(volatile uint16_t *)(common + off); }
static uint32_t rd32(int off) { return *(volatile uint32_t *)(common + off); }
static void wr8(int off, uint8_t v) { *(volatile uint8_t *)(common + off) = v; }
static void wr16(int off, uint16_t v)
{
    *(volatile uint16_t *)(common + off) = v;
}
static void wr32(int off, uint32_t v)
{
    *(volatile uint32_t *)(common + off) = v;
}

static void wr64(int lo, uint64_t v)
{
    wr32(lo, v);
    wr32(lo + 4, v >> 32);
}

/* The split virtqueue, in the window */
struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static volatile uint8_t *win;       /* the window, mapped */
static uint64_t win_bus;            /* its bus address */
static uint64_t win_len;
static volatile struct desc *descs;
static volatile uint16_t *avail;    /* flags, idx, ring[] */
static volatile uint16_t *used;     /* flags, idx, then elems */
static volatile uint16_t *notify;
static uint16_t avail_idx, used_seen;

/* Offsets inside the window of what the driver puts there */
#define OFF_DESC 0x0000
#define OFF_AVAIL 0x1000
#define OFF_USED 0x2000
#define OFF_HDR 0x3000
#define OFF_STATUS 0x3100
#define OFF_DATA 0x4000

static uint8_t do_request(uint32_t type, uint64_t sector, uint32_t len)
{
    volatile uint8_t *hdr = win + OFF_HDR;
    volatile uint8_t *status = win + OFF_STATUS;
    struct timespec start, now;
    int i;

    for (i = 0; i < 16; i++) {
        hdr[i] = 0;
    }
    *(volatile uint32_t *)hdr = type;
    *(volatile uint64_t *)(hdr + 8) = sector;
    *status = 0xff;

    descs[0].addr = win_bus + OFF_HDR;
    descs[0].len = 16;
    descs[0].flags = 1;                     /* NEXT */
    descs[0].next = 1;
    descs[1].addr = win_bus + OFF_DATA;
    descs[1].len = len;
    descs[1].flags = 1 | (type == BLK_T_IN ? 2 : 0);    /* NEXT, WRITE */
    descs[1].next = 2;
    descs[2].addr = win_bus + OFF_STATUS;
    descs[2].len = 1;
    descs[2].flags = 2;                     /* WRITE */
    descs[2].next = 0;

    avail[2 + avail_idx % QSIZE] = 0;
    __sync_synchronize();
    avail[1] = ++avail_idx;
    __sync_synchronize();
    *notify = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (used[1] == used_seen) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 20) {
            fail("request %u sector %llu not completed (device status "
                 "0x%x)", type, (unsigned long long)sector,
                 rd8(COMMON_STATUS));
        }
    }
    used_seen++;
    __sync_synchronize();
    return *status;
}

int main(int argc, char **argv)
{
    uint64_t features;
    uint16_t qsize, noff;
    char buf[16];
    int fd, i, s;

    dev = argc > 1 ? argv[1] : find_device();

    /* enable memory decoding, then Bus Master */
    fd = sysfs_open("enable", O_WRONLY);
    if (write(fd, "1", 1) != 1) {
        fail("enable %s: %s", dev, strerror(errno));
    }
    close(fd);
    read_config();
    fd = sysfs_open("config", O_RDWR);
    buf[0] = cfg[4] | 0x06;                 /* MEMORY | MASTER */
    buf[1] = cfg[5];
    if (pwrite(fd, buf, 2, 4) != 2) {
        fail("set Bus Master: %s", strerror(errno));
    }
    close(fd);

    find_caps();
    read_resources();
    if (!caps[CAP_COMMON].found || !caps[CAP_NOTIFY].found) {
        fail("no virtio 1.x capabilities");
    }
    if (!caps[CAP_RESTRICTED_DMA].found) {
        fail("no restricted DMA capability (cfg_type 10)");
    }
    common = map_bar(caps[CAP_COMMON].bar) + caps[CAP_COMMON].offset;
    win = map_bar(caps[CAP_RESTRICTED_DMA].bar) +
          caps[CAP_RESTRICTED_DMA].offset;
    win_bus = bar_addr[caps[CAP_RESTRICTED_DMA].bar] +
              caps[CAP_RESTRICTED_DMA].offset;
    win_len = caps[CAP_RESTRICTED_DMA].length;
    if (win_len < OFF_DATA + NSECTORS * SECTOR) {
        fail("window of %llu bytes is too small",
             (unsigned long long)win_len);
    }

    /* reset, acknowledge, negotiate */
    wr8(COMMON_STATUS, 0);
    while (rd8(COMMON_STATUS)) {
        ;
    }
    wr8(COMMON_STATUS, S_ACKNOWLEDGE | S_DRIVER);
    wr32(COMMON_DFSELECT, 0);
    features = rd32(COMMON_DF);
    wr32(COMMON_DFSELECT, 1);
    features |= (uint64_t)rd32(COMMON_DF) << 32;
    for (i = 0; i < 3; i++) {
        static const int need[] = { F_VERSION_1, F_ACCESS_PLATFORM,
                                    F_RESTRICTED_DMA };
        if (!(features & (1ULL << need[i]))) {
            fail("device does not offer feature bit %d", need[i]);
        }
    }
    features = (1ULL << F_VERSION_1) | (1ULL << F_ACCESS_PLATFORM) |
               (1ULL << F_RESTRICTED_DMA);
    wr32(COMMON_GFSELECT, 0);
    wr32(COMMON_GF, features);
    wr32(COMMON_GFSELECT, 1);
    wr32(COMMON_GF, features >> 32);
    wr8(COMMON_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(rd8(COMMON_STATUS) & S_FEATURES_OK)) {
        fail("FEATURES_OK did not latch");
    }

    /* queue 0, all three rings in the window */
    wr16(COMMON_Q_SELECT, 0);
    qsize = rd16(COMMON_Q_SIZE);
    if (qsize < QSIZE) {
        fail("queue size %u", qsize);
    }
    wr16(COMMON_Q_SIZE, QSIZE);
    descs = (volatile struct desc *)(win + OFF_DESC);
    avail = (volatile uint16_t *)(win + OFF_AVAIL);
    used = (volatile uint16_t *)(win + OFF_USED);
    for (i = 0; i < 0x3000; i++) {
        win[i] = 0;
    }
    wr64(COMMON_Q_DESCLO, win_bus + OFF_DESC);
    wr64(COMMON_Q_AVAILLO, win_bus + OFF_AVAIL);
    wr64(COMMON_Q_USEDLO, win_bus + OFF_USED);
    noff = rd16(COMMON_Q_NOFF);
    notify = (volatile uint16_t *)(map_bar(caps[CAP_NOTIFY].bar) +
                                   caps[CAP_NOTIFY].offset +
                                   noff * caps[CAP_NOTIFY].notify_mult);
    wr16(COMMON_Q_ENABLE, 1);
    wr8(COMMON_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK |
        S_DRIVER_OK);

    /* write a pattern, read it back, sector by sector */
    for (s = 0; s < NSECTORS; s++) {
        volatile uint8_t *data = win + OFF_DATA;
        uint8_t st;

        for (i = 0; i < SECTOR; i++) {
            data[i] = (uint8_t)(s * 31 + i);
        }
        st = do_request(BLK_T_OUT, 100 + s, SECTOR);
        if (st != 0) {
            fail("write of sector %d: status %u", 100 + s, st);
        }
        for (i = 0; i < SECTOR; i++) {
            data[i] = 0;
        }
        st = do_request(BLK_T_IN, 100 + s, SECTOR);
        if (st != 0) {
            fail("read of sector %d: status %u", 100 + s, st);
        }
        for (i = 0; i < SECTOR; i++) {
            if (data[i] != (uint8_t)(s * 31 + i)) {
                fail("sector %d byte %d reads back 0x%02x", 100 + s, i,
                     data[i]);
            }
        }
    }
    if (rd8(COMMON_STATUS) & S_NEEDS_RESET) {
        fail("device needs reset");
    }
    printf("RDMA-REF: ok device=%s window=0x%llx+0x%llx bar=%u sectors=%d\n",
           dev, (unsigned long long)win_bus, (unsigned long long)win_len,
           caps[CAP_RESTRICTED_DMA].bar, NSECTORS);
    /* left negotiated, so that the host can see what the driver accepted */
    return 0;
}
