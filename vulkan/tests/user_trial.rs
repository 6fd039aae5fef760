//! memkit-std's coordinator over a validated headless Vulkan device, used as an engine author
//! coming from VMA or gpu-allocator would: the device shared with the tool that made it, bad
//! input as well as good, a device lost with copies in flight, and teardown with nothing left
//! for the validation layer to report.

mod common;

use std::time::Duration;

use common::headless;
use memkit_std::{Coordinator, CoordinatorConfig, Error, MemoryUsage};
use memkit_vulkan::SharedHeadlessDevice;

type VkCoordinator = Coordinator<SharedHeadlessDevice>;

/// A coordinator over a validated headless device, and the test's handle to the same device.
fn coordinator() -> Option<(VkCoordinator, SharedHeadlessDevice)> {
    let shared = SharedHeadlessDevice::new(headless()?);
    let coordinator = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
    Some((coordinator, shared))
}

/// Tears the device down once nothing else holds it, and fails on any validation message.
fn finish(shared: SharedHeadlessDevice) {
    let Ok(headless) = shared.try_unwrap() else {
        panic!("a buffer, ticket or coordinator still holds the device");
    };
    common::finish(headless);
}

#[test]
fn bad_sizes_offsets_and_handles_are_typed_errors() {
    let Some((c, shared)) = coordinator() else {
        return;
    };
    let fast = MemoryUsage::FAST_DEVICE_ACCESS;
    assert_eq!(c.create_buffer(0, fast).unwrap_err(), Error::ZeroSize);
    let b = c.create_buffer(256, fast).unwrap();
    assert_eq!(c.upload_to::<u8>(&b, 0, &[]).unwrap_err(), Error::ZeroSize);
    assert_eq!(c.upload_slice::<u8>(&[]).unwrap_err(), Error::ZeroSize);
    let past_end = Error::OutOfBounds {
        offset: 255,
        size: 2,
        buffer_size: 256,
    };
    assert_eq!(c.upload_to(&b, 255, &[1u8, 2]).unwrap_err(), past_end);
    // An offset whose end overflows is out of bounds, not a panic.
    assert!(matches!(
        c.upload_to(&b, u64::MAX - 1, &[1u8, 2, 3]),
        Err(Error::OutOfBounds { .. })
    ));
    assert_eq!(c.acquire_staging(0).err(), Some(Error::ZeroSize));
    assert_eq!(
        c.acquire_staging(usize::MAX).err(),
        Some(Error::StagingFull { wait_for: None })
    );
    // Far beyond any heap: refused, nothing made.
    for size in [u64::MAX, 1 << 40] {
        let refused = c.create_buffer(size, fast).unwrap_err();
        assert!(
            matches!(refused, Error::Device(_) | Error::Memory(_)),
            "{size}: {refused:?}"
        );
    }
    // Another coordinator's buffer and grant.
    let other = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
    let theirs = other.create_buffer(64, fast).unwrap();
    assert_eq!(
        c.upload_to(&theirs, 0, &[1u8; 4]).unwrap_err(),
        Error::ForeignBuffer
    );
    let grant = other.acquire_staging(16).unwrap();
    assert_eq!(
        c.transfer_and_release(grant, &b, 0).unwrap_err(),
        Error::ForeignGrant
    );
    drop((theirs, other));
    // A buffer held past shutdown is reported, destroyed, and dead.
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 1);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    assert!(!b.is_live());
    drop(b);
    finish(shared);
}

#[test]
fn frames_uploads_and_tickets_end_with_nothing_leaked() {
    let Some((c, shared)) = coordinator() else {
        return;
    };
    let fast = MemoryUsage::FAST_DEVICE_ACCESS;
    let mut targets: Vec<_> = (0..16u64)
        .map(|i| c.create_buffer(4096 + i * 1000, fast).unwrap())
        .collect();
    // Larger than the ring's largest upload: cut into chunks.
    let big = c.create_buffer(24 << 20, fast).unwrap();
    let big_done = c.upload_to(&big, 0, &vec![7u8; 24 << 20]).unwrap();
    let mut frames = Vec::new();
    for f in 0..8u32 {
        let frame = c.begin_frame().unwrap();
        let values = frame.alloc_slice(&[f; 64]).unwrap();
        frame
            .stage_slice_for_upload(values, &targets[f as usize], 0)
            .unwrap();
        assert_eq!(c.begin_frame().err(), Some(Error::FrameInProgress));
        frames.push(c.end_frame(frame).unwrap());
        if f % 3 == 0 {
            // Dropped with its upload maybe still in flight: destroyed once it completes.
            targets.pop();
        }
    }
    for ticket in frames.iter().chain([&big_done]) {
        ticket.wait().unwrap();
        assert!(ticket.is_complete().unwrap());
    }
    let (mesh, mesh_done) = c.upload_slice(&[1u32; 1000]).unwrap();
    assert!(mesh_done.wait_timeout(Duration::from_secs(10)).unwrap());
    drop((mesh, targets, big));
    c.maintain().unwrap();
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    assert_eq!(stats.frames, 8);
    // Tickets hold the coordinator's device: dropped before the device is torn down.
    drop((frames, big_done, mesh_done));
    finish(shared);
}

#[test]
fn a_lost_device_with_copies_in_flight_shuts_down_cleanly() {
    let Some((c, shared)) = coordinator() else {
        return;
    };
    let fast = MemoryUsage::FAST_DEVICE_ACCESS;
    let buffers: Vec<_> = (0..4)
        .map(|_| c.create_buffer(8 << 20, fast).unwrap())
        .collect();
    let tickets: Vec<_> = buffers
        .iter()
        .map(|b| c.upload_to(b, 0, &vec![3u8; 8 << 20]).unwrap())
        .collect();
    c.flush_transfers().unwrap();
    // The copies are still running on the driver's threads when the loss is reported.
    shared.device().simulate_device_lost();
    for ticket in &tickets {
        assert!(matches!(ticket.wait(), Ok(()) | Err(Error::DeviceLost)));
    }
    assert_eq!(
        c.upload_to(&buffers[0], 0, &[1u8; 16]).unwrap_err(),
        Error::DeviceLost
    );
    assert_eq!(c.create_buffer(16, fast).unwrap_err(), Error::DeviceLost);
    assert_eq!(c.begin_frame().err(), Some(Error::DeviceLost));
    assert_eq!(c.flush_transfers().err(), Some(Error::DeviceLost));
    drop((buffers, tickets));
    // Frees the buffers, the staging ring and every block at once, as after a real loss: it
    // crashed inside the driver when the copies still ran (the simulated loss did not wait).
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    finish(shared);
}
