//! Unit tests of frame pacing.

use super::*;

fn v(value: u64) -> FenceValue {
    FenceValue::new(value)
}

#[test]
fn each_frame_waits_for_the_frame_that_last_used_its_slot() {
    for (mode, n) in [
        (BufferingMode::Single, 1u64),
        (BufferingMode::Double, 2),
        (BufferingMode::Triple, 3),
    ] {
        let mut pacer = FramePacer::new(mode);
        for k in 0..10u64 {
            let frame = pacer.begin_frame().unwrap();
            assert_eq!(frame.number(), k);
            assert_eq!(frame.slot() as u64, k % n);
            // Frame k was submitted with value 10 + k; frame k waits for frame k - n.
            let expected = if k >= n {
                v(10 + k - n)
            } else {
                FenceValue::ZERO
            };
            assert_eq!(frame.wait_for(), expected, "{mode:?} frame {k}");
            pacer.end_frame(frame, v(10 + k)).unwrap();
        }
        assert_eq!(pacer.frames_ended(), 10);
        assert_eq!(pacer.last_submission(), v(19));
    }
}

#[test]
fn misuse_is_refused_and_changes_nothing() {
    let mut pacer = FramePacer::new(BufferingMode::Double);
    let f0 = pacer.begin_frame().unwrap();
    assert_eq!(
        pacer.begin_frame().unwrap_err(),
        FrameError::FrameInProgress { current: 0 }
    );
    pacer.end_frame(f0, v(5)).unwrap();
    let f1 = pacer.begin_frame().unwrap();
    let refused = pacer.end_frame(f1, v(4)).unwrap_err();
    // An error type that names the frame and passes the reason on as its source.
    assert_eq!(
        std::format!("{refused}"),
        std::format!("frame 1 refused: {}", refused.error)
    );
    let source = core::error::Error::source(&refused).unwrap();
    assert_eq!(source.downcast_ref(), Some(&refused.error));
    let (f1, err) = refused.into_parts();
    assert_eq!(
        err,
        FrameError::ValueWentBackwards {
            value: v(4),
            previous: v(5)
        }
    );
    // A frame from another pacer with another number is not the current one.
    let mut other = FramePacer::new(BufferingMode::Double);
    let o0 = other.begin_frame().unwrap();
    let (o0, err) = pacer.end_frame(o0, v(6)).unwrap_err().into_parts();
    assert_eq!(err, FrameError::NotCurrentFrame { given: 0 });
    other.cancel_frame(o0).unwrap();
    // Nor is one with the current number: here a Triple pacer's frame 2, whose slot 2 a Double
    // pacer does not have.
    let mut triple = FramePacer::new(BufferingMode::Triple);
    for value in [1, 2] {
        let f = triple.begin_frame().unwrap();
        triple.end_frame(f, v(value)).unwrap();
    }
    let t2 = triple.begin_frame().unwrap();
    assert_eq!((t2.number(), t2.slot()), (2, 2));
    let mut double = FramePacer::new(BufferingMode::Double);
    for value in [1, 2] {
        let f = double.begin_frame().unwrap();
        double.end_frame(f, v(value)).unwrap();
    }
    let d2 = double.begin_frame().unwrap();
    let (t2, err) = double.end_frame(t2, v(3)).unwrap_err().into_parts();
    assert_eq!(err, FrameError::NotCurrentFrame { given: 2 });
    let (t2, err) = double.cancel_frame(t2).unwrap_err().into_parts();
    assert_eq!(err, FrameError::NotCurrentFrame { given: 2 });
    // Both pacers still end their own frames.
    double.end_frame(d2, v(3)).unwrap();
    triple.end_frame(t2, v(3)).unwrap();
    assert_eq!(double.begin_frame().unwrap().wait_for(), v(2));
    // Cancelling keeps the slot waiting for what it waited for before.
    pacer.cancel_frame(f1).unwrap();
    let f2 = pacer.begin_frame().unwrap();
    assert_eq!((f2.slot(), f2.wait_for()), (0, v(5)));
    pacer.end_frame(f2, v(6)).unwrap();
    let f3 = pacer.begin_frame().unwrap();
    assert_eq!((f3.slot(), f3.wait_for()), (1, FenceValue::ZERO));
    assert_eq!(pacer.frames_ended(), 3);
    pacer.end_frame(f3, v(6)).unwrap();
}

#[test]
fn a_dropped_frame_is_recovered_and_ended_or_cancelled() {
    let mut pacer = FramePacer::new(BufferingMode::Double);
    assert_eq!(pacer.recover_frame(), None);
    let f0 = pacer.begin_frame().unwrap();
    pacer.end_frame(f0, v(5)).unwrap();
    // Frame 1 (slot 1) is lost; frame 2 (slot 0) cannot begin until it is recovered.
    drop(pacer.begin_frame().unwrap());
    assert_eq!(
        pacer.begin_frame().unwrap_err(),
        FrameError::FrameInProgress { current: 1 }
    );
    let f1 = pacer.recover_frame().unwrap();
    assert_eq!(
        (f1.number(), f1.slot(), f1.wait_for()),
        (1, 1, FenceValue::ZERO)
    );
    // Ended with its submission's value: slot 1's next user (frame 3) waits for it.
    pacer.end_frame(f1, v(7)).unwrap();
    assert_eq!(pacer.recover_frame(), None);
    let f2 = pacer.begin_frame().unwrap();
    assert_eq!((f2.number(), f2.wait_for()), (2, v(5)));
    // A recovered frame can be cancelled too: frame 2 is lost, recovered and cancelled, and
    // slot 0 keeps waiting for frame 0's value.
    drop(f2);
    let f2 = pacer.recover_frame().unwrap();
    assert_eq!((f2.number(), f2.slot(), f2.wait_for()), (2, 0, v(5)));
    pacer.cancel_frame(f2).unwrap();
    let f3 = pacer.begin_frame().unwrap();
    assert_eq!((f3.number(), f3.slot(), f3.wait_for()), (3, 1, v(7)));
    // A recovered copy of a frame still held is the same frame: ending one ends it, and the
    // other is refused afterwards.
    let copy = pacer.recover_frame().unwrap();
    assert_eq!(copy, f3);
    pacer.end_frame(copy, v(8)).unwrap();
    let (_, err) = pacer.end_frame(f3, v(9)).unwrap_err().into_parts();
    assert_eq!(err, FrameError::NotCurrentFrame { given: 3 });
    assert_eq!((pacer.frames_ended(), pacer.last_submission()), (4, v(8)));
    // Another pacer's frame stays foreign to this one even when recovered.
    let mut other = FramePacer::new(BufferingMode::Double);
    drop(other.begin_frame().unwrap());
    let foreign = other.recover_frame().unwrap();
    let f4 = pacer.begin_frame().unwrap();
    let (foreign, err) = pacer.end_frame(foreign, v(9)).unwrap_err().into_parts();
    assert_eq!(err, FrameError::NotCurrentFrame { given: 0 });
    other.cancel_frame(foreign).unwrap();
    pacer.end_frame(f4, v(9)).unwrap();
}
