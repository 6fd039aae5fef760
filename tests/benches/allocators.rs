//! The sub-allocator benchmark: replays seeded workloads (`memkit_tests::workloads`) through
//! memkit's sub-allocators and, in the same run, through the peers a user would pick instead, and
//! reports speed, memory overhead, failures and fragmentation side by side, as ratios.
//!
//! ```text
//! cargo bench -p memkit-tests --bench allocators                  # full run (about 15 s here)
//! cargo bench -p memkit-tests --bench allocators -- --quick       # about 2 s
//! cargo bench -p memkit-tests --bench allocators -- --json        # machine-readable
//! cargo bench -p memkit-tests --bench allocators -- --help        # every flag
//! ```
//!
//! An "op" is one allocate or one free call made through the adapter, including the replay's
//! handle-table store or take (the same for every allocator). Times are the median, over batches
//! of consecutive ops pooled from every repetition, of batch time / batch length: robust against
//! the preemptions of a shared machine. Memory figures come from a separate, untimed replay that
//! also checks every placement (alignment, bounds, no overlap).

use std::fmt::Write as _;
use std::time::Instant;

use memkit_tests::workloads::{
    ChurnConfig, FragmentationProbe, GameFrameConfig, ProbeConfig, Trace, TraceOp,
    fragmentation_probe, game_frame, small_object_churn,
};

/// What the replay needs from an allocator; one implementation per allocator measured.
trait Adapter {
    /// What the caller keeps for one live allocation.
    type Handle;

    /// Reserves `size` bytes at a multiple of `align`, or `None` when the allocator refuses.
    fn allocate(&mut self, size: u64, align: u64) -> Option<Self::Handle>;

    /// Returns an allocation.
    fn free(&mut self, handle: Self::Handle);

    /// The aligned offset the caller would use.
    fn offset(&self, handle: &Self::Handle) -> u64;

    /// Bytes this allocation holds back from other callers (its rounded size, padding and any
    /// over-allocation made to emulate alignment).
    fn reserved(&self, handle: &Self::Handle) -> u64;

    /// [`Adapter::allocate`] plus the reservation, for the untimed accounting replay.
    /// Allocators that only know their reservation in aggregate override it.
    fn allocate_accounted(&mut self, size: u64, align: u64) -> Option<(Self::Handle, u64)> {
        let handle = self.allocate(size, align)?;
        let reserved = self.reserved(&handle);
        Some((handle, reserved))
    }

    /// A cross-check at the end of the accounting replay: the allocator's own peak of reserved
    /// bytes, where it keeps one.
    fn own_peak_reserved(&self) -> Option<u64> {
        None
    }
}

const fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}

/// The peers, each used the way its documentation suggests; alignment and size limits they do not
/// handle natively are emulated as a user would (over-allocate, then align inside).
mod peers {
    use super::{Adapter, align_up};
    use core::alloc::Layout;

    use core::sync::atomic::{AtomicU64, Ordering};

    /// Byte unit of every allocator that counts in units (offset-allocator's units, gpu-alloc's
    /// minimal buddy, the frame size, memkit's granule): by default 16 B, the smallest alignment
    /// the workloads ask for, so 16-byte alignment is native everywhere. `--unit` changes it.
    static UNIT: AtomicU64 = AtomicU64::new(16);

    /// The unit in bytes (read once per allocator construction).
    pub fn unit() -> u64 {
        UNIT.load(Ordering::Relaxed)
    }

    /// Sets the unit before any allocator is built.
    pub fn set_unit(bytes: u64) {
        UNIT.store(bytes, Ordering::Relaxed);
    }

    /// `offset-allocator` (Sebastian Aaltonen's OffsetAllocator, ported): no alignment
    /// parameter, `u32` units. Each request asks for `ceil(size / unit) + align / unit - 1` units
    /// (no extra when `align <= unit`) and the caller aligns inside; the reservation is the unit
    /// count the allocator reports.
    pub struct OffsetAllocatorPeer {
        inner: offset_allocator::Allocator<u32>,
        unit: u64,
    }

    impl OffsetAllocatorPeer {
        pub fn new(capacity: u64) -> Self {
            let unit = unit();
            let units = u32::try_from(capacity / unit).expect("arena too large for u32 units");
            Self {
                inner: offset_allocator::Allocator::with_max_allocs(units, 256 * 1024),
                unit,
            }
        }
    }

    /// A live offset-allocator allocation and the aligned byte offset inside it.
    pub struct OffsetHandle {
        raw: offset_allocator::Allocation<u32>,
        offset: u64,
    }

    impl Adapter for OffsetAllocatorPeer {
        type Handle = OffsetHandle;

        fn allocate(&mut self, size: u64, align: u64) -> Option<OffsetHandle> {
            let unit = self.unit;
            let units = size.div_ceil(unit) + align.max(unit) / unit - 1;
            let raw = self.inner.allocate(u32::try_from(units).ok()?)?;
            let offset = align_up(u64::from(raw.offset) * unit, align);
            Some(OffsetHandle { raw, offset })
        }

        fn free(&mut self, handle: OffsetHandle) {
            self.inner.free(handle.raw);
        }

        fn offset(&self, handle: &OffsetHandle) -> u64 {
            handle.offset
        }

        fn reserved(&self, handle: &OffsetHandle) -> u64 {
            u64::from(self.inner.allocation_size(handle.raw)) * self.unit
        }
    }

    /// VMA's virtual block (its default TLSF algorithm, default strategy) through `vk-mem`, in
    /// bytes, with native alignment. VMA keeps alignment padding as free blocks, so a virtual
    /// allocation reserves exactly its size.
    pub struct VmaVirtualPeer {
        block: vk_mem::VirtualBlock,
    }

