//! Queue-family ownership transfer for buffers created with `VK_SHARING_MODE_EXCLUSIVE`.
//!
//! A buffer written on the transfer family and read on another (graphics, compute) must be
//! released by the first and acquired by the second, with barriers that name the same buffer,
//! range and pair of families. [`release_barrier`] and [`acquire_barrier`] build the two halves;
//! [`record_release`] and [`record_acquire`] record them. The acquire is submitted after waiting
//! on the timeline value of the release's submission.

use ash::vk;
use memkit_core::device::CopyCommand;

use crate::conv::map_destination_span;
use crate::device::VulkanDevice;

/// A pair of queue families between which buffer ownership moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnershipTransfer {
    /// The family that wrote the buffer and releases it (memkit's transfer family).
    pub src_family: u32,
    /// The family that acquires it (the application's graphics or compute family, or
    /// `VK_QUEUE_FAMILY_EXTERNAL`).
    pub dst_family: u32,
}

impl OwnershipTransfer {
    /// Whether the families differ; barriers between equal families transfer nothing.
    pub fn is_transfer(&self) -> bool {
        self.src_family != self.dst_family
    }
}

/// The release half for `[offset, offset + size)` of `buffer`, after transfer writes.
pub fn release_barrier(
    transfer: OwnershipTransfer,
    buffer: vk::Buffer,
    offset: u64,
    size: u64,
) -> vk::BufferMemoryBarrier<'static> {
    vk::BufferMemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        // Ignored for a release: visibility is the acquiring family's business.
        .dst_access_mask(vk::AccessFlags::empty())
        .src_queue_family_index(transfer.src_family)
        .dst_queue_family_index(transfer.dst_family)
        .buffer(buffer)
        .offset(offset)
        .size(size)
}

/// The acquire half matching [`release_barrier`] with the same arguments; `dst_access` is how the
/// acquiring family will use the range (`VERTEX_ATTRIBUTE_READ`, `SHADER_READ`, ...).
pub fn acquire_barrier(
    transfer: OwnershipTransfer,
    buffer: vk::Buffer,
    offset: u64,
    size: u64,
    dst_access: vk::AccessFlags,
) -> vk::BufferMemoryBarrier<'static> {
    vk::BufferMemoryBarrier::default()
        // Ignored for an acquire: availability was the releasing family's business.
        .src_access_mask(vk::AccessFlags::empty())
        .dst_access_mask(dst_access)
        .src_queue_family_index(transfer.src_family)
        .dst_queue_family_index(transfer.dst_family)
        .buffer(buffer)
        .offset(offset)
        .size(size)
}

/// Appends to `out` one release barrier per command: its destination buffer over the span of its
/// regions. These are the barriers [`crate::VulkanDevice`] records after the copies when it was
/// configured with [`crate::VulkanDeviceConfig::release_to_family`].
pub fn release_barriers_for(
    transfer: OwnershipTransfer,
    commands: &[CopyCommand<'_, vk::Buffer>],
    out: &mut Vec<vk::BufferMemoryBarrier<'static>>,
) {
    for command in commands {
        if let Some((offset, size)) = map_destination_span(command.regions) {
            out.push(release_barrier(transfer, command.dst, offset, size));
        }
    }
}

/// Appends to `out` the acquire barriers matching [`release_barriers_for`] on the same commands.
pub fn acquire_barriers_for(
    transfer: OwnershipTransfer,
    commands: &[CopyCommand<'_, vk::Buffer>],
    dst_access: vk::AccessFlags,
    out: &mut Vec<vk::BufferMemoryBarrier<'static>>,
) {
    for command in commands {
        if let Some((offset, size)) = map_destination_span(command.regions) {
            out.push(acquire_barrier(
                transfer,
                command.dst,
                offset,
                size,
                dst_access,
            ));
        }
    }
}

/// Records release barriers (built by [`release_barrier`]) after transfer writes.
///
/// # Safety
/// - `cmd` is in the recording state, from a pool of the barriers' source family, on `device`;
/// - every buffer is alive and created with exclusive sharing; ranges lie inside the buffers.
pub unsafe fn record_release(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    barriers: &[vk::BufferMemoryBarrier<'_>],
) {
    if barriers.is_empty() {
        return;
    }
    // SAFETY: the command buffer is recording and the barriers are valid (caller's contract).
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            vk::DependencyFlags::empty(),
            &[],
            barriers,
            &[],
        );
    }
}

/// Records acquire barriers (built by [`acquire_barrier`]) before the stages in `dst_stage` use
/// the buffers.
///
/// # Safety
/// - `cmd` is in the recording state, from a pool of the barriers' destination family, on
///   `device`; the submission containing it waits for the release's submission;
/// - every buffer is alive and created with exclusive sharing; ranges lie inside the buffers and
///   match a recorded release.
pub unsafe fn record_acquire(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    barriers: &[vk::BufferMemoryBarrier<'_>],
    dst_stage: vk::PipelineStageFlags,
) {
    if barriers.is_empty() {
        return;
    }
    // SAFETY: the command buffer is recording and the barriers are valid (caller's contract).
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            dst_stage,
            vk::DependencyFlags::empty(),
            &[],
            barriers,
            &[],
        );
    }
}

impl VulkanDevice {
    /// Appends to `out` the acquire barriers matching the releases this device recorded for
    /// `commands` (nothing when no ownership transfer is configured). Record them with
    /// [`record_acquire`] on the destination family, in a submission that waits for the copies'
    /// timeline value.
    pub fn acquire_barriers(
        &self,
        commands: &[CopyCommand<'_, vk::Buffer>],
        dst_access: vk::AccessFlags,
        out: &mut Vec<vk::BufferMemoryBarrier<'static>>,
    ) {
        if let Some(transfer) = self.ownership_transfer() {
            acquire_barriers_for(transfer, commands, dst_access, out);
        }
    }
}

#[cfg(test)]
mod tests;
