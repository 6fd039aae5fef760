//! Texture uploads through wgpu (`--only textures`): the peer of the `uploads` bench's images
//! section (tests/benches/uploads/images.rs), on the same textures with the same bytes.
//!
//! - `Device::create_texture` and one `Queue::write_texture` per mip level for each of 32
//!   2048x2048 `Rgba8Unorm` textures with their full chain, then one empty submit (which flushes
//!   the queue's pending writes) and a wait; the textures dropped after each repetition. memkit's
//!   peer figure: `create_image_with_data`, 1 thread (create, pool memory, CPU copy, copy, waited).
//! - `Queue::write_texture` of level 0 into the existing textures, then the submit and the wait.
//!   memkit's peer figure: `upload_image` level 0 re-uploads.
//! - every level of every texture read back: `copy_texture_to_buffer` per level into one
//!   `MAP_READ` buffer (rows padded to 256 bytes, as wgpu requires), one submit, `map_async`, a
//!   wait, and the rows copied out tightly packed (every byte compared). memkit's peer figure:
//!   `read_back_image` every level, `wait_into`.
//!
//! Figures are texel bytes over wall time, median of the repetitions after one warm-up. The
//! first texture's level 0 is read back (`copy_texture_to_buffer`) after the first timed
//! repetition of each case and compared byte for byte. `--quick`: 8 textures of 256x256.

use std::time::Instant;

use memkit_tests::bench_report::{Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;

use crate::{Gpu, WGPU_VERSION};

/// Textures per run (full size), as in the images bench.
const TEXTURES: usize = 32;

/// The textures and their bytes: `count` textures of `size` x `size` texels with every level,
/// each texture's levels packed one after another, textures end to end.
struct Workload {
    size: u32,
    levels: u32,
    count: usize,
    texels: Vec<u8>,
}

impl Workload {
    fn new(quick: bool) -> Self {
        let (size, count): (u32, usize) = if quick { (256, 8) } else { (2048, TEXTURES) };
        let levels = 32 - size.leading_zeros();
        let per: usize = (0..levels).map(|l| level_bytes(size, l)).sum();
        let mut texels = vec![0u8; per * count];
        // The images bench's seed: the same bytes.
        Rng::new(53).fill(&mut texels);
        Self {
            size,
            levels,
            count,
            texels,
        }
    }

    fn per_texture(&self) -> usize {
        self.texels.len() / self.count
    }

    /// The same label as the images bench, so figures pair up by name.
    fn label(&self) -> String {
        format!("{} x {}x{} rgba8 + mips", self.count, self.size, self.size)
    }
}

/// Bytes of mip level `level` of a `size` x `size` RGBA8 texture.
fn level_bytes(size: u32, level: u32) -> usize {
    let side = (size >> level).max(1) as usize;
    side * side * 4
}

fn create(gpu: &Gpu, work: &Workload) -> wgpu::Texture {
    gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("texture"),
        size: wgpu::Extent3d {
            width: work.size,
            height: work.size,
            depth_or_array_layers: 1,
        },
        mip_level_count: work.levels,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_DST
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// `Queue::write_texture` of level `level` from `bytes` (the level, tightly packed).
fn write_level(gpu: &Gpu, texture: &wgpu::Texture, size: u32, level: u32, bytes: &[u8]) {
    let side = (size >> level).max(1);
    gpu.queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: level,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        bytes,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(side * 4),
            rows_per_image: Some(side),
        },
        wgpu::Extent3d {
            width: side,
            height: side,
            depth_or_array_layers: 1,
        },
    );
}

/// Every texture created and every level written; submitted and waited.
fn create_all(gpu: &Gpu, work: &Workload) -> Vec<wgpu::Texture> {
    let per = work.per_texture();
    let textures: Vec<wgpu::Texture> = (0..work.count)
        .map(|i| {
            let texture = create(gpu, work);
            let mut at = i * per;
            for level in 0..work.levels {
                let len = level_bytes(work.size, level);
                write_level(gpu, &texture, work.size, level, &work.texels[at..at + len]);
                at += len;
            }
            texture
        })
        .collect();
    // An empty submit flushes the queue's pending writes.
    gpu.wait(gpu.queue.submit([]));
    textures
}