    impl VmaVirtualPeer {
        pub fn new(capacity: u64) -> Self {
            let block = vk_mem::VirtualBlock::new(vk_mem::VirtualBlockCreateInfo {
                size: capacity,
                ..Default::default()
            })
            .expect("VMA refused to create a virtual block");
            Self { block }
        }
    }

    /// A live VMA virtual allocation.
    pub struct VmaHandle {
        raw: vk_mem::VirtualAllocation,
        offset: u64,
        size: u64,
    }

    impl Adapter for VmaVirtualPeer {
        type Handle = VmaHandle;

        fn allocate(&mut self, size: u64, align: u64) -> Option<VmaHandle> {
            let info = vk_mem::VirtualAllocationCreateInfo {
                size,
                alignment: align,
                user_data: 0,
                flags: vk_mem::VirtualAllocationCreateFlags::empty(),
            };
            // SAFETY: the block outlives every allocation made from it (the adapter frees them
            // all before it drops), and the create info is fully initialised.
            let (raw, offset) = unsafe { self.block.allocate(info) }.ok()?;
            Some(VmaHandle { raw, offset, size })
        }

        fn free(&mut self, mut handle: VmaHandle) {
            // SAFETY: the handle came from this block and is freed once (the replay takes it out
            // of its table).
            unsafe { self.block.free(&mut handle.raw) };
        }

        fn offset(&self, handle: &VmaHandle) -> u64 {
            handle.offset
        }

        fn reserved(&self, handle: &VmaHandle) -> u64 {
            handle.size
        }
    }

    /// `gpu-alloc`'s `GpuAllocator` with one device-local memory type on a 32 GiB heap, so that
    /// every request under 1 GiB takes its buddy strategy (the dedicated threshold is
    /// `min(dedicated_threshold, heap / 32)`) and the buddy's memory object is 1 GiB
    /// (`initial_buddy_dedicated_size`, also capped at heap / 32). The mock device grants one
    /// live 1 GiB memory object at a time and refuses a second, so the buddy works inside one
    /// 1 GiB arena like the others; minimal buddy block 16 B. Measured: `GpuAllocator::alloc` /
    /// `dealloc` end to end (strategy choice, buddy, `MemoryBlock` with its `Arc` clone).
    pub struct GpuAllocPeer {
        inner: gpu_alloc::GpuAllocator<MockMemory>,
        device: MockDevice,
    }

    /// A fake memory object: just its size.
    #[derive(Debug)]
    pub struct MockMemory {
        #[expect(dead_code, reason = "only shown in Debug output")]
        size: u64,
    }

    /// Hands out at most one live memory object of at most `capacity` bytes.
    pub struct MockDevice {
        capacity: u64,
        live: core::cell::Cell<u32>,
    }

    impl gpu_alloc::MemoryDevice<MockMemory> for MockDevice {
        unsafe fn allocate_memory(
            &self,
            size: u64,
            _memory_type: u32,
            _flags: gpu_alloc::AllocationFlags,
        ) -> Result<MockMemory, gpu_alloc::OutOfMemory> {
            if self.live.get() > 0 || size > self.capacity {
                return Err(gpu_alloc::OutOfMemory::OutOfDeviceMemory);
            }
            self.live.set(self.live.get() + 1);
            Ok(MockMemory { size })
        }

        unsafe fn deallocate_memory(&self, _memory: MockMemory) {
            self.live.set(self.live.get() - 1);
        }

        unsafe fn map_memory(
            &self,
            _memory: &mut MockMemory,
            _offset: u64,
            _size: u64,
        ) -> Result<core::ptr::NonNull<u8>, gpu_alloc::DeviceMapError> {
            Err(gpu_alloc::DeviceMapError::MapFailed)
        }

        unsafe fn unmap_memory(&self, _memory: &mut MockMemory) {}

