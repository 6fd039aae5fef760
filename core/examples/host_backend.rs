//! Writing your own backend: memkit-core over plain host memory, driven end to end without
//! memkit-std.
//!
//! The first half is the backend an engine author writes for their platform: the device traits
//! of [`memkit_core::device`] over an imaginary console whose "GPU" is this very CPU. Memory
//! objects are heap byte buffers, buffers are ranges bound to them, and a copy submission is
//! queued and executed when the program waits for its timeline value, so that anything core
//! hands back too early would be overwritten before the "GPU" reads it, and the final check
//! would fail.
//!
//! The second half uses core the way an engine would: [`MemoryPools`] for every buffer, a
//! [`StagingRing`] in a host-visible buffer, the [`TransferScheduler`] to turn staged uploads
//! into copy commands, a [`TimelineTracker`] for the submission values, and a [`FramePacer`]
//! for per-frame constants. It checks every byte that reached "device" memory against what was
//! uploaded and exits non-zero on any difference.
//!
//! Run it with `cargo run -p memkit-core --example host_backend`.

use std::alloc::{self, Layout};
use std::collections::{HashMap, VecDeque};
use std::error::Error;
use std::process::ExitCode;
use std::ptr::{self, NonNull};
use std::sync::{Mutex, MutexGuard};

use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, DedicatedHint, DeviceError,
    DeviceLimits, HeapBudget, InvalidArgument, MappedRange, MemoryAllocateInfo, MemoryDevice,
    MemoryHeap, MemoryHeapFlags, MemoryProperties, MemoryPropertyFlags, MemoryRequirements,
    MemoryType, WaitStatus,
};
use memkit_core::pool::{BlockSlot, DedicatedSlot};
use memkit_core::scheduler::{
    BufferKey, CopyRegion, DestinationMemory, EMPTY_REGION, LargeUploadPolicy, Route, RouteConfig,
    SchedulerConfig, Upload, UploadSlot, regions_needed, route,
};
use memkit_core::{
    AllocationRequest, BufferingMode, DeviceAllocation, FenceValue, FramePacer, GrantError,
    MemoryPools, MemoryUsage, PoolConfig, RingConsumer, RingMemory, StagingRing, TimelineTracker,
    TlsfAllocator, TlsfNode, TransferScheduler,
};

// ------------------------------------------------------------------------------------------
// The imaginary console: 64 MiB of video memory the CPU cannot map, and 32 MiB of system
// memory it can, seen through two memory types (write-combined for uploads, cached for
// read-backs), as on many consoles and integrated GPUs.
// ------------------------------------------------------------------------------------------

const VIDEO_HEAP: u32 = 0;
const SYSTEM_HEAP: u32 = 1;
const HEAPS: [MemoryHeap; 2] = [
    MemoryHeap {
        size: 64 << 20,
        flags: MemoryHeapFlags::DEVICE_LOCAL,
    },
    MemoryHeap {
        size: 32 << 20,
        flags: MemoryHeapFlags::empty(),
    },
];
const TYPES: [MemoryType; 3] = [
    MemoryType {
        properties: MemoryPropertyFlags::DEVICE_LOCAL,
        heap_index: VIDEO_HEAP,
    },
    MemoryType {
        properties: MemoryPropertyFlags::HOST_VISIBLE.union(MemoryPropertyFlags::HOST_COHERENT),
        heap_index: SYSTEM_HEAP,
    },
    MemoryType {
        properties: MemoryPropertyFlags::HOST_VISIBLE
            .union(MemoryPropertyFlags::HOST_COHERENT)
            .union(MemoryPropertyFlags::HOST_CACHED),
        heap_index: SYSTEM_HEAP,
    },
];
const LIMITS: DeviceLimits = DeviceLimits {
    // Small on purpose: the pools must sub-allocate, not make an object per buffer.
    max_memory_allocation_count: 64,
    max_memory_allocation_size: 32 << 20,
    buffer_image_granularity: 1024,
    non_coherent_atom_size: 64,
    // Every memory object is allocated at this alignment, so its mapping is too.
    min_memory_map_alignment: 64,
    min_buffer_offset_alignment: 16,
};
/// Buffers are placed at this alignment (a uniform buffer's, on many GPUs).
const BUFFER_ALIGNMENT: u64 = 256;

