//! `Coordinator::create_aliased_images` on the simulated device: render targets never in use
//! together share bytes of one allocation, the simulator sees every bind as intended aliasing,
//! using one image undefines the images overlapping it (the coordinator stops keeping or
//! reading what they held), the shared range goes back only with the last image, aliased images
//! never move, and refused calls leave nothing behind.

use memkit_core::aliasing::AliasingError;
use memkit_core::device::{DeviceError, ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_dummy::{DeviceConfig, DummyDevice, MisuseKind};
use memkit_std::{
    AliasedImageDesc, AliasedImages, Coordinator, CoordinatorConfig, DefragmentationLimits, Error,
    Image, MemoryUsage, NotAliasableReason,
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

fn coordinator(device: &DummyDevice) -> Coordinator<DummyDevice> {
    Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator")
}

/// A frame's render targets: the G-buffer's albedo (passes 0-1, 4 MiB), the HDR lighting
/// result (1-2, 8 MiB), bloom (2-3, 2 MiB) and the LDR output (3-4, 4 MiB).
fn frame(c: &Coordinator<DummyDevice>) -> AliasedImages<DummyDevice> {
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
    let device = DummyDevice::new(DeviceConfig {
        dedicated_required_from: Some(16 << 20),
        ..DeviceConfig::discrete()
    })
    .expect("device");
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
