//! `memkit demo`: a renderer-like upload workload over one shared [`Coordinator`], verified byte
//! for byte.
//!
//! - The frame loop (the calling thread) begins a frame, writes a 256-byte uniform block and
//!   64 KiB of instance data into the frame's arena, stages both, and ends the frame.
//! - Producer threads, beside it, stream meshes (64 KiB-4 MiB, `upload_slice`), create
//!   texture-sized buffers (256 KiB-16 MiB) and fill them, update parts of their buffers
//!   (64 B-64 KiB, `upload_to`, overlapping at random), stage some through explicit grants
//!   (`acquire_staging`), and drop buffers as they go (deferred destruction). They also create
//!   RGBA8 textures with every mip level (`create_image_with_data`, 16-512 texels a side),
//!   re-upload boxes of their level 0 (`upload_image`), and drop them.
//! - The application's own queue is stood for by a timeline signalled from the host by a thread
//!   of its own ([`ApplicationQueue`]): the application's frame `n` waits for that frame's
//!   copies, reads its uniforms and instances for
//!   [`FRAME_TIME`](crate::application::FRAME_TIME), and signals `n + 1`. After each frame the loop calls `Coordinator::wait_for_external`, so every later
//!   copy waits on the GPU for the frame before; the simulated device checks that no copy lands
//!   in the frame buffers while the application's frame still reads them.
//! - Each frame also writes [`DRAWS`] blocks of per-draw constants into its transient memory
//!   (`Frame::transient`), which the application's frame reads in place; the simulated device
//!   checks that none is written again before the application's frame finished.
//! - On the simulated device, a "GPU thread" executes submissions as they come.
//!
//! A quarter of the buffers, half of the textures, and the frame buffers carry a model of their
//! bytes: before such a buffer or texture is dropped, and at the end, its bytes are read back
//! from the device and compared.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_std::{
    Buffer, Coordinator, CoordinatorConfig, CoordinatorStats, DefragmentationLimits, Image,
    MemoryUsage, Readback, Ticket,
};

use crate::application::ApplicationQueue;
use crate::backend::Backend;
use crate::render_targets::{self, RenderTargets};
use crate::report::Progress;
use crate::rng::Rng;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// Producer jobs per frame, per thread.
const JOBS_PER_FRAME: u64 = 2;
/// Buffers a producer keeps at once; more and it drops its oldest.
const LIVE_PER_PRODUCER: usize = 6;
/// Textures a producer keeps at once; more and it drops its oldest.
const TEXTURES_PER_PRODUCER: usize = 3;
/// Bytes of random data each producer takes its uploads from.
const SOURCE_BYTES: usize = (16 * MIB + 64 * KIB) as usize;
/// Bytes of the uniform block and of the instance data, per frame.
const UNIFORM_BYTES: u64 = 256;
const INSTANCE_BYTES: u64 = 64 * KIB;
/// Draws per frame, each with a 64-byte constant block (a model matrix) in transient memory.
const DRAWS: u64 = 256;

/// How the demo runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Frames of the frame loop; producers do `2 * frames` jobs each.
    pub frames: u64,
    /// Producer threads.
    pub threads: usize,
    /// Seed of every size, offset and byte.
    pub seed: u64,
    /// Draw a progress line on stderr.
    pub progress: bool,
}

/// What the comparison of device bytes against the models found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Buffers read back and compared.
    pub checked_buffers: u64,
    /// Textures read back (every level) and compared.
    pub checked_images: u64,
    /// Bytes compared.
    pub checked_bytes: u64,
    /// One line per buffer or texture whose bytes differ from the model.
    pub mismatches: Vec<String>,
    /// Misuse the device detected (a missing flush, a staging range reused too early, ...).
    pub problems: Vec<String>,
    /// Objects the device still held after the coordinator was dropped.
    pub leaks: Vec<String>,
}

impl Verification {
    /// Nothing differed, nothing was misused, nothing leaked.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.problems.is_empty() && self.leaks.is_empty()
    }
}

/// The demo's outcome.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// The device, in words.
    pub device: String,
    /// The options it ran with.
    pub options: DemoOptions,
    /// From the first upload until the GPU finished the last.
    pub elapsed: Duration,
    /// Buffers the producers dropped while running (destroyed once their copies completed).
    pub buffers_dropped: u64,
    /// What the frame's aliased render targets took.
    pub render_targets: RenderTargets,
    /// The coordinator's counters and memory, at the end (before teardown).
    pub stats: CoordinatorStats,
    /// The memory map at the end, before teardown, with the buffers still held
    /// ([`memkit_std::Coordinator::memory_map_svg`]).
    pub memory_map_svg: String,
    /// The same memory map as JSON ([`memkit_std::Coordinator::memory_map_json`]).
    pub memory_map_json: String,
    /// The byte comparison, misuse and leak checks.
    pub verification: Verification,
}

