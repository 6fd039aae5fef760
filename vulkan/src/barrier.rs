//! Queue-family ownership transfer for buffers and images created with
//! `VK_SHARING_MODE_EXCLUSIVE`.
//!
//! A buffer written on the transfer family and read on another (graphics, compute) must be
//! released by the first and acquired by the second, with barriers that name the same buffer,
//! range and pair of families. [`release_barrier`] and [`acquire_barrier`] build the two halves;
//! [`record_release`] and [`record_acquire`] record them. The acquire is submitted after waiting
//! on the timeline value of the release's submission.
//!
//! Images move the same way, whole (every level and layer), and the two halves also name the
//! same layout transition, which runs once: [`image_release_barrier`] (recorded by memkit after
//! its last copy into the image in a submission) and [`image_acquire_barrier`] take it from
//! `TRANSFER_DST_OPTIMAL` to [`ImageDesc::layout_after_upload`]. An upload that keeps the
//! image's contents needs the image back: the application releases it with
//! [`image_return_barrier`], and memkit's first barrier for the image is the matching
//! [`image_reclaim_barrier`], from the layout after upload to `TRANSFER_DST_OPTIMAL`. An upload
//! that discards the contents needs no transfer (its barrier starts from `UNDEFINED`).

use ash::vk;
use memkit_core::device::{CopyCommand, ImageCopyCommand, ImageDesc, ImageFormat};

use crate::conv::{map_destination_span, map_image_aspects, map_image_layout};
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
    // SAFETY: forwarded contract.
    unsafe {
        record_barriers(
            device,
            cmd,
            (
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            ),
            barriers,
            &[],
        )
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
    // SAFETY: forwarded contract.
    unsafe {
        record_barriers(
            device,
            cmd,
            (vk::PipelineStageFlags::TOP_OF_PIPE, dst_stage),
            barriers,
            &[],
        )
    }
}

/// Every subresource of an image of `format`, every aspect of it: what memkit's image barriers
/// name.
pub(crate) fn whole_image(format: ImageFormat) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: map_image_aspects(format),
        base_mip_level: 0,
        level_count: vk::REMAINING_MIP_LEVELS,
        base_array_layer: 0,
        layer_count: vk::REMAINING_ARRAY_LAYERS,
    }
}

/// A barrier over every subresource of `image` (of `format`) from `old_layout` to `new_layout`,
/// moving it from `src_family` to `dst_family` (`VK_QUEUE_FAMILY_IGNORED` for both: within the
/// family).
pub(crate) fn whole_image_barrier(
    image: vk::Image,
    format: ImageFormat,
    old_layout: vk::ImageLayout,
    new_layout: vk::ImageLayout,
    src_family: u32,
    dst_family: u32,
) -> vk::ImageMemoryBarrier<'static> {
    vk::ImageMemoryBarrier::default()
        .old_layout(old_layout)
        .new_layout(new_layout)
        .src_queue_family_index(src_family)
        .dst_queue_family_index(dst_family)
        .image(image)
        .subresource_range(whole_image(format))
}

/// The release half memkit records after its last copy into `image` (created with `desc`) in a
/// submission: from `TRANSFER_DST_OPTIMAL` to the layout after upload, from `transfer.src_family`
/// to `transfer.dst_family`, after transfer writes.
pub fn image_release_barrier(
    transfer: OwnershipTransfer,
    image: vk::Image,
    desc: &ImageDesc,
) -> vk::ImageMemoryBarrier<'static> {
    whole_image_barrier(
        image,
        desc.format,
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        map_image_layout(desc.layout_after_upload()),
        transfer.src_family,
        transfer.dst_family,
    )
    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
    // Ignored for a release: visibility is the acquiring family's business.
    .dst_access_mask(vk::AccessFlags::empty())
}

/// The acquire half matching [`image_release_barrier`] with the same arguments; `dst_access` is
/// how the acquiring family will use the image (`SHADER_READ`, ...). The image is in
/// [`ImageDesc::layout_after_upload`] after it.
pub fn image_acquire_barrier(
    transfer: OwnershipTransfer,
    image: vk::Image,
    desc: &ImageDesc,
    dst_access: vk::AccessFlags,
) -> vk::ImageMemoryBarrier<'static> {
    whole_image_barrier(
        image,
        desc.format,
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        map_image_layout(desc.layout_after_upload()),
        transfer.src_family,
        transfer.dst_family,
    )
    // Ignored for an acquire: availability was the releasing family's business.
    .src_access_mask(vk::AccessFlags::empty())
    .dst_access_mask(dst_access)
}

