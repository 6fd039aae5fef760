//! Block sizing: how large a pool's next block is.
//!
//! Each heap gets a *preferred* block size: an eighth of the heap for heaps up to 1 GiB (so a
//! 256 MiB BAR window or a small mobile heap gets 32 MiB blocks at most), 256 MiB above (VMA's
//! figures). A pool's first block is small ([`super::PoolConfig::first_block_size`], 2 MiB by
//! default) and each new block doubles the largest one the pool has, up to the preferred size,
//! so a device with one small allocation reserves a few MiB per heap, and a busy pool reaches
//! large blocks after a handful of `vkAllocateMemory` calls. Growth stops early where a block's
//! metadata would run out before its bytes: a block holds at most `max_allocations_per_block`
//! allocations, so a pool of 4 KiB buffers (4096 of them fill 16 MiB) keeps 16 MiB blocks.
//! Requests above the dedicated threshold (half the preferred size) get a memory object of their
//! own. Every size is a power of two, at most `maxMemoryAllocationSize`.
#![forbid(unsafe_code)]

/// Heaps up to this size get blocks of an eighth of the heap.
pub const SMALL_HEAP_MAX: u64 = 1 << 30;
/// The preferred block size of large heaps.
pub const LARGE_HEAP_BLOCK: u64 = 256 << 20;

/// The preferred block size for a heap of `heap_size` bytes, before the device's limits.
pub const fn preferred_block_size(heap_size: u64) -> u64 {
    if heap_size <= SMALL_HEAP_MAX {
        floor_pow2(heap_size / 8)
    } else {
        LARGE_HEAP_BLOCK
    }
}

/// The largest power of two at most `v` (0 for 0).
pub const fn floor_pow2(v: u64) -> u64 {
    if v == 0 {
        0
    } else {
        1 << (63 - v.leading_zeros())
    }
}

/// The block sizes of one heap, all powers of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockSizing {
    /// A pool's first block.
    pub first: u64,
    /// Blocks grow up to this.
    pub preferred: u64,
    /// The largest block ever made: the preferred size, or more when the caller raised the
    /// dedicated threshold above it (a request under the threshold then grows a block to fit).
    pub largest: u64,
    /// Requests above this get a dedicated memory object.
    pub dedicated_threshold: u64,
}

impl BlockSizing {
    /// The sizing of a heap where no block can be made: every size zero, so every request goes
    /// dedicated.
    pub const NO_BLOCKS: Self = Self {
        first: 0,
        preferred: 0,
        largest: 0,
        dedicated_threshold: 0,
    };

    /// The sizing of a heap, from the pool configuration and the device's limits. `granule` is
    /// the smallest block (the sub-allocator's unit). [`BlockSizing::NO_BLOCKS`] when even a
    /// granule is larger than `max_object_size` (the device's `maxMemoryAllocationSize`).
    pub fn new(
        heap_size: u64,
        first: u64,
        preferred: Option<u64>,
        dedicated_threshold: Option<u64>,
        max_object_size: u64,
        granule: u64,
    ) -> Self {
        let max = floor_pow2(max_object_size);
        if max < granule {
            // A block is at least a granule and at most the device's largest memory object:
            // no block fits, so every request gets a dedicated object (of at most that size).
            return Self::NO_BLOCKS;
        }
        let preferred = floor_pow2(preferred.unwrap_or_else(|| preferred_block_size(heap_size)))
            .clamp(granule, max);
        let first = floor_pow2(first).clamp(granule, preferred);
        let dedicated_threshold = dedicated_threshold.unwrap_or(preferred / 2);
        let largest = dedicated_threshold
            .checked_next_power_of_two()
            .unwrap_or(max)
            .clamp(preferred, max);
        Self {
            first,
            preferred,
            largest,
            dedicated_threshold,
        }
    }

    /// Bytes a fresh block must have to hold `size` bytes at `align`: offset 0 is aligned to
    /// anything, so the size rounded up to a power of two (and at least `align`, so that the
    /// block's own alignment covers it).
    pub fn needed(size: u64, align: u64) -> Option<u64> {
        let needed = size.checked_next_power_of_two()?.max(align);
        Some(needed)
    }

    /// The size of a pool's next block when its largest block has `largest` bytes (0: it has
    /// none) and the request needs `needed`; `None` when no block may be that large (the request
    /// then goes dedicated).
    pub fn next_block(&self, largest: u64, needed: u64) -> Option<u64> {
        if needed > self.largest {
            return None;
        }
        let grown = if largest == 0 {
            self.first
        } else {
            largest.saturating_mul(2).min(self.preferred)
        };
        Some(grown.max(self.first).max(needed))
    }

    /// [`next_block`](Self::next_block) for a pool whose blocks hold at most `max_allocations`
    /// allocations each and whose live allocations average `mean` bytes (0: none live). A block
    /// larger than `max_allocations` such allocations runs out of metadata with most of its bytes
    /// unused, so growth stops at the power of two that holds them (never below the first block,
    /// nor below `needed`). Many small buffers then fill blocks of a few MiB, not 256 MiB ones.
    pub fn next_block_by_count(
        &self,
        largest: u64,
        needed: u64,
        max_allocations: u32,
        mean: u64,
    ) -> Option<u64> {
        let grown = self.next_block(largest, needed)?;
        if mean == 0 {
            return Some(grown);
        }
        let by_count = mean
            .saturating_mul(u64::from(max_allocations))
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX);
        Some(grown.min(by_count.max(self.first)).max(needed))
    }
}
