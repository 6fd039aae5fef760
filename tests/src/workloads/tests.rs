use super::*;

/// Checks a trace is well formed: every id allocated once, freed once after its allocation,
/// nothing live at the end; returns the summary.
fn check_well_formed(trace: &Trace) -> TraceSummary {
    let mut state = std::vec![0u8; trace.ids as usize]; // 0 unused, 1 live, 2 freed
    for op in &trace.ops {
        match *op {
            TraceOp::Alloc { id, size, align } => {
                assert_eq!(state[id as usize], 0, "id {id} allocated twice");
                assert!(size > 0, "zero-size request");
                assert!(
                    align.is_power_of_two() && align >= 16,
                    "bad alignment {align}"
                );
                state[id as usize] = 1;
            }
            TraceOp::Free { id } => {
                assert_eq!(state[id as usize], 1, "id {id} freed while not live");
                state[id as usize] = 2;
            }
        }
    }
    assert!(
        state.iter().all(|&s| s == 2),
        "trace leaves allocations live"
    );
    trace.summary()
}

#[test]
fn same_seed_gives_same_trace_and_other_seeds_differ() {
    let config = GameFrameConfig {
        frames: 50,
        ..GameFrameConfig::default()
    };
    assert_eq!(game_frame(7, &config).ops, game_frame(7, &config).ops);
    assert_ne!(game_frame(7, &config).ops, game_frame(8, &config).ops);
}

#[test]
fn game_frame_is_well_formed_and_sized_as_documented() {
    let config = GameFrameConfig {
        frames: 400,
        ..GameFrameConfig::default()
    };
    let trace = game_frame(1, &config);
    let summary = check_well_formed(&trace);
    assert_eq!(summary.allocations, 400 * 50);
    assert_eq!(summary.allocations, summary.frees);
    let mut huge = 0;
    for op in &trace.ops {
        if let TraceOp::Alloc { size, align, .. } = *op {
            assert!((256..=64 << 20).contains(&size), "size {size}");
            assert!(
                align <= 64 << 10 && (align <= size || align == 16),
                "align {align}"
            );
            if size >= 16 << 20 {
                huge += 1;
            }
        }
    }
    // 20 000 draws at 0.1%: about 20 huge ones, certainly some and not hundreds.
    assert!((3..100).contains(&huge), "{huge} huge allocations");
    assert!(summary.peak_live_bytes < config.capacity);
}

#[test]
fn game_frame_full_length_stays_inside_the_arena() {
    let trace = game_frame(1, &GameFrameConfig::default());
    let summary = check_well_formed(&trace);
    // Busy but not over: a perfect allocator must be able to serve every request.
    assert!(summary.peak_live_bytes > (1 << 30) / 4, "{summary:?}");
    assert!(summary.peak_live_bytes < (1 << 30) * 9 / 10, "{summary:?}");
}

#[test]
fn churn_holds_the_configured_live_count() {
    let config = ChurnConfig {
        live: 1_000,
        steps: 5_000,
        ..ChurnConfig::default()
    };
    let trace = small_object_churn(3, &config);
    let summary = check_well_formed(&trace);
    assert_eq!(summary.peak_live_count, 1_000);
    assert_eq!(summary.allocations, 6_000);
    for op in &trace.ops {
        if let TraceOp::Alloc { size, align, .. } = *op {
            assert!((64..=64 << 10).contains(&size), "size {size}");
            assert!(align <= 256 && align <= size, "align {align}");
        }
    }
}

#[test]
fn probe_fills_exactly_its_share_and_frees_half() {
    let config = ProbeConfig::default();
    let probe = fragmentation_probe(5, &config);
    let filled: u64 = probe.fill.iter().map(|&(size, _)| size).sum();
    assert_eq!(filled, (config.capacity as f64 * 0.9) as u64);
    assert_eq!(probe.free.len(), probe.fill.len() / 2);
    let mut seen = std::vec![false; probe.fill.len()];
    for &id in &probe.free {
        assert!(
            !std::mem::replace(&mut seen[id as usize], true),
            "id {id} freed twice"
        );
    }
    let covered: u64 = probe.probe.iter().map(|&(size, _)| size).sum();
    assert!(covered >= config.capacity);
    assert!(
        probe
            .probe
            .iter()
            .all(|&(size, align)| (256 << 10..=4 << 20).contains(&size) && align <= 64 << 10)
    );
}

#[test]
fn log_uniform_spreads_over_decades() {
    let mut rng = SplitMix64::new(11);
    let mut per_decade = [0u32; 4]; // [1e2,1e3) .. [1e5,1e6)
    for _ in 0..40_000 {
        let v = rng.log_uniform(100, 999_999);
        per_decade[(v.ilog10() - 2) as usize] += 1;
    }
    for count in per_decade {
        assert!((9_000..11_000).contains(&count), "{per_decade:?}");
    }
}

#[test]
fn alignment_never_exceeds_the_size_floor() {
    let mut rng = SplitMix64::new(2);
    for _ in 0..10_000 {
        let size = rng.range_inclusive(1, 1 << 20);
        let align = rng.alignment_for(size, 16, 64 << 10);
        assert!(align.is_power_of_two() && (16..=64 << 10).contains(&align));
        assert!(align <= size.max(16), "size {size} align {align}");
    }
}
