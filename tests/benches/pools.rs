//! The pool benchmark: device-memory allocation through memkit's `MemoryPools` against the raw
//! sub-allocators under them and against the device-memory allocators a Rust engine would pick
//! instead (gpu-alloc, gpu-allocator), on the same seeded workloads, in one run, as ratios.
//!
//! ```text
//! cargo bench -p memkit-tests --bench pools              # full run
//! cargo bench -p memkit-tests --bench pools -- --quick   # smaller traces, fewer repetitions
//! cargo bench -p memkit-tests --bench pools -- --buffers # only the buffer section (below)
//! ```
//!
//! Every contender sees the H200's memory types (shared/GPU.md: five types over a 140 GiB device
//! heap and a 64 GiB host heap) through a mock device whose `vkAllocateMemory` is a counter, so
//! the times are the allocators' own bookkeeping, not the driver's. Requests are device-only
//! (`FAST_DEVICE_ACCESS` / `GpuOnly`), linear, every memory type allowed.
//!
//! - memkit pools (TLSF, buddy): `MemoryPools::allocate` / `free`, type ranking included.
//! - memkit TLSF, 16M dedic.: the TLSF pools with `PoolConfig::dedicated_threshold` at 16 MiB
//!   instead of half the 256 MiB block: what a user who wants less device memory on the
//!   game-frame mix (requests up to 64 MiB) trades for more memory objects.
//! - raw TLSF, raw buddy: the same sub-allocators over one arena of the trace's capacity, with
//!   the pools' granule (256 B): the floor the pools' overhead is measured from.
//! - gpu-alloc 0.6: `GpuAllocator::alloc` / `dealloc` with `Config::i_am_prototyping()`, over a
//!   mock of its `MemoryDevice` trait.
//! - gpu-allocator 0.27: `vulkan::Allocator::allocate` / `free`, through an `ash::Instance` and
//!   `ash::Device` whose function pointers are the mock's `extern "system"` functions.
//!
//! The buffer section ([`buffers`]) creates, binds and destroys 10k buffers of 64 KiB per round
//! through the coordinator and through the pools alone, as the upload benchmark's section 7 does
//! on a GPU, with the device's time taken out.
//!
//! A time is the median over repetitions (interleaved across contenders, so a slow phase of
//! this shared machine hits all alike) of one whole replay's time divided by its ops (an op is
//! one allocate or one free).

