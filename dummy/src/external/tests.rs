use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, DeviceError, InvalidArgument, MemoryAllocateInfo,
};

use crate::{DummyBuffer, DummyDevice, InspectError, MisuseKind};

/// A host-visible staging buffer holding `b"frame"` at 0 and a device-local target, both 4 KiB.
fn staging_and_target(gpu: &DummyDevice) -> (DummyBuffer, DummyBuffer) {
    let usage = BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST;
    let info = |memory_type| MemoryAllocateInfo {
        size: 4096,
        memory_type,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // Type 1 is host-visible coherent, type 0 device-local on the discrete preset.
    let staging_memory = gpu.allocate_memory(&info(1)).unwrap();
    let vram = gpu.allocate_memory(&info(0)).unwrap();
    let (staging, _) = gpu.create_buffer(4096, usage).unwrap();
    let (target, _) = gpu.create_buffer(4096, usage).unwrap();
    gpu.bind_buffer_memory(staging, staging_memory, 0).unwrap();
    gpu.bind_buffer_memory(target, vram, 0).unwrap();
    gpu.map_memory(staging_memory).unwrap();
    gpu.host_write(staging_memory, 0, b"frame").unwrap();
    (staging, target)
}

fn copy_at(gpu: &DummyDevice, staging: DummyBuffer, target: DummyBuffer, at: u64, value: u64) {
    let region = [BufferCopy {
        src_offset: 0,
        dst_offset: at,
        size: 5,
    }];
    let copy = CopyCommand {
        src: staging,
        dst: target,
        regions: &region,
    };
    gpu.submit_copies(&[copy], value).unwrap();
}

#[test]
fn submissions_after_the_wait_execute_only_once_the_application_signalled() {
    let gpu = DummyDevice::discrete();
    let (staging, target) = staging_and_target(&gpu);
    let frame = gpu.create_external_timeline();
    copy_at(&gpu, staging, target, 0, 1);
    gpu.wait_for_external(frame, 3).unwrap();
    copy_at(&gpu, staging, target, 100, 2);
    copy_at(&gpu, staging, target, 200, 3);

    // The submission made before the wait runs; the GPU stalls at the next one.
    assert_eq!(gpu.complete_all(), 1);
    assert_eq!(gpu.read_buffer(target, 0, 5).unwrap(), b"frame");
    assert_eq!(gpu.read_buffer(target, 100, 5).unwrap(), [0; 5]);
    assert_eq!(gpu.pending_values(), [2, 3]);
    gpu.signal_external(frame, 2).unwrap();
    assert_eq!(gpu.complete_all(), 1);
    assert_eq!(gpu.external_value(frame).unwrap(), 2);

    gpu.signal_external(frame, 3).unwrap();
    assert_eq!(gpu.complete_all(), 3);
    assert_eq!(gpu.read_buffer(target, 100, 5).unwrap(), b"frame");
    assert_eq!(gpu.read_buffer(target, 200, 5).unwrap(), b"frame");
    // A value already reached adds no wait.
    gpu.wait_for_external(frame, 3).unwrap();
    copy_at(&gpu, staging, target, 300, 4);
    assert_eq!(gpu.complete_all(), 4);
    gpu.assert_no_misuse();
}

#[test]
fn a_copy_into_what_the_application_still_uses_is_a_misuse_unless_it_waited() {
    let gpu = DummyDevice::discrete();
    let (staging, target) = staging_and_target(&gpu);
    let frame = gpu.create_external_timeline();
    // Submitted before the application's work: what that work waits for and reads.
    copy_at(&gpu, staging, target, 0, 1);
    gpu.application_uses(target, frame, 1).unwrap();
    gpu.complete_all();
    gpu.assert_no_misuse();

    copy_at(&gpu, staging, target, 0, 2);
    gpu.complete_all();
    assert_eq!(gpu.misuse_kinds(), [MisuseKind::CopyWhileApplicationUses]);
    gpu.take_misuses();
    gpu.signal_external(frame, 1).unwrap();

    gpu.application_uses(target, frame, 2).unwrap();
    gpu.wait_for_external(frame, 2).unwrap();
    copy_at(&gpu, staging, target, 0, 3);
    assert_eq!(gpu.complete_all(), 2);
    gpu.signal_external(frame, 2).unwrap();
    assert_eq!(gpu.complete_all(), 3);
    gpu.assert_no_misuse();
}

#[test]
fn destroying_what_the_application_still_uses_is_a_misuse() {
    let gpu = DummyDevice::discrete();
    let (_, target) = staging_and_target(&gpu);
    let (other, _) = gpu.create_buffer(64, BufferUsage::TRANSFER_DST).unwrap();
    let frame = gpu.create_external_timeline();
    gpu.application_uses(target, frame, 5).unwrap();
    gpu.application_uses(other, frame, 5).unwrap();
    gpu.destroy_buffer(target);
    assert_eq!(
        gpu.misuse_kinds(),
        [MisuseKind::DestroyedWhileApplicationUses]
    );
    gpu.take_misuses();
    gpu.signal_external(frame, 5).unwrap();
    gpu.destroy_buffer(other);
    gpu.assert_no_misuse();
}

#[test]
fn with_complete_on_submit_the_signal_runs_what_waited() {
    let gpu = DummyDevice::discrete();
    gpu.set_complete_on_submit(true);
    let (staging, target) = staging_and_target(&gpu);
    let frame = gpu.create_external_timeline();
    gpu.wait_for_external(frame, 7).unwrap();
    copy_at(&gpu, staging, target, 0, 1);
    assert_eq!(gpu.completed(), 0);
    gpu.signal_external(frame, 7).unwrap();
    assert_eq!(gpu.completed(), 1);
    assert_eq!(gpu.read_buffer(target, 0, 5).unwrap(), b"frame");
}

#[test]
fn foreign_timelines_and_lost_devices_are_refused() {
    let gpu = DummyDevice::discrete();
    let other = DummyDevice::discrete();
    let theirs = other.create_external_timeline();
    let unknown = DeviceError::InvalidArgument(InvalidArgument::UnknownTimeline);
    assert_eq!(gpu.wait_for_external(theirs, 1), Err(unknown));
    assert_eq!(gpu.external_value(theirs), Err(unknown));
    assert_eq!(
        gpu.signal_external(theirs, 1),
        Err(InspectError::UnknownTimeline)
    );
    let (buffer, _) = gpu.create_buffer(64, BufferUsage::TRANSFER_DST).unwrap();
    assert_eq!(
        gpu.application_uses(buffer, theirs, 1),
        Err(InspectError::UnknownTimeline)
    );
    let ours = gpu.create_external_timeline();
    gpu.lose_device();
    assert_eq!(gpu.wait_for_external(ours, 1), Err(DeviceError::DeviceLost));
    assert_eq!(gpu.external_value(ours), Err(DeviceError::DeviceLost));
    gpu.destroy_buffer(buffer);
}

#[test]
fn bytes_written_again_while_the_application_reads_them_are_a_misuse_when_its_read_ends() {
    let gpu = DummyDevice::discrete();
    // Per-frame constants in host-visible coherent memory (type 1 on the discrete preset).
    let info = MemoryAllocateInfo {
        size: 4096,
        memory_type: 1,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    let memory = gpu.allocate_memory(&info).unwrap();
    let (staging, _) = gpu.create_buffer(4096, BufferUsage::UNIFORM).unwrap();
    gpu.bind_buffer_memory(staging, memory, 0).unwrap();
    gpu.map_memory(memory).unwrap();
    gpu.host_write(memory, 0, b"frame").unwrap();
    let frame = gpu.create_external_timeline();
    // Frame 1 reads "frame" at 0; frame 2 reads 64..69, which the host then writes after
    // frame 2 ended: both fine.
    gpu.application_reads(staging, 0, 5, frame, 1).unwrap();
    gpu.host_write(memory, 64, b"next!").unwrap();
    gpu.application_reads(staging, 64, 5, frame, 2).unwrap();
    gpu.signal_external(frame, 2).unwrap();
    gpu.host_write(memory, 64, b"later").unwrap();
    gpu.assert_no_misuse();

    // Written again before frame 3's read ended: found when frame 3 ends.
    gpu.application_reads(staging, 0, 5, frame, 3).unwrap();
    gpu.host_write(memory, 2, b"X").unwrap();
    gpu.assert_no_misuse();
    gpu.signal_external(frame, 3).unwrap();
    assert_eq!(
        gpu.misuse_kinds(),
        [MisuseKind::ChangedWhileApplicationReads]
    );
    gpu.take_misuses();

    // Destroying a buffer the application still reads.
    gpu.application_reads(staging, 0, 5, frame, 4).unwrap();
    gpu.destroy_buffer(staging);
    assert_eq!(
        gpu.misuse_kinds(),
        [MisuseKind::DestroyedWhileApplicationUses]
    );
    gpu.take_misuses();
    gpu.signal_external(frame, 4).unwrap();
    gpu.assert_no_misuse();
}

#[test]
fn a_read_of_a_range_outside_the_buffer_or_on_an_unknown_timeline_is_refused() {
    let gpu = DummyDevice::discrete();
    let (staging, _) = staging_and_target(&gpu);
    let frame = gpu.create_external_timeline();
    let other = DummyDevice::discrete().create_external_timeline();
    assert_eq!(
        gpu.application_reads(staging, 4090, 16, frame, 1),
        Err(InspectError::OutOfBounds)
    );
    assert_eq!(
        gpu.application_reads(staging, 0, 5, other, 1),
        Err(InspectError::UnknownTimeline)
    );
}
