//! The memory-type pools against a model, on every memkit-dummy preset, with real resources.
//!
//! Each allocation is for a real dummy buffer or image created with the usage it stands for
//! (images dedicated to themselves when the device requires it); the pools' answer is bound to it, so the dummy's own detectors (granularity
//! conflicts, aliasing, misaligned or out-of-range binds, types the resource does not allow,
//! dedicated mismatches, missing device-address support) watch every placement. Host-visible
//! allocations get a pattern written through their mapped pointer and flushed; on free the
//! pattern must read back intact from the device's view, so an overlap, a wrong pointer or a
//! flush that missed bytes shows up as data.
//!
//! After every op: live allocations are disjoint per memory object, inside it and aligned;
//! statistics agree with the model and with the device (objects, bytes per heap); the object
//! count and (in within-budget mode) the budget are never exceeded; the device saw no misuse.
//! At the end everything is freed, the pools destroyed clean, and the device reports no leak.
//!
//! Also here: fault injection at every device allocation and every map, and bad input.

use std::collections::BTreeMap;

use memkit_core::buddy::BuddyAllocator;
use memkit_core::device::{
    BufferUsage, DedicatedHint, DedicatedTo, DeviceError, ImageDesc, ImageFormat, ImageUsage,
    MemoryPropertyFlags as F,
};
use memkit_core::pool::{
    AllocationRequest, BlockAllocator, BlockSlot, DedicatedSlot, DeviceAllocation, MemoryPools,
    PoolConfig, PoolError, RawDeviceAllocation,
};
use memkit_core::tlsf::{TlsfAllocator, TlsfNode};
use memkit_core::{FreeError, MemoryUsage as U, ResourceKind};
use memkit_dummy::{DummyBuffer, DummyDevice, DummyImage, DummyMemory, Preset};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
type Buddy = BuddyAllocator<Vec<u64>>;
type Pools<'d, A> = MemoryPools<
    &'d DummyDevice,
    A,
    Vec<BlockSlot<DummyMemory, A>>,
    Vec<DedicatedSlot<DummyMemory>>,
>;

trait TestStorage: BlockAllocator {
    fn storage(len: usize) -> Self::Storage;
}
impl TestStorage for Tlsf {
    fn storage(len: usize) -> Vec<TlsfNode> {
        vec![TlsfNode::EMPTY; len]
    }
}
impl TestStorage for Buddy {
    fn storage(len: usize) -> Vec<u64> {
        vec![0; len]
    }
}

fn pools<A: TestStorage>(dev: &DummyDevice, config: PoolConfig, blocks: usize) -> Pools<'_, A> {
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
fn device(preset: Preset) -> DummyDevice {
    device_with_quarantine(preset, 8 * MIB)
}

fn device_with_quarantine(preset: Preset, quarantine: u64) -> DummyDevice {
    let config = preset
        .config()
        .with_report_leaks_on_drop(false)
        .with_freed_mapping_quarantine(quarantine)
        .with_dedicated_required_from(Some(144 * MIB));
    DummyDevice::new(config).expect("valid preset")
}

/// Usages the workload draws from.
const USAGES: [U; 7] = [
    U::FAST_DEVICE_ACCESS,
    U::UPLOAD,
    U::DOWNLOAD,
    U::HOST_ACCESS,
    U::UPLOAD.union(U::FAST_DEVICE_ACCESS),
    U::empty(),
    U::DEVICE_ADDRESS.union(U::FAST_DEVICE_ACCESS),
];

