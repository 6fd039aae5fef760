//! Uploads into images (`ImageCopyQueue`): the simulator's own optimal tiling, the layouts it
//! tracks, the detectors that watch uploads, and the test helpers that read images back.
//!
//! # The simulator's optimal tiling
//!
//! An image's bytes lie in its bound memory range from the binding offset, tightly packed:
//! level after level (0 first), within a level layer after layer, within a layer slice after
//! slice (z), row after row (y), texel after texel (x), a multisampled texel's samples together.
//! A compressed format's rows and texels are rows of blocks and blocks
//! ([`ImageFormat::block_extent`](memkit_core::device::ImageFormat::block_extent)).
//! That is [`ImageDesc::packed_bytes`] bytes in all, which `create_image`'s required size covers.
//! A real driver's tiling is opaque; this one is fixed so tests can read texels back
//! ([`DummyDevice::read_image`]).
//!
//! # Layouts
//!
//! An image starts undefined. An upload without `keep_contents` discards what it held (filled
//! with [`DeviceConfig::discarded_image_fill`]); once the upload's value completed, the image is
//! in [`ImageDesc::layout_after_upload`] ([`DummyDevice::image_layout`]), as it is once the
//! application wrote it ([`DummyDevice::application_writes_image`]). An upload with
//! `keep_contents` that executes while the image is still undefined is recorded as
//! [`Misuse::KeepContentsOfUndefinedImage`] and runs as a first one.
//!
//! [`DeviceConfig::discarded_image_fill`]: crate::DeviceConfig::discarded_image_fill
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use memkit_core::device::{
    BufferUsage, DeviceError, ImageCopy, ImageCopyCommand, ImageCopyError, ImageDesc, ImageLayout,
};

use crate::calls::fits;
use crate::device::{BufferObject, DummyDevice, InspectError, Pending, Snapshot, State};
use crate::handles::{DummyBuffer, DummyImage};
use crate::intervals::IntervalSet;
use crate::memory::{MemoryObject, for_chunks};
use crate::misuse::{Misuse, Operation};

/// What the simulator knows about an image besides its resource.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImageState {
    /// What it was created with.
    pub(crate) desc: ImageDesc,
    /// The layout the last executed upload (or the application's write,
    /// [`DummyDevice::application_writes_image`]) left it in; `None` while undefined. Uploads
    /// and read-backs check it when they execute: the device has one queue, so every upload
    /// submitted before them has executed by then.
    pub(crate) layout: Option<ImageLayout>,
}

impl ImageState {
    /// A new image: undefined, never uploaded into.
    pub(crate) fn new(desc: ImageDesc) -> Self {
        Self { desc, layout: None }
    }
}

/// One upload, resolved at submit.
#[derive(Debug)]
pub(crate) struct PendingImageCommand {
    /// Source buffer index.
    pub(crate) src: u64,
    /// Destination image (resource) index.
    pub(crate) dst: u64,
    /// The destination's handle, for the misuse it may record.
    pub(crate) image: DummyBuffer,
    pub(crate) desc: ImageDesc,
    /// Whether the upload keeps what the image holds outside its regions; it discards it
    /// instead (as a first upload does) when the image is undefined as the upload executes.
    pub(crate) keep_contents: bool,
    /// What a discard fills the whole image with first (`DeviceConfig::discarded_image_fill`).
    pub(crate) discard_fill: Option<u8>,
    /// The regions that can execute (inside the source buffer).
    pub(crate) regions: Vec<ImageCopy>,
}

/// Bytes of one subresource: every texel block (and sample) of mip level `level` in one layer.
fn subresource_bytes(desc: &ImageDesc, level: u32) -> Option<u64> {
    let [w, h, d] = desc.format.blocks(desc.level_extent(level)).map(u64::from);
    (w * h)
        .checked_mul(d)?
        .checked_mul(u64::from(desc.samples))?
        .checked_mul(u64::from(desc.format.block_bytes()))
}

