//! The application's own timelines, as core's `ExternalTimelines` sees them: timelines the test
//! signals by hand (standing for the application's queue), submissions that wait for them before
//! they execute, and the application's GPU use of buffers and images, so that a copy into one, or
//! its destruction, before the application's work finished is recorded as a misuse.
#![forbid(unsafe_code)]

use std::fmt;

use memkit_core::device::{DeviceError, InvalidArgument};

use crate::device::{Pending, State};
use crate::handles::DummyBuffer;
use crate::misuse::Misuse;
use crate::{DummyDevice, InspectError};

/// A timeline of the application's (a Vulkan timeline semaphore it signals from its own queue),
/// made by [`DummyDevice::create_external_timeline`] and advanced by
/// [`DummyDevice::signal_external`]. Carries its device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DummyTimeline {
    device: u32,
    index: u32,
}

impl fmt::Debug for DummyTimeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timeline#{}@dev{}", self.index, self.device)
    }
}

impl fmt::Display for DummyTimeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The application's GPU work using a resource until its timeline reaches a value. The work
/// waited for memkit's submissions up to `after` (the last one made when it was declared): their
/// copies are what it reads, not a conflict.
#[derive(Clone, Copy, Debug)]
struct ApplicationUse {
    resource: u64,
    after: u64,
    timeline: u32,
    until: u64,
}

/// The application's GPU work reading a range of a buffer until its timeline reaches a value,
/// with the bytes the range held (as the device sees them) when it was declared.
#[derive(Clone, Debug)]
struct ApplicationRead {
    buffer: u64,
    offset: u64,
    bytes: Vec<u8>,
    timeline: u32,
    until: u64,
}

/// What the device knows of the application's timelines.
#[derive(Debug, Default)]
pub(crate) struct ExternalState {
    /// The value each timeline reached, by index.
    values: Vec<u64>,
    /// What every later submission waits for: the highest value asked for, per timeline, while
    /// the timeline has not reached it.
    waits: Vec<(u32, u64)>,
    /// The application's GPU uses not known to be finished.
    uses: Vec<ApplicationUse>,
    /// The application's GPU reads of buffer ranges whose timeline has not reached their end.
    reads: Vec<ApplicationRead>,
}

impl ExternalState {
    /// The waits a submission made now carries.
    pub(crate) fn waits_for_submission(&mut self) -> Vec<(u32, u64)> {
        let values = &self.values;
        self.waits.retain(|&(t, v)| values[t as usize] < v);
        self.waits.clone()
    }

    /// Whether every wait of a submission is met, so it can execute.
    pub(crate) fn met(&self, waits: &[(u32, u64)]) -> bool {
        waits.iter().all(|&(t, v)| self.values[t as usize] >= v)
    }

    /// The application's use of `resource` not finished yet that began before submission
    /// `signal`, if any: (timeline, until). A read of a range of it counts as a use that began
    /// before every submission.
    fn unfinished_use(&self, resource: u64, signal: u64) -> Option<(u32, u64)> {
        let unfinished = |timeline: u32, until: u64| self.values[timeline as usize] < until;
        let used = self
            .uses
            .iter()
            .find(|u| u.resource == resource && u.after < signal && unfinished(u.timeline, u.until))
            .map(|u| (u.timeline, u.until));
        used.or_else(|| {
            self.reads
                .iter()
                .find(|r| r.buffer == resource && unfinished(r.timeline, r.until))
                .map(|r| (r.timeline, r.until))
        })
    }

    /// Forgets the application's uses and reads: the device was lost, so none of its work runs
    /// any more, and destroying or writing what it used is no conflict.
    pub(crate) fn end_uses(&mut self) {
        self.uses.clear();
        self.reads.clear();
    }

    /// Takes out the reads whose timeline reached their end.
    fn take_finished_reads(&mut self) -> Vec<ApplicationRead> {
        let values = &self.values;
        let (finished, unfinished) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|r| values[r.timeline as usize] >= r.until);
        self.reads = unfinished;
        finished
    }
}

