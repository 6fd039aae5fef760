//! What a backend provides: its memory types and heaps, its limits, an optional budget query,
//! memory objects (allocate, free, map, flush, invalidate), buffers and images bound to them, and
//! a copy queue that signals a timeline.
//!
//! The traits follow Vulkan's model (memory types grouped into heaps, `VkDeviceMemory`, timeline
//! semaphores) because it is the most explicit of the three APIs; D3D12 (heaps, `ID3D12Fence`) and
//! Metal (`MTLHeap`, `MTLSharedEvent`) map onto the same shapes. Every call takes `&self`: real
//! drivers are free-threaded for these entry points, and a backend that is not synchronises
//! inside.
//!
//! Core never blocks: it never calls [`CopyQueue::wait`]. It hands the adapter the timeline value
//! to wait for, and the adapter decides.
//!
//! # Writing a backend
//!
//! A backend implements three traits, or four with images (five to upload into them). Each unsafe method's `# Safety` list
//! is what its callers promise the backend; each method's own text is what the backend promises
//! back. A complete one over plain host memory, with core driven end to end on top of it (pools,
//! staging ring, transfer scheduler, timeline, frame pacer) and the result checked byte for byte,
//! is `core/examples/host_backend.rs`: `cargo run -p memkit-core --example host_backend`.
//!
//! - [`MemoryDevice`]: what the [`MemoryPools`](crate::MemoryPools) call. Describe the memory
//!   once, through [`MemoryProperties::new`] (which validates it) and [`DeviceLimits`] (the pools
//!   refuse limits that fail [`DeviceLimits::validate`]); both stay constant for the device's
//!   life. [`query_budget`](MemoryDevice::query_budget) may answer `false`.
//!   [`allocate_memory`](MemoryDevice::allocate_memory) reports a full heap as
//!   [`DeviceError::OutOfDeviceMemory`] (the pools then try the next memory type) and the object
//!   count as [`DeviceError::TooManyObjects`]; [`map_memory`](MemoryDevice::map_memory) returns an
//!   address aligned to `min_memory_map_alignment` that stays valid until the object is unmapped.
//!   The pools map each host-visible object once, when they create it, and unmap it right before
//!   freeing it; they call [`flush_ranges`](MemoryDevice::flush_ranges) and
//!   [`invalidate_ranges`](MemoryDevice::invalidate_ranges) only for memory without
//!   `HOST_COHERENT`.
//! - [`BufferDevice`]: core never creates a buffer itself; the engine (or memkit-std) does, asks
//!   the pools for memory with the [`MemoryRequirements`] it reports
//!   ([`AllocationRequest::new`](crate::AllocationRequest::new)), and binds the buffer at the
//!   allocation's memory and offset. `memory_type_bits` names the types that can back the
//!   buffer, and `alignment` is a power of two.
//! - [`ImageDevice`]: only for a backend with images. Without them, set
//!   `type Image = core::convert::Infallible` and leave this trait out (and the next).
//! - [`ImageCopyQueue`]: only for a backend that uploads into images. Check every region with
//!   [`ImageCopy::check`] first; record the layout transitions its `submit_image_copies` names.
//! - [`CopyQueue`]: copies and one timeline. [`submit_copies`](CopyQueue::submit_copies) is all
//!   or nothing; [`completed_value`](CopyQueue::completed_value) never blocks and never goes down
//!   ([`TimelineTracker::signal`](crate::TimelineTracker::signal) refuses a value that did).
//!
//! Every error is a [`DeviceError`], never a panic. An argument the API would refuse (a zero
//! size, a timeline value that does not rise) is checked before the API is called and reported
//! as [`DeviceError::InvalidArgument`] with the rule it broke; a result the backend's API reports
//! that no variant names becomes [`DeviceError::Unexpected`] with the API's raw code. Once the
//! device is lost, every call that can fail reports [`DeviceError::DeviceLost`].
//!
//! What the engine does between the traits and core, per submission (the example's `Uploader`
//! does each step):
//! 1. drain the [`RingConsumer`](crate::RingConsumer), and flush the drained ranges with
//!    [`MemoryPools::flush`](crate::MemoryPools::flush) when the ring's memory is not coherent
//!    (`submit_copies` requires flushed sources; neither the ring nor the scheduler flushes);
//! 2. plan the [`TransferScheduler`](crate::TransferScheduler): one [`CopyCommand`] per entry of
//!    [`TransferPlan::batches`](crate::TransferPlan::batches), from the ring's buffer to the
//!    batch's destination;
//! 3. take the value from [`TimelineTracker::submit`](crate::TimelineTracker::submit) and submit
//!    the commands with it;
//! 4. only once the submission succeeded, [`RingConsumer::mark`](crate::RingConsumer::mark) the
//!    drained ranges with the value. Every range marked must be read by this submission or an
//!    earlier one. With several producer threads, a producer's commit and its push to the
//!    scheduler must look like one step to the submitter (both under the lock it holds from
//!    drain to mark): a range drained before its upload was pushed would be marked with this
//!    value and come back when this submission completes, while a later one still reads it;
//! 5. later, feed [`completed_value`](CopyQueue::completed_value) to
//!    [`TimelineTracker::signal`](crate::TimelineTracker::signal) and
//!    [`RingConsumer::release_completed`](crate::RingConsumer::release_completed). Staging
//!    space comes back there; a frame slot ([`Frame::wait_for`](crate::Frame::wait_for)) or a
//!    buffer to destroy and free comes back once
//!    [`TimelineTracker::is_complete`](crate::TimelineTracker::is_complete) says the value of
//!    its last use completed.
//!
//! If `submit_copies` fails, nothing of it is in flight, but the tracker has already taken the
//! value: submit again with the same value, or that value completes only when a later
//! submission does.

