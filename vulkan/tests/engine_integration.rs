//! An engine that brings its own ash instance, physical device, device and queues, as a renderer
//! built on ash does, and hands them to memkit: [`VulkanDevice::new`] over the engine's handles,
//! memkit-std's [`Coordinator`] for buffers, uploads and frame pacing, and the engine's own
//! command buffers on its graphics queue consuming what memkit uploaded, each submission waiting
//! on memkit's timeline semaphore at the value the upload's ticket names.
//!
//! Queues: where the device has a transfer-capable queue other than the graphics one (a
//! transfer-only family, or a second queue of the graphics family), memkit gets it; where the
//! families differ, memkit's buffers are created concurrent with the graphics family, so no
//! ownership transfer is needed. lavapipe has one queue in all: memkit's transfer queue is then
//! the engine's graphics queue, and the engine submits to it through
//! [`VulkanDevice::with_transfer_queue`].
//!
//! The engine paces its own frames too: before memkit stages a frame slot's uniforms again, the
//! engine waits for its own submission that read them last (memkit's frame pacing waits only for
//! memkit's copies).
//!
//! The other way round, the engine draws into a render target memkit made (a render pass, no
//! upload) and signals its own timeline semaphore; memkit's read-back waits for that value on
//! the GPU (`Coordinator::wait_for_external`), is told the engine wrote the image
//! (`Image::mark_written`), and brings the drawing back byte for byte; an upload of two rows
//! afterwards keeps the rest of it.

mod common;

use std::ffi::{CStr, c_char};
use std::io::Write;
use std::sync::Arc;

use common::{AppCommands, SECOND, pattern};
use memkit_core::device::{
    ImageCopy, ImageDesc, ImageFormat, ImageLayout, ImageUsage, MemoryDevice,
};
use memkit_std::{
    Buffer, BufferingMode, Coordinator, CoordinatorConfig, Error, MemoryUsage, Ticket,
};
use memkit_vulkan::ash::{self, vk};
use memkit_vulkan::{
    EnabledFeatures, QueueLocation, ValidationLog, VulkanDevice, VulkanDeviceConfig,
    find_transfer_queue_family,
};

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// Frames in flight (memkit's `BufferingMode::Triple`, and the engine's own frame resources).
const FRAMES_IN_FLIGHT: usize = 3;
/// Frames rendered: each slot is used more than twice.
const FRAMES: usize = 8;
/// The mesh: vertex and index buffers of a few KiB.
const VERTEX_BYTES: usize = 6 * 1024;
const INDEX_COUNT: usize = 1536;
const INDEX_BYTES: usize = INDEX_COUNT * 4;
/// The frame whose start re-uploads part of the index buffer (after the engine's first read of it
/// completed), and where.
const PATCH_FRAME: usize = 4;
const PATCH_OFFSET: usize = 1024;
const PATCH_BYTES: usize = 512;
/// One frame's uniform block.
const UNIFORM_BYTES: usize = 256;

/// Where each copy lands in the engine's read-back buffer.
const READ_VERTICES: usize = 0;
const READ_INDICES: usize = READ_VERTICES + VERTEX_BYTES;
const READ_PATCHED_INDICES: usize = READ_INDICES + INDEX_BYTES;
const READ_UNIFORMS: usize = READ_PATCHED_INDICES + INDEX_BYTES;
const READ_TRANSIENT: usize = READ_UNIFORMS + FRAMES * UNIFORM_BYTES;
const READ_BYTES: usize = READ_TRANSIENT + FRAMES * TRANSIENT_DRAWS * TRANSIENT_BYTES;
/// Per-draw constants in a frame's transient memory: blocks per frame, and their bytes.
const TRANSIENT_DRAWS: usize = 8;
const TRANSIENT_BYTES: usize = 200;

/// `None` (printed loudly) when this machine has no Vulkan 1.2 device at all; with
/// `MEMKIT_REQUIRE_VULKAN=1` (CI) a panic instead, as in `common::headless_with`.
fn no_vulkan(why: &str) -> Option<Engine> {
    if std::env::var("MEMKIT_REQUIRE_VULKAN").as_deref() == Ok("1") {
        panic!("no Vulkan device for the engine: {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED: no Vulkan here ({why}). Install lavapipe \
         (mesa-vulkan-drivers libvulkan1 vulkan-validationlayers); \
         CI sets MEMKIT_REQUIRE_VULKAN=1 and fails instead. !!!!!!!!\n"
    );
    None
}

fn has_extension(list: &[vk::ExtensionProperties], name: &CStr) -> bool {
    list.iter()
        .any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
}

/// Where the engine puts memkit's copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QueuePlan {
    /// A queue of a transfer-only family (a copy engine), buffers concurrent with graphics.
    TransferFamily,
    /// A second queue of the graphics family.
    SecondGraphicsQueue,
    /// The graphics queue itself, shared through memkit's lock.
    SharedGraphicsQueue,
}

const PLANS: [QueuePlan; 3] = [
    QueuePlan::TransferFamily,
    QueuePlan::SecondGraphicsQueue,
    QueuePlan::SharedGraphicsQueue,
];

/// What the engine made itself, as it would without memkit: destroyed by [`Engine::destroy`] in
/// reverse order of creation.
struct Engine {
    /// Loads the driver; kept until the instance is gone.
    _entry: ash::Entry,
    instance: ash::Instance,
    debug: ash::ext::debug_utils::Instance,
    messenger: vk::DebugUtilsMessengerEXT,
    /// Every problem the validation layer reported; it must stay at its address until the
    /// instance and the messenger are gone (hence the `Arc`).
    log: Arc<ValidationLog>,
    physical_device: vk::PhysicalDevice,
    device: ash::Device,
    graphics: QueueLocation,
    graphics_queue: vk::Queue,
    /// memkit's queue: one of its own, or the graphics queue itself.
    transfer: QueueLocation,
    /// What the device was created with, in memkit's words.
    enabled: EnabledFeatures,
}

