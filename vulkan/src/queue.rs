//! The copy queue: copies recorded by [`CopyRecorder`] (uploads into images by
//! [`ImageCopyRecorder`]) into recycled command buffers, each submission signalling its timeline
//! value; large independent batches of buffer copies split over the copy lanes ([`crate::lanes`]).

use std::sync::atomic::Ordering;

use ash::vk;
use memkit_core::device::{
    CopyCommand, CopyQueue, DeviceError, ImageCopyCommand, ImageMoveCommand, ImageReadCommand,
    InvalidArgument, WaitStatus,
};

use crate::barrier::OwnershipTransfer;
use crate::commands::CommandBufferRing;
use crate::device::VulkanDevice;
use crate::drain::{Lost, drain};
use crate::error::{map_host_device_oom_and_lost_err, map_host_device_oom_err};
use crate::external::ExternalWaits;
use crate::image_move::record_image_moves;
use crate::image_readback::record_image_reads;
use crate::image_upload::ImageCopyRecorder;
use crate::lanes::{CopyLane, MAX_COPY_LANES, SplitPlan};
use crate::transfer::CopyRecorder;

/// Everything a submission touches that Vulkan wants externally synchronised.
#[derive(Debug)]
pub(crate) struct SubmitState {
    pub(crate) queue: vk::Queue,
    commands: CommandBufferRing,
    recorders: Recorders,
    last_value: u64,
    pub(crate) lanes: Vec<CopyLane>,
    plan: SplitPlan<vk::Buffer>,
    /// Submissions split over the lanes so far.
    pub(crate) splits: u64,
    /// The application's timelines every later submission waits for.
    pub(crate) external: ExternalWaits,
    /// What the batch with commands being submitted waits for (scratch).
    waits: WaitList,
    /// What a split's join batch waits for (scratch).
    join_waits: WaitList,
}

impl SubmitState {
    /// Creates the command pool.
    ///
    /// # Safety
    /// - `queue` is a queue of `family` on `device`.
    pub(crate) unsafe fn new(
        device: &ash::Device,
        queue: vk::Queue,
        family: u32,
    ) -> Result<Self, DeviceError> {
        Ok(Self {
            queue,
            // SAFETY: the family exists on the device (caller's contract).
            commands: unsafe { CommandBufferRing::new(device, family) }?,
            recorders: Recorders::default(),
            last_value: 0,
            lanes: Vec::new(),
            plan: SplitPlan::default(),
            splits: 0,
            external: ExternalWaits::default(),
            waits: WaitList::default(),
            join_waits: WaitList::default(),
        })
    }

    /// Command buffers allocated so far, lanes included.
    pub(crate) fn command_buffer_count(&self) -> usize {
        self.commands.len() + self.lanes.iter().map(|l| l.commands.len()).sum::<usize>()
    }

    /// Destroys the pools and with them every command buffer, and the lanes' semaphores.
    ///
    /// # Safety
    /// - no command buffer of the main pool is pending (the lanes wait for their own); nothing
    ///   submits to the lanes' queues meanwhile.
    pub(crate) unsafe fn destroy(&mut self, device: &ash::Device) {
        for lane in &mut self.lanes {
            // SAFETY: memkit's lane, used by nothing else now, nor its queue (caller's contract).
            unsafe { lane.destroy(device) };
        }
        self.lanes.clear();
        // SAFETY: nothing pending (caller's contract); the pool is memkit's.
        unsafe { self.commands.destroy(device) };
    }
}

/// The scratch space recordings reuse, one recorder per kind of batch.
#[derive(Debug, Default)]
pub(crate) struct Recorders {
    copies: CopyRecorder,
    images: ImageCopyRecorder,
}

