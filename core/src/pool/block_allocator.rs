//! The small trait a pool needs from a sub-allocator: build one over a new block from a slot's
//! metadata storage, and give the storage back when the block is released. Implemented for the
//! [TLSF](crate::tlsf) allocator (the default: it splits at any granule and places freed space
//! again, so long-lived pools fragment least) and the [buddy](crate::buddy) allocator (cheaper
//! frees, coarser splits).
#![forbid(unsafe_code)]

use crate::buddy::{BuddyAllocator, BuddyConfig};
use crate::suballocator::{ConfigError, SubAllocator};
use crate::tlsf::{TlsfAllocator, TlsfConfig, TlsfNode};

/// A [`SubAllocator`] a pool can put over each of its blocks.
pub trait BlockAllocator: SubAllocator + Sized {
    /// The metadata storage one block needs (a slice, an array, a `Vec` of the allocator's
    /// element type).
    type Storage;

    /// Storage elements a block of `capacity` bytes, allocated in units of `granule`, with at
    /// most `max_allocations` live allocations, needs; or why that configuration is invalid.
    fn storage_len(capacity: u64, granule: u64, max_allocations: u32)
    -> Result<usize, ConfigError>;

    /// Elements `storage` holds.
    fn storage_elements(storage: &Self::Storage) -> usize;

    /// Builds the allocator over `[0, capacity)`. Callers check [`BlockAllocator::storage_len`]
    /// first: on error the storage is lost.
    fn with_storage(
        capacity: u64,
        granule: u64,
        max_allocations: u32,
        storage: Self::Storage,
    ) -> Result<Self, ConfigError>;

    /// Gives the storage back.
    fn into_block_storage(self) -> Self::Storage;
}

impl<S: AsRef<[TlsfNode]> + AsMut<[TlsfNode]>> BlockAllocator for TlsfAllocator<S> {
    type Storage = S;

    fn storage_len(
        capacity: u64,
        granule: u64,
        max_allocations: u32,
    ) -> Result<usize, ConfigError> {
        let config = TlsfConfig::new(capacity, granule, max_allocations);
        config.validate()?;
        Ok(config.storage_len())
    }

    fn storage_elements(storage: &S) -> usize {
        storage.as_ref().len()
    }

    fn with_storage(
        capacity: u64,
        granule: u64,
        max_allocations: u32,
        storage: S,
    ) -> Result<Self, ConfigError> {
        Self::new(TlsfConfig::new(capacity, granule, max_allocations), storage)
    }

    fn into_block_storage(self) -> S {
        self.into_storage()
    }
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> BlockAllocator for BuddyAllocator<S> {
    type Storage = S;

    fn storage_len(
        capacity: u64,
        granule: u64,
        max_allocations: u32,
    ) -> Result<usize, ConfigError> {
        BuddyConfig::new(capacity, granule, max_allocations).try_storage_len()
    }

    fn storage_elements(storage: &S) -> usize {
        storage.as_ref().len()
    }

    fn with_storage(
        capacity: u64,
        granule: u64,
        max_allocations: u32,
        storage: S,
    ) -> Result<Self, ConfigError> {
        Self::new(
            BuddyConfig::new(capacity, granule, max_allocations),
            storage,
        )
    }

    fn into_block_storage(self) -> S {
        self.into_storage()
    }
}
