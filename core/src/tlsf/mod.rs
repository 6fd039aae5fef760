//! A two-level segregated fit (TLSF) sub-allocator over offsets, with alignment, whose metadata
//! lives in storage the caller provides.
//!
//! Free blocks are kept in size classes: a first level per power of two and, inside each, 32
//! linear subdivisions. Two bitmaps (one word for the first level, one per first-level row for
//! the second) say which class lists are non-empty, so finding a block is a couple of
//! find-first-set instructions and allocation and free are O(1). Freed blocks merge at once with
//! free physical neighbours, so no two free blocks ever touch.
//!
//! Compared with the [buddy allocator](crate::buddy), a block is split at any granule, not at
//! powers of two: a request reserves its size rounded up to the granule (plus, at most, the
//! alignment gap and the sliver described below), and the free space left after churn can be
//! placed again (the fragmentation probe of the benchmarks).
//!
//! # Metadata
//!
//! Everything the allocator knows is in a slice of [`TlsfNode`] (32 bytes each) the caller
//! provides (a borrowed slice, an array, a `Vec` or a `Box<[_]>`): the block nodes (offset,
//! state, size, physical neighbours, free-list neighbours or, allocated, the handle's tag).
//! [`TlsfConfig::storage_len`] is a `const fn` that says how many nodes a configuration needs, so
//! it can size an array. What every call touches lives in the allocator value itself (about
//! 8.5 KiB): the bitmaps (one word for the first level, 64 half-words for the second), one list
//! head per size class, and the counters.
//!
//! With `max_allocations` live allocations, no two adjacent free blocks means at most
//! `max_allocations + 1` free blocks, so `2 * max_allocations + 1` block nodes can never run out.
//!
//! # Handles
//!
//! An allocation carries its node index (`slot`) and a tag the node holds while the allocation
//! lives: every allocation gets a fresh tag (a 32-bit counter), so once the node is reused the old
//! handle no longer matches. With the instance id and the reset epoch, a double free, a stale
//! handle whose node now holds another allocation, a foreign handle and a handle from before
//! [`SubAllocator::reset`] are all refused without changing anything.
//!
//! # Choosing a block
//!
//! A request of `n` granules first looks at the head of the first non-empty class at or above the
//! class `n` falls in (good fit: the smallest blocks that might do). If that block is too small
//! (or its alignment padding makes it too small), the search moves to the first class whose every
//! block is guaranteed to fit `n` plus the worst-case padding. Only when neither finds a block
//! does a bounded scan walk the lists in between, so a request that some free block can serve is
//! not refused only because of the class arithmetic.
//!
//! Good fit first costs a node load and, when the head is too small, a second bitmap search;
//! taking the guaranteed class first was measured faster (about 2 ns per operation in the
//! sub-allocator benchmark) but skips the holes of the request's own class and, for aligned
//! requests, of the classes up to its worst-case padding. In the memory-type pools' game-frame
//! replay that left those holes unused and took 1508 MiB of device memory instead of 1280.
//!
//! Inside the block, requests below [`TlsfConfig::small_threshold`] are placed at its top end and
//! larger ones at its bottom end (unless the other end needs no alignment gap and the preferred
//! one does). Keeping small and large allocations apart keeps large free runs whole: in the
//! fragmentation probe (fill 90%, free half, place 256 KiB-4 MiB blocks) this places about 43% of
//! the free bytes again, against about 33% with one end only.
//!
//! # Alignment gaps and slivers
//!
//! An aligned start usually leaves a gap between the end of the block and the allocation. A gap
//! below the request's size and below 64 KiB stays with the allocation (it is reserved, and
//! freed with it), so an allocation splits its block once at most: the allocation takes one end,
//! the block keeps the rest. Returning such gaps as free blocks of their own, as this allocator
//! once did, costs a node, list work and later merges for a hole that only a smaller request
//! could use. Measured in the sub-allocator benchmark, keeping them made the fragmentation probe
//! about 33% faster and placed more of the free bytes again (50% instead of 42%), for 0.4% more
//! reserved memory on the game-frame mix. Larger gaps still become free blocks. Likewise, a rest
//! smaller than a sliver (256 bytes and an eighth of the request) stays with the allocation.
#![forbid(unsafe_code)]

use core::fmt;
use core::hint::select_unpredictable;

use crate::suballocator::{
    AllocError, Allocation, AllocatorId, AllocatorStats, ConfigError, FreeError, LiveRange,
    RawAllocation, SubAllocator,
};

#[cfg(test)]
mod tests;

/// log2 of the second-level subdivisions per power of two.
const SL_LOG2: u32 = 5;
/// Second-level subdivisions per first-level row.
const SL_COUNT: u64 = 1 << SL_LOG2;
/// The "no node" link. Node 0 is a scratch node that nothing lives in: writing through a `NIL`
/// link lands there harmlessly, so list and chain updates need no branch for a missing
/// neighbour (data-dependent branches, not memory, are what such allocators spend their time on).
const NIL: u32 = 0;
/// How many free blocks the last-resort scan visits before giving up (keeps allocation O(1)).
const FALLBACK_SCAN: u32 = 64;
/// The rest of a block beside an allocation, when smaller than this many bytes and than an
/// eighth of the request, stays with the allocation instead of becoming a free block of its own:
/// such slivers rarely serve a request, and splitting and merging them costs more than they are
/// worth.
const SLIVER_BYTES: u64 = 256;
/// See [`SLIVER_BYTES`]: a sliver is also below `size >> SLIVER_SHIFT`.
const SLIVER_SHIFT: u32 = 3;
/// An alignment gap (the space between a block's end and the aligned allocation nearest it)
/// below this many bytes, and below the request's size, stays with the allocation instead of
/// becoming a free block of its own. Such a gap could only serve a smaller request wedged between
/// two allocations, and splitting it off costs a node, list work and a merge when either
/// neighbour is freed; kept, an allocation costs one split at most.
const GAP_BYTES: u64 = 64 << 10;

/// The largest capacity a [`TlsfAllocator`] manages, in bytes (256 TiB).
pub const MAX_CAPACITY: u64 = 1 << 48;
/// The largest `max_allocations` a [`TlsfConfig`] accepts.
pub const MAX_ALLOCATIONS: u32 = 1 << 30;
/// The largest granule a [`TlsfConfig`] accepts (4 GiB).
pub const MAX_GRANULE: u64 = 1 << 32;

// Block node states, kept in the top two bits of the offset field. `STATE_UNUSED` is zero so that
// `TlsfNode::EMPTY` is an unused node.
const STATE_UNUSED: u32 = 0;
const STATE_FREE: u32 = 1;
const STATE_USED: u32 = 2;
const STATE_SHIFT: u32 = 62;
const OFFSET_MASK: u64 = (1 << STATE_SHIFT) - 1;

