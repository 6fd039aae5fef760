//! Device addresses on a real driver, validation on: a compute shader (vulkan/shaders/gather.comp)
//! reads 256-byte blocks through the addresses memkit hands out, as a bindless engine's shaders
//! do: frames' transient slices written by the frame and by `TransientWriter`s on other threads
//! (`CoordinatorConfig::transient_device_addresses`), and a buffer made with
//! `MemoryUsage::DEVICE_ADDRESS` (`Buffer::device_address`). Every gathered byte is compared.

mod common;

use std::io::Write;

use common::{SECOND, finish_shared, headless};
use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage, TransientSlice, bytemuck};
use memkit_vulkan::ash::{self, vk};
use memkit_vulkan::{HeadlessDevice, SharedHeadlessDevice};

/// vulkan/shaders/gather.comp compiled; the command that regenerates it is in the source.
const SPIRV: &[u8] = include_bytes!("../shaders/gather.comp.spv");
/// One block: what workgroup `b` copies from pointer `b`.
type Block = [u32; 64];
const BLOCK_BYTES: u64 = size_of::<Block>() as u64;
/// Blocks a frame writes itself, and per writer thread.
const OWN_BLOCKS: usize = 16;
const WRITERS: usize = 2;
const WRITER_BLOCKS: usize = 24;
/// Pointers per frame: the transient blocks, then the device-address buffer.
const POINTERS: usize = OWN_BLOCKS + WRITERS * WRITER_BLOCKS + 1;
const FRAMES: u64 = 4;

/// Block `b` of frame `f`.
fn block(f: u64, b: usize) -> Block {
    std::array::from_fn(|i| (f as u32) << 24 ^ (b as u32) << 12 ^ i as u32 ^ 0x5A5A_0000)
}

/// The gather pipeline, a descriptor set for it, and a command buffer and fence on the main
/// queue.
struct Gather {
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    descriptors: vk::DescriptorPool,
    set: vk::DescriptorSet,
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
}

