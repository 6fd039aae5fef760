//! Device-only bytes, stored as sparse pages: a 16 GiB object costs nothing until the simulated
//! GPU writes to it, and untouched bytes read as zero.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use crate::hash::RangeHasher;

/// Bytes per page.
pub(crate) const PAGE: u64 = 64 * 1024;

static ZERO_PAGE: [u8; PAGE as usize] = [0; PAGE as usize];

/// A zero-initialised byte range of fixed length whose pages exist only once written.
#[derive(Debug)]
pub(crate) struct SparseBytes {
    len: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl SparseBytes {
    /// `len` zero bytes, none stored.
    pub(crate) fn new(len: u64) -> Self {
        Self {
            len,
            pages: BTreeMap::new(),
        }
    }

    /// Bytes actually stored (touched pages), for tests of laziness.
    pub(crate) fn resident_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    fn check(&self, offset: u64, n: u64) {
        assert!(
            offset <= self.len && n <= self.len - offset,
            "memkit-dummy internal error: device range {offset}+{n} outside {} bytes",
            self.len
        );
    }

    /// Calls `f(chunk)` for each piece of `[offset, offset + n)` in order, untouched pages as
    /// zeros.
    pub(crate) fn for_each_chunk(&self, offset: u64, n: u64, mut f: impl FnMut(&[u8])) {
        self.check(offset, n);
        let mut at = offset;
        let end = offset + n;
        while at < end {
            let page = at / PAGE;
            let within = (at % PAGE) as usize;
            let take = (PAGE - at % PAGE).min(end - at) as usize;
            match self.pages.get(&page) {
                Some(bytes) => f(&bytes[within..within + take]),
                None => f(&ZERO_PAGE[within..within + take]),
            }
            at += take as u64;
        }
    }

    /// Copies `out.len()` bytes starting at `offset` into `out`.
    pub(crate) fn read(&self, offset: u64, out: &mut [u8]) {
        let mut filled = 0;
        self.for_each_chunk(offset, out.len() as u64, |chunk| {
            out[filled..filled + chunk.len()].copy_from_slice(chunk);
            filled += chunk.len();
        });
    }

    /// Copies `data` into the bytes starting at `offset`, creating pages as needed.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        self.check(offset, data.len() as u64);
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let page = at / PAGE;
            let within = (at % PAGE) as usize;
            let take = ((PAGE - at % PAGE) as usize).min(rest.len());
            let bytes = self
                .pages
                .entry(page)
                .or_insert_with(|| vec![0; PAGE as usize].into_boxed_slice());
            bytes[within..within + take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            at += take as u64;
        }
    }

    /// Hash of `[offset, offset + n)`, independent of how the range is split into pages.
    pub(crate) fn hash(&self, offset: u64, n: u64) -> u64 {
        let mut hasher = RangeHasher::new();
        self.for_each_chunk(offset, n, |chunk| hasher.update(chunk));
        hasher.finish()
    }
}

#[cfg(test)]
mod tests;
