//! A [`HeadlessDevice`] behind an `Arc` that is a device itself: the coordinator (or the pools)
//! own one by value while the tool or test keeps another, to read back, probe or check the device
//! after they are gone.

use core::ops::Deref;
use core::ptr::NonNull;
use std::sync::Arc;

use ash::vk;
use memkit_core::device::{
    BufferDevice, BufferUsage, CopyCommand, CopyQueue, DeviceError, DeviceLimits,
    ExternalTimelines, HeapBudget, ImageCopyCommand, ImageCopyQueue, ImageDesc, ImageDevice,
    ImageMoveCommand, ImageReadCommand, MappedRange, MemoryAllocateInfo, MemoryDevice,
    MemoryProperties, MemoryRequirements, WaitStatus,
};

use crate::device::VulkanDevice;
use crate::headless::HeadlessDevice;

/// A shared [`HeadlessDevice`]; every clone is the same device, and every device call goes to
/// its [`VulkanDevice`].
#[derive(Clone, Debug)]
pub struct SharedHeadlessDevice(Arc<HeadlessDevice>);

impl SharedHeadlessDevice {
    /// Shares `device`.
    pub fn new(device: HeadlessDevice) -> Self {
        Self(Arc::new(device))
    }

    /// The headless device back, once this is the last clone; else `self` again.
    pub fn try_unwrap(self) -> Result<HeadlessDevice, Self> {
        Arc::try_unwrap(self.0).map_err(Self)
    }

    fn vk(&self) -> &VulkanDevice {
        self.0.device()
    }
}

impl Deref for SharedHeadlessDevice {
    type Target = HeadlessDevice;

    fn deref(&self) -> &HeadlessDevice {
        &self.0
    }
}

impl MemoryDevice for SharedHeadlessDevice {
    type Memory = vk::DeviceMemory;
    type Buffer = vk::Buffer;
    type Image = vk::Image;

    fn memory_properties(&self) -> &MemoryProperties {
        self.vk().memory_properties()
    }
    fn limits(&self) -> DeviceLimits {
        self.vk().limits()
    }
    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        self.vk().query_budget(out)
    }
    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<vk::Buffer, vk::Image>,
    ) -> Result<vk::DeviceMemory, DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().allocate_memory(info) }
    }
    unsafe fn free_memory(&self, memory: vk::DeviceMemory) {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().free_memory(memory) }
    }
    unsafe fn map_memory(&self, memory: vk::DeviceMemory) -> Result<NonNull<u8>, DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().map_memory(memory) }
    }
    unsafe fn unmap_memory(&self, memory: vk::DeviceMemory) {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().unmap_memory(memory) }
    }
    unsafe fn flush_ranges(
        &self,
        ranges: &[MappedRange<vk::DeviceMemory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().flush_ranges(ranges) }
    }
    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<vk::DeviceMemory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().invalidate_ranges(ranges) }
    }
}

impl BufferDevice for SharedHeadlessDevice {
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(vk::Buffer, MemoryRequirements), DeviceError> {
        self.vk().create_buffer(size, usage)
    }
    unsafe fn bind_buffer_memory(
        &self,
        buffer: vk::Buffer,
        memory: vk::DeviceMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().bind_buffer_memory(buffer, memory, offset) }
    }
    unsafe fn destroy_buffer(&self, buffer: vk::Buffer) {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().destroy_buffer(buffer) }
    }
    unsafe fn buffer_device_address(&self, buffer: vk::Buffer) -> Result<u64, DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().buffer_device_address(buffer) }
    }
}

impl ImageDevice for SharedHeadlessDevice {
    fn create_image(
        &self,
        desc: &ImageDesc,
    ) -> Result<(vk::Image, MemoryRequirements), DeviceError> {
        self.vk().create_image(desc)
    }
    fn check_image_support(&self, desc: &ImageDesc) -> Result<(), DeviceError> {
        self.vk().check_image_support(desc)
    }
    unsafe fn bind_image_memory(
        &self,
        image: vk::Image,
        memory: vk::DeviceMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().bind_image_memory(image, memory, offset) }
    }
    unsafe fn destroy_image(&self, image: vk::Image) {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().destroy_image(image) }
    }
}

impl CopyQueue for SharedHeadlessDevice {
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, vk::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().submit_copies(commands, signal_value) }
    }
    fn completed_value(&self) -> Result<u64, DeviceError> {
        self.vk().completed_value()
    }
    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        self.vk().wait(value, timeout_ns)
    }
    fn completes_without_waiting(&self) -> bool {
        self.vk().completes_without_waiting()
    }
}

impl ImageCopyQueue for SharedHeadlessDevice {
    fn image_copy_granularity(&self) -> [u32; 3] {
        self.vk().image_copy_granularity()
    }
    unsafe fn submit_image_copies(
        &self,
        commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().submit_image_copies(commands, signal_value) }
    }
    unsafe fn submit_image_reads(
        &self,
        commands: &[ImageReadCommand<'_, vk::Buffer, vk::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().submit_image_reads(commands, signal_value) }
    }
    unsafe fn submit_moves(
        &self,
        buffers: &[CopyCommand<'_, vk::Buffer>],
        images: &[ImageMoveCommand<vk::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().submit_moves(buffers, images, signal_value) }
    }
}

impl ExternalTimelines for SharedHeadlessDevice {
    type ExternalTimeline = vk::Semaphore;

    unsafe fn wait_for_external(
        &self,
        timeline: vk::Semaphore,
        value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().wait_for_external(timeline, value) }
    }
    unsafe fn external_value(&self, timeline: vk::Semaphore) -> Result<u64, DeviceError> {
        // SAFETY: forwarded unchanged to the one device; the caller keeps its contract.
        unsafe { self.vk().external_value(timeline) }
    }
}
