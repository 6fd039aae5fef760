//! The one place with `unsafe`: host memory behind a mapped memory object.
//!
//! A mapped object hands the test a raw pointer that must stay valid and stable for the object's
//! life, and the simulated GPU reads and writes the same bytes. The bytes come from a zeroed
//! allocation (`calloc`), which the operating system backs lazily, so a large object costs nothing
//! until it is touched. Every access goes through raw pointers derived from the one base pointer,
//! so the pointer handed out is never invalidated by a reference created here.
//!
//! Concurrency: the host writes through the pointer without any lock, and the simulated GPU reads
//! under the device's lock. A correct caller never lets both touch the same bytes at once (that is
//! exactly the hazard memkit's fences prevent, and the misuse detectors report when a range changed
//! between submit and execution); disjoint ranges are accessed concurrently, which is sound.
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

/// A zeroed, lazily backed, fixed-address byte range of `len` bytes whose first byte is aligned
/// to the alignment asked for.
pub(crate) struct HostBytes {
    /// What `alloc_zeroed` returned, for `dealloc`.
    base: NonNull<u8>,
    /// The layout it was allocated with.
    layout: Layout,
    /// `base` advanced to the requested alignment; the first of `len` usable bytes.
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: `HostBytes` owns its allocation exclusively (like a `Box<[u8]>`); the raw pointers are
// only dereferenced inside `[start, start + len)`, which stays allocated until drop. Moving the
// owner to another thread or sharing it is as sound as for a boxed slice; cross-thread byte races
// are the documented caller contract above.
unsafe impl Send for HostBytes {}
// SAFETY: as for `Send`; `&self` methods only read the bytes or hand out the address.
unsafe impl Sync for HostBytes {}

impl HostBytes {
    /// Allocates `len` zeroed bytes whose start is aligned to `align` (a power of two), or `None`
    /// when the host cannot provide them (or the size does not fit the address space).
    pub(crate) fn new_zeroed(len: u64, align: u64) -> Option<Self> {
        let len = usize::try_from(len).ok()?;
        let align = usize::try_from(align).ok()?.max(1);
        if !align.is_power_of_two() {
            return None;
        }
        // Alignment 1 keeps `alloc_zeroed` on `calloc`, which large sizes get as fresh, lazily
        // backed pages; a larger layout alignment would make std zero every byte by hand. The
        // extra `align` bytes let the start be aligned by hand instead.
        let total = len.max(1).checked_add(align)?;
        let layout = Layout::from_size_align(total, 1).ok()?;
        // SAFETY: `layout` has a nonzero size (`total >= 1`).
        let base = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        let pad = base.as_ptr().align_offset(align);
        if pad >= align {
            // `align_offset` may give up; then no aligned start exists in our slack.
            // SAFETY: `base` came from `alloc_zeroed(layout)` just above.
            unsafe { dealloc(base.as_ptr(), layout) };
            return None;
        }
        // `pad < align`, so `[pad, pad + len)` lies inside the `len + align` bytes allocated.
        let start = NonNull::new(base.as_ptr().wrapping_add(pad))?;
        Some(Self {
            base,
            layout,
            start,
            len,
        })
    }

    /// Bytes usable.
    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    /// The address of the first byte; stable for this value's life.
    pub(crate) fn as_ptr(&self) -> NonNull<u8> {
        self.start
    }

    /// Checks `[offset, offset + n)` lies inside and returns the offset as `usize`.
    fn checked(&self, offset: u64, n: usize) -> usize {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        assert!(
            offset <= self.len && n <= self.len - offset,
            "memkit-dummy internal error: host range {offset}+{n} outside {} bytes",
            self.len
        );
        offset
    }

    /// Copies `out.len()` bytes starting at `offset` into `out`.
    ///
    /// # Panics
    /// When the range is outside (an internal bug: callers check ranges first).
    pub(crate) fn read(&self, offset: u64, out: &mut [u8]) {
        let offset = self.checked(offset, out.len());
        // SAFETY: `[offset, offset + out.len())` is inside the allocation (checked above); `out`
        // is a separate exclusive slice, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.start.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            );
        }
    }

    /// Copies `data` into the bytes starting at `offset`.
    ///
    /// # Panics
    /// When the range is outside (an internal bug: callers check ranges first).
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let offset = self.checked(offset, data.len());
        // SAFETY: the destination range is inside the allocation (checked above); `data` is a
        // shared slice of other memory (we hold `&mut self`, so it cannot borrow these bytes).
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.start.as_ptr().add(offset),
                data.len(),
            );
        }
    }

    /// Sets `n` bytes starting at `offset` to `byte`.
    ///
    /// # Panics
    /// When the range is outside (an internal bug: callers check ranges first).
    pub(crate) fn fill(&mut self, offset: u64, n: u64, byte: u8) {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let offset = self.checked(offset, n);
        // SAFETY: `[offset, offset + n)` is inside the allocation (checked above).
        unsafe { std::ptr::write_bytes(self.start.as_ptr().add(offset), byte, n) };
    }

    /// Calls `f` with the bytes `[offset, offset + n)` as a slice.
    ///
    /// # Panics
    /// When the range is outside (an internal bug: callers check ranges first).
    pub(crate) fn with_slice<R>(&self, offset: u64, n: u64, f: impl FnOnce(&[u8]) -> R) -> R {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let offset = self.checked(offset, n);
        // SAFETY: the range is inside the allocation and initialised (zeroed at allocation); the
        // slice lives only for the call, during which this crate does not write these bytes
        // (writes need `&mut self`); the host must not write them either (module contract).
        let bytes = unsafe { std::slice::from_raw_parts(self.start.as_ptr().add(offset), n) };
        f(bytes)
    }
}

impl Drop for HostBytes {
    fn drop(&mut self) {
        // SAFETY: `base` was returned by `alloc_zeroed(self.layout)` and is freed only here.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

impl std::fmt::Debug for HostBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBytes")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests;
