//! Device memory on a real Vulkan driver: the pool benchmark's game-frame and churn traces
//! replayed through memkit's pools over memkit-vulkan, gpu-alloc over ash and gpu-allocator over
//! ash, where every memory object is a real `vkAllocateMemory` / `vkFreeMemory`.
//!
//! ```text
//! cargo bench -p memkit-tests --bench pools_device              # full run
//! cargo bench -p memkit-tests --bench pools_device -- --quick   # smaller traces, 3 repetitions
//! ```
//!
//! `benches/pools.rs` times the allocators' own bookkeeping over a mock device whose calls are
//! free, and models the driver's cost. This one measures it: the time per op includes whatever
//! the driver charges for the memory objects each allocator makes, on the first Vulkan device
//! the loader offers (the H200 on the GPU machine, lavapipe here). Requests are device-only,
//! linear, with the memory types a storage buffer allows on that device, and are never bound:
//! what is measured is the allocators and the driver's memory calls.
//!
//! - memkit pools (TLSF): `MemoryPools::allocate` / `free` over `VulkanDevice`, the pool
//!   benchmark's configuration (default, 16 384 allocations per block).
//! - gpu-alloc 0.6: `GpuAllocator` with `Config::i_am_prototyping()` over an ash-backed
//!   `gpu_alloc::MemoryDevice` (below).
//! - gpu-allocator 0.27: `vulkan::Allocator` on the same `ash::Device` (`GpuOnly`, linear).
//!
//! A time is the median over repetitions (interleaved, rotating order, after one warm-up
//! replay) of replay time / ops; an op is one allocate or one free.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::time::Instant;

use ash::vk;
use memkit_core::device::{
    BufferDevice, BufferUsage, DedicatedHint, DedicatedTo, DeviceError, DeviceLimits, HeapBudget,
    ImageDesc, ImageDevice, ImageFormat, ImageUsage, MappedRange, MemoryAllocateInfo, MemoryDevice,
    MemoryProperties, MemoryRequirements,
};
use memkit_core::pool::{
    AllocationRequest, BlockSlot, DedicatedSlot, DeviceAllocation, MemoryPools, PoolConfig,
};
use memkit_core::tlsf::{TlsfAllocator, TlsfNode};
use memkit_core::{MemoryUsage, ResourceKind};
use memkit_tests::workloads::Trace;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, VulkanDevice};

#[path = "pools/replay.rs"]
mod replay;

use replay::{interleaved, median, replay_gpu_alloc, replay_gpu_allocator, replay_with, traces};

const MIB: u64 = 1 << 20;

/// Memory objects made and device bytes held, as a device wrapper counts them.
#[derive(Default)]
struct ObjectCounter {
    sizes: RefCell<HashMap<vk::DeviceMemory, u64>>,
    made: Cell<u64>,
    bytes: Cell<u64>,
    peak: Cell<u64>,
}

impl ObjectCounter {
    fn made(&self, memory: vk::DeviceMemory, size: u64) {
        self.sizes.borrow_mut().insert(memory, size);
        self.made.set(self.made.get() + 1);
        self.bytes.set(self.bytes.get() + size);
        self.peak.set(self.peak.get().max(self.bytes.get()));
    }

    fn freed(&self, memory: vk::DeviceMemory) {
        let size = self.sizes.borrow_mut().remove(&memory).unwrap_or(0);
        self.bytes.set(self.bytes.get() - size);
    }
}

/// One allocator replaying traces on the device.
trait Contender {
    fn name(&self) -> &'static str;
    /// Replays `trace`; returns (seconds, failed allocations).
    fn replay(&mut self, trace: &Trace, memory_type_bits: u32) -> (f64, u64);
    /// Memory objects made so far and the most device bytes held at once, when counted.
    fn objects(&self) -> Option<(u64, u64)>;
}

// ---- memkit -------------------------------------------------------------------------------------

/// `VulkanDevice` with its memory objects counted; every call forwards.
struct Counted<'d> {
    inner: &'d VulkanDevice,
    counter: ObjectCounter,
}