use core::fmt;
use core::ptr::NonNull;

mod image;
mod image_copy;
#[cfg(test)]
mod tests;

pub use image::{
    AstcBlock, Compression, ImageDesc, ImageDescError, ImageFlags, ImageFormat, ImageUsage,
};
pub use image_copy::{
    ImageCopy, ImageCopyCommand, ImageCopyError, ImageLayout, ImageMoveCommand, ImageReadCommand,
};

/// Vulkan's `VK_MAX_MEMORY_TYPES`.
pub const MAX_MEMORY_TYPES: usize = 32;
/// Vulkan's `VK_MAX_MEMORY_HEAPS`.
pub const MAX_MEMORY_HEAPS: usize = 16;

bitflags::bitflags! {
    /// Property flags of a memory type, laid out as Vulkan's `VkMemoryPropertyFlags`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MemoryPropertyFlags: u32 {
        /// Fast for the device to access.
        const DEVICE_LOCAL = 1 << 0;
        /// The host can map it.
        const HOST_VISIBLE = 1 << 1;
        /// Host writes are visible to the device without a flush, and device writes to the host
        /// without an invalidate.
        const HOST_COHERENT = 1 << 2;
        /// Host reads are cached (fast readback).
        const HOST_CACHED = 1 << 3;
        /// Backed lazily (tile memory on mobile GPUs); only for transient attachments.
        const LAZILY_ALLOCATED = 1 << 4;
        /// Protected memory; memkit never picks it unless asked by type index.
        const PROTECTED = 1 << 5;
        // Bits memkit does not know (AMD's device-coherent, say) are kept, not dropped.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// Flags of a memory heap, laid out as Vulkan's `VkMemoryHeapFlags`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MemoryHeapFlags: u32 {
        /// The heap is device-local (VRAM on a discrete GPU).
        const DEVICE_LOCAL = 1 << 0;
        /// Replicated across a device group.
        const MULTI_INSTANCE = 1 << 1;
        const _ = !0;
    }
}

/// One memory type: its properties and the heap it draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryType {
    /// What the memory can do.
    pub properties: MemoryPropertyFlags,
    /// Index into [`MemoryProperties::heaps`].
    pub heap_index: u32,
}

/// One memory heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryHeap {
    /// Bytes in the heap as the device reports it.
    pub size: u64,
    /// Heap flags.
    pub flags: MemoryHeapFlags,
}

/// Why a device description is invalid.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DescriptionError {
    /// More than [`MAX_MEMORY_TYPES`] types or [`MAX_MEMORY_HEAPS`] heaps, or none.
    BadCount,
    /// A memory type names a heap that does not exist.
    BadHeapIndex,
    /// A limit that must be a power of two (granularity, atom size, map alignment) is not.
    LimitNotPowerOfTwo,
}

impl fmt::Display for DescriptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadCount => "memory type or heap count is zero or above Vulkan's maximum",
            Self::BadHeapIndex => "a memory type names a heap that does not exist",
            Self::LimitNotPowerOfTwo => "a granularity or alignment limit is not a power of two",
        })
    }
}

impl core::error::Error for DescriptionError {}

/// The device's memory types and heaps, copied into fixed arrays (no heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryProperties {
    types: [MemoryType; MAX_MEMORY_TYPES],
    type_count: u8,
    heaps: [MemoryHeap; MAX_MEMORY_HEAPS],
    heap_count: u8,
}

impl MemoryProperties {
    /// Validates and copies a description.
    pub fn new(types: &[MemoryType], heaps: &[MemoryHeap]) -> Result<Self, DescriptionError> {
        if types.is_empty()
            || heaps.is_empty()
            || types.len() > MAX_MEMORY_TYPES
            || heaps.len() > MAX_MEMORY_HEAPS
        {
            return Err(DescriptionError::BadCount);
        }
        if types.iter().any(|t| t.heap_index as usize >= heaps.len()) {
            return Err(DescriptionError::BadHeapIndex);
        }
        let mut out = Self {
            types: [MemoryType {
                properties: MemoryPropertyFlags::empty(),
                heap_index: 0,
            }; MAX_MEMORY_TYPES],
            type_count: types.len() as u8,
            heaps: [MemoryHeap {
                size: 0,
                flags: MemoryHeapFlags::empty(),
            }; MAX_MEMORY_HEAPS],
            heap_count: heaps.len() as u8,
        };
        out.types[..types.len()].copy_from_slice(types);
        out.heaps[..heaps.len()].copy_from_slice(heaps);
        Ok(out)
    }

    /// The memory types, indexed as the device indexes them.
    pub fn types(&self) -> &[MemoryType] {
        &self.types[..usize::from(self.type_count)]
    }

