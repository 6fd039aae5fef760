//! Routing: which path an upload takes, decided before anything is staged.
//!
//! Writing straight into host-visible device memory skips staging and the copy engine altogether
//! (on the H200 a CPU writes its resizable-BAR memory at 26 GB/s, twice what it writes staging
//! memory at: `shared/GPU.md`). An upload larger than the ring can never be granted in one piece,
//! so it gets a dedicated staging allocation or is cut into chunks instead of failing.
#![forbid(unsafe_code)]

use core::fmt;

use crate::ConfigError;

/// How the destination buffer's memory can be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DestinationMemory {
    /// Device memory the CPU cannot map: reachable only through copy commands.
    DeviceOnly,
    /// Device memory the CPU has mapped (resizable BAR, integrated GPUs, unified memory).
    HostVisible,
}

/// What happens to an upload larger than [`RouteConfig::max_ring_upload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LargeUploadPolicy {
    /// Stage it in a staging allocation of its own, freed when its copy completes.
    DedicatedStaging,
    /// Stage it through the ring in chunks of at most `max_ring_upload` bytes.
    Chunks,
}

/// The path an upload takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Write the bytes straight into the destination's mapped memory: no staging, no copy.
    DirectWrite,
    /// Stage through the ring and push the committed upload to the transfer scheduler.
    Ring,
    /// Stage in a dedicated staging allocation and copy from there.
    DedicatedStaging,
    /// Stage through the ring in `count` chunks: chunk `i` covers bytes
    /// `[i * chunk_size, min(size, (i + 1) * chunk_size))` of the upload. `chunk_size` is a
    /// multiple of the copy alignment, so every chunk keeps the upload's alignment phase.
    Chunks {
        /// Bytes per chunk (the last one may be shorter).
        chunk_size: u64,
        /// Number of chunks, at least 2.
        count: u64,
    },
}

/// Why [`route`] refused to pick a path.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteError {
    /// The upload's size is zero: there is nothing to route.
    ZeroSize,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroSize => "upload of zero bytes",
        })
    }
}

impl core::error::Error for RouteError {}

/// The limits routing decides by. Validated once, at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteConfig {
    max_ring_upload: u64,
    large_uploads: LargeUploadPolicy,
    /// `max_ring_upload` rounded down to the copy alignment.
    chunk_size: u64,
}

impl RouteConfig {
    /// Uploads up to `max_ring_upload` bytes go through a ring of `ring_capacity` bytes; larger
    /// ones follow `large_uploads`. `max_ring_upload` is at most the ring capacity (a quarter of
    /// it keeps one large upload from holding the ring against many small ones) and at least the
    /// copy alignment, a power of two.
    ///
    /// Errors: [`ConfigError::ZeroCapacity`], [`ConfigError::NotPowerOfTwo`],
    /// [`ConfigError::InvalidParameter`] (`max_ring_upload` outside
    /// `[copy_alignment, ring_capacity]`).
    pub const fn new(
        ring_capacity: u64,
        max_ring_upload: u64,
        large_uploads: LargeUploadPolicy,
        copy_alignment: u64,
    ) -> Result<Self, ConfigError> {
        if ring_capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if !copy_alignment.is_power_of_two() {
            return Err(ConfigError::NotPowerOfTwo);
        }
        if max_ring_upload < copy_alignment || max_ring_upload > ring_capacity {
            return Err(ConfigError::InvalidParameter);
        }
        let chunk_size = max_ring_upload & !(copy_alignment - 1);
        Ok(Self {
            max_ring_upload,
            large_uploads,
            chunk_size,
        })
    }

    /// The largest upload that goes through the ring in one piece.
    pub const fn max_ring_upload(&self) -> u64 {
        self.max_ring_upload
    }

    /// What happens to larger uploads.
    pub const fn large_uploads(&self) -> LargeUploadPolicy {
        self.large_uploads
    }
}

/// Picks the path for an upload of `size` bytes into memory of kind `memory`. Pure: the
/// coordinator calls it before staging anything.
pub const fn route(
    config: &RouteConfig,
    memory: DestinationMemory,
    size: u64,
) -> Result<Route, RouteError> {
    if size == 0 {
        return Err(RouteError::ZeroSize);
    }
    if let DestinationMemory::HostVisible = memory {
        return Ok(Route::DirectWrite);
    }
    if size <= config.max_ring_upload {
        return Ok(Route::Ring);
    }
    Ok(match config.large_uploads {
        LargeUploadPolicy::DedicatedStaging => Route::DedicatedStaging,
        LargeUploadPolicy::Chunks => Route::Chunks {
            chunk_size: config.chunk_size,
            count: size.div_ceil(config.chunk_size),
        },
    })
}
