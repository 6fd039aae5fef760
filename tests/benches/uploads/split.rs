//! One 256 MiB upload split between the copy engine and a second path running at the same time,
//! to see whether the bus carries more than one `vkCmdCopyBuffer` does on its own:
//!
//! - `hybrid`: the copy engine moves the first part (staging -> destination) while CPU threads
//!   write the rest straight into the destination's mapping (device-local host-visible memory);
//! - `compute`: a compute shader reads staging memory and writes the destination, alone, and
//!   beside a copy of the rest on the transfer queue.
//!
//! Each figure is the whole 256 MiB over the wall time from the start until every part is done
//! (the copy's timeline wait, the shader's fence, every writer thread), median of at least 5
//! runs after a warm-up. The destination is cleared before each variant's runs and read back
//! whole after them, so a variant that writes wrong bytes fails the run instead of reporting a
//! figure.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use ash::vk;
use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, MemoryDevice,
    MemoryPropertyFlags, WaitStatus,
};
use memkit_tests::bench_report::{Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::{HeadlessDevice, VulkanDevice};

use super::compute_copy::ComputeCopy;
use super::{BIG, Bound, MIB, Readback, Sections, Target, bound_with};

/// Shares of the 256 MiB given to the second path, in percent.
const SHARES: [u64; 5] = [10, 15, 20, 30, 50];
/// Writer threads of the hybrid.
const WRITERS: [usize; 3] = [2, 4, 8];
/// Workgroups per dispatch for the shader alone; the split runs use the first.
const WORKGROUPS: [u32; 3] = [1024, 256, 8192];

/// `percent` of BIG, in whole MiB (so ranges start where descriptors may).
fn share(percent: u64) -> u64 {
    BIG * percent / 100 / MIB * MIB
}

/// What both variants read (the bytes in host memory and the same bytes in staging memory),
/// where they check what they wrote, and how often they run.
struct Split<'a> {
    h: &'a HeadlessDevice,
    bytes: Vec<u8>,
    staging: Bound,
    readback: Readback,
    reps: usize,
}

pub(super) fn run(report: &mut Report, h: &HeadlessDevice, reps: usize, sections: &Sections) {
    let device = h.device();
    let reps = reps.max(5);
    let mut bytes = vec![0u8; BIG as usize];
    Rng::new(7).fill(&mut bytes);
    let staging = bound_with(
        device,
        BIG,
        BufferUsage::TRANSFER_SRC | BufferUsage::STORAGE,
        MemoryPropertyFlags::HOST_VISIBLE | MemoryPropertyFlags::HOST_COHERENT,
        MemoryPropertyFlags::DEVICE_LOCAL,
    );
    // SAFETY: host-visible, coherent, mapped once here and unmapped below; the GPU reads it
    // only after this write.
    unsafe {
        let mapped = device.map_memory(staging.memory).expect("map staging");
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), mapped.as_ptr(), bytes.len());
        device.unmap_memory(staging.memory);
    }
    let split = Split {
        h,
        bytes,
        staging,
        readback: Readback::new(h),
        reps,
    };
    if sections.has("hybrid") {
        hybrid(report, &split);
    }
    if sections.has("compute") {
        compute(report, &split);
    }
    split.readback.destroy(h);
    // SAFETY: every use was waited.
    unsafe {
        device.destroy_buffer(split.staging.buffer);
        device.free_memory(split.staging.memory);
    }
}

/// Clears `dst` (so the check sees only what the variant writes), runs `once` for a warm-up
/// and `reps` times, then reads `dst` back and compares it with the source. Returns the
/// median of the first values and every run's second, or `None` (a failure recorded) when the
/// bytes differ.
fn measured<T>(
    report: &mut Report,
    split: &Split<'_>,
    dst: vk::Buffer,
    name: &str,
    mut once: impl FnMut() -> (f64, T),
) -> Option<(f64, Vec<T>)> {
    let (h, readback) = (split.h, &split.readback);
    // SAFETY: every earlier submission on the main queue was waited; `dst` is alive, concurrent
    // with the main family, with TRANSFER_DST usage.
    unsafe { readback.copy.clear(h, dst) };
    readback.copy.wait(h);
    once();
    let runs: Vec<(f64, T)> = (0..split.reps).map(|_| once()).collect();
    let got = readback.read(h, dst);
    let block = 1 << 16;
    if let Some(i) = got
        .chunks(block)
        .zip(split.bytes.chunks(block))
        .position(|(a, b)| a != b)
    {
        report.failures.push(format!(
            "{name}: wrong bytes in the 64 KiB block at {}",
            i * block
        ));
        return None;
    }
    let t = median(runs.iter().map(|r| r.0).collect());
    Some((t, runs.into_iter().map(|r| r.1).collect()))
}

