use std::string::ToString;

use super::{ImageCopy, ImageCopyError, ImageLayout};
use crate::device::{DeviceError, ImageDesc, ImageFormat, ImageUsage};

const UPLOADABLE: ImageUsage = ImageUsage::SAMPLED.union(ImageUsage::TRANSFER_DST);

/// A 100 x 60 texture, full mip chain (7 levels: 100x60 down to 1x1), 3 layers.
fn texture() -> ImageDesc {
    ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 100, 60, UPLOADABLE)
        .with_full_mip_chain()
        .with_array_layers(3)
}

fn region(mip_level: u32, offset: [u32; 3], extent: [u32; 3]) -> ImageCopy {
    ImageCopy {
        buffer_offset: 0,
        mip_level,
        base_array_layer: 0,
        layer_count: 1,
        offset,
        extent,
        buffer_row_length: 0,
        buffer_image_height: 0,
    }
}

#[test]
fn level_extents_halve_and_stop_at_one() {
    let desc = texture();
    assert_eq!(desc.mip_levels, 7);
    assert_eq!(desc.level_extent(0), [100, 60, 1]);
    assert_eq!(desc.level_extent(1), [50, 30, 1]);
    assert_eq!(desc.level_extent(5), [3, 1, 1]);
    assert_eq!(desc.level_extent(6), [1, 1, 1]);
    assert_eq!(desc.level_extent(40), [1, 1, 1]);
}

#[test]
fn whole_levels_cover_every_layer_and_sum_to_the_packed_image() {
    let desc = texture();
    let mut total = 0;
    for level in 0..desc.mip_levels {
        let copy = ImageCopy::whole_level(&desc, level, total);
        assert_eq!(copy.layer_count, 3);
        assert_eq!(copy.extent, desc.level_extent(level));
        assert_eq!(copy.check(&desc, [1, 1, 1]), Ok(()), "level {level}");
        total += copy.packed_bytes(desc.format).unwrap();
    }
    assert_eq!(total, desc.packed_bytes());
}

#[test]
fn the_image_must_be_a_colour_single_sample_transfer_destination() {
    let copy = region(0, [0; 3], [4, 4, 1]);
    let sampled_only = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, ImageUsage::SAMPLED);
    assert_eq!(
        copy.check(&sampled_only, [1, 1, 1]),
        Err(ImageCopyError::NotTransferDst)
    );
    for format in [
        ImageFormat::D32Float,
        ImageFormat::D24UnormS8Uint,
        ImageFormat::S8Uint,
    ] {
        let depth = ImageDesc::new_2d(
            format,
            8,
            8,
            ImageUsage::DEPTH_STENCIL_ATTACHMENT | ImageUsage::TRANSFER_DST,
        );
        assert_eq!(
            copy.check(&depth, [1, 1, 1]),
            Err(ImageCopyError::DepthFormat),
            "{format:?}"
        );
    }
    let msaa = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        8,
        8,
        ImageUsage::COLOR_ATTACHMENT | ImageUsage::TRANSFER_DST,
    )
    .with_samples(4);
    assert_eq!(
        copy.check(&msaa, [1, 1, 1]),
        Err(ImageCopyError::Multisampled)
    );
}

#[test]
fn levels_layers_and_boxes_must_lie_inside_the_image() {
    let desc = texture();
    let g = [1, 1, 1];
    assert_eq!(
        region(7, [0; 3], [1, 1, 1]).check(&desc, g),
        Err(ImageCopyError::NoSuchLevel)
    );
    let mut layers = region(0, [0; 3], [1, 1, 1]);
    layers.base_array_layer = 2;
    layers.layer_count = 2;
    assert_eq!(layers.check(&desc, g), Err(ImageCopyError::NoSuchLayer));
    layers.layer_count = 0;
    assert_eq!(layers.check(&desc, g), Err(ImageCopyError::NoSuchLayer));
    layers.base_array_layer = u32::MAX;
    layers.layer_count = u32::MAX;
    assert_eq!(layers.check(&desc, g), Err(ImageCopyError::NoSuchLayer));
    assert_eq!(
        region(0, [0; 3], [0, 1, 1]).check(&desc, g),
        Err(ImageCopyError::ZeroExtent)
    );
    // Level 1 is 50 x 30: a box ending at x = 50 fits, one texel more does not.
    assert_eq!(region(1, [40, 0, 0], [10, 30, 1]).check(&desc, g), Ok(()));
    assert_eq!(
        region(1, [41, 0, 0], [10, 30, 1]).check(&desc, g),
        Err(ImageCopyError::OutOfBounds)
    );
    assert_eq!(
        region(0, [0, u32::MAX, 0], [1, u32::MAX, 1]).check(&desc, g),
        Err(ImageCopyError::OutOfBounds)
    );
    assert_eq!(
        region(0, [0, 0, 1], [1, 1, 1]).check(&desc, g),
        Err(ImageCopyError::OutOfBounds)
    );
}

