//! `memkit bench`: what an upload costs through the coordinator, and the coordinator against the
//! paths users would otherwise take, on the same device in the same run.
//!
//! 1. CPU cost per small upload (64 B-4 KiB): a batch of `upload_to` calls into one buffer, timed,
//!    beside a loop doing only the same `memcpy`s into plain memory (page-aligned, as the ring's
//!    grants are); the difference is what the coordinator adds per upload (grant, bookkeeping,
//!    commit), "below memcpy noise" where it comes out negative. The submission that follows is
//!    timed separately and quoted per upload. One more row, "direct", uploads 256 B into a buffer
//!    the CPU writes straight into (`UPLOAD | FAST_DEVICE_ACCESS`, where the device has
//!    device-local host-visible memory): what the direct path adds to the write.
//! 2. Throughput of `N` uploads of 256 B, 4 KiB and 64 KiB, scattered over 256 slots of one
//!    destination, a submission every 256 uploads (a frame), until the GPU finished the last:
//!    - the coordinator (`upload_to`, `flush_transfers` per frame);
//!    - the naive path, as the published memkit-co crate does it: a staging buffer and memory
//!      object per upload through the device traits, one `submit_copies` and one wait per upload
//!      (memkit-co leaks the staging buffer; here it is freed, so the device does not fill up);
//!    - a wgpu-style path (`Queue::write_buffer`): a fresh staging buffer per call, bound into a
//!      sub-allocated, persistently mapped block (as wgpu's allocator does), one copy command per
//!      call, all of a frame's commands in one submission, each staging buffer destroyed once
//!      its submission completed (two frames in flight).
//!
//! On the simulated device each submission executes when it is submitted, on the benchmark
//! thread, and times are that thread's CPU time: every path pays for its (simulated) GPU work
//! alike, and a loaded machine does not move the figures much. On Vulkan, times are wall time
//! to GPU completion.
//!
//! Every figure is a median over repetitions; ratios compare paths measured in the same run.

use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, DeviceError, MappedRange, MemoryAllocateInfo,
    MemoryPropertyFlags, WaitStatus,
};
use memkit_std::{Buffer, Coordinator, CoordinatorConfig, MemoryUsage};

use crate::backend::Backend;
use crate::clock::Clock;
use crate::report::Json;
use crate::rng::Rng;

/// Uploads per frame, and slots of the destination.
const SLOTS: u64 = 256;
/// Small uploads per timed batch.
const BATCH: u64 = 4096;

/// How the benchmark runs.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Fewer repetitions and uploads.
    pub quick: bool,
    /// Seed of the payloads and slot orders.
    pub seed: u64,
}

impl BenchOptions {
    /// Timed batches behind each small-upload median (part 1).
    pub fn small_repetitions(&self) -> usize {
        if self.quick { 5 } else { 15 }
    }

    /// Runs of each path behind each throughput median (part 2): fewer, for each takes the
    /// device through thousands of uploads.
    pub fn path_repetitions(&self) -> usize {
        if self.quick { 3 } else { 5 }
    }
}

/// CPU cost of small uploads of one size.
#[derive(Clone, Copy, Debug)]
pub struct SmallUpload {
    /// Bytes per upload.
    pub size: u64,
    /// Written straight into device-local host-visible memory (no staging, no copy).
    pub direct: bool,
    /// Median ns per `upload_to`.
    pub upload_ns: f64,
    /// Median ns per `memcpy` of the same bytes.
    pub memcpy_ns: f64,
    /// Median over repetitions of (upload - memcpy) per upload: the coordinator's own cost, or
    /// negative where memory timing hides it ([`SmallUpload::overhead`]).
    pub overhead_ns: f64,
    /// Median ns of `flush_transfers` divided by the uploads it submitted.
    pub flush_ns: f64,
}

impl SmallUpload {
    /// The coordinator's own cost per upload, or `None` when the median difference is negative:
    /// the memcpy alone took longer than the upload that includes the same memcpy, so the
    /// coordinator's cost is below what the two copies' different memory timing hides (large
    /// batches measure memory: 4 KiB uploads make 16 MiB per batch).
    pub fn overhead(&self) -> Option<f64> {
        (self.overhead_ns >= 0.0).then_some(self.overhead_ns)
    }
}