impl Engine {
    /// An instance with the validation layer (synchronization validation on where the layer
    /// offers it) and a messenger, then a device with timeline semaphores, a graphics queue and,
    /// where the device has one, a queue for memkit's copies.
    fn new(plan: QueuePlan) -> Option<Self> {
        // SAFETY: loading the system's Vulkan loader runs its initialisers, as in every Vulkan
        // program.
        let Ok(entry) = (unsafe { ash::Entry::load() }) else {
            return no_vulkan("no Vulkan loader");
        };
        // SAFETY: the entry is loaded.
        let api_version = unsafe { entry.try_enumerate_instance_version() }
            .ok()
            .flatten()
            .unwrap_or(vk::API_VERSION_1_0)
            .min(vk::API_VERSION_1_3);
        if api_version < vk::API_VERSION_1_2 {
            return no_vulkan("the loader is below Vulkan 1.2");
        }
        // SAFETY: the entry is loaded (both calls).
        let (layers, layer_extensions) = unsafe {
            (
                entry.enumerate_instance_layer_properties().unwrap(),
                entry.enumerate_instance_extension_properties(Some(VALIDATION_LAYER)),
            )
        };
        assert!(
            layers
                .iter()
                .any(|l| l.layer_name_as_c_str().is_ok_and(|n| n == VALIDATION_LAYER)),
            "the engine's tests need {VALIDATION_LAYER:?} (vulkan-validationlayers)"
        );
        let synchronization_validation =
            layer_extensions.is_ok_and(|e| has_extension(&e, ash::ext::validation_features::NAME));

        let log = Arc::new(ValidationLog::default());
        let layer_names = [VALIDATION_LAYER.as_ptr()];
        let mut extension_names: Vec<*const c_char> = vec![ash::ext::debug_utils::NAME.as_ptr()];
        if synchronization_validation {
            extension_names.push(ash::ext::validation_features::NAME.as_ptr());
        }
        let app = vk::ApplicationInfo::default()
            .application_name(c"engine_integration")
            .engine_name(c"an ash renderer")
            .api_version(api_version);
        // Chained too, so that instance creation and destruction are checked as well.
        let mut instance_messenger = log.messenger_create_info();
        let enables = [vk::ValidationFeatureEnableEXT::SYNCHRONIZATION_VALIDATION];
        let mut features =
            vk::ValidationFeaturesEXT::default().enabled_validation_features(&enables);
        let mut instance_info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layer_names)
            .enabled_extension_names(&extension_names)
            .push_next(&mut instance_messenger);
        if synchronization_validation {
            instance_info = instance_info.push_next(&mut features);
        }
        // SAFETY: the create info and what it points to are valid; `log` outlives the instance.
        let instance = unsafe { entry.create_instance(&instance_info, None) }.unwrap();
        let debug = ash::ext::debug_utils::Instance::new(&entry, &instance);
        // SAFETY: debug utils is enabled; `log` outlives the messenger.
        let messenger =
            unsafe { debug.create_debug_utils_messenger(&log.messenger_create_info(), None) }
                .unwrap();
        let destroy_instance = || {
            // SAFETY: nothing else was made on the instance.
            unsafe {
                debug.destroy_debug_utils_messenger(messenger, None);
                instance.destroy_instance(None);
            }
        };

        // SAFETY: the instance is alive.
        let physical_devices = unsafe { instance.enumerate_physical_devices() }.unwrap();
        let picked = physical_devices.into_iter().find_map(|pd| {
            // SAFETY: enumerated from this instance (the three calls).
            unsafe {
                let props = instance.get_physical_device_properties(pd);
                let mut v12 = vk::PhysicalDeviceVulkan12Features::default();
                let mut features2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut v12);
                if props.api_version < vk::API_VERSION_1_2 {
                    return None;
                }
                instance.get_physical_device_features2(pd, &mut features2);
                let timeline = v12.timeline_semaphore == vk::TRUE;
                let copies = find_transfer_queue_family(&instance, pd)?;
                timeline.then_some((pd, props, copies))
            }
        });
        let Some((physical_device, props, copies)) = picked else {
            destroy_instance();
            return no_vulkan("no Vulkan 1.2 device with timeline semaphores");
        };
        // SAFETY: the physical device belongs to the instance.
        let families =
            unsafe { instance.get_physical_device_queue_family_properties(physical_device) };
        let Some(graphics_family) = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS))
            .map(|i| i as u32)
        else {
            destroy_instance();
            return no_vulkan("no graphics queue family");
        };
        let graphics = QueueLocation {
            family: graphics_family,
            index: 0,
        };
        // memkit's queue, as the plan asks where the device has it, else the next one down:
        // a transfer-only family, a second queue of the graphics family, the graphics queue
        // itself (shared through memkit's lock).
        let graphics_queues = families[graphics_family as usize].queue_count;
        let transfer = if copies.family != graphics_family && plan == QueuePlan::TransferFamily {
            QueueLocation {
                family: copies.family,
                index: 0,
            }
        } else {
            let second = graphics_queues >= 2 && plan != QueuePlan::SharedGraphicsQueue;
            QueueLocation {
                family: graphics_family,
                index: u32::from(second),
            }
        };
        let priorities = [1.0f32; 2];
        let mut queue_infos = vec![
            vk::DeviceQueueCreateInfo::default()
                .queue_family_index(graphics_family)
                .queue_priorities(&priorities[..=transfer.index as usize]),
        ];
        if transfer.family != graphics_family {
            queue_infos.push(
                vk::DeviceQueueCreateInfo::default()
                    .queue_family_index(transfer.family)
                    .queue_priorities(&priorities[..1]),
            );
        }
        // SAFETY: as above.
        let device_extensions =
            unsafe { instance.enumerate_device_extension_properties(physical_device) }.unwrap();
        let memory_budget = has_extension(&device_extensions, ash::ext::memory_budget::NAME);
        let extensions: Vec<*const c_char> = memory_budget
            .then_some(ash::ext::memory_budget::NAME.as_ptr())
            .into_iter()
            .collect();
        let mut v12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
        let device_info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_infos)
            .enabled_extension_names(&extensions)
            .push_next(&mut v12);
        // SAFETY: the queues, extensions and features were checked above.
        let device = unsafe { instance.create_device(physical_device, &device_info, None) }
            .unwrap_or_else(|e| {
                destroy_instance();
                panic!("vkCreateDevice: {e}")
            });
        // SAFETY: the queue was created with the device.
        let graphics_queue = unsafe { device.get_device_queue(graphics.family, graphics.index) };
        let enabled = EnabledFeatures {
            api_version: props.api_version.min(api_version),
            memory_budget,
            timeline_semaphore: true,
            ..EnabledFeatures::default()
        };
        Some(Self {
            _entry: entry,
            instance,
            debug,
            messenger,
            log,
            physical_device,
            device,
            graphics,
            graphics_queue,
            transfer,
            enabled,
        })
    }

    /// Whether memkit copies on the engine's graphics queue (lavapipe: one queue in all).
    fn shares_queue(&self) -> bool {
        self.transfer == self.graphics
    }

    /// memkit's view of the device: its queue, what was enabled, and buffers concurrent with
    /// the graphics family when memkit copies in another family.
    fn memkit_config(&self) -> VulkanDeviceConfig {
        VulkanDeviceConfig {
            transfer_queue: self.transfer,
            enabled: self.enabled,
            concurrent_with_family: (self.transfer.family != self.graphics.family)
                .then_some(self.graphics.family),
            ..VulkanDeviceConfig::default()
        }
    }

    /// Destroys the device, the messenger and the instance (in that order), and returns what
    /// the validation layer reported, teardown included.
    ///
    /// # Safety
    /// Nothing made on the device is alive: memkit's `VulkanDevice` was dropped (with its
    /// coordinator, and every buffer and ticket of it), and the engine destroyed its own objects.
    unsafe fn destroy(self) -> Vec<String> {
        // SAFETY: nothing made on the device or instance is alive (the caller's contract); the
        // log outlives the messenger and the instance.
        unsafe {
            self.device.destroy_device(None);
            self.debug
                .destroy_debug_utils_messenger(self.messenger, None);
            self.instance.destroy_instance(None);
        }
        self.log.messages()
    }
}

