//! Read-backs of images into buffers (`ImageCopyQueue::submit_image_reads`): the simulator copies
//! texels out of its own tiling (see [`crate::image_upload`]'s module docs) into the destination
//! buffer's bytes when the read's value executes, and watches reads as it watches uploads.
//!
//! A read needs the image in its layout after upload: one that executes while no upload into the
//! image executed before it, and the application did not write it
//! ([`DummyDevice::application_writes_image`]), is recorded as [`Misuse::ReadOfUndefinedImage`]
//! and runs anyway (a GPU would read garbage; the simulator reads whatever the image's bytes
//! hold).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use memkit_core::device::{BufferUsage, DeviceError, ImageCopy, ImageDesc, ImageReadCommand};

use crate::calls::fits;
use crate::device::{DummyDevice, Pending, Snapshot, State};
use crate::handles::{DummyBuffer, DummyImage};
use crate::image_upload::{ImageTransfer, source_runs};
use crate::intervals::IntervalSet;
use crate::misuse::{Misuse, Operation};

/// One read-back, resolved at submit.
#[derive(Debug)]
pub(crate) struct PendingImageRead {
    /// Source image (resource) index.
    pub(crate) src: u64,
    /// The source's handle, for the misuse it may record.
    pub(crate) image: DummyBuffer,
    /// Destination buffer index.
    pub(crate) dst: u64,
    pub(crate) desc: ImageDesc,
    /// The regions that can execute (inside the destination buffer).
    pub(crate) regions: Vec<ImageCopy>,
}

impl DummyDevice {
    /// Submits read-backs of images (`ImageCopyQueue::submit_image_reads`). They execute,
    /// copying the image's texels into the destination buffer at each region's buffer offset,
    /// row length and image height, when the test advances the timeline to `signal_value`, like
    /// [`submit_image_copies`](Self::submit_image_copies), which they share their call count,
    /// faults and timeline checks with.
    ///
    /// Refused with a typed error before anything is counted or submitted: a lost device
    /// ([`DeviceError::DeviceLost`]), then any region failing
    /// [`ImageCopy::check_read`] against its command's `desc` and
    /// [`image_copy_granularity`](Self::image_copy_granularity)
    /// ([`DeviceError::InvalidImageCopy`]). Then, as for buffer copies: injected faults, and a
    /// `signal_value` that does not rise (a misuse too).
    ///
    /// Contract breaches are recorded as [`Misuse`] and the call goes on: a destroyed or foreign
    /// image or destination, or one not bound or whose memory was freed (the command is
    /// dropped); a destination that is not a linear buffer, or lacks `TRANSFER_DST`; a `desc`
    /// other than the image's ([`Misuse::ImageDescMismatch`], command dropped); a destination
    /// range past the end of the buffer ([`Misuse::CopyOutOfBounds`], region dropped);
    /// destination ranges that overlap ([`Misuse::CopyOverlappingDestinations`]). Host-visible
    /// destination ranges are hashed, to catch host writes into them before execution. As it
    /// executes: an image still undefined ([`Misuse::ReadOfUndefinedImage`]).
    pub fn submit_image_reads(
        &self,
        commands: &[ImageReadCommand<'_, DummyBuffer, DummyImage>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let granularity = self.image_copy_granularity();
        self.submit_image_commands(
            commands,
            signal_value,
            |command| {
                command
                    .regions
                    .iter()
                    .try_for_each(|r| r.check_read(&command.desc, granularity))
            },
            |device, state, command, check, pending| {
                if let Some(queued) = device.queue_read(state, command, check, pending) {
                    pending.image_reads.push(queued);
                }
            },
        )
    }

    /// Resolves one read-back, recording what breaks its contract; `None` when it cannot run.
    fn queue_read(
        &self,
        state: &mut State,
        command: &ImageReadCommand<'_, DummyBuffer, DummyImage>,
        check: bool,
        pending: &mut Pending,
    ) -> Option<PendingImageRead> {
        let serial = self.shared.serial;
        let image = command.src.resource;
        let src = state.live_buffer(serial, image, Operation::Submit);
        let dst = state.live_buffer(serial, command.dst, Operation::Submit);
        let (src, dst) = (src?, dst?);
        let src_binding = self.image_binding(state, src, image, &command.desc)?;
        let dst_binding = self.copy_binding(state, dst, command.dst, BufferUsage::TRANSFER_DST)?;
        let dst_size = state.buffers[&dst].size;
        let mut regions = Vec::with_capacity(command.regions.len());
        let mut runs = Vec::new();
        for region in command.regions {
            // `check_read` passed, so the span fits in a u64.
            let size = region.buffer_bytes(command.desc.format).unwrap_or(u64::MAX);
            if !fits(region.buffer_offset, size, dst_size) {
                state.misuse(Misuse::CopyOutOfBounds {
                    buffer: command.dst,
                    offset: region.buffer_offset,
                    size,
                });
                continue;
            }
            runs.extend(source_runs(&command.desc, region));
            regions.push(*region);
        }
        let mut sorted = runs.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[1].0 < w[0].0 + w[0].1) {
            state.misuse(Misuse::CopyOverlappingDestinations { dst: command.dst });
        }
        let dst_memory = &state.memory[&dst_binding.0];
        if check && dst_memory.host.is_some() {
            for (offset, size) in runs {
                let at = dst_binding.1 + offset;
                pending.snapshots.push(Snapshot {
                    memory: dst_binding.0,
                    offset: at,
                    size,
                    source: false,
                    device_hash: 0,
                    host_hash: dst_memory.host_hash(at, size),
                });
            }
        }
        pending.memory.extend([src_binding.0, dst_binding.0]);
        Some(PendingImageRead {
            src,
            image,
            dst,
            desc: command.desc,
            regions,
        })
    }
}

impl State {
    /// Executes one read-back: copies each region's texels from the image into the buffer. An
    /// image destroyed or memory freed since submit (recorded then) is skipped, as for buffer
    /// copies.
    pub(crate) fn execute_image_read(
        &mut self,
        read: &PendingImageRead,
        written: &mut BTreeMap<u64, IntervalSet>,
        buf: &mut Vec<u8>,
        stale_fill: Option<u8>,
    ) {
        let Some((src, dst)) = self.live_bindings(read.src, read.dst) else {
            return;
        };
        self.counters.copies += 1;
        if !self.image_defined(read.src) {
            self.misuse(Misuse::ReadOfUndefinedImage { image: read.image });
        }
        let written = written.entry(dst.0).or_default();
        let copy = ImageTransfer {
            buffer: dst,
            image: src,
            to_image: false,
        };
        self.copy_image_regions(&read.desc, &read.regions, copy, written, buf, stale_fill);
        self.resource_accessed(read.src);
    }
}
