//! Copy lanes: large submissions split over extra queues, verified byte for byte through a
//! readback buffer, with synchronization validation watching the queues. lavapipe has one queue,
//! so there the lanes reuse it: the split, its semaphores and its barriers are all exercised,
//! only not in parallel (the H200 run measures that).

mod common;

use common::{MappedBuffer, SECOND, finish, headless, headless_with, pattern};
use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, CopyQueue, DeviceError, InvalidArgument, WaitStatus,
};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, SetupError, TimelineMode, VulkanDevice};

const LANES: u32 = 3;
const SPLIT_BYTES: u64 = 256 << 10;

fn with_lanes() -> Option<HeadlessDevice> {
    let h = headless_with(HeadlessConfig {
        copy_lanes: LANES,
        lane_split_bytes: Some(SPLIT_BYTES),
        ..HeadlessConfig::default()
    })?;
    assert!(
        h.device().enabled_features().timeline_semaphore,
        "lanes need timeline semaphores, which lavapipe and NVIDIA have"
    );
    assert_eq!(h.device().copy_lanes().queues().len(), LANES as usize);
    assert_eq!(h.device().copy_lanes().min_split_bytes(), SPLIT_BYTES);
    Some(h)
}

fn submit(device: &VulkanDevice, commands: &[CopyCommand<'_, vk::Buffer>]) -> u64 {
    let value = device.last_submitted_value() + 1;
    // SAFETY: the buffers are alive, bound and carry the transfer usages; regions lie inside
    // them with disjoint destinations per command; the value increases.
    unsafe { device.submit_copies(commands, value) }.unwrap();
    value
}

fn wait(device: &VulkanDevice, value: u64) {
    assert_eq!(
        device.wait(value, 10 * SECOND).unwrap(),
        WaitStatus::Completed
    );
}

/// `count` regions of `size / count` bytes covering `[0, size)` of the destination, sources in
/// a scrambled order.
fn scattered(size: u64, count: u64) -> Vec<BufferCopy> {
    let piece = size / count;
    (0..count)
        .map(|i| BufferCopy {
            src_offset: ((i * 7) % count) * piece,
            dst_offset: i * piece,
            size: piece,
        })
        .collect()
}

/// What the destination holds after `regions` copied `source` into it.
fn expected(source: &[u8], regions: &[BufferCopy], mut into: Vec<u8>) -> Vec<u8> {
    for r in regions {
        let (s, d, n) = (
            r.src_offset as usize,
            r.dst_offset as usize,
            r.size as usize,
        );
        into[d..d + n].copy_from_slice(&source[s..s + n]);
    }
    into
}

/// Staging (pattern source), target (written by the copies) and readback buffers of one size.
struct Buffers {
    staging: MappedBuffer,
    target: MappedBuffer,
    readback: MappedBuffer,
}

impl Buffers {
    /// The three buffers, with pattern `seed` written into staging; returns the pattern too.
    fn staged(device: &VulkanDevice, size: u64, seed: u8) -> (Self, Vec<u8>) {
        let buffers = Self::new(device, size);
        let source = pattern(size as usize, seed);
        buffers.staging.write(device, 0, &source);
        (buffers, source)
    }

    fn new(device: &VulkanDevice, size: u64) -> Self {
        Self {
            staging: MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC),
            target: MappedBuffer::new(
                device,
                size,
                BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
            ),
            readback: MappedBuffer::new(device, size, BufferUsage::TRANSFER_DST),
        }
    }

    fn destroy(self, device: &VulkanDevice) {
        self.staging.destroy(device);
        self.target.destroy(device);
        self.readback.destroy(device);
    }
}

#[test]
fn split_uploads_arrive_byte_for_byte_and_later_submissions_see_them() {
    let Some(h) = with_lanes() else { return };
    let device = h.device();
    let size: u64 = 2 << 20;
    let (
        Buffers {
            staging,
            target,
            readback,
        },
        source,
    ) = Buffers::staged(device, size, 7);
    let splits = device.split_submissions();

    // Upload in 32 scattered regions, then read back at once, no wait between: the readback's
    // parts run on other queues than the upload's and must still see every byte.
    let upload = scattered(size, 32);
    submit(
        device,
        &[CopyCommand {
            src: staging.buffer,
            dst: target.buffer,
            regions: &upload,
        }],
    );
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size,
    }];
    let read = submit(
        device,
        &[CopyCommand {
            src: target.buffer,
            dst: readback.buffer,
            regions: &whole,
        }],
    );
    wait(device, read);
    assert_eq!(device.split_submissions(), splits + 2, "both were split");
    let first = expected(&source, &upload, vec![0; size as usize]);
    assert!(readback.read(device) == first, "readback differs");

    // A small overwrite goes whole to the transfer queue; the split readback after it must see
    // it over the split upload's bytes.
    let patch = [BufferCopy {
        src_offset: 0,
        dst_offset: 4096,
        size: 8192,
    }];
    submit(
        device,
        &[CopyCommand {
            src: staging.buffer,
            dst: target.buffer,
            regions: &patch,
        }],
    );
    let read = submit(
        device,
        &[CopyCommand {
            src: target.buffer,
            dst: readback.buffer,
            regions: &whole,
        }],
    );
    wait(device, read);
    assert_eq!(
        device.split_submissions(),
        splits + 3,
        "the patch was not split"
    );
    assert!(
        readback.read(device) == expected(&source, &patch, first),
        "readback after the patch differs"
    );
    Buffers {
        staging,
        target,
        readback,
    }
    .destroy(device);
    finish(h);
}

