//! Per-frame constants (`--only constants`): every frame, one 256-byte constant block per draw
//! (a model matrix and such) for [`DRAWS`] draws, written by the CPU and read by the GPU. The
//! same workload runs in the wgpu peer (`tests/wgpu-peer`), so its numbers stay as they are.
//!
//! The GPU's reads stand in for the draws' shaders: per frame, one submission of the
//! application's own on the main queue copies every block into a device-local sink of
//! [`FRAME_BYTES`] (block `d` at `d * 256`, adjacent blocks merged into one region) and signals
//! the application's timeline semaphore with the frame's number + 1. Two frames in flight: before
//! writing frame `n` the CPU waits until frame `n - 2`'s submission completed.
//!
//! - `transient`: `Frame::transient` per block, written in place into host-visible (device-local
//!   where the device has it) memory, no copy; the frame says when the GPU is done with it
//!   (`Frame::gpu_done_at`);
//! - `transient_slice`: the frame's blocks built in a reused `Vec`, then one
//!   `Frame::transient_slice`;
//! - `transient_with`: one `Frame::transient_with` per frame, the blocks built straight into the
//!   transient memory (the peer of wgpu's `Queue::write_buffer_with`);
//! - `transient_writers`: the frame's draws split among [`THREADS`] command-recording jobs, job
//!   `j` writing draws `j * DRAWS / THREADS..(j + 1) * DRAWS / THREADS` with one
//!   `TransientWriter::transient` per block through a `Frame::transient_writer` of its own;
//! - `transient_writers_with`: the same jobs, each writing its quarter with one
//!   `TransientWriter::transient_with`, the blocks built straight into the transient memory (the
//!   peer of the wgpu peer's `Queue::write_buffer_with` per job);
//! - `staged`: the classic path, a `FAST_DEVICE_ACCESS` buffer of two frame slots, the blocks
//!   built in a reused `Vec` and `Frame::stage_slice_for_upload`ed into slot `n % 2`; the
//!   consumer waits on the GPU for the coordinator's copies (its timeline semaphore at the
//!   frame's ticket value), and the coordinator's later copies wait for the consumer
//!   (`Coordinator::wait_for_external`). Where that buffer is host-visible (resizable BAR,
//!   lavapipe) the coordinator writes it directly instead; the note says which.
//!
//! The threaded paths run their jobs on one persistent `rayon` pool of [`THREADS`] threads, built
//! once per run and given the frame's jobs in a `ThreadPool::scope` per frame, as an engine's job
//! system records commands: no thread starts per frame. The wgpu peer's threaded paths use the
//! same pool. The writers are taken on the frame's thread (the frame is not `Sync`) and each is
//! moved into its job.
//!
//! Frames are numbered from 0 over the whole run of a path, warm-up included; block word `i` of
//! draw `d` in frame `n` is `(n as u32).wrapping_mul(0x9E37_79B9) ^ (d * 64 + i) as u32`. Each
//! figure is the median of the timed repetitions after one warm-up, timed from the first CPU
//! write to the GPU's completion of the last frame. After the last repetition the sink is read
//! back and compared byte for byte with the last frame's blocks.

use std::error::Error;
use std::time::{Duration, Instant};

use ash::vk;
use memkit_std::{Buffer, BufferingMode, Coordinator, CoordinatorConfig, MemoryUsage, bytemuck};
use memkit_tests::bench_report::{Report, gbps, median};
use memkit_vulkan::{HeadlessConfig, HeadlessDevice};

use super::{Gpu, main_queue_commands, memory_kind};

