//! The lock-free staging ring: many producer threads write upload data into one byte region at
//! once, and the submitting thread hands those bytes to the GPU and takes the space back when the
//! GPU has read them.
//!
//! # The protocol
//! - A producer calls [`StagingRing::grant`] for `size` bytes at an alignment. One compare-and-swap
//!   on the ring's head word reserves a contiguous range and a *ticket* (the grant's place in ring
//!   order) together, so producers never wait for each other: a producer that loses the race
//!   retries with the new head, and a producer that has not committed yet holds up nobody's
//!   reservation.
//! - The producer writes into its [`WriteGrant`] and commits it by value. Committing publishes a
//!   small descriptor in the ticket's slot; a grant dropped without commit publishes an empty
//!   descriptor, so the consumer passes over its range instead of waiting for it forever.
//! - A producer that sends many grants takes a [`RingProducer`]: one CAS reserves a *span* (many
//!   tickets and the bytes for them), and its grants are then carved from the span with plain
//!   arithmetic, so producers on different threads stop contending for the head word. The grants
//!   are ordinary [`WriteGrant`]s with their own tickets: they commit, drop and drain exactly like
//!   grants from [`StagingRing::grant`]. Closing the span (`flush`, drop, or the span running out)
//!   gives its unused tail back when nobody reserved after it, and otherwise publishes its unused
//!   tickets as empty, so the consumer never waits on a span that is no longer being written.
//! - The consumer ([`RingConsumer`], one per ring) drains committed ranges strictly in ring order
//!   ([`RingConsumer::drain`]): a committed range behind an uncommitted earlier one waits for it,
//!   but `drain` never waits, it returns what is ready. The consumer tags what it drained with the
//!   timeline value of the submission that reads it ([`RingConsumer::mark`]), and
//!   [`RingConsumer::release_completed`] gives back the space of every submission whose value has
//!   completed. A byte is never handed out again before that.
//!
//! - Bytes are handed out in ring order, but not always round the whole ring: past a working set
//!   ([`StagingRing::with_working_set`]), a grant goes back to the start early when the consumer
//!   has given the start back, so that a producer the GPU keeps up with rewrites the same few
//!   MiB, which stay in the CPU's caches. The skipped end comes back with that grant.
//!
//! The state machine here deals only in offsets and lengths; [`memory`] is the one thin layer that
//! turns them into byte slices.
//!
//! # Positions
//! Ring positions are offsets in `[0, capacity)` plus a lap bit, so that "the head is a whole lap
//! ahead of the released position" (full) differs from "equal" (empty). The head word packs the
//! next ticket (modulo `2 * GRANTS`) above the head position, which is what lets one CAS take
//! both. On 64-bit targets that leaves room for any capacity; on 32-bit targets the capacity is
//! limited to `2^(30 - log2(GRANTS))` bytes (16 MiB with the default 64 grant slots), reported by
//! [`StagingRing::MAX_CAPACITY`].
#![deny(unsafe_code)]

pub mod memory;
mod producer;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

use core::fmt;
use core::ops::Deref;
use core::sync::atomic::AtomicUsize as CoreAtomicUsize;

use crate::ConfigError;
use crate::sync::{AtomicUsize, AtomicValue64, Ordering};
use crate::timeline::FenceValue;

pub use memory::RingMemory;
pub use producer::{DEFAULT_SPAN_BYTES, RingProducer};

/// The `len` of the descriptor a producer handle publishes for a ticket it reserved and did not
/// use: the consumer passes over it like a dropped grant, without counting a dropped grant. No
/// grant is this long (a capacity is at most `MAX_CAPACITY`).
const UNUSED_TICKET: usize = usize::MAX;

/// The default [`StagingRing::with_working_set`]: 8 MiB, a few cores' share of a server CPU's
/// caches, and two of the coordinator's default 4 MiB upload pieces.
pub const DEFAULT_WORKING_SET: usize = 8 << 20;

/// How many marked submissions the consumer tracks separately. Marking more than this before
/// releasing merges the newest two (their space then comes back with the later value): safe, and
/// only later.
pub const PENDING_SUBMISSIONS: usize = 16;

/// Keeps a value on its own cache line, so producers hammering the head do not slow down the
/// consumer's fields and the other way round.
#[derive(Debug)]
#[repr(align(64))]
struct CacheLine<T>(T);

impl<T> Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One ticket's descriptor. A producer fills it at commit; the consumer only reads it. The slot
/// of ticket `t` is reused by ticket `t + GRANTS`, which producers take only once the consumer
/// published that it drained `t` (`StagingRing::drained_ticket`).
#[derive(Debug)]
#[repr(align(64))]
struct GrantSlot {
    /// `(ticket mod 2*GRANTS) << 1 | 1` once that ticket committed: the descriptor is valid. (The
    /// value the slot's previous ticket left differs in the ticket bits; 0 is no ticket's.)
    stamp: AtomicUsize,
    /// Offset of the grant's first byte.
    start: AtomicUsize,
    /// Bytes committed (0 for a grant dropped without commit).
    len: AtomicUsize,
    /// Position where the grant's reservation ends (the next ticket's reservation begins there).
    end: AtomicUsize,
}

/// The statistics only the consumer writes.
#[derive(Debug)]
struct ConsumerCounters {
    wasted_wrap_bytes: AtomicUsize,
    /// The furthest offset a drained grant's reservation reached.
    bytes_reached: AtomicUsize,
    alignment_padding_bytes: AtomicUsize,
    dropped_grants: AtomicUsize,
    drained_bytes: AtomicUsize,
}

/// The early wraps' statistics, written by the producers that take them.
#[derive(Debug)]
struct EarlyWraps {
    count: AtomicUsize,
    skipped_bytes: AtomicUsize,
}

/// A marked submission, published so that producers facing a full ring can say which value to
/// wait for.
#[derive(Debug)]
struct PublishedSubmission {
    /// Position up to which space comes back when `value` completes.
    end: AtomicUsize,
    /// The submission's timeline value.
    value: AtomicValue64,
}

/// Why a grant was refused. A refused grant changes nothing but the `failed_grants` counter.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantError {
    /// A size of zero was asked for.
    ZeroSize,
    /// The alignment is not a power of two.
    AlignmentNotPowerOfTwo,
    /// The request is larger than the whole ring: it can never fit.
    NeverFits {
        /// Bytes asked for.
        requested: usize,
        /// The ring's capacity.
        capacity: usize,
    },
    /// The ring has no contiguous room for the request now.
    Full {
        /// The timeline value whose completion (followed by the consumer's
        /// [`RingConsumer::release_completed`]) makes room, as far as the submissions marked so
        /// far go. `None`: the space is held by grants not yet submitted (uncommitted, undrained
        /// or unmarked); the consumer has to drain and submit them first.
        wait_for: Option<FenceValue>,
    },
    /// Every grant slot holds a grant the consumer has not drained yet; the consumer must drain.
    TooManyUndrained {
        /// The number of grant slots (`GRANTS`).
        slots: usize,
    },
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroSize => f.write_str("grant size is zero"),
            Self::AlignmentNotPowerOfTwo => f.write_str("alignment is not a power of two"),
            Self::NeverFits {
                requested,
                capacity,
            } => write!(
                f,
                "grant of {requested} bytes can never fit in a ring of {capacity} bytes"
            ),
            Self::Full {
                wait_for: Some(value),
            } => write!(
                f,
                "staging ring full: room comes back when timeline value {} completes",
                value.get()
            ),
            Self::Full { wait_for: None } => f.write_str(
                "staging ring full: the space is held by grants not yet drained and submitted",
            ),
            Self::TooManyUndrained { slots } => write!(
                f,
                "all {slots} grant slots hold grants the consumer has not drained yet"
            ),
        }
    }
}

