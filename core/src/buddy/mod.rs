//! An allocation-free buddy allocator over offsets, with its metadata in storage the caller
//! provides.
//!
//! The range `[0, capacity)` is cut into *units* of `min_block` bytes (a power of two). A block of
//! order `k` is `2^k` units at an offset that is a multiple of `2^k` units. Free blocks live in one
//! bitmap per order, each with summary layers above it (one bit per non-zero word below), so
//! finding the first free block of an order is one load per layer (at most six) and never a scan.
//! A 64-bit mask says which orders have any free block, so picking the order is one
//! `trailing_zeros`.
//!
//! Plain buddies round every request up to a power of two and lose up to half of each block. This
//! one reserves only the request rounded up to a unit: after taking a block it gives the unused
//! tail back as the free buddies it is made of (at most one per order), and on free it reassembles
//! the pieces and merges with whatever tail buddies are still free. Both walks take at most one
//! step per order, so every call is O(log n).
//!
//! The capacity need not be a power of two: the range starts as the free blocks of its binary
//! decomposition (for 12 units: 8 at 0, 4 at 8). A request larger than the largest of them is
//! placed at offset 0 across those top blocks.
//!
//! Live allocations sit in a fixed table of `max_allocations` slots; each slot carries a tag that
//! changes whenever the slot is reused, so a stale handle whose range now belongs to someone else
//! is refused instead of freeing the new owner's memory.
//!
//! # Storage
//! The metadata is a slice of `u64` words: a borrowed `&mut [u64]`, a `[u64; N]` array, or a heap
//! `Vec<u64>` / `Box<[u64]>` for std users. [`BuddyConfig::storage_len`] is a `const fn`, so the
//! array length can be computed at compile time:
//!
//! ```
//! use memkit_core::buddy::{BuddyAllocator, BuddyConfig};
//! use memkit_core::SubAllocator;
//!
//! const CONFIG: BuddyConfig = BuddyConfig::new(1 << 20, 256, 64);
//! const WORDS: usize = CONFIG.storage_len();
//!
//! let mut buddy = BuddyAllocator::new(CONFIG, [0u64; WORDS])?;
//! let a = buddy.allocate(1000, 16)?;
//! assert_eq!(buddy.stats().bytes_reserved, 1024);
//! buddy.free(a)?;
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
//!
//! Metadata size: about `capacity / min_block / 32` words of bitmaps plus two words per slot.
#![forbid(unsafe_code)]

use core::fmt;

use crate::suballocator::{
    AllocError, Allocation, AllocatorId, AllocatorStats, ConfigError, FreeError, RawAllocation,
    SubAllocator,
};

#[cfg(test)]
mod tests;

/// Most units a configuration may have: unit offsets are kept in 32 bits.
const MAX_UNITS_LOG2: u32 = 32;
/// Orders per tier. A node of tier `t` holds the free bits of orders `7t..7t + 6` over
/// `2^(7t + 6)` units: 64 + 32 + .. + 1 = 127 bits in two words, so the blocks a split, a tail
/// or a merge touches near one offset share a node.
const TIER_ORDERS: u32 = 7;
/// Tiers for orders 0..=32.
const MAX_TIERS: usize = 5;
/// Words per node.
const NODE_WORDS: usize = 2;
/// Summary layers per tier: a bit per node, then a bit per word below, up to one word; 2^26 + 1
/// nodes need five.
const MAX_LAYERS: usize = 5;
/// First bit, in its node, of each local order's segment: `128 - 2^(7 - local)`.
const SEGMENT_START: [u32; TIER_ORDERS as usize] = [0, 64, 96, 112, 120, 124, 126];
/// The bits of each local order's segment within its word.
const SEGMENT_MASK: [u64; TIER_ORDERS as usize] = [
    !0,
    0xffff_ffff,
    0xffff << 32,
    0xff << 48,
    0xf << 56,
    0x3 << 60,
    0x1 << 62,
];
/// Words per slot of the live-allocation table: the requested size (0 = slot free), then the
/// unit offset (or the next free slot) in the low half and the slot's tag in the high half.
const SLOT_WORDS: usize = 2;
/// End of the free-slot list.
const NO_SLOT: u32 = u32::MAX;

/// What a [`BuddyAllocator`] manages and how much metadata it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BuddyConfig {
    /// Bytes managed: offsets `[0, capacity)`. A multiple of `min_block`, at most
    /// `min_block * 2^32`.
    pub capacity: u64,
    /// The unit of allocation in bytes (a power of two): requests are rounded up to it and every
    /// offset is a multiple of it.
    pub min_block: u64,
    /// Most allocations live at once (the size of the slot table).
    pub max_allocations: u32,
}

