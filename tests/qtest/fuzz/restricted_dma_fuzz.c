/*
 * Restricted DMA support for the generic fuzzer
 *
 * Two things make the generic fuzzer useful on a virtio device whose DMA
 * is restricted to a window:
 *
 * - Its DMA patterns fill what a device reads from guest RAM.  A BAR
 *   window is not guest RAM, so restricted_dma_fuzz_window_read() tells
 *   it where a read from a window's RAM is, and the device reads the
 *   fuzzer's descriptors and buffers from its window as it would from RAM.
 *
 * - An oracle makes a confinement break a crash.  Guest RAM outside every
 *   window holds a canary, written before each input and checked after
 *   it.  A device that writes outside its window changes the canary; one
 *   that reads outside its window gets the read filled with a DMA pattern,
 *   which changes it too.  The device's own defence (a violation: the
 *   device marked broken, nothing touched) leaves the canary intact.
 *
 * A read through a MemoryRegionCache (the virtqueue rings) reports the
 * offset in the region, not the bus address: both are recognised, which
 * is unambiguous because a window's bus address is never below its size
 * (PCI does not map a BAR at 0, and guest RAM does not start at 0 on the
 * machines that have pools).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "qom/object.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "hw/boards.h"
#include "hw/qdev-core.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-restricted-dma.h"
#include "qapi/qapi-types-virtio.h"
#include "restricted_dma_fuzz.h"

#define CANARY 0xc5
#define CHUNK (64 * 1024)

typedef struct RamHole {
    uint64_t start, end;            /* offsets in guest RAM, [start, end) */
} RamHole;

static GPtrArray *devices;          /* VirtIODevice, with a window */
static GArray *holes;               /* RamHole, pools in guest RAM, sorted */
static uint8_t canary[CHUNK];

static int find_device(Object *obj, void *opaque)
{
    VirtIODevice *vdev = (VirtIODevice *)object_dynamic_cast(obj,
                                                         TYPE_VIRTIO_DEVICE);

    if (vdev && vdev->restricted_dma) {
        g_ptr_array_add(devices, vdev);
    }
    return 0;
}

/* Where @vdev's window is now: bus address, size, and backing region. */
static MemoryRegion *window(VirtIODevice *vdev, hwaddr *addr, hwaddr *size,
                            hwaddr *offset, VirtioRestrictedDmaKind *kind)
{
    VirtioRestrictedDmaStatus *s = virtio_restricted_dma_query(vdev);
    AddressSpace *as = s->kind == VIRTIO_RESTRICTED_DMA_KIND_POOL ?
                       &address_space_memory :
                       vdev->dma_as;
    MemoryRegion *mr = NULL;
    hwaddr len;

    *addr = s->window_address;
    *size = s->window_size;
    *kind = s->kind;
    if (s->window_open) {
        len = *size;
        mr = address_space_translate(as, *addr, offset, &len, false,
                                     MEMTXATTRS_UNSPECIFIED);
        if (!memory_region_is_ram(mr) || len < *size) {
            mr = NULL;
        }
    }
    qapi_free_VirtioRestrictedDmaStatus(s);
    return mr;
}

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const RamHole *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

void restricted_dma_fuzz_init(void)
{
    MemoryRegion *ram = current_machine->ram, *mr;
    hwaddr addr, size, offset;
    VirtioRestrictedDmaKind kind;
    int i;

    devices = g_ptr_array_new();
    holes = g_array_new(false, false, sizeof(RamHole));
    object_child_foreach_recursive(object_get_root(), find_device, NULL);
    if (!devices->len) {
        return;
    }
    memset(canary, CANARY, sizeof(canary));

    RCU_READ_LOCK_GUARD();
    for (i = 0; i < devices->len; i++) {
        VirtIODevice *vdev = g_ptr_array_index(devices, i);
        g_autofree char *path = object_get_canonical_path(OBJECT(vdev));

        mr = window(vdev, &addr, &size, &offset, &kind);
        printf("Restricted DMA: %s, window %s\n", path,
               kind == VIRTIO_RESTRICTED_DMA_KIND_POOL ? "in a pool" :
               "in a BAR");
        if (kind == VIRTIO_RESTRICTED_DMA_KIND_POOL && mr == ram) {
            RamHole r = { offset, offset + size };

            g_array_append_val(holes, r);
        }
    }
    g_array_sort(holes, range_cmp);
    printf("Restricted DMA: canary in guest RAM (%" PRIu64 " MiB) outside "
           "%u pool(s), checked after every input\n",
           memory_region_size(ram) >> 20, holes->len);
}

