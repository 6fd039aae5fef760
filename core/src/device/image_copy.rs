//! Uploads into images: the regions a buffer-to-image copy writes (`VkBufferImageCopy`), the
//! rules a region must keep before any driver sees it, and the layout an image is left in.
//!
//! A region's texels lie in the source buffer row after row, slice after slice, layer after
//! layer, from [`ImageCopy::buffer_offset`]. By default they are tightly packed
//! ([`ImageCopy::packed_bytes`] bytes); a region may instead name a longer row and a taller
//! slice ([`ImageCopy::buffer_row_length`], [`ImageCopy::buffer_image_height`], in texels, as
//! Vulkan's `VkBufferImageCopy` does), so that rows with padding after them, or a box cut from a
//! larger picture, are read where they are ([`ImageCopy::buffer_bytes`] bytes from the offset).
//!
//! A compressed format's texels come in blocks ([`ImageFormat::block_extent`]): the source holds
//! rows of blocks, and a region's box starts on the block grid and ends on it or at the level's
//! edge, where the last block is partial, as Vulkan requires. The queue's transfer granularity
//! then counts blocks, not texels.
//!
//! Uploads are for colour images with one sample: a copy into a depth image needs a graphics
//! queue in Vulkan, and multisampled images cannot be copied into.
//!
//! # Layouts
//!
//! An [`ImageCopyQueue`](super::ImageCopyQueue) moves every subresource of the image to the
//! transfer layout before its copies, and afterwards to [`ImageDesc::layout_after_upload`]:
//! shader-read-only for an image that shaders sample or read as an input attachment, general
//! otherwise. The first upload into an image discards what the image held (its subresources go
//! from the undefined layout, so levels the upload does not cover hold garbage until written);
//! later ones keep it ([`ImageCopyCommand::keep_contents`]), and expect the image in that layout.

use core::fmt;

use super::image::{ImageDesc, ImageFormat, ImageUsage, level_extent};

/// A layout an upload leaves an image in: where a renderer finds it once the upload's timeline
/// value completed (Vulkan's `VkImageLayout` of the same name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageLayout {
    /// `VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL`: sampled or read as an input attachment.
    ShaderReadOnlyOptimal,
    /// `VK_IMAGE_LAYOUT_GENERAL`: any other use (a storage image, a copy source).
    General,
}

impl ImageDesc {
    /// The layout uploads leave this image in: [`ImageLayout::ShaderReadOnlyOptimal`] when its
    /// usage includes [`ImageUsage::SAMPLED`] or [`ImageUsage::INPUT_ATTACHMENT`],
    /// [`ImageLayout::General`] otherwise.
    pub const fn layout_after_upload(&self) -> ImageLayout {
        if self
            .usage
            .intersects(ImageUsage::SAMPLED.union(ImageUsage::INPUT_ATTACHMENT))
        {
            ImageLayout::ShaderReadOnlyOptimal
        } else {
            ImageLayout::General
        }
    }

    /// Width, height and depth of mip level `level`: halved per level, never below 1.
    pub const fn level_extent(&self, level: u32) -> [u32; 3] {
        // Shifts of 32 and more would overflow; every extent is 1 by then.
        let level = if level > 31 { 31 } else { level };
        [
            level_extent(self.width, level),
            level_extent(self.height, level),
            level_extent(self.depth, level),
        ]
    }
}