impl BuddyConfig {
    /// A configuration; [`BuddyAllocator::new`] validates it.
    pub const fn new(capacity: u64, min_block: u64, max_allocations: u32) -> Self {
        Self {
            capacity,
            min_block,
            max_allocations,
        }
    }

    /// Storage words (`u64`) this configuration needs, or the reason it is invalid.
    pub const fn try_storage_len(&self) -> Result<usize, ConfigError> {
        match Layout::new(self) {
            Ok(layout) => Ok(layout.storage_len),
            Err(e) => Err(e),
        }
    }

    /// Storage words (`u64`) this configuration needs; usable as an array length in a `const`.
    /// An invalid configuration gives 0, and [`BuddyAllocator::new`] then reports why.
    pub const fn storage_len(&self) -> usize {
        match self.try_storage_len() {
            Ok(n) => n,
            Err(_) => 0,
        }
    }
}

/// Where one tier's nodes and summary layers lie in the storage.
#[derive(Clone, Copy, Debug)]
struct TierLayout {
    /// First word of the node array.
    node_base: u32,
    /// Nodes in the tier (whole ones, plus one so the buddy of the last block, which may lie past
    /// the end, is a readable, always-clear bit).
    nodes: u32,
    /// Summary layers (the last has one group).
    depth: u32,
    /// First word of each summary layer. Layer 0 has, per group of 64 nodes, one word per local
    /// order (bit `n % 64`: node `n` has a free block of that order); each layer above has, per
    /// group of 64 words below, one word per local order (a bit per non-zero word). The words of
    /// one group for the seven orders are adjacent, so updates near one offset share a line.
    summary: [u32; MAX_LAYERS],
}

/// Where the nodes, the summaries and the slot table lie in the storage, derived once from the
/// config.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Units managed (`capacity / min_block`), 1..=2^32.
    units: u64,
    /// log2 of `min_block`.
    unit_shift: u32,
    /// The largest order with a block: `floor(log2(units))`.
    top_order: u32,
    /// Per tier (`top_order / 7 + 1` of them).
    tiers: [TierLayout; MAX_TIERS],
    /// First word of the slot table.
    slot_base: usize,
    /// Slots in the table.
    max_slots: u32,
    /// Words in all.
    storage_len: usize,
}

impl Layout {
    const fn new(config: &BuddyConfig) -> Result<Self, ConfigError> {
        if config.capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if !config.min_block.is_power_of_two() {
            return Err(ConfigError::NotPowerOfTwo);
        }
        let unit_shift = config.min_block.trailing_zeros();
        if config.capacity & (config.min_block - 1) != 0 {
            return Err(ConfigError::CapacityNotMultipleOfGranule {
                granule: config.min_block,
            });
        }
        let units = config.capacity >> unit_shift;
        if units > 1 << MAX_UNITS_LOG2 {
            return Err(ConfigError::CapacityTooLarge {
                max: config.min_block.saturating_mul(1 << MAX_UNITS_LOG2),
            });
        }
        if config.max_allocations == 0 || config.max_allocations == NO_SLOT {
            return Err(ConfigError::InvalidParameter);
        }
        let top_order = 63 - units.leading_zeros();
        let mut tiers = [TierLayout {
            node_base: 0,
            nodes: 0,
            depth: 0,
            summary: [0; MAX_LAYERS],
        }; MAX_TIERS];
        // At most about 2^27 words for 2^32 units: fits the u32 bases.
        let mut total: u64 = 0;
        let mut tier = 0;
        while tier <= (top_order / TIER_ORDERS) as usize {
            let nodes = (units >> (TIER_ORDERS * tier as u32 + 6)) + 1;
            let t = &mut tiers[tier];
            t.node_base = total as u32;
            t.nodes = nodes as u32;
            total += nodes * NODE_WORDS as u64;
            let mut groups = nodes.div_ceil(64);
            let mut layer = 0;
            loop {
                t.summary[layer] = total as u32;
                total += groups * TIER_ORDERS as u64;
                layer += 1;
                if groups == 1 {
                    break;
                }
                groups = groups.div_ceil(64);
            }
            t.depth = layer as u32;
            tier += 1;
        }
        let slot_words = config.max_allocations as u64 * SLOT_WORDS as u64;
        let storage_len = total + slot_words;
        if storage_len > usize::MAX as u64 {
            return Err(ConfigError::InvalidParameter);
        }
        Ok(Self {
            units,
            unit_shift,
            top_order,
            tiers,
            slot_base: total as usize,
            max_slots: config.max_allocations,
            storage_len: storage_len as usize,
        })
    }
}

