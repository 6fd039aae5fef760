//! What the GPU upload benchmarks share, so their figures line up: memkit's
//! (`benches/uploads.rs`) and the wgpu peer's (`wgpu-peer/`, its own workspace) write the same
//! scattered slots and read back the same ranges, print the same table and write the same JSON.

use std::fmt::Write as _;

use crate::workloads::SplitMix64;

/// The read-back benchmarks' source: one buffer of this many random bytes (seed 41).
pub const READ_BACK_SOURCE: u64 = 256 << 20;

/// The read-back benchmarks' cases, `(size, count)`: many small reads (latency-bound), some
/// middling, a few large (bandwidth-bound); every read is a distinct range of the source.
pub const READ_BACK_CASES: [(u64, u64); 3] = [(4096, 1024), (1 << 20, 64), (64 << 20, 4)];

/// Where read `i` of `size` bytes starts in the read-back source: spread over it, distinct.
pub fn read_back_offset(i: u64, size: u64) -> u64 {
    let slots = READ_BACK_SOURCE / size;
    (i * 7919 % slots) * size
}

/// A read-back case's size as its rows name it: "4 KiB", "64 MiB".
pub fn read_back_size_label(size: u64) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

/// `count` distinct slots of `slot` bytes in a buffer of `buffer` bytes, in random order (a
/// partial Fisher-Yates shuffle), as byte offsets.
pub fn scattered_offsets(rng: &mut SplitMix64, buffer: u64, slot: u64, count: usize) -> Vec<u64> {
    let slots = (buffer / slot) as usize;
    let mut all: Vec<u64> = (0..slots as u64).collect();
    for i in 0..count.min(slots) {
        let j = i + rng.below((slots - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(count);
    all.iter().map(|s| s * slot).collect()
}

/// The median of `v` (the upper one of an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Bytes per second in GB/s (10^9).
pub fn gbps(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e9
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// What was measured, e.g. "2. 65536 x 4096 B scattered, direct, 8 producer(s)".
    pub name: String,
    /// The median.
    pub value: f64,
    /// "GB/s", "us", "x", ...
    pub unit: &'static str,
    /// Context: the memory type, submissions, the read-back verdict.
    pub note: String,
}

/// A benchmark's figures, printed as a table while they come and written as JSON at the end:
/// `{"device", "peer"?, "figures": [{"name", "value", "unit", "note"}], "failures"}`.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The device the figures come from.
    pub device: String,
    /// For a peer's program: what it measures instead of memkit ("wgpu 30.0.1").
    pub peer: Option<String>,
    /// Width of the name column in the printed table (0: 64).
    pub name_width: usize,
    /// Every figure, in order.
    pub figures: Vec<Figure>,
    /// Checks that failed (wrong bytes read back): the program exits non-zero when any did.
    pub failures: Vec<String>,
}

impl Report {
    /// Records a figure and prints its row.
    pub fn add(&mut self, name: &str, value: f64, unit: &'static str, note: &str) {
        let width = if self.name_width == 0 {
            64
        } else {
            self.name_width
        };
        println!("{name:<width$} {value:>12.3} {unit:<8} {note}");
        self.figures.push(Figure {
            name: name.to_string(),
            value,
            unit,
            note: note.to_string(),
        });
    }

    /// The value of the figure called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }

    /// The report as JSON (non-finite values as `null`).
    pub fn json(&self) -> String {
        fn esc(s: &str) -> String {
            s.replace('\\', "\\\\").replace('"', "\\\"")
        }
        let mut out = String::new();
        let _ = write!(out, "{{\n  \"device\": \"{}\",\n", esc(&self.device));
        if let Some(peer) = &self.peer {
            let _ = writeln!(out, "  \"peer\": \"{}\",", esc(peer));
        }
        out.push_str("  \"figures\": [\n");
        for (i, f) in self.figures.iter().enumerate() {
            let value = if f.value.is_finite() {
                format!("{}", f.value)
            } else {
                "null".to_string()
            };
            let _ = writeln!(
                out,
                "    {{\"name\": \"{}\", \"value\": {}, \"unit\": \"{}\", \"note\": \"{}\"}}{}",
                esc(&f.name),
                value,
                f.unit,
                esc(&f.note),
                if i + 1 < self.figures.len() { "," } else { "" }
            );
        }
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|f| format!("\"{}\"", esc(f)))
            .collect();
        let _ = write!(out, "  ],\n  \"failures\": [{}]\n}}\n", failures.join(", "));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_offsets_are_distinct_aligned_slots_inside_the_buffer() {
        let offsets = scattered_offsets(&mut SplitMix64::new(4096), 1 << 20, 4096, 200);
        assert_eq!(offsets.len(), 200);
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 200, "distinct");
        assert!(offsets.iter().all(|o| o % 4096 == 0 && o + 4096 <= 1 << 20));
        assert_ne!(offsets, sorted, "shuffled, not in order");
        // More slots than the buffer holds: all of them, once.
        assert_eq!(
            scattered_offsets(&mut SplitMix64::new(1), 8192, 4096, 5).len(),
            2
        );
    }

    #[test]
    fn json_escapes_and_nulls() {
        let mut r = Report {
            device: "gpu \"x\"".into(),
            peer: Some("wgpu 30".into()),
            ..Report::default()
        };
        r.add("a", 1.5, "GB/s", "note \\ here");
        r.add("b", f64::NAN, "x", "");
        r.failures.push("bad".into());
        let json = r.json();
        assert!(json.contains(r#""device": "gpu \"x\"""#), "{json}");
        assert!(json.contains(r#""peer": "wgpu 30""#), "{json}");
        assert!(
            json.contains(r#""value": 1.5"#) && json.contains(r#""value": null"#),
            "{json}"
        );
        assert!(json.contains(r#""note": "note \\ here""#), "{json}");
        assert!(json.contains(r#""failures": ["bad"]"#), "{json}");
        assert_eq!(r.get("a"), Some(1.5));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
