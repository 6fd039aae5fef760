//! A compute shader that copies a range of one buffer into the same range of another
//! (vulkan/shaders/copy.comp: 16-byte loads and stores, grid-stride loop), on the headless
//! device's main queue: the copy path that uses the SMs instead of a copy engine.

use ash::vk;
use memkit_vulkan::HeadlessDevice;

use super::MainQueueCopy;

/// vulkan/shaders/copy.comp compiled; the command that regenerates it is in the source.
const SPIRV: &[u8] = include_bytes!("../../../vulkan/shaders/copy.comp.spv");
/// The shader's `local_size_x`.
const WORKGROUP_SIZE: u64 = 256;
/// Descriptor sets one recording may use: one per bound range of at most
/// `maxStorageBufferRange` bytes.
const MAX_SETS: u32 = 64;

/// The pipeline, its descriptor sets, and a command buffer and fence on the main queue.
pub(super) struct ComputeCopy {
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
    descriptors: vk::DescriptorPool,
    /// The main-queue command buffer and fence the dispatches are recorded into and waited on.
    queue: MainQueueCopy,
    /// Bytes one descriptor may bind: `maxStorageBufferRange` rounded down to 1 MiB.
    chunk: u64,
}

impl ComputeCopy {
    pub(super) fn new(h: &HeadlessDevice) -> Self {
        let device = h.ash_device();
        // SAFETY: the physical device belongs to the instance.
        let limits = unsafe {
            h.instance()
                .get_physical_device_properties(h.device().physical_device())
        }
        .limits;
        let chunk = u64::from(limits.max_storage_buffer_range) & !((1 << 20) - 1);
        assert!(chunk > 0, "maxStorageBufferRange below 1 MiB");
        assert!(
            (1 << 20) % limits.min_storage_buffer_offset_alignment == 0,
            "ranges start at multiples of 1 MiB"
        );
        let code = ash::util::read_spv(&mut std::io::Cursor::new(SPIRV)).expect("SPIR-V");
        let bindings = [0, 1].map(|binding| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(binding)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        });
        // SAFETY: valid create infos on a live device; everything is destroyed in `destroy`
        // (the shader module right after the pipeline is made).
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
            let sizes = [vk::DescriptorPoolSize {
                ty: vk::DescriptorType::STORAGE_BUFFER,
                descriptor_count: 2 * MAX_SETS,
            }];
            let descriptors = device
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default()
                        .max_sets(MAX_SETS)
                        .pool_sizes(&sizes),
                    None,
                )
                .expect("descriptor pool");
            Self {
                set_layout,
                layout,
                pipeline,
                descriptors,
                queue: MainQueueCopy::new(h),
                chunk,
            }
        }
    }

    /// Records, for later `submit`s, a copy of `src[offset..offset + size]` to the same range
    /// of `dst` by at most `workgroups` workgroups per dispatch (one dispatch per bound range),
    /// after every earlier transfer, host and compute access, made visible to later transfers
    /// and host reads.
    ///
    /// # Safety
    /// Every earlier submission was waited; both buffers are alive, bound, usable on the main
    /// queue's family, have `STORAGE` usage (and `dst` whatever later reads need) and hold the
    /// range, and stay so until the last `submit` was waited; `offset` is a multiple of 1 MiB,
    /// `size` of 16.
    pub(super) unsafe fn record(
        &self,
        h: &HeadlessDevice,
        src: vk::Buffer,
        dst: vk::Buffer,
        offset: u64,
        size: u64,
        workgroups: u32,
    ) {
        assert!(offset.is_multiple_of(1 << 20) && size.is_multiple_of(16) && size > 0);
        let device = h.ash_device();
        let ranges: Vec<(u64, u64)> = (offset..offset + size)
            .step_by(self.chunk as usize)
            .map(|o| (o, self.chunk.min(offset + size - o)))
            .collect();
        assert!(ranges.len() <= MAX_SETS as usize, "range too large");
        let layouts = vec![self.set_layout; ranges.len()];
        let any_write = vk::AccessFlags::TRANSFER_WRITE
            | vk::AccessFlags::HOST_WRITE
            | vk::AccessFlags::SHADER_WRITE;
        // SAFETY: no set or command buffer is in use (every submission was waited); the
        // buffers and ranges are valid (caller's contract); the main family supports compute
        // (HeadlessDevice picks a graphics or compute family).
        unsafe {
            device
                .reset_descriptor_pool(self.descriptors, vk::DescriptorPoolResetFlags::empty())
                .expect("reset descriptor pool");
            let sets = device
                .allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(self.descriptors)
                        .set_layouts(&layouts),
                )
                .expect("descriptor sets");
            for (&set, &(o, len)) in sets.iter().zip(&ranges) {
                let source = [vk::DescriptorBufferInfo {
                    buffer: src,
                    offset: o,
                    range: len,
                }];
                let destination = [vk::DescriptorBufferInfo {
                    buffer: dst,
                    offset: o,
                    range: len,
                }];
                let writes = [
                    vk::WriteDescriptorSet::default()
                        .dst_set(set)
                        .dst_binding(0)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(&source),
                    vk::WriteDescriptorSet::default()
                        .dst_set(set)
                        .dst_binding(1)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(&destination),
                ];
                device.update_descriptor_sets(&writes, &[]);
            }
            device
                .reset_command_buffer(self.queue.cmd, vk::CommandBufferResetFlags::empty())
                .expect("reset command buffer");
            device
                .begin_command_buffer(self.queue.cmd, &vk::CommandBufferBeginInfo::default())
                .expect("begin");
            // Earlier clears, copies, host writes and runs of this shader (write after write),
            // and read-backs (write after read).
            let before = [vk::MemoryBarrier::default()
                .src_access_mask(any_write)
                .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE)];
            device.cmd_pipeline_barrier(
                self.queue.cmd,
                vk::PipelineStageFlags::TRANSFER
                    | vk::PipelineStageFlags::HOST
                    | vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::DependencyFlags::empty(),
                &before,
                &[],
                &[],
            );
            device.cmd_bind_pipeline(
                self.queue.cmd,
                vk::PipelineBindPoint::COMPUTE,
                self.pipeline,
            );
            for (&set, &(_, len)) in sets.iter().zip(&ranges) {
                device.cmd_bind_descriptor_sets(
                    self.queue.cmd,
                    vk::PipelineBindPoint::COMPUTE,
                    self.layout,
                    0,
                    &[set],
                    &[],
                );
                let needed = (len / 16).div_ceil(WORKGROUP_SIZE);
                device.cmd_dispatch(self.queue.cmd, (workgroups as u64).min(needed) as u32, 1, 1);
            }
            let after = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE)
                .dst_access_mask(
                    vk::AccessFlags::TRANSFER_READ
                        | vk::AccessFlags::TRANSFER_WRITE
                        | vk::AccessFlags::HOST_READ,
                )];
            device.cmd_pipeline_barrier(
                self.queue.cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &after,
                &[],
                &[],
            );
            device.end_command_buffer(self.queue.cmd).expect("end");
        }
    }

    /// Submits what `record` recorded; `wait` before the next submission or recording.
    ///
    /// # Safety
    /// `record` was called, its contract still holds, and the previous submission was waited.
    pub(super) unsafe fn submit(&self, h: &HeadlessDevice) {
        // SAFETY: the command buffer is recorded and idle (caller's contract).
        unsafe { self.queue.submit_recorded(h) };
    }

    pub(super) fn wait(&self, h: &HeadlessDevice) {
        self.queue.wait(h);
    }

    pub(super) fn destroy(self, h: &HeadlessDevice) {
        let device = h.ash_device();
        // SAFETY: the last submission was waited; nothing else uses these; sets go with their
        // pool.
        unsafe {
            device.destroy_descriptor_pool(self.descriptors, None);
            device.destroy_pipeline(self.pipeline, None);
            device.destroy_pipeline_layout(self.layout, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
        }
        self.queue.destroy(h);
    }
}
