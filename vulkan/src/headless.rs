//! A headless instance and device in one call, for tools and tests: the best physical device
//! (discrete first), budget, priority, timeline and device-address features when present, and
//! optionally the Khronos validation layer with a messenger collecting every message.

use std::ffi::{CStr, c_char};
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, PoisonError};

use ash::vk;

use crate::debug::ValidationLog;
use crate::device::{EnabledFeatures, QueueLocation, VulkanDevice, VulkanDeviceConfig};
use crate::error::{SetupError, map_host_device_oom_err};
use crate::lanes::{CopyLanes, MAX_COPY_LANES};
use crate::queue::find_transfer_queue_family;
use crate::timeline::TimelineMode;

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// What [`HeadlessDevice::new`] sets up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeadlessConfig {
    /// Enable `VK_LAYER_KHRONOS_validation` (with synchronization validation, when the layer
    /// offers `VK_EXT_validation_features`) and `VK_EXT_debug_utils` with a messenger that
    /// collects every message into [`HeadlessDevice::validation_log`]. Fails with
    /// [`SetupError::ValidationMissing`] when they are not installed.
    pub validation: bool,
    /// Timeline semaphore or fence pool.
    pub timeline: TimelineMode,
    /// Forwarded to [`VulkanDeviceConfig::release_to_family`]: a queue family of the chosen
    /// physical device or `VK_QUEUE_FAMILY_EXTERNAL`; anything else is refused with
    /// [`SetupError::UnknownReleaseFamily`].
    pub release_to_family: Option<u32>,
    /// When memkit's transfer family is not the main queue's, release every upload to the main
    /// queue's family (overrides `release_to_family`; ignored when the families are the same).
    pub release_to_main_family: bool,
    /// When memkit's transfer family is not the main queue's, create buffers concurrent between
    /// the two ([`VulkanDeviceConfig::concurrent_with_family`]).
    pub concurrent_with_main_family: bool,
    /// Extra queues to split large copy submissions over ([`crate::lanes`]), taken round-robin
    /// over the families that can copy, transfer-only families first. Where the device has
    /// fewer free queues, the rest reuse memkit's transfer queue (its parts then run in order:
    /// only tests of the split want that). Buffers are then created concurrent between every
    /// family involved and the main queue's; cannot be combined with the release options.
    pub copy_lanes: u32,
    /// The smallest submission split over the lanes; `None`:
    /// [`CopyLanes::DEFAULT_MIN_SPLIT_BYTES`].
    pub lane_split_bytes: Option<u64>,
}

/// An instance, a device and memkit's [`VulkanDevice`] over them, all owned; dropped in reverse
/// order of creation.
pub struct HeadlessDevice {
    vulkan: ManuallyDrop<VulkanDevice>,
    device: ash::Device,
    main_queue: QueueLocation,
    /// The main queue when it is not the transfer queue; else memkit's lock guards it.
    own_main_queue: Option<Mutex<vk::Queue>>,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    instance: ash::Instance,
    entry: ash::Entry,
    log: Arc<ValidationLog>,
}

impl core::fmt::Debug for HeadlessDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeadlessDevice")
            .field("vulkan", &*self.vulkan)
            .field("main_queue", &self.main_queue)
            .field("validation", &self.debug.is_some())
            .finish_non_exhaustive()
    }
}

/// Ranks device types, best first.
fn type_rank(t: vk::PhysicalDeviceType) -> u8 {
    match t {
        vk::PhysicalDeviceType::DISCRETE_GPU => 0,
        vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
        vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
        vk::PhysicalDeviceType::CPU => 3,
        _ => 4,
    }
}

fn has_extension(list: &[vk::ExtensionProperties], name: &CStr) -> bool {
    list.iter()
        .any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
}

