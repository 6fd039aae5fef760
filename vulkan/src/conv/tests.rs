use super::*;
use memkit_core::device::Compression;

fn lavapipe_like() -> vk::PhysicalDeviceMemoryProperties {
    let mut raw = vk::PhysicalDeviceMemoryProperties {
        memory_type_count: 1,
        memory_heap_count: 1,
        ..Default::default()
    };
    raw.memory_types[0] = vk::MemoryType {
        property_flags: vk::MemoryPropertyFlags::DEVICE_LOCAL
            | vk::MemoryPropertyFlags::HOST_VISIBLE
            | vk::MemoryPropertyFlags::HOST_COHERENT
            | vk::MemoryPropertyFlags::HOST_CACHED,
        heap_index: 0,
    };
    raw.memory_heaps[0] = vk::MemoryHeap {
        size: 8 << 30,
        flags: vk::MemoryHeapFlags::DEVICE_LOCAL,
    };
    raw
}

#[test]
fn memory_properties_keep_types_heaps_and_unknown_bits() {
    let mut raw = lavapipe_like();
    raw.memory_type_count = 2;
    raw.memory_types[1] = vk::MemoryType {
        // AMD's DEVICE_COHERENT bit, unknown to core.
        property_flags: vk::MemoryPropertyFlags::from_raw(0x40),
        heap_index: 0,
    };
    let props = map_memory_properties(&raw).unwrap();
    assert_eq!(props.types().len(), 2);
    assert_eq!(props.heaps().len(), 1);
    assert_eq!(props.heaps()[0].size, 8 << 30);
    assert_eq!(props.heaps()[0].flags, MemoryHeapFlags::DEVICE_LOCAL);
    assert_eq!(
        props.types()[0].properties,
        MemoryPropertyFlags::DEVICE_LOCAL
            | MemoryPropertyFlags::HOST_VISIBLE
            | MemoryPropertyFlags::HOST_COHERENT
            | MemoryPropertyFlags::HOST_CACHED
    );
    assert_eq!(props.types()[1].properties.bits(), 0x40);
}

#[test]
fn bad_descriptions_are_errors() {
    let mut raw = lavapipe_like();
    raw.memory_types[0].heap_index = 3;
    assert_eq!(
        map_memory_properties(&raw),
        Err(DescriptionError::BadHeapIndex)
    );
    let mut raw = lavapipe_like();
    raw.memory_type_count = 33;
    assert_eq!(map_memory_properties(&raw), Err(DescriptionError::BadCount));
    let mut raw = lavapipe_like();
    raw.memory_heap_count = 0;
    assert_eq!(map_memory_properties(&raw), Err(DescriptionError::BadCount));
}

#[test]
fn limits_are_copied_and_checked() {
    let raw = vk::PhysicalDeviceLimits {
        max_memory_allocation_count: 4096,
        buffer_image_granularity: 1024,
        non_coherent_atom_size: 64,
        min_memory_map_alignment: 64,
        min_uniform_buffer_offset_alignment: 64,
        min_storage_buffer_offset_alignment: 256,
        min_texel_buffer_offset_alignment: 32,
        ..Default::default()
    };
    let limits = map_limits(&raw, 1 << 31).unwrap();
    assert_eq!(limits.max_memory_allocation_count, 4096);
    assert_eq!(limits.max_memory_allocation_size, 1 << 31);
    assert_eq!(limits.buffer_image_granularity, 1024);
    assert_eq!(limits.non_coherent_atom_size, 64);
    assert_eq!(limits.min_memory_map_alignment, 64);
    // The largest of the uniform, storage and texel buffer offset alignments.
    assert_eq!(limits.min_buffer_offset_alignment, 256);
    let bad = vk::PhysicalDeviceLimits {
        non_coherent_atom_size: 48,
        ..raw
    };
    assert_eq!(
        map_limits(&bad, 1 << 31),
        Err(DescriptionError::LimitNotPowerOfTwo)
    );
}

#[test]
fn usage_bits_match_vulkan() {
    for flag in BufferUsage::all().iter() {
        assert_eq!(map_buffer_usage(flag).as_raw(), flag.bits(), "{flag:?}");
    }
    assert_eq!(
        map_buffer_usage(BufferUsage::TRANSFER_DST | BufferUsage::VERTEX),
        vk::BufferUsageFlags::TRANSFER_DST | vk::BufferUsageFlags::VERTEX_BUFFER
    );
}

#[test]
fn depth_and_stencil_formats_are_vulkans() {
    // VkFormat numbers from the specification.
    for (format, number) in [
        (ImageFormat::D16Unorm, 124),
        (ImageFormat::D32Float, 126),
        (ImageFormat::S8Uint, 127),
        (ImageFormat::D24UnormS8Uint, 129),
        (ImageFormat::D32FloatS8Uint, 130),
    ] {
        assert_eq!(map_image_format(format).as_raw(), number, "{format:?}");
    }
}

