//! Reading a buffer or an image back: the GPU copies a range of any buffer the coordinator made
//! (device-local ones included), or regions of an image it uploaded into, into a host-visible
//! buffer of its own, in order after the uploads made before, and the caller takes the bytes once
//! the copy completed ([`Readback`]).
//!
//! What is staged goes out first, so the read sees every upload made before the call. The copy
//! is then recorded, and read-backs asked for one after another with no upload between them share
//! one submission (the cost of a submission is most of a small read-back's). The batch goes out
//! before any upload staged after it, once it reads `read_back_submit_bytes`, or when anything
//! is flushed or waited for. Its value becomes the last use of every buffer it names, and until it
//! is submitted a count on each buffer keeps it from being destroyed, so no handle dropped early
//! frees memory under a copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use memkit_core::MemoryUsage;
use memkit_core::device::{
    BufferCopy, ImageCopy, ImageCopyError, ImageCopyQueue, ImageFormat, ImageReadCommand,
};

use super::image_pieces::for_each_buffer_run;
use super::landing_cache::{LandingCache, landing_class};
use super::{Coordinator, Recorded, Shared, Submitter};
use crate::buffer::{Buffer, BufferState, COUNTER};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::readback::Readback;
use crate::ticket::{HeldGrantWatch, Ticket, TimelineSource};

impl<D: Device> Coordinator<D> {
    /// Copies `size` bytes of `buffer` from `offset` into host-visible memory on the GPU, and
    /// returns the [`Readback`] to take them from once the copy completed: how the CPU reads a
    /// device-local buffer (compute results, GPU-written counters, a test's check). Never blocks
    /// on the GPU.
    ///
    /// The copy is recorded, and submitted together with the read-backs asked for right after it:
    /// ask for every range first, then wait, and a thousand small reads cost a few submissions.
    /// The batch goes out when a wait or [`Readback::is_ready`] needs it, when it reads
    /// [`crate::CoordinatorConfig::read_back_submit_bytes`] (a large read starts at once), before
    /// any later upload, and on any flush ([`Coordinator::flush_transfers`], a frame's end).
    ///
    /// Order: every upload made before the call is submitted first, so the bytes read are the
    /// ones those uploads wrote, and none this thread makes after the call. An upload whose
    /// staging room lies behind a [`crate::StagingGrant`] another thread is writing drains once
    /// that grant is committed, and the call waits for it (the host's wait, never the GPU's).
    /// Writes by the application's own GPU work are seen when that work completed, or was
    /// ordered before the coordinator's later submissions with
    /// [`Coordinator::wait_for_external`], before the call; on Vulkan its writes must also be
    /// made available to transfer reads (a barrier at the end of that work, or the timeline
    /// wait). GPU work that writes the range while the copy runs makes the bytes undefined.
    ///
    /// The landing buffer comes from those kept from dropped read-backs when one of about the
    /// size is there ([`crate::CoordinatorConfig::read_back_cache_bytes`]); read the bytes with
    /// [`Readback::wait_into`] into memory of your own to skip the `Vec` [`Readback::wait`]
    /// makes.
    ///
    /// The source buffer may be dropped right after the call: it is destroyed only once the
    /// copy completed.
    ///
    /// Errors: [`Error::ZeroSize`], [`Error::OutOfBounds`], [`Error::ForeignBuffer`],
    /// [`Error::DeviceLost`], [`Error::BlockedByHeldGrant`] when such a grant stays held for
    /// [`crate::CoordinatorConfig::held_room_timeout`] (by this thread, say), and those of
    /// [`Coordinator::create_buffer`] (no host-visible memory left for the landing buffer) and
    /// [`Coordinator::flush_transfers`].
    pub fn read_back(&self, buffer: &Buffer<D>, offset: u64, size: u64) -> Result<Readback<D>> {
        self.shared.check_owner(buffer)?;
        self.shared.read_back(&buffer.state, offset, size)
    }
}