/// Draws per frame: one constant block each.
const DRAWS: usize = 4096;
/// One draw's constant block: 64 words, 256 bytes.
type Block = [u32; 64];
const BLOCK_BYTES: u64 = size_of::<Block>() as u64;
/// Constant bytes per frame: 1 MiB.
const FRAME_BYTES: u64 = DRAWS as u64 * BLOCK_BYTES;
/// Frames the CPU writes ahead of the GPU's consumer.
const FRAMES_IN_FLIGHT: u64 = 2;
/// Jobs writing one frame's blocks on the threaded paths, a quarter of the draws each, and the
/// threads of the pool they run on.
const THREADS: usize = 4;
// The jobs split the draws evenly.
const _: () = assert!(DRAWS.is_multiple_of(THREADS));

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// How the blocks reach the GPU.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Transient,
    TransientSlice,
    TransientWith,
    TransientWriters,
    TransientWritersWith,
    Staged,
}

impl Path {
    const ALL: [Path; 6] = [
        Path::Transient,
        Path::TransientSlice,
        Path::TransientWith,
        Path::TransientWriters,
        Path::TransientWritersWith,
        Path::Staged,
    ];

    /// The path's name in the report; the threaded paths say where their jobs run, so their
    /// figures are not taken for those of jobs in threads started per frame.
    fn label(self) -> String {
        match self {
            Path::Transient => "transient".to_owned(),
            Path::TransientSlice => "transient_slice".to_owned(),
            Path::TransientWith => "transient_with".to_owned(),
            Path::TransientWriters => format!("transient_writers, {THREADS} pool threads"),
            Path::TransientWritersWith => {
                format!("transient_writers_with, {THREADS} pool threads")
            }
            Path::Staged => "staged".to_owned(),
        }
    }
}

/// Draw `draw`'s block in frame `frame`.
fn block(frame: u64, draw: usize) -> Block {
    let seed = (frame as u32).wrapping_mul(0x9E37_79B9);
    std::array::from_fn(|i| seed ^ (draw * 64 + i) as u32)
}

/// Frame `frame`'s blocks, into `blocks` (kept from frame to frame).
fn fill_blocks(blocks: &mut Vec<Block>, frame: u64) {
    blocks.clear();
    blocks.extend((0..DRAWS).map(|d| block(frame, d)));
}

/// The consumer's regions into the sink for blocks lying at `(buffer, offset)`, draw by draw:
/// block `d` lands at `d * BLOCK_BYTES`, and blocks adjacent in one buffer share a region.
fn merged_copies(blocks: &[(vk::Buffer, u64)], out: &mut Vec<(vk::Buffer, vk::BufferCopy)>) {
    out.clear();
    for (d, &(buffer, offset)) in blocks.iter().enumerate() {
        let dst = d as u64 * BLOCK_BYTES;
        match out.last_mut() {
            Some((last_buffer, last))
                if *last_buffer == buffer
                    && last.src_offset + last.size == offset
                    && last.dst_offset + last.size == dst =>
            {
                last.size += BLOCK_BYTES;
            }
            _ => out.push((
                buffer,
                vk::BufferCopy {
                    src_offset: offset,
                    dst_offset: dst,
                    size: BLOCK_BYTES,
                },
            )),
        }
    }
}

/// The application's side: a command buffer per frame in flight on the main queue, and the
/// timeline semaphore its submissions signal.
struct Consumer {
    pool: vk::CommandPool,
    cmds: Vec<vk::CommandBuffer>,
    timeline: vk::Semaphore,
}

impl Consumer {
    fn new(h: &HeadlessDevice) -> Self {
        let (pool, cmds) = main_queue_commands(h, FRAMES_IN_FLIGHT as u32);
        let mut kind = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        // SAFETY: a valid create info on a live device with timeline semaphores (the caller
        // checked); destroyed in `destroy`.
        let timeline = unsafe {
            h.ash_device().create_semaphore(
                &vk::SemaphoreCreateInfo::default().push_next(&mut kind),
                None,
            )
        }
        .expect("timeline semaphore");
        Self {
            pool,
            cmds,
            timeline,
        }
    }

