//! Heap budgets: how much of each heap this process may use, and how much it uses.
//!
//! With `VK_EXT_memory_budget` the device reports both per heap; the report goes stale as memkit
//! allocates, so between refreshes the usage is the device's figure plus what memkit allocated
//! (or minus what it freed) since. Refreshes happen on demand and every
//! [`super::PoolConfig::budget_refresh_interval`] memory-object creations. Without the extension
//! the budget is estimated as 80% of the heap (VMA's estimate) and the usage is memkit's own.
#![forbid(unsafe_code)]

use crate::device::{HeapBudget, MAX_MEMORY_HEAPS, MemoryProperties};

/// One heap's accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HeapAccount {
    heap_size: u64,
    /// The device's budget at the last refresh.
    device_budget: u64,
    /// The device's usage at the last refresh.
    device_usage: u64,
    /// Bytes of memory objects memkit holds in the heap now.
    memkit_bytes: u64,
    /// `memkit_bytes` at the last refresh.
    memkit_bytes_at_refresh: u64,
}

/// Budgets and usage of every heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapBudgets {
    heaps: [HeapAccount; MAX_MEMORY_HEAPS],
    heap_count: usize,
    /// Whether the last refresh came from the device.
    from_device: bool,
    /// Memory objects created since the last refresh.
    creations_since_refresh: u32,
}

impl HeapBudgets {
    /// Accounts for the heaps of `properties`, with estimated budgets until the first refresh.
    pub fn new(properties: &MemoryProperties) -> Self {
        let mut heaps = [HeapAccount::default(); MAX_MEMORY_HEAPS];
        for (account, heap) in heaps.iter_mut().zip(properties.heaps()) {
            account.heap_size = heap.size;
        }
        Self {
            heaps,
            heap_count: properties.heaps().len(),
            from_device: false,
            creations_since_refresh: 0,
        }
    }

    /// Takes a fresh report (`Some`, one entry per heap) or falls back to estimates (`None`).
    pub fn refresh(&mut self, report: Option<&[HeapBudget]>) {
        self.from_device = report.is_some();
        self.creations_since_refresh = 0;
        for (i, account) in self.heaps[..self.heap_count].iter_mut().enumerate() {
            account.memkit_bytes_at_refresh = account.memkit_bytes;
            let reported = report.and_then(|r| r.get(i)).copied().unwrap_or_default();
            account.device_budget = reported.budget;
            account.device_usage = reported.usage;
        }
    }

    /// Whether the figures come from the device (else they are estimates).
    pub fn from_device(&self) -> bool {
        self.from_device
    }

    /// Memory objects created since the last refresh.
    pub fn creations_since_refresh(&self) -> u32 {
        self.creations_since_refresh
    }

    /// Bytes the process may use in `heap`.
    pub fn budget(&self, heap: usize) -> u64 {
        let Some(a) = self.heaps[..self.heap_count].get(heap) else {
            return 0;
        };
        if self.from_device {
            a.device_budget
        } else {
            // 80% of the heap; the multiplication cannot overflow for heaps below 2^61 bytes,
            // and saturates above.
            a.heap_size.saturating_mul(8) / 10
        }
    }

    /// Bytes the process uses in `heap` (estimated between refreshes).
    pub fn usage(&self, heap: usize) -> u64 {
        let Some(a) = self.heaps[..self.heap_count].get(heap) else {
            return 0;
        };
        if self.from_device {
            if a.memkit_bytes >= a.memkit_bytes_at_refresh {
                a.device_usage
                    .saturating_add(a.memkit_bytes - a.memkit_bytes_at_refresh)
            } else {
                a.device_usage
                    .saturating_sub(a.memkit_bytes_at_refresh - a.memkit_bytes)
            }
        } else {
            a.memkit_bytes
        }
    }

    /// Bytes of memory objects memkit holds in `heap`.
    pub fn memkit_bytes(&self, heap: usize) -> u64 {
        self.heaps[..self.heap_count]
            .get(heap)
            .map_or(0, |a| a.memkit_bytes)
    }

    /// Bytes of memory objects memkit holds in all heaps (saturating, though the pools keep it
    /// below 2^64: see [`HeapBudgets::can_hold`]).
    pub fn memkit_bytes_total(&self) -> u64 {
        self.heaps[..self.heap_count]
            .iter()
            .fold(0u64, |sum, a| sum.saturating_add(a.memkit_bytes))
    }

    /// Whether memkit can hold `bytes` more without the bytes it holds in all heaps passing
    /// `u64::MAX`. Only a device that reports more memory than any machine has would refuse
    /// here, but every byte counter of the pools (per memory type, per heap, in total) stays
    /// exact, without overflow, as long as this holds.
    pub fn can_hold(&self, bytes: u64) -> bool {
        self.memkit_bytes_total().checked_add(bytes).is_some()
    }

    /// Whether `bytes` more fit in `heap`'s budget.
    pub fn fits(&self, heap: usize, bytes: u64) -> bool {
        self.usage(heap)
            .checked_add(bytes)
            .is_some_and(|total| total <= self.budget(heap))
    }

    /// Whether `bytes` more would fit in `heap`'s budget once memory objects of `freed` bytes
    /// (ones memkit holds in the heap) were freed: freeing lowers the usage by their bytes, to
    /// no less than zero, whether the figures are the device's or estimates.
    pub fn fits_after_freeing(&self, heap: usize, bytes: u64, freed: u64) -> bool {
        self.usage(heap)
            .saturating_sub(freed)
            .checked_add(bytes)
            .is_some_and(|total| total <= self.budget(heap))
    }

    /// Records a memory object of `bytes` created in `heap`.
    pub fn on_create(&mut self, heap: usize, bytes: u64) {
        self.creations_since_refresh = self.creations_since_refresh.saturating_add(1);
        if let Some(a) = self.heaps[..self.heap_count].get_mut(heap) {
            a.memkit_bytes = a.memkit_bytes.saturating_add(bytes);
        }
    }

    /// Records a memory object of `bytes` freed in `heap`.
    pub fn on_free(&mut self, heap: usize, bytes: u64) {
        if let Some(a) = self.heaps[..self.heap_count].get_mut(heap) {
            a.memkit_bytes = a.memkit_bytes.saturating_sub(bytes);
        }
    }
}
