//! [`ImageDevice`] for [`VulkanDevice`]: optimal-tiling images, checked against the device's
//! format support before `vkCreateImage` sees them, with their dedicated-allocation answer.
//!
//! Images are created in `VK_IMAGE_LAYOUT_UNDEFINED`, with the same sharing as buffers:
//! `VK_SHARING_MODE_CONCURRENT` between [`VulkanDevice::concurrent_families`] when that list is
//! not empty (`concurrent_with_family` or copy lanes configured), exclusive otherwise. memkit
//! allocates and binds their memory. Its uploads
//! ([`ImageCopyQueue`](memkit_core::device::ImageCopyQueue)) own the layout transitions they
//! name: from the undefined layout (or the layout after upload) to the transfer layout and on to
//! [`ImageDesc::layout_after_upload`]. Every other layout transition, and any queue family
//! ownership transfer of an exclusive image, is the application's.

use ash::vk;
use memkit_core::device::{
    DeviceError, ImageDesc, ImageDescError, ImageDevice, ImageUsage, MemoryRequirements,
};

use crate::conv::{map_image_flags, map_image_format, map_image_usage, map_memory_requirements};
use crate::device::VulkanDevice;
use crate::error::map_host_device_oom_err;

impl VulkanDevice {
    /// Whether the device supports `desc` (format, usage, flags, extent, levels, layers, samples,
    /// total size), as `vkGetPhysicalDeviceImageFormatProperties` reports it, and an attachment's extent within
    /// the framebuffer limits, which that query does not cover (VUID-VkImageCreateInfo-usage-00964
    /// and -00965). Creating an image outside either is undefined behaviour, so
    /// [`ImageDevice::create_image`] asks first.
    fn query_image_support(&self, desc: &ImageDesc) -> Result<(), DeviceError> {
        let (max_width, max_height) = self.max_framebuffer_extent;
        desc.check_framebuffer_extent(max_width, max_height)
            .map_err(DeviceError::InvalidImage)?;
        let unsupported = DeviceError::InvalidImage(ImageDescError::Unsupported);
        // Multisampled storage images need `shaderStorageImageMultisample`, which memkit does
        // not track among the enabled features.
        if desc.samples > 1 && desc.usage.contains(ImageUsage::STORAGE) {
            return Err(unsupported);
        }
        // SAFETY: the physical device belongs to the instance (`VulkanDevice::new`'s contract);
        // every argument is a valid enum value or flag combination.
        let properties = unsafe {
            self.instance.get_physical_device_image_format_properties(
                self.physical_device,
                map_image_format(desc.format),
                image_type(desc),
                vk::ImageTiling::OPTIMAL,
                map_image_usage(desc.usage),
                map_image_flags(desc.flags),
            )
        };
        let properties = match properties {
            Ok(p) => p,
            Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED) => return Err(unsupported),
            Err(e) => return Err(map_host_device_oom_err(e)),
        };
        // `maxResourceSize` bounds the image's total size, which Vulkan gives no formula for:
        // core's estimate is the validation layer's (above it the layer warns and drivers may
        // fail), the one memkit-dummy applies too.
        let within_resource_size = desc
            .check_resource_size(
                properties.max_resource_size,
                self.limits.buffer_image_granularity,
            )
            .is_ok();
        let max = properties.max_extent;
        let fits = within_resource_size
            && desc.width <= max.width
            && desc.height <= max.height
            && desc.depth <= max.depth
            && desc.mip_levels <= properties.max_mip_levels
            && desc.array_layers <= properties.max_array_layers
            && properties
                .sample_counts
                .contains(vk::SampleCountFlags::from_raw(desc.samples));
        if fits { Ok(()) } else { Err(unsupported) }
    }
}

/// 3D when the image has depth, 2D otherwise.
fn image_type(desc: &ImageDesc) -> vk::ImageType {
    if desc.depth > 1 {
        vk::ImageType::TYPE_3D
    } else {
        vk::ImageType::TYPE_2D
    }
}

impl ImageDevice for VulkanDevice {
    fn create_image(
        &self,
        desc: &ImageDesc,
    ) -> Result<(Self::Image, MemoryRequirements), DeviceError> {
        self.check_image_support(desc)?;
        let info = vk::ImageCreateInfo::default()
            .flags(map_image_flags(desc.flags))
            .image_type(image_type(desc))
            .format(map_image_format(desc.format))
            .extent(vk::Extent3D {
                width: desc.width,
                height: desc.height,
                depth: desc.depth,
            })
            .mip_levels(desc.mip_levels)
            .array_layers(desc.array_layers)
            .samples(vk::SampleCountFlags::from_raw(desc.samples))
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(map_image_usage(desc.usage))
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED);
        let families = self.concurrent_families();
        let info = if families.is_empty() {
            info
        } else {
            // Usable from memkit's queues and the application's family without ownership
            // transfers, as buffers are.
            info.sharing_mode(vk::SharingMode::CONCURRENT)
                .queue_family_indices(families)
        };
        // SAFETY: the description passed `validate`, the framebuffer limits and the device's
        // own format query above, which together cover the valid-usage rules of
        // `VkImageCreateInfo` for these fields; concurrent families are two or more distinct
        // families of the device (`VulkanDevice::new` checked them or was promised them).
        let image =
            unsafe { self.raw.create_image(&info, None) }.map_err(map_host_device_oom_err)?;
        let mut dedicated = vk::MemoryDedicatedRequirements::default();
        let mut requirements = vk::MemoryRequirements2::default().push_next(&mut dedicated);
        let query = vk::ImageMemoryRequirementsInfo2::default().image(image);
        // SAFETY: the image was just created on this device; Vulkan 1.1 is checked in `new`.
        unsafe {
            self.raw
                .get_image_memory_requirements2(&query, &mut requirements)
        };
        let raw = requirements.memory_requirements;
        Ok((image, map_memory_requirements(&raw, &dedicated)))
    }

    fn check_image_support(&self, desc: &ImageDesc) -> Result<(), DeviceError> {
        self.check_lost()?;
        desc.validate().map_err(DeviceError::InvalidImage)?;
        self.query_image_support(desc)
    }

    unsafe fn bind_image_memory(
        &self,
        image: Self::Image,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        // SAFETY: alive, unbound, offset aligned and in range, dedicated when required (caller's
        // contract).
        unsafe { self.raw.bind_image_memory(image, memory, offset) }
            .map_err(map_host_device_oom_err)
    }

    unsafe fn destroy_image(&self, image: Self::Image) {
        // SAFETY: alive, from this device, unused by the GPU (caller's contract).
        unsafe { self.raw.destroy_image(image, None) };
    }
}
