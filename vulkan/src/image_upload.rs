//! Uploads into images on memkit's transfer queue: [`ImageCopyQueue`] for [`VulkanDevice`].
//!
//! A submission records one command buffer, submitted on the transfer queue in order with the
//! buffer copies (never split over the copy lanes) and signalling the timeline like them. Its
//! commands are cut into runs in which no image appears twice; for each run it records:
//! 1. one pipeline barrier moving every subresource (all levels, all layers, colour aspect) of
//!    each image to `TRANSFER_DST_OPTIMAL`, from `UNDEFINED` or, with `keep_contents`, from
//!    [`ImageDesc::layout_after_upload`](memkit_core::device::ImageDesc::layout_after_upload);
//! 2. one `vkCmdCopyBufferToImage` per command, with all its regions (each with its own
//!    `bufferRowLength` and `bufferImageHeight`, 0 for tightly packed texels);
//! 3. one pipeline barrier moving every subresource on to the layout after upload.
//!
//! A second command into an image of the run starts the next run, so that its transitions come
//! after the first command's copies. Stages and accesses, and why:
//! - the barriers into the transfer layout wait for `ALL_COMMANDS` and make `MEMORY_WRITE`
//!   available, then make the memory visible to `TRANSFER` writes. That covers everything
//!   submitted before on the queue: an earlier upload into the image (the layout transitions and
//!   copies of an earlier submission or run), and the application's own use of the image where
//!   it shares memkit's queue. The first of them also makes earlier copies' `TRANSFER_WRITE`s
//!   visible to `TRANSFER_READ`s, for a source buffer an earlier copy wrote;
//! - the barriers out of it wait for `TRANSFER` writes and make them available, for
//!   `ALL_COMMANDS` with no access: a transfer-only queue has no shader stage to name. The next
//!   run's or submission's first barrier chains onto them, and a consumer on any queue that
//!   waits for the timeline value (the semaphore's signal follows every command) sees the texels
//!   and the layout; that wait is the consumer's visibility operation.
//!
//! With [`crate::VulkanDeviceConfig::release_to_family`] naming another family, images are
//! exclusive and move between the families whole ([`crate::image_release_barrier`] and its
//! kin): an image's last command in the submission ends with the release to that family
//! instead of the barrier within the family (the layout transition is the same), and its first
//! command, when it keeps the contents, starts with the reclaim of what the application
//! returned. Commands in between, and a first command that discards the contents, stay within
//! memkit's family: a discarded image needs no transfer.
//!
//! Refused before anything is recorded: a region that fails
//! [`ImageCopy::check`](memkit_core::device::ImageCopy::check) against its command's description
//! and the transfer family's `minImageTransferGranularity`.

use ash::vk;
use memkit_core::device::{
    CopyCommand, DeviceError, ImageCopyCommand, ImageCopyError, ImageCopyQueue, ImageFormat,
    ImageMoveCommand, ImageReadCommand,
};

use crate::barrier::{
    OwnershipTransfer, image_reclaim_barrier, image_release_barrier, whole_image_barrier,
};
use crate::conv::{map_image_copy, map_image_layout};
use crate::device::VulkanDevice;
use crate::queue::Batch;

/// Records uploads into images, reusing its scratch space across recordings: what memkit's own
/// submissions record (see the module docs), for engines that own their submissions.
///
/// Record into a command buffer of yours with [`ImageCopyRecorder::record`], on a family that
/// supports transfers, and submit it yourself. Each image ends in
/// [`ImageDesc::layout_after_upload`](memkit_core::device::ImageDesc::layout_after_upload) with
/// the copies' writes made available (`TRANSFER` to `ALL_COMMANDS`, no access named): a later
/// use in the same queue needs its own barrier naming how it reads (from `ALL_COMMANDS`, in the
/// layout after upload), and one on another queue waits for the submission as usual.
/// Recording allocates only while the scratch space grows to the largest batch seen.
#[derive(Debug, Default)]
pub struct ImageCopyRecorder {
    regions: Vec<vk::BufferImageCopy>,
    barriers: Vec<vk::ImageMemoryBarrier<'static>>,
    /// The images of the run being cut.
    run: Vec<vk::Image>,
}

