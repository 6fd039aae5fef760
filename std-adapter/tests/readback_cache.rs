//! The read-back cache: landing buffers of dropped read-backs kept for later ones. It keeps what
//! read-backs held at once lately (within `read_back_cache_bytes`), so a burst that comes back
//! makes no buffer; it gives back what no read-back needed for two seconds, and whatever it keeps
//! when a buffer or image finds no memory.

use std::time::Duration;

use memkit_core::device::{DeviceError, ImageDesc, ImageFormat, ImageUsage};
use memkit_dummy::{DeviceConfig, DummyDevice};
use memkit_std::{Buffer, Coordinator, CoordinatorConfig, Error, MemoryUsage};

const MIB: u64 = 1 << 20;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A coordinator on the discrete preset, its GPU running every submission at once.
fn coordinator(device: DeviceConfig, config: CoordinatorConfig) -> Coordinator<DummyDevice> {
    let device = DummyDevice::new(device.with_complete_on_submit(true)).expect("device");
    Coordinator::new(device, config).expect("coordinator")
}

/// The default configuration with a 4 MiB staging ring, for devices with little host memory.
fn small_ring() -> CoordinatorConfig {
    CoordinatorConfig {
        staging_ring_size: 4 * MIB,
        max_ring_upload: MIB,
        ..CoordinatorConfig::default()
    }
}

