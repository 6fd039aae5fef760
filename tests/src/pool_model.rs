//! A model of the memory-type pools (`memkit_core::pool::MemoryPools`) over a real
//! memkit-dummy device, driven by an op sequence. Proptest (`tests/tests/pool_model.rs`) and
//! cargo-fuzz (`fuzz/fuzz_targets/pools.rs`) both use it, so a failure found by either
//! reproduces in the other.
//!
//! Each allocation is for a real dummy buffer or image created with the usage it stands for
//! (images dedicated to themselves when the device requires it); the pools' answer is bound to
//! it, so the dummy's own detectors (granularity conflicts, aliasing, misaligned or out-of-range
//! binds, types the resource does not allow, dedicated mismatches, missing device-address
//! support) watch every placement. Host-visible allocations get a pattern written through their
//! mapped pointer and flushed; on free the pattern must read back intact from the device's view,
//! so an overlap, a wrong pointer or a flush that missed bytes shows up as data.
//!
//! After every op: live allocations are disjoint per memory object, inside it and aligned;
//! statistics agree with the model and with the device (objects, bytes per heap); the object
//! count and (in within-budget mode) the budget are never exceeded; the device saw no misuse.
//! At the end everything is freed, the pools destroyed clean, and the device reports no leak.
//!
//! The fuzz target reads workloads in a compact byte encoding ([`PoolWorkload`], module
//! `encoding`) and starts from committed seeds ([`fuzz_seeds`], module `fuzz_seeds`).

use std::collections::BTreeMap;

use memkit_core::buddy::BuddyAllocator;
use memkit_core::device::MemoryRequirements;
use memkit_core::device::{
    BufferUsage, DedicatedHint, DedicatedTo, DeviceError, ImageDesc, ImageFormat, ImageUsage,
    MemoryPropertyFlags as F,
};
use memkit_core::pool::{
    AllocationRequest, BlockAllocator, BlockSlot, DedicatedSlot, DefragmentationLimits,
    DeviceAllocation, MemoryPools, PoolConfig, PoolError, PoolStats, RawDeviceAllocation,
    Relocation,
};
use memkit_core::tlsf::{TlsfAllocator, TlsfNode};
use memkit_core::{FreeError, MemoryUsage as U, ResourceKind};
use memkit_dummy::{DummyBuffer, DummyDevice, DummyImage, DummyMemory, Preset};

mod encoding;
mod fuzz_seeds;

pub use encoding::{MAX_OPS, PoolWorkload, code_of_size, size_of_code};
pub use fuzz_seeds::{SEED_OPS, SeedShape, WorkloadDepth, fuzz_seeds, seed_ops};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// TLSF blocks with heap-allocated node storage.
pub type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
/// Buddy blocks with heap-allocated bitmap storage.
pub type Buddy = BuddyAllocator<Vec<u64>>;
/// Pools over a dummy device, with `A` as every block's sub-allocator.
pub type Pools<'d, A> = MemoryPools<
    &'d DummyDevice,
    A,
    Vec<BlockSlot<DummyMemory, A>>,
    Vec<DedicatedSlot<DummyMemory>>,
>;

/// A block sub-allocator the model can make storage for.
pub trait ModelStorage: BlockAllocator {
    /// Storage of `len` elements, as `MemoryPools::block_storage_len` asks.
    fn storage(len: usize) -> Self::Storage;
}

impl ModelStorage for Tlsf {
    fn storage(len: usize) -> Vec<TlsfNode> {
        vec![TlsfNode::EMPTY; len]
    }
}

impl ModelStorage for Buddy {
    fn storage(len: usize) -> Vec<u64> {
        vec![0; len]
    }
}

