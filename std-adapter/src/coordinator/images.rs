//! Images: created in pool memory, uploaded into through staging buffers of their own, and
//! destroyed once their uploads completed.
//!
//! An upload into an image copies the caller's texels into a staging buffer of its own (each
//! region at an offset the copy rules allow, so the caller's bytes need no alignment), then, under
//! the submitter's lock, submits whatever buffer uploads are ready first and the image's copies
//! with the next timeline value. The staging buffer is destroyed when that value completes, like
//! a dedicated buffer upload's.
//!
//! Image uploads do not go through the ring: a texture is large and written once, and its copy
//! needs the queue's layout transitions, which the buffer scheduler knows nothing of.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use memkit_core::device::{
    DedicatedHint, DedicatedTo, ImageCopy, ImageCopyCommand, ImageCopyQueue, ImageDesc, ImageDevice,
};
use memkit_core::scheduler::BufferKey;
use memkit_core::{AllocationRequest, DeviceAllocation, MemoryUsage, ResourceKind};

use super::{Coordinator, Recorded, Shared, Submitter};
use crate::buffer::{BufferState, COUNTER};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::image::{Image, ImageState};
use crate::ticket::Ticket;

/// Destroys an image on a device that has them: stored in each [`ImageState`].
///
/// # Safety
/// As `ImageDevice::destroy_image`.
unsafe fn destroy_image<D: Device + ImageDevice>(device: &D, image: D::Image) {
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

    /// Uploads texels into `image`: each region's box is read tightly packed from `texels` at
    /// its `buffer_offset` (any offset: the bytes are copied into a staging buffer at offsets the
    /// copy rules allow). The first upload into an image discards what it held, levels and
    /// layers the regions miss included; later ones keep what the regions do not cover. Once
    /// the ticket completed the texels are in place and the image is in
    /// [`Image::layout_after_upload`]; work on another queue waits for the ticket's
    /// [`value`](Ticket::value) on the coordinator's timeline semaphore before it uses them.
    ///
    /// The application keeps its own GPU work off the image while the upload runs: work it
    /// submitted before that uses the image must have completed (wait for its fence before
    /// re-uploading), as for buffers it still reads.
    ///
    /// Buffer uploads staged before the call are submitted before the image's copies.
    ///
    /// Errors: [`Error::ZeroSize`] for no regions, [`Error::ForeignImage`],
    /// [`Error::OutOfBounds`] when a region's texels reach past `texels`,
    /// [`Error::ImageCopy`] for a region that breaks a copy rule (see
    /// [`ImageCopy::check`]; the queue's granularity is the device's), [`Error::OverlappingImageRegions`],
    /// [`Error::Memory`] when the staging buffer cannot be allocated, [`Error::DeviceLost`],
    /// [`Error::Device`] when the device refuses the submission (nothing was submitted, and the
    /// image is as before).
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
            last_use: AtomicU64::new(0),
            written: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            destroy_raw: destroy_image::<D>,
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
        self.check_live()?;
        if !std::ptr::eq(Arc::as_ptr(&image.shared), Arc::as_ptr(self)) {
            return Err(Error::ForeignImage);
        }
        if regions.is_empty() {
            return Err(Error::ZeroSize);
        }
        let state = &image.state;
        let desc = state.desc;
        let granularity = self.device.image_copy_granularity();
        // Where each region's texels go in the staging buffer: offsets on the copy's alignment
        // (4 bytes and the texel size, both powers of two).
        let unit = u64::from(desc.format.texel_bytes().max(4));
        let mut staged = Vec::with_capacity(regions.len());
        let (mut end, mut texel_bytes) = (0u64, 0u64);
        for region in regions {
            // Every rule but the offset's, which is the staging buffer's, not the caller's.
            let at_zero = ImageCopy {
                buffer_offset: 0,
                ..*region
            };
            at_zero
                .check(&desc, granularity)
                .map_err(Error::ImageCopy)?;
            // `check` refused boxes whose size overflows.
            let size = region.packed_bytes(desc.format).unwrap_or(0);
            let within = region
                .buffer_offset
                .checked_add(size)
                .is_some_and(|e| e <= texels.len() as u64);
            if !within {
                return Err(Error::OutOfBounds {
                    offset: region.buffer_offset,
                    size,
                    buffer_size: texels.len() as u64,
                });
            }
            // Aligned, so the copy keeps every rule `at_zero` did. No overflow: each size is
            // below `texels.len()`.
            let at = end.next_multiple_of(unit);
            staged.push(ImageCopy {
                buffer_offset: at,
                ..*region
            });
            end = at + size;
            texel_bytes += size;
        }
        if let Some((a, b)) = first_overlap(&staged) {
            log::debug!("memkit: image upload regions {a} and {b} overlap");
            return Err(Error::OverlappingImageRegions);
        }
        let staging = self.create_state(end, MemoryUsage::UPLOAD, true)?;
        if let Err(e) = self.fill_staging(&staging, &desc, regions, &staged, texels) {
            // Never submitted: no GPU work names it.
            self.destroy(&staging);
            return Err(e);
        }
        let mut sub = self.lock_submitter();
        match self.submit_image_copies(&mut sub, state, &staged, &staging) {
            Ok(value) => {
                sub.in_flight.push_back(super::InFlight {
                    value,
                    staging: vec![staging],
                });
                drop(sub);
                self.counters.image_uploads.fetch_add(1, COUNTER);
                self.counters
                    .image_bytes_uploaded
                    .fetch_add(texel_bytes, COUNTER);
                Ok(self.ticket_for_value(value))
            }
            Err(e) => {
                drop(sub);
                // Not submitted: no GPU work names it.
                self.destroy(&staging);
                Err(e)
            }
        }
    }

    /// Copies each region's texels from `texels` to its place in the staging buffer, and flushes
    /// them when the memory is not coherent.
    fn fill_staging(
        &self,
        staging: &BufferState<D>,
        desc: &ImageDesc,
        regions: &[ImageCopy],
        staged: &[ImageCopy],
        texels: &[u8],
    ) -> Result<()> {
        for (from, to) in regions.iter().zip(staged) {
            // Both checked by the caller: the size fits and the source range lies in `texels`.
            let size = to.packed_bytes(desc.format).unwrap_or(0) as usize;
            let source = (from.buffer_offset as usize)
                .checked_add(size)
                .and_then(|end| texels.get(from.buffer_offset as usize..end))
                .ok_or(Error::OutOfBounds {
                    offset: from.buffer_offset,
                    size: size as u64,
                    buffer_size: texels.len() as u64,
                })?;
            let target = staging
                .host_at(to.buffer_offset)
                .ok_or(Error::NotHostVisible)?;
            // SAFETY: `[to.buffer_offset, + size)` lies inside the staging buffer (it was sized
            // to the last region's end), whose memory is mapped while it lives; no GPU work names
            // it yet and no other thread has it; `source` is a Rust slice, not the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(source.as_ptr(), target.as_ptr(), size);
            }
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

    /// Submits the buffer uploads ready so far, then the image's copies with the next timeline
    /// value, which it returns. On an error nothing of the image's upload is in flight.
    fn submit_image_copies(
        &self,
        sub: &mut Submitter<D>,
        state: &ImageState<D>,
        staged: &[ImageCopy],
        staging: &BufferState<D>,
    ) -> Result<u64> {
        // Also submits a refused submission's value (`sub.retry`) first: the values reach the
        // device in the order they were handed out.
        self.flush_locked(sub)?;
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => return Err(Error::DeviceLost),
        };
        let command = ImageCopyCommand {
            src: staging.raw,
            dst: state.raw,
            desc: state.desc,
            keep_contents: state.written.load(Ordering::Acquire),
            regions: staged,
        };
        // SAFETY: the staging buffer and the image are alive and bound, and stay so until the
        // value completes (the staging buffer goes on the in-flight list, and a dropped image is
        // destroyed only once its `last_use` completed); `desc` is the image's; each region was
        // checked against it and the queue's granularity, lies inside the staging buffer (sized
        // to hold them all) and no two overlap; the texels were written and flushed; the image
        // keeps its contents only after an earlier upload (`written`) left it in its layout
        // after upload (the application's contract for its own work on it); the tracker hands
        // out increasing values, submitted under the submitter's lock.
        let submitted = unsafe { self.device.submit_image_copies(&[command], value) };
        if let Err(e) = submitted {
            let e = self.device_error(e);
            if e != Error::DeviceLost {
                // The value is handed out: the next submission signals it first, with no
                // commands, so nothing that waits for it waits forever.
                sub.retry = Some((value, signal_only()));
            }
            return Err(e);
        }
        state.last_use.store(value, COUNTER);
        state.written.store(true, Ordering::Release);
        self.counters.submissions.fetch_add(1, COUNTER);
        Ok(value)
    }
}

