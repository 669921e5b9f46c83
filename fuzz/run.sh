#!/usr/bin/env bash
# Budgeted fuzzing of every target: builds them (cargo-fuzz, libFuzzer + AddressSanitizer) and runs
# each for BUDGET_SECONDS (default 60) of wall time. Exits non-zero when a target finds a crash,
# a property violation, a timeout (> 10 s for one input: a loop) or an out-of-memory.
#
#   fuzz/run.sh [BUDGET_SECONDS]
#
# Environment:
#   FUZZ_TARGETS   targets to run (default: every target in fuzz/fuzz_targets)
#   FUZZ_WORK      working corpus directory (default fuzz/corpus-work, git-ignored); the kept seeds in
#                  fuzz/corpus/<target> and the past findings in fuzz/regressions/<target> are read, never written
#   CARGO_TARGET_DIR  build directory (default /tmp/tsdb-fuzz-target, away from the main build's lock)
#
# Toolchain: cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, SanitizerCoverage). On a stable
# toolchain RUSTC_BOOTSTRAP=1 enables them (verified with Rust 1.95 stable + cargo-fuzz 0.13.2).
# A finding is written to fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ and
# `cargo test --no-default-features --test security_fuzz_corpus` replays it from then on.
set -uo pipefail

BUDGET=${1:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/tsdb-fuzz-target}
export RUSTC_BOOTSTRAP=1
WORK=${FUZZ_WORK:-$HERE/corpus-work}
TARGETS=${FUZZ_TARGETS:-$(ls fuzz_targets | sed 's/\.rs$//' | sort | tr '\n' ' ')}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is missing; installing it from crates.io" >&2
    cargo install cargo-fuzz --locked || { echo "fuzz/run.sh: cannot install cargo-fuzz" >&2; exit 2; }
fi

echo "fuzz/run.sh: building ($(rustc --version), $(cargo fuzz --version))"
cargo fuzz build -O || { echo "fuzz/run.sh: build failed" >&2; exit 2; }

status=0
summary=""
for t in $TARGETS; do
    mkdir -p "$WORK/$t" "corpus/$t"
    dirs=("$WORK/$t" "corpus/$t")
    [ -d "regressions/$t" ] && dirs+=("regressions/$t")
    log="$WORK/$t.log"
    echo "fuzz/run.sh: $t for ${BUDGET}s (log: $log)"
    # pg_copy reads its input as is (no expansion): long numbers and strings need long inputs.
    case $t in pg_copy) maxlen=32768 ;; *) maxlen=4096 ;; esac
    cargo fuzz run -O "$t" "${dirs[@]}" -- \
        -max_total_time="$BUDGET" -timeout=10 -rss_limit_mb=4096 -max_len="$maxlen" -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz/run.sh: $t FAILED (exit $rc)"
        grep -E 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY|Test unit written|property' "$log" | head -20
        summary+="$t: FAILED after ${runs:-?} executions; see $log"$'\n'
    else
        summary+="$t: ${runs:-?} executions in ${BUDGET}s, ${cov:-cov: ?} edges, no finding"$'\n'
    fi
done
echo
echo "fuzz/run.sh summary:"
printf '%s' "$summary"
exit $status