/// What one command buffer records.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Batch<'a, 'c> {
    /// Copies between buffers, followed by release barriers when the transfer is given.
    Copies(&'a [CopyCommand<'c, vk::Buffer>], Option<OwnershipTransfer>),
    /// Uploads into images, with their layout transitions and, when the transfer is given, their
    /// ownership releases (and reclaims); never split over the lanes.
    ImageCopies(
        &'a [ImageCopyCommand<'c, vk::Buffer, vk::Image>],
        Option<OwnershipTransfer>,
    ),
    /// Images read back into buffers, each reclaimed first and released after when the
    /// transfer is given; never split over the lanes.
    ImageReads(
        &'a [ImageReadCommand<'c, vk::Buffer, vk::Image>],
        Option<OwnershipTransfer>,
    ),
    /// A defragmentation pass: buffer copies, then images moved into new ones (sources
    /// reclaimed, destinations released when the transfer is given); never split over the lanes.
    Moves(
        &'a [CopyCommand<'c, vk::Buffer>],
        &'a [ImageMoveCommand<vk::Image>],
        Option<OwnershipTransfer>,
    ),
}

impl VulkanDevice {
    /// Runs `f` with the transfer queue while no memkit submission can use it: for applications
    /// that submit their own work to the same queue (lavapipe has one queue in all).
    pub fn with_transfer_queue<R>(&self, f: impl FnOnce(vk::Queue) -> R) -> R {
        let state = self.lock_submit();
        f(state.queue)
    }

    /// Command buffers memkit allocated for submissions so far. Bounded by the most submissions
    /// in flight at once: it does not grow while values keep completing.
    pub fn command_buffer_count(&self) -> usize {
        self.lock_submit().command_buffer_count()
    }

    /// Fences the fence-pool timeline created so far (0 with a timeline semaphore).
    pub fn fence_count(&self) -> usize {
        self.timeline.fence_count()
    }

    /// The value of the last submission.
    pub fn last_submitted_value(&self) -> u64 {
        self.last_submitted.load(Ordering::Acquire)
    }

    /// Records that the device is lost, as a `VK_ERROR_DEVICE_LOST` would, for tests of what
    /// callers do then: every waiter wakes with `DeviceLost` and every later call is refused.
    /// Then it waits for the work already submitted to finish (the driver's GPU cannot be
    /// stopped), so that when it returns nothing memkit submitted runs any more, as after a real
    /// loss: callers may free what that work used, as they do on a real one (memkit-std's
    /// coordinator frees its buffers and memory at once on a lost device).
    #[doc(hidden)]
    pub fn simulate_device_lost(&self) {
        self.note(DeviceError::DeviceLost);
        let state = self.lock_submit();
        // SAFETY: the submit lock gives exclusive use of the transfer queue.
        unsafe { self.wait_out_submissions(state.queue) };
    }

    /// [`simulate_device_lost`](Self::simulate_device_lost) without its wait: the GPU keeps
    /// running what it was given, as when one call reports a loss while the work of others still
    /// runs. For tests of memkit's own waits (the drop's); a caller that frees memory on the
    /// loss would free it under the GPU.
    #[doc(hidden)]
    pub fn simulate_device_lost_while_running(&self) {
        self.note(DeviceError::DeviceLost);
    }

    /// Makes the next submission split over the copy lanes fail, with
    /// [`DeviceError::OutOfDeviceMemory`], after the lanes' parts were submitted and before the
    /// transfer queue's: for tests of what a partly submitted split leaves behind.
    #[doc(hidden)]
    pub fn fail_next_split_after_lanes(&self) {
        self.fail_next_split.store(true, Ordering::Release);
    }

