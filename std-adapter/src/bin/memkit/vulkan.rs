//! `--device vulkan`: memkit-vulkan's headless device, shared by the coordinator (which owns its
//! device by value and needs it `'static`) and the command (which probes it and checks it after
//! the coordinator is gone).

use std::ptr::NonNull;
use std::sync::Arc;

use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, DeviceError, DeviceLimits,
    HeapBudget, MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryProperties,
    MemoryPropertyFlags, MemoryRequirements, WaitStatus,
};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, SetupError, VulkanDevice};

use crate::backend::Backend;

/// A headless Vulkan device behind an `Arc`; every clone is the same device.
#[derive(Clone)]
pub struct SharedVulkan(Arc<HeadlessDevice>);

impl SharedVulkan {
    /// Creates an instance and a device on the best physical device.
    pub fn new(validation: bool) -> Result<Self, SetupError> {
        let headless = HeadlessDevice::new(HeadlessConfig {
            validation,
            ..Default::default()
        })?;
        Ok(Self(Arc::new(headless)))
    }

    /// memkit's device.
    pub fn device(&self) -> &VulkanDevice {
        self.0.device()
    }

    /// Validation messages reported so far.
    pub fn validation_messages(&self) -> Vec<String> {
        self.0.validation_log().messages()
    }
}

impl SharedVulkan {
    /// Copies the first `len` bytes of `source` into a host-visible buffer of its own and reads
    /// them. Only while the coordinator is idle: the copy signals the value after the completed
    /// one, which is the coordinator's last only when nothing of it is in flight, and the
    /// coordinator must submit nothing after.
    fn copy_back(&self, source: vk::Buffer, len: usize) -> Result<Vec<u8>, DeviceError> {
        let size = len as u64;
        let (buffer, requirements) = self.create_buffer(size, BufferUsage::TRANSFER_DST)?;
        let types = self.memory_properties().types();
        let host = MemoryPropertyFlags::HOST_VISIBLE;
        let allowed = |i: &usize| {
            requirements.memory_type_bits & (1 << i) != 0 && types[*i].properties.contains(host)
        };
        // Cached memory reads fastest; any host-visible type will do.
        let cached = host | MemoryPropertyFlags::HOST_CACHED;
        let Some(memory_type) = (0..types.len())
            .filter(allowed)
            .find(|&i| types[i].properties.contains(cached))
            .or_else(|| (0..types.len()).find(allowed))
        else {
            // SAFETY: created above, never bound or used.
            unsafe { self.destroy_buffer(buffer) };
            return Err(DeviceError::MapFailed);
        };
        let coherent = types[memory_type]
            .properties
            .contains(MemoryPropertyFlags::HOST_COHERENT);
        let info = MemoryAllocateInfo {
            size: requirements.size,
            memory_type: memory_type as u32,
            dedicated_to: None,
            priority: 0.5,
            device_address: false,
        };
        // SAFETY: the type index is the device's own.
        let memory = match unsafe { self.allocate_memory(&info) } {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: created above, never bound or used.
                unsafe { self.destroy_buffer(buffer) };
                return Err(e);
            }
        };
        let result = (|| {
            // SAFETY: both alive and from this device; offset 0; the object has the buffer's
            // size and an allowed type.
            unsafe { self.bind_buffer_memory(buffer, memory, 0) }?;
            // SAFETY: host-visible, not mapped.
            let ptr = unsafe { self.map_memory(memory) }?;
            let value = self.completed_value()? + 1;
            let region = [BufferCopy {
                src_offset: 0,
                dst_offset: 0,
                size,
            }];
            let copy = CopyCommand {
                src: source,
                dst: buffer,
                regions: &region,
            };
            // SAFETY: both buffers are alive and bound until the wait below (the caller holds
            // the source); the region lies in both; the coordinator is idle, so every value it
            // submitted has completed and `value` is above all of them, and it submits nothing
            // later.
            unsafe { self.submit_copies(&[copy], value) }?;
            if self.wait(value, 60_000_000_000)? != WaitStatus::Completed {
                return Err(DeviceError::Timeout);
            }
            if !coherent {
                let range = MappedRange {
                    memory,
                    offset: 0,
                    size: requirements.size,
                };
                // SAFETY: mapped; the range is the whole object.
                unsafe { self.invalidate_ranges(&[range]) }?;
            }
            // SAFETY: the mapping covers `requirements.size >= len` bytes, the copy into them
            // completed and was made visible above, and nothing else writes them.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) }.to_vec();
            // SAFETY: mapped above, read done.
            unsafe { self.unmap_memory(memory) };
            Ok(bytes)
        })();
        if result.is_err() {
            // Whatever was submitted finishes before the objects go.
            let _ = self.wait(self.completed_value().unwrap_or(0) + 1, 1_000_000_000);
        }
        // SAFETY: the copy completed (waited above) or never ran; freeing memory unmaps it if an
        // error left it mapped.
        unsafe {
            self.destroy_buffer(buffer);
            self.free_memory(memory);
        }
        result
    }
}