use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::{CStr, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use memkit_core::buddy::{BuddyAllocator, BuddyConfig};
use memkit_core::device::{
    DeviceError, DeviceLimits, HeapBudget, MappedRange, MemoryAllocateInfo, MemoryDevice,
    MemoryHeap, MemoryHeapFlags, MemoryProperties, MemoryPropertyFlags as F, MemoryType,
};
use memkit_core::pool::{
    AllocationRequest, BlockAllocator, BlockSlot, DedicatedSlot, DeviceAllocation, MemoryPools,
    PoolConfig,
};
use memkit_core::tlsf::{TlsfAllocator, TlsfConfig, TlsfNode};
use memkit_core::{Allocation, MemoryUsage, SubAllocator};
use memkit_tests::workloads::Trace;

/// The H200's limits, as the mock devices report them.
const H200_LIMITS: DeviceLimits = DeviceLimits {
    max_memory_allocation_count: 4096,
    max_memory_allocation_size: 140 * GIB,
    buffer_image_granularity: 1024,
    non_coherent_atom_size: 64,
    min_memory_map_alignment: 64,
    min_buffer_offset_alignment: 64,
};

#[path = "pools/buffers.rs"]
mod buffers;
#[path = "pools/replay.rs"]
mod replay;

use replay::{interleaved, median, replay_gpu_alloc, replay_gpu_allocator, replay_with, traces};

const MIB: u64 = 1 << 20;
/// What one memory object costs on the H200's driver (shared/GPU.md: `vkAllocateMemory` 71 us
/// plus `vkFreeMemory` 64 us, 64 KiB objects), for the modeled column: the mock's calls are
/// free, so an allocator that makes many objects looks cheaper here than on a GPU.
const DEVICE_NS_PER_OBJECT: f64 = 135_000.0;
const GIB: u64 = 1 << 30;
/// The pools' granule, used by the raw sub-allocators too.
const GRANULE: u64 = 256;
/// Metadata per block (and per raw arena): enough live allocations for the churn workload.
const MAX_ALLOCATIONS: u32 = 16 * 1024;

/// The H200's memory types: host, device, host coherent, host coherent cached, and device-local
/// host-visible coherent (resizable BAR); heaps device 140 GiB, host 64 GiB.
const H200_TYPES: [(F, u32); 5] = [
    (F::empty(), 1),
    (F::DEVICE_LOCAL, 0),
    (F::HOST_VISIBLE.union(F::HOST_COHERENT), 1),
    (
        F::HOST_VISIBLE
            .union(F::HOST_COHERENT)
            .union(F::HOST_CACHED),
        1,
    ),
    (
        F::DEVICE_LOCAL
            .union(F::HOST_VISIBLE)
            .union(F::HOST_COHERENT),
        0,
    ),
];
const H200_HEAPS: [u64; 2] = [140 * GIB, 64 * GIB];

/// One allocator replaying traces.
trait Contender {
    fn name(&self) -> &'static str;
    /// Replays `trace`; returns (seconds, failed allocations).
    fn replay(&mut self, trace: &Trace) -> (f64, u64);
    /// Most device bytes held at once (memory objects), and memory objects allocated so far.
    fn device_stats(&self) -> (u64, u64);
    /// Allocates `count` device-local buffers of `size` bytes (alignment 16) on a fresh instance
    /// in its default configuration and reports the device bytes they took: with one 256 B
    /// buffer, the startup footprint.
    fn footprint(&self, count: u32, size: u64) -> u64;
}

// ---- memkit: raw sub-allocators ------------------------------------------------------------

struct RawTlsf(TlsfAllocator<Vec<TlsfNode>>);

impl RawTlsf {
    fn new(capacity: u64) -> Self {
        let config = TlsfConfig::new(capacity, GRANULE, MAX_ALLOCATIONS * 4);
        let storage = vec![TlsfNode::EMPTY; config.storage_len()];
        Self(TlsfAllocator::new(config, storage).expect("valid TLSF"))
    }
}

struct RawBuddy(BuddyAllocator<Vec<u64>>);

impl RawBuddy {
    fn new(capacity: u64) -> Self {
        let config = BuddyConfig::new(capacity, GRANULE, MAX_ALLOCATIONS * 4);
        let storage = vec![0; config.try_storage_len().expect("valid buddy")];
        Self(BuddyAllocator::new(config, storage).expect("valid buddy"))
    }
}

fn replay_sub<A: SubAllocator>(a: &mut A, trace: &Trace) -> (f64, u64) {
    let cell = std::cell::RefCell::new(a);
    replay_with(
        trace,
        |size, align| cell.borrow_mut().allocate(size, align).ok(),
        |h: Allocation| cell.borrow_mut().free(h).expect("live allocation"),
    )
}

impl Contender for RawTlsf {
    fn name(&self) -> &'static str {
        "raw TLSF (one arena)"
    }
    fn replay(&mut self, trace: &Trace) -> (f64, u64) {
        replay_sub(&mut self.0, trace)
    }
    fn device_stats(&self) -> (u64, u64) {
        (0, 0)
    }
    fn footprint(&self, _count: u32, _size: u64) -> u64 {
        0
    }
}

impl Contender for RawBuddy {
    fn name(&self) -> &'static str {
        "raw buddy (one arena)"
    }
    fn replay(&mut self, trace: &Trace) -> (f64, u64) {
        replay_sub(&mut self.0, trace)
    }
    fn device_stats(&self) -> (u64, u64) {
        (0, 0)
    }
    fn footprint(&self, _count: u32, _size: u64) -> u64 {
        0
    }
}

/// The H200's memory types and heaps ([`H200_TYPES`], [`H200_HEAPS`]) as core describes them.
fn h200_properties() -> MemoryProperties {
    let types: Vec<MemoryType> = H200_TYPES
        .iter()
        .map(|&(properties, heap_index)| MemoryType {
            properties,
            heap_index,
        })
        .collect();
    let heaps: Vec<MemoryHeap> = H200_HEAPS
        .iter()
        .enumerate()
        .map(|(i, &size)| MemoryHeap {
            size,
            flags: if i == 0 {
                MemoryHeapFlags::DEVICE_LOCAL
            } else {
                MemoryHeapFlags::empty()
            },
        })
        .collect();
    MemoryProperties::new(&types, &heaps).expect("valid description")
}

// ---- memkit: pools over a mock device -------------------------------------------------------