    /// Submits `commands` under the lock, split over the lanes when they are large and
    /// independent; on failure every command buffer not submitted is left reusable.
    ///
    /// # Safety
    /// As for [`CopyQueue::submit_copies`].
    unsafe fn submit_locked(
        &self,
        state: &mut SubmitState,
        commands: &[CopyCommand<'_, vk::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let parts = state.lanes.len() + 1;
        if state
            .plan
            .plan(commands, parts, self.copy_lanes().min_split_bytes())
        {
            // SAFETY: forwarded contract; the plan holds the same copies, cut into parts.
            unsafe { self.submit_split(state, signal_value) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { self.submit_whole(state, Batch::Copies(commands, self.release), signal_value) }
        }
    }

    /// Runs `submit` under the submit lock, after checking that `signal_value` rises above the
    /// last submitted value ([`InvalidArgument::TimelineNotIncreasing`]), and notes the value as
    /// submitted when `submit` succeeds (and a loss when it reports one). `submit` submits one
    /// batch signalling `signal_value`, or, failing, leaves nothing of it in flight.
    pub(crate) fn submit_in_order(
        &self,
        signal_value: u64,
        submit: impl FnOnce(&mut SubmitState) -> Result<(), DeviceError>,
    ) -> Result<(), DeviceError> {
        let mut state = self.lock_submit();
        if signal_value <= state.last_value {
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::TimelineNotIncreasing,
            ));
        }
        let result = submit(&mut state);
        if result.is_ok() {
            state.last_value = signal_value;
            self.last_submitted.store(signal_value, Ordering::Release);
        }
        result.map_err(|e| self.note(e))
    }

    /// Begins `cmd`, records `batch` and ends it.
    ///
    /// # Safety
    /// As for [`CopyQueue::submit_copies`] (for image copies, as for
    /// [`ImageCopyQueue::submit_image_copies`](memkit_core::device::ImageCopyQueue::submit_image_copies),
    /// with every region checked); `cmd` is reset (or new), not pending, from a pool of a family
    /// that copies (the release's source family when given), and the lock is held.
    unsafe fn record(
        &self,
        recorders: &mut Recorders,
        cmd: vk::CommandBuffer,
        batch: Batch<'_, '_>,
    ) -> Result<(), DeviceError> {
        let device = &self.raw;
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the buffer is reset (or new) and not pending.
        unsafe { device.begin_command_buffer(cmd, &begin) }.map_err(map_host_device_oom_err)?;
        match batch {
            // SAFETY: recording; buffers, regions and usages are valid (caller's contract); the
            // release family is the pool's when a transfer is configured.
            Batch::Copies(commands, release) => unsafe {
                recorders.copies.record(device, cmd, commands, release)
            },
            // SAFETY: recording; buffers, images, descriptions and regions are valid and checked
            // (caller's contract); the release family is the pool's when a transfer is
            // configured.
            Batch::ImageCopies(commands, release) => unsafe {
                recorders
                    .images
                    .record_checked(device, cmd, commands, release)
            },
            // SAFETY: recording; the image, its layout and ownership, the buffer and the checked
            // regions are valid (caller's contract); the release family is the pool's when a
            // transfer is configured.
            Batch::ImageReads(commands, release) => unsafe {
                record_image_reads(device, cmd, commands, release)
            },
            // SAFETY: recording; buffers, regions, images and descriptions are valid and the
            // moves checked (caller's contract); the release family is the pool's when a
            // transfer is configured.
            Batch::Moves(copies, images, release) => unsafe {
                if !copies.is_empty() {
                    recorders.copies.record(device, cmd, copies, release);
                }
                record_image_moves(device, cmd, images, release)
            },
        }
        // SAFETY: recording.
        unsafe { device.end_command_buffer(cmd) }.map_err(map_host_device_oom_err)
    }

    /// Takes the next command buffer of `ring` and records `batch` into it; on failure the
    /// buffer is left reusable. Follow a successful call with `ring.submitted` or
    /// `ring.not_submitted`.
    ///
    /// # Safety
    /// As for [`Self::record`]; `ring` is a pool of this device, `completed` a value its queue
    /// reached, and the lock is held.
    unsafe fn record_next(
        &self,
        ring: &mut CommandBufferRing,
        completed: u64,
        recorders: &mut Recorders,
        batch: Batch<'_, '_>,
    ) -> Result<vk::CommandBuffer, DeviceError> {
        // SAFETY: the pool is this device's, and the lock is held (caller's contract).
        let cmd = unsafe { ring.next(&self.raw, completed) }?;
        // SAFETY: forwarded contract; `cmd` is reset (or new) and not pending.
        if let Err(e) = unsafe { self.record(recorders, cmd, batch) } {
            ring.not_submitted();
            return Err(e);
        }
        Ok(cmd)
    }

