//! What the simulated device looks like (memory types, heaps, limits, buffer requirements) and how
//! it behaves (waiting, misuse handling, leak reports): presets for the GPUs memkit targets, and a
//! builder for anything else.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use memkit_core::device::{
    Compression, DeviceLimits, MemoryHeap, MemoryHeapFlags, MemoryPropertyFlags as P, MemoryType,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// What [`CopyQueue::wait`](memkit_core::device::CopyQueue::wait) does on the simulated device
/// when the value has not completed yet. The test always advances the timeline itself with
/// [`DummyDevice::advance_to`](crate::DummyDevice::advance_to) and friends; the mode only decides
/// what a blocking caller sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WaitMode {
    /// `wait(v)` completes pending submissions in order until the timeline reaches `v`, and
    /// returns `Completed`; if nothing submitted will ever reach `v`, it returns `TimedOut`
    /// at once. For blocking policies (a coordinator that waits for the GPU). Never sleeps.
    #[default]
    Auto,
    /// `wait(v)` returns `Completed` only when the test has already completed `v`, else `TimedOut`
    /// at once. Proves a caller copes with a GPU that is late. Never sleeps.
    Manual,
    /// `wait(v)` really blocks (up to `timeout_ns`) until another thread advances the timeline
    /// to `v`: for tests that run a "GPU thread".
    Block,
}

/// The block-compressed format families a device samples (Vulkan's `textureCompressionBC`,
/// `textureCompressionETC2` and `textureCompressionASTC_LDR`): `create_image` refuses an image
/// of another family with `ImageDescError::Unsupported`, as memkit-vulkan does where the
/// driver's format query lacks the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TextureCompression {
    /// BC1-BC7.
    pub bc: bool,
    /// ETC2 and EAC.
    pub etc2: bool,
    /// ASTC, low dynamic range.
    pub astc_ldr: bool,
}

impl TextureCompression {
    /// BC only: desktop GPUs (NVIDIA's driver on the H200 and lavapipe report this).
    pub const DESKTOP: Self = Self {
        bc: true,
        etc2: false,
        astc_ldr: false,
    };
    /// ETC2 / EAC and ASTC, no BC: what Mali and most Adreno GPUs report.
    pub const MOBILE: Self = Self {
        bc: false,
        etc2: true,
        astc_ldr: true,
    };

    /// Every family: a device no GPU is, for tests that run one format of each on one device.
    pub const ALL: Self = Self {
        bc: true,
        etc2: true,
        astc_ldr: true,
    };

    /// Whether the device samples `family`.
    pub const fn samples(self, family: Compression) -> bool {
        match family {
            Compression::Bc => self.bc,
            Compression::Etc2 => self.etc2,
            Compression::AstcLdr => self.astc_ldr,
        }
    }
}

/// A preset device. [`Preset::ALL`] lists them for tests that run on every preset; names parse
/// from and print as `discrete`, `rebar`, `integrated`, `lavapipe`, `mobile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// A discrete GPU with 8 GiB of VRAM and a 256 MiB host-visible device-local window.
    Discrete,
    /// A discrete GPU with resizable BAR: the H200's five memory types over a 140 GiB heap.
    ResizableBar,
    /// An integrated GPU: one heap, every type device-local.
    Integrated,
    /// lavapipe: one heap, one type that is everything.
    Lavapipe,
    /// A mobile GPU: small heaps, non-coherent host memory with 256-byte atoms, granularity 4096,
    /// 4096 objects at most.
    Mobile,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 5] = [
        Preset::Discrete,
        Preset::ResizableBar,
        Preset::Integrated,
        Preset::Lavapipe,
        Preset::Mobile,
    ];

    /// The short name (`discrete`, `rebar`, `integrated`, `lavapipe`, `mobile`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Discrete => "discrete",
            Self::ResizableBar => "rebar",
            Self::Integrated => "integrated",
            Self::Lavapipe => "lavapipe",
            Self::Mobile => "mobile",
        }
    }

    /// The preset's configuration, to adjust before building the device.
    pub fn config(self) -> DeviceConfig {
        match self {
            Self::Discrete => DeviceConfig::discrete(),
            Self::ResizableBar => DeviceConfig::resizable_bar(),
            Self::Integrated => DeviceConfig::integrated(),
            Self::Lavapipe => DeviceConfig::lavapipe(),
            Self::Mobile => DeviceConfig::mobile(),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a preset's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownPreset;

impl fmt::Display for UnknownPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown preset; expected discrete, rebar, integrated, lavapipe or mobile")
    }
}