        unsafe fn invalidate_memory_ranges(
            &self,
            _ranges: &[gpu_alloc::MappedMemoryRange<'_, MockMemory>],
        ) -> Result<(), gpu_alloc::OutOfMemory> {
            Ok(())
        }

        unsafe fn flush_memory_ranges(
            &self,
            _ranges: &[gpu_alloc::MappedMemoryRange<'_, MockMemory>],
        ) -> Result<(), gpu_alloc::OutOfMemory> {
            Ok(())
        }
    }

    impl GpuAllocPeer {
        pub fn new(capacity: u64) -> Self {
            let config = gpu_alloc::Config {
                dedicated_threshold: u64::MAX,
                preferred_dedicated_threshold: u64::MAX,
                transient_dedicated_threshold: u64::MAX,
                starting_free_list_chunk: capacity,
                final_free_list_chunk: capacity,
                minimal_buddy_size: unit(),
                initial_buddy_dedicated_size: capacity,
            };
            let types = [gpu_alloc::MemoryType {
                heap: 0,
                props: gpu_alloc::MemoryPropertyFlags::DEVICE_LOCAL,
            }];
            let heaps = [gpu_alloc::MemoryHeap {
                size: capacity * 32,
            }];
            let props = gpu_alloc::DeviceProperties {
                memory_types: types.as_slice().into(),
                memory_heaps: heaps.as_slice().into(),
                max_memory_allocation_count: 4096,
                max_memory_allocation_size: capacity,
                non_coherent_atom_size: 1,
                buffer_device_address: false,
            };
            Self {
                inner: gpu_alloc::GpuAllocator::new(config, props),
                device: MockDevice {
                    capacity,
                    live: core::cell::Cell::new(0),
                },
            }
        }
    }

    impl Adapter for GpuAllocPeer {
        type Handle = gpu_alloc::MemoryBlock<MockMemory>;

        fn allocate(&mut self, size: u64, align: u64) -> Option<Self::Handle> {
            let request = gpu_alloc::Request {
                size,
                align_mask: align - 1,
                usage: gpu_alloc::UsageFlags::FAST_DEVICE_ACCESS,
                memory_types: 1,
            };
            // SAFETY: the mock device is the same for every call on this allocator and outlives
            // every block (the adapter frees them all before it drops).
            unsafe { self.inner.alloc(&self.device, request) }.ok()
        }

        fn free(&mut self, handle: Self::Handle) {
            // SAFETY: the block came from this allocator and the same device.
            unsafe { self.inner.dealloc(&self.device, handle) };
        }

        fn offset(&self, handle: &Self::Handle) -> u64 {
            handle.offset()
        }

        fn reserved(&self, handle: &Self::Handle) -> u64 {
            handle.size()
        }
    }

    /// `buddy_system_allocator`'s `FrameAllocator<33>` with one frame per unit (16 B):
    /// `alloc_aligned` with `ceil(size / unit)` frames at an alignment of `align / unit` frames;
    /// the reservation is the power-of-two frame count it actually takes. Its free lists are
    /// `BTreeSet`s.
    pub struct FrameAllocatorPeer {
        inner: buddy_system_allocator::FrameAllocator<33>,
        unit: u64,
    }

    impl FrameAllocatorPeer {
        pub fn new(capacity: u64) -> Self {
            let unit = unit();
            let mut inner = buddy_system_allocator::FrameAllocator::<33>::new();
            inner.add_frame(0, (capacity / unit) as usize);
            Self { inner, unit }
        }
    }

    /// A live frame range and the layout it was allocated with.
    pub struct FrameHandle {
        start: usize,
        layout: Layout,
    }

    impl Adapter for FrameAllocatorPeer {
        type Handle = FrameHandle;

        fn allocate(&mut self, size: u64, align: u64) -> Option<FrameHandle> {
            let frames = usize::try_from(size.div_ceil(self.unit)).ok()?;
            let align_frames = (align / self.unit).max(1) as usize;
            let layout = Layout::from_size_align(frames, align_frames).ok()?;
            let start = self.inner.alloc_aligned(layout)?;
            Some(FrameHandle { start, layout })
        }

        fn free(&mut self, handle: FrameHandle) {
            self.inner.dealloc_aligned(handle.start, handle.layout);
        }

        fn offset(&self, handle: &FrameHandle) -> u64 {
            handle.start as u64 * self.unit
        }

        fn reserved(&self, handle: &FrameHandle) -> u64 {
            let frames = handle
                .layout
                .size()
                .next_power_of_two()
                .max(handle.layout.align());
            frames as u64 * self.unit
        }
    }
}

/// Timing, accounting and the fragmentation probe over any [`Adapter`].
mod replay {
    use super::{Adapter, FragmentationProbe, Instant, Trace, TraceOp};
    use std::collections::BTreeMap;

    /// Ops timed together; small enough that a preemption spoils few batches.
    pub const BATCH: usize = 256;

    /// Memory and failure figures from one untimed replay.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Accounting {
        pub ops: u64,
        pub failed_allocations: u64,
        pub peak_live_bytes: u64,
        pub peak_reserved_bytes: u64,
        /// Placements that broke alignment, bounds or overlapped a live one (must be 0).
        pub violations: u64,
        /// Disagreement between the replay's peak and the allocator's own, if it keeps one.
        pub own_peak_reserved: Option<u64>,
    }

    /// Fragmentation probe results.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ProbeResult {
        /// Ops made: fill, frees, placements (the failing one too) and the final cleanup.
        pub ops: u64,
        pub fill_failures: u64,
        /// Capacity minus the requested bytes still live after the random half was freed.
        pub free_bytes: u64,
        pub placed_bytes: u64,
        pub placed_blocks: u64,
    }

    impl ProbeResult {
        /// Bytes placed over free bytes, summed over the trials merged in.
        pub fn placed_share(&self) -> f64 {
            self.placed_bytes as f64 / self.free_bytes.max(1) as f64
        }

        /// Adds another trial's counts.
        pub fn merge(&mut self, other: &ProbeResult) {
            self.ops += other.ops;
            self.fill_failures += other.fill_failures;
            self.free_bytes += other.free_bytes;
            self.placed_bytes += other.placed_bytes;
            self.placed_blocks += other.placed_blocks;
        }
    }

    /// One allocator with its handle table.
    pub struct Runner<A: Adapter> {
        pub name: &'static str,
        pub make: fn(u64) -> A,
        pub adapter: Option<A>,
        table: Vec<Option<A::Handle>>,
    }

    /// Live requested ranges, to check every placement.
    #[derive(Default)]
    struct Shadow {
        live: BTreeMap<u64, u64>,
    }

    impl Shadow {
        /// Records `[offset, offset + size)`; false if it breaks a rule.
        fn insert(&mut self, offset: u64, size: u64, align: u64, capacity: u64) -> bool {
            let end = offset + size;
            let mut ok = offset.is_multiple_of(align) && end <= capacity;
            if let Some((_, &prev_end)) = self.live.range(..=offset).next_back() {
                ok &= prev_end <= offset;
            }
            if let Some((&next, _)) = self.live.range(offset..).next() {
                ok &= next >= end;
            }
            self.live.insert(offset, end);
            ok
        }

