//! A producer handle that reserves ring space in spans, so that producers on different threads
//! stop contending for the ring's head word.
//!
//! [`StagingRing::grant`] takes one CAS on the shared head per grant: with small grants on two
//! threads, the head's cache line moves between the cores on every grant. A [`RingProducer`]
//! instead reserves a *span* with one CAS: several consecutive tickets and the bytes for the
//! grants it expects, sized from the request that opened it. Grants from the span are carved out
//! with plain arithmetic on the handle's own fields; each keeps its own ticket, so it commits,
//! drops and drains exactly like a grant from [`StagingRing::grant`] and the consumer still sees
//! every grant in ring order.
//!
//! A span's tickets hold up the consumer until they are published, so a span is closed as soon
//! as it is not being used: when it runs out of tickets or bytes, on [`RingProducer::flush`] and
//! when the handle is dropped. Closing gives the unused tickets and bytes back to the head when
//! nobody reserved after the span (one CAS); otherwise it publishes each unused ticket as empty,
//! and the unused bytes come back in ring order like a dropped grant's.

use super::{GrantError, Ordering, Positions, SpanRequest, StagingRing, UNUSED_TICKET, WriteGrant};
use crate::ConfigError;

/// Bytes a producer handle reserves at most per span by default (less for rings under 256 KiB:
/// a quarter of the capacity).
pub const DEFAULT_SPAN_BYTES: usize = 64 << 10;

/// A producer's handle on a [`StagingRing`] that reserves space in spans: one CAS on the ring's
/// shared head per span rather than per grant.
///
/// Take one per producing thread ([`RingProducer::new`]); any number may exist at once, beside
/// plain [`StagingRing::grant`] callers. Its grants are ordinary [`WriteGrant`]s, borrowing the
/// ring rather than the handle, so several may be live at once and committed in any order.
///
/// **Flush when idle.** The consumer drains in ring order, so the unused tickets of an open span
/// hold back everything reserved after it until the span is closed. Call
/// [`flush`](Self::flush) (or drop the handle) before the thread waits for anything, in
/// particular before waiting for room in the ring or for the GPU. The unused bytes of an open
/// span count as in flight in [`StagingRing::stats`].
#[derive(Debug)]
pub struct RingProducer<'r, 'm, const GRANTS: usize = 64> {
    ring: &'r StagingRing<'m, GRANTS>,
    /// Most bytes a span reserves (unless its first grant alone is larger).
    span_bytes: usize,
    /// Most tickets a span reserves.
    span_grants: usize,
    /// The next ticket of the open span.
    next_ticket: usize,
    /// Tickets of the open span not handed out yet; 0 when no span is open.
    tickets_left: usize,
    /// The lap of the open span (which never crosses the end of the ring).
    lap: bool,
    /// Offset where the open span's next grant may start.
    cursor: usize,
    /// Offset where the open span ends (at most the capacity).
    end: usize,
}

impl<'r, 'm, const GRANTS: usize> RingProducer<'r, 'm, GRANTS> {
    /// A handle reserving spans of at most `min(DEFAULT_SPAN_BYTES, capacity / 4)` bytes (at
    /// least 1) and `GRANTS / 4` tickets (at least 1).
    pub fn new(ring: &'r StagingRing<'m, GRANTS>) -> Self {
        let span_bytes = DEFAULT_SPAN_BYTES.min(ring.capacity() / 4).max(1);
        Self::from_parts(ring, span_bytes, (GRANTS / 4).max(1))
    }

    /// A handle whose spans reserve at most `span_bytes` bytes (or the first grant's, if it is
    /// larger) and `span_grants` tickets. The ring limits both further: a span takes only free tickets and
    /// free room, and sizes itself to `span_grants` grants of the size of the request that opens
    /// it (so a handle sending 64 B messages takes 64 B times the tickets, not `span_bytes`).
    ///
    /// Errors: [`ConfigError::InvalidParameter`] when `span_bytes` is 0 or `span_grants` is 0 or
    /// more than `GRANTS`.
    pub fn with_span(
        ring: &'r StagingRing<'m, GRANTS>,
        span_bytes: usize,
        span_grants: usize,
    ) -> Result<Self, ConfigError> {
        if span_bytes == 0 || span_grants == 0 || span_grants > GRANTS {
            return Err(ConfigError::InvalidParameter);
        }
        Ok(Self::from_parts(ring, span_bytes, span_grants))
    }

    fn from_parts(
        ring: &'r StagingRing<'m, GRANTS>,
        span_bytes: usize,
        span_grants: usize,
    ) -> Self {
        Self {
            ring,
            span_bytes,
            span_grants,
            next_ticket: 0,
            tickets_left: 0,
            lap: false,
            cursor: 0,
            end: 0,
        }
    }

    /// The ring.
    pub fn ring(&self) -> &'r StagingRing<'m, GRANTS> {
        self.ring
    }

    /// Whether a span is open: it holds tickets the consumer waits for until the span is closed.
    pub fn has_open_span(&self) -> bool {
        self.tickets_left != 0
    }

    /// Reserves `size` bytes whose offset is a multiple of `align`, like [`StagingRing::grant`]:
    /// from the open span when it has a ticket and room left (no atomic operation), else from a
    /// new span after closing the open one.
    ///
    /// Errors: as [`StagingRing::grant`] ([`GrantError::ZeroSize`],
    /// [`GrantError::AlignmentNotPowerOfTwo`], [`GrantError::NeverFits`], [`GrantError::Full`],
    /// [`GrantError::TooManyUndrained`]); after an error no span is open.
    #[inline]
    pub fn grant(
        &mut self,
        size: usize,
        align: usize,
    ) -> Result<WriteGrant<'r, 'm, GRANTS>, GrantError> {
        if self.tickets_left != 0 && size != 0 && align.is_power_of_two() {
            // The span lies below the capacity, so `cursor + align - 1` overflows only for an
            // alignment no span can meet; `checked_add` sends that to the slow path's errors.
            if let Some(padded) = self.cursor.checked_add(align - 1) {
                let start = padded & !(align - 1);
                if start <= self.end && self.end - start >= size {
                    return Ok(self.take_from_span(start, size));
                }
            }
        }
        self.grant_from_new_span(size, align)
    }

