//! Images: created in pool memory, uploaded into through the staging ring, and destroyed once
//! their uploads completed.
//!
//! An upload into an image is cut into groups of at most one ring upload's bytes
//! (`image_pieces`), each region's texels at an offset the copy rules allow, so the caller's
//! bytes need no alignment. Each group is written into a ring grant, then, under the
//! submitter's lock, whatever buffer uploads are staged are submitted first and the group's
//! copies follow with the next timeline value: the GPU copies one group while the producer
//! writes the next. The ring's memory is mapped once and stays written to, so an upload pays
//! for its copy into it and nothing else.
//!
//! The image's copies bypass the buffer scheduler (they need the queue's layout transitions,
//! which it knows nothing of). Their grants have no record in the pending table, and are
//! committed under the submitter's lock: a drain that comes later passes over them, and the
//! value it tags them with is the image submission's or a later one (see
//! `submit_ring_image_copies`). Uploads the ring cannot take (a row larger than a ring upload,
//! or a large one under `BackPressure::DedicatedStaging`) go through a staging buffer of their
//! own, destroyed when its value completes, like a dedicated buffer upload's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memkit_core::device::{
    DedicatedHint, DedicatedTo, ImageCopy, ImageCopyCommand, ImageCopyQueue, ImageDesc,
    ImageDevice, ImageFormat,
};
use memkit_core::scheduler::{BufferKey, LargeUploadPolicy};
use memkit_core::{AllocationRequest, DeviceAllocation, MemoryUsage, ResourceKind, WriteGrant};

use super::image_pieces::{StagingGroup, for_each_packed_run, staging_groups};
use super::{Coordinator, RING_GRANTS, Recorded, Shared, Submitter};
use crate::buffer::{BufferState, COUNTER};
use crate::config::BackPressure;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::image::{Image, ImageState};
use crate::ticket::Ticket;

/// Destroys an image on a device that has them: stored in each [`ImageState`].
///
/// # Safety
/// As `ImageDevice::destroy_image`.
pub(super) unsafe fn destroy_image<D: Device + ImageDevice>(device: &D, image: D::Image) {
    // SAFETY: forwarded contract.
    unsafe { device.destroy_image(image) }
}

impl<D: Device + ImageDevice> Coordinator<D> {
    /// Creates an optimal-tiling image for `desc` in memory chosen for `usage` (usually
    /// [`MemoryUsage::FAST_DEVICE_ACCESS`]; [`MemoryUsage::TRANSIENT`] for attachments whose
    /// contents never leave a render pass), in a memory object of its own when the driver asks
    /// for one. Its layout is undefined until its first upload or the application's own work.
    ///
    /// Errors: [`Error::Device`] with [`memkit_core::device::DeviceError::InvalidImage`] for a
    /// description the device refuses, [`Error::Memory`] when no memory type fits or the heaps
    /// are full, [`Error::DeviceLost`].
    pub fn create_image(&self, desc: &ImageDesc, usage: MemoryUsage) -> Result<Image<D>> {
        self.shared.create_image(desc, usage)
    }

    /// Whether the device would create an image for `desc`, asked without creating one: `Ok`,
    /// or the error [`create_image`](Self::create_image) would give for the description
    /// ([`Error::Device`] with [`memkit_core::device::DeviceError::InvalidImage`],
    /// [`Error::DeviceLost`]). Whether memory is left for it is not foreseen.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageFormat, ImageUsage};
    /// use memkit_dummy::{DeviceConfig, DummyDevice};
    /// use memkit_std::{Coordinator, CoordinatorConfig};
    ///
    /// // A phone: ETC2 and ASTC, no BC.
    /// let gpu = DummyDevice::new(DeviceConfig::mobile()).unwrap();
    /// let coordinator = Coordinator::new(gpu, CoordinatorConfig::default()).unwrap();
    /// // The first texture format of the engine's list that the device samples.
    /// let formats = [ImageFormat::Bc7Srgb, ImageFormat::Etc2Rgba8Srgb, ImageFormat::Rgba8Srgb];
    /// let chosen = formats.into_iter().find(|&format| {
    ///     let desc = ImageDesc::new_2d(format, 1024, 1024, ImageUsage::SAMPLED);
    ///     coordinator.check_image_support(&desc).is_ok()
    /// });
    /// assert_eq!(chosen, Some(ImageFormat::Etc2Rgba8Srgb));
    /// ```
    pub fn check_image_support(&self, desc: &ImageDesc) -> Result<()> {
        Ok(self.shared.device.check_image_support(desc)?)
    }
}

