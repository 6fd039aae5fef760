//! Copies through the queue, verified byte for byte through a host-visible readback buffer:
//! staging -> device buffer -> readback buffer.

mod common;

use common::{MappedBuffer, SECOND, each_timeline_mode, pattern};
use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, CopyQueue, DeviceError, InvalidArgument, WaitStatus,
};
use memkit_vulkan::VulkanDevice;
use memkit_vulkan::ash::vk;

struct Buffers {
    staging: MappedBuffer,
    device_local: MappedBuffer,
    readback: MappedBuffer,
}

impl Buffers {
    fn new(device: &VulkanDevice, size: u64) -> Self {
        Self {
            staging: MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC),
            device_local: MappedBuffer::new(
                device,
                size,
                BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST | BufferUsage::VERTEX,
            ),
            readback: MappedBuffer::new(device, size, BufferUsage::TRANSFER_DST),
        }
    }

    /// One copy command from the staging buffer to the device-local one.
    fn staging_to_device<'r>(&self, regions: &'r [BufferCopy]) -> [CopyCommand<'r, vk::Buffer>; 1] {
        [CopyCommand {
            src: self.staging.buffer,
            dst: self.device_local.buffer,
            regions,
        }]
    }

    fn destroy(self, device: &VulkanDevice) {
        self.staging.destroy(device);
        self.device_local.destroy(device);
        self.readback.destroy(device);
    }
}

fn whole(size: u64) -> [BufferCopy; 1] {
    [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size,
    }]
}

/// Submits and waits; returns the value.
fn submit_and_wait(
    device: &VulkanDevice,
    commands: &[CopyCommand<'_, memkit_vulkan::ash::vk::Buffer>],
) -> u64 {
    let value = device.last_submitted_value() + 1;
    // SAFETY: the buffers are alive and bound with the transfer usages; regions lie inside them;
    // the value increases.
    unsafe { device.submit_copies(commands, value) }.unwrap();
    assert_eq!(
        device.wait(value, 10 * SECOND).unwrap(),
        WaitStatus::Completed
    );
    assert!(device.completed_value().unwrap() >= value);
    value
}

#[test]
fn upload_then_readback_in_two_submissions() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let size = 1 << 20;
        let b = Buffers::new(device, size);
        let data = pattern(size as usize, 1);
        b.staging.write(device, 0, &data);
        let regions = whole(size);
        submit_and_wait(device, &b.staging_to_device(&regions));
        submit_and_wait(
            device,
            &[CopyCommand {
                src: b.device_local.buffer,
                dst: b.readback.buffer,
                regions: &regions,
            }],
        );
        assert!(b.readback.read(device) == data, "readback differs");
        b.destroy(device);
    });
}

#[test]
fn upload_then_readback_in_one_submission_without_waiting_between() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let size = 256 << 10;
        let b = Buffers::new(device, size);
        let data = pattern(size as usize, 2);
        b.staging.write(device, 0, &data);
        let regions = whole(size);
        // Two submissions back to back, then one wait: the second reads what the first wrote.
        let first = device.last_submitted_value() + 1;
        // SAFETY: as in `submit_and_wait`.
        unsafe {
            device
                .submit_copies(&b.staging_to_device(&regions), first)
                .unwrap();
        }
        // And two commands in one submission, the second reading the first's destination.
        let second = first + 1;
        // SAFETY: as above.
        unsafe {
            device
                .submit_copies(
                    &[
                        CopyCommand {
                            src: b.staging.buffer,
                            dst: b.device_local.buffer,
                            regions: &regions,
                        },
                        CopyCommand {
                            src: b.device_local.buffer,
                            dst: b.readback.buffer,
                            regions: &regions,
                        },
                    ],
                    second,
                )
                .unwrap();
        }
        assert_eq!(
            device.wait(second, 10 * SECOND).unwrap(),
            WaitStatus::Completed
        );
        assert!(device.completed_value().unwrap() >= second);
        assert!(b.readback.read(device) == data, "readback differs");
        b.destroy(device);
    });
}

#[test]
fn many_regions_in_one_command_land_where_they_should() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let region = 64u64;
        let count = 4096u64;
        let size = region * count;
        let b = Buffers::new(device, size);
        let data = pattern(size as usize, 3);
        b.staging.write(device, 0, &data);
        // Region i goes to slot (i * 1237) mod count: a permutation (1237 is odd, count a power of
        // two), so every destination byte is written exactly once and ranges are disjoint.
        let scatter: Vec<BufferCopy> = (0..count)
            .map(|i| BufferCopy {
                src_offset: i * region,
                dst_offset: (i * 1237 % count) * region,
                size: region,
            })
            .collect();
        submit_and_wait(device, &b.staging_to_device(&scatter));
        submit_and_wait(
            device,
            &[CopyCommand {
                src: b.device_local.buffer,
                dst: b.readback.buffer,
                regions: &whole(size),
            }],
        );
        let got = b.readback.read(device);
        for i in 0..count {
            let src = (i * region) as usize;
            let dst = ((i * 1237 % count) * region) as usize;
            assert_eq!(
                &got[dst..dst + region as usize],
                &data[src..src + region as usize],
                "region {i}"
            );
        }
        b.destroy(device);
    });
}

