//! How an image upload is cut to fit the staging ring: regions into pieces of at most one ring
//! upload's bytes (whole layers, then whole depth slices, then bands of rows on the queue's
//! granularity grid), and pieces into groups that each fill one ring grant; and how a piece's
//! texels are read out of the caller's bytes.
//!
//! Every piece is itself a valid copy region: its box starts on the granularity grid (the region
//! did, and each cut is a multiple of the grid), and it ends on the grid or where the region
//! ends. In the caller's bytes a piece keeps its region's row and slice pitches; in staging
//! memory its texels are tightly packed, so the ring holds only the texels the copy reads.
//! Rows are rows of texel blocks: a compressed format's band holds whole block rows (and the
//! granularity counts blocks, as Vulkan's does), so only a band at the region's end may end in a
//! partial block.

use memkit_core::device::{ImageCopy, ImageFormat};

/// One piece of an upload, as the caller's bytes hold it and as it is staged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    /// The piece in the caller's bytes: its `buffer_offset` and pitches are the caller's.
    pub(super) source: ImageCopy,
    /// Where its texels start in the group's staging bytes (on the copy alignment).
    pub(super) staged_at: u64,
}

impl Piece {
    /// The copy region that reads the staged piece from a buffer whose group starts at `base`.
    pub(super) fn staged(&self, base: u64) -> ImageCopy {
        ImageCopy {
            buffer_offset: base + self.staged_at,
            ..self.source.tightly_packed()
        }
    }
}

/// One ring grant's worth of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StagingGroup {
    /// The group's pieces, in the caller's bytes' order.
    pub(super) pieces: Vec<Piece>,
    /// Bytes the group takes in the ring, alignment gaps included.
    pub(super) bytes: u64,
}

/// Cuts checked `regions` into groups of at most `limit` staged bytes, each piece staged at a
/// multiple of `unit` (a power of two) within its group. `None` when some region cannot be cut
/// that small: one row (or one grid cell of rows or slices) is larger than `limit`, or a
/// granularity of 0 (whole levels only) forbids the cut it would need.
pub(super) fn staging_groups(
    regions: &[ImageCopy],
    format: ImageFormat,
    granularity: [u32; 3],
    limit: u64,
    unit: u64,
) -> Option<Vec<StagingGroup>> {
    let mut pieces = Vec::with_capacity(regions.len());
    for region in regions {
        cut(region, format, granularity, limit, &mut pieces)?;
    }
    let mut groups: Vec<StagingGroup> = Vec::new();
    let mut current = StagingGroup {
        pieces: Vec::new(),
        bytes: 0,
    };
    for source in pieces {
        let size = source.packed_bytes(format)?;
        let mut at = current.bytes.next_multiple_of(unit);
        if !current.pieces.is_empty() && at + size > limit {
            groups.push(std::mem::replace(
                &mut current,
                StagingGroup {
                    pieces: Vec::new(),
                    bytes: 0,
                },
            ));
            at = 0;
        }
        current.pieces.push(Piece {
            source,
            staged_at: at,
        });
        current.bytes = at + size;
    }
    if !current.pieces.is_empty() {
        groups.push(current);
    }
    Some(groups)
}

