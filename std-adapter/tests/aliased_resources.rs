//! `Coordinator::create_aliased_resources` on the simulated device: render targets and scratch
//! buffers never in use together share bytes of one allocation (a buffer and an image in use
//! together on pages of their own), the simulator sees every bind as intended aliasing, using
//! one resource undefines the resources overlapping it (the coordinator stops keeping or
//! reading what they held), copies into overlapping buffers go out one submission after the
//! other in call order, the shared range goes back only with the last resource, aliased
//! resources never move, and refused calls leave nothing behind.

use memkit_core::aliasing::AliasingError;
use memkit_core::device::{DeviceError, ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_dummy::{DeviceConfig, DummyDevice, MisuseKind};
use memkit_std::{
    AliasedBufferDesc, AliasedImageDesc, AliasedResources, Buffer, Coordinator, CoordinatorConfig,
    DefragmentationLimits, Error, Image, MemoryUsage, NotAliasableReason,
};

const TARGET: ImageUsage = ImageUsage::COLOR_ATTACHMENT
    .union(ImageUsage::SAMPLED)
    .union(ImageUsage::TRANSFER_SRC)
    .union(ImageUsage::TRANSFER_DST);

fn target(format: ImageFormat, width: u32, height: u32) -> ImageDesc {
    ImageDesc::new_2d(format, width, height, TARGET)
}

fn aliased(desc: ImageDesc, first_use: u32, last_use: u32) -> AliasedImageDesc {
    AliasedImageDesc {
        desc,
        first_use,
        last_use,
    }
}

fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(seed ^ (i >> 10) as u8)
        })
        .collect()
}

/// A device whose driver requires memory of their own for resources of 16 MiB and more.
fn dedicated_from_16_mib() -> DummyDevice {
    DummyDevice::new(DeviceConfig {
        dedicated_required_from: Some(16 << 20),
        ..DeviceConfig::discrete()
    })
    .expect("device")
}

fn coordinator(device: &DummyDevice) -> Coordinator<DummyDevice> {
    Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator")
}

/// A frame's render targets: the G-buffer's albedo (passes 0-1, 4 MiB), the HDR lighting
/// result (1-2, 8 MiB), bloom (2-3, 2 MiB) and the LDR output (3-4, 4 MiB).
fn frame(c: &Coordinator<DummyDevice>) -> AliasedResources<DummyDevice> {
    c.create_aliased_images(
        &[
            aliased(target(ImageFormat::Rgba8Unorm, 1024, 1024), 0, 1),
            aliased(target(ImageFormat::Rgba16Float, 1024, 1024), 1, 2),
            aliased(target(ImageFormat::Rgba8Unorm, 1024, 512), 2, 3),
            aliased(target(ImageFormat::Rgba8Unorm, 1024, 1024), 3, 4),
        ],
        MemoryUsage::FAST_DEVICE_ACCESS,
    )
    .expect("aliased images")
}

fn whole(image: &Image<DummyDevice>) -> [ImageCopy; 1] {
    [ImageCopy::whole_level(image.desc(), 0, 0)]
}

fn upload(c: &Coordinator<DummyDevice>, image: &Image<DummyDevice>, seed: u8) -> Vec<u8> {
    let texels = pattern(image.desc().packed_bytes(), seed);
    c.upload_image(image, &whole(image), &texels)
        .expect("upload")
        .wait()
        .expect("uploaded");
    texels
}

fn read_back(c: &Coordinator<DummyDevice>, image: &Image<DummyDevice>) -> Vec<u8> {
    c.read_back_image(image, &whole(image))
        .expect("read back")
        .wait()
        .expect("read")
}

#[test]
fn targets_never_in_use_together_share_bytes_of_one_allocation() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let before = c.stats().heaps[0].allocated_bytes;
    let set = frame(&c);
    let [albedo, hdr, bloom, ldr] = &set.images[..] else {
        panic!("four images")
    };
    let memory = albedo.memory().0;
    assert!(set.images.iter().all(|i| i.memory().0 == memory));
    let base = hdr.memory().1;
    let offset = |i: &Image<DummyDevice>| i.memory().1 - base;
    // Largest first: HDR (8 MiB) at the bottom; albedo meets it (pass 1), so it goes above;
    // LDR (3-4) meets neither, so it shares HDR's bytes; bloom (2-3) meets HDR and LDR, so it
    // shares albedo's.
    let mib = 1 << 20;
    assert_eq!(
        [offset(hdr), offset(albedo), offset(bloom), offset(ldr)],
        [0, 8 * mib, 8 * mib, 0]
    );
    assert_eq!(set.bytes, 12 * mib);
    assert_eq!(set.unaliased_bytes, 18 * mib);
    assert_eq!(c.stats().heaps[0].allocated_bytes - before, 12 * mib);
    device.assert_no_misuse();
}

