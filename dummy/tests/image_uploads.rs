//! Uploads into images on the simulated device (`ImageCopyQueue`), and read-backs of them: texels
//! land byte for byte when the timeline reaches the value, layouts follow, bad regions are typed
//! errors that submit nothing, and contract breaches are recorded.

mod common;

use common::{alloc, backed_buffer, release_all};
use memkit_core::device::{
    BufferCopy, CopyCommand, DeviceError, ImageCopy, ImageCopyCommand, ImageCopyError,
    ImageCopyQueue, ImageDesc, ImageDescError, ImageFormat, ImageLayout, ImageMoveCommand,
    ImageReadCommand, ImageUsage, InvalidArgument,
};
use memkit_dummy::{
    DeviceConfig, DummyBuffer, DummyDevice, DummyImage, DummyMemory, InspectError, Misuse,
    MisuseKind, Operation,
};

const UPLOADABLE: ImageUsage = ImageUsage::SAMPLED.union(ImageUsage::TRANSFER_DST);
/// Device-local and host-visible coherent types of the discrete preset.
const VRAM: u32 = 0;
const HOST: u32 = 1;
/// [`DeviceConfig::discarded_image_fill`]'s default.
const DISCARDED: u8 = 0xDD;

/// A 37 x 23 texture, 3 layers, full mip chain (6 levels: 37x23 down to 1x1).
fn array_texture() -> ImageDesc {
    ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 37, 23, UPLOADABLE)
        .with_full_mip_chain()
        .with_array_layers(3)
}

/// A distinct byte for every byte of every texel block (`[x, y, z]` in blocks): tests see
/// misplaced rows, layers and levels.
fn texel_byte(seed: u32, level: u32, layer: u32, [x, y, z]: [u32; 3], byte: u32) -> u8 {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(level * 131 + layer * 71 + z * 37 + y * 13 + x * 5 + byte);
    (mixed ^ (mixed >> 8)) as u8
}

/// The tightly packed texel blocks of a box of one subresource (`offset` and `extent` in
/// texels, on the block grid), filled by [`texel_byte`].
fn box_bytes(
    desc: &ImageDesc,
    seed: u32,
    level: u32,
    layer: u32,
    offset: [u32; 3],
    extent: [u32; 3],
) -> Vec<u8> {
    let texel = desc.format.block_bytes();
    let [bw, bh] = desc.format.block_extent();
    let offset = [offset[0] / bw, offset[1] / bh, offset[2]];
    let extent = desc.format.blocks(extent);
    let mut out = Vec::new();
    for z in offset[2]..offset[2] + extent[2] {
        for y in offset[1]..offset[1] + extent[1] {
            for x in offset[0]..offset[0] + extent[0] {
                out.extend((0..texel).map(|b| texel_byte(seed, level, layer, [x, y, z], b)));
            }
        }
    }
    out
}

/// A whole subresource's expected bytes.
fn level_bytes(desc: &ImageDesc, seed: u32, level: u32, layer: u32) -> Vec<u8> {
    box_bytes(desc, seed, level, layer, [0; 3], desc.level_extent(level))
}

/// The source bytes of `region` (one level, its layers) at its row and slice pitches, from its
/// `buffer_offset`: each layer's box filled by [`box_bytes`] with `seed`, the padding 0xEE.
fn padded_source(desc: &ImageDesc, seed: u32, region: &ImageCopy) -> Vec<u8> {
    let [row_pitch, slice_pitch, _] = region.buffer_pitches(desc.format).expect("pitches");
    let row = desc.format.blocks(region.extent)[0] as usize * desc.format.block_bytes() as usize;
    let span = region.buffer_bytes(desc.format).expect("span");
    let mut source = vec![0xEE; (region.buffer_offset + span) as usize];
    for i in 0..region.layer_count {
        let layer = region.base_array_layer + i;
        let packed = box_bytes(
            desc,
            seed,
            region.mip_level,
            layer,
            region.offset,
            region.extent,
        );
        for (y, bytes) in packed.chunks(row).enumerate() {
            let at = region.buffer_offset + u64::from(i) * slice_pitch + y as u64 * row_pitch;
            source[at as usize..at as usize + row].copy_from_slice(bytes);
        }
    }
    source
}

/// Asserts that every layer `region` writes holds `new_seed`'s blocks inside its box and
/// `old_seed`'s everywhere else in its level (2D regions).
fn assert_box_replaced(
    gpu: &DummyDevice,
    image: DummyImage,
    desc: &ImageDesc,
    region: &ImageCopy,
    old_seed: u32,
    new_seed: u32,
) {
    let level = region.mip_level;
    let [w, h, _] = desc.format.blocks(desc.level_extent(level));
    let (offset, extent) = region.block_box(desc.format);
    let block = desc.format.block_bytes() as usize;
    for layer in region.base_array_layer..region.base_array_layer + region.layer_count {
        let blocks = gpu.read_image(image, level, layer).expect("read");
        let (old, new) = (
            level_bytes(desc, old_seed, level, layer),
            level_bytes(desc, new_seed, level, layer),
        );
        for y in 0..h {
            for x in 0..w {
                let inside = (offset[0]..offset[0] + extent[0]).contains(&x)
                    && (offset[1]..offset[1] + extent[1]).contains(&y);
                let at = (y * w + x) as usize * block;
                let want = if inside { &new } else { &old };
                assert_eq!(
                    blocks[at..at + block],
                    want[at..at + block],
                    "layer {layer} block ({x}, {y})"
                );
            }
        }
    }
}

/// A bound image in device-local memory.
fn image_on(gpu: &DummyDevice, desc: &ImageDesc) -> (DummyImage, DummyMemory) {
    let (image, requirements) = gpu.create_image(desc).expect("image");
    assert!(requirements.size >= desc.packed_bytes());
    let memory = alloc(gpu, VRAM, requirements.size);
    gpu.bind_image_memory(image, memory, 0).expect("bind");
    (image, memory)
}

/// A mapped, coherent staging buffer holding `bytes`.
fn staging(gpu: &DummyDevice, bytes: &[u8]) -> DummyBuffer {
    // Buffers' required sizes are multiples of 16 on the presets.
    let size = (bytes.len() as u64).max(1).next_multiple_of(16);
    let (memory, buffer) = backed_buffer(gpu, HOST, size, true);
    gpu.host_write(memory, 0, bytes).expect("host write");
    buffer
}

