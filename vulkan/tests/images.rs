//! Images on a real driver, under validation: created from core's descriptions, given memory by
//! the pools (sub-allocated beside linear buffers, or dedicated to the image), bound, destroyed.

mod common;

use common::{Pools, finish, headless, tlsf_pools};
use memkit_core::device::{
    AstcBlock, BufferDevice, BufferUsage, Compression, DedicatedHint, DedicatedTo, DeviceError,
    ImageDesc, ImageDescError, ImageDevice, ImageFormat, ImageUsage, MemoryDevice,
    MemoryRequirements,
};
use memkit_core::pool::{AllocationRequest, DeviceAllocation, PoolConfig};
use memkit_core::{MemoryUsage, ResourceKind};
use memkit_vulkan::VulkanDevice;
use memkit_vulkan::ash::vk;

fn pools(device: &VulkanDevice) -> Pools<'_> {
    tlsf_pools(device, PoolConfig::default(), 8)
}

/// Memory for a resource of `kind`: dedicated to `image` when its driver requires it or the test
/// asks, sub-allocated otherwise.
fn allocate(
    pools: &mut Pools<'_>,
    requirements: MemoryRequirements,
    kind: ResourceKind,
    dedicated_image: Option<vk::Image>,
) -> DeviceAllocation<vk::DeviceMemory> {
    let request =
        AllocationRequest::new(requirements, MemoryUsage::FAST_DEVICE_ACCESS).with_kind(kind);
    match dedicated_image {
        // SAFETY: the image was just created and is not bound.
        Some(image) => unsafe {
            pools.allocate_dedicated_to(&request.with_dedicated(), DedicatedTo::Image(image))
        },
        None => pools.allocate(&request),
    }
    .unwrap()
}

/// The `bufferImageGranularity` pages an allocation touches.
fn pages(a: &DeviceAllocation<vk::DeviceMemory>, granularity: u64) -> (u64, u64) {
    (
        a.offset() / granularity,
        (a.offset() + a.size() - 1) / granularity,
    )
}

#[test]
fn images_get_pool_memory_beside_buffers_and_dedicated_objects() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let granularity = device.limits().buffer_image_granularity;
    let mut pools = pools(device);
    let descs = [
        ImageDesc::new_2d(
            ImageFormat::Rgba8Srgb,
            256,
            256,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
        )
        .with_full_mip_chain(),
        ImageDesc::new_2d(
            ImageFormat::D32Float,
            320,
            240,
            ImageUsage::DEPTH_STENCIL_ATTACHMENT | ImageUsage::SAMPLED,
        ),
        ImageDesc {
            depth: 16,
            ..ImageDesc::new_2d(ImageFormat::R8Unorm, 16, 16, ImageUsage::STORAGE)
        },
        ImageDesc::new_2d(
            ImageFormat::Rgba16Float,
            64,
            64,
            ImageUsage::COLOR_ATTACHMENT,
        )
        .with_array_layers(6),
    ];
    // Images and linear buffers interleaved, all device-local: granularity matters between them.
    let mut images = Vec::new();
    let mut buffers = Vec::new();
    for desc in &descs {
        let (image, req) = device.create_image(desc).unwrap();
        assert!(req.size >= desc.packed_bytes(), "{desc:?}: {req:?}");
        let dedicated = (req.dedicated == DedicatedHint::Required).then_some(image);
        let memory = allocate(&mut pools, req, ResourceKind::Optimal, dedicated);
        // SAFETY: memory of an allowed type, aligned, dedicated when required.
        unsafe { device.bind_image_memory(image, memory.memory(), memory.offset()) }.unwrap();
        images.push((image, memory));
        let (buffer, req) = device
            .create_buffer(1000, BufferUsage::TRANSFER_DST | BufferUsage::STORAGE)
            .unwrap();
        let memory = allocate(&mut pools, req, ResourceKind::Linear, None);
        // SAFETY: as above.
        unsafe { device.bind_buffer_memory(buffer, memory.memory(), memory.offset()) }.unwrap();
        buffers.push((buffer, memory));
    }
    // A render target dedicated because the application asks (as for one it will resize often).
    let target = ImageDesc::new_2d(
        ImageFormat::Bgra8Unorm,
        640,
        480,
        ImageUsage::COLOR_ATTACHMENT | ImageUsage::TRANSFER_SRC,
    );
    let (image, req) = device.create_image(&target).unwrap();
    let memory = allocate(&mut pools, req, ResourceKind::Optimal, Some(image));
    assert!(memory.is_dedicated());
    assert_eq!((memory.offset(), memory.size()), (0, req.size));
    // SAFETY: its own object, at offset 0.
    unsafe { device.bind_image_memory(image, memory.memory(), 0) }.unwrap();
    images.push((image, memory));

    // Sub-allocated images share blocks with the buffers when the granularity is within the
    // pools' granule (lavapipe: 64), and get blocks of their own when it is not (NVIDIA: 1024);
    // either way they never share a granularity page.
    let shared = images
        .iter()
        .filter(|(_, m)| !m.is_dedicated())
        .filter(|(_, m)| buffers.iter().any(|(_, b)| b.memory() == m.memory()))
        .count();
    if granularity > PoolConfig::default().block_granule {
        assert_eq!(
            shared, 0,
            "granularity {granularity}: separate blocks expected"
        );
    } else {
        assert!(shared >= 2, "images and buffers should share blocks");
    }
    for (_, image) in &images {
        for (_, buffer) in &buffers {
            if image.memory() != buffer.memory() {
                continue;
            }
            let (i0, i1) = pages(image, granularity);
            let (b0, b1) = pages(buffer, granularity);
            assert!(i1 < b0 || b1 < i0, "{image:?} and {buffer:?} share a page");
        }
    }
    let stats = pools.total_stats();
    assert_eq!(stats.live_allocations(), 9);
    let dedicated = images.iter().filter(|(_, m)| m.is_dedicated()).count();
    assert_eq!(stats.dedicated_objects as usize, dedicated);

    for (image, memory) in images {
        // SAFETY: never used by the GPU.
        unsafe {
            device.destroy_image(image);
            pools.free(memory).unwrap();
        }
    }
    for (buffer, memory) in buffers {
        // SAFETY: as above.
        unsafe {
            device.destroy_buffer(buffer);
            pools.free(memory).unwrap();
        }
    }
    // SAFETY: nothing is in flight or bound.
    let report = unsafe { pools.destroy() };
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(device.live_memory_objects(), 0);
    finish(h);
}

