//! The coordinator against a model of the destination bytes, on the simulated device
//! (`memkit_tests::coordinator_fuzz`): buffers created (device-only or written directly), uploads
//! (`upload_to`, `upload_slice`, staging grants, uploads staged in frames), frames begun, ended
//! and cancelled, drops, flushes, maintenance, a GPU timeline advanced by hand, another
//! coordinator's buffers, grants and frames, and staging grants held across later ops, then
//! committed or abandoned, over a small staging ring so that it wraps, fills and applies each
//! back-pressure policy; and textures in RGBA8 and compressed (BC7, or ASTC 6x6 on the mobile
//! preset) uploaded a band of rows at a time, read back a level at a time, drawn whole by the
//! application after the coordinator was told to wait for its frame (`wait_for_external`,
//! `Image::mark_written`), and dropped; and device faults refusing an op's allocation, creation,
//! bind or map. After every flush-and-complete, each live buffer's bytes
//! and each read-back's equal the model and the device copied each staged byte once; every bad
//! call, and every call a held grant keeps from room, gets the typed error the model expects;
//! the device records no misuse and nothing is left after teardown. The model panics where they
//! disagree.
//!
//! The input is read in the model's compact encoding (`CoordinatorWorkload::decode`: every byte
//! string is a workload, an op takes one to four bytes). Seeds: `fuzz/seeds/coordinator/` holds
//! long workloads (`memkit_tests::coordinator_fuzz::fuzz_seeds`) that fill the ring, chunk large
//! uploads, end and cancel frames, drop buffers with uploads staged, hand over foreign handles
//! and hold grants; CI's smoke run reads them after its own corpus directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memkit_tests::coordinator_fuzz::CoordinatorWorkload;

fuzz_target!(|data: &[u8]| {
    CoordinatorWorkload::decode(data).run();
});
