//! A bind the driver refuses (`vkBindBufferMemory` / `vkBindImageMemory` returning
//! `VK_ERROR_OUT_OF_DEVICE_MEMORY`), at every place the coordinator binds memory: buffers in
//! blocks and in objects of their own, images, aliased resources, transient chunks and read-back
//! landing buffers. Each refusal is the device's typed error, gives the memory it had taken back
//! and destroys the resource it made, and the same call works once the device binds again.
//! (Defragmentation's binds: `defragment.rs`.)

use memkit_core::device::{DeviceError, ImageDesc, ImageFormat, ImageUsage};
use memkit_dummy::{DeviceConfig, DummyDevice};
use memkit_std::{
    AliasedBufferDesc, AliasedImageDesc, Coordinator, CoordinatorConfig, Error, MemoryUsage,
};

const REFUSED: Error = Error::Device(DeviceError::OutOfDeviceMemory);

/// A discrete GPU whose driver requires objects of their own for resources of 16 MiB and more.
fn device() -> DummyDevice {
    DummyDevice::new(DeviceConfig {
        dedicated_required_from: Some(16 << 20),
        ..DeviceConfig::discrete()
    })
    .expect("device")
}

/// A coordinator that keeps no landing buffers: with some kept, a creation that runs out of
/// memory gives them up and tries again (tested in `readback_cache.rs`), which would hide the
/// refusal here.
fn coordinator(device: &DummyDevice) -> Coordinator<DummyDevice> {
    let config = CoordinatorConfig {
        read_back_cache_bytes: 0,
        ..CoordinatorConfig::default()
    };
    Coordinator::new(device.clone(), config).expect("coordinator")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29) ^ seed ^ (i >> 9) as u8)
        .collect()
}

/// What a refused call must leave as it found: the device's live resources, and the pools'
/// sub-allocations and objects of their own. (A block the pools allocated for the call stays
/// for later calls, as empty blocks do; the tests check that the next call uses it.)
#[derive(Debug, PartialEq, Eq)]
struct Held {
    resources: u64,
    sub_allocations: u64,
    dedicated_objects: u32,
}

fn held(c: &Coordinator<DummyDevice>, device: &DummyDevice) -> Held {
    let heaps = c.stats().heaps;
    Held {
        resources: device.counters().live_buffers,
        sub_allocations: heaps.iter().map(|h| h.sub_allocations).sum(),
        dedicated_objects: heaps.iter().map(|h| h.dedicated_objects).sum(),
    }
}

/// Makes the device's next bind call fail.
fn refuse_next_bind(device: &DummyDevice) {
    device.fail_bind_call(
        device.counters().bind_calls + 1,
        DeviceError::OutOfDeviceMemory,
    );
}

/// Tears `c` down and checks that nothing is left on the device and nothing was misused.
fn shut_down_clean(c: Coordinator<DummyDevice>, device: &DummyDevice) {
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.leaked_images, 0);
    device.assert_no_misuse();
    assert!(device.leak_report().is_empty(), "{}", device.leak_report());
}

#[test]
fn a_buffer_whose_bind_is_refused_leaves_nothing_behind() {
    let device = device();
    let c = coordinator(&device);
    // 4 KiB lands in a block; 32 MiB gets an object of its own (the driver requires it).
    for size in [4096, 32 << 20] {
        // A block to place it in exists already, so a refusal must give back only the place.
        let warm = c
            .create_buffer(size, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        let before = held(&c, &device);
        refuse_next_bind(&device);
        let refused = c.create_buffer(size, MemoryUsage::FAST_DEVICE_ACCESS);
        assert_eq!(refused.err(), Some(REFUSED), "{size} B");
        assert_eq!(held(&c, &device), before, "{size} B");

        // The same call works now, and the buffer holds what is uploaded into it.
        let buffer = c
            .create_buffer(size, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        let bytes = pattern(4096, size as u8);
        c.upload_to(&buffer, size - 4096, &bytes).expect("upload");
        c.flush_transfers().expect("flush").wait().expect("copies");
        let read = c.read_back(&buffer, size - 4096, 4096).expect("read back");
        assert!(read.wait().expect("read") == bytes, "{size} B");
        drop((warm, buffer));
    }
    // `upload_slice` makes its buffer first: refused, it stages nothing.
    let ring = c.stats().ring;
    refuse_next_bind(&device);
    let refused = c.upload_slice(&pattern(1000, 1));
    assert_eq!(refused.err(), Some(REFUSED));
    assert_eq!(c.stats().ring, ring, "nothing staged");
    let (buffer, ticket) = c.upload_slice(&pattern(1000, 1)).expect("upload");
    ticket.wait().expect("copy");
    drop(buffer);
    shut_down_clean(c, &device);
}

#[test]
fn an_image_whose_bind_is_refused_leaves_nothing_behind() {
    let device = device();
    let c = coordinator(&device);
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST;
    // 256 KiB in a block; 64 MiB in an object of its own.
    for side in [256, 4096] {
        let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, side, side, usage);
        let warm = c
            .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("image");
        let before = held(&c, &device);
        let texels = pattern(desc.packed_bytes() as usize, side as u8);
        refuse_next_bind(&device);
        let refused = c.create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels);
        assert_eq!(refused.err(), Some(REFUSED), "{side}x{side}");
        assert_eq!(held(&c, &device), before, "{side}x{side}");

        let (image, ticket) = c
            .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
            .expect("image");
        ticket.wait().expect("upload");
        drop((warm, image));
    }
    let stats = c.stats();
    assert_eq!(stats.images_created, 4, "refused images are not counted");
    shut_down_clean(c, &device);
}

