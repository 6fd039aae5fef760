//! Host mappings: the one place a raw pointer lives, the flush/invalidate range rounding, and
//! [`MemoryPools::flush`] / [`MemoryPools::invalidate`].
//!
//! A host-visible block is mapped once when it is created and stays mapped until it is freed.
//! Allocations carry a [`HostPtr`] to their first byte, computed from the block's base address
//! and the allocation's offset; nothing in memkit dereferences it.
//!
//! Non-coherent memory is flushed and invalidated in whole `nonCoherentAtomSize` atoms. So that
//! rounding one allocation's range out to atoms never reaches into a neighbour's bytes (an
//! invalidate there would throw away the neighbour's unflushed writes), the pools align every
//! allocation in a non-coherent type to the atom and round its size up to the atom.

use core::ptr::NonNull;

use crate::device::{MappedRange, MemoryDevice, MemoryPropertyFlags};
use crate::suballocator::FreeError;

use super::allocation::{DeviceAllocation, Placement, RawDeviceAllocation};
use super::block_allocator::BlockAllocator;
use super::error::FlushError;
use super::storage::{BlockSlot, BlockState, DedicatedSlot};
use super::{MemoryPools, sub_allocation_of};

/// The host address of a byte of mapped device memory.
///
/// It is only an address: reading or writing through it is the caller's `unsafe` business, and
/// is valid while the allocation it came from is live. That is also why it may cross threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostPtr(NonNull<u8>);

// SAFETY: a HostPtr is an address with no access rights attached; every dereference needs
// `unsafe` code that must itself establish the allocation is live and not raced on, so sending or
// sharing the address between threads cannot by itself cause a data race.
unsafe impl Send for HostPtr {}
// SAFETY: as for Send: shared access to the address grants no access to the bytes.
unsafe impl Sync for HostPtr {}

impl HostPtr {
    /// Wraps a mapping's base address.
    pub const fn new(ptr: NonNull<u8>) -> Self {
        Self(ptr)
    }

    /// The address.
    pub const fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }

    /// The address as `NonNull`.
    pub const fn as_non_null(self) -> NonNull<u8> {
        self.0
    }

    /// The address `offset` bytes further, or `None` when it does not fit the address space.
    /// Computed with wrapping arithmetic (no dereference, no `unsafe`); the pools only offset
    /// into the mapped object, so the result stays inside the mapping.
    pub fn offset(self, offset: u64) -> Option<Self> {
        let offset = usize::try_from(offset).ok()?;
        NonNull::new(self.0.as_ptr().wrapping_add(offset)).map(Self)
    }
}

/// `[offset, offset + size)` of a memory object of `object_size` bytes, rounded out to whole
/// atoms and clamped to the object: the range `vkFlushMappedMemoryRanges` accepts (offset a
/// multiple of the atom; size a multiple of it or reaching the end of the object). `None` for an
/// empty range, a range outside the object, or an atom that is not a power of two.
pub fn atom_range(offset: u64, size: u64, atom: u64, object_size: u64) -> Option<(u64, u64)> {
    if size == 0 || !atom.is_power_of_two() {
        return None;
    }
    let end = offset.checked_add(size)?;
    if end > object_size {
        return None;
    }
    let start = offset & !(atom - 1);
    let end = end
        .checked_next_multiple_of(atom)
        .unwrap_or(u64::MAX)
        .min(object_size);
    Some((start, end - start))
}

