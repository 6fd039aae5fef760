//! memkit-core: GPU memory management with no heap and no panics on caller input.
//!
//! Sub-allocators over offsets ([`suballocator`]), with metadata in storage the caller provides.
//! Everything here is `#![no_std]` without `alloc`, so it runs on consoles and bare metal as well
//! as on the desktop.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod aliasing;
pub mod buddy;
pub mod device;
pub mod frame;
mod instance_id;
pub mod pool;
pub mod ring;
pub mod scheduler;
pub mod selection;
pub mod suballocator;
mod sync;
pub mod timeline;
pub mod tlsf;
pub mod usage;

pub use buddy::{BuddyAllocator, BuddyConfig};
pub use frame::{BufferingMode, Frame, FrameError, FramePacer, FrameRefused};
pub use pool::{
    AllocationRequest, DeviceAllocation, MemoryPools, PoolConfig, PoolError, PoolStats,
};
pub use ring::{
    CommitError, ConsumerError, DEFAULT_WORKING_SET, DrainedRange, GrantError, MarkError,
    RingConsumer, RingMemory, RingProducer, RingStats, StagingRing, WriteGrant,
};
pub use scheduler::{TransferPlan, TransferScheduler};
pub use selection::MemoryTypeRanking;
pub use suballocator::{
    AllocError, Allocation, AllocatorId, AllocatorStats, ConfigError, FreeError, LiveRange,
    RawAllocation, SubAllocator,
};
pub use timeline::{
    FencePool, FenceSlot, FenceValue, SignalError, SubmissionState, SubmitError, TimelineTracker,
};
pub use tlsf::{TlsfAllocator, TlsfConfig, TlsfNode};
pub use usage::{MemoryUsage, ResourceKind};
