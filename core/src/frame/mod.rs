//! Frame pacing: with `N` frames in flight, frame `k` reuses the resources (arena, staging) of
//! frame `k - N`, so it may start writing them only when frame `k - N`'s submission completed.
//!
//! [`FramePacer::begin_frame`] says which timeline value that is; the caller waits for it (core
//! never blocks) and [`FramePacer::end_frame`] records the new frame's submission value.
#![forbid(unsafe_code)]

#[cfg(all(test, not(loom)))]
mod tests;

use core::fmt;

use crate::timeline::FenceValue;

/// How many frames may be in flight at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BufferingMode {
    /// One: each frame waits for the previous one to finish on the GPU.
    Single,
    /// Two: the CPU prepares frame `k` while the GPU runs frame `k - 1`.
    Double,
    /// Three: one more frame of slack, at one more frame of latency.
    #[default]
    Triple,
}

impl BufferingMode {
    /// Frames in flight: 1, 2 or 3.
    pub const fn frames_in_flight(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Double => 2,
            Self::Triple => 3,
        }
    }
}

/// The largest number of frames in flight.
const MAX_FRAMES: usize = 3;

/// A frame that began and has not ended: its number and the slot whose resources it uses.
///
/// Consumed by [`FramePacer::end_frame`] or [`FramePacer::cancel_frame`]. A frame dropped instead
/// (an early return, a panic caught further up) leaves the pacer refusing the next frame with
/// [`FrameError::FrameInProgress`] until [`FramePacer::recover_frame`] hands the frame back.
#[must_use = "a frame must be ended (or cancelled) before the next one begins"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The pacer that began it (see [`FramePacer::id`]).
    pacer: u32,
    number: u64,
    slot: usize,
    wait_for: FenceValue,
}

impl Frame {
    /// The frame's number, counting from 0.
    pub const fn number(&self) -> u64 {
        self.number
    }

    /// The slot (0 to frames in flight - 1) whose resources the frame uses.
    pub const fn slot(&self) -> usize {
        self.slot
    }

    /// The timeline value that must complete before the slot's resources may be reused
    /// ([`FenceValue::ZERO`] when the slot was never used: nothing to wait for).
    pub const fn wait_for(&self) -> FenceValue {
        self.wait_for
    }
}

/// Why a frame operation was refused. A refused operation changes nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// `begin_frame` while frame `current` has not ended. If its [`Frame`] was dropped,
    /// [`FramePacer::recover_frame`] hands it back to end or cancel.
    FrameInProgress {
        /// The frame in progress.
        current: u64,
    },
    /// The frame given is not the one in progress (it belongs to another pacer, or it ended).
    NotCurrentFrame {
        /// The frame given.
        given: u64,
    },
    /// A frame's submission value is below the previous frame's: the timeline went backwards.
    ValueWentBackwards {
        /// The value given.
        value: FenceValue,
        /// The previous frame's value.
        previous: FenceValue,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::FrameInProgress { current } => {
                write!(f, "frame {current} has not ended yet")
            }
            Self::NotCurrentFrame { given } => {
                write!(f, "frame {given} is not the frame in progress")
            }
            Self::ValueWentBackwards { value, previous } => write!(
                f,
                "frame submission value {value} is below the previous frame's {previous}"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// [`FramePacer::end_frame`] or [`FramePacer::cancel_frame`] refused: why, and the frame handed
/// back (to end or cancel properly, or to drop). An error type, so `?` passes it on; its
/// [`source`](core::error::Error::source) is the [`FrameError`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FrameRefused {
    /// The frame given, unchanged.
    pub frame: Frame,
    /// Why it was refused.
    pub error: FrameError,
}

impl FrameRefused {
    /// The frame and the reason, apart.
    pub fn into_parts(self) -> (Frame, FrameError) {
        (self.frame, self.error)
    }
}

impl fmt::Display for FrameRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame {} refused: {}", self.frame.number, self.error)
    }
}

impl core::error::Error for FrameRefused {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Paces frames: at most `frames_in_flight` frames between CPU and GPU.
#[derive(Debug)]
pub struct FramePacer {
    /// Which pacer this is, so that another pacer's frame of the same number is refused: 0 until
    /// the first frame begins (so that `new` can stay `const`), then a process-wide unique id.
    id: u32,
    mode: BufferingMode,
    /// Per slot, the submission value of the last frame that used it.
    slot_values: [FenceValue; MAX_FRAMES],
    /// The next frame's number.
    next_frame: u64,
    in_progress: bool,
    last_value: FenceValue,
}

impl FramePacer {
    /// A pacer with no frame begun.
    pub const fn new(mode: BufferingMode) -> Self {
        Self {
            id: 0,
            mode,
            slot_values: [FenceValue::ZERO; MAX_FRAMES],
            next_frame: 0,
            in_progress: false,
            last_value: FenceValue::ZERO,
        }
    }

