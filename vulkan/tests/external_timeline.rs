//! memkit's submissions waiting, on the GPU, for the application's own timeline semaphore
//! ([`ExternalTimelines`]): buffer copies, image uploads and copies split over the copy lanes
//! stall until the host (standing for the application's queue) signals the awaited value, then
//! land byte for byte; later submissions no longer wait once one that waited completed; the
//! fence-pool fallback and a lost device refuse. Validation and synchronization validation are
//! on; every test fails on any message.

mod common;

use std::time::Duration;

use common::{MappedBuffer, SECOND, finish, headless_with, memory_for, pattern};
use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, DedicatedTo, DeviceError,
    ExternalTimelines, ImageCopy, ImageCopyCommand, ImageCopyQueue, ImageDesc, ImageDevice,
    ImageFormat, ImageUsage, InvalidArgument, MemoryDevice, MemoryPropertyFlags, WaitStatus,
};
use memkit_vulkan::ash::{self, vk};
use memkit_vulkan::{
    HeadlessConfig, HeadlessDevice, SharedHeadlessDevice, TimelineMode, VulkanDevice, read_buffer,
    read_image,
};

/// How long a stalled submission is watched not completing.
const STALL: Duration = Duration::from_millis(50);

/// A timeline semaphore of the application's on memkit's device, at 0. When a test fails
/// (panics) while memkit's submissions wait for it, dropping it signals it far ahead, so that
/// the device's teardown, which waits for those submissions, ends and the failure is reported
/// instead of hanging.
struct AppTimeline {
    device: ash::Device,
    semaphore: vk::Semaphore,
}

impl AppTimeline {
    fn new(h: &HeadlessDevice) -> Self {
        let mut kind = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
        let device = h.ash_device().clone();
        // SAFETY: a valid create info on a live device with timeline semaphores enabled.
        let semaphore = unsafe { device.create_semaphore(&info, None) }.unwrap();
        Self { device, semaphore }
    }

    /// The application's queue reaching `value`, signalled from the host.
    fn signal(&self, value: u64) {
        let info = vk::SemaphoreSignalInfo::default()
            .semaphore(self.semaphore)
            .value(value);
        // SAFETY: a live timeline semaphore, signalled above its current value, with nothing of
        // the application's pending that signals it.
        unsafe { self.device.signal_semaphore(&info) }.unwrap();
    }

    /// Destroys the semaphore, once every submission that waited for it completed.
    fn destroy(self) {
        // SAFETY: every submission that waited for it completed (the tests wait for them).
        unsafe { self.device.destroy_semaphore(self.semaphore, None) };
    }
}

impl Drop for AppTimeline {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        // SAFETY: the semaphore is alive (a panicking test never destroyed it); signalled above
        // every value the tests wait for, and within the largest difference Vulkan allows.
        unsafe {
            if let Ok(now) = self.device.get_semaphore_counter_value(self.semaphore) {
                let info = vk::SemaphoreSignalInfo::default()
                    .semaphore(self.semaphore)
                    .value(now + (1 << 20));
                let _ = self.device.signal_semaphore(&info);
            }
        }
    }
}

/// A headless device whose memkit signals a timeline semaphore (lavapipe and every desktop
/// driver have them), or `None` without Vulkan.
fn timeline_device(config: HeadlessConfig) -> Option<HeadlessDevice> {
    let h = headless_with(config)?;
    assert!(
        h.device().timeline_semaphore().is_some(),
        "external timelines need timeline semaphores, which lavapipe has"
    );
    Some(h)
}

/// A buffer in device-local memory of its own, the destination of the uploads.
struct DeviceBuffer {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
}

impl DeviceBuffer {
    fn new(device: &VulkanDevice, size: u64) -> Self {
        let usage = BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST;
        let (buffer, req) = device.create_buffer(size, usage).unwrap();
        let local = MemoryPropertyFlags::DEVICE_LOCAL;
        let memory = memory_for(device, &req, local, DedicatedTo::Buffer(buffer));
        // SAFETY: the buffer is unbound; offset 0 of memory of its size.
        unsafe { device.bind_buffer_memory(buffer, memory, 0) }.unwrap();
        Self { buffer, memory }
    }