/// `ceil(log2(n))` for `n >= 1`.
#[inline]
const fn ceil_log2(n: u64) -> u32 {
    debug_assert!(n >= 1);
    64 - (n - 1).leading_zeros()
}

/// Where a block's free bit lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    tier: u32,
    local: u32,
    node: u64,
    word: usize,
    bit: u64,
}

/// A buddy allocator over offsets `[0, capacity)` whose metadata lives in `S`, a slice of `u64`
/// words the caller provides (see the [module docs](self) and [`BuddyConfig::storage_len`]).
///
/// Every call is O(log(capacity / min_block)); nothing allocates from a heap or panics on caller
/// input. A request reserves its size rounded up to `min_block`, not to a power of two.
pub struct BuddyAllocator<S> {
    storage: S,
    core: BuddyCore,
}

/// Everything but the storage, so the hot paths borrow the words and the state separately and are
/// compiled once, not once per storage type.
#[derive(Clone, Debug)]
struct BuddyCore {
    config: BuddyConfig,
    layout: Layout,
    id: AllocatorId,
    epoch: u32,
    /// Bit `k` set: order `k` has at least one free block.
    nonempty: u64,
    /// Head of the free-slot list (slots below `slot_watermark` that were freed).
    free_slot: u32,
    /// Slots at or above this have never been used since construction or reset.
    slot_watermark: u32,
    bytes_requested: u64,
    reserved_units: u64,
    peak_reserved_units: u64,
    live: u64,
    peak_live: u64,
    total_allocations: u64,
    total_frees: u64,
    splits: u64,
    merges: u64,
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> BuddyAllocator<S> {
    /// Builds an allocator over `config.capacity` bytes with its metadata in `storage`, which
    /// must hold at least [`BuddyConfig::storage_len`] words (their contents do not matter; extra
    /// words are left alone).
    ///
    /// Errors: [`ConfigError::ZeroCapacity`], [`ConfigError::NotPowerOfTwo`] (`min_block`),
    /// [`ConfigError::CapacityNotMultipleOfGranule`], [`ConfigError::CapacityTooLarge`] (more
    /// than 2^32 units), [`ConfigError::InvalidParameter`] (`max_allocations` of 0 or
    /// `u32::MAX`), [`ConfigError::StorageTooSmall`].
    pub fn new(config: BuddyConfig, mut storage: S) -> Result<Self, ConfigError> {
        let layout = Layout::new(&config)?;
        let provided = storage.as_mut().len();
        if provided < layout.storage_len {
            return Err(ConfigError::StorageTooSmall {
                required: layout.storage_len,
                provided,
            });
        }
        let mut core = BuddyCore {
            config,
            layout,
            id: AllocatorId::next(),
            epoch: 0,
            nonempty: 0,
            free_slot: NO_SLOT,
            slot_watermark: 0,
            bytes_requested: 0,
            reserved_units: 0,
            peak_reserved_units: 0,
            live: 0,
            peak_live: 0,
            total_allocations: 0,
            total_frees: 0,
            splits: 0,
            merges: 0,
        };
        core.clear(storage.as_mut());
        Ok(Self { storage, core })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> BuddyConfig {
        self.core.config
    }

    /// The reset epoch its allocations carry (starts at 0, wraps after 2^32 resets).
    pub fn epoch(&self) -> u32 {
        self.core.epoch
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Walks all the metadata and checks it is consistent: summary layers match the bitmaps, the
    /// order mask matches the summaries, every free block lies inside the capacity, no free block
    /// overlaps another or a live allocation, no two free buddies were left unmerged, and the
    /// free and reserved units add up to the capacity. Costs O(metadata + live allocations x
    /// orders); meant for tests and fuzzing.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.core.check_invariants(self.storage.as_ref())
    }
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> SubAllocator for BuddyAllocator<S> {
    #[inline]
    fn allocate(&mut self, size: u64, align: u64) -> Result<Allocation, AllocError> {
        self.core.allocate(self.storage.as_mut(), size, align)
    }

    #[inline]
    fn free(&mut self, allocation: Allocation) -> Result<(), FreeError> {
        self.core.free(self.storage.as_mut(), allocation)
    }

    fn reset(&mut self) {
        self.core.epoch = self.core.epoch.wrapping_add(1);
        self.core.clear(self.storage.as_mut());
    }

    fn stats(&self) -> AllocatorStats {
        self.core.stats(self.storage.as_ref())
    }

    fn capacity(&self) -> u64 {
        self.core.config.capacity
    }

    fn id(&self) -> AllocatorId {
        self.core.id
    }
}

impl<S> fmt::Debug for BuddyAllocator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuddyAllocator")
            .field("config", &self.core.config)
            .field("id", &self.core.id)
            .field("epoch", &self.core.epoch)
            .field("live", &self.core.live)
            .field(
                "reserved_bytes",
                &(self.core.reserved_units << self.core.layout.unit_shift),
            )
            .finish_non_exhaustive()
    }
}

impl BuddyCore {
    /// Empties the allocator: every top block free, every slot unused, counters zero.
    fn clear(&mut self, words: &mut [u64]) {
        let layout = self.layout;
        words[..layout.storage_len].fill(0);
        self.nonempty = 0;
        // The binary decomposition of the unit count, largest block first at offset 0.
        let mut base = 0u64;
        let mut bits = layout.units;
        while bits != 0 {
            let order = 63 - bits.leading_zeros();
            bits &= !(1u64 << order);
            self.set_free(words, order, base >> order);
            base += 1u64 << order;
        }
        debug_assert_eq!(base, layout.units);
        self.free_slot = NO_SLOT;
        self.slot_watermark = 0;
        self.bytes_requested = 0;
        self.reserved_units = 0;
        self.peak_reserved_units = 0;
        self.live = 0;
        self.peak_live = 0;
        self.total_allocations = 0;
        self.total_frees = 0;
        self.splits = 0;
        self.merges = 0;
    }