/// Submits a copy of `src[range]` to the same range of `dst` on memkit's transfer queue and
/// returns the timeline value to wait for.
fn submit_copy(
    device: &VulkanDevice,
    src: vk::Buffer,
    dst: vk::Buffer,
    range: std::ops::Range<u64>,
) -> u64 {
    let region = [BufferCopy {
        src_offset: range.start,
        dst_offset: range.start,
        size: range.end - range.start,
    }];
    let value = device.last_submitted_value() + 1;
    // SAFETY: both buffers are alive, bound, with the transfer usages, and hold the range; the
    // range is written by nothing else while the copy runs.
    unsafe {
        device.submit_copies(
            &[CopyCommand {
                src,
                dst,
                regions: &region,
            }],
            value,
        )
    }
    .expect("submit");
    value
}

fn wait_copy(device: &VulkanDevice, value: u64) {
    assert_eq!(
        device.wait(value, u64::MAX).expect("wait"),
        WaitStatus::Completed
    );
}

/// A: the copy engine moves `[0, BIG - direct)` from staging while `threads` threads write
/// `[BIG - direct, BIG)` from host memory straight into the destination's mapping, in
/// contiguous shares. Returns (total, (copy done, writers done)) in seconds from the start: the
/// earliest of the copy's submission and the writers' first byte.
fn hybrid_once(
    device: &VulkanDevice,
    source: &Split<'_>,
    dst: vk::Buffer,
    mapped: Target,
    direct: u64,
    threads: usize,
) -> (f64, (f64, f64)) {
    let split = BIG - direct;
    let direct_bytes = &source.bytes[split as usize..];
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mapped = mapped;
                    let len = direct_bytes.len();
                    let (lo, hi) = (t * len / threads, (t + 1) * len / threads);
                    barrier.wait();
                    let start = Instant::now();
                    // SAFETY: the mapping covers BIG bytes; [split + lo, split + hi) is this
                    // thread's alone, and no GPU work touches it while the threads run.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            direct_bytes[lo..hi].as_ptr(),
                            mapped.0.add(split as usize + lo),
                            hi - lo,
                        )
                    };
                    (start, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        let submitted = Instant::now();
        let value = submit_copy(device, source.staging.buffer, dst, 0..split);
        wait_copy(device, value);
        let copied = Instant::now();
        let spans: Vec<(Instant, Instant)> = writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect();
        let start = spans.iter().map(|w| w.0).fold(submitted, Instant::min);
        let copy_done = copied - start;
        let writers_done = spans
            .iter()
            .map(|w| w.1 - start)
            .max()
            .unwrap_or(Duration::ZERO);
        (
            copy_done.max(writers_done).as_secs_f64(),
            (copy_done.as_secs_f64(), writers_done.as_secs_f64()),
        )
    })
}

