//! A sequential model of the staging ring, driven in lockstep with the real
//! [`StagingRing`](memkit_core::StagingRing) by an op sequence. Proptest (`tests/ring_model.rs`)
//! and cargo-fuzz (`fuzz/fuzz_targets/ring.rs`) both use it, so a failure found by one reproduces
//! in the other.
//!
//! The model keeps positions as plain `u64` byte counts from the start (no lap bits, no packing,
//! no atomics) and its grants, drained ranges and marked submissions in `VecDeque`s. After every op
//! the harness checks that the real ring gave the same answer (offsets, errors and their hints,
//! drained ranges, bytes released, statistics), and, independently of both, a byte-ownership map:
//! - a granted byte was free (no two live grants overlap, and nothing is handed out again before
//!   the value that last read it completed);
//! - a byte comes back only when the value it was marked with completed;
//! - a drained range holds exactly the bytes its producer wrote (every committed byte arrives
//!   exactly once, in ring order, untouched).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::vec::Vec;

use memkit_core::ring::PENDING_SUBMISSIONS;
use memkit_core::{
    CommitError, DEFAULT_WORKING_SET, DrainedRange, FenceValue, GrantError, MarkError,
    RingConsumer, RingMemory, StagingRing, WriteGrant,
};

/// Grant slots of the rings the model drives: few, so that `TooManyUndrained` happens.
pub const MODEL_GRANTS: usize = 8;

/// One step of a workload.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum RingOp {
    /// Grant `size` bytes (taken modulo a bit more than the capacity, so that requests that can
    /// never fit and size 0 happen too) at alignment `1 << (align_log2 % 8)`, or a non-power of
    /// two when `align_log2` is 255.
    Grant {
        /// Requested size before scaling.
        size: u16,
        /// Alignment exponent.
        align_log2: u8,
    },
    /// Commit the live grant at `index % live` with `len` bytes (modulo its length + 2, so that
    /// too-long commits happen).
    Commit {
        /// Which live grant.
        index: u8,
        /// Bytes to commit before scaling.
        len: u16,
    },
    /// Drop the live grant at `index % live` without commit.
    Drop {
        /// Which live grant.
        index: u8,
    },
    /// Drain everything ready.
    Drain,
    /// Mark what was drained with the last value plus `advance` (0 repeats it; 255 tries value 0
    /// or a value below the last).
    Mark {
        /// How far the value moves.
        advance: u8,
    },
    /// The GPU completes `count` more marked values, then the consumer releases.
    Release {
        /// Values completed.
        count: u8,
    },
}