#[test]
fn boxes_keep_to_the_queues_transfer_granularity() {
    let desc = texture();
    let g = [8, 8, 1];
    assert_eq!(region(0, [8, 16, 0], [16, 8, 1]).check(&desc, g), Ok(()));
    // Off the grid.
    assert_eq!(
        region(0, [4, 0, 0], [8, 8, 1]).check(&desc, g),
        Err(ImageCopyError::OffGranularity)
    );
    // An extent off the grid is fine only where it reaches the level's edge (100 x 60).
    assert_eq!(region(0, [96, 56, 0], [4, 4, 1]).check(&desc, g), Ok(()));
    assert_eq!(
        region(0, [88, 0, 0], [4, 8, 1]).check(&desc, g),
        Err(ImageCopyError::OffGranularity)
    );
    // Granularity 0: whole levels only.
    let whole_only = [0, 0, 0];
    assert_eq!(
        ImageCopy::whole_level(&desc, 2, 0).check(&desc, whole_only),
        Ok(())
    );
    assert_eq!(
        region(0, [0; 3], [100, 59, 1]).check(&desc, whole_only),
        Err(ImageCopyError::OffGranularity)
    );
}

#[test]
fn buffer_offsets_are_multiples_of_four_and_of_the_texel() {
    let g = [1, 1, 1];
    let r8 = ImageDesc::new_2d(ImageFormat::R8Unorm, 16, 16, UPLOADABLE);
    let rgba32 = ImageDesc::new_2d(ImageFormat::Rgba32Float, 16, 16, UPLOADABLE);
    let mut copy = region(0, [0; 3], [16, 16, 1]);
    copy.buffer_offset = 2;
    assert_eq!(
        copy.check(&r8, g),
        Err(ImageCopyError::MisalignedBufferOffset)
    );
    copy.buffer_offset = 4;
    assert_eq!(copy.check(&r8, g), Ok(()));
    assert_eq!(
        copy.check(&rgba32, g),
        Err(ImageCopyError::MisalignedBufferOffset)
    );
    copy.buffer_offset = 48;
    assert_eq!(copy.check(&rgba32, g), Ok(()));
}

#[test]
fn a_tightly_packed_source_spans_exactly_the_packed_bytes() {
    let desc = texture();
    for level in 0..desc.mip_levels {
        let copy = ImageCopy::whole_level(&desc, level, 0);
        assert_eq!(
            copy.buffer_bytes(desc.format),
            copy.packed_bytes(desc.format)
        );
        // Naming the box's own width and height is the same as 0.
        let [w, h, _] = copy.extent;
        let same = copy.with_buffer_layout(w, h);
        assert_eq!(
            same.buffer_bytes(desc.format),
            copy.packed_bytes(desc.format)
        );
        assert_eq!(same.tightly_packed(), copy);
    }
}

