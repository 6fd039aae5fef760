//! The device calls of memkit-core's traits, as safe inherent methods that check every contract
//! the traits state (recording a [`Misuse`] when one is broken) and never assume it.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::ptr::NonNull;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, DedicatedHint, DedicatedTo, DeviceError, DeviceLimits,
    HeapBudget, ImageDesc, ImageDescError, ImageFlags, ImageUsage, InvalidArgument, MappedRange,
    MemoryAllocateInfo, MemoryProperties, MemoryPropertyFlags, MemoryRequirements, WaitStatus,
};

use crate::config::WaitMode;
use crate::device::{
    BufferObject, DummyDevice, MISUSE_RESULT_CODE, Pending, PendingCommand, Quarantined, Snapshot,
    State,
};
use crate::faults::{Site, Trigger};
use crate::handles::{DummyBuffer, DummyImage, DummyMemory};
use crate::host_bytes::HostBytes;
use crate::image_upload::ImageState;
use crate::intervals::IntervalSet;
use crate::memory::{MemoryObject, host_hash};
use crate::misuse::{InvalidAllocation, Misuse, Operation};
use crate::sparse::SparseBytes;

/// Host-visible objects up to this size are hashed when freed, to catch writes through stale
/// mapped pointers.
const QUARANTINE_HASH_LIMIT: u64 = 16 * 1024 * 1024;

const REFUSED: DeviceError = DeviceError::Unexpected(MISUSE_RESULT_CODE);

/// The simulated device-address space each memory object has to itself
/// ([`DummyDevice::buffer_device_address`]): 1 TiB, more than any object.
pub const DEVICE_ADDRESS_WINDOW: u64 = 1 << 40;

/// Whether `[offset, offset + size)` lies inside `len` bytes.
pub(crate) fn fits(offset: u64, size: u64, len: u64) -> bool {
    offset <= len && size <= len - offset
}

fn round_up(value: u64, alignment: u64) -> u64 {
    value.div_ceil(alignment).saturating_mul(alignment)
}

/// Which of flush and invalidate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    Flush,
    Invalidate,
}

impl DummyDevice {
    /// The memory types and heaps (`MemoryDevice::memory_properties`).
    pub fn memory_properties(&self) -> &MemoryProperties {
        &self.shared.properties
    }

    /// The limits (`MemoryDevice::limits`).
    pub fn limits(&self) -> DeviceLimits {
        self.shared.limits
    }

