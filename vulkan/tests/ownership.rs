//! Queue-family ownership transfer of exclusive buffers, and copies recorded into the
//! application's own command buffers.
//!
//! Where memkit copies on a transfer-only family (NVIDIA), uploads are released to the main
//! family and acquired there; validation checks that the halves match. lavapipe has one queue
//! family, so there the transfer goes to `VK_QUEUE_FAMILY_EXTERNAL` and back: each barrier is
//! checked, but the layer does not match external halves.

mod common;

use common::{AppCommands, MappedBuffer, finish, headless_with, pattern};
use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, CopyQueue, DeviceError, InvalidArgument,
};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{
    CopyRecorder, HeadlessConfig, HeadlessDevice, OwnershipTransfer, TimelineMode, VulkanDevice,
    VulkanDeviceConfig, acquire_barriers_for, record_acquire, record_release, release_barrier,
};

#[test]
fn released_ranges_are_acquired_and_read_back_intact() {
    let modes = [TimelineMode::Auto, TimelineMode::FencePool];
    for (timeline, to_main) in modes.into_iter().flat_map(|m| [(m, false), (m, true)]) {
        let Some(h) = headless_with(HeadlessConfig {
            timeline,
            release_to_family: Some(vk::QUEUE_FAMILY_EXTERNAL),
            release_to_main_family: to_main,
            ..HeadlessConfig::default()
        }) else {
            return;
        };
        round_trip(&h, to_main, false);
        finish(h);
    }
}

#[test]
fn a_release_family_the_device_does_not_have_is_refused() {
    let Some(h) = headless_with(HeadlessConfig::default()) else {
        return;
    };
    // SAFETY: the physical device belongs to the instance.
    let families = unsafe {
        h.instance()
            .get_physical_device_queue_family_properties(h.device().physical_device())
    }
    .len() as u32;
    // `VulkanDevice::new` over the application's own handles refuses the same families, for a
    // release and for concurrent sharing, before anything reaches the driver.
    let config = VulkanDeviceConfig {
        transfer_queue: h.device().transfer_queue(),
        enabled: h.device().enabled_features(),
        ..VulkanDeviceConfig::default()
    };
    let direct = |config: VulkanDeviceConfig| {
        // SAFETY: the headless device's instance, physical device and device outlive the call;
        // the queue is memkit's transfer queue, and the call submits nothing; `enabled` is what
        // the device was created with.
        unsafe {
            VulkanDevice::new(
                h.instance(),
                h.device().physical_device(),
                h.ash_device(),
                config,
            )
        }
        .err()
    };
    let refused = Some(DeviceError::InvalidArgument(
        InvalidArgument::UnknownQueueFamily,
    ));
    for family in [families, 99, vk::QUEUE_FAMILY_IGNORED] {
        let release = direct(VulkanDeviceConfig {
            release_to_family: Some(family),
            ..config
        });
        assert_eq!(release, refused, "release to family {family} of {families}");
        let concurrent = direct(VulkanDeviceConfig {
            concurrent_with_family: Some(family),
            ..config
        });
        assert_eq!(
            concurrent, refused,
            "concurrent with family {family} of {families}"
        );
    }
    // A family the device has, and the external family, are accepted.
    for family in [0, vk::QUEUE_FAMILY_EXTERNAL] {
        let accepted = direct(VulkanDeviceConfig {
            release_to_family: Some(family),
            ..config
        });
        assert_eq!(accepted, None, "release to family {family}");
    }
    finish(h);
    for family in [families, 99, vk::QUEUE_FAMILY_IGNORED] {
        let created = HeadlessDevice::new(HeadlessConfig {
            validation: true,
            release_to_family: Some(family),
            ..HeadlessConfig::default()
        });
        assert_eq!(
            created.err(),
            Some(memkit_vulkan::SetupError::UnknownReleaseFamily(family)),
            "release to family {family} of {families}"
        );
    }
}

