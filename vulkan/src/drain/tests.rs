use std::cell::Cell;
use std::time::Instant;

use super::*;

const OOM: DeviceError = DeviceError::OutOfDeviceMemory;

#[test]
fn a_completed_wait_ends_at_once_without_idling() {
    let idled = Cell::new(0);
    let result = drain(
        || Ok(WaitStatus::Completed),
        || {
            idled.set(idled.get() + 1);
            Ok(())
        },
    );
    assert_eq!(result, Ok(()));
    assert_eq!(idled.get(), 0);
}

#[test]
fn a_failed_wait_falls_back_to_idling_the_queues() {
    let idled = Cell::new(0);
    let result = drain(
        || Err(OOM),
        || {
            idled.set(idled.get() + 1);
            Ok(())
        },
    );
    assert_eq!(result, Ok(()));
    assert_eq!(idled.get(), 1);
}

#[test]
fn failures_of_both_are_retried_with_a_pause_until_one_succeeds() {
    let waits = Cell::new(0u32);
    let idles = Cell::new(0u32);
    let start = Instant::now();
    let result = drain(
        || {
            waits.set(waits.get() + 1);
            // The fifth wait succeeds; a timeout counts as a failure too.
            match waits.get() {
                5 => Ok(WaitStatus::Completed),
                2 => Ok(WaitStatus::TimedOut),
                _ => Err(DeviceError::OutOfHostMemory),
            }
        },
        || {
            idles.set(idles.get() + 1);
            Err(DeviceError::Unexpected(-13))
        },
    );
    assert_eq!(result, Ok(()));
    assert_eq!((waits.get(), idles.get()), (5, 4));
    // Four failed rounds, each followed by a pause.
    assert!(start.elapsed() >= RETRY_PAUSE * 4, "{:?}", start.elapsed());
}

#[test]
fn a_loss_ends_the_retries_whichever_call_reports_it() {
    let rounds = Cell::new(0u32);
    let lost_in_idle = drain(
        || Err(OOM),
        || {
            rounds.set(rounds.get() + 1);
            if rounds.get() == 3 {
                Err(DeviceError::DeviceLost)
            } else {
                Err(OOM)
            }
        },
    );
    assert_eq!(lost_in_idle, Err(Lost));
    assert_eq!(rounds.get(), 3);

    let idled = Cell::new(0);
    let lost_in_wait = drain(
        || Err(DeviceError::DeviceLost),
        || {
            idled.set(idled.get() + 1);
            Ok(())
        },
    );
    assert_eq!(lost_in_wait, Err(Lost));
    assert_eq!(idled.get(), 0, "a lost wait does not idle the queues");
}
