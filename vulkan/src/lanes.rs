//! Copy lanes: a large submission split over several queues, so that several copy engines work
//! on it at once.
//!
//! Why: on an NVIDIA H200 one queue copies 256 MiB from host memory at 45.6-47.1 GB/s while the
//! bus takes 55 (a pinned PyTorch copy); the same copy split over 8 queues of 5 families reaches
//! 50.8 GB/s (BENCHMARKS.md, "Queues and imported memory").
//!
//! How a split submission signalling timeline value `v` runs:
//! 1. each lane queue gets one part. It first waits for the previous value on memkit's timeline,
//!    so that it runs after every earlier submission, as the main queue's own commands do through
//!    the barrier they begin with; then it signals the lane's own timeline semaphore;
//! 2. the main queue gets the first part in one batch and, in a second batch without commands,
//!    waits for every lane's signal and then signals `v`.
//!
//! So `v` completes only once every part did, and a completed value still implies every earlier
//! one. A queue's semaphore wait covers every later batch on that queue too, so later
//! submissions are ordered after the lanes' writes.
//!
//! Only batches whose commands are independent are split: no destination named twice, no source
//! that is also a destination (the coordinator's plans never are; within one command,
//! destination ranges are disjoint by contract). Lanes need timeline semaphores, and they do not
//! combine with ownership transfer (a release must come from one queue after every part).

use std::ops::Range;

use ash::vk;
use memkit_core::device::{BufferCopy, CopyCommand, DeviceError, WaitStatus};

use crate::commands::CommandBufferRing;
use crate::device::QueueLocation;
use crate::drain::{Lost, drain};
use crate::error::{map_host_device_oom_and_lost_err, map_host_device_oom_err};

/// The most extra queues a [`CopyLanes`] names.
pub const MAX_COPY_LANES: usize = 16;

/// Where parts are cut: a multiple of this many bytes from a part's start, so that no engine
/// gets a sliver.
const CUT_GRANULE: u64 = 64 << 10;

/// Extra queues memkit may split large copy submissions over ([`crate::VulkanDeviceConfig`]).
///
/// Every buffer memkit copies must then be usable on each lane's family: memkit creates its own
/// buffers concurrent between the families involved; buffers the application hands to
/// [`memkit_core::device::CopyQueue::submit_copies`] must be too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CopyLanes {
    queues: [QueueLocation; MAX_COPY_LANES],
    len: u8,
    min_split_bytes: u64,
}

impl Default for CopyLanes {
    fn default() -> Self {
        Self::NONE
    }
}

impl CopyLanes {
    /// Submissions smaller than this are not split by default: below it the extra submissions
    /// and semaphores cost more than the engines win.
    pub const DEFAULT_MIN_SPLIT_BYTES: u64 = 16 << 20;

    /// No lanes: every submission goes to the transfer queue whole.
    pub const NONE: Self = Self {
        queues: [QueueLocation {
            family: 0,
            index: 0,
        }; MAX_COPY_LANES],
        len: 0,
        min_split_bytes: Self::DEFAULT_MIN_SPLIT_BYTES,
    };

    /// Lanes on `queues` (queues the application created with its device and does not submit
    /// to), splitting submissions of at least `min_split_bytes` bytes. A queue may be named
    /// twice, or be the transfer queue itself: its parts then run in order, which only tests of
    /// the split want. `None` with more than [`MAX_COPY_LANES`] queues.
    pub fn new(queues: &[QueueLocation], min_split_bytes: u64) -> Option<Self> {
        if queues.len() > MAX_COPY_LANES {
            return None;
        }
        let mut lanes = Self {
            min_split_bytes,
            ..Self::NONE
        };
        lanes.queues[..queues.len()].copy_from_slice(queues);
        lanes.len = queues.len() as u8;
        Some(lanes)
    }

    /// The lane queues.
    pub fn queues(&self) -> &[QueueLocation] {
        &self.queues[..usize::from(self.len)]
    }