    /// Closes the open span, if any: its unused tickets and bytes go back to the ring when
    /// nobody reserved after it, and are otherwise published as empty so that the consumer passes
    /// over them. Grants already handed out stay valid. Dropping the handle flushes it.
    pub fn flush(&mut self) {
        if self.tickets_left == 0 {
            return;
        }
        let ring = self.ring;
        let positions = ring.positions;
        let cursor = positions.make(self.lap, self.cursor);
        let span_end = positions.make(self.lap, self.end);
        let unused = self.tickets_left;
        let first_unused = self.next_ticket;
        self.tickets_left = 0;
        let ours = ring.pack(first_unused.wrapping_add(unused), span_end);
        // Relaxed: the tickets and bytes go back unwritten, so nothing needs publishing; the next
        // reservation takes them under its own Acquire loads of `released` and `drained_ticket`.
        // The head cannot be `ours` again after a later reservation: its ticket stays within one
        // lap of ticket numbers (2 * GRANTS) while our unpublished tickets hold the consumer back,
        // and only giving back the reservations made after ours returns it exactly here.
        if ring
            .head
            .compare_exchange(
                ours,
                ring.pack(first_unused, cursor),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return;
        }
        // Reserved after us: the consumer passes over the unused tickets, the first taking the
        // unused bytes up to the span's end with it.
        ring.publish(
            first_unused,
            positions.offset(cursor),
            UNUSED_TICKET,
            span_end,
        );
        for i in 1..unused {
            ring.publish(
                first_unused.wrapping_add(i),
                positions.offset(span_end),
                UNUSED_TICKET,
                span_end,
            );
        }
    }

    /// Hands out the open span's next ticket for `[start, start + size)`, which lies in the span.
    #[inline]
    fn take_from_span(&mut self, start: usize, size: usize) -> WriteGrant<'r, 'm, GRANTS> {
        let ticket = self.next_ticket;
        let data_end = start + size;
        self.next_ticket = ticket.wrapping_add(1);
        self.tickets_left -= 1;
        self.cursor = data_end;
        let end = if self.tickets_left == 0 {
            self.last_ticket_end()
        } else {
            self.ring.positions.make(self.lap, data_end)
        };
        WriteGrant {
            ring: self.ring,
            ticket,
            offset: start,
            len: size,
            end,
            finished: false,
        }
    }

    /// The reservation end of the span's last ticket, which closes the span: the grant's own end
    /// when the span's unused bytes could be given back to the head, else the span's end (the
    /// grant then carries them, and they come back with it).
    #[inline(never)]
    fn last_ticket_end(&mut self) -> usize {
        let ring = self.ring;
        let positions: Positions = ring.positions;
        let cursor = positions.make(self.lap, self.cursor);
        let span_end = positions.make(self.lap, self.end);
        if cursor == span_end {
            return span_end;
        }
        // Relaxed, and the head cannot have come back to `span_end` with our ticket count: as in
        // `flush` (the last ticket is not published yet, so it holds the consumer back).
        let block_end = self.next_ticket;
        match ring.head.compare_exchange(
            ring.pack(block_end, span_end),
            ring.pack(block_end, cursor),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => cursor,
            Err(_) => span_end,
        }
    }

    /// Closes the open span and opens a new one with the request as its first grant.
    #[inline(never)]
    fn grant_from_new_span(
        &mut self,
        size: usize,
        align: usize,
    ) -> Result<WriteGrant<'r, 'm, GRANTS>, GrantError> {
        self.flush();
        let result = self.open_span(size, align);
        if result.is_err() {
            // Relaxed: a statistic; nothing is ordered by it.
            self.ring.failed_grants.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn open_span(
        &mut self,
        size: usize,
        align: usize,
    ) -> Result<WriteGrant<'r, 'm, GRANTS>, GrantError> {
        let ring = self.ring;
        ring.check_request(size, align)?;
        // The bytes a grant like this one takes, alignment included (`size` where that overflows).
        let per_grant = size
            .checked_add(align - 1)
            .map_or(size, |padded| padded & !(align - 1));
        let request = SpanRequest {
            tickets: self.span_grants.min(self.span_bytes / per_grant).max(1),
            bytes_per_ticket: per_grant,
            max_bytes: self.span_bytes,
        };
        let reservation = ring.reserve(size, align, Some(request))?;
        let positions = ring.positions;
        let first_end = reservation.placement.end;
        let mut end = first_end;
        if reservation.tickets > 1 {
            self.next_ticket = reservation.ticket.wrapping_add(1);
            self.tickets_left = reservation.tickets - 1;
            self.lap = positions.lap(first_end);
            self.cursor = positions.offset(first_end);
            self.end = self.cursor + reservation.extra;
        } else {
            // A span of one grant: a plain grant (`fit` reserves no extra bytes for it).
            end = positions.make(
                positions.lap(first_end),
                positions.offset(first_end) + reservation.extra,
            );
        }
        Ok(WriteGrant {
            ring,
            ticket: reservation.ticket,
            offset: reservation.placement.start,
            len: size,
            end,
            finished: false,
        })
    }
}

impl<const GRANTS: usize> Drop for RingProducer<'_, '_, GRANTS> {
    fn drop(&mut self) {
        self.flush();
    }
}