impl State {
    /// Records a copy of submission `signal` that is executing into `resource` while the
    /// application's GPU work still uses it.
    pub(crate) fn check_application_use(&mut self, serial: u32, resource: u64, signal: u64) {
        if let Some((resource, timeline, until)) = self.in_use(serial, resource, signal) {
            self.misuse(Misuse::CopyWhileApplicationUses {
                resource,
                timeline,
                until,
            });
        }
    }

    /// Records destroying `resource` while the application's GPU work still uses it.
    pub(crate) fn check_destroy_in_use(&mut self, serial: u32, resource: u64) {
        if let Some((resource, timeline, until)) = self.in_use(serial, resource, u64::MAX) {
            self.misuse(Misuse::DestroyedWhileApplicationUses {
                resource,
                timeline,
                until,
            });
        }
    }

    /// The handles of an application use of `resource` that conflicts with submission `signal`
    /// ([`ExternalState::unfinished_use`]), for a misuse report.
    fn in_use(
        &self,
        serial: u32,
        resource: u64,
        signal: u64,
    ) -> Option<(DummyBuffer, DummyTimeline, u64)> {
        let (index, until) = self.external.unfinished_use(resource, signal)?;
        let timeline = DummyTimeline {
            device: serial,
            index,
        };
        Some((self.resource_handle(serial, resource), timeline, until))
    }

    /// Whether the oldest pending submission waits for a value of the application's that has
    /// not been signalled yet: the queue stalls there, as a GPU does.
    pub(crate) fn front_waits(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|p: &Pending| !self.external.met(&p.waits))
    }
}

impl DummyDevice {
    /// A new timeline of the application's, at value 0. Submissions wait for it once
    /// `ExternalTimelines::wait_for_external` names it; the test stands for the application's
    /// queue and advances it with [`DummyDevice::signal_external`].
    pub fn create_external_timeline(&self) -> DummyTimeline {
        let mut state = self.lock();
        let index = state.external.values.len() as u32;
        state.external.values.push(0);
        DummyTimeline {
            device: self.shared.serial,
            index,
        }
    }

    /// The application's queue reached `value` on `timeline`. Submissions that waited for it can
    /// execute now: with `complete_on_submit` they do at once, otherwise when the test advances
    /// the timeline. [`InspectError::UnknownTimeline`] for another device's timeline. A value not
    /// above the one the timeline holds is refused, as Vulkan refuses it: recorded as
    /// [`Misuse::ApplicationSignalNotIncreasing`], the value unchanged, and
    /// [`InspectError::SignalNotIncreasing`] returned.
    pub fn signal_external(&self, timeline: DummyTimeline, value: u64) -> Result<(), InspectError> {
        let mut state = self.lock();
        let index = self.timeline_index(&state, timeline)?;
        let reached = state.external.values[index];
        if value <= reached {
            state.misuse(Misuse::ApplicationSignalNotIncreasing {
                timeline,
                value,
                reached,
            });
            return Err(InspectError::SignalNotIncreasing);
        }
        state.external.values[index] = value;
        self.check_finished_reads(&mut state);
        if state.complete_on_submit {
            let fill = self.shared.config.stale_read_fill;
            while state.execute_next(self.shared.serial, fill).is_some() {}
        }
        self.wake(&state);
        Ok(())
    }

    /// Declares that the application's own GPU work, submitted now, uses `resource` (a buffer, or
    /// an image's [`resource`](crate::DummyImage::resource)) until `timeline` reaches `until`.
    /// The work waits for memkit's submissions made so far (their copies are what it reads); a
    /// copy of a later submission executing into the resource before `until` is recorded as
    /// [`Misuse::CopyWhileApplicationUses`], and destroying it before then as
    /// [`Misuse::DestroyedWhileApplicationUses`].
    pub fn application_uses(
        &self,
        resource: DummyBuffer,
        timeline: DummyTimeline,
        until: u64,
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        let index = self.timeline_index(&state, timeline)? as u32;
        if resource.device != self.shared.serial || !state.buffers.contains_key(&resource.index) {
            return Err(InspectError::UnknownBuffer);
        }
        let after = state.last_submitted;
        let external = &mut state.external;
        let values = &external.values;
        external
            .uses
            .retain(|u| values[u.timeline as usize] < u.until);
        external.uses.push(ApplicationUse {
            resource: resource.index,
            after,
            timeline: index,
            until,
        });
        Ok(())
    }