/// Pools of `config` on `dev` with `blocks` block slots and 64 dedicated slots.
///
/// # Panics
///
/// If `config` is invalid for `dev` (a test's own mistake).
pub fn pools<A: ModelStorage>(
    dev: &DummyDevice,
    config: PoolConfig,
    blocks: usize,
) -> Pools<'_, A> {
    let len = Pools::<A>::block_storage_len(&dev, &config).expect("valid configuration");
    let slots = (0..blocks)
        .map(|_| BlockSlot::new(A::storage(len)))
        .collect();
    MemoryPools::new(dev, config, slots, vec![DedicatedSlot::new(); 64]).expect("valid pools")
}

/// A preset device. Freed host-visible objects stay quarantined (so writes through stale
/// pointers are caught) up to 8 MiB: the default 64 MiB costs seconds of hashing in debug builds.
/// Resources of 144 MiB and more require a dedicated object (no preset does), so the model also
/// walks `allocate_dedicated_to` for buffers and images.
pub fn device(preset: Preset) -> DummyDevice {
    device_with_quarantine(preset, 8 * MIB)
}

/// [`device`] with `quarantine` bytes of freed host-visible objects kept quarantined.
///
/// # Panics
///
/// If the preset's configuration is invalid (a bug in memkit-dummy).
pub fn device_with_quarantine(preset: Preset, quarantine: u64) -> DummyDevice {
    let config = preset
        .config()
        .with_report_leaks_on_drop(false)
        .with_freed_mapping_quarantine(quarantine)
        .with_dedicated_required_from(Some(144 * MIB));
    DummyDevice::new(config).expect("valid preset")
}

/// Usages the workload draws from.
pub const USAGES: [U; 7] = [
    U::FAST_DEVICE_ACCESS,
    U::UPLOAD,
    U::DOWNLOAD,
    U::HOST_ACCESS,
    U::UPLOAD.union(U::FAST_DEVICE_ACCESS),
    U::empty(),
    U::DEVICE_ADDRESS.union(U::FAST_DEVICE_ACCESS),
];

/// One step of a pool workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolOp {
    /// Create a buffer (or, if `optimal`, an image) of about `size` bytes, allocate memory for it
    /// and bind it.
    Allocate {
        /// Requested size in bytes (an image's may round up).
        size: u64,
        /// Index into [`USAGES`], taken modulo its length.
        usage: usize,
        /// An image (optimal tiling) instead of a buffer.
        optimal: bool,
        /// Ask for a dedicated memory object.
        dedicated: bool,
    },
    /// Free the live allocation at `index % live`.
    Free {
        /// Which live allocation.
        index: usize,
    },
    /// Free again a handle already freed: must be refused and change nothing.
    ReplayFree {
        /// Which freed handle (modulo their count).
        index: usize,
    },
    /// Release every empty block.
    Trim,
    /// Query the device's budgets again.
    RefreshBudget,
    /// A defragmentation pass: every live allocation is asked where it goes; each one that
    /// moves gets a new resource bound at its new place and its bytes copied there, and the old
    /// resource and allocation go; then the pass ends.
    Defragment {
        /// At most this many allocations moved (0: no limit).
        max_allocations: u8,
    },
}

/// The resource an allocation is bound to.
#[derive(Clone, Copy, Debug)]
enum Resource {
    Buffer(DummyBuffer),
    Image(DummyImage),
}

impl Resource {
    fn dedicated_to(self) -> DedicatedTo<DummyBuffer, DummyImage> {
        match self {
            Self::Buffer(b) => DedicatedTo::Buffer(b),
            Self::Image(i) => DedicatedTo::Image(i),
        }
    }
}

/// An image of about `size` bytes: one-byte texels, rows of at most 16384 (up to 160 MiB that
/// keeps both extents within 16384, which every preset, like most real devices, supports).
fn image_of(size: u64) -> ImageDesc {
    let width = size.min(16384) as u32;
    let height = size.div_ceil(16384) as u32;
    ImageDesc::new_2d(ImageFormat::R8Unorm, width, height, ImageUsage::SAMPLED)
}

