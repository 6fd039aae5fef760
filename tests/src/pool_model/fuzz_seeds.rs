//! Seed inputs for the `pools` fuzz target, committed in `fuzz/seeds/pools/` (one file per seed,
//! [`PoolWorkload::encode`]d) and given to CI's 20-second smoke run, which otherwise starts from
//! nothing and in that time only grows inputs of a few ops. Each seed is a long workload (about
//! 60 ops) of one of four shapes, each shape on every preset, so mutations start from the states
//! that matter: blocks filling up and new blocks, budget and heap refusals, dedicated objects,
//! frees that empty blocks, trims that release them, replayed frees of stale handles.
//! `tests/tests/pool_fuzz_seeds.rs` checks that the committed files are these seeds, that they
//! pass the model, and that together they reach those states ([`WorkloadDepth`]).

use memkit_dummy::Preset;

use super::{Buddy, PoolOp, PoolWorkload, Tlsf, USAGES, code_of_size, run_observed, size_of_code};
use crate::workloads::SplitMix64;

/// Which states one workload reached, as the model saw them after each op.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadDepth {
    /// Ops run.
    pub ops: usize,
    /// The most blocks the pools held at once.
    pub max_blocks: u32,
    /// The most live allocations at once.
    pub max_live: usize,
    /// Allocations refused (by a budget, a full heap or exhausted slots).
    pub refusals: u32,
    /// The most dedicated objects at once.
    pub max_dedicated: u32,
    /// Frees after which more blocks were empty than before.
    pub blocks_emptied: u32,
    /// Blocks released by trims.
    pub blocks_trimmed: u32,
    /// Replayed frees of a freed handle (refused, as the model checks).
    pub replayed_frees: u32,
    /// Blocks defragmentation passes emptied and released.
    pub blocks_defragmented: u32,
}

impl WorkloadDepth {
    /// Runs `w` through the model (its checks included) and tallies the states it reached.
    pub fn of(w: &PoolWorkload) -> Result<Self, String> {
        let mut depth = Self::default();
        if w.tlsf {
            run_observed::<Tlsf>(w.preset, w.within_budget, &w.ops, |op, before, model| {
                depth.record(
                    op,
                    before,
                    model.stats(),
                    model.live_count(),
                    model.freed_count(),
                );
                depth.blocks_defragmented = model.blocks_defragmented();
            })?;
        } else {
            run_observed::<Buddy>(w.preset, w.within_budget, &w.ops, |op, before, model| {
                depth.record(
                    op,
                    before,
                    model.stats(),
                    model.live_count(),
                    model.freed_count(),
                );
                depth.blocks_defragmented = model.blocks_defragmented();
            })?;
        }
        Ok(depth)
    }

    fn record(
        &mut self,
        op: PoolOp,
        before: memkit_core::pool::PoolStats,
        after: memkit_core::pool::PoolStats,
        live: usize,
        freed: usize,
    ) {
        self.ops += 1;
        self.max_blocks = self.max_blocks.max(after.blocks);
        self.max_live = self.max_live.max(live);
        self.max_dedicated = self.max_dedicated.max(after.dedicated_objects);
        match op {
            PoolOp::Allocate { .. } if after.live_allocations() == before.live_allocations() => {
                self.refusals += 1;
            }
            PoolOp::Free { .. } if after.empty_blocks > before.empty_blocks => {
                self.blocks_emptied += 1;
            }
            PoolOp::Trim => self.blocks_trimmed += before.empty_blocks,
            PoolOp::ReplayFree { .. } if freed > 0 => self.replayed_frees += 1,
            _ => {}
        }
    }

    /// The most of each figure over `self` and `other` (the sum for counts).
    pub fn merge(self, other: Self) -> Self {
        Self {
            ops: self.ops + other.ops,
            max_blocks: self.max_blocks.max(other.max_blocks),
            max_live: self.max_live.max(other.max_live),
            refusals: self.refusals + other.refusals,
            max_dedicated: self.max_dedicated.max(other.max_dedicated),
            blocks_emptied: self.blocks_emptied + other.blocks_emptied,
            blocks_trimmed: self.blocks_trimmed + other.blocks_trimmed,
            replayed_frees: self.replayed_frees + other.replayed_frees,
            blocks_defragmented: self.blocks_defragmented + other.blocks_defragmented,
        }
    }
}

/// The shapes of seed workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedShape {
    /// Fill blocks with 4 KiB-16 MiB allocations, then free them all (blocks empty), trimming
    /// halfway and at the end, replay frees, and allocate again.
    FillAndDrain,
    /// Within budget: 16-160 MiB allocations, one free in four, budget refreshes and trims, so
    /// the tight budget refuses some.
    BudgetPressure,
    /// Dedicated objects (asked for, and required from 144 MiB) among block allocations, freed
    /// and their handles replayed.
    DedicatedAndStale,
    /// Blocks filled with 512 B-16 MiB allocations, two in three freed at random (blocks left
    /// sparse), then defragmentation passes, unlimited and limited, between more allocations
    /// and frees.
    Defragment,
    /// The proptest strategy's mix (what the compact encoding decodes random bytes to).
    Mixed,
}

impl SeedShape {
    /// Every shape.
    pub const ALL: [SeedShape; 5] = [
        Self::FillAndDrain,
        Self::BudgetPressure,
        Self::DedicatedAndStale,
        Self::Defragment,
        Self::Mixed,
    ];

