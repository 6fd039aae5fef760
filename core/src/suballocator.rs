//! The contract every sub-allocator in core shares: the allocation handle a caller holds, the
//! typed errors, the statistics, and the [`SubAllocator`] trait the memory-type pools use to pick
//! an algorithm per use.
//!
//! A sub-allocator manages offsets `[0, capacity)` of some larger range (a block of device memory,
//! a staging buffer) and never touches the bytes. Its metadata lives in storage the caller
//! provides, so it never allocates from a heap.
#![forbid(unsafe_code)]

use core::fmt;
use core::num::NonZeroU32;

/// Identifies one allocator instance, so a handle from another instance is detected on `free`.
/// Never zero: an `Option` of a handle that holds one (an [`Allocation`], a table entry) is no
/// larger than the handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllocatorId(NonZeroU32);

impl AllocatorId {
    /// A process-wide id (wraps after 2^32 - 1 instances, which is far past any real use).
    pub fn next() -> Self {
        Self(crate::instance_id::next_wrapping())
    }

    /// The raw id, for reports.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

/// A live allocation: the range `[offset, offset + size)` of the allocator that made it.
///
/// It is consumed by [`SubAllocator::free`]; dropping it without freeing leaks the range (the
/// allocator's statistics still count it). To keep it in a table, convert it with
/// [`Allocation::into_raw`] and back with [`Allocation::from_raw`]; a raw handle freed twice, freed
/// on another allocator, or kept across a `reset()` is reported as an error, never honoured.
#[must_use = "an allocation dropped without `free` leaks its range"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Allocation {
    raw: RawAllocation,
}

impl Allocation {
    /// Byte offset of the allocation inside the allocator's range.
    pub const fn offset(&self) -> u64 {
        self.raw.offset
    }

    /// The size the caller asked for (the allocator may reserve more).
    pub const fn size(&self) -> u64 {
        self.raw.size
    }

    /// The plain-data form, for storing in tables and across FFI.
    pub const fn into_raw(self) -> RawAllocation {
        self.raw
    }

    /// Rebuilds an allocation from its raw form. Safe: the allocator validates it on `free`.
    pub const fn from_raw(raw: RawAllocation) -> Self {
        Self { raw }
    }

    /// The raw fields, borrowed.
    pub const fn raw(&self) -> &RawAllocation {
        &self.raw
    }
}

// The niche in `AllocatorId` at work: tables of `Option<Allocation>` cost no more than the handles.
const _: () = assert!(size_of::<Option<Allocation>>() == size_of::<Allocation>());

/// The plain-data form of an [`Allocation`]. The fields other than `offset` and `size` are the
/// allocator's own bookkeeping; they let it tell a live handle from a stale or foreign one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawAllocation {
    /// Byte offset inside the allocator's range.
    pub offset: u64,
    /// Requested size in bytes.
    pub size: u64,
    /// The allocator instance that made it.
    pub allocator: AllocatorId,
    /// The allocator's reset epoch when it was made.
    pub epoch: u32,
    /// An allocator-defined metadata slot (for example a node index).
    pub slot: u32,
    /// An allocator-defined tag that changes each time `slot` is reused.
    pub tag: u32,
}

/// Why an allocation failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocError {
    /// A size of zero was asked for.
    ZeroSize,
    /// The alignment is not a power of two.
    AlignmentNotPowerOfTwo,
    /// The request (size rounded to the alignment and the allocator's granule) can never fit.
    SizeOverCapacity {
        /// Bytes the request needs.
        requested: u64,
        /// The allocator's capacity.
        capacity: u64,
    },
    /// No free range is large enough right now; freeing may make room.
    OutOfMemory,
    /// Every metadata slot given at construction is in use.
    MetadataExhausted,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroSize => f.write_str("allocation size is zero"),
            Self::AlignmentNotPowerOfTwo => f.write_str("alignment is not a power of two"),
            Self::SizeOverCapacity {
                requested,
                capacity,
            } => write!(
                f,
                "allocation of {requested} bytes can never fit in a capacity of {capacity} bytes"
            ),
            Self::OutOfMemory => f.write_str("no free range is large enough"),
            Self::MetadataExhausted => f.write_str("the allocator's metadata storage is full"),
        }
    }
}

impl core::error::Error for AllocError {}

/// Why a free was refused. A refused free changes nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FreeError {
    /// The allocation was already freed (its slot is free, or now holds another allocation).
    DoubleFree,
    /// The allocation came from another allocator instance.
    ForeignAllocation,
    /// The allocation was made before the allocator's last `reset()`.
    StaleAllocation,
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DoubleFree => "allocation was already freed",
            Self::ForeignAllocation => "allocation belongs to another allocator",
            Self::StaleAllocation => "allocation was made before the allocator was reset",
        })
    }
}

impl core::error::Error for FreeError {}

