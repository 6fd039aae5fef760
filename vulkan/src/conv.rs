//! Pure conversions between Vulkan's structures and core's, named `map_*`. No Vulkan calls.

use ash::vk;
use memkit_core::device::{
    AstcBlock, BufferCopy, BufferUsage, DedicatedHint, DescriptionError, DeviceLimits, ImageCopy,
    ImageFlags, ImageFormat, ImageLayout, ImageUsage, MemoryHeap, MemoryHeapFlags,
    MemoryProperties, MemoryPropertyFlags, MemoryRequirements, MemoryType,
};

/// Vulkan's memory types and heaps as core's [`MemoryProperties`]. Unknown property bits are kept.
pub fn map_memory_properties(
    raw: &vk::PhysicalDeviceMemoryProperties,
) -> Result<MemoryProperties, DescriptionError> {
    let type_count = raw.memory_type_count as usize;
    let heap_count = raw.memory_heap_count as usize;
    if type_count > raw.memory_types.len() || heap_count > raw.memory_heaps.len() {
        return Err(DescriptionError::BadCount);
    }
    let mut types = [MemoryType {
        properties: MemoryPropertyFlags::empty(),
        heap_index: 0,
    }; vk::MAX_MEMORY_TYPES];
    for (out, t) in types.iter_mut().zip(&raw.memory_types[..type_count]) {
        *out = MemoryType {
            properties: MemoryPropertyFlags::from_bits_retain(t.property_flags.as_raw()),
            heap_index: t.heap_index,
        };
    }
    let mut heaps = [MemoryHeap {
        size: 0,
        flags: MemoryHeapFlags::empty(),
    }; vk::MAX_MEMORY_HEAPS];
    for (out, h) in heaps.iter_mut().zip(&raw.memory_heaps[..heap_count]) {
        *out = MemoryHeap {
            size: h.size,
            flags: MemoryHeapFlags::from_bits_retain(h.flags.as_raw()),
        };
    }
    MemoryProperties::new(&types[..type_count], &heaps[..heap_count])
}

/// The limits memory management respects. `max_memory_allocation_size` comes from
/// `VkPhysicalDeviceMaintenance3Properties` (Vulkan 1.1).
pub fn map_limits(
    raw: &vk::PhysicalDeviceLimits,
    max_memory_allocation_size: u64,
) -> Result<DeviceLimits, DescriptionError> {
    let limits = DeviceLimits {
        max_memory_allocation_count: raw.max_memory_allocation_count,
        max_memory_allocation_size,
        buffer_image_granularity: raw.buffer_image_granularity,
        non_coherent_atom_size: raw.non_coherent_atom_size,
        // `minMemoryMapAlignment` is a `size_t`; it always fits in 64 bits.
        min_memory_map_alignment: raw.min_memory_map_alignment as u64,
        min_buffer_offset_alignment: raw
            .min_uniform_buffer_offset_alignment
            .max(raw.min_storage_buffer_offset_alignment)
            .max(raw.min_texel_buffer_offset_alignment),
    };
    limits.validate()?;
    Ok(limits)
}

/// core's usage flags as Vulkan's. The bit layouts are the same by construction; this keeps only
/// the bits core defines.
pub fn map_buffer_usage(usage: BufferUsage) -> vk::BufferUsageFlags {
    let mut out = vk::BufferUsageFlags::empty();
    let pairs = [
        (
            BufferUsage::TRANSFER_SRC,
            vk::BufferUsageFlags::TRANSFER_SRC,
        ),
        (
            BufferUsage::TRANSFER_DST,
            vk::BufferUsageFlags::TRANSFER_DST,
        ),
        (BufferUsage::UNIFORM, vk::BufferUsageFlags::UNIFORM_BUFFER),
        (BufferUsage::STORAGE, vk::BufferUsageFlags::STORAGE_BUFFER),
        (BufferUsage::INDEX, vk::BufferUsageFlags::INDEX_BUFFER),
        (BufferUsage::VERTEX, vk::BufferUsageFlags::VERTEX_BUFFER),
        (BufferUsage::INDIRECT, vk::BufferUsageFlags::INDIRECT_BUFFER),
        (
            BufferUsage::DEVICE_ADDRESS,
            vk::BufferUsageFlags::SHADER_DEVICE_ADDRESS,
        ),
    ];
    for (ours, theirs) in pairs {
        if usage.contains(ours) {
            out |= theirs;
        }
    }
    out
}

/// One copy region.
pub fn map_buffer_copy(region: &BufferCopy) -> vk::BufferCopy {
    vk::BufferCopy {
        src_offset: region.src_offset,
        dst_offset: region.dst_offset,
        size: region.size,
    }
}

