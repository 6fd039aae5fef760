//! Loom models of the ring's protocol: every interleaving of the producers' and the consumer's
//! atomics (up to the preemption bound), with the ring's bytes shadowed by loom cells so that an
//! access not ordered by the protocol is reported as a race.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p memkit-core --profile loom
//! --lib -- loom`.
#![allow(unsafe_code)] // Loom's cells stand in for the ring's bytes; reading them is unsafe.

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use super::*;

const CAPACITY: usize = 8;

/// Two grant slots, so the third ticket reuses the first one's slot.
type Ring = StagingRing<'static, 2>;

/// A ring over leaked memory (the model never touches it: the shadow cells stand in for it).
fn ring() -> Arc<Ring> {
    let memory = RingMemory::new(Box::leak(vec![0u8; CAPACITY].into_boxed_slice()));
    Arc::new(StagingRing::new(memory).unwrap())
}

/// The ring's bytes as loom cells: loom reports a write and a read not ordered by the protocol.
fn shadow() -> Arc<Vec<UnsafeCell<u8>>> {
    Arc::new((0..CAPACITY).map(|_| UnsafeCell::new(0)).collect())
}

/// One attempt to grant `size` bytes, write `tag` into every byte and commit. Returns whether
/// the grant was given (a single attempt keeps the model free of spin loops).
fn produce(ring: &Ring, shadow: &[UnsafeCell<u8>], size: usize, tag: u8) -> bool {
    match ring.grant(size, 1) {
        Ok(grant) => {
            for cell in &shadow[grant.offset()..grant.offset() + grant.len()] {
                cell.with_mut(|byte| {
                    // SAFETY: loom checks this access against every other one.
                    unsafe { *byte = tag }
                });
            }
            grant.commit_all();
            true
        }
        Err(GrantError::Full { .. } | GrantError::TooManyUndrained { .. }) => false,
        Err(error) => panic!("unexpected {error}"),
    }
}

/// Reads a drained range through the shadow and checks it holds one producer's tag throughout.
fn read(shadow: &[UnsafeCell<u8>], range: &DrainedRange) -> u8 {
    let bytes: Vec<u8> = shadow[range.offset()..range.offset() + range.len()]
        .iter()
        .map(|cell| {
            cell.with(|byte| {
                // SAFETY: loom checks this access against every other one.
                unsafe { *byte }
            })
        })
        .collect();
    assert!(bytes.iter().all(|&b| b == bytes[0]), "torn range {bytes:?}");
    bytes[0]
}

/// The end of every model: the consumer marks what it drained with `value` and releases it (an
/// instant GPU); then nothing is in flight and the whole ring, `capacity` bytes, is one grant at
/// offset 0.
fn release_all_and_grant_whole<const GRANTS: usize>(
    ring: &StagingRing<'static, GRANTS>,
    consumer: &mut RingConsumer<Arc<StagingRing<'static, GRANTS>>>,
    value: u64,
    capacity: usize,
) {
    consumer.mark(FenceValue::new(value)).unwrap();
    consumer.release_completed(FenceValue::new(value));
    assert_eq!(ring.stats().bytes_in_flight, 0);
    let whole = ring.grant(capacity, 1).expect("the ring is empty again");
    assert_eq!(whole.offset(), 0);
    whole.commit_all();
}