/// A device-local buffer of `size` bytes holding `pattern(size, seed)`.
fn source(c: &Coordinator<DummyDevice>, size: u64, seed: u8) -> Buffer<DummyDevice> {
    let buffer = c
        .create_buffer(size, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    c.upload_to(&buffer, 0, &pattern(size as usize, seed))
        .expect("upload")
        .wait()
        .expect("upload completes");
    buffer
}

/// Reads `count` ranges of `size` bytes of `buffer` (each 64 KiB further in), all held at once,
/// and checks each against `model`; drops them all at the end.
fn burst(
    c: &Coordinator<DummyDevice>,
    buffer: &Buffer<DummyDevice>,
    model: &[u8],
    count: usize,
    size: u64,
) {
    let reads: Vec<_> = (0..count)
        .map(|i| {
            let at = i as u64 * (64 << 10);
            (at, c.read_back(buffer, at, size).expect("read back"))
        })
        .collect();
    let mut out = vec![0u8; size as usize];
    for (at, read) in &reads {
        read.wait_into(&mut out).expect("wait");
        let at = *at as usize;
        assert!(out[..] == model[at..at + size as usize], "bytes at {at}");
    }
}

#[test]
fn a_burst_of_read_backs_that_comes_back_finds_every_landing_buffer_kept() {
    let c = coordinator(DeviceConfig::discrete(), CoordinatorConfig::default());
    let size = 4 * MIB;
    let buffer = source(&c, size, 1);
    let model = pattern(size as usize, 1);
    // 24 read-backs of 1.34 MiB held at once: each lands in a buffer of 1.375 MiB (eight size
    // classes per power of two; the next power of two would be 2 MiB).
    let read = 1_400_000;
    let before = c.stats();
    burst(&c, &buffer, &model, 24, read);
    let after = c.stats();
    assert_eq!(after.buffers_created - before.buffers_created, 24);
    assert_eq!(after.read_back_bytes_kept, 24 * 11 * MIB / 8);
    for _ in 0..3 {
        burst(&c, &buffer, &model, 24, read);
    }
    let again = c.stats();
    assert_eq!(
        again.buffers_created, after.buffers_created,
        "a new landing buffer"
    );
    assert_eq!(
        again.read_back_buffers_reused - after.read_back_buffers_reused,
        72
    );
    // One at a time, the cache keeps what the burst held (it came within the last second).
    burst(&c, &buffer, &model, 1, read);
    assert_eq!(c.stats().read_back_bytes_kept, 24 * 11 * MIB / 8);
    drop(buffer);
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
}

#[test]
fn the_cache_keeps_no_more_than_was_held_at_once_nor_its_cap() {
    let config = CoordinatorConfig {
        read_back_cache_bytes: 8 * MIB,
        ..CoordinatorConfig::default()
    };
    let c = coordinator(DeviceConfig::discrete(), config);
    let buffer = source(&c, 4 * MIB, 2);
    let model = pattern(4 * MIB as usize, 2);
    // One at a time: one buffer kept.
    for _ in 0..4 {
        burst(&c, &buffer, &model, 1, MIB);
    }
    assert_eq!(c.stats().read_back_bytes_kept, MIB);
    // Twelve held at once: the cap keeps eight.
    let before = c.stats();
    burst(&c, &buffer, &model, 12, MIB);
    let after = c.stats();
    assert_eq!(after.read_back_bytes_kept, 8 * MIB);
    assert_eq!(
        after.read_back_buffers_reused - before.read_back_buffers_reused,
        1
    );
    // Retired past the cap, destroyed once maintenance saw their copies complete.
    c.maintain().expect("maintain");
    let live = c.stats().buffers_created - c.stats().buffers_destroyed;
    assert_eq!(live, 1 + 8, "the source and eight kept landing buffers");
    drop(buffer);
    assert_eq!(c.shutdown().leaked_buffers, 0);
}

#[test]
fn bytes_no_read_back_needed_for_two_seconds_are_given_back() {
    let c = coordinator(DeviceConfig::discrete(), CoordinatorConfig::default());
    let buffer = source(&c, 2 * MIB, 3);
    let model = pattern(2 * MIB as usize, 3);
    burst(&c, &buffer, &model, 16, MIB);
    assert_eq!(c.stats().read_back_bytes_kept, 16 * MIB);
    c.maintain().expect("maintain");
    assert_eq!(
        c.stats().read_back_bytes_kept,
        16 * MIB,
        "given back too soon"
    );
    // Two windows of a second with nothing held: the next maintenance gives all back, and the
    // one after destroys them (their copies completed).
    std::thread::sleep(Duration::from_millis(2050));
    c.maintain().expect("maintain");
    assert_eq!(c.stats().read_back_bytes_kept, 0);
    c.maintain().expect("maintain");
    let stats = c.stats();
    assert_eq!(
        stats.buffers_created - stats.buffers_destroyed,
        1,
        "the source alone"
    );
    // A read-back after that makes its buffer anew.
    let reused = stats.read_back_buffers_reused;
    burst(&c, &buffer, &model, 1, MIB);
    assert_eq!(c.stats().read_back_buffers_reused, reused);
    assert_eq!(c.stats().read_back_bytes_kept, MIB);
    drop(buffer);
    assert_eq!(c.shutdown().leaked_buffers, 0);
}

#[test]
fn kept_landing_buffers_are_given_up_for_a_buffer_that_finds_no_memory() {
    // Host memory of 64 MiB, where landing buffers and the 4 MiB staging ring live, and a BAR
    // window too small to take the buffer instead.
    let device = DeviceConfig::discrete()
        .with_heap_size(1, 64 * MIB)
        .with_heap_size(2, 2 * MIB);
    let c = coordinator(device, small_ring());
    let buffer = source(&c, 4 * MIB, 4);
    let model = pattern(4 * MIB as usize, 4);
    burst(&c, &buffer, &model, 8, 4 * MIB - 8 * (64 << 10));
    assert_eq!(c.stats().read_back_bytes_kept, 8 * 7 * MIB / 2);
    // 40 MiB of host memory fits only once the kept buffers are freed.
    let host = c
        .create_buffer(40 * MIB, MemoryUsage::DOWNLOAD)
        .expect("room made from the read-back cache");
    assert_eq!(c.stats().read_back_bytes_kept, 0);
    let types = c.device().memory_properties().types();
    assert_eq!(types[host.memory_type() as usize].heap_index, 1);
    // With nothing kept, a buffer that does not fit is refused as before.
    let refused = c.create_buffer(40 * MIB, MemoryUsage::DOWNLOAD);
    assert!(
        matches!(refused, Err(Error::Device(DeviceError::OutOfDeviceMemory))),
        "{refused:?}"
    );
    drop((host, buffer));
    assert_eq!(c.shutdown().leaked_buffers, 0);
}

#[test]
fn kept_landing_buffers_are_given_up_for_an_image_that_finds_no_memory_object() {
    // Every landing buffer a memory object of its own, and room for ten objects: the source
    // buffer, the staging ring and eight landing buffers.
    let device = DeviceConfig::discrete()
        .with_dedicated_preferred_from(Some(MIB))
        .with_max_memory_allocation_count(10);
    let c = coordinator(device, small_ring());
    let buffer = source(&c, 4 * MIB, 5);
    let model = pattern(4 * MIB as usize, 5);
    burst(&c, &buffer, &model, 8, 2 * MIB);
    assert_eq!(c.stats().read_back_bytes_kept, 16 * MIB);
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST;
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 1024, 1024, usage);
    let image = c
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("room made from the read-back cache");
    assert_eq!(c.stats().read_back_bytes_kept, 0);
    drop((image, buffer));
    assert_eq!(c.shutdown().leaked_buffers, 0);
}