#[test]
fn aliased_resources_whose_second_bind_is_refused_leave_nothing_behind() {
    let device = device();
    let c = coordinator(&device);
    let target = ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED;
    let images = [
        AliasedImageDesc {
            desc: ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 1024, 1024, target),
            first_use: 0,
            last_use: 1,
        },
        AliasedImageDesc {
            desc: ImageDesc::new_2d(ImageFormat::Rgba16Float, 1024, 1024, target),
            first_use: 2,
            last_use: 3,
        },
    ];
    let buffers = [AliasedBufferDesc {
        size: 1 << 20,
        first_use: 1,
        last_use: 2,
    }];
    let before = held(&c, &device);
    // The first resource binds; the second is refused.
    device.fail_bind_call(
        device.counters().bind_calls + 2,
        DeviceError::OutOfDeviceMemory,
    );
    let refused = c.create_aliased_resources(&images, &buffers, MemoryUsage::FAST_DEVICE_ACCESS);
    assert_eq!(refused.err(), Some(REFUSED));
    assert_eq!(
        held(&c, &device),
        before,
        "the bound resource, the refused one and the one not made yet are gone, and their range"
    );

    let made = c
        .create_aliased_resources(&images, &buffers, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("aliased resources");
    assert_eq!(device.counters().live_buffers, before.resources + 3);
    drop(made);
    shut_down_clean(c, &device);
}

#[test]
fn a_transient_chunk_whose_bind_is_refused_is_not_kept() {
    let device = device();
    let config = CoordinatorConfig {
        transient_chunk_size: 4096,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let timeline = device.create_external_timeline();
    let frame = c.begin_frame().expect("frame");
    // SAFETY: the timeline is the device's and outlives the coordinator; the test signals it.
    unsafe { frame.gpu_done_at(timeline, 1) }.expect("our timeline");
    let before = held(&c, &device);
    // The frame's first slice takes a chunk: refused, the frame holds none.
    refuse_next_bind(&device);
    assert_eq!(frame.transient(&[1u64; 8]).err(), Some(REFUSED));
    assert_eq!(held(&c, &device), before);
    assert_eq!(c.stats().transient_chunks, 0);
    let objects = device.counters().live_memory_objects;
    // A writer's first slice takes a chunk of its own: the same.
    let mut writer = frame.transient_writer();
    refuse_next_bind(&device);
    assert_eq!(writer.transient(&[2u64; 8]).err(), Some(REFUSED));
    assert_eq!(held(&c, &device), before);
    // Both go on once the device binds again, each in a chunk of its own.
    let ours = frame.transient(&[3u64; 8]).expect("transient");
    let theirs = writer.transient(&[4u64; 8]).expect("transient");
    assert_ne!(ours.buffer(), theirs.buffer());
    for (slice, word) in [(&ours, 3u64), (&theirs, 4)] {
        let bytes = device
            .read_buffer(slice.buffer(), slice.offset(), 64)
            .expect("read");
        assert!(bytes == [word.to_ne_bytes(); 8].concat(), "slice {word}");
    }
    assert_eq!(c.stats().transient_chunks, 2);
    assert_eq!(
        device.counters().live_memory_objects,
        objects,
        "both chunks lie in the block taken for the refused one"
    );
    drop(writer);
    c.end_frame(frame).expect("end");
    device.signal_external(timeline, 1).expect("signal");
    shut_down_clean(c, &device);
}

#[test]
fn a_read_back_whose_landing_buffer_bind_is_refused_submits_nothing() {
    let device = device();
    let c = coordinator(&device);
    let buffer = c
        .create_buffer(64 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let bytes = pattern(64 << 10, 7);
    c.upload_to(&buffer, 0, &bytes).expect("upload");
    c.flush_transfers().expect("flush").wait().expect("copies");
    let before = held(&c, &device);
    let submissions = device.counters().submit_calls;
    refuse_next_bind(&device);
    assert_eq!(c.read_back(&buffer, 0, 64 << 10).err(), Some(REFUSED));
    c.flush_transfers().expect("flush");
    assert_eq!(held(&c, &device), before);
    assert_eq!(
        device.counters().submit_calls,
        submissions,
        "no copy recorded"
    );
    assert_eq!(c.stats().read_backs, 0);
    let objects = device.counters().live_memory_objects;

    let read = c.read_back(&buffer, 0, 64 << 10).expect("read back");
    assert!(read.wait().expect("read") == bytes);
    assert_eq!(
        device.counters().live_memory_objects,
        objects,
        "the landing buffer lies in the block taken for the refused one"
    );
    drop(buffer);
    shut_down_clean(c, &device);
}