impl MemoryDevice for Counted<'_> {
    type Memory = vk::DeviceMemory;
    type Buffer = vk::Buffer;
    type Image = vk::Image;

    fn memory_properties(&self) -> &MemoryProperties {
        self.inner.memory_properties()
    }

    fn limits(&self) -> DeviceLimits {
        self.inner.limits()
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        self.inner.query_budget(out)
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<vk::Buffer, vk::Image>,
    ) -> Result<vk::DeviceMemory, DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        let memory = unsafe { self.inner.allocate_memory(info) }?;
        self.counter.made(memory, info.size);
        Ok(memory)
    }

    unsafe fn free_memory(&self, memory: vk::DeviceMemory) {
        self.counter.freed(memory);
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.inner.free_memory(memory) }
    }

    unsafe fn map_memory(&self, memory: vk::DeviceMemory) -> Result<NonNull<u8>, DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.inner.map_memory(memory) }
    }

    unsafe fn unmap_memory(&self, memory: vk::DeviceMemory) {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.inner.unmap_memory(memory) }
    }

    unsafe fn flush_ranges(
        &self,
        ranges: &[MappedRange<vk::DeviceMemory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.inner.flush_ranges(ranges) }
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<vk::DeviceMemory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.inner.invalidate_ranges(ranges) }
    }
}

type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
type Pools<'d> = MemoryPools<
    &'d Counted<'d>,
    Tlsf,
    Vec<BlockSlot<vk::DeviceMemory, Tlsf>>,
    Vec<DedicatedSlot<vk::DeviceMemory>>,
>;

struct MemkitPools<'d> {
    device: &'d Counted<'d>,
    pools: Option<Pools<'d>>,
}

impl<'d> MemkitPools<'d> {
    fn new(device: &'d Counted<'d>) -> Self {
        let config = PoolConfig {
            max_allocations_per_block: 16 * 1024,
            ..PoolConfig::DEFAULT
        };
        let len = Pools::block_storage_len(&device, &config).expect("valid config");
        let blocks = (0..64)
            .map(|_| BlockSlot::new(vec![TlsfNode::EMPTY; len]))
            .collect();
        let pools = MemoryPools::new(device, config, blocks, vec![DedicatedSlot::new(); 256])
            .expect("valid pools");
        Self {
            device,
            pools: Some(pools),
        }
    }
}

impl Drop for MemkitPools<'_> {
    fn drop(&mut self) {
        if let Some(pools) = self.pools.take() {
            // SAFETY: nothing was bound to or submitted with this memory.
            let report = unsafe { pools.destroy() };
            assert!(report.is_clean(), "{report:?}");
        }
    }
}

impl Contender for MemkitPools<'_> {
    fn name(&self) -> &'static str {
        "memkit pools (TLSF)"
    }
    fn replay(&mut self, trace: &Trace, memory_type_bits: u32) -> (f64, u64) {
        let pools = RefCell::new(self.pools.as_mut().expect("live pools"));
        replay_with(
            trace,
            |size, alignment| {
                let requirements = MemoryRequirements {
                    size,
                    alignment,
                    memory_type_bits,
                    dedicated: DedicatedHint::None,
                };
                let request = AllocationRequest::new(requirements, MemoryUsage::FAST_DEVICE_ACCESS);
                pools.borrow_mut().allocate(&request).ok()
            },
            |a: DeviceAllocation<vk::DeviceMemory>| {
                // SAFETY: never bound or used by the GPU; the handle came from these pools.
                unsafe { pools.borrow_mut().free(a) }.expect("live allocation")
            },
        )
    }
    fn objects(&self) -> Option<(u64, u64)> {
        let c = &self.device.counter;
        Some((c.made.get(), c.peak.get()))
    }
}

// ---- gpu-alloc over ash ---------------------------------------------------------------------------

/// gpu-alloc's device trait over an `ash::Device`, counting memory objects.
struct AshForGpuAlloc<'d> {
    device: &'d ash::Device,
    counter: ObjectCounter,
}

