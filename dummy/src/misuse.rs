//! Misuse the simulated device detects: contract violations a real driver would accept silently
//! (or crash on later), recorded as typed events the test can read.
#![forbid(unsafe_code)]

use std::fmt;

use memkit_core::device::BufferUsage;

use crate::external::DummyTimeline;
use crate::handles::{DummyBuffer, DummyMemory};

/// The device call during which a misuse was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `allocate_memory` (a dedicated allocation naming a buffer or an image).
    Allocate,
    /// `free_memory`.
    Free,
    /// `map_memory`.
    Map,
    /// `unmap_memory`.
    Unmap,
    /// `flush_ranges`.
    Flush,
    /// `invalidate_ranges`.
    Invalidate,
    /// `bind_buffer_memory`.
    Bind,
    /// `destroy_buffer`.
    Destroy,
    /// `submit_copies` or `submit_image_copies`.
    Submit,
    /// A test helper such as [`DummyDevice::host_write`](crate::DummyDevice::host_write).
    Inspect,
    /// `buffer_device_address`.
    Address,
}

/// Why an `allocate_memory` call broke its contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvalidAllocation {
    /// The memory type index is not below the type count.
    BadMemoryType,
    /// The size is zero.
    ZeroSize,
    /// The size is above `maxMemoryAllocationSize` (the call fails with `OutOfDeviceMemory`).
    AboveMaxAllocationSize,
    /// The buffer (or image) named for a dedicated allocation is not alive, or already bound.
    BadDedicatedBuffer,
    /// A dedicated allocation's size differs from its buffer's (or image's) required size
    /// (Vulkan requires them equal).
    DedicatedSizeMismatch,
    /// The priority is outside `[0, 1]` (or not a number).
    BadPriority,
}

