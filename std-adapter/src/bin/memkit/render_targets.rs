//! The demo's render targets: one frame's attachments made with
//! `Coordinator::create_aliased_images`, so targets never in use together share bytes. The
//! demo walks the frame's passes: each target is written (an upload stands for the pass that
//! renders it) in its first pass and read back and compared in its last, while targets of
//! earlier passes have already given their bytes away. At the end each target must count as
//! written exactly when no target sharing its bytes was written after it.

use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_std::{AliasedImageDesc, Coordinator, MemoryUsage};

use crate::backend::Backend;
use crate::demo::Checks;
use crate::rng::Rng;

/// What the render targets took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderTargets {
    /// Targets made.
    pub images: u64,
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

/// Makes the frame's targets, walks its passes, and records every difference in `checks`.
pub fn run<D: Backend>(
    coordinator: &Coordinator<D>,
    seed: u64,
    checks: &mut Checks,
) -> Result<RenderTargets, memkit_std::Error> {
    let targets = frame_targets();
    let set = coordinator.create_aliased_images(&targets, MemoryUsage::FAST_DEVICE_ACCESS)?;
    let mut rng = Rng::new(seed, u64::MAX);
    let mut models: Vec<Vec<u8>> = vec![Vec::new(); targets.len()];
    // Target indices in the order they were written.
    let mut written = Vec::new();
    let last_pass = targets.iter().map(|t| t.last_use).max().unwrap_or(0);
    for pass in 0..=last_pass {
        for (i, target) in targets.iter().enumerate() {
            if target.first_use == pass {
                let image = &set.images[i];
                let mut texels = vec![0; target.desc.packed_bytes() as usize];
                rng.fill(&mut texels);
                let region = ImageCopy::whole_level(&target.desc, 0, 0);
                coordinator.upload_image(image, &[region], &texels)?;
                models[i] = texels;
                written.push(i);
            }
        }
        for (i, target) in targets.iter().enumerate() {
            if target.last_use == pass {
                let image = &set.images[i];
                let read = coordinator
                    .read_back_image(image, &[ImageCopy::whole_level(&target.desc, 0, 0)])?;
                checks.compare_texture(read, image.id(), &models[i], "render target")?;
            }
        }
    }
    // Which targets still hold their texels: those no later-written target overlaps.
    let range = |i: usize| {
        let (memory, offset) = set.images[i].memory();
        (memory, offset, offset + set.images[i].memory_size())
    };
    let overlap = |a: usize, b: usize| {
        let ((ma, sa, ea), (mb, sb, eb)) = (range(a), range(b));
        ma == mb && sa < eb && sb < ea
    };
    for (order, &i) in written.iter().enumerate() {
        let expected = !written[order + 1..].iter().any(|&later| overlap(i, later));
        if set.images[i].is_written() != expected {
            checks.mismatches.push(format!(
                "render target {i} (image {}): counts as {}written, but {}",
                set.images[i].id(),
                if expected { "not " } else { "" },
                if expected {
                    "no target written after it shares its bytes"
                } else {
                    "a target written after it took its bytes"
                }
            ));
        }
    }
    Ok(RenderTargets {
        images: set.images.len() as u64,
        bytes: set.bytes,
        unaliased_bytes: set.unaliased_bytes,
    })
}
