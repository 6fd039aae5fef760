//! A defragmentation pass's copies on memkit's transfer queue: `ImageCopyQueue::submit_moves`
//! for [`VulkanDevice`] (what memkit-std's `Coordinator::defragment_with_images` submits). One
//! command buffer, in order with memkit's other work and signalling the timeline like it: the
//! buffer copies, recorded as [`crate::CopyRecorder`] records them, then the image moves:
//! 1. one barrier, after everything submitted before on the queue (`ALL_COMMANDS`,
//!    `MEMORY_WRITE`): every subresource of each source from the layout after upload to
//!    `TRANSFER_SRC_OPTIMAL`, and of each destination from `UNDEFINED` (it is new) to
//!    `TRANSFER_DST_OPTIMAL`;
//! 2. one `vkCmdCopyImage` per move, a region per mip level, all layers, whole extents (which
//!    every transfer granularity allows);
//! 3. one barrier moving each destination on to the layout after upload, its writes made
//!    available to `ALL_COMMANDS`, as an upload ends. The source stays in
//!    `TRANSFER_SRC_OPTIMAL`: it is destroyed once the value completed.
//!
//! Under [`crate::VulkanDeviceConfig::release_to_family`], a source is first reclaimed from the
//! application's family (which returned it with [`crate::image_return_barrier`], as before a
//! read-back) into `TRANSFER_DST_OPTIMAL` and then moved on to `TRANSFER_SRC_OPTIMAL` in a
//! barrier call of its own; each destination ends with the release an upload ends with, for the
//! application to acquire ([`crate::image_acquire_barrier`]) before its first use.

use ash::vk;
use memkit_core::device::{CopyCommand, DeviceError, ImageMoveCommand};

use crate::barrier::{OwnershipTransfer, image_reclaim_barrier, image_release_barrier};
use crate::conv::{map_image_aspects, map_image_layout};
use crate::device::VulkanDevice;
use crate::image_upload::within_family;
use crate::queue::Batch;

impl VulkanDevice {
    /// As [`ImageCopyQueue::submit_moves`](memkit_core::device::ImageCopyQueue::submit_moves),
    /// on the transfer queue, in one command buffer (see the module docs). Refused, with
    /// nothing submitted: after a loss, [`DeviceError::DeviceLost`]; a move whose description
    /// fails [`ImageDesc::check_move`](memkit_core::device::ImageDesc::check_move),
    /// [`DeviceError::InvalidImageCopy`]; a value not above the last submitted one,
    /// [`InvalidArgument::TimelineNotIncreasing`](memkit_core::device::InvalidArgument::TimelineNotIncreasing).
    ///
    /// # Safety
    /// As [`ImageCopyQueue::submit_moves`](memkit_core::device::ImageCopyQueue::submit_moves);
    /// under `release_to_family`, each source was returned by the application in a submission
    /// that completed before this call.
    pub(crate) unsafe fn submit_moves_checked(
        &self,
        buffers: &[CopyCommand<'_, vk::Buffer>],
        images: &[ImageMoveCommand<vk::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        images
            .iter()
            .try_for_each(|m| m.desc.check_move())
            .map_err(DeviceError::InvalidImageCopy)?;
        self.submit_in_order(signal_value, |state| {
            // SAFETY: the caller's contract, with every move checked above; the lock is held and
            // the value rises (`submit_in_order`).
            unsafe {
                self.submit_whole(
                    state,
                    Batch::Moves(buffers, images, self.release),
                    signal_value,
                )
            }
        })
    }
}

/// Records the image moves of `moves` into `cmd` (see the module docs).
///
/// # Safety
/// - `cmd` is in the recording state, on `device`, from a pool of a family that supports
///   transfers (`release.src_family` when given);
/// - every image is alive and bound; each move's description passed
///   [`ImageDesc::check_move`](memkit_core::device::ImageDesc::check_move) and is both its
///   images'; no image appears twice; each source is in the layout after upload (or, under
///   `release`, was returned by the application), each destination was never used.
pub(crate) unsafe fn record_image_moves(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    moves: &[ImageMoveCommand<vk::Image>],
    release: Option<OwnershipTransfer>,
) {
    if moves.is_empty() {
        return;
    }
    let release = release.filter(OwnershipTransfer::is_transfer);
    let barrier = |src_stage, dst_stage, images: &[vk::ImageMemoryBarrier<'_>]| {
        // SAFETY: `cmd` is recording on a family that supports transfers, where the stages and
        // accesses named here are valid; each image is alive and in the barrier's old layout
        // (caller's contract, and the barriers before it).
        unsafe {
            device.cmd_pipeline_barrier(
                cmd,
                src_stage,
                dst_stage,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                images,
            )
        }
    };
    let mut entry = Vec::with_capacity(2 * moves.len());
    for m in moves {
        entry.push(match release {
            Some(transfer) => image_reclaim_barrier(transfer, m.src, &m.desc),
            None => within_family(
                m.src,
                m.desc.format,
                map_image_layout(m.desc.layout_after_upload()),
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            )
            .src_access_mask(vk::AccessFlags::MEMORY_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ),
        });
        entry.push(
            within_family(
                m.dst,
                m.desc.format,
                vk::ImageLayout::UNDEFINED,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            )
            .src_access_mask(vk::AccessFlags::empty())
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE),
        );
    }
    barrier(
        vk::PipelineStageFlags::ALL_COMMANDS,
        vk::PipelineStageFlags::TRANSFER,
        &entry,
    );
    if release.is_some() {
        // The reclaim left each source in `TRANSFER_DST_OPTIMAL`; a second transition of the
        // same subresources in the same call would be unordered with it.
        let to_source: Vec<_> = moves
            .iter()
            .map(|m| {
                within_family(
                    m.src,
                    m.desc.format,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                    vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                )
                .src_access_mask(vk::AccessFlags::empty())
                .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
            })
            .collect();
        barrier(
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::TRANSFER,
            &to_source,
        );
    }
    let mut regions = Vec::new();
    for m in moves {
        let layers = vk::ImageSubresourceLayers {
            aspect_mask: map_image_aspects(m.desc.format),
            mip_level: 0,
            base_array_layer: 0,
            layer_count: m.desc.array_layers,
        };
        regions.clear();
        regions.extend((0..m.desc.mip_levels).map(|level| {
            let [width, height, depth] = m.desc.level_extent(level);
            let layers = vk::ImageSubresourceLayers {
                mip_level: level,
                ..layers
            };
            vk::ImageCopy {
                src_subresource: layers,
                src_offset: vk::Offset3D::default(),
                dst_subresource: layers,
                dst_offset: vk::Offset3D::default(),
                extent: vk::Extent3D {
                    width,
                    height,
                    depth,
                },
            }
        }));
        // SAFETY: both images are alive, were created with `desc` (so every level and layer
        // named exists, and the whole extents fit), carry `TRANSFER_SRC` and `TRANSFER_DST`
        // (`check_move`), and are in the layouts named (barriers above); they are different
        // images (caller's contract).
        unsafe {
            device.cmd_copy_image(
                cmd,
                m.src,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                m.dst,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &regions,
            )
        };
    }
    let exit: Vec<_> = moves
        .iter()
        .map(|m| match release {
            Some(transfer) => image_release_barrier(transfer, m.dst, &m.desc),
            None => within_family(
                m.dst,
                m.desc.format,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                map_image_layout(m.desc.layout_after_upload()),
            )
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::empty()),
        })
        .collect();
    barrier(
        vk::PipelineStageFlags::TRANSFER,
        vk::PipelineStageFlags::ALL_COMMANDS,
        &exit,
    );
}