struct Live {
    allocation: DeviceAllocation<DummyMemory>,
    resource: Resource,
    /// What the resource was made from, to make one like it when the allocation moves.
    size: u64,
    usage: U,
    requirements: MemoryRequirements,
    optimal: bool,
    /// A byte pattern written at both ends through the mapped pointer (host-visible only).
    pattern: Option<u8>,
}

/// Bytes of the pattern at each end of a host-visible allocation.
const PATTERN_LEN: u64 = 64;

/// The pools under test and what the workload holds: live allocations with their resources, and
/// freed handles to replay.
pub struct PoolModel<'d, A: ModelStorage> {
    dev: &'d DummyDevice,
    pools: Pools<'d, A>,
    live: Vec<Live>,
    freed: Vec<RawDeviceAllocation<DummyMemory>>,
    within_budget: bool,
    /// Fault injection is on: a failed map is an expected refusal.
    faults: bool,
    next_pattern: u8,
    /// Blocks defragmentation passes emptied and released.
    blocks_defragmented: u32,
}

impl<'d, A: ModelStorage> PoolModel<'d, A> {
    /// Pools on `dev` (24 block slots, 512 allocations per block at most, otherwise
    /// `PoolConfig::DEFAULT`), in within-budget mode or not.
    pub fn new(dev: &'d DummyDevice, within_budget: bool) -> Self {
        let config = PoolConfig {
            within_budget,
            max_allocations_per_block: 512,
            ..PoolConfig::DEFAULT
        };
        Self {
            dev,
            pools: pools::<A>(dev, config, 24),
            live: Vec::new(),
            freed: Vec::new(),
            within_budget,
            faults: false,
            next_pattern: 1,
            blocks_defragmented: 0,
        }
    }

    /// Fault injection is on (or off): a failed map becomes an expected refusal.
    pub fn with_faults(mut self, faults: bool) -> Self {
        self.faults = faults;
        self
    }

    /// Live allocations the workload holds.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Handles freed so far (what [`PoolOp::ReplayFree`] picks from).
    pub fn freed_count(&self) -> usize {
        self.freed.len()
    }

    /// Blocks defragmentation passes emptied and released so far.
    pub fn blocks_defragmented(&self) -> u32 {
        self.blocks_defragmented
    }

    /// The pools' statistics over every memory type.
    pub fn stats(&self) -> PoolStats {
        self.pools.total_stats()
    }

    /// Applies `op` to the pools and the model, then checks every invariant.
    pub fn step(&mut self, op: PoolOp) -> Result<(), String> {
        match op {
            PoolOp::Allocate {
                size,
                usage,
                optimal,
                dedicated,
            } => self.allocate(size, USAGES[usage % USAGES.len()], optimal, dedicated)?,
            PoolOp::Free { index } => {
                if !self.live.is_empty() {
                    let live = self.live.swap_remove(index % self.live.len());
                    self.free(live)?;
                }
            }
            PoolOp::ReplayFree { index } => {
                if !self.freed.is_empty() {
                    let raw = self.freed[index % self.freed.len()];
                    let before = self.pools.total_stats();
                    // SAFETY: refused (checked below), so nothing is freed.
                    let result = unsafe { self.pools.free(DeviceAllocation::from_raw(raw)) };
                    if !matches!(
                        result,
                        Err(FreeError::DoubleFree | FreeError::StaleAllocation)
                    ) {
                        return Err(format!("replayed free of {raw:?} gave {result:?}"));
                    }
                    if self.pools.total_stats() != before {
                        return Err("a refused free changed the statistics".into());
                    }
                }
            }
            PoolOp::Trim => {
                let before = self.pools.total_stats();
                let released = self.pools.trim();
                if released != before.empty_blocks || self.pools.total_stats().empty_blocks != 0 {
                    return Err(format!(
                        "trim released {released} of {}",
                        before.empty_blocks
                    ));
                }
            }
            PoolOp::RefreshBudget => self.pools.refresh_budget(),
            PoolOp::Defragment { max_allocations } => self.defragment(max_allocations)?,
        }
        self.check()
    }

