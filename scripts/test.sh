#!/usr/bin/env bash
# memkit's whole test suite: every gate CI runs, in one command, from a clean clone.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh fmt clippy # only the named gates
#
# It installs what it needs: rustup targets and components, cargo-fuzz, and (as root, through
# apt-get) lavapipe and the Khronos validation layer for the Vulkan tests.
set -euo pipefail
cd "$(dirname "$0")/.."

NO_STD_TARGETS=(thumbv7em-none-eabihf aarch64-unknown-none)
# Core's unit tests also run on a 32-bit host target: usize is 32 bits there, as on the 32-bit
# consoles and microcontrollers core is for, and sums that fit in 64 bits can overflow it.
HOST32_TARGET=i686-unknown-linux-gnu
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==== %s ====\n' "$*"; }

install() {
    step "install: rustup targets and components, cargo-fuzz, Vulkan packages"
    rustup component add rustfmt clippy
    rustup target add "${NO_STD_TARGETS[@]}" "$HOST32_TARGET"
    rustup toolchain install nightly --profile minimal --component miri,rust-src
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    # gcc-multilib links the 32-bit test binary.
    local pkgs=(mesa-vulkan-drivers libvulkan1 vulkan-tools vulkan-validationlayers gcc-multilib)
    if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
        else
            echo "not root: install ${pkgs[*]} yourself for the Vulkan tests" >&2
            exit 1
        fi
    fi
}

fmt() {
    step "rustfmt"
    cargo fmt --all -- --check
    (cd fuzz && cargo fmt -- --check)
    # tests/wgpu-peer (the wgpu upload benchmark) has its own workspace so CI never builds wgpu's
    # 100-plus crates; its format is checked here (no download needed), it is built by hand.
    (cd tests/wgpu-peer && cargo fmt -- --check)
}

clippy() {
    step "clippy -D warnings"
    cargo clippy --workspace --all-targets --locked -- -D warnings
}

tests() {
    step "tests (workspace)"
    cargo test --workspace --locked
    step "core's host-memory backend example, end to end (it exits non-zero on a wrong byte)"
    cargo run -p memkit-core --example host_backend --locked
    step "memkit-core's unit tests on $HOST32_TARGET (32-bit usize)"
    cargo test -p memkit-core --lib --locked --target "$HOST32_TARGET"
    step "memkit-core's unit tests with the 64-bit values behind the lock (as on thumbv7em)"
    RUSTFLAGS="--cfg memkit_value64_lock" CARGO_TARGET_DIR=target/value64-lock \
        cargo test -p memkit-core --lib --locked
}

no_std() {
    step "memkit-core for bare-metal targets"
    for t in "${NO_STD_TARGETS[@]}"; do
        RUSTFLAGS="-D warnings" cargo build -p memkit-core --locked --target "$t"
    done
}

loom() {
    step "loom (bounded preemptions)"
    # Twice: with 64-bit atomics, then with the lock fallback for 64-bit values (targets without
    # them). Each its own target dir: a --cfg changes every crate's fingerprint.
    local cfgs dir
    for cfgs in "loom:--cfg loom" "loom-value64:--cfg loom --cfg memkit_value64_lock"; do
        dir=${cfgs%%:*}
        RUSTFLAGS="${cfgs#*:}" LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2} \
            CARGO_TARGET_DIR="target/$dir" \
            cargo test -p memkit-core --profile loom --locked --lib -- loom
    done
}

miri() {
    step "Miri over memkit-core"
    MIRIFLAGS="-Zmiri-strict-provenance" \
        cargo +nightly miri test -p memkit-core --locked --lib
    # memkit-dummy's one unsafe module: the mapped bytes behind host-visible memory.
    MIRIFLAGS="-Zmiri-strict-provenance" \
        cargo +nightly miri test -p memkit-dummy --locked --lib -- host_bytes
}

