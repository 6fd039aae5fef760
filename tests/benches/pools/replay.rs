//! What the pool benchmarks share: their traces, replaying a trace through an allocator's
//! allocate and free (gpu-alloc's and gpu-allocator's replays among them, whichever device they
//! run on), and the median they quote (the test crate's `bench_report::median`).

use std::time::Instant;

pub use memkit_tests::bench_report::median;
use memkit_tests::workloads::{
    ChurnConfig, GameFrameConfig, Trace, TraceOp, game_frame, small_object_churn,
};

/// The game-frame trace (1000 frames, 200 with `quick`) and the churn trace (20 000
/// replacements, 5000 with `quick`), seeded.
pub fn traces(quick: bool) -> [Trace; 2] {
    let game = game_frame(
        1,
        &GameFrameConfig {
            frames: if quick { 200 } else { 1000 },
            ..GameFrameConfig::default()
        },
    );
    let churn = small_object_churn(
        2,
        &ChurnConfig {
            steps: if quick { 5_000 } else { 20_000 },
            ..ChurnConfig::default()
        },
    );
    [game, churn]
}

/// Replays a trace through `alloc` / `free` with a handle table indexed by id; returns (seconds,
/// failed allocations). A refused allocation is counted and its later free skipped.
pub fn replay_with<H>(
    trace: &Trace,
    mut alloc: impl FnMut(u64, u64) -> Option<H>,
    mut free: impl FnMut(H),
) -> (f64, u64) {
    let mut table: Vec<Option<H>> = (0..trace.ids).map(|_| None).collect();
    let mut failed = 0;
    let start = Instant::now();
    for op in &trace.ops {
        match *op {
            TraceOp::Alloc { id, size, align } => match alloc(size, align) {
                Some(h) => table[id as usize] = Some(h),
                None => failed += 1,
            },
            TraceOp::Free { id } => {
                if let Some(h) = table[id as usize].take() {
                    free(h);
                }
            }
        }
    }
    (start.elapsed().as_secs_f64(), failed)
}

/// Times `count` contenders on one trace of `ops` ops: one warm-up replay each, then `reps`
/// timed repetitions, the order rotated every repetition so no contender always runs first.
/// `replay(i)` replays contender `i` and returns (seconds, failed allocations). Returns each
/// contender's ns/op samples and its failed allocations over the timed repetitions.
pub fn interleaved(
    count: usize,
    reps: usize,
    ops: f64,
    mut replay: impl FnMut(usize) -> (f64, u64),
) -> (Vec<Vec<f64>>, Vec<u64>) {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); count];
    let mut failed = vec![0; count];
    for rep in 0..=reps {
        for k in 0..count {
            let i = (k + rep) % count;
            let (secs, f) = replay(i);
            if rep > 0 {
                samples[i].push(secs * 1e9 / ops);
                failed[i] += f;
            }
        }
    }
    (samples, failed)
}

/// Replays `trace` through gpu-alloc (device-only requests over `memory_types`) on `device`.
pub fn replay_gpu_alloc<M: std::fmt::Debug + 'static, D: gpu_alloc::MemoryDevice<M>>(
    allocator: &mut gpu_alloc::GpuAllocator<M>,
    device: &D,
    trace: &Trace,
    memory_types: u32,
) -> (f64, u64) {
    let allocator = std::cell::RefCell::new(allocator);
    replay_with(
        trace,
        |size, align| {
            let request = gpu_alloc::Request {
                size,
                align_mask: align - 1,
                usage: gpu_alloc::UsageFlags::FAST_DEVICE_ACCESS,
                memory_types,
            };
            // SAFETY: one device for every call on this allocator; it outlives them.
            unsafe { allocator.borrow_mut().alloc(device, request) }.ok()
        },
        // SAFETY: the block came from this allocator and device.
        |block| unsafe { allocator.borrow_mut().dealloc(device, block) },
    )
}

/// Replays `trace` through gpu-allocator (`GpuOnly`, linear, over `memory_type_bits`).
pub fn replay_gpu_allocator(
    allocator: &mut gpu_allocator::vulkan::Allocator,
    trace: &Trace,
    memory_type_bits: u32,
) -> (f64, u64) {
    use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme};
    let allocator = std::cell::RefCell::new(allocator);
    replay_with(
        trace,
        |size, alignment| {
            let desc = AllocationCreateDesc {
                name: "bench",
                requirements: ash::vk::MemoryRequirements {
                    size,
                    alignment,
                    memory_type_bits,
                },
                location: gpu_allocator::MemoryLocation::GpuOnly,
                linear: true,
                allocation_scheme: AllocationScheme::GpuAllocatorManaged,
            };
            allocator.borrow_mut().allocate(&desc).ok()
        },
        |a: Allocation| allocator.borrow_mut().free(a).expect("live allocation"),
    )
}