/// What a byte of the ring holds, in the harness's ownership map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByteState {
    Free,
    /// Held by a live grant, or committed and not yet drained.
    Granted,
    /// Given up (a dropped grant, a commit's unused tail): comes back with its range.
    Skipped,
    /// Drained, waiting for a mark.
    Drained,
    /// Marked with a timeline value.
    Marked(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GrantState {
    Live,
    Committed(usize),
    Dropped,
}

#[derive(Clone, Copy, Debug)]
struct ModelGrant {
    /// Absolute position where the data starts.
    start: u64,
    len: usize,
    /// Absolute position where the reservation ends.
    end: u64,
    state: GrantState,
    /// The byte pattern the harness wrote.
    pattern: u8,
}

/// The sequential model: positions are absolute byte counts.
#[derive(Debug)]
pub struct RingModel {
    capacity: u64,
    /// Offset at or past which a grant may go back to the start early.
    working_set: u64,
    head: u64,
    /// Tickets of reservations not yet drained, in ring order (index 0 is `drain_ticket`).
    grants: VecDeque<ModelGrant>,
    drained: u64,
    marked: u64,
    released: u64,
    unmarked_data: bool,
    pending: VecDeque<(u64, u64)>,
    last_mark: u64,
    high_water_mark: u64,
    failed_grants: u64,
    dropped_grants: u64,
    wasted_wrap_bytes: u64,
    alignment_padding_bytes: u64,
    drained_bytes: u64,
    /// Grants that went back to the start before the end of the ring.
    early_wraps: u64,
    /// The bytes at the end of the ring those grants skipped.
    early_wrap_bytes: u64,
    /// The furthest offset in its lap a drained grant's reservation reached.
    bytes_reached: u64,
}

impl RingModel {
    /// A model of an empty ring of `capacity` bytes whose working set is `working_set` (the
    /// ring's default without it).
    pub fn new(capacity: usize, working_set: Option<usize>) -> Self {
        let working_set = working_set
            .unwrap_or(DEFAULT_WORKING_SET.min(capacity / 4))
            .max(1) as u64;
        Self {
            capacity: capacity as u64,
            working_set,
            head: 0,
            grants: VecDeque::new(),
            drained: 0,
            marked: 0,
            released: 0,
            unmarked_data: false,
            pending: VecDeque::new(),
            last_mark: 0,
            high_water_mark: 0,
            failed_grants: 0,
            dropped_grants: 0,
            wasted_wrap_bytes: 0,
            alignment_padding_bytes: 0,
            drained_bytes: 0,
            early_wraps: 0,
            early_wrap_bytes: 0,
            bytes_reached: 0,
        }
    }

    /// Where a grant goes: `(data start, reservation end, whether it wrapped early)`, absolute.
    fn place(&self, size: u64, align: u64) -> (u64, u64, bool) {
        let offset = self.head % self.capacity;
        let lap_start = self.head - offset;
        // Back to the start early: the head is past the working set, everything before
        // `released` in this lap is free, and it holds the grant with at least what is in flight
        // to spare.
        if offset >= self.working_set && self.released >= lap_start {
            let (back, in_flight) = (self.released - lap_start, self.head - self.released);
            if back >= size && in_flight <= back - size {
                let next = lap_start + self.capacity;
                return (next, next + size, true);
            }
        }
        let aligned = offset.checked_next_multiple_of(align);
        match aligned {
            Some(a) if a + size <= self.capacity => (lap_start + a, lap_start + a + size, false),
            _ => {
                let next = lap_start + self.capacity;
                (next, next + size, false)
            }
        }
    }

    fn grant(&mut self, size: usize, align: usize) -> Result<(usize, u64), GrantError> {
        let result = self.try_grant(size, align);
        if result.is_err() {
            self.failed_grants += 1;
        }
        result
    }

    fn try_grant(&mut self, size: usize, align: usize) -> Result<(usize, u64), GrantError> {
        if size == 0 {
            return Err(GrantError::ZeroSize);
        }
        if !align.is_power_of_two() {
            return Err(GrantError::AlignmentNotPowerOfTwo);
        }
        if size as u64 > self.capacity {
            return Err(GrantError::NeverFits {
                requested: size,
                capacity: self.capacity as usize,
            });
        }
        let (start, end, early) = self.place(size as u64, align as u64);
        if end - self.released > self.capacity {
            let wait_for = self
                .pending
                .iter()
                .find(|&&(pending_end, _)| end - pending_end <= self.capacity)
                .map(|&(_, value)| FenceValue::new(value));
            return Err(GrantError::Full { wait_for });
        }
        if self.grants.len() >= MODEL_GRANTS {
            return Err(GrantError::TooManyUndrained {
                slots: MODEL_GRANTS,
            });
        }
        if early {
            self.early_wraps += 1;
            self.early_wrap_bytes += start - self.head;
        }
        self.head = end;
        self.high_water_mark = self.high_water_mark.max(end - self.released);
        Ok(((start % self.capacity) as usize, start))
    }

    /// Drains what is ready: `(offset, len, index of the grant)` in ring order.
    fn drain(&mut self) -> Vec<(usize, usize, ModelGrant)> {
        let mut out = Vec::new();
        while let Some(&grant) = self.grants.front() {
            let len = match grant.state {
                GrantState::Live => break,
                GrantState::Committed(n) => n,
                GrantState::Dropped => 0,
            };
            self.grants.pop_front();
            let lap_of_grant = grant.start - grant.start % self.capacity;
            self.bytes_reached = self.bytes_reached.max(grant.end - lap_of_grant);
            let lap_of_drained = self.drained - self.drained % self.capacity;
            if grant.start >= lap_of_drained + self.capacity
                && !self.drained.is_multiple_of(self.capacity)
            {
                self.wasted_wrap_bytes += lap_of_drained + self.capacity - self.drained;
            } else {
                self.alignment_padding_bytes += grant.start - self.drained;
            }
            self.drained = grant.end;
            if len == 0 {
                self.dropped_grants += 1;
                self.give_back_unmarked_padding();
                continue;
            }
            self.drained_bytes += len as u64;
            self.unmarked_data = true;
            out.push(((grant.start % self.capacity) as usize, len, grant));
        }
        out
    }

    fn give_back_unmarked_padding(&mut self) -> u64 {
        if !self.pending.is_empty() || self.unmarked_data {
            return 0;
        }
        let given_back = self.drained - self.released;
        self.marked = self.drained;
        self.released = self.drained;
        if !self.drained.is_multiple_of(self.capacity)
            && self.grants.is_empty()
            && self.head == self.drained
        {
            let restart = self.drained - self.drained % self.capacity + self.capacity;
            self.head = restart;
            self.drained = restart;
            self.marked = restart;
            self.released = restart;
        }
        given_back
    }

    fn mark(&mut self, value: u64) -> Result<(), MarkError> {
        if value == 0 {
            return Err(MarkError::ZeroValue);
        }
        if value < self.last_mark {
            return Err(MarkError::WentBackwards {
                value: FenceValue::new(value),
                previous: FenceValue::new(self.last_mark),
            });
        }
        if self.drained == self.marked {
            return Ok(());
        }
        if !self.unmarked_data && self.pending.is_empty() {
            self.give_back_unmarked_padding();
            return Ok(());
        }
        self.last_mark = value;
        self.marked = self.drained;
        self.unmarked_data = false;
        if self.pending.len() == PENDING_SUBMISSIONS {
            *self.pending.back_mut().expect("full") = (self.drained, value);
        } else {
            self.pending.push_back((self.drained, value));
        }
        Ok(())
    }

    fn release(&mut self, completed: u64) -> u64 {
        let before = self.released;
        while let Some(&(end, value)) = self.pending.front() {
            if value > completed {
                break;
            }
            self.released = end;
            self.pending.pop_front();
        }
        if self.released == before {
            return 0;
        }
        self.released - before + self.give_back_unmarked_padding()
    }
}

/// What a run did, for tests that want to see that the interesting cases happened.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingRunSummary {
    /// Grants given.
    pub grants: u64,
    /// Grants refused because the ring was full.
    pub full: u64,
    /// Grants refused because too many were undrained.
    pub too_many_undrained: u64,
    /// Ranges drained.
    pub drained: u64,
    /// Bytes skipped at the end of the ring.
    pub wasted_wrap_bytes: u64,
    /// Restarts of the idle ring at offset 0 (the head jumping ahead to a lap start).
    pub laps: u64,
    /// Grants that went back to the start before the end of the ring (see
    /// `StagingRing::with_working_set`).
    pub early_wraps: u64,
}

