//! The memory map: every memory object the pools hold and where the live allocations sit in
//! each, reported entry by entry without allocating ([`MemoryPools::visit_memory_map`]). What a
//! fragmentation picture or a detailed dump (VMA's `vmaBuildStatsString` with its detailed map)
//! is drawn from.
#![forbid(unsafe_code)]

use crate::device::MemoryDevice;
use crate::suballocator::LiveRange;
use crate::usage::ResourceKind;

use super::block_allocator::BlockAllocator;
use super::storage::{BlockSlot, BlockState, DedicatedSlot};
use super::{GROUPS, MemoryPools};

/// A block (a memory object the pools sub-allocate) in the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapBlock<M> {
    /// The block's slot in the block table (stable while the block lives).
    pub slot: u32,
    /// The memory object.
    pub memory: M,
    /// The memory type it was allocated from.
    pub memory_type: u32,
    /// The heap of that memory type.
    pub heap: u32,
    /// Bytes of the memory object.
    pub size: u64,
    /// Live sub-allocations in it: the number of [`MapEntry::Range`]s that follow.
    pub live: u32,
    /// Bytes held by its live sub-allocations, as asked of its sub-allocator (sizes rounded to
    /// `nonCoherentAtomSize` in non-coherent memory): the sum of the ranges' `requested`. What
    /// [`super::PoolStats::allocated_bytes`] sums.
    pub allocated_bytes: u64,
    /// The resources it holds when linear and optimal resources get separate blocks
    /// (`bufferImageGranularity` above the block granule); `None` when one block serves both.
    pub kind: Option<ResourceKind>,
    /// Whether the block is mapped into host memory.
    pub mapped: bool,
}

/// A dedicated allocation (a memory object of its own, one live allocation) in the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapDedicated<M> {
    /// Its slot in the dedicated-object table.
    pub slot: u32,
    /// The memory object.
    pub memory: M,
    /// The memory type it was allocated from.
    pub memory_type: u32,
    /// The heap of that memory type.
    pub heap: u32,
    /// Bytes of the memory object (the allocation's size).
    pub size: u64,
    /// Whether it is mapped into host memory.
    pub mapped: bool,
}

/// One entry of the memory map, as [`MemoryPools::visit_memory_map`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapEntry<M> {
    /// A block; the [`MapEntry::Range`]s right after it (exactly [`MapBlock::live`] of them) are
    /// its live sub-allocations.
    Block(MapBlock<M>),
    /// A live sub-allocation of the block reported last, with offsets inside that block (see
    /// [`LiveRange`] for what `offset` and `reserved` cover).
    Range(LiveRange),
    /// A dedicated allocation.
    Dedicated(MapDedicated<M>),
}

impl<D, A, BS, DS> MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// Reports the memory map to `visit`: every block by rising slot, each as a
    /// [`MapEntry::Block`] followed by one [`MapEntry::Range`] per live sub-allocation (in the
    /// sub-allocator's order, see [`visit_live`](crate::SubAllocator::visit_live)), then every
    /// dedicated allocation by rising slot as a [`MapEntry::Dedicated`]. Empty blocks kept for
    /// reuse are reported too, with no ranges.
    ///
    /// Allocates nothing and changes nothing. O(block slots + dedicated slots + live
    /// sub-allocations); for reports, not hot paths.
    pub fn visit_memory_map(&self, visit: &mut dyn FnMut(MapEntry<D::Memory>)) {
        for (slot, entry) in self.blocks.as_ref().iter().enumerate() {
            let BlockState::Live(b) = &entry.state else {
                continue;
            };
            let memory_type = u32::from(b.memory_type);
            let kind = if self.hot.separate_kinds {
                Some(
                    if usize::from(b.set) % GROUPS == ResourceKind::Optimal.index() {
                        ResourceKind::Optimal
                    } else {
                        ResourceKind::Linear
                    },
                )
            } else {
                None
            };
            visit(MapEntry::Block(MapBlock {
                slot: slot as u32,
                memory: b.memory,
                memory_type,
                heap: self.heap_of(memory_type),
                size: b.size,
                live: b.live,
                allocated_bytes: b.size - b.free,
                kind,
                mapped: b.mapped.is_some(),
            }));
            b.allocator
                .visit_live(&mut |range| visit(MapEntry::Range(range)));
        }
        for (slot, entry) in self.dedicated.as_ref().iter().enumerate() {
            if let Some(o) = &entry.object {
                let memory_type = u32::from(o.memory_type);
                visit(MapEntry::Dedicated(MapDedicated {
                    slot: slot as u32,
                    memory: o.memory,
                    memory_type,
                    heap: self.heap_of(memory_type),
                    size: o.size,
                    mapped: o.mapped.is_some(),
                }));
            }
        }
    }

    /// The heap of memory type `memory_type` (one the pools hold an object of).
    fn heap_of(&self, memory_type: u32) -> u32 {
        self.types
            .get(memory_type as usize)
            .map_or(0, |t| t.heap_index)
    }
}