impl HeadlessDevice {
    /// Loads Vulkan, creates an instance and a device on the best physical device, and wraps
    /// them.
    pub fn new(config: HeadlessConfig) -> Result<Self, SetupError> {
        // SAFETY: loading the system's Vulkan loader runs its initialisers; that is what every
        // Vulkan program does.
        let entry = unsafe { ash::Entry::load() }.map_err(|_| SetupError::LoaderMissing)?;
        let log = Arc::new(ValidationLog::default());

        let api_version = instance_api_version(&entry);
        if api_version < vk::API_VERSION_1_1 {
            return Err(SetupError::NoDevice);
        }

        let mut layers: Vec<*const c_char> = Vec::new();
        let mut extensions: Vec<*const c_char> = Vec::new();
        let mut synchronization_validation = false;
        if config.validation {
            // SAFETY: the entry is loaded.
            let available = unsafe { entry.enumerate_instance_layer_properties() }
                .map_err(map_host_device_oom_err)?;
            let has_layer = available
                .iter()
                .any(|l| l.layer_name_as_c_str().is_ok_and(|n| n == VALIDATION_LAYER));
            // SAFETY: the entry is loaded.
            let instance_extensions =
                unsafe { entry.enumerate_instance_extension_properties(None) }
                    .map_err(map_host_device_oom_err)?;
            if !has_layer || !has_extension(&instance_extensions, ash::ext::debug_utils::NAME) {
                return Err(SetupError::ValidationMissing);
            }
            // SAFETY: the entry is loaded; the layer exists.
            let layer_extensions =
                unsafe { entry.enumerate_instance_extension_properties(Some(VALIDATION_LAYER)) }
                    .map_err(map_host_device_oom_err)?;
            synchronization_validation =
                has_extension(&layer_extensions, ash::ext::validation_features::NAME);
            if synchronization_validation {
                extensions.push(ash::ext::validation_features::NAME.as_ptr());
            }
            layers.push(VALIDATION_LAYER.as_ptr());
            extensions.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let app = vk::ApplicationInfo::default()
            .application_name(c"memkit headless")
            .engine_name(c"memkit")
            .api_version(api_version);
        let mut instance_messenger = log.messenger_create_info();
        let mut instance_info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&extensions);
        // Synchronization validation checks the barriers memkit records (hazards between copies,
        // between submissions, and against host reads).
        let enables = [vk::ValidationFeatureEnableEXT::SYNCHRONIZATION_VALIDATION];
        let mut features =
            vk::ValidationFeaturesEXT::default().enabled_validation_features(&enables);
        if config.validation {
            instance_info = instance_info.push_next(&mut instance_messenger);
        }
        if synchronization_validation {
            instance_info = instance_info.push_next(&mut features);
        }
        // SAFETY: the create info and everything it points to are valid; the log outlives the
        // instance (it is dropped after it in `Drop`).
        let instance = unsafe { entry.create_instance(&instance_info, None) }
            .map_err(map_create_instance_err)?;
        let mut debug = None;
        // SAFETY: the instance was just created from `entry`; the log outlives it.
        match unsafe { Self::create_device(&entry, &instance, &log, config, &mut debug) } {
            Ok((vulkan, device, main_queue, own_main_queue)) => Ok(Self {
                vulkan: ManuallyDrop::new(vulkan),
                device,
                main_queue,
                own_main_queue,
                debug,
                instance,
                entry,
                log,
            }),
            Err(e) => {
                // SAFETY: nothing created on the instance survives the failure but the
                // messenger, destroyed first.
                unsafe {
                    if let Some((loader, messenger)) = debug.take() {
                        loader.destroy_debug_utils_messenger(messenger, None);
                    }
                    instance.destroy_instance(None);
                }
                Err(e)
            }
        }
    }

