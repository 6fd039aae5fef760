//! Images through the coordinator: created in pool memory, filled by uploads whose texels the
//! simulated GPU really writes, destroyed only once their uploads completed, and refused with a
//! typed error (and nothing submitted) when an upload breaks a rule.

use memkit_core::device::{
    AstcBlock, DeviceError, ImageCopy, ImageCopyError, ImageDesc, ImageDescError, ImageFormat,
    ImageLayout, ImageUsage,
};
use memkit_dummy::{DeviceConfig, DummyDevice, Preset, TextureCompression, WaitMode};
use memkit_std::{BackPressure, Coordinator, CoordinatorConfig, Error, Image, MemoryUsage};

const TEXTURE_USAGE: ImageUsage = ImageUsage::SAMPLED.union(ImageUsage::TRANSFER_DST);

fn coordinator(config: DeviceConfig) -> (Coordinator<DummyDevice>, DummyDevice) {
    let device = DummyDevice::new(config).expect("device");
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    (c, device)
}

/// 61 x 37 texels, every level down to 1 x 1 (6 levels), 2 layers: odd extents everywhere.
fn texture_desc() -> ImageDesc {
    ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 61, 37, TEXTURE_USAGE)
        .with_full_mip_chain()
        .with_array_layers(2)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(29)
                .wrapping_add(seed)
                .wrapping_add((i >> 8) as u8)
        })
        .collect()
}

/// Bytes of one layer of `level`, and where that layer starts in the whole image's packing
/// (levels one after another, each level's layers one after another; texel blocks for a
/// compressed format).
fn layer_range(desc: &ImageDesc, level: u32, layer: u32) -> std::ops::Range<usize> {
    let texel = desc.format.block_bytes() as usize;
    let layer_bytes = |l: u32| {
        let [w, h, d] = desc.format.blocks(desc.level_extent(l));
        (w * h * d) as usize * texel
    };
    let level_start: usize = (0..level)
        .map(|l| layer_bytes(l) * desc.array_layers as usize)
        .sum();
    let start = level_start + layer as usize * layer_bytes(level);
    start..start + layer_bytes(level)
}

fn read(device: &DummyDevice, image: &Image<DummyDevice>, level: u32, layer: u32) -> Vec<u8> {
    device
        .read_image(image.raw(), level, layer)
        .expect("the simulated GPU reads the image back")
}

#[test]
fn a_texture_created_with_data_holds_every_level_and_layer_on_every_preset() {
    // One-byte texels too: their levels' sizes are not multiples of 4, so the coordinator must
    // move each level to an aligned staging offset (a copy from the packed offset is refused).
    let one_byte = ImageDesc::new_2d(ImageFormat::R8Unorm, 61, 37, TEXTURE_USAGE)
        .with_full_mip_chain()
        .with_array_layers(2);
    for (preset, desc) in Preset::ALL
        .into_iter()
        .map(|p| (p, texture_desc()))
        .chain([(Preset::Discrete, one_byte)])
    {
        let (c, device) = coordinator(preset.config());
        assert_eq!(desc.mip_levels, 6);
        let texels = pattern(desc.packed_bytes() as usize, 3);
        let (image, ticket) = c
            .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
            .expect("texture");
        assert!(image.is_written(), "{preset}");
        assert_eq!(
            image.layout_after_upload(),
            ImageLayout::ShaderReadOnlyOptimal
        );
        ticket.wait().expect("upload");
        assert!(
            ticket.value().unwrap() > 0,
            "{preset}: the copy went through the GPU"
        );
        for level in 0..desc.mip_levels {
            for layer in 0..desc.array_layers {
                let got = read(&device, &image, level, layer);
                assert!(
                    got[..] == texels[layer_range(&desc, level, layer)],
                    "{preset}: level {level} layer {layer} differs"
                );
            }
        }
        device.assert_no_misuse();
        drop(image);
        let stats = c.shutdown();
        assert_eq!(
            (
                stats.images_created,
                stats.images_destroyed,
                stats.leaked_images
            ),
            (1, 1, 0),
            "{preset}"
        );
        assert_eq!(stats.image_uploads, 1, "{preset}");
        assert_eq!(stats.image_bytes_uploaded, desc.packed_bytes(), "{preset}");
        assert_eq!(
            stats.buffers_created, stats.buffers_destroyed,
            "{preset}: the staging buffer was freed"
        );
    }
}

