//! What a physical device offers memkit, as plain data: memory types, heaps with budgets, the
//! limits memkit respects, queue families and the relevant extensions. `memkit probe --device
//! vulkan` prints it.

use core::fmt;
use std::ffi::CStr;

use ash::vk;
use memkit_core::device::{
    DeviceError, DeviceLimits, HeapBudget, MemoryHeapFlags, MemoryPropertyFlags, MemoryType,
};

use crate::conv::{map_limits, map_memory_properties};
use crate::device::VulkanDevice;
use crate::error::map_host_device_oom_err;

/// One heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeHeap {
    /// Bytes.
    pub size: u64,
    /// Flags.
    pub flags: MemoryHeapFlags,
    /// Budget and usage from `VK_EXT_memory_budget`, when the device supports it.
    pub budget: Option<HeapBudget>,
}

/// One queue family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeQueueFamily {
    /// Its index.
    pub index: u32,
    /// Raw `VkQueueFlags`.
    pub flags: u32,
    /// Queues in it.
    pub queue_count: u32,
    /// Graphics.
    pub graphics: bool,
    /// Compute.
    pub compute: bool,
    /// Transfer (graphics and compute families always can, whether or not they say so).
    pub transfer: bool,
    /// Valid bits of timestamps (0: no timestamps).
    pub timestamp_valid_bits: u32,
}

/// What a device offers memkit.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeReport {
    /// `deviceName`.
    pub device_name: String,
    /// `discrete`, `integrated`, `virtual`, `cpu` or `other`.
    pub device_type: &'static str,
    /// `apiVersion` as (major, minor, patch).
    pub api_version: (u32, u32, u32),
    /// `driverVersion`, raw (its encoding is the vendor's).
    pub driver_version: u32,
    /// `vendorID`.
    pub vendor_id: u32,
    /// `deviceID`.
    pub device_id: u32,
    /// Memory types, by index.
    pub memory_types: Vec<MemoryType>,
    /// Heaps, by index.
    pub memory_heaps: Vec<ProbeHeap>,
    /// Limits memkit respects.
    pub limits: DeviceLimits,
    /// Queue families, by index.
    pub queue_families: Vec<ProbeQueueFamily>,
    /// The family memkit would copy on, and whether it is transfer-only.
    pub transfer_family: Option<(u32, bool)>,
    /// `VK_EXT_memory_budget` is supported.
    pub memory_budget: bool,
    /// `VK_EXT_memory_priority` is supported.
    pub memory_priority: bool,
    /// The `timelineSemaphore` feature is supported (Vulkan 1.2).
    pub timeline_semaphore: bool,
}

fn device_type_name(t: vk::PhysicalDeviceType) -> &'static str {
    match t {
        vk::PhysicalDeviceType::DISCRETE_GPU => "discrete",
        vk::PhysicalDeviceType::INTEGRATED_GPU => "integrated",
        vk::PhysicalDeviceType::VIRTUAL_GPU => "virtual",
        vk::PhysicalDeviceType::CPU => "cpu",
        _ => "other",
    }
}

fn supports(list: &[vk::ExtensionProperties], name: &CStr) -> bool {
    list.iter()
        .any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
}

/// Probes `physical_device`. Needs no `VkDevice`: budgets are read when the physical device
/// supports `VK_EXT_memory_budget` (physical-device-level functionality of a supported extension
/// may be used without a device).
///
/// # Safety
/// - `physical_device` belongs to `instance`, whose API version is at least 1.1.
pub unsafe fn probe(
    instance: &ash::Instance,
    physical_device: vk::PhysicalDevice,
) -> Result<ProbeReport, DeviceError> {
    // SAFETY: (for every call below) the physical device belongs to the instance, Vulkan 1.1.
    let extensions = unsafe { instance.enumerate_device_extension_properties(physical_device) }
        .map_err(map_host_device_oom_err)?;
    let memory_budget = supports(&extensions, ash::ext::memory_budget::NAME);
    let memory_priority = supports(&extensions, ash::ext::memory_priority::NAME);

    let mut maintenance3 = vk::PhysicalDeviceMaintenance3Properties::default();
    let mut properties2 = vk::PhysicalDeviceProperties2::default().push_next(&mut maintenance3);
    // SAFETY: see above.
    unsafe { instance.get_physical_device_properties2(physical_device, &mut properties2) };
    let props = properties2.properties;
    let limits = map_limits(&props.limits, maintenance3.max_memory_allocation_size)
        .map_err(DeviceError::InvalidDescription)?;

    let mut timeline12 = vk::PhysicalDeviceTimelineSemaphoreFeatures::default();
    let mut features2 = vk::PhysicalDeviceFeatures2::default();
    if props.api_version >= vk::API_VERSION_1_2 {
        features2 = features2.push_next(&mut timeline12);
    }
    // SAFETY: see above; the chained structure is core in the device's version.
    unsafe { instance.get_physical_device_features2(physical_device, &mut features2) };
    let timeline_semaphore = timeline12.timeline_semaphore == vk::TRUE;

    let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
    let mut memory2 = vk::PhysicalDeviceMemoryProperties2::default();
    if memory_budget {
        memory2 = memory2.push_next(&mut budget);
    }
    // SAFETY: see above; the budget structure is chained only when supported.
    unsafe { instance.get_physical_device_memory_properties2(physical_device, &mut memory2) };
    let raw_memory = memory2.memory_properties;
    let memory = map_memory_properties(&raw_memory).map_err(DeviceError::InvalidDescription)?;
    let memory_heaps = memory
        .heaps()
        .iter()
        .enumerate()
        .map(|(i, h)| ProbeHeap {
            size: h.size,
            flags: h.flags,
            budget: memory_budget.then(|| HeapBudget {
                budget: budget.heap_budget[i],
                usage: budget.heap_usage[i],
            }),
        })
        .collect();

    // SAFETY: see above.
    let families = unsafe { instance.get_physical_device_queue_family_properties(physical_device) };
    let queue_families = families
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let graphics = f.queue_flags.contains(vk::QueueFlags::GRAPHICS);
            let compute = f.queue_flags.contains(vk::QueueFlags::COMPUTE);
            ProbeQueueFamily {
                index: i as u32,
                flags: f.queue_flags.as_raw(),
                queue_count: f.queue_count,
                graphics,
                compute,
                transfer: graphics || compute || f.queue_flags.contains(vk::QueueFlags::TRANSFER),
                timestamp_valid_bits: f.timestamp_valid_bits,
            }
        })
        .collect();
    // SAFETY: see above.
    let transfer_family =
        unsafe { crate::queue::find_transfer_queue_family(instance, physical_device) }
            .map(|t| (t.family, t.dedicated));

    Ok(ProbeReport {
        device_name: props
            .device_name_as_c_str()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        device_type: device_type_name(props.device_type),
        api_version: (
            vk::api_version_major(props.api_version),
            vk::api_version_minor(props.api_version),
            vk::api_version_patch(props.api_version),
        ),
        driver_version: props.driver_version,
        vendor_id: props.vendor_id,
        device_id: props.device_id,
        memory_types: memory.types().to_vec(),
        memory_heaps,
        limits,
        queue_families,
        transfer_family,
        memory_budget,
        memory_priority,
        timeline_semaphore,
    })
}