    /// Blocks until the timeline reached `value`.
    fn wait(&self, h: &HeadlessDevice, value: u64) -> BenchResult<()> {
        let semaphores = [self.timeline];
        let values = [value];
        let info = vk::SemaphoreWaitInfo::default()
            .semaphores(&semaphores)
            .values(&values);
        // SAFETY: the semaphore is this device's timeline; every value waited for is one a
        // submission made before signals.
        unsafe { h.ash_device().wait_semaphores(&info, u64::MAX) }?;
        Ok(())
    }

    /// Frame `frame`'s submission: `copies` into `sink`, after `gpu_wait` (a semaphore and
    /// value, on the GPU) where given, then the timeline signalled with `frame + 1`.
    ///
    /// # Safety
    /// The submission of frame `frame - FRAMES_IN_FLIGHT` completed (its command buffer is
    /// reused); the buffers are alive, usable on the main queue's family, hold the regions, and
    /// stay alive until the timeline reaches `frame + 1`; the sources' writes are done or
    /// ordered before by `gpu_wait`.
    unsafe fn submit(
        &self,
        h: &HeadlessDevice,
        frame: u64,
        copies: &[(vk::Buffer, vk::BufferCopy)],
        sink: vk::Buffer,
        gpu_wait: Option<(vk::Semaphore, u64)>,
    ) -> BenchResult<()> {
        let device = h.ash_device();
        let cmd = self.cmds[(frame % FRAMES_IN_FLIGHT) as usize];
        // SAFETY: the command buffer's last submission completed (caller's contract); the
        // buffers and regions are valid (caller's contract).
        unsafe {
            device.reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty())?;
            device.begin_command_buffer(
                cmd,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )?;
            // The last frame's copies into the sink are done before these overwrite it.
            let after_last_frame = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)];
            device.cmd_pipeline_barrier(
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &after_last_frame,
                &[],
                &[],
            );
            for (src, region) in copies {
                device.cmd_copy_buffer(cmd, *src, sink, std::slice::from_ref(region));
            }
            device.end_command_buffer(cmd)?;
        }
        let waits = usize::from(gpu_wait.is_some());
        let (wait_semaphore, wait_value) = gpu_wait.unwrap_or_default();
        let wait_semaphores = [wait_semaphore];
        let wait_values = [wait_value];
        let wait_stages = [vk::PipelineStageFlags::TRANSFER];
        let signal_semaphores = [self.timeline];
        let signal_values = [frame + 1];
        let cmds = [cmd];
        let mut timeline_values = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&wait_values[..waits])
            .signal_semaphore_values(&signal_values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&wait_semaphores[..waits])
            .wait_dst_stage_mask(&wait_stages[..waits])
            .command_buffers(&cmds)
            .signal_semaphores(&signal_semaphores)
            .push_next(&mut timeline_values);
        // SAFETY: the command buffer is recorded; the queue is held for the call; the signal
        // value is above every earlier one (frames count up).
        unsafe {
            h.with_main_queue(|queue| device.queue_submit(queue, &[submit], vk::Fence::null()))
        }?;
        Ok(())
    }

    fn destroy(self, h: &HeadlessDevice) {
        let device = h.ash_device();
        // SAFETY: the coordinator, which polls and waits for the timeline, is gone; after the
        // idle wait no submission uses the command buffers or the semaphore.
        unsafe {
            let _ = device.device_wait_idle();
            device.destroy_semaphore(self.timeline, None);
            device.destroy_command_pool(self.pool, None);
        }
    }
}

/// What one path's frames use, beside the coordinator.
struct Setup<'a> {
    gpu: &'a Gpu,
    coordinator: &'a Coordinator<Gpu>,
    consumer: &'a Consumer,
    sink: &'a Buffer<Gpu>,
    /// The staged path's buffer of two frame slots.
    uniforms: Option<&'a Buffer<Gpu>>,
    /// The threaded paths' job pool, alive for the whole run.
    pool: &'a rayon::ThreadPool,
}

/// One repetition's seconds.
struct Repetition {
    wall: f64,
    /// In the writes alone: blocks produced and handed to the coordinator.
    cpu_writes: f64,
}