/// Size classes the list-head array has room for: rows are at most 45 (capacities up to 2^48
/// granules), 32 classes each. A power of two, so that masking a class indexes it without a
/// bounds check.
const MAX_CLASSES: usize = 2048;

// Field positions in a block node.
const W_OFFSET: usize = 0;
const W_SIZE: usize = 1;
const N_PHYS_PREV: usize = 0;
const N_PHYS_NEXT: usize = 1;
const N_LIST_PREV: usize = 2;
const N_LIST_NEXT: usize = 3;
/// An allocated block keeps its handle's tag where a free block keeps its list links.
const N_TAG: usize = N_LIST_PREV;
/// An allocated block keeps `reserved - requested` bytes here: below a granule plus a kept gap
/// and sliver (see [`used_node`]).
const N_SLACK: usize = N_LIST_NEXT;

/// One element of a [`TlsfAllocator`]'s metadata storage: 32 bytes, aligned to 32 so that a node
/// never straddles two cache lines. Its fields are private; create storage with
/// [`TlsfNode::EMPTY`] (or `Default`), e.g. `[TlsfNode::EMPTY; CONFIG.storage_len()]`.
///
/// A node holds a block: offset and state, size, physical neighbours, and either its free-list
/// neighbours or, allocated, its handle's tag and its slack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(32))]
pub struct TlsfNode {
    /// Block: offset in granules (state in the top two bits) and size in granules.
    wide: [u64; 2],
    /// Block: physical prev and next (or `NIL`); free-list prev and next (or `NIL`), which an
    /// allocated block uses for its tag and slack and an unused node for the next unused node.
    narrow: [u32; 4],
}

impl TlsfNode {
    /// A node holding nothing: the value to fill new storage with.
    pub const EMPTY: Self = Self {
        wide: [0; 2],
        narrow: [NIL; 4],
    };

    #[inline(always)]
    fn offset(&self) -> u64 {
        self.wide[W_OFFSET] & OFFSET_MASK
    }

    #[inline(always)]
    fn state(&self) -> u32 {
        (self.wide[W_OFFSET] >> STATE_SHIFT) as u32
    }

    #[inline(always)]
    fn size(&self) -> u64 {
        self.wide[W_SIZE]
    }

    #[inline(always)]
    fn phys_prev(&self) -> u32 {
        self.narrow[N_PHYS_PREV]
    }

    #[inline(always)]
    fn phys_next(&self) -> u32 {
        self.narrow[N_PHYS_NEXT]
    }

    #[inline(always)]
    fn list_prev(&self) -> u32 {
        self.narrow[N_LIST_PREV]
    }

    #[inline(always)]
    fn list_next(&self) -> u32 {
        self.narrow[N_LIST_NEXT]
    }
}

impl Default for TlsfNode {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// The parameters of a [`TlsfAllocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlsfConfig {
    /// Bytes managed: offsets `[0, capacity)`. A multiple of `granule`, at most [`MAX_CAPACITY`].
    pub capacity: u64,
    /// The unit every offset and size is rounded to: a power of two up to [`MAX_GRANULE`], for
    /// example 16 to 256 bytes.
    /// Smaller granules waste less per allocation; larger ones need fewer size classes.
    pub granule: u64,
    /// The most live allocations at once (1 to [`MAX_ALLOCATIONS`]); a request beyond it fails
    /// with [`AllocError::MetadataExhausted`]. The storage grows with it (two nodes each).
    pub max_allocations: u32,
    /// Requests smaller than this many bytes are placed at the top end of the free block chosen
    /// for them, larger ones at the bottom end, so that small and large allocations do not
    /// interleave and large free runs survive churn. [`TlsfConfig::new`] sets `capacity / 4096`
    /// (256 KiB in a 1 GiB block); 0 places everything at the bottom end. Either way, the end
    /// that needs no extra split for alignment wins when the preferred end would need one.
    pub small_threshold: u64,
}

impl TlsfConfig {
    /// A configuration (checked by [`TlsfAllocator::new`], not here), with the default
    /// `small_threshold` of `capacity / 4096`.
    pub const fn new(capacity: u64, granule: u64, max_allocations: u32) -> Self {
        Self {
            capacity,
            granule,
            max_allocations,
            small_threshold: capacity >> 12,
        }
    }

    /// The same configuration with another [`small_threshold`](Self::small_threshold).
    pub const fn with_small_threshold(self, small_threshold: u64) -> Self {
        Self {
            small_threshold,
            ..self
        }
    }

    /// Checks every parameter.
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if self.capacity > MAX_CAPACITY {
            return Err(ConfigError::CapacityTooLarge { max: MAX_CAPACITY });
        }
        if !self.granule.is_power_of_two() {
            return Err(ConfigError::NotPowerOfTwo);
        }
        if self.granule > MAX_GRANULE || !self.capacity.is_multiple_of(self.granule) {
            return Err(ConfigError::InvalidParameter);
        }
        if self.max_allocations == 0 || self.max_allocations > MAX_ALLOCATIONS {
            return Err(ConfigError::InvalidParameter);
        }
        Ok(())
    }

    /// How many [`TlsfNode`]s of storage this configuration needs; 0 when the configuration is
    /// invalid (then [`TlsfAllocator::new`] reports why). Usable as an array length:
    /// `[TlsfNode::EMPTY; CONFIG.storage_len()]`.
    pub const fn storage_len(&self) -> usize {
        if self.validate().is_err() {
            return 0;
        }
        let layout = Layout::of(self);
        layout.block_end as usize
    }
}

/// Where each kind of node sits in the storage: node 0 is the scratch node behind `NIL`, then the
/// block nodes.
#[derive(Clone, Copy, Debug)]
struct Layout {
    rows: u32,
    block_base: u32,
    block_end: u32,
}

impl Layout {
    /// Only for validated configurations: every sum fits in a u32 (at most about 2^31 + 2^10).
    const fn of(config: &TlsfConfig) -> Self {
        let units = config.capacity >> config.granule.trailing_zeros();
        let rows = if units < SL_COUNT {
            1
        } else {
            63 - units.leading_zeros() - SL_LOG2 + 2
        };
        let block_base = 1;
        Self {
            rows,
            block_base,
            block_end: block_base + 2 * config.max_allocations + 1,
        }
    }
}

