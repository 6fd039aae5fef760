//! Each detector catches its misuse, and the correct use next to it is not flagged.

mod common;

use common::{XFER, alloc, backed_buffer, buffer_at, copy, info, release_all};
use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, DedicatedHint, DedicatedTo, DeviceError, InvalidArgument,
    MappedRange, MemoryAllocateInfo,
};
use memkit_dummy::{
    DeviceConfig, DummyDevice, InspectError, InvalidAllocation, MISUSE_RESULT_CODE, Misuse,
    MisuseKind, Operation,
};

const REFUSED: DeviceError = DeviceError::Unexpected(MISUSE_RESULT_CODE);

fn kinds(gpu: &DummyDevice) -> Vec<MisuseKind> {
    gpu.take_misuses().iter().map(Misuse::kind).collect()
}

// ---- non-coherent memory -------------------------------------------------------------------

#[test]
fn unflushed_host_writes_are_caught_and_invisible_to_the_gpu() {
    let gpu = DummyDevice::mobile();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 1024, true);
    let (_, vram) = backed_buffer(&gpu, 0, 1024, false);
    gpu.host_write(staging_memory, 300, b"not flushed")
        .expect("write");
    copy(&gpu, staging, vram, 256, 0, 256, 1);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::UnflushedHostWrite {
            memory: staging_memory,
            offset: 300,
            size: 256
        }]
    );
    gpu.complete_all();
    // The GPU read its own (stale) view: zeros.
    assert_eq!(gpu.read_buffer(vram, 44, 11).expect("read"), [0; 11]);

    // Flushed: clean, and the bytes arrive.
    gpu.flush_ranges(&[MappedRange {
        memory: staging_memory,
        offset: 256,
        size: 256,
    }])
    .expect("flush");
    copy(&gpu, staging, vram, 256, 0, 256, 2);
    gpu.complete_all();
    assert_eq!(gpu.read_buffer(vram, 44, 11).expect("read"), b"not flushed");
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn direct_writes_read_by_gpu_work_outside_the_simulator_are_checked() {
    let gpu = DummyDevice::new(DeviceConfig::mobile().with_buffer_memory_type_bits(u32::MAX))
        .expect("device");
    let memory = alloc(&gpu, 1, 1024);
    gpu.map_memory(memory).expect("map");
    gpu.host_write(memory, 512, &[1; 16]).expect("write");
    assert_eq!(gpu.check_device_read(memory, 0, 512), Ok(true));
    assert_eq!(gpu.check_device_read(memory, 256, 512), Ok(false));
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::UnflushedHostWrite {
            memory,
            offset: 512,
            size: 512
        }]
    );
    gpu.flush_ranges(&[MappedRange {
        memory,
        offset: 512,
        size: 256,
    }])
    .expect("flush");
    assert_eq!(gpu.check_device_read(memory, 0, 1024), Ok(true));
    gpu.free_memory(memory);
    gpu.assert_no_misuse();
}

#[test]
fn device_writes_read_without_invalidate_are_caught() {
    let gpu = DummyDevice::mobile();
    let (src_memory, src) = backed_buffer(&gpu, 0, 512, false);
    let (readback_memory, readback) = backed_buffer(&gpu, 1, 512, true);
    gpu.device_write(src_memory, 0, &[9; 512])
        .expect("gpu write");
    copy(&gpu, src, readback, 0, 0, 512, 1);
    gpu.complete_all();
    let mut out = [0u8; 8];
    gpu.host_read(readback_memory, 100, &mut out).expect("read");
    assert_eq!(out, [0xCD; 8], "the host sees the stale fill, not the data");
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::HostReadWithoutInvalidate {
            memory: readback_memory,
            offset: 100,
            size: 8
        }]
    );
    // Raw-pointer readers ask explicitly.
    assert_eq!(gpu.check_host_read(readback_memory, 0, 512), Ok(false));
    assert_eq!(kinds(&gpu), [MisuseKind::HostReadWithoutInvalidate]);

    gpu.invalidate_ranges(&[MappedRange {
        memory: readback_memory,
        offset: 0,
        size: 256,
    }])
    .expect("invalidate");
    gpu.host_read(readback_memory, 100, &mut out).expect("read");
    assert_eq!(out, [9; 8]);
    assert_eq!(gpu.check_host_read(readback_memory, 0, 256), Ok(true));
    assert_eq!(gpu.check_host_read(readback_memory, 256, 256), Ok(false));
    assert_eq!(kinds(&gpu), [MisuseKind::HostReadWithoutInvalidate]);
    release_all(&gpu);
}

