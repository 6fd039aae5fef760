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
//!   ([`lanes`]); and [`ImageCopyQueue`](memkit_core::device::ImageCopyQueue): uploads into
//!   images on the same queue and timeline (see "Uploading into images").
//! - [`CopyRecorder`] and [`ImageCopyRecorder`] record the same copies and uploads into a command
//!   buffer the application submits.
//! - [`release_barrier`] / [`acquire_barrier`] move exclusive buffers between queue families.
//! - [`HeadlessDevice`] creates an instance and device in one call, optionally with validation;
//!   [`SharedHeadlessDevice`] shares one between a coordinator and the tool that made it.
//! - [`probe`] describes a physical device as plain data.
//! - [`HostBuffer`] and [`read_buffer`] write and read buffers by hand, and [`read_image`] reads
//!   every level of an uploaded image back on memkit's queue, for tools and tests.
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
//! // the queue exists and the application submits to it only through `with_transfer_queue`;
//! // the features were enabled.
//! let memkit = unsafe { VulkanDevice::new(instance, physical_device, device, config) }?;
//! # Ok(memkit)
//! # }
//! ```
//!
//! Enable `timelineSemaphore` (`VkPhysicalDeviceVulkan12Features`) when creating the device and
//! mark it in [`EnabledFeatures`]: the application's own submissions can then wait on the GPU for
//! memkit's copies ([`VulkanDevice::timeline_semaphore`]); without it memkit falls back to fences
//! and the application waits on the host. Where the transfer family is the graphics family, give
//! memkit a second queue of it when the family has one; where it has only one (lavapipe), memkit's
//! queue is the application's too, and the application submits to it through
//! [`VulkanDevice::with_transfer_queue`].
//!
//! # With memkit-std's `Coordinator`
//!
//! `Coordinator::new` takes the `VulkanDevice` by value; the application keeps its own `ash`
//! handles and reaches memkit's through `coordinator.device()` (the timeline semaphore, the shared
//! queue). Its own submissions that read what the coordinator uploaded:
//! - wait on [`VulkanDevice::timeline_semaphore`] for the upload ticket's `value()`, at the stage
//!   that first reads the data (the semaphore wait is the memory dependency; no barrier is
//!   needed). The value is `None` while the upload is only staged: `flush_transfers` (or
//!   `end_frame`) submits it first. `Some(0)` means the bytes were written by the CPU and there is
//!   nothing to wait for;
//! - across queue families, create the `VulkanDevice` with
//!   [`VulkanDeviceConfig::concurrent_with_family`]. `release_to_family` needs acquire barriers
//!   matching the copy commands ([`VulkanDevice::acquire_barriers`]), and the coordinator does
//!   not hand its commands out;
//! - must be complete before the coordinator copies into the same buffer again: its submissions
//!   wait for nothing of the application's, and its frame pacing (`begin_frame`) waits only for
//!   its own copies. Wait for the frame slot's own fence before `begin_frame`, as engines do
//!   before reusing a slot's resources.
//!   Or, without the host waiting, have memkit's later copies wait on the GPU: signal a timeline
//!   semaphore of the application's from those submissions and pass it, with the value they
//!   signal, to [`ExternalTimelines::wait_for_external`](memkit_core::device::ExternalTimelines::wait_for_external)
//!   (through the coordinator, `Coordinator::wait_for_external`). Every submission memkit makes
//!   after that call, buffer copies, image uploads and read-backs, on its transfer queue and its
//!   copy lanes, waits for the value before any of its commands runs. This needs memkit's own
//!   timeline semaphore (`timelineSemaphore` enabled, not the fence-pool fallback).
//!
//! Teardown: wait for the application's submissions that use memkit's buffers or wait on its
//! semaphore; drop every `Buffer` and `Ticket`; shut the coordinator down with
//! `shutdown_into_device`, which hands the `VulkanDevice` back once nothing else holds it, and
//! drop it (that destroys memkit's semaphore and command pool); then destroy the `ash` device. `vulkan/tests/engine_integration.rs` does all of this with
//! validation on.
//!
//! # Uploading into images
//!
//! [`ImageCopyQueue::submit_image_copies`](memkit_core::device::ImageCopyQueue::submit_image_copies)
//! checks every region ([`ImageCopy::check`](memkit_core::device::ImageCopy::check), against the
//! transfer family's `minImageTransferGranularity`, which
//! [`image_copy_granularity`](memkit_core::device::ImageCopyQueue::image_copy_granularity)
//! returns), then records one command buffer on memkit's transfer queue, in submission order with
//! the buffer copies (image uploads are never split over copy lanes), signalling the timeline
//! value like them. For each command it records:
//! - a barrier moving every subresource of the image (all levels and layers, colour aspect) to
//!   `TRANSFER_DST_OPTIMAL`: from `UNDEFINED` (discarding what the image held), or with
//!   `keep_contents` from the layout after upload. It waits for everything submitted before it on
//!   the queue, so an earlier upload into the image is ordered before it;
//! - one `vkCmdCopyBufferToImage` with the command's regions, at each region's row length and
//!   image height;
//! - a barrier moving every subresource to
//!   [`ImageDesc::layout_after_upload`](memkit_core::device::ImageDesc::layout_after_upload):
//!   `SHADER_READ_ONLY_OPTIMAL` for sampled or input-attachment images, `GENERAL` otherwise.
//!
//! Several commands into one image in one submission run in order. What the application does:
//! - its submissions that use the image wait on [`VulkanDevice::timeline_semaphore`] for the
//!   upload's value (or, with the fence-pool fallback, the host waits with
//!   [`CopyQueue::wait`](memkit_core::device::CopyQueue::wait) first); the wait makes the texels
//!   and the new layout visible, and the image is in the layout after upload;
//! - before an upload with `keep_contents`, it puts the image back in the layout after upload and
//!   lets its own use of the image finish (or submits on memkit's queue before it);
//! - where memkit copies on a family other than the one that uses the image, either:
//!   - it sets [`VulkanDeviceConfig::concurrent_with_family`] (or copy lanes): images created
//!     through memkit-vulkan are then `VK_SHARING_MODE_CONCURRENT` between the families, as
//!     buffers are, and nothing more is needed;
//!   - or it keeps images exclusive and sets [`VulkanDeviceConfig::release_to_family`]: each
//!     submission then releases every image it uploads into to that family, once, after the
//!     image's last command, in the layout after upload. The application records the matching
//!     acquires ([`VulkanDevice::image_acquire_barriers`], [`record_image_acquire`]) in its
//!     submission that waits for the value. Before an upload with `keep_contents`, it hands the
//!     image back ([`image_return_barrier`], [`record_image_return`]) in a submission that
//!     completes before the upload is submitted, and memkit's first barrier for the image is the
//!     matching reclaim. An upload that discards the contents needs no handing back.
//!
//! Depth and multisampled images cannot be uploaded into (a copy into depth needs a graphics
//! queue); `vulkan/tests/image_upload.rs` reads uploads back byte for byte with validation and
//! synchronization validation on.
//!
//! [`read_image`] reads an uploaded image back on memkit's queue, at a timeline value of its own,
//! packed as uploads take texels (under a release, as an upload with `keep_contents`: the
//! application returns the image first and acquires it again after).
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
mod external;
mod headless;
mod host_buffer;
mod image;
mod image_move;
mod image_readback;
mod image_upload;
pub mod lanes;
mod probe;
mod queue;
mod shared;
mod timeline;
mod transfer;

