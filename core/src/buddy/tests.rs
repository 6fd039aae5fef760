use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use super::*;

const KIB: u64 = 1024;

/// A config and a heap storage of exactly the size it needs.
fn buddy(capacity: u64, min_block: u64, max_allocations: u32) -> BuddyAllocator<Vec<u64>> {
    let config =
        BuddyConfig::new(capacity, min_block, max_allocations).with_tail_precision_log2(32);
    let len = config.try_storage_len().expect("valid config");
    BuddyAllocator::new(config, vec![0xdead_beef_u64; len]).expect("valid config")
}

fn check<S: AsRef<[u64]> + AsMut<[u64]>>(b: &BuddyAllocator<S>) {
    if let Err(e) = b.check_invariants() {
        panic!("invariant broken: {e}");
    }
}

#[test]
fn config_errors_are_typed() {
    let cases = [
        (BuddyConfig::new(0, 256, 4), ConfigError::ZeroCapacity),
        (BuddyConfig::new(4096, 0, 4), ConfigError::NotPowerOfTwo),
        (BuddyConfig::new(4096, 48, 4), ConfigError::NotPowerOfTwo),
        (
            BuddyConfig::new(4096 + 16, 256, 4),
            ConfigError::CapacityNotMultipleOfGranule { granule: 256 },
        ),
        (
            BuddyConfig::new((1 << 32) * 2, 1, 4),
            ConfigError::CapacityTooLarge { max: 1 << 32 },
        ),
        (
            BuddyConfig::new(4096, 256, 0),
            ConfigError::InvalidParameter,
        ),
        (
            BuddyConfig::new(4096, 256, u32::MAX),
            ConfigError::InvalidParameter,
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(config.try_storage_len(), Err(expected), "{config:?}");
        assert_eq!(config.storage_len(), 0);
        let err = BuddyAllocator::new(config, vec![0u64; 64]).expect_err("invalid config");
        assert_eq!(err, expected);
    }
    let config = BuddyConfig::new(1 << 20, 256, 16);
    let need = config.storage_len();
    assert!(need > 0);
    let err = BuddyAllocator::new(config, vec![0u64; need - 1]).expect_err("too small");
    assert_eq!(
        err,
        ConfigError::StorageTooSmall {
            required: need,
            provided: need - 1
        }
    );
    // Exactly the size needed is enough; more is fine and left alone.
    let mut bigger = vec![7u64; need + 3];
    BuddyAllocator::new(config, &mut bigger[..]).expect("large enough");
    assert_eq!(&bigger[need..], &[7, 7, 7]);
}

#[test]
fn allocation_errors_are_typed_and_change_nothing() {
    let mut b = buddy(64 * KIB, 256, 2);
    let before = b.stats();
    assert_eq!(b.allocate(0, 1), Err(AllocError::ZeroSize));
    assert_eq!(b.allocate(16, 3), Err(AllocError::AlignmentNotPowerOfTwo));
    assert_eq!(b.allocate(16, 0), Err(AllocError::AlignmentNotPowerOfTwo));
    assert_eq!(
        b.allocate(64 * KIB + 1, 1),
        Err(AllocError::SizeOverCapacity {
            requested: 64 * KIB + 1,
            capacity: 64 * KIB
        })
    );
    assert_eq!(
        b.allocate(u64::MAX, 1),
        Err(AllocError::SizeOverCapacity {
            requested: u64::MAX,
            capacity: 64 * KIB
        })
    );
    assert_eq!(b.stats(), before);
    let whole = b.allocate(64 * KIB, 1).expect("whole");
    assert_eq!(b.allocate(1, 1), Err(AllocError::OutOfMemory));
    b.free(whole).expect("free");
    let x = b.allocate(1, 1).expect("one");
    let y = b.allocate(1, 1).expect("two");
    let stats = b.stats();
    assert_eq!(b.allocate(1, 1), Err(AllocError::MetadataExhausted));
    assert_eq!(b.stats(), stats);
    check(&b);
    b.free(x).expect("free");
    let z = b.allocate(1, 1).expect("slot came back");
    b.free(y).expect("free");
    b.free(z).expect("free");
    check(&b);
}

#[test]
fn double_free_and_stale_handle_are_refused() {
    let mut b = buddy(64 * KIB, 256, 8);
    let a = b.allocate(1000, 1).expect("a");
    let raw = a.into_raw();
    b.free(Allocation::from_raw(raw)).expect("first free");
    let stats = b.stats();
    assert_eq!(
        b.free(Allocation::from_raw(raw)),
        Err(FreeError::DoubleFree)
    );
    assert_eq!(b.stats(), stats);
    // Someone else now owns the same slot and the same range.
    let c = b.allocate(1000, 1).expect("c");
    assert_eq!((c.offset(), c.raw().slot), (raw.offset, raw.slot));
    let stats = b.stats();
    assert_eq!(
        b.free(Allocation::from_raw(raw)),
        Err(FreeError::DoubleFree)
    );
    assert_eq!(b.stats(), stats);
    check(&b);
    // Forged handles: wrong size, wrong offset, slot out of range.
    let craw = *c.raw();
    for forged in [
        RawAllocation { size: 999, ..craw },
        RawAllocation {
            offset: 256,
            ..craw
        },
        RawAllocation { slot: 7, ..craw },
        RawAllocation {
            slot: u32::MAX,
            ..craw
        },
        RawAllocation {
            tag: craw.tag.wrapping_add(1),
            ..craw
        },
    ] {
        assert_eq!(
            b.free(Allocation::from_raw(forged)),
            Err(FreeError::DoubleFree)
        );
    }
    assert_eq!(b.stats(), stats);
    b.free(c).expect("the real owner frees");
    check(&b);
}

#[test]
fn foreign_and_pre_reset_handles_are_refused() {
    let mut b = buddy(64 * KIB, 256, 8);
    let mut other = buddy(64 * KIB, 256, 8);
    assert_ne!(b.id(), other.id());
    let foreign = other.allocate(100, 1).expect("foreign");
    let stats = b.stats();
    assert_eq!(
        b.free(Allocation::from_raw(*foreign.raw())),
        Err(FreeError::ForeignAllocation)
    );
    assert_eq!(b.stats(), stats);
    other.free(foreign).expect("owner frees");

    let old = b.allocate(100, 1).expect("old");
    let old_raw = *old.raw();
    b.reset();
    assert_eq!(b.epoch(), 1);
    assert_eq!(b.stats().live_allocations, 0);
    assert_eq!(b.stats().largest_free_run, 64 * KIB);
    let new = b.allocate(100, 1).expect("new");
    // Same slot, same tag, same range: only the epoch tells them apart.
    assert_eq!(
        (new.offset(), new.raw().slot, new.raw().tag),
        (old_raw.offset, old_raw.slot, old_raw.tag)
    );
    assert_eq!(b.free(old), Err(FreeError::StaleAllocation));
    assert_eq!(b.stats().live_allocations, 1);
    b.free(new).expect("new frees");
    check(&b);
}

#[test]
fn tail_is_given_back_and_merges_to_whole() {
    let mut b = buddy(64 * KIB, 256, 16);
    // 5 units in an 8-unit block: 3 units come back as a 1-unit and a 2-unit buddy.
    let a = b.allocate(5 * 256 - 10, 1).expect("a");
    assert_eq!(a.offset(), 0);
    let s = b.stats();
    assert_eq!(s.bytes_requested, 5 * 256 - 10);
    assert_eq!(s.bytes_reserved, 5 * 256);
    check(&b);
    // The tail is reusable right away: the next 1-unit and 2-unit requests land in it.
    let one = b.allocate(256, 1).expect("one");
    assert_eq!(one.offset(), 5 * 256);
    let two = b.allocate(512, 1).expect("two");
    assert_eq!(two.offset(), 6 * 256);
    let three = b.allocate(256, 1).expect("three");
    assert_eq!(three.offset(), 8 * 256);
    check(&b);
    for x in [two, a, three, one] {
        b.free(x).expect("free");
        check(&b);
    }
    let s = b.stats();
    assert_eq!((s.bytes_reserved, s.live_allocations), (0, 0));
    assert_eq!(s.largest_free_run, 64 * KIB);
    assert!(s.merges > 0 && s.splits > 0);
    let whole = b.allocate(64 * KIB, 1).expect("whole again");
    assert_eq!(whole.offset(), 0);
    b.free(whole).expect("free");
}

#[test]
fn reserved_is_size_rounded_to_min_block() {
    let mut b = buddy(1 << 20, 256, 64);
    let mut held = Vec::new();
    let mut requested = 0;
    let mut reserved = 0;
    for size in [1u64, 255, 256, 257, 3000, 4097, 30_000, 65_537, 100_000] {
        let a = b.allocate(size, 1).expect("fits");
        requested += size;
        reserved += size.div_ceil(256) * 256;
        held.push(a);
        check(&b);
    }
    let s = b.stats();
    assert_eq!((s.bytes_requested, s.bytes_reserved), (requested, reserved));
    assert_eq!(s.peak_bytes_reserved, reserved);
    for a in held {
        b.free(a).expect("free");
    }
    assert_eq!(b.stats().largest_free_run, 1 << 20);
    check(&b);
}

#[test]
fn default_precision_keeps_back_at_most_a_32nd_of_the_class() {
    let config = BuddyConfig::new(1 << 30, 16, 1024);
    assert_eq!(config.tail_precision_log2, DEFAULT_TAIL_PRECISION_LOG2);
    let mut b = BuddyAllocator::new(config, vec![0u64; config.storage_len()]).expect("valid");
    let mut seed = 7u64;
    let (mut requested, mut held) = (0u64, Vec::new());
    let count = if cfg!(miri) { 20 } else { 600 };
    for _ in 0..count {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = 1 + (seed >> 33) % (1 << (8 + (seed >> 20) % 14));
        let before = b.stats().bytes_reserved;
        let a = b.allocate(size, 1).expect("fits");
        let reserved = b.stats().bytes_reserved - before;
        let class = size.div_ceil(16).next_power_of_two() * 16;
        assert!(reserved >= size && reserved < size.div_ceil(16) * 16 + class / 32 + 16);
        requested += size;
        held.push(a);
    }
    let s = b.stats();
    assert_eq!(s.bytes_requested, requested);
    assert!(
        s.bytes_reserved * 100 <= requested * 105,
        "{} reserved for {requested}",
        s.bytes_reserved
    );
    if cfg!(not(miri)) {
        check(&b);
    }
    for a in held {
        b.free(a).expect("free");
    }
    assert_eq!(b.stats().largest_free_run, 1 << 30);
    // Exact sizes on request.
    let exact = config.with_tail_precision_log2(32);
    let mut b = BuddyAllocator::new(exact, vec![0u64; exact.storage_len()]).expect("valid");
    let a = b.allocate(1_000_001, 1).expect("fits");
    assert_eq!(b.stats().bytes_reserved, 1_000_001u64.div_ceil(16) * 16);
    b.free(a).expect("free");
}

#[test]
fn alignment_is_honoured_without_waste() {
    let mut b = buddy(1 << 20, 256, 64);
    let small = b.allocate(256, 1).expect("small");
    let aligned = b.allocate(1000, 64 * KIB).expect("aligned");
    assert_eq!(aligned.offset() % (64 * KIB), 0);
    assert_eq!(b.stats().bytes_reserved, 256 + 1024);
    // Alignment below the unit is met by every offset.
    let tiny = b.allocate(10, 16).expect("tiny");
    assert_eq!(tiny.offset() % 256, 0);
    // An alignment past the capacity can only be met at offset 0: a free block must start there.
    assert_eq!(b.allocate(10, 1 << 40), Err(AllocError::OutOfMemory));
    b.free(small).expect("free");
    let huge_align = b.allocate(10, 1 << 40).expect("offset 0");
    assert_eq!(huge_align.offset(), 0);
    check(&b);
    b.free(tiny).expect("free");
    b.free(huge_align).expect("free");
    b.free(aligned).expect("free");
    check(&b);
}

#[test]
fn non_power_of_two_capacity() {
    // 12 units: free blocks of 8 at 0 and 4 at 8.
    let mut b = buddy(12 * 256, 256, 16);
    assert_eq!(b.stats().largest_free_run, 12 * 256);
    check(&b);
    let big = b.allocate(10 * 256, 1).expect("spans the top blocks");
    assert_eq!(big.offset(), 0);
    assert_eq!(b.stats().bytes_reserved, 10 * 256);
    assert_eq!(b.stats().largest_free_run, 2 * 256);
    check(&b);
    let rest = b.allocate(2 * 256, 1).expect("the tail");
    assert_eq!(rest.offset(), 10 * 256);
    assert_eq!(b.allocate(1, 1), Err(AllocError::OutOfMemory));
    b.free(big).expect("free");
    check(&b);
    b.free(rest).expect("free");
    check(&b);
    let whole = b.allocate(12 * 256, 1).expect("whole");
    b.free(whole).expect("free");

    // The smallest block that fits is used, so one unit goes to the second top block; that hole
    // stops a run across the top blocks from reaching past the first.
    let x = b.allocate(256, 1).expect("x");
    assert_eq!(x.offset(), 8 * 256);
    assert_eq!(b.stats().largest_free_run, 8 * 256);
    assert_eq!(b.allocate(9 * 256, 1), Err(AllocError::OutOfMemory));
    let y = b.allocate(4 * 256, 4 * 256).expect("y");
    assert_eq!(y.offset(), 0);
    assert_eq!(b.stats().largest_free_run, 4 * 256);
    check(&b);
    b.free(x).expect("free");
    b.free(y).expect("free");
    check(&b);

    // An odd unit count: 7 = 4 + 2 + 1.
    let mut odd = buddy(7 * 512, 512, 8);
    let a = odd.allocate(6 * 512, 1).expect("6 of 7");
    let c = odd.allocate(512, 1).expect("last");
    assert_eq!((a.offset(), c.offset()), (0, 6 * 512));
    check(&odd);
    odd.free(a).expect("free");
    odd.free(c).expect("free");
    assert_eq!(odd.stats().largest_free_run, 7 * 512);
    check(&odd);
}

#[test]
fn capacity_of_2_pow_40() {
    // 2^40 bytes in 1 MiB units: 2^20 units, a few tens of thousands of words.
    let config = BuddyConfig::new(1 << 40, 1 << 20, 64);
    let len = config.storage_len();
    assert!(len < 80_000, "metadata words: {len}");
    let mut b = BuddyAllocator::new(config, vec![0u64; len].into_boxed_slice()).expect("valid");
    let big = b.allocate((1 << 39) + 1, 1).expect("half plus one");
    assert_eq!(big.offset(), 0);
    // The default precision keeps back at most 1/32 of the 2^40 class.
    assert_eq!(b.stats().bytes_reserved, (1 << 39) + (1 << 35));
    let far = b.allocate(1 << 38, 1 << 38).expect("far");
    assert_eq!(far.offset(), 3 << 38);
    let last = b.allocate(1 << 20, 1).expect("last");
    assert!(last.offset() + (1 << 20) <= 1 << 40);
    if cfg!(not(miri)) {
        check(&b);
    }
    for a in [big, far, last] {
        b.free(a).expect("free");
    }
    assert_eq!(b.stats().largest_free_run, 1 << 40);
    let whole = b.allocate(1 << 40, 1).expect("whole");
    assert_eq!(whole.size(), 1 << 40);
    b.free(whole).expect("free");
    // And the largest supported: 2^32 units.
    let config = BuddyConfig::new(1 << 44, 1 << 12, 4);
    assert!(config.try_storage_len().is_ok());
}

#[test]
fn array_slice_vec_and_box_storage() {
    const CONFIG: BuddyConfig = BuddyConfig::new(32 * KIB, 256, 8);
    const WORDS: usize = CONFIG.storage_len();
    const _: () = assert!(WORDS > 0);
    // A const-generic array.
    let mut in_array = BuddyAllocator::new(CONFIG, [0u64; WORDS]).expect("array");
    // A borrowed slice.
    let mut backing = [0u64; WORDS];
    let mut in_slice = BuddyAllocator::new(CONFIG, &mut backing[..]).expect("slice");
    // Heap storage for std users.
    let mut in_vec = BuddyAllocator::new(CONFIG, vec![0u64; WORDS]).expect("vec");
    let mut in_box =
        BuddyAllocator::new(CONFIG, vec![0u64; WORDS].into_boxed_slice()).expect("box");
    let mut offsets = Vec::new();
    fn run(b: &mut impl SubAllocator) -> Vec<u64> {
        let a = b.allocate(3000, 1).expect("a");
        let c = b.allocate(100, 1024).expect("c");
        let out = std::vec![a.offset(), c.offset(), b.stats().bytes_reserved];
        b.free(a).expect("free");
        b.free(c).expect("free");
        out
    }
    offsets.push(run(&mut in_array));
    offsets.push(run(&mut in_slice));
    offsets.push(run(&mut in_vec));
    offsets.push(run(&mut in_box));
    assert!(offsets.iter().all(|o| *o == offsets[0]), "{offsets:?}");
    check(&in_array);
    check(&in_slice);
    let _: &mut [u64] = in_slice.into_storage();
    assert!(
        backing.iter().any(|&w| w != 0),
        "metadata lives in the borrowed slice"
    );
    let _: Box<[u64]> = in_box.into_storage();
}

#[test]
fn storage_len_is_const_and_scales_with_units() {
    const SMALL: usize = BuddyConfig::new(1 << 20, 4096, 16).storage_len();
    const LARGE: usize = BuddyConfig::new(1 << 30, 4096, 16).storage_len();
    let _array: [u64; SMALL] = [0; SMALL];
    const _: () = assert!(LARGE > SMALL * 100);
    // About units / 32 words of bitmaps plus two words per slot.
    let units = (1u64 << 30) / 4096;
    assert!((LARGE as u64) < units / 32 + units / 400 + 200, "{LARGE}");
}

#[test]
fn stats_count_splits_merges_and_peaks() {
    let mut b = buddy(16 * 256, 256, 16);
    let a = b.allocate(256, 1).expect("a");
    // 16 -> 8 -> 4 -> 2 -> 1: four splits.
    assert_eq!(b.stats().splits, 4);
    let c = b.allocate(3 * 256, 1).expect("c");
    let s = b.stats();
    assert_eq!((s.live_allocations, s.peak_live_allocations), (2, 2));
    assert_eq!(s.total_allocations, 2);
    b.free(a).expect("free");
    b.free(c).expect("free");
    let s = b.stats();
    assert_eq!(
        (s.total_frees, s.live_allocations, s.peak_live_allocations),
        (2, 0, 2)
    );
    assert_eq!(s.peak_bytes_reserved, 4 * 256);
    assert_eq!(s.merges, s.splits, "everything merged back");
    b.reset();
    assert_eq!(b.stats().peak_live_allocations, 0);
    assert_eq!(b.stats().splits, 0);
}

/// A small deterministic churn with interleaved frees, checking invariants at every step.
#[test]
fn churn_keeps_invariants() {
    let mut b = buddy(37 * 256, 256, 24);
    let mut live: Vec<Allocation> = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let steps = if cfg!(miri) { 150 } else { 3000 };
    for _ in 0..steps {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if seed.is_multiple_of(3) && !live.is_empty() {
            let i = (seed >> 8) as usize % live.len();
            b.free(live.swap_remove(i)).expect("free live");
        } else {
            let size = 1 + (seed >> 20) % (6 * 256);
            let align = 1u64 << ((seed >> 40) % 12);
            match b.allocate(size, align) {
                Ok(a) => {
                    assert_eq!(a.offset() % align.min(32 * 256), 0);
                    live.push(a);
                }
                Err(AllocError::OutOfMemory | AllocError::MetadataExhausted) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        check(&b);
    }
    for a in live {
        b.free(a).expect("drain");
    }
    check(&b);
    assert_eq!(b.stats().largest_free_run, 37 * 256);
}

#[test]
fn errors_display() {
    let text = std::format!(
        "{}",
        ConfigError::CapacityNotMultipleOfGranule { granule: 256 }
    );
    assert!(text.contains("256"));
}

#[test]
fn invariant_checker_catches_corruption() {
    let mut b = buddy(16 * 256, 256, 8);
    let a = b.allocate(3 * 256, 1).expect("a");
    check(&b);
    // Mark unit 0 (inside the live allocation) free at order 0.
    let word = b.core.layout.layer_base[0][0] as usize;
    b.storage[word] |= 1;
    assert!(b.check_invariants().is_err());
    b.storage[word] &= !1;
    check(&b);
    // A counter that disagrees with the slot table.
    b.core.live += 1;
    assert_eq!(
        b.check_invariants(),
        Err("counters disagree with the slot table")
    );
    b.core.live -= 1;
    // A summary bit with no free block below it (order 0 of 16 units has one word per layer,
    // so corrupt a free bit past the capacity instead).
    let word = b.core.layout.layer_base[2][0] as usize;
    b.storage[word] ^= 1 << 4;
    assert_eq!(b.check_invariants(), Err("free block past the capacity"));
    b.storage[word] ^= 1 << 4;
    check(&b);
    // A first-word hint past the lowest free block of its order (order 3 has one in word 0).
    b.core.first_word[3] = 1;
    assert_eq!(
        b.check_invariants(),
        Err("first-word hint is past the lowest free block")
    );
    b.core.first_word[3] = 0;
    check(&b);
    // The order mask naming an order with nothing free.
    b.core.nonempty ^= 1;
    assert_eq!(
        b.check_invariants(),
        Err("order mask disagrees with the bitmap")
    );
    b.core.nonempty ^= 1;
    check(&b);
    b.free(a).expect("free");
}

/// Every live range `visit_live` reports, sorted by offset.
fn live_ranges(b: &impl SubAllocator) -> Vec<crate::suballocator::LiveRange> {
    let mut ranges = Vec::new();
    b.visit_live(&mut |r| ranges.push(r));
    ranges.sort_unstable_by_key(|r| r.offset);
    ranges
}

/// `visit_live` against the handles still held: one range per handle, starting at its offset
/// with its size, none overlapping, summing to the statistics.
fn check_visit_live<S: AsRef<[u64]> + AsMut<[u64]>>(b: &BuddyAllocator<S>, held: &[Allocation]) {
    let ranges = live_ranges(b);
    let mut handles: Vec<_> = held.iter().map(|a| (a.offset(), a.size())).collect();
    handles.sort_unstable();
    assert_eq!(ranges.len(), handles.len(), "{ranges:?} vs {handles:?}");
    for (r, &(offset, size)) in ranges.iter().zip(&handles) {
        assert_eq!((r.offset, r.requested), (offset, size), "{r:?}");
        assert!(r.reserved >= size && r.end() <= b.capacity(), "{r:?}");
    }
    for pair in ranges.windows(2) {
        assert!(pair[0].end() <= pair[1].offset, "{pair:?} overlap");
    }
    let s = b.stats();
    assert_eq!(
        ranges.iter().map(|r| r.reserved).sum::<u64>(),
        s.bytes_reserved
    );
    assert_eq!(
        ranges.iter().map(|r| r.requested).sum::<u64>(),
        s.bytes_requested
    );
}

#[test]
fn visit_live_reports_every_live_range_once() {
    // The default tail precision, so reservations are rounded past the unit too.
    let config = BuddyConfig::new(1 << 20, 256, 64);
    let mut b = BuddyAllocator::new(config, vec![0u64; config.storage_len()]).unwrap();
    assert!(live_ranges(&b).is_empty());
    let mut held = Vec::new();
    for (i, &(size, align)) in [(100, 1), (5000, 4096), (70_000, 16), (1, 1), (300, 256)]
        .iter()
        .cycle()
        .take(20)
        .enumerate()
    {
        held.push(b.allocate(size + 7 * i as u64, align).unwrap());
        check(&b);
        check_visit_live(&b, &held);
    }
    let mut i = 0;
    while i < held.len() {
        b.free(held.remove(i)).unwrap();
        check_visit_live(&b, &held);
        i += 2;
    }
    // A slot reused after a free is reported once, with its new range.
    held.push(b.allocate(33_000, 1024).unwrap());
    check_visit_live(&b, &held);
    for a in held.drain(..) {
        b.free(a).unwrap();
    }
    assert!(live_ranges(&b).is_empty());
    let _ = b.allocate(4096, 1).unwrap().into_raw();
    b.reset();
    assert!(live_ranges(&b).is_empty(), "reset left ranges behind");
}

/// An alignment past the capacity is served at offset 0, from the top block itself when nothing
/// smaller is free there, and the tail it does not need is given back (and counted as splits).
#[test]
fn an_alignment_past_the_capacity_takes_the_top_block_at_zero() {
    let mut b = buddy(16 * 256, 256, 4);
    let a = b
        .allocate(256, 32 * 256)
        .expect("aligned past the capacity");
    check(&b);
    assert_eq!(a.offset(), 0);
    // 16 -> 8 -> 4 -> 2 -> 1, as for an unaligned request.
    let s = b.stats();
    assert_eq!((s.splits, s.bytes_reserved), (4, 256));
    assert_eq!(s.largest_free_run, 8 * 256);
    b.free(a).expect("free");
    check(&b);
    let s = b.stats();
    assert_eq!((s.merges, s.largest_free_run), (4, 16 * 256));
}

/// A forged handle naming the slot just past the last one handed out is refused, also when the
/// slot table is full and that slot would lie past the storage.
#[test]
fn a_handle_to_the_slot_past_the_watermark_is_refused() {
    let mut b = buddy(16 * 256, 256, 2);
    let a = b.allocate(256, 1).expect("a");
    let _c = b.allocate(256, 1).expect("c");
    let before = b.stats();
    let forged = RawAllocation {
        slot: 2,
        ..*a.raw()
    };
    assert_eq!(b.check_live(&forged), Err(FreeError::DoubleFree));
    assert_eq!(
        b.free(Allocation::from_raw(forged)),
        Err(FreeError::DoubleFree)
    );
    assert_eq!(b.stats(), before);
    check(&b);
}

/// Peaks stay at their highest value across frees and later, smaller allocations.
#[test]
fn peaks_survive_frees_and_new_allocations() {
    let mut b = buddy(16 * 256, 256, 4);
    let a = b.allocate(4 * 256, 1).expect("a");
    let c = b.allocate(256, 1).expect("c");
    b.free(a).expect("free");
    b.free(c).expect("free");
    let d = b.allocate(256, 1).expect("d");
    let s = b.stats();
    assert_eq!((s.live_allocations, s.peak_live_allocations), (1, 2));
    assert_eq!((s.bytes_reserved, s.peak_bytes_reserved), (256, 5 * 256));
    b.free(d).expect("free");
}

/// A freed block below the lowest free one moves the search hint down: the lowest free block of
/// an order is the one handed out next.
#[test]
fn a_block_freed_below_the_hint_is_handed_out_first() {
    // 256 single units: the order-0 bitmap spans four words.
    let mut b = buddy(256 * 256, 256, 256);
    let mut units: Vec<Option<Allocation>> = (0..256)
        .map(|_| Some(b.allocate(256, 1).expect("fill")))
        .collect();
    for (i, a) in units.iter().enumerate() {
        assert_eq!(a.as_ref().expect("held").offset(), i as u64 * 256);
    }
    // The search for unit 200 leaves the hint at its word (the fourth).
    b.free(units[200].take().expect("held")).expect("free");
    units[200] = Some(b.allocate(256, 1).expect("again"));
    assert_eq!(units[200].as_ref().expect("held").offset(), 200 * 256);
    // Unit 5 (first word) and unit 200 free, their buddies held: unit 5 goes first.
    b.free(units[200].take().expect("held")).expect("free");
    b.free(units[5].take().expect("held")).expect("free");
    check(&b);
    let low = b.allocate(256, 1).expect("low");
    assert_eq!(low.offset(), 5 * 256);
    let high = b.allocate(256, 1).expect("high");
    assert_eq!(high.offset(), 200 * 256);
    check(&b);
}

/// With a capacity that is not a power of two, the largest free run is the free prefix from
/// offset 0 across the top-level blocks, including a free piece of the first block not wholly
/// free, rounded down to what `allocate` serves at the default tail precision.
#[test]
fn largest_free_run_across_the_top_blocks_is_allocatable_and_exact() {
    // 127 units: blocks of 64, 32, 16, 8, 4, 2 and 1 units at 0, 64, 96, 112, 120, 124, 126.
    let config = BuddyConfig::new(127 * 256, 256, 8);
    let mut b = BuddyAllocator::new(config, vec![0; config.storage_len()]).expect("config");
    // The single unit at 126 held: the free prefix is 126 units, but a 126-unit request
    // reserves 128 (a grain of 4 units), so the largest that allocate serves is 124.
    let last = b.allocate(256, 1).expect("last unit");
    assert_eq!(last.offset(), 126 * 256);
    assert_eq!(b.stats().largest_free_run, 124 * 256);
    let probe = b.allocate(124 * 256, 1).expect("124 units");
    assert_eq!(probe.offset(), 0);
    b.free(probe).expect("free");
    assert_eq!(
        b.allocate(125 * 256, 1).err(),
        Some(AllocError::OutOfMemory)
    );
    b.free(last).expect("free");
    check(&b);
    // Units [104, 112) held, [96, 104) free: the prefix ends inside the 16-unit block at 96.
    let x = b.allocate(8 * 256, 1).expect("x");
    assert_eq!(x.offset(), 112 * 256);
    let y = b.allocate(8 * 256, 1).expect("y");
    assert_eq!(y.offset(), 96 * 256);
    let z = b.allocate(8 * 256, 1).expect("z");
    assert_eq!(z.offset(), 104 * 256);
    b.free(y).expect("free");
    check(&b);
    assert_eq!(b.stats().largest_free_run, 104 * 256);
    let probe = b.allocate(104 * 256, 1).expect("104 units");
    assert_eq!(probe.offset(), 0);
    check(&b);
    for a in [probe, x, z] {
        b.free(a).expect("free");
    }
    assert_eq!(b.stats().largest_free_run, 127 * 256);
}
