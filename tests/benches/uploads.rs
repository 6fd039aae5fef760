//! Uploads through memkit-std's coordinator on a real Vulkan device, beside the raw copy rate and
//! the naive path, measured in one run. Validation off.
//!
//!     cargo bench -p memkit-tests --bench uploads -- [--quick] [--raw-only] [--only SECTIONS]
//!         [--validate] [--json PATH]
//!
//! Set `VK_DRIVER_FILES` to choose the driver (lavapipe here, NVIDIA's on a GPU machine). Every
//! figure is the median of several repetitions, timed from the first CPU write to the GPU's
//! completion (`flush_transfers().wait()`), producer writes included. Prints a table and, with
//! `--json`, writes every figure to PATH.
//!
//! 1. bulk: one 256 MiB upload, staged and direct, against one raw 256 MiB `vkCmdCopyBuffer`;
//! 2. 65536 scattered 4 KiB uploads into one 256 MiB buffer, 1 and 8 producers, staged and direct;
//! 3. 65536 scattered 256 B uploads, the same;
//! 4. the naive path: a submit and a wait per 4 KiB upload;
//! 5. (wgpu is not built here: see BENCHMARKS.md);
//! 6. producers writing 4 MiB uploads at once: staged end to end, direct into host-visible staging
//!    memory, direct into device-local host-visible memory;
//! 7. 10k buffers of 64 KiB created, bound and destroyed: coordinator pools, one
//!    `vkAllocateMemory` per buffer, gpu-allocator, VMA (vk-mem); and the driver's share:
//!    buffers created and destroyed with no memory (memkit's usages and sharing, the peers'),
//!    and one 256 MiB block allocated and freed.
//!
//! Scattered runs are checked byte for byte by a GPU copy into a host-visible readback buffer.
//!
//! `--raw-only` runs only the figures without memkit (the raw device). `--only` (implies
//! `--raw-only`) runs the 256 MiB bus-limit copy and the raw sections it names, comma-separated:
//! `copies` (other queues, host-cached staging), `naive`, `writes` (CPU write ceilings), `alloc`
//! (one memory object per buffer, gpu-allocator, VMA), `hybrid` (copy engine + direct CPU writes
//! at once), `compute` (a compute-shader copy, alone and beside a copy; see `split`), `queues`
//! (the copy split across several queues at once, and as many regions) and `import` (from host
//! memory imported with `VK_EXT_external_memory_host`: 4 KiB, transparent huge and hugetlbfs
//! pages); the last two run on a raw device with every queue (see `engines`). `lanes` runs a
//! 256 MiB upload through the coordinator split over 1, 2, 4, 8 and 16 queues (see `lanes`).
//! `images` uploads textures with mip chains: raw `vkCmdCopyBufferToImage`, the coordinator's
//! `create_image_with_data` and `upload_image`, and the naive path (see `images`). `coordinator`
//! runs the coordinator's figures (1-3 and 6) with the bus limit only. `readbacks` brings
//! device-local bytes back to the CPU: the raw device-to-host copy rate, the naive path, and the
//! coordinator's `read_back` (see `readbacks`; `--read-back-cache MIB` and `--read-back-submit
//! MIB` set its landing cache and batch size, `--wait-poll US` how long tickets poll before
//! blocking, and `--skip-naive` leaves the naive path out, which on the H200 slowed the process's
//! later device-to-host copies from 50 to 37 GB/s). `constants` writes per-frame constants, 4096
//! blocks of 256 B a frame with two frames in flight, that the application's own submissions read:
//! in the frame's transient memory (`transient` per block, `transient_slice` and `transient_with`
//! per frame, and from four jobs on a persistent job pool, each with a writer of its own,
//! `transient_writers` per block and `transient_writers_with` per job) and staged into a
//! device-local buffer (see `constants`).
//! `--ring-working-set off` (or a size in MiB) changes the ring's working set of the
//! coordinator's default settings (see `CoordinatorConfig::staging_ring_working_set`).
//! `--validate` turns the Khronos validation layer on for the raw device and fails the run on any
//! message (for correctness runs on lavapipe; figures taken with it mean nothing).

use std::sync::Barrier;
use std::time::Instant;