impl<D: Device + ImageCopyQueue> Coordinator<D> {
    /// Creates an image that uploads can fill ([`ImageUsage::TRANSFER_DST`] is added to `desc`'s
    /// usage) and uploads `texels` into every level of every layer: level 0's layers one after
    /// another, then level 1's, each tightly packed (`desc.packed_bytes()` bytes in all, the
    /// layout of [`ImageCopy::whole_level`] regions laid end to end).
    ///
    /// Errors: as [`Coordinator::create_image`] and [`Coordinator::upload_image`];
    /// [`Error::OutOfBounds`] when `texels` is not exactly `desc.packed_bytes()` long.
    ///
    /// [`ImageUsage::TRANSFER_DST`]: memkit_core::device::ImageUsage::TRANSFER_DST
    pub fn create_image_with_data(
        &self,
        desc: &ImageDesc,
        usage: MemoryUsage,
        texels: &[u8],
    ) -> Result<(Image<D>, Ticket)> {
        let mut desc = *desc;
        desc.usage |= memkit_core::device::ImageUsage::TRANSFER_DST;
        if texels.len() as u64 != desc.packed_bytes() {
            return Err(Error::OutOfBounds {
                offset: 0,
                size: desc.packed_bytes(),
                buffer_size: texels.len() as u64,
            });
        }
        let mut regions = Vec::with_capacity(desc.mip_levels as usize);
        let mut offset = 0;
        for level in 0..desc.mip_levels {
            let region = ImageCopy::whole_level(&desc, level, offset);
            // Cannot overflow: the sum is `desc.packed_bytes()`, which fitted above.
            offset += region.packed_bytes(desc.format).unwrap_or(0);
            regions.push(region);
        }
        let image = self.create_image(&desc, usage)?;
        let ticket = self.upload_image(&image, &regions, texels)?;
        Ok((image, ticket))
    }

    /// Uploads texels into `image`: each region's box is read from `texels` at its
    /// `buffer_offset` (any offset: the bytes are copied into staging memory at offsets the copy
    /// rules allow), tightly packed or at the row length and image height the region names
    /// ([`ImageCopy::with_buffer_layout`]: rows with padding, or a box cut out of a larger
    /// picture, are read where they are and staged packed, so staging holds only the texels). The first upload into an image discards what it held, levels and
    /// layers the regions miss included; later ones keep what the regions do not cover. Once
    /// the ticket completed the texels are in place and the image is in
    /// [`Image::layout_after_upload`]; work on another queue waits for the ticket's
    /// [`value`](Ticket::value) on the coordinator's timeline semaphore before it uses them.
    ///
    /// The texels go through the staging ring, as buffer uploads do: an upload larger than
    /// [`CoordinatorConfig::max_ring_upload`](crate::CoordinatorConfig::max_ring_upload) is cut
    /// into whole layers, depth slices or bands of rows (on the queue's transfer granularity),
    /// each submitted as soon as it is written, so the GPU copies while the caller's thread
    /// writes the rest, and the staging memory never grows past the ring. An upload the ring
    /// cannot take (one row larger than a ring upload, a level too large on a queue that copies
    /// whole levels only, or a large one under
    /// [`BackPressure::DedicatedStaging`](crate::BackPressure::DedicatedStaging)) goes through a
    /// staging buffer of its own. A full ring is met as the configured back pressure says, for
    /// the first piece; later pieces wait for room.
    ///
    /// The application keeps its own GPU work off the image while the upload runs: work it
    /// submitted before that uses the image must have completed (wait for its fence before
    /// re-uploading), as for buffers it still reads.
    ///
    /// Buffer uploads staged before the call are submitted before the image's copies.
    ///
    /// Errors: [`Error::ZeroSize`] for no regions, [`Error::ForeignImage`],
    /// [`Error::OutOfBounds`] when a region's texels ([`ImageCopy::buffer_bytes`] from its
    /// offset) reach past `texels`,
    /// [`Error::ImageCopy`] for a region that breaks a copy rule (see
    /// [`ImageCopy::check`]; the queue's granularity is the device's), [`Error::OverlappingImageRegions`],
    /// [`Error::StagingFull`] when the ring is full under [`BackPressure::Fail`](crate::BackPressure::Fail),
    /// [`Error::Memory`] when a staging buffer of its own cannot be allocated,
    /// [`Error::DeviceLost`], [`Error::Device`] when the device refuses a submission. Nothing of
    /// the upload was submitted when its first piece fails; an upload cut into pieces that fails
    /// later has landed in part (the pieces before), and the image holds the rest as before.
    pub fn upload_image(
        &self,
        image: &Image<D>,
        regions: &[ImageCopy],
        texels: &[u8],
    ) -> Result<Ticket> {
        self.shared.upload_image(image, regions, texels)
    }
}