        fn remove(&mut self, offset: u64) {
            self.live.remove(&offset);
        }
    }

    /// Live-byte bookkeeping of the accounting replays.
    #[derive(Default)]
    struct Tally {
        live: u64,
        reserved: u64,
        acc: Accounting,
    }

    impl Tally {
        fn add(&mut self, size: u64, reserved: u64) {
            self.live += size;
            self.reserved += reserved;
            self.acc.peak_live_bytes = self.acc.peak_live_bytes.max(self.live);
            self.acc.peak_reserved_bytes = self.acc.peak_reserved_bytes.max(self.reserved);
        }

        fn remove(&mut self, size: u64, reserved: u64) {
            self.live -= size;
            self.reserved -= reserved;
        }
    }

    impl<A: Adapter> Runner<A> {
        pub fn new(name: &'static str, make: fn(u64) -> A) -> Self {
            Self {
                name,
                make,
                adapter: None,
                table: Vec::new(),
            }
        }

        /// A fresh instance and an empty handle table of `ids` slots.
        fn fresh(&mut self, capacity: u64, ids: usize) -> (&mut A, &mut Vec<Option<A::Handle>>) {
            self.table.clear();
            self.table.resize_with(ids, || None);
            (self.adapter.insert((self.make)(capacity)), &mut self.table)
        }

        /// Replays `trace` once on a long-lived instance, pushing one ns/op sample per batch.
        pub fn time_trace(&mut self, trace: &Trace, samples: &mut Vec<f64>) {
            if self.table.len() < trace.ids as usize {
                self.table.resize_with(trace.ids as usize, || None);
            }
            let adapter = self
                .adapter
                .get_or_insert_with(|| (self.make)(trace.capacity));
            let table = &mut self.table;
            for batch in trace.ops.chunks(BATCH) {
                let start = Instant::now();
                for op in batch {
                    match *op {
                        TraceOp::Alloc { id, size, align } => {
                            table[id as usize] = adapter.allocate(size, align);
                        }
                        TraceOp::Free { id } => {
                            if let Some(handle) = table[id as usize].take() {
                                adapter.free(handle);
                            }
                        }
                    }
                }
                samples.push(start.elapsed().as_nanos() as f64 / batch.len() as f64);
            }
        }

        /// Replays `trace` once on a fresh instance, untimed, tracking memory and checking
        /// placements.
        pub fn account_trace(&mut self, trace: &Trace) -> Accounting {
            let capacity = trace.capacity;
            let (adapter, table) = self.fresh(capacity, trace.ids as usize);
            let mut sizes = vec![(0u64, 0u64, 0u64); trace.ids as usize]; // size, reserved, offset
            let mut shadow = Shadow::default();
            let mut tally = Tally::default();
            for op in &trace.ops {
                tally.acc.ops += 1;
                match *op {
                    TraceOp::Alloc { id, size, align } => {
                        match adapter.allocate_accounted(size, align) {
                            Some((handle, reserved)) => {
                                let offset = adapter.offset(&handle);
                                if !shadow.insert(offset, size, align, capacity) {
                                    tally.acc.violations += 1;
                                }
                                sizes[id as usize] = (size, reserved, offset);
                                tally.add(size, reserved);
                                table[id as usize] = Some(handle);
                            }
                            None => tally.acc.failed_allocations += 1,
                        }
                    }
                    TraceOp::Free { id } => {
                        if let Some(handle) = table[id as usize].take() {
                            adapter.free(handle);
                            let (size, reserved, offset) = sizes[id as usize];
                            shadow.remove(offset);
                            tally.remove(size, reserved);
                        }
                    }
                }
            }
            tally.acc.own_peak_reserved = adapter.own_peak_reserved();
            tally.acc
        }

        /// Runs the probe on a fresh instance. With `samples`, times it in batches (the
        /// fill, the frees, the placements and the final cleanup are all ops) and skips the
        /// accounting.
        pub fn probe(
            &mut self,
            probe: &FragmentationProbe,
            mut samples: Option<&mut Vec<f64>>,
        ) -> ProbeResult {
            let fill = probe.fill.len();
            let (adapter, table) = self.fresh(probe.capacity, fill + probe.probe.len());
            let mut live = vec![0u64; fill + probe.probe.len()];
            let mut result = ProbeResult::default();
            let mut live_bytes = 0u64;
            // The op stream, lazily: fill allocations, then frees, then placements until the
            // first failure, then freeing whatever is left.
            let mut step = 0usize;
            let mut placing = true;
            let mut cleanup = 0usize;
            loop {
                let start = Instant::now();
                let mut done = 0usize;
                let mut finished = false;
                while done < BATCH {
                    if step == fill + probe.free.len() {
                        result.free_bytes = probe.capacity - live_bytes;
                    }
                    if step < fill {
                        let (size, align) = probe.fill[step];
                        table[step] = adapter.allocate(size, align);
                        if table[step].is_some() {
                            live[step] = size;
                            live_bytes += size;
                        } else {
                            result.fill_failures += 1;
                        }
                    } else if step < fill + probe.free.len() {
                        let id = probe.free[step - fill] as usize;
                        if let Some(handle) = table[id].take() {
                            adapter.free(handle);
                            live_bytes -= live[id];
                        }
                    } else if placing && step - fill - probe.free.len() < probe.probe.len() {
                        let slot = step - probe.free.len();
                        let (size, align) = probe.probe[slot - fill];
                        match adapter.allocate(size, align) {
                            Some(handle) => {
                                table[slot] = Some(handle);
                                result.placed_bytes += size;
                                result.placed_blocks += 1;
                            }
                            None => placing = false,
                        }
                    } else {
                        while cleanup < table.len() && table[cleanup].is_none() {
                            cleanup += 1;
                        }
                        match table.get_mut(cleanup).and_then(Option::take) {
                            Some(handle) => adapter.free(handle),
                            None => {
                                finished = true;
                                break;
                            }
                        }
                    }
                    step += 1;
                    done += 1;
                }
                result.ops += done as u64;
                if let Some(samples) = samples.as_deref_mut()
                    && done > 0
                {
                    samples.push(start.elapsed().as_nanos() as f64 / done as f64);
                }
                if finished {
                    return result;
                }
            }
        }
    }
}

