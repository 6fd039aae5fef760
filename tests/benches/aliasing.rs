//! What `plan_aliasing` costs and saves on frame graphs of the sizes engines have: `n`
//! transient render targets over `n / 2` passes, each in use for 1 to 4 passes, sized from a
//! 1080p colour target down to 1/64 of it, at 64 KiB alignment. Prints, per size, the median
//! time of one plan over many seeded graphs and the median share of memory aliasing leaves
//! (plan size / sum of sizes), with the lower bound no plan can beat (the busiest pass's bytes
//! / sum of sizes), and the worst plan against its own graph's bound.
//!
//! `cargo bench -p memkit-tests --bench aliasing`

use std::hint::black_box;
use std::time::Instant;

use memkit_core::ResourceKind;
use memkit_core::aliasing::{AliasedResource, plan_aliasing};

/// SplitMix64: seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn graph(n: usize, seed: u64) -> Vec<AliasedResource> {
    let mut rng = Rng(seed);
    let passes = (n as u64 / 2).max(2);
    let full: u64 = 1920 * 1080 * 8;
    (0..n)
        .map(|_| {
            let first_use = rng.below(passes) as u32;
            let size = (full >> (2 * rng.below(4))).next_multiple_of(65536);
            AliasedResource {
                size,
                alignment: 65536,
                kind: ResourceKind::Optimal,
                first_use,
                last_use: first_use + rng.below(4) as u32,
            }
        })
        .collect()
}

fn busiest(resources: &[AliasedResource]) -> u64 {
    let last = resources.iter().map(|r| r.last_use).max().unwrap_or(0);
    (0..=last)
        .map(|step| {
            resources
                .iter()
                .filter(|r| r.first_use <= step && step <= r.last_use)
                .map(|r| r.size)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let graphs = 201;
    println!("plan_aliasing over {graphs} seeded frame graphs per size (medians)");
    println!(
        "| targets | time per plan | memory left (plan / sum) | lower bound (busiest pass / sum) \
         | worst plan / lower bound |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for n in [16, 64, 256, 1024] {
        let mut times = Vec::new();
        let mut left = Vec::new();
        let mut bound = Vec::new();
        let mut worst: f64 = 1.0;
        for seed in 0..graphs {
            let resources = graph(n, seed);
            let mut scratch = vec![0; 2 * n];
            let mut offsets = vec![0; n];
            // Enough repetitions for the clock, fewer for the larger graphs.
            let reps = (4096 / n).max(1);
            let start = Instant::now();
            let mut plan = None;
            for _ in 0..reps {
                plan = Some(
                    plan_aliasing(black_box(&resources), 1024, &mut scratch, &mut offsets)
                        .expect("a valid graph"),
                );
            }
            times.push(start.elapsed().as_secs_f64() / reps as f64);
            let sum: u64 = resources.iter().map(|r| r.size).sum();
            let size = plan.expect("planned").size;
            let floor = busiest(&resources);
            left.push(size as f64 / sum as f64);
            bound.push(floor as f64 / sum as f64);
            worst = worst.max(size as f64 / floor as f64);
        }
        println!(
            "| {n} | {:.1} us | {:.3} | {:.3} | {:.3} |",
            median(times) * 1e6,
            median(left),
            median(bound),
            worst
        );
    }
}
