//! Device faults in a coordinator workload ([`CoordOp::Fault`]): the op after a fault op meets
//! a driver that refuses one memory allocation, resource creation, bind or submission with
//! `OutOfDeviceMemory`, or one map of new host-visible memory with `MapFailed`. Only ops whose
//! refusal the model can follow are armed (those that make buffers, images, read-backs,
//! transient memory, staging of their own or defragmentation moves, image uploads, and
//! flushes); the fault is forgotten after that op, fired or not. A refused op must return the
//! device's error and change nothing the model does not forget; whatever it took must be given
//! back, which the teardown's leak check and the device's misuse records see. A refused
//! submission is kept and signalled first by the next one: what it carried lands then, once
//! (the ledger's count of bytes copied checks that), and its timeline value still rises (the
//! device records a value that does not as a misuse). An image upload refused part way leaves
//! the pieces submitted before it landed (their bytes unknown to the model).

use memkit_core::device::DeviceError;
use memkit_dummy::DummyDevice;
use memkit_std::Error;

use super::CoordOp;

/// Which device call a [`CoordOp::Fault`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSite {
    /// `allocate_memory` (a new block or an object of its own).
    Allocation = 0,
    /// `create_buffer` / `create_image`.
    Creation = 1,
    /// `bind_buffer_memory` / `bind_image_memory`, aliased or not.
    Bind = 2,
    /// `map_memory` (a new host-visible block or object, mapped once for its life).
    Map = 3,
    /// `submit_copies` and the image and move submissions (uploads, read-backs, moves, the
    /// signal of a refused value).
    Submit = 4,
}

impl FaultSite {
    /// The device's count of calls of this kind so far, failed ones included.
    fn calls(self, device: &DummyDevice) -> u64 {
        let counters = device.counters();
        match self {
            Self::Allocation => counters.allocation_calls,
            Self::Creation => counters.buffer_creation_calls,
            Self::Bind => counters.bind_calls,
            Self::Map => counters.map_calls,
            Self::Submit => counters.submit_calls,
        }
    }

    /// The error the device refuses a call here with.
    fn refusal(self) -> DeviceError {
        match self {
            Self::Map => DeviceError::MapFailed,
            Self::Allocation | Self::Creation | Self::Bind | Self::Submit => {
                DeviceError::OutOfDeviceMemory
            }
        }
    }
}

/// The fault a fault op asked for, and the one armed for the op running now.
pub(super) struct Faults<'d> {
    device: &'d DummyDevice,
    /// Asked for by the last op: the site and which of its calls (from 1) in the next op.
    asked: Option<(FaultSite, u64)>,
    /// Armed for the op running now: the site and the call number that fails.
    armed: Option<(FaultSite, u64)>,
    /// Armed faults that fired.
    fired: u32,
    /// Of those, at [`FaultSite::Submit`].
    fired_submits: u32,
}

impl<'d> Faults<'d> {
    pub(super) fn new(device: &'d DummyDevice) -> Self {
        Self {
            device,
            asked: None,
            armed: None,
            fired: 0,
            fired_submits: 0,
        }
    }

    /// Asks for the `nth` call (from 1) at `site` in the next op to fail.
    pub(super) fn ask(&mut self, site: FaultSite, nth: u64) {
        self.asked = Some((site, nth));
    }

    /// Before each op: forgets what the last op left armed, and arms what was asked for if
    /// `op` is one whose refusal the model follows.
    pub(super) fn before(&mut self, op: &CoordOp) {
        self.disarm();
        let Some((site, nth)) = self.asked.take() else {
            return;
        };
        let follows = matches!(
            op,
            CoordOp::Create { .. }
                | CoordOp::UploadTo { .. }
                | CoordOp::UploadSlice { .. }
                | CoordOp::Grant { .. }
                | CoordOp::Stage { .. }
                | CoordOp::ReadBack { .. }
                | CoordOp::Hold { .. }
                | CoordOp::CreateImage { .. }
                | CoordOp::UploadImage { .. }
                | CoordOp::ReadBackImage { .. }
                | CoordOp::Transient { .. }
                | CoordOp::TransientWriter { .. }
                | CoordOp::CreateAliasedImages { .. }
                | CoordOp::Defragment { .. }
                | CoordOp::Flush
        );
        if !follows {
            return;
        }
        let call = site.calls(self.device) + nth;
        let refusal = site.refusal();
        match site {
            FaultSite::Allocation => self.device.fail_allocation_call(call, refusal),
            FaultSite::Creation => self.device.fail_buffer_creation_call(call, refusal),
            FaultSite::Bind => self.device.fail_bind_call(call, refusal),
            FaultSite::Map => self.device.fail_map_call(call),
            FaultSite::Submit => self.device.fail_submit_call(call, refusal),
        }
        self.armed = Some((site, call));
    }

    /// Forgets the armed fault, counting it if it fired (before each op, and before the
    /// model's own checks at the end, which make device calls of their own).
    pub(super) fn disarm(&mut self) {
        if let Some((site, _)) = self.armed {
            let fired = u32::from(self.fired());
            self.fired += fired;
            if site == FaultSite::Submit {
                self.fired_submits += fired;
            }
            self.armed = None;
            self.device.clear_planned_failures();
        }
    }

    /// Armed faults that fired so far, and how many of them refused a submission.
    pub(super) fn fired_count(&self) -> (u32, u32) {
        (self.fired, self.fired_submits)
    }

    /// Whether the armed fault fired during the op running now.
    pub(super) fn fired(&self) -> bool {
        self.armed
            .is_some_and(|(site, call)| site.calls(self.device) >= call)
    }

    /// Whether `e` is the refusal of the armed fault, fired during the op running now.
    pub(super) fn refused(&self, e: &Error) -> bool {
        self.armed
            .is_some_and(|(site, _)| *e == Error::Device(site.refusal()))
            && self.fired()
    }
}
