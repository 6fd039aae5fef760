//! The atomics the lock-free parts of core use, switched for loom's under `--cfg loom`.
//!
//! Loom replaces every atomic with one that records its accesses, so `cargo test --cfg loom` can
//! explore every interleaving of the ring's and the timeline's protocols. Code in core imports its
//! atomics from here, never from `core::sync::atomic` directly, so the same code runs under both.
//!
//! 64-bit timeline values need 64-bit atomics, which 32-bit targets such as
//! `thumbv7em-none-eabihf` lack. [`AtomicValue64`] is an `AtomicU64` where the target has one and,
//! elsewhere, a `u64` behind a spin lock held for a few instructions (the documented fallback).
//! On such targets do not touch a value that an interrupted thread may hold locked from an
//! interrupt handler: a spin lock cannot be taken from an interrupt on a single core.
//!
//! `--cfg memkit_value64_lock` selects the fallback on every target, so that the protocols built
//! on it can be tested where the machines that run tests have 64-bit atomics: under loom (where
//! the lock is loom's mutex, whose acquire and release loom models) and in the unit tests.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(all(loom, target_has_atomic = "64", not(memkit_value64_lock)))]
use loom::sync::atomic::AtomicU64;

#[cfg(all(not(loom), target_has_atomic = "64", not(memkit_value64_lock)))]
use core::sync::atomic::AtomicU64;

/// A `u64` shared between threads: an `AtomicU64` where the target has 64-bit atomics, a
/// spin-locked `u64` where it does not.
#[derive(Debug)]
pub(crate) struct AtomicValue64 {
    #[cfg(all(target_has_atomic = "64", not(memkit_value64_lock)))]
    value: AtomicU64,
    #[cfg(any(not(target_has_atomic = "64"), memkit_value64_lock))]
    value: spin_value64::SpinValue64,
}

impl AtomicValue64 {
    /// A cell holding `value`.
    pub(crate) fn new(value: u64) -> Self {
        Self {
            #[cfg(all(target_has_atomic = "64", not(memkit_value64_lock)))]
            value: AtomicU64::new(value),
            #[cfg(any(not(target_has_atomic = "64"), memkit_value64_lock))]
            value: spin_value64::SpinValue64::new(value),
        }
    }

    /// Reads the value.
    pub(crate) fn load(&self, order: Ordering) -> u64 {
        self.value.load(order)
    }

    /// Writes the value.
    pub(crate) fn store(&self, value: u64, order: Ordering) {
        self.value.store(value, order);
    }

    /// Raises the value to `value` if it is lower; returns the value before.
    pub(crate) fn fetch_max(&self, value: u64, order: Ordering) -> u64 {
        self.value.fetch_max(value, order)
    }

    /// Replaces `current` with `new` if the value is `current`.
    pub(crate) fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.value.compare_exchange(current, new, success, failure)
    }
}

// The fallback, compiled where it is used (and in the unit tests, which check it directly).
#[cfg(any(
    all(test, not(loom)),
    not(target_has_atomic = "64"),
    memkit_value64_lock
))]
pub(crate) mod spin_value64;
