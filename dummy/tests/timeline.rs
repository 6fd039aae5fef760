//! The GPU timeline moves only when the test moves it, and copies really move bytes then.

mod common;

use std::thread;
use std::time::Duration;

use common::{backed_buffer, copy, release_all};
use memkit_core::device::{BufferCopy, CopyCommand, MappedRange, WaitStatus};
use memkit_dummy::{DeviceConfig, DummyDevice, WaitMode};

/// Discrete preset: host-visible staging (type 1) and device-local target (type 0).
fn staging_and_target(
    gpu: &DummyDevice,
) -> (
    memkit_dummy::DummyMemory,
    memkit_dummy::DummyBuffer,
    memkit_dummy::DummyBuffer,
) {
    let (staging_memory, staging) = backed_buffer(gpu, 1, 4096, true);
    let (_, target) = backed_buffer(gpu, 0, 4096, false);
    (staging_memory, staging, target)
}

#[test]
fn copies_execute_only_when_the_timeline_reaches_them() {
    let gpu = DummyDevice::discrete();
    let (memory, staging, target) = staging_and_target(&gpu);
    gpu.host_write(memory, 0, &[1; 16]).expect("write");
    gpu.host_write(memory, 16, &[2; 16]).expect("write");
    gpu.host_write(memory, 32, &[3; 16]).expect("write");
    copy(&gpu, staging, target, 0, 0, 16, 1);
    copy(&gpu, staging, target, 16, 16, 16, 5);
    copy(&gpu, staging, target, 32, 32, 16, 9);
    assert_eq!(gpu.pending_values(), [1, 5, 9]);
    assert_eq!(gpu.last_submitted(), 9);
    assert_eq!(gpu.completed_value(), Ok(0));
    assert_eq!(gpu.read_buffer(target, 0, 48).expect("read"), [0; 48]);

    assert_eq!(gpu.advance_to(6), 5, "completes 1 and 5, not 9");
    assert_eq!(gpu.completed_value(), Ok(5));
    let bytes = gpu.read_buffer(target, 0, 48).expect("read");
    assert_eq!(&bytes[..32], [[1; 16], [2; 16]].concat().as_slice());
    assert_eq!(&bytes[32..], [0; 16]);

    assert_eq!(gpu.complete_next(), Some(9));
    assert_eq!(gpu.complete_next(), None);
    assert_eq!(gpu.read_buffer(target, 32, 16).expect("read"), [3; 16]);
    let counters = gpu.counters();
    assert_eq!(
        (
            counters.submissions,
            counters.executed_submissions,
            counters.copies,
            counters.regions,
            counters.bytes_copied
        ),
        (3, 3, 3, 3, 48)
    );
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn many_regions_and_commands_in_one_submission() {
    let gpu = DummyDevice::discrete();
    let (memory, staging, target) = staging_and_target(&gpu);
    let data: Vec<u8> = (0..=255).collect();
    gpu.host_write(memory, 0, &data).expect("write");
    let regions: Vec<BufferCopy> = (0..16)
        .map(|i| BufferCopy {
            src_offset: i * 16,
            dst_offset: 4096 - (i + 1) * 16,
            size: 16,
        })
        .collect();
    let (_, second_target) = backed_buffer(&gpu, 0, 256, false);
    let commands = [
        CopyCommand {
            src: staging,
            dst: target,
            regions: &regions,
        },
        CopyCommand {
            src: staging,
            dst: second_target,
            regions: &[BufferCopy {
                src_offset: 0,
                dst_offset: 0,
                size: 256,
            }],
        },
    ];
    gpu.submit_copies(&commands, 1).expect("submit");
    gpu.complete_all();
    for i in 0..16u64 {
        let got = gpu
            .read_buffer(target, 4096 - (i + 1) * 16, 16)
            .expect("read");
        assert_eq!(got, data[(i * 16) as usize..(i * 16 + 16) as usize]);
    }
    assert_eq!(gpu.read_buffer(second_target, 0, 256).expect("read"), data);
    let counters = gpu.counters();
    assert_eq!(
        (counters.copies, counters.regions, counters.bytes_copied),
        (2, 17, 512)
    );
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn auto_wait_completes_up_to_the_value() {
    let gpu = DummyDevice::discrete();
    let (_, staging, target) = staging_and_target(&gpu);
    copy(&gpu, staging, target, 0, 0, 16, 3);
    copy(&gpu, staging, target, 16, 16, 16, 7);
    assert_eq!(
        gpu.wait(2, 0),
        Ok(WaitStatus::Completed),
        "value 3 covers 2"
    );
    assert_eq!(gpu.completed(), 3);
    assert_eq!(gpu.pending_values(), [7]);
    assert_eq!(
        gpu.wait(8, u64::MAX),
        Ok(WaitStatus::TimedOut),
        "8 was never submitted"
    );
    assert_eq!(
        gpu.pending_values(),
        [7],
        "a hopeless wait executes nothing"
    );
    assert_eq!(gpu.wait(7, 0), Ok(WaitStatus::Completed));
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn manual_wait_times_out_until_the_test_advances() {
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_wait_mode(WaitMode::Manual))
        .expect("device");
    let (_, staging, target) = staging_and_target(&gpu);
    copy(&gpu, staging, target, 0, 0, 16, 1);
    assert_eq!(gpu.wait(1, u64::MAX), Ok(WaitStatus::TimedOut));
    assert_eq!(gpu.completed_value(), Ok(0));
    gpu.advance_to(1);
    assert_eq!(gpu.wait(1, 0), Ok(WaitStatus::Completed));
    gpu.set_wait_mode(WaitMode::Auto);
    copy(&gpu, staging, target, 0, 0, 16, 2);
    assert_eq!(gpu.wait(2, 0), Ok(WaitStatus::Completed));
    release_all(&gpu);
}

#[test]
fn blocking_wait_returns_when_another_thread_advances() {
    let gpu =
        DummyDevice::new(DeviceConfig::discrete().with_wait_mode(WaitMode::Block)).expect("device");
    let (_, staging, target) = staging_and_target(&gpu);
    copy(&gpu, staging, target, 0, 0, 16, 1);
    assert_eq!(
        gpu.wait(1, 1_000_000),
        Ok(WaitStatus::TimedOut),
        "1 ms, nobody advances"
    );
    let gpu_thread = {
        let gpu = gpu.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gpu.advance_to(1)
        })
    };
    assert_eq!(gpu.wait(1, 10_000_000_000), Ok(WaitStatus::Completed));
    assert_eq!(gpu_thread.join().expect("gpu thread"), 1);
    // A loss wakes a blocked waiter with an error.
    copy(&gpu, staging, target, 0, 0, 16, 2);
    let loser = {
        let gpu = gpu.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gpu.lose_device();
        })
    };
    assert_eq!(
        gpu.wait(2, u64::MAX),
        Err(memkit_core::device::DeviceError::DeviceLost)
    );
    loser.join().expect("thread");
    release_all(&gpu);
}

