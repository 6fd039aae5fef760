//! Images as the memory side sees them: a description a backend turns into an optimal-tiling
//! image (`VkImage` with `VK_IMAGE_TILING_OPTIMAL`), checked before any driver sees it.
//!
//! Images matter to memory management for two reasons: drivers often prefer or require a memory
//! object of their own for them (render targets, large textures: `DedicatedTo::Image`), and, as
//! optimal resources, they must not share a `bufferImageGranularity` page with linear ones
//! (`ResourceKind::Optimal` in an allocation request).

use core::fmt;

/// A texel format: uncompressed colour formats, depth and stencil formats, and the
/// block-compressed formats textures ship in: BC on desktop GPUs, ETC2 / EAC and ASTC on mobile
/// ones (which family a device samples is [`compression`](Self::compression)'s to say). The names follow Vulkan's
/// (`Rgba8Unorm` is `VK_FORMAT_R8G8B8A8_UNORM`, `Bc7Srgb` is `VK_FORMAT_BC7_SRGB_BLOCK`,
/// `AstcSrgb(AstcBlock::B6x6)` is `VK_FORMAT_ASTC_6x6_SRGB_BLOCK`).
///
/// Memory is counted in texel blocks: one texel for an uncompressed format, 4x4 texels for BC and
/// ETC2 / EAC, 4x4 to 12x12 for ASTC ([`block_extent`](Self::block_extent),
/// [`block_bytes`](Self::block_bytes)). A level whose width or height is not a multiple of the
/// block's still takes whole blocks at its edge.
///
/// ```
/// use memkit_core::device::{AstcBlock, Compression, ImageFormat};
///
/// assert_eq!(ImageFormat::Rgba8Unorm.block_extent(), [1, 1]);
/// assert_eq!(ImageFormat::Bc7Srgb.block_extent(), [4, 4]);
/// assert_eq!(ImageFormat::Bc1RgbaUnorm.block_bytes(), 8);
/// // 10 x 6 texels of BC7 take 3 x 2 blocks of 16 bytes.
/// assert_eq!(ImageFormat::Bc7Unorm.blocks([10, 6, 1]), [3, 2, 1]);
/// // ASTC blocks need not be square, nor powers of two: 101 x 60 texels in 10x6 blocks.
/// let astc = ImageFormat::AstcUnorm(AstcBlock::B10x6);
/// assert_eq!((astc.block_extent(), astc.block_bytes()), ([10, 6], 16));
/// assert_eq!(astc.blocks([101, 60, 1]), [11, 10, 1]);
/// assert_eq!(astc.compression(), Some(Compression::AstcLdr));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// One 8-bit unsigned normalised channel.
    R8Unorm,
    /// One 8-bit unsigned integer channel (ids, masks).
    R8Uint,
    /// Two 8-bit unsigned normalised channels.
    Rg8Unorm,
    /// Four 8-bit unsigned normalised channels.
    Rgba8Unorm,
    /// Four 8-bit channels, colour in sRGB.
    Rgba8Srgb,
    /// Four 8-bit signed normalised channels.
    Rgba8Snorm,
    /// Four 8-bit unsigned integer channels.
    Rgba8Uint,
    /// Four 8-bit unsigned normalised channels, blue first (the usual swapchain format).
    Bgra8Unorm,
    /// Four 8-bit channels, blue first, colour in sRGB.
    Bgra8Srgb,
    /// Red, green and blue in 10 bits and alpha in 2, packed in 4 bytes
    /// (`VK_FORMAT_A2B10G10R10_UNORM_PACK32`: HDR10 output, normal buffers).
    Rgb10A2Unorm,
    /// Red and green in 11-bit floats and blue in a 10-bit one, without sign, packed in 4 bytes
    /// (`VK_FORMAT_B10G11R11_UFLOAT_PACK32`: HDR render targets at half of `Rgba16Float`'s
    /// bytes).
    Rg11B10Ufloat,
    /// Red, green and blue in 9 bits sharing a 5-bit exponent, packed in 4 bytes
    /// (`VK_FORMAT_E5B9G9R9_UFLOAT_PACK32`: HDR environment maps).
    Rgb9E5Ufloat,
    /// One 16-bit unsigned normalised channel (height maps).
    R16Unorm,
    /// One 16-bit unsigned integer channel.
    R16Uint,
    /// One 16-bit float channel.
    R16Float,
    /// Two 16-bit unsigned normalised channels.
    Rg16Unorm,
    /// Two 16-bit float channels.
    Rg16Float,
    /// Four 16-bit unsigned normalised channels.
    Rgba16Unorm,
    /// Four 16-bit float channels (HDR render targets).
    Rgba16Float,
    /// One 32-bit unsigned integer channel.
    R32Uint,
    /// One 32-bit float channel.
    R32Float,
    /// Two 32-bit unsigned integer channels.
    Rg32Uint,
    /// Two 32-bit float channels.
    Rg32Float,
    /// Four 32-bit unsigned integer channels.
    Rgba32Uint,
    /// Four 32-bit float channels.
    Rgba32Float,
    /// 16-bit unsigned normalised depth.
    D16Unorm,
    /// 32-bit float depth.
    D32Float,
    /// 24-bit unsigned normalised depth and 8-bit stencil, packed in 4 bytes. AMD's drivers do
    /// not offer it; [`D32FloatS8Uint`](Self::D32FloatS8Uint) is the portable choice.
    D24UnormS8Uint,
    /// 32-bit float depth and 8-bit stencil.
    D32FloatS8Uint,
    /// 8-bit stencil alone.
    S8Uint,
    /// BC1 (DXT1) without alpha: RGB, 8 bytes per 4x4 block.
    Bc1RgbUnorm,
    /// BC1 without alpha, colour in sRGB.
    Bc1RgbSrgb,
    /// BC1 (DXT1): RGB with 1-bit alpha, 8 bytes per 4x4 block.
    Bc1RgbaUnorm,
    /// BC1, colour in sRGB.
    Bc1RgbaSrgb,
    /// BC2 (DXT3): RGB with 4-bit alpha, 16 bytes per 4x4 block.
    Bc2Unorm,
    /// BC2, colour in sRGB.
    Bc2Srgb,
    /// BC3 (DXT5): RGBA, 16 bytes per 4x4 block.
    Bc3Unorm,
    /// BC3, colour in sRGB.
    Bc3Srgb,
    /// BC4: one unsigned normalised channel, 8 bytes per 4x4 block.
    Bc4Unorm,
    /// BC4: one signed normalised channel.
    Bc4Snorm,
    /// BC5: two unsigned normalised channels (normal maps), 16 bytes per 4x4 block.
    Bc5Unorm,
    /// BC5: two signed normalised channels (normal maps).
    Bc5Snorm,
    /// BC6H: RGB half floats without sign (HDR), 16 bytes per 4x4 block.
    Bc6hUfloat,
    /// BC6H: RGB half floats with sign.
    Bc6hSfloat,
    /// BC7: RGBA, 16 bytes per 4x4 block.
    Bc7Unorm,
    /// BC7, colour in sRGB.
    Bc7Srgb,
    /// ETC2: RGB, 8 bytes per 4x4 block.
    Etc2Rgb8Unorm,
    /// ETC2 RGB, colour in sRGB.
    Etc2Rgb8Srgb,
    /// ETC2 with 1-bit ("punch-through") alpha: RGBA, 8 bytes per 4x4 block.
    Etc2Rgb8A1Unorm,
    /// ETC2 with 1-bit alpha, colour in sRGB.
    Etc2Rgb8A1Srgb,
    /// ETC2 with EAC alpha: RGBA, 16 bytes per 4x4 block.
    Etc2Rgba8Unorm,
    /// ETC2 with EAC alpha, colour in sRGB.
    Etc2Rgba8Srgb,
    /// EAC: one 11-bit unsigned normalised channel, 8 bytes per 4x4 block.
    EacR11Unorm,
    /// EAC: one 11-bit signed normalised channel.
    EacR11Snorm,
    /// EAC: two 11-bit unsigned normalised channels (normal maps), 16 bytes per 4x4 block.
    EacRg11Unorm,
    /// EAC: two 11-bit signed normalised channels.
    EacRg11Snorm,
    /// ASTC (low dynamic range): RGBA, 16 bytes per block of the [`AstcBlock`]'s texels.
    AstcUnorm(AstcBlock),
    /// ASTC (low dynamic range), colour in sRGB.
    AstcSrgb(AstcBlock),
}

