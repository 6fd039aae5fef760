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
    let barrier = image_barrier(
        image,
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
}
