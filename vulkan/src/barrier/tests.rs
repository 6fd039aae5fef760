use super::*;
use ash::vk::Handle;
use memkit_core::device::BufferCopy;

const TRANSFER: OwnershipTransfer = OwnershipTransfer {
    src_family: 1,
    dst_family: 0,
};

#[test]
fn release_and_acquire_name_the_same_range_and_families() {
    let buffer = vk::Buffer::from_raw(0x1234);
    let release = release_barrier(TRANSFER, buffer, 256, 1024);
    let acquire = acquire_barrier(TRANSFER, buffer, 256, 1024, vk::AccessFlags::SHADER_READ);
    for b in [&release, &acquire] {
        assert_eq!(b.buffer, buffer);
        assert_eq!((b.offset, b.size), (256, 1024));
        assert_eq!(b.src_queue_family_index, 1);
        assert_eq!(b.dst_queue_family_index, 0);
    }
    assert_eq!(release.src_access_mask, vk::AccessFlags::TRANSFER_WRITE);
    assert_eq!(release.dst_access_mask, vk::AccessFlags::empty());
    assert_eq!(acquire.src_access_mask, vk::AccessFlags::empty());
    assert_eq!(acquire.dst_access_mask, vk::AccessFlags::SHADER_READ);
    assert!(TRANSFER.is_transfer());
    assert!(
        !OwnershipTransfer {
            src_family: 2,
            dst_family: 2
        }
        .is_transfer()
    );
}

#[test]
fn per_command_barriers_cover_the_destination_span() {
    let a = vk::Buffer::from_raw(1);
    let b = vk::Buffer::from_raw(2);
    let c = vk::Buffer::from_raw(3);
    let regions = [
        BufferCopy {
            src_offset: 0,
            dst_offset: 4096,
            size: 16,
        },
        BufferCopy {
            src_offset: 16,
            dst_offset: 64,
            size: 32,
        },
    ];
    let commands = [
        CopyCommand {
            src: a,
            dst: b,
            regions: &regions,
        },
        // No regions: no barrier.
        CopyCommand {
            src: a,
            dst: c,
            regions: &[],
        },
    ];
    let mut releases = Vec::new();
    let mut acquires = Vec::new();
    release_barriers_for(TRANSFER, &commands, &mut releases);
    acquire_barriers_for(
        TRANSFER,
        &commands,
        vk::AccessFlags::VERTEX_ATTRIBUTE_READ,
        &mut acquires,
    );
    assert_eq!(releases.len(), 1);
    assert_eq!(acquires.len(), 1);
    assert_eq!(releases[0].buffer, b);
    assert_eq!((releases[0].offset, releases[0].size), (64, 4096 + 16 - 64));
    assert_eq!(
        (acquires[0].buffer, acquires[0].offset, acquires[0].size),
        (releases[0].buffer, releases[0].offset, releases[0].size)
    );
}

#[test]
fn image_halves_name_the_same_image_layouts_and_families() {
    use memkit_core::device::{ImageDesc, ImageFormat, ImageUsage};
    let image = vk::Image::from_raw(0x77);
    let sampled = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        16,
        16,
        ImageUsage::TRANSFER_DST | ImageUsage::SAMPLED,
    );
    let release = image_release_barrier(TRANSFER, image, &sampled);
    let acquire = image_acquire_barrier(TRANSFER, image, &sampled, vk::AccessFlags::SHADER_READ);
    let give_back = image_return_barrier(TRANSFER, image, &sampled, vk::AccessFlags::SHADER_WRITE);
    let reclaim = image_reclaim_barrier(TRANSFER, image, &sampled);
    for b in [&release, &acquire, &give_back, &reclaim] {
        assert_eq!(b.image, image);
        let range = b.subresource_range;
        assert_eq!(range.aspect_mask, vk::ImageAspectFlags::COLOR);
        assert_eq!((range.base_mip_level, range.base_array_layer), (0, 0));
        assert_eq!(
            (range.level_count, range.layer_count),
            (vk::REMAINING_MIP_LEVELS, vk::REMAINING_ARRAY_LAYERS)
        );
    }
    // Out to the application's family, transitioned once to the layout after upload.
    for b in [&release, &acquire] {
        assert_eq!((b.src_queue_family_index, b.dst_queue_family_index), (1, 0));
        assert_eq!(b.old_layout, vk::ImageLayout::TRANSFER_DST_OPTIMAL);
        assert_eq!(b.new_layout, vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL);
    }
    // And back, transitioned once to the transfer layout.
    for b in [&give_back, &reclaim] {
        assert_eq!((b.src_queue_family_index, b.dst_queue_family_index), (0, 1));
        assert_eq!(b.old_layout, vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL);
        assert_eq!(b.new_layout, vk::ImageLayout::TRANSFER_DST_OPTIMAL);
    }
    assert_eq!(
        (release.src_access_mask, release.dst_access_mask),
        (vk::AccessFlags::TRANSFER_WRITE, vk::AccessFlags::empty())
    );
    assert_eq!(
        (acquire.src_access_mask, acquire.dst_access_mask),
        (vk::AccessFlags::empty(), vk::AccessFlags::SHADER_READ)
    );
    assert_eq!(
        (give_back.src_access_mask, give_back.dst_access_mask),
        (vk::AccessFlags::SHADER_WRITE, vk::AccessFlags::empty())
    );
    assert_eq!(
        (reclaim.src_access_mask, reclaim.dst_access_mask),
        (vk::AccessFlags::empty(), vk::AccessFlags::TRANSFER_WRITE)
    );
    // A storage image stays in `GENERAL`.
    let storage = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        16,
        16,
        ImageUsage::TRANSFER_DST | ImageUsage::STORAGE,
    );
    assert_eq!(
        image_release_barrier(TRANSFER, image, &storage).new_layout,
        vk::ImageLayout::GENERAL
    );
}

#[test]
fn one_image_acquire_per_image_in_first_appearance_order() {
    use memkit_core::device::{ImageCopyCommand, ImageDesc, ImageFormat, ImageUsage};
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 4, ImageUsage::TRANSFER_DST);
    let command = |dst| ImageCopyCommand {
        src: vk::Buffer::from_raw(100),
        dst: vk::Image::from_raw(dst),
        desc,
        keep_contents: false,
        regions: &[],
    };
    let commands = [command(5), command(3), command(5), command(9), command(3)];
    let mut acquires = Vec::new();
    image_acquire_barriers_for(
        TRANSFER,
        &commands,
        vk::AccessFlags::SHADER_READ,
        &mut acquires,
    );
    let images: Vec<u64> = acquires.iter().map(|b| b.image.as_raw()).collect();
    assert_eq!(images, [5, 3, 9]);
}