/// The engine's per-frame command buffers and fences, and its host-visible read-back buffer, all
/// made with raw ash on the graphics family.
struct EngineFrames {
    pool: vk::CommandPool,
    cmds: Vec<vk::CommandBuffer>,
    fences: Vec<vk::Fence>,
    /// Whether each slot's fence was submitted and not waited for yet.
    in_flight: [bool; FRAMES_IN_FLIGHT],
    readback: vk::Buffer,
    readback_memory: vk::DeviceMemory,
    readback_coherent: bool,
    mapped: *const u8,
}

impl EngineFrames {
    fn new(engine: &Engine) -> Self {
        let device = &engine.device;
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(engine.graphics.family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid create infos on a live device; the memory type is one the buffer
        // allows, host-visible, and the buffer is bound once at offset 0 of its own memory.
        unsafe {
            let pool = device.create_command_pool(&pool_info, None).unwrap();
            let alloc = vk::CommandBufferAllocateInfo::default()
                .command_pool(pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(FRAMES_IN_FLIGHT as u32);
            let cmds = device.allocate_command_buffers(&alloc).unwrap();
            let fences = (0..FRAMES_IN_FLIGHT)
                .map(|_| {
                    device
                        .create_fence(&vk::FenceCreateInfo::default(), None)
                        .unwrap()
                })
                .collect();
            let buffer_info = vk::BufferCreateInfo::default()
                .size(READ_BYTES as u64)
                .usage(vk::BufferUsageFlags::TRANSFER_DST)
                .sharing_mode(vk::SharingMode::EXCLUSIVE);
            let readback = device.create_buffer(&buffer_info, None).unwrap();
            let requirements = device.get_buffer_memory_requirements(readback);
            let types = engine
                .instance
                .get_physical_device_memory_properties(engine.physical_device);
            let allowed = |flags: vk::MemoryPropertyFlags| {
                (0..types.memory_type_count).find(|&i| {
                    requirements.memory_type_bits & (1 << i) != 0
                        && types.memory_types[i as usize]
                            .property_flags
                            .contains(flags)
                })
            };
            let host = vk::MemoryPropertyFlags::HOST_VISIBLE;
            let memory_type = allowed(host | vk::MemoryPropertyFlags::HOST_CACHED)
                .or_else(|| allowed(host))
                .expect("a host-visible memory type");
            let readback_coherent = types.memory_types[memory_type as usize]
                .property_flags
                .contains(vk::MemoryPropertyFlags::HOST_COHERENT);
            let memory_info = vk::MemoryAllocateInfo::default()
                .allocation_size(requirements.size)
                .memory_type_index(memory_type);
            let readback_memory = device.allocate_memory(&memory_info, None).unwrap();
            device
                .bind_buffer_memory(readback, readback_memory, 0)
                .unwrap();
            let mapped = device
                .map_memory(
                    readback_memory,
                    0,
                    vk::WHOLE_SIZE,
                    vk::MemoryMapFlags::empty(),
                )
                .unwrap()
                .cast::<u8>()
                .cast_const();
            Self {
                pool,
                cmds,
                fences,
                in_flight: [false; FRAMES_IN_FLIGHT],
                readback,
                readback_memory,
                readback_coherent,
                mapped,
            }
        }
    }

    /// Waits for the slot's last submission: the engine's own frame pacing.
    fn wait(&mut self, engine: &Engine, slot: usize) {
        if !std::mem::take(&mut self.in_flight[slot]) {
            return;
        }
        // SAFETY: the fence was submitted; nothing else waits on or resets it.
        unsafe {
            engine
                .device
                .wait_for_fences(&[self.fences[slot]], true, 10 * SECOND)
                .unwrap();
            engine.device.reset_fences(&[self.fences[slot]]).unwrap();
        }
    }

    /// Records `copies` (`(source buffer, source offset, bytes, read-back offset)`) into the
    /// slot's command buffer and submits it on the graphics queue, waiting for memkit's
    /// `wait_value` on its timeline semaphore (0: nothing to wait for) at the transfer stage,
    /// and signalling `signal` (the engine's own timeline semaphore and value) when done.
    fn submit(
        &mut self,
        engine: &Engine,
        memkit: &VulkanDevice,
        slot: usize,
        copies: &[(vk::Buffer, usize, usize, usize)],
        wait_value: u64,
        signal: Option<(vk::Semaphore, u64)>,
    ) {
        let device = &engine.device;
        let cmd = self.cmds[slot];
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the slot's last submission completed (`wait`), so its command buffer is not
        // pending; the buffers are alive and the regions lie inside them.
        unsafe {
            device
                .reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty())
                .unwrap();
            device.begin_command_buffer(cmd, &begin).unwrap();
            for &(src, src_offset, size, dst_offset) in copies {
                let region = vk::BufferCopy::default()
                    .src_offset(src_offset as u64)
                    .dst_offset(dst_offset as u64)
                    .size(size as u64);
                device.cmd_copy_buffer(cmd, src, self.readback, &[region]);
            }
            // The host reads the read-back buffer after the fence.
            let to_host = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ);
            device.cmd_pipeline_barrier(
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[to_host],
                &[],
                &[],
            );
            device.end_command_buffer(cmd).unwrap();
        }
        let semaphore = memkit
            .timeline_semaphore()
            .expect("timeline semaphores are enabled");
        let semaphores = [semaphore];
        let values = [wait_value];
        let stages = [vk::PipelineStageFlags::TRANSFER];
        let cmds = [cmd];
        let signals = signal.map(|(semaphore, _)| [semaphore]);
        let signal_values = signal.map(|(_, value)| [value]);
        let mut timeline = vk::TimelineSemaphoreSubmitInfo::default();
        let mut submit = vk::SubmitInfo::default().command_buffers(&cmds);
        if wait_value > 0 {
            timeline = timeline.wait_semaphore_values(&values);
            submit = submit
                .wait_semaphores(&semaphores)
                .wait_dst_stage_mask(&stages);
        }
        if let (Some(signals), Some(values)) = (&signals, &signal_values) {
            timeline = timeline.signal_semaphore_values(values);
            submit = submit.signal_semaphores(signals);
        }
        if wait_value > 0 || signal.is_some() {
            submit = submit.push_next(&mut timeline);
        }
        let fence = self.fences[slot];
        let go = |queue: vk::Queue| {
            // SAFETY: the queue is the engine's for the call (memkit's lock is held when it is
            // memkit's transfer queue); the command buffer is executable and the fence unsignalled.
            unsafe { device.queue_submit(queue, &[submit], fence) }.unwrap();
        };
        if engine.shares_queue() {
            memkit.with_transfer_queue(go);
        } else {
            go(engine.graphics_queue);
        }
        self.in_flight[slot] = true;
    }

