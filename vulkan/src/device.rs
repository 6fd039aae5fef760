//! [`VulkanDevice`]: core's device traits over an application's ash `Instance`,
//! `PhysicalDevice` and `Device`.
//!
//! memkit creates, and destroys on drop, only its own objects: one command pool, its command
//! buffers, and a timeline semaphore (or fences). The instance, the device and its queues belong to
//! the application and outlive the `VulkanDevice`. Memory objects and buffers made through the
//! traits belong to their caller (core's pools), which frees them.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ash::vk;
use memkit_core::device::{
    BufferDevice, BufferUsage, DedicatedTo, DeviceError, DeviceLimits, HeapBudget, InvalidArgument,
    MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryProperties, MemoryRequirements,
};

use crate::barrier::OwnershipTransfer;
use crate::conv::{
    map_buffer_usage, map_limits, map_memory_properties, map_memory_requirements, map_priority,
};
use crate::drain::{Lost, drain};
use crate::error::{
    map_host_device_oom_and_lost_err, map_host_device_oom_and_map_failed_err,
    map_host_device_oom_and_too_many_objects_err, map_host_device_oom_err,
};
use crate::lanes::{CopyLane, CopyLanes};
use crate::queue::SubmitState;
use crate::timeline::{Timeline, TimelineMode};

/// What the application enabled when it created its `VkDevice`. memkit uses a feature only when
/// it is marked here; marking one that was not enabled is undefined behaviour (see
/// [`VulkanDevice::new`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EnabledFeatures {
    /// The API version the device is used at: the lower of the instance's
    /// `VkApplicationInfo::apiVersion` and the device's `apiVersion`. At least 1.1.
    pub api_version: u32,
    /// `VK_EXT_memory_budget` was enabled.
    pub memory_budget: bool,
    /// `VK_EXT_memory_priority` was enabled with its `memoryPriority` feature.
    pub memory_priority: bool,
    /// The Vulkan 1.2 `timelineSemaphore` feature was enabled (needs `api_version` 1.2).
    pub timeline_semaphore: bool,
    /// The Vulkan 1.2 `bufferDeviceAddress` feature was enabled (needs `api_version` 1.2).
    pub buffer_device_address: bool,
}

/// A queue the application created with its device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueLocation {
    /// Queue family index.
    pub family: u32,
    /// Index of the queue within the family.
    pub index: u32,
}

/// How to build a [`VulkanDevice`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VulkanDeviceConfig {
    /// The queue memkit submits copies to. Pick its family with
    /// [`crate::find_transfer_queue_family`] before creating the device.
    pub transfer_queue: QueueLocation,
    /// What the device was created with.
    pub enabled: EnabledFeatures,
    /// Timeline semaphore or fence pool.
    pub timeline: TimelineMode,
    /// When set to a family other than the transfer queue's, every submission ends with release
    /// barriers handing each destination range to that family (buffers are created with
    /// exclusive sharing); the application records the matching acquires
    /// ([`crate::acquire_barriers_for`]), so it must know the copy commands submitted: for
    /// applications that call [`memkit_core::device::CopyQueue::submit_copies`] themselves.
    /// memkit-std's coordinator does not hand its commands out; use `concurrent_with_family`
    /// under it. Uploads into images
    /// ([`memkit_core::device::ImageCopyQueue::submit_image_copies`]) release each image once,
    /// after its last command in the submission, and an upload with `keep_contents` reclaims the
    /// image first, which the application must have returned (see the crate docs, "Uploading
    /// into images").
    pub release_to_family: Option<u32>,
    /// When set to a family other than the transfer queue's, buffers and images are created with
    /// `VK_SHARING_MODE_CONCURRENT` between the two families: no ownership transfer is needed
    /// (at some cost on some drivers). Cannot be combined with `release_to_family`.
    pub concurrent_with_family: Option<u32>,
    /// Extra queues large submissions are split over ([`crate::lanes`]). Needs timeline
    /// semaphores and cannot be combined with `release_to_family`; buffers and images are
    /// created concurrent between every family involved.
    pub copy_lanes: CopyLanes,
}

