//! The `memkit` command's edges: arguments that are not UTF-8, help after a flag, the JSON file
//! opened before the run, the report's wording and the bench's figures. Like `cli.rs`, the
//! binary's modules are compiled in from its own source files; with `--features cli` the binary
//! itself runs too.
// The binary's modules are shared with it; not everything they offer is used here.
#![allow(dead_code)]

#[path = "../src/bin/memkit/application.rs"]
mod application;
#[path = "../src/bin/memkit/args.rs"]
mod args;
#[path = "../src/bin/memkit/backend.rs"]
mod backend;
#[path = "../src/bin/memkit/bench.rs"]
mod bench;
#[path = "../src/bin/memkit/clock.rs"]
mod clock;
#[path = "../src/bin/memkit/demo.rs"]
mod demo;
#[path = "support/json.rs"]
mod json;
#[path = "../src/bin/memkit/render_targets.rs"]
mod render_targets;
#[path = "../src/bin/memkit/report.rs"]
mod report;
#[path = "../src/bin/memkit/rng.rs"]
mod rng;

use crate::args::{Command, Options};

/// Arguments that are not UTF-8: `--json` takes any path the OS does, anything else is a usage
/// error naming the flag (not a panic).
#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_a_json_path_or_a_usage_error() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;
    let os = |bytes: &[u8]| OsString::from_vec(bytes.to_vec());
    let path = os(b"/tmp/\xffreport.json");
    for args in [
        vec![os(b"demo"), os(b"--json"), path.clone()],
        vec![os(b"demo"), os(b"--json=/tmp/\xffreport.json")],
    ] {
        let o = Options::parse(args).expect("a non-UTF-8 --json path parses");
        assert_eq!(o.command, Command::Demo);
        assert_eq!(o.json.map(|p| p.into_os_string()), Some(path.clone()));
    }
    for (args, names) in [
        (
            vec![os(b"demo"), os(b"--device"), os(b"dummy:\xff")],
            "--device",
        ),
        (vec![os(b"demo"), os(b"--frames=1\xff")], "--frames"),
        (vec![os(b"demo"), os(b"--seed"), os(b"\xff")], "--seed"),
        (
            vec![os(b"demo"), os(b"--threads"), os(b"\xfe")],
            "--threads",
        ),
        (vec![os(b"\xff")], "unknown command"),
        (vec![os(b"demo"), os(b"--\xff")], "unknown option"),
        (vec![os(b"demo"), os(b"--\xff=1")], "unknown option"),
    ] {
        let e = Options::parse(args.clone()).expect_err("refused");
        assert!(e.0.contains(names), "{args:?}: {e}");
    }
    let e = Options::parse([os(b"demo"), os(b"--device=\xff")]).unwrap_err();
    assert!(e.0.contains("not valid UTF-8"), "{e}");
}

/// `-h`/`--help` before a command, and `help <command>`, ask for the help (not a usage error).
#[test]
fn help_before_or_after_a_command_is_help() {
    for args in [
        &["--help", "demo"][..],
        &["-h", "bench", "--quick"],
        &["demo", "--help"],
        &["help", "probe"],
        &["--json", "x.json", "--help", "demo"],
    ] {
        let o = Options::parse(args.iter().copied()).expect("help parses");
        assert_eq!(o.command, Command::Help, "{args:?}");
    }
    for bad in [
        &["--help", "explode"][..],
        &["help", "demo", "probe"],
        &["demo", "probe", "--help"],
        &["--help", "--frames", "0"],
    ] {
        assert!(Options::parse(bad.iter().copied()).is_err(), "{bad:?}");
    }
}

