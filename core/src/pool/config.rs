//! How pools size their blocks, when they keep empty ones, and how they treat budgets.
#![forbid(unsafe_code)]

/// Pool settings; [`PoolConfig::DEFAULT`] suits a desktop engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolConfig {
    /// A pool's first block (a power of two; 2 MiB): small, so a device with one small
    /// allocation reserves little.
    pub first_block_size: u64,
    /// Blocks grow to this; `None` derives it from the heap size (an eighth of heaps up to
    /// 1 GiB, 256 MiB above).
    pub preferred_block_size: Option<u64>,
    /// Requests above this get a dedicated memory object; `None`: half the preferred block size.
    pub dedicated_threshold: Option<u64>,
    /// The sub-allocators' unit (a power of two, 256 bytes): every sub-allocation's offset and
    /// size are multiples of it.
    pub block_granule: u64,
    /// Most live sub-allocations per block (sizes each block's metadata). Blocks stop growing at
    /// the size this many allocations of the pool's mean size fill.
    pub max_allocations_per_block: u32,
    /// Empty blocks each pool keeps instead of freeing (1): a frame that frees everything and
    /// allocates again does not pay `vkAllocateMemory` (about 70 us on NVIDIA). Beyond it, the
    /// smallest empty block is freed.
    pub empty_blocks_kept: u32,
    /// Fail with [`super::PoolError::OverBudget`] rather than take a heap past its budget.
    pub within_budget: bool,
    /// Refresh budgets from the device every this many memory-object creations (30).
    pub budget_refresh_interval: u32,
    /// Make every block with device-address support, so buffers with and without device
    /// addresses share blocks. When off (the default), a request with
    /// [`crate::usage::MemoryUsage::DEVICE_ADDRESS`] is sub-allocated from blocks of its own that
    /// have it (as gpu-allocator and VMA sub-allocate them): the other blocks need no
    /// device-address support, and a device without the feature still gets pools.
    pub device_address_blocks: bool,
    /// Residency priority of blocks, `[0, 1]`.
    pub block_priority: f32,
}

impl PoolConfig {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        first_block_size: 2 << 20,
        preferred_block_size: None,
        dedicated_threshold: None,
        block_granule: 256,
        max_allocations_per_block: 4096,
        empty_blocks_kept: 1,
        within_budget: false,
        budget_refresh_interval: 30,
        device_address_blocks: false,
        block_priority: 0.5,
    };

    /// Whether every value is in range.
    pub fn is_valid(&self) -> bool {
        self.first_block_size.is_power_of_two()
            && self.block_granule.is_power_of_two()
            && self.max_allocations_per_block > 0
            && (0.0..=1.0).contains(&self.block_priority)
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}