/// The application's release of an acquired image back to memkit's family, before an upload
/// into it with `keep_contents`: from the layout after upload to `TRANSFER_DST_OPTIMAL`, from
/// `transfer.dst_family` back to `transfer.src_family`; `src_access` is how the application last
/// wrote the image (empty if it only read it). Record it with [`record_image_return`].
pub fn image_return_barrier(
    transfer: OwnershipTransfer,
    image: vk::Image,
    desc: &ImageDesc,
    src_access: vk::AccessFlags,
) -> vk::ImageMemoryBarrier<'static> {
    whole_image_barrier(
        image,
        desc.format,
        map_image_layout(desc.layout_after_upload()),
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        transfer.dst_family,
        transfer.src_family,
    )
    .src_access_mask(src_access)
    .dst_access_mask(vk::AccessFlags::empty())
}

/// The acquire half matching [`image_return_barrier`]: what memkit records before its first copy
/// into a returned image, for an upload with `keep_contents`.
pub fn image_reclaim_barrier(
    transfer: OwnershipTransfer,
    image: vk::Image,
    desc: &ImageDesc,
) -> vk::ImageMemoryBarrier<'static> {
    whole_image_barrier(
        image,
        desc.format,
        map_image_layout(desc.layout_after_upload()),
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        transfer.dst_family,
        transfer.src_family,
    )
    .src_access_mask(vk::AccessFlags::empty())
    .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
}

/// Appends to `out` the acquire barriers matching the releases memkit records for `commands`:
/// one per image, in the order the images first appear (a submission releases each image once,
/// after its last command).
pub fn image_acquire_barriers_for(
    transfer: OwnershipTransfer,
    commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
    dst_access: vk::AccessFlags,
    out: &mut Vec<vk::ImageMemoryBarrier<'static>>,
) {
    for (i, command) in commands.iter().enumerate() {
        if !commands[..i].iter().any(|c| c.dst == command.dst) {
            out.push(image_acquire_barrier(
                transfer,
                command.dst,
                &command.desc,
                dst_access,
            ));
        }
    }
}

/// Records image acquire barriers (built by [`image_acquire_barrier`]) before the stages in
/// `dst_stage` use the images.
///
/// # Safety
/// - `cmd` is in the recording state, from a pool of the barriers' destination family, on
///   `device`; the submission containing it waits for the release's submission;
/// - every image is alive, created with exclusive sharing, and each barrier matches a recorded
///   release.
pub unsafe fn record_image_acquire(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    barriers: &[vk::ImageMemoryBarrier<'_>],
    dst_stage: vk::PipelineStageFlags,
) {
    // SAFETY: forwarded contract.
    unsafe {
        record_barriers(
            device,
            cmd,
            (vk::PipelineStageFlags::TOP_OF_PIPE, dst_stage),
            &[],
            barriers,
        )
    }
}

/// Records the application's image returns (built by [`image_return_barrier`]) after the
/// stages in `src_stage` last used the images.
///
/// # Safety
/// - `cmd` is in the recording state, from a pool of the barriers' source family (the family
///   that acquired the images), on `device`;
/// - every image is alive, created with exclusive sharing, owned by that family and in the
///   layout after upload;
/// - the submission containing it completes before memkit's upload that reclaims the images is
///   submitted: memkit's submissions wait for nothing of the application's.
pub unsafe fn record_image_return(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    barriers: &[vk::ImageMemoryBarrier<'_>],
    src_stage: vk::PipelineStageFlags,
) {
    // SAFETY: forwarded contract.
    unsafe {
        record_barriers(
            device,
            cmd,
            (src_stage, vk::PipelineStageFlags::BOTTOM_OF_PIPE),
            &[],
            barriers,
        )
    }
}

/// One pipeline barrier with `buffers` and `images` between `stages` (source, destination);
/// nothing when both are empty. What the four `record_*` functions share.
///
/// # Safety
/// `cmd` is in the recording state, on `device`, from a pool of a family that supports both
/// stages; every barrier is valid there (the `record_*` functions' contracts).
unsafe fn record_barriers(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    (src_stage, dst_stage): (vk::PipelineStageFlags, vk::PipelineStageFlags),
    buffers: &[vk::BufferMemoryBarrier<'_>],
    images: &[vk::ImageMemoryBarrier<'_>],
) {
    if buffers.is_empty() && images.is_empty() {
        return;
    }
    // SAFETY: the command buffer is recording and the barriers are valid (caller's contract).
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            src_stage,
            dst_stage,
            vk::DependencyFlags::empty(),
            &[],
            buffers,
            images,
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

    /// Appends to `out` the image acquire barriers matching the releases this device recorded
    /// for `commands`, one per image (nothing when no ownership transfer is configured). Record
    /// them with [`record_image_acquire`] on the destination family, in a submission that waits
    /// for the uploads' timeline value.
    pub fn image_acquire_barriers(
        &self,
        commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
        dst_access: vk::AccessFlags,
        out: &mut Vec<vk::ImageMemoryBarrier<'static>>,
    ) {
        if let Some(transfer) = self.ownership_transfer() {
            image_acquire_barriers_for(transfer, commands, dst_access, out);
        }
    }
}

#[cfg(test)]
mod tests;