/// Throughput of the three paths for one upload size.
#[derive(Clone, Copy, Debug)]
pub struct PathComparison {
    /// Bytes per upload.
    pub size: u64,
    /// Uploads per run.
    pub uploads: u64,
    /// Median seconds per run: coordinator, naive, wgpu-style.
    pub seconds: [f64; 3],
}

impl PathComparison {
    /// MB/s (10^6 bytes) of path `i`.
    pub fn megabytes_per_second(&self, i: usize) -> f64 {
        (self.size * self.uploads) as f64 / 1e6 / self.seconds[i].max(1e-12)
    }

    /// How many times faster the coordinator is than path `i`.
    pub fn speedup(&self, i: usize) -> f64 {
        self.seconds[i] / self.seconds[0].max(1e-12)
    }
}

/// Everything `memkit bench` measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// The device, in words.
    pub device: String,
    /// Timed batches behind each median of part 1 (small uploads).
    pub small_repetitions: usize,
    /// Runs of each path behind each median of part 2 (throughput).
    pub path_repetitions: usize,
    /// Whether the paths' times are the benchmark thread's CPU time (else wall time).
    pub paths_cpu_time: bool,
    /// Whether the small uploads' times are CPU time.
    pub small_cpu_time: bool,
    /// Part 1.
    pub small: Vec<SmallUpload>,
    /// Part 2.
    pub paths: Vec<PathComparison>,
}

/// Why the benchmark stopped.
pub type BenchError = Box<dyn std::error::Error>;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn ns_per(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

/// Runs both parts. `make` builds a fresh device (a coordinator's timeline starts at 0, so each
/// coordinator gets one): one for part 1, and one per size and repetition of part 2, where the
/// coordinator runs first and the two peers follow on the same device (a real one: creating
/// dozens of Vulkan devices in one process fails on NVIDIA's driver), their timeline values
/// continuing from its last; on the simulated device the peers get a fresh one.
pub fn run<D: Backend>(
    make: &dyn Fn() -> Result<D, BenchError>,
    options: BenchOptions,
) -> Result<BenchReport, BenchError> {
    let made = std::cell::Cell::new(0u32);
    let make = || -> Result<D, BenchError> {
        made.set(made.get() + 1);
        make().map_err(|e| format!("creating device number {}: {e}", made.get()).into())
    };
    let small_repetitions = options.small_repetitions();
    let path_repetitions = options.path_repetitions();
    let device: D = make()?;
    let name = device.describe();
    // The uploads' CPU cost is CPU time; so is a path's time on the simulated device, whose GPU
    // work runs on the benchmark thread. On a real device a path waits for the GPU: wall time.
    let cpu_clock = Clock::new(true);
    let clock = Clock::new(device.is_simulated());
    // Part 1's device does not execute on submit: its flush figure is the coordinator's work
    // alone (the copies run, untimed, when the batch is waited for).
    let small = small_uploads(
        device,
        &[64, 256, 1024, 4096],
        small_repetitions,
        options.seed,
        cpu_clock,
    )?;
    let uploads = if options.quick { 2_000 } else { 10_000 };
    let mut paths = Vec::new();
    for size in [256, 4096, 64 << 10] {
        let mut seconds = [Vec::new(), Vec::new(), Vec::new()];
        for rep in 0..path_repetitions {
            let order = slot_order(options.seed ^ rep as u64, uploads);
            let payload = payload(options.seed, size);
            let device: D = make()?;
            device.execute_on_submit();
            // A simulated device is cheap to make, and a fresh one carries nothing over (its
            // quarantine of freed mappings would charge the coordinator's ring to the peers).
            let peers = if device.is_simulated() {
                let fresh = make()?;
                fresh.execute_on_submit();
                fresh
            } else {
                device.clone()
            };
            seconds[0].push(coordinator_path(device, size, &order, &payload, clock)?.as_secs_f64());
            // The peers alternate which goes first.
            for k in 0..2 {
                if (k + rep) % 2 == 0 {
                    let d = naive_path(&peers, size, &order, &payload, clock)?;
                    seconds[1].push(d.as_secs_f64());
                } else {
                    let d = wgpu_style_path(&peers, size, &order, &payload, clock)?;
                    seconds[2].push(d.as_secs_f64());
                }
            }
        }
        paths.push(PathComparison {
            size,
            uploads,
            seconds: seconds.map(|mut s| median(&mut s)),
        });
    }
    Ok(BenchReport {
        device: name,
        small_repetitions,
        path_repetitions,
        paths_cpu_time: clock.is_cpu_time(),
        small_cpu_time: cpu_clock.is_cpu_time(),
        small,
        paths,
    })
}

fn payload(seed: u64, size: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; size as usize];
    Rng::new(seed, size).fill(&mut bytes);
    bytes
}

