//! Per-frame constants through wgpu (`--only constants`): the peer of the `uploads` bench's
//! frame-constants section (tests/benches/uploads/constants.rs), the same blocks in the same
//! frames.
//!
//! An engine writes, every frame, one constant block per draw (model matrix and the like) that
//! the GPU then reads: 4096 draws of 256 bytes (64 `u32` words) each, 1 MiB per frame, 120
//! frames per repetition, 2 frames in flight (before frame n is written, the GPU has finished
//! frame n-2's submission: `Device::poll` waits on its `SubmissionIndex`). Word `i` of draw `d`
//! in frame `f` is `(f as u32).wrapping_mul(0x9E37_79B9) ^ (d * 64 + i) as u32`, where `f` counts
//! every frame a path runs (the warm-up's first frame is 0, the repetitions carry on from there),
//! so no two frames of a path write the same bytes.
//!
//! The blocks go into one `UNIFORM | COPY_DST | COPY_SRC` buffer of two frame slots (frame `f`
//! into slot `f % 2`). The GPU's consumer, a stand-in for the shaders that would read them: per
//! frame one encoder with one `copy_buffer_to_buffer` of the frame's slot into a 1 MiB sink
//! buffer, and one `Queue::submit`. Paths:
//!
//! 1. `Queue::write_buffer` per draw (4096 per frame; the consumer's submit flushes them);
//! 2. the frame's blocks built into one reused `Vec<u8>`, one `Queue::write_buffer` per frame;
//! 3. `Queue::write_buffer_with` per frame, every block written straight into its view;
//! 4. `util::StagingBelt` with 1 MiB chunks (its docs: a chunk 1-4 times less than the bytes per
//!    `finish`, bigger is better; here 1 MiB per frame): `StagingBelt::write_buffer` per draw
//!    into the frame's encoder, the block written into its view, then the consumer's copy in the
//!    same encoder, `finish`, submit, `recall`;
//! 5. `Queue::write_buffer` per draw from [`THREADS`] command-recording jobs, job `j` writing
//!    draws `j * DRAWS / THREADS..(j + 1) * DRAWS / THREADS` into the frame's slot (the
//!    multi-threaded peer of memkit's `transient_writers`);
//! 6. `Queue::write_buffer_with` per job, [`THREADS`] jobs, each job's quarter of the slot
//!    written straight into its view (the peer of memkit's `transient_writers_with`).
//!
//! The threaded paths run their jobs on one persistent `rayon` pool of [`THREADS`] threads, built
//! once per run and given the frame's jobs in a `ThreadPool::scope` per frame, as an engine's job
//! system records commands and as memkit's threaded paths do: no thread starts per frame. The
//! consumer's submit follows the scope.
//!
//! Timed from the first CPU write of the first frame until the GPU completed the last frame's
//! submission; figures are the median of the timed repetitions after one warm-up: bytes over
//! wall time, wall time per frame, and the CPU time per frame spent only producing the blocks
//! and handing them to wgpu (the `write_buffer` calls, the view and its drop, the belt's writes
//! and its `finish`, the threaded paths' pool scope from start to end; not the wait for frames in
//! flight, the consumer's encoder and submit, or the belt's `recall`). After the last timed
//! repetition the sink (which holds the last frame's blocks) is read back and compared byte for
//! byte; the uniform buffer and the sink are zeroed before each path. `--quick`: 12 frames per
//! repetition.

use std::num::NonZeroU64;
use std::ops::Range;
use std::time::Instant;

use memkit_tests::bench_report::{Report, gbps, median};

use crate::{Gpu, MIB, WGPU_VERSION};