/// Where subresource (`level`, `layer`) starts in the image's bytes, and its size, in the
/// simulator's tiling. `None` for a level or layer the image lacks.
pub(crate) fn subresource_range(desc: &ImageDesc, level: u32, layer: u32) -> Option<(u64, u64)> {
    if level >= desc.mip_levels || layer >= desc.array_layers {
        return None;
    }
    let layers = u64::from(desc.array_layers);
    let mut offset = 0u64;
    for l in 0..level {
        offset = offset.checked_add(subresource_bytes(desc, l)?.checked_mul(layers)?)?;
    }
    let size = subresource_bytes(desc, level)?;
    let offset = offset.checked_add(size.checked_mul(u64::from(layer))?)?;
    Some((offset, size))
}

/// Calls `f(source_offset, image_offset, len)` for each contiguous run of bytes `region` copies:
/// `source_offset` in the source buffer (at the region's row, slice and layer pitches),
/// `image_offset` from the image's first byte. The region passed [`ImageCopy::check`] against
/// `desc` (so the image is single-sampled, the box lies inside it and its pitches fit); runs come
/// in source order.
pub(crate) fn for_each_run(desc: &ImageDesc, region: &ImageCopy, mut f: impl FnMut(u64, u64, u64)) {
    // In texel blocks throughout: a row is a row of blocks.
    let texel = u64::from(desc.format.block_bytes());
    let (offset, extent) = region.block_box(desc.format);
    let [w, h, d] = extent.map(u64::from);
    let [ox, oy, oz] = offset.map(u64::from);
    let [level_w, level_h, _] = desc
        .format
        .blocks(desc.level_extent(region.mip_level))
        .map(u64::from);
    let Some([row_pitch, slice_pitch, layer_pitch]) = region.buffer_pitches(desc.format) else {
        return;
    };
    let row = w * texel;
    let layers = region.base_array_layer..region.base_array_layer + region.layer_count;
    for (i, layer) in layers.enumerate() {
        let Some((base, _)) = subresource_range(desc, region.mip_level, layer) else {
            return;
        };
        for z in 0..d {
            let src = region.buffer_offset + i as u64 * layer_pitch + z * slice_pitch;
            let slice = base + (oz + z) * level_h * level_w * texel;
            if w == level_w && row_pitch == row {
                // Whole rows on both sides: the box's rows lie back to back in the slice and in
                // the source.
                f(src, slice + oy * level_w * texel, h * row);
            } else {
                for y in 0..h {
                    let to = slice + ((oy + y) * level_w + ox) * texel;
                    f(src + y * row_pitch, to, row);
                }
            }
        }
    }
}

/// The source bytes `region` reads, as `(offset, len)` runs in the source buffer, runs that
/// follow one another joined: one run for a tightly packed region.
pub(crate) fn source_runs(desc: &ImageDesc, region: &ImageCopy) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for_each_run(desc, region, |from, _, len| match runs.last_mut() {
        Some((at, n)) if *at + *n == from => *n += len,
        _ => runs.push((from, len)),
    });
    runs
}

/// Whether two regions write a shared texel: same level, a shared layer, intersecting boxes.
/// Sorted by level and x, then swept: a region is compared only with those starting before it
/// ends in x.
pub(crate) fn regions_overlap(regions: &[ImageCopy]) -> bool {
    let span = |start: u32, len: u32| (u64::from(start), u64::from(start) + u64::from(len));
    let meet = |a: (u64, u64), b: (u64, u64)| a.0 < b.1 && b.0 < a.1;
    let mut sorted: Vec<&ImageCopy> = regions.iter().collect();
    sorted.sort_unstable_by_key(|r| (r.mip_level, r.offset[0]));
    for (i, a) in sorted.iter().enumerate() {
        let a_x = span(a.offset[0], a.extent[0]);
        for b in &sorted[i + 1..] {
            // Later ones start no earlier in x: none of them meets `a` once one starts after it.
            if b.mip_level != a.mip_level || u64::from(b.offset[0]) >= a_x.1 {
                break;
            }
            let layers_meet = meet(
                span(a.base_array_layer, a.layer_count),
                span(b.base_array_layer, b.layer_count),
            );
            let box_meets = (1..3).all(|axis| {
                meet(
                    span(a.offset[axis], a.extent[axis]),
                    span(b.offset[axis], b.extent[axis]),
                )
            });
            if layers_meet && box_meets {
                return true;
            }
        }
    }
    false
}

