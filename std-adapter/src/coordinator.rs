//! The coordinator: one object a desktop engine shares between threads. It creates buffers from
//! core's memory pools, streams uploads through core's lock-free staging ring, merges them with
//! core's transfer scheduler into few copy commands, paces frames, and hands back tickets.
//!
//! # How an upload travels
//! 1. A producer thread reserves a range of the ring ([`StagingRing::grant`], lock-free), copies
//!    its bytes in, records the upload's destination in the pending table, and commits the grant.
//!    Recording before committing means a range the submitter drains always has its destination.
//! 2. [`Coordinator::flush_transfers`] (or `end_frame`, or back-pressure) drains committed ranges
//!    in ring order, feeds them to the scheduler, records the merged copy commands, and submits
//!    them with the next timeline value. The ring marks the drained space with that value.
//! 3. When the value completes, `maintain` releases the space, and destroys buffers that were
//!    dropped and that no submitted or staged copy still names.
//!
//! Uploads staged in a staging allocation of their own (too large for the ring, or the ring is
//! full under [`BackPressure::DedicatedStaging`]) go through the same scheduler with source
//! offsets in a separate address range, so "the later write wins" holds across both paths.
//!
//! Locks, always taken in this order: `submitter`, then `pending`, then `pools`; `retired`,
//! `live`, `retired_images` and `live_images` alone (see `images` for how images travel). Producers take only `pending` (and `pools` to create buffers).

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, DedicatedHint, DedicatedTo, MemoryPropertyFlags,
    WaitStatus,
};
use memkit_core::pool::{BlockSlot, DedicatedSlot, HostPtr, RawDeviceAllocation};
use memkit_core::ring::GrantError;
use memkit_core::scheduler::{
    BufferKey, CopyRegion, EMPTY_REGION, LargeUploadPolicy, Route, RouteConfig, SchedulerConfig,
    Upload, UploadSlot, route,
};
use memkit_core::{
    AllocationRequest, DeviceAllocation, FenceValue, FramePacer, MemoryPools, MemoryUsage,
    RingConsumer, RingMemory, StagingRing, TimelineTracker, TlsfAllocator, TlsfNode,
    TransferScheduler,
};

use crate::buffer::{Buffer, BufferState, COUNTER};
use crate::config::{BackPressure, CoordinatorConfig};
use crate::device::{Device, SharedDevice};
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameSlots};
use crate::image::ImageState;
use crate::key_map::KeyMap;
use crate::memory_map::MemoryMap;
use crate::stats::{CoordinatorStats, Counters, HeapReport, Tally};
use crate::ticket::{Ticket, TimelineSource};

mod aliased;
mod defragment;
mod external;
mod image_pieces;
mod images;
mod landing_cache;
mod readback;
#[cfg(test)]
mod tests;
mod transient;
pub(crate) use aliased::AliasLink;
pub use aliased::{AliasedBufferDesc, AliasedImageDesc, AliasedResources};
pub use defragment::Defragmentation;
use defragment::RunningPass;
use landing_cache::LandingCache;
use readback::{OpenReads, Reads};
use transient::TransientChunks;
pub(crate) use transient::{
    FrameTransient, GpuDone, Placed, TransientCursor, lock_frame_transient,
};

/// The sub-allocator inside each memory block: TLSF places freed space again best.
type BlockAllocator = TlsfAllocator<Vec<TlsfNode>>;
/// [`BlockAllocator`]'s name in [`Coordinator::memory_map_json`].
const BLOCK_ALLOCATOR_NAME: &str = "tlsf";
type Pools<D> = MemoryPools<
    SharedDevice<D>,
    BlockAllocator,
    Vec<BlockSlot<<D as memkit_core::device::MemoryDevice>::Memory, BlockAllocator>>,
    Vec<DedicatedSlot<<D as memkit_core::device::MemoryDevice>::Memory>>,
>;

/// Grant slots of the ring: how many uploads may be staged and not yet drained at once.
const RING_GRANTS: usize = 1024;
type Ring = StagingRing<'static, RING_GRANTS>;
/// The largest staging ring (`CoordinatorConfig::staging_ring_size`).
pub(crate) const MAX_RING_SIZE: u64 = Ring::MAX_CAPACITY as u64;

/// Source offsets at and above this name a dedicated staging buffer, not the ring: upload `i` of
/// a plan's dedicated uploads starts at `DEDICATED_SOURCE + (i << DEDICATED_SHIFT)`. The gap keeps
/// the scheduler from merging across sources.
const DEDICATED_SOURCE: u64 = 1 << 62;
const DEDICATED_SHIFT: u32 = 40;

/// Dedicated uploads staged and not yet collected, at most; one more flushes first.
const MAX_DEDICATED_BACKLOG: usize = 1024;
/// The scheduler holds at least this many uploads (room for the dedicated backlog and more).
const MIN_PENDING_UPLOADS: usize = 4 * MAX_DEDICATED_BACKLOG;

/// The usage every buffer the coordinator creates has (plus `DEVICE_ADDRESS` when asked for): a
/// copy source and destination, bindable in any common way.
pub const BUFFER_USAGE: BufferUsage = BufferUsage::TRANSFER_SRC
    .union(BufferUsage::TRANSFER_DST)
    .union(BufferUsage::UNIFORM)
    .union(BufferUsage::STORAGE)
    .union(BufferUsage::INDEX)
    .union(BufferUsage::VERTEX)
    .union(BufferUsage::INDIRECT);

/// An upload staged in the ring and not drained yet.
struct RingUpload<D: Device> {
    /// Offset of its grant in the ring; [`DRAINED`] once drained.
    offset: usize,
    dest: StagedDestination<D>,
    dst_offset: u64,
    size: u64,
    seq: u64,
    /// Whether the range starts its upload (a large upload is staged in chunks): the counters
    /// count uploads, not chunks.
    first_chunk: bool,
}

/// The offset of a ring upload whose range drained: a hole in [`Pending::ring`] until every
/// upload staged before it drained too. (No grant starts there: offsets lie inside the ring.)
const DRAINED: usize = usize::MAX;

impl<D: Device> Clone for RingUpload<D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Device> Copy for RingUpload<D> {}

/// Ring ranges drained per turn of `collect` at most: one pending lock per batch, not per range.
const DRAIN_BATCH: usize = 256;

/// Buffers freed per pools lock at most when `maintain` destroys many at once.
const DESTROY_BATCH: usize = 256;

/// An upload staged in a staging buffer of its own, not in a plan yet.
struct DedicatedUpload<D: Device> {
    staging: Arc<BufferState<D>>,
    dest: Arc<BufferState<D>>,
    dst_offset: u64,
    seq: u64,
}

/// Uploads staged and not yet handed to the scheduler, and the sequence numbers that order them.
///
/// Both lists are in staging order (sequence numbers rise front to back), because an upload takes
/// its number and joins its list under one lock. The consumer drains ring ranges in ring order,
/// which differs from staging order only where producers raced between their grant and their
/// record: the record of a drained range is at or near the front, so finding it is a short scan
/// from the front, with no hashing. A drained record leaves a hole until the front reaches it;
/// the front is never a hole, so the lowest staged sequence number is the front's.
struct Pending<D: Device> {
    ring: VecDeque<RingUpload<D>>,
    dedicated: VecDeque<DedicatedUpload<D>>,
    next_seq: u64,
}

impl<D: Device> Pending<D> {
    /// The next upload's sequence number. Taken under the pending lock together with the
    /// upload's insertion, so sequence order is staging order.
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The lowest sequence number still staged only (every upload below it is in a plan).
    fn watermark(&self) -> u64 {
        self.ring_barrier()
            .min(self.dedicated.front().map_or(u64::MAX, |u| u.seq))
            .min(self.next_seq)
    }

    /// The lowest sequence number of a ring upload not drained yet (`u64::MAX` when none is).
    fn ring_barrier(&self) -> u64 {
        self.ring.front().map_or(u64::MAX, |u| u.seq)
    }

    /// Takes the record of the ring upload whose grant starts at `offset` (undrained grants
    /// never share an offset), leaving a hole, and drops the holes at the front.
    fn take_ring(&mut self, offset: usize) -> Option<RingUpload<D>> {
        let upload = self.ring.iter_mut().find(|u| u.offset == offset)?;
        let taken = *upload;
        upload.offset = DRAINED;
        while self.ring.front().is_some_and(|u| u.offset == DRAINED) {
            self.ring.pop_front();
        }
        Some(taken)
    }

    /// The states that staged uploads name, sorted: none of them may be released.
    fn staged_destinations(&self) -> Vec<*const BufferState<D>> {
        let ring = self.ring.iter().filter(|u| u.offset != DRAINED);
        let mut names: Vec<*const BufferState<D>> = ring
            .map(|u| u.dest.0.as_ptr().cast_const())
            .chain(self.dedicated.iter().map(|u| Arc::as_ptr(&u.dest)))
            .collect();
        names.sort_unstable();
        names
    }

    fn empty() -> Self {
        Self {
            ring: VecDeque::new(),
            dedicated: VecDeque::new(),
            next_seq: 1,
        }
    }
}

/// The destination of a staged ring upload: its state, by pointer, with no reference count of
/// its own (a count per upload, or any other per-upload write to the state, would be a locked
/// instruction on a line every producer of that buffer shares).
///
/// What keeps the state alive: until the caller drops its handle, the handle; after, the
/// coordinator's retired and deferred lists, and `maintain` releases a deferred state only when no
/// record in the pending table names it ([`Pending::staged_destinations`]). A producer records an
/// upload while it holds the handle, so every record naming a state is in the table before the
/// state can be retired. The submitter takes records out of the table and hands their states to
/// the plan (an `Arc` in `Submitter::destinations`) under the submitter lock, which `maintain`
/// holds too. Only the coordinator's teardown drops states regardless; it empties the pending
/// table, and nothing is collected after it.
struct StagedDestination<D: Device>(std::ptr::NonNull<BufferState<D>>);

impl<D: Device> Clone for StagedDestination<D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Device> Copy for StagedDestination<D> {}

// SAFETY: it stands for an `Arc<BufferState<D>>` held on the upload's behalf (see the type's
// documentation), and is used only as a shared reference to the state; that is as thread-safe as
// the `Arc` itself, which requires `BufferState<D>: Send + Sync`.
unsafe impl<D: Device> Send for StagedDestination<D> where BufferState<D>: Send + Sync {}

impl<D: Device> StagedDestination<D> {
    fn new(dest: &Arc<BufferState<D>>) -> Self {
        Self(std::ptr::NonNull::from(&**dest))
    }

    /// The destination's state.
    ///
    /// # Safety
    /// The caller holds the submitter lock, and the record this came from was in the pending
    /// table when the lock was taken (it may have been taken out since, by the caller); the
    /// coordinator's teardown has not emptied the table.
    unsafe fn state(&self) -> &BufferState<D> {
        // SAFETY: the state is alive (the type's invariant, under the caller's contract), and
        // the pointer came from an `Arc` of it.
        unsafe { self.0.as_ref() }
    }

    /// A strong reference to the state, for the plan that copies into it.
    ///
    /// # Safety
    /// As for [`Self::state`].
    unsafe fn share(self) -> Arc<BufferState<D>> {
        // SAFETY: the pointer came from `Arc::as_ptr` of a state that is still alive (the
        // caller's contract); adding a count before `from_raw` makes the new `Arc` its own.
        unsafe {
            Arc::increment_strong_count(self.0.as_ptr());
            Arc::from_raw(self.0.as_ptr())
        }
    }
}