/// Draws per frame: one constant block each.
const DRAWS: usize = 4096;
/// Bytes per block.
const BLOCK: usize = 256;
/// `u32` words per block.
const WORDS: usize = BLOCK / 4;
/// Bytes per frame, and of one frame slot.
const FRAME_BYTES: u64 = (DRAWS * BLOCK) as u64;
/// Frames in flight: frame slots of the uniform buffer.
const SLOTS: u64 = 2;
/// Frames per repetition (`--quick`: `QUICK_FRAMES`).
const FRAMES: u64 = 120;
const QUICK_FRAMES: u64 = 12;
/// The staging belt's chunk size: the bytes of one frame.
const BELT_CHUNK: u64 = MIB;
/// Jobs writing one frame's blocks on the threaded paths, a quarter of the draws each.
const THREADS: usize = 4;
/// Draws per job.
const DRAWS_PER_JOB: usize = DRAWS / THREADS;
// The jobs split the draws evenly.
const _: () = assert!(DRAWS.is_multiple_of(THREADS));

/// Block `draw` of frame `frame`, as the bytes the GPU reads (little-endian words).
fn block(frame: u64, draw: usize) -> [u8; BLOCK] {
    let seed = (frame as u32).wrapping_mul(0x9E37_79B9);
    let mut out = [0u8; BLOCK];
    for (i, word) in out.chunks_exact_mut(4).enumerate() {
        word.copy_from_slice(&(seed ^ (draw * WORDS + i) as u32).to_le_bytes());
    }
    out
}

/// A way of writing a frame's constants.
#[derive(Clone, Copy)]
enum Path {
    WriteBufferPerDraw,
    WriteBufferPerFrame,
    WriteBufferWith,
    Belt,
    WriteBufferPerDrawThreads,
    WriteBufferWithPerJob,
}

impl Path {
    const ALL: [Path; 6] = [
        Path::WriteBufferPerDraw,
        Path::WriteBufferPerFrame,
        Path::WriteBufferWith,
        Path::Belt,
        Path::WriteBufferPerDrawThreads,
        Path::WriteBufferWithPerJob,
    ];

    fn label(self) -> String {
        let how = match self {
            Path::WriteBufferPerDraw => "Queue::write_buffer per draw".to_owned(),
            Path::WriteBufferPerFrame => "Queue::write_buffer per frame".to_owned(),
            Path::WriteBufferWith => "Queue::write_buffer_with per frame".to_owned(),
            Path::Belt => format!("StagingBelt {} MiB chunks per draw", BELT_CHUNK / MIB),
            Path::WriteBufferPerDrawThreads => {
                format!("Queue::write_buffer per draw, {THREADS} pool threads")
            }
            Path::WriteBufferWithPerJob => {
                format!("Queue::write_buffer_with per job, {THREADS} pool threads")
            }
        };
        format!("8. frame constants {DRAWS} x {BLOCK} B, wgpu {WGPU_VERSION} {how}")
    }
}

/// Runs `job` as [`THREADS`] jobs on `pool`, each over its quarter of the draws, and returns once
/// all of them are done.
fn in_jobs(pool: &rayon::ThreadPool, job: impl Fn(Range<usize>) + Sync) {
    pool.scope(|scope| {
        for j in 0..THREADS {
            let job = &job;
            scope.spawn(move |_| job(j * DRAWS_PER_JOB..(j + 1) * DRAWS_PER_JOB));
        }
    });
}

/// What one path keeps from one frame and one repetition to the next.
struct Frames<'a> {
    gpu: &'a Gpu,
    path: Path,
    uniform: &'a wgpu::Buffer,
    sink: &'a wgpu::Buffer,
    /// The belt path's belt.
    belt: Option<wgpu::util::StagingBelt>,
    /// The threaded paths' job pool, alive for the whole run.
    pool: &'a rayon::ThreadPool,
    /// The per-frame path's blocks, built here and written in one call.
    bytes: Vec<u8>,
    /// The next frame's number, counted over every repetition of the path.
    next: u64,
}