/// memkit's sub-allocators through the shared [`SubAllocator`](memkit_core::SubAllocator)
/// contract.
mod memkit {
    use super::Adapter;
    use memkit_core::{
        Allocation, BuddyAllocator, BuddyConfig, SubAllocator, TlsfAllocator, TlsfConfig, TlsfNode,
    };

    /// Any memkit sub-allocator, with its metadata storage on the heap.
    pub struct SubAllocatorPeer<S: SubAllocator> {
        pub inner: S,
    }

    /// Most live allocations the memkit allocators are sized for (the workloads peak near
    /// 10 000).
    pub const MAX_ALLOCATIONS: u32 = 1 << 16;

    /// `BuddyAllocator` with the peers' unit as its `min_block`, storage in a `Vec<u64>`.
    pub fn buddy(capacity: u64) -> SubAllocatorPeer<BuddyAllocator<Vec<u64>>> {
        let config = BuddyConfig::new(capacity, super::peers::unit(), MAX_ALLOCATIONS);
        let words = config
            .try_storage_len()
            .expect("invalid buddy configuration");
        let inner = BuddyAllocator::new(config, vec![0u64; words])
            .expect("buddy refused its configuration");
        SubAllocatorPeer { inner }
    }

    /// `TlsfAllocator` with the peers' unit as its granule, storage in a `Vec<TlsfNode>`.
    pub fn tlsf(capacity: u64) -> SubAllocatorPeer<TlsfAllocator<Vec<TlsfNode>>> {
        let config = TlsfConfig::new(capacity, super::peers::unit(), MAX_ALLOCATIONS);
        let inner = TlsfAllocator::new(config, vec![TlsfNode::EMPTY; config.storage_len()])
            .expect("TLSF refused its configuration");
        SubAllocatorPeer { inner }
    }

    impl<S: SubAllocator> Adapter for SubAllocatorPeer<S> {
        type Handle = Allocation;

        fn allocate(&mut self, size: u64, align: u64) -> Option<Allocation> {
            self.inner.allocate(size, align).ok()
        }

        fn free(&mut self, handle: Allocation) {
            self.inner
                .free(handle)
                .expect("memkit refused to free a live allocation");
        }

        fn offset(&self, handle: &Allocation) -> u64 {
            handle.offset()
        }

        fn reserved(&self, handle: &Allocation) -> u64 {
            // Only reached through `allocate_accounted`, which knows the delta.
            handle.size()
        }

        fn allocate_accounted(&mut self, size: u64, align: u64) -> Option<(Allocation, u64)> {
            let before = self.inner.stats().bytes_reserved;
            let handle = self.inner.allocate(size, align).ok()?;
            let reserved = self.inner.stats().bytes_reserved - before;
            Some((handle, reserved))
        }

        fn own_peak_reserved(&self) -> Option<u64> {
            Some(self.inner.stats().peak_bytes_reserved)
        }
    }
}

/// No allocator at all: every request "succeeds" at offset 0 with an 8-byte handle. Timing it
/// shows what the replay loop itself (op decoding, handle-table store and take) costs per op.
struct ReplayOnly;

impl Adapter for ReplayOnly {
    type Handle = u64;

    fn allocate(&mut self, size: u64, _align: u64) -> Option<u64> {
        Some(size)
    }

    fn free(&mut self, handle: u64) {
        std::hint::black_box(handle);
    }

    fn offset(&self, _handle: &u64) -> u64 {
        0
    }

    fn reserved(&self, handle: &u64) -> u64 {
        *handle
    }
}

/// One allocator under test, type-erased so the driver can loop over them.
trait Contender {
    fn name(&self) -> &'static str;
    fn is_memkit(&self) -> bool {
        self.name().starts_with("memkit")
    }
    fn time_trace(&mut self, trace: &Trace, samples: &mut Vec<f64>);
    fn account_trace(&mut self, trace: &Trace) -> replay::Accounting;
    fn probe(
        &mut self,
        probe: &FragmentationProbe,
        samples: Option<&mut Vec<f64>>,
    ) -> replay::ProbeResult;
    /// Drops the instance (and its handle table) between workloads.
    fn release(&mut self);
}

impl<A: Adapter> Contender for replay::Runner<A> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn time_trace(&mut self, trace: &Trace, samples: &mut Vec<f64>) {
        replay::Runner::time_trace(self, trace, samples);
    }
    fn account_trace(&mut self, trace: &Trace) -> replay::Accounting {
        replay::Runner::account_trace(self, trace)
    }
    fn probe(
        &mut self,
        probe: &FragmentationProbe,
        samples: Option<&mut Vec<f64>>,
    ) -> replay::ProbeResult {
        replay::Runner::probe(self, probe, samples)
    }
    fn release(&mut self) {
        self.adapter = None;
    }
}