/// One region of a buffer-to-image copy: a box of texels in one mip level of one or more array
/// layers, read from the source buffer tightly packed or, with
/// [`with_buffer_layout`](Self::with_buffer_layout), with longer rows and taller slices.
///
/// ```
/// use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};
///
/// let desc = ImageDesc::new_2d(
///     ImageFormat::Rgba8Srgb,
///     256,
///     128,
///     ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
/// )
/// .with_full_mip_chain();
/// let level1 = ImageCopy::whole_level(&desc, 1, 0);
/// assert_eq!(level1.extent, [128, 64, 1]);
/// assert_eq!(level1.packed_bytes(desc.format), Some(128 * 64 * 4));
/// assert_eq!(level1.check(&desc, [1, 1, 1]), Ok(()));
///
/// // Level 0's left half, read out of the whole picture: rows of 256 texels.
/// let left = ImageCopy {
///     extent: [128, 128, 1],
///     ..ImageCopy::whole_level(&desc, 0, 0)
/// }
/// .with_buffer_layout(256, 0);
/// assert_eq!(left.packed_bytes(desc.format), Some(128 * 128 * 4));
/// assert_eq!(left.buffer_bytes(desc.format), Some((127 * 256 + 128) * 4));
/// assert_eq!(left.check(&desc, [1, 1, 1]), Ok(()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageCopy {
    /// Where the region's first texel block lies in the source buffer: a multiple of 4 and of
    /// the format's [block size](ImageFormat::block_bytes).
    pub buffer_offset: u64,
    /// The mip level written.
    pub mip_level: u32,
    /// The first array layer written (0 for a 3D image).
    pub base_array_layer: u32,
    /// Array layers written, at least 1 (1 for a 3D image).
    pub layer_count: u32,
    /// The box's first texel: x, y, z (x and y on the format's block grid).
    pub offset: [u32; 3],
    /// The box's size in texels: width, height, depth, each at least 1 (width and height whole
    /// blocks, or reaching the level's edge).
    pub extent: [u32; 3],
    /// Texels from the start of one row in the source buffer to the start of the next: 0 (the
    /// box's width, tightly packed) or at least the width, a whole number of blocks. Vulkan's
    /// `bufferRowLength`.
    pub buffer_row_length: u32,
    /// Texel rows from the start of one depth slice (or layer) in the source buffer to the start
    /// of the next: 0 (the box's height) or at least the height, a whole number of blocks.
    /// Vulkan's `bufferImageHeight`.
    pub buffer_image_height: u32,
}

impl ImageCopy {
    /// All of mip level `mip_level`, every array layer, read from `buffer_offset`.
    pub const fn whole_level(desc: &ImageDesc, mip_level: u32, buffer_offset: u64) -> Self {
        Self {
            buffer_offset,
            mip_level,
            base_array_layer: 0,
            layer_count: desc.array_layers,
            offset: [0; 3],
            extent: desc.level_extent(mip_level),
            buffer_row_length: 0,
            buffer_image_height: 0,
        }
    }

    /// The same region read with rows of `row_length` texels and slices of `image_height` rows
    /// in the source buffer (0 for either: tightly packed on that axis).
    #[must_use]
    pub const fn with_buffer_layout(self, row_length: u32, image_height: u32) -> Self {
        Self {
            buffer_row_length: row_length,
            buffer_image_height: image_height,
            ..self
        }
    }

    /// The same region read tightly packed: no longer rows or taller slices.
    #[must_use]
    pub const fn tightly_packed(self) -> Self {
        self.with_buffer_layout(0, 0)
    }

    /// The box in texel blocks of `format`: its first block and its extent in blocks (a box
    /// reaching the level's edge counts its partial last block whole). The box itself for an
    /// uncompressed format.
    pub const fn block_box(&self, format: ImageFormat) -> ([u32; 3], [u32; 3]) {
        let [bw, bh] = format.block_extent();
        let [x, y, z] = self.offset;
        ([x / bw, y / bh, z], format.blocks(self.extent))
    }

    /// Bytes from the start of one row of blocks, one depth slice and one array layer in the
    /// source buffer to the start of the next. `None` where one does not fit in a `u64`.
    pub const fn buffer_pitches(&self, format: ImageFormat) -> Option<[u64; 3]> {
        let [w, h, d] = self.extent;
        let row_texels = if self.buffer_row_length == 0 {
            w
        } else {
            self.buffer_row_length
        };
        let rows = if self.buffer_image_height == 0 {
            h
        } else {
            self.buffer_image_height
        };
        let [row_blocks, block_rows, _] = format.blocks([row_texels, rows, 1]);
        // A u32 by a u32 by a power of two up to 16 fits in a u64; the rest is checked.
        let row = row_blocks as u64 * format.block_bytes() as u64;
        let Some(slice) = row.checked_mul(block_rows as u64) else {
            return None;
        };
        let Some(layer) = slice.checked_mul(d as u64) else {
            return None;
        };
        Some([row, slice, layer])
    }