    fn allocate(
        &mut self,
        size: u64,
        usage: U,
        optimal: bool,
        dedicated: bool,
    ) -> Result<(), String> {
        let (resource, requirements) = self.create_resource(size, usage, optimal)?;
        let mut request = AllocationRequest::new(requirements, usage);
        request.kind = if optimal {
            ResourceKind::Optimal
        } else {
            ResourceKind::Linear
        };
        request.dedicated = dedicated;
        let result = if requirements.dedicated == DedicatedHint::Required {
            // SAFETY: the resource was just created and is not bound.
            unsafe {
                self.pools
                    .allocate_dedicated_to(&request, resource.dedicated_to())
            }
        } else {
            self.pools.allocate(&request)
        };
        let allocation = match result {
            Ok(a) => a,
            Err(e) => {
                self.destroy(resource);
                return self.check_refusal(e, &request);
            }
        };
        self.check_placement(&allocation, &requirements, usage)?;
        Self::bind(self.dev, resource, &allocation)?;
        let mut live = Live {
            allocation,
            resource,
            size,
            usage,
            requirements,
            optimal,
            pattern: None,
        };
        if let Some(ptr) = live.allocation.mapped() {
            let pattern = self.next_pattern;
            self.next_pattern = self.next_pattern.wrapping_add(1).max(1);
            let size = live.allocation.size();
            for (offset, len) in Self::pattern_ranges(size) {
                // SAFETY: the allocation is live and host-visible; its mapping covers
                // [0, size) from `ptr`, and [offset, offset + len) lies inside it. Nothing else
                // writes these bytes (the dummy's GPU only runs copies, and none is submitted).
                unsafe {
                    std::ptr::write_bytes(ptr.as_ptr().add(offset as usize), pattern, len as usize)
                };
                self.pools
                    .flush(&live.allocation, offset, len)
                    .map_err(|e| format!("flush: {e}"))?;
            }
            live.pattern = Some(pattern);
        }
        self.live.push(live);
        Ok(())
    }

    /// A buffer (or, if `optimal`, an image) of about `size` bytes for `usage`.
    fn create_resource(
        &self,
        size: u64,
        usage: U,
        optimal: bool,
    ) -> Result<(Resource, MemoryRequirements), String> {
        let mut buffer_usage = BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST;
        if usage.contains(U::DEVICE_ADDRESS) {
            buffer_usage |= BufferUsage::DEVICE_ADDRESS | BufferUsage::STORAGE;
        }
        if optimal {
            let created = self.dev.create_image(&image_of(size));
            created.map(|(image, req)| (Resource::Image(image), req))
        } else {
            let created = self.dev.create_buffer(size, buffer_usage);
            created.map(|(buffer, req)| (Resource::Buffer(buffer), req))
        }
        .map_err(|e| format!("create resource: {e}"))
    }

    /// The allocation suits the resource's requirements and the usage.
    fn check_placement(
        &self,
        allocation: &DeviceAllocation<DummyMemory>,
        requirements: &MemoryRequirements,
        usage: U,
    ) -> Result<(), String> {
        let types = self.dev.memory_properties().types();
        let flags = types[allocation.memory_type() as usize].properties;
        let info = self
            .dev
            .memory_info(allocation.memory())
            .ok_or("allocation names a dead memory object")?;
        if info.memory_type != allocation.memory_type()
            || allocation.size() != requirements.size
            || !allocation.offset().is_multiple_of(requirements.alignment)
            || allocation.offset() + allocation.size() > info.size
            || requirements.memory_type_bits & (1 << allocation.memory_type()) == 0
            || (usage.needs_host_access() && !flags.contains(F::HOST_VISIBLE))
            || allocation.mapped().is_some() != flags.contains(F::HOST_VISIBLE)
        {
            return Err(format!(
                "bad placement {allocation:?} for {requirements:?} {usage:?} in {info:?}"
            ));
        }
        Ok(())
    }

