//! Defragmentation on a real Vulkan driver: memkit's passes (`MemoryPools::begin_defragmentation`
//! / `relocate` / `end_defragmentation`) against VMA's (`vmaBeginDefragmentation` and its passes,
//! through vk-mem 0.5, every algorithm), from the same fragmented state, in one run.
//! gpu-allocator and gpu-alloc have no defragmentation, so they are not here.
//!
//! ```text
//! cargo bench -p memkit-tests --bench defrag              # 5 repetitions
//! cargo bench -p memkit-tests --bench defrag -- --reps 9
//! ```
//!
//! The state: 3000 device-local allocations (sizes log-uniform 4 KiB-1 MiB, a storage buffer's
//! requirements) in 16 MiB blocks, then a seeded 75% of them freed at random, as a streaming world
//! leaves its memory after a level change. Each allocator then defragments until its passes
//! move nothing more. What is measured is the allocators' side: their own calls, timed around
//! each one, and the memory they hold before and after. The moves' copies and the buffers'
//! re-creation are the application's, the same bytes for either, and are not done here (no
//! resource is bound to these allocations).
//!
//! Reported per contender: device bytes held before and after (as a multiple of the live bytes),
//! memory objects released, bytes moved, passes, and the median time of its calls over the
//! repetitions (each repetition builds the state afresh, on the first Vulkan device the loader
//! offers: the H200 on the GPU machine, lavapipe here).

use std::time::{Duration, Instant};

use ash::vk;
use memkit_core::device::{BufferDevice, BufferUsage, MemoryRequirements};
use memkit_core::pool::{
    AllocationRequest, BlockSlot, DedicatedSlot, DefragmentationLimits, DeviceAllocation,
    MemoryPools, PoolConfig, Relocation,
};
use memkit_core::tlsf::{TlsfAllocator, TlsfNode};
use memkit_core::{MemoryUsage, ResourceKind};
use memkit_tests::workloads::SplitMix64;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, VulkanDevice};

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 16 * MIB;
const ALLOCATIONS: usize = 3000;

type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
type Pools<'d> = MemoryPools<
    &'d VulkanDevice,
    Tlsf,
    Vec<BlockSlot<vk::DeviceMemory, Tlsf>>,
    Vec<DedicatedSlot<vk::DeviceMemory>>,
>;

/// The sizes allocated, and which of them stay (the same for every contender).
struct State {
    sizes: Vec<u64>,
    kept: Vec<bool>,
}

impl State {
    fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let sizes = (0..ALLOCATIONS)
            .map(|_| rng.log_uniform(4 << 10, MIB))
            .collect();
        let kept = (0..ALLOCATIONS).map(|_| rng.below(4) == 0).collect();
        Self { sizes, kept }
    }

    fn live_bytes(&self, alignment: u64) -> u64 {
        self.sizes
            .iter()
            .zip(&self.kept)
            .filter(|(_, k)| **k)
            .map(|(s, _)| s.next_multiple_of(alignment))
            .sum()
    }
}

/// What one contender's defragmentation did.
#[derive(Default)]
struct Outcome {
    bytes_before: u64,
    bytes_after: u64,
    objects_released: u64,
    bytes_moved: u64,
    passes: u32,
    time: Duration,
}

