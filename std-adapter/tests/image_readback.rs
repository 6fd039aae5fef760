//! Reading images back through the coordinator (`Coordinator::read_back_image`): the simulated
//! GPU copies the texels it really holds into a landing buffer at each region's offset and
//! pitches, in queue order with the uploads around it, with the image kept alive under the copy
//! and bad requests refused with a typed error and nothing submitted.

use memkit_core::device::{
    AstcBlock, DeviceError, ImageCopy, ImageCopyError, ImageDesc, ImageFormat, ImageUsage,
};
use memkit_dummy::{DeviceConfig, DummyDevice, Preset, WaitMode};
use memkit_std::{Coordinator, CoordinatorConfig, Error, Image, MemoryUsage};
use std::time::Duration;

const READABLE: ImageUsage = ImageUsage::SAMPLED
    .union(ImageUsage::TRANSFER_DST)
    .union(ImageUsage::TRANSFER_SRC);
/// What the simulated GPU writes through a stale mapping: a read that skipped the invalidation
/// of non-coherent memory would see this.
const STALE: u8 = 0xEE;

fn coordinator(config: DeviceConfig) -> (Coordinator<DummyDevice>, DummyDevice) {
    let device = DummyDevice::new(config.with_stale_read_fill(Some(STALE))).expect("device");
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    (c, device)
}

/// 61 x 37 texels, every level down to 1 x 1 (6 levels), 2 layers: odd extents everywhere.
fn texture_desc(format: ImageFormat) -> ImageDesc {
    ImageDesc::new_2d(format, 61, 37, READABLE)
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

/// Every level, whole, packed one after another from 0: the layout
/// `create_image_with_data` takes.
fn whole_levels(desc: &ImageDesc) -> Vec<ImageCopy> {
    let mut offset = 0;
    (0..desc.mip_levels)
        .map(|level| {
            let region = ImageCopy::whole_level(desc, level, offset);
            offset += region.packed_bytes(desc.format).unwrap();
            region
        })
        .collect()
}

fn texture(
    c: &Coordinator<DummyDevice>,
    desc: &ImageDesc,
    seed: u8,
) -> (Image<DummyDevice>, Vec<u8>) {
    let texels = pattern(desc.packed_bytes() as usize, seed);
    let (image, ticket) = c
        .create_image_with_data(desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .expect("texture");
    ticket.wait().expect("upload");
    (image, texels)
}

/// The formats tried on `preset`: RGBA8 and the compressed ones it samples (BC on the desktop
/// presets; ETC2, EAC and ASTC, in square and oblong footprints that are not powers of two, on
/// the mobile one).
fn formats_of(preset: Preset) -> Vec<ImageFormat> {
    let families = preset.config().texture_compression;
    let mut formats = vec![ImageFormat::Rgba8Unorm];
    if families.bc {
        formats.extend([ImageFormat::Bc7Unorm, ImageFormat::Bc1RgbaSrgb]);
    }
    if families.etc2 {
        formats.extend([ImageFormat::Etc2Rgba8Srgb, ImageFormat::EacR11Unorm]);
    }
    if families.astc_ldr {
        formats.extend([
            ImageFormat::AstcSrgb(AstcBlock::B4x4),
            ImageFormat::AstcUnorm(AstcBlock::B5x4),
            ImageFormat::AstcSrgb(AstcBlock::B10x6),
            ImageFormat::AstcUnorm(AstcBlock::B12x12),
        ]);
    }
    formats
}

#[test]
fn every_level_reads_back_as_it_was_uploaded_on_every_preset() {
    for preset in Preset::ALL {
        for format in formats_of(preset) {
            let (c, device) = coordinator(preset.config());
            let desc = texture_desc(format);
            let (image, texels) = texture(&c, &desc, 3);
            let readback = c
                .read_back_image(&image, &whole_levels(&desc))
                .expect("read back");
            assert_eq!(
                readback.size(),
                desc.packed_bytes(),
                "{preset:?} {format:?}"
            );
            assert!(
                readback.wait().expect("wait") == texels,
                "{preset:?} {format:?}: the texels differ"
            );
            let stats = c.stats();
            assert_eq!(stats.read_backs, 1);
            assert_eq!(stats.bytes_read_back, desc.packed_bytes());
            device.assert_no_misuse();
        }
    }
}

#[test]
fn boxes_land_at_their_offsets_and_pitches_and_two_halves_interleave_into_one_picture() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = texture_desc(ImageFormat::Rgba8Unorm);
    let (image, texels) = texture(&c, &desc, 7);
    // Level 0, layer 1 (61 x 37), as its left 32 columns and the rest, each read into rows of 61
    // texels: the halves' rows interleave, their bytes do not meet.
    let layer_bytes = 61 * 37 * 4;
    let half = |x: u32, width: u32| {
        ImageCopy {
            base_array_layer: 1,
            layer_count: 1,
            offset: [x, 0, 0],
            extent: [width, 37, 1],
            ..ImageCopy::whole_level(&desc, 0, u64::from(x) * 4)
        }
        .with_buffer_layout(61, 0)
    };
    let readback = c
        .read_back_image(&image, &[half(0, 32), half(32, 29)])
        .expect("read back");
    assert_eq!(readback.size(), layer_bytes as u64);
    assert!(readback.wait().unwrap()[..] == texels[layer_bytes..2 * layer_bytes]);
    // A 5 x 3 box of level 1 (30 x 18), layer 0, from offset 64 in rows of 8 texels: the rows
    // land 32 bytes apart.
    let level1 = 2 * layer_bytes;
    let corner = ImageCopy {
        layer_count: 1,
        offset: [25, 15, 0],
        extent: [5, 3, 1],
        ..ImageCopy::whole_level(&desc, 1, 64)
    }
    .with_buffer_layout(8, 0);
    let bytes = c
        .read_back_image(&image, &[corner])
        .expect("read back")
        .wait()
        .unwrap();
    assert_eq!(bytes.len(), 64 + 2 * 32 + 5 * 4);
    for y in 0..3 {
        let from = level1 + ((15 + y) * 30 + 25) * 4;
        let at = 64 + y * 32;
        assert_eq!(bytes[at..at + 20], texels[from..from + 20], "row {y}");
    }
    device.assert_no_misuse();
}

#[test]
fn a_read_back_sees_the_uploads_before_it_and_none_after_it() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    device.set_wait_mode(WaitMode::Manual);
    device.set_complete_on_submit(false);
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, READABLE);
    let first = pattern(desc.packed_bytes() as usize, 1);
    let (image, _) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &first)
        .expect("texture");
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    // Nothing has run on the GPU yet: the queue orders the read after the upload, and the
    // re-upload after the read.
    let before = c.read_back_image(&image, &whole).expect("read back");
    let second = pattern(desc.packed_bytes() as usize, 2);
    let reupload = c.upload_image(&image, &whole, &second).expect("upload");
    let after = c.read_back_image(&image, &whole).expect("read back");
    assert!(!before.is_ready().unwrap());
    device.complete_all();
    assert!(reupload.is_complete().unwrap());
    assert!(before.wait().unwrap() == first);
    assert!(after.wait().unwrap() == second);
    device.assert_no_misuse();
}