impl gpu_alloc::MemoryDevice<vk::DeviceMemory> for AshForGpuAlloc<'_> {
    unsafe fn allocate_memory(
        &self,
        size: u64,
        memory_type: u32,
        _flags: gpu_alloc::AllocationFlags,
    ) -> Result<vk::DeviceMemory, gpu_alloc::OutOfMemory> {
        let info = vk::MemoryAllocateInfo::default()
            .allocation_size(size)
            .memory_type_index(memory_type);
        // SAFETY: gpu-alloc asks for a type and size the device reported (its contract).
        match unsafe { self.device.allocate_memory(&info, None) } {
            Ok(memory) => {
                self.counter.made(memory, size);
                Ok(memory)
            }
            Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY) => {
                Err(gpu_alloc::OutOfMemory::OutOfDeviceMemory)
            }
            Err(_) => Err(gpu_alloc::OutOfMemory::OutOfHostMemory),
        }
    }

    unsafe fn deallocate_memory(&self, memory: vk::DeviceMemory) {
        self.counter.freed(memory);
        // SAFETY: allocated above, unused by the GPU (gpu-alloc's contract).
        unsafe { self.device.free_memory(memory, None) };
    }

    unsafe fn map_memory(
        &self,
        memory: &mut vk::DeviceMemory,
        offset: u64,
        size: u64,
    ) -> Result<NonNull<u8>, gpu_alloc::DeviceMapError> {
        // SAFETY: host-visible and not mapped (gpu-alloc's contract).
        let ptr = unsafe {
            self.device
                .map_memory(*memory, offset, size, vk::MemoryMapFlags::empty())
        }
        .map_err(|_| gpu_alloc::DeviceMapError::MapFailed)?;
        NonNull::new(ptr.cast()).ok_or(gpu_alloc::DeviceMapError::MapFailed)
    }

    unsafe fn unmap_memory(&self, memory: &mut vk::DeviceMemory) {
        // SAFETY: mapped (gpu-alloc's contract).
        unsafe { self.device.unmap_memory(*memory) };
    }

    unsafe fn invalidate_memory_ranges(
        &self,
        _ranges: &[gpu_alloc::MappedMemoryRange<'_, vk::DeviceMemory>],
    ) -> Result<(), gpu_alloc::OutOfMemory> {
        // Never called: the replays map nothing.
        Ok(())
    }

    unsafe fn flush_memory_ranges(
        &self,
        _ranges: &[gpu_alloc::MappedMemoryRange<'_, vk::DeviceMemory>],
    ) -> Result<(), gpu_alloc::OutOfMemory> {
        Ok(())
    }
}

struct GpuAlloc<'d> {
    inner: gpu_alloc::GpuAllocator<vk::DeviceMemory>,
    device: AshForGpuAlloc<'d>,
}

impl<'d> GpuAlloc<'d> {
    fn new(headless: &'d HeadlessDevice) -> Self {
        let vulkan = headless.device();
        let props = vulkan.memory_properties();
        let types: Vec<gpu_alloc::MemoryType> =
            props
                .types()
                .iter()
                .map(|t| gpu_alloc::MemoryType {
                    heap: t.heap_index,
                    props: gpu_alloc::MemoryPropertyFlags::from_bits_truncate(
                        t.properties.bits() as u8
                    ),
                })
                .collect();
        let heaps: Vec<gpu_alloc::MemoryHeap> = props
            .heaps()
            .iter()
            .map(|h| gpu_alloc::MemoryHeap { size: h.size })
            .collect();
        let limits = vulkan.limits();
        let properties = gpu_alloc::DeviceProperties {
            memory_types: types.as_slice().into(),
            memory_heaps: heaps.as_slice().into(),
            max_memory_allocation_count: limits.max_memory_allocation_count,
            max_memory_allocation_size: limits.max_memory_allocation_size,
            non_coherent_atom_size: limits.non_coherent_atom_size,
            buffer_device_address: false,
        };
        Self {
            inner: gpu_alloc::GpuAllocator::new(gpu_alloc::Config::i_am_prototyping(), properties),
            device: AshForGpuAlloc {
                device: headless.ash_device(),
                counter: ObjectCounter::default(),
            },
        }
    }
}

impl Drop for GpuAlloc<'_> {
    fn drop(&mut self) {
        // SAFETY: every block was freed by the replays; same device.
        unsafe { self.inner.cleanup(&self.device) };
    }
}

impl Contender for GpuAlloc<'_> {
    fn name(&self) -> &'static str {
        "gpu-alloc 0.6"
    }
    fn replay(&mut self, trace: &Trace, memory_type_bits: u32) -> (f64, u64) {
        replay_gpu_alloc(&mut self.inner, &self.device, trace, memory_type_bits)
    }
    fn objects(&self) -> Option<(u64, u64)> {
        let c = &self.device.counter;
        Some((c.made.get(), c.peak.get()))
    }
}

