//! Memory-type selection: which of the memory types a resource allows (its `memoryTypeBits`)
//! suit a [`MemoryUsage`], best first.
//!
//! Each usage turns into flags a type must have, flags it should have and flags it should not
//! have. Types missing a required flag, and types that are `PROTECTED` (or `LAZILY_ALLOCATED`
//! without [`MemoryUsage::TRANSIENT`]), are left out. The rest are ordered by a cost: one point
//! per preferred flag missing and per unwanted flag present, four for `DEVICE_LOCAL` (which decides
//! what heap the memory comes from, and so outweighs the others together). Equal costs keep the device's order,
//! which Vulkan sorts by performance. The pools walk the ranking and fall back to the next type
//! when a heap is out of memory or over budget.
//!
//! A caller who names a type by index ([`MemoryTypeRanking::strict`]) gets exactly that type and
//! no fallback; this is also the only way to get `PROTECTED` memory.
#![forbid(unsafe_code)]

use core::fmt;

use crate::device::{MAX_MEMORY_TYPES, MemoryProperties, MemoryPropertyFlags as F};
use crate::usage::MemoryUsage;

/// Why no memory type was found.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelectionError {
    /// No type allowed by `memoryTypeBits` suits the usage (or `memoryTypeBits` is zero).
    NoCompatibleType,
    /// A strictly requested type index is not a type of the device, or not allowed by
    /// `memoryTypeBits`.
    TypeNotAllowed,
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoCompatibleType => "no memory type allowed by memoryTypeBits suits the usage",
            Self::TypeNotAllowed => {
                "the requested memory type does not exist or is not in memoryTypeBits"
            }
        })
    }
}

impl core::error::Error for SelectionError {}

/// What a usage asks of a memory type's property flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypePreferences {
    /// Flags a type must have.
    pub required: F,
    /// Flags a type should have (a point of cost for each one missing).
    pub preferred: F,
    /// Flags a type should not have (a point of cost for each one present).
    pub not_preferred: F,
    /// Flags a type must not have.
    pub forbidden: F,
}

impl TypePreferences {
    /// The preferences for a usage.
    pub fn for_usage(usage: MemoryUsage) -> Self {
        let fast = usage.contains(MemoryUsage::FAST_DEVICE_ACCESS);
        let mut p = Self {
            required: F::empty(),
            preferred: F::empty(),
            not_preferred: F::empty(),
            forbidden: F::PROTECTED,
        };
        if !usage.contains(MemoryUsage::TRANSIENT) {
            p.forbidden |= F::LAZILY_ALLOCATED;
        }
        if usage.needs_host_access() {
            p.required |= F::HOST_VISIBLE;
            if usage.contains(MemoryUsage::DOWNLOAD) || !usage.contains(MemoryUsage::UPLOAD) {
                // Readback and random access: uncached reads are very slow; that matters more
                // than sparing an invalidate.
                p.preferred |= F::HOST_CACHED;
            } else {
                // Sequential writes only: write-combined memory is what the bus wants, and
                // coherent memory spares the flushes.
                p.preferred |= F::HOST_COHERENT;
                p.not_preferred |= F::HOST_CACHED;
            }
            if fast {
                // The device reads it often: a host-visible device-local window (ReBAR).
                p.preferred |= F::DEVICE_LOCAL;
            } else {
                // Keep the small device-local host-visible window for those who ask for it.
                p.not_preferred |= F::DEVICE_LOCAL;
            }
        } else {
            // Device only (the empty usage too): VRAM, and leave host-visible types to others.
            p.preferred |= F::DEVICE_LOCAL;
            p.not_preferred |= F::HOST_VISIBLE | F::HOST_COHERENT | F::HOST_CACHED;
            if usage.contains(MemoryUsage::TRANSIENT) {
                p.preferred |= F::LAZILY_ALLOCATED;
            }
        }
        p
    }

    /// The cost of a type with `flags`, or `None` when it is excluded.
    pub fn cost(&self, flags: F) -> Option<u32> {
        if !flags.contains(self.required) || flags.intersects(self.forbidden) {
            return None;
        }
        let missing = self.preferred.difference(flags);
        let unwanted = self.not_preferred.intersection(flags);
        // DEVICE_LOCAL decides the heap, so it outweighs the other flags together.
        let device_local = 3 * u32::from(missing.union(unwanted).contains(F::DEVICE_LOCAL));
        Some(missing.bits().count_ones() + unwanted.bits().count_ones() + device_local)
    }
}

/// Memory-type indices, best first. Fixed capacity ([`MAX_MEMORY_TYPES`]), no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryTypeRanking {
    order: [u8; MAX_MEMORY_TYPES],
    len: u8,
}

impl MemoryTypeRanking {
    /// Ranks the types allowed by `memory_type_bits` for `usage`.
    pub fn rank(
        properties: &MemoryProperties,
        memory_type_bits: u32,
        usage: MemoryUsage,
    ) -> Result<Self, SelectionError> {
        let prefs = TypePreferences::for_usage(usage);
        let mut costs = [0u32; MAX_MEMORY_TYPES];
        let mut out = Self {
            order: [0; MAX_MEMORY_TYPES],
            len: 0,
        };
        for (index, ty) in properties.types().iter().enumerate() {
            if memory_type_bits & (1 << index) == 0 {
                continue;
            }
            let Some(cost) = prefs.cost(ty.properties) else {
                continue;
            };
            // Insertion sort, stable: equal costs keep the device's order. At most 32 entries.
            let mut at = usize::from(out.len);
            while at > 0 && costs[at - 1] > cost {
                costs[at] = costs[at - 1];
                out.order[at] = out.order[at - 1];
                at -= 1;
            }
            costs[at] = cost;
            out.order[at] = index as u8;
            out.len += 1;
        }
        if out.len == 0 {
            Err(SelectionError::NoCompatibleType)
        } else {
            Ok(out)
        }
    }

    /// Exactly the type `index`, with no fallback. Any type the device has and `memory_type_bits`
    /// allows, `PROTECTED` and `LAZILY_ALLOCATED` included.
    pub fn strict(
        properties: &MemoryProperties,
        memory_type_bits: u32,
        index: u32,
    ) -> Result<Self, SelectionError> {
        if index as usize >= properties.types().len() || memory_type_bits & (1 << index) == 0 {
            return Err(SelectionError::TypeNotAllowed);
        }
        let mut order = [0; MAX_MEMORY_TYPES];
        order[0] = index as u8;
        Ok(Self { order, len: 1 })
    }

    /// The type indices, best first.
    pub fn as_slice(&self) -> &[u8] {
        &self.order[..usize::from(self.len)]
    }

    /// The best type.
    pub fn best(&self) -> u32 {
        u32::from(self.order[0])
    }
}

#[cfg(test)]
mod tests;
