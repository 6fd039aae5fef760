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
//! one gives the unused tail of the block back at allocation time as the free buddies it is made
//! of, and on free reassembles the pieces and merges with whatever tail buddies are still free.
//! How finely is [`BuddyConfig::tail_precision_log2`]: by default a request keeps back at most
//! 1/32 of its power-of-two class beyond the unit rounding (about 1.5% on average), and the tail
//! costs at most five steps per call; with 32 it reserves exactly the size rounded up to a unit,
//! at up to one step per order. Every call is O(log n).
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
//! let b = buddy.allocate(100_000, 4096)?;
//! // 391 units of 256 B, rounded up to a 32nd of the 512-unit class: 400 units.
//! assert_eq!(buddy.stats().bytes_reserved, 1024 + 400 * 256);
//! buddy.free(b)?;
//! buddy.free(a)?;
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
//!
//! Metadata size: about `capacity / min_block / 32` words of bitmaps plus two words per slot.
#![forbid(unsafe_code)]

use core::fmt;

use crate::suballocator::{
    AllocError, Allocation, AllocatorId, AllocatorStats, ConfigError, FreeError, LiveRange,
    RawAllocation, SubAllocator,
};

#[cfg(test)]
mod tests;

/// Most units a configuration may have: unit offsets are kept in 32 bits.
const MAX_UNITS_LOG2: u32 = 32;
/// Orders 0..=32.
const MAX_ORDERS: usize = MAX_UNITS_LOG2 as usize + 1;
/// A bitmap of up to 2^32 + 1 bits needs at most six layers of 64-bit words (the top one word).
const MAX_LAYERS: usize = 6;
/// Words per slot of the live-allocation table: the requested size (0 = slot free), then the
/// unit offset (or the next free slot) in the low half and the slot's tag in the high half.
const SLOT_WORDS: usize = 2;
/// [`BuddyConfig::tail_precision_log2`] unless set otherwise.
pub const DEFAULT_TAIL_PRECISION_LOG2: u32 = 5;
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
    /// How finely the unused tail of a block is given back: a request of `n` units, whose
    /// power-of-two class is `2^k >= n`, reserves `n` rounded up to a multiple of
    /// `2^(k - tail_precision_log2)` units. With the default 5 at most 1/32 of the class (under
    /// 1/16 of the request, about 1.5% on average) is held back beyond the unit rounding, and
    /// allocate and free take at most about five steps each for the tail; 32 or more reserves
    /// exactly the size rounded up to `min_block`, at up to one step per order.
    pub tail_precision_log2: u32,
}

impl BuddyConfig {
    /// A configuration; [`BuddyAllocator::new`] validates it.
    pub const fn new(capacity: u64, min_block: u64, max_allocations: u32) -> Self {
        Self {
            capacity,
            min_block,
            max_allocations,
            tail_precision_log2: DEFAULT_TAIL_PRECISION_LOG2,
        }
    }

