//! Shared by the Vulkan integration tests: a validated headless device, and host-visible buffers
//! bound to memory of their own.
#![allow(dead_code)]

use std::io::Write;
use std::ptr::NonNull;

use memkit_core::device::{
    BufferDevice, BufferUsage, DedicatedTo, MemoryAllocateInfo, MemoryDevice, MemoryPropertyFlags,
};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, SetupError, VulkanDevice};

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

/// A buffer bound at offset 0 of a host-visible memory object of its own, mapped.
pub struct MappedBuffer {
    pub buffer: vk::Buffer,
    pub memory: vk::DeviceMemory,
    pub ptr: NonNull<u8>,
    pub size: u64,
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

impl MappedBuffer {
    pub fn new(device: &VulkanDevice, size: u64, usage: BufferUsage) -> Self {
        let (buffer, req) = device.create_buffer(size, usage).unwrap();
        assert!(req.size >= size);
        let memory_type = memory_type(
            device,
            req.memory_type_bits,
            MemoryPropertyFlags::HOST_VISIBLE | MemoryPropertyFlags::HOST_COHERENT,
        );
        let info = MemoryAllocateInfo {
            size: req.size,
            memory_type,
            dedicated_to: Some(DedicatedTo::Buffer(buffer)),
            priority: 0.5,
            device_address: false,
        };
        // SAFETY: the type is in range, the size nonzero, the buffer alive and unbound.
        let memory = unsafe { device.allocate_memory(&info) }.unwrap();
        // SAFETY: both alive, offset 0, the type allowed by the requirements.
        unsafe { device.bind_buffer_memory(buffer, memory, 0) }.unwrap();
        // SAFETY: alive, host-visible, not mapped.
        let ptr = unsafe { device.map_memory(memory) }.unwrap();
        Self {
            buffer,
            memory,
            ptr,
            size,
        }
    }

    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.size as usize);
        // SAFETY: the mapping covers `size` bytes and no copy is in flight while tests write.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            )
        };
    }

    pub fn read(&self) -> Vec<u8> {
        // SAFETY: the mapping covers `size` bytes; the GPU finished writing (tests wait first).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size as usize) }.to_vec()
    }

    pub fn destroy(self, device: &VulkanDevice) {
        // SAFETY: the GPU finished with both (tests wait first); buffer destroyed before its memory.
        unsafe {
            device.unmap_memory(self.memory);
            device.destroy_buffer(self.buffer);
            device.free_memory(self.memory);
        }
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