    /// The read-back buffer's bytes, once every submission was waited for.
    fn read(&self, engine: &Engine) -> Vec<u8> {
        assert!(!self.in_flight.contains(&true));
        if !self.readback_coherent {
            let range = vk::MappedMemoryRange::default()
                .memory(self.readback_memory)
                .size(vk::WHOLE_SIZE);
            // SAFETY: the memory is mapped whole.
            unsafe { engine.device.invalidate_mapped_memory_ranges(&[range]) }.unwrap();
        }
        // SAFETY: the mapping covers `READ_BYTES`; every copy into it completed (no slot in
        // flight) and was made visible to the host.
        unsafe { std::slice::from_raw_parts(self.mapped, READ_BYTES) }.to_vec()
    }

    fn destroy(mut self, engine: &Engine) {
        for slot in 0..FRAMES_IN_FLIGHT {
            self.wait(engine, slot);
        }
        // SAFETY: nothing is pending (waited above); freeing the memory unmaps it.
        unsafe {
            let device = &engine.device;
            device.destroy_buffer(self.readback, None);
            device.free_memory(self.readback_memory, None);
            for &fence in &self.fences {
                device.destroy_fence(fence, None);
            }
            device.destroy_command_pool(self.pool, None);
        }
    }
}

/// A coordinator over the engine's device, triple-buffered, with a 1 MiB staging ring.
fn coordinator_for(engine: &Engine) -> Coordinator<VulkanDevice> {
    coordinator_with(engine, CoordinatorConfig::default())
}

/// [`coordinator_for`] with `config`'s other settings.
fn coordinator_with(engine: &Engine, config: CoordinatorConfig) -> Coordinator<VulkanDevice> {
    // SAFETY: the device comes from this instance and physical device, and outlives `memkit`
    // (the engine destroys it only after the coordinator, its buffers and tickets are gone);
    // the engine submits to memkit's queue only through `with_transfer_queue`; `enabled` is
    // what the device was created with.
    let memkit = unsafe {
        VulkanDevice::new(
            &engine.instance,
            engine.physical_device,
            &engine.device,
            engine.memkit_config(),
        )
    }
    .unwrap();
    let config = CoordinatorConfig {
        buffering: BufferingMode::Triple,
        staging_ring_size: 1 << 20,
        ..config
    };
    Coordinator::new(memkit, config).unwrap()
}