    /// The same configuration with another [`tail_precision_log2`](Self::tail_precision_log2).
    pub const fn with_tail_precision_log2(mut self, tail_precision_log2: u32) -> Self {
        self.tail_precision_log2 = tail_precision_log2;
        self
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

/// Where each bitmap layer and the slot table lie in the storage, derived once from the config.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Units managed (`capacity / min_block`), 1..=2^32.
    units: u64,
    /// log2 of `min_block`.
    unit_shift: u32,
    /// The largest order with a block: `floor(log2(units))`.
    top_order: u32,
    /// [`BuddyConfig::tail_precision_log2`], capped at 32.
    tail_precision_log2: u32,
    /// `layer_base[order][layer]`: first word of that layer of that order's bitmap. Layer 0 has a
    /// bit per block; the last layer is one word.
    layer_base: [[u32; MAX_LAYERS]; MAX_ORDERS],
    /// Layers per order.
    depth: [u8; MAX_ORDERS],
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
        let mut layer_base = [[0u32; MAX_LAYERS]; MAX_ORDERS];
        let mut depth = [0u8; MAX_ORDERS];
        // At most about 2^27 words for 2^32 units: fits the u32 layer bases.
        let mut total: u64 = 0;
        let mut order = 0;
        while order <= top_order {
            // One bit per whole block, plus one so the buddy of the last block (which may lie
            // past the end) is a readable, always-clear bit.
            let mut words = (units >> order) / 64 + 1;
            let mut layer = 0;
            loop {
                layer_base[order as usize][layer] = total as u32;
                total += words;
                layer += 1;
                if words == 1 {
                    break;
                }
                words = words.div_ceil(64);
            }
            depth[order as usize] = layer as u8;
            order += 1;
        }
        let bitmap_words = total;
        let slot_words = config.max_allocations as u64 * SLOT_WORDS as u64;
        let storage_len = bitmap_words + slot_words;
        if storage_len > usize::MAX as u64 {
            return Err(ConfigError::InvalidParameter);
        }
        Ok(Self {
            units,
            unit_shift,
            top_order,
            tail_precision_log2: if config.tail_precision_log2 < 32 {
                config.tail_precision_log2
            } else {
                32
            },
            layer_base,
            depth,
            slot_base: bitmap_words as usize,
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
    /// Per order, a layer-0 word index at or below its lowest non-zero word: when that word is
    /// non-zero it holds the lowest free block, found with one load instead of a walk down the
    /// summary layers (allocations pack at low offsets, so it usually is).
    first_word: [u32; MAX_ORDERS],
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
            first_word: [0; MAX_ORDERS],
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

    fn check_live(&self, allocation: &RawAllocation) -> Result<(), FreeError> {
        self.core
            .live_slot(self.storage.as_ref(), allocation)
            .map(|_| ())
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

    /// Reads the live-allocation table, so the ranges come by slot, not by offset: O(slots used
    /// since construction or the last reset). A range starts at the handle's offset; it reserves
    /// the size rounded up to a unit and to the tail precision.
    fn visit_live(&self, visit: &mut dyn FnMut(LiveRange)) {
        self.core.visit_live(self.storage.as_ref(), visit);
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
        self.first_word = [0; MAX_ORDERS];
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

    /// Whether block `index` of `order` is free.
    #[inline(always)]
    fn is_free(&self, words: &[u64], order: u32, index: u64) -> bool {
        let word = self.layout.layer_base[order as usize][0] as usize + (index >> 6) as usize;
        words[word] >> (index & 63) & 1 != 0
    }

    /// Marks block `index` of `order` free; when its bitmap word was empty, sets the summary bits
    /// above it too.
    #[inline(always)]
    fn set_free(&mut self, words: &mut [u64], order: u32, index: u64) {
        debug_assert!(order <= self.layout.top_order);
        debug_assert!(
            (index + 1) << order <= self.layout.units,
            "block past the end"
        );
        debug_assert!(!self.is_free(words, order, index), "block already free");
        let word = self.layout.layer_base[order as usize][0] as usize + (index >> 6) as usize;
        let old = words[word];
        words[word] = old | 1u64 << (index & 63);
        let first = &mut self.first_word[order as usize];
        *first = (*first).min((index >> 6) as u32);
        if old == 0 {
            self.summary_set(words, order, index >> 6);
        }
    }

    /// Layer 0 word `index` of `order` became non-zero: set its bit in the layers above, up to
    /// the first word that already had one, and the order's bit in the mask past the top layer.
    #[inline(always)]
    fn summary_set(&mut self, words: &mut [u64], order: u32, index: u64) {
        let bases = &self.layout.layer_base[order as usize];
        let depth = self.layout.depth[order as usize] as usize;
        let mut index = index;
        for &base in &bases[1..depth] {
            let word = base as usize + (index >> 6) as usize;
            let old = words[word];
            words[word] = old | 1u64 << (index & 63);
            if old != 0 {
                return;
            }
            index >>= 6;
        }
        self.nonempty |= 1u64 << order;
    }

    /// Marks a free block used; when its bitmap word becomes empty, clears the summary bits above
    /// it too.
    #[inline(always)]
    fn set_used(&mut self, words: &mut [u64], order: u32, index: u64) {
        debug_assert!(self.is_free(words, order, index), "block not free");
        let word = self.layout.layer_base[order as usize][0] as usize + (index >> 6) as usize;
        let new = words[word] & !(1u64 << (index & 63));
        words[word] = new;
        if new == 0 {
            self.summary_clear(words, order, index >> 6);
        }
    }

    /// Layer 0 word `index` of `order` became zero: clear its bit in the layers above, up to the
    /// first word that stays non-zero, and the order's bit in the mask past the top layer.
    #[inline(always)]
    fn summary_clear(&mut self, words: &mut [u64], order: u32, index: u64) {
        let bases = &self.layout.layer_base[order as usize];
        let depth = self.layout.depth[order as usize] as usize;
        let mut index = index;
        for &base in &bases[1..depth] {
            let word = base as usize + (index >> 6) as usize;
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
        let bases = &self.layout.layer_base[order as usize];
        let first = self.first_word[order as usize];
        let hinted = words[bases[0] as usize + first as usize];
        let index = if hinted != 0 {
            u64::from(first) << 6 | u64::from(hinted.trailing_zeros())
        } else {
            let depth = self.layout.depth[order as usize] as usize;
            let mut index = 0u64;
            for &base in bases[..depth].iter().rev() {
                let word = words[base as usize + index as usize];
                debug_assert!(word != 0, "summary bit without a free block below");
                index = index << 6 | u64::from(word.trailing_zeros());
            }
            self.first_word[order as usize] = (index >> 6) as u32;
            index
        };
        let word = bases[0] as usize + (index >> 6) as usize;
        let new = words[word] & !(1u64 << (index & 63));
        words[word] = new;
        if new == 0 {
            self.summary_clear(words, order, index >> 6);
        }
        index
    }

    /// Units reserved for `size` bytes (at least 1): rounded up to a unit, then to a multiple of
    /// its power-of-two class over `2^tail_precision_log2`.
    #[inline(always)]
    fn reserve_units(&self, size: u64) -> u64 {
        debug_assert!(size >= 1);
        let units = ((size - 1) >> self.layout.unit_shift) + 1;
        let grain = ceil_log2(units).saturating_sub(self.layout.tail_precision_log2);
        // Only a request past the largest block can round past the capacity.
        ((((units - 1) >> grain) + 1) << grain).min(self.layout.units)
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
        let units = self.reserve_units(size);
        let size_order = ceil_log2(units);
        let align_order = align.trailing_zeros().saturating_sub(shift);
        let order = size_order.max(align_order);
        let start = if order <= top {
            let candidates = self.nonempty >> order;
            if candidates == 0 {
                return Err(AllocError::OutOfMemory);
            }
            let found = order + candidates.trailing_zeros();
            let start = self.take_first(words, found) << found;
            // Split down to the order wanted and give the tail back in one pass: the free
            // pieces are the right siblings along the path from the block's last kept unit, at
            // the orders where that unit's offset in the block has a zero bit.
            let last = units - 1;
            let mut pieces = !last & ((1u64 << found) - 1);
            self.splits += u64::from(found - order)
                + if units == 1u64 << order {
                    0
                } else {
                    u64::from(order - units.trailing_zeros())
                };
            while pieces != 0 {
                let piece = pieces.trailing_zeros();
                pieces &= pieces - 1;
                self.set_free(words, piece, ((start + last) >> piece) + 1);
            }
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
        debug_assert!(start == 0 || (start << shift).is_multiple_of(align));

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

    /// See [`SubAllocator::visit_live`]: every slot below the watermark whose size is not 0.
    fn visit_live(&self, words: &[u64], visit: &mut dyn FnMut(LiveRange)) {
        let shift = self.layout.unit_shift;
        for slot in 0..self.slot_watermark {
            let at = self.slot_index(slot);
            let (Some(&size), Some(&entry)) = (words.get(at), words.get(at + 1)) else {
                return;
            };
            if size == 0 {
                continue;
            }
            visit(LiveRange {
                offset: (entry & 0xffff_ffff) << shift,
                reserved: self.reserve_units(size) << shift,
                requested: size,
            });
        }
    }

    // ---- free -------------------------------------------------------------------------------

    /// Where a live allocation's slot is and what it holds (`(word index, size, entry)`): what
    /// `free` validates before it changes anything, and all `check_live` does.
    #[inline(always)]
    fn live_slot(
        &self,
        words: &[u64],
        raw: &RawAllocation,
    ) -> Result<(usize, u64, u64), FreeError> {
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
        Ok((at, size, entry))
    }

    #[inline]
    fn free(&mut self, words: &mut [u64], allocation: Allocation) -> Result<(), FreeError> {
        let raw = allocation.into_raw();
        let (at, size, entry) = self.live_slot(words, &raw)?;
        let start = entry & 0xffff_ffff;
        let units = self.reserve_units(size);
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

    /// Frees `[start, start + units)`, placed as one block per set bit of `units` (largest first
    /// from `start`). Climbs from the smallest piece, the one holding the last unit: at an order
    /// where `units` has a set bit the sibling on the left is our own piece and joins without a
    /// look at the bitmaps; elsewhere the sibling is a tail buddy (or, past the allocation's
    /// block, any buddy) and joins if its bit is set. Where the climb stops, our pieces above it
    /// (which cannot merge: their right sibling holds the stop) are set free as they are.
    #[inline(always)]
    fn release(&mut self, words: &mut [u64], start: u64, units: u64) {
        let top = self.layout.top_order;
        let last = start + units - 1;
        let smallest = units.trailing_zeros();
        // The pieces above the smallest one.
        let own = units & !((2u64 << smallest) - 1);
        let mut order = smallest;
        let mut merges = 0u64;
        loop {
            let joined = (!(own >> order)).trailing_zeros();
            order += joined;
            merges += u64::from(joined);
            let index = last >> order;
            if order == top {
                // Only block 0 has the top order, and nothing merges past it.
                debug_assert!(index == 0);
                self.set_free(words, order, index);
                break;
            }
            // The block and its buddy share a bitmap word: one load decides and updates.
            let at = self.layout.layer_base[order as usize][0] as usize + (index >> 6) as usize;
            let word = words[at];
            let buddy_bit = 1u64 << ((index ^ 1) & 63);
            if word & buddy_bit != 0 {
                // Merge: the buddy leaves its free list, the pair goes one order up.
                let left = word & !buddy_bit;
                words[at] = left;
                if left == 0 {
                    self.summary_clear(words, order, index >> 6);
                }
                merges += 1;
                order += 1;
                continue;
            }
            debug_assert!((index + 1) << order <= self.layout.units);
            words[at] = word | 1u64 << (index & 63);
            let first = &mut self.first_word[order as usize];
            *first = (*first).min((index >> 6) as u32);
            if word == 0 {
                self.summary_set(words, order, index >> 6);
            }
            break;
        }
        let mut rest = own & !((2u64 << order) - 1);
        while rest != 0 {
            let piece = rest.trailing_zeros();
            rest &= rest - 1;
            self.set_free(words, piece, (last >> piece) - 1);
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
        // A request rounds up to its grain: the largest one that fits the run is the run rounded
        // down to its grain (a request for all the capacity is capped, so it fits).
        if run != self.layout.units {
            let grain = ceil_log2(run).saturating_sub(self.layout.tail_precision_log2);
            run = run >> grain << grain;
        }
        run.max(largest_block)
    }

    // ---- self-check -------------------------------------------------------------------------

    fn check_invariants(&self, words: &[u64]) -> Result<(), &'static str> {
        let layout = &self.layout;
        if words.len() < layout.storage_len {
            return Err("storage shorter than the layout");
        }
        let mut free_units = 0u64;
        for order in 0..=layout.top_order {
            let bases = &layout.layer_base[order as usize];
            let depth = layout.depth[order as usize] as usize;
            // Each summary bit is set exactly when the word below it is non-zero.
            for layer in 1..depth {
                let below = bases[layer - 1] as usize..bases[layer] as usize;
                let above_len = if layer + 1 < depth {
                    bases[layer + 1] as usize - bases[layer] as usize
                } else {
                    1
                };
                for i in 0..above_len * 64 {
                    let expect = i < below.len() && words[below.start + i] != 0;
                    let bit = words[bases[layer] as usize + i / 64] >> (i % 64) & 1 != 0;
                    if bit != expect {
                        return Err("summary bit disagrees with the word below it");
                    }
                }
            }
            let top_word = words[bases[depth - 1] as usize];
            if (top_word != 0) != (self.nonempty >> order & 1 != 0) {
                return Err("order mask disagrees with the bitmap");
            }
            let layer0_len = if depth > 1 {
                (bases[1] - bases[0]) as usize
            } else {
                1
            };
            let first = self.first_word[order as usize] as usize;
            if first >= layer0_len
                || words[bases[0] as usize..bases[0] as usize + first]
                    .iter()
                    .any(|&w| w != 0)
            {
                return Err("first-word hint is past the lowest free block");
            }
            let layer0_end = if depth > 1 {
                bases[1] as usize
            } else {
                bases[0] as usize + 1
            };
            for w in bases[0] as usize..layer0_end {
                let mut bitsw = words[w];
                while bitsw != 0 {
                    let index =
                        (w - bases[0] as usize) as u64 * 64 + u64::from(bitsw.trailing_zeros());
                    bitsw &= bitsw - 1;
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
        }
        if self.nonempty >> (layout.top_order + 1) != 0 {
            return Err("order mask names an order past the top");
        }
        // The slot table: live slots and the free list.
        let (mut live, mut requested, mut reserved) = (0u64, 0u64, 0u64);
        for slot in 0..self.slot_watermark {
            let at = self.slot_index(slot);
            let size = words[at];
            if size == 0 {
                continue;
            }
            let start = words[at + 1] & 0xffff_ffff;
            let units = self.reserve_units(size);
            if size > self.config.capacity || start + units > layout.units {
                return Err("live allocation past the capacity");
            }
            live += 1;
            requested += size;
            reserved += units;
            // No free block may overlap it: scan each order's bits over its range.
            for order in 0..=layout.top_order {
                let first = start >> order;
                let last = (start + units - 1) >> order;
                let base = layout.layer_base[order as usize][0] as usize;
                let mut i = first;
                while i <= last {
                    let word = words[base + (i >> 6) as usize] >> (i & 63);
                    if word != 0 && u64::from(word.trailing_zeros()) <= last - i {
                        return Err("free block overlaps a live allocation");
                    }
                    i = (i | 63) + 1;
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