#[test]
fn longer_rows_and_taller_slices_space_the_source_out_as_vulkan_addresses_it() {
    // 10 x 4 texels of 4 bytes in each of 3 layers, read from rows of 16 texels and slices of 6
    // rows: texel (x, y) of layer l at ((l * 6 + y) * 16 + x) * 4.
    let desc = texture();
    let copy = ImageCopy {
        layer_count: 3,
        ..region(1, [2, 3, 0], [10, 4, 1])
    }
    .with_buffer_layout(16, 6);
    assert_eq!(copy.check(&desc, [1, 1, 1]), Ok(()));
    assert_eq!(copy.buffer_pitches(desc.format), Some([64, 384, 384]));
    assert_eq!(copy.packed_bytes(desc.format), Some(10 * 4 * 3 * 4));
    let last_texel = ((2 * 6 + 3) * 16 + 9) * 4;
    assert_eq!(copy.buffer_bytes(desc.format), Some(last_texel + 4));
    // A 3D box: slices at the slice pitch, one layer at depth slices.
    let volume = ImageDesc {
        depth: 8,
        ..ImageDesc::new_2d(ImageFormat::R8Unorm, 8, 8, UPLOADABLE)
    };
    let copy = region(0, [0; 3], [4, 2, 3]).with_buffer_layout(0, 5);
    assert_eq!(copy.check(&volume, [1, 1, 1]), Ok(()));
    assert_eq!(copy.buffer_pitches(volume.format), Some([4, 20, 60]));
    assert_eq!(copy.buffer_bytes(volume.format), Some(2 * 20 + 4 + 4));
}

#[test]
fn rows_and_slices_shorter_than_the_box_are_refused() {
    let desc = texture();
    let g = [1, 1, 1];
    let copy = region(0, [0; 3], [10, 4, 1]);
    assert_eq!(
        copy.with_buffer_layout(9, 0).check(&desc, g),
        Err(ImageCopyError::BufferRowTooShort)
    );
    assert_eq!(
        copy.with_buffer_layout(0, 3).check(&desc, g),
        Err(ImageCopyError::BufferImageTooShort)
    );
    assert_eq!(copy.with_buffer_layout(10, 4).check(&desc, g), Ok(()));
    // A pitch that overflows a u64 is refused, never wrapped.
    let huge = ImageDesc {
        depth: 1 << 20,
        ..ImageDesc::new_2d(ImageFormat::Rgba32Float, 1 << 20, 1 << 20, UPLOADABLE)
    };
    let copy = region(0, [0; 3], [1, 1, 1 << 20]).with_buffer_layout(u32::MAX, u32::MAX);
    assert_eq!(copy.buffer_bytes(huge.format), None);
    assert_eq!(copy.check(&huge, g), Err(ImageCopyError::OutOfBounds));
}

#[test]
fn uploads_leave_sampled_images_shader_readable_and_others_general() {
    assert_eq!(
        texture().layout_after_upload(),
        ImageLayout::ShaderReadOnlyOptimal
    );
    let storage = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        8,
        8,
        ImageUsage::STORAGE | ImageUsage::TRANSFER_DST,
    );
    assert_eq!(storage.layout_after_upload(), ImageLayout::General);
}

#[test]
fn a_refused_region_is_a_device_error_with_its_reason_as_source() {
    let error = DeviceError::InvalidImageCopy(ImageCopyError::OffGranularity);
    assert_eq!(
        error.to_string(),
        "invalid image copy: the copy region is off the queue's image transfer granularity"
    );
    let source = core::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some("the copy region is off the queue's image transfer granularity")
    );
}

/// A 70 x 38 BC7 texture (blocks of 4x4 texels, 16 bytes), full chain, 2 layers: level 0 is
/// 18 x 10 blocks, its last column and row of blocks partial.
fn bc7_texture() -> ImageDesc {
    ImageDesc::new_2d(ImageFormat::Bc7Unorm, 70, 38, UPLOADABLE)
        .with_full_mip_chain()
        .with_array_layers(2)
}

#[test]
fn compressed_levels_are_copied_in_whole_blocks_and_sum_to_the_packed_image() {
    let desc = bc7_texture();
    let mut total = 0;
    for level in 0..desc.mip_levels {
        let copy = ImageCopy::whole_level(&desc, level, total);
        assert_eq!(copy.check(&desc, [1, 1, 1]), Ok(()), "level {level}");
        let [w, h, _] = desc.format.blocks(desc.level_extent(level));
        assert_eq!(
            copy.packed_bytes(desc.format),
            Some(u64::from(w * h) * 16 * 2)
        );
        assert_eq!(
            copy.buffer_bytes(desc.format),
            copy.packed_bytes(desc.format)
        );
        total += copy.packed_bytes(desc.format).unwrap();
    }
    assert_eq!(total, desc.packed_bytes());
    // Level 0: 18 x 10 blocks per layer.
    let level0 = ImageCopy::whole_level(&desc, 0, 0);
    assert_eq!(level0.block_box(desc.format), ([0; 3], [18, 10, 1]));
    assert_eq!(level0.packed_bytes(desc.format), Some(18 * 10 * 16 * 2));
}