/// Copy commands recorded from a plan, owned (a failed submission is retried with them).
struct Recorded<D: Device> {
    regions: Vec<BufferCopy>,
    /// `(source, destination, regions range)` per command.
    commands: Vec<(D::Buffer, D::Buffer, std::ops::Range<usize>)>,
    /// Destinations (and a read-back's source) and dedicated staging buffers the commands use:
    /// kept alive until the value completes, and their `last_use` set to it at submission.
    destinations: Vec<Arc<BufferState<D>>>,
    staging: Vec<Arc<BufferState<D>>>,
    /// Uploads folded in (for statistics).
    uploads: u64,
    watermark: u64,
    /// For a batch of read-back copies: where their tickets find the submission's value, set
    /// once it went out.
    read_slot: Option<Arc<AtomicU64>>,
}

impl<D: Device> Recorded<D> {
    /// No commands, no buffers, no upload: what a submission that only signals (or only waits)
    /// carries, and what a batch of read-backs starts from.
    fn empty() -> Self {
        Self {
            regions: Vec::new(),
            commands: Vec::new(),
            destinations: Vec::new(),
            staging: Vec::new(),
            uploads: 0,
            // Covers no upload: upload tickets never resolve to this value.
            watermark: 0,
            read_slot: None,
        }
    }
}

/// A submission the GPU may still be executing, with the dedicated staging buffers it reads
/// (destroyed when it completes).
struct InFlight<D: Device> {
    value: u64,
    staging: Vec<Arc<BufferState<D>>>,
}

/// The submitting side: one at a time.
struct Submitter<D: Device> {
    consumer: RingConsumer<Arc<Ring>>,
    scheduler: TransferScheduler<Vec<UploadSlot>, Vec<CopyRegion>>,
    /// Destinations of the uploads in the scheduler, by key.
    destinations: KeyMap<Arc<BufferState<D>>>,
    /// Dedicated staging buffers of the uploads in the scheduler, by plan index.
    staging: Vec<Arc<BufferState<D>>>,
    /// Uploads in the scheduler.
    uploads: u64,
    /// `collect`'s scratch: the ring uploads drained in one batch.
    batch: Vec<RingUpload<D>>,
    /// Drained ring ranges not flushed yet (non-coherent staging memory only).
    unflushed: Vec<(u64, u64)>,
    /// A submission the device refused (not lost): retried first next time.
    retry: Option<(u64, Recorded<D>)>,
    /// Read-back copies recorded and not submitted yet: they go out together, before any upload
    /// collected after them.
    reads: Option<OpenReads<D>>,
    /// Submissions not known to be complete.
    in_flight: VecDeque<InFlight<D>>,
    /// Dropped buffers waiting for their copies to complete.
    deferred: Vec<Arc<BufferState<D>>>,
    /// Dropped images waiting for their uploads to complete.
    deferred_images: Vec<Arc<ImageState<D>>>,
    /// `(value, watermark)`: every upload below `watermark` is in a submission up to `value`.
    marks: VecDeque<(u64, u64)>,
    /// The defragmentation pass whose copies were submitted, until its old buffers are gone.
    defrag: Option<RunningPass<D>>,
}

/// The ring's backing memory: one host-visible buffer, mapped for the coordinator's life.
struct StagingBuffer<D: Device> {
    raw: D::Buffer,
    allocation: RawDeviceAllocation<D::Memory>,
    coherent: bool,
}

/// Everything the coordinator's handles share.
pub(crate) struct Shared<D: Device> {
    device: Arc<D>,
    config: CoordinatorConfig,
    pools: Mutex<Option<Pools<D>>>,
    ring: Arc<Ring>,
    staging: StagingBuffer<D>,
    route: RouteConfig,
    /// Alignment of ring grants: the flush atom for non-coherent staging memory, else 16.
    grant_align: usize,
    pending: Mutex<Pending<D>>,
    submitter: Mutex<Submitter<D>>,
    retired: Mutex<Vec<Arc<BufferState<D>>>>,
    /// Every live buffer, for the leak report at teardown.
    live: Mutex<KeyMap<Weak<BufferState<D>>>>,
    /// Dropped images, until the next `maintain` takes them.
    retired_images: Mutex<Vec<Arc<ImageState<D>>>>,
    /// Landing buffers of dropped read-backs, kept for the next ones (`read_back_cache_bytes`).
    landings: Mutex<LandingCache<Arc<BufferState<D>>>>,
    /// Every live image, for the leak report at teardown.
    live_images: Mutex<KeyMap<Weak<ImageState<D>>>>,
    /// The frames' transient memory that no frame in progress holds (`Frame::transient_slice`).
    transient: Mutex<TransientChunks<D>>,
    timeline: TimelineTracker,
    /// Every upload below this sequence number has completed on the GPU.
    completed_watermark: AtomicU64,
    /// A value of the coordinator's timeline that completes only after every wait for the
    /// application's timelines asked for so far ([`Coordinator::wait_for_external`]): buffers
    /// and images dropped from now on are destroyed no earlier.
    external_floor: AtomicU64,
    pub(crate) frames: Mutex<FrameSlots>,
    pub(crate) pacer: Mutex<FramePacer>,
    next_key: AtomicU64,
    pub(crate) counters: Counters,
    shut_down: AtomicBool,
}

/// Uploads, buffers and frames over one device, shared between threads (`&self` methods; put it
/// in an `Arc`).
///
/// ```
/// use memkit_std::{BufferingMode, Coordinator, CoordinatorConfig};
/// use memkit_dummy::DummyDevice;
///
/// let config = CoordinatorConfig { buffering: BufferingMode::Triple, ..Default::default() };
/// let coordinator = Coordinator::new(DummyDevice::discrete(), config)?;
///
/// // Upload and forget: a new buffer, and a ticket for the copy.
/// let vertices: &[f32] = &[0.0, 0.5, 1.0, -0.5, -0.5, 1.0];
/// let (buffer, ticket) = coordinator.upload_slice(vertices)?;
///
/// // A frame: CPU arena allocations that cannot outlive it, staged for the GPU at its end.
/// let uniforms = coordinator.create_buffer(64, memkit_std::MemoryUsage::FAST_DEVICE_ACCESS)?;
/// let mut frame = coordinator.begin_frame()?;
/// let transform = frame.alloc::<[f32; 16]>();
/// *transform = [1.0; 16];
/// frame.stage_for_upload(transform, &uniforms, 0)?;
/// let frame_ticket = coordinator.end_frame(frame)?;
///
/// frame_ticket.wait()?;
/// ticket.wait()?;
/// # let _ = buffer;
/// # Ok::<(), memkit_std::Error>(())
/// ```
pub struct Coordinator<D: Device> {
    shared: Arc<Shared<D>>,
}

impl<D: Device> Coordinator<D> {
    /// A coordinator over `device`: pools, a staging ring of `config.staging_ring_size` bytes in
    /// host-visible memory, and a frame pacer.
    ///
    /// Everything that needs only host memory (the configuration's checks, the frame arenas,
    /// the pools' metadata, the scheduler's queue) is made before any device object, so a
    /// refused configuration leaves nothing behind.
    ///
    /// Errors: [`Error::Config`] (see [`CoordinatorConfig::validate`], and pools whose metadata
    /// would pass [`crate::MAX_POOL_METADATA_BYTES`]), [`Error::HostOutOfMemory`] (frame
    /// arenas), [`Error::PoolConfig`], and the device's errors reading its timeline's value or
    /// creating the staging ring.
    pub fn new(device: D, config: CoordinatorConfig) -> Result<Self> {
        config.validate()?;
        // A device an earlier coordinator used keeps its timeline semaphore's value: carry on
        // above it (that coordinator waited for its work at teardown, so the value completed).
        let resume_at = device.completed_value()?;
        let frames = FrameSlots::new(config.buffering, config.frame_arena_size)?;
        let device = Arc::new(device);
        let ring_size = config.staging_ring_size;
        let uploads = (config.max_pending_uploads as usize).max(MIN_PENDING_UPLOADS);
        let scheduler = TransferScheduler::new(
            SchedulerConfig {
                copy_alignment: 1,
                max_regions_per_batch: config.max_regions_per_command.max(1),
            },
            vec![UploadSlot::EMPTY; uploads],
            vec![
                EMPTY_REGION;
                TransferScheduler::<Vec<UploadSlot>, Vec<CopyRegion>>::regions_needed(uploads, 1)
            ],
        )
        .map_err(Error::Config)?;
        let mut pools = Self::make_pools(&device, &config)?;
        let route = RouteConfig::new(
            ring_size,
            // At most half the ring: an empty ring always has a contiguous half (before or after
            // its head), so a grant this size always fits once the GPU catches up. Larger limits
            // could wait forever for room that wrapping never makes.
            config.max_ring_upload.min(ring_size / 2).max(1),
            match config.back_pressure {
                BackPressure::DedicatedStaging => LargeUploadPolicy::DedicatedStaging,
                _ => LargeUploadPolicy::Chunks,
            },
            1,
        )
        .map_err(Error::Config)?;

        // The ring's memory: a staging buffer of its own, mapped once.
        let (raw, requirements) = device.create_buffer(ring_size, BufferUsage::TRANSFER_SRC)?;
        let request = AllocationRequest::new(requirements, MemoryUsage::UPLOAD).with_dedicated();
        let allocation = match Self::allocate_for(&mut pools, raw, &request) {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: the buffer was just created, is unbound, and the GPU never saw it.
                unsafe { device.destroy_buffer(raw) };
                Self::teardown_pools(pools);
                return Err(e);
            }
        };
        let allocation = allocation.into_raw();
        let Some(base) = allocation.mapped else {
            // An UPLOAD request is always host-visible and mapped; anything else is a pools bug.
            unreachable!("staging memory is host-visible and mapped")
        };
        // SAFETY: the staging buffer's memory is mapped for as long as its allocation lives,
        // which is until `teardown`, after the ring and its consumer are gone from use (the
        // coordinator's handle is dropped and `shut_down` stops every later upload); nothing but
        // the ring touches these bytes, and the GPU only reads ranges the ring drained.
        let memory = unsafe { RingMemory::from_raw_parts(base.as_non_null(), ring_size as usize) };
        // `validate` checked the ring's size, which is all `Ring::new` refuses.
        let ring = Ring::new(memory).map_err(Error::Config)?;
        let ring = Arc::new(match config.staging_ring_working_set {
            Some(bytes) => ring.with_working_set(usize::try_from(bytes).unwrap_or(usize::MAX)),
            None => ring,
        });
        let consumer = RingConsumer::new(Arc::clone(&ring)).expect("a new ring's consumer is free");
        let coherent = device.memory_properties().types()[allocation.memory_type as usize]
            .properties
            .contains(MemoryPropertyFlags::HOST_COHERENT);
        let atom = device.limits().non_coherent_atom_size.max(1) as usize;

