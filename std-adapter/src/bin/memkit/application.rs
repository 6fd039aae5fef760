//! The application's own queue, as `memkit demo` stands it in: the frames the frame loop
//! submitted run in order on a thread of their own, each once the coordinator's copies it waits
//! for completed, and each signals its value on the application's timeline when it finishes.
//!
//! On a GPU the application's queue runs beside the coordinator's whatever the CPU threads do.
//! Signalling from the frame loop instead ("frame `n` finished when the loop began `n + 2`")
//! ties the two together: a frame loop waiting for staging room held by copies that wait for the
//! application's next value would never signal it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use memkit_std::Ticket;

use crate::backend::Backend;

/// How long one of the application's frames runs on the GPU once it may start: long enough that
/// the coordinator's later copies run while it still reads (where a missing wait shows).
pub const FRAME_TIME: Duration = Duration::from_micros(500);
/// How long the queue sleeps when its oldest frame cannot start yet.
const POLL: Duration = Duration::from_micros(50);

/// The application's frames submitted and not finished, in order: the value each signals, and
/// the ticket of the coordinator's copies it waits for.
#[derive(Default)]
pub struct ApplicationQueue {
    frames: Mutex<VecDeque<(u64, Ticket)>>,
    closed: AtomicBool,
    /// The last value signalled: a timeline's values only rise, so whoever signals after the
    /// queue stopped must go above it, or not signal.
    signalled: AtomicU64,
}

impl ApplicationQueue {
    /// Submits a frame that starts once `waits` completed and signals `value` when it finished.
    pub fn submit(&self, value: u64, waits: Ticket) {
        self.lock().push_back((value, waits));
    }

    /// No frame comes any more: [`ApplicationQueue::run`] returns (the frames still queued are
    /// the caller's to signal).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Runs the frames until the queue is closed: each starts once its ticket completed, takes
    /// [`FRAME_TIME`], and signals its value on `timeline`. Stops early, with the error, when a
    /// ticket or the signal fails (the coordinator's device was lost, say).
    pub fn run<D: Backend>(&self, device: &D, timeline: D::ExternalTimeline) -> Result<(), String> {
        while !self.closed.load(Ordering::Acquire) {
            let front = self.lock().front().cloned();
            let Some((value, waits)) = front else {
                std::thread::sleep(POLL);
                continue;
            };
            if !waits.is_complete().map_err(|e| e.to_string())? {
                std::thread::sleep(POLL);
                continue;
            }
            std::thread::sleep(FRAME_TIME);
            device
                .signal_application(timeline, value)
                .map_err(|e| e.to_string())?;
            self.signalled.store(value, Ordering::Release);
            self.lock().pop_front();
        }
        Ok(())
    }

    /// The last value [`ApplicationQueue::run`] signalled (0 before any).
    pub fn signalled(&self) -> u64 {
        self.signalled.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Ticket)>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }
}
