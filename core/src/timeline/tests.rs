//! Unit tests of the timeline tracker, the fence pool and the 64-bit fallback cell.

use std::vec::Vec;

use super::*;
use crate::sync::spin_value64::SpinValue64;

fn v(value: u64) -> FenceValue {
    FenceValue::new(value)
}

#[test]
fn values_rise_and_states_follow() {
    let t = TimelineTracker::new();
    assert_eq!(t.state(v(0)), SubmissionState::Signalled);
    assert_eq!(t.state(v(1)), SubmissionState::Unsubmitted);
    assert_eq!(t.submit().unwrap(), v(1));
    assert_eq!(t.submit().unwrap(), v(2));
    assert_eq!(t.state(v(1)), SubmissionState::Pending);
    assert_eq!(t.state(v(3)), SubmissionState::Unsubmitted);
    t.signal(v(1)).unwrap();
    assert_eq!(t.state(v(1)), SubmissionState::Signalled);
    assert_eq!(t.state(v(2)), SubmissionState::Pending);
    assert!(t.is_complete(v(1)) && !t.is_complete(v(2)));
    // The same value again is fine.
    t.signal(v(1)).unwrap();
    assert_eq!((t.submitted(), t.completed()), (v(2), v(1)));
}

#[test]
fn impossible_transitions_are_refused_and_change_nothing() {
    let t = TimelineTracker::new();
    t.submit().unwrap();
    t.submit().unwrap();
    assert_eq!(
        t.signal(v(3)).unwrap_err(),
        SignalError::NeverSubmitted {
            value: v(3),
            submitted: v(2)
        }
    );
    t.signal(v(2)).unwrap();
    assert_eq!(
        t.signal(v(1)).unwrap_err(),
        SignalError::WentBackwards {
            value: v(1),
            completed: v(2)
        }
    );
    assert_eq!(t.completed(), v(2));
}

#[test]
fn device_lost_is_terminal() {
    let t = TimelineTracker::new();
    t.submit().unwrap();
    t.submit().unwrap();
    t.signal(v(1)).unwrap();
    t.mark_device_lost();
    assert_eq!(t.state(v(1)), SubmissionState::Signalled);
    assert_eq!(t.state(v(2)), SubmissionState::DeviceLost);
    assert_eq!(t.state(v(9)), SubmissionState::DeviceLost);
    assert_eq!(t.submit().unwrap_err(), SubmitError::DeviceLost);
    assert_eq!(t.signal(v(2)).unwrap_err(), SignalError::DeviceLost);
}

#[test]
fn fence_pool_reuses_fences_only_after_their_value_completed() {
    let mut p: FencePool<2> = FencePool::new();
    let a = p.submit().unwrap();
    let b = p.submit().unwrap();
    assert_eq!((a.value, a.fence, b.value, b.fence), (v(1), 0, v(2), 1));
    assert_eq!(
        p.submit().unwrap_err(),
        SubmitError::FencePoolExhausted { wait_for: v(1) }
    );
    let pending: Vec<_> = p.pending().collect();
    assert_eq!(pending, [a, b]);
    // Fence 1 signals first: value 2 waits for value 1 before it counts.
    p.fence_signalled(1).unwrap();
    assert_eq!(p.state(v(2)), SubmissionState::Pending);
    assert_eq!(p.pending().collect::<Vec<_>>(), [a]);
    assert_eq!(
        p.fence_signalled(1).unwrap_err(),
        SignalError::FenceNotPending { fence: 1 }
    );
    p.fence_signalled(0).unwrap();
    assert_eq!(p.timeline().completed(), v(2));
    let c = p.submit().unwrap();
    assert_eq!((c.value, c.fence), (v(3), 0));
    assert_eq!(
        p.fence_signalled(7).unwrap_err(),
        SignalError::FenceNotPending { fence: 7 }
    );
    assert_eq!(
        p.fence_signalled(1).unwrap_err(),
        SignalError::FenceNotPending { fence: 1 }
    );
    p.mark_device_lost();
    assert_eq!(p.state(v(3)), SubmissionState::DeviceLost);
    assert_eq!(p.submit().unwrap_err(), SubmitError::DeviceLost);
}