impl<D: Device> Shared<D> {
    /// An image handle was dropped: destroy it once its uploads completed (see
    /// [`Shared::retire`] for why a handle dropped during teardown still goes on the list).
    pub(crate) fn retire_image(&self, state: Arc<ImageState<D>>) {
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
        let live: Vec<Arc<ImageState<D>>> = self
            .live_images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(Weak::upgrade)
            .collect();
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
                // SAFETY: the image bound to the allocation is destroyed (above) and the GPU is
                // done with it.
                let freed = unsafe { pools.free(DeviceAllocation::from_raw(state.allocation)) };
                if let Err(e) = freed {
                    log::error!("memkit: freeing image {}'s memory failed: {e}", state.key.0);
                }
            }
        }
        drop(pools);
        let mut live = self.live_images.lock().unwrap_or_else(|e| e.into_inner());
        for state in &mine {
            live.remove(&state.key);
        }
        drop(live);
        self.counters
            .images_destroyed
            .fetch_add(mine.len() as u64, COUNTER);
    }
}

/// A submission with no commands: it only signals its value (see `submit_image_copies`).
fn signal_only<D: Device>() -> Recorded<D> {
    Recorded {
        regions: Vec::new(),
        commands: Vec::new(),
        destinations: Vec::new(),
        staging: Vec::new(),
        uploads: 0,
        // Covers no upload: tickets never resolve to this value.
        watermark: 0,
    }
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