tsan() {
    step "ThreadSanitizer over the tests that run threads"
    # std rebuilt instrumented (-Zbuild-std, rust-src), for the host target only; its own target
    # dir: the sanitizer changes every crate's fingerprint. allocator_may_return_null: some tests
    # ask for absurd sizes and expect a typed error, not the sanitizer's abort.
    # The suppressions file: the Vulkan validation layer, which some Vulkan tests turn on, is not
    # instrumented (see the file).
    local host run icd
    host=$(rustc +nightly -vV | sed -n 's/^host: //p')
    run=(env RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR=target/tsan
        TSAN_OPTIONS="halt_on_error=1 allocator_may_return_null=1 suppressions=$PWD/scripts/tsan-suppressions.txt"
        cargo +nightly test -Zbuild-std --target "$host" --locked)
    # The ring's producers and consumer, and concurrent timeline submitters.
    "${run[@]}" -p memkit-core --lib -- ring:: timeline::
    # The simulated device shared between threads (its mapped bytes are raw memory).
    "${run[@]}" -p memkit-dummy --test threads --test timeline
    # The coordinator from many threads, and frames' transient writers on threads of their own.
    # The two skipped tests are single-threaded and slow here.
    "${run[@]}" -p memkit-std --lib --test threads --test uploads --test transient -- \
        --skip many_buffers_fill_blocks --skip chunked_upload_counts_once
    # memkit-vulkan's tests that run threads, on lavapipe (the coordinator's producers, waiters
    # and pollers beside a submitter, a loss waking a waiter).
    icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n 1)
    MEMKIT_REQUIRE_VULKAN=1 VK_DRIVER_FILES="$icd" "${run[@]}" -p memkit-vulkan \
        --test coordinator --test copy --test lost_device -- --test-threads=1 \
        four_producers a_64_kib_ring_wraps a_waited_ticket threads_wait_and_poll a_loss_wakes
}

fuzz() {
    step "fuzz smoke runs (${FUZZ_SECONDS}s each)"
    local target
    for target in $(cd fuzz && cargo +nightly fuzz list); do
        # Committed seeds (fuzz/seeds/<target>/) are read after the corpus directory, the first
        # named, which libFuzzer writes to; naming any directory makes cargo fuzz name both.
        local corpora=()
        if [ -d "fuzz/seeds/$target" ]; then
            mkdir -p "fuzz/corpus/$target"
            corpora=("corpus/$target" "seeds/$target")
        fi
        # The run's output is kept whole so that a failure shows which target failed, libFuzzer's
        # report and the failing input (as base64), not only the last lines of a backtrace.
        local log="fuzz/artifacts/smoke-$target.log" status=0
        mkdir -p fuzz/artifacts
        (cd fuzz && cargo +nightly fuzz run "$target" ${corpora[@]+"${corpora[@]}"} -- \
            -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096) > "$log" 2>&1 || status=$?
        if [ "$status" != 0 ]; then
            grep -v '^#[0-9]' "$log" | tail -n 80
            echo "fuzz target $target failed (exit $status); full output in $log"
            exit 1
        fi
        echo "-- $target"
        tail -n 3 "$log"
    done
}

vulkan() {
    step "Vulkan tests on lavapipe with validation layers"
    # lavapipe only, so results do not depend on whatever GPU the machine has.
    local icd
    icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n 1)
    # MEMKIT_REQUIRE_VULKAN=1: a missing loader or driver fails the tests instead of skipping them.
    MEMKIT_REQUIRE_VULKAN=1 VK_DRIVER_FILES="$icd" VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation \
        cargo test -p memkit-vulkan --locked -- --test-threads=1
    # The main job on lavapipe: `memkit demo` reads buffers and textures back at the end and
    # fails on a differing byte, a validation message or a leak.
    VK_DRIVER_FILES="$icd" cargo run -p memkit-std --features cli --locked -- \
        demo --device vulkan --validation --frames 60
}

ALL=(install fmt clippy tests no_std loom miri tsan fuzz vulkan)
gates=("$@")
[ ${#gates[@]} -gt 0 ] || gates=("${ALL[@]}")
start=$SECONDS
for g in "${gates[@]}"; do
    t0=$SECONDS
    "$g"
    echo "---- $g: $((SECONDS - t0)) s"
done
echo "all gates passed in $((SECONDS - start)) s: ${gates[*]}"
