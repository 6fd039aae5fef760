//! How a coordinator is set up.

use std::time::Duration;

use memkit_core::{BufferingMode, ConfigError, PoolConfig};

use crate::error::{Error, Result};

/// The smallest `staging_ring_size` a [`CoordinatorConfig`] accepts: 4 KiB. Uploads pass
/// through the ring in chunks of at most half of it, each a copy region and often a submission
/// of its own, so a ring of a few bytes would move a 100 KB upload a byte or two at a time (a
/// 1-byte ring took minutes on the simulated device); a page is where that stops mattering for
/// a test ring and is far below any real one (the default is 64 MiB).
pub const MIN_STAGING_RING_SIZE: u64 = 4096;
/// The most `max_blocks` and `max_dedicated` a [`CoordinatorConfig`] accepts (each slot is made
/// at creation).
pub const MAX_POOL_SLOTS: u32 = 1 << 16;
/// The most `max_pending_uploads` a [`CoordinatorConfig`] accepts (the scheduler's queue is made
/// at creation: about 40 bytes and a copy region per upload).
pub const MAX_PENDING_UPLOADS: u32 = 1 << 20;
/// The most host memory the pools' block metadata may take (`max_blocks` slots, each sized by
/// `pools.max_allocations_per_block`), all made at creation: 1 GiB.
pub const MAX_POOL_METADATA_BYTES: u64 = 1 << 30;

/// What an upload does when the staging ring is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackPressure {
    /// Submit what is staged, then wait for the GPU to free room (the caller blocks; counted as a
    /// stall). Room that other grants hold, not the GPU, is waited for up to
    /// [`CoordinatorConfig::held_room_timeout`] without progress.
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
    /// How far into the ring uploads go before they start again at its beginning, when the GPU
    /// keeps up: what producers write then stays about this size, and in the CPU's caches (see
    /// `memkit_core::StagingRing::with_working_set`, which also says when the ring goes round
    /// in full anyway). `None`, the default: the ring's own default, 8 MiB (two of the default
    /// `max_ring_upload` pieces) or a quarter of the ring if that is less. `Some(bytes)` at or
    /// above `staging_ring_size` (`Some(u64::MAX)`, say): always go round the whole ring.
    pub staging_ring_working_set: Option<u64>,
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
    /// How long a grant or an upload waits for ring room that other grants hold (grants still
    /// being written, or [`crate::StagingGrant`]s not yet transferred) while nothing drains,
    /// before it fails with [`crate::Error::StagingFull`] `{ wait_for: None }`. Room the GPU
    /// holds is always waited for (under [`BackPressure::WaitForGpu`]), and the clock starts
    /// again whenever a grant drains. A grant held across an upload on the same thread never
    /// comes back; without this limit that upload would wait forever. The default is 10 s;
    /// `Duration::MAX` waits forever. An upload cut into chunks can fail this way only before
    /// its first chunk is staged; a later chunk that waits this long goes, with the rest of the
    /// upload, through staging memory of its own instead.
    pub held_room_timeout: Duration,
    /// How long a producer that finds the staging ring full waits for the GPU by polling the
    /// completed timeline value (yielding between polls) before it blocks in the driver. The
    /// polling is for real GPUs: producers blocked in the driver on one timeline semaphore were
    /// woken milliseconds late on an NVIDIA H200 (eight producers waited about 7 ms for each
    /// 1.4 ms copy), while polling sees the copy finish at once. The default, 5 ms, is a few
    /// full-ring copies at bus speed (a 64 MiB ring drains in about 1.4 ms on PCIe 5).
    ///
    /// Only a device whose work completes while no one waits is polled
    /// ([`memkit_core::device::CopyQueue::completes_without_waiting`]); the simulated
    /// `memkit-dummy` device in its default wait mode completes work only when waited on, where
    /// each poll would spin for the whole duration and find nothing done, so there the producer
    /// blocks at once whatever this says. `Duration::ZERO` means no polling anywhere: right for a
    /// power-constrained device, where spinning a core costs more than a late wake-up. Any value
    /// is valid: `Duration::MAX` polls until the GPU frees the room and never blocks.
    pub room_poll: Duration,
    /// How long a wait on a [`crate::Ticket`] (an upload's, a frame's, a read-back's, and
    /// [`crate::Readback`]'s own waits) polls the completed timeline value (yielding between
    /// polls) before it blocks in the driver, on a device whose work completes while no one waits
    /// ([`memkit_core::device::CopyQueue::completes_without_waiting`]; not the simulated device
    /// in its default wait mode, which would only spin).
    ///
    /// A blocking `vkWaitSemaphores` returned 22-52 us after a copy of 1-16 MiB completed on an
    /// NVIDIA H200, and 60-170 us after one of 64-256 MiB (`R5` of the uploads bench); a read
    /// asked for and waited for one at a time pays that each time. The default, 2 ms, covers a
    /// 64 MiB copy at bus speed (1.3 ms on PCIe 5) and bounds the core a longer wait spins.
    /// `Duration::ZERO` blocks at once: right where a core spinning costs more than a late
    /// wake-up (on battery, or with more waiting threads than cores).
    pub wait_poll: Duration,
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
    /// The most host-visible bytes [`crate::Coordinator::read_back`] and
    /// [`crate::Coordinator::read_back_image`] keep for later read-backs once a
    /// [`crate::Readback`] is dropped: its landing buffer is kept instead of destroyed, and a
    /// later read-back of about its size lands in it. A new landing buffer costs a memory
    /// allocation and, on a discrete GPU, pinning its pages (on an H200, about 1.4 ms for a read
    /// of 1 MiB and 19 ms for 64 MiB); a kept one is reused at once.
    ///
    /// Within this cap the cache keeps what read-backs held at once lately: the most landing
    /// bytes held at once during the last second or two, so a burst of read-backs that comes
    /// back (every frame, or every few) finds all its buffers, and bytes no read-back needed for
    /// two seconds are given back (at the coordinator's next maintenance). Kept buffers are also
    /// given up whenever a buffer or image finds no memory. Landing buffers come in eight sizes
    /// per power of two (at most an eighth over what was asked for); a read-back larger than the
    /// cap gets a buffer of its own, never kept. 0 keeps none.
    pub read_back_cache_bytes: u64,
    /// Read-backs asked for one after another share one submission until their copies read this
    /// many bytes; the batch then goes out at once, so the GPU copies it while more are asked
    /// for (a read of at least this size goes out alone, at once). A submission costs tens of
    /// microseconds, about what an H200 takes to copy 1 MiB to the host: submitted 1 MiB at a
    /// time, 64 reads of 1 MiB took twice as long as in one submission. 0 submits each
    /// read-back at once.
    pub read_back_submit_bytes: u64,
    /// Bytes of each buffer that [`crate::Frame::transient_slice`] places frames' transient
    /// data in (host-visible memory the GPU reads where it lies, device-local where the device
    /// has such memory). A frame takes a chunk when it needs room and gives its chunks back at
    /// its end; a chunk is written again once the application's GPU work for the frames that
    /// used it is done ([`crate::Frame::gpu_done_at`]). A slice larger than this gets a chunk of
    /// its own size, destroyed once that work is done. Not 0.
    pub transient_chunk_size: u64,
    /// Whether transient slices have device addresses
    /// ([`crate::TransientSlice::device_address`]): the chunks are made with device-address
    /// usage and memory, for engines whose shaders read per-draw data through pointers
    /// (bindless). Needs a device with `bufferDeviceAddress`; on one without, a transient slice
    /// fails with [`crate::Error::Device`]`(`[`DeviceError::FeatureNotEnabled`]`)`.
    ///
    /// [`DeviceError::FeatureNotEnabled`]: memkit_core::device::DeviceError::FeatureNotEnabled
    pub transient_device_addresses: bool,
}