/// core's device traits over ash. `Send + Sync`: every externally synchronised Vulkan object it
/// touches (its queue, its command pool, its fences) is behind a mutex.
pub struct VulkanDevice {
    pub(crate) raw: ash::Device,
    pub(crate) instance: ash::Instance,
    pub(crate) physical_device: vk::PhysicalDevice,
    pub(crate) properties: MemoryProperties,
    pub(crate) limits: DeviceLimits,
    /// `maxFramebufferWidth` and `maxFramebufferHeight`: the largest attachment image.
    pub(crate) max_framebuffer_extent: (u32, u32),
    pub(crate) enabled: EnabledFeatures,
    pub(crate) transfer_queue: QueueLocation,
    pub(crate) release: Option<OwnershipTransfer>,
    /// The families of concurrent buffers, sorted; empty when buffers are exclusive.
    concurrent_families: Vec<u32>,
    /// The lanes' queues, and the smallest submission split over them.
    copy_lanes: CopyLanes,
    /// The transfer family's `minImageTransferGranularity`: width, height, depth.
    pub(crate) image_copy_granularity: [u32; 3],
    pub(crate) timeline: Timeline,
    pub(crate) submit: Mutex<SubmitState>,
    pub(crate) last_submitted: AtomicU64,
    pub(crate) lost: AtomicBool,
    /// Test hook: the next split submission fails after its lanes' parts went out.
    pub(crate) fail_next_split: AtomicBool,
    live_memory_objects: AtomicU32,
}