    // ---- the per-order bitmaps --------------------------------------------------------------

    /// Where block `index` of `order` lives: its tier, local order, node, word and bit.
    #[inline(always)]
    fn locate(&self, order: u32, index: u64) -> Place {
        let tier = order / TIER_ORDERS;
        let local = order % TIER_ORDERS;
        let per_node_log2 = 6 - local;
        let node = index >> per_node_log2;
        let bit = SEGMENT_START[local as usize] as u64 + (index & ((1u64 << per_node_log2) - 1));
        let word = self.layout.tiers[tier as usize].node_base as usize
            + node as usize * NODE_WORDS
            + (bit >> 6) as usize;
        Place {
            tier,
            local,
            node,
            word,
            bit: 1u64 << (bit & 63),
        }
    }

    /// Whether block `index` of `order` is free.
    #[inline(always)]
    fn is_free(&self, words: &[u64], order: u32, index: u64) -> bool {
        let place = self.locate(order, index);
        words[place.word] & place.bit != 0
    }

    /// Marks block `index` of `order` free; when its node had no free block of that order, sets
    /// the summary bits above it too.
    #[inline(always)]
    fn set_free(&mut self, words: &mut [u64], order: u32, index: u64) {
        debug_assert!(order <= self.layout.top_order);
        debug_assert!(
            (index + 1) << order <= self.layout.units,
            "block past the end"
        );
        debug_assert!(!self.is_free(words, order, index), "block already free");
        let place = self.locate(order, index);
        let old = words[place.word];
        words[place.word] = old | place.bit;
        if old & SEGMENT_MASK[place.local as usize] == 0 {
            self.summary_set(words, order, place);
        }
    }

    /// The node of `place` got its first free block of `order`: set its bit in the summary
    /// layers, up to the first word that already had one, and the order's bit in the mask past
    /// the top layer.
    #[inline]
    fn summary_set(&mut self, words: &mut [u64], order: u32, place: Place) {
        let tier = &self.layout.tiers[place.tier as usize];
        let mut index = place.node;
        for &base in &tier.summary[..tier.depth as usize] {
            let word =
                base as usize + (index >> 6) as usize * TIER_ORDERS as usize + place.local as usize;
            let old = words[word];
            words[word] = old | 1u64 << (index & 63);
            if old != 0 {
                return;
            }
            index >>= 6;
        }
        self.nonempty |= 1u64 << order;
    }

    /// Marks a free block used; when its node has no free block of that order left, clears the
    /// summary bits above it too.
    #[inline(always)]
    fn set_used(&mut self, words: &mut [u64], order: u32, index: u64) {
        debug_assert!(self.is_free(words, order, index), "block not free");
        let place = self.locate(order, index);
        self.clear_at(words, order, place);
    }

    #[inline(always)]
    fn clear_at(&mut self, words: &mut [u64], order: u32, place: Place) {
        let new = words[place.word] & !place.bit;
        words[place.word] = new;
        if new & SEGMENT_MASK[place.local as usize] == 0 {
            self.summary_clear(words, order, place);
        }
    }