impl<D: Device + ImageCopyQueue> Coordinator<D> {
    /// Copies texels of `image` into host-visible memory on the GPU, and returns the
    /// [`Readback`] to take them from once the copy completed: how the CPU reads an image back
    /// (a test's or a tool's check of what landed, a screenshot of a texture, a compute result
    /// in a storage image). Never blocks on the GPU.
    ///
    /// Each region names a box of one mip level and its array layers, and where its texels go in
    /// the read-back's bytes: from its `buffer_offset`, tightly packed or at the row length and
    /// image height it names ([`ImageCopy::with_buffer_layout`]), as an upload reads them. The
    /// regions an upload took give back the bytes it was given, laid out the same way;
    /// [`ImageCopy::whole_level`] with offset 0 gives one level, packed. The read-back is as long
    /// as the furthest region's end; bytes no region writes are unspecified.
    ///
    /// The image needs [`ImageUsage::TRANSFER_SRC`] in its description, and an upload into it
    /// made before the call (which leaves it in [`Image::layout_after_upload`]), or the
    /// application's word that its own work wrote it and left it there
    /// ([`Image::mark_written`]: how a render target is read back): the copy moves it to the
    /// transfer layout and back, after every upload made before the call and before any made
    /// after. The application keeps its own GPU work off the image while the copy runs, as for
    /// uploads; what it wrote into the image is read only if it left the image in the layout
    /// after upload, its work completed (or was ordered before the coordinator's later
    /// submissions with [`Coordinator::wait_for_external`]) and its writes were made available.
    /// A depth or stencil target of one aspect (`D16Unorm`, `D32Float`, `S8Uint`) is read the
    /// same way, its texels as the format stores them (a depth value under the cursor, for
    /// picking); one with both aspects is refused.
    ///
    /// The copy goes out at once, in a submission of its own, after whatever is staged and the
    /// buffer read-backs recorded before it. Its landing buffer comes from those kept from
    /// dropped read-backs, as for [`Coordinator::read_back`]. The image may be dropped right
    /// after the call: it is destroyed only once the copy completed.
    ///
    /// Errors: [`Error::ZeroSize`] for no regions, [`Error::ForeignImage`], [`Error::ImageCopy`]
    /// for a region that breaks a copy rule ([`ImageCopy::check_read`], with the device's
    /// granularity; a `buffer_offset` must be a multiple of the format's
    /// [`copy_offset_alignment`](memkit_core::device::ImageFormat::copy_offset_alignment)),
    /// [`Error::OverlappingImageRegions`] when two regions' bytes overlap,
    /// [`Error::ImageNotWritten`] before any upload into the image (or [`Image::mark_written`]),
    /// [`Error::DeviceLost`],
    /// [`Error::Device`] when the device refuses the submission, and those of
    /// [`Coordinator::read_back`] for the landing buffer and the flush before the copy.
    ///
    /// ```
    /// use memkit_core::MemoryUsage;
    /// use memkit_core::device::{ImageCopy, ImageDesc, ImageFormat, ImageUsage};
    /// use memkit_dummy::DummyDevice;
    /// use memkit_std::{Coordinator, CoordinatorConfig};
    ///
    /// let gpu = DummyDevice::discrete();
    /// let coordinator = Coordinator::new(gpu, CoordinatorConfig::default()).unwrap();
    /// let usage = ImageUsage::SAMPLED | ImageUsage::TRANSFER_SRC;
    /// let desc = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 4, 2, usage);
    /// let texels: Vec<u8> = (0..32).collect();
    /// let (image, _) = coordinator
    ///     .create_image_with_data(&desc, MemoryUsage::FAST_DEVICE_ACCESS, &texels)
    ///     .unwrap();
    /// // The second row, alone.
    /// let row = ImageCopy {
    ///     offset: [0, 1, 0],
    ///     extent: [4, 1, 1],
    ///     ..ImageCopy::whole_level(image.desc(), 0, 0)
    /// };
    /// let readback = coordinator.read_back_image(&image, &[row]).unwrap();
    /// assert_eq!(readback.wait().unwrap(), texels[16..]);
    /// ```
    ///
    /// [`ImageUsage::TRANSFER_SRC`]: memkit_core::device::ImageUsage::TRANSFER_SRC
    pub fn read_back_image(&self, image: &Image<D>, regions: &[ImageCopy]) -> Result<Readback<D>> {
        self.shared.read_back_image(image, regions)
    }
}