use ash::vk;
use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, MemoryAllocateInfo,
    MemoryDevice, MemoryProperties, MemoryPropertyFlags, WaitStatus,
};
use memkit_std::{Buffer, Coordinator, CoordinatorConfig, MemoryUsage};
use memkit_tests::bench_report::{self, Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::{
    HeadlessConfig, HeadlessDevice, HostBuffer, SharedHeadlessDevice, VulkanDevice,
};

#[path = "uploads/compute_copy.rs"]
mod compute_copy;
#[path = "uploads/constants.rs"]
mod constants;
#[path = "uploads/driver_buffers.rs"]
mod driver_buffers;
#[path = "uploads/engines.rs"]
mod engines;
#[path = "uploads/images.rs"]
mod images;
#[path = "uploads/lanes.rs"]
mod lanes;
#[path = "uploads/raw_device.rs"]
mod raw_device;
#[path = "uploads/readbacks.rs"]
mod readbacks;
#[path = "uploads/split.rs"]
mod split;

const MIB: u64 = 1 << 20;
const BIG: u64 = 256 * MIB;
const SCATTERED: usize = 65536;

// ---- the device the coordinator owns -------------------------------------------------------------

/// The device the coordinator owns, shared with the benchmark (which reads buffers back on the
/// main queue).
type Gpu = SharedHeadlessDevice;

// ---- helpers -------------------------------------------------------------------------------------

/// Which raw sections run: all, or those `--only` names.
struct Sections(Option<Vec<String>>);

impl Sections {
    const ALL: [&str; 13] = [
        "copies",
        "naive",
        "writes",
        "alloc",
        "hybrid",
        "compute",
        "queues",
        "import",
        "lanes",
        "images",
        "coordinator",
        "readbacks",
        "constants",
    ];

    /// The sections `--only` names (comma-separated), or all without it. Exits on a name it
    /// does not know, so a typo cannot run nothing silently.
    fn from_args(args: &[String]) -> Self {
        let Some(i) = args.iter().position(|a| a == "--only") else {
            return Self(None);
        };
        let names: Vec<String> = args
            .get(i + 1)
            .map_or("", String::as_str)
            .split(',')
            .map(str::to_string)
            .collect();
        if let Some(bad) = names.iter().find(|n| !Self::ALL.contains(&n.as_str())) {
            eprintln!(
                "--only: unknown section {bad:?}; known: {}",
                Self::ALL.join(",")
            );
            std::process::exit(2);
        }
        Self(Some(names))
    }

    fn has(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// `count` distinct slots of `slot` bytes in one `BIG`-byte buffer, in random order.
fn scattered_offsets(rng: &mut Rng, slot: u64, count: usize) -> Vec<u64> {
    bench_report::scattered_offsets(rng, BIG, slot, count)
}

// ---- raw Vulkan: bus limit, naive path, one memory object per buffer -----------------------------

struct Bound {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
}

/// The first type allowed by `bits` with `want` and, if possible, without `avoid`.
fn pick_type(
    props: &MemoryProperties,
    bits: u32,
    want: MemoryPropertyFlags,
    avoid: MemoryPropertyFlags,
) -> u32 {
    let types = props.types();
    let ok = |i: usize| bits & (1 << i) != 0 && types[i].properties.contains(want);
    (0..types.len())
        .find(|&i| ok(i) && !types[i].properties.intersects(avoid))
        .or_else(|| (0..types.len()).find(|&i| ok(i)))
        .expect("a memory type") as u32
}

fn bound(device: &VulkanDevice, size: u64, usage: BufferUsage, host: bool) -> Bound {
    let (want, avoid) = if host {
        (
            MemoryPropertyFlags::HOST_VISIBLE | MemoryPropertyFlags::HOST_COHERENT,
            MemoryPropertyFlags::DEVICE_LOCAL,
        )
    } else {
        (
            MemoryPropertyFlags::DEVICE_LOCAL,
            MemoryPropertyFlags::HOST_VISIBLE,
        )
    };
    bound_with(device, size, usage, want, avoid)
}

/// A buffer bound to memory of the first type with `want` and, if possible, without `avoid`.
fn bound_with(
    device: &VulkanDevice,
    size: u64,
    usage: BufferUsage,
    want: MemoryPropertyFlags,
    avoid: MemoryPropertyFlags,
) -> Bound {
    let (buffer, req) = device.create_buffer(size, usage).expect("buffer");
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type: pick_type(
            device.memory_properties(),
            req.memory_type_bits,
            want,
            avoid,
        ),
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: a type the requirements allow.
    let memory = unsafe { device.allocate_memory(&info) }.expect("memory");
    // SAFETY: offset 0 of an object of the required size; the buffer is unbound.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.expect("bind");
    Bound { buffer, memory }
}

/// The median seconds of `once` over `reps` runs, after one untimed run (warm-up).
fn timed(reps: usize, mut once: impl FnMut()) -> f64 {
    once();
    median(
        (0..reps)
            .map(|_| {
                let s = Instant::now();
                once();
                s.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Submits `commands` with the device's next value and waits.
fn copy_and_wait(device: &VulkanDevice, commands: &[CopyCommand<'_, vk::Buffer>]) {
    let value = device.last_submitted_value() + 1;
    // SAFETY: the buffers are alive and bound with transfer usages; regions lie inside them.
    unsafe { device.submit_copies(commands, value) }.expect("submit");
    assert_eq!(
        device.wait(value, u64::MAX).expect("wait"),
        WaitStatus::Completed
    );
}

fn raw_vulkan(
    report: &mut Report,
    h: &HeadlessDevice,
    reps: usize,
    quick: bool,
    sections: &Sections,
) {
    let device = h.device();
    let staging = bound(device, BIG, BufferUsage::TRANSFER_SRC, true);
    let target = bound(device, BIG, BufferUsage::TRANSFER_DST, false);
    // SAFETY: host-visible and not mapped elsewhere; unmapped at the end.
    let mapped = unsafe { device.map_memory(staging.memory) }.expect("map");
    // SAFETY: the mapping covers BIG bytes.
    let staging_bytes = unsafe { std::slice::from_raw_parts_mut(mapped.as_ptr(), BIG as usize) };
    Rng::new(1).fill(staging_bytes);

    // Bus limit: one 256 MiB copy from filled staging memory.
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: BIG,
    }];
    let cmd = [CopyCommand {
        src: staging.buffer,
        dst: target.buffer,
        regions: &whole,
    }];
    let t = timed(reps.max(5), || copy_and_wait(device, &cmd));
    report.add(
        "1. raw vkCmdCopyBuffer 256 MiB (bus limit, source pre-filled)",
        gbps(BIG, t),
        "GB/s",
        "",
    );
    if sections.has("copies") {
        raw_copy_variants(report, h, &staging, &target, reps);
    }
    if sections.has("naive") {
        naive(
            report,
            device,
            &staging,
            &target,
            staging_bytes,
            reps,
            quick,
        );
    }
    if sections.has("writes") {
        raw_writes(report, device, staging_bytes, reps);
    }

    // SAFETY: every copy completed (waited above).
    unsafe {
        device.unmap_memory(staging.memory);
        for b in [staging, target] {
            device.destroy_buffer(b.buffer);
            device.free_memory(b.memory);
        }
    }
    if sections.has("alloc") {
        raw_allocations(report, h, reps, quick);
    }
}

/// The naive path: per 4 KiB upload, write the staging buffer, submit one copy, wait.
fn naive(
    report: &mut Report,
    device: &VulkanDevice,
    staging: &Bound,
    target: &Bound,
    staging_bytes: &mut [u8],
    reps: usize,
    quick: bool,
) {
    let mut rng = Rng::new(2);
    let offsets = scattered_offsets(&mut rng, 4096, SCATTERED);
    let mut source = vec![0u8; SCATTERED * 4096];
    rng.fill(&mut source);
    let n = if quick { 300 } else { 3000 };
    let mut per_upload = Vec::new();
    for _ in 0..reps {
        let s = Instant::now();
        for i in 0..n {
            staging_bytes[..4096].copy_from_slice(&source[i * 4096..(i + 1) * 4096]);
            let region = [BufferCopy {
                src_offset: 0,
                dst_offset: offsets[i],
                size: 4096,
            }];
            copy_and_wait(
                device,
                &[CopyCommand {
                    src: staging.buffer,
                    dst: target.buffer,
                    regions: &region,
                }],
            );
        }
        per_upload.push(s.elapsed().as_secs_f64() / n as f64);
    }
    let t = median(per_upload);
    report.add(
        "4. naive: write + submit + wait per 4 KiB upload",
        t * 1e6,
        "us",
        &format!("{n} uploads timed, extrapolated to 65536"),
    );
    report.add(
        "4. naive 65536 x 4 KiB (extrapolated)",
        gbps(SCATTERED as u64 * 4096, t * SCATTERED as f64),
        "GB/s",
        &format!("{:.2} s for 65536", t * SCATTERED as f64),
    );
}

/// One memory object per buffer, then the allocator peers.
fn raw_allocations(report: &mut Report, h: &HeadlessDevice, reps: usize, quick: bool) {
    let device = h.device();
    let count = if quick { 1000 } else { 10_000 };
    let mut per_buffer = Vec::new();
    for _ in 0..reps {
        let s = Instant::now();
        let buffers: Vec<Bound> = (0..count)
            .map(|_| bound(device, 64 << 10, BufferUsage::TRANSFER_DST, false))
            .collect();
        for b in buffers {
            // SAFETY: never used by the GPU.
            unsafe {
                device.destroy_buffer(b.buffer);
                device.free_memory(b.memory);
            }
        }
        per_buffer.push(s.elapsed().as_secs_f64() / count as f64);
    }
    report.add(
        "7. vkAllocateMemory per buffer: create+bind+destroy 64 KiB",
        median(per_buffer) * 1e6,
        "us",
        &format!("{count} buffers"),
    );

    peers::gpu_allocator(report, h, reps, count);
    peers::vma(report, h, reps, count);
    driver_buffers::run(report, h, reps, count);
}

/// Whether the copy engines beat one 256 MiB copy some other way: on the main queue alone, split
/// between the transfer queue and the main queue at once, and from host-cached staging memory.
fn raw_copy_variants(
    report: &mut Report,
    h: &HeadlessDevice,
    staging: &Bound,
    target: &Bound,
    reps: usize,
) {
    let device = h.device();
    let main = MainQueueCopy::new(h);
    let half = BIG / 2;
    let whole = [vk::BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: BIG,
    }];
    let t = timed(reps.max(5), || {
        // SAFETY: both buffers are alive, bound, concurrent with the main family, with the
        // transfer usages; every earlier copy was waited.
        unsafe { main.submit(h, staging.buffer, target.buffer, &whole) };
        main.wait(h);
    });
    report.add(
        "1. raw copy 256 MiB on the main queue",
        gbps(BIG, t),
        "GB/s",
        "",
    );
    let first = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: half,
    }];
    let second = [vk::BufferCopy {
        src_offset: half,
        dst_offset: half,
        size: half,
    }];
    let t = timed(reps.max(5), || {
        // SAFETY: as above; the halves are disjoint, so the queues never touch the same bytes.
        unsafe { main.submit(h, staging.buffer, target.buffer, &second) };
        copy_and_wait(
            device,
            &[CopyCommand {
                src: staging.buffer,
                dst: target.buffer,
                regions: &first,
            }],
        );
        main.wait(h);
    });
    report.add(
        "1. raw copy 256 MiB split: transfer + main queue at once",
        gbps(BIG, t),
        "GB/s",
        if device.transfer_queue().family == h.main_queue().family {
            "one queue family: both halves on one queue"
        } else {
            ""
        },
    );
    main.destroy(h);

    let cached_host = MemoryPropertyFlags::HOST_VISIBLE
        | MemoryPropertyFlags::HOST_COHERENT
        | MemoryPropertyFlags::HOST_CACHED;
    if !device
        .memory_properties()
        .types()
        .iter()
        .any(|t| t.properties.contains(cached_host))
    {
        return;
    }
    let cached = bound_with(
        device,
        BIG,
        BufferUsage::TRANSFER_SRC,
        cached_host,
        MemoryPropertyFlags::DEVICE_LOCAL,
    );
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: BIG,
    }];
    let cmd = [CopyCommand {
        src: cached.buffer,
        dst: target.buffer,
        regions: &whole,
    }];
    let t = timed(reps.max(5), || copy_and_wait(device, &cmd));
    report.add(
        "1. raw vkCmdCopyBuffer 256 MiB from host-cached memory",
        gbps(BIG, t),
        "GB/s",
        "",
    );
    // SAFETY: every copy from it completed.
    unsafe {
        device.destroy_buffer(cached.buffer);
        device.free_memory(cached.memory);
    }
}

/// Mapped memory a benchmark thread writes through a raw pointer.
#[derive(Clone, Copy)]
struct Target(*mut u8);
// SAFETY: the threads write disjoint ranges of a mapping that outlives them.
unsafe impl Send for Target {}
// SAFETY: as above.
unsafe impl Sync for Target {}

/// `threads` threads copy `source[i * size..]` to `target + offsets[i]` (contiguous shares), with
/// `atomics` relaxed read-modify-writes of one shared cache line per copy (what a shared
/// statistics counter costs). No GPU work: the CPU's write rate into mapped memory. Returns
/// seconds.
fn write_mapped(
    target: Target,
    source: &[u8],
    offsets: &[u64],
    size: usize,
    threads: usize,
    atomics: usize,
) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let shared = [AtomicU64::new(0), AtomicU64::new(0)];
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let n = offsets.len();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, shared) = (&barrier, &shared);
                s.spawn(move || {
                    let target = target;
                    barrier.wait();
                    for i in t * n / threads..(t + 1) * n / threads {
                        let src = &source[(i * size) % source.len()..][..size];
                        // SAFETY: the offsets are distinct slots of `size` bytes inside the
                        // mapping; no other thread writes this slot.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                src.as_ptr(),
                                target.0.add(offsets[i] as usize),
                                size,
                            )
                        };
                        for a in &shared[..atomics] {
                            a.fetch_add(size as u64, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("writer");
        }
        start.elapsed().as_secs_f64()
    })
}