impl VulkanDevice {
    /// Wraps the application's handles.
    ///
    /// # Safety
    /// - `device` was created from `physical_device` of `instance`, and both outlive the returned
    ///   value;
    /// - `config.transfer_queue` names a queue created with `device`, whose family supports
    ///   transfers; the application does not submit to that queue while memkit may (share it
    ///   through [`VulkanDevice::with_transfer_queue`]);
    /// - `config.enabled` marks only what `device` was created with;
    /// - every queue of `config.copy_lanes` was created with `device`, and the application does
    ///   not submit to it.
    ///
    /// `config.concurrent_with_family` and `config.release_to_family` are checked: a family the
    /// physical device does not have (other than `VK_QUEUE_FAMILY_EXTERNAL` for a release) is
    /// refused with [`InvalidArgument::UnknownQueueFamily`], and a release together with
    /// concurrent sharing or copy lanes with [`InvalidArgument::ConflictingOptions`] (both in
    /// [`DeviceError::InvalidArgument`]). A device below Vulkan 1.1, timeline semaphores or
    /// device addresses marked enabled below Vulkan 1.2, and copy lanes without a timeline
    /// semaphore are [`DeviceError::FeatureNotEnabled`].
    pub unsafe fn new(
        instance: &ash::Instance,
        physical_device: vk::PhysicalDevice,
        device: &ash::Device,
        config: VulkanDeviceConfig,
    ) -> Result<Self, DeviceError> {
        let enabled = config.enabled;
        let lanes = config.copy_lanes.queues();
        let mut concurrent_families: Vec<u32> = [config.transfer_queue.family]
            .into_iter()
            .chain(config.concurrent_with_family)
            .chain(lanes.iter().map(|q| q.family))
            .collect();
        concurrent_families.sort_unstable();
        concurrent_families.dedup();
        if concurrent_families.len() < 2 {
            concurrent_families.clear();
        }
        // SAFETY: the physical device belongs to the instance (caller's contract).
        let families =
            unsafe { instance.get_physical_device_queue_family_properties(physical_device) };
        let family_count = families.len();
        // The transfer family exists (caller's contract); were it not to, 0s allow whole mip
        // levels only, which every queue accepts.
        let image_copy_granularity =
            families
                .get(config.transfer_queue.family as usize)
                .map_or([0; 3], |f| {
                    let g = f.min_image_transfer_granularity;
                    [g.width, g.height, g.depth]
                });
        let unknown = |family: u32| family as usize >= family_count;
        if config.concurrent_with_family.is_some_and(unknown)
            || config
                .release_to_family
                .is_some_and(|family| family != vk::QUEUE_FAMILY_EXTERNAL && unknown(family))
        {
            // Either would reach the driver in buffer creation or in barriers.
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::UnknownQueueFamily,
            ));
        }
        if (!concurrent_families.is_empty() || !lanes.is_empty())
            && config.release_to_family.is_some()
        {
            // Concurrent buffers have no owner to release, and a split submission has no one
            // queue to release from.
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::ConflictingOptions,
            ));
        }
        if enabled.api_version < vk::API_VERSION_1_1
            || (enabled.api_version < vk::API_VERSION_1_2
                && (enabled.timeline_semaphore || enabled.buffer_device_address))
        {
            return Err(DeviceError::FeatureNotEnabled);
        }
        // SAFETY: the physical device belongs to the instance (caller's contract).
        let raw_memory = unsafe { instance.get_physical_device_memory_properties(physical_device) };
        let mut maintenance3 = vk::PhysicalDeviceMaintenance3Properties::default();
        let mut properties2 = vk::PhysicalDeviceProperties2::default().push_next(&mut maintenance3);
        // SAFETY: as above; Vulkan 1.1 is checked.
        unsafe { instance.get_physical_device_properties2(physical_device, &mut properties2) };
        let raw_limits = properties2.properties.limits;
        let max_framebuffer_extent = (
            raw_limits.max_framebuffer_width,
            raw_limits.max_framebuffer_height,
        );
        let max_size = maintenance3.max_memory_allocation_size;
        let properties =
            map_memory_properties(&raw_memory).map_err(DeviceError::InvalidDescription)?;
        let limits = map_limits(&raw_limits, max_size).map_err(DeviceError::InvalidDescription)?;

        let use_semaphore = enabled.timeline_semaphore && config.timeline == TimelineMode::Auto;
        if !lanes.is_empty() && !use_semaphore {
            return Err(DeviceError::FeatureNotEnabled);
        }
        // SAFETY: the device is alive; timeline semaphores are enabled when used.
        let timeline = unsafe { Timeline::new(device, use_semaphore) }?;
        // SAFETY: the queue exists (caller's contract).
        let queue = unsafe {
            device.get_device_queue(config.transfer_queue.family, config.transfer_queue.index)
        };
        // SAFETY: the family exists (caller's contract).
        let submit = match unsafe { SubmitState::new(device, queue, config.transfer_queue.family) }
        {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: nothing was submitted with it.
                unsafe { timeline.destroy(device) };
                return Err(e);
            }
        };
        let mut submit = submit;
        for &location in lanes {
            // SAFETY: the queue exists and is memkit's (caller's contract); timeline semaphores
            // are on (checked above).
            match unsafe { CopyLane::new(device, location) } {
                Ok(lane) => submit.lanes.push(lane),
                Err(e) => {
                    // SAFETY: nothing was submitted with any of them.
                    unsafe {
                        submit.destroy(device);
                        timeline.destroy(device);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Self {
            raw: device.clone(),
            instance: instance.clone(),
            physical_device,
            properties,
            limits,
            max_framebuffer_extent,
            enabled,
            transfer_queue: config.transfer_queue,
            concurrent_families,
            copy_lanes: config.copy_lanes,
            image_copy_granularity,
            release: config.release_to_family.map(|dst| OwnershipTransfer {
                src_family: config.transfer_queue.family,
                dst_family: dst,
            }),
            timeline,
            submit: Mutex::new(submit),
            last_submitted: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            fail_next_split: AtomicBool::new(false),
            live_memory_objects: AtomicU32::new(0),
        })
    }

    /// The application's device.
    pub fn raw(&self) -> &ash::Device {
        &self.raw
    }

    /// The physical device.
    pub fn physical_device(&self) -> vk::PhysicalDevice {
        self.physical_device
    }

    /// What the device was created with.
    pub fn enabled_features(&self) -> EnabledFeatures {
        self.enabled
    }

    /// The queue memkit submits to.
    pub fn transfer_queue(&self) -> QueueLocation {
        self.transfer_queue
    }

    /// The queue families buffers and images are shared between, sorted; empty when they are
    /// created exclusive.
    pub fn concurrent_families(&self) -> &[u32] {
        &self.concurrent_families
    }

    /// The copy lanes: extra queues large submissions are split over.
    pub fn copy_lanes(&self) -> CopyLanes {
        self.copy_lanes
    }

    /// Submissions split over the copy lanes so far.
    pub fn split_submissions(&self) -> u64 {
        self.lock_submit().splits
    }

    /// The ownership transfer recorded after each submission, when configured.
    pub fn ownership_transfer(&self) -> Option<OwnershipTransfer> {
        self.release.filter(OwnershipTransfer::is_transfer)
    }

    /// The timeline semaphore submissions signal, for the application's own submissions to wait
    /// on; `None` with the fence-pool fallback (then wait with [`memkit_core::device::CopyQueue::wait`]).
    ///
    /// Its values are those [`memkit_core::device::CopyQueue::submit_copies`] signals, and so
    /// those of memkit-std's `Ticket::value`. Values complete in order: once it reaches a value,
    /// every submission of a lower value completed too (copy lanes included), so one wait for
    /// the highest value needed covers them all.
    ///
    /// Dropping the `VulkanDevice` destroys the semaphore after waiting for memkit's own
    /// submissions only: the application's submissions that wait on it must be complete first.
    pub fn timeline_semaphore(&self) -> Option<vk::Semaphore> {
        self.timeline.semaphore()
    }

    /// Memory objects allocated through this device and not freed yet.
    pub fn live_memory_objects(&self) -> u32 {
        self.live_memory_objects.load(Ordering::Relaxed)
    }

    /// Records that the device was lost: every later submit, query and wait, and every call that
    /// makes or maps memory, buffers or images, reports [`DeviceError::DeviceLost`]. Waits that
    /// watch the flag end with it too, since a value they wait for may never be submitted: a
    /// fence-pool wait for a value not submitted yet wakes at once, a semaphore or fence wait
    /// within `LOST_CHECK_INTERVAL` (20 ms). Waits that must outlast a simulated loss do not
    /// watch it and end only when the GPU work did or the driver reports the loss: the drop's, and
    /// the waits for copy lanes. Called on any `VK_ERROR_DEVICE_LOST`.
    pub(crate) fn note(&self, error: DeviceError) -> DeviceError {
        if error == DeviceError::DeviceLost {
            self.lost.store(true, Ordering::Release);
            self.timeline.wake_waiters();
        }
        error
    }

    /// Whether a call reported the device lost.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// [`DeviceError::DeviceLost`] once the device was lost (one atomic load): submits, waits,
    /// and every call that makes or maps memory, buffers and images are refused then, as on
    /// memkit's dummy device. Freeing, unmapping and destroying still work.
    pub(crate) fn check_lost(&self) -> Result<(), DeviceError> {
        if self.is_lost() {
            Err(DeviceError::DeviceLost)
        } else {
            Ok(())
        }
    }

    pub(crate) fn lock_submit(&self) -> MutexGuard<'_, SubmitState> {
        // Every step under the lock leaves the state consistent, so a panic elsewhere while it
        // was held does not poison it for good.
        self.submit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl core::fmt::Debug for VulkanDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VulkanDevice")
            .field("device", &self.raw.handle())
            .field("physical_device", &self.physical_device)
            .field("enabled", &self.enabled)
            .field("transfer_queue", &self.transfer_queue)
            .field("timeline", &self.timeline)
            .field("last_submitted", &self.last_submitted_value())
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

impl VulkanDevice {
    /// Blocks until every submission so far completed, even when the device is marked lost (a
    /// simulated loss, or one a call reported while the GPU still runs): a failed wait is
    /// retried, with idling the transfer queue as the fallback, until one succeeds or the driver
    /// reports the device lost ([`drain`]). Either way nothing memkit submitted runs any more.
    ///
    /// # Safety
    /// The caller has exclusive use of `queue`, the transfer queue (it holds the submit lock, or
    /// `&mut self`), so nothing is submitted meanwhile.
    pub(crate) unsafe fn wait_out_submissions(&self, queue: vk::Queue) {
        let last = self.last_submitted.load(Ordering::Acquire);
        if last == 0 {
            return;
        }
        let (raw, timeline) = (&self.raw, &self.timeline);
        // SAFETY: the timeline is alive as long as the device. No lost flag: only a loss the
        // driver reports may end this wait.
        let wait = || unsafe { timeline.wait(raw, last, u64::MAX, None) };
        let idle = || {
            // SAFETY: the caller has exclusive use of the queue (this function's contract).
            unsafe { raw.queue_wait_idle(queue) }.map_err(map_host_device_oom_and_lost_err)
        };
        let _: Result<(), Lost> = drain(wait, idle);
    }
}

impl Drop for VulkanDevice {
    fn drop(&mut self) {
        let queue = self
            .submit
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .queue;
        // Wait even when the device is marked lost: a loss noted while the GPU runs leaves it
        // running.
        // SAFETY: `&mut self`: nothing else submits to the queue now (`with_transfer_queue`
        // borrows the device).
        unsafe { self.wait_out_submissions(queue) };
        let state = self
            .submit
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // SAFETY: every submission of the main queue completed, or the device was lost, after
        // which nothing executes (waited above; the lanes wait for their own in `destroy`, and
        // nothing submits to their queues now); memkit created the pools, the lanes and the
        // timeline and nothing else uses them.
        unsafe {
            state.destroy(&self.raw);
            self.timeline.destroy(&self.raw);
        }
    }
}

impl MemoryDevice for VulkanDevice {
    type Memory = vk::DeviceMemory;
    type Buffer = vk::Buffer;
    type Image = vk::Image;

    fn memory_properties(&self) -> &MemoryProperties {
        &self.properties
    }

    fn limits(&self) -> DeviceLimits {
        self.limits
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        if !self.enabled.memory_budget {
            return false;
        }
        let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
        let mut props = vk::PhysicalDeviceMemoryProperties2::default().push_next(&mut budget);
        // SAFETY: the physical device is alive, Vulkan 1.1, and VK_EXT_memory_budget enabled.
        unsafe {
            self.instance
                .get_physical_device_memory_properties2(self.physical_device, &mut props)
        };
        let heaps = self.properties.heaps().len();
        for (i, slot) in out.iter_mut().take(heaps).enumerate() {
            *slot = HeapBudget {
                budget: budget.heap_budget[i],
                usage: budget.heap_usage[i],
            };
        }
        true
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<Self::Buffer, Self::Image>,
    ) -> Result<Self::Memory, DeviceError> {
        self.check_lost()?;
        if info.size == 0 {
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        if info.memory_type as usize >= self.properties.types().len() {
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::UnknownMemoryType,
            ));
        }
        if info.device_address && !self.enabled.buffer_device_address {
            return Err(DeviceError::FeatureNotEnabled);
        }
        // Count before calling, so that concurrent callers cannot overshoot the limit together.
        let before = self.live_memory_objects.fetch_add(1, Ordering::AcqRel);
        if before >= self.limits.max_memory_allocation_count {
            self.live_memory_objects.fetch_sub(1, Ordering::AcqRel);
            return Err(DeviceError::TooManyObjects);
        }
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default();
        let mut priority =
            vk::MemoryPriorityAllocateInfoEXT::default().priority(map_priority(info.priority));
        let mut flags =
            vk::MemoryAllocateFlagsInfo::default().flags(vk::MemoryAllocateFlags::DEVICE_ADDRESS);
        let mut allocate = vk::MemoryAllocateInfo::default()
            .allocation_size(info.size)
            .memory_type_index(info.memory_type);
        if let Some(to) = info.dedicated_to {
            dedicated = match to {
                DedicatedTo::Buffer(buffer) => dedicated.buffer(buffer),
                DedicatedTo::Image(image) => dedicated.image(image),
            };
            allocate = allocate.push_next(&mut dedicated);
        }
        if self.enabled.memory_priority {
            allocate = allocate.push_next(&mut priority);
        }
        if info.device_address {
            allocate = allocate.push_next(&mut flags);
        }
        // SAFETY: the type index and size are in range, a dedicated buffer or image is alive,
        // unbound and of this size (caller's contract), and each chained structure's feature is enabled.
        match unsafe { self.raw.allocate_memory(&allocate, None) } {
            Ok(memory) => Ok(memory),
            Err(e) => {
                self.live_memory_objects.fetch_sub(1, Ordering::AcqRel);
                Err(map_host_device_oom_and_too_many_objects_err(e))
            }
        }
    }

    unsafe fn free_memory(&self, memory: Self::Memory) {
        // SAFETY: allocated here, not freed, unused by the GPU and by buffers (caller's
        // contract); Vulkan unmaps on free.
        unsafe { self.raw.free_memory(memory, None) };
        self.live_memory_objects.fetch_sub(1, Ordering::AcqRel);
    }

    unsafe fn map_memory(&self, memory: Self::Memory) -> Result<NonNull<u8>, DeviceError> {
        self.check_lost()?;
        // SAFETY: alive, host-visible and not mapped yet (caller's contract).
        let ptr = unsafe {
            self.raw
                .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
        }
        .map_err(map_host_device_oom_and_map_failed_err)?;
        NonNull::new(ptr.cast::<u8>()).ok_or(DeviceError::MapFailed)
    }

    unsafe fn unmap_memory(&self, memory: Self::Memory) {
        // SAFETY: alive and mapped (caller's contract).
        unsafe { self.raw.unmap_memory(memory) };
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<Self::Memory>]) -> Result<(), DeviceError> {
        self.check_lost()?;
        for_each_chunk(ranges, |chunk| {
            // SAFETY: objects alive and mapped, ranges atom-aligned (caller's contract).
            unsafe { self.raw.flush_mapped_memory_ranges(chunk) }.map_err(map_host_device_oom_err)
        })
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<Self::Memory>],
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        for_each_chunk(ranges, |chunk| {
            // SAFETY: objects alive and mapped, ranges atom-aligned (caller's contract).
            unsafe { self.raw.invalidate_mapped_memory_ranges(chunk) }
                .map_err(map_host_device_oom_err)
        })
    }
}