#[test]
fn a_partial_reupload_from_unaligned_bytes_keeps_the_rest_of_the_image() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = texture_desc();
    let texels = pattern(desc.packed_bytes() as usize, 11);
    let (image, first) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    first.wait().expect("first upload");
    // A 10 x 7 box at (20, 5) of layer 1, level 0, read from offset 3 of the caller's bytes
    // (not a multiple of 4: the coordinator re-aligns it in staging).
    let patch = pattern(3 + 10 * 7 * 4, 200);
    let region = ImageCopy {
        buffer_offset: 3,
        base_array_layer: 1,
        layer_count: 1,
        offset: [20, 5, 0],
        extent: [10, 7, 1],
        ..ImageCopy::whole_level(&desc, 0, 0)
    };
    let second = c.upload_image(&image, &[region], &patch).expect("patch");
    second.wait().expect("patch upload");
    assert!(second.value() > first.value());
    let mut expected = texels[layer_range(&desc, 0, 1)].to_vec();
    for row in 0..7 {
        let dst = ((5 + row) * 61 + 20) * 4;
        let src = 3 + row * 10 * 4;
        expected[dst..dst + 40].copy_from_slice(&patch[src..src + 40]);
    }
    assert!(
        read(&device, &image, 0, 1) == expected,
        "layer 1 after the patch"
    );
    // Everything else is as the first upload left it.
    assert!(read(&device, &image, 0, 0)[..] == texels[layer_range(&desc, 0, 0)]);
    assert!(read(&device, &image, 3, 1)[..] == texels[layer_range(&desc, 3, 1)]);
    device.assert_no_misuse();
}

#[test]
fn bad_uploads_are_typed_errors_that_submit_and_hold_nothing() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = texture_desc();
    let image = c
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("image");
    let texels = vec![7u8; desc.packed_bytes() as usize];
    let whole = ImageCopy::whole_level(&desc, 0, 0);
    let before = c.stats();
    assert_eq!(
        c.upload_image(&image, &[], &texels).unwrap_err(),
        Error::ZeroSize
    );
    let too_few = &texels[..100];
    assert_eq!(
        c.upload_image(&image, &[whole], too_few).unwrap_err(),
        Error::OutOfBounds {
            offset: 0,
            size: whole.packed_bytes(desc.format).unwrap(),
            buffer_size: 100,
        }
    );
    // Padded rows reach further into the caller's bytes than the packed texels do.
    let padded = whole.with_buffer_layout(64, 0);
    let fits_packed = &texels[..whole.packed_bytes(desc.format).unwrap() as usize];
    assert_eq!(
        c.upload_image(&image, &[padded], fits_packed).unwrap_err(),
        Error::OutOfBounds {
            offset: 0,
            size: padded.buffer_bytes(desc.format).unwrap(),
            buffer_size: fits_packed.len() as u64,
        }
    );
    assert_eq!(
        c.upload_image(&image, &[whole.with_buffer_layout(60, 0)], &texels)
            .unwrap_err(),
        Error::ImageCopy(ImageCopyError::BufferRowTooShort)
    );
    assert_eq!(
        c.upload_image(&image, &[whole.with_buffer_layout(0, 36)], &texels)
            .unwrap_err(),
        Error::ImageCopy(ImageCopyError::BufferImageTooShort)
    );
    let no_level = ImageCopy {
        mip_level: 6,
        extent: [1, 1, 1],
        ..whole
    };
    assert_eq!(
        c.upload_image(&image, &[no_level], &texels).unwrap_err(),
        Error::ImageCopy(ImageCopyError::NoSuchLevel)
    );
    let past_edge = ImageCopy {
        offset: [60, 0, 0],
        extent: [2, 1, 1],
        ..whole
    };
    assert_eq!(
        c.upload_image(&image, &[past_edge], &texels).unwrap_err(),
        Error::ImageCopy(ImageCopyError::OutOfBounds)
    );
    let left = ImageCopy {
        extent: [31, 37, 1],
        ..whole
    };
    let right = ImageCopy {
        offset: [30, 0, 0],
        extent: [31, 37, 1],
        ..whole
    };
    assert_eq!(
        c.upload_image(&image, &[left, right], &texels).unwrap_err(),
        Error::OverlappingImageRegions
    );
    // The same boxes in different layers do not overlap.
    let right_other_layer = ImageCopy {
        base_array_layer: 1,
        layer_count: 1,
        ..right
    };
    let left_one_layer = ImageCopy {
        layer_count: 1,
        ..left
    };
    let sampled_only = c
        .create_image(
            &ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, ImageUsage::SAMPLED),
            MemoryUsage::FAST_DEVICE_ACCESS,
        )
        .expect("sampled-only image");
    assert_eq!(
        c.upload_image(
            &sampled_only,
            &[ImageCopy::whole_level(sampled_only.desc(), 0, 0)],
            &texels
        )
        .unwrap_err(),
        Error::ImageCopy(ImageCopyError::NotTransferDst)
    );
    let (other, _) = coordinator(DeviceConfig::discrete());
    assert_eq!(
        other.upload_image(&image, &[whole], &texels).unwrap_err(),
        Error::ForeignImage
    );
    let after = c.stats();
    assert_eq!(
        after.submissions, before.submissions,
        "nothing was submitted"
    );
    assert_eq!(after.submitted_value, before.submitted_value);
    assert_eq!(
        after.buffers_created, after.buffers_destroyed,
        "no staging buffer was left behind"
    );
    assert!(!image.is_written());
    // The refusals left the image as it was: a good upload still works, and is its first.
    let ticket = c
        .upload_image(&image, &[left_one_layer, right_other_layer], &texels)
        .expect("disjoint regions");
    ticket.wait().expect("upload");
    assert!(image.is_written());
    device.assert_no_misuse();
}

