//! Shared by the Vulkan integration tests: a validated headless device, and host-visible buffers
//! bound to memory of their own.
#![allow(dead_code)]

use std::io::Write;

use memkit_core::device::{
    BufferUsage, CopyQueue, DedicatedHint, DedicatedTo, MemoryAllocateInfo, MemoryDevice,
    MemoryPropertyFlags, MemoryRequirements, WaitStatus,
};
use memkit_core::pool::{BlockSlot, DedicatedSlot, MemoryPools, PoolConfig};
use memkit_core::tlsf::{TlsfAllocator, TlsfNode};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{
    HeadlessConfig, HeadlessDevice, HostBuffer, SetupError, TimelineMode, VulkanDevice,
};

/// A validated headless device, or `None` (printed loudly) when this machine has no Vulkan at
/// all. With `MEMKIT_REQUIRE_VULKAN=1` (CI), no Vulkan fails the test instead.
pub fn headless_with(config: HeadlessConfig) -> Option<HeadlessDevice> {
    let config = HeadlessConfig {
        validation: true,
        ..config
    };
    match HeadlessDevice::new(config) {
        Ok(device) => Some(device),
        Err(e @ (SetupError::LoaderMissing | SetupError::NoDevice))
            if std::env::var("MEMKIT_REQUIRE_VULKAN").as_deref() != Ok("1") =>
        {
            // Straight to the process's stderr: the test harness captures `eprintln!` of passing
            // tests, and a skip must not go unseen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED: no Vulkan here ({e}). Install lavapipe \
                 (mesa-vulkan-drivers libvulkan1 vulkan-validationlayers); \
                 CI sets MEMKIT_REQUIRE_VULKAN=1 and fails instead. !!!!!!!!\n"
            );
            None
        }
        Err(e) => panic!("no validated Vulkan device: {e}"),
    }
}

/// [`headless_with`] the default configuration.
pub fn headless() -> Option<HeadlessDevice> {
    headless_with(HeadlessConfig::default())
}

/// Both ways memkit-vulkan signals completion: a timeline semaphore (where the device has one)
/// and its pool of fences.
pub const TIMELINE_MODES: [TimelineMode; 2] = [TimelineMode::Auto, TimelineMode::FencePool];

/// Runs `test` on a validated headless device in each of [`TIMELINE_MODES`], after checking the
/// device signals as asked, and [`finish`]es each device. Returns at once where [`headless_with`]
/// finds no Vulkan.
pub fn each_timeline_mode(test: impl Fn(&HeadlessDevice, TimelineMode)) {
    for timeline in TIMELINE_MODES {
        let Some(h) = headless_with(HeadlessConfig {
            timeline,
            ..HeadlessConfig::default()
        }) else {
            return;
        };
        match timeline {
            TimelineMode::Auto => assert_eq!(
                h.device().timeline_semaphore().is_some(),
                h.device().enabled_features().timeline_semaphore
            ),
            TimelineMode::FencePool => assert!(h.device().timeline_semaphore().is_none()),
        }
        test(&h, timeline);
        finish(h);
    }
}

/// Tears the device down and fails on any message the validation layer reported, teardown
/// included.
pub fn finish(device: HeadlessDevice) {
    let messages = device.finish();
    assert!(
        messages.is_empty(),
        "validation reported {} message(s):\n{}",
        messages.len(),
        messages.join("\n")
    );
}

/// [`finish`] for a device shared with a coordinator: fails when anything still holds it (a
/// ticket, an image, the coordinator) or on any validation message.
pub fn finish_shared(shared: memkit_vulkan::SharedHeadlessDevice) {
    let Ok(h) = shared.try_unwrap() else {
        panic!("a ticket, image or the coordinator still holds the device");
    };
    finish(h);
}

/// The first memory type allowed by `bits` with `flags`.
pub fn memory_type(device: &VulkanDevice, bits: u32, flags: MemoryPropertyFlags) -> u32 {
    device
        .memory_properties()
        .types()
        .iter()
        .enumerate()
        .position(|(i, t)| bits & (1 << i) != 0 && t.properties.contains(flags))
        .expect("a host-visible memory type") as u32
}

/// A memory object of a type with `flags` for a resource with requirements `req`, dedicated to
/// `resource` when the driver requires it; the caller binds the resource at offset 0.
pub fn memory_for(
    device: &VulkanDevice,
    req: &MemoryRequirements,
    flags: MemoryPropertyFlags,
    resource: DedicatedTo<vk::Buffer, vk::Image>,
) -> vk::DeviceMemory {
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type: memory_type(device, req.memory_type_bits, flags),
        dedicated_to: (req.dedicated == DedicatedHint::Required).then_some(resource),
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: a type the resource allows, its size; dedicated to it when required.
    unsafe { device.allocate_memory(&info) }.unwrap()
}

/// memkit-vulkan's [`HostBuffer`] under the tests' contract: a test waits for the GPU to finish
/// with a buffer before it writes, reads or destroys it.
pub struct MappedBuffer {
    pub buffer: vk::Buffer,
    host: HostBuffer,
}

impl MappedBuffer {
    pub fn new(device: &VulkanDevice, size: u64, usage: BufferUsage) -> Self {
        let host = HostBuffer::new(device, size, usage).unwrap();
        Self {
            buffer: host.buffer(),
            host,
        }
    }