        let shared = Arc::new(Shared {
            staging: StagingBuffer {
                raw,
                allocation,
                coherent,
            },
            grant_align: if coherent { 16 } else { atom.max(16) },
            pools: Mutex::new(Some(pools)),
            ring,
            route,
            pending: Mutex::new(Pending::empty()),
            submitter: Mutex::new(Submitter {
                consumer,
                scheduler,
                destinations: KeyMap::default(),
                staging: Vec::new(),
                uploads: 0,
                batch: Vec::with_capacity(DRAIN_BATCH),
                unflushed: Vec::new(),
                retry: None,
                reads: None,
                in_flight: VecDeque::new(),
                deferred: Vec::new(),
                deferred_images: Vec::new(),
                marks: VecDeque::new(),
                defrag: None,
            }),
            retired: Mutex::new(Vec::new()),
            live: Mutex::new(KeyMap::default()),
            retired_images: Mutex::new(Vec::new()),
            live_images: Mutex::new(KeyMap::default()),
            transient: Mutex::new(TransientChunks::new()),
            timeline: TimelineTracker::resuming_at(resume_at),
            completed_watermark: AtomicU64::new(0),
            external_floor: AtomicU64::new(0),
            landings: Mutex::new(LandingCache::new(
                config.read_back_cache_bytes,
                Instant::now(),
            )),
            frames: Mutex::new(frames),
            pacer: Mutex::new(FramePacer::new(config.buffering)),
            next_key: AtomicU64::new(1),
            counters: Counters::default(),
            shut_down: AtomicBool::new(false),
            device,
            config,
        });
        Ok(Self { shared })
    }

    fn make_pools(device: &Arc<D>, config: &CoordinatorConfig) -> Result<Pools<D>> {
        let shared = SharedDevice(Arc::clone(device));
        let per_block =
            Pools::<D>::block_storage_len(&shared, &config.pools).map_err(Error::Config)?;
        // Every block slot's metadata is made now: refuse settings whose total is absurd rather
        // than let the process run out of memory.
        let metadata = (per_block as u64)
            .saturating_mul(std::mem::size_of::<TlsfNode>() as u64)
            .saturating_mul(u64::from(config.max_blocks));
        if metadata > crate::config::MAX_POOL_METADATA_BYTES {
            return Err(Error::Config(memkit_core::ConfigError::InvalidParameter));
        }
        let blocks = (0..config.max_blocks)
            .map(|_| BlockSlot::new(vec![TlsfNode::EMPTY; per_block]))
            .collect();
        let dedicated = vec![DedicatedSlot::new(); config.max_dedicated as usize];
        MemoryPools::new(shared, config.pools, blocks, dedicated).map_err(Error::PoolConfig)
    }

    /// Allocates memory for `buffer` (dedicated to it when the driver asks) and binds it.
    fn allocate_for(
        pools: &mut Pools<D>,
        buffer: D::Buffer,
        request: &AllocationRequest,
    ) -> Result<DeviceAllocation<D::Memory>> {
        let dedicated = request.dedicated || request.requirements.dedicated != DedicatedHint::None;
        let allocation = if dedicated {
            let request = request.with_dedicated();
            // SAFETY: `buffer` was made by this device, is alive and not bound yet.
            unsafe { pools.allocate_dedicated_to(&request, DedicatedTo::Buffer(buffer)) }?
        } else {
            pools.allocate(request)?
        };
        // SAFETY: the buffer is alive and unbound; the pools placed the range at the buffer's
        // required alignment inside a memory object of an allowed type.
        let bound = unsafe {
            pools
                .device()
                .0
                .bind_buffer_memory(buffer, allocation.memory(), allocation.offset())
        };
        if let Err(e) = bound {
            // SAFETY: the allocation was never used by the GPU and nothing is bound to it.
            let _ = unsafe { pools.free(allocation) };
            return Err(e.into());
        }
        Ok(allocation)
    }

    fn teardown_pools(pools: Pools<D>) {
        // SAFETY: called only when no GPU work is pending and no buffer is bound to pool memory.
        let report = unsafe { pools.destroy() };
        // Teardown freed every buffer, image and range it made, the application's leaked ones
        // included: a live allocation left is a coordinator path that lost its memory.
        debug_assert!(
            report.is_clean(),
            "memkit: pools torn down with live allocations: {report:?}"
        );
        if !report.is_clean() {
            log::warn!("memkit: pools torn down with live allocations: {report:?}");
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.shared.device
    }

    /// The configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.shared.config
    }

    /// Creates a buffer of `size` bytes in memory chosen for `usage`. Uploads to a buffer whose
    /// usage includes [`MemoryUsage::HOST_ACCESS`] or [`MemoryUsage::UPLOAD`] and whose memory is
    /// host-visible are written by the CPU straight into it (the caller keeps its own GPU work
    /// off the bytes while it writes them; such a write waits for the read-backs of the buffer
    /// asked for before it); every other upload is staged and copied in GPU order.
    pub fn create_buffer(&self, size: u64, usage: MemoryUsage) -> Result<Buffer<D>> {
        let direct = usage.intersects(MemoryUsage::HOST_ACCESS | MemoryUsage::UPLOAD);
        self.shared.create_buffer(size, usage, direct)
    }

    /// Creates a buffer holding `data`, and returns it with a ticket for the upload. Where the
    /// device has memory that is both device-local and host-visible (resizable BAR, integrated
    /// GPUs) and [`CoordinatorConfig::direct_writes`] is on, the bytes are written straight into
    /// the buffer and the ticket is complete at once. Never blocks unless the ring is full under
    /// [`BackPressure::WaitForGpu`].
    pub fn upload_slice<T: bytemuck::Pod>(&self, data: &[T]) -> Result<(Buffer<D>, Ticket)> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let usage = if self.shared.config.direct_writes {
            MemoryUsage::FAST_DEVICE_ACCESS | MemoryUsage::UPLOAD
        } else {
            MemoryUsage::FAST_DEVICE_ACCESS
        };
        let buffer = self
            .shared
            .create_buffer(bytes.len() as u64, usage, false)?;
        let device_local = self.shared.device.memory_properties().types()
            [buffer.state.allocation.memory_type as usize]
            .properties
            .contains(MemoryPropertyFlags::DEVICE_LOCAL);
        // A fresh buffer has no GPU work on it: writing its mapping directly races with nothing.
        // With `direct_writes` off every upload is staged, even where all memory is host-visible
        // (lavapipe, integrated GPUs).
        let ticket =
            if self.shared.config.direct_writes && buffer.state.host.is_some() && device_local {
                self.shared.write_direct(&buffer.state, 0, bytes)?;
                Ticket::completed()
            } else {
                self.shared.upload(&buffer.state, 0, bytes)?
            };
        Ok((buffer, ticket))
    }

    /// Uploads `data` to `buffer` at byte `offset`. Never blocks unless the ring is full under
    /// [`BackPressure::WaitForGpu`]; the copy reaches the GPU with the next submission
    /// ([`Coordinator::flush_transfers`], `end_frame`, or a ticket's `wait`).
    pub fn upload_to<T: bytemuck::Pod>(
        &self,
        buffer: &Buffer<D>,
        offset: u64,
        data: &[T],
    ) -> Result<Ticket> {
        self.shared.check_owner(buffer)?;
        self.shared
            .upload(&buffer.state, offset, bytemuck::cast_slice(data))
    }

    /// Reserves `size` bytes of staging memory to write into; hand it to
    /// [`Coordinator::transfer_and_release`]. Dropping it gives the range back unused.
    pub fn acquire_staging(&self, size: usize) -> Result<StagingGrant<'_>> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        if size as u64 > self.shared.route.max_ring_upload() {
            return Err(Error::StagingFull { wait_for: None });
        }
        let config = &self.shared.config;
        let grant = self
            .shared
            .grant(size, config.back_pressure, config.held_room_timeout)?;
        Ok(StagingGrant {
            grant,
            owner: self.shared.address(),
        })
    }

    /// Queues a copy of the grant's bytes to `buffer` at `offset`, and releases the grant. To a
    /// buffer the CPU writes directly (see [`Coordinator::create_buffer`]), the bytes are written
    /// into it at once, as every upload to it is, and the ticket is already complete.
    ///
    /// Order: to a buffer whose uploads are staged, the grant's bytes take their place among
    /// the uploads when the grant was acquired (its room in the ring comes first), not when it is
    /// transferred. An upload to the same bytes made while the grant was held lands after it and
    /// wins. To a buffer the CPU writes directly, everything follows call order.
    ///
    /// Errors: [`Error::ForeignGrant`] (another coordinator's grant: it is dropped, which gives
    /// its range back to its own ring), [`Error::ForeignBuffer`], [`Error::OutOfBounds`].
    pub fn transfer_and_release(
        &self,
        grant: StagingGrant<'_>,
        buffer: &Buffer<D>,
        offset: u64,
    ) -> Result<Ticket> {
        // A grant of another coordinator's ring would be drained (and dropped) there while this
        // one waited for it: refused, and dropping it here gives its range back to its ring.
        if grant.owner != self.shared.address() {
            return Err(Error::ForeignGrant);
        }
        self.shared.check_owner(buffer)?;
        let size = grant.grant.len() as u64;
        self.shared.check_range(&buffer.state, offset, size)?;
        if buffer.state.direct_writes {
            // Every upload to a direct-write buffer is a CPU write, in call order: a staged copy
            // here would land after direct writes made later (and race with them). The grant's
            // range goes back to the ring when it drops.
            let mut grant = grant.grant;
            self.shared
                .write_direct(&buffer.state, offset, &grant.bytes_mut()[..size as usize])?;
            return Ok(Ticket::completed());
        }
        if buffer.state.aliasing.is_some() {
            // Ordered among the copies into the buffers and images sharing its bytes as they
            // are asked for: its bytes go out as an upload made now. The grant's range goes
            // back to the ring when it drops.
            let mut grant = grant.grant;
            let bytes = grant.bytes_mut()[..size as usize].to_vec();
            drop(grant);
            return self.shared.upload(&buffer.state, offset, &bytes);
        }
        Ok(self
            .shared
            .commit_upload(grant.grant, &buffer.state, offset, size, true))
    }

    /// Queues `data` for `buffer` at `offset` (the seeds' name for [`Coordinator::upload_to`]).
    pub fn queue_transfer(&self, data: &[u8], buffer: &Buffer<D>, offset: u64) -> Result<Ticket> {
        self.upload_to(buffer, offset, data)
    }

    /// Submits every staged upload as merged copy commands, and returns a ticket for all of
    /// them (every upload staged before the call). Never blocks on the GPU.
    ///
    /// Ring ranges drain in ring order, so an upload whose range lies behind a grant another
    /// thread is still writing, or a [`StagingGrant`] still held, stays staged; the ticket then
    /// completes only once a later submission carried it and finished (its `wait` submits it).
    pub fn flush_transfers(&self) -> Result<Ticket> {
        // Every upload staged before this call has a sequence number below `bound`.
        let bound = self.shared.lock_pending().next_seq;
        self.shared.flush_covering(bound)
    }

    /// Releases staging space and destroys dropped buffers whose GPU work completed. Never
    /// blocks on the GPU; the coordinator also does this on every flush.
    pub fn maintain(&self) -> Result<()> {
        let mut sub = self.shared.lock_submitter();
        self.shared.maintain(&mut sub)
    }

    /// Begins a frame, first waiting for the GPU to finish the frame that used the same slot
    /// (`buffering` frames back). The frame's CPU arena allocations cannot outlive it.
    pub fn begin_frame(&self) -> Result<Frame<'_, D>> {
        Frame::begin(self)
    }

    /// Ends a frame: submits everything staged (during the frame or before) and returns the
    /// frame's ticket.
    ///
    /// Errors: [`Error::ForeignFrame`] (a frame another coordinator began: it is dropped, which
    /// cancels it on its own coordinator, and nothing is submitted here), the errors of
    /// [`Coordinator::flush_transfers`].
    pub fn end_frame(&self, frame: Frame<'_, D>) -> Result<Ticket> {
        // Ending it on its own coordinator would submit that coordinator's uploads and leave
        // this one's frame (if any) running: the call names the wrong coordinator.
        if frame.coordinator().shared.address() != self.shared.address() {
            return Err(Error::ForeignFrame);
        }
        frame.end()
    }

    /// Counters and memory statistics.
    pub fn stats(&self) -> CoordinatorStats {
        self.shared.stats()
    }

    /// The memory map as a self-contained SVG picture (no scripts): one row per memory object
    /// the pools hold, grouped by memory type and heap and labelled with its type, heap, size
    /// and how much of it is used; each live sub-allocation is a rectangle where it sits in its
    /// block (scaled to the row's width, at least 1 px wide), free space the plain background,
    /// and each dedicated allocation a full row of its own; a legend explains the colours. To
    /// see fragmentation: many short rows half full, or free gaps between ranges.
    ///
    /// Deterministic: the same pools give the same bytes. Holds the pools' lock only while it
    /// copies the map out (O(memory objects + live allocations)), not while it draws. After
    /// [`Coordinator::shutdown`] the map is empty.
    pub fn memory_map_svg(&self) -> String {
        self.shared.memory_map().to_svg()
    }

    /// The memory map as one JSON object, for tools: the detailed map VMA users get from
    /// `vmaBuildStatsString(.., detailedMap = VK_TRUE)`, from the same data
    /// [`Coordinator::memory_map_svg`] draws. Every count and byte figure is an exact integer.
    ///
    /// ```text
    /// {"format":"memkit-memory-map","version":1,"sub_allocator":"tlsf",
    ///  "heaps":[{"index":0,"size":8589934592,"budget":..,"usage":..,
    ///            "budget_from_device":true},..],
    ///  "memory_types":[{"index":0,"heap":0,"flags":["DEVICE_LOCAL"],"property_flags":1},..],
    ///  "totals":{"memory_objects":3,"blocks":2,"empty_blocks":0,"block_bytes":..,
    ///            "allocated_bytes":..,"sub_allocations":..,"dedicated_objects":1,
    ///            "dedicated_bytes":..,"reserved_bytes":..,"used_bytes":..,"live_allocations":..},
    ///  "blocks":[{"slot":0,"memory_type":0,"heap":0,"size":268435456,"resource_kind":null,
    ///             "mapped":false,"live":2,"allocated_bytes":..,"reserved_bytes":..,
    ///             "free_bytes":..,"free_ranges":1,"largest_free_range":..,
    ///             "ranges":[{"offset":0,"reserved":65536,"requested":65536},..]},..],
    ///  "dedicated":[{"slot":0,"memory_type":2,"heap":1,"size":67108864,"mapped":true},..]}
    /// ```
    ///
    /// - `heaps`, `memory_types`: every heap and memory type of the device, by index; `flags`
    ///   are the memory type's property flags by name, `property_flags` the same as Vulkan's
    ///   `VkMemoryPropertyFlags` bits (bits memkit has no name for included). A heap's `budget`
    ///   and `usage` are those of [`CoordinatorStats::heaps`] (VMA's `Budget` section):
    ///   `budget_from_device` says whether they come from the device (`VK_EXT_memory_budget`,
    ///   `usage` kept current between the pools' refreshes) or are memkit's estimate (80% of the
    ///   heap, and memkit's own memory objects). All three are `null` after shutdown.
    /// - `totals`: the map summed as [`CoordinatorStats::heaps`] sums the pools:
    ///   `reserved_bytes` is `block_bytes + dedicated_bytes` (memory held from the device),
    ///   `used_bytes` is `allocated_bytes + dedicated_bytes` (held by live allocations).
    /// - `blocks`, by rising slot (empty blocks kept for reuse included): a memory object the
    ///   pools sub-allocate with `sub_allocator`. `resource_kind` is `"linear"` or `"optimal"`
    ///   when the device's `bufferImageGranularity` makes buffers and images take separate
    ///   blocks, `null` otherwise. `live` is the number of `ranges`; `allocated_bytes` is what
    ///   the statistics count for the block, the sum of the ranges' `requested`;
    ///   `reserved_bytes` sums the ranges' `reserved` (within the block: not the totals'
    ///   `reserved_bytes`, which counts whole memory objects), and `free_bytes` is
    ///   `size - reserved_bytes`, spread over `free_ranges` gaps of which the largest is
    ///   `largest_free_range` (what the next allocation can get in one piece, before alignment).
    /// - `ranges`, by rising offset, never overlapping, all inside the block: one per live
    ///   sub-allocation, `reserved` bytes from `offset` held back from other allocations, of
    ///   which `requested` were asked of the sub-allocator (the buffer's size as the pools
    ///   round it, to `nonCoherentAtomSize` in non-coherent memory).
    /// - `dedicated`, by rising slot: memory objects of one allocation each (the staging ring's
    ///   own memory among them).
    ///
    /// Deterministic: the same pools give the same bytes. Holds the pools' lock only while it
    /// copies the map out. After [`Coordinator::shutdown`] the map is empty.
    pub fn memory_map_json(&self) -> String {
        self.shared.memory_map().to_json()
    }

    /// Shuts the coordinator down now, as dropping it does (submits what is staged, waits for
    /// the GPU for up to 30 s, frees every buffer and block), and returns its final statistics,
    /// whose [`CoordinatorStats::leaked_buffers`] counts the buffers the application still held:
    /// they are destroyed, and their handles are dead.
    pub fn shutdown(self) -> CoordinatorStats {
        self.shared.teardown();
        self.shared.stats()
    }

    /// Shuts down as [`shutdown`](Self::shutdown) does and hands the device back, for an
    /// application that destroys what the device wraps next: memkit-vulkan's `VulkanDevice` over
    /// the application's own `ash` device destroys memkit's semaphore and command pool when
    /// dropped, which must happen before `vkDestroyDevice`.
    ///
    /// The device comes back (`Some`) only when nothing else of this coordinator holds it: every
    /// [`Buffer`](crate::Buffer) and [`Ticket`] was dropped first. Otherwise it is `None`, and
    /// the device is dropped with the last of them.
    pub fn shutdown_into_device(self) -> (CoordinatorStats, Option<D>) {
        self.shared.teardown();
        let stats = self.shared.stats();
        let shared = Arc::clone(&self.shared);
        // Dropping the handle tears down again, which does nothing once shut down.
        drop(self);
        let device = Arc::try_unwrap(shared)
            .ok()
            .and_then(|shared| Arc::try_unwrap(shared.device).ok());
        (stats, device)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<D>> {
        &self.shared
    }
}

