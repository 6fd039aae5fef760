//! Defragmentation: the sparsest blocks emptied into fuller ones, so that their memory objects
//! go back to the device.
//!
//! A long-running application (a streaming world, an editor) frees resources in a different
//! order than it made them, and its blocks end up each holding a little: the memory objects stay
//! while most of their bytes are free. A pass moves what the sparsest blocks hold into the
//! room the fuller ones have, and releases each block it empties.
//!
//! The pools cannot move a resource themselves: the caller owns the buffers and images, the
//! commands that copy them and the descriptors that name them. So a pass is a protocol between
//! the two, as VMA's is (`vmaBeginDefragmentation`), in the shape of memkit's handles:
//!
//! 1. [`MemoryPools::begin_defragmentation`] chooses the blocks to empty, within
//!    [`DefragmentationLimits`], and returns what it chose ([`DefragmentationPlan`]). From then
//!    on no allocation is placed in those blocks while another block or a new one can take it.
//! 2. For each allocation it holds, the caller asks [`MemoryPools::relocate`]. The answer is
//!    [`Relocation::Stay`], or [`Relocation::Move`] with a new allocation in a fuller block. To
//!    move, the caller makes a new resource like the old one, binds it to the new allocation,
//!    copies the bytes (a GPU copy, or a CPU copy through the mapping), and points its users at
//!    the new resource.
//! 3. Once the GPU is done with the old resource (the copy and every earlier use completed), the
//!    caller destroys it and frees the old allocation with [`MemoryPools::free`], as any other.
//!    Nothing is reused early: the old range stays allocated, and its bytes intact, until then.
//!    A block being emptied is released the moment its last allocation is freed, not kept among
//!    the empty blocks.
//! 4. [`MemoryPools::end_defragmentation`] ends the pass, any number of frames later: the blocks
//!    it did not empty take allocations again. It reports what the pass did
//!    ([`DefragmentationReport`]).
//!
//! A pass never makes a block: a move goes only where there is room already, and an allocation
//! that finds none stays. Dedicated objects never move. The hot paths pay nothing for this: the
//! block an allocation is tried in first is never one being emptied, and only the slow path
//! (every other block of the set) checks the flag.
// No `unsafe` here (`deny`, not `forbid`: the tests free through `MemoryPools::free`).
#![deny(unsafe_code)]

use core::fmt;

use super::allocation::{DeviceAllocation, Placement};
use super::block_allocator::BlockAllocator;
use super::error::FlushError;
use super::storage::{BlockSlot, BlockState, DedicatedSlot, NO_SLOT};
use super::{GROUPS, MemoryPools};
use crate::device::MemoryDevice;

#[cfg(test)]
mod tests;

/// How much one pass may move (VMA's `maxBytesPerPass` and `maxAllocationsPerPass`): a pass
/// chooses blocks until the next one would take it past either limit. A frame's copy budget
/// keeps a pass from stalling the frame that copies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DefragmentationLimits {
    /// Only this memory type's blocks; `None`: every type's.
    pub memory_type: Option<u32>,
    /// Live bytes the chosen blocks hold, at most.
    pub max_bytes: u64,
    /// Live allocations the chosen blocks hold, at most.
    pub max_allocations: u32,
}

impl DefragmentationLimits {
    /// Every memory type, no limit on bytes or allocations.
    pub const UNLIMITED: Self = Self {
        memory_type: None,
        max_bytes: u64::MAX,
        max_allocations: u32::MAX,
    };

    /// The same limits, for memory type `index` only.
    pub const fn with_memory_type(mut self, index: u32) -> Self {
        self.memory_type = Some(index);
        self
    }

    /// The same limits, moving at most `bytes` bytes.
    pub const fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The same limits, moving at most `count` allocations.
    pub const fn with_max_allocations(mut self, count: u32) -> Self {
        self.max_allocations = count;
        self
    }
}

impl Default for DefragmentationLimits {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// What [`MemoryPools::begin_defragmentation`] chose to empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DefragmentationPlan {
    /// Blocks to empty.
    pub blocks: u32,
    /// Bytes of those blocks (what the device gets back once they are empty).
    pub block_bytes: u64,
    /// Live allocations in them: what [`MemoryPools::relocate`] will move.
    pub allocations: u32,
    /// Their bytes (as reserved in the blocks).
    pub bytes: u64,
}

