//! A memory object's bytes as the host and the device see them.
//!
//! - Device-only memory: one sparse device view.
//! - Host-visible coherent memory: one mapped host view, which the device reads and writes too.
//! - Host-visible non-coherent memory: a mapped host view and a separate device view. A flush
//!   copies host to device, an invalidate device to host; the device reads and writes only its
//!   view. So an unflushed host write is invisible to the GPU, and an uninvalidated device write
//!   invisible to the host, as on real non-coherent hardware, and the detectors can compare.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use crate::handles::DummyBuffer;
use crate::hash::RangeHasher;
use crate::host_bytes::HostBytes;
use crate::intervals::IntervalSet;
use crate::sparse::SparseBytes;

/// Bytes moved per step when copying between views.
const CHUNK: u64 = 64 * 1024;

/// One live memory object.
#[derive(Debug)]
pub(crate) struct MemoryObject {
    pub(crate) size: u64,
    pub(crate) memory_type: u32,
    pub(crate) heap: u32,
    pub(crate) device_address: bool,
    /// Mapped bytes, for host-visible types.
    pub(crate) host: Option<HostBytes>,
    /// The device's own bytes, for device-only and non-coherent types.
    pub(crate) device_view: Option<SparseBytes>,
    pub(crate) mapped: bool,
    /// The buffer or image this object is dedicated to.
    pub(crate) dedicated_to: Option<DummyBuffer>,
    /// Indices of live buffers bound to it.
    pub(crate) bound: BTreeSet<u64>,
    /// Device-written bytes the host has not invalidated yet (non-coherent only).
    pub(crate) stale: IntervalSet,
    pub(crate) label: Option<String>,
}

impl MemoryObject {
    /// Whether host and device views are separate (host-visible, not coherent).
    pub(crate) fn non_coherent(&self) -> bool {
        self.host.is_some() && self.device_view.is_some()
    }

    /// Whether `[offset, offset + size)` lies inside.
    pub(crate) fn contains(&self, offset: u64, size: u64) -> bool {
        offset <= self.size && size <= self.size - offset
    }

    /// Reads what the device sees.
    pub(crate) fn device_read(&self, offset: u64, out: &mut [u8]) {
        match (&self.device_view, &self.host) {
            (Some(device), _) => device.read(offset, out),
            (None, Some(host)) => host.read(offset, out),
            (None, None) => out.fill(0),
        }
    }

    /// Writes as the device does; for non-coherent memory the host keeps stale bytes (or the
    /// fill) until it invalidates.
    pub(crate) fn device_write(&mut self, offset: u64, data: &[u8], stale_fill: Option<u8>) {
        let non_coherent = self.non_coherent();
        if let Some(device) = &mut self.device_view {
            device.write(offset, data);
            if non_coherent {
                let end = offset + data.len() as u64;
                self.stale.insert(offset, end);
                if let (Some(fill), Some(host)) = (stale_fill, &mut self.host) {
                    host.fill(offset, data.len() as u64, fill);
                }
            }
        } else if let Some(host) = &mut self.host {
            host.write(offset, data);
        }
    }

    /// Hash of what the device sees.
    pub(crate) fn device_hash(&self, offset: u64, size: u64) -> u64 {
        match (&self.device_view, &self.host) {
            (Some(device), _) => device.hash(offset, size),
            (None, Some(host)) => host_hash(host, offset, size),
            (None, None) => 0,
        }
    }

    /// Hash of what the host sees, for host-visible memory.
    pub(crate) fn host_hash(&self, offset: u64, size: u64) -> Option<u64> {
        self.host.as_ref().map(|host| host_hash(host, offset, size))
    }

    /// Copies host to device view over the range (a flush) and forgets device writes there.
    pub(crate) fn flush(&mut self, offset: u64, size: u64) {
        if let (Some(host), Some(device)) = (&self.host, &mut self.device_view) {
            let mut buf = Vec::new();
            for_chunks(offset, size, |at, n| {
                buf.resize(n as usize, 0);
                host.read(at, &mut buf);
                device.write(at, &buf);
            });
            self.stale.remove(offset, offset + size);
        }
    }

    /// Copies device to host view over the range (an invalidate).
    pub(crate) fn invalidate(&mut self, offset: u64, size: u64) {
        if let (Some(host), Some(device)) = (&mut self.host, &self.device_view) {
            let mut buf = Vec::new();
            for_chunks(offset, size, |at, n| {
                buf.resize(n as usize, 0);
                device.read(at, &mut buf);
                host.write(at, &buf);
            });
            self.stale.remove(offset, offset + size);
        }
    }

    /// For non-coherent memory: the first byte of the range, outside device-written bytes,
    /// where host and device views differ (a host write not flushed).
    pub(crate) fn first_unflushed(&self, offset: u64, size: u64) -> Option<u64> {
        let (Some(host), Some(device)) = (&self.host, &self.device_view) else {
            return None;
        };
        let mut host_buf = Vec::new();
        let mut device_buf = Vec::new();
        for (start, end) in self.stale.complement_within(offset, offset + size) {
            let mut found = None;
            for_chunks(start, end - start, |at, n| {
                if found.is_some() {
                    return;
                }
                host_buf.resize(n as usize, 0);
                device_buf.resize(n as usize, 0);
                host.read(at, &mut host_buf);
                device.read(at, &mut device_buf);
                if let Some(i) = host_buf.iter().zip(&device_buf).position(|(a, b)| a != b) {
                    found = Some(at + i as u64);
                }
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Bytes of the object the process really holds (touched sparse pages; host views count in
    /// full, though the OS backs them lazily).
    pub(crate) fn resident_device_bytes(&self) -> u64 {
        self.device_view
            .as_ref()
            .map_or(0, SparseBytes::resident_bytes)
    }
}

/// Hash of a host view range.
pub(crate) fn host_hash(host: &HostBytes, offset: u64, size: u64) -> u64 {
    let mut hasher = RangeHasher::new();
    for_chunks(offset, size, |at, n| {
        host.with_slice(at, n, |bytes| hasher.update(bytes));
    });
    hasher.finish()
}

/// Calls `f(at, n)` over `[offset, offset + size)` in pieces of at most [`CHUNK`] bytes.
pub(crate) fn for_chunks(offset: u64, size: u64, mut f: impl FnMut(u64, u64)) {
    let mut at = offset;
    let end = offset + size;
    while at < end {
        let n = CHUNK.min(end - at);
        f(at, n);
        at += n;
    }
}