    /// The heaps, indexed as the device indexes them.
    pub fn heaps(&self) -> &[MemoryHeap] {
        &self.heaps[..usize::from(self.heap_count)]
    }
}

/// Limits the device reports that memory management must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceLimits {
    /// Most memory objects that may exist at once (`maxMemoryAllocationCount`; 4096 on many
    /// drivers). Dedicated objects count too.
    pub max_memory_allocation_count: u32,
    /// Largest single memory object (`maxMemoryAllocationSize`).
    pub max_memory_allocation_size: u64,
    /// Linear and optimal resources closer than this must not share a page of this size
    /// (`bufferImageGranularity`).
    pub buffer_image_granularity: u64,
    /// Flush and invalidate ranges of non-coherent memory are multiples of this
    /// (`nonCoherentAtomSize`).
    pub non_coherent_atom_size: u64,
    /// Alignment of a mapped pointer (`minMemoryMapAlignment`).
    pub min_memory_map_alignment: u64,
    /// Alignment of an offset at which a buffer range is bound as a uniform, storage or texel
    /// buffer, dynamic offsets included: the largest of `minUniformBufferOffsetAlignment`,
    /// `minStorageBufferOffsetAlignment` and `minTexelBufferOffsetAlignment` (Vulkan allows at
    /// most 256 for each).
    pub min_buffer_offset_alignment: u64,
}

impl DeviceLimits {
    /// Checks the power-of-two limits.
    pub fn validate(&self) -> Result<(), DescriptionError> {
        let pow2 = [
            self.buffer_image_granularity,
            self.non_coherent_atom_size,
            self.min_memory_map_alignment,
            self.min_buffer_offset_alignment,
        ];
        if pow2.iter().all(|v| v.is_power_of_two()) {
            Ok(())
        } else {
            Err(DescriptionError::LimitNotPowerOfTwo)
        }
    }
}

/// A heap's budget as the device reports it (`VK_EXT_memory_budget`): how much this process may
/// use, and how much it uses, including memory it did not allocate through memkit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeapBudget {
    /// Bytes this process can allocate from the heap before the driver may fail or page.
    pub budget: u64,
    /// Bytes this process currently uses in the heap.
    pub usage: u64,
}

/// Whether a resource wants a memory object of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DedicatedHint {
    /// Sub-allocate freely.
    #[default]
    None,
    /// The driver runs faster with a dedicated object (`prefersDedicatedAllocation`).
    Preferred,
    /// The driver requires one (`requiresDedicatedAllocation`).
    Required,
}

/// The resource a dedicated memory object is made for (`VkMemoryDedicatedAllocateInfo`): a
/// buffer `B` or an image `I` of the device ([`MemoryDevice::Buffer`], [`MemoryDevice::Image`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DedicatedTo<B, I> {
    /// A buffer.
    Buffer(B),
    /// An image.
    Image(I),
}

/// What to allocate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryAllocateInfo<B, I> {
    /// Bytes.
    pub size: u64,
    /// Index of the memory type.
    pub memory_type: u32,
    /// Set when the object is dedicated to one resource.
    pub dedicated_to: Option<DedicatedTo<B, I>>,
    /// Residency priority in `[0, 1]` (`VK_EXT_memory_priority`); backends without it ignore it.
    pub priority: f32,
    /// Allocate with device-address support (`VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT`).
    pub device_address: bool,
}

/// A range of a mapped memory object, for flush and invalidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MappedRange<M> {
    /// The memory object.
    pub memory: M,
    /// Byte offset from the start of the object.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

/// Errors a device call reports. Backends map their API's results onto these; a result they do
/// not expect becomes [`DeviceError::Unexpected`] with the raw code, never a panic.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceError {
    /// The device heap is exhausted.
    OutOfDeviceMemory,
    /// Host memory is exhausted.
    OutOfHostMemory,
    /// `maxMemoryAllocationCount` objects exist already.
    TooManyObjects,
    /// Mapping failed.
    MapFailed,
    /// The device is lost; everything in flight is gone and nothing will complete.
    DeviceLost,
    /// The operation timed out.
    Timeout,
    /// An image description the backend refused before calling the driver.
    InvalidImage(ImageDescError),
    /// A buffer-to-image copy region the backend refused before calling the driver
    /// ([`ImageCopy::check`]).
    InvalidImageCopy(ImageCopyError),
    /// An argument the backend refused before calling the driver, which would reject it (in
    /// Vulkan, an argument that breaks a valid-usage rule, which the driver need not even
    /// report); the variant says which rule.
    InvalidArgument(InvalidArgument),
    /// The call needs a feature the device was not created with: device addresses without
    /// `bufferDeviceAddress`, timeline semaphores or copy lanes below Vulkan 1.2 or without
    /// `timelineSemaphore`, anything below Vulkan 1.1.
    FeatureNotEnabled,
    /// The device describes its memory in a way memkit cannot use (more memory types or heaps
    /// than Vulkan allows, a type naming a missing heap, a granularity that is not a power of
    /// two): a broken driver, or a backend's description of its own device that is wrong.
    InvalidDescription(DescriptionError),
    /// A result code the backend did not expect.
    Unexpected(i32),
}

