use super::*;

#[test]
fn amounts_increase_and_round_trip_through_their_codes() {
    for c in 1..=u8::MAX {
        assert!(amount(c) > amount(c - 1), "code {c}");
    }
    for c in 0..=u8::MAX {
        assert_eq!(code_of_amount(amount(c)), c);
    }
    for exact in [0, 1, 63, 64, 4096, 8192, 65536, 131_072] {
        assert_eq!(round_amount(exact), exact);
    }
    assert_eq!(round_amount(65), 68);
    assert_eq!(round_amount(u32::MAX), amount(u8::MAX));
}

#[test]
fn every_byte_string_decodes_and_every_op_kind_is_reachable() {
    let mut kinds = std::collections::BTreeSet::new();
    for k in 0..=u8::MAX {
        // The bytes after `k` are its operands, or ops of their own after a shorter op.
        let w = CoordinatorWorkload::decode(&[0, 0, k, 1, 2]);
        assert!(!w.ops.is_empty(), "kind byte {k}");
        kinds.insert(
            format!("{:?}", w.ops[0])
                .split([' ', '('])
                .next()
                .map(str::to_owned),
        );
        // Re-encoding gives bytes that decode to the same workload.
        assert_eq!(CoordinatorWorkload::decode(&w.encode()), w, "kind byte {k}");
    }
    // 25 ops, with Frame and Foreign each once.
    assert_eq!(kinds.len(), 25, "{kinds:?}");
    assert!(CoordinatorWorkload::decode(&[]).ops.is_empty());
    let long = CoordinatorWorkload::decode(&[10; 1000]);
    assert_eq!(long.ops.len(), MAX_OPS);
    assert!(long.ops.iter().all(|&op| op == CoordOp::Check));
}

#[test]
fn headers_round_trip() {
    for h0 in 0..=u8::MAX {
        for h1 in 0..32 {
            let w = CoordinatorWorkload::decode(&[h0, h1, 10]);
            assert!(w.ring_shift < 6);
            assert_eq!(CoordinatorWorkload::decode(&w.encode()), w, "{h0} {h1}");
        }
    }
}

#[test]
fn short_inputs_run() {
    // A few thousand small workloads, every kind byte after every header: none disagrees.
    for k in 0..=u8::MAX {
        CoordinatorWorkload::decode(&[k, k / 7, 2, 70, k, k, 80, k / 3, 0x5a]).run();
    }
}

#[test]
fn check_finds_the_first_known_byte_that_differs() {
    let len = 3 * 4096 + 13;
    let want: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let mut mask = vec![KNOWN; len];
    assert_eq!(first_known_difference(&want, &want, &mask), None);
    // A difference in every word position, in later blocks and in the tail, is found, and the
    // first one is named; unknown bytes may differ.
    for at in [0, 1, 7, 8, 4095, 4096, 9000, len - 1] {
        let mut got = want.clone();
        got[at] ^= 0x10;
        got[len - 1] ^= 1;
        assert_eq!(first_known_difference(&got, &want, &mask), Some(at));
        mask[at] = UNKNOWN;
        let next = (at != len - 1).then_some(len - 1);
        assert_eq!(first_known_difference(&got, &want, &mask), next);
        mask[at] = KNOWN;
    }
}

#[test]
fn a_direct_write_after_a_pass_keeps_the_bytes_around_it() {
    // Found by the fuzz target: a buffer the CPU writes directly, in non-coherent memory
    // (Mobile), was moved by a GPU copy into a new mapping the host had never invalidated; the
    // next direct write flushed whole atoms of that stale view over the copied bytes. Such
    // buffers no longer move.
    let w = CoordinatorWorkload {
        preset: Preset::Mobile,
        ring_shift: 1,
        policy: Policy::Fail,
        whole_ring: true,
        double_buffering: true,
        eager_submit: false,
        ops: vec![
            CoordOp::Create {
                size: 8193,
                usage: BufferUse::HostAccess,
            },
            CoordOp::UploadSlice { len: 253_952 },
            CoordOp::UploadSlice { len: 253_952 },
            CoordOp::UploadTo {
                buffer: 0,
                offset: 0,
                len: 8192,
            },
            CoordOp::Defragment { max_allocations: 0 },
            CoordOp::UploadTo {
                buffer: 0,
                offset: 4096,
                len: 10,
            },
            CoordOp::Check,
        ],
    };
    assert_eq!(CoordinatorWorkload::decode(&w.encode()), w);
    w.run();
}

#[test]
fn an_open_frames_value_is_signalled_only_once_it_ended() {
    // Found by the fuzz target: `Advance` signalled the open frame's value, so the application's
    // "finished" reads of a slice written after it were compared with bytes the next frame had
    // every right to write. A draw while the frame is open moves its value past the draw's.
    let frame = |len| CoordOp::Transient { len };
    for between in [CoordOp::Advance { n: 0 }, CoordOp::AppDraw { image: 0 }] {
        let w = CoordinatorWorkload {
            preset: Preset::Discrete,
            ring_shift: 2,
            policy: Policy::Fail,
            whole_ring: false,
            double_buffering: false,
            eager_submit: false,
            ops: vec![
                CoordOp::CreateImage {
                    side: 8,
                    compressed: false,
                },
                frame(64),
                CoordOp::Frame(FrameCall::End),
                frame(64),
                between,
                between,
                frame(16384),
                CoordOp::Frame(FrameCall::End),
                frame(64),
                frame(64),
                CoordOp::Frame(FrameCall::End),
                CoordOp::Advance { n: 0 },
                CoordOp::Check,
            ],
        };
        assert_eq!(CoordinatorWorkload::decode(&w.encode()), w);
        let depth = w.run();
        assert_eq!(depth.transient_slices, 5, "{between:?}");
    }
}

#[test]
fn each_fault_site_refuses_a_buffer_that_needs_a_new_block() {
    // A 200 KiB buffer does not fit the first 64 KiB block: its creation allocates, maps (a
    // direct-write buffer on a preset where that memory is host-visible) and binds. A refused
    // creation, bind or map reaches the caller, the model forgets the buffer, and the next one
    // is made; a refused allocation does not: the pools try another type or block size.
    for (site, refused) in [
        (FaultSite::Allocation, 0),
        (FaultSite::Creation, 1),
        (FaultSite::Bind, 1),
        (FaultSite::Map, 1),
    ] {
        let create = CoordOp::Create {
            // Decoded sizes are an amount plus one.
            size: round_amount(200 << 10) + 1,
            usage: BufferUse::HostAccess,
        };
        let w = CoordinatorWorkload {
            preset: Preset::ResizableBar,
            ring_shift: 2,
            policy: Policy::WaitForGpu,
            whole_ring: false,
            double_buffering: false,
            eager_submit: false,
            ops: vec![
                CoordOp::Fault { site, nth: 0 },
                create,
                create,
                CoordOp::UploadTo {
                    buffer: 0,
                    offset: 100,
                    len: 1024,
                },
                CoordOp::Check,
            ],
        };
        assert_eq!(CoordinatorWorkload::decode(&w.encode()), w);
        let depth = w.run();
        assert_eq!(
            (depth.faults_fired, depth.faults_refused),
            (1, refused),
            "{site:?}"
        );
        assert_eq!(depth.max_live, 2 - refused as usize, "{site:?}");
    }
}