// ------------------------------------------------------------------------------------------
// The backend.
// ------------------------------------------------------------------------------------------

/// A memory object. Ids are never reused, so a handle to a freed object finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct MemoryId(u32);

/// A buffer, by the same never-reused ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BufferId(u32);

/// The bytes of one memory object. They are reached only through raw pointers (the mapping
/// handed to the host, and the copies the "GPU" runs), never through a Rust reference, so the
/// host writing one range while the GPU copies another is no aliasing violation.
struct HostMemory {
    bytes: NonNull<u8>,
    layout: Layout,
    memory_type: usize,
    mapped: bool,
}

struct HostBuffer {
    size: u64,
    bound: Option<(MemoryId, u64)>,
}

/// A submission the "GPU" has not run yet. The regions are copied out of the caller's commands,
/// which `submit_copies` only borrows.
struct Submission {
    value: u64,
    copies: Vec<(BufferId, BufferId, Vec<BufferCopy>)>,
}

#[derive(Default)]
struct State {
    next_id: u32,
    memory: HashMap<MemoryId, HostMemory>,
    buffers: HashMap<BufferId, HostBuffer>,
    heap_usage: [u64; HEAPS.len()],
    /// The last value submitted and the last one the "GPU" finished.
    submitted: u64,
    completed: u64,
    pending: VecDeque<Submission>,
}

/// The device. Every trait method takes `&self` (core shares the device between the pools and
/// the queue), so the state sits behind a lock.
struct HostDevice {
    properties: MemoryProperties,
    state: Mutex<State>,
}

impl HostDevice {
    fn new() -> Result<Self, DeviceError> {
        // `MemoryProperties::new` validates the description; a bad one is a backend bug.
        let properties =
            MemoryProperties::new(&TYPES, &HEAPS).map_err(DeviceError::InvalidDescription)?;
        Ok(Self {
            properties,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a check below failed on another thread; the state is still
        // consistent enough to report from.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Memory objects and buffers still alive (both 0 after a clean teardown).
    fn live_objects(&self) -> (usize, usize) {
        let state = self.lock();
        (state.memory.len(), state.buffers.len())
    }
}

impl State {
    fn new_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// The host address of byte `offset` of `buffer`, checking that `len` bytes from there lie
    /// inside the buffer. The checks are the ones `submit_copies`'s contract promises; a host
    /// backend can afford them, and they turn what would be silent corruption on a GPU into a
    /// loud failure.
    fn buffer_bytes(&self, buffer: BufferId, offset: u64, len: u64) -> *mut u8 {
        let b = &self.buffers[&buffer];
        let (memory, bind_offset) = b.bound.expect("copy from or to an unbound buffer");
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= b.size),
            "copy region outside {buffer:?}"
        );
        let at = usize::try_from(bind_offset + offset).expect("offset fits the address space");
        // The bound range lies inside the memory object (`bind_buffer_memory` checked it).
        self.memory[&memory].bytes.as_ptr().wrapping_add(at)
    }

    /// Runs every pending submission up to `value`, in order, as a GPU would.
    fn run_until(&mut self, value: u64) {
        while self.pending.front().is_some_and(|s| s.value <= value) {
            let submission = self.pending.pop_front().expect("front exists");
            for (src, dst, regions) in &submission.copies {
                for r in regions {
                    let from = self.buffer_bytes(*src, r.src_offset, r.size);
                    let to = self.buffer_bytes(*dst, r.dst_offset, r.size);
                    let len = usize::try_from(r.size).expect("a region fits the address space");
                    // SAFETY: both ranges lie inside live, bound buffers, so inside their live
                    // memory objects (`buffer_bytes` checked); nothing holds a Rust reference to
                    // those bytes; `ptr::copy` allows overlap, which the contract rules out
                    // anyway.
                    unsafe { ptr::copy(from, to, len) };
                }
            }
            self.completed = submission.value;
        }
    }

    /// Whether a submission that has not run yet uses `buffer`.
    fn in_flight(&self, buffer: BufferId) -> bool {
        self.pending
            .iter()
            .flat_map(|s| &s.copies)
            .any(|(src, dst, _)| *src == buffer || *dst == buffer)
    }
}

impl MemoryDevice for HostDevice {
    type Memory = MemoryId;
    type Buffer = BufferId;
    // No images on this console: core's documented way to say so.
    type Image = std::convert::Infallible;

