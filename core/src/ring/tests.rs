//! Unit tests of the staging ring: the offset state machine through its public API, and the
//! pointer layer (these run under Miri too, including the multi-threaded one).

use std::vec;
use std::vec::Vec;

use super::*;

fn consumer<'r, 'm, const G: usize>(
    ring: &'r StagingRing<'m, G>,
) -> RingConsumer<&'r StagingRing<'m, G>> {
    RingConsumer::new(ring).expect("first consumer")
}

fn drain_all<'m, const G: usize>(c: &mut RingConsumer<&StagingRing<'m, G>>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    while let Some(r) = c.drain() {
        out.push((r.offset(), r.len()));
    }
    out
}

#[test]
fn grants_are_contiguous_and_drain_in_order_with_their_bytes() {
    let mut buf = [0u8; 64];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let mut a = ring.grant(10, 1).unwrap();
    let mut b = ring.grant(6, 4).unwrap();
    assert_eq!((a.offset(), a.len()), (0, 10));
    assert_eq!((b.offset(), b.len()), (12, 6));
    a.bytes_mut().fill(0xaa);
    b.bytes_mut().fill(0xbb);
    b.commit_all();
    // `a` is earlier and uncommitted: nothing is ready yet.
    assert_eq!(c.drain(), None);
    a.commit(7).unwrap();
    let first = c.drain().unwrap();
    let second = c.drain().unwrap();
    assert_eq!((first.offset(), first.len()), (0, 7));
    assert_eq!((second.offset(), second.len()), (12, 6));
    assert_eq!(c.bytes(&first).unwrap(), &[0xaa; 7]);
    assert_eq!(c.bytes(&second).unwrap(), &[0xbb; 6]);
    assert_eq!(c.drain(), None);
    let stats = ring.stats();
    assert_eq!(stats.bytes_in_flight, 18);
    assert_eq!(stats.alignment_padding_bytes, 2);
    assert_eq!(stats.drained_bytes, 13);
}

#[test]
fn a_dropped_grant_is_passed_over_and_its_space_comes_back() {
    let mut buf = [0u8; 32];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let dropped = ring.grant(8, 1).unwrap();
    let kept = ring.grant(8, 1).unwrap();
    kept.write_and_commit(&[1; 8]).unwrap();
    assert_eq!(c.drain(), None, "the dropped grant is still live");
    drop(dropped);
    assert_eq!(drain_all(&mut c), vec![(8, 8)]);
    assert_eq!(ring.stats().dropped_grants, 1);
    // The dropped grant's space came back as soon as it was passed over.
    assert_eq!(ring.stats().bytes_in_flight, 8);
    c.mark(FenceValue::new(1)).unwrap();
    assert_eq!(c.release_completed(FenceValue::new(1)), 8);
    // Empty again, and restarted at offset 0: the whole capacity fits in one grant.
    let all = ring.grant(32, 1).unwrap();
    assert_eq!(all.offset(), 0);
    all.commit_all();
}

#[test]
fn only_dropped_grants_come_back_without_a_mark() {
    let mut buf = [0u8; 16];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    drop(ring.grant(12, 1).unwrap());
    assert_eq!(ring.stats().bytes_in_flight, 12);
    assert_eq!(c.drain(), None);
    assert_eq!(ring.stats().bytes_in_flight, 0);
    assert_eq!(ring.grant(16, 1).unwrap().offset(), 0);
}

#[test]
fn a_full_ring_says_which_value_makes_room() {
    let mut buf = [0u8; 32];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    ring.grant(10, 1).unwrap().commit_all();
    assert!(c.drain().is_some());
    c.mark(FenceValue::new(5)).unwrap();
    ring.grant(10, 1).unwrap().commit_all();
    assert!(c.drain().is_some());
    c.mark(FenceValue::new(7)).unwrap();
    ring.grant(10, 1).unwrap().commit_all();
    // 30 of 32 bytes in flight; a new grant wraps, skipping the last 2. 8 bytes need the first
    // submission (value 5) back; 20 need both.
    assert_eq!(
        ring.grant(8, 1).unwrap_err(),
        GrantError::Full {
            wait_for: Some(FenceValue::new(5))
        }
    );
    assert_eq!(
        ring.grant(20, 1).unwrap_err(),
        GrantError::Full {
            wait_for: Some(FenceValue::new(7))
        }
    );
    // 31 bytes need the third grant back too, which is not even drained: nothing to wait for yet.
    assert_eq!(
        ring.grant(31, 1).unwrap_err(),
        GrantError::Full { wait_for: None }
    );
    assert_eq!(ring.stats().failed_grants, 3);
    // Value 4 completing frees nothing; 5 frees the first 10 bytes, and a 10-byte grant wraps.
    assert_eq!(c.release_completed(FenceValue::new(4)), 0);
    assert_eq!(c.release_completed(FenceValue::new(5)), 10);
    let wrapped = ring.grant(10, 1).unwrap();
    assert_eq!(wrapped.offset(), 0);
    wrapped.commit_all();
    assert_eq!(drain_all(&mut c), vec![(20, 10), (0, 10)]);
    let stats = ring.stats();
    assert_eq!(stats.wasted_wrap_bytes, 2);
    // A wrap because the grant did not fit: not early. The grants reached the 30th byte.
    assert_eq!((stats.early_wraps, stats.early_wrap_bytes), (0, 0));
    assert_eq!(stats.bytes_reached, 30);
}

