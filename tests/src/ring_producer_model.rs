//! A byte-ownership harness for [`RingProducer`](memkit_core::RingProducer): op sequences that mix
//! two producer handles (spans) and plain [`StagingRing::grant`] calls over one ring, checked after
//! every op. Unlike `ring_model` it does not predict offsets (that would re-implement the span
//! sizing); it checks what must hold whatever the offsets:
//! - a granted byte is free: not in a live grant, not committed and undrained, not drained and
//!   waiting for its value;
//! - a drained range is exactly one committed grant (offset and length) holding the bytes its
//!   producer wrote, drained once, and after every earlier grant of the same producer;
//! - requests that can never succeed get the same typed error as a plain grant;
//! - at the end, with every handle flushed, everything committed drains and all space comes back.

use std::collections::VecDeque;
use std::vec::Vec;

use memkit_core::{
    DrainedRange, FenceValue, GrantError, RingConsumer, RingMemory, RingProducer, StagingRing,
    WriteGrant,
};

/// Grant slots of the rings the harness drives: few, so spans run out of tickets.
pub const PRODUCER_MODEL_GRANTS: usize = 8;

/// One step of a workload.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum ProducerOp {
    /// Grant `size` bytes (modulo a bit more than the capacity) at alignment
    /// `1 << (align_log2 % 8)` (a non-power of two when `align_log2` is 255), through producer
    /// handle `who % 3` (2: a plain grant on the ring).
    Grant {
        /// Which producer.
        who: u8,
        /// Requested size before scaling.
        size: u16,
        /// Alignment exponent.
        align_log2: u8,
    },
    /// Commit the live grant at `index % live` with `len % (its length + 1)` bytes.
    Commit {
        /// Which live grant.
        index: u8,
        /// Bytes to commit before scaling.
        len: u16,
    },
    /// Drop the live grant at `index % live`.
    Drop {
        /// Which live grant.
        index: u8,
    },
    /// Flush producer handle `who % 2`.
    Flush {
        /// Which producer.
        who: u8,
    },
    /// Drain everything ready.
    Drain,
    /// Mark what was drained with the next value.
    Mark,
    /// The GPU completes `count` more values; the consumer releases.
    Release {
        /// Values completed.
        count: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Byte {
    Free,
    /// In a live grant, or committed and not drained.
    Held,
    /// Drained, not yet marked.
    Drained,
    /// Marked with a value.
    Marked(u64),
}

/// A grant the harness tracks: who sent it, its place in that producer's order, where it is.
#[derive(Clone, Copy, Debug)]
struct Sent {
    who: usize,
    seq: u64,
    offset: usize,
    len: usize,
    tag: u8,
}

/// Runs `ops` over a ring of `capacity` bytes with two handles of `span_bytes` / `span_grants`
/// spans; `Err` describes the first broken property.
pub fn run_producer_ops(
    capacity: usize,
    span_bytes: usize,
    span_grants: usize,
    ops: &[ProducerOp],
) -> Result<(), String> {
    let mut storage = vec![0u8; capacity];
    let ring: StagingRing<'_, PRODUCER_MODEL_GRANTS> =
        StagingRing::new(RingMemory::new(&mut storage)).map_err(|e| e.to_string())?;
    let mut consumer = RingConsumer::new(&ring).map_err(|e| e.to_string())?;
    let mut producers = [
        RingProducer::with_span(&ring, span_bytes, span_grants).map_err(|e| e.to_string())?,
        RingProducer::with_span(&ring, span_bytes, span_grants).map_err(|e| e.to_string())?,
    ];
    let mut owner = vec![Byte::Free; capacity];
    let mut live: Vec<(WriteGrant<'_, '_, PRODUCER_MODEL_GRANTS>, Sent)> = Vec::new();
    let mut committed: Vec<Sent> = Vec::new();
    let mut next_seq = [0u64; 3];
    // Per producer: sequence numbers sent and not yet drained or dropped, oldest first.
    let mut outstanding: [VecDeque<u64>; 3] = Default::default();
    let (mut value, mut completed, mut tag) = (0u64, 0u64, 0u8);
    let mut unmarked = false;

    for (i, &op) in ops.iter().enumerate() {
        match op {
            ProducerOp::Grant {
                who,
                size,
                align_log2,
            } => {
                let who = usize::from(who % 3);
                let size = usize::from(size) % (capacity + 3);
                let align = if align_log2 == 255 {
                    3
                } else {
                    1 << (align_log2 % 8)
                };
                let result = match who {
                    0 | 1 => producers[who].grant(size, align),
                    _ => ring.grant(size, align),
                };
                match result {
                    Ok(mut grant) => {
                        let (offset, len) = (grant.offset(), grant.len());
                        if len != size || offset % align != 0 || offset + len > capacity {
                            return Err(format!("op {i}: bad grant {offset}+{len} for {size}"));
                        }
                        if let Some(b) = owner[offset..offset + len]
                            .iter()
                            .position(|&b| b != Byte::Free)
                        {
                            return Err(format!(
                                "op {i}: byte {} handed out while {:?}",
                                offset + b,
                                owner[offset + b]
                            ));
                        }
                        owner[offset..offset + len].fill(Byte::Held);
                        tag = tag.wrapping_add(1);
                        grant.bytes_mut().fill(tag);
                        let seq = next_seq[who];
                        next_seq[who] += 1;
                        outstanding[who].push_back(seq);
                        let sent = Sent {
                            who,
                            seq,
                            offset,
                            len,
                            tag,
                        };
                        live.push((grant, sent));
                    }
                    Err(error) => {
                        let expected = if size == 0 {
                            Some(GrantError::ZeroSize)
                        } else if align == 3 {
                            Some(GrantError::AlignmentNotPowerOfTwo)
                        } else if size > capacity {
                            Some(GrantError::NeverFits {
                                requested: size,
                                capacity,
                            })
                        } else {
                            None
                        };
                        let fine = match expected {
                            Some(expected) => error == expected,
                            None => matches!(
                                error,
                                GrantError::Full { .. } | GrantError::TooManyUndrained { .. }
                            ),
                        };
                        if !fine {
                            return Err(format!("op {i}: {error:?} for {size} at {align}"));
                        }
                        if who < 2 && producers[who].has_open_span() {
                            return Err(format!("op {i}: a span stayed open after an error"));
                        }
                    }
                }
            }
            ProducerOp::Commit { index, len } if !live.is_empty() => {
                let (grant, mut sent) = live.remove(usize::from(index) % live.len());
                let len = usize::from(len) % (sent.len + 1);
                grant.commit(len).map_err(|e| format!("op {i}: {e}"))?;
                // The uncommitted tail is given up: the harness no longer guards it.
                owner[sent.offset + len..sent.offset + sent.len].fill(Byte::Free);
                if len == 0 {
                    forget(&mut outstanding[sent.who], sent.seq);
                } else {
                    sent.len = len;
                    committed.push(sent);
                }
            }
            ProducerOp::Drop { index } if !live.is_empty() => {
                let (grant, sent) = live.remove(usize::from(index) % live.len());
                drop(grant);
                owner[sent.offset..sent.offset + sent.len].fill(Byte::Free);
                forget(&mut outstanding[sent.who], sent.seq);
            }
            ProducerOp::Flush { who } => producers[usize::from(who % 2)].flush(),
            ProducerOp::Drain => {
                while let Some(range) = consumer.drain() {
                    check_drained(
                        i,
                        &consumer,
                        &range,
                        &mut committed,
                        &mut outstanding,
                        &mut owner,
                    )?;
                    unmarked = true;
                }
            }
            ProducerOp::Mark => {
                if unmarked {
                    value += 1;
                    consumer
                        .mark(FenceValue::new(value))
                        .map_err(|e| format!("op {i}: {e}"))?;
                    for b in owner.iter_mut().filter(|b| **b == Byte::Drained) {
                        *b = Byte::Marked(value);
                    }
                    unmarked = false;
                }
            }
            ProducerOp::Release { count } => {
                completed = value.min(completed + u64::from(count));
                consumer.release_completed(FenceValue::new(completed));
                for b in owner.iter_mut() {
                    if matches!(*b, Byte::Marked(v) if v <= completed) {
                        *b = Byte::Free;
                    }
                }
            }
            ProducerOp::Commit { .. } | ProducerOp::Drop { .. } => {}
        }
    }

    // The end: give up live grants, flush the handles; everything committed must drain.
    for (grant, sent) in live.drain(..) {
        drop(grant);
        owner[sent.offset..sent.offset + sent.len].fill(Byte::Free);
        forget(&mut outstanding[sent.who], sent.seq);
    }
    for producer in &mut producers {
        producer.flush();
    }
    while let Some(range) = consumer.drain() {
        check_drained(
            ops.len(),
            &consumer,
            &range,
            &mut committed,
            &mut outstanding,
            &mut owner,
        )?;
    }
    if !committed.is_empty() {
        return Err(format!("committed grants never drained: {committed:?}"));
    }
    consumer
        .mark(FenceValue::new(value + 1))
        .map_err(|e| e.to_string())?;
    consumer.release_completed(FenceValue::new(value + 1));
    let stats = ring.stats();
    if stats.bytes_in_flight != 0 || stats.high_water_mark > capacity as u64 {
        return Err(format!("space left in flight at the end: {stats:?}"));
    }
    Ok(())
}

/// Takes `seq` out of a producer's outstanding list (it was dropped: nothing waits for it).
fn forget(outstanding: &mut VecDeque<u64>, seq: u64) {
    if let Some(at) = outstanding.iter().position(|&s| s == seq) {
        outstanding.remove(at);
    }
}

/// Checks a drained range against the committed grants and the ownership map.
fn check_drained(
    op: usize,
    consumer: &RingConsumer<&StagingRing<'_, PRODUCER_MODEL_GRANTS>>,
    range: &DrainedRange,
    committed: &mut Vec<Sent>,
    outstanding: &mut [VecDeque<u64>; 3],
    owner: &mut [Byte],
) -> Result<(), String> {
    let at = committed
        .iter()
        .position(|s| s.offset == range.offset() && s.len == range.len())
        .ok_or_else(|| format!("op {op}: drained {range:?} is no committed grant"))?;
    let sent = committed.remove(at);
    let bytes = consumer
        .bytes(range)
        .ok_or_else(|| format!("op {op}: drained range unreadable"))?;
    if bytes.iter().any(|&b| b != sent.tag) {
        return Err(format!("op {op}: drained bytes changed: {sent:?}"));
    }
    // Its producer's earlier grants were all drained or dropped before it.
    if outstanding[sent.who].front() != Some(&sent.seq) {
        return Err(format!(
            "op {op}: {sent:?} drained before an earlier grant of its producer ({:?})",
            outstanding[sent.who]
        ));
    }
    outstanding[sent.who].pop_front();
    owner[sent.offset..sent.offset + sent.len].fill(Byte::Drained);
    Ok(())
}