#[test]
fn coherent_memory_needs_no_flush_or_invalidate() {
    let gpu = DummyDevice::discrete();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 256, true);
    let (readback_memory, readback) = backed_buffer(&gpu, 2, 256, true);
    gpu.host_write(staging_memory, 0, b"coherent")
        .expect("write");
    copy(&gpu, staging, readback, 0, 0, 8, 1);
    gpu.complete_all();
    let mut out = [0u8; 8];
    gpu.host_read(readback_memory, 0, &mut out).expect("read");
    assert_eq!(&out, b"coherent");
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn flush_ranges_are_checked() {
    let gpu = DummyDevice::mobile();
    let memory = alloc(&gpu, 1, 1000);
    let range = |offset, size| MappedRange {
        memory,
        offset,
        size,
    };
    gpu.flush_ranges(&[range(0, 256)]).expect("flush");
    assert_eq!(kinds(&gpu), [MisuseKind::NotMapped]);
    gpu.map_memory(memory).expect("map");
    // Correct: atom-aligned, or reaching the end of the object.
    gpu.flush_ranges(&[range(0, 256), range(512, 488)])
        .expect("flush");
    gpu.invalidate_ranges(&[range(256, 744)])
        .expect("invalidate");
    gpu.assert_no_misuse();
    gpu.flush_ranges(&[range(100, 256)]).expect("flush");
    gpu.invalidate_ranges(&[range(0, 100)]).expect("invalidate");
    gpu.flush_ranges(&[range(768, 512)]).expect("flush");
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::RangeMisaligned {
                memory,
                offset: 100,
                size: 256,
                operation: Operation::Flush
            },
            Misuse::RangeMisaligned {
                memory,
                offset: 0,
                size: 100,
                operation: Operation::Invalidate
            },
            Misuse::RangeOutOfBounds {
                memory,
                offset: 768,
                size: 512,
                operation: Operation::Flush
            },
        ]
    );
    gpu.free_memory(memory);
}

// ---- mapping and lifetimes ------------------------------------------------------------------

#[test]
fn mapping_twice_and_bad_maps_are_caught() {
    let gpu = DummyDevice::discrete();
    let host = alloc(&gpu, 1, 256);
    let vram = alloc(&gpu, 0, 256);
    let ptr = gpu.map_memory(host).expect("map");
    assert_eq!(gpu.map_memory(host), Err(DeviceError::MapFailed));
    assert_eq!(gpu.map_memory(vram), Err(DeviceError::MapFailed));
    gpu.unmap_memory(host);
    gpu.unmap_memory(host);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::MappedTwice { memory: host },
            Misuse::MapNotHostVisible { memory: vram },
            Misuse::NotMapped {
                memory: host,
                operation: Operation::Unmap
            },
        ]
    );
    assert_eq!(
        gpu.map_memory(host),
        Ok(ptr),
        "map, unmap, map again is fine"
    );
    gpu.free_memory(host);
    gpu.free_memory(vram);
    gpu.assert_no_misuse();
}

