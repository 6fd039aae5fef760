use ash::vk::{self, Handle};

use super::ExternalWaits;

fn semaphore(raw: u64) -> vk::Semaphore {
    vk::Semaphore::from_raw(raw)
}

fn waits(w: &ExternalWaits) -> Vec<(u64, u64)> {
    w.iter().map(|(s, v)| (s.as_raw(), v)).collect()
}

#[test]
fn one_wait_per_semaphore_at_its_highest_value() {
    let mut w = ExternalWaits::default();
    assert!(w.is_empty());
    w.record(semaphore(1), 5);
    w.record(semaphore(2), 3);
    w.record(semaphore(1), 4);
    assert_eq!(waits(&w), [(1, 5), (2, 3)]);
    w.record(semaphore(1), 9);
    assert_eq!(waits(&w), [(1, 9), (2, 3)]);
}

#[test]
fn a_wait_is_dropped_once_a_submission_that_carried_it_completed() {
    let mut w = ExternalWaits::default();
    w.record(semaphore(1), 5);
    w.prune(100);
    assert_eq!(
        waits(&w),
        [(1, 5)],
        "not carried yet: kept whatever completed"
    );
    w.carried(7);
    w.record(semaphore(2), 1);
    w.carried(8);
    w.prune(6);
    assert_eq!(waits(&w), [(1, 5), (2, 1)]);
    w.prune(7);
    assert_eq!(waits(&w), [(2, 1)]);
    w.prune(8);
    assert!(w.is_empty());
}

#[test]
fn a_higher_value_must_be_carried_again() {
    let mut w = ExternalWaits::default();
    w.record(semaphore(1), 5);
    w.carried(2);
    w.record(semaphore(1), 6);
    w.prune(2);
    assert_eq!(waits(&w), [(1, 6)], "value 6 was carried by nothing yet");
    w.carried(3);
    w.record(semaphore(1), 6);
    w.prune(3);
    assert!(w.is_empty(), "an equal value adds nothing");
}