#[derive(Clone, Copy, Debug)]
enum Op {
    Allocate {
        size: u64,
        usage: usize,
        optimal: bool,
        dedicated: bool,
    },
    Free {
        index: usize,
    },
    /// Free again a handle already freed: must be refused and change nothing.
    ReplayFree {
        index: usize,
    },
    Trim,
    RefreshBudget,
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![
        4 => 1u64..4096,
        3 => 4096u64..MIB,
        2 => MIB..16 * MIB,
        1 => 16 * MIB..160 * MIB,
    ];
    prop_oneof![
        8 => (size, 0..USAGES.len(), any::<bool>(), prop::bool::weighted(0.05)).prop_map(
            |(size, usage, optimal, dedicated)| Op::Allocate { size, usage, optimal, dedicated }
        ),
        6 => any::<usize>().prop_map(|index| Op::Free { index }),
        1 => any::<usize>().prop_map(|index| Op::ReplayFree { index }),
        1 => Just(Op::Trim),
        1 => Just(Op::RefreshBudget),
    ]
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
    optimal: bool,
    /// A byte pattern written at both ends through the mapped pointer (host-visible only).
    pattern: Option<u8>,
}

/// Bytes of the pattern at each end of a host-visible allocation.
const PATTERN_LEN: u64 = 64;

struct Model<'d, A: TestStorage> {
    dev: &'d DummyDevice,
    pools: Pools<'d, A>,
    live: Vec<Live>,
    freed: Vec<RawDeviceAllocation<DummyMemory>>,
    within_budget: bool,
    /// Fault injection is on: a failed map is an expected refusal.
    faults: bool,
    next_pattern: u8,
}

