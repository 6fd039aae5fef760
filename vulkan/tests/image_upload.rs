//! Uploads into images through memkit's queue ([`ImageCopyQueue`]), read back byte for byte by
//! the application's own submissions: every mip level and layer of a 2D array, a partial
//! re-upload that keeps the rest, several commands into one image in one submission, a 3D image,
//! and bad regions refused before anything is submitted; the same uploads recorded into the
//! application's command buffer ([`ImageCopyRecorder`]); and memkit's own read-back
//! ([`read_image`]). Validation and synchronization validation are on; every test fails on any
//! message.

mod common;

use std::collections::HashSet;

use common::{
    AppCommands, MappedBuffer, SECOND, TIMELINE_MODES, finish, finish_shared, headless,
    headless_with, memory_for, pattern,
};
use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, CopyQueue, DedicatedTo, DeviceError, ImageCopy,
    ImageCopyCommand, ImageCopyError, ImageCopyQueue, ImageDesc, ImageDevice, ImageFormat,
    ImageLayout, ImageMoveCommand, ImageReadCommand, ImageUsage, InvalidArgument, MemoryDevice,
    MemoryPropertyFlags, WaitStatus,
};
use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{
    HeadlessConfig, HeadlessDevice, ImageCopyRecorder, OwnershipTransfer, SharedHeadlessDevice,
    TimelineMode, VulkanDevice, image_acquire_barrier, image_return_barrier, read_image,
    record_image_acquire, record_image_return,
};

/// A validated headless device whose images the main queue may use where memkit copies on a
/// family of its own (concurrent sharing; nothing changes where the families are the same).
fn concurrent_device(timeline: TimelineMode) -> Option<HeadlessDevice> {
    headless_with(HeadlessConfig {
        timeline,
        concurrent_with_main_family: true,
        ..HeadlessConfig::default()
    })
}

/// Runs `test` on a [`concurrent_device`] in each timeline mode and [`finish`]es each.
fn each_timeline_mode(test: impl Fn(&HeadlessDevice)) {
    for timeline in TIMELINE_MODES {
        let Some(h) = concurrent_device(timeline) else {
            return;
        };
        test(&h);
        finish(h);
    }
}

/// An image made through memkit-vulkan with memory of its own.
struct TestImage {
    image: vk::Image,
    memory: vk::DeviceMemory,
    desc: ImageDesc,
}

impl TestImage {
    fn new(device: &VulkanDevice, desc: ImageDesc) -> Self {
        let (image, req) = device.create_image(&desc).unwrap();
        let any = MemoryPropertyFlags::empty();
        let memory = memory_for(device, &req, any, DedicatedTo::Image(image));
        // SAFETY: the image is unbound; offset 0 of memory of its size.
        unsafe { device.bind_image_memory(image, memory, 0) }.unwrap();
        Self {
            image,
            memory,
            desc,
        }
    }

    /// One command uploading `regions` of `src` into this image.
    fn command<'r>(
        &self,
        src: vk::Buffer,
        keep_contents: bool,
        regions: &'r [ImageCopy],
    ) -> ImageCopyCommand<'r, vk::Buffer, vk::Image> {
        ImageCopyCommand {
            src,
            dst: self.image,
            desc: self.desc,
            keep_contents,
            regions,
        }
    }

    fn destroy(self, device: &VulkanDevice) {
        // SAFETY: every submission using the image was waited for.
        unsafe {
            device.destroy_image(self.image);
            device.free_memory(self.memory);
        }
    }
}

/// Every level of `desc`, all layers, one after the other from offset 0, each at the next
/// multiple of the format's copy offset alignment (packed tightly for every format but 1- and
/// 2-byte ones); and the bytes they span.
fn whole_levels(desc: &ImageDesc) -> (Vec<ImageCopy>, u64) {
    let mut offset = 0u64;
    let regions = (0..desc.mip_levels)
        .map(|level| {
            let at = offset.next_multiple_of(desc.format.copy_offset_alignment());
            let region = ImageCopy::whole_level(desc, level, at);
            offset = at + region.packed_bytes(desc.format).unwrap();
            region
        })
        .collect();
    (regions, offset)
}

/// The texels of `regions` (from [`whole_levels`]) in `staged`, packed without the alignment
/// gaps: what [`read_image`] returns.
fn packed_levels(desc: &ImageDesc, regions: &[ImageCopy], staged: &[u8]) -> Vec<u8> {
    regions
        .iter()
        .flat_map(|r| {
            let start = r.buffer_offset as usize;
            &staged[start..start + r.packed_bytes(desc.format).unwrap() as usize]
        })
        .copied()
        .collect()
}

/// memkit's own read-back ([`read_image`]) at the next value, waited for.
fn memkit_read(device: &VulkanDevice, image: &TestImage) -> Result<Vec<u8>, DeviceError> {
    let value = device.last_submitted_value() + 1;
    // SAFETY: the image is alive and was made with `desc`; memkit uploaded into all of it and
    // every user left it in the layout after upload (or, under a release, returned it); the
    // value is the next one and this thread is the only submitter.
    unsafe { read_image(device, image.image, &image.desc, value, 10 * SECOND) }
}

/// Submits `commands` at the next value through `queue` and returns the value.
fn upload<D: ImageCopyQueue<Buffer = vk::Buffer, Image = vk::Image>>(
    queue: &D,
    next_value: u64,
    commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
) -> u64 {
    // SAFETY: buffers and images are alive and bound, each desc is its image's, source ranges
    // lie inside the staging buffers and no two boxes of a command overlap, host writes are done
    // (coherent memory), `keep_contents` only after an upload that the application's readback
    // left in the layout after upload again, and nothing else uses the images meanwhile.
    unsafe { queue.submit_image_copies(commands, next_value) }.unwrap();
    next_value
}

fn map_layout(layout: ImageLayout) -> vk::ImageLayout {
    match layout {
        ImageLayout::ShaderReadOnlyOptimal => vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        ImageLayout::General => vk::ImageLayout::GENERAL,
    }
}

fn map_region(region: &ImageCopy) -> vk::BufferImageCopy {
    vk::BufferImageCopy {
        buffer_offset: region.buffer_offset,
        buffer_row_length: 0,
        buffer_image_height: 0,
        image_subresource: vk::ImageSubresourceLayers {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: region.mip_level,
            base_array_layer: region.base_array_layer,
            layer_count: region.layer_count,
        },
        image_offset: vk::Offset3D {
            x: region.offset[0] as i32,
            y: region.offset[1] as i32,
            z: region.offset[2] as i32,
        },
        image_extent: vk::Extent3D {
            width: region.extent[0],
            height: region.extent[1],
            depth: region.extent[2],
        },
    }
}

fn whole_image_barrier(
    image: vk::Image,
    old_layout: vk::ImageLayout,
    new_layout: vk::ImageLayout,
    src_access: vk::AccessFlags,
    dst_access: vk::AccessFlags,
) -> vk::ImageMemoryBarrier<'static> {
    vk::ImageMemoryBarrier::default()
        .old_layout(old_layout)
        .new_layout(new_layout)
        .src_access_mask(src_access)
        .dst_access_mask(dst_access)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .image(image)
        .subresource_range(vk::ImageSubresourceRange {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            base_mip_level: 0,
            level_count: vk::REMAINING_MIP_LEVELS,
            base_array_layer: 0,
            layer_count: vk::REMAINING_ARRAY_LAYERS,
        })
}

/// The application's side: after the upload of `value`, copies `regions` of `image` into a
/// new host-visible buffer of `size` bytes, on its own command buffer and main queue, and
/// returns the bytes. The submission waits on memkit's timeline semaphore at `value` (the host
/// waits instead with the fence-pool fallback); the image goes from the layout after upload to
/// the transfer source layout and back, ready for a later upload that keeps its contents.
fn read_back(
    h: &HeadlessDevice,
    image: &TestImage,
    regions: &[ImageCopy],
    size: u64,
    value: u64,
) -> Vec<u8> {
    read_back_image(h, image.image, &image.desc, regions, size, value)
}

/// [`read_back_image`] of an image memkit released to the application's family: the
/// application acquires it first (with `ownership`, the pair as the application sees it) and
/// returns it to memkit's family after reading, ready for an upload that keeps its contents.
fn read_back_owned(
    h: &HeadlessDevice,
    image: &TestImage,
    regions: &[ImageCopy],
    size: u64,
    value: u64,
    ownership: OwnershipTransfer,
) -> Vec<u8> {
    read_back_with(
        h,
        image.image,
        &image.desc,
        regions,
        size,
        value,
        Some(ownership),
    )
}

/// [`read_back`] for any image of `h` made with `desc` (one a coordinator made, say).
fn read_back_image(
    h: &HeadlessDevice,
    image: vk::Image,
    desc: &ImageDesc,
    regions: &[ImageCopy],
    size: u64,
    value: u64,
) -> Vec<u8> {
    read_back_with(h, image, desc, regions, size, value, None)
}

fn read_back_with(
    h: &HeadlessDevice,
    image: vk::Image,
    desc: &ImageDesc,
    regions: &[ImageCopy],
    size: u64,
    value: u64,
    ownership: Option<OwnershipTransfer>,
) -> Vec<u8> {
    let memkit = h.device();
    let device = h.ash_device();
    let readback = MappedBuffer::new(memkit, size, BufferUsage::TRANSFER_DST);
    let after = map_layout(desc.layout_after_upload());
    let raw_regions: Vec<_> = regions.iter().map(map_region).collect();
    let app = AppCommands::new(h);
    app.begin(h);
    let cmd = app.cmd;
    // SAFETY: recording a live image (in the layout after upload once `value` completed) and
    // buffer into the application's command buffer.
    unsafe {
        if let Some(ownership) = ownership {
            let acquire = [image_acquire_barrier(
                ownership,
                image,
                desc,
                vk::AccessFlags::TRANSFER_READ,
            )];
            record_image_acquire(device, cmd, &acquire, vk::PipelineStageFlags::TRANSFER);
        }
        // The semaphore wait (or the host's) made the upload visible; only the layout changes.
        record_app_read(device, cmd, image, after, readback.buffer, &raw_regions);
        if let Some(ownership) = ownership {
            let give_back = [image_return_barrier(
                ownership,
                image,
                desc,
                vk::AccessFlags::empty(),
            )];
            record_image_return(device, cmd, &give_back, vk::PipelineStageFlags::TRANSFER);
        }
    }
    // Waits for memkit's `value` on the GPU (or on the host, without a timeline semaphore).
    app.submit_and_wait(h, Some(value));
    app.destroy(h);
    assert!(memkit.completed_value().unwrap() >= value);
    let bytes = readback.read(memkit);
    readback.destroy(memkit);
    bytes
}