/// The class whose range holds `units`: where a free block of that size is filed. Sizes below
/// `SL_COUNT` granules get one class each (row 0); above, row `r` splits `[2^(r+4), 2^(r+5))`
/// into `SL_COUNT` equal classes. Branch-free: or-ing in `SL_COUNT` makes row 0 take the general
/// formula with a shift of zero.
#[inline(always)]
fn floor_class(units: u64) -> u32 {
    let shift = 63 - (units | SL_COUNT).leading_zeros() - SL_LOG2;
    // Truncation intended: `units >> shift` is below 2 * SL_COUNT.
    (shift << SL_LOG2) + (units >> shift) as u32
}

/// The first class whose every block holds at least `units` (at least 1): the class after the one
/// `units - 1` falls in, whose lower bound is the first above `units - 1`. One bit scan.
#[inline(always)]
fn ceil_class(units: u64) -> u32 {
    floor_class(units - 1) + 1
}

/// Padding (in granules) that puts `offset` on a multiple of `align` (a power of two).
#[inline]
fn padding(offset: u64, align: u64) -> u64 {
    offset.wrapping_neg() & (align - 1)
}

/// Where an allocation went: its node, its aligned start and the granules it reserves (the
/// request rounded up, plus any gap or sliver it keeps).
#[derive(Clone, Copy)]
struct Placed {
    slot: u32,
    start: u64,
    reserved_units: u64,
}

/// The node of an allocation that reserves `units` granules from `start` for a request of `size`
/// bytes. Its slack (reserved bytes less `size`) fits in 32 bits: it is below a granule (at most
/// 2^32) plus a kept gap (below [`GAP_BYTES`]) and a sliver (below [`SLIVER_BYTES`]), and a
/// granule above 32 KiB leaves no gap or sliver small enough to keep.
#[inline(always)]
fn used_node(
    (start, units): (u64, u64),
    phys_prev: u32,
    phys_next: u32,
    tag: u32,
    size: u64,
    g: u32,
) -> TlsfNode {
    TlsfNode {
        wide: [start | (u64::from(STATE_USED) << STATE_SHIFT), units],
        // Truncation impossible: see above.
        narrow: [phys_prev, phys_next, tag, ((units << g) - size) as u32],
    }
}

/// A TLSF sub-allocator over `[0, capacity)` whose metadata lives in `S` (any
/// `AsRef<[TlsfNode]> + AsMut<[TlsfNode]>`: `&mut [TlsfNode]`, `[TlsfNode; N]`, `Vec<TlsfNode>`,
/// `Box<[TlsfNode]>`). Allocation and free are O(1); see the [module docs](self).
///
/// ```
/// use memkit_core::SubAllocator;
/// use memkit_core::tlsf::{TlsfAllocator, TlsfConfig, TlsfNode};
///
/// const CONFIG: TlsfConfig = TlsfConfig::new(1 << 20, 64, 16);
/// let mut tlsf = TlsfAllocator::new(CONFIG, [TlsfNode::EMPTY; CONFIG.storage_len()])?;
/// let a = tlsf.allocate(1000, 256)?;
/// assert_eq!(a.offset() % 256, 0);
/// tlsf.free(a)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TlsfAllocator<S> {
    storage: S,
    config: TlsfConfig,
    granule_log2: u32,
    layout: Layout,
    /// The free lists and the node pool, apart from the storage so that a call borrows the node
    /// slice once (its address and length stay in registers) while it updates them.
    index: Index,
    /// The block at offset 0 (where the physical chain starts).
    first: u32,
    id: AllocatorId,
    epoch: u32,
    /// The tag the next allocation gets.
    next_tag: u32,
    /// Every counter but `largest_free_run` and `total_allocations`, which `stats()` computes.
    stats: AllocatorStats,
}

/// Everything that says which block nodes are free and which are unused, besides the nodes.
struct Index {
    /// Bit `r` set when row `r` has a non-empty class.
    fl_bitmap: u64,
    /// Row `r`'s second-level bitmap: bit `s` set when class `r * 32 + s` has a free block. Rows
    /// are at most 45; 64 entries let `row & 63` index them without a bounds check.
    sl_bitmaps: [u32; 64],
    /// Each class's free-list head (`NIL` when empty). Here rather than in the caller's storage
    /// so that a class indexes it with a mask, no bounds check: list heads are touched on every
    /// allocation and free.
    heads: [u32; MAX_CLASSES],
    /// The next never-used block node (nodes from here to `block_end` were not handed out since
    /// the last reset).
    watermark: u32,
    /// The first of the released block nodes, linked through the free-list next field. (How
    /// many block nodes are in use is not counted here: every split takes one and every merge
    /// releases one, so it is `1 + splits - merges`, see [`TlsfAllocator::nodes_in_use`].)
    unused_head: u32,
}

impl Index {
    /// Empty lists and no node handed out.
    fn new(layout: Layout) -> Self {
        Self {
            fl_bitmap: 0,
            sl_bitmaps: [0; 64],
            heads: [NIL; MAX_CLASSES],
            watermark: layout.block_base,
            unused_head: NIL,
        }
    }

    /// A block node for a new block. Callers check `nodes_in_use() < block_capacity()` first.
    #[inline(always)]
    fn take_node(&mut self, nodes: &[TlsfNode]) -> u32 {
        if self.unused_head != NIL {
            let i = self.unused_head;
            self.unused_head = nodes[i as usize].list_next();
            i
        } else {
            let i = self.watermark;
            self.watermark += 1;
            i
        }
    }

    #[inline(always)]
    fn release_node(&mut self, nodes: &mut [TlsfNode], i: u32) {
        let node = &mut nodes[i as usize];
        // An unused node's offset means nothing: the word is written whole, state and all.
        node.wide[W_OFFSET] = u64::from(STATE_UNUSED) << STATE_SHIFT;
        node.narrow[N_LIST_NEXT] = self.unused_head;
        self.unused_head = i;
    }

    /// Row `row`'s second-level bitmap.
    #[inline(always)]
    fn row_bits(&self, row: u32) -> u32 {
        self.sl_bitmaps[row as usize & 63]
    }

    /// Class `class`'s list head.
    #[inline(always)]
    fn head(&self, class: u32) -> u32 {
        self.heads[class as usize & (MAX_CLASSES - 1)]
    }

    #[inline(always)]
    fn head_mut(&mut self, class: u32) -> &mut u32 {
        &mut self.heads[class as usize & (MAX_CLASSES - 1)]
    }

