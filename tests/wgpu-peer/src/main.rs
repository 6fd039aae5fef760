//! memkit's upload workloads (tests/benches/uploads.rs) through wgpu on a Vulkan device: the peer
//! for issue 6 target 5 ("memkit at least 2x faster than wgpu's `Queue::write_buffer` and
//! `StagingBelt` on 65536 scattered 4 KiB and 256 B uploads").
//!
//!     cargo run --release --locked -- [--quick] [--only buffers|textures|readbacks|constants]
//!         [--json PATH]
//!
//! Vulkan backend only, validation off; the adapter is whatever the Vulkan loader finds
//! (`VK_DRIVER_FILES` chooses the driver). Every figure is the median of the timed repetitions
//! after one warm-up, each timed from the first CPU write to the GPU's completion
//! (`Device::poll` waiting on the submission). The first timed repetition of every case is
//! checked byte for byte: the target buffer is cleared before it and copied into a `MAP_READ`
//! buffer after it, so a path that drops or misplaces uploads cannot look fast.
//!
//! 1. bulk: one 256 MiB upload (the belt gets it in chunk-sized writes, as its chunks are sized);
//! 2. 65536 uploads of 4 KiB into random distinct 4 KiB slots of one 256 MiB buffer;
//! 3. 65536 uploads of 256 B into random distinct 256 B slots of one 256 MiB buffer.
//!
//! Paths: `Queue::write_buffer` per upload then one empty submit (which flushes the queue's
//! pending writes); `util::StagingBelt` with 16 and 64 MiB chunks, one `write_buffer` per upload
//! into one encoder, then `finish`, submit, `recall`. Slots come from the same seeded generator
//! and shuffle as memkit's benchmark, so both write the same offsets in the same order.
//!
//! 8. textures (module `textures`): `create_texture` and `Queue::write_texture` per level for the
//!    images bench's 32 2048x2048 RGBA8 textures with their mips, and level-0 re-uploads.
//!
//! W. read-backs (module `readbacks`): the read-back bench's 1024 x 4 KiB, 64 x 1 MiB and
//!    4 x 64 MiB ranges of one 256 MiB buffer brought to the CPU through `map_async`: one at a
//!    time, all in flight into new buffers and `Vec`s, and all in flight into reused buffers
//!    (copied into reused memory, or mapped views only).
//!
//! 8. frame constants (module `constants`): 4096 constant blocks of 256 B written per frame
//!    into a two-slot uniform buffer, 2 frames in flight, each frame's slot copied by the GPU:
//!    `Queue::write_buffer` per draw and per frame, `Queue::write_buffer_with` per frame,
//!    `StagingBelt` per draw, and from four jobs on a persistent job pool `Queue::write_buffer`
//!    per draw and `Queue::write_buffer_with` per job.
//!
//! `--only buffers` runs 1-3, `--only textures` runs 8 (textures), `--only readbacks` runs W,
//! `--only constants` runs 8 (frame constants); all by default. `--quick`: 4096 uploads into a
//! 16 MiB buffer, a 16 MiB bulk upload, 8 small textures, a quarter of the reads, 12 frames of
//! constants, 3 repetitions; for checking the program, not for figures.

use std::num::NonZeroU64;
use std::time::Instant;

// The same generator, slot choice, table and JSON as memkit's benchmark (tests/benches/uploads.rs).
use memkit_tests::bench_report::{Report, gbps, median, scattered_offsets};
use memkit_tests::workloads::SplitMix64 as Rng;

/// The wgpu this program is built against: keep in step with the `=` pin in Cargo.toml.
const WGPU_VERSION: &str = "30.0.1";

const MIB: u64 = 1 << 20;

mod constants;
mod readbacks;
mod textures;

/// Staging-belt chunk sizes measured.
const BELT_CHUNKS: [u64; 2] = [16 * MIB, 64 * MIB];

// ---- wgpu ----------------------------------------------------------------------------------------