fn pattern(ticket: u64) -> u8 {
    (ticket as u8).wrapping_mul(37).wrapping_add(11)
}

/// Runs `ops` through a real ring of `capacity` bytes and the model, in lockstep. Returns the
/// first divergence or broken invariant, with the op index.
pub fn run_ring_ops(capacity: usize, ops: &[RingOp]) -> Result<RingRunSummary, String> {
    run_ring_ops_with(capacity, None, ops)
}

/// [`run_ring_ops`] over a ring whose working set is `working_set` (see
/// `StagingRing::with_working_set`; the ring's default without it).
pub fn run_ring_ops_with(
    capacity: usize,
    working_set: Option<usize>,
    ops: &[RingOp],
) -> Result<RingRunSummary, String> {
    let mut memory = vec![0u8; capacity];
    let ring: StagingRing<'_, MODEL_GRANTS> =
        StagingRing::new(RingMemory::new(&mut memory)).map_err(|e| e.to_string())?;
    let ring = match working_set {
        Some(bytes) => ring.with_working_set(bytes),
        None => ring,
    };
    let mut consumer = RingConsumer::new(&ring).map_err(|e| e.to_string())?;
    let mut model = RingModel::new(capacity, working_set);
    let mut owner = vec![ByteState::Free; capacity];
    // Live grants: the real one, and the model's ticket for it.
    let mut live: Vec<(WriteGrant<'_, '_, MODEL_GRANTS>, u64)> = Vec::new();
    // The model's grants by ticket: the ticket of `model.grants[0]` is `first_ticket`.
    let mut first_ticket = 0u64;
    let mut next_ticket = 0u64;
    let mut completed = 0u64;
    let mut summary = RingRunSummary::default();
    let max_size = capacity + capacity / 4 + 1;

    for (i, &op) in ops.iter().enumerate() {
        let err = |what: String| format!("op {i} ({op:?}): {what}");
        let fail = |what: String| Err(err(what));
        match op {
            RingOp::Grant { size, align_log2 } => {
                let size = usize::from(size) % max_size;
                let align = if align_log2 == 255 {
                    3
                } else {
                    1 << (align_log2 % 8)
                };
                let real = ring.grant(size, align);
                let expected = model.grant(size, align);
                match (real, expected) {
                    (Ok(mut grant), Ok((offset, start))) => {
                        if grant.offset() != offset || grant.len() != size {
                            return fail(format!(
                                "granted {}+{} but the model says {offset}+{size}",
                                grant.offset(),
                                grant.len()
                            ));
                        }
                        if offset % align != 0 {
                            return fail(format!("offset {offset} is not aligned to {align}"));
                        }
                        for (b, state) in owner[offset..offset + size].iter_mut().enumerate() {
                            if *state != ByteState::Free {
                                return fail(format!(
                                    "byte {} handed out while {state:?}",
                                    offset + b
                                ));
                            }
                            *state = ByteState::Granted;
                        }
                        grant.bytes_mut().fill(pattern(next_ticket));
                        model.grants.push_back(ModelGrant {
                            start,
                            len: size,
                            end: model.head,
                            state: GrantState::Live,
                            pattern: pattern(next_ticket),
                        });
                        live.push((grant, next_ticket));
                        next_ticket += 1;
                        summary.grants += 1;
                    }
                    (Err(real), Err(expected)) if real == expected => match real {
                        GrantError::Full { .. } => summary.full += 1,
                        GrantError::TooManyUndrained { .. } => summary.too_many_undrained += 1,
                        _ => {}
                    },
                    (real, expected) => {
                        return fail(format!(
                            "real {:?}, model {expected:?}",
                            real.map(|g| g.offset())
                        ));
                    }
                }
            }
            RingOp::Commit { index, .. } | RingOp::Drop { index } if !live.is_empty() => {
                let (grant, ticket) = live.swap_remove(usize::from(index) % live.len());
                let slot = &mut model.grants[(ticket - first_ticket) as usize];
                let (offset, granted) = (grant.offset(), grant.len());
                // The bytes past what is committed are given up.
                let mut kept = 0;
                if let RingOp::Commit { len, .. } = op {
                    let len = usize::from(len) % (granted + 2);
                    let result = grant.commit(len);
                    if len > granted {
                        let expected = Err(CommitError::LengthExceedsGrant {
                            committed: len,
                            granted,
                        });
                        if result != expected {
                            return fail(format!("commit gave {result:?}, expected {expected:?}"));
                        }
                        slot.state = GrantState::Dropped;
                    } else if result.is_err() {
                        return fail(format!("commit of {len} refused: {result:?}"));
                    } else {
                        slot.state = if len == 0 {
                            GrantState::Dropped
                        } else {
                            GrantState::Committed(len)
                        };
                        kept = len;
                    }
                } else {
                    drop(grant);
                    slot.state = GrantState::Dropped;
                }
                owner[offset + kept..offset + granted].fill(ByteState::Skipped);
            }
            RingOp::Commit { .. } | RingOp::Drop { .. } => {}
            RingOp::Drain => {
                let before_released = model.released;
                let before_head = model.head;
                let before_first = first_ticket;
                let before_len = model.grants.len();
                let expected = model.drain();
                first_ticket = before_first + (before_len - model.grants.len()) as u64;
                let mut real: Vec<DrainedRange> = Vec::new();
                while let Some(range) = consumer.drain() {
                    real.push(range);
                }
                let real_pairs: Vec<(usize, usize)> =
                    real.iter().map(|r| (r.offset(), r.len())).collect();
                let expected_pairs: Vec<(usize, usize)> =
                    expected.iter().map(|&(o, l, _)| (o, l)).collect();
                if real_pairs != expected_pairs {
                    return fail(format!(
                        "drained {real_pairs:?}, the model says {expected_pairs:?}"
                    ));
                }
                for (range, &(offset, len, grant)) in real.iter().zip(&expected) {
                    if len > grant.len {
                        return fail(format!("drained {len} bytes of a {}-byte grant", grant.len));
                    }
                    let Some(bytes) = consumer.bytes(range) else {
                        return fail(format!("drained range {offset}+{len} is not readable"));
                    };
                    if bytes.iter().any(|&b| b != grant.pattern) {
                        return fail(format!("drained range {offset}+{len} holds other bytes"));
                    }
                    owner[offset..offset + len].fill(ByteState::Drained);
                }
                summary.drained += real.len() as u64;
                // Dropped grants and padding may have come back at once.
                free_released(&mut owner, &model, before_released, completed).map_err(err)?;
                if model.head != before_head {
                    summary.laps += 1;
                }
            }
            RingOp::Mark { advance } => {
                let value = match advance {
                    255 if model.last_mark > 1 => model.last_mark - 1,
                    255 => 0,
                    a => model.last_mark + u64::from(a),
                };
                let before_released = model.released;
                let expected = model.mark(value);
                let real = consumer.mark(FenceValue::new(value));
                if real != expected {
                    return fail(format!("mark gave {real:?}, the model {expected:?}"));
                }
                if expected.is_ok() {
                    for state in owner.iter_mut() {
                        if *state == ByteState::Drained {
                            *state = ByteState::Marked(value);
                        }
                    }
                }
                free_released(&mut owner, &model, before_released, completed).map_err(err)?;
            }
            RingOp::Release { count } => {
                completed = (completed + u64::from(count)).min(model.last_mark);
                let before_released = model.released;
                let expected = model.release(completed);
                let real = consumer.release_completed(FenceValue::new(completed)) as u64;
                if real != expected {
                    return fail(format!("released {real} bytes, the model {expected}"));
                }
                free_released(&mut owner, &model, before_released, completed).map_err(err)?;
            }
        }
        check_stats(&ring, &model).map_err(err)?;
    }
    summary.wasted_wrap_bytes = model.wasted_wrap_bytes;
    summary.early_wraps = model.early_wraps;
    drop(live);
    Ok(summary)
}