impl std::error::Error for UnknownPreset {}

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(UnknownPreset)
    }
}

/// Everything about a simulated device. Fields are public; the `with_*` methods chain.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    /// Shown in leak reports and `memkit probe`.
    pub name: String,
    /// Memory types, indexed as the device indexes them.
    pub memory_types: Vec<MemoryType>,
    /// Heaps.
    pub memory_heaps: Vec<MemoryHeap>,
    /// Limits.
    pub limits: DeviceLimits,
    /// Whether `query_budget` answers (`VK_EXT_memory_budget`).
    pub budget_query: bool,
    /// Whether an allocation that would take a heap's usage above its budget fails with
    /// `OutOfDeviceMemory` (as when another process holds the rest). Heap sizes are always
    /// enforced.
    pub enforce_budget: bool,
    /// Alignment reported for buffers (a power of two).
    pub buffer_alignment: u64,
    /// Alignment reported for optimal (image-like) resources (a power of two).
    pub optimal_alignment: u64,
    /// Memory types buffers may live in (bit `i` for type `i`), intersected with the types
    /// that exist.
    pub buffer_memory_type_bits: u32,
    /// Memory types optimal resources may live in.
    pub optimal_memory_type_bits: u32,
    /// Buffers at least this large report `DedicatedHint::Preferred`.
    pub dedicated_preferred_from: Option<u64>,
    /// Buffers at least this large report `DedicatedHint::Required`.
    pub dedicated_required_from: Option<u64>,
    /// What a blocking `wait` does.
    pub wait_mode: WaitMode,
    /// Whether every submission executes at once (a GPU infinitely fast), instead of waiting for
    /// the test to advance the timeline. For demos and benchmarks; pending-use detectors see
    /// nothing pending then.
    pub complete_on_submit: bool,
    /// Whether a detected misuse panics (after being recorded), for tests that want the stack.
    pub panic_on_misuse: bool,
    /// Whether copies snapshot their source ranges at submit and compare at execution (and host-
    /// visible destinations likewise). Costs two passes over the bytes; on by default.
    pub check_pending_ranges: bool,
    /// What the host sees in non-coherent memory the device wrote until it invalidates:
    /// `Some(byte)` fills those bytes with `byte` (a stale read then shows up in data checks),
    /// `None` leaves the old bytes, as real caches may.
    pub stale_read_fill: Option<u8>,
    /// Whether dropping the last handle prints the leak report to stderr when something leaked,
    /// and the misuses recorded but never taken (see `DummyDevice::take_misuses`).
    pub report_leaks_on_drop: bool,
    /// Host-visible objects stay allocated after `free` up to this many bytes in total (oldest
    /// released first), so a write through a stale mapped pointer hits memory that still exists
    /// and is reported as [`Misuse::HostWriteAfterFree`](crate::Misuse::HostWriteAfterFree)
    /// (objects up to 16 MiB are checked).
    pub freed_mapping_quarantine: u64,
    /// Whether the device has `bufferDeviceAddress`. Without it, `create_buffer` with
    /// `BufferUsage::DEVICE_ADDRESS` and `allocate_memory` with `device_address` fail with
    /// `DeviceError::FeatureNotEnabled`, as memkit-vulkan refuses them on a device created
    /// without the feature.
    pub buffer_device_address: bool,
    /// The largest width and height of a 2D image (`maxImageDimension2D`); `create_image` refuses
    /// larger ones with `ImageDescError::Unsupported`, as memkit-vulkan does.
    pub max_image_dimension_2d: u32,
    /// The largest width, height and depth of a 3D image (`maxImageDimension3D`).
    pub max_image_dimension_3d: u32,
    /// The largest side of a cube-compatible image (`maxImageDimensionCube`), which must be
    /// within [`Self::max_image_dimension_2d`] as well.
    pub max_image_dimension_cube: u32,
    /// The most array layers of an image (`maxImageArrayLayers`).
    pub max_image_array_layers: u32,
    /// The widest framebuffer (`maxFramebufferWidth`): `create_image` refuses an image with
    /// attachment usage (`ImageUsage::ATTACHMENTS`) wider than this with
    /// `ImageDescError::AttachmentBeyondFramebuffer`, as Vulkan requires and memkit-vulkan does.
    /// Real drivers report it equal to `maxImageDimension2D` or below.
    pub max_framebuffer_width: u32,
    /// The tallest framebuffer (`maxFramebufferHeight`), as [`Self::max_framebuffer_width`].
    pub max_framebuffer_height: u32,
    /// The sample counts an image may have, as Vulkan's `VkSampleCountFlags` (the bit of value
    /// `n` set: `n` samples allowed), like `framebufferColorSampleCounts`; `create_image` refuses
    /// other counts with `ImageDescError::Unsupported`. Bit 1 (single-sampled) is always allowed.
    pub image_sample_counts: u32,
    /// The largest image in bytes, as a format's `maxResourceSize` (`VkImageFormatProperties`):
    /// `create_image` refuses an image whose estimate (`ImageDesc::estimated_resource_size`: every
    /// texel of every level, layer and sample, rounded up to `bufferImageGranularity`) is larger,
    /// or overflows, with `ImageDescError::Unsupported`, as memkit-vulkan does with the same
    /// estimate. One figure for every format: the drivers measured report one (see the presets).
    /// Vulkan guarantees at least [`MIN_MAX_RESOURCE_SIZE`].
    pub max_image_resource_size: u64,
    /// The copy queue's image transfer granularity (`minImageTransferGranularity`), which
    /// `ImageCopyQueue::image_copy_granularity` reports and `submit_image_copies` checks regions
    /// against: `[1, 1, 1]` (any box) on every preset, as graphics and compute queues report;
    /// `[8, 8, 1]` and the like model a dedicated transfer queue, and an axis of 0 allows whole
    /// levels only.
    pub image_copy_granularity: [u32; 3],
    /// What an upload without `keep_contents` leaves in the image's bytes it does not write:
    /// `Some(byte)` fills the whole image with `byte` first (the contents are discarded, as a
    /// transition from the undefined layout discards them on a GPU, so reading them shows up in
    /// data checks), `None` leaves the old bytes.
    pub discarded_image_fill: Option<u8>,
    /// The compressed format families `create_image` accepts.
    pub texture_compression: TextureCompression,
}