#[test]
fn freeing_twice_and_use_after_free_are_caught() {
    let gpu = DummyDevice::discrete();
    let memory = alloc(&gpu, 1, 4096);
    gpu.free_memory(memory);
    gpu.assert_no_misuse();
    gpu.free_memory(memory);
    assert_eq!(gpu.take_misuses(), [Misuse::MemoryFreedTwice { memory }]);

    let (buffer, _) = gpu.create_buffer(64, XFER).expect("buffer");
    assert_eq!(gpu.bind_buffer_memory(buffer, memory, 0), Err(REFUSED));
    assert_eq!(gpu.map_memory(memory), Err(DeviceError::MapFailed));
    gpu.flush_ranges(&[MappedRange {
        memory,
        offset: 0,
        size: 64,
    }])
    .expect("flush call");
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::MemoryUseAfterFree {
                memory,
                operation: Operation::Bind
            },
            Misuse::MemoryUseAfterFree {
                memory,
                operation: Operation::Map
            },
            Misuse::MemoryUseAfterFree {
                memory,
                operation: Operation::Flush
            },
        ]
    );
    gpu.destroy_buffer(buffer);
    gpu.assert_no_misuse();
}

#[test]
fn copying_through_freed_memory_or_destroyed_buffers_is_caught() {
    let gpu = DummyDevice::discrete();
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let target_memory = alloc(&gpu, 0, 256);
    let target = buffer_at(&gpu, target_memory, 0, 256);
    // Freed with the buffer still bound: caught at free, and again at use.
    gpu.free_memory(target_memory);
    copy(&gpu, staging, target, 0, 0, 16, 1);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::FreedWithBoundBuffer {
                memory: target_memory,
                buffer: target
            },
            Misuse::MemoryUseAfterFree {
                memory: target_memory,
                operation: Operation::Submit
            },
        ]
    );
    gpu.destroy_buffer(target);
    gpu.destroy_buffer(target);
    copy(&gpu, staging, target, 0, 0, 16, 2);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::BufferDestroyedTwice { buffer: target },
            Misuse::BufferUseAfterDestroy {
                buffer: target,
                operation: Operation::Submit
            },
        ]
    );
    gpu.complete_all();
    assert_eq!(gpu.counters().regions, 0, "dropped commands never execute");
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn foreign_handles_are_caught() {
    let gpu = DummyDevice::discrete();
    let other = DummyDevice::discrete();
    let memory = alloc(&other, 1, 256);
    let (buffer, _) = other.create_buffer(64, XFER).expect("buffer");
    gpu.free_memory(memory);
    gpu.destroy_buffer(buffer);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::ForeignMemory {
                memory,
                operation: Operation::Free
            },
            Misuse::ForeignBuffer {
                buffer,
                operation: Operation::Destroy
            },
        ]
    );
    assert!(
        other.leak_report().memory.len() == 1,
        "the other device kept its object"
    );
    release_all(&other);
}

// ---- pending GPU work -----------------------------------------------------------------------

#[test]
fn freeing_or_destroying_what_a_pending_copy_uses_is_caught() {
    let gpu = DummyDevice::discrete();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 256, true);
    let (target_memory, target) = backed_buffer(&gpu, 0, 256, false);
    copy(&gpu, staging, target, 0, 0, 64, 7);
    gpu.destroy_buffer(staging);
    gpu.free_memory(staging_memory);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::DestroyedWhilePending {
                buffer: staging,
                signal_value: 7
            },
            Misuse::FreedWhilePending {
                memory: staging_memory,
                signal_value: 7
            },
        ]
    );
    // After completion the same releases are correct.
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 256, true);
    copy(&gpu, staging, target, 0, 0, 64, 8);
    gpu.advance_to(8);
    gpu.destroy_buffer(staging);
    gpu.free_memory(staging_memory);
    gpu.destroy_buffer(target);
    gpu.free_memory(target_memory);
    gpu.assert_no_misuse();
}