fn command<'a>(
    src: DummyBuffer,
    dst: DummyImage,
    desc: ImageDesc,
    keep_contents: bool,
    regions: &'a [ImageCopy],
) -> ImageCopyCommand<'a, DummyBuffer, DummyImage> {
    ImageCopyCommand {
        src,
        dst,
        desc,
        keep_contents,
        regions,
    }
}

/// Every level of `desc`, every layer, in one staging buffer, and the regions that upload them.
fn whole_image(desc: &ImageDesc, seed: u32) -> (Vec<u8>, Vec<ImageCopy>) {
    let mut bytes = Vec::new();
    let mut regions = Vec::new();
    for level in 0..desc.mip_levels {
        regions.push(ImageCopy::whole_level(desc, level, bytes.len() as u64));
        for layer in 0..desc.array_layers {
            bytes.extend(level_bytes(desc, seed, level, layer));
        }
    }
    (bytes, regions)
}

fn assert_image(gpu: &DummyDevice, image: DummyImage, desc: &ImageDesc, seed: u32) {
    for level in 0..desc.mip_levels {
        for layer in 0..desc.array_layers {
            assert_eq!(
                gpu.read_image(image, level, layer),
                Ok(level_bytes(desc, seed, level, layer)),
                "level {level} layer {layer}"
            );
        }
    }
}

/// Uploads the whole image with `seed` as signal `signal`, through the trait, and completes it.
fn upload_whole(gpu: &DummyDevice, image: DummyImage, desc: &ImageDesc, seed: u32, signal: u64) {
    let (bytes, regions) = whole_image(desc, seed);
    let src = staging(gpu, &bytes);
    let commands = [command(src, image, *desc, false, &regions)];
    // SAFETY: the simulator checks every contract of the trait instead of relying on it.
    unsafe { ImageCopyQueue::submit_image_copies(gpu, &commands, signal) }.expect("submit");
    assert_eq!(gpu.advance_to(signal), signal);
}

#[test]
fn every_level_and_layer_lands_when_the_timeline_reaches_the_value() {
    let gpu = DummyDevice::discrete();
    let desc = array_texture();
    assert_eq!(desc.mip_levels, 6);
    let (image, _) = image_on(&gpu, &desc);
    let (bytes, regions) = whole_image(&desc, 1);
    assert_eq!(bytes.len() as u64, desc.packed_bytes());
    let src = staging(&gpu, &bytes);
    gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 3)
        .expect("submit");
    // Nothing is visible before the GPU gets there.
    assert_eq!(gpu.pending_values(), [3]);
    assert_eq!(gpu.advance_to(2), 0);
    assert_eq!(gpu.image_layout(image), Ok(None));
    for level in 0..desc.mip_levels {
        let zeros = vec![0; level_bytes(&desc, 1, level, 0).len()];
        assert_eq!(gpu.read_image(image, level, 2), Ok(zeros), "level {level}");
    }
    assert_eq!(gpu.advance_to(3), 3);
    assert_image(&gpu, image, &desc, 1);
    assert_eq!(
        gpu.image_layout(image),
        Ok(Some(ImageLayout::ShaderReadOnlyOptimal))
    );
    let counters = gpu.counters();
    assert_eq!((counters.copies, counters.regions), (1, 6));
    assert_eq!(counters.bytes_copied, desc.packed_bytes());
    gpu.assert_no_misuse();
    release_all(&gpu);
    assert!(gpu.leak_report().is_empty());
}

