//! Buffers created, bound and destroyed in bulk, as the upload benchmark's section 7 does on a
//! GPU (10k buffers of 64 KiB created, every handle dropped, then one `maintain`), over a device
//! whose calls are counters, so the time is memkit's own:
//!
//! - device calls alone: `create_buffer` + `destroy_buffer` of the counting device (the floor);
//! - core pools: the same calls plus `MemoryPools::allocate`, `bind_buffer_memory` and `free`,
//!   with the coordinator's default pool settings;
//! - coordinator: `Coordinator::create_buffer`, drop, `maintain`.
//!
//! The coordinator's overhead over the pools is the ratio of the last two. Memory objects made
//! per round are counted too: on NVIDIA's driver a memory object costs tens of microseconds or
//! more, so a round that makes blocks again pays for them once per block.
//!
//! (memkit-dummy is not used here: its bind checks every buffer already bound to the same
//! memory object for aliasing, which is the point of a misuse detector and would dominate.)

use std::convert::Infallible;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use memkit_core::device::{
    BufferDevice, BufferUsage, CopyCommand, CopyQueue, DedicatedHint, DeviceError, DeviceLimits,
    HeapBudget, MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryProperties,
    MemoryRequirements, WaitStatus,
};
use memkit_core::pool::{AllocationRequest, BlockSlot, DedicatedSlot, MemoryPools};
use memkit_core::tlsf::{TlsfAllocator, TlsfNode};
use memkit_std::{Buffer, Coordinator, CoordinatorConfig, MemoryUsage};

use super::{H200_TYPES, h200_properties, median};

/// The buffer the GPU section creates: 64 KiB.
const SIZE: u64 = 64 << 10;
/// NVIDIA's alignment for buffers with uniform or storage usage.
const ALIGNMENT: u64 = 256;

/// A thread-safe device with the H200's memory types whose calls are counters; host-visible
/// memory is real (the coordinator's staging ring writes into it).
pub struct CountingDevice {
    properties: MemoryProperties,
    next_buffer: AtomicU64,
    next_memory: AtomicU64,
    /// Memory objects allocated, and their bytes, since creation.
    objects: AtomicU64,
    object_bytes: AtomicU64,
    completed: AtomicU64,
    /// Mapped objects' bytes, by handle.
    mapped: Mutex<Vec<(u64, Box<[u8]>)>>,
}

impl CountingDevice {
    pub fn h200() -> Self {
        Self {
            properties: h200_properties(),
            next_buffer: AtomicU64::new(1),
            next_memory: AtomicU64::new(1),
            objects: AtomicU64::new(0),
            object_bytes: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            mapped: Mutex::new(Vec::new()),
        }
    }

    /// Memory objects allocated so far, and their bytes.
    fn objects(&self) -> (u64, u64) {
        (
            self.objects.load(Ordering::Relaxed),
            self.object_bytes.load(Ordering::Relaxed),
        )
    }
}

impl MemoryDevice for CountingDevice {
    type Memory = u64;
    type Buffer = u64;
    type Image = Infallible;

    fn memory_properties(&self) -> &MemoryProperties {
        &self.properties
    }

    fn limits(&self) -> DeviceLimits {
        crate::H200_LIMITS
    }

    fn query_budget(&self, _out: &mut [HeapBudget]) -> bool {
        false
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<u64, Infallible>,
    ) -> Result<u64, DeviceError> {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.object_bytes.fetch_add(info.size, Ordering::Relaxed);
        Ok(self.next_memory.fetch_add(1, Ordering::Relaxed))
    }

    unsafe fn free_memory(&self, memory: u64) {
        let mut mapped = self.mapped.lock().expect("not poisoned");
        mapped.retain(|(m, _)| *m != memory);
    }

    unsafe fn map_memory(&self, memory: u64) -> Result<NonNull<u8>, DeviceError> {
        // Only the staging ring and host-visible blocks are mapped: a few objects. Their size is
        // not known here; the benchmark's ring is 1 MiB and its buffers are device-local, so a
        // mapping of 64 MiB covers any object mapped.
        let mut bytes = vec![0u8; 64 << 20].into_boxed_slice();
        let ptr = NonNull::new(bytes.as_mut_ptr()).expect("a box is not null");
        self.mapped
            .lock()
            .expect("not poisoned")
            .push((memory, bytes));
        Ok(ptr)
    }