impl DummyDevice {
    /// The copy queue's image transfer granularity (`ImageCopyQueue::image_copy_granularity`):
    /// [`DeviceConfig::image_copy_granularity`](crate::DeviceConfig::image_copy_granularity).
    pub fn image_copy_granularity(&self) -> [u32; 3] {
        self.shared.config.image_copy_granularity
    }

    /// Submits uploads into images (`ImageCopyQueue::submit_image_copies`). They execute, really
    /// writing texels into the image's bytes (see the module's tiling), when the test advances
    /// the timeline to `signal_value`, like [`submit_copies`](Self::submit_copies), which it
    /// shares its call count, faults and timeline checks with.
    ///
    /// Refused with a typed error before anything is counted or submitted: a lost device
    /// ([`DeviceError::DeviceLost`]), then any region failing [`ImageCopy::check`] against its
    /// command's `desc` and [`image_copy_granularity`](Self::image_copy_granularity)
    /// ([`DeviceError::InvalidImageCopy`]). Then, as for buffer copies: injected faults, and a
    /// `signal_value` that does not rise (a misuse too).
    ///
    /// Contract breaches are recorded as [`Misuse`] and the call goes on: a destroyed or foreign
    /// source or image, or one not bound or whose memory was freed (the command is dropped); a
    /// source that is not a linear buffer, or lacks `TRANSFER_SRC`; a `desc` other than the
    /// image's ([`Misuse::ImageDescMismatch`], command dropped); a source range past the end of
    /// the source buffer ([`Misuse::CopyOutOfBounds`], region dropped); overlapping regions
    /// ([`Misuse::ImageCopyOverlappingRegions`]); `keep_contents` on an image still undefined
    /// as the upload executes ([`Misuse::KeepContentsOfUndefinedImage`]); unflushed non-coherent
    /// sources. Sources (and host-visible images) are hashed, to catch host writes before
    /// execution; destroying the image or freeing its memory before then is recorded by
    /// `destroy_image` and `free_memory`.
    ///
    /// ```
    /// use memkit_core::device::{
    ///     BufferUsage, ImageCopy, ImageCopyCommand, ImageDesc, ImageFormat, ImageLayout,
    ///     ImageUsage, MemoryAllocateInfo,
    /// };
    /// use memkit_dummy::DummyDevice;
    ///
    /// let gpu = DummyDevice::discrete();
    /// let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST;
    /// let desc = ImageDesc::new_2d(ImageFormat::R8Unorm, 4, 2, usage);
    /// let info = |memory_type, size| MemoryAllocateInfo {
    ///     size,
    ///     memory_type,
    ///     dedicated_to: None,
    ///     priority: 0.5,
    ///     device_address: false,
    /// };
    /// let (image, requirements) = gpu.create_image(&desc).unwrap();
    /// let vram = gpu.allocate_memory(&info(0, requirements.size)).unwrap();
    /// gpu.bind_image_memory(image, vram, 0).unwrap();
    /// let staging_memory = gpu.allocate_memory(&info(1, 16)).unwrap();
    /// let (staging, _) = gpu.create_buffer(16, BufferUsage::TRANSFER_SRC).unwrap();
    /// gpu.bind_buffer_memory(staging, staging_memory, 0).unwrap();
    /// gpu.map_memory(staging_memory).unwrap();
    /// gpu.host_write(staging_memory, 0, b"abcdefgh").unwrap();
    /// let regions = [ImageCopy::whole_level(&desc, 0, 0)];
    /// let upload = ImageCopyCommand {
    ///     src: staging,
    ///     dst: image,
    ///     desc,
    ///     keep_contents: false,
    ///     regions: &regions,
    /// };
    /// gpu.submit_image_copies(&[upload], 1).unwrap();
    /// assert_eq!(gpu.image_layout(image), Ok(None)); // not executed yet
    /// gpu.advance_to(1);
    /// assert_eq!(gpu.read_image(image, 0, 0).unwrap(), b"abcdefgh");
    /// assert_eq!(
    ///     gpu.image_layout(image),
    ///     Ok(Some(ImageLayout::ShaderReadOnlyOptimal))
    /// );
    /// gpu.assert_no_misuse();
    /// # gpu.destroy_image(image);
    /// # gpu.destroy_buffer(staging);
    /// # for m in [staging_memory, vram] { gpu.free_memory(m); }
    /// # assert!(gpu.leak_report().is_empty());
    /// ```
    pub fn submit_image_copies(
        &self,
        commands: &[ImageCopyCommand<'_, DummyBuffer, DummyImage>],
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
                    .try_for_each(|r| r.check(&command.desc, granularity))
            },
            |device, state, command, check, pending| {
                if let Some(queued) = device.queue_upload(state, command, check, pending) {
                    pending.images.push(queued);
                }
            },
        )
    }

    /// What submitting uploads into or read-backs of images shares: refused on a lost device,
    /// then when any command's regions fail `check_regions` (nothing counted or submitted);
    /// then `begin_submission`, each command queued by `queue`, and `end_submission`.
    pub(crate) fn submit_image_commands<C>(
        &self,
        commands: &[C],
        signal_value: u64,
        check_regions: impl Fn(&C) -> Result<(), ImageCopyError>,
        mut queue: impl FnMut(&Self, &mut State, &C, bool, &mut Pending),
    ) -> Result<(), DeviceError> {
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        commands
            .iter()
            .try_for_each(&check_regions)
            .map_err(DeviceError::InvalidImageCopy)?;
        let check = self.begin_submission(&mut state, signal_value)?;
        let mut pending = Pending::new(signal_value);
        for command in commands {
            queue(self, &mut state, command, check, &mut pending);
        }
        self.end_submission(&mut state, pending);
        Ok(())
    }

    /// Resolves one upload, recording what breaks its contract; `None` when it cannot run.
    fn queue_upload(
        &self,
        state: &mut State,
        command: &ImageCopyCommand<'_, DummyBuffer, DummyImage>,
        check: bool,
        pending: &mut Pending,
    ) -> Option<PendingImageCommand> {
        let serial = self.shared.serial;
        let image = command.dst.resource;
        let src = state.live_buffer(serial, command.src, Operation::Submit);
        let dst = state.live_buffer(serial, image, Operation::Submit);
        let (src, dst) = (src?, dst?);
        let src_binding = self.copy_binding(state, src, command.src, BufferUsage::TRANSFER_SRC)?;
        let dst_binding = self.image_binding(state, dst, image, &command.desc)?;
        let regions = Self::sourced_regions(state, command, src);
        if regions_overlap(&regions) {
            state.misuse(Misuse::ImageCopyOverlappingRegions { image });
        }
        let mut found = Vec::new();
        let src_memory = &state.memory[&src_binding.0];
        for (from, size) in regions
            .iter()
            .flat_map(|region| source_runs(&command.desc, region))
        {
            let at = src_binding.1 + from;
            if let Some(first) = src_memory.first_unflushed(at, size) {
                found.push(Misuse::UnflushedHostWrite {
                    memory: self.memory_handle(src_binding.0),
                    offset: first,
                    size,
                });
            }
            if check && src_memory.host.is_some() {
                pending.snapshots.push(Snapshot {
                    memory: src_binding.0,
                    offset: at,
                    size,
                    source: true,
                    device_hash: src_memory.device_hash(at, size),
                    host_hash: if src_memory.non_coherent() {
                        src_memory.host_hash(at, size)
                    } else {
                        None
                    },
                });
            }
        }
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
        for misuse in found {
            state.misuse(misuse);
        }
        pending.memory.extend([src_binding.0, dst_binding.0]);
        Some(PendingImageCommand {
            src,
            dst,
            desc: command.desc,
            image,
            keep_contents: command.keep_contents,
            discard_fill: self.shared.config.discarded_image_fill,
            regions,
        })
    }

    /// The (memory, offset) an upload's image is bound at, or `None` after recording why it
    /// cannot be written: described otherwise than created, not bound, or its memory freed.
    pub(crate) fn image_binding(
        &self,
        state: &mut State,
        index: u64,
        image: DummyBuffer,
        desc: &ImageDesc,
    ) -> Option<(u64, u64)> {
        let resource = &state.buffers[&index];
        let described = resource.image_state.is_some_and(|s| s.desc == *desc);
        let binding = resource.binding;
        if !described {
            state.misuse(Misuse::ImageDescMismatch { image });
            return None;
        }
        self.live_binding(state, image, binding)
    }

    /// The regions whose source range lies inside the source buffer, after recording the others
    /// as [`Misuse::CopyOutOfBounds`].
    fn sourced_regions(
        state: &mut State,
        command: &ImageCopyCommand<'_, DummyBuffer, DummyImage>,
        src: u64,
    ) -> Vec<ImageCopy> {
        let src_size = state.buffers[&src].size;
        let mut regions = Vec::with_capacity(command.regions.len());
        for region in command.regions {
            // `check` passed, so the span fits in a u64.
            let size = region.buffer_bytes(command.desc.format).unwrap_or(u64::MAX);
            if fits(region.buffer_offset, size, src_size) {
                regions.push(*region);
            } else {
                state.misuse(Misuse::CopyOutOfBounds {
                    buffer: command.src,
                    offset: region.buffer_offset,
                    size,
                });
            }
        }
        regions
    }

    /// The texels of one subresource (`mip_level`, `layer`) of an image, tightly packed (row
    /// after row, slice after slice; a multisampled texel's samples together), as the device
    /// sees them now. Records nothing.
    pub fn read_image(
        &self,
        image: DummyImage,
        mip_level: u32,
        layer: u32,
    ) -> Result<Vec<u8>, InspectError> {
        let state = self.lock();
        let (object, desc) = self.image_object(&state, image)?;
        let (offset, size) =
            subresource_range(&desc, mip_level, layer).ok_or(InspectError::NoSuchSubresource)?;
        let (memory, base) = object.binding.ok_or(InspectError::Unbound)?;
        let memory = state.memory.get(&memory).ok_or(InspectError::Unbound)?;
        let len = usize::try_from(size).map_err(|_| InspectError::OutOfBounds)?;
        let mut out = vec![0; len];
        memory.device_read(base + offset, &mut out);
        Ok(out)
    }

    /// The application's own GPU work (a render pass, a compute pass) wrote `texels` into one
    /// subresource (`mip_level`, `layer`) of an image and left it in its layout after upload;
    /// the test stands for the application's queue, and that work has completed. The texels are
    /// tightly packed, as [`read_image`](Self::read_image) returns them. From then on the image's
    /// contents are defined, as after an upload (the simulator tracks that per image, not per
    /// subresource): a read-back of it is no [`Misuse::ReadOfUndefinedImage`], and an upload
    /// may keep what it holds. Images bound to bytes it shares on purpose
    /// ([`bind_aliased_image_memory`](Self::bind_aliased_image_memory)) are undefined again.
    ///
    /// [`InspectError::UnknownImage`], [`InspectError::NoSuchSubresource`],
    /// [`InspectError::Unbound`], and [`InspectError::OutOfBounds`] when `texels` is not the
    /// subresource's size.
    pub fn application_writes_image(
        &self,
        image: DummyImage,
        mip_level: u32,
        layer: u32,
        texels: &[u8],
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        let (object, desc) = self.image_object(&state, image)?;
        let (offset, size) =
            subresource_range(&desc, mip_level, layer).ok_or(InspectError::NoSuchSubresource)?;
        if texels.len() as u64 != size {
            return Err(InspectError::OutOfBounds);
        }
        let (memory, base) = object.binding.ok_or(InspectError::Unbound)?;
        let fill = self.shared.config.stale_read_fill;
        let memory = state.memory.get_mut(&memory).ok_or(InspectError::Unbound)?;
        memory.device_write(base + offset, texels, fill);
        state.image_written(image.resource.index);
        Ok(())
    }

    /// The layout an image is in as the timeline stands: `None` while undefined (no upload into
    /// it completed), else [`ImageDesc::layout_after_upload`] of its description.
    pub fn image_layout(&self, image: DummyImage) -> Result<Option<ImageLayout>, InspectError> {
        let state = self.lock();
        let (object, _) = self.image_object(&state, image)?;
        Ok(object.image_state.and_then(|s| s.layout))
    }

    fn image_object<'a>(
        &self,
        state: &'a State,
        image: DummyImage,
    ) -> Result<(&'a BufferObject, ImageDesc), InspectError> {
        if image.resource.device != self.shared.serial {
            return Err(InspectError::UnknownImage);
        }
        let object = state
            .buffers
            .get(&image.resource.index)
            .ok_or(InspectError::UnknownImage)?;
        let desc = object
            .image_state
            .map(|s| s.desc)
            .ok_or(InspectError::UnknownImage)?;
        Ok((object, desc))
    }
}