/// The application's copy of `regions` of `image` (in `after`, the layout after upload) into
/// `readback`, recorded into `cmd`: to the transfer source layout (after every earlier command,
/// nothing to make available: memkit's uploads did), the copy, back to `after`, and the copy's
/// writes to the host.
fn record_app_read(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    image: vk::Image,
    after: vk::ImageLayout,
    readback: vk::Buffer,
    regions: &[vk::BufferImageCopy],
) {
    // SAFETY: `cmd` is recording on the main family; the image is alive, in `after` and a
    // transfer source; the buffer is alive, a transfer destination, and holds every region.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::ALL_COMMANDS,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[whole_image_barrier(
                image,
                after,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                vk::AccessFlags::empty(),
                vk::AccessFlags::TRANSFER_READ,
            )],
        );
        device.cmd_copy_image_to_buffer(
            cmd,
            image,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            readback,
            regions,
        );
        // Back to the layout after upload (memkit's next upload waits for everything before
        // it on the queue), and the copy's writes to the host.
        let host = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)];
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &host,
            &[],
            &[whole_image_barrier(
                image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                after,
                vk::AccessFlags::empty(),
                vk::AccessFlags::empty(),
            )],
        );
    }
}

/// Asserts that `back` is `expected` byte for byte; when not, says how many bytes differ rather
/// than printing megabytes of both.
#[track_caller]
fn assert_texels_equal(back: &[u8], expected: &[u8], what: &str) {
    let differing = back.iter().zip(expected).filter(|(a, b)| a != b).count();
    assert!(
        back.len() == expected.len() && differing == 0,
        "{what}: {differing} bytes differ (read back {}, expected {})",
        back.len(),
        expected.len()
    );
}

/// Where texel block `[x, y, z]` (in blocks: texels for an uncompressed format) of `layer`
/// lies in `region`'s source, at its pitches.
fn block_offset(region: &ImageCopy, format: ImageFormat, layer: u32, [x, y, z]: [u32; 3]) -> usize {
    let [row, slice, layers] = region.buffer_pitches(format).unwrap();
    let at = region.buffer_offset
        + u64::from(layer - region.base_array_layer) * layers
        + u64::from(z) * slice
        + u64::from(y) * row
        + u64::from(x) * u64::from(format.block_bytes());
    at as usize
}

/// `data` (every level of `desc` as [`whole_levels`] packs it) with layer `layer`'s `[w, h]`
/// blocks at block `[x, y]` of level 0 taken from `patch`'s source bytes `patch_data`.
fn patched(
    data: &[u8],
    desc: &ImageDesc,
    patch: &ImageCopy,
    patch_data: &[u8],
    [x0, y0]: [u32; 2],
    [w, h]: [u32; 2],
) -> Vec<u8> {
    let level0 = ImageCopy::whole_level(desc, 0, 0);
    let block = desc.format.block_bytes() as usize;
    let layer = patch.base_array_layer;
    let mut expected = data.to_vec();
    for y in 0..h {
        for x in 0..w {
            let from = block_offset(patch, desc.format, layer, [x, y, 0]);
            let to = block_offset(&level0, desc.format, layer, [x + x0, y + y0, 0]);
            expected[to..to + block].copy_from_slice(&patch_data[from..from + block]);
        }
    }
    assert!(expected != data);
    expected
}

/// The 20 x 11 box at (5, 3) of level 0, layer 1, that both partial re-uploads write, read
/// tightly packed from `buffer_offset`.
fn patch_region(desc: &ImageDesc, buffer_offset: u64) -> ImageCopy {
    ImageCopy {
        buffer_offset,
        base_array_layer: 1,
        layer_count: 1,
        offset: [5, 3, 0],
        extent: [20, 11, 1],
        ..ImageCopy::whole_level(desc, 0, 0)
    }
}

fn rgba_2d_array() -> ImageDesc {
    ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        61,
        37,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
    )
    .with_full_mip_chain()
    .with_array_layers(2)
}

#[test]
fn every_level_and_layer_of_a_2d_array_lands_and_a_partial_reupload_keeps_the_rest() {
    each_timeline_mode(|h| {
        let device = h.device();
        // Sampled: the image ends shader-read-only; storage only: general.
        for usage in [ImageUsage::SAMPLED, ImageUsage::STORAGE] {
            let desc = ImageDesc {
                usage: usage | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
                ..rgba_2d_array()
            };
            assert_eq!(desc.mip_levels, 6);
            let image = TestImage::new(device, desc);
            let (regions, size) = whole_levels(&desc);
            let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
            let data = pattern(size as usize, 11);
            staging.write(device, 0, &data);
            let value = upload(
                device,
                device.last_submitted_value() + 1,
                &[image.command(staging.buffer, false, &regions)],
            );
            let back = read_back(h, &image, &regions, size, value);
            assert!(back == data, "{usage:?}: the texels read back differ");

            // A box of level 0, layer 1, re-uploaded over what is there, read from rows of 27
            // texels (the driver honours the region's `bufferRowLength`).
            let patch = patch_region(&desc, 0).with_buffer_layout(27, 0);
            let patch_bytes = patch.buffer_bytes(desc.format).unwrap();
            assert_eq!(patch_bytes, (10 * 27 + 20) * 4);
            let patch_staging = MappedBuffer::new(device, patch_bytes, BufferUsage::TRANSFER_SRC);
            let patch_data = pattern(patch_bytes as usize, 12);
            patch_staging.write(device, 0, &patch_data);
            let value = upload(
                device,
                value + 1,
                &[image.command(patch_staging.buffer, true, &[patch])],
            );
            let expected = patched(&data, &desc, &patch, &patch_data, [5, 3], [20, 11]);
            let back = read_back(h, &image, &regions, size, value);
            assert_texels_equal(
                &back,
                &expected,
                &format!("{usage:?}: after the partial re-upload"),
            );
            staging.destroy(device);
            patch_staging.destroy(device);
            image.destroy(device);
        }
    });
}

#[test]
fn several_commands_into_one_image_in_one_submission_land_in_order() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let device = h.device();
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC;
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 32, 16, usage);
    let first = TestImage::new(device, desc);
    let other = TestImage::new(device, desc);
    let left = ImageCopy {
        buffer_offset: 0,
        mip_level: 0,
        base_array_layer: 0,
        layer_count: 1,
        offset: [0; 3],
        extent: [16, 16, 1],
        buffer_row_length: 0,
        buffer_image_height: 0,
    };
    let right = ImageCopy {
        buffer_offset: 16 * 16 * 4,
        offset: [16, 0, 0],
        ..left
    };
    // Over the left half's middle: must land after the left half.
    let middle = ImageCopy {
        buffer_offset: 32 * 16 * 4,
        offset: [4, 4, 0],
        extent: [8, 8, 1],
        ..left
    };
    let size = 32 * 16 * 4 + 8 * 8 * 4;
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let data = pattern(size as usize, 21);
    staging.write(device, 0, &data);
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    let left_regions = [left];
    let right_regions = [right];
    let middle_regions = [middle];
    let value = upload(
        device,
        device.last_submitted_value() + 1,
        &[
            first.command(staging.buffer, false, &left_regions),
            other.command(staging.buffer, false, &whole),
            first.command(staging.buffer, true, &right_regions),
            first.command(staging.buffer, true, &middle_regions),
        ],
    );
    let mut expected = vec![0u8; 32 * 16 * 4];
    for (region, x0) in [(left, 0), (right, 16), (middle, 4)] {
        let [w, h, _] = region.extent;
        let y0 = region.offset[1];
        for y in 0..h {
            for x in 0..w {
                let rgba = ImageFormat::Rgba8Unorm;
                let from = block_offset(&region, rgba, 0, [x, y, 0]);
                let to = block_offset(&whole[0], rgba, 0, [x + x0, y + y0, 0]);
                expected[to..to + 4].copy_from_slice(&data[from..from + 4]);
            }
        }
    }
    let image_bytes = (32 * 16 * 4) as u64;
    assert!(read_back(&h, &first, &whole, image_bytes, value) == expected);
    assert!(
        read_back(&h, &other, &whole, image_bytes, value) == data[..image_bytes as usize],
        "the other image of the submission"
    );
    staging.destroy(device);
    first.destroy(device);
    other.destroy(device);
    finish(h);
}

#[test]
fn uploads_and_buffer_copies_keep_submission_order() {
    each_timeline_mode(|h| {
        let device = h.device();
        let desc = ImageDesc::new_2d(
            ImageFormat::Rgba8Unorm,
            16,
            8,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
        );
        let image = TestImage::new(device, desc);
        let size = 16 * 8 * 4;
        let first = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
        let second = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
        let source = MappedBuffer::new(
            device,
            size,
            BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
        );
        let (first_data, second_data) = (pattern(size as usize, 51), pattern(size as usize, 52));
        first.write(device, 0, &first_data);
        second.write(device, 0, &second_data);
        let whole_buffer = [BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size,
        }];
        let whole = [ImageCopy::whole_level(&desc, 0, 0)];
        let copy_into_source = |from: &MappedBuffer, value| {
            let command = [CopyCommand {
                src: from.buffer,
                dst: source.buffer,
                regions: &whole_buffer,
            }];
            // SAFETY: live buffers with the transfer usages; the region lies inside both.
            unsafe { device.submit_copies(&command, value) }.unwrap();
        };
        // Written by a copy, read by the upload, overwritten by the next copy: no waits between.
        let v = device.last_submitted_value();
        copy_into_source(&first, v + 1);
        let uploaded = upload(
            device,
            v + 2,
            &[image.command(source.buffer, false, &whole)],
        );
        copy_into_source(&second, v + 3);
        assert_eq!(
            device.wait(v + 3, 10 * SECOND).unwrap(),
            WaitStatus::Completed
        );
        assert!(read_back(h, &image, &whole, size, uploaded) == first_data);
        assert!(source.read(device) == second_data);
        for buffer in [first, second, source] {
            buffer.destroy(device);
        }
        image.destroy(device);
    });
}