/// The demo report gives a heap's blocks and dedicated objects as counts and totals: "3 blocks,
/// 194.0 MiB in all", never "3 blocks of 194.0 MiB" (a per-block size it does not know).
#[test]
fn heap_lines_state_totals_not_sizes_per_block() {
    let report = demo::run(
        memkit_dummy::DummyDevice::discrete(),
        memkit_std::CoordinatorConfig::default(),
        demo::DemoOptions {
            frames: 2,
            threads: 1,
            seed: 7,
            progress: false,
        },
    )
    .expect("the demo runs");
    let mut heap = report.stats.heaps[0].clone();
    heap.blocks = 3;
    heap.block_bytes = 194 << 20;
    heap.dedicated_objects = 2;
    heap.dedicated_bytes = 96 << 20;
    let line = report::heap_line(&heap);
    assert!(line.contains("3 blocks, 194.0 MiB in all"), "{line}");
    assert!(
        line.contains("2 dedicated objects, 96.0 MiB in all"),
        "{line}"
    );
    assert!(!line.contains(" of "), "{line}");
    let text = report::demo_text(&report);
    for h in &report.stats.heaps {
        assert!(text.contains(&report::heap_line(h)), "{text}");
    }
    assert!(!text.contains("blocks of"), "{text}");
}

/// The demo's frame of render targets and scratch buffers shares memory: its five 1080p
/// targets and two buffers take what its busiest pass holds (albedo, normals, HDR and the light
/// lists in pass 1), each read back intact in its last pass, and the report says so in words and
/// in JSON.
#[test]
fn the_demo_aliases_its_render_targets_and_reads_each_back_intact() {
    let report = demo::run(
        memkit_dummy::DummyDevice::discrete(),
        memkit_std::CoordinatorConfig::default(),
        demo::DemoOptions {
            frames: 2,
            threads: 1,
            seed: 3,
            progress: false,
        },
    )
    .expect("the demo runs");
    assert!(report.verification.passed(), "{:?}", report.verification);
    let t = report.render_targets;
    let target = |bytes_per_texel: u64| 1920 * 1080 * bytes_per_texel;
    // The simulator's images take their texels' bytes (its alignment divides these sizes, and
    // so does its granularity, 1 KiB): the busiest pass holds albedo, normals, HDR and the 2 MiB
    // light lists; the histogram takes bytes of targets done with.
    assert_eq!((t.images, t.buffers), (5, 2));
    assert_eq!(t.bytes, target(4) + 2 * target(8) + (2 << 20));
    assert_eq!(
        t.unaliased_bytes,
        2 * target(4) + 2 * target(8) + 960 * 540 * 8 + (2 << 20) + (64 << 10)
    );
    let text = report::demo_text(&report);
    assert!(
        text.contains(
            "render targets: 5 images and 2 buffers of one frame aliased in 41.6 MiB instead of \
             53.5 MiB"
        ),
        "{text}"
    );
    let json = report::demo_json(&report);
    assert!(
        json.contains(&format!(
            "\"render_targets\":{{\"images\":5,\"buffers\":2,\"bytes\":{},\"unaliased_bytes\":{}}}",
            t.bytes, t.unaliased_bytes
        )),
        "{json}"
    );
}

/// The bench states the repetitions of each part: part 1's small-upload medians and part 2's
/// path medians have different counts (5 and 3 with `--quick`), in words and in JSON.
#[test]
fn bench_report_states_the_repetitions_of_each_part() {
    let quick = bench::BenchOptions {
        quick: true,
        seed: 1,
    };
    let full = bench::BenchOptions {
        quick: false,
        ..quick
    };
    assert_eq!(
        (quick.small_repetitions(), quick.path_repetitions()),
        (5, 3)
    );
    assert_eq!((full.small_repetitions(), full.path_repetitions()), (15, 5));
    let report = bench::BenchReport {
        device: "d".to_owned(),
        small_repetitions: quick.small_repetitions(),
        path_repetitions: quick.path_repetitions(),
        paths_cpu_time: true,
        small_cpu_time: true,
        small: Vec::new(),
        paths: Vec::new(),
    };
    let text = bench::text(&report);
    assert!(
        text.contains("medians of 5 batches per small upload size, of 3 runs per path and size"),
        "{text}"
    );
    let json = bench::json(&report);
    assert!(json.contains("\"small_repetitions\":5"), "{json}");
    assert!(json.contains("\"path_repetitions\":3"), "{json}");
    assert!(!json.contains("\"repetitions\""), "{json}");
}

