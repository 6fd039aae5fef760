//! The pools' typed errors.
#![forbid(unsafe_code)]

use core::fmt;

use crate::device::{DescriptionError, DeviceError};
use crate::selection::SelectionError;
use crate::suballocator::ConfigError;

/// Why an allocation failed. A failed allocation leaves nothing behind, and releases cached
/// empty blocks only when that made the request fit the budget or the object count (they stay
/// released when the device then refuses the new memory object).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolError {
    /// A size of zero was asked for.
    ZeroSize,
    /// The alignment is not a power of two.
    AlignmentNotPowerOfTwo,
    /// No memory type allowed by `memoryTypeBits` suits the usage.
    NoCompatibleType,
    /// The strictly requested memory type does not exist or is not in `memoryTypeBits`.
    TypeNotAllowed,
    /// The driver requires a memory object dedicated to the resource
    /// (`requiresDedicatedAllocation`), which only
    /// [`super::MemoryPools::allocate_dedicated_to`] can name.
    DedicatedResourceRequired,
    /// The size is above the device's `maxMemoryAllocationSize`.
    TooLarge {
        /// Bytes asked for.
        size: u64,
        /// `maxMemoryAllocationSize`.
        max: u64,
    },
    /// Within-budget mode: the allocation would take the heap past its budget.
    OverBudget {
        /// The heap (of the last memory type tried).
        heap: u32,
    },
    /// `maxMemoryAllocationCount` memory objects (blocks and dedicated ones) exist already, and
    /// no empty block could be released to make room.
    ObjectCountExhausted {
        /// The limit.
        limit: u32,
    },
    /// Every block slot of the storage given at construction is in use.
    BlockSlotsExhausted,
    /// Every dedicated-object slot of the storage given at construction is in use.
    DedicatedSlotsExhausted,
    /// A block slot's metadata storage is too small for even the smallest block this request
    /// needs (see [`super::MemoryPools::block_storage_len`]).
    BlockMetadata(ConfigError),
    /// The device refused (out of device or host memory on every type tried, a failed map, a
    /// lost device).
    Device(DeviceError),
}

impl From<SelectionError> for PoolError {
    fn from(e: SelectionError) -> Self {
        match e {
            SelectionError::TypeNotAllowed => Self::TypeNotAllowed,
            _ => Self::NoCompatibleType,
        }
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroSize => f.write_str("allocation size is zero"),
            Self::AlignmentNotPowerOfTwo => f.write_str("alignment is not a power of two"),
            Self::NoCompatibleType => {
                f.write_str("no memory type allowed by memoryTypeBits suits the usage")
            }
            Self::TypeNotAllowed => {
                f.write_str("the requested memory type does not exist or is not in memoryTypeBits")
            }
            Self::DedicatedResourceRequired => {
                f.write_str("the driver requires a dedicated allocation: use allocate_dedicated_to")
            }
            Self::TooLarge { size, max } => write!(
                f,
                "{size} bytes is above the device's maxMemoryAllocationSize of {max}"
            ),
            Self::OverBudget { heap } => write!(f, "allocation would exceed heap {heap}'s budget"),
            Self::ObjectCountExhausted { limit } => {
                write!(f, "the device's limit of {limit} memory objects is reached")
            }
            Self::BlockSlotsExhausted => f.write_str("every block slot is in use"),
            Self::DedicatedSlotsExhausted => f.write_str("every dedicated-object slot is in use"),
            Self::BlockMetadata(e) => write!(f, "block metadata storage: {e}"),
            Self::Device(e) => write!(f, "device: {e}"),
        }
    }
}

impl core::error::Error for PoolError {}

/// Why a flush or invalidate was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushError {
    /// The allocation's memory is not host-visible.
    NotHostVisible,
    /// The range is not inside the allocation.
    OutOfRange,
    /// The allocation belongs to other pools.
    ForeignAllocation,
    /// The allocation was freed (its block may live on, its range now another allocation's),
    /// or its handle was rebuilt with a range it never owned.
    StaleAllocation,
    /// The device refused.
    Device(DeviceError),
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotHostVisible => f.write_str("the allocation's memory is not host-visible"),
            Self::OutOfRange => f.write_str("the range is not inside the allocation"),
            Self::ForeignAllocation => f.write_str("the allocation belongs to other pools"),
            Self::StaleAllocation => f.write_str("the allocation was freed"),
            Self::Device(e) => write!(f, "device: {e}"),
        }
    }
}

impl core::error::Error for FlushError {}

/// Why pools could not be built.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolConfigError {
    /// The device's description or limits are invalid.
    Description(DescriptionError),
    /// A configuration value is out of range (a granule or first block size that is not a power
    /// of two, zero allocations per block, a priority outside `[0, 1]`).
    InvalidParameter,
    /// More slots than a `u32` index can name.
    TooManySlots,
    /// A block slot given still holds a block, left by earlier pools that were dropped or
    /// forgotten while it held live allocations (or, forgotten, while it was cached empty).
    /// New pools could not tell it from their own: they would count it in their statistics and
    /// free its memory object as theirs.
    BlockSlotInUse {
        /// The slot's index.
        slot: u32,
    },
    /// A dedicated-object slot given still holds a memory object, left by earlier pools (see
    /// [`PoolConfigError::BlockSlotInUse`]).
    DedicatedSlotInUse {
        /// The slot's index.
        slot: u32,
    },
}

impl fmt::Display for PoolConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Description(e) => write!(f, "device description: {e}"),
            Self::InvalidParameter => f.write_str("a pool configuration value is out of range"),
            Self::TooManySlots => f.write_str("more slots than a u32 index can name"),
            Self::BlockSlotInUse { slot } => {
                write!(f, "block slot {slot} still holds earlier pools' block")
            }
            Self::DedicatedSlotInUse { slot } => write!(
                f,
                "dedicated slot {slot} still holds earlier pools' memory object"
            ),
        }
    }
}

impl core::error::Error for PoolConfigError {}