impl core::error::Error for GrantError {}

/// Why a commit was refused. The grant's range is then passed over as if it had been dropped.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitError {
    /// More bytes were committed than the grant holds.
    LengthExceedsGrant {
        /// Bytes the caller tried to commit.
        committed: usize,
        /// Bytes the grant holds.
        granted: usize,
    },
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::LengthExceedsGrant { committed, granted } => write!(
                f,
                "commit of {committed} bytes exceeds the grant's {granted} bytes"
            ),
        }
    }
}

impl core::error::Error for CommitError {}

/// Why a mark was refused. A refused mark changes nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MarkError {
    /// Value 0 stands for "nothing submitted" and is complete from the start; no submission
    /// signals it.
    ZeroValue,
    /// Submissions are marked in the order they signal: a value below the previous mark's.
    WentBackwards {
        /// The value given.
        value: FenceValue,
        /// The previous mark's value.
        previous: FenceValue,
    },
    /// The consumer's holder dereferenced to a ring other than the one the consumer was taken
    /// from (a `Deref` that does not always return the same ring); the consumer touches no other
    /// ring.
    RingChanged,
}

impl fmt::Display for MarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroValue => f.write_str("timeline value 0 cannot tag a submission"),
            Self::WentBackwards { value, previous } => write!(
                f,
                "timeline value {} is below the previous submission's {}",
                value.get(),
                previous.get()
            ),
            Self::RingChanged => f.write_str(
                "the consumer's holder no longer dereferences to the ring the consumer was taken from",
            ),
        }
    }
}

impl core::error::Error for MarkError {}

/// Why a ring's consumer could not be taken.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsumerError {
    /// The ring already has its consumer (each ring has one, for its whole life).
    Taken,
    /// Every consumer id was handed out. Only a 32-bit target gets here, after `2^32 - 2`
    /// consumers in one process: ids are never reused, since an id is what ties a consumer to its
    /// ring.
    IdsExhausted,
}

impl fmt::Display for ConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Taken => f.write_str("the staging ring's consumer was already taken"),
            Self::IdsExhausted => f.write_str("every staging ring consumer id was handed out"),
        }
    }
}

impl core::error::Error for ConsumerError {}

/// The ring's counters. Read lock-free, so the fields are each up to date but not a snapshot of
/// one instant. Counters wrap at `usize::MAX` (matters only on 32-bit targets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingStats {
    /// Bytes the ring manages.
    pub capacity: u64,
    /// Bytes reserved and not yet released: granted, committed, drained or waiting for the GPU.
    pub bytes_in_flight: u64,
    /// Highest `bytes_in_flight` since construction. The end of the ring that an early wrap
    /// skips counts as in flight until it comes back, so with early wraps this can reach the
    /// capacity although producers write far less of the ring: see `bytes_reached`.
    pub high_water_mark: u64,
    /// How far into the ring drained grants have reached: producers only ever wrote the first
    /// `bytes_reached` bytes. While the GPU keeps up, early wraps keep this near the working
    /// set ([`StagingRing::with_working_set`]); a ring whose `bytes_reached` stays below its
    /// capacity never needed the rest.
    pub bytes_reached: u64,
    /// Bytes skipped at the end of the ring because a grant did not fit before the wrap, or went
    /// back to the start early (`early_wrap_bytes` of them).
    pub wasted_wrap_bytes: u64,
    /// Grants that went back to the start of the ring early, to keep producers' writes within
    /// the working set.
    pub early_wraps: u64,
    /// Bytes those early wraps skipped at the end of the ring: not lost, they come back with
    /// the wrapping grant's space.
    pub early_wrap_bytes: u64,
    /// Bytes skipped to align grants.
    pub alignment_padding_bytes: u64,
    /// Grants refused (full, too many undrained, or invalid).
    pub failed_grants: u64,
    /// Grants dropped without commit (or with a refused commit).
    pub dropped_grants: u64,
    /// Bytes committed and drained.
    pub drained_bytes: u64,
}

/// A range the consumer drained: committed bytes, in ring order, ready to be read by the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DrainedRange {
    offset: usize,
    len: usize,
    /// The range's start as a ring position (offset plus lap bit), to check it is still drained.
    position: usize,
    /// The grant's ticket, counted in full (not modulo `2 * GRANTS` like the head word's): it
    /// says whether the range was given back. The position alone cannot, since a position is an
    /// offset plus one lap bit and comes round again every second lap (or after a restart).
    ticket: usize,
    /// The id of the consumer that drained it: another consumer's range is never this one's.
    consumer: usize,
}