/// The memcpy baseline of the small-upload rows copies into page-aligned memory, as the ring's
/// grants are: a `Vec`'s start (16 bytes past a page) made each copy straddle one more cache
/// line, the baseline slower than the copy it is subtracted from, and the 4 KiB row negative.
#[test]
fn the_memcpy_baseline_target_is_page_aligned() {
    for len in [64 * 4096, 4096 * 4096, 1, 4095] {
        let mut target = bench::MemcpyTarget::new(len);
        let bytes = target.bytes_mut();
        assert_eq!(bytes.len(), len);
        assert_eq!(bytes.as_ptr() as usize % 4096, 0, "{len}");
        assert!(bytes.iter().all(|&b| b == 0));
    }
}

/// A row whose memcpy alone took longer than the upload (a negative difference) reads "below
/// memcpy noise", not a negative cost; JSON gives `null` and says why.
#[test]
fn a_negative_overhead_is_reported_as_below_memcpy_noise() {
    let row = |upload_ns: f64, memcpy_ns: f64| bench::SmallUpload {
        size: 4096,
        direct: false,
        upload_ns,
        memcpy_ns,
        overhead_ns: upload_ns - memcpy_ns,
        flush_ns: 220.0,
    };
    let report = bench::BenchReport {
        device: "d".to_owned(),
        small_repetitions: 5,
        path_repetitions: 3,
        paths_cpu_time: true,
        small_cpu_time: true,
        small: vec![row(224.4, 402.9), row(300.0, 250.0)],
        paths: Vec::new(),
    };
    assert_eq!(report.small[0].overhead(), None);
    assert_eq!(report.small[1].overhead(), Some(50.0));
    let text = bench::text(&report);
    assert!(text.contains("below memcpy noise"), "{text}");
    assert!(!text.contains("-178.5"), "{text}");
    assert!(text.contains(" 50.0 "), "{text}");
    let json = bench::json(&report);
    assert!(
        json.contains("\"overhead_ns\":null,\"overhead_below_memcpy_noise\":true"),
        "{json}"
    );
    assert!(
        json.contains("\"overhead_ns\":50.000000,\"overhead_below_memcpy_noise\":false"),
        "{json}"
    );
}

/// `--svg PATH` is the demo's: it parses (any OS path, like `--json`), and with probe or bench
/// it is a usage error naming the flag.
#[test]
fn svg_is_a_demo_option() {
    let o = Options::parse(["demo", "--svg", "map.svg"]).expect("parses");
    assert_eq!(o.svg, Some(std::path::PathBuf::from("map.svg")));
    let o = Options::parse(["demo", "--svg=m.svg", "--json", "r.json"]).expect("parses");
    assert_eq!(o.svg, Some(std::path::PathBuf::from("m.svg")));
    assert_eq!(o.json, Some(std::path::PathBuf::from("r.json")));
    for args in [&["probe", "--svg", "m.svg"][..], &["bench", "--svg=m.svg"]] {
        let e = Options::parse(args).expect_err("refused");
        assert!(e.0.contains("--svg"), "{args:?}: {e}");
    }
    let e = Options::parse(["demo", "--svg"]).expect_err("needs a value");
    assert!(e.0.contains("--svg needs a value"), "{e}");
    assert!(args::USAGE.contains("--svg PATH"));
}

/// `--map-json PATH` is the demo's too: it parses beside the other report paths, and with probe
/// or bench it is a usage error naming the flag.
#[test]
fn map_json_is_a_demo_option() {
    let o = Options::parse([
        "demo",
        "--map-json",
        "map.json",
        "--svg=m.svg",
        "--json",
        "r.json",
    ])
    .expect("parses");
    assert_eq!(o.map_json, Some(std::path::PathBuf::from("map.json")));
    assert_eq!(o.svg, Some(std::path::PathBuf::from("m.svg")));
    assert_eq!(o.json, Some(std::path::PathBuf::from("r.json")));
    let o = Options::parse(["demo", "--map-json=m.json"]).expect("parses");
    assert_eq!(o.map_json, Some(std::path::PathBuf::from("m.json")));
    assert_eq!(o.svg, None);
    for args in [
        &["probe", "--map-json", "m.json"][..],
        &["bench", "--map-json=m.json"],
    ] {
        let e = Options::parse(args).expect_err("refused");
        assert!(e.0.contains("--map-json"), "{args:?}: {e}");
    }
    let e = Options::parse(["demo", "--map-json"]).expect_err("needs a value");
    assert!(e.0.contains("--map-json needs a value"), "{e}");
    assert!(args::USAGE.contains("--map-json PATH"));
}