/// Level 0 of every texture written again; submitted and waited.
fn reupload_level0(gpu: &Gpu, work: &Workload, textures: &[wgpu::Texture]) {
    let per = work.per_texture();
    let len = level_bytes(work.size, 0);
    for (i, texture) in textures.iter().enumerate() {
        write_level(
            gpu,
            texture,
            work.size,
            0,
            &work.texels[i * per..i * per + len],
        );
    }
    gpu.wait(gpu.queue.submit([]));
}

/// Whether level 0 of `texture` holds the first texture's level-0 bytes.
fn level0_matches(gpu: &Gpu, work: &Workload, texture: &wgpu::Texture) -> bool {
    let len = level_bytes(work.size, 0);
    // Rows of size * 4 bytes: a multiple of 256 (COPY_BYTES_PER_ROW_ALIGNMENT) for both sizes.
    let readback = gpu.buffer(
        "level 0 readback",
        len as u64,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
    );
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(work.size * 4),
                rows_per_image: Some(work.size),
            },
        },
        wgpu::Extent3d {
            width: work.size,
            height: work.size,
            depth_or_array_layers: 1,
        },
    );
    let submission = gpu.queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| tx.send(r).expect("send"));
    gpu.wait(submission);
    rx.recv().expect("map callback").expect("map readback");
    let same = *readback
        .slice(..)
        .get_mapped_range()
        .expect("mapped readback")
        == work.texels[..len];
    readback.unmap();
    same
}

/// Row pitch of level `level` in a read-back buffer: rows padded to wgpu's
/// `COPY_BYTES_PER_ROW_ALIGNMENT` (256 bytes), as `copy_texture_to_buffer` requires.
fn padded_row(size: u32, level: u32) -> u32 {
    let side = (size >> level).max(1);
    (side * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
}

/// Every level of every texture read back: one encoder with a `copy_texture_to_buffer` per
/// level into one `MAP_READ` buffer (rows padded to 256 bytes), one submit, `map_async` of the
/// whole buffer, a wait, and every level's rows copied out tightly packed into `out` (laid out
/// as the textures' bytes are), then the unmap.
fn read_all(
    gpu: &Gpu,
    work: &Workload,
    textures: &[wgpu::Texture],
    landing: &wgpu::Buffer,
    out: &mut [u8],
) {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let mut at = 0u64;
    for texture in textures {
        for level in 0..work.levels {
            let side = (work.size >> level).max(1);
            encoder.copy_texture_to_buffer(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: level,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::TexelCopyBufferInfo {
                    buffer: landing,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: at,
                        bytes_per_row: Some(padded_row(work.size, level)),
                        rows_per_image: Some(side),
                    },
                },
                wgpu::Extent3d {
                    width: side,
                    height: side,
                    depth_or_array_layers: 1,
                },
            );
            at += u64::from(padded_row(work.size, level)) * u64::from(side);
        }
    }
    let submission = gpu.queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    landing
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| tx.send(r).expect("send"));
    gpu.wait(submission);
    rx.recv().expect("map callback").expect("map landing");
    {
        let mapped = landing
            .slice(..)
            .get_mapped_range()
            .expect("mapped landing");
        let (mut from, mut to) = (0usize, 0usize);
        for _ in textures {
            for level in 0..work.levels {
                let side = (work.size >> level).max(1) as usize;
                let (pitch, row) = (padded_row(work.size, level) as usize, side * 4);
                for y in 0..side {
                    out[to + y * row..to + (y + 1) * row]
                        .copy_from_slice(&mapped[from + y * pitch..from + y * pitch + row]);
                }
                from += pitch * side;
                to += row * side;
            }
        }
    }
    landing.unmap();
}

