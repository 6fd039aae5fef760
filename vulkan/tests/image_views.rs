//! Images as an engine views them, on a real driver under validation: depth-stencil targets
//! (views of their depth and stencil aspects), and images whose views differ from them: cube
//! maps (views of type `CUBE`), images viewed in another format, and 3D images viewed as 2D
//! arrays of their slices. The engine creates its views itself; memkit's part is the creation flag that makes
//! each view valid ([`ImageFlags`]), which the validation layer checks when the view is made.
//! The last test makes the same views of images created without the flags and expects the
//! layer's messages: that is what the other tests would meet if memkit dropped a flag.

mod common;

use common::{finish_shared, headless, pattern};
use memkit_core::MemoryUsage;
use memkit_core::device::{
    DeviceError, ImageCopy, ImageDesc, ImageDescError, ImageFlags, ImageFormat, ImageUsage,
};
use memkit_std::{Coordinator, CoordinatorConfig, Image};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessDevice, SharedHeadlessDevice};

/// The colour view an engine would make of `levels` levels from `base_level` and `layers`
/// layers (or 3D slices) from `base_layer`.
fn view_info(
    image: vk::Image,
    view_type: vk::ImageViewType,
    format: vk::Format,
    (base_level, levels): (u32, u32),
    (base_layer, layers): (u32, u32),
) -> vk::ImageViewCreateInfo<'static> {
    let range = vk::ImageSubresourceRange::default()
        .aspect_mask(vk::ImageAspectFlags::COLOR)
        .base_mip_level(base_level)
        .level_count(levels)
        .base_array_layer(base_layer)
        .layer_count(layers);
    vk::ImageViewCreateInfo::default()
        .image(image)
        .view_type(view_type)
        .format(format)
        .subresource_range(range)
}

/// Makes the view and destroys it at once: creating it is where the layer checks the image's
/// flags.
fn make_view(h: &HeadlessDevice, info: &vk::ImageViewCreateInfo<'_>) {
    let device = h.ash_device();
    // SAFETY: the info names a live image of this device, bound to memory (the coordinator's),
    // and a subresource range inside it; the view is destroyed before the image.
    unsafe {
        let view = device.create_image_view(info, None).unwrap();
        device.destroy_image_view(view, None);
    }
}

/// A device and a coordinator over it.
fn coordinator() -> Option<(SharedHeadlessDevice, Coordinator<SharedHeadlessDevice>)> {
    let shared = SharedHeadlessDevice::new(headless()?);
    let c = Coordinator::new(shared.clone(), CoordinatorConfig::default()).unwrap();
    Some((shared, c))
}

/// Shuts the coordinator down and fails on any validation message.
fn close(shared: SharedHeadlessDevice, c: Coordinator<SharedHeadlessDevice>) {
    let stats = c.shutdown();
    assert_eq!(stats.leaked_images, 0);
    finish_shared(shared);
}

#[test]
fn depth_stencil_targets_get_memory_and_views_of_the_aspects_their_format_has() {
    let Some((shared, c)) = coordinator() else {
        return;
    };
    // (format, Vulkan's, its aspects)
    let depth = vk::ImageAspectFlags::DEPTH;
    let stencil = vk::ImageAspectFlags::STENCIL;
    let formats = [
        (ImageFormat::D16Unorm, vk::Format::D16_UNORM, depth),
        (ImageFormat::D32Float, vk::Format::D32_SFLOAT, depth),
        (
            ImageFormat::D24UnormS8Uint,
            vk::Format::D24_UNORM_S8_UINT,
            depth | stencil,
        ),
        (
            ImageFormat::D32FloatS8Uint,
            vk::Format::D32_SFLOAT_S8_UINT,
            depth | stencil,
        ),
        (ImageFormat::S8Uint, vk::Format::S8_UINT, stencil),
    ];
    let usage = ImageUsage::DEPTH_STENCIL_ATTACHMENT | ImageUsage::SAMPLED;
    let mut images = Vec::new();
    for (format, vk_format, aspects) in formats {
        let desc = ImageDesc::new_2d(format, 320, 180, usage).with_array_layers(2);
        let image = match c.create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS) {
            Ok(image) => image,
            // Not every driver has every depth-stencil format (AMD's lack D24S8); the one
            // refused must be refused as unsupported, and lavapipe and NVIDIA's have them all.
            Err(memkit_std::Error::Device(DeviceError::InvalidImage(
                ImageDescError::Unsupported,
            ))) => {
                eprintln!("{format:?}: not offered by this driver");
                continue;
            }
            Err(e) => panic!("{format:?}: {e}"),
        };
        // The attachment view (every aspect), and a view of each aspect alone, as a shader
        // samples depth or reads stencil. A view naming an aspect the format lacks would be
        // reported by the layer.
        let whole = |aspect_mask| {
            let mut info = view_info(
                image.raw(),
                vk::ImageViewType::TYPE_2D_ARRAY,
                vk_format,
                (0, 1),
                (0, 2),
            );
            info.subresource_range.aspect_mask = aspect_mask;
            info
        };
        make_view(&shared, &whole(aspects));
        for aspect in [depth, stencil] {
            if aspects.contains(aspect) {
                make_view(&shared, &whole(aspect));
            }
        }
        images.push(image);
    }
    assert!(
        images.len() >= 4,
        "{} of 5 depth-stencil formats",
        images.len()
    );
    drop(images);
    close(shared, c);
}

