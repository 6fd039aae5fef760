//! A shadow of any [`SubAllocator`]: an interval map of the live ranges, driven in lockstep with
//! the real allocator by an op sequence. Proptest (`tests/tests/`) and cargo-fuzz (`fuzz/`) both
//! use it, so a failure found by either reproduces in the other.
//!
//! After every op the harness checks: no two live allocations overlap, every offset honours its
//! alignment and lies inside the capacity, the statistics agree with the shadow, and refused frees
//! (double, stale, foreign) change nothing. When every allocation is freed, the whole capacity
//! must be allocatable again in one piece.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::vec::Vec;

use memkit_core::{AllocError, Allocation, AllocatorStats, FreeError, RawAllocation, SubAllocator};

/// One step of a workload.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum AllocatorOp {
    /// Allocate `size` bytes (taken modulo a bit more than the capacity, so that over-capacity
    /// requests happen too) with alignment `1 << (align_log2 % 24)`; size 0 is tested too.
    Allocate {
        /// Requested size before scaling.
        size: u64,
        /// Alignment exponent.
        align_log2: u8,
    },
    /// Free the live allocation at `index % live`.
    Free {
        /// Which live allocation.
        index: u16,
    },
    /// Free again a handle that was already freed: must be refused.
    DoubleFree {
        /// Which freed handle.
        index: u16,
    },
    /// Free a handle of another allocator instance: must be refused.
    ForeignFree,
    /// Reset the allocator: every live handle becomes stale.
    Reset,
}

/// A live range in the shadow.
#[derive(Clone, Copy, Debug)]
struct ShadowRange {
    end: u64,
    size: u64,
    raw: RawAllocation,
}

/// The shadow allocator and the handles the workload holds.
pub struct SubAllocatorModel {
    capacity: u64,
    live: BTreeMap<u64, ShadowRange>,
    /// Handles freed (or invalidated by reset) that a `DoubleFree` op may replay.
    dead: Vec<RawAllocation>,
    total_allocations: u64,
    total_frees: u64,
    /// Sizes the workload draws from are kept under this (smaller = more collisions).
    max_request: u64,
}