    fn memory_properties(&self) -> &MemoryProperties {
        &self.properties
    }

    fn limits(&self) -> DeviceLimits {
        LIMITS
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        // All of a heap is this program's; what it uses is what it allocated.
        let state = self.lock();
        for (i, budget) in out.iter_mut().enumerate().take(HEAPS.len()) {
            *budget = HeapBudget {
                budget: HEAPS[i].size,
                usage: state.heap_usage[i],
            };
        }
        true
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<BufferId, Self::Image>,
    ) -> Result<MemoryId, DeviceError> {
        let mut state = self.lock();
        if state.memory.len() >= LIMITS.max_memory_allocation_count as usize {
            return Err(DeviceError::TooManyObjects);
        }
        let heap = TYPES[info.memory_type as usize].heap_index as usize;
        if state.heap_usage[heap].saturating_add(info.size) > HEAPS[heap].size {
            return Err(DeviceError::OutOfDeviceMemory);
        }
        let size = usize::try_from(info.size).map_err(|_| DeviceError::OutOfHostMemory)?;
        let layout = Layout::from_size_align(size, LIMITS.min_memory_map_alignment as usize)
            .map_err(|_| DeviceError::OutOfHostMemory)?;
        // SAFETY: the layout's size is nonzero (the contract: `info.size` is nonzero).
        let bytes = NonNull::new(unsafe { alloc::alloc_zeroed(layout) })
            .ok_or(DeviceError::OutOfHostMemory)?;
        state.heap_usage[heap] += info.size;
        let id = MemoryId(state.new_id());
        let memory = HostMemory {
            bytes,
            layout,
            memory_type: info.memory_type as usize,
            mapped: false,
        };
        state.memory.insert(id, memory);
        Ok(id)
    }

    unsafe fn free_memory(&self, memory: MemoryId) {
        let mut state = self.lock();
        let bound = state
            .buffers
            .values()
            .any(|b| b.bound.is_some_and(|(m, _)| m == memory));
        assert!(!bound, "{memory:?} freed while a buffer is bound to it");
        // Like Vulkan, freeing unmaps.
        let object = state
            .memory
            .remove(&memory)
            .expect("free of a live memory object");
        let heap = TYPES[object.memory_type].heap_index as usize;
        state.heap_usage[heap] -= object.layout.size() as u64;
        // SAFETY: `bytes` came from `alloc_zeroed` with this layout and is freed once (the
        // object just left the table); no buffer is bound to it, so no pending copy reads it.
        unsafe { alloc::dealloc(object.bytes.as_ptr(), object.layout) };
    }

    unsafe fn map_memory(&self, memory: MemoryId) -> Result<NonNull<u8>, DeviceError> {
        let mut state = self.lock();
        let object = state
            .memory
            .get_mut(&memory)
            .ok_or(DeviceError::MapFailed)?;
        assert!(!object.mapped, "{memory:?} mapped twice");
        let properties = TYPES[object.memory_type].properties;
        if !properties.contains(MemoryPropertyFlags::HOST_VISIBLE) {
            return Err(DeviceError::MapFailed);
        }
        object.mapped = true;
        // The allocation is aligned to `min_memory_map_alignment`, as the trait requires.
        Ok(object.bytes)
    }

    unsafe fn unmap_memory(&self, memory: MemoryId) {
        if let Some(object) = self.lock().memory.get_mut(&memory) {
            object.mapped = false;
        }
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<MemoryId>]) -> Result<(), DeviceError> {
        // Host and "device" are one CPU: nothing to write back. Check the contract anyway.
        let state = self.lock();
        for r in ranges {
            assert!(state.memory[&r.memory].mapped, "flush of unmapped memory");
            assert_eq!(
                r.offset % LIMITS.non_coherent_atom_size,
                0,
                "flush offset not atom-aligned"
            );
        }
        Ok(())
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<MemoryId>],
    ) -> Result<(), DeviceError> {
        // SAFETY: the same contract as `flush_ranges`, which the caller keeps.
        unsafe { self.flush_ranges(ranges) }
    }
}

