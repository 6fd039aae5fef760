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
    assert_eq!(ring.stats().wasted_wrap_bytes, 2);
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
    assert_eq!(RingConsumer::new(&ring).unwrap_err(), ConsumerTaken);
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

#[test]
fn wrap_around_never_hands_out_bytes_before_their_value_completed() {
    // A long sequential run over a tiny ring with a byte-ownership shadow.
    let mut buf = [0u8; 24];
    let ring: StagingRing<'_, 4> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let mut c = consumer(&ring);
    // owner[i]: 0 free, else the value (or u64::MAX while granted/unmarked) holding byte i.
    let mut owner = [0u64; 24];
    let mut value = 0u64;
    let mut completed = 0u64;
    let mut seed = 12345u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut unmarked: Vec<DrainedRange> = Vec::new();
    for step in 0..2000u32 {
        let size = 1 + (next() % 10) as usize;
        let align = 1 << (next() % 3);
        match ring.grant(size, align) {
            Ok(mut g) => {
                for b in &owner[g.offset()..g.offset() + g.len()] {
                    assert_eq!(*b, 0, "step {step}: byte handed out while held");
                }
                owner[g.offset()..g.offset() + g.len()].fill(u64::MAX);
                g.bytes_mut().fill(step as u8);
                if next() % 5 == 0 {
                    owner[g.offset()..g.offset() + g.len()].fill(0);
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
            unmarked.push(r);
        }
        if next() % 3 == 0 {
            value += 1;
            c.mark(FenceValue::new(value)).unwrap();
            for r in unmarked.drain(..) {
                owner[r.offset()..r.offset() + r.len()].fill(value);
            }
        }
        if next() % 4 == 0 && completed < value {
            completed += 1;
            c.release_completed(FenceValue::new(completed));
            for b in owner.iter_mut() {
                if *b != u64::MAX && *b <= completed {
                    *b = 0;
                }
            }
        }
    }
    let stats = ring.stats();
    assert!(stats.wasted_wrap_bytes > 0);
    assert!(stats.high_water_mark <= 24);
    assert!(stats.dropped_grants > 0);
}

/// Producers on two threads write a recognisable pattern; the consumer checks that every
/// committed byte arrives exactly once, in each producer's order, and releases as it goes.
#[test]
fn two_producer_threads_and_a_consumer() {
    const PER_PRODUCER: usize = if cfg!(miri) { 40 } else { 20_000 };
    const CAPACITY: usize = if cfg!(miri) { 64 } else { 4096 };
    let mut buf = vec![0u8; CAPACITY];
    let ring: StagingRing<'_, 8> = StagingRing::new(RingMemory::new(&mut buf)).unwrap();
    let ring = &ring;
    let mut c = consumer(ring);
    std::thread::scope(|s| {
        for producer in 0..2u8 {
            s.spawn(move || {
                let mut sent = 0usize;
                while sent < PER_PRODUCER {
                    let size = 2 + (sent % 7);
                    let Ok(mut g) = ring.grant(size, 2) else {
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
                }
            });
        }
        let mut expected = [0usize; 2];
        let mut value = 0u64;
        while expected.iter().any(|&e| e < PER_PRODUCER) {
            let mut drained = 0;
            while let Some(r) = c.drain() {
                let bytes = c.bytes(&r).unwrap();
                let producer = bytes[0] as usize;
                // Skip over the sequence numbers of dropped grants.
                while expected[producer] % 11 == 10 {
                    expected[producer] += 1;
                }
                assert_eq!(bytes[1], expected[producer] as u8, "in order, exactly once");
                assert_eq!(bytes.len(), 2 + expected[producer] % 7);
                assert!(bytes[2..].iter().all(|&b| b == bytes[0] ^ 0x5a));
                expected[producer] += 1;
                drained += 1;
            }
            for e in &mut expected {
                while *e < PER_PRODUCER && *e % 11 == 10 {
                    *e += 1;
                }
            }
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
    let stats = ring.stats();
    assert_eq!(stats.bytes_in_flight, 0);
    assert!(stats.high_water_mark <= CAPACITY as u64);
}
