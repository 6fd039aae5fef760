//! Memory-type pools: device memory for resources, by usage, within every limit the device
//! reports.
//!
//! [`MemoryPools`] keeps one pool per memory type. A request ([`AllocationRequest`]) is ranked
//! against the memory types its `memoryTypeBits` allows ([`crate::selection`]), then served by
//! the first type that can: from a block (a large memory object cut up by a [`BlockAllocator`],
//! TLSF by default), or from a memory object of its own when it is large, when the driver
//! prefers or requires it, or when the caller asks. When a heap is out of memory (or, in
//! within-budget mode, out of budget) the next type is tried, unless the caller named the type.
//!
//! - Blocks start small and double up to a preferred size derived from the heap ([`sizing`]).
//! - Empty blocks are kept up to [`PoolConfig::empty_blocks_kept`] per pool, so freeing and
//!   allocating again each frame does not call the device.
//! - `maxMemoryAllocationCount` caps blocks and dedicated objects together; at the cap an empty
//!   block is released to make room, else the request fails with a typed error.
//!   `maxMemoryAllocationSize` caps every object.
//! - `bufferImageGranularity`: when it is larger than the sub-allocators' granule, linear and
//!   optimal resources get separate blocks (each pool is two block sets), so they never share a
//!   page. When it is not larger, every sub-allocation already covers whole granules, and so
//!   whole pages, and one set serves both.
//! - Host-visible blocks are mapped once at creation; allocations carry their host address.
//!   Flushes and invalidates are rounded to `nonCoherentAtomSize` and skipped for coherent memory
//!   ([`mapping`]).
//! - Defragmentation passes ([`defrag`]) empty the sparsest blocks into the fullest and release
//!   them; the caller copies and rebinds what moves, as the pools cannot.
//!
//! All metadata lives in the slot tables given at construction ([`BlockSlot`], [`DedicatedSlot`]).
//! Device calls are the only `unsafe` here; each names the contract it keeps.

pub mod allocation;
pub mod block_allocator;
pub mod budget;
pub mod config;
pub mod defrag;
pub mod error;
pub mod map;
pub mod mapping;
pub mod sizing;
pub mod stats;
pub mod storage;
mod teardown;

#[cfg(test)]
mod tests;

use core::marker::PhantomData;
use core::mem;

use crate::device::{
    DedicatedHint, DedicatedTo, DeviceError, DeviceLimits, HeapBudget, MAX_MEMORY_HEAPS,
    MAX_MEMORY_TYPES, MemoryAllocateInfo, MemoryDevice, MemoryProperties, MemoryPropertyFlags,
    MemoryType,
};
use crate::selection::MemoryTypeRanking;
use crate::suballocator::{Allocation, AllocatorId, ConfigError, FreeError, RawAllocation};
use crate::usage::{MemoryUsage, ResourceKind};

pub use allocation::{AllocationRequest, DeviceAllocation, Placement, RawDeviceAllocation};
pub use block_allocator::BlockAllocator;
pub use budget::HeapBudgets;
pub use config::PoolConfig;
pub use defrag::{
    DefragmentationError, DefragmentationLimits, DefragmentationPlan, DefragmentationReport,
    Relocation,
};
pub use error::{FlushError, PoolConfigError, PoolError};
pub use map::{MapBlock, MapDedicated, MapEntry};
pub use mapping::HostPtr;
pub use sizing::BlockSizing;
pub use stats::{HeapStats, PoolStats, TeardownReport};
pub use storage::{BlockSlot, DedicatedSlot};

use storage::{BlockState, DedicatedObject, LiveBlock, NO_SLOT};

/// Block sets per memory type: one per resource-kind group (linear, optimal), and one for
/// buffers whose device address is taken, in blocks allocated with device-address support
/// (unless [`PoolConfig::device_address_blocks`] gives every block that support).
const GROUPS: usize = 3;
/// The group of buffers with device addresses in blocks of their own.
const DEVICE_ADDRESS_GROUP: usize = 2;
/// Usage bits that change the ranking (all but `DEVICE_ADDRESS`).
const RANKED_USAGE_BITS: u32 = 0x1F;

/// What the pools keep of a block's sub-allocation, read field by field out of the
/// sub-allocator's result (its size is the caller's, its allocator the block's): the result is
/// written through memory, and copying it whole stalls on store forwarding.
#[derive(Clone, Copy)]
struct SubRange {
    offset: u64,
    slot: u32,
    tag: u32,
    epoch: u32,
}

/// A range just sub-allocated from a block, with what its handle needs of the block, read
/// while the block's first line is at hand: making the handle indexes no table again.
#[derive(Clone, Copy)]
struct BlockRange<M> {
    /// The block's slot and its generation.
    slot: u32,
    generation: u32,
    memory: M,
    /// The block's host address (not the range's).
    mapped: Option<HostPtr>,
    memory_type: u8,
    sub: SubRange,
}

/// What the allocate and free paths read on every call, copied together out of the limits, the
/// configuration and the id: a busy frame's other traffic evicts the pools' lines between calls,
/// and each table read separately is another cache miss.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct HotPath {
    /// `maxMemoryAllocationSize`.
    max_allocation_size: u64,
    /// `nonCoherentAtomSize`.
    atom: u64,
    id: AllocatorId,
    /// Whether linear and optimal resources need separate blocks.
    separate_kinds: bool,
    /// [`PoolConfig::device_address_blocks`].
    device_address_blocks: bool,
    /// The route of the last request, a copy of its usage's entry in `routes`: a run of
    /// requests of one usage reads no other line to find it.
    last: Route,
}

/// How a request is placed in one memory type: the figures `place` needs, in one record.
#[derive(Clone, Copy, Debug)]
struct TypeFit {
    /// The largest request (as reserved) a block takes: the smaller of the heap's dedicated
    /// threshold (above it, a dedicated object) and its largest block.
    block_max_size: u64,
    /// The largest block the heap's pools make, and so the strictest alignment a block takes.
    largest_block: u64,
    /// The memory type.
    memory_type: u8,
    /// Allocations own whole `nonCoherentAtomSize` atoms (non-coherent host-visible memory).
    whole_atoms: bool,
}

/// The memory type a usage's ranking puts first for one `memoryTypeBits`, kept per usage so
/// that a request like the last one of its usage skips the ranking.
#[derive(Clone, Copy, Debug)]
#[repr(align(32))]
struct Route {
    /// [`Route::key`] of the usage and `memoryTypeBits` it serves; 0 (which no key is) until a
    /// request of the usage was ranked. One compare finds whether a request may take it.
    key: u64,
    fit: TypeFit,
}

impl Route {
    const NONE: Self = Self {
        key: 0,
        fit: TypeFit {
            block_max_size: 0,
            largest_block: 0,
            memory_type: 0,
            whole_atoms: false,
        },
    };

