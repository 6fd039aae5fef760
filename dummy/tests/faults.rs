//! Fault injection: planned and seeded failures, budgets, limits and device loss.

mod common;

use common::{XFER, alloc, backed_buffer, copy, info, release_all};
use memkit_core::device::{DeviceError, HeapBudget, MappedRange};
use memkit_dummy::{DeviceConfig, DummyDevice, RandomFailures, ScheduledFault, Trigger};

const MIB: u64 = 1 << 20;

#[test]
fn the_nth_allocation_fails_and_the_device_keeps_working() {
    for k in 1..=4 {
        let gpu = DummyDevice::discrete();
        gpu.fail_allocation_call(k, DeviceError::OutOfDeviceMemory);
        let results: Vec<bool> = (0..4)
            .map(|_| gpu.allocate_memory(&info(0, MIB)).is_ok())
            .collect();
        let expected: Vec<bool> = (1..=4).map(|i| i != k).collect();
        assert_eq!(results, expected, "k = {k}");
        let counters = gpu.counters();
        assert_eq!(counters.allocation_calls, 4);
        assert_eq!(counters.failed_allocations, 1);
        assert_eq!(counters.live_memory_objects, 3);
        assert_eq!(
            gpu.heap_used(0),
            3 * MIB,
            "a failed allocation takes nothing"
        );
        release_all(&gpu);
        gpu.assert_no_misuse();
    }
}

#[test]
fn planned_failures_use_the_given_error_and_other_sites() {
    let gpu = DummyDevice::discrete();
    gpu.fail_allocation_call(1, DeviceError::OutOfHostMemory);
    assert_eq!(
        gpu.allocate_memory(&info(1, 256)),
        Err(DeviceError::OutOfHostMemory)
    );
    let memory = alloc(&gpu, 1, 256);
    gpu.fail_map_call(1);
    assert_eq!(gpu.map_memory(memory), Err(DeviceError::MapFailed));
    assert!(gpu.map_memory(memory).is_ok(), "the second map works");
    gpu.fail_buffer_creation_call(1, DeviceError::OutOfDeviceMemory);
    assert_eq!(
        gpu.create_buffer(64, XFER).err(),
        Some(DeviceError::OutOfDeviceMemory)
    );
    // A refused bind binds nothing: the same buffer binds at the next call, and the counters
    // tell the two calls from the one bind.
    let binds = gpu.counters();
    gpu.fail_bind_call(binds.bind_calls + 1, DeviceError::OutOfDeviceMemory);
    let (unbound, _) = gpu.create_buffer(64, XFER).expect("buffer");
    assert_eq!(
        gpu.bind_buffer_memory(unbound, memory, 0),
        Err(DeviceError::OutOfDeviceMemory)
    );
    gpu.bind_buffer_memory(unbound, memory, 0)
        .expect("the second bind works");
    let after = gpu.counters();
    assert_eq!(after.bind_calls, binds.bind_calls + 2);
    assert_eq!(after.binds, binds.binds + 1);
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    gpu.fail_submit_call(1, DeviceError::OutOfHostMemory);
    let regions = [memkit_core::device::BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: 4,
    }];
    let command = memkit_core::device::CopyCommand {
        src: staging,
        dst: target,
        regions: &regions,
    };
    assert_eq!(
        gpu.submit_copies(&[command], 1),
        Err(DeviceError::OutOfHostMemory)
    );
    assert_eq!(
        gpu.pending_values(),
        [] as [u64; 0],
        "nothing was submitted"
    );
    gpu.submit_copies(&[command], 1).expect("retry");
    gpu.complete_all();
    release_all(&gpu);
    gpu.assert_no_misuse();
}

fn pattern(seed: u64) -> Vec<bool> {
    let gpu = DummyDevice::lavapipe();
    gpu.fail_randomly(RandomFailures {
        seed,
        allocation_one_in: 3,
        ..RandomFailures::default()
    });
    let pattern = (0..64)
        .map(|_| gpu.allocate_memory(&info(0, 4096)).is_ok())
        .collect();
    release_all(&gpu);
    pattern
}

