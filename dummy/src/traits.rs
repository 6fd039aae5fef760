//! memkit-core's device traits over the safe inherent methods.
//!
//! The trait methods are `unsafe fn` because real backends rely on their contracts; the
//! simulator checks every contract instead (see `calls.rs`), so each impl only forwards. No
//! `unsafe` block is needed: implementing an `unsafe fn` is all that needs the lint allowed.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use memkit_core::device::{
    BufferDevice, BufferUsage, CopyCommand, CopyQueue, DeviceError, DeviceLimits,
    ExternalTimelines, HeapBudget, ImageCopyCommand, ImageCopyQueue, ImageDesc, ImageDevice,
    ImageMoveCommand, ImageReadCommand, MappedRange, MemoryAllocateInfo, MemoryDevice,
    MemoryProperties, MemoryRequirements, WaitStatus,
};

use crate::device::DummyDevice;
use crate::external::DummyTimeline;
use crate::handles::{DummyBuffer, DummyImage, DummyMemory};

impl MemoryDevice for DummyDevice {
    type Memory = DummyMemory;
    type Buffer = DummyBuffer;
    type Image = DummyImage;

    fn memory_properties(&self) -> &MemoryProperties {
        DummyDevice::memory_properties(self)
    }

    fn limits(&self) -> DeviceLimits {
        DummyDevice::limits(self)
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        DummyDevice::query_budget(self, out)
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<DummyBuffer, DummyImage>,
    ) -> Result<DummyMemory, DeviceError> {
        DummyDevice::allocate_memory(self, info)
    }

    unsafe fn free_memory(&self, memory: DummyMemory) {
        DummyDevice::free_memory(self, memory);
    }

    unsafe fn map_memory(&self, memory: DummyMemory) -> Result<NonNull<u8>, DeviceError> {
        DummyDevice::map_memory(self, memory)
    }

    unsafe fn unmap_memory(&self, memory: DummyMemory) {
        DummyDevice::unmap_memory(self, memory);
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<DummyMemory>]) -> Result<(), DeviceError> {
        DummyDevice::flush_ranges(self, ranges)
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<DummyMemory>],
    ) -> Result<(), DeviceError> {
        DummyDevice::invalidate_ranges(self, ranges)
    }
}

impl BufferDevice for DummyDevice {
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(DummyBuffer, MemoryRequirements), DeviceError> {
        DummyDevice::create_buffer(self, size, usage)
    }

    unsafe fn bind_buffer_memory(
        &self,
        buffer: DummyBuffer,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::bind_buffer_memory(self, buffer, memory, offset)
    }

    unsafe fn bind_aliased_buffer_memory(
        &self,
        buffer: DummyBuffer,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::bind_aliased_buffer_memory(self, buffer, memory, offset)
    }

    unsafe fn destroy_buffer(&self, buffer: DummyBuffer) {
        DummyDevice::destroy_buffer(self, buffer);
    }

    unsafe fn buffer_device_address(&self, buffer: DummyBuffer) -> Result<u64, DeviceError> {
        DummyDevice::buffer_device_address(self, buffer)
    }
}

impl ImageDevice for DummyDevice {
    fn create_image(
        &self,
        desc: &ImageDesc,
    ) -> Result<(DummyImage, MemoryRequirements), DeviceError> {
        DummyDevice::create_image(self, desc)
    }

    fn check_image_support(&self, desc: &ImageDesc) -> Result<(), DeviceError> {
        DummyDevice::check_image_support(self, desc)
    }

    unsafe fn bind_image_memory(
        &self,
        image: DummyImage,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::bind_image_memory(self, image, memory, offset)
    }

    unsafe fn bind_aliased_image_memory(
        &self,
        image: DummyImage,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::bind_aliased_image_memory(self, image, memory, offset)
    }

    unsafe fn destroy_image(&self, image: DummyImage) {
        DummyDevice::destroy_image(self, image);
    }
}

impl CopyQueue for DummyDevice {
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, DummyBuffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::submit_copies(self, commands, signal_value)
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        DummyDevice::completed_value(self)
    }

    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        DummyDevice::wait(self, value, timeout_ns)
    }

    fn completes_without_waiting(&self) -> bool {
        DummyDevice::completes_without_waiting(self)
    }
}

impl ExternalTimelines for DummyDevice {
    type ExternalTimeline = DummyTimeline;

    unsafe fn wait_for_external(
        &self,
        timeline: DummyTimeline,
        value: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::wait_for_external(self, timeline, value)
    }

    unsafe fn external_value(&self, timeline: DummyTimeline) -> Result<u64, DeviceError> {
        DummyDevice::external_value(self, timeline)
    }
}

impl ImageCopyQueue for DummyDevice {
    fn image_copy_granularity(&self) -> [u32; 3] {
        DummyDevice::image_copy_granularity(self)
    }

    unsafe fn submit_image_copies(
        &self,
        commands: &[ImageCopyCommand<'_, DummyBuffer, DummyImage>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::submit_image_copies(self, commands, signal_value)
    }

    unsafe fn submit_image_reads(
        &self,
        commands: &[ImageReadCommand<'_, DummyBuffer, DummyImage>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::submit_image_reads(self, commands, signal_value)
    }

    unsafe fn submit_moves(
        &self,
        buffers: &[CopyCommand<'_, DummyBuffer>],
        images: &[ImageMoveCommand<DummyImage>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        DummyDevice::submit_moves(self, buffers, images, signal_value)
    }
}