/// The slot of each upload: every frame writes each of the `SLOTS` slots once, in a random order.
fn slot_order(seed: u64, uploads: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed, 7);
    let mut order = Vec::with_capacity(uploads as usize);
    while (order.len() as u64) < uploads {
        let mut frame: Vec<u64> = (0..SLOTS).collect();
        for i in (1..frame.len()).rev() {
            frame.swap(i, rng.below(i as u64 + 1) as usize);
        }
        order.extend(frame);
    }
    order.truncate(uploads as usize);
    order
}

/// Part 1: every size on one coordinator.
fn small_uploads<D: Backend>(
    device: D,
    sizes: &[u64],
    repetitions: usize,
    seed: u64,
    clock: Clock,
) -> Result<Vec<SmallUpload>, BenchError> {
    let coordinator = Coordinator::new(device, CoordinatorConfig::default())?;
    warm_ring(&coordinator)?;
    let mut destinations = Vec::new();
    for &size in sizes {
        let staged = coordinator.create_buffer(BATCH * size, MemoryUsage::FAST_DEVICE_ACCESS)?;
        destinations.push((staged, size));
    }
    // The direct path, where the device has memory for it.
    let size = 256;
    let direct = coordinator.create_buffer(
        BATCH * size,
        MemoryUsage::UPLOAD | MemoryUsage::FAST_DEVICE_ACCESS,
    )?;
    let device_local = coordinator.device().memory_properties().types()
        [direct.memory_type() as usize]
        .properties
        .contains(MemoryPropertyFlags::DEVICE_LOCAL);
    if direct.is_direct_write() && device_local {
        destinations.push((direct, size));
    }
    let mut out = Vec::new();
    for (destination, size) in &destinations {
        out.push(small_upload(
            &coordinator,
            destination,
            *size,
            repetitions,
            seed,
            clock,
        )?);
    }
    check_device(coordinator.device())?;
    Ok(out)
}

/// Part 1 for one size.
fn small_upload<D: Backend>(
    coordinator: &Coordinator<D>,
    destination: &Buffer<D>,
    size: u64,
    repetitions: usize,
    seed: u64,
    clock: Clock,
) -> Result<SmallUpload, BenchError> {
    let payload = payload(seed, size);
    let mut scratch = MemcpyTarget::new((BATCH * size) as usize);
    let scratch = scratch.bytes_mut();
    let (mut upload, mut memcpy, mut overhead, mut flush) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // One repetition more than counted: the first warms caches and the pools.
    for rep in 0..=repetitions {
        let start = clock.now();
        for i in 0..BATCH {
            coordinator.upload_to(destination, i * size, black_box(&payload[..]))?;
        }
        let uploaded = clock.now().saturating_sub(start);
        let start = clock.now();
        let ticket = coordinator.flush_transfers()?;
        let flushed = clock.now().saturating_sub(start);
        ticket.wait()?;
        coordinator.maintain()?;
        let start = clock.now();
        for i in 0..BATCH {
            let at = (i * size) as usize;
            scratch[at..at + size as usize].copy_from_slice(black_box(&payload[..]));
        }
        black_box(&mut *scratch);
        let copied = clock.now().saturating_sub(start);
        if rep > 0 {
            upload.push(ns_per(uploaded, BATCH));
            memcpy.push(ns_per(copied, BATCH));
            overhead.push(ns_per(uploaded, BATCH) - ns_per(copied, BATCH));
            flush.push(ns_per(flushed, BATCH));
        }
    }
    Ok(SmallUpload {
        size,
        direct: destination.is_direct_write(),
        upload_ns: median(&mut upload),
        memcpy_ns: median(&mut memcpy),
        overhead_ns: median(&mut overhead),
        flush_ns: median(&mut flush),
    })
}

