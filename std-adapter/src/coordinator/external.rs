//! Waiting on the GPU for the application's own work: the coordinator's copies into a buffer or
//! image the application's draws still read, and the destruction of one it dropped, come after
//! that work without the host waiting for it.
//!
//! [`Coordinator::wait_for_external`] first submits what is staged (the application's work may
//! read it: making it wait would deadlock), then asks the device to make every later submission
//! wait for the application's timeline value (core's `ExternalTimelines`), and submits one
//! without commands to carry the wait at once. That submission's value completes only after the
//! application's; it becomes the floor below which no buffer or image dropped from then on is
//! destroyed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use memkit_core::device::ExternalTimelines;

use super::images::signal_only;
use super::{Coordinator, Shared};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ticket::Ticket;

impl<D: Device + ExternalTimelines> Coordinator<D> {
    /// Makes the coordinator's later GPU work come after the application's: every submission
    /// made after this call (buffer copies and image uploads, on every queue the device copies
    /// on) waits, on the GPU, until `timeline` reached `value`. Buffers and images dropped after
    /// this call are destroyed only once it did, too. The host never waits here.
    ///
    /// Call it after submitting a frame that reads buffers or images the coordinator will write
    /// again, with the value that frame signals: uploads staged meanwhile then land after the
    /// frame read the old bytes, and a buffer dropped right away outlives the frame. On Vulkan,
    /// `timeline` is a timeline semaphore (`VkSemaphore`) the application's queue signals.
    ///
    /// Uploads staged before the call are submitted first, without the wait (the application's
    /// work may read them, and then waits for them in turn); only an upload stuck behind a
    /// staging grant another thread still holds goes out later, and waits too. Then a
    /// submission without commands carries the wait; the ticket completes once it did, so after
    /// the application's value. A later call for the same timeline with a lower value adds
    /// nothing.
    ///
    /// Errors: [`Error::Device`] with `FeatureNotEnabled` where the device cannot wait on a
    /// timeline (Vulkan without `timelineSemaphore`), or with `InvalidArgument` for a timeline the
    /// device does not know; [`Error::DeviceLost`]; the errors of
    /// [`Coordinator::flush_transfers`].
    ///
    /// # Safety
    /// - `timeline` is a live timeline of the coordinator's device and stays alive until every
    ///   submission the coordinator makes from now on completed (or until the coordinator is shut
    ///   down);
    /// - `value` will be signalled, and is less than 2^31 above the timeline's current value
    ///   (a value never signalled stalls the coordinator's queue, and its shutdown, for good).
    pub unsafe fn wait_for_external(
        &self,
        timeline: D::ExternalTimeline,
        value: u64,
    ) -> Result<Ticket> {
        let shared = &self.shared;
        let value = shared.wait_for_external(timeline, value)?;
        Ok(shared.ticket_for_value(value))
    }

    /// The value the application's `timeline` reached, without blocking.
    ///
    /// # Safety
    /// `timeline` is a live timeline of the coordinator's device.
    pub unsafe fn external_value(&self, timeline: D::ExternalTimeline) -> Result<u64> {
        // SAFETY: the timeline is live and the device's (caller's contract).
        unsafe { self.shared.device.external_value(timeline) }
            .map_err(|e| self.shared.device_error(e))
    }
}

impl<D: Device + ExternalTimelines> Shared<D> {
    /// [`Coordinator::wait_for_external`]; returns the value of the submission carrying the
    /// wait, which is also the new destruction floor.
    fn wait_for_external(
        self: &Arc<Self>,
        timeline: D::ExternalTimeline,
        value: u64,
    ) -> Result<u64> {
        let mut sub = self.lock_submitter();
        self.check_live()?;
        if self.shut_down.load(Ordering::Acquire) {
            return Err(Error::DeviceLost);
        }
        // Uploads staged before the call go out first, without the wait: the application's work
        // may be what reads them, and it would wait for them in turn.
        self.flush_locked(&mut sub)?;
        // SAFETY: the timeline is live and the device's, and stays so while later submissions
        // run; the value is within reach (caller's contract).
        unsafe { self.device.wait_for_external(timeline, value) }
            .map_err(|e| self.device_error(e))?;
        // A submission of its own carries the wait at once, so that a value exists that
        // completes only after the application's.
        let carrier = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => return Err(Error::DeviceLost),
        };
        // Every drained ring range was submitted by the flush above (a failed one returned), so
        // the value may tag them.
        self.submit_recorded(&mut sub, carrier, signal_only(), true)?;
        // Release: a thread that sees the floor drops resources after the wait was submitted.
        self.external_floor.fetch_max(carrier, Ordering::Release);
        Ok(carrier)
    }
}