impl<D: Device + ImageDevice> Shared<D> {
    fn create_image(self: &Arc<Self>, desc: &ImageDesc, usage: MemoryUsage) -> Result<Image<D>> {
        self.with_room(|| self.try_create_image(desc, usage))
    }

    /// [`Shared::create_image`], once.
    fn try_create_image(
        self: &Arc<Self>,
        desc: &ImageDesc,
        usage: MemoryUsage,
    ) -> Result<Image<D>> {
        self.check_live()?;
        let device = &self.device;
        let (raw, requirements) = device.create_image(desc)?;
        let request = AllocationRequest::new(requirements, usage).with_kind(ResourceKind::Optimal);
        let allocation = {
            let mut pools = self.lock_pools();
            match pools.as_mut() {
                None => Err(Error::DeviceLost),
                Some(pools) => {
                    let dedicated =
                        request.dedicated || requirements.dedicated != DedicatedHint::None;
                    if dedicated {
                        let request = request.with_dedicated();
                        // SAFETY: `raw` was made by this device, is alive and not bound yet.
                        unsafe { pools.allocate_dedicated_to(&request, DedicatedTo::Image(raw)) }
                    } else {
                        pools.allocate(&request)
                    }
                    .map_err(Error::from)
                    .and_then(|allocation| {
                        // SAFETY: the image is alive and unbound; the pools placed the range at
                        // its required alignment, apart from linear resources by the
                        // granularity, inside a memory object of an allowed type (dedicated to
                        // it when the driver asked).
                        let bound = unsafe {
                            device.bind_image_memory(raw, allocation.memory(), allocation.offset())
                        };
                        match bound {
                            Ok(()) => Ok(allocation),
                            Err(e) => {
                                // SAFETY: never used by the GPU; nothing is bound to it.
                                let _ = unsafe { pools.free(allocation) };
                                Err(e.into())
                            }
                        }
                    })
                }
            }
        };
        let allocation = match allocation {
            Ok(a) => a.into_raw(),
            Err(e) => {
                // SAFETY: created above, never bound, never used by the GPU.
                unsafe { device.destroy_image(raw) };
                return Err(e);
            }
        };
        let state = Arc::new(ImageState {
            key: BufferKey(self.next_key.fetch_add(1, Ordering::Relaxed)),
            raw,
            desc: *desc,
            allocation,
            alignment: requirements.alignment,
            last_use: AtomicU64::new(0),
            written: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            destroy_raw: destroy_image::<D>,
            aliasing: None,
        });
        self.live_images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(state.key, Arc::downgrade(&state));
        self.counters.images_created.fetch_add(1, COUNTER);
        Ok(Image {
            state,
            shared: Arc::clone(self),
        })
    }
}

