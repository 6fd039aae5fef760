//! A raw ash device of its own for the `import` and `queues` sections, on the headless device's
//! instance and physical device: every queue of every family that can copy (at most
//! [`MAX_QUEUES`] a family), `VK_EXT_external_memory_host` when the driver has it, buffers
//! concurrent between all those families (no ownership transfers), and copies split into parts,
//! each part its own command buffer, submission and fence, all waited together.
//!
//! memkit's headless device creates one queue a family and no external-memory extension; these
//! experiments need both and nothing in memkit uses them yet, so they stay in the bench.

use std::time::Instant;

use ash::vk;
use memkit_tests::bench_report::median;
use memkit_vulkan::HeadlessDevice;

use super::BIG;

/// Queues created per family, at most.
const MAX_QUEUES: u32 = 8;

/// A queue family this device created queues of.
pub(super) struct Family {
    /// Its index on the physical device.
    pub index: u32,
    pub flags: vk::QueueFlags,
    pub queues: Vec<vk::Queue>,
    /// How many queues the family offers (`queues` holds at most [`MAX_QUEUES`] of them).
    pub offered: u32,
    /// Command buffers of copies on this family's queues.
    pool: vk::CommandPool,
}

impl Family {
    /// Transfer-only: the dedicated copy engines.
    fn transfer_only(&self) -> bool {
        !self
            .flags
            .intersects(vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE)
    }
}

/// A queue: its family's position in [`RawDevice::families`] and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct QueueId {
    pub family: usize,
    pub index: usize,
}

/// A buffer and the memory it is bound to (the whole object).
pub(super) struct RawBuffer {
    pub buffer: vk::Buffer,
    pub memory: vk::DeviceMemory,
}

/// One submission of a split copy: its queue and its regions.
pub(super) struct Part {
    pub queue: QueueId,
    pub regions: Vec<vk::BufferCopy>,
}

/// What a split copy runs: per part a recorded command buffer and a fence.
pub(super) struct Recorded {
    parts: Vec<(QueueId, vk::CommandBuffer, vk::Fence)>,
}

/// `VK_EXT_external_memory_host`, when enabled.
pub(super) struct HostImport {
    functions: ash::ext::external_memory_host::Device,
    /// `minImportedHostPointerAlignment`: imported pointers and sizes are multiples of it.
    pub alignment: u64,
}

pub(super) struct RawDevice<'a> {
    instance: &'a ash::Instance,
    physical: vk::PhysicalDevice,
    pub device: ash::Device,
    memory: vk::PhysicalDeviceMemoryProperties,
    pub families: Vec<Family>,
    pub host_import: Option<HostImport>,
    /// Where clears and read-backs run: queue 0 of the first graphics or compute family.
    main: QueueId,
    main_cmd: vk::CommandBuffer,
    main_fence: vk::Fence,
    /// BIG bytes of host-visible coherent memory (cached when there is such), mapped for good.
    readback: RawBuffer,
    readback_bytes: *const u8,
}