impl DrainedRange {
    /// Byte offset of the range in the ring's memory (the source offset of a copy).
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes in the range (never zero).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: empty grants are passed over, never drained. (For clippy's `len_without_is_empty`.)
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The position arithmetic of one ring: offsets in `[0, capacity)` plus a lap bit above them.
#[derive(Clone, Copy, Debug)]
struct Positions {
    capacity: usize,
    /// The lap bit; offsets lie below it.
    lap_bit: usize,
    /// Offset past which a grant goes back to the start of the ring early, when the start is free
    /// (see [`StagingRing::with_working_set`]); above the capacity: never.
    working_set: usize,
}

// Every grant and drain runs this arithmetic from the caller's crate; `#[inline]` lets it be
// inlined there (the type is not generic, so it would otherwise be a call).
impl Positions {
    #[inline]
    fn offset(self, position: usize) -> usize {
        position & (self.lap_bit - 1)
    }

    #[inline]
    fn lap(self, position: usize) -> bool {
        position & self.lap_bit != 0
    }

    #[inline]
    fn make(self, lap: bool, offset: usize) -> usize {
        // An offset equal to the capacity is the next lap's offset 0.
        if offset == self.capacity {
            if lap { 0 } else { self.lap_bit }
        } else if lap {
            self.lap_bit | offset
        } else {
            offset
        }
    }

    /// Bytes from position `from` forward to position `to`, where `to` is at most one lap ahead.
    /// A `to` behind `from` comes out at `capacity` or more.
    #[inline]
    fn distance(self, from: usize, to: usize) -> usize {
        let (from_off, to_off) = (self.offset(from), self.offset(to));
        if self.lap(from) == self.lap(to) {
            if to_off >= from_off {
                to_off - from_off
            } else {
                // Behind: report something no caller accepts.
                2 * self.capacity - (from_off - to_off)
            }
        } else {
            self.capacity - from_off + to_off
        }
    }

    /// Where a grant of `size` bytes at `align` goes when the head is at `head`: the data offset,
    /// the bytes the reservation takes from the head (padding included) and the new head.
    #[inline]
    fn place(self, head: usize, size: usize, align: usize) -> Placement {
        let offset = self.offset(head);
        // The common case first, as a short chain of arithmetic on the head (every grant's CAS
        // waits for it): the grant ends before the end of the ring, so the head just moves
        // forward in its lap. `offset + padding` rounds the offset up to `align` and cannot
        // overflow: offsets lie below the lap bit (at most 2^(usize::BITS - 3)) and `align` is a
        // power of two.
        let padding = offset.wrapping_neg() & (align - 1);
        let start = offset + padding;
        if start < self.capacity && self.capacity - start > size {
            return Placement {
                start,
                taken: padding + size,
                end: head + padding + size,
            };
        }
        self.place_at_end(head, size, align)
    }

    /// The placement at the start of the next lap for a grant of `size` bytes, taken before the
    /// head reaches the end of the ring, when going back early keeps the bytes producers write
    /// few (see [`StagingRing::with_working_set`]). Only when the head is at or past the working
    /// set, the consumer has given back the whole lap up to `released` (in the head's lap) and
    /// what it gave back at the start holds the grant with at least as many bytes to spare as
    /// are in flight: what the wrap skips at the end comes back only after the grant, so the
    /// room left meanwhile is at least what was in use before.
    ///
    /// Any placement is sound as long as the caller's room check and CAS accept it: this one is
    /// the same wrap as [`place_at_end`](Self::place_at_end)'s, only earlier.
    #[inline]
    fn place_early(self, head: usize, released: usize, size: usize) -> Option<Placement> {
        let (offset, back) = (self.offset(head), self.offset(released));
        let early = offset >= self.working_set
            && self.lap(head) == self.lap(released)
            && back <= offset
            // In flight `offset - back`, spare after the grant `back - size`.
            && back >= size
            && offset - back <= back - size;
        early.then(|| Placement {
            start: 0,
            taken: self.capacity - offset + size,
            end: self.make(!self.lap(head), size),
        })
    }

    /// `place` for a grant that reaches or passes the end of the ring.
    #[inline]
    fn place_at_end(self, head: usize, size: usize, align: usize) -> Placement {
        let (lap, offset) = (self.lap(head), self.offset(head));
        let aligned = offset
            .checked_add(align - 1)
            .map(|v| v & !(align - 1))
            .filter(|&v| v <= self.capacity && self.capacity - v >= size);
        match aligned {
            Some(start) => Placement {
                start,
                taken: start - offset + size,
                end: self.make(lap, start + size),
            },
            // Does not fit before the end of the ring: skip the tail, start the next lap.
            None => Placement {
                start: 0,
                taken: self.capacity - offset + size,
                end: self.make(!lap, size),
            },
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Placement {
    start: usize,
    taken: usize,
    end: usize,
}

/// What one CAS on the head reserved: the tickets `ticket..ticket + tickets`, the first grant's
/// placement, and `extra` bytes after the first grant (in the same lap) for the others.
#[derive(Clone, Copy, Debug)]
struct Reservation {
    ticket: usize,
    tickets: usize,
    placement: Placement,
    extra: usize,
}

/// How one attempt at a reservation ended.
#[derive(Clone, Copy, Debug)]
enum Attempt {
    Reserved(Reservation),
    Failed(GrantError),
    /// Try again from this head and `released` (the head read after `released`).
    Again {
        head: usize,
        released: usize,
    },
}

/// What a producer handle asks [`StagingRing::reserve`] for beyond its first grant: up to
/// `tickets` tickets in all, and room for the later ones at `bytes_per_ticket` each (at least 1),
/// the whole span within `max_bytes`.
#[derive(Clone, Copy, Debug)]
struct SpanRequest {
    tickets: usize,
    bytes_per_ticket: usize,
    max_bytes: usize,
}

impl SpanRequest {
    /// The tickets (at least 1) and the extra bytes to reserve for a first grant at `placement`
    /// when `free_tickets` (at least 1) tickets and `room` bytes (at least `placement.taken`) are
    /// free. The extra bytes stay before the end of the ring, so the span is contiguous.
    fn fit(
        self,
        positions: Positions,
        placement: Placement,
        free_tickets: usize,
        room: usize,
    ) -> (usize, usize) {
        let wanted = self.tickets.min(free_tickets);
        if wanted <= 1 {
            return (1, 0);
        }
        let extra = self
            .bytes_per_ticket
            .saturating_mul(wanted - 1)
            .min(self.max_bytes.saturating_sub(placement.taken))
            .min(room - placement.taken)
            .min(positions.capacity - positions.offset(placement.end));
        // As many tickets as the extra bytes hold grants of the expected size.
        let tickets = wanted.min(1 + extra / self.bytes_per_ticket.max(1));
        if tickets == 1 {
            (1, 0)
        } else {
            (tickets, extra)
        }
    }
}

/// The lock-free staging ring over a byte region given at construction.
///
/// Share it between threads by reference or in an `Arc`; producers call [`grant`](Self::grant) on
/// `&self`. One [`RingConsumer`] drains it. `GRANTS` (a power of two, 2 to 4096) bounds how many
/// grants may be reserved and not yet drained at once.
#[derive(Debug)]
pub struct StagingRing<'m, const GRANTS: usize = 64> {
    /// `ticket << TICKET_SHIFT | head position`: the next ticket and where its reservation starts.
    head: CacheLine<AtomicUsize>,
    /// The head as the last successful reservation left it (behind the head word when a span was
    /// closed or the consumer restarted the ring since): the first guess of the next reservation,
    /// on its own line so that reading it does not wait for the last CAS on the head.
    head_hint: CacheLine<AtomicUsize>,
    /// Position up to which the consumer gave space back. Only the consumer writes it.
    released: CacheLine<AtomicUsize>,
    /// The next ticket the consumer will drain (modulo `2 * GRANTS`): every earlier ticket's slot
    /// is free for reuse. Only the consumer writes it. Producers read this rather than the slot
    /// itself, so the consumer never writes the slots and a grant does not wait for a slot's cache
    /// line to come back from the consumer.
    drained_ticket: CacheLine<AtomicUsize>,
    /// The consumer's marked submissions, published for producers' `Full` errors:
    /// `first index | count << 16`.
    published_range: AtomicUsize,
    published: [PublishedSubmission; PENDING_SUBMISSIONS],
    /// The id of the consumer taken from this ring, 0 until then. Written once, by
    /// [`RingConsumer::new`]; never reset, so the ring has one consumer for its whole life. Not the
    /// loom shim's atomic: it is an identity checked on the consumer's thread, not part of the
    /// protocol loom explores (and the id counter it is compared with is a `static`).
    consumer_id: CoreAtomicUsize,
    /// Read by every grant, written only when it rises: its own line, so the consumer's and the
    /// failing producers' counters do not keep taking it away.
    high_water_mark: CacheLine<AtomicUsize>,
    failed_grants: CacheLine<AtomicUsize>,
    /// Written by producers on the rare early wrap.
    early_wraps: CacheLine<EarlyWraps>,
    /// Written by the consumer on every drain.
    consumer_counters: CacheLine<ConsumerCounters>,
    positions: Positions,
    slots: [GrantSlot; GRANTS],
    memory: RingMemory<'m>,
}

impl<'m, const GRANTS: usize> StagingRing<'m, GRANTS> {
    /// Bits of the ticket kept in the head word and in the stamps: tickets modulo `2 * GRANTS`.
    const TICKET_BITS: u32 = GRANTS.trailing_zeros() + 1;

    /// Bit position of the ticket in the head word (a constant, so packing is a fixed shift).
    const TICKET_SHIFT: u32 = usize::BITS - Self::TICKET_BITS;

    /// The head word's position bits (below the ticket).
    const POSITION_MASK: usize = (1 << Self::TICKET_SHIFT) - 1;

    /// The largest capacity this target and `GRANTS` allow.
    pub const MAX_CAPACITY: usize = 1 << (usize::BITS - Self::TICKET_BITS - 1);

    /// A ring over `memory`, with its whole length as capacity.
    ///
    /// Errors: [`ConfigError::ZeroCapacity`], [`ConfigError::CapacityTooLarge`] (see
    /// [`Self::MAX_CAPACITY`]).
    pub fn new(memory: RingMemory<'m>) -> Result<Self, ConfigError> {
        const {
            assert!(
                GRANTS.is_power_of_two() && GRANTS >= 2 && GRANTS <= 4096,
                "GRANTS must be a power of two from 2 to 4096"
            )
        };
        let capacity = memory.len();
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if capacity > Self::MAX_CAPACITY {
            return Err(ConfigError::CapacityTooLarge {
                max: Self::MAX_CAPACITY as u64,
            });
        }
        Ok(Self {
            head: CacheLine(AtomicUsize::new(0)),
            head_hint: CacheLine(AtomicUsize::new(0)),
            released: CacheLine(AtomicUsize::new(0)),
            drained_ticket: CacheLine(AtomicUsize::new(0)),
            published_range: AtomicUsize::new(0),
            published: core::array::from_fn(|_| PublishedSubmission {
                end: AtomicUsize::new(0),
                value: AtomicValue64::new(0),
            }),
            consumer_id: CoreAtomicUsize::new(0),
            high_water_mark: CacheLine(AtomicUsize::new(0)),
            failed_grants: CacheLine(AtomicUsize::new(0)),
            early_wraps: CacheLine(EarlyWraps {
                count: AtomicUsize::new(0),
                skipped_bytes: AtomicUsize::new(0),
            }),
            consumer_counters: CacheLine(ConsumerCounters {
                wasted_wrap_bytes: AtomicUsize::new(0),
                bytes_reached: AtomicUsize::new(0),
                alignment_padding_bytes: AtomicUsize::new(0),
                dropped_grants: AtomicUsize::new(0),
                drained_bytes: AtomicUsize::new(0),
            }),
            positions: Positions {
                capacity,
                lap_bit: 1 << (Self::TICKET_SHIFT - 1),
                working_set: DEFAULT_WORKING_SET.min(capacity / 4).max(1),
            },
            slots: core::array::from_fn(|_| GrantSlot {
                stamp: AtomicUsize::new(0),
                start: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                end: AtomicUsize::new(0),
            }),
            memory,
        })
    }

    /// Sets how far into the ring the head goes before a grant may go back to the start early
    /// (the default is [`DEFAULT_WORKING_SET`], at most a quarter of the capacity). `usize::MAX`
    /// (or anything at or above the capacity): never early, the head goes round the whole ring.
    ///
    /// A ring hands out its bytes in order, so without this a producer that the GPU keeps up
    /// with still writes every byte of the ring once per lap: in a 64 MiB ring that is 64 MiB of
    /// memory the CPU's caches do not hold by the time it comes round. Once the head is past the
    /// working set, a grant goes to the start of the next lap instead when the consumer has given
    /// the start back and the room left there after the grant is at least what is in flight (so
    /// the skipped end, which comes back only after that grant, never leaves producers less room
    /// than they were using). Producers that keep more in flight than that still use the whole
    /// ring. Measured on an NVIDIA H200's host (BENCHMARKS.md, "the ring's working set"): one
    /// thread copied 4 MiB pieces into mapped staging memory at 7.4-8.8 GB/s going round 8 or
    /// 16 MiB of it, and at 5.0-6.1 GB/s round 64 or 256 MiB; through the coordinator's default
    /// 64 MiB ring, one producer's 4 MiB uploads ran 1.5x as fast with the default working set
    /// as going round in full.
    ///
    /// The ring's statistics count the skipped end as in flight until it comes back, so
    /// `high_water_mark` can reach the capacity although producers write far less of it;
    /// [`RingStats::bytes_reached`] says how far into the ring they wrote, and
    /// [`RingStats::early_wraps`] how often they went back early.
    #[must_use]
    pub fn with_working_set(mut self, bytes: usize) -> Self {
        self.positions.working_set = bytes.max(1);
        self
    }

    /// Bytes the ring manages.
    pub fn capacity(&self) -> usize {
        self.positions.capacity
    }

    /// The memory the ring hands out.
    pub fn memory(&self) -> &RingMemory<'m> {
        &self.memory
    }

    fn ticket_mask(&self) -> usize {
        (1 << Self::TICKET_BITS) - 1
    }

    fn pack(&self, ticket: usize, position: usize) -> usize {
        ((ticket & self.ticket_mask()) << Self::TICKET_SHIFT) | position
    }

    fn unpack(&self, head: usize) -> (usize, usize) {
        (
            head >> Self::TICKET_SHIFT,
            head & ((1 << Self::TICKET_SHIFT) - 1),
        )
    }

    fn committed_stamp(&self, ticket: usize) -> usize {
        ((ticket & self.ticket_mask()) << 1) | 1
    }

    /// Reserves `size` bytes whose offset is a multiple of `align`, for the caller to write and
    /// commit. Never blocks: a full ring is an error that says what to wait for.
    ///
    /// The offset is aligned within the ring; the address is aligned too when the memory's base
    /// is (see [`RingMemory::base_alignment`]).
    ///
    /// Errors: [`GrantError::ZeroSize`], [`GrantError::AlignmentNotPowerOfTwo`],
    /// [`GrantError::NeverFits`], [`GrantError::Full`], [`GrantError::TooManyUndrained`].
    #[inline]
    pub fn grant(
        &self,
        size: usize,
        align: usize,
    ) -> Result<WriteGrant<'_, 'm, GRANTS>, GrantError> {
        match self.try_grant(size, align) {
            Ok(grant) => Ok(grant),
            Err(error) => {
                // Relaxed: a statistic; nothing is ordered by it.
                self.failed_grants.fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    // Always: the grant's whole fast path (one CAS) belongs in the caller's loop.
    #[inline(always)]
    fn try_grant(
        &self,
        size: usize,
        align: usize,
    ) -> Result<WriteGrant<'_, 'm, GRANTS>, GrantError> {
        self.check_request(size, align)?;
        let reservation = self.reserve(size, align, None)?;
        Ok(WriteGrant {
            ring: self,
            ticket: reservation.ticket,
            offset: reservation.placement.start,
            len: size,
            end: reservation.placement.end,
            finished: false,
        })
    }

    /// Refuses requests that no state of the ring could grant.
    #[inline(always)]
    fn check_request(&self, size: usize, align: usize) -> Result<(), GrantError> {
        if size == 0 {
            return Err(GrantError::ZeroSize);
        }
        if !align.is_power_of_two() {
            return Err(GrantError::AlignmentNotPowerOfTwo);
        }
        let capacity = self.positions.capacity;
        if size > capacity {
            return Err(GrantError::NeverFits {
                requested: size,
                capacity,
            });
        }
        Ok(())
    }

    /// Reserves, with one CAS on the head, a grant of `size` bytes at `align` (a checked request)
    /// and, when `span` asks for it, more tickets and the bytes after the grant for a producer
    /// handle to hand out later (see [`RingProducer`]). `None` compiles to the plain grant.
    ///
    /// The first attempt starts from `head_hint`, the head as the last reservation left it,
    /// rather than from a load of the head word: on x86 a load of the line a locked instruction
    /// just wrote waits for that instruction to finish, and the CAS would wait for the load (on a
    /// server Xeon that wait is about as long as the CAS itself). The CAS checks the guess. The
    /// checks before it only ever fail towards a retry from the head word itself, so an error is
    /// reported only from a head read after `released` was, as if there were no hint.
    #[inline(always)]
    fn reserve(
        &self,
        size: usize,
        align: usize,
        span: Option<SpanRequest>,
    ) -> Result<Reservation, GrantError> {
        // Acquire: pairs with the Release store of the hint, so the `released` and
        // `drained_ticket` we load next are at least those its writer checked it against: the
        // guess is never more than a lap ahead of our `released`.
        let head = self.head_hint.load(Ordering::Acquire);
        // Acquire: pairs with the consumer's Release store of `released`, so its reads of the
        // released bytes (and the GPU's, which it waited for) happen before we hand them out to
        // be written.
        let released = self.released.load(Ordering::Acquire);
        match self.attempt(head, released, false, size, align, span) {
            Attempt::Reserved(reservation) => Ok(reservation),
            Attempt::Failed(error) => Err(error),
            Attempt::Again { head, released } => {
                self.reserve_again(head, released, size, align, span)
            }
        }
    }

    /// `reserve` after its first attempt failed: from `head`, read from the head word after
    /// `released` was loaded.
    #[inline(never)]
    fn reserve_again(
        &self,
        mut head: usize,
        mut released: usize,
        size: usize,
        align: usize,
        span: Option<SpanRequest>,
    ) -> Result<Reservation, GrantError> {
        loop {
            match self.attempt(head, released, true, size, align, span) {
                Attempt::Reserved(reservation) => return Ok(reservation),
                Attempt::Failed(error) => return Err(error),
                Attempt::Again {
                    head: next_head,
                    released: next_released,
                } => (head, released) = (next_head, next_released),
            }
        }
    }

    /// One try at reserving from `head` with `released`. `verified`: `head` was read from the
    /// head word after `released` was loaded, and `released` still held after it, so `released`
    /// is neither ahead of it nor laps behind, and a full ring or a lack of slots seen from it may
    /// be reported.
    #[inline(always)]
    fn attempt(
        &self,
        head: usize,
        released: usize,
        verified: bool,
        size: usize,
        align: usize,
        span: Option<SpanRequest>,
    ) -> Attempt {
        let capacity = self.positions.capacity;
        let (ticket, position) = self.unpack(head);
        let (placement, early) = match self.positions.place_early(position, released, size) {
            Some(early) => (early, true),
            None => (self.positions.place(position, size, align), false),
        };
        let used = self.positions.distance(released, position);
        if used + placement.taken > capacity {
            // Acquire as in `reserve`. If the head was a guess, or the consumer released (or
            // restarted the ring) since we loaded `released`, read both again rather than report
            // a full ring that is not. Retries only while the consumer makes progress.
            let fresh = self.released.load(Ordering::Acquire);
            if !verified || fresh != released {
                return self.reload();
            }
            return Attempt::Failed(GrantError::Full {
                wait_for: self.wait_hint(position, placement.taken),
            });
        }
        // Acquire: pairs with the consumer's Release after it read the descriptors of every
        // ticket before `drained`, so those reads happen before our commits overwrite the slots
        // of the tickets `GRANTS` before ours.
        let drained = self.drained_ticket.load(Ordering::Acquire);
        let outstanding = ticket.wrapping_sub(drained) & self.ticket_mask();
        if outstanding >= GRANTS {
            // Relaxed: only checks whether our head is current. A stale one (a guess, or moved
            // since) may have `drained` ahead of its ticket, and the slot is not ours to judge.
            if self.head.load(Ordering::Relaxed) != head {
                return self.reload();
            }
            return Attempt::Failed(GrantError::TooManyUndrained { slots: GRANTS });
        }
        let (tickets, extra) = match span {
            None => (1, 0),
            Some(request) => request.fit(
                self.positions,
                placement,
                GRANTS - outstanding,
                capacity - used,
            ),
        };
        let span_end = if extra == 0 {
            placement.end
        } else {
            let end = placement.end;
            self.positions
                .make(self.positions.lap(end), self.positions.offset(end) + extra)
        };
        // The ticket field is the top of the word, so adding to it drops the carry out of the
        // word: the next tickets modulo `2 * GRANTS`, as `pack` makes them.
        let new_head =
            (head & !Self::POSITION_MASK).wrapping_add(tickets << Self::TICKET_SHIFT) | span_end;
        // Relaxed on success: producers pass no data to each other through the head; the memory
        // was acquired through `released` above and the slots through `drained_ticket`. Acquire
        // on failure: the value read is the next attempt's head, read after `released` was
        // loaded; it pairs with the Release of the consumer's restart CAS (see
        // `give_back_unmarked_padding`), so a restarted head comes with the `released` stored
        // before it.
        match self
            .head
            .compare_exchange_weak(head, new_head, Ordering::Relaxed, Ordering::Acquire)
        {
            Ok(_) => {
                // Release: pairs with the Acquire load of the hint in `reserve`: whoever starts
                // from `new_head` also sees the `released` and `drained_ticket` we checked it
                // against, or newer ones.
                self.head_hint.store(new_head, Ordering::Release);
                let in_flight = used + placement.taken + extra;
                // Relaxed: a statistic. Load first so the common case writes nothing shared.
                if in_flight > self.high_water_mark.load(Ordering::Relaxed) {
                    self.high_water_mark.fetch_max(in_flight, Ordering::Relaxed);
                }
                if early {
                    // Relaxed: statistics. Once a lap at most, so the shared line costs little.
                    let early_wraps = &self.early_wraps;
                    early_wraps.count.fetch_add(1, Ordering::Relaxed);
                    early_wraps.skipped_bytes.fetch_add(
                        capacity - self.positions.offset(position),
                        Ordering::Relaxed,
                    );
                }
                Attempt::Reserved(Reservation {
                    ticket,
                    tickets,
                    placement,
                    extra,
                })
            }
            // Why the second load of `released`: ours was loaded before the CAS, and the ring
            // may have gone round more than a lap since (a consumer restart alone jumps to the
            // next lap). Positions repeat every two laps, so from a `released` two laps behind
            // `current` the distance comes out small and the next attempt would hand out bytes
            // still in use (found by `loom_stale_head_hint_after_restart_with_a_span_outstanding`).
            // Keep it only when it is still the value after `current` was read.
            Err(current) => {
                if self.released.load(Ordering::Acquire) == released {
                    Attempt::Again {
                        head: current,
                        released,
                    }
                } else {
                    self.reload()
                }
            }
        }
    }

    /// The next attempt's `released` and head, loaded in that order.
    #[cold]
    fn reload(&self) -> Attempt {
        loop {
            // Acquire on `released` as in `reserve`. Acquire on the head: pairs with the Release
            // of the consumer's restart CAS, so a restarted head comes with the `released` stored
            // before it; loaded after `released`, so `released` is never ahead of it.
            let released = self.released.load(Ordering::Acquire);
            let head = self.head.load(Ordering::Acquire);
            // Why again: a `released` loaded before the head may be two laps behind it (the
            // consumer gave back and the ring went round in between, as after a failed CAS in
            // `attempt`); one unchanged across the head load was the consumer's when the head was
            // read. Loops only while the consumer gives space back.
            if self.released.load(Ordering::Acquire) == released {
                return Attempt::Again { head, released };
            }
        }
    }

    /// The earliest published submission whose completion gives a grant taking `taken` bytes
    /// from `head` room. A hint: the consumer may change the list while we read it, and then the
    /// caller waits for a value that gives too little (and asks again) or more than needed.
    #[cold]
    #[inline(never)]
    fn wait_hint(&self, head: usize, taken: usize) -> Option<FenceValue> {
        // Acquire: pairs with the consumer's Release after it wrote the entries in the range.
        let range = self.published_range.load(Ordering::Acquire);
        let (first, count) = (range & 0xffff, range >> 16);
        for i in 0..count.min(PENDING_SUBMISSIONS) {
            let entry = &self.published[(first + i) % PENDING_SUBMISSIONS];
            // Relaxed: ordered after the range load by its Acquire; a torn pair only makes the
            // hint less precise.
            let end = entry.end.load(Ordering::Relaxed);
            if self.positions.distance(end, head) + taken <= self.positions.capacity {
                return Some(FenceValue::new(entry.value.load(Ordering::Relaxed)));
            }
        }
        None
    }

    /// Publishes ticket `ticket`'s descriptor: `len` committed bytes at `start`, reservation up to
    /// `end`.
    fn publish(&self, ticket: usize, start: usize, len: usize, end: usize) {
        let slot = &self.slots[ticket % GRANTS];
        // Relaxed: these three are published by the Release store of the stamp below.
        slot.start.store(start, Ordering::Relaxed);
        slot.len.store(len, Ordering::Relaxed);
        slot.end.store(end, Ordering::Relaxed);
        // Release: makes the descriptor and the bytes the producer wrote visible to the consumer,
        // which loads the stamp with Acquire before reading either.
        slot.stamp
            .store(self.committed_stamp(ticket), Ordering::Release);
    }

    /// Hands the slots of every ticket before `ticket` on to producers.
    fn publish_drained(&self, ticket: usize) {
        // Release: the consumer read those tickets' descriptors before; a producer that loads
        // `drained_ticket` with Acquire and then reuses a slot overwrites it only after that.
        self.drained_ticket
            .store(ticket & self.ticket_mask(), Ordering::Release);
    }

    /// The counters.
    pub fn stats(&self) -> RingStats {
        // Acquire on `released` then Relaxed on the head keeps released <= head, as in `grant`.
        let released = self.released.load(Ordering::Acquire);
        let (_, head) = self.unpack(self.head.load(Ordering::Relaxed));
        // Relaxed for all counters: statistics, each read on its own.
        let counter = |c: &AtomicUsize| c.load(Ordering::Relaxed) as u64;
        RingStats {
            capacity: self.positions.capacity as u64,
            bytes_in_flight: self
                .positions
                .distance(released, head)
                .min(self.positions.capacity) as u64,
            high_water_mark: counter(&self.high_water_mark),
            bytes_reached: counter(&self.consumer_counters.bytes_reached),
            wasted_wrap_bytes: counter(&self.consumer_counters.wasted_wrap_bytes),
            early_wraps: counter(&self.early_wraps.count),
            early_wrap_bytes: counter(&self.early_wraps.skipped_bytes),
            alignment_padding_bytes: counter(&self.consumer_counters.alignment_padding_bytes),
            failed_grants: counter(&self.failed_grants),
            dropped_grants: counter(&self.consumer_counters.dropped_grants),
            drained_bytes: counter(&self.consumer_counters.drained_bytes),
        }
    }
}

/// A reserved range of the ring, exclusively the holder's until it is committed.
///
/// Write into it ([`WriteGrant::bytes_mut`]) and [`commit`](Self::commit) it. Dropping it without
/// commit gives the range up: the consumer passes over it, and its space comes back like any other.
#[must_use = "a grant dropped without commit gives its range up"]
#[derive(Debug)]
pub struct WriteGrant<'r, 'm, const GRANTS: usize = 64> {
    ring: &'r StagingRing<'m, GRANTS>,
    ticket: usize,
    offset: usize,
    len: usize,
    end: usize,
    finished: bool,
}

impl<const GRANTS: usize> WriteGrant<'_, '_, GRANTS> {
    /// Byte offset of the range in the ring's memory.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes in the range.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: grants are never empty. (For clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Commits the first `len` bytes: the consumer drains them once every earlier grant is
    /// committed or dropped. Committing 0 bytes gives the range up, like dropping the grant.
    ///
    /// Errors: [`CommitError::LengthExceedsGrant`]; the range is then given up.
    pub fn commit(mut self, len: usize) -> Result<(), CommitError> {
        let granted = self.len;
        if len > granted {
            self.finish(0);
            return Err(CommitError::LengthExceedsGrant {
                committed: len,
                granted,
            });
        }
        self.finish(len);
        Ok(())
    }

    /// Commits the whole range.
    pub fn commit_all(mut self) {
        self.finish(self.len);
    }

    fn finish(&mut self, len: usize) {
        self.finished = true;
        self.ring.publish(self.ticket, self.offset, len, self.end);
    }
}

impl<const GRANTS: usize> Drop for WriteGrant<'_, '_, GRANTS> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(0);
        }
    }
}

/// The ring's single consumer: the submitting thread.
///
/// It drains committed ranges in ring order, marks them with the timeline value of the submission
/// that reads them, and releases space whose value completed. Take it once with
/// [`RingConsumer::new`]; `R` is whatever holds the ring (`&StagingRing`, `Arc<StagingRing>`, or
/// the ring itself). Dropping the consumer ends the ring's consumption: nothing drained or marked
/// comes back.
///
/// `R` must dereference to the same ring every time. The consumer checks that it does, on every
/// call: one whose holder dereferences to another ring (a `Deref` that switches) touches nothing
/// there; [`drain`](Self::drain) and [`bytes`](Self::bytes) return `None`,
/// [`mark`](Self::mark) returns [`MarkError::RingChanged`] and
/// [`release_completed`](Self::release_completed) gives back nothing.
///
/// Two duties stay with the submitter (see the device module's "Writing a backend" steps):
/// - neither the ring nor the scheduler flushes: in memory without `HOST_COHERENT`, flush the
///   drained ranges before the copies that read them are submitted;
/// - every range marked with a value must be read by that submission or an earlier one. With
///   several producers, a producer's commit and its hand-over of the upload to the submitter
///   (a [`TransferScheduler`](crate::TransferScheduler) push) must look like one step to the
///   submitter, which holds one lock from drain to mark: a range drained before its upload was
///   handed over would be marked with this value and come back while a later submission
///   still reads it.
//
// Why an id and not the ring's address: the consumer takes a process-wide unique id in `new` and
// writes it into the ring it takes; every call derefs the holder once and uses the ring only when
// that ring carries the id. Only the ring the consumer was taken from ever carries it (ids are
// never reused, the ring's id is written once), whatever the holder's `Deref` does and wherever
// the ring has moved since: a ring held inside `R` moves with the consumer, and an address taken
// in `new` could then be taken by another ring reachable from `R`. An address check would have to
// refuse such holders; the id needs neither that nor an unsafe "stable deref" trait that every
// caller's `Arc` wrapper would have to implement. The cost is one load of a line the consumer
// itself writes.
#[derive(Debug)]
pub struct RingConsumer<R> {
    ring: R,
    state: ConsumerState,
}

/// A marked submission not yet released.
#[derive(Clone, Copy, Debug)]
struct PendingSubmission {
    /// Position up to which space comes back when `value` completes.
    end: usize,
    /// The first ticket after the submission's ranges.
    ticket: usize,
    /// The submission's timeline value.
    value: FenceValue,
}

/// The consumer's bookkeeping, kept apart from the holder: each public method derefs the holder
/// once, checks the ring ([`RingConsumer::own_ring`]) and hands the checked ring to the methods
/// here, which never deref the holder themselves.
#[derive(Debug)]
struct ConsumerState {
    /// This consumer's id, which its ring carries.
    id: usize,
    /// The ring's positions (copied, so that arithmetic needs no ring).
    positions: Positions,
    /// Next ticket to drain (counted in full, wrapping at `usize::MAX`).
    ticket: usize,
    /// The ticket last published in `drained_ticket`.
    published_ticket: usize,
    /// End of the last drained reservation.
    drained: usize,
    /// End of the last marked submission.
    marked: usize,
    /// Position up to which space was given back (a copy of the ring's `released`).
    released: usize,
    /// The first ticket whose range has not been given back: ranges of tickets in
    /// `[released_ticket, ticket)` are held.
    released_ticket: usize,
    /// Whether `[marked, drained)` holds any committed bytes (otherwise only padding and dropped
    /// grants, which can come back without waiting for the GPU).
    unmarked_data: bool,
    /// Marked submissions not yet released, oldest first.
    pending: [PendingSubmission; PENDING_SUBMISSIONS],
    pending_first: usize,
    pending_count: usize,
    last_mark: FenceValue,
}

impl<'m, const GRANTS: usize, R: Deref<Target = StagingRing<'m, GRANTS>>> RingConsumer<R> {
    /// Takes the ring's consumer. Each ring has one.
    ///
    /// Errors: [`ConsumerError::Taken`] when it was taken before; [`ConsumerError::IdsExhausted`]
    /// (32-bit targets only) after `2^32 - 2` consumers.
    pub fn new(ring: R) -> Result<Self, ConsumerError> {
        // One deref: the ring whose consumer this becomes is the one that gets the id.
        let taken: &StagingRing<'m, GRANTS> = &ring;
        // Relaxed: the id only makes the consumer unique and ties it to the ring; the consumer's
        // state starts from the ring's initial values. The load spares an id when the consumer
        // is plainly taken; the CAS settles a race between two callers.
        if taken.consumer_id.load(Ordering::Relaxed) != 0 {
            return Err(ConsumerError::Taken);
        }
        // Never reused, so no other consumer, past or future, ever matches this ring's id.
        let id = crate::instance_id::next_unique()
            .ok_or(ConsumerError::IdsExhausted)?
            .get();
        taken
            .consumer_id
            .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
            .map_err(|_| ConsumerError::Taken)?;
        let positions = taken.positions;
        let empty = PendingSubmission {
            end: 0,
            ticket: 0,
            value: FenceValue::ZERO,
        };
        Ok(Self {
            ring,
            state: ConsumerState {
                id,
                positions,
                ticket: 0,
                published_ticket: 0,
                drained: 0,
                marked: 0,
                released: 0,
                released_ticket: 0,
                unmarked_data: false,
                pending: [empty; PENDING_SUBMISSIONS],
                pending_first: 0,
                pending_count: 0,
                last_mark: FenceValue::ZERO,
            },
        })
    }

    /// The ring the holder dereferences to.
    pub fn ring(&self) -> &StagingRing<'m, GRANTS> {
        &self.ring
    }

    /// The ring `holder` dereferences to, when it is the one consumer `id` was taken from.
    /// Every use of the ring goes through here, one deref per public call: a `Deref` that
    /// returned another ring on a later call would otherwise have the consumer check a range
    /// against one ring's state and use another ring's memory or counters.
    #[inline]
    fn own_ring(holder: &R, id: usize) -> Option<&StagingRing<'m, GRANTS>> {
        let ring: &StagingRing<'m, GRANTS> = holder;
        // Relaxed: our id is written only into our ring, by `new`, which happens before every
        // call on the consumer; no other ring ever holds it, whatever value we read there.
        (ring.consumer_id.load(Ordering::Relaxed) == id).then_some(ring)
    }

    /// The next committed range in ring order, or `None` when the next grant is not committed
    /// yet (or there is none, or the holder no longer dereferences to this consumer's ring).
    /// Grants dropped without commit are passed over. Never waits.
    pub fn drain(&mut self) -> Option<DrainedRange> {
        let ring = Self::own_ring(&self.ring, self.state.id)?;
        self.state.drain(ring)
    }

    /// Tags everything drained since the previous mark with `value`, the timeline value of the
    /// submission that reads it. Its space comes back when `value` completes. Values must not go
    /// down from one mark to the next; marking with nothing drained changes nothing.
    ///
    /// Errors: [`MarkError::ZeroValue`], [`MarkError::WentBackwards`], [`MarkError::RingChanged`].
    pub fn mark(&mut self, value: FenceValue) -> Result<(), MarkError> {
        let ring = Self::own_ring(&self.ring, self.state.id).ok_or(MarkError::RingChanged)?;
        self.state.mark(ring, value)
    }

    /// Gives back the space of every marked submission whose value is at most `completed`.
    /// Returns the number of bytes given back (0 when the holder no longer dereferences to this
    /// consumer's ring: nothing is given back then).
    pub fn release_completed(&mut self, completed: FenceValue) -> usize {
        match Self::own_ring(&self.ring, self.state.id) {
            Some(ring) => self.state.release_completed(ring, completed),
            None => 0,
        }
    }

    /// Bytes drained and not yet marked.
    pub fn unmarked_bytes(&self) -> usize {
        self.state
            .positions
            .distance(self.state.marked, self.state.drained)
    }

    /// Marked submissions whose space has not come back yet.
    pub fn pending_submissions(&self) -> usize {
        self.state.pending_count
    }

    /// The value whose completion gives back all space marked so far, if any is pending.
    pub fn last_pending_value(&self) -> Option<FenceValue> {
        (self.state.pending_count > 0).then_some(self.state.last_mark)
    }
}

impl ConsumerState {
    fn drain<const GRANTS: usize>(
        &mut self,
        ring: &StagingRing<'_, GRANTS>,
    ) -> Option<DrainedRange> {
        loop {
            let positions = self.positions;
            let slot = &ring.slots[self.ticket % GRANTS];
            // Acquire: pairs with the producer's Release in `publish`; the descriptor and the
            // bytes it wrote are visible from here on.
            if slot.stamp.load(Ordering::Acquire) != ring.committed_stamp(self.ticket) {
                if self.published_ticket != self.ticket {
                    ring.publish_drained(self.ticket);
                    self.published_ticket = self.ticket;
                }
                return None;
            }
            // Relaxed: published by the stamp loaded above.
            let start = slot.start.load(Ordering::Relaxed);
            let len = slot.len.load(Ordering::Relaxed);
            let end = slot.end.load(Ordering::Relaxed);
            let ticket = self.ticket;
            self.ticket = self.ticket.wrapping_add(1);
            // Hand the slots on in batches: at the end of what is ready (above), or every quarter
            // of the slots, so producers reading `drained_ticket` miss on it once per batch, not
            // once per grant.
            if self.ticket.wrapping_sub(self.published_ticket) >= (GRANTS / 4).max(1) {
                ring.publish_drained(self.ticket);
                self.published_ticket = self.ticket;
            }

            let from = positions.offset(self.drained);
            // Relaxed on the counters: statistics, written only by the consumer.
            if start < from {
                // The grant wrapped: the tail of the ring was skipped.
                add(
                    &ring.consumer_counters.wasted_wrap_bytes,
                    positions.capacity - from,
                );
            } else {
                add(
                    &ring.consumer_counters.alignment_padding_bytes,
                    start - from,
                );
            }
            let start_position = if start < from {
                positions.make(!positions.lap(self.drained), start)
            } else {
                positions.make(positions.lap(self.drained), start)
            };
            let reached = start + positions.distance(start_position, end);
            // Relaxed: a statistic only the consumer writes; load first so that, once the ring
            // went round, a drain writes nothing more.
            let bytes_reached = &ring.consumer_counters.bytes_reached;
            if reached > bytes_reached.load(Ordering::Relaxed) {
                bytes_reached.store(reached, Ordering::Relaxed);
            }
            self.drained = end;
            if len == 0 || len == UNUSED_TICKET {
                if len == 0 {
                    add(&ring.consumer_counters.dropped_grants, 1);
                }
                let _ = self.give_back_unmarked_padding(ring);
                continue;
            }
            add(&ring.consumer_counters.drained_bytes, len);
            self.unmarked_data = true;
            return Some(DrainedRange {
                offset: start,
                len,
                position: start_position,
                ticket,
                consumer: self.id,
            });
        }
    }