/// The least `maxResourceSize` Vulkan lets a device report for a supported format (2^31 bytes):
/// an image up to this size fits on every conformant device. [`DeviceConfig::new`]'s default.
pub const MIN_MAX_RESOURCE_SIZE: u64 = 1 << 31;

/// `maxResourceSize` of NVIDIA's driver: 2^40 bytes (1 TiB) for every colour and depth format
/// memkit has, 2D and 3D, sampled or attachment (measured on the H200, driver version
/// `0x9127c100`, 2026-11).
const NVIDIA_MAX_RESOURCE_SIZE: u64 = 1 << 40;

/// `maxResourceSize` of lavapipe: 2^32 - 1 bytes for every format memkit has, 2D and 3D,
/// sampled or attachment (measured here on llvmpipe, Mesa 22.3.6 with LLVM 15.0.6, 2026-11).
/// A 16384 x 16384 `Rgba32Float` texture (2^32 bytes) is one byte over it.
const LAVAPIPE_MAX_RESOURCE_SIZE: u64 = u32::MAX as u64;

fn mem_type(properties: P, heap_index: u32) -> MemoryType {
    MemoryType {
        properties,
        heap_index,
    }
}

fn heap(size: u64, device_local: bool) -> MemoryHeap {
    MemoryHeap {
        size,
        flags: if device_local {
            MemoryHeapFlags::DEVICE_LOCAL
        } else {
            MemoryHeapFlags::empty()
        },
    }
}