#[test]
fn a_storage_image_is_left_general() {
    let gpu = DummyDevice::lavapipe();
    let desc = ImageDesc::new_2d(
        ImageFormat::R8Unorm,
        9,
        3,
        ImageUsage::STORAGE | ImageUsage::TRANSFER_DST,
    );
    let (image, requirements) = gpu.create_image(&desc).expect("image");
    // Lavapipe's one type is host-visible: the image's memory is too.
    let memory = alloc(&gpu, 0, requirements.size);
    gpu.bind_image_memory(image, memory, 0).expect("bind");
    let bytes = level_bytes(&desc, 4, 0, 0);
    let (staging_memory, src) = backed_buffer(&gpu, 0, 64, true);
    gpu.host_write(staging_memory, 0, &bytes).expect("write");
    let region = [ImageCopy::whole_level(&desc, 0, 0)];
    gpu.submit_image_copies(&[command(src, image, desc, false, &region)], 1)
        .expect("submit");
    gpu.complete_all();
    assert_eq!(gpu.read_image(image, 0, 0), Ok(bytes));
    assert_eq!(gpu.image_layout(image), Ok(Some(ImageLayout::General)));
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn a_kept_reupload_of_a_box_keeps_the_rest_and_a_discarding_one_does_not() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba16Float, 13, 9, UPLOADABLE).with_array_layers(2);
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 1, 1);
    // Seed 2 into a 5 x 4 box at (3, 2) of layer 1.
    let (offset, extent) = ([3, 2, 0], [5, 4, 1]);
    let mut patch = box_bytes(&desc, 2, 0, 1, offset, extent);
    // And full rows 7 and 8 of layer 0: a band whose rows lie back to back in the image.
    let band_at = patch.len();
    patch.extend(box_bytes(&desc, 2, 0, 0, [0, 7, 0], [13, 2, 1]));
    let src = staging(&gpu, &patch);
    let region = [
        ImageCopy {
            buffer_offset: 0,
            mip_level: 0,
            base_array_layer: 1,
            layer_count: 1,
            offset,
            extent,
            buffer_row_length: 0,
            buffer_image_height: 0,
        },
        ImageCopy {
            buffer_offset: band_at as u64,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
            offset: [0, 7, 0],
            extent: [13, 2, 1],
            buffer_row_length: 0,
            buffer_image_height: 0,
        },
    ];
    gpu.submit_image_copies(&[command(src, image, desc, true, &region)], 2)
        .expect("submit");
    assert_image(&gpu, image, &desc, 1);
    gpu.advance_to(2);
    let texel = 8;
    let layer0 = gpu.read_image(image, 0, 0).expect("read");
    let row = 13 * texel;
    assert_eq!(layer0[..7 * row], level_bytes(&desc, 1, 0, 0)[..7 * row]);
    assert_eq!(layer0[7 * row..], level_bytes(&desc, 2, 0, 0)[7 * row..]);
    let layer1 = gpu.read_image(image, 0, 1).expect("read");
    let old = level_bytes(&desc, 1, 0, 1);
    let new = level_bytes(&desc, 2, 0, 1);
    for y in 0..9 {
        for x in 0..13 {
            let inside = (3..8).contains(&x) && (2..6).contains(&y);
            let at = (y * 13 + x) * texel;
            let want = if inside { &new } else { &old };
            assert_eq!(layer1[at..at + texel], want[at..at + texel], "({x}, {y})");
        }
    }
    // The same box without keep_contents: the rest of the image is discarded.
    gpu.submit_image_copies(&[command(src, image, desc, false, &region[..1])], 3)
        .expect("submit");
    gpu.advance_to(3);
    assert_eq!(
        gpu.read_image(image, 0, 0),
        Ok(vec![DISCARDED; 13 * 9 * texel])
    );
    let layer1 = gpu.read_image(image, 0, 1).expect("read");
    assert_eq!(
        layer1[(2 * 13 + 3) * texel..][..texel],
        new[(2 * 13 + 3) * texel..][..texel]
    );
    assert!(layer1[..texel].iter().all(|&b| b == DISCARDED));
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn keep_contents_after_an_upload_not_yet_executed_is_fine() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    let (bytes, regions) = whole_image(&desc, 5);
    let src = staging(&gpu, &bytes);
    gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1)
        .expect("submit");
    let patch = box_bytes(&desc, 6, 0, 0, [0; 3], [2, 2, 1]);
    let patch_src = staging(&gpu, &patch);
    let region = [ImageCopy {
        buffer_offset: 0,
        mip_level: 0,
        base_array_layer: 0,
        layer_count: 1,
        offset: [0; 3],
        extent: [2, 2, 1],
        buffer_row_length: 0,
        buffer_image_height: 0,
    }];
    gpu.submit_image_copies(&[command(patch_src, image, desc, true, &region)], 2)
        .expect("submit");
    gpu.complete_all();
    let texels = gpu.read_image(image, 0, 0).expect("read");
    assert_eq!(texels[..8], patch[..8]);
    assert_eq!(texels[8..32], level_bytes(&desc, 5, 0, 0)[8..32]);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn off_grid_regions_are_typed_errors_that_submit_nothing() {
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 100, 60, UPLOADABLE).with_mip_levels(2);
    for granularity in [[8, 8, 1], [0, 0, 0]] {
        let gpu =
            DummyDevice::new(DeviceConfig::discrete().with_image_copy_granularity(granularity))
                .expect("device");
        assert_eq!(ImageCopyQueue::image_copy_granularity(&gpu), granularity);
        let (image, _) = image_on(&gpu, &desc);
        let src = staging(&gpu, &vec![7; 100 * 60 * 4]);
        let whole = ImageCopy::whole_level(&desc, 0, 0);
        // On the [8, 8, 1] grid, but not a whole level.
        let on_grid = ImageCopy {
            extent: [8, 8, 1],
            ..whole
        };
        let off_grid = ImageCopy {
            offset: [4, 0, 0],
            extent: [8, 8, 1],
            ..whole
        };
        let good = [whole];
        let bad = [ImageCopy::whole_level(&desc, 1, 0), off_grid];
        let commands = [
            command(src, image, desc, false, &good),
            command(src, image, desc, true, &bad),
        ];
        assert_eq!(
            gpu.submit_image_copies(&commands, 1),
            Err(DeviceError::InvalidImageCopy(
                ImageCopyError::OffGranularity
            )),
            "{granularity:?}"
        );
        let partial = [on_grid];
        let on_grid_result =
            gpu.submit_image_copies(&[command(src, image, desc, false, &partial)], 1);
        if granularity == [0, 0, 0] {
            assert_eq!(
                on_grid_result,
                Err(DeviceError::InvalidImageCopy(
                    ImageCopyError::OffGranularity
                ))
            );
        } else {
            assert_eq!(on_grid_result, Ok(()));
            assert_eq!(gpu.complete_all(), 1);
            continue;
        }
        // Nothing was submitted, counted or written, and the value is still free.
        assert!(gpu.pending_values().is_empty());
        assert_eq!(gpu.last_submitted(), 0);
        assert_eq!(gpu.counters().submit_calls, 0);
        gpu.complete_all();
        assert_eq!(gpu.read_image(image, 0, 0), Ok(vec![0; 100 * 60 * 4]));
        assert_eq!(gpu.image_layout(image), Ok(None));
        gpu.submit_image_copies(&[command(src, image, desc, false, &good)], 1)
            .expect("the value was not used");
        gpu.complete_all();
        assert_eq!(gpu.read_image(image, 0, 0), Ok(vec![7; 100 * 60 * 4]));
        gpu.assert_no_misuse();
        release_all(&gpu);
    }
}

#[test]
fn other_bad_regions_are_typed_errors_too() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    let src = staging(&gpu, &[0; 1024]);
    let cases = [
        (
            ImageCopy::whole_level(&desc, 1, 0),
            ImageCopyError::NoSuchLevel,
        ),
        (
            ImageCopy {
                buffer_offset: 2,
                ..ImageCopy::whole_level(&desc, 0, 0)
            },
            ImageCopyError::MisalignedBufferOffset,
        ),
        (
            ImageCopy {
                offset: [1, 0, 0],
                ..ImageCopy::whole_level(&desc, 0, 0)
            },
            ImageCopyError::OutOfBounds,
        ),
    ];
    for (region, error) in cases {
        let regions = [region];
        assert_eq!(
            gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1),
            Err(DeviceError::InvalidImageCopy(error))
        );
    }
    let sampled_only = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, ImageUsage::SAMPLED);
    let (plain, _) = image_on(&gpu, &sampled_only);
    let regions = [ImageCopy::whole_level(&sampled_only, 0, 0)];
    assert_eq!(
        gpu.submit_image_copies(&[command(src, plain, sampled_only, false, &regions)], 1),
        Err(DeviceError::InvalidImageCopy(
            ImageCopyError::NotTransferDst
        ))
    );
    assert!(gpu.pending_values().is_empty());
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn keep_contents_of_an_image_never_uploaded_is_misuse_and_discards() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    let patch = box_bytes(&desc, 3, 0, 0, [0; 3], [4, 1, 1]);
    let src = staging(&gpu, &patch);
    let region = [ImageCopy {
        extent: [4, 1, 1],
        ..ImageCopy::whole_level(&desc, 0, 0)
    }];
    gpu.submit_image_copies(&[command(src, image, desc, true, &region)], 1)
        .expect("submit");
    // Judged as it executes: the application could still write the image before then.
    gpu.assert_no_misuse();
    gpu.complete_all();
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::KeepContentsOfUndefinedImage {
            image: image.resource()
        }]
    );
    // The contents to keep never existed: the rest holds the discard fill.
    let texels = gpu.read_image(image, 0, 0).expect("read");
    assert_eq!(texels[..16], patch[..]);
    assert_eq!(texels[16..], [DISCARDED; 48]);
    release_all(&gpu);
}