#[test]
fn bad_requests_get_typed_errors() {
    let mut buf = [0u8; 16];
    let ring: StagingRing<'_, 2> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    assert_eq!(ring.grant(0, 1).unwrap_err(), GrantError::ZeroSize);
    assert_eq!(
        ring.grant(4, 3).unwrap_err(),
        GrantError::AlignmentNotPowerOfTwo
    );
    assert_eq!(
        ring.grant(17, 1).unwrap_err(),
        GrantError::NeverFits {
            requested: 17,
            capacity: 16
        }
    );
    // A huge alignment is satisfied at offset 0 and never overflows.
    let g = ring.grant(4, 1 << (usize::BITS - 1)).unwrap();
    assert_eq!(g.offset(), 0);
    assert_eq!(
        g.commit(5).unwrap_err(),
        CommitError::LengthExceedsGrant {
            committed: 5,
            granted: 4
        }
    );
    assert_eq!(ring.stats().failed_grants, 3);
    assert_eq!(ring.stats().dropped_grants, 0, "counted when drained");
}

#[test]
fn too_many_undrained_grants_is_an_error_until_the_consumer_drains() {
    let mut buf = [0u8; 16];
    let ring: StagingRing<'_, 2> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    ring.grant(1, 1).unwrap().commit_all();
    ring.grant(1, 1).unwrap().commit_all();
    assert_eq!(
        ring.grant(1, 1).unwrap_err(),
        GrantError::TooManyUndrained { slots: 2 }
    );
    assert_eq!(drain_all(&mut c).len(), 2);
    assert_eq!(ring.grant(1, 1).unwrap().offset(), 2);
}

#[test]
fn construction_and_the_consumer_are_checked() {
    let mut empty: [u8; 0] = [];
    assert_eq!(
        StagingRing::<'_, 4>::new(RingMemory::new(&mut empty)).unwrap_err(),
        ConfigError::ZeroCapacity
    );
    const { assert!(StagingRing::<'_, 4>::MAX_CAPACITY >= 1 << 24) };
    let mut buf = [0u8; 8];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let _c = consumer(&ring);
    assert_eq!(RingConsumer::new(&ring).unwrap_err(), ConsumerError::Taken);
}

#[test]
fn marks_are_checked_and_released_ranges_cannot_be_read() {
    let mut buf = [0u8; 16];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    ring.grant(4, 1).unwrap().commit_all();
    let r = c.drain().unwrap();
    assert_eq!(c.mark(FenceValue::ZERO).unwrap_err(), MarkError::ZeroValue);
    c.mark(FenceValue::new(3)).unwrap();
    ring.grant(4, 1).unwrap().commit_all();
    let r2 = c.drain().unwrap();
    assert_eq!(
        c.mark(FenceValue::new(2)).unwrap_err(),
        MarkError::WentBackwards {
            value: FenceValue::new(2),
            previous: FenceValue::new(3)
        }
    );
    assert_eq!(c.unmarked_bytes(), 4);
    c.mark(FenceValue::new(3)).unwrap();
    assert_eq!(c.pending_submissions(), 2);
    assert!(c.bytes(&r).is_some());
    assert_eq!(c.release_completed(FenceValue::new(3)), 8);
    assert_eq!(c.bytes(&r), None);
    assert_eq!(c.bytes(&r2), None);
    assert_eq!(c.last_pending_value(), None);
}

/// A holder whose `Deref` returns ring `a` or ring `b` as `use_b` says: odd, but safe code.
struct Switch<'r, 'm> {
    a: &'r StagingRing<'m, 4>,
    b: &'r StagingRing<'m, 4>,
    use_b: &'r core::cell::Cell<bool>,
}

impl<'m> Deref for Switch<'_, 'm> {
    type Target = StagingRing<'m, 4>;
    fn deref(&self) -> &Self::Target {
        if self.use_b.get() { self.b } else { self.a }
    }
}

/// The audit's reproduction: a consumer taken on ring `a` whose holder then derefs to ring `b`
/// used to hand out `b`'s bytes under a live `WriteGrant` of `b` (undefined behaviour under
/// Miri). Now it touches nothing of `b`, and carries on with `a` once the holder returns to it.
#[test]
fn a_holder_that_switches_rings_gets_nothing_from_the_other_ring() {
    let (mut memory_a, mut memory_b) = ([0u8; 8], [0u8; 8]);
    let a: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory_a)).unwrap();
    let b: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory_b)).unwrap();
    let use_b = core::cell::Cell::new(false);
    let mut c = RingConsumer::new(Switch {
        a: &a,
        b: &b,
        use_b: &use_b,
    })
    .unwrap();
    a.grant(4, 1).unwrap().write_and_commit(&[7; 4]).unwrap();
    let r = c.drain().unwrap();

    use_b.set(true);
    let mut g = b.grant(4, 1).unwrap();
    let written = g.bytes_mut();
    assert_eq!(c.bytes(&r), None, "the consumer read the other ring");
    written.fill(1);
    b.grant(4, 1).unwrap().commit_all();
    assert_eq!(c.drain(), None, "the consumer drained the other ring");
    assert_eq!(c.mark(FenceValue::new(1)), Err(MarkError::RingChanged));
    assert_eq!(c.release_completed(FenceValue::new(1)), 0);
    assert_eq!(b.stats().drained_bytes, 0);
    g.commit_all();
    // `b`'s consumer is still free: the switched holder never took it, so `b` gets exactly one.
    let mut own_b = consumer(&b);
    assert_eq!(drain_all(&mut own_b), [(0, 4), (4, 4)]);
    assert_eq!(c.drain(), None);

    use_b.set(false);
    assert_eq!(c.bytes(&r), Some(&[7u8; 4][..]));
    c.mark(FenceValue::new(1)).unwrap();
    assert_eq!(c.release_completed(FenceValue::new(1)), 4);
    assert_eq!(c.bytes(&r), None);
}