#[test]
fn a_split_that_fails_after_its_lane_parts_were_submitted_leaves_nothing_in_flight() {
    let Some(h) = with_lanes() else { return };
    let device = h.device();
    let size: u64 = 32 << 20;
    let (
        Buffers {
            staging,
            target,
            readback,
        },
        source,
    ) = Buffers::staged(device, size, 11);
    target.write(device, 0, &vec![0; size as usize]);
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size,
    }];
    let upload = [CopyCommand {
        src: staging.buffer,
        dst: target.buffer,
        regions: &whole,
    }];
    // The lanes' parts go out, then the transfer queue's part fails (as a failed recording or
    // vkQueueSubmit would).
    device.fail_next_split_after_lanes();
    let value = device.last_submitted_value() + 1;
    // SAFETY: as in `submit`.
    let failed = unsafe { device.submit_copies(&upload, value) };
    assert_eq!(failed, Err(DeviceError::OutOfDeviceMemory));
    // An error means nothing of the submission is in flight: the lanes' parts (the last three
    // quarters) have landed already, the transfer queue's (the first) never ran, and the buffers
    // may be read and overwritten at once.
    let landed = target.read(device);
    let half = size as usize / 2;
    assert!(
        landed[half..] == source[half..],
        "the lanes' parts were still running when the submission failed"
    );
    assert!(
        landed[..4096].iter().all(|&b| b == 0),
        "the transfer queue's part ran"
    );
    target.write(device, 0, &vec![0; size as usize]);

    // The same value again, in full: the device carries on.
    let splits = device.split_submissions();
    assert_eq!(submit(device, &upload), value);
    let read = submit(
        device,
        &[CopyCommand {
            src: target.buffer,
            dst: readback.buffer,
            regions: &whole,
        }],
    );
    wait(device, read);
    assert_eq!(device.split_submissions(), splits + 2);
    assert!(readback.read(device) == source, "readback differs");
    Buffers {
        staging,
        target,
        readback,
    }
    .destroy(device);
    finish(h);
}

#[test]
fn batches_whose_commands_depend_on_each_other_run_whole_and_in_order() {
    let Some(h) = with_lanes() else { return };
    let device = h.device();
    let size: u64 = 1 << 20;
    let (
        Buffers {
            staging,
            target,
            readback,
        },
        source,
    ) = Buffers::staged(device, size, 9);
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size,
    }];
    let splits = device.split_submissions();
    let value = submit(
        device,
        &[
            CopyCommand {
                src: staging.buffer,
                dst: target.buffer,
                regions: &whole,
            },
            CopyCommand {
                src: target.buffer,
                dst: readback.buffer,
                regions: &whole,
            },
        ],
    );
    wait(device, value);
    assert_eq!(device.split_submissions(), splits);
    assert!(readback.read(device) == source, "readback differs");
    Buffers {
        staging,
        target,
        readback,
    }
    .destroy(device);
    finish(h);
}

#[test]
fn lanes_are_refused_without_timeline_semaphores_or_with_ownership_release() {
    // Only where there is Vulkan at all.
    let Some(probe) = headless() else { return };
    finish(probe);
    let refused = |config: HeadlessConfig| match HeadlessDevice::new(HeadlessConfig {
        validation: true,
        copy_lanes: 2,
        ..config
    }) {
        Err(SetupError::Device(error)) => error,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("lanes accepted with {config:?}"),
    };
    let fences = refused(HeadlessConfig {
        timeline: TimelineMode::FencePool,
        ..HeadlessConfig::default()
    });
    assert_eq!(fences, DeviceError::FeatureNotEnabled);
    let release = refused(HeadlessConfig {
        release_to_family: Some(vk::QUEUE_FAMILY_EXTERNAL),
        ..HeadlessConfig::default()
    });
    assert_eq!(
        release,
        DeviceError::InvalidArgument(InvalidArgument::ConflictingOptions)
    );
}