/// Drives a future that wgpu's native backends resolve without waiting (adapter and device
/// requests); no executor crate needed.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
}

impl Gpu {
    fn new() -> (Self, wgpu::AdapterInfo) {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::VULKAN,
            // No validation or debug labels: the figures are for the plain upload paths.
            flags: wgpu::InstanceFlags::empty(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            // The adapter's real limits, not fingerprinting buckets.
            apply_limit_buckets: false,
        }))
        .expect("a Vulkan adapter (is a Vulkan driver installed?)");
        let info = adapter.get_info();
        let (device, queue) = block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgpu-peer"),
            // The adapter's limits: the default max_buffer_size is exactly 256 MiB already,
            // but the readback and bulk staging buffers should not depend on that.
            required_limits: adapter.limits(),
            // BC textures where the adapter has them, for the textures' BC7 case.
            required_features: adapter.features() & wgpu::Features::TEXTURE_COMPRESSION_BC,
            ..wgpu::DeviceDescriptor::default()
        }))
        .expect("a wgpu device");
        (Gpu { device, queue }, info)
    }

    /// Waits until the GPU finished `submission` (and runs map callbacks).
    fn wait(&self, submission: wgpu::SubmissionIndex) {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .expect("poll");
    }

    fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    /// Zeroes `target` on the GPU and waits, so stale bytes cannot pass a check.
    fn clear(&self, target: &wgpu::Buffer) {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.clear_buffer(target, 0, None);
        let submission = self.queue.submit([encoder.finish()]);
        self.wait(submission);
    }

    /// Submits `encoder`, whose copies land in `readback` (a `MAP_READ` buffer), maps all of
    /// `readback` once the GPU finished them and hands its bytes to `read`; unmaps after.
    fn read_mapped<R>(
        &self,
        encoder: wgpu::CommandEncoder,
        readback: &wgpu::Buffer,
        read: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let submission = self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| tx.send(r).expect("send"));
        self.wait(submission);
        rx.recv().expect("map callback").expect("map readback");
        let result = read(
            &readback
                .slice(..)
                .get_mapped_range()
                .expect("mapped readback"),
        );
        readback.unmap();
        result
    }

    /// Copies `target` into `readback` (a `MAP_READ` buffer of the same size), maps it and
    /// counts the uploads whose bytes differ from their source.
    fn count_wrong(
        &self,
        target: &wgpu::Buffer,
        readback: &wgpu::Buffer,
        work: &Work<'_>,
    ) -> usize {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(target, 0, readback, 0, target.size());
        self.read_mapped(encoder, readback, |seen| {
            (0..work.offsets.len())
                .filter(|&i| {
                    let o = work.offsets[i] as usize;
                    seen[o..o + work.size] != work.source[i * work.size..(i + 1) * work.size]
                })
                .count()
        })
    }
}

/// One case's uploads: upload `i` writes `source[i * size..][..size]` at `offsets[i]`.
struct Work<'a> {
    source: &'a [u8],
    offsets: &'a [u64],
    size: usize,
}

impl Work<'_> {
    fn bytes(&self) -> u64 {
        (self.offsets.len() * self.size) as u64
    }
    fn upload(&self, i: usize) -> (u64, &[u8]) {
        (
            self.offsets[i],
            &self.source[i * self.size..(i + 1) * self.size],
        )
    }
}

/// An upload path under test.
enum Path {
    /// `Queue::write_buffer` per upload, then one empty submit.
    WriteBuffer,
    /// `util::StagingBelt` with chunks of this many bytes.
    Belt(u64),
}

impl Path {
    fn label(&self) -> String {
        match self {
            Path::WriteBuffer => format!("wgpu {WGPU_VERSION} Queue::write_buffer"),
            Path::Belt(chunk) => {
                format!("wgpu {WGPU_VERSION} StagingBelt {} MiB chunks", chunk / MIB)
            }
        }
    }
}