impl ImageCopyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks every region of `commands` against its command's description and `granularity`
    /// (the recording family's `minImageTransferGranularity`, `[1, 1, 1]` on a graphics or
    /// compute family; [`ImageCopy::check`](memkit_core::device::ImageCopy::check)), then
    /// records them, in order, into `cmd`, as memkit's own submissions do (see the module docs).
    /// With `release` naming two different families, each image's last command hands it to
    /// `release.dst_family`, and its first command, if it keeps the contents, takes it back.
    ///
    /// Errors: the first region that fails its check; nothing is recorded then.
    ///
    /// # Safety
    /// - `cmd` is in the recording state, on `device`, from a pool of a family that supports
    ///   transfers (`release.src_family` when given), which may use every image (concurrent
    ///   sharing including it, or exclusive and owned by it);
    /// - every buffer and image is alive and bound, and stays so until the command buffer
    ///   completed; each description is its image's; source ranges lie inside their buffers,
    ///   created with `TRANSFER_SRC`; an image with `keep_contents` is in the layout after upload
    ///   (or, under `release`, was returned by the application) and the rest of
    ///   [`ImageCopyQueue::submit_image_copies`]'s contract holds.
    pub unsafe fn record(
        &mut self,
        device: &ash::Device,
        cmd: vk::CommandBuffer,
        commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
        granularity: [u32; 3],
        release: Option<OwnershipTransfer>,
    ) -> Result<(), ImageCopyError> {
        check_regions(commands, granularity)?;
        // SAFETY: every region passed its check; the rest is the caller's contract.
        unsafe { self.record_checked(device, cmd, commands, release) };
        Ok(())
    }

    /// [`ImageCopyRecorder::record`] of regions checked already (memkit's own submissions check
    /// them before taking the submit lock).
    ///
    /// # Safety
    /// As for [`ImageCopyRecorder::record`], and every region passed
    /// [`ImageCopy::check`](memkit_core::device::ImageCopy::check) against its command's
    /// description and the recording family's granularity.
    pub(crate) unsafe fn record_checked(
        &mut self,
        device: &ash::Device,
        cmd: vk::CommandBuffer,
        commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
        release: Option<OwnershipTransfer>,
    ) {
        let sources = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ)];
        let release = release.filter(OwnershipTransfer::is_transfer);
        let mut start = 0;
        while start < commands.len() {
            let end = start + self.run_len(&commands[start..]);
            let run = &commands[start..end];
            self.barriers.clear();
            self.barriers
                .extend((start..end).map(|i| entry_barrier(commands, i, release)));
            let memory: &[vk::MemoryBarrier<'_>] = if start == 0 { &sources } else { &[] };
            // SAFETY: `cmd` is recording on a family that supports transfers, where
            // `ALL_COMMANDS` and `MEMORY_WRITE` are always valid; each image is alive, usable by
            // the family (or returned to it, for a reclaim), and in the old layout named
            // (caller's contract).
            unsafe {
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    memory,
                    &[],
                    &self.barriers,
                )
            };
            for command in run.iter().filter(|c| !c.regions.is_empty()) {
                self.regions.clear();
                self.regions.extend(
                    command
                        .regions
                        .iter()
                        .map(|r| map_image_copy(r, command.desc.format)),
                );
                // SAFETY: the image is in the transfer layout (barrier above) and was created
                // with `TRANSFER_DST`; the regions passed `ImageCopy::check` and their source
                // ranges lie inside the source buffer, created with `TRANSFER_SRC` (caller's
                // contract).
                unsafe {
                    device.cmd_copy_buffer_to_image(
                        cmd,
                        command.src,
                        command.dst,
                        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                        &self.regions,
                    )
                };
            }
            self.barriers.clear();
            self.barriers
                .extend((start..end).map(|i| exit_barrier(commands, i, release)));
            // SAFETY: as above; the layout after upload is allowed by the image's usage
            // (`layout_after_upload` picks shader-read-only only for sampled or input
            // attachment images), and a release names the family `cmd`'s pool belongs to.
            unsafe {
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::DependencyFlags::empty(),
                    &[],
                    &[],
                    &self.barriers,
                )
            };
            start = end;
        }
    }

    /// How many of `commands`, from the first, name no image twice (at least one when there is
    /// one). A linear search: batches name tens of images, rarely thousands.
    fn run_len(&mut self, commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>]) -> usize {
        self.run.clear();
        for (i, command) in commands.iter().enumerate() {
            if self.run.contains(&command.dst) {
                return i;
            }
            self.run.push(command.dst);
        }
        commands.len()
    }
}

/// The barrier before `commands[i]`'s copies: into `TRANSFER_DST_OPTIMAL` from `UNDEFINED`, or
/// with `keep_contents` from the layout after upload; under `release` (two different families),
/// the image's first command that keeps the contents reclaims it from `release.dst_family`.
fn entry_barrier(
    commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
    i: usize,
    release: Option<OwnershipTransfer>,
) -> vk::ImageMemoryBarrier<'static> {
    let c = &commands[i];
    // Scanned only under a release: without one, a batch of many images costs no search.
    let first_of_image = || !commands[..i].iter().any(|earlier| earlier.dst == c.dst);
    match release {
        Some(transfer) if c.keep_contents && first_of_image() => {
            image_reclaim_barrier(transfer, c.dst, &c.desc)
        }
        _ => {
            let old_layout = if c.keep_contents {
                map_image_layout(c.desc.layout_after_upload())
            } else {
                vk::ImageLayout::UNDEFINED
            };
            within_family(
                c.dst,
                c.desc.format,
                old_layout,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            )
            .src_access_mask(vk::AccessFlags::MEMORY_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        }
    }
}