    fn destroy(self, device: &VulkanDevice) {
        // SAFETY: every submission using the buffer was waited for.
        unsafe {
            device.destroy_buffer(self.buffer);
            device.free_memory(self.memory);
        }
    }
}

/// Copies `regions` of `src` into `dst` at the next value, and returns the value.
fn copy(device: &VulkanDevice, src: &MappedBuffer, dst: vk::Buffer, regions: &[BufferCopy]) -> u64 {
    let value = device.last_submitted_value() + 1;
    let command = [CopyCommand {
        src: src.buffer,
        dst,
        regions,
    }];
    // SAFETY: both buffers are alive, bound and carry the transfer usages; the regions lie in
    // both with disjoint destinations; host writes into `src` are done (coherent memory); the
    // value increases.
    unsafe { device.submit_copies(&command, value) }.unwrap();
    value
}

fn whole(size: u64) -> [BufferCopy; 1] {
    [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size,
    }]
}

/// memkit's read-back of `len` bytes of `buffer` at the next value.
fn read(device: &VulkanDevice, buffer: &DeviceBuffer, len: u64) -> Vec<u8> {
    let value = device.last_submitted_value() + 1;
    // SAFETY: the buffer is alive with TRANSFER_SRC and `len` bytes; the value is the next one
    // and this thread is the only submitter; the writes were submitted before.
    unsafe { read_buffer(device, buffer.buffer, len, value, 10 * SECOND) }.unwrap()
}

/// Asserts that the submission of `value` has not run: memkit's timeline stays below it for
/// [`STALL`] while the application's is still at `app_value`.
fn assert_stalled(device: &VulkanDevice, semaphore: vk::Semaphore, value: u64, app_value: u64) {
    let stall_ns = STALL.as_nanos() as u64;
    assert_eq!(device.wait(value, stall_ns).unwrap(), WaitStatus::TimedOut);
    assert!(device.completed_value().unwrap() < value);
    // SAFETY: the application's live timeline semaphore of this device.
    let got = unsafe { device.external_value(semaphore) }.unwrap();
    assert_eq!(got, app_value);
}

fn assert_completes(device: &VulkanDevice, value: u64) {
    assert_eq!(
        device.wait(value, 10 * SECOND).unwrap(),
        WaitStatus::Completed
    );
}

/// Makes later submissions wait for `value` on the application's `semaphore`.
fn wait_for(device: &VulkanDevice, semaphore: vk::Semaphore, value: u64) {
    // SAFETY: the semaphore is the application's live timeline semaphore of this device and is
    // destroyed only after the device idled; `value` is at most a few above its current value.
    unsafe { device.wait_for_external(semaphore, value) }.unwrap();
}

#[test]
fn copies_wait_on_the_gpu_for_the_applications_timeline() {
    let Some(h) = timeline_device(HeadlessConfig::default()) else {
        return;
    };
    let device = h.device();
    let app = AppTimeline::new(&h);
    let semaphore = app.semaphore;
    let size = 64 << 10;
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let target = DeviceBuffer::new(device, size);
    let first = pattern(size as usize, 3);
    staging.write(device, 0, &first);

    // The application's draws still read `target` until its timeline reaches 1.
    wait_for(device, semaphore, 1);
    let value = copy(device, &staging, target.buffer, &whole(size));
    assert_stalled(device, semaphore, value, 0);
    app.signal(1);
    assert_completes(device, value);
    assert_eq!(read(device, &target, size), first);
    // SAFETY: as above.
    assert_eq!(unsafe { device.external_value(semaphore) }.unwrap(), 1);

    // Met by a completed submission: later ones wait for nothing, and neither does a lower or
    // equal value asked for again.
    let second = pattern(size as usize, 4);
    staging.write(device, 0, &second);
    wait_for(device, semaphore, 1);
    let value = copy(device, &staging, target.buffer, &whole(size));
    assert_completes(device, value);
    assert_eq!(read(device, &target, size), second);

    // A higher value stalls again, and every submission made meanwhile waits with it.
    let third = pattern(size as usize, 5);
    staging.write(device, 0, &third);
    wait_for(device, semaphore, 3);
    let half = size / 2;
    let low = copy(
        device,
        &staging,
        target.buffer,
        &[BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size: half,
        }],
    );
    let high = copy(
        device,
        &staging,
        target.buffer,
        &[BufferCopy {
            src_offset: half,
            dst_offset: half,
            size: half,
        }],
    );
    app.signal(2);
    assert_stalled(device, semaphore, low, 2);
    assert!(device.completed_value().unwrap() < high);
    app.signal(3);
    assert_completes(device, high);
    assert_eq!(read(device, &target, size), third);

    staging.destroy(device);
    target.destroy(device);
    app.destroy();
    finish(h);
}