/// Frees the bytes of positions `[before, model.released)` in the ownership map, checking that
/// each was marked with a value at most `completed` (or held nothing for the GPU).
fn free_released(
    owner: &mut [ByteState],
    model: &RingModel,
    before: u64,
    completed: u64,
) -> Result<(), String> {
    let capacity = owner.len() as u64;
    let span = (model.released - before).min(capacity);
    for p in before..before + span {
        let byte = &mut owner[(p % capacity) as usize];
        match *byte {
            ByteState::Marked(v) if v > completed => {
                return Err(format!(
                    "byte {} released before value {v} completed",
                    p % capacity
                ));
            }
            ByteState::Drained => {
                return Err(format!(
                    "byte {} released before it was marked",
                    p % capacity
                ));
            }
            ByteState::Granted => {
                return Err(format!("byte {} released while granted", p % capacity));
            }
            _ => *byte = ByteState::Free,
        }
    }
    // Bytes of dropped grants and skipped commit tails come back with their range.
    Ok(())
}

fn check_stats(ring: &StagingRing<'_, MODEL_GRANTS>, model: &RingModel) -> Result<(), String> {
    let stats = ring.stats();
    let expected = (
        model.capacity,
        model.head - model.released,
        model.high_water_mark,
        model.wasted_wrap_bytes,
        model.alignment_padding_bytes,
        model.failed_grants,
        model.dropped_grants,
        model.drained_bytes,
        (
            model.early_wraps,
            model.early_wrap_bytes,
            model.bytes_reached,
        ),
    );
    let real = (
        stats.capacity,
        stats.bytes_in_flight,
        stats.high_water_mark,
        stats.wasted_wrap_bytes,
        stats.alignment_padding_bytes,
        stats.failed_grants,
        stats.dropped_grants,
        stats.drained_bytes,
        (
            stats.early_wraps,
            stats.early_wrap_bytes,
            stats.bytes_reached,
        ),
    );
    if real != expected {
        let mut msg = String::new();
        let _ = write!(
            msg,
            "stats (capacity, in flight, high water, wrap, padding, failed, dropped, drained, \
             (early wraps, early wrap bytes, reached)) {real:?}, the model {expected:?}"
        );
        return Err(msg);
    }
    Ok(())
}