#[test]
fn a_3d_image_lands_through_the_shared_device() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let shared = SharedHeadlessDevice::new(h);
    let device = shared.device();
    let desc = ImageDesc {
        depth: 4,
        ..ImageDesc::new_2d(
            ImageFormat::Rgba8Unorm,
            8,
            8,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
        )
    }
    .with_full_mip_chain();
    assert_eq!(desc.mip_levels, 4);
    let image = TestImage::new(device, desc);
    let (regions, size) = whole_levels(&desc);
    assert_eq!(size, (8 * 8 * 4 + 4 * 4 * 2 + 2 * 2 + 1) * 4);
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let data = pattern(size as usize, 31);
    staging.write(device, 0, &data);
    assert_eq!(
        shared.image_copy_granularity(),
        device.image_copy_granularity()
    );
    let value = upload(
        &shared,
        device.last_submitted_value() + 1,
        &[image.command(staging.buffer, false, &regions)],
    );
    assert!(read_back(&shared, &image, &regions, size, value) == data);
    staging.destroy(device);
    image.destroy(device);
    finish(shared.try_unwrap().unwrap());
}

#[test]
fn bad_regions_are_refused_before_anything_is_submitted() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let device = h.device();
    let desc = rgba_2d_array();
    let image = TestImage::new(device, desc);
    // Sampled only: no transfer destination.
    let sampled_desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, ImageUsage::SAMPLED);
    let sampled = TestImage::new(device, sampled_desc);
    let (regions, size) = whole_levels(&desc);
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let data = pattern(size as usize, 41);
    staging.write(device, 0, &data);

    let good = regions[0];
    let bad = [
        (
            ImageCopy {
                mip_level: 6,
                ..good
            },
            ImageCopyError::NoSuchLevel,
        ),
        (
            ImageCopy {
                base_array_layer: 1,
                ..good
            },
            ImageCopyError::NoSuchLayer,
        ),
        (
            ImageCopy {
                layer_count: 0,
                ..good
            },
            ImageCopyError::NoSuchLayer,
        ),
        (
            ImageCopy {
                extent: [61, 0, 1],
                ..good
            },
            ImageCopyError::ZeroExtent,
        ),
        (
            ImageCopy {
                offset: [1, 0, 0],
                ..good
            },
            ImageCopyError::OutOfBounds,
        ),
        (
            ImageCopy {
                extent: [61, 37, 2],
                ..good
            },
            ImageCopyError::OutOfBounds,
        ),
        (
            ImageCopy {
                buffer_offset: 2,
                ..good
            },
            ImageCopyError::MisalignedBufferOffset,
        ),
    ];
    let next = device.last_submitted_value() + 1;
    let before = device.completed_value().unwrap();
    for (region, error) in bad {
        let bad_regions = [regions[1], region];
        // A good command first: all or nothing.
        let commands = [
            image.command(staging.buffer, false, &regions),
            image.command(staging.buffer, true, &bad_regions),
        ];
        // SAFETY: refused before anything reaches the driver.
        let result = unsafe { device.submit_image_copies(&commands, next) };
        assert_eq!(
            result,
            Err(DeviceError::InvalidImageCopy(error)),
            "{region:?}"
        );
        assert_eq!(device.last_submitted_value(), next - 1);
    }
    let whole_sampled = [ImageCopy::whole_level(&sampled_desc, 0, 0)];
    // SAFETY: as above.
    let result = unsafe {
        device.submit_image_copies(
            &[sampled.command(staging.buffer, false, &whole_sampled)],
            next,
        )
    };
    assert_eq!(
        result,
        Err(DeviceError::InvalidImageCopy(
            ImageCopyError::NotTransferDst
        ))
    );
    // A value that does not rise, with good regions.
    // SAFETY: as above.
    let result = unsafe {
        device.submit_image_copies(&[image.command(staging.buffer, false, &regions)], next - 1)
    };
    assert_eq!(
        result,
        Err(DeviceError::InvalidArgument(
            InvalidArgument::TimelineNotIncreasing
        ))
    );
    assert_eq!(device.last_submitted_value(), next - 1);
    assert_eq!(device.completed_value().unwrap(), before);

    // The same value, now valid, goes through and lands.
    let value = upload(
        device,
        next,
        &[image.command(staging.buffer, false, &regions)],
    );
    assert_eq!(value, next);
    assert_eq!(device.last_submitted_value(), next);
    assert!(read_back(&h, &image, &regions, size, value) == data);

    // After a loss, nothing more.
    device.simulate_device_lost();
    // SAFETY: refused before anything reaches the driver.
    let result = unsafe {
        device.submit_image_copies(&[image.command(staging.buffer, true, &regions)], next + 1)
    };
    assert_eq!(result, Err(DeviceError::DeviceLost));
    staging.destroy(device);
    image.destroy(device);
    sampled.destroy(device);
    finish(h);
}

#[test]
fn the_granularity_and_sharing_are_the_transfer_family_s() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let device = h.device();
    // SAFETY: the physical device belongs to the instance.
    let families = unsafe {
        h.instance()
            .get_physical_device_queue_family_properties(device.physical_device())
    };
    let g = families[device.transfer_queue().family as usize].min_image_transfer_granularity;
    assert_eq!(
        device.image_copy_granularity(),
        [g.width, g.height, g.depth]
    );
    // Where memkit copies on a family of its own, images (as buffers) are shared with the main
    // queue's: the other tests read uploads back there.
    let (main, transfer) = (h.main_queue().family, device.transfer_queue().family);
    let expected: &[u32] = match main.cmp(&transfer) {
        std::cmp::Ordering::Equal => &[],
        std::cmp::Ordering::Less => &[main, transfer],
        std::cmp::Ordering::Greater => &[transfer, main],
    };
    assert_eq!(device.concurrent_families(), expected);
    eprintln!(
        "transfer family {transfer} (main {main}), granularity {:?}, concurrent {expected:?}",
        device.image_copy_granularity()
    );
    finish(h);
}

/// An engine that owns its submissions records memkit's uploads into its own command buffer
/// ([`ImageCopyRecorder`], reused) on its main queue, reads the images back in the same
/// command buffer after one barrier of its own, and finds every texel: memkit's queue is never
/// used. A bad region is refused with nothing recorded.
#[test]
fn uploads_recorded_into_the_applications_command_buffer() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let device = h.device();
    let ash_device = h.ash_device();
    let desc = rgba_2d_array();
    let (regions, size) = whole_levels(&desc);
    let raw_regions: Vec<_> = regions.iter().map(map_region).collect();
    let first = TestImage::new(device, desc);
    let other = TestImage::new(device, desc);
    let patch = patch_region(&desc, size);
    let patch_bytes = patch.buffer_bytes(desc.format).unwrap();
    let staging = MappedBuffer::new(device, size + patch_bytes, BufferUsage::TRANSFER_SRC);
    let readbacks = [first.image, other.image]
        .map(|_| MappedBuffer::new(device, size, BufferUsage::TRANSFER_DST));
    let after = map_layout(desc.layout_after_upload());
    let app = AppCommands::new(&h);
    let cmd = app.cmd;
    let mut recorder = ImageCopyRecorder::new();
    // Twice, with different texels: the recorder is reused, and the second round's patch keeps
    // what the first round left.
    let mut expected_first = Vec::new();
    for (round, seed) in [(0, 61u8), (1, 62)] {
        let staged = pattern((size + patch_bytes) as usize, seed);
        staging.write(device, 0, &staged);
        let data = &staged[..size as usize];
        let patch_regions = [patch];
        // Round 0: `first` whole then patched, `other` whole; round 1: only a patch of `first`.
        let commands = [
            first.command(staging.buffer, false, &regions),
            other.command(staging.buffer, false, &regions),
            first.command(staging.buffer, true, &patch_regions),
        ];
        let commands = if round == 0 {
            &commands[..]
        } else {
            &commands[2..]
        };
        app.begin(&h);
        let bad = [ImageCopy {
            extent: [desc.width + 1, 1, 1],
            ..regions[0]
        }];
        // SAFETY: refused before anything is recorded.
        let refused = unsafe {
            recorder.record(
                ash_device,
                cmd,
                &[first.command(staging.buffer, true, &bad)],
                [1, 1, 1],
                None,
            )
        };
        assert_eq!(refused, Err(ImageCopyError::OutOfBounds));
        // SAFETY: recording on the main family (graphics: granularity 1), which may use both
        // images (concurrent sharing, or memkit copies there too); buffers and images alive and
        // bound until the fence below; `first` is in the layout after upload for round 1's
        // patch (round 0 left it there).
        unsafe { recorder.record(ash_device, cmd, commands, [1, 1, 1], None) }.unwrap();
        for (image, readback) in [first.image, other.image].iter().zip(&readbacks) {
            record_app_read(
                ash_device,
                cmd,
                *image,
                after,
                readback.buffer,
                &raw_regions,
            );
        }
        app.submit_and_wait(&h, None);
        let base = if round == 0 {
            data.to_vec()
        } else {
            expected_first.clone()
        };
        // The patch reads from `size` on in the staging buffer.
        expected_first = patched(&base, &desc, &patch, &staged, [5, 3], [20, 11]);
        assert_texels_equal(
            &readbacks[0].read(device),
            &expected_first,
            &format!("round {round}: the patched image"),
        );
        if round == 0 {
            assert_texels_equal(&readbacks[1].read(device), data, "the other image");
        }
    }
    assert_eq!(device.command_buffer_count(), 0, "memkit's queue was used");
    app.destroy(&h);
    for b in readbacks {
        b.destroy(device);
    }
    staging.destroy(device);
    first.destroy(device);
    other.destroy(device);
    finish(h);
}

