//! Recording copy commands into a command buffer: one `vkCmdCopyBuffer` with all its regions per
//! [`CopyCommand`], and the barriers that make the copies safe.
//!
//! Barriers recorded, and why:
//! - before the copies, transfer writes of earlier submissions on the queue against these copies'
//!   reads and writes (a buffer uploaded in one submission and read back in the next);
//! - between commands, when a command reads or writes a buffer an earlier command of the same
//!   recording wrote;
//! - after the copies, transfer writes against host reads (so that readback buffers can be read
//!   once the timeline value completed), and the ownership releases, when configured.
//!
//! The scratch vectors live in the recorder and are reused: recording allocates only while they
//! grow to the largest batch seen.

use ash::vk;
use memkit_core::device::CopyCommand;

use crate::barrier::{OwnershipTransfer, release_barriers_for};
use crate::conv::map_buffer_copy;

/// Records copies into command buffers, reusing its scratch space across recordings.
///
/// For engines that own their submissions: record into a command buffer of yours with
/// [`CopyRecorder::record`], submit it yourself, and make the consumers of the destination
/// buffers wait for it.
#[derive(Debug, Default)]
pub struct CopyRecorder {
    regions: Vec<vk::BufferCopy>,
    releases: Vec<vk::BufferMemoryBarrier<'static>>,
    written: Vec<vk::Buffer>,
}

const TRANSFER_ACCESS: vk::AccessFlags = vk::AccessFlags::from_raw(
    vk::AccessFlags::TRANSFER_READ.as_raw() | vk::AccessFlags::TRANSFER_WRITE.as_raw(),
);

impl CopyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `commands`, in order, into `cmd`, followed by release barriers for every
    /// destination when `release` names two different families.
    ///
    /// # Safety
    /// - `cmd` is in the recording state, on `device`, from a pool of a family that supports
    ///   transfers (and of `release.src_family` when given);
    /// - every buffer is alive and bound, stays so until the command buffer completed, and was
    ///   created with `TRANSFER_SRC` (sources) or `TRANSFER_DST` (destinations);
    /// - each region has a nonzero size and lies inside both buffers; in one command,
    ///   destination ranges are disjoint and no region's source range overlaps any region's
    ///   destination range in memory (`VUID-VkBufferCopy-size-01988`,
    ///   `VUID-vkCmdCopyBuffer-pRegions-00117`).
    pub unsafe fn record(
        &mut self,
        device: &ash::Device,
        cmd: vk::CommandBuffer,
        commands: &[CopyCommand<'_, vk::Buffer>],
        release: Option<OwnershipTransfer>,
    ) {
        // SAFETY: `cmd` is recording on `device` (caller's contract).
        unsafe {
            global_barrier(
                device,
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::TRANSFER,
                TRANSFER_ACCESS,
            )
        };
        self.written.clear();
        for command in commands {
            if command.regions.is_empty() {
                continue;
            }
            if self
                .written
                .iter()
                .any(|&w| w == command.src || w == command.dst)
            {
                // SAFETY: as above.
                unsafe {
                    global_barrier(
                        device,
                        cmd,
                        vk::PipelineStageFlags::TRANSFER,
                        vk::PipelineStageFlags::TRANSFER,
                        TRANSFER_ACCESS,
                    )
                };
                self.written.clear();
            }
            self.regions.clear();
            self.regions
                .extend(command.regions.iter().map(map_buffer_copy));
            // SAFETY: the buffers are alive, bound and carry the transfer usages, and the regions
            // lie inside them (caller's contract).
            unsafe { device.cmd_copy_buffer(cmd, command.src, command.dst, &self.regions) };
            self.written.push(command.dst);
        }
        self.releases.clear();
        if let Some(transfer) = release.filter(OwnershipTransfer::is_transfer) {
            release_barriers_for(transfer, commands, &mut self.releases);
        }
        let host_read = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)];
        let dst_stage = if self.releases.is_empty() {
            vk::PipelineStageFlags::HOST
        } else {
            vk::PipelineStageFlags::HOST | vk::PipelineStageFlags::BOTTOM_OF_PIPE
        };
        // SAFETY: as above; the release barriers name buffers of the commands, created with
        // exclusive sharing when a transfer is configured (caller's contract).
        unsafe {
            device.cmd_pipeline_barrier(
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                dst_stage,
                vk::DependencyFlags::empty(),
                &host_read,
                &self.releases,
                &[],
            )
        };
    }
}

/// Records one global memory barrier from transfer writes to `dst_access` in `dst_stage`.
///
/// # Safety
/// - `cmd` is in the recording state on `device`.
unsafe fn global_barrier(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    src_stage: vk::PipelineStageFlags,
    dst_stage: vk::PipelineStageFlags,
    dst_access: vk::AccessFlags,
) {
    let barrier = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(dst_access)];
    // SAFETY: `cmd` is recording on `device` (caller's contract).
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            src_stage,
            dst_stage,
            vk::DependencyFlags::empty(),
            &barrier,
            &[],
            &[],
        )
    };
}