impl DeviceConfig {
    /// A custom device: the given types, heaps and limits, with the defaults every preset shares
    /// (budget query on and enforced, buffer alignment 16, optimal alignment 256, all types
    /// allowed, no dedicated hints, `WaitMode::Auto`, misuse recorded without panicking, checks
    /// on, stale reads filled with `0xCD`, leak report on drop, 64 MiB quarantine,
    /// `bufferDeviceAddress` on, images up to 16384 texels in 2D, 2048 in 3D and 2048 layers,
    /// with 1, 2, 4 or 8 samples, framebuffers up to 16384x16384: what most desktop drivers
    /// report; images up to [`MIN_MAX_RESOURCE_SIZE`] bytes, the least Vulkan allows, so what
    /// works here works on every device; image copy granularity `[1, 1, 1]`; discarded image
    /// bytes filled with `0xDD`; BC textures only, as desktop drivers).
    pub fn new(
        name: impl Into<String>,
        memory_types: Vec<MemoryType>,
        memory_heaps: Vec<MemoryHeap>,
        limits: DeviceLimits,
    ) -> Self {
        Self {
            name: name.into(),
            memory_types,
            memory_heaps,
            limits,
            budget_query: true,
            enforce_budget: true,
            buffer_alignment: 16,
            optimal_alignment: 256,
            buffer_memory_type_bits: u32::MAX,
            optimal_memory_type_bits: u32::MAX,
            dedicated_preferred_from: None,
            dedicated_required_from: None,
            wait_mode: WaitMode::Auto,
            complete_on_submit: false,
            panic_on_misuse: false,
            check_pending_ranges: true,
            stale_read_fill: Some(0xCD),
            report_leaks_on_drop: true,
            freed_mapping_quarantine: 64 * MIB,
            buffer_device_address: true,
            max_image_dimension_2d: 16384,
            max_image_dimension_3d: 2048,
            max_image_dimension_cube: 16384,
            max_image_array_layers: 2048,
            max_framebuffer_width: 16384,
            max_framebuffer_height: 16384,
            image_sample_counts: 0b1111,
            max_image_resource_size: MIN_MAX_RESOURCE_SIZE,
            image_copy_granularity: [1, 1, 1],
            discarded_image_fill: Some(0xDD),
            texture_compression: TextureCompression::DESKTOP,
        }
    }

    /// [`Preset::Discrete`]: heaps VRAM 8 GiB, system 16 GiB, BAR 256 MiB; types device-local,
    /// host coherent, host coherent cached, device-local host-visible coherent (the 256 MiB
    /// window); granularity 1024, atom 64, 4096 objects, 4 GiB largest object; buffers of
    /// 64 MiB and up prefer a dedicated object; images as NVIDIA's driver allows them (2D up to
    /// 32768, 3D up to 16384, 2048 layers, 1 TiB in all).
    pub fn discrete() -> Self {
        let types = vec![
            mem_type(P::DEVICE_LOCAL, 0),
            mem_type(P::HOST_VISIBLE | P::HOST_COHERENT, 1),
            mem_type(P::HOST_VISIBLE | P::HOST_COHERENT | P::HOST_CACHED, 1),
            mem_type(P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT, 2),
        ];
        let heaps = vec![
            heap(8 * GIB, true),
            heap(16 * GIB, false),
            heap(256 * MIB, true),
        ];
        let limits = DeviceLimits {
            max_memory_allocation_count: 4096,
            max_memory_allocation_size: 4 * GIB,
            buffer_image_granularity: 1024,
            non_coherent_atom_size: 64,
            min_memory_map_alignment: 64,
            min_buffer_offset_alignment: 256,
        };
        Self::new("dummy discrete GPU (256 MiB BAR)", types, heaps, limits)
            .with_dedicated_preferred_from(Some(64 * MIB))
            .with_max_image_dimensions(32768, 16384, 2048)
            .with_max_image_resource_size(NVIDIA_MAX_RESOURCE_SIZE)
    }