/// Plain memory for part 1's memcpy baseline, starting on a page boundary as the ring's grants do
/// (the ring is a mapping, which starts on a page, and a batch's grants of one size follow each
/// other): a `Vec`'s own start is 16 bytes past a page (the allocator's header), so every copy
/// into it straddled one more cache line than the same copy into the ring. That made the
/// baseline up to twice as slow as the ring's copy on this machine's AMD EPYC (4 KiB: 378 ns
/// against about 165 ns), and the 4 KiB row's "overhead" negative.
pub struct MemcpyTarget {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl MemcpyTarget {
    /// The alignment of the target's start.
    pub const ALIGN: usize = 4096;

    /// `len` zeroed bytes starting at a multiple of [`MemcpyTarget::ALIGN`].
    pub fn new(len: usize) -> Self {
        let bytes = vec![0u8; len + Self::ALIGN];
        // `align_offset` on a `u8` pointer always finds the offset (below `ALIGN`).
        let start = bytes.as_ptr().align_offset(Self::ALIGN).min(Self::ALIGN);
        Self { bytes, start, len }
    }

    /// The target's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

/// The coordinator: `upload_to` per upload, `flush_transfers` per frame, a wait for the last.
fn coordinator_path<D: Backend>(
    device: D,
    size: u64,
    order: &[u64],
    payload: &[u8],
    clock: Clock,
) -> Result<Duration, BenchError> {
    let coordinator = Coordinator::new(device, CoordinatorConfig::default())?;
    warm_ring(&coordinator)?;
    let destination = coordinator.create_buffer(SLOTS * size, MemoryUsage::FAST_DEVICE_ACCESS)?;
    let start = clock.now();
    for (i, &slot) in order.iter().enumerate() {
        coordinator.upload_to(&destination, slot * size, payload)?;
        if (i as u64 + 1).is_multiple_of(SLOTS) {
            coordinator.flush_transfers()?;
        }
    }
    coordinator.flush_transfers()?.wait()?;
    let elapsed = clock.now().saturating_sub(start);
    check_device(coordinator.device())?;
    Ok(elapsed)
}

/// Writes the whole staging ring once, untimed: its memory is mapped once for the coordinator's
/// life, and an engine's ring is warm; a fresh one would charge the first touch of every page
/// (a page fault each) to the coordinator alone.
fn warm_ring<D: Backend>(coordinator: &Coordinator<D>) -> Result<(), BenchError> {
    let config = coordinator.config();
    let chunk = config.max_ring_upload.min(config.staging_ring_size);
    let scratch = coordinator.create_buffer(chunk, MemoryUsage::FAST_DEVICE_ACCESS)?;
    let bytes = vec![0x5Au8; chunk as usize];
    for _ in 0..config.staging_ring_size.div_ceil(chunk) + 1 {
        coordinator.upload_to(&scratch, 0, &bytes)?;
        coordinator.flush_transfers()?.wait()?;
    }
    drop(scratch);
    coordinator.maintain()?;
    Ok(())
}

/// Fails when the device detected misuse (the simulated device checks every call).
fn check_device<D: Backend>(device: &D) -> Result<(), BenchError> {
    let problems = device.problems();
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "the device detected {} misuse(s), the first: {first}",
            problems.len()
        )
        .into()),
    }
}

/// A memory object of its own, with a buffer bound over it or not, made through the device
/// traits directly (the peers' paths).
struct RawBuffer<D: Backend> {
    /// `None` for a block that buffers are bound into later.
    buffer: Option<D::Buffer>,
    memory: D::Memory,
    mapped: Option<NonNull<u8>>,
    coherent: bool,
    size: u64,
}

