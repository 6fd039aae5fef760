//! A buffer in a host-visible memory object of its own, mapped for as long as it lives: what
//! tools and tests write uploads into by hand and read a GPU buffer back through.
//!
//! Not for an engine's hot path (one memory object per buffer costs ~70 us on NVIDIA:
//! ../shared/GPU.md); the pools and the coordinator are. [`read_buffer`] is the one-call
//! read-back built on it.

use core::ptr::NonNull;

use ash::vk;
use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, DedicatedTo, DeviceError,
    InvalidArgument, MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryPropertyFlags,
    WaitStatus,
};

use crate::device::VulkanDevice;

/// A buffer bound at offset 0 of a host-visible memory object of its own, mapped.
///
/// Memory type: host-cached when the buffer is a copy destination (reads from it are fast),
/// otherwise the first host-visible type (write-combined staging on discrete GPUs). Non-coherent
/// types are flushed and invalidated by [`HostBuffer::write`] and [`HostBuffer::read`].
///
/// Destroy it with [`HostBuffer::destroy`]; dropping it leaks the buffer and its memory object
/// (a `VulkanDevice` does not outlive its owner's device, so it cannot be destroyed on drop).
#[derive(Debug)]
pub struct HostBuffer {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    ptr: NonNull<u8>,
    size: u64,
    coherent: bool,
}

// SAFETY: the handles are plain Vulkan handles and `ptr` points into a mapping that lives as
// long as the object, not tied to the thread that made it; the bytes are only reached through
// the unsafe `write` and `read`, whose contracts exclude GPU access at the same time, and they
// are copied in and out, never referenced past a call.
unsafe impl Send for HostBuffer {}
// SAFETY: sharing `&HostBuffer` lets several threads call `write` and `read` at once; their
// contracts forbid a `write` beside any other access to the same buffer and a `read` beside a
// `write` (only reads may overlap), so the raw copies never race. Every other `&self` method
// reads plain fields.
unsafe impl Sync for HostBuffer {}

impl HostBuffer {
    /// Creates a `size`-byte buffer with `usage`, gives it a host-visible memory object of its
    /// own (dedicated) and maps it.
    ///
    /// Errors: [`DeviceError::InvalidArgument`] with [`InvalidArgument::ZeroSize`] for a zero
    /// size or [`InvalidArgument::EmptyBufferUsage`] for an empty `usage`,
    /// [`DeviceError::MapFailed`] when no host-visible type can hold the buffer,
    /// [`DeviceError::OutOfDeviceMemory`] when the buffer needs more than one memory object may
    /// hold (`maxMemoryAllocationSize`) or than the chosen type's heap has, and what the device
    /// reports ([`DeviceError::DeviceLost`] once lost).
    pub fn new(device: &VulkanDevice, size: u64, usage: BufferUsage) -> Result<Self, DeviceError> {
        if size == 0 {
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        let (buffer, requirements) = device.create_buffer(size, usage)?;
        let types = device.memory_properties().types();
        let host = MemoryPropertyFlags::HOST_VISIBLE;
        let allowed = |i: &usize| {
            requirements.memory_type_bits & (1 << i) != 0 && types[*i].properties.contains(host)
        };
        let cached = host | MemoryPropertyFlags::HOST_CACHED;
        let preferred = usage
            .contains(BufferUsage::TRANSFER_DST)
            .then(|| {
                (0..types.len())
                    .filter(allowed)
                    .find(|&i| types[i].properties.contains(cached))
            })
            .flatten();
        let Some(memory_type) = preferred.or_else(|| (0..types.len()).find(allowed)) else {
            // SAFETY: created above, never bound or used.
            unsafe { device.destroy_buffer(buffer) };
            return Err(DeviceError::MapFailed);
        };
        // vkAllocateMemory's size may not exceed the heap (VUID-vkAllocateMemory-pAllocateInfo-
        // 01713), and above maxMemoryAllocationSize it may fail or misbehave: refuse both here.
        let heap = device
            .memory_properties()
            .heaps()
            .get(types[memory_type].heap_index as usize)
            .map_or(0, |heap| heap.size);
        if requirements.size > device.limits().max_memory_allocation_size
            || requirements.size > heap
        {
            // SAFETY: created above, never bound or used.
            unsafe { device.destroy_buffer(buffer) };
            return Err(DeviceError::OutOfDeviceMemory);
        }
        let coherent = types[memory_type]
            .properties
            .contains(MemoryPropertyFlags::HOST_COHERENT);
        let info = MemoryAllocateInfo {
            size: requirements.size,
            memory_type: memory_type as u32,
            dedicated_to: Some(DedicatedTo::Buffer(buffer)),
            priority: 0.5,
            device_address: false,
        };
        // SAFETY: the type index is the device's own and allowed for the buffer; the size is
        // the buffer's requirement (nonzero), within the type's heap and the largest allocation
        // (checked above); the buffer is alive and unbound.
        let memory = match unsafe { device.allocate_memory(&info) } {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: created above, never bound or used.
                unsafe { device.destroy_buffer(buffer) };
                return Err(e);
            }
        };
        // SAFETY: both alive and from this device; offset 0 of an object of the buffer's size,
        // of an allowed type; then the object is host-visible and not mapped.
        let mapped = unsafe { device.bind_buffer_memory(buffer, memory, 0) }
            .and_then(|()| unsafe { device.map_memory(memory) });
        match mapped {
            Ok(ptr) => Ok(Self {
                buffer,
                memory,
                ptr,
                size,
                coherent,
            }),
            Err(e) => {
                // SAFETY: never used by the GPU; the buffer goes before its memory.
                unsafe {
                    device.destroy_buffer(buffer);
                    device.free_memory(memory);
                }
                Err(e)
            }
        }
    }