#[test]
fn bad_read_backs_are_typed_errors_that_submit_and_create_nothing() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let (other, _) = coordinator(DeviceConfig::discrete());
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, READABLE);
    let (image, _) = texture(&c, &desc, 5);
    let (foreign, _) = texture(&other, &desc, 5);
    let not_source = ImageDesc {
        usage: READABLE.difference(ImageUsage::TRANSFER_SRC),
        ..desc
    };
    let (sampled_only, _) = texture(&c, &not_source, 5);
    let never_written = c
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("image");
    let whole = ImageCopy::whole_level(&desc, 0, 0);
    let row = |y: u32, at: u64| ImageCopy {
        offset: [0, y, 0],
        extent: [16, 1, 1],
        ..ImageCopy::whole_level(&desc, 0, at)
    };
    let submitted = device.last_submitted();
    let buffers = c.stats().buffers_created;
    let cases: [(&Image<DummyDevice>, Vec<ImageCopy>, Error); 7] = [
        (&image, vec![], Error::ZeroSize),
        (&foreign, vec![whole], Error::ForeignImage),
        (
            &sampled_only,
            vec![whole],
            Error::ImageCopy(ImageCopyError::NotTransferSrc),
        ),
        (&never_written, vec![whole], Error::ImageNotWritten),
        (
            &image,
            vec![row(0, 0), row(1, 60)],
            Error::OverlappingImageRegions,
        ),
        (
            &image,
            vec![ImageCopy::whole_level(&desc, 0, 2)],
            Error::ImageCopy(ImageCopyError::MisalignedBufferOffset),
        ),
        (
            &image,
            vec![ImageCopy {
                mip_level: 1,
                ..whole
            }],
            Error::ImageCopy(ImageCopyError::NoSuchLevel),
        ),
    ];
    for (i, (target, regions, error)) in cases.into_iter().enumerate() {
        assert_eq!(
            c.read_back_image(target, &regions).err(),
            Some(error),
            "case {i}"
        );
    }
    assert_eq!(device.last_submitted(), submitted, "nothing submitted");
    assert_eq!(c.stats().buffers_created, buffers, "no landing buffer made");
    assert_eq!(c.stats().read_backs, 0);
    // Rows side by side are fine.
    let rows = c
        .read_back_image(&image, &[row(0, 0), row(1, 64)])
        .expect("read back");
    assert_eq!(rows.size(), 128);
    device.assert_no_misuse();
}