/// Picks a memory type allowed by `bits` that has `want`, preferring `prefer` too.
fn memory_type<D: Backend>(
    device: &D,
    bits: u32,
    want: MemoryPropertyFlags,
    prefer: MemoryPropertyFlags,
) -> Option<(u32, MemoryPropertyFlags)> {
    let types = device.memory_properties().types();
    let allowed = |i: usize| bits & (1 << i) != 0 && types[i].properties.contains(want);
    let pick = (0..types.len())
        .find(|&i| allowed(i) && types[i].properties.contains(prefer))
        .or_else(|| (0..types.len()).find(|&i| allowed(i)))?;
    Some((pick as u32, types[pick].properties))
}

fn no_memory_type() -> BenchError {
    "no memory type fits the benchmark's buffers".into()
}

impl<D: Backend> RawBuffer<D> {
    /// A buffer bound to a memory object of its own: host-visible and mapped for staging, else
    /// device-local when the device has it.
    fn new(device: &D, size: u64, staging: bool) -> Result<Self, BenchError> {
        Self::make(device, size, staging, true)
    }

    /// Host-visible, mapped memory that staging buffers can be bound into, with no buffer of
    /// its own.
    fn block(device: &D, size: u64) -> Result<Self, BenchError> {
        Self::make(device, size, true, false)
    }

    fn make(device: &D, size: u64, staging: bool, keep_buffer: bool) -> Result<Self, BenchError> {
        let usage = if staging {
            BufferUsage::TRANSFER_SRC
        } else {
            BufferUsage::TRANSFER_DST
        };
        let (buffer, requirements) = device.create_buffer(size, usage)?;
        let (want, prefer) = if staging {
            (
                MemoryPropertyFlags::HOST_VISIBLE,
                MemoryPropertyFlags::HOST_COHERENT,
            )
        } else {
            (
                MemoryPropertyFlags::empty(),
                MemoryPropertyFlags::DEVICE_LOCAL,
            )
        };
        let chosen = memory_type(device, requirements.memory_type_bits, want, prefer);
        let buffer = match (chosen, keep_buffer) {
            (Some(_), true) => Some(buffer),
            _ => {
                // SAFETY: created above, never bound or used.
                unsafe { device.destroy_buffer(buffer) };
                None
            }
        };
        let Some((memory_type, flags)) = chosen else {
            return Err(no_memory_type());
        };
        let info = MemoryAllocateInfo {
            size: requirements.size,
            memory_type,
            dedicated_to: None,
            priority: 0.5,
            device_address: false,
        };
        // SAFETY: the type index comes from the device's own list.
        let memory = match unsafe { device.allocate_memory(&info) } {
            Ok(m) => m,
            Err(e) => {
                if let Some(b) = buffer {
                    // SAFETY: created above, never bound or used.
                    unsafe { device.destroy_buffer(b) };
                }
                return Err(e.into());
            }
        };
        let mut raw = Self {
            buffer: None,
            memory,
            mapped: None,
            coherent: flags.contains(MemoryPropertyFlags::HOST_COHERENT),
            size: requirements.size,
        };
        if let Some(b) = buffer {
            // SAFETY: both alive and from this device; offset 0 is aligned; the object has the
            // buffer's size and an allowed type.
            let bound = unsafe { device.bind_buffer_memory(b, memory, 0) };
            if let Err(e) = bound {
                // SAFETY: never bound, never used.
                unsafe { device.destroy_buffer(b) };
                raw.destroy(device);
                return Err(e.into());
            }
            raw.buffer = Some(b);
        }
        if staging {
            // SAFETY: the memory is host-visible and not mapped yet.
            match unsafe { device.map_memory(memory) } {
                Ok(p) => raw.mapped = Some(p),
                Err(e) => {
                    raw.destroy(device);
                    return Err(e.into());
                }
            }
        }
        Ok(raw)
    }

    /// The buffer (only a block has none, and blocks are never copied from directly).
    fn raw(&self) -> Result<D::Buffer, BenchError> {
        self.buffer
            .ok_or_else(|| "a staging block has no buffer".into())
    }