    /// Records all of `batch` into one command buffer and submits it to the transfer queue,
    /// waiting for the application's timelines ([`crate::external`]).
    /// Its batch also waits for any lane part not joined yet; there is none in practice (a split
    /// ends with its join batch, or, failing, waits for its lane parts before it returns, and
    /// only a loss, after which nothing is submitted, leaves a part unjoined), but ordering after
    /// every lane part then never rests on that.
    ///
    /// # Safety
    /// As for [`Self::record`]; the signal value rises above the last submitted one.
    pub(crate) unsafe fn submit_whole(
        &self,
        state: &mut SubmitState,
        batch: Batch<'_, '_>,
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let device = &self.raw;
        // SAFETY: the timeline is alive.
        let completed = unsafe { self.timeline.completed_value(device) }?;
        state.external.prune(completed);
        // SAFETY: forwarded contract; the pool is this device's, of the transfer family.
        let cmd = unsafe {
            self.record_next(&mut state.commands, completed, &mut state.recorders, batch)
        }?;
        // SAFETY: the timeline is alive.
        let fence = match unsafe { self.timeline.take_fence(device) } {
            Ok(f) => f,
            Err(e) => {
                state.commands.not_submitted();
                return Err(e);
            }
        };
        let waits = &mut state.waits;
        waits.clear();
        waits.push_unjoined(&state.lanes);
        waits.push_external(&state.external);
        let cmds = [cmd];
        let semaphore = self.timeline.semaphore();
        let signal: &[vk::Semaphore] = semaphore.as_slice();
        let values = [signal_value];
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(waits.values())
            .signal_semaphore_values(&values[..signal.len()]);
        let mut submit = vk::SubmitInfo::default()
            .wait_semaphores(waits.semaphores())
            .wait_dst_stage_mask(waits.stages())
            .command_buffers(&cmds)
            .signal_semaphores(signal);
        if !signal.is_empty() {
            submit = submit.push_next(&mut timeline_info);
        }
        // SAFETY: the queue is externally synchronised by the lock; the command buffer is
        // executable; the signal value increases (checked by the caller); lanes and external
        // waits exist only with a timeline semaphore, so their waits come with their values; the
        // application's semaphores are alive (`wait_for_external`'s contract).
        match unsafe { device.queue_submit(state.queue, &[submit], fence) } {
            Ok(()) => {
                self.timeline.submitted(fence, signal_value);
                state.commands.submitted(signal_value);
                state.external.carried(signal_value);
                for lane in &mut state.lanes {
                    lane.joined = true;
                }
                Ok(())
            }
            Err(e) => {
                if fence != vk::Fence::null() {
                    self.timeline.not_submitted(fence);
                }
                state.commands.not_submitted();
                Err(map_host_device_oom_and_lost_err(e))
            }
        }
    }

    /// Submits the parts of `state.plan` ([`Self::submit_split_parts`]). When it fails after some
    /// lanes' parts went out, it waits for those before returning the error, so that an error
    /// leaves nothing of the submission in flight (the caller may then free its buffers); a loss
    /// found while waiting is returned instead of the first error.
    ///
    /// # Safety
    /// As for [`CopyQueue::submit_copies`] for the planned copies; the lock is held.
    unsafe fn submit_split(
        &self,
        state: &mut SubmitState,
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let mut started = 0u32;
        // SAFETY: forwarded contract.
        let result = unsafe { self.submit_split_parts(state, signal_value, &mut started) };
        match result {
            Err(error) if started != 0 => {
                // SAFETY: the lanes are this device's, and the lock is held.
                unsafe { wait_for_lanes(&self.raw, &mut state.lanes, started) }?;
                Err(error)
            }
            result => result,
        }
    }