/// The ring holds 5 committed bytes when two producers each ask for 3 bytes while the consumer
/// drains them, submits them as value 1, releases them and drains again: one producer fits before
/// the end of the ring, the other must wrap around into the space being released (or is told the
/// ring is full, if it comes before the release, or that the grant slots are all taken, if it
/// comes before the first drain); or the consumer restarts the emptied ring at offset 0 first.
/// Checked: no two grants overlap; every committed range is drained exactly once and untorn;
/// afterwards everything comes back and the whole ring fits in one grant. Loom's cells check that
/// no byte is written while the consumer may still read it.
#[test]
fn loom_two_producers_one_consumer_wrap_and_release() {
    loom::model(|| {
        let ring = ring();
        let shadow = shadow();
        let mut consumer = RingConsumer::new(ring.clone()).unwrap();
        assert!(produce(&ring, &shadow, 5, 0x0f));

        let producers: Vec<_> = [1u8, 2]
            .into_iter()
            .map(|id| {
                let (ring, shadow) = (ring.clone(), shadow.clone());
                thread::spawn(move || produce(&ring, &shadow, 3, id))
            })
            .collect();
        // While the producers run: drain the 5 bytes (freeing their grant slot for the third
        // ticket), submit them as value 1, and, the GPU being done, release them.
        let first = consumer.drain().unwrap();
        assert_eq!((first.offset(), read(&shadow, &first)), (0, 0x0f));
        consumer.mark(FenceValue::new(1)).unwrap();
        assert_eq!(consumer.release_completed(FenceValue::new(1)), 5);
        let mut seen: Vec<(usize, u8)> = Vec::new();
        for _ in 0..2 {
            while let Some(range) = consumer.drain() {
                seen.push((range.offset(), read(&shadow, &range)));
            }
            thread::yield_now();
        }
        let granted: Vec<bool> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        while let Some(range) = consumer.drain() {
            seen.push((range.offset(), read(&shadow, &range)));
        }
        // The first grant after the 5 bytes always fits at 5..8; so at least one producer got in.
        assert!(granted.contains(&true));
        let expected: usize = granted.iter().filter(|&&g| g).count();
        assert_eq!(seen.len(), expected, "exactly once: {seen:?}");
        for id in [1u8, 2] {
            assert_eq!(
                seen.iter().filter(|(_, tag)| *tag == id).count(),
                usize::from(granted[usize::from(id) - 1])
            );
        }
        if let [(a, _), (b, _)] = seen[..] {
            // Ring order: 5..8, then the wrapped one at 0..3; or, when the consumer released and
            // restarted the idle ring first, 0..3 then 3..6.
            assert!(
                matches!((a, b), (5, 0) | (0, 3)),
                "overlap or out of order: {seen:?}"
            );
        }
        release_all_and_grant_whole(&ring, &mut consumer, 2, CAPACITY);
        assert!(ring.stats().high_water_mark <= CAPACITY as u64);
    });
}

/// One producer drops its grant, the other commits: the consumer passes over the dropped range,
/// drains the committed one, and afterwards the whole ring is usable again.
#[test]
fn loom_dropped_grant_does_not_wedge_the_ring() {
    loom::model(|| {
        let ring = ring();
        let shadow = shadow();
        let dropper = {
            let ring = ring.clone();
            thread::spawn(move || {
                if let Ok(grant) = ring.grant(4, 1) {
                    drop(grant);
                }
            })
        };
        let writer = {
            let (ring, shadow) = (ring.clone(), shadow.clone());
            thread::spawn(move || produce(&ring, &shadow, 4, 7))
        };
        let mut consumer = RingConsumer::new(ring.clone()).unwrap();
        let range = loop {
            if let Some(range) = consumer.drain() {
                break range;
            }
            thread::yield_now();
        };
        assert_eq!(read(&shadow, &range), 7);
        dropper.join().unwrap();
        writer.join().unwrap();
        // Both threads are done: the dropped grant (if it came after) is passed over now.
        assert_eq!(consumer.drain(), None);
        release_all_and_grant_whole(&ring, &mut consumer, 1, CAPACITY);
    });
}