/// memkit's device trait over counters: objects are numbered, bytes counted.
struct MockDevice {
    properties: MemoryProperties,
    next: std::cell::Cell<u32>,
    bytes: std::cell::Cell<u64>,
    peak: std::cell::Cell<u64>,
    sizes: std::cell::RefCell<HashMap<u32, u64>>,
}

impl MockDevice {
    fn h200() -> Self {
        Self {
            properties: h200_properties(),
            next: std::cell::Cell::new(1),
            bytes: std::cell::Cell::new(0),
            peak: std::cell::Cell::new(0),
            sizes: std::cell::RefCell::new(HashMap::new()),
        }
    }
}

impl MemoryDevice for MockDevice {
    type Memory = u32;
    type Buffer = u32;
    type Image = Infallible;

    fn memory_properties(&self) -> &MemoryProperties {
        &self.properties
    }

    fn limits(&self) -> DeviceLimits {
        H200_LIMITS
    }

    fn query_budget(&self, _out: &mut [HeapBudget]) -> bool {
        false
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<u32, Infallible>,
    ) -> Result<u32, DeviceError> {
        let id = self.next.get();
        self.next.set(id + 1);
        self.bytes.set(self.bytes.get() + info.size);
        self.peak.set(self.peak.get().max(self.bytes.get()));
        self.sizes.borrow_mut().insert(id, info.size);
        Ok(id)
    }

    unsafe fn free_memory(&self, memory: u32) {
        let size = self
            .sizes
            .borrow_mut()
            .remove(&memory)
            .expect("live object");
        self.bytes.set(self.bytes.get() - size);
    }

    unsafe fn map_memory(&self, _memory: u32) -> Result<std::ptr::NonNull<u8>, DeviceError> {
        Err(DeviceError::MapFailed)
    }

    unsafe fn unmap_memory(&self, _memory: u32) {}

    unsafe fn flush_ranges(&self, _ranges: &[MappedRange<u32>]) -> Result<(), DeviceError> {
        Ok(())
    }

    unsafe fn invalidate_ranges(&self, _ranges: &[MappedRange<u32>]) -> Result<(), DeviceError> {
        Ok(())
    }
}

trait BenchStorage: BlockAllocator {
    const NAME: &'static str;
    fn storage(len: usize) -> Self::Storage;
}

impl BenchStorage for TlsfAllocator<Vec<TlsfNode>> {
    const NAME: &'static str = "memkit pools (TLSF)";
    fn storage(len: usize) -> Vec<TlsfNode> {
        vec![TlsfNode::EMPTY; len]
    }
}

impl BenchStorage for BuddyAllocator<Vec<u64>> {
    const NAME: &'static str = "memkit pools (buddy)";
    fn storage(len: usize) -> Vec<u64> {
        vec![0; len]
    }
}

type Pools<A> =
    MemoryPools<&'static MockDevice, A, Vec<BlockSlot<u32, A>>, Vec<DedicatedSlot<u32>>>;

struct MemkitPools<A: BenchStorage> {
    name: &'static str,
    device: &'static MockDevice,
    pools: Pools<A>,
}

impl<A: BenchStorage> MemkitPools<A> {
    /// The default configuration with room for `MAX_ALLOCATIONS` per block, so that the
    /// replays time the allocator, not metadata running out.
    fn new() -> Self {
        let config = PoolConfig {
            max_allocations_per_block: MAX_ALLOCATIONS,
            ..PoolConfig::DEFAULT
        };
        Self::with_config(A::NAME, config)
    }

    /// The default configuration but for a dedicated object above 16 MiB instead of above
    /// 128 MiB (half the 256 MiB block): the trade a user makes for less device memory when
    /// requests of tens of MiB come and go, paid in memory objects.
    fn dedicated_above_16_mib() -> Self {
        let config = PoolConfig {
            max_allocations_per_block: MAX_ALLOCATIONS,
            dedicated_threshold: Some(16 << 20),
            ..PoolConfig::DEFAULT
        };
        Self::with_config(DEDICATED_16_MIB, config)
    }

    fn with_config(name: &'static str, config: PoolConfig) -> Self {
        // Leaked: one small mock per contender for the whole run.
        let device: &'static MockDevice = Box::leak(Box::new(MockDevice::h200()));
        let len = Pools::<A>::block_storage_len(&device, &config).expect("valid config");
        let blocks = (0..32).map(|_| BlockSlot::new(A::storage(len))).collect();
        let pools = MemoryPools::new(device, config, blocks, vec![DedicatedSlot::new(); 256])
            .expect("valid pools");
        Self {
            name,
            device,
            pools,
        }
    }
}