/// One detected misuse. Offsets are in bytes from the start of the memory object unless the field
/// says otherwise.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misuse {
    /// An `allocate_memory` call broke its contract.
    InvalidAllocation {
        /// What was wrong.
        reason: InvalidAllocation,
    },
    /// A freed memory object was freed again.
    MemoryFreedTwice {
        /// The object.
        memory: DummyMemory,
    },
    /// A freed memory object was used (bound to, mapped, flushed, copied through a buffer bound to
    /// it).
    MemoryUseAfterFree {
        /// The object.
        memory: DummyMemory,
        /// The call.
        operation: Operation,
    },
    /// A memory handle from another device, or one never handed out.
    ForeignMemory {
        /// The handle.
        memory: DummyMemory,
        /// The call.
        operation: Operation,
    },
    /// A destroyed buffer was destroyed again.
    BufferDestroyedTwice {
        /// The buffer.
        buffer: DummyBuffer,
    },
    /// A destroyed buffer was used (bound, copied, named in a dedicated allocation).
    BufferUseAfterDestroy {
        /// The buffer.
        buffer: DummyBuffer,
        /// The call.
        operation: Operation,
    },
    /// A buffer handle from another device, or one never handed out.
    ForeignBuffer {
        /// The handle.
        buffer: DummyBuffer,
        /// The call.
        operation: Operation,
    },
    /// Memory was freed while a live buffer was still bound to it.
    FreedWithBoundBuffer {
        /// The object freed.
        memory: DummyMemory,
        /// The buffer still bound.
        buffer: DummyBuffer,
    },
    /// Memory was freed while a submitted copy that uses it had not completed.
    FreedWhilePending {
        /// The object freed.
        memory: DummyMemory,
        /// The timeline value of the pending submission.
        signal_value: u64,
    },
    /// A buffer was destroyed while a submitted copy that uses it had not completed.
    DestroyedWhilePending {
        /// The buffer.
        buffer: DummyBuffer,
        /// The timeline value of the pending submission.
        signal_value: u64,
    },
    /// A mapped object was mapped again.
    MappedTwice {
        /// The object.
        memory: DummyMemory,
    },
    /// An object of a type without `HOST_VISIBLE` was mapped.
    MapNotHostVisible {
        /// The object.
        memory: DummyMemory,
    },
    /// An object was unmapped (or flushed, invalidated, written by the host) while not mapped.
    NotMapped {
        /// The object.
        memory: DummyMemory,
        /// The call.
        operation: Operation,
    },
    /// A flush or invalidate range whose offset is not a multiple of `nonCoherentAtomSize`, or
    /// whose size is neither a multiple of it nor reaches the end of the object.
    RangeMisaligned {
        /// The object.
        memory: DummyMemory,
        /// Range start.
        offset: u64,
        /// Range size.
        size: u64,
        /// Flush or invalidate.
        operation: Operation,
    },
    /// A range that does not lie inside the object (flush, invalidate, test helpers).
    RangeOutOfBounds {
        /// The object.
        memory: DummyMemory,
        /// Range start.
        offset: u64,
        /// Range size.
        size: u64,
        /// The call.
        operation: Operation,
    },
    /// A buffer bound a second time.
    BoundTwice {
        /// The buffer.
        buffer: DummyBuffer,
    },
    /// A binding whose range does not fit inside the memory object.
    BindOutOfRange {
        /// The buffer.
        buffer: DummyBuffer,
        /// The object.
        memory: DummyMemory,
        /// The offset asked for.
        offset: u64,
    },
    /// A binding offset that is not a multiple of the buffer's required alignment.
    BindMisaligned {
        /// The buffer.
        buffer: DummyBuffer,
        /// The offset asked for.
        offset: u64,
        /// The required alignment.
        alignment: u64,
    },
    /// A binding to memory whose type is not in the buffer's `memory_type_bits`.
    BindTypeNotAllowed {
        /// The buffer.
        buffer: DummyBuffer,
        /// The memory type of the object.
        memory_type: u32,
    },
    /// A dedicated object bound to another resource (or at a nonzero offset), or a resource that
    /// requires a dedicated object bound to a shared one.
    DedicatedMismatch {
        /// The buffer.
        buffer: DummyBuffer,
        /// The object.
        memory: DummyMemory,
    },
    /// A buffer with `DEVICE_ADDRESS` usage bound to memory allocated without device-address
    /// support.
    BindWithoutDeviceAddress {
        /// The buffer.
        buffer: DummyBuffer,
        /// The object.
        memory: DummyMemory,
    },
    /// A linear and an optimal resource share a `bufferImageGranularity` page of one object.
    GranularityConflict {
        /// The object.
        memory: DummyMemory,
        /// The linear resource.
        linear: DummyBuffer,
        /// The optimal resource.
        optimal: DummyBuffer,
        /// The shared page's offset in the object.
        page_offset: u64,
    },
    /// Two live resources bound to overlapping bytes of one object. Vulkan allows aliasing, but
    /// memkit never aliases on purpose: it means a range was handed out twice.
    AliasedBinding {
        /// The object.
        memory: DummyMemory,
        /// The resource bound first.
        first: DummyBuffer,
        /// The resource bound second.
        second: DummyBuffer,
    },
    /// A copy names a buffer that is not bound to memory.
    CopyUnboundBuffer {
        /// The buffer.
        buffer: DummyBuffer,
    },
    /// `buffer_device_address` of a buffer made without `DEVICE_ADDRESS` usage, or not bound to
    /// memory yet.
    AddressUnavailable {
        /// The buffer.
        buffer: DummyBuffer,
    },
    /// A copy names an optimal (image-like) resource; buffer copies take buffers only.
    CopyOptimalResource {
        /// The resource.
        buffer: DummyBuffer,
    },
    /// A copy source without `TRANSFER_SRC` or destination without `TRANSFER_DST`.
    CopyMissingUsage {
        /// The buffer.
        buffer: DummyBuffer,
        /// The usage it lacks.
        needed: BufferUsage,
    },
    /// A copy region of size zero (Vulkan requires nonzero).
    CopyZeroSize {
        /// Source buffer.
        src: DummyBuffer,
        /// Destination buffer.
        dst: DummyBuffer,
    },
    /// A copy region outside a buffer. Offsets here are in the buffer.
    CopyOutOfBounds {
        /// The buffer overrun.
        buffer: DummyBuffer,
        /// Region offset in that buffer.
        offset: u64,
        /// Region size.
        size: u64,
    },
    /// Two regions of one copy command write overlapping destination bytes.
    CopyOverlappingDestinations {
        /// The destination buffer.
        dst: DummyBuffer,
    },
    /// A region's source and destination bytes overlap in memory.
    CopySourceOverlapsDestination {
        /// The memory object both live in.
        memory: DummyMemory,
    },
    /// A submission's signal value is not above every value submitted before.
    SignalNotIncreasing {
        /// The value given.
        signal_value: u64,
        /// The highest value submitted before.
        last_submitted: u64,
    },
    /// The device read non-coherent memory whose host writes were not flushed: at submit, the
    /// host's view of a source range differed from the device's.
    UnflushedHostWrite {
        /// The object.
        memory: DummyMemory,
        /// First differing byte.
        offset: u64,
        /// The source range's size.
        size: u64,
    },
    /// The bytes a copy reads changed between its submission and its execution: the host wrote
    /// into a staging range while a pending copy still read it.
    HostWriteWhilePending {
        /// The object.
        memory: DummyMemory,
        /// Source range start.
        offset: u64,
        /// Source range size.
        size: u64,
        /// The pending submission's timeline value.
        signal_value: u64,
    },
    /// The host wrote into a host-visible range that a pending copy was going to overwrite.
    HostWriteToPendingDestination {
        /// The object.
        memory: DummyMemory,
        /// Destination range start.
        offset: u64,
        /// Destination range size.
        size: u64,
        /// The pending submission's timeline value.
        signal_value: u64,
    },
    /// The host read non-coherent bytes the device wrote without invalidating them first
    /// (reported by [`DummyDevice::host_read`](crate::DummyDevice::host_read) and
    /// [`DummyDevice::check_host_read`](crate::DummyDevice::check_host_read)).
    HostReadWithoutInvalidate {
        /// The object.
        memory: DummyMemory,
        /// First stale byte.
        offset: u64,
        /// Stale bytes in the range read.
        size: u64,
    },
    /// Bytes of a freed, still-quarantined host-visible object changed after the free: the host
    /// wrote through a stale mapped pointer.
    HostWriteAfterFree {
        /// The freed object.
        memory: DummyMemory,
    },
    /// An upload with `keep_contents` that executed while nothing had written the image (no
    /// upload before it, nor the application,
    /// [`DummyDevice::application_writes_image`](crate::DummyDevice::application_writes_image)):
    /// its layout is undefined, so the contents to keep do not exist (a layout transition from
    /// the wrong old layout, on a GPU). The upload runs as a first one: what it does not cover
    /// is discarded.
    KeepContentsOfUndefinedImage {
        /// The image's resource handle.
        image: DummyBuffer,
    },
    /// A read-back that executed while nothing had written the image (no upload before it, nor
    /// the application): its layout is undefined (a layout transition from the wrong old
    /// layout, on a GPU), and the bytes read are garbage.
    ReadOfUndefinedImage {
        /// The image's resource handle.
        image: DummyBuffer,
    },
    /// An image move (defragmentation's copy) executed into an image that already held
    /// contents (an upload, a move or the application wrote it): a move's destination must be a
    /// new image, whose undefined layout the copy starts from. The move runs anyway.
    MoveIntoUsedImage {
        /// The destination image's resource handle.
        image: DummyBuffer,
    },
    /// Two regions of one upload write overlapping texels of one image (same level, a shared
    /// layer, intersecting boxes): the GPU runs them in no particular order.
    ImageCopyOverlappingRegions {
        /// The image's resource handle.
        image: DummyBuffer,
    },
    /// An upload's `desc` is not what its image was created with; the command is dropped, since
    /// its regions were checked against the wrong extents.
    ImageDescMismatch {
        /// The image's resource handle.
        image: DummyBuffer,
    },
    /// A copy or upload executed into a buffer or image that the application's own GPU work
    /// still used ([`DummyDevice::application_uses`](crate::DummyDevice::application_uses)): the
    /// submission did not wait for the application's timeline.
    CopyWhileApplicationUses {
        /// The buffer, or the image's resource handle.
        resource: DummyBuffer,
        /// The application's timeline.
        timeline: DummyTimeline,
        /// The value its use lasts until.
        until: u64,
    },
    /// A buffer or image was destroyed while the application's own GPU work still used it.
    DestroyedWhileApplicationUses {
        /// The buffer, or the image's resource handle.
        resource: DummyBuffer,
        /// The application's timeline.
        timeline: DummyTimeline,
        /// The value its use lasts until.
        until: u64,
    },
    /// Bytes the application's own GPU work read
    /// ([`DummyDevice::application_reads`](crate::DummyDevice::application_reads)) changed
    /// before that work finished: the host wrote them again (or a copy overwrote them) while
    /// the GPU could still read them, so it may have read the new bytes. Found when the
    /// application's timeline reaches `until`.
    ChangedWhileApplicationReads {
        /// The buffer.
        buffer: DummyBuffer,
        /// Where the range read starts, in the buffer.
        offset: u64,
        /// Bytes the range holds.
        size: u64,
        /// The application's timeline.
        timeline: DummyTimeline,
        /// The value its read lasts until.
        until: u64,
    },
    /// The application signalled one of its timelines
    /// ([`DummyDevice::signal_external`](crate::DummyDevice::signal_external)) with a value not
    /// above the one it holds. Vulkan forbids it (`vkSignalSemaphore` and a queue's signal must
    /// raise a timeline semaphore's value); the value stays as it was.
    ApplicationSignalNotIncreasing {
        /// The application's timeline.
        timeline: DummyTimeline,
        /// The value given.
        value: u64,
        /// The value the timeline held.
        reached: u64,
    },
}