/// The block footprint of an ASTC format, in texels (width x height). Every block is 16 bytes,
/// so a larger footprint means fewer bits per texel (8 at 4x4, 0.89 at 12x12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AstcBlock {
    /// 4x4 texels.
    B4x4,
    /// 5x4 texels.
    B5x4,
    /// 5x5 texels.
    B5x5,
    /// 6x5 texels.
    B6x5,
    /// 6x6 texels.
    B6x6,
    /// 8x5 texels.
    B8x5,
    /// 8x6 texels.
    B8x6,
    /// 8x8 texels.
    B8x8,
    /// 10x5 texels.
    B10x5,
    /// 10x6 texels.
    B10x6,
    /// 10x8 texels.
    B10x8,
    /// 10x10 texels.
    B10x10,
    /// 12x10 texels.
    B12x10,
    /// 12x12 texels.
    B12x12,
}

impl AstcBlock {
    /// Every footprint, in Vulkan's order.
    pub const ALL: [Self; 14] = [
        Self::B4x4,
        Self::B5x4,
        Self::B5x5,
        Self::B6x5,
        Self::B6x6,
        Self::B8x5,
        Self::B8x6,
        Self::B8x8,
        Self::B10x5,
        Self::B10x6,
        Self::B10x8,
        Self::B10x10,
        Self::B12x10,
        Self::B12x12,
    ];

    /// Width and height of a block in texels.
    pub const fn extent(self) -> [u32; 2] {
        match self {
            Self::B4x4 => [4, 4],
            Self::B5x4 => [5, 4],
            Self::B5x5 => [5, 5],
            Self::B6x5 => [6, 5],
            Self::B6x6 => [6, 6],
            Self::B8x5 => [8, 5],
            Self::B8x6 => [8, 6],
            Self::B8x8 => [8, 8],
            Self::B10x5 => [10, 5],
            Self::B10x6 => [10, 6],
            Self::B10x8 => [10, 8],
            Self::B10x10 => [10, 10],
            Self::B12x10 => [12, 10],
            Self::B12x12 => [12, 12],
        }
    }
}

/// A family of block-compressed formats. A Vulkan device with the family's feature
/// (`textureCompressionBC`, `textureCompressionETC2`, `textureCompressionASTC_LDR`) samples
/// every format of it: desktop GPUs have BC (NVIDIA's driver on the H200 and lavapipe have BC
/// only, and refuse ETC2 and ASTC images), mobile GPUs ETC2 and usually ASTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// BC1-BC7.
    Bc,
    /// ETC2 and EAC.
    Etc2,
    /// ASTC, low dynamic range.
    AstcLdr,
}

impl ImageFormat {
    /// Bytes of one texel block: of one texel for an uncompressed format.
    pub const fn block_bytes(self) -> u32 {
        match self {
            Self::R8Unorm | Self::R8Uint | Self::S8Uint => 1,
            Self::Rg8Unorm | Self::R16Unorm | Self::R16Uint | Self::R16Float | Self::D16Unorm => 2,
            Self::Rgba8Unorm
            | Self::Rgba8Srgb
            | Self::Rgba8Snorm
            | Self::Rgba8Uint
            | Self::Bgra8Unorm
            | Self::Bgra8Srgb
            | Self::Rgb10A2Unorm
            | Self::Rg11B10Ufloat
            | Self::Rgb9E5Ufloat
            | Self::Rg16Unorm
            | Self::Rg16Float
            | Self::R32Uint
            | Self::R32Float
            | Self::D32Float
            | Self::D24UnormS8Uint => 4,
            // Four bytes of depth and the stencil byte, padded as drivers store them.
            Self::Rgba16Unorm
            | Self::Rgba16Float
            | Self::Rg32Uint
            | Self::Rg32Float
            | Self::D32FloatS8Uint => 8,
            Self::Rgba32Uint | Self::Rgba32Float => 16,
            Self::Bc1RgbUnorm
            | Self::Bc1RgbSrgb
            | Self::Bc1RgbaUnorm
            | Self::Bc1RgbaSrgb
            | Self::Bc4Unorm
            | Self::Bc4Snorm => 8,
            Self::Bc2Unorm
            | Self::Bc2Srgb
            | Self::Bc3Unorm
            | Self::Bc3Srgb
            | Self::Bc5Unorm
            | Self::Bc5Snorm
            | Self::Bc6hUfloat
            | Self::Bc6hSfloat
            | Self::Bc7Unorm
            | Self::Bc7Srgb => 16,
            Self::Etc2Rgb8Unorm
            | Self::Etc2Rgb8Srgb
            | Self::Etc2Rgb8A1Unorm
            | Self::Etc2Rgb8A1Srgb
            | Self::EacR11Unorm
            | Self::EacR11Snorm => 8,
            Self::Etc2Rgba8Unorm
            | Self::Etc2Rgba8Srgb
            | Self::EacRg11Unorm
            | Self::EacRg11Snorm
            | Self::AstcUnorm(_)
            | Self::AstcSrgb(_) => 16,
        }
    }

    /// What a buffer-to-image copy's source offset must be a multiple of
    /// ([`ImageCopy::buffer_offset`](super::ImageCopy::buffer_offset)): the block size, and 4 on
    /// a queue without graphics or compute (Vulkan). Block sizes are powers of two, so the larger
    /// of the two is their least common multiple.
    pub const fn copy_offset_alignment(self) -> u64 {
        let block = self.block_bytes() as u64;
        if block > 4 { block } else { 4 }
    }

    /// Width and height in texels of one texel block: `[1, 1]` for an uncompressed format,
    /// `[4, 4]` for BC and ETC2 / EAC, the footprint for ASTC. Blocks are one texel deep.
    pub const fn block_extent(self) -> [u32; 2] {
        match self {
            Self::AstcUnorm(block) | Self::AstcSrgb(block) => block.extent(),
            _ if self.is_compressed() => [4, 4],
            _ => [1, 1],
        }
    }

    /// Whether texels are stored in compressed blocks of more than one texel.
    pub const fn is_compressed(self) -> bool {
        self.compression().is_some()
    }

    /// The compressed family the format belongs to, `None` for an uncompressed format. A device
    /// that does not sample the family refuses the image with
    /// [`ImageDescError::Unsupported`].
    pub const fn compression(self) -> Option<Compression> {
        match self {
            Self::Bc1RgbUnorm
            | Self::Bc1RgbSrgb
            | Self::Bc1RgbaUnorm
            | Self::Bc1RgbaSrgb
            | Self::Bc2Unorm
            | Self::Bc2Srgb
            | Self::Bc3Unorm
            | Self::Bc3Srgb
            | Self::Bc4Unorm
            | Self::Bc4Snorm
            | Self::Bc5Unorm
            | Self::Bc5Snorm
            | Self::Bc6hUfloat
            | Self::Bc6hSfloat
            | Self::Bc7Unorm
            | Self::Bc7Srgb => Some(Compression::Bc),
            Self::Etc2Rgb8Unorm
            | Self::Etc2Rgb8Srgb
            | Self::Etc2Rgb8A1Unorm
            | Self::Etc2Rgb8A1Srgb
            | Self::Etc2Rgba8Unorm
            | Self::Etc2Rgba8Srgb
            | Self::EacR11Unorm
            | Self::EacR11Snorm
            | Self::EacRg11Unorm
            | Self::EacRg11Snorm => Some(Compression::Etc2),
            Self::AstcUnorm(_) | Self::AstcSrgb(_) => Some(Compression::AstcLdr),
            _ => None,
        }
    }

