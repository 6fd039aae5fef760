//! Tests of the coordinator's internals that a caller cannot steer from outside: a flush whose
//! upload another thread's flush carries.

use memkit_dummy::{DeviceConfig, DummyDevice, WaitMode};

use super::*;
use crate::MemoryUsage;

#[test]
fn a_flushs_ticket_covers_an_upload_another_flush_carried_after_it() {
    let device = DummyDevice::new(DeviceConfig::discrete().with_wait_mode(WaitMode::Manual))
        .expect("device");
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    let granted = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let uploaded = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    // A grant (another thread's, being written) ahead of the upload in the ring: a flush cannot
    // carry the upload while the grant is open.
    let mut grant = c.acquire_staging(256).expect("grant");
    grant.bytes_mut().fill(1);
    c.upload_to(&uploaded, 0, &[7u8; 4096]).expect("upload");

    // `flush_transfers`, with the bound it covers known to the test.
    let bound = c.shared.lock_pending().next_seq;
    let ticket = c.shared.flush_covering(bound).expect("flush");
    let flushed = c.shared.last_submitted_value();
    assert!(
        c.shared.lock_pending().watermark() < bound,
        "the upload stays staged behind the grant"
    );
    // Then the grant is committed and the other thread's flush carries it, and the upload
    // behind it.
    c.transfer_and_release(grant, &granted, 0)
        .expect("transfer");
    let carried = c.shared.flush().expect("flush");
    assert!(carried > flushed);

    assert_eq!(ticket.value(), Some(carried));
    let bytes = |device: &DummyDevice| device.read_buffer(uploaded.raw(), 0, 4096).expect("read");
    // Where the GPU has finished the first flush's work, the upload has not landed yet: the
    // ticket must not say it is done.
    device.advance_to(flushed);
    assert_ne!(bytes(&device), [7u8; 4096]);
    assert!(!ticket.is_complete().expect("poll"));
    device.advance_to(carried);
    assert!(ticket.is_complete().expect("poll"));
    assert_eq!(bytes(&device), [7u8; 4096]);
    drop((granted, uploaded));
    assert_eq!(c.shutdown().leaked_buffers, 0);
    device.assert_no_misuse();
}