/// The highest timeline value among `tickets`: every one is submitted (the engine flushed).
fn submitted_value(tickets: &[&Ticket]) -> u64 {
    tickets
        .iter()
        .map(|t| t.value().expect("submitted by the flush"))
        .max()
        .unwrap_or(0)
}

/// Runs `test` on an engine made with each queue plan (the same queues where the device has
/// no other), or on none where the machine has no Vulkan device.
fn on_every_plan(test: fn(Engine)) {
    for plan in PLANS {
        let Some(engine) = Engine::new(plan) else {
            return;
        };
        eprintln!(
            "{plan:?}: graphics queue {:?}, memkit's queue {:?}",
            engine.graphics, engine.transfer
        );
        test(engine);
    }
}

/// Fails with every message the validation layer reported, if it reported any.
fn assert_no_validation_messages(messages: &[String]) {
    assert!(
        messages.is_empty(),
        "validation reported {} message(s):\n{}",
        messages.len(),
        messages.join("\n")
    );
}

#[test]
fn uploads_reach_the_engines_own_graphics_submissions_byte_for_byte() {
    on_every_plan(render_frames);
}

/// Uploads a mesh and `FRAMES` frames of uniforms through a coordinator over the engine's
/// device, copies each into the engine's read-back buffer on its graphics queue, checks every
/// byte, and tears everything down.
fn render_frames(engine: Engine) {
    let coordinator = coordinator_for(&engine);
    // The engine keeps using the device through the coordinator's reference.
    let memkit = coordinator.device();
    assert!(memkit.timeline_semaphore().is_some());
    let mut frames = EngineFrames::new(&engine);

    // The mesh: vertices in a new buffer (written straight into it where its memory is
    // host-visible, lavapipe's), indices into a device buffer (always staged and copied).
    let vertex_bytes = pattern(VERTEX_BYTES, 11);
    let (vertices, vertices_uploaded) = coordinator.upload_slice(&vertex_bytes).unwrap();
    let mut index_words: Vec<u32> = (0..INDEX_COUNT as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 1024)
        .collect();
    let indices = coordinator
        .create_buffer(INDEX_BYTES as u64, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    indices.set_label("mesh indices");
    let indices_uploaded = coordinator.upload_to(&indices, 0, &index_words).unwrap();
    assert!(!indices.is_direct_write());
    let index_bytes: Vec<u8> = index_words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let patch_words: Vec<u32> = (0..(PATCH_BYTES / 4) as u32)
        .map(|i| 0xA500_0000 | i)
        .collect();
    let patch_at = PATCH_OFFSET / 4;
    index_words[patch_at..patch_at + patch_words.len()].copy_from_slice(&patch_words);
    let patched_bytes: Vec<u8> = index_words.iter().flat_map(|w| w.to_ne_bytes()).collect();

    // One uniform buffer per frame slot, written by memkit's copies and read by the engine's.
    let uniforms: Vec<Buffer<VulkanDevice>> = (0..FRAMES_IN_FLIGHT)
        .map(|_| {
            coordinator
                .create_buffer(UNIFORM_BYTES as u64, MemoryUsage::FAST_DEVICE_ACCESS)
                .unwrap()
        })
        .collect();
    let mut tickets = Vec::new();
    for f in 0..FRAMES {
        let slot = f % FRAMES_IN_FLIGHT;
        // The engine's pacing: its last read of this slot's uniforms (and its command buffer)
        // is done before memkit copies into them again.
        frames.wait(&engine, slot);
        let frame = coordinator.begin_frame().unwrap();
        assert_eq!((frame.number(), frame.slot()), (f as u64, slot));
        let block = frame
            .alloc_slice(&pattern(UNIFORM_BYTES, 100 + f as u8))
            .unwrap();
        frame
            .stage_slice_for_upload(block, &uniforms[slot], 0)
            .unwrap();
        let patch = (f == PATCH_FRAME).then(|| {
            // The engine's read of the indices in frame 0 completed (its slot was waited for).
            coordinator
                .upload_to(&indices, PATCH_OFFSET as u64, &patch_words)
                .unwrap()
        });
        let frame_done = coordinator.end_frame(frame).unwrap();
        let mut copies = vec![(
            uniforms[slot].raw(),
            0,
            UNIFORM_BYTES,
            READ_UNIFORMS + f * UNIFORM_BYTES,
        )];
        let mut waits = vec![&frame_done];
        if f == 0 {
            copies.push((vertices.raw(), 0, VERTEX_BYTES, READ_VERTICES));
            copies.push((indices.raw(), 0, INDEX_BYTES, READ_INDICES));
            waits.extend([&vertices_uploaded, &indices_uploaded]);
        }
        if let Some(patch) = &patch {
            copies.push((indices.raw(), 0, INDEX_BYTES, READ_PATCHED_INDICES));
            waits.push(patch);
        }
        let wait_value = submitted_value(&waits);
        assert!(
            wait_value > 0,
            "frame {f}'s uniforms were staged and copied"
        );
        frames.submit(&engine, memkit, slot, &copies, wait_value, None);
        tickets.push(frame_done);
        tickets.extend(patch);
    }
    if vertices.is_direct_write() {
        // Written by the CPU: nothing for the GPU to wait for.
        assert_eq!(vertices_uploaded.value(), Some(0));
    }
    for slot in 0..FRAMES_IN_FLIGHT {
        frames.wait(&engine, slot);
    }
    // The engine's submissions waited on the GPU for memkit's values, so memkit's tickets are
    // complete once the engine's fences are.
    for ticket in tickets
        .iter()
        .chain([&vertices_uploaded, &indices_uploaded])
    {
        assert!(ticket.is_complete().unwrap(), "{ticket:?}");
    }

    let read = frames.read(&engine);
    assert!(
        read[READ_VERTICES..][..VERTEX_BYTES] == vertex_bytes[..],
        "vertex bytes differ"
    );
    assert!(
        read[READ_INDICES..][..INDEX_BYTES] == index_bytes[..],
        "index bytes differ"
    );
    assert!(
        read[READ_PATCHED_INDICES..][..INDEX_BYTES] == patched_bytes[..],
        "patched index bytes differ"
    );
    for f in 0..FRAMES {
        let at = READ_UNIFORMS + f * UNIFORM_BYTES;
        assert!(
            read[at..][..UNIFORM_BYTES] == pattern(UNIFORM_BYTES, 100 + f as u8)[..],
            "frame {f}'s uniforms differ"
        );
    }
    let stats = coordinator.stats();
    assert_eq!(stats.frames, FRAMES as u64);
    // Every uniform block, the indices and their patch were staged; the vertices were either.
    assert_eq!(
        stats.staged_uploads + stats.direct_writes,
        FRAMES as u64 + 3
    );
    assert_eq!(stats.completed_value, stats.submitted_value);

    // Teardown: the engine's own work first (waited above), then memkit's handles, the
    // coordinator (which drops the `VulkanDevice`, its semaphore and command pool with it once
    // no buffer or ticket holds it), and last the engine's device and instance.
    frames.destroy(&engine);
    drop((vertices, indices, uniforms, tickets));
    drop((vertices_uploaded, indices_uploaded));
    // Every memory object memkit-vulkan holds is one the coordinator's pools report (blocks kept
    // for reuse, the staging ring's dedicated memory), and nothing else.
    coordinator.maintain().unwrap();
    let heaps = coordinator.stats().heaps;
    let pooled: u64 = heaps
        .iter()
        .map(|h| u64::from(h.blocks) + u64::from(h.dedicated_objects))
        .sum();
    assert_eq!(
        u64::from(coordinator.device().live_memory_objects()),
        pooled
    );
    assert!(pooled >= 2, "a block and the staging ring");
    let (stats, memkit) = coordinator.shutdown_into_device();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    assert_eq!(stats.buffers_created, 2 + FRAMES_IN_FLIGHT as u64);
    // The device comes back: no buffer or ticket holds it. Nothing is left on it but the
    // semaphore and command pool it destroys when dropped, here, before the engine's device.
    let memkit = memkit.expect("a buffer or ticket still held memkit's device");
    assert_eq!(memkit.live_memory_objects(), 0);
    drop(memkit);
    // SAFETY: the coordinator is gone with every buffer and ticket, and its `VulkanDevice` was
    // dropped; the engine's own objects are destroyed. The validation layer reports any object
    // left on the device (memkit's memory, buffers, pool or semaphore) when it is destroyed.
    let messages = unsafe { engine.destroy() };
    assert_no_validation_messages(&messages);
}

#[test]
fn frame_constants_in_transient_memory_reach_the_engines_submissions_byte_for_byte() {
    on_every_plan(transient_constants);
}

/// `FRAMES` frames of per-draw constants written into the frames' transient memory
/// (`Frame::transient_slice`), read in place by the engine's own submissions (a copy of each
/// block, standing for a draw's uniform read at a dynamic offset), each submission signalling
/// the engine's timeline semaphore at the frame's value (`Frame::gpu_done_at`). Every byte is
/// checked, chunks come back once the engine's timeline passed their frames, and teardown
/// leaves nothing on the device.
fn transient_constants(engine: Engine) {
    let device = &engine.device;
    let mut kind = vk::SemaphoreTypeCreateInfo::default()
        .semaphore_type(vk::SemaphoreType::TIMELINE)
        .initial_value(0);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
    // SAFETY: a valid create info on a live device with timeline semaphores enabled.
    let engine_timeline = unsafe { device.create_semaphore(&info, None) }.unwrap();
    // Chunks of 1 KiB: five of a frame's 200-byte blocks each, so every frame takes two.
    let config = CoordinatorConfig {
        transient_chunk_size: 1024,
        ..CoordinatorConfig::default()
    };
    let coordinator = coordinator_with(&engine, config);
    let memkit = coordinator.device();
    let alignment = memkit.limits().min_buffer_offset_alignment;
    let mut frames = EngineFrames::new(&engine);
    let block = |f: usize, d: usize| pattern(TRANSIENT_BYTES, (f * TRANSIENT_DRAWS + d) as u8);
    let mut most_held = 0;
    for f in 0..FRAMES {
        let slot = f % FRAMES_IN_FLIGHT;
        frames.wait(&engine, slot);
        let frame = coordinator.begin_frame().unwrap();
        // SAFETY: the engine's semaphore outlives the coordinator (destroyed after its
        // shutdown below), and the submission below signals the frame's value after its reads.
        unsafe { frame.gpu_done_at(engine_timeline, f as u64 + 1) }.unwrap();
        let copies: Vec<_> = (0..TRANSIENT_DRAWS)
            .map(|d| {
                let slice = frame.transient_slice(&block(f, d)).unwrap();
                assert_eq!(slice.offset() % alignment, 0);
                let at = READ_TRANSIENT + (f * TRANSIENT_DRAWS + d) * TRANSIENT_BYTES;
                (slice.buffer(), slice.offset() as usize, TRANSIENT_BYTES, at)
            })
            .collect();
        // The host's writes are visible to work submitted after them: nothing to wait for.
        let signal = Some((engine_timeline, f as u64 + 1));
        frames.submit(&engine, memkit, slot, &copies, 0, signal);
        coordinator.end_frame(frame).unwrap();
        most_held = most_held.max(coordinator.stats().transient_chunks);
    }
    for slot in 0..FRAMES_IN_FLIGHT {
        frames.wait(&engine, slot);
    }
    let read = frames.read(&engine);
    for f in 0..FRAMES {
        for d in 0..TRANSIENT_DRAWS {
            let at = READ_TRANSIENT + (f * TRANSIENT_DRAWS + d) * TRANSIENT_BYTES;
            assert!(
                read[at..][..TRANSIENT_BYTES] == block(f, d)[..],
                "frame {f}'s block {d} differs"
            );
        }
    }
    let stats = coordinator.stats();
    assert_eq!(stats.transient_slices, (FRAMES * TRANSIENT_DRAWS) as u64);
    // Two chunks a frame; the engine waits for a slot's last frame before reusing the slot, so
    // at most the four latest frames hold chunks: chunks of finished frames were written again.
    assert!(
        most_held <= 2 * 4 && most_held < 2 * FRAMES as u64,
        "{most_held} chunks held at most"
    );

    frames.destroy(&engine);
    let (stats, memkit) = coordinator.shutdown_into_device();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.transient_chunks, 0);
    let memkit = memkit.expect("nothing else holds memkit's device");
    assert_eq!(memkit.live_memory_objects(), 0);
    drop(memkit);
    // SAFETY: every submission that signals it completed (the engine's fences were waited for).
    unsafe { engine.device.destroy_semaphore(engine_timeline, None) };
    // SAFETY: as at the end of `render_frames`.
    let messages = unsafe { engine.destroy() };
    assert_no_validation_messages(&messages);
}

