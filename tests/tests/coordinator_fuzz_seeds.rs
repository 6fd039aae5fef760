//! The `coordinator` fuzz target's committed seeds (`fuzz/seeds/coordinator/`) are the ones
//! `memkit_tests::coordinator_fuzz::fuzz_seeds` makes, they pass the model, and together they
//! reach the states a 20-second smoke run from nothing does not.
//!
//! To rewrite the files after changing the seeds or the encoding:
//! `MEMKIT_WRITE_COORDINATOR_SEEDS=1 cargo test -p memkit-tests --test coordinator_fuzz_seeds`.

use std::collections::BTreeMap;

use memkit_tests::coordinator_fuzz::{CoordinatorWorkload, MAX_OPS, WorkloadDepth, fuzz_seeds};
use memkit_tests::fuzz_seed_files::check_committed;

#[test]
fn committed_seeds_are_the_generated_ones() {
    let seeds: BTreeMap<String, Vec<u8>> = fuzz_seeds()
        .into_iter()
        .map(|(name, w)| (name, w.encode()))
        .collect();
    check_committed(
        "coordinator",
        &seeds,
        "MEMKIT_WRITE_COORDINATOR_SEEDS",
        8 << 10,
    );
}

#[test]
fn seeds_pass_the_model_and_reach_deep_states() {
    let mut all = WorkloadDepth::default();
    for (name, w) in fuzz_seeds() {
        // What the fuzz target will run: the seed's bytes decoded.
        assert_eq!(CoordinatorWorkload::decode(&w.encode()), w, "{name}");
        assert!(
            (40..=MAX_OPS).contains(&w.ops.len()),
            "{name}: {} ops",
            w.ops.len()
        );
        let depth = w.run();
        println!("{name}: {} bytes, {depth:?}", w.encode().len());
        all = all.merge(depth);
    }
    println!("all: {all:?}");
    assert!(all.staging_full >= 10, "{all:?}");
    assert!(all.stalls >= 5, "{all:?}");
    assert!(all.dedicated_staging >= 5, "{all:?}");
    assert!(all.chunked_uploads >= 20, "{all:?}");
    assert!(all.eager_submissions >= 5, "{all:?}");
    assert!(all.frames_ended >= 10, "{all:?}");
    assert!(all.frames_cancelled >= 4, "{all:?}");
    assert!(all.frames_in_progress >= 10, "{all:?}");
    assert!(all.frame_waits >= 4, "{all:?}");
    assert!(all.dropped_with_staged >= 8, "{all:?}");
    assert!(all.foreign_refused >= 20, "{all:?}");
    assert!(all.bad_calls >= 20, "{all:?}");
    assert!(all.max_live >= 4, "{all:?}");
    assert!(all.grants_committed >= 10, "{all:?}");
    assert!(all.grants_abandoned >= 5, "{all:?}");
    assert!(all.blocked_by_held >= 10, "{all:?}");
    assert!(all.exact_checks >= 20, "{all:?}");
    assert!(all.read_backs >= 10, "{all:?}");
    assert!(all.image_uploads >= 60, "{all:?}");
    assert!(all.image_read_backs >= 20, "{all:?}");
    assert!(all.max_images >= 3, "{all:?}");
    assert!(all.app_draws >= 20, "{all:?}");
    assert!(all.buffers_moved >= 8, "{all:?}");
    assert!(all.images_moved >= 2, "{all:?}");
    assert!(all.blocks_defragmented >= 4, "{all:?}");
    assert!(all.defragmentation_running >= 2, "{all:?}");
    assert!(all.multi_type_passes >= 2, "{all:?}");
    assert!(all.aliased_sets >= 3, "{all:?}");
    assert!(all.aliases_undefined >= 4, "{all:?}");
    assert!(all.transient_slices >= 80, "{all:?}");
    assert!(all.transient_chunks >= 6, "{all:?}");
    assert!(all.transient_writers_leaked >= 4, "{all:?}");
    assert!(all.faults_fired >= 28, "{all:?}");
    assert!(all.faults_refused >= 20, "{all:?}");
    assert!(all.submit_faults_fired >= 5, "{all:?}");
    assert!(all.image_uploads_refused >= 5, "{all:?}");
}
