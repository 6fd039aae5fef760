//! A lost device, real or simulated: teardown still waits for what the GPU was given, every
//! waiter wakes with `DeviceLost`, and memory, buffer and image calls are refused as on the dummy
//! device. Simulated losses stand in for real ones: both go through the same bookkeeping.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    MappedBuffer, SECOND, TIMELINE_MODES, each_timeline_mode, finish, headless, memory_type,
    pattern,
};
use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, DeviceError, ImageDesc,
    ImageDevice, ImageFormat, ImageUsage, MappedRange, MemoryAllocateInfo, MemoryDevice,
    MemoryPropertyFlags,
};
use memkit_vulkan::{HostBuffer, VulkanDevice, VulkanDeviceConfig};

/// Bytes each copy of [`submit_eight_whole_copies`] moves: enough that eight of them are still
/// running when the test loses the device.
const COPY_BYTES: u64 = 16 << 20;

/// A source buffer of [`COPY_BYTES`] filled with `pattern(.., seed)`, a zeroed destination of the
/// same size, and the source's bytes.
fn source_and_zeroed_destination(
    device: &VulkanDevice,
    seed: u8,
) -> (MappedBuffer, MappedBuffer, Vec<u8>) {
    let size = COPY_BYTES as usize;
    let src = MappedBuffer::new(device, COPY_BYTES, BufferUsage::TRANSFER_SRC);
    let dst = MappedBuffer::new(device, COPY_BYTES, BufferUsage::TRANSFER_DST);
    let source = pattern(size, seed);
    src.write(device, 0, &source);
    dst.write(device, 0, &vec![0; size]);
    (src, dst, source)
}

/// Submits the whole of `src` into `dst` eight times on `submitter`, at timeline values 1 to 8.
fn submit_eight_whole_copies(submitter: &VulkanDevice, src: &MappedBuffer, dst: &MappedBuffer) {
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: COPY_BYTES,
    }];
    let copy = [CopyCommand {
        src: src.buffer,
        dst: dst.buffer,
        regions: &whole,
    }];
    for value in 1..=8 {
        // SAFETY: both buffers are alive, bound and carry the transfer usages; the region lies in
        // both; values increase.
        unsafe { submitter.submit_copies(&copy, value) }.unwrap();
    }
}