    /// Declares that the application's own GPU work, submitted now, reads `size` bytes of
    /// `buffer` at `offset` (through a uniform or vertex binding, say) until `timeline` reaches
    /// `until`. The device keeps the bytes as it sees them now; when the timeline gets there, a
    /// range that changed meanwhile (the host wrote into the mapping and flushed, or a copy
    /// landed there, while the GPU could still read it) is recorded as
    /// [`Misuse::ChangedWhileApplicationReads`]. Destroying the buffer before then is
    /// [`Misuse::DestroyedWhileApplicationUses`].
    ///
    /// [`InspectError::UnknownTimeline`], [`InspectError::UnknownBuffer`],
    /// [`InspectError::OutOfBounds`] past the buffer's end, [`InspectError::Unbound`].
    pub fn application_reads(
        &self,
        buffer: DummyBuffer,
        offset: u64,
        size: u64,
        timeline: DummyTimeline,
        until: u64,
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        let index = self.timeline_index(&state, timeline)? as u32;
        let bytes = self.device_bytes(&state, buffer, offset, size)?;
        state.external.reads.push(ApplicationRead {
            buffer: buffer.index,
            offset,
            bytes,
            timeline: index,
            until,
        });
        Ok(())
    }

    /// Records a misuse for every read of the application's that ended (its timeline reached
    /// its value) and whose bytes are not what they were when it began. A buffer destroyed
    /// meanwhile was recorded when destroyed.
    fn check_finished_reads(&self, state: &mut State) {
        let serial = self.shared.serial;
        for read in state.external.take_finished_reads() {
            let buffer = state.resource_handle(serial, read.buffer);
            let size = read.bytes.len() as u64;
            let Ok(now) = self.device_bytes(state, buffer, read.offset, size) else {
                continue;
            };
            if now != read.bytes {
                state.misuse(Misuse::ChangedWhileApplicationReads {
                    buffer,
                    offset: read.offset,
                    size,
                    timeline: DummyTimeline {
                        device: serial,
                        index: read.timeline,
                    },
                    until: read.until,
                });
            }
        }
    }

    /// The value `timeline` reached (`ExternalTimelines::external_value`).
    pub fn external_value(&self, timeline: DummyTimeline) -> Result<u64, DeviceError> {
        let state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        let index = self
            .timeline_index(&state, timeline)
            .map_err(|_| DeviceError::InvalidArgument(InvalidArgument::UnknownTimeline))?;
        Ok(state.external.values[index])
    }

    /// Makes every later submission wait for `value` on `timeline`
    /// (`ExternalTimelines::wait_for_external`): it executes only once the test signalled it.
    pub fn wait_for_external(
        &self,
        timeline: DummyTimeline,
        value: u64,
    ) -> Result<(), DeviceError> {
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        let index = self
            .timeline_index(&state, timeline)
            .map_err(|_| DeviceError::InvalidArgument(InvalidArgument::UnknownTimeline))?
            as u32;
        if state.external.values[index as usize] >= value {
            return Ok(());
        }
        let waits = &mut state.external.waits;
        match waits.iter_mut().find(|(t, _)| *t == index) {
            Some((_, v)) => *v = (*v).max(value),
            None => waits.push((index, value)),
        }
        Ok(())
    }

    /// The index of one of this device's timelines.
    fn timeline_index(
        &self,
        state: &State,
        timeline: DummyTimeline,
    ) -> Result<usize, InspectError> {
        let index = timeline.index as usize;
        if timeline.device == self.shared.serial && index < state.external.values.len() {
            Ok(index)
        } else {
            Err(InspectError::UnknownTimeline)
        }
    }
}

#[cfg(test)]
mod tests;
