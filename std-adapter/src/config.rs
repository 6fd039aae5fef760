//! How a coordinator is set up.

use memkit_core::{BufferingMode, PoolConfig};

/// What an upload does when the staging ring is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackPressure {
    /// Submit what is staged, then wait for the GPU to free room (the caller blocks; counted as a
    /// stall).
    #[default]
    WaitForGpu,
    /// Return [`crate::Error::StagingFull`] at once. An upload cut into chunks (above
    /// `max_ring_upload`) fails only while nothing of it is staged: once its first chunk is in
    /// the ring, the rest wait for room, so an upload lands whole or not at all.
    Fail,
    /// Stage the upload in a staging allocation of its own, freed when its copy completes.
    DedicatedStaging,
}

/// Coordinator settings. `CoordinatorConfig::default()` suits a desktop engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoordinatorConfig {
    /// Frames in flight.
    pub buffering: BufferingMode,
    /// Bytes of the staging ring (host-visible memory, mapped once).
    pub staging_ring_size: u64,
    /// Uploads above this many bytes do not go through the ring in one piece: they are cut into
    /// chunks of this size, or (with [`BackPressure::DedicatedStaging`]) staged on their own.
    /// Clamped to half of `staging_ring_size` (a larger grant might never find contiguous room).
    /// The default, a sixteenth of the default ring, lets eight producers each write a chunk
    /// while the GPU copies as many chunks as they are writing.
    pub max_ring_upload: u64,
    /// An upload (or chunk) of at least this many bytes is submitted as soon as it is staged,
    /// unless another thread is submitting at that moment, so the GPU copies it while its
    /// producer writes the next one; smaller uploads wait for a flush (or a full ring) and
    /// share one submission. A submission costs tens of microseconds; writing 4 MiB, hundreds.
    /// `u64::MAX` turns eager submission off.
    pub eager_submit_bytes: u64,
    /// Bytes each frame's CPU arena starts with (it grows when a frame needs more).
    pub frame_arena_size: usize,
    /// What an upload does when the ring is full.
    pub back_pressure: BackPressure,
    /// Device memory pools: block sizes, dedicated threshold, budget mode.
    pub pools: PoolConfig,
    /// Memory blocks the pools may hold at once (each slot carries its sub-allocator's metadata).
    pub max_blocks: u32,
    /// Dedicated memory objects the pools may hold at once.
    pub max_dedicated: u32,
    /// Uploads the scheduler holds between submissions; a fuller one submits.
    pub max_pending_uploads: u32,
    /// Most copy regions per copy command.
    pub max_regions_per_command: u32,
    /// Put `upload_slice`'s buffers in memory the CPU can write directly when the device has it
    /// (resizable BAR, integrated GPUs): no staging, no copy.
    pub direct_writes: bool,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            buffering: BufferingMode::Triple,
            staging_ring_size: 64 << 20,
            max_ring_upload: 4 << 20,
            eager_submit_bytes: 1 << 20,
            frame_arena_size: 1 << 20,
            back_pressure: BackPressure::WaitForGpu,
            // Core's defaults, 4096 allocations per block included: a full-size (256 MiB)
            // block then holds 4096 buffers of 64 KiB. With 1024, such a block filled up by
            // count at a quarter of its bytes, so 10k buffers of 64 KiB took nine blocks
            // (2.3 GiB) instead of three, and every round that freed and made them again paid
            // `vkAllocateMemory` and `vkFreeMemory` of 256 MiB eight times instead of twice.
            // The price is host memory for the blocks' metadata: 256 KiB per block slot
            // (`max_blocks` of them), written once at creation.
            pools: PoolConfig::DEFAULT,
            max_blocks: 128,
            max_dedicated: 1024,
            max_pending_uploads: 1 << 16,
            max_regions_per_command: 8192,
            direct_writes: true,
        }
    }
}
