//! Shared by the Vulkan integration tests: a validated headless device, and host-visible buffers
//! bound to memory of their own.
#![allow(dead_code)]

use std::io::Write;

use memkit_core::device::{BufferUsage, MemoryDevice, MemoryPropertyFlags};
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