/// Staging memory reserved by [`Coordinator::acquire_staging`]: write the upload's bytes into
/// [`StagingGrant::bytes_mut`], then pass it to [`Coordinator::transfer_and_release`].
#[must_use = "a staging grant dropped without transfer gives its range back unused"]
pub struct StagingGrant<'c> {
    grant: memkit_core::WriteGrant<'c, 'static, RING_GRANTS>,
    /// The address of the coordinator state whose ring granted it (`Shared::address`).
    owner: usize,
}

impl StagingGrant<'_> {
    /// The reserved bytes (their previous contents are unspecified).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.grant.bytes_mut()
    }
}

/// How long ring room has been held by grants (being written, or held by a caller), not by the
/// GPU, with nothing drained or dropped meanwhile: what
/// [`CoordinatorConfig::held_room_timeout`] limits. While other grants drain the wait is making
/// progress, and the clock starts again.
struct HeldRoom {
    limit: Duration,
    /// When the current stretch began, and the ring's drained bytes and dropped grants then.
    since: Option<(Instant, u64, u64)>,
}

impl HeldRoom {
    fn new(limit: Duration) -> Self {
        Self { limit, since: None }
    }

    /// Called each time the room is found held by grants: whether it has now been held for the
    /// limit without the ring draining or dropping anything.
    fn expired(&mut self, ring: &Ring) -> bool {
        let stats = ring.stats();
        let progress = (stats.drained_bytes, stats.dropped_grants);
        match self.since {
            Some((start, drained, dropped)) if (drained, dropped) == progress => {
                start.elapsed() >= self.limit
            }
            _ => {
                self.since = Some((Instant::now(), progress.0, progress.1));
                false
            }
        }
    }

    /// The GPU holds the room now: whatever grants held before is no longer the question.
    fn reset(&mut self) {
        self.since = None;
    }
}