fn memkit(device: &VulkanDevice, req: MemoryRequirements, state: &State) -> Outcome {
    let config = PoolConfig {
        first_block_size: BLOCK,
        preferred_block_size: Some(BLOCK),
        ..PoolConfig::DEFAULT
    };
    let len = Pools::block_storage_len(&device, &config).unwrap();
    let slots = (0..64)
        .map(|_| BlockSlot::new(vec![TlsfNode::EMPTY; len]))
        .collect();
    let mut pools: Pools<'_> =
        MemoryPools::new(device, config, slots, vec![DedicatedSlot::new(); 8]).unwrap();
    let mut live: Vec<Option<DeviceAllocation<vk::DeviceMemory>>> = state
        .sizes
        .iter()
        .map(|&size| {
            let request = AllocationRequest::new(
                MemoryRequirements { size, ..req },
                MemoryUsage::FAST_DEVICE_ACCESS,
            )
            .with_kind(ResourceKind::Linear);
            Some(pools.allocate(&request).unwrap())
        })
        .collect();
    for (slot, &kept) in live.iter_mut().zip(&state.kept) {
        if !kept {
            // SAFETY: never used by the GPU.
            unsafe { pools.free(slot.take().unwrap()).unwrap() };
        }
    }
    let mut out = Outcome {
        bytes_before: pools.total_stats().block_bytes,
        ..Outcome::default()
    };
    let objects_before = device.live_memory_objects();
    loop {
        let start = Instant::now();
        let plan = pools
            .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
            .unwrap();
        let mut moved = Vec::new();
        for slot in live.iter_mut().flatten() {
            if let Relocation::Move(new) = pools.relocate(slot, req.alignment).unwrap() {
                moved.push(std::mem::replace(slot, new));
            }
        }
        // The application's copies would run here; the old ranges go once they completed.
        for old in moved {
            // SAFETY: never used by the GPU.
            unsafe { pools.free(old).unwrap() };
        }
        let report = pools.end_defragmentation();
        out.time += start.elapsed();
        if plan.blocks == 0 {
            break;
        }
        out.passes += 1;
        out.bytes_moved += report.bytes_moved;
        if report.moves == 0 {
            break;
        }
    }
    out.bytes_after = pools.total_stats().block_bytes;
    out.objects_released = u64::from(objects_before - device.live_memory_objects());
    for a in live.into_iter().flatten() {
        // SAFETY: never used by the GPU.
        unsafe { pools.free(a).unwrap() };
    }
    // SAFETY: everything was freed, and the GPU never used it.
    let _ = unsafe { pools.destroy() };
    out
}

fn vma(h: &HeadlessDevice, req: MemoryRequirements, state: &State, algorithm: u32) -> Outcome {
    use vk_mem::Alloc as _;
    let mut info = vk_mem::AllocatorCreateInfo::new(
        h.instance(),
        h.ash_device(),
        h.device().physical_device(),
    );
    info.vulkan_api_version = vk::API_VERSION_1_1;
    info.preferred_large_heap_block_size = BLOCK;
    // SAFETY: the instance, device and physical device are alive and outlive the allocator
    // (dropped at the end of this function).
    let allocator = unsafe { vk_mem::Allocator::new(info) }.expect("vk-mem allocator");
    // `Auto*` usages need a resource to judge by; without one, device-local memory asked for
    // outright (memkit's `FAST_DEVICE_ACCESS` ranks it first too).
    let create = vk_mem::AllocationCreateInfo {
        usage: vk_mem::MemoryUsage::Unknown,
        required_flags: vk::MemoryPropertyFlags::DEVICE_LOCAL,
        ..Default::default()
    };
    let mut live: Vec<Option<vk_mem::Allocation>> = state
        .sizes
        .iter()
        .map(|&size| {
            let requirements = vk::MemoryRequirements {
                size,
                alignment: req.alignment,
                memory_type_bits: req.memory_type_bits,
            };
            // SAFETY: valid requirements on a live allocator.
            Some(unsafe { allocator.allocate_memory(&requirements, &create) }.expect("vma"))
        })
        .collect();
    for (slot, &kept) in live.iter_mut().zip(&state.kept) {
        if !kept {
            // SAFETY: made by this allocator, never used by the GPU.
            unsafe { allocator.free_memory(&mut slot.take().unwrap()) };
        }
    }
    let blocks = |a: &vk_mem::Allocator| a.calculate_statistics().unwrap().total.statistics;
    let before = blocks(&allocator);
    let mut out = Outcome {
        bytes_before: before.blockBytes,
        ..Outcome::default()
    };
    let defrag = VmaDefragmentationInfo {
        flags: algorithm,
        pool: std::ptr::null_mut(),
        max_bytes_per_pass: 0,
        max_allocations_per_pass: 0,
        break_callback: None,
        break_callback_user_data: std::ptr::null_mut(),
    };
    let passes = std::cell::Cell::new(0);
    let start = Instant::now();
    // SAFETY: `VmaDefragmentationInfo` has the layout of VMA's struct (the pointer cast infers
    // vk-mem's unexported type from the parameter); default pools, no limits; no allocation is
    // in use by the GPU.
    let context = unsafe { allocator.begin_defragmentation(&*std::ptr::from_ref(&defrag).cast()) }
        .expect("vma defrag");
    // Each pass's moves are left as copies (the default operation): the application's copies
    // would run inside the closure.
    while context.begin_pass(|_moves| passes.set(passes.get() + 1)) {}
    let stats = context.end();
    out.time = start.elapsed();
    out.passes = passes.get();
    let after = blocks(&allocator);
    out.bytes_after = after.blockBytes;
    out.bytes_moved = stats.bytesMoved;
    out.objects_released = u64::from(before.blockCount - after.blockCount);
    for mut a in live.into_iter().flatten() {
        // SAFETY: made by this allocator, never used by the GPU.
        unsafe { allocator.free_memory(&mut a) };
    }
    out
}