// ---- gpu-allocator over ash -------------------------------------------------------------------------

struct GpuAllocator {
    inner: gpu_allocator::vulkan::Allocator,
}

impl GpuAllocator {
    fn new(headless: &HeadlessDevice) -> Self {
        let inner =
            gpu_allocator::vulkan::Allocator::new(&gpu_allocator::vulkan::AllocatorCreateDesc {
                instance: headless.instance().clone(),
                device: headless.ash_device().clone(),
                physical_device: headless.device().physical_device(),
                debug_settings: gpu_allocator::AllocatorDebugSettings {
                    log_leaks_on_shutdown: false,
                    ..Default::default()
                },
                buffer_device_address: false,
                allocation_sizes: gpu_allocator::AllocationSizes::default(),
            })
            .expect("gpu-allocator on the device");
        Self { inner }
    }
}

impl Contender for GpuAllocator {
    fn name(&self) -> &'static str {
        "gpu-allocator 0.27"
    }
    fn replay(&mut self, trace: &Trace, memory_type_bits: u32) -> (f64, u64) {
        replay_gpu_allocator(&mut self.inner, trace, memory_type_bits)
    }
    fn objects(&self) -> Option<(u64, u64)> {
        None
    }
}

// ---- images -----------------------------------------------------------------------------------------

/// What the driver says about a few typical images, and each one's memory from the pools (a
/// dedicated object when the driver requires or prefers one), bound and destroyed.
fn images(vulkan: &VulkanDevice, counted: &Counted<'_>) {
    let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST;
    let descs = [
        (
            "4K RGBA8 texture, mips",
            ImageDesc::new_2d(ImageFormat::Rgba8Srgb, 4096, 4096, usage).with_full_mip_chain(),
        ),
        (
            "256x256 RGBA8 texture",
            ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 256, 256, usage),
        ),
        (
            "4K RGBA16F render target",
            ImageDesc::new_2d(
                ImageFormat::Rgba16Float,
                3840,
                2160,
                ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED,
            ),
        ),
        (
            "4K D32 depth, 4x MSAA",
            ImageDesc::new_2d(
                ImageFormat::D32Float,
                3840,
                2160,
                ImageUsage::DEPTH_STENCIL_ATTACHMENT,
            )
            .with_samples(4),
        ),
    ];
    let mut pools = MemkitPools::new(counted);
    let pools = pools.pools.as_mut().expect("live pools");
    println!("\nimages: what the driver asks for, and where the pools put them");
    println!(
        "  {:<26} {:>12} {:>10} {:>10} {:>11}",
        "image", "bytes", "alignment", "dedicated", "placed"
    );
    for (name, desc) in descs {
        let (image, req) = match vulkan.create_image(&desc) {
            Ok(r) => r,
            Err(e) => {
                println!("  {name:<26} not made: {e}");
                continue;
            }
        };
        let request = AllocationRequest::new(req, MemoryUsage::FAST_DEVICE_ACCESS)
            .with_kind(ResourceKind::Optimal);
        let allocation = if req.dedicated == DedicatedHint::Required {
            // SAFETY: just created, not bound.
            unsafe { pools.allocate_dedicated_to(&request, DedicatedTo::Image(image)) }
        } else {
            pools.allocate(&request)
        }
        .expect("image memory");
        // SAFETY: an allowed type, aligned, dedicated when required.
        unsafe { vulkan.bind_image_memory(image, allocation.memory(), allocation.offset()) }
            .expect("bind");
        println!(
            "  {name:<26} {:>12} {:>10} {:>10} {:>11}",
            req.size,
            req.alignment,
            format!("{:?}", req.dedicated),
            if allocation.is_dedicated() {
                "own object"
            } else {
                "block"
            }
        );
        // SAFETY: never used by the GPU.
        unsafe {
            vulkan.destroy_image(image);
            pools.free(allocation).expect("live allocation");
        }
    }
}

// ---- the run ----------------------------------------------------------------------------------------