impl<D: Device> Shared<D> {
    fn lock_submitter(&self) -> MutexGuard<'_, Submitter<D>> {
        self.submitter.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_pending(&self) -> MutexGuard<'_, Pending<D>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_pools(&self) -> MutexGuard<'_, Option<Pools<D>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.timeline.is_device_lost() {
            return Err(Error::DeviceLost);
        }
        Ok(())
    }

    /// Who this coordinator is, for grants: its state's address. A grant borrows its
    /// coordinator, so no other coordinator can take over the address while the grant lives.
    fn address(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    fn check_owner(&self, buffer: &Buffer<D>) -> Result<()> {
        if std::ptr::eq(Arc::as_ptr(&buffer.shared), self) {
            Ok(())
        } else {
            Err(Error::ForeignBuffer)
        }
    }

    fn check_image_owner(&self, image: &crate::Image<D>) -> Result<()> {
        if std::ptr::eq(Arc::as_ptr(&image.shared), self) {
            Ok(())
        } else {
            Err(Error::ForeignImage)
        }
    }

    /// `buffers` collected, each checked to be this coordinator's.
    fn own_buffers<'b>(
        &self,
        buffers: impl IntoIterator<Item = &'b mut Buffer<D>>,
    ) -> Result<Vec<&'b mut Buffer<D>>>
    where
        D: 'b,
    {
        let buffers: Vec<&mut Buffer<D>> = buffers.into_iter().collect();
        for buffer in &buffers {
            self.check_owner(buffer)?;
        }
        Ok(buffers)
    }

    fn check_range(&self, dest: &BufferState<D>, offset: u64, size: u64) -> Result<()> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        match offset.checked_add(size) {
            Some(end) if end <= dest.size => Ok(()),
            _ => Err(Error::OutOfBounds {
                offset,
                size,
                buffer_size: dest.size,
            }),
        }
    }

    /// Submits what is staged, and returns a ticket for every upload staged with a sequence
    /// number below `bound`. A flush submits only what has drained: an upload whose ring range
    /// lies behind a grant still being written or held stays staged, and then so does the
    /// ticket, which resolves to the submission that finally carries it (not to the flush's
    /// value, which would be complete before the upload reached the GPU).
    ///
    /// Whether everything below `bound` went out is looked at before the submitter's lock is
    /// released: after it, another thread's flush could carry such an upload with a later value
    /// (its grant committed meanwhile), and the look would name this flush's value for it.
    pub(crate) fn flush_covering(self: &Arc<Self>, bound: u64) -> Result<Ticket> {
        let mut sub = self.lock_submitter();
        let value = self.flush_locked(&mut sub)?;
        let carried = self.lock_pending().watermark() >= bound;
        drop(sub);
        Ok(if carried {
            self.ticket_for_value(value)
        } else {
            // Something below `bound` is staged, so `bound - 1` is an upload's number.
            Ticket::for_upload(bound - 1, Arc::clone(self) as Arc<dyn TimelineSource>)
        })
    }

    /// The value of the last submission (0 before the first).
    pub(crate) fn last_submitted_value(&self) -> u64 {
        self.timeline.submitted().get()
    }

    pub(crate) fn ticket_for_value(self: &Arc<Self>, value: u64) -> Ticket {
        if value == 0 {
            Ticket::completed()
        } else {
            Ticket::for_value(value, Arc::clone(self) as Arc<dyn TimelineSource>)
        }
    }

    fn create_buffer(
        self: &Arc<Self>,
        size: u64,
        usage: MemoryUsage,
        direct: bool,
    ) -> Result<Buffer<D>> {
        Ok(Buffer {
            state: self.create_live_state(size, usage, direct)?,
            shared: Arc::clone(self),
        })
    }

    /// [`Shared::create_state`], listed with the live buffers (reported as leaked when still
    /// held at teardown).
    fn create_live_state(
        &self,
        size: u64,
        usage: MemoryUsage,
        direct: bool,
    ) -> Result<Arc<BufferState<D>>> {
        let state = self.create_state(size, usage, direct)?;
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(state.key, Arc::downgrade(&state));
        Ok(state)
    }

    /// A buffer bound to fresh memory, with no handle (staging buffers are freed by the
    /// coordinator when their copy completes).
    fn create_state(
        &self,
        size: u64,
        usage: MemoryUsage,
        direct: bool,
    ) -> Result<Arc<BufferState<D>>> {
        self.with_room(|| self.try_create_state(size, usage, direct))
    }

    /// Runs `make`, a creation that allocates memory, and once more when it ran out of memory
    /// while the read-back cache kept landing buffers: those are given up first, and freed when
    /// their copies completed. Memory kept for later read-backs never makes a creation fail.
    fn with_room<T>(&self, mut make: impl FnMut() -> Result<T>) -> Result<T> {
        match make() {
            Err(e) if e.is_out_of_memory() && self.give_up_landings() => {
                let mut sub = self.lock_submitter();
                self.maintain(&mut sub)?;
                drop(sub);
                make()
            }
            made => made,
        }
    }

    /// [`Shared::create_state`], once.
    fn try_create_state(
        &self,
        size: u64,
        usage: MemoryUsage,
        direct: bool,
    ) -> Result<Arc<BufferState<D>>> {
        self.check_live()?;
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        let device = &self.device;
        let buffer_usage = if usage.contains(MemoryUsage::DEVICE_ADDRESS) {
            BUFFER_USAGE | BufferUsage::DEVICE_ADDRESS
        } else {
            BUFFER_USAGE
        };
        let (raw, requirements) = device.create_buffer(size, buffer_usage)?;
        let request = AllocationRequest::new(requirements, usage);
        let allocation = {
            let mut pools = self.lock_pools();
            let pools = pools.as_mut().ok_or(Error::DeviceLost)?;
            Coordinator::allocate_for(pools, raw, &request)
        };
        let allocation = match allocation {
            Ok(a) => a.into_raw(),
            Err(e) => {
                // SAFETY: created above, never bound, never used by the GPU.
                unsafe { device.destroy_buffer(raw) };
                return Err(e);
            }
        };
        let state = Arc::new(self.new_buffer_state(
            raw,
            size,
            buffer_usage,
            requirements.alignment,
            allocation,
            direct,
        ));
        self.counters.buffers_created.fetch_add(1, COUNTER);
        Ok(state)
    }

    /// The device address of a live buffer the coordinator made, or [`Error::NoDeviceAddress`]
    /// when it was made without device-address usage.
    pub(crate) fn device_address_of(&self, state: &BufferState<D>) -> Result<u64> {
        self.check_live()?;
        if !state.usage.contains(BufferUsage::DEVICE_ADDRESS) {
            return Err(Error::NoDeviceAddress);
        }
        // SAFETY: the buffer is alive (the caller holds it and it is not destroyed) and this
        // device's; it was made with DEVICE_ADDRESS usage, so its memory was requested with
        // `MemoryUsage::DEVICE_ADDRESS`, which the pools allocate with device-address support
        // (buffers with that usage are made only so, `try_create_state` and the aliased sets),
        // and it was bound before its state was made.
        unsafe { self.device.buffer_device_address(state.raw) }.map_err(|e| self.device_error(e))
    }

    /// The state of a buffer just bound to `allocation`, under a new key: nothing copied into it
    /// yet, no label, memory of its own (callers change what differs with struct update).
    /// `direct`: uploads to it are CPU writes, where its memory is mapped.
    pub(crate) fn new_buffer_state(
        &self,
        raw: D::Buffer,
        size: u64,
        usage: BufferUsage,
        alignment: u64,
        allocation: RawDeviceAllocation<D::Memory>,
        direct: bool,
    ) -> BufferState<D> {
        BufferState {
            key: BufferKey(self.next_key.fetch_add(1, Ordering::Relaxed)),
            raw,
            size,
            usage,
            alignment,
            host: allocation.mapped,
            direct_writes: direct && allocation.mapped.is_some(),
            coherent: self.device.memory_properties().types()[allocation.memory_type as usize]
                .properties
                .contains(MemoryPropertyFlags::HOST_COHERENT),
            allocation,
            last_use: AtomicU64::new(0),
            unsubmitted_reads: AtomicU32::new(0),
            destroyed: AtomicBool::new(false),
            host_reads: RwLock::new(()),
            label: Mutex::new(String::new()),
            aliasing: None,
            overwritten: AtomicBool::new(false),
        }
    }

    /// Writes `bytes` straight into the buffer's mapping and flushes them.
    fn write_direct(&self, dest: &BufferState<D>, offset: u64, bytes: &[u8]) -> Result<()> {
        // The read-backs of it asked for before read the bytes from before this write.
        self.wait_for_reads_of(dest)?;
        let Some(target) = dest.host_at(offset) else {
            return Err(Error::OutOfBounds {
                offset,
                size: bytes.len() as u64,
                buffer_size: dest.size,
            });
        };
        // SAFETY: the range [offset, offset + len) lies inside the buffer (checked by the
        // caller), whose memory is mapped for as long as the buffer lives; the buffer is alive
        // (the caller holds it); a direct-write buffer is never the destination of a staged copy,
        // and the caller keeps its own GPU work off these bytes (the contract of host-access
        // buffers), so nothing else writes them now.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), target.as_ptr(), bytes.len());
        }
        // Coherent memory needs no flush, and so no lock: producers write in parallel.
        let pools = if dest.coherent {
            None
        } else {
            Some(self.lock_pools())
        };
        if let Some(pools) = pools.as_ref().and_then(|p| p.as_ref()) {
            let allocation = DeviceAllocation::from_raw(dest.allocation);
            let flushed = pools.flush(&allocation, offset, bytes.len() as u64);
            // The handle is the buffer's, borrowed to name the range: not freed here.
            let _ = allocation.into_raw();
            flushed.map_err(|e| self.device_error(flush_error(e)))?;
        }
        // Per-thread shards, no locked instruction: see `UploadCounters`.
        self.counters.uploads.add(Tally::Direct, bytes.len() as u64);
        Ok(())
    }

    /// [`Buffer::read`](crate::Buffer::read): invalidates the range when the memory is not
    /// coherent, then copies it out of the mapping.
    ///
    /// A buffer handle can outlive its coordinator, whose teardown (on another thread) destroys
    /// the buffers still held and frees their memory. The read holds the buffer's `host_reads`
    /// shared, and teardown holds it exclusively while it destroys a held buffer: the read
    /// either sees the buffer destroyed or finishes before the memory goes. The pools' lock is
    /// taken only around the invalidation, so a long copy holds off no other thread's creations
    /// and frees.
    ///
    /// # Safety
    /// As [`Buffer::read`](crate::Buffer::read).
    pub(crate) unsafe fn read_mapped(
        &self,
        src: &BufferState<D>,
        offset: u64,
        out: &mut [u8],
    ) -> Result<()> {
        self.check_live()?;
        self.check_range(src, offset, out.len() as u64)?;
        self.check_not_overwritten(src)?;
        let _reading = src.host_reads.read().unwrap_or_else(|e| e.into_inner());
        let source = self.host_range(src, offset, out.len() as u64)?;
        // SAFETY: the range lies inside the buffer (checked), whose memory is mapped and not
        // freed while `_reading` is held and the buffer is not destroyed (checked by
        // `host_range` under it: a buffer the caller holds is destroyed only by teardown, under
        // the exclusive side); nothing writes these bytes during the call and the GPU's writes
        // are visible to the host (the caller's contract, and the invalidation); `out` is a Rust
        // slice, so it is not the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(source.as_ptr(), out.as_mut_ptr(), out.len());
        }
        Ok(())
    }

    /// The host address of `len` bytes of `src` at `offset` (a range inside it), with the GPU's
    /// completed writes to them made visible to the host: the range invalidated when the memory
    /// is not coherent.
    ///
    /// The caller keeps `src`'s memory from being freed while it uses the address: it holds
    /// `src.host_reads` shared, or borrows the coordinator (whose teardown frees the memory).
    ///
    /// Errors: [`Error::NotHostVisible`], [`Error::BufferDestroyed`] (teardown destroyed it),
    /// [`Error::Device`] when the invalidation fails.
    pub(crate) fn host_range(
        &self,
        src: &BufferState<D>,
        offset: u64,
        len: u64,
    ) -> Result<HostPtr> {
        let Some(address) = src.host_at(offset) else {
            return Err(Error::NotHostVisible);
        };
        if src.destroyed.load(Ordering::Acquire) {
            return Err(Error::BufferDestroyed);
        }
        if !src.coherent {
            let pools = self.lock_pools();
            let Some(pools) = pools.as_ref() else {
                return Err(Error::BufferDestroyed);
            };
            let allocation = DeviceAllocation::from_raw(src.allocation);
            let invalidated = pools.invalidate(&allocation, offset, len);
            // The handle is the buffer's, borrowed to name the range: not freed here.
            let _ = allocation.into_raw();
            invalidated.map_err(|e| self.device_error(flush_error(e)))?;
        }
        Ok(address)
    }

    fn upload(
        self: &Arc<Self>,
        dest: &Arc<BufferState<D>>,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Ticket> {
        self.check_live()?;
        let size = bytes.len() as u64;
        self.check_range(dest, offset, size)?;
        if dest.direct_writes {
            self.write_direct(dest, offset, bytes)?;
            return Ok(Ticket::completed());
        }
        self.order_aliased_upload(dest)?;
        let ticket = self.stage_upload(dest, offset, bytes)?;
        self.mark_buffer_written(dest);
        Ok(ticket)
    }

    /// Stages `bytes` for `dest` at `offset`, a range inside it, by the route their size takes.
    fn stage_upload(
        self: &Arc<Self>,
        dest: &Arc<BufferState<D>>,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Ticket> {
        let size = bytes.len() as u64;
        match route(
            &self.route,
            memkit_core::scheduler::DestinationMemory::DeviceOnly,
            size,
        ) {
            Ok(Route::Ring) => {
                let ticket = self.upload_through_ring(
                    dest,
                    offset,
                    bytes,
                    (self.config.back_pressure, self.config.held_room_timeout),
                    true,
                )?;
                self.submit_if_large(size)?;
                Ok(ticket)
            }
            Ok(Route::DedicatedStaging) => self.upload_dedicated(dest, offset, bytes),
            Ok(Route::Chunks { chunk_size, .. }) => {
                // Staged whole or not at all: only the first chunk may fail for want of room
                // (under `BackPressure::Fail`, or room held by grants past
                // `held_room_timeout`, leaving nothing staged); once it is staged, the rest wait
                // for the GPU's room. Room that grants hold may never come: a grant held on this
                // thread is written only after this call returns. So after `held_room_timeout`
                // the rest goes through staging memory of its own, which is submitted after the
                // ring uploads staged before it: the upload still lands whole, in order.
                let mut last = Ticket::completed();
                for (i, chunk) in bytes.chunks(chunk_size as usize).enumerate() {
                    let at = offset + i as u64 * chunk_size;
                    let policy = if i == 0 {
                        self.config.back_pressure
                    } else {
                        BackPressure::WaitForGpu
                    };
                    let staged = self.upload_through_ring(
                        dest,
                        at,
                        chunk,
                        (policy, self.config.held_room_timeout),
                        i == 0,
                    );
                    last = match staged {
                        Err(Error::StagingFull { wait_for: None }) if i > 0 => {
                            let rest = &bytes[(at - offset) as usize..];
                            return self.upload_dedicated(dest, at, rest);
                        }
                        staged => staged?,
                    };
                    // The GPU copies this chunk while the next one is written.
                    self.submit_if_large(chunk.len() as u64)?;
                }
                // Chunks are staged in order, so the last one's submission carries them all.
                Ok(last)
            }
            Ok(Route::DirectWrite) | Err(_) => Err(Error::ZeroSize),
        }
    }

    /// Stages `bytes` in one ring grant, `policy` deciding what a full ring does and
    /// `held_room` how long to wait for room that grants hold; `first_chunk` when `bytes` start
    /// their upload (see [`RingUpload::first_chunk`]).
    fn upload_through_ring(
        self: &Arc<Self>,
        dest: &Arc<BufferState<D>>,
        offset: u64,
        bytes: &[u8],
        (policy, held_room): (BackPressure, Duration),
        first_chunk: bool,
    ) -> Result<Ticket> {
        match self.grant(bytes.len(), policy, held_room) {
            Ok(mut grant) => {
                grant.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
                Ok(self.commit_upload(grant, dest, offset, bytes.len() as u64, first_chunk))
            }
            Err(Error::StagingFull { .. }) if policy == BackPressure::DedicatedStaging => {
                self.upload_dedicated(dest, offset, bytes)
            }
            Err(e) => Err(e),
        }
    }

    /// Records a written grant's upload, then commits it (in that order: a drained range always
    /// has its record).
    fn commit_upload(
        self: &Arc<Self>,
        grant: memkit_core::WriteGrant<'_, 'static, RING_GRANTS>,
        dest: &Arc<BufferState<D>>,
        dst_offset: u64,
        size: u64,
        first_chunk: bool,
    ) -> Ticket {
        let upload = RingUpload {
            offset: grant.offset(),
            dest: StagedDestination::new(dest),
            dst_offset,
            size,
            seq: 0,
            first_chunk,
        };
        let seq = {
            let mut pending = self.lock_pending();
            let seq = pending.take_seq();
            pending.ring.push_back(RingUpload { seq, ..upload });
            seq
        };
        grant
            .commit(size as usize)
            .expect("the committed length is the grant's own");
        let tally = if first_chunk {
            Tally::Staged
        } else {
            Tally::StagedChunk
        };
        self.counters.uploads.add(tally, size);
        Ticket::for_upload(seq, Arc::clone(self) as Arc<dyn TimelineSource>)
    }

    /// Stages an upload in a staging buffer of its own.
    fn upload_dedicated(
        self: &Arc<Self>,
        dest: &Arc<BufferState<D>>,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Ticket> {
        if self.lock_pending().dedicated.len() >= MAX_DEDICATED_BACKLOG {
            // Keeps the room one collect step needs well under the scheduler's capacity. Before
            // the staging buffer exists: a failed flush then leaves nothing behind.
            self.flush()?;
        }
        let staging = self.create_state(bytes.len() as u64, MemoryUsage::UPLOAD, true)?;
        if let Err(e) = self.write_direct(&staging, 0, bytes) {
            // Never submitted: no GPU work names it.
            self.destroy(&staging);
            return Err(e);
        }
        // Counted as a dedicated staging upload, not a direct write.
        self.counters
            .uploads
            .add(Tally::DirectToDedicated, bytes.len() as u64);
        let seq = {
            let mut pending = self.lock_pending();
            let seq = pending.take_seq();
            pending.dedicated.push_back(DedicatedUpload {
                staging,
                dest: Arc::clone(dest),
                dst_offset: offset,
                seq,
            });
            seq
        };
        self.counters
            .dedicated_staging_uploads
            .fetch_add(1, COUNTER);
        Ok(Ticket::for_upload(
            seq,
            Arc::clone(self) as Arc<dyn TimelineSource>,
        ))
    }

    /// Reserves ring space, applying `policy` when the ring is full; `held_room` limits the wait
    /// for room that grants hold (see [`HeldRoom`]).
    fn grant(
        &self,
        size: usize,
        policy: BackPressure,
        held_room: Duration,
    ) -> Result<memkit_core::WriteGrant<'_, 'static, RING_GRANTS>> {
        let mut held = HeldRoom::new(held_room);
        // `stalls` counts grants that waited for the GPU, once each, however many waits it took.
        let mut stalled = false;
        loop {
            self.check_live()?;
            match self.ring.grant(size, self.grant_align) {
                Ok(grant) => return Ok(grant),
                Err(GrantError::TooManyUndrained { .. }) => {
                    // Every grant slot holds an undrained range: drain them into the scheduler.
                    let mut sub = self.lock_submitter();
                    self.collect(&mut sub)?;
                    drop(sub);
                    // The oldest grant may still be being written by another producer.
                    if held.expired(&self.ring) {
                        return Err(Error::StagingFull { wait_for: None });
                    }
                    std::thread::yield_now();
                }
                Err(GrantError::Full { wait_for }) => match policy {
                    BackPressure::WaitForGpu => {
                        match wait_for {
                            Some(value) => {
                                if !stalled {
                                    stalled = true;
                                    self.counters.stalls.fetch_add(1, COUNTER);
                                }
                                held.reset();
                                self.wait_for_room(value.get())?;
                                let mut sub = self.lock_submitter();
                                self.maintain(&mut sub)?;
                            }
                            None => {
                                // The room is held by staged uploads: submit them (or let the
                                // producers still writing theirs finish).
                                self.flush()?;
                                if held.expired(&self.ring) {
                                    return Err(Error::StagingFull { wait_for: None });
                                }
                                std::thread::yield_now();
                            }
                        }
                    }
                    BackPressure::Fail | BackPressure::DedicatedStaging => {
                        // Room the GPU already freed but nobody released yet is not "full":
                        // release it and ask again, without waiting.
                        if let Some(value) = wait_for {
                            let completed = self
                                .device
                                .completed_value()
                                .map_err(|e| self.device_error(e))?;
                            if completed >= value.get() {
                                let mut sub = self.lock_submitter();
                                self.maintain(&mut sub)?;
                                continue;
                            }
                        }
                        return Err(Error::StagingFull {
                            wait_for: wait_for.map(FenceValue::get),
                        });
                    }
                },
                Err(GrantError::NeverFits { .. }) => {
                    return Err(Error::StagingFull { wait_for: None });
                }
                Err(GrantError::ZeroSize) => return Err(Error::ZeroSize),
                Err(e) => unreachable!("ring grant with a valid alignment failed: {e}"),
            }
        }
    }

    /// Waits for `value` on behalf of a producer facing a full ring: polls the completed value
    /// (yielding) for up to [`CoordinatorConfig::room_poll`], then blocks in the driver. Several
    /// producers blocked in the driver on one timeline semaphore were woken milliseconds late on
    /// an NVIDIA H200 (eight waited ~7 ms for each 1.4 ms copy; staged uploads fell from 10 GB/s
    /// with two producers to 6 with eight); polling sees the copy finish at once (33 GB/s with
    /// eight). A `room_poll` of zero asks once, then blocks, and so does a device whose work
    /// completes only when waited on (the simulated device in its default wait mode), where
    /// polling would only spin.
    fn wait_for_room(&self, value: u64) -> Result<()> {
        if !self.poll_completed(value, self.poll_limit(self.config.room_poll))? {
            // A long copy: block (the caller loops and asks the ring again either way).
            self.wait_value(value, Duration::from_secs(60))?;
        }
        Ok(())
    }

    /// How long to poll before blocking, given the `configured` time: zero on a device whose work
    /// completes only when waited on (the simulated device in its default wait mode), where
    /// polling would only spin and find nothing done.
    fn poll_limit(&self, configured: Duration) -> Duration {
        if self.device.completes_without_waiting() {
            configured
        } else {
            Duration::ZERO
        }
    }

    /// Asks for the completed value until it reaches `value` (`true`) or `limit` passed
    /// (`false`), yielding between asks; asks once when `limit` is zero.
    fn poll_completed(&self, value: u64, limit: Duration) -> Result<bool> {
        let start = Instant::now();
        loop {
            let completed = match self.device.completed_value() {
                Ok(v) => v,
                Err(e) => return Err(self.device_error(e)),
            };
            if completed >= value {
                self.note_completed(completed);
                return Ok(true);
            }
            if start.elapsed() >= limit {
                return Ok(false);
            }
            std::thread::yield_now();
        }
    }

    /// Waits until `value` completed (`true`) or `timeout` passed: polls for up to
    /// [`CoordinatorConfig::wait_poll`], then blocks in the driver.
    pub(super) fn wait_polled(&self, value: u64, timeout: Duration) -> Result<bool> {
        // A blocking wait returns late on real drivers (30-170 us on the H200, growing with the
        // copy): poll first, where polling can see work complete.
        let start = Instant::now();
        if self.poll_completed(value, self.poll_limit(self.config.wait_poll.min(timeout)))? {
            return Ok(true);
        }
        self.wait_value(value, timeout.saturating_sub(start.elapsed()))
    }

    /// Blocks until `value` completed or `timeout` passed.
    fn wait_value(&self, value: u64, timeout: Duration) -> Result<bool> {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        match self.device.wait(value, ns) {
            Ok(WaitStatus::Completed) => {
                self.note_completed(value);
                Ok(true)
            }
            Ok(WaitStatus::TimedOut) => Ok(false),
            Err(e) => Err(self.device_error(e)),
        }
    }

    pub(crate) fn device_error(&self, e: memkit_core::device::DeviceError) -> Error {
        let e = Error::from(e);
        if e == Error::DeviceLost {
            self.timeline.mark_device_lost();
        }
        e
    }

    fn note_completed(&self, value: u64) {
        let v = FenceValue::new(value.min(self.timeline.submitted().get()));
        if v > self.timeline.completed() {
            // Cannot fail: `v` is above the completed value and at most the submitted one.
            let _ = self.timeline.signal(v);
        }
    }

    /// Drains committed ring ranges and ready dedicated uploads into the scheduler, in the order
    /// they were staged, submitting whenever it fills.
    ///
    /// A dedicated upload is ready once every ring upload staged before it has drained (a
    /// producer's own earlier ring upload always drains before its later ones, so per-thread
    /// order is kept); it enters the plan right before the first drained ring upload staged after
    /// it, so the later write wins overlaps.
    ///
    /// Ranges drain in batches of up to [`DRAIN_BATCH`], each under one pending lock: the batch's
    /// records are taken, and the dedicated uploads its draining made ready, then all are pushed
    /// with the lock released.
    fn collect(&self, sub: &mut Submitter<D>) -> Result<()> {
        let mut batch = std::mem::take(&mut sub.batch);
        let result = self.collect_batches(sub, &mut batch);
        batch.clear();
        sub.batch = batch;
        result
    }

    fn collect_batches(
        &self,
        sub: &mut Submitter<D>,
        batch: &mut Vec<RingUpload<D>>,
    ) -> Result<()> {
        let mut ready: VecDeque<DedicatedUpload<D>> = VecDeque::new();
        loop {
            // Room for this batch: its ring uploads and every dedicated upload that may become
            // ready with them. Submit first if it is lacking (nothing drained waits outside the
            // scheduler between batches, so submitting, which marks everything drained, is safe).
            let room = sub.scheduler.capacity() - sub.scheduler.pending();
            let mut pending = self.lock_pending();
            let waiting = pending.dedicated.len();
            if room <= waiting {
                drop(pending);
                if sub.scheduler.pending() == 0 {
                    // Cannot happen: the scheduler holds more than the dedicated backlog.
                    return Err(Error::StagingFull { wait_for: None });
                }
                // Uploads go out: the read-backs recorded before them go first.
                self.submit(sub, Reads::Keep)?;
                continue;
            }
            let limit = (room - waiting).min(DRAIN_BATCH);
            while batch.len() < limit {
                let Some(range) = sub.consumer.drain() else {
                    break;
                };
                let offset = range.offset();
                if !self.staging.coherent {
                    sub.unflushed.push((offset as u64, range.len() as u64));
                }
                // Every commit is recorded first; a range without a record was given up.
                if let Some(upload) = pending.take_ring(offset) {
                    batch.push(upload);
                }
            }
            let barrier = pending.ring_barrier();
            while pending.dedicated.front().is_some_and(|d| d.seq < barrier) {
                ready.push_back(pending.dedicated.pop_front().expect("checked"));
            }
            drop(pending);
            if batch.is_empty() && ready.is_empty() {
                return Ok(());
            }
            // A dedicated upload enters once every ring upload staged before it is in: before the
            // batch's upload `i` when every upload from `i` on was staged after it.
            // (Worked out only when some dedicated upload is ready, which is rare.)
            let mut first_after: Vec<u64> = Vec::new();
            if !ready.is_empty() {
                first_after = batch
                    .iter()
                    .rev()
                    .scan(u64::MAX, |after, u| {
                        *after = (*after).min(u.seq);
                        Some(*after)
                    })
                    .collect();
                first_after.reverse();
            }
            // The destination last looked up in `sub.destinations` (it stays there until
            // submitted, and nothing is submitted within a batch).
            let mut last_destination = None;
            for (i, upload) in batch.iter().enumerate() {
                while ready.front().is_some_and(|d| d.seq < first_after[i]) {
                    let d = ready.pop_front().expect("checked");
                    self.push_dedicated(sub, d);
                }
                let dest = upload.dest;
                // SAFETY: the record was in the pending table when this thread took the submitter
                // lock (`sub`), and collecting runs only while the coordinator lives.
                let state = unsafe { dest.state() };
                let pushed = sub.scheduler.push(Upload {
                    src_offset: upload.offset as u64,
                    destination: state.key,
                    dst_offset: upload.dst_offset,
                    size: upload.size,
                });
                debug_assert!(pushed.is_ok(), "room was made above");
                // Small uploads come in runs to one buffer: look it up once per run.
                if last_destination != Some(state.key) {
                    last_destination = Some(state.key);
                    sub.destinations
                        .entry(state.key)
                        // SAFETY: as above.
                        .or_insert_with(|| unsafe { dest.share() });
                }
                sub.uploads += u64::from(upload.first_chunk);
            }
            batch.clear();
            // Every ring upload staged before these is in the plan (they were ready).
            for d in ready.drain(..) {
                self.push_dedicated(sub, d);
            }
        }
    }

    fn push_dedicated(&self, sub: &mut Submitter<D>, upload: DedicatedUpload<D>) {
        let source = DEDICATED_SOURCE + ((sub.staging.len() as u64) << DEDICATED_SHIFT);
        let pushed = sub.scheduler.push(Upload {
            src_offset: source,
            destination: upload.dest.key,
            dst_offset: upload.dst_offset,
            size: upload.staging.size,
        });
        debug_assert!(pushed.is_ok(), "room was made by the caller");
        sub.destinations.insert(upload.dest.key, upload.dest);
        sub.staging.push(upload.staging);
        sub.uploads += 1;
    }

    /// Collects and submits everything staged; returns the value of the last submission (0 when
    /// nothing was ever submitted).
    pub(crate) fn flush(&self) -> Result<u64> {
        let mut sub = self.lock_submitter();
        self.flush_locked(&mut sub)
    }

    /// After an upload of `size` bytes was staged: submits what is staged when the upload is at
    /// least `eager_submit_bytes` and no other thread holds the submitter (that thread's
    /// submission, or the next one, takes it; waiting for it would only stall this producer).
    fn submit_if_large(&self, size: u64) -> Result<()> {
        if size < self.config.eager_submit_bytes {
            return Ok(());
        }
        let mut sub = match self.submitter.try_lock() {
            Ok(sub) => sub,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
        };
        self.counters.eager_submissions.fetch_add(1, COUNTER);
        self.flush_locked(&mut sub).map(drop)
    }

    /// [`flush`](Self::flush) with the submitter held.
    fn flush_locked(&self, sub: &mut Submitter<D>) -> Result<u64> {
        self.flush_with(sub, Reads::Submit)
    }

    /// Collects and submits what is staged, and the read-back copies recorded so far unless
    /// `reads` keeps them for a later submission (when no upload goes out behind them).
    fn flush_with(&self, sub: &mut Submitter<D>, reads: Reads) -> Result<u64> {
        self.check_live()?;
        if self.shut_down.load(Ordering::Acquire) {
            // The coordinator is gone (a ticket outlived it): its staging memory is freed, and
            // whatever it could not submit at teardown never will be.
            return Err(Error::DeviceLost);
        }
        self.collect(sub)?;
        self.submit(sub, reads)?;
        self.maintain(sub)?;
        Ok(self.timeline.submitted().get())
    }

    /// Records the scheduler's plan as copy commands and submits them with the next value,
    /// after a refused submission and the read-back copies recorded before them (all of them
    /// when `reads` says so, even with no upload to submit).
    fn submit(&self, sub: &mut Submitter<D>, reads: Reads) -> Result<()> {
        if let Some((value, recorded)) = sub.retry.take() {
            // Ranges drained since it was refused are in the scheduler and go out with a later
            // value: the retried submission tags the ring only when there are none (the
            // submission below tags everything, its own ranges included, otherwise).
            let tag = sub.scheduler.pending() == 0;
            self.submit_recorded(sub, value, recorded, tag)?;
        }
        if sub.scheduler.pending() > 0 || reads == Reads::Submit {
            // Recorded before every upload in the scheduler was collected: they read the bytes
            // from before those uploads.
            self.submit_reads(sub)?;
        }
        if sub.scheduler.pending() == 0 {
            return Ok(());
        }
        self.flush_staging(sub)?;
        let watermark = self.lock_pending().watermark();
        let recorded = self.record(sub, watermark);
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => return Err(Error::DeviceLost),
        };
        self.submit_recorded(sub, value, recorded, true)
    }

    /// Turns the scheduler's plan into owned copy commands and empties the scheduler.
    fn record(&self, sub: &mut Submitter<D>, watermark: u64) -> Recorded<D> {
        let mut recorded = Recorded {
            regions: Vec::new(),
            commands: Vec::new(),
            destinations: sub.destinations.drain().map(|(_, d)| d).collect(),
            staging: std::mem::take(&mut sub.staging),
            uploads: std::mem::take(&mut sub.uploads),
            watermark,
            read_slot: None,
        };
        let keyed: KeyMap<D::Buffer> = recorded
            .destinations
            .iter()
            .map(|d| (d.key, d.raw))
            .collect();
        let plan = sub.scheduler.plan();
        debug_assert_eq!(
            plan.unaligned_count(),
            0,
            "copy alignment 1 leaves no unaligned writes"
        );
        for batch in plan.batches() {
            let dst = keyed[&batch.destination];
            // One command per source: the ring's regions, then each dedicated staging buffer's.
            // Regions of a plan never overlap in the destination, so the order between commands
            // does not matter.
            let start = recorded.regions.len();
            recorded.regions.extend(
                batch
                    .regions
                    .iter()
                    .filter(|r| r.src_offset < DEDICATED_SOURCE),
            );
            if recorded.regions.len() > start {
                recorded
                    .commands
                    .push((self.staging.raw, dst, start..recorded.regions.len()));
            }
            for r in batch
                .regions
                .iter()
                .filter(|r| r.src_offset >= DEDICATED_SOURCE)
            {
                let relative = r.src_offset - DEDICATED_SOURCE;
                let index = (relative >> DEDICATED_SHIFT) as usize;
                let src_offset = relative & ((1 << DEDICATED_SHIFT) - 1);
                let at = recorded.regions.len();
                recorded.regions.push(BufferCopy {
                    src_offset,
                    dst_offset: r.dst_offset,
                    size: r.size,
                });
                recorded
                    .commands
                    .push((recorded.staging[index].raw, dst, at..at + 1));
            }
        }
        let stats = sub.scheduler.stats();
        self.counters
            .regions_before_merge
            .store(stats.regions_before_merge, COUNTER);
        self.counters
            .bytes_overwritten
            .store(stats.bytes_overwritten, COUNTER);
        self.counters
            .regions_after_merge
            .fetch_add(recorded.regions.len() as u64, COUNTER);
        sub.scheduler.clear();
        recorded
    }

    /// Submits recorded commands with `value`; `tag_ring`: whether the ring ranges drained so
    /// far are all read by this submission or earlier ones, so that `value` tags them.
    fn submit_recorded(
        &self,
        sub: &mut Submitter<D>,
        value: u64,
        recorded: Recorded<D>,
        tag_ring: bool,
    ) -> Result<()> {
        let commands: Vec<CopyCommand<'_, D::Buffer>> = recorded
            .commands
            .iter()
            .map(|(src, dst, range)| CopyCommand {
                src: *src,
                dst: *dst,
                regions: &recorded.regions[range.clone()],
            })
            .collect();
        // SAFETY: every buffer named is alive and bound (destinations and staging buffers are held
        // by `recorded` until the value completes, and a dropped buffer is destroyed only after);
        // each region lies inside both buffers (uploads were bounds-checked, ring ranges lie in
        // the ring); the scheduler keeps destination ranges disjoint; staging bytes were written
        // before their grants committed and were flushed above; the tracker hands out increasing
        // values.
        let submitted = unsafe { self.device.submit_copies(&commands, value) };
        drop(commands);
        if let Err(e) = submitted {
            let e = self.device_error(e);
            if e != Error::DeviceLost {
                // The device did not take it: keep it, and try again first next time.
                sub.retry = Some((value, recorded));
            }
            return Err(e);
        }
        if tag_ring {
            sub.consumer
                .mark(FenceValue::new(value))
                .expect("values handed to the ring increase");
        }
        for d in &recorded.destinations {
            d.last_use.store(value, COUNTER);
        }
        if let Some(slot) = &recorded.read_slot {
            // `last_use` covers the read-backs' buffers from here on.
            for d in &recorded.destinations {
                d.unsubmitted_reads.fetch_sub(1, Ordering::Release);
            }
            slot.store(value, Ordering::Release);
        }
        self.counters.submissions.fetch_add(1, COUNTER);
        self.counters
            .copy_commands
            .fetch_add(recorded.commands.len() as u64, COUNTER);
        self.counters
            .uploads_submitted
            .fetch_add(recorded.uploads, COUNTER);
        sub.marks.push_back((value, recorded.watermark));
        sub.in_flight.push_back(InFlight {
            value,
            staging: recorded.staging,
        });
        Ok(())
    }

    /// Makes the host's writes to drained ring ranges visible to the device (non-coherent
    /// staging memory only).
    fn flush_staging(&self, sub: &mut Submitter<D>) -> Result<()> {
        if sub.unflushed.is_empty() {
            return Ok(());
        }
        let pools = self.lock_pools();
        let pools = pools.as_ref().ok_or(Error::DeviceLost)?;
        let allocation = DeviceAllocation::from_raw(self.staging.allocation);
        let mut result = Ok(());
        for &(offset, size) in &sub.unflushed {
            if let Err(e) = pools.flush(&allocation, offset, size) {
                result = Err(self.device_error(flush_error(e)));
                break;
            }
        }
        // Borrowed to name the ranges; the staging allocation is freed only at teardown.
        let _ = allocation.into_raw();
        sub.unflushed.clear();
        result
    }

    /// Polls the GPU; releases ring space, staging buffers and dropped buffers whose work
    /// completed.
    fn maintain(&self, sub: &mut Submitter<D>) -> Result<()> {
        let completed = match self.device.completed_value() {
            Ok(v) => v,
            Err(e) => return Err(self.device_error(e)),
        };
        self.note_completed(completed);
        self.trim_landings();
        self.reclaim_transient();
        if sub.scheduler.pending() == 0 && sub.retry.is_none() && sub.consumer.unmarked_bytes() > 0
        {
            // Drained ranges that no buffer submission will tag: image uploads' (whose copies
            // were submitted before their grants could drain) and grants given up. The last
            // value handed out covers every copy that reads them.
            let last = self.timeline.submitted();
            if last.get() > 0 {
                sub.consumer
                    .mark(last)
                    .expect("values handed to the ring increase");
            }
        }
        sub.consumer.release_completed(FenceValue::new(completed));
        while let Some((value, watermark)) = sub.marks.front().copied() {
            if value > completed {
                break;
            }
            self.completed_watermark
                .fetch_max(watermark, Ordering::Release);
            sub.marks.pop_front();
        }
        while sub.in_flight.front().is_some_and(|f| f.value <= completed) {
            let done = sub.in_flight.pop_front().expect("checked");
            for staging in &done.staging {
                self.destroy(staging);
            }
        }
        let retired = std::mem::take(&mut *self.retired.lock().unwrap_or_else(|e| e.into_inner()));
        sub.deferred.extend(retired);
        let mut waiting = Vec::new();
        let mut done = Vec::new();
        let retrying = |key: BufferKey| {
            sub.retry
                .as_ref()
                .is_some_and(|(_, r)| r.destinations.iter().any(|d| d.key == key))
        };
        let mut deferred = std::mem::take(&mut sub.deferred);
        // What staged uploads name, gathered once, and only when some buffer could go.
        let mut staged_destinations = None;
        for state in deferred.drain(..) {
            let mut staged = sub.destinations.contains_key(&state.key)
                || retrying(state.key)
                || state.unsubmitted_reads.load(Ordering::Acquire) > 0;
            if !staged && state.last_use.load(COUNTER) <= completed {
                let names = staged_destinations
                    .get_or_insert_with(|| self.lock_pending().staged_destinations());
                staged = names.binary_search(&Arc::as_ptr(&state)).is_ok();
            }
            if !staged && state.last_use.load(COUNTER) <= completed {
                done.push(state);
            } else {
                waiting.push(state);
            }
        }
        sub.deferred = waiting;
        let done: Vec<&BufferState<D>> = done.iter().map(|s| &**s).collect();
        self.destroy_all(&done);
        self.maintain_images(sub, completed);
        // After both: a pass ends once its old buffers and images are destroyed.
        self.end_finished_pass(sub);
        Ok(())
    }

    /// Destroys a buffer and frees its memory. The caller made sure the GPU is done with it.
    fn destroy(&self, state: &BufferState<D>) {
        self.destroy_all(&[state]);
    }

    /// Destroys buffers and frees their memory, taking the pools' and the live table's locks once
    /// per [`DESTROY_BATCH`] buffers rather than twice per buffer. The caller made sure the GPU
    /// is done with every one. Buffers destroyed already (by teardown) are skipped.
    fn destroy_all(&self, states: &[&BufferState<D>]) {
        let mut mine = Vec::with_capacity(states.len());
        for &state in states {
            if state.destroyed.swap(true, Ordering::AcqRel) {
                continue;
            }
            // SAFETY: every submitted copy naming the buffer completed and no staged one remains
            // (checked by the caller), and it is destroyed once (the flag above).
            unsafe { self.device.destroy_buffer(state.raw) };
            mine.push(state);
        }
        // In batches, so a maintain that frees thousands does not hold off creators for long.
        for batch in mine.chunks(DESTROY_BATCH) {
            let mut pools = self.lock_pools();
            if let Some(pools) = pools.as_mut() {
                for state in batch {
                    // An aliased buffer's memory goes with the last resource of its set.
                    let Some(allocation) =
                        aliased::memory_to_free(state.allocation, state.aliasing.as_ref())
                    else {
                        continue;
                    };
                    // SAFETY: the buffer bound to the allocation is destroyed (above, or before
                    // for the other resources of an aliased set) and the GPU is done with it.
                    let freed = unsafe { pools.free(DeviceAllocation::from_raw(allocation)) };
                    if let Err(e) = freed {
                        log::error!(
                            "memkit: freeing buffer {}'s memory failed: {e}",
                            state.key.0
                        );
                    }
                }
            }
            drop(pools);
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            for &state in batch {
                // A moved buffer's old state shares its key with the state that replaced it.
                if let Entry::Occupied(entry) = live.entry(state.key)
                    && std::ptr::eq(entry.get().as_ptr(), state)
                {
                    entry.remove();
                }
            }
        }
        self.counters
            .buffers_destroyed
            .fetch_add(mine.len() as u64, COUNTER);
    }

    /// A buffer handle was dropped: destroy it once its GPU work is done.
    ///
    /// During teardown (another thread shutting the coordinator down) the state still goes on the
    /// retired list unless teardown already destroyed it: that list's reference keeps it alive
    /// until teardown's pass over the live buffers destroys it. Dropped with no reference left,
    /// it would slip past that pass, and its device buffer would outlive the memory it is bound
    /// to.
    pub(crate) fn retire(&self, state: Arc<BufferState<D>>) {
        state.last_use.fetch_max(self.external_floor(), COUNTER);
        let destroyed = state.destroyed.load(Ordering::Acquire);
        self.retire_to(&self.retired, state, destroyed);
    }

    /// The value that a resource dropped now must wait for on top of its own copies: the
    /// application's work that the last [`Coordinator::wait_for_external`] named may still use
    /// it.
    pub(crate) fn external_floor(&self) -> u64 {
        // Acquire: pairs with the release in `wait_for_external`, after the floor's submission.
        self.external_floor.load(Ordering::Acquire)
    }

    /// [`Shared::retire`] for any kind of state, onto its `list`: skipped only when teardown has
    /// run and already `destroyed` it.
    fn retire_to<T>(&self, list: &Mutex<Vec<Arc<T>>>, state: Arc<T>, destroyed: bool) {
        if self.shut_down.load(Ordering::Acquire) && destroyed {
            return;
        }
        list.lock().unwrap_or_else(|e| e.into_inner()).push(state);
    }

    fn stats(&self) -> CoordinatorStats {
        let ring = self.ring.stats();
        // Before the pools' lock, which comes last in the lock order.
        let read_back_bytes_kept = self.lock_landings().kept_bytes();
        let (transient_chunks, transient_chunk_bytes) = self.lock_transient().held();
        let pools = self.lock_pools();
        let mut heaps = Vec::new();
        if let Some(pools) = pools.as_ref() {
            for heap in 0..self.device.memory_properties().heaps().len() as u32 {
                if let Some(s) = pools.heap_stats(heap) {
                    heaps.push(HeapReport::from_core(heap, &s));
                }
            }
        }
        let frames = self
            .pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frames_ended();
        CoordinatorStats {
            read_back_bytes_kept,
            transient_chunks,
            transient_chunk_bytes,
            ..self.counters.snapshot(
                ring,
                heaps,
                frames,
                self.timeline.submitted().get(),
                self.timeline.completed().get(),
            )
        }
    }

    /// The pools' memory map, copied out under the pools' lock (taken alone: it is last in the
    /// lock order, so holding nothing else here keeps that order).
    pub(crate) fn memory_map(&self) -> MemoryMap {
        let mut map = MemoryMap::new(self.device.memory_properties(), BLOCK_ALLOCATOR_NAME);
        if let Some(pools) = self.lock_pools().as_ref() {
            pools.visit_memory_map(&mut |entry| map.push(entry));
            for heap in 0..self.device.memory_properties().heaps().len() as u32 {
                if let Some(s) = pools.heap_stats(heap) {
                    map.set_heap_stats(heap, s);
                }
            }
        }
        map
    }

    /// Waits for the GPU, frees everything, and reports buffers still held as leaks.
    fn teardown(&self) {
        if self.shut_down.load(Ordering::Acquire) {
            // Already torn down by `Coordinator::shutdown`: `Drop` has nothing left to do.
            return;
        }
        let flushed = self.flush();
        let last = self.timeline.submitted().get();
        if flushed.is_ok() && last > 0 && !self.timeline.is_device_lost() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !matches!(
                self.wait_value(last, Duration::from_millis(100)),
                Ok(true) | Err(_)
            ) {
                if Instant::now() >= deadline {
                    log::error!("memkit: the GPU did not finish within 30 s; freeing anyway");
                    break;
                }
            }
        }
        self.shut_down.store(true, Ordering::Release);
        // The application's GPU work may still read the frames' transient memory: waited for
        // on its own timelines.
        self.teardown_transient(Instant::now() + Duration::from_secs(30));
        // Dropped outside the frames' lock (see `take_unsubmitted`).
        let slot_tickets = self
            .frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_unsubmitted();
        drop(slot_tickets);
        let mut sub = self.lock_submitter();
        let _ = self.maintain(&mut sub);
        // Whatever is left was held by a lost device, or by the caller.
        let in_flight: Vec<_> = sub.in_flight.drain(..).flat_map(|f| f.staging).collect();
        let mut deferred = std::mem::take(&mut sub.deferred);
        let deferred_images = std::mem::take(&mut sub.deferred_images);
        drop(sub);
        self.teardown_images(deferred_images);
        // Buffers the application dropped since the last `maintain` (every one dropped since the
        // loss, when the device is lost and `maintain` failed): freed here, and not reported as
        // leaks below, which they would be while this list holds them.
        deferred.append(&mut self.retired.lock().unwrap_or_else(|e| e.into_inner()));
        // Kept landing buffers are the coordinator's, not held by the application.
        deferred.extend(self.lock_landings().take_all());
        // The ring records' destinations may be released below: nothing reads them from here on
        // (`flush` refuses to collect once `shut_down` is set).
        let pending = std::mem::replace(&mut *self.lock_pending(), Pending::empty());
        for state in deferred.iter().chain(&in_flight) {
            self.destroy(state);
        }
        for upload in pending.dedicated {
            self.destroy(&upload.staging);
        }
        let live = still_held(&self.live);
        for state in &live {
            let label = state
                .label
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            log::warn!(
                "memkit: buffer {} ({} bytes{}{}) was still held when the coordinator was dropped; \
                 it is destroyed now and its handle is dead",
                state.key.0,
                state.size,
                if label.is_empty() { "" } else { ", " },
                label
            );
            self.counters.leaked_buffers.fetch_add(1, COUNTER);
            // A `Buffer::read` on another thread finishes before the memory goes (see
            // `read_mapped`).
            let _no_reads = state.host_reads.write().unwrap_or_else(|e| e.into_inner());
            self.destroy(state);
        }
        // SAFETY: the GPU finished (or the device is lost), the ring is no longer used (the
        // coordinator's handle is gone and `shut_down` is set), and nothing is bound to the
        // staging memory once its buffer is destroyed.
        unsafe { self.device.destroy_buffer(self.staging.raw) };
        if let Some(pools) = self.lock_pools().take() {
            let mut pools = pools;
            // SAFETY: as above: the staging buffer is destroyed and its copies completed.
            let _ = unsafe { pools.free(DeviceAllocation::from_raw(self.staging.allocation)) };
            Coordinator::teardown_pools(pools);
        }
    }
}