#[test]
fn a_source_range_past_the_buffer_is_misuse_and_that_region_is_dropped() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, UPLOADABLE).with_mip_levels(2);
    let (image, _) = image_on(&gpu, &desc);
    // Level 0 needs 256 bytes, level 1 64: a 256-byte buffer holds level 0 only.
    let bytes = level_bytes(&desc, 9, 0, 0);
    let src = staging(&gpu, &bytes);
    let regions = [
        ImageCopy::whole_level(&desc, 0, 0),
        ImageCopy::whole_level(&desc, 1, 224),
    ];
    gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1)
        .expect("submit");
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::CopyOutOfBounds {
            buffer: src,
            offset: 224,
            size: 64
        }]
    );
    gpu.complete_all();
    assert_eq!(gpu.read_image(image, 0, 0), Ok(bytes));
    assert_eq!(gpu.read_image(image, 1, 0), Ok(vec![DISCARDED; 64]));
    release_all(&gpu);
}

#[test]
fn a_padded_source_is_read_at_its_row_and_slice_pitches_and_only_its_texels_are_watched() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba16Float, 13, 9, UPLOADABLE).with_array_layers(2);
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 1, 1);
    // Seed 2 into a 5 x 4 box at (3, 2) of both layers, read from rows of 16 texels (128 bytes)
    // and layers 6 rows apart, from offset 8; the padding holds 0xEE.
    let (offset, extent) = ([3, 2, 0], [5, 4, 1]);
    let region = ImageCopy {
        buffer_offset: 8,
        offset,
        extent,
        ..ImageCopy::whole_level(&desc, 0, 0)
    }
    .with_buffer_layout(16, 6);
    let span = region.buffer_bytes(desc.format).unwrap() as usize;
    assert_eq!(span, (6 + 3) * 128 + 5 * 8);
    let source = padded_source(&desc, 2, &region);
    let (staging_memory, src) =
        backed_buffer(&gpu, HOST, (8 + span as u64).next_multiple_of(16), true);
    gpu.host_write(staging_memory, 0, &source)
        .expect("host write");
    gpu.submit_image_copies(&[command(src, image, desc, true, &[region])], 2)
        .expect("submit");
    // Writing the padding while the copy is pending is fine: the copy never reads it.
    gpu.host_write(staging_memory, 8 + 5 * 8, &[0; 8])
        .expect("write");
    gpu.advance_to(2);
    gpu.assert_no_misuse();
    assert_box_replaced(&gpu, image, &desc, &region, 1, 2);
    // Writing a row it reads while it is pending is misuse.
    gpu.submit_image_copies(&[command(src, image, desc, true, &[region])], 3)
        .expect("submit");
    gpu.host_write(staging_memory, 8 + 7 * 128, &[0; 8])
        .expect("write");
    gpu.complete_all();
    assert_eq!(gpu.misuse_kinds(), [MisuseKind::HostWriteWhilePending]);
    gpu.take_misuses();
    // The span, not the packed size, must fit in the buffer.
    let longer_rows = region.with_buffer_layout(64, 0);
    gpu.submit_image_copies(&[command(src, image, desc, true, &[longer_rows])], 4)
        .expect("submit");
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::CopyOutOfBounds {
            buffer: src,
            offset: 8,
            size: longer_rows.buffer_bytes(desc.format).unwrap(),
        }]
    );
    gpu.complete_all();
    release_all(&gpu);
}

#[test]
fn overlapping_regions_are_misuse() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, UPLOADABLE).with_array_layers(3);
    let (image, _) = image_on(&gpu, &desc);
    let src = staging(&gpu, &[1; 1024]);
    let quarter = |offset: [u32; 3], base_array_layer, layer_count| ImageCopy {
        buffer_offset: 0,
        mip_level: 0,
        base_array_layer,
        layer_count,
        offset,
        extent: [4, 4, 1],
        buffer_row_length: 0,
        buffer_image_height: 0,
    };
    // Side by side, or on other layers: fine.
    let apart = [
        quarter([0, 0, 0], 0, 2),
        quarter([4, 0, 0], 0, 2),
        quarter([0, 0, 0], 2, 1),
    ];
    gpu.submit_image_copies(&[command(src, image, desc, false, &apart)], 1)
        .expect("submit");
    gpu.assert_no_misuse();
    // Sharing layer 1 and the texels from (2, 2) to (4, 4).
    let shared = [quarter([0, 0, 0], 0, 2), quarter([2, 2, 0], 1, 2)];
    gpu.submit_image_copies(&[command(src, image, desc, true, &shared)], 2)
        .expect("submit");
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::ImageCopyOverlappingRegions {
            image: image.resource()
        }]
    );
    gpu.complete_all();
    release_all(&gpu);
}

#[test]
fn destroyed_unbound_and_misdescribed_images_are_misuse_and_not_written() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, UPLOADABLE);
    let src = staging(&gpu, &[5; 64]);
    let region = [ImageCopy::whole_level(&desc, 0, 0)];
    let (destroyed, memory) = image_on(&gpu, &desc);
    gpu.destroy_image(destroyed);
    gpu.free_memory(memory);
    let (unbound, _) = gpu.create_image(&desc).expect("image");
    let (described, _) = image_on(&gpu, &desc);
    let other = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 2, 2, UPLOADABLE);
    let other_region = [ImageCopy::whole_level(&other, 0, 0)];
    gpu.submit_image_copies(
        &[
            command(src, destroyed, desc, false, &region),
            command(src, unbound, desc, false, &region),
            command(src, described, other, false, &other_region),
        ],
        1,
    )
    .expect("submit");
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::BufferUseAfterDestroy {
                buffer: destroyed.resource(),
                operation: Operation::Submit
            },
            Misuse::CopyUnboundBuffer {
                buffer: unbound.resource()
            },
            Misuse::ImageDescMismatch {
                image: described.resource()
            },
        ]
    );
    gpu.complete_all();
    assert_eq!(gpu.read_image(described, 0, 0), Ok(vec![0; 64]));
    assert_eq!(gpu.image_layout(described), Ok(None));
    assert_eq!(
        gpu.read_image(destroyed, 0, 0),
        Err(InspectError::UnknownImage)
    );
    assert_eq!(gpu.read_image(unbound, 0, 0), Err(InspectError::Unbound));
    assert_eq!(
        gpu.read_image(described, 1, 0),
        Err(InspectError::NoSuchSubresource)
    );
    assert_eq!(
        gpu.read_image(described, 0, 1),
        Err(InspectError::NoSuchSubresource)
    );
    assert_eq!(gpu.counters().copies, 0);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn destroying_or_freeing_an_image_while_its_upload_is_pending_is_misuse() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, UPLOADABLE);
    let src = staging(&gpu, &[5; 64]);
    let region = [ImageCopy::whole_level(&desc, 0, 0)];
    let (image, memory) = image_on(&gpu, &desc);
    gpu.submit_image_copies(&[command(src, image, desc, false, &region)], 1)
        .expect("submit");
    gpu.destroy_image(image);
    gpu.free_memory(memory);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::DestroyedWhilePending {
                buffer: image.resource(),
                signal_value: 1
            },
            Misuse::FreedWhilePending {
                memory,
                signal_value: 1
            },
        ]
    );
    // The GPU would fault; the simulator skips the upload and completes the value.
    assert_eq!(gpu.complete_all(), 1);
    assert_eq!(gpu.counters().copies, 0);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn host_writes_into_a_pending_uploads_source_are_misuse() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    let (staging_memory, src) = backed_buffer(&gpu, HOST, 64, true);
    let region = [ImageCopy::whole_level(&desc, 0, 0)];
    gpu.submit_image_copies(&[command(src, image, desc, false, &region)], 1)
        .expect("submit");
    gpu.host_write(staging_memory, 8, &[1]).expect("write");
    gpu.complete_all();
    assert_eq!(gpu.misuse_kinds(), [MisuseKind::HostWriteWhilePending]);
    gpu.take_misuses();
    release_all(&gpu);
}

