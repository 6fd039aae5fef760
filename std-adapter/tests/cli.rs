//! The `memkit` command. Its demo, probe and argument parsing are compiled into this test from
//! the binary's own source files, so `cargo test --workspace` (which does not build the binary:
//! it needs the `cli` feature) checks them on the simulated device; with `--features cli` the
//! binary itself runs too.
// The binary's modules are shared with it; not everything they offer is used here.
#![allow(dead_code)]

#[path = "../src/bin/memkit/application.rs"]
mod application;
#[path = "../src/bin/memkit/args.rs"]
mod args;
#[path = "../src/bin/memkit/backend.rs"]
mod backend;
#[path = "../src/bin/memkit/demo.rs"]
mod demo;
#[path = "../src/bin/memkit/probe.rs"]
mod probe;
#[path = "../src/bin/memkit/render_targets.rs"]
mod render_targets;
#[path = "../src/bin/memkit/report.rs"]
mod report;
#[path = "../src/bin/memkit/rng.rs"]
mod rng;

use memkit_dummy::{DummyDevice, Preset};
use memkit_std::CoordinatorConfig;

use crate::args::{Command, DeviceChoice, Options};
use crate::backend::Backend;
use crate::demo::{DemoOptions, DemoReport};

fn demo_on(device: DummyDevice, frames: u64, threads: usize) -> DemoReport {
    demo::run(
        device,
        CoordinatorConfig::default(),
        DemoOptions {
            frames,
            threads,
            seed: 7,
            progress: false,
        },
    )
    .expect("the demo runs")
}

