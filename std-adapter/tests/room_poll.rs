//! `CoordinatorConfig::room_poll`: how long an upload that finds the staging ring full polls the
//! GPU's completed value before it blocks in the driver. The simulated device in
//! `WaitMode::Block` runs work only when a "GPU thread" (here the test) advances it, and counts
//! the threads blocked in its `wait`: a polling producer is not among them. In its default mode it
//! completes work only when waited on, so polling there would only spin; the coordinator does
//! not poll it.

use std::time::{Duration, Instant};

use memkit_dummy::{DummyDevice, WaitMode};
use memkit_std::{Coordinator, CoordinatorConfig, MIN_STAGING_RING_SIZE, MemoryUsage};

const HALF: usize = (MIN_STAGING_RING_SIZE / 2) as usize;

/// A coordinator with the smallest ring and staged uploads only, and a buffer for `uploads`
/// uploads of half the ring each, with their bytes.
fn ring_of_two_halves(
    device: &DummyDevice,
    room_poll: Duration,
    uploads: usize,
) -> (
    Coordinator<DummyDevice>,
    memkit_std::Buffer<DummyDevice>,
    Vec<u8>,
) {
    let config = CoordinatorConfig {
        staging_ring_size: MIN_STAGING_RING_SIZE,
        direct_writes: false,
        room_poll,
        ..Default::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let buffer = c
        .create_buffer((HALF * uploads) as u64, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let data: Vec<u8> = (0..HALF * uploads)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    (c, buffer, data)
}

/// Uploads `data` in halves of the ring, one after another with no flush, so that every other
/// one after the second finds the ring full of submitted work and waits for the GPU.
fn upload_halves(
    c: &Coordinator<DummyDevice>,
    buffer: &memkit_std::Buffer<DummyDevice>,
    data: &[u8],
) {
    for (k, chunk) in data.chunks(HALF).enumerate() {
        c.upload_to(buffer, (k * HALF) as u64, chunk)
            .expect("upload waits for room");
    }
}

/// Flushes, checks every byte landed and nothing leaked, and returns the coordinator's
/// `stalls` (uploads that waited for room).
fn check_and_shut_down(
    device: &DummyDevice,
    c: Coordinator<DummyDevice>,
    buffer: memkit_std::Buffer<DummyDevice>,
    data: &[u8],
) -> u64 {
    device.set_wait_mode(WaitMode::Auto);
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
    stalls
}

/// Three uploads of half the ring on another thread, the third of which waits for the first's
/// copy, while the test plays the GPU: returns the producers seen blocked in the driver once the
/// third had `settle` to start waiting, and how long the uploads took. The GPU runs the copies
/// only after that, and the uploads must not have returned before.
fn blocked_while_stalled(
    device: &DummyDevice,
    c: &Coordinator<DummyDevice>,
    buffer: &memkit_std::Buffer<DummyDevice>,
    data: &[u8],
    settle: Duration,
) -> (u32, Duration) {
    std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let start = Instant::now();
            upload_halves(c, buffer, data);
            start.elapsed()
        });
        // The third upload waits once the first two are submitted.
        let deadline = Instant::now() + Duration::from_secs(30);
        while device.last_submitted() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            device.last_submitted() > 0,
            "the first halves were never submitted"
        );
        let blocked = device.blocked_waiters_within(settle);
        assert!(
            !producer.is_finished(),
            "the upload found room before the GPU ran a copy"
        );
        device.advance_to(device.last_submitted());
        let took = producer.join().expect("producer");
        (blocked, took)
    })
}

#[test]
fn default_room_poll_is_five_milliseconds() {
    assert_eq!(
        CoordinatorConfig::default().room_poll,
        Duration::from_millis(5)
    );
}

/// With a long poll, the stalled producer polls the completed value and never blocks in the
/// driver while the GPU has not run the copy (checked for 100 ms), and it sees the copy once it
/// ran.
#[test]
fn a_stalled_upload_polls_a_gpu_that_completes_on_its_own() {
    let device = DummyDevice::discrete();
    device.set_wait_mode(WaitMode::Block);
    let (c, buffer, data) = ring_of_two_halves(&device, Duration::from_secs(60), 3);
    let (blocked, _) =
        blocked_while_stalled(&device, &c, &buffer, &data, Duration::from_millis(100));
    assert_eq!(
        blocked, 0,
        "the producer blocked in the driver instead of polling"
    );
    assert_eq!(check_and_shut_down(&device, c, buffer, &data), 1);
}

/// The poll is bounded: after `room_poll` (40 ms) with nothing completed, the producer blocks in
/// the driver.
#[test]
fn a_stalled_upload_blocks_in_the_driver_after_room_poll() {
    let device = DummyDevice::discrete();
    device.set_wait_mode(WaitMode::Block);
    let poll = Duration::from_millis(40);
    let (c, buffer, data) = ring_of_two_halves(&device, poll, 3);
    let (blocked, took) =
        blocked_while_stalled(&device, &c, &buffer, &data, Duration::from_secs(30));
    assert_eq!(blocked, 1, "the producer never blocked in the driver");
    assert!(
        took >= poll,
        "the producer blocked after {took:?}, before {poll:?}"
    );
    assert_eq!(check_and_shut_down(&device, c, buffer, &data), 1);
}

/// With no polling the stalled producer blocks in the driver at once.
#[test]
fn zero_room_poll_blocks_in_the_driver() {
    let device = DummyDevice::discrete();
    device.set_wait_mode(WaitMode::Block);
    let (c, buffer, data) = ring_of_two_halves(&device, Duration::ZERO, 3);
    let (blocked, _) = blocked_while_stalled(&device, &c, &buffer, &data, Duration::from_secs(30));
    assert_eq!(blocked, 1, "the producer did not block in the driver");
    assert_eq!(check_and_shut_down(&device, c, buffer, &data), 1);
}

/// The simulated device in its default mode completes work only when waited on: the
/// coordinator does not poll it for room, so a second of polling configured costs nothing:
/// 41 uploads, 20 of which find the ring full, take far less than the 20 s polling would.
#[test]
fn a_device_that_completes_only_when_waited_on_is_not_polled_for_room() {
    let device = DummyDevice::discrete();
    let (c, buffer, data) = ring_of_two_halves(&device, Duration::from_secs(1), 41);
    let start = Instant::now();
    upload_halves(&c, &buffer, &data);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "polled for {took:?}");
    assert_eq!(check_and_shut_down(&device, c, buffer, &data), 20);
}
