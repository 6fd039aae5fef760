//! `VkResult`s mapped to core's [`DeviceError`], one mapper per set of results a call may return,
//! named after the results it accepts. A result outside a mapper's set is not a panic: it becomes
//! [`DeviceError::Unexpected`] with the raw code.

use core::fmt;

use ash::vk;
use memkit_core::device::DeviceError;

fn unexpected(result: vk::Result) -> DeviceError {
    DeviceError::Unexpected(result.as_raw())
}

/// For calls that may fail with `VK_ERROR_OUT_OF_HOST_MEMORY` only.
pub fn map_host_oom_err(result: vk::Result) -> DeviceError {
    match result {
        vk::Result::ERROR_OUT_OF_HOST_MEMORY => DeviceError::OutOfHostMemory,
        other => unexpected(other),
    }
}

/// For calls that may fail with `VK_ERROR_OUT_OF_HOST_MEMORY` or `VK_ERROR_OUT_OF_DEVICE_MEMORY`
/// (object creation, command buffer recording).
pub fn map_host_device_oom_err(result: vk::Result) -> DeviceError {
    match result {
        vk::Result::ERROR_OUT_OF_DEVICE_MEMORY => DeviceError::OutOfDeviceMemory,
        other => map_host_oom_err(other),
    }
}

/// For calls that may also report `VK_ERROR_DEVICE_LOST` (submission, semaphore and fence queries
/// and waits).
pub fn map_host_device_oom_and_lost_err(result: vk::Result) -> DeviceError {
    match result {
        vk::Result::ERROR_DEVICE_LOST => DeviceError::DeviceLost,
        other => map_host_device_oom_err(other),
    }
}

/// For `vkAllocateMemory`: out of host or device memory, or `VK_ERROR_TOO_MANY_OBJECTS` when
/// `maxMemoryAllocationCount` objects exist (the external-handle and capture-address results are
/// unexpected: memkit never imports memory).
pub fn map_host_device_oom_and_too_many_objects_err(result: vk::Result) -> DeviceError {
    match result {
        vk::Result::ERROR_TOO_MANY_OBJECTS => DeviceError::TooManyObjects,
        other => map_host_device_oom_err(other),
    }
}

/// For `vkMapMemory`: out of host or device memory, or `VK_ERROR_MEMORY_MAP_FAILED`.
pub fn map_host_device_oom_and_map_failed_err(result: vk::Result) -> DeviceError {
    match result {
        vk::Result::ERROR_MEMORY_MAP_FAILED => DeviceError::MapFailed,
        other => map_host_device_oom_err(other),
    }
}

/// Why a headless instance and device could not be set up.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetupError {
    /// No Vulkan loader (`libvulkan.so.1`, `vulkan-1.dll`) could be loaded.
    LoaderMissing,
    /// The loader found no physical device, or none with Vulkan 1.1 and a queue that can copy.
    NoDevice,
    /// Validation was asked for, but `VK_LAYER_KHRONOS_validation` or `VK_EXT_debug_utils` is
    /// not installed.
    ValidationMissing,
    /// [`crate::HeadlessConfig::release_to_family`] names neither a queue family of the chosen
    /// physical device nor `VK_QUEUE_FAMILY_EXTERNAL`.
    UnknownReleaseFamily(u32),
    /// A Vulkan call failed.
    Device(DeviceError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LoaderMissing => f.write_str("no Vulkan loader could be loaded"),
            Self::NoDevice => f.write_str("no Vulkan 1.1 device with a copy-capable queue"),
            Self::ValidationMissing => f.write_str(
                "validation asked for, but VK_LAYER_KHRONOS_validation or VK_EXT_debug_utils \
                 is missing",
            ),
            Self::UnknownReleaseFamily(family) => write!(
                f,
                "release to queue family {family}, which is neither a family of the device nor \
                 VK_QUEUE_FAMILY_EXTERNAL"
            ),
            Self::Device(e) => write!(f, "Vulkan call failed: {e}"),
        }
    }
}

impl core::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Device(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DeviceError> for SetupError {
    fn from(e: DeviceError) -> Self {
        Self::Device(e)
    }
}

#[cfg(test)]
mod tests;