impl State {
    /// Whether image (resource) `index` holds defined contents as the queue stands: an upload
    /// into it executed, or the application wrote it. What executing reads and kept uploads
    /// check.
    pub(crate) fn image_defined(&self, index: u64) -> bool {
        self.buffers
            .get(&index)
            .and_then(|b| b.image_state)
            .is_some_and(|s| s.layout.is_some())
    }

    /// Executes one upload: discards the image's contents if it is to, writes each region's
    /// texels, and leaves the image in its layout after upload. An image destroyed or memory
    /// freed since submit (recorded then) is skipped, as for buffer copies.
    pub(crate) fn execute_image_command(
        &mut self,
        command: &PendingImageCommand,
        written: &mut BTreeMap<u64, IntervalSet>,
        buf: &mut Vec<u8>,
        stale_fill: Option<u8>,
    ) {
        let Some((src, dst)) = self.live_bindings(command.src, command.dst) else {
            return;
        };
        self.counters.copies += 1;
        let defined = self.image_defined(command.dst);
        if command.keep_contents && !defined {
            self.misuse(Misuse::KeepContentsOfUndefinedImage {
                image: command.image,
            });
        }
        let discard = !(command.keep_contents && defined);
        let written = written.entry(dst.0).or_default();
        if let Some(fill) = command.discard_fill.filter(|_| discard) {
            let size = command.desc.packed_bytes();
            if let Some(dst_memory) = self.memory.get_mut(&dst.0) {
                for_chunks(dst.1, size, |at, n| {
                    buf.clear();
                    buf.resize(n as usize, fill);
                    dst_memory.device_write(at, buf, stale_fill);
                });
            }
            written.insert(dst.1, dst.1 + size);
        }
        let copy = ImageTransfer {
            buffer: src,
            image: dst,
            to_image: true,
        };
        self.copy_image_regions(
            &command.desc,
            &command.regions,
            copy,
            written,
            buf,
            stale_fill,
        );
        self.image_written(command.dst);
    }