#[test]
fn host_writes_into_a_range_a_pending_copy_reads_are_caught() {
    let gpu = DummyDevice::discrete();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 1024, true);
    let (_, target) = backed_buffer(&gpu, 0, 1024, false);
    gpu.host_write(staging_memory, 0, &[1; 512]).expect("write");
    copy(&gpu, staging, target, 0, 0, 256, 1);
    // Writing elsewhere in the ring is fine; writing the pending range is not.
    gpu.host_write(staging_memory, 256, &[2; 256])
        .expect("write");
    gpu.advance_to(1);
    gpu.assert_no_misuse();
    copy(&gpu, staging, target, 256, 256, 256, 2);
    gpu.host_write(staging_memory, 300, &[3])
        .expect("reuse too early");
    gpu.advance_to(2);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::HostWriteWhilePending {
            memory: staging_memory,
            offset: 256,
            size: 256,
            signal_value: 2
        }]
    );
    // Once completed, the range may be reused.
    gpu.host_write(staging_memory, 256, &[4; 256])
        .expect("write");
    gpu.assert_no_misuse();
    release_all(&gpu);
}

#[test]
fn unflushed_host_writes_into_a_pending_non_coherent_range_are_caught() {
    let gpu = DummyDevice::mobile();
    let (staging_memory, staging) = backed_buffer(&gpu, 1, 512, true);
    let (_, target) = backed_buffer(&gpu, 0, 512, false);
    copy(&gpu, staging, target, 0, 0, 256, 1);
    gpu.host_write(staging_memory, 10, &[5]).expect("write");
    gpu.advance_to(1);
    assert_eq!(kinds(&gpu), [MisuseKind::HostWriteWhilePending]);
    release_all(&gpu);
}

#[test]
fn device_writes_to_a_pending_source_are_not_host_writes() {
    let gpu = DummyDevice::discrete();
    let (_, a) = backed_buffer(&gpu, 1, 256, true);
    let (_, b) = backed_buffer(&gpu, 1, 256, true);
    let (_, c) = backed_buffer(&gpu, 0, 256, false);
    copy(&gpu, a, b, 0, 0, 64, 1); // the GPU writes b ...
    copy(&gpu, b, c, 0, 0, 64, 2); // ... which a later copy reads
    gpu.complete_all();
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn host_writes_into_a_pending_copy_destination_are_caught() {
    let gpu = DummyDevice::resizable_bar();
    let (_, staging) = backed_buffer(&gpu, 2, 256, true);
    let (bar_memory, bar) = backed_buffer(&gpu, 4, 256, true);
    copy(&gpu, staging, bar, 0, 0, 64, 1);
    gpu.host_write(bar_memory, 128, &[1; 64])
        .expect("direct write elsewhere");
    gpu.advance_to(1);
    gpu.assert_no_misuse();
    copy(&gpu, staging, bar, 0, 0, 64, 2);
    gpu.host_write(bar_memory, 32, &[1; 8])
        .expect("direct write racing the copy");
    gpu.advance_to(2);
    assert_eq!(kinds(&gpu), [MisuseKind::HostWriteToPendingDestination]);
    release_all(&gpu);
}

#[test]
fn host_writes_through_a_stale_mapping_are_caught() {
    let gpu = DummyDevice::discrete();
    let memory = alloc(&gpu, 1, 4096);
    let ptr = gpu.map_memory(memory).expect("map");
    gpu.free_memory(memory);
    gpu.check_freed_mappings();
    gpu.assert_no_misuse();
    // SAFETY: the object is freed, but its host bytes sit in the device's quarantine (4 KiB is
    // under the 64 MiB default), so the allocation behind `ptr` is still live and only this
    // thread touches it. This is the bug being simulated, made sound by the quarantine.
    unsafe { ptr.as_ptr().add(17).write(1) };
    gpu.check_freed_mappings();
    assert_eq!(gpu.take_misuses(), [Misuse::HostWriteAfterFree { memory }]);
    gpu.check_freed_mappings();
    gpu.assert_no_misuse();
}

// ---- binding ----------------------------------------------------------------------------------

#[test]
fn linear_and_optimal_resources_sharing_a_granularity_page_are_caught() {
    let gpu = DummyDevice::discrete(); // granularity 1024, optimal alignment 256
    let memory = alloc(&gpu, 0, 1 << 20);
    let (image, req) = gpu.create_optimal_resource(1000).expect("image");
    assert_eq!(req.size, 1024, "1000 rounded to the 256 alignment");
    gpu.bind_buffer_memory(image, memory, 0).expect("bind");
    // Linear right after the image's page: fine.
    buffer_at(&gpu, memory, 1024, 100);
    gpu.assert_no_misuse();
    // An image at 2048 and a linear buffer in the same page after it: conflict.
    let (image2, _) = gpu.create_optimal_resource(256).expect("image");
    gpu.bind_buffer_memory(image2, memory, 2048).expect("bind");
    let linear = buffer_at(&gpu, memory, 2048 + 512, 64);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::GranularityConflict {
            memory,
            linear,
            optimal: image2,
            page_offset: 2048
        }]
    );
    // Two optimal resources, or two linear ones, may share a page.
    let (image3, _) = gpu.create_optimal_resource(256).expect("image");
    let (image4, _) = gpu.create_optimal_resource(256).expect("image");
    gpu.bind_buffer_memory(image3, memory, 4096).expect("bind");
    gpu.bind_buffer_memory(image4, memory, 4096 + 256)
        .expect("bind");
    buffer_at(&gpu, memory, 8192, 64);
    buffer_at(&gpu, memory, 8192 + 64, 64);
    gpu.assert_no_misuse();
    // An optimal resource cannot be copied.
    copy(&gpu, linear, image3, 0, 0, 16, 1);
    assert_eq!(kinds(&gpu), [MisuseKind::CopyOptimalResource]);
    release_all(&gpu);
}