#[test]
fn image_flags_are_vulkans_creation_flags() {
    for (flag, vulkan) in [
        (
            ImageFlags::MUTABLE_FORMAT,
            vk::ImageCreateFlags::MUTABLE_FORMAT,
        ),
        (
            ImageFlags::CUBE_COMPATIBLE,
            vk::ImageCreateFlags::CUBE_COMPATIBLE,
        ),
        (
            ImageFlags::ARRAY_2D_COMPATIBLE,
            vk::ImageCreateFlags::TYPE_2D_ARRAY_COMPATIBLE,
        ),
    ] {
        assert_eq!(map_image_flags(flag), vulkan, "{flag:?}");
    }
    assert_eq!(ImageFlags::all().iter().count(), 3);
}

#[test]
fn image_usage_bits_and_formats_match_vulkan() {
    for flag in ImageUsage::all().iter() {
        assert_eq!(map_image_usage(flag).as_raw(), flag.bits(), "{flag:?}");
    }
    assert_eq!(
        map_image_usage(ImageUsage::SAMPLED | ImageUsage::DEPTH_STENCIL_ATTACHMENT),
        vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT
    );
    assert_eq!(
        map_image_format(ImageFormat::Bgra8Srgb),
        vk::Format::B8G8R8A8_SRGB
    );
    assert_eq!(
        map_image_format(ImageFormat::D32Float),
        vk::Format::D32_SFLOAT
    );
    assert_eq!(
        map_image_format(ImageFormat::Rgba16Float),
        vk::Format::R16G16B16A16_SFLOAT
    );
    assert_eq!(
        map_image_format(ImageFormat::Bc1RgbaSrgb),
        vk::Format::BC1_RGBA_SRGB_BLOCK
    );
    assert_eq!(
        map_image_format(ImageFormat::Bc6hUfloat),
        vk::Format::BC6H_UFLOAT_BLOCK
    );
    assert_eq!(
        map_image_format(ImageFormat::Bc7Unorm),
        vk::Format::BC7_UNORM_BLOCK
    );
}

/// Every format against the number the Vulkan specification gives it (`VkFormat`): the
/// uncompressed ones by name, BC from 131, ETC2 / EAC from 147 and ASTC from 157 in the
/// specification's order, each footprint's UNORM format followed by its SRGB one in
/// `AstcBlock::ALL`'s order.
#[test]
fn formats_match_vulkan_numbers() {
    use ImageFormat as F;
    let uncompressed = [
        (F::R8Unorm, 9),
        (F::R8Uint, 13),
        (F::Rg8Unorm, 16),
        (F::Rgba8Unorm, 37),
        (F::Rgba8Snorm, 38),
        (F::Rgba8Uint, 41),
        (F::Rgba8Srgb, 43),
        (F::Bgra8Unorm, 44),
        (F::Bgra8Srgb, 50),
        (F::Rgb10A2Unorm, 64),
        (F::R16Unorm, 70),
        (F::R16Uint, 74),
        (F::R16Float, 76),
        (F::Rg16Unorm, 77),
        (F::Rg16Float, 83),
        (F::Rgba16Unorm, 91),
        (F::Rgba16Float, 97),
        (F::R32Uint, 98),
        (F::R32Float, 100),
        (F::Rg32Uint, 101),
        (F::Rg32Float, 103),
        (F::Rgba32Uint, 107),
        (F::Rgba32Float, 109),
        (F::Rg11B10Ufloat, 122),
        (F::Rgb9E5Ufloat, 123),
    ];
    for (format, number) in uncompressed {
        assert_eq!(map_image_format(format).as_raw(), number, "{format:?}");
        assert_eq!(format.compression(), None, "{format:?}");
    }
    let bc = [
        F::Bc1RgbUnorm,
        F::Bc1RgbSrgb,
        F::Bc1RgbaUnorm,
        F::Bc1RgbaSrgb,
        F::Bc2Unorm,
        F::Bc2Srgb,
        F::Bc3Unorm,
        F::Bc3Srgb,
        F::Bc4Unorm,
        F::Bc4Snorm,
        F::Bc5Unorm,
        F::Bc5Snorm,
        F::Bc6hUfloat,
        F::Bc6hSfloat,
        F::Bc7Unorm,
        F::Bc7Srgb,
    ];
    let etc2 = [
        F::Etc2Rgb8Unorm,
        F::Etc2Rgb8Srgb,
        F::Etc2Rgb8A1Unorm,
        F::Etc2Rgb8A1Srgb,
        F::Etc2Rgba8Unorm,
        F::Etc2Rgba8Srgb,
        F::EacR11Unorm,
        F::EacR11Snorm,
        F::EacRg11Unorm,
        F::EacRg11Snorm,
    ];
    for (first, family, formats) in [
        (131, Compression::Bc, &bc[..]),
        (147, Compression::Etc2, &etc2[..]),
    ] {
        for (i, &format) in formats.iter().enumerate() {
            assert_eq!(
                map_image_format(format).as_raw(),
                first + i as i32,
                "{format:?}"
            );
            assert_eq!(format.compression(), Some(family), "{format:?}");
        }
    }
    for (i, block) in AstcBlock::ALL.into_iter().enumerate() {
        let unorm = 157 + 2 * i as i32;
        assert_eq!(
            map_image_format(ImageFormat::AstcUnorm(block)).as_raw(),
            unorm,
            "{block:?}"
        );
        assert_eq!(
            map_image_format(ImageFormat::AstcSrgb(block)).as_raw(),
            unorm + 1,
            "{block:?}"
        );
    }
    assert_eq!(
        map_image_format(ImageFormat::AstcSrgb(AstcBlock::B12x12)),
        vk::Format::ASTC_12X12_SRGB_BLOCK
    );
}