#[test]
fn a_signal_value_that_does_not_rise_is_refused() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 1, 5);
    let (bytes, regions) = whole_image(&desc, 2);
    let src = staging(&gpu, &bytes);
    assert_eq!(
        gpu.submit_image_copies(&[command(src, image, desc, true, &regions)], 5),
        Err(DeviceError::InvalidArgument(
            InvalidArgument::TimelineNotIncreasing
        ))
    );
    assert_eq!(gpu.misuse_kinds(), [MisuseKind::SignalNotIncreasing]);
    gpu.take_misuses();
    gpu.complete_all();
    assert_image(&gpu, image, &desc, 1);
    release_all(&gpu);
}

#[test]
fn a_lost_device_refuses_uploads_and_never_runs_pending_ones() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    let (bytes, regions) = whole_image(&desc, 1);
    let src = staging(&gpu, &bytes);
    // An injected failure submits nothing.
    gpu.fail_submit_call(1, DeviceError::OutOfHostMemory);
    assert_eq!(
        gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1),
        Err(DeviceError::OutOfHostMemory)
    );
    assert!(gpu.pending_values().is_empty());
    gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1)
        .expect("submit");
    gpu.lose_device();
    assert_eq!(gpu.complete_all(), 0);
    assert_eq!(gpu.read_image(image, 0, 0), Ok(vec![0; 64]));
    assert_eq!(gpu.image_layout(image), Ok(None));
    // Refused before the regions are looked at, even bad ones.
    let bad = [ImageCopy::whole_level(&desc, 3, 0)];
    for regions in [&regions[..], &bad[..]] {
        assert_eq!(
            gpu.submit_image_copies(&[command(src, image, desc, false, regions)], 2),
            Err(DeviceError::DeviceLost)
        );
    }
    // An injected loss is for good as well.
    let gpu = DummyDevice::discrete();
    let (image, _) = image_on(&gpu, &desc);
    let src = staging(&gpu, &bytes);
    gpu.fail_submit_call(1, DeviceError::DeviceLost);
    assert_eq!(
        gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1),
        Err(DeviceError::DeviceLost)
    );
    assert!(gpu.is_lost());
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn a_3d_image_takes_boxes_through_its_depth() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc {
        depth: 6,
        ..ImageDesc::new_2d(ImageFormat::Rg16Float, 7, 5, UPLOADABLE)
    }
    .with_full_mip_chain();
    assert_eq!(desc.mip_levels, 3);
    assert_eq!(desc.level_extent(1), [3, 2, 3]);
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 1, 1);
    assert_image(&gpu, image, &desc, 1);
    // A 4 x 3 x 3 box at (1, 1, 2) of level 0, seed 2, keeping the rest.
    let (offset, extent) = ([1, 1, 2], [4, 3, 3]);
    let patch = box_bytes(&desc, 2, 0, 0, offset, extent);
    let src = staging(&gpu, &patch);
    let region = [ImageCopy {
        buffer_offset: 0,
        mip_level: 0,
        base_array_layer: 0,
        layer_count: 1,
        offset,
        extent,
        buffer_row_length: 0,
        buffer_image_height: 0,
    }];
    gpu.submit_image_copies(&[command(src, image, desc, true, &region)], 2)
        .expect("submit");
    gpu.advance_to(2);
    let texel = 4;
    let level0 = gpu.read_image(image, 0, 0).expect("read");
    let old = level_bytes(&desc, 1, 0, 0);
    let new = level_bytes(&desc, 2, 0, 0);
    for z in 0..6 {
        for y in 0..5 {
            for x in 0..7 {
                let inside = (1..5).contains(&x) && (1..4).contains(&y) && (2..5).contains(&z);
                let at = ((z * 5 + y) * 7 + x) * texel;
                let want = if inside { &new } else { &old };
                assert_eq!(
                    level0[at..at + texel],
                    want[at..at + texel],
                    "({x}, {y}, {z})"
                );
            }
        }
    }
    assert_eq!(gpu.read_image(image, 1, 0), Ok(level_bytes(&desc, 1, 1, 0)));
    gpu.assert_no_misuse();
    release_all(&gpu);
    assert!(gpu.leak_report().is_empty());
}

/// A 70 x 38 BC7 texture (18 x 10 blocks of 16 bytes at level 0, the last column and row of
/// blocks partial), 2 layers, full mip chain (7 levels down to 1 x 1: one partial block each).
fn bc7_texture() -> ImageDesc {
    ImageDesc::new_2d(ImageFormat::Bc7Srgb, 70, 38, UPLOADABLE)
        .with_full_mip_chain()
        .with_array_layers(2)
}

