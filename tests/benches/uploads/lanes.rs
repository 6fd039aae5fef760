//! Copy lanes through the coordinator: one 256 MiB upload staged first, then submitted as one
//! batch that memkit-vulkan splits over 1 + 0, 1, 3, 7 and 15 queues (`HeadlessConfig::copy_lanes`).
//! Timed from the submission to the GPU's completion, the part a pinned copy measures too (its
//! bytes already sit in pinned memory); the staging write is reported beside it. Every queue
//! count's result is read back once and compared byte for byte.

use std::time::Instant;

use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage};
use memkit_tests::bench_report::{Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice};

use crate::{BIG, Gpu, Readback};

/// Stages all of `data` into `buffer` without submitting, then submits and waits. Returns
/// (seconds staging, seconds from the submission to completion).
fn staged_then_copied(
    coordinator: &Coordinator<Gpu>,
    buffer: &memkit_std::Buffer<Gpu>,
    data: &[u8],
) -> (f64, f64) {
    let start = Instant::now();
    coordinator.upload_to(buffer, 0, data).expect("upload");
    let staged = Instant::now();
    coordinator
        .flush_transfers()
        .expect("flush")
        .wait()
        .expect("wait");
    (
        staged.duration_since(start).as_secs_f64(),
        staged.elapsed().as_secs_f64(),
    )
}

pub fn run(report: &mut Report, reps: usize, validate: bool) {
    let mut data = vec![0u8; BIG as usize];
    Rng::new(31).fill(&mut data);
    for lanes in [0, 1, 3, 7, 15] {
        let h = HeadlessDevice::new(HeadlessConfig {
            copy_lanes: lanes,
            concurrent_with_main_family: true,
            validation: validate,
            ..HeadlessConfig::default()
        })
        .expect("a Vulkan device");
        let transfer = h.device().transfer_queue();
        let queues: Vec<String> = std::iter::once(transfer)
            .chain(h.device().copy_lanes().queues().iter().copied())
            .map(|q| format!("f{}q{}", q.family, q.index))
            .collect();
        let gpu = Gpu::new(h);
        let config = CoordinatorConfig {
            staging_ring_size: 2 * BIG,
            // Everything stays staged until the flush: one batch of 256 MiB.
            eager_submit_bytes: u64::MAX,
            ..CoordinatorConfig::default()
        };
        let coordinator = Coordinator::new(gpu.clone(), config).expect("coordinator");
        let buffer = coordinator
            .create_buffer(BIG, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        let readback = Readback::new(&gpu);
        let splits_before = gpu.device().split_submissions();
        staged_then_copied(&coordinator, &buffer, &data);
        let seen = readback.read(&gpu, buffer.raw());
        if seen != data {
            let wrong = seen.iter().zip(&data).filter(|(a, b)| a != b).count();
            report
                .failures
                .push(format!("lanes {lanes}: {wrong} bytes wrong on readback"));
        }
        let runs: Vec<(f64, f64)> = (0..reps)
            .map(|_| staged_then_copied(&coordinator, &buffer, &data))
            .collect();
        let splits = gpu.device().split_submissions() - splits_before;
        let copy = median(runs.iter().map(|r| r.1).collect());
        let stage = median(runs.iter().map(|r| r.0).collect());
        report.add(
            &format!(
                "1. bulk 256 MiB staged first, copied over {} queue(s)",
                queues.len()
            ),
            gbps(BIG, copy),
            "GB/s",
            &format!(
                "on {}; {} of {} submissions split; staging write (1 thread) {:.1} GB/s, \
                 end to end {:.1} GB/s; readback checked",
                queues.join(","),
                splits,
                reps + 1,
                gbps(BIG, stage),
                gbps(BIG, stage + copy)
            ),
        );
        drop(buffer);
        drop(coordinator);
        readback.destroy(&gpu);
        let Ok(h) = gpu.try_unwrap() else {
            panic!("the coordinator was dropped, so the bench holds the only handle");
        };
        let messages = h.finish();
        report
            .failures
            .extend(messages.into_iter().map(|m| format!("validation: {m}")));
    }
}