#[test]
fn image_uploads_wait_on_the_gpu_for_the_applications_timeline() {
    let Some(h) = timeline_device(HeadlessConfig::default()) else {
        return;
    };
    let device = h.device();
    let app = AppTimeline::new(&h);
    let semaphore = app.semaphore;
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC;
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 32, 16, usage);
    let (image, req) = device.create_image(&desc).unwrap();
    let local = MemoryPropertyFlags::DEVICE_LOCAL;
    let memory = memory_for(device, &req, local, DedicatedTo::Image(image));
    // SAFETY: the image is unbound; offset 0 of memory of its size.
    unsafe { device.bind_image_memory(image, memory, 0) }.unwrap();
    let region = [ImageCopy::whole_level(&desc, 0, 0)];
    let bytes = region[0].packed_bytes(desc.format).unwrap();
    let staging = MappedBuffer::new(device, bytes, BufferUsage::TRANSFER_SRC);
    let texels = pattern(bytes as usize, 9);
    staging.write(device, 0, &texels);

    wait_for(device, semaphore, 1);
    let value = device.last_submitted_value() + 1;
    let command = [ImageCopyCommand {
        src: staging.buffer,
        dst: image,
        desc,
        keep_contents: false,
        regions: &region,
    }];
    // SAFETY: the buffer and image are alive and bound, the desc is the image's, the region lies
    // in the staging buffer, host writes are done, and nothing else uses the image.
    unsafe { device.submit_image_copies(&command, value) }.unwrap();
    assert_stalled(device, semaphore, value, 0);
    app.signal(1);
    assert_completes(device, value);
    let read_value = device.last_submitted_value() + 1;
    // SAFETY: the image was made with `desc`, memkit uploaded into all of it; the value is the
    // next one and this thread is the only submitter.
    let back = unsafe { read_image(device, image, &desc, read_value, 10 * SECOND) }.unwrap();
    assert_eq!(back, texels);

    // SAFETY: every submission using them completed.
    unsafe {
        device.destroy_image(image);
        device.free_memory(memory);
    }
    staging.destroy(device);
    app.destroy();
    finish(h);
}

#[test]
fn copies_split_over_the_lanes_wait_for_the_applications_timeline() {
    let Some(h) = timeline_device(HeadlessConfig {
        copy_lanes: 3,
        lane_split_bytes: Some(256 << 10),
        ..HeadlessConfig::default()
    }) else {
        return;
    };
    let device = h.device();
    let app = AppTimeline::new(&h);
    let semaphore = app.semaphore;
    let size: u64 = 2 << 20;
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    // Host-visible, so that the test sees that no part (the transfer queue's or a lane's) wrote
    // anything before the application's timeline reached the value.
    let target = MappedBuffer::new(device, size, BufferUsage::TRANSFER_DST);
    target.write(device, 0, &vec![0; size as usize]);
    let source = pattern(size as usize, 11);
    staging.write(device, 0, &source);
    let pieces = 16;
    let piece = size / pieces;
    let regions: Vec<BufferCopy> = (0..pieces)
        .map(|i| BufferCopy {
            src_offset: i * piece,
            dst_offset: i * piece,
            size: piece,
        })
        .collect();

    let splits = device.split_submissions();
    wait_for(device, semaphore, 1);
    let value = copy(device, &staging, target.buffer, &regions);
    assert_eq!(device.split_submissions(), splits + 1, "the copy was split");
    assert_stalled(device, semaphore, value, 0);
    // The parts are queued behind the wait, so nothing writes the buffer while the host reads.
    let before = target.read(device);
    assert!(
        before.iter().all(|&b| b == 0),
        "a part copied before the application's timeline reached 1"
    );
    app.signal(1);
    assert_completes(device, value);
    assert_eq!(target.read(device), source);

    staging.destroy(device);
    target.destroy(device);
    app.destroy();
    finish(h);
}