impl<D: Device + ImageCopyQueue> Shared<D> {
    /// [`Coordinator::read_back_image`].
    fn read_back_image(
        self: &Arc<Self>,
        image: &Image<D>,
        regions: &[ImageCopy],
    ) -> Result<Readback<D>> {
        self.check_image_call(image, regions)?;
        let state = &image.state;
        let desc = state.desc;
        let granularity = self.device.image_copy_granularity();
        let mut size = 0u64;
        let mut texel_bytes = 0u64;
        for region in regions {
            region
                .check_read(&desc, granularity)
                .map_err(Error::ImageCopy)?;
            // Both fit in a u64 (checked); their sum may not.
            let span = region.buffer_bytes(desc.format).unwrap_or(u64::MAX);
            let end = region
                .buffer_offset
                .checked_add(span)
                .ok_or(Error::ImageCopy(ImageCopyError::OutOfBounds))?;
            size = size.max(end);
            // Regions may read the same texels any number of times: no bound on the sum.
            texel_bytes = texel_bytes.saturating_add(region.packed_bytes(desc.format).unwrap_or(0));
        }
        if destinations_overlap(regions, desc.format) {
            return Err(Error::OverlappingImageRegions);
        }
        // Set once an upload into it was submitted (the queue runs the copy after it), or by the
        // application's `Image::mark_written` (its contract orders its work before the copy).
        if !state.written.load(Ordering::Acquire) {
            return Err(Error::ImageNotWritten);
        }
        // From here on, an early return gives the landing buffer back through the read-back's
        // drop.
        let mut readback = Readback {
            shared: Arc::clone(self),
            landing: Some(self.landing(size)?),
            size,
            ticket: Ticket::completed(),
        };
        let landing = readback.landing.as_ref().expect("just set");
        // What is staged and the buffer read-backs recorded go first, and a refused value is
        // signalled first.
        let mut sub = self.submitter_for_image(state)?;
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => return Err(Error::DeviceLost),
        };
        let command = ImageReadCommand {
            src: state.raw,
            desc,
            dst: landing.raw,
            regions,
        };
        // SAFETY: the image and the landing buffer are alive and bound, and stay so until the
        // value completes (a dropped image is destroyed only once its `last_use`, set below,
        // completed; the read-back holds the landing buffer, and a kept one is written again
        // only by copies submitted after this one); `desc` is the image's; each region passed
        // `check_read` against it and the queue's granularity, its bytes lie inside the landing
        // buffer (sized to the furthest end) and no two overlap; an upload into the image was
        // submitted before on this queue (`written`), which left it in its layout after upload,
        // or the application's work did and was ordered before this copy (`mark_written`'s
        // contract), and the application keeps its own work off it (as for uploads); the
        // tracker hands out increasing values, submitted under the submitter's lock.
        let submitted = unsafe { self.device.submit_image_reads(&[command], value) };
        if let Err(e) = submitted {
            return Err(self.refused(&mut sub, value, e));
        }
        state.last_use.store(value, COUNTER);
        landing.last_use.store(value, COUNTER);
        // The copy's layout transitions may write the image's memory. (Any image sharing its
        // bytes was undefined already when this one was written: this keeps it so.)
        state.undefine_aliases();
        drop(sub);
        self.counters.submissions.fetch_add(1, COUNTER);
        self.counters.read_backs.fetch_add(1, COUNTER);
        self.counters
            .bytes_read_back
            .fetch_add(texel_bytes, COUNTER);
        readback.ticket = self.ticket_for_value(value);
        Ok(readback)
    }
}

/// Whether two runs of bytes the regions write into the read-back overlap (runs, not spans:
/// regions with longer rows may interleave, as two halves of a picture do).
fn destinations_overlap(regions: &[ImageCopy], format: ImageFormat) -> bool {
    let mut runs = Vec::new();
    for region in regions {
        for_each_buffer_run(region, format, |_, from, len| runs.push((from, from + len)));
    }
    runs.sort_unstable();
    runs.windows(2).any(|w| w[1].0 < w[0].1)
}