/// Two producer handles on two threads, each sending two 2-byte grants from a span of three
/// tickets and then dropping the handle, while the consumer drains. Every interleaving of the span
/// reservations (which run out of grant slots: 4 for 2 x 3 tickets), the grants carved from them,
/// the closing of each span (giving its unused ticket and bytes back to the head, or publishing
/// them as unused when the other span came after) and the consumer's drains.
/// Checked: no two grants overlap; every committed grant is drained exactly once, untorn and in
/// its producer's order; afterwards everything comes back and the whole ring fits in one grant.
#[test]
fn loom_two_producer_handles_spans_close_and_drain_in_order() {
    const SPAN_CAPACITY: usize = 16;
    loom::model(|| {
        let memory = RingMemory::new(Box::leak(vec![0u8; SPAN_CAPACITY].into_boxed_slice()));
        let ring: Arc<StagingRing<'static, 4>> = Arc::new(StagingRing::new(memory).unwrap());
        let shadow: Arc<Vec<UnsafeCell<u8>>> =
            Arc::new((0..SPAN_CAPACITY).map(|_| UnsafeCell::new(0)).collect());
        let mut consumer = RingConsumer::new(ring.clone()).unwrap();
        let producers: Vec<_> = [0x10u8, 0x20]
            .into_iter()
            .map(|tag| {
                let (ring, shadow) = (ring.clone(), shadow.clone());
                thread::spawn(move || {
                    let mut handle = RingProducer::with_span(&ring, 8, 3).unwrap();
                    // One attempt per grant (no spin loops in the model): which ones were sent.
                    let mut sent = [false; 2];
                    for (i, sent) in sent.iter_mut().enumerate() {
                        match handle.grant(2, 1) {
                            Ok(grant) => {
                                let range = grant.offset()..grant.offset() + grant.len();
                                for cell in &shadow[range] {
                                    cell.with_mut(|byte| {
                                        // SAFETY: loom checks this access against every other.
                                        unsafe { *byte = tag + i as u8 }
                                    });
                                }
                                grant.commit_all();
                                *sent = true;
                            }
                            Err(GrantError::TooManyUndrained { .. } | GrantError::Full { .. }) => {}
                            Err(error) => panic!("unexpected {error}"),
                        }
                    }
                    drop(handle);
                    sent
                })
            })
            .collect();
        let mut seen: Vec<(usize, u8)> = Vec::new();
        for _ in 0..2 {
            while let Some(range) = consumer.drain() {
                seen.push((range.offset(), read(&shadow, &range)));
            }
            thread::yield_now();
        }
        let sent: Vec<[bool; 2]> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        while let Some(range) = consumer.drain() {
            seen.push((range.offset(), read(&shadow, &range)));
        }
        // Exactly the committed grants, each once, in each producer's order.
        for (p, tag) in [0x10u8, 0x20].into_iter().enumerate() {
            let mine: Vec<u8> = seen
                .iter()
                .map(|&(_, t)| t)
                .filter(|t| t & 0xf0 == tag)
                .collect();
            let expected: Vec<u8> = (0..2)
                .filter(|&i| sent[p][i])
                .map(|i| tag + i as u8)
                .collect();
            assert_eq!(mine, expected, "producer {p}: {seen:?}");
        }
        // The very first grant always gets in: a fresh ring has room and slots.
        assert!(!seen.is_empty());
        let mut offsets: Vec<usize> = seen.iter().map(|&(o, _)| o).collect();
        offsets.sort_unstable();
        assert!(
            offsets.windows(2).all(|w| w[1] >= w[0] + 2),
            "overlap: {seen:?}"
        );
        release_all_and_grant_whole(&ring, &mut consumer, 1, SPAN_CAPACITY);
    });
}

/// Writes `tag` into every byte of `grant` through the shadow cells.
fn fill<const GRANTS: usize>(
    shadow: &[UnsafeCell<u8>],
    grant: &WriteGrant<'_, '_, GRANTS>,
    tag: u8,
) {
    for cell in &shadow[grant.offset()..grant.offset() + grant.len()] {
        cell.with_mut(|byte| {
            // SAFETY: loom checks this access against every other one.
            unsafe { *byte = tag }
        });
    }
}

/// Drains every range that is ready, reading each through the shadow: `(offset, len, tag)` in
/// order.
fn drain_ready<const GRANTS: usize>(
    consumer: &mut RingConsumer<Arc<StagingRing<'static, GRANTS>>>,
    shadow: &[UnsafeCell<u8>],
    seen: &mut Vec<(usize, usize, u8)>,
) {
    while let Some(range) = consumer.drain() {
        seen.push((range.offset(), range.len(), read(shadow, &range)));
    }
}

/// Checks that ranges the consumer holds at once (drained, not yet released) never overlap.
fn assert_disjoint(held: &[(usize, usize, u8)]) {
    for (i, &(a, a_len, _)) in held.iter().enumerate() {
        for &(b, b_len, _) in &held[i + 1..] {
            assert!(a + a_len <= b || b + b_len <= a, "overlap: {held:?}");
        }
    }
}

/// A ring of `CAPACITY` bytes with `GRANTS` slots, over leaked memory.
fn ring_with<const GRANTS: usize>() -> Arc<StagingRing<'static, GRANTS>> {
    let memory = RingMemory::new(Box::leak(vec![0u8; CAPACITY].into_boxed_slice()));
    Arc::new(StagingRing::new(memory).unwrap())
}