/// One raw write measurement: a warm-up, then the median of `reps`.
struct RawCase<'a> {
    target: Target,
    source: &'a [u8],
    offsets: &'a [u64],
    size: usize,
    threads: usize,
    atomics: usize,
}

fn raw_case(report: &mut Report, reps: usize, name: String, c: RawCase<'_>) {
    let once = || write_mapped(c.target, c.source, c.offsets, c.size, c.threads, c.atomics);
    once();
    let t = median((0..reps).map(|_| once()).collect());
    report.add(
        &name,
        gbps((c.offsets.len() * c.size) as u64, t),
        "GB/s",
        "no memkit, no GPU work",
    );
}

/// The CPU's write ceilings into staging memory and device-local host-visible memory, without
/// memkit: what the coordinator's producer figures are measured against.
fn raw_writes(report: &mut Report, device: &VulkanDevice, staging: &mut [u8], reps: usize) {
    let (buffer, req) = device
        .create_buffer(BIG, BufferUsage::TRANSFER_DST)
        .expect("buffer");
    let props = device.memory_properties();
    let want = MemoryPropertyFlags::DEVICE_LOCAL | MemoryPropertyFlags::HOST_VISIBLE;
    let Some(index) = (0..props.types().len()).find(|&i| {
        req.memory_type_bits & (1 << i) != 0 && props.types()[i].properties.contains(want)
    }) else {
        println!("no DEVICE_LOCAL+HOST_VISIBLE memory: no raw direct-write ceilings");
        // SAFETY: never bound or used.
        unsafe { device.destroy_buffer(buffer) };
        return;
    };
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type: index as u32,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: a type the requirements allow.
    let memory = unsafe { device.allocate_memory(&info) }.expect("memory");
    // SAFETY: host-visible, mapped once here, unmapped below.
    let rebar = unsafe { device.map_memory(memory) }.expect("map");
    let targets = [
        ("staging memory", Target(staging.as_mut_ptr())),
        ("device-local host-visible", Target(rebar.as_ptr())),
    ];

    let mut source = vec![0u8; BIG as usize];
    Rng::new(3).fill(&mut source);
    let chunk = 4 * MIB as usize;
    let sequential: Vec<u64> = (0..BIG as usize / chunk)
        .map(|i| (i * chunk) as u64)
        .collect();
    for (label, target) in targets {
        for threads in [1, 8, 16] {
            let case = RawCase {
                target,
                source: &source,
                offsets: &sequential,
                size: chunk,
                threads,
                atomics: 0,
            };
            let name = format!("0. raw 64 x 4 MiB into {label}, {threads} thread(s)");
            raw_case(report, reps, name, case);
        }
        // The same 4 MiB of source again and again: cache-hot, a memset-like peak.
        let case = RawCase {
            target,
            source: &source[..chunk],
            offsets: &sequential,
            size: chunk,
            threads: 1,
            atomics: 0,
        };
        let name = format!("0. raw 64 x 4 MiB into {label}, cache-hot source, 1 thread");
        raw_case(report, reps, name, case);
    }
    for size in [4096usize, 256] {
        let offsets = scattered_offsets(&mut Rng::new(size as u64), size as u64, SCATTERED);
        for threads in [1, 8] {
            for atomics in [0, 2] {
                let extra = if atomics == 0 {
                    String::new()
                } else {
                    format!(" + {atomics} shared atomic adds each")
                };
                let case = RawCase {
                    target: targets[1].1,
                    source: &source,
                    offsets: &offsets,
                    size,
                    threads,
                    atomics,
                };
                let name = format!(
                    "0. raw 65536 x {size} B scattered into device-local host-visible, {threads} thread(s){extra}"
                );
                raw_case(report, reps, name, case);
            }
        }
    }
    // SAFETY: the writers joined; the buffer was never bound or used by the GPU.
    unsafe {
        device.unmap_memory(memory);
        device.destroy_buffer(buffer);
        device.free_memory(memory);
    }
}