    /// The smallest submission that is split.
    pub fn min_split_bytes(&self) -> u64 {
        self.min_split_bytes
    }
}

/// One copy command of a split batch: its part, buffers and regions (a range of
/// [`SplitPlan::regions`]).
#[derive(Clone, Debug)]
struct PartCommand<B> {
    part: usize,
    src: B,
    dst: B,
    regions: Range<usize>,
}

/// A batch cut into parts of about equal bytes, in order; reused across submissions.
#[derive(Debug)]
pub(crate) struct SplitPlan<B> {
    regions: Vec<BufferCopy>,
    commands: Vec<PartCommand<B>>,
    /// Scratch for the independence check.
    destinations: Vec<B>,
}

impl<B> Default for SplitPlan<B> {
    fn default() -> Self {
        Self {
            regions: Vec::new(),
            commands: Vec::new(),
            destinations: Vec::new(),
        }
    }
}

impl<B: Copy + Ord> SplitPlan<B> {
    /// Cuts `commands` into `parts` parts when they copy at least `min_bytes` and are
    /// independent (see the module docs). `false`: not split, submit whole.
    pub(crate) fn plan(
        &mut self,
        commands: &[CopyCommand<'_, B>],
        parts: usize,
        min_bytes: u64,
    ) -> bool {
        self.plan_with_granule(commands, parts, min_bytes, CUT_GRANULE)
    }

    fn plan_with_granule(
        &mut self,
        commands: &[CopyCommand<'_, B>],
        parts: usize,
        min_bytes: u64,
        granule: u64,
    ) -> bool {
        self.regions.clear();
        self.commands.clear();
        if parts < 2 {
            return false;
        }
        let total = commands
            .iter()
            .flat_map(|c| c.regions)
            .fold(0u64, |sum, r| sum.saturating_add(r.size));
        if total < min_bytes.max(1) || !self.independent(commands) {
            return false;
        }
        let share = total
            .div_ceil(parts as u64)
            .div_ceil(granule)
            .saturating_mul(granule);
        let mut part = 0;
        let mut filled = 0;
        for command in commands {
            let mut start = self.regions.len();
            for region in command.regions {
                let mut rest = *region;
                while rest.size > 0 {
                    let room = if part + 1 == parts {
                        u64::MAX
                    } else {
                        share - filled
                    };
                    let take = rest.size.min(room);
                    self.regions.push(BufferCopy {
                        src_offset: rest.src_offset,
                        dst_offset: rest.dst_offset,
                        size: take,
                    });
                    rest.src_offset += take;
                    rest.dst_offset += take;
                    rest.size -= take;
                    filled += take;
                    if filled == share && part + 1 < parts {
                        self.close(part, command, start);
                        start = self.regions.len();
                        part += 1;
                        filled = 0;
                    }
                }
            }
            self.close(part, command, start);
        }
        true
    }

    /// Ends the current command's run of regions in `part`, if it has any.
    fn close(&mut self, part: usize, command: &CopyCommand<'_, B>, start: usize) {
        let end = self.regions.len();
        if start < end {
            self.commands.push(PartCommand {
                part,
                src: command.src,
                dst: command.dst,
                regions: start..end,
            });
        }
    }

    /// Whether no destination is named twice and no source is a destination: then the commands
    /// may run in any order, on any queues.
    fn independent(&mut self, commands: &[CopyCommand<'_, B>]) -> bool {
        self.destinations.clear();
        self.destinations.extend(commands.iter().map(|c| c.dst));
        self.destinations.sort_unstable();
        let unique = self.destinations.windows(2).all(|w| w[0] != w[1]);
        unique
            && commands
                .iter()
                .all(|c| self.destinations.binary_search(&c.src).is_err())
    }

    /// Appends part `part`'s commands to `out`.
    pub(crate) fn part<'a>(&'a self, part: usize, out: &mut Vec<CopyCommand<'a, B>>) {
        out.extend(
            self.commands
                .iter()
                .filter(|c| c.part == part)
                .map(|c| CopyCommand {
                    src: c.src,
                    dst: c.dst,
                    regions: &self.regions[c.regions.clone()],
                }),
        );
    }
}

/// One extra queue: its command buffers, and the timeline semaphore its parts signal.
#[derive(Debug)]
pub(crate) struct CopyLane {
    pub(crate) queue: vk::Queue,
    pub(crate) commands: CommandBufferRing,
    pub(crate) semaphore: vk::Semaphore,
    /// The value of the lane's last submission (its semaphore's own counter).
    pub(crate) signalled: u64,
    /// Whether `signalled` was joined: a main-queue batch waited for it, or, when its split
    /// failed, the host did before the error was returned. `false` only from a lane part's
    /// submission to its split's join batch, or after a loss that ended that host wait.
    pub(crate) joined: bool,
}

impl CopyLane {
    /// Creates the lane's command pool and semaphore.
    ///
    /// # Safety
    /// - `location` names a queue created with `device`; `device` has timeline semaphores on.
    pub(crate) unsafe fn new(
        device: &ash::Device,
        location: QueueLocation,
    ) -> Result<Self, DeviceError> {
        // SAFETY: the queue exists (caller's contract).
        let queue = unsafe { device.get_device_queue(location.family, location.index) };
        // SAFETY: the family exists (caller's contract).
        let mut commands = unsafe { CommandBufferRing::new(device, location.family) }?;
        let mut type_info = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
        // SAFETY: timeline semaphores are enabled (caller's contract).
        match unsafe { device.create_semaphore(&info, None) } {
            Ok(semaphore) => Ok(Self {
                queue,
                commands,
                semaphore,
                signalled: 0,
                joined: true,
            }),
            Err(e) => {
                // SAFETY: nothing was recorded with it.
                unsafe { commands.destroy(device) };
                Err(map_host_device_oom_err(e))
            }
        }
    }

    /// The lane's completed value.
    ///
    /// # Safety
    /// - `device` is the lane's device.
    pub(crate) unsafe fn completed(&self, device: &ash::Device) -> Result<u64, DeviceError> {
        // SAFETY: the semaphore is alive (destroyed only in `destroy`).
        unsafe { device.get_semaphore_counter_value(self.semaphore) }
            .map_err(map_host_device_oom_and_lost_err)
    }

    /// Waits for the lane's last submission, then destroys the pool and the semaphore. It waits
    /// even on a device marked lost (a simulated loss leaves the GPU running), and a failed wait
    /// is retried, with idling the lane's queue as the fallback, until one succeeds or the device
    /// is really lost ([`drain`]).
    ///
    /// # Safety
    /// - `device` is the lane's device; nothing else uses the lane or submits to its queue.
    pub(crate) unsafe fn destroy(&mut self, device: &ash::Device) {
        if self.signalled > 0 {
            let semaphores = [self.semaphore];
            let values = [self.signalled];
            let info = vk::SemaphoreWaitInfo::default()
                .semaphores(&semaphores)
                .values(&values);
            let wait = || {
                // SAFETY: the semaphore is alive; the awaited value was submitted.
                unsafe { device.wait_semaphores(&info, u64::MAX) }
                    .map(|()| WaitStatus::Completed)
                    .map_err(map_host_device_oom_and_lost_err)
            };
            let idle = || {
                // SAFETY: nothing else submits to the queue now (caller's contract).
                unsafe { device.queue_wait_idle(self.queue) }
                    .map_err(map_host_device_oom_and_lost_err)
            };
            // Either way nothing of the lane runs any more: done, or the device is lost.
            let _: Result<(), Lost> = drain(wait, idle);
        }
        // SAFETY: every submission of the lane completed, or the device was lost, after which
        // nothing executes (waited above); memkit created both.
        unsafe {
            self.commands.destroy(device);
            device.destroy_semaphore(self.semaphore, None);
        }
    }
}

#[cfg(test)]
mod tests;