impl<'d, A: TestStorage> Model<'d, A> {
    fn new(dev: &'d DummyDevice, within_budget: bool) -> Self {
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
        }
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Allocate {
                size,
                usage,
                optimal,
                dedicated,
            } => self.allocate(size, USAGES[usage], optimal, dedicated)?,
            Op::Free { index } => {
                if !self.live.is_empty() {
                    let live = self.live.swap_remove(index % self.live.len());
                    self.free(live)?;
                }
            }
            Op::ReplayFree { index } => {
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
            Op::Trim => {
                let before = self.pools.total_stats();
                let released = self.pools.trim();
                if released != before.empty_blocks || self.pools.total_stats().empty_blocks != 0 {
                    return Err(format!(
                        "trim released {released} of {}",
                        before.empty_blocks
                    ));
                }
            }
            Op::RefreshBudget => self.pools.refresh_budget(),
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
        let mut buffer_usage = BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST;
        if usage.contains(U::DEVICE_ADDRESS) {
            buffer_usage |= BufferUsage::DEVICE_ADDRESS | BufferUsage::STORAGE;
        }
        let (resource, requirements) = if optimal {
            let created = self.dev.create_image(&image_of(size));
            created.map(|(image, req)| (Resource::Image(image), req))
        } else {
            let created = self.dev.create_buffer(size, buffer_usage);
            created.map(|(buffer, req)| (Resource::Buffer(buffer), req))
        }
        .map_err(|e| format!("create resource: {e}"))?;
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
        let types = self.dev.memory_properties().types();
        let flags = types[allocation.memory_type() as usize].properties;
        let info = self
            .dev
            .memory_info(allocation.memory())
            .ok_or("allocation names a dead memory object")?;
        if info.memory_type != allocation.memory_type()
            || allocation.size() != requirements.size
            || allocation.offset() % requirements.alignment != 0
            || allocation.offset() + allocation.size() > info.size
            || requirements.memory_type_bits & (1 << allocation.memory_type()) == 0
            || (usage.needs_host_access() && !flags.contains(F::HOST_VISIBLE))
            || allocation.mapped().is_some() != flags.contains(F::HOST_VISIBLE)
        {
            return Err(format!(
                "bad placement {allocation:?} for {requirements:?} {usage:?} in {info:?}"
            ));
        }
        let (memory, offset) = (allocation.memory(), allocation.offset());
        match resource {
            Resource::Buffer(buffer) => self.dev.bind_buffer_memory(buffer, memory, offset),
            Resource::Image(image) => self.dev.bind_image_memory(image, memory, offset),
        }
        .map_err(|e| format!("bind: {e}"))?;
        let mut live = Live {
            allocation,
            resource,
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

    fn check(&self) -> Result<(), String> {
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

    fn finish(mut self) -> Result<(), String> {
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

fn run<A: TestStorage>(preset: Preset, within_budget: bool, ops: &[Op]) -> Result<(), String> {
    let dev = device(preset);
    if within_budget {
        // A tight budget on heap 0 (reported by presets that have the query; estimated as 80% of
        // the heap by the others).
        dev.set_heap_budget(0, 96 * MIB);
    }
    let mut model = Model::<A>::new(&dev, within_budget);
    for (i, &op) in ops.iter().enumerate() {
        model
            .step(op)
            .map_err(|e| format!("{preset} op {i} {op:?}: {e}"))?;
    }
    model.finish().map_err(|e| format!("{preset} finish: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn pools_match_the_model_on_every_preset(
        tlsf in any::<bool>(),
        within_budget in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        for preset in Preset::ALL {
            let result = if tlsf {
                run::<Tlsf>(preset, within_budget, &ops)
            } else {
                run::<Buddy>(preset, within_budget, &ops)
            };
            prop_assert!(result.is_ok(), "{}", result.unwrap_err());
        }
    }
}

/// For each k, the k-th `allocate_memory` (then the k-th `map_memory`) fails: the caller gets a
/// typed error or a fallback type, nothing leaks, and the pools keep working afterwards.
fn fault_at_every_point<A: TestStorage>(preset: Preset) {
    let dev = device(preset);
    let mut model = Model::<A>::new(&dev, false);
    for op in workload_ops() {
        model.step(op).unwrap_or_else(|e| panic!("{preset}: {e}"));
    }
    model.finish().unwrap();
    let counters = dev.counters();
    let (allocations, maps) = (counters.allocation_calls, counters.map_calls);
    assert!(
        allocations >= 5,
        "{preset}: workload made {allocations} objects"
    );
    for (site, calls) in [("allocation", allocations), ("map", maps)] {
        for k in 1..=calls {
            // No quarantine: hashing every freed mapping, once per k, is what would cost here.
            let dev = device_with_quarantine(preset, 0);
            if site == "allocation" {
                dev.fail_allocation_call(k, DeviceError::OutOfDeviceMemory);
            } else {
                dev.fail_map_call(k);
            }
            let mut model = Model::<A>::new(&dev, false);
            model.faults = true;
            let mut failed = 0;
            for op in workload_ops() {
                let before = model.live.len();
                match model.step(op) {
                    Ok(()) => {}
                    Err(e) => panic!("{preset} {site} {k}: {e}"),
                }
                if matches!(op, Op::Allocate { .. }) && model.live.len() == before {
                    failed += 1;
                }
            }
            // The injected failure was seen or absorbed by a fallback; nothing else failed.
            assert!(
                failed <= 1,
                "{preset} {site} {k}: {failed} allocations failed"
            );
            // Still works.
            model
                .step(Op::Allocate {
                    size: 4096,
                    usage: 1,
                    optimal: false,
                    dedicated: false,
                })
                .unwrap();
            model
                .finish()
                .unwrap_or_else(|e| panic!("{preset} {site} {k}: {e}"));
            assert!(dev.leak_report().is_empty());
        }
    }
}

/// A fixed workload touching blocks, growth, dedicated objects and every usage.
fn workload_ops() -> Vec<Op> {
    let ops = [
        (4096, 0, false),
        (3 * MIB, 1, false),
        (100 * MIB, 0, false),
        (300, 2, false),
        (5 * MIB, 0, true),
        (64 * 1024, 4, false),
        (700, 6, false),
        (2 * MIB, 3, true),
    ];
    let mut out = Vec::new();
    for round in 0..3 {
        for &(size, usage, optimal) in &ops {
            out.push(Op::Allocate {
                size,
                usage,
                optimal,
                dedicated: false,
            });
        }
        out.push(Op::Free { index: round });
    }
    out
}

#[test]
fn fault_injection_tlsf() {
    for preset in Preset::ALL {
        fault_at_every_point::<Tlsf>(preset);
    }
}

#[test]
fn fault_injection_buddy() {
    for preset in Preset::ALL {
        fault_at_every_point::<Buddy>(preset);
    }
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    let dev = DummyDevice::new(
        Preset::Mobile
            .config()
            .with_max_memory_allocation_count(3)
            .with_report_leaks_on_drop(false),
    )
    .unwrap();
    let mut p = pools::<Tlsf>(&dev, PoolConfig::DEFAULT, 8);
    let sized = |size| AllocationRequest::sized(size, 16, U::empty());
    assert_eq!(p.allocate(&sized(0)), Err(PoolError::ZeroSize));
    let mut bits = AllocationRequest::sized(64, 16, U::UPLOAD);
    bits.requirements.memory_type_bits = 0b101;
    assert_eq!(p.allocate(&bits), Err(PoolError::NoCompatibleType));
    assert_eq!(
        p.allocate(&sized(256 * MIB + 1)),
        Err(PoolError::TooLarge {
            size: 256 * MIB + 1,
            max: 256 * MIB
        })
    );
    // Object count: three objects, then refused.
    let a: Vec<_> = (0..3)
        .map(|_| p.allocate(&sized(64).with_dedicated()).unwrap())
        .collect();
    assert_eq!(
        p.allocate(&sized(64).with_dedicated()),
        Err(PoolError::ObjectCountExhausted { limit: 3 })
    );
    let raw = *a[0].raw();
    // SAFETY: nothing used the memory.
    unsafe {
        for x in a {
            p.free(x).unwrap();
        }
        // Freed, then freed again; and a handle of other pools.
        assert_eq!(
            p.free(DeviceAllocation::from_raw(raw)),
            Err(FreeError::DoubleFree)
        );
        let mut q = pools::<Tlsf>(&dev, PoolConfig::DEFAULT, 8);
        let foreign = q.allocate(&sized(64)).unwrap();
        let foreign_raw = *foreign.raw();
        assert_eq!(
            p.free(DeviceAllocation::from_raw(foreign_raw)),
            Err(FreeError::ForeignAllocation)
        );
        q.free(foreign).unwrap();
        assert!(q.destroy().is_clean());
    }
    // Within-budget mode: the mobile preset has no budget query, so 80% of the 512 MiB heap.
    let mut strict = pools::<Tlsf>(
        &dev,
        PoolConfig {
            within_budget: true,
            ..PoolConfig::DEFAULT
        },
        8,
    );
    let big = strict
        .allocate(&sized(250 * MIB).with_memory_type(0))
        .unwrap();
    assert_eq!(
        strict.allocate(&sized(200 * MIB).with_memory_type(0)),
        Err(PoolError::OverBudget { heap: 0 })
    );
    // SAFETY: nothing used the memory.
    unsafe {
        strict.free(big).unwrap();
        assert!(strict.destroy().is_clean());
        assert!(p.destroy().is_clean());
    }
    assert!(dev.leak_report().is_empty());
    assert!(dev.misuses().is_empty(), "{:?}", dev.misuses());
}

#[test]
fn startup_footprint_is_a_few_mib_per_heap() {
    for preset in Preset::ALL {
        let dev = device(preset);
        let mut p = pools::<Tlsf>(&dev, PoolConfig::DEFAULT, 8);
        let mut live = Vec::new();
        for usage in [U::FAST_DEVICE_ACCESS, U::UPLOAD, U::DOWNLOAD] {
            live.push(
                p.allocate(&AllocationRequest::sized(256, 16, usage))
                    .unwrap(),
            );
        }
        // At most one first block (2 MiB) per memory type used, for three usages.
        for heap in 0..dev.memory_properties().heaps().len() as u32 {
            let used = dev.heap_used(heap);
            assert!(
                used <= 6 * MIB,
                "{preset} heap {heap}: {used} bytes for 3 small allocations"
            );
        }
        // SAFETY: nothing used the memory.
        unsafe {
            for a in live {
                p.free(a).unwrap();
            }
            assert!(p.destroy().is_clean());
        }
    }
}
