#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run.sh [SECONDS]  (default 60 each)
#
# Needs a nightly toolchain (cargo +nightly) and cargo-fuzz
# (`cargo install cargo-fuzz`). Each target starts from its seeds in
# fuzz/corpus/<target>/ (read only: new inputs go to a scratch corpus, so
# the repository stays clean); a crash or a hang (an input running over
# 30 s) leaves its input in fuzz/artifacts/<target>/ and makes the script
# exit 1 after the other targets ran. Reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
#
# FUZZ_WORK=DIR keeps the scratch corpora (and logs) there instead of a
# temporary directory.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2; }
# build.rs would otherwise refresh include/sockflow.h; leave the tree alone.
export CI="${CI:-true}"

work="${FUZZ_WORK:-}"
if [[ -z "$work" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

cargo +nightly fuzz build
failed=()
for t in $(cargo +nightly fuzz list); do
    printf '\n==> fuzz %s for %s s\n' "$t" "$secs"
    mkdir -p "$work/$t"
    seeds=()
    [[ -d "corpus/$t" ]] && seeds=("corpus/$t")
    # -timeout: one input running past 30 s is a hang, reported as a crash.
    # The outer timeout only guards against libFuzzer itself not stopping.
    if ! timeout $((secs + 300)) cargo +nightly fuzz run "$t" "$work/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=30 -max_len=4096 -print_final_stats=1 \
        2>"$work/$t.log"; then
        tail -n 60 "$work/$t.log" >&2
        failed+=("$t")
    else
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" || true
    fi
done
if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ok (${secs} s per target, no crash)"