    /// [`Preset::ResizableBar`], the H200 as measured: heaps device 140 GiB and host 64 GiB;
    /// types host (no flags), device-local, host coherent, host coherent cached, and device-local
    /// host-visible coherent over the whole device heap; granularity 1024, atom 64, 4096 objects;
    /// images as NVIDIA's driver allows them (2D up to 32768, 3D up to 16384, 2048 layers, 1 TiB
    /// in all, as measured).
    pub fn resizable_bar() -> Self {
        let types = vec![
            mem_type(P::empty(), 1),
            mem_type(P::DEVICE_LOCAL, 0),
            mem_type(P::HOST_VISIBLE | P::HOST_COHERENT, 1),
            mem_type(P::HOST_VISIBLE | P::HOST_COHERENT | P::HOST_CACHED, 1),
            mem_type(P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT, 0),
        ];
        let heaps = vec![heap(140 * GIB, true), heap(64 * GIB, false)];
        let limits = DeviceLimits {
            max_memory_allocation_count: 4096,
            max_memory_allocation_size: 140 * GIB,
            buffer_image_granularity: 1024,
            non_coherent_atom_size: 64,
            min_memory_map_alignment: 64,
            min_buffer_offset_alignment: 64,
        };
        Self::new(
            "dummy discrete GPU (resizable BAR, H200-like)",
            types,
            heaps,
            limits,
        )
        .with_max_image_dimensions(32768, 16384, 2048)
        .with_max_image_resource_size(NVIDIA_MAX_RESOURCE_SIZE)
    }

    /// [`Preset::Integrated`]: one 8 GiB device-local heap; types device-local, device-local
    /// host-visible coherent, and that plus cached; granularity 64, atom 64; images up to 16384
    /// in 2D, 2048 in 3D, 2048 layers (as Intel's driver reports); images up to
    /// [`MIN_MAX_RESOURCE_SIZE`] bytes (Vulkan's least: no integrated GPU was measured).
    pub fn integrated() -> Self {
        let types = vec![
            mem_type(P::DEVICE_LOCAL, 0),
            mem_type(P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT, 0),
            mem_type(
                P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT | P::HOST_CACHED,
                0,
            ),
        ];
        let limits = DeviceLimits {
            max_memory_allocation_count: 4096,
            max_memory_allocation_size: 4 * GIB,
            buffer_image_granularity: 64,
            non_coherent_atom_size: 64,
            min_memory_map_alignment: 64,
            min_buffer_offset_alignment: 64,
        };
        Self::new(
            "dummy integrated GPU",
            types,
            vec![heap(8 * GIB, true)],
            limits,
        )
    }

    /// [`Preset::Lavapipe`]: one 4 GiB heap with one type, device-local host-visible coherent
    /// cached; granularity 64, atom 64; no budget query; object count unlimited (`u32::MAX`);
    /// images up to 16384 in 2D, 4096 in 3D, 2048 layers, with 1 or 4 samples, 2^32 - 1 bytes in
    /// all (as lavapipe reports them).
    pub fn lavapipe() -> Self {
        let types = vec![mem_type(
            P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT | P::HOST_CACHED,
            0,
        )];
        let limits = DeviceLimits {
            max_memory_allocation_count: u32::MAX,
            max_memory_allocation_size: 2 * GIB,
            buffer_image_granularity: 64,
            non_coherent_atom_size: 64,
            min_memory_map_alignment: 64,
            min_buffer_offset_alignment: 16,
        };
        Self::new(
            "dummy lavapipe-like CPU device",
            types,
            vec![heap(4 * GIB, true)],
            limits,
        )
        .with_budget_query(false)
        .with_max_image_dimensions(16384, 4096, 2048)
        .with_image_sample_counts(0b0101)
        .with_max_image_resource_size(LAVAPIPE_MAX_RESOURCE_SIZE)
    }