/// The driver's dedicated-allocation answer (`VkMemoryDedicatedRequirements`).
pub fn map_dedicated_hint(raw: &vk::MemoryDedicatedRequirements<'_>) -> DedicatedHint {
    if raw.requires_dedicated_allocation == vk::TRUE {
        DedicatedHint::Required
    } else if raw.prefers_dedicated_allocation == vk::TRUE {
        DedicatedHint::Preferred
    } else {
        DedicatedHint::None
    }
}

/// `VkMemoryRequirements` plus the dedicated answer.
pub fn map_memory_requirements(
    raw: &vk::MemoryRequirements,
    dedicated: &vk::MemoryDedicatedRequirements<'_>,
) -> MemoryRequirements {
    MemoryRequirements {
        size: raw.size,
        alignment: raw.alignment,
        memory_type_bits: raw.memory_type_bits,
        dedicated: map_dedicated_hint(dedicated),
    }
}

/// core's texel format as Vulkan's: what memkit creates an image with, and what an application's
/// image views and attachments of it name. Public as [`crate::vk_format`].
pub fn map_image_format(format: ImageFormat) -> vk::Format {
    match format {
        ImageFormat::R8Unorm => vk::Format::R8_UNORM,
        ImageFormat::R8Uint => vk::Format::R8_UINT,
        ImageFormat::Rg8Unorm => vk::Format::R8G8_UNORM,
        ImageFormat::Rgba8Unorm => vk::Format::R8G8B8A8_UNORM,
        ImageFormat::Rgba8Srgb => vk::Format::R8G8B8A8_SRGB,
        ImageFormat::Rgba8Snorm => vk::Format::R8G8B8A8_SNORM,
        ImageFormat::Rgba8Uint => vk::Format::R8G8B8A8_UINT,
        ImageFormat::Bgra8Unorm => vk::Format::B8G8R8A8_UNORM,
        ImageFormat::Bgra8Srgb => vk::Format::B8G8R8A8_SRGB,
        ImageFormat::Rgb10A2Unorm => vk::Format::A2B10G10R10_UNORM_PACK32,
        ImageFormat::Rg11B10Ufloat => vk::Format::B10G11R11_UFLOAT_PACK32,
        ImageFormat::Rgb9E5Ufloat => vk::Format::E5B9G9R9_UFLOAT_PACK32,
        ImageFormat::R16Unorm => vk::Format::R16_UNORM,
        ImageFormat::R16Uint => vk::Format::R16_UINT,
        ImageFormat::R16Float => vk::Format::R16_SFLOAT,
        ImageFormat::Rg16Unorm => vk::Format::R16G16_UNORM,
        ImageFormat::Rg16Float => vk::Format::R16G16_SFLOAT,
        ImageFormat::Rgba16Unorm => vk::Format::R16G16B16A16_UNORM,
        ImageFormat::Rgba16Float => vk::Format::R16G16B16A16_SFLOAT,
        ImageFormat::R32Uint => vk::Format::R32_UINT,
        ImageFormat::R32Float => vk::Format::R32_SFLOAT,
        ImageFormat::Rg32Uint => vk::Format::R32G32_UINT,
        ImageFormat::Rg32Float => vk::Format::R32G32_SFLOAT,
        ImageFormat::Rgba32Uint => vk::Format::R32G32B32A32_UINT,
        ImageFormat::Rgba32Float => vk::Format::R32G32B32A32_SFLOAT,
        ImageFormat::D16Unorm => vk::Format::D16_UNORM,
        ImageFormat::D32Float => vk::Format::D32_SFLOAT,
        ImageFormat::D24UnormS8Uint => vk::Format::D24_UNORM_S8_UINT,
        ImageFormat::D32FloatS8Uint => vk::Format::D32_SFLOAT_S8_UINT,
        ImageFormat::S8Uint => vk::Format::S8_UINT,
        ImageFormat::Bc1RgbUnorm => vk::Format::BC1_RGB_UNORM_BLOCK,
        ImageFormat::Bc1RgbSrgb => vk::Format::BC1_RGB_SRGB_BLOCK,
        ImageFormat::Bc1RgbaUnorm => vk::Format::BC1_RGBA_UNORM_BLOCK,
        ImageFormat::Bc1RgbaSrgb => vk::Format::BC1_RGBA_SRGB_BLOCK,
        ImageFormat::Bc2Unorm => vk::Format::BC2_UNORM_BLOCK,
        ImageFormat::Bc2Srgb => vk::Format::BC2_SRGB_BLOCK,
        ImageFormat::Bc3Unorm => vk::Format::BC3_UNORM_BLOCK,
        ImageFormat::Bc3Srgb => vk::Format::BC3_SRGB_BLOCK,
        ImageFormat::Bc4Unorm => vk::Format::BC4_UNORM_BLOCK,
        ImageFormat::Bc4Snorm => vk::Format::BC4_SNORM_BLOCK,
        ImageFormat::Bc5Unorm => vk::Format::BC5_UNORM_BLOCK,
        ImageFormat::Bc5Snorm => vk::Format::BC5_SNORM_BLOCK,
        ImageFormat::Bc6hUfloat => vk::Format::BC6H_UFLOAT_BLOCK,
        ImageFormat::Bc6hSfloat => vk::Format::BC6H_SFLOAT_BLOCK,
        ImageFormat::Bc7Unorm => vk::Format::BC7_UNORM_BLOCK,
        ImageFormat::Bc7Srgb => vk::Format::BC7_SRGB_BLOCK,
        ImageFormat::Etc2Rgb8Unorm => vk::Format::ETC2_R8G8B8_UNORM_BLOCK,
        ImageFormat::Etc2Rgb8Srgb => vk::Format::ETC2_R8G8B8_SRGB_BLOCK,
        ImageFormat::Etc2Rgb8A1Unorm => vk::Format::ETC2_R8G8B8A1_UNORM_BLOCK,
        ImageFormat::Etc2Rgb8A1Srgb => vk::Format::ETC2_R8G8B8A1_SRGB_BLOCK,
        ImageFormat::Etc2Rgba8Unorm => vk::Format::ETC2_R8G8B8A8_UNORM_BLOCK,
        ImageFormat::Etc2Rgba8Srgb => vk::Format::ETC2_R8G8B8A8_SRGB_BLOCK,
        ImageFormat::EacR11Unorm => vk::Format::EAC_R11_UNORM_BLOCK,
        ImageFormat::EacR11Snorm => vk::Format::EAC_R11_SNORM_BLOCK,
        ImageFormat::EacRg11Unorm => vk::Format::EAC_R11G11_UNORM_BLOCK,
        ImageFormat::EacRg11Snorm => vk::Format::EAC_R11G11_SNORM_BLOCK,
        ImageFormat::AstcUnorm(block) => map_astc_format(block, false),
        ImageFormat::AstcSrgb(block) => map_astc_format(block, true),
    }
}

