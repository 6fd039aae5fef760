//! Loom model of the timeline tracker: a submitter, a poller that reports completions, and an
//! observer, in every interleaving (up to the preemption bound).

use loom::sync::Arc;
use loom::thread;

use super::*;

/// The submitter takes two values; the poller reports each one complete once it sees it
/// submitted; the observer watches value 1. Checked: values are 1 and 2; a value never goes back
/// from signalled to pending; completed never exceeds submitted; signals are never refused.
#[test]
fn loom_timeline_concurrent_submit_and_poll() {
    loom::model(|| {
        let timeline = Arc::new(TimelineTracker::new());
        let submitter = {
            let t = timeline.clone();
            thread::spawn(move || {
                assert_eq!(t.submit().unwrap(), FenceValue::new(1));
                assert_eq!(t.submit().unwrap(), FenceValue::new(2));
            })
        };
        let poller = {
            let t = timeline.clone();
            thread::spawn(move || {
                // Report each value as soon as it is submitted, as a device that is instant.
                let mut reported = 0;
                while reported < 2 {
                    let submitted = t.submitted().get();
                    if submitted > reported {
                        reported += 1;
                        t.signal(FenceValue::new(reported)).unwrap();
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let mut was_signalled = false;
        for _ in 0..2 {
            let completed = timeline.completed();
            let submitted = timeline.submitted();
            assert!(completed <= submitted, "{completed} > {submitted}");
            let state = timeline.state(FenceValue::new(1));
            if was_signalled {
                assert_eq!(state, SubmissionState::Signalled);
            }
            was_signalled = state == SubmissionState::Signalled;
            assert_ne!(state, SubmissionState::DeviceLost);
            thread::yield_now();
        }
        submitter.join().unwrap();
        poller.join().unwrap();
        assert_eq!(timeline.completed(), FenceValue::new(2));
        assert_eq!(
            timeline.state(FenceValue::new(2)),
            SubmissionState::Signalled
        );
    });
}