    pub fn write(&self, device: &VulkanDevice, offset: u64, bytes: &[u8]) {
        // SAFETY: tests write only while no copy using the buffer is in flight.
        unsafe { self.host.write(device, offset, bytes) }.unwrap();
    }

    pub fn read(&self, device: &VulkanDevice) -> Vec<u8> {
        // SAFETY: tests read after waiting for the copies into the buffer.
        unsafe { self.host.read(device) }.unwrap()
    }

    pub fn destroy(self, device: &VulkanDevice) {
        // SAFETY: tests destroy after waiting for every copy using the buffer.
        unsafe { self.host.destroy(device) };
    }
}

/// Bytes that differ at every offset and between seeds.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}

pub const SECOND: u64 = 1_000_000_000;

/// A command pool and one command buffer of the application, on its main queue's family.
pub struct AppCommands {
    pub pool: vk::CommandPool,
    pub cmd: vk::CommandBuffer,
    pub fence: vk::Fence,
}

impl AppCommands {
    pub fn new(h: &HeadlessDevice) -> Self {
        Self::on_family(h.ash_device(), h.main_queue().family)
    }

    /// On any device and queue family (an engine's own device).
    pub fn on_family(device: &ash::Device, family: u32) -> Self {
        let info = vk::CommandPoolCreateInfo::default().queue_family_index(family);
        // SAFETY: valid create infos on a live device (for the three calls).
        unsafe {
            let pool = device.create_command_pool(&info, None).unwrap();
            let alloc = vk::CommandBufferAllocateInfo::default()
                .command_pool(pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(1);
            let cmd = device.allocate_command_buffers(&alloc).unwrap()[0];
            let fence = device
                .create_fence(&vk::FenceCreateInfo::default(), None)
                .unwrap();
            Self { pool, cmd, fence }
        }
    }

    pub fn begin(&self, h: &HeadlessDevice) {
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the buffer is not pending (every submission is waited for).
        unsafe {
            h.ash_device()
                .reset_command_pool(self.pool, vk::CommandPoolResetFlags::empty())
                .unwrap();
            h.ash_device()
                .begin_command_buffer(self.cmd, &begin)
                .unwrap();
        }
    }

    /// Ends, submits on the main queue (waiting for memkit's `wait_value` on its timeline
    /// semaphore when there is one) and waits.
    pub fn submit_and_wait(&self, h: &HeadlessDevice, wait_value: Option<u64>) {
        let device = h.ash_device();
        // SAFETY: recording.
        unsafe { device.end_command_buffer(self.cmd) }.unwrap();
        let cmds = [self.cmd];
        let semaphores: Vec<vk::Semaphore> = wait_value
            .and(h.device().timeline_semaphore())
            .into_iter()
            .collect();
        let values: Vec<u64> = wait_value.into_iter().take(semaphores.len()).collect();
        if let Some(v) = wait_value
            && semaphores.is_empty()
        {
            // Fence-pool fallback: the host waits instead.
            assert_eq!(
                h.device().wait(v, 10 * SECOND).unwrap(),
                WaitStatus::Completed
            );
        }
        let stages = vec![vk::PipelineStageFlags::TRANSFER; semaphores.len()];
        let mut timeline =
            vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
        let mut submit = vk::SubmitInfo::default()
            .command_buffers(&cmds)
            .wait_semaphores(&semaphores)
            .wait_dst_stage_mask(&stages);
        if !semaphores.is_empty() {
            submit = submit.push_next(&mut timeline);
        }
        h.with_main_queue(|queue| {
            // SAFETY: the queue is ours for the call; the command buffer is executable.
            unsafe { device.queue_submit(queue, &[submit], self.fence) }.unwrap();
        });
        // SAFETY: the fence was just submitted.
        unsafe {
            device
                .wait_for_fences(&[self.fence], true, 10 * SECOND)
                .unwrap();
            device.reset_fences(&[self.fence]).unwrap();
        }
    }

    pub fn destroy(self, h: &HeadlessDevice) {
        self.destroy_on(h.ash_device());
    }

    /// Destroys them, on the device they were made on, once nothing is pending.
    pub fn destroy_on(self, device: &ash::Device) {
        // SAFETY: nothing pending (the caller's word).
        unsafe {
            device.destroy_fence(self.fence, None);
            device.destroy_command_pool(self.pool, None);
        }
    }
}

/// TLSF blocks with heap-allocated node storage.
pub type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
/// Memory pools over a test's device, with TLSF blocks.
pub type Pools<'d> = MemoryPools<
    &'d VulkanDevice,
    Tlsf,
    Vec<BlockSlot<vk::DeviceMemory, Tlsf>>,
    Vec<DedicatedSlot<vk::DeviceMemory>>,
>;

/// Pools over `device` with `config`, `blocks` block slots (each sized for every block the
/// configuration makes) and eight dedicated-object slots.
pub fn tlsf_pools(device: &VulkanDevice, config: PoolConfig, blocks: usize) -> Pools<'_> {
    let len = Pools::block_storage_len(&device, &config).unwrap();
    let slots = (0..blocks)
        .map(|_| BlockSlot::new(vec![TlsfNode::EMPTY; len]))
        .collect();
    MemoryPools::new(device, config, slots, vec![DedicatedSlot::new(); 8]).unwrap()
}