    /// Files free block `i` at the front of the list of `class` (its size's class). LIFO: the most
    /// recently freed block of a class is reused first, and filing touches only the list head. No
    /// branches: an empty list's head is `NIL`, and the write to its prev lands in the scratch
    /// node.
    #[inline(always)]
    fn insert_free(&mut self, nodes: &mut [TlsfNode], i: u32, class: u32) {
        let old = self.push_head(i, class);
        let n = &mut nodes[i as usize].narrow;
        n[N_LIST_PREV] = NIL;
        n[N_LIST_NEXT] = old;
        nodes[old as usize].narrow[N_LIST_PREV] = i;
    }

    /// The list and bitmap half of [`insert_free`](Self::insert_free): makes `i` the head of
    /// `class` and returns the old head, whose list prev and `i`'s list links the caller writes.
    #[inline(always)]
    fn push_head(&mut self, i: u32, class: u32) -> u32 {
        let head = self.head_mut(class);
        let old = *head;
        *head = i;
        let row = class >> SL_LOG2;
        self.sl_bitmaps[row as usize & 63] |= 1 << (class & (SL_COUNT as u32 - 1));
        self.fl_bitmap |= 1 << row;
        old
    }

    /// Takes free block `i` out of the list of `class` (its size's class), without branches.
    #[inline(always)]
    fn remove_free(&mut self, nodes: &mut [TlsfNode], i: u32, class: u32) {
        let n = nodes[i as usize].narrow;
        let (prev, next) = (n[N_LIST_PREV], n[N_LIST_NEXT]);
        nodes[next as usize].narrow[N_LIST_PREV] = prev;
        nodes[prev as usize].narrow[N_LIST_NEXT] = next;
        // Only the head has no list prev. `if prev == NIL { *head = next }` without a branch:
        // removing a block from the middle of its list (merges do) is as common as the head.
        let head = self.head_mut(class);
        *head = select_unpredictable(prev == NIL, next, *head);
        let emptied = *head == NIL;
        self.note_if_emptied(class, emptied);
    }

    /// Clears `class`'s bitmap bit when its list was just `emptied`, and its row's bit when
    /// that left the row empty. No branches: nothing changes when `emptied` is false.
    #[inline(always)]
    fn note_if_emptied(&mut self, class: u32, emptied: bool) {
        let row = class >> SL_LOG2;
        let bits = &mut self.sl_bitmaps[row as usize & 63];
        *bits &= !(u32::from(emptied) << (class & (SL_COUNT as u32 - 1)));
        let row_emptied = u64::from(*bits == 0);
        self.fl_bitmap &= !(row_emptied << row);
    }

    /// Takes free block `i`, the head of the list of `class`, out of that list: cheaper than
    /// [`remove_free`](Self::remove_free), which allocation (whose block is always a list head,
    /// see [`find_block`](Self::find_block)) does not need.
    #[inline(always)]
    fn pop_head(&mut self, nodes: &mut [TlsfNode], i: u32, class: u32) {
        let next = nodes[i as usize].list_next();
        *self.head_mut(class) = next;
        nodes[next as usize].narrow[N_LIST_PREV] = NIL;
        self.note_if_emptied(class, next == NIL);
    }

    /// Gives free block `i`, filed in `class`, a new size, moving it to another list only when
    /// its class changes (most merges and splits of large blocks keep the class, and then cost no
    /// list work).
    #[inline(always)]
    fn resize_free(&mut self, nodes: &mut [TlsfNode], i: u32, class: u32, size: u64) {
        self.resize(nodes, i, class, size, Self::remove_free);
    }

    /// [`resize_free`](Self::resize_free) for the head of the list of `class`, which
    /// [`pop_head`](Self::pop_head) unlinks.
    #[inline(always)]
    fn resize_head(&mut self, nodes: &mut [TlsfNode], i: u32, class: u32, size: u64) {
        self.resize(nodes, i, class, size, Self::pop_head);
    }

    /// Both resizes: `unlink` takes `i` out of the list of `class`.
    #[inline(always)]
    fn resize(
        &mut self,
        nodes: &mut [TlsfNode],
        i: u32,
        class: u32,
        size: u64,
        unlink: fn(&mut Self, &mut [TlsfNode], u32, u32),
    ) {
        nodes[i as usize].wide[W_SIZE] = size;
        let new = floor_class(size);
        if new != class {
            unlink(self, nodes, i, class);
            self.insert_free(nodes, i, new);
        }
    }

    /// The first non-empty class at or above `class`.
    #[inline(always)]
    fn first_nonempty_from(&self, class: u32) -> Option<u32> {
        // Classes come from sizes below 2^49 granules: rows at most 45 (so row + 1 < 64 below).
        // The bitmaps past the allocator's last row are empty, so no range check is needed.
        let row = class >> SL_LOG2;
        let bits = self.row_bits(row) & (u32::MAX << (class & (SL_COUNT as u32 - 1)));
        if bits != 0 {
            return Some((row << SL_LOG2) | bits.trailing_zeros());
        }
        let rows_above = self.fl_bitmap & (u64::MAX << (row + 1));
        if rows_above == 0 {
            return None;
        }
        let r = rows_above.trailing_zeros();
        Some((r << SL_LOG2) | self.row_bits(r).trailing_zeros())
    }

    /// Finds a free block for `units` granules at a multiple of `align` granules; returns the
    /// block, its class and the padding in front of the aligned start. The block is always the
    /// head of its class's list.
    #[inline(always)]
    fn find_block(
        &mut self,
        nodes: &mut [TlsfNode],
        units: u64,
        align: u64,
    ) -> Option<(u32, u32, u64)> {
        // Good fit: the head of the first non-empty class that may hold a block large enough
        // (see the module docs for why this comes before the guaranteed class).
        let first = self.first_nonempty_from(floor_class(units))?;
        let head = self.head(first);
        let n = &nodes[head as usize];
        let pad = padding(n.offset(), align);
        if n.size() >= units + pad {
            return Some((head, first, pad));
        }
        // Guaranteed fit: every block of `guaranteed` and above holds `units` plus the worst
        // padding.
        let guaranteed = ceil_class(units + align - 1);
        if let Some(class) = self.first_nonempty_from(guaranteed.max(first + 1)) {
            let head = self.head(class);
            let pad = padding(nodes[head as usize].offset(), align);
            return Some((head, class, pad));
        }
        self.find_block_below(nodes, units, align, guaranteed)
    }

