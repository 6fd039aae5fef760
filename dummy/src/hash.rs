//! A fast non-cryptographic hash of byte ranges, for "did these bytes change between submit and
//! execution" checks. Split-independent: feeding a range in any pieces gives the same result.
#![forbid(unsafe_code)]

/// Streaming 64-bit hash over bytes: four independent multiply-rotate lanes over little-endian
/// words (so the multiplies overlap), folded together at the end.
#[derive(Clone, Debug)]
pub(crate) struct RangeHasher {
    lanes: [u64; 4],
    pending: [u8; BLOCK],
    pending_len: usize,
    total: u64,
}

/// Bytes consumed per round: one word per lane.
const BLOCK: usize = 32;
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(lane: u64, word: u64) -> u64 {
    (lane ^ word).wrapping_mul(MULTIPLIER).rotate_left(29)
}

fn word(bytes: &[u8]) -> u64 {
    let mut le = [0; 8];
    le.copy_from_slice(bytes);
    u64::from_le_bytes(le)
}

impl RangeHasher {
    /// A hasher with nothing fed yet.
    pub(crate) fn new() -> Self {
        Self {
            lanes: [
                0x243F_6A88_85A3_08D3,
                0x1319_8A2E_0370_7344,
                0xA409_3822_299F_31D0,
                0x082E_FA98_EC4E_6C89,
            ],
            pending: [0; BLOCK],
            pending_len: 0,
            total: 0,
        }
    }

    fn block(&mut self, block: &[u8]) {
        for (lane, bytes) in self.lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = mix(*lane, word(bytes));
        }
    }

    /// Feeds bytes.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (BLOCK - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < BLOCK {
                return;
            }
            let pending = self.pending;
            self.block(&pending);
            self.pending_len = 0;
        }
        let mut blocks = bytes.chunks_exact(BLOCK);
        for block in &mut blocks {
            self.block(block);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The hash of everything fed.
    pub(crate) fn finish(mut self) -> u64 {
        if self.pending_len > 0 {
            let mut last = [0; BLOCK];
            last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            self.block(&last);
        }
        let mut h = self.total;
        for lane in self.lanes {
            h = mix(h, lane);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^ (h >> 33)
    }
}

/// Hash of one slice.
#[cfg(test)]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = RangeHasher::new();
    hasher.update(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests;
