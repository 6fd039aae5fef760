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
        consumer.mark(FenceValue::new(2)).unwrap();
        consumer.release_completed(FenceValue::new(2));
        assert_eq!(ring.stats().bytes_in_flight, 0);
        assert!(ring.stats().high_water_mark <= CAPACITY as u64);
        let whole = ring.grant(CAPACITY, 1).expect("the ring is empty again");
        assert_eq!(whole.offset(), 0);
        whole.commit_all();
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
        consumer.mark(FenceValue::new(1)).unwrap();
        consumer.release_completed(FenceValue::new(1));
        assert_eq!(ring.stats().bytes_in_flight, 0);
        let whole = ring.grant(CAPACITY, 1).expect("the ring is empty again");
        assert_eq!(whole.offset(), 0);
        whole.commit_all();
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
        consumer.mark(FenceValue::new(1)).unwrap();
        consumer.release_completed(FenceValue::new(1));
        assert_eq!(ring.stats().bytes_in_flight, 0);
        let whole = ring
            .grant(SPAN_CAPACITY, 1)
            .expect("the ring is empty again");
        assert_eq!(whole.offset(), 0);
        whole.commit_all();
    });
}
