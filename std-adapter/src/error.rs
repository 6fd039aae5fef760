//! The coordinator's errors: one `std::error::Error` type, with the core error that caused it kept
//! as a source.

use std::fmt;

use memkit_core::aliasing::AliasingError;
use memkit_core::device::{DeviceError, ImageCopyError};
use memkit_core::pool::{DefragmentationError, PoolConfigError};
use memkit_core::{ConfigError, FrameError, PoolError};

/// Why a coordinator call failed. Nothing is half-done: a failed upload staged nothing, a failed
/// buffer creation holds no memory.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// An upload or buffer of zero bytes.
    ZeroSize,
    /// An upload or a read reaches past the end of its buffer.
    OutOfBounds {
        /// Offset of the upload in the buffer.
        offset: u64,
        /// Bytes of the upload.
        size: u64,
        /// Bytes in the buffer.
        buffer_size: u64,
    },
    /// The staging ring is full and the back-pressure policy is [`crate::BackPressure::Fail`].
    /// `wait_for`: the timeline value whose completion makes room (`None` when the room is held
    /// by uploads not yet submitted, so call [`crate::Coordinator::flush_transfers`], or by
    /// [`crate::StagingGrant`]s not yet transferred or dropped; under
    /// [`crate::BackPressure::WaitForGpu`] that is after
    /// [`crate::CoordinatorConfig::held_room_timeout`] without progress). Also returned for a
    /// grant larger than the ring can ever hold in one piece.
    StagingFull {
        /// The value to wait for.
        wait_for: Option<u64>,
    },
    /// A wait for an upload (a ticket's, or `begin_frame`'s for the slot's last frame) found it
    /// still staged after [`crate::CoordinatorConfig::held_room_timeout`] with nothing drained:
    /// its ring range lies behind a [`crate::StagingGrant`] that is held, not being written.
    /// Transfer or drop that grant, then wait again.
    BlockedByHeldGrant,
    /// The buffer's memory is not mapped, so the CPU cannot read it: create it with a usage
    /// that asks for host access ([`crate::MemoryUsage::DOWNLOAD`] for GPU results).
    NotHostVisible,
    /// The buffer has no device address: create it with [`crate::MemoryUsage::DEVICE_ADDRESS`]
    /// (on a device with `bufferDeviceAddress`).
    NoDeviceAddress,
    /// The buffer was destroyed by its coordinator's teardown: it was still held when the
    /// coordinator shut down (and was reported as leaked).
    BufferDestroyed,
    /// A frame is already in progress; end it before beginning another.
    FrameInProgress,
    /// The buffer belongs to another coordinator.
    ForeignBuffer,
    /// The staging grant was handed out by another coordinator.
    ForeignGrant,
    /// The frame was begun by another coordinator.
    ForeignFrame,
    /// A frame was asked for transient memory ([`crate::Frame::transient_slice`]) before
    /// [`crate::Frame::gpu_done_at`] said when the application's GPU work for it will be done:
    /// without that the coordinator could not know when the memory may be written again.
    FrameGpuDoneUnknown,
    /// The image belongs to another coordinator.
    ForeignImage,
    /// An image upload's or read-back's region was refused: the reason says which rule it broke
    /// ([`memkit_core::device::ImageCopy::check`], [`memkit_core::device::ImageCopy::check_read`]).
    ImageCopy(ImageCopyError),
    /// Two regions of one image upload write the same texels, or two regions of one image
    /// read-back the same bytes (their order would be undefined).
    OverlappingImageRegions,
    /// The image is read back before any upload into it: its contents, and its layout, are
    /// undefined. An image the application's own GPU work wrote is read back once
    /// [`Image::mark_written`](crate::Image::mark_written) says so.
    ImageNotWritten,
    /// The buffer shares its bytes with other resources
    /// ([`crate::Coordinator::create_aliased_resources`]), and one of them was used since the
    /// buffer was last written: what it held is gone. It can be read again once an upload into
    /// it, or [`Buffer::mark_written`](crate::Buffer::mark_written), wrote it.
    BufferOverwritten,
    /// The host could not provide this many bytes for a frame arena.
    HostOutOfMemory {
        /// Bytes asked for (`u64::MAX` when their count overflowed).
        bytes: u64,
    },
    /// Device memory could not be allocated (no compatible type, out of memory or budget, object
    /// count exhausted).
    Memory(PoolError),
    /// The device reported an error.
    Device(DeviceError),
    /// The device is lost: nothing submitted will complete, and nothing more can be submitted.
    DeviceLost,
    /// The configuration is invalid.
    Config(ConfigError),
    /// The pool configuration does not fit the device.
    PoolConfig(PoolConfigError),
    /// The frame pacer refused a transition.
    Frame(FrameError),
    /// [`crate::Coordinator::defragment`] while the copies of the last pass have not completed
    /// (its [`crate::Defragmentation::ticket`]): call again once they have.
    DefragmentationRunning,
    /// [`crate::Coordinator::defragment`]'s limits were refused (a memory type the device does
    /// not have).
    Defragmentation(DefragmentationError),
    /// [`crate::Coordinator::create_aliased_resources`] was given no resource, or one whose
    /// span of use ends before it starts (its `index` counts the images first, then the
    /// buffers).
    Aliasing(AliasingError),
    /// [`crate::Coordinator::create_aliased_resources`]: the resource at `index` cannot share
    /// memory with the others.
    NotAliasable {
        /// Its position: the images first, in the order given, then the buffers (the first
        /// buffer's index is the number of images).
        index: usize,
        /// Why.
        reason: NotAliasableReason,
    },
}