/* Call @fn on each stretch of guest RAM outside the pools. */
static void for_each_canaried(void (*fn)(uint8_t *p, uint64_t off,
                                         uint64_t len))
{
    MemoryRegion *ram = current_machine->ram;
    uint8_t *base = memory_region_get_ram_ptr(ram);
    uint64_t pos = 0, end = memory_region_size(ram);
    int i;

    for (i = 0; i <= holes->len; i++) {
        RamHole r = { end, end };

        if (i < holes->len) {
            r = g_array_index(holes, RamHole, i);
        }
        if (r.start > pos) {
            fn(base + pos, pos, MIN(r.start, end) - pos);
        }
        pos = MAX(pos, r.end);
    }
}

static void fill(uint8_t *p, uint64_t off, uint64_t len)
{
    memset(p, CANARY, len);
}

static void check(uint8_t *p, uint64_t off, uint64_t len)
{
    uint64_t i, n, j;

    for (i = 0; i < len; i += n) {
        n = MIN(CHUNK, len - i);
        if (memcmp(p + i, canary, n)) {
            for (j = i; p[j] == CANARY; j++) {
                continue;
            }
            fprintf(stderr, "Restricted DMA confinement broken: guest RAM "
                    "at offset 0x%" PRIx64 " holds 0x%02x, not the "
                    "canary: a device reached memory outside its window\n",
                    off + j, p[j]);
            abort();
        }
    }
}

typedef struct Describe {
    GHashTable *fuzzable;
    int index;
} Describe;

static bool describe_range(Int128 start, Int128 size, const MemoryRegion *mr,
                           hwaddr offset_in_region, void *opaque)
{
    Describe *d = opaque;
    bool restricted = false;
    int i;

    if (!g_hash_table_lookup(d->fuzzable, mr)) {
        return false;
    }
    for (i = 0; i < devices->len; i++) {
        DeviceState *vdev = g_ptr_array_index(devices, i);
        BusState *bus = qdev_get_parent_bus(vdev);

        restricted |= bus && mr->owner == OBJECT(bus->parent);
    }
    printf("Restricted DMA: mmio %d: %s at 0x%" PRIx64 " size 0x%" PRIx64
           "%s\n", d->index++, memory_region_name(mr),
           (uint64_t)int128_get64(start), (uint64_t)int128_get64(size),
           restricted ? ", restricted device" : "");
    return false;
}

/*
 * Once the fuzzer has mapped the BARs: where the windows are, and the
 * index the fuzzer's MMIO operations give each region it fuzzes, so that
 * tests/fuzz/run-fuzz can write seeds that set up a virtqueue.
 */
static void describe(GHashTable *fuzzable)
{
    Describe d = { fuzzable, 0 };
    hwaddr addr, size, offset;
    VirtioRestrictedDmaKind kind;
    int i;

    for (i = 0; i < devices->len; i++) {
        window(g_ptr_array_index(devices, i), &addr, &size, &offset, &kind);
        printf("Restricted DMA: window at 0x%" PRIx64 " size 0x%" PRIx64
               "\n", addr, size);
    }
    flatview_for_each_range(address_space_to_flatview(&address_space_memory),
                            describe_range, &d);
    fflush(stdout);
}

void restricted_dma_fuzz_arm(GHashTable *fuzzable)
{
    static bool described;

    if (devices && devices->len) {
        RCU_READ_LOCK_GUARD();
        if (!described) {
            describe(fuzzable);
            described = true;
        }
        for_each_canaried(fill);
    }
}

void restricted_dma_fuzz_check(void)
{
    if (devices && devices->len) {
        for_each_canaried(check);
    }
}

bool restricted_dma_fuzz_window_read(hwaddr *addr, hwaddr len,
                                     MemoryRegion *mr)
{
    hwaddr base, size, offset;
    VirtioRestrictedDmaKind kind;
    int i;

    if (!devices) {
        return false;
    }
    RCU_READ_LOCK_GUARD();
    for (i = 0; i < devices->len; i++) {
        if (window(g_ptr_array_index(devices, i), &base, &size, &offset,
                   &kind) != mr) {
            continue;
        }
        if (*addr >= base && *addr - base < size) {
            return true;                    /* a bus address */
        }
        if (*addr >= offset && *addr - offset < size) {
            *addr = base + (*addr - offset);  /* an offset in @mr */
            return true;
        }
    }
    return false;
}