/// VMA's `VmaDefragmentationInfo`, field for field (`repr(C)`): vk-mem 0.5 takes it in
/// `Allocator::begin_defragmentation` but does not export it.
#[repr(C)]
struct VmaDefragmentationInfo {
    flags: u32,
    pool: *mut std::ffi::c_void,
    max_bytes_per_pass: u64,
    max_allocations_per_pass: u32,
    break_callback: Option<unsafe extern "C" fn(*mut std::ffi::c_void) -> u32>,
    break_callback_user_data: *mut std::ffi::c_void,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(5usize);
    let h = match HeadlessDevice::new(HeadlessConfig::default()) {
        Ok(h) => h,
        Err(e) => {
            println!("defrag: no Vulkan device here ({e}); nothing measured");
            return;
        }
    };
    let device = h.device();
    let (buffer, req) = device
        .create_buffer(MIB, BufferUsage::STORAGE | BufferUsage::TRANSFER_DST)
        .unwrap();
    // SAFETY: never bound or used.
    unsafe { device.destroy_buffer(buffer) };
    let state = State::new(1);
    let live = state.live_bytes(req.alignment);
    println!(
        "defragmentation ({reps} repetitions): {ALLOCATIONS} allocations of 4 KiB-1 MiB in {} MiB \
         blocks, 75% freed; {:.1} MiB live",
        BLOCK / MIB,
        live as f64 / MIB as f64
    );
    type Run<'a> = Box<dyn Fn() -> Outcome + 'a>;
    let contenders: Vec<(&str, Run<'_>)> = vec![
        (
            "memkit pools (TLSF)",
            Box::new(|| memkit(device, req, &state)),
        ),
        ("VMA, fast", Box::new(|| vma(&h, req, &state, 1))),
        ("VMA, balanced", Box::new(|| vma(&h, req, &state, 2))),
        ("VMA, full", Box::new(|| vma(&h, req, &state, 4))),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    let mut last: Vec<Outcome> = (0..contenders.len()).map(|_| Outcome::default()).collect();
    // Interleaved, rotating the order, so a slow phase of a shared machine hits all alike.
    for rep in 0..reps {
        for k in 0..contenders.len() {
            let i = (rep + k) % contenders.len();
            let o = (contenders[i].1)();
            times[i].push(o.time);
            last[i] = o;
        }
    }
    println!(
        "  {:<22} {:>10} {:>10} {:>9} {:>10} {:>7} {:>12}",
        "allocator", "before", "after", "released", "moved MiB", "passes", "time (ms)"
    );
    for (i, (name, _)) in contenders.iter().enumerate() {
        let o = &last[i];
        println!(
            "  {:<22} {:>9.2}x {:>9.2}x {:>9} {:>10.1} {:>7} {:>12.3}",
            name,
            o.bytes_before as f64 / live as f64,
            o.bytes_after as f64 / live as f64,
            o.objects_released,
            o.bytes_moved as f64 / MIB as f64,
            o.passes,
            median(times[i].clone()).as_secs_f64() * 1e3
        );
    }
    drop(contenders);
    drop(h);
}
