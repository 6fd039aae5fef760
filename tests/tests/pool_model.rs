//! The memory-type pools against the shared model (`memkit_tests::pool_model`), on every
//! memkit-dummy preset, with real resources: random workloads of allocations (buffers and images
//! of every usage, some dedicated), frees, replayed frees, trims, budget refreshes and
//! defragmentation passes (each move done with a new resource and the bytes copied), with the
//! model's checks after every op and its teardown checks at the end (see the module for what they
//! are). The fuzz target `pools` drives the same model.
//!
//! Also here: fault injection at every device allocation and every map, and bad input.

use memkit_core::device::DeviceError;
use memkit_core::pool::{AllocationRequest, DeviceAllocation, PoolConfig, PoolError};
use memkit_core::{FreeError, MemoryUsage as U};
use memkit_dummy::{DummyDevice, Preset};
use memkit_tests::pool_model::{
    Buddy, MIB, ModelStorage, PoolModel, PoolOp, Tlsf, USAGES, device, device_with_quarantine,
    pools, run,
};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = PoolOp> {
    let size = prop_oneof![
        4 => 1u64..4096,
        3 => 4096u64..MIB,
        2 => MIB..16 * MIB,
        1 => 16 * MIB..160 * MIB,
    ];
    prop_oneof![
        8 => (size, 0..USAGES.len(), any::<bool>(), prop::bool::weighted(0.05)).prop_map(
            |(size, usage, optimal, dedicated)| PoolOp::Allocate { size, usage, optimal, dedicated }
        ),
        6 => any::<usize>().prop_map(|index| PoolOp::Free { index }),
        1 => any::<usize>().prop_map(|index| PoolOp::ReplayFree { index }),
        1 => Just(PoolOp::Trim),
        1 => Just(PoolOp::RefreshBudget),
        1 => any::<u8>().prop_map(|max_allocations| PoolOp::Defragment { max_allocations }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn pools_match_the_model_on_every_preset(
        tlsf in any::<bool>(),
        within_budget in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        for preset in Preset::ALL {
            let result = if tlsf {
                run::<Tlsf>(preset, within_budget, &ops)
            } else {
                run::<Buddy>(preset, within_budget, &ops)
            };
            prop_assert!(result.is_ok(), "{}", result.unwrap_err());
        }
    }
}

/// For each k, the k-th `allocate_memory` (then the k-th `map_memory`) fails: the caller gets a
/// typed error or a fallback type, nothing leaks, and the pools keep working afterwards.
fn fault_at_every_point<A: ModelStorage>(preset: Preset) {
    let dev = device(preset);
    let mut model = PoolModel::<A>::new(&dev, false);
    for op in workload_ops() {
        model.step(op).unwrap_or_else(|e| panic!("{preset}: {e}"));
    }
    model.finish().unwrap();
    let counters = dev.counters();
    let (allocations, maps) = (counters.allocation_calls, counters.map_calls);
    assert!(
        allocations >= 5,
        "{preset}: workload made {allocations} objects"
    );
    for (site, calls) in [("allocation", allocations), ("map", maps)] {
        for k in 1..=calls {
            // No quarantine: hashing every freed mapping, once per k, is what would cost here.
            let dev = device_with_quarantine(preset, 0);
            if site == "allocation" {
                dev.fail_allocation_call(k, DeviceError::OutOfDeviceMemory);
            } else {
                dev.fail_map_call(k);
            }
            let mut model = PoolModel::<A>::new(&dev, false).with_faults(true);
            let mut failed = 0;
            for op in workload_ops() {
                let before = model.live_count();
                match model.step(op) {
                    Ok(()) => {}
                    Err(e) => panic!("{preset} {site} {k}: {e}"),
                }
                if matches!(op, PoolOp::Allocate { .. }) && model.live_count() == before {
                    failed += 1;
                }
            }
            // The injected failure was seen or absorbed by a fallback; nothing else failed.
            assert!(
                failed <= 1,
                "{preset} {site} {k}: {failed} allocations failed"
            );
            // Still works.
            model
                .step(PoolOp::Allocate {
                    size: 4096,
                    usage: 1,
                    optimal: false,
                    dedicated: false,
                })
                .unwrap();
            model
                .finish()
                .unwrap_or_else(|e| panic!("{preset} {site} {k}: {e}"));
            assert!(dev.leak_report().is_empty());
        }
    }
}

/// A fixed workload touching blocks, growth, dedicated objects and every usage.
fn workload_ops() -> Vec<PoolOp> {
    let ops = [
        (4096, 0, false),
        (3 * MIB, 1, false),
        (100 * MIB, 0, false),
        (300, 2, false),
        (5 * MIB, 0, true),
        (64 * 1024, 4, false),
        (700, 6, false),
        (2 * MIB, 3, true),
    ];
    let mut out = Vec::new();
    for round in 0..3 {
        for &(size, usage, optimal) in &ops {
            out.push(PoolOp::Allocate {
                size,
                usage,
                optimal,
                dedicated: false,
            });
        }
        out.push(PoolOp::Free { index: round });
    }
    out
}

#[test]
fn fault_injection_tlsf() {
    for preset in Preset::ALL {
        fault_at_every_point::<Tlsf>(preset);
    }
}

#[test]
fn fault_injection_buddy() {
    for preset in Preset::ALL {
        fault_at_every_point::<Buddy>(preset);
    }
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    let dev = DummyDevice::new(
        Preset::Mobile
            .config()
            .with_max_memory_allocation_count(3)
            .with_report_leaks_on_drop(false),
    )
    .unwrap();
    let mut p = pools::<Tlsf>(&dev, PoolConfig::DEFAULT, 8);
    let sized = |size| AllocationRequest::sized(size, 16, U::empty());
    assert_eq!(p.allocate(&sized(0)), Err(PoolError::ZeroSize));
    let mut bits = AllocationRequest::sized(64, 16, U::UPLOAD);
    bits.requirements.memory_type_bits = 0b101;
    assert_eq!(p.allocate(&bits), Err(PoolError::NoCompatibleType));
    assert_eq!(
        p.allocate(&sized(256 * MIB + 1)),
        Err(PoolError::TooLarge {
            size: 256 * MIB + 1,
            max: 256 * MIB
        })
    );
    // Object count: three objects, then refused.
    let a: Vec<_> = (0..3)
        .map(|_| p.allocate(&sized(64).with_dedicated()).unwrap())
        .collect();
    assert_eq!(
        p.allocate(&sized(64).with_dedicated()),
        Err(PoolError::ObjectCountExhausted { limit: 3 })
    );
    let raw = *a[0].raw();
    // SAFETY: nothing used the memory.
    unsafe {
        for x in a {
            p.free(x).unwrap();
        }
        // Freed, then freed again; and a handle of other pools.
        assert_eq!(
            p.free(DeviceAllocation::from_raw(raw)),
            Err(FreeError::DoubleFree)
        );
        let mut q = pools::<Tlsf>(&dev, PoolConfig::DEFAULT, 8);
        let foreign = q.allocate(&sized(64)).unwrap();
        let foreign_raw = *foreign.raw();
        assert_eq!(
            p.free(DeviceAllocation::from_raw(foreign_raw)),
            Err(FreeError::ForeignAllocation)
        );
        q.free(foreign).unwrap();
        assert!(q.destroy().is_clean());
    }
    // Within-budget mode: the mobile preset has no budget query, so 80% of the 512 MiB heap.
    let mut strict = pools::<Tlsf>(
        &dev,
        PoolConfig {
            within_budget: true,
            ..PoolConfig::DEFAULT
        },
        8,
    );
    let big = strict
        .allocate(&sized(250 * MIB).with_memory_type(0))
        .unwrap();
    assert_eq!(
        strict.allocate(&sized(200 * MIB).with_memory_type(0)),
        Err(PoolError::OverBudget { heap: 0 })
    );
    // SAFETY: nothing used the memory.
    unsafe {
        strict.free(big).unwrap();
        assert!(strict.destroy().is_clean());
        assert!(p.destroy().is_clean());
    }
    assert!(dev.leak_report().is_empty());
    assert!(dev.misuses().is_empty(), "{:?}", dev.misuses());
}

#[test]
fn startup_footprint_is_a_few_mib_per_heap() {
    for preset in Preset::ALL {
        let dev = device(preset);
        let mut p = pools::<Tlsf>(&dev, PoolConfig::DEFAULT, 8);
        let mut live = Vec::new();
        for usage in [U::FAST_DEVICE_ACCESS, U::UPLOAD, U::DOWNLOAD] {
            live.push(
                p.allocate(&AllocationRequest::sized(256, 16, usage))
                    .unwrap(),
            );
        }
        // At most one first block (2 MiB) per memory type used, for three usages.
        for heap in 0..dev.memory_properties().heaps().len() as u32 {
            let used = dev.heap_used(heap);
            assert!(
                used <= 6 * MIB,
                "{preset} heap {heap}: {used} bytes for 3 small allocations"
            );
        }
        // SAFETY: nothing used the memory.
        unsafe {
            for a in live {
                p.free(a).unwrap();
            }
            assert!(p.destroy().is_clean());
        }
    }
}