#[test]
fn a_cube_array_is_filled_face_by_face_and_each_cube_takes_a_cube_view() {
    let Some((shared, c)) = coordinator() else {
        return;
    };
    let desc = ImageDesc::new_cube(
        ImageFormat::Rgba8Unorm,
        16,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_SRC,
    )
    .with_full_mip_chain()
    .with_array_layers(12);
    let texels = pattern(desc.packed_bytes() as usize, 40);
    let (cubes, ticket) = c
        .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
        .unwrap();
    ticket.wait().unwrap();

    // Each face of each level, read back alone: its bytes are those of its layer in the
    // packed upload (level 0's twelve faces, then level 1's, ...).
    let mut level_start = 0;
    for level in 0..desc.mip_levels {
        let [w, h, _] = desc.level_extent(level);
        let face_bytes = (w * h * 4) as usize;
        for face in 0..desc.array_layers {
            let region = ImageCopy {
                base_array_layer: face,
                layer_count: 1,
                ..ImageCopy::whole_level(&desc, level, 0)
            };
            let back = c
                .read_back_image(&cubes, &[region])
                .unwrap()
                .wait()
                .unwrap();
            let at = level_start + face as usize * face_bytes;
            assert!(
                back == texels[at..at + face_bytes],
                "level {level}, face {face}: the texels read back differ"
            );
        }
        level_start += face_bytes * desc.array_layers as usize;
    }
    assert_eq!(level_start, texels.len());

    // A cube view of each cube, every level; and a 2D view of one face, which any image allows.
    for first_face in [0, 6] {
        let cube = view_info(
            cubes.raw(),
            vk::ImageViewType::CUBE,
            vk::Format::R8G8B8A8_UNORM,
            (0, vk::REMAINING_MIP_LEVELS),
            (first_face, 6),
        );
        make_view(&shared, &cube);
    }
    let face = view_info(
        cubes.raw(),
        vk::ImageViewType::TYPE_2D,
        vk::Format::R8G8B8A8_UNORM,
        (2, 1),
        (4, 1),
    );
    make_view(&shared, &face);
    drop((cubes, ticket));
    close(shared, c);
}

/// An sRGB texture the engine also views in UNORM (to write it from a compute shader, or to
/// sample it without the sRGB decode), and a 3D image whose slices it renders into.
fn mutable_and_sliced(
    c: &Coordinator<SharedHeadlessDevice>,
    flags: bool,
) -> [Image<SharedHeadlessDevice>; 2] {
    let pick = |flag| if flags { flag } else { ImageFlags::empty() };
    let srgb = ImageDesc::new_2d(
        ImageFormat::Rgba8Srgb,
        64,
        64,
        ImageUsage::SAMPLED | ImageUsage::COLOR_ATTACHMENT,
    )
    .with_flags(pick(ImageFlags::MUTABLE_FORMAT));
    let volume = ImageDesc {
        depth: 8,
        ..ImageDesc::new_2d(
            ImageFormat::Rgba8Unorm,
            32,
            32,
            ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED,
        )
    }
    .with_flags(pick(ImageFlags::ARRAY_2D_COMPATIBLE));
    [srgb, volume].map(|desc| {
        c.create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap_or_else(|e| panic!("{desc:?}: {e}"))
    })
}

/// The UNORM view of the sRGB texture, and a 2D-array view of all of the volume's slices at
/// level 0 (a render target of eight layers).
fn other_views(
    [srgb, volume]: &[Image<SharedHeadlessDevice>; 2],
) -> [vk::ImageViewCreateInfo<'static>; 2] {
    let unorm = view_info(
        srgb.raw(),
        vk::ImageViewType::TYPE_2D,
        vk::Format::R8G8B8A8_UNORM,
        (0, 1),
        (0, 1),
    );
    let slices = view_info(
        volume.raw(),
        vk::ImageViewType::TYPE_2D_ARRAY,
        vk::Format::R8G8B8A8_UNORM,
        (0, 1),
        (0, 8),
    );
    [unorm, slices]
}

#[test]
fn another_format_and_2d_slices_of_a_volume_are_views_the_flags_allow() {
    let Some((shared, c)) = coordinator() else {
        return;
    };
    let images = mutable_and_sliced(&c, true);
    for view in other_views(&images) {
        make_view(&shared, &view);
    }
    drop(images);
    close(shared, c);
}

#[test]
fn without_the_flags_the_validation_layer_reports_each_view() {
    let Some((shared, c)) = coordinator() else {
        return;
    };
    let plain_layers = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 16, 16, ImageUsage::SAMPLED)
        .with_array_layers(6);
    let layers = c
        .create_image(&plain_layers, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let cube = view_info(
        layers.raw(),
        vk::ImageViewType::CUBE,
        vk::Format::R8G8B8A8_UNORM,
        (0, 1),
        (0, 6),
    );
    let images = mutable_and_sliced(&c, false);
    let [unorm, slices] = other_views(&images);
    let log = shared.validation_log().clone();
    // Each view alone, so that each message is known to be its own.
    let reported: Vec<String> = [cube, unorm, slices]
        .iter()
        .map(|view| {
            let before = log.count();
            make_view(&shared, view);
            log.messages()[before..].join("\n")
        })
        .collect();
    drop((layers, images));
    let _ = c.shutdown();
    let Ok(h) = shared.try_unwrap() else {
        panic!("an image or the coordinator still holds the device");
    };
    let reported_count = log.count();
    assert_eq!(
        h.finish().len(),
        reported_count,
        "the views were the only misuse"
    );
    // A cube view of an image that is not cube compatible; another format without
    // `MUTABLE_FORMAT`; a 2D array of a 3D image's slices, which without
    // `ARRAY_2D_COMPATIBLE` has one layer (the layer names that range, not the flag).
    let expected = [
        "VUID-VkImageViewCreateInfo-image-01003",
        "VUID-VkImageViewCreateInfo-image-01762",
        "VUID-VkImageViewCreateInfo-",
    ];
    for (messages, vuid) in reported.iter().zip(expected) {
        assert!(messages.contains(vuid), "expected {vuid}, got: {messages}");
    }
}
