//! Reading images back on memkit's transfer queue: `ImageCopyQueue::submit_image_reads` for
//! [`VulkanDevice`] (what memkit-std's `Coordinator::read_back_image` submits), and
//! [`read_image`], the counterpart for images of [`crate::read_buffer`], which reads a whole
//! image and waits. For tools and tests that check what landed (the `memkit demo` verification,
//! screenshots of uploaded textures); an engine reads its own render targets on its own queues.
//!
//! Each read is recorded as follows, the reads of one submission one after another in one
//! command buffer, in order with memkit's other work and signalling the timeline like it:
//! 1. every subresource moves from the layout after upload to `TRANSFER_SRC_OPTIMAL`, after
//!    everything submitted before on the queue (`ALL_COMMANDS`, `MEMORY_WRITE`): the uploads
//!    being read;
//! 2. one `vkCmdCopyImageToBuffer` with the read's regions into the buffer. Each region starts at
//!    a multiple of the format's
//!    [`copy_offset_alignment`](memkit_core::device::ImageFormat::copy_offset_alignment), as a
//!    transfer-only queue requires ([`read_image`] reads a region per mip level, all its
//!    layers, into a host-visible buffer, and packs the levels together again on the host);
//! 3. the image goes back to the layout after upload, and the copy's writes are made available
//!    to host reads.
//!
//! Under [`crate::VulkanDeviceConfig::release_to_family`], images live in the application's
//! family between submissions: a read treats the image as an upload with `keep_contents` does.
//! It starts with the reclaim of the image the application returned
//! ([`crate::image_return_barrier`]), moves it on to `TRANSFER_SRC_OPTIMAL`, and after the copy
//! moves it back to `TRANSFER_DST_OPTIMAL` and releases it to the application's family with the
//! same release an upload ends with. The application acquires it again
//! ([`crate::image_acquire_barrier`]) before its next use. Each of those steps is a barrier call
//! of its own: two layout transitions of one subresource in one call would be unordered.

use ash::vk;
use memkit_core::device::{
    BufferUsage, DeviceError, ImageCopy, ImageCopyError, ImageDesc, ImageReadCommand, ImageUsage,
};

use crate::barrier::{OwnershipTransfer, image_reclaim_barrier, image_release_barrier};
use crate::conv::{map_image_copy, map_image_layout};
use crate::device::VulkanDevice;
use crate::host_buffer::{HostBuffer, finish_readback};
use crate::image_upload::within_family;
use crate::queue::Batch;

/// One image read into a buffer, its regions in Vulkan's form: what [`record_image_read`]
/// records.
#[derive(Clone, Copy, Debug)]
struct ImageRead<'a> {
    image: vk::Image,
    desc: &'a ImageDesc,
    dst: vk::Buffer,
    regions: &'a [vk::BufferImageCopy],
}