#[test]
fn an_image_dropped_under_its_read_back_lives_until_the_copy_completed() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, READABLE);
    let (image, texels) = texture(&c, &desc, 9);
    device.set_wait_mode(WaitMode::Manual);
    device.set_complete_on_submit(false);
    let readback = c
        .read_back_image(&image, &[ImageCopy::whole_level(&desc, 0, 0)])
        .expect("read back");
    drop(image);
    c.maintain().expect("maintain");
    assert_eq!(c.stats().images_destroyed, 0, "destroyed under its read");
    device.complete_all();
    c.maintain().expect("maintain");
    assert_eq!(c.stats().images_destroyed, 1);
    assert!(readback.wait().unwrap() == texels);
    device.assert_no_misuse();
}

#[test]
fn a_refused_read_back_leaves_the_timeline_whole_and_its_landing_buffer_for_the_next() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, READABLE);
    let (image, texels) = texture(&c, &desc, 11);
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    let refuse_next = || {
        device.fail_submit_call(
            device.counters().submit_calls + 1,
            DeviceError::OutOfHostMemory,
        )
    };
    let submitted = device.last_submitted();
    refuse_next();
    assert_eq!(
        c.read_back_image(&image, &whole).err(),
        Some(Error::Device(DeviceError::OutOfHostMemory))
    );
    assert_eq!(device.last_submitted(), submitted);
    // The refused read took a value: a flush signals it, so a wait for everything handed out
    // finishes.
    let flushed = c.flush_transfers().expect("flush");
    assert_eq!(flushed.wait_timeout(Duration::from_secs(5)), Ok(true));
    assert_eq!(device.last_submitted(), submitted + 1);
    // Refused again, and read again at once: the refused value is signalled first, and the
    // read lands in the landing buffer the refused one gave back.
    refuse_next();
    assert!(c.read_back_image(&image, &whole).is_err());
    let readback = c.read_back_image(&image, &whole).expect("read back");
    assert!(readback.wait().unwrap() == texels);
    let flushed = c.flush_transfers().expect("flush");
    assert_eq!(flushed.wait_timeout(Duration::from_secs(5)), Ok(true));
    assert_eq!(device.last_submitted(), submitted + 3);
    let stats = c.stats();
    assert_eq!(stats.read_back_buffers_reused, 2);
    assert_eq!(stats.completed_value, stats.submitted_value);
    device.assert_no_misuse();
}

/// A render target: drawn into by the application, never uploaded into.
const RENDER_TARGET: ImageUsage = READABLE.union(ImageUsage::COLOR_ATTACHMENT);

