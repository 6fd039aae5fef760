//! `CoordinatorConfig::wait_poll`: how long a ticket's wait polls the completed value before it
//! blocks in the driver. The simulated device in `WaitMode::Block` runs work only when a "GPU
//! thread" (here the test) advances it, and counts the threads blocked in its `wait`: a polling
//! waiter is not among them. In its default mode it completes work only when waited on, so
//! polling there would only spin; the coordinator does not poll it.

use std::time::{Duration, Instant};

use memkit_dummy::{DummyDevice, WaitMode};
use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage, Ticket};

const BYTES: usize = 4096;

/// A coordinator with staged uploads only, and one upload of [`BYTES`] submitted (its ticket
/// and the bytes).
fn submitted_upload(
    device: &DummyDevice,
    wait_poll: Duration,
) -> (
    Coordinator<DummyDevice>,
    memkit_std::Buffer<DummyDevice>,
    Ticket,
    Vec<u8>,
) {
    let config = CoordinatorConfig {
        direct_writes: false,
        wait_poll,
        ..Default::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let buffer = c
        .create_buffer(BYTES as u64, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let data: Vec<u8> = (0..BYTES).map(|i| (i * 13 + 5) as u8).collect();
    let ticket = c.upload_to(&buffer, 0, &data).expect("upload");
    c.flush_transfers().expect("flush");
    assert!(ticket.value().is_some(), "the flush submitted the upload");
    (c, buffer, ticket, data)
}

/// Waits for `ticket` on another thread while the test looks at the device: returns the blocked
/// waiters seen once the waiter had `settle` to start waiting, then completes the work and
/// checks the wait returned only after that.
fn blocked_while_waiting(device: &DummyDevice, ticket: &Ticket, settle: Duration) -> u32 {
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            ticket.wait().expect("wait");
            device.completed()
        });
        let blocked = device.blocked_waiters_within(settle);
        assert!(
            !waiter.is_finished(),
            "the wait returned before the GPU ran the copy"
        );
        let value = ticket.value().expect("submitted");
        device.advance_to(value);
        let seen = waiter.join().expect("waiter");
        assert!(seen >= value, "the wait returned at {seen}, before {value}");
        blocked
    })
}

fn check_and_shut_down(
    device: &DummyDevice,
    c: Coordinator<DummyDevice>,
    buffer: memkit_std::Buffer<DummyDevice>,
    data: &[u8],
) {
    let landed = device
        .read_buffer(buffer.raw(), 0, data.len())
        .expect("live buffer");
    assert!(landed == data, "the upload did not land");
    drop(buffer);
    device.set_wait_mode(WaitMode::Auto);
    assert_eq!(c.shutdown().leaked_buffers, 0);
    assert!(device.leak_report().is_empty());
    device.assert_no_misuse();
}

#[test]
fn default_wait_poll_is_two_milliseconds() {
    assert_eq!(
        CoordinatorConfig::default().wait_poll,
        Duration::from_millis(2)
    );
}

/// With a long poll, the waiter polls the completed value and never blocks in the driver while
/// the GPU has not run the copy (checked for 100 ms), and it sees the copy once it ran.
#[test]
fn a_ticket_wait_polls_a_gpu_that_completes_on_its_own() {
    let device = DummyDevice::discrete();
    device.set_wait_mode(WaitMode::Block);
    let (c, buffer, ticket, data) = submitted_upload(&device, Duration::from_secs(60));
    let blocked = blocked_while_waiting(&device, &ticket, Duration::from_millis(100));
    assert_eq!(
        blocked, 0,
        "the waiter blocked in the driver instead of polling"
    );
    check_and_shut_down(&device, c, buffer, &data);
}

/// With no polling the waiter blocks in the driver at once.
#[test]
fn zero_wait_poll_blocks_in_the_driver() {
    let device = DummyDevice::discrete();
    device.set_wait_mode(WaitMode::Block);
    let (c, buffer, ticket, data) = submitted_upload(&device, Duration::ZERO);
    let blocked = blocked_while_waiting(&device, &ticket, Duration::from_secs(30));
    assert_eq!(blocked, 1, "the waiter did not block in the driver");
    check_and_shut_down(&device, c, buffer, &data);
}

/// A wait's timeout bounds its polling: 30 ms asked for, a minute of polling configured, and
/// the GPU never runs the copy.
#[test]
fn a_wait_timeout_shorter_than_the_poll_ends_at_the_timeout() {
    let device = DummyDevice::discrete();
    device.set_wait_mode(WaitMode::Block);
    let (c, buffer, ticket, data) = submitted_upload(&device, Duration::from_secs(60));
    let start = Instant::now();
    let done = ticket
        .wait_timeout(Duration::from_millis(30))
        .expect("wait_timeout");
    let took = start.elapsed();
    assert!(!done, "nothing ran the copy");
    assert!(took >= Duration::from_millis(30), "returned after {took:?}");
    assert!(
        took < Duration::from_secs(20),
        "polled past the timeout: {took:?}"
    );
    device.advance_to(ticket.value().expect("submitted"));
    check_and_shut_down(&device, c, buffer, &data);
}

/// The simulated device in its default mode completes work only when waited on: the
/// coordinator does not poll it, so a minute of polling configured costs nothing.
#[test]
fn a_device_that_completes_only_when_waited_on_is_not_polled() {
    let device = DummyDevice::discrete();
    let (c, buffer, ticket, data) = submitted_upload(&device, Duration::from_secs(60));
    let start = Instant::now();
    ticket.wait().expect("wait");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(20), "polled for {took:?}");
    check_and_shut_down(&device, c, buffer, &data);
}