    /// [`Preset::Mobile`]: heaps device 512 MiB and host 256 MiB; types device-local,
    /// host-visible cached but not coherent (the only host-visible type), and lazily allocated
    /// (not usable by buffers); granularity 4096, atom 256, 4096 objects, 256 MiB largest object;
    /// no budget query; images up to 16384 in 2D, 2048 in 3D, 2048 layers (as Adreno GPUs
    /// report), up to [`MIN_MAX_RESOURCE_SIZE`] bytes (Vulkan's least: no mobile GPU was
    /// measured); ETC2 / EAC and ASTC textures, no BC ([`TextureCompression::MOBILE`]).
    pub fn mobile() -> Self {
        let types = vec![
            mem_type(P::DEVICE_LOCAL, 0),
            mem_type(P::HOST_VISIBLE | P::HOST_CACHED, 1),
            mem_type(P::DEVICE_LOCAL | P::LAZILY_ALLOCATED, 0),
        ];
        let heaps = vec![heap(512 * MIB, true), heap(256 * MIB, false)];
        let limits = DeviceLimits {
            max_memory_allocation_count: 4096,
            max_memory_allocation_size: 256 * MIB,
            buffer_image_granularity: 4096,
            non_coherent_atom_size: 256,
            min_memory_map_alignment: 64,
            min_buffer_offset_alignment: 64,
        };
        Self::new("dummy mobile GPU", types, heaps, limits)
            .with_budget_query(false)
            .with_buffer_memory_type_bits(0b011)
            .with_texture_compression(TextureCompression::MOBILE)
    }

