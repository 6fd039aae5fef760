//! Committed fuzz seeds (`fuzz/seeds/<target>/`): each target's seeds are made by a generator in
//! this crate, and a test keeps the files equal to what it makes (or rewrites them).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Checks that `fuzz/seeds/<target>/` holds exactly `seeds` (file name to bytes), at most
/// `max_total` bytes in all. With the environment variable `rewrite_var` set, the directory is
/// rewritten from `seeds` first. Panics (a test failure) on any difference, naming the variable
/// that rewrites the files.
pub fn check_committed(
    target: &str,
    seeds: &BTreeMap<String, Vec<u8>>,
    rewrite_var: &str,
    max_total: usize,
) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    if std::env::var_os(rewrite_var).is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, bytes) in seeds {
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
        "rewrite with {rewrite_var}=1"
    );
    for (name, bytes) in seeds {
        assert!(
            committed[name] == *bytes,
            "{name} is stale: rewrite with {rewrite_var}=1"
        );
    }
    let total: usize = seeds.values().map(Vec::len).sum();
    assert!(total < max_total, "the seeds take {total} bytes");
}