#[test]
fn compressed_images_are_uploaded_block_for_block_down_to_the_last_level() {
    let gpu = DummyDevice::discrete();
    let desc = bc7_texture();
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 7, 1);
    assert_image(&gpu, image, &desc, 7);
    assert_eq!(
        gpu.read_image(image, 0, 1).map(|b| b.len()),
        Ok(18 * 10 * 16)
    );
    assert_eq!(gpu.read_image(image, 6, 0).map(|b| b.len()), Ok(16));
    // BC1's 8-byte blocks, one layer.
    let bc1 = ImageDesc::new_2d(ImageFormat::Bc1RgbaUnorm, 13, 9, UPLOADABLE).with_full_mip_chain();
    let (bc1_image, _) = image_on(&gpu, &bc1);
    upload_whole(&gpu, bc1_image, &bc1, 8, 2);
    assert_image(&gpu, bc1_image, &bc1, 8);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn a_compressed_box_at_the_edge_is_read_in_rows_of_blocks_at_its_pitches() {
    let gpu = DummyDevice::discrete();
    let desc = bc7_texture();
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 1, 1);
    // Seed 2 into level 0's box from texel (56, 24) to the edge (14 x 14 texels: 4 x 4 blocks,
    // the last column and row partial), both layers, read from rows of 24 texels (6 blocks) and
    // layers of 20 texel rows (5 block rows), from offset 32; the padding holds 0xEE.
    let (offset, extent) = ([56, 24, 0], [14, 14, 1]);
    let region = ImageCopy {
        buffer_offset: 32,
        offset,
        extent,
        ..ImageCopy::whole_level(&desc, 0, 0)
    }
    .with_buffer_layout(24, 20);
    assert_eq!(region.check(&desc, [1, 1, 1]), Ok(()));
    assert_eq!(region.block_box(desc.format), ([14, 6, 0], [4, 4, 1]));
    let row_pitch = 6 * 16;
    let span = region.buffer_bytes(desc.format).unwrap() as usize;
    assert_eq!(span, (5 + 3) * row_pitch + 4 * 16);
    let source = padded_source(&desc, 2, &region);
    let src = staging(&gpu, &source);
    gpu.submit_image_copies(&[command(src, image, desc, true, &[region])], 2)
        .expect("submit");
    gpu.advance_to(2);
    gpu.assert_no_misuse();
    assert_box_replaced(&gpu, image, &desc, &region, 1, 2);
    release_all(&gpu);
}

#[test]
fn compressed_regions_off_the_block_grid_are_typed_errors() {
    let gpu = DummyDevice::discrete();
    let desc = bc7_texture();
    let (image, _) = image_on(&gpu, &desc);
    let src = staging(&gpu, &[0; 4096]);
    let at = |offset: [u32; 3], extent: [u32; 3]| ImageCopy {
        offset,
        extent,
        ..ImageCopy::whole_level(&desc, 0, 0)
    };
    for (region, error) in [
        (at([2, 0, 0], [4, 4, 1]), ImageCopyError::OffTexelBlock),
        (at([0, 0, 0], [6, 4, 1]), ImageCopyError::OffTexelBlock),
        (
            at([0, 0, 0], [8, 8, 1]).with_buffer_layout(10, 0),
            ImageCopyError::BufferLayoutOffTexelBlock,
        ),
        (
            ImageCopy {
                buffer_offset: 8,
                ..at([0, 0, 0], [8, 8, 1])
            },
            ImageCopyError::MisalignedBufferOffset,
        ),
    ] {
        assert_eq!(
            gpu.submit_image_copies(&[command(src, image, desc, false, &[region])], 1),
            Err(DeviceError::InvalidImageCopy(error)),
            "{region:?}"
        );
    }
    assert_eq!(gpu.last_submitted(), 0);
    assert_eq!(gpu.counters().submit_calls, 0);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn compressed_images_are_neither_attachments_nor_storage() {
    let gpu = DummyDevice::discrete();
    let texture = bc7_texture();
    for (usage, error) in [
        (
            ImageUsage::COLOR_ATTACHMENT,
            ImageDescError::UsageNotForFormat,
        ),
        (ImageUsage::STORAGE, ImageDescError::Unsupported),
    ] {
        let desc = ImageDesc {
            usage: texture.usage | usage,
            ..texture
        };
        assert_eq!(
            gpu.create_image(&desc).map(|_| ()),
            Err(DeviceError::InvalidImage(error)),
            "{usage:?}"
        );
    }
    assert_eq!(gpu.counters().buffers_created, 0);
}

const READABLE: ImageUsage = UPLOADABLE.union(ImageUsage::TRANSFER_SRC);

/// A mapped, coherent buffer of `size` bytes filled with 0xEE, for read-backs to land in.
fn landing(gpu: &DummyDevice, size: u64) -> (DummyMemory, DummyBuffer) {
    let (memory, buffer) = backed_buffer(gpu, HOST, size, true);
    gpu.host_write(memory, 0, &vec![0xEE; size as usize])
        .expect("host write");
    (memory, buffer)
}

fn host_bytes(gpu: &DummyDevice, memory: DummyMemory, size: u64) -> Vec<u8> {
    let mut out = vec![0; size as usize];
    gpu.host_read(memory, 0, &mut out).expect("host read");
    out
}

fn read<'a>(
    src: DummyImage,
    desc: ImageDesc,
    dst: DummyBuffer,
    regions: &'a [ImageCopy],
) -> ImageReadCommand<'a, DummyBuffer, DummyImage> {
    ImageReadCommand {
        src,
        desc,
        dst,
        regions,
    }
}

