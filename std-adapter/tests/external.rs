//! `Coordinator::wait_for_external`: the coordinator's copies into what the application's own
//! GPU work still reads, and the destruction of what it dropped, wait on the GPU for the
//! application's timeline. The simulated device stands for the application's queue: the test
//! signals its timeline by hand, and a copy into, or the destruction of, a buffer or image the
//! application declared in use before its timeline got there is recorded as a misuse.

use memkit_core::device::{DeviceError, ImageDesc, ImageFormat, ImageUsage, InvalidArgument};
use memkit_dummy::{DummyDevice, MisuseKind, Preset, WaitMode};
use memkit_std::{Coordinator, CoordinatorConfig, Error, MemoryUsage};

/// A coordinator over a simulated GPU that runs only when the test advances it.
fn coordinator() -> (Coordinator<DummyDevice>, DummyDevice) {
    let config = Preset::Discrete.config().with_wait_mode(WaitMode::Manual);
    let device = DummyDevice::new(config).expect("device");
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    (c, device)
}

#[test]
fn an_upload_staged_after_the_wait_lands_after_the_applications_frame() {
    let (c, device) = coordinator();
    let frame = device.create_external_timeline();
    let mesh = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    c.upload_to(&mesh, 0, &[1u8; 256]).expect("upload");
    c.flush_transfers().expect("flush");
    device.complete_all();

    // Frame 1 draws from the mesh; the next upload must not land before it finished.
    device
        .application_uses(mesh.raw(), frame, 1)
        .expect("our timeline");
    // Staged before the call: it goes out first, without the wait.
    let other = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let before = c.upload_to(&other, 0, &[4u8; 64]).expect("upload");
    // SAFETY: the timeline is the device's and outlives the coordinator; the test signals 1.
    let after_frame = unsafe { c.wait_for_external(frame, 1) }.expect("wait");
    let update = c.upload_to(&mesh, 0, &[2u8; 256]).expect("upload");
    c.flush_transfers().expect("flush");
    device.complete_all();
    assert!(before.is_complete().unwrap());
    assert_eq!(device.read_buffer(other.raw(), 0, 64).unwrap(), [4u8; 64]);
    assert_eq!(device.read_buffer(mesh.raw(), 0, 256).unwrap(), [1u8; 256]);
    assert!(!update.is_complete().unwrap());
    assert!(!after_frame.is_complete().unwrap());
    // SAFETY: as above.
    assert_eq!(unsafe { c.external_value(frame) }, Ok(0));

    device.signal_external(frame, 1).expect("our timeline");
    device.complete_all();
    assert_eq!(device.read_buffer(mesh.raw(), 0, 256).unwrap(), [2u8; 256]);
    assert!(update.is_complete().unwrap());
    assert!(after_frame.is_complete().unwrap());
    device.assert_no_misuse();

    // Without the wait, the simulated GPU sees the copy overtake the application's frame.
    device
        .application_uses(mesh.raw(), frame, 2)
        .expect("our timeline");
    c.upload_to(&mesh, 0, &[3u8; 256]).expect("upload");
    c.flush_transfers().expect("flush");
    device.complete_all();
    assert_eq!(
        device.misuse_kinds(),
        [MisuseKind::CopyWhileApplicationUses]
    );
    device.take_misuses();
    device.signal_external(frame, 2).expect("our timeline");
    drop((mesh, other));
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    device.assert_no_misuse();
}

