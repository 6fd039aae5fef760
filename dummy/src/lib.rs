//! memkit-dummy: a simulated GPU for memkit-core's device traits, so GPU memory code can be tested
//! without a GPU, and tested harder than on one.
//!
//! - **Presets** ([`Preset`], [`DeviceConfig`]): a discrete GPU with a 256 MiB BAR window, a
//!   resizable-BAR discrete GPU (the H200's memory types), an integrated GPU, lavapipe and a
//!   mobile GPU with non-coherent memory; or any custom description.
//! - **Images** ([`DummyDevice::create_image`]): optimal resources sized from core's
//!   [`ImageDesc`](memkit_core::device::ImageDesc), bound and dedicated like buffers, watched by
//!   the same detectors.
//! - **Image uploads** ([`DummyDevice::submit_image_copies`], core's `ImageCopyQueue`): regions
//!   are checked with `ImageCopy::check` against [`DeviceConfig::image_copy_granularity`] (a
//!   typed `InvalidImageCopy` error submits nothing), and execute on the timeline like buffer
//!   copies, writing texels into a documented packed tiling (level, layer, z, y, x) in the
//!   image's memory. [`DummyDevice::read_image`] reads one subresource back, tightly packed;
//!   [`DummyDevice::image_layout`] says whether an upload left the image in its layout after
//!   upload. A first upload discards the image (filled with
//!   [`DeviceConfig::discarded_image_fill`]); [`DummyDevice::application_writes_image`] stands
//!   for the application's own work writing one (a render target drawn into). Recorded:
//!   `keep_contents` on an image nothing wrote ([`Misuse::KeepContentsOfUndefinedImage`]),
//!   overlapping regions
//!   ([`Misuse::ImageCopyOverlappingRegions`]), a `desc` other than the image's
//!   ([`Misuse::ImageDescMismatch`]), and, as for buffers, source ranges past the buffer,
//!   destroyed or unbound images, and destroying or freeing an image while its upload is
//!   pending.
//! - **Image read-backs** ([`DummyDevice::submit_image_reads`], core's `ImageCopyQueue`): texels
//!   copied out of the image into a buffer at each region's offset and pitches when the value
//!   executes; a read of an image nothing wrote is recorded
//!   ([`Misuse::ReadOfUndefinedImage`]), as are destination ranges that overlap or reach past
//!   the buffer.
//! - **Moves** ([`DummyDevice::submit_moves`], core's `ImageCopyQueue::submit_moves`): a
//!   defragmentation pass's buffer copies and image moves in one submission; a move out of an
//!   image nothing wrote, or into one that held contents, is recorded
//!   ([`Misuse::MoveIntoUsedImage`]).
//! - **The application's timelines** ([`DummyTimeline`], core's `ExternalTimelines`): timelines
//!   the test signals by hand for the application's queue. Submissions made after
//!   `wait_for_external` execute only once their value was signalled, as on a GPU; a copy into,
//!   or the destruction of, a buffer or image that the application declared in use
//!   ([`DummyDevice::application_uses`]) before its timeline got there is a misuse, and so is a
//!   signal that does not raise the timeline's value
//!   ([`Misuse::ApplicationSignalNotIncreasing`]), which Vulkan refuses.
//! - **Real bytes**: every memory object has them, lazily (device-only memory in sparse pages,
//!   host-visible memory in zeroed pages the OS backs on first touch), mapped at a stable address.
//! - **A timeline the test drives**: submitted copies execute, really moving bytes, when the test
//!   calls [`DummyDevice::advance_to`], [`DummyDevice::complete_next`] or
//!   [`DummyDevice::complete_all`]; `wait` follows a [`WaitMode`]. Nothing sleeps.
//! - **Misuse detection** ([`Misuse`]): unflushed host writes read by the device, device writes
//!   read by the host without invalidate, granularity conflicts, aliasing, double map/free/destroy,
//!   use after free, freeing or destroying what a pending copy uses, host writes into a range a
//!   pending copy reads, bad ranges and regions. Recorded as data; optionally a panic.
//! - **Fault injection** ([`Trigger`], [`ScheduledFault`], [`RandomFailures`]): the n-th
//!   allocation, map, buffer or image creation, bind or submission fails; budgets shrink; the
//!   device is lost; random failures reproducible from a seed. Heap sizes and
//!   `maxMemoryAllocationCount` are enforced like a driver.
//! - **Counters and a leak report** ([`Counters`], [`LeakReport`]), printed on drop.
//!
//! ```
//! use memkit_core::device::{BufferCopy, BufferUsage, CopyCommand, MemoryAllocateInfo};
//! use memkit_dummy::DummyDevice;
//!
//! let gpu = DummyDevice::discrete();
//! let usage = BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST;
//! let info = |memory_type| MemoryAllocateInfo {
//!     size: 4096,
//!     memory_type,
//!     dedicated_to: None,
//!     priority: 0.5,
//!     device_address: false,
//! };
//! // Type 1 is host-visible coherent, type 0 device-local on this preset.
//! let staging_memory = gpu.allocate_memory(&info(1)).unwrap();
//! let vram = gpu.allocate_memory(&info(0)).unwrap();
//! let (staging, _) = gpu.create_buffer(4096, usage).unwrap();
//! let (target, _) = gpu.create_buffer(4096, usage).unwrap();
//! gpu.bind_buffer_memory(staging, staging_memory, 0).unwrap();
//! gpu.bind_buffer_memory(target, vram, 0).unwrap();
//! gpu.map_memory(staging_memory).unwrap();
//! gpu.host_write(staging_memory, 0, b"hello").unwrap();
//! let region = [BufferCopy { src_offset: 0, dst_offset: 100, size: 5 }];
//! let copy = CopyCommand { src: staging, dst: target, regions: &region };
//! gpu.submit_copies(&[copy], 1).unwrap();
//! assert_eq!(gpu.read_buffer(target, 100, 5).unwrap(), [0; 5]); // not executed yet
//! gpu.advance_to(1);
//! assert_eq!(gpu.read_buffer(target, 100, 5).unwrap(), b"hello");
//! gpu.assert_no_misuse();
//! # for b in [staging, target] { gpu.destroy_buffer(b); }
//! # for m in [staging_memory, vram] { gpu.free_memory(m); }
//! # assert!(gpu.leak_report().is_empty());
//! ```
//!
//! Unsafe code is confined to `host_bytes.rs` (the mapped bytes) and the trait impls (which
//! only forward to safe methods).
#![deny(unsafe_code)]

mod calls;
pub use calls::DEVICE_ADDRESS_WINDOW;
mod config;
mod device;
mod external;
mod faults;
mod handles;
mod hash;
mod host_bytes;
mod image_move;
mod image_read;
mod image_upload;
mod intervals;
mod memory;
mod misuse;
mod report;
mod sparse;
mod traits;

pub use config::{
    DeviceConfig, MIN_MAX_RESOURCE_SIZE, Preset, TextureCompression, UnknownPreset, WaitMode,
};
pub use device::{BufferInfo, DummyDevice, InspectError, MISUSE_RESULT_CODE, MemoryInfo};
pub use external::DummyTimeline;
pub use faults::{RandomFailures, ScheduledFault, Trigger};
pub use handles::{DummyBuffer, DummyImage, DummyMemory};
pub use misuse::{InvalidAllocation, Misuse, MisuseKind, Operation};
pub use report::{Counters, LeakReport, LeakedBuffer, LeakedMemory};