/// memkit's own read-back, [`read_image`], on each kind of image the uploads cover: a 2D array
/// with every level (sampled, so it ends shader-read-only), an R8 image whose levels are not
/// multiples of 4 bytes (each level lands at its own 4-byte-aligned offset, as a transfer-only
/// queue needs, and comes back packed), BC7 with partial blocks, and a 3D image in `GENERAL`
/// (storage). After each read the image is in the layout after upload again: the application's
/// own read, and a partial re-upload that keeps the rest, see the same texels.
#[test]
fn memkit_reads_back_every_level_of_each_kind_of_image() {
    each_timeline_mode(|h| {
        let device = h.device();
        let usage = ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC;
        let descs = [
            rgba_2d_array(),
            ImageDesc::new_2d(ImageFormat::R8Unorm, 13, 7, usage | ImageUsage::SAMPLED)
                .with_full_mip_chain(),
            ImageDesc::new_2d(ImageFormat::Bc7Srgb, 70, 38, usage | ImageUsage::SAMPLED)
                .with_full_mip_chain()
                .with_array_layers(2),
            ImageDesc {
                depth: 4,
                ..ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, usage | ImageUsage::STORAGE)
            }
            .with_full_mip_chain(),
        ];
        for (seed, desc) in (50..).zip(descs) {
            let what = format!(
                "{:?} {}x{}x{}",
                desc.format, desc.width, desc.height, desc.depth
            );
            let image = TestImage::new(device, desc);
            let (regions, size) = whole_levels(&desc);
            let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
            let data = pattern(size as usize, seed);
            staging.write(device, 0, &data);
            upload(
                device,
                device.last_submitted_value() + 1,
                &[image.command(staging.buffer, false, &regions)],
            );
            let packed = packed_levels(&desc, &regions, &data);
            assert_eq!(packed.len() as u64, desc.packed_bytes());
            let back = memkit_read(device, &image).unwrap();
            assert_texels_equal(&back, &packed, &what);
            let value = device.last_submitted_value();
            let back = read_back(h, &image, &regions, size, value);
            assert_texels_equal(
                &packed_levels(&desc, &regions, &back),
                &packed,
                &format!("{what}: the application's read after"),
            );

            // New texels for level 0's first layer (all of its depth), the rest kept.
            let layer0 = ImageCopy {
                buffer_offset: 0,
                layer_count: 1,
                ..regions[0]
            };
            let layer0_bytes = layer0.packed_bytes(desc.format).unwrap();
            let patch = MappedBuffer::new(device, layer0_bytes, BufferUsage::TRANSFER_SRC);
            let patch_data = pattern(layer0_bytes as usize, seed + 100);
            patch.write(device, 0, &patch_data);
            upload(
                device,
                value + 1,
                &[image.command(patch.buffer, true, &[layer0])],
            );
            let mut expected = packed;
            expected[..patch_data.len()].copy_from_slice(&patch_data);
            let back = memkit_read(device, &image).unwrap();
            assert_texels_equal(&back, &expected, &format!("{what}: after a re-upload"));
            patch.destroy(device);
            staging.destroy(device);
            image.destroy(device);
        }
    });
}

/// What [`read_image`] refuses, with nothing submitted: an image that is not a transfer source,
/// one that uploads cannot reach, and a value the timeline already passed.
#[test]
fn memkit_refuses_reads_it_cannot_make_before_submitting() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let device = h.device();
    let sampled = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST;
    let no_source = TestImage::new(
        device,
        ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, sampled),
    );
    let before = device.last_submitted_value();
    assert_eq!(
        memkit_read(device, &no_source),
        Err(DeviceError::InvalidImageCopy(
            ImageCopyError::NotTransferSrc
        ))
    );
    let attachment = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        8,
        8,
        ImageUsage::COLOR_ATTACHMENT | ImageUsage::TRANSFER_SRC,
    )
    .with_samples(4);
    let multisampled = TestImage::new(device, attachment);
    assert_eq!(
        memkit_read(device, &multisampled),
        Err(DeviceError::InvalidImageCopy(
            ImageCopyError::NotTransferDst
        ))
    );
    let readable = ImageDesc {
        usage: attachment.usage | ImageUsage::TRANSFER_DST,
        ..attachment
    };
    let multisampled_dst = TestImage::new(device, readable);
    assert_eq!(
        memkit_read(device, &multisampled_dst),
        Err(DeviceError::InvalidImageCopy(ImageCopyError::Multisampled))
    );
    let image = TestImage::new(device, rgba_2d_array());
    // SAFETY: refused before anything is recorded (the value does not rise).
    let stale = unsafe { read_image(device, image.image, &image.desc, before, SECOND) };
    assert_eq!(
        stale,
        Err(DeviceError::InvalidArgument(
            InvalidArgument::TimelineNotIncreasing
        ))
    );
    assert_eq!(
        device.last_submitted_value(),
        before,
        "nothing was submitted"
    );
    for i in [no_source, multisampled, multisampled_dst, image] {
        i.destroy(device);
    }
    finish(h);
}

/// Exclusive images under `release_to_family`: each submission releases every image it uploads
/// into once, after its last command; the application acquires them (one barrier per image),
/// reads them back and returns one for a partial re-upload, which memkit reclaims.
/// - Where memkit copies on a transfer-only family (NVIDIA), the images go to the main family
///   and back, and validation matches every release with its acquire.
/// - Everywhere (lavapipe has one family), they also go out to `VK_QUEUE_FAMILY_EXTERNAL` and
///   come back from it: each barrier is checked, but the layer matches no external halves.
#[test]
fn released_images_are_acquired_read_back_and_returned_for_a_partial_reupload() {
    let configs = TIMELINE_MODES.into_iter().flat_map(|timeline| {
        [
            HeadlessConfig {
                timeline,
                release_to_family: Some(vk::QUEUE_FAMILY_EXTERNAL),
                ..HeadlessConfig::default()
            },
            HeadlessConfig {
                timeline,
                release_to_main_family: true,
                ..HeadlessConfig::default()
            },
        ]
    });
    for config in configs {
        let Some(h) = headless_with(config) else {
            return;
        };
        let device = h.device();
        let Some(transfer) = device.ownership_transfer() else {
            eprintln!("one queue family here (lavapipe): nothing to release to the main family");
            finish(h);
            continue;
        };
        assert!(device.concurrent_families().is_empty());
        // The pair as the application sees it: from memkit's family to its own, or from
        // outside the device.
        let app = if transfer.dst_family == vk::QUEUE_FAMILY_EXTERNAL {
            OwnershipTransfer {
                src_family: vk::QUEUE_FAMILY_EXTERNAL,
                dst_family: h.main_queue().family,
            }
        } else {
            assert_eq!(transfer.dst_family, h.main_queue().family);
            eprintln!(
                "images move from family {} to family {} and back",
                transfer.src_family, transfer.dst_family
            );
            transfer
        };
        let desc = rgba_2d_array();
        let (regions, size) = whole_levels(&desc);
        let first = TestImage::new(device, desc);
        let other = TestImage::new(device, desc);
        let patch = patch_region(&desc, 0);
        let patch_bytes = patch.buffer_bytes(desc.format).unwrap();
        let staging = MappedBuffer::new(device, size + patch_bytes, BufferUsage::TRANSFER_SRC);
        let data = pattern((size + patch_bytes) as usize, 31);
        staging.write(device, 0, &data);
        let (data, patch_data) = data.split_at(size as usize);
        let patch_in_staging = [ImageCopy {
            buffer_offset: size,
            ..patch
        }];

        // One submission: `first` twice (whole, then the patch over it), `other` once.
        let commands = [
            first.command(staging.buffer, false, &regions),
            other.command(staging.buffer, false, &regions),
            first.command(staging.buffer, true, &patch_in_staging),
        ];
        let value = upload(device, device.last_submitted_value() + 1, &commands);
        let mut acquires = Vec::new();
        device.image_acquire_barriers(&commands, vk::AccessFlags::SHADER_READ, &mut acquires);
        let acquired: Vec<_> = acquires.iter().map(|b| b.image).collect();
        assert_eq!(acquired, [first.image, other.image]);
        assert!(acquires.iter().all(|b| {
            (b.src_queue_family_index, b.dst_queue_family_index)
                == (transfer.src_family, transfer.dst_family)
        }));
        let expected = patched(data, &desc, &patch, patch_data, [5, 3], [20, 11]);
        let back = read_back_owned(&h, &first, &regions, size, value, app);
        assert!(back == expected, "the patched image read back differs");
        let back = read_back_owned(&h, &other, &regions, size, value, app);
        assert!(back == data, "the other image read back differs");

        // `first` was returned: a patch that keeps the rest reclaims it.
        let second_patch = [ImageCopy {
            buffer_offset: 0,
            ..patch
        }];
        let value = upload(
            device,
            value + 1,
            &[first.command(staging.buffer, true, &second_patch)],
        );
        let expected = patched(&expected, &desc, &second_patch[0], data, [5, 3], [20, 11]);
        let back = read_back_owned(&h, &first, &regions, size, value, app);
        assert_texels_equal(&back, &expected, "after the reclaimed re-upload");

        // Returned again: memkit reads it back (reclaim, copy, release), and the application
        // acquires it once more and finds the same texels.
        let back = memkit_read(device, &first).unwrap();
        assert_texels_equal(&back, &expected, "memkit's read of the returned image");
        let value = device.last_submitted_value();
        let back = read_back_owned(&h, &first, &regions, size, value, app);
        assert_texels_equal(&back, &expected, "after memkit's read, acquired again");
        staging.destroy(device);
        first.destroy(device);
        other.destroy(device);
        finish(h);
    }
}