/// An ASTC footprint as Vulkan's format. Vulkan numbers them `ASTC_4x4_UNORM_BLOCK` (157) to
/// `ASTC_12x12_SRGB_BLOCK` (184), each footprint's UNORM format followed by its SRGB one, in
/// [`AstcBlock::ALL`]'s order; the table names them rather than counting.
fn map_astc_format(block: AstcBlock, srgb: bool) -> vk::Format {
    let (unorm, srgb_format) = match block {
        AstcBlock::B4x4 => (
            vk::Format::ASTC_4X4_UNORM_BLOCK,
            vk::Format::ASTC_4X4_SRGB_BLOCK,
        ),
        AstcBlock::B5x4 => (
            vk::Format::ASTC_5X4_UNORM_BLOCK,
            vk::Format::ASTC_5X4_SRGB_BLOCK,
        ),
        AstcBlock::B5x5 => (
            vk::Format::ASTC_5X5_UNORM_BLOCK,
            vk::Format::ASTC_5X5_SRGB_BLOCK,
        ),
        AstcBlock::B6x5 => (
            vk::Format::ASTC_6X5_UNORM_BLOCK,
            vk::Format::ASTC_6X5_SRGB_BLOCK,
        ),
        AstcBlock::B6x6 => (
            vk::Format::ASTC_6X6_UNORM_BLOCK,
            vk::Format::ASTC_6X6_SRGB_BLOCK,
        ),
        AstcBlock::B8x5 => (
            vk::Format::ASTC_8X5_UNORM_BLOCK,
            vk::Format::ASTC_8X5_SRGB_BLOCK,
        ),
        AstcBlock::B8x6 => (
            vk::Format::ASTC_8X6_UNORM_BLOCK,
            vk::Format::ASTC_8X6_SRGB_BLOCK,
        ),
        AstcBlock::B8x8 => (
            vk::Format::ASTC_8X8_UNORM_BLOCK,
            vk::Format::ASTC_8X8_SRGB_BLOCK,
        ),
        AstcBlock::B10x5 => (
            vk::Format::ASTC_10X5_UNORM_BLOCK,
            vk::Format::ASTC_10X5_SRGB_BLOCK,
        ),
        AstcBlock::B10x6 => (
            vk::Format::ASTC_10X6_UNORM_BLOCK,
            vk::Format::ASTC_10X6_SRGB_BLOCK,
        ),
        AstcBlock::B10x8 => (
            vk::Format::ASTC_10X8_UNORM_BLOCK,
            vk::Format::ASTC_10X8_SRGB_BLOCK,
        ),
        AstcBlock::B10x10 => (
            vk::Format::ASTC_10X10_UNORM_BLOCK,
            vk::Format::ASTC_10X10_SRGB_BLOCK,
        ),
        AstcBlock::B12x10 => (
            vk::Format::ASTC_12X10_UNORM_BLOCK,
            vk::Format::ASTC_12X10_SRGB_BLOCK,
        ),
        AstcBlock::B12x12 => (
            vk::Format::ASTC_12X12_UNORM_BLOCK,
            vk::Format::ASTC_12X12_SRGB_BLOCK,
        ),
    };
    if srgb { srgb_format } else { unorm }
}