#[test]
fn a_render_target_the_application_drew_reads_back_once_marked_and_uploads_keep_the_drawing() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 8, RENDER_TARGET);
    let target = c
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("render target");
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    assert_eq!(
        c.read_back_image(&target, &whole).err(),
        Some(Error::ImageNotWritten)
    );
    assert!(!target.is_written());

    // The application's frame draws into the target and signals 1 on its timeline; the
    // coordinator's read-back is ordered after it on the GPU, not on the host.
    let frame = device.create_external_timeline();
    // SAFETY: the timeline is the device's and outlives the coordinator; the test signals 1.
    unsafe { c.wait_for_external(frame, 1) }.expect("wait");
    // SAFETY: the frame below draws every texel and leaves the target in its layout after
    // upload (the simulated application's write does both), and the read-back is ordered after
    // it by the wait above; one queue family.
    unsafe { target.mark_written() };
    assert!(target.is_written());
    let drawn_read = c.read_back_image(&target, &whole).expect("read back");
    device.complete_all();
    assert!(
        !drawn_read.is_ready().unwrap(),
        "the copy waits for the application's frame"
    );
    let drawing = pattern(desc.packed_bytes() as usize, 7);
    device
        .application_writes_image(target.raw(), 0, 0, &drawing)
        .expect("the application's draw");
    device.signal_external(frame, 1).expect("our timeline");
    device.complete_all();
    assert!(drawn_read.wait().unwrap() == drawing);

    // An upload of two rows keeps the rest of the drawing (the simulator fills what an upload
    // discards with 0xDD).
    let rows = ImageCopy {
        offset: [0, 2, 0],
        extent: [16, 2, 1],
        ..whole[0]
    };
    let patch = pattern(2 * 16 * 4, 99);
    c.upload_image(&target, &[rows], &patch).expect("upload");
    let patched_read = c.read_back_image(&target, &whole).expect("read back");
    device.complete_all();
    let mut patched = drawing.clone();
    patched[2 * 16 * 4..4 * 16 * 4].copy_from_slice(&patch);
    assert!(patched_read.wait().unwrap() == patched);
    device.assert_no_misuse();
}

#[test]
fn an_image_marked_written_that_nothing_wrote_is_a_misuse_the_simulator_reports() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, RENDER_TARGET);
    let target = c
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("render target");
    // SAFETY: deliberately broken (nothing wrote the image): the simulator records it.
    unsafe { target.mark_written() };
    let read = c
        .read_back_image(&target, &[ImageCopy::whole_level(&desc, 0, 0)])
        .expect("read back");
    device.complete_all();
    read.wait().expect("the copy ran");
    assert_eq!(
        device.misuse_kinds(),
        [memkit_dummy::MisuseKind::ReadOfUndefinedImage]
    );
}

#[test]
fn a_depth_target_the_application_drew_reads_back_and_a_depth_stencil_one_is_refused() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let usage = READABLE.union(ImageUsage::DEPTH_STENCIL_ATTACHMENT);
    for format in [
        ImageFormat::D32Float,
        ImageFormat::D16Unorm,
        ImageFormat::S8Uint,
    ] {
        let desc = ImageDesc::new_2d(format, 24, 10, usage).with_array_layers(2);
        let target = c
            .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("depth target");
        // The application's depth pass over both layers, ordered before the read by the host
        // here: it completed.
        let drawing = pattern(desc.packed_bytes() as usize, 31);
        for (layer, texels) in drawing.chunks(drawing.len() / 2).enumerate() {
            device
                .application_writes_image(target.raw(), 0, layer as u32, texels)
                .expect("the application's pass");
        }
        // SAFETY: the pass above wrote every texel, completed, and left the image in its layout
        // after upload (the simulated application's write does both).
        unsafe { target.mark_written() };
        let read = c
            .read_back_image(&target, &[ImageCopy::whole_level(&desc, 0, 0)])
            .expect("read back");
        device.complete_all();
        assert!(read.wait().unwrap() == drawing, "{format:?}");
        // Uploads into depth stay refused: the copy engine cannot write depth.
        assert_eq!(
            c.upload_image(&target, &[ImageCopy::whole_level(&desc, 0, 0)], &drawing)
                .err(),
            Some(Error::ImageCopy(ImageCopyError::DepthFormat)),
            "{format:?}"
        );
    }
    let both = ImageDesc::new_2d(ImageFormat::D32FloatS8Uint, 8, 8, usage);
    let target = c
        .create_image(&both, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("depth-stencil target");
    let drawing = pattern(both.packed_bytes() as usize, 32);
    device
        .application_writes_image(target.raw(), 0, 0, &drawing)
        .expect("the application's pass");
    // SAFETY: as above.
    unsafe { target.mark_written() };
    assert_eq!(
        c.read_back_image(&target, &[ImageCopy::whole_level(&both, 0, 0)])
            .err(),
        Some(Error::ImageCopy(ImageCopyError::DepthFormat))
    );
    device.assert_no_misuse();
}
