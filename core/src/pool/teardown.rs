//! Teardown: [`MemoryPools::destroy`] frees everything and reports leaks; dropping the pools
//! frees only what is safe to free without the caller's word.
// No `unsafe` block here: `destroy` is an `unsafe fn` only for its contract with the caller.
#![deny(unsafe_code)]

use crate::device::{MAX_MEMORY_TYPES, MemoryDevice};

use super::MemoryPools;
use super::block_allocator::BlockAllocator;
use super::stats::TeardownReport;
use super::storage::{BlockSlot, BlockState, DedicatedSlot};

impl<D, A, BS, DS> MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// Frees every memory object, live allocations included, and reports those as leaks.
    ///
    /// # Safety
    /// - the GPU has finished every use of every allocation of these pools;
    /// - no resource still bound to their memory is used again, and no pointer into a mapping
    ///   is used afterwards.
    #[allow(
        unsafe_code,
        reason = "an unsafe fn for its contract; no unsafe block inside"
    )]
    pub unsafe fn destroy(mut self) -> TeardownReport {
        let mut report = TeardownReport {
            leaked_allocations: 0,
            leaked_bytes: 0,
            leaked_by_type: [0; MAX_MEMORY_TYPES],
            objects_freed: 0,
        };
        for slot in 0..self.blocks.as_ref().len() {
            if let BlockState::Live(b) = &self.blocks.as_ref()[slot].state {
                report.leaked_allocations += u64::from(b.live);
                report.leaked_bytes += b.size - b.free;
                report.leaked_by_type[usize::from(b.memory_type)] += b.live;
                report.objects_freed += 1;
                self.release_block(slot as u32);
            }
        }
        for slot in 0..self.dedicated.as_ref().len() {
            let entry = &mut self.dedicated.as_mut()[slot];
            if let Some(o) = entry.object.take() {
                entry.generation = entry.generation.wrapping_add(1);
                report.leaked_allocations += 1;
                report.leaked_bytes += o.size;
                report.leaked_by_type[usize::from(o.memory_type)] += 1;
                report.objects_freed += 1;
                let stats = &mut self.type_stats[usize::from(o.memory_type)];
                stats.dedicated_objects -= 1;
                stats.dedicated_bytes -= o.size;
                self.objects -= 1;
                let heap = self.types[usize::from(o.memory_type)].heap_index;
                self.budgets.on_free(heap as usize, o.size);
                self.free_object(o.memory, o.mapped);
            }
        }
        report
    }
}

impl<D, A, BS, DS> Drop for MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// Frees the empty blocks (their ranges were all given back under `free`'s contract, so the
    /// GPU is done with them). Memory still holding live allocations is leaked, not freed: the
    /// GPU may still use it; its slots stay live, and new pools refuse tables that hold them
    /// ([`super::PoolConfigError::BlockSlotInUse`]). Call [`MemoryPools::destroy`] to free
    /// everything.
    fn drop(&mut self) {
        self.trim();
    }
}
