//! The copy queue: command buffers recycled in submission order, copies recorded by
//! [`CopyRecorder`], each submission signalling its timeline value.
//!
//! Submissions complete in order (a semaphore or fence signal covers every earlier command on
//! the queue), so in-flight command buffers form a FIFO: the oldest is reused as soon as its value
//! completed, and a new one is allocated only when all are in flight. In steady state nothing is
//! allocated per submission.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use ash::vk;
use memkit_core::device::{CopyCommand, CopyQueue, DeviceError, WaitStatus};

use crate::device::VulkanDevice;
use crate::error::{INVALID_ARGUMENT, map_host_device_oom_and_lost_err, map_host_device_oom_err};
use crate::transfer::CopyRecorder;

/// A command buffer and the timeline value of its last submission (0: never submitted).
#[derive(Debug)]
struct RecycledCommandBuffer {
    raw: vk::CommandBuffer,
    value: u64,
}

/// Everything a submission touches that Vulkan wants externally synchronised.
#[derive(Debug)]
pub(crate) struct SubmitState {
    queue: vk::Queue,
    pool: vk::CommandPool,
    /// Oldest submission first.
    buffers: VecDeque<RecycledCommandBuffer>,
    recorder: CopyRecorder,
    last_value: u64,
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
        let info = vk::CommandPoolCreateInfo::default()
            .flags(
                vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER
                    | vk::CommandPoolCreateFlags::TRANSIENT,
            )
            .queue_family_index(family);
        // SAFETY: the family exists on the device (caller's contract).
        let pool =
            unsafe { device.create_command_pool(&info, None) }.map_err(map_host_device_oom_err)?;
        Ok(Self {
            queue,
            pool,
            buffers: VecDeque::new(),
            recorder: CopyRecorder::new(),
            last_value: 0,
        })
    }

    /// A command buffer ready to record: the oldest one if its value completed, else a new one.
    /// It is at the back of `buffers`.
    ///
    /// # Safety
    /// - `device` is the pool's device.
    unsafe fn next_buffer(
        &mut self,
        device: &ash::Device,
        completed: u64,
    ) -> Result<vk::CommandBuffer, DeviceError> {
        if let Some(front) = self.buffers.front()
            && front.value <= completed
        {
            let raw = front.raw;
            // SAFETY: its submission completed, so it is not pending; the pool allows
            // per-buffer resets and is externally synchronised by the caller's lock.
            unsafe { device.reset_command_buffer(raw, vk::CommandBufferResetFlags::empty()) }
                .map_err(map_host_device_oom_err)?;
            if let Some(b) = self.buffers.pop_front() {
                self.buffers.push_back(b);
            }
            return Ok(raw);
        }
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: the pool is alive and externally synchronised by the caller's lock.
        let raw = unsafe { device.allocate_command_buffers(&info) }
            .map_err(map_host_device_oom_err)?
            .first()
            .copied()
            .ok_or(DeviceError::Unexpected(vk::Result::ERROR_UNKNOWN.as_raw()))?;
        self.buffers
            .push_back(RecycledCommandBuffer { raw, value: 0 });
        Ok(raw)
    }

    /// Command buffers allocated so far.
    pub(crate) fn command_buffer_count(&self) -> usize {
        self.buffers.len()
    }

    /// Destroys the pool and with it every command buffer.
    ///
    /// # Safety
    /// - no command buffer of the pool is pending.
    pub(crate) unsafe fn destroy(&mut self, device: &ash::Device) {
        self.buffers.clear();
        // SAFETY: nothing pending (caller's contract); the pool is memkit's.
        unsafe { device.destroy_command_pool(self.pool, None) };
    }
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

    /// Records that the device is lost, as a `VK_ERROR_DEVICE_LOST` would: for tests of what
    /// callers do then.
    #[doc(hidden)]
    pub fn simulate_device_lost(&self) {
        self.note(DeviceError::DeviceLost);
    }

    fn check_lost(&self) -> Result<(), DeviceError> {
        if self.is_lost() {
            Err(DeviceError::DeviceLost)
        } else {
            Ok(())
        }
    }

    /// Takes a command buffer, records and submits under the lock; on failure the command buffer
    /// is left reusable.
    ///
    /// # Safety
    /// As for [`CopyQueue::submit_copies`].
    unsafe fn submit_locked(
        &self,
        state: &mut SubmitState,
        commands: &[CopyCommand<'_, vk::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let device = &self.raw;
        // SAFETY: the timeline is alive.
        let completed = unsafe { self.timeline.completed_value(device) }?;
        // SAFETY: the pool is this device's, and the lock is held.
        let cmd = unsafe { state.next_buffer(device, completed) }?;
        // SAFETY: forwarded contract; `cmd` is reset (or new) and not pending.
        let result = unsafe { self.record_and_submit(state, cmd, commands, signal_value) };
        match result {
            Ok(()) => {
                if let Some(b) = state.buffers.back_mut() {
                    b.value = signal_value;
                }
                state.last_value = signal_value;
                self.last_submitted.store(signal_value, Ordering::Release);
            }
            Err(_) => {
                // Not pending: reusable at once. The front keeps the FIFO ordered by value.
                if let Some(mut b) = state.buffers.pop_back() {
                    b.value = 0;
                    state.buffers.push_front(b);
                }
            }
        }
        result
    }

    /// Records `commands` into `cmd` and submits it.
    ///
    /// # Safety
    /// As for [`CopyQueue::submit_copies`]; `cmd` is from the state's pool, not pending, and the
    /// lock is held.
    unsafe fn record_and_submit(
        &self,
        state: &mut SubmitState,
        cmd: vk::CommandBuffer,
        commands: &[CopyCommand<'_, vk::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let device = &self.raw;
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the buffer is reset (or new) and not pending.
        unsafe { device.begin_command_buffer(cmd, &begin) }.map_err(map_host_device_oom_err)?;
        // SAFETY: recording; buffers, regions and usages are valid (caller's contract); the
        // release family is the pool's when a transfer is configured.
        unsafe { state.recorder.record(device, cmd, commands, self.release) };
        // SAFETY: recording.
        unsafe { device.end_command_buffer(cmd) }.map_err(map_host_device_oom_err)?;

        // SAFETY: the timeline is alive.
        let fence = unsafe { self.timeline.take_fence(device) }?;
        let cmds = [cmd];
        let semaphore = self.timeline.semaphore();
        let semaphores: &[vk::Semaphore] = semaphore.as_slice();
        let values = [signal_value];
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default()
            .signal_semaphore_values(&values[..semaphores.len()]);
        let mut submit = vk::SubmitInfo::default()
            .command_buffers(&cmds)
            .signal_semaphores(semaphores);
        if !semaphores.is_empty() {
            submit = submit.push_next(&mut timeline_info);
        }
        // SAFETY: the queue is externally synchronised by the lock; the command buffer is
        // executable; the signal value increases (checked by the caller).
        match unsafe { device.queue_submit(state.queue, &[submit], fence) } {
            Ok(()) => {
                self.timeline.submitted(fence, signal_value);
                Ok(())
            }
            Err(e) => {
                if fence != vk::Fence::null() {
                    self.timeline.not_submitted(fence);
                }
                Err(map_host_device_oom_and_lost_err(e))
            }
        }
    }
}

impl CopyQueue for VulkanDevice {
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, Self::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        let mut state = self.lock_submit();
        if signal_value <= state.last_value {
            return Err(DeviceError::Unexpected(INVALID_ARGUMENT));
        }
        // SAFETY: forwarded contract; the lock is held.
        unsafe { self.submit_locked(&mut state, commands, signal_value) }.map_err(|e| self.note(e))
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        self.check_lost()?;
        // SAFETY: the timeline is alive and belongs to this device.
        unsafe { self.timeline.completed_value(&self.raw) }.map_err(|e| self.note(e))
    }

    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        self.check_lost()?;
        // SAFETY: the timeline is alive and belongs to this device.
        unsafe { self.timeline.wait(&self.raw, value, timeout_ns) }.map_err(|e| self.note(e))
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