#[test]
fn using_one_image_undefines_the_images_on_its_bytes_and_only_those() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = frame(&c);
    let [albedo, hdr, bloom, ldr] = &set.images[..] else {
        panic!("four images")
    };
    let hdr_texels = upload(&c, hdr, 1);
    let albedo_texels = upload(&c, albedo, 2);
    assert_eq!(read_back(&c, hdr), hdr_texels);
    assert_eq!(read_back(&c, albedo), albedo_texels);
    // LDR's upload overwrites HDR's bytes: HDR is no longer written, albedo (elsewhere) is.
    let ldr_texels = upload(&c, ldr, 3);
    assert!(!hdr.is_written());
    assert!(albedo.is_written());
    assert_eq!(
        c.read_back_image(hdr, &whole(hdr)).err(),
        Some(Error::ImageNotWritten)
    );
    assert_eq!(read_back(&c, ldr), ldr_texels);
    assert_eq!(read_back(&c, albedo), albedo_texels);
    // Bloom shares albedo's bytes.
    upload(&c, bloom, 4);
    assert!(!albedo.is_written(), "bloom's upload overwrote albedo");
    assert!(bloom.is_written());
    // An upload into part of HDR now discards the rest (nothing is kept from LDR's texels),
    // which the simulator would record as misuse otherwise.
    let half = ImageCopy {
        extent: [1024, 512, 1],
        ..ImageCopy::whole_level(hdr.desc(), 0, 0)
    };
    let texels = pattern(half.packed_bytes(hdr.desc().format).unwrap(), 5);
    c.upload_image(hdr, &[half], &texels)
        .expect("upload")
        .wait()
        .expect("uploaded");
    assert!(!ldr.is_written());
    assert_eq!(&read_back(&c, hdr)[..texels.len()], &texels[..]);
    // The application rendering into LDR (and saying so) undefines HDR again.
    // SAFETY: nothing in flight uses LDR; the simulator stands for the application's queue.
    unsafe { ldr.mark_written() };
    assert!(!hdr.is_written());
    assert!(bloom.is_written(), "LDR and bloom share no byte");
    device.assert_no_misuse();
}

#[test]
fn the_shared_range_goes_back_with_the_last_image() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let before = c.stats().heaps[0].allocated_bytes;
    let created = c.stats().images_created;
    let mut set = frame(&c);
    assert_eq!(c.stats().images_created - created, 4);
    let ldr = set.images.pop().expect("ldr");
    upload(&c, &ldr, 1);
    set.images.clear();
    c.maintain().expect("maintain");
    assert_eq!(
        c.stats().heaps[0].allocated_bytes - before,
        12 << 20,
        "LDR still holds the range"
    );
    assert_eq!(read_back(&c, &ldr), pattern(4 << 20, 1));
    drop(ldr);
    c.maintain().expect("maintain");
    let stats = c.stats();
    assert_eq!(stats.heaps[0].allocated_bytes, before);
    assert_eq!(stats.images_destroyed, stats.images_created);
    device.assert_no_misuse();
}

#[test]
fn images_held_past_the_coordinator_free_their_range_in_its_teardown() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = frame(&c);
    drop(c);
    assert!(set.images.iter().all(|i| !i.is_live()));
    drop(set);
    assert_eq!(device.live_memory(), []);
    device.assert_no_misuse();
}