    /// Texel blocks that cover a box of `texels` (width, height, depth): width and height
    /// rounded up to whole blocks, depth as it is.
    pub const fn blocks(self, texels: [u32; 3]) -> [u32; 3] {
        let [bw, bh] = self.block_extent();
        [texels[0].div_ceil(bw), texels[1].div_ceil(bh), texels[2]]
    }

    /// Whether it is a depth, stencil or depth-stencil format (attachable as depth-stencil,
    /// never as colour).
    pub const fn is_depth_stencil(self) -> bool {
        matches!(
            self,
            Self::D16Unorm
                | Self::D32Float
                | Self::D24UnormS8Uint
                | Self::D32FloatS8Uint
                | Self::S8Uint
        )
    }

    /// Whether it has a depth aspect.
    pub const fn has_depth(self) -> bool {
        self.is_depth_stencil() && !matches!(self, Self::S8Uint)
    }

    /// Whether it has a stencil aspect.
    pub const fn has_stencil(self) -> bool {
        matches!(
            self,
            Self::D24UnormS8Uint | Self::D32FloatS8Uint | Self::S8Uint
        )
    }
}

bitflags::bitflags! {
    /// How an image will be used, laid out as Vulkan's `VkImageUsageFlags`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct ImageUsage: u32 {
        /// Source of copies.
        const TRANSFER_SRC = 1 << 0;
        /// Destination of copies (uploads).
        const TRANSFER_DST = 1 << 1;
        /// Sampled in shaders.
        const SAMPLED = 1 << 2;
        /// Storage image.
        const STORAGE = 1 << 3;
        /// Colour attachment (render target).
        const COLOR_ATTACHMENT = 1 << 4;
        /// Depth attachment.
        const DEPTH_STENCIL_ATTACHMENT = 1 << 5;
        /// Attachment whose contents live only within a render pass.
        const TRANSIENT_ATTACHMENT = 1 << 6;
        /// Input attachment.
        const INPUT_ATTACHMENT = 1 << 7;
    }
}

impl ImageUsage {
    /// The attachment bits: colour, depth-stencil, transient and input. An image with any of
    /// them is bounded by the device's framebuffer extent at creation
    /// ([`ImageDesc::check_framebuffer_extent`]).
    pub const ATTACHMENTS: Self = Self::COLOR_ATTACHMENT
        .union(Self::DEPTH_STENCIL_ATTACHMENT)
        .union(Self::TRANSIENT_ATTACHMENT)
        .union(Self::INPUT_ATTACHMENT);
}

bitflags::bitflags! {
    /// What views of an image may differ from it in, laid out as Vulkan's `VkImageCreateFlags`.
    /// An engine creates its own image views; a view of another type or format than the image's
    /// is valid only when the image was created with the flag that allows it, so the flag has to
    /// be asked for here, when memkit creates the image.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageDescError, ImageFlags, ImageFormat, ImageUsage};
    ///
    /// // Written through a storage view in UNORM, sampled through an sRGB one.
    /// let desc = ImageDesc::new_2d(ImageFormat::Rgba8Srgb, 512, 512, ImageUsage::SAMPLED)
    ///     .with_flags(ImageFlags::MUTABLE_FORMAT);
    /// assert_eq!(desc.validate(), Ok(()));
    /// // Only a 3D image has 2D slices to view as an array.
    /// let flat = desc.with_flags(ImageFlags::ARRAY_2D_COMPATIBLE);
    /// assert_eq!(flat.validate(), Err(ImageDescError::FlagNotForShape));
    /// ```
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct ImageFlags: u32 {
        /// Views may have another format than the image's, of the same size class (an
        /// `R8G8B8A8_UNORM` view of an `R8G8B8A8_SRGB` image). Some drivers turn off their
        /// framebuffer compression for such images, so ask only where a view needs it.
        const MUTABLE_FORMAT = 1 << 3;
        /// Views may be cubes or cube arrays (`VK_IMAGE_VIEW_TYPE_CUBE`, `_CUBE_ARRAY`): sky
        /// boxes, environment and shadow maps. Only for a square 2D single-sampled image of at
        /// least six layers; [`ImageDesc::new_cube`] makes one.
        const CUBE_COMPATIBLE = 1 << 4;
        /// Views of one level of a 3D image may be 2D images or 2D arrays of its depth slices,
        /// to render into the slices (`VK_IMAGE_CREATE_2D_ARRAY_COMPATIBLE_BIT`, Vulkan 1.1).
        /// Only for a 3D image.
        const ARRAY_2D_COMPATIBLE = 1 << 5;
    }
}

/// An optimal-tiling image to create: a 2D image (`depth` 1, any number of array layers) or a
/// 3D one (`depth` above 1, one layer). A cube map is a 2D image of six layers, one per face, in
/// Vulkan's face order (+X, -X, +Y, -Y, +Z, -Z), with [`ImageFlags::CUBE_COMPATIBLE`]
/// ([`new_cube`](Self::new_cube)); a cube array has six layers per cube.
///
/// ```
/// use memkit_core::device::{ImageDesc, ImageFormat, ImageUsage};
///
/// let desc = ImageDesc::new_2d(ImageFormat::Rgba8Srgb, 1024, 512, ImageUsage::SAMPLED)
///     .with_full_mip_chain();
/// assert_eq!(desc.mip_levels, 11);
/// assert_eq!(desc.validate(), Ok(()));
/// // Every level of every layer, tightly packed: what an upload of the whole image carries.
/// assert_eq!(desc.packed_bytes(), 2_796_204);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageDesc {
    /// Texel format.
    pub format: ImageFormat,
    /// Width in texels.
    pub width: u32,
    /// Height in texels.
    pub height: u32,
    /// Depth in texels: 1 for a 2D image, more for a 3D one.
    pub depth: u32,
    /// Array layers (1 for a 3D image).
    pub array_layers: u32,
    /// Mip levels, from 1 to [`ImageDesc::max_mip_levels`].
    pub mip_levels: u32,
    /// Samples per texel: 1, or a power of two up to 64 for a multisampled 2D image of one level.
    pub samples: u32,
    /// How it will be used; not empty.
    pub usage: ImageUsage,
    /// What the engine's views of it may differ in (empty for views of its own type and format).
    pub flags: ImageFlags,
}

impl ImageDesc {
    /// A 2D image of one layer, one level and one sample.
    pub const fn new_2d(format: ImageFormat, width: u32, height: u32, usage: ImageUsage) -> Self {
        Self {
            format,
            width,
            height,
            depth: 1,
            array_layers: 1,
            mip_levels: 1,
            samples: 1,
            usage,
            flags: ImageFlags::empty(),
        }
    }

    /// A cube map of `side` x `side` texels: a 2D image of six layers, one per face (+X, -X,
    /// +Y, -Y, +Z, -Z), one level, [`ImageFlags::CUBE_COMPATIBLE`]. A face is uploaded or read
    /// back as the layer of its index; [`with_array_layers`](Self::with_array_layers) with a
    /// multiple of six makes a cube array.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageFlags, ImageFormat, ImageUsage};
    ///
    /// let sky = ImageDesc::new_cube(ImageFormat::Bc6hUfloat, 1024, ImageUsage::SAMPLED)
    ///     .with_full_mip_chain();
    /// assert_eq!((sky.array_layers, sky.mip_levels), (6, 11));
    /// assert!(sky.flags.contains(ImageFlags::CUBE_COMPATIBLE));
    /// assert_eq!(sky.validate(), Ok(()));
    /// ```
    pub const fn new_cube(format: ImageFormat, side: u32, usage: ImageUsage) -> Self {
        Self {
            array_layers: 6,
            flags: ImageFlags::CUBE_COMPATIBLE,
            ..Self::new_2d(format, side, side, usage)
        }
    }