/// What a pass did, from [`MemoryPools::end_defragmentation`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DefragmentationReport {
    /// What the pass chose.
    pub plan: DefragmentationPlan,
    /// Allocations [`MemoryPools::relocate`] gave a new place.
    pub moves: u32,
    /// Their bytes (as asked).
    pub bytes_moved: u64,
    /// Allocations asked about that had to stay in a block being emptied: no other block had
    /// room for them.
    pub no_room: u32,
    /// Blocks emptied and released.
    pub blocks_released: u32,
    /// Their bytes.
    pub bytes_released: u64,
}

/// Where an allocation goes, from [`MemoryPools::relocate`].
#[must_use = "a `Move` holds a new allocation, which leaks unless bound and later freed"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Relocation<M> {
    /// It stays where it is: its block is not being emptied, it is a dedicated object, or no
    /// other block has room for it.
    Stay,
    /// Move it here: bind a new resource to this allocation, copy the bytes, and free the old
    /// allocation once the GPU is done with the old resource.
    Move(DeviceAllocation<M>),
}

/// Why a defragmentation call was refused. A refused call changes nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DefragmentationError {
    /// [`MemoryPools::begin_defragmentation`] while a pass is running: end it first.
    PassRunning,
    /// The limits name a memory type the device does not have.
    NoSuchMemoryType,
    /// The alignment is not a power of two.
    AlignmentNotPowerOfTwo,
    /// The allocation was made by other pools.
    ForeignAllocation,
    /// The allocation was freed already (or its block released).
    StaleAllocation,
}

impl fmt::Display for DefragmentationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PassRunning => "a defragmentation pass is already running",
            Self::NoSuchMemoryType => "the limits name a memory type the device does not have",
            Self::AlignmentNotPowerOfTwo => "the alignment is not a power of two",
            Self::ForeignAllocation => "the allocation was made by other pools",
            Self::StaleAllocation => "the allocation was freed already",
        })
    }
}

impl core::error::Error for DefragmentationError {}

/// The pools' record of the running pass.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DefragmentationPass {
    pub(crate) running: bool,
    pub(crate) report: DefragmentationReport,
}