/// Which rule an argument broke, in [`DeviceError::InvalidArgument`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvalidArgument {
    /// A buffer or memory object of zero bytes.
    ZeroSize,
    /// A buffer with no usage flags: every buffer needs at least one use.
    EmptyBufferUsage,
    /// A byte range that does not lie inside its buffer or memory object.
    RangeOutOfBounds,
    /// A memory type index the device does not have.
    UnknownMemoryType,
    /// A queue family the device does not have.
    UnknownQueueFamily,
    /// Options that exclude each other, such as releasing buffers to another queue family when
    /// they are shared by several families at once and so have no one owner to release.
    ConflictingOptions,
    /// A timeline value to signal that is not above the last one submitted: a timeline only
    /// rises.
    TimelineNotIncreasing,
    /// A timeline (an application's, to wait for) that this device does not know.
    UnknownTimeline,
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroSize => "a buffer or memory object of zero bytes",
            Self::EmptyBufferUsage => "a buffer needs at least one usage flag",
            Self::RangeOutOfBounds => "the range does not lie inside its object",
            Self::UnknownMemoryType => "the device has no such memory type",
            Self::UnknownQueueFamily => "the device has no such queue family",
            Self::ConflictingOptions => "the options exclude each other",
            Self::TimelineNotIncreasing => {
                "the timeline value to signal is not above the last one submitted"
            }
            Self::UnknownTimeline => "the device does not know that timeline",
        })
    }
}

impl core::error::Error for InvalidArgument {}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfDeviceMemory => f.write_str("out of device memory"),
            Self::OutOfHostMemory => f.write_str("out of host memory"),
            Self::TooManyObjects => f.write_str("too many memory objects"),
            Self::MapFailed => f.write_str("mapping memory failed"),
            Self::DeviceLost => f.write_str("the device was lost"),
            Self::Timeout => f.write_str("timed out"),
            Self::InvalidImage(e) => write!(f, "invalid image: {e}"),
            Self::InvalidImageCopy(e) => write!(f, "invalid image copy: {e}"),
            Self::InvalidArgument(e) => write!(f, "invalid argument: {e}"),
            Self::FeatureNotEnabled => f.write_str("the device was not created with that feature"),
            Self::InvalidDescription(e) => write!(f, "invalid device description: {e}"),
            Self::Unexpected(code) => write!(f, "unexpected device result {code}"),
        }
    }
}

impl core::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::InvalidImage(e) => Some(e),
            Self::InvalidImageCopy(e) => Some(e),
            Self::InvalidArgument(e) => Some(e),
            Self::InvalidDescription(e) => Some(e),
            _ => None,
        }
    }
}

/// Memory objects: the part of a device that the memory-type pools drive.
pub trait MemoryDevice {
    /// A memory object (`VkDeviceMemory`, `ID3D12Heap`, `MTLHeap`).
    type Memory: Copy + Eq + fmt::Debug;
    /// A buffer (`VkBuffer`), named in dedicated allocations.
    type Buffer: Copy + Eq + fmt::Debug;
    /// An image (`VkImage`), named in dedicated allocations. A backend without images uses
    /// [`core::convert::Infallible`].
    type Image: Copy + Eq + fmt::Debug;

    /// The memory types and heaps. Constant for the device's life.
    fn memory_properties(&self) -> &MemoryProperties;

    /// The limits. Constant for the device's life.
    fn limits(&self) -> DeviceLimits;

    /// Fills `out[i]` with heap `i`'s budget and returns `true`, or returns `false` when the
    /// device cannot report budgets (then callers fall back to a share of the heap size). The
    /// pools pass one element per heap of [`MemoryDevice::memory_properties`].
    fn query_budget(&self, out: &mut [HeapBudget]) -> bool;

    /// Allocates a memory object.
    ///
    /// # Safety
    /// - `info.memory_type` is below `memory_properties().types().len()`;
    /// - `info.size` is nonzero and at most `limits().max_memory_allocation_size`;
    /// - a buffer or image named in `info.dedicated_to` was made by this device, is alive, is not
    ///   bound to memory yet, and requires exactly `info.size` bytes.
    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<Self::Buffer, Self::Image>,
    ) -> Result<Self::Memory, DeviceError>;

    /// Frees a memory object.
    ///
    /// # Safety
    /// - `memory` was allocated by this device and is not freed yet;
    /// - the GPU has finished every use of it (its last timeline value completed);
    /// - it is unmapped, or the backend unmaps on free (Vulkan does);
    /// - no live buffer or image is still bound to it.
    unsafe fn free_memory(&self, memory: Self::Memory);

    /// Maps the whole object and returns the host address of its first byte, aligned to
    /// `limits().min_memory_map_alignment`. memkit maps each object at most once and keeps it
    /// mapped.
    ///
    /// # Safety
    /// - `memory` is alive, of a `HOST_VISIBLE` type, and not mapped already.
    unsafe fn map_memory(&self, memory: Self::Memory) -> Result<NonNull<u8>, DeviceError>;

    /// Unmaps an object mapped with [`MemoryDevice::map_memory`].
    ///
    /// # Safety
    /// - `memory` is alive and mapped; no pointer into the mapping is used afterwards.
    unsafe fn unmap_memory(&self, memory: Self::Memory);

    /// Makes host writes to the ranges visible to the device (non-coherent memory).
    ///
    /// # Safety
    /// - every range's object is alive and mapped;
    /// - offsets are multiples of `non_coherent_atom_size`, and each size is a multiple of it or
    ///   reaches the end of the object.
    unsafe fn flush_ranges(&self, ranges: &[MappedRange<Self::Memory>]) -> Result<(), DeviceError>;

    /// Makes device writes to the ranges visible to the host (non-coherent memory).
    ///
    /// # Safety
    /// As for [`MemoryDevice::flush_ranges`].
    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<Self::Memory>],
    ) -> Result<(), DeviceError>;
}