#[test]
fn aliased_images_never_move_and_keep_their_block() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = frame(&c);
    for (seed, image) in set.images.iter().enumerate() {
        upload(&c, image, seed as u8);
    }
    let mut images = set.images;
    let memory: Vec<_> = images.iter().map(|i| i.memory()).collect();
    let outcome = c
        .defragment_with_images([], images.iter_mut(), &DefragmentationLimits::default())
        .expect("defragment");
    assert_eq!(outcome.moved_images, []);
    assert_eq!(outcome.unmovable, 4);
    outcome.ticket.wait().expect("nothing to copy");
    c.maintain().expect("maintain");
    assert_eq!(
        images.iter().map(|i| i.memory()).collect::<Vec<_>>(),
        memory
    );
    device.assert_no_misuse();
}

#[test]
fn refused_lists_create_nothing_and_leave_nothing() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let buffers = device.live_buffers();
    let desc = target(ImageFormat::Rgba8Unorm, 64, 64);
    assert_eq!(
        c.create_aliased_images(&[], MemoryUsage::FAST_DEVICE_ACCESS)
            .err(),
        Some(Error::Aliasing(AliasingError::Empty))
    );
    assert_eq!(
        c.create_aliased_images(
            &[aliased(desc, 0, 1), aliased(desc, 3, 2)],
            MemoryUsage::FAST_DEVICE_ACCESS
        )
        .err(),
        Some(Error::Aliasing(AliasingError::BadSpan { index: 1 }))
    );
    // A description the device refuses, after one it made: that one is destroyed.
    let bad = ImageDesc {
        mip_levels: 0,
        ..desc
    };
    assert!(matches!(
        c.create_aliased_images(
            &[aliased(desc, 0, 1), aliased(bad, 1, 2)],
            MemoryUsage::FAST_DEVICE_ACCESS
        ),
        Err(Error::Device(DeviceError::InvalidImage(_)))
    ));
    // The device runs out of memory for the range (in every type the pools fall back to, and
    // on the retry after maintenance).
    let calls = device.counters().allocation_calls;
    for n in 1..=8 {
        device.fail_allocation_call(calls + n, DeviceError::OutOfDeviceMemory);
    }
    let huge = target(ImageFormat::Rgba32Float, 8192, 8192);
    let refused = c.create_aliased_images(
        &[aliased(desc, 0, 0), aliased(huge, 0, 0)],
        MemoryUsage::FAST_DEVICE_ACCESS,
    );
    assert!(
        matches!(
            refused,
            Err(Error::Memory(_) | Error::Device(DeviceError::OutOfDeviceMemory))
        ),
        "{:?}",
        refused.map(|s| s.bytes)
    );
    assert_eq!(c.stats().images_created, 0);
    assert_eq!(
        device.live_buffers(),
        buffers,
        "every image made was destroyed"
    );
    device.lose_device();
    assert_eq!(
        c.create_aliased_images(&[aliased(desc, 0, 0)], MemoryUsage::FAST_DEVICE_ACCESS)
            .err(),
        Some(Error::DeviceLost)
    );
    device.assert_no_misuse();
}

#[test]
fn an_image_whose_driver_wants_memory_of_its_own_is_refused_by_position() {
    let device = dedicated_from_16_mib();
    let c = coordinator(&device);
    let (buffers, memory) = (device.live_buffers(), device.live_memory());
    let small = target(ImageFormat::Rgba8Unorm, 256, 256);
    let large = target(ImageFormat::Rgba8Unorm, 4096, 4096);
    assert_eq!(
        c.create_aliased_images(
            &[aliased(small, 0, 1), aliased(large, 2, 3)],
            MemoryUsage::FAST_DEVICE_ACCESS
        )
        .err(),
        Some(Error::NotAliasable {
            index: 1,
            reason: NotAliasableReason::DedicatedRequired
        })
    );
    assert_eq!(device.live_buffers(), buffers);
    assert_eq!(device.live_memory(), memory);
    device.assert_no_misuse();
}