/// A second consumer cannot be taken on a ring whose consumer a switching holder took.
#[test]
fn a_switching_holder_cannot_make_two_consumers_of_one_ring() {
    let (mut memory_a, mut memory_b) = ([0u8; 8], [0u8; 8]);
    let a: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory_a)).unwrap();
    let b: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory_b)).unwrap();
    let use_b = core::cell::Cell::new(true);
    let mut c = RingConsumer::new(Switch {
        a: &a,
        b: &b,
        use_b: &use_b,
    })
    .unwrap();
    assert_eq!(RingConsumer::new(&b).unwrap_err(), ConsumerError::Taken);
    use_b.set(false);
    // The holder now derefs to `a`, whose consumer nobody took: `c` is not it.
    a.grant(4, 1).unwrap().commit_all();
    assert_eq!(c.drain(), None);
    let mut own_a = consumer(&a);
    assert_eq!(drain_all(&mut own_a), [(0, 4)]);
}

/// A holder that owns its ring moves it along with the consumer: the consumer keeps working.
#[test]
fn a_ring_held_inside_the_consumer_moves_with_it() {
    struct Owned<'m>(StagingRing<'m, 4>);
    impl<'m> Deref for Owned<'m> {
        type Target = StagingRing<'m, 4>;
        fn deref(&self) -> &Self::Target {
            &self.0
        }
    }
    let mut memory = [0u8; 8];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory)).unwrap();
    let c = RingConsumer::new(Owned(ring)).unwrap();
    let mut moved = std::boxed::Box::new(c);
    moved
        .ring()
        .grant(4, 1)
        .unwrap()
        .write_and_commit(&[5; 4])
        .unwrap();
    let r = moved.drain().unwrap();
    assert_eq!(moved.bytes(&r), Some(&[5u8; 4][..]));
    moved.mark(FenceValue::new(1)).unwrap();
    assert_eq!(moved.release_completed(FenceValue::new(1)), 4);
}

/// The audit's reproduction: ring positions are an offset plus one lap bit, so a range given
/// back long ago matched new drained space and `bytes` returned the new bytes. A range is now
/// held by its ticket, counted in full.
#[test]
fn a_released_range_stays_unreadable_when_its_position_comes_round_again() {
    let mut memory = [0u8; 8];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory)).unwrap();
    let mut c = consumer(&ring);
    let mut first = None;
    for i in 0..8u8 {
        ring.grant(4, 1).unwrap().write_and_commit(&[i; 4]).unwrap();
        let r = c.drain().unwrap();
        assert_eq!(c.bytes(&r), Some(&[i; 4][..]));
        let first = *first.get_or_insert(r);
        if i > 0 {
            assert_eq!(c.bytes(&first), None, "range 0 read back after grant {i}");
        }
        c.mark(FenceValue::new(u64::from(i) + 1)).unwrap();
        assert_eq!(c.release_completed(FenceValue::new(u64::from(i) + 1)), 4);
        assert_eq!(c.bytes(&r), None);
    }
}

/// A range is held until its own submission completes, not merely while its bytes are in
/// drained space; and a range another consumer drained is never readable here.
#[test]
fn only_held_ranges_of_this_consumer_are_readable() {
    let (mut memory_a, mut memory_b) = ([0u8; 16], [0u8; 16]);
    let a: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory_a)).unwrap();
    let b: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut memory_b)).unwrap();
    let (mut ca, mut cb) = (consumer(&a), consumer(&b));
    a.grant(4, 1).unwrap().commit_all();
    b.grant(4, 1).unwrap().commit_all();
    let (ra, rb) = (ca.drain().unwrap(), cb.drain().unwrap());
    // Same offset, length and position, different consumers.
    assert_eq!((ra.offset(), ra.len()), (rb.offset(), rb.len()));
    assert!(ca.bytes(&ra).is_some());
    assert_eq!(ca.bytes(&rb), None);
    assert_eq!(cb.bytes(&ra), None);
    ca.mark(FenceValue::new(1)).unwrap();
    a.grant(4, 1).unwrap().commit_all();
    let ra2 = ca.drain().unwrap();
    ca.mark(FenceValue::new(2)).unwrap();
    assert_eq!(ca.release_completed(FenceValue::new(1)), 4);
    assert_eq!(ca.bytes(&ra), None);
    assert!(ca.bytes(&ra2).is_some());
}

#[test]
fn more_marks_than_tracked_fold_into_the_newest() {
    let mut buf = [0u8; 64];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    for v in 1..=PENDING_SUBMISSIONS as u64 + 2 {
        ring.grant(1, 1).unwrap().commit_all();
        assert!(c.drain().is_some());
        c.mark(FenceValue::new(v)).unwrap();
    }
    assert_eq!(c.pending_submissions(), PENDING_SUBMISSIONS);
    // The first 15 come back one by one; the last entry holds three submissions, freed by 18.
    assert_eq!(c.release_completed(FenceValue::new(15)), 15);
    assert_eq!(c.release_completed(FenceValue::new(17)), 0);
    assert_eq!(c.release_completed(FenceValue::new(18)), 3);
}