    /// Bytes the region's source spans, from [`buffer_offset`](Self::buffer_offset) to one past
    /// its last texel block: [`packed_bytes`](Self::packed_bytes) when tightly packed, more with
    /// longer rows or taller slices (the padding after the last row is not read, as in Vulkan).
    /// `None` where that does not fit in a `u64`.
    pub const fn buffer_bytes(&self, format: ImageFormat) -> Option<u64> {
        let [w, h, d] = format.blocks(self.extent);
        if w == 0 || h == 0 || d == 0 || self.layer_count == 0 {
            return Some(0);
        }
        let Some([row, slice, _]) = self.buffer_pitches(format) else {
            return None;
        };
        // Slices of every layer follow one another at the same pitch (Vulkan's addressing).
        let slices = d as u64 * self.layer_count as u64;
        let Some(before_last_slice) = (slices - 1).checked_mul(slice) else {
            return None;
        };
        let Some(before_last_row) = (h as u64 - 1).checked_mul(row) else {
            return None;
        };
        let last_row = w as u64 * format.block_bytes() as u64;
        let Some(span) = before_last_slice.checked_add(before_last_row) else {
            return None;
        };
        span.checked_add(last_row)
    }

    /// Bytes the region writes into the image, which is also what it reads from a tightly packed
    /// source: every texel block of the box in every layer. `None` where that does not fit in a
    /// `u64`.
    pub const fn packed_bytes(&self, format: ImageFormat) -> Option<u64> {
        let [w, h, d] = format.blocks(self.extent);
        // Two u32 factors multiply without overflow in a u64; the rest is checked.
        let Some(blocks) = (w as u64 * h as u64).checked_mul(d as u64) else {
            return None;
        };
        let Some(blocks) = blocks.checked_mul(self.layer_count as u64) else {
            return None;
        };
        blocks.checked_mul(format.block_bytes() as u64)
    }

    /// Checks the region against the image it writes and the queue's
    /// [`image_copy_granularity`](super::ImageCopyQueue::image_copy_granularity), in the order the
    /// variants of [`ImageCopyError`] are listed. Whether the source range lies inside the source
    /// buffer is the caller's to check (backends do not know buffer sizes).
    pub const fn check(
        &self,
        desc: &ImageDesc,
        granularity: [u32; 3],
    ) -> Result<(), ImageCopyError> {
        if !desc.usage.contains(ImageUsage::TRANSFER_DST) {
            return Err(ImageCopyError::NotTransferDst);
        }
        if desc.format.is_depth_stencil() {
            return Err(ImageCopyError::DepthFormat);
        }
        self.check_box(desc, granularity)
    }

    /// The checks of uploads and read-backs alike, from [`ImageCopyError::Multisampled`] on.
    const fn check_box(
        &self,
        desc: &ImageDesc,
        granularity: [u32; 3],
    ) -> Result<(), ImageCopyError> {
        if desc.samples != 1 {
            return Err(ImageCopyError::Multisampled);
        }
        if self.mip_level >= desc.mip_levels {
            return Err(ImageCopyError::NoSuchLevel);
        }
        let layers_end = self.base_array_layer as u64 + self.layer_count as u64;
        if self.layer_count == 0 || layers_end > desc.array_layers as u64 {
            return Err(ImageCopyError::NoSuchLayer);
        }
        let level = desc.level_extent(self.mip_level);
        let [bw, bh] = desc.format.block_extent();
        let block = [bw, bh, 1];
        let level_blocks = desc.format.blocks(level);
        let mut axis = 0;
        while axis < 3 {
            let (offset, extent) = (self.offset[axis], self.extent[axis]);
            if extent == 0 {
                return Err(ImageCopyError::ZeroExtent);
            }
            let end = offset as u64 + extent as u64;
            if end > level[axis] as u64 {
                return Err(ImageCopyError::OutOfBounds);
            }
            // Whole blocks, but for a partial last block at the level's edge.
            let b = block[axis];
            if offset % b != 0 || (extent % b != 0 && end != level[axis] as u64) {
                return Err(ImageCopyError::OffTexelBlock);
            }
            // Vulkan's `minImageTransferGranularity`, in blocks: offsets on the grid, extents on
            // it or reaching the level's edge; a granularity of 0 allows whole levels only.
            let (offset, extent) = (offset / b, extent.div_ceil(b));
            let (end, edge) = (offset as u64 + extent as u64, level_blocks[axis] as u64);
            let g = granularity[axis];
            let on_grid = if g == 0 {
                offset == 0 && end == edge
            } else {
                offset % g == 0 && (extent % g == 0 || end == edge)
            };
            if !on_grid {
                return Err(ImageCopyError::OffGranularity);
            }
            axis += 1;
        }
        if !self
            .buffer_offset
            .is_multiple_of(desc.format.copy_offset_alignment())
        {
            return Err(ImageCopyError::MisalignedBufferOffset);
        }
        if self.buffer_row_length != 0 && self.buffer_row_length < self.extent[0] {
            return Err(ImageCopyError::BufferRowTooShort);
        }
        if self.buffer_image_height != 0 && self.buffer_image_height < self.extent[1] {
            return Err(ImageCopyError::BufferImageTooShort);
        }
        if !self.buffer_row_length.is_multiple_of(bw)
            || !self.buffer_image_height.is_multiple_of(bh)
        {
            return Err(ImageCopyError::BufferLayoutOffTexelBlock);
        }
        if self.packed_bytes(desc.format).is_none() || self.buffer_bytes(desc.format).is_none() {
            return Err(ImageCopyError::OutOfBounds);
        }
        Ok(())
    }
}