/// The zero-message checks above mean something only while synchronization validation runs:
/// two copies into the same texels with no barrier between them must be reported.
#[test]
fn synchronization_validation_reports_an_unordered_pair_of_copies() {
    let Some(h) = headless() else { return };
    let memkit = h.device();
    let device = h.ash_device();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, ImageUsage::TRANSFER_DST);
    let image = TestImage::new(memkit, desc);
    let staging = MappedBuffer::new(memkit, 8 * 8 * 4, BufferUsage::TRANSFER_SRC);
    let region = [map_region(&ImageCopy::whole_level(&desc, 0, 0))];
    let pool_info = vk::CommandPoolCreateInfo::default().queue_family_index(h.main_queue().family);
    // SAFETY: valid infos on a live device; the image is moved to the layout the copies name;
    // the command buffer is only recorded, never submitted, and freed with its pool.
    unsafe {
        let pool = device.create_command_pool(&pool_info, None).unwrap();
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        let cmd = device.allocate_command_buffers(&alloc).unwrap()[0];
        device
            .begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default())
            .unwrap();
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &[whole_image_barrier(
                image.image,
                vk::ImageLayout::UNDEFINED,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                vk::AccessFlags::empty(),
                vk::AccessFlags::TRANSFER_WRITE,
            )],
        );
        for _ in 0..2 {
            device.cmd_copy_buffer_to_image(
                cmd,
                staging.buffer,
                image.image,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &region,
            );
        }
        device.end_command_buffer(cmd).unwrap();
        device.destroy_command_pool(pool, None);
    }
    staging.destroy(memkit);
    image.destroy(memkit);
    let messages = h.finish();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("SYNC-HAZARD-WRITE-AFTER-WRITE")),
        "synchronization validation is off: {messages:#?}"
    );
}

/// With the default ring the texture goes in one submission; with a 64 KiB ring of 4 KiB
/// uploads it streams in row bands, several submissions into one image, each keeping what the
/// ones before it wrote.
#[test]
fn the_coordinator_fills_a_texture_that_the_application_reads_back_and_patches() {
    let small_ring = CoordinatorConfig {
        staging_ring_size: 64 << 10,
        max_ring_upload: 4096,
        ..CoordinatorConfig::default()
    };
    let configs = [CoordinatorConfig::default(), small_ring];
    for (timeline, config) in TIMELINE_MODES
        .into_iter()
        .flat_map(|t| configs.iter().map(move |c| (t, *c)))
    {
        let Some(h) = concurrent_device(timeline) else {
            return;
        };
        let shared = SharedHeadlessDevice::new(h);
        let c = Coordinator::new(shared.clone(), config).unwrap();
        let desc = rgba_2d_array();
        let (regions, size) = whole_levels(&desc);
        let data = pattern(size as usize, 21);
        let (image, ticket) = c
            .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &data)
            .unwrap();
        ticket.wait().unwrap();
        let value = ticket.value().unwrap();
        let back = read_back_image(&shared, image.raw(), &desc, &regions, size, value);
        assert!(back == data, "{timeline:?}: the texels read back differ");

        // A box of level 0, layer 1, from an offset of the caller's bytes that no copy could
        // read from directly (not a multiple of 4), in rows of 23 texels: the coordinator
        // stages it aligned and packed.
        let patch = patch_region(&desc, 2).with_buffer_layout(23, 0);
        let patch_data = pattern(2 + (10 * 23 + 20) * 4, 22);
        let patch_ticket = c.upload_image(&image, &[patch], &patch_data).unwrap();
        patch_ticket.wait().unwrap();
        let expected = patched(&data, &desc, &patch, &patch_data, [5, 3], [20, 11]);
        let value = patch_ticket.value().unwrap();
        let back = read_back_image(&shared, image.raw(), &desc, &regions, size, value);
        assert_texels_equal(&back, &expected, &format!("{timeline:?}: after the patch"));
        drop((image, ticket, patch_ticket));
        let stats = c.shutdown();
        if config.max_ring_upload == small_ring.max_ring_upload {
            // 2 layers x 3 bands of level 0, the other levels, the patch.
            assert!(stats.submissions >= 8, "{} submissions", stats.submissions);
        }
        assert_eq!(
            stats.buffers_created, 0,
            "every upload went through the ring"
        );
        assert_eq!(
            (
                stats.images_created,
                stats.images_destroyed,
                stats.leaked_images
            ),
            (1, 1, 0)
        );
        finish_shared(shared);
    }
}

#[test]
fn compressed_textures_land_block_for_block_through_the_device_and_the_coordinator() {
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let shared = SharedHeadlessDevice::new(h);
    let device = shared.device();
    // 70 x 38 texels, 2 layers, full chain: level 0 is 18 x 10 blocks, the last column and row
    // partial, and every level down to 1 x 1 is a partial block.
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC;
    let desc = ImageDesc::new_2d(ImageFormat::Bc7Srgb, 70, 38, usage)
        .with_full_mip_chain()
        .with_array_layers(2);
    let image = TestImage::new(device, desc);
    let (regions, size) = whole_levels(&desc);
    assert_eq!(size, desc.packed_bytes());
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let data = pattern(size as usize, 41);
    staging.write(device, 0, &data);
    let value = upload(
        device,
        device.last_submitted_value() + 1,
        &[image.command(staging.buffer, false, &regions)],
    );
    let back = read_back(&shared, &image, &regions, size, value);
    assert!(back == data, "the blocks read back differ");

    // The box from texel (56, 24) to the level's edge in layer 1 (4 x 4 blocks, the last
    // column and row partial), read from rows of 24 texels (6 blocks).
    let patch = ImageCopy {
        base_array_layer: 1,
        layer_count: 1,
        offset: [56, 24, 0],
        extent: [14, 14, 1],
        ..ImageCopy::whole_level(&desc, 0, 0)
    }
    .with_buffer_layout(24, 0);
    let patch_bytes = patch.buffer_bytes(desc.format).unwrap();
    assert_eq!(patch_bytes, (3 * 6 + 4) * 16);
    let patch_staging = MappedBuffer::new(device, patch_bytes, BufferUsage::TRANSFER_SRC);
    let patch_data = pattern(patch_bytes as usize, 42);
    patch_staging.write(device, 0, &patch_data);
    let value = upload(
        device,
        value + 1,
        &[image.command(patch_staging.buffer, true, &[patch])],
    );
    let expected = patched(&data, &desc, &patch, &patch_data, [14, 6], [4, 4]);
    let back = read_back(&shared, &image, &regions, size, value);
    assert_texels_equal(&back, &expected, "after the partial re-upload");
    staging.destroy(device);
    patch_staging.destroy(device);
    image.destroy(device);

    // Through a coordinator whose ring uploads are at most 1 KiB: level 0's layers go in bands
    // of block rows, and a patch from an unaligned offset of the caller's bytes is staged
    // aligned and packed.
    let config = CoordinatorConfig {
        staging_ring_size: 64 << 10,
        max_ring_upload: 1024,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(shared.clone(), config).unwrap();
    let data = pattern(size as usize, 43);
    let (image, ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &data)
        .unwrap();
    ticket.wait().unwrap();
    let back = read_back_image(
        &shared,
        image.raw(),
        &desc,
        &regions,
        size,
        ticket.value().unwrap(),
    );
    assert!(back == data, "the coordinator's blocks read back differ");
    let patch = ImageCopy {
        buffer_offset: 3,
        ..patch
    };
    let patch_data = pattern(3 + patch_bytes as usize, 44);
    let patched_ticket = c.upload_image(&image, &[patch], &patch_data).unwrap();
    patched_ticket.wait().unwrap();
    let expected = patched(&data, &desc, &patch, &patch_data, [14, 6], [4, 4]);
    let value = patched_ticket.value().unwrap();
    let back = read_back_image(&shared, image.raw(), &desc, &regions, size, value);
    assert_texels_equal(&back, &expected, "after the coordinator's patch");
    drop((image, ticket, patched_ticket));
    let stats = c.shutdown();
    // 2 layers x 3 bands of level 0 (288-byte block rows, 3 to a band), the rest, the patch.
    assert!(stats.submissions >= 8, "{} submissions", stats.submissions);
    assert_eq!(
        stats.buffers_created, 0,
        "every upload went through the ring"
    );
    finish_shared(shared);
}

/// The coordinator's own image read-back (`Coordinator::read_back_image`) on the driver, under
/// validation and synchronization validation: every level of an RGBA array and of a BC7 texture
/// reads back as uploaded; a read of a patched box at a padded row length lands at its pitches;
/// a read queued between two uploads of one image sees the first and not the second (the
/// transitions around the copy order it against both), and reads run back to back.
#[test]
fn the_coordinator_reads_its_textures_back_in_queue_order_with_their_uploads() {
    let bc7 = ImageDesc::new_2d(
        ImageFormat::Bc7Srgb,
        70,
        38,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
    )
    .with_full_mip_chain()
    .with_array_layers(2);
    for timeline in TIMELINE_MODES {
        let Some(h) = concurrent_device(timeline) else {
            return;
        };
        let shared = SharedHeadlessDevice::new(h);
        let c = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
        for (seed, desc) in [(51, rgba_2d_array()), (52, bc7)] {
            let (regions, size) = whole_levels(&desc);
            assert_eq!(size, desc.packed_bytes(), "levels pack without gaps");
            let data = pattern(size as usize, seed);
            let (image, _) = c
                .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &data)
                .unwrap();
            // Queued right behind the upload, never waited for in between.
            let back = c.read_back_image(&image, &regions).unwrap();
            assert!(
                back.wait().unwrap() == data,
                "{timeline:?} {:?}: the texels read back differ",
                desc.format
            );
        }
        let desc = rgba_2d_array();
        let (regions, size) = whole_levels(&desc);
        let data = pattern(size as usize, 53);
        let (image, _) = c
            .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &data)
            .unwrap();
        let before = c.read_back_image(&image, &regions).unwrap();
        // The 20 x 11 box at (5, 3) of level 0, layer 1, uploaded from rows of 23 texels and
        // read back into rows of 23 texels from offset 8.
        let patch = patch_region(&desc, 0).with_buffer_layout(23, 0);
        let patch_data = pattern((10 * 23 + 20) * 4, 54);
        let patch_ticket = c.upload_image(&image, &[patch], &patch_data).unwrap();
        let box_back = c
            .read_back_image(
                &image,
                &[ImageCopy {
                    buffer_offset: 8,
                    ..patch
                }],
            )
            .unwrap();
        let after = c.read_back_image(&image, &regions).unwrap();
        assert!(
            before.wait().unwrap() == data,
            "{timeline:?}: the read before the patch saw it"
        );
        let box_bytes = box_back.wait().unwrap();
        assert_eq!(box_bytes.len(), 8 + patch_data.len());
        for y in 0..11 {
            let row = y * 23 * 4..(y * 23 + 20) * 4;
            assert!(
                box_bytes[8..][row.clone()] == patch_data[row],
                "{timeline:?}: row {y} of the box differs"
            );
        }
        let expected = patched(&data, &desc, &patch, &patch_data, [5, 3], [20, 11]);
        assert_texels_equal(
            &after.wait().unwrap(),
            &expected,
            &format!("{timeline:?}: after the patch"),
        );
        assert!(patch_ticket.is_complete().unwrap());
        drop((image, patch_ticket));
        let stats = c.shutdown();
        assert_eq!(stats.read_backs, 5);
        assert_eq!(
            (
                stats.images_created,
                stats.images_destroyed,
                stats.leaked_images
            ),
            (3, 3, 0)
        );
        finish_shared(shared);
    }
}