#[test]
fn compressed_pitches_count_rows_of_blocks() {
    let desc = bc7_texture();
    // A 32 x 16 texel box (8 x 4 blocks) from (8, 4), read out of rows of 72 texels (18 blocks)
    // and layers of 40 texel rows (10 block rows).
    let copy = ImageCopy {
        offset: [8, 4, 0],
        extent: [32, 16, 1],
        ..ImageCopy::whole_level(&desc, 0, 32)
    }
    .with_buffer_layout(72, 40);
    assert_eq!(copy.check(&desc, [1, 1, 1]), Ok(()));
    assert_eq!(copy.block_box(desc.format), ([2, 1, 0], [8, 4, 1]));
    assert_eq!(
        copy.buffer_pitches(desc.format),
        Some([18 * 16, 10 * 18 * 16, 10 * 18 * 16])
    );
    // The second layer's last row of blocks ends 8 blocks into its 4th row.
    assert_eq!(
        copy.buffer_bytes(desc.format),
        Some(10 * 18 * 16 + 3 * 18 * 16 + 8 * 16)
    );
    assert_eq!(copy.packed_bytes(desc.format), Some(8 * 4 * 16 * 2));
    // BC1's blocks are 8 bytes.
    let bc1 = ImageDesc {
        format: ImageFormat::Bc1RgbaSrgb,
        ..desc
    };
    assert_eq!(
        copy.buffer_pitches(bc1.format),
        Some([18 * 8, 180 * 8, 180 * 8])
    );
}

#[test]
fn compressed_boxes_must_keep_to_the_block_grid_or_reach_the_edge() {
    let desc = bc7_texture();
    let at = |offset: [u32; 3], extent: [u32; 3]| ImageCopy {
        offset,
        extent,
        ..ImageCopy::whole_level(&desc, 0, 0)
    };
    let check = |copy: ImageCopy| copy.check(&desc, [1, 1, 1]);
    // Partial blocks at the right and bottom edges (70 = 17 * 4 + 2, 38 = 9 * 4 + 2).
    assert_eq!(check(at([64, 36, 0], [6, 2, 1])), Ok(()));
    assert_eq!(
        at([64, 36, 0], [6, 2, 1]).packed_bytes(desc.format),
        Some(2 * 16 * 2)
    );
    for (offset, extent) in [
        ([2, 0, 0], [4, 4, 1]),  // x off the grid
        ([0, 1, 0], [4, 4, 1]),  // y off the grid
        ([0, 0, 0], [6, 4, 1]),  // width not whole blocks, short of the edge
        ([0, 0, 0], [4, 37, 1]), // height not whole blocks, short of the edge
    ] {
        assert_eq!(
            check(at(offset, extent)),
            Err(ImageCopyError::OffTexelBlock),
            "{offset:?} {extent:?}"
        );
    }
    // Row length and image height in whole blocks.
    let ok = at([0, 0, 0], [8, 8, 1]);
    assert_eq!(check(ok.with_buffer_layout(12, 8)), Ok(()));
    assert_eq!(
        check(ok.with_buffer_layout(10, 0)),
        Err(ImageCopyError::BufferLayoutOffTexelBlock)
    );
    assert_eq!(
        check(ok.with_buffer_layout(0, 9)),
        Err(ImageCopyError::BufferLayoutOffTexelBlock)
    );
    // The buffer offset on the block size (16 bytes), not only on 4.
    let off = ImageCopy {
        buffer_offset: 8,
        ..ok
    };
    assert_eq!(check(off), Err(ImageCopyError::MisalignedBufferOffset));
    let bc1 = ImageDesc {
        format: ImageFormat::Bc1RgbaUnorm,
        ..desc
    };
    assert_eq!(off.check(&bc1, [1, 1, 1]), Ok(()));
}

