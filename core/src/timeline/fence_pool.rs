//! A timeline emulated with a fixed set of binary fences, for backends without timeline
//! semaphores.
//!
//! Value `v` is given fence `(v - 1) % FENCES`; a fence is reused only after the value it last
//! carried completed. A fence the device reports signalled completes its value, and the pool's
//! completed value advances over every value whose fence signalled, in order: submissions on one
//! queue finish in order, and when fences are polled out of order a later signal waits for the
//! earlier ones before it counts.
#![forbid(unsafe_code)]

use super::{FenceValue, SignalError, SubmissionState, SubmitError, TimelineTracker};

/// The fence a submission must signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FenceSlot {
    /// The submission's timeline value.
    pub value: FenceValue,
    /// Index of the fence (in the backend's own array of `FENCES` fences) the submission signals.
    /// Reset it before submitting: it may carry an older, completed signal.
    pub fence: usize,
}

/// One fence's bookkeeping.
#[derive(Clone, Copy, Debug, Default)]
struct FenceState {
    /// The value it was last given (0: never).
    value: u64,
    /// Whether the device reported it signalled for that value.
    signalled: bool,
}

/// A timeline over `FENCES` binary fences. Mutated by the thread that submits and polls (behind
/// the queue's lock); [`FencePool::timeline`] can be shared for reading.
#[derive(Debug)]
pub struct FencePool<const FENCES: usize> {
    timeline: TimelineTracker,
    fences: [FenceState; FENCES],
}

impl<const FENCES: usize> Default for FencePool<FENCES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const FENCES: usize> FencePool<FENCES> {
    /// A pool with nothing submitted.
    pub fn new() -> Self {
        const { assert!(FENCES > 0, "a fence pool needs at least one fence") };
        Self {
            timeline: TimelineTracker::new(),
            fences: [FenceState::default(); FENCES],
        }
    }

    /// The emulated timeline's values.
    pub fn timeline(&self) -> &TimelineTracker {
        &self.timeline
    }

    fn fence_of(value: u64) -> usize {
        // Values start at 1; the modulo is taken in u64 so 32-bit targets never truncate.
        ((value - 1) % FENCES as u64) as usize
    }

    /// Takes the next value and the fence its submission must signal.
    ///
    /// Errors: [`SubmitError::FencePoolExhausted`] when that fence still carries an incomplete
    /// value (wait for it, signal it, and try again), [`SubmitError::DeviceLost`],
    /// [`SubmitError::ValuesExhausted`].
    pub fn submit(&mut self) -> Result<FenceSlot, SubmitError> {
        if self.timeline.is_device_lost() {
            return Err(SubmitError::DeviceLost);
        }
        let next = self
            .timeline
            .submitted()
            .get()
            .checked_add(1)
            .ok_or(SubmitError::ValuesExhausted)?;
        let fence = Self::fence_of(next);
        let previous = self.fences[fence].value;
        if previous != 0 && !self.timeline.is_complete(FenceValue(previous)) {
            return Err(SubmitError::FencePoolExhausted {
                wait_for: FenceValue(previous),
            });
        }
        let value = self.timeline.submit()?;
        debug_assert_eq!(value.get(), next);
        self.fences[fence] = FenceState {
            value: value.get(),
            signalled: false,
        };
        Ok(FenceSlot { value, fence })
    }

    /// The pending submissions, oldest first: the fences to poll, in the order that completes
    /// the timeline soonest.
    pub fn pending(&self) -> impl Iterator<Item = FenceSlot> + '_ {
        let from = self.timeline.completed().get() + 1;
        let to = self.timeline.submitted().get();
        (from..=to)
            .map(|v| FenceSlot {
                value: FenceValue(v),
                fence: Self::fence_of(v),
            })
            .filter(|slot| !self.fences[slot.fence].signalled)
    }

    /// Records that the device reports fence `fence` signalled. Its value completes once every
    /// earlier value has.
    ///
    /// Errors: [`SignalError::FenceNotPending`] when the fence carries no pending value (out of
    /// range, never given, already completed or already reported), [`SignalError::DeviceLost`].
    pub fn fence_signalled(&mut self, fence: usize) -> Result<(), SignalError> {
        if self.timeline.is_device_lost() {
            return Err(SignalError::DeviceLost);
        }
        let completed = self.timeline.completed().get();
        let state = self
            .fences
            .get_mut(fence)
            .filter(|s| s.value > completed && !s.signalled)
            .ok_or(SignalError::FenceNotPending { fence })?;
        state.signalled = true;
        // Advance over every value whose fence signalled, in order.
        let submitted = self.timeline.submitted().get();
        let mut value = completed;
        while value < submitted {
            let next = self.fences[Self::fence_of(value + 1)];
            if next.value != value + 1 || !next.signalled {
                break;
            }
            value += 1;
        }
        if value > completed {
            self.timeline.signal(FenceValue(value))?;
        }
        Ok(())
    }

    /// Records that the device is lost.
    pub fn mark_device_lost(&mut self) {
        self.timeline.mark_device_lost();
    }

    /// Where the submission with `value` stands.
    pub fn state(&self, value: FenceValue) -> SubmissionState {
        self.timeline.state(value)
    }
}