impl SubAllocatorModel {
    /// A model for an allocator of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            live: BTreeMap::new(),
            dead: Vec::new(),
            total_allocations: 0,
            total_frees: 0,
            max_request: capacity + capacity / 8 + 1,
        }
    }

    /// Keeps generated requests under `max_request` bytes (the default lets some exceed the
    /// capacity).
    pub fn with_max_request(mut self, max_request: u64) -> Self {
        self.max_request = max_request.max(1);
        self
    }

    /// Live allocations in the shadow.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The size and alignment [`step`](Self::step) asks for on an `Allocate` op; `None` for the
    /// other ops.
    pub fn request(&self, op: AllocatorOp) -> Option<(u64, u64)> {
        match op {
            AllocatorOp::Allocate { size, align_log2 } => {
                Some((size % self.max_request, 1u64 << (align_log2 % 24)))
            }
            _ => None,
        }
    }

    /// After [`step`](Self::step) ran `op`, with the real allocator's statistics `before` and
    /// `after` it: `largest_free_run` is exact, so an allocation it promised (a size from 1 up to
    /// it, an alignment of at most `unit`, the allocator's unit of placement, and fewer than
    /// `max_allocations` live) must have succeeded.
    pub fn check_largest_free_run(
        &self,
        op: AllocatorOp,
        unit: u64,
        max_allocations: u32,
        before: &AllocatorStats,
        after: &AllocatorStats,
    ) -> Result<(), String> {
        let Some((size, align)) = self.request(op) else {
            return Ok(());
        };
        let must_fit = size > 0
            && size <= before.largest_free_run
            && align <= unit
            && before.live_allocations < u64::from(max_allocations);
        if must_fit && after.live_allocations != before.live_allocations + 1 {
            return Err(format!(
                "{size} bytes refused though the largest free run was {}",
                before.largest_free_run
            ));
        }
        Ok(())
    }

    /// After [`step`](Self::step) ran `op` on a TLSF allocator with granule `granule`, with its
    /// statistics `before` and `after` it: a success reserves the size rounded to the granule,
    /// plus at most an alignment gap it keeps (under 64 KiB and under the request's size) and a
    /// sliver left beside it (under 256 bytes and under an eighth of the request). Larger gaps
    /// and rests must stay free.
    pub fn check_tlsf_reservation(
        &self,
        op: AllocatorOp,
        granule: u64,
        before: &AllocatorStats,
        after: &AllocatorStats,
    ) -> Result<(), String> {
        let Some((size, _)) = self.request(op) else {
            return Ok(());
        };
        if after.live_allocations != before.live_allocations + 1 {
            return Ok(());
        }
        let reserved = after.bytes_reserved - before.bytes_reserved;
        let rounded = size.div_ceil(granule) * granule;
        match reserved.checked_sub(rounded) {
            Some(extra) if extra == 0 || extra < size.min(64 << 10) + 256.min(size / 8) => Ok(()),
            _ => Err(format!(
                "{size} bytes reserved {reserved}: gaps and rests this large must stay free"
            )),
        }
    }

    /// Applies `op` to `real` and to the shadow, then checks every invariant. `foreign` is another
    /// instance whose handles `real` must refuse.
    pub fn step<A: SubAllocator, F: SubAllocator>(
        &mut self,
        real: &mut A,
        foreign: &mut F,
        op: AllocatorOp,
    ) -> Result<(), String> {
        match op {
            AllocatorOp::Allocate { .. } => {
                let (size, align) = self.request(op).expect("an allocate op");
                self.allocate(real, size, align)?;
            }
            AllocatorOp::Free { index } => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let key = *self
                    .live
                    .keys()
                    .nth(usize::from(index) % self.live.len())
                    .expect("index is below len");
                let range = self.live.remove(&key).expect("key was just read");
                real.check_live(&range.raw)
                    .map_err(|e| format!("check_live of live {:?} refused: {e}", range.raw))?;
                real.free(Allocation::from_raw(range.raw))
                    .map_err(|e| format!("free of live {:?} refused: {e}", range.raw))?;
                self.total_frees += 1;
                self.dead.push(range.raw);
            }
            AllocatorOp::DoubleFree { index } => {
                if self.dead.is_empty() {
                    return Ok(());
                }
                let raw = self.dead[usize::from(index) % self.dead.len()];
                let before = real.stats();
                let checked = real.check_live(&raw);
                match real.free(Allocation::from_raw(raw)) {
                    Err(e @ (FreeError::DoubleFree | FreeError::StaleAllocation))
                        if checked == Err(e) => {}
                    other => {
                        return Err(format!(
                            "replayed free of {raw:?} gave {other:?}, check_live {checked:?}"
                        ));
                    }
                }
                if real.stats() != before {
                    return Err("a refused free changed the statistics".into());
                }
            }
            AllocatorOp::ForeignFree => {
                if let Ok(a) = foreign.allocate(1, 1) {
                    let raw = *a.raw();
                    let before = real.stats();
                    let checked = real.check_live(&raw);
                    match real.free(Allocation::from_raw(raw)) {
                        Err(FreeError::ForeignAllocation)
                            if checked == Err(FreeError::ForeignAllocation) => {}
                        other => {
                            return Err(format!(
                                "foreign free gave {other:?}, check_live {checked:?}"
                            ));
                        }
                    }
                    if real.stats() != before {
                        return Err("a refused foreign free changed the statistics".into());
                    }
                    foreign
                        .free(a)
                        .map_err(|e| format!("foreign allocator: {e}"))?;
                }
            }
            AllocatorOp::Reset => {
                real.reset();
                self.dead.extend(self.live.values().map(|r| r.raw));
                self.live.clear();
                self.total_allocations = 0;
                self.total_frees = 0;
            }
        }
        self.check(real)
    }

    fn allocate<A: SubAllocator>(
        &mut self,
        real: &mut A,
        size: u64,
        align: u64,
    ) -> Result<(), String> {
        match real.allocate(size, align) {
            Ok(a) => {
                let raw = a.into_raw();
                if size == 0 {
                    return Err(format!("size 0 was granted: {raw:?}"));
                }
                if raw.size != size {
                    return Err(format!("asked {size} bytes, handle says {}", raw.size));
                }
                if raw.offset % align != 0 {
                    return Err(format!("offset {} breaks alignment {align}", raw.offset));
                }
                let end = raw
                    .offset
                    .checked_add(size)
                    .ok_or("offset + size overflows")?;
                if end > self.capacity {
                    return Err(format!(
                        "[{}, {end}) is outside capacity {}",
                        raw.offset, self.capacity
                    ));
                }
                if let Some((&o, r)) = self.live.range(..end).next_back()
                    && r.end > raw.offset
                {
                    return Err(format!(
                        "[{}, {end}) overlaps live [{o}, {})",
                        raw.offset, r.end
                    ));
                }
                self.live.insert(raw.offset, ShadowRange { end, size, raw });
                self.total_allocations += 1;
                Ok(())
            }
            Err(AllocError::ZeroSize) if size == 0 => Ok(()),
            Err(AllocError::SizeOverCapacity { .. }) if size > self.capacity => Ok(()),
            Err(AllocError::SizeOverCapacity { requested, .. }) if requested > self.capacity => {
                Ok(())
            }
            Err(AllocError::OutOfMemory | AllocError::MetadataExhausted) if size > 0 => {
                if self.live.is_empty() && size <= real.stats().largest_free_run && align == 1 {
                    return Err(format!(
                        "empty allocator refused {size} bytes though its largest free run is {}",
                        real.stats().largest_free_run
                    ));
                }
                Ok(())
            }
            Err(e) => Err(format!("allocate({size}, {align}) gave unexpected {e:?}")),
        }
    }

    /// Checks the statistics against the shadow.
    pub fn check<A: SubAllocator>(&self, real: &A) -> Result<(), String> {
        let s = real.stats();
        let requested: u64 = self.live.values().map(|r| r.size).sum();
        let mut problems = String::new();
        if s.live_allocations != self.live.len() as u64 {
            let _ = write!(
                problems,
                "live {} vs shadow {}; ",
                s.live_allocations,
                self.live.len()
            );
        }
        if s.bytes_requested != requested {
            let _ = write!(
                problems,
                "requested {} vs shadow {requested}; ",
                s.bytes_requested
            );
        }
        if s.bytes_reserved < requested || s.bytes_reserved > s.capacity {
            let _ = write!(
                problems,
                "reserved {} outside [{requested}, capacity]; ",
                s.bytes_reserved
            );
        }
        if s.peak_bytes_reserved < s.bytes_reserved {
            let _ = write!(
                problems,
                "peak {} below reserved {}; ",
                s.peak_bytes_reserved, s.bytes_reserved
            );
        }
        if s.total_allocations != self.total_allocations || s.total_frees != self.total_frees {
            let _ = write!(
                problems,
                "totals {}/{} vs shadow {}/{}; ",
                s.total_allocations, s.total_frees, self.total_allocations, self.total_frees
            );
        }
        if s.capacity != self.capacity || real.capacity() != self.capacity {
            let _ = write!(problems, "capacity {} vs {}; ", s.capacity, self.capacity);
        }
        if s.largest_free_run > s.capacity - s.bytes_reserved {
            let _ = write!(
                problems,
                "largest free run {} beyond free bytes; ",
                s.largest_free_run
            );
        }
        self.check_visit_live(real, &s, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// [`SubAllocator::visit_live`] against the shadow: one range per live allocation, holding
    /// its range with its size and starting at most its slack below it, none overlapping, inside
    /// the capacity, the reserved and requested sums equal to the statistics.
    fn check_visit_live<A: SubAllocator>(
        &self,
        real: &A,
        s: &AllocatorStats,
        problems: &mut String,
    ) {
        let mut ranges = Vec::with_capacity(self.live.len());
        real.visit_live(&mut |r| ranges.push(r));
        ranges.sort_unstable_by_key(|r| r.offset);
        if ranges.len() != self.live.len() {
            let _ = write!(
                problems,
                "visit_live gave {} ranges for {} live; ",
                ranges.len(),
                self.live.len()
            );
            return;
        }
        // Sorted by offset, the reserved ranges pair up with the shadow's (sorted too): each
        // holds its allocation and they do not overlap.
        for (r, (&offset, shadow)) in ranges.iter().zip(&self.live) {
            let holds = r.offset <= offset
                && offset - r.offset <= r.reserved.saturating_sub(r.requested)
                && r.offset
                    .checked_add(r.reserved)
                    .is_some_and(|end| end >= shadow.end && end <= self.capacity);
            if !holds || r.requested != shadow.size {
                let _ = write!(
                    problems,
                    "visit_live range {r:?} does not hold live [{offset}, {}); ",
                    shadow.end
                );
            }
        }
        if let Some(pair) = ranges
            .windows(2)
            .find(|p| p[0].offset + p[0].reserved > p[1].offset)
        {
            let _ = write!(problems, "visit_live ranges {pair:?} overlap; ");
        }
        let reserved: u64 = ranges.iter().map(|r| r.reserved).sum();
        let requested: u64 = ranges.iter().map(|r| r.requested).sum();
        if reserved != s.bytes_reserved || requested != s.bytes_requested {
            let _ = write!(
                problems,
                "visit_live sums {reserved}/{requested} vs stats {}/{}; ",
                s.bytes_reserved, s.bytes_requested
            );
        }
    }

    /// Frees every live allocation, then checks the whole capacity comes back in one piece.
    pub fn drain_and_check_whole<A: SubAllocator>(&mut self, real: &mut A) -> Result<(), String> {
        while !self.live.is_empty() {
            let (_, r) = self.live.pop_first().expect("not empty");
            real.free(Allocation::from_raw(r.raw))
                .map_err(|e| format!("drain free refused: {e}"))?;
            self.total_frees += 1;
        }
        self.check(real)?;
        let s = real.stats();
        if s.bytes_reserved != 0 || s.largest_free_run != self.capacity {
            return Err(format!(
                "after freeing everything: reserved {}, largest free run {} of {}",
                s.bytes_reserved, s.largest_free_run, self.capacity
            ));
        }
        let whole = real
            .allocate(self.capacity, 1)
            .map_err(|e| format!("whole capacity not allocatable after drain: {e}"))?;
        if whole.offset() != 0 {
            return Err(format!(
                "whole-capacity allocation at offset {}",
                whole.offset()
            ));
        }
        real.free(whole)
            .map_err(|e| format!("freeing the whole capacity: {e}"))?;
        Ok(())
    }
}

/// [`SubAllocator::check_live`]'s contract on one allocator: it accepts exactly the handles `free`
/// would (live ones), refuses forged, freed, reused, foreign and pre-`reset` handles with the error
/// `free` would give, and changes nothing. `real` must be empty with room for two allocations of
/// 256 bytes at alignment 64; `other` is another instance.
pub fn check_live_contract<A: SubAllocator, B: SubAllocator>(
    real: &mut A,
    other: &B,
) -> Result<(), String> {
    let fail = |what: &str, got: Result<(), FreeError>| format!("check_live of {what}: {got:?}");
    let keep = real.allocate(100, 16).map_err(|e| e.to_string())?;
    let a = real.allocate(200, 64).map_err(|e| e.to_string())?;
    let raw = *a.raw();
    let before = real.stats();
    for (what, handle) in [("a live handle", raw), ("another live handle", *keep.raw())] {
        real.check_live(&handle).map_err(|e| fail(what, Err(e)))?;
    }
    // A forged size, offset, tag or slot names a range the handle does not own.
    let forged = [
        RawAllocation {
            size: raw.size + 1,
            ..raw
        },
        RawAllocation {
            size: raw.size + 4096,
            ..raw
        },
        RawAllocation {
            offset: raw.offset + 16,
            ..raw
        },
        RawAllocation {
            tag: raw.tag.wrapping_add(1),
            ..raw
        },
        RawAllocation {
            slot: u32::MAX,
            ..raw
        },
    ];
    for handle in forged {
        let got = real.check_live(&handle);
        if got != Err(FreeError::DoubleFree) {
            return Err(fail(&format!("forged {handle:?}"), got));
        }
    }
    let got = other.check_live(&raw);
    if got != Err(FreeError::ForeignAllocation) {
        return Err(fail("another instance's handle", got));
    }
    if real.stats() != before {
        return Err("check_live changed the statistics".into());
    }
    // Freed, then its range taken by another allocation.
    real.free(a).map_err(|e| e.to_string())?;
    let got = real.check_live(&raw);
    if got != Err(FreeError::DoubleFree) {
        return Err(fail("a freed handle", got));
    }
    let b = real.allocate(200, 64).map_err(|e| e.to_string())?;
    if b.offset() != raw.offset {
        return Err(format!(
            "the freed range was not reused: {} then {}",
            raw.offset,
            b.offset()
        ));
    }
    let got = real.check_live(&raw);
    if got != Err(FreeError::DoubleFree) {
        return Err(fail("a freed handle whose range has a new owner", got));
    }
    real.check_live(b.raw())
        .map_err(|e| fail("the new owner", Err(e)))?;
    let raw_b = b.into_raw();
    let _ = keep.into_raw();
    real.reset();
    let got = real.check_live(&raw_b);
    if got != Err(FreeError::StaleAllocation) {
        return Err(fail("a handle from before reset()", got));
    }
    Ok(())
}