/// Every allocator measured, memkit's first.
fn contenders() -> Vec<Box<dyn Contender>> {
    vec![
        Box::new(replay::Runner::new("memkit buddy", memkit::buddy)),
        Box::new(replay::Runner::new("memkit TLSF", memkit::tlsf)),
        Box::new(replay::Runner::new(
            "offset-allocator",
            peers::OffsetAllocatorPeer::new,
        )),
        Box::new(replay::Runner::new(
            "VMA virtual (TLSF)",
            peers::VmaVirtualPeer::new,
        )),
        Box::new(replay::Runner::new(
            "gpu-alloc buddy",
            peers::GpuAllocPeer::new,
        )),
        Box::new(replay::Runner::new(
            "buddy_system_allocator",
            peers::FrameAllocatorPeer::new,
        )),
    ]
}

/// Command-line options.
#[derive(Clone, Debug)]
struct Options {
    quick: bool,
    json: bool,
    reps: usize,
    seed: u64,
    only: Vec<String>,
    workloads: Vec<String>,
    probe_trials: usize,
    unit: u64,
}

const USAGE: &str = "\
usage: allocators [--quick] [--json] [--reps N] [--seed S] [--only NAME]... [--workload NAME]...
  --quick          short traces and 3 repetitions (a few seconds)
  --json           print the results as JSON instead of tables
  --reps N         timed repetitions per workload (default 15, quick 3)
  --seed S         workload seed (default 1; probe trial k uses S + k)
  --probe-trials N fragmentation probe trials (default 8, quick 3)
  --unit BYTES     granule of every allocator that counts in units (default 16)
  --only NAME      measure only allocators whose name contains NAME (repeatable)
  --workload NAME  game-frame, churn or probe (repeatable; default all)";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        json: false,
        reps: 0,
        seed: 1,
        only: Vec::new(),
        workloads: Vec::new(),
        probe_trials: 0,
        unit: 16,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--json" => options.json = true,
            "--reps" => {
                options.reps = value("--reps")?
                    .parse()
                    .map_err(|e| format!("--reps: {e}"))?;
            }
            "--seed" => {
                options.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?;
            }
            "--only" => options.only.push(value("--only")?),
            "--unit" => {
                options.unit = value("--unit")?
                    .parse()
                    .map_err(|e| format!("--unit: {e}"))?;
                if !options.unit.is_power_of_two() || options.unit > 1 << 20 {
                    return Err("--unit must be a power of two up to 1 MiB".into());
                }
            }
            "--probe-trials" => {
                options.probe_trials = value("--probe-trials")?
                    .parse()
                    .map_err(|e| format!("--probe-trials: {e}"))?;
            }
            "--workload" => options.workloads.push(value("--workload")?),
            // cargo bench passes --bench to harness-less benchmarks.
            "--bench" => {}
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.reps == 0 {
        options.reps = if options.quick { 3 } else { 15 };
    }
    if options.probe_trials == 0 {
        options.probe_trials = if options.quick { 3 } else { 8 };
    }
    Ok(options)
}

/// One row of a workload's table.
#[derive(Clone, Debug)]
struct Row {
    allocator: &'static str,
    memkit: bool,
    median_ns: f64,
    ops: u64,
    accounting: Option<replay::Accounting>,
    probe: Option<replay::ProbeResult>,
    /// Lowest and highest single-trial probe share.
    probe_range: (f64, f64),
}

/// One workload's rows.
#[derive(Clone, Debug)]
struct WorkloadResult {
    name: &'static str,
    description: String,
    rows: Vec<Row>,
    /// ns/op of the replay loop with no allocator (see [`ReplayOnly`]).
    replay_overhead_ns: Option<f64>,
}

fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

/// Times `run` for every contender, interleaving the repetitions so that a slow phase of the
/// machine hits all of them alike; returns the median ns/op of each.
fn time_interleaved(
    contenders: &mut [Box<dyn Contender>],
    reps: usize,
    mut run: impl FnMut(&mut dyn Contender, &mut Vec<f64>),
) -> Vec<f64> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for rep in 0..reps {
        for k in 0..contenders.len() {
            let i = (k + rep) % contenders.len();
            run(contenders[i].as_mut(), &mut samples[i]);
        }
    }
    samples.iter_mut().map(|s| median(s)).collect()
}

/// Replays `trace` through every contender; also returns the replay loop's own cost per op.
fn run_trace(contenders: &mut [Box<dyn Contender>], trace: &Trace, reps: usize) -> (Vec<Row>, f64) {
    let accounting: Vec<_> = contenders
        .iter_mut()
        .map(|c| c.account_trace(trace))
        .collect();
    for c in contenders.iter_mut() {
        c.release();
    }
    // One untimed warm-up pass, then the timed repetitions.
    let _ = time_interleaved(contenders, 1, |c, s| c.time_trace(trace, s));
    let medians = time_interleaved(contenders, reps, |c, s| c.time_trace(trace, s));
    let mut replay_only = replay::Runner::new("replay loop only", |_| ReplayOnly);
    let mut samples = Vec::new();
    for _ in 0..=reps {
        replay_only.time_trace(trace, &mut samples);
    }
    let overhead = median(&mut samples);
    let rows = contenders
        .iter()
        .zip(medians)
        .zip(accounting)
        .map(|((c, median_ns), acc)| Row {
            allocator: c.name(),
            memkit: c.is_memkit(),
            median_ns,
            ops: acc.ops,
            accounting: Some(acc),
            probe: None,
            probe_range: (0.0, 0.0),
        })
        .collect();
    for c in contenders.iter_mut() {
        c.release();
    }
    (rows, overhead)
}

