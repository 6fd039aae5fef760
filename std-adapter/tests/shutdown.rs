//! `Coordinator::shutdown_into_device`: the device handed back once nothing of the coordinator
//! holds it, so an application can destroy what it wraps next.

use memkit_dummy::DummyDevice;
use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage};

#[test]
fn the_device_comes_back_with_nothing_left_on_it() {
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    let (buffer, ticket) = c.upload_slice(&[7u32; 1024]).expect("upload");
    ticket.wait().expect("upload completes");
    assert_eq!(
        device.read_buffer(buffer.raw(), 0, 4).expect("live"),
        [7, 0, 0, 0]
    );
    drop((buffer, ticket));
    let (stats, back) = c.shutdown_into_device();
    assert_eq!(stats.leaked_buffers, 0);
    let back = back.expect("nothing held the device");
    // The same device: what it made, memkit freed.
    let made = back.counters().buffer_creation_calls;
    assert!(made > 0 && made == device.counters().buffer_creation_calls);
    assert!(back.live_buffers().is_empty(), "a buffer survived teardown");
    assert!(back.live_memory().is_empty(), "memory survived teardown");
}

#[test]
fn a_handle_still_held_keeps_the_device_and_says_so() {
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    let buffer = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let ticket = c.upload_to(&buffer, 0, &[1u8; 16]).expect("upload");
    drop(buffer);
    let (stats, back) = c.shutdown_into_device();
    assert!(
        back.is_none(),
        "the device came back while a ticket still held it"
    );
    assert_eq!(stats.leaked_buffers, 0);
    // The ticket still answers (its coordinator's teardown completed the upload).
    ticket.wait().expect("completed by teardown");
    drop(ticket);
    assert!(device.live_memory().is_empty());
}

#[test]
fn a_frame_ended_behind_a_held_grant_does_not_keep_the_coordinator_alive() {
    let device = DummyDevice::discrete();
    let config = CoordinatorConfig {
        direct_writes: false,
        ..Default::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let buffer = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let grant = c.acquire_staging(256).expect("grant");
    let frame = c.begin_frame().expect("frame");
    // Staged behind the held grant: it cannot be submitted until the grant goes, so the frame
    // ends with its upload still staged and the slot keeps the frame's ticket.
    c.upload_to(&buffer, 0, &[5u8; 64]).expect("staged");
    let ticket = c.end_frame(frame).expect("frame ends");
    assert_eq!(
        ticket.value(),
        None,
        "the upload was submitted past a held grant"
    );
    drop((grant, ticket, buffer));
    let (stats, back) = c.shutdown_into_device();
    assert_eq!(stats.leaked_buffers, 0);
    assert!(
        back.is_some(),
        "the frame slot's ticket kept the coordinator's state (and device) alive"
    );
    assert!(device.live_memory().is_empty());
}
