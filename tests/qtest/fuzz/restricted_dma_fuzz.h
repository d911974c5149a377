/*
 * Restricted DMA support for the generic fuzzer
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef RESTRICTED_DMA_FUZZ_H
#define RESTRICTED_DMA_FUZZ_H

#include "exec/hwaddr.h"

typedef struct MemoryRegion MemoryRegion;

/*
 * Find the virtio devices with a restricted DMA window.  From then on,
 * guest RAM outside every window holds a canary that
 * restricted_dma_fuzz_check() verifies after each input.
 */
void restricted_dma_fuzz_init(void);

/*
 * Write the canary (again) into guest RAM outside every window.  The first
 * time, describe the windows and the regions in @fuzzable, with the index
 * the fuzzer's MMIO operations give each.
 */
void restricted_dma_fuzz_arm(GHashTable *fuzzable);

/*
 * Abort, with what was found where, if the canary changed: a device
 * wrote guest RAM outside its window, or read it (the generic fuzzer fills
 * what a device reads with its DMA patterns).
 */
void restricted_dma_fuzz_check(void);

/*
 * A device is reading @len bytes at @addr of @mr: a bus address, or an
 * offset in @mr for a read through a MemoryRegionCache.  If they are in a
 * restricted DMA window (a BAR's RAM, or a pool in guest RAM), make @addr
 * their bus address and return true: the fuzzer fills them with a pattern.
 */
bool restricted_dma_fuzz_window_read(hwaddr *addr, hwaddr len,
                                     MemoryRegion *mr);

#endif
