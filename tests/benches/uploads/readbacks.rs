//! Read-backs: device-local bytes brought to the CPU, against the device-to-host bus limit measured
//! in the same run.
//!
//! - the raw rate: one 256 MiB `vkCmdCopyBuffer` from device-local memory into host-visible
//!   (cached where the device has it) memory, timed to completion;
//! - the naive path, what an engine writes by hand (and what a `wgpu` `map_async` per read comes
//!   to): per read, a host-visible buffer made, one copy submitted, a wait, the bytes copied out,
//!   the buffer destroyed;
//! - the coordinator's `read_back`, every read asked for first and then waited for in order (the
//!   reads in flight together), into a new `Vec` each (`wait`) or into the caller's reused
//!   memory (`wait_into`) or lent where they landed (`wait_mapped`, no copy: the time ends once
//!   every read's bytes can be read), and one at a time (`read_back` then `wait`, as the naive path). The
//!   coordinator keeps the landing buffers read-backs held at once for later ones (within
//!   `read_back_cache_bytes`, 1 GiB by default), so after the first repetition the reads land in
//!   memory already mapped;
//! - where one 64 MiB read-back's time goes (R4): the call, the GPU's copy, the host's copy out;
//! - how late a blocking wait on the timeline returns after a copy completed, against polling
//!   the completed value (R5: what `CoordinatorConfig::wait_poll` is for);
//! - the device-to-host rate of the moment (R6): one 64 MiB pair made first, copied at the start,
//!   after the raw figures and after the coordinator. On the H200 that rate moved between about
//!   50 and 37 GB/s within one run, for every buffer alike (session 29: the coordinator's 64 MiB
//!   copy ran at the raw rate of the moment), so R4 is compared with the last of these.
//!
//! Each case reads `count` ranges of `size` bytes at distinct offsets of one 256 MiB device-local
//! buffer filled with random bytes; times run from the first call to the last read's bytes in a
//! `Vec`, host copy included. The coordinator's first repetition of each case is compared byte
//! for byte with the bytes uploaded.

use std::time::Instant;

use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, MemoryDevice,
    MemoryPropertyFlags, WaitStatus,
};
use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage};
use memkit_tests::bench_report::{
    READ_BACK_CASES, READ_BACK_SOURCE, Report, gbps, median, read_back_offset as offset,
    read_back_size_label as size_label,
};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, HostBuffer, VulkanDevice};

use crate::{Gpu, MIB, bound, bound_with, copy_and_wait, timed};

/// The raw figure's name.
const RAW: &str = "R1. raw vkCmdCopyBuffer 256 MiB device-local -> host (read-back bus limit)";