    /// The file-name stem.
    pub fn name(self) -> &'static str {
        match self {
            Self::FillAndDrain => "fill_and_drain",
            Self::BudgetPressure => "budget_pressure",
            Self::DedicatedAndStale => "dedicated_and_stale",
            Self::Defragment => "defragment",
            Self::Mixed => "mixed",
        }
    }
}

/// Ops in a seed (about; the fuzzer grows them up to [`super::MAX_OPS`]): enough to reach every
/// state the shape is for, few enough that a smoke run executes its mutations some hundreds of
/// times (an op costs milliseconds under the sanitizer, mostly the dummy's host memory).
pub const SEED_OPS: usize = 60;

/// An allocation of a size drawn from the size codes whose top nibble is in `classes` (see
/// [`size_of_code`]), of a random usage and kind, dedicated one time in `dedicated_one_in`.
fn allocate(rng: &mut SplitMix64, classes: (u16, u16), dedicated_one_in: u64) -> PoolOp {
    let top = rng.range_inclusive(u64::from(classes.0), u64::from(classes.1)) as u16;
    let code = (top << 12) | rng.below(1 << 12) as u16;
    PoolOp::Allocate {
        size: size_of_code(code),
        usage: rng.below(USAGES.len() as u64) as usize,
        optimal: rng.below(2) == 1,
        dedicated: rng.below(dedicated_one_in) == 0,
    }
}

fn free(rng: &mut SplitMix64) -> PoolOp {
    PoolOp::Free {
        index: rng.below(256) as usize,
    }
}

fn replay(rng: &mut SplitMix64) -> PoolOp {
    PoolOp::ReplayFree {
        index: rng.below(256) as usize,
    }
}

/// The ops of one seed of `shape`.
pub fn seed_ops(shape: SeedShape, rng: &mut SplitMix64) -> Vec<PoolOp> {
    let mut ops = Vec::new();
    match shape {
        SeedShape::FillAndDrain => {
            for i in 0..26 {
                ops.push(allocate(rng, (6, 13), 20));
                if i % 13 == 12 {
                    ops.push(free(rng));
                }
            }
            // 24 live: free them all, trimming halfway and at the end.
            for i in 0..24 {
                ops.push(free(rng));
                if i == 11 {
                    ops.push(PoolOp::Trim);
                }
            }
            ops.push(PoolOp::Trim);
            ops.extend((0..2).map(|_| replay(rng)));
            ops.push(PoolOp::RefreshBudget);
            ops.extend((0..4).map(|_| allocate(rng, (0, 13), 20)));
        }
        SeedShape::BudgetPressure => {
            for i in 0..SEED_OPS {
                ops.push(match i % 10 {
                    3 | 7 => free(rng),
                    5 => PoolOp::RefreshBudget,
                    9 if i % 20 == 19 => PoolOp::Trim,
                    9 => replay(rng),
                    _ => allocate(rng, (11, 15), 20),
                });
            }
        }
        SeedShape::DedicatedAndStale => {
            for i in 0..SEED_OPS {
                ops.push(match i % 8 {
                    0 | 4 => allocate(rng, (0, 15), 3),
                    1 => PoolOp::Allocate {
                        size: size_of_code(code_of_size((144 << 20) + rng.below(16 << 20))),
                        usage: rng.below(USAGES.len() as u64) as usize,
                        optimal: rng.below(2) == 1,
                        dedicated: false,
                    },
                    2 | 5 => free(rng),
                    3 => replay(rng),
                    6 if i % 16 == 14 => PoolOp::Trim,
                    _ => allocate(rng, (6, 10), 20),
                });
            }
        }
        SeedShape::Defragment => {
            ops.extend((0..30).map(|_| allocate(rng, (6, 13), 40)));
            ops.extend((0..20).map(|_| free(rng)));
            ops.push(PoolOp::Defragment { max_allocations: 0 });
            for _ in 0..2 {
                ops.extend((0..3).map(|_| allocate(rng, (6, 10), 40)));
                ops.extend((0..3).map(|_| free(rng)));
                ops.push(PoolOp::Defragment {
                    max_allocations: 1 + rng.below(4) as u8,
                });
            }
        }
        SeedShape::Mixed => {
            let w = PoolWorkload::decode(&rng.bytes(1000));
            ops = w.ops;
            ops.truncate(SEED_OPS);
        }
    }
    ops
}

/// The seeds: each shape on every preset, TLSF and buddy blocks alternating, within-budget mode
/// for budget pressure and on every other preset for the rest. Named `<shape>_<preset>`.
pub fn fuzz_seeds() -> Vec<(String, PoolWorkload)> {
    let mut seeds = Vec::new();
    for (s, shape) in SeedShape::ALL.into_iter().enumerate() {
        for (p, preset) in Preset::ALL.into_iter().enumerate() {
            let mut rng = SplitMix64::new((s * 16 + p) as u64 + 1);
            let w = PoolWorkload {
                preset,
                tlsf: (s + p) % 2 == 0,
                within_budget: shape == SeedShape::BudgetPressure || p % 2 == 0,
                ops: seed_ops(shape, &mut rng),
            };
            seeds.push((format!("{}_{}", shape.name(), preset.name()), w));
        }
    }
    seeds
}