    /// The node of `place` lost its last free block of `order`: clear its bit in the summary
    /// layers, up to the first word that stays non-zero, and the order's bit in the mask past the
    /// top layer.
    #[inline]
    fn summary_clear(&mut self, words: &mut [u64], order: u32, place: Place) {
        let tier = &self.layout.tiers[place.tier as usize];
        let mut index = place.node;
        for &base in &tier.summary[..tier.depth as usize] {
            let word =
                base as usize + (index >> 6) as usize * TIER_ORDERS as usize + place.local as usize;
            let new = words[word] & !(1u64 << (index & 63));
            words[word] = new;
            if new != 0 {
                return;
            }
            index >>= 6;
        }
        self.nonempty &= !(1u64 << order);
    }

    /// The lowest free block of `order`, which must have one; it is marked used.
    #[inline(always)]
    fn take_first(&mut self, words: &mut [u64], order: u32) -> u64 {
        debug_assert!(self.nonempty & 1u64 << order != 0);
        let tier_index = order / TIER_ORDERS;
        let local = order % TIER_ORDERS;
        let tier = &self.layout.tiers[tier_index as usize];
        let mut node = 0u64;
        for &base in tier.summary[..tier.depth as usize].iter().rev() {
            let word = words[base as usize + node as usize * TIER_ORDERS as usize + local as usize];
            debug_assert!(word != 0, "summary bit without a free block below");
            node = node << 6 | u64::from(word.trailing_zeros());
        }
        let start = SEGMENT_START[local as usize];
        let word = tier.node_base as usize + node as usize * NODE_WORDS + (start >> 6) as usize;
        let bits = words[word] & SEGMENT_MASK[local as usize];
        debug_assert!(bits != 0, "node summary without a free block in the node");
        let bit = bits.trailing_zeros();
        let index = node << (6 - local) | u64::from(bit - (start & 63));
        let place = Place {
            tier: tier_index,
            local,
            node,
            word,
            bit: 1u64 << bit,
        };
        debug_assert_eq!(place, self.locate(order, index));
        self.clear_at(words, order, place);
        index
    }

    // ---- allocate ---------------------------------------------------------------------------

    #[inline]
    fn allocate(
        &mut self,
        words: &mut [u64],
        size: u64,
        align: u64,
    ) -> Result<Allocation, AllocError> {
        if size == 0 {
            return Err(AllocError::ZeroSize);
        }
        if !align.is_power_of_two() {
            return Err(AllocError::AlignmentNotPowerOfTwo);
        }
        let capacity = self.config.capacity;
        if size > capacity {
            return Err(AllocError::SizeOverCapacity {
                requested: size,
                capacity,
            });
        }
        if self.free_slot == NO_SLOT && self.slot_watermark == self.layout.max_slots {
            return Err(AllocError::MetadataExhausted);
        }
        let shift = self.layout.unit_shift;
        let top = self.layout.top_order;
        let units = ((size - 1) >> shift) + 1;
        let size_order = ceil_log2(units);
        let align_order = align.trailing_zeros().saturating_sub(shift);
        let order = size_order.max(align_order);
        let start = if order <= top {
            let candidates = self.nonempty >> order;
            if candidates == 0 {
                return Err(AllocError::OutOfMemory);
            }
            let found = order + candidates.trailing_zeros();
            let mut index = self.take_first(words, found);
            // Split down to the order wanted, freeing the upper halves.
            let mut level = found;
            while level > order {
                level -= 1;
                index <<= 1;
                self.set_free(words, level, index | 1);
            }
            self.splits += u64::from(found - order);
            let start = index << order;
            self.give_back_tail(words, start, order, units);
            start
        } else if size_order <= top {
            // An alignment past the largest block is met only at offset 0.
            self.allocate_at_zero(words, size_order, units)?;
            0
        } else {
            self.allocate_across_top(words, units)?;
            0
        };
        debug_assert!(start + units <= self.layout.units);
        debug_assert!(start == 0 || (start << shift) % align == 0);

        let slot = self.claim_slot(words, size, start);
        let tag = (words[self.slot_index(slot) + 1] >> 32) as u32;
        self.bytes_requested += size;
        self.reserved_units += units;
        self.peak_reserved_units = self.peak_reserved_units.max(self.reserved_units);
        self.live += 1;
        self.peak_live = self.peak_live.max(self.live);
        self.total_allocations += 1;
        Ok(Allocation::from_raw(RawAllocation {
            offset: start << shift,
            size,
            allocator: self.id,
            epoch: self.epoch,
            slot,
            tag,
        }))
    }