    /// Everything after the instance: the messenger (stored in `debug` as soon as it exists), the
    /// physical device, the device and memkit's device over it.
    ///
    /// # Safety
    /// - `instance` was created from `entry` with debug utils enabled when `config.validation`;
    ///   `log` outlives it.
    #[allow(clippy::type_complexity)]
    unsafe fn create_device(
        entry: &ash::Entry,
        instance: &ash::Instance,
        log: &Arc<ValidationLog>,
        config: HeadlessConfig,
        debug: &mut Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    ) -> Result<
        (
            VulkanDevice,
            ash::Device,
            QueueLocation,
            Option<Mutex<vk::Queue>>,
        ),
        SetupError,
    > {
        let api_version = instance_api_version(entry);
        if config.validation {
            let loader = ash::ext::debug_utils::Instance::new(entry, instance);
            let info = log.messenger_create_info();
            // SAFETY: debug utils is enabled; the log outlives the messenger.
            let messenger = unsafe { loader.create_debug_utils_messenger(&info, None) }
                .map_err(map_host_device_oom_err)?;
            *debug = Some((loader, messenger));
        }

        // SAFETY: the instance is alive.
        let physical_devices =
            unsafe { instance.enumerate_physical_devices() }.map_err(map_host_device_oom_err)?;
        let mut candidates: Vec<_> = physical_devices
            .into_iter()
            .filter_map(|pd| {
                // SAFETY: enumerated from this instance.
                let props = unsafe { instance.get_physical_device_properties(pd) };
                // SAFETY: as above.
                let family = unsafe { find_transfer_queue_family(instance, pd) }?;
                (props.api_version >= vk::API_VERSION_1_1).then_some((
                    type_rank(props.device_type),
                    pd,
                    props,
                    family,
                ))
            })
            .collect();
        candidates.sort_by_key(|c| c.0);
        let Some(&(_, physical_device, props, transfer)) = candidates.first() else {
            return Err(SetupError::NoDevice);
        };
        let device_version = props.api_version.min(api_version);

        // SAFETY: the physical device belongs to the instance.
        let families =
            unsafe { instance.get_physical_device_queue_family_properties(physical_device) };
        // `VulkanDevice::new` refuses it too, but without the family: named here.
        if let Some(family) = config.release_to_family.filter(|&family| {
            family as usize >= families.len() && family != vk::QUEUE_FAMILY_EXTERNAL
        }) {
            return Err(SetupError::UnknownReleaseFamily(family));
        }
        let main_family = families
            .iter()
            .position(|f| {
                f.queue_flags
                    .intersects(vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE)
            })
            .map_or(transfer.family, |i| i as u32);
        // SAFETY: as above.
        let device_extensions =
            unsafe { instance.enumerate_device_extension_properties(physical_device) }
                .map_err(map_host_device_oom_err)?;
        let has_budget = has_extension(&device_extensions, ash::ext::memory_budget::NAME);
        let has_priority_ext = has_extension(&device_extensions, ash::ext::memory_priority::NAME);

        let mut supported12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut supported_priority = vk::PhysicalDeviceMemoryPriorityFeaturesEXT::default();
        let mut features2 = vk::PhysicalDeviceFeatures2::default();
        if device_version >= vk::API_VERSION_1_2 {
            features2 = features2.push_next(&mut supported12);
        }
        if has_priority_ext {
            features2 = features2.push_next(&mut supported_priority);
        }
        // SAFETY: Vulkan 1.1; only structures of supported versions and extensions are chained.
        unsafe { instance.get_physical_device_features2(physical_device, &mut features2) };
        let timeline = supported12.timeline_semaphore == vk::TRUE;
        let device_address = supported12.buffer_device_address == vk::TRUE;
        let priority = has_priority_ext && supported_priority.memory_priority == vk::TRUE;

        let mut enable_extensions: Vec<*const c_char> = Vec::new();
        if has_budget {
            enable_extensions.push(ash::ext::memory_budget::NAME.as_ptr());
        }
        if priority {
            enable_extensions.push(ash::ext::memory_priority::NAME.as_ptr());
        }
        // One queue for memkit, one for the application's work: a second queue in a shared family
        // when there is one, else the application shares memkit's (through its lock).
        let mut queues_used = vec![0u32; families.len()];
        let (transfer_queue, main_queue) = if transfer.family != main_family {
            queues_used[transfer.family as usize] = 1;
            queues_used[main_family as usize] = 1;
            (
                QueueLocation {
                    family: transfer.family,
                    index: 0,
                },
                QueueLocation {
                    family: main_family,
                    index: 0,
                },
            )
        } else {
            let count = transfer.queue_count.min(2);
            queues_used[main_family as usize] = count;
            (
                QueueLocation {
                    family: main_family,
                    index: count - 1,
                },
                QueueLocation {
                    family: main_family,
                    index: 0,
                },
            )
        };
        let lanes = pick_lane_queues(
            &families,
            transfer_queue,
            &mut queues_used,
            config.copy_lanes,
        );
        let priorities = vec![1.0f32; queues_used.iter().copied().max().unwrap_or(1) as usize];
        let queue_infos: Vec<vk::DeviceQueueCreateInfo<'_>> = queues_used
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(family, &n)| {
                vk::DeviceQueueCreateInfo::default()
                    .queue_family_index(family as u32)
                    .queue_priorities(&priorities[..n as usize])
            })
            .collect();
        let mut enable12 = vk::PhysicalDeviceVulkan12Features::default()
            .timeline_semaphore(timeline)
            .buffer_device_address(device_address);
        let mut enable_priority =
            vk::PhysicalDeviceMemoryPriorityFeaturesEXT::default().memory_priority(priority);
        let mut device_info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_infos)
            .enabled_extension_names(&enable_extensions);
        if device_version >= vk::API_VERSION_1_2 {
            device_info = device_info.push_next(&mut enable12);
        }
        if priority {
            device_info = device_info.push_next(&mut enable_priority);
        }
        // SAFETY: every enabled extension and feature is supported; the queues exist.
        let device = unsafe { instance.create_device(physical_device, &device_info, None) }
            .map_err(map_host_device_oom_err)?;

        let vulkan_config = VulkanDeviceConfig {
            transfer_queue,
            enabled: EnabledFeatures {
                api_version: device_version,
                memory_budget: has_budget,
                memory_priority: priority,
                timeline_semaphore: timeline,
                buffer_device_address: device_address,
            },
            timeline: config.timeline,
            concurrent_with_family: (config.concurrent_with_main_family || !lanes.is_empty())
                .then_some(main_queue.family),
            release_to_family: if config.release_to_main_family
                && transfer_queue.family != main_queue.family
            {
                Some(main_queue.family)
            } else {
                config.release_to_family
            },
            copy_lanes: CopyLanes::new(
                &lanes,
                config
                    .lane_split_bytes
                    .unwrap_or(CopyLanes::DEFAULT_MIN_SPLIT_BYTES),
            )
            .unwrap_or_default(),
        };
        // SAFETY: the device comes from this physical device and instance, outlives the
        // `VulkanDevice` (dropped first in `Drop`), and was created with exactly these features
        // and queues; the application's queue is separate or shared through memkit's lock; the
        // release family is the main queue's, or one checked above to be a family of the device
        // or `VK_QUEUE_FAMILY_EXTERNAL`.
        let vulkan =
            match unsafe { VulkanDevice::new(instance, physical_device, &device, vulkan_config) } {
                Ok(v) => v,
                Err(e) => {
                    // SAFETY: nothing else was created on the device.
                    unsafe { device.destroy_device(None) };
                    return Err(e.into());
                }
            };
        let own_main_queue = (main_queue != transfer_queue).then(|| {
            // SAFETY: the queue was created above.
            Mutex::new(unsafe { device.get_device_queue(main_queue.family, main_queue.index) })
        });
        Ok((vulkan, device, main_queue, own_main_queue))
    }

    /// memkit's device.
    pub fn device(&self) -> &VulkanDevice {
        &self.vulkan
    }

    /// The ash device.
    pub fn ash_device(&self) -> &ash::Device {
        &self.device
    }

    /// The ash instance.
    pub fn instance(&self) -> &ash::Instance {
        &self.instance
    }

    /// The loader's entry points.
    pub fn entry(&self) -> &ash::Entry {
        &self.entry
    }

    /// The application's queue (graphics or compute family): where work that consumes uploads
    /// goes.
    pub fn main_queue(&self) -> QueueLocation {
        self.main_queue
    }

    /// Runs `f` with exclusive use of the main queue, whether or not memkit shares it.
    pub fn with_main_queue<R>(&self, f: impl FnOnce(vk::Queue) -> R) -> R {
        match &self.own_main_queue {
            Some(queue) => f(*queue.lock().unwrap_or_else(PoisonError::into_inner)),
            None => self.vulkan.with_transfer_queue(f),
        }
    }

    /// Messages the validation layer (or any layer) reported so far.
    pub fn validation_log(&self) -> &Arc<ValidationLog> {
        &self.log
    }

    /// Tears everything down and returns every message reported, teardown included (leaked
    /// objects are reported when the device and instance are destroyed).
    pub fn finish(self) -> Vec<String> {
        let log = Arc::clone(&self.log);
        drop(self);
        log.messages()
    }
}