/// A shared reference to a device is a device, so the pools can borrow the device
/// (`MemoryPools<&Device, ..>`) as well as own it (or an `Arc` of it, through the adapter).
impl<T: MemoryDevice + ?Sized> MemoryDevice for &T {
    type Memory = T::Memory;
    type Buffer = T::Buffer;
    type Image = T::Image;

    fn memory_properties(&self) -> &MemoryProperties {
        (**self).memory_properties()
    }

    fn limits(&self) -> DeviceLimits {
        (**self).limits()
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        (**self).query_budget(out)
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<Self::Buffer, Self::Image>,
    ) -> Result<Self::Memory, DeviceError> {
        // SAFETY: the caller keeps this trait's contract, which is `T`'s.
        unsafe { (**self).allocate_memory(info) }
    }

    unsafe fn free_memory(&self, memory: Self::Memory) {
        // SAFETY: as above.
        unsafe { (**self).free_memory(memory) }
    }

    unsafe fn map_memory(&self, memory: Self::Memory) -> Result<NonNull<u8>, DeviceError> {
        // SAFETY: as above.
        unsafe { (**self).map_memory(memory) }
    }

    unsafe fn unmap_memory(&self, memory: Self::Memory) {
        // SAFETY: as above.
        unsafe { (**self).unmap_memory(memory) }
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<Self::Memory>]) -> Result<(), DeviceError> {
        // SAFETY: as above.
        unsafe { (**self).flush_ranges(ranges) }
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<Self::Memory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: as above.
        unsafe { (**self).invalidate_ranges(ranges) }
    }
}

bitflags::bitflags! {
    /// How a buffer will be used, laid out as Vulkan's `VkBufferUsageFlags`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct BufferUsage: u32 {
        /// Source of copies.
        const TRANSFER_SRC = 1 << 0;
        /// Destination of copies.
        const TRANSFER_DST = 1 << 1;
        /// Uniform buffer.
        const UNIFORM = 1 << 4;
        /// Storage buffer.
        const STORAGE = 1 << 5;
        /// Index buffer.
        const INDEX = 1 << 6;
        /// Vertex buffer.
        const VERTEX = 1 << 7;
        /// Indirect arguments.
        const INDIRECT = 1 << 8;
        /// Shader device address.
        const DEVICE_ADDRESS = 1 << 17;
    }
}

/// What memory a resource needs (`VkMemoryRequirements` plus the dedicated answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryRequirements {
    /// Bytes to bind.
    pub size: u64,
    /// Alignment of the bound offset (a power of two).
    pub alignment: u64,
    /// Bit `i` set when memory type `i` can back the resource.
    pub memory_type_bits: u32,
    /// Whether the driver wants a memory object of its own for it.
    pub dedicated: DedicatedHint,
}

/// Buffers: created unbound, bound to a range of a memory object, destroyed.
pub trait BufferDevice: MemoryDevice {
    /// Creates a buffer and reports what memory it needs.
    ///
    /// What the graphics APIs refuse is an error, not a panic, and the driver never sees it: a
    /// zero `size` is [`DeviceError::InvalidArgument`]`(`[`InvalidArgument::ZeroSize`]`)`, an
    /// empty `usage` [`InvalidArgument::EmptyBufferUsage`].
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(Self::Buffer, MemoryRequirements), DeviceError>;

    /// Binds a buffer to `[offset, offset + requirements.size)` of `memory`.
    ///
    /// # Safety
    /// - `buffer` and `memory` are alive and from this device; `buffer` is not bound yet;
    /// - `offset` is a multiple of the buffer's required alignment and the range lies inside the
    ///   object, whose type is allowed by the buffer's `memory_type_bits`.
    unsafe fn bind_buffer_memory(
        &self,
        buffer: Self::Buffer,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError>;

    /// Binds a buffer to `[offset, offset + requirements.size)` of `memory`, where other
    /// buffers or images are bound on purpose too (memory aliasing: transient resources never in
    /// use at the same time, placed by [`crate::aliasing::plan_aliasing`]). Vulkan binds it as
    /// [`bind_buffer_memory`](Self::bind_buffer_memory) does, which is what this default does;
    /// a backend that checks bindings (the simulator) overrides it to allow the overlap.
    ///
    /// # Safety
    /// As [`bind_buffer_memory`](Self::bind_buffer_memory); the caller orders every use of the
    /// resources sharing bytes (one is done with before another is used), keeps buffers and
    /// optimal images in use together off each other's `bufferImageGranularity` pages, and
    /// treats a resource's contents as lost once another one sharing its bytes was used.
    unsafe fn bind_aliased_buffer_memory(
        &self,
        buffer: Self::Buffer,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: the caller upholds `bind_buffer_memory`'s contract (this one's includes it).
        unsafe { self.bind_buffer_memory(buffer, memory, offset) }
    }

