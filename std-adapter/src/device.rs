//! The device as the coordinator holds it: one `Arc` shared by the pools (which own their device
//! by value) and the submission path.

use std::ptr::NonNull;
use std::sync::Arc;

use memkit_core::device::{
    CopyQueue, DeviceError, DeviceLimits, HeapBudget, MappedRange, MemoryAllocateInfo,
    MemoryDevice, MemoryProperties,
};

/// What a coordinator needs from a device: memory, buffers and a copy queue, usable from any
/// thread. Images need [`memkit_core::device::ImageDevice`] as well
/// ([`Coordinator::create_image`](crate::Coordinator::create_image)), and uploads into them
/// [`memkit_core::device::ImageCopyQueue`].
pub trait Device:
    CopyQueue<Memory: Send + Sync, Buffer: Send + Sync, Image: Send + Sync> + Send + Sync + 'static
{
}

impl<D> Device for D where
    D: CopyQueue<Memory: Send + Sync, Buffer: Send + Sync, Image: Send + Sync>
        + Send
        + Sync
        + 'static
{
}

/// An `Arc<D>` that is a [`MemoryDevice`] itself, so the pools can own one while the coordinator
/// keeps another.
pub(crate) struct SharedDevice<D>(pub(crate) Arc<D>);

impl<D: MemoryDevice> MemoryDevice for SharedDevice<D> {
    type Memory = D::Memory;
    type Buffer = D::Buffer;
    type Image = D::Image;

    fn memory_properties(&self) -> &MemoryProperties {
        self.0.memory_properties()
    }

    fn limits(&self) -> DeviceLimits {
        self.0.limits()
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        self.0.query_budget(out)
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<Self::Buffer, Self::Image>,
    ) -> Result<Self::Memory, DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract of `D::allocate_memory`.
        unsafe { self.0.allocate_memory(info) }
    }

    unsafe fn free_memory(&self, memory: Self::Memory) {
        // SAFETY: forwarded unchanged; the caller keeps the contract of `D::free_memory`.
        unsafe { self.0.free_memory(memory) }
    }

    unsafe fn map_memory(&self, memory: Self::Memory) -> Result<NonNull<u8>, DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract of `D::map_memory`.
        unsafe { self.0.map_memory(memory) }
    }

    unsafe fn unmap_memory(&self, memory: Self::Memory) {
        // SAFETY: forwarded unchanged; the caller keeps the contract of `D::unmap_memory`.
        unsafe { self.0.unmap_memory(memory) }
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<Self::Memory>]) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract of `D::flush_ranges`.
        unsafe { self.0.flush_ranges(ranges) }
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<Self::Memory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract of `D::invalidate_ranges`.
        unsafe { self.0.invalidate_ranges(ranges) }
    }
}
