//! Tickets: what an upload or a frame hands back to wait on.
//!
//! An upload's ticket names the upload (its sequence number), not a timeline value: the upload
//! may reach the GPU in the next submission or a later one (its staging range can drain only after
//! every earlier grant of the ring committed). The coordinator records, for each submission, the
//! sequence number below which every upload is in a submission so far; a ticket turns into the
//! value of the first submission that covers it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Where a ticket asks about its work.
pub(crate) trait TimelineSource: Send + Sync {
    /// The highest completed value (polls the device; never blocks).
    fn completed(&self) -> Result<u64>;
    /// The value of the submission that carries upload `seq`, or `None` while it is staged only.
    fn value_of(&self, seq: u64) -> Option<u64>;
    /// Submits what is staged.
    fn submit_staged(&self) -> Result<()>;
    /// Blocks until `value` completed or `timeout` passed; `true` when it completed.
    fn wait(&self, value: u64, timeout: Duration) -> Result<bool>;
    /// A count that rises whenever staged ring room drains or a grant is dropped: while it stands
    /// still, a staged upload is waiting on a grant ahead of it.
    fn staging_progress(&self) -> u64;
    /// How long a staged upload may wait on grants with no progress before the wait fails
    /// ([`crate::CoordinatorConfig::held_room_timeout`]).
    fn held_room_timeout(&self) -> Duration;
}

#[derive(Clone, Debug)]
enum Target {
    /// Work that needed no GPU (a direct write).
    Done,
    /// A submission's timeline value.
    Value(u64),
    /// A staged upload's sequence number.
    Upload(u64),
    /// A batch of read-back copies: its submission's value once it went out, 0 before.
    Batch(Arc<AtomicU64>),
}

/// What to wait on for an upload or a frame: the GPU has finished the work once
/// [`Ticket::is_complete`] says so. Cheap to clone; safe to keep past the coordinator, but it
/// keeps the coordinator's device alive until dropped (not its memory, which the coordinator's
/// teardown frees): drop every ticket before destroying what that device wraps (the `ash`
/// device under a `VulkanDevice`), or a `SharedHeadlessDevice` cannot be unwrapped.
#[derive(Clone)]
pub struct Ticket {
    target: Target,
    timeline: Option<Arc<dyn TimelineSource>>,
}

impl Ticket {
    pub(crate) fn for_value(value: u64, timeline: Arc<dyn TimelineSource>) -> Self {
        Self {
            target: Target::Value(value),
            timeline: Some(timeline),
        }
    }

    pub(crate) fn for_upload(seq: u64, timeline: Arc<dyn TimelineSource>) -> Self {
        Self {
            target: Target::Upload(seq),
            timeline: Some(timeline),
        }
    }

    /// A ticket for a batch of read-back copies, not submitted while `slot` holds 0.
    pub(crate) fn for_batch(slot: Arc<AtomicU64>, timeline: Arc<dyn TimelineSource>) -> Self {
        Self {
            target: Target::Batch(slot),
            timeline: Some(timeline),
        }
    }

    /// A ticket for work that is already done.
    pub fn completed() -> Self {
        Self {
            target: Target::Done,
            timeline: None,
        }
    }

    /// The timeline value of the submission carrying the work: `Some(0)` for work that needed no
    /// GPU, `None` while an upload is staged, or a read-back recorded, and not submitted yet.
    pub fn value(&self) -> Option<u64> {
        match (&self.target, &self.timeline) {
            (Target::Done, _) | (_, None) => Some(0),
            (Target::Value(v), _) => Some(*v),
            (Target::Upload(seq), Some(t)) => t.value_of(*seq),
            (Target::Batch(slot), Some(_)) => match slot.load(Ordering::Acquire) {
                0 => None,
                v => Some(v),
            },
        }
    }

    /// Whether the GPU finished the work. Never blocks; an upload not submitted yet is not
    /// complete.
    pub fn is_complete(&self) -> Result<bool> {
        match (self.value(), &self.timeline) {
            (Some(0), _) | (_, None) => Ok(true),
            (Some(v), Some(t)) => Ok(t.completed()? >= v),
            (None, Some(_)) => Ok(false),
        }
    }

    /// Blocks until the GPU finished the work, submitting the upload first if it is only staged.
    ///
    /// Errors: [`Error::BlockedByHeldGrant`] when the upload stays staged for
    /// [`crate::CoordinatorConfig::held_room_timeout`] with nothing drained, because a
    /// [`crate::StagingGrant`] ahead of it in the ring is held (by this thread, say);
    /// [`Error::DeviceLost`].
    pub fn wait(&self) -> Result<()> {
        self.wait_until(None).map(drop)
    }

    /// Blocks until the GPU finished the work or `timeout` passed; `true` when it finished.
    /// Submits the upload first if it is only staged. Errors as [`Ticket::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        // No deadline when it lies past what `Instant` can hold (`Duration::MAX`, say): that
        // timeout never runs out.
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// Both waits: `None` waits without a deadline.
    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool> {
        let Some(timeline) = &self.timeline else {
            return Ok(true);
        };
        let left = || {
            deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            })
        };
        let mut held = HeldGrantWatch::default();
        loop {
            if let Some(v) = self.value() {
                if v == 0 {
                    return Ok(true);
                }
                // A device may answer "timed out" before the timeout: one that cannot make
                // progress on this thread (a simulated GPU whose next submission waits for the
                // application's timeline, which another thread signals). Only the deadline ends
                // the wait.
                loop {
                    if timeline.wait(v, left())? {
                        return Ok(true);
                    }
                    if left().is_zero() {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            // Staged only: submit. Its range may still sit behind another thread's grant that is
            // being written; that grant commits within a memcpy, so try again shortly.
            timeline.submit_staged()?;
            if self.value().is_none() {
                if left().is_zero() {
                    return Ok(false);
                }
                held.check(timeline.staging_progress(), timeline.held_room_timeout())?;
                std::thread::yield_now();
            }
        }
    }
}

/// Watches a wait for staged uploads to drain: a grant being written commits within a memcpy,
/// and one that stays put for `held_room_timeout` is held (waiting longer would spin forever if
/// the waiting thread holds it).
#[derive(Default)]
pub(crate) struct HeldGrantWatch {
    /// When the staging progress last moved while the wait went on, and its count then.
    stuck_since: Option<(Instant, u64)>,
}

impl HeldGrantWatch {
    /// Called on each turn of the wait with the staging progress
    /// (`TimelineSource::staging_progress`): [`Error::BlockedByHeldGrant`] once it stood still
    /// for `timeout`.
    pub(crate) fn check(&mut self, progress: u64, timeout: Duration) -> Result<()> {
        match self.stuck_since {
            Some((since, at)) if at == progress => {
                if since.elapsed() >= timeout {
                    return Err(Error::BlockedByHeldGrant);
                }
            }
            _ => self.stuck_since = Some((Instant::now(), progress)),
        }
        Ok(())
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("target", &self.target)
            .finish()
    }
}