impl<D: Device + ImageCopyQueue> Shared<D> {
    fn upload_image(
        self: &Arc<Self>,
        image: &Image<D>,
        regions: &[ImageCopy],
        texels: &[u8],
    ) -> Result<Ticket> {
        self.check_image_call(image, regions)?;
        let state = &image.state;
        let desc = state.desc;
        let granularity = self.device.image_copy_granularity();
        let mut texel_bytes = 0u64;
        for region in regions {
            // Every rule but the offset's, which is the staging memory's, not the caller's.
            let at_zero = ImageCopy {
                buffer_offset: 0,
                ..*region
            };
            at_zero
                .check(&desc, granularity)
                .map_err(Error::ImageCopy)?;
            check_source(region, desc.format, texels)?;
            // No overflow: each region's texels lie inside `texels`.
            texel_bytes += region.packed_bytes(desc.format).unwrap_or(0);
        }
        if let Some((a, b)) = first_overlap(regions) {
            log::debug!("memkit: image upload regions {a} and {b} overlap");
            return Err(Error::OverlappingImageRegions);
        }
        // Staged blocks sit on the copy's alignment (ring grants start on a multiple of 16).
        let unit = desc.format.copy_offset_alignment();
        let groups = staging_groups(
            regions,
            desc.format,
            granularity,
            self.route.max_ring_upload(),
            unit,
        );
        let ticket = match groups {
            Some(groups)
                if groups.len() == 1 || self.route.large_uploads() == LargeUploadPolicy::Chunks =>
            {
                self.upload_image_through_ring(state, &groups, texels)?
            }
            // Too large for the ring under `BackPressure::DedicatedStaging`, as for buffers, or
            // a row (or a grid cell) larger than a ring upload.
            _ => self.upload_image_dedicated(state, regions, texels)?,
        };
        self.counters.image_uploads.fetch_add(1, COUNTER);
        self.counters
            .image_bytes_uploaded
            .fetch_add(texel_bytes, COUNTER);
        Ok(ticket)
    }

    /// Stages each group in a ring grant and submits its copies as soon as it is written, so
    /// the GPU copies one group while the next is written. The first group follows the
    /// configured back pressure; later ones wait for room (the upload is under way), and go
    /// through staging memory of their own when room that grants hold never comes, as a buffer
    /// upload's later chunks do.
    fn upload_image_through_ring(
        self: &Arc<Self>,
        state: &ImageState<D>,
        groups: &[StagingGroup],
        texels: &[u8],
    ) -> Result<Ticket> {
        let mut value = 0;
        for (i, group) in groups.iter().enumerate() {
            let policy = if i == 0 {
                self.config.back_pressure
            } else {
                BackPressure::WaitForGpu
            };
            let granted = self.grant(group.bytes as usize, policy, self.config.held_room_timeout);
            let mut grant = match granted {
                Ok(grant) => grant,
                Err(Error::StagingFull { wait_for })
                    if (i == 0 && policy == BackPressure::DedicatedStaging)
                        || (i > 0 && wait_for.is_none()) =>
                {
                    let rest: Vec<ImageCopy> = groups[i..]
                        .iter()
                        .flat_map(|g| &g.pieces)
                        .map(|piece| piece.source)
                        .collect();
                    return self.upload_image_dedicated(state, &rest, texels);
                }
                Err(e) => return Err(e),
            };
            let bytes = grant.bytes_mut();
            for piece in &group.pieces {
                // Checked by `upload_image`: the piece lies inside its region's texels, and the
                // group inside the grant.
                let base = piece.staged_at as usize;
                for_each_packed_run(&piece.source, state.desc.format, texels, |at, run| {
                    bytes[base + at..base + at + run.len()].copy_from_slice(run);
                });
            }
            value = self.submit_ring_image_copies(grant, state, group)?;
        }
        Ok(self.ticket_for_value(value))
    }

    /// Commits a written grant and submits its group's copies with the next timeline value,
    /// which it returns; buffer uploads staged before it, and a refused value, are submitted
    /// first.
    ///
    /// The grant is committed under the submitter's lock and has no record in the pending
    /// table: no other thread can drain it before its copies are submitted, and whoever drains
    /// it later (the call below, or any flush) passes over it and tags it with a value at or
    /// above this one, so its room comes back only after its copies completed.
    fn submit_ring_image_copies(
        &self,
        grant: WriteGrant<'_, 'static, RING_GRANTS>,
        state: &ImageState<D>,
        group: &StagingGroup,
    ) -> Result<u64> {
        let start = grant.offset() as u64;
        let regions: Vec<ImageCopy> = group
            .pieces
            .iter()
            .map(|piece| piece.staged(start))
            .collect();
        let mut sub = self.lock_submitter();
        // On an error the grant is dropped uncommitted: the ring takes its room back.
        self.flush_locked(&mut sub)?;
        grant
            .commit(group.bytes as usize)
            .expect("the committed length is the grant's own");
        if !self.staging.coherent {
            let pools = self.lock_pools();
            let pools = pools.as_ref().ok_or(Error::DeviceLost)?;
            let allocation = DeviceAllocation::from_raw(self.staging.allocation);
            let flushed = pools.flush(&allocation, start, group.bytes);
            // Borrowed to name the range: the ring's memory lives as long as the coordinator.
            let _ = allocation.into_raw();
            flushed.map_err(|e| self.device_error(super::flush_error(e)))?;
        }
        let value = self.submit_image_command(&mut sub, state, self.staging.raw, &regions)?;
        // Drain the range now (with whatever else is staged) so its room is tagged, and comes
        // back, without waiting for the next flush. The image's copies are in: an error here
        // belongs to the buffer uploads submitted with them, and their own flush reports it.
        if let Err(e) = self.flush_locked(&mut sub) {
            log::debug!("memkit: flush after an image upload failed: {e}");
        }
        Ok(value)
    }

