//! The fixed-capacity tables the pools keep their memory objects in, given at construction:
//! one [`BlockSlot`] per block (with that block's sub-allocator metadata storage) and one
//! [`DedicatedSlot`] per dedicated object. Running out of either is a typed error.
#![forbid(unsafe_code)]

use super::block_allocator::BlockAllocator;
use super::mapping::HostPtr;

/// "No slot" in the intrusive lists.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// A slot for one block. Build each with the metadata storage its sub-allocator needs for the
/// largest block (see [`super::MemoryPools::block_storage_len`]).
///
/// Laid out so that what every allocation and free in the block reads and writes (the
/// generation, the state's tag and the head of the live block) fills the slot's first cache line.
#[repr(C, align(64))]
pub struct BlockSlot<M, A: BlockAllocator> {
    /// Bumped each time the slot's block is released, so handles into it go stale.
    pub(crate) generation: u32,
    /// Next slot in the free list (vacant) or in its pool's block list (live).
    pub(crate) link: u32,
    pub(crate) state: BlockState<M, A>,
}

impl<M, A: BlockAllocator> BlockSlot<M, A> {
    /// A vacant slot holding the metadata storage for the sub-allocator of a future block.
    pub const fn new(storage: A::Storage) -> Self {
        Self {
            generation: 0,
            link: NO_SLOT,
            state: BlockState::Vacant(storage),
        }
    }

    /// Whether the slot holds a block.
    pub const fn is_live(&self) -> bool {
        matches!(self.state, BlockState::Live(_))
    }
}

/// What a block slot holds. `repr(C, u8)`: the tag comes first, then the variant.
#[repr(C, u8)]
pub(crate) enum BlockState<M, A: BlockAllocator> {
    /// No block: the metadata storage, waiting.
    Vacant(A::Storage),
    /// A block.
    Live(LiveBlock<M, A>),
    /// The storage was lost to a failed sub-allocator construction; never used again.
    Poisoned,
}

/// A block: a memory object and the sub-allocator over it. `repr(C)`: the fields every
/// allocation and free touch first (with a 64-bit memory handle they end within the slot's
/// first cache line), the block's size and the sub-allocator after them.
#[repr(C)]
pub(crate) struct LiveBlock<M, A> {
    /// Bytes not held by live sub-allocations (as asked of the sub-allocator).
    pub(crate) free: u64,
    /// The smallest request (size, alignment) refused since the block last had a range freed:
    /// a request at least as large at an alignment at least as strict cannot fit either, so
    /// the pools skip the block without asking its sub-allocator. `(u64::MAX, u64::MAX)`: none.
    pub(crate) refused: (u64, u64),
    pub(crate) mapped: Option<HostPtr>,
    pub(crate) memory: M,
    /// Live sub-allocations.
    pub(crate) live: u32,
    pub(crate) memory_type: u8,
    /// Index of the block set (memory type x resource-kind group) it belongs to.
    pub(crate) set: u8,
    /// Allocations own whole `nonCoherentAtomSize` atoms (non-coherent host-visible memory).
    pub(crate) whole_atoms: bool,
    /// A defragmentation pass is emptying it: allocations go elsewhere while they can, and it
    /// is released as soon as it is empty.
    pub(crate) emptying: bool,
    pub(crate) size: u64,
    pub(crate) allocator: A,
}

/// A slot for one dedicated memory object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedicatedSlot<M> {
    pub(crate) generation: u32,
    pub(crate) link: u32,
    pub(crate) object: Option<DedicatedObject<M>>,
}

impl<M> DedicatedSlot<M> {
    /// A vacant slot.
    pub const fn new() -> Self {
        Self {
            generation: 0,
            link: NO_SLOT,
            object: None,
        }
    }
}

impl<M> Default for DedicatedSlot<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// A dedicated memory object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DedicatedObject<M> {
    pub(crate) memory: M,
    pub(crate) size: u64,
    pub(crate) mapped: Option<HostPtr>,
    pub(crate) memory_type: u8,
}