    /// The image at `index` was written (an upload or a move executed, or the application wrote
    /// it): it is in its layout after upload, and images aliasing its bytes are undefined again.
    pub(crate) fn image_written(&mut self, index: u64) {
        if let Some(state) = self
            .buffers
            .get_mut(&index)
            .and_then(|b| b.image_state.as_mut())
        {
            state.layout = Some(state.desc.layout_after_upload());
        }
        self.resource_accessed(index);
    }

    /// The resource (image or buffer) at `index` was used by the GPU (written, read, moved out
    /// of): every other image bound to bytes it shares on purpose (`bind_aliased_image_memory`,
    /// `bind_aliased_buffer_memory`) loses its contents and its layout, as the Vulkan
    /// specification's memory aliasing rules say, so that keeping or reading what it held is
    /// recorded as misuse. (A buffer sharing the bytes keeps whatever bytes were written last,
    /// which is what the simulator's memory holds.)
    pub(crate) fn resource_accessed(&mut self, index: u64) {
        let Some(object) = self.buffers.get(&index) else {
            return;
        };
        let (Some((memory, offset)), true) = (object.binding, object.aliased) else {
            return;
        };
        let end = offset + object.requirements.size;
        let Some(bound) = self.memory.get(&memory).map(|m| &m.bound) else {
            return;
        };
        let overlapping: Vec<u64> = bound
            .iter()
            .copied()
            .filter(|&other| other != index)
            .filter(|other| {
                self.buffers.get(other).is_some_and(|o| {
                    o.aliased
                        && o.binding
                            .is_some_and(|(_, at)| at < end && offset < at + o.requirements.size)
                })
            })
            .collect();
        for other in overlapping {
            if let Some(state) = self
                .buffers
                .get_mut(&other)
                .and_then(|b| b.image_state.as_mut())
            {
                state.layout = None;
            }
        }
    }
}