    /// Uploads through a staging buffer of its own: for uploads the ring cannot take.
    fn upload_image_dedicated(
        self: &Arc<Self>,
        state: &ImageState<D>,
        regions: &[ImageCopy],
        texels: &[u8],
    ) -> Result<Ticket> {
        let desc = state.desc;
        // Where each region's blocks go in the staging buffer: offsets on the copy's alignment.
        let unit = desc.format.copy_offset_alignment();
        let mut staged = Vec::with_capacity(regions.len());
        let mut end = 0u64;
        for region in regions {
            // Checked by `upload_image`.
            let size = region.packed_bytes(desc.format).unwrap_or(0);
            let at = end.next_multiple_of(unit);
            staged.push(ImageCopy {
                buffer_offset: at,
                ..region.tightly_packed()
            });
            end = at + size;
        }
        let staging = self.create_state(end, MemoryUsage::UPLOAD, true)?;
        if let Err(e) = self.fill_staging(&staging, &desc, regions, &staged, texels) {
            // Never submitted: no GPU work names it.
            self.destroy(&staging);
            return Err(e);
        }
        // Buffer uploads staged before this one go first, and a refused value is signalled first.
        let submitted = self.submitter_for_image(state).and_then(|mut sub| {
            let value = self.submit_image_command(&mut sub, state, staging.raw, &staged)?;
            Ok((sub, value))
        });
        match submitted {
            Ok((mut sub, value)) => {
                sub.in_flight.push_back(super::InFlight {
                    value,
                    staging: vec![staging],
                });
                drop(sub);
                Ok(self.ticket_for_value(value))
            }
            Err(e) => {
                // Not submitted: no GPU work names it.
                self.destroy(&staging);
                Err(e)
            }
        }
    }

    /// Copies each region's texels from `texels` (at the region's pitches) to its tightly packed
    /// place in the staging buffer, and flushes them when the memory is not coherent.
    fn fill_staging(
        &self,
        staging: &BufferState<D>,
        desc: &ImageDesc,
        regions: &[ImageCopy],
        staged: &[ImageCopy],
        texels: &[u8],
    ) -> Result<()> {
        for (from, to) in regions.iter().zip(staged) {
            // Checked by the caller too; `for_each_packed_run` slices `texels` by it.
            check_source(from, desc.format, texels)?;
            let target = staging
                .host_at(to.buffer_offset)
                .ok_or(Error::NotHostVisible)?;
            for_each_packed_run(from, desc.format, texels, |at, run| {
                // SAFETY: the packed box `[to.buffer_offset, + packed bytes)`, which holds
                // `[at, + run.len())`, lies inside the staging buffer (it was sized to the last
                // region's end), whose memory is mapped while it lives; no GPU work names it yet
                // and no other thread has it; `run` is a Rust slice, not the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(run.as_ptr(), target.as_ptr().add(at), run.len());
                }
            });
        }
        if staging.coherent {
            return Ok(());
        }
        let pools = self.lock_pools();
        let pools = pools.as_ref().ok_or(Error::DeviceLost)?;
        let allocation = DeviceAllocation::from_raw(staging.allocation);
        let flushed = pools.flush(&allocation, 0, staging.size);
        // Borrowed to name the range: freed with the staging buffer.
        let _ = allocation.into_raw();
        flushed.map_err(|e| self.device_error(super::flush_error(e)))
    }

    /// Submits one copy command from `src` into the image with the next timeline value, which it
    /// returns; the caller submitted everything staged before (`flush_locked`). On an error
    /// nothing of it is in flight.
    fn submit_image_command(
        &self,
        sub: &mut Submitter<D>,
        state: &ImageState<D>,
        src: D::Buffer,
        regions: &[ImageCopy],
    ) -> Result<u64> {
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => return Err(Error::DeviceLost),
        };
        let command = ImageCopyCommand {
            src,
            dst: state.raw,
            desc: state.desc,
            keep_contents: state.written.load(Ordering::Acquire),
            regions,
        };
        // SAFETY: the source and the image are alive and bound, and stay so until the value
        // completes (a dedicated staging buffer goes on the in-flight list, the ring's room comes
        // back only once a value at or above this one completed, and a dropped image is
        // destroyed only once its `last_use` completed); `desc` is the image's; each region was
        // checked against it and the queue's granularity (pieces of a region are cut on that
        // grid), lies inside the source (sized, or granted, to hold them all) and no two
        // overlap; the texels were written and flushed; the image
        // keeps its contents only after an earlier upload (`written`) left it in its layout
        // after upload, or the application's work did (`Image::mark_written`'s contract; the
        // application's contract for its own work on it, too); the tracker hands
        // out increasing values, submitted under the submitter's lock.
        let submitted = unsafe { self.device.submit_image_copies(&[command], value) };
        if let Err(e) = submitted {
            return Err(self.refused(sub, value, e));
        }
        state.last_use.store(value, COUNTER);
        state.written.store(true, Ordering::Release);
        state.undefine_aliases();
        self.counters.submissions.fetch_add(1, COUNTER);
        Ok(value)
    }
}

