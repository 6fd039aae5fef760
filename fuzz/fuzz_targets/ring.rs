//! The staging ring against its sequential model (`memkit_tests::ring_model`): an arbitrary small
//! capacity and op sequence (grant, commit, drop, drain, mark, release), in lockstep, with the
//! harness's byte-ownership checks (no overlap, nothing reused before its value completed, every
//! committed byte drained once, in order, untouched) after every op.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use memkit_tests::ring_model::{RingOp, run_ring_ops};

#[derive(Debug, Arbitrary)]
struct Workload {
    /// Capacity, 1..=256 bytes: small, so grants wrap, collide and fail.
    capacity: u8,
    ops: Vec<RingOp>,
}

fuzz_target!(|workload: Workload| {
    let capacity = usize::from(workload.capacity).max(1);
    if let Err(divergence) = run_ring_ops(capacity, &workload.ops) {
        panic!("{divergence}");
    }
});
