#!/usr/bin/env bash
# Every GPU figure in BENCHMARKS.md in one command, on a machine with an NVIDIA GPU (the H200
# device machine), from release binaries built elsewhere and placed in .bin/:
#
#   scripts/gpu-bench.sh build          # here: builds the binaries into .bin/
#   scripts/gpu-bench.sh run OUTDIR     # there: runs them, figures and logs into OUTDIR
#
# `run` unpacks the Vulkan loader from .gl/*.deb when the machine has none (../shared/GPU.md),
# measures the bus limit with PyTorch's pinned copy before and after (when PyTorch is there),
# then runs each binary that exists: the upload benchmark (memkit and the raw Vulkan paths), the
# wgpu peer, the memkit command's bench on Vulkan, the pools against gpu-alloc and gpu-allocator
# on the GPU's driver, and the CPU-only ring and pool benchmarks on the machine's many cores.
set -uo pipefail
cd "$(dirname "$0")/.."

build() {
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/gpu-bench}"
    mkdir -p .bin
    local bench
    for bench in uploads ring pools pools_device allocators; do
        cargo bench -p memkit-tests --bench "$bench" --no-run --locked || exit 1
        cp "$(ls -t "$CARGO_TARGET_DIR"/release/deps/"$bench"-* | grep -v '\.d$' | head -1)" ".bin/$bench"
    done
    cargo build --release -p memkit-std --features cli --locked || exit 1
    cp "$CARGO_TARGET_DIR/release/memkit" .bin/memkit
    if [ -f tests/wgpu-peer/Cargo.toml ]; then
        (cd tests/wgpu-peer && cargo build --release --locked) || exit 1
        cp "$CARGO_TARGET_DIR/release/wgpu-peer" .bin/wgpu-peer
    fi
    # The device machine takes at most 64 MiB of carried files.
    strip --strip-debug .bin/*
    ls -l .bin
}

pinned() {
    python3 -c "import torch,time; n=256<<20; h=torch.empty(n,dtype=torch.uint8).pin_memory(); d=torch.empty(n,dtype=torch.uint8,device='cuda'); [d.copy_(h) for _ in range(3)]; torch.cuda.synchronize(); s=time.perf_counter(); [d.copy_(h,non_blocking=True) for _ in range(10)]; torch.cuda.synchronize(); print('pinned H2D GB/s', 10*n/(time.perf_counter()-s)/1e9)" 2>&1 | tail -1
}

run() {
    local out="$1"
    mkdir -p "$out"
    if ! ldconfig -p | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
    nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current \
        --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt"
    pinned | tee "$out/pinned.txt"
    [ -x .bin/uploads ] && .bin/uploads --json "$out/uploads.json" > "$out/uploads.txt" 2>&1
    [ -x .bin/wgpu-peer ] && .bin/wgpu-peer --json "$out/wgpu.json" > "$out/wgpu.txt" 2>&1
    [ -x .bin/memkit ] && .bin/memkit bench --device vulkan --quick > "$out/memkit-bench.txt" 2>&1
    [ -x .bin/ring ] && .bin/ring > "$out/ring.txt" 2>&1
    [ -x .bin/pools ] && .bin/pools > "$out/pools.txt" 2>&1
    [ -x .bin/pools_device ] && .bin/pools_device > "$out/pools_device.txt" 2>&1
    [ -x .bin/allocators ] && .bin/allocators > "$out/allocators.txt" 2>&1
    pinned | tee -a "$out/pinned.txt"
    tail -n 3 "$out"/*.txt
}

case "${1:-}" in
    build) build ;;
    run) run "${2:?usage: scripts/gpu-bench.sh run OUTDIR}" ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