/// A copy between a buffer and an image, each named by its binding (memory, offset), and its
/// direction.
#[derive(Clone, Copy)]
pub(crate) struct ImageTransfer {
    pub(crate) buffer: (u64, u64),
    pub(crate) image: (u64, u64),
    /// Buffer to image (an upload), else image to buffer (a read-back).
    pub(crate) to_image: bool,
}

impl State {
    /// The bindings of resources `src` and `dst` when both are bound to memory not freed since
    /// submit (recorded then); `None`, and the copy is skipped, as for buffer copies, otherwise.
    pub(crate) fn live_bindings(&self, src: u64, dst: u64) -> Option<((u64, u64), (u64, u64))> {
        let src = self.buffers.get(&src).and_then(|b| b.binding)?;
        let dst = self.buffers.get(&dst).and_then(|b| b.binding)?;
        (self.memory.contains_key(&src.0) && self.memory.contains_key(&dst.0)).then_some((src, dst))
    }

    /// Copies each region's texels between the buffer and the image of `copy`, marks the bytes
    /// written in the destination's `written`, and counts the regions and their bytes.
    pub(crate) fn copy_image_regions(
        &mut self,
        desc: &ImageDesc,
        regions: &[ImageCopy],
        copy: ImageTransfer,
        written: &mut IntervalSet,
        buf: &mut Vec<u8>,
        stale_fill: Option<u8>,
    ) {
        for region in regions {
            let memory = &mut self.memory;
            for_each_run(desc, region, |buffer_at, image_at, len| {
                let at_buffer = (copy.buffer.0, copy.buffer.1 + buffer_at);
                let at_image = (copy.image.0, copy.image.1 + image_at);
                let (from, to) = if copy.to_image {
                    (at_buffer, at_image)
                } else {
                    (at_image, at_buffer)
                };
                copy_device_bytes(memory, from, to, len, buf, stale_fill);
                written.insert(to.1, to.1 + len);
            });
            self.counters.regions += 1;
            self.counters.bytes_copied += region.packed_bytes(desc.format).unwrap_or(0);
        }
    }
}

/// Copies `len` device bytes from `(memory, offset)` `from` to `to`, in chunks through `buf`, as a
/// GPU copy writes them (a destination freed meanwhile is skipped).
pub(crate) fn copy_device_bytes(
    memory: &mut BTreeMap<u64, MemoryObject>,
    from: (u64, u64),
    to: (u64, u64),
    len: u64,
    buf: &mut Vec<u8>,
    stale_fill: Option<u8>,
) {
    for_chunks(0, len, |k, n| {
        buf.resize(n as usize, 0);
        memory[&from.0].device_read(from.1 + k, buf);
        if let Some(dst_memory) = memory.get_mut(&to.0) {
            dst_memory.device_write(to.1 + k, buf, stale_fill);
        }
    });
}

#[cfg(test)]
mod tests;