impl ImageCopy {
    /// Checks the region as one of an image-to-buffer copy (a read-back): the image was created
    /// with [`ImageUsage::TRANSFER_SRC`] ([`ImageCopyError::NotTransferSrc`]), and the region
    /// passes [`ImageCopy::check`], with the buffer fields naming where its texels land. The
    /// rules are those of uploads: reading needs the image in the layout uploads leave it in,
    /// so only an image uploads can write is read. One difference: an image of one depth or
    /// stencil aspect (`D16Unorm`, `D32Float`, `S8Uint`) is read, as a depth target the
    /// application drew (Vulkan copies out of depth on any queue that copies); one with both
    /// aspects is [`ImageCopyError::DepthFormat`], as a read would need one of them chosen.
    pub const fn check_read(
        &self,
        desc: &ImageDesc,
        granularity: [u32; 3],
    ) -> Result<(), ImageCopyError> {
        if !desc.usage.contains(ImageUsage::TRANSFER_SRC) {
            return Err(ImageCopyError::NotTransferSrc);
        }
        if !desc.usage.contains(ImageUsage::TRANSFER_DST) {
            return Err(ImageCopyError::NotTransferDst);
        }
        if desc.format.has_depth() && desc.format.has_stencil() {
            return Err(ImageCopyError::DepthFormat);
        }
        self.check_box(desc, granularity)
    }
}

impl ImageDesc {
    /// Checks that an image of this description can be moved into a like one by a copy on a
    /// transfer queue ([`ImageMoveCommand`]), in the order the variants of [`ImageCopyError`]
    /// are listed: created with [`ImageUsage::TRANSFER_DST`] (the new image is written) and
    /// [`ImageUsage::TRANSFER_SRC`] (the old one is read), a colour format (Vulkan copies into
    /// depth only on a graphics queue), one sample (as uploads and read-backs: memkit's copies
    /// cover single-sampled images only). Whole levels are copied, which every queue's transfer
    /// granularity allows.
    pub const fn check_move(&self) -> Result<(), ImageCopyError> {
        if !self.usage.contains(ImageUsage::TRANSFER_DST) {
            return Err(ImageCopyError::NotTransferDst);
        }
        if !self.usage.contains(ImageUsage::TRANSFER_SRC) {
            return Err(ImageCopyError::NotTransferSrc);
        }
        if self.format.is_depth_stencil() {
            return Err(ImageCopyError::DepthFormat);
        }
        if self.samples != 1 {
            return Err(ImageCopyError::Multisampled);
        }
        Ok(())
    }
}

/// Why a buffer-to-image copy region was refused ([`ImageCopy::check`]).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageCopyError {
    /// The image was created without [`ImageUsage::TRANSFER_DST`].
    NotTransferDst,
    /// The image was created without [`ImageUsage::TRANSFER_SRC`], and is read back.
    NotTransferSrc,
    /// Uploaded into, the image has a depth or stencil format: Vulkan copies into depth only on
    /// a graphics queue, and memkit's copies run on a transfer queue. Read back, it has both
    /// depth and stencil: a copy takes one aspect, which memkit does not choose.
    DepthFormat,
    /// The image has more than one sample per texel; such images cannot be copied into.
    Multisampled,
    /// The mip level is not below the image's level count.
    NoSuchLevel,
    /// No layer, or layers past the image's last.
    NoSuchLayer,
    /// A width, height or depth of zero.
    ZeroExtent,
    /// The box reaches past the mip level's extent.
    OutOfBounds,
    /// A compressed format's box starts off its block grid, or its width or height is not a
    /// whole number of blocks and does not reach the level's edge.
    OffTexelBlock,
    /// The box's offset or extent is off the queue's image transfer granularity.
    OffGranularity,
    /// The buffer offset is not a multiple of 4 and of the format's block size.
    MisalignedBufferOffset,
    /// [`ImageCopy::buffer_row_length`] is neither 0 nor at least the box's width.
    BufferRowTooShort,
    /// [`ImageCopy::buffer_image_height`] is neither 0 nor at least the box's height.
    BufferImageTooShort,
    /// A compressed format's [`ImageCopy::buffer_row_length`] or
    /// [`ImageCopy::buffer_image_height`] is not a whole number of blocks.
    BufferLayoutOffTexelBlock,
}