    /// The same image with `flags` in place of its own.
    pub const fn with_flags(self, flags: ImageFlags) -> Self {
        Self { flags, ..self }
    }

    /// The same image with `mip_levels` levels.
    pub const fn with_mip_levels(self, mip_levels: u32) -> Self {
        Self { mip_levels, ..self }
    }

    /// The same image with every level down to 1x1 ([`max_mip_levels`](Self::max_mip_levels)).
    pub const fn with_full_mip_chain(self) -> Self {
        Self {
            mip_levels: self.max_mip_levels(),
            ..self
        }
    }

    /// The same image with `array_layers` layers.
    pub const fn with_array_layers(self, array_layers: u32) -> Self {
        Self {
            array_layers,
            ..self
        }
    }

    /// The same image with `samples` samples per texel.
    pub const fn with_samples(self, samples: u32) -> Self {
        Self { samples, ..self }
    }

    /// Levels of a full mip chain: `floor(log2(largest extent)) + 1` (1 for a zero extent, which
    /// [`validate`](Self::validate) refuses anyway).
    pub const fn max_mip_levels(&self) -> u32 {
        let mut largest = self.width;
        if self.height > largest {
            largest = self.height;
        }
        if self.depth > largest {
            largest = self.depth;
        }
        if largest == 0 {
            1
        } else {
            32 - largest.leading_zeros()
        }
    }

    /// Checks what does not depend on the device: nonzero extents and counts, the mip chain, the
    /// 2D / 3D rules, the sample count, flags that fit the image's shape, usage that fits the
    /// format, and transient attachments used only as attachments. A backend also asks its device: an attachment beyond its
    /// framebuffer extent is [`ImageDescError::AttachmentBeyondFramebuffer`]
    /// ([`check_framebuffer_extent`](Self::check_framebuffer_extent)), a format, extent or count
    /// it lacks, or an image larger than the format's `maxResourceSize`
    /// ([`check_resource_size`](Self::check_resource_size)), [`ImageDescError::Unsupported`].
    pub const fn validate(&self) -> Result<(), ImageDescError> {
        if self.width == 0
            || self.height == 0
            || self.depth == 0
            || self.array_layers == 0
            || self.mip_levels == 0
        {
            return Err(ImageDescError::ZeroExtent);
        }
        if self.mip_levels > self.max_mip_levels() {
            return Err(ImageDescError::TooManyMipLevels {
                max: self.max_mip_levels(),
            });
        }
        if self.depth > 1 && (self.array_layers > 1 || self.format.is_depth_stencil()) {
            return Err(ImageDescError::VolumeNotSupported);
        }
        if !self.samples.is_power_of_two() || self.samples > 64 {
            return Err(ImageDescError::BadSampleCount);
        }
        if self.samples > 1 && (self.mip_levels > 1 || self.depth > 1) {
            return Err(ImageDescError::BadSampleCount);
        }
        // Vulkan's rules for the view-compatibility flags (`VkImageCreateInfo`): a cube face is
        // square and a cube has six of them, multisampled images are never cubes, and only a 3D
        // image has slices to view as a 2D array.
        if self.flags.contains(ImageFlags::CUBE_COMPATIBLE)
            && (self.depth > 1
                || self.width != self.height
                || self.array_layers < 6
                || self.samples > 1)
        {
            return Err(ImageDescError::FlagNotForShape);
        }
        if self.flags.contains(ImageFlags::ARRAY_2D_COMPATIBLE) && self.depth == 1 {
            return Err(ImageDescError::FlagNotForShape);
        }
        if self.usage.is_empty() {
            return Err(ImageDescError::NoUsage);
        }
        let wrong_attachment = if self.format.is_depth_stencil() {
            ImageUsage::COLOR_ATTACHMENT.union(ImageUsage::STORAGE)
        } else if self.format.is_compressed() {
            // Compressed blocks are sampled; no device renders into them.
            ImageUsage::ATTACHMENTS
        } else {
            ImageUsage::DEPTH_STENCIL_ATTACHMENT
        };
        if self.usage.intersects(wrong_attachment) {
            return Err(ImageDescError::UsageNotForFormat);
        }
        // A transient image may live only in tile memory, so Vulkan allows it as an attachment
        // and nothing else (VUID-VkImageCreateInfo-usage-00966 and -00963).
        if self.usage.contains(ImageUsage::TRANSIENT_ATTACHMENT) {
            let attachments = ImageUsage::COLOR_ATTACHMENT
                .union(ImageUsage::DEPTH_STENCIL_ATTACHMENT)
                .union(ImageUsage::INPUT_ATTACHMENT);
            let allowed = attachments.union(ImageUsage::TRANSIENT_ATTACHMENT);
            if !self.usage.intersects(attachments) || !allowed.contains(self.usage) {
                return Err(ImageDescError::TransientNotOnlyAttachment);
            }
        }
        Ok(())
    }

    /// Checks an attachment image against the device's framebuffer extent
    /// (`maxFramebufferWidth`, `maxFramebufferHeight`): Vulkan requires an image with any
    /// [`ImageUsage::ATTACHMENTS`] bit to be no wider and no taller than that, whether or not it
    /// is ever attached (VUID-VkImageCreateInfo-usage-00964 and -00965), and the limit may be
    /// below `maxImageDimension2D` and below what the format query allows. Layers are not
    /// bounded here: `maxFramebufferLayers` limits a framebuffer and the views attached to it,
    /// not the image. Images without attachment usage always pass.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageDescError, ImageFormat, ImageUsage};
    ///
    /// let target = ImageDesc::new_2d(ImageFormat::Rgba16Float, 8192, 4096, ImageUsage::COLOR_ATTACHMENT);
    /// assert_eq!(
    ///     target.check_framebuffer_extent(4096, 4096),
    ///     Err(ImageDescError::AttachmentBeyondFramebuffer { max_width: 4096, max_height: 4096 })
    /// );
    /// // The same extent, only sampled, is not an attachment.
    /// let texture = ImageDesc { usage: ImageUsage::SAMPLED, ..target };
    /// assert_eq!(texture.check_framebuffer_extent(4096, 4096), Ok(()));
    /// ```
    pub const fn check_framebuffer_extent(
        &self,
        max_width: u32,
        max_height: u32,
    ) -> Result<(), ImageDescError> {
        if self.usage.intersects(ImageUsage::ATTACHMENTS)
            && (self.width > max_width || self.height > max_height)
        {
            return Err(ImageDescError::AttachmentBeyondFramebuffer {
                max_width,
                max_height,
            });
        }
        Ok(())
    }

    /// Bytes of every texel block of every level, layer and sample, tightly packed: the size of
    /// an upload of the whole image. Drivers reserve more (tiling, alignment); their figure is the
    /// `MemoryRequirements::size` that creating the image reports.
    /// Saturates at `u64::MAX` where the true figure is larger (extents near `u32::MAX`).
    pub const fn packed_bytes(&self) -> u64 {
        match self.checked_packed_bytes() {
            Some(bytes) => bytes,
            None => u64::MAX,
        }
    }

    /// [`packed_bytes`](Self::packed_bytes), or `None` where it does not fit in a `u64`.
    const fn checked_packed_bytes(&self) -> Option<u64> {
        let Some(per_block) =
            (self.format.block_bytes() as u64).checked_mul(self.array_layers as u64)
        else {
            return None;
        };
        let Some(per_block) = per_block.checked_mul(self.samples as u64) else {
            return None;
        };
        let mut total = 0u64;
        let mut level = 0;
        while level < self.mip_levels && level < 32 {
            let [w, h, d] = self.format.blocks(self.level_extent(level));
            // Two extents below 2^32 multiply without overflow; the rest is checked.
            let Some(blocks) = (w as u64 * h as u64).checked_mul(d as u64) else {
                return None;
            };
            let Some(bytes) = blocks.checked_mul(per_block) else {
                return None;
            };
            let Some(sum) = total.checked_add(bytes) else {
                return None;
            };
            total = sum;
            level += 1;
        }
        Some(total)
    }