/// `ImageCopyQueue::submit_image_reads` straight on the device: two reads of one image and one
/// of another in one submission (each read moves its image to the transfer layout and back, so
/// the second read of the first image transitions again after the first), every region where
/// it names, and a region off the rules refused before anything is submitted.
#[test]
fn several_image_reads_in_one_submission_land_where_their_regions_say() {
    each_timeline_mode(|h| {
        let device = h.device();
        let desc = rgba_2d_array();
        let (regions, size) = whole_levels(&desc);
        let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
        let data = pattern(size as usize, 61);
        staging.write(device, 0, &data);
        let images = [TestImage::new(device, desc), TestImage::new(device, desc)];
        let uploads = [
            images[0].command(staging.buffer, false, &regions),
            images[1].command(staging.buffer, false, &regions),
        ];
        let value = upload(device, device.last_submitted_value() + 1, &uploads);
        // Level 0 of the first image at 0; level 1 of the second and all of the first again
        // after it.
        let level0 = regions[0].packed_bytes(desc.format).unwrap();
        let level1 = ImageCopy {
            buffer_offset: level0,
            ..regions[1]
        };
        let again: Vec<ImageCopy> = regions
            .iter()
            .map(|r| ImageCopy {
                buffer_offset: r.buffer_offset + level0 + level1.packed_bytes(desc.format).unwrap(),
                ..*r
            })
            .collect();
        let total =
            again.last().unwrap().buffer_offset + size - regions.last().unwrap().buffer_offset;
        let landing = MappedBuffer::new(device, total, BufferUsage::TRANSFER_DST);
        let reads = [
            ImageReadCommand {
                src: images[0].image,
                desc,
                dst: landing.buffer,
                regions: &regions[..1],
            },
            ImageReadCommand {
                src: images[1].image,
                desc,
                dst: landing.buffer,
                regions: &[level1],
            },
            ImageReadCommand {
                src: images[0].image,
                desc,
                dst: landing.buffer,
                regions: &again,
            },
        ];
        let bad = [ImageReadCommand {
            regions: &[ImageCopy {
                buffer_offset: 2,
                ..regions[0]
            }],
            ..reads[0]
        }];
        // SAFETY: the images are alive, bound and in their layout after upload (the upload is
        // submitted first on the same queue); the landing buffer holds every region and no two
        // overlap; nothing else uses either.
        let refused = unsafe { device.submit_image_reads(&bad, value + 1) };
        assert_eq!(
            refused,
            Err(DeviceError::InvalidImageCopy(
                ImageCopyError::MisalignedBufferOffset
            ))
        );
        assert_eq!(device.last_submitted_value(), value);
        // SAFETY: as above.
        unsafe { device.submit_image_reads(&reads, value + 1) }.unwrap();
        assert_eq!(
            device.wait(value + 1, 10 * SECOND),
            Ok(WaitStatus::Completed)
        );
        let back = landing.read(device);
        let level1_at = regions[1].buffer_offset as usize;
        let level1_len = level1.packed_bytes(desc.format).unwrap() as usize;
        assert!(
            back[..level0 as usize] == data[..level0 as usize],
            "level 0"
        );
        assert!(
            back[level0 as usize..level0 as usize + level1_len]
                == data[level1_at..level1_at + level1_len],
            "level 1 of the second image"
        );
        let again_at = again[0].buffer_offset as usize;
        assert!(back[again_at..] == data[..], "the first image again");
        staging.destroy(device);
        landing.destroy(device);
        for image in images {
            image.destroy(device);
        }
    });
}

/// Every uncompressed colour format, filled through the coordinator and read back by it: bytes
/// land as they were given, whatever the texel size (1 to 16 bytes) and packing (10:10:10:2,
/// 11:11:10 and 9:9:9:5 floats), in every level of two layers. A format the driver lacks for
/// sampling and copies is skipped, as the engine would skip it after `check_image_support`.
#[test]
fn every_uncompressed_colour_format_lands_and_reads_back_byte_for_byte() {
    use ImageFormat as F;
    let Some(h) = headless() else {
        return;
    };
    let shared = SharedHeadlessDevice::new(h);
    let c = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
    let formats = [
        F::R8Unorm,
        F::R8Uint,
        F::Rg8Unorm,
        F::Rgba8Unorm,
        F::Rgba8Srgb,
        F::Rgba8Snorm,
        F::Rgba8Uint,
        F::Bgra8Unorm,
        F::Bgra8Srgb,
        F::Rgb10A2Unorm,
        F::Rg11B10Ufloat,
        F::Rgb9E5Ufloat,
        F::R16Unorm,
        F::R16Uint,
        F::R16Float,
        F::Rg16Unorm,
        F::Rg16Float,
        F::Rgba16Unorm,
        F::Rgba16Float,
        F::R32Uint,
        F::R32Float,
        F::Rg32Uint,
        F::Rg32Float,
        F::Rgba32Uint,
        F::Rgba32Float,
    ];
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC;
    let mut landed = 0;
    for (seed, format) in formats.into_iter().enumerate() {
        let desc = ImageDesc::new_2d(format, 37, 21, usage)
            .with_full_mip_chain()
            .with_array_layers(2);
        if let Err(e) = c.check_image_support(&desc) {
            eprintln!("{format:?}: {e}");
            continue;
        }
        let texels = pattern(desc.packed_bytes() as usize, seed as u8);
        let (image, ticket) = c
            .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        ticket.wait().unwrap();
        // Level by level: the upload's bytes are packed, level after level.
        let mut at = 0;
        for level in 0..desc.mip_levels {
            let region = ImageCopy::whole_level(&desc, level, 0);
            let len = region.packed_bytes(format).unwrap() as usize;
            let back = c
                .read_back_image(&image, &[region])
                .unwrap()
                .wait()
                .unwrap();
            assert!(
                back == texels[at..at + len],
                "{format:?}, level {level}: the texels read back differ"
            );
            at += len;
        }
        assert_eq!(at, texels.len());
        landed += 1;
    }
    // lavapipe and NVIDIA's driver copy every one of them.
    assert!(
        landed >= formats.len() - 2,
        "{landed} of {} formats",
        formats.len()
    );
    let stats = c.shutdown();
    assert_eq!(stats.leaked_images, 0);
    finish_shared(shared);
}