    /// Copies `bytes` to the start of the mapping and flushes them.
    fn write(&self, device: &D, bytes: &[u8]) -> Result<(), BenchError> {
        let Some(p) = self.mapped else {
            return Err(DeviceError::MapFailed.into());
        };
        if bytes.len() as u64 > self.size {
            return Err("staging buffer too small".into());
        }
        // SAFETY: the mapping covers the whole object (`self.size` bytes, checked above), stays
        // mapped until `destroy`, and the GPU does not read it before the submission that
        // follows this write.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr(), bytes.len()) };
        if self.coherent {
            return Ok(());
        }
        let range = MappedRange {
            memory: self.memory,
            offset: 0,
            size: self.size,
        };
        // SAFETY: the memory is mapped; the range is the whole object.
        unsafe { device.flush_ranges(&[range]) }.map_err(Into::into)
    }

    /// Destroys the buffer and frees its memory; the GPU must be done with it.
    fn destroy(self, device: &D) {
        // SAFETY: the caller waited for every submission using the buffer; each object is
        // released once (`self` is consumed).
        unsafe {
            if let Some(b) = self.buffer {
                device.destroy_buffer(b);
            }
            if self.mapped.is_some() {
                device.unmap_memory(self.memory);
            }
            device.free_memory(self.memory);
        }
    }
}

fn wait<D: Backend>(device: &D, value: u64) -> Result<(), BenchError> {
    match device.wait(value, 60_000_000_000)? {
        WaitStatus::Completed => Ok(()),
        WaitStatus::TimedOut => Err("the GPU did not finish within 60 s".into()),
    }
}

/// The naive path: per upload, a staging buffer and memory object, one submission, one wait.
fn naive_path<D: Backend>(
    device: &D,
    size: u64,
    order: &[u64],
    payload: &[u8],
    clock: Clock,
) -> Result<Duration, BenchError> {
    let destination = RawBuffer::new(device, SLOTS * size, false)?;
    let mut value = device.completed_value()?;
    let start = clock.now();
    let mut result = Ok(());
    for &slot in order {
        let step = (|| {
            let staging = RawBuffer::new(device, size, true)?;
            staging.write(device, payload)?;
            let region = [BufferCopy {
                src_offset: 0,
                dst_offset: slot * size,
                size,
            }];
            let command = CopyCommand {
                src: staging.raw()?,
                dst: destination.raw()?,
                regions: &region,
            };
            value += 1;
            // SAFETY: both buffers are alive and bound until the wait below; the region lies in
            // both; the staging bytes were written and flushed; values increase.
            let submitted = unsafe { device.submit_copies(&[command], value) };
            let waited = submitted
                .map_err(BenchError::from)
                .and_then(|()| wait(device, value));
            staging.destroy(device);
            waited
        })();
        if let Err(e) = step {
            result = Err(e);
            break;
        }
    }
    let elapsed = clock.now().saturating_sub(start);
    destination.destroy(device);
    check_device(device)?;
    result.map(|()| elapsed)
}

/// A persistently mapped host-visible memory object that staging buffers are bound into, front
/// to back (wgpu's allocator sub-allocates its staging buffers the same way).
struct StagingBlock<D: Backend> {
    memory: RawBuffer<D>,
    used: u64,
    /// Buffers bound into it and the value of the submission that reads them.
    buffers: Vec<D::Buffer>,
    value: u64,
}