#[test]
fn a_read_back_lands_each_region_at_its_offset_and_pitches_when_the_value_executes() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc {
        usage: READABLE,
        ..array_texture()
    };
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 7, 1);
    // Level 1 (18x11), all three layers, packed from 0; a 5x3 box of level 0's layer 2 at
    // offset 4096, in rows of 8 texels and slices of 4 rows.
    let level1 = ImageCopy::whole_level(&desc, 1, 0);
    let level1_bytes = level1.packed_bytes(desc.format).expect("size");
    let patch = ImageCopy {
        base_array_layer: 2,
        layer_count: 1,
        offset: [3, 4, 0],
        extent: [5, 3, 1],
        ..ImageCopy::whole_level(&desc, 0, 4096)
    }
    .with_buffer_layout(8, 4);
    let size = (4096 + patch.buffer_bytes(desc.format).expect("span") + 64).next_multiple_of(16);
    let (memory, dst) = landing(&gpu, size);
    let regions = [level1, patch];
    // SAFETY: the simulator checks every contract of the trait instead of relying on it.
    unsafe { ImageCopyQueue::submit_image_reads(&gpu, &[read(image, desc, dst, &regions)], 2) }
        .expect("submit");
    // Nothing lands before the GPU gets there.
    assert_eq!(host_bytes(&gpu, memory, size), vec![0xEE; size as usize]);
    assert_eq!(gpu.advance_to(2), 2);
    let bytes = host_bytes(&gpu, memory, size);
    let expected_level1: Vec<u8> = (0..3).flat_map(|l| level_bytes(&desc, 7, 1, l)).collect();
    assert_eq!(bytes[..level1_bytes as usize], expected_level1[..]);
    // The box at its pitches, the padding between rows untouched (`padded_source` pads with
    // 0xEE too).
    let expected_patch = padded_source(&desc, 7, &patch);
    assert_eq!(
        bytes[..expected_patch.len()][4096..],
        expected_patch[4096..]
    );
    assert!(
        bytes[level1_bytes as usize..4096]
            .iter()
            .all(|&b| b == 0xEE)
    );
    assert!(bytes[expected_patch.len()..].iter().all(|&b| b == 0xEE));
    // Reading leaves the image as it was.
    assert_image(&gpu, image, &desc, 7);
    assert_eq!(
        gpu.image_layout(image),
        Ok(Some(ImageLayout::ShaderReadOnlyOptimal))
    );
    gpu.assert_no_misuse();
    release_all(&gpu);
    assert!(gpu.leak_report().is_empty());
}

#[test]
fn a_read_back_of_an_image_without_transfer_src_or_off_its_rules_submits_nothing() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, UPLOADABLE);
    let (image, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, image, &desc, 1, 1);
    let (_, dst) = landing(&gpu, 256);
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    assert_eq!(
        gpu.submit_image_reads(&[read(image, desc, dst, &whole)], 2),
        Err(DeviceError::InvalidImageCopy(
            ImageCopyError::NotTransferSrc
        ))
    );
    let readable = ImageDesc {
        usage: READABLE,
        ..desc
    };
    let misaligned = [ImageCopy::whole_level(&readable, 0, 2)];
    assert_eq!(
        gpu.submit_image_reads(&[read(image, readable, dst, &misaligned)], 2),
        Err(DeviceError::InvalidImageCopy(
            ImageCopyError::MisalignedBufferOffset
        ))
    );
    assert!(gpu.pending_values().is_empty());
    assert_eq!(gpu.counters().submit_calls, 1);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn read_back_contract_breaches_are_misuse() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, READABLE);
    let (image, memory) = image_on(&gpu, &desc);
    let (landing_memory, dst) = landing(&gpu, 128);
    // Never uploaded: its layout is undefined.
    let row = |y: u32, at: u64| ImageCopy {
        offset: [0, y, 0],
        extent: [4, 1, 1],
        ..ImageCopy::whole_level(&desc, 0, at)
    };
    gpu.submit_image_reads(&[read(image, desc, dst, &[row(0, 0)])], 1)
        .expect("submit");
    gpu.complete_all();
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::ReadOfUndefinedImage {
            image: image.resource()
        }]
    );
    upload_whole(&gpu, image, &desc, 3, 2);
    // Destinations that overlap, and one past the buffer's end (dropped).
    let regions = [row(0, 0), row(1, 8), row(2, 120)];
    gpu.submit_image_reads(&[read(image, desc, dst, &regions)], 3)
        .expect("submit");
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::CopyOutOfBounds {
                buffer: dst,
                offset: 120,
                size: 16
            },
            Misuse::CopyOverlappingDestinations { dst },
        ]
    );
    // The host writes into a pending read's destination, and the image is destroyed under it.
    gpu.host_write(landing_memory, 4, &[1]).expect("write");
    gpu.destroy_image(image);
    gpu.free_memory(memory);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::DestroyedWhilePending {
                buffer: image.resource(),
                signal_value: 3
            },
            Misuse::FreedWhilePending {
                memory,
                signal_value: 3
            },
        ]
    );
    gpu.complete_all();
    assert_eq!(
        gpu.misuse_kinds(),
        [MisuseKind::HostWriteToPendingDestination]
    );
    gpu.take_misuses();
    release_all(&gpu);
}

#[test]
fn a_read_back_after_an_upload_not_yet_executed_reads_the_uploaded_texels() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, READABLE);
    let (image, _) = image_on(&gpu, &desc);
    let (bytes, regions) = whole_image(&desc, 5);
    let src = staging(&gpu, &bytes);
    gpu.submit_image_copies(&[command(src, image, desc, false, &regions)], 1)
        .expect("submit");
    let (memory, dst) = landing(&gpu, 64);
    gpu.submit_image_reads(&[read(image, desc, dst, &regions)], 2)
        .expect("submit");
    assert_eq!(gpu.complete_all(), 2);
    assert_eq!(host_bytes(&gpu, memory, 64), bytes);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn the_applications_write_defines_an_image_for_the_reads_and_kept_uploads_that_execute_after_it() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, READABLE);
    let (image, _) = image_on(&gpu, &desc);
    let drawing = level_bytes(&desc, 5, 0, 0);
    assert_eq!(
        gpu.application_writes_image(image, 0, 0, &drawing[1..]),
        Err(InspectError::OutOfBounds)
    );
    assert_eq!(
        gpu.application_writes_image(image, 1, 0, &drawing),
        Err(InspectError::NoSuchSubresource)
    );
    assert_eq!(gpu.image_layout(image), Ok(None));
    // Submitted before the application's write, executed after it (the application's frame
    // orders its work before the copies, as `wait_for_external` does on a GPU).
    let (landing_memory, dst) = landing(&gpu, 64);
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    gpu.submit_image_reads(&[read(image, desc, dst, &whole)], 1)
        .expect("submit");
    let patch = box_bytes(&desc, 9, 0, 0, [0, 1, 0], [4, 1, 1]);
    let src = staging(&gpu, &patch);
    let row = [ImageCopy {
        offset: [0, 1, 0],
        extent: [4, 1, 1],
        ..ImageCopy::whole_level(&desc, 0, 0)
    }];
    gpu.submit_image_copies(&[command(src, image, desc, true, &row)], 2)
        .expect("submit");
    gpu.application_writes_image(image, 0, 0, &drawing)
        .expect("the application's draw");
    assert_eq!(
        gpu.image_layout(image),
        Ok(Some(desc.layout_after_upload()))
    );
    gpu.complete_all();
    assert_eq!(host_bytes(&gpu, landing_memory, 64), drawing);
    let mut patched = drawing.clone();
    patched[16..32].copy_from_slice(&patch);
    assert_eq!(gpu.read_image(image, 0, 0).expect("read"), patched);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

