//! `CoordinatorConfig::room_poll`: how long an upload that finds the staging ring full polls the
//! GPU's completed value before it blocks in the driver. The simulated device completes work only
//! when waited on, so every poll there runs its whole duration: an upload's wait takes at least
//! `room_poll`, and with zero it takes no more than the driver call.

use std::time::{Duration, Instant};

use memkit_dummy::DummyDevice;
use memkit_std::{Coordinator, CoordinatorConfig, MIN_STAGING_RING_SIZE, MemoryUsage};

/// Uploads of half the smallest ring, one after another with no flush, so that every other one
/// finds the ring full of submitted work and waits for the GPU. Returns the coordinator's
/// `stalls` (uploads that waited) and the time all the uploads took; checks every byte landed.
fn stalled_uploads(room_poll: Duration, uploads: usize) -> (u64, Duration) {
    let device = DummyDevice::discrete();
    let config = CoordinatorConfig {
        staging_ring_size: MIN_STAGING_RING_SIZE,
        direct_writes: false,
        room_poll,
        ..Default::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let half = (MIN_STAGING_RING_SIZE / 2) as usize;
    let buffer = c
        .create_buffer((half * uploads) as u64, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let data: Vec<u8> = (0..half * uploads)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let start = Instant::now();
    for (k, chunk) in data.chunks(half).enumerate() {
        c.upload_to(&buffer, (k * half) as u64, chunk)
            .expect("upload waits for room");
    }
    let elapsed = start.elapsed();
    c.flush_transfers().and_then(|t| t.wait()).expect("flush");
    let landed = device
        .read_buffer(buffer.raw(), 0, data.len())
        .expect("live buffer");
    assert!(landed == data, "uploads did not land whole");
    let stalls = c.stats().stalls;
    drop(buffer);
    assert_eq!(c.shutdown().leaked_buffers, 0);
    assert!(device.leak_report().is_empty());
    device.assert_no_misuse();
    (stalls, elapsed)
}

#[test]
fn default_room_poll_is_five_milliseconds() {
    assert_eq!(
        CoordinatorConfig::default().room_poll,
        Duration::from_millis(5)
    );
}

/// A lower bound only, which no slow machine breaks: each wait polls for the whole `room_poll`.
#[test]
fn a_stalled_upload_polls_for_room_poll_before_blocking() {
    let poll = Duration::from_millis(40);
    let (stalls, elapsed) = stalled_uploads(poll, 6);
    assert_eq!(stalls, 2, "uploads 3 and 5 find the ring full");
    assert!(
        elapsed >= poll * 2,
        "{stalls} waits took {elapsed:?}, under {poll:?} each"
    );
}

/// Zero blocks in the driver at once, which completes the simulated work at once: many waits
/// take far less than the default's 5 ms each, measured against the default in the same run.
#[test]
fn zero_room_poll_blocks_in_the_driver_at_once() {
    let uploads = 81;
    let (polled_stalls, polled) = stalled_uploads(CoordinatorConfig::default().room_poll, uploads);
    let (stalls, unpolled) = stalled_uploads(Duration::ZERO, uploads);
    assert_eq!(stalls, 40, "every other upload after the second waits");
    assert_eq!(polled_stalls, stalls);
    assert!(polled >= Duration::from_millis(5) * 40, "{polled:?}");
    // 200 ms against at most 50: a slow machine adds to both runs, a poll of zero ignored makes
    // them equal.
    assert!(
        unpolled * 4 < polled,
        "{stalls} waits: {unpolled:?} with no polling, {polled:?} polling 5 ms"
    );
}