    fn mark<const GRANTS: usize>(
        &mut self,
        ring: &StagingRing<'_, GRANTS>,
        value: FenceValue,
    ) -> Result<(), MarkError> {
        if value == FenceValue::ZERO {
            return Err(MarkError::ZeroValue);
        }
        if value < self.last_mark {
            return Err(MarkError::WentBackwards {
                value,
                previous: self.last_mark,
            });
        }
        if self.drained == self.marked {
            return Ok(());
        }
        if !self.unmarked_data && self.pending_count == 0 {
            // Only padding and dropped grants: nothing for the GPU to read.
            let _ = self.give_back_unmarked_padding(ring);
            return Ok(());
        }
        self.last_mark = value;
        self.marked = self.drained;
        self.unmarked_data = false;
        let submission = PendingSubmission {
            end: self.drained,
            ticket: self.ticket,
            value,
        };
        if self.pending_count == PENDING_SUBMISSIONS {
            // Full: fold into the newest entry; its older space then waits for this value too.
            let newest = (self.pending_first + self.pending_count - 1) % PENDING_SUBMISSIONS;
            self.pending[newest] = submission;
        } else {
            let slot = (self.pending_first + self.pending_count) % PENDING_SUBMISSIONS;
            self.pending[slot] = submission;
            self.pending_count += 1;
        }
        self.publish_pending(ring);
        Ok(())
    }