impl Gather {
    fn new(h: &HeadlessDevice) -> Self {
        let device = h.ash_device();
        let code = ash::util::read_spv(&mut std::io::Cursor::new(SPIRV)).expect("SPIR-V");
        let bindings = [0, 1].map(|binding| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(binding)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        });
        // SAFETY: valid create infos on a live device with bufferDeviceAddress (the shader's
        // pointers need it; the caller checked); all destroyed in `destroy`, the shader module
        // once the pipeline is made.
        unsafe {
            let shader = device
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
                .expect("shader module");
            let set_layout = device
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                    None,
                )
                .expect("descriptor set layout");
            let set_layouts = [set_layout];
            let layout = device
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts),
                    None,
                )
                .expect("pipeline layout");
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(shader)
                .name(c"main");
            let info = [vk::ComputePipelineCreateInfo::default()
                .stage(stage)
                .layout(layout)];
            let pipeline = device
                .create_compute_pipelines(vk::PipelineCache::null(), &info, None)
                .map_err(|(_, e)| e)
                .expect("compute pipeline")[0];
            device.destroy_shader_module(shader, None);
            let sizes = [vk::DescriptorPoolSize::default()
                .ty(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(2)];
            let descriptors = device
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default()
                        .max_sets(1)
                        .pool_sizes(&sizes),
                    None,
                )
                .expect("descriptor pool");
            let set = device
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(descriptors)
                        .set_layouts(&set_layouts),
                )
                .expect("descriptor set")[0];
            let pool = device
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default().queue_family_index(h.main_queue().family),
                    None,
                )
                .expect("command pool");
            let cmd = device
                .allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default()
                        .command_pool(pool)
                        .level(vk::CommandBufferLevel::PRIMARY)
                        .command_buffer_count(1),
                )
                .expect("command buffer")[0];
            let fence = device
                .create_fence(&vk::FenceCreateInfo::default(), None)
                .expect("fence");
            Self {
                set_layout,
                layout,
                pipeline,
                descriptors,
                set,
                pool,
                cmd,
                fence,
            }
        }
    }

    /// Gathers the blocks `pointers` names into `destination` (block `b` at `b * 256`), after
    /// memkit's timeline reached `memkit_value` (its uploads), then signals `app` with
    /// `app_value` and waits for the fence. The host may then read `destination`.
    ///
    /// # Safety
    /// Every pointer names a live 256-byte range the GPU may read; the buffers are alive and
    /// stay so until this returns; nothing else uses the command buffer.
    unsafe fn run(
        &self,
        h: &HeadlessDevice,
        pointers: &TransientSlice<'_, SharedHeadlessDevice>,
        destination: vk::Buffer,
        memkit_value: u64,
        app: (vk::Semaphore, u64),
    ) {
        let device = h.ash_device();
        let blocks = pointers.size() / 8;
        let infos = [
            [vk::DescriptorBufferInfo::default()
                .buffer(pointers.buffer())
                .offset(pointers.offset())
                .range(pointers.size())],
            [vk::DescriptorBufferInfo::default()
                .buffer(destination)
                .offset(0)
                .range(blocks * BLOCK_BYTES)],
        ];
        let writes = [0, 1].map(|binding| {
            vk::WriteDescriptorSet::default()
                .dst_set(self.set)
                .dst_binding(binding)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(&infos[binding as usize])
        });
        let memkit = h
            .device()
            .timeline_semaphore()
            .expect("a timeline semaphore");
        let wait_semaphores = [memkit];
        let wait_values = [memkit_value];
        let wait_stages = [vk::PipelineStageFlags::COMPUTE_SHADER];
        let signal_semaphores = [app.0];
        let signal_values = [app.1];
        let cmds = [self.cmd];
        let mut values = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&wait_values)
            .signal_semaphore_values(&signal_values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&wait_semaphores)
            .wait_dst_stage_mask(&wait_stages)
            .command_buffers(&cmds)
            .signal_semaphores(&signal_semaphores)
            .push_next(&mut values);
        // The shader's writes, made visible to the host's read after the fence.
        let to_host = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)];
        // SAFETY: the set is not in use (the last run was waited for); the command buffer is
        // not pending; the buffers and pointers are live (caller's contract); the queue is held
        // for the submit.
        unsafe {
            device.update_descriptor_sets(&writes, &[]);
            device
                .reset_command_pool(self.pool, vk::CommandPoolResetFlags::empty())
                .unwrap();
            device
                .begin_command_buffer(
                    self.cmd,
                    &vk::CommandBufferBeginInfo::default()
                        .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .unwrap();
            device.cmd_bind_pipeline(self.cmd, vk::PipelineBindPoint::COMPUTE, self.pipeline);
            device.cmd_bind_descriptor_sets(
                self.cmd,
                vk::PipelineBindPoint::COMPUTE,
                self.layout,
                0,
                &[self.set],
                &[],
            );
            device.cmd_dispatch(self.cmd, blocks as u32, 1, 1);
            device.cmd_pipeline_barrier(
                self.cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &to_host,
                &[],
                &[],
            );
            device.end_command_buffer(self.cmd).unwrap();
            h.with_main_queue(|queue| device.queue_submit(queue, &[submit], self.fence))
                .unwrap();
            device
                .wait_for_fences(&[self.fence], true, 10 * SECOND)
                .unwrap();
            device.reset_fences(&[self.fence]).unwrap();
        }
    }

    fn destroy(self, h: &HeadlessDevice) {
        let device = h.ash_device();
        // SAFETY: every submission was waited for; nothing uses these any more.
        unsafe {
            device.destroy_fence(self.fence, None);
            device.destroy_command_pool(self.pool, None);
            device.destroy_descriptor_pool(self.descriptors, None);
            device.destroy_pipeline(self.pipeline, None);
            device.destroy_pipeline_layout(self.layout, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}

/// With the pools' defaults: buffers with device addresses (the kept buffer, the transient
/// chunks) share blocks of their own, made with device-address support.
#[test]
fn a_shader_reads_transient_slices_and_buffers_through_their_device_addresses() {
    reads_through_device_addresses(false);
}

/// With `device_address_blocks`: every block has device-address support.
#[test]
fn a_shader_reads_through_device_addresses_with_every_block_addressable() {
    reads_through_device_addresses(true);
}

fn reads_through_device_addresses(device_address_blocks: bool) {
    let Some(h) = headless() else {
        return;
    };
    let features = h.device().enabled_features();
    if !(features.buffer_device_address && features.timeline_semaphore) {
        assert!(
            std::env::var("MEMKIT_REQUIRE_VULKAN").as_deref() != Ok("1"),
            "lavapipe and NVIDIA's driver have bufferDeviceAddress and timeline semaphores"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: no bufferDeviceAddress or timeline semaphores on this device"
        );
        return;
    }
    let gather = Gather::new(&h);
    let mut kind = vk::SemaphoreTypeCreateInfo::default()
        .semaphore_type(vk::SemaphoreType::TIMELINE)
        .initial_value(0);
    // SAFETY: a valid create info on a live device with timeline semaphores.
    let app = unsafe {
        h.ash_device().create_semaphore(
            &vk::SemaphoreCreateInfo::default().push_next(&mut kind),
            None,
        )
    }
    .unwrap();
    let shared = SharedHeadlessDevice::new(h);
    let mut config = CoordinatorConfig {
        // 16 blocks a chunk: each writer's blocks take two chunks, the frame's one.
        transient_chunk_size: 4096,
        transient_device_addresses: true,
        ..CoordinatorConfig::default()
    };
    config.pools.device_address_blocks = device_address_blocks;
    let c = Coordinator::new(shared.clone(), config).unwrap();
    let kept_block = block(99, 0);
    let kept = c
        .create_buffer(
            BLOCK_BYTES,
            MemoryUsage::FAST_DEVICE_ACCESS | MemoryUsage::DEVICE_ADDRESS,
        )
        .unwrap();
    let uploaded = c
        .upload_to(&kept, 0, bytemuck::bytes_of(&kept_block))
        .unwrap();
    c.flush_transfers().unwrap();
    let kept_address = kept.device_address().unwrap();
    assert_ne!(kept_address, 0);
    let destination = c
        .create_buffer(POINTERS as u64 * BLOCK_BYTES, MemoryUsage::DOWNLOAD)
        .unwrap();

    for f in 0..FRAMES {
        let frame = c.begin_frame().unwrap();
        // SAFETY: the semaphore outlives the coordinator (destroyed after its shutdown), and the
        // gather below signals f + 1 after its reads.
        unsafe { frame.gpu_done_at(app, f + 1) }.unwrap();
        let mut addresses: Vec<u64> = (0..OWN_BLOCKS)
            .map(|b| {
                let slice = frame.transient(&block(f, b)).unwrap();
                slice
                    .device_address()
                    .expect("transient device addresses are on")
            })
            .collect();
        let written: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let mut writer = frame.transient_writer();
                    scope.spawn(move || {
                        (0..WRITER_BLOCKS)
                            .map(|k| {
                                let b = OWN_BLOCKS + w * WRITER_BLOCKS + k;
                                let slice = writer.transient(&block(f, b)).unwrap();
                                slice.device_address().expect("on")
                            })
                            .collect()
                    })
                })
                .collect();
            jobs.into_iter().map(|j| j.join().unwrap()).collect()
        });
        addresses.extend(written.into_iter().flatten());
        addresses.push(kept_address);
        assert_eq!(addresses.len(), POINTERS);
        let pointers = frame.transient_slice(&addresses).unwrap();
        // SAFETY: every address names a live 256-byte block (transient slices of this frame,
        // held until the app's timeline reaches f + 1, and the kept buffer); the gather waits
        // on the GPU for the kept buffer's upload.
        unsafe {
            gather.run(
                &shared,
                &pointers,
                destination.raw(),
                uploaded.value().expect("flushed"),
                (app, f + 1),
            );
        }
        c.end_frame(frame).unwrap();
        let mut read = vec![0u8; POINTERS * BLOCK_BYTES as usize];
        // SAFETY: the gather, the only GPU write, completed (its fence) with a barrier to host
        // reads.
        unsafe { destination.read(0, &mut read) }.unwrap();
        for (b, got) in read.chunks_exact(BLOCK_BYTES as usize).enumerate() {
            let want = if b == POINTERS - 1 {
                kept_block
            } else {
                block(f, b)
            };
            assert!(
                got == bytemuck::bytes_of(&want),
                "frame {f}: block {b} read through its address differs"
            );
        }
    }
    drop((kept, destination, uploaded));
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    // SAFETY: every submission signalling it completed (the gathers' fences).
    unsafe { shared.ash_device().destroy_semaphore(app, None) };
    gather.destroy(&shared);
    finish_shared(shared);
}