    /// The block `[start, start + 2^order)` (units) is taken; keeps its first `units` and frees
    /// the rest as the buddies it is made of: from the cut upward, each block as large as the
    /// cut's alignment allows (at most one per order below `order`).
    #[inline(always)]
    fn give_back_tail(&mut self, words: &mut [u64], start: u64, order: u32, units: u64) {
        debug_assert!(units >= 1 && units <= 1u64 << order);
        debug_assert_eq!(start & ((1u64 << order) - 1), 0);
        let end = start + (1u64 << order);
        let mut cut = start + units;
        if cut == end {
            return;
        }
        // Halvings from `order` down to the smallest kept piece.
        self.splits += u64::from(order - units.trailing_zeros());
        while cut != end {
            // Inside the block, so its alignment is below `order`.
            let piece = cut.trailing_zeros();
            debug_assert!(piece < order);
            self.set_free(words, piece, cut >> piece);
            cut += 1u64 << piece;
        }
    }

    /// Places `units` at offset 0 in the free block that starts there, if it has an order of at
    /// least `size_order`.
    #[cold]
    fn allocate_at_zero(
        &mut self,
        words: &mut [u64],
        size_order: u32,
        units: u64,
    ) -> Result<(), AllocError> {
        let order = (size_order..=self.layout.top_order)
            .find(|&o| self.is_free(words, o, 0))
            .ok_or(AllocError::OutOfMemory)?;
        self.set_used(words, order, 0);
        self.give_back_tail(words, 0, order, units);
        Ok(())
    }

    /// Places `units` (more than the largest block) at offset 0 across the top blocks of the
    /// capacity's binary decomposition: each must be wholly free except the last, whose first
    /// free block must hold the remainder. Checks everything before changing anything.
    #[cold]
    fn allocate_across_top(&mut self, words: &mut [u64], units: u64) -> Result<(), AllocError> {
        debug_assert!(units > 1u64 << self.layout.top_order && units <= self.layout.units);
        // First pass: find where the run ends and the order of the block that ends it.
        let mut base = 0u64;
        let mut rest = units;
        let mut bits = self.layout.units;
        let mut last = None;
        while rest != 0 {
            let order = 63 - bits.leading_zeros();
            bits &= !(1u64 << order);
            let block = 1u64 << order;
            if rest >= block {
                if !self.is_free(words, order, base >> order) {
                    return Err(AllocError::OutOfMemory);
                }
                base += block;
                rest -= block;
            } else {
                let need = ceil_log2(rest);
                let free_order = (need..=order).find(|&o| self.is_free(words, o, base >> o));
                match free_order {
                    Some(o) => last = Some((base, o, rest)),
                    None => return Err(AllocError::OutOfMemory),
                }
                break;
            }
        }
        // Second pass: take the whole top blocks, then the head of the last one.
        let mut base = 0u64;
        let mut bits = self.layout.units;
        let whole_end = last.map_or(units, |(b, _, _)| b);
        while base < whole_end {
            let order = 63 - bits.leading_zeros();
            bits &= !(1u64 << order);
            self.set_used(words, order, base >> order);
            base += 1u64 << order;
        }
        if let Some((base, order, rest)) = last {
            self.set_used(words, order, base >> order);
            self.give_back_tail(words, base, order, rest);
        }
        Ok(())
    }

    #[inline(always)]
    fn slot_index(&self, slot: u32) -> usize {
        self.layout.slot_base + slot as usize * SLOT_WORDS
    }

    /// Takes a free slot (the caller checked there is one) and records the allocation in it.
    #[inline(always)]
    fn claim_slot(&mut self, words: &mut [u64], size: u64, start: u64) -> u32 {
        let slot = if self.free_slot != NO_SLOT {
            let slot = self.free_slot;
            self.free_slot = words[self.slot_index(slot) + 1] as u32;
            slot
        } else {
            let slot = self.slot_watermark;
            debug_assert!(slot < self.layout.max_slots);
            self.slot_watermark += 1;
            slot
        };
        let at = self.slot_index(slot);
        debug_assert_eq!(words[at], 0, "claimed slot is live");
        let tag = ((words[at + 1] >> 32) as u32).wrapping_add(1);
        words[at] = size;
        words[at + 1] = u64::from(tag) << 32 | start;
        slot
    }

    // ---- free -------------------------------------------------------------------------------

    #[inline]
    fn free(&mut self, words: &mut [u64], allocation: Allocation) -> Result<(), FreeError> {
        let raw = allocation.into_raw();
        if raw.allocator != self.id {
            return Err(FreeError::ForeignAllocation);
        }
        if raw.epoch != self.epoch {
            return Err(FreeError::StaleAllocation);
        }
        if raw.slot >= self.slot_watermark {
            return Err(FreeError::DoubleFree);
        }
        let at = self.slot_index(raw.slot);
        let size = words[at];
        let entry = words[at + 1];
        let shift = self.layout.unit_shift;
        let start = entry & 0xffff_ffff;
        // A free slot has size 0; a reused one has another tag; a forged handle another range.
        if size == 0
            || size != raw.size
            || (entry >> 32) as u32 != raw.tag
            || start << shift != raw.offset
        {
            return Err(FreeError::DoubleFree);
        }
        let units = ((size - 1) >> shift) + 1;
        self.release(words, start, units);
        words[at] = 0;
        words[at + 1] = entry & !0xffff_ffff | u64::from(self.free_slot);
        self.free_slot = raw.slot;
        self.bytes_requested -= size;
        self.reserved_units -= units;
        self.live -= 1;
        self.total_frees += 1;
        Ok(())
    }

