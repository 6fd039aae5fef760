//! The transfer scheduler against the byte model of the destinations: random uploads (overlapping,
//! unaligned, across several buffers, with queue-full retries) planned and applied must leave the
//! destinations exactly as the uploads applied in issue order; every plan checked for disjoint,
//! aligned, contained ranges and exact statistics (see `memkit_tests::transfer_model`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memkit_tests::transfer_model::{TransferWorkload, run_workload};

fuzz_target!(|workload: TransferWorkload| {
    if let Err(problem) = run_workload(&workload) {
        panic!("scheduler disagrees with the model: {problem}\n{workload:?}");
    }
});