    /// Destroys a buffer.
    ///
    /// # Safety
    /// - `buffer` is alive and from this device, and the GPU has finished every use of it.
    unsafe fn destroy_buffer(&self, buffer: Self::Buffer);

    /// The address shaders reach the buffer's first byte at (`vkGetBufferDeviceAddress`):
    /// bindless engines hand such addresses to their shaders in push constants or other
    /// buffers. A backend without device addresses refuses with
    /// [`DeviceError::FeatureNotEnabled`]. (No default: a wrapper that forgot to forward it
    /// would refuse silently.)
    ///
    /// # Safety
    /// - `buffer` is alive and from this device, was created with
    ///   [`BufferUsage::DEVICE_ADDRESS`], and is bound to memory allocated with device-address
    ///   support ([`MemoryAllocateInfo::device_address`]).
    unsafe fn buffer_device_address(&self, buffer: Self::Buffer) -> Result<u64, DeviceError>;
}

/// Images: created unbound with optimal tiling, bound to a range of a memory object, destroyed.
///
/// An image is an optimal resource: an allocation request for one says
/// [`ResourceKind::Optimal`](crate::ResourceKind::Optimal), so that the pools keep it off the
/// `bufferImageGranularity` pages of linear resources. When its requirements say
/// [`DedicatedHint::Required`], its memory comes from
/// `MemoryPools::allocate_dedicated_to(.., DedicatedTo::Image(image))`.
pub trait ImageDevice: MemoryDevice {
    /// Creates an image and reports what memory it needs. A description that fails
    /// [`ImageDesc::validate`], or that the device does not support, is refused with
    /// [`DeviceError::InvalidImage`] before the driver sees it.
    fn create_image(
        &self,
        desc: &ImageDesc,
    ) -> Result<(Self::Image, MemoryRequirements), DeviceError>;

    /// Whether [`create_image`](Self::create_image) would accept `desc`, asked without creating
    /// anything: `Ok(())`, or the [`DeviceError::InvalidImage`] it would refuse the description
    /// with ([`DeviceError::DeviceLost`] on a lost device). An engine picks formats with it, for
    /// example the first depth-stencil format of a list that the device has. Running out of
    /// memory is not foreseen: that is creation's and allocation's to report.
    fn check_image_support(&self, desc: &ImageDesc) -> Result<(), DeviceError>;

    /// Binds an image to `[offset, offset + requirements.size)` of `memory`.
    ///
    /// # Safety
    /// - `image` and `memory` are alive and from this device; `image` is not bound yet;
    /// - `offset` is a multiple of the image's required alignment and the range lies inside the
    ///   object, whose type is allowed by the image's `memory_type_bits`;
    /// - when the image requires a dedicated object, `memory` was allocated dedicated to it and
    ///   `offset` is 0.
    unsafe fn bind_image_memory(
        &self,
        image: Self::Image,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError>;

    /// Binds an image to `[offset, offset + requirements.size)` of `memory`, where other images
    /// or buffers are bound on purpose too (memory aliasing: transient resources never in use
    /// at the same time, placed by [`crate::aliasing::plan_aliasing`]). Vulkan binds it as
    /// [`bind_image_memory`](Self::bind_image_memory) does, which is what this default does;
    /// a backend that checks bindings (the simulator) overrides it to allow the overlap.
    ///
    /// # Safety
    /// As [`bind_image_memory`](Self::bind_image_memory); the caller orders every use of the
    /// resources sharing bytes (one is done with before another is used), keeps buffers and
    /// optimal images in use together off each other's `bufferImageGranularity` pages, and
    /// treats an image's contents as lost once another resource sharing its bytes was used.
    unsafe fn bind_aliased_image_memory(
        &self,
        image: Self::Image,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: the caller upholds `bind_image_memory`'s contract (this one's includes it).
        unsafe { self.bind_image_memory(image, memory, offset) }
    }

    /// Destroys an image.
    ///
    /// # Safety
    /// - `image` is alive and from this device, and the GPU has finished every use of it.
    unsafe fn destroy_image(&self, image: Self::Image);
}

/// One buffer-to-buffer copy region (`VkBufferCopy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferCopy {
    /// Offset in the source buffer.
    pub src_offset: u64,
    /// Offset in the destination buffer.
    pub dst_offset: u64,
    /// Bytes.
    pub size: u64,
}

/// One copy command: many regions from one buffer into another. Its regions have nonzero sizes,
/// their destination ranges are disjoint, and no source range overlaps a destination range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyCommand<'a, B> {
    /// Source buffer (the staging ring's buffer, usually).
    pub src: B,
    /// Destination buffer.
    pub dst: B,
    /// Regions, destination ranges disjoint.
    pub regions: &'a [BufferCopy],
}

/// Outcome of waiting on a timeline value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitStatus {
    /// The value completed.
    Completed,
    /// The timeout passed first.
    TimedOut,
}