#[test]
fn aliasing_and_bad_binds_are_caught() {
    let gpu =
        DummyDevice::new(DeviceConfig::discrete().with_buffer_alignment(256)).expect("device");
    let vram = alloc(&gpu, 0, 4096);
    let first = buffer_at(&gpu, vram, 0, 512);
    let second = buffer_at(&gpu, vram, 256, 256);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::AliasedBinding {
            memory: vram,
            first,
            second
        }]
    );
    let (buffer, _) = gpu.create_buffer(512, XFER).expect("buffer");
    assert_eq!(gpu.bind_buffer_memory(buffer, vram, 100), Err(REFUSED));
    assert_eq!(gpu.bind_buffer_memory(buffer, vram, 3840), Err(REFUSED));
    gpu.bind_buffer_memory(buffer, vram, 1024).expect("bind");
    assert_eq!(gpu.bind_buffer_memory(buffer, vram, 2048), Err(REFUSED));
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::BindMisaligned {
                buffer,
                offset: 100,
                alignment: 256
            },
            Misuse::BindOutOfRange {
                buffer,
                memory: vram,
                offset: 3840
            },
            Misuse::BoundTwice { buffer },
        ]
    );
    let (address_buffer, _) = gpu
        .create_buffer(256, XFER | BufferUsage::DEVICE_ADDRESS)
        .expect("buffer");
    gpu.bind_buffer_memory(address_buffer, vram, 2048)
        .expect("bind");
    assert_eq!(kinds(&gpu), [MisuseKind::BindWithoutDeviceAddress]);
    release_all(&gpu);
}

#[test]
fn memory_type_bits_are_enforced() {
    let gpu = DummyDevice::mobile();
    let lazy = alloc(&gpu, 2, 4096);
    let (buffer, req) = gpu.create_buffer(64, XFER).expect("buffer");
    assert_eq!(req.memory_type_bits & 0b100, 0);
    assert_eq!(gpu.bind_buffer_memory(buffer, lazy, 0), Err(REFUSED));
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::BindTypeNotAllowed {
            buffer,
            memory_type: 2
        }]
    );
    release_all(&gpu);
}