#[test]
fn a_refused_submission_leaves_the_image_unwritten_and_the_timeline_whole() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = texture_desc();
    let image = c
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("image");
    let texels = pattern(desc.packed_bytes() as usize, 5);
    let level0 = ImageCopy::whole_level(&desc, 0, 0);
    let submitted = device.last_submitted();
    // The device refuses the next submission (as a driver out of host memory would).
    device.fail_submit_call(
        device.counters().submit_calls + 1,
        DeviceError::OutOfHostMemory,
    );
    assert_eq!(
        c.upload_image(&image, &[level0], &texels).unwrap_err(),
        Error::Device(DeviceError::OutOfHostMemory)
    );
    assert!(
        !image.is_written(),
        "a refused upload is not the image's first"
    );
    assert_eq!(device.last_submitted(), submitted);
    // The refused upload took a timeline value: a flush signals it, so a wait for everything
    // handed out so far finishes instead of waiting for a value nothing would signal.
    let flushed = c.flush_transfers().expect("flush");
    assert_eq!(
        flushed.wait_timeout(std::time::Duration::from_secs(5)),
        Ok(true)
    );
    assert_eq!(device.last_submitted(), submitted + 1);
    // The value the refused upload took is signalled by the next submission, so waits on every
    // value handed out finish.
    let ticket = c.upload_image(&image, &[level0], &texels).expect("retry");
    ticket.wait().expect("upload");
    assert!(read(&device, &image, 0, 0)[..] == texels[layer_range(&desc, 0, 0)]);
    let stats = c.stats();
    assert_eq!(stats.completed_value, stats.submitted_value);
    device.assert_no_misuse();
}

#[test]
fn an_image_dropped_while_its_upload_runs_is_destroyed_once_the_upload_completed() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    device.set_wait_mode(WaitMode::Manual);
    device.set_complete_on_submit(false);
    let desc = texture_desc();
    let texels = pattern(desc.packed_bytes() as usize, 9);
    let (image, ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    let raw = image.raw();
    drop(image);
    c.maintain().expect("maintain");
    assert!(!ticket.is_complete().unwrap());
    assert_eq!(
        c.stats().images_destroyed,
        0,
        "destroyed under a running upload"
    );
    // The simulated GPU runs the copy: then, and only then, the image goes.
    device.complete_all();
    c.maintain().expect("maintain");
    assert!(ticket.is_complete().unwrap());
    assert_eq!(c.stats().images_destroyed, 1);
    assert!(device.read_image(raw, 0, 0).is_err(), "the image is gone");
    device.assert_no_misuse();
}