impl VulkanDevice {
    /// Probes this device's physical device.
    pub fn probe(&self) -> Result<ProbeReport, DeviceError> {
        // SAFETY: the physical device belongs to the instance, at Vulkan 1.1 or above (checked
        // in `new`).
        unsafe { probe(&self.instance, self.physical_device) }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor, patch) = self.api_version;
        writeln!(
            f,
            "device: {} ({}, Vulkan {major}.{minor}.{patch}, vendor {:#06x}, device {:#06x})",
            self.device_name, self.device_type, self.vendor_id, self.device_id
        )?;
        writeln!(f, "memory types:")?;
        for (i, t) in self.memory_types.iter().enumerate() {
            let known = [
                (MemoryPropertyFlags::DEVICE_LOCAL, "DEVICE_LOCAL"),
                (MemoryPropertyFlags::HOST_VISIBLE, "HOST_VISIBLE"),
                (MemoryPropertyFlags::HOST_COHERENT, "HOST_COHERENT"),
                (MemoryPropertyFlags::HOST_CACHED, "HOST_CACHED"),
                (MemoryPropertyFlags::LAZILY_ALLOCATED, "LAZILY_ALLOCATED"),
                (MemoryPropertyFlags::PROTECTED, "PROTECTED"),
            ];
            let names: Vec<_> = known
                .iter()
                .filter(|(flag, _)| t.properties.contains(*flag))
                .map(|(_, n)| *n)
                .collect();
            writeln!(
                f,
                "  {i}: heap {} [{}] (raw {:#x})",
                t.heap_index,
                names.join("|"),
                t.properties.bits()
            )?;
        }
        writeln!(f, "memory heaps:")?;
        for (i, h) in self.memory_heaps.iter().enumerate() {
            write!(
                f,
                "  {i}: {:.0} MiB flags {:#x}",
                mib(h.size),
                h.flags.bits()
            )?;
            match h.budget {
                Some(b) => writeln!(
                    f,
                    " budget {:.0} MiB usage {:.0} MiB",
                    mib(b.budget),
                    mib(b.usage)
                )?,
                None => writeln!(f, " (no budget query)")?,
            }
        }
        let l = &self.limits;
        writeln!(
            f,
            "limits: maxMemoryAllocationCount {} maxMemoryAllocationSize {:.0} MiB \
             bufferImageGranularity {} nonCoherentAtomSize {} minMemoryMapAlignment {} \
             buffer offset alignment {}",
            l.max_memory_allocation_count,
            mib(l.max_memory_allocation_size),
            l.buffer_image_granularity,
            l.non_coherent_atom_size,
            l.min_memory_map_alignment,
            l.min_buffer_offset_alignment
        )?;
        writeln!(f, "queue families:")?;
        for q in &self.queue_families {
            writeln!(
                f,
                "  {}: {} queue(s){}{}{} timestamp bits {}",
                q.index,
                q.queue_count,
                if q.graphics { " graphics" } else { "" },
                if q.compute { " compute" } else { "" },
                if q.transfer { " transfer" } else { "" },
                q.timestamp_valid_bits
            )?;
        }
        match self.transfer_family {
            Some((family, true)) => writeln!(f, "copies on: family {family} (transfer-only)")?,
            Some((family, false)) => writeln!(f, "copies on: family {family} (shared)")?,
            None => writeln!(f, "copies on: none")?,
        }
        writeln!(
            f,
            "VK_EXT_memory_budget {} VK_EXT_memory_priority {} timelineSemaphore {}",
            self.memory_budget, self.memory_priority, self.timeline_semaphore
        )
    }
}