#[test]
fn dedicated_allocations_are_checked() {
    let gpu = DummyDevice::new(
        DeviceConfig::discrete()
            .with_dedicated_preferred_from(Some(1 << 20))
            .with_dedicated_required_from(Some(4 << 20)),
    )
    .expect("device");
    let (small, small_req) = gpu.create_buffer(1024, XFER).expect("buffer");
    let (big, big_req) = gpu.create_buffer(2 << 20, XFER).expect("buffer");
    let (huge, huge_req) = gpu.create_buffer(4 << 20, XFER).expect("buffer");
    assert_eq!(small_req.dedicated, DedicatedHint::None);
    assert_eq!(big_req.dedicated, DedicatedHint::Preferred);
    assert_eq!(huge_req.dedicated, DedicatedHint::Required);
    let dedicated = |buffer, size| MemoryAllocateInfo {
        dedicated_to: Some(DedicatedTo::Buffer(buffer)),
        ..info(0, size)
    };
    // Correct: the huge buffer in its own object at offset 0.
    let own = gpu
        .allocate_memory(&dedicated(huge, huge_req.size))
        .expect("dedicated");
    gpu.bind_buffer_memory(huge, own, 0).expect("bind");
    gpu.assert_no_misuse();
    // Someone else's dedicated object, and a required-dedicated buffer in shared memory.
    let other = gpu
        .allocate_memory(&dedicated(big, big_req.size))
        .expect("dedicated");
    assert_eq!(gpu.bind_buffer_memory(small, other, 0), Err(REFUSED));
    let shared = alloc(&gpu, 0, 8 << 20);
    let (huge2, _) = gpu.create_buffer(4 << 20, XFER).expect("buffer");
    assert_eq!(gpu.bind_buffer_memory(huge2, shared, 0), Err(REFUSED));
    // A dedicated allocation for a bound buffer, and one of the wrong size.
    assert_eq!(
        gpu.allocate_memory(&dedicated(huge, huge_req.size)),
        Err(REFUSED)
    );
    assert_eq!(
        gpu.allocate_memory(&dedicated(huge2, 8 << 20)),
        Err(REFUSED)
    );
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::DedicatedMismatch {
                buffer: small,
                memory: other
            },
            Misuse::DedicatedMismatch {
                buffer: huge2,
                memory: shared
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::BadDedicatedBuffer
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::DedicatedSizeMismatch
            },
        ]
    );
    let info = gpu.memory_info(own).expect("live");
    assert_eq!(info.dedicated_to, Some(huge));
    assert!(gpu.leak_report().memory.iter().any(|m| m.dedicated));
    release_all(&gpu);
}

#[test]
fn invalid_allocations_are_caught() {
    let gpu = DummyDevice::mobile();
    // Refused with memkit-vulkan's typed errors, and recorded: the trait's contract is broken.
    assert_eq!(
        gpu.allocate_memory(&info(9, 64)),
        Err(DeviceError::InvalidArgument(
            InvalidArgument::UnknownMemoryType
        ))
    );
    assert_eq!(
        gpu.allocate_memory(&info(0, 0)),
        Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize))
    );
    assert_eq!(
        gpu.allocate_memory(&info(0, (256 << 20) + 1)),
        Err(DeviceError::OutOfDeviceMemory)
    );
    let too_important = MemoryAllocateInfo {
        priority: 2.0,
        ..info(0, 64)
    };
    assert_eq!(gpu.allocate_memory(&too_important), Err(REFUSED));
    // A zero-sized buffer is a typed refusal, not a misuse: `create_buffer` is a safe call.
    assert_eq!(
        gpu.create_buffer(0, XFER).err(),
        Some(DeviceError::InvalidArgument(InvalidArgument::ZeroSize))
    );
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::BadMemoryType
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::ZeroSize
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::AboveMaxAllocationSize
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::BadPriority
            },
        ]
    );
    assert_eq!(gpu.counters().failed_allocations, 4);
}

