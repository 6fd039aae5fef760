use ash::vk::Handle;
use memkit_core::device::{ImageFormat, ImageUsage};

use super::*;
use crate::barrier::{image_acquire_barrier, image_return_barrier};

const OUT_TO_0: OwnershipTransfer = OwnershipTransfer {
    src_family: 1,
    dst_family: 0,
};

fn sampled() -> ImageDesc {
    ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        4,
        4,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
    )
}

/// Layouts and families of a barrier, the parts two halves of a transfer must agree on.
fn shape(b: &vk::ImageMemoryBarrier<'_>) -> (vk::ImageLayout, vk::ImageLayout, u32, u32) {
    (
        b.old_layout,
        b.new_layout,
        b.src_queue_family_index,
        b.dst_queue_family_index,
    )
}

#[test]
fn within_one_family_a_read_goes_to_the_source_layout_and_back() {
    let image = vk::Image::from_raw(7);
    let ignored = vk::QUEUE_FAMILY_IGNORED;
    let shader = vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL;
    let source = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
    let before = barriers_before(image, &sampled(), None);
    let after = barriers_after(image, &sampled(), None);
    assert_eq!(before.len(), 1);
    assert_eq!(shape(&before[0]), (shader, source, ignored, ignored));
    assert_eq!(before[0].dst_access_mask, vk::AccessFlags::TRANSFER_READ);
    assert_eq!(after.len(), 1);
    assert_eq!(shape(&after[0]), (source, shader, ignored, ignored));
    assert!(before.iter().chain(&after).all(|b| b.image == image));
    // A storage image lives in GENERAL.
    let storage = ImageDesc {
        usage: ImageUsage::STORAGE | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
        ..sampled()
    };
    let general = vk::ImageLayout::GENERAL;
    assert_eq!(
        shape(&barriers_before(image, &storage, None)[0]),
        (general, source, ignored, ignored)
    );
    assert_eq!(
        shape(&barriers_after(image, &storage, None)[0]),
        (source, general, ignored, ignored)
    );
}

#[test]
fn under_a_release_a_read_reclaims_what_was_returned_and_releases_it_again() {
    let image = vk::Image::from_raw(9);
    let desc = sampled();
    let before = barriers_before(image, &desc, Some(OUT_TO_0));
    let after = barriers_after(image, &desc, Some(OUT_TO_0));
    let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
    let source = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
    let ignored = vk::QUEUE_FAMILY_IGNORED;
    // The reclaim matches the application's return; then on to the source layout.
    let returned = image_return_barrier(OUT_TO_0, image, &desc, vk::AccessFlags::empty());
    assert_eq!(before.len(), 2);
    assert_eq!(shape(&before[0]), shape(&returned));
    assert_eq!(shape(&before[1]), (dst, source, ignored, ignored));
    // Back to the layout a release starts from, and the release the application's acquire
    // (the one it records after any upload) matches.
    let acquire = image_acquire_barrier(OUT_TO_0, image, &desc, vk::AccessFlags::SHADER_READ);
    assert_eq!(after.len(), 2);
    assert_eq!(shape(&after[0]), (source, dst, ignored, ignored));
    assert_eq!(shape(&after[1]), shape(&acquire));
    assert!(before.iter().chain(&after).all(|b| b.image == image));
}