/// The row of [`MemkitPools::dedicated_above_16_mib`] (TLSF blocks).
const DEDICATED_16_MIB: &str = "memkit TLSF, 16M dedic.";

impl<A: BenchStorage> Contender for MemkitPools<A> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn replay(&mut self, trace: &Trace) -> (f64, u64) {
        let pools = std::cell::RefCell::new(&mut self.pools);
        replay_with(
            trace,
            |size, align| {
                let request =
                    AllocationRequest::sized(size, align, MemoryUsage::FAST_DEVICE_ACCESS);
                pools.borrow_mut().allocate(&request).ok()
            },
            |a: DeviceAllocation<u32>| {
                // SAFETY: the mock runs no GPU work; the handle came from these pools.
                unsafe { pools.borrow_mut().free(a) }.expect("live allocation")
            },
        )
    }
    fn device_stats(&self) -> (u64, u64) {
        (
            self.device.peak.get(),
            u64::from(self.device.next.get() - 1),
        )
    }
    fn footprint(&self, count: u32, size: u64) -> u64 {
        let mut fresh = Self::with_config(self.name, PoolConfig::DEFAULT);
        let request = AllocationRequest::sized(size, 16, MemoryUsage::FAST_DEVICE_ACCESS);
        let live: Vec<_> = (0..count)
            .map(|_| fresh.pools.allocate(&request).expect("small allocation"))
            .collect();
        let bytes = fresh.device.bytes.get();
        for a in live {
            // SAFETY: no GPU work.
            unsafe { fresh.pools.free(a) }.expect("live allocation");
        }
        bytes
    }
}

// ---- gpu-alloc ---------------------------------------------------------------------------------

mod gpu_alloc_peer {
    use super::*;

    #[derive(Debug)]
    pub struct Memory {
        size: u64,
    }

    #[derive(Default)]
    pub struct Device {
        pub bytes: std::cell::Cell<u64>,
        pub peak: std::cell::Cell<u64>,
        pub allocations: std::cell::Cell<u64>,
    }

    impl gpu_alloc::MemoryDevice<Memory> for Device {
        unsafe fn allocate_memory(
            &self,
            size: u64,
            _memory_type: u32,
            _flags: gpu_alloc::AllocationFlags,
        ) -> Result<Memory, gpu_alloc::OutOfMemory> {
            self.bytes.set(self.bytes.get() + size);
            self.peak.set(self.peak.get().max(self.bytes.get()));
            self.allocations.set(self.allocations.get() + 1);
            Ok(Memory { size })
        }

        unsafe fn deallocate_memory(&self, memory: Memory) {
            self.bytes.set(self.bytes.get() - memory.size);
        }

        unsafe fn map_memory(
            &self,
            _memory: &mut Memory,
            _offset: u64,
            _size: u64,
        ) -> Result<std::ptr::NonNull<u8>, gpu_alloc::DeviceMapError> {
            Err(gpu_alloc::DeviceMapError::MapFailed)
        }

        unsafe fn unmap_memory(&self, _memory: &mut Memory) {}