    unsafe fn unmap_memory(&self, _memory: u64) {}

    unsafe fn flush_ranges(&self, _ranges: &[MappedRange<u64>]) -> Result<(), DeviceError> {
        Ok(())
    }

    unsafe fn invalidate_ranges(&self, _ranges: &[MappedRange<u64>]) -> Result<(), DeviceError> {
        Ok(())
    }
}

impl BufferDevice for CountingDevice {
    fn create_buffer(
        &self,
        size: u64,
        _usage: BufferUsage,
    ) -> Result<(u64, MemoryRequirements), DeviceError> {
        let buffer = self.next_buffer.fetch_add(1, Ordering::Relaxed);
        Ok((
            buffer,
            MemoryRequirements {
                size: size.next_multiple_of(ALIGNMENT),
                alignment: ALIGNMENT,
                memory_type_bits: (1 << H200_TYPES.len()) - 1,
                dedicated: DedicatedHint::None,
            },
        ))
    }

    unsafe fn bind_buffer_memory(
        &self,
        buffer: u64,
        memory: u64,
        offset: u64,
    ) -> Result<(), DeviceError> {
        std::hint::black_box((buffer, memory, offset));
        Ok(())
    }

    unsafe fn destroy_buffer(&self, buffer: u64) {
        std::hint::black_box(buffer);
    }

    unsafe fn buffer_device_address(&self, _buffer: u64) -> Result<u64, DeviceError> {
        // The bench makes no device-address buffers.
        Err(DeviceError::FeatureNotEnabled)
    }
}