    fn bind(
        dev: &DummyDevice,
        resource: Resource,
        allocation: &DeviceAllocation<DummyMemory>,
    ) -> Result<(), String> {
        let (memory, offset) = (allocation.memory(), allocation.offset());
        match resource {
            Resource::Buffer(buffer) => dev.bind_buffer_memory(buffer, memory, offset),
            Resource::Image(image) => dev.bind_image_memory(image, memory, offset),
        }
        .map_err(|e| format!("bind: {e}"))
    }

    /// One defragmentation pass over every live allocation, each move done as an application
    /// does it (a new resource, the bytes copied, the old resource and allocation gone), then
    /// the pass's report checked against what happened.
    fn defragment(&mut self, max_allocations: u8) -> Result<(), String> {
        let limits = match max_allocations {
            0 => DefragmentationLimits::UNLIMITED,
            n => DefragmentationLimits::UNLIMITED.with_max_allocations(u32::from(n)),
        };
        let objects_before = self.dev.counters().live_memory_objects;
        let bytes_before = self.pools.total_stats().block_bytes;
        let plan = self
            .pools
            .begin_defragmentation(&limits)
            .map_err(|e| format!("begin: {e}"))?;
        if plan.allocations > limits.max_allocations {
            return Err(format!("plan {plan:?} over {limits:?}"));
        }
        let mut moves = 0;
        for i in 0..self.live.len() {
            let live = &self.live[i];
            let relocation = self
                .pools
                .relocate(&live.allocation, live.requirements.alignment)
                .map_err(|e| format!("relocate {:?}: {e}", live.allocation))?;
            let Relocation::Move(new) = relocation else {
                continue;
            };
            moves += 1;
            let (size, usage, optimal, pattern) =
                (live.size, live.usage, live.optimal, live.pattern);
            let (old_memory, old_type) = (live.allocation.memory(), live.allocation.memory_type());
            let (resource, requirements) = self.create_resource(size, usage, optimal)?;
            if requirements != self.live[i].requirements
                || new.memory() == old_memory
                || new.memory_type() != old_type
            {
                return Err(format!("moved {:?} to {new:?}", self.live[i].allocation));
            }
            self.check_placement(&new, &requirements, usage)?;
            Self::bind(self.dev, resource, &new)?;
            // The copy: what the model knows of the bytes, the pattern at both ends.
            if let (Some(pattern), Some(ptr)) = (pattern, new.mapped()) {
                for (offset, len) in Self::pattern_ranges(new.size()) {
                    // SAFETY: as in `allocate`: the new allocation is live and host-visible,
                    // and [offset, offset + len) lies inside its mapping.
                    unsafe {
                        std::ptr::write_bytes(
                            ptr.as_ptr().add(offset as usize),
                            pattern,
                            len as usize,
                        )
                    };
                    self.pools
                        .flush(&new, offset, len)
                        .map_err(|e| format!("flush: {e}"))?;
                }
            }
            let old = std::mem::replace(
                &mut self.live[i],
                Live {
                    allocation: new,
                    resource,
                    size,
                    usage,
                    requirements,
                    optimal,
                    pattern,
                },
            );
            // Checks the old pattern, destroys the old resource and frees its allocation.
            self.free(old)?;
        }
        let report = self.pools.end_defragmentation();
        let stats = self.pools.total_stats();
        let objects_after = self.dev.counters().live_memory_objects;
        if report.plan != plan
            || report.moves != moves
            || report.moves + report.no_room != plan.allocations
            || report.blocks_released > plan.blocks
            || (report.no_room == 0 && report.blocks_released != plan.blocks)
            || objects_after + u64::from(report.blocks_released) != objects_before
            || stats.block_bytes + report.bytes_released != bytes_before
            || self.pools.is_defragmenting()
        {
            return Err(format!(
                "pass {report:?} after {moves} moves; objects {objects_before} -> \
                 {objects_after}, block bytes {bytes_before} -> {}",
                stats.block_bytes
            ));
        }
        self.blocks_defragmented += report.blocks_released;
        Ok(())
    }

