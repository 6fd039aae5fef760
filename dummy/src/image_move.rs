//! Defragmentation's submissions (`ImageCopyQueue::submit_moves`): buffer copies and image moves
//! in one submission. In the simulator's tiling an image's bytes are one packed run from its
//! binding offset (see [`crate::image_upload`]), so a move copies that run whole, and the
//! destination takes the layout after upload.
//!
//! A move reads an image that must hold defined texels, and writes one that must be new: one
//! that executes while its source is undefined is recorded as [`Misuse::ReadOfUndefinedImage`],
//! one into an image that already held contents as [`Misuse::MoveIntoUsedImage`]; both run
//! anyway.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use memkit_core::device::{CopyCommand, DeviceError, ImageDesc, ImageMoveCommand};

use crate::device::{DummyDevice, Pending, Snapshot, State};
use crate::handles::{DummyBuffer, DummyImage};
use crate::image_upload::copy_device_bytes;
use crate::intervals::IntervalSet;
use crate::misuse::{Misuse, Operation};

/// One image move, resolved at submit.
#[derive(Debug)]
pub(crate) struct PendingImageMove {
    /// Source image (resource) index.
    pub(crate) src: u64,
    /// Destination image (resource) index.
    pub(crate) dst: u64,
    /// The handles, for the misuses they may record.
    pub(crate) src_image: DummyBuffer,
    pub(crate) dst_image: DummyBuffer,
    pub(crate) desc: ImageDesc,
}

impl DummyDevice {
    /// Submits a defragmentation pass's copies (`ImageCopyQueue::submit_moves`) as one
    /// submission: the buffer copies, checked and executed as
    /// [`submit_copies`](Self::submit_copies) does, then each image move, which copies every
    /// level and layer of its source into its destination when the timeline reaches
    /// `signal_value` and leaves the destination in its layout after upload.
    ///
    /// Refused with a typed error before anything is counted or submitted: a lost device
    /// ([`DeviceError::DeviceLost`]), then a move whose description fails
    /// [`ImageDesc::check_move`] ([`DeviceError::InvalidImageCopy`]). Then, as for buffer
    /// copies: injected faults, and a `signal_value` that does not rise (a misuse too).
    ///
    /// Contract breaches are recorded as [`Misuse`] and the call goes on: a destroyed or foreign
    /// image, or one not bound or whose memory was freed (the move is dropped); a `desc` other
    /// than either image's ([`Misuse::ImageDescMismatch`], dropped). As it executes: a source
    /// still undefined ([`Misuse::ReadOfUndefinedImage`]), a destination that held contents
    /// ([`Misuse::MoveIntoUsedImage`]), either used by the application's own work
    /// ([`Misuse::CopyWhileApplicationUses`]).
    pub fn submit_moves(
        &self,
        buffers: &[CopyCommand<'_, DummyBuffer>],
        images: &[ImageMoveCommand<DummyImage>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        images
            .iter()
            .try_for_each(|m| m.desc.check_move())
            .map_err(DeviceError::InvalidImageCopy)?;
        let check = self.begin_submission(&mut state, signal_value)?;
        let mut pending = Pending::new(signal_value);
        self.queue_copies(&mut state, buffers, check, &mut pending);
        for command in images {
            if let Some(queued) = self.queue_move(&mut state, command, check, &mut pending) {
                pending.image_moves.push(queued);
            }
        }
        self.end_submission(&mut state, pending);
        Ok(())
    }

    /// Resolves one image move, recording what breaks its contract; `None` when it cannot run.
    fn queue_move(
        &self,
        state: &mut State,
        command: &ImageMoveCommand<DummyImage>,
        check: bool,
        pending: &mut Pending,
    ) -> Option<PendingImageMove> {
        let serial = self.shared.serial;
        let (src_image, dst_image) = (command.src.resource, command.dst.resource);
        let src = state.live_buffer(serial, src_image, Operation::Submit);
        let dst = state.live_buffer(serial, dst_image, Operation::Submit);
        let (src, dst) = (src?, dst?);
        let src_binding = self.image_binding(state, src, src_image, &command.desc);
        let dst_binding = self.image_binding(state, dst, dst_image, &command.desc);
        let (src_binding, dst_binding) = (src_binding?, dst_binding?);
        let dst_memory = &state.memory[&dst_binding.0];
        if check && dst_memory.host.is_some() {
            let size = command.desc.packed_bytes();
            pending.snapshots.push(Snapshot {
                memory: dst_binding.0,
                offset: dst_binding.1,
                size,
                source: false,
                device_hash: 0,
                host_hash: dst_memory.host_hash(dst_binding.1, size),
            });
        }
        pending.memory.extend([src_binding.0, dst_binding.0]);
        Some(PendingImageMove {
            src,
            dst,
            src_image,
            dst_image,
            desc: command.desc,
        })
    }
}

impl State {
    /// Executes one image move: copies the source's packed bytes into the destination and
    /// leaves the destination in its layout after upload. An image destroyed or memory freed
    /// since submit (recorded then) is skipped, as for buffer copies.
    pub(crate) fn execute_image_move(
        &mut self,
        command: &PendingImageMove,
        written: &mut BTreeMap<u64, IntervalSet>,
        buf: &mut Vec<u8>,
        stale_fill: Option<u8>,
    ) {
        let Some((src, dst)) = self.live_bindings(command.src, command.dst) else {
            return;
        };
        self.counters.copies += 1;
        if !self.image_defined(command.src) {
            self.misuse(Misuse::ReadOfUndefinedImage {
                image: command.src_image,
            });
        }
        if self.image_defined(command.dst) {
            self.misuse(Misuse::MoveIntoUsedImage {
                image: command.dst_image,
            });
        }
        let size = command.desc.packed_bytes();
        copy_device_bytes(&mut self.memory, src, dst, size, buf, stale_fill);
        written
            .entry(dst.0)
            .or_default()
            .insert(dst.1, dst.1 + size);
        self.counters.regions += u64::from(command.desc.mip_levels);
        self.counters.bytes_copied += size;
        self.image_written(command.dst);
        self.resource_accessed(command.src);
    }
}