/// Runs every upload of `work` into `target` through `path` and waits for the GPU; returns
/// seconds from the first CPU write to completion.
fn timed(
    gpu: &Gpu,
    path: &Path,
    belt: Option<&mut wgpu::util::StagingBelt>,
    target: &wgpu::Buffer,
    work: &Work<'_>,
) -> f64 {
    let start = Instant::now();
    let submission = match path {
        Path::WriteBuffer => {
            for i in 0..work.offsets.len() {
                let (offset, data) = work.upload(i);
                gpu.queue.write_buffer(target, offset, data);
            }
            // An empty submit flushes the queue's pending writes.
            gpu.queue.submit([])
        }
        Path::Belt(_) => {
            let belt = belt.expect("a belt for the belt path");
            let size = NonZeroU64::new(work.size as u64).expect("non-empty uploads");
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            for i in 0..work.offsets.len() {
                let (offset, data) = work.upload(i);
                belt.write_buffer(&mut encoder, target, offset, size)
                    .copy_from_slice(data);
            }
            belt.finish();
            let submission = gpu.queue.submit([encoder.finish()]);
            belt.recall();
            submission
        }
    };
    gpu.wait(submission);
    start.elapsed().as_secs_f64()
}

/// The sizes of one run.
struct Sizes {
    /// The target buffer (and the bulk upload).
    buffer: u64,
    /// Scattered uploads per case.
    count: usize,
    /// Timed repetitions per case (after one warm-up).
    reps: usize,
}

/// Measures `work` through `path`: a warm-up with other bytes, a cleared target, a first timed
/// repetition checked by readback, then the remaining repetitions. Adds the median.
#[allow(clippy::too_many_arguments)]
fn measure(
    report: &mut Report,
    gpu: &Gpu,
    path: &Path,
    target: &wgpu::Buffer,
    readback: &wgpu::Buffer,
    name: &str,
    work: &Work<'_>,
    warmup_source: &[u8],
    reps: usize,
) {
    let mut belt = match path {
        Path::WriteBuffer => None,
        Path::Belt(chunk) => Some(wgpu::util::StagingBelt::new(gpu.device.clone(), *chunk)),
    };
    let warmup = Work {
        source: warmup_source,
        ..*work
    };
    timed(gpu, path, belt.as_mut(), target, &warmup);
    gpu.clear(target);
    let mut times = vec![timed(gpu, path, belt.as_mut(), target, work)];
    let wrong = gpu.count_wrong(target, readback, work);
    if wrong > 0 {
        report.failures.push(format!(
            "{name}: {wrong} of {} uploads wrong on readback",
            work.offsets.len()
        ));
    }
    times.extend((1..reps).map(|_| timed(gpu, path, belt.as_mut(), target, work)));
    let t = median(times);
    report.add(
        name,
        gbps(work.bytes(), t),
        "GB/s",
        &format!(
            "{:.1} ms; median of {reps}; readback {}",
            t * 1e3,
            if wrong == 0 { "ok" } else { "WRONG" }
        ),
    );
}