/// Frames `first..first + frames` along `path`, until the GPU consumed the last.
fn repetition(path: Path, s: &Setup<'_>, first: u64, frames: u64) -> BenchResult<Repetition> {
    let mut blocks: Vec<Block> = Vec::with_capacity(DRAWS);
    let mut locations: Vec<(vk::Buffer, u64)> = Vec::with_capacity(DRAWS);
    let mut copies = Vec::new();
    let mut cpu_writes = Duration::ZERO;
    let start = Instant::now();
    for n in first..first + frames {
        if n >= FRAMES_IN_FLIGHT {
            // Frame n - 2's submission signals n - 1.
            s.consumer.wait(s.gpu, n + 1 - FRAMES_IN_FLIGHT)?;
        }
        let writes = Instant::now();
        let frame = s.coordinator.begin_frame()?;
        locations.clear();
        let gpu_wait = match (path, s.uniforms) {
            (
                Path::Transient
                | Path::TransientSlice
                | Path::TransientWith
                | Path::TransientWriters
                | Path::TransientWritersWith,
                _,
            ) => {
                // SAFETY: the consumer's semaphore outlives the coordinator (destroyed after
                // it), and frame n's submission, the last reading its blocks, signals n + 1.
                unsafe { frame.gpu_done_at(s.consumer.timeline, n + 1) }?;
                if path == Path::Transient {
                    for d in 0..DRAWS {
                        let slice = frame.transient(&block(n, d))?;
                        locations.push((slice.buffer(), slice.offset()));
                    }
                } else if matches!(path, Path::TransientWriters | Path::TransientWritersWith) {
                    write_in_jobs(s.pool, &frame, path, n, &mut locations)?;
                } else if path == Path::TransientWith {
                    let slice = frame.transient_with::<Block>(DRAWS, |blocks| {
                        for (d, b) in blocks.iter_mut().enumerate() {
                            *b = block(n, d);
                        }
                    })?;
                    locations.extend(
                        (0..DRAWS as u64)
                            .map(|d| (slice.buffer(), slice.offset() + d * BLOCK_BYTES)),
                    );
                } else {
                    fill_blocks(&mut blocks, n);
                    let slice = frame.transient_slice(&blocks)?;
                    locations.extend(
                        (0..DRAWS as u64)
                            .map(|d| (slice.buffer(), slice.offset() + d * BLOCK_BYTES)),
                    );
                }
                s.coordinator.end_frame(frame)?;
                // Host writes are visible to work submitted after them.
                None
            }
            (Path::Staged, Some(uniforms)) => {
                fill_blocks(&mut blocks, n);
                let slot = (n % FRAMES_IN_FLIGHT) * FRAME_BYTES;
                frame.stage_slice_for_upload(&blocks, uniforms, slot)?;
                let copied = s.coordinator.end_frame(frame)?;
                locations
                    .extend((0..DRAWS as u64).map(|d| (uniforms.raw(), slot + d * BLOCK_BYTES)));
                match copied.value() {
                    None => return Err("the frame's uploads were not submitted by its end".into()),
                    // Written by the CPU straight into the slot: nothing to wait for.
                    Some(0) => None,
                    Some(value) => {
                        let memkit = s.gpu.device().timeline_semaphore();
                        Some((memkit.ok_or("no timeline semaphore")?, value))
                    }
                }
            }
            (Path::Staged, None) => return Err("the staged path has no uniform buffer".into()),
        };
        cpu_writes += writes.elapsed();
        merged_copies(&locations, &mut copies);
        // SAFETY: frame n - 2's submission completed (waited above); the transient chunks, the
        // uniform buffer and the sink stay alive until the coordinator is dropped, after the
        // last frame completed; the blocks are written by the host before this call or by the
        // coordinator's copies `gpu_wait` names.
        unsafe { s.consumer.submit(s.gpu, n, &copies, s.sink.raw(), gpu_wait) }?;
        if s.uniforms.is_some_and(|u| !u.is_direct_write()) {
            // The coordinator's copies into this frame's slot, two frames on, come after this
            // frame's reads of it.
            // SAFETY: the semaphore outlives the coordinator; the submission above signals n + 1.
            unsafe { s.coordinator.wait_for_external(s.consumer.timeline, n + 1) }?;
        }
    }
    s.consumer.wait(s.gpu, first + frames)?;
    Ok(Repetition {
        wall: start.elapsed().as_secs_f64(),
        cpu_writes: cpu_writes.as_secs_f64(),
    })
}