impl CoordinatorConfig {
    /// Checks the settings that need no device: the ring's size ([`MIN_STAGING_RING_SIZE`] to
    /// the ring's largest capacity), the slot counts (at most [`MAX_POOL_SLOTS`]) and the upload
    /// queue (at most [`MAX_PENDING_UPLOADS`]). [`crate::Coordinator::new`] calls it first, and
    /// then refuses pools whose metadata would pass [`MAX_POOL_METADATA_BYTES`] and frame
    /// arenas the host cannot provide.
    ///
    /// Errors: [`Error::Config`] with [`ConfigError::InvalidParameter`].
    pub fn validate(&self) -> Result<()> {
        let ring = self.staging_ring_size;
        if !(MIN_STAGING_RING_SIZE..=crate::coordinator::MAX_RING_SIZE).contains(&ring)
            || self.max_blocks > MAX_POOL_SLOTS
            || self.max_dedicated > MAX_POOL_SLOTS
            || self.max_pending_uploads > MAX_PENDING_UPLOADS
            || self.transient_chunk_size == 0
        {
            return Err(Error::Config(ConfigError::InvalidParameter));
        }
        Ok(())
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            buffering: BufferingMode::Triple,
            staging_ring_size: 64 << 20,
            max_ring_upload: 4 << 20,
            staging_ring_working_set: None,
            eager_submit_bytes: 1 << 20,
            frame_arena_size: 1 << 20,
            back_pressure: BackPressure::WaitForGpu,
            held_room_timeout: Duration::from_secs(10),
            room_poll: Duration::from_millis(5),
            wait_poll: Duration::from_millis(2),
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
            read_back_cache_bytes: 1 << 30,
            read_back_submit_bytes: 16 << 20,
            // Per-frame constants and instance data of a frame typically fit in one: a 1080p
            // frame's few thousand draws of 256-byte blocks take about 1 MiB.
            transient_chunk_size: 1 << 20,
            transient_device_addresses: false,
        }
    }
}