mod peers {
    use super::*;

    fn buffer_info() -> vk::BufferCreateInfo<'static> {
        vk::BufferCreateInfo::default()
            .size(64 << 10)
            .usage(vk::BufferUsageFlags::TRANSFER_DST | vk::BufferUsageFlags::STORAGE_BUFFER)
    }

    pub fn gpu_allocator(report: &mut Report, h: &HeadlessDevice, reps: usize, count: usize) {
        use gpu_allocator::MemoryLocation;
        use gpu_allocator::vulkan::{
            AllocationCreateDesc, AllocationScheme, Allocator, AllocatorCreateDesc,
        };
        let device = h.ash_device();
        let mut allocator = match Allocator::new(&AllocatorCreateDesc {
            instance: h.instance().clone(),
            device: device.clone(),
            physical_device: h.device().physical_device(),
            debug_settings: gpu_allocator::AllocatorDebugSettings {
                log_leaks_on_shutdown: false,
                ..Default::default()
            },
            buffer_device_address: false,
            allocation_sizes: gpu_allocator::AllocationSizes::default(),
        }) {
            Ok(a) => a,
            Err(e) => {
                report.failures.push(format!("gpu-allocator: {e}"));
                return;
            }
        };
        let mut per_buffer = Vec::new();
        for _ in 0..reps {
            let s = Instant::now();
            let mut live = Vec::with_capacity(count);
            for _ in 0..count {
                // SAFETY: a valid create info on a live device.
                let buffer = unsafe { device.create_buffer(&buffer_info(), None) }.expect("buffer");
                // SAFETY: the buffer is alive.
                let requirements = unsafe { device.get_buffer_memory_requirements(buffer) };
                let allocation = allocator
                    .allocate(&AllocationCreateDesc {
                        name: "bench",
                        requirements,
                        location: MemoryLocation::GpuOnly,
                        linear: true,
                        allocation_scheme: AllocationScheme::GpuAllocatorManaged,
                    })
                    .expect("gpu-allocator allocation");
                // SAFETY: the allocation satisfies the buffer's requirements.
                unsafe {
                    device
                        .bind_buffer_memory(buffer, allocation.memory(), allocation.offset())
                        .expect("bind")
                };
                live.push((buffer, allocation));
            }
            for (buffer, allocation) in live {
                // SAFETY: never used by the GPU.
                unsafe { device.destroy_buffer(buffer, None) };
                allocator.free(allocation).expect("free");
            }
            per_buffer.push(s.elapsed().as_secs_f64() / count as f64);
        }
        report.add(
            "7. gpu-allocator 0.27: create+bind+destroy 64 KiB",
            median(per_buffer) * 1e6,
            "us",
            &format!("{count} buffers"),
        );
    }

    pub fn vma(report: &mut Report, h: &HeadlessDevice, reps: usize, count: usize) {
        use vk_mem::Alloc as _;
        let mut info = vk_mem::AllocatorCreateInfo::new(
            h.instance(),
            h.ash_device(),
            h.device().physical_device(),
        );
        info.vulkan_api_version = vk::API_VERSION_1_1;
        // SAFETY: the instance, device and physical device are alive and outlive the allocator
        // (dropped at the end of this function).
        let allocator = match unsafe { vk_mem::Allocator::new(info) } {
            Ok(a) => a,
            Err(e) => {
                report.failures.push(format!("vk-mem: {e}"));
                return;
            }
        };
        let create = vk_mem::AllocationCreateInfo {
            usage: vk_mem::MemoryUsage::AutoPreferDevice,
            ..Default::default()
        };
        let mut per_buffer = Vec::new();
        for _ in 0..reps {
            let s = Instant::now();
            let mut live = Vec::with_capacity(count);
            for _ in 0..count {
                // SAFETY: valid create infos on a live allocator.
                let pair = unsafe { allocator.create_buffer(&buffer_info(), &create) }
                    .expect("vma buffer");
                live.push(pair);
            }
            for (buffer, mut allocation) in live {
                // SAFETY: made by this allocator, never used by the GPU.
                unsafe { allocator.destroy_buffer(buffer, &mut allocation) };
            }
            per_buffer.push(s.elapsed().as_secs_f64() / count as f64);
        }
        report.add(
            "7. VMA (vk-mem 0.5): create+bind+destroy 64 KiB",
            median(per_buffer) * 1e6,
            "us",
            &format!("{count} buffers"),
        );
    }
}

