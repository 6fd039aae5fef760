//! memkit-core: GPU memory management with no heap and no panics on caller input.
//!
//! Sub-allocators over offsets ([`suballocator`]), with metadata in storage the caller provides.
//! Everything here is `#![no_std]` without `alloc`, so it runs on consoles and bare metal as well
//! as on the desktop.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod buddy;
pub mod device;
pub mod scheduler;
pub mod suballocator;

pub use buddy::{BuddyAllocator, BuddyConfig};
pub use suballocator::{
    AllocError, Allocation, AllocatorId, AllocatorStats, ConfigError, FreeError, RawAllocation,
    SubAllocator,
};
pub use scheduler::{TransferPlan, TransferScheduler};