#[test]
fn dropping_a_lost_device_waits_for_its_submissions_first() {
    for timeline in TIMELINE_MODES {
        let Some(h) = headless() else { return };
        let (src, dst, source) = source_and_zeroed_destination(h.device(), 5);
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
        submit_eight_whole_copies(&second, &src, &dst);
        second.simulate_device_lost_while_running();
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
fn a_simulated_loss_returns_once_the_submitted_copies_finished() {
    each_timeline_mode(|h, timeline| {
        let device = h.device();
        let (src, dst, source) = source_and_zeroed_destination(device, 9);
        submit_eight_whole_copies(device, &src, &dst);
        device.simulate_device_lost();
        // As after a real loss, nothing runs any more: what the copies used may be freed now
        // (memkit-std's coordinator does so at once), and they wrote all they were going to.
        assert_eq!(
            device.wait(8, 0),
            Err(DeviceError::DeviceLost),
            "{timeline:?}"
        );
        assert!(
            dst.read(device) == source,
            "{timeline:?}: the loss returned before the copies finished"
        );
        src.destroy(device);
        dst.destroy(device);
    });
}

#[test]
fn a_loss_wakes_a_waiter_for_a_value_not_submitted_yet() {
    each_timeline_mode(|h, timeline| {
        let device = h.device();
        let timeout = Duration::from_secs(30);
        let (waiting, waiting_rx) = mpsc::channel();
        let (result, woke_after) = std::thread::scope(|s| {
            let waiter = s.spawn(move || {
                waiting.send(()).unwrap();
                device.wait(1, timeout.as_nanos() as u64)
            });
            waiting_rx.recv().unwrap();
            // Time for the waiter to pass the up-front lost check and block in the wait; then
            // prove it did block: it is still waiting, not done.
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                !waiter.is_finished(),
                "{timeline:?}: the wait for a value never submitted returned early"
            );
            let lost_at = Instant::now();
            device.simulate_device_lost();
            let result = waiter.join().unwrap();
            (result, lost_at.elapsed())
        });
        assert_eq!(result, Err(DeviceError::DeviceLost), "{timeline:?}");
        // Well before the timeout, with room for a loaded machine.
        assert!(
            woke_after < timeout / 3,
            "{timeline:?}: the waiter slept {woke_after:?} past the loss"
        );
    });
}

#[test]
fn a_lost_device_refuses_memory_buffer_and_image_calls_as_the_dummy_does() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let lost = Some(DeviceError::DeviceLost);
    // Objects made before the loss, to map and bind after it.
    let (buffer, requirements) = device
        .create_buffer(4096, BufferUsage::TRANSFER_DST)
        .unwrap();
    let info = MemoryAllocateInfo {
        size: requirements.size,
        memory_type: memory_type(
            device,
            requirements.memory_type_bits,
            MemoryPropertyFlags::HOST_VISIBLE,
        ),
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: the type is the device's and allowed for the buffer; the size is nonzero.
    let memory = unsafe { device.allocate_memory(&info) }.unwrap();
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 64, 64, ImageUsage::SAMPLED);
    let (image, image_requirements) = device.create_image(&desc).unwrap();
    let image_info = MemoryAllocateInfo {
        size: image_requirements.size,
        memory_type: memory_type(
            device,
            image_requirements.memory_type_bits,
            MemoryPropertyFlags::empty(),
        ),
        ..info
    };
    // SAFETY: as above.
    let image_memory = unsafe { device.allocate_memory(&image_info) }.unwrap();

    device.simulate_device_lost();
    let whole = [MappedRange {
        memory,
        offset: 0,
        size: u64::MAX,
    }];
    // SAFETY: every call is refused before Vulkan sees it; were one not, its arguments are
    // valid: allowed types, unbound objects at offset 0 of memory of their size, unmapped memory.
    unsafe {
        assert_eq!(device.allocate_memory(&info).err(), lost, "allocate");
        assert_eq!(device.map_memory(memory).err(), lost, "map");
        assert_eq!(device.bind_buffer_memory(buffer, memory, 0).err(), lost);
        assert_eq!(device.bind_image_memory(image, image_memory, 0).err(), lost);
    }
    assert_eq!(
        device.create_buffer(4096, BufferUsage::TRANSFER_DST).err(),
        lost,
        "create_buffer"
    );
    assert_eq!(device.create_image(&desc).err(), lost, "create_image");
    assert_eq!(
        device.check_image_support(&desc).err(),
        lost,
        "check_image_support"
    );
    assert_eq!(
        HostBuffer::new(device, 4096, BufferUsage::TRANSFER_SRC).err(),
        lost,
        "HostBuffer::new"
    );
    // SAFETY: refused before Vulkan sees the (unmapped) range.
    unsafe {
        assert_eq!(device.flush_ranges(&whole).err(), lost, "flush");
        assert_eq!(device.invalidate_ranges(&whole).err(), lost, "invalidate");
    }
    assert_eq!(device.live_memory_objects(), 2, "nothing new was allocated");
    // Destroying and freeing still work, and teardown is clean.
    // SAFETY: never bound or used by the GPU.
    unsafe {
        device.destroy_buffer(buffer);
        device.destroy_image(image);
        device.free_memory(memory);
        device.free_memory(image_memory);
    }
    assert_eq!(device.live_memory_objects(), 0);
    finish(h);
}

#[test]
fn a_lost_device_still_reads_back_nothing_and_leaks_nothing() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let src = MappedBuffer::new(device, 4096, BufferUsage::TRANSFER_SRC);
    device.simulate_device_lost();
    // SAFETY: `src` is alive, holds 4096 bytes and has the transfer-source usage; nothing was
    // submitted, so value 1 is above every submitted value.
    let read = unsafe { memkit_vulkan::read_buffer(device, src.buffer, 4096, 1, SECOND) };
    assert_eq!(read, Err(DeviceError::DeviceLost));
    assert_eq!(device.live_memory_objects(), 1, "only the source's memory");
    src.destroy(device);
    finish(h);
}
