//! A lost device, real or simulated: teardown still waits for what the GPU was given, every
//! waiter wakes with `DeviceLost`, and memory, buffer and image calls are refused as on the dummy
//! device. Simulated losses stand in for real ones: both go through the same bookkeeping.

mod common;

use std::time::{Duration, Instant};

use common::{MappedBuffer, SECOND, finish, headless, headless_with, pattern};
use memkit_core::device::{BufferCopy, BufferUsage, CopyCommand, CopyQueue, DeviceError};
use memkit_vulkan::{HeadlessConfig, TimelineMode, VulkanDevice, VulkanDeviceConfig};

const MODES: [TimelineMode; 2] = [TimelineMode::Auto, TimelineMode::FencePool];

#[test]
fn dropping_a_lost_device_waits_for_its_submissions_first() {
    for timeline in MODES {
        let Some(h) = headless() else { return };
        let size: u64 = 16 << 20;
        let src = MappedBuffer::new(h.device(), size, BufferUsage::TRANSFER_SRC);
        let dst = MappedBuffer::new(h.device(), size, BufferUsage::TRANSFER_DST);
        let source = pattern(size as usize, 5);
        src.write(h.device(), 0, &source);
        dst.write(h.device(), 0, &vec![0; size as usize]);
        // A second memkit device over the headless one's device and transfer queue, so that it
        // can be dropped (with work in flight) while the buffers and the device live on.
        let config = VulkanDeviceConfig {
            transfer_queue: h.device().transfer_queue(),
            enabled: h.device().enabled_features(),
            timeline,
            ..VulkanDeviceConfig::default()
        };
        // SAFETY: the headless device's instance, physical device and device outlive `second`;
        // the queue is memkit's transfer queue, which nothing else submits to while `second`
        // lives (the headless device's own `VulkanDevice` submits nothing here); `enabled` is
        // what the device was created with.
        let second = unsafe {
            VulkanDevice::new(
                h.instance(),
                h.device().physical_device(),
                h.ash_device(),
                config,
            )
        }
        .unwrap();
        let whole = [BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size,
        }];
        let copy = [CopyCommand {
            src: src.buffer,
            dst: dst.buffer,
            regions: &whole,
        }];
        for value in 1..=8 {
            // SAFETY: both buffers are alive, bound and carry the transfer usages; the region
            // lies in both; values increase.
            unsafe { second.submit_copies(&copy, value) }.unwrap();
        }
        second.simulate_device_lost();
        // The GPU is still copying: the drop must wait for all eight copies before it destroys
        // the command buffers and the semaphore or fences they signal.
        drop(second);
        assert!(
            dst.read(h.device()) == source,
            "{timeline:?}: the drop returned before the copies finished"
        );
        src.destroy(h.device());
        dst.destroy(h.device());
        finish(h);
    }
}

#[test]
fn a_loss_wakes_a_waiter_for_a_value_not_submitted_yet() {
    for timeline in MODES {
        let Some(h) = headless_with(HeadlessConfig {
            timeline,
            ..HeadlessConfig::default()
        }) else {
            return;
        };
        let device = h.device();
        let start = Instant::now();
        let result = std::thread::scope(|s| {
            let waiter = s.spawn(|| device.wait(1, 10 * SECOND));
            std::thread::sleep(Duration::from_millis(200));
            device.simulate_device_lost();
            waiter.join().unwrap()
        });
        let took = start.elapsed();
        assert_eq!(result, Err(DeviceError::DeviceLost), "{timeline:?}");
        assert!(
            took < Duration::from_secs(5),
            "{timeline:?}: the waiter slept {took:?} past the loss"
        );
        finish(h);
    }
}