impl<D, A, BS, DS> MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// The memory object, its size and its memory type behind a live allocation. Refuses a
    /// foreign or stale handle as `free` does (`ForeignAllocation`, `StaleAllocation`).
    pub(super) fn object_of(
        &self,
        raw: &RawDeviceAllocation<D::Memory>,
    ) -> Result<(D::Memory, u64, u32), FlushError> {
        if raw.pools != self.id {
            return Err(FlushError::ForeignAllocation);
        }
        let found = match raw.placement {
            Placement::Block { slot, tag, epoch } => {
                let entry = self
                    .blocks
                    .as_ref()
                    .get(raw.slot as usize)
                    .ok_or(FlushError::ForeignAllocation)?;
                let BlockState::Live(b) = &entry.state else {
                    return Err(FlushError::StaleAllocation);
                };
                if entry.generation != raw.generation {
                    return Err(FlushError::StaleAllocation);
                }
                // The block outlives its ranges: the range must still be this handle's, exactly
                // as `free` checks it, or a freed handle would act on the range's next owner
                // (and a forged size on more than it owned).
                sub_allocation_of(b, raw, slot, tag, epoch, self.hot.atom)
                    .and_then(|sub| b.allocator.check_live(&sub))
                    .map_err(|e| match e {
                        FreeError::ForeignAllocation => FlushError::ForeignAllocation,
                        _ => FlushError::StaleAllocation,
                    })?;
                (b.memory, b.size, u32::from(b.memory_type))
            }
            Placement::Dedicated => {
                let entry = self
                    .dedicated
                    .as_ref()
                    .get(raw.slot as usize)
                    .ok_or(FlushError::ForeignAllocation)?;
                match entry.object {
                    Some(o) if entry.generation == raw.generation => {
                        (o.memory, o.size, u32::from(o.memory_type))
                    }
                    _ => return Err(FlushError::StaleAllocation),
                }
            }
        };
        // Both placements: a handle naming another memory object or memory type than its
        // slot's is not ours (as `free` refuses it).
        if found.0 != raw.memory || found.2 != raw.memory_type {
            return Err(FlushError::ForeignAllocation);
        }
        Ok(found)
    }

    /// The device range a flush or invalidate of `[offset, offset + size)` of `allocation`
    /// covers, or `None` when the memory is coherent (nothing to do).
    fn atom_range_of(
        &self,
        allocation: &DeviceAllocation<D::Memory>,
        offset: u64,
        size: u64,
    ) -> Result<Option<MappedRange<D::Memory>>, FlushError> {
        let raw = allocation.raw();
        let (memory, object_size, memory_type) = self.object_of(raw)?;
        let flags = self.types[memory_type as usize].properties;
        if !flags.contains(MemoryPropertyFlags::HOST_VISIBLE) {
            return Err(FlushError::NotHostVisible);
        }
        let end = offset.checked_add(size).ok_or(FlushError::OutOfRange)?;
        if end > raw.size {
            return Err(FlushError::OutOfRange);
        }
        if size == 0 || flags.contains(MemoryPropertyFlags::HOST_COHERENT) {
            return Ok(None);
        }
        // Checked: a handle rebuilt from raw parts may carry any offset.
        let start = raw
            .offset
            .checked_add(offset)
            .ok_or(FlushError::OutOfRange)?;
        let (start, len) = atom_range(start, size, self.limits.non_coherent_atom_size, object_size)
            .ok_or(FlushError::OutOfRange)?;
        Ok(Some(MappedRange {
            memory,
            offset: start,
            size: len,
        }))
    }

    /// Makes host writes to `[offset, offset + size)` of the allocation visible to the device.
    /// Rounded out to `nonCoherentAtomSize` (allocations in non-coherent memory own whole atoms)
    /// and clamped to the memory object; nothing is done for coherent memory.
    pub fn flush(
        &self,
        allocation: &DeviceAllocation<D::Memory>,
        offset: u64,
        size: u64,
    ) -> Result<(), FlushError> {
        match self.atom_range_of(allocation, offset, size)? {
            Some(range) => {
                // SAFETY: `object_of` found the object live in these pools, and a live
                // host-visible object is mapped; `atom_range` gives an atom-aligned offset and a
                // size that is a multiple of the atom or reaches the end of the object.
                unsafe { self.device.flush_ranges(&[range]) }.map_err(FlushError::Device)
            }
            None => Ok(()),
        }
    }

    /// Makes device writes to `[offset, offset + size)` of the allocation visible to the host.
    /// Rounded and skipped as [`MemoryPools::flush`] is.
    pub fn invalidate(
        &self,
        allocation: &DeviceAllocation<D::Memory>,
        offset: u64,
        size: u64,
    ) -> Result<(), FlushError> {
        match self.atom_range_of(allocation, offset, size)? {
            Some(range) => {
                // SAFETY: as for `flush`: the object is live and mapped, the range is
                // atom-aligned and clamped to it.
                unsafe { self.device.invalidate_ranges(&[range]) }.map_err(FlushError::Device)
            }
            None => Ok(()),
        }
    }
}
