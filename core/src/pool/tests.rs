//! Unit tests of the pools and their parts, on a small mock device.

mod sizing {
    use super::super::sizing::*;
    const MIB: u64 = 1 << 20;

    #[test]
    fn small_heaps_get_small_blocks() {
        assert_eq!(preferred_block_size(256 * MIB), 32 * MIB);
        assert_eq!(preferred_block_size(SMALL_HEAP_MAX), 128 * MIB);
        assert_eq!(preferred_block_size(16 << 30), 256 * MIB);
        assert_eq!(preferred_block_size(100 * MIB), 8 * MIB);
        assert_eq!(preferred_block_size(0), 0);
    }

    #[test]
    fn blocks_double_from_the_first_to_the_preferred() {
        let s = BlockSizing::new(16 << 30, 2 * MIB, None, None, u64::MAX, 256);
        assert_eq!(s.preferred, 256 * MIB);
        assert_eq!(s.dedicated_threshold, 128 * MIB);
        assert_eq!(s.next_block(0, 4096), Some(2 * MIB));
        assert_eq!(s.next_block(2 * MIB, 4096), Some(4 * MIB));
        assert_eq!(s.next_block(256 * MIB, 4096), Some(256 * MIB));
        // A large request grows the block to fit.
        assert_eq!(s.next_block(0, 64 * MIB), Some(64 * MIB));
    }

    #[test]
    fn growth_stops_where_metadata_runs_out_first() {
        let s = BlockSizing::new(16 << 30, 2 * MIB, None, None, u64::MAX, 256);
        // 4096 allocations of 4 KiB fill 16 MiB: no block grows past that.
        assert_eq!(
            s.next_block_by_count(8 * MIB, 4096, 4096, 4096),
            Some(16 * MIB)
        );
        assert_eq!(
            s.next_block_by_count(16 * MIB, 4096, 4096, 4096),
            Some(16 * MIB)
        );
        assert_eq!(
            s.next_block_by_count(64 * MIB, 4096, 4096, 4096),
            Some(16 * MIB)
        );
        // Never below the first block, nor below what the request needs.
        assert_eq!(s.next_block_by_count(2 * MIB, 4096, 16, 256), Some(2 * MIB));
        assert_eq!(
            s.next_block_by_count(2 * MIB, 8 * MIB, 16, 256),
            Some(8 * MIB)
        );
        // No live allocations, or large ones: plain doubling.
        assert_eq!(s.next_block_by_count(4 * MIB, 4096, 16, 0), Some(8 * MIB));
        assert_eq!(
            s.next_block_by_count(4 * MIB, 4096, 4096, MIB),
            Some(8 * MIB)
        );
        assert_eq!(
            s.next_block_by_count(4 * MIB, 4096, u32::MAX, u64::MAX),
            Some(8 * MIB)
        );
        assert_eq!(s.next_block_by_count(4 * MIB, 512 * MIB, 16, 256), None);
    }

    #[test]
    fn limits_cap_every_size() {
        // maxMemoryAllocationSize of 3 MiB: blocks of 2 MiB at most.
        let s = BlockSizing::new(16 << 30, 2 * MIB, None, None, 3 * MIB, 256);
        assert_eq!(
            (s.first, s.preferred, s.largest),
            (2 * MIB, 2 * MIB, 2 * MIB)
        );
        assert_eq!(s.next_block(2 * MIB, 4 * MIB), None);
        // A tiny heap: first block shrinks to the preferred size.
        let s = BlockSizing::new(4 * MIB, 2 * MIB, None, None, u64::MAX, 256);
        assert_eq!((s.first, s.preferred), (512 << 10, 512 << 10));
        // Zero sizes in the configuration still give usable powers of two.
        let s = BlockSizing::new(0, 0, Some(0), None, u64::MAX, 256);
        assert_eq!((s.first, s.preferred, s.largest), (256, 256, 256));
        // A device whose largest memory object is below a granule can have no block.
        for max_object_size in [0, 1, 255] {
            let s = BlockSizing::new(16 << 30, 2 * MIB, None, None, max_object_size, 256);
            assert_eq!(s, BlockSizing::NO_BLOCKS);
            assert_eq!(s.next_block(0, 1), None);
        }
        let s = BlockSizing::new(16 << 30, 2 * MIB, None, None, 256, 256);
        assert_eq!((s.first, s.preferred, s.largest), (256, 256, 256));
    }

    #[test]
    fn needed_covers_size_and_alignment() {
        assert_eq!(BlockSizing::needed(1000, 16), Some(1024));
        assert_eq!(BlockSizing::needed(1000, 4096), Some(4096));
        assert_eq!(BlockSizing::needed(u64::MAX, 1), None);
    }
}

mod mapping {
    use super::super::mapping::*;

    #[test]
    fn ranges_round_out_to_atoms_and_clamp_to_the_object() {
        assert_eq!(atom_range(10, 20, 64, 4096), Some((0, 64)));
        assert_eq!(atom_range(64, 64, 64, 4096), Some((64, 64)));
        assert_eq!(atom_range(100, 100, 64, 4096), Some((64, 192)));
        // Clamped: the object ends inside the last atom.
        assert_eq!(atom_range(900, 100, 256, 1000), Some((768, 232)));
        assert_eq!(atom_range(0, 0, 64, 4096), None);
        assert_eq!(atom_range(4000, 200, 64, 4096), None);
        assert_eq!(atom_range(u64::MAX, 2, 64, u64::MAX), None);
        assert_eq!(atom_range(0, 1, 48, 4096), None);
    }

    #[test]
    fn host_ptr_offsets_without_dereferencing() {
        let mut bytes = [0u8; 64];
        let base = HostPtr::new(core::ptr::NonNull::from(&mut bytes).cast());
        let p = base.offset(16).unwrap();
        assert_eq!(p.as_ptr() as usize - base.as_ptr() as usize, 16);
        assert_eq!(p.as_non_null().as_ptr(), p.as_ptr());
    }
}

mod budget {
    use super::super::budget::HeapBudgets;
    use crate::device::{
        HeapBudget, MemoryHeap, MemoryHeapFlags, MemoryProperties, MemoryPropertyFlags, MemoryType,
    };

    fn two_heaps() -> MemoryProperties {
        let t = |heap_index| MemoryType {
            properties: MemoryPropertyFlags::DEVICE_LOCAL,
            heap_index,
        };
        let h = |size| MemoryHeap {
            size,
            flags: MemoryHeapFlags::DEVICE_LOCAL,
        };
        MemoryProperties::new(&[t(0), t(1)], &[h(1000), h(10_000)]).unwrap()
    }

    #[test]
    fn estimates_are_80_percent_of_the_heap_and_memkit_usage() {
        let mut b = HeapBudgets::new(&two_heaps());
        b.refresh(None);
        assert!(!b.from_device());
        assert_eq!((b.budget(0), b.usage(0)), (800, 0));
        b.on_create(0, 700);
        assert_eq!(b.usage(0), 700);
        assert!(b.fits(0, 100));
        assert!(!b.fits(0, 101));
        assert!(!b.fits(0, u64::MAX));
        b.on_free(0, 700);
        assert_eq!(b.usage(0), 0);
        assert_eq!(b.budget(7), 0);
        assert_eq!(b.usage(7), 0);
    }

    #[test]
    fn device_figures_are_advanced_by_memkit_changes_until_refreshed() {
        let mut b = HeapBudgets::new(&two_heaps());
        b.on_create(1, 500);
        let report = [
            HeapBudget {
                budget: 900,
                usage: 100,
            },
            HeapBudget {
                budget: 9000,
                usage: 3000,
            },
        ];
        b.refresh(Some(&report));
        assert!(b.from_device());
        assert_eq!((b.budget(1), b.usage(1)), (9000, 3000));
        b.on_create(1, 1000);
        assert_eq!(b.usage(1), 4000);
        b.on_free(1, 1500);
        assert_eq!(b.usage(1), 2500);
        assert_eq!(b.creations_since_refresh(), 1);
        assert_eq!(b.memkit_bytes(1), 0);
    }
}

/// A mock device: memory objects are numbered and never reused, every contract of the device
/// trait is asserted, and allocation `k` can be made to fail.
mod layout {
    use std::vec::Vec;

    use super::super::block_allocator::BlockAllocator;
    use super::super::storage::{BlockSlot, BlockState, LiveBlock};
    use crate::buddy::BuddyAllocator;
    use crate::tlsf::{TlsfAllocator, TlsfNode};

    /// A live slot's hot fields (generation, state tag, the head of the block up to
    /// `whole_atoms`) lie in its first cache line, with a 64-bit memory handle.
    fn hot_fields_share_one_cache_line<A: BlockAllocator>(storage: A::Storage) {
        let allocator = A::with_storage(1 << 20, 256, 64, storage).unwrap();
        let slot: BlockSlot<u64, A> = BlockSlot {
            generation: 0,
            link: 0,
            state: BlockState::Live(LiveBlock {
                free: 1 << 20,
                refused: (u64::MAX, u64::MAX),
                mapped: None,
                memory: 7,
                live: 0,
                memory_type: 0,
                set: 0,
                whole_atoms: false,
                emptying: false,
                size: 1 << 20,
                allocator,
            }),
        };
        let base = &slot as *const BlockSlot<u64, A> as usize;
        assert_eq!(base % 64, 0);
        let BlockState::Live(b) = &slot.state else {
            unreachable!()
        };
        let end =
            (&b.whole_atoms as *const bool as usize).max(&b.emptying as *const bool as usize) + 1;
        assert!(end - base <= 64, "hot fields end at byte {}", end - base);
    }

    #[test]
    fn the_hot_path_fills_one_cache_line() {
        assert_eq!(core::mem::size_of::<super::super::HotPath>(), 64);
        assert_eq!(core::mem::align_of::<super::super::HotPath>(), 64);
    }

    #[test]
    fn tlsf_slot_hot_fields_share_one_cache_line() {
        let len = TlsfAllocator::<Vec<TlsfNode>>::storage_len(1 << 20, 256, 64).unwrap();
        hot_fields_share_one_cache_line::<TlsfAllocator<Vec<TlsfNode>>>(std::vec![
            TlsfNode::EMPTY;
            len
        ]);
    }

    #[test]
    fn buddy_slot_hot_fields_share_one_cache_line() {
        let len = BuddyAllocator::<Vec<u64>>::storage_len(1 << 20, 256, 64).unwrap();
        hot_fields_share_one_cache_line::<BuddyAllocator<Vec<u64>>>(std::vec![0; len]);
    }
}

pub(crate) mod mock {
    use core::cell::RefCell;
    use core::ptr::NonNull;
    use std::vec::Vec;

    use crate::device::*;

    /// The made-up address object `memory` is mapped at, never dereferenced and never null:
    /// object n at `(n + 1) << 36` where pointers are 64 bits wide; where they are 32 bits,
    /// `(n % 15 + 1) << 28` (objects 15 apart share an address, which no test compares).
    pub fn mock_address(memory: u32) -> usize {
        if usize::BITS == 64 {
            (memory as usize + 1) << (usize::BITS - 28)
        } else {
            (memory as usize % 15 + 1) << 28
        }
    }