/// Frame `n`'s blocks written by [`THREADS`] jobs on `pool`, each with a writer of its own, into
/// `locations` (left in draw order: job `j` fills the `j`th quarter). Along
/// `Path::TransientWriters` a job places each block with `TransientWriter::transient`; along
/// `Path::TransientWritersWith` its quarter with one `TransientWriter::transient_with`.
fn write_in_jobs(
    pool: &rayon::ThreadPool,
    frame: &memkit_std::Frame<'_, Gpu>,
    path: Path,
    n: u64,
    locations: &mut Vec<(vk::Buffer, u64)>,
) -> BenchResult<()> {
    let per_job = DRAWS / THREADS;
    let one_call = path == Path::TransientWritersWith;
    // Every slot is overwritten by its job; the placeholder only sizes the vector.
    locations.resize(DRAWS, (vk::Buffer::null(), 0));
    // Taken here and moved into the jobs: a writer is `Send`, the frame is not `Sync`, and
    // `ThreadPool::scope` runs its body on a pool thread. The scope ends before the frame does,
    // and so do the writers (each is dropped at its job's end).
    let writers: [_; THREADS] = std::array::from_fn(|_| frame.transient_writer());
    // Each job's outcome, read once the scope has waited for all of them.
    let mut results: [memkit_std::Result<()>; THREADS] = std::array::from_fn(|_| Ok(()));
    pool.scope(|scope| {
        let jobs = writers
            .into_iter()
            .zip(locations.chunks_mut(per_job))
            .zip(results.iter_mut())
            .enumerate();
        for (j, ((mut writer, out), result)) in jobs {
            let first = j * per_job;
            scope.spawn(move |_| {
                *result = if one_call {
                    writer
                        .transient_with::<Block>(per_job, |blocks| {
                            for (i, b) in blocks.iter_mut().enumerate() {
                                *b = block(n, first + i);
                            }
                        })
                        .map(|slice| {
                            // Block `i` of the job's slice lies `i` blocks past its start.
                            for (i, location) in out.iter_mut().enumerate() {
                                *location =
                                    (slice.buffer(), slice.offset() + i as u64 * BLOCK_BYTES);
                            }
                        })
                } else {
                    out.iter_mut().enumerate().try_for_each(|(i, location)| {
                        let slice = writer.transient(&block(n, first + i))?;
                        *location = (slice.buffer(), slice.offset());
                        Ok(())
                    })
                };
            });
        }
    });
    for result in results {
        result?;
    }
    Ok(())
}

/// How many of frame `frame`'s blocks the sink holds wrong, once the consumer's submission for
/// it was made.
fn wrong_blocks(s: &Setup<'_>, frame: u64) -> BenchResult<usize> {
    // SAFETY: the semaphore outlives the coordinator; frame `frame`'s submission signals it.
    unsafe {
        s.coordinator
            .wait_for_external(s.consumer.timeline, frame + 1)
    }?;
    let seen = s.coordinator.read_back(s.sink, 0, FRAME_BYTES)?.wait()?;
    Ok(seen
        .chunks_exact(BLOCK_BYTES as usize)
        .enumerate()
        .filter(|&(d, bytes)| bytes != bytemuck::bytes_of(&block(frame, d)))
        .count())
}