/// Reads every level and layer of `image` (created with `desc`) back to the host, packed as
/// uploads take texels: level 0's layers, then level 1's, and so on, each tightly packed in
/// texel blocks. One copy on memkit's transfer queue signalling `value`, a wait of at most
/// `timeout_ns`, and the texels (see the module docs for what is recorded).
///
/// Refused with nothing submitted: an invalid `desc` ([`DeviceError::InvalidImage`]); an image
/// without [`ImageUsage::TRANSFER_SRC`] ([`ImageCopyError::NotTransferSrc`]), or one that
/// uploads could not reach (depth, multisampled, no `TRANSFER_DST`: the other
/// [`DeviceError::InvalidImageCopy`] reasons); after a loss, [`DeviceError::DeviceLost`]; a
/// `value` not above the last submitted one,
/// [`InvalidArgument::TimelineNotIncreasing`](memkit_core::device::InvalidArgument::TimelineNotIncreasing).
/// [`DeviceError::Timeout`] when the copy did not finish in time. As with
/// [`crate::read_buffer`], a wait that times out or fails leaks the read-back buffer rather than
/// free it under the GPU.
///
/// # Safety
/// - `image` is alive, was created on `device` with `desc`, and stays alive until this returns;
/// - every subresource is in [`ImageDesc::layout_after_upload`]: memkit uploaded into the whole
///   image at least once (a first upload moves every subresource), and whatever used it since
///   left it there;
/// - it is usable on memkit's transfer family: created with concurrent sharing including it,
///   or exclusive and owned by it; under `release_to_family`, returned by the application
///   ([`crate::image_return_barrier`]) in a submission that completed before this call, and
///   acquired again by the application before its next use;
/// - `value` is greater than every value submitted on `device` so far, and nothing else is
///   submitted on `device` until this returns; the writes to read were submitted on memkit's
///   queue before it, or completed on the application's queues with their writes made available.
pub unsafe fn read_image(
    device: &VulkanDevice,
    image: vk::Image,
    desc: &ImageDesc,
    value: u64,
    timeout_ns: u64,
) -> Result<Vec<u8>, DeviceError> {
    desc.validate().map_err(DeviceError::InvalidImage)?;
    if !desc.usage.contains(ImageUsage::TRANSFER_SRC) {
        return Err(DeviceError::InvalidImageCopy(
            ImageCopyError::NotTransferSrc,
        ));
    }
    device.check_lost()?;
    // Whole levels, each at the next multiple of the copy offset alignment.
    let align = desc.format.copy_offset_alignment();
    let mut levels = Vec::with_capacity(desc.mip_levels as usize);
    let mut end = 0u64;
    for level in 0..desc.mip_levels {
        let region = ImageCopy::whole_level(desc, level, end.next_multiple_of(align));
        region
            .check(desc, device.image_copy_granularity)
            .map_err(DeviceError::InvalidImageCopy)?;
        // Checked above: a valid description's level fits its packed size, which fits a u64.
        let bytes = region.packed_bytes(desc.format).unwrap_or(0);
        end = region.buffer_offset + bytes;
        levels.push((region, bytes));
    }
    let regions: Vec<ImageCopy> = levels.iter().map(|(r, _)| *r).collect();
    let readback = HostBuffer::new(device, end, BufferUsage::TRANSFER_DST)?;
    let read = [ImageReadCommand {
        src: image,
        desc: *desc,
        dst: readback.buffer(),
        regions: &regions,
    }];
    let submitted = device.submit_in_order(value, |state| {
        // SAFETY: the image is alive, in the layout after upload and usable on the transfer
        // family (or returned to it, under a release); every region passed its check; the
        // buffer is alive, host-visible, `TRANSFER_DST` and holds every region; the lock is held
        // and the value rises (`submit_in_order`).
        unsafe { device.submit_whole(state, Batch::ImageReads(&read, device.release), value) }
    });
    // SAFETY: the read is the submission of `value`, the only one using the buffer, and the
    // recording makes its writes available to host reads.
    let bytes = unsafe { finish_readback(device, readback, submitted, value, timeout_ns) }?;
    let mut texels = Vec::with_capacity(desc.packed_bytes() as usize);
    for (region, len) in &levels {
        let start = region.buffer_offset as usize;
        texels.extend_from_slice(&bytes[start..start + *len as usize]);
    }
    Ok(texels)
}