    /// Fills per-heap budget and usage (usage counts external usage too), or returns false when
    /// the device has no budget query (`MemoryDevice::query_budget`).
    pub fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        if !self.shared.config.budget_query {
            return false;
        }
        let state = self.lock();
        for (i, slot) in out.iter_mut().enumerate().take(state.heap_used.len()) {
            *slot = HeapBudget {
                budget: state.heap_budget[i],
                usage: state.heap_used[i].saturating_add(state.heap_external[i]),
            };
        }
        true
    }

    /// Allocates a memory object (`MemoryDevice::allocate_memory`). Fails like a driver: heap
    /// size, budget (when enforced) and `maxMemoryAllocationCount` are enforced; planned and
    /// random faults apply. Device-address memory on a device without
    /// [`DeviceConfig::buffer_device_address`] fails with [`DeviceError::FeatureNotEnabled`].
    ///
    /// A zero size or a memory type the device does not have breaks the trait's contract: it is
    /// recorded as a misuse and refused with the [`DeviceError::InvalidArgument`] memkit-vulkan
    /// gives for it.
    ///
    /// [`DeviceConfig::buffer_device_address`]: crate::DeviceConfig::buffer_device_address
    pub fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<DummyBuffer, DummyImage>,
    ) -> Result<DummyMemory, DeviceError> {
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        state.counters.allocation_calls += 1;
        let call = state.counters.allocation_calls;
        state.fire(|t| t == Trigger::AllocationCall(call));
        let result = self.allocate_locked(&mut state, info, call);
        if result.is_err() {
            state.counters.failed_allocations += 1;
        }
        self.wake(&state);
        result
    }

    fn allocate_locked(
        &self,
        state: &mut State,
        info: &MemoryAllocateInfo<DummyBuffer, DummyImage>,
        call: u64,
    ) -> Result<DummyMemory, DeviceError> {
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        let limits = self.shared.limits;
        let Some(memory_type) = self
            .shared
            .properties
            .types()
            .get(info.memory_type as usize)
            .copied()
        else {
            state.misuse(Misuse::InvalidAllocation {
                reason: InvalidAllocation::BadMemoryType,
            });
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::UnknownMemoryType,
            ));
        };
        if info.size == 0 {
            state.misuse(Misuse::InvalidAllocation {
                reason: InvalidAllocation::ZeroSize,
            });
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        if info.size > limits.max_memory_allocation_size {
            state.misuse(Misuse::InvalidAllocation {
                reason: InvalidAllocation::AboveMaxAllocationSize,
            });
            return Err(DeviceError::OutOfDeviceMemory);
        }
        if !(0.0..=1.0).contains(&info.priority) {
            state.misuse(Misuse::InvalidAllocation {
                reason: InvalidAllocation::BadPriority,
            });
            return Err(REFUSED);
        }
        if info.device_address && !self.shared.config.buffer_device_address {
            return Err(DeviceError::FeatureNotEnabled);
        }
        // An image is a resource numbered with the buffers: both name their entry the same way.
        let dedicated_resource = info.dedicated_to.map(|to| match to {
            DedicatedTo::Buffer(buffer) => buffer,
            DedicatedTo::Image(image) => image.resource,
        });
        let dedicated_to = match dedicated_resource {
            None => None,
            Some(buffer) => {
                let Some(index) =
                    state.live_buffer(self.shared.serial, buffer, Operation::Allocate)
                else {
                    return Err(REFUSED);
                };
                let resource = &state.buffers[&index];
                let reason = if resource.binding.is_some() {
                    Some(InvalidAllocation::BadDedicatedBuffer)
                } else if resource.requirements.size != info.size {
                    Some(InvalidAllocation::DedicatedSizeMismatch)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    state.misuse(Misuse::InvalidAllocation { reason });
                    return Err(REFUSED);
                }
                Some(self.buffer_handle(index, resource.image))
            }
        };
        if let Some(error) = self.injected_fault(state, Site::Allocation, call) {
            return Err(error);
        }
        if state.memory.len() as u64 >= u64::from(limits.max_memory_allocation_count) {
            return Err(DeviceError::TooManyObjects);
        }
        let heap = memory_type.heap_index as usize;
        let in_use = state.heap_used[heap].saturating_add(state.heap_external[heap]);
        let after = in_use.saturating_add(info.size);
        if after > self.shared.properties.heaps()[heap].size
            || (self.shared.config.enforce_budget && after > state.heap_budget[heap])
        {
            return Err(DeviceError::OutOfDeviceMemory);
        }
        let properties = memory_type.properties;
        let host_visible = properties.contains(MemoryPropertyFlags::HOST_VISIBLE);
        let coherent = properties.contains(MemoryPropertyFlags::HOST_COHERENT);
        let host = if host_visible {
            Some(
                HostBytes::new_zeroed(info.size, limits.min_memory_map_alignment.max(16))
                    .ok_or(DeviceError::OutOfHostMemory)?,
            )
        } else {
            None
        };
        let device_view = (!host_visible || !coherent).then(|| SparseBytes::new(info.size));
        let index = state.next_memory;
        state.next_memory += 1;
        state.memory.insert(
            index,
            MemoryObject {
                size: info.size,
                memory_type: info.memory_type,
                heap: memory_type.heap_index,
                device_address: info.device_address,
                host,
                device_view,
                mapped: false,
                dedicated_to,
                bound: BTreeSet::new(),
                stale: IntervalSet::new(),
                label: None,
            },
        );
        state.heap_used[heap] += info.size;
        let counters = &mut state.counters;
        counters.allocations += 1;
        counters.live_memory_objects += 1;
        counters.peak_memory_objects = counters
            .peak_memory_objects
            .max(counters.live_memory_objects);
        Ok(self.memory_handle(index))
    }

    /// Frees a memory object (`MemoryDevice::free_memory`). Records freeing twice, freeing while
    /// a submitted copy still uses it, and freeing with buffers still bound. Host-visible bytes
    /// go to a quarantine first (see [`DeviceConfig::freed_mapping_quarantine`]).
    ///
    /// [`DeviceConfig::freed_mapping_quarantine`]: crate::DeviceConfig::freed_mapping_quarantine
    pub fn free_memory(&self, memory: DummyMemory) {
        let serial = self.shared.serial;
        let mut state = self.lock();
        let live = memory.device == serial && state.memory.contains_key(&memory.index);
        if !live {
            if memory.device == serial && memory.index < state.next_memory {
                state.misuse(Misuse::MemoryFreedTwice { memory });
            } else {
                state.misuse(Misuse::ForeignMemory {
                    memory,
                    operation: Operation::Free,
                });
            }
            return;
        }
        let index = memory.index;
        if let Some(signal_value) = state
            .pending
            .iter()
            .find(|p| p.memory.contains(&index))
            .map(|p| p.signal)
        {
            state.misuse(Misuse::FreedWhilePending {
                memory,
                signal_value,
            });
        }
        let bound: Vec<u64> = state.memory[&index].bound.iter().copied().collect();
        for buffer in bound {
            let buffer = self.buffer_handle(buffer, state.is_image(buffer));
            state.misuse(Misuse::FreedWithBoundBuffer { memory, buffer });
        }
        let Some(object) = state.memory.remove(&index) else {
            return;
        };
        state.heap_used[object.heap as usize] -= object.size;
        state.counters.frees += 1;
        state.counters.live_memory_objects -= 1;
        let cap = self.shared.config.freed_mapping_quarantine;
        if let Some(bytes) = object.host
            && bytes.len() <= cap
        {
            let hash =
                (bytes.len() <= QUARANTINE_HASH_LIMIT).then(|| host_hash(&bytes, 0, bytes.len()));
            state.quarantine_bytes += bytes.len();
            state.quarantine.push_back(Quarantined {
                memory: index,
                bytes,
                hash,
            });
            state.release_quarantine(serial, cap);
        }
    }

    /// Maps the whole object (`MemoryDevice::map_memory`); the address is stable until the object
    /// is freed (and after unmapping: unmapping never moves the bytes).
    pub fn map_memory(&self, memory: DummyMemory) -> Result<NonNull<u8>, DeviceError> {
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        state.counters.map_calls += 1;
        let call = state.counters.map_calls;
        let Some(index) = state.live_memory(self.shared.serial, memory, Operation::Map) else {
            return Err(DeviceError::MapFailed);
        };
        let object = &state.memory[&index];
        let Some(ptr) = object.host.as_ref().map(HostBytes::as_ptr) else {
            state.misuse(Misuse::MapNotHostVisible { memory });
            return Err(DeviceError::MapFailed);
        };
        if object.mapped {
            state.misuse(Misuse::MappedTwice { memory });
            return Err(DeviceError::MapFailed);
        }
        if let Some(error) = self.injected_fault(&mut state, Site::Map, call) {
            return Err(error);
        }
        if let Some(object) = state.memory.get_mut(&index) {
            object.mapped = true;
        }
        state.counters.maps += 1;
        Ok(ptr)
    }

    /// Unmaps (`MemoryDevice::unmap_memory`); records unmapping what is not mapped.
    pub fn unmap_memory(&self, memory: DummyMemory) {
        let mut state = self.lock();
        let Some(index) = state.live_memory(self.shared.serial, memory, Operation::Unmap) else {
            return;
        };
        let object = state.memory.get_mut(&index);
        match object {
            Some(object) if object.mapped => {
                object.mapped = false;
                state.counters.unmaps += 1;
            }
            _ => state.misuse(Misuse::NotMapped {
                memory,
                operation: Operation::Unmap,
            }),
        }
    }

    /// Makes host writes visible to the device (`MemoryDevice::flush_ranges`): for non-coherent
    /// memory, copies the host view of each range to the device view. Records ranges of unmapped
    /// or freed objects, out of bounds, or not aligned to `nonCoherentAtomSize`.
    pub fn flush_ranges(&self, ranges: &[MappedRange<DummyMemory>]) -> Result<(), DeviceError> {
        self.sync_ranges(ranges, Sync::Flush)
    }

    /// Makes device writes visible to the host (`MemoryDevice::invalidate_ranges`): for
    /// non-coherent memory, copies the device view of each range to the host view. Checks as
    /// for [`DummyDevice::flush_ranges`].
    pub fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<DummyMemory>],
    ) -> Result<(), DeviceError> {
        self.sync_ranges(ranges, Sync::Invalidate)
    }

    fn sync_ranges(
        &self,
        ranges: &[MappedRange<DummyMemory>],
        sync: Sync,
    ) -> Result<(), DeviceError> {
        let (operation, mut state) = (
            match sync {
                Sync::Flush => Operation::Flush,
                Sync::Invalidate => Operation::Invalidate,
            },
            self.lock(),
        );
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        match sync {
            Sync::Flush => state.counters.flush_calls += 1,
            Sync::Invalidate => state.counters.invalidate_calls += 1,
        }
        let atom = self.shared.limits.non_coherent_atom_size;
        for range in ranges {
            let memory = range.memory;
            let Some(index) = state.live_memory(self.shared.serial, memory, operation) else {
                continue;
            };
            let object = &state.memory[&index];
            let (mapped, size) = (object.mapped, object.size);
            if !mapped {
                state.misuse(Misuse::NotMapped { memory, operation });
                continue;
            }
            if !fits(range.offset, range.size, size) {
                state.misuse(Misuse::RangeOutOfBounds {
                    memory,
                    offset: range.offset,
                    size: range.size,
                    operation,
                });
                continue;
            }
            let reaches_end = range.offset + range.size == size;
            if range.offset % atom != 0 || (range.size % atom != 0 && !reaches_end) {
                state.misuse(Misuse::RangeMisaligned {
                    memory,
                    offset: range.offset,
                    size: range.size,
                    operation,
                });
            }
            if let Some(object) = state.memory.get_mut(&index) {
                match sync {
                    Sync::Flush => object.flush(range.offset, range.size),
                    Sync::Invalidate => object.invalidate(range.offset, range.size),
                }
            }
            match sync {
                Sync::Flush => state.counters.flushed_ranges += 1,
                Sync::Invalidate => state.counters.invalidated_ranges += 1,
            }
        }
        Ok(())
    }

    /// Creates a buffer (`BufferDevice::create_buffer`). Its requirements: size rounded up to
    /// [`DeviceConfig::buffer_alignment`], that alignment, the configured memory types, and a
    /// dedicated hint from the configured thresholds.
    ///
    /// A zero `size` or an empty `usage` is refused with [`DeviceError::InvalidArgument`] before
    /// anything is made or counted, as a backend refuses it before calling the driver (a typed
    /// error, like an invalid image description, not a misuse). `DEVICE_ADDRESS` usage on a
    /// device without [`DeviceConfig::buffer_device_address`] fails with
    /// [`DeviceError::FeatureNotEnabled`].
    ///
    /// [`DeviceConfig::buffer_device_address`]: crate::DeviceConfig::buffer_device_address
    ///
    /// [`DeviceConfig::buffer_alignment`]: crate::DeviceConfig::buffer_alignment
    pub fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(DummyBuffer, MemoryRequirements), DeviceError> {
        // A lost device refuses first, whatever the arguments, as memkit-vulkan does.
        self.check_not_lost()?;
        if size == 0 {
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        if usage.is_empty() {
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::EmptyBufferUsage,
            ));
        }
        if usage.contains(BufferUsage::DEVICE_ADDRESS) && !self.shared.config.buffer_device_address
        {
            return Err(DeviceError::FeatureNotEnabled);
        }
        self.create_resource(size, usage, Resource::Buffer)
    }

    /// Creates an optimal-tiling, image-like resource of `size` bytes, bound with
    /// [`DummyDevice::bind_buffer_memory`] like a buffer. It exists so tests can check
    /// `bufferImageGranularity`: a linear and an optimal resource sharing a granularity page
    /// of one object is recorded as [`Misuse::GranularityConflict`]. It cannot be copied.
    pub fn create_optimal_resource(
        &self,
        size: u64,
    ) -> Result<(DummyBuffer, MemoryRequirements), DeviceError> {
        self.create_resource(size, BufferUsage::empty(), Resource::Optimal)
    }

    /// Creates an image (`ImageDevice::create_image`): an optimal resource whose required size
    /// is the description's [`packed_bytes`](ImageDesc::packed_bytes) rounded up to
    /// [`optimal_alignment`](crate::DeviceConfig::optimal_alignment), with the memory types and
    /// dedicated thresholds of optimal resources. A description that fails
    /// [`ImageDesc::validate`] is refused with [`DeviceError::InvalidImage`] (a typed error the
    /// backend gives, not a misuse); so is an attachment beyond the configured framebuffer
    /// extent ([`DeviceConfig::max_framebuffer_width`] and height), with
    /// [`ImageDescError::AttachmentBeyondFramebuffer`], and one beyond the configured largest
    /// extents or layers
    /// ([`DeviceConfig::max_image_dimension_2d`] and the like), with a sample count outside
    /// [`DeviceConfig::image_sample_counts`] (or multisampled storage), a compressed storage
    /// image, a compressed format of a family outside [`DeviceConfig::texture_compression`], or
    /// one larger in all than
    /// [`DeviceConfig::max_image_resource_size`] (estimated as memkit-vulkan does, with
    /// [`ImageDesc::check_resource_size`]), with [`ImageDescError::Unsupported`]. A refused
    /// image is neither counted nor created. Counted with the buffers, and failed by
    /// buffer-creation faults.
    ///
    /// [`DeviceConfig::max_image_dimension_2d`]: crate::DeviceConfig::max_image_dimension_2d
    /// [`DeviceConfig::image_sample_counts`]: crate::DeviceConfig::image_sample_counts
    /// [`DeviceConfig::texture_compression`]: crate::DeviceConfig::texture_compression
    /// [`DeviceConfig::max_image_resource_size`]: crate::DeviceConfig::max_image_resource_size
    /// [`DeviceConfig::max_framebuffer_width`]: crate::DeviceConfig::max_framebuffer_width
    pub fn create_image(
        &self,
        desc: &ImageDesc,
    ) -> Result<(DummyImage, MemoryRequirements), DeviceError> {
        self.check_image_support(desc)?;
        let (resource, requirements) = self.create_resource(
            desc.packed_bytes(),
            BufferUsage::empty(),
            Resource::Image(*desc),
        )?;
        Ok((DummyImage { resource }, requirements))
    }

    /// Whether [`create_image`](Self::create_image) would accept `desc`
    /// (`ImageDevice::check_image_support`): every check it makes, nothing created or counted.
    pub fn check_image_support(&self, desc: &ImageDesc) -> Result<(), DeviceError> {
        self.check_not_lost()?;
        desc.validate().map_err(DeviceError::InvalidImage)?;
        let config = &self.shared.config;
        desc.check_framebuffer_extent(config.max_framebuffer_width, config.max_framebuffer_height)
            .map_err(DeviceError::InvalidImage)?;
        if self.supports_image(desc) {
            Ok(())
        } else {
            Err(DeviceError::InvalidImage(ImageDescError::Unsupported))
        }
    }

    /// Whether the configured limits allow `desc` (a valid description): extents within
    /// `maxImageDimension2D` or `maxImageDimension3D` (and `maxImageDimensionCube` for a
    /// cube-compatible image), layers within `maxImageArrayLayers`, a
    /// sample count the device has, no multisampled storage image (memkit-vulkan refuses
    /// those: they need a feature it does not track), no compressed storage image (drivers
    /// offer none without the block-view creation flags memkit does not set), and a total size
    /// within `maxResourceSize`.
    fn supports_image(&self, desc: &ImageDesc) -> bool {
        let config = &self.shared.config;
        let max_extent = if desc.depth > 1 {
            config.max_image_dimension_3d
        } else if desc.flags.contains(ImageFlags::CUBE_COMPATIBLE) {
            config
                .max_image_dimension_2d
                .min(config.max_image_dimension_cube)
        } else {
            config.max_image_dimension_2d
        };
        // `validate` made `samples` a power of two up to 64, so it is its own flag bit.
        let samples_allowed = desc.samples == 1
            || (config.image_sample_counts & desc.samples != 0
                && !desc.usage.contains(ImageUsage::STORAGE));
        let usage_allowed =
            !(desc.format.is_compressed() && desc.usage.contains(ImageUsage::STORAGE));
        let format_allowed = desc
            .format
            .compression()
            .is_none_or(|family| config.texture_compression.samples(family));
        desc.width <= max_extent
            && desc.height <= max_extent
            && desc.depth <= max_extent
            && desc.array_layers <= config.max_image_array_layers
            && samples_allowed
            && usage_allowed
            && format_allowed
            && desc
                .check_resource_size(
                    config.max_image_resource_size,
                    config.limits.buffer_image_granularity,
                )
                .is_ok()
    }

    /// Binds an image (`ImageDevice::bind_image_memory`): the checks and records of
    /// [`bind_buffer_memory`](Self::bind_buffer_memory), misuses naming `image.resource()`.
    pub fn bind_image_memory(
        &self,
        image: DummyImage,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        self.bind_resource(image.resource, memory, offset, false)
    }

    /// Binds an image that shares memory on purpose
    /// (`ImageDevice::bind_aliased_image_memory`): the checks and records of
    /// [`bind_image_memory`](Self::bind_image_memory), except that overlapping another resource
    /// bound this way is not [`Misuse::AliasedBinding`], nor is sharing a granularity page with
    /// one [`Misuse::GranularityConflict`] (against anything else both still are). Once one of
    /// the overlapping resources is written or read (an upload, a move, a read-back or a buffer
    /// copy into it executes, or [`application_writes_image`](Self::application_writes_image) /
    /// [`application_writes_buffer`](Self::application_writes_buffer)), the images among the
    /// others are undefined again: their contents are lost, as on a real device.
    pub fn bind_aliased_image_memory(
        &self,
        image: DummyImage,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        self.bind_resource(image.resource, memory, offset, true)
    }

    /// Destroys an image (`ImageDevice::destroy_image`), with the records of
    /// [`destroy_buffer`](Self::destroy_buffer).
    pub fn destroy_image(&self, image: DummyImage) {
        self.destroy_buffer(image.resource);
    }

    fn create_resource(
        &self,
        size: u64,
        usage: BufferUsage,
        kind: Resource,
    ) -> Result<(DummyBuffer, MemoryRequirements), DeviceError> {
        let optimal = kind != Resource::Buffer;
        let image_state = match kind {
            Resource::Image(desc) => Some(ImageState::new(desc)),
            Resource::Buffer | Resource::Optimal => None,
        };
        let image = image_state.is_some();
        let config = &self.shared.config;
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        state.counters.buffer_creation_calls += 1;
        let call = state.counters.buffer_creation_calls;
        if let Some(error) = self.injected_fault(&mut state, Site::BufferCreation, call) {
            return Err(error);
        }
        if size == 0 {
            // Only an optimal resource gets here with a zero size: `create_buffer` refuses it
            // first, and a valid image description is never empty.
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        let alignment = if optimal {
            config.optimal_alignment
        } else {
            config.buffer_alignment
        };
        let type_count = self.shared.properties.types().len() as u32;
        let existing = u32::MAX.checked_shr(32 - type_count).unwrap_or(u32::MAX);
        let allowed = if optimal {
            config.optimal_memory_type_bits
        } else {
            config.buffer_memory_type_bits
        };
        let dedicated = if config.dedicated_required_from.is_some_and(|t| size >= t) {
            DedicatedHint::Required
        } else if config.dedicated_preferred_from.is_some_and(|t| size >= t) {
            DedicatedHint::Preferred
        } else {
            DedicatedHint::None
        };
        let requirements = MemoryRequirements {
            size: round_up(size, alignment),
            alignment,
            memory_type_bits: allowed & existing,
            dedicated,
        };
        let index = state.next_buffer;
        state.next_buffer += 1;
        state.buffers.insert(
            index,
            BufferObject {
                size,
                usage,
                optimal,
                image,
                requirements,
                binding: None,
                aliased: false,
                label: None,
                image_state,
            },
        );
        state.counters.buffers_created += 1;
        state.counters.live_buffers += 1;
        Ok((self.buffer_handle(index, image), requirements))
    }

    /// Binds a buffer (`BufferDevice::bind_buffer_memory`). Refuses (with
    /// `Unexpected(MISUSE_RESULT_CODE)`, and a recorded misuse) a freed or foreign handle, a
    /// second bind, a type outside `memory_type_bits`, a misaligned offset, a range outside the
    /// object and a dedicated mismatch; binds but records granularity conflicts, aliasing and a
    /// missing device-address flag.
    pub fn bind_buffer_memory(
        &self,
        buffer: DummyBuffer,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        self.bind_resource(buffer, memory, offset, false)
    }

    /// Binds a buffer that shares memory on purpose
    /// (`BufferDevice::bind_aliased_buffer_memory`): the checks and records of
    /// [`bind_buffer_memory`](Self::bind_buffer_memory), with the allowances of
    /// [`bind_aliased_image_memory`](Self::bind_aliased_image_memory). A copy into it that
    /// executes undefines the aliased images overlapping it.
    pub fn bind_aliased_buffer_memory(
        &self,
        buffer: DummyBuffer,
        memory: DummyMemory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        self.bind_resource(buffer, memory, offset, true)
    }

    /// [`bind_buffer_memory`](Self::bind_buffer_memory), for a resource that may overlap (or
    /// share a granularity page with) others bound with `aliased` when it is: the caller keeps
    /// the ones in use together apart, which only it knows.
    fn bind_resource(
        &self,
        buffer: DummyBuffer,
        memory: DummyMemory,
        offset: u64,
        aliased: bool,
    ) -> Result<(), DeviceError> {
        let serial = self.shared.serial;
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        state.counters.bind_calls += 1;
        let call = state.counters.bind_calls;
        if let Some(error) = self.injected_fault(&mut state, Site::Bind, call) {
            return Err(error);
        }
        let Some(b) = state.live_buffer(serial, buffer, Operation::Bind) else {
            return Err(REFUSED);
        };
        let Some(m) = state.live_memory(serial, memory, Operation::Bind) else {
            return Err(REFUSED);
        };
        let resource = &state.buffers[&b];
        let object = &state.memory[&m];
        let requirements = resource.requirements;
        let refusal = if resource.binding.is_some() {
            Some(Misuse::BoundTwice { buffer })
        } else if requirements.memory_type_bits & (1 << object.memory_type) == 0 {
            Some(Misuse::BindTypeNotAllowed {
                buffer,
                memory_type: object.memory_type,
            })
        } else if !offset.is_multiple_of(requirements.alignment) {
            Some(Misuse::BindMisaligned {
                buffer,
                offset,
                alignment: requirements.alignment,
            })
        } else if !fits(offset, requirements.size, object.size) {
            Some(Misuse::BindOutOfRange {
                buffer,
                memory,
                offset,
            })
        } else if object.dedicated_to.is_some_and(|d| d.index != b)
            || (object.dedicated_to.is_some() && offset != 0)
            || (requirements.dedicated == DedicatedHint::Required
                && object.dedicated_to.map(|d| d.index) != Some(b))
        {
            Some(Misuse::DedicatedMismatch { buffer, memory })
        } else {
            None
        };
        if let Some(misuse) = refusal {
            state.misuse(misuse);
            return Err(REFUSED);
        }
        let mut found = Vec::new();
        if resource.usage.contains(BufferUsage::DEVICE_ADDRESS) && !object.device_address {
            found.push(Misuse::BindWithoutDeviceAddress { buffer, memory });
        }
        let granularity = self.shared.limits.buffer_image_granularity;
        let end = offset + requirements.size;
        for &other_index in &object.bound {
            let other = &state.buffers[&other_index];
            let Some((_, other_offset)) = other.binding else {
                continue;
            };
            let other_end = other_offset + other.requirements.size;
            let other_handle = self.buffer_handle(other_index, other.image);
            let both_aliased = aliased && other.aliased;
            if offset < other_end && other_offset < end && !both_aliased {
                found.push(Misuse::AliasedBinding {
                    memory,
                    first: other_handle,
                    second: buffer,
                });
            }
            if other.optimal != resource.optimal && !both_aliased {
                let first_page = (offset / granularity).max(other_offset / granularity);
                let last_page = ((end - 1) / granularity).min((other_end - 1) / granularity);
                if first_page <= last_page {
                    let (linear, optimal) = if resource.optimal {
                        (other_handle, buffer)
                    } else {
                        (buffer, other_handle)
                    };
                    found.push(Misuse::GranularityConflict {
                        memory,
                        linear,
                        optimal,
                        page_offset: first_page * granularity,
                    });
                }
            }
        }
        for misuse in found {
            state.misuse(misuse);
        }
        if let Some(resource) = state.buffers.get_mut(&b) {
            resource.binding = Some((m, offset));
            resource.aliased = aliased;
        }
        if let Some(object) = state.memory.get_mut(&m) {
            object.bound.insert(b);
        }
        state.counters.binds += 1;
        Ok(())
    }

    /// The buffer's device address (`BufferDevice::buffer_device_address`): each memory object
    /// has a window of [`DEVICE_ADDRESS_WINDOW`] bytes of its own in a simulated address space
    /// (never address 0), and a buffer's address is its window's start plus its binding offset,
    /// so buffers in one object lie at their offsets' distances. A buffer without
    /// `DEVICE_ADDRESS` usage, or not bound yet, is recorded as
    /// [`Misuse::AddressUnavailable`]; memory without device-address support was recorded when
    /// the buffer was bound ([`Misuse::BindWithoutDeviceAddress`]).
    pub fn buffer_device_address(&self, buffer: DummyBuffer) -> Result<u64, DeviceError> {
        let serial = self.shared.serial;
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        if !self.shared.config.buffer_device_address {
            return Err(DeviceError::FeatureNotEnabled);
        }
        let Some(b) = state.live_buffer(serial, buffer, Operation::Address) else {
            return Err(REFUSED);
        };
        let resource = &state.buffers[&b];
        match resource.binding {
            Some((memory, offset)) if resource.usage.contains(BufferUsage::DEVICE_ADDRESS) => {
                // Objects are counted from 0 and never reused; past the address space's top,
                // windows wrap (no test makes 2^24 objects).
                let window = (memory % (1 << 23) + 1) * DEVICE_ADDRESS_WINDOW;
                Ok(window + offset)
            }
            _ => {
                state.misuse(Misuse::AddressUnavailable { buffer });
                Err(REFUSED)
            }
        }
    }

    /// Destroys a buffer (`BufferDevice::destroy_buffer`). Records destroying twice and
    /// destroying while a submitted copy still uses it.
    pub fn destroy_buffer(&self, buffer: DummyBuffer) {
        let serial = self.shared.serial;
        let mut state = self.lock();
        let live = buffer.device == serial && state.buffers.contains_key(&buffer.index);
        if !live {
            if buffer.device == serial && buffer.index < state.next_buffer {
                state.misuse(Misuse::BufferDestroyedTwice { buffer });
            } else {
                state.misuse(Misuse::ForeignBuffer {
                    buffer,
                    operation: Operation::Destroy,
                });
            }
            return;
        }
        let index = buffer.index;
        state.check_destroy_in_use(serial, index);
        if let Some(signal_value) = state
            .pending
            .iter()
            .find(|p| {
                p.commands.iter().any(|c| c.src == index || c.dst == index)
                    || p.images.iter().any(|c| c.src == index || c.dst == index)
                    || p.image_reads
                        .iter()
                        .any(|c| c.src == index || c.dst == index)
                    || p.image_moves
                        .iter()
                        .any(|c| c.src == index || c.dst == index)
            })
            .map(|p| p.signal)
        {
            state.misuse(Misuse::DestroyedWhilePending {
                buffer,
                signal_value,
            });
        }
        if let Some(resource) = state.buffers.remove(&index)
            && let Some((m, _)) = resource.binding
            && let Some(object) = state.memory.get_mut(&m)
        {
            object.bound.remove(&index);
        }
        state.counters.buffers_destroyed += 1;
        state.counters.live_buffers -= 1;
    }

    /// Submits copies (`CopyQueue::submit_copies`). They execute when the test advances the
    /// timeline to `signal_value` (or at once with `complete_on_submit`). Checks every command
    /// now: live, bound, linear buffers with transfer usage; nonzero regions inside both buffers;
    /// disjoint destinations; source not overlapping destination; non-coherent sources flushed.
    /// Bad regions are recorded and dropped. A `signal_value` not above the last one submitted is
    /// recorded and refused with the [`DeviceError::InvalidArgument`] memkit-vulkan gives for it.
    /// Source ranges (and host-visible destinations) are
    /// hashed, to catch host writes before execution.
    pub fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, DummyBuffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let mut state = self.lock();
        if state.lost {
            return Err(DeviceError::DeviceLost);
        }
        let check = self.begin_submission(&mut state, signal_value)?;
        let mut pending = Pending::new(signal_value);
        self.queue_copies(&mut state, commands, check, &mut pending);
        self.end_submission(&mut state, pending);
        Ok(())
    }

    /// Resolves buffer copies into `pending`, recording what breaks their contract (see
    /// [`DummyDevice::submit_copies`]); `check` snapshots their ranges.
    pub(crate) fn queue_copies(
        &self,
        state: &mut State,
        commands: &[CopyCommand<'_, DummyBuffer>],
        check: bool,
        pending: &mut Pending,
    ) {
        let serial = self.shared.serial;
        pending.commands.reserve(commands.len());
        for command in commands {
            let src = state.live_buffer(serial, command.src, Operation::Submit);
            let dst = state.live_buffer(serial, command.dst, Operation::Submit);
            let (Some(src), Some(dst)) = (src, dst) else {
                continue;
            };
            let src_binding = self.copy_binding(state, src, command.src, BufferUsage::TRANSFER_SRC);
            let dst_binding = self.copy_binding(state, dst, command.dst, BufferUsage::TRANSFER_DST);
            let (Some(src_binding), Some(dst_binding)) = (src_binding, dst_binding) else {
                continue;
            };
            let regions = self.valid_regions(state, command, src, dst, src_binding, dst_binding);
            let mut found = Vec::new();
            let src_memory = &state.memory[&src_binding.0];
            let dst_memory = &state.memory[&dst_binding.0];
            for region in &regions {
                let at = src_binding.1 + region.src_offset;
                if let Some(first) = src_memory.first_unflushed(at, region.size) {
                    found.push(Misuse::UnflushedHostWrite {
                        memory: self.memory_handle(src_binding.0),
                        offset: first,
                        size: region.size,
                    });
                }
                if check && src_memory.host.is_some() {
                    pending.snapshots.push(Snapshot {
                        memory: src_binding.0,
                        offset: at,
                        size: region.size,
                        source: true,
                        device_hash: src_memory.device_hash(at, region.size),
                        host_hash: if src_memory.non_coherent() {
                            src_memory.host_hash(at, region.size)
                        } else {
                            None
                        },
                    });
                }
                if check && dst_memory.host.is_some() {
                    let at = dst_binding.1 + region.dst_offset;
                    pending.snapshots.push(Snapshot {
                        memory: dst_binding.0,
                        offset: at,
                        size: region.size,
                        source: false,
                        device_hash: 0,
                        host_hash: dst_memory.host_hash(at, region.size),
                    });
                }
            }
            for misuse in found {
                state.misuse(misuse);
            }
            pending.memory.extend([src_binding.0, dst_binding.0]);
            pending.commands.push(PendingCommand { src, dst, regions });
        }
    }

    /// What every submission does first, on a device not lost: counts the call, fires its
    /// scheduled faults, takes an injected failure, and refuses a signal value that does not
    /// rise (a misuse, with memkit-vulkan's typed error). Returns whether the submission's
    /// ranges are to be snapshotted for the pending-write detectors.
    pub(crate) fn begin_submission(
        &self,
        state: &mut State,
        signal_value: u64,
    ) -> Result<bool, DeviceError> {
        // Executed before the lock is released, nothing can change the bytes in between.
        let check = self.shared.config.check_pending_ranges && !state.complete_on_submit;
        state.counters.submit_calls += 1;
        let call = state.counters.submit_calls;
        state.fire(|t| t == Trigger::SubmitCall(call));
        if state.lost {
            self.wake(state);
            return Err(DeviceError::DeviceLost);
        }
        if let Some(error) = self.injected_fault(state, Site::Submit, call) {
            return Err(error);
        }
        if signal_value <= state.last_submitted {
            let last_submitted = state.last_submitted;
            state.misuse(Misuse::SignalNotIncreasing {
                signal_value,
                last_submitted,
            });
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::TimelineNotIncreasing,
            ));
        }
        Ok(check)
    }

    /// Queues a built submission (executing it at once with `complete_on_submit`).
    pub(crate) fn end_submission(&self, state: &mut State, mut pending: Pending) {
        pending.memory.sort_unstable();
        pending.memory.dedup();
        state.last_submitted = pending.signal;
        pending.waits = state.external.waits_for_submission();
        state.counters.submissions += 1;
        state.pending.push_back(pending);
        if state.complete_on_submit {
            let fill = self.shared.config.stale_read_fill;
            while state.execute_next(self.shared.serial, fill).is_some() {}
        }
        self.wake(state);
    }

    /// The (memory, offset) a copy buffer is bound at, or `None` after recording why it cannot
    /// take part in a copy.
    pub(crate) fn copy_binding(
        &self,
        state: &mut State,
        index: u64,
        buffer: DummyBuffer,
        needed: BufferUsage,
    ) -> Option<(u64, u64)> {
        let resource = &state.buffers[&index];
        let (optimal, usage, binding) = (resource.optimal, resource.usage, resource.binding);
        if optimal {
            state.misuse(Misuse::CopyOptimalResource { buffer });
            return None;
        }
        let (m, offset) = self.live_binding(state, buffer, binding)?;
        if !usage.contains(needed) {
            state.misuse(Misuse::CopyMissingUsage { buffer, needed });
        }
        Some((m, offset))
    }

    /// The (memory, offset) a copy's buffer or image is bound at, or `None` after recording
    /// that it is not bound or that its memory was freed.
    pub(crate) fn live_binding(
        &self,
        state: &mut State,
        resource: DummyBuffer,
        binding: Option<(u64, u64)>,
    ) -> Option<(u64, u64)> {
        let Some((m, offset)) = binding else {
            state.misuse(Misuse::CopyUnboundBuffer { buffer: resource });
            return None;
        };
        if !state.memory.contains_key(&m) {
            state.misuse(Misuse::MemoryUseAfterFree {
                memory: self.memory_handle(m),
                operation: Operation::Submit,
            });
            return None;
        }
        Some((m, offset))
    }

    /// The regions of a command that can execute, after recording the bad ones.
    fn valid_regions(
        &self,
        state: &mut State,
        command: &CopyCommand<'_, DummyBuffer>,
        src: u64,
        dst: u64,
        src_binding: (u64, u64),
        dst_binding: (u64, u64),
    ) -> Vec<BufferCopy> {
        let src_size = state.buffers[&src].size;
        let dst_size = state.buffers[&dst].size;
        let mut found = Vec::new();
        let mut regions = Vec::with_capacity(command.regions.len());
        for region in command.regions {
            if region.size == 0 {
                found.push(Misuse::CopyZeroSize {
                    src: command.src,
                    dst: command.dst,
                });
                continue;
            }
            if !fits(region.src_offset, region.size, src_size) {
                found.push(Misuse::CopyOutOfBounds {
                    buffer: command.src,
                    offset: region.src_offset,
                    size: region.size,
                });
                continue;
            }
            if !fits(region.dst_offset, region.size, dst_size) {
                found.push(Misuse::CopyOutOfBounds {
                    buffer: command.dst,
                    offset: region.dst_offset,
                    size: region.size,
                });
                continue;
            }
            regions.push(*region);
        }
        let shared_memory = src_binding.0 == dst_binding.0;
        if shared_memory && sources_overlap_destinations(&regions, src_binding.1, dst_binding.1) {
            found.push(Misuse::CopySourceOverlapsDestination {
                memory: self.memory_handle(src_binding.0),
            });
        }
        let mut destinations: Vec<(u64, u64)> = regions
            .iter()
            .map(|r| (r.dst_offset, r.dst_offset + r.size))
            .collect();
        destinations.sort_unstable();
        if destinations.windows(2).any(|w| w[1].0 < w[0].1) {
            found.push(Misuse::CopyOverlappingDestinations { dst: command.dst });
        }
        for misuse in found {
            state.misuse(misuse);
        }
        regions
    }

    /// The completed value (`CopyQueue::completed_value`); `DeviceLost` once lost.
    pub fn completed_value(&self) -> Result<u64, DeviceError> {
        let state = self.lock();
        if state.lost {
            Err(DeviceError::DeviceLost)
        } else {
            Ok(state.completed)
        }
    }

    /// Waits for `value` (`CopyQueue::wait`) as the [`WaitMode`] says: `Auto` completes the
    /// timeline up to it, `Manual` reports `TimedOut` unless it completed already, `Block`
    /// blocks until another thread completes it or `timeout_ns` passes. `DeviceLost` once lost.
    pub fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        let mut state = self.lock();
        let deadline = Instant::now().checked_add(Duration::from_nanos(timeout_ns));
        loop {
            if state.lost {
                return Err(DeviceError::DeviceLost);
            }
            if state.completed >= value {
                return Ok(WaitStatus::Completed);
            }
            match state.wait_mode {
                WaitMode::Manual => return Ok(WaitStatus::TimedOut),
                WaitMode::Auto => {
                    if state.last_submitted < value {
                        return Ok(WaitStatus::TimedOut);
                    }
                    let fill = self.shared.config.stale_read_fill;
                    while state.completed < value {
                        if state.execute_next(self.shared.serial, fill).is_none() {
                            break;
                        }
                    }
                    self.wake(&state);
                    if !state.lost && state.completed < value {
                        return Ok(WaitStatus::TimedOut);
                    }
                }
                WaitMode::Block => {
                    let timeout = match deadline {
                        None => None,
                        Some(deadline) => {
                            let now = Instant::now();
                            if now >= deadline {
                                return Ok(WaitStatus::TimedOut);
                            }
                            Some(deadline - now)
                        }
                    };
                    let progress = &self.shared.progress;
                    state.waiters += 1;
                    state = match timeout {
                        None => progress.wait(state).unwrap_or_else(PoisonError::into_inner),
                        Some(timeout) => {
                            progress
                                .wait_timeout(state, timeout)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                    };
                    state.waiters -= 1;
                }
            }
        }
    }
}