#[test]
fn complete_on_submit_executes_at_once() {
    let gpu =
        DummyDevice::new(DeviceConfig::discrete().with_complete_on_submit(true)).expect("device");
    let (memory, staging, target) = staging_and_target(&gpu);
    gpu.host_write(memory, 0, b"now").expect("write");
    copy(&gpu, staging, target, 0, 0, 3, 1);
    assert_eq!(gpu.completed_value(), Ok(1));
    assert_eq!(gpu.read_buffer(target, 0, 3).expect("read"), b"now");
    gpu.set_complete_on_submit(false);
    copy(&gpu, staging, target, 0, 8, 3, 2);
    assert_eq!(gpu.completed_value(), Ok(1));
    release_all(&gpu);
}

#[test]
fn non_coherent_round_trip_done_right_is_clean() {
    let gpu = DummyDevice::mobile();
    let atom = gpu.limits().non_coherent_atom_size;
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 4 * atom, true);
    let (_, vram) = backed_buffer(&gpu, 0, 4 * atom, false);
    let (readback_memory, readback) = backed_buffer(&gpu, 1, 4 * atom, true);
    let data: Vec<u8> = (0..atom).map(|i| (i * 3) as u8).collect();
    gpu.host_write(staging_memory, atom, &data).expect("write");
    gpu.flush_ranges(&[MappedRange {
        memory: staging_memory,
        offset: atom,
        size: atom,
    }])
    .expect("flush");
    copy(&gpu, staging, vram, atom, 0, atom, 1);
    copy(&gpu, vram, readback, 0, 2 * atom, atom, 2);
    gpu.complete_all();
    gpu.invalidate_ranges(&[MappedRange {
        memory: readback_memory,
        offset: 2 * atom,
        size: atom,
    }])
    .expect("invalidate");
    let mut out = vec![0; atom as usize];
    gpu.host_read(readback_memory, 2 * atom, &mut out)
        .expect("read");
    assert_eq!(out, data);
    let counters = gpu.counters();
    assert_eq!(
        (counters.flushed_ranges, counters.invalidated_ranges),
        (1, 1)
    );
    release_all(&gpu);
    gpu.assert_no_misuse();
}