#[test]
fn a_buffer_with_no_usage_is_refused_with_a_typed_error() {
    use memkit_core::device::BufferDevice;

    let gpu = DummyDevice::discrete();
    let empty = BufferUsage::empty();
    assert_eq!(
        gpu.create_buffer(64, empty).err(),
        Some(DeviceError::InvalidArgument(
            InvalidArgument::EmptyBufferUsage
        ))
    );
    assert_eq!(
        BufferDevice::create_buffer(&gpu, 64, empty).err(),
        Some(DeviceError::InvalidArgument(
            InvalidArgument::EmptyBufferUsage
        ))
    );
    // Refused before anything is made: nothing to leak, no call counted, no misuse (a backend
    // refuses it as a typed error, as it does an invalid image).
    let counters = gpu.counters();
    assert_eq!(
        (counters.buffer_creation_calls, counters.live_buffers),
        (0, 0)
    );
    assert_eq!(gpu.take_misuses(), []);
    // Optimal resources carry no buffer usage and are still made.
    let (optimal, _) = gpu.create_optimal_resource(256).expect("optimal resource");
    assert!(gpu.buffer_info(optimal).expect("live").optimal);
    let (buffer, _) = gpu.create_buffer(64, XFER).expect("buffer");
    assert_eq!(gpu.counters().live_buffers, 2);
    gpu.destroy_buffer(buffer);
    gpu.destroy_buffer(optimal);
    gpu.assert_no_misuse();
}

// ---- copies -----------------------------------------------------------------------------------

#[test]
fn bad_copy_regions_are_caught_and_dropped() {
    let gpu = DummyDevice::discrete();
    let (memory, staging) = backed_buffer(&gpu, 1, 1024, true);
    let (_, target) = backed_buffer(&gpu, 0, 1024, false);
    gpu.host_write(memory, 0, &[7; 1024]).expect("write");
    let region = |src_offset, dst_offset, size| BufferCopy {
        src_offset,
        dst_offset,
        size,
    };
    let regions = [
        region(0, 0, 0),
        region(1000, 0, 100),
        region(0, 1000, 100),
        region(0, 0, 16),
        region(100, 8, 16), // overlaps the previous destination
    ];
    gpu.submit_copies(
        &[CopyCommand {
            src: staging,
            dst: target,
            regions: &regions,
        }],
        1,
    )
    .expect("submit");
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::CopyZeroSize {
                src: staging,
                dst: target
            },
            Misuse::CopyOutOfBounds {
                buffer: staging,
                offset: 1000,
                size: 100
            },
            Misuse::CopyOutOfBounds {
                buffer: target,
                offset: 1000,
                size: 100
            },
            Misuse::CopyOverlappingDestinations { dst: target },
        ]
    );
    gpu.complete_all();
    assert_eq!(gpu.counters().regions, 2, "only the in-bounds regions ran");
    // Source and destination overlapping in one object.
    let (shared_memory, whole) = backed_buffer(&gpu, 0, 1024, false);
    let upper = buffer_at(&gpu, shared_memory, 512, 512);
    let _ = gpu.take_misuses(); // the aliasing of `upper` with `whole`
    copy(&gpu, whole, upper, 500, 0, 32, 2);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::CopySourceOverlapsDestination {
            memory: shared_memory
        }]
    );
    // Each region's source apart from its own destination, but the second reads what the first
    // writes: a race on a GPU, which runs regions in no particular order.
    let chained = [
        BufferCopy {
            src_offset: 0,
            dst_offset: 100,
            size: 4,
        },
        BufferCopy {
            src_offset: 100,
            dst_offset: 200,
            size: 4,
        },
    ];
    let submit = |regions: &[BufferCopy], value| {
        let command = CopyCommand {
            src: whole,
            dst: whole,
            regions,
        };
        gpu.submit_copies(&[command], value).expect("submitted");
    };
    submit(&chained, 3);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::CopySourceOverlapsDestination {
            memory: shared_memory
        }]
    );
    // Sources and destinations apart across all regions (interleaved in the buffer): fine.
    let apart = [
        BufferCopy {
            src_offset: 0,
            dst_offset: 100,
            size: 4,
        },
        BufferCopy {
            src_offset: 200,
            dst_offset: 50,
            size: 50,
        },
        BufferCopy {
            src_offset: 104,
            dst_offset: 300,
            size: 96,
        },
    ];
    submit(&apart, 4);
    assert_eq!(gpu.take_misuses(), []);
    release_all(&gpu);
}