    /// The image's size as compared with a format's `maxResourceSize`
    /// (`VkImageFormatProperties`), for which Vulkan gives no formula: the estimate of the Khronos
    /// validation layer, [`packed_bytes`](Self::packed_bytes) (every texel of every level, layer
    /// and sample) rounded up to `bufferImageGranularity`. `None` where that does not fit in a
    /// `u64` (extents near `u32::MAX`): such an image is larger than any device allows. A
    /// granularity of 0, which no device reports (Vulkan requires a power of two), rounds
    /// nothing.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageFormat, ImageUsage};
    ///
    /// let tiny = ImageDesc::new_2d(ImageFormat::R8Unorm, 3, 3, ImageUsage::SAMPLED);
    /// assert_eq!(tiny.estimated_resource_size(1024), Some(1024));
    /// let huge = ImageDesc::new_2d(ImageFormat::Rgba32Float, u32::MAX, u32::MAX, ImageUsage::SAMPLED);
    /// assert_eq!(huge.estimated_resource_size(1), None);
    /// ```
    pub const fn estimated_resource_size(&self, buffer_image_granularity: u64) -> Option<u64> {
        let Some(bytes) = self.checked_packed_bytes() else {
            return None;
        };
        if buffer_image_granularity == 0 {
            return Some(bytes);
        }
        bytes.checked_next_multiple_of(buffer_image_granularity)
    }

    /// Checks the image's [`estimated_resource_size`](Self::estimated_resource_size) against a
    /// format's `maxResourceSize`: larger, or too large to estimate, is
    /// [`ImageDescError::Unsupported`]. The format query does not refuse such an image by
    /// itself; above the limit the validation layer warns and a driver may fail or misbehave,
    /// so backends refuse it before creating anything. Vulkan guarantees at least 2^31 bytes;
    /// lavapipe reports 2^32 - 1 and NVIDIA's driver 2^40 for every format memkit has.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageDescError, ImageFormat, ImageUsage};
    ///
    /// // 16384 x 16384 texels of 16 bytes: 4 GiB, one byte over lavapipe's limit.
    /// let texture = ImageDesc::new_2d(ImageFormat::Rgba32Float, 16384, 16384, ImageUsage::SAMPLED);
    /// assert_eq!(texture.check_resource_size(u32::MAX as u64, 64), Err(ImageDescError::Unsupported));
    /// assert_eq!(texture.check_resource_size(1 << 32, 64), Ok(()));
    /// ```
    pub const fn check_resource_size(
        &self,
        max_resource_size: u64,
        buffer_image_granularity: u64,
    ) -> Result<(), ImageDescError> {
        match self.estimated_resource_size(buffer_image_granularity) {
            Some(size) if size <= max_resource_size => Ok(()),
            _ => Err(ImageDescError::Unsupported),
        }
    }
}

/// An extent at mip level `level`: halved per level, never below 1.
pub(super) const fn level_extent(extent: u32, level: u32) -> u32 {
    let e = extent >> level;
    if e == 0 { 1 } else { e }
}

/// Why an [`ImageDesc`] cannot be created.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageDescError {
    /// A width, height, depth, layer count or level count of zero.
    ZeroExtent,
    /// More mip levels than the largest extent halves down to 1.
    TooManyMipLevels {
        /// The most levels this extent has.
        max: u32,
    },
    /// A 3D image with array layers, or with a depth or stencil format.
    VolumeNotSupported,
    /// Samples not a power of two up to 64, or more than one sample on a 3D or mipmapped image.
    BadSampleCount,
    /// A view-compatibility flag the image's shape does not allow:
    /// [`ImageFlags::CUBE_COMPATIBLE`] on an image that is not 2D, square and single-sampled
    /// with at least six layers, or [`ImageFlags::ARRAY_2D_COMPATIBLE`] on one that is not 3D.
    FlagNotForShape,
    /// No usage flag.
    NoUsage,
    /// A depth or stencil format used as a colour or storage image, a colour format as a
    /// depth-stencil attachment, or a compressed format as any attachment.
    UsageNotForFormat,
    /// `TRANSIENT_ATTACHMENT` without a colour, depth-stencil or input attachment bit, or with a
    /// bit other than those (sampled, storage, transfer): a transient image's contents may never
    /// leave the render pass, so Vulkan allows it only as an attachment.
    TransientNotOnlyAttachment,
    /// The device does not support this format with this usage, extent, level, layer or sample
    /// count (`vkGetPhysicalDeviceImageFormatProperties` said no), or the image is larger in all
    /// than the format's `maxResourceSize` ([`ImageDesc::check_resource_size`]).
    Unsupported,
    /// An image with attachment usage ([`ImageUsage::ATTACHMENTS`]) wider or taller than the
    /// device's framebuffers (`maxFramebufferWidth`, `maxFramebufferHeight`): see
    /// [`ImageDesc::check_framebuffer_extent`]. The same extent without attachment usage may be
    /// fine (a texture only sampled).
    AttachmentBeyondFramebuffer {
        /// The device's `maxFramebufferWidth`.
        max_width: u32,
        /// The device's `maxFramebufferHeight`.
        max_height: u32,
    },
}

impl fmt::Display for ImageDescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroExtent => f.write_str("an image extent, layer count or level count is zero"),
            Self::TooManyMipLevels { max } => {
                write!(f, "more mip levels than the extent has (at most {max})")
            }
            Self::VolumeNotSupported => {
                f.write_str("a 3D image cannot have array layers or a depth or stencil format")
            }
            Self::BadSampleCount => f.write_str(
                "samples must be a power of two up to 64, and 1 for 3D or mipmapped images",
            ),
            Self::FlagNotForShape => f.write_str(
                "a cube-compatible image must be 2D, square and single-sampled with at least six \
                 layers, and only a 3D image can be 2D-array compatible",
            ),
            Self::NoUsage => f.write_str("an image needs at least one usage flag"),
            Self::UsageNotForFormat => f.write_str("the usage does not fit the image's format"),
            Self::TransientNotOnlyAttachment => f.write_str(
                "a transient attachment image needs a colour, depth-stencil or input attachment \
                 usage and no other usage (not sampled, storage or transfer)",
            ),
            Self::Unsupported => f.write_str(
                "the device does not support this image (format, usage, extent or size)",
            ),
            Self::AttachmentBeyondFramebuffer {
                max_width,
                max_height,
            } => write!(
                f,
                "an attachment image may be at most {max_width}x{max_height} texels \
                 (the device's largest framebuffer); without attachment usage it may be larger"
            ),
        }
    }
}

impl core::error::Error for ImageDescError {}

#[cfg(test)]
mod tests {
    use super::{
        ImageDesc, ImageDescError as E, ImageFlags as Flags, ImageFormat as F, ImageUsage as U,
    };

    fn rgba(width: u32, height: u32) -> ImageDesc {
        ImageDesc::new_2d(F::Rgba8Unorm, width, height, U::SAMPLED | U::TRANSFER_DST)
    }

    #[test]
    fn mip_chain_length_follows_the_largest_extent() {
        assert_eq!(rgba(1, 1).max_mip_levels(), 1);
        assert_eq!(rgba(1024, 1).max_mip_levels(), 11);
        assert_eq!(rgba(1000, 600).max_mip_levels(), 10);
        let volume = ImageDesc {
            depth: 4096,
            ..rgba(16, 16)
        };
        assert_eq!(volume.max_mip_levels(), 13);
        assert_eq!(rgba(u32::MAX, 1).max_mip_levels(), 32);
    }