    /// Frees `[start, start + units)`: the pieces it was placed as (one block per set bit of
    /// `units`, largest first from `start`), smallest piece first, merging each with its free
    /// buddies. Where the buddy on the left is the next piece to free, the two join without
    /// touching the bitmaps, so only the tail buddies (at the zero bits of `units`) and the
    /// buddies past the allocation are looked up.
    #[inline(always)]
    fn release(&mut self, words: &mut [u64], start: u64, units: u64) {
        let top = self.layout.top_order;
        let mut rest = units;
        let mut order = rest.trailing_zeros();
        rest &= rest - 1;
        let mut index = (start + rest) >> order;
        let mut merges = 0u64;
        loop {
            // Join the run of our own pieces on the left (the set bits of `rest` from `order`).
            let own = (!(rest >> order)).trailing_zeros();
            debug_assert!(own == 0 || index & 1 == 1);
            rest &= !(((1u64 << own) - 1) << order);
            order += own;
            index >>= own;
            merges += u64::from(own);
            if order == top {
                // Only block 0 has the top order, and nothing merges past it.
                debug_assert!(index == 0 && rest == 0);
                self.set_free(words, order, index);
                break;
            }
            let buddy = self.locate(order, index ^ 1);
            if words[buddy.word] & buddy.bit != 0 {
                // Merge: the buddy leaves the free blocks, the pair goes one order up.
                self.clear_at(words, order, buddy);
                merges += 1;
                index >>= 1;
                order += 1;
                continue;
            }
            self.set_free(words, order, index);
            if rest == 0 {
                break;
            }
            order = rest.trailing_zeros();
            rest &= rest - 1;
            index = (start + rest) >> order;
        }
        self.merges += merges;
    }

    // ---- statistics -------------------------------------------------------------------------

    fn stats(&self, words: &[u64]) -> AllocatorStats {
        let shift = self.layout.unit_shift;
        AllocatorStats {
            capacity: self.config.capacity,
            bytes_requested: self.bytes_requested,
            bytes_reserved: self.reserved_units << shift,
            peak_bytes_reserved: self.peak_reserved_units << shift,
            live_allocations: self.live,
            peak_live_allocations: self.peak_live,
            largest_free_run: self.largest_free_units(words) << shift,
            total_allocations: self.total_allocations,
            total_frees: self.total_frees,
            splits: self.splits,
            merges: self.merges,
        }
    }

    /// The largest request (alignment 1) that would succeed now, in units: the largest free
    /// block, or the run [`Self::allocate_across_top`] could place from offset 0.
    fn largest_free_units(&self, words: &[u64]) -> u64 {
        let largest_block = if self.nonempty == 0 {
            0
        } else {
            1u64 << (63 - self.nonempty.leading_zeros())
        };
        let top = self.layout.top_order;
        if self.layout.units.is_power_of_two() || !self.is_free(words, top, 0) {
            return largest_block;
        }
        let mut run = 0u64;
        let mut bits = self.layout.units;
        while bits != 0 {
            let order = 63 - bits.leading_zeros();
            bits &= !(1u64 << order);
            if self.is_free(words, order, run >> order) {
                run += 1u64 << order;
            } else {
                if let Some(o) = (0..order).rev().find(|&o| self.is_free(words, o, run >> o)) {
                    run += 1u64 << o;
                }
                break;
            }
        }
        run.max(largest_block)
    }

    // ---- self-check -------------------------------------------------------------------------