impl Frames<'_> {
    /// The consumer's copy of the frame slot at `base` into the sink, recorded into `encoder`,
    /// and the submit.
    fn consume(&self, mut encoder: wgpu::CommandEncoder, base: u64) -> wgpu::SubmissionIndex {
        encoder.copy_buffer_to_buffer(self.uniform, base, self.sink, 0, FRAME_BYTES);
        self.gpu.queue.submit([encoder.finish()])
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.gpu.device.create_command_encoder(&Default::default())
    }

    /// Writes frame `f`'s blocks into the slot at `base` and submits the consumer; returns the
    /// submission and the seconds spent writing the blocks and handing them to wgpu.
    fn frame(&mut self, f: u64, base: u64) -> (wgpu::SubmissionIndex, f64) {
        let queue = &self.gpu.queue;
        match self.path {
            Path::WriteBufferPerDraw => {
                let start = Instant::now();
                for d in 0..DRAWS {
                    queue.write_buffer(self.uniform, base + (d * BLOCK) as u64, &block(f, d));
                }
                let cpu = start.elapsed().as_secs_f64();
                // The submit flushes the queue's pending writes before the copy.
                (self.consume(self.encoder(), base), cpu)
            }
            Path::WriteBufferPerFrame => {
                let start = Instant::now();
                for (d, out) in self.bytes.chunks_exact_mut(BLOCK).enumerate() {
                    out.copy_from_slice(&block(f, d));
                }
                queue.write_buffer(self.uniform, base, &self.bytes);
                let cpu = start.elapsed().as_secs_f64();
                (self.consume(self.encoder(), base), cpu)
            }
            Path::WriteBufferWith => {
                let start = Instant::now();
                let size = NonZeroU64::new(FRAME_BYTES).expect("non-empty frames");
                let mut view = queue
                    .write_buffer_with(self.uniform, base, size)
                    .expect("a write_buffer_with view");
                for d in 0..DRAWS {
                    view.slice(d * BLOCK..(d + 1) * BLOCK)
                        .copy_from_slice(&block(f, d));
                }
                // Dropping the view schedules its copy (flushed by the next submit).
                drop(view);
                let cpu = start.elapsed().as_secs_f64();
                (self.consume(self.encoder(), base), cpu)
            }
            Path::Belt => {
                let mut encoder = self.encoder();
                let belt = self.belt.as_mut().expect("a belt for the belt path");
                let size = NonZeroU64::new(BLOCK as u64).expect("non-empty blocks");
                let start = Instant::now();
                for d in 0..DRAWS {
                    belt.write_buffer(&mut encoder, self.uniform, base + (d * BLOCK) as u64, size)
                        .copy_from_slice(&block(f, d));
                }
                belt.finish();
                let cpu = start.elapsed().as_secs_f64();
                let submission = self.consume(encoder, base);
                let belt = self.belt.as_mut().expect("a belt for the belt path");
                belt.recall();
                (submission, cpu)
            }
            Path::WriteBufferPerDrawThreads => {
                let uniform = self.uniform;
                let start = Instant::now();
                in_jobs(self.pool, |draws| {
                    for d in draws {
                        queue.write_buffer(uniform, base + (d * BLOCK) as u64, &block(f, d));
                    }
                });
                let cpu = start.elapsed().as_secs_f64();
                // The submit flushes every job's pending writes before the copy.
                (self.consume(self.encoder(), base), cpu)
            }
            Path::WriteBufferWithPerJob => {
                let uniform = self.uniform;
                let start = Instant::now();
                in_jobs(self.pool, |draws| {
                    let size =
                        NonZeroU64::new((draws.len() * BLOCK) as u64).expect("non-empty jobs");
                    let first = draws.start;
                    let mut view = queue
                        .write_buffer_with(uniform, base + (first * BLOCK) as u64, size)
                        .expect("a write_buffer_with view");
                    for d in draws {
                        let at = (d - first) * BLOCK;
                        view.slice(at..at + BLOCK).copy_from_slice(&block(f, d));
                    }
                    // The view's drop, at the job's end, schedules its copy (flushed by the
                    // consumer's submit, after every job is done).
                });
                let cpu = start.elapsed().as_secs_f64();
                (self.consume(self.encoder(), base), cpu)
            }
        }
    }

    /// One repetition of `frames` frames, two in flight; returns the seconds from the first
    /// write to the GPU's completion of the last frame, and the CPU seconds spent writing.
    fn repetition(&mut self, frames: u64) -> (f64, f64) {
        let mut in_flight: [Option<wgpu::SubmissionIndex>; SLOTS as usize] = Default::default();
        let mut cpu = 0.0;
        let start = Instant::now();
        for n in 0..frames {
            let slot = (n % SLOTS) as usize;
            // Frame n-2 used this slot: the GPU must be done with it.
            if let Some(done) = in_flight[slot].take() {
                self.gpu.wait(done);
            }
            let f = self.next;
            self.next += 1;
            let (submission, t) = self.frame(f, slot as u64 * FRAME_BYTES);
            cpu += t;
            in_flight[slot] = Some(submission);
        }
        let last = in_flight[((frames - 1) % SLOTS) as usize]
            .take()
            .expect("a last frame");
        self.gpu.wait(last);
        (start.elapsed().as_secs_f64(), cpu)
    }
}