#[test]
fn a_buffer_or_image_dropped_after_the_wait_outlives_the_applications_frame() {
    let (c, device) = coordinator();
    let frame = device.create_external_timeline();
    let (mesh, uploaded) = c.upload_slice(&[9u32; 1024]).expect("upload");
    let desc = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        16,
        16,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
    );
    let (texture, _) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &[5u8; 1024])
        .expect("texture");
    c.flush_transfers().expect("flush");
    device.complete_all();
    assert!(uploaded.is_complete().unwrap());
    let (mesh_raw, texture_raw) = (mesh.raw(), texture.raw().resource());
    for resource in [mesh_raw, texture_raw] {
        device
            .application_uses(resource, frame, 3)
            .expect("our timeline");
    }

    // A submission without commands carries the wait.
    let submitted = device.last_submitted();
    // SAFETY: the timeline is the device's and outlives the coordinator; the test signals 3.
    let after_frame = unsafe { c.wait_for_external(frame, 3) }.expect("wait");
    assert_eq!(device.last_submitted(), submitted + 1);
    assert_eq!(after_frame.value(), Some(submitted + 1));
    drop((mesh, texture));
    for _ in 0..2 {
        c.maintain().expect("maintain");
        device.complete_all();
    }
    let live = device.live_buffers();
    assert!(
        live.contains(&mesh_raw),
        "destroyed under the application's frame"
    );
    assert!(device.buffer_info(texture_raw).is_some());
    assert!(!after_frame.is_complete().unwrap());

    device.signal_external(frame, 3).expect("our timeline");
    device.complete_all();
    c.maintain().expect("maintain");
    assert!(after_frame.is_complete().unwrap());
    assert!(!device.live_buffers().contains(&mesh_raw));
    assert!(device.buffer_info(texture_raw).is_none());
    assert_eq!(c.stats().buffers_destroyed, 1);
    device.assert_no_misuse();
    assert_eq!(c.shutdown().leaked_buffers, 0);
}

#[test]
fn a_lower_value_adds_nothing_and_bad_timelines_are_typed_errors() {
    let (c, device) = coordinator();
    let frame = device.create_external_timeline();
    let buffer = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    // SAFETY: the timeline is the device's; the test signals 4.
    unsafe { c.wait_for_external(frame, 4) }.expect("wait");
    // SAFETY: as above.
    unsafe { c.wait_for_external(frame, 2) }.expect("wait");
    device.signal_external(frame, 2).expect("our timeline");
    let upload = c.upload_to(&buffer, 0, &[1u8; 16]).expect("upload");
    c.flush_transfers().expect("flush");
    device.complete_all();
    assert!(!upload.is_complete().unwrap(), "ran before 4 was signalled");
    device.signal_external(frame, 4).expect("our timeline");
    device.complete_all();
    assert!(upload.is_complete().unwrap());

    let other = DummyDevice::discrete();
    let foreign = other.create_external_timeline();
    // SAFETY: a foreign timeline is refused before anything waits on it.
    let refused = unsafe { c.wait_for_external(foreign, 1) };
    assert_eq!(
        refused.err(),
        Some(Error::Device(DeviceError::InvalidArgument(
            InvalidArgument::UnknownTimeline
        )))
    );
    device.lose_device();
    // SAFETY: the timeline is the device's.
    let lost = unsafe { c.wait_for_external(frame, 5) };
    assert_eq!(lost.err(), Some(Error::DeviceLost));
    // SAFETY: as above.
    assert_eq!(unsafe { c.external_value(frame) }, Err(Error::DeviceLost));
    drop(buffer);
    c.shutdown();
}

#[test]
fn a_ticket_wait_blocks_until_the_application_signalled() {
    // Waits run the simulated GPU on the waiting thread (`WaitMode::Auto`), which cannot get
    // past the submission that waits for the application: the ticket keeps waiting until another
    // thread signals, rather than report the upload done.
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    let frame = device.create_external_timeline();
    let mesh = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    // SAFETY: the timeline is the device's and outlives the coordinator; the thread signals 1.
    unsafe { c.wait_for_external(frame, 1) }.expect("wait");
    let update = c.upload_to(&mesh, 0, &[6u8; 512]).expect("upload");
    let application = device.clone();
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(30));
        application.signal_external(frame, 1).expect("our timeline");
    });
    assert_eq!(
        update.wait_timeout(std::time::Duration::from_millis(1)),
        Ok(false)
    );
    update.wait().expect("completes once signalled");
    assert_eq!(device.external_value(frame), Ok(1));
    assert_eq!(device.read_buffer(mesh.raw(), 0, 512).unwrap(), [6u8; 512]);
    signaller.join().unwrap();
    drop(mesh);
    assert_eq!(c.shutdown().leaked_buffers, 0);
    device.assert_no_misuse();
}