    /// The key of requests with `memory_type_bits` and ranked usage bits `ranked`: the bits in
    /// the low word, the usage above them with a bit set so that no key is 0.
    #[inline(always)]
    fn key(memory_type_bits: u32, ranked: usize) -> u64 {
        u64::from(memory_type_bits) | (ranked as u64 | 1 << 8) << 32
    }
}

/// Whether an allocation that failed with `e` in one memory type may try the next one: the
/// heap is full or over budget, and the next type may draw from another heap.
fn falls_back(e: &PoolError) -> bool {
    matches!(
        e,
        PoolError::OverBudget { .. }
            | PoolError::Device(DeviceError::OutOfDeviceMemory | DeviceError::OutOfHostMemory)
    )
}

/// The sub-allocator's handle of a block range: the pools' handle `raw` (placed in `block` by
/// sub-allocator slot `sub_slot`, `tag` and `epoch`) with its size as it was asked of the
/// sub-allocator (rounded up to whole `atom`s in non-coherent memory), which checks it against
/// its record on `free` and `check_live`.
#[inline(always)]
fn sub_allocation_of<M, A: BlockAllocator>(
    block: &LiveBlock<M, A>,
    raw: &RawDeviceAllocation<M>,
    sub_slot: u32,
    tag: u32,
    epoch: u32,
    atom: u64,
) -> Result<RawAllocation, FreeError> {
    let size = if block.whole_atoms {
        raw.size
            .checked_next_multiple_of(atom)
            .ok_or(FreeError::ForeignAllocation)?
    } else {
        raw.size
    };
    Ok(RawAllocation {
        offset: raw.offset,
        size,
        allocator: block.allocator.id(),
        epoch,
        slot: sub_slot,
        tag,
    })
}

/// The blocks of one memory type for one resource-kind group.
#[derive(Clone, Copy, Debug)]
struct BlockSet {
    /// First block slot of the set's list.
    head: u32,
    /// The block the last allocation came from; tried first.
    hint: u32,
    /// Blocks with no live allocation.
    empty: u32,
    /// Bytes of the largest block (the next one doubles it).
    largest: u64,
}

impl BlockSet {
    const EMPTY: Self = Self {
        head: NO_SLOT,
        hint: NO_SLOT,
        empty: 0,
        largest: 0,
    };
}

/// Device memory pools over a [`MemoryDevice`] `D`, with blocks sub-allocated by `A`, block slots
/// in `BS` and dedicated-object slots in `DS` (slices, arrays or vectors).
// `repr(C)`: the fields every call reads come first, side by side.
#[repr(C)]
pub struct MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    hot: HotPath,
    blocks: BS,
    sets: [BlockSet; MAX_MEMORY_TYPES * GROUPS],
    /// The route of the last request of each usage (indexed by the ranked usage bits).
    routes: [Route; RANKED_USAGE_BITS as usize + 1],
    device: D,
    properties: MemoryProperties,
    /// The memory types, copied out of `properties` for the hot path.
    types: [MemoryType; MAX_MEMORY_TYPES],
    type_count: usize,
    limits: DeviceLimits,
    config: PoolConfig,
    id: AllocatorId,
    /// Block sizes per heap.
    sizing: [BlockSizing; MAX_MEMORY_HEAPS],
    /// Ranking of every memory type per usage (indexed by the ranked usage bits), best first;
    /// filtered by `memoryTypeBits` per request.
    rank_order: [[u8; MAX_MEMORY_TYPES]; RANKED_USAGE_BITS as usize + 1],
    /// How many types each ranking has (0: no type suits the usage).
    rank_len: [u8; RANKED_USAGE_BITS as usize + 1],
    /// Per-type figures that change only when objects come and go (blocks, block bytes,
    /// dedicated objects); the rest is summed from the blocks on demand.
    type_stats: [PoolStats; MAX_MEMORY_TYPES],
    budgets: HeapBudgets,
    /// Memory objects held (blocks and dedicated).
    objects: u32,
    free_block: u32,
    dedicated: DS,
    free_dedicated: u32,
    /// The running defragmentation pass, if any.
    defrag: defrag::DefragmentationPass,
    _allocator: PhantomData<A>,
}