impl CopyQueue for CountingDevice {
    unsafe fn submit_copies(
        &self,
        _commands: &[CopyCommand<'_, u64>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        // Completes at once.
        self.completed.fetch_max(signal_value, Ordering::Release);
        Ok(())
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        Ok(self.completed.load(Ordering::Acquire))
    }

    fn wait(&self, value: u64, _timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        self.completed.fetch_max(value, Ordering::Release);
        Ok(WaitStatus::Completed)
    }
}

type Pools = MemoryPools<
    &'static CountingDevice,
    TlsfAllocator<Vec<TlsfNode>>,
    Vec<BlockSlot<u64, TlsfAllocator<Vec<TlsfNode>>>>,
    Vec<DedicatedSlot<u64>>,
>;

/// One row: median microseconds per buffer over the timed rounds, and memory objects per round.
struct Row {
    name: &'static str,
    us: f64,
    create_us: f64,
    objects_per_round: f64,
    object_mib_per_round: f64,
}

/// Runs `rounds` rounds (plus one untimed first round that makes the blocks) of `round`, which
/// returns (seconds creating, seconds in all) for `count` buffers.
fn measure(
    name: &'static str,
    device: &CountingDevice,
    rounds: usize,
    count: usize,
    mut round: impl FnMut() -> (f64, f64),
) -> Row {
    round();
    let (objects_before, bytes_before) = device.objects();
    let mut all = Vec::new();
    let mut create = Vec::new();
    for _ in 0..rounds {
        let (c, a) = round();
        create.push(c * 1e6 / count as f64);
        all.push(a * 1e6 / count as f64);
    }
    let (objects, bytes) = device.objects();
    Row {
        name,
        us: median(all),
        create_us: median(create),
        objects_per_round: (objects - objects_before) as f64 / rounds as f64,
        object_mib_per_round: (bytes - bytes_before) as f64 / rounds as f64 / (1 << 20) as f64,
    }
}

/// The section: prints one row per contender and the coordinator / pools ratio.
pub fn run(quick: bool) {
    let count = if quick { 2_000 } else { 10_000 };
    let rounds = if quick { 5 } else { 11 };
    let config = CoordinatorConfig {
        // Small: the ring is not what this measures.
        staging_ring_size: 1 << 20,
        max_ring_upload: 256 << 10,
        ..CoordinatorConfig::default()
    };
    println!(
        "\nbuffers: {count} x 64 KiB created, then all destroyed, per round; counting device with \
         H200 memory types; median of {rounds} rounds, us per buffer"
    );
    let mut rows = Vec::new();

    // The floor: the device's own calls.
    let device: &'static CountingDevice = Box::leak(Box::new(CountingDevice::h200()));
    rows.push(measure("device calls alone", device, rounds, count, || {
        let s = Instant::now();
        let buffers: Vec<u64> = (0..count)
            .map(|_| {
                device
                    .create_buffer(SIZE, BufferUsage::STORAGE)
                    .expect("buffer")
                    .0
            })
            .collect();
        let made = s.elapsed().as_secs_f64();
        for b in buffers {
            // SAFETY: never used by a GPU.
            unsafe { device.destroy_buffer(b) };
        }
        (made, s.elapsed().as_secs_f64())
    }));

    // Core pools, with the coordinator's settings.
    let device: &'static CountingDevice = Box::leak(Box::new(CountingDevice::h200()));
    let per_block = Pools::block_storage_len(&device, &config.pools).expect("valid config");
    let blocks = (0..config.max_blocks)
        .map(|_| BlockSlot::new(vec![TlsfNode::EMPTY; per_block]))
        .collect();
    let dedicated = vec![DedicatedSlot::new(); config.max_dedicated as usize];
    let mut pools: Pools =
        MemoryPools::new(device, config.pools, blocks, dedicated).expect("valid pools");
    rows.push(measure("core pools", device, rounds, count, || {
        let s = Instant::now();
        let buffers: Vec<_> = (0..count)
            .map(|_| {
                let (b, requirements) = device
                    .create_buffer(SIZE, BufferUsage::STORAGE)
                    .expect("buffer");
                let request = AllocationRequest::new(requirements, MemoryUsage::FAST_DEVICE_ACCESS);
                let a = pools.allocate(&request).expect("allocation");
                // SAFETY: alive, unbound; the pools placed it for these requirements.
                unsafe { device.bind_buffer_memory(b, a.memory(), a.offset()) }.expect("bind");
                (b, a)
            })
            .collect();
        let made = s.elapsed().as_secs_f64();
        for (b, a) in buffers {
            // SAFETY: never used by a GPU.
            unsafe {
                device.destroy_buffer(b);
                pools.free(a).expect("live allocation");
            }
        }
        (made, s.elapsed().as_secs_f64())
    }));

    // The coordinator.
    let coordinator = Coordinator::new(CountingDevice::h200(), config).expect("coordinator");
    rows.push(measure(
        "coordinator",
        coordinator.device(),
        rounds,
        count,
        || {
            let s = Instant::now();
            let buffers: Vec<Buffer<CountingDevice>> = (0..count)
                .map(|_| {
                    coordinator
                        .create_buffer(SIZE, MemoryUsage::FAST_DEVICE_ACCESS)
                        .expect("buffer")
                })
                .collect();
            let made = s.elapsed().as_secs_f64();
            drop(buffers);
            coordinator.maintain().expect("maintain");
            (made, s.elapsed().as_secs_f64())
        },
    ));
    let stats = coordinator.stats();
    assert_eq!(
        stats.buffers_created, stats.buffers_destroyed,
        "every dropped buffer is destroyed by maintain"
    );
    drop(coordinator);

    println!(
        "  {:<22} {:>10} {:>12} {:>16} {:>16}",
        "contender", "us/buffer", "create us", "objects / round", "object MiB / round"
    );
    for r in &rows {
        println!(
            "  {:<22} {:>10.3} {:>12.3} {:>16.1} {:>16.0}",
            r.name, r.us, r.create_us, r.objects_per_round, r.object_mib_per_round
        );
    }
    let us = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map_or(f64::NAN, |r| r.us)
    };
    println!(
        "  coordinator / core pools: {:.2}x;  coordinator - pools: {:.3} us per buffer",
        us("coordinator") / us("core pools"),
        us("coordinator") - us("core pools")
    );
    // SAFETY: no GPU work; every allocation was freed.
    let report = unsafe { pools.destroy() };
    assert!(report.is_clean(), "the pools' allocations were all freed");
}