    /// The buffering mode.
    pub const fn mode(&self) -> BufferingMode {
        self.mode
    }

    /// Frames ended so far.
    pub const fn frames_ended(&self) -> u64 {
        if self.in_progress {
            self.next_frame - 1
        } else {
            self.next_frame
        }
    }

    /// Begins the next frame. Before touching the frame slot's resources, wait until
    /// [`Frame::wait_for`] completed.
    ///
    /// Errors: [`FrameError::FrameInProgress`].
    pub fn begin_frame(&mut self) -> Result<Frame, FrameError> {
        if self.in_progress {
            return Err(FrameError::FrameInProgress {
                current: self.next_frame - 1,
            });
        }
        let number = self.next_frame;
        let slot = (number % self.mode.frames_in_flight() as u64) as usize;
        self.next_frame += 1;
        self.in_progress = true;
        Ok(Frame {
            pacer: self.id(),
            number,
            slot,
            wait_for: self.slot_values[slot],
        })
    }

    /// Ends `frame`, whose work was submitted with `value`: the slot's resources come back when
    /// `value` completes.
    ///
    /// Errors, each in a [`FrameRefused`] that hands the frame back:
    /// [`FrameError::NotCurrentFrame`], [`FrameError::ValueWentBackwards`].
    pub fn end_frame(&mut self, frame: Frame, value: FenceValue) -> Result<(), FrameRefused> {
        if let Err(error) = self.check_current(&frame) {
            return Err(FrameRefused { frame, error });
        }
        if value < self.last_value {
            let previous = self.last_value;
            let error = FrameError::ValueWentBackwards { value, previous };
            return Err(FrameRefused { frame, error });
        }
        self.slot_values[frame.slot] = value;
        self.last_value = value;
        self.in_progress = false;
        Ok(())
    }

    /// Ends `frame` without a submission (it was abandoned): the slot keeps waiting for what it
    /// waited for before.
    ///
    /// Errors: [`FrameError::NotCurrentFrame`], in a [`FrameRefused`] that hands the frame back.
    pub fn cancel_frame(&mut self, frame: Frame) -> Result<(), FrameRefused> {
        if let Err(error) = self.check_current(&frame) {
            return Err(FrameRefused { frame, error });
        }
        self.in_progress = false;
        Ok(())
    }

    /// The frame in progress, handed out again: for a caller whose [`Frame`] was dropped
    /// without being ended or cancelled, so that it can end the frame (with the value its work
    /// was submitted with, if any was) or cancel it. `None` when no frame is in progress.
    ///
    /// It is the same frame (number, slot, value to wait for); a copy of it still held is no
    /// different, and whichever ends first ends the frame. Recovering never moves the timeline
    /// on by itself: if the lost frame's work was submitted, end the frame with that submission's
    /// value, or the frame slot's next user will not wait for it.
    pub fn recover_frame(&mut self) -> Option<Frame> {
        if !self.in_progress {
            return None;
        }
        let number = self.next_frame - 1;
        let slot = (number % self.mode.frames_in_flight() as u64) as usize;
        Some(Frame {
            pacer: self.id(),
            number,
            slot,
            wait_for: self.slot_values[slot],
        })
    }

    /// This pacer's id, taken from a process-wide counter the first time it is asked for (ids
    /// wrap after 2^32 - 1 pacers, far past any real use; 0 is skipped).
    fn id(&mut self) -> u32 {
        if self.id == 0 {
            self.id = crate::instance_id::next_wrapping().get();
        }
        self.id
    }

    fn check_current(&self, frame: &Frame) -> Result<(), FrameError> {
        if self.in_progress && frame.pacer == self.id && frame.number + 1 == self.next_frame {
            Ok(())
        } else {
            Err(FrameError::NotCurrentFrame {
                given: frame.number,
            })
        }
    }

    /// The value whose completion means every frame ended so far finished on the GPU.
    pub const fn last_submission(&self) -> FenceValue {
        self.last_value
    }
}
