#!/usr/bin/env bash
# The sanitizer pass of docs/reliability.md ("Sanitizers"):
#   1. configures and builds build-asan/ with -DPEFTLAB_SANITIZE=ON (AddressSanitizer + UndefinedBehaviorSanitizer,
#      gcc), incrementally;
#   2. runs the default test suite (ctest -LE slow) in it, every process (the test binary and each peftlab it
#      starts) with findings made fatal;
#   3. runs the CLI's main paths (generate, validate, plan, a short run, eval, export, table) with
#      LeakSanitizer on.
# Exits 0 only when every test passes, every CLI path succeeds and no sanitizer wrote a report; each report
# (from any process, the test's own children included) is kept under build-asan/sanitize-logs/ and printed.
#
#   scripts/sanitize.sh [--build DIR] [--no-build] [--tests-only | --cli-only] [-j N]
#   ctest --test-dir build -L sanitize          # the same, registered as a test (labels: sanitize, slow)
#
# Under ASan everything runs slower: on 2 idle cores the first build takes about 53 minutes, the suite 20
# (figures: docs/reliability.md). Suppressions (third-party code only, each with its reason) are in tests/sanitize/.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-asan
DO_BUILD=1 DO_TESTS=1 DO_CLI=1
JOBS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$(realpath -m "$2"); shift ;;
    --no-build) DO_BUILD=0 ;;
    --tests-only) DO_CLI=0 ;;
    --cli-only) DO_TESTS=0 ;;
    -j) JOBS=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

SUPP=$ROOT/tests/sanitize
LOGS=$BUILD/sanitize-logs
failures=()

if [ "$DO_BUILD" = 1 ]; then
  echo "== build $BUILD (PEFTLAB_SANITIZE=ON)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPEFTLAB_SANITIZE=ON >/dev/null || exit 1
  cmake --build "$BUILD" -j"$JOBS" >"$BUILD/sanitize-build.log" 2>&1 || {
    tail -40 "$BUILD/sanitize-build.log"; echo "sanitize.sh: build failed ($BUILD/sanitize-build.log)"; exit 1; }
fi
[ -x "$BUILD/peftlab" ] && [ -x "$BUILD/peftlab_tests" ] || { echo "sanitize.sh: no sanitized build in $BUILD"; exit 1; }
rm -rf "$LOGS" && mkdir -p "$LOGS"

# Findings are fatal (halt_on_error; gcc's UBSan recovers by default, so its halt_on_error matters) and exit
# with 66, a status no peftlab path uses; every report also goes to a file per process (log_path), so a
# report in a child process whose exit status a test does not look at is still counted below.
export ASAN_OPTIONS="halt_on_error=1:exitcode=66:detect_leaks=1:log_path=$LOGS/asan:suppressions=$SUPP/asan.supp:${PEFTLAB_EXTRA_ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=66:log_path=$LOGS/ubsan:suppressions=$SUPP/ubsan.supp"

report_logs() {  # prints the reports written so far; returns 1 if there is any
  local found=0 f
  for f in "$LOGS"/*; do
    [ -e "$f" ] || continue
    found=1
    echo "---- sanitizer report $f"
    cat "$f"
  done
  return $found
}

if [ "$DO_TESTS" = 1 ]; then
  echo "== ctest -LE slow in $BUILD"
  start=$(date +%s)
  ctest --test-dir "$BUILD" -LE slow -j"$JOBS" --output-on-failure || failures+=("ctest -LE slow")
  echo "== suite wall time: $(( $(date +%s) - start )) s"
  report_logs || failures+=("sanitizer reports during the test suite")
  rm -f "$LOGS"/*
fi

if [ "$DO_CLI" = 1 ]; then
  export PEFTLAB_DATA=${PEFTLAB_DATA:-$ROOT/../shared/data}
  M=$PEFTLAB_DATA/models/stories260K
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/peftlab-sanitize.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  SPEC=$ROOT/experiments/quickstart.yaml
  # One method, 6 steps, evaluations on 32 dev sentences, decomposition rows recorded: every stage of a run.
  SHORT=(--set 'methods=[{name: dora, rank: 4, alpha: 8, targets: [q_proj, v_proj]}]' --set train.max_steps=6
         --set train.warmup_steps=1 --set train.eval_every=3 --set eval.max_examples=32
         --set record.decomposition_every=3 --set record.magnitudes=true)
  cli() {  # cli NAME ARGS...: runs the sanitized peftlab; a failure or a report counts as a finding
    local name=$1; shift
    echo "== peftlab $name"
    "$BUILD/peftlab" --threads 2 "$@" >"$WORK/$name.out" 2>&1
    local rc=$?
    tail -5 "$WORK/$name.out"
    if [ $rc -ne 0 ] || ! report_logs; then
      echo "!! peftlab $name: exit $rc"; failures+=("peftlab $name (exit $rc)")
    else
      echo "ok (exit 0, no leak or sanitizer report)"
    fi
    rm -f "$LOGS"/*
  }
  cli generate generate --model "$M/stories260K.bin" --tokenizer "$M/tok512.model" --prompt "Once upon a time" \
      --max-new-tokens 48 --temperature 0
  cli validate validate "$SPEC" "${SHORT[@]}"
  cli plan plan "$SPEC"
  cli run run "$SPEC" "${SHORT[@]}" --out "$WORK/runs"
  RUN=$(dirname "$(find "$WORK/runs" -name run.h5 | head -1)")
  cli eval eval "$RUN" --split dev --max-examples 32
  cli export export "$RUN" --out "$WORK/adapter"
  cli export-merged export "$RUN" --out "$WORK/merged" --merged
  cli table table "$RUN" --format md
fi

if [ ${#failures[@]} -gt 0 ]; then
  echo "sanitize.sh: FAILED: ${failures[*]}"
  exit 1
fi
echo "sanitize.sh: clean"