/// The variant of a [`Misuse`], without its data, for assertions.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // One-to-one with `Misuse`'s documented variants.
pub enum MisuseKind {
    InvalidAllocation,
    MemoryFreedTwice,
    MemoryUseAfterFree,
    ForeignMemory,
    BufferDestroyedTwice,
    BufferUseAfterDestroy,
    ForeignBuffer,
    FreedWithBoundBuffer,
    FreedWhilePending,
    DestroyedWhilePending,
    MappedTwice,
    MapNotHostVisible,
    NotMapped,
    RangeMisaligned,
    RangeOutOfBounds,
    BoundTwice,
    BindOutOfRange,
    BindMisaligned,
    BindTypeNotAllowed,
    DedicatedMismatch,
    BindWithoutDeviceAddress,
    GranularityConflict,
    AliasedBinding,
    CopyUnboundBuffer,
    AddressUnavailable,
    CopyOptimalResource,
    CopyMissingUsage,
    CopyZeroSize,
    CopyOutOfBounds,
    CopyOverlappingDestinations,
    CopySourceOverlapsDestination,
    SignalNotIncreasing,
    UnflushedHostWrite,
    HostWriteWhilePending,
    HostWriteToPendingDestination,
    HostReadWithoutInvalidate,
    HostWriteAfterFree,
    KeepContentsOfUndefinedImage,
    ReadOfUndefinedImage,
    MoveIntoUsedImage,
    ImageCopyOverlappingRegions,
    ImageDescMismatch,
    CopyWhileApplicationUses,
    DestroyedWhileApplicationUses,
    ChangedWhileApplicationReads,
    ApplicationSignalNotIncreasing,
}