/// Runs every probe trial on every contender: the counts are summed over the trials (the share
/// is total bytes placed over total free bytes), the lowest and highest single-trial shares are
/// kept, and the timed repetitions run all trials each.
fn run_probe(
    contenders: &mut [Box<dyn Contender>],
    probes: &[FragmentationProbe],
    reps: usize,
) -> Vec<Row> {
    let results: Vec<_> = contenders
        .iter_mut()
        .map(|c| {
            let mut total = replay::ProbeResult::default();
            let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
            for probe in probes {
                let trial = c.probe(probe, None);
                lo = lo.min(trial.placed_share());
                hi = hi.max(trial.placed_share());
                total.merge(&trial);
            }
            (total, lo, hi)
        })
        .collect();
    let medians = time_interleaved(contenders, reps, |c, s| {
        for probe in probes {
            c.probe(probe, Some(s));
        }
    });
    let rows = contenders
        .iter()
        .zip(medians)
        .zip(results)
        .map(|((c, median_ns), (result, lo, hi))| Row {
            allocator: c.name(),
            memkit: c.is_memkit(),
            median_ns,
            ops: result.ops,
            accounting: None,
            probe: Some(result),
            probe_range: (lo, hi),
        })
        .collect();
    for c in contenders.iter_mut() {
        c.release();
    }
    rows
}

/// Fastest peer (not memkit) of a workload.
fn fastest_peer(rows: &[Row]) -> f64 {
    rows.iter()
        .filter(|r| !r.memkit)
        .map(|r| r.median_ns)
        .fold(f64::INFINITY, f64::min)
}

