//! The ring's one pointer layer: the byte region behind a [`StagingRing`], and the only code that
//! turns its offsets into slices.
//!
//! The region is a pointer and a length that never change: persistently mapped staging memory of
//! a GPU, or a plain array. The state machine in the parent module decides who may touch which
//! range; this layer trusts those decisions and says, at each `unsafe` block, which of them makes
//! the slice sound.
#![allow(unsafe_code)] // The parent denies it; this is the one place that must use it.

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use super::{DrainedRange, RingConsumer, StagingRing, WriteGrant};

/// The bytes a staging ring hands out: a pointer and a length that never change, valid for `'m`.
///
/// This is the one type in core that is `Send` and `Sync` by an `unsafe impl`; everything built
/// on it inherits those from here.
#[derive(Debug)]
pub struct RingMemory<'m> {
    base: NonNull<u8>,
    len: usize,
    _borrow: PhantomData<&'m mut [u8]>,
}

// SAFETY: `RingMemory` is a pointer to bytes it has exclusive use of (from a `&mut [u8]`, or by
// the contract of `from_raw_parts`); moving it to another thread moves that exclusive use.
unsafe impl Send for RingMemory<'_> {}

// SAFETY: shared use only ever creates slices over disjoint ranges at once: a grant's range is its
// holder's alone until commit, and a drained range is read-only until released. The ring's atomics
// (see the parent module) order every hand-over between threads.
unsafe impl Sync for RingMemory<'_> {}

impl<'m> RingMemory<'m> {
    /// The ring's memory is `bytes`, borrowed for as long as the ring lives.
    pub fn new(bytes: &'m mut [u8]) -> Self {
        Self {
            len: bytes.len(),
            base: NonNull::from(bytes).cast(),
            _borrow: PhantomData,
        }
    }

    /// The ring's memory is the `len` bytes at `base`: persistently mapped GPU memory, say.
    ///
    /// # Safety
    /// - `base` is valid for reads and writes of `len` bytes for the whole of `'m`, and stays
    ///   mapped that long;
    /// - nothing else reads or writes those bytes during `'m` except through the ring (the GPU
    ///   reading ranges the consumer drained and has not released is expected);
    /// - `len` is at most `isize::MAX`.
    pub unsafe fn from_raw_parts(base: NonNull<u8>, len: usize) -> Self {
        Self {
            base,
            len,
            _borrow: PhantomData,
        }
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (a ring refuses such memory).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest power of two the base address is a multiple of: offsets aligned to at most
    /// this are aligned addresses too.
    pub fn base_alignment(&self) -> usize {
        1 << self
            .base
            .as_ptr()
            .addr()
            .trailing_zeros()
            .min(usize::BITS - 1)
    }

    /// The bytes `[offset, offset + len)`, writable.
    ///
    /// # Safety
    /// - `offset + len <= self.len()`;
    /// - nothing else reads or writes those bytes while the returned slice lives.
    // Exclusive access comes from the caller's contract (the grant owns the range), not from
    // `&mut self`: many grants write disjoint ranges of one memory at once.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        debug_assert!(offset <= self.len && len <= self.len - offset);
        // SAFETY: `offset + len <= self.len` (caller's contract), so the pointer stays inside the
        // region, which is valid for reads and writes (constructor's contract); the caller
        // guarantees exclusive access for the slice's lifetime.
        unsafe { core::slice::from_raw_parts_mut(self.base.as_ptr().add(offset), len) }
    }

    /// The bytes `[offset, offset + len)`, read-only.
    ///
    /// # Safety
    /// - `offset + len <= self.len()`;
    /// - nothing writes those bytes while the returned slice lives.
    unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        debug_assert!(offset <= self.len && len <= self.len - offset);
        // SAFETY: in bounds and valid as in `slice_mut`; the caller guarantees no writer.
        unsafe { core::slice::from_raw_parts(self.base.as_ptr().add(offset), len) }
    }
}

impl<const GRANTS: usize> WriteGrant<'_, '_, GRANTS> {
    /// The granted bytes, to write the upload into. Their previous contents are unspecified
    /// (whatever an earlier upload left there).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the grant exclusively owns [offset, offset + len) until it is committed or
        // dropped, both of which consume it, so no other grant overlaps it and the consumer does
        // not read it before then; the range lies inside the ring (`place` keeps start + size
        // within the capacity, which is the memory's length). `&mut self` keeps this slice unique.
        unsafe { self.ring.memory.slice_mut(self.offset, self.len) }
    }

    /// Copies `data` to the start of the grant and commits exactly those bytes.
    ///
    /// Errors: [`super::CommitError::LengthExceedsGrant`] when `data` is longer than the grant
    /// (nothing is copied and the range is given up).
    pub fn write_and_commit(mut self, data: &[u8]) -> Result<(), super::CommitError> {
        if let Some(target) = self.bytes_mut().get_mut(..data.len()) {
            target.copy_from_slice(data);
        }
        self.commit(data.len())
    }
}

impl<'m, const GRANTS: usize, R: Deref<Target = StagingRing<'m, GRANTS>>> RingConsumer<R> {
    /// The bytes of a drained range, for a consumer that reads them on the CPU (a simulated
    /// device, a test). `None` for a range whose space was given back since (by
    /// [`RingConsumer::release_completed`]), for a range another consumer drained, and when the
    /// holder no longer dereferences to this consumer's ring.
    pub fn bytes<'s>(&'s self, range: &DrainedRange) -> Option<&'s [u8]>
    where
        'm: 's,
    {
        let ring = Self::own_ring(&self.ring, self.state.id)?;
        if !self.state.is_held(range) {
            return None;
        }
        // SAFETY: `ring` carries this consumer's id, and only the ring this consumer was taken
        // from does (ids are unique and a ring's is written once, in `RingConsumer::new`), so it
        // is that ring whatever the holder's `Deref` does, and no other consumer drains it.
        // `is_held` checked that [offset, offset + len) lies inside the memory and inside that
        // ring's space that this consumer drained and has not released: every grant there was
        // committed or dropped (so no producer writes it), and no grant is handed out there
        // before `release_completed`, which takes `&mut self` and so cannot run while this borrow
        // of `self` lives.
        Some(unsafe { ring.memory.slice(range.offset, range.len) })
    }
}