        unsafe fn invalidate_memory_ranges(
            &self,
            _ranges: &[gpu_alloc::MappedMemoryRange<'_, Memory>],
        ) -> Result<(), gpu_alloc::OutOfMemory> {
            Ok(())
        }

        unsafe fn flush_memory_ranges(
            &self,
            _ranges: &[gpu_alloc::MappedMemoryRange<'_, Memory>],
        ) -> Result<(), gpu_alloc::OutOfMemory> {
            Ok(())
        }
    }

    pub struct GpuAlloc {
        inner: gpu_alloc::GpuAllocator<Memory>,
        device: Device,
    }

    impl GpuAlloc {
        pub fn new() -> Self {
            let flags = |f: F| {
                let mut out = gpu_alloc::MemoryPropertyFlags::empty();
                if f.contains(F::DEVICE_LOCAL) {
                    out |= gpu_alloc::MemoryPropertyFlags::DEVICE_LOCAL;
                }
                if f.contains(F::HOST_VISIBLE) {
                    out |= gpu_alloc::MemoryPropertyFlags::HOST_VISIBLE;
                }
                if f.contains(F::HOST_COHERENT) {
                    out |= gpu_alloc::MemoryPropertyFlags::HOST_COHERENT;
                }
                if f.contains(F::HOST_CACHED) {
                    out |= gpu_alloc::MemoryPropertyFlags::HOST_CACHED;
                }
                out
            };
            let types: Vec<gpu_alloc::MemoryType> = H200_TYPES
                .iter()
                .map(|&(f, heap)| gpu_alloc::MemoryType {
                    heap,
                    props: flags(f),
                })
                .collect();
            let heaps: Vec<gpu_alloc::MemoryHeap> = H200_HEAPS
                .iter()
                .map(|&size| gpu_alloc::MemoryHeap { size })
                .collect();
            let props = gpu_alloc::DeviceProperties {
                memory_types: types.as_slice().into(),
                memory_heaps: heaps.as_slice().into(),
                max_memory_allocation_count: 4096,
                max_memory_allocation_size: 140 * GIB,
                non_coherent_atom_size: 64,
                buffer_device_address: false,
            };
            Self {
                inner: gpu_alloc::GpuAllocator::new(gpu_alloc::Config::i_am_prototyping(), props),
                device: Device::default(),
            }
        }
    }

    impl Contender for GpuAlloc {
        fn name(&self) -> &'static str {
            "gpu-alloc 0.6"
        }
        fn replay(&mut self, trace: &Trace) -> (f64, u64) {
            replay_gpu_alloc(&mut self.inner, &self.device, trace, !0)
        }
        fn device_stats(&self) -> (u64, u64) {
            (self.device.peak.get(), self.device.allocations.get())
        }
        fn footprint(&self, count: u32, size: u64) -> u64 {
            let mut fresh = Self::new();
            let request = gpu_alloc::Request {
                size,
                align_mask: 15,
                usage: gpu_alloc::UsageFlags::FAST_DEVICE_ACCESS,
                memory_types: !0,
            };
            let live: Vec<_> = (0..count)
                // SAFETY: as in `replay`.
                .map(|_| unsafe { fresh.inner.alloc(&fresh.device, request) }.expect("small"))
                .collect();
            let bytes = fresh.device.bytes.get();
            for block in live {
                // SAFETY: as in `replay`.
                unsafe { fresh.inner.dealloc(&fresh.device, block) };
            }
            // SAFETY: every block was freed; same device.
            unsafe { fresh.inner.cleanup(&fresh.device) };
            bytes
        }
    }
}

// ---- gpu-allocator through ash function pointers ---------------------------------------------

mod gpu_allocator_peer {
    use super::*;
    use ash::vk::{self, Handle as _};
    use gpu_allocator::MemoryLocation;
    use gpu_allocator::vulkan::{
        AllocationCreateDesc, AllocationScheme, Allocator, AllocatorCreateDesc,
    };

    /// One mock Vulkan device's objects (sizes by handle) and counters.
    #[derive(Default)]
    struct DeviceState {
        objects: HashMap<u64, u64>,
        bytes: u64,
        peak: u64,
        allocations: u64,
    }

    static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
    /// Every mock device, by `VkDevice` handle (one per gpu-allocator instance).
    static DEVICES: Mutex<Option<HashMap<u64, DeviceState>>> = Mutex::new(None);

    fn with_device<R>(device: vk::Device, f: impl FnOnce(&mut DeviceState) -> R) -> R {
        let mut devices = DEVICES.lock().expect("mock lock");
        f(devices
            .get_or_insert_with(HashMap::new)
            .entry(device.as_raw())
            .or_default())
    }

    unsafe extern "system" fn get_physical_device_memory_properties(
        _physical_device: vk::PhysicalDevice,
        out: *mut vk::PhysicalDeviceMemoryProperties,
    ) {
        let mut p = vk::PhysicalDeviceMemoryProperties {
            memory_type_count: H200_TYPES.len() as u32,
            memory_heap_count: H200_HEAPS.len() as u32,
            ..Default::default()
        };
        for (i, &(flags, heap)) in H200_TYPES.iter().enumerate() {
            p.memory_types[i] = vk::MemoryType {
                property_flags: vk::MemoryPropertyFlags::from_raw(flags.bits()),
                heap_index: heap,
            };
        }
        for (i, &size) in H200_HEAPS.iter().enumerate() {
            p.memory_heaps[i] = vk::MemoryHeap {
                size,
                flags: if i == 0 {
                    vk::MemoryHeapFlags::DEVICE_LOCAL
                } else {
                    vk::MemoryHeapFlags::empty()
                },
            };
        }
        // SAFETY: Vulkan's contract: `out` points to writable properties.
        unsafe { out.write(p) };
    }