/// A queue that executes copies and signals a monotonically increasing timeline value
/// (a Vulkan timeline semaphore, a D3D12 fence, a Metal shared event).
pub trait CopyQueue: BufferDevice {
    /// Submits the commands, in order, and signals `signal_value` when all of them finished.
    /// Once it has, the copies' writes are visible to host reads of mapped memory (after an
    /// invalidation, for memory that is not host-coherent), so a copy into a host-visible
    /// buffer is how the host reads device-local memory back.
    ///
    /// An `Err` means none of the commands is in flight: an implementation that splits a
    /// submission and fails after handing part of it to the GPU waits for that part before it
    /// returns. The caller may then retry with the same value, or reuse and free the buffers.
    ///
    /// # Safety
    /// - every buffer is alive and bound, and stays so until `signal_value` completes;
    /// - each region has a nonzero size and lies inside both buffers; in one command,
    ///   destination ranges are disjoint and no region's source range overlaps any region's
    ///   destination range in memory (the regions run in no particular order);
    /// - host writes to the source ranges are finished and flushed (non-coherent memory);
    /// - `signal_value` is greater than every value submitted before, and (Vulkan's
    ///   `maxTimelineSemaphoreValueDifference`, at least 2^31 - 1) less than 2^31 above every
    ///   value not yet completed.
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, Self::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError>;

    /// The highest timeline value the GPU has completed. Never blocks.
    fn completed_value(&self) -> Result<u64, DeviceError>;

    /// Blocks until `value` completed or `timeout_ns` passed. Only adapters call it; core never
    /// blocks.
    ///
    /// A value not submitted yet completes only if it is submitted before the timeout, as with
    /// Vulkan's `vkWaitSemaphores`; a backend that knows nothing else can submit meanwhile (a
    /// single-threaded one, or a simulated GPU that runs when waited on) may answer
    /// [`WaitStatus::TimedOut`] at once.
    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError>;

    /// Whether submitted work completes while no thread waits in [`CopyQueue::wait`], as on a
    /// real GPU: a caller that expects a value soon may then poll
    /// [`CopyQueue::completed_value`] before it blocks (a driver's blocking wait may return late).
    /// A simulated GPU that runs only when waited on answers `false`: polling it would spin and
    /// find nothing done. `true` unless a backend says otherwise.
    fn completes_without_waiting(&self) -> bool {
        true
    }
}

/// A [`CopyQueue`] whose submissions can wait, on the GPU, for another timeline: the
/// application's own queue signalling a Vulkan timeline semaphore (a D3D12 fence, a Metal shared
/// event). This is how memkit's copies into a buffer or image wait for the application's draws
/// that still read it, without the host waiting (D3D12's `ID3D12CommandQueue::Wait`).
pub trait ExternalTimelines: CopyQueue {
    /// The application's timeline (`VkSemaphore` of type timeline, `ID3D12Fence`).
    type ExternalTimeline: Copy + Eq + fmt::Debug;

    /// Makes every submission made after this call ([`CopyQueue::submit_copies`],
    /// [`ImageCopyQueue::submit_image_copies`], on every queue the backend copies on) wait, on
    /// the GPU and before any of its commands runs, until `timeline` reached `value`. Memory
    /// writes the application's work made before signalling `value` are visible to those
    /// commands. A lower value than one asked for before on the same timeline adds nothing.
    ///
    /// Submissions already made are not affected. Nothing here blocks the host; a value that is
    /// never signalled stalls memkit's queue (and its timeline) for good.
    ///
    /// [`DeviceError::FeatureNotEnabled`] where the device has no timelines to wait on (Vulkan
    /// without `timelineSemaphore`); [`DeviceError::DeviceLost`] once lost.
    ///
    /// # Safety
    /// - `timeline` is a live timeline of this device, and stays alive until every submission
    ///   made after this call completed (or the device is dropped after the application waited
    ///   for the device to idle);
    /// - `value` is less than 2^31 above the timeline's current value (Vulkan's
    ///   `maxTimelineSemaphoreValueDifference`).
    unsafe fn wait_for_external(
        &self,
        timeline: Self::ExternalTimeline,
        value: u64,
    ) -> Result<(), DeviceError>;

    /// The value `timeline` reached, without blocking.
    ///
    /// # Safety
    /// `timeline` is a live timeline of this device.
    unsafe fn external_value(&self, timeline: Self::ExternalTimeline) -> Result<u64, DeviceError>;
}

/// A [`CopyQueue`] that also uploads into images and reads them back: it records the layout
/// transitions around its buffer-to-image and image-to-buffer copies (see the [`ImageCopy`]
/// module's rules) and signals the same timeline.
pub trait ImageCopyQueue: CopyQueue + ImageDevice {
    /// The queue's image transfer granularity (Vulkan's `minImageTransferGranularity`) that
    /// [`ImageCopy::check`] takes: copy boxes start on this grid and end on it or at the level's
    /// edge; an axis of 0 allows whole levels only. `[1, 1, 1]` on graphics and compute queues.
    fn image_copy_granularity(&self) -> [u32; 3];

