//! Waiting out GPU work before memkit frees what it uses or reports it as not in flight,
//! whatever errors the waits return.
//!
//! A wait that fails (out of host or device memory, say) says nothing about the work it waited
//! for: that work may still run. So memkit never takes a failed wait as "done": it tries the
//! wait, then idling the queues the work was submitted to, round after round, until one of them
//! succeeds or reports the device lost.
//!
//! Why this ends on a real loss: the Vulkan specification ("Lost Device") requires commands that
//! wait without a timeout for device execution, `vkQueueWaitIdle` among them, to return in finite
//! time on a lost device, with `VK_SUCCESS` or `VK_ERROR_DEVICE_LOST`: the round after a loss
//! ends the loop. Why it cannot spin: every round that ends in two failures sleeps
//! [`RETRY_PAUSE`] before the next, and a wait that succeeds or reports the loss returns at once.

use std::thread;
use std::time::Duration;

use memkit_core::device::{DeviceError, WaitStatus};

/// The pause between two rounds of failed waits: long enough that retrying costs no CPU to
/// speak of, short against the copies being waited for.
const RETRY_PAUSE: Duration = Duration::from_millis(1);

/// The device was lost while memkit waited for its work: no work runs any more, so what it used
/// may be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lost;

/// Blocks until `wait` (a wait without timeout for the work) reports it completed or `idle`
/// (idling every queue the work was submitted to) succeeds; `Err(Lost)` as soon as either reports
/// [`DeviceError::DeviceLost`]. Any other error, or a timeout, is retried after [`RETRY_PAUSE`]
/// (see the module docs for why this ends).
pub(crate) fn drain(
    mut wait: impl FnMut() -> Result<WaitStatus, DeviceError>,
    mut idle: impl FnMut() -> Result<(), DeviceError>,
) -> Result<(), Lost> {
    loop {
        match wait() {
            Ok(WaitStatus::Completed) => return Ok(()),
            Err(DeviceError::DeviceLost) => return Err(Lost),
            Ok(WaitStatus::TimedOut) | Err(_) => {}
        }
        match idle() {
            Ok(()) => return Ok(()),
            Err(DeviceError::DeviceLost) => return Err(Lost),
            Err(_) => {}
        }
        thread::sleep(RETRY_PAUSE);
    }
}

#[cfg(test)]
mod tests;