    unsafe extern "system" fn get_physical_device_properties(
        _physical_device: vk::PhysicalDevice,
        out: *mut vk::PhysicalDeviceProperties,
    ) {
        let mut p = vk::PhysicalDeviceProperties::default();
        p.limits.buffer_image_granularity = 1024;
        p.limits.non_coherent_atom_size = 64;
        p.limits.max_memory_allocation_count = 4096;
        // SAFETY: Vulkan's contract: `out` points to writable properties.
        unsafe { out.write(p) };
    }

    unsafe extern "system" fn allocate_memory(
        device: vk::Device,
        info: *const vk::MemoryAllocateInfo<'_>,
        _callbacks: *const vk::AllocationCallbacks<'_>,
        out: *mut vk::DeviceMemory,
    ) -> vk::Result {
        // SAFETY: Vulkan's contract: `info` is a valid allocate info.
        let size = unsafe { (*info).allocation_size };
        let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        with_device(device, |d| {
            d.objects.insert(id, size);
            d.bytes += size;
            d.peak = d.peak.max(d.bytes);
            d.allocations += 1;
        });
        // SAFETY: Vulkan's contract: `out` is writable.
        unsafe { out.write(vk::DeviceMemory::from_raw(id)) };
        vk::Result::SUCCESS
    }

    unsafe extern "system" fn free_memory(
        device: vk::Device,
        memory: vk::DeviceMemory,
        _callbacks: *const vk::AllocationCallbacks<'_>,
    ) {
        with_device(device, |d| {
            let size = d.objects.remove(&memory.as_raw()).expect("live object");
            d.bytes -= size;
        });
    }

    unsafe extern "system" fn map_memory(
        _device: vk::Device,
        _memory: vk::DeviceMemory,
        _offset: vk::DeviceSize,
        _size: vk::DeviceSize,
        _flags: vk::MemoryMapFlags,
        _out: *mut *mut c_void,
    ) -> vk::Result {
        // The benchmark only asks for GpuOnly memory.
        vk::Result::ERROR_MEMORY_MAP_FAILED
    }

    unsafe extern "system" fn unmap_memory(_device: vk::Device, _memory: vk::DeviceMemory) {}

    fn instance_fn(name: &CStr) -> *const c_void {
        match name.to_bytes() {
            b"vkGetPhysicalDeviceMemoryProperties" => {
                get_physical_device_memory_properties as *const c_void
            }
            b"vkGetPhysicalDeviceProperties" => get_physical_device_properties as *const c_void,
            _ => std::ptr::null(),
        }
    }

    fn device_fn(name: &CStr) -> *const c_void {
        match name.to_bytes() {
            b"vkAllocateMemory" => allocate_memory as *const c_void,
            b"vkFreeMemory" => free_memory as *const c_void,
            b"vkMapMemory" => map_memory as *const c_void,
            b"vkUnmapMemory" => unmap_memory as *const c_void,
            _ => std::ptr::null(),
        }
    }

    pub struct GpuAllocator {
        inner: Allocator,
        /// This instance's mock device.
        device: vk::Device,
    }

    impl GpuAllocator {
        pub fn new() -> Self {
            let handle = vk::Device::from_raw(NEXT_HANDLE.fetch_add(1, Ordering::Relaxed));
            // SAFETY: every function ash loads is either one of the mock's `extern "system"`
            // functions above, with the Vulkan signature ash expects for that name, or null
            // (ash then installs a stub that panics if called; gpu-allocator calls none).
            let (instance, device) = unsafe {
                (
                    ash::Instance::load_with(instance_fn, vk::Instance::from_raw(1)),
                    ash::Device::load_with(device_fn, handle),
                )
            };
            let inner = Allocator::new(&AllocatorCreateDesc {
                instance,
                device,
                physical_device: vk::PhysicalDevice::from_raw(1),
                debug_settings: gpu_allocator::AllocatorDebugSettings {
                    log_leaks_on_shutdown: false,
                    ..Default::default()
                },
                buffer_device_address: false,
                allocation_sizes: gpu_allocator::AllocationSizes::default(),
            })
            .expect("gpu-allocator over the mock");
            Self {
                inner,
                device: handle,
            }
        }
    }