/// A tiny seeded generator (xorshift32) for the sequential randomized tests.
fn xorshift(mut seed: u32) -> impl FnMut() -> u32 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    }
}

/// A byte-ownership shadow of a ring for sequential tests, which also plays the GPU: `owner[i]` is
/// 0 while byte i is free, `u64::MAX` while it is granted or drained but unmarked, else the value
/// it was marked with until that value completes.
struct Shadow {
    owner: Vec<u64>,
    unmarked: Vec<DrainedRange>,
    value: u64,
    completed: u64,
}

impl Shadow {
    fn new(capacity: usize) -> Self {
        Self {
            owner: vec![0; capacity],
            unmarked: Vec::new(),
            value: 0,
            completed: 0,
        }
    }

    /// A grant of `range` was handed out at `step`: its bytes must have been free.
    fn granted(&mut self, range: core::ops::Range<usize>, step: u32) {
        assert!(
            self.owner[range.clone()].iter().all(|&b| b == 0),
            "step {step}: byte handed out while held"
        );
        self.owner[range].fill(u64::MAX);
    }

    /// A grant of `range` was dropped uncommitted: its bytes are free again.
    fn dropped(&mut self, range: core::ops::Range<usize>) {
        self.owner[range].fill(0);
    }

    /// The "GPU" takes every range drained so far with the next value.
    fn mark<'m, const G: usize, R: Deref<Target = StagingRing<'m, G>>>(
        &mut self,
        c: &mut RingConsumer<R>,
    ) {
        self.value += 1;
        c.mark(FenceValue::new(self.value)).unwrap();
        for r in self.unmarked.drain(..) {
            self.owner[r.offset()..r.offset() + r.len()].fill(self.value);
        }
    }

    /// The "GPU" completes its oldest outstanding value, if there is one.
    fn complete_one<'m, const G: usize, R: Deref<Target = StagingRing<'m, G>>>(
        &mut self,
        c: &mut RingConsumer<R>,
    ) {
        if self.completed == self.value {
            return;
        }
        self.completed += 1;
        c.release_completed(FenceValue::new(self.completed));
        let completed = self.completed;
        for b in &mut self.owner {
            if *b != u64::MAX && *b <= completed {
                *b = 0;
            }
        }
    }
}

#[test]
fn wrap_around_never_hands_out_bytes_before_their_value_completed() {
    // With the default working set (a quarter of this ring), with none, and with early wraps
    // from the first byte on.
    for working_set in [None, Some(usize::MAX), Some(1)] {
        wrap_around_with_a_shadow(working_set);
    }
}