    #[test]
    fn packed_bytes_counts_every_level_layer_and_sample() {
        assert_eq!(rgba(4, 4).packed_bytes(), 64);
        // 4x4 + 2x2 + 1x1 texels, 4 bytes each, 6 layers.
        let cube = rgba(4, 4).with_full_mip_chain().with_array_layers(6);
        assert_eq!(cube.packed_bytes(), (16 + 4 + 1) * 4 * 6);
        // A non-square chain clamps the short side at 1: 8x2, 4x1, 2x1, 1x1.
        let strip = ImageDesc::new_2d(F::R16Float, 8, 2, U::SAMPLED).with_full_mip_chain();
        assert_eq!(strip.packed_bytes(), (16 + 4 + 2 + 1) * 2);
        let volume = ImageDesc {
            depth: 4,
            mip_levels: 3,
            ..ImageDesc::new_2d(F::Rgba32Float, 4, 4, U::STORAGE)
        };
        assert_eq!(volume.packed_bytes(), (64 + 8 + 1) * 16);
        let msaa = ImageDesc::new_2d(F::D32Float, 16, 16, U::DEPTH_STENCIL_ATTACHMENT);
        assert_eq!(msaa.with_samples(4).packed_bytes(), 16 * 16 * 4 * 4);
        // Extents at the u32 limit saturate instead of overflowing.
        let huge = rgba(u32::MAX, u32::MAX).with_array_layers(u32::MAX);
        assert_eq!(huge.packed_bytes(), u64::MAX);
        // So do layers and samples whose product alone overflows.
        let layered = rgba(1, 1)
            .with_array_layers(u32::MAX)
            .with_samples(u32::MAX);
        assert_eq!(layered.packed_bytes(), u64::MAX);
    }

    #[test]
    fn compressed_levels_take_whole_blocks_down_to_the_last() {
        // BC7, 10x6: levels 10x6, 5x3, 2x1, 1x1 take 3x2, 2x1, 1x1 and 1x1 blocks of 16 bytes.
        let bc7 = ImageDesc::new_2d(F::Bc7Srgb, 10, 6, U::SAMPLED).with_full_mip_chain();
        assert_eq!(bc7.mip_levels, 4);
        assert_eq!(bc7.packed_bytes(), (6 + 2 + 1 + 1) * 16);
        // BC1 blocks are 8 bytes; two layers count twice.
        let bc1 = ImageDesc::new_2d(F::Bc1RgbaUnorm, 256, 128, U::SAMPLED).with_array_layers(2);
        assert_eq!(bc1.packed_bytes(), 64 * 32 * 8 * 2);
        // A 3D BC4 image: each depth slice is its own layer of blocks.
        let volume = ImageDesc {
            depth: 3,
            ..ImageDesc::new_2d(F::Bc4Unorm, 8, 8, U::SAMPLED)
        };
        assert_eq!(volume.packed_bytes(), 2 * 2 * 3 * 8);
        for (format, bytes) in [
            (F::Bc1RgbUnorm, 8),
            (F::Bc1RgbSrgb, 8),
            (F::Bc4Snorm, 8),
            (F::Bc2Unorm, 16),
            (F::Bc2Srgb, 16),
            (F::Bc3Unorm, 16),
            (F::Bc5Unorm, 16),
            (F::Bc5Snorm, 16),
            (F::Bc6hUfloat, 16),
            (F::Bc6hSfloat, 16),
            (F::Bc7Unorm, 16),
        ] {
            assert_eq!(format.block_bytes(), bytes, "{format:?}");
            assert_eq!(format.block_extent(), [4, 4], "{format:?}");
            assert!(format.is_compressed() && !format.is_depth_stencil());
        }
        assert!(!F::Rgba8Unorm.is_compressed());
        // Copy offsets: the block size, at least 4.
        assert_eq!(F::R8Unorm.copy_offset_alignment(), 4);
        assert_eq!(F::Rgba16Float.copy_offset_alignment(), 8);
        assert_eq!(F::Bc1RgbaSrgb.copy_offset_alignment(), 8);
        assert_eq!(F::Bc7Unorm.copy_offset_alignment(), 16);
        assert_eq!(F::Rgba8Unorm.blocks([10, 6, 2]), [10, 6, 2]);
        assert_eq!(F::Bc1RgbaSrgb.blocks([1, 5, 2]), [1, 2, 2]);
    }

    #[test]
    fn mobile_formats_have_their_blocks_and_families() {
        use super::{AstcBlock, Compression};
        for (format, bytes) in [
            (F::Etc2Rgb8Unorm, 8),
            (F::Etc2Rgb8Srgb, 8),
            (F::Etc2Rgb8A1Unorm, 8),
            (F::Etc2Rgb8A1Srgb, 8),
            (F::EacR11Unorm, 8),
            (F::EacR11Snorm, 8),
            (F::Etc2Rgba8Unorm, 16),
            (F::Etc2Rgba8Srgb, 16),
            (F::EacRg11Unorm, 16),
            (F::EacRg11Snorm, 16),
        ] {
            assert_eq!(format.block_bytes(), bytes, "{format:?}");
            assert_eq!(format.block_extent(), [4, 4], "{format:?}");
            assert_eq!(format.compression(), Some(Compression::Etc2), "{format:?}");
            assert_eq!(format.copy_offset_alignment(), u64::from(bytes));
        }
        // Every ASTC footprint, in Vulkan's order.
        let footprints = [
            [4, 4],
            [5, 4],
            [5, 5],
            [6, 5],
            [6, 6],
            [8, 5],
            [8, 6],
            [8, 8],
            [10, 5],
            [10, 6],
            [10, 8],
            [10, 10],
            [12, 10],
            [12, 12],
        ];
        for (block, [w, h]) in AstcBlock::ALL.into_iter().zip(footprints) {
            assert_eq!(block.extent(), [w, h], "{block:?}");
            for format in [F::AstcUnorm(block), F::AstcSrgb(block)] {
                assert_eq!(format.block_extent(), [w, h]);
                assert_eq!(format.block_bytes(), 16);
                assert_eq!(format.compression(), Some(Compression::AstcLdr));
                assert!(format.is_compressed() && !format.is_depth_stencil());
                // A level one texel larger than whole blocks takes one more of each.
                assert_eq!(format.blocks([3 * w + 1, 2 * h + 1, 1]), [4, 3, 1]);
            }
        }
        assert_eq!(F::Bc4Unorm.compression(), Some(Compression::Bc));
        assert_eq!(F::Rgba16Float.compression(), None);
        assert_eq!(F::D32Float.compression(), None);
        // No compressed format renders.
        let astc = ImageDesc::new_2d(F::AstcSrgb(AstcBlock::B8x8), 64, 64, U::COLOR_ATTACHMENT);
        assert_eq!(
            astc.validate(),
            Err(super::ImageDescError::UsageNotForFormat)
        );
    }

    #[test]
    fn compressed_formats_are_never_attachments() {
        let texture = ImageDesc::new_2d(F::Bc7Unorm, 64, 64, U::SAMPLED.union(U::TRANSFER_DST));
        assert_eq!(texture.validate(), Ok(()));
        for usage in [
            U::COLOR_ATTACHMENT,
            U::DEPTH_STENCIL_ATTACHMENT,
            U::INPUT_ATTACHMENT,
        ] {
            let target = ImageDesc {
                usage: usage.union(U::SAMPLED),
                ..texture
            };
            assert_eq!(target.validate(), Err(E::UsageNotForFormat), "{usage:?}");
        }
    }