    /// The buffer, for copy commands.
    pub fn buffer(&self) -> vk::Buffer {
        self.buffer
    }

    /// The memory object it is bound to.
    pub fn memory(&self) -> vk::DeviceMemory {
        self.memory
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Copies `bytes` to `offset` and, on non-coherent memory, flushes the whole mapping.
    /// [`DeviceError::InvalidArgument`]`(`[`InvalidArgument::RangeOutOfBounds`]`)` when the range
    /// does not fit.
    ///
    /// # Safety
    /// - No GPU access to the buffer is pending (every submission using it has completed);
    /// - no other thread reads or writes the buffer during the call.
    pub unsafe fn write(
        &self,
        device: &VulkanDevice,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), DeviceError> {
        let end = offset.checked_add(bytes.len() as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::RangeOutOfBounds,
            ));
        }
        // SAFETY: the range lies inside the mapping (checked); neither the GPU nor another
        // thread touches it (the caller's contract); `bytes` is a Rust slice, so it is not this
        // mapping, and no reference to the mapping outlives a call.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset as usize),
                bytes.len(),
            );
        }
        if self.coherent {
            return Ok(());
        }
        // SAFETY: the object is alive and mapped; the whole-object range is always valid.
        unsafe { device.flush_ranges(&[self.whole()]) }
    }

    /// The buffer's bytes as the host sees them, after invalidating non-coherent memory.
    ///
    /// # Safety
    /// - No GPU access to the buffer is pending: every copy into it has completed (its timeline
    ///   value or fence was waited) and made its writes available to the host;
    /// - no other thread writes the buffer during the call (other reads may run beside it).
    pub unsafe fn read(&self, device: &VulkanDevice) -> Result<Vec<u8>, DeviceError> {
        if !self.coherent {
            // SAFETY: the object is alive and mapped; the whole-object range is always valid.
            unsafe { device.invalidate_ranges(&[self.whole()]) }?;
        }
        // SAFETY: the mapping covers `size` bytes, and neither the GPU nor another thread
        // writes them while the slice lives (the caller's contract); the slice is copied out and
        // dropped before returning.
        Ok(unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.size as usize) }.to_vec())
    }

    /// Unmaps, destroys the buffer and frees its memory.
    ///
    /// # Safety
    /// No GPU access to the buffer is pending; `device` is the one it was made on.
    pub unsafe fn destroy(self, device: &VulkanDevice) {
        // SAFETY: the caller's contract; the buffer goes before its memory.
        unsafe {
            device.unmap_memory(self.memory);
            device.destroy_buffer(self.buffer);
            device.free_memory(self.memory);
        }
    }

    fn whole(&self) -> MappedRange<vk::DeviceMemory> {
        MappedRange {
            memory: self.memory,
            offset: 0,
            size: vk::WHOLE_SIZE,
        }
    }
}