impl<D: Device> Shared<D> {
    /// [`Coordinator::read_back`] of `source`, a buffer of this coordinator.
    fn read_back(
        self: &Arc<Self>,
        source: &Arc<BufferState<D>>,
        offset: u64,
        size: u64,
    ) -> Result<Readback<D>> {
        self.check_live()?;
        self.check_range(source, offset, size)?;
        // Taken before the submitter is: creation takes the pools' lock, and a failure here
        // leaves nothing submitted. From here on, an early return gives the landing buffer
        // back through the read-back's drop.
        let mut readback = Readback {
            shared: Arc::clone(self),
            landing: Some(self.landing(size)?),
            size,
            ticket: Ticket::completed(),
        };
        let landing = Arc::clone(readback.landing.as_ref().expect("just set"));
        // Uploads staged before the call go out first: the copy reads what they wrote. One whose
        // ring range lies behind a grant another thread is still writing (or holds) drains only
        // once that grant is committed: wait for it, as an upload's ticket does, so that the
        // copy comes after it and before anything this thread uploads next. Read-backs recorded
        // before stay open when no upload went out behind them: this one joins them.
        let mut sub = self.submit_staged_before_now()?;
        // What it held was lost to a resource sharing its bytes: checked under the submitter's
        // lock, where uploads into those resources change it.
        self.check_not_overwritten(source)?;
        // Every upload staged before the call is in a submission now, and none after it is: the
        // scheduler is empty, so the batch goes out before any upload collected from here on.
        let reads = sub.reads.get_or_insert_with(OpenReads::default);
        let at = reads.recorded.regions.len();
        reads.recorded.regions.push(BufferCopy {
            src_offset: offset,
            dst_offset: 0,
            size,
        });
        reads
            .recorded
            .commands
            .push((source.raw, landing.raw, at..at + 1));
        // Both buffers' last use becomes the batch's value when it is submitted; until then
        // `unsubmitted_reads` keeps them from being destroyed (or written directly).
        for state in [source, &landing] {
            state.unsubmitted_reads.fetch_add(1, Ordering::Release);
        }
        reads.recorded.destinations.push(Arc::clone(source));
        reads.recorded.destinations.push(landing);
        reads.bytes += size;
        let slot = Arc::clone(reads.recorded.read_slot.as_ref().expect("a batch's slot"));
        if reads.bytes >= self.config.read_back_submit_bytes
            || reads.recorded.commands.len() >= READ_BATCH_COPIES
        {
            // Copying this many bytes costs far more than a submission, and this many small
            // copies are worth starting while more are asked for: the GPU starts on them now.
            self.submit_reads(&mut sub)?;
        }
        drop(sub);
        self.counters.read_backs.fetch_add(1, COUNTER);
        self.counters.bytes_read_back.fetch_add(size, COUNTER);
        readback.ticket = Ticket::for_batch(slot, Arc::clone(self) as Arc<dyn TimelineSource>);
        Ok(readback)
    }