/// Why a resource cannot share memory with others ([`Error::NotAliasable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAliasableReason {
    /// Its driver requires a memory object dedicated to it.
    DedicatedRequired,
    /// No memory type allows it together with the resources before it.
    NoCommonMemoryType,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("size is zero"),
            Self::OutOfBounds {
                offset,
                size,
                buffer_size,
            } => write!(
                f,
                "{size} bytes at offset {offset} reach past the buffer's {buffer_size} bytes"
            ),
            Self::StagingFull { wait_for: Some(v) } => {
                write!(
                    f,
                    "the staging ring is full until timeline value {v} completes"
                )
            }
            Self::StagingFull { wait_for: None } => f.write_str(
                "the staging ring is full of uploads not yet submitted or grants still held",
            ),
            Self::BlockedByHeldGrant => f.write_str(
                "the upload is staged behind a staging grant still held, and cannot be submitted",
            ),
            Self::NotHostVisible => f.write_str("the buffer's memory is not mapped for the CPU"),
            Self::NoDeviceAddress => {
                f.write_str("the buffer was created without DEVICE_ADDRESS usage")
            }
            Self::BufferDestroyed => {
                f.write_str("the buffer was destroyed when its coordinator shut down")
            }
            Self::FrameInProgress => f.write_str("a frame is already in progress"),
            Self::ForeignBuffer => f.write_str("the buffer belongs to another coordinator"),
            Self::HostOutOfMemory { bytes } => {
                write!(
                    f,
                    "the host could not provide {bytes} bytes for a frame arena"
                )
            }
            Self::ForeignGrant => {
                f.write_str("the staging grant was handed out by another coordinator")
            }
            Self::ForeignFrame => f.write_str("the frame was begun by another coordinator"),
            Self::FrameGpuDoneUnknown => f.write_str(
                "transient memory asked of a frame before Frame::gpu_done_at said when its GPU \
                 work is done",
            ),
            Self::ForeignImage => f.write_str("the image belongs to another coordinator"),
            Self::ImageCopy(e) => write!(f, "image copy: {e}"),
            Self::OverlappingImageRegions => {
                f.write_str("two regions of the image copy write the same texels or bytes")
            }
            Self::ImageNotWritten => f.write_str(
                "the image is read back before any upload wrote it (or `Image::mark_written`)",
            ),
            Self::BufferOverwritten => f.write_str(
                "another resource sharing the buffer's bytes was used since it was last written",
            ),
            Self::Memory(e) => write!(f, "device memory: {e}"),
            Self::Device(e) => write!(f, "device: {e}"),
            Self::DeviceLost => f.write_str("the device was lost"),
            Self::Config(e) => write!(f, "configuration: {e}"),
            Self::PoolConfig(e) => write!(f, "pool configuration: {e}"),
            Self::Frame(e) => write!(f, "frame pacing: {e}"),
            Self::DefragmentationRunning => {
                f.write_str("the last defragmentation pass's copies have not completed")
            }
            Self::Defragmentation(e) => write!(f, "defragmentation: {e}"),
            Self::Aliasing(e) => write!(f, "aliased resources: {e}"),
            Self::NotAliasable { index, reason } => match reason {
                NotAliasableReason::DedicatedRequired => write!(
                    f,
                    "resource {index} cannot share memory: its driver requires memory of its own"
                ),
                NotAliasableReason::NoCommonMemoryType => write!(
                    f,
                    "resource {index} cannot share memory: no memory type allows it with the \
                     resources before it"
                ),
            },
        }
    }
}

impl Error {
    /// Whether memory ran out: of the device, the host, a budget, or a count of memory objects
    /// or pool slots. Freeing memory may make a retry succeed.
    pub(crate) fn is_out_of_memory(&self) -> bool {
        let device = |e: &DeviceError| {
            matches!(
                e,
                DeviceError::OutOfDeviceMemory
                    | DeviceError::OutOfHostMemory
                    | DeviceError::TooManyObjects
            )
        };
        match self {
            Self::Device(e) | Self::Memory(PoolError::Device(e)) => device(e),
            Self::Memory(e) => matches!(
                e,
                PoolError::OverBudget { .. }
                    | PoolError::ObjectCountExhausted { .. }
                    | PoolError::BlockSlotsExhausted
                    | PoolError::DedicatedSlotsExhausted
            ),
            _ => false,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Memory(e) => Some(e),
            Self::Device(e) => Some(e),
            Self::Config(e) => Some(e),
            Self::PoolConfig(e) => Some(e),
            Self::Frame(e) => Some(e),
            Self::ImageCopy(e) => Some(e),
            Self::Defragmentation(e) => Some(e),
            Self::Aliasing(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DeviceError> for Error {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::DeviceLost => Self::DeviceLost,
            DeviceError::InvalidImageCopy(e) => Self::ImageCopy(e),
            e => Self::Device(e),
        }
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Device(d) => d.into(),
            e => Self::Memory(e),
        }
    }
}

/// The coordinator's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