    #[derive(Clone, Copy, Debug)]
    pub struct Object {
        pub size: u64,
        pub memory_type: u32,
        pub mapped: bool,
        pub dedicated: Option<DedicatedTo<u32, u32>>,
        pub device_address: bool,
    }

    #[derive(Default)]
    pub struct State {
        pub objects: Vec<Option<Object>>,
        /// `allocate_memory` calls so far.
        pub allocations: u64,
        /// Make the call with this index fail with `OutOfDeviceMemory`.
        pub fail_at: Option<u64>,
        pub fail_maps: bool,
        pub heap_used: Vec<u64>,
        pub flushed: Vec<MappedRange<u32>>,
        pub invalidated: Vec<MappedRange<u32>>,
    }

    pub struct MockDevice {
        pub properties: MemoryProperties,
        pub limits: DeviceLimits,
        /// Per-heap budgets when the device reports them.
        pub budgets: Option<Vec<u64>>,
        pub state: RefCell<State>,
    }

    pub const MIB: u64 = 1 << 20;

    impl MockDevice {
        pub fn new(types: &[(MemoryPropertyFlags, u32)], heaps: &[u64]) -> Self {
            let types: Vec<MemoryType> = types
                .iter()
                .map(|&(properties, heap_index)| MemoryType {
                    properties,
                    heap_index,
                })
                .collect();
            let heaps: Vec<MemoryHeap> = heaps
                .iter()
                .map(|&size| MemoryHeap {
                    size,
                    flags: MemoryHeapFlags::DEVICE_LOCAL,
                })
                .collect();
            Self {
                properties: MemoryProperties::new(&types, &heaps).unwrap(),
                limits: DeviceLimits {
                    max_memory_allocation_count: 4096,
                    max_memory_allocation_size: 1 << 32,
                    buffer_image_granularity: 1024,
                    non_coherent_atom_size: 256,
                    min_memory_map_alignment: 64,
                    min_buffer_offset_alignment: 256,
                },
                budgets: None,
                state: RefCell::new(State {
                    heap_used: std::vec![0; heaps.len()],
                    ..State::default()
                }),
            }
        }

        /// Device-local (heap 0, 1 GiB), host-visible coherent (heap 1, 1 GiB), host-visible
        /// non-coherent cached (heap 1).
        pub fn discrete() -> Self {
            use MemoryPropertyFlags as F;
            Self::new(
                &[
                    (F::DEVICE_LOCAL, 0),
                    (F::HOST_VISIBLE | F::HOST_COHERENT, 1),
                    (F::HOST_VISIBLE | F::HOST_CACHED, 1),
                ],
                &[1 << 30, 1 << 30],
            )
        }

        pub fn live_objects(&self) -> usize {
            self.state.borrow().objects.iter().flatten().count()
        }

        pub fn allocations(&self) -> u64 {
            self.state.borrow().allocations
        }
    }

    impl MemoryDevice for MockDevice {
        type Memory = u32;
        type Buffer = u32;
        type Image = u32;

        fn memory_properties(&self) -> &MemoryProperties {
            &self.properties
        }

        fn limits(&self) -> DeviceLimits {
            self.limits
        }

        fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
            let Some(budgets) = &self.budgets else {
                return false;
            };
            let s = self.state.borrow();
            for (i, o) in out.iter_mut().enumerate() {
                *o = HeapBudget {
                    budget: budgets[i],
                    usage: s.heap_used[i],
                };
            }
            true
        }

        unsafe fn allocate_memory(
            &self,
            info: &MemoryAllocateInfo<u32, u32>,
        ) -> Result<u32, DeviceError> {
            let mut s = self.state.borrow_mut();
            let ty = self.properties.types()[info.memory_type as usize];
            assert!(info.size > 0 && info.size <= self.limits.max_memory_allocation_size);
            let call = s.allocations;
            s.allocations += 1;
            if s.fail_at == Some(call) {
                return Err(DeviceError::OutOfDeviceMemory);
            }
            let live = s.objects.iter().flatten().count() as u32;
            assert!(
                live < self.limits.max_memory_allocation_count,
                "object count exceeded"
            );
            let heap = ty.heap_index as usize;
            if s.heap_used[heap] + info.size > self.properties.heaps()[heap].size {
                return Err(DeviceError::OutOfDeviceMemory);
            }
            s.heap_used[heap] += info.size;
            s.objects.push(Some(Object {
                size: info.size,
                memory_type: info.memory_type,
                mapped: false,
                dedicated: info.dedicated_to,
                device_address: info.device_address,
            }));
            Ok(s.objects.len() as u32 - 1)
        }

        unsafe fn free_memory(&self, memory: u32) {
            let mut s = self.state.borrow_mut();
            let o = s.objects[memory as usize]
                .take()
                .expect("double free of a memory object");
            assert!(!o.mapped, "freed while mapped");
            let heap = self.properties.types()[o.memory_type as usize].heap_index as usize;
            s.heap_used[heap] -= o.size;
        }

        unsafe fn map_memory(&self, memory: u32) -> Result<NonNull<u8>, DeviceError> {
            let mut s = self.state.borrow_mut();
            if s.fail_maps {
                return Err(DeviceError::MapFailed);
            }
            let o = s.objects[memory as usize]
                .as_mut()
                .expect("map of a freed object");
            let ty = self.properties.types()[o.memory_type as usize];
            assert!(ty.properties.contains(MemoryPropertyFlags::HOST_VISIBLE));
            assert!(!o.mapped, "mapped twice");
            o.mapped = true;
            Ok(NonNull::new(core::ptr::without_provenance_mut(mock_address(memory))).unwrap())
        }

        unsafe fn unmap_memory(&self, memory: u32) {
            let mut s = self.state.borrow_mut();
            let o = s.objects[memory as usize]
                .as_mut()
                .expect("unmap of a freed object");
            assert!(o.mapped, "unmap of an unmapped object");
            o.mapped = false;
        }

        unsafe fn flush_ranges(&self, ranges: &[MappedRange<u32>]) -> Result<(), DeviceError> {
            self.check_ranges(ranges);
            self.state.borrow_mut().flushed.extend_from_slice(ranges);
            Ok(())
        }

        unsafe fn invalidate_ranges(&self, ranges: &[MappedRange<u32>]) -> Result<(), DeviceError> {
            self.check_ranges(ranges);
            self.state
                .borrow_mut()
                .invalidated
                .extend_from_slice(ranges);
            Ok(())
        }
    }

    impl MockDevice {
        fn check_ranges(&self, ranges: &[MappedRange<u32>]) {
            let s = self.state.borrow();
            let atom = self.limits.non_coherent_atom_size;
            for r in ranges {
                let o = s.objects[r.memory as usize].expect("flush of a freed object");
                assert!(o.mapped, "flush of an unmapped object");
                assert_eq!(r.offset % atom, 0, "offset not a multiple of the atom");
                assert!(r.offset + r.size <= o.size, "range past the object");
                assert!(
                    r.size % atom == 0 || r.offset + r.size == o.size,
                    "size not whole atoms"
                );
            }
        }
    }
}

pub(super) mod pools {
    use std::vec::Vec;

    use super::mock::{MIB, MockDevice, mock_address};
    use crate::buddy::BuddyAllocator;
    use crate::device::{DedicatedHint, DedicatedTo, MemoryPropertyFlags as F};
    use crate::pool::*;
    use crate::suballocator::FreeError;
    use crate::tlsf::{TlsfAllocator, TlsfNode};
    use crate::usage::{MemoryUsage as U, ResourceKind};

    pub(crate) type Tlsf = TlsfAllocator<Vec<TlsfNode>>;
    pub(crate) type Buddy = BuddyAllocator<Vec<u64>>;
    pub(crate) type Pools<'d, A> =
        MemoryPools<&'d MockDevice, A, Vec<BlockSlot<u32, A>>, Vec<DedicatedSlot<u32>>>;

    /// Storage of every element type the tests use.
    pub(crate) trait TestStorage: BlockAllocator {
        fn storage(len: usize) -> Self::Storage;
    }
    impl TestStorage for Tlsf {
        fn storage(len: usize) -> Vec<TlsfNode> {
            std::vec![TlsfNode::EMPTY; len]
        }
    }
    impl TestStorage for Buddy {
        fn storage(len: usize) -> Vec<u64> {
            std::vec![0; len]
        }
    }