#[test]
fn random_failures_are_reproducible_from_the_seed() {
    let a = pattern(42);
    assert_eq!(a, pattern(42));
    assert_ne!(a, pattern(43));
    let failures = a.iter().filter(|ok| !**ok).count();
    assert!(
        (8..=40).contains(&failures),
        "about one in three: {failures}"
    );
}

#[test]
fn heap_sizes_and_object_counts_are_enforced() {
    let gpu = DummyDevice::new(DeviceConfig::mobile().with_max_memory_allocation_count(3))
        .expect("device");
    // Heap 1 (host, 256 MiB).
    let a = alloc(&gpu, 1, 100 * MIB);
    let _b = alloc(&gpu, 1, 100 * MIB);
    assert_eq!(
        gpu.allocate_memory(&info(1, 100 * MIB)),
        Err(DeviceError::OutOfDeviceMemory)
    );
    let _c = alloc(&gpu, 0, MIB);
    assert_eq!(
        gpu.allocate_memory(&info(0, MIB)),
        Err(DeviceError::TooManyObjects)
    );
    gpu.free_memory(a);
    alloc(&gpu, 0, MIB);
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn budgets_shrink_at_a_chosen_point() {
    let gpu = DummyDevice::discrete();
    gpu.schedule(
        Trigger::AllocationCall(3),
        ScheduledFault::SetHeapBudget {
            heap: 0,
            budget: 10 * MIB,
        },
    );
    alloc(&gpu, 0, 4 * MIB);
    alloc(&gpu, 0, 4 * MIB);
    // The third call sees the shrunken budget: 8 + 4 > 10.
    assert_eq!(
        gpu.allocate_memory(&info(0, 4 * MIB)),
        Err(DeviceError::OutOfDeviceMemory)
    );
    let mut budgets = [HeapBudget::default(); 3];
    assert!(gpu.query_budget(&mut budgets));
    assert_eq!(
        budgets[0],
        HeapBudget {
            budget: 10 * MIB,
            usage: 8 * MIB
        }
    );
    alloc(&gpu, 0, 2 * MIB);
    // External usage counts against the budget too.
    gpu.set_heap_budget(0, 12 * MIB);
    gpu.set_external_usage(0, 2 * MIB);
    assert_eq!(
        gpu.allocate_memory(&info(0, MIB)),
        Err(DeviceError::OutOfDeviceMemory)
    );
    release_all(&gpu);

    // Advisory budgets only report.
    let gpu =
        DummyDevice::new(DeviceConfig::discrete().with_enforce_budget(false)).expect("device");
    gpu.set_heap_budget(0, MIB);
    alloc(&gpu, 0, 4 * MIB);
    release_all(&gpu);
}

#[test]
fn a_lost_device_fails_every_call_and_never_completes() {
    let gpu = DummyDevice::discrete();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    gpu.host_write(staging_memory, 0, &[1; 16]).expect("write");
    copy(&gpu, staging, target, 0, 0, 16, 1);
    gpu.lose_device();
    assert!(gpu.is_lost());
    assert_eq!(gpu.advance_to(1), 0, "pending work never completes");
    assert_eq!(gpu.complete_next(), None);
    assert_eq!(gpu.read_buffer(target, 0, 16).expect("read"), [0; 16]);
    let lost: Result<(), DeviceError> = Err(DeviceError::DeviceLost);
    assert_eq!(gpu.completed_value().map(|_| ()), lost);
    assert_eq!(gpu.wait(1, 0).map(|_| ()), lost);
    assert_eq!(gpu.allocate_memory(&info(0, 64)).map(|_| ()), lost);
    assert_eq!(gpu.map_memory(staging_memory).map(|_| ()), lost);
    assert_eq!(gpu.create_buffer(64, XFER).map(|_| ()), lost);
    assert_eq!(gpu.bind_buffer_memory(staging, staging_memory, 0), lost);
    assert_eq!(
        gpu.flush_ranges(&[MappedRange {
            memory: staging_memory,
            offset: 0,
            size: 64
        }]),
        lost
    );
    let regions = [memkit_core::device::BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: 4,
    }];
    let command = memkit_core::device::CopyCommand {
        src: staging,
        dst: target,
        regions: &regions,
    };
    assert_eq!(gpu.submit_copies(&[command], 2), lost);
    // Cleanup still works, and nothing counts as pending any more.
    release_all(&gpu);
    gpu.assert_no_misuse();
    assert!(gpu.leak_report().is_empty());
}

