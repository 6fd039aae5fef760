use super::*;

fn ranges(set: &IntervalSet) -> Vec<(u64, u64)> {
    set.intersection(0, u64::MAX)
}

#[test]
fn insert_merges_overlapping_and_adjacent() {
    let mut set = IntervalSet::new();
    set.insert(10, 20);
    set.insert(30, 40);
    assert_eq!(ranges(&set), [(10, 20), (30, 40)]);
    set.insert(20, 25);
    assert_eq!(ranges(&set), [(10, 25), (30, 40)]);
    set.insert(5, 35);
    assert_eq!(ranges(&set), [(5, 40)]);
    set.insert(7, 7);
    assert_eq!(ranges(&set), [(5, 40)]);
}

#[test]
fn remove_splits() {
    let mut set = IntervalSet::new();
    set.insert(0, 100);
    set.remove(10, 20);
    assert_eq!(ranges(&set), [(0, 10), (20, 100)]);
    set.remove(5, 30);
    assert_eq!(ranges(&set), [(0, 5), (30, 100)]);
    set.remove(0, 100);
    assert!(set.is_empty());
}

#[test]
fn queries() {
    let mut set = IntervalSet::new();
    set.insert(10, 20);
    set.insert(30, 40);
    assert!(set.overlaps(15, 16));
    assert!(set.overlaps(0, 11));
    assert!(!set.overlaps(20, 30));
    assert!(!set.overlaps(40, 50));
    assert!(!set.overlaps(15, 15));
    assert_eq!(set.intersection(15, 35), [(15, 20), (30, 35)]);
    assert_eq!(set.complement_within(0, 50), [(0, 10), (20, 30), (40, 50)]);
    assert_eq!(set.complement_within(12, 18), []);
}

#[test]
fn matches_a_bitmap_model() {
    // Deterministic pseudo-random operations against a per-byte model.
    let mut set = IntervalSet::new();
    let mut model = [false; 200];
    let mut x: u64 = 12345;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = x % 200;
        let b = (x >> 16) % 200;
        let (s, e) = (a.min(b), a.max(b));
        if (x >> 40) & 1 == 0 {
            set.insert(s, e);
            model[s as usize..e as usize]
                .iter_mut()
                .for_each(|m| *m = true);
        } else {
            set.remove(s, e);
            model[s as usize..e as usize]
                .iter_mut()
                .for_each(|m| *m = false);
        }
        let mut bits = [false; 200];
        for (s, e) in ranges(&set) {
            bits[s as usize..e as usize]
                .iter_mut()
                .for_each(|m| *m = true);
        }
        assert_eq!(bits, model);
        // Stored ranges are disjoint and not adjacent.
        let r = ranges(&set);
        assert!(r.windows(2).all(|w| w[0].1 < w[1].0));
    }
}