/// Creates the image after asking whether it would be made (`check_image_support`): the answer
/// must be creation's, so every refusal below checks the question too.
fn create_checked(
    device: &VulkanDevice,
    desc: &ImageDesc,
) -> Result<(vk::Image, MemoryRequirements), DeviceError> {
    let answer = device.check_image_support(desc);
    let made = device.create_image(desc);
    assert_eq!(
        answer,
        made.as_ref().map(|_| ()).map_err(|e| *e),
        "{desc:?}"
    );
    made
}

#[test]
fn images_the_device_cannot_make_are_typed_errors() {
    let Some(h) = headless() else { return };
    let device = h.device();
    // SAFETY: the physical device belongs to the instance.
    let limits = unsafe {
        h.instance()
            .get_physical_device_properties(device.physical_device())
    }
    .limits;
    let too_wide = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        limits.max_image_dimension2_d + 1,
        1,
        ImageUsage::SAMPLED,
    );
    let unsupported = Err(DeviceError::InvalidImage(ImageDescError::Unsupported));
    assert_eq!(create_checked(device, &too_wide), unsupported);
    // Attachments are bounded by the framebuffer limits (VUID-VkImageCreateInfo-usage-00964 and
    // -00965), checked before the format query, which does not know them.
    let beyond_framebuffer = Err(DeviceError::InvalidImage(
        ImageDescError::AttachmentBeyondFramebuffer {
            max_width: limits.max_framebuffer_width,
            max_height: limits.max_framebuffer_height,
        },
    ));
    let wide_target = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        limits.max_framebuffer_width + 1,
        1,
        ImageUsage::COLOR_ATTACHMENT,
    );
    assert_eq!(create_checked(device, &wide_target), beyond_framebuffer);
    let tall_depth = ImageDesc::new_2d(
        ImageFormat::D32Float,
        1,
        limits.max_framebuffer_height + 1,
        ImageUsage::DEPTH_STENCIL_ATTACHMENT | ImageUsage::SAMPLED,
    );
    assert_eq!(create_checked(device, &tall_depth), beyond_framebuffer);
    let wide_input = ImageDesc {
        usage: ImageUsage::INPUT_ATTACHMENT | ImageUsage::SAMPLED,
        ..wide_target
    };
    assert_eq!(create_checked(device, &wide_input), beyond_framebuffer);
    // Within every extent and layer limit, but larger in all than the format's
    // `maxResourceSize` (lavapipe: 4 GiB less a byte, so 16384 x 16384 texels of 16 bytes).
    let vk_format = vk::Format::R32G32B32A32_SFLOAT;
    // SAFETY: as above; valid enums and flags.
    let format_limits = unsafe {
        h.instance().get_physical_device_image_format_properties(
            device.physical_device(),
            vk_format,
            vk::ImageType::TYPE_2D,
            vk::ImageTiling::OPTIMAL,
            vk::ImageUsageFlags::SAMPLED,
            vk::ImageCreateFlags::empty(),
        )
    }
    .unwrap();
    let side = format_limits.max_extent.width.min(16384);
    let layer_bytes = u64::from(side) * u64::from(side) * 16;
    let layers = format_limits.max_resource_size / layer_bytes + 1;
    if layers <= u64::from(format_limits.max_array_layers) {
        let too_big = ImageDesc::new_2d(ImageFormat::Rgba32Float, side, side, ImageUsage::SAMPLED)
            .with_array_layers(layers as u32);
        assert_eq!(create_checked(device, &too_big), unsupported, "{too_big:?}");
    }
    // At the limit the driver makes it, without a validation message.
    let edge = ImageDesc::new_2d(
        ImageFormat::R8Unorm,
        limits
            .max_framebuffer_width
            .min(limits.max_image_dimension2_d),
        1,
        ImageUsage::COLOR_ATTACHMENT,
    );
    let (image, _) = create_checked(device, &edge).unwrap();
    // SAFETY: never bound or used.
    unsafe { device.destroy_image(image) };
    let many_samples = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        64,
        64,
        ImageUsage::COLOR_ATTACHMENT,
    )
    .with_samples(64);
    assert_eq!(create_checked(device, &many_samples), unsupported);
    let storage_msaa =
        ImageDesc::new_2d(ImageFormat::R32Float, 64, 64, ImageUsage::STORAGE).with_samples(4);
    assert_eq!(create_checked(device, &storage_msaa), unsupported);
    let empty = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 0, 64, ImageUsage::SAMPLED);
    assert_eq!(
        create_checked(device, &empty),
        Err(DeviceError::InvalidImage(ImageDescError::ZeroExtent))
    );
    // A supported multisampled target is made, with its requirements.
    let msaa = ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        64,
        64,
        ImageUsage::COLOR_ATTACHMENT,
    )
    .with_samples(4);
    let (image, req) = create_checked(device, &msaa).unwrap();
    assert!(req.size >= msaa.packed_bytes() && req.alignment.is_power_of_two());
    // SAFETY: never bound or used.
    unsafe { device.destroy_image(image) };
    finish(h);
}