    pub(crate) fn pools_with<A: TestStorage>(
        dev: &MockDevice,
        config: PoolConfig,
        blocks: usize,
        dedicated: usize,
    ) -> Pools<'_, A> {
        let len = Pools::<A>::block_storage_len(&dev, &config).unwrap();
        let slots = (0..blocks)
            .map(|_| BlockSlot::new(A::storage(len)))
            .collect();
        let ded = std::vec![DedicatedSlot::new(); dedicated];
        MemoryPools::new(dev, config, slots, ded).unwrap()
    }

    pub(crate) fn config() -> PoolConfig {
        PoolConfig {
            max_allocations_per_block: 256,
            ..PoolConfig::DEFAULT
        }
    }

    pub(crate) fn req(size: u64, align: u64, usage: U) -> AllocationRequest {
        AllocationRequest::sized(size, align, usage)
    }

    /// Runs a test on both sub-allocators.
    macro_rules! both {
        ($($name:ident),* $(,)?) => {
            mod tlsf { $( #[test] fn $name() { super::$name::<super::Tlsf>() } )* }
            mod buddy { $( #[test] fn $name() { super::$name::<super::Buddy>() } )* }
        };
    }

    both!(
        sub_allocates_from_one_small_block,
        rejects_bad_input,
        rejects_bad_input_like_a_cached_route,
        dedicated_objects,
        keeps_one_empty_block,
        blocks_grow_then_cap,
        small_allocations_do_not_grow_blocks_past_their_metadata,
        object_count_is_respected,
        within_budget_mode,
        falls_back_to_the_next_type,
        separates_linear_and_optimal,
        flushes_whole_atoms,
        refuses_double_foreign_and_stale_frees,
        fault_at_every_device_allocation,
        slots_and_metadata_run_out,
        map_failure_frees_the_object,
        teardown_reports_leaks,
        drop_frees_only_empty_blocks,
        extreme_input_never_panics,
        flush_refuses_a_freed_or_widened_range,
        refuses_tables_earlier_pools_left_live,
        a_failed_allocation_keeps_the_cached_blocks,
        memory_map_agrees_with_the_stats_and_the_handles,
        limits_and_indices_are_exact,
        objects_smaller_than_a_granule_are_all_dedicated,
        memory_past_two_to_the_sixty_four_bytes_is_refused,
        an_alignment_of_the_largest_block_is_served_from_a_block,
        only_non_coherent_memory_takes_whole_atoms,
        a_free_lifts_the_refusal_a_block_remembers,
        a_block_the_device_refuses_is_retried_at_half_the_size,
        device_address_blocks_covers_dedicated_objects,
        device_address_buffers_share_blocks_of_their_own,
        budget_room_releases_the_largest_empty_block_first,
        a_trimmed_block_leaves_the_empty_count,
        growth_restarts_from_the_largest_live_block,
        a_handle_naming_another_object_is_foreign,
        flush_into_a_recreated_block_is_stale,
        a_failed_type_is_not_asked_twice,
        the_budget_is_refreshed_after_the_interval,
        budget_room_comes_from_the_requests_heap_only,
    );

    /// The memory map, gathered: `(block, its ranges)` per block and the dedicated objects.
    #[allow(clippy::type_complexity)]
    fn memory_map<A: TestStorage>(
        p: &Pools<'_, A>,
    ) -> (
        Vec<(MapBlock<u32>, Vec<crate::suballocator::LiveRange>)>,
        Vec<MapDedicated<u32>>,
    ) {
        let mut blocks: Vec<(MapBlock<u32>, Vec<_>)> = Vec::new();
        let mut dedicated = Vec::new();
        p.visit_memory_map(&mut |entry| match entry {
            MapEntry::Block(b) => blocks.push((b, Vec::new())),
            MapEntry::Range(r) => blocks
                .last_mut()
                .expect("a range follows its block")
                .1
                .push(r),
            MapEntry::Dedicated(d) => dedicated.push(d),
        });
        (blocks, dedicated)
    }

    /// Checks the map against every type's statistics and against the live handles: each
    /// block-placed handle lies in one range of its block with its size (rounded to atoms in
    /// non-coherent memory), each dedicated one is a dedicated entry of its size.
    fn check_memory_map<A: TestStorage>(p: &Pools<'_, A>, live: &[DeviceAllocation<u32>]) {
        let (blocks, dedicated) = memory_map(p);
        let types = p.device().memory_properties().types().len() as u32;
        for t in 0..types {
            let s = p.type_stats(t).unwrap();
            let mine = || blocks.iter().filter(|(b, _)| b.memory_type == t);
            let ded = || dedicated.iter().filter(|d| d.memory_type == t);
            let ranges: u64 = mine().map(|(_, r)| r.len() as u64).sum();
            let requested: u64 = mine().flat_map(|(_, r)| r).map(|r| r.requested).sum();
            assert_eq!(mine().count() as u32, s.blocks, "type {t}");
            assert_eq!(mine().map(|(b, _)| b.size).sum::<u64>(), s.block_bytes);
            assert_eq!(
                mine().filter(|(b, _)| b.live == 0).count() as u32,
                s.empty_blocks
            );
            assert_eq!((ranges, requested), (s.sub_allocations, s.allocated_bytes));
            assert_eq!(ded().count() as u32, s.dedicated_objects, "type {t}");
            assert_eq!(ded().map(|d| d.size).sum::<u64>(), s.dedicated_bytes);
        }
        for (b, ranges) in &blocks {
            let heap = p.device().memory_properties().types()[b.memory_type as usize].heap_index;
            assert_eq!(b.heap, heap);
            assert_eq!(ranges.len() as u32, b.live, "{b:?}");
            assert_eq!(
                ranges.iter().map(|r| r.requested).sum::<u64>(),
                b.allocated_bytes
            );
            let mut sorted = ranges.clone();
            sorted.sort_unstable_by_key(|r| r.offset);
            for pair in sorted.windows(2) {
                assert!(pair[0].end() <= pair[1].offset, "{pair:?} overlap");
            }
            assert!(sorted.last().is_none_or(|r| r.end() <= b.size), "{b:?}");
        }
        let placed = live.iter().filter(|a| !a.is_dedicated()).count();
        assert_eq!(blocks.iter().map(|(_, r)| r.len()).sum::<usize>(), placed);
        assert_eq!(dedicated.len(), live.len() - placed);
        for a in live {
            if a.is_dedicated() {
                let d = dedicated.iter().find(|d| d.memory == a.memory()).unwrap();
                assert_eq!((d.size, d.memory_type), (a.size(), a.memory_type()));
                assert_eq!(d.mapped, a.mapped().is_some());
                continue;
            }
            let (b, ranges) = blocks.iter().find(|(b, _)| b.memory == a.memory()).unwrap();
            assert_eq!(b.memory_type, a.memory_type());
            let holding: Vec<_> = ranges
                .iter()
                .filter(|r| r.offset <= a.offset() && a.offset() + a.size() <= r.end())
                .collect();
            assert_eq!(holding.len(), 1, "{a:?} in {ranges:?}");
            assert!(holding[0].requested >= a.size() && holding[0].requested < a.size() + 256);
        }
    }

    fn memory_map_agrees_with_the_stats_and_the_handles<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 16, 16);
        check_memory_map(&p, &[]);
        assert_eq!(memory_map(&p), (Vec::new(), Vec::new()));
        let mut live = Vec::new();
        let requests = [
            req(1000, 1, U::empty()),
            req(70_000, 4096, U::empty()),
            req(100, 1, U::UPLOAD),
            req(3 * MIB, 256, U::FAST_DEVICE_ACCESS),
            req(100, 1, U::empty()).with_kind(ResourceKind::Optimal),
            req(5000, 16, U::UPLOAD),
            req(100, 1, U::empty()).with_dedicated(),
            req(64 * MIB + 1, 1, U::empty()),
        ];
        for (i, r) in requests.iter().cycle().take(40).enumerate() {
            // Sizes vary so that no two ranges look alike.
            let mut r = *r;
            r.requirements.size += i as u64;
            live.push(p.allocate(&r).unwrap());
            check_memory_map(&p, &live);
        }
        let (blocks, _) = memory_map(&p);
        // Linear and optimal resources got blocks of their own (the mock's granularity is 1 KiB).
        assert!(
            blocks
                .iter()
                .any(|(b, _)| b.kind == Some(ResourceKind::Optimal))
        );
        assert!(
            blocks
                .iter()
                .any(|(b, _)| b.kind == Some(ResourceKind::Linear))
        );
        assert!(blocks.iter().any(|(b, _)| b.mapped) && blocks.iter().any(|(b, _)| !b.mapped));
        let mut i = 0;
        while i < live.len() {
            // SAFETY: no GPU.
            unsafe { p.free(live.remove(i)).unwrap() };
            check_memory_map(&p, &live);
            i += 2;
        }
        for a in live.drain(..) {
            // SAFETY: no GPU.
            unsafe { p.free(a).unwrap() };
        }
        check_memory_map(&p, &[]);
        // Only the empty blocks kept for reuse are left, with no ranges.
        let (blocks, dedicated) = memory_map(&p);
        assert!(dedicated.is_empty());
        assert!(
            blocks
                .iter()
                .all(|(b, r)| b.live == 0 && b.allocated_bytes == 0 && r.is_empty())
        );
    }

    /// What a failed allocation must leave as it was: the pools' objects and figures, and the
    /// device's objects.
    fn snapshot<A: TestStorage>(p: &Pools<'_, A>, dev: &MockDevice) -> (u32, PoolStats, usize) {
        (p.memory_objects(), p.total_stats(), dev.live_objects())
    }

    /// The end of most tests: frees `allocations`, destroys the pools (which must find nothing
    /// live) and checks that the device holds no memory object any more.
    fn free_all_and_destroy<'d, A: TestStorage>(
        mut p: Pools<'d, A>,
        allocations: impl IntoIterator<Item = DeviceAllocation<u32>>,
        dev: &MockDevice,
    ) {
        // SAFETY: the mock device runs no GPU work.
        unsafe {
            for a in allocations {
                p.free(a).unwrap();
            }
            assert!(p.destroy().is_clean());
        }
        assert_eq!(dev.live_objects(), 0);
    }

    /// An allocation refused over budget or at the object count releases no cached empty
    /// block: it releases them only when that makes the request fit.
    fn a_failed_allocation_keeps_the_cached_blocks<A: TestStorage>() {
        let within_budget = PoolConfig {
            within_budget: true,
            ..config()
        };
        // A dedicated object larger than the heap's whole budget (estimated: 80% of 1 GiB).
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, within_budget, 8, 8);
        let x = p.allocate(&req(4096, 256, U::empty())).unwrap();
        // SAFETY: no GPU.
        unsafe { p.free(x).unwrap() };
        let before = snapshot(&p, &dev);
        assert_eq!((before.0, before.1.empty_blocks), (1, 1));
        assert_eq!(
            p.allocate(&req(900 * MIB, 256, U::empty()).with_memory_type(0)),
            Err(PoolError::OverBudget { heap: 0 })
        );
        assert_eq!(snapshot(&p, &dev), before);
        // A block that does not fit the budget even with the cached empty block gone.
        let mut dev = MockDevice::discrete();
        dev.budgets = Some(std::vec![5 * MIB, 1 << 30]);
        let mut p = pools_with::<A>(&dev, within_budget, 8, 8);
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        let b = p
            .allocate(&req(MIB, 1, U::empty()).with_kind(ResourceKind::Optimal))
            .unwrap();
        assert_eq!((a.memory_type(), b.memory_type()), (0, 0));
        assert_ne!(a.memory(), b.memory());
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
        let before = snapshot(&p, &dev);
        assert_eq!((before.0, before.1.empty_blocks), (2, 1));
        assert_eq!(
            p.allocate(&req(2 * MIB + 1, 1, U::empty()).with_memory_type(0)),
            Err(PoolError::OverBudget { heap: 0 })
        );
        assert_eq!(snapshot(&p, &dev), before);
        // When releasing it makes the request fit, it goes.
        let c = p
            .allocate(
                &req(3 * MIB, 1, U::empty())
                    .with_memory_type(0)
                    .with_dedicated(),
            )
            .unwrap();
        assert_eq!((p.memory_objects(), p.total_stats().empty_blocks), (2, 0));
        // SAFETY: no GPU.
        unsafe {
            p.free(b).unwrap();
            p.free(c).unwrap();
        }
        // At the object count, over budget: the empty block that would make room stays.
        let mut dev = MockDevice::discrete();
        dev.limits.max_memory_allocation_count = 2;
        let mut p = pools_with::<A>(&dev, within_budget, 8, 8);
        let x = p.allocate(&req(4096, 256, U::empty())).unwrap();
        let d = p
            .allocate(&req(4096, 256, U::empty()).with_dedicated())
            .unwrap();
        // SAFETY: no GPU.
        unsafe { p.free(x).unwrap() };
        let before = snapshot(&p, &dev);
        assert_eq!((before.0, before.1.empty_blocks), (2, 1));
        assert_eq!(
            p.allocate(&req(900 * MIB, 256, U::empty()).with_memory_type(0)),
            Err(PoolError::OverBudget { heap: 0 })
        );
        assert_eq!(snapshot(&p, &dev), before);
        free_all_and_destroy(p, [d], &dev);
    }

    /// Pools over borrowed tables, so that a test can build other pools over them afterwards.
    type BorrowedPools<'d, 't, A> =
        MemoryPools<&'d MockDevice, A, &'t mut [BlockSlot<u32, A>], &'t mut [DedicatedSlot<u32>]>;

    fn borrowed_pools<'d, 't, A: BlockAllocator>(
        dev: &'d MockDevice,
        blocks: &'t mut [BlockSlot<u32, A>],
        dedicated: &'t mut [DedicatedSlot<u32>],
    ) -> Result<BorrowedPools<'d, 't, A>, PoolConfigError> {
        MemoryPools::new(dev, config(), blocks, dedicated)
    }

    /// Tables that earlier pools left holding a block or a dedicated object (dropped with live
    /// allocations, or forgotten) are refused: new pools would report those objects as theirs
    /// and free them. Tables left clean are reused.
    fn refuses_tables_earlier_pools_left_live<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let len = Pools::<A>::block_storage_len(&&dev, &config()).unwrap();
        let new_tables = || -> (Vec<BlockSlot<u32, A>>, Vec<DedicatedSlot<u32>>) {
            (
                (0..4).map(|_| BlockSlot::new(A::storage(len))).collect(),
                std::vec![DedicatedSlot::new(); 4],
            )
        };
        let pools = |blocks: &mut Vec<BlockSlot<u32, A>>, ded: &mut Vec<DedicatedSlot<u32>>| {
            borrowed_pools(&dev, &mut blocks[..], &mut ded[..]).map(drop)
        };
        // Dropped with a live block range and a live dedicated object.
        let (mut blocks, mut ded) = new_tables();
        {
            let mut a = borrowed_pools(&dev, &mut blocks, &mut ded).unwrap();
            let _ = a.allocate(&req(4096, 256, U::empty())).unwrap().into_raw();
            let _ = a
                .allocate(&req(4096, 256, U::empty()).with_dedicated())
                .unwrap()
                .into_raw();
        }
        assert_eq!(dev.live_objects(), 2);
        assert_eq!(
            pools(&mut blocks, &mut ded).err(),
            Some(PoolConfigError::BlockSlotInUse { slot: 0 })
        );
        // Nothing was freed or relinked by the refusal.
        assert_eq!(dev.live_objects(), 2);
        assert!(blocks[0].is_live());
        // Only the dedicated object left: refused by that table.
        let (mut fresh_blocks, _) = new_tables();
        assert_eq!(
            pools(&mut fresh_blocks, &mut ded).err(),
            Some(PoolConfigError::DedicatedSlotInUse { slot: 0 })
        );
        assert_eq!(dev.live_objects(), 2);
        // Forgotten with an empty block cached: refused too (its block is not the new pools').
        let (mut blocks, mut ded) = new_tables();
        {
            let mut a = borrowed_pools(&dev, &mut blocks, &mut ded).unwrap();
            let x = a.allocate(&req(4096, 256, U::empty())).unwrap();
            // SAFETY: no GPU.
            unsafe { a.free(x).unwrap() };
            core::mem::forget(a);
        }
        assert_eq!(dev.live_objects(), 3);
        assert_eq!(
            pools(&mut blocks, &mut ded).err(),
            Some(PoolConfigError::BlockSlotInUse { slot: 0 })
        );
        assert_eq!(dev.live_objects(), 3);
        // Dropped clean: the tables serve new pools, whose figures are their own.
        let (mut blocks, mut ded) = new_tables();
        {
            let mut a = borrowed_pools(&dev, &mut blocks, &mut ded).unwrap();
            let x = a.allocate(&req(4096, 256, U::empty())).unwrap();
            let y = a
                .allocate(&req(4096, 256, U::empty()).with_dedicated())
                .unwrap();
            // SAFETY: no GPU.
            unsafe {
                a.free(x).unwrap();
                a.free(y).unwrap();
            }
        }
        assert_eq!(dev.live_objects(), 3);
        let mut b = borrowed_pools(&dev, &mut blocks, &mut ded).unwrap();
        assert_eq!(b.total_stats(), PoolStats::default());
        let x = b.allocate(&req(4096, 256, U::empty())).unwrap();
        assert_eq!(b.total_stats().live_allocations(), 1);
        // SAFETY: no GPU.
        unsafe {
            b.free(x).unwrap();
            assert!(b.destroy().is_clean());
        }
        assert_eq!(dev.live_objects(), 3);
    }

    /// A handle freed while its block lives on, or rebuilt with a larger size, names a range
    /// it does not own: flush and invalidate refuse it, and the device sees no call.
    fn flush_refuses_a_freed_or_widened_range<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 8, 8);
        // Type 2 is host-visible, not coherent: flushes reach the device.
        let r = req(256, 256, U::DOWNLOAD);
        let keep = p.allocate(&r).unwrap();
        let x = p.allocate(&r).unwrap();
        assert_eq!(x.memory_type(), 2);
        let stale = *x.raw();
        let mut wide = stale;
        wide.size = 4096;
        assert_eq!(
            p.flush(&DeviceAllocation::from_raw(wide), 0, 4096),
            Err(FlushError::StaleAllocation)
        );
        // SAFETY: no GPU.
        unsafe { p.free(x).unwrap() };
        assert_eq!(
            p.flush(&DeviceAllocation::from_raw(stale), 0, 256),
            Err(FlushError::StaleAllocation)
        );
        // The range's new owner: the stale handle still cannot reach it.
        let z = p.allocate(&r).unwrap();
        assert_eq!((z.memory(), z.offset()), (stale.memory, stale.offset));
        assert_eq!(
            p.invalidate(&DeviceAllocation::from_raw(stale), 0, 256),
            Err(FlushError::StaleAllocation)
        );
        assert_eq!(
            p.flush(&DeviceAllocation::from_raw(stale), 0, 256),
            Err(FlushError::StaleAllocation)
        );
        {
            let s = dev.state.borrow();
            assert_eq!((s.flushed.len(), s.invalidated.len()), (0, 0));
        }
        // The live handles still work, on their own ranges.
        p.invalidate(&z, 0, 256).unwrap();
        p.flush(&keep, 0, 256).unwrap();
        {
            let s = dev.state.borrow();
            assert_eq!(
                (s.invalidated[0].offset, s.invalidated[0].size),
                (z.offset(), 256)
            );
            assert_eq!(
                (s.flushed[0].offset, s.flushed[0].size),
                (keep.offset(), 256)
            );
        }
        // SAFETY: no GPU.
        unsafe {
            p.free(z).unwrap();
            p.free(keep).unwrap();
        }
    }

    fn extreme_input_never_panics<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let sizes = [1, 255, 256, 257, (1 << 32) - 1, 1 << 32, u64::MAX];
        let aligns = [1, 2, 256, 1 << 20, 1 << 32, 1 << 63, 0, 3, u64::MAX];
        let usages = [
            U::empty(),
            U::UPLOAD,
            U::DOWNLOAD,
            U::all(),
            U::from_bits_retain(!0),
        ];
        let mut live = Vec::new();
        for &size in &sizes {
            for &align in &aligns {
                for &usage in &usages {
                    for kind in [ResourceKind::Linear, ResourceKind::Optimal] {
                        let r = req(size, align, usage).with_kind(kind);
                        if let Ok(a) = p.allocate(&r) {
                            assert!(size <= 1 << 32 && align.is_power_of_two());
                            assert_eq!(a.offset() % align, 0);
                            live.push(a);
                        }
                        while live.len() > 2 {
                            // SAFETY: no GPU.
                            unsafe { p.free(live.remove(0)).unwrap() };
                        }
                    }
                }
            }
        }
        free_all_and_destroy(p, live, &dev);
    }

    fn sub_allocates_from_one_small_block<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 16, 16);
        let a = p.allocate(&req(1000, 64, U::FAST_DEVICE_ACCESS)).unwrap();
        let b = p.allocate(&req(3000, 256, U::FAST_DEVICE_ACCESS)).unwrap();
        assert_eq!((a.memory_type(), b.memory_type()), (0, 0));
        assert_eq!(a.memory(), b.memory());
        assert!(!a.is_dedicated() && a.mapped().is_none());
        assert_eq!(b.offset() % 256, 0);
        assert!(a.offset() + 1000 <= b.offset() || b.offset() + 3000 <= a.offset());
        assert_eq!(dev.live_objects(), 1);
        assert_eq!(dev.state.borrow().objects[0].unwrap().size, 2 * MIB);
        let s = p.type_stats(0).unwrap();
        assert_eq!(
            (s.blocks, s.block_bytes, s.sub_allocations),
            (1, 2 * MIB, 2)
        );
        assert!(s.allocated_bytes >= 4000);
        let h = p.heap_stats(0).unwrap();
        assert_eq!(h.pools, s);
        assert_eq!(
            (h.budget, h.usage, h.budget_from_device),
            ((1u64 << 30) * 8 / 10, 2 * MIB, false)
        );
        // Host-visible memory: mapped once, the allocation's pointer is base + offset.
        let up = p.allocate(&req(100, 4, U::UPLOAD)).unwrap();
        assert_eq!(up.memory_type(), 1);
        let base = mock_address(up.memory());
        assert_eq!(
            up.mapped().unwrap().as_ptr() as usize,
            base + up.offset() as usize
        );
        // SAFETY: the mock device runs no GPU work.
        unsafe {
            p.free(a).unwrap();
            p.free(b).unwrap();
            p.free(up).unwrap();
        }
        let s = p.total_stats();
        assert_eq!(
            (s.live_allocations(), s.allocated_bytes, s.empty_blocks),
            (0, 0, 2)
        );
        // SAFETY: as above.
        let report = unsafe { p.destroy() };
        assert!(report.is_clean());
        assert_eq!(report.objects_freed, 2);
        assert_eq!(dev.live_objects(), 0);
    }

    fn rejects_bad_input<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let e = |r: &AllocationRequest, p: &mut Pools<'_, A>| p.allocate(r).unwrap_err();
        assert_eq!(e(&req(0, 1, U::empty()), &mut p), PoolError::ZeroSize);
        assert_eq!(
            e(&req(16, 3, U::empty()), &mut p),
            PoolError::AlignmentNotPowerOfTwo
        );
        assert_eq!(
            e(&req(16, 0, U::empty()), &mut p),
            PoolError::AlignmentNotPowerOfTwo
        );
        assert_eq!(
            e(&req((1 << 32) + 1, 1, U::empty()), &mut p),
            PoolError::TooLarge {
                size: (1 << 32) + 1,
                max: 1 << 32
            }
        );
        let mut r = req(16, 1, U::UPLOAD);
        r.requirements.memory_type_bits = 0b001;
        assert_eq!(e(&r, &mut p), PoolError::NoCompatibleType);
        r.requirements.memory_type_bits = 0;
        assert_eq!(e(&r, &mut p), PoolError::NoCompatibleType);
        let r = req(16, 1, U::empty()).with_memory_type(3);
        assert_eq!(e(&r, &mut p), PoolError::TypeNotAllowed);
        let mut r = req(16, 1, U::empty()).with_memory_type(1);
        r.requirements.memory_type_bits = 0b001;
        assert_eq!(e(&r, &mut p), PoolError::TypeNotAllowed);
        // Nothing was allocated by any of it.
        assert_eq!((dev.allocations(), p.memory_objects()), (0, 0));
        // A strict type is honoured even when the usage would rank it last.
        let a = p
            .allocate(&req(16, 1, U::empty()).with_memory_type(2))
            .unwrap();
        assert_eq!(a.memory_type(), 2);
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }

    /// Once a usage's route and its block hint are cached, requests of that usage take the
    /// allocate fast path, which checks only what it relies on: bad ones must still get their
    /// typed errors (from the checked path) and change nothing.
    fn rejects_bad_input_like_a_cached_route<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let fast = U::FAST_DEVICE_ACCESS;
        let keep = p.allocate(&req(1000, 64, fast)).unwrap();
        let e = |r: &AllocationRequest, p: &mut Pools<'_, A>| p.allocate(r).unwrap_err();
        assert_eq!(e(&req(0, 1, fast), &mut p), PoolError::ZeroSize);
        assert_eq!(
            e(&req(16, 3, fast), &mut p),
            PoolError::AlignmentNotPowerOfTwo
        );
        assert_eq!(
            e(&req(16, 0, fast), &mut p),
            PoolError::AlignmentNotPowerOfTwo
        );
        assert_eq!(
            e(&req(u64::MAX, 1, fast), &mut p),
            PoolError::TooLarge {
                size: u64::MAX,
                max: 1 << 32
            }
        );
        let mut r = req(16, 1, fast);
        r.requirements.dedicated = DedicatedHint::Required;
        assert_eq!(e(&r, &mut p), PoolError::DedicatedResourceRequired);
        let r = req(16, 1, fast).with_memory_type(3);
        assert_eq!(e(&r, &mut p), PoolError::TypeNotAllowed);
        // Nothing was allocated by any of it.
        assert_eq!((dev.allocations(), p.memory_objects()), (1, 1));
        assert_eq!(p.total_stats().live_allocations(), 1);
        // The fast path still serves a good request, from the same block.
        let b = p.allocate(&req(2000, 256, fast)).unwrap();
        assert_eq!((b.memory(), b.offset() % 256), (keep.memory(), 0));
        free_all_and_destroy(p, [keep, b], &dev);
    }

    fn dedicated_objects<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 8);
        // Above half the preferred block size (1 GiB heap: 128 MiB blocks, threshold 64 MiB).
        assert_eq!(p.sizing(0).unwrap().dedicated_threshold, 64 * MIB);
        let big = p.allocate(&req(64 * MIB + 1, 1, U::empty())).unwrap();
        assert!(big.is_dedicated());
        assert_eq!((big.offset(), big.size()), (0, 64 * MIB + 1));
        let mut r = req(4096, 1, U::UPLOAD);
        r.requirements.dedicated = DedicatedHint::Required;
        assert_eq!(p.allocate(&r), Err(PoolError::DedicatedResourceRequired));
        // SAFETY: the mock's buffer 7 and image 9 are "alive and unbound" (the mock has no
        // resources).
        let named = unsafe { p.allocate_dedicated_to(&r, DedicatedTo::Buffer(7)) }.unwrap();
        let mut image_request = req(8 * MIB, 1, U::empty());
        image_request.kind = ResourceKind::Optimal;
        image_request.requirements.dedicated = DedicatedHint::Required;
        assert_eq!(
            p.allocate(&image_request),
            Err(PoolError::DedicatedResourceRequired)
        );
        // SAFETY: as above.
        let image = unsafe { p.allocate_dedicated_to(&image_request, DedicatedTo::Image(9)) };
        let image = image.unwrap();
        assert!(named.is_dedicated() && named.mapped().is_some());
        assert!(image.is_dedicated() && image.mapped().is_none());
        assert_eq!((image.offset(), image.size()), (0, 8 * MIB));
        let dedicated_to = |a: &DeviceAllocation<u32>| {
            dev.state.borrow().objects[a.memory() as usize]
                .unwrap()
                .dedicated
        };
        assert_eq!(dedicated_to(&named), Some(DedicatedTo::Buffer(7)));
        assert_eq!(dedicated_to(&image), Some(DedicatedTo::Image(9)));
        r.requirements.dedicated = DedicatedHint::Preferred;
        let preferred = p.allocate(&r).unwrap();
        let forced = p
            .allocate(&req(256, 1, U::empty()).with_dedicated())
            .unwrap();
        assert!(preferred.is_dedicated() && forced.is_dedicated());
        assert_eq!(p.memory_objects(), 5);
        let s = p.total_stats();
        assert_eq!((s.dedicated_objects, s.blocks), (5, 0));
        // SAFETY: no GPU.
        unsafe {
            for a in [big, named, image, preferred, forced] {
                p.free(a).unwrap();
            }
        }
        assert_eq!(
            (dev.live_objects(), p.total_stats().dedicated_bytes),
            (0, 0)
        );
    }

    fn keeps_one_empty_block<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 8, 4);
        for _ in 0..10 {
            let a = p.allocate(&req(4096, 1, U::empty())).unwrap();
            // SAFETY: no GPU.
            unsafe { p.free(a).unwrap() };
        }
        // One device call for ten frames.
        assert_eq!(dev.allocations(), 1);
        assert_eq!(p.type_stats(0).unwrap().empty_blocks, 1);
        // Two blocks emptied at once: the smaller goes, the larger stays.
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        let b = p.allocate(&req(2 * MIB, 1, U::empty())).unwrap();
        assert_eq!(dev.live_objects(), 2);
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(b).unwrap();
        }
        assert_eq!(dev.live_objects(), 1);
        let s = p.type_stats(0).unwrap();
        assert_eq!((s.blocks, s.empty_blocks, s.block_bytes), (1, 1, 4 * MIB));
        assert_eq!(p.trim(), 1);
        assert_eq!(dev.live_objects(), 0);
    }

    fn blocks_grow_then_cap<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 16, 4);
        let mut live = Vec::new();
        // Fill block after block with 1 MiB allocations: 2, 4, 8, ... MiB, capped at 128 MiB.
        for _ in 0..(2 + 4 + 8 + 16 + 32 + 64 + 128 + 128) {
            live.push(p.allocate(&req(MIB, 1, U::empty())).unwrap());
        }
        assert_eq!(object_mib(&dev), [2, 4, 8, 16, 32, 64, 128, 128]);
        free_all(&mut p, live);
        assert_eq!(dev.live_objects(), 1, "one empty block kept");
    }

    /// Sizes in MiB of the device's memory objects in allocation order (all still live).
    fn object_mib(dev: &MockDevice) -> Vec<u64> {
        let state = dev.state.borrow();
        state
            .objects
            .iter()
            .map(|o| o.unwrap().size / MIB)
            .collect()
    }

    fn free_all<A: TestStorage>(p: &mut Pools<'_, A>, live: Vec<DeviceAllocation<u32>>) {
        for a in live {
            // SAFETY: no GPU.
            unsafe { p.free(a).unwrap() };
        }
    }

    fn small_allocations_do_not_grow_blocks_past_their_metadata<A: TestStorage>() {
        let dev = MockDevice::discrete();
        // 256 allocations per block. Of 16 KiB each they fill 4 MiB of a block: blocks grow
        // 2, 4 MiB and stay there, where doubling would go on to 8, 16, 32 MiB, each holding
        // 4 MiB of allocations.
        let mut p = pools_with::<A>(&dev, config(), 16, 4);
        let live: Vec<_> = (0..(128 + 256 * 4))
            .map(|_| p.allocate(&req(16 << 10, 1, U::empty())).unwrap())
            .collect();
        assert_eq!(object_mib(&dev), [2, 4, 4, 4, 4]);
        let s = p.type_stats(0).unwrap();
        assert_eq!(
            (s.blocks, s.block_bytes, s.sub_allocations),
            (5, 18 * MIB, 1152)
        );
        free_all(&mut p, live);
        assert_eq!(dev.live_objects(), 1, "one empty block kept");
        // Larger allocations grow blocks again: 1 MiB ones fill the kept 4 MiB block, then
        // open an 8 MiB one.
        let live: Vec<_> = (0..5)
            .map(|_| p.allocate(&req(MIB, 1, U::empty())).unwrap())
            .collect();
        let newest = dev.state.borrow().objects.iter().flatten().last().copied();
        assert_eq!(newest.unwrap().size, 8 * MIB);
        assert_eq!(p.type_stats(0).unwrap().block_bytes, 12 * MIB);
        free_all(&mut p, live);
    }

    fn object_count_is_respected<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.limits.max_memory_allocation_count = 3;
        let mut p = pools_with::<A>(&dev, config(), 8, 8);
        let block_alloc = p.allocate(&req(16, 1, U::empty())).unwrap();
        let d1 = p
            .allocate(&req(16, 1, U::empty()).with_dedicated())
            .unwrap();
        let d2 = p.allocate(&req(16, 1, U::UPLOAD).with_dedicated()).unwrap();
        assert_eq!(
            p.allocate(&req(16, 1, U::UPLOAD).with_dedicated()),
            Err(PoolError::ObjectCountExhausted { limit: 3 })
        );
        // A new block is an object too.
        assert_eq!(
            p.allocate(&req(16, 1, U::UPLOAD)),
            Err(PoolError::ObjectCountExhausted { limit: 3 })
        );
        // An empty block is released to make room.
        // SAFETY: no GPU.
        unsafe { p.free(block_alloc).unwrap() };
        assert_eq!(p.memory_objects(), 3);
        let up = p.allocate(&req(16, 1, U::UPLOAD)).unwrap();
        assert_eq!((p.memory_objects(), dev.live_objects()), (3, 3));
        free_all_and_destroy(p, [d1, d2, up], &dev);
    }

    fn within_budget_mode<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.budgets = Some(std::vec![5 * MIB, 1 << 30]);
        let mut p = pools_with::<A>(
            &dev,
            PoolConfig {
                within_budget: true,
                ..config()
            },
            8,
            8,
        );
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        assert_eq!(a.memory_type(), 0);
        let h = p.heap_stats(0).unwrap();
        assert_eq!(
            (h.budget, h.usage, h.budget_from_device),
            (5 * MIB, 2 * MIB, true)
        );
        // A second block (4 MiB, not halved below the request) does not fit: strict fails...
        let r = req(2 * MIB + 1, 1, U::empty());
        assert_eq!(
            p.allocate(&r.with_memory_type(0)),
            Err(PoolError::OverBudget { heap: 0 })
        );
        assert_eq!(
            p.allocate(
                &req(3 * MIB + 1, 1, U::empty())
                    .with_memory_type(0)
                    .with_dedicated()
            ),
            Err(PoolError::OverBudget { heap: 0 })
        );
        // ...and ranked falls back to the next type, in another heap.
        let b = p.allocate(&r).unwrap();
        assert_eq!(b.memory_type(), 1);
        assert!(dev.state.borrow().heap_used[0] <= 5 * MIB);
        // Empty blocks of the heap are released to stay within budget.
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
        let c = p
            .allocate(&req(2 * MIB + 1, 1, U::empty()).with_memory_type(0))
            .unwrap();
        assert_eq!(c.memory_type(), 0);
        assert!(dev.state.borrow().heap_used[0] <= 5 * MIB);
        // SAFETY: no GPU.
        unsafe {
            p.free(b).unwrap();
            p.free(c).unwrap();
        }
    }

    fn falls_back_to_the_next_type<A: TestStorage>() {
        let dev = MockDevice::new(
            &[(F::DEVICE_LOCAL, 0), (F::DEVICE_LOCAL, 1), (F::empty(), 2)],
            &[2 * MIB, 4 * MIB, 64 * MIB],
        );
        let mut p = pools_with::<A>(&dev, config(), 8, 8);
        // Heap 0 holds one 256 KiB block (an eighth of 2 MiB)...
        let a = p.allocate(&req(200 << 10, 1, U::empty())).unwrap();
        assert_eq!(a.memory_type(), 0);
        // ...dedicated objects go to heap 0 while it has room, then heap 1, then heap 2.
        let mut types = Vec::new();
        let mut live = Vec::new();
        for _ in 0..6 {
            let d = p
                .allocate(&req(MIB, 1, U::empty()).with_dedicated())
                .unwrap();
            types.push(d.memory_type());
            live.push(d);
        }
        assert_eq!(types, [0, 1, 1, 1, 1, 2]);
        // Strict: no fallback.
        assert_eq!(
            p.allocate(&req(MIB, 1, U::empty()).with_dedicated().with_memory_type(0)),
            Err(PoolError::Device(
                crate::device::DeviceError::OutOfDeviceMemory
            ))
        );
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            for d in live {
                p.free(d).unwrap();
            }
        }
    }

    fn separates_linear_and_optimal<A: TestStorage>() {
        // Granularity 1024 above the 256-byte granule: separate blocks.
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 8, 8);
        let lin = p.allocate(&req(100, 1, U::empty())).unwrap();
        let opt = p
            .allocate(&req(100, 1, U::empty()).with_kind(ResourceKind::Optimal))
            .unwrap();
        assert_ne!(lin.memory(), opt.memory());
        // Granularity at or below the granule: one block serves both.
        let mut dev2 = MockDevice::discrete();
        dev2.limits.buffer_image_granularity = 256;
        let mut p2 = pools_with::<A>(&dev2, config(), 8, 8);
        let lin2 = p2.allocate(&req(100, 1, U::empty())).unwrap();
        let opt2 = p2
            .allocate(&req(100, 1, U::empty()).with_kind(ResourceKind::Optimal))
            .unwrap();
        assert_eq!(lin2.memory(), opt2.memory());
        // Different 256-byte pages.
        assert_ne!(lin2.offset() / 256, opt2.offset() / 256);
        // SAFETY: no GPU.
        unsafe {
            p.free(lin).unwrap();
            p.free(opt).unwrap();
            p2.free(lin2).unwrap();
            p2.free(opt2).unwrap();
        }
    }

    fn flushes_whole_atoms<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 8, 8);
        // Type 2 is host-visible, not coherent: allocations own whole 256-byte atoms.
        let a = p.allocate(&req(10, 1, U::DOWNLOAD)).unwrap();
        let b = p.allocate(&req(10, 1, U::DOWNLOAD)).unwrap();
        assert_eq!(a.memory_type(), 2);
        assert_eq!((a.offset() % 256, b.offset() % 256), (0, 0));
        assert!(a.offset().abs_diff(b.offset()) >= 256);
        p.flush(&a, 3, 5).unwrap();
        p.invalidate(&b, 0, 10).unwrap();
        {
            let s = dev.state.borrow();
            assert_eq!((s.flushed[0].offset, s.flushed[0].size), (a.offset(), 256));
            assert_eq!(
                (s.invalidated[0].offset, s.invalidated[0].size),
                (b.offset(), 256)
            );
        }
        assert_eq!(p.flush(&a, 5, 6), Err(FlushError::OutOfRange));
        assert_eq!(p.flush(&a, u64::MAX, 2), Err(FlushError::OutOfRange));
        // A handle rebuilt with a forged offset names no live range of its block: refused,
        // never an overflow.
        let mut forged = *a.raw();
        forged.offset = u64::MAX - 4;
        assert_eq!(
            p.flush(&DeviceAllocation::from_raw(forged), 0, 10),
            Err(FlushError::StaleAllocation)
        );
        p.flush(&a, 10, 0).unwrap();
        // Coherent: skipped. Device-local: refused.
        let c = p.allocate(&req(10, 1, U::UPLOAD)).unwrap();
        p.flush(&c, 0, 10).unwrap();
        let d = p.allocate(&req(10, 1, U::empty())).unwrap();
        assert_eq!(p.flush(&d, 0, 10), Err(FlushError::NotHostVisible));
        assert_eq!(dev.state.borrow().flushed.len(), 1);
        // A dedicated non-coherent object of an odd size: the last atom is clamped to its end.
        let e = p
            .allocate(&req(1000, 1, U::DOWNLOAD).with_dedicated())
            .unwrap();
        p.invalidate(&e, 900, 100).unwrap();
        {
            let s = dev.state.borrow();
            let last = s.invalidated.last().unwrap();
            assert_eq!((last.offset, last.size), (768, 232));
        }
        let raw_e = *e.raw();
        // SAFETY: no GPU.
        unsafe {
            for x in [a, b, c, d, e] {
                p.free(x).unwrap();
            }
        }
        assert_eq!(
            p.flush(&DeviceAllocation::from_raw(raw_e), 0, 1),
            Err(FlushError::StaleAllocation)
        );
    }

    fn refuses_double_foreign_and_stale_frees<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 8, 8);
        let mut q = pools_with::<A>(&dev, config(), 8, 8);
        let keep = p.allocate(&req(64, 1, U::empty())).unwrap();
        let a = p.allocate(&req(64, 1, U::empty())).unwrap();
        let d = p
            .allocate(&req(64, 1, U::empty()).with_dedicated())
            .unwrap();
        let (raw_a, raw_d) = (*a.raw(), *d.raw());
        let before = p.total_stats();
        // SAFETY: no GPU; the refused frees touch nothing.
        unsafe {
            assert_eq!(
                q.free(DeviceAllocation::from_raw(raw_a)),
                Err(FreeError::ForeignAllocation)
            );
            assert_eq!(
                q.free(DeviceAllocation::from_raw(raw_d)),
                Err(FreeError::ForeignAllocation)
            );
            let mut bad_slot = raw_a;
            bad_slot.slot = 1000;
            assert_eq!(
                p.free(DeviceAllocation::from_raw(bad_slot)),
                Err(FreeError::ForeignAllocation)
            );
            let mut bad_memory = raw_d;
            bad_memory.memory += 1;
            assert_eq!(
                p.free(DeviceAllocation::from_raw(bad_memory)),
                Err(FreeError::ForeignAllocation)
            );
            assert_eq!(p.total_stats(), before);
            p.free(a).unwrap();
            p.free(d).unwrap();
            // Twice: the block is still live (it holds `keep`), its sub-allocator refuses.
            assert!(matches!(
                p.free(DeviceAllocation::from_raw(raw_a)),
                Err(FreeError::DoubleFree | FreeError::StaleAllocation)
            ));
            assert_eq!(
                p.free(DeviceAllocation::from_raw(raw_d)),
                Err(FreeError::DoubleFree)
            );
            // The dedicated slot reused by another object: the old handle is still refused.
            let d2 = p
                .allocate(&req(64, 1, U::empty()).with_dedicated())
                .unwrap();
            assert_eq!(d2.raw().slot, raw_d.slot);
            assert_eq!(
                p.free(DeviceAllocation::from_raw(raw_d)),
                Err(FreeError::DoubleFree)
            );
            p.free(keep).unwrap();
            p.free(d2).unwrap();
            // The block released (trim): a handle into it is refused by generation.
            assert_eq!(p.trim(), 1);
            assert_eq!(
                p.free(DeviceAllocation::from_raw(raw_a)),
                Err(FreeError::DoubleFree)
            );
        }
        assert_eq!(p.total_stats().live_allocations(), 0);
    }

    /// For each k, the k-th device allocation fails: the caller gets a typed error (or the
    /// pools fall back to another type), nothing leaks, and the pools keep working.
    fn fault_at_every_device_allocation<A: TestStorage>() {
        let workload = |p: &mut Pools<'_, A>| -> (Vec<DeviceAllocation<u32>>, u32) {
            let mut live = Vec::new();
            let mut errors = 0;
            let requests = [
                req(MIB, 1, U::empty()),
                req(3 * MIB, 1, U::empty()),
                req(100 * MIB, 1, U::empty()),
                req(4096, 1, U::UPLOAD),
                req(4096, 1, U::DOWNLOAD).with_dedicated(),
                req(8 * MIB, 1, U::empty()).with_kind(ResourceKind::Optimal),
                req(MIB, 1, U::UPLOAD | U::FAST_DEVICE_ACCESS),
            ];
            for r in requests.iter().cycle().take(21) {
                match p.allocate(r) {
                    Ok(a) => live.push(a),
                    Err(PoolError::Device(crate::device::DeviceError::OutOfDeviceMemory)) => {
                        errors += 1
                    }
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
            (live, errors)
        };
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 32, 32);
        let (live, errors) = workload(&mut p);
        assert_eq!(errors, 0);
        let calls = dev.allocations();
        // SAFETY: no GPU.
        unsafe {
            for a in live {
                p.free(a).unwrap();
            }
            assert!(p.destroy().is_clean());
        }
        for k in 0..calls {
            let dev = MockDevice::discrete();
            dev.state.borrow_mut().fail_at = Some(k);
            let mut p = pools_with::<A>(&dev, config(), 32, 32);
            let (live, _) = workload(&mut p);
            // Stats agree with the device after the failure.
            let s = p.total_stats();
            assert_eq!(s.memory_objects() as usize, dev.live_objects(), "k = {k}");
            assert_eq!(s.live_allocations(), live.len() as u64);
            // Still works.
            let again = p.allocate(&req(MIB, 1, U::empty())).unwrap();
            // SAFETY: no GPU.
            unsafe {
                p.free(again).unwrap();
                for a in live {
                    p.free(a).unwrap();
                }
                assert!(p.destroy().is_clean());
            }
            assert_eq!(dev.live_objects(), 0, "k = {k}");
        }
    }

    fn slots_and_metadata_run_out<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 1, 1);
        let a = p.allocate(&req(16, 1, U::empty())).unwrap();
        assert_eq!(
            p.allocate(&req(16, 1, U::UPLOAD)),
            Err(PoolError::BlockSlotsExhausted)
        );
        let d = p.allocate(&req(16, 1, U::UPLOAD).with_dedicated()).unwrap();
        assert_eq!(
            p.allocate(&req(16, 1, U::UPLOAD).with_dedicated()),
            Err(PoolError::DedicatedSlotsExhausted)
        );
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(d).unwrap();
        }
        // Metadata for 4 allocations per block: the fifth opens a second block.
        let cfg = PoolConfig {
            max_allocations_per_block: 4,
            ..config()
        };
        let mut p = pools_with::<A>(&dev, cfg, 4, 1);
        let live: Vec<_> = (0..5)
            .map(|_| p.allocate(&req(16, 1, U::empty())).unwrap())
            .collect();
        assert_eq!(p.type_stats(0).unwrap().blocks, 2);
        // SAFETY: no GPU.
        unsafe {
            for a in live {
                p.free(a).unwrap();
            }
        }
        // Storage sized for small blocks only: a large block cannot be made. (TLSF storage does
        // not grow with the block size, so there every block fits once the first does.)
        let len = A::storage_len(2 * MIB, 256, config().max_allocations_per_block).unwrap();
        let full = Pools::<A>::block_storage_len(&&dev, &config()).unwrap();
        if len == full {
            return;
        }
        assert!(len < full);
        let slots = std::vec![BlockSlot::new(A::storage(len))];
        let mut p: Pools<'_, A> =
            MemoryPools::new(&dev, config(), slots, std::vec![DedicatedSlot::new()]).unwrap();
        let small = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        assert!(matches!(
            p.allocate(&req(32 * MIB, 1, U::UPLOAD)),
            Err(PoolError::BlockSlotsExhausted)
        ));
        // SAFETY: no GPU.
        unsafe { p.free(small).unwrap() };
        p.trim();
        assert!(matches!(
            p.allocate(&req(32 * MIB, 1, U::UPLOAD)),
            Err(PoolError::BlockMetadata(_))
        ));
        assert_eq!(p.memory_objects(), 0);
    }

    fn map_failure_frees_the_object<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        dev.state.borrow_mut().fail_maps = true;
        assert_eq!(
            p.allocate(&req(16, 1, U::UPLOAD)),
            Err(PoolError::Device(crate::device::DeviceError::MapFailed))
        );
        assert_eq!(
            p.allocate(&req(16, 1, U::UPLOAD).with_dedicated()),
            Err(PoolError::Device(crate::device::DeviceError::MapFailed))
        );
        assert_eq!((dev.live_objects(), p.memory_objects()), (0, 0));
        dev.state.borrow_mut().fail_maps = false;
        let a = p.allocate(&req(16, 1, U::UPLOAD)).unwrap();
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }

    fn teardown_reports_leaks<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let a = p.allocate(&req(1000, 1, U::empty())).unwrap();
        let _b = p.allocate(&req(1000, 1, U::UPLOAD)).unwrap().into_raw();
        let _c = p
            .allocate(&req(10, 1, U::UPLOAD).with_dedicated())
            .unwrap()
            .into_raw();
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
        // SAFETY: no GPU.
        let report = unsafe { p.destroy() };
        assert!(!report.is_clean());
        assert_eq!(report.leaked_allocations, 2);
        assert_eq!(report.leaked_bytes, 1010);
        assert_eq!(report.leaks().collect::<Vec<_>>(), [(1, 2)]);
        assert_eq!(report.objects_freed, 3);
        assert_eq!(dev.live_objects(), 0);
    }

    fn drop_frees_only_empty_blocks<A: TestStorage>() {
        let dev = MockDevice::discrete();
        {
            let mut p = pools_with::<A>(&dev, config(), 4, 4);
            let a = p.allocate(&req(1000, 1, U::empty())).unwrap();
            let _leaked = p.allocate(&req(1000, 1, U::UPLOAD)).unwrap().into_raw();
            // SAFETY: no GPU.
            unsafe { p.free(a).unwrap() };
        }
        // The empty device-local block went; the one still holding an allocation stays.
        let s = dev.state.borrow();
        let live: Vec<u32> = s.objects.iter().flatten().map(|o| o.memory_type).collect();
        assert_eq!(live, [1]);
    }

    /// Sizes in bytes of the device's live memory objects, in allocation order.
    fn live_sizes(dev: &MockDevice) -> Vec<u64> {
        let state = dev.state.borrow();
        state.objects.iter().flatten().map(|o| o.size).collect()
    }

    /// Sizes in MiB of the device's live memory objects, in allocation order.
    fn live_mib(dev: &MockDevice) -> Vec<u64> {
        let state = dev.state.borrow();
        state
            .objects
            .iter()
            .flatten()
            .map(|o| o.size / MIB)
            .collect()
    }

    /// A request of exactly `maxMemoryAllocationSize` is served; one byte more is `TooLarge`.
    /// The stats of a type or heap past the last are `None`.
    fn limits_and_indices_are_exact<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.limits.max_memory_allocation_size = 64 * MIB;
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let at = p.allocate(&req(64 * MIB, 1, U::empty())).unwrap();
        assert_eq!(at.size(), 64 * MIB);
        assert_eq!(
            p.allocate(&req(64 * MIB + 1, 1, U::empty())),
            Err(PoolError::TooLarge {
                size: 64 * MIB + 1,
                max: 64 * MIB
            })
        );
        assert!(p.type_stats(2).is_some());
        assert_eq!(p.type_stats(3), None);
        assert!(p.heap_stats(1).is_some());
        assert_eq!(p.heap_stats(2), None);
        // SAFETY: no GPU.
        unsafe { p.free(at).unwrap() };
    }

    /// With a `maxMemoryAllocationSize` below the block granule no block can be made: requests
    /// up to the limit get dedicated objects (the mock device asserts that no memory object
    /// exceeds the limit), larger ones are `TooLarge`, and no block metadata is needed.
    fn objects_smaller_than_a_granule_are_all_dedicated<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.limits.max_memory_allocation_size = 100;
        assert_eq!(Pools::<A>::block_storage_len(&&dev, &config()), Ok(0));
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        assert_eq!(p.sizing(0), Some(BlockSizing::NO_BLOCKS));
        let a = p.allocate(&req(50, 1, U::empty())).unwrap();
        let b = p.allocate(&req(100, 16, U::empty())).unwrap();
        assert!(a.is_dedicated() && b.is_dedicated());
        assert_eq!(live_sizes(&dev), [50, 100]);
        assert_eq!(
            p.allocate(&req(101, 1, U::empty())),
            Err(PoolError::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(p.total_stats().blocks, 0);
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(b).unwrap();
        }
        assert!(live_sizes(&dev).is_empty());
    }

    /// A device that claims two heaps of 2^63 bytes: the first object of 2^63 bytes is made, a
    /// second one in the other heap would take what the pools hold to 2^64, past every byte
    /// counter, and is refused before the device is asked (so the statistics stay exact).
    fn memory_past_two_to_the_sixty_four_bytes_is_refused<A: TestStorage>() {
        use MemoryPropertyFlags as F;
        let half = 1 << 63;
        let mut dev = MockDevice::new(&[(F::DEVICE_LOCAL, 0), (F::DEVICE_LOCAL, 1)], &[half, half]);
        dev.limits.max_memory_allocation_size = half;
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let a = p
            .allocate(&req(half, 1, U::empty()).with_memory_type(0))
            .unwrap();
        assert!(a.is_dedicated());
        let calls = dev.allocations();
        assert_eq!(
            p.allocate(&req(half, 1, U::empty()).with_memory_type(1)),
            Err(PoolError::Device(DeviceError::OutOfDeviceMemory))
        );
        assert_eq!(dev.allocations(), calls);
        // Within 2^64 in all, the other heap still serves.
        let b = p
            .allocate(&req(half - 4096, 1, U::empty()).with_memory_type(1))
            .unwrap();
        assert_eq!(p.total_stats().dedicated_bytes, u64::MAX - 4095);
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(b).unwrap();
        }
        assert_eq!(p.total_stats().dedicated_bytes, 0);
    }

    /// An alignment of exactly the largest block is still served from a block.
    fn an_alignment_of_the_largest_block_is_served_from_a_block<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let largest = p.sizing(0).unwrap().largest;
        let a = p
            .allocate(&req(4096, largest, U::empty()).with_memory_type(0))
            .unwrap();
        assert!(!a.is_dedicated());
        assert_eq!(a.offset() % largest, 0);
        assert_eq!(p.type_stats(0).unwrap().blocks, 1);
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }

    /// Coherent memory is counted by the bytes asked; non-coherent memory by whole atoms, and a
    /// free gives back exactly what the allocation took.
    fn only_non_coherent_memory_takes_whole_atoms<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let coherent = p
            .allocate(&req(100, 1, U::empty()).with_memory_type(1))
            .unwrap();
        let cached = p
            .allocate(&req(100, 1, U::empty()).with_memory_type(2))
            .unwrap();
        assert_eq!(p.type_stats(1).unwrap().allocated_bytes, 100);
        assert_eq!(p.type_stats(2).unwrap().allocated_bytes, 256);
        // SAFETY: no GPU.
        unsafe {
            p.free(coherent).unwrap();
            p.free(cached).unwrap();
        }
        for t in [1, 2] {
            let s = p.type_stats(t).unwrap();
            assert_eq!((s.allocated_bytes, s.empty_blocks), (0, 1), "type {t}");
        }
        assert_eq!(p.total_stats().used_bytes(), 0);
    }

    /// A block that refused a request (fragmented) serves it again once a free joins the gaps.
    fn a_free_lifts_the_refusal_a_block_remembers<A: TestStorage>() {
        let dev = MockDevice::discrete();
        // One block slot: a request the block refuses has nowhere else to go.
        let mut p = pools_with::<A>(&dev, config(), 1, 1);
        let half = MIB / 2;
        let mut quarters: Vec<_> = (0..4)
            .map(|_| {
                p.allocate(&req(half, 1, U::empty()).with_memory_type(0))
                    .unwrap()
            })
            .collect();
        assert_eq!(live_mib(&dev), [2]);
        let mut offsets: Vec<u64> = quarters.iter().map(|a| a.offset()).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [0, half, 2 * half, 3 * half]);
        quarters.sort_by_key(|a| a.offset());
        let [q0, q1, q2, q3]: [DeviceAllocation<u32>; 4] = quarters.try_into().unwrap();
        // SAFETY: no GPU.
        unsafe {
            p.free(q0).unwrap();
            p.free(q2).unwrap();
        }
        let whole = req(MIB, 1, U::empty()).with_memory_type(0);
        assert_eq!(p.allocate(&whole), Err(PoolError::BlockSlotsExhausted));
        // SAFETY: no GPU.
        unsafe { p.free(q1).unwrap() };
        let a = p.allocate(&whole).unwrap();
        assert_eq!(a.offset(), 0);
        assert_eq!(live_mib(&dev), [2]);
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(q3).unwrap();
        }
    }

    /// When the device cannot allocate the block size the pools want, a halved size is tried.
    fn a_block_the_device_refuses_is_retried_at_half_the_size<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        dev.state.borrow_mut().fail_at = Some(0);
        let a = p
            .allocate(&req(4096, 1, U::empty()).with_memory_type(0))
            .unwrap();
        assert_eq!(dev.allocations(), 2);
        assert_eq!(live_mib(&dev), [1]);
        assert_eq!(p.type_stats(0).unwrap().block_bytes, MIB);
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }

    /// Buffers whose device address is taken share blocks of their own, allocated with
    /// device-address support; other resources' blocks go without it. An optimal-tiled
    /// request asking for an address gets an object of its own rather than a linear block.
    fn device_address_buffers_share_blocks_of_their_own<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 8, 4);
        let object =
            |a: &DeviceAllocation<u32>| dev.state.borrow().objects[a.memory() as usize].unwrap();
        let plain = p.allocate(&req(4096, 256, U::empty())).unwrap();
        let first = p.allocate(&req(4096, 256, U::DEVICE_ADDRESS)).unwrap();
        let second = p.allocate(&req(4096, 256, U::DEVICE_ADDRESS)).unwrap();
        assert!(!first.is_dedicated() && !second.is_dedicated());
        assert_eq!(first.memory(), second.memory(), "one block for both");
        assert_ne!(first.memory(), plain.memory(), "not the plain block");
        assert_eq!(second.offset(), 4096);
        assert!(object(&first).device_address);
        assert!(!object(&plain).device_address);
        let mut optimal = req(4096, 256, U::DEVICE_ADDRESS);
        optimal.kind = ResourceKind::Optimal;
        let optimal = p.allocate(&optimal).unwrap();
        assert!(optimal.is_dedicated() && object(&optimal).device_address);
        let s = p.total_stats();
        assert_eq!((s.blocks, s.dedicated_objects), (2, 1));
        // SAFETY: no GPU.
        unsafe {
            for a in [plain, first, second, optimal] {
                p.free(a).unwrap();
            }
        }
        // With every block given device-address support, they all share one.
        let config = PoolConfig {
            device_address_blocks: true,
            ..config()
        };
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config, 8, 4);
        let plain = p.allocate(&req(4096, 256, U::empty())).unwrap();
        let address = p.allocate(&req(4096, 256, U::DEVICE_ADDRESS)).unwrap();
        assert_eq!(plain.memory(), address.memory());
        assert!(
            dev.state.borrow().objects[plain.memory() as usize]
                .unwrap()
                .device_address
        );
        // SAFETY: no GPU.
        unsafe {
            p.free(plain).unwrap();
            p.free(address).unwrap();
        }
    }

    /// With `device_address_blocks`, dedicated objects get device addresses too.
    fn device_address_blocks_covers_dedicated_objects<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let config = PoolConfig {
            device_address_blocks: true,
            ..config()
        };
        let mut p = pools_with::<A>(&dev, config, 4, 4);
        let d = p
            .allocate(&req(4096, 1, U::empty()).with_dedicated())
            .unwrap();
        assert!(d.is_dedicated());
        let object = dev.state.borrow().objects[d.memory() as usize].unwrap();
        assert!(object.device_address);
        // SAFETY: no GPU.
        unsafe { p.free(d).unwrap() };
    }

    /// Within budget, the largest empty block goes first, so the fewest go.
    fn budget_room_releases_the_largest_empty_block_first<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.budgets = Some(std::vec![10 * MIB, 1 << 30]);
        let config = PoolConfig {
            within_budget: true,
            empty_blocks_kept: 2,
            ..config()
        };
        let mut p = pools_with::<A>(&dev, config, 4, 4);
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        let b = p.allocate(&req(2 * MIB, 1, U::empty())).unwrap();
        assert_eq!(live_mib(&dev), [2, 4]);
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(b).unwrap();
        }
        assert_eq!(p.type_stats(0).unwrap().empty_blocks, 2);
        // 6 MiB used + 7 MiB is over 10 MiB; releasing the 4 MiB block is enough.
        let d = p
            .allocate(
                &req(7 * MIB, 1, U::empty())
                    .with_memory_type(0)
                    .with_dedicated(),
            )
            .unwrap();
        assert_eq!(live_mib(&dev), [2, 7]);
        let s = p.type_stats(0).unwrap();
        assert_eq!((s.blocks, s.block_bytes), (1, 2 * MIB));
        // SAFETY: no GPU.
        unsafe { p.free(d).unwrap() };
    }

    /// A trimmed empty block no longer counts as kept: the next block to empty stays.
    fn a_trimmed_block_leaves_the_empty_count<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        let b = p.allocate(&req(2 * MIB, 1, U::empty())).unwrap();
        assert_eq!(live_mib(&dev), [2, 4]);
        // SAFETY: no GPU.
        unsafe { p.free(b).unwrap() };
        assert_eq!(p.trim(), 1);
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
        assert_eq!(live_mib(&dev), [2]);
        assert_eq!(p.type_stats(0).unwrap().empty_blocks, 1);
    }

    /// After the largest block of a set is released, the next block grows from the largest
    /// still live, not from the released one.
    fn growth_restarts_from_the_largest_live_block<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        let b = p.allocate(&req(2 * MIB, 1, U::empty())).unwrap();
        assert_eq!(live_mib(&dev), [2, 4]);
        // SAFETY: no GPU.
        unsafe { p.free(b).unwrap() };
        assert_eq!(p.trim(), 1);
        let c = p.allocate(&req(2 * MIB, 1, U::empty())).unwrap();
        assert_eq!(live_mib(&dev), [2, 4]);
        // SAFETY: no GPU.
        unsafe {
            p.free(a).unwrap();
            p.free(c).unwrap();
        }
    }

    /// A handle whose memory object was changed is foreign to flush and free, one whose memory
    /// type was changed foreign to free, and the allocation they came from stays live.
    fn a_handle_naming_another_object_is_foreign<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let a = p
            .allocate(&req(1000, 1, U::empty()).with_memory_type(2))
            .unwrap();
        let raw = *a.raw();
        let before = p.total_stats();
        let mut other_memory = raw;
        other_memory.memory += 1;
        let mut other_type = raw;
        other_type.memory_type = 1;
        for bad in [other_memory, other_type] {
            let bad = DeviceAllocation::from_raw(bad);
            assert_eq!(p.flush(&bad, 0, 1000), Err(FlushError::ForeignAllocation));
            assert_eq!(
                p.invalidate(&bad, 0, 1000),
                Err(FlushError::ForeignAllocation)
            );
            // SAFETY: no GPU; refused.
            assert_eq!(unsafe { p.free(bad) }, Err(FreeError::ForeignAllocation));
        }
        assert_eq!(p.total_stats(), before);
        assert!(dev.state.borrow().flushed.is_empty() && dev.state.borrow().invalidated.is_empty());
        p.flush(&a, 0, 1000).unwrap();
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }

    /// A handle into a block that was released and recreated in the same slot is stale to
    /// flush (not foreign, as a handle from other pools would be).
    fn flush_into_a_recreated_block_is_stale<A: TestStorage>() {
        let dev = MockDevice::discrete();
        let mut p = pools_with::<A>(&dev, config(), 1, 1);
        let a = p
            .allocate(&req(1000, 1, U::empty()).with_memory_type(2))
            .unwrap();
        let raw = *a.raw();
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
        assert_eq!(p.trim(), 1);
        let b = p
            .allocate(&req(1000, 1, U::empty()).with_memory_type(2))
            .unwrap();
        assert_eq!(b.raw().slot, raw.slot);
        let old = DeviceAllocation::from_raw(raw);
        assert_eq!(p.flush(&old, 0, 1000), Err(FlushError::StaleAllocation));
        assert_eq!(
            p.invalidate(&old, 0, 1000),
            Err(FlushError::StaleAllocation)
        );
        let _ = old.into_raw();
        // SAFETY: no GPU.
        unsafe { p.free(b).unwrap() };
    }

    /// A type that failed is not tried again in the fallback that follows: one device call
    /// per type.
    fn a_failed_type_is_not_asked_twice<A: TestStorage>() {
        let dev = MockDevice::new(
            &[(F::DEVICE_LOCAL, 0), (F::DEVICE_LOCAL, 1)],
            &[2 * MIB, 64 * MIB],
        );
        let mut p = pools_with::<A>(&dev, config(), 4, 4);
        let first = p
            .allocate(&req(2 * MIB, 1, U::empty()).with_dedicated())
            .unwrap();
        assert_eq!((first.memory_type(), dev.allocations()), (0, 1));
        let second = p
            .allocate(&req(MIB, 1, U::empty()).with_dedicated())
            .unwrap();
        assert_eq!(second.memory_type(), 1);
        assert_eq!(
            dev.allocations(),
            3,
            "one failed call on type 0, one on type 1"
        );
        // SAFETY: no GPU.
        unsafe {
            p.free(first).unwrap();
            p.free(second).unwrap();
        }
    }

    /// The budget is refreshed from the device once `budget_refresh_interval` objects were
    /// created since the last refresh, before the next creation.
    fn the_budget_is_refreshed_after_the_interval<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.budgets = Some(std::vec![1 << 30, 1 << 30]);
        let config = PoolConfig {
            budget_refresh_interval: 2,
            ..config()
        };
        let mut p = pools_with::<A>(&dev, config, 4, 8);
        // Another process takes 100 MiB of heap 0: seen only at the next refresh.
        dev.state.borrow_mut().heap_used[0] += 100 * MIB;
        let mut live = Vec::new();
        let mut usage = Vec::new();
        for _ in 0..3 {
            live.push(
                p.allocate(&req(MIB, 1, U::empty()).with_dedicated())
                    .unwrap(),
            );
            usage.push(p.heap_stats(0).unwrap().usage / MIB);
        }
        assert_eq!(usage, [1, 2, 103]);
        dev.state.borrow_mut().heap_used[0] -= 100 * MIB;
        free_all(&mut p, live);
    }

    /// Within budget, only the request's heap's empty blocks count and go: an empty block of
    /// another heap neither makes room nor is released.
    fn budget_room_comes_from_the_requests_heap_only<A: TestStorage>() {
        let mut dev = MockDevice::discrete();
        dev.budgets = Some(std::vec![5 * MIB, 1 << 30]);
        let config = PoolConfig {
            within_budget: true,
            ..config()
        };
        let mut p = pools_with::<A>(&dev, config, 4, 4);
        let a = p.allocate(&req(MIB, 1, U::empty())).unwrap();
        assert_eq!(a.memory_type(), 0);
        let b = p
            .allocate(&req(MIB, 1, U::empty()).with_memory_type(1))
            .unwrap();
        // SAFETY: no GPU.
        unsafe { p.free(b).unwrap() };
        assert_eq!(p.type_stats(1).unwrap().empty_blocks, 1);
        // 2 MiB used in heap 0 + 4 MiB is over 5 MiB; heap 1's empty block does not help.
        assert_eq!(
            p.allocate(
                &req(4 * MIB, 1, U::empty())
                    .with_memory_type(0)
                    .with_dedicated()
            ),
            Err(PoolError::OverBudget { heap: 0 })
        );
        assert_eq!(p.type_stats(1).unwrap().blocks, 1);
        assert_eq!(live_mib(&dev), [2, 2]);
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
}