impl Misuse {
    /// The variant, without its data.
    pub fn kind(&self) -> MisuseKind {
        use MisuseKind as K;
        match self {
            Self::InvalidAllocation { .. } => K::InvalidAllocation,
            Self::MemoryFreedTwice { .. } => K::MemoryFreedTwice,
            Self::MemoryUseAfterFree { .. } => K::MemoryUseAfterFree,
            Self::ForeignMemory { .. } => K::ForeignMemory,
            Self::BufferDestroyedTwice { .. } => K::BufferDestroyedTwice,
            Self::BufferUseAfterDestroy { .. } => K::BufferUseAfterDestroy,
            Self::ForeignBuffer { .. } => K::ForeignBuffer,
            Self::FreedWithBoundBuffer { .. } => K::FreedWithBoundBuffer,
            Self::FreedWhilePending { .. } => K::FreedWhilePending,
            Self::DestroyedWhilePending { .. } => K::DestroyedWhilePending,
            Self::MappedTwice { .. } => K::MappedTwice,
            Self::MapNotHostVisible { .. } => K::MapNotHostVisible,
            Self::NotMapped { .. } => K::NotMapped,
            Self::RangeMisaligned { .. } => K::RangeMisaligned,
            Self::RangeOutOfBounds { .. } => K::RangeOutOfBounds,
            Self::BoundTwice { .. } => K::BoundTwice,
            Self::BindOutOfRange { .. } => K::BindOutOfRange,
            Self::BindMisaligned { .. } => K::BindMisaligned,
            Self::BindTypeNotAllowed { .. } => K::BindTypeNotAllowed,
            Self::DedicatedMismatch { .. } => K::DedicatedMismatch,
            Self::BindWithoutDeviceAddress { .. } => K::BindWithoutDeviceAddress,
            Self::GranularityConflict { .. } => K::GranularityConflict,
            Self::AliasedBinding { .. } => K::AliasedBinding,
            Self::CopyUnboundBuffer { .. } => K::CopyUnboundBuffer,
            Self::AddressUnavailable { .. } => K::AddressUnavailable,
            Self::CopyOptimalResource { .. } => K::CopyOptimalResource,
            Self::CopyMissingUsage { .. } => K::CopyMissingUsage,
            Self::CopyZeroSize { .. } => K::CopyZeroSize,
            Self::CopyOutOfBounds { .. } => K::CopyOutOfBounds,
            Self::CopyOverlappingDestinations { .. } => K::CopyOverlappingDestinations,
            Self::CopySourceOverlapsDestination { .. } => K::CopySourceOverlapsDestination,
            Self::SignalNotIncreasing { .. } => K::SignalNotIncreasing,
            Self::UnflushedHostWrite { .. } => K::UnflushedHostWrite,
            Self::HostWriteWhilePending { .. } => K::HostWriteWhilePending,
            Self::HostWriteToPendingDestination { .. } => K::HostWriteToPendingDestination,
            Self::HostReadWithoutInvalidate { .. } => K::HostReadWithoutInvalidate,
            Self::HostWriteAfterFree { .. } => K::HostWriteAfterFree,
            Self::KeepContentsOfUndefinedImage { .. } => K::KeepContentsOfUndefinedImage,
            Self::ReadOfUndefinedImage { .. } => K::ReadOfUndefinedImage,
            Self::MoveIntoUsedImage { .. } => K::MoveIntoUsedImage,
            Self::ImageCopyOverlappingRegions { .. } => K::ImageCopyOverlappingRegions,
            Self::ImageDescMismatch { .. } => K::ImageDescMismatch,
            Self::CopyWhileApplicationUses { .. } => K::CopyWhileApplicationUses,
            Self::DestroyedWhileApplicationUses { .. } => K::DestroyedWhileApplicationUses,
            Self::ChangedWhileApplicationReads { .. } => K::ChangedWhileApplicationReads,
            Self::ApplicationSignalNotIncreasing { .. } => K::ApplicationSignalNotIncreasing,
        }
    }
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidAllocation { reason } => write!(f, "invalid allocation: {reason:?}"),
            Self::MemoryFreedTwice { memory } => write!(f, "{memory} freed twice"),
            Self::MemoryUseAfterFree { memory, operation } => {
                write!(f, "{memory} used after free ({operation:?})")
            }
            Self::ForeignMemory { memory, operation } => {
                write!(f, "{memory} is not from this device ({operation:?})")
            }
            Self::BufferDestroyedTwice { buffer } => write!(f, "{buffer} destroyed twice"),
            Self::BufferUseAfterDestroy { buffer, operation } => {
                write!(f, "{buffer} used after destroy ({operation:?})")
            }
            Self::ForeignBuffer { buffer, operation } => {
                write!(f, "{buffer} is not from this device ({operation:?})")
            }
            Self::FreedWithBoundBuffer { memory, buffer } => {
                write!(f, "{memory} freed while {buffer} is still bound to it")
            }
            Self::FreedWhilePending {
                memory,
                signal_value,
            } => write!(
                f,
                "{memory} freed while a copy signalling {signal_value} still uses it"
            ),
            Self::DestroyedWhilePending {
                buffer,
                signal_value,
            } => write!(
                f,
                "{buffer} destroyed while a copy signalling {signal_value} still uses it"
            ),
            Self::MappedTwice { memory } => write!(f, "{memory} mapped twice"),
            Self::MapNotHostVisible { memory } => write!(f, "{memory} is not host-visible"),
            Self::NotMapped { memory, operation } => {
                write!(f, "{memory} is not mapped ({operation:?})")
            }
            Self::RangeMisaligned {
                memory,
                offset,
                size,
                operation,
            } => write!(
                f,
                "{operation:?} range {offset}+{size} of {memory} breaks nonCoherentAtomSize"
            ),
            Self::RangeOutOfBounds {
                memory,
                offset,
                size,
                operation,
            } => write!(
                f,
                "{operation:?} range {offset}+{size} lies outside {memory}"
            ),
            Self::BoundTwice { buffer } => write!(f, "{buffer} bound twice"),
            Self::BindOutOfRange {
                buffer,
                memory,
                offset,
            } => write!(f, "{buffer} at offset {offset} does not fit in {memory}"),
            Self::BindMisaligned {
                buffer,
                offset,
                alignment,
            } => write!(
                f,
                "{buffer} bound at {offset}, not a multiple of its alignment {alignment}"
            ),
            Self::BindTypeNotAllowed {
                buffer,
                memory_type,
            } => write!(f, "{buffer} cannot live in memory type {memory_type}"),
            Self::DedicatedMismatch { buffer, memory } => {
                write!(f, "dedicated allocation mismatch: {buffer} and {memory}")
            }
            Self::BindWithoutDeviceAddress { buffer, memory } => write!(
                f,
                "{buffer} uses device addresses but {memory} was allocated without them"
            ),
            Self::GranularityConflict {
                memory,
                linear,
                optimal,
                page_offset,
            } => write!(
                f,
                "linear {linear} and optimal {optimal} share the granularity page at \
                 {page_offset} of {memory}"
            ),
            Self::AliasedBinding {
                memory,
                first,
                second,
            } => write!(f, "{first} and {second} overlap in {memory}"),
            Self::CopyUnboundBuffer { buffer } => write!(f, "copy uses unbound {buffer}"),
            Self::AddressUnavailable { buffer } => write!(
                f,
                "device address of {buffer}, which lacks DEVICE_ADDRESS usage or is unbound"
            ),
            Self::CopyOptimalResource { buffer } => {
                write!(f, "buffer copy uses optimal resource {buffer}")
            }
            Self::CopyMissingUsage { buffer, needed } => {
                write!(f, "copy uses {buffer} without usage {needed:?}")
            }
            Self::CopyZeroSize { src, dst } => {
                write!(f, "copy region of size zero from {src} to {dst}")
            }
            Self::CopyOutOfBounds {
                buffer,
                offset,
                size,
            } => write!(f, "copy region {offset}+{size} lies outside {buffer}"),
            Self::CopyOverlappingDestinations { dst } => {
                write!(f, "copy regions overlap in destination {dst}")
            }
            Self::CopySourceOverlapsDestination { memory } => {
                write!(f, "copy source and destination overlap in {memory}")
            }
            Self::SignalNotIncreasing {
                signal_value,
                last_submitted,
            } => write!(
                f,
                "signal value {signal_value} is not above the last submitted {last_submitted}"
            ),
            Self::UnflushedHostWrite {
                memory,
                offset,
                size,
            } => write!(
                f,
                "copy reads {memory} at {offset} (range of {size}) with host writes not flushed"
            ),
            Self::HostWriteWhilePending {
                memory,
                offset,
                size,
                signal_value,
            } => write!(
                f,
                "host wrote {memory} {offset}+{size} while the copy signalling {signal_value} \
                 still read it"
            ),
            Self::HostWriteToPendingDestination {
                memory,
                offset,
                size,
                signal_value,
            } => write!(
                f,
                "host wrote {memory} {offset}+{size} while the copy signalling {signal_value} \
                 was still to write it"
            ),
            Self::HostReadWithoutInvalidate {
                memory,
                offset,
                size,
            } => write!(
                f,
                "host read {size} device-written bytes of {memory} at {offset} without \
                 invalidating"
            ),
            Self::HostWriteAfterFree { memory } => {
                write!(f, "host wrote freed {memory} through a stale mapping")
            }
            Self::KeepContentsOfUndefinedImage { image } => write!(
                f,
                "upload keeps the contents of {image}, which nothing wrote before it"
            ),
            Self::ReadOfUndefinedImage { image } => write!(
                f,
                "read-back of {image}, which nothing wrote before it (its layout is undefined)"
            ),
            Self::MoveIntoUsedImage { image } => write!(
                f,
                "image move into {image}, which held contents already (a move needs a new image)"
            ),
            Self::ImageCopyOverlappingRegions { image } => {
                write!(f, "upload regions overlap in {image}")
            }
            Self::ImageDescMismatch { image } => {
                write!(f, "upload describes {image} otherwise than it was created")
            }
            Self::CopyWhileApplicationUses {
                resource,
                timeline,
                until,
            } => write!(
                f,
                "copy into {resource} before the application's use of it ended \
                 ({timeline} reaching {until})"
            ),
            Self::DestroyedWhileApplicationUses {
                resource,
                timeline,
                until,
            } => write!(
                f,
                "{resource} destroyed before the application's use of it ended \
                 ({timeline} reaching {until})"
            ),
            Self::ChangedWhileApplicationReads {
                buffer,
                offset,
                size,
                timeline,
                until,
            } => write!(
                f,
                "bytes {offset}+{size} of {buffer} changed while the application's GPU work \
                 read them ({timeline} reaching {until})"
            ),
            Self::ApplicationSignalNotIncreasing {
                timeline,
                value,
                reached,
            } => write!(
                f,
                "{timeline} signalled with {value}, not above the {reached} it held"
            ),
        }
    }
}

impl std::error::Error for Misuse {}