impl DemoReport {
    /// Uploads by every path (ring, direct writes, dedicated staging).
    pub fn uploads(&self) -> u64 {
        self.stats.staged_uploads + self.stats.direct_writes + self.stats.dedicated_staging_uploads
    }

    /// Megabytes (10^6 bytes) uploaded per second.
    pub fn megabytes_per_second(&self) -> f64 {
        self.stats.bytes_uploaded as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Uploads per second.
    pub fn uploads_per_second(&self) -> f64 {
        self.uploads() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A texture a producer holds, with its texels' model (every level, packed) when it is sampled.
struct TrackedImage<D: Backend> {
    image: Image<D>,
    model: Option<Vec<u8>>,
    /// The last upload into it: waiting for it waits for every earlier one.
    last: Ticket,
}

/// A buffer a producer holds, with its bytes' model when it is sampled.
struct Tracked<D: Backend> {
    buffer: Buffer<D>,
    model: Option<Vec<u8>>,
    /// The last upload into it: waiting for it waits for every earlier one.
    last: Ticket,
}

/// What one producer verified and kept.
#[derive(Default)]
pub(crate) struct Checks {
    buffers: u64,
    images: u64,
    bytes: u64,
    pub(crate) mismatches: Vec<String>,
    dropped: u64,
}

impl Checks {
    /// Compares the bytes `read` (a [`Coordinator::read_back`] of all of buffer `id`) brings back
    /// with `model`, once its copy completed.
    pub(crate) fn compare(
        &mut self,
        read: Readback<impl Backend>,
        id: u64,
        model: &[u8],
        what: &str,
    ) -> Result<(), memkit_std::Error> {
        let bytes = read.wait()?;
        self.buffers += 1;
        self.bytes += model.len() as u64;
        if let Some(first) = first_difference(&bytes, model) {
            self.mismatches.push(format!(
                "{what} (buffer {id}, {} bytes): first differing byte at {first}: device {:#04x}, \
                 expected {:#04x}",
                model.len(),
                bytes.get(first).copied().unwrap_or(0),
                model.get(first).copied().unwrap_or(0),
            ));
        }
        Ok(())
    }

    /// [`Checks::compare`] of `buffer`, read back whole after the uploads staged so far.
    fn read_and_compare<D: Backend>(
        &mut self,
        coordinator: &Coordinator<D>,
        buffer: &Buffer<D>,
        model: &[u8],
        what: &str,
    ) -> Result<(), memkit_std::Error> {
        let read = coordinator.read_back(buffer, 0, model.len() as u64)?;
        self.compare(read, buffer.id(), model, what)
    }

    /// [`Checks::compare`] for a texture: `read` (a [`read_texture`] of texture `id`) against
    /// the model of its packed levels.
    pub(crate) fn compare_texture(
        &mut self,
        read: Readback<impl Backend>,
        id: u64,
        model: &[u8],
        what: &str,
    ) -> Result<(), memkit_std::Error> {
        let texels = read.wait()?;
        self.images += 1;
        self.bytes += model.len() as u64;
        if let Some(first) = first_difference(&texels, model) {
            self.mismatches.push(format!(
                "{what} (image {id}, {} bytes): first differing byte at {first} of the packed \
                 levels",
                model.len(),
            ));
        }
        Ok(())
    }

    fn merge(&mut self, other: Checks) {
        self.buffers += other.buffers;
        self.images += other.images;
        self.bytes += other.bytes;
        self.mismatches.extend(other.mismatches);
        self.dropped += other.dropped;
    }
}

/// The first index where `device` and `model` differ (a shorter read differs at its end).
pub fn first_difference(device: &[u8], model: &[u8]) -> Option<usize> {
    match device.iter().zip(model).position(|(a, b)| a != b) {
        Some(i) => Some(i),
        None if device.len() != model.len() => Some(device.len().min(model.len())),
        None => None,
    }
}

/// Runs the demo on `device` and tears the coordinator down. Errors are the coordinator's (a
/// verification failure is not an error: it is in the report).
pub fn run<D: Backend>(
    device: D,
    config: CoordinatorConfig,
    options: DemoOptions,
) -> Result<DemoReport, memkit_std::Error> {
    let name = device.describe();
    let leak_check = device.leak_check();
    // The application's queue, kept apart from the coordinator's handle so that the timeline can
    // be destroyed after teardown.
    let application = device.clone();
    let timeline = application.create_application_timeline();
    let coordinator = Arc::new(Coordinator::new(device, config)?);
    let frames_in_flight = config.buffering.frames_in_flight() as u64;
    let uniform = coordinator.create_buffer(
        UNIFORM_BYTES * frames_in_flight,
        MemoryUsage::FAST_DEVICE_ACCESS,
    )?;
    uniform.set_label("demo uniforms");
    let instances = coordinator.create_buffer(
        INSTANCE_BYTES * frames_in_flight,
        MemoryUsage::FAST_DEVICE_ACCESS,
    )?;
    instances.set_label("demo instances");

    let jobs = options.frames * JOBS_PER_FRAME;
    let progress = Progress::new(
        options.progress,
        options.frames + jobs * options.threads as u64,
    );
    let gpu_stop = AtomicBool::new(false);
    let queue = ApplicationQueue::default();
    let producers_done = AtomicUsize::new(0);
    let start = Instant::now();

    let (frame_models, producer_results) = std::thread::scope(|s| {
        if coordinator.device().is_simulated() {
            let (coordinator, gpu_stop) = (&coordinator, &gpu_stop);
            s.spawn(move || {
                while !gpu_stop.load(Ordering::Acquire) {
                    if !coordinator.device().gpu_step() {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            });
        }
        let handles: Vec<_> = (0..options.threads)
            .map(|t| {
                let coordinator = Arc::clone(&coordinator);
                let (progress, producers_done) = (&progress, &producers_done);
                s.spawn(move || {
                    let result = produce(&coordinator, t as u64, options, jobs, progress);
                    producers_done.fetch_add(1, Ordering::Release);
                    result
                })
            })
            .collect();
        let application_thread = timeline.map(|timeline| {
            let (queue, application) = (&queue, &application);
            s.spawn(move || queue.run(application, timeline))
        });
        let frames = frame_loop(
            &coordinator,
            (&uniform, &instances),
            timeline.map(|t| (t, &queue)),
            options,
            &progress,
        );
        queue.close();
        if let Some(handle) = application_thread {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("memkit: the application's queue stopped: {e}"),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        // The application's last frames finish (also after an error: nothing must wait on the
        // timeline for good). Every value waited for is at most `frames`; where the queue got
        // there itself, signalling it again would be a value that does not rise (refused, and
        // on lavapipe a lost device).
        if let Some(timeline) = timeline
            && queue.signalled() < options.frames
            && let Err(e) = application.signal_application(timeline, options.frames)
        {
            eprintln!("memkit: signalling the application's timeline failed: {e}");
        }
        while producers_done.load(Ordering::Acquire) < options.threads {
            progress.draw();
            std::thread::sleep(Duration::from_millis(50));
        }
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect();
        // Everything staged reaches the GPU; the GPU thread is still running.
        let finished = coordinator.flush_transfers().and_then(|t| t.wait());
        gpu_stop.store(true, Ordering::Release);
        (finished.and(frames), results)
    });
    let elapsed = start.elapsed();
    progress.finish();
    let (uniform_model, instance_model) = frame_models?;

    let mut checks = Checks::default();
    let mut live = Vec::new();
    let mut textures = Vec::new();
    for result in producer_results {
        let (c, held, held_textures) = result?;
        checks.merge(c);
        live.extend(held);
        textures.extend(held_textures);
    }
    // The producers freed in a different order than they allocated: one defragmentation pass
    // over the buffers and textures they kept (the checks below read the moved ones back), the
    // emptied blocks given back once its copies completed.
    let pass = coordinator.defragment_with_images(
        live.iter_mut().map(|t| &mut t.buffer),
        textures.iter_mut().map(|t| &mut t.image),
        &DefragmentationLimits::UNLIMITED,
    )?;
    pass.ticket.wait()?;
    coordinator.maintain()?;
    checks.read_and_compare(&coordinator, &uniform, &uniform_model, "frame uniforms")?;
    checks.read_and_compare(&coordinator, &instances, &instance_model, "frame instances")?;
    for t in &live {
        if let Some(model) = &t.model {
            checks.read_and_compare(&coordinator, &t.buffer, model, "producer buffer")?;
        }
    }
    // Every texture's read is asked for before any is waited for: they run back to back.
    let mut reads = Vec::new();
    for t in &textures {
        if let Some(model) = &t.model {
            reads.push((read_texture(&coordinator, &t.image)?, t.image.id(), model));
        }
    }
    for (read, id, model) in reads {
        checks.compare_texture(read, id, model, "producer texture")?;
    }
    // A frame's render targets, sharing memory where their passes allow.
    let render_targets = render_targets::run(&coordinator, options.seed, &mut checks)?;
    let stats = coordinator.stats();
    let memory_map_svg = coordinator.memory_map_svg();
    let memory_map_json = coordinator.memory_map_json();
    let problems = coordinator.device().problems();
    drop((live, textures, uniform, instances));
    // The last handle: teardown runs here (waiting for every submission), and the device goes
    // with it once `application` is dropped too.
    drop(coordinator);
    if let Some(timeline) = timeline {
        application.destroy_application_timeline(timeline);
    }
    drop(application);
    let leaks = leak_check();
    Ok(DemoReport {
        device: name,
        options,
        elapsed,
        buffers_dropped: checks.dropped,
        render_targets,
        stats,
        memory_map_svg,
        memory_map_json,
        verification: Verification {
            checked_buffers: checks.buffers,
            checked_images: checks.images,
            checked_bytes: checks.bytes,
            mismatches: checks.mismatches,
            problems,
            leaks,
        },
    })
}

/// The frame loop: per frame, a uniform block and instance data from the frame's arena, staged
/// into the frame slot's range; with an application `timeline`, the application's frame reading
/// them, submitted to its `queue`. Returns the models of both buffers.
fn frame_loop<D: Backend>(
    coordinator: &Coordinator<D>,
    (uniform, instances): (&Buffer<D>, &Buffer<D>),
    application: Option<(D::ExternalTimeline, &ApplicationQueue)>,
    options: DemoOptions,
    progress: &Progress,
) -> Result<(Vec<u8>, Vec<u8>), memkit_std::Error> {
    let mut uniform_model = vec![0u8; uniform.size() as usize];
    let mut instance_model = vec![0u8; instances.size() as usize];
    let device = coordinator.device();
    let timeline = application.map(|(t, _)| t);
    for n in 0..options.frames {
        let frame = coordinator.begin_frame()?;
        let slot = frame.slot() as u64;
        if let Some(timeline) = timeline {
            // SAFETY: the timeline is the device's and outlives the coordinator; `run` signals
            // every value up to `options.frames` once this loop ends, and the application's
            // frame `n` (which reads these constants) signals `n + 1`.
            unsafe { frame.gpu_done_at(timeline, n + 1) }?;
            for draw in 0..DRAWS {
                let model: [f32; 16] =
                    std::array::from_fn(|i| (n * DRAWS + draw) as f32 + i as f32 / 16.0);
                let slice = frame.transient(&model)?;
                device.application_reads(
                    slice.buffer(),
                    slice.offset(),
                    slice.size(),
                    timeline,
                    n + 1,
                );
            }
        }
        // A 256-byte uniform block: four 4x4 matrices.
        let block = frame.alloc::<[[f32; 16]; 4]>();
        for (i, x) in block.iter_mut().flatten().enumerate() {
            *x = (n * 64 + i as u64) as f32;
        }
        frame.stage_for_upload(block, uniform, slot * UNIFORM_BYTES)?;
        let at = (slot * UNIFORM_BYTES) as usize;
        uniform_model[at..at + UNIFORM_BYTES as usize].copy_from_slice(bytemuck::bytes_of(block));
        // 64 KiB of per-instance data.
        let words = (INSTANCE_BYTES / 4) as usize;
        let data = frame.alloc_slice_fill(words, 0u32)?;
        for (i, w) in data.iter_mut().enumerate() {
            *w = (n as u32).wrapping_mul(0x9E37_79B9) ^ i as u32;
        }
        frame.stage_slice_for_upload(data, instances, slot * INSTANCE_BYTES)?;
        let at = (slot * INSTANCE_BYTES) as usize;
        instance_model[at..at + INSTANCE_BYTES as usize]
            .copy_from_slice(bytemuck::cast_slice(data));
        let staged = coordinator.end_frame(frame)?;
        if let Some((timeline, queue)) = application {
            // The application's frame `n` waits for this frame's copies (it needs their value: a
            // range behind another thread's grant is submitted once that grant commits), reads
            // what they wrote, and signals `n + 1`; the coordinator's later copies (the next
            // frame's into the same buffers among them) wait for it on the GPU.
            while staged.value().is_none() {
                coordinator.flush_transfers()?;
                std::thread::yield_now();
            }
            device.application_uses(uniform.raw(), timeline, n + 1);
            device.application_uses(instances.raw(), timeline, n + 1);
            queue.submit(n + 1, staged.clone());
            // SAFETY: the timeline is the device's and outlives the coordinator (destroyed after
            // teardown); `run` signals every value up to `options.frames` once this loop ends.
            unsafe { coordinator.wait_for_external(timeline, n + 1) }?;
        }
        progress.add(1);
    }
    Ok((uniform_model, instance_model))
}

/// What a producer returns: its checks, and the buffers and textures it still holds.
type Produced<D> = (Checks, Vec<Tracked<D>>, Vec<TrackedImage<D>>);

/// One producer: `jobs` uploads, creations and drops over its own buffers and textures (so "the
/// last write" to a byte is well defined).
fn produce<D: Backend>(
    coordinator: &Coordinator<D>,
    thread: u64,
    options: DemoOptions,
    jobs: u64,
    progress: &Progress,
) -> Result<Produced<D>, memkit_std::Error> {
    let mut rng = Rng::new(options.seed, thread + 1);
    let mut source = vec![0u8; SOURCE_BYTES];
    rng.fill(&mut source);
    let mut checks = Checks::default();
    let mut live: Vec<Tracked<D>> = Vec::new();
    let mut textures: Vec<TrackedImage<D>> = Vec::new();
    let slice_of = |rng: &mut Rng, len: u64| {
        let at = rng.below(SOURCE_BYTES as u64 - len + 1) as usize;
        at..at + len as usize
    };
    for _ in 0..jobs {
        let roll = rng.below(100);
        if live.is_empty() || roll < 8 {
            // A texture-sized buffer, filled in one upload.
            let size = rng.log_uniform(256 * KIB, 16 * MIB);
            let bytes = &source[slice_of(&mut rng, size)];
            let buffer = coordinator.create_buffer(size, MemoryUsage::FAST_DEVICE_ACCESS)?;
            let last = coordinator.upload_to(&buffer, 0, bytes)?;
            let model = (rng.below(4) == 0).then(|| bytes.to_vec());
            live.push(Tracked {
                buffer,
                model,
                last,
            });
        } else if roll < 28 {
            // A streamed mesh: a new buffer holding the data.
            let size = rng.log_uniform(64 * KIB, 4 * MIB);
            let bytes = &source[slice_of(&mut rng, size)];
            let (buffer, last) = coordinator.upload_slice(bytes)?;
            let model = (rng.below(4) == 0).then(|| bytes.to_vec());
            live.push(Tracked {
                buffer,
                model,
                last,
            });
        } else if roll < 32 {
            // A texture with every mip level, created with its texels.
            let desc = ImageDesc::new_2d(
                ImageFormat::Rgba8Unorm,
                rng.log_uniform(16, 512) as u32,
                rng.log_uniform(16, 512) as u32,
                // A transfer source too: the demo reads textures back to compare them.
                ImageUsage::SAMPLED | ImageUsage::TRANSFER_SRC,
            )
            .with_full_mip_chain();
            let texels = &source[slice_of(&mut rng, desc.packed_bytes())];
            let (image, last) = coordinator.create_image_with_data(
                &desc,
                MemoryUsage::FAST_DEVICE_ACCESS,
                texels,
            )?;
            // Half of them: textures are fewer than buffers.
            let model = (rng.below(2) == 0).then(|| texels.to_vec());
            textures.push(TrackedImage { image, model, last });
            if textures.len() > TEXTURES_PER_PRODUCER {
                let t = textures.remove(0);
                retire_texture(coordinator, t, &mut checks)?;
            }
        } else if roll < 36 && !textures.is_empty() {
            // A box of a texture's level 0 changes (a decal, a streamed tile).
            let pick = rng.below(textures.len() as u64) as usize;
            let t = &mut textures[pick];
            let (width, height) = (t.image.desc().width, t.image.desc().height);
            let (w, h) = (
                1 + rng.below(u64::from(width)),
                1 + rng.below(u64::from(height)),
            );
            let (x, y) = (
                rng.below(u64::from(width) - w + 1),
                rng.below(u64::from(height) - h + 1),
            );
            let region = ImageCopy {
                offset: [x as u32, y as u32, 0],
                extent: [w as u32, h as u32, 1],
                ..ImageCopy::whole_level(t.image.desc(), 0, 0)
            };
            let texels = &source[slice_of(&mut rng, w * h * 4)];
            t.last = coordinator.upload_image(&t.image, &[region], texels)?;
            if let Some(model) = &mut t.model {
                // Level 0 comes first in the packed levels, a row of `width` texels at a time.
                let row = (w * 4) as usize;
                for r in 0..h as usize {
                    let at = ((y as usize + r) * width as usize + x as usize) * 4;
                    model[at..at + row].copy_from_slice(&texels[r * row..(r + 1) * row]);
                }
            }
        } else if roll < 92 {
            // Part of a buffer changes: 64 B-64 KiB at a random place, overlapping earlier ones.
            let pick = rng.below(live.len() as u64) as usize;
            let t = &mut live[pick];
            let size = t.buffer.size();
            let len = rng.log_uniform(64, (64 * KIB).min(size));
            let offset = rng.below(size - len + 1);
            let range = slice_of(&mut rng, len);
            let bytes = &source[range];
            if roll < 86 {
                t.last = coordinator.upload_to(&t.buffer, offset, bytes)?;
            } else {
                // The explicit path: a staging grant written in place.
                let mut grant = coordinator.acquire_staging(bytes.len())?;
                grant.bytes_mut().copy_from_slice(bytes);
                t.last = coordinator.transfer_and_release(grant, &t.buffer, offset)?;
            }
            if let Some(model) = &mut t.model {
                model[offset as usize..(offset + len) as usize].copy_from_slice(bytes);
            }
        } else {
            let t = live.swap_remove(rng.below(live.len() as u64) as usize);
            retire(coordinator, t, &mut checks)?;
        }
        if live.len() > LIVE_PER_PRODUCER {
            let t = live.remove(0);
            retire(coordinator, t, &mut checks)?;
        }
        progress.add(1);
    }
    Ok((checks, live, textures))
}

/// Every level of `image`, each whole and packed after the one before: the layout
/// `Coordinator::create_image_with_data` takes, read back after the uploads made so far.
fn read_texture<D: Backend>(
    coordinator: &Coordinator<D>,
    image: &Image<D>,
) -> Result<Readback<D>, memkit_std::Error> {
    let desc = image.desc();
    let mut offset = 0;
    let regions: Vec<ImageCopy> = (0..desc.mip_levels)
        .map(|level| {
            let region = ImageCopy::whole_level(desc, level, offset);
            offset += region.packed_bytes(desc.format).unwrap_or(0);
            region
        })
        .collect();
    coordinator.read_back_image(image, &regions)
}

/// Drops a texture; a sampled one is read back first (after its uploads, without waiting for
/// them) and compared with its model once the copy completed: the texture is dropped while its
/// uploads and the read-back may still run, and must outlive them.
fn retire_texture<D: Backend>(
    coordinator: &Coordinator<D>,
    tracked: TrackedImage<D>,
    checks: &mut Checks,
) -> Result<(), memkit_std::Error> {
    let read = match &tracked.model {
        Some(_) => Some(read_texture(coordinator, &tracked.image)?),
        None => None,
    };
    let id = tracked.image.id();
    drop(tracked.image);
    if let (Some(read), Some(model)) = (read, &tracked.model) {
        checks.compare_texture(read, id, model, "dropped texture")?;
    }
    Ok(())
}

/// Drops a buffer; a sampled one is read back first (after the uploads staged for it, without
/// waiting for them) and compared with its model once the copy completed: the buffer is dropped
/// while its uploads and the read-back may still run, and must outlive them.
fn retire<D: Backend>(
    coordinator: &Coordinator<D>,
    tracked: Tracked<D>,
    checks: &mut Checks,
) -> Result<(), memkit_std::Error> {
    let read = match &tracked.model {
        Some(model) => Some(coordinator.read_back(&tracked.buffer, 0, model.len() as u64)?),
        None => None,
    };
    let id = tracked.buffer.id();
    checks.dropped += 1;
    drop(tracked.buffer);
    if let (Some(read), Some(model)) = (read, &tracked.model) {
        checks.compare(read, id, model, "dropped buffer")?;
    }
    Ok(())
}
