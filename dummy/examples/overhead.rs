//! What the simulated device costs per call, so benchmarks run on it know what they measure.
//!
//!     cargo run --release -p memkit-dummy --example overhead
//!
//! Prints medians of several runs: allocate+free, a small copy submitted and executed (with and
//! without the pending-range checks), and a 16 MiB copy's throughput.

use std::time::Instant;

use memkit_core::device::{BufferCopy, BufferUsage, CopyCommand, MemoryAllocateInfo};
use memkit_dummy::{DeviceConfig, DummyDevice};

const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn info(
    memory_type: u32,
    size: u64,
) -> MemoryAllocateInfo<memkit_dummy::DummyBuffer, memkit_dummy::DummyImage> {
    MemoryAllocateInfo {
        size,
        memory_type,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    }
}

/// Staging (host-visible) and target (device-local) buffers of `size` on a discrete preset.
fn setup(
    config: DeviceConfig,
    size: u64,
) -> (
    DummyDevice,
    memkit_dummy::DummyBuffer,
    memkit_dummy::DummyBuffer,
) {
    let gpu = DummyDevice::new(config).expect("device");
    let usage = BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST;
    let src_memory = gpu.allocate_memory(&info(1, size)).expect("alloc");
    let dst_memory = gpu.allocate_memory(&info(0, size)).expect("alloc");
    let (src, _) = gpu.create_buffer(size, usage).expect("buffer");
    let (dst, _) = gpu.create_buffer(size, usage).expect("buffer");
    gpu.bind_buffer_memory(src, src_memory, 0).expect("bind");
    gpu.bind_buffer_memory(dst, dst_memory, 0).expect("bind");
    gpu.map_memory(src_memory).expect("map");
    gpu.set_memory_label(src_memory, "bench staging");
    (gpu, src, dst)
}

fn small_copies_ns(config: DeviceConfig, n: u64, region: u64) -> f64 {
    let (gpu, src, dst) = setup(config, 1 << 20);
    let start = Instant::now();
    for i in 0..n {
        let offset = (i * region) % (1 << 20);
        let regions = [BufferCopy {
            src_offset: offset,
            dst_offset: offset,
            size: region,
        }];
        gpu.submit_copies(
            &[CopyCommand {
                src,
                dst,
                regions: &regions,
            }],
            i + 1,
        )
        .expect("submit");
        gpu.advance_to(i + 1);
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    gpu.set_panic_on_misuse(false);
    gpu.complete_all();
    for b in gpu.live_buffers() {
        gpu.destroy_buffer(b);
    }
    for m in gpu.live_memory() {
        gpu.free_memory(m);
    }
    ns
}

fn main() {
    let alloc_ns = median(
        (0..RUNS)
            .map(|_| {
                let gpu = DummyDevice::discrete();
                let start = Instant::now();
                for _ in 0..10_000 {
                    let m = gpu.allocate_memory(&info(0, 65536)).expect("alloc");
                    gpu.free_memory(m);
                }
                start.elapsed().as_nanos() as f64 / 10_000.0
            })
            .collect(),
    );
    println!("allocate+free 64 KiB (device-local): {alloc_ns:.0} ns median");
    let host_alloc_ns = median(
        (0..RUNS)
            .map(|_| {
                let gpu =
                    DummyDevice::new(DeviceConfig::discrete().with_freed_mapping_quarantine(0))
                        .expect("device");
                let start = Instant::now();
                for _ in 0..10_000 {
                    let m = gpu.allocate_memory(&info(1, 65536)).expect("alloc");
                    gpu.free_memory(m);
                }
                start.elapsed().as_nanos() as f64 / 10_000.0
            })
            .collect(),
    );
    println!("allocate+free 64 KiB (host-visible, no quarantine): {host_alloc_ns:.0} ns median");
    for region in [256u64, 4096] {
        let checked = median(
            (0..RUNS)
                .map(|_| small_copies_ns(DeviceConfig::discrete(), 10_000, region))
                .collect(),
        );
        let unchecked = median(
            (0..RUNS)
                .map(|_| {
                    small_copies_ns(
                        DeviceConfig::discrete().with_check_pending_ranges(false),
                        10_000,
                        region,
                    )
                })
                .collect(),
        );
        println!(
            "submit+execute one {region} B copy: {checked:.0} ns with range checks, \
             {unchecked:.0} ns without ({:.2}x)",
            checked / unchecked
        );
    }
    let size = 16u64 << 20;
    let gbps = median(
        (0..RUNS)
            .map(|_| {
                let (gpu, src, dst) = setup(DeviceConfig::discrete(), size);
                let regions = [BufferCopy {
                    src_offset: 0,
                    dst_offset: 0,
                    size,
                }];
                let command = CopyCommand {
                    src,
                    dst,
                    regions: &regions,
                };
                // First touch pays the page faults; the timed copy runs warm.
                gpu.submit_copies(&[command], 1).expect("submit");
                gpu.advance_to(1);
                let start = Instant::now();
                gpu.submit_copies(&[command], 2).expect("submit");
                gpu.advance_to(2);
                let secs = start.elapsed().as_secs_f64();
                for b in gpu.live_buffers() {
                    gpu.destroy_buffer(b);
                }
                for m in gpu.live_memory() {
                    gpu.free_memory(m);
                }
                size as f64 / secs / 1e9
            })
            .collect(),
    );
    println!("one warm 16 MiB copy host-visible -> device-local, checks on: {gbps:.2} GB/s median");
    let memcpy_gbps = median(
        (0..RUNS)
            .map(|_| {
                let src = vec![1u8; size as usize];
                let mut dst = vec![0u8; size as usize];
                dst.copy_from_slice(&src); // touch once
                let start = Instant::now();
                dst.copy_from_slice(&src);
                let secs = start.elapsed().as_secs_f64();
                assert_eq!(dst[17], 1);
                size as f64 / secs / 1e9
            })
            .collect(),
    );
    println!("peer in the same run: a warm 16 MiB memcpy: {memcpy_gbps:.2} GB/s median");
}