/// The wgpu-style path: a fresh staging buffer per call, a frame's copies in one submission,
/// staging buffers destroyed once their submission completed.
fn wgpu_style_path<D: Backend>(
    device: &D,
    size: u64,
    order: &[u64],
    payload: &[u8],
    clock: Clock,
) -> Result<Duration, BenchError> {
    let destination = RawBuffer::new(device, SLOTS * size, false)?;
    // Two frames in flight, each with a block holding a frame's staging buffers (plus their
    // alignment).
    let block_size = SLOTS * (size + 256);
    let mut blocks = Vec::new();
    for _ in 0..2 {
        match RawBuffer::block(device, block_size) {
            Ok(memory) => blocks.push(StagingBlock {
                memory,
                used: 0,
                buffers: Vec::new(),
                value: 0,
            }),
            Err(e) => {
                for b in blocks {
                    let b: StagingBlock<D> = b;
                    b.memory.destroy(device);
                }
                destination.destroy(device);
                return Err(e);
            }
        }
    }
    let dst = destination.raw()?;
    let mut value = device.completed_value()?;
    let start = clock.now();
    let result = (|| -> Result<(), BenchError> {
        let mut regions: Vec<[BufferCopy; 1]> = Vec::with_capacity(SLOTS as usize);
        let mut sources = Vec::with_capacity(SLOTS as usize);
        for (frame, slots) in order.chunks(SLOTS as usize).enumerate() {
            let block = &mut blocks[frame % 2];
            // Reusing the block: its last frame's staging buffers go once the GPU is done.
            if block.value > 0 {
                wait(device, block.value)?;
            }
            for b in block.buffers.drain(..) {
                // SAFETY: the submission reading it completed (waited above).
                unsafe { device.destroy_buffer(b) };
            }
            block.used = 0;
            regions.clear();
            sources.clear();
            for &slot in slots {
                let (buffer, requirements) =
                    device.create_buffer(size, BufferUsage::TRANSFER_SRC)?;
                let offset = block.used.next_multiple_of(requirements.alignment.max(1));
                if offset + requirements.size > block.memory.size {
                    // SAFETY: never bound or used.
                    unsafe { device.destroy_buffer(buffer) };
                    return Err(no_memory_type());
                }
                // SAFETY: alive, unbound; the offset is aligned and the range inside the block.
                unsafe { device.bind_buffer_memory(buffer, block.memory.memory, offset) }?;
                block.buffers.push(buffer);
                block.used = offset + requirements.size;
                let Some(base) = block.memory.mapped else {
                    return Err(DeviceError::MapFailed.into());
                };
                // SAFETY: [offset, offset + size) lies inside the mapped block (checked above)
                // and no submission in flight reads it (the block's last one completed).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        payload.as_ptr(),
                        base.as_ptr().add(offset as usize),
                        payload.len(),
                    )
                };
                if !block.memory.coherent {
                    let atom = device.limits().non_coherent_atom_size.max(1);
                    let from = offset / atom * atom;
                    let to = (offset + size)
                        .next_multiple_of(atom)
                        .min(block.memory.size);
                    let range = MappedRange {
                        memory: block.memory.memory,
                        offset: from,
                        size: to - from,
                    };
                    // SAFETY: mapped; the range is atom-aligned or reaches the object's end.
                    unsafe { device.flush_ranges(&[range]) }?;
                }
                regions.push([BufferCopy {
                    src_offset: 0,
                    dst_offset: slot * size,
                    size,
                }]);
                sources.push(buffer);
            }
            let commands: Vec<_> = sources
                .iter()
                .zip(&regions)
                .map(|(&src, region)| CopyCommand {
                    src,
                    dst,
                    regions: region,
                })
                .collect();
            value += 1;
            // SAFETY: every buffer is alive and bound until its block is reused (after this value
            // completed) or the end (after the final wait); regions lie in both buffers and the
            // destinations of one command are one range; staging bytes were written and flushed;
            // values increase.
            unsafe { device.submit_copies(&commands, value) }?;
            block.value = value;
        }
        wait(device, value)
    })();
    let elapsed = clock.now().saturating_sub(start);
    if result.is_err() {
        // Whatever was submitted finishes (or the device is lost) before anything is freed.
        let _ = device.wait(value, 60_000_000_000);
    }
    for block in blocks {
        for b in block.buffers {
            // SAFETY: every submission completed (waited above).
            unsafe { device.destroy_buffer(b) };
        }
        block.memory.destroy(device);
    }
    destination.destroy(device);
    check_device(device)?;
    result.map(|()| elapsed)
}