    #[test]
    fn resource_size_is_the_packed_size_rounded_to_the_granularity() {
        // 16384 x 16384 texels of 16 bytes is 2^32 bytes: over lavapipe's 2^32 - 1 by one.
        let big = ImageDesc::new_2d(F::Rgba32Float, 16384, 16384, U::SAMPLED);
        assert_eq!(big.estimated_resource_size(64), Some(1 << 32));
        assert_eq!(
            big.check_resource_size(u32::MAX as u64, 64),
            Err(E::Unsupported)
        );
        assert_eq!(big.check_resource_size(1 << 32, 64), Ok(()));
        // One texel row fewer fits under 2^32 - 1.
        let row_less = ImageDesc {
            height: 16383,
            ..big
        };
        assert_eq!(row_less.check_resource_size(u32::MAX as u64, 64), Ok(()));
        // Rounding up to the granularity counts: 9 bytes take a whole 1024-byte page.
        let tiny = ImageDesc::new_2d(F::R8Unorm, 3, 3, U::SAMPLED);
        assert_eq!(tiny.estimated_resource_size(1024), Some(1024));
        assert_eq!(tiny.check_resource_size(1023, 1024), Err(E::Unsupported));
        assert_eq!(tiny.check_resource_size(1024, 1024), Ok(()));
        assert_eq!(tiny.estimated_resource_size(1), Some(9));
        // A granularity of 0 rounds nothing (and does not divide by zero).
        assert_eq!(tiny.estimated_resource_size(0), Some(9));
        // Every level, layer and sample is counted, as in `packed_bytes`.
        let cube = rgba(4, 4).with_full_mip_chain().with_array_layers(6);
        assert_eq!(cube.estimated_resource_size(1), Some((16 + 4 + 1) * 4 * 6));
        let msaa = ImageDesc::new_2d(F::D32Float, 16, 16, U::DEPTH_STENCIL_ATTACHMENT);
        assert_eq!(
            msaa.with_samples(8).estimated_resource_size(64),
            Some(16 * 16 * 4 * 8)
        );
        // Sizes that overflow a u64 have no estimate and are refused under any limit, where the
        // saturated `packed_bytes` would equal a limit of u64::MAX.
        let huge = ImageDesc::new_2d(F::Rgba32Float, u32::MAX, u32::MAX, U::SAMPLED)
            .with_array_layers(u32::MAX)
            .with_full_mip_chain();
        assert_eq!(huge.estimated_resource_size(1), None);
        assert_eq!(huge.packed_bytes(), u64::MAX);
        assert_eq!(huge.check_resource_size(u64::MAX, 1), Err(E::Unsupported));
        let layered = rgba(1, 1)
            .with_array_layers(u32::MAX)
            .with_samples(u32::MAX);
        assert_eq!(layered.estimated_resource_size(1), None);
        // Rounding up past u64::MAX overflows too.
        let odd = ImageDesc::new_2d(F::R8Unorm, u32::MAX, u32::MAX, U::SAMPLED);
        assert_eq!(
            odd.estimated_resource_size(1),
            Some(u32::MAX as u64 * u32::MAX as u64)
        );
        assert_eq!(odd.estimated_resource_size(1 << 63), None);
        assert_eq!(
            odd.check_resource_size(u64::MAX, 1 << 63),
            Err(E::Unsupported)
        );
    }

    #[test]
    fn validate_refuses_each_bad_description() {
        assert_eq!(rgba(256, 256).with_full_mip_chain().validate(), Ok(()));
        assert_eq!(rgba(0, 4).validate(), Err(E::ZeroExtent));
        assert_eq!(
            rgba(4, 4).with_array_layers(0).validate(),
            Err(E::ZeroExtent)
        );
        assert_eq!(rgba(4, 4).with_mip_levels(0).validate(), Err(E::ZeroExtent));
        assert_eq!(
            rgba(4, 4).with_mip_levels(4).validate(),
            Err(E::TooManyMipLevels { max: 3 })
        );
        let volume = ImageDesc {
            depth: 8,
            ..rgba(8, 8)
        };
        assert_eq!(volume.validate(), Ok(()));
        assert_eq!(
            volume.with_array_layers(2).validate(),
            Err(E::VolumeNotSupported)
        );
        let depth_volume = ImageDesc {
            format: F::D16Unorm,
            usage: U::SAMPLED,
            ..volume
        };
        assert_eq!(depth_volume.validate(), Err(E::VolumeNotSupported));
        assert_eq!(
            rgba(8, 8).with_samples(3).validate(),
            Err(E::BadSampleCount)
        );
        assert_eq!(
            rgba(8, 8).with_samples(128).validate(),
            Err(E::BadSampleCount)
        );
        assert_eq!(rgba(8, 8).with_samples(8).validate(), Ok(()));
        assert_eq!(
            rgba(8, 8).with_samples(4).with_mip_levels(2).validate(),
            Err(E::BadSampleCount)
        );
        assert_eq!(volume.with_samples(2).validate(), Err(E::BadSampleCount));
        let unused = ImageDesc::new_2d(F::R8Unorm, 8, 8, U::empty());
        assert_eq!(unused.validate(), Err(E::NoUsage));
        let depth_as_colour = ImageDesc::new_2d(F::D32Float, 8, 8, U::COLOR_ATTACHMENT);
        assert_eq!(depth_as_colour.validate(), Err(E::UsageNotForFormat));
        let colour_as_depth = ImageDesc::new_2d(F::Bgra8Srgb, 8, 8, U::DEPTH_STENCIL_ATTACHMENT);
        assert_eq!(colour_as_depth.validate(), Err(E::UsageNotForFormat));
    }

    #[test]
    fn uncompressed_formats_take_their_texel_size() {
        for (format, bytes) in [
            (F::R8Uint, 1),
            (F::R16Unorm, 2),
            (F::R16Uint, 2),
            (F::Rgba8Snorm, 4),
            (F::Rgba8Uint, 4),
            (F::Rgb10A2Unorm, 4),
            (F::Rg11B10Ufloat, 4),
            (F::Rgb9E5Ufloat, 4),
            (F::Rg16Unorm, 4),
            (F::R32Uint, 4),
            (F::Rgba16Unorm, 8),
            (F::Rg32Uint, 8),
            (F::Rgba32Uint, 16),
        ] {
            assert_eq!(format.block_bytes(), bytes, "{format:?}");
            assert_eq!(format.block_extent(), [1, 1], "{format:?}");
            assert!(!format.is_compressed() && !format.is_depth_stencil());
            let target = ImageDesc::new_2d(format, 30, 20, U::COLOR_ATTACHMENT | U::SAMPLED);
            assert_eq!(target.validate(), Ok(()), "{format:?}");
            assert_eq!(target.packed_bytes(), 600 * u64::from(bytes));
        }
    }

    #[test]
    fn depth_and_stencil_formats_are_depth_stencil_attachments_only() {
        // (format, bytes per texel, stencil aspect)
        let formats = [
            (F::D16Unorm, 2, false),
            (F::D32Float, 4, false),
            (F::D24UnormS8Uint, 4, true),
            (F::D32FloatS8Uint, 8, true),
            (F::S8Uint, 1, true),
        ];
        for (format, bytes, stencil) in formats {
            assert!(format.is_depth_stencil(), "{format:?}");
            assert_eq!(format.has_stencil(), stencil, "{format:?}");
            assert_eq!(format.has_depth(), format != F::S8Uint, "{format:?}");
            assert_eq!(format.block_bytes(), bytes, "{format:?}");
            assert_eq!(format.compression(), None, "{format:?}");
            let target = U::DEPTH_STENCIL_ATTACHMENT | U::SAMPLED | U::INPUT_ATTACHMENT;
            let desc = ImageDesc::new_2d(format, 64, 32, target);
            assert_eq!(desc.validate(), Ok(()), "{format:?}");
            assert_eq!(desc.with_samples(4).validate(), Ok(()), "{format:?}");
            assert_eq!(desc.packed_bytes(), 64 * 32 * u64::from(bytes));
            for wrong in [U::COLOR_ATTACHMENT, U::STORAGE] {
                let as_colour = ImageDesc::new_2d(format, 64, 32, wrong);
                assert_eq!(
                    as_colour.validate(),
                    Err(E::UsageNotForFormat),
                    "{format:?}"
                );
            }
            let volume = ImageDesc { depth: 4, ..desc };
            assert_eq!(volume.validate(), Err(E::VolumeNotSupported), "{format:?}");
        }
        for colour in [F::R8Unorm, F::Rgba32Float, F::Bc7Srgb] {
            assert!(
                !colour.is_depth_stencil() && !colour.has_stencil(),
                "{colour:?}"
            );
        }
    }