#[test]
fn the_device_is_lost_mid_frame_at_a_timeline_value() {
    let gpu = DummyDevice::discrete();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    gpu.host_write(staging_memory, 0, &[1; 16]).expect("write");
    gpu.schedule(Trigger::TimelineValue(2), ScheduledFault::LoseDevice);
    copy(&gpu, staging, target, 0, 0, 8, 1);
    copy(&gpu, staging, target, 8, 8, 8, 2);
    copy(&gpu, staging, target, 0, 16, 8, 3);
    assert_eq!(gpu.wait(3, u64::MAX), Err(DeviceError::DeviceLost));
    assert_eq!(gpu.completed(), 1);
    let bytes = gpu.read_buffer(target, 0, 24).expect("read");
    assert_eq!(bytes, [[1; 8], [0; 8], [0; 8]].concat());
    release_all(&gpu);
}

#[test]
fn the_device_is_lost_at_a_submission() {
    let gpu = DummyDevice::discrete();
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    gpu.schedule(Trigger::SubmitCall(2), ScheduledFault::LoseDevice);
    copy(&gpu, staging, target, 0, 0, 8, 1);
    let regions = [memkit_core::device::BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: 4,
    }];
    let command = memkit_core::device::CopyCommand {
        src: staging,
        dst: target,
        regions: &regions,
    };
    assert_eq!(
        gpu.submit_copies(&[command], 2),
        Err(DeviceError::DeviceLost)
    );
    assert_eq!(gpu.wait(1, 0), Err(DeviceError::DeviceLost));
    assert_eq!(gpu.wait(0, 0).ok(), None);
    release_all(&gpu);
}

/// A one-region command, for the loss tests below.
fn one_region<'a>(
    staging: memkit_dummy::DummyBuffer,
    target: memkit_dummy::DummyBuffer,
    regions: &'a [memkit_core::device::BufferCopy; 1],
) -> memkit_core::device::CopyCommand<'a, memkit_dummy::DummyBuffer> {
    memkit_core::device::CopyCommand {
        src: staging,
        dst: target,
        regions,
    }
}

/// What a lost device answers, checked call by call: every call that reaches the driver fails
/// with `DeviceLost`.
fn assert_stays_lost(gpu: &DummyDevice, memory: memkit_dummy::DummyMemory) {
    let lost: Result<(), DeviceError> = Err(DeviceError::DeviceLost);
    assert!(gpu.is_lost());
    assert_eq!(gpu.completed_value().map(|_| ()), lost);
    assert_eq!(gpu.wait(1, 0).map(|_| ()), lost);
    assert_eq!(gpu.allocate_memory(&info(0, 64)).map(|_| ()), lost);
    assert_eq!(gpu.create_buffer(64, XFER).map(|_| ()), lost);
    assert_eq!(gpu.map_memory(memory).map(|_| ()), lost);
    let range = MappedRange {
        memory,
        offset: 0,
        size: 64,
    };
    assert_eq!(gpu.flush_ranges(&[range]), lost);
    assert_eq!(gpu.invalidate_ranges(&[range]), lost);
}