    impl Contender for GpuAllocator {
        fn name(&self) -> &'static str {
            "gpu-allocator 0.27"
        }
        fn replay(&mut self, trace: &Trace) -> (f64, u64) {
            replay_gpu_allocator(&mut self.inner, trace, !0)
        }
        fn device_stats(&self) -> (u64, u64) {
            with_device(self.device, |d| (d.peak, d.allocations))
        }
        fn footprint(&self, count: u32, size: u64) -> u64 {
            let mut fresh = Self::new();
            let desc = AllocationCreateDesc {
                name: "footprint",
                requirements: vk::MemoryRequirements {
                    size,
                    alignment: 16,
                    memory_type_bits: !0,
                },
                location: MemoryLocation::GpuOnly,
                linear: true,
                allocation_scheme: AllocationScheme::GpuAllocatorManaged,
            };
            let live: Vec<_> = (0..count)
                .map(|_| fresh.inner.allocate(&desc).expect("small allocation"))
                .collect();
            let bytes = with_device(fresh.device, |d| d.bytes);
            for a in live {
                fresh.inner.free(a).expect("live allocation");
            }
            bytes
        }
    }
}

// ---- the run -------------------------------------------------------------------------------------

/// `256 B`, `4 KiB`, `16 MiB`.
fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= MIB && b.is_multiple_of(MIB) => format!("{} MiB", b / MIB),
        b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

struct Row {
    name: &'static str,
    ns_per_op: f64,
    failed: u64,
    peak_device_mib: f64,
    /// Memory objects allocated per replay.
    device_allocations: f64,
}

fn run(trace: &Trace, reps: usize, only: Option<&str>) -> Vec<Row> {
    let mut contenders: Vec<Box<dyn Contender>> = vec![
        Box::new(RawTlsf::new(trace.capacity)),
        Box::new(RawBuddy::new(trace.capacity)),
        Box::new(MemkitPools::<TlsfAllocator<Vec<TlsfNode>>>::new()),
        Box::new(MemkitPools::<BuddyAllocator<Vec<u64>>>::new()),
        Box::new(MemkitPools::<TlsfAllocator<Vec<TlsfNode>>>::dedicated_above_16_mib()),
        Box::new(gpu_alloc_peer::GpuAlloc::new()),
        Box::new(gpu_allocator_peer::GpuAllocator::new()),
    ];
    if let Some(only) = only {
        contenders.retain(|c| c.name().contains(only));
    }
    let ops = trace.ops.len() as f64;
    let (samples, failed) =
        interleaved(contenders.len(), reps, ops, |i| contenders[i].replay(trace));
    contenders
        .iter()
        .zip(samples)
        .zip(failed)
        .map(|((c, s), failed)| {
            let (peak, allocations) = c.device_stats();
            Row {
                name: c.name(),
                ns_per_op: median(s),
                failed,
                peak_device_mib: peak as f64 / MIB as f64,
                device_allocations: allocations as f64 / (reps + 1) as f64,
            }
        })
        .collect()
}