pub fn run(report: &mut Report, reps: usize, quick: bool, validate: bool) {
    let h = HeadlessDevice::new(HeadlessConfig {
        concurrent_with_main_family: true,
        validation: validate,
        ..HeadlessConfig::default()
    })
    .expect("a Vulkan device");
    let mut data = vec![0u8; READ_BACK_SOURCE as usize];
    Rng::new(41).fill(&mut data);
    let cases: Vec<(u64, u64)> = READ_BACK_CASES
        .iter()
        .map(|&(size, count)| (size, if quick { count.div_ceil(4) } else { count }))
        .collect();
    // R6: a 64 MiB pair made before anything else, copied at the start, after the raw figures
    // and after the coordinator: the device-to-host rate of the moment.
    let early = (
        bound(
            h.device(),
            64 * MIB,
            BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
            false,
        ),
        bound_with(
            h.device(),
            64 * MIB,
            BufferUsage::TRANSFER_DST,
            MemoryPropertyFlags::HOST_VISIBLE | MemoryPropertyFlags::HOST_CACHED,
            MemoryPropertyFlags::DEVICE_LOCAL,
        ),
    );
    let checkpoint = |report: &mut Report, device: &VulkanDevice, when: &str| {
        checkpoint(report, device, &early, reps, when)
    };
    checkpoint(report, h.device(), "first of all");
    // `--skip-naive` leaves the naive path out (and the ratios to it): in every H200 run of
    // session 29 the device-to-host rate fell from 50 to 37 GB/s for the rest of the process
    // during it (R6), and stayed at 50 in the wgpu peer's process.
    let skip_naive = std::env::args().any(|a| a == "--skip-naive");
    let naive = raw_and_naive(report, h.device(), &data, reps, &cases, skip_naive);
    checkpoint(report, h.device(), "after the raw and naive figures");

    let gpu = Gpu::new(h);
    // `--read-back-cache MIB` sets `read_back_cache_bytes` (0: every read-back makes and
    // destroys its landing buffer) and `--read-back-submit MIB` sets `read_back_submit_bytes`
    // (0: each read-back submitted alone), to compare settings in one build.
    let mut config = CoordinatorConfig::default();
    let args: Vec<String> = std::env::args().collect();
    let mib = |flag: &str| {
        let at = args.iter().position(|a| a == flag)?;
        let value = args.get(at + 1).and_then(|v| v.parse::<u64>().ok());
        Some(value.unwrap_or_else(|| panic!("{flag} takes a number of MiB")) * MIB)
    };
    if let Some(bytes) = mib("--read-back-cache") {
        config.read_back_cache_bytes = bytes;
    }
    if let Some(bytes) = mib("--read-back-submit") {
        config.read_back_submit_bytes = bytes;
    }
    // `--wait-poll US` sets `wait_poll` (0: tickets block in the driver at once).
    if let Some(at) = args.iter().position(|a| a == "--wait-poll") {
        let us = args.get(at + 1).and_then(|v| v.parse::<u64>().ok());
        config.wait_poll = std::time::Duration::from_micros(
            us.expect("--wait-poll takes a number of microseconds"),
        );
    }
    println!(
        "read-backs: landing cache {} MiB, batches submitted at {} MiB, tickets poll {:?}",
        config.read_back_cache_bytes / MIB,
        config.read_back_submit_bytes / MIB,
        config.wait_poll
    );
    let coordinator = Coordinator::new(gpu.clone(), config).expect("coordinator");
    let source = coordinator
        .create_buffer(READ_BACK_SOURCE, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    coordinator
        .upload_to(&source, 0, &data)
        .and_then(|t| t.wait())
        .expect("upload");
    for (&(size, count), naive) in cases.iter().zip(naive) {
        let bytes = size * count;
        let mut batched = Vec::new();
        let mut serial = Vec::new();
        let mut into = Vec::new();
        let mut mapped = Vec::new();
        // The caller's buffers for `wait_into`, written once before timing: reused memory, as an
        // engine that reads back every frame keeps.
        let mut outs: Vec<Vec<u8>> = (0..count).map(|_| vec![1u8; size as usize]).collect();
        // Every read of the case asked for, none waited for: all in flight together.
        let read_all = || -> Vec<_> {
            (0..count)
                .map(|i| coordinator.read_back(&source, offset(i, size), size))
                .collect::<Result<_, _>>()
                .expect("read_back")
        };
        for rep in 0..reps + 1 {
            let start = Instant::now();
            let reads = read_all();
            let got: Vec<Vec<u8>> = reads.into_iter().map(|r| r.wait().expect("wait")).collect();
            let t = start.elapsed().as_secs_f64();
            if rep == 0 {
                // The first repetition warms the pools and is checked instead of timed.
                for (i, g) in got.iter().enumerate() {
                    let o = offset(i as u64, size) as usize;
                    if g[..] != data[o..o + size as usize] {
                        report.failures.push(format!(
                            "read-back of {size} B at {o}: other bytes than uploaded"
                        ));
                    }
                }
                continue;
            }
            batched.push(t);
            let start = Instant::now();
            for i in 0..count {
                let read = coordinator
                    .read_back(&source, offset(i, size), size)
                    .expect("read_back");
                std::hint::black_box(read.wait().expect("wait"));
            }
            serial.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            let reads = read_all();
            for (read, out) in reads.iter().zip(&mut outs) {
                read.wait_into(out).expect("wait");
            }
            into.push(start.elapsed().as_secs_f64());
            drop(reads);
            // The bytes lent where they landed (`wait_mapped`), no copy: the time ends once every
            // read's bytes can be read (one byte of each is).
            let start = Instant::now();
            let reads = read_all();
            for read in &reads {
                let bytes = read.wait_mapped(&coordinator).expect("wait_mapped");
                std::hint::black_box(bytes[bytes.len() - 1]);
            }
            mapped.push(start.elapsed().as_secs_f64());
            if rep == 1 {
                // The views of this repetition are checked, untimed.
                for (i, read) in reads.iter().enumerate() {
                    let o = offset(i as u64, size) as usize;
                    let bytes = read.wait_mapped(&coordinator).expect("wait_mapped");
                    if bytes != &data[o..o + size as usize] {
                        report.failures.push(format!(
                            "mapped read-back of {size} B at {o}: other bytes than uploaded"
                        ));
                    }
                }
            }
            drop(reads);
        }
        let label = format!("{count} x {}", size_label(size));
        for (how, t) in [
            ("all in flight", median(batched)),
            ("all in flight, wait_into reused memory", median(into)),
            ("all in flight, wait_mapped (no copy)", median(mapped)),
            ("one at a time", median(serial)),
        ] {
            report.add(
                &format!("R2. coordinator read_back, {label}, {how}"),
                gbps(bytes, t),
                "GB/s",
                &format!(
                    "{:.1} us per read{}",
                    t * 1e6 / count as f64,
                    naive.map_or(String::new(), |n| format!("; {:.2}x the naive path", n / t))
                ),
            );
        }
    }
    if let Some(bus) = report.get(RAW) {
        for &(size, count) in &cases {
            for how in [
                "all in flight",
                "all in flight, wait_into reused memory",
                "all in flight, wait_mapped (no copy)",
            ] {
                let name = format!(
                    "R2. coordinator read_back, {count} x {}, {how}",
                    size_label(size)
                );
                if let Some(v) = report.get(&name) {
                    report.add(&format!("{name} / raw copy"), v / bus, "x", "");
                }
            }
        }
    }
    phases(report, &coordinator, &source, &gpu, reps);
    let stats = coordinator.stats();
    println!(
        "read-backs: {} through the coordinator, {} MiB",
        stats.read_backs,
        stats.bytes_read_back / MIB
    );
    drop(source);
    drop(coordinator);
    // The coordinator is gone, so raw submissions are safe again: the device-to-host rate now,
    // which R4's copy is compared with (the H200's rate changes within a run; see R6).
    let end = "after the coordinator";
    checkpoint(report, gpu.device(), end);
    let r4 = "R4. one 64 MiB read_back, landing buffer kept: GPU copy";
    let raw_end = format!("R6. raw 64 MiB copy of the pair made first, {end}");
    if let (Some(r4_rate), Some(raw_rate)) = (report.get(r4), report.get(&raw_end)) {
        report.add(&format!("{r4} / R6 {end}"), r4_rate / raw_rate, "x", "");
    }
    // SAFETY: every copy of the pair completed (each checkpoint polls its copies to the end).
    unsafe {
        for b in [early.0, early.1] {
            gpu.device().destroy_buffer(b.buffer);
            gpu.device().free_memory(b.memory);
        }
    }
    let Ok(h) = gpu.try_unwrap() else {
        panic!("the coordinator was dropped, so the bench holds the only handle");
    };
    report
        .failures
        .extend(h.finish().into_iter().map(|m| format!("validation: {m}")));
}

/// The raw device-to-host rate and the naive path on the device before any coordinator runs on
/// it (they submit on its timeline). Returns the naive path's median seconds per case (`None`
/// each when `skip_naive`).
fn raw_and_naive(
    report: &mut Report,
    device: &VulkanDevice,
    data: &[u8],
    reps: usize,
    cases: &[(u64, u64)],
    skip_naive: bool,
) -> Vec<Option<f64>> {
    // The source: device-local, filled through host-visible staging.
    let staging = bound(device, READ_BACK_SOURCE, BufferUsage::TRANSFER_SRC, true);
    let source = bound(
        device,
        READ_BACK_SOURCE,
        BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
        false,
    );
    // Cached host memory where the device has it: what `MemoryUsage::DOWNLOAD` prefers.
    let target = bound_with(
        device,
        READ_BACK_SOURCE,
        BufferUsage::TRANSFER_DST,
        MemoryPropertyFlags::HOST_VISIBLE | MemoryPropertyFlags::HOST_CACHED,
        MemoryPropertyFlags::DEVICE_LOCAL,
    );
    // SAFETY: host-visible, not mapped elsewhere; unmapped before it is freed.
    let mapped = unsafe { device.map_memory(staging.memory) }.expect("map");
    // SAFETY: the mapping covers READ_BACK_SOURCE bytes, and nothing else touches it meanwhile.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), mapped.as_ptr(), data.len()) };
    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: READ_BACK_SOURCE,
    }];
    copy_and_wait(
        device,
        &[CopyCommand {
            src: staging.buffer,
            dst: source.buffer,
            regions: &whole,
        }],
    );
    let down = [CopyCommand {
        src: source.buffer,
        dst: target.buffer,
        regions: &whole,
    }];
    let raw = timed(reps.max(5), || copy_and_wait(device, &down));
    report.add(RAW, gbps(READ_BACK_SOURCE, raw), "GB/s", "");
    wake_ups(report, device, source.buffer, target.buffer, reps);

    let naive: Vec<Option<f64>> = cases
        .iter()
        .map(|&(size, count)| {
            if skip_naive {
                return None;
            }
            let t = median(
                (0..reps)
                    .map(|_| {
                        let s = Instant::now();
                        for i in 0..count {
                            std::hint::black_box(naive_read(device, source.buffer, i, size));
                        }
                        s.elapsed().as_secs_f64()
                    })
                    .collect(),
            );
            report.add(
                &format!(
                    "R3. naive: buffer + copy + wait per read, {count} x {}",
                    size_label(size)
                ),
                gbps(size * count, t),
                "GB/s",
                &format!("{:.1} us per read", t * 1e6 / count as f64),
            );
            Some(t)
        })
        .collect();

    // SAFETY: every copy completed (waited above); the staging mapping is this function's.
    unsafe {
        device.unmap_memory(staging.memory);
        for b in [staging, source, target] {
            device.destroy_buffer(b.buffer);
            device.free_memory(b.memory);
        }
    }
    naive
}