/// Median seconds of `reps` runs of `once` after `warmup`; `check` runs after the first timed
/// one.
fn timed(
    reps: usize,
    warmup: impl FnOnce(),
    mut once: impl FnMut(),
    mut check: impl FnMut(),
) -> f64 {
    warmup();
    let times = (0..reps)
        .map(|rep| {
            let start = Instant::now();
            once();
            let t = start.elapsed().as_secs_f64();
            if rep == 0 {
                check();
            }
            t
        })
        .collect();
    median(times)
}

pub(crate) fn run(report: &mut Report, gpu: &Gpu, quick: bool, reps: usize) {
    let work = Workload::new(quick);
    let label = work.label();
    println!(
        "textures: {label} ({:.1} MiB each, {:.0} MiB in all)",
        work.per_texture() as f64 / (1 << 20) as f64,
        work.texels.len() as f64 / (1 << 20) as f64
    );
    let mut wrong = Vec::new();

    let name = format!("8. wgpu {WGPU_VERSION} create_texture + Queue::write_texture, {label}");
    let mut created_ok = true;
    let t = timed(
        reps,
        || drop(create_all(gpu, &work)),
        || drop(create_all(gpu, &work)),
        || {
            // Fresh textures: what they hold was written by this run.
            let textures = create_all(gpu, &work);
            created_ok = level0_matches(gpu, &work, &textures[0]);
        },
    );
    if !created_ok {
        wrong.push(name.clone());
    }
    report.add(
        &name,
        gbps(work.texels.len() as u64, t),
        "GB/s",
        &format!(
            "{:.1} ms; create + write every level, one submit, waited; readback {}",
            t * 1e3,
            if created_ok { "ok" } else { "WRONG" }
        ),
    );

    let name = format!("8. wgpu {WGPU_VERSION} Queue::write_texture level 0 re-uploads, {label}");
    let textures = create_all(gpu, &work);
    // The warm-up writes zeros over level 0, so the check sees the first timed run's writes.
    let zeros = vec![0u8; level_bytes(work.size, 0)];
    let mut reupload_ok = true;
    let t = timed(
        reps,
        || {
            for texture in &textures {
                write_level(gpu, texture, work.size, 0, &zeros);
            }
            gpu.wait(gpu.queue.submit([]));
        },
        || reupload_level0(gpu, &work, &textures),
        || reupload_ok = level0_matches(gpu, &work, &textures[0]),
    );
    if !reupload_ok {
        wrong.push(name.clone());
    }
    let level0 = (level_bytes(work.size, 0) * work.count) as u64;
    report.add(
        &name,
        gbps(level0, t),
        "GB/s",
        &format!(
            "{:.1} ms; level 0 only, into existing textures; readback {}",
            t * 1e3,
            if reupload_ok { "ok" } else { "WRONG" }
        ),
    );

    let name =
        format!("8. wgpu {WGPU_VERSION} copy_texture_to_buffer + map_async every level, {label}");
    let textures = create_all(gpu, &work);
    let padded: u64 = (0..work.levels)
        .map(|l| u64::from(padded_row(work.size, l)) * u64::from((work.size >> l).max(1)))
        .sum();
    let landing = gpu.buffer(
        "texture readback",
        padded * work.count as u64,
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
    );
    let mut out = vec![0u8; work.texels.len()];
    let t = timed(
        reps,
        || {
            read_all(
                gpu,
                &work,
                &textures,
                &landing,
                &mut vec![0u8; work.texels.len()],
            )
        },
        || read_all(gpu, &work, &textures, &landing, &mut out),
        || {},
    );
    let read_ok = out == work.texels;
    if !read_ok {
        wrong.push(name.clone());
    }
    report.add(
        &name,
        gbps(work.texels.len() as u64, t),
        "GB/s",
        &format!(
            "{:.1} ms; one submit, rows padded to 256 bytes and repacked; bytes {}",
            t * 1e3,
            if read_ok { "ok" } else { "WRONG" }
        ),
    );
    report.failures.extend(
        wrong
            .into_iter()
            .map(|name| format!("{name}: wrong bytes on readback")),
    );
}