#[test]
fn concurrent_buffers_need_no_transfer() {
    let Some(h) = headless_with(HeadlessConfig {
        concurrent_with_main_family: true,
        ..HeadlessConfig::default()
    }) else {
        return;
    };
    if h.device().transfer_queue().family == h.main_queue().family {
        eprintln!("one queue family here (lavapipe): buffers stay exclusive");
        assert!(h.device().concurrent_families().is_empty());
        finish(h);
        return;
    }
    assert!(h.device().ownership_transfer().is_none());
    round_trip(&h, false, false);
    finish(h);
    // Concurrent buffers have no owner: asking for releases too is refused.
    let both = HeadlessDevice::new(HeadlessConfig {
        validation: true,
        concurrent_with_main_family: true,
        release_to_main_family: true,
        ..HeadlessConfig::default()
    });
    assert_eq!(
        both.err(),
        Some(memkit_vulkan::SetupError::Device(
            DeviceError::InvalidArgument(InvalidArgument::ConflictingOptions)
        ))
    );
}

#[test]
fn a_mismatched_acquire_is_reported_between_real_families() {
    let Some(h) = headless_with(HeadlessConfig {
        release_to_main_family: true,
        ..HeadlessConfig::default()
    }) else {
        return;
    };
    if h.device().ownership_transfer().is_none() {
        eprintln!("one queue family here (lavapipe): nothing to mismatch");
        finish(h);
        return;
    }
    round_trip(&h, true, true);
    assert!(
        h.validation_log().count() > 0,
        "validation missed an acquire that matches no release"
    );
    drop(h);
}

/// Uploads through memkit with a release, acquires on the main family (half the range when
/// `mismatch`), reads back and, unless mismatched, compares.
fn round_trip(h: &HeadlessDevice, to_main: bool, mismatch: bool) {
    let device = h.device();
    let transfer = device.ownership_transfer();
    if let Some(transfer) = transfer {
        assert_eq!(transfer.src_family, device.transfer_queue().family);
        if to_main && device.transfer_queue().family != h.main_queue().family {
            eprintln!(
                "ownership moves from family {} to family {}",
                transfer.src_family, transfer.dst_family
            );
            assert_eq!(transfer.dst_family, h.main_queue().family);
        } else {
            assert_eq!(transfer.dst_family, vk::QUEUE_FAMILY_EXTERNAL);
        }
    } else {
        // Concurrent buffers: nothing to release or acquire.
        assert!(device.concurrent_families().len() == 2);
    }
    {
        let size = 64 << 10;
        let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
        let target = MappedBuffer::new(
            device,
            size,
            BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
        );
        let readback = MappedBuffer::new(device, size, BufferUsage::TRANSFER_DST);
        let data = pattern(size as usize, 4);
        staging.write(device, 0, &data);
        // Two ranges, uploaded in one command: one release covering their span.
        let regions = [
            BufferCopy {
                src_offset: 0,
                dst_offset: 0,
                size: size / 2,
            },
            BufferCopy {
                src_offset: size / 2,
                dst_offset: size / 2,
                size: size / 2,
            },
        ];
        let commands = [CopyCommand {
            src: staging.buffer,
            dst: target.buffer,
            regions: &regions,
        }];
        let value = device.last_submitted_value() + 1;
        // SAFETY: buffers alive, bound, exclusive, with the transfer usages.
        unsafe { device.submit_copies(&commands, value) }.unwrap();

        // The application acquires what memkit released, then reads it back.
        let app = AppCommands::new(h);
        app.begin(h);
        let mut acquires = Vec::new();
        // From another family, the acquire names the release's pair; from outside the device, it
        // comes back from the external family.
        match transfer {
            Some(t) if t.dst_family == vk::QUEUE_FAMILY_EXTERNAL => {
                let back = OwnershipTransfer {
                    src_family: vk::QUEUE_FAMILY_EXTERNAL,
                    dst_family: h.main_queue().family,
                };
                acquire_barriers_for(
                    back,
                    &commands,
                    vk::AccessFlags::TRANSFER_READ,
                    &mut acquires,
                );
            }
            _ => device.acquire_barriers(&commands, vk::AccessFlags::TRANSFER_READ, &mut acquires),
        }
        if transfer.is_some() {
            assert_eq!(acquires.len(), 1);
            assert_eq!((acquires[0].offset, acquires[0].size), (0, size));
        } else {
            assert!(acquires.is_empty());
        }
        if mismatch {
            acquires[0].size = size / 2;
        }
        let whole = [vk::BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size,
        }];
        let host_read = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)];
        // SAFETY: recording on the main family; the acquire matches memkit's release; the
        // submission waits for the release's value.
        unsafe {
            record_acquire(
                h.ash_device(),
                app.cmd,
                &acquires,
                vk::PipelineStageFlags::TRANSFER,
            );
            h.ash_device()
                .cmd_copy_buffer(app.cmd, target.buffer, readback.buffer, &whole);
            h.ash_device().cmd_pipeline_barrier(
                app.cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &host_read,
                &[],
                &[],
            );
        }
        app.submit_and_wait(h, Some(value));
        if !mismatch {
            assert!(readback.read(device) == data, "readback differs");
        }

        app.destroy(h);
        staging.destroy(device);
        target.destroy(device);
        readback.destroy(device);
    }
}

