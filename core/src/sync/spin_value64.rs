//! The fallback for targets without 64-bit atomics (see the parent module).

use super::Ordering;

/// The fallback for targets without 64-bit atomics: a `u64` behind a spin lock. Every operation
/// holds the lock for a handful of instructions and never calls out while holding it, so a
/// waiting thread spins for at most that long (unless the holder is preempted). Under loom the
/// lock is loom's mutex, which loom models (it cannot see inside `spin`'s).
pub(crate) struct SpinValue64 {
    #[cfg(not(loom))]
    value: spin::mutex::SpinMutex<u64>,
    #[cfg(loom)]
    value: loom::sync::Mutex<u64>,
}

impl SpinValue64 {
    pub(crate) fn new(value: u64) -> Self {
        Self {
            #[cfg(not(loom))]
            value: spin::mutex::SpinMutex::new(value),
            #[cfg(loom)]
            value: loom::sync::Mutex::new(value),
        }
    }

    #[cfg(not(loom))]
    fn lock(&self) -> impl core::ops::DerefMut<Target = u64> + '_ {
        self.value.lock()
    }

    #[cfg(loom)]
    fn lock(&self) -> impl core::ops::DerefMut<Target = u64> + '_ {
        // Poisoned only by a panic while held, and nothing here panics while holding it.
        self.value
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // The lock's acquire on lock and release on unlock order every access at least as strongly as
    // any `Ordering` a caller asks for, short of a total order across different cells, which no
    // caller in core relies on (the loom tests check the ring and the timeline with this cell
    // under `--cfg memkit_value64_lock`); so the orderings are accepted and ignored.

    pub(crate) fn load(&self, _order: Ordering) -> u64 {
        *self.lock()
    }

    pub(crate) fn store(&self, value: u64, _order: Ordering) {
        *self.lock() = value;
    }

    pub(crate) fn fetch_max(&self, value: u64, _order: Ordering) -> u64 {
        let mut guard = self.lock();
        let before = *guard;
        *guard = before.max(value);
        before
    }

    pub(crate) fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        _success: Ordering,
        _failure: Ordering,
    ) -> Result<u64, u64> {
        let mut guard = self.lock();
        if *guard == current {
            *guard = new;
            Ok(current)
        } else {
            Err(*guard)
        }
    }
}

impl core::fmt::Debug for SpinValue64 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SpinValue64").field(&*self.lock()).finish()
    }
}
