use ash::vk::Handle;
use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};

use super::*;

fn command(dst: u64, regions: &[ImageCopy]) -> ImageCopyCommand<'_, vk::Buffer, vk::Image> {
    ImageCopyCommand {
        src: vk::Buffer::from_raw(100),
        dst: vk::Image::from_raw(dst),
        desc: ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, ImageUsage::TRANSFER_DST),
        keep_contents: false,
        regions,
    }
}

#[test]
fn runs_end_before_an_image_named_again() {
    let mut recorder = ImageCopyRecorder::default();
    let c = |dst| command(dst, &[]);
    assert_eq!(recorder.run_len(&[]), 0);
    assert_eq!(recorder.run_len(&[c(1), c(2), c(3)]), 3);
    assert_eq!(recorder.run_len(&[c(1), c(2), c(1), c(3)]), 2);
    assert_eq!(recorder.run_len(&[c(1), c(1)]), 1);
    assert_eq!(recorder.run_len(&[c(2), c(3), c(4), c(3)]), 3);
}

#[test]
fn barriers_cover_every_subresource_within_the_family() {
    let image = vk::Image::from_raw(7);
    let barrier = within_family(
        image,
        ImageFormat::Rgba8Unorm,
        vk::ImageLayout::UNDEFINED,
        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
    );
    assert_eq!(barrier.image, image);
    assert_eq!(barrier.old_layout, vk::ImageLayout::UNDEFINED);
    assert_eq!(barrier.new_layout, vk::ImageLayout::TRANSFER_DST_OPTIMAL);
    assert_eq!(barrier.src_queue_family_index, vk::QUEUE_FAMILY_IGNORED);
    assert_eq!(barrier.dst_queue_family_index, vk::QUEUE_FAMILY_IGNORED);
    let range = barrier.subresource_range;
    assert_eq!(range.aspect_mask, vk::ImageAspectFlags::COLOR);
    assert_eq!((range.base_mip_level, range.base_array_layer), (0, 0));
    assert_eq!(range.level_count, vk::REMAINING_MIP_LEVELS);
    assert_eq!(range.layer_count, vk::REMAINING_ARRAY_LAYERS);
    // Every aspect of a depth-stencil image, and the one of a depth or stencil image.
    for (format, aspects) in [
        (ImageFormat::D32Float, vk::ImageAspectFlags::DEPTH),
        (ImageFormat::S8Uint, vk::ImageAspectFlags::STENCIL),
        (
            ImageFormat::D24UnormS8Uint,
            vk::ImageAspectFlags::DEPTH | vk::ImageAspectFlags::STENCIL,
        ),
    ] {
        let range = within_family(
            image,
            format,
            vk::ImageLayout::UNDEFINED,
            vk::ImageLayout::GENERAL,
        )
        .subresource_range;
        assert_eq!(range.aspect_mask, aspects, "{format:?}");
    }
}

const OUT_TO_0: OwnershipTransfer = OwnershipTransfer {
    src_family: 1,
    dst_family: 0,
};

/// Families and layouts of a barrier, for comparing.
fn shape(b: &vk::ImageMemoryBarrier<'_>) -> (u32, u32, vk::ImageLayout, vk::ImageLayout) {
    (
        b.src_queue_family_index,
        b.dst_queue_family_index,
        b.old_layout,
        b.new_layout,
    )
}

#[test]
fn under_a_release_each_image_leaves_once_and_comes_back_once() {
    use vk::ImageLayout as L;
    const I: u32 = vk::QUEUE_FAMILY_IGNORED;
    let regions = [];
    let c = |dst, keep_contents| ImageCopyCommand {
        keep_contents,
        ..command(dst, &regions)
    };
    // Image 1 three times (discard, keep, keep), image 2 once (keep), image 3 once (discard).
    let commands = [c(1, false), c(2, true), c(1, true), c(3, false), c(1, true)];
    let release = Some(OUT_TO_0);
    let entries: Vec<_> = (0..commands.len())
        .map(|i| shape(&entry_barrier(&commands, i, release)))
        .collect();
    let exits: Vec<_> = (0..commands.len())
        .map(|i| shape(&exit_barrier(&commands, i, release)))
        .collect();
    let after = L::GENERAL; // `command`'s images are transfer-only.
    let to_dst = L::TRANSFER_DST_OPTIMAL;
    assert_eq!(
        entries,
        [
            (I, I, L::UNDEFINED, to_dst), // discards: no transfer needed
            (0, 1, after, to_dst),        // keeps, first of image 2: reclaimed
            (I, I, after, to_dst),        // image 1 is still memkit's
            (I, I, L::UNDEFINED, to_dst),
            (I, I, after, to_dst),
        ]
    );
    assert_eq!(
        exits,
        [
            (I, I, to_dst, after), // image 1 comes again
            (1, 0, to_dst, after), // released
            (I, I, to_dst, after), // image 1 comes again
            (1, 0, to_dst, after),
            (1, 0, to_dst, after), // image 1's last
        ]
    );
    // Without a release (or between equal families, which `record` filters out), every barrier
    // stays within the family.
    for i in 0..commands.len() {
        for b in [
            entry_barrier(&commands, i, None),
            exit_barrier(&commands, i, None),
        ] {
            assert_eq!((b.src_queue_family_index, b.dst_queue_family_index), (I, I));
        }
    }
}
