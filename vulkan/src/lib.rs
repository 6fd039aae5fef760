//! memkit over Vulkan through `ash`: core's device traits ([`memkit_core::device`]) on real
//! device memory and queues.
//!
//! - [`VulkanDevice::new`] wraps an application's ash `Instance`, `PhysicalDevice` and `Device`
//!   (memkit never destroys what it did not create) and implements
//!   [`MemoryDevice`](memkit_core::device::MemoryDevice),
//!   [`BufferDevice`](memkit_core::device::BufferDevice) and
//!   [`CopyQueue`](memkit_core::device::CopyQueue): copies as `vkCmdCopyBuffer` with many regions
//!   on a transfer-only queue when there is one, recycled command buffers, a timeline semaphore
//!   (or a fence pool) signalled per submission.
//! - [`CopyRecorder`] records the same copies into a command buffer the application submits.
//! - [`release_barrier`] / [`acquire_barrier`] move exclusive buffers between queue families.
//! - [`HeadlessDevice`] creates an instance and device in one call, optionally with validation.
//! - [`probe`] describes a physical device as plain data.

mod barrier;
mod conv;
mod debug;
mod device;
mod error;
mod headless;
mod probe;
mod queue;
mod timeline;
mod transfer;

pub use ash;
pub use barrier::{
    OwnershipTransfer, acquire_barrier, acquire_barriers_for, record_acquire, record_release,
    release_barrier, release_barriers_for,
};
pub use debug::ValidationLog;
pub use device::{EnabledFeatures, QueueLocation, VulkanDevice, VulkanDeviceConfig};
pub use error::{
    FEATURE_NOT_ENABLED, INVALID_ARGUMENT, SetupError, map_host_device_oom_and_lost_err,
    map_host_device_oom_and_map_failed_err, map_host_device_oom_and_too_many_objects_err,
    map_host_device_oom_err, map_host_oom_err,
};
pub use headless::{HeadlessConfig, HeadlessDevice};
pub use probe::{ProbeHeap, ProbeQueueFamily, ProbeReport, probe};
pub use queue::{TransferFamily, find_transfer_queue_family};
pub use timeline::TimelineMode;
pub use transfer::CopyRecorder;
