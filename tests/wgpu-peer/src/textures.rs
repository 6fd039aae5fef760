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
//!
//! Then the same in BC7 (`Bc7RgbaUnormSrgb`, 4x4 blocks of 16 bytes) where the adapter has
//! `TEXTURE_COMPRESSION_BC`, as the images bench does: rows of blocks all the way through, and
//! levels below 4x4 texels copied as one whole block.

use std::time::Instant;

use memkit_tests::bench_report::{Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;

use crate::{Gpu, WGPU_VERSION};

/// Textures per run (full size), as in the images bench.
const TEXTURES: usize = 32;

/// The textures and their bytes: `count` textures of `size` x `size` texels with every level,
/// each texture's levels packed one after another, textures end to end.
struct Workload {
    format: wgpu::TextureFormat,
    /// Texels on a side of one block (1 for RGBA8, 4 for BC7) and its bytes.
    block: u32,
    block_bytes: u32,
    size: u32,
    levels: u32,
    count: usize,
    texels: Vec<u8>,
}

impl Workload {
    fn new(quick: bool, format: wgpu::TextureFormat) -> Self {
        let (size, count): (u32, usize) = if quick { (256, 8) } else { (2048, TEXTURES) };
        let (block, _) = format.block_dimensions();
        let block_bytes = format.block_copy_size(None).expect("a color format");
        let mut work = Self {
            format,
            block,
            block_bytes,
            size,
            levels: 32 - size.leading_zeros(),
            count,
            texels: Vec::new(),
        };
        let per: usize = (0..work.levels).map(|l| work.level_bytes(l)).sum();
        work.texels = vec![0u8; per * count];
        // The images bench's seed: the same bytes.
        Rng::new(53).fill(&mut work.texels);
        work
    }

    /// Blocks on a side of level `level` (rows of blocks, and blocks in a row).
    fn blocks(&self, level: u32) -> u32 {
        (self.size >> level).max(1).div_ceil(self.block)
    }

    /// Texels on a side of level `level` as copies name it: whole blocks.
    fn extent(&self, level: u32) -> wgpu::Extent3d {
        let side = self.blocks(level) * self.block;
        wgpu::Extent3d {
            width: side,
            height: side,
            depth_or_array_layers: 1,
        }
    }

    /// Bytes of one row of blocks of level `level`, tightly packed.
    fn row_bytes(&self, level: u32) -> u32 {
        self.blocks(level) * self.block_bytes
    }

    /// Bytes of level `level`, tightly packed.
    fn level_bytes(&self, level: u32) -> usize {
        self.row_bytes(level) as usize * self.blocks(level) as usize
    }

    /// Row pitch of level `level` in a read-back buffer: rows padded to wgpu's
    /// `COPY_BYTES_PER_ROW_ALIGNMENT` (256 bytes), as `copy_texture_to_buffer` requires.
    fn padded_row(&self, level: u32) -> u32 {
        self.row_bytes(level)
            .next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
    }

    fn per_texture(&self) -> usize {
        self.texels.len() / self.count
    }

    /// The same label as the images bench, so figures pair up by name.
    fn label(&self) -> String {
        let format = match self.format {
            wgpu::TextureFormat::Rgba8Unorm => "rgba8".to_string(),
            wgpu::TextureFormat::Bc7RgbaUnormSrgb => "bc7".to_string(),
            other => format!("{other:?}"),
        };
        format!(
            "{} x {}x{} {format} + mips",
            self.count, self.size, self.size
        )
    }
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
        format: work.format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_DST
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// `Queue::write_texture` of level `level` from `bytes` (the level, tightly packed).
fn write_level(gpu: &Gpu, work: &Workload, texture: &wgpu::Texture, level: u32, bytes: &[u8]) {
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
            bytes_per_row: Some(work.row_bytes(level)),
            rows_per_image: Some(work.blocks(level)),
        },
        work.extent(level),
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
                let len = work.level_bytes(level);
                write_level(gpu, work, &texture, level, &work.texels[at..at + len]);
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
    let len = work.level_bytes(0);
    for (i, texture) in textures.iter().enumerate() {
        write_level(gpu, work, texture, 0, &work.texels[i * per..i * per + len]);
    }
    gpu.wait(gpu.queue.submit([]));
}

/// Whether level 0 of `texture` holds the first texture's level-0 bytes.
fn level0_matches(gpu: &Gpu, work: &Workload, texture: &wgpu::Texture) -> bool {
    let len = work.level_bytes(0);
    // Rows of 1 KiB and more, multiples of 256 (COPY_BYTES_PER_ROW_ALIGNMENT) in every workload.
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
                bytes_per_row: Some(work.row_bytes(0)),
                rows_per_image: Some(work.blocks(0)),
            },
        },
        work.extent(0),
    );
    gpu.read_mapped(encoder, &readback, |seen| *seen == work.texels[..len])
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
                        bytes_per_row: Some(work.padded_row(level)),
                        rows_per_image: Some(work.blocks(level)),
                    },
                },
                work.extent(level),
            );
            at += u64::from(work.padded_row(level)) * u64::from(work.blocks(level));
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
                let rows = work.blocks(level) as usize;
                let (pitch, row) = (
                    work.padded_row(level) as usize,
                    work.row_bytes(level) as usize,
                );
                for y in 0..rows {
                    out[to + y * row..to + (y + 1) * row]
                        .copy_from_slice(&mapped[from + y * pitch..from + y * pitch + row]);
                }
                from += pitch * rows;
                to += row * rows;
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
    run_format(report, gpu, quick, reps, wgpu::TextureFormat::Rgba8Unorm);
    let bc = wgpu::Features::TEXTURE_COMPRESSION_BC;
    if gpu.device.features().contains(bc) {
        run_format(
            report,
            gpu,
            quick,
            reps,
            wgpu::TextureFormat::Bc7RgbaUnormSrgb,
        );
    } else {
        println!("textures: bc7 skipped: the adapter lacks TEXTURE_COMPRESSION_BC");
    }
}

/// Every texture case on textures of `format`.
fn run_format(
    report: &mut Report,
    gpu: &Gpu,
    quick: bool,
    reps: usize,
    format: wgpu::TextureFormat,
) {
    let work = Workload::new(quick, format);
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
    let zeros = vec![0u8; work.level_bytes(0)];
    let mut reupload_ok = true;
    let t = timed(
        reps,
        || {
            for texture in &textures {
                write_level(gpu, &work, texture, 0, &zeros);
            }
            gpu.wait(gpu.queue.submit([]));
        },
        || reupload_level0(gpu, &work, &textures),
        || reupload_ok = level0_matches(gpu, &work, &textures[0]),
    );
    if !reupload_ok {
        wrong.push(name.clone());
    }
    let level0 = (work.level_bytes(0) * work.count) as u64;
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
        .map(|l| u64::from(work.padded_row(l)) * u64::from(work.blocks(l)))
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