// ---- reading a buffer back on the main queue -----------------------------------------------------

/// A command buffer and a fence on the headless device's main queue, for copies outside memkit's
/// timeline: read-backs, and the second queue of the split bus-limit copy.
struct MainQueueCopy {
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
}

/// A command pool on the headless device's main queue family, whose buffers are each reset and
/// re-recorded, and `count` command buffers from it. The caller destroys the pool.
fn main_queue_commands(
    h: &HeadlessDevice,
    count: u32,
) -> (vk::CommandPool, Vec<vk::CommandBuffer>) {
    let device = h.ash_device();
    // SAFETY: valid create infos on a live device; the buffers come from the pool just made.
    unsafe {
        let pool = device
            .create_command_pool(
                &vk::CommandPoolCreateInfo::default()
                    .queue_family_index(h.main_queue().family)
                    .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                None,
            )
            .expect("command pool");
        let cmds = device
            .allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(pool)
                    .command_buffer_count(count),
            )
            .expect("command buffers");
        (pool, cmds)
    }
}

impl MainQueueCopy {
    fn new(h: &HeadlessDevice) -> Self {
        let (pool, cmds) = main_queue_commands(h, 1);
        // SAFETY: a valid create info on a live device; destroyed in `destroy`.
        let fence = unsafe {
            h.ash_device()
                .create_fence(&vk::FenceCreateInfo::default(), None)
        }
        .expect("fence");
        Self {
            pool,
            cmd: cmds[0],
            fence,
        }
    }

    /// Records and submits one copy of `regions` from `src` to `dst`, after every earlier host
    /// and transfer write, made visible to the host when it completes; `wait` before the next.
    ///
    /// # Safety
    /// The previous submission was waited; both buffers are alive, bound, usable on the main
    /// queue's family (concurrent or owned), have the transfer usages, and hold the regions.
    unsafe fn submit(
        &self,
        h: &HeadlessDevice,
        src: vk::Buffer,
        dst: vk::Buffer,
        regions: &[vk::BufferCopy],
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            self.record_and_submit(h, |device, cmd| {
                let before = [vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE | vk::AccessFlags::HOST_WRITE)
                    .dst_access_mask(
                        vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE,
                    )];
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::HOST,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    &before,
                    &[],
                    &[],
                );
                device.cmd_copy_buffer(cmd, src, dst, regions);
                let after = [vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                    .dst_access_mask(vk::AccessFlags::HOST_READ)];
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::PipelineStageFlags::HOST,
                    vk::DependencyFlags::empty(),
                    &after,
                    &[],
                    &[],
                );
            })
        }
    }

    /// Zeroes all of `dst` after every earlier host, transfer and compute-shader access, visible
    /// to later transfers, compute shaders and the host; `wait` before the next. Clears a
    /// destination so a check after a variant's runs sees only what that variant wrote.
    ///
    /// # Safety
    /// The previous submission was waited; `dst` is alive, bound, usable on the main queue's
    /// family and has `TRANSFER_DST` usage; the main family supports compute.
    unsafe fn clear(&self, h: &HeadlessDevice, dst: vk::Buffer) {
        let any_write = vk::AccessFlags::TRANSFER_WRITE
            | vk::AccessFlags::HOST_WRITE
            | vk::AccessFlags::SHADER_WRITE;
        let stages = vk::PipelineStageFlags::TRANSFER
            | vk::PipelineStageFlags::HOST
            | vk::PipelineStageFlags::COMPUTE_SHADER;
        // SAFETY: the caller's contract.
        unsafe {
            self.record_and_submit(h, |device, cmd| {
                let before = [vk::MemoryBarrier::default()
                    .src_access_mask(any_write)
                    .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)];
                device.cmd_pipeline_barrier(
                    cmd,
                    stages,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    &before,
                    &[],
                    &[],
                );
                device.cmd_fill_buffer(cmd, dst, 0, vk::WHOLE_SIZE, 0);
                let after = [vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                    .dst_access_mask(
                        any_write
                            | vk::AccessFlags::TRANSFER_READ
                            | vk::AccessFlags::HOST_READ
                            | vk::AccessFlags::SHADER_READ,
                    )];
                device.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::TRANSFER,
                    stages,
                    vk::DependencyFlags::empty(),
                    &after,
                    &[],
                    &[],
                );
            })
        }
    }

    /// Records the command buffer with `record` and submits it with the fence.
    ///
    /// # Safety
    /// The previous submission was waited; what `record` records is valid on the main queue and
    /// every resource it names stays alive until `wait`.
    unsafe fn record_and_submit(
        &self,
        h: &HeadlessDevice,
        record: impl FnOnce(&ash::Device, vk::CommandBuffer),
    ) {
        let device = h.ash_device();
        // SAFETY: the caller's contract; the command buffer is idle (its fence was waited).
        unsafe {
            device
                .begin_command_buffer(
                    self.cmd,
                    &vk::CommandBufferBeginInfo::default()
                        .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .expect("begin");
            record(device, self.cmd);
            device.end_command_buffer(self.cmd).expect("end");
            self.submit_recorded(h);
        }
    }

    /// Submits the command buffer as recorded, with the fence.
    ///
    /// # Safety
    /// The command buffer is recorded, the previous submission was waited, and every resource
    /// it names stays alive until `wait`.
    unsafe fn submit_recorded(&self, h: &HeadlessDevice) {
        let device = h.ash_device();
        let cmds = [self.cmd];
        let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
        // SAFETY: the caller's contract.
        unsafe { h.with_main_queue(|queue| device.queue_submit(queue, &submit, self.fence)) }
            .expect("submit");
    }

    fn wait(&self, h: &HeadlessDevice) {
        let device = h.ash_device();
        // SAFETY: the fence belongs to this device; a submission signals it.
        unsafe {
            device
                .wait_for_fences(&[self.fence], true, u64::MAX)
                .expect("wait");
            device.reset_fences(&[self.fence]).expect("reset");
        }
    }

    fn destroy(self, h: &HeadlessDevice) {
        let device = h.ash_device();
        // SAFETY: the last submission was waited; nothing else uses these.
        unsafe {
            device.destroy_fence(self.fence, None);
            device.destroy_command_pool(self.pool, None);
        }
    }
}