/// The demo's memory map is drawn at the end of its workload, before teardown: one rectangle
/// per live sub-allocation and one row per block and dedicated object, as the final statistics
/// count them (the buffers the producers and the frame loop still hold are live).
#[test]
fn demo_draws_the_memory_map_before_teardown() {
    let report = demo::run(
        memkit_dummy::DummyDevice::discrete(),
        memkit_std::CoordinatorConfig::default(),
        demo::DemoOptions {
            frames: 3,
            threads: 2,
            seed: 11,
            progress: false,
        },
    )
    .expect("the demo runs");
    let svg = &report.memory_map_svg;
    assert!(
        svg.starts_with("<svg ") && svg.ends_with("</svg>\n"),
        "{svg}"
    );
    let heaps = &report.stats.heaps;
    let sub_allocations: u64 = heaps.iter().map(|h| h.sub_allocations).sum();
    let blocks: u32 = heaps.iter().map(|h| h.blocks).sum();
    let dedicated: u32 = heaps.iter().map(|h| h.dedicated_objects).sum();
    // The frame buffers and each producer's held buffers, at least.
    assert!(sub_allocations >= 4, "{sub_allocations}");
    assert_eq!(
        svg.matches("<rect class=\"range\"").count() as u64,
        sub_allocations
    );
    assert_eq!(svg.matches("<rect class=\"block\"").count() as u32, blocks);
    assert_eq!(
        svg.matches("<rect class=\"dedicated\"").count() as u32,
        dedicated
    );
    // The JSON form of the same map: a block per block, a range per live sub-allocation.
    let map = json::Json::parse(&report.memory_map_json).expect("the JSON map parses");
    let json_blocks = map.get("blocks").array();
    assert_eq!(json_blocks.len() as u32, blocks);
    let ranges: usize = json_blocks
        .iter()
        .map(|b| b.get("ranges").array().len())
        .sum();
    assert_eq!(ranges as u64, sub_allocations);
    assert_eq!(map.get("dedicated").array().len() as u32, dedicated);
    assert_eq!(
        map.get("totals").get("sub_allocations").int(),
        sub_allocations
    );
}

/// The binary itself (built only with the `cli` feature).
#[cfg(feature = "cli")]
mod binary {
    use std::ffi::OsStr;
    use std::process::{Command, Output};