/// Allocate + free of one 4 KiB buffer, `n` times, through a pool and through the raw
/// sub-allocator: the pools' fixed overhead per pair, with every cache warm.
fn pair_overhead(n: u32) -> (f64, f64) {
    let mut raw = RawTlsf::new(GIB);
    let mut pools = MemkitPools::<TlsfAllocator<Vec<TlsfNode>>>::new();
    let request = AllocationRequest::sized(4096, 256, MemoryUsage::FAST_DEVICE_ACCESS);
    // Keep one allocation live so the block is never emptied.
    let keep = pools.pools.allocate(&request).expect("allocation");
    let mut raw_ns = Vec::new();
    let mut pool_ns = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..n {
            let a = raw.0.allocate(4096, 256).expect("allocation");
            raw.0.free(std::hint::black_box(a)).expect("live");
        }
        raw_ns.push(start.elapsed().as_secs_f64() * 1e9 / f64::from(n));
        let start = Instant::now();
        for _ in 0..n {
            let a = pools.pools.allocate(&request).expect("allocation");
            // SAFETY: no GPU work.
            unsafe { pools.pools.free(std::hint::black_box(a)) }.expect("live");
        }
        pool_ns.push(start.elapsed().as_secs_f64() * 1e9 / f64::from(n));
    }
    // SAFETY: no GPU work.
    unsafe { pools.pools.free(keep) }.expect("live");
    (median(raw_ns), median(pool_ns))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only <text>`: just the contenders whose name contains it, and neither the 4 KiB loop
    // nor the footprints (for profiling the replays alone).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    if args.iter().any(|a| a == "--buffers") {
        buffers::run(quick);
        return;
    }
    let reps = if quick { 3 } else { 7 };
    let [game, churn] = traces(quick);
    println!("memkit pools benchmark ({reps} repetitions, median ns per op; H200 memory types)");
    let mut ratios = Vec::new();
    for trace in [&game, &churn] {
        let s = trace.summary();
        println!(
            "\n{}: {} ops, peak {} live allocations / {:.0} MiB, largest {:.1} MiB",
            trace.name,
            trace.ops.len(),
            s.peak_live_count,
            s.peak_live_bytes as f64 / MIB as f64,
            s.largest_request as f64 / MIB as f64
        );
        let rows = run(trace, reps, only);
        println!(
            "  {:<24} {:>10} {:>22} {:>16} {:>18} {:>8}",
            "allocator",
            "ns/op",
            "+ H200 device calls",
            "peak device MiB",
            "objects / replay",
            "failed"
        );
        let ops = trace.ops.len() as f64;
        for r in &rows {
            println!(
                "  {:<24} {:>10.1} {:>22.1} {:>16.0} {:>18.1} {:>8}",
                r.name,
                r.ns_per_op,
                r.ns_per_op + r.device_allocations * DEVICE_NS_PER_OBJECT / ops,
                r.peak_device_mib,
                r.device_allocations,
                r.failed
            );
        }
        let ns = |name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .map_or(f64::NAN, |r| r.ns_per_op)
        };
        let modeled = |name: &str| {
            rows.iter().find(|r| r.name == name).map_or(f64::NAN, |r| {
                r.ns_per_op + r.device_allocations * DEVICE_NS_PER_OBJECT / ops
            })
        };
        let pool_tlsf = ns("memkit pools (TLSF)");
        let pool_buddy = ns("memkit pools (buddy)");
        let best_pool = pool_tlsf.min(pool_buddy);
        let best_modeled = modeled("memkit pools (TLSF)").min(modeled("memkit pools (buddy)"));
        ratios.push((
            trace.name,
            pool_tlsf / ns("raw TLSF (one arena)"),
            pool_buddy / ns("raw buddy (one arena)"),
            ns("gpu-alloc 0.6") / best_pool,
            ns("gpu-allocator 0.27") / best_pool,
            modeled("gpu-alloc 0.6") / best_modeled,
            modeled("gpu-allocator 0.27") / best_modeled,
        ));
    }
    println!(
        "\nratios (targets: pools within 1.5x of their raw sub-allocator; faster than gpu-alloc; 10x faster than gpu-allocator)"
    );
    for (name, tlsf, buddy, gpu_alloc, gpu_allocator, m_alloc, m_allocator) in ratios {
        println!(
            "  {name:<11} pools/raw: TLSF {tlsf:.2}x, buddy {buddy:.2}x;  gpu-alloc / memkit {gpu_alloc:.2}x ({m_alloc:.2}x with device calls);  gpu-allocator / memkit {gpu_allocator:.0}x ({m_allocator:.0}x)"
        );
    }
    if only.is_some() {
        return;
    }
    let (raw, pool) = pair_overhead(if quick { 200_000 } else { 1_000_000 });
    println!(
        "\nallocate + free of one 4 KiB buffer, caches warm: raw TLSF {raw:.1} ns, pools (TLSF) {pool:.1} ns, ratio {:.2}x",
        pool / raw
    );
    buffers::run(quick);
    println!(
        "\nfootprint: device MiB held by N device-local buffers of one size, each allocator in its default configuration"
    );
    let footprints: Vec<Box<dyn Contender>> = vec![
        Box::new(MemkitPools::<TlsfAllocator<Vec<TlsfNode>>>::new()),
        Box::new(gpu_alloc_peer::GpuAlloc::new()),
        Box::new(gpu_allocator_peer::GpuAllocator::new()),
    ];
    // One small buffer (the startup footprint), then many small ones: memkit's blocks hold at
    // most `max_allocations_per_block` (4096) allocations each.
    let cases: [(u32, u64); 4] = [
        (1, 256),
        (10_000, 1 << 10),
        (10_000, 4 << 10),
        (10_000, 16 << 10),
    ];
    print!("  {:<24}", "allocator");
    for (count, size) in cases {
        print!(" {:>14}", format!("{count} x {}", size_label(size)));
    }
    println!();
    for c in &footprints {
        print!("  {:<24}", c.name());
        for (count, size) in cases {
            print!(" {:>14.1}", c.footprint(count, size) as f64 / MIB as f64);
        }
        println!();
    }
}