    /// [`find_block`](Self::find_block) once neither the good-fit head nor a guaranteed class has
    /// a block: a bounded scan of the lists from the good-fit class up to `guaranteed`, so that a
    /// request some free block can serve is not refused only because of the class arithmetic.
    /// The block found is moved to the head of its list, as `find_block` promises.
    #[inline(never)]
    fn find_block_below(
        &mut self,
        nodes: &mut [TlsfNode],
        units: u64,
        align: u64,
        guaranteed: u32,
    ) -> Option<(u32, u32, u64)> {
        let fits = |i: u32| {
            let n = &nodes[i as usize];
            let pad = padding(n.offset(), align);
            (n.size() >= units + pad).then_some(pad)
        };
        let mut budget = FALLBACK_SCAN;
        let mut class = self.first_nonempty_from(floor_class(units))?;
        while class < guaranteed {
            let mut i = self.head(class);
            while i != NIL {
                if let Some(pad) = fits(i) {
                    if i != self.head(class) {
                        self.remove_free(nodes, i, class);
                        self.insert_free(nodes, i, class);
                    }
                    return Some((i, class, pad));
                }
                budget -= 1;
                if budget == 0 {
                    return None;
                }
                i = nodes[i as usize].list_next();
            }
            class = self.first_nonempty_from(class + 1)?;
        }
        None
    }
}

impl<S> fmt::Debug for TlsfAllocator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsfAllocator")
            .field("config", &self.config)
            .field("id", &self.id)
            .field("epoch", &self.epoch)
            .field("live_allocations", &self.stats.live_allocations)
            .field("bytes_reserved", &self.stats.bytes_reserved)
            .finish_non_exhaustive()
    }
}

impl<S: AsRef<[TlsfNode]> + AsMut<[TlsfNode]>> TlsfAllocator<S> {
    /// An allocator for `config` over `storage`, which must hold at least
    /// [`TlsfConfig::storage_len`] nodes (their old contents do not matter).
    ///
    /// Errors: [`ConfigError::ZeroCapacity`], [`ConfigError::CapacityTooLarge`],
    /// [`ConfigError::NotPowerOfTwo`] (granule), [`ConfigError::InvalidParameter`] (capacity not a
    /// multiple of the granule, `max_allocations` zero or too large),
    /// [`ConfigError::StorageTooSmall`].
    pub fn new(config: TlsfConfig, storage: S) -> Result<Self, ConfigError> {
        config.validate()?;
        let required = config.storage_len();
        let provided = storage.as_ref().len();
        if provided < required {
            return Err(ConfigError::StorageTooSmall { required, provided });
        }
        let layout = Layout::of(&config);
        let mut this = Self {
            storage,
            config,
            granule_log2: config.granule.trailing_zeros(),
            layout,
            index: Index::new(layout),
            first: NIL,
            id: AllocatorId::next(),
            epoch: 0,
            next_tag: 0,
            stats: AllocatorStats::default(),
        };
        this.initialise();
        Ok(this)
    }