impl BufferDevice for HostDevice {
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(BufferId, MemoryRequirements), DeviceError> {
        if size == 0 {
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        if usage.is_empty() {
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::EmptyBufferUsage,
            ));
        }
        let mut state = self.lock();
        let id = BufferId(state.new_id());
        state.buffers.insert(id, HostBuffer { size, bound: None });
        let requirements = MemoryRequirements {
            size,
            alignment: BUFFER_ALIGNMENT,
            // Any memory type can hold a buffer.
            memory_type_bits: (1 << TYPES.len()) - 1,
            dedicated: DedicatedHint::None,
        };
        Ok((id, requirements))
    }

    unsafe fn bind_buffer_memory(
        &self,
        buffer: BufferId,
        memory: MemoryId,
        offset: u64,
    ) -> Result<(), DeviceError> {
        let mut state = self.lock();
        let object_size = state.memory[&memory].layout.size() as u64;
        let b = state
            .buffers
            .get_mut(&buffer)
            .expect("bind of a live buffer");
        assert!(b.bound.is_none(), "{buffer:?} bound twice");
        assert_eq!(offset % BUFFER_ALIGNMENT, 0, "misaligned bind");
        assert!(
            offset + b.size <= object_size,
            "bound range outside {memory:?}"
        );
        b.bound = Some((memory, offset));
        Ok(())
    }

    unsafe fn destroy_buffer(&self, buffer: BufferId) {
        let mut state = self.lock();
        assert!(
            !state.in_flight(buffer),
            "{buffer:?} destroyed while a copy uses it"
        );
        state.buffers.remove(&buffer);
    }

    unsafe fn buffer_device_address(&self, _buffer: BufferId) -> Result<u64, DeviceError> {
        // Host memory has no GPU address space.
        Err(DeviceError::FeatureNotEnabled)
    }
}

impl CopyQueue for HostDevice {
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, BufferId>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let mut state = self.lock();
        assert!(
            signal_value > state.submitted,
            "timeline value did not rise"
        );
        let copies = commands
            .iter()
            .map(|c| (c.src, c.dst, c.regions.to_vec()))
            .collect();
        state.pending.push_back(Submission {
            value: signal_value,
            copies,
        });
        state.submitted = signal_value;
        Ok(())
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        Ok(self.lock().completed)
    }

    /// The "GPU" is this CPU: it runs the copies when someone waits for them. A value never
    /// submitted cannot complete while we hold the lock, so that wait times out at once.
    fn wait(&self, value: u64, _timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        let mut state = self.lock();
        if value > state.submitted {
            return Ok(WaitStatus::TimedOut);
        }
        state.run_until(value);
        Ok(WaitStatus::Completed)
    }
}

// ------------------------------------------------------------------------------------------
// The engine side: core driven end to end.
// ------------------------------------------------------------------------------------------

type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
type Pools<'d> =
    MemoryPools<&'d HostDevice, Tlsf, Vec<BlockSlot<MemoryId, Tlsf>>, Vec<DedicatedSlot<MemoryId>>>;

const RING_BYTES: u64 = 64 << 10;
/// Uploads above this go through the ring in chunks, so one mesh cannot hold the whole ring.
const MAX_RING_UPLOAD: u64 = 16 << 10;
const UPLOAD_SLOTS: usize = 64;
const MESH_BYTES: usize = 200_000;
const FRAMES: u64 = 8;
/// Per-frame constants: each frame writes its block into its frame slot of a host-visible
/// buffer, and a copy moves it into the uniforms buffer at the frame's own offset.
const CONSTANTS_BYTES: u64 = 64;

/// A buffer and its memory.
struct Buffer {
    id: BufferId,
    memory: DeviceAllocation<MemoryId>,
}