/// core's image usage flags as Vulkan's (the same bit layout by construction).
pub fn map_image_usage(usage: ImageUsage) -> vk::ImageUsageFlags {
    vk::ImageUsageFlags::from_raw(usage.bits())
}

/// core's image view-compatibility flags as Vulkan's creation flags (the same bit layout by
/// construction).
pub fn map_image_flags(flags: ImageFlags) -> vk::ImageCreateFlags {
    vk::ImageCreateFlags::from_raw(flags.bits())
}

/// The layout core names as Vulkan's.
pub fn map_image_layout(layout: ImageLayout) -> vk::ImageLayout {
    match layout {
        ImageLayout::ShaderReadOnlyOptimal => vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        ImageLayout::General => vk::ImageLayout::GENERAL,
    }
}

/// Every aspect an image of `format` has: colour, depth, stencil, or depth and stencil.
pub fn map_image_aspects(format: ImageFormat) -> vk::ImageAspectFlags {
    let mut aspects = vk::ImageAspectFlags::empty();
    if format.has_depth() {
        aspects |= vk::ImageAspectFlags::DEPTH;
    }
    if format.has_stencil() {
        aspects |= vk::ImageAspectFlags::STENCIL;
    }
    if aspects.is_empty() {
        vk::ImageAspectFlags::COLOR
    } else {
        aspects
    }
}

/// One buffer-image region of an image of `format`, which has one aspect (colour, depth or
/// stencil: copies of images with two are refused by their checks); its buffer layout
/// (`bufferRowLength`, `bufferImageHeight`, 0 for tightly packed) is the region's own.
pub fn map_image_copy(region: &ImageCopy, format: ImageFormat) -> vk::BufferImageCopy {
    let [x, y, z] = region.offset;
    let [width, height, depth] = region.extent;
    vk::BufferImageCopy {
        buffer_offset: region.buffer_offset,
        buffer_row_length: region.buffer_row_length,
        buffer_image_height: region.buffer_image_height,
        image_subresource: vk::ImageSubresourceLayers {
            aspect_mask: map_image_aspects(format),
            mip_level: region.mip_level,
            base_array_layer: region.base_array_layer,
            layer_count: region.layer_count,
        },
        // `ImageCopy::check` keeps offsets within a level's extent, which fits in an `i32`
        // wherever an image can be created (`maxImageDimension*` are far below 2^31); a larger
        // one saturates, and the driver's own bounds reject it.
        image_offset: vk::Offset3D {
            x: i32::try_from(x).unwrap_or(i32::MAX),
            y: i32::try_from(y).unwrap_or(i32::MAX),
            z: i32::try_from(z).unwrap_or(i32::MAX),
        },
        image_extent: vk::Extent3D {
            width,
            height,
            depth,
        },
    }
}

/// A residency priority clamped into Vulkan's `[0, 1]`; NaN becomes the default 0.5.
pub fn map_priority(priority: f32) -> f32 {
    if priority.is_nan() {
        0.5
    } else {
        priority.clamp(0.0, 1.0)
    }
}

/// The range a command writes: from its lowest destination offset to its highest end, or `None`
/// when it has no regions or the end overflows.
pub fn map_destination_span(regions: &[BufferCopy]) -> Option<(u64, u64)> {
    let start = regions.iter().map(|r| r.dst_offset).min()?;
    let mut end = 0u64;
    for r in regions {
        end = end.max(r.dst_offset.checked_add(r.size)?);
    }
    Some((start, end - start))
}

#[cfg(test)]
mod tests;