/// Depth and stencil targets the application cleared on its own queue, read back by the
/// coordinator after `mark_written`: the copy names the format's one aspect, and every texel
/// holds the clear value (a depth of 0.25 as a 32-bit float, 0.5 as 16-bit unorm, stencil
/// 0x5A). The barriers and the copy would be validation errors with the colour aspect.
#[test]
fn depth_and_stencil_targets_the_application_cleared_read_back_texel_for_texel() {
    use memkit_core::device::ImageFormat as F;
    let Some(h) = concurrent_device(TimelineMode::Auto) else {
        return;
    };
    let shared = SharedHeadlessDevice::new(h);
    let c = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
    let app = AppCommands::new(&shared);
    let usage = ImageUsage::DEPTH_STENCIL_ATTACHMENT
        | ImageUsage::SAMPLED
        | ImageUsage::TRANSFER_SRC
        | ImageUsage::TRANSFER_DST;
    // (format, its aspect, the clear value, one texel's bytes after it)
    let depth = vk::ImageAspectFlags::DEPTH;
    let stencil = vk::ImageAspectFlags::STENCIL;
    let targets = [
        (
            F::D32Float,
            depth,
            (0.25, 0),
            0.25f32.to_le_bytes().to_vec(),
        ),
        // 0.5 x 65535 = 32767.5: Vulkan allows either neighbour; both are accepted below.
        (
            F::D16Unorm,
            depth,
            (0.5, 0),
            32768u16.to_le_bytes().to_vec(),
        ),
        (F::S8Uint, stencil, (0.0, 0x5A), vec![0x5A]),
    ];
    for (format, aspect, (clear_depth, clear_stencil), texel) in targets {
        let desc = ImageDesc::new_2d(format, 48, 20, usage)
            .with_mip_levels(2)
            .with_array_layers(2);
        let target = c
            .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let whole = vk::ImageSubresourceRange::default()
            .aspect_mask(aspect)
            .level_count(vk::REMAINING_MIP_LEVELS)
            .layer_count(vk::REMAINING_ARRAY_LAYERS);
        let to_clear = vk::ImageMemoryBarrier::default()
            .old_layout(vk::ImageLayout::UNDEFINED)
            .new_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(target.raw())
            .subresource_range(whole);
        // Into the layout memkit expects after upload, which its read starts from.
        let to_read = vk::ImageMemoryBarrier {
            old_layout: vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            new_layout: vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            src_access_mask: vk::AccessFlags::TRANSFER_WRITE,
            dst_access_mask: vk::AccessFlags::empty(),
            ..to_clear
        };
        assert_eq!(
            desc.layout_after_upload(),
            ImageLayout::ShaderReadOnlyOptimal
        );
        let value = vk::ClearDepthStencilValue {
            depth: clear_depth,
            stencil: clear_stencil,
        };
        app.begin(&shared);
        let device = shared.ash_device();
        // SAFETY: recording on the main family, which may use the image (concurrent sharing);
        // the image is alive, created with TRANSFER_DST, in the barrier's layouts in turn.
        unsafe {
            device.cmd_pipeline_barrier(
                app.cmd,
                vk::PipelineStageFlags::TOP_OF_PIPE,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &[to_clear],
            );
            device.cmd_clear_depth_stencil_image(
                app.cmd,
                target.raw(),
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &value,
                &[whole],
            );
            device.cmd_pipeline_barrier(
                app.cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &[to_read],
            );
        }
        app.submit_and_wait(&shared, None);
        // SAFETY: the clear wrote every texel of every level and layer, completed (waited for
        // above), and left the image in its layout after upload; concurrent sharing.
        unsafe { target.mark_written() };
        for level in 0..desc.mip_levels {
            let region = ImageCopy::whole_level(&desc, level, 0);
            let back = c
                .read_back_image(&target, &[region])
                .unwrap()
                .wait()
                .unwrap();
            let [w, h, _] = desc.level_extent(level);
            assert_eq!(back.len(), (w * h * 2) as usize * texel.len(), "{format:?}");
            for (i, got) in back.chunks(texel.len()).enumerate() {
                let close = format == F::D16Unorm
                    && u16::from_le_bytes([got[0], got[1]]).abs_diff(32768) <= 1;
                assert!(
                    got == texel || close,
                    "{format:?}, level {level}, texel {i}: {got:?}, expected {texel:?}"
                );
            }
        }
        // A depth-stencil format has two aspects: a read would need one chosen.
        drop(target);
    }
    let both = ImageDesc::new_2d(F::D24UnormS8Uint, 16, 16, usage);
    if let Ok(target) = c.create_image(&both, MemoryUsage::FAST_DEVICE_ACCESS) {
        // SAFETY: deliberately unwritten: the read is refused before anything is submitted.
        unsafe { target.mark_written() };
        let read = c.read_back_image(&target, &[ImageCopy::whole_level(&both, 0, 0)]);
        assert_eq!(
            read.err(),
            Some(memkit_std::Error::ImageCopy(ImageCopyError::DepthFormat))
        );
    }
    app.destroy(&shared);
    let stats = c.shutdown();
    assert_eq!(stats.leaked_images, 0);
    finish_shared(shared);
}

/// Submits a defragmentation pass's `copies` and `moves` at the next value and returns it.
fn submit_moves(
    device: &VulkanDevice,
    copies: &[CopyCommand<'_, vk::Buffer>],
    moves: &[ImageMoveCommand<vk::Image>],
) -> u64 {
    let value = device.last_submitted_value() + 1;
    // SAFETY: every buffer and image is alive and bound; each source image holds an upload (in
    // the layout after upload, or returned by the application under a release) and each
    // destination is new; buffer regions lie inside their buffers; nothing else uses them until
    // the value completed; this thread is the only submitter.
    unsafe { device.submit_moves(copies, moves, value) }.unwrap();
    value
}

/// Defragmentation's copies (`ImageCopyQueue::submit_moves`): every level and layer of each
/// kind of image moves into a new one, in the submission of a buffer copy, and both memkit's
/// read and the application's find the texels; what cannot move is refused first.
#[test]
fn memkit_moves_every_kind_of_image_in_one_submission_with_buffer_copies() {
    each_timeline_mode(|h| {
        let device = h.device();
        let usage = ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC;
        let descs = [
            rgba_2d_array(),
            ImageDesc::new_2d(ImageFormat::Bc7Srgb, 70, 38, usage | ImageUsage::SAMPLED)
                .with_full_mip_chain()
                .with_array_layers(2),
            ImageDesc {
                depth: 4,
                ..ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, usage | ImageUsage::STORAGE)
            }
            .with_full_mip_chain(),
        ];
        let mut olds = Vec::new();
        let mut expected = Vec::new();
        let mut stagings = Vec::new();
        for (seed, desc) in (70..).zip(descs) {
            let old = TestImage::new(device, desc);
            let (regions, size) = whole_levels(&desc);
            let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
            let data = pattern(size as usize, seed);
            staging.write(device, 0, &data);
            upload(
                device,
                device.last_submitted_value() + 1,
                &[old.command(staging.buffer, false, &regions)],
            );
            expected.push(packed_levels(&desc, &regions, &data));
            olds.push(old);
            stagings.push(staging);
        }
        let news: Vec<_> = olds
            .iter()
            .map(|o| TestImage::new(device, o.desc))
            .collect();
        let from = MappedBuffer::new(device, 256, BufferUsage::TRANSFER_SRC);
        from.write(device, 0, &pattern(256, 9));
        let to = MappedBuffer::new(device, 256, BufferUsage::TRANSFER_DST);
        let region = [BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size: 256,
        }];
        let copies = [CopyCommand {
            src: from.buffer,
            dst: to.buffer,
            regions: &region,
        }];
        let moves: Vec<_> = olds
            .iter()
            .zip(&news)
            .map(|(o, n)| ImageMoveCommand {
                src: o.image,
                dst: n.image,
                desc: o.desc,
            })
            .collect();

        // A move that cannot be copied refuses the whole submission.
        let uploads_only = ImageMoveCommand {
            desc: ImageDesc {
                usage: ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
                ..rgba_2d_array()
            },
            ..moves[0]
        };
        let before = device.last_submitted_value();
        // SAFETY: refused before anything is recorded (the move is checked first).
        let refused = unsafe { device.submit_moves(&copies, &[uploads_only], before + 1) };
        assert_eq!(
            refused,
            Err(DeviceError::InvalidImageCopy(
                ImageCopyError::NotTransferSrc
            ))
        );
        assert_eq!(device.last_submitted_value(), before);

        let value = submit_moves(device, &copies, &moves);
        for ((new, want), seed) in news.iter().zip(&expected).zip(70..) {
            let what = format!("{:?} (seed {seed})", new.desc.format);
            let back = memkit_read(device, new).unwrap();
            assert_texels_equal(&back, want, &format!("{what}: memkit's read"));
            let (regions, size) = whole_levels(&new.desc);
            let back = read_back(h, new, &regions, size, value);
            let back = packed_levels(&new.desc, &regions, &back);
            assert_texels_equal(&back, want, &format!("{what}: the application's read"));
        }
        assert_eq!(device.wait(value, 10 * SECOND), Ok(WaitStatus::Completed));
        assert_eq!(to.read(device), pattern(256, 9));
        for image in olds.into_iter().chain(news) {
            image.destroy(device);
        }
        for buffer in stagings.into_iter().chain([from, to]) {
            buffer.destroy(device);
        }
    });
}

/// Under `release_to_family`, a move reclaims its source (returned by the application) and
/// releases its destination, which the application acquires as after an upload.
#[test]
fn a_moved_image_is_reclaimed_and_released_like_an_upload() {
    for timeline in TIMELINE_MODES {
        let Some(h) = headless_with(HeadlessConfig {
            timeline,
            release_to_main_family: true,
            ..HeadlessConfig::default()
        }) else {
            return;
        };
        let device = h.device();
        let Some(transfer) = device.ownership_transfer() else {
            eprintln!("one queue family here (lavapipe): nothing to release to the main family");
            finish(h);
            continue;
        };
        let desc = rgba_2d_array();
        let (regions, size) = whole_levels(&desc);
        let old = TestImage::new(device, desc);
        let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
        let data = pattern(size as usize, 41);
        staging.write(device, 0, &data);
        let value = upload(
            device,
            device.last_submitted_value() + 1,
            &[old.command(staging.buffer, false, &regions)],
        );
        // The application acquires, reads and returns it: memkit may reclaim it.
        let back = read_back_owned(&h, &old, &regions, size, value, transfer);
        assert_texels_equal(&back, &data, "before the move");
        let new = TestImage::new(device, desc);
        let moves = [ImageMoveCommand {
            src: old.image,
            dst: new.image,
            desc,
        }];
        let value = submit_moves(device, &[], &moves);
        let back = read_back_owned(&h, &new, &regions, size, value, transfer);
        assert_texels_equal(&back, &data, "the moved image, acquired");
        staging.destroy(device);
        old.destroy(device);
        new.destroy(device);
        finish(h);
    }
}