    fn release_completed<const GRANTS: usize>(
        &mut self,
        ring: &StagingRing<'_, GRANTS>,
        completed: FenceValue,
    ) -> usize {
        let before = self.released;
        let mut released = None;
        while self.pending_count > 0 {
            let submission = self.pending[self.pending_first];
            if submission.value > completed {
                break;
            }
            released = Some(submission);
            self.pending_first = (self.pending_first + 1) % PENDING_SUBMISSIONS;
            self.pending_count -= 1;
        }
        let Some(released) = released else {
            return 0;
        };
        self.publish_pending(ring);
        self.set_released(ring, released.end, released.ticket);
        let freed = self.positions.distance(before, released.end);
        freed + self.give_back_unmarked_padding(ring)
    }

    /// Whether `range` is one this consumer drained and has not given back yet (its bytes stay
    /// unchanged while this holds).
    fn is_held(&self, range: &DrainedRange) -> bool {
        let positions = self.positions;
        let into = positions.distance(self.released, range.position);
        let held = positions.distance(self.released, self.drained);
        // The ticket says whether the range is still held. The position check keeps the range
        // inside the drained, unreleased space by itself, so that `bytes` stays sound even if the
        // ticket counter wrapped round to a stale range's ticket (2^32 drains on a 32-bit target).
        range.consumer == self.id
            && range.ticket.wrapping_sub(self.released_ticket)
                < self.ticket.wrapping_sub(self.released_ticket)
            && positions.offset(range.position) == range.offset
            && into <= held
            && range.len <= held - into
            && range.offset + range.len <= positions.capacity
    }