impl<D, A, BS, DS> MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// Starts a defragmentation pass (see the [module docs](self)): chooses blocks to empty and
    /// stops placing allocations in them.
    ///
    /// In each set of blocks (a memory type, and where `bufferImageGranularity` separates them,
    /// linear or optimal resources), the block with the smallest share of its bytes in use is
    /// chosen first (the most memory back for the fewest bytes copied), then the next, as long
    /// as what the chosen blocks hold fits the free bytes of the blocks not chosen, and the
    /// pass stays within `limits`. Empty blocks are not chosen (they are the empty-block cache;
    /// [`MemoryPools::trim`] releases them). A set of one block has nowhere to move to and is
    /// left alone.
    ///
    /// Errors: [`DefragmentationError::PassRunning`], [`DefragmentationError::NoSuchMemoryType`].
    pub fn begin_defragmentation(
        &mut self,
        limits: &DefragmentationLimits,
    ) -> Result<DefragmentationPlan, DefragmentationError> {
        self.begin_defragmentation_where(limits, |_| true)
    }

    /// [`MemoryPools::begin_defragmentation`], choosing only blocks for which `can_empty`
    /// answers `true`. It is asked with a block's slot (the
    /// [`RawDeviceAllocation::slot`](super::RawDeviceAllocation::slot) of the allocations in
    /// it), possibly more than once per block. A caller that knows a block holds something it
    /// cannot move (a resource another part of the program owns, or one in use right now)
    /// keeps the pass from copying the rest of that block for nothing: the block could not be
    /// released. Blocks it refuses still take moved allocations.
    ///
    /// Errors: as for [`MemoryPools::begin_defragmentation`].
    pub fn begin_defragmentation_where(
        &mut self,
        limits: &DefragmentationLimits,
        mut can_empty: impl FnMut(u32) -> bool,
    ) -> Result<DefragmentationPlan, DefragmentationError> {
        if self.defrag.running {
            return Err(DefragmentationError::PassRunning);
        }
        if limits
            .memory_type
            .is_some_and(|t| t as usize >= self.type_count)
        {
            return Err(DefragmentationError::NoSuchMemoryType);
        }
        let mut plan = DefragmentationPlan::default();
        for set in 0..self.type_count * GROUPS {
            if limits
                .memory_type
                .is_some_and(|t| t as usize != set / GROUPS)
            {
                continue;
            }
            self.choose_blocks_to_empty(set, limits, &mut can_empty, &mut plan);
        }
        self.defrag.running = true;
        self.defrag.report = DefragmentationReport {
            plan,
            ..DefragmentationReport::default()
        };
        Ok(plan)
    }

    /// Chooses `set`'s blocks to empty, sparsest first among those `can_empty` allows, adding
    /// them to `plan`.
    fn choose_blocks_to_empty(
        &mut self,
        set: usize,
        limits: &DefragmentationLimits,
        can_empty: &mut impl FnMut(u32) -> bool,
        plan: &mut DefragmentationPlan,
    ) {
        // Free bytes of the blocks that stay, and live bytes of those chosen.
        let mut room = 0u64;
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let entry = &self.blocks.as_ref()[i as usize];
            if let BlockState::Live(b) = &entry.state {
                room += b.free;
            }
            i = entry.link;
        }
        let mut to_move = 0u64;
        loop {
            // The sparsest block not chosen yet that holds anything, by the share of its bytes
            // in use (compared as `used / size < u / s` without dividing). Sets hold few blocks
            // (one per memory object), so a scan per choice is cheap next to a single copy.
            let mut sparsest: Option<(u32, u64, u32, u64)> = None;
            let mut i = self.sets[set].head;
            while i != NO_SLOT {
                let entry = &self.blocks.as_ref()[i as usize];
                if let BlockState::Live(b) = &entry.state {
                    let used = b.size - b.free;
                    let sparser = |&(_, u, _, s): &(u32, u64, u32, u64)| {
                        u128::from(used) * u128::from(s) < u128::from(u) * u128::from(b.size)
                    };
                    if !b.emptying
                        && b.live > 0
                        && sparsest.as_ref().is_none_or(sparser)
                        && can_empty(i)
                    {
                        sparsest = Some((i, used, b.live, b.size));
                    }
                }
                i = entry.link;
            }
            let Some((slot, used, live, size)) = sparsest else {
                return;
            };
            let free = size - used;
            let fits_elsewhere = to_move + used <= room - free;
            let within_limits = plan.bytes + used <= limits.max_bytes
                && plan.allocations.saturating_add(live) <= limits.max_allocations;
            if !fits_elsewhere || !within_limits {
                return;
            }
            room -= free;
            to_move += used;
            if let BlockState::Live(b) = &mut self.blocks.as_mut()[slot as usize].state {
                b.emptying = true;
            }
            plan.blocks += 1;
            plan.block_bytes += size;
            plan.allocations += live;
            plan.bytes += used;
            // The first block tried for the set's allocations is never one being emptied.
            if self.sets[set].hint == slot {
                self.sets[set].hint = NO_SLOT;
            }
        }
    }

    /// Where `allocation` goes in the running pass: [`Relocation::Move`] with a new allocation
    /// of the same size, memory type and kind of resource, in a block that is not being
    /// emptied (the fullest with room first), or [`Relocation::Stay`]. `alignment`: what the
    /// new resource needs (its memory requirements); the new range honours it, and whole
    /// `nonCoherentAtomSize` atoms in non-coherent memory as every allocation does.
    ///
    /// Outside a pass, for a dedicated object and for a block not being emptied, the answer is
    /// `Stay`. The old allocation is untouched either way: free it once the GPU is done with
    /// the old resource.
    ///
    /// Errors: [`DefragmentationError::AlignmentNotPowerOfTwo`],
    /// [`DefragmentationError::ForeignAllocation`], [`DefragmentationError::StaleAllocation`].
    pub fn relocate(
        &mut self,
        allocation: &DeviceAllocation<D::Memory>,
        alignment: u64,
    ) -> Result<Relocation<D::Memory>, DefragmentationError> {
        if !alignment.is_power_of_two() {
            return Err(DefragmentationError::AlignmentNotPowerOfTwo);
        }
        let raw = allocation.raw();
        // The same checks as `free` and `flush`: a foreign or stale handle is refused.
        self.object_of(raw).map_err(|e| match e {
            FlushError::ForeignAllocation => DefragmentationError::ForeignAllocation,
            _ => DefragmentationError::StaleAllocation,
        })?;
        let (set, reserved, align) = match raw.placement {
            Placement::Dedicated => return Ok(Relocation::Stay),
            Placement::Block { .. } => {
                let BlockState::Live(b) = &self.blocks.as_ref()[raw.slot as usize].state else {
                    return Err(DefragmentationError::StaleAllocation);
                };
                if !self.defrag.running || !b.emptying {
                    return Ok(Relocation::Stay);
                }
                // The size the range was asked of the block (whole atoms where it must be),
                // which fits any block of the set, as the old one did.
                let (reserved, align) = self
                    .reserved_size(b.whole_atoms, raw.size, alignment)
                    .map_err(|_| DefragmentationError::ForeignAllocation)?;
                (usize::from(b.set), reserved, align)
            }
        };
        match self.place_in_fullest_block(set, reserved, align) {
            Some(range) => {
                self.defrag.report.moves += 1;
                self.defrag.report.bytes_moved += raw.size;
                Ok(Relocation::Move(self.block_handle(range, raw.size)))
            }
            None => {
                self.defrag.report.no_room += 1;
                Ok(Relocation::Stay)
            }
        }
    }

    /// Sub-allocates `size` bytes at `align` from the fullest block of `set` that is not being
    /// emptied and has room, trying the next fullest on a refusal (the free bytes may be
    /// scattered). Packing the fullest blocks first leaves the sparse ones for the next pass.
    fn place_in_fullest_block(
        &mut self,
        set: usize,
        size: u64,
        align: u64,
    ) -> Option<super::BlockRange<D::Memory>> {
        // Blocks in order of (free bytes, slot), each tried once: the next is the smallest key
        // above the last one tried.
        let mut last: Option<(u64, u32)> = None;
        loop {
            let mut next: Option<(u64, u32)> = None;
            let mut i = self.sets[set].head;
            while i != NO_SLOT {
                let entry = &self.blocks.as_ref()[i as usize];
                if let BlockState::Live(b) = &entry.state {
                    let key = (b.free, i);
                    if !b.emptying
                        && b.free >= size
                        && last.is_none_or(|l| key > l)
                        && next.is_none_or(|n| key < n)
                    {
                        next = Some(key);
                    }
                }
                i = entry.link;
            }
            let (_, slot) = next?;
            if let Some(range) = self.try_block(slot, size, align) {
                return Some(range);
            }
            last = next;
        }
    }

    /// Ends the running pass and reports what it did. The blocks it emptied were released as
    /// they emptied; those it chose and did not empty take allocations again, and are kept when
    /// they empty later, as any block. So end the pass once the moved allocations were freed
    /// (their copies completed): a block emptied only after the pass counts as an empty block
    /// of the cache, not as defragmentation's.
    ///
    /// Without a running pass it does nothing and reports nothing.
    pub fn end_defragmentation(&mut self) -> DefragmentationReport {
        if !self.defrag.running {
            return DefragmentationReport::default();
        }
        for slot in self.blocks.as_mut() {
            if let BlockState::Live(b) = &mut slot.state {
                b.emptying = false;
            }
        }
        self.defrag.running = false;
        self.defrag.report
    }

    /// Whether a defragmentation pass is running.
    pub fn is_defragmenting(&self) -> bool {
        self.defrag.running
    }

    /// A block being emptied has just lost its last allocation: it goes back to the device now.
    pub(crate) fn release_emptied_block(&mut self, slot: u32, size: u64) {
        self.defrag.report.blocks_released += 1;
        self.defrag.report.bytes_released += size;
        self.release_block(slot);
    }
}