/// Reads `len` bytes from the start of `source` back to the host: a [`HostBuffer`], one copy on
/// memkit's copy queue signalling `value`, a wait of at most `timeout_ns`, and the bytes.
///
/// Errors: [`DeviceError::Timeout`] when the copy did not finish in time, and what the device
/// reports. When the submission itself fails nothing was left in flight and everything is freed;
/// when the wait times out or fails (a device lost meanwhile, really or simulated, whose GPU may
/// still be copying), the read-back buffer and its memory object are leaked rather than freed
/// under the GPU (the validation layer reports them at teardown).
///
/// # Safety
/// - `source` is alive, has [`BufferUsage::TRANSFER_SRC`], holds at least `len` bytes, and stays
///   alive until this returns; it is usable on memkit's transfer queue (owned or concurrent);
/// - `value` is greater than every value submitted on `device` so far, and nothing else is
///   submitted on `device` until this returns; the writes to read were submitted before it.
pub unsafe fn read_buffer(
    device: &VulkanDevice,
    source: vk::Buffer,
    len: u64,
    value: u64,
    timeout_ns: u64,
) -> Result<Vec<u8>, DeviceError> {
    let readback = HostBuffer::new(device, len, BufferUsage::TRANSFER_DST)?;
    let region = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: len,
    }];
    let copy = CopyCommand {
        src: source,
        dst: readback.buffer,
        regions: &region,
    };
    // SAFETY: both buffers are alive and bound until the wait below; the region lies in both;
    // `value` is above every submitted value (the caller's contract).
    let submitted = unsafe { device.submit_copies(&[copy], value) };
    // SAFETY: the copy into `readback` is the submission of `value`, and the only one using it.
    unsafe { finish_readback(device, readback, submitted, value, timeout_ns) }
}

/// The end of a read-back into `readback` by the submission of `value`, whose result is
/// `submitted`: when it failed, destroys the buffer (a failed submission leaves nothing of
/// itself in flight; a split one waits for the parts it got out before failing); otherwise waits
/// at most `timeout_ns` for `value`, and reads the bytes out and destroys the buffer.
/// [`DeviceError::Timeout`] or a failed wait leak the buffer instead of freeing it under a GPU
/// that may still be copying.
///
/// # Safety
/// The submission of `value` is the only GPU work that uses `readback`, and it makes its
/// transfer writes available to the host when `value` signals.
pub(crate) unsafe fn finish_readback(
    device: &VulkanDevice,
    readback: HostBuffer,
    submitted: Result<(), DeviceError>,
    value: u64,
    timeout_ns: u64,
) -> Result<Vec<u8>, DeviceError> {
    if let Err(e) = submitted {
        // SAFETY: nothing of the failed submission is in flight, so the GPU never uses it.
        unsafe { readback.destroy(device) };
        return Err(e);
    }
    match device.wait(value, timeout_ns) {
        Ok(WaitStatus::Completed) => {}
        // The copy may still be running: dropping `readback` leaks it instead of freeing it under
        // the GPU.
        Ok(WaitStatus::TimedOut) => return Err(DeviceError::Timeout),
        Err(e) => return Err(e),
    }
    // SAFETY: the copy completed (waited), and its writes are available to the host (the
    // caller's contract).
    let bytes = unsafe { readback.read(device) };
    // SAFETY: the only submission using it completed.
    unsafe { readback.destroy(device) };
    bytes
}