/// Why an allocator could not be constructed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigError {
    /// The capacity is zero.
    ZeroCapacity,
    /// The capacity is larger than the allocator supports.
    CapacityTooLarge {
        /// The largest capacity supported.
        max: u64,
    },
    /// A granule (minimum block) or alignment parameter is not a power of two.
    NotPowerOfTwo,
    /// A parameter is outside its supported range (for example a zero slot count).
    InvalidParameter,
    /// The capacity is not a multiple of the granule (minimum block).
    CapacityNotMultipleOfGranule {
        /// The granule in bytes.
        granule: u64,
    },
    /// The metadata storage given is smaller than the configuration needs.
    StorageTooSmall {
        /// Storage elements the configuration needs.
        required: usize,
        /// Storage elements given.
        provided: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroCapacity => f.write_str("capacity is zero"),
            Self::CapacityTooLarge { max } => {
                write!(f, "capacity exceeds the supported maximum of {max} bytes")
            }
            Self::NotPowerOfTwo => f.write_str("granule or alignment is not a power of two"),
            Self::InvalidParameter => f.write_str("a parameter is outside its supported range"),
            Self::CapacityNotMultipleOfGranule { granule } => {
                write!(
                    f,
                    "capacity is not a multiple of the {granule}-byte granule"
                )
            }
            Self::StorageTooSmall { required, provided } => write!(
                f,
                "metadata storage holds {provided} elements but the configuration needs {required}"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Counters every sub-allocator keeps. Byte counts are in bytes, not granules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AllocatorStats {
    /// Bytes managed.
    pub capacity: u64,
    /// Sum of the sizes callers asked for, over live allocations.
    pub bytes_requested: u64,
    /// Bytes held back from other callers by live allocations (sizes rounded up, padding).
    pub bytes_reserved: u64,
    /// Highest `bytes_reserved` since construction or `reset()`.
    pub peak_bytes_reserved: u64,
    /// Live allocations.
    pub live_allocations: u64,
    /// Highest `live_allocations` since construction or `reset()`.
    pub peak_live_allocations: u64,
    /// The largest request (alignment 1) that would succeed now.
    pub largest_free_run: u64,
    /// Successful allocations since construction or `reset()`.
    pub total_allocations: u64,
    /// Successful frees since construction or `reset()`.
    pub total_frees: u64,
    /// Free blocks split to serve a request.
    pub splits: u64,
    /// Free neighbours merged on free.
    pub merges: u64,
}

/// One live allocation as [`SubAllocator::visit_live`] reports it: the range it holds back from
/// other callers, and how much of it the caller asked for.
///
/// The reserved range `[offset, offset + reserved)` contains the allocation's own range
/// `[handle offset, handle offset + requested)`. It can be larger: sizes are rounded up to the
/// allocator's granule, and an allocator may keep an alignment gap or a small rest beside the
/// allocation (see the [TLSF](crate::tlsf) module docs). Such a gap can lie below the handle's
/// offset, so `offset` is where the reserved range starts, at or below the handle's offset and at
/// most `reserved - requested` below it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LiveRange {
    /// Byte offset where the reserved range starts (at or below the handle's offset).
    pub offset: u64,
    /// Bytes the allocation holds back from other callers. Summed over every live range this is
    /// [`AllocatorStats::bytes_reserved`].
    pub reserved: u64,
    /// Bytes the caller asked for (the handle's size). Summed over every live range this is
    /// [`AllocatorStats::bytes_requested`].
    pub requested: u64,
}

impl LiveRange {
    /// Where the reserved range ends (exclusive).
    pub const fn end(&self) -> u64 {
        self.offset + self.reserved
    }

    /// Reserved bytes the caller did not ask for (rounding, kept gaps and rests).
    pub const fn slack(&self) -> u64 {
        self.reserved - self.requested
    }
}

/// An allocation-free offset allocator. Implemented by the buddy allocator and the TLSF
/// allocator; the pools choose one per use.
pub trait SubAllocator {
    /// Reserves `size` bytes at an offset that is a multiple of `align`.
    ///
    /// Errors: [`AllocError::ZeroSize`], [`AllocError::AlignmentNotPowerOfTwo`],
    /// [`AllocError::SizeOverCapacity`], [`AllocError::OutOfMemory`],
    /// [`AllocError::MetadataExhausted`].
    fn allocate(&mut self, size: u64, align: u64) -> Result<Allocation, AllocError>;

    /// Returns an allocation's range. A stale, foreign or double free is refused with an error and
    /// changes nothing.
    fn free(&mut self, allocation: Allocation) -> Result<(), FreeError>;

    /// Whether `allocation` is live in this allocator: `Ok(())` exactly when [`SubAllocator::free`]
    /// would accept it now (same instance and reset epoch, its slot holding this allocation by
    /// tag, offset and size), else the error `free` would return. Changes nothing.
    ///
    /// For callers that act on a range by its handle without freeing it (a flush, an
    /// invalidate): a handle freed since, or forged with a larger size, is refused here instead
    /// of touching the range's next owner.
    fn check_live(&self, allocation: &RawAllocation) -> Result<(), FreeError>;

    /// Frees everything at once; every allocation made before becomes stale.
    fn reset(&mut self);

    /// The counters.
    fn stats(&self) -> AllocatorStats;

    /// Bytes managed.
    fn capacity(&self) -> u64;

    /// This instance's id (what its allocations carry).
    fn id(&self) -> AllocatorId;

    /// Calls `visit` once per live allocation with its [`LiveRange`], without allocating and
    /// without changing anything: what a memory map or a fragmentation report draws. The ranges
    /// never overlap; the order is the allocator's own (the TLSF allocator reports them by
    /// rising offset, the buddy allocator by slot). O(live allocations, or the blocks between
    /// them); not for hot paths.
    fn visit_live(&self, visit: &mut dyn FnMut(LiveRange));
}