/// The report in words.
pub fn text(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "memkit bench on {} (medians of {} batches per small upload size, of {} runs per path \
         and size)",
        r.device, r.small_repetitions, r.path_repetitions
    );
    let _ = writeln!(
        o,
        "\nCPU cost per small upload through the coordinator, memcpy excluded \
         ({BATCH} upload_to calls per batch, then one flush_transfers; {})",
        if r.small_cpu_time {
            "thread CPU time"
        } else {
            "wall time"
        }
    );
    let _ = writeln!(
        o,
        "  {:>6}  {:>6}  {:>12}  {:>10}  {:>18}  {:>18}",
        "path", "size", "upload_to ns", "memcpy ns", "overhead ns", "flush ns/upload"
    );
    for s in &r.small {
        let overhead = match s.overhead() {
            Some(ns) => format!("{ns:.1}"),
            None => "below memcpy noise".to_owned(),
        };
        let _ = writeln!(
            o,
            "  {:>6}  {:>6}  {:>12.1}  {:>10.1}  {:>18}  {:>18.1}",
            if s.direct { "direct" } else { "staged" },
            s.size,
            s.upload_ns,
            s.memcpy_ns,
            overhead,
            s.flush_ns
        );
    }
    let _ = writeln!(
        o,
        "\nThroughput, uploads scattered over {SLOTS} slots, a submission per {SLOTS} uploads, \
         until the GPU finished (MB/s of {}; speedup = coordinator / path)",
        if r.paths_cpu_time {
            "thread CPU time: the simulated GPU runs on this thread"
        } else {
            "wall time"
        }
    );
    let _ = writeln!(
        o,
        "  {:>6}  {:>8}  {:>12}  {:>12}  {:>8}  {:>12}  {:>8}",
        "size", "uploads", "coordinator", "naive", "speedup", "wgpu-style", "speedup"
    );
    for p in &r.paths {
        let _ = writeln!(
            o,
            "  {:>6}  {:>8}  {:>12.1}  {:>12.1}  {:>7.1}x  {:>12.1}  {:>7.1}x",
            p.size,
            p.uploads,
            p.megabytes_per_second(0),
            p.megabytes_per_second(1),
            p.speedup(1),
            p.megabytes_per_second(2),
            p.speedup(2)
        );
    }
    let _ = writeln!(
        o,
        "\nThe sub-allocator peers (TLSF, buddy, offset-allocator, gpu-allocator, ...): \
         cargo bench -p memkit-tests --bench allocators"
    );
    o
}

/// The report as JSON.
pub fn json(r: &BenchReport) -> String {
    let small: Vec<String> = r
        .small
        .iter()
        .map(|s| {
            Json::new()
                .str("path", if s.direct { "direct" } else { "staged" })
                .num("size", s.size)
                .float("upload_ns", s.upload_ns)
                .float("memcpy_ns", s.memcpy_ns)
                // `null` where the difference is negative (below the memcpy's noise); the
                // difference itself stays readable from the two medians.
                .float("overhead_ns", s.overhead().unwrap_or(f64::NAN))
                .bool("overhead_below_memcpy_noise", s.overhead().is_none())
                .float("flush_ns_per_upload", s.flush_ns)
                .finish()
        })
        .collect();
    let paths: Vec<String> = r
        .paths
        .iter()
        .map(|p| {
            Json::new()
                .num("size", p.size)
                .num("uploads", p.uploads)
                .float("coordinator_mb_s", p.megabytes_per_second(0))
                .float("naive_mb_s", p.megabytes_per_second(1))
                .float("wgpu_style_mb_s", p.megabytes_per_second(2))
                .float("speedup_vs_naive", p.speedup(1))
                .float("speedup_vs_wgpu_style", p.speedup(2))
                .finish()
        })
        .collect();
    Json::new()
        .str("command", "bench")
        .str("device", &r.device)
        .num("small_repetitions", r.small_repetitions as u64)
        .num("path_repetitions", r.path_repetitions as u64)
        .bool("small_uploads_cpu_time", r.small_cpu_time)
        .bool("paths_cpu_time", r.paths_cpu_time)
        .raw("small_uploads", &format!("[{}]", small.join(",")))
        .raw("paths", &format!("[{}]", paths.join(",")))
        .finish()
}