#[test]
fn transfer_granularity_counts_blocks_for_compressed_formats() {
    let desc = bc7_texture();
    let at = |offset: [u32; 3], extent: [u32; 3]| ImageCopy {
        offset,
        extent,
        ..ImageCopy::whole_level(&desc, 0, 0)
    };
    // A granularity of 2 blocks is 8 texels: 8 x 8 from (8, 8) is on it, 4 x 4 is not.
    assert_eq!(at([8, 8, 0], [8, 8, 1]).check(&desc, [2, 2, 1]), Ok(()));
    assert_eq!(
        at([4, 0, 0], [8, 8, 1]).check(&desc, [2, 2, 1]),
        Err(ImageCopyError::OffGranularity)
    );
    assert_eq!(
        at([0, 0, 0], [4, 8, 1]).check(&desc, [2, 2, 1]),
        Err(ImageCopyError::OffGranularity)
    );
    // Reaching the edge in a partial block: 18 blocks wide, from block 16.
    assert_eq!(at([64, 0, 0], [6, 8, 1]).check(&desc, [2, 2, 1]), Ok(()));
    // Whole levels only: the whole level, partial blocks and all.
    assert_eq!(at([0, 0, 0], [70, 38, 1]).check(&desc, [0, 0, 0]), Ok(()));
    assert_eq!(
        at([0, 0, 0], [68, 38, 1]).check(&desc, [0, 0, 0]),
        Err(ImageCopyError::OffGranularity)
    );
    // The block grid is checked first.
    assert_eq!(
        at([0, 0, 0], [66, 38, 1]).check(&desc, [0, 0, 0]),
        Err(ImageCopyError::OffTexelBlock)
    );
}

/// A 101 x 47 ASTC texture in 10x6 blocks (16 bytes each), full chain: level 0 is 11 x 8 blocks,
/// its last column (1 texel) and row (5 texels) of blocks partial. Footprints that are not
/// powers of two follow the same grid rules as BC's 4x4.
#[test]
fn astc_footprints_that_are_not_powers_of_two_keep_to_their_grid() {
    use crate::device::AstcBlock;
    let desc = ImageDesc::new_2d(ImageFormat::AstcSrgb(AstcBlock::B10x6), 101, 47, UPLOADABLE)
        .with_full_mip_chain();
    let mut total = 0;
    for level in 0..desc.mip_levels {
        let copy = ImageCopy::whole_level(&desc, level, total);
        assert_eq!(copy.check(&desc, [1, 1, 1]), Ok(()), "level {level}");
        let [w, h] = desc.level_extent(level)[..2] else {
            unreachable!()
        };
        let blocks = u64::from(w.div_ceil(10) * h.div_ceil(6));
        assert_eq!(
            copy.packed_bytes(desc.format),
            Some(blocks * 16),
            "level {level}"
        );
        total += blocks * 16;
    }
    assert_eq!(total, desc.packed_bytes());
    assert_eq!(
        ImageCopy::whole_level(&desc, 0, 0).block_box(desc.format),
        ([0; 3], [11, 8, 1])
    );
    let at = |offset: [u32; 3], extent: [u32; 3]| ImageCopy {
        offset,
        extent,
        ..ImageCopy::whole_level(&desc, 0, 0)
    };
    let check = |copy: ImageCopy| copy.check(&desc, [1, 1, 1]);
    // On the grid: a 20 x 12 box from (30, 18) is 2 x 2 blocks from block (3, 3); the partial
    // last blocks at the edges (101 = 10 * 10 + 1, 47 = 7 * 6 + 5).
    assert_eq!(check(at([30, 18, 0], [20, 12, 1])), Ok(()));
    assert_eq!(
        at([30, 18, 0], [20, 12, 1]).block_box(desc.format),
        ([3, 3, 0], [2, 2, 1])
    );
    assert_eq!(check(at([100, 42, 0], [1, 5, 1])), Ok(()));
    for (offset, extent) in [
        ([8, 0, 0], [10, 6, 1]), // x on a 4- or 8-texel grid, not on 10
        ([0, 4, 0], [10, 6, 1]), // y on a 4-texel grid, not on 6
        ([0, 0, 0], [16, 6, 1]), // width of 16 texels, short of the edge
        ([0, 0, 0], [10, 8, 1]), // height of 8 texels, short of the edge
    ] {
        assert_eq!(
            check(at(offset, extent)),
            Err(ImageCopyError::OffTexelBlock),
            "{offset:?} {extent:?}"
        );
    }
    // Rows and slices read from a larger picture: whole blocks of 10 and 6 texels.
    let box_ = at([0, 0, 0], [20, 12, 1]);
    assert_eq!(check(box_.with_buffer_layout(30, 18)), Ok(()));
    assert_eq!(
        box_.with_buffer_layout(30, 18).buffer_pitches(desc.format),
        Some([3 * 16, 3 * 3 * 16, 3 * 3 * 16])
    );
    assert_eq!(
        check(box_.with_buffer_layout(32, 0)),
        Err(ImageCopyError::BufferLayoutOffTexelBlock)
    );
    assert_eq!(
        check(box_.with_buffer_layout(0, 16)),
        Err(ImageCopyError::BufferLayoutOffTexelBlock)
    );
    // A transfer granularity counts blocks: 2 blocks are 20 x 12 texels.
    assert_eq!(at([20, 12, 0], [20, 12, 1]).check(&desc, [2, 2, 1]), Ok(()));
    assert_eq!(
        at([10, 0, 0], [20, 12, 1]).check(&desc, [2, 2, 1]),
        Err(ImageCopyError::OffGranularity)
    );
}