    fn destroy(&self, resource: Resource) {
        match resource {
            Resource::Buffer(buffer) => self.dev.destroy_buffer(buffer),
            Resource::Image(image) => self.dev.destroy_image(image),
        }
    }

    fn pattern_ranges(size: u64) -> [(u64, u64); 2] {
        let len = size.min(PATTERN_LEN);
        [(0, len), (size - len, len)]
    }

    /// A refused allocation must be a limit the device or the configuration really imposes.
    fn check_refusal(&self, e: PoolError, request: &AllocationRequest) -> Result<(), String> {
        match e {
            // Heaps are finite: the dummy enforces their size, and budgets in within-budget mode.
            PoolError::Device(DeviceError::OutOfDeviceMemory) => Ok(()),
            PoolError::Device(DeviceError::MapFailed) if self.faults => Ok(()),
            PoolError::OverBudget { .. } if self.within_budget => Ok(()),
            PoolError::BlockSlotsExhausted | PoolError::DedicatedSlotsExhausted => Ok(()),
            PoolError::NoCompatibleType => {
                let types = self.dev.memory_properties().types();
                let bits = request.requirements.memory_type_bits;
                let any_host = (0..types.len()).any(|t| {
                    bits & (1 << t) != 0
                        && types[t].properties.contains(F::HOST_VISIBLE)
                        && !types[t].properties.contains(F::PROTECTED)
                });
                if request.usage.needs_host_access() && !any_host {
                    Ok(())
                } else {
                    Err(format!("NoCompatibleType for {request:?}"))
                }
            }
            e => Err(format!("unexpected refusal {e:?} of {request:?}")),
        }
    }

    fn free(&mut self, live: Live) -> Result<(), String> {
        let a = &live.allocation;
        if let Some(pattern) = live.pattern {
            for (offset, len) in Self::pattern_ranges(a.size()) {
                let mut out = vec![0; len as usize];
                self.dev
                    .read_memory(a.memory(), a.offset() + offset, &mut out)
                    .map_err(|e| format!("read: {e}"))?;
                if out.iter().any(|&b| b != pattern) {
                    return Err(format!("pattern {pattern} of {a:?} overwritten: {out:?}"));
                }
            }
        }
        self.destroy(live.resource);
        let raw = *a.raw();
        // SAFETY: the dummy's GPU ran nothing on it, and its buffer was destroyed above.
        unsafe { self.pools.free(live.allocation) }.map_err(|e| format!("free refused: {e}"))?;
        self.freed.push(raw);
        Ok(())
    }

