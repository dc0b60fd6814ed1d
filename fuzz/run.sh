#!/usr/bin/env bash
# Builds the libFuzzer targets into build-fuzz/ and runs each one for SECONDS (default 20) on its seed
# corpus (fuzz/corpus/<target>/, read-only) plus a working corpus (build-fuzz/corpus/<target>/, kept
# between runs so longer passes build on earlier ones). Exit status 1 if any target finds a crash; the
# input that crashed it is in build-fuzz/artifacts/<target>/ (turn it into a regression test).
#   fuzz/run.sh            # short pass, 20 s per target
#   fuzz/run.sh 600        # longer pass
#   FUZZ_TARGETS="fuzz_safetensors" fuzz/run.sh 60      # a subset
#   FUZZ_JOBS=2 fuzz/run.sh 600                         # parallel workers per target (-fork)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-20}
BUILD=build-fuzz

command -v clang++ >/dev/null || { echo "fuzz/run.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)"; exit 2; }
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPEFTLAB_FUZZ=ON >/dev/null
fi
cmake "$BUILD" >/dev/null  # re-reads fuzz/CMakeLists.txt, which writes the target list
read -r -a TARGETS <<< "${FUZZ_TARGETS:-$(tr '\n' ' ' < "$BUILD/fuzz_targets.txt")}"
cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-2}" --target "${TARGETS[@]}"

status=0
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus/$t" artifacts="$BUILD/artifacts/$t/" log="$BUILD/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 -max_len=8192
        -print_final_stats=1 -artifact_prefix="$artifacts")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  [ -n "${FUZZ_JOBS:-}" ] && args+=(-fork="$FUZZ_JOBS" -ignore_crashes=0)
  seeds=(); [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
  echo "== $t: ${SECONDS_PER_TARGET}s"
  if "$BUILD/fuzz/$t" "${args[@]}" "$work" "${seeds[@]}" >"$log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE" "$log" || true
    echo "   corpus: $(ls "$work" | wc -l) inputs; no crash"
  else
    status=1
    echo "   CRASH (log: $log, inputs: $artifacts)"; grep -E "ERROR|runtime error|==ABORTING|Test unit written" "$log" | head -5
  fi
done
exit $status