    /// Sets [`DeviceConfig::name`].
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets [`DeviceConfig::limits`].
    pub fn with_limits(mut self, limits: DeviceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets one heap's size (ignored for a heap that does not exist).
    pub fn with_heap_size(mut self, heap: usize, size: u64) -> Self {
        if let Some(h) = self.memory_heaps.get_mut(heap) {
            h.size = size;
        }
        self
    }

    /// Sets `limits.max_memory_allocation_count`.
    pub fn with_max_memory_allocation_count(mut self, count: u32) -> Self {
        self.limits.max_memory_allocation_count = count;
        self
    }

    /// Sets [`DeviceConfig::budget_query`].
    pub fn with_budget_query(mut self, on: bool) -> Self {
        self.budget_query = on;
        self
    }

    /// Sets [`DeviceConfig::enforce_budget`].
    pub fn with_enforce_budget(mut self, on: bool) -> Self {
        self.enforce_budget = on;
        self
    }

    /// Sets [`DeviceConfig::buffer_alignment`].
    pub fn with_buffer_alignment(mut self, alignment: u64) -> Self {
        self.buffer_alignment = alignment;
        self
    }

    /// Sets [`DeviceConfig::optimal_alignment`].
    pub fn with_optimal_alignment(mut self, alignment: u64) -> Self {
        self.optimal_alignment = alignment;
        self
    }

    /// Sets [`DeviceConfig::buffer_memory_type_bits`].
    pub fn with_buffer_memory_type_bits(mut self, bits: u32) -> Self {
        self.buffer_memory_type_bits = bits;
        self
    }

    /// Sets [`DeviceConfig::optimal_memory_type_bits`].
    pub fn with_optimal_memory_type_bits(mut self, bits: u32) -> Self {
        self.optimal_memory_type_bits = bits;
        self
    }

    /// Sets [`DeviceConfig::dedicated_preferred_from`].
    pub fn with_dedicated_preferred_from(mut self, size: Option<u64>) -> Self {
        self.dedicated_preferred_from = size;
        self
    }

    /// Sets [`DeviceConfig::dedicated_required_from`].
    pub fn with_dedicated_required_from(mut self, size: Option<u64>) -> Self {
        self.dedicated_required_from = size;
        self
    }

    /// Sets [`DeviceConfig::wait_mode`].
    pub fn with_wait_mode(mut self, mode: WaitMode) -> Self {
        self.wait_mode = mode;
        self
    }

    /// Sets [`DeviceConfig::complete_on_submit`].
    pub fn with_complete_on_submit(mut self, on: bool) -> Self {
        self.complete_on_submit = on;
        self
    }

    /// Sets [`DeviceConfig::panic_on_misuse`].
    pub fn with_panic_on_misuse(mut self, on: bool) -> Self {
        self.panic_on_misuse = on;
        self
    }

    /// Sets [`DeviceConfig::check_pending_ranges`].
    pub fn with_check_pending_ranges(mut self, on: bool) -> Self {
        self.check_pending_ranges = on;
        self
    }

    /// Sets [`DeviceConfig::stale_read_fill`].
    pub fn with_stale_read_fill(mut self, fill: Option<u8>) -> Self {
        self.stale_read_fill = fill;
        self
    }

    /// Sets [`DeviceConfig::report_leaks_on_drop`].
    pub fn with_report_leaks_on_drop(mut self, on: bool) -> Self {
        self.report_leaks_on_drop = on;
        self
    }

    /// Sets [`DeviceConfig::freed_mapping_quarantine`].
    pub fn with_freed_mapping_quarantine(mut self, bytes: u64) -> Self {
        self.freed_mapping_quarantine = bytes;
        self
    }

    /// Sets [`DeviceConfig::buffer_device_address`].
    pub fn with_buffer_device_address(mut self, on: bool) -> Self {
        self.buffer_device_address = on;
        self
    }

    /// Sets [`DeviceConfig::max_image_resource_size`] (bytes).
    pub fn with_max_image_resource_size(mut self, bytes: u64) -> Self {
        self.max_image_resource_size = bytes;
        self
    }

    /// Sets [`DeviceConfig::image_copy_granularity`].
    pub fn with_image_copy_granularity(mut self, granularity: [u32; 3]) -> Self {
        self.image_copy_granularity = granularity;
        self
    }

    /// Sets [`DeviceConfig::discarded_image_fill`].
    pub fn with_discarded_image_fill(mut self, fill: Option<u8>) -> Self {
        self.discarded_image_fill = fill;
        self
    }

    /// Sets [`DeviceConfig::texture_compression`].
    pub fn with_texture_compression(mut self, families: TextureCompression) -> Self {
        self.texture_compression = families;
        self
    }

    /// Sets [`DeviceConfig::image_sample_counts`] (single-sampled images stay allowed).
    pub fn with_image_sample_counts(mut self, counts: u32) -> Self {
        self.image_sample_counts = counts | 1;
        self
    }

    /// Sets [`DeviceConfig::max_image_dimension_2d`], [`DeviceConfig::max_image_dimension_3d`]
    /// and [`DeviceConfig::max_image_array_layers`], and the cube side
    /// ([`DeviceConfig::max_image_dimension_cube`]) and the framebuffer extent
    /// ([`DeviceConfig::max_framebuffer_width`] and height) to `max_2d`, as desktop drivers
    /// report them; [`with_max_image_dimension_cube`](Self::with_max_image_dimension_cube) and
    /// [`with_max_framebuffer_extent`](Self::with_max_framebuffer_extent) after this set smaller
    /// ones.
    pub fn with_max_image_dimensions(mut self, max_2d: u32, max_3d: u32, max_layers: u32) -> Self {
        self.max_image_dimension_2d = max_2d;
        self.max_image_dimension_3d = max_3d;
        self.max_image_dimension_cube = max_2d;
        self.max_image_array_layers = max_layers;
        self.max_framebuffer_width = max_2d;
        self.max_framebuffer_height = max_2d;
        self
    }

    /// Sets [`DeviceConfig::max_image_dimension_cube`].
    pub fn with_max_image_dimension_cube(mut self, max_side: u32) -> Self {
        self.max_image_dimension_cube = max_side;
        self
    }

    /// Sets [`DeviceConfig::max_framebuffer_width`] and
    /// [`DeviceConfig::max_framebuffer_height`].
    pub fn with_max_framebuffer_extent(mut self, width: u32, height: u32) -> Self {
        self.max_framebuffer_width = width;
        self.max_framebuffer_height = height;
        self
    }
}