    /// Submits the parts of `state.plan`: one per lane, each after the previous value, and the
    /// first on the transfer queue, followed there by a batch that waits for every lane and
    /// signals `signal_value` (see [`crate::lanes`]). Every part waits for the application's
    /// timelines ([`crate::external`]). Sets bit `i` of `started` once lane `i`'s part was
    /// submitted.
    ///
    /// # Safety
    /// As for [`CopyQueue::submit_copies`] for the planned copies; the lock is held.
    unsafe fn submit_split_parts(
        &self,
        state: &mut SubmitState,
        signal_value: u64,
        started: &mut u32,
    ) -> Result<(), DeviceError> {
        let device = &self.raw;
        let SubmitState {
            queue,
            commands: main_commands,
            recorders,
            last_value,
            lanes,
            plan,
            splits,
            external,
            waits,
            join_waits,
        } = state;
        // Lanes are configured only with a timeline semaphore (checked in `VulkanDevice::new`).
        let timeline = self
            .timeline
            .semaphore()
            .ok_or(DeviceError::FeatureNotEnabled)?;
        // SAFETY: the timeline is alive.
        let completed = unsafe { self.timeline.completed_value(device) }?;
        external.prune(completed);
        let mut part = Vec::new();
        for (i, lane) in lanes.iter_mut().enumerate() {
            part.clear();
            plan.part(i + 1, &mut part);
            if part.is_empty() {
                continue;
            }
            // SAFETY: the lane is this device's.
            let completed = unsafe { lane.completed(device) }?;
            // SAFETY: forwarded contract; the lane's pool is this device's; no release (lanes
            // exclude ownership transfer).
            let cmd = unsafe {
                self.record_next(
                    &mut lane.commands,
                    completed,
                    recorders,
                    Batch::Copies(&part, None),
                )
            }?;
            let cmds = [cmd];
            let signal = [lane.semaphore];
            let signal_value = [lane.signalled + 1];
            waits.clear();
            if *last_value > 0 {
                waits.push(timeline, *last_value, vk::PipelineStageFlags::TRANSFER);
            }
            waits.push_external(external);
            let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default()
                .wait_semaphore_values(waits.values())
                .signal_semaphore_values(&signal_value);
            let submit = vk::SubmitInfo::default()
                .wait_semaphores(waits.semaphores())
                .wait_dst_stage_mask(waits.stages())
                .command_buffers(&cmds)
                .signal_semaphores(&signal)
                .push_next(&mut timeline_info);
            // SAFETY: the lane's queue is memkit's alone and externally synchronised by the
            // lock; the command buffer is executable; the lane's value increases; the awaited
            // value was submitted (it is the last one); the application's semaphores are alive
            // (`wait_for_external`'s contract).
            match unsafe { device.queue_submit(lane.queue, &[submit], vk::Fence::null()) } {
                Ok(()) => {
                    lane.signalled += 1;
                    lane.commands.submitted(lane.signalled);
                    lane.joined = false;
                    *started |= 1 << i;
                }
                Err(e) => {
                    lane.commands.not_submitted();
                    return Err(map_host_device_oom_and_lost_err(e));
                }
            }
        }

        // Loaded first so that the common case writes nothing.
        if self.fail_next_split.load(Ordering::Relaxed)
            && self.fail_next_split.swap(false, Ordering::AcqRel)
        {
            // Stands for a failure of the transfer queue's part (tests of the cleanup above).
            return Err(DeviceError::OutOfDeviceMemory);
        }
        part.clear();
        plan.part(0, &mut part);
        // SAFETY: as above, on the transfer queue's family.
        let cmd = unsafe {
            self.record_next(
                main_commands,
                completed,
                recorders,
                Batch::Copies(&part, None),
            )
        }?;
        let cmds = [cmd];
        waits.clear();
        waits.push_external(external);
        let mut copy_timeline_info =
            vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(waits.values());
        let mut copy = vk::SubmitInfo::default()
            .wait_semaphores(waits.semaphores())
            .wait_dst_stage_mask(waits.stages())
            .command_buffers(&cmds);
        if !external.is_empty() {
            copy = copy.push_next(&mut copy_timeline_info);
        }
        // The copy batch's waits cover this later batch on the queue too.
        join_waits.clear();
        join_waits.push_unjoined(lanes);
        let signal = [timeline];
        let values = [signal_value];
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(join_waits.values())
            .signal_semaphore_values(&values);
        let join = vk::SubmitInfo::default()
            .wait_semaphores(join_waits.semaphores())
            .wait_dst_stage_mask(join_waits.stages())
            .signal_semaphores(&signal)
            .push_next(&mut timeline_info);
        // SAFETY: the queue is externally synchronised by the lock; the command buffer is
        // executable; every awaited lane value was submitted above or before; the signal value
        // increases (checked by the caller); the application's semaphores are alive
        // (`wait_for_external`'s contract).
        match unsafe { device.queue_submit(*queue, &[copy, join], vk::Fence::null()) } {
            Ok(()) => {
                main_commands.submitted(signal_value);
                external.carried(signal_value);
                for lane in lanes.iter_mut() {
                    lane.joined = true;
                }
                *splits += 1;
                Ok(())
            }
            Err(e) => {
                main_commands.not_submitted();
                Err(map_host_device_oom_and_lost_err(e))
            }
        }
    }
}