#[test]
fn the_shared_device_forwards_and_refuses_null_and_lost() {
    let Some(h) = timeline_device(HeadlessConfig::default()) else {
        return;
    };
    let app = AppTimeline::new(&h);
    let semaphore = app.semaphore;
    let shared = SharedHeadlessDevice::new(h);
    // SAFETY: the application's live timeline semaphore of this device.
    assert_eq!(unsafe { shared.external_value(semaphore) }.unwrap(), 0);
    app.signal(5);
    // SAFETY: as above.
    assert_eq!(unsafe { shared.external_value(semaphore) }.unwrap(), 5);
    // SAFETY: as above; the value is reached already.
    unsafe { shared.wait_for_external(semaphore, 4) }.unwrap();
    let unknown = Err(DeviceError::InvalidArgument(
        InvalidArgument::UnknownTimeline,
    ));
    // SAFETY: a null handle is refused before any Vulkan call.
    let got = unsafe { shared.external_value(vk::Semaphore::null()) };
    assert_eq!(got, unknown);
    // SAFETY: as above.
    let got = unsafe { shared.wait_for_external(vk::Semaphore::null(), 1) };
    assert_eq!(got, unknown.map(|_| ()));

    shared.device().simulate_device_lost();
    // SAFETY: the application's live timeline semaphore of this device.
    let got = unsafe { shared.external_value(semaphore) };
    assert_eq!(got, Err(DeviceError::DeviceLost));
    // SAFETY: as above.
    let got = unsafe { shared.wait_for_external(semaphore, 6) };
    assert_eq!(got, Err(DeviceError::DeviceLost));
    let h = shared.try_unwrap().expect("the last clone");
    app.destroy();
    finish(h);
}

#[test]
fn the_fence_pool_fallback_has_no_timelines_to_wait_for() {
    let Some(h) = headless_with(HeadlessConfig {
        timeline: TimelineMode::FencePool,
        ..HeadlessConfig::default()
    }) else {
        return;
    };
    let device = h.device();
    assert!(device.timeline_semaphore().is_none());
    // Where the device enabled timeline semaphores (memkit just does not signal one), a real
    // semaphore of the application's; else none could be made.
    let app = device
        .enabled_features()
        .timeline_semaphore
        .then(|| AppTimeline::new(&h));
    let timeline = app.as_ref().map_or(vk::Semaphore::null(), |a| a.semaphore);
    // SAFETY: a live timeline semaphore of this device, or a null handle refused before any
    // Vulkan call.
    let got = unsafe { device.wait_for_external(timeline, 1) };
    assert_eq!(got, Err(DeviceError::FeatureNotEnabled));
    // SAFETY: as above.
    let got = unsafe { device.external_value(timeline) };
    assert_eq!(got, Err(DeviceError::FeatureNotEnabled));
    // Nothing was recorded: a copy completes without the application signalling.
    let size = 4096;
    let staging = MappedBuffer::new(device, size, BufferUsage::TRANSFER_SRC);
    let target = DeviceBuffer::new(device, size);
    let bytes = pattern(size as usize, 1);
    staging.write(device, 0, &bytes);
    let value = copy(device, &staging, target.buffer, &whole(size));
    assert_completes(device, value);
    assert_eq!(read(device, &target, size), bytes);

    staging.destroy(device);
    target.destroy(device);
    if let Some(app) = app {
        app.destroy();
    }
    finish(h);
}
