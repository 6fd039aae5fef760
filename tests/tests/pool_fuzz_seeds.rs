//! The `pools` fuzz target's committed seeds (`fuzz/seeds/pools/`) are the ones
//! `memkit_tests::pool_model::fuzz_seeds` makes, they pass the model, and together they reach the
//! states a 20-second smoke run from nothing rarely does.
//!
//! To rewrite the files after changing the seeds or the encoding:
//! `MEMKIT_WRITE_POOL_SEEDS=1 cargo test -p memkit-tests --test pool_fuzz_seeds`.

use std::collections::BTreeMap;

use memkit_tests::fuzz_seed_files::check_committed;
use memkit_tests::pool_model::{MAX_OPS, PoolWorkload, WorkloadDepth, fuzz_seeds};

#[test]
fn committed_seeds_are_the_generated_ones() {
    let seeds: BTreeMap<String, Vec<u8>> = fuzz_seeds()
        .into_iter()
        .map(|(name, w)| (name, w.encode()))
        .collect();
    check_committed("pools", &seeds, "MEMKIT_WRITE_POOL_SEEDS", 16 << 10);
}

#[test]
fn seeds_pass_the_model_and_reach_deep_states() {
    let mut all = WorkloadDepth::default();
    let mut within_budget_refusals = 0;
    for (name, w) in fuzz_seeds() {
        // What the fuzz target will run: the seed's bytes decoded.
        assert_eq!(PoolWorkload::decode(&w.encode()), w, "{name}");
        assert!(
            (50..=MAX_OPS).contains(&w.ops.len()),
            "{name}: {} ops",
            w.ops.len()
        );
        let depth = WorkloadDepth::of(&w).unwrap_or_else(|e| panic!("{name}: {e}"));
        if w.within_budget {
            within_budget_refusals += depth.refusals;
        }
        all = all.merge(depth);
    }
    assert!(all.max_blocks >= 8, "{all:?}");
    assert!(all.max_live >= 20, "{all:?}");
    assert!(all.max_dedicated >= 4, "{all:?}");
    assert!(within_budget_refusals >= 10, "{all:?}");
    assert!(all.blocks_emptied >= 20, "{all:?}");
    assert!(all.blocks_trimmed >= 20, "{all:?}");
    assert!(all.replayed_frees >= 50, "{all:?}");
    assert!(all.blocks_defragmented >= 15, "{all:?}");
}