/// A host-visible buffer that a main-queue copy fills from a coordinator buffer, so checks see
/// what the GPU sees.
struct Readback {
    host: HostBuffer,
    copy: MainQueueCopy,
}

impl Readback {
    fn new(h: &HeadlessDevice) -> Self {
        Self {
            host: HostBuffer::new(h.device(), BIG, BufferUsage::TRANSFER_DST).expect("readback"),
            copy: MainQueueCopy::new(h),
        }
    }

    /// Copies all of `src` (BIG bytes, every copy into it completed) and returns the bytes.
    fn read(&self, h: &HeadlessDevice, src: vk::Buffer) -> Vec<u8> {
        let whole = [vk::BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size: BIG,
        }];
        // SAFETY: the last read was waited; `src` is alive, holds BIG bytes, has TRANSFER_SRC
        // usage, is concurrent with the main family, and its writes completed.
        unsafe { self.copy.submit(h, src, self.host.buffer(), &whole) };
        self.copy.wait(h);
        // SAFETY: the copy into it completed and was made visible to the host.
        unsafe { self.host.read(h.device()) }.expect("read back")
    }

    fn destroy(self, h: &HeadlessDevice) {
        self.copy.destroy(h);
        // SAFETY: the last copy was waited; nothing else uses it.
        unsafe { self.host.destroy(h.device()) };
    }
}

// ---- the coordinator -----------------------------------------------------------------------------

/// `threads` producers split `uploads` (destination offset, source range) into contiguous shares
/// and upload them after a common start; then one flush and a wait. Returns seconds from the
/// start to the GPU's completion.
fn timed_uploads(
    coordinator: &Coordinator<Gpu>,
    buffer: &Buffer<Gpu>,
    source: &[u8],
    offsets: &[u64],
    size: usize,
    threads: usize,
) -> f64 {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let n = offsets.len();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for i in t * n / threads..(t + 1) * n / threads {
                        coordinator
                            .upload_to(buffer, offsets[i], &source[i * size..(i + 1) * size])
                            .expect("upload");
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("producer");
        }
        coordinator
            .flush_transfers()
            .expect("flush")
            .wait()
            .expect("wait");
        start.elapsed().as_secs_f64()
    })
}

fn memory_kind(coordinator: &Coordinator<Gpu>, buffer: &Buffer<Gpu>) -> String {
    let p =
        coordinator.device().memory_properties().types()[buffer.memory_type() as usize].properties;
    let mut s = String::new();
    for (flag, name) in [
        (MemoryPropertyFlags::DEVICE_LOCAL, "DEVICE_LOCAL"),
        (MemoryPropertyFlags::HOST_VISIBLE, "HOST_VISIBLE"),
        (MemoryPropertyFlags::HOST_COHERENT, "COHERENT"),
        (MemoryPropertyFlags::HOST_CACHED, "CACHED"),
    ] {
        if p.contains(flag) {
            if !s.is_empty() {
                s.push('+');
            }
            s.push_str(name);
        }
    }
    format!(
        "type {} {}{}",
        buffer.memory_type(),
        s,
        if buffer.is_direct_write() {
            ", direct writes"
        } else {
            ", staged"
        }
    )
}

/// The two destinations: device-only (uploads staged and copied) and host-writable device memory
/// (direct CPU writes; resizable BAR on a discrete GPU).
const PATHS: [(&str, MemoryUsage); 2] = [
    ("staged", MemoryUsage::FAST_DEVICE_ACCESS),
    (
        "direct",
        MemoryUsage::UPLOAD.union(MemoryUsage::FAST_DEVICE_ACCESS),
    ),
];

/// The coordinator's default settings, but for `--ring-working-set off` (the ring goes round in
/// full) or `--ring-working-set MIB`: to compare the ring's working set in one build.
pub(crate) fn default_config() -> CoordinatorConfig {
    let args: Vec<String> = std::env::args().collect();
    let working_set = args
        .iter()
        .position(|a| a == "--ring-working-set")
        .and_then(|i| args.get(i + 1))
        .map(|v| match v.as_str() {
            "off" => Some(u64::MAX),
            mib => Some(mib.parse::<u64>().expect("--ring-working-set: off or MiB") * MIB),
        });
    CoordinatorConfig {
        staging_ring_working_set: working_set.flatten(),
        ..CoordinatorConfig::default()
    }
}

