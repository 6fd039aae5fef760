//! What a caller means to do with memory ([`MemoryUsage`]) and how the resource lays out its bytes
//! ([`ResourceKind`]). Memory-type selection ([`crate::selection`]) turns the first into a
//! ranking of memory types; the pools use the second to keep linear and optimal resources off
//! each other's `bufferImageGranularity` pages.
#![forbid(unsafe_code)]

bitflags::bitflags! {
    /// How a resource's memory will be used. The flags combine: `UPLOAD | FAST_DEVICE_ACCESS`
    /// asks for memory the host writes and the device reads fast (a resizable-BAR window on a
    /// discrete GPU, any host-visible type on an integrated one).
    ///
    /// An empty set means "device only", the same as [`MemoryUsage::FAST_DEVICE_ACCESS`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MemoryUsage: u32 {
        /// The device reads or writes it often: prefer `DEVICE_LOCAL`.
        const FAST_DEVICE_ACCESS = 1 << 0;
        /// The host reads and writes it through a mapping, in any pattern: requires
        /// `HOST_VISIBLE`, prefers coherent and cached memory.
        const HOST_ACCESS = 1 << 1;
        /// The host writes it sequentially and the device reads it (staging, per-frame
        /// constants): requires `HOST_VISIBLE`, prefers write-combined (not cached) memory.
        const UPLOAD = 1 << 2;
        /// The device writes it and the host reads it back: requires `HOST_VISIBLE`, prefers
        /// `HOST_CACHED`, since uncached reads are an order of magnitude slower.
        const DOWNLOAD = 1 << 3;
        /// Lives only within a render pass (transient attachments): may use `LAZILY_ALLOCATED`
        /// memory, which memkit never picks otherwise.
        const TRANSIENT = 1 << 4;
        /// The resource's device address is taken (`VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT`).
        /// It does not change which type is picked; it changes how the memory object is made:
        /// the pools sub-allocate such buffers from blocks of their own that have the flag (or
        /// from any block, with `PoolConfig::device_address_blocks`).
        const DEVICE_ADDRESS = 1 << 5;
    }
}

impl MemoryUsage {
    /// Whether the host maps the memory.
    pub const fn needs_host_access(self) -> bool {
        self.intersects(Self::HOST_ACCESS.union(Self::UPLOAD).union(Self::DOWNLOAD))
    }
}

/// How a resource lays out its bytes, for `bufferImageGranularity`: a linear resource (a buffer,
/// a linear-tiled image) and an optimal one (an optimal-tiled image) closer than the granularity
/// must not share a page of that size, or the device may alias them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// Buffers and linear-tiled images.
    #[default]
    Linear,
    /// Optimal-tiled images.
    Optimal,
}

impl ResourceKind {
    /// A small index (0 for linear, 1 for optimal), for per-kind tables.
    pub const fn index(self) -> usize {
        match self {
            Self::Linear => 0,
            Self::Optimal => 1,
        }
    }
}