    /// When nothing marked is pending and `[marked, drained)` is only padding and dropped grants,
    /// gives it back at once; and when the ring is then empty, restarts it at offset 0 so that a
    /// grant of any size up to the capacity fits.
    /// Returns the bytes given back (the skipped tail of a restart was free already).
    fn give_back_unmarked_padding<const GRANTS: usize>(
        &mut self,
        ring: &StagingRing<'_, GRANTS>,
    ) -> usize {
        if self.pending_count != 0 || self.unmarked_data {
            return 0;
        }
        // Every ticket drained so far is given back or held no data.
        self.released_ticket = self.ticket;
        let given_back = self.positions.distance(self.released, self.drained);
        if given_back != 0 {
            self.marked = self.drained;
            self.set_released(ring, self.drained, self.ticket);
        }
        let positions = self.positions;
        if positions.offset(self.drained) == 0 {
            return given_back;
        }
        let idle = ring.pack(self.ticket, self.drained);
        let restart = positions.make(!positions.lap(self.drained), 0);
        // Release on success: a producer that reads the restarted head (Acquire) also sees the
        // `released` we stored before, so it never pairs the restarted head with an older
        // `released` and mistakes the idle ring for a full one. The space itself is published by
        // the Release stores of `released`. Relaxed on failure: a producer took a grant
        // meanwhile, so the ring is not idle and stays as it is.
        if ring
            .head
            .compare_exchange(
                idle,
                ring.pack(self.ticket, restart),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.drained = restart;
            self.marked = restart;
            self.set_released(ring, restart, self.ticket);
        }
        given_back
    }