#[test]
fn an_image_held_past_its_coordinator_is_destroyed_and_reported_as_leaked() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = texture_desc();
    let texels = pattern(desc.packed_bytes() as usize, 1);
    let (image, _ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    let stats = c.shutdown();
    assert_eq!(stats.leaked_images, 1);
    assert_eq!(stats.images_destroyed, 1);
    assert!(!image.is_live());
    drop(image);
    device.assert_no_misuse();
    assert!(device.leak_report().is_empty(), "{}", device.leak_report());
}

/// A coordinator with a 64 KiB staging ring whose uploads are at most `max_ring_upload` bytes.
fn small_ring(
    config: DeviceConfig,
    max_ring_upload: u64,
    back_pressure: BackPressure,
) -> (Coordinator<DummyDevice>, DummyDevice) {
    let device = DummyDevice::new(config).expect("device");
    let config = CoordinatorConfig {
        staging_ring_size: 64 << 10,
        max_ring_upload,
        back_pressure,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    (c, device)
}

fn assert_every_level_and_layer(
    device: &DummyDevice,
    image: &Image<DummyDevice>,
    texels: &[u8],
    what: &str,
) {
    let desc = image.desc();
    for level in 0..desc.mip_levels {
        for layer in 0..desc.array_layers {
            assert!(
                read(device, image, level, layer)[..] == texels[layer_range(desc, level, layer)],
                "{what}: level {level} layer {layer} differs"
            );
        }
    }
}

#[test]
fn a_texture_larger_than_a_ring_upload_streams_through_the_ring_in_row_bands() {
    let desc = texture_desc();
    let texels = pattern(desc.packed_bytes() as usize, 21);
    // Level 0 is 9028 bytes per layer, over the 4 KiB limit: cut into bands of 16 rows (244-byte
    // rows), with the small levels packed into groups of their own.
    let (c, device) = small_ring(DeviceConfig::discrete(), 4096, BackPressure::WaitForGpu);
    let (image, ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    ticket.wait().expect("upload");
    assert_every_level_and_layer(&device, &image, &texels, "through the ring");
    let stats = c.stats();
    assert_eq!(stats.buffers_created, 0, "no staging buffer of its own");
    assert!(
        stats.ring.drained_bytes >= desc.packed_bytes(),
        "{:?}",
        stats.ring
    );
    // 2 layers x 3 bands of level 0, then the rest (every group at most 4 KiB).
    assert!(stats.submissions >= 7, "{} submissions", stats.submissions);
    assert_eq!(stats.image_bytes_uploaded, desc.packed_bytes());
    // Its room came back: the ring is empty once the copies completed.
    c.maintain().expect("maintain");
    assert_eq!(c.stats().ring.bytes_in_flight, 0);
    device.assert_no_misuse();

    // Where the queue copies whole levels only, a level over the limit cannot be cut: it goes
    // through a staging buffer of its own, and lands the same.
    let (c, device) = small_ring(
        DeviceConfig::discrete().with_image_copy_granularity([0, 0, 0]),
        4096,
        BackPressure::WaitForGpu,
    );
    let (image, ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    ticket.wait().expect("upload");
    assert_every_level_and_layer(&device, &image, &texels, "whole levels only");
    assert_eq!(c.stats().buffers_created, 1, "one staging buffer");
    device.assert_no_misuse();
}

#[test]
fn texels_in_padded_rows_land_as_packed_ones_do_through_the_ring_in_bands_or_own_staging() {
    // Level 0 of both layers (61 x 37), read from offset 6 of a picture whose rows are 64
    // texels long and whose layers are 40 rows apart.
    let desc = texture_desc();
    let region = ImageCopy::whole_level(&desc, 0, 6).with_buffer_layout(64, 40);
    assert_eq!(
        region.buffer_bytes(desc.format),
        Some(((40 + 36) * 64 + 61) * 4)
    );
    assert_padded_upload_lands(&desc, region);
}

#[test]
fn compressed_blocks_in_padded_rows_land_through_the_ring_in_bands_or_own_staging() {
    // Level 0 of a 2-layer 70 x 66 BC7 texture (18 x 17 blocks of 16 bytes, 4896 bytes a
    // layer, the last column and row partial), read from offset 32 of a picture whose rows are
    // 80 texels (20 blocks) long and whose layers are 68 texel rows (17 block rows) apart.
    let desc = ImageDesc::new_2d(ImageFormat::Bc7Srgb, 70, 66, TEXTURE_USAGE)
        .with_full_mip_chain()
        .with_array_layers(2);
    let region = ImageCopy::whole_level(&desc, 0, 32).with_buffer_layout(80, 68);
    assert_eq!(
        region.buffer_bytes(desc.format),
        Some(((17 + 16) * 20 + 18) * 16)
    );
    assert_padded_upload_lands(&desc, region);
}

#[test]
fn astc_blocks_of_10x6_in_padded_rows_land_through_the_ring_in_bands_or_own_staging() {
    // Level 0 of a 2-layer 205 x 100 ASTC texture in 10x6 blocks (21 x 17 blocks of 16 bytes,
    // 5712 bytes a layer, the last column 5 texels and the last row 4), read from offset 48 of a
    // picture whose rows are 230 texels (23 blocks) long and whose layers are 108 texel rows
    // (18 block rows) apart. Bands are cut in rows of 6 texels, offsets in multiples of 10.
    let desc = ImageDesc::new_2d(
        ImageFormat::AstcSrgb(AstcBlock::B10x6),
        205,
        100,
        TEXTURE_USAGE,
    )
    .with_full_mip_chain()
    .with_array_layers(2);
    let region = ImageCopy::whole_level(&desc, 0, 48).with_buffer_layout(230, 108);
    assert_eq!(
        region.buffer_bytes(desc.format),
        Some(((18 + 16) * 23 + 21) * 16)
    );
    assert_padded_upload_lands(&desc, region);
}

/// Uploads `region` (every layer of one level, at its own row and slice pitches) out of a
/// picture whose padding holds bytes that must never reach the image, three ways: as one ring
/// group, in bands through a ring whose uploads are at most 4 KiB, and through a staging buffer
/// of its own (whole levels only). Each lands block for block as the packed blocks would, and
/// the ring stages the blocks, not the padding.
fn assert_padded_upload_lands(desc: &ImageDesc, region: ImageCopy) {
    let format = desc.format;
    let [_, rows, _] = format.blocks(region.extent);
    let packed_bytes = region.packed_bytes(format).unwrap();
    let span = region.buffer_bytes(format).unwrap();
    let [row_pitch, slice_pitch, _] = region.buffer_pitches(format).unwrap();
    let layer_bytes = (packed_bytes / u64::from(region.layer_count)) as usize;
    let row_bytes = layer_bytes / rows as usize;
    let packed = pattern(packed_bytes as usize, 31);
    let mut picture = vec![0xA5; (region.buffer_offset + span) as usize];
    for (i, row) in packed.chunks(row_bytes).enumerate() {
        let (layer, y) = ((i / rows as usize) as u64, (i % rows as usize) as u64);
        let at = (region.buffer_offset + layer * slice_pitch + y * row_pitch) as usize;
        picture[at..at + row.len()].copy_from_slice(row);
    }
    // A desktop device that samples the mobile families too, so one helper serves every format.
    let device = || DeviceConfig::discrete().with_texture_compression(TextureCompression::ALL);
    let ways = [
        ("one ring group", coordinator(device()), 0),
        (
            "bands of rows",
            small_ring(device(), 4096, BackPressure::WaitForGpu),
            0,
        ),
        (
            "a staging buffer of its own",
            small_ring(
                device().with_image_copy_granularity([0, 0, 0]),
                4096,
                BackPressure::WaitForGpu,
            ),
            1,
        ),
    ];
    for (way, (c, device), staging_buffers) in ways {
        let image = c
            .create_image(desc, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("image");
        let ticket = c.upload_image(&image, &[region], &picture).expect(way);
        ticket.wait().expect(way);
        for layer in 0..region.layer_count {
            let expected = &packed.chunks(layer_bytes).nth(layer as usize).unwrap();
            assert!(
                read(&device, &image, region.mip_level, layer)[..] == **expected,
                "{way}: layer {layer} differs"
            );
        }
        let stats = c.stats();
        assert_eq!(stats.image_bytes_uploaded, packed_bytes, "{way}");
        assert_eq!(stats.buffers_created, staging_buffers, "{way}");
        if staging_buffers == 0 {
            // Staged packed: the ring held the blocks and alignment gaps, not the padding.
            assert!(
                (packed_bytes..span).contains(&stats.ring.drained_bytes),
                "{way}: {} bytes staged",
                stats.ring.drained_bytes
            );
        }
        drop(image);
        c.maintain().expect("maintain");
        device.assert_no_misuse();
    }
}

#[test]
fn a_compressed_texture_created_with_data_holds_every_level_on_every_preset_that_samples_it() {
    // BC1, ETC2 RGB and EAC R11 (8-byte blocks of 4x4), BC7 and ETC2 RGBA (16-byte blocks of
    // 4x4), and ASTC in footprints up to 12x12, most of them not powers of two; 70 x 38: every
    // level down to 1 x 1 ends in partial blocks. On every preset whose device samples the
    // format's family, through the ring in bands, and as one group.
    let formats = [
        ImageFormat::Bc1RgbaSrgb,
        ImageFormat::Bc7Unorm,
        ImageFormat::Etc2Rgb8Unorm,
        ImageFormat::Etc2Rgba8Srgb,
        ImageFormat::EacR11Unorm,
        ImageFormat::EacRg11Unorm,
        ImageFormat::AstcSrgb(AstcBlock::B4x4),
        ImageFormat::AstcUnorm(AstcBlock::B5x5),
        ImageFormat::AstcSrgb(AstcBlock::B6x5),
        ImageFormat::AstcUnorm(AstcBlock::B8x6),
        ImageFormat::AstcSrgb(AstcBlock::B10x10),
        ImageFormat::AstcUnorm(AstcBlock::B12x10),
    ];
    for format in formats {
        let family = format.compression().expect("compressed");
        let desc = ImageDesc::new_2d(format, 70, 38, TEXTURE_USAGE)
            .with_full_mip_chain()
            .with_array_layers(2);
        let texels = pattern(desc.packed_bytes() as usize, 9);
        let small = small_ring(
            DeviceConfig::discrete().with_texture_compression(TextureCompression::ALL),
            1024,
            BackPressure::WaitForGpu,
        );
        let coordinators = Preset::ALL
            .into_iter()
            .filter(|preset| preset.config().texture_compression.samples(family))
            .map(|preset| (preset.to_string(), coordinator(preset.config())))
            .chain([("bands of 1 KiB".to_string(), small)]);
        let mut devices = 0;
        for (what, (c, device)) in coordinators {
            devices += 1;
            let (image, ticket) = c
                .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
                .expect("texture");
            ticket.wait().expect("upload");
            assert_every_level_and_layer(&device, &image, &texels, &format!("{format:?} {what}"));
            assert_eq!(c.stats().buffers_created, 0, "{what}");
            drop(image);
            c.maintain().expect("maintain");
            device.assert_no_misuse();
        }
        // A device of the family ran it besides the small ring's: mobile for ETC2 and ASTC.
        assert!(devices >= 2, "{format:?} ran on {devices} devices");
    }
}

/// A device refuses a compressed format of a family it does not sample, with a typed error and
/// nothing created: BC on the mobile preset, ETC2 and ASTC on the desktop ones.
#[test]
fn a_compressed_family_the_device_does_not_sample_is_refused_with_nothing_created() {
    let formats = [
        ImageFormat::Bc7Srgb,
        ImageFormat::Etc2Rgba8Unorm,
        ImageFormat::AstcUnorm(AstcBlock::B6x6),
    ];
    let mut refused = 0;
    for preset in Preset::ALL {
        let families = preset.config().texture_compression;
        let (c, device) = coordinator(preset.config());
        for format in formats {
            let desc = ImageDesc::new_2d(format, 64, 64, TEXTURE_USAGE).with_full_mip_chain();
            let texels = pattern(desc.packed_bytes() as usize, 1);
            let result = c.create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels);
            if families.samples(format.compression().expect("compressed")) {
                assert!(result.is_ok(), "{preset} {format:?}: {:?}", result.err());
                continue;
            }
            refused += 1;
            assert_eq!(
                result.err(),
                Some(Error::Device(DeviceError::InvalidImage(
                    ImageDescError::Unsupported
                ))),
                "{preset} {format:?}"
            );
        }
        let stats = c.stats();
        assert_eq!(
            stats.submissions, stats.images_created,
            "{preset}: one upload per image"
        );
        drop(c);
        assert!(
            device.leak_report().is_empty(),
            "{preset}: {}",
            device.leak_report()
        );
        device.assert_no_misuse();
    }
    // BC on mobile; ETC2 and ASTC on each of the four desktop presets.
    assert_eq!(refused, 1 + 4 * 2);
}

#[test]
fn an_image_uploads_ring_room_comes_back_only_after_its_copy_completed() {
    let (c, device) = small_ring(DeviceConfig::discrete(), 16 << 10, BackPressure::Fail);
    device.set_wait_mode(WaitMode::Manual);
    device.set_complete_on_submit(false);
    // 16 KiB of texels in one group, submitted at once and still running.
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 64, 64, TEXTURE_USAGE);
    let texels = pattern(desc.packed_bytes() as usize, 33);
    let (image, ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    c.maintain().expect("maintain");
    assert!(!ticket.is_complete().unwrap());
    assert_eq!(c.stats().ring.bytes_in_flight, 16 << 10);
    // The other 48 KiB of the ring take three 16 KiB buffer uploads; a fourth would need the
    // image's room, which its running copy still reads.
    let buffer = c
        .create_buffer(64 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    for i in 0..3u8 {
        c.upload_to(&buffer, u64::from(i) * (16 << 10), &[i; 16 << 10])
            .expect("room");
    }
    let refused = c.upload_to(&buffer, 48 << 10, &[3u8; 16 << 10]);
    assert!(
        matches!(refused, Err(Error::StagingFull { wait_for: Some(v) }) if v == ticket.value().unwrap()),
        "{refused:?}, image at {:?}, {:?}",
        ticket.value(),
        c.stats().ring
    );
    device.complete_all();
    let flushed = c.flush_transfers().expect("flush");
    device.complete_all();
    flushed.wait().expect("buffers");
    assert_every_level_and_layer(&device, &image, &texels, "image");
    // Its room is back: the fourth upload fits now.
    c.upload_to(&buffer, 48 << 10, &[3u8; 16 << 10])
        .expect("room after the copy");
    let flushed = c.flush_transfers().expect("flush");
    device.complete_all();
    flushed.wait().expect("buffer");
    let bytes = device
        .read_buffer(buffer.raw(), 0, 64 << 10)
        .expect("buffer");
    for i in 0..4usize {
        assert!(bytes[i << 14..(i + 1) << 14].iter().all(|&b| b == i as u8));
    }
    device.assert_no_misuse();
}

#[test]
fn textures_and_buffers_from_several_threads_share_the_ring_and_all_land() {
    let (c, device) = small_ring(DeviceConfig::discrete(), 8 << 10, BackPressure::WaitForGpu);
    let c = std::sync::Arc::new(c);
    let desc = texture_desc();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let c = std::sync::Arc::clone(&c);
            std::thread::spawn(move || {
                let mut done = Vec::new();
                for round in 0..6u8 {
                    let seed = t * 16 + round;
                    let texels = pattern(desc.packed_bytes() as usize, seed);
                    let (image, _) = c
                        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
                        .expect("texture");
                    let bytes = pattern(5000, seed ^ 0x55);
                    let (buffer, _) = c.upload_slice(&bytes).expect("buffer");
                    done.push((image, texels, buffer, bytes));
                }
                done
            })
        })
        .collect();
    let done: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    c.flush_transfers().expect("flush").wait().expect("all");
    for (i, (image, texels, buffer, bytes)) in done.iter().enumerate() {
        assert_every_level_and_layer(&device, image, texels, &format!("texture {i}"));
        let got = device
            .read_buffer(buffer.raw(), 0, bytes.len())
            .expect("buffer");
        assert!(got == *bytes, "buffer {i} differs");
    }
    assert_eq!(
        c.stats().buffers_created,
        24,
        "no staging buffer of its own"
    );
    device.assert_no_misuse();
}
