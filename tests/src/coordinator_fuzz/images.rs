//! Images in the coordinator workload: square textures with every mip level, in RGBA8 or the
//! preset's compressed format (BC7; ASTC in 6x6 blocks on the mobile preset, which samples no BC),
//! uploaded a band of rows at a time (`upload_image`), read back a whole level at a time
//! (`read_back_image`), drawn whole by the application (`Image::mark_written`) and dropped. The
//! model holds each level's packed bytes and which of them an upload wrote; a read-back's bytes
//! are compared at the next check with the model's at the call, as buffer read-backs are.

use std::collections::HashMap;
use std::ops::Range;

use memkit_core::device::{AstcBlock, ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_dummy::{DummyDevice, Preset};
use memkit_std::{AliasedImageDesc, Image, Readback};

use super::{KNOWN, UNKNOWN, first_known_difference};

/// Usage of every image: sampled, uploaded into and read back.
const USAGE: ImageUsage = ImageUsage::SAMPLED
    .union(ImageUsage::TRANSFER_DST)
    .union(ImageUsage::TRANSFER_SRC);

/// A texture of `1 + side % 96` texels a side with every level: odd sizes, levels smaller than a
/// compressed block, and a level 0 of up to 36 KiB in RGBA8 (past a small ring's upload limit).
/// Compressed, it is BC7 where `preset` samples BC, else ASTC in blocks of 6x6 texels, a side
/// that is not a power of two.
pub(super) fn desc(side: u8, compressed: bool, preset: Preset) -> ImageDesc {
    let side = 1 + u32::from(side % 96);
    let format = match (compressed, preset.config().texture_compression.bc) {
        (false, _) => ImageFormat::Rgba8Unorm,
        (true, true) => ImageFormat::Bc7Srgb,
        (true, false) => ImageFormat::AstcSrgb(AstcBlock::B6x6),
    };
    ImageDesc::new_2d(format, side, side, USAGE).with_full_mip_chain()
}

/// A live image and its model: each level's packed bytes, and which of them an upload wrote.
pub(super) struct ImageModel {
    pub(super) image: Image<DummyDevice>,
    levels: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether an upload into it was accepted or the application drew it (a read-back before
    /// either is refused).
    pub(super) written: bool,
    /// The set of aliased images it was made in (`CoordOp::CreateAliasedImages`), if any.
    alias_set: Option<u32>,
}

impl ImageModel {
    pub(super) fn new(image: Image<DummyDevice>) -> Self {
        let desc = *image.desc();
        let levels = (0..desc.mip_levels)
            .map(|level| {
                let len = ImageCopy::whole_level(&desc, level, 0)
                    .packed_bytes(desc.format)
                    .expect("a level's bytes") as usize;
                (vec![0; len], vec![UNKNOWN; len])
            })
            .collect();
        Self {
            image,
            levels,
            written: false,
            alias_set: None,
        }
    }

    /// The same image, made in aliased set `set`.
    pub(super) fn in_alias_set(self, set: u32) -> Self {
        Self {
            alias_set: Some(set),
            ..self
        }
    }

    /// Its bytes in memory: the object and the range.
    fn memory_range(&self) -> (memkit_dummy::DummyMemory, Range<u64>) {
        let (memory, offset) = self.image.memory();
        (memory, offset..offset + self.image.memory_size())
    }

    /// The level `level` picks (modulo the count).
    pub(super) fn level(&self, level: u8) -> u32 {
        u32::from(level) % self.image.desc().mip_levels
    }

    /// A band of whole block rows of `level`, full width, picked by `rows`: its region, read
    /// from offset 0, and the range of the level's packed bytes it covers.
    pub(super) fn band(&self, level: u32, rows: u8) -> (ImageCopy, Range<usize>) {
        let desc = self.image.desc();
        let whole = ImageCopy::whole_level(desc, level, 0);
        let [_, block_h] = desc.format.block_extent();
        let height = whole.extent[1];
        let block_rows = height.div_ceil(block_h);
        let first = u32::from(rows >> 4) % block_rows;
        let count = 1 + u32::from(rows & 15) % (block_rows - first);
        let top = first * block_h;
        let region = ImageCopy {
            offset: [0, top, 0],
            extent: [whole.extent[0], (count * block_h).min(height - top), 1],
            ..whole
        };
        let row_bytes = self.levels[level as usize].0.len() / block_rows as usize;
        let start = first as usize * row_bytes;
        (region, start..start + count as usize * row_bytes)
    }

    /// An accepted upload of `bytes` into `range` of `level`'s packed bytes.
    pub(super) fn uploaded(&mut self, level: u32, range: Range<usize>, bytes: &[u8]) {
        let (model, known) = &mut self.levels[level as usize];
        model[range.clone()].copy_from_slice(bytes);
        known[range].fill(KNOWN);
        self.written = true;
    }

    /// An upload into `range` of `level` the device refused part way: pieces submitted before
    /// the refusal landed, so those bytes are unknown, and the image is written when the
    /// coordinator says a piece was.
    pub(super) fn refused(&mut self, level: u32, range: Range<usize>) {
        self.levels[level as usize].1[range].fill(UNKNOWN);
        self.written = self.image.is_written();
    }

    /// Bytes of `level`, packed.
    pub(super) fn level_len(&self, level: u32) -> usize {
        self.levels[level as usize].0.len()
    }

    /// The application drew `bytes` over all of `level` (and marked the image written).
    pub(super) fn drawn(&mut self, level: u32, bytes: &[u8]) {
        self.uploaded(level, 0..bytes.len(), bytes);
    }

    /// A read-back of all of `level`, to compare with the model's bytes now.
    pub(super) fn read(&self, read: Readback<DummyDevice>, level: u32) -> PendingImageRead {
        let (bytes, known) = self.levels[level as usize].clone();
        PendingImageRead {
            read,
            image: self.image.id(),
            level,
            bytes,
            known,
        }
    }
}

/// Image `i` of a [`CoordOp::CreateAliasedImages`](super::CoordOp::CreateAliasedImages) set.
pub(super) fn aliased_set(a: u8, b: u8, preset: Preset) -> Vec<AliasedImageDesc> {
    (0..2 + usize::from(a % 3))
        .map(|i| {
            let first_use = u32::from(b >> (2 * i)) & 3;
            AliasedImageDesc {
                desc: desc(a.wrapping_add(41 * i as u8), false, preset),
                first_use,
                last_use: first_use + u32::from(a >> (4 + i) & 1),
            }
        })
        .collect()
}

/// Image `id` was used (an upload into it or a read-back of it submitted, or the application
/// drew it): every other image of its aliased set sharing bytes with it holds nothing any
/// more, as the coordinator now says. Returns how many written images that undefined.
pub(super) fn undefine_aliases(images: &mut HashMap<u64, ImageModel>, id: u64) -> u32 {
    let used = &images[&id];
    let Some(set) = used.alias_set else {
        return 0;
    };
    let (memory, range) = used.memory_range();
    let mut undefined = 0;
    for (&other, m) in images.iter_mut() {
        let (other_memory, other_range) = m.memory_range();
        let overlaps = other_memory == memory
            && other_range.start < range.end
            && range.start < other_range.end;
        if other != id && m.alias_set == Some(set) && overlaps {
            undefined += u32::from(m.written);
            m.written = false;
            for (_, known) in &mut m.levels {
                known.fill(UNKNOWN);
            }
        }
    }
    undefined
}

/// After a call the device refused part way: the images the coordinator no longer holds
/// written (their bytes were overwritten by a use of an alias before the refusal) are written
/// no more in the model either, and their texels unknown.
pub(super) fn forget_undefined(images: &mut HashMap<u64, ImageModel>) {
    for m in images.values_mut() {
        if m.written && !m.image.is_written() {
            m.written = false;
            for (_, known) in &mut m.levels {
                known.fill(UNKNOWN);
            }
        }
    }
}

/// An image read-back in flight, and the model's bytes of its level at the call.
pub(super) struct PendingImageRead {
    read: Readback<DummyDevice>,
    image: u64,
    level: u32,
    bytes: Vec<u8>,
    known: Vec<u8>,
}

impl PendingImageRead {
    /// Waits for the copy, and panics where a byte an upload wrote differs from the model's.
    pub(super) fn compare(self) {
        let got = self.read.wait().expect("image read-back");
        assert_eq!(got.len(), self.bytes.len(), "image read-back size");
        if let Some(i) = first_known_difference(&got, &self.bytes, &self.known) {
            panic!(
                "read-back of image {} level {}: byte {i} is {:#04x}, the model's {:#04x}",
                self.image, self.level, got[i], self.bytes[i]
            );
        }
    }
}