    /// The configuration it was built with.
    pub fn config(&self) -> TlsfConfig {
        self.config
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Empties every list and makes the whole capacity one free block. Leaves the block nodes'
    /// tags alone, so a node's tag keeps changing across resets.
    fn initialise(&mut self) {
        let layout = self.layout;
        let nodes = self.storage.as_mut();
        for node in &mut nodes[..layout.block_base as usize] {
            *node = TlsfNode::EMPTY;
        }
        self.index = Index::new(layout);
        self.stats = AllocatorStats {
            capacity: self.config.capacity,
            ..AllocatorStats::default()
        };
        let whole = self.config.capacity >> self.granule_log2;
        let first = self.index.take_node(nodes);
        self.first = first;
        let node = &mut nodes[first as usize];
        node.wide = [u64::from(STATE_FREE) << STATE_SHIFT, whole];
        node.narrow[N_PHYS_PREV] = NIL;
        node.narrow[N_PHYS_NEXT] = NIL;
        self.index.insert_free(nodes, first, floor_class(whole));
    }

    fn block_capacity(&self) -> u32 {
        self.layout.block_end - self.layout.block_base
    }

    /// Block nodes that hold a free or allocated block: the first block, plus one per split,
    /// less one per merge (`None` when the counters disagree, which a broken invariant would do).
    fn nodes_in_use(&self) -> Option<u64> {
        (self.stats.splits + 1).checked_sub(self.stats.merges)
    }

    /// Why `allocate` refused a request on the way in, in the order the checks are documented.
    #[cold]
    #[inline(never)]
    fn allocate_error(&self, size: u64, align: u64) -> AllocError {
        let capacity = self.config.capacity;
        if size == 0 {
            AllocError::ZeroSize
        } else if !align.is_power_of_two() {
            AllocError::AlignmentNotPowerOfTwo
        } else if size > capacity {
            AllocError::SizeOverCapacity {
                requested: size,
                capacity,
            }
        } else {
            AllocError::MetadataExhausted
        }
    }

    /// The largest request (alignment 1) that `allocate` would serve now, space permitting (the
    /// `max_allocations` limit aside): the largest of the blocks the search looks at in the top
    /// non-empty class.
    fn largest_free_run(&self) -> u64 {
        let index = &self.index;
        if index.fl_bitmap == 0 {
            return 0;
        }
        let nodes = self.storage.as_ref();
        let row = 63 - index.fl_bitmap.leading_zeros();
        let class = (row << SL_LOG2) | (31 - index.row_bits(row).leading_zeros());
        let mut largest = 0;
        let mut i = index.head(class);
        let mut budget = FALLBACK_SCAN;
        while i != NIL && budget > 0 {
            largest = largest.max(nodes[i as usize].size());
            i = nodes[i as usize].list_next();
            budget -= 1;
        }
        largest << self.granule_log2
    }

    /// Counts a placed allocation in the statistics and makes its handle.
    #[inline(always)]
    fn allocated(&mut self, placed: Placed, size: u64, tag: u32) -> Allocation {
        let g = self.granule_log2;
        let s = &mut self.stats;
        s.live_allocations += 1;
        s.peak_live_allocations = s.peak_live_allocations.max(s.live_allocations);
        s.bytes_requested += size;
        s.bytes_reserved += placed.reserved_units << g;
        s.peak_bytes_reserved = s.peak_bytes_reserved.max(s.bytes_reserved);
        Allocation::from_raw(RawAllocation {
            offset: placed.start << g,
            size,
            allocator: self.id,
            epoch: self.epoch,
            slot: placed.slot,
            tag,
        })
    }

    /// Places an allocation whose alignment gap is too large to keep (see [`GAP_BYTES`]): the
    /// gap becomes a free block of its own, and so does whatever is left at the other side of
    /// the allocation, so a block can split in three. `start` is the aligned start chosen in
    /// `block` (filed in `class`), `units` the rounded request.
    #[inline(never)]
    fn place_with_gap(
        &mut self,
        block: u32,
        class: u32,
        start: u64,
        units: u64,
        size: u64,
        tag: u32,
    ) -> Placed {
        let g = self.granule_log2;
        let nodes = self.storage.as_mut();
        let index = &mut self.index;
        let (offset, end) = {
            let n = &nodes[block as usize];
            (n.offset(), n.offset() + n.size())
        };
        let front = start - offset;
        let back = end - start - units;
        // A sliver above the allocation stays with it, as on the common path.
        let sliver = back << g < SLIVER_BYTES.min(size >> SLIVER_SHIFT);
        let units = if sliver { units + back } else { units };
        let back = if sliver { 0 } else { back };
        let allocated = |phys_prev: u32, phys_next: u32| {
            used_node((start, units), phys_prev, phys_next, tag, size, g)
        };
        // The block keeps the free part below the allocation; the allocation gets a new node
        // above it, and what is left above the allocation (if anything) another. There is always
        // a free part below: at the bottom end it is the gap itself (`allocate` comes here only
        // for a gap of at least a granule), and the top end is only taken with a gap when the
        // bottom end needs one too (`low_gap != 0`), so the block's start is unaligned and the
        // aligned top start lies above it.
        let slot = index.take_node(nodes);
        let next = nodes[block as usize].phys_next();
        nodes[block as usize].narrow[N_PHYS_NEXT] = slot;
        if back > 0 {
            let tail = index.take_node(nodes);
            nodes[slot as usize] = allocated(block, tail);
            nodes[next as usize].narrow[N_PHYS_PREV] = tail;
            index.resize_free(nodes, block, class, front);
            nodes[tail as usize] = TlsfNode {
                wide: [
                    (start + units) | (u64::from(STATE_FREE) << STATE_SHIFT),
                    back,
                ],
                narrow: [slot, next, NIL, NIL],
            };
            index.insert_free(nodes, tail, floor_class(back));
            self.stats.splits += 2;
        } else {
            nodes[slot as usize] = allocated(block, next);
            nodes[next as usize].narrow[N_PHYS_PREV] = slot;
            index.resize_free(nodes, block, class, front);
            self.stats.splits += 1;
        }
        Placed {
            slot,
            start,
            reserved_units: units,
        }
    }

    /// Walks all metadata and reports the first inconsistency: the physical chain covers
    /// `[0, capacity)` exactly, no two free blocks touch, every free block is in the list of its
    /// class and every listed block is free, the bitmaps agree with the lists, the node counts and
    /// the statistics agree with the blocks. For tests and fuzzing; O(storage).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let nodes = self.storage.as_ref();
        let layout = self.layout;
        let index = &self.index;
        let get = |i: u32| nodes.get(i as usize).ok_or("link outside the storage");
        let in_blocks = |i: u32| i >= layout.block_base && i < index.watermark;
        let bound = layout.block_end;
        let nodes_in_use = self
            .nodes_in_use()
            .ok_or("more merges than splits since the last reset")?;
        if index.watermark > layout.block_end || nodes_in_use > u64::from(self.block_capacity()) {
            return Err("more block nodes in use than the storage holds");
        }

        // The physical chain, from the block at offset 0.
        let mut i = self.first;
        let mut prev = NIL;
        let mut offset = 0u64;
        let mut chain = 0u32;
        let mut free_blocks = 0u32;
        let mut used = 0u64;
        let mut requested = 0u64;
        let mut reserved = 0u64;
        let mut prev_free = false;
        while i != NIL {
            if !in_blocks(i) {
                return Err("physical link outside the handed-out block nodes");
            }
            let n = get(i)?;
            chain += 1;
            if chain > bound {
                return Err("physical chain loops");
            }
            if n.phys_prev() != prev {
                return Err("physical prev link disagrees with the chain");
            }
            if n.offset() != offset {
                return Err("a block does not start where the previous one ends");
            }
            if n.size() == 0 {
                return Err("a block has size zero");
            }
            match n.state() {
                STATE_FREE => {
                    if prev_free {
                        return Err("two free blocks touch");
                    }
                    prev_free = true;
                    free_blocks += 1;
                }
                STATE_USED => {
                    prev_free = false;
                    used += 1;
                    let bytes = n.size() << self.granule_log2;
                    let slack = u64::from(n.narrow[N_SLACK]);
                    if slack >= self.config.granule + GAP_BYTES + SLIVER_BYTES || slack >= bytes {
                        return Err(
                            "an allocated block's slack is more than a granule, a gap and a sliver",
                        );
                    }
                    requested += bytes - slack;
                    reserved += bytes;
                }
                _ => return Err("a block in the chain is neither free nor allocated"),
            }
            offset = offset.checked_add(n.size()).ok_or("offsets overflow")?;
            prev = i;
            i = n.phys_next();
        }
        if offset != self.config.capacity >> self.granule_log2 {
            return Err("the physical chain does not cover the capacity exactly");
        }

        // Lists and bitmaps.
        let mut listed = 0u32;
        for row in 0..layout.rows {
            let bits = index.row_bits(row);
            if ((index.fl_bitmap >> row) & 1 == 1) != (bits != 0) {
                return Err("first-level bitmap disagrees with a row");
            }
            for sl in 0..SL_COUNT as u32 {
                let class = (row << SL_LOG2) | sl;
                let mut j = index.head(class);
                if ((bits >> sl) & 1 == 1) != (j != NIL) {
                    return Err("second-level bitmap disagrees with a list");
                }
                let mut p = NIL;
                while j != NIL {
                    if !in_blocks(j) {
                        return Err("list link outside the handed-out block nodes");
                    }
                    let n = get(j)?;
                    listed += 1;
                    if listed > bound {
                        return Err("a free list loops");
                    }
                    if n.state() != STATE_FREE {
                        return Err("a listed block is not free");
                    }
                    if floor_class(n.size()) != class {
                        return Err("a free block is in the wrong class list");
                    }
                    if n.list_prev() != p {
                        return Err("free-list prev link disagrees");
                    }
                    p = j;
                    j = n.list_next();
                }
            }
        }
        if index.fl_bitmap >> layout.rows != 0 {
            return Err("first-level bitmap has bits past the last row");
        }
        if index.sl_bitmaps[layout.rows as usize..]
            .iter()
            .any(|&bits| bits != 0)
        {
            return Err("a second-level bitmap past the last row is set");
        }
        if get(NIL)?.state() != STATE_UNUSED {
            return Err("the scratch node behind NIL changed state");
        }
        for class in layout.rows << SL_LOG2..MAX_CLASSES as u32 {
            if index.head(class) != NIL {
                return Err("a list head past the last class is set");
            }
        }
        if listed != free_blocks {
            return Err("free blocks and listed blocks differ in number");
        }

        // Node accounting.
        let mut unused = 0u32;
        let mut k = index.unused_head;
        while k != NIL {
            if !in_blocks(k) {
                return Err("unused-node link outside the handed-out block nodes");
            }
            let n = get(k)?;
            if n.state() != STATE_UNUSED {
                return Err("a released node is not marked unused");
            }
            unused += 1;
            if unused > bound {
                return Err("the unused-node list loops");
            }
            k = n.list_next();
        }
        if u64::from(chain) != nodes_in_use || chain + unused != index.watermark - layout.block_base
        {
            return Err("block nodes are lost or counted twice");
        }

        let s = &self.stats;
        if s.live_allocations != used
            || s.bytes_requested != requested
            || s.bytes_reserved != reserved
        {
            return Err("statistics disagree with the allocated blocks");
        }
        if used > u64::from(self.config.max_allocations) {
            return Err("more live allocations than max_allocations");
        }
        if s.peak_bytes_reserved < s.bytes_reserved || s.peak_live_allocations < s.live_allocations
        {
            return Err("a peak is below the current value");
        }
        Ok(())
    }
}