#[test]
fn demo_verifies_every_sampled_buffer_and_reports_every_path() {
    let device = DummyDevice::discrete();
    let report = demo_on(device.clone(), 20, 3);
    let v = &report.verification;
    assert!(v.passed(), "{}", report::demo_text(&report));
    // The frame buffers at least, and some sampled producer buffers and textures.
    assert!(v.checked_buffers >= 3, "{v:?}");
    assert!(v.checked_images >= 1, "{v:?}");
    assert!(v.checked_bytes > 64 << 10, "{v:?}");
    let s = &report.stats;
    // Textures were created with their texels, and some got boxes re-uploaded.
    assert!(s.images_created > 0, "{s:?}");
    assert!(s.image_uploads > s.images_created, "{s:?}");
    assert_eq!(s.frames, 20);
    assert!(
        s.staged_uploads >= 40,
        "two staged uploads per frame: {s:?}"
    );
    assert!(s.direct_writes > 0, "discrete has a BAR window: {s:?}");
    assert!(
        s.submissions >= 20 && s.copy_commands >= s.submissions,
        "{s:?}"
    );
    assert!(s.buffers_destroyed > 0, "producers drop buffers: {s:?}");
    // The drops left a block the pass could empty; the moved buffers were read back equal.
    assert!(
        s.buffers_moved > 0 && s.blocks_released_by_defragmentation > 0,
        "{s:?}"
    );
    assert_eq!(s.uploads_submitted, s.staged_uploads);
    assert_eq!(
        report.uploads(),
        s.staged_uploads + s.direct_writes + s.dedicated_staging_uploads
    );
    // The device agrees: it executed what was submitted, and nothing is left after teardown.
    let counters = device.counters();
    assert_eq!(counters.executed_submissions, s.submitted_value);
    assert!(device.leak_report().is_empty(), "{}", device.leak_report());
    assert!(device.misuses().is_empty());

    let text = report::demo_text(&report);
    for needle in [
        "MB/s",
        "uploads/s",
        "merge ratio",
        "producers wrote into the first",
        "textures (every level)",
        "box re-uploads",
        "in flight at most",
        "early wraps back to the start",
        "skipped at wraps where a grant did not fit",
        "stalls",
        "heap 0:",
        "slack",
        "waited for the GPU",
        "defragmentation:",
        "PASSED",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    let json = report::demo_json(&report);
    for needle in [
        "\"passed\":true",
        "\"bytes_verified\":true",
        "\"megabytes_per_second\":",
        "\"merge_ratio\":",
        "\"coordinator\":{",
        "\"regions_before_merge\":",
        "\"ring\":{\"capacity\":",
        "\"high_water_mark\":",
        "\"bytes_reached\":",
        "\"early_wraps\":",
        "\"early_wrap_bytes\":",
        "\"heaps\":[{\"heap\":0",
        "\"block_slack\":",
        "\"buffers_moved\":",
        "\"blocks_released_by_defragmentation\":",
    ] {
        assert!(json.contains(needle), "{needle:?} missing from {json}");
    }
}

#[test]
fn demo_passes_on_every_preset() {
    for preset in Preset::ALL {
        let report = demo_on(DummyDevice::with_preset(preset), 6, 2);
        assert!(
            report.verification.passed(),
            "{preset}: {}",
            report::demo_text(&report)
        );
        assert!(report.verification.checked_buffers >= 2, "{preset}");
    }
}

/// Mobile has the smallest staging ring, so the frame loop often waits for room held by copies
/// that wait for the application's next frame: that frame must finish on its own queue, not when
/// the frame loop gets on (which once hung the demo), and the copies that landed while it read
/// must be none (which once were not: a frame's ticket named a submission before its copies).
#[test]
fn the_mobile_demo_finishes_with_its_frames_waiting_on_the_application_queue() {
    let (done, finished) = std::sync::mpsc::channel();
    // On a thread of its own, so that a hang fails the test instead of stalling the suite.
    std::thread::spawn(move || {
        let options = DemoOptions {
            frames: 60,
            threads: 4,
            seed: 1,
            progress: false,
        };
        let _ = done.send(demo::run(
            DummyDevice::mobile(),
            CoordinatorConfig::default(),
            options,
        ));
    });
    let report = finished
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("the demo hung")
        .expect("the demo runs");
    assert!(
        report.verification.passed(),
        "{}",
        report::demo_text(&report)
    );
    assert_eq!(report.stats.frames, 60);
    assert_eq!(report.stats.transient_slices, 60 * 256);
}

/// The verification can fail: a differing byte, a short read, a misuse or a leak each fail it,
/// and the report says so.
#[test]
fn verification_fails_on_a_differing_byte_misuse_or_leak() {
    assert_eq!(demo::first_difference(&[1, 2, 3], &[1, 2, 3]), None);
    assert_eq!(demo::first_difference(&[1, 2, 3], &[1, 9, 3]), Some(1));
    assert_eq!(demo::first_difference(&[1, 2], &[1, 2, 3]), Some(2));
    let report = demo_on(DummyDevice::discrete(), 3, 0);
    assert!(report.verification.passed());
    for broken in [
        demo::Verification {
            mismatches: vec!["buffer 3 differs".into()],
            ..report.verification.clone()
        },
        demo::Verification {
            problems: vec!["host write into a range a pending copy reads".into()],
            ..report.verification.clone()
        },
        demo::Verification {
            leaks: vec!["memory object leaked".into()],
            ..report.verification.clone()
        },
    ] {
        let bad = DemoReport {
            verification: broken,
            ..report.clone()
        };
        assert!(!bad.verification.passed());
        assert!(report::demo_text(&bad).contains("VERIFICATION FAILED"));
        assert!(report::demo_json(&bad).contains("\"passed\":false"));
    }
}

#[test]
fn probe_lists_types_heaps_budgets_and_limits() {
    for preset in Preset::ALL {
        let device = DummyDevice::with_preset(preset);
        let text = probe::text(&device.describe(), &device);
        let types = device.config().memory_types.len();
        assert!(text.contains(&format!("type {}:", types - 1)), "{text}");
        assert!(!text.contains(&format!("type {types}:")), "{text}");
        for needle in [
            "memory heaps",
            "heap 0:",
            "nonCoherentAtomSize",
            "HOST_VISIBLE",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        let json = probe::json(&device.describe(), &device);
        assert_eq!(json.matches("\"type\":").count(), types, "{preset}: {json}");
        assert!(json.contains("\"non_coherent_atom_size\":"), "{json}");
    }
    let device = DummyDevice::discrete();
    let text = probe::text("d", &device);
    assert!(text.contains("type 3: heap 2, DEVICE_LOCAL | HOST_VISIBLE | HOST_COHERENT"));
    assert!(text.contains("budget 8.0 GiB"), "{text}");
}

#[test]
fn arguments_parse_and_bad_ones_are_refused() {
    let o = Options::parse([
        "demo",
        "--device",
        "dummy:mobile",
        "--frames=20",
        "--threads",
        "2",
        "--json",
        "out.json",
    ])
    .unwrap();
    assert_eq!(o.command, Command::Demo);
    assert_eq!(o.device, DeviceChoice::Dummy(Preset::Mobile));
    assert_eq!((o.frames, o.threads), (20, 2));
    assert_eq!(o.json.as_deref(), Some(std::path::Path::new("out.json")));
    let o = Options::parse(["bench", "--device", "vulkan", "--quick"]).unwrap();
    assert_eq!(
        (o.command, o.device, o.quick),
        (Command::Bench, DeviceChoice::Vulkan, true)
    );
    assert_eq!(
        Options::parse::<[&str; 0], &str>([]).unwrap().command,
        Command::Help
    );
    for bad in [
        &["demo", "--frames", "0"][..],
        // Counts that would overflow the demo's job arithmetic or spawn absurd thread counts.
        &["demo", "--frames", "10000000000000000000"],
        &["demo", "--frames", "1000000001"],
        &["demo", "--threads", "257"],
        &["demo", "--threads", "100000"],
        &["demo", "--frames", "x"],
        &["demo", "--frames"],
        &["demo", "--device", "dummy:gpu"],
        &["demo", "--device", "metal"],
        &["demo", "--quick=yes"],
        &["demo", "--what"],
        &["explode"],
        &["demo", "probe"],
    ] {
        let e = Options::parse(bad.iter().copied()).unwrap_err();
        assert!(!e.0.is_empty(), "{bad:?}");
    }
    let limits = Options::parse(["demo", "--frames", "1000000000", "--threads", "256"]).unwrap();
    assert_eq!((limits.frames, limits.threads), (1_000_000_000, 256));
}

/// The binary itself (built only with the `cli` feature).
#[cfg(feature = "cli")]
mod binary {
    use std::process::Command;

    fn memkit(args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_memkit"))
            .args(args)
            .output()
            .expect("memkit runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn demo_runs_verifies_and_writes_json() {
        let json = std::env::temp_dir().join(format!("memkit-cli-{}.json", std::process::id()));
        let (ok, out, err) = memkit(&["demo", "--frames", "20", "--json", json.to_str().unwrap()]);
        assert!(ok, "{out}\n{err}");
        assert!(out.contains("PASSED"), "{out}");
        assert!(out.contains("20 frames ended"), "{out}");
        let text = std::fs::read_to_string(&json).unwrap();
        let _ = std::fs::remove_file(&json);
        for needle in [
            "\"command\":\"demo\"",
            "\"passed\":true",
            "\"frames\":20",
            "\"coordinator\":{",
            "\"ring\":{",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from {text}");
        }
    }

    #[test]
    fn probe_and_help_run_and_bad_arguments_fail() {
        let (ok, out, err) = memkit(&["probe", "--device", "dummy:rebar"]);
        assert!(ok, "{err}");
        assert!(
            out.contains("memory types") && out.contains("limits"),
            "{out}"
        );
        let (ok, out, _) = memkit(&["help"]);
        assert!(ok && out.contains("usage: memkit"));
        let (ok, _, err) = memkit(&["demo", "--device", "dummy:nope"]);
        assert!(!ok && err.contains("unknown preset"), "{err}");
    }
}
