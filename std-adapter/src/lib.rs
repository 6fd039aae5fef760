//! memkit-std: memkit for desktop engines.
//!
//! [`Coordinator`] is one object shared between threads: it creates GPU buffers from
//! memory-type pools, streams uploads through a lock-free staging ring without blocking the
//! caller, merges them into few copy commands, paces frames, and hands back [`Ticket`]s to wait
//! on. On a device that uploads into images it also creates [`Image`]s (textures, render
//! targets) in pool memory and fills them ([`Coordinator::create_image_with_data`],
//! [`Coordinator::upload_image`]), leaving them in a layout shaders read. When freeing in
//! another order than allocating has spread its buffers thin, [`Coordinator::defragment`] moves
//! them into fuller blocks on the GPU and gives the emptied blocks back. It runs over any device
//! that implements memkit-core's traits: `memkit-vulkan` on a GPU, `memkit-dummy` without one.
//!
//! With the `cli` feature, the crate also builds the `memkit` command (`memkit demo`,
//! `memkit probe`, `memkit bench`).

mod buffer;
mod config;
mod coordinator;
mod device;
mod error;
mod frame;
mod image;
mod key_map;
mod memory_map;
mod readback;
mod stats;
mod ticket;
mod transient;

pub use buffer::Buffer;
/// The `bytemuck` crate whose `Pod` bound the typed uploads take ([`Coordinator::upload_slice`],
/// [`Coordinator::upload_to`]): name it through this re-export, so that the versions match.
pub use bytemuck;
pub use config::{
    BackPressure, CoordinatorConfig, MAX_PENDING_UPLOADS, MAX_POOL_METADATA_BYTES, MAX_POOL_SLOTS,
    MIN_STAGING_RING_SIZE,
};
pub use coordinator::{
    AliasedBufferDesc, AliasedImageDesc, AliasedResources, BUFFER_USAGE, Coordinator,
    Defragmentation, StagingGrant,
};
pub use device::Device;
pub use error::{Error, NotAliasableReason, Result};
pub use frame::Frame;
pub use image::Image;
pub use memkit_core::pool::{DefragmentationLimits, DefragmentationPlan};
pub use memkit_core::{BufferingMode, MemoryUsage, PoolConfig};
pub use readback::Readback;
pub use stats::{CoordinatorStats, HeapReport, format_bytes};
pub use ticket::Ticket;
pub use transient::{TransientSlice, TransientWriter};

/// The README's quick start, run as a doc test (`cargo test -p memkit-std --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
