//! The demo's transient resources: one frame's attachments and scratch buffers made with
//! `Coordinator::create_aliased_resources`, so resources never in use together share bytes (a
//! buffer and an image in use together keep off each other's granularity pages). The demo walks
//! the frame's passes: each resource is written (an upload stands for the pass that renders or
//! computes it) in its first pass and read back and compared in its last, while resources of
//! earlier passes have already given their bytes away. At the end each must count as holding
//! its bytes exactly when no resource sharing them was written after it.

use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_std::{AliasedBufferDesc, AliasedImageDesc, Coordinator, MemoryUsage};

use crate::backend::Backend;
use crate::demo::Checks;
use crate::rng::Rng;

/// What the frame's transient resources took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderTargets {
    /// Images made.
    pub images: u64,
    /// Buffers made.
    pub buffers: u64,
    /// Bytes of the memory they share.
    pub bytes: u64,
    /// Bytes they would take each in memory of its own.
    pub unaliased_bytes: u64,
}

/// A 1080p deferred frame: the G-buffer (albedo and normals, passes 0-1), the HDR lighting
/// result (1-2), half-resolution bloom (2-3) and the tone-mapped output (3-4).
fn frame_targets() -> [AliasedImageDesc; 5] {
    let usage = ImageUsage::COLOR_ATTACHMENT
        | ImageUsage::SAMPLED
        | ImageUsage::TRANSFER_SRC
        | ImageUsage::TRANSFER_DST;
    let target = |format, width, height, first_use, last_use| AliasedImageDesc {
        desc: ImageDesc::new_2d(format, width, height, usage),
        first_use,
        last_use,
    };
    [
        target(ImageFormat::Rgba8Unorm, 1920, 1080, 0, 1),
        target(ImageFormat::Rgba16Float, 1920, 1080, 0, 1),
        target(ImageFormat::Rgba16Float, 1920, 1080, 1, 2),
        target(ImageFormat::Rgba16Float, 960, 540, 2, 3),
        target(ImageFormat::Rgba8Unorm, 1920, 1080, 3, 4),
    ]
}

/// The same frame's scratch buffers: per-tile light lists (culled in pass 0, read by the
/// lighting in pass 1, in use with the G-buffer) and the luminance histogram of the exposure
/// (passes 3-4, free to take the G-buffer's bytes).
fn frame_buffers() -> [AliasedBufferDesc; 2] {
    [
        AliasedBufferDesc {
            size: 2 << 20,
            first_use: 0,
            last_use: 1,
        },
        AliasedBufferDesc {
            size: 64 << 10,
            first_use: 3,
            last_use: 4,
        },
    ]
}

/// Makes the frame's resources, walks its passes, and records every difference in `checks`.
pub fn run<D: Backend>(
    coordinator: &Coordinator<D>,
    seed: u64,
    checks: &mut Checks,
) -> Result<RenderTargets, memkit_std::Error> {
    let targets = frame_targets();
    let buffers = frame_buffers();
    let set = coordinator.create_aliased_resources(
        &targets,
        &buffers,
        MemoryUsage::FAST_DEVICE_ACCESS,
    )?;
    let mut rng = Rng::new(seed, u64::MAX);
    // Resource `i` is image `i`, then buffer `i - targets.len()`.
    let count = targets.len() + buffers.len();
    let span = |i: usize| match i.checked_sub(targets.len()) {
        None => (targets[i].first_use, targets[i].last_use),
        Some(b) => (buffers[b].first_use, buffers[b].last_use),
    };
    let mut models: Vec<Vec<u8>> = vec![Vec::new(); count];
    // Resource indices in the order they were written.
    let mut written = Vec::new();
    let last_pass = (0..count).map(|i| span(i).1).max().unwrap_or(0);
    for pass in 0..=last_pass {
        for i in (0..count).filter(|&i| span(i).0 == pass) {
            match i.checked_sub(targets.len()) {
                None => {
                    let desc = &targets[i].desc;
                    let mut texels = vec![0; desc.packed_bytes() as usize];
                    rng.fill(&mut texels);
                    let region = ImageCopy::whole_level(desc, 0, 0);
                    coordinator.upload_image(&set.images[i], &[region], &texels)?;
                    models[i] = texels;
                }
                Some(b) => {
                    let mut bytes = vec![0; buffers[b].size as usize];
                    rng.fill(&mut bytes);
                    coordinator.upload_to(&set.buffers[b], 0, &bytes)?;
                    models[i] = bytes;
                }
            }
            written.push(i);
        }
        for i in (0..count).filter(|&i| span(i).1 == pass) {
            match i.checked_sub(targets.len()) {
                None => {
                    let image = &set.images[i];
                    let region = ImageCopy::whole_level(&targets[i].desc, 0, 0);
                    let read = coordinator.read_back_image(image, &[region])?;
                    checks.compare_texture(read, image.id(), &models[i], "render target")?;
                }
                Some(b) => {
                    let buffer = &set.buffers[b];
                    let read = coordinator.read_back(buffer, 0, buffer.size())?;
                    checks.compare(read, buffer.id(), &models[i], "frame scratch buffer")?;
                }
            }
        }
    }
    // Which resources still hold their bytes: those no later-written resource overlaps.
    let range = |i: usize| {
        let (memory, offset, size) = match i.checked_sub(targets.len()) {
            None => {
                let (memory, offset) = set.images[i].memory();
                (memory, offset, set.images[i].memory_size())
            }
            Some(b) => {
                let (memory, offset) = set.buffers[b].memory();
                (memory, offset, set.buffers[b].size())
            }
        };
        (memory, offset, offset + size)
    };
    let overlap = |a: usize, b: usize| {
        let ((ma, sa, ea), (mb, sb, eb)) = (range(a), range(b));
        ma == mb && sa < eb && sb < ea
    };
    for (order, &i) in written.iter().enumerate() {
        let expected = !written[order + 1..].iter().any(|&later| overlap(i, later));
        let (what, id, holds) = match i.checked_sub(targets.len()) {
            None => (
                "render target",
                set.images[i].id(),
                set.images[i].is_written(),
            ),
            Some(b) => (
                "scratch buffer",
                set.buffers[b].id(),
                !set.buffers[b].is_overwritten(),
            ),
        };
        if holds != expected {
            checks.mismatches.push(format!(
                "{what} {i} (id {id}): counts as {}holding its bytes, but {}",
                if expected { "not " } else { "" },
                if expected {
                    "nothing written after it shares them"
                } else {
                    "a resource written after it took them"
                }
            ));
        }
    }
    Ok(RenderTargets {
        images: set.images.len() as u64,
        buffers: set.buffers.len() as u64,
        bytes: set.bytes,
        unaliased_bytes: set.unaliased_bytes,
    })
}