    /// Submits every upload staged before the call, even one whose ring range lies behind a
    /// grant another thread is still writing (or holds): waits for that grant to be committed,
    /// as an upload's ticket does, so that what comes next goes out after it. Read-back copies
    /// recorded before stay open when no upload went out behind them. Returns with the
    /// submitter's lock held, the scheduler empty.
    ///
    /// Errors: [`Error::BlockedByHeldGrant`] when the grant stays held past
    /// `held_room_timeout` (a grant held by the calling thread itself), [`Error::DeviceLost`],
    /// or the flush's.
    pub(super) fn submit_staged_before_now(&self) -> Result<MutexGuard<'_, Submitter<D>>> {
        let bound = self.lock_pending().next_seq;
        let mut held = HeldGrantWatch::default();
        loop {
            let mut sub = self.lock_submitter();
            if self.shut_down.load(Ordering::Acquire) {
                return Err(Error::DeviceLost);
            }
            self.flush_with(&mut sub, Reads::Keep)?;
            if self.lock_pending().watermark() >= bound {
                return Ok(sub);
            }
            drop(sub);
            held.check(self.staging_progress(), self.config.held_room_timeout)?;
            std::thread::yield_now();
        }
    }

    /// Submits the read-back copies recorded and not submitted yet, if any, with the next value.
    /// The caller submitted every upload collected before them (a refused submission included),
    /// and none collected after them is submitted yet.
    ///
    /// A refused submission is kept and retried first next time, holding the buffers until it
    /// went out (a landing buffer given back meanwhile is written by it before any later
    /// read-back's copy).
    pub(super) fn submit_reads(&self, sub: &mut Submitter<D>) -> Result<()> {
        let Some(reads) = sub.reads.take() else {
            return Ok(());
        };
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => return Err(Error::DeviceLost),
        };
        // Ring ranges drained and not submitted are in the scheduler, behind this submission:
        // the value tags the ring only when there are none.
        let tag = sub.scheduler.pending() == 0;
        self.submit_recorded(sub, value, reads.recorded, tag)
    }

    /// Before the host writes `dest` directly (a direct-write buffer, which no staged copy
    /// writes): waits until every read-back of it asked for so far completed, so that they read
    /// the bytes from before the write. Read-backs are the only GPU work memkit puts on such a
    /// buffer; two atomic loads when none is pending.
    pub(super) fn wait_for_reads_of(&self, dest: &BufferState<D>) -> Result<()> {
        if dest.unsubmitted_reads.load(Ordering::Acquire) > 0 {
            self.flush()?;
        }
        let last = dest.last_use.load(Ordering::Acquire);
        while last > self.timeline.completed().get() {
            // A device may answer "timed out" early (a simulated GPU advanced by another
            // thread): ask again after a pause, as a ticket's wait does.
            if !self.wait_polled(last, Duration::from_millis(100))? {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    }

    /// A host-visible buffer of at least `size` bytes for a read-back to land in: a kept one
    /// when the cache has one that fits ([`LandingCache::take`]), else a new one of its size
    /// class (of `size` itself past `read_back_cache_bytes`: never kept).
    ///
    /// Errors: those of buffer creation, and [`Error::NotHostVisible`] on a device without
    /// host-visible memory.
    fn landing(&self, size: u64) -> Result<Arc<BufferState<D>>> {
        let class = landing_class(size).filter(|&c| c <= self.config.read_back_cache_bytes);
        if let Some(class) = class {
            let taken = self.lock_landings().take(class, Instant::now());
            if let Some(landing) = taken {
                self.counters.read_back_buffers_reused.fetch_add(1, COUNTER);
                return Ok(landing);
            }
        }
        let landing =
            self.create_live_state(class.unwrap_or(size), MemoryUsage::DOWNLOAD, false)?;
        if landing.host.is_none() {
            // Nothing could read the bytes. The buffer was never used: destroyed at once by the
            // next maintenance.
            self.retire(landing);
            return Err(Error::NotHostVisible);
        }
        self.lock_landings().hand_out(landing.size, Instant::now());
        Ok(landing)
    }

    /// Takes back the landing buffer of a dropped [`Readback`]: kept for a later read-back when
    /// the cache keeps it, and the longest-kept ones retired (destroyed once their copies
    /// completed) to stay within what the cache keeps now ([`LandingCache`]). A later copy into
    /// a kept one is submitted after the copy that wrote it last, and nothing reads it in
    /// between, so it may be handed out before that copy completed.
    pub(crate) fn keep_landing(&self, landing: Arc<BufferState<D>>) {
        let keep =
            !self.shut_down.load(Ordering::Acquire) && !landing.destroyed.load(Ordering::Acquire);
        let size = landing.size;
        let evicted = self
            .lock_landings()
            .give_back(size, landing, keep, Instant::now());
        // Retired outside the lock.
        for buffer in evicted {
            self.retire(buffer);
        }
    }

    /// Retires the kept landing buffers no read-back needed lately (on every maintenance).
    pub(super) fn trim_landings(&self) {
        let evicted = self.lock_landings().trim(Instant::now());
        for buffer in evicted {
            self.retire(buffer);
        }
    }

    /// Retires every kept landing buffer, so that the memory they hold can be freed for a buffer
    /// or image that found no room. Returns whether there was any.
    pub(super) fn give_up_landings(&self) -> bool {
        let kept = self.lock_landings().take_all();
        let any = !kept.is_empty();
        for buffer in kept {
            self.retire(buffer);
        }
        any
    }

    pub(super) fn lock_landings(&self) -> MutexGuard<'_, LandingCache<Arc<BufferState<D>>>> {
        self.landings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Read-back copies recorded and not submitted yet ([`Submitter::reads`]): one submission for
/// many read-backs, as wgpu users record many copies into one encoder. They go out before any
/// upload collected after them, when they reach `read_back_submit_bytes`, and whenever anything
/// is flushed (a ticket's wait, [`Coordinator::flush_transfers`], a frame's end).
pub(super) struct OpenReads<D: Device> {
    /// The copies, with both buffers of each in `destinations`, and the batch's ticket slot.
    recorded: Recorded<D>,
    /// Bytes the copies read.
    bytes: u64,
}

impl<D: Device> Default for OpenReads<D> {
    fn default() -> Self {
        Self {
            recorded: Recorded {
                read_slot: Some(Arc::new(AtomicU64::new(0))),
                ..Recorded::empty()
            },
            bytes: 0,
        }
    }
}

/// Read-back copies in one batch at most: the batch goes out at this many even when they read
/// few bytes, so that the GPU copies small reads while later ones are asked for. On an H200,
/// 1024 reads of 4 KiB took 3.8 us each in batches of 256 and 5.8 us in one batch.
const READ_BATCH_COPIES: usize = 256;

/// Whether a flush submits the read-back copies recorded so far when no upload goes out behind
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reads {
    /// Submit them: someone waits for them, or for everything recorded.
    Submit,
    /// Keep them for the next read-back to join (they still go first when uploads go out).
    Keep,
}
