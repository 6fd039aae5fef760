use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};

use super::{for_each_run, regions_overlap, source_runs, subresource_range};

fn texture() -> ImageDesc {
    ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        5,
        3,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
    )
    .with_full_mip_chain()
    .with_array_layers(2)
}

fn region(mip_level: u32, layers: (u32, u32), offset: [u32; 3], extent: [u32; 3]) -> ImageCopy {
    ImageCopy {
        buffer_offset: 0,
        mip_level,
        base_array_layer: layers.0,
        layer_count: layers.1,
        offset,
        extent,
        buffer_row_length: 0,
        buffer_image_height: 0,
    }
}

#[test]
fn subresources_tile_the_packed_image_level_major_then_layer() {
    let desc = texture();
    // Levels 5x3, 2x1, 1x1; 4 bytes a texel; 2 layers each.
    assert_eq!(subresource_range(&desc, 0, 0), Some((0, 60)));
    assert_eq!(subresource_range(&desc, 0, 1), Some((60, 60)));
    assert_eq!(subresource_range(&desc, 1, 0), Some((120, 8)));
    assert_eq!(subresource_range(&desc, 1, 1), Some((128, 8)));
    assert_eq!(subresource_range(&desc, 2, 1), Some((140, 4)));
    assert_eq!(desc.packed_bytes(), 144);
    assert_eq!(subresource_range(&desc, 3, 0), None);
    assert_eq!(subresource_range(&desc, 0, 2), None);
}

#[test]
fn runs_are_rows_of_the_box_or_whole_slices_of_full_rows() {
    let desc = texture();
    let mut runs = Vec::new();
    // A 2x2 box at (1, 1) of layer 1, level 0: two rows of 8 bytes.
    let mut copy = region(0, (1, 1), [1, 1, 0], [2, 2, 1]);
    copy.buffer_offset = 100;
    for_each_run(&desc, &copy, |s, d, n| runs.push((s, d, n)));
    assert_eq!(runs, [(100, 60 + 24, 8), (108, 60 + 44, 8)]);
    runs.clear();
    // Whole level 1, both layers: one run per layer.
    for_each_run(&desc, &ImageCopy::whole_level(&desc, 1, 0), |s, d, n| {
        runs.push((s, d, n))
    });
    assert_eq!(runs, [(0, 120, 8), (8, 128, 8)]);
}

#[test]
fn a_padded_source_is_read_a_row_at_a_time_at_its_pitches() {
    let desc = texture();
    let mut runs = Vec::new();
    // Whole level 0 (5x3), both layers, from rows of 8 texels (32 bytes) and slices of 4 rows
    // (128 bytes): each row on its own, at the source's pitch; the image side as packed.
    let copy = ImageCopy::whole_level(&desc, 0, 16).with_buffer_layout(8, 4);
    for_each_run(&desc, &copy, |s, d, n| runs.push((s, d, n)));
    let expected: Vec<(u64, u64, u64)> = (0..2)
        .flat_map(|layer| (0..3).map(move |y| (16 + layer * 128 + y * 32, layer * 60 + y * 20, 20)))
        .collect();
    assert_eq!(runs, expected);
    assert_eq!(source_runs(&desc, &copy).len(), 6);
    // Taller slices alone keep whole rows together: one run per layer, 4 rows apart.
    runs.clear();
    let copy = ImageCopy::whole_level(&desc, 0, 0).with_buffer_layout(0, 4);
    for_each_run(&desc, &copy, |s, d, n| runs.push((s, d, n)));
    assert_eq!(runs, [(0, 0, 60), (80, 60, 60)]);
    // A tightly packed region reads one run.
    let tight = ImageCopy::whole_level(&desc, 0, 8);
    assert_eq!(source_runs(&desc, &tight), [(8, 120)]);
}

#[test]
fn regions_overlap_only_on_a_shared_level_layer_and_box() {
    let a = region(0, (0, 1), [0, 0, 0], [4, 4, 1]);
    let beside = region(0, (0, 1), [4, 0, 0], [4, 4, 1]);
    let below = region(0, (0, 1), [0, 4, 0], [4, 4, 1]);
    let other_layer = region(0, (1, 1), [0, 0, 0], [4, 4, 1]);
    let other_level = region(1, (0, 1), [0, 0, 0], [2, 2, 1]);
    assert!(!regions_overlap(&[
        a,
        beside,
        below,
        other_layer,
        other_level
    ]));
    let corner = region(0, (0, 2), [3, 3, 0], [2, 2, 1]);
    assert!(regions_overlap(&[beside, a, corner]));
    // Overlap found past a region that starts between them in x.
    let wide = region(0, (0, 1), [0, 8, 0], [16, 1, 1]);
    let narrow = region(0, (0, 1), [2, 0, 0], [1, 1, 1]);
    let late = region(0, (0, 1), [10, 8, 0], [1, 1, 1]);
    assert!(regions_overlap(&[wide, narrow, late]));
}