impl Drop for HeadlessDevice {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, before the device it uses.
        unsafe { ManuallyDrop::drop(&mut self.vulkan) };
        // SAFETY: memkit's objects are gone; the application's (tests') objects are theirs to
        // destroy first, and the validation layer reports any left.
        unsafe {
            // Outstanding work of the application's queue.
            let _ = self.device.device_wait_idle();
            self.device.destroy_device(None);
            if let Some((loader, messenger)) = self.debug.take() {
                loader.destroy_debug_utils_messenger(messenger, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// `vkCreateInstance`'s results: no driver at all is [`SetupError::NoDevice`], a missing layer or
/// extension (only validation's are asked for) [`SetupError::ValidationMissing`].
fn map_create_instance_err(result: vk::Result) -> SetupError {
    match result {
        vk::Result::ERROR_INCOMPATIBLE_DRIVER | vk::Result::ERROR_INITIALIZATION_FAILED => {
            SetupError::NoDevice
        }
        vk::Result::ERROR_LAYER_NOT_PRESENT | vk::Result::ERROR_EXTENSION_NOT_PRESENT => {
            SetupError::ValidationMissing
        }
        other => SetupError::Device(map_host_device_oom_err(other)),
    }
}

/// The API version an instance is created with: the loader's, capped at 1.3.
fn instance_api_version(entry: &ash::Entry) -> u32 {
    // SAFETY: the entry is loaded.
    unsafe { entry.try_enumerate_instance_version() }
        .ok()
        .flatten()
        .unwrap_or(vk::API_VERSION_1_0)
        .min(vk::API_VERSION_1_3)
}

/// Up to `wanted` (at most [`MAX_COPY_LANES`]) lane queues: round-robin over the families that
/// can copy, transfer-only families first, then compute, then graphics ones; round `r` takes
/// queue `r` of each family that has it free, so a family that already gave memkit's or the
/// application's queue joins from the next round (on the H200, 4 queues of 4 families copy
/// faster than 2 of one and 2 of others). `used` counts each family's queues taken and is
/// updated. Where the device runs out, the transfer queue itself fills the rest.
fn pick_lane_queues(
    families: &[vk::QueueFamilyProperties],
    transfer: QueueLocation,
    used: &mut [u32],
    wanted: u32,
) -> Vec<QueueLocation> {
    let wanted = (wanted as usize).min(MAX_COPY_LANES);
    let copies = vk::QueueFlags::TRANSFER | vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
    let rank = |f: &vk::QueueFamilyProperties| {
        if f.queue_flags.contains(vk::QueueFlags::GRAPHICS) {
            2
        } else if f.queue_flags.contains(vk::QueueFlags::COMPUTE) {
            1
        } else {
            0
        }
    };
    let mut order: Vec<usize> = (0..families.len())
        .filter(|&i| families[i].queue_flags.intersects(copies))
        .collect();
    order.sort_by_key(|&i| (rank(&families[i]), i));
    let rounds = families.iter().map(|f| f.queue_count).max().unwrap_or(0);
    let mut lanes = Vec::new();
    for round in 0..rounds {
        for &family in &order {
            if lanes.len() < wanted && used[family] == round && round < families[family].queue_count
            {
                lanes.push(QueueLocation {
                    family: family as u32,
                    index: round,
                });
                used[family] += 1;
            }
        }
    }
    lanes.resize(wanted, transfer);
    lanes
}