fn hybrid(report: &mut Report, split: &Split<'_>) {
    let device = split.h.device();
    let want = MemoryPropertyFlags::DEVICE_LOCAL
        | MemoryPropertyFlags::HOST_VISIBLE
        | MemoryPropertyFlags::HOST_COHERENT;
    let (probe, req) = device
        .create_buffer(BIG, BufferUsage::TRANSFER_DST)
        .expect("buffer");
    // SAFETY: never bound or used.
    unsafe { device.destroy_buffer(probe) };
    let props = device.memory_properties();
    if !(0..props.types().len())
        .any(|i| req.memory_type_bits & (1 << i) != 0 && props.types()[i].properties.contains(want))
    {
        println!("hybrid: skipped, no DEVICE_LOCAL+HOST_VISIBLE+HOST_COHERENT memory type");
        return;
    }
    let dst = bound_with(
        device,
        BIG,
        BufferUsage::TRANSFER_DST | BufferUsage::TRANSFER_SRC,
        want,
        MemoryPropertyFlags::empty(),
    );
    // SAFETY: host-visible, mapped once here, unmapped below.
    let mapped = Target(
        unsafe { device.map_memory(dst.memory) }
            .expect("map")
            .as_ptr(),
    );
    let bus = report.get("1. raw vkCmdCopyBuffer 256 MiB (bus limit, source pre-filled)");
    let cases = std::iter::once((0, 0)).chain(
        SHARES
            .iter()
            .flat_map(|&p| WRITERS.iter().map(move |&t| (p, t))),
    );
    for (percent, threads) in cases {
        let name = if percent == 0 {
            "1. hybrid 256 MiB: copy 100% into device-local host-visible (baseline)".to_string()
        } else {
            format!(
                "1. hybrid 256 MiB: copy {}% + direct writes {percent}%, {threads} thread(s)",
                100 - percent
            )
        };
        let direct = share(percent);
        let once = || hybrid_once(device, split, dst.buffer, mapped, direct, threads);
        let Some((t, parts)) = measured(report, split, dst.buffer, &name, once) else {
            continue;
        };
        let copy = median(parts.iter().map(|p| p.0).collect());
        let writers = median(parts.iter().map(|p| p.1).collect());
        let vs = bus.map_or(String::new(), |b| {
            format!(", {:.2}x the raw copy", gbps(BIG, t) / b)
        });
        let writers = if threads == 0 {
            String::new()
        } else {
            format!(", writers done {:.2} ms", writers * 1e3)
        };
        let note = format!("copy done {:.2} ms{writers} (medians){vs}", copy * 1e3);
        report.add(&name, gbps(BIG, t), "GB/s", &note);
    }
    // SAFETY: every write and copy finished (waited and joined).
    unsafe {
        device.unmap_memory(dst.memory);
        device.destroy_buffer(dst.buffer);
        device.free_memory(dst.memory);
    }
}

fn compute(report: &mut Report, split: &Split<'_>) {
    let (h, device) = (split.h, split.h.device());
    let dst = bound_with(
        device,
        BIG,
        BufferUsage::STORAGE | BufferUsage::TRANSFER_DST | BufferUsage::TRANSFER_SRC,
        MemoryPropertyFlags::DEVICE_LOCAL,
        MemoryPropertyFlags::HOST_VISIBLE,
    );
    let shader = ComputeCopy::new(h);
    let src = split.staging.buffer;
    let bus = report.get("1. raw vkCmdCopyBuffer 256 MiB (bus limit, source pre-filled)");
    let vs = |t: f64| {
        bus.map_or(String::new(), |b| {
            format!("{:.2}x the raw copy", gbps(BIG, t) / b)
        })
    };

    for workgroups in WORKGROUPS {
        let name = format!("1. compute-shader copy 256 MiB, {workgroups} workgroups of 256");
        // SAFETY: nothing is in flight; both buffers have STORAGE usage, hold BIG bytes, are
        // concurrent with the main family and live until destroyed below, after the last wait.
        unsafe { shader.record(h, src, dst.buffer, 0, BIG, workgroups) };
        let once = || {
            let start = Instant::now();
            // SAFETY: recorded above; the previous run was waited.
            unsafe { shader.submit(h) };
            shader.wait(h);
            (start.elapsed().as_secs_f64(), ())
        };
        if let Some((t, _)) = measured(report, split, dst.buffer, &name, once) {
            report.add(&name, gbps(BIG, t), "GB/s", &vs(t));
        }
    }
    for percent in SHARES {
        let at = share(percent);
        let name = format!(
            "1. split 256 MiB: compute shader {percent}% + copy {}% at once",
            100 - percent
        );
        // SAFETY: as above; the copy writes [at, BIG), the shader [0, at).
        unsafe { shader.record(h, src, dst.buffer, 0, at, WORKGROUPS[0]) };
        let once = || {
            let start = Instant::now();
            // SAFETY: recorded above; the previous run was waited.
            unsafe { shader.submit(h) };
            let value = submit_copy(device, src, dst.buffer, at..BIG);
            wait_copy(device, value);
            shader.wait(h);
            (start.elapsed().as_secs_f64(), ())
        };
        if let Some((t, _)) = measured(report, split, dst.buffer, &name, once) {
            let note = format!("{} workgroups; {}", WORKGROUPS[0], vs(t));
            report.add(&name, gbps(BIG, t), "GB/s", &note);
        }
    }
    shader.destroy(h);
    // SAFETY: every use was waited.
    unsafe {
        device.destroy_buffer(dst.buffer);
        device.free_memory(dst.memory);
    }
}