#[test]
fn timeline_values_complete_in_order_and_waits_time_out() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let b = Buffers::new(device, 4096);
        let regions = whole(4096);
        let cmd = b.staging_to_device(&regions);
        assert_eq!(device.completed_value().unwrap(), 0);
        // A value nobody submitted: a zero-timeout wait reports the timeout.
        assert_eq!(device.wait(1, 0).unwrap(), WaitStatus::TimedOut);
        // Values may skip; each submission signals its own.
        for value in [3, 4, 10] {
            // SAFETY: as in `submit_and_wait`.
            unsafe { device.submit_copies(&cmd, value) }.unwrap();
        }
        assert_eq!(device.wait(10, 10 * SECOND).unwrap(), WaitStatus::Completed);
        assert_eq!(device.completed_value().unwrap(), 10);
        // Values below the last completed are complete too.
        assert_eq!(device.wait(5, 0).unwrap(), WaitStatus::Completed);
        assert_eq!(device.wait(11, 1000).unwrap(), WaitStatus::TimedOut);
        // A value that does not increase is refused before Vulkan sees it.
        // SAFETY: refused before any Vulkan call.
        let stale = unsafe { device.submit_copies(&cmd, 10) };
        assert_eq!(
            stale,
            Err(DeviceError::InvalidArgument(
                InvalidArgument::TimelineNotIncreasing
            ))
        );
        // An empty submission still signals its value.
        // SAFETY: nothing to copy.
        unsafe { device.submit_copies(&[], 11) }.unwrap();
        assert_eq!(device.wait(11, 10 * SECOND).unwrap(), WaitStatus::Completed);
        b.destroy(device);
    });
}

#[test]
fn command_buffers_are_recycled_not_grown() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let b = Buffers::new(device, 4096);
        let regions = whole(4096);
        let cmd = b.staging_to_device(&regions);
        // Waiting on each: one command buffer (and at most one fence) serves them all.
        for _ in 0..200 {
            submit_and_wait(device, &cmd);
        }
        assert_eq!(device.command_buffer_count(), 1);
        assert!(device.fence_count() <= 1, "{} fences", device.fence_count());
        // Four in flight at once, then wait for the oldest: at most five exist, however long it
        // runs.
        for _ in 0..200 {
            let value = device.last_submitted_value() + 1;
            // SAFETY: as in `submit_and_wait`.
            unsafe { device.submit_copies(&cmd, value) }.unwrap();
            if value > 4 {
                device.wait(value - 4, 10 * SECOND).unwrap();
            }
        }
        device
            .wait(device.last_submitted_value(), 10 * SECOND)
            .unwrap();
        assert!(
            device.command_buffer_count() <= 5,
            "{} command buffers",
            device.command_buffer_count()
        );
        assert!(device.fence_count() <= 6, "{} fences", device.fence_count());
        b.destroy(device);
    });
}

#[test]
fn a_lost_device_stops_everything_and_teardown_is_still_clean() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let b = Buffers::new(device, 4096);
        let regions = whole(4096);
        let cmd = b.staging_to_device(&regions);
        submit_and_wait(device, &cmd);
        device.simulate_device_lost();
        assert!(device.is_lost());
        // SAFETY: refused before any Vulkan call.
        let refused = unsafe { device.submit_copies(&cmd, 100) };
        assert_eq!(refused, Err(DeviceError::DeviceLost));
        assert_eq!(device.completed_value(), Err(DeviceError::DeviceLost));
        assert_eq!(device.wait(1, 0), Err(DeviceError::DeviceLost));
        b.destroy(device);
    });
}

#[test]
fn threads_wait_and_poll_while_one_submits() {
    each_timeline_mode(|h, _| {
        let device = h.device();
        let b = Buffers::new(device, 4096);
        let regions = whole(4096);
        let cmd = b.staging_to_device(&regions);
        let last = 300u64;
        std::thread::scope(|scope| {
            for t in 0..3u64 {
                scope.spawn(move || {
                    let mut seen = 0;
                    // Each waiter waits for every third value, polling in between; values it
                    // saw complete never go back.
                    for value in (1 + t..=last).step_by(3) {
                        let polled = device.completed_value().unwrap();
                        assert!(polled >= seen, "completed value went back");
                        seen = polled;
                        assert_eq!(
                            device.wait(value, 10 * SECOND).unwrap(),
                            WaitStatus::Completed,
                            "value {value}"
                        );
                        assert!(device.completed_value().unwrap() >= value);
                    }
                });
            }
            for value in 1..=last {
                // SAFETY: as in `submit_and_wait`; values increase on this one thread.
                unsafe { device.submit_copies(&cmd, value) }.unwrap();
                if value > 8 {
                    device.wait(value - 8, 10 * SECOND).unwrap();
                }
            }
        });
        assert_eq!(device.completed_value().unwrap(), last);
        b.destroy(device);
    });
}