impl<'a> RawDevice<'a> {
    pub(super) fn new(h: &'a HeadlessDevice) -> Self {
        let instance = h.instance();
        let physical = h.device().physical_device();
        // SAFETY: the physical device belongs to the instance.
        let offered = unsafe { instance.get_physical_device_queue_family_properties(physical) };
        let copies = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE | vk::QueueFlags::TRANSFER;
        let chosen: Vec<(u32, vk::QueueFamilyProperties)> = offered
            .iter()
            .enumerate()
            .filter(|(_, f)| f.queue_flags.intersects(copies) && f.queue_count > 0)
            .map(|(i, f)| (i as u32, *f))
            .collect();
        let priorities = [1.0f32; MAX_QUEUES as usize];
        let queue_infos: Vec<vk::DeviceQueueCreateInfo<'_>> = chosen
            .iter()
            .map(|(i, f)| {
                vk::DeviceQueueCreateInfo::default()
                    .queue_family_index(*i)
                    .queue_priorities(&priorities[..f.queue_count.min(MAX_QUEUES) as usize])
            })
            .collect();
        // SAFETY: as above.
        let extensions = unsafe { instance.enumerate_device_extension_properties(physical) }
            .expect("device extensions");
        let import_name = ash::ext::external_memory_host::NAME;
        let has_import = extensions
            .iter()
            .any(|e| e.extension_name_as_c_str() == Ok(import_name));
        // VK_KHR_external_memory, which it extends, is core in Vulkan 1.1 (the headless device's
        // minimum).
        let enabled = if has_import {
            vec![import_name.as_ptr()]
        } else {
            Vec::new()
        };
        let info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_infos)
            .enabled_extension_names(&enabled);
        // SAFETY: the queues and the extension exist on this physical device; destroyed in
        // `destroy`, before the instance (the headless device outlives `self`).
        let device = unsafe { instance.create_device(physical, &info, None) }.expect("raw device");
        // SAFETY: as above.
        let memory = unsafe { instance.get_physical_device_memory_properties(physical) };
        let host_import = has_import.then(|| {
            let mut props = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
            let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut props);
            // SAFETY: the extension is supported, so its property structure may be chained.
            unsafe { instance.get_physical_device_properties2(physical, &mut props2) };
            HostImport {
                functions: ash::ext::external_memory_host::Device::new(instance, &device),
                alignment: props.min_imported_host_pointer_alignment,
            }
        });
        let families: Vec<Family> = chosen
            .iter()
            .map(|(i, f)| {
                let count = f.queue_count.min(MAX_QUEUES);
                // SAFETY: the queues were created above; the pool is destroyed in `destroy`.
                unsafe {
                    Family {
                        index: *i,
                        flags: f.queue_flags,
                        queues: (0..count).map(|q| device.get_device_queue(*i, q)).collect(),
                        offered: f.queue_count,
                        pool: device
                            .create_command_pool(
                                // Reset: the main family's one command buffer is
                                // re-recorded for every clear and read-back.
                                &vk::CommandPoolCreateInfo::default()
                                    .queue_family_index(*i)
                                    .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER),
                                None,
                            )
                            .expect("command pool"),
                    }
                }
            })
            .collect();
        let main = QueueId {
            family: families
                .iter()
                .position(|f| !f.transfer_only())
                .unwrap_or(0),
            index: 0,
        };
        // SAFETY: a pool of this device; freed with it.
        let main_cmd = unsafe {
            device.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(families[main.family].pool)
                    .command_buffer_count(1),
            )
        }
        .expect("command buffer")[0];
        // SAFETY: destroyed in `destroy`.
        let main_fence =
            unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }.expect("fence");
        let mut raw = Self {
            instance,
            physical,
            device,
            memory,
            families,
            host_import,
            main,
            main_cmd,
            main_fence,
            readback: RawBuffer {
                buffer: vk::Buffer::null(),
                memory: vk::DeviceMemory::null(),
            },
            readback_bytes: std::ptr::null(),
        };
        let coherent =
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        // Cached, where there is such, so that comparing 256 MiB does not read uncached memory.
        raw.readback = raw
            .bound(
                vk::BufferUsageFlags::TRANSFER_DST,
                coherent | vk::MemoryPropertyFlags::HOST_CACHED,
                vk::MemoryPropertyFlags::DEVICE_LOCAL,
            )
            .unwrap_or_else(|| {
                raw.bound(
                    vk::BufferUsageFlags::TRANSFER_DST,
                    coherent,
                    vk::MemoryPropertyFlags::empty(),
                )
                .expect("host-visible coherent memory")
            });
        // SAFETY: host-visible, mapped once, for the device's life (freeing it unmaps it).
        raw.readback_bytes = unsafe {
            raw.device.map_memory(
                raw.readback.memory,
                0,
                vk::WHOLE_SIZE,
                vk::MemoryMapFlags::empty(),
            )
        }
        .expect("map the read-back buffer") as *const u8;
        raw
    }

    /// One line: every family created, with its queue count and flags.
    pub(super) fn describe(&self) -> String {
        let families: Vec<String> = self
            .families
            .iter()
            .map(|f| {
                format!(
                    "family {}: {} of {} queue(s) {:?}",
                    f.index,
                    f.queues.len(),
                    f.offered,
                    f.flags
                )
            })
            .collect();
        families.join("; ")
    }

    /// `f<family>q<index>`, for notes.
    pub(super) fn name(&self, q: QueueId) -> String {
        format!("f{}q{}", self.families[q.family].index, q.index)
    }

    /// Queue 0 of the first transfer-only family, else of the main family.
    pub(super) fn transfer_queue(&self) -> QueueId {
        let family = self
            .families
            .iter()
            .position(Family::transfer_only)
            .unwrap_or(self.main.family);
        QueueId { family, index: 0 }
    }

    /// Every queue created, spread across families: queue 0 of each family (transfer-only
    /// families first, then compute-only, then the rest), then queue 1 of each, and so on.
    pub(super) fn spread(&self) -> Vec<QueueId> {
        let rank = |f: &Family| {
            if f.transfer_only() {
                0
            } else if !f.flags.contains(vk::QueueFlags::GRAPHICS) {
                1
            } else {
                2
            }
        };
        let mut order: Vec<usize> = (0..self.families.len()).collect();
        order.sort_by_key(|&i| rank(&self.families[i]));
        let rounds = self
            .families
            .iter()
            .map(|f| f.queues.len())
            .max()
            .unwrap_or(0);
        (0..rounds)
            .flat_map(|index| {
                order
                    .iter()
                    .filter(move |&&family| index < self.families[family].queues.len())
                    .map(move |&family| QueueId { family, index })
            })
            .collect()
    }

    /// Family indices buffers are shared between.
    fn family_indices(&self) -> Vec<u32> {
        self.families.iter().map(|f| f.index).collect()
    }

    /// An unbound buffer of BIG bytes, concurrent between every family; importable from host
    /// memory when `importable`.
    pub(super) fn buffer(&self, usage: vk::BufferUsageFlags, importable: bool) -> vk::Buffer {
        let indices = self.family_indices();
        let mut external = vk::ExternalMemoryBufferCreateInfo::default()
            .handle_types(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
        let mut info = vk::BufferCreateInfo::default().size(BIG).usage(usage);
        info = if indices.len() > 1 {
            info.sharing_mode(vk::SharingMode::CONCURRENT)
                .queue_family_indices(&indices)
        } else {
            info.sharing_mode(vk::SharingMode::EXCLUSIVE)
        };
        if importable {
            info = info.push_next(&mut external);
        }
        // SAFETY: a valid create info (the handle type is chained only when the extension is
        // enabled: see `import`); the caller destroys the buffer.
        unsafe { self.device.create_buffer(&info, None) }.expect("buffer")
    }

    /// The first memory type in `bits` with `want` and without `avoid`.
    fn pick(
        &self,
        bits: u32,
        want: vk::MemoryPropertyFlags,
        avoid: vk::MemoryPropertyFlags,
    ) -> Option<u32> {
        let types = &self.memory.memory_types[..self.memory.memory_type_count as usize];
        (0..types.len() as u32).find(|&i| {
            let flags = types[i as usize].property_flags;
            bits & (1 << i) != 0 && flags.contains(want) && !flags.intersects(avoid)
        })
    }

    /// The property flags of memory type `index`.
    pub(super) fn type_flags(&self, index: u32) -> vk::MemoryPropertyFlags {
        self.memory.memory_types[index as usize].property_flags
    }

    /// A BIG-byte buffer bound to a memory object of its own, of the first type with `want` and
    /// without `avoid`; `None` when there is no such type.
    pub(super) fn bound(
        &self,
        usage: vk::BufferUsageFlags,
        want: vk::MemoryPropertyFlags,
        avoid: vk::MemoryPropertyFlags,
    ) -> Option<RawBuffer> {
        let buffer = self.buffer(usage, false);
        // SAFETY: the buffer is alive.
        let req = unsafe { self.device.get_buffer_memory_requirements(buffer) };
        let Some(memory_type) = self.pick(req.memory_type_bits, want, avoid) else {
            // SAFETY: never bound or used.
            unsafe { self.device.destroy_buffer(buffer, None) };
            return None;
        };
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(memory_type);
        // SAFETY: a type the requirements allow; bound at offset 0 to an object of the required
        // size; the caller frees both (`free`).
        unsafe {
            let memory = self.device.allocate_memory(&info, None).expect("memory");
            self.device
                .bind_buffer_memory(buffer, memory, 0)
                .expect("bind");
            Some(RawBuffer { buffer, memory })
        }
    }

    /// Destroys a buffer and frees its memory.
    ///
    /// # Safety
    /// Every use was waited.
    pub(super) unsafe fn free(&self, b: RawBuffer) {
        // SAFETY: the caller's contract.
        unsafe {
            self.device.destroy_buffer(b.buffer, None);
            self.device.free_memory(b.memory, None);
        }
    }

    /// Whether a transfer-source buffer can be bound to imported host allocations, or why not.
    pub(super) fn can_import(&self) -> Result<(), String> {
        if self.host_import.is_none() {
            return Err("the driver lacks VK_EXT_external_memory_host".into());
        }
        let info = vk::PhysicalDeviceExternalBufferInfo::default()
            .usage(vk::BufferUsageFlags::TRANSFER_SRC)
            .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
        let mut props = vk::ExternalBufferProperties::default();
        // SAFETY: Vulkan 1.1 (core there); the physical device belongs to the instance.
        unsafe {
            self.instance
                .get_physical_device_external_buffer_properties(self.physical, &info, &mut props)
        };
        let features = props.external_memory_properties.external_memory_features;
        if features.contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE) {
            Ok(())
        } else {
            Err(format!(
                "host allocations are not importable for transfer-source buffers ({features:?})"
            ))
        }
    }

    /// The memory types host memory at `ptr` may be imported as that an importable
    /// transfer-source buffer also allows, as a bit mask.
    ///
    /// # Safety
    /// `ptr` is a host allocation of BIG bytes aligned to the import alignment; `host_import` is
    /// `Some`.
    pub(super) unsafe fn import_types(&self, ptr: *mut u8) -> Result<u32, vk::Result> {
        let import = self
            .host_import
            .as_ref()
            .expect("VK_EXT_external_memory_host");
        let mut props = vk::MemoryHostPointerPropertiesEXT::default();
        // SAFETY: the extension is enabled; the caller's contract on the pointer.
        let result = unsafe {
            (import.functions.fp().get_memory_host_pointer_properties_ext)(
                self.device.handle(),
                vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT,
                ptr.cast(),
                &mut props,
            )
        };
        result.result()?;
        let probe = self.buffer(vk::BufferUsageFlags::TRANSFER_SRC, true);
        // SAFETY: alive until destroyed right after; never bound or used.
        let req = unsafe {
            let req = self.device.get_buffer_memory_requirements(probe);
            self.device.destroy_buffer(probe, None);
            req
        };
        Ok(props.memory_type_bits & req.memory_type_bits)
    }

    /// Imports the BIG bytes of host memory at `ptr` as memory of type `memory_type` and binds
    /// a transfer-source buffer to them.
    ///
    /// # Safety
    /// As for `import_types`, `memory_type` one of its answer's; the host memory stays
    /// allocated, and nothing but the GPU's reads touches it, until the buffer is freed.
    pub(super) unsafe fn import(
        &self,
        ptr: *mut u8,
        memory_type: u32,
    ) -> Result<RawBuffer, String> {
        let buffer = self.buffer(vk::BufferUsageFlags::TRANSFER_SRC, true);
        // SAFETY: the buffer is alive.
        let req = unsafe { self.device.get_buffer_memory_requirements(buffer) };
        if req.size > BIG {
            // SAFETY: never bound or used.
            unsafe { self.device.destroy_buffer(buffer, None) };
            return Err(format!(
                "the buffer needs {} bytes, more than the import",
                req.size
            ));
        }
        let mut import = vk::ImportMemoryHostPointerInfoEXT::default()
            .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT)
            .host_pointer(ptr.cast());
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(BIG)
            .memory_type_index(memory_type)
            .push_next(&mut import);
        // SAFETY: the caller's contract: an aligned host allocation of BIG bytes (a multiple of
        // the alignment) and a type the pointer's properties allow.
        let memory = match unsafe { self.device.allocate_memory(&info, None) } {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: never bound or used.
                unsafe { self.device.destroy_buffer(buffer, None) };
                return Err(format!("vkAllocateMemory: {e}"));
            }
        };
        // SAFETY: created for this handle type; the object holds the buffer's required size.
        unsafe { self.device.bind_buffer_memory(buffer, memory, 0) }.expect("bind");
        Ok(RawBuffer { buffer, memory })
    }

    /// Records every part's copy from `src` to `dst`, after every earlier transfer and host
    /// write, made visible to later transfers and host reads.
    ///
    /// # Safety
    /// Both buffers are alive, bound, with the transfer usages, and hold the regions; the parts'
    /// destination ranges are disjoint; they stay alive until the last `run` was waited and
    /// `release` called.
    pub(super) unsafe fn record(
        &self,
        src: vk::Buffer,
        dst: vk::Buffer,
        parts: &[Part],
    ) -> Recorded {
        let d = &self.device;
        let parts = parts
            .iter()
            .map(|part| {
                // SAFETY: the pool belongs to this device; the caller's contract on the buffers.
                unsafe {
                    let cmd = d
                        .allocate_command_buffers(
                            &vk::CommandBufferAllocateInfo::default()
                                .command_pool(self.families[part.queue.family].pool)
                                .command_buffer_count(1),
                        )
                        .expect("command buffer")[0];
                    d.begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default())
                        .expect("begin");
                    self.barrier(cmd, true);
                    d.cmd_copy_buffer(cmd, src, dst, &part.regions);
                    self.barrier(cmd, false);
                    d.end_command_buffer(cmd).expect("end");
                    let fence = d
                        .create_fence(&vk::FenceCreateInfo::default(), None)
                        .expect("fence");
                    (part.queue, cmd, fence)
                }
            })
            .collect();
        Recorded { parts }
    }

    /// Before a copy (`before`): earlier transfer and host writes against its reads and writes;
    /// after it: its writes against later transfers and host reads.
    ///
    /// # Safety
    /// `cmd` is recording.
    unsafe fn barrier(&self, cmd: vk::CommandBuffer, before: bool) {
        let (src_access, dst_access, src_stage, dst_stage) = if before {
            (
                vk::AccessFlags::TRANSFER_WRITE | vk::AccessFlags::HOST_WRITE,
                vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE,
                vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::HOST,
                vk::PipelineStageFlags::TRANSFER,
            )
        } else {
            (
                vk::AccessFlags::TRANSFER_WRITE,
                vk::AccessFlags::TRANSFER_READ
                    | vk::AccessFlags::TRANSFER_WRITE
                    | vk::AccessFlags::HOST_READ,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::HOST,
            )
        };
        let barrier = [vk::MemoryBarrier::default()
            .src_access_mask(src_access)
            .dst_access_mask(dst_access)];
        // SAFETY: the caller's contract.
        unsafe {
            self.device.cmd_pipeline_barrier(
                cmd,
                src_stage,
                dst_stage,
                vk::DependencyFlags::empty(),
                &barrier,
                &[],
                &[],
            )
        };
    }

    /// Submits every part, each to its queue with its fence, and waits for all. Returns the
    /// seconds from the first submission to the last fence seen signalled.
    ///
    /// # Safety
    /// `recorded` came from `record` and its previous run was waited.
    pub(super) unsafe fn run(&self, recorded: &Recorded) -> f64 {
        let d = &self.device;
        let fences: Vec<vk::Fence> = recorded.parts.iter().map(|p| p.2).collect();
        // SAFETY: the fences are unsignalled or their submissions completed (waited).
        unsafe { d.reset_fences(&fences) }.expect("reset fences");
        let start = Instant::now();
        for &(queue, cmd, fence) in &recorded.parts {
            let cmds = [cmd];
            let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
            let q = self.families[queue.family].queues[queue.index];
            // SAFETY: recorded for this queue's family; the caller's contract; the queue is used
            // by this thread only.
            unsafe { d.queue_submit(q, &submit, fence) }.expect("submit");
        }
        // SAFETY: every fence was submitted above.
        unsafe { d.wait_for_fences(&fences, true, u64::MAX) }.expect("wait");
        start.elapsed().as_secs_f64()
    }

    /// Frees a recording's command buffers and fences.
    ///
    /// # Safety
    /// Its last run was waited.
    pub(super) unsafe fn release(&self, recorded: Recorded) {
        for (queue, cmd, fence) in recorded.parts {
            // SAFETY: the caller's contract: nothing pending uses them.
            unsafe {
                self.device
                    .free_command_buffers(self.families[queue.family].pool, &[cmd]);
                self.device.destroy_fence(fence, None);
            }
        }
    }

    /// Records `record` into the main command buffer, submits it to the main queue and waits.
    ///
    /// # Safety
    /// Every resource `record` names is alive and its earlier work was waited.
    unsafe fn on_main(&self, record: impl FnOnce(&ash::Device, vk::CommandBuffer)) {
        let d = &self.device;
        let q = self.families[self.main.family].queues[self.main.index];
        // SAFETY: the command buffer is idle (its last submission was waited); the caller's
        // contract.
        unsafe {
            d.begin_command_buffer(
                self.main_cmd,
                &vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
            )
            .expect("begin");
            record(d, self.main_cmd);
            d.end_command_buffer(self.main_cmd).expect("end");
            let cmds = [self.main_cmd];
            let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
            d.queue_submit(q, &submit, self.main_fence).expect("submit");
            d.wait_for_fences(&[self.main_fence], true, u64::MAX)
                .expect("wait");
            d.reset_fences(&[self.main_fence]).expect("reset");
        }
    }

    /// Zeroes `dst` on the main queue, so a check after a variant's runs sees only its writes.
    ///
    /// # Safety
    /// `dst` is alive, bound, has `TRANSFER_DST` usage, and its earlier work was waited.
    pub(super) unsafe fn clear(&self, dst: vk::Buffer) {
        // SAFETY: the caller's contract.
        unsafe {
            self.on_main(|d, cmd| {
                self.barrier(cmd, true);
                d.cmd_fill_buffer(cmd, dst, 0, vk::WHOLE_SIZE, 0);
                self.barrier(cmd, false);
            })
        };
    }

    /// Copies all of `src` (BIG bytes) into the read-back buffer on the main queue and returns
    /// the index of the first 64 KiB block that differs from `expected`, if any.
    ///
    /// # Safety
    /// `src` is alive, bound, has `TRANSFER_SRC` usage, and every write into it was waited.
    pub(super) unsafe fn first_difference(
        &self,
        src: vk::Buffer,
        expected: &[u8],
    ) -> Option<usize> {
        let whole = [vk::BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size: BIG,
        }];
        // SAFETY: the caller's contract; the read-back buffer is idle.
        unsafe {
            self.on_main(|d, cmd| {
                self.barrier(cmd, true);
                d.cmd_copy_buffer(cmd, src, self.readback.buffer, &whole);
                self.barrier(cmd, false);
            })
        };
        // SAFETY: coherent, mapped, BIG bytes; the copy into it completed and was made visible
        // to the host; nothing writes it while this slice lives.
        let got = unsafe { std::slice::from_raw_parts(self.readback_bytes, BIG as usize) };
        let block = 1 << 16;
        got.chunks(block)
            .zip(expected.chunks(block))
            .position(|(a, b)| a != b)
            .map(|i| i * block)
    }

    /// Clears `dst`, runs `parts` once to warm up and `reps` times, then reads `dst` back and
    /// compares it with `expected`. Returns the median seconds, or what differs.
    ///
    /// # Safety
    /// As for `record`; `dst` also has `TRANSFER_SRC` usage and nothing else is in flight.
    pub(super) unsafe fn measure(
        &self,
        src: vk::Buffer,
        dst: vk::Buffer,
        parts: &[Part],
        expected: &[u8],
        reps: usize,
    ) -> Result<f64, String> {
        // SAFETY: the caller's contract; each run is waited before the next and before the
        // read-back, and the recording released after the last.
        unsafe {
            self.clear(dst);
            let recorded = self.record(src, dst, parts);
            self.run(&recorded);
            let t = median((0..reps).map(|_| self.run(&recorded)).collect());
            self.release(recorded);
            match self.first_difference(dst, expected) {
                Some(at) => Err(format!("wrong bytes in the 64 KiB block at {at}")),
                None => Ok(t),
            }
        }
    }

    /// Destroys everything this device created, then the device.
    ///
    /// # Safety
    /// Every buffer handed out was freed.
    pub(super) unsafe fn destroy(self) {
        // SAFETY: idle after the wait; nothing is used afterwards.
        unsafe {
            self.device.device_wait_idle().expect("wait idle");
            self.device.destroy_buffer(self.readback.buffer, None);
            self.device.free_memory(self.readback.memory, None);
            self.device.destroy_fence(self.main_fence, None);
            for f in &self.families {
                self.device.destroy_command_pool(f.pool, None);
            }
            self.device.destroy_device(None);
        }
    }
}