impl<D: Device> Shared<D> {
    /// [`Image::mark_written`]: under the submitter's lock, as an upload sets it, so that an
    /// upload being submitted on another thread sees it either before or after, never halfway.
    pub(crate) fn mark_image_written(&self, state: &ImageState<D>) {
        let _sub = self.lock_submitter();
        state.written.store(true, Ordering::Release);
        state.undefine_aliases();
    }
}

impl<D: Device + ImageDevice> Shared<D> {
    /// What every upload into or read-back of `image` checks first: the coordinator is live,
    /// the image is its own, and there are regions.
    pub(super) fn check_image_call(&self, image: &Image<D>, regions: &[ImageCopy]) -> Result<()> {
        self.check_live()?;
        self.check_image_owner(image)?;
        if regions.is_empty() {
            return Err(Error::ZeroSize);
        }
        Ok(())
    }
}

impl<D: Device> Shared<D> {
    /// The device refused the submission of `value`, which carried no buffer: the error to
    /// return. The value is handed out, so unless the device is lost the next submission signals
    /// it first, with no commands, and nothing that waits for it waits forever.
    pub(super) fn refused(
        &self,
        sub: &mut Submitter<D>,
        value: u64,
        e: memkit_core::device::DeviceError,
    ) -> Error {
        let e = self.device_error(e);
        if e != Error::DeviceLost {
            sub.retry = Some((value, signal_only()));
        }
        e
    }

    /// An image handle was dropped: destroy it once its uploads completed (see
    /// [`Shared::retire`] for why a handle dropped during teardown still goes on the list).
    pub(crate) fn retire_image(&self, state: Arc<ImageState<D>>) {
        state.last_use.fetch_max(self.external_floor(), COUNTER);
        let destroyed = state.destroyed.load(Ordering::Acquire);
        self.retire_to(&self.retired_images, state, destroyed);
    }