/// The render target the engine draws: RGBA8, cleared to `BACKGROUND` with `FOREGROUND` drawn
/// over `RECT` (x, y, width, height). Colours convert to bytes exactly (k / 255 each).
const TARGET_WIDTH: u32 = 32;
const TARGET_HEIGHT: u32 = 16;
const BACKGROUND: [f32; 4] = [1.0, 0.2, 0.0, 1.0];
const BACKGROUND_BYTES: [u8; 4] = [255, 51, 0, 255];
const FOREGROUND: [f32; 4] = [0.0, 0.6, 1.0, 0.2];
const FOREGROUND_BYTES: [u8; 4] = [0, 153, 255, 51];
const RECT: [u32; 4] = [5, 3, 12, 7];

/// The target's texels after the engine's pass, row after row.
fn drawing() -> Vec<u8> {
    let [x0, y0, w, h] = RECT;
    (0..TARGET_HEIGHT)
        .flat_map(|y| (0..TARGET_WIDTH).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let inside = (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y);
            if inside {
                FOREGROUND_BYTES
            } else {
                BACKGROUND_BYTES
            }
        })
        .collect()
}

/// The engine's pass over a render target: a render pass that clears it and leaves it in
/// `SHADER_READ_ONLY_OPTIMAL` (memkit's layout after upload for a sampled image), a draw of the
/// rectangle (`vkCmdClearAttachments`), and the submission that signals the engine's timeline.
struct DrawPass {
    render_pass: vk::RenderPass,
    view: vk::ImageView,
    framebuffer: vk::Framebuffer,
    commands: AppCommands,
    /// The engine's timeline semaphore, signalled by the pass.
    frame_done: vk::Semaphore,
}