    /// Gives back the space up to `position`, which ends the range of the ticket before `ticket`.
    fn set_released<const GRANTS: usize>(
        &mut self,
        ring: &StagingRing<'_, GRANTS>,
        position: usize,
        ticket: usize,
    ) {
        self.released = position;
        self.released_ticket = ticket;
        // Release: our reads of the space (and, through the timeline wait, the GPU's) happen
        // before any producer that loads `released` with Acquire writes into it.
        ring.released.store(position, Ordering::Release);
    }

    fn publish_pending<const GRANTS: usize>(&self, ring: &StagingRing<'_, GRANTS>) {
        for i in 0..self.pending_count {
            let index = (self.pending_first + i) % PENDING_SUBMISSIONS;
            let submission = self.pending[index];
            // Relaxed: published by the Release store of the range below.
            ring.published[index]
                .end
                .store(submission.end, Ordering::Relaxed);
            ring.published[index]
                .value
                .store(submission.value.get(), Ordering::Relaxed);
        }
        // Release: pairs with the Acquire in `wait_hint`.
        ring.published_range.store(
            self.pending_first | self.pending_count << 16,
            Ordering::Release,
        );
    }
}

/// Adds to a statistics counter only the consumer writes.
#[inline]
fn add(counter: &AtomicUsize, bytes: usize) {
    if bytes != 0 {
        // Relaxed: a statistic; the consumer is the only writer, so a load and a store suffice,
        // and they avoid a locked instruction on the drain path.
        let value = counter.load(Ordering::Relaxed).wrapping_add(bytes);
        counter.store(value, Ordering::Relaxed);
    }
}