/// Compressed textures of every family: made where the driver samples the family
/// (`textureCompressionBC`, `textureCompressionETC2`, `textureCompressionASTC_LDR`) or at least
/// lists the format, refused with a typed error and nothing created where it does not, and no
/// validation message either way. lavapipe and NVIDIA's driver on the H200 sample BC only, so
/// ETC2 / EAC and ASTC take the refusal there.
#[test]
fn compressed_families_the_driver_does_not_sample_are_refused_with_a_typed_error() {
    let Some(h) = headless() else { return };
    let device = h.device();
    // SAFETY: the physical device belongs to the instance.
    let features = unsafe {
        h.instance()
            .get_physical_device_features(device.physical_device())
    };
    let formats = [
        ImageFormat::Bc1RgbaUnorm,
        ImageFormat::Bc1RgbSrgb,
        ImageFormat::Bc2Unorm,
        ImageFormat::Bc4Snorm,
        ImageFormat::Bc5Snorm,
        ImageFormat::Bc6hSfloat,
        ImageFormat::Bc7Srgb,
        ImageFormat::Etc2Rgb8Unorm,
        ImageFormat::Etc2Rgb8A1Srgb,
        ImageFormat::Etc2Rgba8Srgb,
        ImageFormat::EacR11Snorm,
        ImageFormat::EacRg11Unorm,
        ImageFormat::EacRg11Snorm,
        ImageFormat::AstcUnorm(AstcBlock::B4x4),
        ImageFormat::AstcSrgb(AstcBlock::B6x6),
        ImageFormat::AstcUnorm(AstcBlock::B12x12),
    ];
    let (mut made, mut refused) = (0, 0);
    for format in formats {
        let desc = ImageDesc::new_2d(
            format,
            120,
            60,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
        )
        .with_full_mip_chain();
        let sampled = match format.compression().expect("compressed") {
            Compression::Bc => features.texture_compression_bc,
            Compression::Etc2 => features.texture_compression_etc2,
            Compression::AstcLdr => features.texture_compression_astc_ldr,
        } == vk::TRUE;
        // SAFETY: as above; valid enums and flags.
        let listed = unsafe {
            h.instance().get_physical_device_image_format_properties(
                device.physical_device(),
                memkit_vulkan::vk_format(format),
                vk::ImageType::TYPE_2D,
                vk::ImageTiling::OPTIMAL,
                vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
                vk::ImageCreateFlags::empty(),
            )
        }
        .is_ok();
        match create_checked(device, &desc) {
            Ok((image, requirements)) => {
                assert!(
                    sampled || listed,
                    "{format:?} made, but the driver lacks it"
                );
                assert!(requirements.size >= desc.packed_bytes(), "{format:?}");
                made += 1;
                // SAFETY: never bound or used.
                unsafe { device.destroy_image(image) };
            }
            Err(e) => {
                assert!(!sampled, "{format:?}: the driver samples it, yet {e:?}");
                assert_eq!(
                    e,
                    DeviceError::InvalidImage(ImageDescError::Unsupported),
                    "{format:?}"
                );
                refused += 1;
            }
        }
    }
    eprintln!("compressed formats: {made} made, {refused} refused");
    assert_eq!(made + refused, formats.len());
    finish(h);
}