/// A warm-up and `reps` timed repetitions of `frames` frames along `path`, figures reported.
fn measure(
    report: &mut Report,
    path: Path,
    s: &Setup<'_>,
    reps: usize,
    frames: u64,
) -> BenchResult<()> {
    repetition(path, s, 0, frames)?;
    let runs = (1..=reps as u64)
        .map(|r| repetition(path, s, r * frames, frames))
        .collect::<BenchResult<Vec<_>>>()?;
    let last_frame = (reps as u64 + 1) * frames - 1;
    let wrong = wrong_blocks(s, last_frame)?;
    let name = format!(
        "8. frame constants {DRAWS} x {BLOCK_BYTES} B, {}",
        path.label()
    );
    if wrong > 0 {
        report.failures.push(format!(
            "{name}: {wrong} of {DRAWS} blocks wrong in the sink"
        ));
    }
    let wall = median(runs.iter().map(|r| r.wall).collect());
    let cpu = median(runs.iter().map(|r| r.cpu_writes).collect());
    let memory = match s.uniforms {
        Some(uniforms) => memory_kind(s.coordinator, uniforms),
        None => "written in place".to_string(),
    };
    let check = if wrong == 0 { "ok" } else { "WRONG" };
    report.add(
        &name,
        gbps(FRAME_BYTES * frames, wall),
        "GB/s",
        &format!("{frames} frames; {memory}; readback {check}"),
    );
    report.add(
        &format!("{name}, per frame"),
        wall / frames as f64 * 1e6,
        "us",
        "",
    );
    report.add(
        &format!("{name}, CPU writes per frame"),
        cpu / frames as f64 * 1e6,
        "us",
        "",
    );
    Ok(())
}

pub(super) fn run(report: &mut Report, reps: usize, quick: bool, validate: bool) {
    let frames = if quick { 12 } else { 120 };
    // Started once, before the first path, so the threaded paths' frames find their threads
    // running, as an engine's job system is.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .thread_name(|i| format!("constants-job-{i}"))
        .build()
        .expect("the constants' job pool");
    for path in Path::ALL {
        // A fresh device per path, so no path inherits another's state.
        let h = HeadlessDevice::new(HeadlessConfig {
            concurrent_with_main_family: true,
            validation: validate,
            ..HeadlessConfig::default()
        })
        .expect("a Vulkan device");
        if h.device().timeline_semaphore().is_none() {
            println!("constants: skipped, the device has no timeline semaphores");
            report.failures.extend(
                h.finish()
                    .into_iter()
                    .map(|m| format!("constants validation: {m}")),
            );
            return;
        }
        let gpu = Gpu::new(h);
        let consumer = Consumer::new(&gpu);
        let config = CoordinatorConfig {
            buffering: BufferingMode::Double,
            ..super::default_config()
        };
        let coordinator = Coordinator::new(gpu.clone(), config).expect("coordinator");
        let sink = coordinator
            .create_buffer(FRAME_BYTES, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("sink buffer");
        let uniforms = (path == Path::Staged).then(|| {
            coordinator
                .create_buffer(
                    FRAMES_IN_FLIGHT * FRAME_BYTES,
                    MemoryUsage::FAST_DEVICE_ACCESS,
                )
                .expect("uniform buffer")
        });
        let setup = Setup {
            gpu: &gpu,
            coordinator: &coordinator,
            consumer: &consumer,
            sink: &sink,
            uniforms: uniforms.as_ref(),
            pool: &pool,
        };
        if let Err(e) = measure(report, path, &setup, reps, frames) {
            report
                .failures
                .push(format!("constants, {}: {e}", path.label()));
        }
        drop((sink, uniforms, coordinator));
        consumer.destroy(&gpu);
        let Ok(h) = gpu.try_unwrap() else {
            panic!("the coordinator was dropped, so the bench holds the only handle");
        };
        report.failures.extend(
            h.finish()
                .into_iter()
                .map(|m| format!("constants validation: {m}")),
        );
    }
}