#[test]
fn copies_need_bound_buffers_with_transfer_usage() {
    let gpu = DummyDevice::discrete();
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let (unbound, _) = gpu.create_buffer(256, XFER).expect("buffer");
    let vram = alloc(&gpu, 0, 256);
    let (vertex, _) = gpu.create_buffer(256, BufferUsage::VERTEX).expect("buffer");
    gpu.bind_buffer_memory(vertex, vram, 0).expect("bind");
    copy(&gpu, staging, unbound, 0, 0, 16, 1);
    copy(&gpu, staging, vertex, 0, 0, 16, 2);
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::CopyUnboundBuffer { buffer: unbound },
            Misuse::CopyMissingUsage {
                buffer: vertex,
                needed: BufferUsage::TRANSFER_DST
            },
        ]
    );
    release_all(&gpu);
}

#[test]
fn signal_values_must_increase() {
    let gpu = DummyDevice::discrete();
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    copy(&gpu, staging, target, 0, 0, 16, 5);
    let regions = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: 16,
    }];
    let command = CopyCommand {
        src: staging,
        dst: target,
        regions: &regions,
    };
    let not_increasing = Err(DeviceError::InvalidArgument(
        InvalidArgument::TimelineNotIncreasing,
    ));
    assert_eq!(gpu.submit_copies(&[command], 5), not_increasing);
    assert_eq!(gpu.submit_copies(&[command], 3), not_increasing);
    assert_eq!(
        kinds(&gpu),
        [
            MisuseKind::SignalNotIncreasing,
            MisuseKind::SignalNotIncreasing
        ]
    );
    assert_eq!(gpu.pending_values(), [5]);
    release_all(&gpu);
}

#[test]
fn application_signals_must_increase() {
    let gpu = DummyDevice::discrete();
    let timeline = gpu.create_external_timeline();
    let (_, staging) = backed_buffer(&gpu, 1, 256, true);
    let (_, target) = backed_buffer(&gpu, 0, 256, false);
    gpu.wait_for_external(timeline, 3).unwrap();
    copy(&gpu, staging, target, 0, 0, 16, 1);
    gpu.signal_external(timeline, 2).unwrap();
    for again in [2, 1] {
        assert_eq!(
            gpu.signal_external(timeline, again),
            Err(InspectError::SignalNotIncreasing)
        );
    }
    assert_eq!(
        gpu.take_misuses(),
        [2, 1].map(|value| Misuse::ApplicationSignalNotIncreasing {
            timeline,
            value,
            reached: 2,
        })
    );
    // The refused signals changed nothing: the copy still waits for 3.
    assert_eq!(gpu.external_value(timeline), Ok(2));
    assert!(gpu.complete_next().is_none(), "the copy ran before 3");
    gpu.signal_external(timeline, 3).unwrap();
    assert_eq!(gpu.complete_next(), Some(1));
    assert!(kinds(&gpu).is_empty());
    release_all(&gpu);
}

#[test]
fn panic_on_misuse_panics_with_the_misuse() {
    let gpu =
        DummyDevice::new(DeviceConfig::discrete().with_panic_on_misuse(true)).expect("device");
    let memory = alloc(&gpu, 1, 256);
    gpu.free_memory(memory);
    let result = std::panic::catch_unwind(|| gpu.free_memory(memory));
    let message = result
        .expect_err("must panic")
        .downcast::<String>()
        .expect("message");
    assert!(message.contains("freed twice"), "{message}");
    // The device stays usable after the panic.
    gpu.set_panic_on_misuse(false);
    assert_eq!(kinds(&gpu), [MisuseKind::MemoryFreedTwice]);
    let again = alloc(&gpu, 1, 256);
    gpu.free_memory(again);
}