impl<S: AsRef<[TlsfNode]> + AsMut<[TlsfNode]>> TlsfAllocator<S> {
    /// The node of a live allocation: what [`SubAllocator::free`] validates before it changes
    /// anything, and all [`SubAllocator::check_live`] does.
    #[inline(always)]
    fn live_node(&self, raw: &RawAllocation) -> Result<TlsfNode, FreeError> {
        if raw.allocator != self.id {
            return Err(FreeError::ForeignAllocation);
        }
        if raw.epoch != self.epoch {
            return Err(FreeError::StaleAllocation);
        }
        let slot = raw.slot;
        // `slot` in `[block_base, watermark)`, in one comparison.
        let base = self.layout.block_base;
        if slot.wrapping_sub(base) >= self.index.watermark - base {
            return Err(FreeError::DoubleFree);
        }
        let g = self.granule_log2;
        let node = self.storage.as_ref()[slot as usize];
        // Non-short-circuit: one branch for all four (every field is in the loaded node). So the
        // sizes are computed for nodes that are not allocated too, whose slack field holds
        // something else: wrapping, not subtractions that panic in debug builds. The handle's
        // size must be exact and its offset inside the slack (the node's range starts at the
        // allocation or at a gap it keeps), so the handle lies inside the reserved range.
        let slack = u64::from(node.narrow[N_SLACK]);
        if (node.state() != STATE_USED)
            | (node.narrow[N_TAG] != raw.tag)
            | (raw.offset.wrapping_sub(node.offset() << g) > slack)
            | ((node.size() << g).wrapping_sub(slack) != raw.size)
        {
            return Err(FreeError::DoubleFree);
        }
        Ok(node)
    }
}

impl<S: AsRef<[TlsfNode]> + AsMut<[TlsfNode]>> SubAllocator for TlsfAllocator<S> {
    #[inline]
    fn allocate(&mut self, size: u64, align: u64) -> Result<Allocation, AllocError> {
        // One test for every refusal on the way in (a zero size wraps past the capacity);
        // `allocate_error` says which.
        let refused = (size.wrapping_sub(1) >= self.config.capacity)
            | !align.is_power_of_two()
            | (self.stats.live_allocations >= u64::from(self.config.max_allocations));
        if refused {
            return Err(self.allocate_error(size, align));
        }
        let g = self.granule_log2;
        // size <= capacity <= 2^48: no overflow. An alignment at or above 2^48 allows offset 0
        // only, exactly like 2^48 itself.
        let units = (size + (1 << g) - 1) >> g;
        let align_units = (align.min(MAX_CAPACITY) >> g).max(1);
        let nodes = self.storage.as_mut();
        let index = &mut self.index;
        let Some((block, class, pad)) = index.find_block(nodes, units, align_units) else {
            return Err(AllocError::OutOfMemory);
        };

        // A split takes at most two nodes: `nodes_in_use() + 2 > block_capacity()`. With
        // live < max_allocations at most 2 * max_allocations - 1 are in use (see the module docs),
        // so this never refuses; it is here so that a broken invariant is an error, not a panic.
        let block_capacity = self.layout.block_end - self.layout.block_base;
        if self.stats.splits + 3 > self.stats.merges + u64::from(block_capacity) {
            return Err(AllocError::MetadataExhausted);
        }
        // A fresh tag for every allocation: a stale handle for this node cannot match it.
        let tag = self.next_tag;
        self.next_tag = tag.wrapping_add(1);

        let (offset, block_size) = {
            let n = &nodes[block as usize];
            (n.offset(), n.size())
        };
        let end = offset + block_size;
        // Which end of the block: the lowest aligned start (bottom) or the highest (top). Small
        // requests prefer the top end and large ones the bottom, so that small and large
        // allocations do not interleave and large free runs survive; the other end is taken
        // when it needs no alignment gap and the preferred one does. Bit operations, not
        // branches: which end wins depends on the request.
        let low = offset + pad;
        let high = (end - units) & !(align_units - 1);
        let (low_gap, high_gap) = (pad, end - high - units);
        let prefer_top = size < self.config.small_threshold;
        let top = (prefer_top & ((high_gap == 0) | (low_gap != 0)))
            | (!prefer_top & (high_gap == 0) & (low_gap != 0));
        let start = select_unpredictable(top, high, low);
        let gap = select_unpredictable(top, high_gap, low_gap);
        if gap << g >= size.min(GAP_BYTES) {
            let placed = self.place_with_gap(block, class, start, units, size, tag);
            return Ok(self.allocated(placed, size, tag));
        }

        // The gap stays with the allocation: it reserves `[start - low_gap, start + units +
        // high_gap)` at whichever end it took, and the rest of the block stays free at the other.
        let (reserved_start, reserved_end) =
            select_unpredictable(top, (high, end), (offset, low + units));
        let rest = block_size - (reserved_end - reserved_start);
        // No rest (an exact fit), or a rest smaller than a sliver, which is not worth a block of
        // its own (and the merge that frees it again): the allocation takes the whole block.
        // Both tests are needed: a request under 8 bytes has no sliver allowance.
        let slot;
        let reserved;
        if (rest == 0) | (rest << g < SLIVER_BYTES.min(size >> SLIVER_SHIFT)) {
            let (prev, next) = (
                nodes[block as usize].phys_prev(),
                nodes[block as usize].phys_next(),
            );
            index.pop_head(nodes, block, class);
            reserved = (offset, block_size);
            nodes[block as usize] = used_node(reserved, prev, next, tag, size, g);
            slot = block;
        } else {
            // One split: the allocation gets a new node at its end of the block, and the block
            // keeps the rest (and its list place, when its class does not change). The chain
            // is relinked the same way at either end: `left` and `right` are the two pieces
            // in address order.
            slot = index.take_node(nodes);
            let (prev, next) = (
                nodes[block as usize].phys_prev(),
                nodes[block as usize].phys_next(),
            );
            let (left, right) = select_unpredictable(top, (block, slot), (slot, block));
            nodes[prev as usize].narrow[N_PHYS_NEXT] = left;
            nodes[next as usize].narrow[N_PHYS_PREV] = right;
            self.first = select_unpredictable(prev == NIL, left, self.first);
            let rest_start = select_unpredictable(top, offset, reserved_end);
            let b = &mut nodes[block as usize];
            b.wide[W_OFFSET] = rest_start | (u64::from(STATE_FREE) << STATE_SHIFT);
            b.narrow[N_PHYS_PREV] = select_unpredictable(top, prev, slot);
            b.narrow[N_PHYS_NEXT] = select_unpredictable(top, slot, next);
            reserved = (reserved_start, reserved_end - reserved_start);
            let (slot_prev, slot_next) = select_unpredictable(top, (block, next), (prev, block));
            nodes[slot as usize] = used_node(reserved, slot_prev, slot_next, tag, size, g);
            index.resize_head(nodes, block, class, rest);
            self.stats.splits += 1;
        }
        Ok(self.allocated(
            Placed {
                slot,
                start,
                reserved_units: reserved.1,
            },
            size,
            tag,
        ))
    }