fn print_table(result: &WorkloadResult) {
    println!("\n## {} — {}", result.name, result.description);
    let fastest = fastest_peer(&result.rows);
    let mut out = String::new();
    if result.rows.iter().any(|r| r.probe.is_some()) {
        let _ = writeln!(
            out,
            "| allocator | ns/op (median) | vs fastest peer | fill failures | placed / free bytes | trial range | blocks placed |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for row in &result.rows {
            let p = row.probe.unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.2}x | {} | {:.1}% | {:.0}-{:.0}% | {} |",
                row.allocator,
                row.median_ns,
                row.median_ns / fastest,
                p.fill_failures,
                100.0 * p.placed_share(),
                100.0 * row.probe_range.0,
                100.0 * row.probe_range.1,
                p.placed_blocks
            );
        }
    } else {
        let _ = writeln!(
            out,
            "| allocator | ns/op (median) | vs fastest peer | peak reserved / peak live | failed allocations | peak live MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for row in &result.rows {
            let acc = row.accounting.unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.2}x | {:.3} | {} | {:.1} |",
                row.allocator,
                row.median_ns,
                row.median_ns / fastest,
                acc.peak_reserved_bytes as f64 / acc.peak_live_bytes.max(1) as f64,
                acc.failed_allocations,
                acc.peak_live_bytes as f64 / (1u64 << 20) as f64
            );
        }
    }
    print!("{out}");
    if let Some(overhead) = result.replay_overhead_ns {
        println!(
            "(the replay loop alone, with no allocator and 8-byte handles, takes {overhead:.1} ns/op \
             of these)"
        );
    }
    for row in &result.rows {
        if let Some(acc) = row.accounting {
            if acc.violations > 0 {
                println!(
                    "WARNING: {} made {} bad placements (misaligned, out of bounds or overlapping)",
                    row.allocator, acc.violations
                );
            }
            if let Some(own) = acc.own_peak_reserved
                && own != acc.peak_reserved_bytes
            {
                println!(
                    "note: {} reports a peak of {own} reserved bytes; the replay counted {}",
                    row.allocator, acc.peak_reserved_bytes
                );
            }
        }
    }
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn print_json(results: &[WorkloadResult], options: &Options) {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"seed\":{},\"reps\":{},\"quick\":{},\"batch_ops\":{},\"unit\":{},\"workloads\":[",
        options.seed,
        options.reps,
        options.quick,
        replay::BATCH,
        options.unit
    );
    for (w, result) in results.iter().enumerate() {
        let fastest = fastest_peer(&result.rows);
        let _ = write!(
            out,
            "{}{{\"name\":\"{}\",\"description\":\"{}\",\"replay_overhead_ns_per_op\":{},\"rows\":[",
            if w > 0 { "," } else { "" },
            result.name,
            json_escape(&result.description),
            result
                .replay_overhead_ns
                .map_or("null".to_string(), |ns| format!("{ns:.2}"))
        );
        for (r, row) in result.rows.iter().enumerate() {
            let _ = write!(
                out,
                "{}{{\"allocator\":\"{}\",\"memkit\":{},\"median_ns_per_op\":{:.2},\"vs_fastest_peer\":{:.3},\"ops\":{}",
                if r > 0 { "," } else { "" },
                json_escape(row.allocator),
                row.memkit,
                row.median_ns,
                row.median_ns / fastest,
                row.ops
            );
            if let Some(acc) = row.accounting {
                let _ = write!(
                    out,
                    ",\"peak_live_bytes\":{},\"peak_reserved_bytes\":{},\"reserved_over_live\":{:.4},\"failed_allocations\":{},\"violations\":{}",
                    acc.peak_live_bytes,
                    acc.peak_reserved_bytes,
                    acc.peak_reserved_bytes as f64 / acc.peak_live_bytes.max(1) as f64,
                    acc.failed_allocations,
                    acc.violations
                );
            }
            if let Some(p) = row.probe {
                let _ = write!(
                    out,
                    ",\"fill_failures\":{},\"free_bytes\":{},\"placed_bytes\":{},\"placed_blocks\":{},\"placed_share\":{:.4}",
                    p.fill_failures,
                    p.free_bytes,
                    p.placed_bytes,
                    p.placed_blocks,
                    p.placed_share()
                );
            }
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    println!("{out}");
}

/// The issue's targets for each memkit allocator, judged on this run's figures.
fn print_targets(results: &[WorkloadResult]) {
    println!("\n## Targets (memkit vs peers, this run)");
    let mut names: Vec<&'static str> = Vec::new();
    for row in results.iter().flat_map(|r| &r.rows) {
        if row.memkit && !names.contains(&row.allocator) {
            names.push(row.allocator);
        }
    }
    if names.is_empty() {
        println!("(no memkit allocator in this run)");
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for name in names {
        for result in results {
            let Some(row) = result.rows.iter().find(|r| r.allocator == name) else {
                continue;
            };
            let ratio = row.median_ns / fastest_peer(&result.rows);
            println!(
                "- {name}, {}: speed {:.2}x fastest peer (target <= 0.90): {}",
                result.name,
                ratio,
                verdict(ratio <= 0.9)
            );
            if let Some(acc) = row.accounting {
                if result.name != "probe" {
                    let over = acc.peak_reserved_bytes as f64 / acc.peak_live_bytes.max(1) as f64;
                    println!(
                        "- {name}, {}: peak reserved / peak live {over:.3} (target <= 1.05): {}",
                        result.name,
                        verdict(over <= 1.05)
                    );
                }
                if result.name == "game-frame" {
                    let best = result
                        .rows
                        .iter()
                        .filter(|r| !r.memkit)
                        .filter_map(|r| r.accounting.map(|a| a.failed_allocations))
                        .min()
                        .unwrap_or(0);
                    println!(
                        "- {name}, game-frame: {} failed allocations, best peer {best}: {}",
                        acc.failed_allocations,
                        verdict(acc.failed_allocations <= best)
                    );
                }
            }
            if let Some(p) = row.probe {
                println!(
                    "- {name}, probe: {:.1}% of free bytes placed (target >= 36%): {}",
                    100.0 * p.placed_share(),
                    verdict(p.placed_share() >= 0.36)
                );
            }
        }
    }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if message.is_empty() { 0 } else { 2 });
        }
    };
    peers::set_unit(options.unit);
    let mut all = contenders();
    all.retain(|c| options.only.is_empty() || options.only.iter().any(|o| c.name().contains(o)));
    let wanted =
        |name: &str| options.workloads.is_empty() || options.workloads.iter().any(|w| w == name);
    let started = Instant::now();
    let mut results = Vec::new();

    if wanted("game-frame") {
        let config = GameFrameConfig {
            frames: if options.quick { 500 } else { 2_000 },
            ..GameFrameConfig::default()
        };
        let trace = game_frame(options.seed, &config);
        let summary = trace.summary();
        let (rows, overhead) = run_trace(&mut all, &trace, options.reps);
        results.push(WorkloadResult {
            name: "game-frame",
            replay_overhead_ns: Some(overhead),
            description: format!(
                "{} frames x {} allocations, 256 B-4 MiB (+{:.1}% 16-64 MiB), align 16 B-64 KiB, \
                 1 GiB arena; {} ops, peak {:.0} MiB live in {} allocations",
                config.frames,
                config.allocations_per_frame,
                100.0 * config.huge_share,
                trace.ops.len(),
                summary.peak_live_bytes as f64 / (1u64 << 20) as f64,
                summary.peak_live_count
            ),
            rows,
        });
    }
    if wanted("churn") {
        let config = ChurnConfig {
            steps: if options.quick { 20_000 } else { 100_000 },
            ..ChurnConfig::default()
        };
        let trace = small_object_churn(options.seed, &config);
        let (rows, overhead) = run_trace(&mut all, &trace, options.reps);
        results.push(WorkloadResult {
            name: "churn",
            replay_overhead_ns: Some(overhead),
            description: format!(
                "{} live objects of 64 B-64 KiB, align 16-256 B, {} replacements, 1 GiB arena; {} ops",
                config.live,
                config.steps,
                trace.ops.len()
            ),
            rows,
        });
    }
    if wanted("probe") {
        let config = ProbeConfig::default();
        let probes: Vec<_> = (0..options.probe_trials as u64)
            .map(|trial| fragmentation_probe(options.seed.wrapping_add(trial), &config))
            .collect();
        let rows = run_probe(&mut all, &probes, options.reps);
        let fills: usize = probes.iter().map(|p| p.fill.len()).sum();
        results.push(WorkloadResult {
            name: "probe",
            replay_overhead_ns: None,
            description: format!(
                "{} trials (seeds {}..): fill 90% of 1 GiB with 256 B-1 MiB allocations (about {} \
                 per trial, align 16 B-64 KiB), free a random half, place 256 KiB-4 MiB blocks \
                 until the first failure",
                probes.len(),
                options.seed,
                fills / probes.len().max(1)
            ),
            rows,
        });
    }

    if options.json {
        print_json(&results, &options);
    } else {
        println!(
            "# Sub-allocator benchmark (seed {}, {} repetitions, median of {}-op batches, unit {} B)",
            options.seed,
            options.reps,
            replay::BATCH,
            options.unit
        );
        for result in &results {
            print_table(result);
        }
        print_targets(&results);
        println!("\n(total {:.1} s)", started.elapsed().as_secs_f64());
    }
}