/// Converts ranges to `VkMappedMemoryRange`s in fixed-size chunks on the stack (no heap per call)
/// and hands each chunk to `f`.
fn for_each_chunk(
    ranges: &[MappedRange<vk::DeviceMemory>],
    mut f: impl FnMut(&[vk::MappedMemoryRange<'_>]) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    const CHUNK: usize = 32;
    let mut raw = [vk::MappedMemoryRange::default(); CHUNK];
    for chunk in ranges.chunks(CHUNK) {
        for (out, r) in raw.iter_mut().zip(chunk) {
            *out = vk::MappedMemoryRange::default()
                .memory(r.memory)
                .offset(r.offset)
                .size(r.size);
        }
        f(&raw[..chunk.len()])?;
    }
    Ok(())
}

impl BufferDevice for VulkanDevice {
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(Self::Buffer, MemoryRequirements), DeviceError> {
        self.check_lost()?;
        if size == 0 {
            return Err(DeviceError::InvalidArgument(InvalidArgument::ZeroSize));
        }
        if usage.is_empty() {
            // VUID-VkBufferCreateInfo-usage-requiredbitmask.
            return Err(DeviceError::InvalidArgument(
                InvalidArgument::EmptyBufferUsage,
            ));
        }
        if usage.contains(BufferUsage::DEVICE_ADDRESS) && !self.enabled.buffer_device_address {
            return Err(DeviceError::FeatureNotEnabled);
        }
        let mut info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(map_buffer_usage(usage))
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        if !self.concurrent_families.is_empty() {
            let families = &self.concurrent_families;
            info = info
                .sharing_mode(vk::SharingMode::CONCURRENT)
                .queue_family_indices(families);
        }
        // SAFETY: the size is nonzero, the usage is not empty and every usage bit's feature is
        // enabled.
        let buffer =
            unsafe { self.raw.create_buffer(&info, None) }.map_err(map_host_device_oom_err)?;
        let mut dedicated = vk::MemoryDedicatedRequirements::default();
        let mut requirements = vk::MemoryRequirements2::default().push_next(&mut dedicated);
        let query = vk::BufferMemoryRequirementsInfo2::default().buffer(buffer);
        // SAFETY: the buffer was just created on this device; Vulkan 1.1 is checked in `new`.
        unsafe {
            self.raw
                .get_buffer_memory_requirements2(&query, &mut requirements)
        };
        let raw = requirements.memory_requirements;
        Ok((buffer, map_memory_requirements(&raw, &dedicated)))
    }

    unsafe fn bind_buffer_memory(
        &self,
        buffer: Self::Buffer,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        self.check_lost()?;
        // SAFETY: alive, unbound, offset aligned and in range (caller's contract).
        unsafe { self.raw.bind_buffer_memory(buffer, memory, offset) }
            .map_err(map_host_device_oom_err)
    }

    unsafe fn destroy_buffer(&self, buffer: Self::Buffer) {
        // SAFETY: alive, from this device, unused by the GPU (caller's contract).
        unsafe { self.raw.destroy_buffer(buffer, None) };
    }

    unsafe fn buffer_device_address(&self, buffer: Self::Buffer) -> Result<u64, DeviceError> {
        self.check_lost()?;
        if !self.enabled.buffer_device_address {
            return Err(DeviceError::FeatureNotEnabled);
        }
        let info = vk::BufferDeviceAddressInfo::default().buffer(buffer);
        // SAFETY: the device was created with `bufferDeviceAddress` (Vulkan 1.2 core, checked
        // above); the buffer is alive, this device's, made with SHADER_DEVICE_ADDRESS usage and
        // bound to memory allocated with the device-address flag (caller's contract).
        Ok(unsafe { self.raw.get_buffer_device_address(&info) })
    }
}