/// How late a blocking wait (`vkWaitSemaphores`) returns after a read-back copy completed: per
/// size, the median time from submission to the waiter running again when it blocks in the
/// driver at once, against when it polls the completed value (yielding) until the copy is done.
/// Then four 64 MiB copies in four submissions, all submitted before any is waited for, each
/// waited for in order (reads in flight, taken one by one): blocked on each, and polled.
fn wake_ups(
    report: &mut Report,
    device: &VulkanDevice,
    source: ash::vk::Buffer,
    target: ash::vk::Buffer,
    reps: usize,
) {
    let poll = |value: u64| poll_until(device, value);
    let block = |value: u64| {
        assert_eq!(
            device.wait(value, u64::MAX).expect("wait"),
            WaitStatus::Completed
        );
    };
    let submit = |at: u64, size: u64| submit_copy(device, source, target, at, size);
    for size in [MIB, 4 * MIB, 16 * MIB, 64 * MIB, 256 * MIB] {
        let time = |wait: &dyn Fn(u64)| {
            median(
                (0..reps.max(5))
                    .map(|_| {
                        let s = Instant::now();
                        wait(submit(0, size));
                        s.elapsed().as_secs_f64()
                    })
                    .collect(),
            )
        };
        let (blocked, polled) = (time(&block), time(&poll));
        report.add(
            &format!(
                "R5. raw {} copy + wait: blocked wait late by",
                size_label(size)
            ),
            (blocked - polled) * 1e6,
            "us",
            &format!(
                "blocked {:.0} us ({:.1} GB/s), polled {:.0} us ({:.1} GB/s)",
                blocked * 1e6,
                gbps(size, blocked),
                polled * 1e6,
                gbps(size, polled)
            ),
        );
    }
    let in_flight = |wait: &dyn Fn(u64)| {
        median(
            (0..reps.max(5))
                .map(|_| {
                    let s = Instant::now();
                    let values: Vec<u64> = (0..4).map(|i| submit(i * 64 * MIB, 64 * MIB)).collect();
                    for v in values {
                        wait(v);
                    }
                    s.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let (blocked, polled) = (in_flight(&block), in_flight(&poll));
    report.add(
        "R5. raw 4 x 64 MiB in flight, each waited in order: blocked / polled",
        blocked / polled,
        "x",
        &format!(
            "blocked {:.0} us ({:.1} GB/s), polled {:.0} us ({:.1} GB/s)",
            blocked * 1e6,
            gbps(256 * MIB, blocked),
            polled * 1e6,
            gbps(256 * MIB, polled)
        ),
    );
}

/// R6: the early pair's 64 MiB copy rate at a point of the run.
fn checkpoint(
    report: &mut Report,
    device: &VulkanDevice,
    early: &(crate::Bound, crate::Bound),
    reps: usize,
    when: &str,
) {
    let t = polled_copy(device, early.0.buffer, early.1.buffer, 64 * MIB, reps);
    report.add(
        &format!("R6. raw 64 MiB copy of the pair made first, {when}"),
        gbps(64 * MIB, t),
        "GB/s",
        &format!("{:.0} us, polled", t * 1e6),
    );
}

/// Submits one copy of `size` bytes at offset `at` of both buffers, alone, with the device's
/// next value, and returns that value. Both buffers stay alive and bound until it completed.
fn submit_copy(
    device: &VulkanDevice,
    src: ash::vk::Buffer,
    dst: ash::vk::Buffer,
    at: u64,
    size: u64,
) -> u64 {
    let regions = [BufferCopy {
        src_offset: at,
        dst_offset: at,
        size,
    }];
    let value = device.last_submitted_value() + 1;
    // SAFETY: both buffers are alive, bound with transfer usages and hold the region (every
    // caller's buffers do), and stay so until the value completes (every caller waits for it).
    unsafe {
        device.submit_copies(
            &[CopyCommand {
                src,
                dst,
                regions: &regions,
            }],
            value,
        )
    }
    .expect("submit");
    value
}

/// Asks for the completed value until it reaches `value`, yielding between asks.
fn poll_until(device: &VulkanDevice, value: u64) {
    while device.completed_value().expect("completed") < value {
        std::thread::yield_now();
    }
}

/// The median time of a `size`-byte copy from offset 0 of `src` to offset 0 of `dst`, submitted
/// alone and polled to completion.
fn polled_copy(
    device: &VulkanDevice,
    src: ash::vk::Buffer,
    dst: ash::vk::Buffer,
    size: u64,
    reps: usize,
) -> f64 {
    median(
        (0..reps.max(5))
            .map(|_| {
                let start = Instant::now();
                poll_until(device, submit_copy(device, src, dst, 0, size));
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// One naive read: `size` bytes of `source` at read `i`'s offset.
fn naive_read(device: &VulkanDevice, source: ash::vk::Buffer, i: u64, size: u64) -> Vec<u8> {
    let readback = HostBuffer::new(device, size, BufferUsage::TRANSFER_DST).expect("buffer");
    let region = [BufferCopy {
        src_offset: offset(i, size),
        dst_offset: 0,
        size,
    }];
    let value = device.last_submitted_value() + 1;
    let copy = [CopyCommand {
        src: source,
        dst: readback.buffer(),
        regions: &region,
    }];
    // SAFETY: both buffers are alive and bound until the wait below; the region lies in both;
    // the value is the device's next.
    unsafe { device.submit_copies(&copy, value) }.expect("submit");
    assert_eq!(
        device.wait(value, u64::MAX).expect("wait"),
        WaitStatus::Completed
    );
    // SAFETY: the copy completed, and memkit-vulkan's copies end with a barrier to host reads.
    let bytes = unsafe { readback.read(device) }.expect("read");
    // SAFETY: the only submission using it completed.
    unsafe { readback.destroy(device) };
    bytes
}

/// Where one 64 MiB read-back's time goes, one at a time with its landing buffer kept from the
/// last: the `read_back` call (landing buffer, flush, submission), the GPU's copy (`ticket().wait()`),
/// and the host's copy out (`wait_into` reused memory); and the memory type
/// `MemoryUsage::DOWNLOAD` buffers of that size get.
fn phases(
    report: &mut Report,
    coordinator: &Coordinator<Gpu>,
    source: &memkit_std::Buffer<Gpu>,
    gpu: &Gpu,
    reps: usize,
) {
    let size = 64 * MIB;
    let probe = coordinator
        .create_buffer(size, MemoryUsage::DOWNLOAD)
        .expect("download buffer");
    let flags = gpu.memory_properties().types()[probe.memory_type() as usize].properties;
    drop(probe);
    let mut out = vec![1u8; size as usize];
    let (mut call, mut copy, mut host) = (Vec::new(), Vec::new(), Vec::new());
    let before = coordinator.stats();
    for _ in 0..reps + 1 {
        let s = Instant::now();
        let read = coordinator.read_back(source, 0, size).expect("read_back");
        call.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        read.ticket().wait().expect("wait");
        copy.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        read.wait_into(&mut out).expect("wait_into");
        host.push(s.elapsed().as_secs_f64());
    }
    let (call, copy, host) = (median(call), median(copy), median(host));
    let after = coordinator.stats();
    println!(
        "R4: {} of {} landing buffers reused, {} buffers created, {} destroyed",
        after.read_back_buffers_reused - before.read_back_buffers_reused,
        reps + 1,
        after.buffers_created - before.buffers_created,
        after.buffers_destroyed - before.buffers_destroyed
    );
    report.add(
        "R4. one 64 MiB read_back, landing buffer kept: GPU copy",
        gbps(size, copy),
        "GB/s",
        &format!(
            "read_back call {:.0} us, GPU copy {:.0} us, host copy out {:.0} us ({:.1} GB/s); \
             DOWNLOAD memory {flags:?}",
            call * 1e6,
            copy * 1e6,
            host * 1e6,
            gbps(size, host)
        ),
    );
}