impl fmt::Display for ImageCopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotTransferDst => "the image was not created as a transfer destination",
            Self::NotTransferSrc => "the image was not created as a transfer source",
            Self::DepthFormat => {
                "depth and stencil images are not uploaded into, nor read back with both aspects"
            }
            Self::Multisampled => "multisampled images cannot be copied into",
            Self::NoSuchLevel => "the image has no such mip level",
            Self::NoSuchLayer => "the image has no such array layers",
            Self::ZeroExtent => "a copy region has a zero width, height or depth",
            Self::OutOfBounds => "the copy region reaches past the mip level",
            Self::OffTexelBlock => {
                "the copy region is off the format's block grid and does not reach the level's edge"
            }
            Self::OffGranularity => "the copy region is off the queue's image transfer granularity",
            Self::MisalignedBufferOffset => {
                "the buffer offset is not a multiple of 4 and of the format's block size"
            }
            Self::BufferRowTooShort => "the source's row length is shorter than the box's width",
            Self::BufferImageTooShort => {
                "the source's image height is shorter than the box's height"
            }
            Self::BufferLayoutOffTexelBlock => {
                "the source's row length or image height is not a whole number of blocks"
            }
        })
    }
}

impl core::error::Error for ImageCopyError {}

/// One upload into an image: regions from one buffer into one image, as one submission's part.
///
/// The regions' boxes must not overlap one another (they run in no particular order), and their
/// source ranges ([`ImageCopy::buffer_bytes`] from each offset) must lie inside `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageCopyCommand<'a, B, I> {
    /// Source buffer (a staging buffer, usually).
    pub src: B,
    /// Destination image.
    pub dst: I,
    /// What `dst` was created with.
    pub desc: ImageDesc,
    /// `false` for the first upload into the image: what it held is discarded. `true` for a
    /// later one: the image is in [`ImageDesc::layout_after_upload`] and what the regions do not
    /// cover is kept.
    pub keep_contents: bool,
    /// The regions, each passing [`ImageCopy::check`].
    pub regions: &'a [ImageCopy],
}

/// One read-back of an image: regions from one image into one buffer, as one submission's part
/// ([`ImageCopyQueue::submit_image_reads`](super::ImageCopyQueue::submit_image_reads)). Each
/// region's buffer fields ([`ImageCopy::buffer_offset`], its row length and image height) say
/// where its texels land in `dst`.
///
/// The regions' destination ranges ([`ImageCopy::buffer_bytes`] from each offset) must lie
/// inside `dst` and not overlap one another (they run in no particular order); their boxes may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageReadCommand<'a, B, I> {
    /// Source image: every subresource in [`ImageDesc::layout_after_upload`].
    pub src: I,
    /// What `src` was created with.
    pub desc: ImageDesc,
    /// Destination buffer (host-visible, usually, for the host to read).
    pub dst: B,
    /// The regions, each passing [`ImageCopy::check_read`].
    pub regions: &'a [ImageCopy],
}

/// One image moved into another of the same description, as one submission's part
/// ([`ImageCopyQueue::submit_moves`](super::ImageCopyQueue::submit_moves)): what
/// defragmentation submits for an image. Every level and layer of `src` is copied into `dst`.
///
/// `src` holds defined texels in [`ImageDesc::layout_after_upload`] (an upload wrote it, or the
/// application did and said so). `dst` is new: bound in its new place and never used, so its
/// layout is undefined. Once the submission completed, `dst` holds `src`'s texels in the layout
/// after upload, and `src` is left to be destroyed: its layout is no longer the one after upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageMoveCommand<I> {
    /// The image that moves out.
    pub src: I,
    /// The image that takes its place.
    pub dst: I,
    /// What both were created with; passes [`ImageDesc::check_move`].
    pub desc: ImageDesc,
}

#[cfg(test)]
mod tests;
