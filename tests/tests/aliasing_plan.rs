//! `plan_aliasing` against what a plan must be, checked by brute force on random frame graphs
//! of images and buffers: every offset aligned, no two resources in use at a common step sharing
//! a byte, a buffer and an image in use together sharing no page of the granularity, the range
//! at least the most bytes in use at one step and at most everything laid end to end, the same
//! input giving the same plan, and bad input refused with the resource it names.

use memkit_core::ResourceKind;
use memkit_core::aliasing::{AliasedResource, AliasingError, plan_aliasing};
use proptest::prelude::*;

fn resource() -> impl Strategy<Value = AliasedResource> {
    // Render-target-like sizes, alignments from 1 B to 64 KiB, spans over 12 passes; one in
    // four a buffer.
    (1u64..1 << 22, 0u32..17, 0u32..12, 0u32..6, 0u8..4).prop_map(
        |(size, align_log2, first, len, kind)| AliasedResource {
            size,
            alignment: 1 << align_log2,
            kind: if kind == 0 {
                ResourceKind::Linear
            } else {
                ResourceKind::Optimal
            },
            first_use: first,
            last_use: first + len,
        },
    )
}

/// A `bufferImageGranularity` as devices report them: 1 B to 64 KiB.
fn granularity() -> impl Strategy<Value = u64> {
    (0u32..17).prop_map(|log2| 1 << log2)
}

fn plan(
    resources: &[AliasedResource],
    granularity: u64,
) -> Result<(u64, u64, Vec<u64>), AliasingError> {
    let mut scratch = vec![0; 2 * resources.len()];
    let mut offsets = vec![0; resources.len()];
    let plan = plan_aliasing(resources, granularity, &mut scratch, &mut offsets)?;
    Ok((plan.size, plan.alignment, offsets))
}

fn align_up(value: u64, alignment: u64) -> u64 {
    value.div_ceil(alignment) * alignment
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 512 }))]

    #[test]
    fn a_plan_keeps_resources_in_use_together_apart(
        resources in prop::collection::vec(resource(), 1..40),
        granularity in granularity(),
    ) {
        let (size, alignment, offsets) = plan(&resources, granularity).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mixed = resources.iter().any(|r| r.kind != resources[0].kind);
        // Pages matter only where the kinds mix.
        let page = if mixed { granularity } else { 1 };
        let most_alignment = resources.iter().map(|r| r.alignment).max().unwrap();
        prop_assert_eq!(alignment, most_alignment.max(page));
        for (i, (r, &offset)) in resources.iter().zip(&offsets).enumerate() {
            prop_assert_eq!(offset % r.alignment, 0, "resource {} misaligned", i);
            prop_assert!(offset + r.size <= size, "resource {} past the range", i);
        }
        prop_assert_eq!(
            resources.iter().zip(&offsets).map(|(r, o)| align_up(o + r.size, page)).max(),
            Some(size),
            "the range ends where its last resource does, on a page boundary when the kinds mix"
        );
        for i in 0..resources.len() {
            for j in i + 1..resources.len() {
                let (a, b) = (&resources[i], &resources[j]);
                if a.in_use_together(b) {
                    let disjoint = offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i];
                    prop_assert!(disjoint, "resources {} and {} share bytes while both in use", i, j);
                    if a.kind != b.kind {
                        let pages = |offset: u64, size: u64| (offset / granularity, (offset + size - 1) / granularity);
                        let (a_first, a_last) = pages(offsets[i], a.size);
                        let (b_first, b_last) = pages(offsets[j], b.size);
                        prop_assert!(
                            a_last < b_first || b_last < a_first,
                            "buffer and image {} and {} share a page while both in use", i, j
                        );
                    }
                }
            }
        }
        // Never below the bytes in use at the busiest step...
        let last_step = resources.iter().map(|r| r.last_use).max().unwrap();
        let busiest = (0..=last_step)
            .map(|step| {
                resources
                    .iter()
                    .filter(|r| r.first_use <= step && step <= r.last_use)
                    .map(|r| r.size)
                    .sum::<u64>()
            })
            .max()
            .unwrap();
        prop_assert!(size >= busiest);
        // ...and never above the same resources laid end to end, aligned (each on a page of its
        // own when the kinds mix), in the order the plan places them (largest first, ties to the
        // earlier first use, then the position): what no aliasing takes.
        let mut order: Vec<usize> = (0..resources.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(resources[i].size), resources[i].first_use, i));
        let end_to_end = order
            .iter()
            .map(|&i| &resources[i])
            .fold(0, |end, r| align_up(end, r.alignment.max(page)) + r.size);
        let end_to_end = align_up(end_to_end, page);
        prop_assert!(size <= end_to_end, "{} above {} end to end", size, end_to_end);
        // The same input gives the same plan.
        prop_assert_eq!(plan(&resources, granularity), Ok((size, alignment, offsets)));
    }

    #[test]
    fn resources_never_in_use_together_take_only_the_largest(
        sizes in prop::collection::vec(1u64..1 << 20, 1..20)
    ) {
        // One resource per step: all can share the bottom of the range.
        let resources: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(step, &size)| AliasedResource {
                size,
                alignment: 256,
                // Buffers and images alike: never in use together, pages do not keep them apart.
                kind: if step % 2 == 0 { ResourceKind::Linear } else { ResourceKind::Optimal },
                first_use: step as u32,
                last_use: step as u32,
            })
            .collect();
        let (size, _, offsets) = plan(&resources, 1024).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let page = if sizes.len() > 1 { 1024 } else { 1 };
        prop_assert_eq!(size, align_up(*sizes.iter().max().unwrap(), page));
        prop_assert!(offsets.iter().all(|&o| o == 0));
    }

    #[test]
    fn bad_input_is_refused_and_names_the_first_bad_resource(
        mut resources in prop::collection::vec(resource(), 1..20),
        bad in any::<prop::sample::Index>(),
        kind in 0u8..3,
    ) {
        let index = bad.index(resources.len());
        let expected = match kind {
            0 => {
                resources[index].size = 0;
                AliasingError::ZeroSize { index }
            }
            1 => {
                resources[index].alignment = 3 << 4;
                AliasingError::BadAlignment { index }
            }
            _ => {
                resources[index].first_use = resources[index].last_use + 1;
                AliasingError::BadSpan { index }
            }
        };
        prop_assert_eq!(plan(&resources, 1024), Err(expected));
    }
}
