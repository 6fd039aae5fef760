//! Timeline tracking: which submissions were made, which the GPU finished, and what each
//! submission's state is.
//!
//! A submission gets a [`FenceValue`]; values rise by one per submission. The tracker knows the
//! last value submitted and the last value the device reported complete, and from those answers
//! [`TimelineTracker::state`] for any value: unsubmitted, pending, signalled, or (terminal) device
//! lost. It only records; waiting is the adapter's business, since core never blocks.
//!
//! Backends with timeline semaphores signal the value itself; backends with only binary fences
//! use [`FencePool`], which emulates the timeline with a fixed set of fences.
#![forbid(unsafe_code)]

pub mod fence_pool;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

use core::fmt;

use crate::sync::{AtomicBool, AtomicValue64, Ordering};

pub use fence_pool::{FencePool, FenceSlot};

/// A point on a GPU timeline: the value a submission signals when the GPU has finished it.
///
/// Value 0 is "before any submission": it is complete from the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FenceValue(u64);

impl FenceValue {
    /// The value before any submission; always complete.
    pub const ZERO: Self = Self(0);

    /// The value `value`.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw value (what a timeline semaphore is signalled with).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FenceValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where one submission stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubmissionState {
    /// No submission has this value yet.
    Unsubmitted,
    /// Submitted; the GPU has not reported it complete.
    Pending,
    /// The GPU finished it. Final.
    Signalled,
    /// The device was lost before the GPU reported it complete. Final: it never completes.
    DeviceLost,
}

/// Why a submission could not be recorded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubmitError {
    /// The device is lost; nothing more can be submitted.
    DeviceLost,
    /// All `u64` values are used up.
    ValuesExhausted,
    /// Every fence of a [`FencePool`] is in use: the submission with value `wait_for` must
    /// complete first.
    FencePoolExhausted {
        /// The value whose completion frees a fence.
        wait_for: FenceValue,
    },
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DeviceLost => f.write_str("the device is lost"),
            Self::ValuesExhausted => f.write_str("timeline values are exhausted"),
            Self::FencePoolExhausted { wait_for } => write!(
                f,
                "every fence is in use: timeline value {wait_for} must complete first"
            ),
        }
    }
}

impl core::error::Error for SubmitError {}

/// Why a completion could not be recorded. A refused signal changes nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalError {
    /// The device reported a value that was never submitted.
    NeverSubmitted {
        /// The value reported.
        value: FenceValue,
        /// The last value submitted.
        submitted: FenceValue,
    },
    /// The device reported a value below one it reported before: its counter went backwards.
    WentBackwards {
        /// The value reported.
        value: FenceValue,
        /// The completed value already recorded.
        completed: FenceValue,
    },
    /// The device is lost; completions are no longer recorded.
    DeviceLost,
    /// A [`FencePool`] fence was reported signalled that holds no pending submission.
    FenceNotPending {
        /// The fence's index in the pool.
        fence: usize,
    },
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NeverSubmitted { value, submitted } => write!(
                f,
                "timeline value {value} completed but only {submitted} was submitted"
            ),
            Self::WentBackwards { value, completed } => write!(
                f,
                "timeline went backwards: {value} reported after {completed}"
            ),
            Self::DeviceLost => f.write_str("the device is lost"),
            Self::FenceNotPending { fence } => {
                write!(
                    f,
                    "fence {fence} was signalled but holds no pending submission"
                )
            }
        }
    }
}

impl core::error::Error for SignalError {}

/// The submitted and completed values of one timeline, shared between the thread that submits,
/// the thread that polls the device, and any thread asking whether a value completed.
///
/// Both values only ever rise. On targets without 64-bit atomics they sit behind a short spin
/// lock (see `sync`).
#[derive(Debug)]
pub struct TimelineTracker {
    submitted: AtomicValue64,
    completed: AtomicValue64,
    lost: AtomicBool,
}

impl Default for TimelineTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl TimelineTracker {
    /// A timeline with nothing submitted.
    pub fn new() -> Self {
        Self::resuming_at(0)
    }

    /// A timeline over a semaphore an earlier user already took to `value`, and that has
    /// completed it: the first submission takes `value + 1` (a timeline semaphore's value never
    /// goes back, so a second tracker over it cannot start again at 1).
    pub fn resuming_at(value: u64) -> Self {
        Self {
            submitted: AtomicValue64::new(value),
            completed: AtomicValue64::new(value),
            lost: AtomicBool::new(false),
        }
    }