    /// Submits the uploads, in order, and signals `signal_value` when all of them finished.
    /// For each command: every subresource of `dst` goes to the transfer layout (from the
    /// undefined layout, discarding its contents, unless `keep_contents`), the regions are
    /// copied, and every subresource goes to [`ImageDesc::layout_after_upload`]. Once
    /// `signal_value` completed, the texels are written and the image is in that layout; work
    /// on another queue that waits for the value (a timeline-semaphore wait) sees both.
    ///
    /// A region that fails [`ImageCopy::check`] against its command's `desc` and this queue's
    /// granularity is refused with [`DeviceError::InvalidImageCopy`] before anything is
    /// submitted. An `Err` means none of the uploads is in flight, as for
    /// [`CopyQueue::submit_copies`].
    ///
    /// # Safety
    /// - every buffer and image is alive and bound, and stays so until `signal_value` completes;
    ///   each `desc` is what its image was created with;
    /// - each region's source range (`buffer_offset` plus [`ImageCopy::packed_bytes`]) lies
    ///   inside its source buffer, and in one command no two regions' boxes overlap;
    /// - host writes to the source ranges are finished and flushed (non-coherent memory);
    /// - `keep_contents` is set only for an image that an earlier upload on this queue wrote and
    ///   that is in [`ImageDesc::layout_after_upload`] again;
    /// - no other GPU work uses the image until `signal_value` completes, and work submitted
    ///   before that used it has finished or is ordered before this submission (for work on
    ///   another queue: it completed, or this queue waited for it);
    /// - `signal_value` is as for [`CopyQueue::submit_copies`].
    unsafe fn submit_image_copies(
        &self,
        commands: &[ImageCopyCommand<'_, Self::Buffer, Self::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError>;

    /// Submits read-backs of images into buffers, in order, and signals `signal_value` when all
    /// of them finished. For each command: every subresource of `src` goes from
    /// [`ImageDesc::layout_after_upload`] to the transfer-source layout, after everything
    /// submitted before on the queue (the uploads being read), the regions are copied into
    /// `dst`, and every subresource goes back to the layout after upload, before anything
    /// submitted after. Once `signal_value` completed, the texels are in `dst` and visible to
    /// host reads of mapped memory (after an invalidation, for memory that is not
    /// host-coherent), as for [`CopyQueue::submit_copies`].
    ///
    /// A region that fails [`ImageCopy::check_read`] against its command's `desc` and this
    /// queue's granularity is refused with [`DeviceError::InvalidImageCopy`] before anything is
    /// submitted. An `Err` means none of the reads is in flight.
    ///
    /// # Safety
    /// - every buffer and image is alive and bound, and stays so until `signal_value` completes;
    ///   each `desc` is what its image was created with;
    /// - every subresource of each image is in [`ImageDesc::layout_after_upload`]: an upload on
    ///   this queue into the whole image was submitted before (a first upload moves every
    ///   subresource), and whatever used it since left it there;
    /// - each region's destination range (`buffer_offset` plus [`ImageCopy::buffer_bytes`])
    ///   lies inside its buffer, and in one command no two regions' destination ranges overlap;
    /// - no GPU work writes the images or uses the destination ranges until `signal_value`
    ///   completes, and work submitted before that writes them has finished or is ordered
    ///   before this submission (the image's layout changes while the read runs: work on
    ///   another queue that samples it must not overlap it either);
    /// - `signal_value` is as for [`CopyQueue::submit_copies`].
    unsafe fn submit_image_reads(
        &self,
        commands: &[ImageReadCommand<'_, Self::Buffer, Self::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError>;

    /// Submits a defragmentation pass's copies in one submission, and signals `signal_value`
    /// when all of them finished: the buffer copies as [`CopyQueue::submit_copies`] runs them,
    /// then each image move ([`ImageMoveCommand`]): every subresource of `src` goes from
    /// [`ImageDesc::layout_after_upload`] to the transfer-source layout and every one of `dst`
    /// from the undefined layout to the transfer-destination one, after everything submitted
    /// before on the queue; every level is copied whole; `dst` goes on to the layout after
    /// upload. Once `signal_value` completed, every destination holds its source's bytes, and
    /// work on another queue that waits for the value sees them (and the images' layout).
    /// Either everything is in flight or, on an `Err`, nothing is.
    ///
    /// A move whose description fails [`ImageDesc::check_move`] is refused with
    /// [`DeviceError::InvalidImageCopy`] before anything is submitted.
    ///
    /// # Safety
    /// - the buffer copies keep [`CopyQueue::submit_copies`]'s contract;
    /// - every image is alive and bound, and stays so until `signal_value` completes; each
    ///   `desc` is what both its images were created with; no image appears in two moves, nor as
    ///   both source and destination;
    /// - every subresource of each source is in the layout after upload, holding defined texels,
    ///   and the work that wrote them completed or is ordered before this submission, as for
    ///   [`ImageCopyQueue::submit_image_reads`];
    /// - each destination was never used by the GPU, and no GPU work uses a source or a
    ///   destination until `signal_value` completes;
    /// - `signal_value` is as for [`CopyQueue::submit_copies`].
    unsafe fn submit_moves(
        &self,
        buffers: &[CopyCommand<'_, Self::Buffer>],
        images: &[ImageMoveCommand<Self::Image>],
        signal_value: u64,
    ) -> Result<(), DeviceError>;
}