#[test]
fn release_and_acquire_record_cleanly_within_one_family() {
    let Some(h) = headless_with(HeadlessConfig::default()) else {
        return;
    };
    let device = h.device();
    assert!(device.ownership_transfer().is_none());
    let family = h.main_queue().family;
    let same = OwnershipTransfer {
        src_family: family,
        dst_family: family,
    };
    let buffer = MappedBuffer::new(device, 4096, BufferUsage::TRANSFER_DST);
    let app = AppCommands::new(&h);
    app.begin(&h);
    let release = [release_barrier(same, buffer.buffer, 0, 4096)];
    let acquire = [memkit_vulkan::acquire_barrier(
        same,
        buffer.buffer,
        0,
        4096,
        vk::AccessFlags::TRANSFER_WRITE,
    )];
    // SAFETY: recording on the family both barriers name; the buffer is alive and exclusive.
    unsafe {
        record_release(h.ash_device(), app.cmd, &release);
        record_acquire(
            h.ash_device(),
            app.cmd,
            &acquire,
            vk::PipelineStageFlags::TRANSFER,
        );
        record_release(h.ash_device(), app.cmd, &[]);
    }
    app.submit_and_wait(&h, None);
    app.destroy(&h);
    buffer.destroy(device);
    finish(h);
}

#[test]
fn copies_recorded_into_the_applications_command_buffer() {
    let Some(h) = headless_with(HeadlessConfig::default()) else {
        return;
    };
    let device = h.device();
    let size = 32 << 10;
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let middle = MappedBuffer::new(
        device,
        size,
        BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
    );
    let readback = MappedBuffer::new(device, size, BufferUsage::TRANSFER_DST);
    let app = AppCommands::new(&h);
    let mut recorder = CopyRecorder::new();
    // Twice, with different bytes: the recorder is reused.
    for seed in [5u8, 6] {
        let data = pattern(size as usize, seed);
        staging.write(device, 0, &data);
        // Reverse the 1 KiB blocks on the way in, and copy straight on the way out.
        let blocks = size / 1024;
        let reverse: Vec<BufferCopy> = (0..blocks)
            .map(|i| BufferCopy {
                src_offset: i * 1024,
                dst_offset: (blocks - 1 - i) * 1024,
                size: 1024,
            })
            .collect();
        let whole = [BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size,
        }];
        let commands = [
            CopyCommand {
                src: staging.buffer,
                dst: middle.buffer,
                regions: &reverse,
            },
            CopyCommand {
                src: middle.buffer,
                dst: readback.buffer,
                regions: &whole,
            },
        ];
        app.begin(&h);
        // SAFETY: recording on a transfer-capable family; buffers alive, bound, with usages.
        unsafe { recorder.record(h.ash_device(), app.cmd, &commands, None) };
        app.submit_and_wait(&h, None);
        let got = readback.read(device);
        for i in 0..blocks as usize {
            let j = blocks as usize - 1 - i;
            assert_eq!(
                &got[j * 1024..(j + 1) * 1024],
                &data[i * 1024..(i + 1) * 1024],
                "block {i}"
            );
        }
    }
    // memkit's own queue was never used.
    assert_eq!(device.command_buffer_count(), 0);
    app.destroy(&h);
    staging.destroy(device);
    middle.destroy(device);
    readback.destroy(device);
    finish(h);
}