/// Blocks until the last submission of every lane whose bit is set in `which` completed (on the
/// lanes' semaphores, else by idling their queues, retried until one succeeds: [`drain`]), then
/// marks those lanes joined: their work is done, so no later batch needs to wait for it.
/// [`DeviceError::DeviceLost`] when the device was lost meanwhile (nothing runs any more then).
///
/// # Safety
/// - the lanes are `device`'s, and the lock that guards their queues is held.
unsafe fn wait_for_lanes(
    device: &ash::Device,
    lanes: &mut [CopyLane],
    which: u32,
) -> Result<(), DeviceError> {
    let waited = |i: usize| which & (1 << i) != 0;
    let mut semaphores = [vk::Semaphore::null(); MAX_COPY_LANES];
    let mut values = [0u64; MAX_COPY_LANES];
    let mut len = 0;
    for (_, lane) in lanes.iter().enumerate().filter(|(i, _)| waited(*i)) {
        semaphores[len] = lane.semaphore;
        values[len] = lane.signalled;
        len += 1;
    }
    let info = vk::SemaphoreWaitInfo::default()
        .semaphores(&semaphores[..len])
        .values(&values[..len]);
    let wait = || {
        // SAFETY: the semaphores are alive; every awaited value was submitted.
        unsafe { device.wait_semaphores(&info, u64::MAX) }
            .map(|()| WaitStatus::Completed)
            .map_err(map_host_device_oom_and_lost_err)
    };
    let idle = || {
        for (_, lane) in lanes.iter().enumerate().filter(|(i, _)| waited(*i)) {
            // SAFETY: the lane's queue is externally synchronised by the lock (caller's
            // contract).
            unsafe { device.queue_wait_idle(lane.queue) }
                .map_err(map_host_device_oom_and_lost_err)?;
        }
        Ok(())
    };
    drain(wait, idle).map_err(|Lost| DeviceError::DeviceLost)?;
    for (_, lane) in lanes.iter_mut().enumerate().filter(|(i, _)| waited(*i)) {
        lane.joined = true;
    }
    Ok(())
}

/// The semaphores one batch waits for, with their values and stages: scratch that every
/// submission refills, so that waiting allocates nothing once it has grown.
#[derive(Debug, Default)]
struct WaitList {
    semaphores: Vec<vk::Semaphore>,
    values: Vec<u64>,
    stages: Vec<vk::PipelineStageFlags>,
}

impl WaitList {
    fn clear(&mut self) {
        self.semaphores.clear();
        self.values.clear();
        self.stages.clear();
    }

