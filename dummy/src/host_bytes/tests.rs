use super::*;

#[test]
fn zeroed_aligned_and_round_trips() {
    for align in [1, 16, 64, 256, 4096] {
        let mut bytes = HostBytes::new_zeroed(1000, align).expect("allocation");
        assert_eq!(bytes.len(), 1000);
        assert_eq!(bytes.as_ptr().as_ptr() as usize % align as usize, 0);
        let mut out = [0xFFu8; 1000];
        bytes.read(0, &mut out);
        assert!(out.iter().all(|&b| b == 0));
        bytes.write(10, b"abc");
        bytes.fill(500, 3, 7);
        let mut some = [0u8; 3];
        bytes.read(10, &mut some);
        assert_eq!(&some, b"abc");
        bytes.read(500, &mut some);
        assert_eq!(some, [7, 7, 7]);
        assert_eq!(
            bytes.with_slice(9, 5, |s| s.to_vec()),
            [0, b'a', b'b', b'c', 0]
        );
    }
}

#[test]
fn writes_through_the_pointer_are_seen_and_the_pointer_is_stable() {
    let mut bytes = HostBytes::new_zeroed(64, 64).expect("allocation");
    let ptr = bytes.as_ptr();
    // SAFETY: `ptr` points at 64 live bytes owned by `bytes`, which outlives the write; no
    // reference to them exists during it.
    unsafe { ptr.as_ptr().add(3).write(42) };
    bytes.write(4, &[43]);
    assert_eq!(bytes.as_ptr(), ptr);
    // SAFETY: as above; reads byte 4 written through `write`.
    let seen = unsafe { ptr.as_ptr().add(4).read() };
    assert_eq!(seen, 43);
    let mut out = [0u8; 2];
    bytes.read(3, &mut out);
    assert_eq!(out, [42, 43]);
}

#[test]
fn impossible_sizes_fail_cleanly() {
    assert!(HostBytes::new_zeroed(u64::MAX, 64).is_none());
    assert!(HostBytes::new_zeroed(16, 3).is_none());
}

#[test]
#[should_panic(expected = "outside")]
fn out_of_range_access_is_an_internal_error() {
    let bytes = HostBytes::new_zeroed(16, 16).expect("allocation");
    let mut out = [0u8; 4];
    bytes.read(14, &mut out);
}

/// Resident set size of this process, from `/proc/self/statm`.
#[cfg(all(target_os = "linux", not(miri)))]
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .expect("rss")
        .parse()
        .expect("number");
    pages * 4096
}

#[test]
#[cfg(all(target_os = "linux", not(miri)))]
fn a_large_object_costs_nothing_until_touched() {
    const GIB: u64 = 1 << 30;
    let before = resident_bytes();
    let mut bytes = HostBytes::new_zeroed(4 * GIB, 64).expect("lazy allocation");
    bytes.write(3 * GIB, &[1; 4096]);
    let after = resident_bytes();
    // Other test threads allocate too; 4 GiB backed eagerly would dwarf this margin.
    assert!(
        after.saturating_sub(before) < 256 << 20,
        "resident grew by {} bytes",
        after - before
    );
    let mut out = [0u8; 2];
    bytes.read(3 * GIB + 4095, &mut out);
    assert_eq!(out, [1, 0]);
}