#[test]
fn fence_pool_runs_many_values_through_few_fences() {
    let mut p: FencePool<3> = FencePool::new();
    let mut in_flight = std::collections::VecDeque::new();
    for round in 0..100u64 {
        match p.submit() {
            Ok(slot) => in_flight.push_back(slot),
            Err(SubmitError::FencePoolExhausted { wait_for }) => {
                let oldest = in_flight.pop_front().unwrap();
                assert_eq!(oldest.value, wait_for);
                p.fence_signalled(oldest.fence).unwrap();
                assert!(p.timeline().is_complete(wait_for), "round {round}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    // 3 submissions, then a wait and a submission per two rounds.
    assert_eq!(p.timeline().submitted().get(), 51);
}

#[test]
fn the_spin_fallback_behaves_like_an_atomic() {
    let cell = SpinValue64::new(5);
    assert_eq!(cell.load(Ordering::Acquire), 5);
    cell.store(u64::MAX - 1, Ordering::Release);
    assert_eq!(cell.fetch_max(3, Ordering::AcqRel), u64::MAX - 1);
    assert_eq!(cell.fetch_max(u64::MAX, Ordering::AcqRel), u64::MAX - 1);
    assert_eq!(
        cell.compare_exchange(1, 2, Ordering::AcqRel, Ordering::Relaxed),
        Err(u64::MAX)
    );
    assert_eq!(
        cell.compare_exchange(u64::MAX, 2, Ordering::AcqRel, Ordering::Relaxed),
        Ok(u64::MAX)
    );
    assert_eq!(cell.load(Ordering::Relaxed), 2);
}

#[test]
fn concurrent_submitters_get_distinct_rising_values() {
    let t = TimelineTracker::new();
    let per_thread = if cfg!(miri) { 20 } else { 10_000 };
    let mut all: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    for _ in 0..per_thread {
                        let value = t.submit().unwrap().get();
                        assert!(mine.last().is_none_or(|&last| last < value));
                        mine.push(value);
                        let _ = t.signal(FenceValue::new(value / 2));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    all.sort_unstable();
    assert_eq!(all, (1..=2 * per_thread).collect::<Vec<_>>());
}

#[test]
fn a_fence_that_holds_no_submission_is_not_pending() {
    let mut p: FencePool<2> = FencePool::new();
    // Never used: value 0 is complete from the start.
    assert_eq!(
        p.fence_signalled(0).unwrap_err(),
        SignalError::FenceNotPending { fence: 0 }
    );
    let a = p.submit().unwrap();
    assert_eq!((a.value, a.fence), (v(1), 0));
    assert_eq!(p.pending().collect::<Vec<_>>(), [a]);
    // Value 1 completed through the timeline directly: its fence is no longer pending.
    p.timeline().signal(v(1)).unwrap();
    assert_eq!(
        p.fence_signalled(0).unwrap_err(),
        SignalError::FenceNotPending { fence: 0 }
    );
    assert_eq!(p.pending().count(), 0);
}

#[test]
fn a_lost_device_refuses_fence_pool_calls_before_anything_else() {
    // A full pool: the loss is reported, not the wait it would otherwise ask for.
    let mut p: FencePool<1> = FencePool::new();
    p.submit().unwrap();
    p.mark_device_lost();
    assert_eq!(p.submit().unwrap_err(), SubmitError::DeviceLost);
    // A fence signalled out of order (value 2 before 1): the loss is reported, not Ok.
    let mut p: FencePool<2> = FencePool::new();
    let a = p.submit().unwrap();
    let b = p.submit().unwrap();
    p.mark_device_lost();
    assert_eq!(
        p.fence_signalled(b.fence).unwrap_err(),
        SignalError::DeviceLost
    );
    assert_eq!(
        p.fence_signalled(a.fence).unwrap_err(),
        SignalError::DeviceLost
    );
    assert_eq!(p.timeline().completed(), v(0));
}

#[test]
fn value_cells_are_the_lock_fallback_exactly_when_the_build_asks_for_it() {
    // The spin lock's flag makes the fallback wider than a bare `u64`: this catches a build
    // whose `--cfg memkit_value64_lock` run tests the atomic after all.
    let fallback = cfg!(any(memkit_value64_lock, not(target_has_atomic = "64")));
    assert_eq!(
        core::mem::size_of::<crate::sync::AtomicValue64>() > 8,
        fallback
    );
}

#[test]
fn a_resumed_timeline_continues_above_the_semaphores_value() {
    let t = TimelineTracker::resuming_at(41);
    assert_eq!(t.submitted(), FenceValue::new(41));
    assert_eq!(t.submit().unwrap(), FenceValue::new(42));
    assert_eq!(TimelineTracker::new().submit().unwrap(), FenceValue::new(1));
}