impl<D, A, BS, DS> MemoryPools<D, A, BS, DS>
where
    D: MemoryDevice,
    A: BlockAllocator,
    BS: AsRef<[BlockSlot<D::Memory, A>]> + AsMut<[BlockSlot<D::Memory, A>]>,
    DS: AsRef<[DedicatedSlot<D::Memory>]> + AsMut<[DedicatedSlot<D::Memory>]>,
{
    /// Pools over `device`, keeping blocks in `blocks` and dedicated objects in `dedicated`.
    /// Reads the device's budget once.
    ///
    /// Each block slot's storage must hold [`MemoryPools::block_storage_len`] elements for every
    /// block size to be usable; a slot with less serves only the blocks it fits.
    ///
    /// Every slot must be vacant ([`BlockSlot::new`], [`DedicatedSlot::new`], or left so by
    /// earlier pools that were destroyed, or dropped with every allocation freed). A slot that
    /// still holds earlier pools' block or dedicated object (they were dropped with live
    /// allocations, or forgotten) is refused with [`PoolConfigError::BlockSlotInUse`] or
    /// [`PoolConfigError::DedicatedSlotInUse`], and the tables are left as they were: these
    /// pools could not tell that object from their own, and would count it in their statistics
    /// and free it as theirs while the GPU may still use it.
    ///
    /// Errors: [`PoolConfigError::Description`], [`PoolConfigError::InvalidParameter`],
    /// [`PoolConfigError::TooManySlots`], [`PoolConfigError::BlockSlotInUse`],
    /// [`PoolConfigError::DedicatedSlotInUse`].
    pub fn new(
        device: D,
        config: PoolConfig,
        mut blocks: BS,
        mut dedicated: DS,
    ) -> Result<Self, PoolConfigError> {
        let limits = device.limits();
        limits.validate().map_err(PoolConfigError::Description)?;
        if !config.is_valid() {
            return Err(PoolConfigError::InvalidParameter);
        }
        if blocks.as_ref().len() >= NO_SLOT as usize || dedicated.as_ref().len() >= NO_SLOT as usize
        {
            return Err(PoolConfigError::TooManySlots);
        }
        // Checked before anything is written: a refused table is left as it was. A poisoned
        // slot (its storage lost by earlier pools) holds nothing and stays off the free list.
        if let Some(slot) = blocks.as_ref().iter().position(BlockSlot::is_live) {
            return Err(PoolConfigError::BlockSlotInUse { slot: slot as u32 });
        }
        if let Some(slot) = dedicated.as_ref().iter().position(|s| s.object.is_some()) {
            return Err(PoolConfigError::DedicatedSlotInUse { slot: slot as u32 });
        }
        let properties = *device.memory_properties();
        let sizing = Self::sizing_of(&properties, &limits, &config);
        let mut rank_order = [[0; MAX_MEMORY_TYPES]; RANKED_USAGE_BITS as usize + 1];
        let mut rank_len = [0; RANKED_USAGE_BITS as usize + 1];
        for bits in 0..rank_len.len() {
            let usage = MemoryUsage::from_bits_retain(bits as u32);
            if let Ok(ranking) = MemoryTypeRanking::rank(&properties, u32::MAX, usage) {
                let order = ranking.as_slice();
                rank_order[bits][..order.len()].copy_from_slice(order);
                rank_len[bits] = order.len() as u8;
            }
        }
        // Link the vacant slots into the free lists, last first so slot 0 is handed out first.
        // No slot is live (checked above); a poisoned one stays off the list.
        let mut free_block = NO_SLOT;
        for (i, slot) in blocks.as_mut().iter_mut().enumerate().rev() {
            if matches!(slot.state, BlockState::Vacant(_)) {
                slot.link = free_block;
                free_block = i as u32;
            }
        }
        let mut free_dedicated = NO_SLOT;
        for (i, slot) in dedicated.as_mut().iter_mut().enumerate().rev() {
            if slot.object.is_none() {
                slot.link = free_dedicated;
                free_dedicated = i as u32;
            }
        }
        let mut types = [MemoryType {
            properties: MemoryPropertyFlags::empty(),
            heap_index: 0,
        }; MAX_MEMORY_TYPES];
        types[..properties.types().len()].copy_from_slice(properties.types());
        let id = AllocatorId::next();
        let mut pools = Self {
            hot: HotPath {
                max_allocation_size: limits.max_memory_allocation_size,
                atom: limits.non_coherent_atom_size,
                id,
                separate_kinds: limits.buffer_image_granularity > config.block_granule,
                device_address_blocks: config.device_address_blocks,
                last: Route::NONE,
            },
            routes: [Route::NONE; RANKED_USAGE_BITS as usize + 1],
            budgets: HeapBudgets::new(&properties),
            device,
            types,
            type_count: properties.types().len(),
            properties,
            limits,
            config,
            id,
            sizing,
            rank_order,
            rank_len,
            sets: [BlockSet::EMPTY; MAX_MEMORY_TYPES * GROUPS],
            type_stats: [PoolStats::default(); MAX_MEMORY_TYPES],
            objects: 0,
            blocks,
            free_block,
            dedicated,
            free_dedicated,
            defrag: defrag::DefragmentationPass::default(),
            _allocator: PhantomData,
        };
        pools.refresh_budget();
        Ok(pools)
    }

    fn sizing_of(
        properties: &MemoryProperties,
        limits: &DeviceLimits,
        config: &PoolConfig,
    ) -> [BlockSizing; MAX_MEMORY_HEAPS] {
        let mut sizing = [BlockSizing::NO_BLOCKS; MAX_MEMORY_HEAPS];
        for (s, heap) in sizing.iter_mut().zip(properties.heaps()) {
            *s = BlockSizing::new(
                heap.size,
                config.first_block_size,
                config.preferred_block_size,
                config.dedicated_threshold,
                limits.max_memory_allocation_size,
                config.block_granule,
            );
        }
        sizing
    }

    /// Metadata elements each block slot's storage needs so that every block the pools may make
    /// on `device` with `config` fits in it.
    pub fn block_storage_len(device: &D, config: &PoolConfig) -> Result<usize, ConfigError> {
        let properties = device.memory_properties();
        let sizing = Self::sizing_of(properties, &device.limits(), config);
        let mut len = 0;
        // A heap without blocks (see `BlockSizing::NO_BLOCKS`) needs no metadata.
        for s in sizing[..properties.heaps().len()]
            .iter()
            .filter(|s| s.largest > 0)
        {
            let n = A::storage_len(
                s.largest,
                config.block_granule,
                config.max_allocations_per_block,
            )?;
            len = len.max(n);
        }
        Ok(len)
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The block sizes of heap `heap`.
    pub fn sizing(&self, heap: u32) -> Option<BlockSizing> {
        self.sizing[..self.properties.heaps().len()]
            .get(heap as usize)
            .copied()
    }

    /// Allocates memory for a resource. The memory is not dedicated to a resource by name (use
    /// [`MemoryPools::allocate_dedicated_to`] for drivers that require it).
    ///
    /// Errors: [`PoolError::ZeroSize`], [`PoolError::AlignmentNotPowerOfTwo`],
    /// [`PoolError::NoCompatibleType`], [`PoolError::TypeNotAllowed`],
    /// [`PoolError::DedicatedResourceRequired`], [`PoolError::TooLarge`],
    /// [`PoolError::OverBudget`], [`PoolError::ObjectCountExhausted`],
    /// [`PoolError::BlockSlotsExhausted`], [`PoolError::DedicatedSlotsExhausted`],
    /// [`PoolError::BlockMetadata`], [`PoolError::Device`].
    pub fn allocate(
        &mut self,
        request: &AllocationRequest,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        self.allocate_inner(request, None)
    }

    /// Allocates a memory object dedicated to `resource` (`VkMemoryDedicatedAllocateInfo`), for
    /// resources whose driver requires or prefers it.
    ///
    /// # Safety
    /// - `resource` was made by this pools' device, is alive, and is not bound to memory yet (the
    ///   contract of [`MemoryDevice::allocate_memory`]).
    pub unsafe fn allocate_dedicated_to(
        &mut self,
        request: &AllocationRequest,
        resource: DedicatedTo<D::Buffer, D::Image>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        self.allocate_inner(request, Some(resource))
    }

    #[inline(always)]
    fn allocate_inner(
        &mut self,
        request: &AllocationRequest,
        dedicated_to: Option<DedicatedTo<D::Buffer, D::Image>>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        let req = &request.requirements;
        // The common case, in a straight line that builds the handle in place: a ranked request
        // like the last one of its usage, for a range of the block the set's last allocation
        // came from. It checks only what it relies on; anything else (a bad request, a strict
        // type, a dedicated object, another block, a new one) takes the checked path, which
        // validates and decides again.
        if dedicated_to.is_none()
            && request.memory_type.is_none()
            && req.alignment.is_power_of_two()
        {
            let ranked = (request.usage.bits() & RANKED_USAGE_BITS) as usize;
            let key = Route::key(req.memory_type_bits, ranked);
            if self.hot.last.key == key || self.load_route(ranked, key) {
                let fit = self.hot.last.fit;
                // `block_fit` takes only sizes in `1..=fit.block_max_size`, and that is at most
                // `maxMemoryAllocationSize`: no zero or oversized request gets past it.
                if let Ok(Some((set, size, align))) =
                    self.block_fit(u32::from(fit.memory_type), fit, request, false)
                {
                    let hint = self.sets[set].hint;
                    if hint != NO_SLOT
                        && let Some(range) = self.try_block(hint, size, align)
                    {
                        return Ok(self.block_handle(range, req.size));
                    }
                }
            }
        }
        self.allocate_checked(request, dedicated_to)
    }

    /// Makes the route of usage `ranked` the last one when its key is `key`; returns whether
    /// it was.
    #[inline(always)]
    fn load_route(&mut self, ranked: usize, key: u64) -> bool {
        let route = self.routes[ranked];
        if route.key == key {
            self.hot.last = route;
            true
        } else {
            false
        }
    }

    /// Every check on a request, then its placement: in the strict type, in its usage's route
    /// type, or by the ranking.
    #[inline(never)]
    fn allocate_checked(
        &mut self,
        request: &AllocationRequest,
        dedicated_to: Option<DedicatedTo<D::Buffer, D::Image>>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        let req = &request.requirements;
        if req.size == 0 {
            return Err(PoolError::ZeroSize);
        }
        if !req.alignment.is_power_of_two() {
            return Err(PoolError::AlignmentNotPowerOfTwo);
        }
        if dedicated_to.is_none() && req.dedicated == DedicatedHint::Required {
            return Err(PoolError::DedicatedResourceRequired);
        }
        let max = self.hot.max_allocation_size;
        if req.size > max {
            return Err(PoolError::TooLarge {
                size: req.size,
                max,
            });
        }
        if let Some(index) = request.memory_type {
            return self.allocate_strict(index, request, dedicated_to);
        }
        let ranked = (request.usage.bits() & RANKED_USAGE_BITS) as usize;
        let key = Route::key(req.memory_type_bits, ranked);
        if self.hot.last.key != key && !self.load_route(ranked, key) {
            return self.allocate_ranked(request, dedicated_to, None);
        }
        // The route in `hot.last` is the request's: its type first, the ranking when that
        // type's heap is full or over budget.
        let fit = self.hot.last.fit;
        let memory_type = u32::from(fit.memory_type);
        match self.place(memory_type, fit, request, dedicated_to) {
            Ok(a) => Ok(a),
            Err(e) if falls_back(&e) => {
                self.allocate_ranked(request, dedicated_to, Some((memory_type, e)))
            }
            Err(e) => Err(e),
        }
    }

    /// Allocates in exactly memory type `index`.
    #[inline(never)]
    fn allocate_strict(
        &mut self,
        index: u32,
        request: &AllocationRequest,
        dedicated_to: Option<DedicatedTo<D::Buffer, D::Image>>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        let bits = request.requirements.memory_type_bits;
        MemoryTypeRanking::strict(&self.properties, bits, index)?;
        self.place(index, self.type_fit(index), request, dedicated_to)
    }

    /// Tries the memory types the request's usage ranks, best first, and remembers the first
    /// one as the usage's route. `tried`: the route's type, already tried, and why it failed.
    #[inline(never)]
    fn allocate_ranked(
        &mut self,
        request: &AllocationRequest,
        dedicated_to: Option<DedicatedTo<D::Buffer, D::Image>>,
        tried: Option<(u32, PoolError)>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        let bits = request.requirements.memory_type_bits;
        let ranked = (request.usage.bits() & RANKED_USAGE_BITS) as usize;
        let mut last = tried.map_or(PoolError::NoCompatibleType, |(_, e)| e);
        let mut first = true;
        for i in 0..usize::from(self.rank_len[ranked]) {
            let memory_type = u32::from(self.rank_order[ranked][i]);
            if bits & (1 << memory_type) == 0 {
                continue;
            }
            let fit = self.type_fit(memory_type);
            if first {
                first = false;
                let route = Route {
                    key: Route::key(bits, ranked),
                    fit,
                };
                self.routes[ranked] = route;
                self.hot.last = route;
            }
            if tried.is_some_and(|(t, _)| t == memory_type) {
                continue;
            }
            match self.place(memory_type, fit, request, dedicated_to) {
                Ok(a) => return Ok(a),
                Err(e) if falls_back(&e) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// How requests are placed in `memory_type`.
    fn type_fit(&self, memory_type: u32) -> TypeFit {
        let ty = self.types[memory_type as usize];
        let sizing = &self.sizing[ty.heap_index as usize];
        TypeFit {
            // Never above `maxMemoryAllocationSize`: the allocate fast path relies on it.
            block_max_size: sizing
                .dedicated_threshold
                .min(sizing.largest)
                .min(self.limits.max_memory_allocation_size),
            largest_block: sizing.largest,
            memory_type: memory_type as u8,
            whole_atoms: Self::whole_atoms(ty.properties),
        }
    }

    /// Places a request in one memory type, in a block or in a dedicated object, and makes its
    /// handle.
    #[inline(always)]
    fn place(
        &mut self,
        memory_type: u32,
        fit: TypeFit,
        request: &AllocationRequest,
        dedicated_to: Option<DedicatedTo<D::Buffer, D::Image>>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        match self.block_fit(memory_type, fit, request, dedicated_to.is_some())? {
            Some((set, size, align)) => {
                let range = self.allocate_from_blocks(memory_type, set, size, align)?;
                Ok(self.block_handle(range, request.requirements.size))
            }
            None => self.allocate_dedicated(memory_type, request, dedicated_to),
        }
    }

    /// Where a request goes in `memory_type`: `Some((set, size, align))` for a range of a
    /// block of `set`, taking `size` bytes at `align`; `None` for a dedicated object.
    /// `named_resource`: the caller named the resource the memory is dedicated to.
    #[inline(always)]
    fn block_fit(
        &self,
        memory_type: u32,
        fit: TypeFit,
        request: &AllocationRequest,
        named_resource: bool,
    ) -> Result<Option<(usize, u64, u64)>, PoolError> {
        let req = &request.requirements;
        let (size, align) = self.reserved_size(fit.whole_atoms, req.size, req.alignment)?;
        // Buffers whose address is taken go to blocks with device-address support (only
        // buffers have addresses: an optimal-tiled resource asking for one is placed as before,
        // in memory of its own, rather than in a block of linear ones).
        let device_address_group =
            request.usage.contains(MemoryUsage::DEVICE_ADDRESS) && !self.hot.device_address_blocks;
        let dedicated = named_resource
            || request.dedicated
            || req.dedicated != DedicatedHint::None
            || (device_address_group && request.kind != ResourceKind::Linear);
        // Nonzero and within the dedicated threshold (one compare), and
        // `BlockSizing::needed(size, align) <= largest` without the rounding: the largest block
        // is a power of two, so the size rounded up to one fits it exactly when the size does.
        if !dedicated && size.wrapping_sub(1) < fit.block_max_size && align <= fit.largest_block {
            let group = if device_address_group {
                DEVICE_ADDRESS_GROUP
            } else if self.hot.separate_kinds {
                request.kind.index()
            } else {
                0
            };
            return Ok(Some((memory_type as usize * GROUPS + group, size, align)));
        }
        Ok(None)
    }

    /// The handle of a range just sub-allocated from a block; `requested`: the bytes asked for.
    #[inline(always)]
    fn block_handle(
        &self,
        range: BlockRange<D::Memory>,
        requested: u64,
    ) -> DeviceAllocation<D::Memory> {
        let sub = range.sub;
        DeviceAllocation::from_parts(RawDeviceAllocation {
            memory: range.memory,
            offset: sub.offset,
            size: requested,
            mapped: range.mapped.and_then(|base| base.offset(sub.offset)),
            pools: self.hot.id,
            memory_type: u32::from(range.memory_type),
            slot: range.slot,
            generation: range.generation,
            placement: Placement::Block {
                slot: sub.slot,
                tag: sub.tag,
                epoch: sub.epoch,
            },
        })
    }

    /// The size and alignment a request takes in a block: whole atoms (`whole_atoms`) in
    /// non-coherent host-visible memory, so flushing or invalidating one allocation
    /// never touches another's bytes.
    #[inline(always)]
    fn reserved_size(
        &self,
        whole_atoms: bool,
        size: u64,
        align: u64,
    ) -> Result<(u64, u64), PoolError> {
        if whole_atoms {
            let atom = self.hot.atom;
            let rounded = size
                .checked_next_multiple_of(atom)
                .ok_or(PoolError::TooLarge {
                    size,
                    max: self.hot.max_allocation_size,
                })?;
            Ok((rounded, align.max(atom)))
        } else {
            Ok((size, align))
        }
    }

    /// Whether allocations in a type with `properties` own whole `nonCoherentAtomSize` atoms.
    #[inline(always)]
    fn whole_atoms(properties: MemoryPropertyFlags) -> bool {
        properties.contains(MemoryPropertyFlags::HOST_VISIBLE)
            && !properties.contains(MemoryPropertyFlags::HOST_COHERENT)
    }

    /// Sub-allocates from an existing block of `set`, or from a new one.
    #[inline(always)]
    fn allocate_from_blocks(
        &mut self,
        memory_type: u32,
        set: usize,
        size: u64,
        align: u64,
    ) -> Result<BlockRange<D::Memory>, PoolError> {
        let hint = self.sets[set].hint;
        if hint != NO_SLOT
            && let Some(range) = self.try_block(hint, size, align)
        {
            return Ok(range);
        }
        self.allocate_from_other_blocks(memory_type, set, size, align)
    }

    /// The slow path: every other block of the set, then a new block.
    #[inline(never)]
    fn allocate_from_other_blocks(
        &mut self,
        memory_type: u32,
        set: usize,
        size: u64,
        align: u64,
    ) -> Result<BlockRange<D::Memory>, PoolError> {
        let hint = self.sets[set].hint;
        // First the block with the most free bytes: the likeliest to fit, so a miss on the hint
        // costs one more sub-allocator call, not one per block. Blocks a defragmentation pass
        // is emptying are skipped, and never become the hint.
        let mut roomiest = (NO_SLOT, 0);
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let entry = &self.blocks.as_ref()[i as usize];
            if let BlockState::Live(b) = &entry.state
                && i != hint
                && !b.emptying
                && b.free > roomiest.1
            {
                roomiest = (i, b.free);
            }
            i = entry.link;
        }
        if roomiest.0 != NO_SLOT
            && let Some(range) = self.try_block(roomiest.0, size, align)
        {
            self.sets[set].hint = roomiest.0;
            return Ok(range);
        }
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let entry = &self.blocks.as_ref()[i as usize];
            let (next, emptying) = (entry.link, Self::is_emptying(entry));
            if i != hint
                && i != roomiest.0
                && !emptying
                && let Some(range) = self.try_block(i, size, align)
            {
                self.sets[set].hint = i;
                return Ok(range);
            }
            i = next;
        }
        if self.defrag.running
            && let Some(range) = self.allocate_from_emptying_blocks(set, size, align)
        {
            return Ok(range);
        }
        // `place` checked that the request fits the largest block, so this cannot overflow.
        let needed = BlockSizing::needed(size, align).ok_or(PoolError::TooLarge {
            size,
            max: self.limits.max_memory_allocation_size,
        })?;
        let slot = self.create_block(memory_type, set, needed)?;
        match self.try_block(slot, size, align) {
            Some(range) => Ok(range),
            None => {
                // A fresh block at least `needed` bytes large always fits the request; if the
                // sub-allocator disagrees, give the block back rather than keep a useless one.
                self.release_block(slot);
                Err(PoolError::BlockMetadata(ConfigError::InvalidParameter))
            }
        }
    }

    /// Whether a defragmentation pass is emptying the block in `entry`.
    #[inline(always)]
    fn is_emptying(entry: &BlockSlot<D::Memory, A>) -> bool {
        matches!(&entry.state, BlockState::Live(b) if b.emptying)
    }

    /// During a defragmentation pass, when no other block of `set` takes a request: a block
    /// being emptied, before a new memory object is made (the pass is there to give memory
    /// back, not to take more). The allocation is then one to relocate like the others.
    #[cold]
    fn allocate_from_emptying_blocks(
        &mut self,
        set: usize,
        size: u64,
        align: u64,
    ) -> Option<BlockRange<D::Memory>> {
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let entry = &self.blocks.as_ref()[i as usize];
            let (next, emptying) = (entry.link, Self::is_emptying(entry));
            if emptying && let Some(range) = self.try_block(i, size, align) {
                return Some(range);
            }
            i = next;
        }
        None
    }

    /// Tries one block; on success updates the counters.
    #[inline(always)]
    fn try_block(&mut self, slot: u32, size: u64, align: u64) -> Option<BlockRange<D::Memory>> {
        let entry = &mut self.blocks.as_mut()[slot as usize];
        let generation = entry.generation;
        let BlockState::Live(block) = &mut entry.state else {
            return None;
        };
        if block.free < size || (size >= block.refused.0 && align >= block.refused.1) {
            return None;
        }
        // Any refusal (out of room, out of metadata) means this block cannot serve it.
        let sub = match block.allocator.allocate(size, align) {
            Ok(sub) => sub,
            Err(_) => {
                if size < block.refused.0 || (size == block.refused.0 && align < block.refused.1) {
                    block.refused = (size, align);
                }
                return None;
            }
        };
        let raw = sub.raw();
        debug_assert_eq!(raw.size, size, "a sub-allocation records the size asked");
        // A slot of `NO_SLOT` never comes back (the sub-allocators number their metadata from
        // 0). The test is for the compiler: `slot` and `tag` were just stored one by one, and
        // read as one 8-byte word (what it makes of two neighbouring reads copied side by
        // side) they would miss the store buffer and wait for the stores to retire.
        let sub = SubRange {
            offset: raw.offset,
            slot: raw.slot,
            tag: if raw.slot == NO_SLOT { 0 } else { raw.tag },
            epoch: raw.epoch,
        };
        let range = BlockRange {
            slot,
            generation,
            memory: block.memory,
            mapped: block.mapped,
            memory_type: block.memory_type,
            sub,
        };
        let was_empty = block.live == 0;
        block.live += 1;
        block.free -= size;
        if was_empty {
            self.sets[usize::from(block.set)].empty -= 1;
        }
        Some(range)
    }

    /// Makes a block for `set` at least `needed` bytes large; returns its slot.
    fn create_block(
        &mut self,
        memory_type: u32,
        set: usize,
        needed: u64,
    ) -> Result<u32, PoolError> {
        let ty = self.types[memory_type as usize];
        let heap = ty.heap_index as usize;
        let sizing = self.sizing[heap];
        let target = sizing
            .next_block_by_count(
                self.sets[set].largest,
                needed,
                self.config.max_allocations_per_block,
                self.mean_live_size(set),
            )
            .ok_or(PoolError::TooLarge {
                size: needed,
                max: sizing.largest,
            })?;
        if self.free_block == NO_SLOT {
            return Err(PoolError::BlockSlotsExhausted);
        }
        // Checked here, so a request no block size could serve fails on the object count
        // first; the room is made (an empty block released) only right before the device call.
        self.check_object_room()?;
        self.refresh_budget_if_due();
        let slot = self.free_block;
        let entry = &mut self.blocks.as_mut()[slot as usize];
        self.free_block = entry.link;
        entry.link = NO_SLOT;
        let storage_len = match &entry.state {
            BlockState::Vacant(storage) => A::storage_elements(storage),
            _ => 0,
        };
        let result = self.create_block_in(slot, storage_len, memory_type, set, needed, target);
        if result.is_err()
            && matches!(
                self.blocks.as_ref()[slot as usize].state,
                BlockState::Vacant(_)
            )
        {
            self.push_free_block(slot);
        }
        result
    }

    /// The mean size (as asked of the sub-allocators) of the live allocations in `set`'s
    /// blocks; 0 when there are none.
    fn mean_live_size(&self, set: usize) -> u64 {
        let (mut used, mut live) = (0u64, 0u64);
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let entry = &self.blocks.as_ref()[i as usize];
            if let BlockState::Live(b) = &entry.state {
                used += b.size - b.free;
                live += u64::from(b.live);
            }
            i = entry.link;
        }
        used.checked_div(live).unwrap_or(0)
    }

    fn push_free_block(&mut self, slot: u32) {
        self.blocks.as_mut()[slot as usize].link = self.free_block;
        self.free_block = slot;
    }

    /// Allocates, maps and installs a block in `slot` (off the free list).
    fn create_block_in(
        &mut self,
        slot: u32,
        storage_len: usize,
        memory_type: u32,
        set: usize,
        needed: u64,
        target: u64,
    ) -> Result<u32, PoolError> {
        let ty = self.types[memory_type as usize];
        let heap = ty.heap_index as usize;
        let granule = self.config.block_granule;
        let max_allocations = self.config.max_allocations_per_block;
        let mut last = PoolError::Device(DeviceError::OutOfDeviceMemory);
        // The target size, then up to three halvings (VMA's retry): a heap that cannot give
        // 256 MiB may still give 32 MiB.
        let mut size = target;
        for _ in 0..4 {
            if size < needed {
                break;
            }
            let candidate = size;
            size /= 2;
            match A::storage_len(candidate, granule, max_allocations) {
                Ok(n) if n <= storage_len => {}
                Ok(n) => {
                    last = PoolError::BlockMetadata(ConfigError::StorageTooSmall {
                        required: n,
                        provided: storage_len,
                    });
                    continue;
                }
                Err(e) => {
                    last = PoolError::BlockMetadata(e);
                    continue;
                }
            }
            match self.make_room(heap, candidate) {
                Ok(()) => {}
                Err(
                    e @ (PoolError::OverBudget { .. }
                    | PoolError::Device(DeviceError::OutOfDeviceMemory)),
                ) => {
                    last = e;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let info = MemoryAllocateInfo {
                size: candidate,
                memory_type,
                dedicated_to: None,
                priority: self.config.block_priority,
                device_address: self.config.device_address_blocks
                    || set % GROUPS == DEVICE_ADDRESS_GROUP,
            };
            // SAFETY: `memory_type` indexes the device's types (it came from the ranking of
            // them); `candidate` is nonzero (at least the granule) and at most
            // `maxMemoryAllocationSize` (the sizing caps every block); no buffer is named.
            let memory = match unsafe { self.device.allocate_memory(&info) } {
                Ok(memory) => memory,
                Err(e @ (DeviceError::OutOfDeviceMemory | DeviceError::OutOfHostMemory)) => {
                    last = PoolError::Device(e);
                    continue;
                }
                Err(e) => return Err(PoolError::Device(e)),
            };
            let mapped = self.map_new_object(memory, ty.properties)?;
            return self.install_block(slot, memory_type, set, memory, candidate, mapped);
        }
        Err(last)
    }

    /// Maps a new memory object when its type is host-visible; frees it when mapping fails.
    fn map_new_object(
        &mut self,
        memory: D::Memory,
        properties: MemoryPropertyFlags,
    ) -> Result<Option<HostPtr>, PoolError> {
        if !properties.contains(MemoryPropertyFlags::HOST_VISIBLE) {
            return Ok(None);
        }
        // SAFETY: `memory` was just allocated from a HOST_VISIBLE type and was never mapped.
        match unsafe { self.device.map_memory(memory) } {
            Ok(ptr) => Ok(Some(HostPtr::new(ptr))),
            Err(e) => {
                // SAFETY: allocated above, never used by the GPU, not mapped, nothing bound.
                unsafe { self.device.free_memory(memory) };
                Err(PoolError::Device(e))
            }
        }
    }

    fn install_block(
        &mut self,
        slot: u32,
        memory_type: u32,
        set: usize,
        memory: D::Memory,
        size: u64,
        mapped: Option<HostPtr>,
    ) -> Result<u32, PoolError> {
        let granule = self.config.block_granule;
        let max_allocations = self.config.max_allocations_per_block;
        let entry = &mut self.blocks.as_mut()[slot as usize];
        let BlockState::Vacant(storage) = mem::replace(&mut entry.state, BlockState::Poisoned)
        else {
            // The free list only holds vacant slots; a poisoned one stays off it.
            self.free_object(memory, mapped);
            return Err(PoolError::BlockSlotsExhausted);
        };
        let allocator = match A::with_storage(size, granule, max_allocations, storage) {
            Ok(a) => a,
            Err(e) => {
                // The storage is gone with the failed constructor: the slot stays poisoned,
                // off the free list.
                self.free_object(memory, mapped);
                return Err(PoolError::BlockMetadata(e));
            }
        };
        let entry = &mut self.blocks.as_mut()[slot as usize];
        entry.state = BlockState::Live(LiveBlock {
            allocator,
            memory,
            size,
            mapped,
            memory_type: memory_type as u8,
            set: set as u8,
            live: 0,
            free: size,
            refused: (u64::MAX, u64::MAX),
            whole_atoms: Self::whole_atoms(self.types[memory_type as usize].properties),
            emptying: false,
        });
        entry.link = self.sets[set].head;
        let s = &mut self.sets[set];
        s.head = slot;
        s.hint = slot;
        s.empty += 1;
        s.largest = s.largest.max(size);
        let stats = &mut self.type_stats[memory_type as usize];
        stats.blocks += 1;
        stats.block_bytes += size;
        self.objects += 1;
        let heap = self.types[memory_type as usize].heap_index as usize;
        self.budgets.on_create(heap, size);
        Ok(slot)
    }

    /// Unmaps and frees an object that was never handed out.
    fn free_object(&mut self, memory: D::Memory, mapped: Option<HostPtr>) {
        if mapped.is_some() {
            // SAFETY: mapped once by `map_new_object`, no pointer into it was handed out.
            unsafe { self.device.unmap_memory(memory) };
        }
        // SAFETY: allocated by this device, never handed out, so never used by the GPU and
        // nothing is bound to it.
        unsafe { self.device.free_memory(memory) };
    }

    #[inline(never)]
    fn allocate_dedicated(
        &mut self,
        memory_type: u32,
        request: &AllocationRequest,
        dedicated_to: Option<DedicatedTo<D::Buffer, D::Image>>,
    ) -> Result<DeviceAllocation<D::Memory>, PoolError> {
        let slot = self.free_dedicated;
        if slot == NO_SLOT {
            return Err(PoolError::DedicatedSlotsExhausted);
        }
        let ty = self.types[memory_type as usize];
        let heap = ty.heap_index as usize;
        let size = request.requirements.size;
        self.refresh_budget_if_due();
        self.make_room(heap, size)?;
        let info = MemoryAllocateInfo {
            size,
            memory_type,
            dedicated_to,
            // Out of range (NaN included) is clamped rather than refused: it is only a hint.
            priority: if request.priority.is_nan() {
                0.5
            } else {
                request.priority.clamp(0.0, 1.0)
            },
            device_address: request.usage.contains(MemoryUsage::DEVICE_ADDRESS)
                || self.config.device_address_blocks,
        };
        // SAFETY: `memory_type` indexes the device's types; `size` is nonzero and at most
        // `maxMemoryAllocationSize` (checked in `allocate_inner`); a buffer in `dedicated_to`
        // or image in it comes from `allocate_dedicated_to`, whose caller promised it is alive
        // and unbound.
        let memory = unsafe { self.device.allocate_memory(&info) }.map_err(PoolError::Device)?;
        let mapped = self.map_new_object(memory, ty.properties)?;
        let entry = &mut self.dedicated.as_mut()[slot as usize];
        self.free_dedicated = entry.link;
        entry.link = NO_SLOT;
        entry.object = Some(DedicatedObject {
            memory,
            size,
            mapped,
            memory_type: memory_type as u8,
        });
        let generation = entry.generation;
        let stats = &mut self.type_stats[memory_type as usize];
        stats.dedicated_objects += 1;
        stats.dedicated_bytes += size;
        self.objects += 1;
        self.budgets.on_create(heap, size);
        Ok(DeviceAllocation::from_parts(RawDeviceAllocation {
            memory,
            offset: 0,
            size,
            memory_type,
            mapped,
            pools: self.id,
            slot,
            generation,
            placement: Placement::Dedicated,
        }))
    }

    /// Whether one more memory object may be made: below `maxMemoryAllocationCount`, or at it
    /// with an empty block to release. Releases nothing.
    fn check_object_room(&self) -> Result<(), PoolError> {
        let limit = self.limits.max_memory_allocation_count;
        if self.objects < limit || self.empty_blocks(None).next().is_some() {
            Ok(())
        } else {
            Err(PoolError::ObjectCountExhausted { limit })
        }
    }

    /// Makes room for a new memory object of `bytes` in `heap`, right before the device call:
    /// at `maxMemoryAllocationCount` an empty block goes, and in within-budget mode the heap's
    /// empty blocks go, largest first, until `bytes` more fit its budget (outside that mode the
    /// device decides). Checks first that releasing is enough, and releases nothing when it is
    /// not: a failed allocation leaves the cached blocks as they were.
    ///
    /// Errors: [`PoolError::ObjectCountExhausted`], [`PoolError::OverBudget`].
    fn make_room(&mut self, heap: usize, bytes: u64) -> Result<(), PoolError> {
        self.check_object_room()?;
        if !self.budgets.can_hold(bytes) {
            // More than 2^64 bytes in all: no device has that, and the byte counters would wrap.
            return Err(PoolError::Device(DeviceError::OutOfDeviceMemory));
        }
        if self.config.within_budget && !self.budgets.fits(heap, bytes) {
            let empty_bytes = self
                .empty_blocks(Some(heap))
                .fold(0u64, |sum, (_, size)| sum.saturating_add(size));
            if !self.budgets.fits_after_freeing(heap, bytes, empty_bytes) {
                return Err(PoolError::OverBudget { heap: heap as u32 });
            }
            // Freeing all of them fits, so this stops with the request fitting; largest first,
            // so the fewest blocks go.
            while !self.budgets.fits(heap, bytes) && self.release_largest_empty_block(Some(heap)) {}
        }
        // Releasing for the budget released objects too; one more goes only when still needed
        // (and there is one: checked above).
        if self.objects >= self.limits.max_memory_allocation_count {
            self.release_largest_empty_block(None);
        }
        Ok(())
    }

    /// The empty blocks (of `heap`, when given), as slot and size.
    fn empty_blocks(&self, heap: Option<usize>) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.blocks
            .as_ref()
            .iter()
            .enumerate()
            .filter_map(move |(i, slot)| match &slot.state {
                BlockState::Live(b)
                    if b.live == 0
                        && heap.is_none_or(|h| {
                            self.types[usize::from(b.memory_type)].heap_index as usize == h
                        }) =>
                {
                    // Truncation impossible: slot indices fit in u32 (the table's length does).
                    Some((i as u32, b.size))
                }
                _ => None,
            })
    }

    /// Releases the largest empty block (of `heap`, when given). Returns whether one was.
    fn release_largest_empty_block(&mut self, heap: Option<usize>) -> bool {
        match self.empty_blocks(heap).max_by_key(|&(_, size)| size) {
            Some((slot, _)) => {
                self.release_block(slot);
                true
            }
            None => false,
        }
    }

    /// Frees a live block's memory object and returns its slot to the free list. Counts any
    /// allocations still in it as gone (teardown).
    fn release_block(&mut self, slot: u32) {
        let entry = &mut self.blocks.as_mut()[slot as usize];
        let BlockState::Live(block) = mem::replace(&mut entry.state, BlockState::Poisoned) else {
            return;
        };
        let link = entry.link;
        entry.generation = entry.generation.wrapping_add(1);
        entry.state = BlockState::Vacant(block.allocator.into_block_storage());
        self.push_free_block(slot);
        // Unlink from the set's list and recompute its largest block.
        let set = usize::from(block.set);
        let mut largest = 0;
        let mut prev = NO_SLOT;
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let next = if i == slot {
                link
            } else {
                self.blocks.as_ref()[i as usize].link
            };
            if i == slot {
                if prev == NO_SLOT {
                    self.sets[set].head = next;
                } else {
                    self.blocks.as_mut()[prev as usize].link = next;
                }
            } else {
                if let BlockState::Live(b) = &self.blocks.as_ref()[i as usize].state {
                    largest = largest.max(b.size);
                }
                prev = i;
            }
            i = next;
        }
        let s = &mut self.sets[set];
        s.largest = largest;
        if s.hint == slot {
            // The next block, unless a defragmentation pass is emptying it.
            let head = s.head;
            s.hint = match self.blocks.as_ref().get(head as usize) {
                Some(entry) if !Self::is_emptying(entry) => head,
                _ => NO_SLOT,
            };
        }
        let stats = &mut self.type_stats[usize::from(block.memory_type)];
        stats.blocks -= 1;
        stats.block_bytes -= block.size;
        if block.live == 0 {
            s.empty -= 1;
        }
        self.objects -= 1;
        let heap = self.types[usize::from(block.memory_type)].heap_index as usize;
        self.budgets.on_free(heap, block.size);
        self.free_object(block.memory, block.mapped);
    }

    /// Gives an allocation back. A block range returns to its block (an emptied block is kept
    /// or freed under [`PoolConfig::empty_blocks_kept`]); a dedicated object is freed.
    ///
    /// A foreign, stale or twice-freed allocation is refused and changes nothing.
    ///
    /// # Safety
    /// - the GPU has finished every use of the allocation (its last timeline value completed);
    /// - no resource still bound to it is used again, and none is still bound when its memory
    ///   object may be freed (destroy the resource first);
    /// - no pointer into its mapping is used afterwards.
    pub unsafe fn free(
        &mut self,
        allocation: DeviceAllocation<D::Memory>,
    ) -> Result<(), FreeError> {
        let raw = allocation.into_raw();
        if raw.pools != self.hot.id {
            return Err(FreeError::ForeignAllocation);
        }
        match raw.placement {
            Placement::Block { slot, tag, epoch } => self.free_block_range(&raw, slot, tag, epoch),
            Placement::Dedicated => self.free_dedicated(&raw),
        }
    }

    #[inline(always)]
    fn free_block_range(
        &mut self,
        raw: &RawDeviceAllocation<D::Memory>,
        sub_slot: u32,
        tag: u32,
        epoch: u32,
    ) -> Result<(), FreeError> {
        let atom = self.hot.atom;
        let entry = self
            .blocks
            .as_mut()
            .get_mut(raw.slot as usize)
            .ok_or(FreeError::ForeignAllocation)?;
        if entry.generation != raw.generation {
            // The block was released, which happens only once all its allocations were freed.
            return Err(FreeError::DoubleFree);
        }
        let BlockState::Live(block) = &mut entry.state else {
            return Err(FreeError::DoubleFree);
        };
        if block.memory != raw.memory || u32::from(block.memory_type) != raw.memory_type {
            return Err(FreeError::ForeignAllocation);
        }
        let sub = sub_allocation_of(block, raw, sub_slot, tag, epoch, atom)?;
        block.allocator.free(Allocation::from_raw(sub))?;
        block.refused = (u64::MAX, u64::MAX);
        block.live -= 1;
        block.free += sub.size;
        if block.live == 0 {
            let set = usize::from(block.set);
            self.on_block_emptied(set, raw.slot);
        }
        Ok(())
    }

    /// Block `slot` of `set` has just lost its last allocation: counts it empty, and releases
    /// it when a defragmentation pass is emptying it, or else past the kept count the set's
    /// smallest empty block.
    #[inline(never)]
    fn on_block_emptied(&mut self, set: usize, slot: u32) {
        self.sets[set].empty += 1;
        if let BlockState::Live(b) = &self.blocks.as_ref()[slot as usize].state
            && b.emptying
        {
            self.release_emptied_block(slot, b.size);
        } else if self.sets[set].empty > self.config.empty_blocks_kept {
            self.release_smallest_empty_block(set);
        }
    }

    /// Hysteresis: past the kept count, the smallest empty block of the set goes.
    fn release_smallest_empty_block(&mut self, set: usize) {
        let mut best: Option<(u32, u64)> = None;
        let mut i = self.sets[set].head;
        while i != NO_SLOT {
            let entry = &self.blocks.as_ref()[i as usize];
            if let BlockState::Live(b) = &entry.state
                && b.live == 0
                && best.is_none_or(|(_, size)| b.size < size)
            {
                best = Some((i, b.size));
            }
            i = entry.link;
        }
        if let Some((slot, _)) = best {
            self.release_block(slot);
        }
    }

    #[inline(never)]
    fn free_dedicated(&mut self, raw: &RawDeviceAllocation<D::Memory>) -> Result<(), FreeError> {
        let entry = self
            .dedicated
            .as_mut()
            .get_mut(raw.slot as usize)
            .ok_or(FreeError::ForeignAllocation)?;
        if entry.generation != raw.generation {
            return Err(FreeError::DoubleFree);
        }
        let Some(object) = entry.object else {
            return Err(FreeError::DoubleFree);
        };
        if object.memory != raw.memory {
            return Err(FreeError::ForeignAllocation);
        }
        entry.object = None;
        entry.generation = entry.generation.wrapping_add(1);
        entry.link = self.free_dedicated;
        self.free_dedicated = raw.slot;
        let stats = &mut self.type_stats[usize::from(object.memory_type)];
        stats.dedicated_objects -= 1;
        stats.dedicated_bytes -= object.size;
        self.objects -= 1;
        let heap = self.types[usize::from(object.memory_type)].heap_index as usize;
        self.budgets.on_free(heap, object.size);
        self.free_object(object.memory, object.mapped);
        Ok(())
    }

    /// Frees every empty block (memory pressure, a level change). Returns how many.
    pub fn trim(&mut self) -> u32 {
        let mut n = 0;
        while self.release_largest_empty_block(None) {
            n += 1;
        }
        n
    }

    /// Reads budgets from the device now (estimates them when it cannot report).
    pub fn refresh_budget(&mut self) {
        let mut report = [HeapBudget::default(); MAX_MEMORY_HEAPS];
        let heaps = self.properties.heaps().len();
        if self.device.query_budget(&mut report[..heaps]) {
            self.budgets.refresh(Some(&report[..heaps]));
        } else {
            self.budgets.refresh(None);
        }
    }

    fn refresh_budget_if_due(&mut self) {
        if self.budgets.creations_since_refresh() >= self.config.budget_refresh_interval {
            self.refresh_budget();
        }
    }

    /// Memory objects held from the device (blocks and dedicated).
    pub fn memory_objects(&self) -> u32 {
        self.objects
    }

    /// This instance's id (what its allocations carry).
    pub fn id(&self) -> AllocatorId {
        self.id
    }
}