/// Appends `region`'s pieces of at most `limit` staged bytes to `out`, each with its own
/// `buffer_offset` in the caller's bytes and the region's pitches (named explicitly, so that a
/// band of rows still reads the region's slices).
fn cut(
    region: &ImageCopy,
    format: ImageFormat,
    granularity: [u32; 3],
    limit: u64,
    out: &mut Vec<ImageCopy>,
) -> Option<()> {
    let bytes = region.packed_bytes(format)?;
    if bytes <= limit {
        out.push(*region);
        return Some(());
    }
    let [_, height, depth] = region.extent;
    let [block_w, block_h] = format.block_extent();
    let [row_blocks, block_rows, _] = format.blocks(region.extent);
    let [row_pitch, slice_pitch, layer_pitch] = region.buffer_pitches(format)?;
    // A piece's box is smaller than its region's, so its pitches are named: whole blocks, as
    // the region's own (0 means the box's width or height, rounded up to blocks).
    let region = &ImageCopy {
        buffer_row_length: region.buffer_row_length.max(row_blocks * block_w),
        buffer_image_height: region.buffer_image_height.max(block_rows * block_h),
        ..*region
    };
    // Staged (tightly packed) sizes; a row is a row of blocks.
    let row = u64::from(row_blocks) * u64::from(format.block_bytes());
    let slice = row * u64::from(block_rows);
    let layer = slice * u64::from(depth);
    let mut cut_further = |piece: ImageCopy| cut(&piece, format, granularity, limit, out);
    if region.layer_count > 1 {
        // Layers are not on the granularity grid: any number of them may go together.
        let per_piece = (limit / layer).clamp(1, u64::from(region.layer_count)) as u32;
        let mut first = 0;
        while first < region.layer_count {
            let count = per_piece.min(region.layer_count - first);
            cut_further(ImageCopy {
                buffer_offset: region.buffer_offset + u64::from(first) * layer_pitch,
                base_array_layer: region.base_array_layer + first,
                layer_count: count,
                ..*region
            })?;
            first += count;
        }
        return Some(());
    }
    // One layer larger than `limit`: bands of slices, or else bands of block rows, `unit`
    // texels each (the last band takes what is left of the region, a partial block included).
    let (axis, unit_bytes, unit_pitch, count, unit, texels) = if depth > 1 {
        (2, slice, slice_pitch, depth, 1, depth)
    } else {
        (1, row, row_pitch, block_rows, block_h, height)
    };
    let grid = granularity[axis];
    if grid == 0 {
        return None;
    }
    let per_band = (limit / unit_bytes) as u32 / grid * grid;
    if per_band == 0 {
        if axis == 2 && grid == 1 {
            // Even one slice is too large: cut each slice into rows.
            for z in 0..depth {
                let mut offset = region.offset;
                offset[2] += z;
                let mut extent = region.extent;
                extent[2] = 1;
                cut_further(ImageCopy {
                    buffer_offset: region.buffer_offset + u64::from(z) * slice_pitch,
                    offset,
                    extent,
                    ..*region
                })?;
            }
            return Some(());
        }
        return None;
    }
    let mut first = 0;
    while first < count {
        let band = per_band.min(count - first);
        let mut offset = region.offset;
        offset[axis] += first * unit;
        let mut extent = region.extent;
        extent[axis] = (band * unit).min(texels - first * unit);
        out.push(ImageCopy {
            buffer_offset: region.buffer_offset + u64::from(first) * unit_pitch,
            offset,
            extent,
            ..*region
        });
        first += band;
    }
    Some(())
}

/// Calls `write(at, bytes)` for each run of `region`'s texel blocks in `texels` (read at the
/// region's pitches from its `buffer_offset`), `at` being where the run goes in the tightly
/// packed box.
/// Runs that lie back to back in the caller's bytes go as one: a tightly packed region is one
/// run. The region passed [`ImageCopy::check`] and its span lies inside `texels`.
pub(super) fn for_each_packed_run(
    region: &ImageCopy,
    format: ImageFormat,
    texels: &[u8],
    mut write: impl FnMut(usize, &[u8]),
) {
    for_each_buffer_run(region, format, |at, from, len| {
        let (at, from, len) = (at as usize, from as usize, len as usize);
        write(at, &texels[from..from + len]);
    });
}

