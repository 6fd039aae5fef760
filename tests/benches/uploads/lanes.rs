//! Copy lanes through the coordinator: one 256 MiB upload staged first, then submitted as one
//! batch that memkit-vulkan splits over 1 + 0, 1, 3, 7 and 15 queues (`HeadlessConfig::copy_lanes`).
//! Timed from the submission to the GPU's completion, the part a pinned copy measures too (its
//! bytes already sit in pinned memory); the staging write is reported beside it. Every queue
//! count's result is read back once and compared byte for byte.
//!
//! Then the same as back-to-back uploads, the way the bus limit is measured (../shared/GPU.md's
//! PyTorch pinned copy issues ten 256 MiB copies and waits once): [`BACK_TO_BACK`] uploads of
//! 256 MiB to as many buffers, staged first, submitted by one flush and waited once. A single
//! upload also pays the flush call and the wake-up of the waiting thread, each reported beside it
//! (on an H200: 70-200 us and up to about 280 us, against 5.4 ms of copying); back to back, the
//! copies' own rate shows.

use std::time::Instant;

use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage};
use memkit_tests::bench_report::{Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice};

use crate::{BIG, Gpu, Readback};

/// Uploads of BIG bytes in the back-to-back figure.
const BACK_TO_BACK: usize = 4;

/// One single upload's times, in seconds.
struct Timed {
    /// Writing the bytes into the staging ring.
    stage: f64,
    /// The `flush_transfers` call alone (planning, recording and submitting).
    flush: f64,
    /// From the submission to completion seen by the waiting thread.
    copy: f64,
}

/// Stages all of `data` into `buffer` without submitting, then submits and waits: blocked in the
/// driver (`Ticket::wait`), or, with `poll`, spinning on `Ticket::is_complete` so the driver's
/// wake-up of a blocked thread is left out (that difference is the wake-up's cost).
fn staged_then_copied(
    coordinator: &Coordinator<Gpu>,
    buffer: &memkit_std::Buffer<Gpu>,
    data: &[u8],
    poll: bool,
) -> Timed {
    let start = Instant::now();
    coordinator.upload_to(buffer, 0, data).expect("upload");
    let staged = Instant::now();
    let ticket = coordinator.flush_transfers().expect("flush");
    let flushed = Instant::now();
    if poll {
        while !ticket.is_complete().expect("poll") {
            std::hint::spin_loop();
        }
    } else {
        ticket.wait().expect("wait");
    }
    Timed {
        stage: staged.duration_since(start).as_secs_f64(),
        flush: flushed.duration_since(staged).as_secs_f64(),
        copy: staged.elapsed().as_secs_f64(),
    }
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
            // Room for the back-to-back uploads, and slack for where the ring's head stands.
            staging_ring_size: (BACK_TO_BACK as u64 + 2) * BIG,
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
        staged_then_copied(&coordinator, &buffer, &data, false);
        let seen = readback.read(&gpu, buffer.raw());
        if seen != data {
            let wrong = seen.iter().zip(&data).filter(|(a, b)| a != b).count();
            report
                .failures
                .push(format!("lanes {lanes}: {wrong} bytes wrong on readback"));
        }
        let runs: Vec<Timed> = (0..reps)
            .map(|_| staged_then_copied(&coordinator, &buffer, &data, false))
            .collect();
        let polled: Vec<Timed> = (0..reps)
            .map(|_| staged_then_copied(&coordinator, &buffer, &data, true))
            .collect();
        let splits = gpu.device().split_submissions() - splits_before;
        let copy = median(runs.iter().map(|r| r.copy).collect());
        let stage = median(runs.iter().map(|r| r.stage).collect());
        let flush = median(runs.iter().map(|r| r.flush).collect());
        let polled_copy = median(polled.iter().map(|r| r.copy).collect());
        report.add(
            &format!(
                "1. bulk 256 MiB staged first, copied over {} queue(s)",
                queues.len()
            ),
            gbps(BIG, copy),
            "GB/s",
            &format!(
                "on {}; {} of {} submissions split; flush call {:.0} us; polled instead of \
                 blocked: {:.1} GB/s; staging write (1 thread) {:.1} GB/s, end to end {:.1} GB/s; \
                 readback checked",
                queues.join(","),
                splits,
                2 * reps + 1,
                flush * 1e6,
                gbps(BIG, polled_copy),
                gbps(BIG, stage),
                gbps(BIG, stage + copy)
            ),
        );
        back_to_back(
            report,
            &coordinator,
            &buffer,
            &data,
            &gpu,
            &readback,
            reps,
            &queues,
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

/// The back-to-back figure for one queue count: [`BACK_TO_BACK`] uploads of `data` (the first
/// into `first`, the others into buffers made here), staged, flushed once and waited once.
/// Returns nothing; adds the figure (or a readback failure) to `report`.
#[allow(clippy::too_many_arguments)]
fn back_to_back(
    report: &mut Report,
    coordinator: &Coordinator<Gpu>,
    first: &memkit_std::Buffer<Gpu>,
    data: &[u8],
    gpu: &Gpu,
    readback: &Readback,
    reps: usize,
    queues: &[String],
) {
    let others: Vec<memkit_std::Buffer<Gpu>> = (1..BACK_TO_BACK)
        .map(|_| {
            coordinator
                .create_buffer(BIG, MemoryUsage::FAST_DEVICE_ACCESS)
                .expect("buffer")
        })
        .collect();
    let buffers: Vec<&memkit_std::Buffer<Gpu>> =
        std::iter::once(first).chain(others.iter()).collect();
    let round = || {
        for buffer in &buffers {
            coordinator.upload_to(buffer, 0, data).expect("upload");
        }
        let submitted = Instant::now();
        coordinator
            .flush_transfers()
            .expect("flush")
            .wait()
            .expect("wait");
        submitted.elapsed().as_secs_f64()
    };
    round();
    for (i, buffer) in buffers.iter().enumerate() {
        if readback.read(gpu, buffer.raw()) != data {
            report.failures.push(format!(
                "back to back on {} queue(s): upload {i} wrong on readback",
                queues.len()
            ));
        }
    }
    let copy = median((0..reps).map(|_| round()).collect());
    report.add(
        &format!(
            "1. bulk {BACK_TO_BACK} x 256 MiB back to back, staged first, copied over {} queue(s)",
            queues.len()
        ),
        gbps(BACK_TO_BACK as u64 * BIG, copy),
        "GB/s",
        &format!(
            "on {}; one flush, one wait, as the pinned copy's ten copies and one sync; \
             readback checked",
            queues.join(",")
        ),
    );
}
