//! `--device vulkan`: memkit-vulkan's headless device, shared by the coordinator (which owns its
//! device by value and needs it `'static`) and the command (which probes it and checks it after
//! the coordinator is gone).

use std::ptr::NonNull;
use std::sync::Arc;

use memkit_core::device::{
    BufferDevice, BufferUsage, CopyCommand, CopyQueue, DeviceError, DeviceLimits, HeapBudget,
    MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryProperties, MemoryRequirements,
    WaitStatus,
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
        let value = self.completed_value()? + 1;
        // SAFETY: the caller holds `source` (a coordinator buffer: TRANSFER_SRC, at least `len`
        // bytes); the coordinator is idle, so every value it submitted has completed and
        // `value` is above all of them, and it submits nothing later.
        unsafe {
            memkit_vulkan::read_buffer(self.device(), source, len as u64, value, 60_000_000_000)
        }
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