fn create_buffer(
    pools: &mut Pools<'_>,
    size: u64,
    usage: BufferUsage,
    memory_usage: MemoryUsage,
) -> Result<Buffer, Box<dyn Error>> {
    let device = *pools.device();
    let (id, requirements) = device.create_buffer(size, usage)?;
    let memory = match pools.allocate(&AllocationRequest::new(requirements, memory_usage)) {
        Ok(memory) => memory,
        Err(e) => {
            // SAFETY: the buffer was never bound or used.
            unsafe { device.destroy_buffer(id) };
            return Err(e.into());
        }
    };
    // SAFETY: the buffer is alive and unbound; the pools placed `memory` at the buffer's
    // alignment, in a type its `memory_type_bits` allow, with `requirements.size` bytes.
    unsafe { device.bind_buffer_memory(id, memory.memory(), memory.offset()) }?;
    Ok(Buffer { id, memory })
}

/// Destroys a buffer and gives its memory back.
///
/// # Safety
/// The GPU has finished every use of the buffer.
unsafe fn destroy_buffer(pools: &mut Pools<'_>, buffer: Buffer) -> Result<(), Box<dyn Error>> {
    // SAFETY: the caller's contract; the buffer goes before its memory, as `free` asks.
    unsafe { pools.device().destroy_buffer(buffer.id) };
    // SAFETY: as above; nothing reads through its mapping afterwards.
    unsafe { pools.free(buffer.memory) }?;
    Ok(())
}

/// The upload path: the ring's one consumer, the scheduler, and the timeline. Producers write
/// through `ring.grant`; here everything runs on one thread.
struct Uploader<'r, 'm> {
    device: &'r HostDevice,
    ring: &'r StagingRing<'m>,
    consumer: RingConsumer<&'r StagingRing<'m>>,
    staging: BufferId,
    scheduler: TransferScheduler<
        [UploadSlot; UPLOAD_SLOTS],
        [CopyRegion; regions_needed(UPLOAD_SLOTS, 1)],
    >,
    timeline: TimelineTracker,
    /// Bytes committed to the ring and pushed to the scheduler, not yet drained: in one thread
    /// that commits and pushes together, every one of them drains at the next submit.
    pushed_bytes: usize,
    submissions: u32,
    waits: u32,
}