impl DrawPass {
    fn new(engine: &Engine, image: vk::Image) -> Self {
        let device = &engine.device;
        let attachment = [vk::AttachmentDescription::default()
            .format(vk::Format::R8G8B8A8_UNORM)
            .samples(vk::SampleCountFlags::TYPE_1)
            .load_op(vk::AttachmentLoadOp::CLEAR)
            .store_op(vk::AttachmentStoreOp::STORE)
            .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
            .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .final_layout(vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL)];
        let color = [vk::AttachmentReference::default()
            .attachment(0)
            .layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)];
        let subpass = [vk::SubpassDescription::default()
            .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
            .color_attachments(&color)];
        let pass_info = vk::RenderPassCreateInfo::default()
            .attachments(&attachment)
            .subpasses(&subpass);
        let range = vk::ImageSubresourceRange::default()
            .aspect_mask(vk::ImageAspectFlags::COLOR)
            .level_count(1)
            .layer_count(1);
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(vk::Format::R8G8B8A8_UNORM)
            .subresource_range(range);
        let mut kind = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let semaphore_info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
        // SAFETY: valid create infos on a live device with timeline semaphores enabled; the
        // image is alive, 2D, RGBA8 with `COLOR_ATTACHMENT`, one level and one layer, and
        // outlives the view and the framebuffer (destroyed first, in `destroy`).
        unsafe {
            let render_pass = device.create_render_pass(&pass_info, None).unwrap();
            let view = device.create_image_view(&view_info, None).unwrap();
            let views = [view];
            let framebuffer_info = vk::FramebufferCreateInfo::default()
                .render_pass(render_pass)
                .attachments(&views)
                .width(TARGET_WIDTH)
                .height(TARGET_HEIGHT)
                .layers(1);
            let framebuffer = device.create_framebuffer(&framebuffer_info, None).unwrap();
            let frame_done = device.create_semaphore(&semaphore_info, None).unwrap();
            Self {
                render_pass,
                view,
                framebuffer,
                commands: AppCommands::on_family(device, engine.graphics.family),
                frame_done,
            }
        }
    }

    /// Records the pass and submits it on the graphics queue, signalling `value` on
    /// `frame_done`.
    fn submit(&self, engine: &Engine, memkit: &VulkanDevice, value: u64) {
        let device = &engine.device;
        let area = vk::Rect2D::default().extent(vk::Extent2D {
            width: TARGET_WIDTH,
            height: TARGET_HEIGHT,
        });
        let clear = [vk::ClearValue {
            color: vk::ClearColorValue {
                float32: BACKGROUND,
            },
        }];
        let begin_pass = vk::RenderPassBeginInfo::default()
            .render_pass(self.render_pass)
            .framebuffer(self.framebuffer)
            .render_area(area)
            .clear_values(&clear);
        let [x, y, width, height] = RECT;
        let draw = [vk::ClearAttachment {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            color_attachment: 0,
            clear_value: vk::ClearValue {
                color: vk::ClearColorValue {
                    float32: FOREGROUND,
                },
            },
        }];
        let rect = [vk::ClearRect {
            rect: vk::Rect2D {
                offset: vk::Offset2D {
                    x: x as i32,
                    y: y as i32,
                },
                extent: vk::Extent2D { width, height },
            },
            base_array_layer: 0,
            layer_count: 1,
        }];
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the command buffer is new (never submitted); the render pass, framebuffer and
        // its view are alive; the rectangle lies inside the render area.
        unsafe {
            device
                .begin_command_buffer(self.commands.cmd, &begin)
                .unwrap();
            device.cmd_begin_render_pass(
                self.commands.cmd,
                &begin_pass,
                vk::SubpassContents::INLINE,
            );
            device.cmd_clear_attachments(self.commands.cmd, &draw, &rect);
            device.cmd_end_render_pass(self.commands.cmd);
            device.end_command_buffer(self.commands.cmd).unwrap();
        }
        let semaphores = [self.frame_done];
        let values = [value];
        let cmds = [self.commands.cmd];
        let mut timeline =
            vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&values);
        let submit = vk::SubmitInfo::default()
            .command_buffers(&cmds)
            .signal_semaphores(&semaphores)
            .push_next(&mut timeline);
        let go = |queue: vk::Queue| {
            // SAFETY: the queue is the engine's for the call (memkit's lock is held when it is
            // memkit's transfer queue); the command buffer is executable, the fence unsignalled
            // and the value above the semaphore's.
            unsafe { device.queue_submit(queue, &[submit], self.commands.fence) }.unwrap();
        };
        if engine.shares_queue() {
            memkit.with_transfer_queue(go);
        } else {
            go(engine.graphics_queue);
        }
    }

    /// Waits for the pass, and destroys what it made but the semaphore (destroyed by
    /// `destroy_semaphore`, once memkit's submissions that waited for it completed).
    fn destroy(self, engine: &Engine) -> vk::Semaphore {
        let device = &engine.device;
        // SAFETY: the pass was submitted with the fence; once it signalled nothing uses the
        // objects destroyed here.
        unsafe {
            device
                .wait_for_fences(&[self.commands.fence], true, 10 * SECOND)
                .unwrap();
            device.destroy_framebuffer(self.framebuffer, None);
            device.destroy_image_view(self.view, None);
            device.destroy_render_pass(self.render_pass, None);
        }
        self.commands.destroy_on(device);
        self.frame_done
    }
}