/// What [`DummyDevice::create_resource`] makes: all three are resources numbered together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    /// A linear buffer.
    Buffer,
    /// An optimal-tiling resource that is not an image (`create_optimal_resource`).
    Optimal,
    /// An image's resource (`create_image`), with its description.
    Image(ImageDesc),
}

/// Whether any region's source range overlaps any region's destination range (its own or
/// another's), as offsets in the one memory object both buffers are bound to, at `src_base` and
/// `dst_base`. A GPU runs a command's regions in no particular order, so a region reading what
/// another writes is a race (`VUID-vkCmdCopyBuffer-pRegions-00117`), even where this simulator's
/// in-order execution would give a definite result. O(n log n): both lists sorted, then swept.
fn sources_overlap_destinations(regions: &[BufferCopy], src_base: u64, dst_base: u64) -> bool {
    let ranges = |base: u64, offset: fn(&BufferCopy) -> u64| {
        let mut ranges: Vec<(u64, u64)> = regions
            .iter()
            .map(|r| (base + offset(r), base + offset(r) + r.size))
            .collect();
        ranges.sort_unstable();
        ranges
    };
    let sources = ranges(src_base, |r| r.src_offset);
    let destinations = ranges(dst_base, |r| r.dst_offset);
    let (mut i, mut j) = (0, 0);
    while let (Some(&(s_start, s_end)), Some(&(d_start, d_end))) =
        (sources.get(i), destinations.get(j))
    {
        if s_start < d_end && d_start < s_end {
            return true;
        }
        // The range that ends first lies wholly before the other, and so before every range
        // after the other in its list (they start no earlier): it overlaps nothing left.
        if s_end <= d_end {
            i += 1;
        } else {
            j += 1;
        }
    }
    false
}