impl<D: Device> Drop for Coordinator<D> {
    fn drop(&mut self) {
        self.shared.teardown();
    }
}

impl<D: Device> TimelineSource for Shared<D> {
    fn completed(&self) -> Result<u64> {
        match self.device.completed_value() {
            Ok(v) => {
                self.note_completed(v);
                Ok(v)
            }
            Err(e) => Err(self.device_error(e)),
        }
    }

    fn value_of(&self, seq: u64) -> Option<u64> {
        if seq < self.completed_watermark.load(Ordering::Acquire) {
            // Completed (and its mark may be pruned): any value at or below the completed one.
            return Some(self.timeline.completed().get().max(1));
        }
        let sub = self.lock_submitter();
        // Again under the lock: `maintain` raises the watermark and prunes the marks under it, and
        // may have done so since the look above; the marks left would then name a later value.
        if seq < self.completed_watermark.load(Ordering::Acquire) {
            return Some(self.timeline.completed().get().max(1));
        }
        sub.marks
            .iter()
            .find(|(_, watermark)| seq < *watermark)
            .map(|(value, _)| *value)
    }

    fn submit_staged(&self) -> Result<()> {
        self.flush().map(|_| ())
    }

    fn staging_progress(&self) -> u64 {
        let stats = self.ring.stats();
        stats.drained_bytes.wrapping_add(stats.dropped_grants)
    }

    fn held_room_timeout(&self) -> Duration {
        self.config.held_room_timeout
    }

    fn wait(&self, value: u64, timeout: Duration) -> Result<bool> {
        if self.timeline.is_device_lost() {
            return Err(Error::DeviceLost);
        }
        self.wait_polled(value, timeout)
    }
}

/// The states in a table of live handles that the application still holds (at teardown: the
/// leaks).
fn still_held<T>(table: &Mutex<KeyMap<Weak<T>>>) -> Vec<Arc<T>> {
    table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter_map(Weak::upgrade)
        .collect()
}

fn flush_error(e: memkit_core::pool::FlushError) -> memkit_core::device::DeviceError {
    match e {
        memkit_core::pool::FlushError::Device(d) => d,
        _ => memkit_core::device::DeviceError::MapFailed,
    }
}
