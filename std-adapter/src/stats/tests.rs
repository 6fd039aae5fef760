use super::*;

#[test]
fn threads_started_one_after_another_reuse_shards() {
    // Far more threads than shards, a few alive at a time: each must still get a shard of its own
    // (an index below SHARDS), not the shared overflow.
    for _ in 0..4 * SHARDS {
        let index = std::thread::spawn(shard_index).join().unwrap();
        assert!(index < SHARDS, "thread got index {index}");
    }
}

#[test]
fn live_threads_never_share_a_shard() {
    let barrier = std::sync::Barrier::new(8);
    let mut indices: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let index = shard_index();
                    // Held until all eight have one.
                    barrier.wait();
                    index
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 8);
}

#[test]
fn counts_from_many_short_threads_add_up() {
    let counters = UploadCounters::default();
    std::thread::scope(|s| {
        for t in 0..100u64 {
            let counters = &counters;
            s.spawn(move || {
                for _ in 0..10 {
                    counters.add(Tally::Direct, t);
                }
            })
            .join()
            .unwrap();
        }
    });
    assert_eq!(counters.sum(|s| &s.direct_writes), 1000);
    assert_eq!(
        counters.sum(|s| &s.direct_bytes),
        10 * (0..100).sum::<u64>()
    );
}

#[test]
fn json_strings_are_escaped() {
    let mut out = String::new();
    push_json_string(&mut out, "a\"b\\c\nd\u{1}e\u{e9}");
    assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001e\u{e9}\"");
    let mut o = JsonObject::new();
    o.text("s", "x\"");
    o.boolean("t", true);
    o.boolean("f", false);
    o.null("n");
    o.raw("a", &json_array(["1", "{}"]));
    o.raw("e", &json_array(Vec::<String>::new()));
    assert_eq!(
        o.finish(),
        r#"{"s":"x\"","t":true,"f":false,"n":null,"a":[1,{}],"e":[]}"#
    );
}