/// Checks every region of `commands` as a read of its command's image
/// ([`ImageCopy::check_read`]) against `granularity`.
fn check_read_regions(
    commands: &[ImageReadCommand<'_, vk::Buffer, vk::Image>],
    granularity: [u32; 3],
) -> Result<(), ImageCopyError> {
    commands
        .iter()
        .flat_map(|c| {
            c.regions
                .iter()
                .map(move |r| r.check_read(&c.desc, granularity))
        })
        .collect()
}

impl VulkanDevice {
    /// As [`ImageCopyQueue::submit_image_reads`], on the transfer queue, in one command buffer
    /// (see the module docs for what each read records). Refused, with nothing submitted: after
    /// a loss, [`DeviceError::DeviceLost`]; a region failing its check,
    /// [`DeviceError::InvalidImageCopy`]; a value not above the last submitted one,
    /// [`InvalidArgument::TimelineNotIncreasing`](memkit_core::device::InvalidArgument::TimelineNotIncreasing).
    ///
    /// # Safety
    /// As [`ImageCopyQueue::submit_image_reads`]; under
    /// [`crate::VulkanDeviceConfig::release_to_family`], as [`read_image`] says of the image's
    /// ownership.
    pub(crate) unsafe fn submit_image_reads_checked(
        &self,
        commands: &[ImageReadCommand<'_, vk::Buffer, vk::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        check_read_regions(commands, self.image_copy_granularity)
            .map_err(DeviceError::InvalidImageCopy)?;
        self.submit_in_order(signal_value, |state| {
            // SAFETY: the caller's contract, with every region checked above; the lock is held
            // and the value rises (`submit_in_order`).
            unsafe {
                self.submit_whole(
                    state,
                    Batch::ImageReads(commands, self.release),
                    signal_value,
                )
            }
        })
    }
}

/// Records every read of `commands` into `cmd`, one after another (see [`record_image_read`]):
/// an image read twice goes back to its layout after upload in between.
///
/// # Safety
/// As [`record_image_read`], for each command and its regions.
pub(crate) unsafe fn record_image_reads(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    commands: &[ImageReadCommand<'_, vk::Buffer, vk::Image>],
    release: Option<OwnershipTransfer>,
) {
    let mut regions = Vec::new();
    for command in commands {
        regions.clear();
        regions.extend(
            command
                .regions
                .iter()
                .map(|r| map_image_copy(r, command.desc.format)),
        );
        let read = ImageRead {
            image: command.src,
            desc: &command.desc,
            dst: command.dst,
            regions: &regions,
        };
        // SAFETY: forwarded contract.
        unsafe { record_image_read(device, cmd, read, release) }
    }
}

/// Records `read` into `cmd` (see the module docs); with `release` naming two different
/// families, the image is reclaimed from `release.dst_family` first and released to it after.
/// Each barrier of [`barriers_before`] and [`barriers_after`] is a call of its own: the first
/// before the copy waits for everything before it, the first after carries the copy's writes to
/// the host, and the last after is waited for by what follows.
///
/// # Safety
/// - `cmd` is in the recording state, on `device`, from a pool of a family that supports
///   transfers (`release.src_family` when given);
/// - the image is alive, created with `TRANSFER_SRC`, every subresource in the layout after
///   upload, and usable by the family (or returned to it by the application, under a release);
/// - the buffer is alive, created with `TRANSFER_DST`, and every region lies inside it and
///   passed [`ImageCopy::check`] against the image's description and the family's granularity.
unsafe fn record_image_read(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    read: ImageRead<'_>,
    release: Option<OwnershipTransfer>,
) {
    let release = release.filter(OwnershipTransfer::is_transfer);
    let barrier = |src_stage, dst_stage, memory: &[vk::MemoryBarrier<'_>], image| {
        // SAFETY: `cmd` is recording on a family that supports transfers, where the stages and
        // accesses named here are valid; the image is alive and in each barrier's old layout
        // (caller's contract, and the barriers before it).
        unsafe {
            device.cmd_pipeline_barrier(
                cmd,
                src_stage,
                dst_stage,
                vk::DependencyFlags::empty(),
                memory,
                &[],
                &[image],
            )
        }
    };
    for (i, image) in barriers_before(read.image, read.desc, release)
        .into_iter()
        .enumerate()
    {
        let src_stage = if i == 0 {
            vk::PipelineStageFlags::ALL_COMMANDS
        } else {
            vk::PipelineStageFlags::TRANSFER
        };
        barrier(src_stage, vk::PipelineStageFlags::TRANSFER, &[], image);
    }
    // SAFETY: the image is in `TRANSFER_SRC_OPTIMAL` (barriers above) and was created with
    // `TRANSFER_SRC`; the regions passed their checks and lie inside the buffer, created with
    // `TRANSFER_DST` (caller's contract).
    unsafe {
        device.cmd_copy_image_to_buffer(
            cmd,
            read.image,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            read.dst,
            read.regions,
        )
    };
    let host = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ)];
    let after = barriers_after(read.image, read.desc, release);
    let last = after.len() - 1;
    for (i, image) in after.into_iter().enumerate() {
        let mut dst_stage = if i == last {
            vk::PipelineStageFlags::ALL_COMMANDS
        } else {
            vk::PipelineStageFlags::TRANSFER
        };
        let memory: &[vk::MemoryBarrier<'_>] = if i == 0 {
            dst_stage |= vk::PipelineStageFlags::HOST;
            &host
        } else {
            &[]
        };
        barrier(vk::PipelineStageFlags::TRANSFER, dst_stage, memory, image);
    }
}

/// The image barriers before the copy, in order: to `TRANSFER_SRC_OPTIMAL` from the layout after
/// upload, after every earlier write; under `release` (two different families), the reclaim of
/// what the application returned first, and the move on from `TRANSFER_DST_OPTIMAL`.
fn barriers_before(
    image: vk::Image,
    desc: &ImageDesc,
    release: Option<OwnershipTransfer>,
) -> Vec<vk::ImageMemoryBarrier<'static>> {
    let to_source = |old_layout| {
        within_family(
            image,
            desc.format,
            old_layout,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
        )
        .src_access_mask(vk::AccessFlags::MEMORY_WRITE)
        .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
    };
    match release {
        Some(transfer) => vec![
            image_reclaim_barrier(transfer, image, desc),
            to_source(vk::ImageLayout::TRANSFER_DST_OPTIMAL),
        ],
        None => vec![to_source(map_image_layout(desc.layout_after_upload()))],
    }
}

/// The image barriers after the copy, in order: back to the layout after upload; under
/// `release`, back to `TRANSFER_DST_OPTIMAL` and then the release an upload ends with. The copy
/// only read the image, so the transitions need no access to wait for.
fn barriers_after(
    image: vk::Image,
    desc: &ImageDesc,
    release: Option<OwnershipTransfer>,
) -> Vec<vk::ImageMemoryBarrier<'static>> {
    let from_source = |new_layout| {
        within_family(
            image,
            desc.format,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            new_layout,
        )
    };
    match release {
        Some(transfer) => vec![
            from_source(vk::ImageLayout::TRANSFER_DST_OPTIMAL),
            image_release_barrier(transfer, image, desc),
        ],
        None => vec![from_source(map_image_layout(desc.layout_after_upload()))],
    }
}

#[cfg(test)]
mod tests;
