#!/usr/bin/env bash
# Fuzzes every input parser and the codec for a bounded time each (see fuzz/ and the README's
# "Fuzzing" section). Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs on the stable toolchain: `cargo fuzz` with `--sanitizer none` passes only stable rustc
# flags (SanitizerCoverage instrumentation is `-Cpasses=sancov-module`), so libFuzzer is still
# coverage-guided; debug assertions and overflow checks are on. Each target starts from the
# repository's own stubs, scripts and profiles plus the seeds in fuzz/seeds/, and keeps what it
# finds in fuzz/corpus/ (not committed) for the next run. Any crash, panic, timeout or
# out-of-memory fails the script; the input that caused it is in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-45}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stub_file jsonl_script profile template codec)

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version | grep -q "$CARGO_FUZZ_VERSION" \
    || { echo "ERROR: cargo-fuzz $CARGO_FUZZ_VERSION is required and could not be installed" >&2; exit 1; }

# One flag set for build and run, so `run` reuses the build.
build_flags=(--sanitizer none --debug-assertions)
# Inputs up to 64 KiB (stub files and profiles are text), 2 GiB of memory, 10 s per input.
libfuzzer_flags=(-max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10
    -print_final_stats=1)

seeds_for() {
    case "$1" in
        stub_file) echo stubs/gripmock fuzz/seeds/stub_file ;;
        jsonl_script) echo stubs/scripts fuzz/seeds/jsonl_script ;;
        profile) echo profiles fuzz/seeds/profile ;;
        template) echo fuzz/seeds/template ;;
        codec) echo fuzz/seeds/codec ;;
        *) echo "ERROR: unknown fuzz target '$1'" >&2; return 1 ;;
    esac
}

echo "== building the fuzz targets"
build_started=$SECONDS
cargo fuzz build "${build_flags[@]}"
echo "built in $((SECONDS - build_started)) s"

failed=()
summary=()
for target in "${targets[@]}"; do
    seeds=$(seeds_for "$target")
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    log="fuzz/artifacts/$target/last-run.log"
    echo "== fuzzing $target for ${seconds} s"
    # shellcheck disable=SC2086 # the seed directories are separate words
    if cargo fuzz run "${build_flags[@]}" "$target" "fuzz/corpus/$target" $seeds -- \
        "${libfuzzer_flags[@]}" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
        tail -n 60 "$log"
    fi
    # libFuzzer's final line of progress and its final stats.
    progress=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(echo "$progress" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$progress" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    summary+=("$(printf '%-13s %-7s runs %-10s cov %-6s ft %-7s corpus %s' \
        "$target" "$status" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$corpus")")
done

echo "== fuzz summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "ERROR: fuzzing failed for: ${failed[*]}; the inputs are in fuzz/artifacts/<target>/" >&2
    exit 1
fi