    /// Waits for `value` on `semaphore` before `stage` of this batch's commands (and later
    /// ones on the queue) runs.
    fn push(&mut self, semaphore: vk::Semaphore, value: u64, stage: vk::PipelineStageFlags) {
        self.semaphores.push(semaphore);
        self.values.push(value);
        self.stages.push(stage);
    }

    /// The lane values no main-queue batch waited for yet, before everything after the wait,
    /// on this queue, in this batch and later ones.
    fn push_unjoined(&mut self, lanes: &[CopyLane]) {
        for lane in lanes.iter().filter(|l| !l.joined) {
            self.push(
                lane.semaphore,
                lane.signalled,
                vk::PipelineStageFlags::ALL_COMMANDS,
            );
        }
    }

    /// The application's timelines, before any command: the barriers an image upload begins
    /// with start at `ALL_COMMANDS` too, so they chain after the wait.
    fn push_external(&mut self, external: &ExternalWaits) {
        for (semaphore, value) in external.iter() {
            self.push(semaphore, value, vk::PipelineStageFlags::ALL_COMMANDS);
        }
    }

    fn semaphores(&self) -> &[vk::Semaphore] {
        &self.semaphores
    }

    fn values(&self) -> &[u64] {
        &self.values
    }

    fn stages(&self) -> &[vk::PipelineStageFlags] {
        &self.stages
    }
}

impl CopyQueue for VulkanDevice {
    /// As [`CopyQueue::submit_copies`]; an error means that nothing of the submission is in
    /// flight: a submission split over the copy lanes that fails after some lanes' parts went out
    /// waits for those parts before it returns, so the caller may free what the copies used at
    /// once. After a loss (real or simulated), [`DeviceError::DeviceLost`] without a Vulkan call.
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, Self::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        self.submit_in_order(signal_value, |state| {
            // SAFETY: forwarded contract; the lock is held and the value rises.
            unsafe { self.submit_locked(state, commands, signal_value) }
        })
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        self.check_lost()?;
        // SAFETY: the timeline is alive and belongs to this device.
        unsafe { self.timeline.completed_value(&self.raw) }.map_err(|e| self.note(e))
    }

    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        self.check_lost()?;
        // SAFETY: the timeline is alive and belongs to this device.
        unsafe {
            self.timeline
                .wait(&self.raw, value, timeout_ns, Some(&self.lost))
        }
        .map_err(|e| self.note(e))
    }
}

/// The queue family memkit should submit copies to on `physical_device`: a transfer-only family
/// when there is one (`dedicated` is then `true`), else the first graphics or compute family
/// (which always support transfers). `None` when no family can copy.
///
/// # Safety
/// - `physical_device` belongs to `instance`.
pub unsafe fn find_transfer_queue_family(
    instance: &ash::Instance,
    physical_device: vk::PhysicalDevice,
) -> Option<TransferFamily> {
    // SAFETY: the physical device belongs to the instance (caller's contract).
    let families = unsafe { instance.get_physical_device_queue_family_properties(physical_device) };
    let general = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
    let dedicated = families.iter().position(|f| {
        f.queue_count > 0
            && f.queue_flags.contains(vk::QueueFlags::TRANSFER)
            && !f.queue_flags.intersects(general)
    });
    if let Some(i) = dedicated {
        return Some(TransferFamily {
            family: i as u32,
            dedicated: true,
            queue_count: families[i].queue_count,
        });
    }
    families
        .iter()
        .position(|f| f.queue_count > 0 && f.queue_flags.intersects(general))
        .map(|i| TransferFamily {
            family: i as u32,
            dedicated: false,
            queue_count: families[i].queue_count,
        })
}

/// A queue family that can copy, from [`find_transfer_queue_family`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransferFamily {
    /// Its index.
    pub family: u32,
    /// Whether it is transfer-only (a copy engine separate from graphics and compute).
    pub dedicated: bool,
    /// How many queues it has.
    pub queue_count: u32,
}