    #[inline]
    fn free(&mut self, allocation: Allocation) -> Result<(), FreeError> {
        let raw = allocation.into_raw();
        let node = self.live_node(&raw)?;
        let slot = raw.slot;
        let g = self.granule_log2;
        let nodes = self.storage.as_mut();
        let index = &mut self.index;

        let s = &mut self.stats;
        s.live_allocations -= 1;
        s.bytes_requested -= raw.size;
        s.bytes_reserved -= node.size() << g;
        s.total_frees += 1;

        // Merge with free neighbours. A free neighbour's node survives and keeps its list place
        // when its class does not change; with two free neighbours the larger one survives.
        let (prev, next) = (node.phys_prev(), node.phys_next());
        // The scratch node behind NIL is never free.
        let prev_free = nodes[prev as usize].state() == STATE_FREE;
        let next_free = nodes[next as usize].state() == STATE_FREE;
        let units = node.size();
        // The freed block's offset word with the free state, written whole where it is needed.
        let free_word = node.offset() | (u64::from(STATE_FREE) << STATE_SHIFT);
        match (prev_free, next_free) {
            (false, false) => {
                nodes[slot as usize].wide[W_OFFSET] = free_word;
                index.insert_free(nodes, slot, floor_class(units));
            }
            (true, false) => {
                nodes[prev as usize].narrow[N_PHYS_NEXT] = next;
                nodes[next as usize].narrow[N_PHYS_PREV] = prev;
                let size = nodes[prev as usize].size();
                index.release_node(nodes, slot);
                index.resize_free(nodes, prev, floor_class(size), size + units);
                self.stats.merges += 1;
            }
            (false, true) => {
                let n = &mut nodes[next as usize];
                n.wide[W_OFFSET] = free_word;
                n.narrow[N_PHYS_PREV] = prev;
                let size = n.size();
                nodes[prev as usize].narrow[N_PHYS_NEXT] = next;
                if prev == NIL {
                    self.first = next;
                }
                index.release_node(nodes, slot);
                index.resize_free(nodes, next, floor_class(size), size + units);
                self.stats.merges += 1;
            }
            (true, true) => {
                let (p, n) = (nodes[prev as usize], nodes[next as usize]);
                let merged = p.size() + units + n.size();
                let after = n.phys_next();
                // Which neighbour is larger is anybody's guess: chosen without a branch.
                let next_larger = n.size() > p.size();
                let (keep, keep_size, drop, drop_size) = select_unpredictable(
                    next_larger,
                    (next, n.size(), prev, p.size()),
                    (prev, p.size(), next, n.size()),
                );
                // `prev` is free: its offset word is the merged block's, state and all.
                nodes[keep as usize].wide[W_OFFSET] = p.wide[W_OFFSET];
                nodes[keep as usize].narrow[N_PHYS_PREV] = p.phys_prev();
                nodes[keep as usize].narrow[N_PHYS_NEXT] = after;
                nodes[p.phys_prev() as usize].narrow[N_PHYS_NEXT] = keep;
                if p.phys_prev() == NIL {
                    self.first = keep;
                }
                nodes[after as usize].narrow[N_PHYS_PREV] = keep;
                index.remove_free(nodes, drop, floor_class(drop_size));
                index.release_node(nodes, drop);
                index.release_node(nodes, slot);
                index.resize_free(nodes, keep, floor_class(keep_size), merged);
                self.stats.merges += 2;
            }
        }
        Ok(())
    }

    fn check_live(&self, allocation: &RawAllocation) -> Result<(), FreeError> {
        self.live_node(allocation).map(|_| ())
    }

    fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.initialise();
    }

    fn stats(&self) -> AllocatorStats {
        // Not counted on the way: every allocation is freed or still live.
        let total_allocations = self.stats.total_frees + self.stats.live_allocations;
        AllocatorStats {
            largest_free_run: self.largest_free_run(),
            total_allocations,
            ..self.stats
        }
    }

    fn capacity(&self) -> u64 {
        self.config.capacity
    }

    fn id(&self) -> AllocatorId {
        self.id
    }

    /// Walks the physical chain from offset 0, so the ranges come by rising offset: O(blocks),
    /// at most `2 * max_allocations + 1`. A range starts at its node's offset, which is below
    /// the handle's when the allocation keeps an alignment gap beneath it.
    fn visit_live(&self, visit: &mut dyn FnMut(LiveRange)) {
        let g = self.granule_log2;
        let nodes = self.storage.as_ref();
        // Bounded by the block nodes, so a broken chain (which `check_invariants` reports)
        // cannot loop forever.
        let mut budget = self.block_capacity();
        let mut i = self.first;
        while i != NIL && budget > 0 {
            let Some(n) = nodes.get(i as usize) else {
                return;
            };
            if n.state() == STATE_USED {
                let reserved = n.size() << g;
                visit(LiveRange {
                    offset: n.offset() << g,
                    reserved,
                    requested: reserved.saturating_sub(u64::from(n.narrow[N_SLACK])),
                });
            }
            i = n.phys_next();
            budget -= 1;
        }
    }
}