#[test]
fn a_depth_or_stencil_target_of_one_aspect_is_read_back_but_never_uploaded_into() {
    let usage = ImageUsage::DEPTH_STENCIL_ATTACHMENT
        .union(ImageUsage::TRANSFER_SRC)
        .union(ImageUsage::TRANSFER_DST);
    let copy = region(0, [0; 3], [64, 32, 1]);
    for (format, readable) in [
        (ImageFormat::D16Unorm, true),
        (ImageFormat::D32Float, true),
        (ImageFormat::S8Uint, true),
        (ImageFormat::D24UnormS8Uint, false),
        (ImageFormat::D32FloatS8Uint, false),
    ] {
        let target = ImageDesc::new_2d(format, 64, 32, usage);
        let expected = if readable {
            Ok(())
        } else {
            Err(ImageCopyError::DepthFormat)
        };
        assert_eq!(copy.check_read(&target, [1, 1, 1]), expected, "{format:?}");
        assert_eq!(
            copy.check(&target, [1, 1, 1]),
            Err(ImageCopyError::DepthFormat),
            "{format:?}"
        );
        // The rest of the rules hold as for colour: here, the box within the level.
        let past = region(0, [1, 0, 0], [64, 32, 1]);
        let refused = if readable {
            ImageCopyError::OutOfBounds
        } else {
            ImageCopyError::DepthFormat
        };
        assert_eq!(
            past.check_read(&target, [1, 1, 1]),
            Err(refused),
            "{format:?}"
        );
    }
    // A read needs both transfer usages, as for colour images.
    let no_dst = ImageDesc::new_2d(
        ImageFormat::D32Float,
        64,
        32,
        ImageUsage::DEPTH_STENCIL_ATTACHMENT.union(ImageUsage::TRANSFER_SRC),
    );
    assert_eq!(
        copy.check_read(&no_dst, [1, 1, 1]),
        Err(ImageCopyError::NotTransferDst)
    );
}

#[test]
fn a_movable_image_is_a_colour_single_sample_transfer_source_and_destination() {
    let both = UPLOADABLE.union(ImageUsage::TRANSFER_SRC);
    let movable = ImageDesc::new_2d(ImageFormat::Bc7Srgb, 256, 256, both).with_full_mip_chain();
    assert_eq!(movable.check_move(), Ok(()));
    assert_eq!(
        texture().check_move(),
        Err(ImageCopyError::NotTransferSrc),
        "uploads alone need no TRANSFER_SRC; a move reads the old image"
    );
    let read_only = ImageUsage::SAMPLED.union(ImageUsage::TRANSFER_SRC);
    assert_eq!(
        ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, read_only).check_move(),
        Err(ImageCopyError::NotTransferDst)
    );
    let depth = ImageUsage::DEPTH_STENCIL_ATTACHMENT
        .union(ImageUsage::TRANSFER_SRC)
        .union(ImageUsage::TRANSFER_DST);
    assert_eq!(
        ImageDesc::new_2d(ImageFormat::D32Float, 8, 8, depth).check_move(),
        Err(ImageCopyError::DepthFormat)
    );
    let target = ImageUsage::COLOR_ATTACHMENT.union(both);
    assert_eq!(
        ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 8, 8, target)
            .with_samples(4)
            .check_move(),
        Err(ImageCopyError::Multisampled)
    );
}
