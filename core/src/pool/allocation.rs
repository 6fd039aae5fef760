//! What a caller asks for ([`AllocationRequest`]) and what it holds ([`DeviceAllocation`]).
#![forbid(unsafe_code)]

use crate::device::{DedicatedHint, MemoryRequirements};
use crate::suballocator::AllocatorId;
use crate::usage::{MemoryUsage, ResourceKind};

use super::mapping::HostPtr;

/// A request for memory for one resource.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AllocationRequest {
    /// Size, alignment, allowed memory types and the driver's dedicated-allocation answer, as the
    /// backend reported them for the resource.
    pub requirements: MemoryRequirements,
    /// What the memory is for; decides the memory type.
    pub usage: MemoryUsage,
    /// Linear or optimal, for `bufferImageGranularity`.
    pub kind: ResourceKind,
    /// Exactly this memory type, with no fallback to another (`None`: rank by usage).
    pub memory_type: Option<u32>,
    /// A memory object of its own, whatever the size.
    pub dedicated: bool,
    /// Residency priority of a dedicated object, `[0, 1]`.
    pub priority: f32,
}

impl AllocationRequest {
    /// A request for a linear resource, ranked by usage.
    pub const fn new(requirements: MemoryRequirements, usage: MemoryUsage) -> Self {
        Self {
            requirements,
            usage,
            kind: ResourceKind::Linear,
            memory_type: None,
            dedicated: false,
            priority: 0.5,
        }
    }

    /// A request for `size` bytes at `alignment`, any memory type, no dedicated hint.
    pub const fn sized(size: u64, alignment: u64, usage: MemoryUsage) -> Self {
        Self::new(
            MemoryRequirements {
                size,
                alignment,
                memory_type_bits: u32::MAX,
                dedicated: DedicatedHint::None,
            },
            usage,
        )
    }

    /// The same request for a resource of `kind`.
    pub const fn with_kind(mut self, kind: ResourceKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same request restricted to exactly memory type `index`.
    pub const fn with_memory_type(mut self, index: u32) -> Self {
        self.memory_type = Some(index);
        self
    }

    /// The same request as a dedicated memory object.
    pub const fn with_dedicated(mut self) -> Self {
        self.dedicated = true;
        self
    }
}

/// Where an allocation lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// A range of a block. The fields are the block sub-allocator's bookkeeping for it (see
    /// [`crate::suballocator::RawAllocation`]); its offset is the allocation's, and its size the
    /// allocation's rounded up to `nonCoherentAtomSize` in non-coherent memory.
    Block {
        /// The sub-allocator's slot.
        slot: u32,
        /// The slot's tag.
        tag: u32,
        /// The sub-allocator's reset epoch.
        epoch: u32,
    },
    /// A memory object of its own, from offset 0.
    Dedicated,
}

/// The plain-data form of a [`DeviceAllocation`], for tables and FFI. The pools validate it on
/// free: a stale, foreign or twice-freed one is refused, never honoured. 64 bytes with a 64-bit
/// memory handle: handles sit in callers' tables, and every byte is cache traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawDeviceAllocation<M> {
    /// The memory object.
    pub memory: M,
    /// Byte offset of the allocation in the memory object.
    pub offset: u64,
    /// Bytes asked for.
    pub size: u64,
    /// Host address of the first byte, for host-visible memory.
    pub mapped: Option<HostPtr>,
    /// The pools that made it.
    pub pools: AllocatorId,
    /// Memory type index.
    pub memory_type: u32,
    /// The block or dedicated-object slot.
    pub slot: u32,
    /// The slot's generation when it was made.
    pub generation: u32,
    /// Block range or dedicated object.
    pub placement: Placement,
}

/// Memory for one resource: `[offset, offset + size)` of a memory object. Bind the resource
/// there; give it back with [`super::MemoryPools::free`] once the GPU is done with it.
#[must_use = "an allocation dropped without `free` leaks its memory until the pools are destroyed"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DeviceAllocation<M> {
    raw: RawDeviceAllocation<M>,
}

impl<M: Copy> DeviceAllocation<M> {
    pub(crate) const fn from_parts(raw: RawDeviceAllocation<M>) -> Self {
        Self { raw }
    }

    /// The memory object to bind to.
    pub const fn memory(&self) -> M {
        self.raw.memory
    }

    /// Byte offset in the memory object.
    pub const fn offset(&self) -> u64 {
        self.raw.offset
    }

    /// Bytes asked for.
    pub const fn size(&self) -> u64 {
        self.raw.size
    }

    /// The memory type.
    pub const fn memory_type(&self) -> u32 {
        self.raw.memory_type
    }

    /// Host address of the allocation's first byte when its memory is host-visible (mapped
    /// once, kept mapped). It is valid for [`DeviceAllocation::size`] bytes while the allocation
    /// lives; non-coherent memory needs [`super::MemoryPools::flush`] after writes and
    /// [`super::MemoryPools::invalidate`] before reads.
    pub const fn mapped(&self) -> Option<HostPtr> {
        self.raw.mapped
    }

    /// Whether it has a memory object of its own.
    pub const fn is_dedicated(&self) -> bool {
        matches!(self.raw.placement, Placement::Dedicated)
    }

    /// The raw fields, borrowed.
    pub const fn raw(&self) -> &RawDeviceAllocation<M> {
        &self.raw
    }

    /// The plain-data form.
    pub const fn into_raw(self) -> RawDeviceAllocation<M> {
        self.raw
    }

    /// Rebuilds an allocation from its raw form. Safe: the pools validate it on free.
    pub const fn from_raw(raw: RawDeviceAllocation<M>) -> Self {
        Self { raw }
    }
}
