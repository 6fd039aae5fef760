//! memkit over Vulkan through `ash`: core's device traits ([`memkit_core::device`]) on real
//! device memory and queues.
//!
//! - [`VulkanDevice::new`] wraps an application's ash `Instance`, `PhysicalDevice` and `Device`
//!   (memkit never destroys what it did not create) and implements
//!   [`MemoryDevice`](memkit_core::device::MemoryDevice),
//!   [`BufferDevice`](memkit_core::device::BufferDevice),
//!   [`ImageDevice`](memkit_core::device::ImageDevice) (optimal-tiling images, checked against
//!   the device's format support first) and
//!   [`CopyQueue`](memkit_core::device::CopyQueue): copies as `vkCmdCopyBuffer` with many regions
//!   on a transfer-only queue when there is one, recycled command buffers, a timeline semaphore
//!   (or a fence pool) signalled per submission; large submissions split over extra queues
//!   ([`lanes`]).
//! - [`CopyRecorder`] records the same copies into a command buffer the application submits.
//! - [`release_barrier`] / [`acquire_barrier`] move exclusive buffers between queue families.
//! - [`HeadlessDevice`] creates an instance and device in one call, optionally with validation;
//!   [`SharedHeadlessDevice`] shares one between a coordinator and the tool that made it.
//! - [`probe`] describes a physical device as plain data.
//! - [`HostBuffer`] and [`read_buffer`] write and read buffers by hand, for tools and tests.
//!
//! An application that made its own device hands memkit the handles and what it enabled:
//!
//! ```no_run
//! use memkit_vulkan::ash::{self, vk};
//! use memkit_vulkan::{EnabledFeatures, QueueLocation, VulkanDevice, VulkanDeviceConfig};
//!
//! # fn wire(
//! #     instance: &ash::Instance,
//! #     physical_device: vk::PhysicalDevice,
//! #     device: &ash::Device,
//! # ) -> Result<VulkanDevice, memkit_core::device::DeviceError> {
//! // Chosen before creating the device, which then got a queue in this family.
//! // SAFETY: the physical device belongs to the instance.
//! let family = unsafe { memkit_vulkan::find_transfer_queue_family(instance, physical_device) }
//!     .expect("a family that copies");
//! let config = VulkanDeviceConfig {
//!     transfer_queue: QueueLocation { family: family.family, index: 0 },
//!     enabled: EnabledFeatures {
//!         api_version: vk::API_VERSION_1_3,
//!         timeline_semaphore: true,
//!         ..EnabledFeatures::default()
//!     },
//!     ..VulkanDeviceConfig::default()
//! };
//! // SAFETY: the device comes from this instance and physical device and outlives `memkit`;
//! // the queue exists and the application does not submit to it; the features were enabled.
//! let memkit = unsafe { VulkanDevice::new(instance, physical_device, device, config) }?;
//! # Ok(memkit)
//! # }
//! ```
//!
//! Tools and tests get everything in one call:
//!
//! ```no_run
//! use memkit_vulkan::{HeadlessConfig, HeadlessDevice};
//!
//! let headless = HeadlessDevice::new(HeadlessConfig { validation: true, ..Default::default() })?;
//! println!("{}", headless.device().probe()?);
//! let messages = headless.finish(); // teardown included; empty when validation found nothing
//! assert!(messages.is_empty(), "{messages:#?}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod barrier;
mod commands;
mod conv;
mod debug;
mod device;
mod drain;
mod error;
mod headless;
mod host_buffer;
mod image;
pub mod lanes;
mod probe;
mod queue;
mod shared;
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
    SetupError, map_host_device_oom_and_lost_err, map_host_device_oom_and_map_failed_err,
    map_host_device_oom_and_too_many_objects_err, map_host_device_oom_err, map_host_oom_err,
};
pub use headless::{HeadlessConfig, HeadlessDevice};
pub use host_buffer::{HostBuffer, read_buffer};
pub use lanes::{CopyLanes, MAX_COPY_LANES};
pub use probe::{ProbeHeap, ProbeQueueFamily, ProbeReport, probe};
pub use queue::{TransferFamily, find_transfer_queue_family};
pub use shared::SharedHeadlessDevice;
pub use timeline::TimelineMode;
pub use transfer::CopyRecorder;