/// Scenario: a producer handle opens a span of two tickets (its grant at 0..2, the second ticket
/// and bytes 2..4 unused), commits the grant and drops the handle, whose close gives the unused
/// ticket and bytes back to the head; then it tries one plain 4-byte grant. Meanwhile the consumer
/// drains the first grant, submits it as value 1 and releases it, and that release restarts the
/// emptied ring at offset 0 when the give-back came first (before it, the span's unused ticket
/// keeps the ring from looking idle, so the restart must not happen).
/// Checked: the consumer's read of 0..2 is ordered before any later write there (loom's cells);
/// the plain grant lands at 2..6 (no restart) or at 0..4 of the restarted ring, never on the
/// unused ticket's bytes while the span holds them; the release gives back exactly the 2 bytes;
/// every committed grant is drained exactly once, untorn and in order, none counts as dropped;
/// afterwards everything comes back and the whole ring fits in one grant at offset 0.
#[test]
fn loom_span_give_back_races_the_consumer_restart() {
    loom::model(|| {
        let ring = ring_with::<2>();
        let shadow = shadow();
        let mut consumer = RingConsumer::new(ring.clone()).unwrap();
        let producer = {
            let (ring, shadow) = (ring.clone(), shadow.clone());
            thread::spawn(move || {
                let mut handle = RingProducer::with_span(&*ring, 4, 2).unwrap();
                let grant = handle.grant(2, 1).expect("a fresh ring has room and slots");
                assert!(handle.has_open_span(), "the span keeps its second ticket");
                assert_eq!(grant.offset(), 0);
                fill(&shadow, &grant, 0x11);
                grant.commit_all();
                drop(handle);
                match ring.grant(4, 1) {
                    Ok(grant) => {
                        let offset = grant.offset();
                        fill(&shadow, &grant, 0x22);
                        grant.commit_all();
                        Some(offset)
                    }
                    // A single attempt: it may see the restarted head before the consumer's
                    // store of the restarted `released` (the skipped tail then still counts).
                    Err(GrantError::Full { .. }) => None,
                    Err(error) => panic!("unexpected {error}"),
                }
            })
        };
        let mut seen: Vec<(usize, usize, u8)> = Vec::new();
        let first = loop {
            if let Some(range) = consumer.drain() {
                break range;
            }
            thread::yield_now();
        };
        assert_eq!((first.offset(), read(&shadow, &first)), (0, 0x11));
        consumer.mark(FenceValue::new(1)).unwrap();
        assert_eq!(consumer.release_completed(FenceValue::new(1)), 2);
        drain_ready(&mut consumer, &shadow, &mut seen);
        let second = producer.join().unwrap();
        drain_ready(&mut consumer, &shadow, &mut seen);
        match second {
            Some(offset) => {
                assert!(matches!(offset, 0 | 2), "landed at {offset}");
                assert_eq!(seen, [(offset, 4, 0x22)]);
            }
            None => assert!(seen.is_empty(), "{seen:?}"),
        }
        assert_eq!(ring.stats().dropped_grants, 0);
        release_all_and_grant_whole(&ring, &mut consumer, 2, CAPACITY);
    });
}

/// Scenario: 3 bytes are committed at 0..3. A producer handle then opens a span (its first grant
/// of 2 bytes and a second ticket with 2 more bytes reserved), commits the first grant, yields
/// with the span still open and its second ticket unused, then sends the second grant (from the
/// span) and a 3-byte grant from a new span, which fits only by wrapping onto 0..3. Meanwhile the
/// consumer drains the 3 bytes, submits them as value 1 and releases them: before the span was
/// reserved (the release then restarts the idle ring at offset 0), or while the span is reserved
/// and not yet used or closed. (A producer that sees the restarted head before the consumer's
/// store of the restarted `released` counts the skipped tail as used and takes a span of one
/// ticket; its later grants may then be refused as full. Each grant is a single attempt.)
/// Checked: the release gives back exactly the 3 drained bytes, never the span's; no byte of 0..3
/// is rewritten before the consumer's read of it is ordered before the write (loom's cells); the
/// producer's committed grants are drained exactly once, untorn and in order, the first always;
/// the ranges drained after the release, all held at once, never overlap; afterwards everything
/// comes back and the whole ring fits in one grant at offset 0.
#[test]
fn loom_release_while_a_span_is_reserved_and_unused() {
    loom::model(|| {
        let ring = ring_with::<4>();
        let shadow = shadow();
        let mut consumer = RingConsumer::new(ring.clone()).unwrap();
        assert!(produce_in(&ring, &shadow, 3, 0x0f));
        let producer = {
            let (ring, shadow) = (ring.clone(), shadow.clone());
            thread::spawn(move || {
                let mut handle = RingProducer::with_span(&*ring, 4, 2).unwrap();
                let mut sent: Vec<u8> = Vec::new();
                for (size, tag) in [(2, 0x21u8), (2, 0x22), (3, 0x23)] {
                    match handle.grant(size, 1) {
                        Ok(grant) => {
                            fill(&shadow, &grant, tag);
                            grant.commit_all();
                            sent.push(tag);
                        }
                        Err(GrantError::Full { .. }) => {}
                        Err(error) => panic!("unexpected {error}"),
                    }
                    if tag == 0x21 {
                        // The span's second ticket is reserved and unused here.
                        thread::yield_now();
                    }
                }
                drop(handle);
                sent
            })
        };
        let first = consumer
            .drain()
            .expect("committed before the producer started");
        assert_eq!((first.offset(), read(&shadow, &first)), (0, 0x0f));
        consumer.mark(FenceValue::new(1)).unwrap();
        assert_eq!(consumer.release_completed(FenceValue::new(1)), 3);
        let mut seen: Vec<(usize, usize, u8)> = Vec::new();
        drain_ready(&mut consumer, &shadow, &mut seen);
        let sent = producer.join().unwrap();
        drain_ready(&mut consumer, &shadow, &mut seen);
        assert_eq!(sent.first(), Some(&0x21), "5 bytes and 3 slots were free");
        let tags: Vec<u8> = seen.iter().map(|&(_, _, tag)| tag).collect();
        assert_eq!(tags, sent, "{seen:?}");
        assert_disjoint(&seen);
        release_all_and_grant_whole(&ring, &mut consumer, 2, CAPACITY);
    });
}