#[test]
fn a_buffer_no_memory_type_of_the_images_allows_is_refused_by_position() {
    // Images only in device-local memory (type 0), buffers only in the host-visible types:
    // a render target and a scratch buffer have no type in common.
    let device = DummyDevice::new(
        DeviceConfig::discrete()
            .with_optimal_memory_type_bits(0b0001)
            .with_buffer_memory_type_bits(0b1110),
    )
    .expect("device");
    let c = coordinator(&device);
    let (buffers, memory) = (device.live_buffers(), device.live_memory());
    let image = aliased(target(ImageFormat::Rgba8Unorm, 256, 256), 0, 1);
    let buffer = AliasedBufferDesc {
        size: 1 << 20,
        first_use: 2,
        last_use: 3,
    };
    assert_eq!(
        c.create_aliased_resources(&[image], &[buffer], MemoryUsage::FAST_DEVICE_ACCESS)
            .err(),
        Some(Error::NotAliasable {
            index: 1,
            reason: NotAliasableReason::NoCommonMemoryType
        })
    );
    assert_eq!(device.live_buffers(), buffers, "both were destroyed");
    assert_eq!(device.live_memory(), memory, "no memory was taken");
    // Each kind on its own still shares memory: a second image after the first, a second
    // buffer after the first, on the same bytes.
    let later_image = aliased(image.desc, 2, 3);
    let later_buffer = AliasedBufferDesc {
        first_use: 4,
        last_use: 5,
        ..buffer
    };
    let images = c
        .create_aliased_resources(&[image, later_image], &[], MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("images alone");
    let scratch = c
        .create_aliased_resources(
            &[],
            &[buffer, later_buffer],
            MemoryUsage::FAST_DEVICE_ACCESS,
        )
        .expect("buffers alone");
    assert_eq!(images.images[0].memory(), images.images[1].memory());
    assert_eq!(scratch.buffers[0].memory(), scratch.buffers[1].memory());
    device.assert_no_misuse();
}

#[test]
fn aliasing_a_plainly_bound_image_would_be_caught() {
    // The check the tests above rely on: the simulator records an image bound over another's
    // bytes unless both were bound as aliases.
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = frame(&c);
    let (memory, offset) = set.images[0].memory();
    let (raw, _) = device.create_image(set.images[0].desc()).expect("image");
    device.bind_image_memory(raw, memory, offset).expect("bind");
    assert!(device.misuse_kinds().contains(&MisuseKind::AliasedBinding));
    device.take_misuses();
    device.destroy_image(raw);
}

fn scratch(size: u64, first_use: u32, last_use: u32) -> AliasedBufferDesc {
    AliasedBufferDesc {
        size,
        first_use,
        last_use,
    }
}

/// A compute-heavy frame: a 1 MiB (256 x 256 RGBA32F) image written in pass 0 and read in pass
/// 1, a small buffer of light indices used in pass 1 with it, and a histogram buffer of pass 2
/// that may take the image's bytes.
fn compute_frame(c: &Coordinator<DummyDevice>) -> AliasedResources<DummyDevice> {
    c.create_aliased_resources(
        &[aliased(target(ImageFormat::Rgba32Float, 256, 256), 0, 1)],
        &[scratch(3000, 1, 1), scratch(512 << 10, 2, 2)],
        MemoryUsage::FAST_DEVICE_ACCESS,
    )
    .expect("aliased resources")
}

fn upload_buffer(c: &Coordinator<DummyDevice>, buffer: &Buffer<DummyDevice>, seed: u8) -> Vec<u8> {
    let bytes = pattern(buffer.size(), seed);
    c.upload_to(buffer, 0, &bytes)
        .expect("upload")
        .wait()
        .expect("uploaded");
    bytes
}

fn read_back_buffer(c: &Coordinator<DummyDevice>, buffer: &Buffer<DummyDevice>) -> Vec<u8> {
    c.read_back(buffer, 0, buffer.size())
        .expect("read back")
        .wait()
        .expect("read")
}

#[test]
fn a_buffer_in_use_with_an_image_keeps_off_its_pages_and_one_not_shares_its_bytes() {
    let device = DummyDevice::discrete();
    let granularity = device.limits().buffer_image_granularity;
    let c = coordinator(&device);
    // Plain neighbours on both sides of the range: none may share a page with what is inside.
    let below = c
        .create_buffer(100, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let set = compute_frame(&c);
    let above = c
        .create_buffer(100, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let image = &set.images[0];
    let [lights, histogram] = &set.buffers[..] else {
        panic!("two buffers")
    };
    let (memory, base) = image.memory();
    assert_eq!(lights.memory().0, memory);
    assert_eq!(base % granularity, 0, "the range starts on a page");
    assert_eq!(set.bytes % granularity, 0, "and ends on one");
    // The histogram (pass 2) takes the image's bytes; the lights (pass 1, with the image) go
    // on the first page above the image's last.
    assert_eq!(histogram.memory(), (memory, base));
    let image_end = base + image.memory_size();
    assert_eq!(lights.memory().1, image_end.next_multiple_of(granularity));
    assert_eq!(
        set.bytes,
        (1 << 20) + 3008_u64.next_multiple_of(granularity)
    );
    assert_eq!(set.unaliased_bytes, (1 << 20) + 3008 + (512 << 10));
    drop((below, above));
    // No granularity conflict, no aliasing outside the set.
    device.assert_no_misuse();
}

#[test]
fn an_upload_into_a_buffer_undefines_the_resources_on_its_bytes() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = compute_frame(&c);
    let image = &set.images[0];
    let [lights, histogram] = &set.buffers[..] else {
        panic!("two buffers")
    };
    let texels = upload(&c, image, 1);
    let light_bytes = upload_buffer(&c, lights, 2);
    assert!(image.is_written(), "the lights lie on pages of their own");
    assert_eq!(read_back(&c, image), texels);
    // The histogram's upload takes the image's bytes.
    let histogram_bytes = upload_buffer(&c, histogram, 3);
    assert!(!image.is_written());
    assert_eq!(
        c.read_back_image(image, &whole(image)).err(),
        Some(Error::ImageNotWritten)
    );
    assert_eq!(read_back_buffer(&c, histogram), histogram_bytes);
    assert_eq!(read_back_buffer(&c, lights), light_bytes);
    // The image's next upload discards (the simulator records keeping undefined contents as
    // misuse), and takes the histogram's bytes in turn.
    assert!(!histogram.is_overwritten());
    let texels = upload(&c, image, 4);
    assert!(histogram.is_overwritten());
    assert!(!lights.is_overwritten());
    assert_eq!(
        c.read_back(histogram, 0, 16).err(),
        Some(Error::BufferOverwritten)
    );
    assert_eq!(read_back(&c, image), texels);
    // The application's compute pass writes the histogram, and says so.
    device
        .application_writes_buffer(histogram.raw(), 0, &[7; 64])
        .expect("written");
    histogram.mark_written();
    assert!(!histogram.is_overwritten());
    assert!(!image.is_written());
    assert_eq!(&read_back_buffer(&c, histogram)[..64], &[7; 64]);
    // A read-back of an image writes nothing a buffer holds... but its layout transitions may:
    // the histogram counts as overwritten once the image is read again.
    upload(&c, image, 5);
    read_back(&c, image);
    assert!(histogram.is_overwritten());
    device.assert_no_misuse();
}

#[test]
fn uploads_into_overlapping_buffers_go_out_in_call_order_one_submission_after_the_other() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = c
        .create_aliased_resources(
            &[],
            &[scratch(4096, 0, 0), scratch(4096, 1, 1), scratch(64, 1, 1)],
            MemoryUsage::FAST_DEVICE_ACCESS,
        )
        .expect("aliased buffers");
    let [first, second, small] = &set.buffers[..] else {
        panic!("three buffers")
    };
    assert_eq!(first.memory(), second.memory());
    assert_eq!(set.bytes, 4096 + 64, "buffers alone need no pages");
    let submissions = device.counters().submissions;
    // Staged back to back: the second goes out in a later submission than the first.
    c.upload_to(first, 0, &[1u8; 4096]).expect("staged");
    c.upload_to(first, 8, &[2u8; 8]).expect("staged");
    c.upload_to(second, 0, &[3u8; 4096]).expect("staged");
    // The small buffer shares no byte with the second: no submission of its own.
    c.upload_to(small, 0, &[4u8; 64]).expect("staged");
    c.flush_transfers().expect("flush").wait().expect("done");
    assert_eq!(device.counters().submissions - submissions, 2);
    assert_eq!(read_back_buffer(&c, second), vec![3; 4096]);
    assert!(first.is_overwritten());
    assert!(!small.is_overwritten());
    // A grant transferred into an aliased buffer takes its place when it is transferred:
    // after the upload into the second buffer made while it was held.
    let mut grant = c.acquire_staging(4096).expect("grant");
    grant.bytes_mut().fill(5);
    c.upload_to(second, 0, &[6u8; 4096]).expect("staged");
    c.transfer_and_release(grant, first, 0)
        .expect("transferred")
        .wait()
        .expect("done");
    assert_eq!(read_back_buffer(&c, first), vec![5; 4096]);
    assert!(second.is_overwritten());
    device.assert_no_misuse();
}

#[test]
fn the_shared_range_goes_back_with_the_last_resource_and_buffers_never_move() {
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let before = c.stats().heaps[0].allocated_bytes;
    let created = c.stats().buffers_created;
    let mut set = compute_frame(&c);
    assert_eq!(c.stats().buffers_created - created, 2);
    let bytes = upload_buffer(&c, &set.buffers[1], 1);
    let moved = c
        .defragment(set.buffers.iter_mut(), &DefragmentationLimits::default())
        .expect("defragment");
    assert_eq!(moved.unmovable, 2);
    assert!(moved.moved.is_empty());
    let raws: Vec<_> = set.buffers.iter().map(|b| b.raw()).collect();
    set.images.clear();
    let histogram = set.buffers.pop().expect("histogram");
    set.buffers.clear();
    c.maintain().expect("maintain");
    assert_eq!(
        c.stats().heaps[0].allocated_bytes - before,
        set.bytes,
        "the histogram still holds the range"
    );
    assert_eq!(read_back_buffer(&c, &histogram), bytes);
    drop(histogram);
    c.maintain().expect("maintain");
    let stats = c.stats();
    assert_eq!(stats.heaps[0].allocated_bytes, before);
    assert!(raws.iter().all(|r| !device.live_buffers().contains(r)));
    assert_eq!(stats.images_destroyed, stats.images_created);
    // Held past the coordinator: its teardown frees the range.
    let set = compute_frame(&c);
    drop(c);
    assert!(set.buffers.iter().all(|b| !b.is_live()));
    drop(set);
    assert_eq!(device.live_memory(), []);
    device.assert_no_misuse();
}

#[test]
fn refused_buffers_are_named_after_the_images_and_leave_nothing() {
    let device = dedicated_from_16_mib();
    let c = coordinator(&device);
    let (buffers, memory) = (device.live_buffers(), device.live_memory());
    let desc = target(ImageFormat::Rgba8Unorm, 64, 64);
    let usage = MemoryUsage::FAST_DEVICE_ACCESS;
    assert_eq!(
        c.create_aliased_resources(&[], &[], usage).err(),
        Some(Error::Aliasing(AliasingError::Empty))
    );
    assert_eq!(
        c.create_aliased_resources(&[aliased(desc, 0, 0)], &[scratch(0, 0, 0)], usage)
            .err(),
        Some(Error::Aliasing(AliasingError::ZeroSize { index: 1 }))
    );
    assert_eq!(
        c.create_aliased_resources(
            &[aliased(desc, 0, 0)],
            &[scratch(64, 0, 0), scratch(64, 2, 1)],
            usage
        )
        .err(),
        Some(Error::Aliasing(AliasingError::BadSpan { index: 2 }))
    );
    assert_eq!(
        c.create_aliased_resources(
            &[aliased(desc, 0, 0)],
            &[scratch(64, 0, 0), scratch(32 << 20, 1, 1)],
            usage
        )
        .err(),
        Some(Error::NotAliasable {
            index: 2,
            reason: NotAliasableReason::DedicatedRequired
        })
    );
    assert_eq!(c.stats().buffers_created, 0);
    assert_eq!(device.live_buffers(), buffers);
    assert_eq!(device.live_memory(), memory);
    device.assert_no_misuse();
}

#[test]
fn a_plain_buffer_on_aliased_bytes_or_pages_would_be_caught() {
    // The checks the tests above rely on: the simulator records a buffer bound over a set's
    // bytes, or on an image's page, unless both were bound as aliases.
    let device = DummyDevice::discrete();
    let c = coordinator(&device);
    let set = compute_frame(&c);
    let (memory, offset) = set.buffers[1].memory();
    let (raw, _) = device
        .create_buffer(64, memkit_std::BUFFER_USAGE)
        .expect("buffer");
    device
        .bind_buffer_memory(raw, memory, offset)
        .expect("bind");
    let kinds = device.misuse_kinds();
    assert!(kinds.contains(&MisuseKind::AliasedBinding));
    assert!(kinds.contains(&MisuseKind::GranularityConflict));
    device.take_misuses();
    device.destroy_buffer(raw);
}
