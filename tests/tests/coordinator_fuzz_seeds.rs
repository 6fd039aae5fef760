//! The `coordinator` fuzz target's committed seeds (`fuzz/seeds/coordinator/`) are the ones
//! `memkit_tests::coordinator_fuzz::fuzz_seeds` makes, they pass the model, and together they
//! reach the states a 20-second smoke run from nothing does not.
//!
//! To rewrite the files after changing the seeds or the encoding:
//! `MEMKIT_WRITE_COORDINATOR_SEEDS=1 cargo test -p memkit-tests --test coordinator_fuzz_seeds`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use memkit_tests::coordinator_fuzz::{CoordinatorWorkload, MAX_OPS, WorkloadDepth, fuzz_seeds};

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/coordinator")
}

#[test]
fn committed_seeds_are_the_generated_ones() {
    let dir = seed_dir();
    let seeds: BTreeMap<String, Vec<u8>> = fuzz_seeds()
        .into_iter()
        .map(|(name, w)| (name, w.encode()))
        .collect();
    if std::env::var_os("MEMKIT_WRITE_COORDINATOR_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let committed: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        seeds.keys().collect::<Vec<_>>(),
        "rewrite with MEMKIT_WRITE_COORDINATOR_SEEDS=1"
    );
    for (name, bytes) in &seeds {
        assert!(
            committed[name] == *bytes,
            "{name} is stale: rewrite with MEMKIT_WRITE_COORDINATOR_SEEDS=1"
        );
    }
    let total: usize = seeds.values().map(Vec::len).sum();
    assert!(total < 8 << 10, "the seeds take {total} bytes");
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
}