impl<'r, 'm> Uploader<'r, 'm> {
    /// Stages `data` for `[dst_offset, ..)` of `dst` through the ring, waiting for the "GPU"
    /// when the ring is full.
    fn stage(&mut self, dst: BufferId, dst_offset: u64, data: &[u8]) -> Result<(), Box<dyn Error>> {
        let src_offset = loop {
            match self.ring.grant(data.len(), 16) {
                Ok(grant) => {
                    let offset = grant.offset();
                    grant.write_and_commit(data)?;
                    break offset;
                }
                // Room comes back when that value completes: this is where an engine waits.
                Err(GrantError::Full {
                    wait_for: Some(value),
                }) => self.wait_for(value)?,
                // The space is held by our own staged, unsubmitted uploads: submit them.
                Err(GrantError::Full { wait_for: None } | GrantError::TooManyUndrained { .. }) => {
                    if self.submit(&[])?.is_none() {
                        return Err("the ring is full and nothing is left to submit".into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.pushed_bytes += data.len();
        let upload = Upload {
            src_offset: src_offset as u64,
            // The backend's buffer ids serve as the scheduler's keys.
            destination: BufferKey(u64::from(dst.0)),
            dst_offset,
            size: data.len() as u64,
        };
        if let Err(refused) = self.scheduler.push(upload) {
            // A full queue hands the upload back: submit what is queued, push again.
            self.submit(&[])?;
            self.scheduler.push(refused.into_upload())?;
        }
        Ok(())
    }

    /// Submits everything staged, plus `extra` commands, with the next timeline value; returns
    /// it (`None` when there was nothing to submit).
    fn submit(
        &mut self,
        extra: &[CopyCommand<'_, BufferId>],
    ) -> Result<Option<FenceValue>, Box<dyn Error>> {
        // Drain what was committed, so that the ring knows which submission reads it.
        let mut drained = 0;
        while let Some(range) = self.consumer.drain() {
            drained += range.len();
        }
        if drained != self.pushed_bytes {
            return Err(format!("drained {drained} bytes, staged {}", self.pushed_bytes).into());
        }
        self.pushed_bytes = 0;
        let plan = self.scheduler.plan();
        if plan.unaligned_count() != 0 {
            return Err("copy alignment 1 leaves no unaligned writes".into());
        }
        let mut commands: Vec<CopyCommand<'_, BufferId>> = plan
            .batches()
            .map(|batch| CopyCommand {
                src: self.staging,
                dst: BufferId(batch.destination.0 as u32),
                regions: batch.regions,
            })
            .collect();
        commands.extend_from_slice(extra);
        if commands.is_empty() {
            return Ok(None);
        }
        let value = self.timeline.submit()?;
        // SAFETY: every buffer is alive and bound until `value` completes (the program waits
        // for it before destroying any); the plan's regions are nonzero, inside both buffers
        // and disjoint, and the extra commands' are too; the ring is in coherent memory, so the
        // committed bytes need no flush; `value` rises by one per submission.
        unsafe { self.device.submit_copies(&commands, value.get()) }?;
        // Only now is the ring's space tied to the submission that reads it.
        if drained > 0 {
            self.consumer.mark(value)?;
        }
        self.submissions += 1;
        Ok(Some(value))
    }

    /// Waits until `value` completed, then records it and takes back the ring space it freed.
    fn wait_for(&mut self, value: FenceValue) -> Result<(), Box<dyn Error>> {
        if !self.timeline.is_complete(value) {
            self.waits += 1;
            if self.device.wait(value.get(), u64::MAX)? != WaitStatus::Completed {
                return Err(format!("timeline value {value} never completes").into());
            }
        }
        self.poll()
    }

    /// Reads the device's completed value: the only way anything comes back.
    fn poll(&mut self) -> Result<(), Box<dyn Error>> {
        let completed = FenceValue::new(self.device.completed_value()?);
        self.timeline.signal(completed)?;
        self.consumer.release_completed(completed);
        Ok(())
    }
}

/// A deterministic byte stream (xorshift), so a failure reproduces.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let device = HostDevice::new()?;
    let config = PoolConfig {
        first_block_size: 1 << 20,
        max_allocations_per_block: 64,
        ..PoolConfig::DEFAULT
    };
    // Block metadata lives in storage we hand over; a console would use static arrays.
    let storage_len = Pools::block_storage_len(&&device, &config)?;
    let blocks = (0..8)
        .map(|_| BlockSlot::new(vec![TlsfNode::EMPTY; storage_len]))
        .collect();
    let dedicated = vec![DedicatedSlot::new(); 8];
    let mut pools = Pools::new(&device, config, blocks, dedicated)?;

    // Device-local destinations, the host-visible staging buffer that backs the ring, and a
    // host-visible buffer for per-frame constants.
    let dst = BufferUsage::TRANSFER_DST;
    let mesh = create_buffer(
        &mut pools,
        MESH_BYTES as u64,
        dst | BufferUsage::VERTEX,
        MemoryUsage::FAST_DEVICE_ACCESS,
    )?;
    let uniforms = create_buffer(
        &mut pools,
        FRAMES * CONSTANTS_BYTES,
        dst | BufferUsage::UNIFORM,
        MemoryUsage::FAST_DEVICE_ACCESS,
    )?;
    let src = BufferUsage::TRANSFER_SRC;
    let staging = create_buffer(&mut pools, RING_BYTES, src, MemoryUsage::UPLOAD)?;
    let frames_in_flight = BufferingMode::Double.frames_in_flight() as u64;
    let constants = create_buffer(
        &mut pools,
        frames_in_flight * CONSTANTS_BYTES,
        src,
        MemoryUsage::UPLOAD,
    )?;
    for (name, b) in [
        ("mesh", &mesh),
        ("uniforms", &uniforms),
        ("staging", &staging),
    ] {
        println!(
            "{name}: {} bytes in memory type {} ({:?}) at offset {}",
            b.memory.size(),
            b.memory.memory_type(),
            TYPES[b.memory.memory_type() as usize].properties,
            b.memory.offset()
        );
    }
    let staging_ptr = staging
        .memory
        .mapped()
        .ok_or("staging memory is not mapped")?;
    let constants_ptr = constants
        .memory
        .mapped()
        .ok_or("constants are not mapped")?;

    // What the device memory must hold at the end, updated in upload order.
    let mut expected_mesh = vec![0u8; MESH_BYTES];
    let mut expected_uniforms = vec![0u8; (FRAMES * CONSTANTS_BYTES) as usize];
    let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);

    let timeline = {
        // SAFETY: the staging allocation is mapped, `RING_BYTES` long and kept alive (and so
        // mapped) until after this block, which the ring does not outlive; only the ring writes
        // it, and the "GPU" reads only ranges the consumer drained and has not released.
        let memory =
            unsafe { RingMemory::from_raw_parts(staging_ptr.as_non_null(), RING_BYTES as usize) };
        let ring: StagingRing<'_> = StagingRing::new(memory)?;
        let mut uploader = Uploader {
            device: &device,
            ring: &ring,
            consumer: RingConsumer::new(&ring)?,
            staging: staging.id,
            scheduler: TransferScheduler::new(
                SchedulerConfig::VULKAN,
                [UploadSlot::EMPTY; UPLOAD_SLOTS],
                [EMPTY_REGION; regions_needed(UPLOAD_SLOTS, 1)],
            )?,
            timeline: TimelineTracker::new(),
            pushed_bytes: 0,
            submissions: 0,
            waits: 0,
        };
        let routing = RouteConfig::new(RING_BYTES, MAX_RING_UPLOAD, LargeUploadPolicy::Chunks, 1)?;

        // The whole mesh, larger than the ring: routed in chunks, so the ring fills, the
        // uploader submits, and later chunks wait for the "GPU" to read earlier ones.
        let data = bytes.fill(MESH_BYTES);
        let chunk = match route(&routing, DestinationMemory::DeviceOnly, MESH_BYTES as u64)? {
            Route::Chunks { chunk_size, .. } => chunk_size as usize,
            other => return Err(format!("a 200 KB mesh routed as {other:?}").into()),
        };
        for (i, piece) in data.chunks(chunk).enumerate() {
            uploader.stage(mesh.id, (i * chunk) as u64, piece)?;
        }
        expected_mesh.copy_from_slice(&data);

        let mut pacer = FramePacer::new(BufferingMode::Double);
        for number in 0..FRAMES {
            let frame = pacer.begin_frame()?;
            // The frame's constants slot was last read by frame `number - 2`'s copy.
            uploader.wait_for(frame.wait_for())?;

            // Small edits of the mesh; later ones win where they overlap earlier ones.
            for _ in 0..6 {
                let offset = (bytes.next() % (MESH_BYTES as u64 - 4096)) as usize;
                let len = 1 + (bytes.next() % 4096) as usize;
                let patch = bytes.fill(len);
                uploader.stage(mesh.id, offset as u64, &patch)?;
                expected_mesh[offset..offset + patch.len()].copy_from_slice(&patch);
            }

            // The constants go straight into the mapped slot, then a copy of our own.
            let block = bytes.fill(CONSTANTS_BYTES as usize);
            let slot_offset = frame.slot() as u64 * CONSTANTS_BYTES;
            let slot = constants_ptr
                .offset(slot_offset)
                .ok_or("slot address overflows")?;
            // SAFETY: the slot lies inside the live, mapped constants allocation; its last
            // reader (the copy of frame `number - 2`) completed, waited for above.
            unsafe { ptr::copy_nonoverlapping(block.as_ptr(), slot.as_ptr(), block.len()) };
            let dst_offset = number * CONSTANTS_BYTES;
            let at = dst_offset as usize;
            expected_uniforms[at..at + block.len()].copy_from_slice(&block);
            let region = [BufferCopy {
                src_offset: slot_offset,
                dst_offset,
                size: CONSTANTS_BYTES,
            }];
            let copy = CopyCommand {
                src: constants.id,
                dst: uniforms.id,
                regions: &region,
            };
            let value = uploader
                .submit(&[copy])?
                .ok_or("the frame submitted nothing")?;
            pacer.end_frame(frame, value)?;
        }
        uploader.wait_for(uploader.timeline.submitted())?;
        let s = uploader.scheduler.stats();
        let r = ring.stats();
        println!(
            "{} uploads ({} bytes) in {} copy regions over {} submissions; {} bytes overwritten \
             by later uploads; {} waits for the GPU",
            s.uploads,
            s.bytes,
            s.copy_regions,
            uploader.submissions,
            s.bytes_overwritten,
            uploader.waits
        );
        println!(
            "ring: {} bytes, written up to byte {}, high-water mark {}, {} bytes skipped at \
             wraps ({} in {} early wraps)",
            r.capacity,
            r.bytes_reached,
            r.high_water_mark,
            r.wasted_wrap_bytes,
            r.early_wrap_bytes,
            r.early_wraps
        );
        // The ring and its consumer end here; the timeline goes on.
        uploader.timeline
    };

    // Read everything back through a copy into host-cached memory, as a GPU program must.
    let readback_len = MESH_BYTES as u64 + FRAMES * CONSTANTS_BYTES;
    let readback = create_buffer(&mut pools, readback_len, dst, MemoryUsage::DOWNLOAD)?;
    let mesh_region = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: MESH_BYTES as u64,
    }];
    let uniforms_region = [BufferCopy {
        src_offset: 0,
        dst_offset: MESH_BYTES as u64,
        size: FRAMES * CONSTANTS_BYTES,
    }];
    let copies = [
        CopyCommand {
            src: mesh.id,
            dst: readback.id,
            regions: &mesh_region,
        },
        CopyCommand {
            src: uniforms.id,
            dst: readback.id,
            regions: &uniforms_region,
        },
    ];
    let value = timeline.submit()?;
    // SAFETY: the buffers are alive and bound until the wait below; the regions lie inside
    // them and the destination ranges are disjoint; the value rises.
    unsafe { device.submit_copies(&copies, value.get()) }?;
    if device.wait(value.get(), u64::MAX)? != WaitStatus::Completed {
        return Err("the read-back copy never completed".into());
    }
    timeline.signal(FenceValue::new(device.completed_value()?))?;
    pools.invalidate(&readback.memory, 0, readback_len)?;
    let readback_ptr = readback
        .memory
        .mapped()
        .ok_or("read-back memory is not mapped")?;
    // SAFETY: the allocation is live and mapped for `readback_len` bytes, and the copy writing
    // it completed; nothing writes it while the slice lives.
    let got = unsafe { std::slice::from_raw_parts(readback_ptr.as_ptr(), readback_len as usize) };
    let (got_mesh, got_uniforms) = got.split_at(MESH_BYTES);
    let mesh_ok = got_mesh == expected_mesh.as_slice();
    let uniforms_ok = got_uniforms == expected_uniforms.as_slice();
    println!(
        "read back: mesh {}, uniforms {}",
        if mesh_ok { "matches" } else { "DIFFERS" },
        if uniforms_ok { "match" } else { "DIFFER" }
    );

    // Teardown: every copy completed (waited above), so everything may go.
    for buffer in [mesh, uniforms, staging, constants, readback] {
        // SAFETY: the last submission completed; no copy uses any buffer any more.
        unsafe { destroy_buffer(&mut pools, buffer) }?;
    }
    // SAFETY: as above; no pointer into a mapping is used after this.
    let report = unsafe { pools.destroy() };
    let (memory_left, buffers_left) = device.live_objects();
    println!(
        "teardown: {} memory objects freed, {} leaked allocations, {memory_left} objects and \
         {buffers_left} buffers left on the device",
        report.objects_freed, report.leaked_allocations
    );
    if !(mesh_ok && uniforms_ok) {
        return Err("device memory differs from what was uploaded".into());
    }
    if !report.is_clean() || memory_left != 0 || buffers_left != 0 {
        return Err("teardown left something behind".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("host_backend: {e}");
            ExitCode::FAILURE
        }
    }
}