#[test]
fn an_injected_device_lost_at_submit_is_permanent() {
    let gpu = DummyDevice::discrete();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    gpu.host_write(staging_memory, 0, &[9; 8]).expect("write");
    copy(&gpu, staging, target, 0, 0, 8, 1);
    gpu.fail_submit_call(2, DeviceError::DeviceLost);
    let regions = [memkit_core::device::BufferCopy {
        src_offset: 0,
        dst_offset: 8,
        size: 8,
    }];
    let command = one_region(staging, target, &regions);
    assert_eq!(
        gpu.submit_copies(&[command], 2),
        Err(DeviceError::DeviceLost)
    );
    // As a driver's loss: the retry fails too, and the work submitted before never completes.
    assert_eq!(
        gpu.submit_copies(&[command], 2),
        Err(DeviceError::DeviceLost)
    );
    assert_eq!(gpu.pending_values(), [] as [u64; 0]);
    assert_eq!(gpu.advance_to(1), 0);
    assert_eq!(gpu.read_buffer(target, 0, 16).expect("read"), [0; 16]);
    assert_stays_lost(&gpu, staging_memory);
    release_all(&gpu);
    gpu.assert_no_misuse();
    assert!(gpu.leak_report().is_empty());
}

#[test]
fn an_injected_device_lost_at_allocation_or_creation_is_permanent() {
    let gpu = DummyDevice::discrete();
    let memory = alloc(&gpu, 1, 256);
    gpu.fail_allocation_call(2, DeviceError::DeviceLost);
    assert_eq!(
        gpu.allocate_memory(&info(0, 64)),
        Err(DeviceError::DeviceLost)
    );
    assert_stays_lost(&gpu, memory);
    assert_eq!(gpu.counters().live_memory_objects, 1);
    release_all(&gpu);

    let gpu = DummyDevice::discrete();
    let memory = alloc(&gpu, 1, 256);
    gpu.fail_buffer_creation_call(1, DeviceError::DeviceLost);
    assert_eq!(
        gpu.create_buffer(64, XFER).err(),
        Some(DeviceError::DeviceLost)
    );
    assert_stays_lost(&gpu, memory);
    // The loss is reported before the arguments are looked at, as on memkit-vulkan.
    assert_eq!(
        gpu.create_buffer(64, memkit_core::device::BufferUsage::empty())
            .err(),
        Some(DeviceError::DeviceLost)
    );
    let bad_image = memkit_core::device::ImageDesc::new_2d(
        memkit_core::device::ImageFormat::Rgba8Unorm,
        0,
        0,
        memkit_core::device::ImageUsage::SAMPLED,
    );
    assert_eq!(
        gpu.create_image(&bad_image).err(),
        Some(DeviceError::DeviceLost)
    );
    release_all(&gpu);

    // Other injected errors still leave the device working.
    let gpu = DummyDevice::discrete();
    gpu.fail_allocation_call(1, DeviceError::OutOfDeviceMemory);
    assert!(gpu.allocate_memory(&info(0, 64)).is_err());
    assert!(!gpu.is_lost());
    assert!(gpu.allocate_memory(&info(0, 64)).is_ok());
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn an_injected_device_lost_wakes_a_blocked_waiter() {
    let gpu = DummyDevice::discrete();
    gpu.set_wait_mode(memkit_dummy::WaitMode::Block);
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    copy(&gpu, staging, target, 0, 0, 8, 1);
    gpu.fail_submit_call(2, DeviceError::DeviceLost);
    let regions = [memkit_core::device::BufferCopy {
        src_offset: 0,
        dst_offset: 8,
        size: 8,
    }];
    let started = std::time::Instant::now();
    let waited = std::thread::scope(|s| {
        let (about_to_wait, ready) = std::sync::mpsc::channel();
        let gpu = &gpu;
        let waiter = s.spawn(move || {
            about_to_wait.send(()).expect("main thread");
            gpu.wait(1, 5_000_000_000)
        });
        ready.recv().expect("waiter");
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Still waiting: the loss below must wake a blocked wait, not one that checks up front.
        assert!(
            !waiter.is_finished(),
            "value 1 cannot complete in Block mode"
        );
        let command = one_region(staging, target, &regions);
        assert_eq!(
            gpu.submit_copies(&[command], 2),
            Err(DeviceError::DeviceLost)
        );
        waiter.join().expect("waiter")
    });
    assert_eq!(waited, Err(DeviceError::DeviceLost));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the loss did not wake the waiter before its timeout"
    );
    release_all(&gpu);
}
