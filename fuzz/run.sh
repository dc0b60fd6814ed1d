#!/usr/bin/env bash
# Builds the libFuzzer targets into build-fuzz/ and runs each one on its seed corpus (fuzz/corpus/<target>/,
# read-only) plus a working corpus (build-fuzz/corpus/<target>/, kept between runs so longer passes build on
# earlier ones). Exit status 1 if any target finds a crash; the input that crashed it is in
# build-fuzz/artifacts/<target>/ (turn it into a regression file: docs/fuzzing.md).
#   fuzz/run.sh                 # short pass, 20 s per target
#   fuzz/run.sh 600             # longer pass, 600 s per target
#   fuzz/run.sh --total 60      # a total fuzzing budget, split evenly over the targets (the CI pass)
#   FUZZ_TARGETS="fuzz_tsv fuzz_csv" fuzz/run.sh 60     # a subset
#   FUZZ_JOBS=2 fuzz/run.sh 600                         # parallel workers per target (-fork)
#   FUZZ_BUILD_DIR=/tmp/bf FUZZ_BUILD_JOBS=1 fuzz/run.sh   # another build folder; build parallelism (default 2)
# Building is not part of the budget (about 8 min from scratch on 2 cores: docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
TOTAL=""
SECONDS_PER_TARGET=20
case "${1:-}" in
  --total) TOTAL=${2:?"--total needs a number of seconds"} ;;
  "") ;;
  *) SECONDS_PER_TARGET=$1 ;;
esac

command -v clang++ >/dev/null || { echo "fuzz/run.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)"; exit 2; }
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPEFTLAB_FUZZ=ON >/dev/null
fi
cmake "$BUILD" >/dev/null  # re-reads fuzz/CMakeLists.txt, which writes the target list
read -r -a TARGETS <<< "${FUZZ_TARGETS:-$(tr '\n' ' ' < "$BUILD/fuzz_targets.txt")}"
cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-2}" --target "${TARGETS[@]}"

if [ -n "$TOTAL" ]; then
  SECONDS_PER_TARGET=$(( TOTAL / ${#TARGETS[@]} ))
  [ "$SECONDS_PER_TARGET" -ge 1 ] || SECONDS_PER_TARGET=1
fi

status=0
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t" artifacts="$BUILD/artifacts/$t/" log="$BUILD/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 -max_len=8192
        -print_final_stats=1 -artifact_prefix="$artifacts")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  [ -n "${FUZZ_JOBS:-}" ] && args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
  [ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")  # CI: the same mutation sequence every time
  seeds=(); [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
  echo "== $t: ${SECONDS_PER_TARGET}s"
  if "$BUILD/fuzz/$t" "${args[@]}" "$work" "${seeds[@]}" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    echo "   ${execs:-?} executions, peak RSS ${rss:-?} MB; corpus: $(ls "$work" | wc -l) inputs; no crash"
  else
    status=1
    echo "   CRASH (log: $log, inputs: $artifacts)"; grep -E "ERROR|runtime error|what\(\)|==ABORTING|Test unit written" "$log" | head -5
  fi
done
exit $status