/// Copies `sink` into `readback` (`MAP_READ`, as large), maps it and counts the blocks that
/// differ from frame `frame`'s.
fn wrong_blocks(gpu: &Gpu, sink: &wgpu::Buffer, readback: &wgpu::Buffer, frame: u64) -> usize {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(sink, 0, readback, 0, FRAME_BYTES);
    gpu.read_mapped(encoder, readback, |seen| {
        seen.chunks_exact(BLOCK)
            .enumerate()
            .filter(|&(d, got)| *got != block(frame, d))
            .count()
    })
}

pub(crate) fn run(report: &mut Report, gpu: &Gpu, quick: bool, reps: usize) {
    let frames = if quick { QUICK_FRAMES } else { FRAMES };
    let uniform = gpu.buffer(
        "frame constants",
        SLOTS * FRAME_BYTES,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    );
    let sink = gpu.buffer(
        "frame constants sink",
        FRAME_BYTES,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    );
    let readback = gpu.buffer(
        "frame constants read-back",
        FRAME_BYTES,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
    );
    // Started once, before the first path, so the threaded paths' frames find their threads
    // running, as an engine's job system is.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .thread_name(|i| format!("constants-job-{i}"))
        .build()
        .expect("the constants' job pool");
    println!(
        "frame constants: {DRAWS} x {BLOCK} B per frame, {frames} frames per repetition, \
         {SLOTS} in flight; each figure: median of {reps} after one warm-up"
    );

    for path in Path::ALL {
        // Nothing an earlier path wrote can pass this one's check.
        gpu.clear(&uniform);
        gpu.clear(&sink);
        let mut state = Frames {
            gpu,
            path,
            uniform: &uniform,
            sink: &sink,
            belt: matches!(path, Path::Belt)
                .then(|| wgpu::util::StagingBelt::new(gpu.device.clone(), BELT_CHUNK)),
            bytes: vec![0u8; FRAME_BYTES as usize],
            pool: &pool,
            next: 0,
        };
        state.repetition(frames);
        let (walls, cpus): (Vec<f64>, Vec<f64>) =
            (0..reps).map(|_| state.repetition(frames)).unzip();
        let wrong = wrong_blocks(gpu, &sink, &readback, state.next - 1);
        let name = path.label();
        if wrong > 0 {
            report.failures.push(format!(
                "{name}: {wrong} of {DRAWS} blocks of the last frame wrong on read-back"
            ));
        }
        let check = if wrong == 0 { "ok" } else { "WRONG" };
        let t = median(walls);
        let cpu = median(cpus);
        report.add(
            &name,
            gbps(FRAME_BYTES * frames, t),
            "GB/s",
            &format!(
                "{:.1} ms for {frames} frames; median of {reps}; read-back {check}",
                t * 1e3
            ),
        );
        report.add(
            &format!("{name}, per frame"),
            t * 1e6 / frames as f64,
            "us",
            &format!("wall time over {frames} frames, {SLOTS} in flight; median of {reps}"),
        );
        report.add(
            &format!("{name}, CPU writes per frame"),
            cpu * 1e6 / frames as f64,
            "us",
            &format!("producing the blocks and handing them to wgpu only; median of {reps}"),
        );
    }
}