pub use ash;
pub use barrier::{
    OwnershipTransfer, acquire_barrier, acquire_barriers_for, image_acquire_barrier,
    image_acquire_barriers_for, image_reclaim_barrier, image_release_barrier, image_return_barrier,
    record_acquire, record_image_acquire, record_image_return, record_release, release_barrier,
    release_barriers_for,
};
pub use conv::map_image_format as vk_format;
pub use debug::ValidationLog;
pub use device::{EnabledFeatures, QueueLocation, VulkanDevice, VulkanDeviceConfig};
pub use error::{
    SetupError, map_host_device_oom_and_lost_err, map_host_device_oom_and_map_failed_err,
    map_host_device_oom_and_too_many_objects_err, map_host_device_oom_err, map_host_oom_err,
};
pub use headless::{HeadlessConfig, HeadlessDevice};
pub use host_buffer::{HostBuffer, read_buffer};
pub use image_readback::read_image;
pub use image_upload::ImageCopyRecorder;
pub use lanes::{CopyLanes, MAX_COPY_LANES};
pub use probe::{ProbeHeap, ProbeQueueFamily, ProbeReport, probe};
pub use queue::{TransferFamily, find_transfer_queue_family};
pub use shared::SharedHeadlessDevice;
pub use timeline::TimelineMode;
pub use transfer::CopyRecorder;