/// `vkAllocateMemory` + `vkFreeMemory` of one object of `size` bytes in memory type
/// `memory_type`: median microseconds over `n` pairs.
fn object_pair_us(device: &ash::Device, memory_type: u32, size: u64, n: usize) -> f64 {
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(memory_type);
    let samples = (0..n)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: a type and size the device reported; freed at once, never used.
            unsafe {
                let memory = device.allocate_memory(&info, None).expect("memory object");
                device.free_memory(memory, None);
            }
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(samples)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 7 };
    let headless = match HeadlessDevice::new(HeadlessConfig::default()) {
        Ok(h) => h,
        Err(e) => {
            println!("pools_device: no Vulkan device here ({e}); nothing measured");
            return;
        }
    };
    let vulkan = headless.device();
    // The memory types a device-local storage buffer allows, for every contender.
    let (probe, requirements) = vulkan
        .create_buffer(
            1 << 20,
            BufferUsage::STORAGE | BufferUsage::TRANSFER_DST | BufferUsage::TRANSFER_SRC,
        )
        .expect("probe buffer");
    // SAFETY: never bound or used.
    unsafe { vulkan.destroy_buffer(probe) };
    let bits = requirements.memory_type_bits;
    let device_local = vulkan
        .memory_properties()
        .types()
        .iter()
        .enumerate()
        .position(|(i, t)| {
            bits & (1 << i) != 0
                && t.properties
                    .contains(memkit_core::device::MemoryPropertyFlags::DEVICE_LOCAL)
        })
        .unwrap_or(0) as u32;
    println!(
        "memkit pools on a real device ({}; {reps} repetitions, median ns per op, driver calls included)",
        vulkan
            .probe()
            .map_or_else(|e| e.to_string(), |p| p.device_name.clone())
    );
    println!(
        "vkAllocateMemory + vkFreeMemory, device-local type {device_local}: 64 KiB {:.1} us, 256 MiB {:.1} us",
        object_pair_us(headless.ash_device(), device_local, 64 << 10, 101),
        object_pair_us(headless.ash_device(), device_local, 256 * MIB, 21),
    );

    let [game, churn] = traces(quick);
    let counted = Counted {
        inner: vulkan,
        counter: ObjectCounter::default(),
    };
    let mut ratios = Vec::new();
    for trace in [&game, &churn] {
        // Fresh allocators per trace, so objects and peaks are per trace.
        counted.counter.made.set(0);
        counted.counter.peak.set(counted.counter.bytes.get());
        let mut contenders: Vec<Box<dyn Contender + '_>> = vec![
            Box::new(MemkitPools::new(&counted)),
            Box::new(GpuAlloc::new(&headless)),
            Box::new(GpuAllocator::new(&headless)),
        ];
        let ops = trace.ops.len() as f64;
        let (samples, failed) = interleaved(contenders.len(), reps, ops, |i| {
            contenders[i].replay(trace, bits)
        });
        println!("\n{}: {} ops", trace.name, trace.ops.len());
        println!(
            "  {:<22} {:>12} {:>18} {:>16} {:>8}",
            "allocator", "ns/op", "objects / replay", "peak device MiB", "failed"
        );
        let mut ns = Vec::new();
        for ((c, s), f) in contenders.iter().zip(samples).zip(failed) {
            let t = median(s);
            ns.push(t);
            let (objects, peak) = c.objects().map_or(("n/a".into(), "n/a".into()), |(o, p)| {
                (
                    format!("{:.1}", o as f64 / (reps + 1) as f64),
                    format!("{:.0}", p as f64 / MIB as f64),
                )
            });
            println!(
                "  {:<22} {:>12.1} {:>18} {:>16} {:>8}",
                c.name(),
                t,
                objects,
                peak,
                f
            );
        }
        ratios.push((trace.name, ns[1] / ns[0], ns[2] / ns[0]));
        drop(contenders);
    }
    println!(
        "\nratios, driver calls included (target: faster than gpu-alloc; 10x faster than gpu-allocator)"
    );
    for (name, gpu_alloc, gpu_allocator) in ratios {
        println!(
            "  {name:<11} gpu-alloc / memkit {gpu_alloc:.2}x;  gpu-allocator / memkit {gpu_allocator:.0}x"
        );
    }
    images(vulkan, &counted);
    drop(counted);
    let messages = headless.finish();
    assert!(messages.is_empty(), "{messages:?}");
}
