//! Command buffers of one queue, recycled in submission order.
//!
//! Submissions on a queue complete in order (a semaphore signal covers every earlier command on
//! the queue), so in-flight command buffers form a FIFO: the oldest is reused as soon as its value
//! completed, and a new one is allocated only when all are in flight. In steady state nothing is
//! allocated per submission.

use std::collections::VecDeque;

use ash::vk;
use memkit_core::device::DeviceError;

use crate::error::map_host_device_oom_err;

/// A command buffer and the value whose completion frees it (0: never submitted).
#[derive(Debug)]
struct RecycledCommandBuffer {
    raw: vk::CommandBuffer,
    value: u64,
}

/// A command pool of one queue family and its command buffers, oldest submission first.
#[derive(Debug)]
pub(crate) struct CommandBufferRing {
    pool: vk::CommandPool,
    buffers: VecDeque<RecycledCommandBuffer>,
}

impl CommandBufferRing {
    /// Creates the command pool.
    ///
    /// # Safety
    /// - `family` is a queue family of `device`.
    pub(crate) unsafe fn new(device: &ash::Device, family: u32) -> Result<Self, DeviceError> {
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
            pool,
            buffers: VecDeque::new(),
        })
    }

    /// A command buffer ready to record: the oldest one if its value is at most `completed`,
    /// else a new one. Follow with [`Self::submitted`] or [`Self::not_submitted`].
    ///
    /// # Safety
    /// - `device` is the pool's device; the caller synchronises access to the pool;
    /// - `completed` is a value the queue's submissions reached (what frees their buffers).
    pub(crate) unsafe fn next(
        &mut self,
        device: &ash::Device,
        completed: u64,
    ) -> Result<vk::CommandBuffer, DeviceError> {
        if let Some(front) = self.buffers.front()
            && front.value <= completed
        {
            let raw = front.raw;
            // SAFETY: its submission completed, so it is not pending; the pool allows
            // per-buffer resets and is externally synchronised by the caller.
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
        // SAFETY: the pool is alive and externally synchronised by the caller.
        let raw = unsafe { device.allocate_command_buffers(&info) }
            .map_err(map_host_device_oom_err)?
            .first()
            .copied()
            .ok_or(DeviceError::Unexpected(vk::Result::ERROR_UNKNOWN.as_raw()))?;
        self.buffers
            .push_back(RecycledCommandBuffer { raw, value: 0 });
        Ok(raw)
    }

    /// The buffer [`Self::next`] returned was submitted; `value` completing frees it.
    pub(crate) fn submitted(&mut self, value: u64) {
        if let Some(b) = self.buffers.back_mut() {
            b.value = value;
        }
    }

    /// The buffer [`Self::next`] returned was not submitted: reusable at once. Moving it to the
    /// front keeps the FIFO ordered by value.
    pub(crate) fn not_submitted(&mut self) {
        if let Some(mut b) = self.buffers.pop_back() {
            b.value = 0;
            self.buffers.push_front(b);
        }
    }

    /// Command buffers allocated so far.
    pub(crate) fn len(&self) -> usize {
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