fn wrap_around_with_a_shadow(working_set: Option<usize>) {
    // A long sequential run over a tiny ring with a byte-ownership shadow.
    let mut buf = [0u8; 24];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let ring = match working_set {
        Some(bytes) => ring.with_working_set(bytes),
        None => ring,
    };
    let mut c = consumer(&ring);
    let mut shadow = Shadow::new(24);
    let mut next = xorshift(12345);
    for step in 0..2000u32 {
        let size = 1 + (next() % 10) as usize;
        let align = 1 << (next() % 3);
        match ring.grant(size, align) {
            Ok(mut g) => {
                let range = g.offset()..g.offset() + g.len();
                shadow.granted(range.clone(), step);
                g.bytes_mut().fill(step as u8);
                if next().is_multiple_of(5) {
                    shadow.dropped(range);
                    drop(g);
                } else {
                    g.commit_all();
                }
            }
            Err(GrantError::Full { .. } | GrantError::TooManyUndrained { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
        while let Some(r) = c.drain() {
            assert!(
                c.bytes(&r)
                    .unwrap()
                    .iter()
                    .all(|&b| b == c.bytes(&r).unwrap()[0])
            );
            shadow.unmarked.push(r);
        }
        if next().is_multiple_of(3) {
            shadow.mark(&mut c);
        }
        if next().is_multiple_of(4) {
            shadow.complete_one(&mut c);
        }
    }
    let stats = ring.stats();
    assert!(stats.wasted_wrap_bytes > 0);
    assert!(stats.high_water_mark <= 24);
    assert!(stats.dropped_grants > 0);
}

/// Producers on two threads write a recognisable pattern, through `StagingRing::grant` or (with
/// `handles`) a `RingProducer` each that flushes now and then; the consumer checks that every
/// committed byte arrives exactly once, in each producer's order, and releases as it goes.
fn two_producers_and_a_consumer(handles: bool) {
    const PER_PRODUCER: usize = if cfg!(miri) { 40 } else { 20_000 };
    const CAPACITY: usize = if cfg!(miri) { 64 } else { 4096 };
    let mut buf = vec![0u8; CAPACITY];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let ring = &ring;
    let mut c = consumer(ring);
    std::thread::scope(|s| {
        for producer in 0..2u8 {
            s.spawn(move || {
                let mut handle = handles.then(|| RingProducer::with_span(ring, 32, 4).unwrap());
                let mut sent = 0usize;
                while sent < PER_PRODUCER {
                    let size = 2 + (sent % 7);
                    let granted = match handle.as_mut() {
                        Some(h) => h.grant(size, 2),
                        None => ring.grant(size, 2),
                    };
                    let Ok(mut g) = granted else {
                        std::thread::yield_now();
                        continue;
                    };
                    let bytes = g.bytes_mut();
                    bytes[0] = producer;
                    bytes[1] = sent as u8;
                    bytes[2..].fill(producer ^ 0x5a);
                    if sent % 11 == 10 {
                        drop(g);
                    } else {
                        g.commit_all();
                    }
                    sent += 1;
                    if sent.is_multiple_of(13)
                        && let Some(h) = handle.as_mut()
                    {
                        h.flush();
                    }
                }
            });
        }
        let mut expected = [0usize; 2];
        let mut value = 0u64;
        let skip_dropped = |e: &mut usize| {
            while *e < PER_PRODUCER && *e % 11 == 10 {
                *e += 1;
            }
        };
        while expected.iter().any(|&e| e < PER_PRODUCER) {
            let mut drained = 0;
            while let Some(r) = c.drain() {
                let bytes = c.bytes(&r).unwrap();
                let producer = bytes[0] as usize;
                skip_dropped(&mut expected[producer]);
                assert_eq!(bytes[1], expected[producer] as u8, "in order, exactly once");
                assert_eq!(bytes.len(), 2 + expected[producer] % 7);
                assert!(bytes[2..].iter().all(|&b| b == bytes[0] ^ 0x5a));
                expected[producer] += 1;
                drained += 1;
            }
            expected.iter_mut().for_each(skip_dropped);
            if drained > 0 {
                value += 1;
                c.mark(FenceValue::new(value)).unwrap();
                // The "GPU" completes the submission before the last one right away.
                c.release_completed(FenceValue::new(value - 1));
            } else {
                std::thread::yield_now();
            }
            c.release_completed(FenceValue::new(value));
        }
    });
    // Handles were dropped (flushed) when their threads ended: nothing is left to drain.
    assert_eq!(c.drain(), None);
    c.mark(FenceValue::new(u64::MAX)).ok();
    c.release_completed(FenceValue::new(u64::MAX));
    let stats = ring.stats();
    assert_eq!(stats.bytes_in_flight, 0);
    assert!(stats.high_water_mark <= CAPACITY as u64);
}

#[test]
fn two_producer_threads_and_a_consumer() {
    two_producers_and_a_consumer(false);
}

// ---- RingProducer: grants carved from spans -----------------------------------------------

#[test]
fn a_producer_carves_grants_from_one_span_and_flush_lets_later_grants_drain() {
    let mut buf = [0u8; 1024];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let mut p = RingProducer::with_span(&ring, 256, 4).unwrap();
    // The first grant opens a span for 4 grants of its size: 64 bytes, 4 tickets.
    let mut a = p.grant(16, 1).unwrap();
    assert!(p.has_open_span());
    assert_eq!(ring.stats().bytes_in_flight, 64);
    let b = p.grant(12, 4).unwrap();
    let d = p.grant(8, 8).unwrap();
    assert_eq!(
        [
            (a.offset(), a.len()),
            (b.offset(), b.len()),
            (d.offset(), d.len())
        ],
        [(0, 16), (16, 12), (32, 8)]
    );
    // A plain grant lands after the span.
    let plain = ring.grant(8, 1).unwrap();
    assert_eq!(plain.offset(), 64);
    a.bytes_mut().fill(0xa1);
    a.commit_all();
    d.write_and_commit(&[0xd4; 8]).unwrap();
    plain.write_and_commit(&[0x77; 8]).unwrap();
    b.commit(0).unwrap();
    let first = c.drain().unwrap();
    assert_eq!(
        (first.offset(), c.bytes(&first).unwrap()),
        (0, &[0xa1; 16][..])
    );
    let second = c.drain().unwrap();
    assert_eq!(
        (second.offset(), c.bytes(&second).unwrap()),
        (32, &[0xd4; 8][..])
    );
    // The span's fourth ticket is unused: the plain grant waits behind it until the flush.
    assert_eq!(c.drain(), None);
    p.flush();
    assert!(!p.has_open_span());
    let third = c.drain().unwrap();
    assert_eq!(
        (third.offset(), c.bytes(&third).unwrap()),
        (64, &[0x77; 8][..])
    );
    assert_eq!(c.drain(), None);
    let stats = ring.stats();
    // Only `b` counts as dropped; the unused ticket does not.
    assert_eq!(stats.dropped_grants, 1);
    assert_eq!(stats.drained_bytes, 32);
    c.mark(FenceValue::new(1)).unwrap();
    assert_eq!(c.release_completed(FenceValue::new(1)), 72);
    assert_eq!(ring.stats().bytes_in_flight, 0);
}

#[test]
fn flushing_a_span_nobody_reserved_after_gives_its_tail_back() {
    let mut buf = [0u8; 256];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let mut p = RingProducer::with_span(&ring, 128, 8).unwrap();
    p.grant(16, 1).unwrap().write_and_commit(&[1; 16]).unwrap();
    assert_eq!(ring.stats().bytes_in_flight, 128);
    p.flush();
    // The unused tickets and bytes went back to the head: nothing is waited for or padded.
    assert_eq!(ring.stats().bytes_in_flight, 16);
    let next = ring.grant(4, 1).unwrap();
    assert_eq!(next.offset(), 16);
    next.write_and_commit(&[2; 4]).unwrap();
    assert_eq!(drain_all(&mut c), [(0, 16), (16, 4)]);
    // Dropping the handle flushes too.
    let mut q = RingProducer::with_span(&ring, 64, 4).unwrap();
    q.grant(8, 1).unwrap().write_and_commit(&[3; 8]).unwrap();
    drop(q);
    assert_eq!(ring.stats().bytes_in_flight, 28);
    assert_eq!(drain_all(&mut c), [(20, 8)]);
}

#[test]
fn a_stale_head_hint_never_makes_a_grant_fail() {
    // A span given back moves the head behind the hint (the head as the last reservation left
    // it): from the hint the ring looks full and out of slots, from the head it is neither.
    let mut buf = [0u8; 64];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    // Out of slots from the hint (4 tickets, 4 bytes), not from the head (1 ticket, 1 byte).
    let mut p = RingProducer::with_span(&ring, 4, 4).unwrap();
    p.grant(1, 1).unwrap().write_and_commit(&[9]).unwrap();
    p.flush();
    let next = ring.grant(1, 1).expect("3 slots are free");
    assert_eq!(next.offset(), 1);
    next.write_and_commit(&[8]).unwrap();
    assert_eq!(drain_all(&mut c), [(0, 1), (1, 1)]);
    c.mark(FenceValue::new(1)).unwrap();
    assert_eq!(c.release_completed(FenceValue::new(1)), 2);
    // Full from the hint (32 bytes), not from the head (8 bytes).
    let mut p = RingProducer::with_span(&ring, 32, 4).unwrap();
    p.grant(8, 1).unwrap().write_and_commit(&[1; 8]).unwrap();
    p.flush();
    assert_eq!(ring.stats().bytes_in_flight, 8);
    let rest = ring.grant(56, 1).expect("56 bytes and 3 slots are free");
    assert_eq!((rest.offset(), rest.len()), (8, 56));
    rest.write_and_commit(&[2; 56]).unwrap();
    assert_eq!(drain_all(&mut c), [(0, 8), (8, 56)]);
    c.mark(FenceValue::new(2)).unwrap();
    assert_eq!(c.release_completed(FenceValue::new(2)), 64);
    // The consumer restarted the empty ring behind the hint again: the whole ring fits.
    let whole = ring.grant(64, 1).expect("the ring is empty");
    assert_eq!(whole.offset(), 0);
    drop(whole);
    assert_eq!(ring.stats().failed_grants, 0);
}

#[test]
fn the_last_ticket_of_a_span_gives_back_or_carries_the_unused_bytes() {
    let mut buf = [0u8; 256];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let mut p = RingProducer::with_span(&ring, 256, 2).unwrap();
    // Span of 2 grants of 10 bytes; the second takes 4: 6 bytes go back to the head.
    p.grant(10, 1).unwrap().commit_all();
    assert_eq!(ring.stats().bytes_in_flight, 20);
    let last = p.grant(4, 1).unwrap();
    assert!(!p.has_open_span());
    assert_eq!(last.offset(), 10);
    last.commit_all();
    assert_eq!(ring.stats().bytes_in_flight, 14);
    // Again, with a plain grant after the span: the last grant carries the 6 bytes.
    p.grant(10, 1).unwrap().commit_all();
    let plain = ring.grant(1, 1).unwrap();
    assert_eq!(plain.offset(), 34);
    let last = p.grant(4, 1).unwrap();
    assert_eq!(last.offset(), 24);
    last.commit_all();
    plain.commit_all();
    assert_eq!(
        drain_all(&mut c),
        [(0, 10), (10, 4), (14, 10), (24, 4), (34, 1)]
    );
    c.mark(FenceValue::new(1)).unwrap();
    assert_eq!(c.release_completed(FenceValue::new(1)), 35);
    assert_eq!(ring.stats().bytes_in_flight, 0);
}

#[test]
fn producer_requests_are_checked_like_grants() {
    let mut buf = [0u8; 64];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    for (bytes, grants) in [(0, 1), (16, 0), (16, 5)] {
        assert_eq!(
            RingProducer::with_span(&ring, bytes, grants).err(),
            Some(ConfigError::InvalidParameter)
        );
    }
    // The default span: a quarter of the ring's capacity and of its grant slots (here 1: every
    // grant is a plain one).
    let mut plain = RingProducer::new(&ring);
    plain.grant(4, 1).unwrap().commit_all();
    assert!(!plain.has_open_span());
    assert_eq!(ring.stats().bytes_in_flight, 4);
    drop(plain);
    let mut p = RingProducer::with_span(&ring, 32, 4).unwrap();
    assert_eq!(p.grant(0, 1).err(), Some(GrantError::ZeroSize));
    assert_eq!(
        p.grant(4, 3).err(),
        Some(GrantError::AlignmentNotPowerOfTwo)
    );
    assert_eq!(
        p.grant(65, 1).err(),
        Some(GrantError::NeverFits {
            requested: 65,
            capacity: 64
        })
    );
    // A huge alignment inside an open span takes the slow path's answer, not an overflow.
    let g = p.grant(4, 1).unwrap();
    assert!(p.has_open_span());
    assert!(p.grant(1, 1 << (usize::BITS - 1)).is_err());
    assert!(!p.has_open_span(), "no span stays open after an error");
    drop(g);
    assert_eq!(ring.stats().failed_grants, 4);
}

#[test]
fn a_producer_facing_a_full_ring_is_told_what_to_wait_for() {
    let mut buf = [0u8; 64];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let mut p = RingProducer::with_span(&ring, 64, 8).unwrap();
    let mut sent = 0;
    while let Ok(g) = p.grant(16, 1) {
        g.commit_all();
        sent += 1;
    }
    assert_eq!(sent, 4);
    assert_eq!(
        p.grant(16, 1).err(),
        Some(GrantError::Full { wait_for: None })
    );
    assert_eq!(drain_all(&mut c).len(), 4);
    c.mark(FenceValue::new(3)).unwrap();
    assert_eq!(
        p.grant(16, 1).err(),
        Some(GrantError::Full {
            wait_for: Some(FenceValue::new(3))
        })
    );
    c.release_completed(FenceValue::new(3));
    // The emptied ring restarted at 0; a span fills it again.
    assert_eq!(p.grant(16, 1).unwrap().offset(), 0);
}

/// Two producer handles and plain grants, interleaved on one thread over a tiny ring, against a
/// byte-ownership map: no byte is handed out while held, every committed grant drains exactly
/// once in ticket order with its bytes, and everything comes back at the end.
#[test]
fn producers_and_plain_grants_wrap_around_without_reusing_held_bytes() {
    const CAPACITY: usize = 48;
    let mut buf = [0u8; CAPACITY];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    let mut producers = [
        RingProducer::with_span(&ring, 24, 4).unwrap(),
        RingProducer::with_span(&ring, 16, 3).unwrap(),
    ];
    let mut shadow = Shadow::new(CAPACITY);
    let mut next = xorshift(0x9e37_79b9);
    // Committed grants not drained yet, in the order they must drain: (tag, offset, len).
    let mut expected: std::collections::VecDeque<(u8, usize, usize)> = Default::default();
    let mut live: Vec<(WriteGrant<'_, '_, 8>, u8)> = Vec::new();
    let mut tag = 0u8;
    for step in 0..4000u32 {
        match next() % 10 {
            0..=4 => {
                let size = 1 + (next() % 9) as usize;
                let align = 1 << (next() % 3);
                let who = next() % 3;
                let result = match who {
                    0 | 1 => producers[who as usize].grant(size, align),
                    _ => ring.grant(size, align),
                };
                match result {
                    Ok(mut g) => {
                        shadow.granted(g.offset()..g.offset() + g.len(), step);
                        tag = tag.wrapping_add(1);
                        g.bytes_mut().fill(tag);
                        live.push((g, tag));
                    }
                    Err(GrantError::Full { .. } | GrantError::TooManyUndrained { .. }) => {
                        // A producer waiting for room flushes first (its error path already did).
                        for p in &mut producers {
                            p.flush();
                        }
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            5 | 6 if !live.is_empty() => {
                // Commit (or now and then drop) a live grant; they drain in ticket order, which
                // here is the order they were granted in.
                let index = next() as usize % live.len();
                let (g, tag) = live.remove(index);
                let (offset, len) = (g.offset(), g.len());
                if next().is_multiple_of(6) {
                    shadow.dropped(offset..offset + len);
                    drop(g);
                } else {
                    g.commit_all();
                    expected.push_back((tag, offset, len));
                }
            }
            7 => producers[(next() % 2) as usize].flush(),
            _ => {}
        }
        while let Some(r) = c.drain() {
            let bytes = c.bytes(&r).unwrap();
            // Ticket order is grant order; a committed grant can only be overtaken in `expected`
            // by one committed later but granted earlier, so find it by its unique tag.
            let position = expected
                .iter()
                .position(|&(tag, _, _)| tag == bytes[0])
                .expect("drained exactly once");
            let (_, offset, len) = expected.remove(position).unwrap();
            assert_eq!((r.offset(), r.len()), (offset, len));
            assert!(bytes.iter().all(|&b| b == bytes[0]), "untorn");
            shadow.unmarked.push(r);
        }
        if next().is_multiple_of(3) && !shadow.unmarked.is_empty() {
            shadow.mark(&mut c);
        }
        if next().is_multiple_of(4) {
            shadow.complete_one(&mut c);
        }
    }
    for (g, _) in live.drain(..) {
        drop(g);
    }
    drop(producers);
    while let Some(r) = c.drain() {
        let tag = c.bytes(&r).unwrap()[0];
        let position = expected.iter().position(|&(t, _, _)| t == tag).unwrap();
        expected.remove(position);
    }
    assert!(expected.is_empty(), "every committed grant drained");
    c.mark(FenceValue::new(shadow.value + 1)).unwrap();
    c.release_completed(FenceValue::new(shadow.value + 1));
    let stats = ring.stats();
    assert_eq!(stats.bytes_in_flight, 0);
    assert!(stats.wasted_wrap_bytes > 0);
    assert!(stats.high_water_mark <= CAPACITY as u64);
    assert_eq!(ring.grant(CAPACITY, 1).unwrap().offset(), 0);
}

/// Two threads send through producer handles; the consumer checks every committed grant arrives
/// exactly once, in each producer's order, with its bytes.
#[test]
fn two_producer_handles_on_two_threads_and_a_consumer() {
    two_producers_and_a_consumer(true);
}

/// One producer the GPU keeps up with: each grant of 4 KiB is submitted, and the submission
/// before it has completed by the next grant. `working_set`: the ring's setting. Returns the
/// highest end of a grant and the ring's counters.
fn stream_with_one_submission_in_flight(working_set: usize) -> (usize, RingStats) {
    const PIECE: usize = 4 << 10;
    let mut buf = vec![0u8; 64 << 10];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf))
        .unwrap()
        .with_working_set(working_set);
    let mut c = consumer(&ring);
    let mut highest = 0;
    for value in 1..=200u64 {
        let mut g = ring
            .grant(PIECE, 256)
            .expect("the GPU keeps up: never full");
        highest = highest.max(g.offset() + g.len());
        g.bytes_mut().fill(value as u8);
        g.commit_all();
        let drained = drain_all(&mut c);
        assert_eq!(drained.len(), 1);
        c.mark(FenceValue::new(value)).unwrap();
        // The copy of the grant before this one is done.
        c.release_completed(FenceValue::new(value - 1));
    }
    (highest, ring.stats())
}

#[test]
fn a_producer_the_gpu_keeps_up_with_writes_the_same_bytes_again() {
    // Past 16 KiB the head goes back to the start as soon as the start is free: the producer
    // writes 16 KiB of the 64 KiB ring over and over.
    let (highest, stats) = stream_with_one_submission_in_flight(16 << 10);
    assert_eq!(highest, 16 << 10);
    assert_eq!(stats.bytes_reached, 16 << 10);
    // 200 grants, four to a lap of 16 KiB: 49 early wraps, each skipping the last 48 KiB, and
    // those are all the skipped bytes.
    assert_eq!(stats.early_wraps, 49);
    assert_eq!(stats.early_wrap_bytes, 49 * (48 << 10));
    assert_eq!(stats.wasted_wrap_bytes, stats.early_wrap_bytes);
    assert!(stats.high_water_mark < 64 << 10);
    // Never early: every lap goes through the whole ring.
    let (highest, stats) = stream_with_one_submission_in_flight(usize::MAX);
    assert_eq!(highest, 64 << 10);
    assert_eq!(stats.bytes_reached, 64 << 10);
    assert_eq!(stats.wasted_wrap_bytes, 0);
    assert_eq!((stats.early_wraps, stats.early_wrap_bytes), (0, 0));
    // The default: at most a quarter of a small ring.
    let (highest, _) = stream_with_one_submission_in_flight(DEFAULT_WORKING_SET);
    assert_eq!(highest, 64 << 10, "8 MiB is past this ring's end");
    let mut buf = vec![0u8; 64 << 10];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    assert_eq!(ring.positions.working_set, 16 << 10);
}

#[test]
fn an_early_wrap_leaves_at_least_the_room_that_was_in_flight() {
    const K: usize = 1 << 10;
    let mut buf = vec![0u8; 64 * K];
    let ring: StagingRing<'_, 16> = StagingRing::new(RingMemory::new(&mut buf))
        .unwrap()
        .with_working_set(8 * K);
    let mut c = consumer(&ring);
    // Eight grants of 4 KiB in flight, each its own submission.
    for value in 1..=8u64 {
        ring.grant(4 * K, 1).unwrap().commit_all();
        assert_eq!(drain_all(&mut c).len(), 1);
        c.mark(FenceValue::new(value)).unwrap();
    }
    // Half of them done: 16 KiB in flight, 16 KiB free at the start, which would leave 12 KiB
    // after a 4 KiB grant there. Too little: the head goes on.
    c.release_completed(FenceValue::new(4));
    let g = ring.grant(4 * K, 1).unwrap();
    assert_eq!(g.offset(), 32 * K);
    g.commit_all();
    assert_eq!(drain_all(&mut c).len(), 1);
    c.mark(FenceValue::new(9)).unwrap();
    // Two more done: 12 KiB in flight (24..36 KiB), 24 KiB free at the start: back to 0.
    c.release_completed(FenceValue::new(6));
    let g = ring.grant(4 * K, 1).unwrap();
    assert_eq!(g.offset(), 0);
    g.commit_all();
    assert_eq!(drain_all(&mut c).len(), 1);
    c.mark(FenceValue::new(10)).unwrap();
    let stats = ring.stats();
    assert_eq!(
        (stats.early_wraps, stats.early_wrap_bytes),
        (1, 28 * K as u64)
    );
    assert_eq!(stats.wasted_wrap_bytes, 28 * K as u64);
    assert_eq!(stats.bytes_reached, 36 * K as u64);
    // The skipped end (36..64 KiB) comes back with that grant; until then 20 KiB are free, more
    // than the 12 KiB that were in flight.
    let g = ring.grant(20 * K, 1).unwrap();
    assert_eq!(g.offset(), 4 * K);
    assert_eq!(
        ring.grant(1, 1).map(|_| ()),
        Err(GrantError::Full {
            wait_for: Some(FenceValue::new(7))
        })
    );
    g.commit_all();
    // Everything done: the whole ring comes back.
    assert_eq!(drain_all(&mut c).len(), 1);
    c.mark(FenceValue::new(11)).unwrap();
    c.release_completed(FenceValue::new(11));
    assert_eq!(ring.stats().bytes_in_flight, 0);
    assert_eq!(ring.grant(64 * K, 1).unwrap().offset(), 0);
}
