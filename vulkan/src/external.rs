//! The application's timeline semaphores that memkit's submissions wait for
//! ([`ExternalTimelines`]): each [`ExternalTimelines::wait_for_external`] is recorded under the
//! submit lock, and every later submission waits for what is recorded, on the GPU, at
//! `ALL_COMMANDS` (so the barriers an image upload begins with chain after it).
//!
//! A recorded wait is dropped once a submission that waited for it completed: the application's
//! timeline reached the value then, so later submissions, which run after that one, need not
//! wait again. This is also what lets the application destroy its semaphore once memkit's
//! timeline passed that submission.

use ash::vk;
use memkit_core::device::{DeviceError, ExternalTimelines, InvalidArgument};

use crate::device::VulkanDevice;
use crate::error::map_host_device_oom_and_lost_err;

/// One timeline semaphore of the application's that later submissions wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ExternalWait {
    semaphore: vk::Semaphore,
    /// The highest value asked for.
    value: u64,
    /// The signal value of the first submission that waited for `value`, once one did.
    carried_by: Option<u64>,
}

/// The waits every later submission carries, at most one per semaphore (its highest value).
#[derive(Debug, Default)]
pub(crate) struct ExternalWaits {
    waits: Vec<ExternalWait>,
}

impl ExternalWaits {
    /// Makes later submissions wait for `value` on `semaphore`; a value not above one recorded
    /// for it adds nothing.
    fn record(&mut self, semaphore: vk::Semaphore, value: u64) {
        match self.waits.iter_mut().find(|w| w.semaphore == semaphore) {
            Some(wait) if wait.value >= value => {}
            Some(wait) => {
                wait.value = value;
                wait.carried_by = None;
            }
            None => self.waits.push(ExternalWait {
                semaphore,
                value,
                carried_by: None,
            }),
        }
    }

    /// Drops the waits a submission that completed (memkit's timeline reached `completed`)
    /// already waited for.
    pub(crate) fn prune(&mut self, completed: u64) {
        self.waits
            .retain(|w| w.carried_by.is_none_or(|carrier| carrier > completed));
    }

    /// Notes that the submission signalling `signal_value` waited for every recorded wait.
    pub(crate) fn carried(&mut self, signal_value: u64) {
        for wait in self.waits.iter_mut().filter(|w| w.carried_by.is_none()) {
            wait.carried_by = Some(signal_value);
        }
    }

    /// The semaphores and values to wait for.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (vk::Semaphore, u64)> + '_ {
        self.waits.iter().map(|w| (w.semaphore, w.value))
    }

    /// Whether no submission has to wait for anything of the application's.
    pub(crate) fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }
}

impl VulkanDevice {
    /// The application's timelines can be waited for only where memkit signals a timeline
    /// semaphore: with the fence-pool fallback (no `timelineSemaphore`, or
    /// [`TimelineMode::FencePool`](crate::TimelineMode::FencePool) for drivers whose timeline
    /// semaphores misbehave) they are [`DeviceError::FeatureNotEnabled`]. A null semaphore is
    /// [`InvalidArgument::UnknownTimeline`].
    fn check_external(&self, timeline: vk::Semaphore) -> Result<(), DeviceError> {
        self.check_lost()?;
        if self.timeline.semaphore().is_none() {
            return Err(DeviceError::FeatureNotEnabled);
        }
        if timeline == vk::Semaphore::null() {
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::UnknownTimeline,
            ));
        }
        Ok(())
    }
}

impl ExternalTimelines for VulkanDevice {
    /// A timeline semaphore (`VkSemaphoreTypeCreateInfo::semaphoreType` `TIMELINE`) of the
    /// application's, made on this `VkDevice`.
    type ExternalTimeline = vk::Semaphore;

    /// As [`ExternalTimelines::wait_for_external`]: every later submission, on the transfer
    /// queue and on each copy lane a split submission uses, waits for `value` on `timeline` at
    /// `ALL_COMMANDS`, until one such submission completed. Needs memkit's own timeline
    /// semaphore ([`DeviceError::FeatureNotEnabled`] with the fence-pool fallback).
    ///
    /// A submission split over the copy lanes that fails after some lanes' parts went out waits
    /// for those parts before it returns, and so, on the host, for `value` too.
    unsafe fn wait_for_external(
        &self,
        timeline: vk::Semaphore,
        value: u64,
    ) -> Result<(), DeviceError> {
        self.check_external(timeline)?;
        if value == 0 {
            // A timeline starts at 0 at the least: there is nothing to wait for.
            return Ok(());
        }
        self.lock_submit().external.record(timeline, value);
        Ok(())
    }

    /// As [`ExternalTimelines::external_value`] (`vkGetSemaphoreCounterValue`).
    unsafe fn external_value(&self, timeline: vk::Semaphore) -> Result<u64, DeviceError> {
        self.check_external(timeline)?;
        // SAFETY: `timeline` is a live timeline semaphore of this device (caller's contract).
        unsafe { self.raw.get_semaphore_counter_value(timeline) }
            .map_err(|e| self.note(map_host_device_oom_and_lost_err(e)))
    }
}

#[cfg(test)]
mod tests;
