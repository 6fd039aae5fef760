//! Process-wide instance ids: what lets an allocator, a frame pacer or a ring consumer tell its
//! own handles from those of another instance.
//!
//! Two kinds, for two uses. [`next_wrapping`] ids come round again after `2^32 - 1` instances:
//! they only turn a caller's mistake (another instance's handle) into a typed error, and a
//! collision needs four billion instances in between. [`next_unique`] ids are never handed out
//! twice: the staging ring's unsafe code relies on them, so running out is an error instead.
//!
//! Core's atomics, not the loom shim's, in both: a `static` outlives one model run. Relaxed
//! orderings: only uniqueness matters, and a read-modify-write is atomic at any ordering.
#![forbid(unsafe_code)]

use core::num::{NonZeroU32, NonZeroUsize};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// A nonzero id, unique among the last `2^32 - 1` handed out (0 is skipped when the counter
/// wraps).
pub(crate) fn next_wrapping() -> NonZeroU32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    loop {
        if let Some(id) = NonZeroU32::new(NEXT.fetch_add(1, Ordering::Relaxed)) {
            return id;
        }
    }
}

/// A nonzero id never handed out before in this process; `None` once `usize::MAX - 1` were (only
/// a 32-bit target gets there).
pub(crate) fn next_unique() -> Option<NonZeroUsize> {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let mut id = NEXT.load(Ordering::Relaxed);
    loop {
        // Stops at the last id rather than wrapping round to ids handed out before.
        let next = id.checked_add(1)?;
        match NEXT.compare_exchange_weak(id, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return NonZeroUsize::new(id),
            Err(current) => id = current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_nonzero_and_distinct() {
        let (a, b) = (next_wrapping(), next_wrapping());
        assert_ne!(a, b);
        let (c, d) = (next_unique().unwrap(), next_unique().unwrap());
        assert!(d > c, "unique ids only grow: {c} then {d}");
    }
}