#[test]
fn dedicated_answers() {
    let mut d = vk::MemoryDedicatedRequirements::default();
    assert_eq!(map_dedicated_hint(&d), DedicatedHint::None);
    d.prefers_dedicated_allocation = vk::TRUE;
    assert_eq!(map_dedicated_hint(&d), DedicatedHint::Preferred);
    d.requires_dedicated_allocation = vk::TRUE;
    assert_eq!(map_dedicated_hint(&d), DedicatedHint::Required);
    let req = map_memory_requirements(
        &vk::MemoryRequirements {
            size: 100,
            alignment: 16,
            memory_type_bits: 0b101,
        },
        &d,
    );
    assert_eq!(
        req,
        MemoryRequirements {
            size: 100,
            alignment: 16,
            memory_type_bits: 0b101,
            dedicated: DedicatedHint::Required
        }
    );
}

#[test]
fn priority_is_clamped() {
    assert_eq!(map_priority(f32::NAN), 0.5);
    assert_eq!(map_priority(-1.0), 0.0);
    assert_eq!(map_priority(7.0), 1.0);
    assert_eq!(map_priority(0.25), 0.25);
}

#[test]
fn copy_regions_and_spans() {
    let regions = [
        BufferCopy {
            src_offset: 0,
            dst_offset: 512,
            size: 64,
        },
        BufferCopy {
            src_offset: 64,
            dst_offset: 128,
            size: 32,
        },
    ];
    let vk_region = map_buffer_copy(&regions[0]);
    assert_eq!(
        (vk_region.src_offset, vk_region.dst_offset, vk_region.size),
        (0, 512, 64)
    );
    assert_eq!(map_destination_span(&regions), Some((128, 448)));
    assert_eq!(map_destination_span(&[]), None);
    let overflow = [BufferCopy {
        src_offset: 0,
        dst_offset: u64::MAX,
        size: 2,
    }];
    assert_eq!(map_destination_span(&overflow), None);
}

#[test]
fn image_copy_regions_and_layouts() {
    let region = ImageCopy {
        buffer_offset: 256,
        mip_level: 2,
        base_array_layer: 1,
        layer_count: 3,
        offset: [4, 8, 0],
        extent: [5, 7, 1],
        buffer_row_length: 0,
        buffer_image_height: 0,
    };
    let raw = map_image_copy(&region, ImageFormat::Rgba8Unorm);
    assert_eq!(raw.buffer_offset, 256);
    assert_eq!((raw.buffer_row_length, raw.buffer_image_height), (0, 0));
    let padded = map_image_copy(&region.with_buffer_layout(8, 9), ImageFormat::Rgba8Unorm);
    assert_eq!(
        (padded.buffer_row_length, padded.buffer_image_height),
        (8, 9)
    );
    let sub = raw.image_subresource;
    assert_eq!(sub.aspect_mask, vk::ImageAspectFlags::COLOR);
    assert_eq!(
        (sub.mip_level, sub.base_array_layer, sub.layer_count),
        (2, 1, 3)
    );
    let (o, e) = (raw.image_offset, raw.image_extent);
    assert_eq!((o.x, o.y, o.z), (4, 8, 0));
    assert_eq!((e.width, e.height, e.depth), (5, 7, 1));
    let far = ImageCopy {
        offset: [u32::MAX, 0, 0],
        ..region
    };
    assert_eq!(
        map_image_copy(&far, ImageFormat::Rgba8Unorm).image_offset.x,
        i32::MAX
    );
    // A depth or stencil image's copies name its one aspect.
    for (format, aspect) in [
        (ImageFormat::D16Unorm, vk::ImageAspectFlags::DEPTH),
        (ImageFormat::D32Float, vk::ImageAspectFlags::DEPTH),
        (ImageFormat::S8Uint, vk::ImageAspectFlags::STENCIL),
    ] {
        let sub = map_image_copy(&region, format).image_subresource;
        assert_eq!(sub.aspect_mask, aspect, "{format:?}");
    }
    assert_eq!(
        map_image_layout(ImageLayout::ShaderReadOnlyOptimal),
        vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL
    );
    assert_eq!(
        map_image_layout(ImageLayout::General),
        vk::ImageLayout::GENERAL
    );
}