#[test]
fn a_render_target_the_engine_drew_reads_back_through_memkit_byte_for_byte() {
    on_every_plan(read_back_drawing);
}

/// The engine draws into a render target memkit made; memkit reads it back after the engine's
/// frame, then uploads two rows into it and reads it again.
fn read_back_drawing(engine: Engine) {
    let coordinator = coordinator_for(&engine);
    let memkit = coordinator.device();
    let usage = ImageUsage::COLOR_ATTACHMENT
        | ImageUsage::SAMPLED
        | ImageUsage::TRANSFER_SRC
        | ImageUsage::TRANSFER_DST;
    let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, TARGET_WIDTH, TARGET_HEIGHT, usage);
    let target = coordinator
        .create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    assert_eq!(
        target.layout_after_upload(),
        ImageLayout::ShaderReadOnlyOptimal
    );
    let whole = [ImageCopy::whole_level(&desc, 0, 0)];
    assert_eq!(
        coordinator.read_back_image(&target, &whole).err(),
        Some(Error::ImageNotWritten)
    );

    let pass = DrawPass::new(&engine, target.raw());
    pass.submit(&engine, memkit, 1);
    // SAFETY: the semaphore is a timeline of memkit's device, alive until every submission of
    // memkit's completed (destroyed after the coordinator's shutdown); the pass signals 1.
    let after_frame = unsafe { coordinator.wait_for_external(pass.frame_done, 1) }.unwrap();
    // SAFETY: the pass draws the whole (single) subresource and its render pass leaves it in
    // `SHADER_READ_ONLY_OPTIMAL`, the layout after upload; memkit's later submissions wait for
    // the pass's signal, which makes its writes available; the image is concurrent with the
    // graphics family where memkit copies in another one, else in the family both use.
    unsafe { target.mark_written() };
    let drawn = coordinator.read_back_image(&target, &whole).unwrap();
    assert!(drawn.wait().unwrap() == drawing(), "the drawing differs");
    assert!(after_frame.is_complete().unwrap());

    // Two rows uploaded over the drawing keep the rest of it.
    let rows = ImageCopy {
        offset: [0, 10, 0],
        extent: [TARGET_WIDTH, 2, 1],
        ..whole[0]
    };
    let row_bytes = (TARGET_WIDTH * 4) as usize;
    let patch = pattern(2 * row_bytes, 77);
    coordinator.upload_image(&target, &[rows], &patch).unwrap();
    let patched_read = coordinator.read_back_image(&target, &whole).unwrap();
    let mut patched = drawing();
    patched[10 * row_bytes..12 * row_bytes].copy_from_slice(&patch);
    assert!(
        patched_read.wait().unwrap() == patched,
        "the patched drawing differs"
    );

    // Teardown: the engine's pass (waited for), the image, the coordinator, then the semaphore
    // memkit waited on, and last the engine's device.
    let frame_done = pass.destroy(&engine);
    drop((target, after_frame));
    let (stats, memkit) = coordinator.shutdown_into_device();
    assert_eq!((stats.leaked_buffers, stats.leaked_images), (0, 0));
    assert_eq!((stats.images_created, stats.images_destroyed), (1, 1));
    assert_eq!((stats.read_backs, stats.image_uploads), (2, 1));
    drop(memkit.expect("nothing holds memkit's device"));
    // SAFETY: every submission that waited for it completed (the coordinator shut down).
    unsafe { engine.device.destroy_semaphore(frame_done, None) };
    // SAFETY: the coordinator and its device are gone; the engine's objects are destroyed.
    let messages = unsafe { engine.destroy() };
    assert_no_validation_messages(&messages);
}