/// Calls `f(at, from, len)` for each run of `region`'s texel blocks in the buffer it names (at
/// the region's pitches from its `buffer_offset`): `from` is where the run lies in the buffer,
/// `at` where it goes in the tightly packed box. Runs that lie back to back in the buffer go as
/// one: a tightly packed region is one run. The region passed [`ImageCopy::check`].
pub(super) fn for_each_buffer_run(
    region: &ImageCopy,
    format: ImageFormat,
    mut f: impl FnMut(u64, u64, u64),
) {
    // In texel blocks: a row is a row of blocks.
    let [w, h, d] = format.blocks(region.extent).map(u64::from);
    let Some([row_pitch, slice_pitch, _]) = region.buffer_pitches(format) else {
        return;
    };
    let row = w * u64::from(format.block_bytes());
    let slices = d * u64::from(region.layer_count);
    let rows_together = row_pitch == row;
    if rows_together && (slice_pitch == row * h || slices == 1) {
        f(0, region.buffer_offset, row * h * slices);
        return;
    }
    for s in 0..slices {
        let slice_from = region.buffer_offset + s * slice_pitch;
        if rows_together {
            f(s * h * row, slice_from, h * row);
        } else {
            for y in 0..h {
                f((s * h + y) * row, slice_from + y * row_pitch, row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memkit_core::device::{ImageDesc, ImageUsage};

    const RGBA8: ImageFormat = ImageFormat::Rgba8Unorm;

    fn desc_2d(w: u32, h: u32, layers: u32) -> ImageDesc {
        ImageDesc::new_2d(RGBA8, w, h, ImageUsage::TRANSFER_DST).with_array_layers(layers)
    }

    /// Every texel of `regions` once, as `(level, layer, x, y, z, source byte offset)`.
    fn texels(regions: &[ImageCopy]) -> Vec<(u32, u32, u32, u32, u32, u64)> {
        blocks(regions, RGBA8)
    }

    /// Every texel block of `regions` once, as `(level, layer, x, y, z, source byte offset)`
    /// with x and y counted in blocks.
    fn blocks(regions: &[ImageCopy], format: ImageFormat) -> Vec<(u32, u32, u32, u32, u32, u64)> {
        let mut all = Vec::new();
        for r in regions {
            let [row, slice, layer_pitch] = r.buffer_pitches(format).unwrap();
            let (offset, extent) = r.block_box(format);
            for layer in 0..r.layer_count {
                for z in 0..extent[2] {
                    for y in 0..extent[1] {
                        for x in 0..extent[0] {
                            let at = r.buffer_offset
                                + u64::from(layer) * layer_pitch
                                + u64::from(z) * slice
                                + u64::from(y) * row
                                + u64::from(x) * u64::from(format.block_bytes());
                            all.push((
                                r.mip_level,
                                r.base_array_layer + layer,
                                offset[0] + x,
                                offset[1] + y,
                                offset[2] + z,
                                at,
                            ));
                        }
                    }
                }
            }
        }
        all.sort_unstable();
        all
    }

    /// The groups' pieces as the caller's bytes hold them, each checked against `desc` as the
    /// caller's region and as staged.
    fn pieces(groups: &[StagingGroup], desc: &ImageDesc, granularity: [u32; 3]) -> Vec<ImageCopy> {
        let mut all = Vec::new();
        for group in groups {
            for piece in &group.pieces {
                let staged = piece.staged(0);
                assert_eq!(staged.check(desc, granularity), Ok(()), "{piece:?}");
                assert_eq!(piece.source.check(desc, granularity), Ok(()), "{piece:?}");
                let end = staged.buffer_offset + staged.packed_bytes(desc.format).unwrap();
                assert!(end <= group.bytes, "{piece:?} past its group");
                all.push(piece.source);
            }
        }
        all
    }

    #[test]
    fn small_regions_share_one_group_at_aligned_offsets() {
        let desc = desc_2d(61, 37, 1).with_full_mip_chain();
        let regions: Vec<ImageCopy> = (0..desc.mip_levels)
            .scan(0, |at, level| {
                let r = ImageCopy::whole_level(&desc, level, *at);
                *at += r.packed_bytes(RGBA8).unwrap();
                Some(r)
            })
            .collect();
        let groups = staging_groups(&regions, RGBA8, [1, 1, 1], 1 << 20, 16).unwrap();
        assert_eq!(groups.len(), 1);
        let offsets: Vec<u64> = groups[0].pieces.iter().map(|p| p.staged_at).collect();
        // 61x37, 30x18, 15x9, 7x4, 3x2, 1x1 texels of 4 bytes, each start rounded up to 16.
        assert_eq!(offsets, [0, 9040, 11200, 11744, 11856, 11888]);
        assert_eq!(groups[0].bytes, 11892);
        assert_eq!(texels(&pieces(&groups, &desc, [1, 1, 1])), texels(&regions));
    }

    #[test]
    fn a_large_level_is_cut_into_row_bands_on_the_grid_that_cover_it_once() {
        let desc = desc_2d(100, 50, 1);
        let region = ImageCopy {
            buffer_offset: 12,
            ..ImageCopy::whole_level(&desc, 0, 0)
        };
        // 400-byte rows; 4 KiB holds 10 rows, 8 on a grid of 4.
        let groups = staging_groups(&[region], RGBA8, [4, 4, 1], 4096, 16).unwrap();
        let cut = pieces(&groups, &desc, [4, 4, 1]);
        let bands: Vec<(u32, u32)> = cut.iter().map(|p| (p.offset[1], p.extent[1])).collect();
        assert_eq!(
            bands,
            [(0, 8), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (48, 2)]
        );
        assert!(groups.iter().all(|g| g.bytes <= 4096));
        assert_eq!(texels(&cut), texels(&[region]));
    }

    #[test]
    fn layers_go_together_then_alone_then_in_bands() {
        let desc = desc_2d(32, 32, 6);
        let region = ImageCopy::whole_level(&desc, 0, 0);
        // A layer is 4 KiB: three per piece.
        let groups = staging_groups(&[region], RGBA8, [1, 1, 1], 12 << 10, 16).unwrap();
        let cut = pieces(&groups, &desc, [1, 1, 1]);
        assert_eq!(cut.len(), 2);
        assert_eq!((cut[1].base_array_layer, cut[1].layer_count), (3, 3));
        assert_eq!(texels(&cut), texels(&[region]));
        // Below one layer: each layer in row bands.
        let groups = staging_groups(&[region], RGBA8, [1, 1, 1], 1 << 10, 16).unwrap();
        let cut = pieces(&groups, &desc, [1, 1, 1]);
        assert_eq!(cut.len(), 6 * 4);
        assert_eq!(texels(&cut), texels(&[region]));
    }

    #[test]
    fn a_3d_image_is_cut_into_slices_then_rows() {
        let desc = ImageDesc {
            depth: 8,
            ..ImageDesc::new_2d(RGBA8, 16, 16, ImageUsage::TRANSFER_DST)
        };
        let region = ImageCopy::whole_level(&desc, 0, 0);
        let groups = staging_groups(&[region], RGBA8, [1, 1, 1], 2048, 16).unwrap();
        let cut = pieces(&groups, &desc, [1, 1, 1]);
        // A slice is 1 KiB: two per piece.
        assert_eq!(cut.len(), 4);
        assert_eq!(texels(&cut), texels(&[region]));
        let groups = staging_groups(&[region], RGBA8, [1, 1, 1], 512, 16).unwrap();
        let cut = pieces(&groups, &desc, [1, 1, 1]);
        assert_eq!(cut.len(), 8 * 2);
        assert_eq!(texels(&cut), texels(&[region]));
    }

    #[test]
    fn a_padded_source_is_cut_at_its_own_pitches_and_staged_packed() {
        // Level 0 of a 3-layer 100 x 50 image, read from rows of 128 texels and slices of 64
        // rows: every cut (layers, then bands of rows) lands on the caller's texels.
        let desc = desc_2d(100, 50, 3);
        let region = ImageCopy::whole_level(&desc, 0, 64).with_buffer_layout(128, 64);
        for limit in [64 << 10, 8 << 10, 400] {
            let groups = staging_groups(&[region], RGBA8, [1, 1, 1], limit, 16).unwrap();
            assert!(groups.iter().all(|g| g.bytes <= limit));
            let staged: u64 = groups
                .iter()
                .flat_map(|g| &g.pieces)
                .map(|p| p.staged(0).packed_bytes(RGBA8).unwrap())
                .sum();
            assert_eq!(staged, 100 * 50 * 3 * 4, "staging holds the texels only");
            assert_eq!(
                texels(&pieces(&groups, &desc, [1, 1, 1])),
                texels(&[region])
            );
        }
    }

    #[test]
    fn a_compressed_level_is_cut_into_bands_of_whole_block_rows() {
        // BC7, 70 x 38 texels: 18 x 10 blocks of 16 bytes, the last row and column partial;
        // read from rows of 80 texels (20 blocks, 320 bytes) from offset 48.
        let bc7 = ImageFormat::Bc7Unorm;
        let desc = ImageDesc::new_2d(bc7, 70, 38, ImageUsage::TRANSFER_DST);
        let region = ImageCopy::whole_level(&desc, 0, 48).with_buffer_layout(80, 0);
        // A staged row of blocks is 288 bytes: 1 KiB holds 3 block rows, 2 on a grid of 2.
        for (granularity, rows) in [([1, 1, 1], 3), ([2, 2, 1], 2)] {
            let groups = staging_groups(&[region], bc7, granularity, 1024, 16).unwrap();
            let cut = pieces(&groups, &desc, granularity);
            let bands: Vec<(u32, u32)> = cut.iter().map(|p| (p.offset[1], p.extent[1])).collect();
            let mut expected = Vec::new();
            let mut y = 0;
            while y < 38 {
                expected.push((y, (rows * 4).min(38 - y)));
                y += rows * 4;
            }
            assert_eq!(bands, expected, "{granularity:?}");
            assert_eq!(blocks(&cut, bc7), blocks(&[region], bc7));
            let staged: u64 = groups
                .iter()
                .flat_map(|g| &g.pieces)
                .map(|p| p.staged(0).packed_bytes(bc7).unwrap())
                .sum();
            assert_eq!(staged, 18 * 10 * 16);
        }
        // A layer of a tightly packed array: the pieces name rows of 72 texels (18 blocks).
        let array = desc.with_array_layers(2);
        let packed = ImageCopy::whole_level(&array, 0, 0);
        let groups = staging_groups(&[packed], bc7, [1, 1, 1], 1024, 16).unwrap();
        let cut = pieces(&groups, &array, [1, 1, 1]);
        assert!(
            cut.iter()
                .all(|p| p.buffer_row_length == 72 && p.buffer_image_height == 40)
        );
        assert_eq!(blocks(&cut, bc7), blocks(&[packed], bc7));
        // One row of blocks over the limit cannot be cut.
        assert_eq!(staging_groups(&[packed], bc7, [1, 1, 1], 256, 16), None);
    }

    #[test]
    fn packed_runs_gather_blocks_row_by_row() {
        // BC1 (8-byte blocks), a 12 x 8 texel box (3 x 2 blocks) read from rows of 20 texels
        // (5 blocks): block (x, y) holds the value of its packed index in each byte.
        let bc1 = ImageFormat::Bc1RgbaUnorm;
        let desc = ImageDesc::new_2d(bc1, 20, 8, ImageUsage::TRANSFER_DST);
        let region = ImageCopy {
            extent: [12, 8, 1],
            ..ImageCopy::whole_level(&desc, 0, 16)
        }
        .with_buffer_layout(20, 0);
        let mut source = vec![0xEE; 16 + region.buffer_bytes(bc1).unwrap() as usize];
        let mut expected = Vec::new();
        for y in 0..2 {
            for x in 0..3 {
                let packed = (y * 3 + x) as u8;
                let at = 16 + (y * 5 + x) * 8;
                source[at..at + 8].fill(packed);
                expected.extend([packed; 8]);
            }
        }
        let mut staged = vec![0; expected.len()];
        for_each_packed_run(&region, bc1, &source, |at, bytes| {
            staged[at..at + bytes.len()].copy_from_slice(bytes);
        });
        assert_eq!(staged, expected);
    }

    #[test]
    fn packed_runs_gather_the_box_from_a_padded_source() {
        // 3 x 2 texels in 2 layers, rows of 5 texels, slices of 3 rows: texel (x, y, layer)
        // holds the byte value of its packed index in each of its 4 bytes.
        let desc = desc_2d(8, 8, 2);
        let region = ImageCopy {
            extent: [3, 2, 1],
            ..ImageCopy::whole_level(&desc, 0, 8)
        }
        .with_buffer_layout(5, 3);
        let mut source = vec![0xEE; 8 + region.buffer_bytes(RGBA8).unwrap() as usize];
        let mut expected = Vec::new();
        for layer in 0..2 {
            for y in 0..2 {
                for x in 0..3 {
                    let packed = (layer * 6 + y * 3 + x) as u8;
                    let at = 8 + ((layer * 3 + y) * 5 + x) * 4;
                    source[at..at + 4].fill(packed);
                    expected.extend([packed; 4]);
                }
            }
        }
        let mut staged = vec![0; expected.len()];
        let mut runs = 0;
        for_each_packed_run(&region, RGBA8, &source, |at, bytes| {
            staged[at..at + bytes.len()].copy_from_slice(bytes);
            runs += 1;
        });
        assert_eq!(staged, expected);
        assert_eq!(runs, 4, "one run per row");
        // Tightly packed rows with taller slices: one run per layer; tightly packed: one run.
        let mut runs = 0;
        for_each_packed_run(&region.with_buffer_layout(0, 3), RGBA8, &source, |_, _| {
            runs += 1
        });
        assert_eq!(runs, 2);
        let mut runs = 0;
        for_each_packed_run(&region.tightly_packed(), RGBA8, &source, |_, _| runs += 1);
        assert_eq!(runs, 1);
    }

    #[test]
    fn regions_that_cannot_be_cut_small_enough_are_refused() {
        let desc = desc_2d(100, 50, 1);
        let region = ImageCopy::whole_level(&desc, 0, 0);
        // Whole levels only.
        assert_eq!(staging_groups(&[region], RGBA8, [0, 0, 0], 4096, 16), None);
        // One row (400 bytes) is over the limit.
        assert_eq!(staging_groups(&[region], RGBA8, [1, 1, 1], 256, 16), None);
        // A grid cell of 16 rows (6400 bytes) is over it.
        assert_eq!(
            staging_groups(&[region], RGBA8, [16, 16, 1], 4096, 16),
            None
        );
        // Layers may still be cut under whole-levels-only.
        let layered = desc_2d(16, 16, 4);
        let groups = staging_groups(
            &[ImageCopy::whole_level(&layered, 0, 0)],
            RGBA8,
            [0, 0, 0],
            1024,
            16,
        )
        .unwrap();
        assert_eq!(groups.len(), 4);
    }
}