fn run(report: &mut Report, gpu: &Gpu, sizes: &Sizes) {
    let paths: Vec<Path> = std::iter::once(Path::WriteBuffer)
        .chain(BELT_CHUNKS.iter().map(|&c| Path::Belt(c)))
        .collect();
    let target = gpu.buffer(
        "target",
        sizes.buffer,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    );
    let readback = gpu.buffer(
        "readback",
        sizes.buffer,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
    );
    let len = sizes.buffer as usize;
    let mut source = vec![0u8; len];
    let mut warmup = vec![0u8; len];
    // Fresh bytes per case, so no earlier case's data can pass a check.
    let mut seed = 200;
    let mut fresh = |source: &mut [u8], warmup: &mut [u8]| {
        seed += 2;
        Rng::new(seed).fill(source);
        Rng::new(seed + 1).fill(warmup);
    };

    // 1. bulk: one upload of the whole buffer; the belt takes it in chunk-sized writes.
    let bulk_name = if sizes.buffer == 256 * MIB {
        "256 MiB".to_owned()
    } else {
        format!("{} MiB", sizes.buffer / MIB)
    };
    for path in &paths {
        fresh(&mut source, &mut warmup);
        let piece = match path {
            Path::WriteBuffer => len,
            Path::Belt(chunk) => (*chunk as usize).min(len),
        };
        let offsets: Vec<u64> = (0..len / piece).map(|i| (i * piece) as u64).collect();
        let work = Work {
            source: &source,
            offsets: &offsets,
            size: piece,
        };
        let name = format!("1. bulk {bulk_name}, {}, 1 producer(s)", path.label());
        measure(
            report, gpu, path, &target, &readback, &name, &work, &warmup, sizes.reps,
        );
    }

    // 2. and 3. scattered uploads into random distinct slots.
    for (label, size) in [("2.", 4096usize), ("3.", 256)] {
        let offsets = scattered_offsets(
            &mut Rng::new(size as u64),
            sizes.buffer,
            size as u64,
            sizes.count,
        );
        let n = sizes.count * size;
        for path in &paths {
            fresh(&mut source[..n], &mut warmup[..n]);
            let work = Work {
                source: &source[..n],
                offsets: &offsets,
                size,
            };
            let into = if sizes.buffer == 256 * MIB {
                String::new()
            } else {
                format!(" into {} MiB", sizes.buffer / MIB)
            };
            let name = format!(
                "{label} {} x {size} B scattered{into}, {}, 1 producer(s)",
                sizes.count,
                path.label()
            );
            measure(
                report,
                gpu,
                path,
                &target,
                &readback,
                &name,
                &work,
                &warmup[..n],
                sizes.reps,
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    const SECTIONS: [&str; 4] = ["buffers", "textures", "readbacks", "constants"];
    if let Some(o) = &only
        && !SECTIONS.contains(&o.as_str())
    {
        eprintln!("--only takes `buffers`, `textures`, `readbacks` or `constants`, not `{o}`");
        std::process::exit(2);
    }
    // Every section without `--only`, else the one it names.
    let runs = |section: &str| only.as_deref().is_none_or(|o| o == section);
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned());
    let sizes = if quick {
        Sizes {
            buffer: 16 * MIB,
            count: 4096,
            reps: 3,
        }
    } else {
        Sizes {
            buffer: 256 * MIB,
            count: 65536,
            reps: 7,
        }
    };

    let (gpu, info) = Gpu::new();
    let mut report = Report {
        device: format!("{} ({:?})", info.name, info.device_type),
        peer: Some(format!("wgpu {WGPU_VERSION} (Vulkan backend)")),
        name_width: 100,
        ..Report::default()
    };
    println!("device: {}", report.device);
    println!(
        "wgpu {WGPU_VERSION}, {:?} backend, driver {} {}",
        info.backend, info.driver, info.driver_info
    );
    if runs("buffers") || runs("textures") {
        // The read-backs print their own (their clock stops at the CPU, not the GPU).
        println!(
            "each figure: median of {} after one warm-up, first CPU write to GPU completion",
            sizes.reps
        );
    }
    println!("{:<100} {:>10} {:<5} note", "figure", "value", "unit");
    if runs("buffers") {
        run(&mut report, &gpu, &sizes);
    }
    if runs("textures") {
        textures::run(&mut report, &gpu, quick, sizes.reps);
    }
    if runs("readbacks") {
        readbacks::run(&mut report, &gpu, quick, sizes.reps);
    }
    if runs("constants") {
        constants::run(&mut report, &gpu, quick, sizes.reps);
    }

    for f in &report.failures {
        eprintln!("FAILED: {f}");
    }
    if let Some(path) = json {
        std::fs::write(&path, report.json()).expect("write the JSON report");
        println!("wrote {path}");
    }
    if !report.failures.is_empty() {
        std::process::exit(1);
    }
}