// Moves (`ImageCopyQueue::submit_moves`): what defragmentation submits.

fn image_move(src: DummyImage, dst: DummyImage, desc: ImageDesc) -> ImageMoveCommand<DummyImage> {
    ImageMoveCommand { src, dst, desc }
}

#[test]
fn a_move_copies_every_level_and_layer_in_one_submission_with_its_buffer_copies() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 37, 23, READABLE)
        .with_full_mip_chain()
        .with_array_layers(3);
    let (old, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, old, &desc, 9, 1);
    let (new, _) = image_on(&gpu, &desc);
    let (from_memory, from) = backed_buffer(&gpu, HOST, 64, true);
    gpu.host_write(from_memory, 0, &[0x5A; 64])
        .expect("host write");
    let (to_memory, to) = backed_buffer(&gpu, HOST, 64, true);
    let region = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: 64,
    }];
    let copies = [CopyCommand {
        src: from,
        dst: to,
        regions: &region,
    }];
    let submissions = gpu.counters().submissions;
    // SAFETY: the simulator checks every contract of the trait instead of relying on it.
    unsafe { ImageCopyQueue::submit_moves(&gpu, &copies, &[image_move(old, new, desc)], 2) }
        .expect("submit");
    assert_eq!(
        gpu.counters().submissions,
        submissions + 1,
        "one submission"
    );
    assert_eq!(
        gpu.image_layout(new),
        Ok(None),
        "nothing runs before the value"
    );
    assert_eq!(gpu.advance_to(2), 2);
    assert_image(&gpu, new, &desc, 9);
    assert_eq!(gpu.image_layout(new), Ok(Some(desc.layout_after_upload())));
    assert_eq!(host_bytes(&gpu, to_memory, 64), [0x5A; 64]);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn an_image_a_move_cannot_copy_is_a_typed_error_that_submits_nothing() {
    let gpu = DummyDevice::discrete();
    let mut refused = Vec::new();
    let depth = ImageUsage::DEPTH_STENCIL_ATTACHMENT | READABLE;
    for desc in [
        ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, UPLOADABLE),
        ImageDesc::new_2d(ImageFormat::D32Float, 8, 8, depth & !ImageUsage::SAMPLED),
    ] {
        let (old, _) = image_on(&gpu, &desc);
        let (new, _) = image_on(&gpu, &desc);
        // SAFETY: as above.
        let result =
            unsafe { ImageCopyQueue::submit_moves(&gpu, &[], &[image_move(old, new, desc)], 1) };
        refused.push(result);
    }
    assert_eq!(
        refused,
        [
            Err(DeviceError::InvalidImageCopy(
                ImageCopyError::NotTransferSrc
            )),
            Err(DeviceError::InvalidImageCopy(ImageCopyError::DepthFormat)),
        ]
    );
    assert_eq!(gpu.counters().submit_calls, 0);
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn a_move_out_of_an_undefined_image_or_into_a_used_one_is_misuse() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, READABLE);
    let (never_written, _) = image_on(&gpu, &desc);
    let (uploaded, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, uploaded, &desc, 1, 1);
    gpu.submit_moves(&[], &[image_move(never_written, uploaded, desc)], 2)
        .expect("submit");
    gpu.complete_all();
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::ReadOfUndefinedImage {
                image: never_written.resource()
            },
            Misuse::MoveIntoUsedImage {
                image: uploaded.resource()
            },
        ]
    );
    release_all(&gpu);
}

#[test]
fn destroying_an_image_while_its_move_is_pending_is_misuse() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, READABLE);
    let (old, _) = image_on(&gpu, &desc);
    upload_whole(&gpu, old, &desc, 1, 1);
    let (new, _) = image_on(&gpu, &desc);
    gpu.submit_moves(&[], &[image_move(old, new, desc)], 2)
        .expect("submit");
    gpu.destroy_image(old);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::DestroyedWhilePending {
            buffer: old.resource(),
            signal_value: 2
        }]
    );
    release_all(&gpu);
}

#[test]
fn aliased_images_share_bytes_without_misuse_and_each_use_undefines_the_others() {
    let gpu = DummyDevice::discrete();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, UPLOADABLE);
    let (a, requirements) = gpu.create_image(&desc).expect("image");
    let (b, _) = gpu.create_image(&desc).expect("image");
    let (plain, _) = gpu.create_image(&desc).expect("image");
    // A and B on the same bytes, C (bound plainly) overlapping both.
    let memory = alloc(&gpu, VRAM, 2 * requirements.size);
    gpu.bind_aliased_image_memory(a, memory, 0).expect("bind");
    gpu.bind_aliased_image_memory(b, memory, 0).expect("bind");
    gpu.assert_no_misuse();
    gpu.bind_image_memory(plain, memory, 0).expect("bind");
    assert_eq!(
        gpu.misuse_kinds(),
        [MisuseKind::AliasedBinding, MisuseKind::AliasedBinding],
        "aliasing a resource bound plainly is still misuse"
    );
    gpu.take_misuses();
    gpu.destroy_image(plain);

    upload_whole(&gpu, a, &desc, 1, 1);
    assert_image(&gpu, a, &desc, 1);
    assert_eq!(gpu.image_layout(b), Ok(None));
    // B's upload overwrites A's bytes and leaves A undefined.
    upload_whole(&gpu, b, &desc, 2, 2);
    assert_image(&gpu, b, &desc, 2);
    assert_eq!(gpu.image_layout(a), Ok(None));
    assert_eq!(gpu.read_image(a, 0, 0), Ok(level_bytes(&desc, 2, 0, 0)));
    gpu.assert_no_misuse();
    // Keeping A's contents now keeps nothing: misuse, as on an image never written.
    let patch = box_bytes(&desc, 3, 0, 0, [0; 3], [8, 1, 1]);
    let src = staging(&gpu, &patch);
    let row = [ImageCopy {
        extent: [8, 1, 1],
        ..ImageCopy::whole_level(&desc, 0, 0)
    }];
    gpu.submit_image_copies(&[command(src, a, desc, true, &row)], 3)
        .expect("submit");
    gpu.complete_all();
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::KeepContentsOfUndefinedImage {
            image: a.resource()
        }]
    );
    // The application's write into B undefines A again.
    assert!(gpu.image_layout(a).expect("layout").is_some());
    gpu.application_writes_image(b, 0, 0, &level_bytes(&desc, 4, 0, 0))
        .expect("write");
    assert_eq!(gpu.image_layout(a), Ok(None));
    gpu.destroy_image(a);
    gpu.destroy_image(b);
    release_all(&gpu);
}
