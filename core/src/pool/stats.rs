//! Statistics per memory type and per heap, and the teardown report.
#![forbid(unsafe_code)]

use crate::device::{MAX_MEMORY_TYPES, MemoryDevice};

use super::MemoryPools;
use super::block_allocator::BlockAllocator;
use super::storage::{BlockSlot, BlockState, DedicatedSlot};

/// One memory type's pool, or (summed) one heap's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PoolStats {
    /// Blocks (memory objects that are sub-allocated).
    pub blocks: u32,
    /// Blocks with no live allocation, kept to spare the next allocation a device call.
    pub empty_blocks: u32,
    /// Bytes of all blocks.
    pub block_bytes: u64,
    /// Bytes of blocks held by live sub-allocations (sizes as reserved: rounded to atoms for
    /// non-coherent memory).
    pub allocated_bytes: u64,
    /// Live sub-allocations.
    pub sub_allocations: u64,
    /// Dedicated memory objects (each one live allocation).
    pub dedicated_objects: u32,
    /// Bytes of dedicated objects.
    pub dedicated_bytes: u64,
}

impl PoolStats {
    /// Bytes of memory objects held from the device.
    pub const fn reserved_bytes(&self) -> u64 {
        self.block_bytes + self.dedicated_bytes
    }

    /// Bytes held by live allocations.
    pub const fn used_bytes(&self) -> u64 {
        self.allocated_bytes + self.dedicated_bytes
    }

    /// Live allocations, sub-allocated and dedicated.
    pub const fn live_allocations(&self) -> u64 {
        self.sub_allocations + self.dedicated_objects as u64
    }

    /// Memory objects held from the device.
    pub const fn memory_objects(&self) -> u32 {
        self.blocks + self.dedicated_objects
    }

    /// Adds another pool's figures.
    pub fn add(&mut self, other: &Self) {
        self.blocks += other.blocks;
        self.empty_blocks += other.empty_blocks;
        self.block_bytes += other.block_bytes;
        self.allocated_bytes += other.allocated_bytes;
        self.sub_allocations += other.sub_allocations;
        self.dedicated_objects += other.dedicated_objects;
        self.dedicated_bytes += other.dedicated_bytes;
    }
}

/// One heap: its pools' figures summed, and its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeapStats {
    /// The pools of every memory type of the heap, summed.
    pub pools: PoolStats,
    /// Bytes the process may use in the heap.
    pub budget: u64,
    /// Bytes the process uses in the heap (memory outside memkit included when the device
    /// reports budgets).
    pub usage: u64,
    /// Whether `budget` and `usage` come from the device, not estimates.
    pub budget_from_device: bool,
}

/// What [`super::MemoryPools::destroy`] found and freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TeardownReport {
    /// Allocations still live (never freed by the caller): leaks.
    pub leaked_allocations: u64,
    /// Bytes those allocations held.
    pub leaked_bytes: u64,
    /// Leaked allocations per memory type.
    pub leaked_by_type: [u32; MAX_MEMORY_TYPES],
    /// Memory objects freed.
    pub objects_freed: u32,
}

impl TeardownReport {
    /// Whether every allocation had been freed.
    pub const fn is_clean(&self) -> bool {
        self.leaked_allocations == 0
    }

    /// `(memory type, leaked allocations)` for each type that leaked.
    pub fn leaks(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.leaked_by_type
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (t as u32, *n))
    }
}

impl<D, A, BS, DS> MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// Every type's statistics. The per-block figures (sub-allocations, bytes in them, empty
    /// blocks) are summed from the blocks here, so the allocate and free paths touch nothing but
    /// the block they use.
    fn all_type_stats(&self) -> [PoolStats; MAX_MEMORY_TYPES] {
        let mut stats = self.type_stats;
        for slot in self.blocks.as_ref() {
            if let BlockState::Live(b) = &slot.state {
                let s = &mut stats[usize::from(b.memory_type)];
                s.sub_allocations += u64::from(b.live);
                s.allocated_bytes += b.size - b.free;
                s.empty_blocks += u32::from(b.live == 0);
            }
        }
        stats
    }

    /// Statistics of memory type `memory_type`'s pool. O(block slots).
    pub fn type_stats(&self, memory_type: u32) -> Option<PoolStats> {
        if memory_type as usize >= self.type_count {
            return None;
        }
        Some(self.all_type_stats()[memory_type as usize])
    }

    /// Statistics of heap `heap`: its types' pools summed, and its budget. O(block slots).
    pub fn heap_stats(&self, heap: u32) -> Option<HeapStats> {
        if heap as usize >= self.properties.heaps().len() {
            return None;
        }
        let all = self.all_type_stats();
        let mut pools = PoolStats::default();
        for (t, ty) in self.types[..self.type_count].iter().enumerate() {
            if ty.heap_index == heap {
                pools.add(&all[t]);
            }
        }
        Some(HeapStats {
            pools,
            budget: self.budgets.budget(heap as usize),
            usage: self.budgets.usage(heap as usize),
            budget_from_device: self.budgets.from_device(),
        })
    }

    /// Every pool's statistics summed. O(block slots).
    pub fn total_stats(&self) -> PoolStats {
        let mut total = PoolStats::default();
        for s in &self.all_type_stats()[..self.type_count] {
            total.add(s);
        }
        total
    }
}