/// `Coordinator::defragment_with_images`: textures left one to a block move into one block
/// with every texel (each level, each layer), the emptied blocks go back, and the application's
/// own read of each moved texture, waiting on the pass's ticket, finds what was uploaded.
#[test]
fn the_coordinator_moves_textures_out_of_sparse_blocks_with_their_texels() {
    const MIB: u64 = 1 << 20;
    for timeline in TIMELINE_MODES {
        let Some(h) = concurrent_device(timeline) else {
            return;
        };
        let shared = SharedHeadlessDevice::new(h);
        let config = CoordinatorConfig {
            pools: memkit_std::PoolConfig {
                first_block_size: 4 * MIB,
                preferred_block_size: Some(4 * MIB),
                ..memkit_std::PoolConfig::default()
            },
            ..CoordinatorConfig::default()
        };
        let c = Coordinator::new(shared.clone(), config).unwrap();
        // 256 x 256 RGBA8 with every level: about 350 KiB, several to a block.
        let desc = ImageDesc::new_2d(
            ImageFormat::Rgba8Unorm,
            256,
            256,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_SRC,
        )
        .with_full_mip_chain()
        .with_array_layers(2);
        let mut textures = Vec::new();
        for seed in 0..32u8 {
            let data = pattern(desc.packed_bytes() as usize, seed);
            let (image, _) = c
                .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &data)
                .unwrap();
            textures.push((image, data));
        }
        c.flush_transfers().unwrap().wait().unwrap();
        // One texture of each block stays.
        let mut seen = HashSet::new();
        textures.retain(|(image, _)| seen.insert(image.memory().0));
        c.maintain().unwrap();
        let blocks = |c: &Coordinator<SharedHeadlessDevice>| -> u32 {
            c.stats().heaps.iter().map(|h| h.blocks).sum()
        };
        let before = blocks(&c);
        assert!(textures.len() >= 3, "{} blocks of textures", textures.len());
        let old: Vec<vk::Image> = textures.iter().map(|(i, _)| i.raw()).collect();

        let outcome = c
            .defragment_with_images(
                [],
                textures.iter_mut().map(|(i, _)| i),
                &memkit_std::DefragmentationLimits::UNLIMITED,
            )
            .unwrap();
        assert!(outcome.plan.blocks >= 2, "{:?}", outcome.plan);
        assert_eq!(
            outcome.moved_images.len(),
            outcome.plan.allocations as usize
        );
        for (i, (image, _)) in textures.iter().enumerate() {
            assert_eq!(image.raw() != old[i], outcome.moved_images.contains(&i));
        }
        let value = outcome.ticket.value().unwrap();
        let (regions, size) = whole_levels(&desc);
        for (i, (image, data)) in textures.iter().enumerate() {
            let back = read_back_image(&shared, image.raw(), &desc, &regions, size, value);
            let back = packed_levels(&desc, &regions, &back);
            assert_texels_equal(&back, data, &format!("{timeline:?}: texture {i}"));
        }
        c.maintain().unwrap();
        assert_eq!(blocks(&c), before - outcome.plan.blocks);
        assert_eq!(c.stats().images_moved, outcome.moved_images.len() as u64);
        drop((textures, outcome));
        let stats = c.shutdown();
        assert_eq!(stats.leaked_images, 0);
        finish_shared(shared);
    }
}

/// What the aliasing tests' render targets are made with: drawn into and sampled, and copied
/// both ways so that the tests can fill and read them.
const RENDER_TARGET: ImageUsage = ImageUsage::COLOR_ATTACHMENT
    .union(ImageUsage::SAMPLED)
    .union(ImageUsage::TRANSFER_SRC)
    .union(ImageUsage::TRANSFER_DST);

#[test]
fn the_coordinator_aliases_render_targets_and_keeps_track_of_which_one_holds_the_bytes() {
    use memkit_std::{AliasedImageDesc, Error};
    let usage = RENDER_TARGET;
    let target = |format, first_use, last_use| AliasedImageDesc {
        desc: ImageDesc::new_2d(format, 256, 256, usage),
        first_use,
        last_use,
    };
    for timeline in TIMELINE_MODES {
        let Some(h) = concurrent_device(timeline) else {
            return;
        };
        let shared = SharedHeadlessDevice::new(h);
        let c = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
        // Albedo (passes 0-1), HDR (1-2), bloom (2-3), LDR (3-4): LDR shares HDR's bytes and
        // bloom albedo's, whatever the driver's sizes, as long as HDR is the largest.
        let set = c
            .create_aliased_images(
                &[
                    target(ImageFormat::Rgba8Unorm, 0, 1),
                    target(ImageFormat::Rgba16Float, 1, 2),
                    target(ImageFormat::Rgba8Unorm, 2, 3),
                    target(ImageFormat::Rgba8Unorm, 3, 4),
                ],
                MemoryUsage::FAST_DEVICE_ACCESS,
            )
            .unwrap();
        let [albedo, hdr, bloom, ldr] = &set.images[..] else {
            panic!("four images")
        };
        assert_eq!(hdr.memory(), ldr.memory(), "{timeline:?}");
        assert_eq!(albedo.memory(), bloom.memory());
        assert_ne!(albedo.memory(), hdr.memory());
        assert!(set.bytes < set.unaliased_bytes, "{set:?}");

        let whole = |image: &memkit_std::Image<SharedHeadlessDevice>| {
            [ImageCopy::whole_level(image.desc(), 0, 0)]
        };
        let fill = |image: &memkit_std::Image<SharedHeadlessDevice>, seed: u8| {
            let data = pattern(image.desc().packed_bytes() as usize, seed);
            c.upload_image(image, &whole(image), &data)
                .unwrap()
                .wait()
                .unwrap();
            data
        };
        let read = |image: &memkit_std::Image<SharedHeadlessDevice>| {
            c.read_back_image(image, &whole(image))
                .unwrap()
                .wait()
                .unwrap()
        };
        let hdr_texels = fill(hdr, 1);
        let albedo_texels = fill(albedo, 2);
        assert_texels_equal(&read(hdr), &hdr_texels, "HDR");
        // LDR takes HDR's bytes; albedo's are untouched.
        let ldr_texels = fill(ldr, 3);
        assert_eq!(
            c.read_back_image(hdr, &whole(hdr)).err(),
            Some(Error::ImageNotWritten)
        );
        assert_texels_equal(&read(ldr), &ldr_texels, "LDR");
        assert_texels_equal(&read(albedo), &albedo_texels, "albedo");
        // HDR again, in part: the upload starts from an undefined layout (validation would
        // report a transition from the wrong layout otherwise).
        let half = ImageCopy {
            extent: [256, 128, 1],
            ..ImageCopy::whole_level(hdr.desc(), 0, 0)
        };
        let texels = pattern(half.packed_bytes(hdr.desc().format).unwrap() as usize, 4);
        c.upload_image(hdr, &[half], &texels)
            .unwrap()
            .wait()
            .unwrap();
        assert_texels_equal(&read(hdr)[..texels.len()], &texels, "HDR, top half");
        assert!(!ldr.is_written());
        fill(bloom, 5);
        assert!(!albedo.is_written());
        drop(set);
        let stats = c.shutdown();
        assert_eq!(stats.leaked_images, 0);
        assert_eq!(stats.images_destroyed, 4);
        finish_shared(shared);
    }
}

#[test]
fn the_coordinator_aliases_buffers_with_render_targets_off_their_granularity_pages() {
    use memkit_std::{AliasedBufferDesc, AliasedImageDesc, Error};
    let usage = RENDER_TARGET;
    for timeline in TIMELINE_MODES {
        let Some(h) = concurrent_device(timeline) else {
            return;
        };
        let shared = SharedHeadlessDevice::new(h);
        let granularity = shared.limits().buffer_image_granularity;
        let c = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
        // A target of passes 0-1, a light list used with it in pass 1, and a histogram of pass
        // 2 that may take the target's bytes; then two scratch buffers of passes 3 and 4.
        let set = c
            .create_aliased_resources(
                &[AliasedImageDesc {
                    desc: ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 256, 256, usage),
                    first_use: 0,
                    last_use: 1,
                }],
                &[
                    AliasedBufferDesc {
                        size: 3000,
                        first_use: 1,
                        last_use: 1,
                    },
                    AliasedBufferDesc {
                        size: 128 << 10,
                        first_use: 2,
                        last_use: 2,
                    },
                    AliasedBufferDesc {
                        size: 64 << 10,
                        first_use: 3,
                        last_use: 3,
                    },
                    AliasedBufferDesc {
                        size: 64 << 10,
                        first_use: 4,
                        last_use: 4,
                    },
                ],
                MemoryUsage::FAST_DEVICE_ACCESS,
            )
            .unwrap();
        let image = &set.images[0];
        let [lights, histogram, first, second] = &set.buffers[..] else {
            panic!("four buffers")
        };
        let (memory, base) = image.memory();
        assert_eq!(histogram.memory(), (memory, base), "{timeline:?}");
        assert_eq!(first.memory(), second.memory());
        let pages =
            |offset: u64, size: u64| (offset / granularity, (offset + size - 1) / granularity);
        let (_, image_last) = pages(base, image.memory_size());
        let (lights_first, _) = pages(lights.memory().1, lights.size());
        assert!(
            lights_first > image_last,
            "the light list has pages of its own"
        );

        let whole = [ImageCopy::whole_level(image.desc(), 0, 0)];
        let texels = pattern(image.desc().packed_bytes() as usize, 1);
        c.upload_image(image, &whole, &texels)
            .unwrap()
            .wait()
            .unwrap();
        let light_bytes = pattern(3000, 2);
        c.upload_to(lights, 0, &light_bytes)
            .unwrap()
            .wait()
            .unwrap();
        let read_image = || c.read_back_image(image, &whole).unwrap().wait().unwrap();
        assert_texels_equal(&read_image(), &texels, "target beside the light list");
        // The histogram takes the target's bytes: the target is undefined, and its next upload
        // starts from an undefined layout (validation would report a wrong layout otherwise).
        let histogram_bytes = pattern(128 << 10, 3);
        c.upload_to(histogram, 0, &histogram_bytes)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(
            c.read_back_image(image, &whole).err(),
            Some(Error::ImageNotWritten)
        );
        let read = |buffer: &memkit_std::Buffer<SharedHeadlessDevice>| {
            c.read_back(buffer, 0, buffer.size())
                .unwrap()
                .wait()
                .unwrap()
        };
        assert_eq!(read(histogram), histogram_bytes);
        assert_eq!(read(lights), light_bytes);
        let texels = pattern(image.desc().packed_bytes() as usize, 4);
        c.upload_image(image, &whole, &texels)
            .unwrap()
            .wait()
            .unwrap();
        assert_texels_equal(&read_image(), &texels, "target over the histogram");
        assert!(histogram.is_overwritten());
        // Uploads into the two scratch buffers, staged back to back, land in call order.
        c.upload_to(first, 0, &vec![5u8; 64 << 10]).unwrap();
        c.upload_to(second, 0, &vec![6u8; 64 << 10]).unwrap();
        c.flush_transfers().unwrap().wait().unwrap();
        assert_eq!(read(second), vec![6u8; 64 << 10]);
        assert_eq!(
            c.read_back(first, 0, 16).err(),
            Some(Error::BufferOverwritten)
        );
        drop(set);
        let stats = c.shutdown();
        assert_eq!(stats.leaked_images + stats.leaked_buffers, 0);
        finish_shared(shared);
    }
}