/// The barrier after `commands[i]`'s copies: into the layout after upload; under `release` (two
/// different families), the image's last command releases it to `release.dst_family`.
fn exit_barrier(
    commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
    i: usize,
    release: Option<OwnershipTransfer>,
) -> vk::ImageMemoryBarrier<'static> {
    let c = &commands[i];
    let last_of_image = || !commands[i + 1..].iter().any(|later| later.dst == c.dst);
    match release {
        Some(transfer) if last_of_image() => image_release_barrier(transfer, c.dst, &c.desc),
        _ => within_family(
            c.dst,
            c.desc.format,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            map_image_layout(c.desc.layout_after_upload()),
        )
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::empty()),
    }
}

/// A layout transition of every subresource of `image` (of `format`), within its queue family
/// (or families).
pub(crate) fn within_family(
    image: vk::Image,
    format: ImageFormat,
    old_layout: vk::ImageLayout,
    new_layout: vk::ImageLayout,
) -> vk::ImageMemoryBarrier<'static> {
    whole_image_barrier(
        image,
        format,
        old_layout,
        new_layout,
        vk::QUEUE_FAMILY_IGNORED,
        vk::QUEUE_FAMILY_IGNORED,
    )
}

/// Checks every region of `commands` against its command's description and `granularity`.
fn check_regions(
    commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
    granularity: [u32; 3],
) -> Result<(), ImageCopyError> {
    commands
        .iter()
        .flat_map(|c| c.regions.iter().map(move |r| r.check(&c.desc, granularity)))
        .collect()
}

impl ImageCopyQueue for VulkanDevice {
    /// The transfer queue family's `minImageTransferGranularity`: `[1, 1, 1]` on a graphics or
    /// compute family, coarser (or 0s, whole levels only) on some transfer-only ones.
    fn image_copy_granularity(&self) -> [u32; 3] {
        self.image_copy_granularity
    }

    /// As [`ImageCopyQueue::submit_image_copies`], on the transfer queue (see the crate docs,
    /// "Uploading into images"). Refused, with nothing submitted: after a loss,
    /// [`DeviceError::DeviceLost`]; a region failing its check,
    /// [`DeviceError::InvalidImageCopy`]; a value not above the last submitted one,
    /// [`InvalidArgument::TimelineNotIncreasing`](memkit_core::device::InvalidArgument::TimelineNotIncreasing). An error from the driver leaves nothing in
    /// flight either.
    unsafe fn submit_image_copies(
        &self,
        commands: &[ImageCopyCommand<'_, Self::Buffer, Self::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        check_regions(commands, self.image_copy_granularity)
            .map_err(DeviceError::InvalidImageCopy)?;
        self.submit_in_order(signal_value, |state| {
            // SAFETY: the caller's contract, with every region checked above; the lock is held
            // and the value rises (`submit_in_order`).
            unsafe {
                self.submit_whole(
                    state,
                    Batch::ImageCopies(commands, self.release),
                    signal_value,
                )
            }
        })
    }

    /// As [`ImageCopyQueue::submit_image_reads`], on the transfer queue (see
    /// [`crate::read_image`] for what a read records). Refused, with nothing submitted: after a
    /// loss, [`DeviceError::DeviceLost`]; a region failing [`ImageCopy::check_read`],
    /// [`DeviceError::InvalidImageCopy`]; a value not above the last submitted one,
    /// [`InvalidArgument::TimelineNotIncreasing`](memkit_core::device::InvalidArgument::TimelineNotIncreasing).
    /// An error from the driver leaves nothing in flight either.
    ///
    /// [`ImageCopy::check_read`]: memkit_core::device::ImageCopy::check_read
    unsafe fn submit_image_reads(
        &self,
        commands: &[ImageReadCommand<'_, Self::Buffer, Self::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded contract.
        unsafe { self.submit_image_reads_checked(commands, signal_value) }
    }

    /// As [`ImageCopyQueue::submit_moves`], on the transfer queue, in one command buffer (see
    /// the `image_move` module for what it records). Refused, with nothing submitted: after a
    /// loss, [`DeviceError::DeviceLost`]; a move failing
    /// [`ImageDesc::check_move`](memkit_core::device::ImageDesc::check_move),
    /// [`DeviceError::InvalidImageCopy`]; a value not above the last submitted one. An error
    /// from the driver leaves nothing in flight either.
    unsafe fn submit_moves(
        &self,
        buffers: &[CopyCommand<'_, Self::Buffer>],
        images: &[ImageMoveCommand<Self::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded contract.
        unsafe { self.submit_moves_checked(buffers, images, signal_value) }
    }
}

#[cfg(test)]
mod tests;