    fn memkit<S: AsRef<OsStr>>(args: &[S]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_memkit"))
            .args(args)
            .output()
            .expect("memkit runs")
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// A scratch directory of this test process.
    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("memkit-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_argument_is_a_usage_error_and_a_non_utf8_json_path_is_written() {
        use std::ffi::OsString;
        use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
        let out = memkit(&[OsString::from_vec(b"\xff".to_vec())]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("unknown command"));
        let out = memkit(&[
            OsString::from("demo"),
            OsString::from("--device"),
            OsString::from_vec(b"dummy:\xff".to_vec()),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("--device"));

        let dir = scratch_dir("utf8");
        let mut path = dir.as_os_str().as_bytes().to_vec();
        path.extend_from_slice(b"/\xff.json");
        let path = OsString::from_vec(path);
        let out = memkit(&[
            OsString::from("demo"),
            OsString::from("--frames"),
            OsString::from("2"),
            OsString::from("--json"),
            path.clone(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json = std::fs::read_to_string(&path).expect("the report was written");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(json.contains("\"command\":\"demo\""), "{json}");
    }

    #[test]
    fn help_before_a_command_shows_the_help() {
        for args in [
            &["--help", "demo"][..],
            &["-h", "bench"],
            &["help", "probe"],
        ] {
            let out = memkit(args);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                text(&out.stderr)
            );
            assert!(text(&out.stdout).contains("usage: memkit"), "{args:?}");
        }
    }

    /// A `--json` path that cannot be written fails before the run (exit 1, the code of an I/O
    /// error), not after it: nothing is printed but the error.
    #[test]
    fn an_unwritable_json_path_fails_before_the_run() {
        let dir = scratch_dir("json");
        let missing = dir.join("no-such-dir").join("report.json");
        let missing = missing.to_str().expect("a UTF-8 temp dir");
        let dir_str = dir.to_str().expect("a UTF-8 temp dir");
        for args in [
            vec!["demo", "--frames", "2000", "--json", missing],
            vec!["demo", "--frames", "2000", "--json="],
            vec!["bench", "--json", dir_str],
            vec!["probe", "--json", missing],
        ] {
            let out = memkit(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            assert!(
                out.stdout.is_empty(),
                "{args:?} ran first:\n{}",
                text(&out.stdout)
            );
            assert!(text(&out.stderr).contains("writing"), "{args:?}");
        }
        // An existing report is replaced whole (not left with the tail of a longer one).
        let path = dir.join("report.json");
        std::fs::write(&path, "x".repeat(1 << 20)).unwrap();
        let out = memkit(&["probe", "--json", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(json.starts_with('{') && json.ends_with("}\n"), "{json}");
    }

    /// `demo --svg PATH` writes the memory map; a path that cannot be written fails before the
    /// run (exit 1, nothing printed but the error) and leaves no `--json` report behind.
    #[test]
    fn demo_writes_the_memory_map_as_svg() {
        let dir = scratch_dir("svg");
        let path = dir.join("map.svg");
        let path_str = path.to_str().expect("a UTF-8 temp dir");
        let out = memkit(&["demo", "--frames", "2", "--threads", "1", "--svg", path_str]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let svg = std::fs::read_to_string(&path).expect("the map was written");
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>\n"), "{svg}");
        assert!(svg.contains("<rect class=\"range\""), "{svg}");
        assert!(svg.contains("<rect class=\"block\""), "{svg}");

        let missing = dir.join("no-such-dir").join("map.svg");
        let json = dir.join("report.json");
        let args = [("--json", &json), ("--svg", &missing)];
        fails_before_the_run_and_leaves_nothing(&dir, &args, "map.svg");
    }

    /// A long demo whose last report file (`args`' last path) cannot be written: it fails at
    /// once (exit 1, nothing printed but the error, which names `last_name`), and the report
    /// files opened before it are removed. Removes `dir` afterwards.
    fn fails_before_the_run_and_leaves_nothing(
        dir: &std::path::Path,
        args: &[(&str, &std::path::PathBuf)],
        last_name: &str,
    ) {
        let mut argv = vec!["demo", "--frames", "2000"];
        for (flag, path) in args {
            argv.extend([*flag, path.to_str().unwrap()]);
        }
        let out = memkit(&argv);
        let left: Vec<_> = args.iter().filter(|(_, path)| path.exists()).collect();
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "ran first:\n{}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("writing") && text(&out.stderr).contains(last_name),
            "{}",
            text(&out.stderr)
        );
        assert!(
            left.is_empty(),
            "files opened first were left behind: {left:?}"
        );
    }

    /// `demo --map-json PATH` writes the memory map as JSON (blocks with their live ranges); a
    /// path that cannot be written fails before the run (exit 1, nothing printed but the error)
    /// and leaves none of the report files opened before it behind.
    #[test]
    fn demo_writes_the_memory_map_as_json() {
        let dir = scratch_dir("map-json");
        let path = dir.join("map.json");
        let path_str = path.to_str().expect("a UTF-8 temp dir");
        let out = memkit(&[
            "demo",
            "--frames",
            "2",
            "--threads",
            "1",
            "--map-json",
            path_str,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let written = std::fs::read_to_string(&path).expect("the map was written");
        let map = crate::json::Json::parse(&written).expect("the written map parses");
        assert_eq!(map.get("format").str(), "memkit-memory-map");
        let blocks = map.get("blocks").array();
        let ranges: usize = blocks.iter().map(|b| b.get("ranges").array().len()).sum();
        assert!(!blocks.is_empty() && ranges > 0, "{written}");
        assert_eq!(
            map.get("totals").get("sub_allocations").int(),
            ranges as u64
        );

        let missing = dir.join("no-such-dir").join("map.json");
        let json = dir.join("report.json");
        let svg = dir.join("map.svg");
        let args = [("--json", &json), ("--svg", &svg), ("--map-json", &missing)];
        fails_before_the_run_and_leaves_nothing(&dir, &args, "map.json");
    }
}