impl MemoryDevice for SharedVulkan {
    type Memory = vk::DeviceMemory;
    type Buffer = vk::Buffer;

    fn memory_properties(&self) -> &MemoryProperties {
        self.device().memory_properties()
    }

    fn limits(&self) -> DeviceLimits {
        self.device().limits()
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        self.device().query_budget(out)
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<Self::Buffer>,
    ) -> Result<Self::Memory, DeviceError> {
        // SAFETY: forwarded unchanged to the one device behind the `Arc`; the caller keeps its
        // contract.
        unsafe { self.device().allocate_memory(info) }
    }

    unsafe fn free_memory(&self, memory: Self::Memory) {
        // SAFETY: as above.
        unsafe { self.device().free_memory(memory) }
    }

    unsafe fn map_memory(&self, memory: Self::Memory) -> Result<NonNull<u8>, DeviceError> {
        // SAFETY: as above.
        unsafe { self.device().map_memory(memory) }
    }

    unsafe fn unmap_memory(&self, memory: Self::Memory) {
        // SAFETY: as above.
        unsafe { self.device().unmap_memory(memory) }
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<Self::Memory>]) -> Result<(), DeviceError> {
        // SAFETY: as above.
        unsafe { self.device().flush_ranges(ranges) }
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<Self::Memory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: as above.
        unsafe { self.device().invalidate_ranges(ranges) }
    }
}

impl BufferDevice for SharedVulkan {
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(Self::Buffer, MemoryRequirements), DeviceError> {
        self.device().create_buffer(size, usage)
    }

    unsafe fn bind_buffer_memory(
        &self,
        buffer: Self::Buffer,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.device().bind_buffer_memory(buffer, memory, offset) }
    }

    unsafe fn destroy_buffer(&self, buffer: Self::Buffer) {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.device().destroy_buffer(buffer) }
    }
}

impl CopyQueue for SharedVulkan {
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, Self::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.device().submit_copies(commands, signal_value) }
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        self.device().completed_value()
    }

    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        self.device().wait(value, timeout_ns)
    }
}

impl Backend for SharedVulkan {
    fn describe(&self) -> String {
        match self.device().probe() {
            Ok(p) => format!("memkit-vulkan ({}, {})", p.device_name, p.device_type),
            Err(e) => format!("memkit-vulkan (probe failed: {e})"),
        }
    }

    fn read_back(&self, _buffer: Self::Buffer, _len: usize) -> Option<Vec<u8>> {
        // A copy needs a timeline value, and values belong to the coordinator while it runs.
        None
    }

    fn read_back_when_idle(&self, buffer: Self::Buffer, len: usize) -> Option<Vec<u8>> {
        match self.copy_back(buffer, len) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!("memkit: reading a buffer back failed: {e}");
                None
            }
        }
    }

    fn read_back_unavailable(&self) -> &'static str {
        "reading back failed (see above)"
    }

    fn problems(&self) -> Vec<String> {
        self.validation_messages()
    }

    fn leak_check(&self) -> Box<dyn FnOnce() -> Vec<String> + Send> {
        let device = self.clone();
        Box::new(move || {
            let live = device.device().live_memory_objects();
            if live == 0 {
                Vec::new()
            } else {
                vec![format!(
                    "{live} memory objects still allocated after teardown"
                )]
            }
        })
    }
}