    /// Every invariant: no device misuse; live allocations disjoint per memory object, with
    /// linear and optimal never sharing a granularity page; statistics agreeing with the model
    /// and the device; object count and (within-budget mode) budgets respected.
    pub fn check(&self) -> Result<(), String> {
        let misuses = self.dev.misuses();
        if !misuses.is_empty() {
            return Err(format!("device misuse: {misuses:?}"));
        }
        // Disjoint per memory object; linear and optimal never share a granularity page.
        let granularity = self.dev.limits().buffer_image_granularity;
        let mut by_memory: BTreeMap<DummyMemory, Vec<(u64, u64, bool)>> = BTreeMap::new();
        for l in &self.live {
            let a = &l.allocation;
            by_memory.entry(a.memory()).or_default().push((
                a.offset(),
                a.offset() + a.size(),
                l.optimal,
            ));
        }
        for ranges in by_memory.values_mut() {
            ranges.sort_unstable();
            for w in ranges.windows(2) {
                let ((_, end, opt0), (start, _, opt1)) = (w[0], w[1]);
                if end > start {
                    return Err(format!("overlap: {w:?}"));
                }
                if opt0 != opt1 && (end - 1) / granularity == start / granularity {
                    return Err(format!("linear and optimal share a page: {w:?}"));
                }
            }
        }
        // Statistics against the model and the device.
        let total = self.pools.total_stats();
        let counters = self.dev.counters();
        let live_bytes: u64 = self.live.iter().map(|l| l.allocation.size()).sum();
        if total.live_allocations() != self.live.len() as u64
            || u64::from(total.memory_objects()) != counters.live_memory_objects
            || u64::from(self.pools.memory_objects()) != counters.live_memory_objects
            || total.used_bytes() < live_bytes
            || total.used_bytes() > total.reserved_bytes()
        {
            return Err(format!(
                "stats {total:?} vs {} live ({live_bytes} bytes), device {counters:?}",
                self.live.len()
            ));
        }
        let limits = self.dev.limits();
        if counters.live_memory_objects > u64::from(limits.max_memory_allocation_count) {
            return Err("object count exceeded".into());
        }
        for heap in 0..self.dev.memory_properties().heaps().len() as u32 {
            let h = self.pools.heap_stats(heap).ok_or("missing heap")?;
            if h.pools.reserved_bytes() != self.dev.heap_used(heap) {
                return Err(format!(
                    "heap {heap}: pools hold {} bytes, device {}",
                    h.pools.reserved_bytes(),
                    self.dev.heap_used(heap)
                ));
            }
            if self.within_budget && self.dev.heap_used(heap) > h.budget {
                return Err(format!("heap {heap} over budget: {h:?}"));
            }
        }
        Ok(())
    }

    /// Teardown: frees everything (checking each pattern), checks the invariants, destroys the
    /// pools (their report must be clean) and asks the device for leaks (there must be none).
    pub fn finish(mut self) -> Result<(), String> {
        while let Some(live) = self.live.pop() {
            self.free(live)?;
        }
        self.check()?;
        // SAFETY: everything was freed; the dummy's GPU ran nothing.
        let report = unsafe { self.pools.destroy() };
        if !report.is_clean() {
            return Err(format!("teardown found leaks: {report:?}"));
        }
        let leaks = self.dev.leak_report();
        if !leaks.is_empty() {
            return Err(format!("device leaks: {leaks:?}"));
        }
        Ok(())
    }
}

/// Runs `ops` through fresh pools on a fresh `preset` device, then tears down. In within-budget
/// mode heap 0 gets a tight budget of 96 MiB. Errors name the preset and the failing op.
pub fn run<A: ModelStorage>(
    preset: Preset,
    within_budget: bool,
    ops: &[PoolOp],
) -> Result<(), String> {
    run_observed::<A>(preset, within_budget, ops, |_, _, _| {})
}

/// [`run`], calling `observe(op, statistics before it, model after it)` once each op's checks
/// have passed: to see which states a workload reaches.
pub fn run_observed<A: ModelStorage>(
    preset: Preset,
    within_budget: bool,
    ops: &[PoolOp],
    mut observe: impl FnMut(PoolOp, PoolStats, &PoolModel<'_, A>),
) -> Result<(), String> {
    let dev = device(preset);
    if within_budget {
        // A tight budget on heap 0 (reported by presets that have the query; estimated as 80% of
        // the heap by the others).
        dev.set_heap_budget(0, 96 * MIB);
    }
    let mut model = PoolModel::<A>::new(&dev, within_budget);
    for (i, &op) in ops.iter().enumerate() {
        let before = model.stats();
        model
            .step(op)
            .map_err(|e| format!("{preset} op {i} {op:?}: {e}"))?;
        observe(op, before, &model);
    }
    model.finish().map_err(|e| format!("{preset} finish: {e}"))
}