    fn check_invariants(&self, words: &[u64]) -> Result<(), &'static str> {
        let layout = &self.layout;
        if words.len() < layout.storage_len {
            return Err("storage shorter than the layout");
        }
        let orders = TIER_ORDERS as usize;
        for (t, tier) in layout.tiers[..=(layout.top_order / TIER_ORDERS) as usize]
            .iter()
            .enumerate()
        {
            let first_order = t as u32 * TIER_ORDERS;
            let nodes = tier.nodes as usize;
            // Node bits outside the segments of the tier's orders up to the top stay clear.
            let mut used = [0u64; NODE_WORDS];
            for local in 0..TIER_ORDERS.min(layout.top_order + 1 - first_order) {
                used[(SEGMENT_START[local as usize] / 64) as usize] |= SEGMENT_MASK[local as usize];
            }
            for n in 0..nodes {
                for (w, &mask) in used.iter().enumerate() {
                    if words[tier.node_base as usize + n * NODE_WORDS + w] & !mask != 0 {
                        return Err("bit set outside every order's segment");
                    }
                }
            }
            // Summary layer 0: a bit per node with a free block of the order; the layers
            // above: a bit per non-zero word below; the order mask: the top word is non-zero.
            for local in 0..orders {
                let mut below_len = nodes;
                for layer in 0..tier.depth as usize {
                    let groups = below_len.div_ceil(64);
                    for i in 0..groups * 64 {
                        let expect = i < below_len
                            && if layer == 0 {
                                let start = SEGMENT_START[local];
                                words[tier.node_base as usize
                                    + i * NODE_WORDS
                                    + (start / 64) as usize]
                                    & SEGMENT_MASK[local]
                                    != 0
                            } else {
                                words[tier.summary[layer - 1] as usize + i * orders + local] != 0
                            };
                        let word = words[tier.summary[layer] as usize + (i / 64) * orders + local];
                        if (word >> (i % 64) & 1 != 0) != expect {
                            return Err("summary bit disagrees with what is below it");
                        }
                    }
                    below_len = groups;
                }
                debug_assert_eq!(below_len, 1);
                let order = first_order + local as u32;
                let top_word = words[tier.summary[tier.depth as usize - 1] as usize + local];
                let in_mask = order < 64 && self.nonempty >> order & 1 != 0;
                if (top_word != 0) != in_mask {
                    return Err("order mask disagrees with the summaries");
                }
            }
        }
        let mut free_units = 0u64;
        for order in 0..=layout.top_order {
            let tier = &layout.tiers[(order / TIER_ORDERS) as usize];
            let blocks = u64::from(tier.nodes) << (6 - order % TIER_ORDERS);
            for index in 0..blocks {
                if !self.is_free(words, order, index) {
                    continue;
                }
                if (index + 1) << order > layout.units {
                    return Err("free block past the capacity");
                }
                if order < layout.top_order && self.is_free(words, order, index ^ 1) {
                    return Err("two free buddies left unmerged");
                }
                for up in order + 1..=layout.top_order {
                    if self.is_free(words, up, index >> (up - order)) {
                        return Err("free block inside a larger free block");
                    }
                }
                free_units += 1u64 << order;
            }
        }
        if self.nonempty >> (layout.top_order + 1) != 0 {
            return Err("order mask names an order past the top");
        }
        // The slot table: live slots and the free list.
        let shift = layout.unit_shift;
        let (mut live, mut requested, mut reserved) = (0u64, 0u64, 0u64);
        for slot in 0..self.slot_watermark {
            let at = self.slot_index(slot);
            let size = words[at];
            if size == 0 {
                continue;
            }
            let start = words[at + 1] & 0xffff_ffff;
            let units = ((size - 1) >> shift) + 1;
            if size > self.config.capacity || start + units > layout.units {
                return Err("live allocation past the capacity");
            }
            live += 1;
            requested += size;
            reserved += units;
            // No free block may overlap it.
            for order in 0..=layout.top_order {
                for index in start >> order..=(start + units - 1) >> order {
                    if self.is_free(words, order, index) {
                        return Err("free block overlaps a live allocation");
                    }
                }
            }
        }
        let mut free_slots = 0u64;
        let mut slot = self.free_slot;
        while slot != NO_SLOT {
            if slot >= self.slot_watermark || free_slots > u64::from(self.slot_watermark) {
                return Err("free-slot list is broken");
            }
            let at = self.slot_index(slot);
            if words[at] != 0 {
                return Err("live slot on the free-slot list");
            }
            free_slots += 1;
            slot = words[at + 1] as u32;
        }
        if live + free_slots != u64::from(self.slot_watermark) {
            return Err("slots are neither live nor on the free list");
        }
        if live != self.live || requested != self.bytes_requested || reserved != self.reserved_units
        {
            return Err("counters disagree with the slot table");
        }
        if self.peak_live < self.live || self.peak_reserved_units < self.reserved_units {
            return Err("a peak is below its current value");
        }
        if self.total_allocations.checked_sub(self.total_frees) != Some(self.live) {
            return Err("allocations minus frees is not the live count");
        }
        if free_units + reserved != layout.units {
            return Err("free and reserved units do not add up to the capacity");
        }
        Ok(())
    }
}
