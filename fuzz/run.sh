#!/usr/bin/env bash
# Builds the fuzz targets on the stable toolchain and runs one of them.
#   fuzz/run.sh TARGET [SECONDS]        fuzz TARGET (framing | delay_spec), 60 s by default,
#                                       in fuzz/work/TARGET seeded from fuzz/corpus/TARGET
#   fuzz/run.sh TARGET --minimize       rewrite fuzz/corpus/TARGET (what gets committed) as
#                                       its seeds, its crashes and a minimal set covering
#                                       it and fuzz/work/TARGET
# libFuzzer comes from the libfuzzer-sys crate (built with the system C++ compiler); the
# coverage instrumentation is LLVM's sancov pass, asked for with stable -C flags. The target
# triple is given so that the flags reach our code and not the build scripts.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh framing|delay_spec [SECONDS|--minimize]}
arg=${2:-60}
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
cargo build --release --bins --target "$triple"
bin="target/$triple/release/$target"
mkdir -p "work/$target" artifacts
if [ "$arg" = "--minimize" ]; then
    # The hand-written seeds and the crashes found keep their names (the crashes are
    # regressions, whether or not they add coverage); the rest is libFuzzer's set cover of the
    # committed corpus and the work corpus, whose files are named by their SHA-1.
    fresh=$(mktemp -d)
    "$bin" -set_cover_merge=1 "$fresh" "corpus/$target" "work/$target"
    find "corpus/$target" -type f ! -name 'seed-*' ! -name 'crash-*' -delete
    for kept in "corpus/$target"/*; do
        rm -f "$fresh/$(sha1sum < "$kept" | cut -c1-40)"
    done
    mv "$fresh"/* "corpus/$target"/ 2>/dev/null || true
    rmdir "$fresh"
    ls "corpus/$target" | wc -l
else
    cp -n "corpus/$target"/* "work/$target"/
    "$bin" -max_total_time="$arg" -print_final_stats=1 -artifact_prefix="artifacts/$target-" \
        "work/$target"
fi