    /// Destroys the dropped images whose uploads completed by `completed`.
    pub(super) fn maintain_images(&self, sub: &mut Submitter<D>, completed: u64) {
        let retired = std::mem::take(
            &mut *self
                .retired_images
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        sub.deferred_images.extend(retired);
        let (done, waiting): (Vec<_>, Vec<_>) = sub
            .deferred_images
            .drain(..)
            .partition(|s| s.last_use.load(COUNTER) <= completed);
        sub.deferred_images = waiting;
        self.destroy_images(&done);
    }

    /// At teardown (the GPU finished, or the device is lost): destroys the dropped images and
    /// the ones still held, reporting those as leaks.
    pub(super) fn teardown_images(&self, mut dropped: Vec<Arc<ImageState<D>>>) {
        dropped.append(
            &mut self
                .retired_images
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        self.destroy_images(&dropped);
        let live = super::still_held(&self.live_images);
        for state in &live {
            log::warn!(
                "memkit: image {} ({}x{}x{}, {:?}) was still held when the coordinator was \
                 dropped; it is destroyed now and its handle is dead",
                state.key.0,
                state.desc.width,
                state.desc.height,
                state.desc.depth,
                state.desc.format
            );
            self.counters.leaked_images.fetch_add(1, COUNTER);
        }
        self.destroy_images(&live);
    }

    /// Destroys images and frees their memory. The caller made sure the GPU is done with each.
    /// Images destroyed already (by teardown) are skipped.
    fn destroy_images(&self, states: &[Arc<ImageState<D>>]) {
        if states.is_empty() {
            return;
        }
        let mut mine = Vec::with_capacity(states.len());
        for state in states {
            if state.destroyed.swap(true, Ordering::AcqRel) {
                continue;
            }
            // SAFETY: every upload into the image completed (checked by the caller), the
            // application's own work on it finished before it dropped the handle (the handle's
            // contract), and it is destroyed once (the flag above).
            unsafe { (state.destroy_raw)(&self.device, state.raw) };
            mine.push(state);
        }
        let mut pools = self.lock_pools();
        if let Some(pools) = pools.as_mut() {
            for state in &mine {
                // An aliased image's memory goes with the last resource of its set.
                let Some(allocation) =
                    super::aliased::memory_to_free(state.allocation, state.aliasing.as_ref())
                else {
                    continue;
                };
                // SAFETY: the images bound to the allocation are destroyed (above, or before
                // for the other images of an aliased set) and the GPU is done with them.
                let freed = unsafe { pools.free(DeviceAllocation::from_raw(allocation)) };
                if let Err(e) = freed {
                    log::error!("memkit: freeing image {}'s memory failed: {e}", state.key.0);
                }
            }
        }
        drop(pools);
        let mut live = self.live_images.lock().unwrap_or_else(|e| e.into_inner());
        for state in &mine {
            // A moved image's handle holds a new state under the same key: only this state's
            // entry goes.
            if live
                .get(&state.key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(state)))
            {
                live.remove(&state.key);
            }
        }
        drop(live);
        self.counters
            .images_destroyed
            .fetch_add(mine.len() as u64, COUNTER);
    }
}

/// [`Error::OutOfBounds`] unless `region`'s texels ([`ImageCopy::buffer_bytes`] from its offset)
/// lie inside `texels`. A span that overflows (which `ImageCopy::check` refuses) is refused too.
fn check_source(region: &ImageCopy, format: ImageFormat, texels: &[u8]) -> Result<()> {
    let span = region.buffer_bytes(format).unwrap_or(u64::MAX);
    let within = region
        .buffer_offset
        .checked_add(span)
        .is_some_and(|end| end <= texels.len() as u64);
    if within {
        Ok(())
    } else {
        Err(Error::OutOfBounds {
            offset: region.buffer_offset,
            size: span,
            buffer_size: texels.len() as u64,
        })
    }
}

/// A submission with no commands: it only signals its value (see `submit_image_copies`), and
/// carries the waits for the application's timelines (`wait_for_external`).
pub(super) fn signal_only<D: Device>() -> Recorded<D> {
    Recorded::empty()
}

/// The first pair of regions (by index) whose boxes share a texel: the same level, overlapping
/// layers and overlapping ranges on all three axes. Quadratic: uploads carry a few regions (one
/// per level, or a handful of tiles).
fn first_overlap(regions: &[ImageCopy]) -> Option<(usize, usize)> {
    let span = |start: u32, len: u32| (u64::from(start), u64::from(start) + u64::from(len));
    let meet = |(a0, a1): (u64, u64), (b0, b1): (u64, u64)| a0 < b1 && b0 < a1;
    for (i, a) in regions.iter().enumerate() {
        for (j, b) in regions.iter().enumerate().skip(i + 1) {
            let overlap = a.mip_level == b.mip_level
                && meet(
                    span(a.base_array_layer, a.layer_count),
                    span(b.base_array_layer, b.layer_count),
                )
                && (0..3).all(|k| {
                    meet(
                        span(a.offset[k], a.extent[k]),
                        span(b.offset[k], b.extent[k]),
                    )
                });
            if overlap {
                return Some((i, j));
            }
        }
    }
    None
}