    #[test]
    fn view_flags_must_fit_the_image_shape() {
        let cube = ImageDesc::new_cube(F::Rgba16Float, 64, U::SAMPLED | U::TRANSFER_DST);
        assert_eq!(
            (cube.width, cube.height, cube.depth, cube.array_layers),
            (64, 64, 1, 6)
        );
        assert_eq!(cube.flags, Flags::CUBE_COMPATIBLE);
        assert_eq!(cube.with_full_mip_chain().validate(), Ok(()));
        // A cube array, and more layers than whole cubes (Vulkan asks for six or more only).
        assert_eq!(cube.with_array_layers(12).validate(), Ok(()));
        assert_eq!(cube.with_array_layers(7).validate(), Ok(()));
        // Each shape a cube cannot have.
        let not_square = ImageDesc { height: 32, ..cube };
        let too_few_faces = cube.with_array_layers(5);
        let multisampled = ImageDesc {
            usage: U::COLOR_ATTACHMENT,
            ..cube
        }
        .with_samples(4);
        let volume = ImageDesc {
            depth: 64,
            array_layers: 1,
            ..cube
        };
        for bad in [not_square, too_few_faces, multisampled, volume] {
            assert_eq!(bad.validate(), Err(E::FlagNotForShape), "{bad:?}");
            // The same shape without the flag is a valid image.
            assert_eq!(bad.with_flags(Flags::empty()).validate(), Ok(()), "{bad:?}");
        }
        // Slices as a 2D array: 3D images only.
        let slices = Flags::ARRAY_2D_COMPATIBLE;
        assert_eq!(volume.with_flags(slices).validate(), Ok(()));
        assert_eq!(
            rgba(64, 64).with_flags(slices).validate(),
            Err(E::FlagNotForShape)
        );
        // Another view format fits every shape.
        for desc in [rgba(8, 8), volume.with_flags(Flags::empty()), cube] {
            let mutable = desc.with_flags(desc.flags | Flags::MUTABLE_FORMAT);
            assert_eq!(mutable.validate(), Ok(()), "{mutable:?}");
        }
        // The bits are Vulkan's (`VK_IMAGE_CREATE_MUTABLE_FORMAT_BIT` and the next two).
        assert_eq!(Flags::MUTABLE_FORMAT.bits(), 0x8);
        assert_eq!(Flags::CUBE_COMPATIBLE.bits(), 0x10);
        assert_eq!(Flags::ARRAY_2D_COMPATIBLE.bits(), 0x20);
    }

    #[test]
    fn a_transient_image_must_be_an_attachment_and_nothing_else() {
        let colour = |usage| ImageDesc::new_2d(F::Rgba8Unorm, 64, 64, usage);
        let depth = |usage| ImageDesc::new_2d(F::D32Float, 64, 64, usage);
        let transient = U::TRANSIENT_ATTACHMENT;
        // Each attachment kind, alone or together, is allowed.
        assert_eq!(colour(transient | U::COLOR_ATTACHMENT).validate(), Ok(()));
        assert_eq!(colour(transient | U::INPUT_ATTACHMENT).validate(), Ok(()));
        let colour_input = transient | U::COLOR_ATTACHMENT | U::INPUT_ATTACHMENT;
        assert_eq!(colour(colour_input).validate(), Ok(()));
        let depth_input = transient | U::DEPTH_STENCIL_ATTACHMENT | U::INPUT_ATTACHMENT;
        assert_eq!(depth(depth_input).validate(), Ok(()));
        // Multisampled transient targets are the usual case.
        let msaa = colour(transient | U::COLOR_ATTACHMENT).with_samples(4);
        assert_eq!(msaa.validate(), Ok(()));
        // No attachment bit (VUID-VkImageCreateInfo-usage-00966).
        assert_eq!(
            colour(transient).validate(),
            Err(E::TransientNotOnlyAttachment)
        );
        assert_eq!(
            colour(transient | U::SAMPLED).validate(),
            Err(E::TransientNotOnlyAttachment)
        );
        // Another bit beside the attachment (VUID-VkImageCreateInfo-usage-00963).
        for other in [U::TRANSFER_SRC, U::TRANSFER_DST, U::SAMPLED, U::STORAGE] {
            let usage = transient | U::COLOR_ATTACHMENT | other;
            assert_eq!(
                colour(usage).validate(),
                Err(E::TransientNotOnlyAttachment),
                "{usage:?}"
            );
        }
        let sampled_depth = transient | U::DEPTH_STENCIL_ATTACHMENT | U::SAMPLED;
        assert_eq!(
            depth(sampled_depth).validate(),
            Err(E::TransientNotOnlyAttachment)
        );
        // The same bits without TRANSIENT_ATTACHMENT are fine.
        assert_eq!(colour(U::COLOR_ATTACHMENT | U::SAMPLED).validate(), Ok(()));
    }

    #[test]
    fn attachments_are_bounded_by_the_framebuffer_extent() {
        use std::string::ToString;

        let refused = Err(E::AttachmentBeyondFramebuffer {
            max_width: 4096,
            max_height: 2048,
        });
        let image = |width, height, usage| ImageDesc::new_2d(F::Rgba8Unorm, width, height, usage);
        // At the limit on both axes: fine, for every attachment kind.
        for usage in [
            U::COLOR_ATTACHMENT,
            U::INPUT_ATTACHMENT | U::SAMPLED,
            U::TRANSIENT_ATTACHMENT | U::COLOR_ATTACHMENT,
        ] {
            let at_limit = image(4096, 2048, usage);
            assert_eq!(at_limit.check_framebuffer_extent(4096, 2048), Ok(()));
            // One texel over, on either axis (VUID-VkImageCreateInfo-usage-00964, -00965).
            let wide = image(4097, 16, usage);
            assert_eq!(
                wide.check_framebuffer_extent(4096, 2048),
                refused,
                "{usage:?}"
            );
            let tall = image(16, 2049, usage);
            assert_eq!(
                tall.check_framebuffer_extent(4096, 2048),
                refused,
                "{usage:?}"
            );
        }
        let depth = ImageDesc::new_2d(F::D32Float, 16, 4000, U::DEPTH_STENCIL_ATTACHMENT);
        assert_eq!(depth.check_framebuffer_extent(4096, 2048), refused);
        // Layers are not the framebuffer's concern at image creation.
        let layered = image(64, 64, U::COLOR_ATTACHMENT).with_array_layers(4096);
        assert_eq!(layered.check_framebuffer_extent(4096, 2048), Ok(()));
        // Without an attachment bit any extent passes.
        let texture = image(
            u32::MAX,
            u32::MAX,
            U::SAMPLED | U::STORAGE | U::TRANSFER_DST,
        );
        assert_eq!(texture.check_framebuffer_extent(4096, 2048), Ok(()));
        assert_eq!(
            image(4097, 1, U::COLOR_ATTACHMENT)
                .check_framebuffer_extent(4096, 2048)
                .unwrap_err()
                .to_string(),
            "an attachment image may be at most 4096x2048 texels (the device's largest \
             framebuffer); without attachment usage it may be larger"
        );
    }

    #[test]
    fn a_refused_image_is_a_device_error_with_its_reason_as_source() {
        use std::string::ToString;

        let error = crate::device::DeviceError::InvalidImage(E::NoUsage);
        assert_eq!(
            error.to_string(),
            "invalid image: an image needs at least one usage flag"
        );
        let source = core::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("an image needs at least one usage flag")
        );
    }
}