/// `produce` for a ring of any slot count.
fn produce_in<const GRANTS: usize>(
    ring: &StagingRing<'static, GRANTS>,
    shadow: &[UnsafeCell<u8>],
    size: usize,
    tag: u8,
) -> bool {
    match ring.grant(size, 1) {
        Ok(grant) => {
            fill(shadow, &grant, tag);
            grant.commit_all();
            true
        }
        Err(GrantError::Full { .. } | GrantError::TooManyUndrained { .. }) => false,
        Err(error) => panic!("unexpected {error}"),
    }
}

/// Scenario: 4 bytes are committed at 0..4, leaving `head_hint` (the head as the last reservation
/// left it) at 4. A producer handle asks for a 2-byte grant with a span of two tickets while the
/// consumer drains the 4 bytes, submits and releases them, which restarts the idle ring at offset
/// 0 of the next lap (the hint still says 4 of the old lap), and then tries to take the whole ring
/// in one 8-byte grant, starting from its own stale hint. The producer's first guess is the stale
/// hint too, with whatever `released` it loaded before the restart.
/// Checked: the producer's span and the whole-ring grant are never both given (together they
/// would overlap); no byte is written while another party may still read or write it (loom's
/// cells); every committed grant is drained exactly once and untorn; afterwards everything comes
/// back and the whole ring fits in one grant at offset 0.
#[test]
fn loom_stale_head_hint_after_restart_with_a_span_outstanding() {
    loom::model(|| {
        let ring = ring_with::<4>();
        let shadow = shadow();
        let mut consumer = RingConsumer::new(ring.clone()).unwrap();
        assert!(produce_in(&ring, &shadow, 4, 0x0f));
        let producer = {
            let (ring, shadow) = (ring.clone(), shadow.clone());
            thread::spawn(move || {
                let mut handle = RingProducer::with_span(&*ring, 4, 2).unwrap();
                let granted = match handle.grant(2, 1) {
                    Ok(grant) => {
                        fill(&shadow, &grant, 0x21);
                        grant.commit_all();
                        true
                    }
                    Err(GrantError::Full { .. }) => false,
                    Err(error) => panic!("unexpected {error}"),
                };
                drop(handle);
                granted
            })
        };
        let first = consumer
            .drain()
            .expect("committed before the producer started");
        assert_eq!((first.offset(), read(&shadow, &first)), (0, 0x0f));
        consumer.mark(FenceValue::new(1)).unwrap();
        assert_eq!(consumer.release_completed(FenceValue::new(1)), 4);
        let whole = produce_in(&ring, &shadow, CAPACITY, 0x33);
        let mut seen: Vec<(usize, usize, u8)> = Vec::new();
        drain_ready(&mut consumer, &shadow, &mut seen);
        let span = producer.join().unwrap();
        drain_ready(&mut consumer, &shadow, &mut seen);
        assert!(!(span && whole), "overlapping grants: {seen:?}");
        let mut expected: Vec<u8> = Vec::new();
        if span {
            expected.push(0x21);
        }
        if whole {
            expected.push(0x33);
        }
        let tags: Vec<u8> = seen.iter().map(|&(_, _, tag)| tag).collect();
        assert_eq!(tags, expected, "{seen:?}");
        assert_disjoint(&seen);
        release_all_and_grant_whole(&ring, &mut consumer, 2, CAPACITY);
    });
}
