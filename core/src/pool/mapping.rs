//! Host mappings: the one place a raw pointer lives, and the flush/invalidate range rounding.
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