fn coordinator_runs(report: &mut Report, gpu: &Gpu, reps: usize, quick: bool) {
    let config = default_config();
    let coordinator = Coordinator::new(gpu.clone(), config).expect("coordinator");
    let readback = Readback::new(gpu);
    println!(
        "coordinator: default config (ring {} MiB, chunks of {} MiB, {} regions per command)",
        config.staging_ring_size / MIB,
        config.max_ring_upload / MIB,
        config.max_regions_per_command
    );

    // 1. bulk.
    let mut bulk = vec![0u8; BIG as usize];
    Rng::new(10).fill(&mut bulk);
    for (path, usage) in PATHS {
        let buffer = coordinator.create_buffer(BIG, usage).expect("buffer");
        let kind = memory_kind(&coordinator, &buffer);
        for threads in [1, 8] {
            let share = BIG as usize / threads;
            let offsets: Vec<u64> = (0..threads).map(|t| (t * share) as u64).collect();
            timed_uploads(&coordinator, &buffer, &bulk, &offsets, share, threads);
            let t = median(
                (0..reps)
                    .map(|_| timed_uploads(&coordinator, &buffer, &bulk, &offsets, share, threads))
                    .collect(),
            );
            report.add(
                &format!("1. bulk 256 MiB, {path}, {threads} producer(s)"),
                gbps(BIG, t),
                "GB/s",
                &kind,
            );
        }
    }

    // 2. and 3. scattered uploads, checked by reading the buffer back.
    let mut seed = 100;
    for (label, size) in [("2.", 4096usize), ("3.", 256)] {
        let offsets = scattered_offsets(&mut Rng::new(size as u64), size as u64, SCATTERED);
        let mut source = vec![0u8; SCATTERED * size];
        for (path, usage) in PATHS {
            let buffer = coordinator.create_buffer(BIG, usage).expect("buffer");
            let kind = memory_kind(&coordinator, &buffer);
            for threads in [1, 8] {
                // Fresh bytes, so no earlier run's data can pass the check.
                seed += 1;
                Rng::new(seed).fill(&mut source);
                let first = timed_uploads(&coordinator, &buffer, &source, &offsets, size, threads);
                let seen = readback.read(gpu, buffer.raw());
                let wrong = offsets
                    .iter()
                    .enumerate()
                    .filter(|&(i, &o)| {
                        seen[o as usize..o as usize + size] != source[i * size..(i + 1) * size]
                    })
                    .count();
                let name =
                    format!("{label} 65536 x {size} B scattered, {path}, {threads} producer(s)");
                if wrong > 0 {
                    report.failures.push(format!(
                        "{name}: {wrong} of 65536 uploads wrong on readback"
                    ));
                }
                let before = coordinator.stats();
                let mut times = vec![first];
                times.extend((1..reps).map(|_| {
                    timed_uploads(&coordinator, &buffer, &source, &offsets, size, threads)
                }));
                let t = median(times);
                let after = coordinator.stats();
                let runs = (reps - 1).max(1) as u64;
                let per_run = format!(
                    "per run {} submissions, {} copy commands, {} stalls",
                    (after.submissions - before.submissions) / runs,
                    (after.copy_commands - before.copy_commands) / runs,
                    (after.stalls - before.stalls) / runs
                );
                report.add(
                    &name,
                    gbps((SCATTERED * size) as u64, t),
                    "GB/s",
                    &format!(
                        "{:.1} ms; {kind}; readback {}; {per_run}",
                        t * 1e3,
                        if wrong == 0 { "ok" } else { "WRONG" }
                    ),
                );
            }
        }
    }
    let stats = coordinator.stats();
    println!(
        "coordinator so far: {} submissions, {} copy commands, regions {} -> {} after merge, {} stalls",
        stats.submissions,
        stats.copy_commands,
        stats.regions_before_merge,
        stats.regions_after_merge,
        stats.stalls
    );

    // 6. producers writing 4 MiB uploads at once.
    let chunk = 4 * MIB as usize;
    let chunks = BIG as usize / chunk;
    let mut source = vec![0u8; BIG as usize];
    Rng::new(7).fill(&mut source);
    let offsets: Vec<u64> = (0..chunks).map(|i| (i * chunk) as u64).collect();
    let destinations = [
        ("staged end to end", MemoryUsage::FAST_DEVICE_ACCESS),
        ("direct into staging memory", MemoryUsage::UPLOAD),
        (
            "direct into device memory",
            MemoryUsage::UPLOAD.union(MemoryUsage::FAST_DEVICE_ACCESS),
        ),
    ];
    for (path, usage) in destinations {
        let buffer = coordinator.create_buffer(BIG, usage).expect("buffer");
        let kind = memory_kind(&coordinator, &buffer);
        for threads in [1, 2, 4, 8, 16] {
            timed_uploads(&coordinator, &buffer, &source, &offsets, chunk, threads);
            let before = coordinator.stats();
            let t = median(
                (0..reps)
                    .map(|_| {
                        timed_uploads(&coordinator, &buffer, &source, &offsets, chunk, threads)
                    })
                    .collect(),
            );
            let after = coordinator.stats();
            let runs = reps as u64;
            report.add(
                &format!("6. 64 x 4 MiB, {path}, {threads} producer(s)"),
                gbps(BIG, t),
                "GB/s",
                &format!(
                    "{kind}; per run {} submissions, {} stalls",
                    (after.submissions - before.submissions) / runs,
                    (after.stalls - before.stalls) / runs
                ),
            );
        }
    }

    // 7. sub-allocated buffers.
    let count = if quick { 1000 } else { 10_000 };
    let mut create = Vec::new();
    let mut cycle = Vec::new();
    let make_buffers = |c: &Coordinator<Gpu>| -> Vec<Buffer<Gpu>> {
        (0..count)
            .map(|_| {
                c.create_buffer(64 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
                    .expect("buffer")
            })
            .collect()
    };
    for _ in 0..reps + 1 {
        let s = Instant::now();
        let buffers = make_buffers(&coordinator);
        let made = s.elapsed().as_secs_f64();
        drop(buffers);
        coordinator.maintain().expect("maintain");
        create.push(made / count as f64);
        cycle.push(s.elapsed().as_secs_f64() / count as f64);
    }
    let first = cycle.remove(0);
    create.remove(0);
    // One more round, untimed, counting the pools' blocks at its peak and after `maintain`: the
    // difference is made again (and freed again) every round.
    let blocks = |c: &Coordinator<Gpu>| c.stats().heaps.iter().map(|h| h.blocks).sum::<u32>();
    let buffers = make_buffers(&coordinator);
    let peak_blocks = blocks(&coordinator);
    drop(buffers);
    coordinator.maintain().expect("maintain");
    let kept_blocks = blocks(&coordinator);
    report.add(
        "7. coordinator pools: memory blocks made and freed per round",
        f64::from(peak_blocks.saturating_sub(kept_blocks)),
        "blocks",
        &format!("{peak_blocks} at the round's peak, {kept_blocks} kept after maintain"),
    );
    report.add(
        "7. coordinator pools: create+bind+destroy 64 KiB",
        median(cycle) * 1e6,
        "us",
        &format!(
            "{count} buffers; create alone {:.2} us; first round (blocks allocated) {:.2} us",
            median(create) * 1e6,
            first * 1e6
        ),
    );
    let stats = coordinator.stats();
    if stats.buffers_created != stats.buffers_destroyed {
        report.failures.push(format!(
            "coordinator: {} buffers created, {} destroyed after every handle was dropped",
            stats.buffers_created, stats.buffers_destroyed
        ));
    }
    drop(coordinator);
    readback.destroy(gpu);
}

/// Staged producers with a ring that holds the whole 256 MiB: separates the ring-full hand-off
/// (space given back one submission at a time) from the rest of the staged path.
fn staged_big_ring(report: &mut Report, reps: usize) {
    let h = HeadlessDevice::new(HeadlessConfig::default()).expect("a Vulkan device");
    let gpu = Gpu::new(h);
    let config = CoordinatorConfig {
        staging_ring_size: 2 * BIG,
        ..CoordinatorConfig::default()
    };
    let coordinator = Coordinator::new(gpu.clone(), config).expect("coordinator");
    let chunk = 4 * MIB as usize;
    let mut source = vec![0u8; BIG as usize];
    Rng::new(8).fill(&mut source);
    let offsets: Vec<u64> = (0..BIG as usize / chunk)
        .map(|i| (i * chunk) as u64)
        .collect();
    let buffer = coordinator
        .create_buffer(BIG, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    for threads in [1, 8, 16] {
        timed_uploads(&coordinator, &buffer, &source, &offsets, chunk, threads);
        let before = coordinator.stats();
        let t = median(
            (0..reps)
                .map(|_| timed_uploads(&coordinator, &buffer, &source, &offsets, chunk, threads))
                .collect(),
        );
        let after = coordinator.stats();
        report.add(
            &format!("6. 64 x 4 MiB, staged end to end, 512 MiB ring, {threads} producer(s)"),
            gbps(BIG, t),
            "GB/s",
            &format!(
                "per run {} submissions, {} stalls",
                (after.submissions - before.submissions) / reps as u64,
                (after.stalls - before.stalls) / reps as u64
            ),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Only the figures without memkit: the bus, the naive path, raw writes, buffer creation.
    let sections = Sections::from_args(&args);
    let raw_only = sections.0.is_some() || args.iter().any(|a| a == "--raw-only");
    let validate = args.iter().any(|a| a == "--validate");
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned());
    let reps = if quick { 3 } else { 7 };
    let mut report = Report::default();

    // Raw measurements on a device of their own: they submit outside the coordinator's timeline.
    {
        let h = HeadlessDevice::new(HeadlessConfig {
            concurrent_with_main_family: true,
            validation: validate,
            ..HeadlessConfig::default()
        })
        .expect("a Vulkan device");
        let probe = h.device().probe().expect("probe");
        report.device = format!("{} ({})", probe.device_name, probe.device_type);
        println!("device: {}", report.device);
        println!("{:<64} {:>12} {:<8} note", "figure", "value", "unit");
        raw_vulkan(&mut report, &h, reps, quick, &sections);
        if sections.has("hybrid") || sections.has("compute") {
            split::run(&mut report, &h, reps, &sections);
        }
        if sections.has("queues") || sections.has("import") {
            engines::run(&mut report, &h, reps, &sections);
        }
        let messages = h.finish();
        if validate {
            println!("validation: {} message(s)", messages.len());
        }
        report
            .failures
            .extend(messages.into_iter().map(|m| format!("validation: {m}")));
    }
    {
        let h = HeadlessDevice::new(HeadlessConfig {
            concurrent_with_main_family: true,
            ..HeadlessConfig::default()
        })
        .expect("a Vulkan device");
        let gpu = Gpu::new(h);
        if !raw_only
            || sections
                .0
                .as_ref()
                .is_some_and(|s| s.iter().any(|n| n == "coordinator"))
        {
            coordinator_runs(&mut report, &gpu, reps, quick);
        }
    }
    if !raw_only {
        staged_big_ring(&mut report, reps);
    }
    if sections.has("lanes") {
        lanes::run(&mut report, reps, validate);
    }
    if sections.has("images") {
        images::run(&mut report, reps, quick, validate);
    }
    if sections.has("readbacks") {
        readbacks::run(&mut report, reps, quick, validate);
    }
    if sections.has("constants") {
        constants::run(&mut report, reps, quick, validate);
    }

    // Ratios, from figures of this run.
    let naive = report.get("4. naive 65536 x 4 KiB (extrapolated)");
    let bus = report.get("1. raw vkCmdCopyBuffer 256 MiB (bus limit, source pre-filled)");
    let best_4k = [
        "2. 65536 x 4096 B scattered, staged, 1 producer(s)",
        "2. 65536 x 4096 B scattered, staged, 8 producer(s)",
        "2. 65536 x 4096 B scattered, direct, 1 producer(s)",
        "2. 65536 x 4096 B scattered, direct, 8 producer(s)",
    ]
    .iter()
    .filter_map(|n| report.get(n))
    .fold(0.0, f64::max);
    if let Some(naive) = naive {
        report.add(
            "4. ratio: best memkit 4 KiB scattered / naive",
            best_4k / naive,
            "x",
            "",
        );
    }
    if let Some(bus) = bus {
        for name in [
            "1. bulk 256 MiB, staged, 1 producer(s)",
            "1. bulk 256 MiB, direct, 1 producer(s)",
            "1. bulk 256 MiB, staged, 8 producer(s)",
            "1. bulk 256 MiB, direct, 8 producer(s)",
        ] {
            if let Some(v) = report.get(name) {
                report.add(&format!("{name} / raw copy"), v / bus, "x", "");
            }
        }
    }

    if let Some(path) = json {
        std::fs::write(&path, report.json()).expect("write the JSON report");
        println!("wrote {path}");
    }
    if !report.failures.is_empty() {
        for f in &report.failures {
            eprintln!("FAILED: {f}");
        }
        std::process::exit(1);
    }
}