    /// Takes the next value for a submission. Submit the GPU work signalling it in the order the
    /// values were taken (under the queue's lock, when several threads submit).
    ///
    /// Errors: [`SubmitError::DeviceLost`], [`SubmitError::ValuesExhausted`].
    pub fn submit(&self) -> Result<FenceValue, SubmitError> {
        // Acquire: pairs with the Release in `mark_device_lost`; a submit that sees the loss fails.
        if self.lost.load(Ordering::Acquire) {
            return Err(SubmitError::DeviceLost);
        }
        // Relaxed: the first read only seeds the CAS loop.
        let mut current = self.submitted.load(Ordering::Relaxed);
        loop {
            let next = current.checked_add(1).ok_or(SubmitError::ValuesExhausted)?;
            // AcqRel on success: Release so a thread that sees the new value (in `signal` or
            // `state`) also sees what the submitter did before taking it; Acquire so concurrent
            // submitters order behind each other. Relaxed on failure: we retry with the value.
            match self.submitted.compare_exchange(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(FenceValue(next)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Records that the device reports `value` complete (a timeline semaphore's counter, or the
    /// value of a signalled fence). Every value up to it is complete too. Reporting the same value
    /// again changes nothing.
    ///
    /// The device's counter never goes down, so a lower value than one reported before is an
    /// error; when several threads poll the device, serialize their reads and signals.
    ///
    /// Errors: [`SignalError::NeverSubmitted`], [`SignalError::WentBackwards`],
    /// [`SignalError::DeviceLost`].
    pub fn signal(&self, value: FenceValue) -> Result<(), SignalError> {
        // Acquire: pairs with the Release in `mark_device_lost`.
        if self.lost.load(Ordering::Acquire) {
            return Err(SignalError::DeviceLost);
        }
        // Acquire: pairs with the Release of `submit`, so a value the device reports after its
        // submission (which happened after `submit`) is seen as submitted.
        let submitted = self.submitted.load(Ordering::Acquire);
        if value.0 > submitted {
            return Err(SignalError::NeverSubmitted {
                value,
                submitted: FenceValue(submitted),
            });
        }
        // AcqRel: Release publishes the completion to threads that then reuse what the
        // submission used (they load `completed` with Acquire); Acquire orders this after earlier
        // signals.
        let before = self.completed.fetch_max(value.0, Ordering::AcqRel);
        if before > value.0 {
            return Err(SignalError::WentBackwards {
                value,
                completed: FenceValue(before),
            });
        }
        Ok(())
    }

    /// Records that the device is lost. Final: pending and later submissions never complete.
    pub fn mark_device_lost(&self) {
        // Release: pairs with the Acquire loads in `submit`, `signal` and `state`.
        self.lost.store(true, Ordering::Release);
    }

    /// Whether the device was lost.
    pub fn is_device_lost(&self) -> bool {
        // Acquire: pairs with the Release in `mark_device_lost`.
        self.lost.load(Ordering::Acquire)
    }

    /// The last value submitted.
    pub fn submitted(&self) -> FenceValue {
        // Acquire: pairs with the Release of `submit`.
        FenceValue(self.submitted.load(Ordering::Acquire))
    }

    /// The last value the device reported complete.
    pub fn completed(&self) -> FenceValue {
        // Acquire: pairs with the Release of `signal`; whatever the completed submission used may
        // be reused after this returns a value at least as high.
        FenceValue(self.completed.load(Ordering::Acquire))
    }

    /// Whether `value` completed (value 0 always has).
    pub fn is_complete(&self, value: FenceValue) -> bool {
        value <= self.completed()
    }

    /// Where the submission with `value` stands.
    pub fn state(&self, value: FenceValue) -> SubmissionState {
        // Completed first: a value that completed before the loss stays signalled.
        if value <= self.completed() {
            SubmissionState::Signalled
        } else if self.is_device_lost() {
            SubmissionState::DeviceLost
        } else if value > self.submitted() {
            // Read after `completed`: a value seen pending here was submitted (submitted only
            // rises), and one seen unsubmitted was not submitted when `completed` was read.
            SubmissionState::Unsubmitted
        } else {
            SubmissionState::Pending
        }
    }
}
